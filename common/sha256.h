/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the
 * shared-secret proofs in auth.c.  Pure functions of their input: no I/O,
 * no allocation.  Checked against the FIPS and RFC 4231 test vectors and,
 * on random input, against libsodium (tests/unit/test_sha256.c).
 */
#ifndef COMMON_SHA256_H
#define COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_BLOCK 64

struct sha256 {
	uint32_t h[8];
	uint64_t bytes; /* message length so far */
	uint8_t buf[SHA256_BLOCK];
	size_t nbuf;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN]);

struct hmac_sha256 {
	struct sha256 inner;
	struct sha256 outer;
};

void hmac_sha256_init(struct hmac_sha256 *c, const void *key, size_t keylen);
void hmac_sha256_update(struct hmac_sha256 *c, const void *data, size_t len);
void hmac_sha256_final(struct hmac_sha256 *c, uint8_t out[SHA256_LEN]);
/* hmac_sha256: the whole MAC of one message. */
void hmac_sha256(uint8_t out[SHA256_LEN], const void *key, size_t keylen,
    const void *msg, size_t len);

#endif
