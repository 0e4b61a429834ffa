/*
 * Fuzz lib/change.c: the input is a stream of change requests, as
 * wf-enqueue reads one, checked against the repository of
 * tests/fuzz/common.c (branches main and next) with one memo of trees
 * for the stream, and each again without a repository.  A request
 * taken must have a canonical form that is canonical JSON, hashes to
 * its id, and that wf_change_from_canonical() takes back unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "error.h"
#include "fuzz.h"
#include "json.h"

#define MAX_REQUESTS 16

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_repo();
	return 0;
}

static void
check_taken(const struct wf_change *c)
{
	struct wf_change *again = NULL;
	char *canon;
	json_t *v;
	git_oid id;
	size_t i;

	if (!c->id || !*c->id || strlen(c->id) > WF_CHANGE_ID_MAX ||
	    !c->target || !*c->target)
		fuzz_fail("a request without its id or target");
	if (!c->text || strlen(c->text) != c->text_len)
		fuzz_fail("request '%s': no canonical form", c->id);
	if (!(v = json_loads(c->text, JSON_REJECT_DUPLICATES, NULL)))
		fuzz_fail("request '%s': canonical form is not JSON", c->id);
	if (!(canon = wf_json_canonical(v)) || strcmp(canon, c->text) != 0)
		fuzz_fail("request '%s': canonical form is not canonical",
		    c->id);
	free(canon);
	json_decref(v);
	if (git_odb_hash(&id, c->text, c->text_len, GIT_OBJECT_BLOB) < 0 ||
	    !git_oid_equal(&id, &c->hash))
		fuzz_fail("request '%s': hash is not its form's", c->id);
	for (i = 0; i < c->ndepends; i++)
		if (!c->depends_on[i] || (i > 0 && strcmp(c->depends_on[i - 1],
		    c->depends_on[i]) >= 0))
			fuzz_fail("request '%s': depends_on not sorted", c->id);
	if (c->depends_on[c->ndepends])
		fuzz_fail("request '%s': depends_on not terminated", c->id);
	for (i = 1; i < json_array_size(c->paths); i++)
		if (strcmp(json_string_value(json_array_get(c->paths, i - 1)),
		    json_string_value(json_array_get(c->paths, i))) >= 0)
			fuzz_fail("request '%s': paths not sorted", c->id);
	if (wf_change_from_canonical(&again, c->text, c->paths, &c->hash) < 0)
		fuzz_fail("request '%s': its canonical form is refused: %s",
		    c->id, wf_error_last());
	if (strcmp(again->id, c->id) != 0 ||
	    strcmp(again->target, c->target) != 0 ||
	    again->kind != c->kind || again->priority != c->priority ||
	    again->ndepends != c->ndepends ||
	    strcmp(again->paths_text, c->paths_text) != 0)
		fuzz_fail("request '%s': rebuilt from its form, it differs",
		    c->id);
	wf_change_free(again);
	if (!(v = wf_change_canonical(c)))
		fuzz_fail("wf_change_canonical: out of memory");
	json_decref(v);
}

static void
parse_one(const struct wf_json_doc *doc, git_repository *repo,
    const struct wf_change_opts *opts)
{
	struct wf_change *c = NULL;
	int error;

	error = wf_change_parse(&c, doc, repo, opts);
	if (error < 0) {
		if (c || (error != WF_EINPUT && error != WF_ENOMEM))
			fuzz_fail("wf_change_parse returned %d: %s", error,
			    wf_error_last());
		if (!*wf_error_last())
			fuzz_fail("a request refused without a message");
		fuzz_note("%s: %s", repo ? "refused" : "refused without "
		    "a repository", wf_error_last());
		return;
	}
	if (!c)
		fuzz_fail("wf_change_parse took a request and gave nothing");
	check_taken(c);
	fuzz_note("taken%s: %s", repo ? "" : " without a repository",
	    c->text);
	wf_change_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wf_change_opts opts = WF_CHANGE_OPTS_INIT;
	struct wf_json_reader *r;
	struct wf_json_doc doc;
	unsigned char *raw;
	char *b64;
	size_t len;
	int n = 0;

	/* The base64 of requests reads back as it was. */
	if (!(b64 = wf_change_base64(data, size)))
		fuzz_fail("wf_change_base64: out of memory");
	if (wf_change_unbase64(&raw, &len, b64) < 0 || len != size ||
	    (size && memcmp(raw, data, size) != 0))
		fuzz_fail("base64 does not read back");
	free(raw);
	free(b64);
	if (!(b64 = malloc(size + 1)))
		fuzz_fail("out of memory");
	memcpy(b64, data, size);
	b64[size] = '\0';
	if (wf_change_unbase64(&raw, &len, b64) == 0)
		free(raw);
	free(b64);

	if (wf_change_trees_new(&opts.trees, fuzz_repo()) < 0)
		fuzz_fail("wf_change_trees_new: out of memory");
	if (wf_json_reader_fdopen(&r, fuzz_fd(data, size), "<fuzz>") < 0)
		fuzz_fail("wf_json_reader_fdopen: %s", wf_error_last());
	while (n++ < MAX_REQUESTS && wf_json_reader_next(&doc, r) > 0) {
		parse_one(&doc, fuzz_repo(), &opts);
		parse_one(&doc, NULL, NULL);
		json_decref(doc.value);
	}
	wf_json_reader_free(r);
	wf_change_trees_free(opts.trees);
	return 0;
}
