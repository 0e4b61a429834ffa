#ifndef WF_PATH_H
#define WF_PATH_H

/*
 * Check a path that wf writes into a repository or sandbox: relative,
 * no empty, "." or ".." component, no ".git" component in any case (nor
 * the spellings other file systems take for it: ".git." or ".git " with
 * trailing dots or spaces, the 8.3 name "git~1", also between
 * backslashes, a separator elsewhere), no control characters but tab
 * (newlines and escapes break line-based tools and terminals; NUL
 * cannot occur in a C string).  A backslash is an ordinary byte, as for
 * git on POSIX.  Returns NULL when it is fine, else a short reason
 * ("absolute path").
 */
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
