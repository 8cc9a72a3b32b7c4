/*
 * seq_stress.c - the library's registry read while it is written, from
 * many threads, run under librelayshim.so by tests/e2e/shim_signal.sh
 * (there also under ThreadSanitizer):
 *
 *   seq_stress PORT N
 *
 * Listens on 0.0.0.0:PORT and serves N clients (a line in, the same
 * line out) from 4 threads blocking in accept(), each asking the
 * client's names as servers do.  Meanwhile a thread binds and closes
 * sockets without end (each bind() writes the registry twice) and two
 * threads call getsockname() on the listener, which must always name
 * PORT.
 *
 * Prints "READY" once listening; at the end (all served, or 30 s)
 * "served=S badname=B binds=W names=R" and exits 0 if all N were served
 * and getsockname() never lied.
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SEQ_ACCEPTORS 4
#define SEQ_NAMERS 2
#define SEQ_DEADLINE_S 30

static int seq_lfd;
static unsigned seq_port;
static int seq_want;
static atomic_int seq_served, seq_badname, seq_binds, seq_names, seq_stop;

static void *
seq_acceptor(void *arg)
{
	(void)arg;
	while (!seq_stop) {
		struct sockaddr_storage ss;
		struct pollfd pfd;
		socklen_t len = sizeof(ss);
		char buf[256];
		ssize_t n;
		int c = accept(seq_lfd, (struct sockaddr *)&ss, &len);

		if (c == -1)
			continue; /* EINTR; EINVAL once shut down */
		len = sizeof(ss);
		(void)getpeername(c, (struct sockaddr *)&ss, &len);
		len = sizeof(ss);
		(void)getsockname(c, (struct sockaddr *)&ss, &len);
		pfd.fd = c;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 5000) == 1 &&
		    (n = read(c, buf, sizeof(buf))) > 0 &&
		    write(c, buf, (size_t)n) == n &&
		    atomic_fetch_add(&seq_served, 1) + 1 >= seq_want)
			seq_stop = 1;
		close(c);
	}
	return NULL;
}

static void *
seq_binder(void *arg)
{
	(void)arg;
	while (!seq_stop) {
		struct sockaddr_in sin;
		int s = socket(AF_INET, SOCK_STREAM, 0);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		if (s != -1 &&
		    bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			seq_binds++;
		if (s != -1)
			close(s);
	}
	return NULL;
}

static void *
seq_namer(void *arg)
{
	(void)arg;
	while (!seq_stop) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (getsockname(seq_lfd, (struct sockaddr *)&ss, &len) == -1 ||
		    ss.ss_family != AF_INET ||
		    ntohs(((struct sockaddr_in *)&ss)->sin_port) != seq_port)
			seq_badname++;
		seq_names++;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t t[SEQ_ACCEPTORS + SEQ_NAMERS + 1];
	struct sockaddr_in sin;
	time_t deadline;
	size_t nt = 0;
	int one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: seq_stress PORT N\n");
		return 2;
	}
	seq_port = (unsigned)atoi(argv[1]);
	seq_want = atoi(argv[2]);
	seq_lfd = socket(AF_INET, SOCK_STREAM, 0);
	(void)setsockopt(seq_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)seq_port);
	if (seq_lfd == -1 ||
	    bind(seq_lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(seq_lfd, 64) == -1) {
		perror("listen");
		return 2;
	}
	printf("READY\n");
	fflush(stdout);
	for (int i = 0; i < SEQ_ACCEPTORS; i++)
		if (pthread_create(&t[nt], NULL, seq_acceptor, NULL) == 0)
			nt++;
	for (int i = 0; i < SEQ_NAMERS; i++)
		if (pthread_create(&t[nt], NULL, seq_namer, NULL) == 0)
			nt++;
	if (pthread_create(&t[nt], NULL, seq_binder, NULL) == 0)
		nt++;
	deadline = time(NULL) + SEQ_DEADLINE_S;
	while (!seq_stop && time(NULL) < deadline)
		usleep(20000);
	seq_stop = 1;
	/* Wakes the threads blocked in accept(). */
	(void)shutdown(seq_lfd, SHUT_RDWR);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	printf("served=%d badname=%d binds=%d names=%d\n", (int)seq_served,
	    (int)seq_badname, (int)seq_binds, (int)seq_names);
	return seq_served >= seq_want && seq_badname == 0 ? 0 : 1;
}
