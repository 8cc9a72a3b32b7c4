/*
 * standalone.c - "relayshim -relay HOST:PORT -to HOST:PORT": the
 * procedure the original README recommends, for servers the preload
 * library cannot reach (static binaries such as Go programs, io_uring
 * accept, setuid servers).  It registers with the relay and, for each
 * client, connects to the local server and relays both ways with the
 * same pump (and the same half-close rules) as relayd.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "flags.h"
#include "helper.h"
#include "linger.h"
#include "log.h"
#include "net.h"
#include "proxyproto.h"
#include "pump.h"

/* One client: relay connection, then the local one, then the pump. */
struct fwd {
	int relay_fd;
	int local_fd;
	ev_io io;
	int has_from;
	struct sockaddr_storage from;
	struct pump pump;
};

static struct {
	struct ev_loop *loop;
	struct rclient rc;
	struct pipe_pool pipes;
	struct linger_set lingers;
	struct sockaddr_storage to;
	socklen_t to_len;
	char to_str[300];
	char addr_file[512];
	int proxy_version; /* 0: none */
	unsigned live;
} sa;

/*
 * The one teardown path.  With <linger>, a socket that still has bytes
 * to deliver goes to the linger set instead of being closed (reset), as
 * in relayd: the local server's answer must not be cut short because
 * its client was still uploading when it closed.
 */
static void
fwd_free(struct fwd *f, int linger)
{
	int fds[2] = {f->relay_fd, f->local_fd};

	ev_io_stop(sa.loop, &f->io);
	pump_stop(&f->pump);
	for (int i = 0; i < 2; i++) {
		if (fds[i] == -1)
			continue;
		if (linger)
			linger_close(&sa.lingers, fds[i], f->pump.dir[i].eof,
			    NULL, 0, i == 0 ? "relay socket" : "local socket");
		else
			close(fds[i]);
	}
	sa.live--;
	free(f);
}

static void
fwd_pump_cb(struct pump *p, int dir, enum pump_end end, int err)
{
	struct fwd *f = p->data;

	if (dir != -1)
		return;
	if (end == PUMP_END_ERROR)
		log_debug("session aborted: %s", strerror(err));
	fwd_free(f, 1);
}

static void
fwd_connected_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fwd *f = w->data;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)revents;
	ev_io_stop(loop, w);
	if (getsockopt(f->local_fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0 && sa.proxy_version != 0) {
		struct sockaddr_storage dst;
		socklen_t dl = sizeof(dst);
		char hdr[PROXY_V1_MAX];
		int n, have_dst;

		/* The address the client reached: the relay's public port.
		 * The relay connection may still be in its handshake (its
		 * [DATA] line rode a Fast Open SYN), when getpeername()
		 * fails: the relay's address is known all the same. */
		have_dst =
		    getpeername(f->relay_fd, (struct sockaddr *)&dst, &dl) == 0;
		if (!have_dst && sa.rc.relay_len != 0) {
			dst = sa.rc.relay;
			have_dst = 1;
		}
		if (have_dst && sa.rc.public_port != 0) {
			if (dst.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&dst)->sin6_port =
				    htons((uint16_t)sa.rc.public_port);
			else
				((struct sockaddr_in *)&dst)->sin_port =
				    htons((uint16_t)sa.rc.public_port);
		}
		n = proxy_header(hdr, sizeof(hdr), sa.proxy_version,
		    f->has_from ? (struct sockaddr *)&f->from : NULL,
		    have_dst ? (struct sockaddr *)&dst : NULL);
		if (n == -1 ||
		    send(f->local_fd, hdr, (size_t)n,
			MSG_NOSIGNAL | MSG_DONTWAIT) != n)
			err = errno ? errno : EPIPE;
	}
	if (err != 0) {
		log_warnx("cannot connect to %s: %s", sa.to_str, strerror(err));
		fwd_free(f, 0);
		return;
	}
	net_tune(f->local_fd);
	pump_start(&f->pump, loop, &sa.pipes, f->relay_fd, f->local_fd,
	    fwd_pump_cb, f);
}

static void
sa_data(struct rclient *rc, int fd, const struct sockaddr_storage *from)
{
	struct fwd *f = calloc(1, sizeof(*f));
	int one = 1;

	(void)rc;
	if (f == NULL) {
		close(fd);
		return;
	}
	sa.live++;
	f->relay_fd = fd;
	if (from != NULL) {
		f->has_from = 1;
		f->from = *from;
	}
	f->local_fd = net_connect_nb(&sa.to, sa.to_len, 0);
	ev_io_init(&f->io, fwd_connected_cb, f->local_fd, EV_WRITE);
	f->io.data = f;
	if (f->local_fd == -1) {
		log_warn("cannot connect to %s", sa.to_str);
		fwd_free(f, 0);
		return;
	}
	/* Both ends are ours: urgent data goes through, in order. */
	(void)setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	(void)setsockopt(f->local_fd, SOL_SOCKET, SO_OOBINLINE, &one,
	    sizeof(one));
	ev_io_start(sa.loop, &f->io);
}

static void
sa_ready(struct rclient *rc, unsigned public_port)
{
	static int said;
	char pub[300];
	FILE *f;

	if (public_port == 0) {
		if (!said)
			fprintf(stderr,
			    "relayshim: %s -> %s (public port in the relay's "
			    "log: it speaks only the original protocol)\n",
			    sa.to_str, rc->host);
		said = 1;
		return;
	}
	snprintf(pub, sizeof(pub), strchr(rc->host, ':') ? "[%s]:%u" : "%s:%u",
	    rc->host, public_port);
	if (!said)
		fprintf(stderr, "relayshim: %s -> %s\n", sa.to_str, pub);
	said = 1;
	if (sa.addr_file[0] != '\0' && (f = fopen(sa.addr_file, "we"))) {
		fprintf(f, "%s\n", pub);
		fclose(f);
	}
}

static void
sa_failed(struct rclient *rc, int err, const char *why)
{
	fprintf(stderr, "relayshim: cannot register with relay %s:%u: %s\n",
	    rc->host, rc->port, why);
	exit(err == EACCES ? 3 : 1);
}

static void
sa_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void
sa_usage(FILE *f)
{
	fprintf(f,
	    "Usage: relayshim -relay HOST:PORT -to HOST:PORT [flags]\n"
	    "Register with a relayd and forward each client to a local "
	    "server.\n\n"
	    "  -relay HOST:PORT     the relay's control address (required)\n"
	    "  -to HOST:PORT        the local server (required)\n"
	    "  -public-port N       ask the relay for this public port\n"
	    "  -secret-file FILE    prove this shared secret to the relay\n"
	    "  -proxy-protocol V    send a PROXY protocol header, V = 1 or 2\n"
	    "  -addr-file FILE      write the public address to FILE\n"
	    "  -heartbeat SEC       ping the relay this often, 0: never "
	    "(default 10)\n"
	    "  -original            speak only the original protocol\n"
	    "  -nofastopen          no TCP Fast Open towards the relay\n"
	    "  -v                   log every connection\n"
	    "  -version             print the version\n\n"
	    "Inside a server, use the preload library instead; see "
	    "librelayshim(7).\n");
}

int
standalone_main(int argc, char **argv)
{
	static const struct rclient_ops ops = {sa_ready, sa_failed, sa_data};
	char relay[300] = "", to[300] = "", secret[512] = "", host[256];
	char err[NET_ERR_LEN];
	unsigned port, heartbeat = 10, proxy = 0;
	ev_signal s_term, s_int;
	int original = 0, nofastopen = 0, verbose = 0, help = 0, version = 0;
	int unknown;
	const struct flag flags[] = {
	    {"relay", FLAG_STR, relay, sizeof(relay), "HOST:PORT", NULL},
	    {"to", FLAG_STR, to, sizeof(to), "HOST:PORT", NULL},
	    {"public-port", FLAG_UINT, &sa.rc.want_port, 65535, "N", NULL},
	    {"secret-file", FLAG_STR, secret, sizeof(secret), "FILE", NULL},
	    {"proxy-protocol", FLAG_UINT, &proxy, 2, "V", NULL},
	    {"addr-file", FLAG_STR, sa.addr_file, sizeof(sa.addr_file), "FILE",
		NULL},
	    {"heartbeat", FLAG_UINT, &heartbeat, 3600, "SEC", NULL},
	    {"original", FLAG_BOOL, &original, 0, NULL, NULL},
	    {"nofastopen", FLAG_BOOL, &nofastopen, 0, NULL, NULL},
	    {"v", FLAG_BOOL, &verbose, 0, NULL, NULL},
	    {"version", FLAG_BOOL, &version, 0, NULL, NULL},
	    {"h", FLAG_BOOL, &help, 0, NULL, NULL},
	    {"help", FLAG_BOOL, &help, 0, NULL, NULL},
	};

	if (flags_parse(flags, sizeof(flags) / sizeof(flags[0]), NULL, argc,
		argv, err, sizeof(err), &unknown) == -1) {
		fprintf(stderr, "relayshim: %s\n", err);
		if (unknown)
			sa_usage(stderr);
		return 2;
	}
	if (help) {
		sa_usage(stdout);
		return 0;
	}
	if (version) {
		printf("relayshim %s\n", RELAY_VERSION);
		return 0;
	}
	if (proxy == 1 || proxy == 2) {
		sa.proxy_version = (int)proxy;
	} else if (proxy != 0) {
		fprintf(stderr, "relayshim: -proxy-protocol is 1 or 2\n");
		return 2;
	}
	if (relay[0] == '\0' || to[0] == '\0') {
		sa_usage(stderr);
		return 2;
	}
	log_init("relayshim", 0, 1);
	if (verbose)
		log_set_level(LOG_LVL_DEBUG);
	if (net_parse_hostport(to, host, sizeof(host), &port) == -1 ||
	    net_resolve(host, port, AF_UNSPEC, &sa.to, &sa.to_len, err,
		sizeof(err)) == -1) {
		fprintf(stderr, "relayshim: bad -to %s\n", to);
		return 2;
	}
	snprintf(sa.to_str, sizeof(sa.to_str), "%s", to);
	if (net_parse_hostport(relay, sa.rc.host, sizeof(sa.rc.host),
		&sa.rc.port) == -1) {
		fprintf(stderr, "relayshim: bad -relay %s\n", relay);
		return 2;
	}
	if (secret[0] != '\0' &&
	    auth_load_secret(secret, sa.rc.secret, sizeof(sa.rc.secret),
		&sa.rc.secret_len, err, sizeof(err)) == -1) {
		fprintf(stderr, "relayshim: %s\n", err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sa.loop = ev_default_loop(EVFLAG_AUTO);
	pipe_pool_init(&sa.pipes, 16, 0);
	linger_set_init(&sa.lingers, sa.loop);
	sa.rc.loop = sa.loop;
	sa.rc.ops = &ops;
	sa.rc.ext = !original;
	sa.rc.fastopen = !nofastopen;
	sa.rc.ka = heartbeat;
	sa.rc.dial_family = AF_UNSPEC;
	if (rclient_start(&sa.rc, err, sizeof(err)) == -1) {
		fprintf(stderr, "relayshim: %s\n", err);
		return 1;
	}
	ev_signal_init(&s_term, sa_signal_cb, SIGTERM);
	ev_signal_init(&s_int, sa_signal_cb, SIGINT);
	ev_signal_start(sa.loop, &s_term);
	ev_signal_start(sa.loop, &s_int);
	ev_run(sa.loop, 0);
	rclient_stop(&sa.rc);
	linger_set_clear(&sa.lingers);
	pipe_pool_free(&sa.pipes);
	return 0;
}
