#include <string.h>

#include <check.h>

#include <git2.h>

#include "check_suites.h"
#include "hash.h"
#include "sha1.h"

static void
hex(char *out, const unsigned char *d)
{
	static const char x[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 20; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[40] = '\0';
}

/* FIPS 180 test vectors, fed whole and a byte at a time. */
START_TEST(test_vectors)
{
	static const struct {
		const char *in, *want;
	} v[] = {
		{ "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
		{ "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
	};
	struct wf_sha1 c;
	unsigned char d[20];
	char h[41];
	size_t i, k;

	for (i = 0; i < sizeof(v) / sizeof(*v); i++) {
		wf_sha1_init(&c);
		wf_sha1_update(&c, v[i].in, strlen(v[i].in));
		wf_sha1_final(d, &c);
		hex(h, d);
		ck_assert_str_eq(h, v[i].want);
		wf_sha1_init(&c);
		for (k = 0; v[i].in[k]; k++)
			wf_sha1_update(&c, v[i].in + k, 1);
		wf_sha1_final(d, &c);
		hex(h, d);
		ck_assert_str_eq(h, v[i].want);
	}
	/* A million 'a's, in pieces that straddle blocks. */
	{
		char a[1000];

		memset(a, 'a', sizeof(a));
		wf_sha1_init(&c);
		for (k = 0; k < 1000; k++)
			wf_sha1_update(&c, a, sizeof(a));
		wf_sha1_final(d, &c);
		hex(h, d);
		ck_assert_str_eq(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	}
}
END_TEST

/* Run the vectors again with the portable code, whatever the CPU. */
START_TEST(test_vectors_portable)
{
	int was = wf_sha1_accelerated(-1);

	wf_sha1_accelerated(0);
	ck_assert_int_eq(wf_sha1_accelerated(-1), 0);
	test_vectors_fn(_i);
	wf_sha1_accelerated(was);
}
END_TEST

/*
 * Both implementations, fed in random pieces, agree on every length
 * from 0 to 1,100 bytes; and wf_hash_buf() gives libgit2's blob ids.
 */
START_TEST(test_agree)
{
	static unsigned char data[1100];
	unsigned char d1[20], d2[20];
	uint32_t seed = 12345;
	int was = wf_sha1_accelerated(-1);
	struct wf_sha1 c;
	git_oid mine, theirs;
	size_t len, off, k;

	for (k = 0; k < sizeof(data); k++) {
		seed = seed * 1103515245 + 12345;
		data[k] = (unsigned char)(seed >> 16);
	}
	for (len = 0; len <= sizeof(data); len++) {
		wf_sha1_accelerated(0);
		wf_sha1_init(&c);
		wf_sha1_update(&c, data, len);
		wf_sha1_final(d1, &c);
		wf_sha1_accelerated(1);
		wf_sha1_init(&c);
		for (off = 0; off < len; off += k) {
			seed = seed * 1103515245 + 12345;
			k = (seed >> 16) % 150 + 1;
			if (k > len - off)
				k = len - off;
			wf_sha1_update(&c, data + off, k);
		}
		wf_sha1_final(d2, &c);
		ck_assert_msg(memcmp(d1, d2, 20) == 0, "length %zu", len);
		ck_assert_int_eq(wf_hash_buf(&mine, data, len), 0);
		ck_assert_int_eq(git_odb_hash(&theirs, data, len,
		    GIT_OBJECT_BLOB), 0);
		ck_assert_msg(git_oid_equal(&mine, &theirs), "length %zu", len);
	}
	wf_sha1_accelerated(was);
}
END_TEST

Suite *
sha1_suite(void)
{
	Suite *s = suite_create("sha1");
	TCase *tc = tcase_create("digest");

	tcase_add_test(tc, test_vectors);
	tcase_add_test(tc, test_vectors_portable);
	tcase_add_test(tc, test_agree);
	suite_add_tcase(s, tc);
	return s;
}
