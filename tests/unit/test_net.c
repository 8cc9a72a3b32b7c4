/*
 * test_net.c - address resolution (net_resolve, net_listen): literal
 * addresses take a path of their own past getaddrinfo(), and must come
 * out exactly as getaddrinfo() would give them; everything else still
 * goes through the resolver.  No case may need DNS: only literals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "relayd.h"

/* Not linked from main.c into unit tests. */
struct relayd_conf conf;
struct relayd_stats stats;

struct resolve_case {
	const char *host;
	unsigned port;
	int family;	  /* AF_UNSPEC: resolution must fail */
	const char *addr; /* inet_ntop of the result */
};

static const struct resolve_case resolve_cases[] = {
    {"127.0.0.1", 80, AF_INET, "127.0.0.1"},
    {"127.0.0.1", 65535, AF_INET, "127.0.0.1"},
    {"127.0.0.1", 0, AF_INET, "127.0.0.1"},
    {"::1", 8080, AF_INET6, "::1"},
    {"::ffff:127.0.0.1", 443, AF_INET6, "::ffff:127.0.0.1"},
    {"0.0.0.0", 1, AF_INET, "0.0.0.0"},
    /* Forms only the resolver knows still work. */
    {"127.1", 80, AF_INET, "127.0.0.1"},
    /* Ports past 65535 are refused, not wrapped. */
    {"127.0.0.1", 65536, AF_UNSPEC, NULL},
    {"::1", 65616, AF_UNSPEC, NULL},
};

static void
test_resolve(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(resolve_cases) / sizeof(resolve_cases[0]);
	     i++) {
		const struct resolve_case *c = &resolve_cases[i];
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char err[NET_ERR_LEN], buf[INET6_ADDRSTRLEN];
		unsigned port;
		int r;

		memset(&ss, 0xa5, sizeof(ss));
		r = net_resolve(c->host, c->port, AF_UNSPEC, &ss, &len, err,
		    sizeof(err));
		if (c->family == AF_UNSPEC) {
			if (r != -1)
				fail_msg("%s port %u resolved", c->host,
				    c->port);
			assert_true(err[0] != '\0');
			continue;
		}
		if (r != 0)
			fail_msg("%s port %u: %s", c->host, c->port, err);
		assert_int_equal(ss.ss_family, c->family);
		if (c->family == AF_INET) {
			const struct sockaddr_in *sin = (void *)&ss;

			assert_int_equal(len, sizeof(*sin));
			port = ntohs(sin->sin_port);
			inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
			/* The padding getaddrinfo() zeroes is zero here. */
			for (size_t k = 0; k < sizeof(sin->sin_zero); k++)
				assert_int_equal(sin->sin_zero[k], 0);
		} else {
			const struct sockaddr_in6 *sin6 = (void *)&ss;

			assert_int_equal(len, sizeof(*sin6));
			port = ntohs(sin6->sin6_port);
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
			assert_int_equal(sin6->sin6_flowinfo, 0);
			assert_int_equal(sin6->sin6_scope_id, 0);
		}
		assert_int_equal(port, c->port);
		assert_string_equal(buf, c->addr);
	}
}

/* A literal listen address binds exactly that address and port. */
static void
test_listen_literal(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char err[NET_ERR_LEN], buf[INET_ADDRSTRLEN];
	int fd, fd2;

	(void)state;
	fd = net_listen("127.0.0.1", 0, 4, err, sizeof(err));
	if (fd == -1)
		fail_msg("listen on 127.0.0.1: %s", err);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(sin.sin_family, AF_INET);
	inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1");
	assert_int_equal(net_local_port(fd), ntohs(sin.sin_port));
	assert_true(net_local_port(fd) != 0);

	/* The port is taken: the error names the address and the cause. */
	fd2 = net_listen("127.0.0.1", net_local_port(fd), 4, err, sizeof(err));
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err, "127.0.0.1:"));
	assert_non_null(strstr(err, strerror(EADDRINUSE)));
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_listen_literal),
	};

	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
