/* stk-attack: the two behaviours of the integration tests that busybox cannot perform.
 *
 *   stk-attack ptrace                  fork a child, PTRACE_ATTACH to it, detach, reap it
 *   stk-attack memfd-exec FILE ARGV0 [ARG...]
 *                                      copy FILE into a memfd and execute it from there
 *                                      (execveat(fd, "", AT_EMPTY_PATH): fileless execution)
 *
 * Built statically by the test fixtures (clang -static) and placed in the busybox root filesystem,
 * so it runs the same in runc and podman containers and in the host's chroot sandbox.
 * Only ever touches its own child process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int do_ptrace(void) {
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    if (child == 0) { for (;;) pause(); }
    int rc = 0;
    if (ptrace(PTRACE_ATTACH, child, NULL, NULL) != 0) {
        fprintf(stderr, "stk-attack: PTRACE_ATTACH %d: %s\n", child, strerror(errno));
        rc = 2;
    } else {
        int st;
        waitpid(child, &st, 0);
        ptrace(PTRACE_DETACH, child, NULL, NULL);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return rc;
}

static int do_memfd_exec(const char *file, char **argv) {
    int src = open(file, O_RDONLY | O_CLOEXEC);
    if (src < 0) { perror(file); return 1; }
    int fd = (int)syscall(SYS_memfd_create, "stk_payload", 0);
    if (fd < 0) { perror("memfd_create"); return 1; }
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0) {
        if (write(fd, buf, (size_t)n) != n) { perror("write"); return 1; }
    }
    close(src);
    syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
    perror("execveat");
    return 1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "ptrace") == 0) return do_ptrace();
    if (argc >= 4 && strcmp(argv[1], "memfd-exec") == 0) return do_memfd_exec(argv[2], argv + 3);
    fprintf(stderr, "usage: stk-attack ptrace | memfd-exec FILE ARGV0 [ARG...]\n");
    return 64;
}
