/*
 * shim_server.c - a small TCP server for the librelayshim end-to-end
 * tests (tests/e2e/shim_*.sh), with one switch per way real servers
 * accept their clients and manage their processes.
 *
 *   shim_server [-m MODE] [-n N] [-a full|small|null] -l ADDR [-l ADDR]...
 *               [-d PIDFILE] [-c [-L ADDR]] [-r|-R] [-x] [-X] [-C] [-k N]
 *
 * -m accept   blocking accept() on the first listener (the default)
 *    accept4  blocking accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)
 *    poll     poll() on every listener, then accept()
 *    select   select() on every listener, then accept()
 *    epoll    level-triggered epoll, accept()
 *    epollet  edge-triggered epoll on non-blocking listeners, accept4
 *             (SOCK_NONBLOCK) until EAGAIN
 *    epollex  EPOLLEXCLUSIVE, non-blocking listeners, accept4
 *             (SOCK_CLOEXEC) once per wake-up; meant with -n worker
 *             processes
 *    threads  -n threads blocking in accept() on the first listener
 *    never    never accepts: listens, then sleeps until SIGUSR1, and
 *             from then on accepts as "accept" does
 * -n N        worker processes (threads with -m threads) after listen()
 * -a          the address accept() gets: a sockaddr_storage (full), a
 *             4-byte buffer (small: must be truncated, the full length
 *             reported, nothing written past it) or NULL
 * -l ADDR     listen on 0.0.0.0:P, [::]:P (IPV6_V6ONLY) or unix:/path
 * -d PIDFILE  daemonize after listen(): fork, setsid, fork; the first
 *             process exits 0, the last writes PIDFILE
 * -c          clearenv() after listen(), before the workers start
 * -L ADDR     with -c: one more listener, opened after clearenv()
 * -r          SIGCHLD handler reaping with waitpid(-1); each client is
 *             served by a forked child.  A reaped pid this process did
 *             not create is counted ("unk=" in every reply)
 * -R          as -r, but SIGCHLD is blocked in every thread and a signal
 *             thread sigwait()s for it and reaps
 * -x          re-exec itself after listen(); the listeners are inherited
 * -X          per client: fork, and the child re-execs itself to serve it
 * -P          SO_REUSEPORT on every listener (nginx "reuseport")
 * -k N        the first N connections are taken with the raw accept4
 *             system call, past the shim, and closed (as a process
 *             without the library would); "STOLE" is printed for each
 * -C          after listen(), close every fd above 2 but the listeners
 *             (as a daemon sheds what it inherited), then open a socket
 *             pair on the lowest free numbers with 5 unread bytes in it;
 *             every reply says how many are still there ("held=")
 *
 * stdout: "LISTEN <i> <address getsockname() reports>" per listener
 * ("EXEC LISTEN ..." after -x), then "READY".  Per client it reads one
 * line and answers one line:
 *   pid=P tid=T l=I fam=F alen=N guard=G nb=B cloexec=C peer=A unk=U
 *   [held=H] msg=LINE
 * fam/alen/peer: what accept() filled in (-1/0/- with -a null, peer only
 * with -a full); guard: 1 if no
 * byte past the caller's addrlen was written; nb/cloexec: the flags of
 * the accepted socket as returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"

#define SS_MAX_LISTENERS 8
#define SS_MAX_CHILDREN 4096
#define SS_GUARD 0xa5

enum ss_mode {
	SS_ACCEPT,
	SS_ACCEPT4,
	SS_POLL,
	SS_SELECT,
	SS_EPOLL,
	SS_EPOLLET,
	SS_EPOLLEX,
	SS_THREADS,
	SS_NEVER,
};

static const char *const ss_mode_names[] = {"accept", "accept4", "poll",
    "select", "epoll", "epollet", "epollex", "threads", "never"};

static struct {
	enum ss_mode mode;
	int nworkers;
	int addr_style; /* 0 full, 1 small, 2 null */
	int fds[SS_MAX_LISTENERS];
	int nfds;
	const char *pidfile;
	int clear_env;
	int close_fds; /* -C */
	int reuseport; /* -P */
	int held[2];   /* -C: the socket pair, 5 bytes unread in held[0] */
	const char *late_addr;
	int reap;
	int reexec;
	int exec_per_conn;
	int steal; /* -k */
	char **argv;
} ss;

/* Children this process created, and reaped pids it did not. */
static volatile pid_t ss_children[SS_MAX_CHILDREN];
static volatile sig_atomic_t ss_nchildren;
static volatile sig_atomic_t ss_unknown;

static void
ss_die(const char *what)
{
	fprintf(stderr, "shim_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
ss_usage(void)
{
	fprintf(stderr,
	    "usage: shim_server [-m mode] [-n N] [-a full|small|"
	    "null] -l ADDR... [-d pidfile] [-c [-L ADDR]] [-r|-R] "
	    "[-x] [-X] [-C] [-P] [-k N]\n");
	exit(2);
}

/* "a.b.c.d:port" or "[v6]:port", v4-mapped addresses left as they are:
 * the tests check the family accept() reported. */
static void
ss_format(char *out, size_t len, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(out, len, "family-%d", sa->sa_family);
	}
}

static void
ss_print_listeners(const char *prefix)
{
	for (int i = 0; i < ss.nfds; i++) {
		struct sockaddr_storage a;
		socklen_t len = sizeof(a);
		char s[160];

		if (getsockname(ss.fds[i], (struct sockaddr *)&a, &len) == -1)
			ss_die("getsockname");
		if (a.ss_family == AF_UNIX)
			snprintf(s, sizeof(s), "unix:%s",
			    ((struct sockaddr_un *)&a)->sun_path);
		else if (proto_addr_format(s, sizeof(s),
			     (struct sockaddr *)&a) == -1)
			snprintf(s, sizeof(s), "?");
		printf("%sLISTEN %d %s\n", prefix, i, s);
	}
	printf("READY\n");
	fflush(stdout);
}

static int
ss_listen(const char *spec)
{
	struct sockaddr_storage a;
	socklen_t len;
	int fd, one = 1;

	memset(&a, 0, sizeof(a));
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&a;

		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", spec + 5);
		unlink(sun->sun_path);
		len = sizeof(*sun);
	} else {
		if (proto_addr_parse(&a, spec, strlen(spec)) == -1) {
			fprintf(stderr, "shim_server: bad address %s\n", spec);
			exit(2);
		}
		len = a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					      : sizeof(struct sockaddr_in);
	}
	fd = socket(a.ss_family, SOCK_STREAM, 0);
	if (fd == -1)
		ss_die("socket");
	if (a.ss_family != AF_UNIX)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
	if (a.ss_family != AF_UNIX && ss.reuseport)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
		    sizeof(one));
	if (a.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, len) == -1)
		ss_die("bind");
	if (listen(fd, 128) == -1)
		ss_die("listen");
	return fd;
}

static void
ss_sigchld(int sig)
{
	int saved = errno, status;
	pid_t pid;

	(void)sig;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int known = 0;

		for (int i = 0; i < ss_nchildren; i++)
			if (ss_children[i] == pid)
				known = 1;
		if (!known) {
			static const char msg[] = "shim_server: reaped a child "
						  "it did not create\n";

			ss_unknown++;
			(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		}
	}
	errno = saved;
}

/* With -R, fork and record under this lock: the signal thread does not
 * care what the forking thread blocks. */
static pthread_mutex_t ss_fork_lock = PTHREAD_MUTEX_INITIALIZER;

/* -R: the signal thread of servers that block signals everywhere else. */
static void *
ss_reaper(void *arg)
{
	sigset_t chld;
	int sig;

	(void)arg;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		if (sigwait(&chld, &sig) != 0)
			continue;
		pthread_mutex_lock(&ss_fork_lock);
		ss_sigchld(sig);
		pthread_mutex_unlock(&ss_fork_lock);
	}
	return NULL;
}

/* fork(), recording the child before SIGCHLD can report it. */
static pid_t
ss_fork(void)
{
	sigset_t chld, old;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	pthread_mutex_lock(&ss_fork_lock);
	pid = fork();
	if (pid > 0 && ss_nchildren < SS_MAX_CHILDREN)
		ss_children[ss_nchildren++] = pid;
	if (pid == 0)
		pthread_mutex_init(&ss_fork_lock, NULL);
	else
		pthread_mutex_unlock(&ss_fork_lock);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

/* Read one line from <fd> and answer it; <info> describes the accept. */
static void
ss_answer(int fd, const char *info)
{
	struct timeval tv = {10, 0};
	char line[256], reply[960], extra[32] = "";
	size_t n = 0;
	int fl = fcntl(fd, F_GETFL), held = -1;

	if (fl != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (n < sizeof(line) - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	if (ss.close_fds) {
		(void)ioctl(ss.held[0], FIONREAD, &held);
		snprintf(extra, sizeof(extra), " held=%d", held);
	}
	snprintf(reply, sizeof(reply), "pid=%d tid=%ld %s unk=%d%s msg=%s\n",
	    (int)getpid(), (long)syscall(SYS_gettid), info, (int)ss_unknown,
	    extra, line);
	(void)!write(fd, reply, strlen(reply));
	close(fd);
}

/* Serve a client on a connection inherited across exec (-X). */
static void
ss_serve_inherited(int fd, const char *info)
{
	ss_answer(fd, info);
	exit(0);
}

static void
ss_serve(int fd, const char *info)
{
	pid_t pid;

	if (ss.exec_per_conn) {
		pid = ss.reap ? ss_fork() : fork();
		if (pid == 0) {
			static char opt_s[] = "-S";
			char fdstr[16], infostr[560];
			char *argv[] = {ss.argv[0], opt_s, fdstr, infostr,
			    NULL};

			snprintf(fdstr, sizeof(fdstr), "%d", fd);
			snprintf(infostr, sizeof(infostr), "%s", info);
			(void)fcntl(fd, F_SETFD, 0);
			execv("/proc/self/exe", argv);
			_exit(127);
		}
		close(fd);
		return;
	}
	if (ss.reap) {
		pid = ss_fork();
		if (pid == 0) {
			ss_answer(fd, info);
			_exit(0);
		}
		close(fd);
		return;
	}
	ss_answer(fd, info);
}

/* accept() (or accept4 with <flags>) on listener <i>, then serve. */
static int
ss_accept_one(int i, int use4, int flags)
{
	unsigned char buf[sizeof(struct sockaddr_storage)];
	struct sockaddr_storage local, gpeer;
	socklen_t len, given, llen, gplen;
	char info[560], peer[160] = "-", lstr[160] = "-", gpstr[160] = "-";
	int fd, fam = -1, guard = 1, nb, cloexec, fl;

	if (ss.steal > 0) {
		fd = (int)syscall(SYS_accept4, ss.fds[i], NULL, NULL, 0);
		if (fd == -1)
			return -1;
		ss.steal--;
		close(fd);
		printf("STOLE\n");
		fflush(stdout);
		return 0;
	}
	memset(buf, SS_GUARD, sizeof(buf));
	given = ss.addr_style == 1 ? 4 : (socklen_t)sizeof(buf);
	len = given;
	if (ss.addr_style == 2)
		fd = use4 ? accept4(ss.fds[i], NULL, NULL, flags)
			  : accept(ss.fds[i], NULL, NULL);
	else
		fd = use4
		    ? accept4(ss.fds[i], (struct sockaddr *)buf, &len, flags)
		    : accept(ss.fds[i], (struct sockaddr *)buf, &len);
	if (fd == -1)
		return -1;
	if (ss.addr_style != 2) {
		fam = ((struct sockaddr *)buf)->sa_family;
		for (size_t k = given; k < sizeof(buf); k++)
			if (buf[k] != SS_GUARD)
				guard = 0;
		if (ss.addr_style == 0)
			ss_format(peer, sizeof(peer), (struct sockaddr *)buf);
	} else {
		len = 0;
	}
	fl = fcntl(fd, F_GETFL);
	nb = fl != -1 && (fl & O_NONBLOCK) != 0;
	fl = fcntl(fd, F_GETFD);
	cloexec = fl != -1 && (fl & FD_CLOEXEC) != 0;
	llen = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		ss_format(lstr, sizeof(lstr), (struct sockaddr *)&local);
	gplen = sizeof(gpeer);
	if (getpeername(fd, (struct sockaddr *)&gpeer, &gplen) == 0)
		ss_format(gpstr, sizeof(gpstr), (struct sockaddr *)&gpeer);
	snprintf(info, sizeof(info),
	    "l=%d fam=%d alen=%u guard=%d nb=%d cloexec=%d peer=%s local=%s "
	    "llen=%u gpeer=%s gplen=%u",
	    i, fam, (unsigned)len, guard, nb, cloexec, peer, lstr,
	    (unsigned)llen, gpstr, (unsigned)gplen);
	ss_serve(fd, info);
	return 0;
}

static void *
ss_thread(void *arg)
{
	(void)arg;
	for (;;)
		if (ss_accept_one(0, 0, 0) == -1 && errno != EINTR &&
		    errno != ECONNABORTED)
			ss_die("accept");
	return NULL;
}

static void
ss_set_nonblock(void)
{
	for (int i = 0; i < ss.nfds; i++)
		if (fcntl(ss.fds[i], F_SETFL,
			fcntl(ss.fds[i], F_GETFL) | O_NONBLOCK) == -1)
			ss_die("fcntl");
}

static void
ss_loop_epoll(void)
{
	struct epoll_event ev, evs[8];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep == -1)
		ss_die("epoll_create1");
	for (int i = 0; i < ss.nfds; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		if (ss.mode == SS_EPOLLET)
			ev.events |= EPOLLET;
		if (ss.mode == SS_EPOLLEX)
			ev.events |= EPOLLEXCLUSIVE;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ss.fds[i], &ev) == -1)
			ss_die("epoll_ctl");
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 8, -1);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			ss_die("epoll_wait");
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;

			if (ss.mode == SS_EPOLL) {
				if (ss_accept_one(i, 0, 0) == -1 &&
				    errno != EAGAIN && errno != EINTR)
					ss_die("accept");
			} else if (ss.mode == SS_EPOLLEX) {
				if (ss_accept_one(i, 1, SOCK_CLOEXEC) == -1 &&
				    errno != EAGAIN && errno != EINTR)
					ss_die("accept4");
			} else {
				/* Edge-triggered: drain, or hang forever. */
				while (ss_accept_one(i, 1, SOCK_NONBLOCK) == 0)
					;
				if (errno != EAGAIN && errno != EINTR)
					ss_die("accept4");
			}
		}
	}
}

static void
ss_loop_poll(void)
{
	struct pollfd pfd[SS_MAX_LISTENERS];

	for (;;) {
		int n;

		for (int i = 0; i < ss.nfds; i++) {
			pfd[i].fd = ss.fds[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		n = poll(pfd, (nfds_t)ss.nfds, -1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			ss_die("poll");
		for (int i = 0; i < ss.nfds; i++)
			if ((pfd[i].revents & POLLIN) &&
			    ss_accept_one(i, 0, 0) == -1 && errno != EINTR)
				ss_die("accept");
	}
}

static void
ss_loop_select(void)
{
	for (;;) {
		fd_set rd;
		int n, max = -1;

		FD_ZERO(&rd);
		for (int i = 0; i < ss.nfds; i++) {
			FD_SET(ss.fds[i], &rd);
			if (ss.fds[i] > max)
				max = ss.fds[i];
		}
		n = select(max + 1, &rd, NULL, NULL, NULL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			ss_die("select");
		for (int i = 0; i < ss.nfds; i++)
			if (FD_ISSET(ss.fds[i], &rd) &&
			    ss_accept_one(i, 0, 0) == -1 && errno != EINTR)
				ss_die("accept");
	}
}

static void
ss_loop(void)
{
	switch (ss.mode) {
	case SS_NEVER: {
		sigset_t usr1;
		int sig;

		/* The test, not a timer, says when the server is back: it
		 * waits for the helper to have dropped what it should. */
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
		while (sigwait(&usr1, &sig) != 0)
			;
	}
		/* FALLTHROUGH */
	case SS_ACCEPT:
	case SS_ACCEPT4:
		for (;;)
			if (ss_accept_one(0, ss.mode == SS_ACCEPT4,
				SOCK_NONBLOCK | SOCK_CLOEXEC) == -1 &&
			    errno != EINTR && errno != ECONNABORTED)
				ss_die("accept");
	case SS_POLL:
		ss_loop_poll();
		break;
	case SS_SELECT:
		ss_loop_select();
		break;
	case SS_EPOLL:
	case SS_EPOLLET:
	case SS_EPOLLEX:
		if (ss.mode != SS_EPOLL)
			ss_set_nonblock();
		ss_loop_epoll();
		break;
	case SS_THREADS: {
		pthread_t t;

		for (int i = 0; i < (ss.nworkers > 0 ? ss.nworkers : 4); i++)
			if (pthread_create(&t, NULL, ss_thread, NULL) != 0)
				ss_die("pthread_create");
		for (;;)
			pause();
	}
	}
}

static void
ss_daemonize(void)
{
	pid_t pid = fork();
	FILE *f;

	if (pid == -1)
		ss_die("fork");
	if (pid > 0)
		exit(0);
	setsid();
	pid = fork();
	if (pid == -1)
		ss_die("fork");
	if (pid > 0)
		_exit(0);
	f = fopen(ss.pidfile, "w");
	if (f == NULL)
		ss_die("pidfile");
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

/* -x: exec ourselves with the listeners as "-F fd,fd,..." instead. */
static void
ss_reexec(void)
{
	char fds[128], *argv[64];
	int n = 0, k = 0;
	static char opt_f[] = "-F";

	fds[0] = '\0';
	for (int i = 0; i < ss.nfds; i++) {
		k += snprintf(fds + k, sizeof(fds) - (size_t)k, "%s%d",
		    i ? "," : "", ss.fds[i]);
		(void)fcntl(ss.fds[i], F_SETFD, 0);
	}
	for (int i = 0; ss.argv[i] != NULL && n < 60; i++) {
		if (strcmp(ss.argv[i], "-x") == 0)
			continue;
		if (strcmp(ss.argv[i], "-l") == 0 && ss.argv[i + 1] != NULL) {
			i++;
			continue;
		}
		argv[n++] = ss.argv[i];
	}
	argv[n++] = opt_f;
	argv[n++] = fds;
	argv[n] = NULL;
	execv("/proc/self/exe", argv);
	ss_die("execv");
}

/* -C: what a daemon does to fds it did not open itself. */
static void
ss_close_fds(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		int keep = 0;

		for (int i = 0; i < ss.nfds; i++)
			keep |= ss.fds[i] == fd;
		if (!keep)
			close(fd);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ss.held) == -1 ||
	    write(ss.held[1], "held!", 5) != 5)
		ss_die("socketpair");
}

static void
ss_parse(int argc, char **argv, const char **inherited, int *serve_fd,
    const char **serve_info)
{
	int c;

	while ((c = getopt(argc, argv, "m:n:a:l:d:cL:rRxXCPF:S:k:")) != -1) {
		switch (c) {
		case 'm': {
			size_t i;

			for (i = 0; i <
			     sizeof(ss_mode_names) / sizeof(ss_mode_names[0]);
			     i++)
				if (strcmp(optarg, ss_mode_names[i]) == 0)
					break;
			if (i ==
			    sizeof(ss_mode_names) / sizeof(ss_mode_names[0]))
				ss_usage();
			ss.mode = (enum ss_mode)i;
			break;
		}
		case 'n':
			ss.nworkers = atoi(optarg);
			break;
		case 'a':
			if (strcmp(optarg, "full") == 0)
				ss.addr_style = 0;
			else if (strcmp(optarg, "small") == 0)
				ss.addr_style = 1;
			else if (strcmp(optarg, "null") == 0)
				ss.addr_style = 2;
			else
				ss_usage();
			break;
		case 'l':
			if (ss.nfds == SS_MAX_LISTENERS)
				ss_usage();
			ss.fds[ss.nfds++] = -1;
			break;
		case 'd':
			ss.pidfile = optarg;
			break;
		case 'c':
			ss.clear_env = 1;
			break;
		case 'L':
			ss.late_addr = optarg;
			break;
		case 'r':
			ss.reap = 1;
			break;
		case 'R':
			ss.reap = 2;
			break;
		case 'x':
			ss.reexec = 1;
			break;
		case 'X':
			ss.exec_per_conn = 1;
			break;
		case 'C':
			ss.close_fds = 1;
			break;
		case 'P':
			ss.reuseport = 1;
			break;
		case 'k':
			ss.steal = atoi(optarg);
			break;
		case 'F':
			*inherited = optarg;
			break;
		case 'S':
			*serve_fd = atoi(optarg);
			break;
		default:
			ss_usage();
		}
	}
	if (*serve_fd != -1) {
		*serve_info = optind < argc ? argv[optind] : "";
		return;
	}
	if (ss.nfds == 0 && *inherited == NULL)
		ss_usage();
}

int
main(int argc, char **argv)
{
	const char *inherited = NULL, *serve_info = NULL;
	int serve_fd = -1, c, i = 0;

	ss.argv = argv;
	signal(SIGPIPE, SIG_IGN);
	ss_parse(argc, argv, &inherited, &serve_fd, &serve_info);
	if (serve_fd != -1)
		ss_serve_inherited(serve_fd, serve_info);
	if (ss.reap == 2) {
		sigset_t chld;
		pthread_t t;

		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		pthread_sigmask(SIG_BLOCK, &chld, NULL);
		if (pthread_create(&t, NULL, ss_reaper, NULL) != 0)
			ss_die("pthread_create");
	} else if (ss.reap) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = ss_sigchld;
		sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
		sigaction(SIGCHLD, &sa, NULL);
	}
	if (inherited != NULL) {
		const char *p = inherited;

		ss.nfds = 0;
		while (*p != '\0' && ss.nfds < SS_MAX_LISTENERS) {
			char *end;

			ss.fds[ss.nfds++] = (int)strtol(p, &end, 10);
			p = *end == ',' ? end + 1 : end;
			if (end == p && *p != '\0')
				break;
		}
		ss_print_listeners("EXEC ");
	} else {
		/* The listeners, in command-line order. */
		optind = 1;
		while (
		    (c = getopt(argc, argv, "m:n:a:l:d:cL:rRxXCPF:S:k:")) != -1)
			if (c == 'l')
				ss.fds[i++] = ss_listen(optarg);
		if (ss.reexec)
			ss_reexec();
		if (ss.pidfile != NULL)
			ss_daemonize();
		if (ss.clear_env) {
			clearenv();
			if (ss.late_addr != NULL && ss.nfds < SS_MAX_LISTENERS)
				ss.fds[ss.nfds++] = ss_listen(ss.late_addr);
		}
		if (ss.close_fds)
			ss_close_fds();
		ss_print_listeners("");
	}
	if (ss.nworkers > 0 && ss.mode != SS_THREADS) {
		for (int w = 0; w < ss.nworkers; w++) {
			pid_t pid = ss.reap ? ss_fork() : fork();

			if (pid == -1)
				ss_die("fork");
			if (pid == 0) {
				/* Workers end with their master. */
				prctl(PR_SET_PDEATHSIG, SIGTERM);
				if (getppid() == 1)
					_exit(0);
				ss_loop();
			}
		}
		for (;;)
			pause();
	}
	ss_loop();
	return 0;
}
