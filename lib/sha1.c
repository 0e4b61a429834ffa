#include <string.h>

#include "sha1.h"

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void
block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80], a, b, c, d, e, t;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (; i < 80; i++)
		w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
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
		block(c->h, c->buf);
		c->nbuf = 0;
	}
	for (; len >= 64; p += 64, len -= 64)
		block(c->h, p);
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
