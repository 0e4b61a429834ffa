#ifndef WF_GUARD_H
#define WF_GUARD_H

#include <git2.h>

/*
 * What lands must be safe to check out, on every platform git protects.
 * wf_guard_tree() looks at the tree `new_tree` a change makes of
 * `old_tree` (NULL: the empty tree), whatever the kind of the change,
 * and refuses it when:
 *
 *  - a path it adds, or whose mode it changes, fails
 *    wf_path_problem_mode() (git's rules for names, with
 *    core.protectNTFS and core.protectHFS, and the length a checkout
 *    can hold);
 *  - it adds, changes or removes a symbolic link, and a link of the
 *    resulting tree, resolved within that tree (following the other
 *    links on its way, and ".." after them, as the kernel does), is
 *    absolute, leaves the tree, goes through a name for ".git", or
 *    does not end within 40 links; a link the change leaves alone that
 *    resolved the same way before is not held against it;
 *  - a ".gitmodules" it writes is one git fsck refuses: a submodule
 *    name with a ".." component, a url or path that looks like an
 *    option, an "update" that runs a command, or text git cannot read
 *    as configuration.
 *
 * Returns 0 when it is safe; 1 when it is not, with *why (malloc'ed)
 * naming the path and the reason; WF_EOS or WF_ENOMEM when a tree or
 * blob cannot be read.
 */
int wf_guard_tree(char **why, git_repository *repo, const git_oid *old_tree,
    const git_oid *new_tree);

#endif
