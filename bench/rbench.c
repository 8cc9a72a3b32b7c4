/*
 * rbench.c - load generator and echo/sink peer for the relay benchmarks.
 *
 * Server side (runs until killed):
 *   rbench serve [-l HOST:PORT] [-T threads]
 *	listen (port 0 picks one; prints "listening port=N") and serve
 *	every connection with the protocol below.
 *   rbench dial -r HOST:PORT [-T threads]
 *	the original relay protocol's server side: connect to the relay's
 *	control port and, for each "[NEW]<port>" line, dial HOST:<port>
 *	and serve that connection.
 *   rbench pool -c HOST:PORT [-n idle] [-T threads]
 *	keep <idle> connections dialled into a rendezvous listener (socat
 *	two-listener relay) and serve each once it carries a client.
 *
 *   rbench wire NETNS_A TUN_A NETNS_B TUN_B MS
 *	a delay line: carry IP packets between two tun devices that live
 *	in two network namespaces (paths such as /run/netns/NAME), each one
 *	<MS> milliseconds late, for kernels without the netem qdisc.
 *
 * Client side (each bounded by -t seconds and a hard alarm):
 *   rbench tput -c HOST:PORT [-P streams] [-t secs] [-d up|down]
 *   rbench lat -c HOST:PORT [-n rtts] [-w warmup] [-t secs] [-H]
 *   rbench connrate -c HOST:PORT [-T threads] [-t secs]
 *   rbench hold -c HOST:PORT -n conns [-b inflight] [-t holdsecs]
 *   rbench ttfb -c HOST:PORT [-n conns] [-t secs]
 * Each prints one "mode key=value ..." line on stdout; exit status 1 when
 * any connection failed.
 *
 * Wire protocol: the client speaks first, so every relay shape (dial
 * back, rendezvous, forwarder) can pair before the server has to act.
 * The first byte is the command:
 *   'E'  echo every byte until EOF (latency)
 *   'H'  the same for held sessions: served from the event loop, so ten
 *        thousand of them cost no threads
 *   'U'  sink until EOF, then reply the byte count as 8 bytes LE, close
 *   'D'  then 8 bytes LE milliseconds: send for that long, then close
 *   'C'  reply one byte 'c' and close (connection rate, first byte)
 */
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RB_BUF (256 * 1024)
#define RB_ECHO_MAX 512
#define RB_MAX_THREADS 64
#define RB_MAX_EVENTS 256
/* A client gives up this long after its own -t bound. */
#define RB_ALARM_SLACK 30

enum srv_state {
	SRV_CMD,    /* waiting for the command byte (pooled: not paired) */
	SRV_HOLD,   /* 'H': echoing from the event loop */
	SRV_REPLY,  /* flushing the last reply, then closing */
	SRV_THREAD, /* 'E', 'U', 'D': handed to a blocking thread */
};

struct srv_worker;

struct srv_conn {
	int fd;
	enum srv_state state;
	int pooled;	 /* counted in the pool until its first byte */
	unsigned events; /* epoll interest now */
	unsigned char cmd;
	unsigned char hdr[8];
	size_t hlen;
	uint64_t count;
	uint64_t deadline;
	unsigned char out[RB_ECHO_MAX];
	size_t out_len;
	size_t out_off;
	struct srv_worker *w;
};

struct srv_worker {
	pthread_t tid;
	int epfd;
	int lfd; /* listener, -1 for none */
	unsigned char *buf;
};

struct rb_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char host[256];
};

static struct srv_worker rb_workers[RB_MAX_THREADS];
static unsigned rb_nworkers = 2;

/* rendezvous pool bookkeeping (rbench pool) */
static pthread_mutex_t rb_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rb_pool_cond = PTHREAD_COND_INITIALIZER;
static unsigned rb_pool_pending;

static volatile sig_atomic_t rb_stop;

static unsigned rb_num(const char *s);

static void
rb_die(const char *what)
{
	fprintf(stderr, "rbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void rb_usage(void) __attribute__((noreturn));

static void
rb_usage(void)
{
	fprintf(stderr,
	    "usage: rbench serve [-l HOST:PORT] [-T threads]\n"
	    "       rbench dial -r HOST:PORT [-T threads]\n"
	    "       rbench pool -c HOST:PORT [-n idle] [-T threads]\n"
	    "       rbench tput -c HOST:PORT [-P streams] [-t secs] "
	    "[-d up|down]\n"
	    "       rbench lat -c HOST:PORT [-n rtts] [-w warmup] [-t secs] "
	    "[-H]\n"
	    "       rbench connrate -c HOST:PORT [-T threads] [-t secs]\n"
	    "       rbench hold -c HOST:PORT -n conns [-b inflight] "
	    "[-t holdsecs]\n"
	    "       rbench ttfb -c HOST:PORT [-n conns] [-t secs]\n"
	    "       rbench wire NETNS_A TUN_A NETNS_B TUN_B MS\n");
	exit(2);
}

static uint64_t
rb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) this process has used so far. */
static double
rb_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
rb_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
rb_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* rb_parse_addr: "HOST:PORT" or "[V6]:PORT" into <a>; -1 on error. */
static int
rb_parse_addr(const char *s, struct rb_addr *a)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0)
		return -1;
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	snprintf(a->host, sizeof(a->host), "%s", host);
	freeaddrinfo(res);
	return 0;
}

static void
rb_set_port(struct rb_addr *a, unsigned port)
{
	if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
}

static void
rb_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* rb_dial: a blocking connect; returns the fd or -1 with errno set. */
static int
rb_dial(const struct rb_addr *a)
{
	int fd, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	rb_nodelay(fd);
	return fd;
}

static int
rb_write_all(int fd, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
rb_read_all(int fd, void *p, size_t n)
{
	unsigned char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A stuck relay must not hang a benchmark: bound every read. */
static void
rb_timeouts(int fd, unsigned secs)
{
	struct timeval tv = {.tv_sec = secs, .tv_usec = 0};

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void
rb_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- server side ---------------------------------------------------- */

static void
srv_pool_release(struct srv_conn *c)
{
	if (!c->pooled)
		return;
	c->pooled = 0;
	pthread_mutex_lock(&rb_pool_lock);
	rb_pool_pending--;
	pthread_cond_signal(&rb_pool_cond);
	pthread_mutex_unlock(&rb_pool_lock);
}

static void
srv_close(struct srv_conn *c)
{
	srv_pool_release(c);
	(void)epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

static int
srv_want(struct srv_conn *c, unsigned events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	if (c->events == events)
		return 0;
	c->events = events;
	return epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* srv_add: adopt connected socket <fd> into worker <w>. */
static int
srv_add(struct srv_worker *w, int fd, int pooled)
{
	struct srv_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;
	int fl = fcntl(fd, F_GETFL);

	if (c == NULL || fl == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		free(c);
		return -1;
	}
	rb_nodelay(fd);
	c->fd = fd;
	c->w = w;
	c->pooled = pooled;
	c->state = SRV_CMD;
	c->events = EPOLLIN;
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		free(c);
		return -1;
	}
	return 0;
}

/* Flush queued output; 1 when all is out, 0 when blocked, -1 on error. */
static int
srv_flush(struct srv_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return errno == EAGAIN ? 0 : -1;
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 1;
}

static int
srv_queue(struct srv_conn *c, const unsigned char *p, size_t n)
{
	if (c->out_len + n > sizeof(c->out))
		return -1;
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

/*
 * srv_feed: run the command state machine over <n> received bytes; bytes
 * after a command for a thread are kept for that thread.
 */
static int
srv_feed(struct srv_conn *c, const unsigned char *p, size_t n)
{
	size_t k;

	if (c->state == SRV_CMD && n > 0) {
		srv_pool_release(c);
		c->cmd = *p++;
		n--;
		switch (c->cmd) {
		case 'E':
		case 'U':
		case 'D':
			c->state = SRV_THREAD;
			break;
		case 'H':
			c->state = SRV_HOLD;
			break;
		case 'C':
			c->state = SRV_REPLY;
			return srv_queue(c, (const unsigned char *)"c", 1);
		default:
			return -1;
		}
	}
	if (n == 0 || c->state == SRV_REPLY)
		return 0;
	if (c->state == SRV_HOLD || c->cmd == 'E')
		return srv_queue(c, p, n);
	if (c->cmd == 'U') {
		c->count += n;
		return 0;
	}
	k = 8 - c->hlen < n ? 8 - c->hlen : n;
	memcpy(c->hdr + c->hlen, p, k);
	c->hlen += k;
	return 0;
}

/*
 * Bulk and latency connections get a thread doing blocking I/O, the way
 * the simplest fast server would: no event loop between the socket and
 * the measurement.
 */
static void *
srv_thread_main(void *arg)
{
	struct srv_conn *c = arg;
	unsigned char *buf = malloc(RB_BUF), cnt[8];
	uint64_t deadline;
	ssize_t n;

	if (buf == NULL)
		goto out;
	if (c->cmd == 'E') {
		if (rb_write_all(c->fd, c->out, c->out_len) == -1)
			goto out;
		for (;;) {
			n = read(c->fd, buf, RB_BUF);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0 || rb_write_all(c->fd, buf, (size_t)n) == -1)
				goto out;
		}
	}
	if (c->cmd == 'U') {
		for (;;) {
			n = read(c->fd, buf, RB_BUF);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				goto out;
			if (n == 0)
				break;
			c->count += (uint64_t)n;
		}
		rb_put64(cnt, c->count);
		(void)rb_write_all(c->fd, cnt, sizeof(cnt));
		goto out;
	}
	if (rb_read_all(c->fd, c->hdr + c->hlen, 8 - c->hlen) == -1)
		goto out;
	memset(buf, 'y', RB_BUF);
	deadline = rb_now() + rb_get64(c->hdr) * 1000000u;
	while (rb_now() < deadline)
		if (rb_write_all(c->fd, buf, RB_BUF) == -1)
			break;
out:
	close(c->fd);
	free(buf);
	free(c);
	return NULL;
}

static void
srv_handoff(struct srv_conn *c)
{
	pthread_attr_t attr;
	pthread_t tid;
	int fl;

	(void)epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	fl = fcntl(c->fd, F_GETFL);
	if (fl == -1 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		close(c->fd);
		free(c);
		return;
	}
	rb_timeouts(c->fd, 60);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, srv_thread_main, c) != 0) {
		close(c->fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

/* srv_io: one readiness event; frees <c> when the connection ends. */
static void
srv_io(struct srv_conn *c, unsigned events)
{
	int r;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) && c->state != SRV_REPLY) {
		ssize_t n;

		do
			n = read(c->fd, c->w->buf, RB_BUF);
		while (n == -1 && errno == EINTR);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			srv_close(c);
			return;
		}
		if (n > 0 && srv_feed(c, c->w->buf, (size_t)n) == -1) {
			srv_close(c);
			return;
		}
		if (c->state == SRV_THREAD) {
			srv_handoff(c);
			return;
		}
	}
	r = srv_flush(c);
	if (r == -1 || (r == 1 && c->state == SRV_REPLY)) {
		srv_close(c);
		return;
	}
	(void)srv_want(c, r == 1 ? EPOLLIN : EPOLLOUT);
}

static void
srv_accept(struct srv_worker *w)
{
	for (;;) {
		int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN: another worker took it */
		}
		if (srv_add(w, fd, 0) == -1)
			close(fd);
	}
}

static void *
srv_worker_main(void *arg)
{
	struct srv_worker *w = arg;
	struct epoll_event ev[RB_MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(w->epfd, ev, RB_MAX_EVENTS, -1);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			rb_die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL)
				srv_accept(w);
			else
				srv_io(ev[i].data.ptr, ev[i].events);
		}
	}
	return NULL;
}

static void
srv_start_workers(int lfd)
{
	for (unsigned i = 0; i < rb_nworkers; i++) {
		struct srv_worker *w = &rb_workers[i];

		w->lfd = lfd;
		w->buf = malloc(RB_BUF);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->buf == NULL || w->epfd == -1)
			rb_die("worker setup");
		if (lfd != -1) {
			/* EXCLUSIVE: wake one worker per new connection */
			struct epoll_event ev = {
			    .events = EPOLLIN | EPOLLEXCLUSIVE,
			    .data.ptr = NULL,
			};

			if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, lfd, &ev) == -1)
				rb_die("epoll_ctl listener");
		}
		if (pthread_create(&w->tid, NULL, srv_worker_main, w) != 0)
			rb_die("pthread_create");
	}
}

static int
cmd_serve(const struct rb_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1, lfd, port;

	lfd = socket(a->ss.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1)
		rb_die("socket");
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (const struct sockaddr *)&a->ss, a->len) == -1)
		rb_die("bind");
	if (listen(lfd, 4096) == -1)
		rb_die("listen");
	if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == -1)
		rb_die("getsockname");
	port = ntohs(ss.ss_family == AF_INET6
		? ((struct sockaddr_in6 *)&ss)->sin6_port
		: ((struct sockaddr_in *)&ss)->sin_port);
	srv_start_workers(lfd);
	printf("listening port=%d\n", port);
	fflush(stdout);
	pthread_join(rb_workers[0].tid, NULL);
	return 0;
}

/*
 * cmd_dial: the original protocol's server.  Announcements come one at a
 * time, so dialling from this thread costs one loopback connect per
 * client and keeps the pairing order the relay expects.
 */
static int
cmd_dial(const struct rb_addr *ctl)
{
	char line[512];
	size_t len = 0;
	unsigned next = 0;
	int cfd;

	cfd = rb_dial(ctl);
	if (cfd == -1)
		rb_die("connect to the control port");
	srv_start_workers(-1);
	printf("registered\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(cfd, line + len, sizeof(line) - 1 - len);
		char *nl;

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "rbench: control connection closed\n");
			return 1;
		}
		len += (size_t)n;
		line[len] = '\0';
		while ((nl = memchr(line, '\n', len)) != NULL) {
			struct rb_addr d = *ctl;
			unsigned long port;
			char *end;
			int fd;

			*nl = '\0';
			if (strncmp(line, "[NEW]", 5) == 0) {
				port = strtoul(line + 5, &end, 10);
				if (port == 0 || port > 65535 ||
				    (*end != '\0' && *end != '\r'))
					goto next_line;
				rb_set_port(&d, (unsigned)port);
				fd = rb_dial(&d);
				if (fd == -1) {
					fprintf(stderr,
					    "rbench: dial %lu: %s\n", port,
					    strerror(errno));
					goto next_line;
				}
				if (srv_add(&rb_workers[next++ % rb_nworkers],
					fd, 0) == -1)
					close(fd);
			}
		next_line:
			len -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, len);
		}
		if (len == sizeof(line) - 1)
			len = 0; /* an absurd line: drop it */
	}
}

/*
 * cmd_pool: a rendezvous relay pairs a client with whatever connection
 * reaches its second listener, which exists only while a client waits,
 * so keep <idle> dials pending and redial after refusals and resets.
 */
static void cmd_pool(const struct rb_addr *a, unsigned idle)
    __attribute__((noreturn));

static void
cmd_pool(const struct rb_addr *a, unsigned idle)
{
	const struct timespec retry = {0, 1000000};
	unsigned next = 0;

	srv_start_workers(-1);
	printf("pooling idle=%u\n", idle);
	fflush(stdout);
	for (;;) {
		int fd;

		pthread_mutex_lock(&rb_pool_lock);
		while (rb_pool_pending >= idle)
			pthread_cond_wait(&rb_pool_cond, &rb_pool_lock);
		pthread_mutex_unlock(&rb_pool_lock);
		fd = rb_dial(a);
		if (fd == -1) {
			nanosleep(&retry, NULL);
			continue;
		}
		pthread_mutex_lock(&rb_pool_lock);
		rb_pool_pending++;
		pthread_mutex_unlock(&rb_pool_lock);
		if (srv_add(&rb_workers[next++ % rb_nworkers], fd, 1) == -1) {
			close(fd);
			pthread_mutex_lock(&rb_pool_lock);
			rb_pool_pending--;
			pthread_mutex_unlock(&rb_pool_lock);
		}
	}
}

/* ---- client side ---------------------------------------------------- */

struct tput_job {
	const struct rb_addr *a;
	pthread_barrier_t *start;
	unsigned secs;
	int up;
	uint64_t bytes;
	uint64_t ns;
	int err;
};

static void *
tput_thread(void *arg)
{
	struct tput_job *j = arg;
	unsigned char *buf = malloc(RB_BUF);
	unsigned char hdr[9], cnt[8];
	uint64_t t0, deadline;
	int fd;

	if (buf == NULL) {
		j->err = 1;
		return NULL;
	}
	memset(buf, 'x', RB_BUF);
	fd = rb_dial(j->a);
	pthread_barrier_wait(j->start);
	if (fd == -1) {
		j->err = 1;
		free(buf);
		return NULL;
	}
	rb_timeouts(fd, j->secs + 10);
	t0 = rb_now();
	deadline = t0 + (uint64_t)j->secs * 1000000000u;
	if (j->up) {
		if (rb_write_all(fd, "U", 1) == -1)
			goto fail;
		while (rb_now() < deadline) {
			if (rb_write_all(fd, buf, RB_BUF) == -1)
				goto fail;
			j->bytes += RB_BUF;
		}
		if (shutdown(fd, SHUT_WR) == -1 ||
		    rb_read_all(fd, cnt, sizeof(cnt)) == -1)
			goto fail;
		if (rb_get64(cnt) != j->bytes) {
			fprintf(stderr, "rbench: sent %llu, server got %llu\n",
			    (unsigned long long)j->bytes,
			    (unsigned long long)rb_get64(cnt));
			goto fail;
		}
	} else {
		hdr[0] = 'D';
		rb_put64(hdr + 1, (uint64_t)j->secs * 1000u);
		if (rb_write_all(fd, hdr, sizeof(hdr)) == -1)
			goto fail;
		for (;;) {
			ssize_t n = read(fd, buf, RB_BUF);

			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				goto fail;
			if (n == 0)
				break;
			j->bytes += (uint64_t)n;
		}
	}
	j->ns = rb_now() - t0;
	close(fd);
	free(buf);
	return NULL;
fail:
	fprintf(stderr, "rbench: tput stream: %s\n", strerror(errno));
	j->err = 1;
	close(fd);
	free(buf);
	return NULL;
}

static int
cmd_tput(const struct rb_addr *a, unsigned streams, unsigned secs, int up)
{
	struct tput_job jobs[RB_MAX_THREADS];
	pthread_t tid[RB_MAX_THREADS];
	pthread_barrier_t start;
	uint64_t bytes = 0, ns = 0;
	int err = 0;

	pthread_barrier_init(&start, NULL, streams);
	for (unsigned i = 0; i < streams; i++) {
		jobs[i] = (struct tput_job){.a = a,
		    .start = &start,
		    .secs = secs,
		    .up = up};
		if (pthread_create(&tid[i], NULL, tput_thread, &jobs[i]) != 0)
			rb_die("pthread_create");
	}
	for (unsigned i = 0; i < streams; i++) {
		pthread_join(tid[i], NULL);
		bytes += jobs[i].bytes;
		if (jobs[i].ns > ns)
			ns = jobs[i].ns;
		err += jobs[i].err;
	}
	printf("tput streams=%u dir=%s gbps=%.3f bytes=%llu secs=%.3f "
	       "err=%d\n",
	    streams, up ? "up" : "down",
	    ns ? (double)bytes * 8 / (double)ns : 0.0,
	    (unsigned long long)bytes, (double)ns / 1e9, err);
	return err ? 1 : 0;
}

static int
rb_cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of sorted <v>. */
static uint64_t
rb_pct(const uint64_t *v, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (k == 0)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

/*
 * cmd_lat: <hold> pings through the server's event loop ('H') instead of
 * a thread of its own, to see whether that loop stalls.
 */
static int
cmd_lat(const struct rb_addr *a, unsigned n, unsigned warm, unsigned secs,
    int hold)
{
	uint64_t *v = calloc(n ? n : 1, sizeof(*v));
	uint64_t deadline, sum = 0;
	unsigned char b = 'p';
	unsigned done = 0;
	int fd;

	if (v == NULL)
		rb_die("calloc");
	fd = rb_dial(a);
	if (fd == -1)
		rb_die("connect");
	rb_timeouts(fd, 10);
	if (rb_write_all(fd, hold ? "H" : "E", 1) == -1)
		rb_die("write");
	deadline = rb_now() + (uint64_t)secs * 1000000000u;
	for (unsigned i = 0; i < warm + n; i++) {
		uint64_t t0 = rb_now(), t1;

		if (t0 >= deadline)
			break;
		if (rb_write_all(fd, &b, 1) == -1 ||
		    rb_read_all(fd, &b, 1) == -1)
			rb_die("ping-pong");
		t1 = rb_now();
		if (i >= warm) {
			v[done++] = t1 - t0;
			sum += t1 - t0;
		}
	}
	close(fd);
	if (done == 0) {
		fprintf(stderr, "rbench: no round trip within %us\n", secs);
		return 1;
	}
	qsort(v, done, sizeof(*v), rb_cmp_u64);
	printf("lat n=%u p50_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f\n",
	    done, rb_pct(v, done, 50) / 1e3, rb_pct(v, done, 99) / 1e3,
	    (double)sum / done / 1e3, v[done - 1] / 1e3);
	free(v);
	return 0;
}

struct conn_job {
	const struct rb_addr *a;
	pthread_barrier_t *start;
	uint64_t deadline;
	uint64_t ok;
	uint64_t err;
	int last_errno;
};

/* conn_once: connect, 'C', expect 'c' then EOF; 0 or -1. */
static int
conn_once(const struct rb_addr *a)
{
	unsigned char b;
	ssize_t n;
	int fd = rb_dial(a);

	if (fd == -1)
		return -1;
	rb_timeouts(fd, 5);
	if (rb_write_all(fd, "C", 1) == -1 || rb_read_all(fd, &b, 1) == -1 ||
	    b != 'c')
		goto fail;
	do
		n = read(fd, &b, 1);
	while (n == -1 && errno == EINTR);
	if (n != 0)
		goto fail;
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static void *
conn_thread(void *arg)
{
	struct conn_job *j = arg;

	pthread_barrier_wait(j->start);
	while (rb_now() < j->deadline) {
		if (conn_once(j->a) == 0) {
			j->ok++;
		} else {
			j->err++;
			j->last_errno = errno;
		}
	}
	return NULL;
}

static int
cmd_connrate(const struct rb_addr *a, unsigned threads, unsigned secs)
{
	struct conn_job jobs[RB_MAX_THREADS];
	pthread_t tid[RB_MAX_THREADS];
	pthread_barrier_t start;
	uint64_t ok = 0, err = 0, t0;
	int last = 0;

	pthread_barrier_init(&start, NULL, threads + 1);
	for (unsigned i = 0; i < threads; i++) {
		jobs[i] = (struct conn_job){.a = a, .start = &start};
		if (pthread_create(&tid[i], NULL, conn_thread, &jobs[i]) != 0)
			rb_die("pthread_create");
	}
	t0 = rb_now();
	for (unsigned i = 0; i < threads; i++)
		jobs[i].deadline = t0 + (uint64_t)secs * 1000000000u;
	pthread_barrier_wait(&start);
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		ok += jobs[i].ok;
		err += jobs[i].err;
		if (jobs[i].err)
			last = jobs[i].last_errno;
	}
	t0 = rb_now() - t0;
	printf("connrate threads=%u cps=%.0f ok=%llu err=%llu secs=%.3f "
	       "cpu_s=%.3f\n",
	    threads, (double)ok / ((double)t0 / 1e9), (unsigned long long)ok,
	    (unsigned long long)err, (double)t0 / 1e9, rb_cpu_s());
	if (err)
		fprintf(stderr, "rbench: connrate: last error: %s\n",
		    strerror(last));
	return err ? 1 : 0;
}

static int
cmd_ttfb(const struct rb_addr *a, unsigned n, unsigned secs)
{
	uint64_t *v = calloc(n ? n : 1, sizeof(*v));
	uint64_t deadline = rb_now() + (uint64_t)secs * 1000000000u;
	unsigned done = 0, err = 0;

	if (v == NULL)
		rb_die("calloc");
	for (unsigned i = 0; i < n && rb_now() < deadline; i++) {
		uint64_t t0 = rb_now();
		unsigned char b;
		int fd = rb_dial(a);

		if (fd == -1) {
			err++;
			continue;
		}
		rb_timeouts(fd, 10);
		if (rb_write_all(fd, "C", 1) == -1 ||
		    rb_read_all(fd, &b, 1) == -1 || b != 'c') {
			err++;
			close(fd);
			continue;
		}
		v[done++] = rb_now() - t0;
		close(fd);
	}
	if (done == 0) {
		fprintf(stderr, "rbench: ttfb: no successful connection\n");
		return 1;
	}
	qsort(v, done, sizeof(*v), rb_cmp_u64);
	printf("ttfb n=%u p50_ms=%.2f min_ms=%.2f max_ms=%.2f err=%u\n", done,
	    rb_pct(v, done, 50) / 1e6, v[0] / 1e6, v[done - 1] / 1e6, err);
	free(v);
	return err ? 1 : 0;
}

enum hold_state {
	HOLD_IDLE,	 /* not started */
	HOLD_CONNECTING, /* non-blocking connect in progress */
	HOLD_CHECKING,	 /* "Hx" sent, waiting for 'x' back */
	HOLD_HELD,	 /* verified end to end, now idle */
	HOLD_FAILED,
};

struct hold_conn {
	int fd;
	enum hold_state state;
};

static void
hold_on_signal(int sig)
{
	(void)sig;
	rb_stop = 1;
}

static int
hold_fail(int epfd, struct hold_conn *h)
{
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, h->fd, NULL);
	close(h->fd);
	h->fd = -1;
	h->state = HOLD_FAILED;
	return 1;
}

/* hold_start: begin a non-blocking connect; returns 1 on failure. */
static int
hold_start(int epfd, const struct rb_addr *a, struct hold_conn *h)
{
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = h};

	h->fd = socket(a->ss.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->fd == -1) {
		h->state = HOLD_FAILED;
		return 1;
	}
	h->state = HOLD_CONNECTING;
	if (connect(h->fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS)
		return hold_fail(-1, h);
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, h->fd, &ev) == -1)
		return hold_fail(-1, h);
	return 0;
}

/* hold_event: advance one connection; returns 1 when it leaves flight. */
static int
hold_event(int epfd, struct hold_conn *h)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = h};
	socklen_t sl = sizeof(int);
	unsigned char b;
	int soerr = 0;

	if (h->state == HOLD_CONNECTING) {
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ==
			-1 ||
		    soerr != 0)
			return hold_fail(epfd, h);
		if (send(h->fd, "Hx", 2, MSG_NOSIGNAL) != 2 ||
		    epoll_ctl(epfd, EPOLL_CTL_MOD, h->fd, &ev) == -1)
			return hold_fail(epfd, h);
		h->state = HOLD_CHECKING;
		return 0;
	}
	if (read(h->fd, &b, 1) != 1 || b != 'x')
		return hold_fail(epfd, h);
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, h->fd, NULL);
	h->state = HOLD_HELD;
	return 1;
}

/*
 * cmd_hold: open <n> sessions, at most <inflight> being set up at once,
 * check each with one echoed byte, print the count, then keep them open
 * for <secs> or until SIGTERM/SIGINT.
 */
static int
cmd_hold(const struct rb_addr *a, unsigned n, unsigned inflight, unsigned secs)
{
	struct hold_conn *h = calloc(n ? n : 1, sizeof(*h));
	struct epoll_event ev[RB_MAX_EVENTS];
	uint64_t t0 = rb_now(), setup_deadline, end;
	unsigned next = 0, flying = 0, held = 0, err = 0;
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (h == NULL || epfd == -1)
		rb_die("hold setup");
	signal(SIGTERM, hold_on_signal);
	signal(SIGINT, hold_on_signal);
	/* setting up must not take longer than holding is allowed to */
	setup_deadline = t0 + (uint64_t)(60 + n / 100) * 1000000000u;
	while ((next < n || flying > 0) && !rb_stop) {
		int k;

		while (next < n && flying < inflight) {
			if (hold_start(epfd, a, &h[next++]))
				err++;
			else
				flying++;
		}
		if (rb_now() > setup_deadline)
			break;
		k = epoll_wait(epfd, ev, RB_MAX_EVENTS, 100);
		for (int i = 0; i < k; i++) {
			struct hold_conn *c = ev[i].data.ptr;

			if (hold_event(epfd, c)) {
				flying--;
				if (c->state == HOLD_HELD)
					held++;
				else
					err++;
			}
		}
	}
	err = n - held;
	printf("hold asked=%u held=%u err=%u secs=%.3f\n", n, held, err,
	    (double)(rb_now() - t0) / 1e9);
	fflush(stdout);
	end = rb_now() + (uint64_t)secs * 1000000000u;
	while (!rb_stop && rb_now() < end) {
		const struct timespec tick = {0, 50000000};

		nanosleep(&tick, NULL);
	}
	for (unsigned i = 0; i < n; i++)
		if (h[i].fd > 0)
			close(h[i].fd);
	free(h);
	return err ? 1 : 0;
}

/* ---- delay line ------------------------------------------------------ */

#define WIRE_SLOTS 4096
#define WIRE_MTU 2048

/* One direction: a FIFO of packets, each due at a fixed delay. */
struct wire_queue {
	unsigned char (*pkt)[WIRE_MTU];
	uint16_t len[WIRE_SLOTS];
	uint64_t due[WIRE_SLOTS];
	size_t head;
	size_t count;
	uint64_t dropped;
};

/* wire_open: attach to tun device <dev> inside network namespace <ns>. */
static int
wire_open(const char *ns, const char *dev)
{
	struct ifreq ifr;
	int nfd, fd;

	nfd = open(ns, O_RDONLY | O_CLOEXEC);
	if (nfd == -1)
		rb_die(ns);
	/* only this thread moves; the fd keeps its namespace afterwards */
	if (setns(nfd, CLONE_NEWNET) == -1)
		rb_die("setns");
	close(nfd);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		rb_die("/dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1)
		rb_die(dev);
	return fd;
}

/* Read every waiting packet from <fd> into <q>, due <delay> from now. */
static void
wire_take(int fd, struct wire_queue *q, uint64_t delay)
{
	for (;;) {
		size_t slot = (q->head + q->count) % WIRE_SLOTS;
		unsigned char spill[WIRE_MTU];
		unsigned char *dst =
		    q->count < WIRE_SLOTS ? q->pkt[slot] : spill;
		ssize_t n = read(fd, dst, WIRE_MTU);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (dst == spill) {
			q->dropped++; /* a full queue drops, like a router */
			continue;
		}
		q->len[slot] = (uint16_t)n;
		q->due[slot] = rb_now() + delay;
		q->count++;
	}
}

/* Write the packets that are due to <fd>; returns ns until the next. */
static int64_t
wire_give(int fd, struct wire_queue *q)
{
	while (q->count > 0) {
		uint64_t now = rb_now();

		if (q->due[q->head] > now)
			return (int64_t)(q->due[q->head] - now);
		/* a full tun queue loses the packet, as a wire would */
		if (write(fd, q->pkt[q->head], q->len[q->head]) == -1)
			q->dropped++;
		q->head = (q->head + 1) % WIRE_SLOTS;
		q->count--;
	}
	return -1;
}

static void cmd_wire(char **argv) __attribute__((noreturn));

static void
cmd_wire(char **argv)
{
	static struct wire_queue q[2];
	uint64_t delay = (uint64_t)rb_num(argv[4]) * 1000000u;
	struct pollfd pfd[2];
	int fd[2];

	fd[0] = wire_open(argv[0], argv[1]);
	fd[1] = wire_open(argv[2], argv[3]);
	for (int i = 0; i < 2; i++) {
		q[i].pkt = calloc(WIRE_SLOTS, WIRE_MTU);
		if (q[i].pkt == NULL)
			rb_die("calloc");
		pfd[i].fd = fd[i];
		pfd[i].events = POLLIN;
	}
	printf("wire ready delay_ms=%s\n", argv[4]);
	fflush(stdout);
	for (;;) {
		int64_t wait = -1, w;
		struct timespec ts, *tp = NULL;

		/* q[i] holds what came out of fd[i], bound for the other */
		for (int i = 0; i < 2; i++) {
			w = wire_give(fd[1 - i], &q[i]);
			if (w >= 0 && (wait < 0 || w < wait))
				wait = w;
		}
		if (wait >= 0) {
			ts.tv_sec = wait / 1000000000;
			ts.tv_nsec = wait % 1000000000;
			tp = &ts;
		}
		if (ppoll(pfd, 2, tp, NULL) == -1 && errno != EINTR)
			rb_die("ppoll");
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents & POLLIN)
				wire_take(fd[i], &q[i], delay);
	}
}

static unsigned
rb_num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v > 100000000)
		rb_usage();
	return (unsigned)v;
}

int
main(int argc, char **argv)
{
	struct rb_addr a;
	const char *mode, *addr = NULL;
	unsigned streams = 1, secs = 3, n = 0, warm = 2000, threads = 0;
	unsigned inflight = 64;
	int up = 1, hold = 0, opt, r;

	if (argc < 2)
		rb_usage();
	mode = argv[1];
	if (strcmp(mode, "wire") == 0) {
		if (argc != 7)
			rb_usage();
		cmd_wire(argv + 2);
	}
	optind = 2;
	while ((opt = getopt(argc, argv, "l:r:c:P:t:d:n:w:T:b:H")) != -1) {
		switch (opt) {
		case 'H':
			hold = 1;
			break;
		case 'l':
		case 'r':
		case 'c':
			addr = optarg;
			break;
		case 'P':
			streams = rb_num(optarg);
			break;
		case 't':
			secs = rb_num(optarg);
			break;
		case 'd':
			if (strcmp(optarg, "up") != 0 &&
			    strcmp(optarg, "down") != 0)
				rb_usage();
			up = strcmp(optarg, "up") == 0;
			break;
		case 'n':
			n = rb_num(optarg);
			break;
		case 'w':
			warm = rb_num(optarg);
			break;
		case 'T':
			threads = rb_num(optarg);
			break;
		case 'b':
			inflight = rb_num(optarg);
			break;
		default:
			rb_usage();
		}
	}
	if (optind != argc || streams == 0 || streams > RB_MAX_THREADS ||
	    threads > RB_MAX_THREADS || inflight == 0)
		rb_usage();
	if (addr == NULL)
		addr = strcmp(mode, "serve") == 0 ? "127.0.0.1:0" : NULL;
	if (addr == NULL || rb_parse_addr(addr, &a) == -1) {
		fprintf(stderr, "rbench: need a HOST:PORT address\n");
		rb_usage();
	}
	signal(SIGPIPE, SIG_IGN);
	rb_raise_nofile();
	if (threads)
		rb_nworkers = threads;

	if (strcmp(mode, "serve") == 0)
		return cmd_serve(&a);
	if (strcmp(mode, "dial") == 0)
		return cmd_dial(&a);
	if (strcmp(mode, "pool") == 0)
		cmd_pool(&a, n ? n : 4);

	/* clients: never outlive their bound, whatever the peer does */
	if (strcmp(mode, "hold") == 0) {
		alarm(secs + 120 + n / 50);
		return cmd_hold(&a, n, inflight, secs);
	}
	alarm(secs + RB_ALARM_SLACK);
	if (strcmp(mode, "tput") == 0)
		r = cmd_tput(&a, streams, secs, up);
	else if (strcmp(mode, "lat") == 0)
		r = cmd_lat(&a, n ? n : 20000, warm, secs, hold);
	else if (strcmp(mode, "connrate") == 0)
		r = cmd_connrate(&a, threads ? threads : 8, secs);
	else if (strcmp(mode, "ttfb") == 0)
		r = cmd_ttfb(&a, n ? n : 20, secs);
	else
		rb_usage();
	return r;
}
