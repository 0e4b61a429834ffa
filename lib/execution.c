#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "clock.h"
#include "error.h"
#include "str.h"
#include "execution.h"
#include "hash.h"
#include "map.h"
#include "path.h"
#include "run.h"
#include "sandbox.h"
#include "state.h"
#include "workflow.h"

#define MSG_EXECUTED "Workflow executed successfully."
#define MSG_PREVIEW "Multi-workflow execution skipped due to preview-only mode."

enum wstatus { W_PENDING, W_EXECUTED, W_FAILED, W_SKIPPED };

/* One deliverable: where the workflow writes it, where it lands. */
struct dl {
	const char *local;
	const char *final;
};

/* One workflow of the plan and what became of it. */
struct pwf {
	struct wf_workflow *w;
	size_t stage;
	enum wstatus status;
	char *message;
	json_t *created;		/* executed: the final paths */
	json_t *steps;			/* ran: wf_run_result()'s steps */
	json_t *change;			/* the canonical change request */
	struct dl *dls;
	size_t ndls;
	struct wf_sandbox *sb;
	struct wf_run_job job;
	char *log_dir;
	size_t job_id;
};

struct exec {
	const struct wf_json_doc *doc;
	struct wf_execution_opts o;
	git_repository *repo;
	json_t *plan;
	struct wf_jpath path;
	const char *plan_id;
	char number[32];		/* "none" without one */
	char env_number[32];		/* "" without one */
	const char *title;
	json_t *issue_number;		/* borrowed; NULL when absent */
	int allow_partial, preview;
	json_t *stages;
	json_t *entries;		/* the manifest's, or NULL */
	struct pwf *wfs;
	size_t n;
	struct wf_map names;		/* name -> index in wfs */
	git_oid base;
	char base_hex[GIT_OID_HEXSZ + 1];
	char *target;
	char *log_root;
	const char *stop;		/* why later stages are skipped */
	int64_t deadline;		/* 0: none */
	json_t *done;			/* executed in an earlier, killed run */
};

static int
set_new(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		return wf_error_oom();
	return 0;
}

static int
set_message(struct pwf *p, const char *msg)
{
	free(p->message);
	if (!(p->message = strdup(msg)))
		return wf_error_oom();
	return 0;
}

/* The value of `key` in obj, with the key pushed on the path. */
static json_t *
field(struct exec *e, json_t *obj, const char *key)
{
	wf_jpath_push_key(&e->path, key);
	return json_object_get(obj, key);
}

static int
bad(struct exec *e, const char *what)
{
	int error = wf_json_error(e->doc, &e->path, "%s", what);

	return error;
}

static int
req_bool(int *out, struct exec *e, const char *key)
{
	json_t *v = field(e, e->plan, key);
	int error;

	if (!v)
		error = bad(e, "missing");
	else
		error = wf_json_check_bool(out, e->doc, &e->path, v);
	wf_jpath_pop(&e->path);
	return error;
}

static int
parse_stages(struct exec *e)
{
	static const char *const keys[] = { "index", "run_mode", "workflows",
	    "blocking_conflicts", NULL };
	json_t *st, *v, *name;
	size_t i, k, idx;
	int error = 0;

	wf_jpath_push_key(&e->path, "stages");
	if (!json_is_array(e->stages)) {
		error = bad(e, "expected an array of stages");
		goto out;
	}
	json_array_foreach(e->stages, i, st) {
		const char **strs = NULL;
		const char *mode;
		int64_t index;
		size_t nstrs;

		wf_jpath_push_index(&e->path, i);
		if ((error = wf_json_check_object(e->doc, &e->path, st,
		    keys)) < 0)
			goto out;
		v = field(e, st, "index");
		if (!v || wf_json_check_int(&index, e->doc, &e->path, v) < 0 ||
		    index != (int64_t)i) {
			error = bad(e, "expected the stage's position");
			goto out;
		}
		wf_jpath_pop(&e->path);
		v = field(e, st, "run_mode");
		if (!v || wf_json_check_string(&mode, e->doc, &e->path, v) < 0 ||
		    (strcmp(mode, "sequential") && strcmp(mode, "parallel"))) {
			error = bad(e, "expected \"sequential\" or \"parallel\"");
			goto out;
		}
		wf_jpath_pop(&e->path);
		v = field(e, st, "blocking_conflicts");
		if (!v || (error = wf_json_check_strings(&strs, &nstrs, e->doc,
		    &e->path, v)) < 0) {
			if (!v)
				error = bad(e, "missing");
			goto out;
		}
		free(strs);
		wf_jpath_pop(&e->path);
		v = field(e, st, "workflows");
		if (!v || (error = wf_json_check_strings(&strs, &nstrs, e->doc,
		    &e->path, v)) < 0) {
			if (!v)
				error = bad(e, "missing");
			goto out;
		}
		free(strs);
		json_array_foreach(v, k, name) {
			wf_jpath_push_index(&e->path, k);
			if (wf_map_get(&idx, &e->names,
			    json_string_value(name)) < 0) {
				error = wf_json_error(e->doc, &e->path, "no "
				    "workflow '%s' in the plan",
				    json_string_value(name));
				goto out;
			}
			if (e->wfs[idx].stage != SIZE_MAX) {
				error = wf_json_error(e->doc, &e->path,
				    "workflow '%s' is in two stages",
				    json_string_value(name));
				goto out;
			}
			e->wfs[idx].stage = i;
			wf_jpath_pop(&e->path);
		}
		wf_jpath_pop(&e->path);
		wf_jpath_pop(&e->path);
	}
	for (i = 0; i < e->n; i++)
		if (e->wfs[i].stage == SIZE_MAX) {
			error = wf_json_error(e->doc, &e->path, "workflow '%s' "
			    "is in no stage", e->wfs[i].w->name);
			goto out;
		}
	e->path.depth = 0;
	return 0;
out:
	e->path.depth = 0;
	return error;
}

static int
parse_manifest(struct exec *e, json_t *m)
{
	static const char *const keys[] = { "workflow", "name", "path",
	    "template", "renamed_from", NULL };
	json_t *entry;
	size_t i, idx;
	int error = 0;

	wf_jpath_push_key(&e->path, "deliverable_manifest");
	if (!json_is_object(m) ||
	    !json_is_array(e->entries = json_object_get(m, "entries"))) {
		error = bad(e, "expected {\"entries\": [...]}");
		goto out;
	}
	wf_jpath_push_key(&e->path, "entries");
	json_array_foreach(e->entries, i, entry) {
		const char *wf, *path, *from = NULL, *problem;
		struct pwf *p;
		struct dl *d;
		json_t *v;

		wf_jpath_push_index(&e->path, i);
		if ((error = wf_json_check_object(e->doc, &e->path, entry,
		    keys)) < 0)
			goto out;
		v = field(e, entry, "workflow");
		if (!v || wf_json_check_string(&wf, e->doc, &e->path, v) < 0 ||
		    wf_map_get(&idx, &e->names, wf) < 0) {
			error = bad(e, "expected a workflow of the plan");
			goto out;
		}
		wf_jpath_pop(&e->path);
		v = field(e, entry, "path");
		if (!v || wf_json_check_string(&path, e->doc, &e->path, v) < 0 ||
		    (problem = wf_path_problem(path))) {
			error = bad(e, "expected a path inside the repository");
			goto out;
		}
		wf_jpath_pop(&e->path);
		if ((v = field(e, entry, "renamed_from")) &&
		    (wf_json_check_string(&from, e->doc, &e->path, v) < 0 ||
		    wf_path_problem(from))) {
			error = bad(e, "expected a path inside the repository");
			goto out;
		}
		wf_jpath_pop(&e->path);
		p = &e->wfs[idx];
		if (!(d = realloc(p->dls, (p->ndls + 1) * sizeof(*d)))) {
			error = wf_error_oom();
			goto out;
		}
		p->dls = d;
		d[p->ndls].local = from ? from : path;
		d[p->ndls].final = path;
		p->ndls++;
		wf_jpath_pop(&e->path);
	}
out:
	e->path.depth = 0;
	return error;
}

static int
parse_plan(struct exec *e)
{
	static const char *const keys[] = { "plan_id", "issue_number",
	    "stage_count", "workflow_count", "allow_partial_success",
	    "preview_only", "selection_reason", "selection_message", "stages",
	    "max_parallel", "item", "workflows", "deliverable_manifest",
	    "explain", NULL };
	json_t *v, *def;
	size_t i;
	int64_t count;
	int error;

	if ((error = wf_json_check_object(e->doc, &e->path, e->plan, keys)) < 0)
		return error;
	v = field(e, e->plan, "plan_id");
	if (!v || wf_json_check_string(&e->plan_id, e->doc, &e->path, v) < 0 ||
	    !*e->plan_id)
		return bad(e, "expected the plan's id");
	wf_jpath_pop(&e->path);
	v = field(e, e->plan, "issue_number");
	e->issue_number = v;
	if (json_is_integer(v)) {
		snprintf(e->number, sizeof(e->number), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		snprintf(e->env_number, sizeof(e->env_number), "%s", e->number);
	} else if (!v || json_is_null(v)) {
		snprintf(e->number, sizeof(e->number), "none");
	} else {
		return bad(e, "expected an integer or null");
	}
	wf_jpath_pop(&e->path);
	if ((error = req_bool(&e->allow_partial, e,
	    "allow_partial_success")) < 0 ||
	    (error = req_bool(&e->preview, e, "preview_only")) < 0)
		return error;
	if ((v = field(e, e->plan, "item"))) {
		json_t *t = json_object_get(v, "title");

		if (!json_is_object(v))
			return bad(e, "expected an object");
		if (json_is_string(t))
			e->title = json_string_value(t);
	}
	wf_jpath_pop(&e->path);
	v = field(e, e->plan, "workflows");
	if (!json_is_array(v))
		return bad(e, "expected an array of workflow definitions");
	e->n = json_array_size(v);
	if (e->n && !(e->wfs = calloc(e->n, sizeof(*e->wfs))))
		return wf_error_oom();
	if ((error = wf_map_reserve(&e->names, e->n)) < 0)
		return error;
	json_array_foreach(v, i, def) {
		wf_jpath_push_index(&e->path, i);
		e->wfs[i].stage = SIZE_MAX;
		if ((error = wf_workflow_parse(&e->wfs[i].w, e->doc, &e->path,
		    def, WF_WORKFLOW_CANDIDATE)) < 0)
			return error;
		if (wf_map_put(NULL, &e->names, e->wfs[i].w->name, i) < 0)
			return wf_json_error(e->doc, &e->path, "workflow '%s' "
			    "is listed twice", e->wfs[i].w->name);
		wf_jpath_pop(&e->path);
	}
	wf_jpath_pop(&e->path);
	v = field(e, e->plan, "workflow_count");
	if (!v || wf_json_check_int(&count, e->doc, &e->path, v) < 0 ||
	    count != (int64_t)e->n)
		return bad(e, "expected the number of workflows");
	wf_jpath_pop(&e->path);
	e->stages = json_object_get(e->plan, "stages");
	v = field(e, e->plan, "stage_count");
	if (!v || wf_json_check_int(&count, e->doc, &e->path, v) < 0 ||
	    !json_is_array(e->stages) ||
	    count != (int64_t)json_array_size(e->stages))
		return bad(e, "expected the number of stages");
	wf_jpath_pop(&e->path);
	if ((error = parse_stages(e)) < 0)
		return error;
	if ((v = json_object_get(e->plan, "deliverable_manifest")) &&
	    (error = parse_manifest(e, v)) < 0)
		return error;
	return 0;
}

/* The commit to check out and the branch to target. */
static int
resolve_repo(struct exec *e)
{
	const char *spec = e->o.base ? e->o.base : "HEAD";
	git_object *obj = NULL, *commit = NULL;
	git_reference *head = NULL;
	const char *dir;
	int error = 0;

	if (!e->repo)
		return wf_error_set(WF_EINPUT, "not in a git repository: "
		    "nothing to run the plan in");
	if (git_revparse_single(&obj, e->repo, spec) < 0 ||
	    git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
		error = wf_error_set_git(WF_EINPUT, "--base: '%s' does not name "
		    "a commit", spec);
		goto out;
	}
	e->base = *git_object_id(commit);
	git_oid_tostr(e->base_hex, sizeof(e->base_hex), &e->base);
	if (e->o.target) {
		e->target = strdup(e->o.target);
	} else if (git_repository_head(&head, e->repo) == 0 &&
	    git_reference_is_branch(head)) {
		e->target = strdup(git_reference_shorthand(head));
	} else {
		git_error_clear();
		error = wf_error_set(WF_EINPUT, "no --target, and HEAD is not "
		    "on a branch");
		goto out;
	}
	if (!e->target) {
		error = wf_error_oom();
		goto out;
	}
	if (e->o.log_dir) {
		e->log_root = wf_str_printf("%s/%s", e->o.log_dir, e->plan_id);
	} else {
		dir = git_repository_commondir(e->repo);
		e->log_root = wf_str_printf("%s%swf/logs/%s", dir,
		    dir[strlen(dir) - 1] == '/' ? "" : "/", e->plan_id);
	}
	if (!e->log_root)
		error = wf_error_oom();
out:
	git_reference_free(head);
	git_object_free(commit);
	git_object_free(obj);
	return error;
}

/* The final path of a file the workflow wrote, or NULL. */
static char *
final_path(const struct pwf *p, const char *path)
{
	size_t i, len;

	for (i = 0; i < p->ndls; i++) {
		len = strlen(p->dls[i].local);
		if (strcmp(path, p->dls[i].local) == 0)
			return strdup(p->dls[i].final);
		if (strncmp(path, p->dls[i].local, len) == 0 && path[len] == '/')
			return wf_str_printf("%s%s", p->dls[i].final, path + len);
	}
	return NULL;
}

static const char *
mode_name(uint32_t mode)
{
	switch (mode) {
	case 0100755: return "100755";
	case 0120000: return "120000";
	default: return "100644";
	}
}

static int
cmp_json_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
	    json_string_value(*(json_t *const *)b));
}

/* Sort an array of strings in place. */
static int
sort_strings(json_t *arr)
{
	size_t n = json_array_size(arr), i;
	json_t **v;

	if (n < 2)
		return 0;
	if (!(v = malloc(n * sizeof(*v))))
		return wf_error_oom();
	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), cmp_json_str);
	json_array_clear(arr);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
	return 0;
}

/*
 * The change request of workflow p, which succeeded.  Refusals (a write
 * outside the sandbox, a bad file) fail the workflow, not the plan.
 */
static int
collect(struct exec *e, struct pwf *p)
{
	struct wf_sandbox_file *files = NULL;
	struct wf_change *ch = NULL;
	struct wf_json_doc doc;
	json_t *arr = NULL, *req = NULL;
	char *final = NULL, *buf = NULL, *b64 = NULL, *id = NULL,
	    *msg = NULL;
	size_t n = 0, i, len;
	int error;

	if ((error = wf_sandbox_collect(&files, &n, p->sb)) < 0)
		goto refused;
	if (!(arr = json_array()) || !(p->created = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct wf_sandbox_file *f = &files[i];

		free(final);
		if (!(final = final_path(p, f->path)) &&
		    e->o.collect != WF_EXECUTION_COLLECT_ALL)
			continue;
		if (!final && !(final = strdup(f->path))) {
			error = wf_error_oom();
			goto out;
		}
		if (f->change == WF_SANDBOX_DELETED) {
			if (e->o.collect == WF_EXECUTION_COLLECT_ALL &&
			    json_array_append_new(arr, json_pack("{s:s, s:b}",
			    "path", final, "delete", 1)) < 0) {
				error = wf_error_oom();
				goto out;
			}
			continue;
		}
		free(buf);
		free(b64);
		b64 = NULL;
		if ((error = wf_sandbox_read(&buf, &len, p->sb, f->path)) < 0)
			goto refused;
		if (!(b64 = wf_change_base64(buf, len)) ||
		    json_array_append_new(arr, json_pack("{s:s, s:s, s:s}",
		    "path", final, "mode", mode_name(f->mode), "content",
		    b64)) < 0 ||
		    json_array_append_new(p->created, json_string(final)) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if ((error = sort_strings(p->created)) < 0)
		goto out;
	if (json_array_size(arr) == 0)
		goto done;
	if (!(id = wf_str_printf("%s/%s", e->plan_id, p->w->name)) ||
	    !(msg = strcmp(e->number, "none") ?
	    wf_str_printf("%s: deliverables for #%s\n\nPlan %s.\n", p->w->name,
	    e->number, e->plan_id) : wf_str_printf("%s: deliverables\n\nPlan %s.\n",
	    p->w->name, e->plan_id)) ||
	    !(req = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:{s:s, s:s}}",
	    "id", id, "target", e->target, "kind", "files", "base",
	    e->base_hex, "files", arr, "message", msg, "meta", "plan_id",
	    e->plan_id, "workflow", p->w->name))) {
		error = wf_error_oom();
		goto out;
	}
	if (strcmp(e->number, "none") != 0 &&
	    json_object_set_new(json_object_get(req, "meta"), "issue_number",
	    json_integer(strtoll(e->number, NULL, 10))) < 0) {
		error = wf_error_oom();
		goto out;
	}
	/* Land after the changes of the workflows it depends on. */
	for (i = 0; i < p->w->ndepends_on; i++) {
		size_t idx;
		char *dep;

		if (wf_map_get(&idx, &e->names, p->w->depends_on[i]) < 0 ||
		    !e->wfs[idx].change)
			continue;
		if (!json_object_get(req, "depends_on") &&
		    json_object_set_new(req, "depends_on", json_array()) < 0) {
			error = wf_error_oom();
			goto out;
		}
		if (!(dep = wf_str_printf("%s/%s", e->plan_id, p->w->depends_on[i])) ||
		    json_array_append_new(json_object_get(req, "depends_on"),
		    json_string(dep)) < 0) {
			free(dep);
			error = wf_error_oom();
			goto out;
		}
		free(dep);
	}
	memset(&doc, 0, sizeof(doc));
	doc.value = req;
	doc.name = id;
	doc.line = doc.col = 1;
	if ((error = wf_change_parse(&ch, &doc, e->repo, NULL)) < 0)
		goto refused;
	if (!(p->change = wf_change_canonical(ch))) {
		error = wf_error_oom();
		goto out;
	}
done:
	p->status = W_EXECUTED;
	error = set_message(p, MSG_EXECUTED);
	goto out;
refused:
	if (error != WF_EINPUT && error != WF_ENOTFOUND)
		goto out;
	p->status = W_FAILED;
	json_decref(p->created);
	p->created = NULL;
	error = set_message(p, wf_error_last());
out:
	wf_change_free(ch);
	wf_sandbox_files_free(files, n);
	json_decref(arr);
	json_decref(req);
	free(final);
	free(buf);
	free(b64);
	free(id);
	free(msg);
	return error;
}

/* Make p's sandbox and queue it; a sandbox that cannot be made fails it. */
static int
start(struct exec *e, struct pwf *p, struct wf_run *run)
{
	struct wf_sandbox_opts so = WF_SANDBOX_OPTS_INIT;
	int error;

	so.parent = e->o.tmpdir;
	so.env = e->o.env;
	so.keep = e->o.keep_sandboxes;
	if ((error = wf_sandbox_new(&p->sb, e->repo, &e->base, &so)) < 0)
		return error;
	if ((error = wf_sandbox_setenv(p->sb, "WF_PLAN_ID", e->plan_id)) < 0 ||
	    (error = wf_sandbox_setenv(p->sb, "WF_WORKFLOW", p->w->name)) < 0 ||
	    (error = wf_sandbox_setenv(p->sb, "WF_ISSUE_NUMBER",
	    e->env_number)) < 0)
		return error;
	if (!(p->log_dir = wf_str_printf("%s/%s", e->log_root, p->w->name)))
		return wf_error_oom();
	memset(&p->job, 0, sizeof(p->job));
	p->job.workflow = p->w;
	p->job.sandbox = p->sb;
	p->job.log_dir = p->log_dir;
	p->job.plan_id = e->plan_id;
	p->job.number = e->number;
	p->job.title = e->title ? e->title : "";
	return wf_run_add(&p->job_id, run, &p->job);
}

static int
finish(struct exec *e, struct pwf *p, struct wf_run *run)
{
	json_t *res = NULL;
	int error;

	if ((error = wf_run_result(&res, run, p->job_id)) < 0)
		goto out;
	p->steps = json_incref(json_object_get(res, "steps"));
	if (json_object_get(res, "error")) {
		p->status = W_FAILED;
		error = set_message(p, json_string_value(json_object_get(res,
		    "error")));
	} else {
		error = collect(e, p);
	}
out:
	json_decref(res);
	wf_sandbox_free(p->sb);
	p->sb = NULL;
	return error;
}

static json_t *workflow_entry(const struct pwf *p);

/* Take what an earlier run of the plan recorded of p. */
static int
resume(struct pwf *p, json_t *rec)
{
	json_t *entry = json_object_get(rec, "entry");
	json_t *change = json_object_get(rec, "change");
	const char *msg = json_string_value(json_object_get(entry, "message"));

	p->status = W_EXECUTED;
	p->created = json_incref(json_object_get(entry, "created_files"));
	p->steps = json_incref(json_object_get(entry, "steps"));
	p->change = json_is_object(change) ? json_incref(change) : NULL;
	if (!p->created && !(p->created = json_array()))
		return wf_error_oom();
	return set_message(p, msg ? msg : MSG_EXECUTED);
}

/* Record that p executed, so that a killed run does not redo it. */
static int
record(struct exec *e, struct pwf *p)
{
	json_t *entry;
	int error;

	if (!e->o.state || p->status != W_EXECUTED)
		return 0;
	if (!(entry = workflow_entry(p)))
		return wf_error_oom();
	error = wf_state_record(e->o.state, e->plan_id, p->w->name, entry,
	    p->change);
	json_decref(entry);
	return error;
}

/* Why p cannot run, or NULL: a dependency that did not execute. */
static const char *
blocked_by(struct exec *e, const struct pwf *p)
{
	size_t i, idx;

	for (i = 0; i < p->w->ndepends_on; i++)
		if (wf_map_get(&idx, &e->names, p->w->depends_on[i]) == 0 &&
		    e->wfs[idx].status != W_EXECUTED)
			return p->w->depends_on[i];
	return NULL;
}

static int
skip(struct pwf *p, const char *why)
{
	char msg[512];

	p->status = W_SKIPPED;
	snprintf(msg, sizeof(msg), "Skipped: %s.", why);
	return set_message(p, msg);
}

static int
run_stage(struct exec *e, size_t si)
{
	struct wf_run_opts ro = WF_RUN_OPTS_INIT;
	struct wf_run *run = NULL;
	json_t *names = json_object_get(json_array_get(e->stages, si),
	    "workflows");
	size_t *ready = NULL, nready = 0, next = 0, active = 0, i, idx, id;
	char why[256];
	const char *dep;
	int error, rc;

	if (!(ready = calloc(json_array_size(names) + 1, sizeof(*ready))))
		return wf_error_oom();
	for (i = 0; i < json_array_size(names); i++) {
		wf_map_get(&idx, &e->names,
		    json_string_value(json_array_get(names, i)));
		if (e->stop) {
			if ((error = skip(&e->wfs[idx], e->stop)) < 0)
				goto out;
		} else if (json_object_get(e->done, e->wfs[idx].w->name)) {
			if ((error = resume(&e->wfs[idx], json_object_get(
			    e->done, e->wfs[idx].w->name))) < 0)
				goto out;
		} else if ((dep = blocked_by(e, &e->wfs[idx]))) {
			snprintf(why, sizeof(why), "it depends on '%s', which "
			    "did not execute", dep);
			if ((error = skip(&e->wfs[idx], why)) < 0)
				goto out;
		} else {
			ready[nready++] = idx;
		}
	}
	ro.jobs = e->o.jobs ? e->o.jobs : 1;
	ro.deadline = e->deadline;
	ro.grace_ms = e->o.grace_ms;
	ro.cache = e->o.cache;
	ro.interrupt = e->o.interrupt;
	if ((error = wf_run_new(&run, &ro)) < 0)
		goto out;
	for (;;) {
		while (active < ro.jobs && next < nready) {
			if ((error = start(e, &e->wfs[ready[next]], run)) < 0)
				goto out;
			next++;
			active++;
		}
		if (active == 0)
			break;
		if ((rc = wf_run_next(&id, run)) < 0) {
			error = rc;
			goto out;
		}
		if (rc == 0)
			break;
		for (i = 0; i < next; i++)
			if (e->wfs[ready[i]].sb && e->wfs[ready[i]].job_id == id)
				break;
		if (i == next) {
			error = wf_error_set(WF_ERROR, "unknown job %zu", id);
			goto out;
		}
		if ((error = finish(e, &e->wfs[ready[i]], run)) < 0 ||
		    (error = record(e, &e->wfs[ready[i]])) < 0)
			goto out;
		active--;
	}
	error = 0;
out:
	wf_run_free(run);
	for (i = 0; i < next; i++) {
		wf_sandbox_free(e->wfs[ready[i]].sb);
		e->wfs[ready[i]].sb = NULL;
	}
	free(ready);
	return error;
}

static json_t *
workflow_entry(const struct pwf *p)
{
	static const char *const names[] = { "skipped", "executed", "failed",
	    "skipped" };
	json_t *o = json_object();

	if (!o || set_new(o, "workflow_name", json_string(p->w->name)) < 0 ||
	    set_new(o, "status", json_string(names[p->status])) < 0 ||
	    (p->status == W_EXECUTED && set_new(o, "created_files",
	    json_incref(p->created)) < 0) ||
	    set_new(o, "message", json_string(p->message ? p->message :
	    "")) < 0 ||
	    (p->steps && set_new(o, "steps", json_incref(p->steps)) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
copy_field(json_t *out, json_t *plan, const char *key, int skip_null)
{
	json_t *v = json_object_get(plan, key);

	if (!v || (skip_null && json_is_null(v)))
		return 0;
	return set_new(out, key, json_incref(v));
}

static int
summarize(json_t **out, struct exec *e, int skipped)
{
	json_t *s = json_object(), *runs = NULL, *errors = NULL,
	    *changes = NULL, *st;
	size_t si, i, idx;
	int error;

	*out = NULL;
	if (!s)
		return wf_error_oom();
	if ((error = set_new(s, "issue_number", e->issue_number ?
	    json_incref(e->issue_number) : json_null())) < 0 ||
	    (error = set_new(s, "plan_id", json_string(e->plan_id))) < 0 ||
	    (error = copy_field(s, e->plan, "stage_count", 0)) < 0 ||
	    (error = copy_field(s, e->plan, "workflow_count", 0)) < 0 ||
	    (error = copy_field(s, e->plan, "stages", 0)) < 0 ||
	    (error = set_new(s, "preview_only", json_boolean(e->preview))) < 0 ||
	    (error = copy_field(s, e->plan, "selection_reason", 1)) < 0 ||
	    (error = copy_field(s, e->plan, "selection_message", 1)) < 0 ||
	    (error = set_new(s, "allow_partial_success",
	    json_boolean(e->allow_partial))) < 0)
		goto out;
	if (!skipped && (error = set_new(s, "overall_timeout_seconds",
	    e->o.timeout_ms > 0 ? json_integer((e->o.timeout_ms + 999) / 1000) :
	    json_null())) < 0)
		goto out;
	if (json_array_size(e->entries) > 0 &&
	    (error = copy_field(s, e->plan, "deliverable_manifest", 0)) < 0)
		goto out;
	if ((error = set_new(s, "stage_runs", runs = json_array())) < 0)
		goto out;
	json_array_foreach(e->stages, si, st) {
		json_t *r = json_object(), *wfs, *name;

		if ((error = set_new(r, "index", json_integer((json_int_t)si))) < 0 ||
		    json_array_append_new(runs, r) < 0 ||
		    (error = copy_field(r, st, "run_mode", 0)) < 0 ||
		    (error = copy_field(r, st, "blocking_conflicts", 0)) < 0 ||
		    (error = set_new(r, "workflows", wfs = json_array())) < 0) {
			error = wf_error_oom();
			goto out;
		}
		json_array_foreach(json_object_get(st, "workflows"), i, name) {
			wf_map_get(&idx, &e->names, json_string_value(name));
			if (json_array_append_new(wfs,
			    workflow_entry(&e->wfs[idx])) < 0) {
				error = wf_error_oom();
				goto out;
			}
		}
	}
	if ((error = set_new(s, "status", json_string(skipped ? "skipped" :
	    "executed"))) < 0 ||
	    (skipped && (error = set_new(s, "skip_reason",
	    json_string("preview_only_guard"))) < 0))
		goto out;
	if (!skipped && (error = set_new(s, "errors", errors = json_array())) < 0)
		goto out;
	if ((error = set_new(s, "changes", changes = json_array())) < 0)
		goto out;
	/* In stage order, as the workflows ran. */
	json_array_foreach(e->stages, si, st) {
		json_t *name;

		json_array_foreach(json_object_get(st, "workflows"), i, name) {
			struct pwf *p;

			wf_map_get(&idx, &e->names, json_string_value(name));
			p = &e->wfs[idx];
			if (p->status == W_FAILED && json_array_append_new(
			    errors, json_pack("{s:s, s:s}", "workflow_name",
			    p->w->name, "error", p->message)) < 0) {
				error = wf_error_oom();
				goto out;
			}
		}
	}
	json_array_foreach(e->stages, si, st) {
		json_t *name;

		if (json_array_size(errors) > 0 && !e->allow_partial)
			break;
		json_array_foreach(json_object_get(st, "workflows"), i, name) {
			wf_map_get(&idx, &e->names, json_string_value(name));
			if (e->wfs[idx].change && json_array_append(changes,
			    e->wfs[idx].change) < 0) {
				error = wf_error_oom();
				goto out;
			}
		}
	}
	*out = s;
	s = NULL;
out:
	json_decref(s);
	return error;
}

static void
exec_release(struct exec *e)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		struct pwf *p = &e->wfs[i];

		wf_workflow_free(p->w);
		wf_sandbox_free(p->sb);
		free(p->message);
		free(p->dls);
		free(p->log_dir);
		json_decref(p->created);
		json_decref(p->steps);
		json_decref(p->change);
	}
	free(e->wfs);
	wf_map_release(&e->names);
	free(e->target);
	free(e->log_root);
	json_decref(e->done);
}

int
wf_execution_run(json_t **out, git_repository *repo,
    const struct wf_json_doc *doc, const struct wf_execution_opts *opts)
{
	static const struct wf_execution_opts defaults = WF_EXECUTION_OPTS_INIT;
	struct exec e;
	size_t si;
	int error, skipped;

	*out = NULL;
	memset(&e, 0, sizeof(e));
	e.doc = doc;
	e.o = opts ? *opts : defaults;
	e.repo = repo;
	e.plan = doc->value;
	wf_map_init(&e.names);
	if (!json_is_object(e.plan)) {
		error = wf_json_error(doc, NULL, "expected an ExecutionPlan "
		    "object");
		goto out;
	}
	if ((error = parse_plan(&e)) < 0)
		goto out;
	skipped = e.preview || e.o.dry_run;
	if (skipped) {
		for (si = 0; si < e.n; si++) {
			e.wfs[si].status = W_SKIPPED;
			if ((error = set_message(&e.wfs[si], MSG_PREVIEW)) < 0)
				goto out;
		}
		error = summarize(out, &e, 1);
		goto out;
	}
	if ((error = resolve_repo(&e)) < 0)
		goto out;
	if (e.o.state) {
		char *key = wf_str_printf("base %s target %s collect %s", e.base_hex,
		    e.target, e.o.collect == WF_EXECUTION_COLLECT_ALL ? "all" :
		    "deliverables");

		error = key ? wf_state_begin(&e.done, e.o.state, e.plan_id,
		    key) : wf_error_oom();
		free(key);
		if (error < 0)
			goto out;
	}
	if (e.o.timeout_ms > 0)
		e.deadline = wf_clock_ms() + e.o.timeout_ms;
	for (si = 0; si < json_array_size(e.stages); si++) {
		size_t i;

		if (!e.stop && e.deadline && wf_clock_ms() >= e.deadline)
			e.stop = "the overall timeout passed";
		if (!e.stop && e.o.interrupt && *e.o.interrupt)
			e.stop = "interrupted";
		if ((error = run_stage(&e, si)) < 0)
			goto out;
		for (i = 0; !e.stop && i < e.n; i++) {
			if (e.wfs[i].stage != si || e.wfs[i].status != W_FAILED)
				continue;
			if (e.deadline && wf_clock_ms() >= e.deadline)
				e.stop = "the overall timeout passed";
			else if (e.o.interrupt && *e.o.interrupt)
				e.stop = "interrupted";
			else if (!e.allow_partial)
				e.stop = "an earlier stage failed and partial "
				    "success is not allowed";
		}
	}
	if ((error = summarize(out, &e, 0)) < 0)
		goto out;
	/* Interrupted, the plan stays to be resumed. */
	if (e.o.state && !(e.o.interrupt && *e.o.interrupt) &&
	    (error = wf_state_finish(e.o.state, e.plan_id)) < 0) {
		json_decref(*out);
		*out = NULL;
	}
out:
	exec_release(&e);
	return error;
}

int
wf_execution_complete(const json_t *summary)
{
	json_t *st, *w;
	size_t i, k;

	if (strcmp(json_string_value(json_object_get(summary, "status")) ?
	    json_string_value(json_object_get(summary, "status")) : "",
	    "skipped") == 0)
		return 1;
	json_array_foreach(json_object_get(summary, "stage_runs"), i, st)
		json_array_foreach(json_object_get(st, "workflows"), k, w)
			if (strcmp(json_string_value(json_object_get(w,
			    "status")), "executed") != 0)
				return 0;
	return 1;
}
