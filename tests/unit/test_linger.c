/*
 * test_linger.c - closing sockets without losing what they still have to
 * deliver (common/linger.c), over AF_UNIX stream pairs: <a> is handed to
 * the linger set, the test plays its peer <b>.  For these, as for TCP,
 * SIOCOUTQ counts what <b> has not taken yet.
 *
 * Each test checks when <a> is closed, what <b> receives, and that the
 * owner hears of the close exactly once, whichever way it comes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "linger.h"
#include "relayd.h"

/* relayd's objects are linked in and refer to main.c's globals. */
struct relayd_conf conf;
struct relayd_stats stats;

struct fixture {
	struct ev_loop *loop;
	struct linger_set set;
	int a, b;
	int done; /* times the owner was told <a> is closed */
};

static void
on_done(void *arg)
{
	((struct fixture *)arg)->done++;
}

static int
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void
stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

/* Run the loop for <secs>: long enough for LINGER_POLL_SECS ticks. */
static void
run_for(struct fixture *fx, double secs)
{
	ev_timer t;

	ev_timer_init(&t, stop_cb, secs, 0.);
	ev_timer_start(fx->loop, &t);
	ev_run(fx->loop, 0);
	ev_timer_stop(fx->loop, &t);
}

/* Everything <b> can read now, up to <cap> bytes; *eof set at its end. */
static size_t
drain_b(struct fixture *fx, char *buf, size_t cap, int *eof)
{
	size_t len = 0;
	ssize_t n = -1;

	while (len < cap &&
	    (n = recv(fx->b, buf + len, cap - len, MSG_DONTWAIT)) > 0)
		len += (size_t)n;
	*eof = n == 0;
	return len;
}

static int
fx_setup(void **state)
{
	static struct fixture fx;
	int sv[2];

	memset(&fx, 0, sizeof(fx));
	fx.loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(fx.loop);
	assert_int_equal(socketpair(AF_UNIX,
			     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
	    0);
	fx.a = sv[0];
	fx.b = sv[1];
	linger_set_init(&fx.set, fx.loop);
	*state = &fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fixture *fx = *state;

	linger_set_clear(&fx->set);
	close(fx->b);
	ev_loop_destroy(fx->loop);
	return 0;
}

/* Nothing sent, nothing to send: closed at once, the owner told. */
static void
test_nothing_held(void **state)
{
	struct fixture *fx = *state;

	linger_close_notify(&fx->set, fx->a, 0, NULL, 0, "t", on_done, fx);
	assert_false(is_open(fx->a));
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->set.n, 0);
}

/* Its input read to EOF: closing cannot reset it, so at once, and the
 * bytes in flight still arrive. */
static void
test_input_ended(void **state)
{
	struct fixture *fx = *state;
	char buf[16];
	int eof;

	assert_int_equal(send(fx->a, "tail", 4, 0), 4);
	linger_close_notify(&fx->set, fx->a, 1, NULL, 0, "t", on_done, fx);
	assert_false(is_open(fx->a));
	assert_int_equal(fx->done, 1);
	assert_int_equal(drain_b(fx, buf, sizeof(buf), &eof), 4);
	assert_memory_equal(buf, "tail", 4);
	assert_true(eof);
}

/* Bytes its peer has not taken: kept open until it has, then closed; the
 * peer sees the end once the bytes are read. */
static void
test_until_taken(void **state)
{
	struct fixture *fx = *state;
	char buf[16];
	int eof;

	assert_int_equal(send(fx->a, "answer", 6, 0), 6);
	linger_close_notify(&fx->set, fx->a, 0, NULL, 0, "t", on_done, fx);
	assert_int_equal(fx->set.n, 1);
	run_for(fx, 3 * LINGER_POLL_SECS);
	assert_true(is_open(fx->a));
	assert_int_equal(fx->done, 0);
	assert_int_equal(drain_b(fx, buf, sizeof(buf), &eof), 6);
	assert_memory_equal(buf, "answer", 6);
	assert_true(eof); /* its write side was shut */
	run_for(fx, 3 * LINGER_POLL_SECS);
	assert_false(is_open(fx->a));
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->set.n, 0);
}

/* Bytes the owner still had queued (a refusal's [ERR]) are written
 * first, then the end. */
static void
test_flush_queued(void **state)
{
	struct fixture *fx = *state;
	static const char err[] = "[ERR] refused\n";
	char buf[64];
	int eof;

	linger_close_notify(&fx->set, fx->a, 0, err, sizeof(err) - 1, "t",
	    on_done, fx);
	assert_int_equal(fx->set.n, 1);
	run_for(fx, 2 * LINGER_POLL_SECS);
	assert_int_equal(drain_b(fx, buf, sizeof(buf), &eof), sizeof(err) - 1);
	assert_memory_equal(buf, err, sizeof(err) - 1);
	assert_true(eof);
	run_for(fx, 3 * LINGER_POLL_SECS);
	assert_false(is_open(fx->a));
	assert_int_equal(fx->done, 1);
}

/* The peer ends its input without reading: that ends the linger too,
 * and what the peer sends meanwhile is read and dropped. */
static void
test_peer_ends(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(send(fx->a, "unread", 6, 0), 6);
	linger_close_notify(&fx->set, fx->a, 0, NULL, 0, "t", on_done, fx);
	assert_int_equal(send(fx->b, "more", 4, 0), 4);
	run_for(fx, 2 * LINGER_POLL_SECS);
	assert_true(is_open(fx->a));
	assert_int_equal(shutdown(fx->b, SHUT_WR), 0);
	run_for(fx, 2 * LINGER_POLL_SECS);
	assert_false(is_open(fx->a));
	assert_int_equal(fx->done, 1);
}

/* Shutting down: every lingering socket closed now, each owner told. */
static void
test_clear(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(send(fx->a, "held", 4, 0), 4);
	linger_close_notify(&fx->set, fx->a, 0, NULL, 0, "t", on_done, fx);
	assert_int_equal(fx->set.n, 1);
	linger_set_clear(&fx->set);
	assert_false(is_open(fx->a));
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->set.n, 0);
	linger_set_clear(&fx->set);
	assert_int_equal(fx->done, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_nothing_held, fx_setup,
		fx_teardown),
	    cmocka_unit_test_setup_teardown(test_input_ended, fx_setup,
		fx_teardown),
	    cmocka_unit_test_setup_teardown(test_until_taken, fx_setup,
		fx_teardown),
	    cmocka_unit_test_setup_teardown(test_flush_queued, fx_setup,
		fx_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_ends, fx_setup,
		fx_teardown),
	    cmocka_unit_test_setup_teardown(test_clear, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests_name("linger", tests, NULL, NULL);
}
