/*
 * test_proto.c - the protocol line parser and formatter (common/proto.c),
 * the host:port splitter (common/net.c) and the MACs (common/auth.c).
 *
 * Vectors are tables: every good line must parse to the listed fields,
 * also when it arrives one byte at a time (each strict prefix asks for
 * more), and must survive a format/parse round trip; every bad line must
 * fail with the listed error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "net.h"
#include "proto.h"
#include "proxyproto.h"
#include "relayd.h"

/* relayd's objects are linked in and refer to main.c's globals. */
struct relayd_conf conf;
struct relayd_stats stats;

#define MAC64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX65 MAC64 "0"

struct good_vec {
	const char *line;
	struct proto_msg want; /* .from is compared through from_str */
	const char *from_str;
};

struct bad_vec {
	const char *line;
	size_t len; /* 0: strlen(line) */
	int err;    /* PROTO_E_* */
};

static const struct good_vec good[] = {
    /* The original protocol, byte for byte. */
    {"[NEW]40123\n", {.type = PROTO_NEW, .port = 40123}, NULL},
    {"[NEW]1\n", {.type = PROTO_NEW, .port = 1}, NULL},
    {"[NEW]65535\n", {.type = PROTO_NEW, .port = 65535}, NULL},
    {"[NEW]8080\r\n", {.type = PROTO_NEW, .port = 8080}, NULL},
    {"[NEW]5000 id=1f\n",
	{.type = PROTO_NEW, .port = 5000, .id = 0x1f, .has_id = 1}, NULL},
    {"[NEW]5000 id=0\n", {.type = PROTO_NEW, .port = 5000, .has_id = 1}, NULL},
    {"[NEW]5000 id=ffffffffffffffff from=127.0.0.1:55555\n",
	{.type = PROTO_NEW,
	    .port = 5000,
	    .id = UINT64_MAX,
	    .has_id = 1,
	    .has_from = 1},
	"127.0.0.1:55555"},
    {"[NEW]5000 id=ABCDEF from=[::1]:80\n",
	{.type = PROTO_NEW,
	    .port = 5000,
	    .id = 0xabcdef,
	    .has_id = 1,
	    .has_from = 1},
	"[::1]:80"},
    {"[NEW]7 from=[2001:db8::1]:65535 future=yes\r\n",
	{.type = PROTO_NEW, .port = 7, .has_from = 1}, "[2001:db8::1]:65535"},
    {"[NEW]7 from=10.0.0.1:0\n", {.type = PROTO_NEW, .port = 7, .has_from = 1},
	"10.0.0.1:0"},
    {"[NEW]9 x= y=1\n", {.type = PROTO_NEW, .port = 9}, NULL},
    /* The glued port is the one that counts (found by fuzz_proto). */
    {"[NEW]7 port=0\n", {.type = PROTO_NEW, .port = 7}, NULL},
    {"[NEW]7 port=9 sport=3\n", {.type = PROTO_NEW, .port = 7, .sport = 3},
	NULL},
    {"[HELLO] v=1\n", {.type = PROTO_HELLO, .version = 1}, NULL},
    {"[HELLO]\n", {.type = PROTO_HELLO}, NULL},
    {"[HELLO] v=1 port=8080 reg=00ff ka=30 pool=4 ext=addr,pipe,pool\n",
	{.type = PROTO_HELLO,
	    .version = 1,
	    .port = 8080,
	    .reg = "00ff",
	    .ka = 30,
	    .pool = 4,
	    .ext = PROTO_EXT_ADDR | PROTO_EXT_PIPE | PROTO_EXT_POOL},
	NULL},
    {"[HELLO] v=2 ext=pool,zstd,addr extra=1\n",
	{.type = PROTO_HELLO,
	    .version = 2,
	    .ext = PROTO_EXT_ADDR | PROTO_EXT_POOL},
	NULL},
    {"[HELLO] v=1 ext=\n", {.type = PROTO_HELLO, .version = 1}, NULL},
    {"[HELLO] v=65535 port=65535 ka=86400 pool=1024 reg=" MAC64 "\n",
	{.type = PROTO_HELLO,
	    .version = 65535,
	    .port = 65535,
	    .ka = 86400,
	    .pool = 1024,
	    .reg = MAC64},
	NULL},
    {"[HELLO] v=1 port=0 ka=0 pool=0\n", {.type = PROTO_HELLO, .version = 1},
	NULL},
    {"[OK] v=1 port=40123 sport=40124 reg=DEADbeef ka=15 pool=2 ext=addr\n",
	{.type = PROTO_OK,
	    .version = 1,
	    .port = 40123,
	    .sport = 40124,
	    .reg = "DEADbeef",
	    .ka = 15,
	    .pool = 2,
	    .ext = PROTO_EXT_ADDR},
	NULL},
    {"[ERR] too many registrations\n",
	{.type = PROTO_ERR, .text = "too many registrations"}, NULL},
    {"[ERR]\n", {.type = PROTO_ERR}, NULL},
    {"[ERR]  two spaces\r\n", {.type = PROTO_ERR, .text = " two spaces"}, NULL},
    {"[ERR] caf\xc3\xa9 [x]=y\n",
	{.type = PROTO_ERR, .text = "caf\xc3\xa9 [x]=y"}, NULL},
    {"[CHALLENGE] 0123456789abcdef0123456789abcdef\n",
	{.type = PROTO_CHALLENGE, .hex = "0123456789abcdef0123456789abcdef"},
	NULL},
    {"[CHALLENGE] a v=1\n", {.type = PROTO_CHALLENGE, .version = 1, .hex = "a"},
	NULL},
    {"[AUTH] " MAC64 "\n", {.type = PROTO_AUTH, .hex = MAC64}, NULL},
    {"[DATA] reg=abc id=2a mac=" MAC64 "\n",
	{.type = PROTO_DATA,
	    .reg = "abc",
	    .id = 0x2a,
	    .has_id = 1,
	    .hex = MAC64},
	NULL},
    {"[DATA]\n", {.type = PROTO_DATA}, NULL},
    {"[PING]\n", {.type = PROTO_PING}, NULL},
    {"[PING] seq=1\n", {.type = PROTO_PING}, NULL},
    {"[PONG]\r\n", {.type = PROTO_PONG}, NULL},
};

static const struct bad_vec bad[] = {
    /* [NEW] port: 1..65535, plain decimal. */
    {"[NEW]0\n", 0, PROTO_E_VALUE},
    {"[NEW]65536\n", 0, PROTO_E_VALUE},
    {"[NEW]4294967297\n", 0, PROTO_E_VALUE},
    {"[NEW]99999999999999999999\n", 0, PROTO_E_VALUE},
    {"[NEW]08080\n", 0, PROTO_E_VALUE},
    {"[NEW]00\n", 0, PROTO_E_VALUE},
    {"[NEW]+80\n", 0, PROTO_E_VALUE},
    {"[NEW]-80\n", 0, PROTO_E_VALUE},
    {"[NEW]\n", 0, PROTO_E_VALUE},
    {"[NEW] 80\n", 0, PROTO_E_VALUE},
    {"[NEW]0x50\n", 0, PROTO_E_VALUE},
    {"[NEW]80x\n", 0, PROTO_E_SYNTAX},
    {"[NEW]80 \n", 0, PROTO_E_SYNTAX},
    {"[NEW]80  id=1\n", 0, PROTO_E_SYNTAX},
    {"[NEW]80 id\n", 0, PROTO_E_SYNTAX},
    {"[NEW]80 =5\n", 0, PROTO_E_SYNTAX},
    {"[NEW]80 id=\n", 0, PROTO_E_VALUE},
    {"[NEW]80 id=xyz\n", 0, PROTO_E_VALUE},
    {"[NEW]80 id=-1\n", 0, PROTO_E_VALUE},
    {"[NEW]80 id=10000000000000000\n", 0, PROTO_E_VALUE},
    /* from=: a literal v4 address or bracketed v6, and a port. */
    {"[NEW]80 from=1.2.3.4\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=1.2.3:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=256.1.1.1:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=01.2.3.4:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=localhost:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=1.2.3.4:\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=1.2.3.4:65536\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=1.2.3.4:080\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=1.2.3.4:+80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=1.2.3.4:80:90\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=::1:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=[::1]80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=[::1]:\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=[::1:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=[]:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=[1.2.3.4]:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=[fe80::1%lo]:80\n", 0, PROTO_E_VALUE},
    {"[NEW]80 from=[::g]:80\n", 0, PROTO_E_VALUE},
    /* Control characters anywhere, and CR only right before the LF. */
    {"[NEW]8\x01"
     "0\n",
	0, PROTO_E_SYNTAX},
    {"[NEW]80\x7f\n", 0, PROTO_E_SYNTAX},
    {"[NEW]80\r\r\n", 0, PROTO_E_SYNTAX},
    {"[NEW]\r80\n", 0, PROTO_E_SYNTAX},
    {"[ERR] a\tb\n", 0, PROTO_E_SYNTAX},
    {"[ERR] a\x1b[0m\n", 0, PROTO_E_SYNTAX},
    {"[PING]\0\n", 8, PROTO_E_SYNTAX},
    {"\0[PING]\n", 8, PROTO_E_SYNTAX},
    {"\n", 0, PROTO_E_SYNTAX},
    {"\r\n", 0, PROTO_E_SYNTAX},
    {" [PING]\n", 0, PROTO_E_SYNTAX},
    {"NEW]80\n", 0, PROTO_E_SYNTAX},
    {"hello\n", 0, PROTO_E_SYNTAX},
    /* Tags are exact and upper case. */
    {"[new]80\n", 0, PROTO_E_TAG},
    {"[FOO] x=1\n", 0, PROTO_E_TAG},
    {"[NE\n", 0, PROTO_E_TAG},
    {"[]\n", 0, PROTO_E_TAG},
    {"[\n", 0, PROTO_E_TAG},
    {"[NEW\n", 0, PROTO_E_TAG},
    {"[ NEW]80\n", 0, PROTO_E_TAG},
    /* Field values. */
    {"[HELLO] v=65536\n", 0, PROTO_E_VALUE},
    {"[HELLO] v=-1\n", 0, PROTO_E_VALUE},
    {"[HELLO] v=+1\n", 0, PROTO_E_VALUE},
    {"[HELLO] v=01\n", 0, PROTO_E_VALUE},
    {"[HELLO] v=\n", 0, PROTO_E_VALUE},
    {"[HELLO] v=1.0\n", 0, PROTO_E_VALUE},
    {"[HELLO] port=65536\n", 0, PROTO_E_VALUE},
    {"[HELLO] ka=86401\n", 0, PROTO_E_VALUE},
    {"[HELLO] pool=1025\n", 0, PROTO_E_VALUE},
    {"[HELLO] reg=xyz\n", 0, PROTO_E_VALUE},
    {"[HELLO] reg=\n", 0, PROTO_E_VALUE},
    {"[HELLO] reg=" HEX65 "\n", 0, PROTO_E_VALUE},
    {"[HELLO]v=1\n", 0, PROTO_E_SYNTAX},
    {"[HELLO] v=1 \n", 0, PROTO_E_SYNTAX},
    {"[OK]x\n", 0, PROTO_E_SYNTAX},
    {"[OK] sport=99999\n", 0, PROTO_E_VALUE},
    {"[CHALLENGE]\n", 0, PROTO_E_SYNTAX},
    {"[CHALLENGE] \n", 0, PROTO_E_SYNTAX},
    {"[CHALLENGE]abc\n", 0, PROTO_E_SYNTAX},
    {"[CHALLENGE]  abc\n", 0, PROTO_E_VALUE},
    {"[CHALLENGE] xyz\n", 0, PROTO_E_VALUE},
    {"[CHALLENGE] abc x\n", 0, PROTO_E_SYNTAX},
    {"[AUTH] " HEX65 "\n", 0, PROTO_E_VALUE},
    {"[AUTH] 12g4\n", 0, PROTO_E_VALUE},
    {"[DATA] mac=zz\n", 0, PROTO_E_VALUE},
    {"[DATA] id=-1\n", 0, PROTO_E_VALUE},
    {"[DATA] reg=" HEX65 "\n", 0, PROTO_E_VALUE},
    {"[PING]x\n", 0, PROTO_E_SYNTAX},
    {"[PONG]=\n", 0, PROTO_E_SYNTAX},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *
addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (proto_addr_format(buf, len, (const struct sockaddr *)ss) == -1)
		snprintf(buf, len, "(unformattable)");
	return buf;
}

/* Every field must match; addresses are compared as printed. */
static void
expect_msg(const char *ctx, const struct proto_msg *want, const char *want_from,
    const struct proto_msg *got)
{
	char a[NET_ADDR_LEN];

	if (got->type != want->type || got->version != want->version ||
	    got->port != want->port || got->sport != want->sport ||
	    got->ka != want->ka || got->ext != want->ext ||
	    got->pool != want->pool || got->id != want->id ||
	    got->has_id != want->has_id || got->has_from != want->has_from ||
	    strcmp(got->reg, want->reg) != 0 ||
	    strcmp(got->hex, want->hex) != 0 ||
	    strcmp(got->text, want->text) != 0)
		fail_msg("%s: got type=%d v=%u port=%u sport=%u ka=%u ext=%#x "
			 "pool=%u id=%llx/%d from=%d reg='%s' hex='%s' "
			 "text='%s'",
		    ctx, (int)got->type, got->version, got->port, got->sport,
		    got->ka, got->ext, got->pool, (unsigned long long)got->id,
		    got->has_id, got->has_from, got->reg, got->hex, got->text);
	if (want->has_from) {
		addr_str(&got->from, a, sizeof(a));
		if (strcmp(a, want_from) != 0)
			fail_msg("%s: from=%s, want %s", ctx, a, want_from);
	}
}

static void
test_good_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		const struct good_vec *v = &good[i];
		size_t len = strlen(v->line);
		struct proto_msg m;
		ssize_t r;

		r = proto_parse(&m, v->line, len);
		if (r != (ssize_t)len)
			fail_msg("good[%zu] %s: returned %zd (%s), want %zu", i,
			    v->line, r, r < 0 ? proto_strerror((int)r) : "",
			    len);
		expect_msg(v->line, &v->want, v->from_str, &m);
	}
}

/* A line arriving in pieces: every strict prefix must ask for more. */
static void
test_good_vectors_split(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		const char *line = good[i].line;
		size_t len = strlen(line);

		for (size_t k = 0; k <= len; k++) {
			/* Its own allocation, so ASan sees reads past k. */
			char *buf = malloc(k > 0 ? k : 1);
			struct proto_msg m;
			ssize_t r;

			assert_non_null(buf);
			memcpy(buf, line, k);
			r = proto_parse(&m, buf, k);
			free(buf);
			if (k < len && r != 0)
				fail_msg("good[%zu] %s: prefix %zu returned "
					 "%zd",
				    i, line, k, r);
			if (k == len && r != (ssize_t)len)
				fail_msg("good[%zu] %s: returned %zd", i, line,
				    r);
		}
	}
}

static void
test_bad_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad); i++) {
		const struct bad_vec *v = &bad[i];
		size_t len = v->len ? v->len : strlen(v->line);
		struct proto_msg m;
		ssize_t r;

		for (size_t k = 0; k < len; k++) {
			char *buf = malloc(k > 0 ? k : 1);

			assert_non_null(buf);
			memcpy(buf, v->line, k);
			r = proto_parse(&m, buf, k);
			free(buf);
			if (r != 0)
				fail_msg("bad[%zu] %s: prefix %zu returned %zd",
				    i, v->line, k, r);
		}
		r = proto_parse(&m, v->line, len);
		if (r != -v->err)
			fail_msg("bad[%zu] '%s': returned %zd, want %d (%s)", i,
			    v->line, r, -v->err, proto_strerror(v->err));
	}
}

/* The limit counts the LF: 255 bytes and LF fit, one more does not. */
static void
test_line_max(void **state)
{
	char buf[PROTO_LINE_MAX + 64];
	struct proto_msg m;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "[ERR] ", 6);
	buf[PROTO_LINE_MAX - 1] = '\n';
	assert_int_equal(proto_parse(&m, buf, PROTO_LINE_MAX), PROTO_LINE_MAX);
	assert_int_equal(m.type, PROTO_ERR);
	/* The reason is cut, not the line refused. */
	assert_int_equal(strlen(m.text), PROTO_TEXT_MAX - 1);
	assert_int_equal(proto_parse(&m, buf, sizeof(buf)), PROTO_LINE_MAX);

	buf[PROTO_LINE_MAX - 1] = 'a';
	buf[PROTO_LINE_MAX] = '\n';
	assert_int_equal(proto_parse(&m, buf, PROTO_LINE_MAX - 1), 0);
	assert_int_equal(proto_parse(&m, buf, PROTO_LINE_MAX),
	    -PROTO_E_TOOLONG);
	assert_int_equal(proto_parse(&m, buf, PROTO_LINE_MAX + 1),
	    -PROTO_E_TOOLONG);
	assert_int_equal(proto_parse(&m, buf, sizeof(buf)), -PROTO_E_TOOLONG);

	/* Binary junk without a LF is refused once the limit is reached. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(proto_parse(&m, buf, PROTO_LINE_MAX - 1), 0);
	assert_int_equal(proto_parse(&m, buf, PROTO_LINE_MAX),
	    -PROTO_E_TOOLONG);
	assert_int_equal(proto_parse(&m, buf, 0), 0);
}

/* Only the first line is consumed; the rest waits for the next call. */
static void
test_pipelined(void **state)
{
	const char in[] = "[NEW]1\n[NEW]2 id=7\r\n[PING]\n[NEW]3";
	struct proto_msg m;
	size_t off = 0;
	ssize_t r;

	(void)state;
	r = proto_parse(&m, in + off, sizeof(in) - 1 - off);
	assert_int_equal(r, 7);
	assert_int_equal(m.port, 1);
	assert_false(m.has_id);
	off += (size_t)r;
	r = proto_parse(&m, in + off, sizeof(in) - 1 - off);
	assert_int_equal(r, 13);
	assert_int_equal(m.port, 2);
	assert_int_equal(m.id, 7);
	off += (size_t)r;
	r = proto_parse(&m, in + off, sizeof(in) - 1 - off);
	assert_int_equal(r, 7);
	assert_int_equal(m.type, PROTO_PING);
	off += (size_t)r;
	assert_int_equal(proto_parse(&m, in + off, sizeof(in) - 1 - off), 0);
}

/*
 * The fields proto_format writes for <in>'s type: the parser accepts any
 * known key on any line, but only these survive a format/parse trip.
 */
static void
carried(struct proto_msg *out, const struct proto_msg *in)
{
	memset(out, 0, sizeof(*out));
	out->type = in->type;
	switch (in->type) {
	case PROTO_NEW:
		out->port = in->port;
		out->has_from = in->has_from;
		out->from = in->from;
		/* FALLTHROUGH */
	case PROTO_DATA:
		out->has_id = in->has_id;
		out->id = in->has_id ? in->id : 0;
		if (in->type == PROTO_DATA) {
			memcpy(out->reg, in->reg, sizeof(out->reg));
			memcpy(out->hex, in->hex, sizeof(out->hex));
		}
		break;
	case PROTO_OK:
		out->sport = in->sport;
		/* FALLTHROUGH */
	case PROTO_HELLO:
		out->version = in->version;
		out->port = in->port;
		out->ka = in->ka;
		out->pool = in->pool;
		out->ext = in->ext;
		memcpy(out->reg, in->reg, sizeof(out->reg));
		break;
	case PROTO_ERR:
		memcpy(out->text, in->text, sizeof(out->text));
		break;
	case PROTO_CHALLENGE:
	case PROTO_AUTH:
		memcpy(out->hex, in->hex, sizeof(out->hex));
		break;
	default:
		break;
	}
}

/* Parse, format, parse again: the formatter's fields must survive. */
static void
test_roundtrip_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		const struct good_vec *v = &good[i];
		struct proto_msg m1, m2, want;
		char out[PROTO_LINE_MAX + 1];
		int n;

		assert_true(proto_parse(&m1, v->line, strlen(v->line)) > 0);
		n = proto_format(out, sizeof(out), &m1);
		if (n <= 0)
			fail_msg("good[%zu] %s: format returned %d", i, v->line,
			    n);
		assert_int_equal(strlen(out), (size_t)n);
		assert_int_equal(proto_parse(&m2, out, (size_t)n), n);
		carried(&want, &v->want);
		expect_msg(out, &want, v->from_str, &m2);
	}
}

static void
set_addr(struct sockaddr_storage *ss, int family, const char *host,
    unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, host, &sin->sin_addr), 1);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, host, &sin6->sin6_addr),
		    1);
	}
}

static void
test_format_new_original(void **state)
{
	struct proto_msg m = {.type = PROTO_NEW, .port = 40123};
	char out[64];

	(void)state;
	assert_int_equal(proto_format(out, sizeof(out), &m), 11);
	assert_string_equal(out, "[NEW]40123\n");
	/* Extension fields only when asked for, never for a legacy peer. */
	m.id = 0x2a;
	assert_int_equal(proto_format(out, sizeof(out), &m), 11);
	assert_string_equal(out, "[NEW]40123\n");
	m.has_id = 1;
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[NEW]40123 id=2a\n");
	m.has_from = 1;
	set_addr(&m.from, AF_INET6, "::ffff:192.0.2.7", 5555);
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[NEW]40123 id=2a from=192.0.2.7:5555\n");
}

static void
test_format_fields(void **state)
{
	struct proto_msg m;
	char out[PROTO_LINE_MAX + 1];

	(void)state;
	memset(&m, 0, sizeof(m));
	m.type = PROTO_HELLO;
	m.version = PROTO_VERSION;
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[HELLO] v=1\n");
	m.ext = PROTO_EXT_ADDR | PROTO_EXT_POOL;
	m.pool = 3;
	m.ka = 20;
	strcpy(m.reg, "ab12");
	m.port = 9000;
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out,
	    "[HELLO] v=1 port=9000 reg=ab12 ka=20 pool=3 ext=addr,pool\n");

	memset(&m, 0, sizeof(m));
	m.type = PROTO_OK;
	m.version = 1;
	m.port = 40000;
	m.sport = 40001;
	m.ext = PROTO_EXT_PIPE;
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[OK] v=1 port=40000 sport=40001 ext=pipe\n");

	memset(&m, 0, sizeof(m));
	m.type = PROTO_ERR;
	strcpy(m.text, "registration limit");
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[ERR] registration limit\n");

	memset(&m, 0, sizeof(m));
	m.type = PROTO_DATA;
	strcpy(m.reg, "ff");
	m.has_id = 1;
	m.id = 1;
	strcpy(m.hex, "00");
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[DATA] reg=ff id=1 mac=00\n");

	memset(&m, 0, sizeof(m));
	m.type = PROTO_PING;
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[PING]\n");
	m.type = PROTO_PONG;
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[PONG]\n");
	m.type = PROTO_CHALLENGE;
	strcpy(m.hex, "abcd");
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[CHALLENGE] abcd\n");
	m.type = PROTO_AUTH;
	proto_format(out, sizeof(out), &m);
	assert_string_equal(out, "[AUTH] abcd\n");

	m.type = (enum proto_type)0;
	assert_int_equal(proto_format(out, sizeof(out), &m), -1);
	m.type = (enum proto_type)99;
	assert_int_equal(proto_format(out, sizeof(out), &m), -1);
}

/* A line that does not fit is refused, never cut. */
static void
test_format_capacity(void **state)
{
	struct proto_msg m = {.type = PROTO_NEW, .port = 80};
	char out[16];

	(void)state;
	assert_int_equal(proto_format(out, 9, &m), 8);
	assert_string_equal(out, "[NEW]80\n");
	assert_int_equal(proto_format(out, 8, &m), -1);
	assert_int_equal(proto_format(out, 5, &m), -1);
	assert_int_equal(proto_format(out, 0, &m), -1);
}

/* Messages built in code survive format and parse, for every type. */
static void
test_roundtrip_built(void **state)
{
	struct proto_msg ms[8];
	const char *froms[8] = {NULL};
	char out[PROTO_LINE_MAX + 1];

	(void)state;
	memset(ms, 0, sizeof(ms));
	ms[0].type = PROTO_NEW;
	ms[0].port = 65535;
	ms[0].has_id = 1;
	ms[0].id = UINT64_MAX;
	ms[0].has_from = 1;
	set_addr(&ms[0].from, AF_INET6,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	froms[0] = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535";
	ms[1].type = PROTO_HELLO;
	ms[1].version = 65535;
	ms[1].port = 65535;
	ms[1].ka = 86400;
	ms[1].pool = 1024;
	ms[1].ext = PROTO_EXT_ADDR | PROTO_EXT_PIPE | PROTO_EXT_POOL;
	strcpy(ms[1].reg, MAC64);
	ms[2] = ms[1];
	ms[2].type = PROTO_OK;
	ms[2].sport = 1;
	ms[3].type = PROTO_ERR;
	memset(ms[3].text, 'x', sizeof(ms[3].text) - 1);
	ms[4].type = PROTO_CHALLENGE;
	strcpy(ms[4].hex, MAC64);
	ms[5].type = PROTO_AUTH;
	strcpy(ms[5].hex, "0");
	ms[6].type = PROTO_DATA;
	strcpy(ms[6].reg, MAC64);
	strcpy(ms[6].hex, MAC64);
	ms[6].has_id = 1;
	ms[6].id = 0x8000000000000000ull;
	ms[7].type = PROTO_PONG;

	for (size_t i = 0; i < NELEM(ms); i++) {
		struct proto_msg got;
		int n = proto_format(out, sizeof(out), &ms[i]);

		if (n <= 0 || n > PROTO_LINE_MAX)
			fail_msg("ms[%zu]: format returned %d", i, n);
		assert_int_equal(proto_parse(&got, out, (size_t)n), n);
		expect_msg(out, &ms[i], froms[i], &got);
	}
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(proto_strerror(-PROTO_E_TOOLONG), "line too long");
	assert_string_equal(proto_strerror(PROTO_E_SYNTAX), "malformed line");
	assert_string_equal(proto_strerror(-PROTO_E_TAG), "unknown message");
	assert_string_equal(proto_strerror(-PROTO_E_VALUE), "bad value");
	assert_string_equal(proto_strerror(0), "unknown error");
	assert_string_equal(proto_strerror(-1000), "unknown error");
}

static void
test_addr_parse(void **state)
{
	static const struct {
		const char *s;
		int family;
		const char *printed;
	} ok[] = {
	    {"127.0.0.1:80", AF_INET, "127.0.0.1:80"},
	    {"0.0.0.0:0", AF_INET, "0.0.0.0:0"},
	    {"255.255.255.255:65535", AF_INET, "255.255.255.255:65535"},
	    {"[::1]:443", AF_INET6, "[::1]:443"},
	    {"[::]:1", AF_INET6, "[::]:1"},
	    {"[2001:DB8:0:0:0:0:0:1]:8080", AF_INET6, "[2001:db8::1]:8080"},
	    {"[::ffff:10.1.2.3]:5", AF_INET6, "10.1.2.3:5"},
	};
	static const char *const ko[] = {
	    "",
	    ":",
	    "1.2.3.4",
	    "1.2.3.4:",
	    ":80",
	    "1.2.3:80",
	    "1.2.3.4.5:80",
	    "1.2.3.4:65536",
	    "1.2.3.4:-1",
	    "1.2.3.4:+1",
	    "1.2.3.4:01",
	    "1.2.3.4: 1",
	    "1.2.3.4:1 ",
	    " 1.2.3.4:1",
	    "::1:80",
	    "[::1]",
	    "[::1]:",
	    "[::1]x80",
	    "[::1",
	    "[]:1",
	    "[1.2.3.4]:1",
	    "[::1]:1]",
	    "[fe80::1%1]:1",
	    "host:80",
	    "[0000:0000:0000:0000:0000:0000:0000:0000:0]:1",
	    "[aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa]:1",
	};
	struct sockaddr_storage ss;
	char buf[NET_ADDR_LEN];

	(void)state;
	for (size_t i = 0; i < NELEM(ok); i++) {
		if (proto_addr_parse(&ss, ok[i].s, strlen(ok[i].s)) != 0)
			fail_msg("'%s' refused", ok[i].s);
		assert_int_equal(ss.ss_family, ok[i].family);
		assert_string_equal(addr_str(&ss, buf, sizeof(buf)),
		    ok[i].printed);
	}
	for (size_t i = 0; i < NELEM(ko); i++) {
		if (proto_addr_parse(&ss, ko[i], strlen(ko[i])) != -1)
			fail_msg("'%s' accepted", ko[i]);
	}
	/* The length bounds the input; no NUL is needed or looked for. */
	assert_int_equal(proto_addr_parse(&ss, "10.0.0.1:8080junk", 13), 0);
	assert_string_equal(addr_str(&ss, buf, sizeof(buf)), "10.0.0.1:8080");
	assert_int_equal(proto_addr_parse(&ss, "[::1]:80", 5), -1);
}

static void
test_addr_format(void **state)
{
	struct sockaddr_storage ss;
	char buf[NET_ADDR_LEN];

	(void)state;
	set_addr(&ss, AF_INET, "192.0.2.1", 1234);
	assert_int_equal(proto_addr_format(buf, sizeof(buf),
			     (struct sockaddr *)&ss),
	    14);
	assert_string_equal(buf, "192.0.2.1:1234");
	/* Too small: refused rather than cut. */
	assert_int_equal(proto_addr_format(buf, 14, (struct sockaddr *)&ss),
	    -1);
	assert_int_equal(proto_addr_format(buf, 15, (struct sockaddr *)&ss),
	    14);

	set_addr(&ss, AF_INET6, "::ffff:127.0.0.1", 80);
	proto_addr_format(buf, sizeof(buf), (struct sockaddr *)&ss);
	assert_string_equal(buf, "127.0.0.1:80");
	set_addr(&ss, AF_INET6, "::1", 80);
	proto_addr_format(buf, sizeof(buf), (struct sockaddr *)&ss);
	assert_string_equal(buf, "[::1]:80");
	/* v4-compatible (deprecated) is not v4-mapped: stays v6. */
	set_addr(&ss, AF_INET6, "::1.2.3.4", 80);
	proto_addr_format(buf, sizeof(buf), (struct sockaddr *)&ss);
	assert_string_equal(buf, "[::1.2.3.4]:80");
	set_addr(&ss, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    65535);
	assert_true(
	    proto_addr_format(buf, sizeof(buf), (struct sockaddr *)&ss) > 0);
	assert_string_equal(buf,
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(proto_addr_format(buf, sizeof(buf),
			     (struct sockaddr *)&ss),
	    1);
	assert_string_equal(buf, "?");
}

static void
test_hex(void **state)
{
	const uint8_t in[] = {0x00, 0xff, 0x1a, 0x80, 0x09};
	uint8_t out[8];
	char hex[2 * sizeof(in) + 1];

	(void)state;
	proto_hex_encode(hex, in, sizeof(in));
	assert_string_equal(hex, "00ff1a8009");
	proto_hex_encode(hex, in, 0);
	assert_string_equal(hex, "");

	assert_int_equal(proto_hex_decode(out, sizeof(out), "00FF1a8009"), 5);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(proto_hex_decode(out, sizeof(out), ""), 0);
	assert_int_equal(proto_hex_decode(out, sizeof(out), "abc"), -1);
	assert_int_equal(proto_hex_decode(out, sizeof(out), "0g"), -1);
	assert_int_equal(proto_hex_decode(out, sizeof(out), "g0"), -1);
	assert_int_equal(proto_hex_decode(out, sizeof(out), " 0"), -1);
	assert_int_equal(proto_hex_decode(out, sizeof(out), "0x"), -1);
	/* Exactly the capacity fits; one byte more does not. */
	assert_int_equal(proto_hex_decode(out, 2, "abcd"), 2);
	memset(out, 0x55, sizeof(out));
	assert_int_equal(proto_hex_decode(out, 2, "abcdef"), -1);
	assert_int_equal(out[2], 0x55);

	for (unsigned b = 0; b < 256; b++) {
		uint8_t one = (uint8_t)b, back;
		char h[3];

		proto_hex_encode(h, &one, 1);
		assert_int_equal(proto_hex_decode(&back, 1, h), 1);
		assert_int_equal(back, one);
	}
}

static void
test_net_parse_hostport(void **state)
{
	static const struct {
		const char *s;
		const char *host;
		unsigned port;
	} ok[] = {
	    {"127.0.0.1:8080", "127.0.0.1", 8080},
	    {"localhost:1", "localhost", 1},
	    {"relay.example:65535", "relay.example", 65535},
	    {"[::1]:80", "::1", 80},
	    {"[2001:db8::1]:0", "2001:db8::1", 0},
	    {":8000", "", 8000},
	};
	static const char *const ko[] = {
	    "",
	    "host",
	    "host:",
	    "host:65536",
	    "host:99999999999999999999",
	    "host:abc",
	    "host:80x",
	    "host:+80",
	    "host:-1",
	    "host: 80",
	    "host:-0",
	    "[::1]",
	    "[::1]80",
	    "[::1",
	    "[::1]:",
	    "[::1]:x",
	};
	char host[64];
	unsigned port;

	(void)state;
	for (size_t i = 0; i < NELEM(ok); i++) {
		port = 99999;
		if (net_parse_hostport(ok[i].s, host, sizeof(host), &port) != 0)
			fail_msg("'%s' refused", ok[i].s);
		assert_string_equal(host, ok[i].host);
		assert_int_equal(port, ok[i].port);
	}
	for (size_t i = 0; i < NELEM(ko); i++) {
		if (net_parse_hostport(ko[i], host, sizeof(host), &port) != -1)
			fail_msg("'%s' accepted", ko[i]);
	}
	/* The host must fit with its NUL. */
	assert_int_equal(net_parse_hostport("abcd:1", host, 5, &port), 0);
	assert_string_equal(host, "abcd");
	assert_int_equal(net_parse_hostport("abcde:1", host, 5, &port), -1);
	assert_int_equal(net_parse_hostport("[::1]:1", host, 3, &port), -1);
	assert_int_equal(net_parse_hostport("[::1]:1", host, 4, &port), 0);
}

static const unsigned char auth_secret[] = "correct horse";
#define AUTH_SECRET_LEN (sizeof(auth_secret) - 1)
#define NONCE "00112233445566778899aabbccddeeff"

/*
 * Known answers pin the construction (HMAC-SHA256 over "relayd-ctl:" and
 * the nonce, or "relayd-data:" key ":" id in hex), which the shim must
 * compute identically.  Computed independently with Python's hmac module.
 */
static void
test_auth_known_answer(void **state)
{
	char mac[AUTH_MAC_HEX + 1];

	(void)state;
	assert_int_equal(auth_mac_ctl(mac, auth_secret, AUTH_SECRET_LEN, NONCE),
	    0);
	assert_string_equal(mac,
	    "25af778009da7b04718edfe9d10805aa"
	    "04962540f5593214f82a139bae321e85");
	assert_int_equal(auth_mac_data(mac, auth_secret, AUTH_SECRET_LEN,
			     "0123abcd", 0x2a),
	    0);
	assert_string_equal(mac,
	    "eb9abfedebfb34854b8061b56a7b6a51"
	    "d09b1d76bedfe3aaf4ee6cd31be08f68");
}

static void
flip_digit(char *mac, size_t i)
{
	mac[i] = mac[i] == '0' ? '1' : '0';
}

/* The registration key's comparison: equal strings only, any length. */
static void
test_auth_equal(void **state)
{
	(void)state;
	assert_true(auth_equal("0123456789abcdef", "0123456789abcdef"));
	assert_false(auth_equal("0123456789abcdef", "0123456789abcdee"));
	assert_false(auth_equal("0123456789abcdef", "1123456789abcdef"));
	assert_false(auth_equal("0123456789abcdef", "0123456789abcde"));
	assert_false(auth_equal("0123456789abcdef", "0123456789abcdef0"));
	assert_false(auth_equal("0123456789abcdef", ""));
	assert_true(auth_equal("", ""));
}

static void
test_auth_verify_ctl(void **state)
{
	const unsigned char other[] = "correct horsf";
	char mac[AUTH_MAC_HEX + 2];

	(void)state;
	assert_int_equal(auth_mac_ctl(mac, auth_secret, AUTH_SECRET_LEN, NONCE),
	    0);
	assert_int_equal(strlen(mac), AUTH_MAC_HEX);
	assert_int_equal(auth_verify_ctl(auth_secret, AUTH_SECRET_LEN, NONCE,
			     mac),
	    0);
	for (size_t i = 0; i < AUTH_MAC_HEX; i++) {
		flip_digit(mac, i);
		if (auth_verify_ctl(auth_secret, AUTH_SECRET_LEN, NONCE, mac) !=
		    -1)
			fail_msg("digit %zu flipped: accepted", i);
		flip_digit(mac, i);
	}
	assert_int_equal(auth_verify_ctl(other, AUTH_SECRET_LEN, NONCE, mac),
	    -1);
	assert_int_equal(auth_verify_ctl(auth_secret, AUTH_SECRET_LEN - 1,
			     NONCE, mac),
	    -1);
	assert_int_equal(auth_verify_ctl(auth_secret, AUTH_SECRET_LEN,
			     "00112233445566778899aabbccddeef0", mac),
	    -1);
	/* Wrong lengths, whatever the prefix. */
	mac[AUTH_MAC_HEX - 1] = '\0';
	assert_int_equal(auth_verify_ctl(auth_secret, AUTH_SECRET_LEN, NONCE,
			     mac),
	    -1);
	assert_int_equal(auth_mac_ctl(mac, auth_secret, AUTH_SECRET_LEN, NONCE),
	    0);
	mac[AUTH_MAC_HEX] = '0';
	mac[AUTH_MAC_HEX + 1] = '\0';
	assert_int_equal(auth_verify_ctl(auth_secret, AUTH_SECRET_LEN, NONCE,
			     mac),
	    -1);
	assert_int_equal(auth_verify_ctl(auth_secret, AUTH_SECRET_LEN, NONCE,
			     ""),
	    -1);
}

static void
test_auth_verify_data(void **state)
{
	char mac[AUTH_MAC_HEX + 1];

	(void)state;
	assert_int_equal(auth_mac_data(mac, auth_secret, AUTH_SECRET_LEN,
			     "0123abcd", 7),
	    0);
	assert_int_equal(auth_verify_data(auth_secret, AUTH_SECRET_LEN,
			     "0123abcd", 7, mac),
	    0);
	/* A proof is for one client id and one registration only. */
	assert_int_equal(auth_verify_data(auth_secret, AUTH_SECRET_LEN,
			     "0123abcd", 8, mac),
	    -1);
	assert_int_equal(auth_verify_data(auth_secret, AUTH_SECRET_LEN,
			     "0123abce", 7, mac),
	    -1);
	/* ...and not a control proof over the same text. */
	assert_int_equal(auth_verify_ctl(auth_secret, AUTH_SECRET_LEN,
			     "0123abcd:7", mac),
	    -1);
	flip_digit(mac, 17);
	assert_int_equal(auth_verify_data(auth_secret, AUTH_SECRET_LEN,
			     "0123abcd", 7, mac),
	    -1);
	mac[10] = '\0';
	assert_int_equal(auth_verify_data(auth_secret, AUTH_SECRET_LEN,
			     "0123abcd", 7, mac),
	    -1);
}

static int
write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(s, f);
	return fclose(f) == 0 ? 0 : -1;
}

static void
test_auth_load_secret(void **state)
{
	char path[] = "/tmp/test_proto.XXXXXX";
	unsigned char secret[AUTH_SECRET_MAX];
	char err[256];
	size_t len = 0;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_int_not_equal(fd, -1);
	close(fd);

	assert_int_equal(write_file(path, "supersecret\r\n"), 0);
	assert_int_equal(auth_load_secret(path, secret, sizeof(secret), &len,
			     err, sizeof(err)),
	    0);
	assert_int_equal(len, 11);
	assert_memory_equal(secret, "supersecret", 11);

	assert_int_equal(write_file(path, "short\n"), 0);
	assert_int_equal(auth_load_secret(path, secret, sizeof(secret), &len,
			     err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "8 to"));
	unlink(path);

	assert_int_equal(auth_load_secret(path, secret, sizeof(secret), &len,
			     err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "cannot open"));
}

/* PROXY v1 lines as HAProxy's spec writes them. */
static void
test_proxy_v1(void **state)
{
	struct sockaddr_storage c4, r4, c6, r6, m6;
	const struct {
		const struct sockaddr_storage *src, *dst;
		const char *want;
	} cases[] = {
	    {&c4, &r4, "PROXY TCP4 127.0.0.7 127.0.0.1 51000 80\r\n"},
	    {&c6, &r6, "PROXY TCP6 ::1 ::1 51000 80\r\n"},
	    /* v4-mapped counts as IPv4 when both are. */
	    {&m6, &r4, "PROXY TCP4 127.0.0.7 127.0.0.1 51000 80\r\n"},
	    /* Mixed families: both as IPv6, not UNKNOWN. */
	    {&c4, &r6, "PROXY TCP6 ::ffff:127.0.0.7 ::1 51000 80\r\n"},
	    {&c6, &r4, "PROXY TCP6 ::1 ::ffff:127.0.0.1 51000 80\r\n"},
	    /* No client address. */
	    {NULL, &r4, "PROXY UNKNOWN\r\n"},
	};
	char out[PROXY_V1_MAX];

	(void)state;
	set_addr(&c4, AF_INET, "127.0.0.7", 51000);
	set_addr(&r4, AF_INET, "127.0.0.1", 80);
	set_addr(&c6, AF_INET6, "::1", 51000);
	set_addr(&r6, AF_INET6, "::1", 80);
	set_addr(&m6, AF_INET6, "::ffff:127.0.0.7", 51000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = proxy_header(out, sizeof(out), 1,
		    (const struct sockaddr *)cases[i].src,
		    (const struct sockaddr *)cases[i].dst);

		assert_int_equal(n, (int)strlen(cases[i].want));
		assert_string_equal(out, cases[i].want);
	}
	assert_int_equal(proxy_header(out, 10, 1, (struct sockaddr *)&c4,
			     (struct sockaddr *)&r4),
	    -1);
}

static void
test_proxy_v2(void **state)
{
	struct sockaddr_storage c4, r4, r6;
	uint8_t out[64];
	int n;

	(void)state;
	set_addr(&c4, AF_INET, "127.0.0.7", 51000);
	set_addr(&r4, AF_INET, "127.0.0.1", 80);
	set_addr(&r6, AF_INET6, "::1", 80);
	n = proxy_header((char *)out, sizeof(out), 2, (struct sockaddr *)&c4,
	    (struct sockaddr *)&r4);
	assert_int_equal(n, 16 + 12);
	assert_memory_equal(out, "\r\n\r\n\0\r\nQUIT\n", 12);
	assert_int_equal(out[12], 0x21); /* v2, PROXY */
	assert_int_equal(out[13], 0x11); /* TCP over IPv4 */
	assert_int_equal(out[15], 12);
	assert_memory_equal(out + 16, "\x7f\x00\x00\x07\x7f\x00\x00\x01", 8);
	assert_memory_equal(out + 24, "\xc7\x38\x00\x50", 4); /* 51000, 80 */
	/* Mixed families: TCP over IPv6, the client v4-mapped. */
	n = proxy_header((char *)out, sizeof(out), 2, (struct sockaddr *)&c4,
	    (struct sockaddr *)&r6);
	assert_int_equal(n, 16 + 36);
	assert_int_equal(out[13], 0x21);
	assert_memory_equal(out + 16,
	    "\0\0\0\0\0\0\0\0\0\0\xff\xff\x7f\x00\x00\x07", 16);
	assert_memory_equal(out + 32, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	/* Unknown: LOCAL, no addresses. */
	n = proxy_header((char *)out, sizeof(out), 2, NULL,
	    (struct sockaddr *)&r6);
	assert_int_equal(n, 16);
	assert_int_equal(out[12], 0x20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_vectors),
	    cmocka_unit_test(test_good_vectors_split),
	    cmocka_unit_test(test_bad_vectors),
	    cmocka_unit_test(test_line_max),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_roundtrip_vectors),
	    cmocka_unit_test(test_format_new_original),
	    cmocka_unit_test(test_format_fields),
	    cmocka_unit_test(test_format_capacity),
	    cmocka_unit_test(test_roundtrip_built),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_addr_parse),
	    cmocka_unit_test(test_addr_format),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_net_parse_hostport),
	    cmocka_unit_test(test_auth_known_answer),
	    cmocka_unit_test(test_auth_equal),
	    cmocka_unit_test(test_auth_verify_ctl),
	    cmocka_unit_test(test_auth_verify_data),
	    cmocka_unit_test(test_auth_load_secret),
	    cmocka_unit_test(test_proxy_v1),
	    cmocka_unit_test(test_proxy_v2),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
