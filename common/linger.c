/*
 * linger.c - closing sockets gracefully; see linger.h.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "linger.h"
#include "log.h"

/* Bytes sent on <fd> that its peer has not acknowledged yet. */
static int
linger_unacked(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : 0;
}

/* The one way out: stop watching, close, free. */
static void
linger_end(struct linger_sock *l, const char *why)
{
	struct linger_set *set = l->set;
	void (*done)(void *) = l->done;
	void *arg = l->arg;

	ev_io_stop(set->loop, &l->io);
	ev_timer_stop(set->loop, &l->tick);
	log_debug("%s: closed after lingering: %s", l->tag, why);
	close(l->fd);
	LIST_REMOVE(l, entry);
	set->n--;
	free(l);
	if (done != NULL)
		done(arg);
}

static void
linger_drain(struct linger_sock *l)
{
	l->state = LINGER_DRAIN;
	/* The peer learns there is no more, rather than waiting for it. */
	(void)shutdown(l->fd, SHUT_WR);
	ev_io_stop(l->set->loop, &l->io);
	ev_io_set(&l->io, l->fd, EV_READ);
	ev_io_start(l->set->loop, &l->io);
}

static void
linger_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct linger_sock *l = w->data;
	char buf[16384];
	ssize_t n;

	(void)loop;
	(void)revents;
	if (l->state == LINGER_FLUSH) {
		n = send(l->fd, l->out + l->off, l->len - l->off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			linger_end(l, strerror(errno));
			return;
		}
		if (n > 0)
			l->off += (size_t)n;
		if (l->off == l->len)
			linger_drain(l);
		return;
	}
	do
		n = recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT);
	while (n > 0 || (n == -1 && errno == EINTR));
	if (n == 0)
		linger_end(l, "end of its input");
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		linger_end(l, strerror(errno));
}

static void
linger_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct linger_sock *l = w->data;

	(void)revents;
	if (l->state == LINGER_DRAIN && linger_unacked(l->fd) == 0) {
		linger_end(l, "its peer has every byte");
		return;
	}
	if (ev_now(loop) >= l->until) {
		linger_end(l, "linger time over");
		return;
	}
	ev_timer_set(w, LINGER_POLL_SECS, 0.);
	ev_timer_start(loop, w);
}

void
linger_set_init(struct linger_set *set, struct ev_loop *loop)
{
	set->loop = loop;
	LIST_INIT(&set->all);
	set->n = 0;
}

void
linger_close(struct linger_set *set, int fd, int input_ended, const void *out,
    size_t len, const char *tag)
{
	linger_close_notify(set, fd, input_ended, out, len, tag, NULL, NULL);
}

/* Closed without lingering: the owner hears of it all the same. */
static void
linger_closed_now(int fd, void (*done)(void *), void *arg)
{
	if (fd != -1)
		close(fd);
	if (done != NULL)
		done(arg);
}

void
linger_close_notify(struct linger_set *set, int fd, int input_ended,
    const void *out, size_t len, const char *tag, void (*done)(void *),
    void *arg)
{
	struct linger_sock *l;

	if (fd == -1 ||
	    (len == 0 && (input_ended || linger_unacked(fd) == 0))) {
		linger_closed_now(fd, done, arg);
		return;
	}
	l = malloc(sizeof(*l) + len);
	if (l == NULL) {
		log_warnx("%s: out of memory to linger; closed", tag);
		linger_closed_now(fd, done, arg);
		return;
	}
	memset(l, 0, sizeof(*l));
	l->set = set;
	l->done = done;
	l->arg = arg;
	l->fd = fd;
	l->state = LINGER_FLUSH;
	l->len = len;
	if (len > 0)
		memcpy(l->out, out, len);
	snprintf(l->tag, sizeof(l->tag), "%s", tag);
	l->until = ev_now(set->loop) + LINGER_MAX_SECS;
	ev_io_init(&l->io, linger_io_cb, fd, EV_WRITE);
	l->io.data = l;
	ev_timer_init(&l->tick, linger_tick_cb, LINGER_POLL_SECS, 0.);
	l->tick.data = l;
	LIST_INSERT_HEAD(&set->all, l, entry);
	set->n++;
	log_debug("%s: lingers: %zu bytes to send, %d unacknowledged", tag, len,
	    linger_unacked(fd));
	if (len == 0)
		linger_drain(l);
	else
		ev_io_start(set->loop, &l->io);
	ev_timer_start(set->loop, &l->tick);
}

void
linger_set_clear(struct linger_set *set)
{
	while (!LIST_EMPTY(&set->all))
		linger_end(LIST_FIRST(&set->all), "closing down");
}
