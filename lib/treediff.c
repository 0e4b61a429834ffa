#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "treediff.h"

#define IS_TREE(m) (((m) & 0170000) == 0040000)

struct walk {
	git_repository *repo;
	int dirs;
	wf_treediff_cb cb;
	void *payload;
	char *path;		/* the directory being walked, then '/' */
	size_t len, cap;
};

static int
push(struct walk *w, const char *name, size_t *saved)
{
	size_t n = strlen(name);

	*saved = w->len;
	if (w->len + n + 2 > w->cap) {
		size_t cap = 2 * (w->len + n + 2);
		char *p = realloc(w->path, cap);

		if (!p)
			return wf_error_oom();
		w->path = p;
		w->cap = cap;
	}
	memcpy(w->path + w->len, name, n);
	w->len += n;
	w->path[w->len] = '\0';
	return 0;
}

static int
lookup(git_tree **out, struct walk *w, const git_tree_entry *e)
{
	*out = NULL;
	if (!e || !IS_TREE(git_tree_entry_filemode(e)))
		return 0;
	if (git_tree_lookup(out, w->repo, git_tree_entry_id(e)) < 0)
		return wf_error_set_git(WF_EOS, "cannot read tree %s",
		    git_oid_tostr_s(git_tree_entry_id(e)));
	return 0;
}

static int
report(struct walk *w, const git_tree_entry *o, const git_tree_entry *n)
{
	struct wf_treediff_entry d;

	d.path = w->path;
	d.old_mode = o ? (unsigned)git_tree_entry_filemode(o) : 0;
	d.new_mode = n ? (unsigned)git_tree_entry_filemode(n) : 0;
	d.old_id = o ? git_tree_entry_id(o) : NULL;
	d.new_id = n ? git_tree_entry_id(n) : NULL;
	return w->cb(&d, w->payload);
}

static int walk_trees(struct walk *w, const git_tree *o, const git_tree *n);

/* The entry `name`: `o` in the old tree, `n` in the new (NULL: none). */
static int
one(struct walk *w, const char *name, const git_tree_entry *o,
    const git_tree_entry *n)
{
	git_tree *ot = NULL, *nt = NULL;
	unsigned om = o ? (unsigned)git_tree_entry_filemode(o) : 0;
	unsigned nm = n ? (unsigned)git_tree_entry_filemode(n) : 0;
	size_t saved;
	int error;

	if (o && n && om == nm &&
	    git_oid_equal(git_tree_entry_id(o), git_tree_entry_id(n)))
		return 0;
	if ((error = push(w, name, &saved)) < 0)
		return error;
	/* A file on either side that is not a directory on the other. */
	if ((o && !IS_TREE(om)) || (n && !IS_TREE(nm))) {
		if ((error = report(w, o && !IS_TREE(om) ? o : NULL,
		    n && !IS_TREE(nm) ? n : NULL)) != 0)
			goto out;
	}
	if (w->dirs && n && IS_TREE(nm) && !(o && IS_TREE(om)) &&
	    (error = report(w, NULL, n)) != 0)
		goto out;
	if ((o && IS_TREE(om)) || (n && IS_TREE(nm))) {
		if ((error = lookup(&ot, w, o)) < 0 ||
		    (error = lookup(&nt, w, n)) < 0)
			goto out;
		w->path[w->len++] = '/';
		w->path[w->len] = '\0';
		error = walk_trees(w, ot, nt);
	}
out:
	git_tree_free(ot);
	git_tree_free(nt);
	w->len = saved;
	w->path[w->len] = '\0';
	return error;
}

/*
 * git's order of tree entries: by name, a directory's name as if it
 * ended in '/'.  A name that is a file on one side and a directory on
 * the other is thus two entries, each unpaired, which reports the same
 * as pairing them would.
 */
static int
entry_order(const git_tree_entry *a, size_t alen, const git_tree_entry *b,
    size_t blen)
{
	size_t m = alen < blen ? alen : blen;
	int c = memcmp(git_tree_entry_name(a), git_tree_entry_name(b), m);
	unsigned ac, bc;

	if (c)
		return c;
	ac = alen > m ? (unsigned char)git_tree_entry_name(a)[m] :
	    IS_TREE(git_tree_entry_filemode(a)) ? '/' : 0;
	bc = blen > m ? (unsigned char)git_tree_entry_name(b)[m] :
	    IS_TREE(git_tree_entry_filemode(b)) ? '/' : 0;
	return (int)ac - (int)bc;
}

/*
 * Both trees in one pass, in git's order.  An entry is passed over only
 * when the other side has one of the same name, kind, mode and id; so
 * even a tree out of order (which git fsck refuses) has every entry of
 * it that is not exactly in the other reported, if perhaps as a removal
 * and an addition rather than a change.
 */
static int
walk_trees(struct walk *w, const git_tree *o, const git_tree *n)
{
	size_t i = 0, j = 0, olen = 0, nlen = 0;
	size_t ocnt = o ? git_tree_entrycount(o) : 0;
	size_t ncnt = n ? git_tree_entrycount(n) : 0;
	const git_tree_entry *oe = NULL, *ne = NULL;
	int c, error;

	while (i < ocnt || j < ncnt) {
		if (i < ocnt && !oe) {
			oe = git_tree_entry_byindex(o, i);
			olen = strlen(git_tree_entry_name(oe));
		}
		if (j < ncnt && !ne) {
			ne = git_tree_entry_byindex(n, j);
			nlen = strlen(git_tree_entry_name(ne));
		}
		c = !oe ? 1 : !ne ? -1 : entry_order(oe, olen, ne, nlen);
		if (c < 0)
			error = one(w, git_tree_entry_name(oe), oe, NULL);
		else if (c > 0)
			error = one(w, git_tree_entry_name(ne), NULL, ne);
		else
			error = one(w, git_tree_entry_name(ne), oe, ne);
		if (error != 0)
			return error;
		if (c <= 0) {
			oe = NULL;
			i++;
		}
		if (c >= 0) {
			ne = NULL;
			j++;
		}
	}
	return 0;
}

int
wf_treediff(git_repository *repo, const git_oid *old_tree,
    const git_oid *new_tree, int dirs, wf_treediff_cb cb, void *payload)
{
	struct walk w;
	git_tree *o = NULL, *n = NULL;
	int error;

	memset(&w, 0, sizeof(w));
	w.repo = repo;
	w.dirs = dirs;
	w.cb = cb;
	w.payload = payload;
	if (!(w.path = malloc(w.cap = 256)))
		return wf_error_oom();
	w.path[0] = '\0';
	if ((old_tree && git_tree_lookup(&o, repo, old_tree) < 0) ||
	    (new_tree && git_tree_lookup(&n, repo, new_tree) < 0)) {
		error = wf_error_set_git(WF_EOS, "cannot read a tree to "
		    "compare");
		goto out;
	}
	error = walk_trees(&w, o, n);
out:
	git_tree_free(o);
	git_tree_free(n);
	free(w.path);
	return error;
}
