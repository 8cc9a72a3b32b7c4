/*
 * flags.h - command lines in the syntax of Go's flag package, which the
 * original relay used and its users type: "-name value", "-name=value",
 * "--name value" and "--name=value" are the same; a boolean takes no
 * value (or "=true"/"=false").  Shared by relayd and relayshim.
 */
#ifndef COMMON_FLAGS_H
#define COMMON_FLAGS_H

#include <stddef.h>
#include <stdio.h>

enum flag_kind {
	FLAG_UINT,   /* unsigned, 0..size */
	FLAG_DOUBLE, /* seconds: > 0 (or 0, see size), at most a day */
	FLAG_STR,    /* into a char buffer of <size> bytes */
	FLAG_BOOL,   /* int set to 1 */
};

struct flag {
	const char *name;
	enum flag_kind kind;
	void *ptr;
	size_t size;	  /* FLAG_UINT: maximum; FLAG_STR: buffer size;
			     FLAG_DOUBLE: 1 if 0 is taken (it means "off") */
	const char *arg;  /* what the value is, for the usage text */
	const char *help; /* NULL: accepted, not listed */
};

/*
 * flags_parse: set the flags of <tbl> from argv[1..argc-1].  A bare
 * argument sets <positional> (once), or is refused when it is NULL.  No
 * I/O: returns 0, or -1 with the reason in <err> (worded as Go's flag
 * package words it) and *unknown set when the flag does not exist.
 */
int flags_parse(const struct flag *tbl, size_t n, const struct flag *positional,
    int argc, char *const argv[], char *err, size_t errlen, int *unknown);

/* flags_parse_port: the <len> bytes at <s> are a port, 0 to 65535, in
 * decimal digits only (no sign, blank or wrap-around): 0, or -1. */
int flags_parse_port(const char *s, size_t len, unsigned *port);

/*
 * flags_port_listed: is <port> in <list>, comma-separated decimal ports
 * (RELAY_PORTS), blanks around each allowed?  An empty list holds every
 * port; a malformed entry matches nothing, and the others still count.
 */
int flags_port_listed(const char *list, unsigned port);

/* flags_usage: one line per listed flag, "-name ARG   help". */
void flags_usage(FILE *f, const struct flag *tbl, size_t n);

#endif
