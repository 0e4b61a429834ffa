#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "prepush.h"
#include "run.h"
#include "sandbox.h"

int
wf_prepush_is_check(const char *step_id)
{
	return step_id && strncmp(step_id, "pre-push", 8) == 0 &&
	    (step_id[8] == '\0' || step_id[8] == '-');
}

/* The commit refs/remotes/<remote>/<branch> names: 1, or 0 if none. */
static int
tracking(git_oid *out, git_repository *repo, const char *remote,
    const char *branch, size_t len)
{
	git_reference *ref = NULL, *resolved = NULL;
	char *name;
	int found = 0;

	if (!(name = malloc(strlen(remote) + len + 16)))
		return wf_error_oom();
	sprintf(name, "refs/remotes/%s/%.*s", remote, (int)len, branch);
	if (git_reference_lookup(&ref, repo, name) == 0 &&
	    git_reference_resolve(&resolved, ref) == 0 &&
	    git_reference_target(resolved)) {
		git_oid_cpy(out, git_reference_target(resolved));
		found = 1;
	}
	git_error_clear();
	git_reference_free(resolved);
	git_reference_free(ref);
	free(name);
	return found;
}

/* The tracking branch of refs/for/<rest>: the longest prefix that has one. */
static int
tracking_for(git_oid *out, git_repository *repo, const char *remote,
    const char *rest)
{
	size_t len = strlen(rest);
	int found;

	while (len > 0) {
		if ((found = tracking(out, repo, remote, rest, len)) != 0)
			return found;
		while (len > 0 && rest[len - 1] != '/')
			len--;
		if (len > 0)
			len--;
	}
	return 0;
}

int
wf_prepush_base(git_oid *out, int *found, git_repository *repo,
    const char *remote, const char *remote_ref, const git_oid *remote_id,
    const git_oid *local)
{
	git_odb *odb = NULL;
	git_oid other;
	int have = 0, error;

	*found = 0;
	if (!git_oid_is_zero(remote_id)) {
		if (git_repository_odb(&odb, repo) < 0)
			return wf_error_set_git(WF_EOS, "cannot open the object "
			    "database");
		if (git_odb_exists(odb, remote_id)) {
			git_oid_cpy(&other, remote_id);
			have = 1;
		}
		git_odb_free(odb);
	}
	if (!have && strncmp(remote_ref, "refs/for/", 9) == 0)
		have = tracking_for(&other, repo, remote, remote_ref + 9);
	else if (!have && strncmp(remote_ref, "refs/heads/", 11) == 0)
		have = tracking(&other, repo, remote, remote_ref + 11,
		    strlen(remote_ref + 11));
	if (have < 0)
		return have;
	if (!have && (have = tracking(&other, repo, remote, "HEAD", 4)) < 0)
		return have;
	if (!have)
		return 0;
	error = git_merge_base(out, repo, local, &other);
	if (error == GIT_ENOTFOUND) {
		git_error_clear();
		return 0;
	}
	if (error < 0)
		return wf_error_set_git(WF_EOS, "cannot find a merge base");
	*found = 1;
	return 0;
}

/* The workflow of entry `e` cut down to its pre-push steps, or NULL. */
static int
cut(struct wf_workflow **out, const struct wf_catalog_entry *e)
{
	const struct wf_workflow *w = e->workflow;
	struct wf_json_doc doc;
	struct wf_jpath path = WF_JPATH_INIT;
	json_t *def = NULL, *steps = NULL, *s;
	size_t i;
	int error;

	*out = NULL;
	if (!(steps = json_array()))
		return wf_error_oom();
	json_array_foreach(w->steps, i, s) {
		const char *id = json_string_value(json_object_get(s, "id"));

		if (wf_prepush_is_check(id) && json_array_append(steps, s) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	error = 0;
	if (json_array_size(steps) == 0)
		goto out;
	if (!(def = json_pack("{s:s, s:O}", "name", w->name, "steps",
	    steps))) {
		error = wf_error_oom();
		goto out;
	}
	memset(&doc, 0, sizeof(doc));
	doc.value = def;
	doc.name = e->file;
	doc.line = doc.col = 1;
	if ((error = wf_workflow_parse(out, &doc, &path, def,
	    WF_WORKFLOW_DEFINITION)) < 0)
		wf_error_prefix(error, "workflow '%s': its pre-push steps do not "
		    "stand on their own", w->name);
out:
	json_decref(def);
	json_decref(steps);
	return error;
}

int
wf_prepush_select(struct wf_workflow ***out, size_t *n,
    const struct wf_catalog *c, const json_t *plan)
{
	const json_t *cands = json_object_get(plan, "candidates"), *cand;
	struct wf_workflow **ws = NULL, *w = NULL;
	size_t i, idx, count = 0;
	int error;

	*out = NULL;
	*n = 0;
	if (json_array_size(cands) == 0)
		return 0;
	if (!(ws = calloc(json_array_size(cands), sizeof(*ws))))
		return wf_error_oom();
	json_array_foreach(cands, i, cand) {
		const char *name = json_string_value(json_object_get(cand,
		    "name"));

		if (!name || wf_catalog_find(&idx, c, name) < 0)
			continue;
		if ((error = cut(&w, &c->entries[idx])) < 0)
			goto out;
		if (w)
			ws[count++] = w;
	}
	if (count == 0) {
		free(ws);
		return 0;
	}
	*out = ws;
	*n = count;
	ws = NULL;
	count = 0;
	error = 0;
out:
	for (i = 0; i < count; i++)
		wf_workflow_free(ws[i]);
	free(ws);
	return error;
}

int
wf_prepush_run(json_t **out, git_repository *repo,
    struct wf_workflow *const *w, size_t n, const git_oid *commit,
    const struct wf_prepush_opts *opts)
{
	struct wf_run_opts ro = WF_RUN_OPTS_INIT;
	struct wf_run *run = NULL;
	struct wf_sandbox **sbs = NULL;
	struct wf_run_job *jobs = NULL;
	json_t *results = NULL, *res = NULL;
	size_t i, id;
	int error, rc;

	*out = NULL;
	if (!(results = json_array()))
		return wf_error_oom();
	if (n == 0)
		goto done;
	if (!(sbs = calloc(n, sizeof(*sbs))) ||
	    !(jobs = calloc(n, sizeof(*jobs)))) {
		error = wf_error_oom();
		goto out;
	}
	ro.jobs = opts && opts->jobs ? opts->jobs : 1;
	ro.interrupt = opts ? opts->interrupt : NULL;
	if ((error = wf_run_new(&run, &ro)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((error = wf_sandbox_new(&sbs[i], repo, commit, NULL)) < 0 ||
		    (error = wf_sandbox_setenv(sbs[i], "WF_WORKFLOW",
		    w[i]->name)) < 0 ||
		    (error = wf_sandbox_setenv(sbs[i], "WF_HOOK",
		    "pre-push")) < 0)
			goto out;
		jobs[i].workflow = w[i];
		jobs[i].sandbox = sbs[i];
		if ((error = wf_run_add(NULL, run, &jobs[i])) < 0)
			goto out;
	}
	while ((rc = wf_run_next(&id, run)) == 1)
		;
	if (rc < 0) {
		error = rc;
		goto out;
	}
	for (i = 0; i < n; i++) {
		json_t *r;

		if ((error = wf_run_result(&res, run, i)) < 0)
			goto out;
		r = json_pack("{s:s}", "workflow", w[i]->name);
		if (!r || json_object_update(r, res) < 0) {
			json_decref(r);
			error = wf_error_oom();
			goto out;
		}
		if (json_array_append_new(results, r) < 0) {
			error = wf_error_oom();
			goto out;
		}
		json_decref(res);
		res = NULL;
	}
done:
	*out = results;
	results = NULL;
	error = 0;
out:
	json_decref(res);
	wf_run_free(run);
	for (i = 0; sbs && i < n; i++)
		wf_sandbox_free(sbs[i]);
	free(sbs);
	free(jobs);
	json_decref(results);
	return error;
}
