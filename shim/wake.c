/*
 * wake.c - the helper process started by librelayshim.so at listen().
 *
 * It registers with the relay (client.c) and, for each client, holds the
 * relay connection in a numbered slot and wakes the server's loopback
 * listener with a connection carrying a wake_hdr.  The shim inside the
 * server then claims the slot over an abstract UNIX socket and gets the
 * relay connection by SCM_RIGHTS (wake.h).
 *
 * It lives exactly as long as the server's listening socket: once no
 * process holds that socket any more, the helper unregisters and exits.
 */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "log.h"
#include "net.h"
#include "wake.h"
#include "helper.h"

#define WAKE_SLOT_TTL 30.0 /* an unclaimed relay connection is dropped */
#define WAKE_LIVENESS 1.0  /* seconds between listener checks */
#define WAKE_REWAKE 2.0	   /* wake again if not claimed by then */
#define WAKE_WINDOW_MAX 128

/*
 * A relay connection waiting for the server to accept it.  At most
 * <window> are woken at once (the listener's backlog): more wakes than
 * the accept queue holds would be dropped by the kernel.  The others
 * wait their turn, oldest first.
 */
enum wake_slot_state {
	SLOT_WAITING, /* not woken yet */
	SLOT_WOKEN,   /* wake sent; the server has not claimed it */
};

struct wake_slot {
	TAILQ_ENTRY(wake_slot) entry;
	enum wake_slot_state state;
	uint64_t id;
	int fd; /* relay connection */
	int has_peer;
	struct sockaddr_storage peer;
	ev_tstamp at;	 /* parked */
	ev_tstamp woken; /* last wake sent */
};

/* A wake connection to the server's listener, still connecting. */
struct wake_kick {
	int fd;
	ev_io io;
	struct wake_hdr hdr;
};

/* A shim asking for a slot or an address. */
struct wake_asker {
	int fd;
	ev_io io;
};

static struct {
	struct ev_loop *loop;
	struct wake_conf wc;
	struct rclient rc;
	int ctl; /* fd 3 to the shim, until the verdict is sent */
	int unix_fd;
	unsigned lport;
	ev_io unix_io;
	ev_timer live;
	ev_timer sweep;
	uint64_t next_slot;
	unsigned window;
	unsigned inflight; /* slots in SLOT_WOKEN */
	TAILQ_HEAD(wake_slot_list, wake_slot) slots;
} wk;

static void
wake_exit(const char *why)
{
	if (why != NULL && wk.wc.debug)
		log_info("helper for %s exits: %s", wk.wc.asked_str, why);
	exit(0);
}

static void
wake_verdict(const char *msg)
{
	if (wk.ctl == -1)
		return;
	(void)send(wk.ctl, msg, strlen(msg), MSG_NOSIGNAL);
	close(wk.ctl);
	wk.ctl = -1;
}

static void
wake_ready(struct rclient *rc, unsigned public_port)
{
	char msg[320];

	if (wk.ctl == -1)
		return;
	if (public_port == 0)
		snprintf(msg, sizeof(msg), "OK -");
	else if (strchr(rc->host, ':') != NULL)
		snprintf(msg, sizeof(msg), "OK [%s]:%u", rc->host, public_port);
	else
		snprintf(msg, sizeof(msg), "OK %s:%u", rc->host, public_port);
	wake_verdict(msg);
}

static void
wake_failed(struct rclient *rc, int err, const char *why)
{
	char msg[320];

	(void)rc;
	snprintf(msg, sizeof(msg), "ERR %d %s", err, why);
	wake_verdict(msg);
	wake_exit(why);
}

static void
wake_slot_free(struct wake_slot *s)
{
	TAILQ_REMOVE(&wk.slots, s, entry);
	if (s->state == SLOT_WOKEN)
		wk.inflight--;
	if (s->fd != -1)
		close(s->fd);
	free(s);
}

static void
wake_kick_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wake_kick *k = w->data;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)revents;
	ev_io_stop(loop, w);
	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0 &&
	    send(k->fd, &k->hdr, sizeof(k->hdr), MSG_NOSIGNAL) !=
		(ssize_t)sizeof(k->hdr))
		err = errno ? errno : EPIPE;
	/* We close first, so TIME_WAIT stays on our side, where loopback
	 * ports are reused (tcp_tw_reuse). */
	close(k->fd);
	free(k);
	if (err == ECONNREFUSED)
		wake_exit("the server's listener is gone");
	else if (err != 0)
		log_warnx("cannot wake the server for %s: %s", wk.wc.asked_str,
		    strerror(err));
}

/* Connect to the server's listener and send the slot's wake header. */
static void
wake_kick(struct wake_slot *s)
{
	socklen_t len = wk.wc.listener.ss_family == AF_INET6
	    ? sizeof(struct sockaddr_in6)
	    : sizeof(struct sockaddr_in);
	struct wake_kick *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return;
	memcpy(k->hdr.magic, WAKE_MAGIC, 4);
	k->hdr.version = WAKE_VERSION;
	memcpy(k->hdr.token, wk.wc.token, WAKE_TOKEN_LEN);
	k->hdr.slot = s->id;
	k->fd = net_connect_nb(&wk.wc.listener, len);
	if (k->fd == -1) {
		int err = errno;

		free(k);
		if (err == ECONNREFUSED)
			wake_exit("the server's listener is gone");
		log_warnx("cannot wake the server: %s", strerror(err));
		return;
	}
	s->woken = ev_now(wk.loop);
	ev_io_init(&k->io, wake_kick_cb, k->fd, EV_WRITE);
	k->io.data = k;
	ev_io_start(wk.loop, &k->io);
}

/* Wake the oldest waiting slots while the window has room. */
static void
wake_pump(void)
{
	struct wake_slot *s;

	for (s = TAILQ_FIRST(&wk.slots); s != NULL; s = TAILQ_NEXT(s, entry)) {
		if (wk.inflight >= wk.window)
			break;
		if (s->state != SLOT_WAITING)
			continue;
		s->state = SLOT_WOKEN;
		wk.inflight++;
		wake_kick(s);
	}
}

/* A relay connection for a client: park it and wake the server. */
static void
wake_data(struct rclient *rc, int fd, const struct sockaddr_storage *from)
{
	struct wake_slot *s;

	(void)rc;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->id = ++wk.next_slot;
	s->fd = fd;
	s->state = SLOT_WAITING;
	s->at = ev_now(wk.loop);
	if (from != NULL) {
		s->has_peer = 1;
		s->peer = *from;
	}
	TAILQ_INSERT_TAIL(&wk.slots, s, entry);
	wake_pump();
}

static struct wake_slot *
wake_slot_find(uint64_t id)
{
	struct wake_slot *s;

	for (s = TAILQ_FIRST(&wk.slots); s != NULL; s = TAILQ_NEXT(s, entry))
		if (s->id == id)
			return s;
	return NULL;
}

static int
wake_token_ok(const uint8_t *t)
{
	uint8_t diff = 0;

	for (size_t i = 0; i < WAKE_TOKEN_LEN; i++)
		diff |= (uint8_t)(t[i] ^ wk.wc.token[i]);
	return diff == 0;
}

static void
wake_answer(int fd, const struct wake_req *req)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct wake_resp resp;
	struct iovec iov = {&resp, sizeof(resp)};
	struct msghdr msg;
	struct wake_slot *s = NULL;

	memset(&resp, 0, sizeof(resp));
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (req->kind == WAKE_REQ_ADDR) {
		resp.asked = wk.wc.asked;
		resp.asked_len = wk.wc.asked_len;
	} else if (req->kind == WAKE_REQ_FD && wake_token_ok(req->token)) {
		s = wake_slot_find(req->slot);
		if (s == NULL) {
			resp.status = ENOENT;
		} else {
			struct cmsghdr *cm;

			resp.has_peer = (uint32_t)s->has_peer;
			resp.peer = s->peer;
			msg.msg_control = u.buf;
			msg.msg_controllen = sizeof(u.buf);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &s->fd, sizeof(int));
		}
	} else {
		resp.status = EACCES;
	}
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) == -1 && s != NULL) {
		/* The shim went away: keep the slot for a retry. */
		return;
	}
	if (s != NULL) {
		wake_slot_free(s);
		wake_pump();
	}
}

static void
wake_asker_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wake_asker *a = w->data;
	struct wake_req req;
	ssize_t n;

	(void)revents;
	n = recv(a->fd, &req, sizeof(req), MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)sizeof(req))
		wake_answer(a->fd, &req);
	ev_io_stop(loop, w);
	close(a->fd);
	free(a);
}

static void
wake_unix_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct wake_asker *a;
		int fd =
		    accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1)
			return;
		a = calloc(1, sizeof(*a));
		if (a == NULL) {
			close(fd);
			continue;
		}
		a->fd = fd;
		ev_io_init(&a->io, wake_asker_cb, fd, EV_READ);
		a->io.data = a;
		ev_io_start(loop, &a->io);
	}
}

/*
 * Does a socket in LISTEN state with our inode still exist?  Asks the
 * kernel through NETLINK_SOCK_DIAG.  Returns 1, 0, or -1 (cannot tell).
 */
static int
wake_listener_alive(void)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} q;
	char buf[16384];
	int fd, found = 0, done = 0;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd == -1)
		return -1;
	memset(&q, 0, sizeof(q));
	q.nlh.nlmsg_len = sizeof(q);
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.req.sdiag_family = (uint8_t)wk.wc.listener.ss_family;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = 1u << 10; /* TCP_LISTEN */
	if (send(fd, &q, sizeof(q), 0) == -1) {
		close(fd);
		return -1;
	}
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n <= 0) {
			close(fd);
			return -1;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			struct inet_diag_msg *m;

			/* A dump interrupted by other sockets coming and
			 * going may skip ours: no verdict then. */
			if (h->nlmsg_type == NLMSG_ERROR ||
			    (h->nlmsg_flags & NLM_F_DUMP_INTR)) {
				close(fd);
				return -1;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			m = NLMSG_DATA(h);
			if (m->idiag_inode == wk.wc.listener_ino &&
			    ntohs(m->id.idiag_sport) == wk.lport)
				found = 1;
		}
	}
	close(fd);
	return found;
}

static void
wake_live_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	static int misses;
	int alive = wake_listener_alive();

	(void)loop;
	(void)w;
	(void)revents;
	/* A dump walks the kernel's tables while they change and can miss
	 * a socket that is there: three misses in a row, a second apart,
	 * before the server is taken for gone. */
	if (alive != 0) {
		misses = 0;
		return;
	}
	if (++misses >= 3)
		wake_exit("the server's listener is closed");
}

/* Drop what the server never took; wake again what it may have lost. */
static void
wake_sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wake_slot *s, *next;
	ev_tstamp now = ev_now(loop);

	(void)w;
	(void)revents;
	for (s = TAILQ_FIRST(&wk.slots); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (now - s->at > WAKE_SLOT_TTL) {
			log_warnx("server for %s did not accept a client "
				  "within %.0fs; dropped it",
			    wk.wc.asked_str, WAKE_SLOT_TTL);
			wake_slot_free(s);
		} else if (s->state == SLOT_WOKEN &&
		    now - s->woken > WAKE_REWAKE) {
			wake_kick(s);
		}
	}
	wake_pump();
}

static int
wake_unix_listen(void)
{
	struct sockaddr_un sun;
	socklen_t len;

	wk.unix_fd =
	    socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (wk.unix_fd == -1)
		return -1;
	len = wake_sock_addr(&sun, wk.lport, wk.wc.listener_ino);
	if (bind(wk.unix_fd, (struct sockaddr *)&sun, len) == -1 ||
	    listen(wk.unix_fd, 128) == -1)
		return -1;
	return 0;
}

int
wake_main(int ctl_fd)
{
	static const struct rclient_ops ops = {wake_ready, wake_failed,
	    wake_data};
	char err[NET_ERR_LEN];
	ssize_t n;
	pid_t pid;

	wk.ctl = ctl_fd;
	n = recv(ctl_fd, &wk.wc, sizeof(wk.wc), 0);
	if (n != (ssize_t)sizeof(wk.wc))
		return 1;
	wk.wc.relay_host[sizeof(wk.wc.relay_host) - 1] = '\0';
	wk.wc.asked_str[sizeof(wk.wc.asked_str) - 1] = '\0';
	log_init("relayshim", 0, 1);
	if (wk.wc.debug)
		log_set_level(LOG_LVL_DEBUG);

	/* Leave the server: our parent (the server) reaps this process at
	 * once, and the grandchild carries on with no tie to it. */
	pid = fork();
	if (pid == -1) {
		wake_verdict("ERR 11 cannot fork the helper");
		return 1;
	}
	if (pid > 0)
		_exit(0);

	if (wk.wc.listener.ss_family == AF_INET6)
		wk.lport =
		    ntohs(((struct sockaddr_in6 *)&wk.wc.listener)->sin6_port);
	else
		wk.lport =
		    ntohs(((struct sockaddr_in *)&wk.wc.listener)->sin_port);
	if (wake_unix_listen() == -1) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		    "ERR %d cannot open the helper "
		    "socket: %s",
		    errno, strerror(errno));
		wake_verdict(msg);
		return 1;
	}
	wk.loop = ev_default_loop(EVFLAG_AUTO);
	TAILQ_INIT(&wk.slots);
	wk.window = wk.wc.backlog < 1	      ? 1
	    : wk.wc.backlog > WAKE_WINDOW_MAX ? WAKE_WINDOW_MAX
					      : (unsigned)wk.wc.backlog;
	snprintf(wk.rc.host, sizeof(wk.rc.host), "%s", wk.wc.relay_host);
	wk.rc.port = (unsigned)atoi(wk.wc.relay_port);
	wk.rc.loop = wk.loop;
	wk.rc.ops = &ops;
	wk.rc.ext = wk.wc.ext;
	wk.rc.want_port = wk.wc.want_port;
	wk.rc.ka = wk.wc.heartbeat < 0 ? 0 : (unsigned)wk.wc.heartbeat;
	wk.rc.pool = wk.wc.pool < 0 ? 0 : (unsigned)wk.wc.pool;
	wk.rc.timeout = wk.wc.timeout_ms / 1000.0;
	wk.rc.dial_family = wk.wc.listener.ss_family;
	if (wk.wc.secret_file[0] != '\0' &&
	    auth_load_secret(wk.wc.secret_file, wk.rc.secret,
		sizeof(wk.rc.secret), &wk.rc.secret_len, err,
		sizeof(err)) == -1) {
		char msg[400];

		snprintf(msg, sizeof(msg), "ERR %d %s", EINVAL, err);
		wake_verdict(msg);
		return 1;
	}
	if (rclient_start(&wk.rc, err, sizeof(err)) == -1) {
		char msg[400];

		snprintf(msg, sizeof(msg), "ERR %d %s", EHOSTUNREACH, err);
		wake_verdict(msg);
		return 1;
	}
	ev_io_init(&wk.unix_io, wake_unix_cb, wk.unix_fd, EV_READ);
	ev_io_start(wk.loop, &wk.unix_io);
	ev_timer_init(&wk.live, wake_live_cb, WAKE_LIVENESS, WAKE_LIVENESS);
	ev_timer_start(wk.loop, &wk.live);
	ev_timer_init(&wk.sweep, wake_sweep_cb, 1.0, 1.0);
	ev_timer_start(wk.loop, &wk.sweep);
	ev_run(wk.loop, 0);
	return 0;
}
