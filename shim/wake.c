/*
 * wake.c - the helper process started by librelayshim.so at listen().
 *
 * It registers with the relay (client.c) and, for each client, puts the
 * relay connection into the queue shared with the server processes and
 * wakes the server's loopback listener with a connection carrying a
 * wake_hdr (wake.h).  The shim inside the server takes the connection
 * from the queue when its accept() returns the wake, and acknowledges it.
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

#include "accept_pause.h"
#include "auth.h"
#include "fdpass.h"
#include "flags.h"
#include "client.h"
#include "log.h"
#include "net.h"
#include "wake.h"
#include "helper.h"

#define WAKE_SLOT_TTL 30.0 /* a client the server does not take is dropped */
#define WAKE_LIVENESS 1.0  /* seconds between listener checks */
#define WAKE_REWAKE 2.0	   /* wake again if not taken by then */
#define WAKE_WINDOW_MAX 128
#define WAKE_ASKERS_MAX 32 /* shims asking at once; anyone may connect */
#define WAKE_ASKER_TTL 2.0 /* seconds an asker has to say what it wants */
#define WAKE_SIBLINGS_MAX 16

/*
 * A client's relay connection on its way to the server.  At most
 * <window> are queued and woken at once (the listener's backlog): more
 * wakes than the accept queue holds would be dropped by the kernel.
 * The others wait their turn, oldest first.
 */
enum wake_slot_state {
	SLOT_WAITING, /* held here, not queued yet */
	SLOT_QUEUED,  /* in the queue, wake sent, not acknowledged */
};

struct wake_slot {
	TAILQ_ENTRY(wake_slot) entry;
	enum wake_slot_state state;
	uint64_t id;
	int fd; /* relay connection while SLOT_WAITING, else -1 */
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

/* A listener that shares this helper with the one it wakes. */
struct wake_sibling {
	uint64_t ino;
	struct sockaddr_storage addr; /* loopback */
};

/* A shim asking for the queue or an address. */
struct wake_asker {
	int fd;
	ev_io io;
	ev_timer timer;
};

static struct {
	struct ev_loop *loop;
	struct wake_conf wc;
	struct rclient rc;
	int ctl; /* fd 3 to the shim, until the verdict is sent */
	int unix_fd;
	int q_near; /* our end of the queue: connections out, acks in */
	int q_far;  /* the servers' end, handed out */
	unsigned lport;
	ev_io unix_io;
	struct accept_pause unix_pause; /* unix_io off after EMFILE */
	unsigned naskers;
	ev_io ack_io;
	ev_timer live;
	ev_timer sweep;
	uint64_t next_slot;
	unsigned window;
	unsigned inflight; /* slots in SLOT_QUEUED */
	unsigned acceptq;  /* the listener's accept queue, last seen */
	TAILQ_HEAD(wake_slot_list, wake_slot) slots;
	struct wake_sibling sib[WAKE_SIBLINGS_MAX];
	unsigned nsib;
} wk;

/*
 * Close what is still queued: a server process may hold the queue after
 * its listener is gone, and the clients in it would wait for nothing.
 */
static void
wake_exit(const char *why)
{
	struct wake_msg m = {0};
	int fd;

	if (why != NULL && wk.wc.debug)
		log_info("helper for %s exits: %s", wk.wc.asked_str, why);
	for (int i = 0; wk.q_far != -1 && i < WAKE_WINDOW_MAX * 2; i++) {
		if (fdpass_recv(wk.q_far, &m, sizeof(m), &fd, 1) == -1)
			break;
		if (fd != -1)
			close(fd);
	}
	exit(0);
}

/* The answer to listen(); "OK ..." carries the queue's far end. */
static void
wake_verdict(const char *msg)
{
	int ok = strncmp(msg, "OK", 2) == 0;
	ssize_t n;

	if (wk.ctl == -1)
		return;
	n = fdpass_send(wk.ctl, msg, strlen(msg), ok ? wk.q_far : -1);
	close(wk.ctl);
	wk.ctl = -1;
	/* listen() gave up waiting (a slow name lookup, say) and failed:
	 * nobody will take this registration's clients. */
	if (ok && n == -1)
		wake_exit("listen() no longer waits for the registration");
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

/* Registration failed (at start, or later with no listen() waiting):
 * say so to listen() if it still waits, and go. */
static void
wake_failed(struct rclient *rc, int err, const char *why)
{
	char msg[400];

	(void)rc;
	snprintf(msg, sizeof(msg), "ERR %d %s", err, why);
	wake_verdict(msg);
	wake_exit(why);
}

static void
wake_slot_free(struct wake_slot *s)
{
	TAILQ_REMOVE(&wk.slots, s, entry);
	if (s->state == SLOT_QUEUED)
		wk.inflight--;
	if (s->fd != -1)
		close(s->fd);
	free(s);
}

static int wake_promote(void);

/* A wake was refused: the listener is closed.  Its lost wake is sent
 * again by the sweep (no accept queue, not taken after 2 s). */
static void
wake_listener_gone(void)
{
	if (wake_promote() == -1)
		wake_exit("the server's listener is gone");
}

static void
wake_kick_done(int fd, int err)
{
	/* We close first, so no TIME_WAIT is left on the server's side
	 * (the shim closes its end with the header unread: a reset). */
	close(fd);
	if (err == ECONNREFUSED)
		wake_listener_gone();
	else if (err != 0)
		log_warnx("cannot wake the server for %s: %s", wk.wc.asked_str,
		    strerror(err));
}

/* Send the wake header and close the wake connection; -1 while the
 * connection is still being made (the caller waits until writable). */
static int
wake_kick_send(int fd, const struct wake_hdr *hdr)
{
	int err = 0;

	if (send(fd, hdr, sizeof(*hdr), MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(*hdr)) {
		if (errno == EAGAIN)
			return -1;
		err = errno ? errno : EPIPE;
	}
	wake_kick_done(fd, err);
	return 0;
}

static void
wake_kick_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wake_kick *k = w->data;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)revents;
	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0)
		wake_kick_done(k->fd, err);
	else if (wake_kick_send(k->fd, &k->hdr) == -1)
		return;
	ev_io_stop(loop, w);
	free(k);
}

/*
 * Connect to the server's listener and send the slot's wake header.  A
 * loopback handshake has nearly always completed when connect() returns,
 * so the header goes out at once; otherwise when the socket is writable.
 */
static void
wake_kick(struct wake_slot *s)
{
	socklen_t len = wk.wc.listener.ss_family == AF_INET6
	    ? sizeof(struct sockaddr_in6)
	    : sizeof(struct sockaddr_in);
	struct wake_hdr hdr;
	struct wake_kick *k;
	int fd;

	memset(&hdr, 0, sizeof(hdr));
	memcpy(hdr.magic, WAKE_MAGIC, 4);
	hdr.version = WAKE_VERSION;
	memcpy(hdr.token, wk.wc.token, WAKE_TOKEN_LEN);
	hdr.id = s->id;
	s->woken = ev_now(wk.loop);
	fd = net_connect_nb(&wk.wc.listener, len, 0);
	if (fd == -1) {
		int err = errno;

		if (err == ECONNREFUSED) {
			wake_listener_gone();
			return;
		}
		log_warnx("cannot wake the server: %s", strerror(err));
		return;
	}
	if (wake_kick_send(fd, &hdr) == 0)
		return;
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		close(fd);
		return;
	}
	k->fd = fd;
	k->hdr = hdr;
	ev_io_init(&k->io, wake_kick_cb, fd, EV_WRITE);
	k->io.data = k;
	ev_io_start(wk.loop, &k->io);
}

/* Put a waiting slot's connection into the queue.  Returns 0, or -1 if
 * the queue is full (the slot keeps waiting). */
static int
wake_enqueue(struct wake_slot *s)
{
	struct wake_msg m;

	memset(&m, 0, sizeof(m));
	m.id = s->id;
	m.ino = net_inode(s->fd);
	m.has_peer = (uint32_t)s->has_peer;
	m.peer = s->peer;
	if (fdpass_send(wk.q_near, &m, sizeof(m), s->fd) == -1) {
		if (errno == EAGAIN || errno == ENOBUFS)
			return -1;
		log_warnx("cannot hand a client to the server for %s: %s",
		    wk.wc.asked_str, strerror(errno));
		wake_slot_free(s);
		return 0;
	}
	/* The queue holds the connection now. */
	close(s->fd);
	s->fd = -1;
	s->state = SLOT_QUEUED;
	wk.inflight++;
	wake_kick(s);
	return 0;
}

/*
 * Queue and wake the oldest waiting slots while the window has room.
 * Acknowledgements are read as they come only while a client waits for
 * room; otherwise with the next client or sweep, which spares this
 * process a wakeup per client.
 */
static void
wake_pump(void)
{
	struct wake_slot *s, *next;
	int blocked = 0;

	for (s = TAILQ_FIRST(&wk.slots); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state != SLOT_WAITING)
			continue;
		if (wk.inflight >= wk.window || wake_enqueue(s) == -1) {
			blocked = 1;
			break;
		}
	}
	if (blocked)
		ev_io_start(wk.loop, &wk.ack_io);
	else
		ev_io_stop(wk.loop, &wk.ack_io);
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

/* Acknowledgements from the servers: those clients are theirs now. */
static void
wake_acks(void)
{
	struct wake_ack ack;
	struct wake_slot *s;

	for (int i = 0; i < 1024; i++) {
		ssize_t n = recv(wk.q_near, &ack, sizeof(ack), MSG_DONTWAIT);

		if (n != (ssize_t)sizeof(ack)) {
			if (n == -1 && errno != EAGAIN && errno != EINTR)
				wake_exit("the queue failed");
			return;
		}
		s = wake_slot_find(ack.id);
		if (s != NULL && s->state == SLOT_QUEUED)
			wake_slot_free(s);
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
	if (wk.inflight >= wk.window)
		wake_acks();
	wake_pump();
}

static void
wake_ack_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	wake_acks();
	wake_pump();
}

static void
wake_answer(int fd)
{
	struct wake_resp resp;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int q = -1;

	memset(&resp, 0, sizeof(resp));
	resp.asked = wk.wc.asked;
	resp.asked_len = wk.wc.asked_len;
	/* The queue and the token go to the server's user (who could read
	 * them out of the server anyway) and root; the address to anyone. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	    (cred.uid == geteuid() || cred.uid == 0)) {
		memcpy(resp.token, wk.wc.token, WAKE_TOKEN_LEN);
		q = wk.q_far;
	}
	(void)fdpass_send(fd, &resp, sizeof(resp), q);
}

/* A sibling listener, told by a shim of our user. */
static void
wake_add_sibling(int fd, const struct wake_req *req)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    (cred.uid != geteuid() && cred.uid != 0) ||
	    (req->addr.ss_family != AF_INET &&
		req->addr.ss_family != AF_INET6) ||
	    req->ino == wk.wc.listener_ino)
		return;
	for (unsigned i = 0; i < wk.nsib; i++)
		if (wk.sib[i].ino == req->ino)
			return;
	if (wk.nsib == WAKE_SIBLINGS_MAX)
		return;
	wk.sib[wk.nsib].ino = req->ino;
	wk.sib[wk.nsib].addr = req->addr;
	wk.nsib++;
}

static void
wake_asker_free(struct wake_asker *a)
{
	ev_io_stop(wk.loop, &a->io);
	ev_timer_stop(wk.loop, &a->timer);
	close(a->fd);
	free(a);
	wk.naskers--;
}

static void
wake_asker_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wake_asker *a = w->data;
	struct wake_req req;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recv(a->fd, &req, sizeof(req), MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)sizeof(req) && req.kind == WAKE_REQ_ATTACH)
		wake_answer(a->fd);
	else if (n == (ssize_t)sizeof(req) && req.kind == WAKE_REQ_SIBLING)
		wake_add_sibling(a->fd, &req);
	wake_asker_free(a);
}

static void
wake_asker_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	wake_asker_free(w->data);
}

/*
 * The abstract socket's name is public (/proc/net/unix) and anyone may
 * connect: askers are few and short-lived, so a local process that opens
 * many and says nothing cannot use up this helper's descriptors.
 */
static void
wake_unix_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct wake_asker *a;
		int fd =
		    accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (accept_pause_is_exhaustion(errno))
				accept_pause_start(loop, &wk.unix_pause);
			return;
		}
		if (wk.naskers >= WAKE_ASKERS_MAX ||
		    (a = calloc(1, sizeof(*a))) == NULL) {
			close(fd);
			continue;
		}
		wk.naskers++;
		a->fd = fd;
		ev_io_init(&a->io, wake_asker_cb, fd, EV_READ);
		ev_timer_init(&a->timer, wake_asker_timeout_cb, WAKE_ASKER_TTL,
		    0.);
		a->io.data = a->timer.data = a;
		ev_io_start(loop, &a->io);
		ev_timer_start(loop, &a->timer);
	}
}

/*
 * Does a socket of <family> in LISTEN state with inode <ino> on port
 * <port> still exist?  Asks the kernel through NETLINK_SOCK_DIAG, and
 * notes the length of its accept queue in *acceptq.  Returns 1, 0, or
 * -1 (cannot tell).
 */
static int
wake_listener_alive(int family, uint64_t ino, unsigned port, unsigned *acceptq)
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
	q.req.sdiag_family = (uint8_t)family;
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
			if (m->idiag_inode == ino &&
			    ntohs(m->id.idiag_sport) == port) {
				found = 1;
				*acceptq = m->idiag_rqueue;
			}
		}
	}
	close(fd);
	return found;
}

/*
 * The listener this helper wakes is gone: wake a sibling that still
 * listens from now on.  Returns 0, or -1 if none is left.
 */
static int
wake_promote(void)
{
	while (wk.nsib > 0) {
		struct wake_sibling sib = wk.sib[--wk.nsib];
		unsigned q = 0;

		if (wake_listener_alive(sib.addr.ss_family, sib.ino,
			net_addr_port(&sib.addr), &q) == 0)
			continue;
		log_debug("helper for %s: its listener is closed; waking "
			  "another on loopback port %u",
		    wk.wc.asked_str, net_addr_port(&sib.addr));
		wk.wc.listener = sib.addr;
		wk.wc.listener_ino = sib.ino;
		wk.lport = net_addr_port(&sib.addr);
		wk.acceptq = q;
		return 0;
	}
	return -1;
}

static void
wake_live_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	static int misses;
	int alive = wake_listener_alive(wk.wc.listener.ss_family,
	    wk.wc.listener_ino, wk.lport, &wk.acceptq);

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
	if (++misses < 3)
		return;
	misses = 0;
	if (wake_promote() == -1)
		wake_exit("the server's listener is closed");
}

/*
 * Take back from the queue the clients that waited there longer than
 * WAKE_SLOT_TTL, and close them.  Only the queue's head can be read, so
 * the whole queue goes round once: the live ones go back to the tail in
 * the order they came, and the queue stays in the order of the slots.
 * (Putting back just the first live one and stopping reordered it: a
 * later drain stopped at a younger client before reaching the expired
 * one, which the sweep then called dropped while the server could still
 * take it.)  Messages a server takes meanwhile only shorten the round,
 * which never reads more than one message per queued slot.
 */
static void
wake_drain(ev_tstamp now)
{
	struct wake_msg m = {0};
	struct wake_slot *s;
	unsigned n = wk.inflight; /* at most one message per queued slot */
	uint64_t first = 0;	  /* the first put back; ids start at 1 */
	int fd;

	for (unsigned i = 0; i < n; i++) {
		/* Back at the first one put back: the round is over.  A
		 * peek without a control buffer leaves the descriptor. */
		if (first != 0 &&
		    (recv(wk.q_far, &m, sizeof(m), MSG_PEEK | MSG_DONTWAIT) !=
			    (ssize_t)sizeof(m) ||
			m.id == first))
			return;
		if (fdpass_recv(wk.q_far, &m, sizeof(m), &fd, 1) !=
		    (ssize_t)sizeof(m)) {
			if (fd != -1)
				close(fd);
			return;
		}
		if (fd == -1)
			continue;
		s = wake_slot_find(m.id);
		if (s == NULL || now - s->at > WAKE_SLOT_TTL) {
			close(fd); /* its slot goes, logged, in the sweep */
			continue;
		}
		/* The message just taken out left room for it. */
		if (fdpass_send(wk.q_near, &m, sizeof(m), fd) == -1) {
			log_warnx("cannot hand a client to the server for "
				  "%s: %s",
			    wk.wc.asked_str, strerror(errno));
			wake_slot_free(s);
		} else if (first == 0) {
			first = m.id;
		}
		close(fd);
	}
}

/* Drop what the server never took; wake again what it may have lost. */
static void
wake_sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wake_slot *s, *next;
	ev_tstamp now = ev_now(loop);

	(void)w;
	(void)revents;
	wake_acks();
	TAILQ_FOREACH(s, &wk.slots, entry)
		if (s->state == SLOT_QUEUED && now - s->at > WAKE_SLOT_TTL) {
			wake_drain(now);
			break;
		}
	for (s = TAILQ_FIRST(&wk.slots); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (now - s->at > WAKE_SLOT_TTL) {
			/* Waiting, or taken without an acknowledgement. */
			log_warnx("server for %s did not accept a client "
				  "within %.0fs; dropped it",
			    wk.wc.asked_str, WAKE_SLOT_TTL);
			wake_slot_free(s);
		} else if (s->state == SLOT_QUEUED &&
		    now - s->woken > WAKE_REWAKE && wk.acceptq == 0) {
			/* Its wake is neither taken nor waiting in the
			 * accept queue: it was lost. */
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
	int q[2];

	wk.ctl = ctl_fd;
	wk.q_near = wk.q_far = -1;
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

	wk.lport = net_addr_port(&wk.wc.listener);
	if (wake_unix_listen() == -1) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		    "ERR %d cannot open the helper "
		    "socket: %s",
		    errno, strerror(errno));
		wake_verdict(msg);
		return 1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		0, q) == -1) {
		char msg[128];

		snprintf(msg, sizeof(msg), "ERR %d cannot open the queue: %s",
		    errno, strerror(errno));
		wake_verdict(msg);
		return 1;
	}
	wk.q_near = q[0];
	wk.q_far = q[1];
	/* poll(2), not epoll: every relay connection leaves this process
	 * by SCM_RIGHTS while its file lives on, and an epoll set keeps
	 * reporting such a file under its old fd number (libev rebuilds the
	 * whole set when it sees that).  A helper watches a handful of fds. */
	wk.loop = ev_default_loop(EVBACKEND_POLL);
	TAILQ_INIT(&wk.slots);
	/* listen(fd, -1) asks for the system's maximum. */
	wk.window = wk.wc.backlog < 0	      ? WAKE_WINDOW_MAX
	    : wk.wc.backlog < 1		      ? 1
	    : wk.wc.backlog > WAKE_WINDOW_MAX ? WAKE_WINDOW_MAX
					      : (unsigned)wk.wc.backlog;
	snprintf(wk.rc.host, sizeof(wk.rc.host), "%s", wk.wc.relay_host);
	if (flags_parse_port(wk.wc.relay_port, strlen(wk.wc.relay_port),
		&wk.rc.port) == -1 ||
	    wk.rc.port == 0)
		wake_failed(&wk.rc, EINVAL, "RELAY_PORT is not a port");
	wk.rc.loop = wk.loop;
	wk.rc.ops = &ops;
	wk.rc.ext = wk.wc.ext;
	wk.rc.want_port = wk.wc.want_port;
	wk.rc.ka = wk.wc.heartbeat < 0 ? 0 : (unsigned)wk.wc.heartbeat;
	wk.rc.pool = wk.wc.pool < 0 ? 0 : (unsigned)wk.wc.pool;
	wk.rc.fastopen = wk.wc.fastopen;
	wk.rc.timeout = wk.wc.timeout_ms / 1000.0;
	wk.rc.dial_family = wk.wc.listener.ss_family;
	if (wk.wc.secret_file[0] != '\0' &&
	    auth_load_secret(wk.wc.secret_file, wk.rc.secret,
		sizeof(wk.rc.secret), &wk.rc.secret_len, err,
		sizeof(err)) == -1)
		wake_failed(&wk.rc, EINVAL, err);
	if (rclient_start(&wk.rc, err, sizeof(err)) == -1)
		wake_failed(&wk.rc, errno, err);
	ev_io_init(&wk.unix_io, wake_unix_cb, wk.unix_fd, EV_READ);
	accept_pause_init(&wk.unix_pause, &wk.unix_io, NULL, NULL, NULL);
	ev_io_start(wk.loop, &wk.unix_io);
	ev_io_init(&wk.ack_io, wake_ack_cb, wk.q_near, EV_READ);
	ev_timer_init(&wk.live, wake_live_cb, WAKE_LIVENESS, WAKE_LIVENESS);
	ev_timer_start(wk.loop, &wk.live);
	ev_timer_init(&wk.sweep, wake_sweep_cb, 1.0, 1.0);
	ev_timer_start(wk.loop, &wk.sweep);
	ev_run(wk.loop, 0);
	return 0;
}
