/* stk-churn: short-lived processes at a paced rate, for the sensor's churn test and benchmark.
 *
 *   stk-churn [--rate R] [--seconds S | --count N] [--exec-every K] [--exec PATH] [--marker M]
 *             [--inflight J] [--progress FILE]
 *
 * Each operation is one process: fork(), and the child exits at once (_exit(0)), or, for every K-th
 * operation (--exec-every K, 0: never), executes `PATH M` (/bin/true by default) first. Children are
 * reaped as they exit; at most J (--inflight, default 1) are alive at a time.
 *
 * --rate 0 (the default) runs at full speed: the machine's own rate. Otherwise the operations are
 * paced in 1 ms slices, so that after t seconds about R x t of them were made (when the machine can),
 * as benchmarks/loadgen.py paces its operations.
 *
 * Prints "go" when its loop starts, then one JSON line at the end: {"ops", "execs", "fork_errors",
 * "wall_s", "cpu_s"} (cpu_s: this process's and its children's user + sys seconds). With
 * --progress FILE it keeps the operation count in the first 8 bytes of FILE (little-endian u64,
 * updated after every slice), so the other side can follow it without a syscall per operation.
 *
 * Built at run time by the tests and the benchmark (gcc -O2); only ever touches its own children.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLICE_S 0.001

struct opts {
    double rate, seconds;
    long long count;
    long exec_every, inflight;
    const char *exec_path, *marker, *progress;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(int who) {
    struct rusage r;
    getrusage(who, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void usage(void) {
    fprintf(stderr, "usage: stk-churn [--rate R] [--seconds S | --count N] [--exec-every K] [--exec PATH]"
                    " [--marker M] [--inflight J] [--progress FILE]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o) {
    *o = (struct opts){0, 1.0, -1, 0, 1, "/bin/true", "stk-churn", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--rate"))
            o->rate = atof(v);
        else if (!strcmp(a, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(a, "--count"))
            o->count = atoll(v);
        else if (!strcmp(a, "--exec-every"))
            o->exec_every = atol(v);
        else if (!strcmp(a, "--exec"))
            o->exec_path = v;
        else if (!strcmp(a, "--marker"))
            o->marker = v;
        else if (!strcmp(a, "--inflight"))
            o->inflight = atol(v) > 0 ? atol(v) : 1;
        else if (!strcmp(a, "--progress"))
            o->progress = v;
        else
            usage();
        i++;
    }
}

static uint64_t *map_progress(const char *path) {
    if (!path)
        return NULL;
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        perror("stk-churn: --progress");
        exit(2);
    }
    void *m = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        perror("stk-churn: mmap");
        exit(2);
    }
    return m;
}

struct state {
    const struct opts *o;
    char *const *exec_argv;
    long long n, execs, fork_errors;
    long alive;
};

/* One process: forked, exiting at once or after an exec. */
static void one(struct state *s) {
    while (s->alive >= s->o->inflight) {
        if (waitpid(-1, NULL, 0) > 0 || errno == ECHILD)
            s->alive = s->alive > 0 ? s->alive - 1 : 0;
    }
    int do_exec = s->o->exec_every > 0 && (s->n % s->o->exec_every) == 0;
    pid_t c = fork();
    if (c == 0) {
        if (do_exec)
            execv(s->o->exec_path, s->exec_argv);
        _exit(0);
    }
    if (c < 0) {
        s->fork_errors++;
        return;
    }
    s->alive++;
    s->n++;
    s->execs += do_exec;
}

int main(int argc, char **argv) {
    struct opts o;
    parse(argc, argv, &o);
    uint64_t *progress = map_progress(o.progress);
    char *exec_argv[] = {(char *)o.exec_path, (char *)o.marker, NULL};
    struct state s = {&o, exec_argv, 0, 0, 0, 0};
    long long limit = o.count >= 0 ? o.count : (1LL << 62);
    long long chunk = o.rate > 0 ? (long long)(o.rate * SLICE_S + 0.5) : 64;
    if (chunk < 1)
        chunk = 1;
    printf("go\n");
    fflush(stdout);
    double c0 = cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN);
    double t0 = now_s(), t = t0, end = t0 + (o.count >= 0 ? 1e9 : o.seconds);
    while (s.n < limit && t < end) {
        long long todo = chunk;
        if (o.rate > 0) {
            long long due = (long long)((t - t0) * o.rate);
            if (due - s.n < chunk) { /* ahead of the pace: wait until a whole slice is due */
                double wait = (s.n + chunk) / o.rate - (t - t0);
                if (wait > end - t)
                    wait = end - t;
                struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
                t = now_s();
                continue;
            }
            todo = due - s.n < 4 * chunk ? due - s.n : 4 * chunk;
        }
        if (todo > limit - s.n)
            todo = limit - s.n;
        for (long long i = 0; i < todo; i++)
            one(&s);
        if (progress)
            __atomic_store_n(progress, (uint64_t)s.n, __ATOMIC_RELAXED);
        t = now_s();
    }
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    double wall = now_s() - t0;
    printf("{\"ops\": %lld, \"execs\": %lld, \"fork_errors\": %lld, \"wall_s\": %.6f, \"cpu_s\": %.6f}\n", s.n,
           s.execs, s.fork_errors, wall, cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN) - c0);
    return 0;
}
