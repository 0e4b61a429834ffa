#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHANI 1
#endif

#include "sha1.h"

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

/* The portable compression function: one block at a time. */
static void
blocks_c(uint32_t h[5], const unsigned char *p, size_t n)
{
	uint32_t w[80], a, b, c, d, e, t;
	int i;

	for (; n > 0; n--, p += 64) {
		for (i = 0; i < 16; i++)
			w[i] = (uint32_t)p[4 * i] << 24 |
			    (uint32_t)p[4 * i + 1] << 16 |
			    (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
		for (; i < 80; i++)
			w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16],
			    1);
		a = h[0];
		b = h[1];
		c = h[2];
		d = h[3];
		e = h[4];
#define ROUND(f, k) do { \
		t = ROL(a, 5) + (f) + e + (k) + w[i]; \
		e = d; \
		d = c; \
		c = ROL(b, 30); \
		b = a; \
		a = t; \
	} while (0)
		for (i = 0; i < 20; i++)
			ROUND((b & c) | (~b & d), 0x5a827999);
		for (; i < 40; i++)
			ROUND(b ^ c ^ d, 0x6ed9eba1);
		for (; i < 60; i++)
			ROUND((b & c) | (b & d) | (c & d), 0x8f1bbcdc);
		for (; i < 80; i++)
			ROUND(b ^ c ^ d, 0xca62c1d6);
#undef ROUND
		h[0] += a;
		h[1] += b;
		h[2] += c;
		h[3] += d;
		h[4] += e;
	}
}

#ifdef HAVE_SHANI
/*
 * The same with the x86 SHA extensions, four rounds an instruction.
 * Group g (rounds 4g..4g+3) hashes message word group m[g % 4], whose
 * later groups are scheduled as they go: sha1msg1 three groups ahead,
 * the xor two ahead, sha1msg2 one ahead.  `e` alternates between the
 * two registers, as the round instruction wants.
 */
#define GROUP(g) do { \
	if ((g) == 0) \
		e[0] = _mm_add_epi32(e[0], m[0]); \
	else \
		e[(g) & 1] = _mm_sha1nexte_epu32(e[(g) & 1], m[(g) & 3]); \
	e[((g) + 1) & 1] = abcd; \
	if ((g) >= 3 && (g) <= 18) \
		m[((g) + 1) & 3] = _mm_sha1msg2_epu32(m[((g) + 1) & 3], \
		    m[(g) & 3]); \
	abcd = _mm_sha1rnds4_epu32(abcd, e[(g) & 1], (g) / 5); \
	if ((g) >= 1 && (g) <= 16) \
		m[((g) + 3) & 3] = _mm_sha1msg1_epu32(m[((g) + 3) & 3], \
		    m[(g) & 3]); \
	if ((g) >= 2 && (g) <= 17) \
		m[((g) + 2) & 3] = _mm_xor_si128(m[((g) + 2) & 3], m[(g) & 3]); \
} while (0)

__attribute__((target("sha,ssse3,sse4.1")))
static void
blocks_shani(uint32_t h[5], const unsigned char *p, size_t n)
{
	const __m128i swap = _mm_set_epi64x(0x0001020304050607LL,
	    0x08090a0b0c0d0e0fLL);
	__m128i abcd, abcd0, e0, e[2], m[4];
	int i;

	abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1b);
	e[0] = _mm_set_epi32((int)h[4], 0, 0, 0);
	for (; n > 0; n--, p += 64) {
		abcd0 = abcd;
		e0 = e[0];
		for (i = 0; i < 4; i++)
			m[i] = _mm_shuffle_epi8(_mm_loadu_si128(
			    (const __m128i *)(p + 16 * i)), swap);
		GROUP(0); GROUP(1); GROUP(2); GROUP(3); GROUP(4);
		GROUP(5); GROUP(6); GROUP(7); GROUP(8); GROUP(9);
		GROUP(10); GROUP(11); GROUP(12); GROUP(13); GROUP(14);
		GROUP(15); GROUP(16); GROUP(17); GROUP(18); GROUP(19);
		e[0] = _mm_sha1nexte_epu32(e[0], e0);
		abcd = _mm_add_epi32(abcd, abcd0);
	}
	_mm_storeu_si128((__m128i *)h, _mm_shuffle_epi32(abcd, 0x1b));
	h[4] = (uint32_t)_mm_extract_epi32(e[0], 3);
}
#undef GROUP
#endif

/* Which compression function: -1 not yet probed, 0 portable, 1 SHA-NI. */
static int use_accel = -1;

static int
probe(void)
{
#ifdef HAVE_SHANI
	unsigned int a, b, c, d;

	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)) &&
	    __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) &&
	    (c & (1u << 9)))
		return 1;
#endif
	return 0;
}

int
wf_sha1_accelerated(int enable)
{
	int accel = __atomic_load_n(&use_accel, __ATOMIC_RELAXED);

	if (accel < 0 || enable >= 0) {
		accel = enable != 0 && probe();
		__atomic_store_n(&use_accel, accel, __ATOMIC_RELAXED);
	}
	return accel;
}

static void
blocks(uint32_t h[5], const unsigned char *p, size_t n)
{
	int accel = __atomic_load_n(&use_accel, __ATOMIC_RELAXED);

	if (accel < 0)
		accel = wf_sha1_accelerated(-1);
#ifdef HAVE_SHANI
	if (accel) {
		blocks_shani(h, p, n);
		return;
	}
#endif
	blocks_c(h, p, n);
}

void
wf_sha1_init(struct wf_sha1 *c)
{
	c->h[0] = 0x67452301;
	c->h[1] = 0xefcdab89;
	c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476;
	c->h[4] = 0xc3d2e1f0;
	c->len = 0;
	c->nbuf = 0;
}

void
wf_sha1_update(struct wf_sha1 *c, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t take;

	c->len += len;
	if (c->nbuf > 0) {
		take = 64 - c->nbuf < len ? 64 - c->nbuf : len;
		memcpy(c->buf + c->nbuf, p, take);
		c->nbuf += take;
		p += take;
		len -= take;
		if (c->nbuf < 64)
			return;
		blocks(c->h, c->buf, 1);
		c->nbuf = 0;
	}
	if (len >= 64) {
		blocks(c->h, p, len / 64);
		p += len / 64 * 64;
		len %= 64;
	}
	memcpy(c->buf, p, len);
	c->nbuf = len;
}

void
wf_sha1_final(unsigned char out[20], struct wf_sha1 *c)
{
	uint64_t bits = c->len * 8;
	unsigned char pad[72];
	size_t n = c->nbuf < 56 ? 56 - c->nbuf : 120 - c->nbuf;
	int i;

	memset(pad, 0, sizeof(pad));
	pad[0] = 0x80;
	for (i = 0; i < 8; i++)
		pad[n + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
	wf_sha1_update(c, pad, n + 8);
	for (i = 0; i < 20; i++)
		out[i] = (unsigned char)(c->h[i / 4] >> (24 - 8 * (i % 4)));
}
