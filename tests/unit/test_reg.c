/*
 * test_reg.c - relayd's registration limits (reg_limits_admit): at most
 * conf.max_regs registrations in all and conf.max_regs_ip per peer
 * address, whatever its port.
 *
 * Admitted slots are given back by reg_limits_release (reg_close calls
 * it), so each test uses addresses of its own and sets the global limit
 * relative to the count it finds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "relayd.h"

/* main.c is not linked into unit tests; these stand in for its globals. */
struct relayd_conf conf;
struct relayd_stats stats;

static struct sockaddr_storage
addr(const char *host, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(host, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, host, &sin6->sin6_addr),
		    1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, host, &sin->sin_addr), 1);
	}
	return ss;
}

static int
admit(const char *host, unsigned port)
{
	struct sockaddr_storage ss = addr(host, port);

	return reg_limits_admit(&ss);
}

static int
setup(void **state)
{
	(void)state;
	conf.max_regs = 1000;
	conf.max_regs_ip = 3;
	return 0;
}

/* The limit is per address: other ports of it count, other hosts not. */
static void
test_per_ip(void **state)
{
	unsigned before = atomic_load(&stats.regs);

	(void)state;
	assert_int_equal(admit("10.1.0.1", 1000), 0);
	assert_int_equal(admit("10.1.0.1", 1001), 0);
	assert_int_equal(admit("10.1.0.1", 1000), 0);
	assert_int_equal(admit("10.1.0.1", 1002), -1);
	assert_int_equal(admit("10.1.0.1", 1003), -1);
	assert_int_equal(admit("10.1.0.2", 1000), 0);
	assert_int_equal(admit("10.1.1.1", 1000), 0);
	/* A refusal is not counted. */
	assert_int_equal(atomic_load(&stats.regs), before + 5);
}

static void
test_per_ip_v6(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(admit("2001:db8::1", 4000 + (unsigned)i), 0);
	assert_int_equal(admit("2001:db8::1", 5000), -1);
	assert_int_equal(admit("2001:db8::2", 5000), 0);
	/* Same low bits, other family: another peer. */
	assert_int_equal(admit("::1", 1), 0);
}

static void
test_per_ip_one(void **state)
{
	(void)state;
	conf.max_regs_ip = 1;
	assert_int_equal(admit("10.2.0.1", 1), 0);
	assert_int_equal(admit("10.2.0.1", 2), -1);
	assert_int_equal(admit("10.2.0.2", 1), 0);
	/* Raising the limit lets the same peer in again. */
	conf.max_regs_ip = 2;
	assert_int_equal(admit("10.2.0.1", 3), 0);
	assert_int_equal(admit("10.2.0.1", 4), -1);
}

/* The global limit holds for fresh addresses under their own limit. */
static void
test_global(void **state)
{
	unsigned before = atomic_load(&stats.regs);

	(void)state;
	conf.max_regs = before + 2;
	assert_int_equal(admit("10.3.0.1", 1), 0);
	assert_int_equal(admit("10.3.0.2", 1), 0);
	assert_int_equal(admit("10.3.0.3", 1), -1);
	assert_int_equal(admit("10.3.0.1", 2), -1);
	assert_int_equal(atomic_load(&stats.regs), before + 2);
	conf.max_regs = before + 3;
	assert_int_equal(admit("10.3.0.3", 1), 0);
	assert_int_equal(admit("10.3.0.4", 1), -1);
}

/* A released slot is admitted again, for that address alone; and the
 * global count goes down with it. */
static void
test_release(void **state)
{
	struct sockaddr_storage a = addr("10.5.0.1", 7),
				b = addr("10.5.0.2", 7);
	unsigned before = atomic_load(&stats.regs);

	(void)state;
	conf.max_regs_ip = 2;
	assert_int_equal(reg_limits_admit(&a), 0);
	assert_int_equal(admit("10.5.0.1", 8), 0);
	assert_int_equal(admit("10.5.0.1", 9), -1);
	assert_int_equal(reg_limits_admit(&b), 0);
	/* Any port of the address releases its slot. */
	reg_limits_release(&a);
	assert_int_equal(atomic_load(&stats.regs), before + 2);
	assert_int_equal(admit("10.5.0.1", 10), 0);
	assert_int_equal(admit("10.5.0.1", 11), -1);
	assert_int_equal(admit("10.5.0.2", 8), 0);
	assert_int_equal(admit("10.5.0.2", 9), -1);
	/* Released to zero, then admitted afresh: the entry was reused. */
	reg_limits_release(&b);
	reg_limits_release(&b);
	assert_int_equal(admit("10.5.0.2", 10), 0);
	assert_int_equal(admit("10.5.0.2", 11), 0);
	assert_int_equal(admit("10.5.0.2", 12), -1);
	/* The global limit counts releases too. */
	conf.max_regs = atomic_load(&stats.regs) + 1;
	assert_int_equal(admit("10.5.0.3", 1), 0);
	assert_int_equal(admit("10.5.0.4", 1), -1);
	reg_limits_release(&a);
	assert_int_equal(admit("10.5.0.4", 1), 0);
	conf.max_regs = 1000;
}

/* Many peers: each keeps its own count. */
static void
test_many_peers(void **state)
{
	char host[32];

	(void)state;
	conf.max_regs_ip = 2;
	for (unsigned i = 0; i < 300; i++) {
		snprintf(host, sizeof(host), "10.4.%u.%u", i / 256, i % 256);
		assert_int_equal(admit(host, 1), 0);
	}
	for (unsigned i = 0; i < 300; i++) {
		snprintf(host, sizeof(host), "10.4.%u.%u", i / 256, i % 256);
		assert_int_equal(admit(host, 2), 0);
		assert_int_equal(admit(host, 3), -1);
	}
}

/* -max-regs-per-ip 0 refuses every address, and remembers none of them:
 * each would otherwise stay counted at zero, a table without end. */
static void
test_zero_per_ip(void **state)
{
	size_t before = reg_limits_addresses();
	char host[32];

	(void)state;
	conf.max_regs_ip = 0;
	for (unsigned i = 0; i < 300; i++) {
		snprintf(host, sizeof(host), "10.5.%u.%u", i / 256, i % 256);
		assert_int_equal(admit(host, 1), -1);
	}
	assert_int_equal(reg_limits_addresses(), before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_per_ip, setup),
	    cmocka_unit_test_setup(test_per_ip_v6, setup),
	    cmocka_unit_test_setup(test_per_ip_one, setup),
	    cmocka_unit_test_setup(test_global, setup),
	    cmocka_unit_test_setup(test_release, setup),
	    cmocka_unit_test_setup(test_many_peers, setup),
	    cmocka_unit_test_setup(test_zero_per_ip, setup),
	};

	return cmocka_run_group_tests_name("reg", tests, NULL, NULL);
}
