#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hash.h"
#include "json.h"
#include "sha1.h"

/*
 * "blob LEN\0" then the bytes, as git hashes a blob.  Plain SHA-1 (with
 * the CPU's SHA extensions when it has them), not libgit2's collision
 * detecting one, which costs three times as much: these ids name what
 * wf checks and stores, and whatever reaches a repository is written
 * by libgit2, which hashes it again with its detection.
 */
int
wf_hash_buf(git_oid *out, const void *buf, size_t len)
{
	struct wf_sha1 c;
	char head[32], *p = head + sizeof(head);
	size_t n = len;

	/* "blob <len>\0", the digits written from the end. */
	*--p = '\0';
	do
		*--p = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	memcpy(p -= 5, "blob ", 5);
	wf_sha1_init(&c);
	wf_sha1_update(&c, p, (size_t)(head + sizeof(head) - p));
	wf_sha1_update(&c, buf, len);
	wf_sha1_final(out->id, &c);
	return 0;
}

int
wf_hash_json(git_oid *out, const json_t *v)
{
	char *s = wf_json_canonical(v);
	int error;

	if (!s)
		return wf_error_oom();
	error = wf_hash_buf(out, s, strlen(s));
	free(s);
	return error;
}

/* As git_oid_tostr() writes it, without libgit2 (wf-proc-receive). */
char *
wf_hash_hex(char *out, const git_oid *id)
{
	static const char hexd[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < GIT_OID_RAWSZ; i++) {
		out[2 * i] = hexd[id->id[i] >> 4];
		out[2 * i + 1] = hexd[id->id[i] & 0xf];
	}
	out[GIT_OID_HEXSZ] = '\0';
	return out;
}
