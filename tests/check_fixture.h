#ifndef WF_CHECK_FIXTURE_H
#define WF_CHECK_FIXTURE_H

#include <git2.h>

/*
 * Fixtures shared by the suites that need a real repository: a
 * repository in a new temporary directory, with one commit of the
 * given files.
 */
struct fixture_file {
	const char *path;
	const char *content;	/* a link's target for mode 0120000 */
	unsigned int mode;	/* 0100644 (0 means it), 0100755, 0120000 */
};

/*
 * Create the repository (non-bare, files also in its working tree) in
 * a new directory *dir (malloc'ed) and commit `files` (terminated by a
 * NULL path) on main; *commit receives the commit.  Fails the test on
 * any error.
 */
git_repository *fixture_repo(char **dir, git_oid *commit,
    const struct fixture_file *files);

/* Commit `files` on top of HEAD (a second commit); returns its id. */
void fixture_commit(git_oid *out, git_repository *repo,
    const struct fixture_file *files);

/* Remove a directory tree (rm -rf). */
void fixture_rm(const char *dir);

/* Write `content` to the file `path` (created or truncated). */
void fixture_write(const char *path, const char *content);

/* A new malloc'ed "a/b". */
char *fixture_join(const char *a, const char *b);

#endif
