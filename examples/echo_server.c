/*
 * echo_server.c - an echo server reachable through relayd.
 *
 * The C version of the original examples/echoserver.go:
 *
 *   relayd -port 8080 &
 *   echo_server -host localhost -port 8080
 *   nc <relay host> <public port from relayd's log>
 *
 * It listens on an ephemeral loopback port, registers with the relay, and
 * bridges every client the relay announces to that port (relay_client.c).
 * The echo part knows nothing of the relay: it is an ordinary server.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "net.h"
#include "relay_client.h"

#define ECHO_BUF 32768 /* the original read up to 32 KiB at a time */

struct echo_conn {
	int fd;
	ev_io rd;
	ev_io wr;
	char buf[ECHO_BUF];
	size_t len; /* bytes read and not yet written back */
	size_t off; /* how many of them were written */
};

static void
echo_close(struct ev_loop *loop, struct echo_conn *c)
{
	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	close(c->fd);
	free(c);
}

/*
 * Read only while the buffer is empty and write only while it is not:
 * a client that sends faster than it reads is slowed down by TCP instead
 * of growing our memory.
 */
static void
echo_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct echo_conn *c = w->data;
	ssize_t n;

	(void)revents;
	n = recv(c->fd, c->buf, sizeof(c->buf), 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		fprintf(stderr, "Error reading %s\n",
		    n == 0 ? "EOF" : strerror(errno));
		echo_close(loop, c);
		return;
	}
	fprintf(stderr, "Server Read: %zd bytes\n", n);
	c->len = (size_t)n;
	c->off = 0;
	ev_io_stop(loop, &c->rd);
	ev_io_start(loop, &c->wr);
}

static void
echo_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct echo_conn *c = w->data;
	ssize_t n;

	(void)revents;
	n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1) {
		fprintf(stderr, "Error writing %s\n", strerror(errno));
		echo_close(loop, c);
		return;
	}
	c->off += (size_t)n;
	if (c->off < c->len)
		return;
	fprintf(stderr, "Server Wrote: %zu bytes\n", c->len);
	ev_io_stop(loop, &c->wr);
	ev_io_start(loop, &c->rd);
}

static void
echo_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	char addr[NET_ADDR_LEN];
	struct echo_conn *c;
	int fd;

	(void)revents;
	/* The listener is non-blocking: take every pending client. */
	while ((fd = accept4(w->fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		c = malloc(sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		printf("Client connected %s\n",
		    net_peer_str(fd, addr, sizeof(addr)));
		c->fd = fd;
		c->len = c->off = 0;
		ev_io_init(&c->rd, echo_read_cb, fd, EV_READ);
		ev_io_init(&c->wr, echo_write_cb, fd, EV_WRITE);
		c->rd.data = c->wr.data = c;
		ev_io_start(loop, &c->rd);
	}
}

int
main(int argc, char **argv)
{
	return relay_client_main(argc, argv, echo_accept_cb);
}
