#ifndef WF_SHA1_H
#define WF_SHA1_H

#include <stddef.h>
#include <stdint.h>

/*
 * Plain SHA-1 (FIPS 180-4), for the checksums that end a pack and its
 * index.  Object ids are not computed here: libgit2 computes those,
 * with its collision detection.
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

#endif
