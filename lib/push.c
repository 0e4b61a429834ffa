#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "push.h"

#define FOR_PREFIX "refs/for/"
#define HEADS_PREFIX "refs/heads/"
#define WF_PREFIX "refs/wf/"

static int
parse_bool(int *out, const char *v)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
	    strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
	    strcmp(v, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

int
wf_push_opts_parse(struct wf_push_opts *out, const char *const *options,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *o = options[i], *eq = strchr(o, '=');
		const char *v = eq ? eq + 1 : NULL;
		size_t klen = eq ? (size_t)(eq - o) : strlen(o);

		if (strncmp(o, "wf.", 3) != 0)
			continue;
		if (klen == 11 && strncmp(o, "wf.priority", klen) == 0) {
			char *end;
			long long p;

			errno = 0;
			p = v ? strtoll(v, &end, 10) : 0;
			if (!v || !*v || errno || *end)
				return wf_error_set(WF_EINPUT, "push option "
				    "'%.200s': expected wf.priority=N, an "
				    "integer", o);
			out->has_priority = 1;
			out->priority = p;
		} else if (klen == 10 && strncmp(o, "wf.message", klen) == 0) {
			if (!v)
				return wf_error_set(WF_EINPUT, "push option "
				    "'%.200s': expected wf.message=TEXT", o);
			out->message = v;
		} else if (klen == 7 && strncmp(o, "wf.wait", klen) == 0) {
			if (!v)
				out->wait = 1;
			else if (parse_bool(&out->wait, v) < 0)
				return wf_error_set(WF_EINPUT, "push option "
				    "'%.200s': expected wf.wait or "
				    "wf.wait=true|false", o);
		} else {
			return wf_error_set(WF_EINPUT, "unknown push option "
			    "'%.200s' (wf knows wf.priority=N, wf.message=TEXT "
			    "and wf.wait)", o);
		}
	}
	return 0;
}

int
wf_push_update_parse(struct wf_push_update *out, const char *line)
{
	char old[GIT_OID_HEXSZ + 1], new[GIT_OID_HEXSZ + 1];
	size_t len = strlen(line);

	memset(out, 0, sizeof(*out));
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len < 2 * GIT_OID_HEXSZ + 3 || line[GIT_OID_HEXSZ] != ' ' ||
	    line[2 * GIT_OID_HEXSZ + 1] != ' ')
		return wf_error_set(WF_EINPUT, "expected '<old> <new> <ref>', "
		    "got '%.100s'", line);
	memcpy(old, line, GIT_OID_HEXSZ);
	old[GIT_OID_HEXSZ] = '\0';
	memcpy(new, line + GIT_OID_HEXSZ + 1, GIT_OID_HEXSZ);
	new[GIT_OID_HEXSZ] = '\0';
	if (git_oid_fromstr(&out->old_id, old) < 0 ||
	    git_oid_fromstr(&out->new_id, new) < 0)
		return wf_error_set(WF_EINPUT, "expected object ids in "
		    "'%.100s'", line);
	len -= 2 * GIT_OID_HEXSZ + 2;
	if (!(out->ref = malloc(len + 1)))
		return wf_error_oom();
	memcpy(out->ref, line + 2 * GIT_OID_HEXSZ + 2, len);
	out->ref[len] = '\0';
	out->kind = WF_PUSH_PASS;
	return 0;
}

void
wf_push_update_release(struct wf_push_update *u)
{
	if (!u)
		return;
	free(u->ref);
	free(u->target);
	free(u->topic);
	free(u->id);
	wf_change_free(u->change);
	memset(u, 0, sizeof(*u));
}

int
wf_push_change_id(char **out, const char *target, const char *topic,
    const git_oid *head)
{
	static const char hexd[] = "0123456789ABCDEF";
	char hex[GIT_OID_HEXSZ + 1], buf[WF_CHANGE_ID_MAX + 32];
	const char *parts[2];
	size_t n = 0, i;
	int k;

	*out = NULL;
	parts[0] = target;
	parts[1] = topic;
	for (k = 0; k < 2 && parts[k]; k++) {
		const unsigned char *p = (const unsigned char *)parts[k];

		if (k == 1)
			buf[n++] = ':';
		for (; *p && n <= WF_CHANGE_ID_MAX; p++) {
			int plain = (*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') ||
			    (strchr("._/@+#-", *p) && !(n == 0 && *p == '-'));

			if (plain) {
				buf[n++] = (char)*p;
			} else {
				buf[n++] = '=';
				buf[n++] = hexd[*p >> 4];
				buf[n++] = hexd[*p & 15];
			}
		}
	}
	if (n + 13 > WF_CHANGE_ID_MAX)
		return wf_error_set(WF_EINPUT, "the ref name is too long for a "
		    "change id (%d bytes at most)", WF_CHANGE_ID_MAX);
	git_oid_tostr(hex, sizeof(hex), head);
	buf[n++] = '@';
	for (i = 0; i < 12; i++)
		buf[n++] = hex[i];
	buf[n] = '\0';
	if (!(*out = strdup(buf)))
		return wf_error_oom();
	return 0;
}

/* Whether refs/heads/<branch> exists: 1, 0, or an error. */
static int
branch_tip(git_oid *out, git_repository *repo, const char *branch)
{
	char *name = malloc(strlen(branch) + sizeof(HEADS_PREFIX));
	int error;

	if (!name)
		return wf_error_oom();
	sprintf(name, HEADS_PREFIX "%s", branch);
	error = git_reference_name_to_id(out, repo, name);
	free(name);
	if (error == 0)
		return 1;
	if (error == GIT_ENOTFOUND || error == GIT_EINVALIDSPEC)
		return 0;
	return wf_error_set_git(WF_EOS, "cannot read branch '%s'", branch);
}

/*
 * Split refs/for/<rest> into the longest prefix of <rest> that is a
 * branch and the topic after it.
 */
static int
split_for_ref(struct wf_push_update *u, git_oid *tip, git_repository *repo)
{
	const char *rest = u->ref + strlen(FOR_PREFIX);
	char *cand;
	size_t len = strlen(rest);
	int error;

	if (!(cand = strdup(rest)))
		return wf_error_oom();
	while (len > 0) {
		cand[len] = '\0';
		if ((error = branch_tip(tip, repo, cand)) < 0)
			goto out;
		if (error == 1) {
			u->target = cand;
			cand = NULL;
			if (rest[len] && !(u->topic = strdup(rest + len + 1))) {
				error = wf_error_oom();
				goto out;
			}
			error = 0;
			goto out;
		}
		while (len > 0 && rest[len - 1] != '/')
			len--;
		if (len > 0)
			len--;
	}
	error = wf_error_set(WF_EINPUT, "%s: no branch to queue for: push to "
	    "refs/for/<branch>[/<topic>], where <branch> exists", u->ref);
out:
	free(cand);
	return error;
}

static int
protected(int *out, git_repository *repo, const char *branch)
{
	git_config *cfg = NULL;
	char *key = malloc(strlen(branch) + 16);
	int error = 0;

	*out = 0;
	if (!key)
		return wf_error_oom();
	sprintf(key, "wf.%s.protect", branch);
	if (git_repository_config_snapshot(&cfg, repo) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the configuration");
		goto out;
	}
	error = git_config_get_bool(out, cfg, key);
	if (error == GIT_ENOTFOUND) {
		*out = 0;
		error = 0;
	} else if (error < 0) {
		error = wf_error_set_git(WF_EINPUT, "bad configuration '%s'",
		    key);
	}
out:
	git_config_free(cfg);
	free(key);
	return error;
}

/* Refuse a range holding a merge: wf-apply replays commit by commit. */
static int
check_no_merge(const struct wf_push_update *u, git_repository *repo)
{
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	git_oid id;
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	if (git_revwalk_new(&walk, repo) < 0 ||
	    git_revwalk_push(walk, &u->new_id) < 0 ||
	    git_revwalk_hide(walk, &u->base) < 0) {
		error = wf_error_set_git(WF_EOS, "%s: cannot walk the commits",
		    u->ref);
		goto out;
	}
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		if (git_commit_lookup(&c, repo, &id) < 0) {
			error = wf_error_set_git(WF_EOS, "%s: cannot read a "
			    "commit", u->ref);
			goto out;
		}
		if (git_commit_parentcount(c) != 1) {
			error = wf_error_set(WF_EINPUT, "%s: commit %.12s is a "
			    "merge: the queue replays commits one by one; "
			    "rebase onto '%s' and push again", u->ref,
			    git_oid_tostr(hex, sizeof(hex), &id), u->target);
			goto out;
		}
		git_commit_free(c);
		c = NULL;
	}
	error = error == GIT_ITEROVER ? 0 : wf_error_set_git(WF_EOS, "%s: "
	    "cannot walk the commits", u->ref);
out:
	git_commit_free(c);
	git_revwalk_free(walk);
	return error;
}

static int
build_change(struct wf_push_update *u, git_repository *repo,
    const struct wf_push_opts *opts)
{
	struct wf_json_doc doc;
	char base[GIT_OID_HEXSZ + 1], head[GIT_OID_HEXSZ + 1];
	json_t *v;
	int error;

	git_oid_tostr(base, sizeof(base), &u->base);
	git_oid_tostr(head, sizeof(head), &u->new_id);
	if (!(v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "id", u->id,
	    "target", u->target, "kind", "commits", "base", base, "head",
	    head, "meta", "ref", u->ref)))
		return wf_error_oom();
	if (opts && opts->has_priority && json_object_set_new(v, "priority",
	    json_integer(opts->priority)) < 0) {
		error = wf_error_oom();
		goto out;
	}
	if (opts && opts->message && json_object_set_new(v, "message",
	    json_string(opts->message)) < 0) {
		error = wf_error_set(WF_EINPUT, "%s: push option wf.message is "
		    "not valid UTF-8", u->ref);
		goto out;
	}
	memset(&doc, 0, sizeof(doc));
	doc.value = v;
	doc.name = u->ref;
	doc.line = doc.col = 1;
	error = wf_change_parse(&u->change, &doc, repo, NULL);
out:
	json_decref(v);
	return error;
}

int
wf_push_check(struct wf_push_update *u, git_repository *repo,
    const struct wf_push_opts *opts)
{
	git_oid tip;
	char hex[GIT_OID_HEXSZ + 1];
	int error, prot;

	u->kind = WF_PUSH_PASS;
	if (strncmp(u->ref, HEADS_PREFIX, strlen(HEADS_PREFIX)) == 0) {
		const char *b = u->ref + strlen(HEADS_PREFIX);

		if ((error = protected(&prot, repo, b)) < 0)
			return error;
		if (prot)
			return wf_error_set(WF_EINPUT, "%s: '%s' is protected: "
			    "its changes land through the queue; push to "
			    "refs/for/%s instead (git push <remote> "
			    "HEAD:refs/for/%s)", u->ref, b, b, b);
		return 0;
	}
	if (strncmp(u->ref, WF_PREFIX, strlen(WF_PREFIX)) == 0) {
		/* Taking away a kept change is the pusher's to decide. */
		if (git_oid_is_zero(&u->new_id))
			return 0;
		return wf_error_set(WF_EINPUT, "%s: refs/wf/ is the queue's "
		    "own: push to refs/for/<branch>[/<topic>] instead", u->ref);
	}
	if (strncmp(u->ref, FOR_PREFIX, strlen(FOR_PREFIX)) != 0)
		return 0;
	if ((error = split_for_ref(u, &tip, repo)) < 0) {
		/* Taking away a ref nothing can queue for is fine. */
		if (git_oid_is_zero(&u->new_id) && error == WF_EINPUT) {
			wf_error_clear();
			u->kind = WF_PUSH_WITHDRAW;
			return 0;
		}
		return error;
	}
	if (git_oid_is_zero(&u->new_id)) {
		u->kind = WF_PUSH_WITHDRAW;
		return 0;
	}
	u->kind = WF_PUSH_QUEUE;
	if ((error = wf_push_change_id(&u->id, u->target, u->topic,
	    &u->new_id)) < 0)
		return wf_error_prefix(error, "%s", u->ref);
	error = git_merge_base(&u->base, repo, &u->new_id, &tip);
	if (error == GIT_ENOTFOUND)
		return wf_error_set(WF_EINPUT, "%s: commit %.12s has no history "
		    "in common with '%s'", u->ref, git_oid_tostr(hex,
		    sizeof(hex), &u->new_id), u->target);
	if (error < 0)
		return wf_error_set_git(WF_EOS, "%s: cannot find the merge "
		    "base with '%s'", u->ref, u->target);
	if (git_oid_equal(&u->base, &u->new_id))
		return wf_error_set(WF_EINPUT, "%s: nothing to queue: commit "
		    "%.12s is in '%s' already", u->ref, git_oid_tostr(hex,
		    sizeof(hex), &u->new_id), u->target);
	if ((error = check_no_merge(u, repo)) < 0)
		return error;
	return build_change(u, repo, opts);
}

/* The change id carried by refs/for/ ref `ref` at `id`, or NULL. */
static int
carried_id(char **out, git_repository *repo, const char *ref,
    const git_oid *id)
{
	struct wf_push_update u;
	git_oid tip;
	int error;

	*out = NULL;
	memset(&u, 0, sizeof(u));
	if (!(u.ref = strdup(ref)))
		return wf_error_oom();
	error = split_for_ref(&u, &tip, repo);
	if (error == 0)
		error = wf_push_change_id(out, u.target, u.topic, id);
	if (error == WF_EINPUT) {
		/* No branch for it (any more), or no id: not a change. */
		wf_error_clear();
		error = 0;
	}
	wf_push_update_release(&u);
	return error;
}

/* The refs under `glob` and the commits they point at, as {name: hex}. */
static int
for_refs(json_t **out, git_repository *repo, const char *glob)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	json_t *refs;
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	*out = NULL;
	if (!(refs = json_object()))
		return wf_error_oom();
	if (git_reference_iterator_glob_new(&it, repo, glob) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot list the refs");
		goto out;
	}
	while ((error = git_reference_next(&ref, it)) == 0) {
		const git_oid *id = git_reference_target(ref);

		if (id && json_object_set_new(refs, git_reference_name(ref),
		    json_string(git_oid_tostr(hex, sizeof(hex), id))) < 0) {
			error = wf_error_oom();
			goto out;
		}
		git_reference_free(ref);
		ref = NULL;
	}
	if (error != GIT_ITEROVER) {
		error = wf_error_set_git(WF_EOS, "cannot list the refs");
		goto out;
	}
	error = 0;
	*out = refs;
	refs = NULL;
out:
	git_reference_free(ref);
	git_reference_iterator_free(it);
	json_decref(refs);
	return error;
}

/*
 * Delete ref `name` if it still points at `id`: 1 when deleted, 0 when it
 * moved or is gone.
 */
static int
delete_if(git_repository *repo, const char *name, const git_oid *id)
{
	git_reference *ref = NULL;
	const git_oid *now;
	int error;

	error = git_reference_lookup(&ref, repo, name);
	if (error == GIT_ENOTFOUND)
		return 0;
	if (error < 0)
		return wf_error_set_git(WF_EOS, "cannot read '%s'", name);
	if (!(now = git_reference_target(ref)) || !git_oid_equal(now, id)) {
		error = 0;
		goto out;
	}
	error = git_reference_delete(ref);
	if (error == 0)
		error = 1;
	else if (error == GIT_EMODIFIED || error == GIT_ENOTFOUND)
		error = 0;
	else
		error = wf_error_set_git(WF_EOS, "cannot delete '%s'", name);
out:
	git_reference_free(ref);
	return error;
}

/* The change id kept at refs/wf/changes/<queue id> `ref`, and its state. */
static int
kept_id(char **id, char **state, struct wf_queue *q, const char *ref)
{
	const char *n = ref + strlen(WF_PUSH_KEPT_PREFIX);
	char *end;
	long long qid;
	int error;

	*id = *state = NULL;
	errno = 0;
	qid = strtoll(n, &end, 10);
	if (errno || *end || end == n || *n == '0' || qid <= 0)
		return 0;	/* not a queue id: not ours to remove */
	error = wf_queue_find_qid(id, state, q, (int64_t)qid);
	if (error == WF_ENOTFOUND) {
		/* Not committed yet, or dropped: either way, left alone. */
		wf_error_clear();
		return 0;
	}
	return error;
}

int
wf_push_sweep(json_t **out, git_repository *repo, struct wf_queue *q)
{
	static const char *const globs[] = { WF_PUSH_KEPT_PREFIX "*",
	    FOR_PREFIX "*", NULL };
	json_t *refs = NULL, *removed = NULL, *entry = NULL, *hexv;
	const char *name, *state;
	char *id = NULL, *st = NULL;
	git_oid oid;
	size_t g;
	int error;

	if (out)
		*out = NULL;
	if (!(removed = json_array()))
		return wf_error_oom();
	for (g = 0; globs[g]; g++) {
		json_decref(refs);
		if ((error = for_refs(&refs, repo, globs[g])) < 0)
			goto out;
		json_object_foreach(refs, name, hexv) {
			if (git_oid_fromstr(&oid, json_string_value(hexv)) < 0)
				continue;
			if (g == 0) {
				if ((error = kept_id(&id, &st, q, name)) < 0)
					goto out;
				state = st;
			} else {
				/* Refs of old, before proc-receive. */
				if ((error = carried_id(&id, repo, name,
				    &oid)) < 0)
					goto out;
				state = NULL;
				if (id) {
					error = wf_queue_show(&entry, q, id);
					if (error == WF_ENOTFOUND) {
						wf_error_clear();
					} else if (error < 0) {
						goto out;
					} else {
						state = json_string_value(
						    json_object_get(entry,
						    "state"));
					}
				}
			}
			error = 0;
			if (id && state && strcmp(state, "landed") == 0) {
				/* Compare-and-delete: a ref moved since stays. */
				error = delete_if(repo, name, &oid);
				if (error == 1 && json_array_append_new(removed,
				    json_pack("{s:s, s:s}", "ref", name, "id",
				    id)) < 0)
					error = wf_error_oom();
				if (error < 0)
					goto out;
			}
			json_decref(entry);
			entry = NULL;
			free(id);
			free(st);
			id = st = NULL;
		}
	}
	error = 0;
	if (out) {
		*out = removed;
		removed = NULL;
	}
out:
	json_decref(entry);
	free(id);
	free(st);
	json_decref(refs);
	json_decref(removed);
	return error;
}
