/*
 * proxyproto.h - PROXY protocol v1/v2 headers (the HAProxy spec), for
 * servers that parse them (nginx "proxy_protocol").  Pure formatters.
 */
#ifndef COMMON_PROXYPROTO_H
#define COMMON_PROXYPROTO_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 108 /* the spec's bound for a v1 line */
#define PROXY_V2_MAX 52	 /* 16-byte header + IPv6 addresses */

/*
 * proxy_header: write a v1 (<version> 1) or v2 header for a connection
 * from <src> to <dst> into <out>.  Either may be NULL, or of different
 * families, then the header says UNKNOWN (v1) or LOCAL (v2), as the spec
 * asks.  Returns the length, or -1 if <cap> is too small.
 */
int proxy_header(char *out, size_t cap, int version, const struct sockaddr *src,
    const struct sockaddr *dst);

#endif
