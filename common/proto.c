/*
 * proto.c - parser and formatter for the relay protocol lines.
 *
 * Pure functions of a byte buffer: no allocation, no I/O, no global
 * state, so they are unit-tested split at every byte and fuzzed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

struct proto_tag {
	const char *name;
	size_t len;
	enum proto_type type;
};

#define TAG(s, t) \
	{ \
		s, sizeof(s) - 1, t \
	}
static const struct proto_tag proto_tags[] = {
    TAG("[NEW]", PROTO_NEW),
    TAG("[HELLO]", PROTO_HELLO),
    TAG("[OK]", PROTO_OK),
    TAG("[ERR]", PROTO_ERR),
    TAG("[CHALLENGE]", PROTO_CHALLENGE),
    TAG("[AUTH]", PROTO_AUTH),
    TAG("[DATA]", PROTO_DATA),
    TAG("[PING]", PROTO_PING),
    TAG("[PONG]", PROTO_PONG),
};
#undef TAG

static const char *const proto_ext_names[] = {"addr", "pipe", "pool"};

const char *
proto_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case PROTO_E_TOOLONG:
		return "line too long";
	case PROTO_E_SYNTAX:
		return "malformed line";
	case PROTO_E_TAG:
		return "unknown message";
	case PROTO_E_VALUE:
		return "bad value";
	default:
		return "unknown error";
	}
}

/* Decimal without sign or leading zeros, at most <max>. */
static int
proto_num(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
proto_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
proto_hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int
proto_hex_decode(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = strlen(hex);

	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = proto_hexval(hex[2 * i]);
		int lo = proto_hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* A hex token of 1..PROTO_HEX_MAX digits, copied NUL-terminated. */
static int
proto_hexstr(const char *s, size_t n, char *out)
{
	if (n == 0 || n > PROTO_HEX_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (proto_hexval(s[i]) < 0)
			return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int
proto_u64hex(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 16)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d = proto_hexval(s[i]);

		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

int
proto_addr_parse(struct sockaddr_storage *ss, const char *s, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon;
	unsigned port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (len == 0)
		return -1;
	if (s[0] == '[') {
		const char *end = memchr(s, ']', len);

		if (end == NULL || end + 1 >= s + len || end[1] != ':')
			return -1;
		hl = (size_t)(end - s - 1);
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		colon = end + 1;
	} else {
		colon = memchr(s, ':', len);
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (proto_num(colon + 1, (size_t)(s + len - colon - 1), 65535, &port) ==
	    -1)
		return -1;
	if (s[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	}
	return 0;
}

int
proto_addr_format(char *out, size_t cap, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN];
	int r;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		r = snprintf(out, cap, "%s:%u", host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;

		/* Print v4-mapped peers as plain IPv4, as Go's log does. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host,
			    sizeof(host));
			r = snprintf(out, cap, "%s:%u", host,
			    ntohs(sin6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, host,
			    sizeof(host));
			r = snprintf(out, cap, "[%s]:%u", host,
			    ntohs(sin6->sin6_port));
		}
	} else {
		r = snprintf(out, cap, "?");
	}
	if (r < 0 || (size_t)r >= cap)
		return -1;
	return r;
}

static int
proto_ext_parse(const char *s, size_t n, unsigned *out)
{
	*out = 0;
	while (n > 0) {
		const char *comma = memchr(s, ',', n);
		size_t w = comma ? (size_t)(comma - s) : n;

		for (size_t i = 0;
		     i < sizeof(proto_ext_names) / sizeof(proto_ext_names[0]);
		     i++) {
			if (strlen(proto_ext_names[i]) == w &&
			    memcmp(proto_ext_names[i], s, w) == 0)
				*out |= 1u << i;
		}
		/* Unknown names are skipped: a newer peer may offer more. */
		if (comma == NULL)
			break;
		n -= w + 1;
		s += w + 1;
	}
	return 0;
}

/* One "key=value" field; unknown keys are accepted and ignored. */
static int
proto_field(struct proto_msg *m, const char *k, size_t kl, const char *v,
    size_t vl)
{
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
	if (KEY("v"))
		return proto_num(v, vl, 65535, &m->version);
	if (KEY("port"))
		return proto_num(v, vl, 65535, &m->port);
	if (KEY("sport"))
		return proto_num(v, vl, 65535, &m->sport);
	if (KEY("ka"))
		return proto_num(v, vl, 86400, &m->ka);
	if (KEY("pool"))
		return proto_num(v, vl, 1024, &m->pool);
	if (KEY("ext"))
		return proto_ext_parse(v, vl, &m->ext);
	if (KEY("reg"))
		return proto_hexstr(v, vl, m->reg);
	if (KEY("mac"))
		return proto_hexstr(v, vl, m->hex);
	if (KEY("id")) {
		m->has_id = 1;
		return proto_u64hex(v, vl, &m->id);
	}
	if (KEY("from")) {
		m->has_from = 1;
		return proto_addr_parse(&m->from, v, vl);
	}
	return 0;
#undef KEY
}

static int
proto_fields(struct proto_msg *m, const char *s, size_t n)
{
	while (n > 0) {
		const char *sp, *eq;
		size_t w;

		if (*s != ' ')
			return -PROTO_E_SYNTAX;
		s++;
		n--;
		sp = memchr(s, ' ', n);
		w = sp ? (size_t)(sp - s) : n;
		eq = memchr(s, '=', w);
		if (eq == NULL || eq == s)
			return -PROTO_E_SYNTAX;
		if (proto_field(m, s, (size_t)(eq - s), eq + 1,
			w - (size_t)(eq - s) - 1) == -1)
			return -PROTO_E_VALUE;
		s += w;
		n -= w;
	}
	return 0;
}

ssize_t
proto_parse(struct proto_msg *m, const char *buf, size_t len)
{
	const struct proto_tag *tag = NULL;
	const char *lf, *p;
	size_t n, limit = len < PROTO_LINE_MAX ? len : PROTO_LINE_MAX;
	int r;

	lf = memchr(buf, '\n', limit);
	if (lf == NULL)
		return len >= PROTO_LINE_MAX ? -PROTO_E_TOOLONG : 0;
	n = (size_t)(lf - buf);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			return -PROTO_E_SYNTAX;
	if (n == 0 || buf[0] != '[')
		return -PROTO_E_SYNTAX;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < sizeof(proto_tags) / sizeof(proto_tags[0]);
	     i++) {
		if (n >= proto_tags[i].len &&
		    memcmp(buf, proto_tags[i].name, proto_tags[i].len) == 0) {
			tag = &proto_tags[i];
			break;
		}
	}
	if (tag == NULL)
		return -PROTO_E_TAG;
	m->type = tag->type;
	p = buf + tag->len;
	n -= tag->len;

	switch (m->type) {
	case PROTO_NEW: {
		/* "[NEW]" port, glued to the tag as the original sends it. */
		size_t d = 0;
		unsigned port;

		while (d < n && p[d] >= '0' && p[d] <= '9')
			d++;
		if (proto_num(p, d, 65535, &port) == -1 || port == 0)
			return -PROTO_E_VALUE;
		r = proto_fields(m, p + d, n - d);
		/* A "port=" field must not replace it (nor make it 0). */
		m->port = port;
		break;
	}
	case PROTO_ERR:
		if (n > 0 && p[0] == ' ') {
			p++;
			n--;
		}
		if (n >= sizeof(m->text))
			n = sizeof(m->text) - 1;
		memcpy(m->text, p, n);
		m->text[n] = '\0';
		r = 0;
		break;
	case PROTO_CHALLENGE:
	case PROTO_AUTH:
		if (n < 2 || p[0] != ' ')
			return -PROTO_E_SYNTAX;
		{
			const char *sp = memchr(p + 1, ' ', n - 1);
			size_t w = sp ? (size_t)(sp - p - 1) : n - 1;

			if (proto_hexstr(p + 1, w, m->hex) == -1)
				return -PROTO_E_VALUE;
			r = proto_fields(m, p + 1 + w, n - 1 - w);
		}
		break;
	default:
		r = proto_fields(m, p, n);
		break;
	}
	if (r < 0)
		return r;
	return (ssize_t)(lf - buf) + 1;
}

static int proto_append(char *out, size_t cap, size_t *off, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static int
proto_append(char *out, size_t cap, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*off >= cap)
		return -1;
	va_start(ap, fmt);
	r = vsnprintf(out + *off, cap - *off, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= cap - *off)
		return -1;
	*off += (size_t)r;
	return 0;
}

static int
proto_ext_format(char *out, size_t cap, size_t *off, unsigned ext)
{
	const char *sep = " ext=";

	for (size_t i = 0;
	     i < sizeof(proto_ext_names) / sizeof(proto_ext_names[0]); i++) {
		if (!(ext & (1u << i)))
			continue;
		if (proto_append(out, cap, off, "%s%s", sep,
			proto_ext_names[i]) == -1)
			return -1;
		sep = ",";
	}
	return 0;
}

/* The terms [HELLO] and [OK] share: registration key, heartbeat, pool
 * size and extensions, each only when set. */
static int
proto_format_terms(char *out, size_t cap, size_t *off,
    const struct proto_msg *m)
{
	if (m->reg[0] && proto_append(out, cap, off, " reg=%s", m->reg) == -1)
		return -1;
	if (m->ka && proto_append(out, cap, off, " ka=%u", m->ka) == -1)
		return -1;
	if (m->pool && proto_append(out, cap, off, " pool=%u", m->pool) == -1)
		return -1;
	return proto_ext_format(out, cap, off, m->ext);
}

int
proto_format(char *out, size_t cap, const struct proto_msg *m)
{
	size_t off = 0;
	int r = 0;

	switch (m->type) {
	case PROTO_NEW:
		r = proto_append(out, cap, &off, "[NEW]%u", m->port);
		if (r == 0 && m->has_id)
			r = proto_append(out, cap, &off, " id=%llx",
			    (unsigned long long)m->id);
		if (r == 0 && m->has_from) {
			char a[PROTO_TEXT_MAX];

			if (proto_addr_format(a, sizeof(a),
				(const struct sockaddr *)&m->from) == -1)
				return -1;
			r = proto_append(out, cap, &off, " from=%s", a);
		}
		break;
	case PROTO_HELLO:
		r = proto_append(out, cap, &off, "[HELLO] v=%u", m->version);
		if (r == 0 && m->port)
			r = proto_append(out, cap, &off, " port=%u", m->port);
		if (r == 0)
			r = proto_format_terms(out, cap, &off, m);
		break;
	case PROTO_OK:
		r = proto_append(out, cap, &off, "[OK] v=%u port=%u sport=%u",
		    m->version, m->port, m->sport);
		if (r == 0)
			r = proto_format_terms(out, cap, &off, m);
		break;
	case PROTO_ERR:
		r = proto_append(out, cap, &off, "[ERR] %s", m->text);
		break;
	case PROTO_CHALLENGE:
		r = proto_append(out, cap, &off, "[CHALLENGE] %s", m->hex);
		break;
	case PROTO_AUTH:
		r = proto_append(out, cap, &off, "[AUTH] %s", m->hex);
		break;
	case PROTO_DATA:
		r = proto_append(out, cap, &off, "[DATA]");
		if (r == 0 && m->reg[0])
			r = proto_append(out, cap, &off, " reg=%s", m->reg);
		if (r == 0 && m->has_id)
			r = proto_append(out, cap, &off, " id=%llx",
			    (unsigned long long)m->id);
		if (r == 0 && m->pool)
			r = proto_append(out, cap, &off, " pool=%u", m->pool);
		if (r == 0 && m->hex[0])
			r = proto_append(out, cap, &off, " mac=%s", m->hex);
		break;
	case PROTO_PING:
		r = proto_append(out, cap, &off, "[PING]");
		break;
	case PROTO_PONG:
		r = proto_append(out, cap, &off, "[PONG]");
		break;
	default:
		return -1;
	}
	if (r == -1 || proto_append(out, cap, &off, "\n") == -1 ||
	    off > PROTO_LINE_MAX)
		return -1;
	return (int)off;
}
