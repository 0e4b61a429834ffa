#ifndef WF_PATCH_H
#define WF_PATCH_H

#include <stddef.h>

#include <git2.h>

/*
 * Patches: parsed by libgit2 (git_diff_from_buffer), placed by wf.
 * libgit2's own git_apply only takes a hunk at its exact line, so the
 * placement here is git apply's: the position the hunk names first, then
 * the nearest offset (one line after, one before, two after, ...), never
 * over lines an earlier hunk of the same file wrote, no fuzz unless asked
 * for.  Text is compared byte for byte (CRLF stays CRLF, "\ No newline at
 * end of file" is honoured); modes are kept unless the patch names them;
 * renames, copies, mode changes, symbolic links and binary patches
 * (literal and delta, checked against their full "index" ids) apply as
 * git applies them.  A new file over an existing one, a deletion that
 * would leave content, and a preimage that is not there are refused.
 */
struct wf_patch;

struct wf_patch_opts {
	/*
	 * Context lines a hunk may drop from each end to find its place
	 * (GNU patch's fuzz); 0, the default, as git apply.
	 */
	unsigned fuzz;
};

#define WF_PATCH_OPTS_INIT { 0 }

/*
 * Parse the diff text[0..len): "diff --git" (with --binary data),
 * git format-patch output or a plain unified diff (given the header git
 * would write).  *out is the caller's to wf_patch_free(); NULL on error:
 * WF_EINPUT with the reason (a name that cannot be read, a truncated
 * header, "patch does not parse: ..."), or WF_ENOMEM.
 */
int wf_patch_parse(struct wf_patch **out, const char *text, size_t len);

/* Free a parsed patch; no-op on NULL. */
void wf_patch_free(struct wf_patch *p);

/*
 * The parsed diff, borrowed: valid until wf_patch_free().  For checks
 * that read the deltas (kinds, paths, modes) without applying them.
 */
git_diff *wf_patch_diff(const struct wf_patch *p);

/*
 * Apply `p` to `base` and write the resulting blobs and tree into the
 * object database of `repo` (attach a wf_pack first to keep them in
 * memory); *out receives the new tree's id.  `opts` may be NULL.
 * WF_ECONFLICT when the patch does not apply, the message naming the
 * file and, for text, the hunk ("file 'x': hunk #2 (@@ -3,4 +3,5 @@)
 * does not apply"); WF_EINPUT for a patch that cannot apply to any tree
 * (binary without data, a bad path); WF_EOS when objects cannot be read
 * or written.  Blobs written before a failure stay in the object
 * database (unreferenced); nothing else changes.
 */
int wf_patch_apply(git_oid *out, git_repository *repo, git_tree *base,
    const struct wf_patch *p, const struct wf_patch_opts *opts);

/*
 * As wf_patch_apply(), to the tree whose id is `base`: for callers that
 * have the id and would only look the tree up to pass it.
 */
int wf_patch_apply_id(git_oid *out, git_repository *repo,
    const git_oid *base, const struct wf_patch *p,
    const struct wf_patch_opts *opts);

#endif
