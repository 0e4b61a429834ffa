#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "git.h"

/*
 * libgit2 as Debian builds it (1.5, on mbedTLS) parses the whole CA
 * bundle in git_libgit2_init(): 53 M instructions, about 13 ms, in
 * every process, for the HTTPS connections wf never makes (it opens
 * local repositories only, never a remote).  This definition of the
 * function it parses them with is exported from each program (the
 * Makefile's --export-dynamic-symbol) and found before mbedTLS's own,
 * so nothing is loaded.  Should an HTTPS remote ever be opened through
 * libgit2 in a wf program, its certificate check would fail for want
 * of a trusted root: it fails closed.  With a libgit2 built on another
 * TLS library this is simply never called.
 */
int mbedtls_x509_crt_parse_file(void *chain, const char *path);

int
mbedtls_x509_crt_parse_file(void *chain, const char *path)
{
	(void)chain;
	(void)path;
	return 0;
}

int
wf_git_init(void)
{
	if (git_libgit2_init() < 0)
		return wf_error_set_git(WF_ERROR, "cannot initialise libgit2");
	return 0;
}

void
wf_git_shutdown(void)
{
	git_libgit2_shutdown();
}

int
wf_git_open(git_repository **out, const char *dir)
{
	int error;

	*out = NULL;
	error = git_repository_open_ext(out, dir ? dir : ".", 0, NULL);
	if (error == GIT_ENOTFOUND)
		return wf_error_set(WF_ENOTFOUND,
		    "not a git repository (or any of the parent directories): "
		    "'%s'", dir ? dir : ".");
	if (error < 0)
		return wf_error_set_git(WF_EOS, "cannot open repository '%s'",
		    dir ? dir : ".");
	return 0;
}

int
wf_git_common_path(char **out, git_repository *repo, const char *rel)
{
	const char *dir = git_repository_commondir(repo);
	size_t n;

	*out = NULL;
	if (!dir || !*dir)
		return wf_error_set(WF_EOS, "repository has no git directory");
	n = strlen(dir) + strlen(rel) + 2;
	if (!(*out = malloc(n)))
		return wf_error_oom();
	snprintf(*out, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
	    rel);
	return 0;
}

static int
tree_of(git_tree **out, git_repository *repo, const char *spec)
{
	git_object *obj = NULL;
	int error;

	*out = NULL;
	if (git_revparse_single(&obj, repo, spec) < 0)
		return wf_error_set_git(WF_EINPUT, "unknown revision '%s'",
		    spec);
	error = git_object_peel((git_object **)out, obj, GIT_OBJECT_TREE);
	git_object_free(obj);
	if (error < 0)
		return wf_error_set_git(WF_EINPUT,
		    "revision '%s' does not name a commit or tree", spec);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The paths that differ between two trees (old may be NULL: empty). */
static int
diff_paths(json_t **out, git_repository *repo, git_tree *old, git_tree *new)
{
	git_diff *diff = NULL;
	git_diff_find_options fopts;
	const char **paths = NULL;
	json_t *arr = NULL;
	size_t i, n = 0, nd;
	int error;

	*out = NULL;
	if (git_diff_tree_to_tree(&diff, repo, old, new, NULL) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot diff two trees");
		goto out;
	}
	git_diff_find_options_init(&fopts, GIT_DIFF_FIND_OPTIONS_VERSION);
	fopts.flags = GIT_DIFF_FIND_RENAMES;
	if (git_diff_find_similar(diff, &fopts) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot find renames");
		goto out;
	}
	nd = git_diff_num_deltas(diff);
	if (!(paths = calloc(2 * nd + 1, sizeof(*paths)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < nd; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);

		if (d->old_file.path)
			paths[n++] = d->old_file.path;
		if (d->new_file.path && (!d->old_file.path ||
		    strcmp(d->old_file.path, d->new_file.path) != 0))
			paths[n++] = d->new_file.path;
	}
	qsort(paths, n, sizeof(*paths), cmp_str);
	if (!(arr = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(paths[i], paths[i - 1]) == 0)
			continue;
		if (json_array_append_new(arr, json_string(paths[i])) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	*out = arr;
	arr = NULL;
	error = 0;
out:
	json_decref(arr);
	free(paths);
	git_diff_free(diff);
	return error;
}

int
wf_git_changed_paths(json_t **out, git_repository *repo, const char *from)
{
	git_tree *old = NULL, *new = NULL;
	int error;

	*out = NULL;
	if ((error = tree_of(&old, repo, from)) < 0 ||
	    (error = tree_of(&new, repo, "HEAD")) < 0)
		goto out;
	if ((error = diff_paths(out, repo, old, new)) < 0)
		wf_error_prefix(error, "'%s' to HEAD", from);
out:
	git_tree_free(old);
	git_tree_free(new);
	return error;
}

static int
commit_tree(git_tree **out, git_repository *repo, const git_oid *id)
{
	git_commit *c = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	int error = 0;

	*out = NULL;
	if (git_commit_lookup(&c, repo, id) < 0 || git_commit_tree(out, c) < 0)
		error = wf_error_set_git(WF_EINPUT, "cannot read commit %s",
		    git_oid_tostr(hex, sizeof(hex), id));
	git_commit_free(c);
	return error;
}

int
wf_git_diff_paths(json_t **out, git_repository *repo, const git_oid *from,
    const git_oid *to)
{
	git_tree *old = NULL, *new = NULL;
	int error;

	*out = NULL;
	if ((from && (error = commit_tree(&old, repo, from)) < 0) ||
	    (error = commit_tree(&new, repo, to)) < 0)
		goto out;
	error = diff_paths(out, repo, old, new);
out:
	git_tree_free(old);
	git_tree_free(new);
	return error;
}
