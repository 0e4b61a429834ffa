#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_fixture.h"
#include "cache.h"
#include "check_suites.h"
#include "clock.h"
#include "error.h"
#include "run.h"
#include "workflow.h"

static const struct fixture_file base_files[] = {
	{ "README", "readme\n", 0 },
	{ "tpl.txt", "Hi {title} from {workflow}\n", 0 },
	{ "bad.tpl", "{nope}\n", 0 },
	{ NULL, NULL, 0 }
};

static char *repo_dir;
static git_repository *repo;
static git_oid commit;

static void
setup(void)
{
	repo = fixture_repo(&repo_dir, &commit, base_files);
}

static void
teardown(void)
{
	git_repository_free(repo);
	fixture_rm(repo_dir);
	free(repo_dir);
}

/* A workflow named `name` with the steps given as JSON. */
static struct wf_workflow *
workflow(const char *name, const char *steps)
{
	struct wf_json_reader *r;
	struct wf_json_doc d;
	struct wf_jpath p = WF_JPATH_INIT;
	struct wf_workflow *w;
	char text[16384];

	snprintf(text, sizeof(text), "{\"name\": \"%s\", \"steps\": %s}",
	    name, steps);
	test_doc(&d, &r, text);
	ck_assert_msg(wf_workflow_parse(&w, &d, &p, d.value,
	    WF_WORKFLOW_DEFINITION) == 0, "%s", wf_error_last());
	json_decref(d.value);
	test_reader_free(r);
	return w;
}

static struct wf_sandbox *
sandbox(void)
{
	struct wf_sandbox *sb;

	ck_assert_msg(wf_sandbox_new(&sb, repo, &commit, NULL) == 0, "%s",
	    wf_error_last());
	ck_assert_int_eq(wf_sandbox_setenv(sb, "WF_PLAN_ID", "multiwf-1"), 0);
	return sb;
}

static void
job_init(struct wf_run_job *job, struct wf_workflow *w, struct wf_sandbox *sb)
{
	memset(job, 0, sizeof(*job));
	job->workflow = w;
	job->sandbox = sb;
	job->plan_id = "multiwf-1";
	job->number = "42";
	job->title = "The title";
}

/* Run one workflow; *ms is the wall time.  Returns the result. */
static json_t *
run_one(const char *steps, struct wf_run_opts *opts, const char *log_dir,
    struct wf_sandbox **keep, int64_t *ms)
{
	struct wf_workflow *w = workflow("w", steps);
	struct wf_sandbox *sb = sandbox();
	struct wf_run *run;
	struct wf_run_job job;
	json_t *res;
	size_t id;
	int64_t t0 = wf_clock_ms();

	job_init(&job, w, sb);
	job.log_dir = log_dir;
	ck_assert_int_eq(wf_run_new(&run, opts), 0);
	ck_assert_int_eq(wf_run_add(NULL, run, &job), 0);
	ck_assert_int_eq(wf_run_next(&id, run), 1);
	ck_assert_uint_eq(id, 0);
	ck_assert_int_eq(wf_run_next(&id, run), 0);
	if (ms)
		*ms = wf_clock_ms() - t0;
	ck_assert_int_eq(wf_run_result(&res, run, 0), 0);
	wf_run_free(run);
	wf_workflow_free(w);
	if (keep)
		*keep = sb;
	else
		wf_sandbox_free(sb);
	return res;
}

static json_t *
step(json_t *res, size_t i)
{
	return json_array_get(json_object_get(res, "steps"), i);
}

static const char *
sfield(json_t *res, size_t i, const char *key)
{
	json_t *v = json_object_get(step(res, i), key);

	ck_assert_msg(json_is_string(v), "step %zu has no string '%s'", i,
	    key);
	return json_string_value(v);
}

static long long
ifield(json_t *res, size_t i, const char *key)
{
	json_t *v = json_object_get(step(res, i), key);

	ck_assert_msg(json_is_integer(v), "step %zu has no integer '%s'", i,
	    key);
	return json_integer_value(v);
}

static const char *
file_in(struct wf_sandbox *sb, const char *path)
{
	static char buf[65536];
	char *full = fixture_join(wf_sandbox_dir(sb), path);
	FILE *f = fopen(full, "r");
	size_t n;

	ck_assert_msg(f != NULL, "no '%s'", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	free(full);
	return buf;
}

/* Is process `pid` gone (or a zombie nobody reaped yet)? */
static int
gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (!(f = fopen(path, "r")))
			return 1;
		buf[0] = '\0';
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		if ((p = strrchr(buf, ')')) && (p[2] == 'Z' || p[2] == 'X'))
			return 1;
		usleep(10000);
	}
	return 0;
}

static pid_t
pid_in(struct wf_sandbox *sb, const char *path)
{
	return (pid_t)atoi(file_in(sb, path));
}

START_TEST(sequence_output_and_template)
{
	struct wf_sandbox *sb;
	json_t *res = run_one("["
	    "{\"id\": \"a\", \"type\": \"shell\", \"run\": \"echo one >>order\"},"
	    "{\"id\": \"b\", \"type\": \"shell\", \"run\": \"echo two >>order; "
	    "echo out-b; echo err-b >&2\"},"
	    "{\"id\": \"c\", \"type\": \"template\", \"dest\": "
	    "\"gen/{workflow}-{number}.txt\", \"template\": "
	    "\"{step.b}|{workflow}|{number}|{title}|{plan_id}|{{x}}\\n\"},"
	    "{\"id\": \"d\", \"type\": \"template\", \"source\": \"tpl.txt\","
	    " \"dest\": \"from-source.txt\"},"
	    "{\"id\": \"e\", \"type\": \"shell\", \"run\": \"cat {step.c}\"}]",
	    NULL, NULL, &sb, NULL);

	ck_assert_str_eq(file_in(sb, "order"), "one\ntwo\n");
	ck_assert_str_eq(file_in(sb, "gen/w-42.txt"),
	    "out-b|w|42|The title|multiwf-1|{x}\n");
	ck_assert_str_eq(file_in(sb, "from-source.txt"),
	    "Hi The title from w\n");
	ck_assert_str_eq(sfield(res, 1, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 1, "output"), "out-b\nerr-b\n");
	ck_assert_int_eq(ifield(res, 1, "exit_code"), 0);
	ck_assert_int_eq(ifield(res, 1, "attempts"), 1);
	ck_assert_str_eq(sfield(res, 2, "type"), "template");
	ck_assert_ptr_null(json_object_get(step(res, 2), "exit_code"));
	/* A shell command is not rendered: braces are the shell's. */
	ck_assert_str_eq(sfield(res, 4, "status"), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(res, "error")),
	    "step 'e' failed with exit code 1");
	json_decref(res);
	wf_sandbox_free(sb);
}
END_TEST

START_TEST(environment_and_logs)
{
	char *logs = fixture_join(repo_dir, "logs/w");
	char *log = fixture_join(logs, "e.log");
	json_t *res;
	FILE *f;
	char line[256];

	setenv("WF_CHECK_SECRET", "s3cret", 1);
	res = run_one("[{\"id\": \"e\", \"type\": \"shell\", \"env\": "
	    "{\"FOO\": \"bar\", \"WF_STEP\": \"spoof\"}, \"run\": "
	    "\"echo \\\"$WF_STEP $WF_ATTEMPT $FOO "
	    "${WF_CHECK_SECRET-unset} $(pwd)\\\"\"}]", NULL, logs, NULL, NULL);
	unsetenv("WF_CHECK_SECRET");
	ck_assert_int_eq(strncmp(sfield(res, 0, "output"), "e 1 bar unset /",
	    15), 0);
	ck_assert_ptr_nonnull(strstr(sfield(res, 0, "output"), "/work\n"));
	ck_assert_str_eq(sfield(res, 0, "log"), log);
	ck_assert_ptr_nonnull(f = fopen(log, "r"));
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_int_eq(strncmp(line, "e 1 bar unset", 13), 0);
	fclose(f);
	json_decref(res);
	free(log);
	free(logs);
}
END_TEST

START_TEST(retry_until_success)
{
	char *logs = fixture_join(repo_dir, "logs");
	char *log = fixture_join(logs, "flaky.log");
	char text[4096];
	json_t *res;
	int64_t ms;
	FILE *f;
	size_t n;

	res = run_one("[{\"id\": \"flaky\", \"type\": \"shell\", "
	    "\"retry\": {\"attempts\": 4, \"delay\": \"100ms\", \"factor\": 2},"
	    " \"run\": \"n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); "
	    "echo $n >count; echo try $n; [ $n -ge 3 ]\"}]", NULL, logs, NULL,
	    &ms);
	ck_assert_str_eq(sfield(res, 0, "status"), "succeeded");
	ck_assert_int_eq(ifield(res, 0, "attempts"), 3);
	ck_assert_str_eq(sfield(res, 0, "output"), "try 3\n");
	/* Waits of 100ms then 200ms, each less up to half (jitter). */
	ck_assert_msg(ms >= 150 && ms < 2000, "took %lld ms", (long long)ms);
	ck_assert_ptr_nonnull(f = fopen(log, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	ck_assert_str_eq(text, "try 1\n--- attempt 2 ---\ntry 2\n"
	    "--- attempt 3 ---\ntry 3\n");
	json_decref(res);
	free(log);
	free(logs);
}
END_TEST

START_TEST(retry_limits)
{
	json_t *res = run_one("["
	    "{\"id\": \"never\", \"type\": \"shell\", \"run\": \"exit 2\", "
	    "\"retry\": {\"attempts\": 5, \"delay\": \"10ms\", "
	    "\"non_retryable_exit_codes\": [2]}},"
	    "{\"id\": \"twice\", \"type\": \"shell\", \"run\": \"exit 1\", "
	    "\"if\": \"always\", \"retry\": {\"attempts\": 2, "
	    "\"delay\": \"10ms\"}}]", NULL, NULL, NULL, NULL);

	ck_assert_str_eq(sfield(res, 0, "status"), "failed");
	ck_assert_int_eq(ifield(res, 0, "attempts"), 1);
	ck_assert_int_eq(ifield(res, 0, "exit_code"), 2);
	ck_assert_str_eq(sfield(res, 0, "error"), "step 'never' failed with "
	    "exit code 2 (not retryable)");
	ck_assert_int_eq(ifield(res, 1, "attempts"), 2);
	ck_assert_str_eq(sfield(res, 1, "error"), "step 'twice' failed with "
	    "exit code 1 after 2 attempts");
	ck_assert_str_eq(json_string_value(json_object_get(res, "error")),
	    "step 'never' failed with exit code 2 (not retryable)");
	json_decref(res);
}
END_TEST

START_TEST(timeout_kills_the_group)
{
	struct wf_run_opts o = WF_RUN_OPTS_INIT;
	struct wf_sandbox *sb;
	json_t *res;
	int64_t ms;

	o.grace_ms = 300;
	res = run_one("[{\"id\": \"slow\", \"type\": \"shell\", \"timeout\": "
	    "\"300ms\", \"run\": \"trap '' TERM; sh -c 'trap \\\"\\\" TERM; echo $$ "
	    ">deaf.pid; exec sleep 30' & echo $$ >shell.pid; sleep 30\"}]",
	    &o, NULL, &sb, &ms);
	ck_assert_str_eq(sfield(res, 0, "status"), "failed");
	ck_assert(json_is_true(json_object_get(step(res, 0), "timed_out")));
	ck_assert(json_is_null(json_object_get(step(res, 0), "exit_code")));
	ck_assert_str_eq(sfield(res, 0, "error"),
	    "step 'slow' timed out after 300ms");
	/* 300ms, then 300ms of grace for the one ignoring SIGTERM. */
	ck_assert_msg(ms >= 550 && ms < 3000, "took %lld ms", (long long)ms);
	ck_assert(gone(pid_in(sb, "deaf.pid")));
	ck_assert(gone(pid_in(sb, "shell.pid")));
	json_decref(res);
	wf_sandbox_free(sb);
}
END_TEST

START_TEST(leftovers_are_killed)
{
	struct wf_sandbox *sb;
	json_t *res;
	int64_t ms;

	res = run_one("[{\"id\": \"bg\", \"type\": \"shell\", \"run\": "
	    "\"sleep 30 & echo $! >bg.pid; echo started\"}]", NULL, NULL, &sb,
	    &ms);
	ck_assert_str_eq(sfield(res, 0, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 0, "output"), "started\n");
	ck_assert_msg(ms < 1500, "took %lld ms", (long long)ms);
	ck_assert(gone(pid_in(sb, "bg.pid")));
	json_decref(res);
	wf_sandbox_free(sb);
}
END_TEST

START_TEST(conditions)
{
	json_t *res = run_one("["
	    "{\"id\": \"a\", \"type\": \"shell\", \"run\": \"exit 3\"},"
	    "{\"id\": \"b\", \"type\": \"shell\", \"run\": \"echo no\"},"
	    "{\"id\": \"c\", \"type\": \"shell\", \"if\": \"failure\", "
	    "\"run\": \"echo handled\"},"
	    "{\"id\": \"d\", \"type\": \"shell\", \"if\": \"always\", "
	    "\"run\": \"echo always\"},"
	    "{\"id\": \"e\", \"type\": \"shell\", \"needs\": [], "
	    "\"run\": \"echo independent\"},"
	    "{\"id\": \"f\", \"type\": \"shell\", \"needs\": [\"e\"], "
	    "\"if\": \"failure\", \"run\": \"echo never\"}]",
	    NULL, NULL, NULL, NULL);

	ck_assert_str_eq(json_string_value(json_object_get(res, "status")),
	    "failed");
	ck_assert_str_eq(json_string_value(json_object_get(res, "error")),
	    "step 'a' failed with exit code 3");
	ck_assert_str_eq(sfield(res, 0, "status"), "failed");
	ck_assert_str_eq(sfield(res, 1, "status"), "skipped");
	ck_assert_int_eq(ifield(res, 1, "attempts"), 0);
	ck_assert(json_is_null(json_object_get(step(res, 1), "exit_code")));
	ck_assert_str_eq(sfield(res, 2, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 3, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 4, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 5, "status"), "skipped");
	json_decref(res);
}
END_TEST

START_TEST(needs_run_concurrently)
{
	struct wf_run_opts o = WF_RUN_OPTS_INIT;
	const char *steps = "["
	    "{\"id\": \"a\", \"type\": \"shell\", \"run\": \"sleep 0.3\"},"
	    "{\"id\": \"b\", \"type\": \"shell\", \"needs\": [], "
	    "\"run\": \"sleep 0.3\"},"
	    "{\"id\": \"c\", \"type\": \"shell\", \"run\": \"true\"}]";
	json_t *res;
	int64_t ms;

	o.jobs = 2;
	res = run_one(steps, &o, NULL, NULL, &ms);
	ck_assert_str_eq(sfield(res, 2, "status"), "succeeded");
	ck_assert_msg(ms >= 290 && ms < 580, "-j 2 took %lld ms",
	    (long long)ms);
	json_decref(res);
	o.jobs = 1;
	res = run_one(steps, &o, NULL, NULL, &ms);
	ck_assert_msg(ms >= 590, "-j 1 took %lld ms", (long long)ms);
	json_decref(res);
}
END_TEST

START_TEST(asserts)
{
	json_t *res = run_one("["
	    "{\"id\": \"mk\", \"type\": \"shell\", \"run\": "
	    "\"mkdir -p out && printf '# Report\\\\nbody\\\\n' >out/r.md; "
	    "exit 4\"},"
	    "{\"id\": \"e1\", \"type\": \"assert\", \"if\": \"always\", "
	    "\"file_exists\": \"out/r.md\"},"
	    "{\"id\": \"e2\", \"type\": \"assert\", \"if\": \"always\", "
	    "\"file_exists\": \"out/none\"},"
	    "{\"id\": \"c1\", \"type\": \"assert\", \"if\": \"always\", "
	    "\"file_contains\": {\"path\": \"out/r.md\", \"pattern\": "
	    "\"^body$\"}},"
	    "{\"id\": \"c2\", \"type\": \"assert\", \"if\": \"always\", "
	    "\"file_contains\": {\"path\": \"out/r.md\", \"pattern\": "
	    "\"^Report\"}},"
	    "{\"id\": \"x1\", \"type\": \"assert\", \"if\": \"always\", "
	    "\"exit_code\": {\"step\": \"mk\", \"equals\": 4}},"
	    "{\"id\": \"x2\", \"type\": \"assert\", \"if\": \"always\", "
	    "\"exit_code\": {\"step\": \"mk\", \"equals\": 0}},"
	    "{\"id\": \"skipped\", \"type\": \"shell\", \"run\": \"true\"},"
	    "{\"id\": \"x3\", \"type\": \"assert\", \"if\": \"always\", "
	    "\"exit_code\": {\"step\": \"skipped\", \"equals\": 0}}]",
	    NULL, NULL, NULL, NULL);

	ck_assert_str_eq(sfield(res, 1, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 2, "status"), "failed");
	ck_assert_str_eq(sfield(res, 2, "error"),
	    "step 'e2' failed: 'out/none' does not exist");
	ck_assert_str_eq(sfield(res, 3, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 4, "status"), "failed");
	ck_assert_str_eq(sfield(res, 4, "error"),
	    "step 'c2' failed: 'out/r.md' does not match '^Report'");
	ck_assert_str_eq(sfield(res, 5, "status"), "succeeded");
	ck_assert_str_eq(sfield(res, 6, "error"),
	    "step 'x2' failed: step 'mk' exited with 4, not 0");
	ck_assert_str_eq(sfield(res, 7, "status"), "skipped");
	ck_assert_str_eq(sfield(res, 8, "status"), "failed");
	json_decref(res);
}
END_TEST

START_TEST(template_refusals)
{
	json_t *res = run_one("["
	    "{\"id\": \"ln\", \"type\": \"shell\", \"run\": \"ln -s /tmp out\"},"
	    "{\"id\": \"t1\", \"type\": \"template\", \"dest\": \"out/x\", "
	    "\"template\": \"x\"},"
	    "{\"id\": \"t2\", \"type\": \"template\", \"if\": \"always\", "
	    "\"dest\": \"y\", \"source\": \"bad.tpl\"},"
	    "{\"id\": \"dots\", \"type\": \"shell\", \"if\": \"always\", "
	    "\"run\": \"echo ../z\"},"
	    "{\"id\": \"t3\", \"type\": \"template\", \"if\": \"always\", "
	    "\"dest\": \"x/{step.dots}\", \"template\": \"x\"},"
	    "{\"id\": \"t4\", \"type\": \"template\", \"if\": \"always\", "
	    "\"dest\": \"y\", \"source\": \"missing.tpl\"}]",
	    NULL, NULL, NULL, NULL);

	ck_assert_str_eq(sfield(res, 1, "error"), "step 't1' failed: dest: "
	    "'out/x': leads through the symbolic link 'out'");
	ck_assert_str_eq(sfield(res, 2, "error"),
	    "step 't2' failed: unknown placeholder '{nope}'");
	ck_assert_str_eq(sfield(res, 4, "error"), "step 't3' failed: dest: "
	    "'x/../z': '.' or '..' component");
	ck_assert_str_eq(sfield(res, 5, "error"), "step 't4' failed: source: "
	    "'missing.tpl' does not exist");
	json_decref(res);
}
END_TEST

START_TEST(deadline_stops_everything)
{
	struct wf_run_opts o = WF_RUN_OPTS_INIT;
	json_t *res;
	int64_t ms;

	o.deadline = wf_clock_ms() + 300;
	o.grace_ms = 200;
	res = run_one("["
	    "{\"id\": \"long\", \"type\": \"shell\", \"run\": \"sleep 30\"},"
	    "{\"id\": \"next\", \"type\": \"shell\", \"if\": \"always\", "
	    "\"run\": \"true\"}]", &o, NULL, NULL, &ms);
	ck_assert_msg(ms >= 280 && ms < 2000, "took %lld ms", (long long)ms);
	ck_assert_str_eq(json_string_value(json_object_get(res, "error")),
	    "the overall timeout passed");
	ck_assert_str_eq(sfield(res, 0, "error"),
	    "step 'long' was stopped: the overall timeout passed");
	ck_assert_str_eq(sfield(res, 1, "status"), "skipped");
	json_decref(res);
}
END_TEST

START_TEST(output_tail)
{
	struct wf_run_opts o = WF_RUN_OPTS_INIT;
	json_t *res;
	const char *out;

	o.tail_bytes = 16;
	res = run_one("[{\"id\": \"big\", \"type\": \"shell\", \"run\": "
	    "\"i=0; while [ $i -lt 2000 ]; do printf xxxxx; i=$((i+1)); done;"
	    " printf '\\\\303\\\\251END\\\\377'\"}]", &o, NULL, NULL, NULL);
	out = sfield(res, 0, "output");
	ck_assert_str_eq(out, "xxxxxxxxxx\xc3\xa9" "END\xef\xbf\xbd");
	json_decref(res);
}
END_TEST

START_TEST(workflows_in_parallel)
{
	struct wf_run_opts o = WF_RUN_OPTS_INIT;
	struct wf_workflow *w1 = workflow("one", "[{\"id\": \"s\", "
	    "\"type\": \"shell\", \"run\": \"sleep 0.3\"}]");
	struct wf_workflow *w2 = workflow("two", "[{\"id\": \"s\", "
	    "\"type\": \"shell\", \"run\": \"sleep 0.1; exit 1\"}]");
	struct wf_sandbox *sb1 = sandbox(), *sb2 = sandbox();
	struct wf_run_job j1, j2;
	struct wf_run *run;
	size_t id, a, b;
	int64_t t0 = wf_clock_ms(), ms;
	json_t *res;

	o.jobs = 2;
	job_init(&j1, w1, sb1);
	job_init(&j2, w2, sb2);
	ck_assert_int_eq(wf_run_new(&run, &o), 0);
	ck_assert_int_eq(wf_run_add(&a, run, &j1), 0);
	ck_assert_int_eq(wf_run_add(&b, run, &j2), 0);
	ck_assert_uint_eq(a, 0);
	ck_assert_uint_eq(b, 1);
	ck_assert_int_eq(wf_run_result(&res, run, 0), WF_ENOTFOUND);
	ck_assert_int_eq(wf_run_next(&id, run), 1);
	ck_assert_uint_eq(id, 1);	/* the shorter one first */
	ck_assert_int_eq(wf_run_next(&id, run), 1);
	ck_assert_uint_eq(id, 0);
	ck_assert_int_eq(wf_run_next(&id, run), 0);
	ms = wf_clock_ms() - t0;
	ck_assert_msg(ms < 580, "took %lld ms", (long long)ms);
	ck_assert_int_eq(wf_run_result(&res, run, 1), 0);
	ck_assert_str_eq(json_string_value(json_object_get(res, "status")),
	    "failed");
	json_decref(res);
	wf_run_free(run);
	wf_sandbox_free(sb1);
	wf_sandbox_free(sb2);
	wf_workflow_free(w1);
	wf_workflow_free(w2);
}
END_TEST

/* Run `steps` with the cache; the step statuses joined by spaces. */
static const char *
cached_run(struct wf_cache *cache, const char *steps, const char *check_file,
    const char *want)
{
	static char statuses[256];
	struct wf_run_opts o = WF_RUN_OPTS_INIT;
	struct wf_sandbox *sb;
	json_t *res, *st;
	size_t i;

	o.cache = cache;
	o.jobs = 2;
	res = run_one(steps, &o, NULL, &sb, NULL);
	statuses[0] = '\0';
	json_array_foreach(json_object_get(res, "steps"), i, st) {
		strcat(statuses, i ? " " : "");
		strcat(statuses, json_string_value(json_object_get(st,
		    "status")));
	}
	if (check_file)
		ck_assert_str_eq(file_in(sb, check_file), want);
	if (strstr(steps, "rm bad.tpl")) {
		char *gone_file = fixture_join(wf_sandbox_dir(sb), "bad.tpl");

		/* Deleted by the step, or by its replay. */
		ck_assert_int_eq(access(gone_file, F_OK), -1);
		free(gone_file);
	}
	json_decref(res);
	wf_sandbox_free(sb);
	return statuses;
}

START_TEST(cache_hit_and_miss)
{
	static const struct fixture_file readme2[] = {
		{ "README", "readme, second\n", 0 }, { NULL, NULL, 0 } };
	static const struct fixture_file tpl2[] = {
		{ "tpl.txt", "changed {title}\n", 0 }, { NULL, NULL, 0 } };
	const char *steps = "["
	    "{\"id\": \"a\", \"type\": \"shell\", \"inputs\": [\"tpl.txt\"],"
	    " \"run\": \"mkdir -p gen && cp tpl.txt gen/t && rm bad.tpl &&"
	    " echo made\"},"
	    "{\"id\": \"b\", \"type\": \"shell\", \"run\": \"cat README\"},"
	    "{\"id\": \"v\", \"type\": \"template\", \"dest\": \"v.txt\","
	    " \"template\": \"{step.a}|{step.b}\"}]";
	char *db = fixture_join(repo_dir, ".git/wf/run.db");
	struct wf_cache *cache;

	ck_assert_int_eq(wf_cache_open(&cache, repo, db, 0), 0);
	ck_assert_str_eq(cached_run(cache, steps, "v.txt", "made|readme"),
	    "succeeded succeeded succeeded");
	/* A fresh sandbox: the files come back from the cache. */
	ck_assert_str_eq(cached_run(cache, steps, "gen/t",
	    "Hi {title} from {workflow}\n"), "cached cached succeeded");
	ck_assert_str_eq(cached_run(cache, steps, "v.txt", "made|readme"),
	    "cached cached succeeded");
	/* README changed: a keeps its declared input, b's tree changed. */
	fixture_commit(&commit, repo, readme2);
	ck_assert_str_eq(cached_run(cache, steps, "v.txt",
	    "made|readme, second"), "cached succeeded succeeded");
	/* Its input changed: a runs again. */
	fixture_commit(&commit, repo, tpl2);
	ck_assert_str_eq(cached_run(cache, steps, "gen/t",
	    "changed {title}\n"), "succeeded succeeded succeeded");
	ck_assert_str_eq(cached_run(cache, steps, "gen/t",
	    "changed {title}\n"), "cached cached succeeded");
	wf_cache_free(cache);
	free(db);
}
END_TEST

START_TEST(cache_skips_concurrent_steps)
{
	const char *steps = "["
	    "{\"id\": \"a\", \"type\": \"shell\", \"run\": \"sleep 0.2\"},"
	    "{\"id\": \"b\", \"type\": \"shell\", \"needs\": [],"
	    " \"run\": \"echo b >b\"},"
	    "{\"id\": \"c\", \"type\": \"shell\", \"run\": \"cat b\"}]";
	char *db = fixture_join(repo_dir, ".git/wf/run.db");
	struct wf_cache *cache;

	ck_assert_int_eq(wf_cache_open(&cache, repo, db, 0), 0);
	ck_assert_str_eq(cached_run(cache, steps, NULL, NULL),
	    "succeeded succeeded succeeded");
	/* a and b ran side by side: neither could be stored. */
	ck_assert_str_eq(cached_run(cache, steps, NULL, NULL),
	    "succeeded succeeded cached");
	wf_cache_free(cache);
	free(db);
}
END_TEST

START_TEST(cache_explains_keys)
{
	char *db = fixture_join(repo_dir, ".git/wf/run.db");
	struct wf_run_opts o = WF_RUN_OPTS_INIT;
	struct wf_cache *cache;
	json_t *res, *c;
	char *text;

	setenv("WF_CHECK_SECRET", "s3cret", 1);
	ck_assert_int_eq(wf_cache_open(&cache, repo, db, 1), 0);
	o.cache = cache;
	res = run_one("[{\"id\": \"a\", \"type\": \"shell\", "
	    "\"inputs\": [\"*.txt\"], \"run\": \"true\"}]", &o, NULL, NULL,
	    NULL);
	c = json_object_get(step(res, 0), "cache");
	ck_assert(json_is_false(json_object_get(c, "hit")));
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(c,
	    "key"))), 40);
	ck_assert_uint_eq(json_array_size(json_object_get(c, "inputs")), 1);
	ck_assert_str_eq(json_string_value(json_array_get(json_array_get(
	    json_object_get(c, "inputs"), 0), 0)), "tpl.txt");
	text = json_dumps(c, 0);
	ck_assert_ptr_null(strstr(text, "s3cret"));
	free(text);
	json_decref(res);
	wf_cache_free(cache);
	unsetenv("WF_CHECK_SECRET");
	free(db);
}
END_TEST

Suite *
run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc;

	tc = tcase_create("steps");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sequence_output_and_template);
	tcase_add_test(tc, environment_and_logs);
	tcase_add_test(tc, conditions);
	tcase_add_test(tc, asserts);
	tcase_add_test(tc, template_refusals);
	tcase_add_test(tc, output_tail);
	suite_add_tcase(s, tc);
	tc = tcase_create("processes");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, retry_until_success);
	tcase_add_test(tc, retry_limits);
	tcase_add_test(tc, timeout_kills_the_group);
	tcase_add_test(tc, leftovers_are_killed);
	tcase_add_test(tc, needs_run_concurrently);
	tcase_add_test(tc, deadline_stops_everything);
	tcase_add_test(tc, workflows_in_parallel);
	suite_add_tcase(s, tc);
	tc = tcase_create("cache");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, cache_hit_and_miss);
	tcase_add_test(tc, cache_skips_concurrent_steps);
	tcase_add_test(tc, cache_explains_keys);
	suite_add_tcase(s, tc);
	return s;
}
