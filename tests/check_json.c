#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "json.h"

/* A reader over `text`, through a pipe as stdin would be. */
START_TEST(stream_of_values)
{
	struct wf_json_reader *r = test_reader(
	    "{\"a\": 1}\n[1, 2]  \"s\"\n 42\n\n{\"b\":\n 2}");
	struct wf_json_doc d;

	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert(json_is_object(d.value));
	ck_assert_uint_eq(d.line, 1);
	ck_assert_uint_eq(d.col, 1);
	ck_assert_uint_eq(d.len, 8);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert(json_is_array(d.value));
	ck_assert_uint_eq(d.line, 2);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert_str_eq(json_string_value(d.value), "s");
	ck_assert_uint_eq(d.col, 9);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert_int_eq(json_integer_value(d.value), 42);
	ck_assert_uint_eq(d.line, 3);
	ck_assert_uint_eq(d.col, 2);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert_uint_eq(d.line, 5);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 0);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 0);
	test_reader_free(r);
}
END_TEST

START_TEST(empty_input)
{
	struct wf_json_reader *r = test_reader("  \n\t ");
	struct wf_json_doc d;

	ck_assert_int_eq(wf_json_reader_next(&d, r), 0);
	test_reader_free(r);
}
END_TEST

START_TEST(truncated_input)
{
	struct wf_json_reader *r = test_reader("{\"a\": 1}\n{\"b\": [1,");
	struct wf_json_doc d;

	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), WF_EINPUT);
	ck_assert_msg(strncmp(wf_error_last(), "<stdin>:2:", 10) == 0,
	    "got '%s'", wf_error_last());
	/* Sticky: the same error again, never a value. */
	ck_assert_int_eq(wf_json_reader_next(&d, r), WF_EINPUT);
	test_reader_free(r);
}
END_TEST

START_TEST(malformed_names_place)
{
	struct wf_json_reader *r = test_reader("\n\n  {\"a\" 1}");
	struct wf_json_doc d;

	ck_assert_int_eq(wf_json_reader_next(&d, r), WF_EINPUT);
	ck_assert_msg(strncmp(wf_error_last(), "<stdin>:3:8: ", 13) == 0,
	    "got '%s'", wf_error_last());
	test_reader_free(r);
}
END_TEST

START_TEST(scalars_need_separator)
{
	struct wf_json_reader *r = test_reader("4true");
	struct wf_json_doc d;

	ck_assert_int_eq(wf_json_reader_next(&d, r), WF_EINPUT);
	test_reader_free(r);
}
END_TEST

START_TEST(large_value_across_reads)
{
	size_t n = 300000, i;
	char *text = malloc(n + 64);
	struct wf_json_reader *r;
	struct wf_json_doc d;
	int fds[2];
	pid_t pid;

	strcpy(text, "{\"k\": \"");
	for (i = 7; i < n; i++)
		text[i] = 'x';
	strcpy(text + n, "\"} 7 ");
	/* Larger than a pipe buffer: write from a child. */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (write(fds[1], text, strlen(text)) < 0)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(wf_json_reader_fdopen(&r, fds[0], "big"), 0);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert_uint_eq(strlen(json_string_value(
	    json_object_get(d.value, "k"))), n - 7);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert_int_eq(json_integer_value(d.value), 7);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 0);
	wf_json_reader_free(r);
	close(fds[0]);
	free(text);
}
END_TEST

START_TEST(path_format)
{
	struct wf_jpath p = WF_JPATH_INIT;
	char buf[128];

	ck_assert_str_eq(wf_jpath_format(buf, sizeof(buf), &p), ".");
	wf_jpath_push_key(&p, "stages");
	wf_jpath_push_index(&p, 2);
	wf_jpath_push_key(&p, "workflows");
	ck_assert_str_eq(wf_jpath_format(buf, sizeof(buf), &p),
	    ".stages[2].workflows");
	wf_jpath_pop(&p);
	wf_jpath_push_key(&p, "odd key");
	ck_assert_str_eq(wf_jpath_format(buf, sizeof(buf), &p),
	    ".stages[2][\"odd key\"]");
}
END_TEST

START_TEST(locate_path)
{
	const char *text = "{\"a\": {\"x\": \"}\", \"b\": [10,\n  {\"c\": 3}]}}";
	struct wf_json_reader *r = test_reader(text);
	struct wf_json_doc d;
	struct wf_jpath p = WF_JPATH_INIT;
	unsigned long line, col;

	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	wf_jpath_push_key(&p, "a");
	wf_jpath_push_key(&p, "b");
	wf_jpath_push_index(&p, 1);
	wf_jpath_push_key(&p, "c");
	ck_assert_int_eq(wf_json_locate(&line, &col, &d, &p), 0);
	ck_assert_uint_eq(line, 2);
	ck_assert_uint_eq(col, 9);
	wf_jpath_pop(&p);
	wf_jpath_pop(&p);
	wf_jpath_push_index(&p, 5);
	ck_assert_int_eq(wf_json_locate(&line, &col, &d, &p), -1);
	ck_assert_uint_eq(line, 1);
	json_decref(d.value);
	test_reader_free(r);
}
END_TEST

START_TEST(check_unknown_field)
{
	static const char *const keys[] = { "name", NULL };
	struct wf_json_reader *r = test_reader("{\"name\": 1,\n \"nmae\": 2}");
	struct wf_json_doc d;
	struct wf_jpath p = WF_JPATH_INIT;

	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert_int_eq(wf_json_check_object(&d, &p, d.value, keys),
	    WF_EINPUT);
	ck_assert_str_eq(wf_error_last(), "<stdin>:2:10: .nmae: unknown field");
	json_decref(d.value);
	test_reader_free(r);
}
END_TEST

START_TEST(canonical_sorts_keys)
{
	json_t *v = json_pack("{s:i, s:[i,i], s:s}", "b", 1, "a", 2, 3,
	    "c", "x");
	char *s = wf_json_canonical(v);

	ck_assert_str_eq(s, "{\"a\":[2,3],\"b\":1,\"c\":\"x\"}");
	free(s);
	json_decref(v);
}
END_TEST

Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("reader");
	tcase_add_test(tc, stream_of_values);
	tcase_add_test(tc, empty_input);
	tcase_add_test(tc, truncated_input);
	tcase_add_test(tc, malformed_names_place);
	tcase_add_test(tc, scalars_need_separator);
	tcase_add_test(tc, large_value_across_reads);
	suite_add_tcase(s, tc);
	tc = tcase_create("path");
	tcase_add_test(tc, path_format);
	tcase_add_test(tc, locate_path);
	tcase_add_test(tc, check_unknown_field);
	tcase_add_test(tc, canonical_sorts_keys);
	suite_add_tcase(s, tc);
	return s;
}
