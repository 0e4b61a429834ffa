#ifndef WF_HASH_H
#define WF_HASH_H

#include <stddef.h>

#include <git2.h>
#include <jansson.h>

/*
 * Content ids are git object ids: the blob id of the bytes (as
 * `git hash-object` computes it), so every id wf derives is one git
 * users can reproduce.
 */

/* The blob id of buf[0..len). */
int wf_hash_buf(git_oid *out, const void *buf, size_t len);

/* The blob id of the canonical form of v (compact, keys sorted). */
int wf_hash_json(git_oid *out, const json_t *v);

/* Hex form of an id into out (GIT_OID_HEXSZ + 1 bytes). */
char *wf_hash_hex(char *out, const git_oid *id);

#endif
