/*
 * orig_helper.c - a test peer that behaves like the original relay's
 * server-side helper (clientutils.ProcessMessages) and, with -echo, like
 * its example echoServer.  See original-protocol.md section 5.
 *
 *   orig_helper -host H -port P -to LOCALHOST:LOCALPORT
 *   orig_helper -host H -port P -echo
 *
 * It dials the relay's control port, sends nothing, and for each line it
 * reads: dials the relay at H:<port from the line> first, then the local
 * server, and copies both ways, each direction ending with shutdown
 * (SHUT_WR) on its destination (Go's CloseWrite).  The messages on stdout
 * are the original's, so tests can compare them.
 *
 * Faithful on purpose, bugs included:
 *  - one new reader per line: each round reads until the buffer holds a
 *    LF and throws away whatever came after it, so two [NEW] lines that
 *    arrive in one read yield one data connection (the reason relayd keeps
 *    a single [NEW] outstanding for the original protocol);
 *  - a line that is not [NEW] ends message processing for good, and so
 *    does a read error or EOF; the process keeps running regardless;
 *  - a failed local dial leaves the relay-side connection open.
 * The one liberty: both sockets of a relayed pair are closed once both
 * directions have ended (the original leaked them).  Nothing more can
 * cross the wire by then, and the fd-count tests need a helper that
 * survives a thousand sessions.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#define OH_BUFIO_SIZE 4096	/* Go's bufio default */
#define OH_ECHO_BUF (32 * 1024) /* the echo handler's read size */
#define OH_COPY_BUF (32 * 1024) /* io.Copy's buffer */
#define OH_STACK (256 * 1024)

static char oh_host[256] = "localhost";
static char oh_port[16] = "8080";
static char oh_local[300];

/* A relayed pair; the last of its two copiers closes both sockets. */
struct oh_pair {
	int relay_fd;
	int local_fd;
	atomic_int running;
};

struct oh_copy {
	struct oh_pair *pair;
	int src;
	int dst;
};

/* Go's error text for a failed read or write: lower-case strerror. */
static void
oh_errtext(char *buf, size_t len, int err)
{
	snprintf(buf, len, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
}

static const char *
oh_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", ip, port);
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

static const char *
oh_peer(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1)
		return "?";
	return oh_addr((struct sockaddr *)&ss, buf, len);
}

/* Strip the brackets of "[v6]" so getaddrinfo takes it. */
static void
oh_unbracket(char *host)
{
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
}

/* Like net.Dial("tcp", host:port): try each address in turn.  Returns a
 * blocking connected socket or -1 with <why> filled. */
static int
oh_dial(const char *host, const char *port, char *why, size_t whylen)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, r, err = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		snprintf(why, whylen, "dial tcp %s:%s: %s", host, port,
		    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		char e[128];

		oh_errtext(e, sizeof(e), err);
		snprintf(why, whylen, "dial tcp %s:%s: connect: %s", host, port,
		    e);
	}
	return fd;
}

static int
oh_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
oh_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, OH_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return r == 0 ? 0 : -1;
}

/* io.Copy(dst, src) then dst.CloseWrite(); errors end it like EOF. */
static void *
oh_copy_main(void *arg)
{
	struct oh_copy *cp = arg;
	struct oh_pair *pair = cp->pair;
	char *buf = malloc(OH_COPY_BUF);

	while (buf != NULL) {
		ssize_t n = read(cp->src, buf, OH_COPY_BUF);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (oh_write_all(cp->dst, buf, (size_t)n) == -1)
			break;
	}
	free(buf);
	(void)shutdown(cp->dst, SHUT_WR);
	free(cp);
	if (atomic_fetch_sub(&pair->running, 1) == 1) {
		close(pair->relay_fd);
		close(pair->local_fd);
		free(pair);
	}
	return NULL;
}

static void
oh_relay_pair(int relay_fd, int local_fd)
{
	struct oh_pair *pair = calloc(1, sizeof(*pair));
	struct oh_copy *up = calloc(1, sizeof(*up));
	struct oh_copy *down = calloc(1, sizeof(*down));

	if (pair == NULL || up == NULL || down == NULL) {
		fprintf(stderr, "orig_helper: out of memory\n");
		exit(1);
	}
	pair->relay_fd = relay_fd;
	pair->local_fd = local_fd;
	atomic_init(&pair->running, 2);
	up->pair = down->pair = pair;
	up->src = relay_fd;
	up->dst = local_fd;
	down->src = local_fd;
	down->dst = relay_fd;
	if (oh_thread(oh_copy_main, up) == -1 ||
	    oh_thread(oh_copy_main, down) == -1) {
		fprintf(stderr, "orig_helper: cannot start a thread\n");
		exit(1);
	}
}

/* fmt.Sscanf(msg, "[NEW]%d", &port): leading blanks, a sign, digits. */
static long
oh_scan_port(const char *msg)
{
	const char *p = msg + 5;
	long v = 0;
	int neg = 0, digits = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	while (*p >= '0' && *p <= '9' && v < 1000000000L) {
		v = v * 10 + (*p++ - '0');
		digits++;
	}
	if (digits == 0)
		return 0;
	return neg ? -v : v;
}

static int
oh_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

/*
 * One round of the original loop: bufio.NewReader(conn).ReadString('\n').
 * A fresh reader fills a fresh 4 KiB buffer, so everything read past the
 * first LF is lost when the reader goes.  Returns the line length (LF
 * excluded), or -1 on EOF/error with <why> set as Go would print it.
 */
static ssize_t
oh_read_line(int fd, char *line, size_t cap, char *why, size_t whylen)
{
	char buf[OH_BUFIO_SIZE];
	size_t out = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		char *lf;
		size_t take;

		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0) {
			snprintf(why, whylen, "EOF");
			return -1;
		}
		if (n == -1) {
			char e[128], a[80], b[80];
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);

			oh_errtext(e, sizeof(e), errno);
			if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
				ss.ss_family = AF_UNSPEC;
			snprintf(why, whylen, "read tcp %s->%s: read: %s",
			    oh_addr((struct sockaddr *)&ss, a, sizeof(a)),
			    oh_peer(fd, b, sizeof(b)), e);
			return -1;
		}
		lf = memchr(buf, '\n', (size_t)n);
		take = lf != NULL ? (size_t)(lf - buf) : (size_t)n;
		if (out + take > cap - 1)
			take = cap - 1 - out;
		memcpy(line + out, buf, take);
		out += take;
		if (lf != NULL)
			break;
		/* No LF yet: a bufio buffer keeps collecting fragments. */
	}
	line[out] = '\0';
	return (ssize_t)out;
}

/* clientutils.ProcessMessages(relayConn, relayHost, localAddr). */
static void
oh_process_messages(int ctl_fd)
{
	char raw[65536], why[512];

	for (;;) {
		char *msg = raw, *end, portstr[16], lhost[300], a[80];
		const char *lport;
		int relay_fd, local_fd;
		long port;

		if (oh_read_line(ctl_fd, raw, sizeof(raw), why, sizeof(why)) ==
		    -1) {
			printf("[RS] Error reading from connection %s\n", why);
			return;
		}
		/* strings.TrimSpace */
		while (oh_is_space(*msg))
			msg++;
		end = msg + strlen(msg);
		while (end > msg && oh_is_space(end[-1]))
			*--end = '\0';
		if (strncmp(msg, "[NEW]", 5) != 0) {
			printf("[RS] Error. Msg not understood %s\n", msg);
			return;
		}
		port = oh_scan_port(msg);
		snprintf(portstr, sizeof(portstr), "%ld", port);
		if (port < 1 || port > 65535) {
			printf("[RS] Error creating client. Skipping\n");
			continue;
		}
		/* The relay first, as the original: then the local server. */
		relay_fd = oh_dial(oh_host, portstr, why, sizeof(why));
		if (relay_fd == -1) {
			printf("[RS] Error creating client. Skipping\n");
			continue;
		}
		snprintf(lhost, sizeof(lhost), "%s", oh_local);
		lport = strrchr(lhost, ':');
		if (lport == NULL) {
			printf("[RS] Error creating client. Skipping\n");
			continue;
		}
		lhost[lport - lhost] = '\0';
		lport++;
		oh_unbracket(lhost);
		local_fd = oh_dial(lhost, lport, why, sizeof(why));
		if (local_fd == -1) {
			/* The original leaves relay_fd open here. */
			printf("[RS] Error creating client. Skipping\n");
			continue;
		}
		printf("[RS] New connection from client %s\n",
		    oh_peer(relay_fd, a, sizeof(a)));
		oh_relay_pair(relay_fd, local_fd);
	}
}

/* The echo handler: read up to 32 KiB, write it back; full close at EOF. */
static void *
oh_echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(OH_ECHO_BUF);

	while (buf != NULL) {
		ssize_t n = read(fd, buf, OH_ECHO_BUF);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0) {
			fprintf(stderr, "Error reading EOF\n");
			break;
		}
		if (n == -1) {
			fprintf(stderr, "Error reading %s\n", strerror(errno));
			break;
		}
		fprintf(stderr, "Server Read: %zd bytes\n", n);
		if (oh_write_all(fd, buf, (size_t)n) == -1)
			break;
		fprintf(stderr, "Server Wrote: %zd bytes\n", n);
	}
	free(buf);
	close(fd);
	return NULL;
}

static void *
oh_echo_accept(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char a[80];
		int fd =
		    accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "orig_helper: echo accept: %s\n",
			    strerror(errno));
			/* Out of fds: let some sessions end first. */
			sleep(1);
			continue;
		}
		printf("Client connected %s\n",
		    oh_addr((struct sockaddr *)&ss, a, sizeof(a)));
		if (oh_thread(oh_echo_conn, (void *)(intptr_t)fd) == -1)
			close(fd);
	}
	return NULL;
}

/* Listen on localhost:0 as echoServer does; fills oh_local. */
static int
oh_echo_start(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char a[80];
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 4096) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1) {
		close(fd);
		return -1;
	}
	oh_addr((struct sockaddr *)&sin, a, sizeof(a));
	snprintf(oh_local, sizeof(oh_local), "%s", a);
	printf("Listening on: %s\n", a);
	if (oh_thread(oh_echo_accept, (void *)(intptr_t)fd) == -1)
		return -1;
	return 0;
}

static void
oh_usage(void)
{
	fprintf(stderr,
	    "usage: orig_helper [-host H] [-port P] "
	    "(-to HOST:PORT | -echo)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	char why[512], a[80];
	int echo = 0, ctl_fd;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		const char *o =
		    argv[i] + (argv[i][0] == '-' && argv[i][1] == '-');

		if (strcmp(o, "-echo") == 0) {
			echo = 1;
		} else if (i + 1 < argc && strcmp(o, "-host") == 0) {
			snprintf(oh_host, sizeof(oh_host), "%s", argv[++i]);
		} else if (i + 1 < argc && strcmp(o, "-port") == 0) {
			snprintf(oh_port, sizeof(oh_port), "%s", argv[++i]);
		} else if (i + 1 < argc && strcmp(o, "-to") == 0) {
			snprintf(oh_local, sizeof(oh_local), "%s", argv[++i]);
		} else {
			oh_usage();
		}
	}
	oh_unbracket(oh_host);
	if (echo == (oh_local[0] != '\0'))
		oh_usage();
	if (echo && oh_echo_start() == -1) {
		fprintf(stderr, "orig_helper: echo listener: %s\n",
		    strerror(errno));
		return 1;
	}
	ctl_fd = oh_dial(oh_host, oh_port, why, sizeof(why));
	if (ctl_fd == -1) {
		printf("%s\n", why);
		return 1;
	}
	printf("Connected to relayServer %s\n", oh_peer(ctl_fd, a, sizeof(a)));
	oh_process_messages(ctl_fd);
	/* Like the examples: processing is over, the process lives on. */
	for (;;)
		pause();
}
