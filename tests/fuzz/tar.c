/*
 * Fuzz tar input: lib/tarball.c's reader of JSON Lines archives (what
 * wf-queue restore reads) and lib/change.c's reader of file trees
 * (wf-enqueue --tar), whose files are then checked as a request of
 * kind "files" against the repository of tests/fuzz/common.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "change.h"
#include "error.h"
#include "fuzz.h"
#include "json.h"
#include "tarball.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_repo();
	return 0;
}

struct lines {
	char member[4096];
	size_t lineno;
	size_t count;
};

static int
on_line(void *ctx, const char *member, size_t lineno, const char *line,
    size_t len)
{
	struct lines *l = ctx;

	/* Each member counts from 1; two members may have one name. */
	if (strcmp(member, l->member) != 0 || lineno == 1) {
		snprintf(l->member, sizeof(l->member), "%s", member);
		l->lineno = 0;
	}
	if (lineno != l->lineno + 1)
		fuzz_fail("member '%s': line %zu after %zu", member, lineno,
		    l->lineno);
	l->lineno = lineno;
	if (memchr(line, '\n', len))
		fuzz_fail("member '%s': line %zu holds a newline", member,
		    lineno);
	/* The lines are JSON, as wf-queue restore reads them. */
	fuzz_check_fast(line, len);
	/* A negative answer stops the reading and is returned. */
	if (++l->count == 1000)
		return WF_ECONFLICT;
	return 0;
}

static void
read_lines(void)
{
	struct lines l;
	int error;

	memset(&l, 0, sizeof(l));
	error = wf_tarball_read(fuzz_path(), on_line, &l);
	if (error < 0 && error != WF_EINPUT && error != WF_ENOMEM &&
	    !(error == WF_ECONFLICT && l.count == 1000))
		fuzz_fail("wf_tarball_read returned %d: %s", error,
		    wf_error_last());
	if (error < 0 && !*wf_error_last())
		fuzz_fail("wf_tarball_read failed without a message");
}

/* The files as a request: what wf-enqueue --tar builds. */
static void
as_request(json_t *files)
{
	struct wf_json_doc doc;
	struct wf_change *c = NULL;
	int error;

	memset(&doc, 0, sizeof(doc));
	doc.value = json_pack("{s:s, s:s, s:s, s:O}", "id", "fuzz/1",
	    "target", "main", "kind", "files", "files", files);
	if (!doc.value)
		fuzz_fail("json_pack: out of memory");
	doc.name = "<tar>";
	doc.line = doc.col = 1;
	error = wf_change_parse(&c, &doc, fuzz_repo(), NULL);
	if (error < 0 && error != WF_EINPUT && error != WF_ENOMEM)
		fuzz_fail("wf_change_parse returned %d: %s", error,
		    wf_error_last());
	wf_change_free(c);
	json_decref(doc.value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *files = NULL;
	int fd, error;

	fd = fuzz_fd(data, size);
	read_lines();
	if (lseek(fd, 0, SEEK_SET) < 0)
		fuzz_fail("lseek failed");
	error = wf_change_files_from_tar(&files, fd, "<tar>",
	    size & 1 ? "pre/fix" : NULL, NULL);
	if (error < 0) {
		if (files || (error != WF_EINPUT && error != WF_ENOMEM))
			fuzz_fail("wf_change_files_from_tar returned %d: %s",
			    error, wf_error_last());
		return 0;
	}
	if (!json_is_array(files))
		fuzz_fail("wf_change_files_from_tar gave no array");
	if (json_array_size(files) > 0)
		as_request(files);
	json_decref(files);
	return 0;
}
