#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "change.h"
#include "error.h"
#include "pack.h"
#include "patch.h"

/* One leased entry and what became of it in the current build. */
struct item {
	json_t *entry;		/* borrowed from the lease */
	const char *id, *token;
	char *reason;		/* why it does not apply; NULL when it does */
	git_oid commit;		/* its last commit in the build */
};

struct build {
	git_repository *repo;
	const struct wf_apply_opts *o;
	git_signature *committer;
	git_commit *cur;	/* the commit the next change goes on */
};

static int
signature_default(git_signature **out, git_repository *repo)
{
	if (git_signature_default(out, repo) == 0)
		return 0;
	if (git_signature_now(out, "wf-apply", "wf-apply@localhost") < 0)
		return wf_error_set_git(WF_EOS, "cannot make a signature");
	return 0;
}

/* Whether the line s[0..n) reads "Token: value", a trailer. */
static int
is_trailer(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (s[i] == '-' || (s[i] >= 'A' && s[i] <= 'Z') ||
	    (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
		i++;
	return i > 0 && i + 1 < n && s[i] == ':' && s[i + 1] == ' ';
}

/*
 * The message with the Queue-Id trailer, joined to a trailer block that
 * ends the message ("Signed-off-by: ...") or after a blank line: a new
 * malloc'ed string, NULL when out of memory.
 */
static char *
with_trailer(const char *message, const char *id)
{
	size_t n = strlen(message), s;
	const char *sep = "\n\n";
	char *out;

	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
		n--;
	for (s = n; s > 0 && message[s - 1] != '\n'; s--)
		;
	/* The last line is a trailer after a blank line: join the block. */
	if (s > 0 && is_trailer(message + s, n - s)) {
		const char *blank = strstr(message, "\n\n");

		if (blank && (size_t)(blank - message) < s)
			sep = "\n";
	}
	if (n == 0)
		sep = "";
	if (!(out = malloc(n + strlen(id) + 16)))
		return NULL;
	sprintf(out, "%.*s%sQueue-Id: %s\n", (int)n, message, sep, id);
	return out;
}

const char *
wf_apply_queue_id(size_t *len, const char *message)
{
	const char *p = message, *found = NULL, *e;

	while ((p = strstr(p, "Queue-Id: "))) {
		if (p == message || p[-1] == '\n')
			found = p + 10;
		p += 10;
	}
	if (!found)
		return NULL;
	for (e = found; *e && *e != '\n'; e++)
		;
	*len = (size_t)(e - found);
	return found;
}

static int
fail_item(struct item *it, const char *why)
{
	free(it->reason);
	if (!(it->reason = strdup(why)))
		return wf_error_oom();
	return 0;
}

static int
commit_on(struct build *b, git_oid *out, const git_signature *author,
    const char *message, const char *id, const git_oid *tree_id)
{
	git_tree *tree = NULL;
	git_commit *next = NULL;
	const git_commit *parents[1];
	char *msg = NULL;
	int error;

	if (!(msg = with_trailer(message, id))) {
		error = wf_error_oom();
		goto out;
	}
	parents[0] = b->cur;
	if (git_tree_lookup(&tree, b->repo, tree_id) < 0 ||
	    git_commit_create(out, b->repo, NULL, author, b->committer,
	    "UTF-8", msg, tree, 1, parents) < 0 ||
	    git_commit_lookup(&next, b->repo, out) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot write a commit");
		goto out;
	}
	git_commit_free(b->cur);
	b->cur = next;
	error = 0;
out:
	free(msg);
	git_tree_free(tree);
	return error;
}

/* Build the tree of a "files" change on `base`; 1 when it cannot apply. */
static int
files_tree(git_oid *out, struct build *b, git_tree *base, json_t *files,
    struct item *it)
{
	git_tree_update *up = NULL;
	unsigned char *data = NULL;
	size_t i, n = json_array_size(files), len;
	char why[512];
	json_t *f;
	int error;

	if (!(up = calloc(n + 1, sizeof(*up))))
		return wf_error_oom();
	json_array_foreach(files, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *content = json_string_value(json_object_get(f,
		    "content"));
		const char *blob = json_string_value(json_object_get(f, "blob"));
		const char *mode = json_string_value(json_object_get(f, "mode"));
		git_tree_entry *e = NULL;

		up[i].path = path;
		if (json_is_true(json_object_get(f, "delete"))) {
			if (git_tree_entry_bypath(&e, base, path) < 0) {
				snprintf(why, sizeof(why), "file '%s': does "
				    "not exist", path);
				error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
				goto out;
			}
			git_tree_entry_free(e);
			up[i].action = GIT_TREE_UPDATE_REMOVE;
			continue;
		}
		up[i].action = GIT_TREE_UPDATE_UPSERT;
		up[i].filemode = mode ? (git_filemode_t)strtol(mode, NULL, 8) :
		    GIT_FILEMODE_BLOB;
		if (content) {
			if ((error = wf_change_unbase64(&data, &len,
			    content)) < 0)
				goto out;
			if (git_blob_create_from_buffer(&up[i].id, b->repo,
			    data, len) < 0) {
				error = wf_error_set_git(WF_EOS, "cannot write "
				    "'%s'", path);
				goto out;
			}
			free(data);
			data = NULL;
		} else if (!blob || git_oid_fromstr(&up[i].id, blob) < 0) {
			error = wf_error_set(WF_EINPUT, "file '%s': no content",
			    path);
			goto out;
		}
	}
	if (git_tree_create_updated(out, b->repo, base, n, up) < 0) {
		snprintf(why, sizeof(why), "cannot build the tree: %s",
		    git_error_last() ? git_error_last()->message : "?");
		error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
		goto out;
	}
	error = 0;
out:
	free(data);
	free(up);
	return error;
}

static int
author_of(git_signature **out, struct build *b, json_t *payload)
{
	json_t *a = json_object_get(payload, "author");

	if (a && git_signature_now(out,
	    json_string_value(json_object_get(a, "name")),
	    json_string_value(json_object_get(a, "email"))) == 0)
		return 0;
	return signature_default(out, b->repo);
}

/* Replay base..head on b->cur, one commit each; 1 when it conflicts. */
static int
replay(struct build *b, json_t *payload, struct item *it)
{
	git_revwalk *walk = NULL;
	git_commit *pick = NULL;
	git_index *idx = NULL;
	git_oid base, head, id, tree;
	char why[1024];
	int error;

	if (git_oid_fromstr(&base, json_string_value(json_object_get(payload,
	    "base"))) < 0 || git_oid_fromstr(&head,
	    json_string_value(json_object_get(payload, "head"))) < 0)
		return wf_error_set(WF_EINPUT, "request '%s': bad range",
		    it->id);
	if (git_revwalk_new(&walk, b->repo) < 0 ||
	    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL |
	    GIT_SORT_REVERSE) < 0 || git_revwalk_push(walk, &head) < 0 ||
	    git_revwalk_hide(walk, &base) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot walk the range of "
		    "'%s'", it->id);
		goto out;
	}
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), &id);
		if (git_commit_lookup(&pick, b->repo, &id) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot read commit "
			    "%s", hex);
			goto out;
		}
		if (git_commit_parentcount(pick) != 1) {
			snprintf(why, sizeof(why), "commit %.12s: merges and "
			    "root commits are not replayed", hex);
			error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
			goto out;
		}
		if (git_cherrypick_commit(&idx, b->repo, pick, b->cur, 0,
		    NULL) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot replay commit "
			    "%s", hex);
			goto out;
		}
		if (git_index_has_conflicts(idx)) {
			git_index_conflict_iterator *ci = NULL;
			const git_index_entry *anc, *ours, *theirs;
			size_t n = (size_t)snprintf(why, sizeof(why),
			    "commit %.12s conflicts in", hex);

			if (git_index_conflict_iterator_new(&ci, idx) == 0)
				while (n < sizeof(why) - 1 &&
				    git_index_conflict_next(&anc, &ours, &theirs,
				    ci) == 0) {
					const char *p = ours ? ours->path :
					    theirs ? theirs->path : anc->path;

					n += (size_t)snprintf(why + n,
					    sizeof(why) - n, " '%s'", p);
				}
			git_index_conflict_iterator_free(ci);
			error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
			goto out;
		}
		if (git_index_write_tree_to(&tree, idx, b->repo) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot write a tree");
			goto out;
		}
		if ((error = commit_on(b, &it->commit, git_commit_author(pick),
		    git_commit_message(pick), it->id, &tree)) < 0)
			goto out;
		git_index_free(idx);
		idx = NULL;
		git_commit_free(pick);
		pick = NULL;
	}
	if (error != GIT_ITEROVER) {
		error = wf_error_set_git(WF_EOS, "cannot walk the range of "
		    "'%s'", it->id);
		goto out;
	}
	error = 0;
out:
	git_index_free(idx);
	git_commit_free(pick);
	git_revwalk_free(walk);
	return error;
}

/*
 * Put one change on b->cur.  Returns 0 when it applied, 1 when it does
 * not (it->reason says why), negative on errors that stop the step.
 */
static int
build_one(struct build *b, struct item *it)
{
	json_t *payload = json_object_get(it->entry, "payload");
	const char *kind = json_string_value(json_object_get(payload, "kind"));
	const char *message = json_string_value(json_object_get(payload,
	    "message"));
	struct wf_patch_opts po = WF_PATCH_OPTS_INIT;
	struct wf_patch *patch = NULL;
	git_signature *author = NULL;
	git_tree *base = NULL;
	git_oid tree;
	char *dflt = NULL;
	int error;

	if (!kind) {
		error = wf_error_set(WF_EINPUT, "entry '%s' has no payload",
		    it->id);
		goto out;
	}
	if (strcmp(kind, "commits") == 0) {
		error = replay(b, payload, it);
		goto out;
	}
	if (git_commit_tree(&base, b->cur) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the tip's tree");
		goto out;
	}
	if (strcmp(kind, "patch") == 0) {
		json_t *text = json_object_get(payload, "patch");

		po.fuzz = b->o->fuzz;
		error = wf_patch_parse(&patch, json_string_value(text),
		    json_string_length(text));
		if (error == 0)
			error = wf_patch_apply(&tree, b->repo, base, patch, &po);
		if (error == WF_ECONFLICT || error == WF_EINPUT) {
			error = fail_item(it, wf_error_last()) < 0 ?
			    WF_ENOMEM : 1;
			goto out;
		}
	} else {
		error = files_tree(&tree, b, base, json_object_get(payload,
		    "files"), it);
	}
	if (error != 0)
		goto out;
	if (!message) {
		if (!(dflt = malloc(strlen(it->id) + 8))) {
			error = wf_error_oom();
			goto out;
		}
		sprintf(dflt, "Apply %s", it->id);
	}
	if ((error = author_of(&author, b, payload)) < 0 ||
	    (error = commit_on(b, &it->commit, author, message ? message : dflt,
	    it->id, &tree)) < 0)
		goto out;
out:
	free(dflt);
	git_signature_free(author);
	wf_patch_free(patch);
	git_tree_free(base);
	return error;
}

/* Build every item on `tip`; *head is the last commit (tip if none). */
static int
build_all(git_oid *head, git_repository *repo, const git_oid *tip,
    struct item *items, size_t n, const struct wf_apply_opts *o)
{
	struct build b;
	size_t i;
	int error;

	memset(&b, 0, sizeof(b));
	b.repo = repo;
	b.o = o;
	if ((error = signature_default(&b.committer, repo)) < 0)
		goto out;
	if (git_commit_lookup(&b.cur, repo, tip) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the tip");
		goto out;
	}
	for (i = 0; i < n; i++) {
		free(items[i].reason);
		items[i].reason = NULL;
		if ((error = build_one(&b, &items[i])) < 0)
			goto out;
	}
	*head = *git_commit_id(b.cur);
	error = 0;
out:
	git_commit_free(b.cur);
	git_signature_free(b.committer);
	return error;
}

static int
reflog_message(char **out, const struct item *items, size_t n)
{
	size_t i, len = 32;
	char *m;

	for (i = 0; i < n; i++)
		len += strlen(items[i].id) + 2;
	if (!(m = malloc(len)))
		return wf_error_oom();
	strcpy(m, "wf-apply: land");
	for (i = 0; i < n; i++)
		if (!items[i].reason) {
			strcat(m, " ");
			strcat(m, items[i].id);
		}
	*out = m;
	return 0;
}

static int
ack(json_t *res, struct wf_queue *q, struct item *it)
{
	json_t *shown = NULL, *v;
	char hex[GIT_OID_HEXSZ + 1];
	const char *state = "landed";
	int error;

	if (!it->reason)
		error = wf_queue_ack_landed(q, it->id, it->token, NULL);
	else
		error = wf_queue_ack_failed(q, it->id, it->token, it->reason);
	if (error < 0)
		return error;
	if (it->reason) {
		if ((error = wf_queue_show(&shown, q, it->id)) < 0)
			return error;
		state = json_string_value(json_object_get(shown, "state"));
	}
	v = json_pack("{s:s, s:O, s:s}", "id", it->id, "queue_id",
	    json_object_get(it->entry, "queue_id"), "state", state);
	if (v && !it->reason)
		json_object_set_new(v, "commit", json_string(git_oid_tostr(hex,
		    sizeof(hex), &it->commit)));
	if (v && it->reason)
		json_object_set_new(v, "reason", json_string(it->reason));
	json_decref(shown);
	if (!v || json_array_append_new(res, v) < 0)
		return wf_error_oom();
	return 0;
}

int
wf_apply_step(json_t **out, git_repository *repo, struct wf_queue *q,
    const char *target, const struct wf_apply_opts *opts)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	struct wf_pack *pack = NULL;
	struct item *items = NULL;
	json_t *leased = NULL, *res = NULL, *e;
	git_reference *ref = NULL, *moved = NULL;
	char refname[1024], *logmsg = NULL;
	const char *branch = target;
	git_oid tip, head;
	size_t i, n, landing;
	int error, tries;

	*out = NULL;
	if (opts)
		o = *opts;
	if (strncmp(branch, "refs/heads/", 11) == 0)
		branch += 11;
	snprintf(refname, sizeof(refname), "refs/heads/%s", branch);
	if (!(res = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = wf_queue_lease(&leased, q, branch, o.batch ? o.batch : 8,
	    o.owner ? o.owner : "wf-apply", o.lease_ms)) < 0)
		goto out;
	if ((n = json_array_size(leased)) == 0)
		goto done;
	if (!(items = calloc(n, sizeof(*items)))) {
		error = wf_error_oom();
		goto out;
	}
	json_array_foreach(leased, i, e) {
		items[i].entry = e;
		items[i].id = json_string_value(json_object_get(e, "id"));
		items[i].token = json_string_value(json_object_get(e,
		    "lease_token"));
	}
	if (o.pack)
		pack = o.pack;
	else if ((error = wf_pack_attach(&pack, repo)) < 0)
		goto out;
	for (tries = 0;; tries++) {
		if (git_reference_lookup(&ref, repo, refname) < 0 ||
		    git_reference_resolve(&moved, ref) < 0) {
			error = wf_error_set_git(WF_ENOTFOUND, "branch '%s' "
			    "does not exist", branch);
			goto out;
		}
		tip = *git_reference_target(moved);
		git_reference_free(moved);
		moved = NULL;
		git_reference_free(ref);
		ref = NULL;
		if ((error = build_all(&head, repo, &tip, items, n, &o)) < 0)
			goto out;
		for (landing = 0, i = 0; i < n; i++)
			landing += !items[i].reason;
		if (landing == 0) {
			wf_pack_discard(pack);
			break;
		}
		/* The objects go to disk before any reference names them. */
		if ((error = wf_pack_flush(pack)) < 0)
			goto out;
		if (o.before_land && (error = o.before_land(repo, &tip, &head,
		    o.payload)) < 0)
			goto out;
		free(logmsg);
		logmsg = NULL;
		if ((error = reflog_message(&logmsg, items, n)) < 0)
			goto out;
		error = git_reference_create_matching(&ref, repo, refname,
		    &head, 1, &tip, logmsg);
		if (error == 0)
			break;
		if (error != GIT_EMODIFIED && error != GIT_ELOCKED) {
			error = wf_error_set_git(WF_EOS, "cannot move branch "
			    "'%s'", branch);
			goto out;
		}
		if (tries + 1 >= (o.max_moves > 0 ? o.max_moves : 10)) {
			error = wf_error_set(WF_EBUSY, "branch '%s' kept "
			    "moving; gave up after %d rebuilds", branch,
			    tries + 1);
			goto out;
		}
	}
	for (i = 0; i < n; i++)
		if ((error = ack(res, q, &items[i])) < 0)
			goto out;
done:
	*out = res;
	res = NULL;
	error = 0;
out:
	if (items)
		for (i = 0; i < n; i++)
			free(items[i].reason);
	free(items);
	free(logmsg);
	if (pack && pack != o.pack)
		wf_pack_free(pack);
	else if (pack)
		wf_pack_discard(pack);
	git_reference_free(ref);
	git_reference_free(moved);
	json_decref(leased);
	json_decref(res);
	return error;
}
