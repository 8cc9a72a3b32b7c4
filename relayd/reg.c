/*
 * reg.c - registrations: one per accepted control connection.
 *
 * A registration owns a client-facing listener (the public port), a
 * server-facing listener (where the server dials back), the FIFO of
 * clients waiting to be paired and the control connection on which it
 * announces them.  Everything here runs on the registration's worker.
 *
 * With a peer of the original protocol exactly one [NEW] is outstanding
 * at a time (the original helper loses a second line that arrives in the
 * same read), and the next connection on the server-facing port is paired
 * with the oldest announced client.  Peers that negotiated the extensions
 * (docs/PROTOCOL.md) get pipelined notifications carrying an id, and
 * their data connections must name that id.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "relayd.h"
#include "stats.h"

#define REG_BACKLOG 511
#define REG_POOL_MAX 16 /* pre-opened data connections per registration */

static int reg_open_public(struct reg *reg, unsigned port);
static int reg_open_ports(struct reg *reg, unsigned want_port);
static void reg_refuse(struct reg *reg, const char *why);
static void reg_pair(struct reg *reg, struct client *c, int data_fd);

/* Per-address registration counts, shared by the main thread (admission)
 * and the workers (release). */
struct ip_count {
	struct sockaddr_storage addr;
	unsigned n;
};
static pthread_mutex_t reg_ip_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count *reg_ips;
static size_t reg_nips;

static int
reg_same_host(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			   &((const struct sockaddr_in6 *)b)->sin6_addr,
			   16) == 0;
	return 0;
}

/* Called on the main thread before a control connection is handed to a
 * worker.  Returns 0 and counts the registration, or -1 (limit hit). */
int
reg_limits_admit(const struct sockaddr_storage *peer)
{
	struct ip_count *slot = NULL;
	int ok = 0;

	if (atomic_load(&stats.regs) >= conf.max_regs)
		return -1;
	pthread_mutex_lock(&reg_ip_lock);
	for (size_t i = 0; i < reg_nips; i++) {
		if (reg_same_host(&reg_ips[i].addr, peer)) {
			slot = &reg_ips[i];
			break;
		}
	}
	if (slot == NULL) {
		struct ip_count *n =
		    realloc(reg_ips, (reg_nips + 1) * sizeof(*reg_ips));

		if (n == NULL) {
			ok = -1;
			goto out;
		}
		reg_ips = n;
		slot = &reg_ips[reg_nips++];
		slot->addr = *peer;
		slot->n = 0;
	}
	if (slot->n >= conf.max_regs_ip) {
		/* Made just now (-max-regs-per-ip 0): kept, it would let
		 * refused addresses grow the table without end. */
		if (slot->n == 0)
			*slot = reg_ips[--reg_nips];
		ok = -1;
		goto out;
	}
	slot->n++;
	atomic_fetch_add(&stats.regs, 1);
out:
	pthread_mutex_unlock(&reg_ip_lock);
	return ok;
}

/* reg_limits_addresses: how many server addresses are counted now. */
size_t
reg_limits_addresses(void)
{
	size_t n;

	pthread_mutex_lock(&reg_ip_lock);
	n = reg_nips;
	pthread_mutex_unlock(&reg_ip_lock);
	return n;
}

void
reg_limits_release(const struct sockaddr_storage *peer)
{
	pthread_mutex_lock(&reg_ip_lock);
	for (size_t i = 0; i < reg_nips; i++) {
		if (reg_same_host(&reg_ips[i].addr, peer)) {
			if (--reg_ips[i].n == 0)
				reg_ips[i] = reg_ips[--reg_nips];
			break;
		}
	}
	pthread_mutex_unlock(&reg_ip_lock);
	atomic_fetch_sub(&stats.regs, 1);
}

static void
reg_client_free(struct reg *reg, struct client *c, const char *why)
{
	if (why != NULL)
		log_info("reg %llu: closing client %s: %s",
		    (unsigned long long)reg->id, c->addr_str, why);
	close(c->fd);
	free(c);
	atomic_fetch_sub(&stats.queued, 1);
	atomic_fetch_sub(&reg->share->queued, 1);
}

static void
reg_dconn_free(struct dconn *d)
{
	struct ev_loop *loop = d->reg->worker->loop;

	if (d->state == DCONN_POOLED)
		d->reg->npooled--;
	ev_io_stop(loop, &d->io);
	ev_timer_stop(loop, &d->timer);
	TAILQ_REMOVE(&d->reg->dconns, d, entry);
	d->reg->ndconns--;
	if (d->fd != -1)
		close(d->fd);
	free(d);
}

/*
 * A refused registration keeps its place under -max-regs and
 * -max-regs-per-ip until its control connection, lingering to deliver the
 * [ERR], is closed: else a peer that stops reading could pile up
 * connections, each with a full send buffer, beyond its limit.
 */
static void
reg_linger_done(void *arg)
{
	struct sockaddr_storage *peer = arg;

	reg_limits_release(peer);
	free(peer);
}

/*
 * The one teardown path of a registration.  Listeners, the control
 * connection and every client not yet paired are closed; running sessions
 * go on (they are independent TCP streams) and forget the reg.  With
 * <linger>, the control connection first delivers what is queued for it
 * (a refusal's [ERR]) through the worker's linger set.
 */
static void
reg_teardown(struct reg *reg, const char *why, int linger)
{
	struct ev_loop *loop = reg->worker->loop;
	struct sockaddr_storage *peer;
	struct client *c;

	if (reg->state == REG_CLOSED)
		return;
	reg->state = REG_CLOSED;
	log_info("reg %llu: closing registration from %s (port %u): %s",
	    (unsigned long long)reg->id, reg->peer_str, reg->cport, why);
	ev_io_stop(loop, &reg->ctl_rd);
	ev_io_stop(loop, &reg->ctl_wr);
	ev_io_stop(loop, &reg->cl_io);
	ev_io_stop(loop, &reg->sv_io);
	ev_timer_stop(loop, &reg->data_timer);
	accept_pause_stop(loop, &reg->pause);
	ev_timer_stop(loop, &reg->ka_timer);
	ev_timer_stop(loop, &reg->hs_timer);
	while ((c = TAILQ_FIRST(&reg->queue)) != NULL) {
		TAILQ_REMOVE(&reg->queue, c, entry);
		reg_client_free(reg, c, "registration closed");
	}
	while ((c = TAILQ_FIRST(&reg->announced)) != NULL) {
		TAILQ_REMOVE(&reg->announced, c, entry);
		reg_client_free(reg, c, "registration closed");
	}
	while (!TAILQ_EMPTY(&reg->dconns))
		reg_dconn_free(TAILQ_FIRST(&reg->dconns));
	if (reg->cl_fd != -1)
		close(reg->cl_fd);
	if (reg->sv_fd != -1)
		close(reg->sv_fd);
	LIST_REMOVE(reg, entry);
	stats_reg_remove(reg);
	/* The admission counts go with the socket: the reg struct does
	 * not outlive this iteration, so the callback gets a copy. */
	peer = linger ? malloc(sizeof(*peer)) : NULL;
	if (peer != NULL) {
		char tag[48];

		snprintf(tag, sizeof(tag), "reg %llu: control connection",
		    (unsigned long long)reg->id);
		*peer = reg->peer;
		linger_close_notify(&reg->worker->lingers, reg->ctl_fd, 0,
		    reg->out, reg->out_len, tag, reg_linger_done, peer);
	} else {
		close(reg->ctl_fd);
		reg_limits_release(&reg->peer);
	}
	/* Callers up the stack may still look at reg->state: the memory
	 * goes only when this loop iteration is over. */
	LIST_INSERT_HEAD(&reg->worker->dead, reg, entry);
	ev_prepare_start(loop, &reg->worker->reap);
}

/* reg_close: end <reg> now. */
void
reg_close(struct reg *reg, const char *why)
{
	reg_teardown(reg, why, 0);
}

/* Free the registrations closed during this loop iteration. */
void
reg_reap(struct worker *w)
{
	struct reg *reg;

	while ((reg = LIST_FIRST(&w->dead)) != NULL) {
		LIST_REMOVE(reg, entry);
		reg_share_release(reg->share);
		free(reg);
	}
	ev_prepare_stop(w->loop, &w->reap);
}

/*
 * Queue <len> bytes for the control connection.  Notifications are tiny;
 * if the peer stops reading so long that the kernel buffer and ours fill,
 * the registration is dead weight and goes.  Returns 0 or -1 (closed).
 */
static int
reg_ctl_send(struct reg *reg, const char *buf, size_t len)
{
	if (reg->out_len == 0) {
		ssize_t n =
		    send(reg->ctl_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == (ssize_t)len)
			return 0;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			reg_close(reg, strerror(errno));
			return -1;
		}
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
	}
	if (reg->out_len + len > sizeof(reg->out)) {
		reg_close(reg, "control connection stalled");
		return -1;
	}
	memcpy(reg->out + reg->out_len, buf, len);
	reg->out_len += len;
	ev_io_start(reg->worker->loop, &reg->ctl_wr);
	return 0;
}

static int
reg_ctl_send_msg(struct reg *reg, const struct proto_msg *m)
{
	char line[PROTO_LINE_MAX];
	int n = proto_format(line, sizeof(line), m);

	if (n == -1) {
		reg_close(reg, "internal error: message too long");
		return -1;
	}
	return reg_ctl_send(reg, line, (size_t)n);
}

static void
reg_ctl_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct reg *reg = w->data;
	ssize_t n;

	(void)revents;
	n = send(reg->ctl_fd, reg->out, reg->out_len,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			reg_close(reg, strerror(errno));
		return;
	}
	memmove(reg->out, reg->out + n, reg->out_len - (size_t)n);
	reg->out_len -= (size_t)n;
	if (reg->out_len == 0)
		ev_io_stop(loop, &reg->ctl_wr);
}

static void
reg_arm_data_timer(struct reg *reg)
{
	struct client *head = TAILQ_FIRST(&reg->announced);
	struct ev_loop *loop = reg->worker->loop;

	ev_timer_stop(loop, &reg->data_timer);
	if (head == NULL)
		return;
	ev_timer_set(&reg->data_timer,
	    head->since + conf.data_timeout - ev_now(loop) > 0
		? head->since + conf.data_timeout - ev_now(loop)
		: 0.,
	    0.);
	ev_timer_start(loop, &reg->data_timer);
}

enum reg_peek {
	REG_PEEK_LIVE, /* sent something, or nothing yet */
	REG_PEEK_EOF,  /* shut its side down having sent nothing */
	REG_PEEK_GONE, /* reset */
};

/*
 * How a queued client is doing.  An EOF with nothing before it may be a
 * hang-up, or a client that shut its side down and waits for the server
 * to speak (a banner, a download).  The original announced it; so does
 * relayd, but after every live client, so that a burst of hung-up ones
 * cannot hold the live ones up (out of descriptors, it is given up).
 */
static enum reg_peek
reg_client_peek(struct client *c)
{
	char b;
	ssize_t n;

	if (c->eof)
		return REG_PEEK_EOF;
	n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0) {
		c->eof = 1;
		return REG_PEEK_EOF;
	}
	return n == -1 && errno != EAGAIN && errno != EWOULDBLOCK
	    ? REG_PEEK_GONE
	    : REG_PEEK_LIVE;
}

/*
 * Hand queued clients to pre-opened data connections: the [NEW] line goes
 * on the data connection itself, and the client's bytes follow it at
 * once, with no round trip to the server.
 */
static struct dconn *
reg_pooled_first(struct reg *reg)
{
	struct dconn *d;

	for (d = TAILQ_FIRST(&reg->dconns); d != NULL; d = TAILQ_NEXT(d, entry))
		if (d->state == DCONN_POOLED)
			return d;
	return NULL;
}

/* The oldest live queued client, else the oldest that shut its side
 * down; off the queue.  Reset ones are freed on the way. */
static struct client *
reg_dequeue(struct reg *reg)
{
	struct client *c, *next, *pick = NULL, *eof = NULL;

	for (c = TAILQ_FIRST(&reg->queue); c != NULL && pick == NULL;
	     c = next) {
		next = TAILQ_NEXT(c, entry);
		switch (reg_client_peek(c)) {
		case REG_PEEK_LIVE:
			pick = c;
			break;
		case REG_PEEK_EOF:
			if (eof == NULL)
				eof = c;
			break;
		case REG_PEEK_GONE:
			TAILQ_REMOVE(&reg->queue, c, entry);
			reg->nqueued--;
			reg_client_free(reg, c, "left before it was announced");
			break;
		}
	}
	if (pick == NULL)
		pick = eof;
	if (pick != NULL) {
		TAILQ_REMOVE(&reg->queue, pick, entry);
		reg->nqueued--;
	}
	return pick;
}

/* <c> is announced: its [NEW] is on its way, the data timer runs. */
static void
reg_mark_announced(struct reg *reg, struct client *c)
{
	c->state = CLIENT_NOTIFIED;
	c->since = ev_now(reg->worker->loop);
	TAILQ_INSERT_TAIL(&reg->announced, c, entry);
	reg->nannounced++;
	reg->new_sent = 1;
	log_debug("reg %llu: client %s announced", (unsigned long long)reg->id,
	    c->addr_str);
	if (reg->nannounced == 1)
		reg_arm_data_timer(reg);
}

/* The [NEW] line for <c>: the original form unless the peer asked for
 * client ids and addresses. */
static void
reg_new_msg(const struct reg *reg, const struct client *c, struct proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_NEW;
	m->port = reg->sport;
	if (reg->ext & PROTO_EXT_ADDR) {
		m->has_id = 1;
		m->id = c->id;
		m->has_from = 1;
		m->from = c->addr;
	}
}

/*
 * Hand queued clients to pre-opened data connections: the [NEW] line goes
 * on the data connection itself, and the client's bytes follow it at
 * once, with no round trip to the server.
 */
static void
reg_use_pool(struct reg *reg)
{
	struct dconn *d;
	struct client *c;

	/* Each pass starts over: reg_pair() announces in turn, which may
	 * come back here and use pooled connections itself. */
	while (reg->state == REG_ACTIVE && (d = reg_pooled_first(reg)) &&
	    (c = reg_dequeue(reg)) != NULL) {
		struct proto_msg m;
		char line[PROTO_LINE_MAX];
		int n, fd = d->fd;

		reg_new_msg(reg, c, &m);
		n = proto_format(line, sizeof(line), &m);
		d->fd = -1;
		reg_dconn_free(d);
		if (n == -1 ||
		    send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) !=
			n) {
			/* A dead pooled connection: the client waits on. */
			log_warnx("reg %llu: pooled data connection failed "
				  "(%s); closed, client %s waits on",
			    (unsigned long long)reg->id,
			    n == -1 ? "[NEW] too long" : strerror(errno),
			    c->addr_str);
			close(fd);
			TAILQ_INSERT_HEAD(&reg->queue, c, entry);
			reg->nqueued++;
			continue;
		}
		log_debug("reg %llu: client %s on a pooled data connection",
		    (unsigned long long)reg->id, c->addr_str);
		reg_mark_announced(reg, c);
		reg_pair(reg, c, fd);
	}
}

/* Announce queued clients, as many as the peer's protocol allows. */
static void
reg_announce(struct reg *reg)
{
	unsigned window = (reg->ext & PROTO_EXT_PIPE) ? conf.max_queue : 1;
	struct client *c;

	if (reg->npooled > 0)
		reg_use_pool(reg);
	while (reg->state == REG_ACTIVE && reg->nannounced < window &&
	    (c = reg_dequeue(reg)) != NULL) {
		struct proto_msg m;

		reg_new_msg(reg, c, &m);
		reg_mark_announced(reg, c);
		if (reg_ctl_send_msg(reg, &m) == -1)
			return;
	}
}

static void
reg_data_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct reg *reg = w->data;
	struct client *c;

	(void)revents;
	while ((c = TAILQ_FIRST(&reg->announced)) != NULL &&
	    c->since + conf.data_timeout <= ev_now(loop) + 0.001) {
		TAILQ_REMOVE(&reg->announced, c, entry);
		reg->nannounced--;
		atomic_fetch_add(&stats.err_timeout, 1);
		log_warnx("reg %llu: no data connection within %.1fs for "
			  "client %s; closing it",
		    (unsigned long long)reg->id, conf.data_timeout,
		    c->addr_str);
		reg_client_free(reg, c, NULL);
	}
	reg_arm_data_timer(reg);
	reg_announce(reg);
}

/* Out of fds: queued clients that hung up still hold theirs, and the
 * data connection that would move the queue needs one. */
static unsigned
reg_drop_gone(struct reg *reg)
{
	struct client *c, *next;
	unsigned n = 0;

	for (c = TAILQ_FIRST(&reg->queue); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (reg_client_peek(c) != REG_PEEK_LIVE) {
			TAILQ_REMOVE(&reg->queue, c, entry);
			reg->nqueued--;
			reg_client_free(reg, c, "left while it waited");
			n++;
		}
	}
	return n;
}

/* The pause is over: first give back what hung-up clients hold. */
static void
reg_pause_done(struct accept_pause *p)
{
	(void)reg_drop_gone(p->data);
}

/* accept4 with the error policy: -1 means "stop for now". */
static int
reg_accept(struct reg *reg, int lfd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	int fd, err, gave_up = 0;

	for (;;) {
		fd = accept4(lfd, (struct sockaddr *)ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1)
			return fd;
		err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK)
			return -1;
		if (net_accept_is_temporary(err))
			continue;
		atomic_fetch_add(&stats.err_accept, 1);
		log_warn("reg %llu: accept on port %u",
		    (unsigned long long)reg->id,
		    lfd == reg->cl_fd ? reg->cport : reg->sport);
		if (!accept_pause_is_exhaustion(err))
			return -1;
		/*
		 * A data connection moves the queue along: make room for it,
		 * once: from clients that left, else by giving up the newest
		 * waiting one.  Only this process's limit yields to that:
		 * ENFILE, ENOBUFS and ENOMEM are the system's, and emptying
		 * the queue would not help.
		 */
		if (err == EMFILE && !gave_up && lfd == reg->sv_fd &&
		    !TAILQ_EMPTY(&reg->queue)) {
			struct client *c = NULL;

			if (reg_drop_gone(reg) == 0)
				c = TAILQ_LAST(&reg->queue, client_list);
			if (c != NULL) {
				TAILQ_REMOVE(&reg->queue, c, entry);
				reg->nqueued--;
				reg_client_free(reg, c,
				    "out of file descriptors");
			}
			gave_up = 1;
			continue;
		}
		accept_pause_start(reg->worker->loop, &reg->pause);
		return -1;
	}
}

static void
reg_client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct reg *reg = w->data;
	struct sockaddr_storage ss;
	int fd, n;

	(void)loop;
	(void)revents;
	/* Bounded per wakeup so one busy port cannot starve the loop. */
	for (n = 0; n < 64 && reg->state == REG_ACTIVE; n++) {
		struct client *c;

		fd = reg_accept(reg, reg->cl_fd, &ss);
		if (fd == -1)
			return;
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			log_warnx("reg %llu: out of memory for a client",
			    (unsigned long long)reg->id);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->addr = ss;
		c->state = CLIENT_QUEUED;
		/* Unpredictable, so a data connection cannot guess one. */
		if (getrandom(&c->id, sizeof(c->id), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(c->id))
			c->id =
			    worker_next_id(reg->worker) * 0x9e3779b97f4a7c15ULL;
		proto_addr_format(c->addr_str, sizeof(c->addr_str),
		    (struct sockaddr *)&ss);
		atomic_fetch_add(&stats.queued, 1);
		atomic_fetch_add(&reg->share->queued, 1);
		log_info("Client connected: %s", c->addr_str);
		log_debug("reg %llu: client %s queued",
		    (unsigned long long)reg->id, c->addr_str);
		if (reg->nqueued + reg->nannounced >= conf.max_queue ||
		    atomic_load(&reg->share->sessions) + reg->nqueued +
			    reg->nannounced >=
			conf.max_sessions) {
			atomic_fetch_add(&stats.err_limit, 1);
			reg_client_free(reg, c,
			    "too many clients for this registration");
			continue;
		}
		TAILQ_INSERT_TAIL(&reg->queue, c, entry);
		reg->nqueued++;
		reg_announce(reg);
	}
}

static void
reg_pair(struct reg *reg, struct client *c, int data_fd)
{
	TAILQ_REMOVE(&reg->announced, c, entry);
	reg->nannounced--;
	reg_arm_data_timer(reg);
	session_pair(reg, c, data_fd);
	reg_announce(reg);
}

static struct client *
reg_find_announced(struct reg *reg, uint64_t id)
{
	struct client *c;

	TAILQ_FOREACH(c, &reg->announced, entry)
		if (c->id == id)
			return c;
	return NULL;
}

/* How many of <reg>'s data connections are in <state>. */
static unsigned
reg_dconn_count(const struct reg *reg, enum dconn_state state)
{
	const struct dconn *d;
	unsigned n = 0;

	TAILQ_FOREACH(d, &reg->dconns, entry)
		n += d->state == state;
	return n;
}

/* Whether <d> has sent nothing yet: no part of a line read, none
 * waiting (or only its end). */
static int
reg_dconn_silent(const struct dconn *d)
{
	char b;

	return d->len == 0 && recv(d->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

/*
 * Close the oldest data connection still waiting for its first line and
 * silent: 0, or -1 if there is none (all pooled or authenticating).  One
 * whose line is there, unread only because a burst of connections was
 * accepted in the same turn of the loop, is genuine and kept; only when
 * every one has something to say does the oldest go.
 */
static int
reg_dconn_evict(struct reg *reg)
{
	struct dconn *d, *oldest = NULL, *victim = NULL;

	for (d = TAILQ_FIRST(&reg->dconns); d != NULL;
	     d = TAILQ_NEXT(d, entry)) {
		int hello = d->state == DCONN_HELLO;

		if (hello && oldest == NULL)
			oldest = d;
		if (hello && reg_dconn_silent(d)) {
			victim = d;
			break;
		}
	}
	if (victim == NULL)
		victim = oldest;
	if (victim == NULL)
		return -1;
	atomic_fetch_add(&stats.err_limit, 1);
	log_warnx("reg %llu: over the limit of %u unnamed data connections; "
		  "closed the oldest silent one",
	    (unsigned long long)reg->id, conf.max_queue + REG_POOL_MAX);
	reg_dconn_free(victim);
	return 0;
}

/* An authenticated pooled data connection waits for a client. */
static void
reg_dconn_pool(struct dconn *d)
{
	struct reg *reg = d->reg;

	ev_timer_stop(reg->worker->loop, &d->timer);
	d->state = DCONN_POOLED;
	d->len = 0;
	reg->npooled++;
	reg_announce(reg);
}

static void
reg_dconn_pool_hello(struct dconn *d, const struct proto_msg *m)
{
	struct reg *reg = d->reg;
	struct proto_msg ch;
	uint8_t rnd[16];
	char line[PROTO_LINE_MAX];
	int n;

	if (!(reg->ext & PROTO_EXT_POOL) || !auth_equal(reg->key, m->reg) ||
	    reg->npooled + reg_dconn_count(reg, DCONN_AUTH) >= reg->pool_max) {
		atomic_fetch_add(&stats.err_stray, 1);
		log_warnx("reg %llu: unwanted pooled data connection; closed",
		    (unsigned long long)reg->id);
		reg_dconn_free(d);
		return;
	}
	if (conf.secret_len == 0) {
		reg_dconn_pool(d);
		return;
	}
	/* A fresh challenge for this connection alone. */
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		log_warn("reg %llu: pooled data connection: getrandom; closed",
		    (unsigned long long)reg->id);
		reg_dconn_free(d);
		return;
	}
	proto_hex_encode(d->nonce, rnd, sizeof(rnd));
	memset(&ch, 0, sizeof(ch));
	ch.type = PROTO_CHALLENGE;
	snprintf(ch.hex, sizeof(ch.hex), "%s", d->nonce);
	n = proto_format(line, sizeof(line), &ch);
	if (n == -1 ||
	    send(d->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		log_warnx("reg %llu: pooled data connection: cannot send "
			  "[CHALLENGE] (%s); closed",
		    (unsigned long long)reg->id,
		    n == -1 ? "line too long" : strerror(errno));
		reg_dconn_free(d);
		return;
	}
	d->state = DCONN_AUTH;
	d->len = 0;
}

static void
reg_dconn_line(struct dconn *d, const struct proto_msg *m)
{
	struct reg *reg = d->reg;
	struct client *c;
	int fd;

	if (d->state == DCONN_AUTH) {
		if (m->type != PROTO_AUTH ||
		    auth_verify_pool(conf.secret, conf.secret_len, reg->key,
			d->nonce, m->hex) != 0) {
			atomic_fetch_add(&stats.err_auth, 1);
			log_warnx("reg %llu: pooled data connection failed "
				  "authentication; closed",
			    (unsigned long long)reg->id);
			reg_dconn_free(d);
			return;
		}
		reg_dconn_pool(d);
		return;
	}
	if (m->type == PROTO_DATA && m->pool == 1 && !m->has_id) {
		reg_dconn_pool_hello(d, m);
		return;
	}
	if (m->type != PROTO_DATA || !m->has_id ||
	    !auth_equal(reg->key, m->reg)) {
		atomic_fetch_add(&stats.err_stray, 1);
		log_warnx("reg %llu: data connection without a valid "
			  "[DATA] line; closed",
		    (unsigned long long)reg->id);
		reg_dconn_free(d);
		return;
	}
	if (conf.secret_len > 0 &&
	    auth_verify_data(conf.secret, conf.secret_len, reg->key, m->id,
		m->hex) != 0) {
		atomic_fetch_add(&stats.err_auth, 1);
		log_warnx("reg %llu: data connection for client %llx failed "
			  "authentication; closed",
		    (unsigned long long)reg->id, (unsigned long long)m->id);
		reg_dconn_free(d);
		return;
	}
	c = reg_find_announced(reg, m->id);
	if (c == NULL) {
		atomic_fetch_add(&stats.err_stray, 1);
		log_warnx("reg %llu: data connection names unknown client "
			  "%llx; closed",
		    (unsigned long long)reg->id, (unsigned long long)m->id);
		reg_dconn_free(d);
		return;
	}
	fd = d->fd;
	d->fd = -1;
	reg_dconn_free(d);
	reg_pair(reg, c, fd);
}

static void
reg_dconn_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dconn *d = w->data;
	struct proto_msg m;
	ssize_t n, used;

	(void)loop;
	(void)revents;
	if (d->state == DCONN_POOLED) {
		/* An idle pooled connection has nothing to say: this is its
		 * end (or junk, which ends it too). */
		log_debug("reg %llu: a pooled data connection closed",
		    (unsigned long long)d->reg->id);
		reg_dconn_free(d);
		return;
	}
	/* Only up to the first LF: what follows is the client's. */
	n = net_recv_line(d->fd, d->buf, sizeof(d->buf), &d->len);
	if (n == 0)
		return;
	if (n == -1) {
		if (d->len == sizeof(d->buf)) {
			atomic_fetch_add(&stats.err_proto, 1);
			log_warnx("reg %llu: data connection: a first line of "
				  "over %zu bytes; closed",
			    (unsigned long long)d->reg->id, sizeof(d->buf));
		} else {
			log_warnx("reg %llu: data connection ended before its "
				  "[DATA] line; closed",
			    (unsigned long long)d->reg->id);
		}
		reg_dconn_free(d);
		return;
	}
	used = proto_parse(&m, d->buf, d->len);
	d->len = 0;
	if (used <= 0) {
		atomic_fetch_add(&stats.err_proto, 1);
		log_warnx("reg %llu: data connection: %s; closed",
		    (unsigned long long)d->reg->id,
		    proto_strerror(used == 0 ? PROTO_E_SYNTAX : (int)used));
		reg_dconn_free(d);
		return;
	}
	reg_dconn_line(d, &m);
}

static void
reg_dconn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dconn *d = w->data;

	(void)loop;
	(void)revents;
	log_warnx("reg %llu: data connection sent no [DATA] line in time; "
		  "closed",
	    (unsigned long long)d->reg->id);
	atomic_fetch_add(&stats.err_proto, 1);
	reg_dconn_free(d);
}

static void
reg_server_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct reg *reg = w->data;
	struct sockaddr_storage ss;
	char addr[NET_ADDR_LEN];
	int fd, n;

	(void)revents;
	for (n = 0; n < 64 && reg->state == REG_ACTIVE; n++) {
		fd = reg_accept(reg, reg->sv_fd, &ss);
		if (fd == -1)
			return;
		proto_addr_format(addr, sizeof(addr), (struct sockaddr *)&ss);
		if (reg->ext & PROTO_EXT_ADDR) {
			struct dconn *d;

			/*
			 * No honest server side has more open than one per
			 * announced client plus its pool: the rest would
			 * only hold descriptors until -hello-timeout.  The
			 * oldest silent one goes, not the newcomer: a genuine
			 * connection says [DATA] at once, so whoever holds
			 * silent ones cannot lock the server side out.
			 */
			if (reg->ndconns >= conf.max_queue + REG_POOL_MAX &&
			    reg_dconn_evict(reg) == -1) {
				atomic_fetch_add(&stats.err_limit, 1);
				log_warnx("reg %llu: data connection from %s "
					  "over the limit of %u unnamed ones; "
					  "closed",
				    (unsigned long long)reg->id, addr,
				    conf.max_queue + REG_POOL_MAX);
				close(fd);
				continue;
			}
			d = calloc(1, sizeof(*d));
			if (d == NULL) {
				close(fd);
				continue;
			}
			d->reg = reg;
			d->fd = fd;
			d->state = DCONN_HELLO;
			ev_io_init(&d->io, reg_dconn_rd_cb, fd, EV_READ);
			ev_timer_init(&d->timer, reg_dconn_timeout_cb,
			    conf.hello_timeout, 0.);
			d->io.data = d;
			d->timer.data = d;
			TAILQ_INSERT_TAIL(&reg->dconns, d, entry);
			reg->ndconns++;
			ev_io_start(loop, &d->io);
			ev_timer_start(loop, &d->timer);
			continue;
		}
		if (TAILQ_EMPTY(&reg->announced)) {
			/* The original paired it with the next client. */
			atomic_fetch_add(&stats.err_stray, 1);
			log_warnx("reg %llu: stray connection from %s on "
				  "server port %u with no client waiting; "
				  "closed",
			    (unsigned long long)reg->id, addr, reg->sport);
			close(fd);
			continue;
		}
		reg_pair(reg, TAILQ_FIRST(&reg->announced), fd);
	}
}

static void
reg_send_ok(struct reg *reg)
{
	struct proto_msg m;

	ev_timer_stop(reg->worker->loop, &reg->hs_timer);
	if (reg->cl_fd == -1) {
		/* An extension peer: a refusal is said with [ERR]. */
		reg->mode = REG_MODE_EXT;
		if (reg_open_ports(reg, reg->want_port) == -1)
			return;
	} else if (reg->want_port != 0 && reg->want_port != reg->cport) {
		if (reg_open_public(reg, reg->want_port) == -1) {
			char why[96];

			snprintf(why, sizeof(why), "port %u unavailable: %s",
			    reg->want_port, strerror(errno));
			reg_refuse(reg, why);
			return;
		}
		stats_reg_update(reg);
		log_info("Serving relay requests on port %u", reg->cport);
	}
	memset(&m, 0, sizeof(m));
	m.type = PROTO_OK;
	m.version = PROTO_VERSION;
	m.port = reg->cport;
	m.sport = reg->sport;
	m.ext = reg->ext;
	m.ka = reg->ka;
	m.pool = reg->pool_max;
	snprintf(m.reg, sizeof(m.reg), "%s", reg->key);
	reg->mode = REG_MODE_EXT;
	if (reg_ctl_send_msg(reg, &m) == -1)
		return;
	log_info("reg %llu: extensions negotiated with %s (ext=%#x)",
	    (unsigned long long)reg->id, reg->peer_str, reg->ext);
	if (reg->ka > 0) {
		ev_timer_set(&reg->ka_timer, reg->ka, reg->ka);
		ev_timer_again(reg->worker->loop, &reg->ka_timer);
	}
}

static void
reg_refuse(struct reg *reg, const char *why)
{
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_ERR;
	snprintf(m.text, sizeof(m.text), "%s", why);
	if (reg_ctl_send_msg(reg, &m) == 0)
		reg_teardown(reg, why, 1);
}

static void
reg_on_hello(struct reg *reg, const struct proto_msg *m)
{
	if (m->version < 1) {
		reg_refuse(reg, "unsupported protocol version");
		return;
	}
	/*
	 * A [NEW] of the original format sent before the [HELLO] got here,
	 * even one already paired or timed out, settled the peer on the
	 * original protocol (the shim's helper then ignores this [OK]), and
	 * its data connections may still be on their way: keep the original
	 * pairing for the whole registration, and only advertise the port.
	 */
	reg->ext = 0;
	if (!reg->new_sent)
		reg->ext = m->ext & (PROTO_EXT_ADDR | PROTO_EXT_PIPE);
	if (reg->ext & PROTO_EXT_PIPE)
		reg->ext |= PROTO_EXT_ADDR;
	reg->pool_max = 0;
	if ((reg->ext & PROTO_EXT_ADDR) && (m->ext & PROTO_EXT_POOL) &&
	    m->pool > 0) {
		reg->ext |= PROTO_EXT_POOL;
		reg->pool_max = m->pool > REG_POOL_MAX ? REG_POOL_MAX : m->pool;
	}
	reg->ka = m->ka > 3600 ? 3600 : m->ka;
	if (m->port != 0 &&
	    (m->port < conf.port_min || m->port > conf.port_max)) {
		char why[96];

		snprintf(why, sizeof(why),
		    "port %u is outside the allowed range %u-%u", m->port,
		    conf.port_min, conf.port_max);
		reg_refuse(reg, why);
		return;
	}
	reg->want_port = m->port;
	if (conf.secret_len > 0) {
		struct proto_msg c;

		memset(&c, 0, sizeof(c));
		c.type = PROTO_CHALLENGE;
		snprintf(c.hex, sizeof(c.hex), "%s", reg->nonce);
		reg->mode = REG_MODE_AUTH;
		(void)reg_ctl_send_msg(reg, &c);
		return;
	}
	reg_send_ok(reg);
}

/*
 * The peer is not an extension peer after all: from now on its bytes are
 * drained and ignored, as the original did, and if its ports were held
 * back for a [HELLO] that did not come, they open now.
 */
static void
reg_become_original(struct reg *reg)
{
	reg->mode = REG_MODE_ORIGINAL;
	reg->in_len = 0;
	if (reg->cl_fd == -1 && conf.secret_len == 0)
		(void)reg_open_ports(reg, 0);
}

/* One complete line from an extension peer. */
static void
reg_ctl_line(struct reg *reg, const struct proto_msg *m)
{
	switch (reg->mode) {
	case REG_MODE_UNDECIDED:
		if (m->type == PROTO_HELLO)
			reg_on_hello(reg, m);
		else
			reg_become_original(reg);
		break;
	case REG_MODE_AUTH:
		if (m->type != PROTO_AUTH ||
		    auth_verify_ctl(conf.secret, conf.secret_len, reg->nonce,
			m->hex) != 0) {
			atomic_fetch_add(&stats.err_auth, 1);
			log_warnx("reg %llu: %s failed authentication",
			    (unsigned long long)reg->id, reg->peer_str);
			reg_refuse(reg, "authentication failed");
			return;
		}
		reg_send_ok(reg);
		break;
	case REG_MODE_EXT:
		if (m->type == PROTO_PING) {
			struct proto_msg p = {.type = PROTO_PONG};

			(void)reg_ctl_send_msg(reg, &p);
		}
		/* PONG and unknown lines only refresh last_rx. */
		break;
	case REG_MODE_ORIGINAL:
		break;
	}
}

static void
reg_ctl_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct reg *reg = w->data;
	char scratch[4096];
	ssize_t n;

	(void)revents;
	if (reg->mode == REG_MODE_ORIGINAL) {
		/* The original never read this; drain and ignore. */
		n = recv(reg->ctl_fd, scratch, sizeof(scratch), 0);
	} else {
		n = recv(reg->ctl_fd, reg->in + reg->in_len,
		    sizeof(reg->in) - reg->in_len, 0);
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		reg_close(reg,
		    n == 0 ? (reg->cl_fd == -1 ? "server closed the control "
						 "connection before registering"
					       : "server closed the control "
						 "connection")
			   : strerror(errno));
		return;
	}
	reg->last_rx = ev_now(loop);
	if (reg->mode == REG_MODE_ORIGINAL)
		return;
	reg->in_len += (size_t)n;
	if (reg->mode == REG_MODE_UNDECIDED) {
		static const char hello[] = "[HELLO]";
		size_t k = reg->in_len < sizeof(hello) - 1 ? reg->in_len
							   : sizeof(hello) - 1;

		if (memcmp(reg->in, hello, k) != 0) {
			reg_become_original(reg);
			return;
		}
	}
	while (reg->state == REG_ACTIVE && reg->mode != REG_MODE_ORIGINAL) {
		struct proto_msg m;
		ssize_t used = proto_parse(&m, reg->in, reg->in_len);

		if (used == 0)
			break;
		if (used < 0) {
			atomic_fetch_add(&stats.err_proto, 1);
			log_warnx("reg %llu: control line from %s: %s",
			    (unsigned long long)reg->id, reg->peer_str,
			    proto_strerror((int)used));
			if (reg->mode == REG_MODE_UNDECIDED) {
				reg_become_original(reg);
				return;
			}
			reg_refuse(reg, proto_strerror((int)used));
			return;
		}
		reg_ctl_line(reg, &m);
		if (reg->state != REG_ACTIVE)
			return;
		memmove(reg->in, reg->in + used, reg->in_len - (size_t)used);
		reg->in_len -= (size_t)used;
	}
}

/* Heartbeat: ping every ka seconds; a peer silent for 3 of them is dead. */
static void
reg_ka_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct reg *reg = w->data;
	struct proto_msg p = {.type = PROTO_PING};

	(void)revents;
	if (ev_now(loop) - reg->last_rx > 3.0 * reg->ka) {
		reg_close(reg, "heartbeat timed out");
		return;
	}
	(void)reg_ctl_send_msg(reg, &p);
}

/*
 * Open the public listener on <port> (0: any) in place of the current
 * one.  Returns 0, or -1 with errno set and the old listener kept.
 */
static int
reg_open_public(struct reg *reg, unsigned port)
{
	struct ev_loop *loop = reg->worker->loop;
	int fd = net_listen_addr(&reg->local, port, REG_BACKLOG);

	if (fd == -1)
		return -1;
	/* Accepted sockets inherit TCP_NODELAY and keepalive from their
	 * listener: set once here, not twice per session. */
	net_tune(fd);
	net_fastopen(fd, conf.fastopen);
	if (reg->cl_fd != -1) {
		ev_io_stop(loop, &reg->cl_io);
		close(reg->cl_fd);
	}
	reg->cl_fd = fd;
	reg->cport = net_local_port(fd);
	ev_io_set(&reg->cl_io, fd, EV_READ);
	ev_io_start(loop, &reg->cl_io);
	return 0;
}

/* Open both listeners and start serving.  Returns 0 or -1 (closed). */
static int
reg_open_ports(struct reg *reg, unsigned want_port)
{
	struct ev_loop *loop = reg->worker->loop;
	char why[160];

	if (reg_open_public(reg, want_port) == 0) {
		reg->sv_fd = net_listen_addr(&reg->local, 0, REG_BACKLOG);
		if (reg->sv_fd != -1) {
			net_tune(reg->sv_fd);
			net_fastopen(reg->sv_fd, conf.fastopen);
			reg->sport = net_local_port(reg->sv_fd);
			ev_io_set(&reg->sv_io, reg->sv_fd, EV_READ);
			ev_io_start(loop, &reg->sv_io);
			stats_reg_update(reg);
			log_info("Serving relay requests on port %u",
			    reg->cport);
			return 0;
		}
	}
	if (want_port != 0)
		snprintf(why, sizeof(why), "port %u unavailable: %s", want_port,
		    strerror(errno));
	else
		snprintf(why, sizeof(why), "cannot open listeners: %s",
		    strerror(errno));
	atomic_fetch_add(&stats.err_accept, 1);
	if (reg->mode != REG_MODE_UNDECIDED)
		reg_refuse(reg, why);
	else
		reg_close(reg, why);
	return -1;
}

static void
reg_hs_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	atomic_fetch_add(&stats.err_auth, 1);
	reg_close(w->data,
	    "no authenticated [HELLO] in time (a secret is "
	    "required)");
}

/*
 * reg_create: a control connection was accepted (and admitted by
 * reg_limits_admit).  Without a secret the two listeners open at once,
 * exactly as the original did; with one, only after the peer proved it.
 */
void
reg_create(struct worker *w, int ctl_fd, const struct sockaddr_storage *peer)
{
	socklen_t len;
	uint8_t rnd[32];
	struct reg *reg;

	reg = calloc(1, sizeof(*reg));
	if (reg != NULL) {
		reg->share = calloc(1, sizeof(*reg->share));
		if (reg->share == NULL) {
			free(reg);
			reg = NULL;
		} else {
			atomic_init(&reg->share->refs, 1);
		}
	}
	if (reg == NULL) {
		log_warnx("out of memory for a registration");
		reg_limits_release(peer);
		close(ctl_fd);
		return;
	}
	reg->worker = w;
	reg->id = worker_next_id(w);
	reg->ctl_fd = ctl_fd;
	reg->cl_fd = reg->sv_fd = -1;
	reg->state = REG_ACTIVE;
	reg->mode = REG_MODE_UNDECIDED;
	reg->peer = *peer;
	TAILQ_INIT(&reg->queue);
	TAILQ_INIT(&reg->announced);
	TAILQ_INIT(&reg->dconns);
	proto_addr_format(reg->peer_str, sizeof(reg->peer_str),
	    (struct sockaddr *)&reg->peer);
	ev_io_init(&reg->ctl_rd, reg_ctl_rd_cb, ctl_fd, EV_READ);
	ev_io_init(&reg->ctl_wr, reg_ctl_wr_cb, ctl_fd, EV_WRITE);
	ev_init(&reg->cl_io, reg_client_cb);
	ev_init(&reg->sv_io, reg_server_cb);
	ev_init(&reg->data_timer, reg_data_timer_cb);
	accept_pause_init(&reg->pause, &reg->cl_io, &reg->sv_io, reg_pause_done,
	    reg);
	ev_init(&reg->ka_timer, reg_ka_cb);
	ev_timer_init(&reg->hs_timer, reg_hs_timeout_cb, conf.hello_timeout,
	    0.);
	reg->ctl_rd.data = reg->ctl_wr.data = reg->cl_io.data =
	    reg->sv_io.data = reg->data_timer.data = reg->ka_timer.data =
		reg->hs_timer.data = reg;
	LIST_INSERT_HEAD(&w->regs, reg, entry);
	stats_reg_add(reg);
	atomic_fetch_add(&stats.regs_total, 1);
	log_info("Request to relay from: %s", reg->peer_str);

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		reg_close(reg, "no randomness for the registration key");
		return;
	}
	proto_hex_encode(reg->key, rnd, 16);
	proto_hex_encode(reg->nonce, rnd + 16, 16);

	/* Same family and bind address as the control listener. */
	len = sizeof(reg->local);
	if (getsockname(ctl_fd, (struct sockaddr *)&reg->local, &len) == -1) {
		reg_close(reg, strerror(errno));
		return;
	}
	if (conf.bind_any) {
		/* Wildcard, keeping the control socket's family (dual-stack
		 * "[::]" like the original, or 0.0.0.0 without IPv6). */
		if (reg->local.ss_family == AF_INET6)
			memset(&((struct sockaddr_in6 *)&reg->local)->sin6_addr,
			    0, 16);
		else
			((struct sockaddr_in *)&reg->local)->sin_addr.s_addr =
			    0;
	}
	net_tune(ctl_fd);
	reg->last_rx = ev_now(w->loop);
	ev_io_start(w->loop, &reg->ctl_rd);
	if (conf.secret_len > 0) {
		ev_timer_start(w->loop, &reg->hs_timer);
		return;
	}
	/*
	 * A [HELLO] that is already here may ask for a port: let it decide,
	 * rather than open (and log) a public port only to drop it.  A peer
	 * of the original protocol sends nothing, so its ports open now.
	 */
	{
		char peek[PROTO_LINE_MAX];
		ssize_t n =
		    recv(ctl_fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);

		if (n > 7 && memcmp(peek, "[HELLO]", 7) == 0 &&
		    memchr(peek, '\n', (size_t)n) != NULL)
			return;
	}
	(void)reg_open_ports(reg, 0);
}

void
reg_share_release(struct reg_share *share)
{
	if (share != NULL && atomic_fetch_sub(&share->refs, 1) == 1)
		free(share);
}
