#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delta.h"
#include "error.h"

/*
 * Deltas in git's format (the one OFS_DELTA entries of a pack hold): a
 * header with the sizes of the base and the result, then copies from
 * the base and inserted bytes.
 */

/* A size as git's delta header writes it. */
static size_t
put_varint(unsigned char *b, size_t v)
{
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		if (v >>= 7)
			b[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* Copy base[off..off+len) in the delta at b; returns the bytes used. */
static size_t
put_copy(unsigned char *b, size_t off, size_t len)
{
	size_t n = 1, i;
	unsigned char op = 0x80;

	for (i = 0; i < 4; i++)
		if ((off >> (8 * i)) & 0xff) {
			op |= (unsigned char)(1 << i);
			b[n++] = (unsigned char)(off >> (8 * i));
		}
	for (i = 0; i < 3; i++)
		if ((len >> (8 * i)) & 0xff) {
			op |= (unsigned char)(0x10 << i);
			b[n++] = (unsigned char)(len >> (8 * i));
		}
	b[0] = op;
	return n;
}

/*
 * The bytes `b` and `t` share at their heads, and then at their tails
 * (never overlapping the head), compared eight bytes at a time.
 */
static void
common_ends(size_t *headp, size_t *tailp, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen)
{
	size_t head = 0, tail = 0, max = blen < tlen ? blen : tlen;

	while (head + 8 <= max && memcmp(b + head, t + head, 8) == 0)
		head += 8;
	while (head < max && b[head] == t[head])
		head++;
	while (tail + 8 <= max - head &&
	    memcmp(b + blen - tail - 8, t + tlen - tail - 8, 8) == 0)
		tail += 8;
	while (tail < max - head && b[blen - 1 - tail] == t[tlen - 1 - tail])
		tail++;
	*headp = head;
	*tailp = tail;
}

/*
 * A delta that makes `t` from `b`: the common head and tail copied, the
 * middle inserted, which is all an edited tree needs.  *out is a new
 * buffer of *len bytes; NULL (and 0) when it would not be much smaller
 * than `t` itself.
 */
int
wf_delta_tree(unsigned char **out, size_t *len, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen)
{
	size_t head, tail, mid, n = 0, off, chunk;
	unsigned char *d;

	*out = NULL;
	*len = 0;
	/* Eight bytes at a time, then the rest. */
	common_ends(&head, &tail, b, blen, t, tlen);
	mid = tlen - head - tail;
	if (head + tail < tlen / 2)
		return 0;
	/* Headers, copies of at most 64 KiB, inserts of at most 127. */
	if (!(d = malloc(32 + (head / 0x10000 + tail / 0x10000 + 2) * 8 +
	    mid + mid / 127 + 1)))
		return wf_error_oom();
	n += put_varint(d + n, blen);
	n += put_varint(d + n, tlen);
	for (off = 0; off < head; off += chunk) {
		chunk = head - off < 0x10000 ? head - off : 0x10000;
		n += put_copy(d + n, off, chunk == 0x10000 ? 0 : chunk);
	}
	for (off = 0; off < mid; off += chunk) {
		chunk = mid - off < 127 ? mid - off : 127;
		d[n++] = (unsigned char)chunk;
		memcpy(d + n, t + head + off, chunk);
		n += chunk;
	}
	for (off = 0; off < tail; off += chunk) {
		chunk = tail - off < 0x10000 ? tail - off : 0x10000;
		n += put_copy(d + n, blen - tail + off, chunk == 0x10000 ? 0 :
		    chunk);
	}
	*out = d;
	*len = n;
	return 0;
}

/*
 * A delta that makes the blob `t` from the blob `b`, for a file edited
 * in a few places: the common head and tail are copied, and in between
 * each 16-byte block of `t` whose rolling hash names a block of `b`
 * with the same bytes starts a copy, grown both ways as far as the
 * bytes agree; the rest is inserted.  *out is a new buffer of *len
 * bytes; NULL (and 0) when the delta would not be under half of `t`.
 */
#define BLOCK 16
#define HASH_MUL 0x01000193u

struct delta_out {
	unsigned char *d;
	size_t n, cap;
};

/* Room for `need` more bytes within the cap: 0, else -1. */
static int
delta_room(struct delta_out *o, size_t need)
{
	return o->cap - o->n >= need ? 0 : -1;
}

static int
delta_copy(struct delta_out *o, size_t off, size_t len)
{
	size_t chunk;

	for (; len > 0; off += chunk, len -= chunk) {
		chunk = len < 0x10000 ? len : 0x10000;
		if (delta_room(o, 8) < 0)
			return -1;
		o->n += put_copy(o->d + o->n, off, chunk == 0x10000 ? 0 :
		    chunk);
	}
	return 0;
}

static int
delta_insert(struct delta_out *o, const unsigned char *p, size_t len)
{
	size_t chunk;

	for (; len > 0; p += chunk, len -= chunk) {
		chunk = len < 127 ? len : 127;
		if (delta_room(o, chunk + 1) < 0)
			return -1;
		o->d[o->n++] = (unsigned char)chunk;
		memcpy(o->d + o->n, p, chunk);
		o->n += chunk;
	}
	return 0;
}

static uint32_t
block_hash(const unsigned char *p)
{
	uint32_t h = 0;
	size_t i;

	for (i = 0; i < BLOCK; i++)
		h = h * HASH_MUL + p[i];
	return h;
}

int
wf_delta_blob(unsigned char **out, size_t *len, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen)
{
	struct delta_out o;
	uint32_t *slot = NULL, h, top = 1, mask;
	size_t head, tail, tend, bend, nslot, pos, ins, k, i;

	*out = NULL;
	*len = 0;
	/* Offsets in the base are 32 bits, in the delta and in slot[]. */
	if (blen >= UINT32_MAX)
		return 0;
	common_ends(&head, &tail, b, blen, t, tlen);
	tend = tlen - tail;
	bend = blen - tail;
	o.n = 0;
	o.cap = tlen / 2;
	if (o.cap < 64 || !(o.d = malloc(o.cap)))
		return o.cap < 64 ? 0 : wf_error_oom();
	o.n += put_varint(o.d + o.n, blen);
	o.n += put_varint(o.d + o.n, tlen);
	if (delta_copy(&o, 0, head) < 0)
		goto none;
	/* The blocks of the base between head and tail, by hash. */
	for (nslot = 16; nslot < 2 * ((bend - head) / BLOCK + 1); nslot *= 2)
		;
	mask = (uint32_t)(nslot - 1);
	if (bend - head >= BLOCK && tend - head >= BLOCK) {
		if (!(slot = calloc(nslot, sizeof(*slot)))) {
			free(o.d);
			return wf_error_oom();
		}
		for (k = head; k + BLOCK <= bend; k += BLOCK)
			slot[block_hash(b + k) & mask] = (uint32_t)(k + 1);
		for (i = 1; i < BLOCK; i++)
			top *= HASH_MUL;
	}
	ins = pos = head;
	h = slot && pos + BLOCK <= tend ? block_hash(t + pos) : 0;
	while (slot && pos + BLOCK <= tend) {
		uint32_t at = slot[h & mask];
		size_t from, n;

		if (at && memcmp(b + at - 1, t + pos, BLOCK) == 0) {
			from = at - 1;
			n = BLOCK;
			while (pos + n < tend && from + n < blen &&
			    b[from + n] == t[pos + n])
				n++;
			while (pos > ins && from > 0 && b[from - 1] ==
			    t[pos - 1]) {
				pos--;
				from--;
				n++;
			}
			if (delta_insert(&o, t + ins, pos - ins) < 0 ||
			    delta_copy(&o, from, n) < 0)
				goto none;
			pos += n;
			ins = pos;
			if (pos + BLOCK <= tend)
				h = block_hash(t + pos);
			continue;
		}
		if (pos + BLOCK >= tend)
			break;
		h = (h - t[pos] * top) * HASH_MUL + t[pos + BLOCK];
		pos++;
	}
	if (delta_insert(&o, t + ins, tend - ins) < 0 ||
	    delta_copy(&o, bend, tail) < 0)
		goto none;
	free(slot);
	*out = o.d;
	*len = o.n;
	return 0;
none:
	free(slot);
	free(o.d);
	return 0;
}
