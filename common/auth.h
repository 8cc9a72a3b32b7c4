/*
 * auth.h - the shared-secret proofs of the authentication extension.
 *
 * Nothing replayable crosses the wire: a control connection proves the
 * secret with HMAC-SHA256 over a fresh nonce the relay chose for it; a
 * data connection proves it over the registration key and the id of the
 * client it claims, and an id is good for one connection only; a pooled
 * data connection (opened before any client) answers a nonce of its own.  The
 * HMAC is common/sha256.c's; every comparison of a secret-derived string
 * takes a time independent of where the two differ.
 */
#ifndef COMMON_AUTH_H
#define COMMON_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_MAC_HEX 64 /* hex digits of an HMAC-SHA256 */
#define AUTH_SECRET_MAX 64

/* auth_load_secret: read a secret file (trailing newline stripped).
 * Returns 0, or -1 with <err> filled. */
int auth_load_secret(const char *path, unsigned char *secret, size_t cap,
    size_t *len, char *err, size_t errlen);

/* The MACs, as lower-case hex into <out> (AUTH_MAC_HEX + 1 bytes). */
int auth_mac_ctl(char *out, const unsigned char *secret, size_t len,
    const char *nonce);
int auth_mac_data(char *out, const unsigned char *secret, size_t len,
    const char *regkey, uint64_t id);

int auth_mac_pool(char *out, const unsigned char *secret, size_t len,
    const char *regkey, const char *nonce);

/* Constant-time checks: 0 when <mac> is right, -1 otherwise. */
/* auth_equal: <got> equals <want>, compared in a time that depends on
 * their lengths only (the registration key, the MACs). */
int auth_equal(const char *want, const char *got);
int auth_verify_ctl(const unsigned char *secret, size_t len, const char *nonce,
    const char *mac);
int auth_verify_data(const unsigned char *secret, size_t len,
    const char *regkey, uint64_t id, const char *mac);
int auth_verify_pool(const unsigned char *secret, size_t len,
    const char *regkey, const char *nonce, const char *mac);

#endif
