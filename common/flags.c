/*
 * flags.c - Go-style command-line flags.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

static int flags_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
flags_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
flags_set(const struct flag *f, const char *val, char *err, size_t errlen)
{
	char *end;

	switch (f->kind) {
	case FLAG_UINT: {
		unsigned long v;

		errno = 0;
		v = strtoul(val, &end, 10);
		if (val[0] < '0' || val[0] > '9' || *end != '\0' ||
		    errno != 0 || v > f->size)
			return flags_fail(err, errlen,
			    "invalid value \"%s\" for flag -%s (0..%zu)", val,
			    f->name, f->size);
		*(unsigned *)f->ptr = (unsigned)v;
		return 0;
	}
	case FLAG_DOUBLE: {
		double v;

		errno = 0;
		v = strtod(val, &end);
		if (*val == '\0' || *end != '\0' || errno != 0 ||
		    !(v > 0 || (v >= 0 && f->size != 0)) || v > 86400)
			return flags_fail(err, errlen,
			    "invalid value \"%s\" for flag -%s", val, f->name);
		*(double *)f->ptr = v;
		return 0;
	}
	case FLAG_STR:
		if (strlen(val) >= f->size)
			return flags_fail(err, errlen,
			    "value for -%s is too long", f->name);
		memcpy(f->ptr, val, strlen(val) + 1);
		return 0;
	case FLAG_BOOL:
		*(int *)f->ptr = 1;
		return 0;
	}
	return flags_fail(err, errlen, "bad flag table");
}

static const struct flag *
flags_find(const struct flag *tbl, size_t n, const char *name, size_t len)
{
	for (size_t k = 0; k < n; k++)
		if (strlen(tbl[k].name) == len &&
		    strncmp(tbl[k].name, name, len) == 0)
			return &tbl[k];
	return NULL;
}

/* The spellings Go's strconv.ParseBool takes: 1, 0 or -1 (none). */
static int
flags_bool(const char *v)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true",
	    "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false",
	    "False"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(v, yes[i]) == 0)
			return 1;
		if (strcmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

int
flags_parse(const struct flag *tbl, size_t n, const struct flag *positional,
    int argc, char *const argv[], char *err, size_t errlen, int *unknown)
{
	int npos = 0, ended = 0;

	*unknown = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *name;
		const struct flag *f;
		size_t len;

		/* As in Go, "--" ends the flags: what follows is an argument
		 * even if it starts with '-'. */
		if (strcmp(a, "--") == 0 && !ended) {
			ended = 1;
			continue;
		}
		if (ended || a[0] != '-' || a[1] == '\0') {
			if (positional == NULL || npos++ > 0)
				return flags_fail(err, errlen,
				    "unexpected argument %s", a);
			if (flags_set(positional, a, err, errlen) == -1)
				return -1;
			continue;
		}
		name = a + 1 + (a[1] == '-');
		len = strcspn(name, "=");
		if (name[len] == '=')
			val = name + len + 1;
		f = flags_find(tbl, n, name, len);
		if (f == NULL) {
			*unknown = 1;
			return flags_fail(err, errlen,
			    "flag provided but not defined: %s", a);
		}
		if (f->kind == FLAG_BOOL) {
			int b = val == NULL ? 1 : flags_bool(val);

			if (b != -1)
				*(int *)f->ptr = b;
			else
				return flags_fail(err, errlen,
				    "-%s takes no value", f->name);
			continue;
		}
		if (val == NULL) {
			if (i + 1 >= argc)
				return flags_fail(err, errlen,
				    "flag needs an argument: -%s", f->name);
			val = argv[++i];
		}
		if (flags_set(f, val, err, errlen) == -1)
			return -1;
	}
	return 0;
}

void
flags_usage(FILE *out, const struct flag *tbl, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct flag *f = &tbl[i];
		char left[48];

		if (f->help == NULL)
			continue;
		snprintf(left, sizeof(left), "-%s%s%s", f->name,
		    f->arg ? " " : "", f->arg ? f->arg : "");
		fprintf(out, "  %-22s %s\n", left, f->help);
	}
}

int
flags_parse_port(const char *s, size_t len, unsigned *port)
{
	unsigned long v = 0;

	/* strtoul would take " 80", "+80" and "-0", and wrap. */
	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int
flags_port_listed(const char *list, unsigned port)
{
	const char *p = list;

	if (*p == '\0')
		return 1;
	/* Entry by entry: blanks around a port are allowed, and a bad entry
	 * spoils only itself ("80, 443" lists both; "x,443" lists 443). */
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		unsigned v;

		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (flags_parse_port(p, len, &v) == 0 && v == port)
			return 1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}
