/*
 * test_sha256.c - SHA-256 and HMAC-SHA256 (common/sha256.c): the test
 * vectors of FIPS 180-4 (NIST's examples) and RFC 4231, then libsodium as
 * an independent implementation on random keys and messages, each fed in
 * random pieces so every buffering path runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include "proto.h"
#include "sha256.h"

static void
hex_of(char *out, const uint8_t *md)
{
	proto_hex_encode(out, md, SHA256_LEN);
}

static void
test_sha256_fips(void **state)
{
	static const struct {
		const char *msg;
		const char *md;
	} v[] = {
	    {"",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8"
		"55"},
	    {"abc",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015"
		"ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06"
		"c1"},
	    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
	     "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		"cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9"
		"d1"},
	};
	struct sha256 c;
	uint8_t md[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sha256_init(&c);
		sha256_update(&c, v[i].msg, strlen(v[i].msg));
		sha256_final(&c, md);
		hex_of(hex, md);
		assert_string_equal(hex, v[i].md);
	}
	/* One million times 'a', in pieces of 1000. */
	{
		char a[1000];

		memset(a, 'a', sizeof(a));
		sha256_init(&c);
		for (int i = 0; i < 1000; i++)
			sha256_update(&c, a, sizeof(a));
		sha256_final(&c, md);
		hex_of(hex, md);
		assert_string_equal(hex,
		    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7"
		    "112cd0");
	}
}

/* RFC 4231, test cases 1-4, 6 and 7 (5 truncates the output). */
static void
test_hmac_rfc4231(void **state)
{
	uint8_t k20[20], kaa20[20], k25[25], k131[131], dd50[50], cd50[50];
	static const char *m6 =
	    "Test Using Larger Than Block-Size Key - Hash Key First";
	static const char *m7 =
	    "This is a test using a larger than block-size key and a larger "
	    "than block-size data. The key needs to be hashed before being "
	    "used by the HMAC algorithm.";
	const struct {
		const void *key;
		size_t klen;
		const void *msg;
		size_t mlen;
		const char *mac;
	} v[] = {
	    {k20, 20, "Hi There", 8,
		"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cf"
		"f7"},
	    {"Jefe", 4, "what do ya want for nothing?", 28,
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec38"
		"43"},
	    {kaa20, 20, dd50, 50,
		"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565"
		"fe"},
	    {k25, 25, cd50, 50,
		"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff4672966"
		"5b"},
	    {k131, 131, m6, strlen(m6),
		"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f"
		"54"},
	    {k131, 131, m7, strlen(m7),
		"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35"
		"e2"},
	};
	uint8_t md[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];

	(void)state;
	memset(k20, 0x0b, sizeof(k20));
	memset(kaa20, 0xaa, sizeof(kaa20));
	memset(dd50, 0xdd, sizeof(dd50));
	for (size_t i = 0; i < sizeof(k25); i++)
		k25[i] = (uint8_t)(i + 1);
	memset(cd50, 0xcd, sizeof(cd50));
	memset(k131, 0xaa, sizeof(k131));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		hmac_sha256(md, v[i].key, v[i].klen, v[i].msg, v[i].mlen);
		hex_of(hex, md);
		assert_string_equal(hex, v[i].mac);
	}
}

/* libsodium agrees on random keys (0 to 200 bytes) and messages (0 to
 * 1000 bytes) fed in random pieces. */
static void
test_against_libsodium(void **state)
{
	static uint8_t key[200], msg[1000];
	uint8_t ours[SHA256_LEN], theirs[SHA256_LEN];

	(void)state;
	assert_int_not_equal(sodium_init(), -1);
	for (int round = 0; round < 2000; round++) {
		uint32_t r[2];
		size_t klen, mlen, off = 0;
		struct hmac_sha256 c;
		struct sha256 h;
		crypto_auth_hmacsha256_state st;

		assert_int_equal(getrandom(r, sizeof(r), 0), sizeof(r));
		klen = r[0] % (sizeof(key) + 1);
		mlen = r[1] % (sizeof(msg) + 1);
		assert_int_equal(getrandom(key, sizeof(key), 0), sizeof(key));
		assert_int_equal(getrandom(msg, sizeof(msg), 0), sizeof(msg));

		hmac_sha256_init(&c, key, klen);
		sha256_init(&h);
		while (off < mlen) {
			size_t piece = (size_t)(rand() % 130);

			if (piece > mlen - off)
				piece = mlen - off;
			hmac_sha256_update(&c, msg + off, piece);
			sha256_update(&h, msg + off, piece);
			off += piece;
		}
		hmac_sha256_final(&c, ours);
		crypto_auth_hmacsha256_init(&st, key, klen);
		crypto_auth_hmacsha256_update(&st, msg, mlen);
		crypto_auth_hmacsha256_final(&st, theirs);
		assert_memory_equal(ours, theirs, SHA256_LEN);

		sha256_final(&h, ours);
		crypto_hash_sha256(theirs, msg, mlen);
		assert_memory_equal(ours, theirs, SHA256_LEN);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_fips),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_against_libsodium),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
