/*
 * test_pump.c - the two-way byte pump (common/pump.c) over real sockets.
 *
 *	x <-> a ==pump== b <-> y
 *
 * The pump runs between <a> and <b>; the test plays the two outer peers
 * <x> and <y> from watchers on the same per-test loop, so everything is
 * non-blocking and one watchdog timer bounds each test.  Every scenario
 * runs over AF_UNIX socket pairs and over TCP on 127.0.0.1, each in
 * splice mode and in the read/write fallback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "net.h"
#include "pump.h"
#include "relayd.h"

/* relayd's objects are linked in and refer to main.c's globals. */
struct relayd_conf conf;
struct relayd_stats stats;

#define WATCHDOG_SECONDS 10.0
#define SOCKBUF (64 * 1024)
#define CHUNK (64 * 1024)

struct mode {
	int family; /* AF_UNIX or AF_INET */
	int no_splice;
};

struct fixture;

/* One of the test's own ends, <x> (talks to a) or <y> (talks to b). */
struct peer {
	struct fixture *fx;
	struct peer *other;
	int fd;
	uint8_t seed; /* of the stream this peer sends */
	ev_io rd;
	ev_io wr;
	size_t tx_total; /* send this much, then shut down if tx_shut */
	size_t tx_chunk; /* at most this much per send(2) */
	size_t tx_sent;
	int tx_shut;
	int tx_err;
	size_t rx_got;
	int rx_eof;
	int rx_err;
	int rx_bad; /* a byte differed from what the other sent */
	size_t rx_bad_at;
};

struct fixture {
	const struct mode *mode;
	struct ev_loop *loop;
	ev_timer watchdog;
	ev_prepare check;
	ev_timer tick;
	int timed_out;
	int (*done)(struct fixture *);
	struct pipe_pool pool;
	struct pump pump;
	int a, b;
	struct peer x, y;
	int dir_calls[2];
	int dir_err[2];
	int end_calls;
	enum pump_end end;
	int end_err;
	/* stall detection for the backpressure tests */
	uint64_t last_sent;
	int still_ticks;
	int stalled;
	double still_since_cpu;
	ev_tstamp still_since;
	double stall_cpu; /* CPU seconds used while stalled */
	ev_tstamp stall_wall;
};

/* Stream contents: position-dependent, so loss or reordering shows. */
static uint8_t
pattern(uint8_t seed, size_t i)
{
	return (uint8_t)((i ^ (i >> 8) ^ (i >> 16)) * 31u + seed);
}

static void
peer_shut_tx(struct peer *p)
{
	ev_io_stop(p->fx->loop, &p->wr);
	if (p->tx_shut && shutdown(p->fd, SHUT_WR) == -1)
		p->tx_err = errno;
}

static void
peer_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct peer *p = w->data;
	uint8_t buf[CHUNK];

	(void)loop;
	(void)revents;
	while (p->tx_sent < p->tx_total) {
		size_t n = p->tx_total - p->tx_sent;
		ssize_t r;

		if (n > p->tx_chunk)
			n = p->tx_chunk;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(p->seed, p->tx_sent + i);
		r = send(p->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r == -1) {
			p->tx_err = errno;
			ev_io_stop(p->fx->loop, &p->wr);
			return;
		}
		p->tx_sent += (size_t)r;
	}
	peer_shut_tx(p);
}

static void
peer_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct peer *p = w->data;
	uint8_t buf[CHUNK];
	ssize_t r;

	(void)loop;
	(void)revents;
	for (;;) {
		r = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (size_t i = 0; i < (size_t)r && !p->rx_bad; i++) {
			if (buf[i] != pattern(p->other->seed, p->rx_got + i)) {
				p->rx_bad = 1;
				p->rx_bad_at = p->rx_got + i;
			}
		}
		p->rx_got += (size_t)r;
	}
	if (r == 0)
		p->rx_eof = 1;
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		p->rx_err = errno;
	else
		return;
	ev_io_stop(p->fx->loop, &p->rd);
}

/* Start sending <total> bytes, then shut down for writing if <shut>. */
static void
peer_send(struct peer *p, size_t total, int shut)
{
	p->tx_total = total;
	p->tx_shut = shut;
	if (p->tx_sent < total)
		ev_io_start(p->fx->loop, &p->wr);
	else
		peer_shut_tx(p);
}

static void
peer_read(struct peer *p)
{
	if (!p->rx_eof && p->rx_err == 0)
		ev_io_start(p->fx->loop, &p->rd);
}

static void
pump_done_cb(struct pump *pump, int dir, enum pump_end end, int err)
{
	struct fixture *fx = pump->data;

	if (dir == 0 || dir == 1) {
		fx->dir_calls[dir]++;
		fx->dir_err[dir] = err;
	} else {
		fx->end_calls++;
		fx->end = end;
		fx->end_err = err;
	}
}

static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fixture *fx = w->data;

	(void)revents;
	fx->timed_out = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void
check_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct fixture *fx = w->data;

	(void)revents;
	if (fx->done != NULL && fx->done(fx))
		ev_break(loop, EVBREAK_ALL);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * The source counts as stalled once neither it nor the pump has moved a
 * byte for 10 ticks (200 ms) while the source's writes block.  The CPU
 * time used meanwhile tells a quiet loop from one spinning on readiness.
 */
static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fixture *fx = w->data;
	uint64_t moved =
	    fx->x.tx_sent + fx->pump.dir[0].bytes + fx->pump.dir[0].len;

	(void)revents;
	if (moved == fx->last_sent && ev_is_active(&fx->x.wr)) {
		if (fx->still_ticks++ == 0) {
			fx->still_since = ev_now(loop);
			fx->still_since_cpu = cpu_seconds();
		}
	} else {
		fx->still_ticks = 0;
	}
	fx->last_sent = moved;
	if (fx->still_ticks >= 10 && !fx->stalled) {
		fx->stalled = 1;
		fx->stall_cpu = cpu_seconds() - fx->still_since_cpu;
		fx->stall_wall = ev_now(loop) - fx->still_since;
	}
}

/* Run the loop until <done> holds; a timeout fails the test. */
static void
run_until(struct fixture *fx, int (*done)(struct fixture *))
{
	fx->done = done;
	if (done(fx))
		return;
	ev_timer_set(&fx->watchdog, WATCHDOG_SECONDS, 0.);
	ev_timer_start(fx->loop, &fx->watchdog);
	ev_prepare_start(fx->loop, &fx->check);
	ev_run(fx->loop, 0);
	ev_prepare_stop(fx->loop, &fx->check);
	ev_timer_stop(fx->loop, &fx->watchdog);
	fx->done = NULL;
	if (fx->timed_out)
		fail_msg("watchdog: no progress in %.0f s (x sent %zu got %zu, "
			 "y sent %zu got %zu, end calls %d)",
		    WATCHDOG_SECONDS, fx->x.tx_sent, fx->x.rx_got,
		    fx->y.tx_sent, fx->y.rx_got, fx->end_calls);
}

/* A connected TCP pair on 127.0.0.1, both ends non-blocking. */
static int
tcp_pair(int fds[2])
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int l, c = -1, s = -1;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) == -1)
		goto fail;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c == -1 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		goto fail;
	s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s == -1 || net_set_nonblock(c, 1) == -1)
		goto fail;
	close(l);
	fds[0] = c;
	fds[1] = s;
	return 0;
fail:
	close(l);
	if (c != -1)
		close(c);
	if (s != -1)
		close(s);
	return -1;
}

static int
make_pair(int family, int fds[2])
{
	int sz = SOCKBUF;

	if (family == AF_UNIX) {
		if (socketpair(AF_UNIX,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
			fds) == -1)
			return -1;
	} else if (tcp_pair(fds) == -1) {
		return -1;
	}
	/*
	 * Fixed buffers turn off TCP autotuning, so the bytes the kernel
	 * can hold, and with them the backpressure bound, are known.
	 */
	for (int i = 0; i < 2; i++) {
		setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	return 0;
}

static void
peer_init(struct fixture *fx, struct peer *p, struct peer *other, int fd,
    uint8_t seed)
{
	p->fx = fx;
	p->other = other;
	p->fd = fd;
	p->seed = seed;
	p->tx_chunk = CHUNK;
	ev_io_init(&p->rd, peer_rd_cb, fd, EV_READ);
	ev_io_init(&p->wr, peer_wr_cb, fd, EV_WRITE);
	p->rd.data = p;
	p->wr.data = p;
}

static int
fx_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int p1[2] = {-1, -1}, p2[2] = {-1, -1};

	if (fx == NULL)
		return -1;
	fx->mode = *state;
	fx->a = fx->b = -1;
	fx->x.fd = fx->y.fd = -1;
	if (make_pair(fx->mode->family, p1) == -1 ||
	    make_pair(fx->mode->family, p2) == -1) {
		print_error("socket pair: %s\n", strerror(errno));
		for (int i = 0; i < 2; i++) {
			if (p1[i] != -1)
				close(p1[i]);
			if (p2[i] != -1)
				close(p2[i]);
		}
		free(fx);
		return -1;
	}
	fx->loop = ev_loop_new(EVFLAG_AUTO);
	if (fx->loop == NULL) {
		for (int i = 0; i < 2; i++) {
			close(p1[i]);
			close(p2[i]);
		}
		free(fx);
		return -1;
	}
	fx->a = p1[1];
	fx->b = p2[0];
	peer_init(fx, &fx->x, &fx->y, p1[0], 0x11);
	peer_init(fx, &fx->y, &fx->x, p2[1], 0x5a);
	ev_timer_init(&fx->watchdog, watchdog_cb, WATCHDOG_SECONDS, 0.);
	fx->watchdog.data = fx;
	ev_prepare_init(&fx->check, check_cb);
	fx->check.data = fx;
	ev_timer_init(&fx->tick, tick_cb, 0.02, 0.02);
	fx->tick.data = fx;
	pipe_pool_init(&fx->pool, 4, fx->mode->no_splice);
	pump_start(&fx->pump, fx->loop, &fx->pool, fx->a, fx->b, pump_done_cb,
	    fx);
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fixture *fx = *state;

	pump_stop(&fx->pump);
	ev_io_stop(fx->loop, &fx->x.rd);
	ev_io_stop(fx->loop, &fx->x.wr);
	ev_io_stop(fx->loop, &fx->y.rd);
	ev_io_stop(fx->loop, &fx->y.wr);
	ev_timer_stop(fx->loop, &fx->tick);
	ev_timer_stop(fx->loop, &fx->watchdog);
	ev_prepare_stop(fx->loop, &fx->check);
	close(fx->a);
	close(fx->b);
	if (fx->x.fd != -1)
		close(fx->x.fd);
	if (fx->y.fd != -1)
		close(fx->y.fd);
	pipe_pool_free(&fx->pool);
	ev_loop_destroy(fx->loop);
	free(fx);
	return 0;
}

/* Nothing borrowed is left out, and the pool holds only empty pipes. */
static void
expect_pool_clean(struct fixture *fx)
{
	assert_int_equal(fx->pool.in_use, 0);
	assert_int_equal(fx->pool.bufs_in_use, 0);
	assert_true(fx->pool.count <= fx->pool.cap);
	if (fx->mode->no_splice)
		assert_int_equal(fx->pool.count, 0);
	for (size_t i = 0; i < fx->pool.count; i++) {
		int queued = -1;

		assert_int_not_equal(ioctl(fx->pool.pipes[i].fd[0], FIONREAD,
					 &queued),
		    -1);
		assert_int_equal(queued, 0);
	}
}

static void
expect_intact(const struct peer *p, size_t want)
{
	if (p->rx_bad)
		fail_msg("peer %d: byte %zu corrupted", p->fd, p->rx_bad_at);
	assert_int_equal(p->rx_err, 0);
	assert_int_equal(p->rx_got, want);
}

static int
done_both_eof(struct fixture *fx)
{
	return fx->x.rx_eof && fx->y.rx_eof && fx->end_calls > 0;
}

/* A few more loop turns must not call anyone back again. */
static void
expect_quiet_after_end(struct fixture *fx)
{
	int calls[2] = {fx->dir_calls[0], fx->dir_calls[1]};

	for (int i = 0; i < 5; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->end_calls, 1);
	assert_int_equal(fx->dir_calls[0], calls[0]);
	assert_int_equal(fx->dir_calls[1], calls[1]);
	assert_false(fx->pump.running);
}

static void
test_flow(void **state)
{
	struct fixture *fx = *state;
	const size_t n_xy = 3 * 1024 * 1024 + 7, n_yx = 1024 * 1024 + 4093;

	peer_read(&fx->x);
	peer_read(&fx->y);
	peer_send(&fx->x, n_xy, 1);
	peer_send(&fx->y, n_yx, 1);
	run_until(fx, done_both_eof);

	assert_int_equal(fx->x.tx_err, 0);
	assert_int_equal(fx->y.tx_err, 0);
	expect_intact(&fx->y, n_xy);
	expect_intact(&fx->x, n_yx);
	assert_int_equal(fx->pump.dir[0].bytes, n_xy);
	assert_int_equal(fx->pump.dir[1].bytes, n_yx);
	assert_int_equal(fx->dir_calls[0], 1);
	assert_int_equal(fx->dir_calls[1], 1);
	assert_int_equal(fx->dir_err[0], 0);
	assert_int_equal(fx->dir_err[1], 0);
	assert_int_equal(fx->end_calls, 1);
	assert_int_equal(fx->end, PUMP_END_DONE);
	assert_int_equal(fx->end_err, 0);
	expect_quiet_after_end(fx);
	expect_pool_clean(fx);
	/* Splice mode gave its pipes back for the next session. */
	if (!fx->mode->no_splice)
		assert_true(fx->pool.count > 0);
}

static int
done_y_eof(struct fixture *fx)
{
	return fx->y.rx_eof || fx->y.rx_err != 0;
}

static int
done_x_eof_end(struct fixture *fx)
{
	return (fx->x.rx_eof || fx->x.rx_err != 0) && fx->end_calls > 0;
}

/*
 * x shuts its side down first: y must see EOF after every byte, and
 * bytes must still flow from y to x until y shuts down too.
 */
static void
test_half_close(void **state)
{
	struct fixture *fx = *state;
	const size_t n_xy = 200 * 1024 + 1, n_yx = 300 * 1024 + 3;

	peer_read(&fx->x);
	peer_read(&fx->y);
	peer_send(&fx->x, n_xy, 1);
	run_until(fx, done_y_eof);
	expect_intact(&fx->y, n_xy);
	assert_true(fx->y.rx_eof);
	assert_int_equal(fx->dir_calls[0], 1);
	assert_int_equal(fx->dir_calls[1], 0);
	assert_int_equal(fx->end_calls, 0);
	assert_int_equal(fx->pump.dir[0].state, PUMP_DIR_CLOSED);
	assert_int_equal(fx->pump.dir[1].state, PUMP_DIR_OPEN);
	/* The closed direction holds nothing borrowed. */
	assert_int_equal(fx->pump.dir[0].pipe[0], -1);
	assert_null(fx->pump.dir[0].buf);
	assert_false(fx->x.rx_eof);

	peer_send(&fx->y, n_yx, 1);
	run_until(fx, done_x_eof_end);
	expect_intact(&fx->x, n_yx);
	assert_true(fx->x.rx_eof);
	assert_int_equal(fx->dir_calls[0], 1);
	assert_int_equal(fx->dir_calls[1], 1);
	assert_int_equal(fx->end_calls, 1);
	assert_int_equal(fx->end, PUMP_END_DONE);
	expect_quiet_after_end(fx);
	expect_pool_clean(fx);
}

static int
done_x_eof(struct fixture *fx)
{
	return fx->x.rx_eof || fx->x.rx_err != 0;
}

/* A bare EOF, with no byte before it, is carried across too. */
static void
test_half_close_empty(void **state)
{
	struct fixture *fx = *state;

	peer_read(&fx->x);
	peer_read(&fx->y);
	peer_send(&fx->y, 0, 1);
	run_until(fx, done_x_eof);
	expect_intact(&fx->x, 0);
	assert_true(fx->x.rx_eof);
	assert_int_equal(fx->dir_calls[1], 1);
	assert_int_equal(fx->end_calls, 0);

	peer_send(&fx->x, 0, 1);
	run_until(fx, done_both_eof);
	expect_intact(&fx->y, 0);
	assert_int_equal(fx->dir_calls[0], 1);
	assert_int_equal(fx->end, PUMP_END_DONE);
	expect_quiet_after_end(fx);
	expect_pool_clean(fx);
}

static int
done_stalled(struct fixture *fx)
{
	return fx->stalled || fx->x.tx_sent == fx->x.tx_total ||
	    fx->x.tx_err != 0 || fx->end_calls > 0;
}

/* What the kernel may hold in the four sockets' buffers, at most. */
static size_t
kernel_bound(struct fixture *fx)
{
	int fds[4] = {fx->x.fd, fx->a, fx->b, fx->y.fd};
	size_t sum = 0;

	for (int i = 0; i < 4; i++) {
		int v;
		socklen_t sl = sizeof(v);

		assert_int_not_equal(getsockopt(fds[i], SOL_SOCKET, SO_SNDBUF,
					 &v, &sl),
		    -1);
		sum += (size_t)v;
		sl = sizeof(v);
		assert_int_not_equal(getsockopt(fds[i], SOL_SOCKET, SO_RCVBUF,
					 &v, &sl),
		    -1);
		sum += (size_t)v;
	}
	return sum;
}

/*
 * y never reads: x must be stopped by full buffers after a bounded
 * amount, with the pump no longer reading from a.
 */
static void
stall(struct fixture *fx, size_t chunk)
{
	const size_t cap = 64 * 1024 * 1024;
	size_t held, bound;

	peer_read(&fx->x);
	fx->x.tx_chunk = chunk;
	peer_send(&fx->x, cap, 0);
	ev_timer_start(fx->loop, &fx->tick);
	run_until(fx, done_stalled);
	ev_timer_stop(fx->loop, &fx->tick);

	assert_int_equal(fx->x.tx_err, 0);
	assert_int_equal(fx->end_calls, 0);
	assert_true(fx->stalled);
	held = fx->pump.dir[0].len;
	bound = kernel_bound(fx) +
	    (fx->mode->no_splice ? PUMP_BUF_SIZE : fx->pump.dir[0].pipe_size);
	if (fx->x.tx_sent > bound)
		fail_msg("x wrote %zu bytes into a stalled pump (bound %zu)",
		    fx->x.tx_sent, bound);
	if (fx->stall_cpu > fx->stall_wall / 2)
		fail_msg("busy while stalled: %.3f s CPU in %.3f s",
		    fx->stall_cpu, fx->stall_wall);
	/* The pump holds bytes and has stopped reading: backpressure. */
	assert_true(held > 0);
	if (ev_is_active(&fx->pump.dir[0].rd)) {
		int qa = -1;

		(void)ioctl(fx->a, FIONREAD, &qa);
		fail_msg("pump still reads a while stalled: holds %zu of %zu, "
			 "%d bytes wait in a",
		    held,
		    fx->mode->no_splice ? (size_t)PUMP_BUF_SIZE
					: fx->pump.dir[0].pipe_size,
		    qa);
	}
	assert_true(ev_is_active(&fx->pump.dir[0].wr));
	if (fx->mode->no_splice) {
		assert_int_equal(fx->pool.bufs_in_use, 1);
		if (chunk >= PUMP_BUF_SIZE)
			assert_int_equal(held + fx->pump.dir[0].off,
			    PUMP_BUF_SIZE);
	} else {
		assert_int_equal(fx->pool.in_use, 1);
	}
}

/* Once y reads again, everything held arrives intact and in order. */
static void
backpressure(struct fixture *fx, size_t chunk)
{
	stall(fx, chunk);
	fx->x.tx_total = fx->x.tx_sent;
	fx->x.tx_shut = 1;
	peer_shut_tx(&fx->x);
	peer_read(&fx->y);
	peer_send(&fx->y, 12345, 1);
	run_until(fx, done_both_eof);
	expect_intact(&fx->y, fx->x.tx_sent);
	expect_intact(&fx->x, 12345);
	assert_int_equal(fx->end, PUMP_END_DONE);
	assert_int_equal(fx->end_calls, 1);
	expect_pool_clean(fx);
}

static void
test_backpressure(void **state)
{
	backpressure(*state, CHUNK);
}

/*
 * Tiny writes: a pipe holds one segment per page slot, so it can refuse
 * more long before pipe_size bytes; the pump must still wait quietly.
 */
static void
test_backpressure_small(void **state)
{
	backpressure(*state, 1);
}

/* Stopped while full: the pipe's bytes must not reach the next user. */
static void
test_stop_while_full(void **state)
{
	struct fixture *fx = *state;

	stall(fx, CHUNK);
	pump_stop(&fx->pump);
	assert_int_equal(fx->end_calls, 0);
	assert_int_equal(fx->pool.count, 0);
	expect_pool_clean(fx);
	/* Stopping twice is harmless. */
	pump_stop(&fx->pump);
	assert_int_equal(fx->pool.in_use, 0);
}

/*
 * Pipes of different sizes in one pool: past the user's pipe page limit
 * a new pipe stays small while older ones are 1 MiB.  A direction that
 * holds more than a small pipe's worth in a large one must not take
 * that size for its own: a read of no room returns 0, read as EOF, and
 * cut the stream (x's later bytes never reached y).
 */
static void
test_mixed_pipe_sizes(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[2] = {4096, 1024 * 1024};
	size_t held, seen[2] = {0, 0};

	if (!fx->mode->no_splice) {
		/* The pool hands out its last pipe first: dir 0 gets the
		 * large one, dir 1 the small one. */
		fx->pool.pipes = calloc(fx->pool.cap, sizeof(*fx->pool.pipes));
		assert_non_null(fx->pool.pipes);
		for (int i = 0; i < 2; i++) {
			int *p = fx->pool.pipes[i].fd;

			assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
			assert_int_equal(fcntl(p[1], F_SETPIPE_SZ,
					     (int)sizes[i]),
			    (int)sizes[i]);
			fx->pool.pipes[i].size = sizes[i];
		}
		fx->pool.count = 2;
	}
	/* y does not read: a -> b ends up holding bytes in the large pipe,
	 * still reading, as x has paused. */
	peer_send(&fx->x, fx->mode->no_splice ? 32 * 1024 : 512 * 1024, 0);
	for (int i = 0; i < 2000 && fx->x.tx_sent < fx->x.tx_total; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	for (int i = 0; i < 50; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	held = fx->pump.dir[0].len;
	if (fx->x.tx_sent < fx->x.tx_total ||
	    (!fx->mode->no_splice &&
		(held <= sizes[0] || !ev_is_active(&fx->pump.dir[0].rd))))
		fail_msg("x sent %zu of %zu; the pump holds %zu bytes and %s "
			 "reading: nothing is tested",
		    fx->x.tx_sent, fx->x.tx_total, held,
		    ev_is_active(&fx->pump.dir[0].rd) ? "is" : "is not");
	/* The small pipe now serves y -> x while a -> b holds <held>. */
	peer_read(&fx->x);
	peer_send(&fx->y, 3 * sizes[0], 1);
	run_until(fx, done_x_eof);
	expect_intact(&fx->x, 3 * sizes[0]);
	assert_int_equal(fx->dir_calls[0], 0);
	/* x goes on sending into the stalled direction, then y reads all. */
	peer_send(&fx->x, fx->x.tx_sent + 100000, 1);
	peer_read(&fx->y);
	run_until(fx, done_both_eof);
	expect_intact(&fx->y, fx->x.tx_total);
	expect_intact(&fx->x, 3 * sizes[0]);
	assert_int_equal(fx->end, PUMP_END_DONE);
	expect_pool_clean(fx);
	/* Each pipe went back with its own size. */
	for (size_t i = 0; i < fx->pool.count; i++)
		for (int k = 0; k < 2; k++)
			if (fx->pool.pipes[i].size == sizes[k])
				seen[k]++;
	if (!fx->mode->no_splice)
		assert_true(seen[0] == 1 && seen[1] == 1);
}

static int
done_end(struct fixture *fx)
{
	return fx->end_calls > 0;
}

static int
done_end_x_eof(struct fixture *fx)
{
	return fx->end_calls > 0 && (fx->x.rx_eof || fx->x.rx_err != 0);
}

/* y goes away: on TCP with a reset (SO_LINGER 0), as a crash would. */
static void
peer_y_vanish(struct fixture *fx)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (fx->mode->family == AF_INET)
		assert_int_not_equal(setsockopt(fx->y.fd, SOL_SOCKET, SO_LINGER,
					 &lg, sizeof(lg)),
		    -1);
	close(fx->y.fd);
	fx->y.fd = -1;
}

/* y vanishes (RST on TCP): writing to b fails and the pump ends. */
static void
test_write_error(void **state)
{
	struct fixture *fx = *state;

	peer_y_vanish(fx);
	peer_send(&fx->x, 8 * 1024 * 1024, 0);
	run_until(fx, done_end);

	assert_int_equal(fx->end_calls, 1);
	assert_int_equal(fx->end, PUMP_END_ERROR);
	if (fx->end_err != EPIPE && fx->end_err != ECONNRESET)
		fail_msg("end error %d (%s), want EPIPE or ECONNRESET",
		    fx->end_err, strerror(fx->end_err));
	/* a->b ended with the write error; b->a met the end of b. */
	assert_int_equal(fx->dir_calls[0], 1);
	assert_int_equal(fx->dir_err[0], fx->end_err);
	assert_int_equal(fx->dir_calls[1], 1);
	expect_quiet_after_end(fx);
	expect_pool_clean(fx);
}

/*
 * y answers and then vanishes (RST on TCP) while x is still sending and
 * not yet reading: writing to b fails, but every byte y sent before it
 * went still reaches x, as it would without a pump in between, and x
 * then sees EOF.
 */
static void
test_write_error_delivers(void **state)
{
	struct fixture *fx = *state;
	const size_t answer = 48 * 1024;

	peer_send(&fx->y, answer, 0);
	for (int i = 0; i < 50 && fx->y.tx_sent < answer; i++)
		ev_run(fx->loop, EVRUN_NOWAIT);
	assert_int_equal(fx->y.tx_sent, answer);
	for (int i = 0; i < 20; i++) /* let the pump take it from b */
		ev_run(fx->loop, EVRUN_NOWAIT);
	peer_y_vanish(fx);
	peer_send(&fx->x, 8 * 1024 * 1024, 0);
	peer_read(&fx->x);
	run_until(fx, done_end_x_eof);

	assert_int_equal(fx->end, PUMP_END_ERROR);
	assert_int_equal(fx->dir_calls[0], 1);
	expect_intact(&fx->x, answer);
	assert_true(fx->x.rx_eof);
	expect_pool_clean(fx);
}

static struct mode mode_unix_splice = {AF_UNIX, 0};
static struct mode mode_unix_copy = {AF_UNIX, 1};
static struct mode mode_tcp_splice = {AF_INET, 0};
static struct mode mode_tcp_copy = {AF_INET, 1};

#define PUMP_TEST(t, m) \
	{ \
#t "/" #m, t, fx_setup, fx_teardown, &mode_##m \
	}
#define PUMP_TESTS(m) \
	PUMP_TEST(test_flow, m), PUMP_TEST(test_half_close, m), \
	    PUMP_TEST(test_half_close_empty, m), \
	    PUMP_TEST(test_backpressure, m), \
	    PUMP_TEST(test_backpressure_small, m), \
	    PUMP_TEST(test_stop_while_full, m), \
	    PUMP_TEST(test_mixed_pipe_sizes, m), \
	    PUMP_TEST(test_write_error, m), \
	    PUMP_TEST(test_write_error_delivers, m)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    PUMP_TESTS(unix_splice),
	    PUMP_TESTS(unix_copy),
	    PUMP_TESTS(tcp_splice),
	    PUMP_TESTS(tcp_copy),
	};

	/* As in relayd: a write to a closed peer is an error, not a kill. */
	signal(SIGPIPE, SIG_IGN);
	/* TEST_FILTER=test_flow/tcp* runs a subset while debugging. */
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests_name("pump", tests, NULL, NULL);
}
