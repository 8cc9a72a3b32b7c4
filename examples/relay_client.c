/*
 * relay_client.c - read [NEW] lines from the relay and bridge each one to
 * the example's local listener.  See relay_client.h for the protocol.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "relay_client.h"

static void
relay_client_usage(const char *prog, int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "Usage: %s [-host HOST] [-port PORT]\n"
	    "  -host HOST  the relay's host name or address (default "
	    "localhost)\n"
	    "  -port PORT  the relay's control port (default 8080)\n",
	    prog);
	exit(status);
}

static int
relay_client_flag_is(const char *name, size_t len, const char *flag)
{
	return strlen(flag) == len && strncmp(name, flag, len) == 0;
}

void
relay_client_flags(int argc, char **argv, char *host, size_t hostlen,
    unsigned *port)
{
	snprintf(host, hostlen, "localhost");
	*port = 8080;
	for (int i = 1; i < argc; i++) {
		const char *name = argv[i], *value, *eq;
		size_t namelen;
		char *end;
		unsigned long p;

		/* Go's flag package takes "-f", "--f", "-f v" and "-f=v". */
		if (name[0] != '-')
			relay_client_usage(argv[0], 2);
		name += name[1] == '-' ? 2 : 1;
		eq = strchr(name, '=');
		namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		if (relay_client_flag_is(name, namelen, "h") ||
		    relay_client_flag_is(name, namelen, "help"))
			relay_client_usage(argv[0], 0);
		if (eq != NULL)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else
			relay_client_usage(argv[0], 2);

		if (relay_client_flag_is(name, namelen, "host")) {
			if (value[0] == '\0' || strlen(value) >= hostlen)
				relay_client_usage(argv[0], 2);
			snprintf(host, hostlen, "%s", value);
		} else if (relay_client_flag_is(name, namelen, "port")) {
			errno = 0;
			p = strtoul(value, &end, 10);
			if (*value == '\0' || *end != '\0' || errno != 0 ||
			    p == 0 || p > 65535)
				relay_client_usage(argv[0], 2);
			*port = (unsigned)p;
		} else {
			relay_client_usage(argv[0], 2);
		}
	}
}

/*
 * A blocking connect keeps the example short.  It stalls the event loop
 * for one round trip to the relay per client, which a production server
 * would avoid with a non-blocking connect and a write watcher.
 */
static int
relay_client_dial(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd, saved;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int
relay_client_dial_host(const char *host, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[NET_ERR_LEN];

	/* Prefer IPv4 for "localhost", where a relay most often listens. */
	if (net_resolve(host, port, AF_INET, &ss, &len, err, sizeof(err)) ==
	    -1) {
		fprintf(stderr, "%s\n", err);
		errno = EHOSTUNREACH;
		return -1;
	}
	return relay_client_dial(&ss, len);
}

/* Both sockets were handed to the pump; its last call closes them. */
static void
relay_client_pump_done(struct pump *pump, int dir, enum pump_end end, int err)
{
	(void)end;
	(void)err;
	if (dir != -1)
		return;
	close(pump->dir[0].src);
	close(pump->dir[0].dst);
	free(pump);
}

/* One [NEW]: dial the relay, then the local server, and join the two. */
static void
relay_client_bridge(struct relay_client *rc, unsigned sport)
{
	char addr[NET_ADDR_LEN];
	struct pump *pump;
	int relay, local = -1;

	/* The original dialled in this order; keep it. */
	relay = relay_client_dial_host(rc->host, sport);
	if (relay != -1)
		local = relay_client_dial(&rc->local, rc->locallen);
	pump = calloc(1, sizeof(*pump));
	if (relay == -1 || local == -1 || pump == NULL) {
		printf("[RS] Error creating client. Skipping (%s)\n",
		    strerror(errno));
		/*
		 * Unlike the original, close the relay side: left open, the
		 * relay would pair a client with a connection nobody serves.
		 */
		if (relay != -1)
			close(relay);
		if (local != -1)
			close(local);
		free(pump);
		return;
	}
	printf("[RS] New connection from client %s\n",
	    net_peer_str(relay, addr, sizeof(addr)));
	(void)net_set_nonblock(relay, 1);
	(void)net_set_nonblock(local, 1);
	pump_start(pump, rc->loop, &rc->pool, relay, local,
	    relay_client_pump_done, rc);
}

static void
relay_client_stop(struct relay_client *rc)
{
	ev_io_stop(rc->loop, &rc->ctl_io);
	close(rc->ctl);
	rc->ctl = -1;
	ev_break(rc->loop, EVBREAK_ALL);
}

static void
relay_client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay_client *rc = w->data;
	struct proto_msg msg;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(rc->ctl, rc->buf + rc->len, sizeof(rc->buf) - rc->len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		printf("[RS] Error reading from connection %s\n",
		    n == 0 ? "EOF" : strerror(errno));
		relay_client_stop(rc);
		return;
	}
	rc->len += (size_t)n;

	/* A read may hold part of a line, or (in theory) several lines. */
	while ((n = proto_parse(&msg, rc->buf, rc->len)) > 0) {
		if (msg.type != PROTO_NEW)
			break;
		relay_client_bridge(rc, msg.port);
		rc->len -= (size_t)n;
		memmove(rc->buf, rc->buf + n, rc->len);
	}
	if (n != 0) {
		const char *lf = memchr(rc->buf, '\n', rc->len);

		/* Like the original: anything but [NEW] ends the session. */
		printf("[RS] Error. Msg not understood %.*s\n",
		    (int)(lf != NULL ? lf - rc->buf : (ssize_t)rc->len),
		    rc->buf);
		relay_client_stop(rc);
	}
}

int
relay_client_start(struct relay_client *rc, struct ev_loop *loop,
    const char *host, unsigned port, int local_fd)
{
	char addr[NET_ADDR_LEN];

	memset(rc, 0, sizeof(*rc));
	rc->loop = loop;
	snprintf(rc->host, sizeof(rc->host), "%s", host);
	rc->locallen = sizeof(rc->local);
	if (getsockname(local_fd, (struct sockaddr *)&rc->local,
		&rc->locallen) == -1) {
		perror("getsockname");
		return -1;
	}
	rc->ctl = relay_client_dial_host(host, port);
	if (rc->ctl == -1) {
		printf("Error connecting to relayServer %s:%u: %s\n", host,
		    port, strerror(errno));
		return -1;
	}
	printf("Connected to relayServer %s\n",
	    net_peer_str(rc->ctl, addr, sizeof(addr)));
	(void)net_set_nonblock(rc->ctl, 1);
	pipe_pool_init(&rc->pool, 16, 0);
	ev_io_init(&rc->ctl_io, relay_client_read_cb, rc->ctl, EV_READ);
	rc->ctl_io.data = rc;
	ev_io_start(loop, &rc->ctl_io);
	return 0;
}

int
relay_client_main(int argc, char **argv,
    void (*accept_cb)(struct ev_loop *, ev_io *, int))
{
	char host[RELAY_HOST_MAX], addr[NET_ADDR_LEN], err[NET_ERR_LEN];
	struct relay_client rc;
	struct ev_loop *loop;
	ev_io accept_io;
	unsigned port;
	int lfd;

	relay_client_flags(argc, argv, host, sizeof(host), &port);
	/* Lines must reach a log file as they happen, not at exit. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A client may vanish while we write to it: get EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);

	/* Only the relay client connects here, so loopback is enough. */
	lfd = net_listen("127.0.0.1", 0, 128, err, sizeof(err));
	if (lfd == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("Listening on: %s\n", net_local_str(lfd, addr, sizeof(addr)));

	loop = ev_default_loop(0);
	ev_io_init(&accept_io, accept_cb, lfd, EV_READ);
	ev_io_start(loop, &accept_io);
	if (relay_client_start(&rc, loop, host, port, lfd) == -1)
		return 1;
	ev_run(loop, 0);
	/* Only the end of the control connection gets us here. */
	return 1;
}
