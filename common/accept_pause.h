/*
 * accept_pause.h - stop a listener for a while after accept(2) ran out of
 * descriptors or memory.  Such a listener stays readable, so a level-
 * triggered loop would call accept(2) again at once, forever; pausing
 * lets closing connections give descriptors back.  Used by relayd's
 * control, client, server-facing and metrics listeners and by the
 * helper's attach socket.
 */
#ifndef COMMON_ACCEPT_PAUSE_H
#define COMMON_ACCEPT_PAUSE_H

#include <ev.h>

#define ACCEPT_PAUSE_SECS 1.0

struct accept_pause;
/* Runs when the pause ends, before the listeners start again. */
typedef void (*accept_pause_cb)(struct accept_pause *);

struct accept_pause {
	ev_timer timer;
	ev_io *io[2]; /* the listeners paused together; io[1] may be NULL */
	accept_pause_cb cb;
	void *data;
};

void accept_pause_init(struct accept_pause *p, ev_io *a, ev_io *b,
    accept_pause_cb cb, void *data);
/* Stop the listeners for ACCEPT_PAUSE_SECS; a pause under way goes on. */
void accept_pause_start(struct ev_loop *loop, struct accept_pause *p);
/* Cancel the pause without starting the listeners (teardown). */
void accept_pause_stop(struct ev_loop *loop, struct accept_pause *p);
/* accept_pause_is_exhaustion: whether accept(2)'s <err> means "out of
 * descriptors or memory", after which pausing is the cure. */
int accept_pause_is_exhaustion(int err);

#endif
