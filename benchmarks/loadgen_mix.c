/* The syscalls of benchmarks/loadgen.py's `mix` load, in C: Python's own cost per call would be
 * the generator's ceiling, not the machine's. Built at run time by loadgen.py (gcc -O2 -shared)
 * and called through ctypes, which releases the GIL: the exec thread and the main loop run at once.
 *
 * mix_init() takes the counters (one u64 per kind, in the progress file loadgen.py shares with the
 * benchmark), the read-only paths to open in turn, the work directory, the exec marker and the
 * schedule (one letter per unit, cycled); mix_run(t, n) runs units in the calling thread (the mix's
 * thread t: its own temporary files and place in the cycle) until at least n counted operations are
 * done and returns how many; mix_exec(n) spawns n `/bin/true MARKER` (vfork +
 * execve; children reaped by the kernel: SIGCHLD is ignored).
 *
 * Units: R open(read path, O_RDONLY) + close; W open(log, O_WRONLY|O_CREAT|O_APPEND) + close;
 * T open(tmp, O_CREAT) + close + renameat2(tmp, final) + unlinkat(final); U open(tmp, O_CREAT) +
 * close + unlinkat(tmp); N socket + connect + accept on 127.0.0.1 + close x 2 (the listener lingers
 * 0 s: the accepted side resets, no TIME_WAIT, no port runs out; one listener per thread); S socket + close; D dup2.
 * Every syscall is counted by kind; close is counted apart (it is not in the operations returned).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { K_OPEN, K_EXEC, K_SOCKET, K_CONNECT, K_ACCEPT, K_DUP2, K_UNLINKAT, K_RENAMEAT2, K_CLOSE, K_FAILED };

static uint64_t *cnt;
static char **paths;
static long npaths;
static char *sched;
static long nsched;
static char workdir[400];
static char logpath[4][512];
/* each thread its own place in the paths and the schedule, and its own temporary files */
static __thread long ipath, isched, ilog;
static __thread char tmppath[512], finalpath[512], tmp2path[512];
static __thread int thread_ready;
static __thread long ithread;

/* counted with atomic adds: several threads count into the same slots */
#define COUNT(k) __atomic_fetch_add(&cnt[k], 1, __ATOMIC_RELAXED)
static int devnull = -1;
/* each thread its own loopback listener: another thread's accept would take (and reset) its
 * connections before its connect returned */
static __thread int listener = -1;
static __thread struct sockaddr_in laddr;
static char *exec_argv[3];
static char *exec_envp[] = {"PATH=/usr/bin:/bin", NULL};
static const char *TRUE_BIN = "/bin/true";
#define DUP_TARGET 200

static void cls(int fd) {
    if (fd < 0) {
        COUNT(K_FAILED);
        return;
    }
    close(fd);
    COUNT(K_CLOSE);
}

static long opened(int fd) {
    COUNT(K_OPEN);
    cls(fd);
    return 1;
}

static long connection(void) {
    if (listener < 0) {
        COUNT(K_FAILED);
        return 3;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    COUNT(K_SOCKET);
    if (s < 0) {
        COUNT(K_FAILED);
        return 1;
    }
    if (connect(s, (struct sockaddr *)&laddr, sizeof laddr) != 0) COUNT(K_FAILED);
    COUNT(K_CONNECT);
    int a = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    COUNT(K_ACCEPT);
    cls(a); /* the accepted side first: it resets (linger 0), so neither side waits */
    cls(s);
    return 3;
}

static long unit(char u) {
    switch (u) {
    case 'R': {
        const char *p = paths[ipath];
        if (++ipath == npaths) ipath = 0;
        return opened(open(p, O_RDONLY | O_CLOEXEC));
    }
    case 'W':
        ilog = (ilog + 1) & 3;
        return opened(open(logpath[ilog], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    case 'T':
        opened(open(tmppath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (syscall(SYS_renameat2, AT_FDCWD, tmppath, AT_FDCWD, finalpath, 0) != 0) COUNT(K_FAILED);
        COUNT(K_RENAMEAT2);
        if (syscall(SYS_unlinkat, AT_FDCWD, finalpath, 0) != 0) COUNT(K_FAILED);
        COUNT(K_UNLINKAT);
        return 3;
    case 'U':
        opened(open(tmp2path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (syscall(SYS_unlinkat, AT_FDCWD, tmp2path, 0) != 0) COUNT(K_FAILED);
        COUNT(K_UNLINKAT);
        return 2;
    case 'N':
        return connection();
    case 'S': {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        COUNT(K_SOCKET);
        cls(s);
        return 1;
    }
    case 'D':
        if (syscall(SYS_dup2, devnull, DUP_TARGET + ithread) < 0) COUNT(K_FAILED);
        COUNT(K_DUP2);
        return 1;
    default:
        return 1;
    }
}

static int listen_loopback(void) {
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    COUNT(K_SOCKET); /* in the load: the sensor sees it */
    if (listener < 0) return -1;
    struct linger lg = {1, 0}; /* accepted sockets inherit it */
    setsockopt(listener, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    memset(&laddr, 0, sizeof laddr);
    laddr.sin_family = AF_INET;
    laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof laddr;
    if (bind(listener, (struct sockaddr *)&laddr, sizeof laddr) != 0 || listen(listener, 1024) != 0 ||
        getsockname(listener, (struct sockaddr *)&laddr, &len) != 0)
        return -1;
    return 0;
}

/* `blob`: the read paths, each ended by a NUL; `schedule`: unit letters. 0, or -1 (errno set). */
int mix_init(uint64_t *counters, const char *blob, long blob_len, const char *dir, const char *marker,
             const char *schedule) {
    cnt = counters;
    npaths = 0;
    for (long i = 0; i < blob_len; i++) npaths += blob[i] == 0;
    paths = calloc(npaths ? npaths : 1, sizeof *paths);
    char *copy = malloc(blob_len ? blob_len : 1);
    if (!paths || !copy) return -1;
    memcpy(copy, blob, blob_len);
    for (long i = 0, k = 0; k < npaths; k++) {
        paths[k] = copy + i;
        i += strlen(copy + i) + 1;
    }
    sched = strdup(schedule);
    nsched = strlen(sched);
    snprintf(workdir, sizeof workdir, "%s", dir);
    for (int i = 0; i < 4; i++) snprintf(logpath[i], sizeof logpath[i], "%s/log/app-%d.log", workdir, i);
    exec_argv[0] = (char *)TRUE_BIN;
    exec_argv[1] = strdup(marker);
    exec_argv[2] = NULL;
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    signal(SIGCHLD, SIG_IGN); /* the kernel reaps the execs' children */
    if (!sched || !nsched || !npaths || devnull < 0) return -1;
    return 0;
}

/* the calling thread's own temporary files and starting places (thread `t` of the mix) */
static void thread_init(long t) {
    ithread = t;
    snprintf(tmppath, sizeof tmppath, "%s/tmp/state-%ld.json.tmp", workdir, t);
    snprintf(finalpath, sizeof finalpath, "%s/tmp/state-%ld.json", workdir, t);
    snprintf(tmp2path, sizeof tmp2path, "%s/tmp/upload-%ld.part", workdir, t);
    ipath = (t * 37) % npaths;
    isched = (t * 1013) % nsched;
    if (listen_loopback() != 0) COUNT(K_FAILED);
    thread_ready = 1;
}

/* units of the schedule until at least n operations are done, in the calling thread (thread `t`) */
long mix_run(long t, long n) {
    if (!thread_ready) thread_init(t);
    long done = 0;
    while (done < n) {
        done += unit(sched[isched]);
        if (++isched == nsched) isched = 0;
    }
    return done;
}

/* its own frame: nothing of the caller's is live across vfork() */
static __attribute__((noinline)) pid_t spawn_true(void) {
    pid_t pid = vfork();
    if (pid == 0) {
        execve(TRUE_BIN, exec_argv, exec_envp);
        _exit(127);
    }
    return pid;
}

long mix_exec(long n) {
    for (long i = 0; i < n; i++) {
        if (spawn_true() < 0) COUNT(K_FAILED);
        COUNT(K_EXEC);
    }
    return n;
}
