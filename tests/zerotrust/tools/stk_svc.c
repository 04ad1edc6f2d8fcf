/* stk-svc: a small HTTP service for the zero-trust tests, built statically.
 *
 * Normal behaviour (what Discover learns):
 *   GET /        reads /srv/index.html, writes and removes a mktemp-style cache file /tmp/tmp.XXXXXX
 *   GET /report  runs /usr/bin/stk-report (a copy of this program: `stk-report` prints "report")
 *   GET /health  answers "ok"
 * The attacker's foothold (a remote code execution in the service), used in Protect and Monitor:
 *   GET /x/exec?PATH            fork + execve(PATH, [PATH, "-c", "true"]): "exec errno=N" or "exec ran status=S"
 *   GET /x/read?PATH            open(PATH, O_RDONLY): "read errno=N" or "read ok"
 *   GET /x/write-exec?PATH      copy /usr/bin/stk-report to PATH (mode 755), then as /x/exec:
 *                               "write errno=N" or "write ok; exec ..."
 *   GET /x/connect?IP:PORT      TCP connect: "connect errno=N" or "connect ok"
 * Every answer is one line; errno 0 means success.
 * usage: stk-svc [PORT]   (default 8080); `stk-svc -c ...` (how /report and /x/exec run a copy)
 * prints "report" and exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(const char *path, char *out, size_t n) {
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) return snprintf(out, n, "exec errno=%d", errno);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)path, "-c", "true", NULL};
        char *envp[] = {"PATH=/bin:/usr/bin", NULL};
        execve(path, argv, envp);
        int e = errno;
        (void)!write(pfd[1], &e, sizeof e);
        _exit(127);
    }
    close(pfd[1]);
    int e = 0, st = 0;
    ssize_t r = read(pfd[0], &e, sizeof e);
    close(pfd[0]);
    waitpid(pid, &st, 0);
    if (r == (ssize_t)sizeof e) return snprintf(out, n, "exec errno=%d", e);
    return snprintf(out, n, "exec ran status=%d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static int copy(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return errno;
    int o = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (o < 0) { int e = errno; close(in); return e; }
    char buf[65536];
    ssize_t k;
    while ((k = read(in, buf, sizeof buf)) > 0)
        if (write(o, buf, (size_t)k) != k) { int e = errno; close(in); close(o); return e ? e : EIO; }
    close(in);
    close(o);
    chmod(dst, 0755);
    return 0;
}

static void handle(const char *target, char *out, size_t n) {
    if (!strcmp(target, "/health")) { snprintf(out, n, "ok"); return; }
    if (!strcmp(target, "/")) {
        char body[256] = "";
        int fd = open("/srv/index.html", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) { ssize_t k = read(fd, body, sizeof body - 1); body[k > 0 ? k : 0] = 0; close(fd); }
        char tmpl[] = "/tmp/tmp.XXXXXX";
        int t = mkstemp(tmpl);
        if (t >= 0) { (void)!write(t, "cache", 5); close(t); unlink(tmpl); }
        body[strcspn(body, "\n")] = 0;
        snprintf(out, n, "%s", body[0] ? body : "index missing");
        return;
    }
    if (!strcmp(target, "/report")) { run("/usr/bin/stk-report", out, n); return; }
    const char *q = strchr(target, '?');
    const char *arg = q ? q + 1 : "";
    if (!strncmp(target, "/x/exec?", 8)) { run(arg, out, n); return; }
    if (!strncmp(target, "/x/read?", 8)) {
        int fd = open(arg, O_RDONLY | O_CLOEXEC);
        if (fd < 0) snprintf(out, n, "read errno=%d", errno);
        else { close(fd); snprintf(out, n, "read errno=0"); }
        return;
    }
    if (!strncmp(target, "/x/write-exec?", 14)) {
        int e = copy("/usr/bin/stk-report", arg);
        if (e) { snprintf(out, n, "write errno=%d", e); return; }
        int k = snprintf(out, n, "write errno=0; ");
        run(arg, out + k, n - (size_t)k);
        return;
    }
    if (!strncmp(target, "/x/connect?", 11)) {
        char host[64];
        snprintf(host, sizeof host, "%s", arg);
        char *colon = strrchr(host, ':');
        if (!colon) { snprintf(out, n, "connect errno=%d", EINVAL); return; }
        *colon = 0;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
        inet_pton(AF_INET, host, &sa.sin_addr);
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) { snprintf(out, n, "connect errno=%d", errno); return; }
        struct timeval tv = {.tv_sec = 3};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int r = connect(s, (struct sockaddr *)&sa, sizeof sa);
        snprintf(out, n, "connect errno=%d", r < 0 ? errno : 0);
        close(s);
        return;
    }
    snprintf(out, n, "not found");
}

int main(int argc, char **argv) {
    /* run as a child ("PROGRAM -c true", any copy of this program): print and exit */
    if (argc > 1 && !strcmp(argv[1], "-c")) { puts("report"); return 0; }
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? atoi(argv[1]) : 8080;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 64) < 0) { perror("listen"); return 1; }
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        char req[2048];
        ssize_t k = recv(c, req, sizeof req - 1, 0);
        if (k <= 0) { close(c); continue; }
        req[k] = 0;
        char target[1024] = "/";
        sscanf(req, "GET %1023s", target);
        char body[1024];
        handle(target, body, sizeof body);
        char resp[1400];
        int m = snprintf(resp, sizeof resp,
                         "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s\n",
                         strlen(body) + 1, body);
        (void)!send(c, resp, (size_t)m, 0);
        close(c);
    }
}
