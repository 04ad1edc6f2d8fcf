/* enforce_probe: the program the enforcement tests and benchmarks/enforce_latency.py run inside a
 * container (built statically, so it needs nothing from the container's image; and dynamically for
 * the ld.so test). One command per run, one result line on standard output:
 *
 *   enforce_probe open PATH              open(PATH, O_RDONLY), read a byte, close: "ok" or "err ERRNO NAME"
 *   enforce_probe opens PATH N           the same N times: "ok N" or "err ERRNO NAME" at the first failure
 *   enforce_probe exec PATH [ARG...]     fork + execv(PATH, [PATH, ARG...]) + wait: "ok STATUS", or
 *                                        "err ERRNO NAME" when execv itself failed (the errno comes back
 *                                        through a close-on-exec pipe)
 *   enforce_probe copy SRC DST           copy SRC to a new file DST, mode 0755: "ok BYTES" or "err ..."
 *   enforce_probe append PATH TEXT       append TEXT to PATH: "ok" or "err ..."
 *   enforce_probe link SRC DST           a hard link DST to SRC: "ok" or "err ..."
 *   enforce_probe bench-open PATH N      N x open+close, timed: "ns_per_op WALL cpu_ns_per_op CPU"
 *                                        ("err ..." at a failure): wall time, and the CPU time
 *                                        (user + system) of the probe and its reaped children
 *   enforce_probe bench-exec PATH N      N x fork+execv(PATH, [PATH, "true"])+wait, timed the same way
 *   enforce_probe true                   exit 0 (what bench-exec runs)
 *   enforce_probe sleep                  wait for a signal (a container's init process)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fail(int e) {
    printf("err %d %s\n", e, strerror(e));
    return 1;
}

static int open_once(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char c;
    if (read(fd, &c, 1) < 0) {
        int e = errno;
        close(fd);
        return e;
    }
    close(fd);
    return 0;
}

/* fork + execv; 0 and the child's wait status, or the errno of a failed execv */
static int run(char *const argv[], int *status) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return errno;
    pid_t pid = fork();
    if (pid < 0) return errno;
    if (pid == 0) {
        close(p[0]);
        execv(argv[0], argv);
        int e = errno;
        if (write(p[1], &e, sizeof e) < 0) _exit(126);
        _exit(127);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    if (waitpid(pid, status, 0) < 0) return errno;
    return n == (ssize_t)sizeof e ? e : 0;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU time (user + system) of this process and its reaped children, in ns */
static double cpu_ns(void) {
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double us = 0;
    struct timeval *tv[] = {&self.ru_utime, &self.ru_stime, &kids.ru_utime, &kids.ru_stime};
    for (int i = 0; i < 4; i++) us += (double)tv[i]->tv_sec * 1e6 + (double)tv[i]->tv_usec;
    return us * 1e3;
}

static void report(double t0, double c0, long n) {
    printf("ns_per_op %.1f cpu_ns_per_op %.1f\n", (now_ns() - t0) / (double)n, (cpu_ns() - c0) / (double)n);
}

static int copy(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return fail(errno);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    if (out < 0) return fail(errno);
    char buf[65536];
    long total = 0;
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) return fail(errno);
        total += n;
    }
    if (n < 0) return fail(errno);
    close(in);
    if (close(out) < 0) return fail(errno);
    printf("ok %ld\n", total);
    return 0;
}

static int append(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return fail(errno);
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) return fail(errno);
    close(fd);
    printf("ok\n");
    return 0;
}

static int bench_open(const char *path, long n) {
    double t0 = now_ns(), c0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return fail(errno);
        close(fd);
    }
    report(t0, c0, n);
    return 0;
}

static int bench_exec(char *path, long n) {
    char *argv[] = {path, "true", NULL};
    double t0 = now_ns(), c0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        int status = 0;
        int e = run(argv, &status);
        if (e) return fail(e);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail(ECHILD);
    }
    report(t0, c0, n);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: enforce_probe open|opens|exec|copy|append|link|bench-open|bench-exec|true|sleep ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "true")) return 0;
    if (!strcmp(cmd, "sleep")) {
        for (;;) pause();
    }
    if (!strcmp(cmd, "open") && argc == 3) {
        int e = open_once(argv[2]);
        if (e) return fail(e);
        printf("ok\n");
        return 0;
    }
    if (!strcmp(cmd, "opens") && argc == 4) {
        long n = atol(argv[3]);
        for (long i = 0; i < n; i++) {
            int e = open_once(argv[2]);
            if (e) return fail(e);
        }
        printf("ok %ld\n", n);
        return 0;
    }
    if (!strcmp(cmd, "exec") && argc >= 3) {
        int status = 0;
        int e = run(&argv[2], &status);
        if (e) return fail(e);
        printf("ok %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
    }
    if (!strcmp(cmd, "copy") && argc == 4) return copy(argv[2], argv[3]);
    if (!strcmp(cmd, "append") && argc == 4) return append(argv[2], argv[3]);
    if (!strcmp(cmd, "link") && argc == 4) {
        if (link(argv[2], argv[3]) < 0) return fail(errno);
        printf("ok\n");
        return 0;
    }
    if (!strcmp(cmd, "bench-open") && argc == 4) return bench_open(argv[2], atol(argv[3]));
    if (!strcmp(cmd, "bench-exec") && argc == 4) return bench_exec(argv[2], atol(argv[3]));
    fprintf(stderr, "enforce_probe: bad command line\n");
    return 2;
}
