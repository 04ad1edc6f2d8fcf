// connect() latency: TCP connect to a listener in the same network namespace, accept, close; N times.
// Usage: enforce_connect N   ->  prints the mean nanoseconds per round trip (after 1,000 warm-up ones).
// The client closes first with SO_LINGER 0 (a reset: no TIME_WAIT, so ports never run out).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(1);
}

static void once(int ls, const struct sockaddr_in *addr) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	if (connect(s, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
		die("connect");
	int a = accept(ls, NULL, NULL);
	if (a < 0)
		die("accept");
	struct linger lg = {1, 0};
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(s);
	close(a);
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 10000;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(ls, 128) < 0)
		die("listen");
	getsockname(ls, (struct sockaddr *)&addr, &len);
	for (int i = 0; i < 1000; i++)
		once(ls, &addr);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
		once(ls, &addr);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.1f\n", ns / n);
	return 0;
}
