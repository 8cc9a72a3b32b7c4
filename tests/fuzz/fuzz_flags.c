/*
 * fuzz_flags.c - the Go-style command-line parser (common/flags.c) on
 * arbitrary argument vectors: the input is split at NUL bytes into argv.
 * Whatever it is given, the parser must not overrun a buffer, must leave
 * every string flag NUL-terminated within its buffer, keep numbers in
 * their ranges, and explain every refusal.  The same bytes also go
 * through flags_port_listed, the RELAY_PORTS parser of the shim.
 */
#include <string.h>

#include "flags.h"
#include "fuzz.h"

#define FUZZ_MAXARGS 64

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char prog[] = "prog";
	char *copy = malloc(size + 1), *argv[FUZZ_MAXARGS + 1];
	char str[8], err[128];
	unsigned port = 0, small = 0;
	double secs = 0;
	int on = 0, unknown = -1, argc = 0;
	const struct flag tbl[] = {
	    {"port", FLAG_UINT, &port, 65535, "N", "a port"},
	    {"small", FLAG_UINT, &small, 2, "N", "0 to 2"},
	    {"timeout", FLAG_DOUBLE, &secs, 0, "SEC", "seconds"},
	    {"name", FLAG_STR, str, sizeof(str), "S", "short string"},
	    {"v", FLAG_BOOL, &on, 0, NULL, "a switch"},
	};
	size_t i, start = 0;
	int r;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = prog;
	for (i = 0; i <= size && argc < FUZZ_MAXARGS; i++) {
		if (i == size || copy[i] == '\0') {
			argv[argc++] = copy + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	memset(str, 'x', sizeof(str));
	str[sizeof(str) - 1] = '\0';
	err[0] = '\0';
	r = flags_parse(tbl, sizeof(tbl) / sizeof(tbl[0]), &tbl[0], argc, argv,
	    err, sizeof(err), &unknown);
	FUZZ_CHECK(r == 0 || r == -1);
	FUZZ_CHECK(unknown == 0 || unknown == 1);
	FUZZ_CHECK(r == -1 || unknown == 0);
	FUZZ_CHECK(r == 0 || err[0] != '\0');
	FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	FUZZ_CHECK(memchr(str, '\0', sizeof(str)) != NULL);
	FUZZ_CHECK(port <= 65535 && small <= 2);
	FUZZ_CHECK(secs == 0 || (secs > 0 && secs <= 86400));
	FUZZ_CHECK(on == 0 || on == 1);
	/* The same bytes as a RELAY_PORTS list: a port it lists is one it
	 * spells, and the answer never depends on anything past the NUL. */
	for (unsigned q = 0; q < 70000; q += 997) {
		int in = flags_port_listed(copy, q);

		FUZZ_CHECK(in == 0 || in == 1);
		if (in && copy[0] != '\0') {
			char digits[16];

			snprintf(digits, sizeof(digits), "%u", q);
			FUZZ_CHECK(strstr(copy, digits) != NULL);
		}
	}
	FUZZ_CHECK(flags_port_listed("", 1) == 1);
	free(copy);
	return 0;
}
