/*
 * proxyproto.c - PROXY protocol header formatting.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxyproto.h"

static const char proxy_v2_sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* Both addresses of one family, v4-mapped IPv6 counting as IPv4. */
static int
proxy_family(const struct sockaddr *sa, struct sockaddr_in6 *out6,
    struct sockaddr_in *out4)
{
	if (sa == NULL)
		return AF_UNSPEC;
	if (sa->sa_family == AF_INET) {
		*out4 = *(const struct sockaddr_in *)sa;
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		*out6 = *(const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&out6->sin6_addr)) {
			memset(out4, 0, sizeof(*out4));
			out4->sin_family = AF_INET;
			out4->sin_port = out6->sin6_port;
			memcpy(&out4->sin_addr, &out6->sin6_addr.s6_addr[12],
			    4);
			return AF_INET;
		}
		return AF_INET6;
	}
	return AF_UNSPEC;
}

/* <in> as a v4-mapped IPv6 address. */
static void
proxy_map6(const struct sockaddr_in *in, struct sockaddr_in6 *out)
{
	memset(out, 0, sizeof(*out));
	out->sin6_family = AF_INET6;
	out->sin6_port = in->sin_port;
	out->sin6_addr.s6_addr[10] = out->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&out->sin6_addr.s6_addr[12], &in->sin_addr, 4);
}

int
proxy_header(char *out, size_t cap, int version, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	struct sockaddr_in6 s6, d6;
	struct sockaddr_in s4, d4;
	int sf = proxy_family(src, &s6, &s4);
	int df = proxy_family(dst, &d6, &d4);
	int fam = sf == df ? sf : AF_UNSPEC;

	/* An IPv4 client at a relay reached over IPv6 (or the other way
	 * round): both as IPv6, the IPv4 one v4-mapped, rather than no
	 * address at all. */
	if (sf != df && sf != AF_UNSPEC && df != AF_UNSPEC) {
		if (sf == AF_INET)
			proxy_map6(&s4, &s6);
		else
			proxy_map6(&d4, &d6);
		fam = AF_INET6;
	}

	if (version == 1) {
		char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
		int n;

		if (fam == AF_INET) {
			inet_ntop(AF_INET, &s4.sin_addr, sa, sizeof(sa));
			inet_ntop(AF_INET, &d4.sin_addr, da, sizeof(da));
			n = snprintf(out, cap, "PROXY TCP4 %s %s %u %u\r\n", sa,
			    da, ntohs(s4.sin_port), ntohs(d4.sin_port));
		} else if (fam == AF_INET6) {
			inet_ntop(AF_INET6, &s6.sin6_addr, sa, sizeof(sa));
			inet_ntop(AF_INET6, &d6.sin6_addr, da, sizeof(da));
			n = snprintf(out, cap, "PROXY TCP6 %s %s %u %u\r\n", sa,
			    da, ntohs(s6.sin6_port), ntohs(d6.sin6_port));
		} else {
			n = snprintf(out, cap, "PROXY UNKNOWN\r\n");
		}
		return n < 0 || (size_t)n >= cap ? -1 : n;
	}

	{
		uint8_t *p = (uint8_t *)out;
		size_t alen = fam == AF_INET ? 12 : fam == AF_INET6 ? 36 : 0;

		if (cap < 16 + alen)
			return -1;
		memcpy(p, proxy_v2_sig, sizeof(proxy_v2_sig));
		/* Version 2; PROXY command, or LOCAL when unknown. */
		p[12] = fam == AF_UNSPEC ? 0x20 : 0x21;
		p[13] = fam == AF_INET ? 0x11 : fam == AF_INET6 ? 0x21 : 0x00;
		p[14] = (uint8_t)(alen >> 8);
		p[15] = (uint8_t)alen;
		if (fam == AF_INET) {
			memcpy(p + 16, &s4.sin_addr, 4);
			memcpy(p + 20, &d4.sin_addr, 4);
			memcpy(p + 24, &s4.sin_port, 2);
			memcpy(p + 26, &d4.sin_port, 2);
		} else if (fam == AF_INET6) {
			memcpy(p + 16, &s6.sin6_addr, 16);
			memcpy(p + 32, &d6.sin6_addr, 16);
			memcpy(p + 48, &s6.sin6_port, 2);
			memcpy(p + 50, &d6.sin6_port, 2);
		}
		return (int)(16 + alen);
	}
}
