/*
 * Fuzz lib/patch_parse.c, lib/patch.c and lib/patch_id.c: parse the
 * input as a patch, check what the parser built, take its patch ids,
 * and place it on the tree of fuzz_base (tests/fuzz/common.c) as
 * wf-apply does: with no fuzz, then, where it does not apply, with a
 * fuzz of 1 and 2.  The objects it writes stay in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cherry.h"
#include "error.h"
#include "fuzz.h"
#include "pack.h"
#include "patch.h"

static struct wf_pack *pack;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (wf_pack_attach(&pack, fuzz_repo()) < 0)
		fuzz_fail("wf_pack_attach: %s", wf_error_last());
	return 0;
}

static void
check_parsed(const struct wf_patch *p)
{
	const char *start = p->text, *end = p->text + p->len;
	size_t i, h, l;

	for (i = 0; i < p->nfiles; i++) {
		const struct wf_patch_file *f = &p->files[i];

		if (!f->old_path && !f->new_path)
			fuzz_fail("file %zu has no path", i);
		if ((f->status == WF_PATCH_ADDED) != !f->old_path ||
		    (f->status == WF_PATCH_DELETED) != !f->new_path)
			fuzz_fail("file %zu: status %d with paths %s, %s", i,
			    (int)f->status, f->old_path ? f->old_path : "-",
			    f->new_path ? f->new_path : "-");
		if (strlen(f->old_id) > GIT_OID_HEXSZ ||
		    strlen(f->new_id) > GIT_OID_HEXSZ)
			fuzz_fail("file %zu: ids too long", i);
		for (h = 0; h < f->nhunks; h++) {
			const struct wf_patch_hunk *k = &f->hunks[h];

			if (k->leading + k->trailing > k->nlines)
				fuzz_fail("file %zu hunk %zu: %zu + %zu context "
				    "lines of %zu", i, h, k->leading,
				    k->trailing, k->nlines);
			for (l = 0; l < k->nlines; l++) {
				const struct wf_patch_line *ln = &k->lines[l];

				if (ln->origin != ' ' && ln->origin != '-' &&
				    ln->origin != '+')
					fuzz_fail("line origin %d",
					    ln->origin);
				if (ln->len && (ln->ptr < start ||
				    ln->ptr > end || ln->len >
				    (size_t)(end - ln->ptr)))
					fuzz_fail("line outside the text");
			}
		}
		if (f->forward.kind == WF_PATCH_BINARY_NONE &&
		    f->forward.len != 0)
			fuzz_fail("binary data without a kind");
	}
}

static void
apply(const struct wf_patch *p)
{
	struct wf_patch_opts o = WF_PATCH_OPTS_INIT;
	git_tree *t;
	git_oid id;
	int error;

	for (o.fuzz = 0; o.fuzz <= 2; o.fuzz++) {
		error = wf_patch_apply(&id, fuzz_repo(), fuzz_base_tree(), p,
		    &o);
		if (error == 0) {
			if (git_tree_lookup(&t, fuzz_repo(), &id) < 0)
				fuzz_fail("the new tree cannot be read");
			git_tree_free(t);
			fuzz_note("applied with fuzz %u: tree %s", o.fuzz,
			    git_oid_tostr_s(&id));
			break;
		}
		if (error != WF_ECONFLICT && error != WF_EINPUT &&
		    error != WF_EOS)
			fuzz_fail("wf_patch_apply returned %d: %s", error,
			    wf_error_last());
		if (!*wf_error_last())
			fuzz_fail("wf_patch_apply failed without a message");
		fuzz_note("fuzz %u: %s", o.fuzz, wf_error_last());
		if (error != WF_ECONFLICT)
			break;
	}
	wf_pack_discard(pack);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wf_patch *p = NULL;
	git_oid id;
	int error;

	wf_patch_id_text(&id, (const char *)data, size, 0);
	wf_patch_id_text(&id, (const char *)data, size, WF_PATCH_ID_NO_SCORE);
	error = wf_patch_parse(&p, (const char *)data, size);
	if (error < 0) {
		if (p || (error != WF_EINPUT && error != WF_ENOMEM))
			fuzz_fail("wf_patch_parse returned %d", error);
		/* No text this small needs that much: a size believed. */
		if (error == WF_ENOMEM && size < (1u << 20))
			fuzz_fail("out of memory parsing %zu bytes", size);
		fuzz_note("not parsed: %s", wf_error_last());
		return 0;
	}
	if (!p || !p->text || p->len != size || p->text[size] != '\0')
		fuzz_fail("the parsed patch does not hold the text");
	check_parsed(p);
	if (p->nfiles > 0) {
		wf_patch_id(&id, p);
		wf_cherry_patch_id(&id, p);
		apply(p);
	}
	wf_patch_free(p);
	return 0;
}
