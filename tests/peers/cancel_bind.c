/*
 * cancel_bind.c - a thread cancelled inside the library's bind(), run
 * under librelayshim.so by tests/e2e/shim_signal.sh:
 *
 *   cancel_bind
 *
 * Binds a socket (the library records it) and closes it, so that the
 * next bind() reclaims that record and on the way reaches cancellation
 * points (open, close) while it holds the registry.  A thread with a
 * cancel pending then binds: bind() is no cancellation point, so the
 * cancel must take effect only after it returned.  The main thread then
 * binds and names a socket, which would wait for ever on a registry
 * left locked by the cancelled thread (run it under timeout -s KILL:
 * every signal is blocked while it waits).
 *
 * Prints "returned=R" (R: 1 if the thread's bind() returned before the
 * cancel took effect), then "named"; exits 0 if R is 1 and the main
 * thread's calls returned.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile int cb_returned;

/* A fresh TCP socket bound to 0.0.0.0:0 (relayed by the library), or
 * -1. */
static int
cb_bound(void)
{
	struct sockaddr_in sin;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(s);
		return -1;
	}
	return s;
}

static void *
cb_thread(void *arg)
{
	(void)arg;
	pthread_cancel(pthread_self());
	(void)cb_bound();
	cb_returned = 1;
	pthread_testcancel();
	return NULL;
}

int
main(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	pthread_t t;
	void *res;
	int s;

	s = cb_bound();
	if (s == -1) {
		perror("bind");
		return 2;
	}
	close(s);
	if (pthread_create(&t, NULL, cb_thread, NULL) != 0 ||
	    pthread_join(t, &res) != 0) {
		perror("thread");
		return 2;
	}
	printf("returned=%d cancelled=%d\n", cb_returned,
	    res == PTHREAD_CANCELED);
	fflush(stdout);
	s = cb_bound();
	if (s == -1 || getsockname(s, (struct sockaddr *)&ss, &len) == -1) {
		perror("main");
		return 2;
	}
	printf("named\n");
	return cb_returned ? 0 : 1;
}
