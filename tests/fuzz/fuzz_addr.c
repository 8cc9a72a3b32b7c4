/*
 * fuzz_addr.c - the two address parsers on arbitrary bytes:
 * proto_addr_parse (the from= field, length-bounded) and
 * net_parse_hostport (command-line and environment host:port, a C
 * string).  An address that parses must print and parse back to itself.
 */
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "net.h"
#include "proto.h"

static void
fuzz_proto_addr(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss, ss2;
	char out[NET_ADDR_LEN], again[NET_ADDR_LEN];
	char *buf = malloc(size > 0 ? size : 1);
	int n, r;

	FUZZ_CHECK(buf != NULL);
	memcpy(buf, data, size);
	r = proto_addr_parse(&ss, buf, size);
	free(buf);
	FUZZ_CHECK(r == 0 || r == -1);
	if (r == -1)
		return;
	FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	n = proto_addr_format(out, sizeof(out), (struct sockaddr *)&ss);
	FUZZ_CHECK(n > 0 && (size_t)n == strlen(out));
	FUZZ_CHECK(proto_addr_parse(&ss2, out, (size_t)n) == 0);
	FUZZ_CHECK(proto_addr_format(again, sizeof(again),
		       (struct sockaddr *)&ss2) == n);
	FUZZ_CHECK(strcmp(out, again) == 0);
}

static void
fuzz_hostport(const uint8_t *data, size_t size)
{
	/* Cut at the first NUL, as a C caller would see the string. */
	char *s = malloc(size + 1);
	char host[64], host2[64], again[sizeof(host) + 16];
	size_t hostlen;
	unsigned port = 0, port2 = 0;

	FUZZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	/* Small buffers too, to exercise the length check. */
	hostlen = size > 0 ? (size_t)data[0] % sizeof(host) + 1 : sizeof(host);
	if (net_parse_hostport(s, host, hostlen, &port) == 0) {
		FUZZ_CHECK(strlen(host) < hostlen);
		FUZZ_CHECK(port <= 65535);
		/* Plain hosts print back and parse to the same parts. */
		if (strpbrk(host, "[]") == NULL) {
			snprintf(again, sizeof(again),
			    strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
			    port);
			FUZZ_CHECK(net_parse_hostport(again, host2,
				       sizeof(host2), &port2) == 0);
			FUZZ_CHECK(strcmp(host, host2) == 0 && port == port2);
		}
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_proto_addr(data, size);
	fuzz_hostport(data, size);
	return 0;
}
