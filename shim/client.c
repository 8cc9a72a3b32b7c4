/*
 * client.c - the server side of the relay protocol (see client.h).
 *
 * Against a relay of the original protocol the [HELLO] this sends is
 * never read (the original never reads its control connection) and no
 * [OK] comes back: after hello_wait of silence, or at the first [NEW],
 * the client carries on in the original protocol.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "log.h"
#include "net.h"

#define RC_BACKOFF_MIN 0.2
#define RC_BACKOFF_MAX 5.0
#define RC_TAKEN_RETRY 0.5 /* a first registration's taken port: again */
#define RC_DIAL_TIMEOUT 10.0
#define RC_DIALS_MAX 1024 /* dial-backs in flight; more [NEW]s are ignored */

/* A data connection being dialled back to the relay. */
struct rdial {
	struct rclient *rc;
	int fd;
	ev_io io;
	ev_timer timer;
	int has_from;
	struct sockaddr_storage from;
	char line[PROTO_LINE_MAX]; /* [DATA] line, extensions only */
	size_t line_len;
};

static void rclient_connect(struct rclient *rc);
static void rclient_pool_fill(struct rclient *rc);
static void rpool_free(struct rpool *p);

static void
rclient_close_fd(struct rclient *rc)
{
	/* Pooled connections belong to the registration that just ended. */
	while (!TAILQ_EMPTY(&rc->pools))
		rpool_free(TAILQ_FIRST(&rc->pools));
	ev_timer_stop(rc->loop, &rc->pool_timer);
	ev_io_stop(rc->loop, &rc->rd);
	ev_io_stop(rc->loop, &rc->wr);
	ev_timer_stop(rc->loop, &rc->timer);
	ev_timer_stop(rc->loop, &rc->ka_timer);
	if (rc->fd != -1)
		close(rc->fd);
	rc->fd = -1;
	rc->in_len = 0;
}

/* The control connection is gone: report or retry. */
static void
rclient_lost(struct rclient *rc, int err, const char *why)
{
	rclient_close_fd(rc);
	if (!rc->registered_once) {
		rc->ops->failed(rc, err, why);
		return;
	}
	/* A registration that lasted is a fresh start; one the relay ends
	 * at once (a full relay closes new control connections) keeps
	 * doubling the pause instead of retrying five times a second. */
	if (rc->state == RC_READY &&
	    ev_now(rc->loop) - rc->registered_at >= RC_BACKOFF_MAX)
		rc->backoff = RC_BACKOFF_MIN;
	log_warnx("relay %s:%u: %s; registering again in %.1fs", rc->host,
	    rc->port, why, rc->backoff);
	rc->state = RC_BACKOFF;
	ev_timer_set(&rc->timer, rc->backoff, 0.);
	ev_timer_start(rc->loop, &rc->timer);
	rc->backoff *= 2;
	if (rc->backoff > RC_BACKOFF_MAX)
		rc->backoff = RC_BACKOFF_MAX;
}

static int
rclient_send(struct rclient *rc, const struct proto_msg *m)
{
	char line[PROTO_LINE_MAX];
	int n = proto_format(line, sizeof(line), m);

	/* Lines are tiny; a control connection too full for one is dead. */
	if (n == -1 ||
	    send(rc->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		rclient_lost(rc, errno ? errno : EPIPE,
		    "cannot write to the control connection");
		return -1;
	}
	return 0;
}

static void
rclient_registered(struct rclient *rc, unsigned public_port)
{
	rc->state = RC_READY;
	rc->registered_at = ev_now(rc->loop);
	ev_timer_stop(rc->loop, &rc->timer);
	rc->public_port = public_port;
	rc->port_taken_at = 0;
	if (public_port != 0)
		rc->want_port = public_port; /* ask for it back next time */
	if (rc->registered_once && public_port != 0)
		log_info("relay %s:%u: registered again, public port %u",
		    rc->host, rc->port, public_port);
	else if (rc->registered_once)
		log_info("relay %s:%u: registered again", rc->host, rc->port);
	rc->registered_once = 1;
	if (rc->ka > 0 && (rc->ext_ok || public_port != 0)) {
		ev_timer_set(&rc->ka_timer, rc->ka, rc->ka);
		ev_timer_again(rc->loop, &rc->ka_timer);
	}
	rc->ops->ready(rc, public_port);
}

static void
rdial_free(struct rdial *d, int close_fd)
{
	ev_io_stop(d->rc->loop, &d->io);
	ev_timer_stop(d->rc->loop, &d->timer);
	if (close_fd && d->fd != -1)
		close(d->fd);
	d->rc->dials--;
	free(d);
}

/* Send what is left of the [DATA] line: 0 when all of it is out, 1 to
 * wait until writable, -1 on an error (errno). */
static int
rdial_send(struct rdial *d)
{
	ssize_t n;

	if (d->line_len == 0)
		return 0;
	n = send(d->fd, d->line, d->line_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == -1)
		return errno == EAGAIN || errno == EINPROGRESS ? 1 : -1;
	memmove(d->line, d->line + n, d->line_len - (size_t)n);
	d->line_len -= (size_t)n;
	return d->line_len == 0 ? 0 : 1;
}

/* The data connection is made (<err> 0) or failed: hand it over. */
static void
rdial_finish(struct rdial *d, int err)
{
	struct rclient *rc = d->rc;
	int fd = d->fd;

	if (err != 0) {
		log_warnx("relay %s:%u: data connection failed: %s", rc->host,
		    rc->port, strerror(err));
		rdial_free(d, 1);
		return;
	}
	net_tune(fd);
	if (d->has_from) {
		struct sockaddr_storage from = d->from;

		rdial_free(d, 0);
		rc->ops->data(rc, fd, &from);
	} else {
		rdial_free(d, 0);
		rc->ops->data(rc, fd, NULL);
	}
}

static void
rdial_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rdial *d = w->data;
	socklen_t len = sizeof(int);
	int err = 0, r;

	(void)loop;
	(void)revents;
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		rdial_finish(d, err);
		return;
	}
	r = rdial_send(d);
	if (r != 1)
		rdial_finish(d, r == 0 ? 0 : errno);
}

static void
rdial_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rdial *d = w->data;

	(void)loop;
	(void)revents;
	log_warnx("relay %s:%u: data connection timed out", d->rc->host,
	    d->rc->port);
	rdial_free(d, 1);
}

/* A non-blocking connect to the relay's server-facing <port>.  An IPv6
 * listener gets an IPv6 socket, v4-mapped if need be, so the server sees
 * the family it listens on. */
static int
rclient_dial_port(struct rclient *rc, unsigned port, int fastopen)
{
	struct sockaddr_storage to = rc->relay;
	socklen_t len = rc->relay_len;

	if (rc->dial_family == AF_INET6 && to.ss_family == AF_INET) {
		struct sockaddr_in v4 = *(struct sockaddr_in *)&to;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;

		memset(v6, 0, sizeof(*v6));
		v6->sin6_family = AF_INET6;
		v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
		len = sizeof(*v6);
	}
	if (to.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&to)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&to)->sin_port = htons((uint16_t)port);
	return net_connect_nb(&to, len, fastopen && rc->fastopen);
}

/* Dial the relay's server-facing port for one [NEW]. */
static void
rclient_dial(struct rclient *rc, const struct proto_msg *m)
{
	struct rdial *d;

	/* Only a broken or hostile relay announces this many at once. */
	if (rc->dials >= RC_DIALS_MAX) {
		log_warnx("relay %s:%u: %u data connections already being "
			  "made; [NEW] ignored",
		    rc->host, rc->port, rc->dials);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return;
	d->rc = rc;
	/* Fast Open only where a [DATA] line goes first: a raw connection
	 * of the original protocol would hold its SYN until the server
	 * writes, and most servers read first. */
	d->fd = rclient_dial_port(rc, m->port, m->has_id);
	if (d->fd == -1) {
		log_warn("relay %s:%u: cannot dial port %u", rc->host, rc->port,
		    m->port);
		free(d);
		return;
	}
	rc->dials++;
	if (m->has_id) {
		struct proto_msg dm;
		int n;

		memset(&dm, 0, sizeof(dm));
		dm.type = PROTO_DATA;
		dm.has_id = 1;
		dm.id = m->id;
		snprintf(dm.reg, sizeof(dm.reg), "%s", rc->reg);
		if (rc->secret_len > 0)
			(void)auth_mac_data(dm.hex, rc->secret, rc->secret_len,
			    rc->reg, m->id);
		n = proto_format(d->line, sizeof(d->line), &dm);
		d->line_len = n > 0 ? (size_t)n : 0;
	}
	if (m->has_from) {
		d->has_from = 1;
		d->from = m->from;
	}
	ev_io_init(&d->io, rdial_io_cb, d->fd, EV_WRITE);
	ev_timer_init(&d->timer, rdial_timeout_cb, RC_DIAL_TIMEOUT, 0.);
	d->io.data = d->timer.data = d;
	/*
	 * Mostly there is nothing to wait for: with Fast Open the line goes
	 * out in the SYN, and a handshake with a relay on this host is done
	 * by the time connect() returns.  Then skip the trip through the
	 * loop; otherwise wait until the socket is writable.
	 */
	if (d->line_len > 0) {
		int r = rdial_send(d);

		if (r != 1) {
			rdial_finish(d, r == 0 ? 0 : errno);
			return;
		}
	} else if (net_established(d->fd)) {
		rdial_finish(d, 0);
		return;
	}
	ev_io_start(rc->loop, &d->io);
	ev_timer_start(rc->loop, &d->timer);
}

static void
rpool_free(struct rpool *p)
{
	struct rclient *rc = p->rc;

	ev_io_stop(rc->loop, &p->io);
	if (p->fd != -1)
		close(p->fd);
	TAILQ_REMOVE(&rc->pools, p, entry);
	rc->npool--;
	free(p);
}

/* A pooled connection died or was refused: refill a little later, so a
 * relay that keeps refusing is not hammered. */
static void
rpool_lost(struct rpool *p)
{
	struct rclient *rc = p->rc;

	rpool_free(p);
	if (!ev_is_active(&rc->pool_timer)) {
		ev_timer_set(&rc->pool_timer, 1.0, 0.);
		ev_timer_start(rc->loop, &rc->pool_timer);
	}
}

static int
rpool_send(struct rpool *p, const struct proto_msg *m)
{
	char line[PROTO_LINE_MAX];
	int n = proto_format(line, sizeof(line), m);

	return n > 0 &&
		send(p->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n
	    ? 0
	    : -1;
}

static void
rpool_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rpool *p = w->data;
	struct rclient *rc = p->rc;
	struct proto_msg m;
	ssize_t n;

	(void)revents;
	if (p->state == RP_CONNECTING) {
		socklen_t len = sizeof(int);
		int err = 0;

		memset(&m, 0, sizeof(m));
		m.type = PROTO_DATA;
		m.pool = 1;
		snprintf(m.reg, sizeof(m.reg), "%s", rc->reg);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0 || rpool_send(p, &m) == -1) {
			rpool_lost(p);
			return;
		}
		net_tune(p->fd);
		/* relayd challenges a pooled connection when it has a secret,
		 * as it did the control connection; a relay without one sends
		 * [NEW] straight away, even to a server side that has one. */
		p->state = rc->challenged ? RP_CHALLENGE : RP_IDLE;
		ev_io_stop(loop, w);
		ev_io_set(w, p->fd, EV_READ);
		ev_io_start(loop, w);
		return;
	}
	n = net_recv_line(p->fd, p->buf, sizeof(p->buf), &p->len);
	if (n == 0)
		return;
	if (n == -1 || proto_parse(&m, p->buf, p->len) <= 0) {
		rpool_lost(p);
		return;
	}
	p->len = 0;
	if (p->state == RP_CHALLENGE) {
		struct proto_msg a;

		memset(&a, 0, sizeof(a));
		a.type = PROTO_AUTH;
		if (m.type != PROTO_CHALLENGE ||
		    auth_mac_pool(a.hex, rc->secret, rc->secret_len, rc->reg,
			m.hex) == -1 ||
		    rpool_send(p, &a) == -1) {
			rpool_lost(p);
			return;
		}
		p->state = RP_IDLE;
		return;
	}
	if (m.type != PROTO_NEW) {
		rpool_lost(p);
		return;
	}
	/* A client, and its bytes follow on this very connection. */
	{
		int fd = p->fd;
		struct sockaddr_storage from = m.from;

		p->fd = -1;
		rpool_free(p);
		rclient_pool_fill(rc);
		rc->ops->data(rc, fd, m.has_from ? &from : NULL);
	}
}

/* Keep <pool> data connections open ahead of clients, when granted. */
static void
rclient_pool_fill(struct rclient *rc)
{
	while (rc->state == RC_READY && rc->reg[0] != '\0' &&
	    rc->npool < rc->pool_ok) {
		struct rpool *p = calloc(1, sizeof(*p));

		if (p == NULL)
			return;
		p->rc = rc;
		p->state = RP_CONNECTING;
		p->fd = rclient_dial_port(rc, rc->sport, 1);
		if (p->fd == -1) {
			/* Out of descriptors, say: try again in a second. */
			free(p);
			if (!ev_is_active(&rc->pool_timer)) {
				ev_timer_set(&rc->pool_timer, 1.0, 0.);
				ev_timer_start(rc->loop, &rc->pool_timer);
			}
			return;
		}
		TAILQ_INSERT_TAIL(&rc->pools, p, entry);
		rc->npool++;
		ev_io_init(&p->io, rpool_cb, p->fd, EV_WRITE);
		p->io.data = p;
		ev_io_start(rc->loop, &p->io);
	}
}

static void
rclient_pool_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	rclient_pool_fill(w->data);
}

/*
 * The first registration asked for a public port the relay says is
 * taken ("port N unavailable", not outside the relay's range).  A server
 * restarted at once (a crash, a supervisor) finds its old registration still
 * there: the old helper notices its listener gone within about three seconds
 * and lets the port go.  So ask again, twice a second, while RELAY_TIMEOUT
 * lasts.  Returns 1 if a retry is on its way.
 */
static int
rclient_first_port_retry(struct rclient *rc)
{
	if (rc->registered_once || rc->asked_port == 0 ||
	    ev_now(rc->loop) + RC_TAKEN_RETRY >= rc->started_at + rc->timeout)
		return 0;
	log_debug("relay %s:%u: public port %u is taken; asking again in "
		  "%.1fs",
	    rc->host, rc->port, rc->asked_port, RC_TAKEN_RETRY);
	rclient_close_fd(rc);
	rc->state = RC_BACKOFF;
	ev_timer_set(&rc->timer, RC_TAKEN_RETRY, 0.);
	ev_timer_start(rc->loop, &rc->timer);
	return 1;
}

/*
 * The relay refused the public port we asked for.  Our own old
 * registration may hold it until the relay's heartbeat notices it dead
 * (three intervals): ask again until then.  Past that, a port nobody
 * asked for (only remembered from the last registration) is let go:
 * a reachable server on a new port beats one that waits for ever.
 */
static void
rclient_port_taken(struct rclient *rc)
{
	ev_tstamp now = ev_now(rc->loop);
	double grace = 3.0 * (rc->ka > 0 ? rc->ka : 10) + RC_BACKOFF_MAX;

	if (rc->asked_port != 0 || rc->want_port == 0)
		return;
	if (rc->port_taken_at == 0) {
		rc->port_taken_at = now;
		return;
	}
	if (now - rc->port_taken_at < grace)
		return;
	log_warnx("relay %s:%u: public port %u still taken after %.0fs; "
		  "asking for any port",
	    rc->host, rc->port, rc->want_port, now - rc->port_taken_at);
	rc->want_port = 0;
	rc->port_taken_at = 0;
	rc->backoff = RC_BACKOFF_MIN; /* a new request: try it at once */
}

static void
rclient_line(struct rclient *rc, const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_NEW:
		if (rc->state != RC_READY && rc->secret_len > 0) {
			/* No fallback with a secret: the relay must prove it
			 * knows it before any client counts. */
			rclient_lost(rc, ETIMEDOUT,
			    "no answer to the handshake (the relay announced "
			    "a client instead)");
			break;
		}
		if (rc->state != RC_READY) {
			/* A relay that never answered [HELLO]: original. */
			rclient_registered(rc, 0);
		}
		rc->fell_back = 0;
		rclient_dial(rc, m);
		break;
	case PROTO_OK:
		/* Also a late [OK] after the silence timer gave up on the
		 * extensions: relayd has switched, so must we, heartbeats
		 * and pool included. */
		if (rc->state != RC_HELLO && rc->state != RC_AUTH &&
		    !(rc->state == RC_READY && rc->fell_back))
			break;
		rc->fell_back = 0;
		rc->ext_ok = m->ext;
		rc->sport = m->sport;
		rc->pool_ok = (m->ext & PROTO_EXT_POOL) ? m->pool : 0;
		if (rc->pool_ok > rc->pool)
			rc->pool_ok = rc->pool;
		snprintf(rc->reg, sizeof(rc->reg), "%s", m->reg);
		rclient_registered(rc, m->port);
		rclient_pool_fill(rc);
		break;
	case PROTO_CHALLENGE: {
		struct proto_msg a;

		/* A challenge after the silence timer gave up is a relay that
		 * was only slow to say it wants a secret. */
		if (rc->state != RC_HELLO &&
		    !(rc->state == RC_READY && rc->fell_back))
			break;
		if (rc->secret_len == 0) {
			/* At start this fails the listen(); later (a relay
			 * restarted with a secret) keep trying, loudly. */
			rclient_lost(rc, EACCES,
			    "the relay requires a shared secret "
			    "(set RELAY_SECRET_FILE)");
			return;
		}
		memset(&a, 0, sizeof(a));
		a.type = PROTO_AUTH;
		(void)auth_mac_ctl(a.hex, rc->secret, rc->secret_len, m->hex);
		rc->state = RC_AUTH;
		rc->challenged = 1;
		(void)rclient_send(rc, &a);
		break;
	}
	case PROTO_ERR: {
		char why[PROTO_TEXT_MAX + 32];
		/* By the reasons relayd gives (PROTOCOL.md 2.4), whole. */
		int err = strcmp(m->text, "authentication failed") == 0 ? EACCES
		    : strncmp(m->text, "port ", 5) == 0 ? EADDRINUSE
							: ECONNREFUSED;

		snprintf(why, sizeof(why), "relay refused: %s", m->text);
		if (err == EADDRINUSE && strstr(m->text, " unavailable") &&
		    rclient_first_port_retry(rc))
			break;
		if (err == EADDRINUSE)
			rclient_port_taken(rc);
		rclient_lost(rc, err, why);
		break;
	}
	case PROTO_PING: {
		struct proto_msg p = {.type = PROTO_PONG};

		(void)rclient_send(rc, &p);
		break;
	}
	default:
		break;
	}
}

static void
rclient_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rclient *rc = w->data;
	ssize_t n;

	(void)revents;
	n = recv(rc->fd, rc->in + rc->in_len, sizeof(rc->in) - rc->in_len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		rclient_lost(rc, n == 0 ? ECONNRESET : errno,
		    n == 0 ? "the relay closed the control connection"
			   : strerror(errno));
		return;
	}
	rc->last_rx = ev_now(loop);
	rc->in_len += (size_t)n;
	while (rc->fd != -1) {
		struct proto_msg m;
		ssize_t used = proto_parse(&m, rc->in, rc->in_len);

		if (used == 0)
			break;
		if (used < 0) {
			/* A hostile or broken relay: drop the line or, if
			 * it never ends, the connection. */
			log_warnx("relay %s:%u: %s on the control connection",
			    rc->host, rc->port, proto_strerror((int)used));
			if (used == -PROTO_E_TOOLONG) {
				rclient_lost(rc, EPROTO, "line too long");
				return;
			}
			used =
			    (ssize_t)((char *)memchr(rc->in, '\n', rc->in_len) -
				rc->in) +
			    1;
		} else {
			rclient_line(rc, &m);
			if (rc->fd == -1)
				return;
		}
		memmove(rc->in, rc->in + used, rc->in_len - (size_t)used);
		rc->in_len -= (size_t)used;
	}
}

/* What is left of RELAY_TIMEOUT, which covers connecting and
 * registering together; 0 or less when it is over. */
static ev_tstamp
rclient_time_left(const struct rclient *rc)
{
	return rc->connect_at + rc->timeout - ev_now(rc->loop);
}

static void
rclient_hello(struct rclient *rc)
{
	struct proto_msg h;
	ev_tstamp left;

	memset(&h, 0, sizeof(h));
	h.type = PROTO_HELLO;
	h.version = PROTO_VERSION;
	h.port = rc->want_port;
	h.ka = rc->ka;
	h.ext = PROTO_EXT_ADDR | PROTO_EXT_PIPE;
	if (rc->pool > 0) {
		h.ext |= PROTO_EXT_POOL;
		h.pool = rc->pool;
	}
	rc->state = RC_HELLO;
	if (rclient_send(rc, &h) == -1)
		return;
	left = rclient_time_left(rc);
	if (left < 0.1)
		left = 0.1; /* a moment for an answer already on its way */
	ev_timer_stop(rc->loop, &rc->timer);
	ev_timer_set(&rc->timer,
	    rc->secret_len > 0 || left < rc->hello_wait ? left : rc->hello_wait,
	    0.);
	ev_timer_start(rc->loop, &rc->timer);
}

static void
rclient_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rclient *rc = w->data;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)revents;
	ev_io_stop(loop, w);
	if (getsockopt(rc->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		rclient_lost(rc, err, strerror(err));
		return;
	}
	net_tune(rc->fd);
	rc->last_rx = ev_now(loop);
	ev_io_set(&rc->rd, rc->fd, EV_READ);
	ev_io_start(loop, &rc->rd);
	if (rc->ext)
		rclient_hello(rc);
	else
		rclient_registered(rc, 0);
}

static void
rclient_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rclient *rc = w->data;

	(void)loop;
	(void)revents;
	switch (rc->state) {
	case RC_BACKOFF:
		rclient_connect(rc);
		break;
	case RC_HELLO:
		if (!net_established(rc->fd)) {
			/* With TCP Fast Open connect() returned at once and
			 * the SYN left with [HELLO]: no handshake yet is no
			 * verdict on the protocol.  The connect deadline. */
			ev_tstamp left = rclient_time_left(rc);

			if (left > 0) {
				ev_timer_set(&rc->timer, left, 0.);
				ev_timer_start(loop, &rc->timer);
			} else
				rclient_lost(rc, ETIMEDOUT, "timed out");
			break;
		}
		if (rc->secret_len == 0) {
			/* Silence: a relay of the original protocol. */
			rclient_registered(rc, 0);
			rc->fell_back = 1;
			break;
		}
		rclient_lost(rc, ETIMEDOUT, "no answer to the handshake");
		break;
	default:
		rclient_lost(rc, ETIMEDOUT, "timed out");
		break;
	}
}

static void
rclient_ka_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rclient *rc = w->data;
	struct proto_msg p = {.type = PROTO_PING};

	(void)revents;
	if (rc->state != RC_READY)
		return;
	if (ev_now(loop) - rc->last_rx > 3.0 * rc->ka) {
		rclient_lost(rc, ETIMEDOUT, "heartbeat timed out");
		return;
	}
	(void)rclient_send(rc, &p);
}

static void
rclient_connect(struct rclient *rc)
{
	rc->state = RC_CONNECTING;
	rc->connect_at = ev_now(rc->loop);
	rc->fell_back = 0;
	rc->challenged = 0;
	rc->ext_ok = 0;
	rc->pool_ok = 0;
	rc->reg[0] = '\0';
	/* [HELLO] goes first, so it can ride the SYN; this connection also
	 * fetches the cookie the data connections use. */
	rc->fd =
	    net_connect_nb(&rc->relay, rc->relay_len, rc->ext && rc->fastopen);
	if (rc->fd == -1) {
		rclient_lost(rc, errno, strerror(errno));
		return;
	}
	ev_io_set(&rc->wr, rc->fd, EV_WRITE);
	ev_io_start(rc->loop, &rc->wr);
	ev_timer_set(&rc->timer, rc->timeout, 0.);
	ev_timer_start(rc->loop, &rc->timer);
}

int
rclient_start(struct rclient *rc, char *err, size_t errlen)
{
	rc->fd = -1;
	rc->backoff = RC_BACKOFF_MIN;
	rc->asked_port = rc->want_port;
	rc->started_at = ev_now(rc->loop);
	if (rc->timeout <= 0)
		rc->timeout = 5.0;
	/* What relayd's parser takes; beyond it [HELLO] would be refused
	 * as malformed and the relay taken for one of the original kind. */
	if (rc->want_port > 65535) {
		snprintf(err, errlen, "public port %u out of range",
		    rc->want_port);
		errno = EINVAL;
		return -1;
	}
	if (rc->ka > 86400)
		rc->ka = 86400;
	if (rc->pool > 1024)
		rc->pool = 1024;
	/* relayd answers at once; this only bounds how long a listen()
	 * waits on a relay of the original protocol, and must outlast a
	 * busy host's scheduling delays. */
	if (rc->hello_wait <= 0)
		rc->hello_wait = 2.0;
	if (net_resolve(rc->host, rc->port, AF_UNSPEC, &rc->relay,
		&rc->relay_len, err, errlen) == -1) {
		errno = EHOSTUNREACH;
		return -1;
	}
	ev_init(&rc->rd, rclient_rd_cb);
	ev_init(&rc->wr, rclient_wr_cb);
	ev_init(&rc->timer, rclient_timer_cb);
	ev_init(&rc->ka_timer, rclient_ka_cb);
	ev_init(&rc->pool_timer, rclient_pool_timer_cb);
	TAILQ_INIT(&rc->pools);
	rc->rd.data = rc->wr.data = rc->timer.data = rc->ka_timer.data =
	    rc->pool_timer.data = rc;
	rclient_connect(rc);
	return 0;
}

void
rclient_stop(struct rclient *rc)
{
	rclient_close_fd(rc);
}
