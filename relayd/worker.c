/*
 * worker.c - one libev loop per thread.  The main thread accepts control
 * connections and hands each to a worker (round robin) through a locked
 * inbox and ev_async; from then on the registration and all its sessions
 * live on that worker only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "relayd.h"

static struct worker workers[RELAYD_MAX_WORKERS];
static unsigned nworkers;
static unsigned next_worker;

static atomic_ullong worker_ids;

/* Ids for log lines: unique across workers, in order of creation. */
uint64_t
worker_next_id(struct worker *w)
{
	(void)w;
	return atomic_fetch_add_explicit(&worker_ids, 1, memory_order_relaxed) +
	    1;
}

static void
worker_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = a->data;
	struct handoff *in;
	int stopping;
	size_t n;

	(void)revents;
	pthread_mutex_lock(&w->lock);
	in = w->inbox;
	n = w->inbox_len;
	w->inbox = NULL;
	w->inbox_len = w->inbox_cap = 0;
	stopping = w->stopping;
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		if (in[i].kind == HANDOFF_REG) {
			if (stopping) {
				reg_limits_release(&in[i].peer);
				close(in[i].fd);
			} else {
				reg_create(w, in[i].fd, &in[i].peer);
			}
		} else {
			/* Started even when stopping: the sweep below closes
			 * it through the one teardown path. */
			session_start(w, &in[i]);
		}
	}
	free(in);
	if (stopping) {
		while (!LIST_EMPTY(&w->regs))
			reg_close(LIST_FIRST(&w->regs), "relayd is stopping");
		/* Lingering sessions first: they leave the list only as
		 * their sockets close. */
		linger_set_clear(&w->lingers);
		while (!LIST_EMPTY(&w->sessions))
			session_close(LIST_FIRST(&w->sessions),
			    "relayd is stopping");
		reg_reap(w);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void
worker_reap_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)loop;
	(void)revents;
	reg_reap(p->data);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	ev_run(w->loop, 0);
	return NULL;
}

int
worker_start_all(unsigned n)
{
	if (n == 0)
		n = 1;
	if (n > RELAYD_MAX_WORKERS)
		n = RELAYD_MAX_WORKERS;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &workers[i];

		w->idx = i;
		w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
		if (w->loop == NULL) {
			log_warnx("cannot create an event loop");
			return -1;
		}
		LIST_INIT(&w->regs);
		LIST_INIT(&w->dead);
		ev_prepare_init(&w->reap, worker_reap_cb);
		w->reap.data = w;
		LIST_INIT(&w->sessions);
		linger_set_init(&w->lingers, w->loop);
		pipe_pool_init(&w->pipes, 64, conf.no_splice);
		pthread_mutex_init(&w->lock, NULL);
		ev_async_init(&w->wake, worker_wake_cb);
		w->wake.data = w;
		ev_async_start(w->loop, &w->wake);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_warnx("cannot start worker thread %u", i);
			return -1;
		}
		nworkers++;
	}
	return 0;
}

/* Queue <h> for worker <w>; 0, or -1 when out of memory or when <w> is
 * stopping (its loop may be gone by the time it would look). */
int
worker_send(struct worker *w, const struct handoff *h)
{
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		return -1;
	}
	if (w->inbox_len == w->inbox_cap) {
		size_t cap = w->inbox_cap ? w->inbox_cap * 2 : 16;
		struct handoff *n = realloc(w->inbox, cap * sizeof(*n));

		if (n == NULL) {
			pthread_mutex_unlock(&w->lock);
			return -1;
		}
		w->inbox = n;
		w->inbox_cap = cap;
	}
	w->inbox[w->inbox_len++] = *h;
	pthread_mutex_unlock(&w->lock);
	ev_async_send(w->loop, &w->wake);
	return 0;
}

/* A new control connection: round robin.  0, or -1 (caller closes). */
int
worker_hand_off(int fd, const struct sockaddr_storage *peer)
{
	struct handoff h = {.kind = HANDOFF_REG, .fd = fd, .peer = *peer};

	return worker_send(&workers[next_worker++ % nworkers], &h);
}

/* The worker with the fewest sessions; <self> when it ties, which saves
 * a thread hop. */
struct worker *
worker_pick(struct worker *self)
{
	struct worker *best = self;
	unsigned least = atomic_load(&self->load);

	for (unsigned i = 0; i < nworkers; i++) {
		unsigned l = atomic_load(&workers[i].load);

		if (l < least) {
			least = l;
			best = &workers[i];
		}
	}
	return best;
}

void
worker_stop_all(void)
{
	for (unsigned i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];

		pthread_mutex_lock(&w->lock);
		w->stopping = 1;
		pthread_mutex_unlock(&w->lock);
		ev_async_send(w->loop, &w->wake);
	}
	/* Every thread ends before any loop goes: a worker finishing its
	 * last callbacks may still hand a session to another. */
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
	for (unsigned i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];

		free(w->inbox);
		w->inbox = NULL;
		w->inbox_len = w->inbox_cap = 0;
		pipe_pool_free(&w->pipes);
		ev_loop_destroy(w->loop);
		pthread_mutex_destroy(&w->lock);
	}
	nworkers = 0;
}
