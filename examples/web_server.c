/*
 * web_server.c - a tiny HTTP server reachable through relayd.
 *
 * The C version of the original examples/webserver.go, whose handler
 * answered every request with "Hi there, I love <path>!":
 *
 *   relayd -port 8080 &
 *   web_server -host localhost -port 8080
 *   curl http://<relay host>:<public port>/relays
 *   Hi there, I love relays!
 *
 * The original listened on localhost:12345; this one takes an ephemeral
 * loopback port, so several can run at once.  The HTTP part is ordinary
 * event-driven code; relay_client.c makes it reachable through the relay.
 * One request per connection ("Connection: close") keeps it short.
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

#define WEB_REQ_MAX 8192
#define WEB_TIMEOUT 10.0 /* seconds a connection may live */

enum web_state {
	WEB_READING,  /* collecting the request head */
	WEB_WRITING,  /* sending the response */
	WEB_DRAINING, /* response sent and shut: wait for the client's EOF */
};

struct web_conn {
	int fd;
	enum web_state state;
	ev_io io;
	ev_timer timer; /* a client that never finishes cannot pin us */
	char req[WEB_REQ_MAX];
	size_t len;
	char resp[WEB_REQ_MAX + 256];
	size_t resp_len;
	size_t resp_off;
};

static void
web_close(struct ev_loop *loop, struct web_conn *c)
{
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	free(c);
}

static void
web_watch(struct ev_loop *loop, struct web_conn *c, int events)
{
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(loop, &c->io);
}

static int
web_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * The path as Go's r.URL.Path shows it: query cut off, %XX decoded.
 * Decoding in place is safe because it only ever shortens the string.
 */
static void
web_path_decode(char *s)
{
	char *out = s;

	s[strcspn(s, "?#")] = '\0';
	for (; *s != '\0'; s++) {
		int hi = s[0] == '%' ? web_hexval(s[1]) : -1;
		int lo = hi >= 0 ? web_hexval(s[2]) : -1;

		if (lo >= 0) {
			*out++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Build the response to the request line at c->req (NUL-terminated). */
static void
web_respond(struct web_conn *c)
{
	char method[16], body[WEB_REQ_MAX + 32], *target;
	const char *status = "200 OK";
	int n;

	method[0] = '\0';
	/* "GET /path HTTP/1.1": the target is between the two spaces. */
	target = strchr(c->req, ' ');
	if (target == NULL || sscanf(c->req, "%15s", method) != 1 ||
	    target[1] != '/') {
		status = "400 Bad Request";
		snprintf(body, sizeof(body), "Bad request\n");
	} else {
		target++;
		target[strcspn(target, " \r\n")] = '\0';
		web_path_decode(target);
		snprintf(body, sizeof(body), "Hi there, I love %s!",
		    target + 1);
	}
	n = snprintf(c->resp, sizeof(c->resp),
	    "HTTP/1.1 %s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "%s",
	    status, strlen(body), strcmp(method, "HEAD") == 0 ? "" : body);
	c->resp_len = n < 0 ? 0 : (size_t)n;
	if (c->resp_len >= sizeof(c->resp))
		c->resp_len = sizeof(c->resp) - 1;
	c->resp_off = 0;
}

static void
web_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct web_conn *c = w->data;
	ssize_t n;

	(void)revents;
	switch (c->state) {
	case WEB_READING:
		n = recv(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len,
		    0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			web_close(loop, c);
			return;
		}
		c->len += (size_t)n;
		c->req[c->len] = '\0';
		/* Wait for the blank line that ends the request head. */
		if (strstr(c->req, "\r\n\r\n") == NULL &&
		    strstr(c->req, "\n\n") == NULL &&
		    c->len < sizeof(c->req) - 1)
			return;
		web_respond(c);
		c->state = WEB_WRITING;
		web_watch(loop, c, EV_WRITE);
		return;
	case WEB_WRITING:
		n = send(c->fd, c->resp + c->resp_off,
		    c->resp_len - c->resp_off, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1) {
			web_close(loop, c);
			return;
		}
		c->resp_off += (size_t)n;
		if (c->resp_off < c->resp_len)
			return;
		/*
		 * Closing now could turn unread request bytes into a reset
		 * that destroys the response in flight: shut our side and
		 * let the client close first.
		 */
		shutdown(c->fd, SHUT_WR);
		c->state = WEB_DRAINING;
		web_watch(loop, c, EV_READ);
		return;
	case WEB_DRAINING:
		n = recv(c->fd, c->req, sizeof(c->req), 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			web_close(loop, c);
		return;
	}
}

static void
web_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	web_close(loop, w->data);
}

static void
web_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct web_conn *c;
	int fd;

	(void)revents;
	while ((fd = accept4(w->fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		c = malloc(sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = WEB_READING;
		c->len = 0;
		ev_io_init(&c->io, web_io_cb, fd, EV_READ);
		ev_timer_init(&c->timer, web_timeout_cb, WEB_TIMEOUT, 0.);
		c->io.data = c->timer.data = c;
		ev_io_start(loop, &c->io);
		ev_timer_start(loop, &c->timer);
	}
}

int
main(int argc, char **argv)
{
	return relay_client_main(argc, argv, web_accept_cb);
}
