/*
 * net.c - socket helpers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flags.h"
#include "net.h"
#include "proto.h"

static int
net_bind_listen(int family, const struct sockaddr *sa, socklen_t len,
    int backlog)
{
	int fd, one = 1, zero = 0, saved;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Inherited by every accepted socket: urgent data is relayed as the
	 * byte it is, in order, not dropped. */
	(void)setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	if (family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero));
	if (bind(fd, sa, len) == -1 || listen(fd, backlog) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
net_listen_addr(const struct sockaddr_storage *ss, unsigned port, int backlog)
{
	struct sockaddr_storage a = *ss;
	socklen_t len;

	if (a.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	}
	return net_bind_listen(a.ss_family, (struct sockaddr *)&a, len,
	    backlog);
}

/*
 * A literal address needs no resolver.  getaddrinfo() parses
 * /etc/gai.conf and asks netlink which families are configured even for
 * "127.0.0.1", code that leaves libc pages mapped in every idle relayd
 * and helper (about 50 KiB of relayd's RSS).  Anything inet_pton()
 * refuses (names, "127.1", scoped "fe80::1%eth0") still goes to
 * getaddrinfo().
 */
static int
net_numeric(const char *host, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int
net_listen(const char *host, unsigned port, int backlog, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char service[16];
	int fd = -1, r, saved = 0;

	if (host == NULL || host[0] == '\0') {
		struct sockaddr_in6 sin6;
		struct sockaddr_in sin;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_any;
		sin6.sin6_port = htons((uint16_t)port);
		fd = net_bind_listen(AF_INET6, (struct sockaddr *)&sin6,
		    sizeof(sin6), backlog);
		if (fd != -1 ||
		    (errno != EAFNOSUPPORT && errno != EINVAL &&
			errno != EADDRNOTAVAIL))
			goto done;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		fd = net_bind_listen(AF_INET, (struct sockaddr *)&sin,
		    sizeof(sin), backlog);
		goto done;
	}
	if (net_numeric(host, port, &ss, &sslen) == 0) {
		fd = net_bind_listen(ss.ss_family, (struct sockaddr *)&ss,
		    sslen, backlog);
		goto done;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
		    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = net_bind_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen,
		    backlog);
		if (fd != -1)
			break;
		saved = errno;
	}
	freeaddrinfo(res);
	if (fd == -1)
		errno = saved;
done:
	if (fd == -1)
		snprintf(err, errlen, "cannot listen on %s%s%s:%u: %s",
		    host && strchr(host, ':') ? "[" : "",
		    host && *host ? host : "*",
		    host && strchr(host, ':') ? "]" : "", port,
		    strerror(errno));
	return fd;
}

int
net_resolve(const char *host, unsigned port, int family,
    struct sockaddr_storage *out, socklen_t *outlen, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
	char service[16];
	int r;

	if (port > 65535) {
		/* getaddrinfo would take it modulo 65536. */
		snprintf(err, errlen, "port %u is out of range", port);
		return -1;
	}
	if (net_numeric(host, port, out, outlen) == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
		    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (pick == NULL || ai->ai_family == family) {
			pick = ai;
			if (ai->ai_family == family)
				break;
		}
	}
	if (pick == NULL) {
		freeaddrinfo(res);
		snprintf(err, errlen, "cannot resolve %s: no address", host);
		return -1;
	}
	memcpy(out, pick->ai_addr, pick->ai_addrlen);
	*outlen = pick->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
net_connect_nb(const struct sockaddr_storage *ss, socklen_t len, int fastopen)
{
	int fd, saved, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	/* With a cookie cached, connect() returns 0 at once and the first
	 * write goes out in the SYN; without one the SYN asks for a cookie.
	 * A kernel without the option connects the usual way. */
	if (fastopen)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one,
		    sizeof(one));
	/* A v4-mapped destination needs a dual-stack socket, which
	 * net.ipv6.bindv6only=1 makes the default no longer. */
	if (ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(
		&((const struct sockaddr_in6 *)ss)->sin6_addr)) {
		int zero = 0;

		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero));
	}
	if (connect(fd, (const struct sockaddr *)ss, len) == -1 &&
	    errno != EINPROGRESS) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
net_established(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    ti.tcpi_state == TCP_ESTABLISHED;
}

void
net_fastopen(int fd, unsigned qlen)
{
	int q = (int)qlen;

	if (qlen > 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &q, sizeof(q));
}

int
net_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1)
		return -1;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

void
net_tune(int fd)
{
	int one = 1, idle = 15, intvl = 15, cnt = 9;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

unsigned
net_addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return 0;
}

unsigned
net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	return net_addr_port(&ss);
}

static const char *
net_addr_str(int fd, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
		     : getsockname(fd, (struct sockaddr *)&ss, &sl);

	if (r == -1 ||
	    proto_addr_format(buf, len, (struct sockaddr *)&ss) == -1)
		snprintf(buf, len, "?");
	return buf;
}

const char *
net_peer_str(int fd, char *buf, size_t len)
{
	return net_addr_str(fd, 1, buf, len);
}

const char *
net_local_str(int fd, char *buf, size_t len)
{
	return net_addr_str(fd, 0, buf, len);
}

int
net_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *colon, *hs = s, *he;

	if (s[0] == '[') {
		he = strchr(s, ']');
		if (he == NULL || he[1] != ':')
			return -1;
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		he = colon;
	}
	if ((size_t)(he - hs) >= hostlen)
		return -1;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	return flags_parse_port(colon + 1, strlen(colon + 1), port);
}

ssize_t
net_recv_line(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n;
	char *lf;
	size_t take;

	if (*len >= cap)
		return -1;
	n = recv(fd, buf + *len, cap - *len, MSG_PEEK | MSG_DONTWAIT);
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	lf = memchr(buf + *len, '\n', (size_t)n);
	take = lf ? (size_t)(lf - (buf + *len)) + 1 : (size_t)n;
	if (recv(fd, buf + *len, take, MSG_DONTWAIT) != (ssize_t)take)
		return -1;
	*len += take;
	if (lf == NULL)
		return *len >= cap ? -1 : 0;
	return (ssize_t)*len;
}

int
net_accept_is_temporary(int err)
{
	switch (err) {
	case EAGAIN:
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case EPERM: /* firewall refusal */
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return 1;
	default:
		return 0;
	}
}

uint64_t
net_inode(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}
