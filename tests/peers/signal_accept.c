/*
 * signal_accept.c - a server whose signal handler calls the hooked
 * functions, run under librelayshim.so by tests/e2e/shim_signal.sh:
 *
 *   signal_accept PORT N
 *
 * Listens on 0.0.0.0:PORT (non-blocking) and serves N clients (a line
 * in, the same line out) from one thread: poll(), accept4(), then a few
 * getsockname()/getpeername() calls on both sockets, as servers do to
 * log or route a client.  A SIGALRM every 100 us (setitimer) runs a
 * handler on that same thread which calls getsockname() on the listener
 * (it must report PORT), getpeername() on the client being served,
 * dup()s the listener and close()s the copy, and every 8th time
 * accept4()s and serves a client itself.  All of these are
 * async-signal-safe, so a handler may call them whatever the thread was
 * doing, including being inside the library's own accept().
 *
 * Prints "READY" once listening; at the end (all served, or 30 s)
 * "served=S main=M handler=H ticks=T inside=I badname=B" and exits 0
 * if all N were served and getsockname() never lied.  "inside" counts
 * ticks that landed while the main thread was inside a hooked call.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SACC_TICK_US 100
#define SACC_HANDLER_ACCEPT_EVERY 8
#define SACC_DEADLINE_S 30
#define SACC_NAME_CALLS 8

static int sacc_lfd = -1;
static unsigned sacc_port;
static volatile sig_atomic_t sacc_conn = -1; /* the client main is serving */
static volatile sig_atomic_t sacc_inside;    /* main is in a hooked call */
static volatile sig_atomic_t sacc_ticks;
static volatile sig_atomic_t sacc_ticks_inside;
static volatile sig_atomic_t sacc_badname;
static volatile sig_atomic_t sacc_served_main;
static volatile sig_atomic_t sacc_served_handler;

/* One line in, the same line out; 0 once answered. */
static int
sacc_echo(int c)
{
	struct pollfd pfd = {c, POLLIN, 0};
	char buf[256];
	ssize_t n;

	/* The relayed socket is blocking; a client that says nothing must
	 * not hang the handler. */
	while (poll(&pfd, 1, 5000) == -1)
		if (errno != EINTR)
			return -1;
	do
		n = read(c, buf, sizeof(buf));
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return -1;
	return write(c, buf, (size_t)n) == n ? 0 : -1;
}

static void
sacc_on_alarm(int sig)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int saved = errno, d, c;

	(void)sig;
	sacc_ticks++;
	if (sacc_inside)
		sacc_ticks_inside++;
	/* The listener must still be named by the address it asked for. */
	if (getsockname(sacc_lfd, (struct sockaddr *)&ss, &len) == -1 ||
	    ss.ss_family != AF_INET ||
	    ntohs(((struct sockaddr_in *)&ss)->sin_port) != sacc_port)
		sacc_badname++;
	c = sacc_conn;
	if (c != -1) {
		len = sizeof(ss);
		(void)getpeername(c, (struct sockaddr *)&ss, &len);
	}
	d = dup(sacc_lfd);
	if (d != -1)
		close(d);
	if (sacc_ticks % SACC_HANDLER_ACCEPT_EVERY == 0) {
		c = accept4(sacc_lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c != -1) {
			if (sacc_echo(c) == 0)
				sacc_served_handler++;
			close(c);
		}
	}
	errno = saved;
}

/* What servers do with a fresh client: ask both sockets their names.
 * These are the calls the ticks should land in. */
static void
sacc_names(int c)
{
	struct sockaddr_storage ss;
	socklen_t len;

	sacc_inside = 1;
	for (int i = 0; i < SACC_NAME_CALLS; i++) {
		len = sizeof(ss);
		(void)getsockname(c, (struct sockaddr *)&ss, &len);
		len = sizeof(ss);
		(void)getpeername(c, (struct sockaddr *)&ss, &len);
		len = sizeof(ss);
		(void)getsockname(sacc_lfd, (struct sockaddr *)&ss, &len);
	}
	sacc_inside = 0;
}

int
main(int argc, char **argv)
{
	struct itimerval it = {{0, SACC_TICK_US}, {0, SACC_TICK_US}};
	struct itimerval off = {{0, 0}, {0, 0}};
	struct sigaction sa;
	struct sockaddr_in sin;
	time_t deadline;
	int want, one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: signal_accept PORT N\n");
		return 2;
	}
	sacc_port = (unsigned)atoi(argv[1]);
	want = atoi(argv[2]);
	sacc_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	(void)setsockopt(sacc_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)sacc_port);
	if (sacc_lfd == -1 ||
	    bind(sacc_lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(sacc_lfd, 64) == -1) {
		perror("listen");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sacc_on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	printf("READY\n");
	fflush(stdout);
	setitimer(ITIMER_REAL, &it, NULL);
	deadline = time(NULL) + SACC_DEADLINE_S;
	while (sacc_served_main + sacc_served_handler < want &&
	    time(NULL) < deadline) {
		struct pollfd pfd = {sacc_lfd, POLLIN, 0};
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int c;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		sacc_inside = 1;
		c = accept4(sacc_lfd, (struct sockaddr *)&ss, &len,
		    SOCK_CLOEXEC);
		sacc_inside = 0;
		if (c == -1)
			continue; /* EAGAIN: the handler took it; EINTR */
		sacc_conn = c;
		sacc_names(c);
		if (sacc_echo(c) == 0)
			sacc_served_main++;
		sacc_conn = -1;
		close(c);
	}
	setitimer(ITIMER_REAL, &off, NULL);
	printf("served=%d main=%d handler=%d ticks=%d inside=%d badname=%d\n",
	    (int)(sacc_served_main + sacc_served_handler),
	    (int)sacc_served_main, (int)sacc_served_handler, (int)sacc_ticks,
	    (int)sacc_ticks_inside, (int)sacc_badname);
	return sacc_served_main + sacc_served_handler == want &&
		sacc_badname == 0
	    ? 0
	    : 1;
}
