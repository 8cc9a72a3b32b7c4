/*
 * proto.h - the relay protocol: pure parsers and formatters, no I/O.
 *
 * The original protocol is one message, relay -> server on the control
 * connection:  "[NEW]" <server-facing port> LF.
 *
 * Every extension (docs/PROTOCOL.md) is opt-in: the server side speaks
 * first with a [HELLO] line, and relayd never sends anything but the
 * original [NEW] line to a peer that did not.  All messages are single
 * lines of the form  "[" TAG "]" [value] *(SP key "=" value) LF,  at most
 * PROTO_LINE_MAX bytes including the LF.  Unknown keys are ignored, so
 * later versions can add fields without breaking this parser.
 */
#ifndef COMMON_PROTO_H
#define COMMON_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define PROTO_LINE_MAX 256
#define PROTO_VERSION 1
#define PROTO_HEX_MAX 64 /* hex digits in a nonce or MAC */
#define PROTO_TEXT_MAX 160

enum proto_type {
	PROTO_NEW = 1,	 /* relay -> server: a client is waiting */
	PROTO_HELLO,	 /* server -> relay: asks for the extensions */
	PROTO_OK,	 /* relay -> server: registration accepted */
	PROTO_ERR,	 /* relay -> server: refused; the relay closes */
	PROTO_CHALLENGE, /* relay -> server: nonce to prove the secret on */
	PROTO_AUTH,	 /* server -> relay: MAC over the nonce */
	PROTO_DATA,	 /* server -> relay: first line of a data connection */
	PROTO_PING,	 /* either way: heartbeat */
	PROTO_PONG,	 /* answer to PING */
};

/* Parse errors, returned negated by proto_parse(). */
enum proto_error {
	PROTO_E_TOOLONG = 1, /* no LF within PROTO_LINE_MAX bytes */
	PROTO_E_SYNTAX,	     /* not "[TAG]..." or a bad character */
	PROTO_E_TAG,	     /* unknown tag */
	PROTO_E_VALUE,	     /* a number out of range, a bad hex string */
};

/* Feature bits carried by HELLO's and OK's "ext=" list. */
#define PROTO_EXT_ADDR 0x01 /* [NEW] carries id= and from= */
#define PROTO_EXT_PIPE 0x02 /* several [NEW] may be outstanding */
#define PROTO_EXT_POOL 0x04 /* pre-opened data connections */

struct proto_msg {
	enum proto_type type;
	unsigned version; /* v= */
	unsigned port;	  /* NEW: server-facing port; HELLO: wanted public
			     port (0: any); OK: public (client) port */
	unsigned sport;	  /* OK: server-facing port */
	unsigned ka;	  /* HELLO/OK: heartbeat interval, seconds */
	unsigned ext;	  /* HELLO/OK: PROTO_EXT_* */
	unsigned pool;	  /* HELLO/OK: pre-opened data connections;
			     DATA: 1 for a pooled connection */
	uint64_t id;	  /* NEW/DATA: client id (0: none) */
	int has_id;
	int has_from;
	struct sockaddr_storage from; /* NEW: the client's address */
	char reg[PROTO_HEX_MAX + 1];  /* HELLO/OK/DATA: registration key */
	char hex[PROTO_HEX_MAX + 1];  /* CHALLENGE nonce, AUTH/DATA mac */
	char text[PROTO_TEXT_MAX];    /* ERR reason */
};

/*
 * proto_parse: parse one line from <buf> (<len> bytes available).
 * Returns the bytes consumed including the LF (> 0) and fills <msg>;
 * 0 when no complete line is there yet (read more); or -PROTO_E_* on a
 * malformed line.  A CR before the LF is accepted, as the original helper
 * trimmed white space.
 */
ssize_t proto_parse(struct proto_msg *msg, const char *buf, size_t len);

/*
 * proto_format: write <msg> as a line into <out>.  Returns its length, or
 * -1 if it does not fit.  A PROTO_NEW without has_id is exactly the
 * original "[NEW]<port>\n".
 */
int proto_format(char *out, size_t cap, const struct proto_msg *msg);

/* proto_strerror: a word for a PROTO_E_* code, for log lines. */
const char *proto_strerror(int err);

/*
 * proto_addr_format / proto_addr_parse: "a.b.c.d:port" or "[v6]:port".
 * Format returns the length or -1; parse returns 0 or -1.
 */
int proto_addr_format(char *out, size_t cap, const struct sockaddr *sa);
int proto_addr_parse(struct sockaddr_storage *ss, const char *s, size_t len);

/* proto_hex_encode: lower-case hex of <n> bytes into <out> (2n+1). */
void proto_hex_encode(char *out, const uint8_t *in, size_t n);
/* proto_hex_decode: returns the byte count, or -1 on bad input. */
int proto_hex_decode(uint8_t *out, size_t cap, const char *hex);

#endif
