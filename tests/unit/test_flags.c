/*
 * test_flags.c - the RELAY_PORTS list (flags_port_listed): which ports a
 * list holds, with blanks and malformed entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flags.h"
#include "relayd.h"

/* Not linked from main.c into unit tests. */
struct relayd_conf conf;
struct relayd_stats stats;

static void
test_ports_plain(void **state)
{
	(void)state;
	assert_int_equal(flags_port_listed("", 1), 1);
	assert_int_equal(flags_port_listed("", 65535), 1);
	assert_int_equal(flags_port_listed("80", 80), 1);
	assert_int_equal(flags_port_listed("80", 8080), 0);
	assert_int_equal(flags_port_listed("80,443", 443), 1);
	assert_int_equal(flags_port_listed("80,443", 44), 0);
	assert_int_equal(flags_port_listed("0", 0), 1);
}

/* Blanks around entries are allowed; a bad entry spoils only itself. */
static void
test_ports_lenient(void **state)
{
	(void)state;
	assert_int_equal(flags_port_listed("80, 443", 443), 1);
	assert_int_equal(flags_port_listed(" 80 ,443 ", 80), 1);
	assert_int_equal(flags_port_listed("443,80 ", 80), 1);
	assert_int_equal(flags_port_listed("x,443", 443), 1);
	assert_int_equal(flags_port_listed("8o,443", 443), 1);
	assert_int_equal(flags_port_listed("8o,443", 8), 0);
	assert_int_equal(flags_port_listed(",,443,", 443), 1);
	assert_int_equal(flags_port_listed("80 443", 80), 0);
	assert_int_equal(flags_port_listed("80 443", 443), 0);
}

/* Out of range never matches, however it would wrap. */
static void
test_ports_range(void **state)
{
	(void)state;
	assert_int_equal(flags_port_listed("65536", 0), 0);
	assert_int_equal(flags_port_listed("65536", 65536), 0);
	assert_int_equal(flags_port_listed("65535", 65535), 1);
	assert_int_equal(flags_port_listed("100080", 80), 0);
	assert_int_equal(flags_port_listed("0000080", 80), 0);
	assert_int_equal(flags_port_listed("00080", 80), 1);
	assert_int_equal(flags_port_listed("-80", 80), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ports_plain),
	    cmocka_unit_test(test_ports_lenient),
	    cmocka_unit_test(test_ports_range),
	};

	return cmocka_run_group_tests_name("flags", tests, NULL, NULL);
}
