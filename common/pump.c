/*
 * pump.c - splice(2) relay with a read/write fallback.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pump.h"

void
pipe_pool_init(struct pipe_pool *pool, size_t cap, int no_splice)
{
	pool->pipes = NULL;
	pool->count = 0;
	pool->cap = cap;
	pool->no_splice = no_splice;
	pool->in_use = 0;
	pool->bufs_in_use = 0;
}

void
pipe_pool_free(struct pipe_pool *pool)
{
	for (size_t i = 0; i < pool->count; i++) {
		close(pool->pipes[i].fd[0]);
		close(pool->pipes[i].fd[1]);
	}
	free(pool->pipes);
	pool->pipes = NULL;
	pool->count = 0;
}

static int
pipe_pool_get(struct pipe_pool *pool, int p[2], size_t *size)
{
	if (pool->no_splice)
		return -1;
	if (pool->count > 0) {
		pool->count--;
		p[0] = pool->pipes[pool->count].fd[0];
		p[1] = pool->pipes[pool->count].fd[1];
		*size = pool->pipes[pool->count].size;
	} else {
		int sz;

		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
			return -1;
		/* A larger pipe halves the splice calls per megabyte.  Past
		 * the user's fs.pipe-user-pages-soft the kernel refuses and
		 * the pipe keeps its default size, or less. */
		sz = fcntl(p[1], F_SETPIPE_SZ, PUMP_PIPE_SIZE);
		if (sz == -1)
			sz = fcntl(p[1], F_GETPIPE_SZ);
		*size = sz > 0 ? (size_t)sz : PIPE_BUF;
	}
	pool->in_use++;
	return 0;
}

/* Only an empty pipe may go back: its bytes belong to one session. */
static void
pipe_pool_put(struct pipe_pool *pool, int p[2], size_t size)
{
	pool->in_use--;
	if (pool->count == pool->cap) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pool->pipes == NULL) {
		pool->pipes = calloc(pool->cap, sizeof(*pool->pipes));
		if (pool->pipes == NULL) {
			close(p[0]);
			close(p[1]);
			return;
		}
	}
	pool->pipes[pool->count].fd[0] = p[0];
	pool->pipes[pool->count].fd[1] = p[1];
	pool->pipes[pool->count].size = size;
	pool->count++;
}

/* Bytes the borrowed pipe or buffer can still take. */
static size_t
pump_dir_room(const struct pump_dir *d)
{
	if (d->pipe[0] != -1)
		return d->pipe_full || d->pipe_size <= d->len
		    ? 0
		    : d->pipe_size - d->len;
	return PUMP_BUF_SIZE - d->off - d->len;
}

static int
pump_dir_has_storage(const struct pump_dir *d)
{
	return d->pipe[0] != -1 || d->buf != NULL;
}

static void
pump_dir_release(struct pump_dir *d)
{
	struct pipe_pool *pool = d->pump->pool;

	if (d->pipe[0] != -1) {
		if (d->len == 0) {
			pipe_pool_put(pool, d->pipe, d->pipe_size);
		} else {
			pool->in_use--;
			close(d->pipe[0]);
			close(d->pipe[1]);
		}
		d->pipe[0] = d->pipe[1] = -1;
	}
	if (d->buf != NULL) {
		free(d->buf);
		d->buf = NULL;
		pool->bufs_in_use--;
	}
	d->len = d->off = 0;
	d->pipe_full = 0;
}

static int
pump_dir_acquire(struct pump_dir *d)
{
	struct pipe_pool *pool = d->pump->pool;

	if (pipe_pool_get(pool, d->pipe, &d->pipe_size) == 0)
		return 0;
	d->pipe[0] = d->pipe[1] = -1;
	d->buf = malloc(PUMP_BUF_SIZE);
	if (d->buf == NULL)
		return -1;
	pool->bufs_in_use++;
	return 0;
}

/* Interest follows state: read while there is room, write while full. */
static void
pump_dir_update(struct pump_dir *d)
{
	struct ev_loop *loop = d->pump->loop;
	int want_rd = d->state == PUMP_DIR_OPEN &&
	    (!pump_dir_has_storage(d) || pump_dir_room(d) > 0);
	int want_wr = d->state != PUMP_DIR_CLOSED && d->len > 0;

	if (want_rd && !ev_is_active(&d->rd))
		ev_io_start(loop, &d->rd);
	else if (!want_rd && ev_is_active(&d->rd))
		ev_io_stop(loop, &d->rd);
	if (want_wr && !ev_is_active(&d->wr))
		ev_io_start(loop, &d->wr);
	else if (!want_wr && ev_is_active(&d->wr))
		ev_io_stop(loop, &d->wr);
}

static void pump_finish(struct pump *pump, enum pump_end end, int err);

static void
pump_dir_close(struct pump_dir *d)
{
	struct pump *pump = d->pump;

	d->state = PUMP_DIR_CLOSED;
	(void)shutdown(d->dst, SHUT_WR);
	pump_dir_release(d);
	pump_dir_update(d);
	if (pump->cb != NULL)
		pump->cb(pump, (int)(d - pump->dir), PUMP_END_DONE, d->err);
	if (pump->running && pump->dir[0].state == PUMP_DIR_CLOSED &&
	    pump->dir[1].state == PUMP_DIR_CLOSED)
		pump_finish(pump,
		    pump->write_err ? PUMP_END_ERROR : PUMP_END_DONE,
		    pump->write_err);
}

/*
 * A write failed: this direction's destination is gone, and what it
 * holds can go nowhere.  The other direction reads from that very
 * socket, so it meets the end too and then drains what it holds into
 * its own destination, which may be healthy: a server that answered and
 * then reset the client's upload still has its answer delivered, as it
 * would be without a relay in between.
 */
static void
pump_dir_fail(struct pump_dir *d, int err)
{
	struct pump *pump = d->pump;

	d->err = err;
	pump->write_err = err;
	d->state = PUMP_DIR_CLOSED;
	pump_dir_release(d);
	pump_dir_update(d);
	if (pump->cb != NULL)
		pump->cb(pump, (int)(d - pump->dir), PUMP_END_ERROR, err);
	if (pump->running && pump->dir[0].state == PUMP_DIR_CLOSED &&
	    pump->dir[1].state == PUMP_DIR_CLOSED)
		pump_finish(pump, PUMP_END_ERROR, err);
}

/* Returns 0, or -1 after the pump was aborted. */
static int
pump_dir_flush(struct pump_dir *d)
{
	while (d->len > 0) {
		ssize_t n;

		if (d->pipe[0] != -1)
			n = splice(d->pipe[0], NULL, d->dst, NULL, d->len,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		else
			n = send(d->dst, d->buf + d->off, d->len,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			/* A slow reader draining what we hold is not idle. */
			d->pump->last_io = ev_now(d->pump->loop);
			d->pipe_full = 0;
			d->len -= (size_t)n;
			d->off += (size_t)n;
			d->bytes += (uint64_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		pump_dir_fail(d, n == -1 ? errno : EPIPE);
		return -1;
	}
	if (d->len == 0)
		pump_dir_release(d);
	if (d->len == 0 && d->state == PUMP_DIR_DRAIN) {
		pump_dir_close(d);
		return 0;
	}
	pump_dir_update(d);
	return 0;
}

/*
 * splice(2) stops at TCP urgent data and says EAGAIN while poll(2) keeps
 * calling the socket readable, which would spin: step over the mark with
 * one recv(2) into the empty pipe.  relayd's sockets have SO_OOBINLINE,
 * so the urgent byte is relayed in its place; elsewhere recv skips it.
 */
static ssize_t
pump_read_mark(struct pump_dir *d)
{
	char b[PIPE_BUF];
	ssize_t n = recv(d->src, b, sizeof(b), MSG_DONTWAIT);

	/* An empty pipe takes PIPE_BUF bytes in one write. */
	if (n > 0 && write(d->pipe[1], b, (size_t)n) != n) {
		errno = EIO;
		return -1;
	}
	return n;
}

static void
pump_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pump_dir *d = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	if (!pump_dir_has_storage(d) && pump_dir_acquire(d) == -1) {
		pump_finish(d->pump, PUMP_END_ERROR, ENOMEM);
		return;
	}
	if (d->buf != NULL && d->len == 0)
		d->off = 0;
	if (pump_dir_room(d) == 0) {
		/* A read of 0 bytes returns 0, which is EOF: never ask one. */
		pump_dir_update(d);
		return;
	}
	for (;;) {
		size_t room = pump_dir_room(d);

		if (d->pipe[0] != -1)
			n = splice(d->src, NULL, d->pipe[1], NULL, room,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		else
			n = recv(d->src, d->buf + d->off + d->len, room,
			    MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		break;
	}
	if (n == -1 && errno == EAGAIN && d->pipe[0] != -1 && d->len == 0 &&
	    sockatmark(d->src) == 1)
		n = pump_read_mark(d);
	if (n > 0) {
		d->len += (size_t)n;
		d->pump->last_io = ev_now(loop);
	} else if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		/*
		 * A pipe counts pages, not bytes: small segments can fill
		 * its slots well under pipe_size.  While the source stays
		 * readable, reading again would spin; wait for a write to
		 * free a slot.  With nothing held the source was just empty.
		 */
		if (d->pipe[0] != -1 && d->len > 0)
			d->pipe_full = 1;
	} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		/* EOF or a reset: like the original, both end the direction. */
		d->err = n == 0 ? 0 : errno;
		d->eof = n == 0;
		d->state = PUMP_DIR_DRAIN;
	}
	(void)pump_dir_flush(d);
}

static void
pump_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pump_dir *d = w->data;

	(void)loop;
	(void)revents;
	(void)pump_dir_flush(d);
}

static void
pump_finish(struct pump *pump, enum pump_end end, int err)
{
	pump_stop(pump);
	if (pump->cb != NULL)
		pump->cb(pump, -1, end, err);
}

void
pump_start(struct pump *pump, struct ev_loop *loop, struct pipe_pool *pool,
    int a, int b, pump_cb cb, void *data)
{
	pump->loop = loop;
	pump->pool = pool;
	pump->cb = cb;
	pump->data = data;
	pump->running = 1;
	pump->write_err = 0;
	pump->last_io = ev_now(loop);
	for (int i = 0; i < 2; i++) {
		struct pump_dir *d = &pump->dir[i];

		d->pump = pump;
		d->src = i == 0 ? a : b;
		d->dst = i == 0 ? b : a;
		d->state = PUMP_DIR_OPEN;
		d->pipe[0] = d->pipe[1] = -1;
		d->pipe_size = 0;
		d->buf = NULL;
		d->len = d->off = 0;
		d->pipe_full = 0;
		d->bytes = 0;
		d->err = 0;
		d->eof = 0;
		ev_io_init(&d->rd, pump_rd_cb, d->src, EV_READ);
		ev_io_init(&d->wr, pump_wr_cb, d->dst, EV_WRITE);
		d->rd.data = d;
		d->wr.data = d;
		ev_io_start(loop, &d->rd);
	}
}

void
pump_stop(struct pump *pump)
{
	if (!pump->running)
		return;
	pump->running = 0;
	for (int i = 0; i < 2; i++) {
		struct pump_dir *d = &pump->dir[i];

		ev_io_stop(pump->loop, &d->rd);
		ev_io_stop(pump->loop, &d->wr);
		pump_dir_release(d);
	}
}
