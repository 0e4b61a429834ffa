#include <string.h>

#include <check.h>

#include "check_suites.h"
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

Suite *
sha1_suite(void)
{
	Suite *s = suite_create("sha1");
	TCase *tc = tcase_create("digest");

	tcase_add_test(tc, test_vectors);
	suite_add_tcase(s, tc);
	return s;
}
