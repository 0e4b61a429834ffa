#ifndef WF_PATH_H
#define WF_PATH_H

/*
 * The longest name and path wf writes.  A name: what the file systems of
 * Linux, macOS and Windows hold.  A path: what fits, with room for the
 * directory of a checkout, in Linux's PATH_MAX (4096), which the system
 * calls of a checkout take whole.
 */
#define WF_PATH_MAX_NAME 255
#define WF_PATH_MAX 3840

#define WF_STR_(x) #x
#define WF_STR(x) WF_STR_(x)

/*
 * Check a path that wf writes into a repository or sandbox, as a file
 * of `mode` (0100644, 0100755, 0120000 for a symbolic link, 0160000 for
 * a submodule).  wf's rules: relative, no empty, "." or ".." component,
 * no control character but tab (newlines and escapes break line-based
 * tools and terminals; NUL cannot occur in a C string), no name over
 * WF_PATH_MAX_NAME bytes and no path over WF_PATH_MAX.  git's rules, as
 * libgit2 applies them with core.protectNTFS and core.protectHFS on: no
 * component that NTFS or HFS+ may read as ".git" (".git", "GIT~1",
 * ".git.", ".git::$INDEX_ALLOCATION", ".g\u200cit", ...).  git fsck's
 * rules for links: ".gitmodules", ".gitignore", ".gitattributes" and
 * ".mailmap" (in each spelling libgit2 knows for them) are not symbolic
 * links.  A backslash is an ordinary byte, as for git on POSIX.
 * Returns NULL when it is fine, else a short reason ("absolute path");
 * the reason may live in a per-thread buffer until the next call.
 * Safe to call from several threads.
 */
const char *wf_path_problem_mode(const char *p, unsigned mode);

/*
 * Is the one name `name` (no '/') a spelling of ".git" by the rules of
 * wf_path_problem_mode()?  1 yes, 0 no.
 */
int wf_path_is_dotgit(const char *name);

/* wf_path_problem_mode() for a regular file. */
const char *wf_path_problem(const char *p);

/*
 * Check a symbolic link that wf would create at `link` (a path that
 * passes wf_path_problem()) pointing at `target`: the target must be
 * relative, free of control characters and backslashes, and, resolved
 * against the link's directory, stay inside the repository and out of
 * ".git".  Returns NULL when it is fine, else a short reason.
 */
const char *wf_path_link_problem(const char *link, const char *target);

/*
 * Create the directory that holds `path` (one level, like the wf/
 * directory inside the git directory) when it is missing.  Returns 0,
 * or WF_EOS with a message naming the directory.
 */
int wf_path_mkdir_parent(const char *path);

#endif
