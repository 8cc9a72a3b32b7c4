/*
 * fuzz_proto.c - proto_parse on arbitrary bytes.
 *
 * Beyond not crashing, the parser must agree with itself: the result
 * depends only on the bytes up to the first LF, a line that parses asks
 * for more when cut short, and proto_format of what was parsed parses
 * back to the same fields and formats to the same bytes again.
 */
#include <string.h>
#include <sys/types.h>

#include "fuzz.h"
#include "proto.h"

/* A copy of exactly <n> bytes, so ASan catches reads beyond <n>. */
static ssize_t
parse_exact(struct proto_msg *m, const uint8_t *data, size_t n)
{
	char *buf = malloc(n > 0 ? n : 1);
	ssize_t r;

	FUZZ_CHECK(buf != NULL);
	memcpy(buf, data, n);
	r = proto_parse(m, buf, n);
	free(buf);
	return r;
}

static void
addr_str(const struct proto_msg *m, char *buf, size_t len)
{
	FUZZ_CHECK(
	    proto_addr_format(buf, len, (const struct sockaddr *)&m->from) > 0);
}

/* The fields proto_format carries for <a>'s type must match in <b>. */
static void
check_carried(const struct proto_msg *a, const struct proto_msg *b)
{
	char sa[PROTO_TEXT_MAX], sb[PROTO_TEXT_MAX];

	FUZZ_CHECK(a->type == b->type);
	switch (a->type) {
	case PROTO_NEW:
		FUZZ_CHECK(a->port == b->port);
		FUZZ_CHECK(a->has_from == b->has_from);
		if (a->has_from) {
			/* v4-mapped prints as v4: compare as printed. */
			addr_str(a, sa, sizeof(sa));
			addr_str(b, sb, sizeof(sb));
			FUZZ_CHECK(strcmp(sa, sb) == 0);
		}
		FUZZ_CHECK(a->has_id == b->has_id);
		FUZZ_CHECK(!a->has_id || a->id == b->id);
		break;
	case PROTO_OK:
		FUZZ_CHECK(a->sport == b->sport);
		/* FALLTHROUGH */
	case PROTO_HELLO:
		FUZZ_CHECK(a->version == b->version);
		FUZZ_CHECK(a->port == b->port);
		FUZZ_CHECK(a->ka == b->ka);
		FUZZ_CHECK(a->pool == b->pool);
		FUZZ_CHECK(a->ext == b->ext);
		FUZZ_CHECK(strcmp(a->reg, b->reg) == 0);
		break;
	case PROTO_ERR:
		FUZZ_CHECK(strcmp(a->text, b->text) == 0);
		break;
	case PROTO_CHALLENGE:
	case PROTO_AUTH:
		FUZZ_CHECK(strcmp(a->hex, b->hex) == 0);
		break;
	case PROTO_DATA:
		FUZZ_CHECK(strcmp(a->reg, b->reg) == 0);
		FUZZ_CHECK(strcmp(a->hex, b->hex) == 0);
		FUZZ_CHECK(a->has_id == b->has_id);
		FUZZ_CHECK(!a->has_id || a->id == b->id);
		break;
	case PROTO_PING:
	case PROTO_PONG:
		break;
	default:
		FUZZ_CHECK(!"parsed an unknown type");
	}
}

static void
check_roundtrip(const struct proto_msg *m)
{
	char out[PROTO_LINE_MAX + 1], again[PROTO_LINE_MAX + 1];
	struct proto_msg m2;
	int n, n2;

	/* Every parsed value is bounded, so its line always fits. */
	n = proto_format(out, sizeof(out), m);
	FUZZ_CHECK(n > 0 && n <= PROTO_LINE_MAX);
	FUZZ_CHECK(strlen(out) == (size_t)n && out[n - 1] == '\n');
	if (m->type == PROTO_NEW && !m->has_id && !m->has_from) {
		char orig[32];

		snprintf(orig, sizeof(orig), "[NEW]%u\n", m->port);
		FUZZ_CHECK(strcmp(out, orig) == 0);
	}
	FUZZ_CHECK(parse_exact(&m2, (const uint8_t *)out, (size_t)n) == n);
	check_carried(m, &m2);
	n2 = proto_format(again, sizeof(again), &m2);
	FUZZ_CHECK(n2 == n && memcmp(out, again, (size_t)n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t limit = size < PROTO_LINE_MAX ? size : PROTO_LINE_MAX;
	const uint8_t *lf = memchr(data, '\n', limit);
	struct proto_msg m, m2;
	ssize_t r;

	r = proto_parse(&m, (const char *)data, size);
	FUZZ_CHECK(r >= -PROTO_E_VALUE && r <= (ssize_t)limit);
	if (lf == NULL) {
		FUZZ_CHECK(r == (size < PROTO_LINE_MAX ? 0 : -PROTO_E_TOOLONG));
		return 0;
	}
	/* Bytes after the LF never change the verdict on the line. */
	FUZZ_CHECK(parse_exact(&m2, data, (size_t)(lf - data) + 1) == r);
	if (r < 0)
		return 0;
	FUZZ_CHECK(r == lf - data + 1);
	FUZZ_CHECK(memcmp(&m, &m2, sizeof(m)) == 0);
	/* Cut before its LF, a good line asks for more. */
	FUZZ_CHECK(parse_exact(&m2, data, (size_t)r - 1) == 0);
	check_roundtrip(&m);
	return 0;
}
