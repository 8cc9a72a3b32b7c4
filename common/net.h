/*
 * net.h - small socket helpers shared by relayd, the shim helper and the
 * tests.  Every function returns -1 with errno set on failure (or fills
 * <err> for the ones that resolve names), never exits.
 */
#ifndef COMMON_NET_H
#define COMMON_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_ERR_LEN 256
#define NET_ADDR_LEN 64 /* "[v6]:port" and NUL */

/*
 * net_listen: a non-blocking, close-on-exec TCP listener.  <host> NULL or
 * "" means every interface, dual-stack ("[::]" with V6ONLY off, falling
 * back to 0.0.0.0 where IPv6 is missing), as the original relay bound.
 * <port> 0 lets the kernel pick.  Returns the fd, or -1 with <err> set.
 */
int net_listen(const char *host, unsigned port, int backlog, char *err,
    size_t errlen);

/*
 * net_listen_addr: like net_listen, on an address already resolved,
 * with its port replaced by <port>.
 */
int net_listen_addr(const struct sockaddr_storage *ss, unsigned port,
    int backlog);

/*
 * net_resolve: resolve <host>:<port> for a TCP connect; <family> is
 * AF_UNSPEC or a family to prefer.  Returns 0, or -1 with <err> set.
 */
int net_resolve(const char *host, unsigned port, int family,
    struct sockaddr_storage *out, socklen_t *outlen, char *err, size_t errlen);

/*
 * net_connect_nb: a non-blocking connect; the fd (connected or in
 * progress) or -1.  <fastopen> asks for TCP Fast Open: only for a caller
 * that writes first, since the SYN waits for that write once the peer
 * has given a cookie (and then connect() has already returned).
 */
int net_connect_nb(const struct sockaddr_storage *ss, socklen_t len,
    int fastopen);
/* net_established: whether TCP socket <fd> has finished its handshake. */
int net_established(int fd);
/* net_fastopen: accept TCP Fast Open SYNs on listener <fd>, at most
 * <qlen> pending; 0 leaves it off.  The kernel honours it only where
 * net.ipv4.tcp_fastopen has the server bit (2). */
void net_fastopen(int fd, unsigned qlen);

int net_set_nonblock(int fd, int on);
/* net_tune: TCP_NODELAY and keepalive (15 s, as Go's runtime sets). */
void net_tune(int fd);
/* net_local_port: the port <fd> is bound to, or 0. */
unsigned net_local_port(int fd);
/* net_addr_port: the port of an AF_INET or AF_INET6 address, or 0. */
unsigned net_addr_port(const struct sockaddr_storage *ss);
/* net_peer_str / net_local_str: "ip:port" into <buf>, "?" on error. */
const char *net_peer_str(int fd, char *buf, size_t len);
const char *net_local_str(int fd, char *buf, size_t len);
/* net_parse_hostport: split "host:port" / "[v6]:port" into parts. */
int net_parse_hostport(const char *s, char *host, size_t hostlen,
    unsigned *port);
/*
 * net_recv_line: read from <fd> into <buf> (holding *len bytes) up to and
 * including the first LF, never past it: bytes after a protocol line
 * belong to whoever gets the socket next.  Returns the line's length with
 * the LF (*len == it), 0 when no LF has come yet, -1 on EOF, error or a
 * line longer than <cap>.
 */
ssize_t net_recv_line(int fd, char *buf, size_t cap, size_t *len);
/* net_inode: the inode of <fd>, 0 if it has none. */
uint64_t net_inode(int fd);
/* net_is_temporary: accept(2) errors after which the listener lives. */
int net_accept_is_temporary(int err);

#endif
