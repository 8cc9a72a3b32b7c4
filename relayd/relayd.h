/*
 * relayd.h - types shared by relayd's modules.
 *
 * Threads: the main thread runs the control listener and signals; each
 * worker thread runs its own libev loop and owns the registrations it was
 * handed, their listeners, queued clients and sessions.  Nothing is shared
 * between workers but the atomic counters in struct relayd_stats and the
 * read-only configuration.
 */
#ifndef RELAYD_RELAYD_H
#define RELAYD_RELAYD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <ev.h>

#include "accept_pause.h"
#include "linger.h"
#include "proto.h"
#include "pump.h"

#define RELAYD_MAX_WORKERS 64

struct relayd_conf {
	unsigned port;	       /* control port (-port) */
	char bind[256];	       /* bind address, "" for every interface */
	int bind_any;	       /* the control listener is a wildcard */
	unsigned max_regs;     /* registrations in all */
	unsigned max_regs_ip;  /* registrations per peer address */
	unsigned max_sessions; /* open sessions per registration */
	unsigned max_queue;    /* clients waiting per registration */
	double data_timeout;   /* seconds to wait for a data connection */
	double hello_timeout;  /* seconds for an extension handshake */
	double idle_timeout;   /* close a silent session, 0: never */
	unsigned workers;      /* worker threads (event loops) */
	int no_splice;	       /* copy through user space instead */
	unsigned fastopen;     /* TCP Fast Open queue per listener, 0: off */
	int check_only;	       /* -t: check the flags and exit */
	unsigned port_min;     /* range a registration may ask for */
	unsigned port_max;
	char secret_file[1024]; /* extension auth; "" for none */
	unsigned char secret[64];
	size_t secret_len;
	unsigned ka; /* heartbeat interval offered, seconds */
};

/* Counters read by the stats endpoint; updated with relaxed atomics. */
struct relayd_stats {
	atomic_uint regs;
	atomic_uint sessions;
	atomic_uint queued;
	atomic_ullong regs_total;
	atomic_ullong sessions_total;
	atomic_ullong bytes_c2s;
	atomic_ullong bytes_s2c;
	atomic_ullong err_accept;  /* accept(2) failures */
	atomic_ullong err_limit;   /* refused by a limit */
	atomic_ullong err_timeout; /* data connection timeouts */
	atomic_ullong err_stray;   /* stray data connections */
	atomic_ullong err_proto;   /* malformed extension lines */
	atomic_ullong err_auth;	   /* failed authentication */
	atomic_ullong err_io;	   /* sessions aborted by an I/O error */
};

struct worker;
struct reg;

/* A client accepted on a registration's public port, not yet paired. */
enum client_state {
	CLIENT_QUEUED,	 /* waiting for its turn to be announced */
	CLIENT_NOTIFIED, /* [NEW] sent, waiting for the data connection */
};

struct client {
	TAILQ_ENTRY(client) entry;
	enum client_state state;
	int fd;
	uint64_t id;	 /* extension client id */
	ev_tstamp since; /* when it was announced */
	int eof;	 /* queued, and it shut its side: announced last */
	struct sockaddr_storage addr;
	char addr_str[64];
};
TAILQ_HEAD(client_list, client);

/* One relayed pair: client <-> data connection. */
enum session_state {
	SESSION_OPEN,	/* both directions flowing */
	SESSION_HALF,	/* one direction shut, the other flowing */
	SESSION_LINGER, /* both done; a socket still delivering (linger.h) */
	SESSION_CLOSED, /* both done; about to be freed */
};

/*
 * What a session keeps of its registration.  Sessions run on whichever
 * worker is least busy and may outlive the registration, so this small
 * part is shared between threads and freed by its last holder.
 */
struct reg_share {
	atomic_uint refs;
	atomic_uint sessions; /* open sessions of the registration */
	atomic_uint queued;   /* its clients not yet paired */
};

struct session {
	LIST_ENTRY(session) entry;
	enum session_state state;
	uint64_t id;
	uint64_t reg_id;
	struct worker *worker;
	struct reg_share *share;
	int client_fd;
	int data_fd;
	ev_timer idle; /* -idle-timeout, checked lazily */
	struct pump pump;
	unsigned holds; /* SESSION_LINGER: its sockets not closed yet, + 1 */
};
LIST_HEAD(session_list, session);

/* A data connection that must first send its [DATA] line (extensions). */
enum dconn_state {
	DCONN_HELLO,  /* reading the [DATA] line */
	DCONN_AUTH,   /* pooled: [CHALLENGE] sent, reading [AUTH] */
	DCONN_POOLED, /* authenticated, idle until a client comes */
};

struct dconn {
	TAILQ_ENTRY(dconn) entry;
	enum dconn_state state;
	struct reg *reg;
	int fd;
	ev_io io;
	ev_timer timer;
	char buf[256];
	size_t len;
	char nonce[33];
};
TAILQ_HEAD(dconn_list, dconn);

enum reg_mode {
	REG_MODE_UNDECIDED, /* nothing read yet: behaves as the original */
	REG_MODE_ORIGINAL,  /* peer sent something other than [HELLO] */
	REG_MODE_AUTH,	    /* [HELLO] read, waiting for [AUTH] */
	REG_MODE_EXT,	    /* extensions negotiated */
};

enum reg_state {
	REG_ACTIVE, /* listeners open, serving clients */
	REG_CLOSED, /* torn down; about to be freed */
};

struct reg {
	LIST_ENTRY(reg) entry;
	enum reg_state state;
	enum reg_mode mode;
	uint64_t id;
	struct worker *worker;
	int ctl_fd;
	int cl_fd; /* client-facing listener */
	int sv_fd; /* server-facing listener */
	unsigned cport;
	unsigned sport;
	struct sockaddr_storage peer;
	struct sockaddr_storage local; /* where the listeners bind */
	char peer_str[64];
	ev_io ctl_rd;
	ev_io ctl_wr;
	ev_io cl_io;
	ev_io sv_io;
	ev_timer data_timer;	   /* oldest announced client's deadline */
	struct accept_pause pause; /* listeners paused after EMFILE */
	ev_timer ka_timer;	   /* extension heartbeat */
	ev_timer hs_timer;	   /* handshake deadline when a secret is set */
	unsigned want_port;	   /* public port asked for in [HELLO] */
	ev_tstamp last_rx;
	char in[PROTO_LINE_MAX];
	size_t in_len;
	char out[1024]; /* unsent control bytes */
	size_t out_len;
	struct client_list queue;     /* CLIENT_QUEUED, FIFO */
	struct client_list announced; /* CLIENT_NOTIFIED, FIFO */
	unsigned nqueued;
	unsigned nannounced;
	int new_sent; /* a [NEW] went out: before a [HELLO], the original */
	struct reg_share *share;
	struct dconn_list dconns;
	unsigned ndconns;  /* dconns, in every state */
	unsigned npooled;  /* dconns in DCONN_POOLED */
	unsigned pool_max; /* granted pool size */
	unsigned ext;	   /* negotiated PROTO_EXT_* */
	unsigned ka;
	char key[33]; /* registration key (hex), extensions */
	char nonce[33];
};
LIST_HEAD(reg_list, reg);

/* Work handed to a worker from another thread. */
enum handoff_kind {
	HANDOFF_REG,	 /* a control connection: start a registration */
	HANDOFF_SESSION, /* a paired client and data connection */
};

struct handoff {
	enum handoff_kind kind;
	int fd; /* control fd, or the client */
	/* HANDOFF_REG: the peer as accept(2) gave it, which the per-address
	 * limit counted (getpeername fails once the peer has reset). */
	struct sockaddr_storage peer;
	int data_fd;
	uint64_t reg_id;
	struct reg_share *share;
};

struct worker {
	unsigned idx;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async wake;
	pthread_mutex_t lock;
	struct handoff *inbox; /* guarded by lock */
	size_t inbox_len;
	size_t inbox_cap;
	atomic_uint load; /* sessions running here */
	int stopping;
	struct reg_list regs;
	struct reg_list dead; /* closed, freed by reap before sleeping */
	ev_prepare reap;
	struct session_list sessions;
	struct pipe_pool pipes;
	struct linger_set lingers; /* closed sockets still delivering */
};

extern struct relayd_conf conf;
extern struct relayd_stats stats;

/* worker.c */
int worker_start_all(unsigned n);
void worker_stop_all(void);
int worker_hand_off(int fd, const struct sockaddr_storage *peer);
struct worker *worker_pick(struct worker *self);
int worker_send(struct worker *w, const struct handoff *h);
uint64_t worker_next_id(struct worker *w);

/* reg.c */
void reg_create(struct worker *w, int ctl_fd,
    const struct sockaddr_storage *peer);
void reg_close(struct reg *reg, const char *why);
void reg_share_release(struct reg_share *share);
void reg_reap(struct worker *w);
int reg_limits_admit(const struct sockaddr_storage *peer);
void reg_limits_release(const struct sockaddr_storage *peer);
size_t reg_limits_addresses(void);

/* session.c */
void session_pair(struct reg *reg, struct client *c, int data_fd);
void session_start(struct worker *w, const struct handoff *h);
void session_close(struct session *s, const char *why);

#endif
