/*
 * session.c - a relayed pair: a client and the data connection the
 * server dialled for it.  The bytes are moved by common/pump.c; this file
 * owns the sockets, the original log lines and the teardown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * session_close: the one teardown path.  Stops the pump before closing
 * the sockets (libev must never watch a closed fd), then frees.
 */
void
session_close(struct session *s, const char *why)
{
	struct pump *p = &s->pump;

	if (s->state == SESSION_CLOSED)
		return;
	s->state = SESSION_CLOSED;
	pump_stop(p);
	atomic_fetch_add(&stats.bytes_c2s, p->dir[0].bytes);
	atomic_fetch_add(&stats.bytes_s2c, p->dir[1].bytes);
	log_debug("session %llu: closed (%s), %llu bytes to server, %llu to "
		  "client",
	    (unsigned long long)s->id, why,
	    (unsigned long long)p->dir[0].bytes,
	    (unsigned long long)p->dir[1].bytes);
	close(s->client_fd);
	close(s->data_fd);
	atomic_fetch_sub(&stats.sessions, 1);
	LIST_REMOVE(s, entry);
	if (s->reg != NULL)
		reg_session_ended(s->reg);
	free(s);
}

static void
session_pump_cb(struct pump *p, int dir, enum pump_end end, int err)
{
	struct session *s = p->data;
	char buf[128];

	if (dir == 0) {
		log_info("Client disconnected %s",
		    session_errstr(err, buf, sizeof(buf)));
		s->state = SESSION_HALF;
		return;
	}
	if (dir == 1) {
		log_info("server disconnected %s",
		    session_errstr(err, buf, sizeof(buf)));
		s->state = SESSION_HALF;
		return;
	}
	if (end == PUMP_END_ERROR) {
		atomic_fetch_add(&stats.err_io, 1);
		log_warnx("session %llu: aborted: %s", (unsigned long long)s->id,
		    strerror(err));
		session_close(s, "write error");
		return;
	}
	session_close(s, "both directions done");
}

/*
 * session_create: pair client <c> (freed here) with <data_fd>.  Returns
 * the session, or NULL after closing both sockets.
 */
struct session *
session_create(struct reg *reg, struct client *c, int data_fd)
{
	struct worker *w = reg->worker;
	char addr[NET_ADDR_LEN];
	struct session *s;

	atomic_fetch_sub(&stats.queued, 1);
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		log_warnx("reg %llu: out of memory for a session",
		    (unsigned long long)reg->id);
		close(c->fd);
		close(data_fd);
		free(c);
		return NULL;
	}
	/* The original printed the client's address here; print the
	 * data connection's, as the wording says. */
	log_info("Server connected: %s",
	    net_peer_str(data_fd, addr, sizeof(addr)));
	s->id = worker_next_id(w);
	s->worker = w;
	s->reg = reg;
	s->state = SESSION_OPEN;
	s->client_fd = c->fd;
	s->data_fd = data_fd;
	log_debug("session %llu: client %s paired on reg %llu",
	    (unsigned long long)s->id, c->addr_str,
	    (unsigned long long)reg->id);
	free(c);
	LIST_INSERT_HEAD(&w->sessions, s, entry);
	atomic_fetch_add(&stats.sessions, 1);
	atomic_fetch_add(&stats.sessions_total, 1);
	pump_start(&s->pump, w->loop, &w->pipes, s->client_fd, s->data_fd,
	    session_pump_cb, s);
	return s;
}
