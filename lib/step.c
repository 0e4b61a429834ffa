#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "path.h"
#include "step.h"
#include "workflow.h"

int
wf_duration_parse(int64_t *out, const char *s)
{
	unsigned long long v;
	int64_t unit;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v > (unsigned long long)INT64_MAX / 3600000)
		return -1;
	if (strcmp(end, "ms") == 0)
		unit = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		unit = 1000;
	else if (strcmp(end, "m") == 0)
		unit = 60000;
	else if (strcmp(end, "h") == 0)
		unit = 3600000;
	else
		return -1;
	*out = (int64_t)v * unit;
	return 0;
}

void
wf_steps_free(struct wf_step *steps, size_t n)
{
	size_t i;

	if (!steps)
		return;
	for (i = 0; i < n; i++) {
		free(steps[i].needs);
		free(steps[i].inputs);
		free(steps[i].retry.non_retryable);
	}
	free(steps);
}

/* The parse of one step list: where it is, and what is known so far. */
struct ctx {
	const struct wf_json_doc *doc;
	struct wf_jpath *path;
	struct wf_step *steps;
	size_t n;		/* steps parsed so far */
};

static int
err_at(struct ctx *c, const char *key, const char *fmt, const char *arg)
{
	int error;

	if (key)
		wf_jpath_push_key(c->path, key);
	error = wf_json_error(c->doc, c->path, fmt, arg);
	if (key)
		wf_jpath_pop(c->path);
	return error;
}

static ssize_t
find_step(struct ctx *c, const char *id)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->steps[i].id, id) == 0)
			return (ssize_t)i;
	return -1;
}

static int
get_string(const char **out, struct ctx *c, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	int error;

	if (!v)
		return 0;
	wf_jpath_push_key(c->path, key);
	error = wf_json_check_string(out, c->doc, c->path, v);
	wf_jpath_pop(c->path);
	return error;
}

static int
get_duration(int64_t *out, struct ctx *c, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	int64_t ms;

	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= INT64_MAX / 1000) {
		*out = (int64_t)json_integer_value(v) * 1000;
		return 0;
	}
	if (json_is_string(v) &&
	    wf_duration_parse(&ms, json_string_value(v)) == 0) {
		*out = ms;
		return 0;
	}
	return err_at(c, key, "%s", "expected a duration (\"250ms\", \"30s\", "
	    "\"5m\", \"2h\" or a number of seconds)");
}

static int
get_int(int64_t *out, struct ctx *c, json_t *obj, const char *key,
    int64_t min, int64_t max)
{
	json_t *v = json_object_get(obj, key);
	char range[96];
	int error;

	if (!v)
		return 0;
	wf_jpath_push_key(c->path, key);
	if ((error = wf_json_check_int(out, c->doc, c->path, v)) == 0 &&
	    (*out < min || *out > max)) {
		snprintf(range, sizeof(range), "%lld..%lld", (long long)min,
		    (long long)max);
		error = wf_json_error(c->doc, c->path, "out of range %s",
		    range);
	}
	wf_jpath_pop(c->path);
	return error;
}

static int
parse_retry(struct wf_step *s, struct ctx *c, json_t *r)
{
	static const char *const keys[] = { "attempts", "delay", "factor",
	    "max_delay", "non_retryable_exit_codes", NULL };
	json_t *v;
	size_t i;
	int error;

	if ((error = wf_json_check_object(c->doc, c->path, r, keys)) < 0 ||
	    (error = get_int(&s->retry.attempts, c, r, "attempts", 1,
	    100)) < 0 ||
	    (error = get_duration(&s->retry.delay_ms, c, r, "delay")) < 0 ||
	    (error = get_duration(&s->retry.max_delay_ms, c, r,
	    "max_delay")) < 0)
		return error;
	if ((v = json_object_get(r, "factor"))) {
		if (!json_is_number(v) || json_number_value(v) < 1 ||
		    json_number_value(v) > 100)
			return err_at(c, "factor", "%s",
			    "expected a number from 1 to 100");
		s->retry.factor = json_number_value(v);
	}
	if ((v = json_object_get(r, "non_retryable_exit_codes"))) {
		wf_jpath_push_key(c->path, "non_retryable_exit_codes");
		if (!json_is_array(v)) {
			error = wf_json_error(c->doc, c->path,
			    "expected an array of exit codes");
			goto pop;
		}
		s->retry.non_retryable = calloc(json_array_size(v) + 1,
		    sizeof(int64_t));
		if (!s->retry.non_retryable) {
			error = wf_error_oom();
			goto pop;
		}
		for (i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);

			if (!json_is_integer(e) || json_integer_value(e) < 0 ||
			    json_integer_value(e) > 255) {
				wf_jpath_push_index(c->path, i);
				error = wf_json_error(c->doc, c->path,
				    "expected an exit code from 0 to 255");
				wf_jpath_pop(c->path);
				goto pop;
			}
			s->retry.non_retryable[i] = json_integer_value(e);
		}
		s->retry.nnon_retryable = i;
pop:
		wf_jpath_pop(c->path);
	}
	return error;
}

static int
env_name_valid(const char *n)
{
	if (!(isalpha((unsigned char)*n) || *n == '_'))
		return 0;
	for (; *n; n++)
		if (!(isalnum((unsigned char)*n) || *n == '_'))
			return 0;
	return 1;
}

static int
parse_env(struct wf_step *s, struct ctx *c, json_t *env)
{
	const char *k;
	json_t *v;
	int error = 0;

	wf_jpath_push_key(c->path, "env");
	if (!json_is_object(env)) {
		error = wf_json_error(c->doc, c->path,
		    "expected an object of NAME: \"value\"");
		goto out;
	}
	json_object_foreach(env, k, v) {
		const char *str;

		wf_jpath_push_key(c->path, k);
		if (!env_name_valid(k))
			error = wf_json_error(c->doc, c->path,
			    "invalid environment variable name");
		else
			error = wf_json_check_string(&str, c->doc, c->path, v);
		wf_jpath_pop(c->path);
		if (error < 0)
			goto out;
	}
	s->env = env;
out:
	wf_jpath_pop(c->path);
	return error;
}

/*
 * A template's placeholders: {number}, {workflow}, {title}, {plan_id}
 * and {step.<id>} (the output of an earlier step); "{{" and "}}" stand
 * for literal braces.
 */
static int
check_placeholders(struct ctx *c, const char *key, const char *t)
{
	static const char *const names[] = { "number", "workflow", "title",
	    "plan_id", NULL };
	const char *p = t;

	while (*p) {
		const char *close;
		char name[128];
		size_t len;
		int i;

		if ((p[0] == '{' && p[1] == '{') ||
		    (p[0] == '}' && p[1] == '}')) {
			p += 2;
			continue;
		}
		if (*p == '}')
			return err_at(c, key, "%s", "unbalanced '}' (write "
			    "'}}' for a literal brace)");
		if (*p != '{') {
			p++;
			continue;
		}
		if (!(close = strchr(p, '}')))
			return err_at(c, key, "%s", "unterminated '{' (write "
			    "'{{' for a literal brace)");
		len = (size_t)(close - p - 1);
		if (len >= sizeof(name))
			return err_at(c, key, "%s", "placeholder too long");
		memcpy(name, p + 1, len);
		name[len] = '\0';
		for (i = 0; names[i]; i++)
			if (strcmp(names[i], name) == 0)
				break;
		if (!names[i]) {
			if (strncmp(name, "step.", 5) != 0)
				return err_at(c, key, "unknown placeholder "
				    "'{%s}'", name);
			if (find_step(c, name + 5) < 0)
				return err_at(c, key, "placeholder names "
				    "step '%s', which is not an earlier step",
				    name + 5);
		}
		p = close + 1;
	}
	return 0;
}

static int
check_path(struct ctx *c, const char *key, const char *p)
{
	const char *problem = wf_path_problem(p);
	char msg[128];

	if (!problem)
		return 0;
	snprintf(msg, sizeof(msg), "%s: '%%s'", problem);
	return err_at(c, key, msg, p);
}

static int
parse_assert(struct wf_step *s, struct ctx *c, json_t *v)
{
	static const char *const contains_keys[] = { "path", "pattern",
	    NULL };
	static const char *const code_keys[] = { "step", "equals", NULL };
	json_t *a;
	regex_t re;
	int error = 0, kinds = 0, rc;

	kinds = !!json_object_get(v, "file_exists") +
	    !!json_object_get(v, "file_contains") +
	    !!json_object_get(v, "exit_code");
	if (kinds != 1)
		return wf_json_error(c->doc, c->path, "an assert step needs "
		    "exactly one of \"file_exists\", \"file_contains\", "
		    "\"exit_code\"");
	if (json_object_get(v, "file_exists")) {
		s->assert_kind = WF_ASSERT_FILE_EXISTS;
		if ((error = get_string(&s->path, c, v, "file_exists")) < 0)
			return error;
		return check_path(c, "file_exists", s->path);
	}
	if ((a = json_object_get(v, "file_contains"))) {
		s->assert_kind = WF_ASSERT_FILE_CONTAINS;
		wf_jpath_push_key(c->path, "file_contains");
		if ((error = wf_json_check_object(c->doc, c->path, a,
		    contains_keys)) < 0)
			goto pop;
		if (!json_object_get(a, "path") ||
		    !json_object_get(a, "pattern")) {
			error = wf_json_error(c->doc, c->path,
			    "needs \"path\" and \"pattern\"");
			goto pop;
		}
		if ((error = get_string(&s->path, c, a, "path")) < 0 ||
		    (error = check_path(c, "path", s->path)) < 0 ||
		    (error = get_string(&s->pattern, c, a, "pattern")) < 0)
			goto pop;
		if ((rc = regcomp(&re, s->pattern, REG_EXTENDED | REG_NOSUB))) {
			char msg[256];

			regerror(rc, &re, msg, sizeof(msg));
			error = err_at(c, "pattern", "invalid regular "
			    "expression: %s", msg);
			goto pop;
		}
		regfree(&re);
		goto pop;
	}
	a = json_object_get(v, "exit_code");
	s->assert_kind = WF_ASSERT_EXIT_CODE;
	wf_jpath_push_key(c->path, "exit_code");
	if ((error = wf_json_check_object(c->doc, c->path, a, code_keys)) < 0)
		goto pop;
	if (!json_object_get(a, "step") || !json_object_get(a, "equals")) {
		error = wf_json_error(c->doc, c->path,
		    "needs \"step\" and \"equals\"");
		goto pop;
	}
	if ((error = get_string(&s->step, c, a, "step")) < 0 ||
	    (error = get_int(&s->equals, c, a, "equals", 0, 255)) < 0)
		goto pop;
	if (find_step(c, s->step) < 0)
		error = err_at(c, "step", "no earlier step '%s'", s->step);
pop:
	wf_jpath_pop(c->path);
	return error;
}

static int
parse_template(struct wf_step *s, struct ctx *c, json_t *v)
{
	int error;

	if (!!json_object_get(v, "template") + !!json_object_get(v, "source")
	    != 1)
		return wf_json_error(c->doc, c->path, "a template step needs "
		    "exactly one of \"template\" (inline) and \"source\" "
		    "(a file)");
	if (!json_object_get(v, "dest"))
		return wf_json_error(c->doc, c->path,
		    "a template step needs \"dest\"");
	if ((error = get_string(&s->template_text, c, v, "template")) < 0 ||
	    (error = get_string(&s->source, c, v, "source")) < 0 ||
	    (error = get_string(&s->dest, c, v, "dest")) < 0)
		return error;
	if (s->source && (error = check_path(c, "source", s->source)) < 0)
		return error;
	if ((error = check_path(c, "dest", s->dest)) < 0 ||
	    (error = check_placeholders(c, "dest", s->dest)) < 0)
		return error;
	if (s->template_text)
		return check_placeholders(c, "template", s->template_text);
	return 0;
}

static int
parse_step(struct wf_step *s, struct ctx *c, json_t *v)
{
	static const char *const common[] = { "id", "type", "description",
	    "needs", "if", "timeout", "retry", "env", "inputs" };
	static const char *const shell_keys[] = { "run" };
	static const char *const assert_keys[] = { "file_exists",
	    "file_contains", "exit_code" };
	static const char *const template_keys[] = { "template", "source",
	    "dest" };
	const char *allowed[16], *type = NULL, *when = NULL;
	const char *const *extra;
	size_t i, nextra, na = 0;
	json_t *f;
	int error;

	if (!json_is_object(v))
		return wf_json_error(c->doc, c->path,
		    "expected a step object");
	if (!json_object_get(v, "id") || !json_object_get(v, "type"))
		return wf_json_error(c->doc, c->path,
		    "a step needs \"id\" and \"type\"");
	if ((error = get_string(&s->id, c, v, "id")) < 0 ||
	    (error = get_string(&type, c, v, "type")) < 0)
		return error;
	if (wf_workflow_name_valid(s->id) < 0)
		return err_at(c, "id", "invalid step id '%s'", s->id);
	if (find_step(c, s->id) >= 0)
		return err_at(c, "id", "duplicate step id '%s'", s->id);
	if (strcmp(type, "shell") == 0) {
		s->type = WF_STEP_SHELL;
		extra = shell_keys;
		nextra = 1;
	} else if (strcmp(type, "assert") == 0) {
		s->type = WF_STEP_ASSERT;
		extra = assert_keys;
		nextra = 3;
	} else if (strcmp(type, "template") == 0) {
		s->type = WF_STEP_TEMPLATE;
		extra = template_keys;
		nextra = 3;
	} else
		return err_at(c, "type", "unknown step type '%s' (shell, "
		    "assert, template)", type);
	for (i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		allowed[na++] = common[i];
	for (i = 0; i < nextra; i++)
		allowed[na++] = extra[i];
	allowed[na] = NULL;
	if ((error = wf_json_check_object(c->doc, c->path, v, allowed)) < 0 ||
	    (error = get_string(&s->description, c, v, "description")) < 0 ||
	    (error = get_string(&when, c, v, "if")) < 0 ||
	    (error = get_duration(&s->timeout_ms, c, v, "timeout")) < 0)
		return error;
	if (!when || strcmp(when, "success") == 0)
		s->when = WF_STEP_IF_SUCCESS;
	else if (strcmp(when, "failure") == 0)
		s->when = WF_STEP_IF_FAILURE;
	else if (strcmp(when, "always") == 0)
		s->when = WF_STEP_IF_ALWAYS;
	else
		return err_at(c, "if", "expected \"success\", \"failure\" or "
		    "\"always\", got '%s'", when);
	if ((f = json_object_get(v, "needs"))) {
		wf_jpath_push_key(c->path, "needs");
		error = wf_json_check_strings(&s->needs, &s->nneeds, c->doc,
		    c->path, f);
		for (i = 0; error == 0 && i < s->nneeds; i++) {
			if (find_step(c, s->needs[i]) >= 0)
				continue;
			wf_jpath_push_index(c->path, i);
			error = wf_json_error(c->doc, c->path, "no earlier "
			    "step '%s' (needs names steps listed before)",
			    s->needs[i]);
			wf_jpath_pop(c->path);
		}
		wf_jpath_pop(c->path);
		if (error < 0)
			return error;
	}
	if ((f = json_object_get(v, "inputs"))) {
		wf_jpath_push_key(c->path, "inputs");
		error = wf_json_check_strings(&s->inputs, &s->ninputs, c->doc,
		    c->path, f);
		wf_jpath_pop(c->path);
		if (error < 0)
			return error;
	}
	if ((f = json_object_get(v, "retry"))) {
		wf_jpath_push_key(c->path, "retry");
		error = parse_retry(s, c, f);
		wf_jpath_pop(c->path);
		if (error < 0)
			return error;
	}
	if ((f = json_object_get(v, "env")) && (error = parse_env(s, c, f)) < 0)
		return error;
	switch (s->type) {
	case WF_STEP_SHELL:
		if (!json_object_get(v, "run"))
			return wf_json_error(c->doc, c->path,
			    "a shell step needs \"run\"");
		return get_string(&s->run, c, v, "run");
	case WF_STEP_ASSERT:
		return parse_assert(s, c, v);
	case WF_STEP_TEMPLATE:
		return parse_template(s, c, v);
	}
	return 0;
}

int
wf_steps_parse(struct wf_step **out, size_t *n,
    const struct wf_json_doc *doc, struct wf_jpath *path, json_t *v)
{
	struct ctx c = { doc, path, NULL, 0 };
	size_t i, len;
	int error = 0;

	*out = NULL;
	*n = 0;
	if (!json_is_array(v))
		return wf_json_error(doc, path,
		    "expected an array of step objects");
	len = json_array_size(v);
	if (!(c.steps = calloc(len + 1, sizeof(*c.steps))))
		return wf_error_oom();
	for (i = 0; i < len; i++) {
		struct wf_step *s = &c.steps[i];

		s->retry.attempts = 1;
		s->retry.delay_ms = 1000;
		s->retry.factor = 2;
		s->retry.max_delay_ms = 60000;
		wf_jpath_push_index(path, i);
		error = parse_step(s, &c, json_array_get(v, i));
		wf_jpath_pop(path);
		c.n = i + 1;
		if (error < 0) {
			wf_steps_free(c.steps, c.n);
			return error;
		}
	}
	*out = c.steps;
	*n = len;
	return 0;
}
