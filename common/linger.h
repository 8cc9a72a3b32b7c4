/*
 * linger.h - close a socket without losing what it still has to deliver.
 *
 * close(2) on a socket whose input was not read to its end makes the
 * kernel reset the connection and throw away every byte it had not sent
 * yet.  A relay that closes one side after the other ended, while its
 * peer is still sending, would so cut short what it had already accepted
 * for delivery.  A socket handed to linger_close() is kept instead: bytes
 * still queued in user space are written first, then its input is read
 * and dropped until its peer has acknowledged every byte, ends its
 * input, or LINGER_MAX_SECS pass.
 *
 * Used by relayd's sessions and refused registrations, and by relayshim's
 * standalone forwarder.
 */
#ifndef COMMON_LINGER_H
#define COMMON_LINGER_H

#include <ev.h>
#include <stddef.h>
#include <sys/queue.h>

#define LINGER_MAX_SECS 30.0 /* a socket lingers at most this long */
#define LINGER_POLL_SECS 0.1 /* how often its send queue is looked at */

enum linger_state {
	LINGER_FLUSH, /* writing the bytes queued in user space */
	LINGER_DRAIN, /* write side shut; input read and dropped */
};

struct linger_sock {
	LIST_ENTRY(linger_sock) entry;
	enum linger_state state;
	struct linger_set *set;
	int fd;
	ev_io io;
	ev_timer tick;
	ev_tstamp until;
	char tag[48];	      /* names the socket in the log */
	void (*done)(void *); /* once closed, if set: done(arg) */
	void *arg;
	size_t off, len;
	char out[]; /* LINGER_FLUSH: out[off..len) is still to be sent */
};

/* The lingering sockets of one event loop. */
struct linger_set {
	struct ev_loop *loop;
	LIST_HEAD(linger_list, linger_sock) all;
	unsigned n;
};

void linger_set_init(struct linger_set *set, struct ev_loop *loop);
/*
 * linger_close: close <fd>, which becomes the set's.  <out>/<len> are
 * bytes the caller still had to send (may be NULL/0); <input_ended> says
 * its input was read to EOF, when closing cannot reset it.  The socket is
 * closed at once when nothing it holds can be lost.
 */
void linger_close(struct linger_set *set, int fd, int input_ended,
    const void *out, size_t len, const char *tag);
/*
 * linger_close_notify: linger_close, then <done>(<arg>) once the socket
 * is closed, at once or after lingering: what its owner keeps counted
 * for it (relayd's admission of a refused registration) is held as long
 * as the socket is.
 */
void linger_close_notify(struct linger_set *set, int fd, int input_ended,
    const void *out, size_t len, const char *tag, void (*done)(void *),
    void *arg);
/* linger_set_clear: close every lingering socket now (shutdown). */
void linger_set_clear(struct linger_set *set);

#endif
