#ifndef WF_TREE_H
#define WF_TREE_H

#include <stddef.h>

#include <git2.h>

/*
 * Trees read and edited in the form git stores them: an entry is found
 * by scanning the raw object, and an edited tree is written by copying
 * the raw entries it keeps.  libgit2's parser and tree builder, which
 * allocate every entry and format each with printf, cost ten times as
 * much for the one-entry edits a change request makes, and a batch
 * makes thousands of them.
 */

/* One edit: put a blob (or a link, or a submodule) at a path, or remove it. */
struct wf_tree_edit {
	const char *path;	/* '/'-separated, relative, no empty component */
	int remove;		/* remove what is at `path` (nothing: no-op) */
	git_filemode_t mode;	/* otherwise: the mode, not a tree */
	git_oid id;		/* and the object */
};

/*
 * Apply `edits[0..n)` to the tree `base` (NULL: the empty tree) and
 * write each tree that changes into the object database of `repo`;
 * *out is the new root tree.  Edits may come in any order; when two
 * name the same path, the later one wins.  Directories are created as
 * needed, and a directory left empty is removed, as git does; an entry
 * that was a file and gets entries below it becomes a directory only
 * when the same edits remove the file.  WF_ECONFLICT when a path goes
 * through a file that stays, or puts a file where a directory gets
 * entries; WF_EINPUT for an invalid path or mode; WF_EOS when a tree
 * cannot be read or written.  Trees written before a failure stay in
 * the object database, unreferenced.
 */
int wf_tree_update(git_oid *out, git_repository *repo, const git_oid *base,
    const struct wf_tree_edit *edits, size_t n);

/* An entry of a tree. */
struct wf_tree_entry {
	git_filemode_t mode;
	git_oid id;
};

/*
 * The entry at `path` in the tree `tree` into *out.  WF_ENOTFOUND when
 * there is none (a component missing, or not a directory); WF_EOS when
 * a tree cannot be read.
 */
int wf_tree_lookup(struct wf_tree_entry *out, git_repository *repo,
    const git_oid *tree, const char *path);

#endif
