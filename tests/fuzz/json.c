/*
 * Fuzz lib/json.c: the stream reader, its fast parser, the writer and
 * the locating of paths in source text.
 *
 * The input is a stream of JSON values.  It is read twice, once from a
 * memory file and once through a pipe filled a few bytes at a time;
 * both readings must give the same values, places and error.  Each
 * value must survive wf_json_fast_parse() against jansson,
 * wf_json_dump() against json_dumps() and wf_json_canonical(), and the
 * locating of every path in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "error.h"
#include "fuzz.h"
#include "json.h"

#define MAX_VALUES 64

struct reading {
	char *canon[MAX_VALUES];
	unsigned long line[MAX_VALUES], col[MAX_VALUES];
	size_t len[MAX_VALUES];
	int n;
	int error;
	char msg[1024];
};

static void check_value(const struct wf_json_doc *doc);

static void
read_all(struct reading *out, int fd, int check)
{
	struct wf_json_reader *r;
	struct wf_json_doc doc;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (wf_json_reader_fdopen(&r, fd, "<fuzz>") < 0)
		fuzz_fail("wf_json_reader_fdopen: %s", wf_error_last());
	while (out->n < MAX_VALUES && (rc = wf_json_reader_next(&doc, r)) > 0) {
		if (!doc.text || doc.len == 0 || doc.line == 0 || doc.col == 0)
			fuzz_fail("value %d without its text or place", out->n);
		if (check)
			check_value(&doc);
		if (!(out->canon[out->n] = wf_json_canonical(doc.value)))
			fuzz_fail("wf_json_canonical: out of memory");
		out->line[out->n] = doc.line;
		out->col[out->n] = doc.col;
		out->len[out->n] = doc.len;
		out->n++;
		json_decref(doc.value);
	}
	if (out->n < MAX_VALUES && rc < 0) {
		out->error = rc;
		snprintf(out->msg, sizeof(out->msg), "%s", wf_error_last());
		/* Errors are sticky, with the same message. */
		if (wf_json_reader_next(&doc, r) != rc ||
		    strcmp(out->msg, wf_error_last()) != 0)
			fuzz_fail("error not sticky: '%s' then '%s'", out->msg,
			    wf_error_last());
	}
	wf_json_reader_free(r);
}

static void
reading_release(struct reading *r)
{
	int i;

	for (i = 0; i < r->n; i++)
		free(r->canon[i]);
}

/* wf_json_dump() writes what jansson writes. */
static void
check_dump(const json_t *v)
{
	char *mine = NULL, *theirs, *canon;
	size_t len;

	if (wf_json_dump(&mine, &len, v, 0) < 0)
		fuzz_fail("wf_json_dump: %s", wf_error_last());
	theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!theirs || strlen(theirs) != len || strcmp(mine, theirs) != 0)
		fuzz_fail("wf_json_dump '%s', json_dumps '%s'", mine,
		    theirs ? theirs : "(null)");
	free(theirs);
	free(mine);
	if (wf_json_dump(&mine, &len, v, WF_JSON_DUMP_SORT_KEYS) < 0)
		fuzz_fail("wf_json_dump: %s", wf_error_last());
	canon = wf_json_canonical(v);
	if (!canon || strcmp(canon, mine) != 0)
		fuzz_fail("sorted dump '%s', canonical '%s'", mine,
		    canon ? canon : "(null)");
	free(canon);
	free(mine);
}

/* Every path of the value is found in its text, at a place after it. */
static void
check_paths(const struct wf_json_doc *doc, struct wf_jpath *p, json_t *v,
    int *budget)
{
	unsigned long line, col;
	char buf[64], big[512];
	const char *key;
	json_t *item;
	size_t i;

	if ((*budget)-- <= 0)
		return;
	if (p->depth <= WF_JPATH_MAX) {
		if (wf_json_locate(&line, &col, doc, p) < 0)
			fuzz_fail("path '%s' not located",
			    wf_jpath_format(big, sizeof(big), p));
		if (line < doc->line || (line == doc->line && col < doc->col))
			fuzz_fail("path located before its value");
		wf_jpath_format(buf, sizeof(buf), p);
		if (strlen(buf) >= sizeof(buf))
			fuzz_fail("wf_jpath_format overflowed");
		if (wf_json_error(doc, p, "fuzz %d", p->depth) != WF_EINPUT)
			fuzz_fail("wf_json_error did not return WF_EINPUT");
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, item) {
			wf_jpath_push_key(p, key);
			check_paths(doc, p, item, budget);
			wf_jpath_pop(p);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			wf_jpath_push_index(p, i);
			check_paths(doc, p, item, budget);
			wf_jpath_pop(p);
		}
	}
}

/* The validation helpers take any value without harm. */
static void
check_helpers(const struct wf_json_doc *doc, json_t *v)
{
	static const char *const allowed[] = { "id", "kind", "paths", NULL };
	struct wf_jpath p = WF_JPATH_INIT;
	const char **strs = NULL, *s;
	const char *key;
	json_t *item;
	int64_t n;
	size_t cnt;
	int b;

	wf_json_check_object(doc, &p, v, allowed);
	if (!json_is_object(v))
		return;
	json_object_foreach(v, key, item) {
		wf_jpath_push_key(&p, key);
		wf_json_check_string(&s, doc, &p, item);
		wf_json_check_int(&n, doc, &p, item);
		wf_json_check_bool(&b, doc, &p, item);
		if (wf_json_check_strings(&strs, &cnt, doc, &p, item) == 0) {
			if (strs[cnt] != NULL)
				fuzz_fail("strings not NULL-terminated");
			free(strs);
		}
		wf_jpath_pop(&p);
	}
}

static void
check_value(const struct wf_json_doc *doc)
{
	struct wf_jpath p = WF_JPATH_INIT;
	int budget = 256;

	fuzz_check_fast(doc->text, doc->len);
	check_dump(doc->value);
	check_paths(doc, &p, doc->value, &budget);
	check_helpers(doc, doc->value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reading whole, cut;
	uint32_t seed = 0;
	size_t i;
	int fd, k;

	fuzz_check_fast((const char *)data, size);
	read_all(&whole, fuzz_fd(data, size), 1);
	for (i = 0; i < size && i < 64; i++)
		seed = seed * 31 + data[i];
	fd = fuzz_pipe(data, size, seed ^ (uint32_t)size);
	read_all(&cut, fd, 0);
	close(fd);
	fuzz_pipe_join();
	if (whole.n != cut.n || whole.error != cut.error ||
	    strcmp(whole.msg, cut.msg) != 0)
		fuzz_fail("a file gives %d values ('%s'), a pipe %d ('%s')",
		    whole.n, whole.msg, cut.n, cut.msg);
	for (k = 0; k < whole.n; k++)
		if (strcmp(whole.canon[k], cut.canon[k]) != 0 ||
		    whole.line[k] != cut.line[k] || whole.col[k] != cut.col[k] ||
		    whole.len[k] != cut.len[k])
			fuzz_fail("value %d differs between file and pipe", k);
	reading_release(&whole);
	reading_release(&cut);
	return 0;
}
