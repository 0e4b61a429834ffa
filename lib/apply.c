#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2/sys/commit.h>

#include "apply.h"
#include "change.h"
#include "checks.h"
#include "cherry.h"
#include "clock.h"
#include "error.h"
#include "guard.h"
#include "lane.h"
#include "pack.h"
#include "patch.h"
#include "tree.h"
#include "worktree.h"

/* One leased entry and what became of it. */
struct item {
	json_t *entry;		/* borrowed from the lease */
	const char *id, *token;
	char *reason;		/* why it is out; NULL while it is in */
	git_oid commit;		/* its last commit in the latest build */
	int on_branch;		/* found landed before building */
	int applied;		/* its change is there already, in commit */
	int done;		/* acked */
	int waits;		/* out because a dependency is: given back */
};

struct build {
	git_repository *repo;
	git_odb *odb;
	const struct wf_apply_opts *o;
	git_signature *committer;
	git_oid cur;		/* the commit the next change goes on */
	git_oid cur_tree;	/* and its tree */
	struct wf_cherry **cherry;	/* what the branch has, made lazily */
};

/* What one wf_apply_step() works with. */
struct step {
	git_repository *repo;
	struct wf_queue *q;
	struct wf_apply_opts o;
	struct wf_pack *pack;
	const char *branch;
	char refname[1024];
	struct item *items;
	size_t n;
	int64_t extended_at;	/* when the leases were last extended */
	json_t *memo;		/* tree id -> check result, in this step */
	int landed;		/* the branch moved to the build */
	struct wf_cherry *cherry;	/* patch ids on the branch */
};

/* Age at which a lock file on the branch is taken for a dead one's. */
#define WF_STALE_LOCK_MS 3000

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
	const char *para = message, *p, *found = NULL, *e, *end;
	size_t n = strlen(message);

	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
		n--;
	end = message + n;
	/* Trailers are in the last paragraph. */
	for (p = message; (p = strstr(p, "\n\n")) && p < end; p++)
		para = p + 2;
	for (p = para; (p = strstr(p, "Queue-Id: ")) && p < end; p += 10)
		if (p == para || p[-1] == '\n')
			found = p + 10;
	if (!found)
		return NULL;
	for (e = found; e < end && *e != '\n'; e++)
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

/*
 * Is the tree `tree`, which a change makes of b->cur_tree, safe to
 * land?  0 yes; 1 when not, with the change failed for that reason.
 */
static int
guarded(struct build *b, struct item *it, const git_oid *tree)
{
	char *why = NULL;
	int error;

	if ((error = wf_guard_tree(&why, b->repo, &b->cur_tree, tree)) <= 0)
		return error;
	error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
	free(why);
	return error;
}

/* "author Name <email> 1700000000 +0100\n" as libgit2 writes it. */
static size_t
put_signature(char *buf, const char *header, const git_signature *sig)
{
	int offset = sig->when.offset;
	char sign = offset < 0 || sig->when.sign == '-' ? '-' : '+';

	if (offset < 0)
		offset = -offset;
	return (size_t)sprintf(buf, "%s%s <%s> %u %c%02d%02d\n", header,
	    sig->name, sig->email, (unsigned)sig->when.time, sign,
	    offset / 60, offset % 60);
}

/*
 * The commit is formatted here, byte for byte as
 * git_commit_create_from_ids() does, and written with wf_pack_write():
 * libgit2's path looked the new commit up in every backend and rescanned
 * the pack directory first, for each commit of a batch.
 */
static int
commit_on(struct build *b, git_oid *out, const git_signature *author,
    const char *message, const char *id, const git_oid *tree_id)
{
	char *msg = NULL, *buf = NULL;
	size_t n;
	int error;

	if (!(msg = with_trailer(message, id)) || !(buf = malloc(256 +
	    strlen(author->name) + strlen(author->email) +
	    strlen(b->committer->name) + strlen(b->committer->email) +
	    strlen(msg)))) {
		error = wf_error_oom();
		goto out;
	}
	n = (size_t)sprintf(buf, "tree ");
	git_oid_fmt(buf + n, tree_id);
	n += GIT_OID_HEXSZ;
	n += (size_t)sprintf(buf + n, "\nparent ");
	git_oid_fmt(buf + n, &b->cur);
	n += GIT_OID_HEXSZ;
	buf[n++] = '\n';
	n += put_signature(buf + n, "author ", author);
	n += put_signature(buf + n, "committer ", b->committer);
	n += (size_t)sprintf(buf + n, "encoding UTF-8\n\n%s", msg);
	if ((error = wf_pack_write(out, b->odb, buf, n, GIT_OBJECT_COMMIT,
	    NULL)) < 0)
		goto out;
	b->cur = *out;
	b->cur_tree = *tree_id;
	error = 0;
out:
	free(buf);
	free(msg);
	return error;
}

/* Build the tree of a "files" change on `base`; 1 when it cannot apply. */
static int
files_tree(git_oid *out, struct build *b, const git_oid *base, json_t *files,
    struct item *it)
{
	struct wf_tree_edit *up = NULL;
	struct wf_tree_entry e;
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

		up[i].path = path;
		if (json_is_true(json_object_get(f, "delete"))) {
			if ((error = wf_tree_lookup(&e, b->repo, base,
			    path)) == WF_ENOTFOUND) {
				snprintf(why, sizeof(why), "file '%s': does "
				    "not exist", path);
				error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
				goto out;
			}
			if (error < 0)
				goto out;
			up[i].remove = 1;
			continue;
		}
		up[i].mode = mode ? (git_filemode_t)strtol(mode, NULL, 8) :
		    GIT_FILEMODE_BLOB;
		if (content) {
			if ((error = wf_change_unbase64(&data, &len,
			    content)) < 0)
				goto out;
			if ((error = wf_pack_write(&up[i].id, b->odb, data,
			    len, GIT_OBJECT_BLOB, NULL)) < 0) {
				if (error != WF_ECONFLICT)
					goto out;
				snprintf(why, sizeof(why), "file '%s': %s", path,
				    wf_error_last());
				error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
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
	if ((error = wf_tree_update(out, b->repo, base, up, n)) < 0) {
		if (error == WF_ENOMEM || error == WF_EOS)
			goto out;
		snprintf(why, sizeof(why), "cannot build the tree: %s",
		    wf_error_last());
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
	const char *date = json_string_value(json_object_get(a, "date"));
	long long t;
	int off;
	char sign;

	/* The date as validated: "SECONDS +HHMM". */
	if (a && date && sscanf(date, "%lld %c%4d", &t, &sign, &off) == 3 &&
	    git_signature_new(out, json_string_value(json_object_get(a,
	    "name")), json_string_value(json_object_get(a, "email")),
	    (git_time_t)t, (sign == '-' ? -1 : 1) * (off / 100 * 60 +
	    off % 100)) == 0)
		return 0;
	if (a && git_signature_now(out,
	    json_string_value(json_object_get(a, "name")),
	    json_string_value(json_object_get(a, "email"))) == 0)
		return 0;
	return signature_default(out, b->repo);
}

/*
 * Does b->cur have the change with patch id `pid`?  1 with the newest
 * commit that has it in *commit (left alone otherwise), 0, or < 0.
 */
static int
has_change(git_oid *commit, struct build *b, const git_oid *pid)
{
	int error;

	if (!*b->cherry && (error = wf_cherry_new(b->cherry, b->repo,
	    WF_CHERRY_DEPTH)) < 0)
		return error;
	return wf_cherry_find(commit, *b->cherry, &b->cur, pid);
}

/* The change of commit `pick` is on b->cur already: 1, in *commit. */
static int
pick_there(git_oid *commit, struct build *b, const git_commit *pick)
{
	git_oid pid, renamed;
	int error;

	if ((error = wf_cherry_commit_id(&pid, &renamed, b->repo, pick)) != 0)
		return error < 0 ? error : 0;
	if ((error = has_change(commit, b, &pid)) != 0 ||
	    git_oid_equal(&pid, &renamed))
		return error;
	return has_change(commit, b, &renamed);
}

/* Nothing of `it` goes on b->cur: it is there already, in `commit`. */
static void
already(struct item *it, const git_oid *commit)
{
	it->applied = 1;
	it->commit = *commit;
}

/*
 * Replay base..head on b->cur, one commit each, skipping the commits
 * whose change is there already; 1 when one conflicts.
 */
static int
replay(struct build *b, json_t *payload, struct item *it)
{
	git_revwalk *walk = NULL;
	git_commit *pick = NULL, *onto = NULL;
	git_index *idx = NULL;
	git_oid base, head, id, tree, there;
	char why[1024];
	size_t made = 0;
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
		error = wf_error_set_git(WF_ENOTFOUND, "cannot walk the range "
		    "of '%s'", it->id);
		goto out;
	}
	there = b->cur;
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), &id);
		if (git_commit_lookup(&pick, b->repo, &id) < 0) {
			error = wf_error_set_git(WF_ENOTFOUND, "cannot read "
			    "commit %s", hex);
			goto out;
		}
		if (git_commit_parentcount(pick) != 1) {
			snprintf(why, sizeof(why), "commit %.12s: merges and "
			    "root commits are not replayed", hex);
			error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
			goto out;
		}
		git_commit_free(onto);
		onto = NULL;
		if (git_commit_lookup(&onto, b->repo, &b->cur) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot read commit "
			    "to build on");
			goto out;
		}
		/* What libgit2 cannot replay is this change's alone. */
		if (git_cherrypick_commit(&idx, b->repo, pick, onto, 0,
		    NULL) < 0) {
			snprintf(why, sizeof(why), "commit %.12s cannot be "
			    "replayed: %s", hex, git_error_last() ?
			    git_error_last()->message : "unknown error");
			error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
			goto out;
		}
		/* As git rebase does, a change the branch has is skipped. */
		if (git_index_has_conflicts(idx) && (error = pick_there(&there,
		    b, pick)) != 0) {
			if (error < 0)
				goto out;
			goto next;
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
			snprintf(why, sizeof(why), "commit %.12s: cannot write "
			    "its tree: %s", hex, git_error_last() ?
			    git_error_last()->message : "unknown error");
			error = fail_item(it, why) < 0 ? WF_ENOMEM : 1;
			goto out;
		}
		if (git_oid_equal(&tree, &b->cur_tree)) {
			there = b->cur;
			if ((error = pick_there(&there, b, pick)) < 0)
				goto out;
			goto next;
		}
		if ((error = guarded(b, it, &tree)) != 0)
			goto out;
		if ((error = commit_on(b, &it->commit, git_commit_author(pick),
		    git_commit_message(pick), it->id, &tree)) < 0)
			goto out;
		made++;
next:
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
	if (made == 0)
		already(it, &there);
	error = 0;
out:
	git_index_free(idx);
	git_commit_free(onto);
	git_commit_free(pick);
	git_revwalk_free(walk);
	return error;
}

/*
 * A dependency of `it` leased with it is out of this build: then `it`
 * is out too, and waits for it.  Returns 1 then, 0 when it may go on.
 */
static int
dependency_out(struct step *s, struct item *it)
{
	json_t *deps = json_object_get(it->entry, "depends_on"), *d;
	size_t i, j;

	json_array_foreach(deps, i, d) {
		const char *id = json_string_value(d);

		for (j = 0; j < s->n; j++) {
			struct item *x = &s->items[j];
			char *why;

			if (x == it || !id || strcmp(x->id, id) != 0 ||
			    !x->reason)
				continue;
			free(it->reason);
			if (!(why = malloc(strlen(id) + 64)))
				return WF_ENOMEM;
			sprintf(why, "depends on '%s', which did not land", id);
			it->reason = why;
			it->waits = 1;
			return 1;
		}
	}
	return 0;
}

/*
 * Field `key` of a payload, which holds text as `key` or other bytes as
 * `key`_base64: *out borrowed from the payload or *owned (freed by the
 * caller); NULL when it has neither.
 */
static int
payload_bytes(const char **out, size_t *len, char **owned,
    const json_t *payload, const char *key, const struct item *it)
{
	char b64key[64];
	const json_t *v = json_object_get(payload, key);
	unsigned char *buf;
	int error;

	*out = NULL;
	*len = 0;
	*owned = NULL;
	if (v) {
		*out = json_string_value(v);
		*len = json_string_length(v);
		return 0;
	}
	snprintf(b64key, sizeof(b64key), "%s_base64", key);
	if (!(v = json_object_get(payload, b64key)))
		return 0;
	if ((error = wf_change_unbase64(&buf, len, json_string_value(v))) < 0)
		return wf_error_prefix(error, "entry '%s': %s", it->id, b64key);
	/* NUL-terminated, for a message. */
	if (!(*owned = realloc(buf, *len + 1))) {
		free(buf);
		return wf_error_oom();
	}
	(*owned)[*len] = '\0';
	*out = *owned;
	return 0;
}

/*
 * Put one change on b->cur.  Returns 0 when it applied, 1 when it does
 * not (it->reason says why), negative on errors that stop the step.
 */
static int
build_one(struct build *b, struct item *it)
{
	json_t *payload;
	const char *kind, *message, *text;
	struct wf_patch_opts po = WF_PATCH_OPTS_INIT;
	struct wf_patch *patch = NULL;
	git_signature *author = NULL;
	git_oid tree, pid, there;
	char *dflt = NULL, *raw_message = NULL, *raw_patch = NULL;
	size_t len;
	int error, r;

	/* The lease leaves payloads as text: each is parsed when built. */
	if ((error = wf_queue_payload(&payload, it->entry)) < 0)
		goto out;
	kind = json_string_value(json_object_get(payload, "kind"));
	if ((error = payload_bytes(&message, &len, &raw_message, payload,
	    "message", it)) < 0)
		goto out;
	if (!kind) {
		error = wf_error_set(WF_EINPUT, "entry '%s' has no payload",
		    it->id);
		goto out;
	}
	if (strcmp(kind, "commits") == 0) {
		error = replay(b, payload, it);
		goto out;
	}
	if (strcmp(kind, "patch") == 0) {
		po.fuzz = b->o->fuzz;
		if ((error = payload_bytes(&text, &len, &raw_patch, payload,
		    "patch", it)) < 0)
			goto out;
		error = text ? wf_patch_parse(&patch, text, len) :
		    wf_error_set(WF_EINPUT, "entry '%s' has no patch", it->id);
		if (error == 0)
			error = wf_patch_apply_id(&tree, b->repo, &b->cur_tree,
			    patch, &po);
		/* A patch that no longer applies may be there already. */
		if (error == WF_ECONFLICT &&
		    wf_cherry_patch_id(&pid, patch) == 0 &&
		    (r = has_change(&there, b, &pid)) != 0) {
			error = r;
			if (r > 0) {
				already(it, &there);
				error = 0;
			}
			goto out;
		}
		if (error == WF_ECONFLICT || error == WF_EINPUT) {
			error = fail_item(it, wf_error_last()) < 0 ?
			    WF_ENOMEM : 1;
			goto out;
		}
	} else {
		error = files_tree(&tree, b, &b->cur_tree,
		    json_object_get(payload, "files"), it);
	}
	if (error != 0)
		goto out;
	/* A change that changes nothing is there already. */
	if (git_oid_equal(&tree, &b->cur_tree)) {
		there = b->cur;
		if (patch && wf_cherry_patch_id(&pid, patch) == 0 &&
		    (error = has_change(&there, b, &pid)) < 0)
			goto out;
		already(it, &there);
		error = 0;
		goto out;
	}
	if (!message) {
		if (!(dflt = malloc(strlen(it->id) + 8))) {
			error = wf_error_oom();
			goto out;
		}
		sprintf(dflt, "Apply %s", it->id);
	}
	if ((error = guarded(b, it, &tree)) != 0)
		goto out;
	if ((error = author_of(&author, b, payload)) < 0 ||
	    (error = commit_on(b, &it->commit, author, message ? message : dflt,
	    it->id, &tree)) < 0)
		goto out;
out:
	/* A request that cannot apply to any tree fails, not the step. */
	if (error == WF_EINPUT || error == WF_ENOTFOUND)
		error = fail_item(it, wf_error_last()) < 0 ? WF_ENOMEM : 1;
	free(dflt);
	free(raw_message);
	free(raw_patch);
	git_signature_free(author);
	wf_patch_free(patch);
	return error;
}

/* Tell the progress callback; `ev` is stolen. */
static void
progress(struct step *s, json_t *ev)
{
	if (ev && s->o.progress)
		s->o.progress(ev, s->o.progress_payload);
	json_decref(ev);
}

/* Extend the leases still held once a third of their time is gone. */
static int
keep_leases(struct step *s)
{
	int64_t now = wf_clock_ms();
	size_t i;
	int error;

	if (now - s->extended_at < s->o.lease_ms / 3)
		return 0;
	for (i = 0; i < s->n; i++) {
		if (s->items[i].done)
			continue;
		if ((error = wf_queue_extend(s->q, s->items[i].id,
		    s->items[i].token, s->o.lease_ms)) < 0)
			return wf_error_prefix(error, "cannot keep the lease "
			    "of '%s'", s->items[i].id);
	}
	s->extended_at = now;
	return 0;
}

static int
tick(void *payload)
{
	return keep_leases(payload);
}

/* Write the objects built so far, for checks that read them. */
static int
flush(void *payload)
{
	struct step *s = payload;

	return wf_pack_flush(s->pack);
}

/*
 * Build the changes list[0..*k) on `base`, one after the other.  Those
 * that do not apply get their reason and leave the list, which keeps
 * its order; *head is the last commit (`base` when none applied).
 */
static int
build(git_oid *head, struct step *s, const git_oid *base, size_t *list,
    size_t *k)
{
	struct build b;
	git_commit *c = NULL;
	git_oid before, before_tree;
	int64_t t0 = wf_clock_ms();
	size_t i, kept = 0;
	int error;

	memset(&b, 0, sizeof(b));
	b.repo = s->repo;
	b.o = &s->o;
	b.cherry = &s->cherry;
	if (git_repository_odb(&b.odb, s->repo) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot open the object "
		    "database");
		goto out;
	}
	if ((error = signature_default(&b.committer, s->repo)) < 0)
		goto out;
	if (git_commit_lookup(&c, s->repo, base) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read commit to build "
		    "on");
		goto out;
	}
	b.cur = *base;
	b.cur_tree = *git_commit_tree_id(c);
	for (i = 0; i < *k; i++) {
		struct item *it = &s->items[list[i]];

		if (s->o.interrupt && *s->o.interrupt) {
			error = wf_error_set(WF_EINTR, "interrupted");
			goto out;
		}
		if ((error = keep_leases(s)) < 0)
			goto out;
		before = b.cur;
		before_tree = b.cur_tree;
		free(it->reason);
		it->reason = NULL;
		it->waits = 0;
		it->applied = 0;
		if ((error = dependency_out(s, it)) < 0 ||
		    (error == 0 && (error = build_one(&b, it)) < 0)) {
			if (error == WF_ENOMEM)
				error = wf_error_oom();
			goto out;
		}
		if (error == 0) {
			list[kept++] = list[i];
			if (it->applied)
				progress(s, json_pack("{s:s, s:s, s:s, s:s}",
				    "event", "applied", "target", s->branch,
				    "id", it->id, "commit", git_oid_tostr_s(
				    &it->commit)));
		} else {
			/* Drop what a range replayed before it stopped. */
			b.cur = before;
			b.cur_tree = before_tree;
		}
	}
	*k = kept;
	*head = b.cur;
	progress(s, json_pack("{s:s, s:s, s:I, s:I}", "event", "build",
	    "target", s->branch, "changes", (json_int_t)kept, "ms",
	    (json_int_t)(wf_clock_ms() - t0)));
	error = 0;
out:
	git_commit_free(c);
	git_signature_free(b.committer);
	git_odb_free(b.odb);
	return error;
}

static int
passed(const json_t *res)
{
	return json_is_true(json_object_get(res, "ok"));
}

/*
 * Run the checks on `head`, the changes list[0..k) built on `base`.
 * *out is borrowed from the step's memo: a tree is checked once a step.
 */
static int
check(json_t **out, struct step *s, const git_oid *base, const git_oid *head,
    const size_t *list, size_t k)
{
	struct wf_checks_opts co = WF_CHECKS_OPTS_INIT;
	git_commit *c = NULL;
	json_t *res = NULL, *r;
	char tree[GIT_OID_HEXSZ + 1], *ids = NULL;
	int64_t t0 = wf_clock_ms();
	size_t i, len = 1, cached = 1;
	int error;

	*out = NULL;
	if (git_commit_lookup(&c, s->repo, head) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the build");
		goto out;
	}
	git_oid_tostr(tree, sizeof(tree), git_commit_tree_id(c));
	if ((*out = json_object_get(s->memo, tree))) {
		error = 0;
		goto out;
	}
	for (i = 0; i < k; i++)
		len += strlen(s->items[list[i]].id) + 1;
	if (!(ids = malloc(len))) {
		error = wf_error_oom();
		goto out;
	}
	ids[0] = '\0';
	for (i = 0; i < k; i++) {
		if (i > 0)
			strcat(ids, " ");
		strcat(ids, s->items[list[i]].id);
	}
	co.timeout_ms = s->o.check_timeout_ms;
	co.grace_ms = s->o.check_grace_ms;
	co.cache = s->q;
	co.target = s->branch;
	co.queue_ids = ids;
	co.tick = tick;
	co.prepare = flush;
	co.payload = s;
	co.tmpdir = s->o.tmpdir;
	co.interrupt = s->o.interrupt;
	if ((error = wf_checks_run(&res, s->repo, s->o.checks, base, head,
	    &co)) < 0)
		goto out;
	if (json_object_set(s->memo, tree, res) < 0) {
		error = wf_error_oom();
		goto out;
	}
	json_array_foreach(json_object_get(res, "checks"), i, r)
		cached &= json_is_true(json_object_get(r, "cached"));
	progress(s, json_pack("{s:s, s:s, s:I, s:s, s:b, s:b, s:I}", "event",
	    "check", "target", s->branch, "changes", (json_int_t)k, "tree",
	    tree, "ok", passed(res), "cached", (int)cached, "ms",
	    (json_int_t)(wf_clock_ms() - t0)));
	*out = res;
	error = 0;
out:
	json_decref(res);
	free(ids);
	git_commit_free(c);
	return error;
}

/* Why a check result failed, with the output of the failing check. */
static int
check_reason(char **out, const char *prefix, const json_t *res)
{
	json_t *checks = json_object_get(res, "checks");
	json_t *r = json_array_get(checks, json_array_size(checks) - 1);
	const char *cmd = json_string_value(json_object_get(r, "command"));
	const char *output = json_string_value(json_object_get(r, "output"));
	const char *co = json_string_value(json_object_get(r,
	    "checkout_error"));
	size_t n = strlen(prefix) + (cmd ? strlen(cmd) : 0) +
	    (output ? strlen(output) : 0) + (co ? strlen(co) : 0) + 128;
	int len;

	if (!(*out = malloc(n)))
		return wf_error_oom();
	if (json_is_string(json_object_get(r, "checkout_error")))
		len = snprintf(*out, n, "%s%s", prefix, json_string_value(
		    json_object_get(r, "checkout_error")));
	else if (json_is_true(json_object_get(r, "timed_out")))
		len = snprintf(*out, n, "%scheck '%s' timed out after %lld ms",
		    prefix, cmd, (long long)json_integer_value(
		    json_object_get(r, "ms")));
	else if (json_is_integer(json_object_get(r, "signal")))
		len = snprintf(*out, n, "%scheck '%s' was killed by signal "
		    "%lld", prefix, cmd, (long long)json_integer_value(
		    json_object_get(r, "signal")));
	else
		len = snprintf(*out, n, "%scheck '%s' failed (exit status "
		    "%lld)", prefix, cmd, (long long)json_integer_value(
		    json_object_get(r, "exit")));
	if (output && *output)
		snprintf(*out + len, n - (size_t)len, ":\n%s", output);
	return 0;
}

/*
 * The changes list[0..k), built on `base`, failed their checks with
 * `failed`.  Find the culprits: test the first half on `base`, the rest
 * on what passed, down to single changes.  *out is then `base` plus
 * every change of the list that passes, a checked commit; the culprits
 * (and what no longer applies without them) are out with their reasons.
 */
static int
bisect(git_oid *out, struct step *s, const git_oid *base, size_t *list,
    size_t k, const json_t *failed)
{
	size_t kl = k / 2, kr = k - k / 2, *right = list + k / 2;
	json_t *res;
	git_oid mid, end;
	int error;

	if (k == 1) {
		*out = *base;
		return check_reason(&s->items[list[0]].reason, "", failed);
	}
	progress(s, json_pack("{s:s, s:s, s:I}", "event", "bisect", "target",
	    s->branch, "changes", (json_int_t)k));
	if ((error = build(&mid, s, base, list, &kl)) < 0)
		return error;
	if (kl > 0) {
		if ((error = check(&res, s, base, &mid, list, kl)) < 0)
			return error;
		if (!passed(res) && (error = bisect(&mid, s, base, list, kl,
		    res)) < 0)
			return error;
	}
	if ((error = build(&end, s, &mid, right, &kr)) < 0)
		return error;
	if (kr == 0) {
		*out = mid;
		return 0;
	}
	/* When the first half all passed, this is the tree that failed. */
	if ((error = check(&res, s, &mid, &end, right, kr)) < 0)
		return error;
	if (passed(res)) {
		*out = end;
		return 0;
	}
	return bisect(out, s, &mid, right, kr, res);
}

/*
 * Build and check what is left of the batch on `tip`; *head is what
 * may land (`tip` when nothing may), *k how many changes it holds.
 */
static int
build_checked(git_oid *head, size_t *k, struct step *s, const git_oid *tip,
    size_t *list)
{
	json_t *res, *tipres;
	size_t i;
	int error;

	for (*k = 0, i = 0; i < s->n; i++)
		if (!s->items[i].reason && !s->items[i].on_branch)
			list[(*k)++] = i;
	if (*k == 0) {
		*head = *tip;
		return 0;
	}
	if ((error = build(head, s, tip, list, k)) < 0)
		return error;
	/* Changes that are all there already leave nothing to check. */
	if (*k == 0 || git_oid_equal(head, tip) || !s->o.checks ||
	    !s->o.checks[0])
		return 0;
	if ((error = check(&res, s, tip, head, list, *k)) < 0)
		return error;
	if (passed(res))
		return 0;
	/* Bisecting assumes the tip passes: make sure. */
	if ((error = check(&tipres, s, tip, tip, NULL, 0)) < 0)
		return error;
	if (!passed(tipres)) {
		char prefix[1100];

		snprintf(prefix, sizeof(prefix), "the tip of '%s' fails its "
		    "checks too: ", s->branch);
		for (i = 0; i < *k; i++)
			if ((error = check_reason(&s->items[list[i]].reason,
			    prefix, tipres)) < 0)
				return error;
		*k = 0;
		*head = *tip;
		return 0;
	}
	if ((error = bisect(head, s, tip, list, *k, res)) < 0)
		return error;
	for (*k = 0, i = 0; i < s->n; i++)
		*k += !s->items[i].reason && !s->items[i].on_branch;
	return 0;
}

static int
tree_of(char *out, git_repository *repo, const git_oid *commit)
{
	git_commit *c = NULL;

	if (git_commit_lookup(&c, repo, commit) < 0)
		return wf_error_set_git(WF_EOS, "cannot read the build");
	git_oid_tostr(out, GIT_OID_HEXSZ + 1, git_commit_tree_id(c));
	git_commit_free(c);
	return 0;
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
		if (!items[i].reason && !items[i].on_branch) {
			strcat(m, " ");
			strcat(m, items[i].id);
		}
	*out = m;
	return 0;
}

/* Say in the audit log where the change of `it` already was. */
static int
note_applied(struct step *s, const struct item *it)
{
	char hex[GIT_OID_HEXSZ + 1];
	json_t *x = json_pack("{s:s}", "commit", git_oid_tostr(hex,
	    sizeof(hex), &it->commit));
	int error;

	if (!x)
		return wf_error_oom();
	error = wf_queue_note(s->q, it->id, it->token, "already applied", x);
	json_decref(x);
	return error;
}

/*
 * Ack every entry and add its line to `res`, in queue order: those that
 * landed in one transaction (after a note of `checks`, when there are
 * checks, in each one's audit log), then each one that failed.
 */
static int
ack_all(json_t *res, struct step *s, const json_t *checks)
{
	const char **ids = NULL, **tokens = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	size_t i, k = 0;
	json_t *v;
	int error;

	if (!(ids = calloc(s->n, sizeof(*ids))) ||
	    !(tokens = calloc(s->n, sizeof(*tokens)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < s->n; i++) {
		struct item *it = &s->items[i];

		if (it->reason)
			continue;
		if (checks && !it->on_branch && !it->applied &&
		    (error = wf_queue_note(s->q, it->id, it->token,
		    "checks passed", checks)) < 0)
			goto out;
		if (it->applied && (error = note_applied(s, it)) < 0)
			goto out;
		ids[k] = it->id;
		tokens[k++] = it->token;
	}
	if ((error = wf_queue_ack_landed_batch(s->q, ids, tokens, k)) < 0)
		goto out;
	for (i = 0; i < s->n; i++) {
		struct item *it = &s->items[i];
		json_int_t attempts = json_integer_value(json_object_get(
		    it->entry, "attempts"));
		json_int_t max = json_integer_value(json_object_get(it->entry,
		    "max_attempts"));
		const char *state = "landed";

		if (it->reason && it->waits) {
			if ((error = wf_queue_release(s->q, it->id, it->token,
			    it->reason)) < 0)
				goto out;
			state = "queued";
		} else if (it->reason) {
			if ((error = wf_queue_ack_failed(s->q, it->id,
			    it->token, it->reason)) < 0)
				goto out;
			state = attempts >= max ? "dead" : "failed";
		}
		it->done = 1;
		v = json_pack("{s:s, s:O, s:s}", "id", it->id, "queue_id",
		    json_object_get(it->entry, "queue_id"), "state", state);
		if (v && !it->reason)
			json_object_set_new(v, "commit", json_string(
			    git_oid_tostr(hex, sizeof(hex), &it->commit)));
		if (v && !it->reason && it->applied)
			json_object_set_new(v, "already_applied", json_true());
		if (v && it->reason)
			json_object_set_new(v, "error", json_string(it->reason));
		if (!v || json_array_append_new(res, v) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	error = 0;
out:
	free(ids);
	free(tokens);
	return error;
}

/*
 * A step failed: give back the leases still held, so the entries are
 * leased again at once, except for changes on the branch: those are
 * acked landed, or their leases left for wf_apply_recover().  Keeps
 * the step's error message.
 */
static void
settle(struct step *s, int error)
{
	char *msg = strdup(wf_error_last());
	size_t i;

	for (i = 0; i < s->n; i++) {
		struct item *it = &s->items[i];

		if (it->done)
			continue;
		if (it->on_branch || (s->landed && !it->reason))
			wf_queue_ack_landed(s->q, it->id, it->token, NULL);
		else
			wf_queue_release(s->q, it->id, it->token, msg ? msg :
			    "step failed");
	}
	wf_error_set(error, "%s", msg ? msg : "out of memory");
	free(msg);
}

/* The branch's tip; WF_ENOTFOUND when there is no such branch. */
static int
resolve_tip(git_oid *out, git_repository *repo, const char *refname)
{
	git_reference *ref = NULL, *direct = NULL;
	int error = 0;

	if (git_reference_lookup(&ref, repo, refname) < 0 ||
	    git_reference_resolve(&direct, ref) < 0)
		error = wf_error_set_git(WF_ENOTFOUND, "branch '%s' does not "
		    "exist", refname + 11);
	else
		*out = *git_reference_target(direct);
	git_reference_free(direct);
	git_reference_free(ref);
	return error;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" as seconds since the epoch; 0 if not. */
static int64_t
parse_time(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

/*
 * Look for the Queue-Id trailers of the ids in `want` (an object whose
 * values are null) on the first-parent history of `tip`; each one found
 * gets the hex id of its newest commit.  The walk ends when all are
 * found, or at the root, or after 1000 commits at the first commit more
 * than a day older than `since` (seconds; 0: no such bound).
 */
static int
find_trailers(size_t *found, json_t *want, git_repository *repo,
    const git_oid *tip, int64_t since)
{
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	size_t total = json_object_size(want), seen = 0, len;
	char hex[GIT_OID_HEXSZ + 1], key[WF_CHANGE_ID_MAX + 1];
	const char *v;
	git_oid id;
	int error;

	*found = 0;
	if (total == 0)
		return 0;
	if (git_revwalk_new(&walk, repo) < 0 ||
	    git_revwalk_simplify_first_parent(walk) < 0 ||
	    git_revwalk_push(walk, tip) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot walk the branch");
		goto out;
	}
	while (*found < total && (error = git_revwalk_next(&id, walk)) == 0) {
		json_t *slot;

		if (git_commit_lookup(&c, repo, &id) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot read a commit "
			    "of the branch");
			goto out;
		}
		if (++seen > 1000 && since > 0 &&
		    (int64_t)git_commit_time(c) < since - 86400)
			break;
		if ((v = wf_apply_queue_id(&len, git_commit_message(c))) &&
		    len < sizeof(key)) {
			memcpy(key, v, len);
			key[len] = '\0';
			slot = json_object_get(want, key);
			if (slot && json_is_null(slot)) {
				if (json_object_set_new(want, key,
				    json_string(git_oid_tostr(hex, sizeof(hex),
				    &id))) < 0) {
					error = wf_error_oom();
					goto out;
				}
				(*found)++;
			}
		}
		git_commit_free(c);
		c = NULL;
	}
	if (error < 0 && error != GIT_ITEROVER) {
		error = wf_error_set_git(WF_EOS, "cannot walk the branch");
		goto out;
	}
	error = 0;
out:
	git_commit_free(c);
	git_revwalk_free(walk);
	return error;
}

/*
 * Entries leased before (a crashed or timed-out attempt) may have
 * landed: look for their trailers, and land them without a build.
 */
static int
find_landed(struct step *s, const git_oid *tip)
{
	json_t *want = json_object();
	int64_t since = 0, t;
	size_t i, found;
	int error;

	if (!want)
		return wf_error_oom();
	for (i = 0; i < s->n; i++) {
		json_t *e = s->items[i].entry;

		if (json_integer_value(json_object_get(e, "attempts")) <= 1)
			continue;
		if (json_object_set_new(want, s->items[i].id, json_null()) < 0) {
			error = wf_error_oom();
			goto out;
		}
		t = parse_time(json_string_value(json_object_get(e,
		    "created_at")));
		if (since == 0 || t < since)
			since = t;
	}
	if ((error = find_trailers(&found, want, s->repo, tip, since)) < 0 ||
	    found == 0)
		goto out;
	for (i = 0; i < s->n; i++) {
		const char *hex = json_string_value(json_object_get(want,
		    s->items[i].id));

		if (!hex)
			continue;
		git_oid_fromstr(&s->items[i].commit, hex);
		s->items[i].on_branch = 1;
		progress(s, json_pack("{s:s, s:s, s:s, s:s}", "event", "found",
		    "target", s->branch, "id", s->items[i].id, "commit", hex));
	}
out:
	json_decref(want);
	return error;
}

/*
 * The branch's lock file is there: wait for its holder, a little at a
 * time, from *since on.  A lock older than WF_STALE_LOCK_MS is one a
 * killed process left (git holds a ref lock for milliseconds): it is
 * removed.  WF_EBUSY after a minute.
 */
static int
wait_lock(struct step *s, int64_t *since)
{
	const char *dir = git_repository_commondir(s->repo);
	struct timespec now;
	struct stat st;
	char path[2200];
	int64_t age;

	if (*since == 0)
		*since = wf_clock_ms();
	snprintf(path, sizeof(path), "%s%s%s.lock", dir,
	    dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", s->refname);
	clock_gettime(CLOCK_REALTIME, &now);
	if (stat(path, &st) == 0) {
		age = ((int64_t)now.tv_sec - st.st_mtim.tv_sec) * 1000 +
		    (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
		if (age >= WF_STALE_LOCK_MS) {
			if (unlink(path) < 0 && errno != ENOENT)
				return wf_error_set_errno(WF_EOS, "cannot remove "
				    "the stale lock '%s'", path);
			progress(s, json_pack("{s:s, s:s, s:s}", "event",
			    "stale-lock", "target", s->branch, "path", path));
			return 0;
		}
	}
	if (wf_clock_ms() - *since > 60000)
		return wf_error_set(WF_EBUSY, "branch '%s' stayed locked ('%s')",
		    s->branch, path);
	wf_clock_sleep_ms(50);
	return 0;
}

/* "NAME@HOST:PID" into buf. */
static void
owner_name(char *buf, size_t size, const char *name)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, size, "%s@%s:%ld", name ? name : "wf-apply", host,
	    (long)getpid());
}

/*
 * Whether process `pid` has ended and waits to be reaped: it holds no
 * lock and no lease any more, but kill() still finds it.
 */
static int
zombie(long pid)
{
#ifdef __linux__
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	/* "PID (COMM) STATE ...", and COMM may hold anything. */
	if ((p = strrchr(buf, ')')) && p[1] == ' ')
		return p[2] == 'Z' || p[2] == 'X';
#else
	(void)pid;
#endif
	return 0;
}

/* Whether `owner` names a process of this host that is gone. */
static int
owner_gone(const char *owner)
{
	const char *at = owner ? strrchr(owner, '@') : NULL;
	const char *colon = at ? strrchr(at, ':') : NULL;
	char host[256], *end;
	long pid;

	if (!colon)
		return 0;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if ((size_t)(colon - at - 1) != strlen(host) ||
	    strncmp(at + 1, host, strlen(host)) != 0)
		return 0;
	errno = 0;
	pid = strtol(colon + 1, &end, 10);
	if (errno || *end || pid <= 0 || pid == (long)getpid())
		return 0;
	if (kill((pid_t)pid, 0) < 0)
		return errno == ESRCH;
	return zombie(pid);
}

static void
step_init(struct step *s, git_repository *repo, struct wf_queue *q,
    const char *target, const struct wf_apply_opts *opts)
{
	static const struct wf_apply_opts defaults = WF_APPLY_OPTS_INIT;

	memset(s, 0, sizeof(*s));
	s->repo = repo;
	s->q = q;
	s->o = opts ? *opts : defaults;
	if (s->o.batch == 0)
		s->o.batch = defaults.batch;
	if (s->o.lease_ms <= 0)
		s->o.lease_ms = defaults.lease_ms;
	if (s->o.max_moves <= 0)
		s->o.max_moves = defaults.max_moves;
	if (s->o.check_timeout_ms <= 0)
		s->o.check_timeout_ms = defaults.check_timeout_ms;
	if (s->o.check_grace_ms <= 0)
		s->o.check_grace_ms = defaults.check_grace_ms;
	s->branch = target;
	if (strncmp(s->branch, "refs/heads/", 11) == 0)
		s->branch += 11;
	snprintf(s->refname, sizeof(s->refname), "refs/heads/%s", s->branch);
}

int
wf_apply_step(json_t **out, git_repository *repo, struct wf_queue *q,
    const char *target, const struct wf_apply_opts *opts)
{
	struct step s;
	json_t *leased = NULL, *res = NULL, *e, *checks = NULL;
	git_reference *ref = NULL;
	struct wf_worktree *wt = NULL;
	struct wf_lane *lane = NULL;
	char owner[512], *logmsg = NULL, tree[GIT_OID_HEXSZ + 1];
	size_t *list = NULL, i, k;
	git_oid tip, head;
	int64_t locked_at;
	int error, tries;

	*out = NULL;
	step_init(&s, repo, q, target, opts);
	owner_name(owner, sizeof(owner), s.o.owner);
	if (!(res = json_array()) || !(s.memo = json_object())) {
		error = wf_error_oom();
		goto out;
	}

	/* Nothing is leased before the lane is ours. */
	if (!s.o.lane && ((error = wf_lane_open(&lane, repo, s.branch)) < 0 ||
	    (error = wf_lane_take(NULL, lane, s.o.owner)) < 0))
		goto out;
	s.extended_at = wf_clock_ms();
	if ((error = wf_queue_lease(&leased, q, s.branch, s.o.batch, owner,
	    s.o.lease_ms)) < 0)
		goto out;
	if ((s.n = json_array_size(leased)) == 0)
		goto done;

	progress(&s, json_pack("{s:s, s:s, s:I}", "event", "lease", "target",
	    s.branch, "count", (json_int_t)s.n));
	if (!(s.items = calloc(s.n, sizeof(*s.items))) ||
	    !(list = calloc(s.n, sizeof(*list)))) {
		error = wf_error_oom();
		goto out;
	}
	json_array_foreach(leased, i, e) {
		s.items[i].entry = e;
		s.items[i].id = json_string_value(json_object_get(e, "id"));
		s.items[i].token = json_string_value(json_object_get(e,
		    "lease_token"));
	}
	/* A branch checked out with local changes is not moved at all. */
	if ((error = wf_worktree_find(&wt, repo, s.refname)) < 0 ||
	    (wt && (error = wf_worktree_clean(wt)) < 0))
		goto out;
	if (s.o.pack)
		s.pack = s.o.pack;
	else if ((error = wf_pack_attach(&s.pack, repo)) < 0)
		goto out;
	if ((error = resolve_tip(&tip, repo, s.refname)) < 0 ||
	    (error = find_landed(&s, &tip)) < 0)
		goto out;
	for (tries = 0;; tries++) {
		if (tries > 0 && (error = resolve_tip(&tip, repo,
		    s.refname)) < 0)
			goto out;
		if ((error = build_checked(&head, &k, &s, &tip, list)) < 0)
			goto out;
		if (k == 0 || git_oid_equal(&head, &tip))
			break;
		/* The objects go to disk before any reference names them. */
		if ((error = wf_pack_flush(s.pack)) < 0)
			goto out;
		if (s.o.before_land && (error = s.o.before_land(repo, &tip,
		    &head, s.o.payload)) < 0)
			goto out;
		if ((error = keep_leases(&s)) < 0)
			goto out;
		free(logmsg);
		logmsg = NULL;
		if ((error = reflog_message(&logmsg, s.items, s.n)) < 0)
			goto out;
		if (wt && (error = wf_worktree_clean(wt)) < 0)
			goto out;
		locked_at = 0;
		while ((error = git_reference_create_matching(&ref, repo,
		    s.refname, &head, 1, &tip, logmsg)) == GIT_ELOCKED)
			if ((error = wait_lock(&s, &locked_at)) < 0)
				goto out;
		if (error == 0) {
			s.landed = 1;
			progress(&s, json_pack("{s:s, s:s, s:I, s:s}", "event",
			    "land", "target", s.branch, "changes",
			    (json_int_t)k, "commit", git_oid_tostr(tree,
			    sizeof(tree), &head)));
			/* Landed is landed: a work tree behind is reported. */
			if (wt && wf_worktree_follow(wt, &tip, &head) < 0)
				progress(&s, json_pack("{s:s, s:s, s:s, s:s}",
				    "event", "worktree", "target", s.branch,
				    "path", wf_worktree_path(wt), "message",
				    wf_error_last()));
			break;
		}
		if (error != GIT_EMODIFIED) {
			error = wf_error_set_git(WF_EOS, "cannot move branch "
			    "'%s'", s.branch);
			goto out;
		}
		if (tries + 1 >= s.o.max_moves) {
			error = wf_error_set(WF_EBUSY, "branch '%s' kept "
			    "moving; gave up after %d rebuilds", s.branch,
			    tries + 1);
			goto out;
		}
		progress(&s, json_pack("{s:s, s:s}", "event", "moved",
		    "target", s.branch));
	}
	if (s.landed && s.o.checks && s.o.checks[0]) {
		if ((error = tree_of(tree, repo, &head)) < 0)
			goto out;
		checks = json_object_get(s.memo, tree);
	}
	if ((error = ack_all(res, &s, checks)) < 0)
		goto out;
done:
	*out = res;
	res = NULL;
	error = 0;
out:
	if (error < 0 && s.items)
		settle(&s, error);
	if (s.items)
		for (i = 0; i < s.n; i++)
			free(s.items[i].reason);
	free(s.items);
	free(list);
	free(logmsg);
	if (s.pack && s.pack != s.o.pack)
		wf_pack_free(s.pack);
	else if (s.pack)
		wf_pack_discard(s.pack);
	git_reference_free(ref);
	wf_worktree_free(wt);
	wf_cherry_free(s.cherry);
	json_decref(s.memo);
	json_decref(leased);
	json_decref(res);
	wf_lane_free(lane);
	return error;
}

int
wf_apply_recover(json_t **out, git_repository *repo, struct wf_queue *q,
    const char *target, const struct wf_apply_opts *opts)
{
	struct wf_queue_filter f = WF_QUEUE_FILTER_INIT;
	struct step s;
	json_t *leased = NULL, *res = NULL, *want = NULL, *e, *v;
	int64_t since = 0, t;
	size_t i, found;
	git_oid tip;
	int error;

	*out = NULL;
	step_init(&s, repo, q, target, opts);
	f.state = "leased";
	f.target = s.branch;
	if (!(res = json_array()) || !(want = json_object())) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = wf_queue_list(&leased, q, &f)) < 0)
		goto out;
	json_array_foreach(leased, i, e) {
		if (!owner_gone(json_string_value(json_object_get(e,
		    "lease_owner"))))
			continue;
		if (json_object_set_new(want, json_string_value(
		    json_object_get(e, "id")), json_null()) < 0) {
			error = wf_error_oom();
			goto out;
		}
		t = parse_time(json_string_value(json_object_get(e,
		    "created_at")));
		if (since == 0 || t < since)
			since = t;
	}
	if (json_object_size(want) == 0)
		goto done;
	if ((error = resolve_tip(&tip, repo, s.refname)) < 0 ||
	    (error = find_trailers(&found, want, repo, &tip, since)) < 0)
		goto out;
	json_array_foreach(leased, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *token = json_string_value(json_object_get(e,
		    "lease_token"));
		json_t *slot = json_object_get(want, id);

		if (!slot)
			continue;
		if (json_is_string(slot))
			error = wf_queue_ack_landed(q, id, token, NULL);
		else
			error = wf_queue_release(q, id, token, "released after "
			    "a crash of its lease owner");
		/* Taken meanwhile by another recovery: not ours. */
		if (error == WF_ECONFLICT || error == WF_ENOTFOUND)
			continue;
		if (error < 0)
			goto out;
		v = json_pack("{s:s, s:O, s:s}", "id", id, "queue_id",
		    json_object_get(e, "queue_id"), "state",
		    json_is_string(slot) ? "landed" : "queued");
		if (v && json_is_string(slot))
			json_object_set(v, "commit", slot);
		if (!v || json_array_append_new(res, v) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
done:
	*out = res;
	res = NULL;
	error = 0;
out:
	json_decref(want);
	json_decref(leased);
	json_decref(res);
	return error;
}
