/*
 * client.h - the server side of the relay protocol, as a libev state
 * machine: the control connection, the extension handshake, heartbeats,
 * re-registration with backoff, and dialling back for each [NEW].
 *
 * Used by both modes of the relayshim helper: the preload helper (wake.c)
 * and the standalone forwarder (standalone.c).
 */
#ifndef SHIM_CLIENT_H
#define SHIM_CLIENT_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <ev.h>

#include "proto.h"

enum rclient_state {
	RC_CONNECTING, /* TCP connect to the control port in progress */
	RC_HELLO,      /* [HELLO] sent, waiting for [OK] (or silence) */
	RC_AUTH,       /* [AUTH] sent, waiting for [OK] */
	RC_READY,      /* registered: [NEW] lines are handled */
	RC_BACKOFF,    /* lost; reconnecting after a pause */
};

struct rclient;

/* A pre-opened data connection, waiting for a client (extensions). */
enum rpool_state {
	RP_CONNECTING, /* TCP connect in progress */
	RP_CHALLENGE,  /* [DATA] sent; reading the relay's [CHALLENGE] */
	RP_IDLE,       /* waiting for its [NEW] line */
};

struct rpool {
	TAILQ_ENTRY(rpool) entry;
	struct rclient *rc;
	enum rpool_state state;
	int fd;
	ev_io io;
	char buf[PROTO_LINE_MAX];
	size_t len;
};
TAILQ_HEAD(rpool_list, rpool);

struct rclient_ops {
	/* Registered; <public_port> is 0 with a relay of the original
	 * protocol (it never says).  Called after every (re)registration. */
	void (*ready)(struct rclient *rc, unsigned public_port);
	/* The first registration failed: <err> is an errno value. */
	void (*failed)(struct rclient *rc, int err, const char *why);
	/* A data connection for a client is connected (and its [DATA]
	 * line sent); the callee owns <fd>.  <from> is the client's
	 * address, or NULL if the relay does not tell. */
	void (*data)(struct rclient *rc, int fd,
	    const struct sockaddr_storage *from);
};

struct rclient {
	struct ev_loop *loop;
	const struct rclient_ops *ops;
	void *data;
	/* settings */
	char host[256];
	unsigned port;
	int ext;	    /* ask for the extensions */
	unsigned want_port; /* public port to ask for (0: any) */
	unsigned ka;	    /* heartbeat seconds (extensions) */
	unsigned pool;	    /* pre-opened data connections to keep */
	int fastopen;	    /* TCP Fast Open where we write first */
	double timeout;	    /* connect + handshake deadline, seconds */
	double hello_wait;  /* silence after [HELLO] = original relay */
	int dial_family;    /* family for data connections */
	unsigned char secret[64];
	size_t secret_len;
	/* state */
	enum rclient_state state;
	int fd;
	int registered_once;
	unsigned public_port;
	unsigned ext_ok;      /* PROTO_EXT_* the relay granted */
	int fell_back;	      /* original protocol assumed after silence */
	int challenged;	      /* the relay asked for the secret: it has one */
	ev_tstamp started_at; /* the first registration began */
	ev_tstamp connect_at;
	ev_tstamp registered_at;
	unsigned asked_port;	 /* want_port as the user set it (0: any) */
	ev_tstamp port_taken_at; /* the relay first refused want_port, or 0 */
	char reg[PROTO_HEX_MAX + 1];
	double backoff;
	ev_tstamp last_rx;
	struct sockaddr_storage relay;
	socklen_t relay_len;
	ev_io rd;
	ev_io wr;
	ev_timer timer;	   /* deadlines and backoff */
	ev_timer ka_timer; /* heartbeat */
	char in[PROTO_LINE_MAX * 2];
	size_t in_len;
	unsigned dials;	  /* data connections being dialled */
	unsigned sport;	  /* server-facing port, from [OK] */
	unsigned pool_ok; /* pool size the relay granted */
	unsigned npool;
	struct rpool_list pools;
	ev_timer pool_timer; /* refill after a failure */
};

/* rclient_start: resolve and connect; returns 0, or -1 with <err> and
 * errno: EINVAL for a setting out of range, EHOSTUNREACH for a relay
 * name that does not resolve. */
int rclient_start(struct rclient *rc, char *err, size_t errlen);
void rclient_stop(struct rclient *rc);

#endif
