/*
 * session.c - a relayed pair: a client and the data connection the
 * server dialled for it.  The bytes are moved by common/pump.c; this file
 * owns the sockets, the original log lines and the teardown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "linger.h"
#include "log.h"
#include "net.h"
#include "relayd.h"

/* Go prints a nil error as "<nil>" and errors in lower case. */
static const char *
session_errstr(int err, char *buf, size_t len)
{
	if (err == 0)
		return "<nil>";
	snprintf(buf, len, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

static void
session_free(struct session *s)
{
	s->state = SESSION_CLOSED;
	atomic_fetch_sub(&stats.sessions, 1);
	atomic_fetch_sub(&s->worker->load, 1);
	atomic_fetch_sub(&s->share->sessions, 1);
	reg_share_release(s->share);
	LIST_REMOVE(s, entry);
	free(s);
}

/* A hold on a torn-down session let go: the last frees it. */
static void
session_unhold(void *arg)
{
	struct session *s = arg;

	if (--s->holds == 0)
		session_free(s);
}

/*
 * The one teardown path.  Stops the pump before closing the sockets
 * (libev must never watch a closed fd), then frees.  With <linger>, a
 * socket that still has bytes to deliver is handed to the worker's
 * linger set rather than closed (common/linger.h): a server that
 * answered and went while its client was still uploading would have its
 * answer cut short by relayd, where a direct connection delivers it all.
 * The session stays counted, under -max-clients and in the metrics, as
 * long as one of its sockets is open.
 */
static void
session_teardown(struct session *s, const char *why, int linger)
{
	struct pump *p = &s->pump;
	int fds[2] = {s->client_fd, s->data_fd};

	if (s->state == SESSION_LINGER || s->state == SESSION_CLOSED)
		return;
	s->state = SESSION_LINGER;
	ev_timer_stop(s->worker->loop, &s->idle);
	pump_stop(p);
	atomic_fetch_add(&stats.bytes_c2s, p->dir[0].bytes);
	atomic_fetch_add(&stats.bytes_s2c, p->dir[1].bytes);
	log_debug("session %llu: closed (%s), %llu bytes to server, %llu to "
		  "client",
	    (unsigned long long)s->id, why, (unsigned long long)p->dir[0].bytes,
	    (unsigned long long)p->dir[1].bytes);
	/* One hold of its own, so that a socket closed at once does not
	 * free the session before the other one is handed over. */
	s->holds = 1;
	for (int i = 0; i < 2; i++) {
		char tag[48];

		if (!linger) {
			close(fds[i]);
			continue;
		}
		snprintf(tag, sizeof(tag), "session %llu: %s socket",
		    (unsigned long long)s->id, i == 0 ? "client" : "server");
		s->holds++;
		linger_close_notify(&s->worker->lingers, fds[i], p->dir[i].eof,
		    NULL, 0, tag, session_unhold, s);
	}
	session_unhold(s);
}

/* session_close: end <s> now (relayd stopping, idle timeout). */
void
session_close(struct session *s, const char *why)
{
	session_teardown(s, why, 0);
}

static void
session_pump_cb(struct pump *p, int dir, enum pump_end end, int err)
{
	struct session *s = p->data;
	char buf[128];

	if (dir == 0) {
		log_info("Client disconnected %s",
		    session_errstr(err, buf, sizeof(buf)));
		log_debug("session %llu: client to server ended",
		    (unsigned long long)s->id);
		s->state = SESSION_HALF;
		return;
	}
	if (dir == 1) {
		log_info("server disconnected %s",
		    session_errstr(err, buf, sizeof(buf)));
		log_debug("session %llu: server to client ended",
		    (unsigned long long)s->id);
		s->state = SESSION_HALF;
		return;
	}
	if (end == PUMP_END_ERROR) {
		atomic_fetch_add(&stats.err_io, 1);
		log_warnx("session %llu: aborted: %s",
		    (unsigned long long)s->id, strerror(err));
		session_teardown(s, "write error", 1);
		return;
	}
	session_teardown(s, "both directions done", 1);
}

/*
 * The idle timer is not pushed back on every read: it fires once per
 * interval and looks at when bytes last moved (libev's "be smart about
 * timeouts"), so the data path pays nothing for it.
 */
static void
session_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;
	ev_tstamp left = s->pump.last_io + conf.idle_timeout - ev_now(loop);

	(void)revents;
	if (left > 0) {
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
		return;
	}
	log_info("session %llu: idle for %.0fs; closing it",
	    (unsigned long long)s->id, conf.idle_timeout);
	session_close(s, "idle timeout");
}

/*
 * session_start: run a paired session on worker <w> (this thread).  On
 * failure the sockets are closed and the share's counts undone.
 */
void
session_start(struct worker *w, const struct handoff *h)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		log_warnx("reg %llu: out of memory for a session",
		    (unsigned long long)h->reg_id);
		close(h->fd);
		close(h->data_fd);
		atomic_fetch_sub(&stats.sessions, 1);
		atomic_fetch_sub(&w->load, 1);
		atomic_fetch_sub(&h->share->sessions, 1);
		reg_share_release(h->share);
		return;
	}
	s->id = worker_next_id(w);
	s->reg_id = h->reg_id;
	s->worker = w;
	s->share = h->share;
	s->state = SESSION_OPEN;
	s->client_fd = h->fd;
	s->data_fd = h->data_fd;
	LIST_INSERT_HEAD(&w->sessions, s, entry);
	log_debug("session %llu: reg %llu, on worker %u",
	    (unsigned long long)s->id, (unsigned long long)h->reg_id, w->idx);
	pump_start(&s->pump, w->loop, &w->pipes, s->client_fd, s->data_fd,
	    session_pump_cb, s);
	ev_timer_init(&s->idle, session_idle_cb, conf.idle_timeout, 0.);
	s->idle.data = s;
	if (conf.idle_timeout > 0)
		ev_timer_start(w->loop, &s->idle);
}

/*
 * session_pair: client <c> (freed here) met its data connection.  The
 * session runs on the least busy worker, so one registration's traffic
 * can use every core.
 */
void
session_pair(struct reg *reg, struct client *c, int data_fd)
{
	struct worker *w = worker_pick(reg->worker);
	char addr[NET_ADDR_LEN];
	struct handoff h;

	atomic_fetch_sub(&stats.queued, 1);
	atomic_fetch_sub(&reg->share->queued, 1);
	/* The original printed the client's address here; print the
	 * data connection's, as the wording says. */
	log_info("Server connected: %s",
	    net_peer_str(data_fd, addr, sizeof(addr)));
	log_debug("reg %llu: client %s paired", (unsigned long long)reg->id,
	    c->addr_str);
	memset(&h, 0, sizeof(h));
	h.kind = HANDOFF_SESSION;
	h.fd = c->fd;
	h.data_fd = data_fd;
	h.reg_id = reg->id;
	h.share = reg->share;
	free(c);
	atomic_fetch_add(&h.share->refs, 1);
	atomic_fetch_add(&h.share->sessions, 1);
	atomic_fetch_add(&stats.sessions, 1);
	atomic_fetch_add(&stats.sessions_total, 1);
	atomic_fetch_add(&w->load, 1);
	if (w != reg->worker && worker_send(w, &h) == 0)
		return;
	if (w != reg->worker) {
		atomic_fetch_sub(&w->load, 1);
		atomic_fetch_add(&reg->worker->load, 1);
	}
	session_start(reg->worker, &h);
}
