#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "step.h"

/* The steps borrow from the JSON: it lives until the next parse. */
static json_t *last_value;

static int
parse(struct wf_step **steps, size_t *n, const char *text)
{
	struct wf_json_reader *r;
	struct wf_json_doc d;
	struct wf_jpath p = WF_JPATH_INIT;
	int error;

	test_doc(&d, &r, text);
	error = wf_steps_parse(steps, n, &d, &p, d.value);
	json_decref(last_value);
	last_value = d.value;
	test_reader_free(r);
	return error;
}

START_TEST(every_type)
{
	struct wf_step *s;
	size_t n;
	int rc;

	rc = parse(&s, &n, "["
	    "{\"id\": \"gen\", \"type\": \"shell\", \"run\": \"./gen.sh\"},"
	    "{\"id\": \"build\", \"type\": \"shell\", \"run\": \"make\","
	    " \"needs\": [\"gen\"], \"timeout\": \"5m\", \"if\": \"always\","
	    " \"retry\": {\"attempts\": 3, \"delay\": \"1s\", \"factor\": 2,"
	    " \"max_delay\": \"30s\", \"non_retryable_exit_codes\": [2]},"
	    " \"env\": {\"CC\": \"cc\"}, \"inputs\": [\"src\"]},"
	    "{\"id\": \"ok\", \"type\": \"assert\", \"exit_code\":"
	    " {\"step\": \"build\", \"equals\": 0}},"
	    "{\"id\": \"has\", \"type\": \"assert\", \"file_contains\":"
	    " {\"path\": \"out/r.md\", \"pattern\": \"^# Report\"}},"
	    "{\"id\": \"there\", \"type\": \"assert\", \"file_exists\": \"a\"},"
	    "{\"id\": \"doc\", \"type\": \"template\", \"dest\":"
	    " \"study/{number}/{workflow}.md\", \"template\":"
	    " \"# {title} {{x}} {step.build}\\n\"}]");
	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(s[0].type, WF_STEP_SHELL);
	ck_assert_int_eq(s[0].retry.attempts, 1);
	ck_assert_int_eq(s[1].timeout_ms, 300000);
	ck_assert_int_eq(s[1].when, WF_STEP_IF_ALWAYS);
	ck_assert_int_eq(s[1].retry.attempts, 3);
	ck_assert_int_eq(s[1].retry.max_delay_ms, 30000);
	ck_assert_uint_eq(s[1].retry.nnon_retryable, 1);
	ck_assert_uint_eq(s[1].nneeds, 1);
	ck_assert_int_eq(s[2].assert_kind, WF_ASSERT_EXIT_CODE);
	ck_assert_str_eq(s[2].step, "build");
	ck_assert_int_eq(s[3].assert_kind, WF_ASSERT_FILE_CONTAINS);
	ck_assert_int_eq(s[4].assert_kind, WF_ASSERT_FILE_EXISTS);
	ck_assert_int_eq(s[5].type, WF_STEP_TEMPLATE);
	wf_steps_free(s, n);
	json_decref(last_value);
	last_value = NULL;
}
END_TEST

START_TEST(durations)
{
	int64_t ms;

	ck_assert_int_eq(wf_duration_parse(&ms, "250ms"), 0);
	ck_assert_int_eq(ms, 250);
	ck_assert_int_eq(wf_duration_parse(&ms, "2h"), 0);
	ck_assert_int_eq(ms, 7200000);
	ck_assert_int_eq(wf_duration_parse(&ms, "12"), 0);
	ck_assert_int_eq(ms, 12000);
	ck_assert_int_eq(wf_duration_parse(&ms, "-1s"), -1);
	ck_assert_int_eq(wf_duration_parse(&ms, "5 m"), -1);
	ck_assert_int_eq(wf_duration_parse(&ms, "1d"), -1);
	ck_assert_int_eq(wf_duration_parse(&ms, ""), -1);
}
END_TEST

static const struct {
	const char *text;
	const char *msg;
} bad[] = {
	{ "{}", "expected an array of step objects" },
	{ "[{\"type\": \"shell\"}]", ".[0]: a step needs \"id\" and \"type\"" },
	{ "[{\"id\": \"a\", \"type\": \"python\"}]",
	  ".[0].type: unknown step type 'python'" },
	{ "[{\"id\": \"a\", \"type\": \"shell\"}]",
	  ".[0]: a shell step needs \"run\"" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\", \"cmd\": 1}]",
	  ".[0].cmd: unknown field" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\"},"
	  " {\"id\": \"a\", \"type\": \"shell\", \"run\": \"y\"}]",
	  ".[1].id: duplicate step id 'a'" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\","
	  " \"needs\": [\"b\"]}]", ".[0].needs[0]: no earlier step 'b'" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\","
	  " \"timeout\": \"soon\"}]", ".[0].timeout: expected a duration" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\","
	  " \"if\": \"never\"}]", ".[0].if: expected \"success\"" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\","
	  " \"retry\": {\"attempts\": 0}}]",
	  ".[0].retry.attempts: out of range 1..100" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\","
	  " \"retry\": {\"non_retryable_exit_codes\": [256]}}]",
	  ".[0].retry.non_retryable_exit_codes[0]: expected an exit code" },
	{ "[{\"id\": \"a\", \"type\": \"shell\", \"run\": \"x\","
	  " \"env\": {\"1X\": \"y\"}}]",
	  ".[0].env[\"1X\"]: invalid environment variable name" },
	{ "[{\"id\": \"a\", \"type\": \"assert\"}]",
	  ".[0]: an assert step needs exactly one of" },
	{ "[{\"id\": \"a\", \"type\": \"assert\", \"file_exists\": \"../x\"}]",
	  ".[0].file_exists: '.' or '..' component: '../x'" },
	{ "[{\"id\": \"a\", \"type\": \"assert\", \"file_contains\":"
	  " {\"path\": \"x\", \"pattern\": \"[\"}}]",
	  ".[0].file_contains.pattern: invalid regular expression" },
	{ "[{\"id\": \"a\", \"type\": \"assert\", \"exit_code\":"
	  " {\"step\": \"b\", \"equals\": 0}}]",
	  ".[0].exit_code.step: no earlier step 'b'" },
	{ "[{\"id\": \"a\", \"type\": \"template\", \"dest\": \"x\"}]",
	  ".[0]: a template step needs exactly one of" },
	{ "[{\"id\": \"a\", \"type\": \"template\", \"dest\": \".git/x\","
	  " \"template\": \"\"}]", ".[0].dest: '.git' component" },
	{ "[{\"id\": \"a\", \"type\": \"template\", \"dest\": \"x\","
	  " \"template\": \"{nope}\"}]",
	  ".[0].template: unknown placeholder '{nope}'" },
	{ "[{\"id\": \"a\", \"type\": \"template\", \"dest\": \"x\","
	  " \"template\": \"{step.a}\"}]",
	  ".[0].template: placeholder names step 'a'" },
	{ "[{\"id\": \"a\", \"type\": \"template\", \"dest\": \"x\","
	  " \"template\": \"a}\"}]", ".[0].template: unbalanced '}'" },
};

START_TEST(bad_steps)
{
	struct wf_step *s = (struct wf_step *)1;
	size_t n = 7;

	ck_assert_int_eq(parse(&s, &n, bad[_i].text), WF_EINPUT);
	ck_assert_ptr_null(s);
	ck_assert_uint_eq(n, 0);
	ck_assert_msg(strstr(wf_error_last(), bad[_i].msg) != NULL,
	    "case %d: got '%s', want '%s'", _i, wf_error_last(), bad[_i].msg);
}
END_TEST

Suite *
step_suite(void)
{
	Suite *s = suite_create("step");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, every_type);
	tcase_add_test(tc, durations);
	tcase_add_loop_test(tc, bad_steps, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, tc);
	return s;
}
