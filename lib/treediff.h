#ifndef WF_TREEDIFF_H
#define WF_TREEDIFF_H

#include <git2.h>

/*
 * What differs between two trees, entry by entry.  libgit2's
 * git_diff_tree_to_tree() reports the same (with
 * GIT_DIFF_INCLUDE_TYPECHANGE, without rename detection) but costs about
 * 1.3 ms for a one-file change in a tree of 10,000 files, which is six
 * times what wf-apply spends on the whole change; this walks the
 * entries of both sides in one pass and skips every subtree whose id is
 * unchanged, so it costs one pass over each directory on the changed
 * path (bench/RESULTS.md,
 * "Checking what lands").  tests/check_tree.c compares the two over
 * random pairs of trees.
 */
struct wf_treediff_entry {
	const char *path;	/* full path, '/'-separated */
	unsigned old_mode;	/* 0: added */
	unsigned new_mode;	/* 0: deleted */
	const git_oid *old_id, *new_id;	/* NULL with a 0 mode */
};

/* Return non-zero to stop the walk; that value is returned. */
typedef int (*wf_treediff_cb)(const struct wf_treediff_entry *e,
    void *payload);

/*
 * Call `cb` for each entry that is not a directory and differs between
 * the trees `old_tree` and `new_tree` (NULL: the empty tree): added,
 * deleted, or changed in mode or id.  A directory that becomes a file
 * gives the file as added and each entry below the directory as
 * deleted, and the other way round.  With `dirs` set, each directory
 * that `new_tree` has and `old_tree` has not (as a directory) is given
 * too, with mode 040000, before what is below it.  Order: within a
 * directory, git's tree order.  Returns 0, the callback's non-zero
 * value, or WF_EOS when a tree cannot be read.
 */
int wf_treediff(git_repository *repo, const git_oid *old_tree,
    const git_oid *new_tree, int dirs, wf_treediff_cb cb, void *payload);

#endif
