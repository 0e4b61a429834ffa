#ifndef WF_PATH_H
#define WF_PATH_H

/*
 * Check a path that wf writes into a repository or sandbox: relative,
 * no empty, "." or ".." component, no ".git" component in any case, no
 * control characters (NUL cannot occur in a C string; newline can).
 * Returns NULL when it is fine, else a short reason ("absolute path").
 */
const char *wf_path_problem(const char *p);

#endif
