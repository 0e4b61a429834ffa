#include <stdlib.h>
#include <string.h>

#include "cherry.h"
#include "error.h"
#include "map.h"
#include "patch.h"

/* A patch id (key) or a commit walked (key), and the commit. */
struct ent {
	char key[GIT_OID_HEXSZ + 1];
	git_oid commit;
	unsigned gen;		/* the walk that set it */
};

struct wf_cherry {
	git_repository *repo;
	size_t depth;
	unsigned gen;
	struct wf_map ids;	/* patch id -> index into ent[] */
	struct wf_map walked;	/* commit id -> index into ent[] */
	struct ent **ent;
	size_t n, alloc;
};

int
wf_cherry_new(struct wf_cherry **out, git_repository *repo, size_t depth)
{
	struct wf_cherry *ch;

	if (!(ch = calloc(1, sizeof(*ch))))
		return wf_error_oom();
	ch->repo = repo;
	ch->depth = depth;
	*out = ch;
	return 0;
}

void
wf_cherry_free(struct wf_cherry *ch)
{
	size_t i;

	if (!ch)
		return;
	wf_map_release(&ch->ids);
	wf_map_release(&ch->walked);
	for (i = 0; i < ch->n; i++)
		free(ch->ent[i]);
	free(ch->ent);
	free(ch);
}

int
wf_cherry_patch_id(git_oid *out, const struct wf_patch *p)
{
	char *saved;
	int error;

	/* Asked about a patch that failed: its reason must survive. */
	if (!(saved = strdup(wf_error_last())))
		return wf_error_oom();
	error = wf_patch_id_text(out, p->text, p->len, WF_PATCH_ID_NO_SCORE);
	if (error == WF_EINPUT) {
		if (*saved)
			wf_error_set(WF_EINPUT, "%s", saved);
		else
			wf_error_clear();
		error = 1;
	}
	free(saved);
	return error;
}

/*
 * The id of the diff's text, as git diff --binary writes it: the text
 * that is queued, hashed as a queued patch is.  1 when it has none.
 */
static int
diff_id(git_oid *out, git_diff *diff)
{
	git_buf buf = { NULL, 0, 0 };
	int error;

	if (git_diff_to_buf(&buf, diff, GIT_DIFF_FORMAT_PATCH) < 0)
		return wf_error_set_git(WF_EOS, "cannot write a diff");
	error = wf_patch_id_text(out, buf.ptr, buf.size,
	    WF_PATCH_ID_NO_SCORE);
	if (error == WF_EINPUT)
		error = 1;
	git_buf_dispose(&buf);
	return error;
}

int
wf_cherry_commit_id(git_oid *out, git_oid *renamed, git_repository *repo,
    const git_commit *c)
{
	git_diff_options o;
	git_diff_find_options fo;
	git_commit *parent = NULL;
	git_tree *old = NULL, *new = NULL;
	git_diff *diff = NULL;
	size_t n;
	int error;

	if (git_commit_parentcount(c) == 0)
		return 1;
	if (git_diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION) < 0 ||
	    git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION) < 0)
		return wf_error_set_git(WF_EOS, "cannot set up a diff");
	/* git's own diff, whose hunks git patch-id hashes. */
	o.flags |= GIT_DIFF_INDENT_HEURISTIC | GIT_DIFF_SHOW_BINARY;
	if (git_commit_parent(&parent, c, 0) < 0 ||
	    git_commit_tree(&old, parent) < 0 ||
	    git_commit_tree(&new, c) < 0 ||
	    git_diff_tree_to_tree(&diff, repo, old, new, &o) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot diff commit %s",
		    git_oid_tostr_s(git_commit_id(c)));
		goto out;
	}
	if ((n = git_diff_num_deltas(diff)) == 0) {
		error = 1;
		goto out;
	}
	if ((error = diff_id(out, diff)) != 0)
		goto out;
	*renamed = *out;
	fo.flags = GIT_DIFF_FIND_RENAMES;
	if (git_diff_find_similar(diff, &fo) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot find renames");
		goto out;
	}
	if (git_diff_num_deltas(diff) != n && diff_id(renamed, diff) != 0)
		*renamed = *out;
out:
	git_diff_free(diff);
	git_tree_free(new);
	git_tree_free(old);
	git_commit_free(parent);
	return error;
}

static int
add(struct wf_cherry *ch, struct wf_map *m, const git_oid *key,
    const git_oid *commit)
{
	struct ent *e;
	size_t i;
	int error;

	if (wf_map_get(&i, m, git_oid_tostr_s(key)) == 0) {
		/* A later walk starts at a newer tip: its commit is newer. */
		if (ch->ent[i]->gen != ch->gen) {
			ch->ent[i]->commit = *commit;
			ch->ent[i]->gen = ch->gen;
		}
		return 0;
	}
	if (ch->n == ch->alloc) {
		size_t a = ch->alloc ? ch->alloc * 2 : 256;
		struct ent **x = realloc(ch->ent, a * sizeof(*x));

		if (!x)
			return wf_error_oom();
		ch->ent = x;
		ch->alloc = a;
	}
	if (!(e = malloc(sizeof(*e))))
		return wf_error_oom();
	git_oid_tostr(e->key, sizeof(e->key), key);
	e->commit = *commit;
	e->gen = ch->gen;
	if ((error = wf_map_put(NULL, m, e->key, ch->n)) < 0) {
		free(e);
		return error == WF_ENOMEM ? wf_error_oom() : error;
	}
	ch->ent[ch->n++] = e;
	return 0;
}

/* Take in the commits from `tip` back to the first one walked before. */
static int
walk(struct wf_cherry *ch, const git_oid *tip)
{
	git_commit *c = NULL;
	git_oid id = *tip, pid, rid;
	size_t n = 0, v;
	int error = 0;

	ch->gen++;
	while (n++ < ch->depth &&
	    wf_map_get(&v, &ch->walked, git_oid_tostr_s(&id)) < 0) {
		if (git_commit_lookup(&c, ch->repo, &id) < 0)
			return wf_error_set_git(WF_EOS, "cannot read commit %s",
			    git_oid_tostr_s(&id));
		if ((error = add(ch, &ch->walked, &id, &id)) < 0)
			break;
		if ((error = wf_cherry_commit_id(&pid, &rid, ch->repo, c)) < 0)
			break;
		if (error == 0 && ((error = add(ch, &ch->ids, &pid, &id)) < 0 ||
		    (error = add(ch, &ch->ids, &rid, &id)) < 0))
			break;
		error = 0;
		if (git_commit_parentcount(c) == 0)
			break;
		id = *git_commit_parent_id(c, 0);
		git_commit_free(c);
		c = NULL;
	}
	git_commit_free(c);
	return error;
}

int
wf_cherry_find(git_oid *commit, struct wf_cherry *ch, const git_oid *tip,
    const git_oid *pid)
{
	git_oid c;
	size_t i;
	int error;

	if ((error = walk(ch, tip)) < 0)
		return error;
	if (wf_map_get(&i, &ch->ids, git_oid_tostr_s(pid)) < 0)
		return 0;
	c = ch->ent[i]->commit;
	/* Walks from older tips may hold commits this one dropped. */
	if (!git_oid_equal(&c, tip) &&
	    (error = git_graph_descendant_of(ch->repo, tip, &c)) <= 0)
		return error < 0 ? wf_error_set_git(WF_EOS, "cannot walk the "
		    "branch") : 0;
	*commit = c;
	return 1;
}
