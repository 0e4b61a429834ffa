#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hash.h"
#include "json.h"

int
wf_hash_buf(git_oid *out, const void *buf, size_t len)
{
	if (git_odb_hash(out, buf, len, GIT_OBJECT_BLOB) < 0)
		return wf_error_set_git(WF_ERROR, "cannot hash content");
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

char *
wf_hash_hex(char *out, const git_oid *id)
{
	return git_oid_tostr(out, GIT_OID_HEXSZ + 1, id);
}
