/*
 * auth.c - HMAC-SHA256 proofs (sha256.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "proto.h"
#include "sha256.h"

int
auth_load_secret(const char *path, unsigned char *secret, size_t cap,
    size_t *len, char *err, size_t errlen)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		snprintf(err, errlen, "cannot open secret file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = read(fd, secret, cap);
	close(fd);
	if (n == -1) {
		snprintf(err, errlen, "cannot read secret file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
		n--;
	if (n < 8) {
		snprintf(err, errlen,
		    "secret file %s: the secret must be 8 to %zu bytes", path,
		    cap);
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

static int
auth_hmac(char *out, const unsigned char *secret, size_t len, const char *msg)
{
	uint8_t mac[SHA256_LEN];

	hmac_sha256(mac, secret, len, msg, strlen(msg));
	proto_hex_encode(out, mac, sizeof(mac));
	explicit_bzero(mac, sizeof(mac));
	return 0;
}

int
auth_mac_ctl(char *out, const unsigned char *secret, size_t len,
    const char *nonce)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "relayd-ctl:%s", nonce);
	return auth_hmac(out, secret, len, msg);
}

int
auth_mac_data(char *out, const unsigned char *secret, size_t len,
    const char *regkey, uint64_t id)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "relayd-data:%s:%llx", regkey,
	    (unsigned long long)id);
	return auth_hmac(out, secret, len, msg);
}

int
auth_mac_pool(char *out, const unsigned char *secret, size_t len,
    const char *regkey, const char *nonce)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "relayd-pool:%s:%s", regkey, nonce);
	return auth_hmac(out, secret, len, msg);
}

int
auth_equal(const char *want, const char *got)
{
	size_t n = strlen(want);
	volatile unsigned char diff = 0;

	if (strlen(got) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(want[i] ^ got[i]);
	return diff == 0;
}

static int
auth_compare(const char *want, const char *got)
{
	return auth_equal(want, got) ? 0 : -1;
}

int
auth_verify_ctl(const unsigned char *secret, size_t len, const char *nonce,
    const char *mac)
{
	char want[AUTH_MAC_HEX + 1];

	if (auth_mac_ctl(want, secret, len, nonce) == -1)
		return -1;
	return auth_compare(want, mac);
}

int
auth_verify_data(const unsigned char *secret, size_t len, const char *regkey,
    uint64_t id, const char *mac)
{
	char want[AUTH_MAC_HEX + 1];

	if (auth_mac_data(want, secret, len, regkey, id) == -1)
		return -1;
	return auth_compare(want, mac);
}

int
auth_verify_pool(const unsigned char *secret, size_t len, const char *regkey,
    const char *nonce, const char *mac)
{
	char want[AUTH_MAC_HEX + 1];

	if (auth_mac_pool(want, secret, len, regkey, nonce) == -1)
		return -1;
	return auth_compare(want, mac);
}
