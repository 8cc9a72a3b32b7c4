/*
 * test_flags.c - the RELAY_PORTS list (flags_port_listed): which ports a
 * list holds, with blanks and malformed entries; the range of seconds
 * flags.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

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

/* Seconds: above 0 and at most a day; 0 only where it means "off". */
static void
test_seconds(void **state)
{
	double wait = -1, idle = -1;
	const struct flag tbl[] = {
	    {"wait", FLAG_DOUBLE, &wait, 0, "SEC", "seconds"},
	    {"idle", FLAG_DOUBLE, &idle, 1, "SEC", "seconds, 0: never"},
	};
	static const struct {
		const char *arg;
		int ok;
		double want;
	} cases[] = {
	    {"-wait=2.5", 0, 2.5},
	    {"-wait=0", -1, 0},
	    {"-wait=-1", -1, 0},
	    {"-wait=86401", -1, 0},
	    {"-idle=0", 0, 0},
	    {"-idle=-0.5", -1, 0},
	    {"-idle=nan", -1, 0},
	    {"-idle=30", 0, 30},
	};
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char prog[] = "prog", arg[32];
		char *argv[] = {prog, arg, NULL};
		double *v = cases[i].arg[1] == 'w' ? &wait : &idle;
		int unknown = 0;

		snprintf(arg, sizeof(arg), "%s", cases[i].arg);
		*v = -1;
		if (flags_parse(tbl, 2, NULL, 2, argv, err, sizeof(err),
			&unknown) != cases[i].ok)
			fail_msg("%s: want %d (%s)", cases[i].arg, cases[i].ok,
			    err);
		if (cases[i].ok == 0 && *v != cases[i].want)
			fail_msg("%s: got %g", cases[i].arg, *v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_seconds),
	};

	return cmocka_run_group_tests_name("flags", tests, NULL, NULL);
}
