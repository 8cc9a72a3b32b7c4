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

struct port_case {
	const char *list;
	unsigned port;
	int listed;
};

static const struct port_case port_cases[] = {
    /* Plain lists; an empty one holds every port. */
    {"", 1, 1},
    {"", 65535, 1},
    {"80", 80, 1},
    {"80", 8080, 0},
    {"80,443", 443, 1},
    {"80,443", 44, 0},
    {"0", 0, 1},
    /* Blanks around entries are allowed; a bad entry spoils only itself. */
    {"80, 443", 443, 1},
    {" 80 ,443 ", 80, 1},
    {"443,80 ", 80, 1},
    {"x,443", 443, 1},
    {"8o,443", 443, 1},
    {"8o,443", 8, 0},
    {",,443,", 443, 1},
    {"80 443", 80, 0},
    {"80 443", 443, 0},
    /* Out of range never matches, however it would wrap. */
    {"65536", 0, 0},
    {"65536", 65536, 0},
    {"65535", 65535, 1},
    {"100080", 80, 0},
    {"0000080", 80, 0},
    {"00080", 80, 1},
    {"-80", 80, 0},
};

static void
test_ports(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(port_cases) / sizeof(port_cases[0]);
	     i++) {
		const struct port_case *c = &port_cases[i];

		if (flags_port_listed(c->list, c->port) != c->listed)
			fail_msg("\"%s\" holds %u: want %d", c->list, c->port,
			    c->listed);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ports),
	};

	return cmocka_run_group_tests_name("flags", tests, NULL, NULL);
}
