#ifndef WF_PATCH_H
#define WF_PATCH_H

#include <stddef.h>

#include <git2.h>

/*
 * Patches, parsed and applied as "git apply --index" does (see the top
 * of lib/patch.c for why wf parses them itself).  The text is read by
 * git's rules: "diff --git" headers with their extended lines, plain
 * unified diffs (names by -p1, or -p0 when both names have no
 * directory, timestamps cut off), C-quoted names, hunks, "\ No newline
 * at end of file", "GIT binary patch" literal and delta data, and
 * anything around them (mail headers, commentary) skipped.  Hunks are
 * placed as git places them: the position the hunk names first, then
 * the nearest offset (one line after, one before, two after, ...),
 * never over lines an earlier hunk of the same file wrote, no fuzz
 * unless asked for.  Text is compared byte for byte (CRLF stays CRLF).
 * The files of one patch are applied as git does: renames and copies
 * read the original tree, other changes see the results of earlier
 * ones, deletions happen before creations (so a swap, a type change
 * written as a deletion and an addition, or a directory replaced by a
 * file apply in any order), a mode is kept unless the patch changes
 * it, and submodules (mode 160000) are changed through their
 * "Subproject commit <id>" text.
 */

enum wf_patch_status {
	WF_PATCH_MODIFIED,
	WF_PATCH_ADDED,
	WF_PATCH_DELETED,
	WF_PATCH_RENAMED,
	WF_PATCH_COPIED
};

/* One line of a hunk, pointing into the patch's copy of the text. */
struct wf_patch_line {
	char origin;		/* ' ' context, '-' removed, '+' added */
	const char *ptr;	/* the line without its origin: may hold NULs */
	size_t len;		/* with its newline, unless the patch says
				 * "\ No newline at end of file" after it */
};

struct wf_patch_hunk {
	unsigned long old_start, old_lines, new_start, new_lines;
	size_t leading, trailing;	/* context before the first change
					 * and after the last, as git counts */
	struct wf_patch_line *lines;
	size_t nlines;
};

enum wf_patch_binary_kind {
	WF_PATCH_BINARY_NONE,	/* no data ("Binary files ... differ") */
	WF_PATCH_BINARY_LITERAL,
	WF_PATCH_BINARY_DELTA
};

struct wf_patch_binary {
	enum wf_patch_binary_kind kind;
	unsigned char *data;	/* inflated: the content, or a git delta */
	size_t len;
};

/* One file of a patch. */
struct wf_patch_file {
	/*
	 * Paths as raw bytes (unquoted, with -p stripped), NUL-terminated;
	 * they may hold any other byte, UTF-8 or not.  old_path is NULL
	 * for an added file, new_path for a deleted one; both are set
	 * otherwise (equal unless renamed or copied).
	 */
	char *old_path, *new_path;
	/* The modes the patch names ("index" line included); 0 if none. */
	unsigned old_mode, new_mode;
	enum wf_patch_status status;
	/*
	 * A plain diff that adds lines to nothing (one "@@ -0,0" hunk):
	 * git takes it as a new file when old_path is not in the tree.
	 */
	int maybe_new;
	int is_binary;
	/* The abbreviated ids of the "index" line; "" when there is none. */
	char old_id[GIT_OID_HEXSZ + 1], new_id[GIT_OID_HEXSZ + 1];
	struct wf_patch_hunk *hunks;
	size_t nhunks;
	struct wf_patch_binary forward, reverse;	/* binary data */
};

/* A parsed patch: its files, in the order of the text. */
struct wf_patch {
	struct wf_patch_file *files;
	size_t nfiles;
	char *text;		/* a copy of the text, NUL-terminated */
	size_t len;
};

struct wf_patch_opts {
	/*
	 * Context lines a hunk may drop from each end to find its place
	 * (GNU patch's fuzz); 0, the default, as git apply.
	 */
	unsigned fuzz;
};

#define WF_PATCH_OPTS_INIT { 0 }

/*
 * Parse the diff text[0..len) (which may hold NUL bytes): git diff
 * output (with --binary data), git format-patch mails or plain
 * unified diffs.  *out is the caller's to wf_patch_free(); NULL on
 * error: WF_EINPUT with git's reason and the line ("corrupt patch at
 * line 12"), or WF_ENOMEM.  A text without any file diff parses to a
 * patch of no files.
 */
int wf_patch_parse(struct wf_patch **out, const char *text, size_t len);

/* Free a parsed patch; no-op on NULL. */
void wf_patch_free(struct wf_patch *p);

/*
 * Apply `p` to `base` and write the resulting blobs and tree into the
 * object database of `repo` (attach a wf_pack first to keep them in
 * memory); *out receives the new tree's id.  `opts` may be NULL.
 * WF_ECONFLICT when the patch does not apply, the message naming the
 * file and, for text, the hunk ("file 'x': hunk #2 (@@ -3,4 +3,5 @@)
 * does not apply"); WF_EINPUT for a patch that cannot apply to any tree
 * (no files, binary without data, a path wf_path_problem() refuses);
 * WF_EOS when objects cannot be read or written.  Blobs written before
 * a failure stay in the object database (unreferenced); nothing else
 * changes.
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

/*
 * The stable patch id of `p` into *out: what "git patch-id --stable"
 * prints for its text (the sum of one SHA-1 per file over its lines
 * with whitespace removed, line numbers and "index" lines left out),
 * so the same change gets the same id whatever its offsets, file order
 * or whitespace.  A text holding several commits (an mbox) gets the
 * sum of their ids.  Returns 0; WF_EINPUT when the patch changes no
 * file.
 */
int wf_patch_id(git_oid *out, const struct wf_patch *p);

/*
 * The same over any text.  With WF_PATCH_ID_NO_SCORE, the "similarity
 * index" and "dissimilarity index" lines of renames and copies are left
 * out: git hashes them, but each diff tool scores a rename its own way
 * (libgit2's differs from git's), so a change matched across tools is
 * best matched without them.
 */
#define WF_PATCH_ID_NO_SCORE	1u
int wf_patch_id_text(git_oid *out, const char *text, size_t len,
    unsigned flags);

#endif
