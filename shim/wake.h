/*
 * wake.h - what the preload library and its helper process say to each
 * other on this host.  Never crosses the network.
 *
 * The helper owns a SOCK_SEQPACKET socket pair, the "queue".  For every
 * client it sends the relay connection (SCM_RIGHTS, with a wake_msg) into
 * the queue, then makes a "wake" connection to the server's real
 * (loopback) listener and writes a wake_hdr on it.  Every server process
 * holds the queue's far end (inherited over fork, or fetched with
 * WAKE_REQ_ATTACH over the abstract UNIX socket WAKE_SOCK_FMT).  When the
 * server's own accept() returns a wake, the shim's hook closes it, takes
 * the next relay connection from the queue, returns that instead and
 * tells the helper which one it took (wake_ack).  Any wake may take any queued
 * connection: wakes and queued connections come in pairs, so the counts match,
 * and the accept path never waits for the helper to be scheduled.
 */
#ifndef SHIM_WAKE_H
#define SHIM_WAKE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define WAKE_MAGIC "RSHM"
#define WAKE_VERSION 2
#define WAKE_TOKEN_LEN 16
/* Abstract, after the NUL: the loopback port and the listener's inode.
 * The port alone is not enough: a helper outlives its listener by a few
 * seconds, and the kernel may give that port to the next listener. */
#define WAKE_SOCK_FMT "relayshim.%u.%llx"

/* The helper's abstract socket for a listener; returns its length. */
static inline socklen_t
wake_sock_addr(struct sockaddr_un *sun, unsigned lport, uint64_t ino)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    WAKE_SOCK_FMT, lport, (unsigned long long)ino);
	return (
	    socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* Written by the helper on a wake connection; 32 bytes. */
struct wake_hdr {
	char magic[4];
	uint8_t version;
	uint8_t pad[3];
	uint8_t token[WAKE_TOKEN_LEN]; /* proves the helper sent it */
	uint64_t id;		       /* the client it is for (logs only) */
};

/* helper -> queue, one message carrying the relay connection. */
struct wake_msg {
	uint64_t id;
	uint64_t ino; /* the relay connection's inode */
	uint32_t has_peer;
	uint32_t pad;
	struct sockaddr_storage peer; /* the real client, if known */
};

/* shim -> helper over the queue: "I took <id>". */
struct wake_ack {
	uint64_t id;
};

enum wake_req_kind {
	/* What address did the server ask for?  To a process of the
	 * helper's user, the answer also carries the token and the queue
	 * (SCM_RIGHTS). */
	WAKE_REQ_ATTACH = 1,
	/* Another listener shares this helper (a v4 and a v6 one on one
	 * port, SO_REUSEPORT siblings): once the one it wakes is closed,
	 * wake that one.  Heeded from the helper's user and root only. */
	WAKE_REQ_SIBLING = 2,
};

/* shim -> helper, one SOCK_SEQPACKET message on the abstract socket. */
struct wake_req {
	uint32_t kind;
	uint32_t pad;
	uint64_t ino;		      /* SIBLING: the listener's inode */
	struct sockaddr_storage addr; /* SIBLING: its loopback address */
};

/* helper -> shim, one message. */
struct wake_resp {
	int32_t status; /* 0, or an errno value */
	uint32_t asked_len;
	struct sockaddr_storage asked; /* the address the server bound */
	uint8_t token[WAKE_TOKEN_LEN]; /* with the queue only */
};

/*
 * Configuration the shim hands to the helper on its fd 3 at listen(),
 * one message; then the helper answers with a NUL-terminated line
 * "OK host:port" or "OK -" (public port unknown: original relay) or
 * "ERR reason".
 */
struct wake_conf {
	char relay_host[256];
	char relay_port[16];
	char secret_file[512];
	char asked_str[80];		  /* "0.0.0.0:8080", for messages */
	struct sockaddr_storage listener; /* loopback address to wake */
	struct sockaddr_storage asked;	  /* what the server bound */
	uint32_t asked_len;
	uint32_t want_port; /* RELAY_PUBLIC_PORT, 0: any */
	uint64_t listener_ino;
	uint8_t token[WAKE_TOKEN_LEN];
	int32_t timeout_ms; /* registration deadline */
	int32_t ext;	    /* 0: original protocol only */
	int32_t debug;
	int32_t pool;	   /* pre-opened data connections */
	int32_t backlog;   /* the server's listen() backlog */
	int32_t heartbeat; /* seconds between [PING]s, 0: none */
	int32_t fastopen;  /* TCP Fast Open towards the relay */
};

#endif
