#ifndef WF_SHA1_H
#define WF_SHA1_H

#include <stddef.h>
#include <stdint.h>

/*
 * Plain SHA-1 (FIPS 180-4), with the x86 SHA extensions when the CPU
 * has them: the checksums that end a pack and its index, and the ids
 * wf_hash_buf() gives content it checks (lib/hash.c), and the ids of
 * the trees wf_pack_write() stores (lib/pack.h; a tree already in the
 * repository under the same id is compared byte for byte).  Blobs and
 * commits written into a repository are hashed by libgit2, with its
 * collision detection.  A context is a plain value: a copy made after a
 * whole number of 64-byte blocks resumes the hash from there.
 */
struct wf_sha1 {
	uint32_t h[5];
	uint64_t len;		/* bytes hashed so far */
	unsigned char buf[64];
	size_t nbuf;
};

/* Start a new hash. */
void wf_sha1_init(struct wf_sha1 *c);

/* Hash data[0..len) more. */
void wf_sha1_update(struct wf_sha1 *c, const void *data, size_t len);

/* Finish: the 20-byte digest into out; `c` must be initialised again. */
void wf_sha1_final(unsigned char out[20], struct wf_sha1 *c);

/*
 * Which implementation hashes: with `enable` 0 the portable one from
 * now on, with 1 the SHA extensions when the CPU has them, with -1 as
 * it is.  Returns 1 when the SHA extensions are in use.  For tests and
 * benchmarks; the default is the fastest.
 */
int wf_sha1_accelerated(int enable);

#endif
