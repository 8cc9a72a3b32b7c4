/*
 * stats.c - Prometheus-format metrics for operators.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "relayd.h"
#include "stats.h"

#define STATS_MAX_CONNS 16
#define STATS_REQ_MAX 2048

/* A copy of what the endpoint shows of a registration, so the main
 * thread never reads a worker's structures. */
struct stats_reg {
	const struct reg *reg;
	struct reg_share *share; /* a reference of ours: live counts */
	unsigned long long id;
	char peer[64];
	unsigned cport, sport;
};

enum stats_conn_state {
	STATS_CONN_READING, /* the request line, or an HTTP request's head */
	STATS_CONN_WRITING, /* the answer, as fast as the peer takes it */
};

/* One metrics request; both states together are bounded by its timer,
 * and neither ever blocks the main thread, which accepts servers. */
struct stats_conn {
	ev_io io;
	ev_timer timer;
	enum stats_conn_state state;
	int fd;
	size_t len;
	char req[STATS_REQ_MAX];
	char head[160]; /* STATS_CONN_WRITING: HTTP head (GET only) */
	char *out;	/* the metrics text */
	size_t headlen, outlen, outoff; /* outoff counts head and text */
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stats_reg *stats_regs;
static size_t stats_nregs, stats_capregs;
static int stats_fd = -1;
static char stats_unix_path[108];
static ev_io stats_io;
static struct accept_pause stats_pause;
static time_t stats_started;
static unsigned stats_nconns;

void
stats_reg_add(struct reg *reg)
{
	pthread_mutex_lock(&stats_lock);
	if (stats_nregs == stats_capregs) {
		size_t cap = stats_capregs ? stats_capregs * 2 : 64;
		struct stats_reg *n = realloc(stats_regs, cap * sizeof(*n));

		if (n == NULL) {
			pthread_mutex_unlock(&stats_lock);
			return;
		}
		stats_regs = n;
		stats_capregs = cap;
	}
	memset(&stats_regs[stats_nregs], 0, sizeof(stats_regs[0]));
	atomic_fetch_add(&reg->share->refs, 1);
	stats_regs[stats_nregs].share = reg->share;
	stats_regs[stats_nregs++].reg = reg;
	pthread_mutex_unlock(&stats_lock);
	stats_reg_update(reg);
}

void
stats_reg_update(struct reg *reg)
{
	pthread_mutex_lock(&stats_lock);
	for (size_t i = 0; i < stats_nregs; i++) {
		struct stats_reg *r = &stats_regs[i];

		if (r->reg != reg)
			continue;
		r->id = (unsigned long long)reg->id;
		snprintf(r->peer, sizeof(r->peer), "%s", reg->peer_str);
		r->cport = reg->cport;
		r->sport = reg->sport;
		break;
	}
	pthread_mutex_unlock(&stats_lock);
}

void
stats_reg_remove(struct reg *reg)
{
	pthread_mutex_lock(&stats_lock);
	for (size_t i = 0; i < stats_nregs; i++) {
		if (stats_regs[i].reg == reg) {
			reg_share_release(stats_regs[i].share);
			stats_regs[i] = stats_regs[--stats_nregs];
			break;
		}
	}
	pthread_mutex_unlock(&stats_lock);
}

/* Renders the metrics into a malloc'd string. */
static char *
stats_render(size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
#define G(name, help, type, val) \
	fprintf(f, \
	    "# HELP relayd_" name " " help "\n# TYPE relayd_" name " " type \
	    "\nrelayd_" name " %llu\n", \
	    (unsigned long long)(val))
	G("uptime_seconds", "Seconds since relayd started.", "gauge",
	    time(NULL) - stats_started);
	G("registrations", "Registrations open now.", "gauge",
	    atomic_load(&stats.regs));
	G("registrations_total", "Registrations accepted since start.",
	    "counter", atomic_load(&stats.regs_total));
	G("sessions", "Relayed sessions open now.", "gauge",
	    atomic_load(&stats.sessions));
	G("sessions_total", "Sessions paired since start.", "counter",
	    atomic_load(&stats.sessions_total));
	G("clients_queued", "Clients waiting for a data connection.", "gauge",
	    atomic_load(&stats.queued));
	fprintf(f,
	    "# HELP relayd_bytes_total Bytes relayed (of sessions "
	    "that ended).\n# TYPE relayd_bytes_total counter\n");
	fprintf(f, "relayd_bytes_total{direction=\"client_to_server\"} %llu\n",
	    (unsigned long long)atomic_load(&stats.bytes_c2s));
	fprintf(f, "relayd_bytes_total{direction=\"server_to_client\"} %llu\n",
	    (unsigned long long)atomic_load(&stats.bytes_s2c));
	fprintf(f,
	    "# HELP relayd_errors_total Errors by kind.\n"
	    "# TYPE relayd_errors_total counter\n");
#define E(kind, field) \
	fprintf(f, "relayd_errors_total{kind=\"" kind "\"} %llu\n", \
	    (unsigned long long)atomic_load(&stats.field))
	E("accept", err_accept);
	E("limit", err_limit);
	E("data_timeout", err_timeout);
	E("stray_data_connection", err_stray);
	E("protocol", err_proto);
	E("auth", err_auth);
	E("io", err_io);
#undef E
#undef G
	fprintf(f,
	    "# HELP relayd_registration_sessions Sessions open per "
	    "registration.\n# TYPE relayd_registration_sessions "
	    "gauge\n");
	pthread_mutex_lock(&stats_lock);
	for (size_t i = 0; i < stats_nregs; i++) {
		const struct stats_reg *r = &stats_regs[i];

		fprintf(f,
		    "relayd_registration_sessions{id=\"%llu\",peer=\"%s\","
		    "public_port=\"%u\",server_port=\"%u\"} %u\n",
		    r->id, r->peer, r->cport, r->sport,
		    atomic_load(&r->share->sessions));
	}
	fprintf(f,
	    "# HELP relayd_registration_queued Clients waiting per "
	    "registration.\n# TYPE relayd_registration_queued gauge\n");
	for (size_t i = 0; i < stats_nregs; i++) {
		const struct stats_reg *r = &stats_regs[i];

		fprintf(f,
		    "relayd_registration_queued{id=\"%llu\",peer=\"%s\","
		    "public_port=\"%u\",server_port=\"%u\"} %u\n",
		    r->id, r->peer, r->cport, r->sport,
		    atomic_load(&r->share->queued));
	}
	pthread_mutex_unlock(&stats_lock);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*outlen = len;
	return buf;
}

static void
stats_conn_close(struct ev_loop *loop, struct stats_conn *c)
{
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	free(c->out);
	free(c);
	stats_nconns--;
}

static void
stats_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct stats_conn *c = w->data;

	(void)revents;
	while (c->outoff < c->headlen + c->outlen) {
		struct iovec iov[2];
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 0};
		size_t off = c->outoff;
		ssize_t n;

		if (off < c->headlen) {
			iov[mh.msg_iovlen++] =
			    (struct iovec){c->head + off, c->headlen - off};
			off = 0;
		} else
			off -= c->headlen;
		iov[mh.msg_iovlen++] =
		    (struct iovec){c->out + off, c->outlen - off};
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			stats_conn_close(loop, c);
			return;
		}
		c->outoff += (size_t)n;
	}
	(void)shutdown(c->fd, SHUT_WR);
	stats_conn_close(loop, c);
}

/* The answer to a complete request: the text, after HTTP headers for a
 * GET.  Returns 0, or -1 out of memory. */
static int
stats_answer(struct stats_conn *c, int http)
{
	c->out = stats_render(&c->outlen);
	if (c->out == NULL)
		return -1;
	if (http)
		c->headlen = (size_t)snprintf(c->head, sizeof(c->head),
		    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
		    "version=0.0.4\r\nContent-Length: %zu\r\nConnection: "
		    "close\r\n\r\n",
		    c->outlen);
	return 0;
}

static void
stats_conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct stats_conn *c = w->data;
	ssize_t n;
	int http;

	(void)revents;
	n = recv(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		stats_conn_close(loop, c);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	http = strncmp(c->req, "GET ", 4) == 0;
	if (http ? strstr(c->req, "\r\n\r\n") == NULL &&
		    strstr(c->req, "\n\n") == NULL
		 : strchr(c->req, '\n') == NULL) {
		if (c->len == sizeof(c->req) - 1)
			stats_conn_close(loop, c);
		return;
	}
	if (stats_answer(c, http) == -1) {
		stats_conn_close(loop, c);
		return;
	}
	c->state = STATS_CONN_WRITING;
	ev_io_stop(loop, &c->io);
	ev_io_init(&c->io, stats_write_cb, c->fd, EV_WRITE);
	c->io.data = c;
	ev_io_start(loop, &c->io);
	stats_write_cb(loop, &c->io, EV_WRITE);
}

static void
stats_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct stats_conn *c = w->data;

	(void)revents;
	log_debug("metrics: %s within 5 s; closed",
	    c->state == STATS_CONN_READING
		? "no complete request"
		: "the reader did not take the answer");
	stats_conn_close(loop, c);
}

static void
stats_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct stats_conn *c;
	int fd;

	(void)revents;
	fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK ||
		    net_accept_is_temporary(errno))
			return;
		/* Out of fds or memory: the listener stays readable, so
		 * pause it instead of spinning the main loop. */
		accept_pause_start(loop, &stats_pause);
		return;
	}
	if (stats_nconns >= STATS_MAX_CONNS ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	stats_nconns++;
	c->fd = fd;
	c->state = STATS_CONN_READING;
	ev_io_init(&c->io, stats_conn_cb, fd, EV_READ);
	ev_timer_init(&c->timer, stats_timeout_cb, 5.0, 0.);
	c->io.data = c->timer.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_start(loop, &c->timer);
}

/*
 * stats_check: whether -stats <addr> can be served, short of binding it:
 * a host:port, or a path that is free or holds a socket.  Shared by -t
 * and stats_listen().  Returns 0, or -1 after printing why on stderr.
 */
int
stats_check(const char *addr)
{
	struct sockaddr_un sun;
	char host[256];
	unsigned port;
	struct stat st;

	if (addr[0] != '/') {
		if (net_parse_hostport(addr, host, sizeof(host), &port) == -1) {
			fprintf(stderr,
			    "relayd: -stats wants host:port or /path, got %s\n",
			    addr);
			return -1;
		}
		return 0;
	}
	if (strlen(addr) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "relayd: -stats path too long\n");
		return -1;
	}
	/* A mistyped path must not cost the operator a file. */
	if (lstat(addr, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr,
		    "relayd: -stats %s: exists and is not a socket\n", addr);
		return -1;
	}
	return 0;
}

int
stats_listen(const char *addr)
{
	char err[NET_ERR_LEN], host[256];
	unsigned port;

	stats_started = time(NULL);
	if (stats_check(addr) == -1)
		return -1;
	if (addr[0] == '/') {
		struct sockaddr_un sun;
		struct stat st;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		strcpy(sun.sun_path, addr);
		/* A socket left there is a stale one of ours. */
		if (lstat(addr, &st) == 0 && S_ISSOCK(st.st_mode))
			(void)unlink(addr);
		stats_fd = socket(AF_UNIX,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (stats_fd == -1 ||
		    bind(stats_fd, (struct sockaddr *)&sun, sizeof(sun)) ==
			-1 ||
		    listen(stats_fd, 16) == -1) {
			fprintf(stderr, "relayd: -stats %s: %s\n", addr,
			    strerror(errno));
			return -1;
		}
		snprintf(stats_unix_path, sizeof(stats_unix_path), "%s", addr);
		return 0;
	}
	(void)net_parse_hostport(addr, host, sizeof(host), &port);
	stats_fd = net_listen(host, port, 16, err, sizeof(err));
	if (stats_fd == -1) {
		fprintf(stderr, "relayd: -stats: %s\n", err);
		return -1;
	}
	return 0;
}

void
stats_start(struct ev_loop *loop)
{
	if (stats_started == 0)
		stats_started = time(NULL);
	if (stats_fd == -1)
		return;
	ev_io_init(&stats_io, stats_accept_cb, stats_fd, EV_READ);
	accept_pause_init(&stats_pause, &stats_io, NULL, NULL, NULL);
	ev_io_start(loop, &stats_io);
	if (stats_unix_path[0] != '\0')
		log_info("relayd: metrics at %s", stats_unix_path);
	else
		log_info("relayd: metrics on port %u",
		    net_local_port(stats_fd));
}

void
stats_stop(struct ev_loop *loop)
{
	if (stats_fd == -1)
		return;
	ev_io_stop(loop, &stats_io);
	accept_pause_stop(loop, &stats_pause);
	close(stats_fd);
	if (stats_unix_path[0] != '\0')
		unlink(stats_unix_path);
	free(stats_regs);
	stats_regs = NULL;
}
