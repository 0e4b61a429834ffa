/*
 * Fuzz lib/workflow.c, lib/step.c and lib/catalog.c.  The input is a
 * stream of JSON values: each is parsed as a catalog definition and as
 * a plan's candidate, and all of them, one file each, are loaded as a
 * catalog (names unique, dependencies known, no cycle).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "error.h"
#include "fuzz.h"
#include "git.h"
#include "json.h"
#include "step.h"
#include "workflow.h"

#define MAX_FILES 16

static char dir[4096];

static void
remove_dir(void)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: cannot remove '%s'\n", dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	if (wf_git_init() < 0)
		fuzz_fail("%s", wf_error_last());
	snprintf(dir, sizeof(dir), "%s/wf-fuzz-catalog.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		fuzz_fail("mkdtemp: %s", strerror(errno));
	atexit(remove_dir);
	return 0;
}

/* Durations in any string of the value. */
static void
durations(const json_t *v, int *budget)
{
	const char *key;
	json_t *item;
	int64_t ms;
	size_t i;

	if ((*budget)-- <= 0)
		return;
	if (json_is_string(v)) {
		if (wf_duration_parse(&ms, json_string_value(v)) == 0 && ms < 0)
			fuzz_fail("negative duration '%s'",
			    json_string_value(v));
		wf_workflow_name_valid(json_string_value(v));
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, item)
			durations(item, budget);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item)
			durations(item, budget);
	}
}

static void
parse_as(const struct wf_json_doc *doc, enum wf_workflow_kind kind)
{
	struct wf_jpath path = WF_JPATH_INIT;
	struct wf_workflow *w = NULL;
	size_t i;
	int error;

	error = wf_workflow_parse(&w, doc, &path, doc->value, kind);
	if (error < 0) {
		if (w || (error != WF_EINPUT && error != WF_ENOMEM))
			fuzz_fail("wf_workflow_parse returned %d: %s", error,
			    wf_error_last());
		return;
	}
	if (!w || wf_workflow_name_valid(w->name) < 0)
		fuzz_fail("a workflow taken with a bad name");
	for (i = 0; i < w->nsteps; i++)
		if (!w->stepv[i].id || w->stepv[i].retry.attempts < 1 ||
		    w->stepv[i].timeout_ms < 0)
			fuzz_fail("step %zu of '%s' out of its contract", i,
			    w->name);
	wf_workflow_free(w);
}

static void
check_catalog(const struct wf_catalog *c)
{
	size_t i, j, k;

	for (i = 0; i < c->n; i++) {
		const struct wf_workflow *w = c->entries[i].workflow;

		if (i > 0 && strcmp(c->entries[i - 1].workflow->name,
		    w->name) >= 0)
			fuzz_fail("catalog not sorted by name");
		if (wf_catalog_find(&k, c, w->name) < 0 || k != i)
			fuzz_fail("catalog: '%s' not found", w->name);
		for (j = 0; j < w->ndepends_on; j++)
			if (c->entries[i].deps[j] >= c->n)
				fuzz_fail("catalog: dependency out of range");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wf_json_reader *r;
	struct wf_json_doc doc;
	struct wf_catalog *c = NULL;
	char file[4200];
	int n = 0, i, fd, error, budget = 512;

	if (wf_json_reader_fdopen(&r, fuzz_fd(data, size), "<fuzz>") < 0)
		fuzz_fail("wf_json_reader_fdopen: %s", wf_error_last());
	while (n < MAX_FILES && wf_json_reader_next(&doc, r) > 0) {
		parse_as(&doc, WF_WORKFLOW_DEFINITION);
		parse_as(&doc, WF_WORKFLOW_CANDIDATE);
		durations(doc.value, &budget);
		snprintf(file, sizeof(file), "%s/%02d.json", dir, n++);
		if ((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
		    write(fd, doc.text, doc.len) != (ssize_t)doc.len ||
		    close(fd) < 0)
			fuzz_fail("cannot write '%s': %s", file,
			    strerror(errno));
		json_decref(doc.value);
	}
	wf_json_reader_free(r);
	error = wf_catalog_load(&c, dir);
	if (error < 0 && (c || (error != WF_EINPUT && error != WF_ENOMEM)))
		fuzz_fail("wf_catalog_load returned %d: %s", error,
		    wf_error_last());
	if (c) {
		if (c->n != (size_t)n)
			fuzz_fail("catalog of %d files has %zu entries", n,
			    c->n);
		check_catalog(c);
	}
	wf_catalog_free(c);
	for (i = 0; i < n; i++) {
		snprintf(file, sizeof(file), "%s/%02d.json", dir, i);
		unlink(file);
	}
	return 0;
}
