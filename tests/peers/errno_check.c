/*
 * errno_check.c - run under LD_PRELOAD=librelayshim.so (shim active,
 * RELAY_PORTS naming a port nothing here binds): every hooked call on a
 * path the shim passes through must leave errno as the caller set it
 * when it succeeds, and report the real error when it fails.
 *
 * Prints "ok NAME" or "FAIL NAME ..." per check; exits with the number
 * of failures.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define EC_MAGIC 1234

static int ec_failures;

/* <r> is the call's result, <want> the errno a failure must carry (0:
 * the call must succeed and keep EC_MAGIC). */
static void
ec_expect(const char *name, int r, int want)
{
	int e = errno;

	if (want == 0 && r != -1 && e == EC_MAGIC) {
		printf("ok %s\n", name);
	} else if (want != 0 && r == -1 && e == want) {
		printf("ok %s (fails with %s)\n", name, strerror(e));
	} else {
		printf("FAIL %s: returned %d, errno %d (%s), wanted %s\n", name,
		    r, e, strerror(e), want ? strerror(want) : "1234 kept");
		ec_failures++;
	}
}

#define EC(name, want, call) \
	do { \
		int ec_r_; \
		errno = EC_MAGIC; \
		ec_r_ = (call); \
		ec_expect(name, ec_r_, want); \
	} while (0)

static void
ec_unix(void)
{
	struct sockaddr_un sun, got;
	socklen_t len = sizeof(got);
	int l, c, a, sp[2];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/errno_check.%d",
	    (int)getpid());
	unlink(sun.sun_path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	EC("unix bind", 0, bind(l, (struct sockaddr *)&sun, sizeof(sun)));
	EC("unix listen", 0, listen(l, 4));
	EC("unix getsockname", 0,
	    getsockname(l, (struct sockaddr *)&got, &len));
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	EC("unix connect", 0, connect(c, (struct sockaddr *)&sun, sizeof(sun)));
	len = sizeof(got);
	errno = EC_MAGIC;
	a = accept(l, (struct sockaddr *)&got, &len);
	ec_expect("unix accept", a, 0);
	len = sizeof(got);
	EC("unix getpeername", 0,
	    getpeername(a, (struct sockaddr *)&got, &len));
	close(a);
	close(c);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	(void)connect(c, (struct sockaddr *)&sun, sizeof(sun));
	errno = EC_MAGIC;
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ec_expect("unix accept4 (NULL address)", a, 0);
	close(a);
	close(c);
	close(l);
	unlink(sun.sun_path);

	socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	len = sizeof(got);
	EC("socketpair getpeername", 0,
	    getpeername(sp[0], (struct sockaddr *)&got, &len));
	close(sp[0]);
	close(sp[1]);
}

static void
ec_inet(int family, int type, const char *what)
{
	struct sockaddr_storage ss, got;
	socklen_t len, glen = sizeof(got);
	char name[96];
	int l, c, a, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	l = socket(family, type, 0);
	if (l == -1)
		return;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	snprintf(name, sizeof(name), "%s bind", what);
	errno = EC_MAGIC;
	if (bind(l, (struct sockaddr *)&ss, len) == -1 &&
	    errno == EADDRNOTAVAIL) {
		printf("ok %s: skipped, no such loopback\n", what);
		close(l);
		return;
	}
	ec_expect(name, 0, 0);
	snprintf(name, sizeof(name), "%s getsockname", what);
	EC(name, 0, getsockname(l, (struct sockaddr *)&got, &glen));
	if (type != SOCK_STREAM) {
		close(l);
		return;
	}
	snprintf(name, sizeof(name), "%s listen", what);
	EC(name, 0, listen(l, 4));
	c = socket(family, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&got, glen) == -1 ||
	    write(c, "x", 1) != 1) {
		printf("FAIL %s: cannot connect\n", what);
		ec_failures++;
		close(c);
		close(l);
		return;
	}
	glen = sizeof(got);
	snprintf(name, sizeof(name), "%s accept", what);
	errno = EC_MAGIC;
	a = accept(l, (struct sockaddr *)&got, &glen);
	ec_expect(name, a, 0);
	glen = sizeof(got);
	snprintf(name, sizeof(name), "%s getpeername", what);
	EC(name, 0, getpeername(a, (struct sockaddr *)&got, &glen));
	close(a);
	close(c);
	close(l);
}

static void
ec_failing(void)
{
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);
	int p[2], s;

	if (pipe(p) == -1)
		return;
	EC("getsockname on a pipe", ENOTSOCK,
	    getsockname(p[0], (struct sockaddr *)&got, &len));
	len = sizeof(got);
	EC("getpeername on a pipe", ENOTSOCK,
	    getpeername(p[0], (struct sockaddr *)&got, &len));
	EC("listen on a pipe", ENOTSOCK, listen(p[0], 1));
	EC("accept on a pipe", ENOTSOCK, accept(p[0], NULL, NULL));
	close(p[0]);
	close(p[1]);
	len = sizeof(got);
	EC("getsockname on a bad fd", EBADF,
	    getsockname(999, (struct sockaddr *)&got, &len));
	s = socket(AF_INET, SOCK_STREAM, 0);
	len = sizeof(got);
	EC("getpeername unconnected", ENOTCONN,
	    getpeername(s, (struct sockaddr *)&got, &len));
	EC("accept on a socket not listening", EINVAL, accept(s, NULL, NULL));
	EC("bind with a short address", EINVAL,
	    bind(s, (struct sockaddr *)&got, 2));
	close(s);
}

int
main(void)
{
	ec_unix();
	ec_inet(AF_INET, SOCK_STREAM, "inet stream (port not relayed)");
	ec_inet(AF_INET6, SOCK_STREAM, "inet6 stream (port not relayed)");
	ec_inet(AF_INET, SOCK_DGRAM, "inet dgram");
	ec_inet(AF_INET6, SOCK_DGRAM, "inet6 dgram");
	ec_failing();
	printf("%d failures\n", ec_failures);
	return ec_failures;
}
