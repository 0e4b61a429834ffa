#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"
#include "worktree.h"

struct wf_worktree {
	git_repository *repo;	/* opened on the work tree */
	char *refname;
};

/*
 * Landers of one branch may run at once: one reads the status while
 * another is half way through a checkout.  A lock in the work tree's
 * git directory keeps the two apart; -1 when it cannot be had (then
 * nothing is serialised, which only risks a spurious refusal).
 */
static int
lock(const struct wf_worktree *w)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%swf-worktree.lock",
	    git_repository_path(w->repo));
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -1;
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Does HEAD of `repo` name `refname` (not resolved: a symbolic ref)? */
static int
head_is(git_repository *repo, const char *refname)
{
	git_reference *head = NULL;
	const char *target;
	int yes;

	if (git_repository_is_bare(repo) ||
	    git_reference_lookup(&head, repo, "HEAD") < 0) {
		git_error_clear();
		return 0;
	}
	target = git_reference_symbolic_target(head);
	yes = target && strcmp(target, refname) == 0;
	git_reference_free(head);
	return yes;
}

static int
take(struct wf_worktree **out, git_repository *repo, const char *refname)
{
	struct wf_worktree *w;

	if (!(w = calloc(1, sizeof(*w))) || !(w->refname = strdup(refname))) {
		free(w);
		git_repository_free(repo);
		return wf_error_oom();
	}
	w->repo = repo;
	*out = w;
	return 0;
}

int
wf_worktree_find(struct wf_worktree **out, git_repository *repo,
    const char *refname)
{
	git_strarray names = { NULL, 0 };
	git_repository *wt = NULL;
	size_t i;
	int error = 0;

	*out = NULL;
	if (head_is(repo, refname)) {
		if (git_repository_open(&wt, git_repository_workdir(repo)) < 0)
			return wf_error_set_git(WF_EOS, "cannot open the work "
			    "tree '%s'", git_repository_workdir(repo));
		return take(out, wt, refname);
	}
	if (git_worktree_list(&names, repo) < 0) {
		git_error_clear();
		return 0;
	}
	for (i = 0; i < names.count && !*out; i++) {
		git_worktree *w = NULL;

		if (git_worktree_lookup(&w, repo, names.strings[i]) < 0 ||
		    git_worktree_validate(w) < 0 ||
		    git_repository_open_from_worktree(&wt, w) < 0) {
			/* A work tree that is gone has nothing to update. */
			git_error_clear();
			git_worktree_free(w);
			continue;
		}
		git_worktree_free(w);
		if (head_is(wt, refname))
			error = take(out, wt, refname);
		else
			git_repository_free(wt);
		if (error < 0)
			break;
	}
	git_strarray_dispose(&names);
	return error;
}

const char *
wf_worktree_path(const struct wf_worktree *w)
{
	return git_repository_workdir(w->repo);
}

int
wf_worktree_clean(struct wf_worktree *w)
{
	git_status_options o;
	git_status_list *st = NULL;
	const git_status_entry *e;
	const char *path;
	int error = 0;

	int fd;

	git_status_options_init(&o, GIT_STATUS_OPTIONS_VERSION);
	o.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	o.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	fd = lock(w);
	/* What another handle checked out meanwhile is read afresh. */
	if (git_status_list_new(&st, w->repo, &o) < 0) {
		unlock(fd);
		return wf_error_set_git(WF_EOS, "cannot read the status of "
		    "'%s'", wf_worktree_path(w));
	}
	unlock(fd);
	if (git_status_list_entrycount(st) > 0) {
		e = git_status_byindex(st, 0);
		path = e->head_to_index ? e->head_to_index->new_file.path :
		    e->index_to_workdir ? e->index_to_workdir->new_file.path :
		    "?";
		size_t more = git_status_list_entrycount(st) - 1;
		const char *dir = wf_worktree_path(w);
		int n = (int)strlen(dir);

		if (n > 1 && dir[n - 1] == '/')
			n--;
		error = wf_error_set(WF_ECONFLICT, "branch '%s' is checked out "
		    "in '%.*s', which has local changes ('%s'%s%.0zu%s): commit "
		    "or stash them there, or land on a branch that is not "
		    "checked out", w->refname + 11, n, dir, path,
		    more ? " and " : "", more, more ? " more" : "");
	}
	git_status_list_free(st);
	return error;
}

int
wf_worktree_follow(struct wf_worktree *w, const git_oid *from,
    const git_oid *to)
{
	git_checkout_options o;
	git_commit *old = NULL, *new = NULL;
	git_tree *base = NULL;
	int error = 0, fd;

	if (git_commit_lookup(&old, w->repo, from) < 0 ||
	    git_commit_lookup(&new, w->repo, to) < 0 ||
	    git_commit_tree(&base, old) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the commits to "
		    "check out in '%s'", wf_worktree_path(w));
		goto out;
	}
	git_checkout_options_init(&o, GIT_CHECKOUT_OPTIONS_VERSION);
	o.checkout_strategy = GIT_CHECKOUT_SAFE;
	o.baseline = base;
	fd = lock(w);
	if (git_checkout_tree(w->repo, (git_object *)new, &o) < 0)
		error = wf_error_set_git(WF_ECONFLICT, "branch '%s' moved, but "
		    "the work tree '%s' could not follow", w->refname + 11,
		    wf_worktree_path(w));
	unlock(fd);
out:
	git_tree_free(base);
	git_commit_free(old);
	git_commit_free(new);
	return error;
}

void
wf_worktree_free(struct wf_worktree *w)
{
	if (!w)
		return;
	git_repository_free(w->repo);
	free(w->refname);
	free(w);
}
