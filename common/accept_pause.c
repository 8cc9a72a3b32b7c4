/*
 * accept_pause.c - pausing a listener that ran out of descriptors.
 */
#include <errno.h>
#include <stddef.h>

#include "accept_pause.h"

static void
accept_pause_cb_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct accept_pause *p = w->data;

	(void)revents;
	if (p->cb != NULL)
		p->cb(p);
	for (int i = 0; i < 2; i++)
		if (p->io[i] != NULL)
			ev_io_start(loop, p->io[i]);
}

void
accept_pause_init(struct accept_pause *p, ev_io *a, ev_io *b,
    accept_pause_cb cb, void *data)
{
	p->io[0] = a;
	p->io[1] = b;
	p->cb = cb;
	p->data = data;
	ev_init(&p->timer, accept_pause_cb_timer);
	p->timer.data = p;
}

void
accept_pause_start(struct ev_loop *loop, struct accept_pause *p)
{
	for (int i = 0; i < 2; i++)
		if (p->io[i] != NULL)
			ev_io_stop(loop, p->io[i]);
	if (!ev_is_active(&p->timer)) {
		ev_timer_set(&p->timer, ACCEPT_PAUSE_SECS, 0.);
		ev_timer_start(loop, &p->timer);
	}
}

void
accept_pause_stop(struct ev_loop *loop, struct accept_pause *p)
{
	ev_timer_stop(loop, &p->timer);
}

int
accept_pause_is_exhaustion(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM;
}
