/*
 * fuzz.h - the one entry point every fuzz target defines.  The same
 * object links either with libFuzzer (make fuzz) or with replay.c, which
 * runs a committed corpus through it in make check.
 */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Returns 0; a broken invariant aborts, which both drivers report. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant; on failure print it and abort, so both drivers stop. */
#define FUZZ_CHECK(c) \
	do { \
		if (!(c)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			    __LINE__, #c); \
			abort(); \
		} \
	} while (0)

#endif
