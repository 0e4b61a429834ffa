#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "json.h"

/* wf_json_dump() must give jansson's bytes, sorted or not. */
static void
assert_same(const json_t *v)
{
	char *want, *got;
	size_t len;

	want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(wf_json_dump(&got, &len, v, 0), 0);
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(len, strlen(want));
	free(want);
	free(got);

	want = wf_json_canonical(v);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(wf_json_dump(&got, NULL, v, WF_JSON_DUMP_SORT_KEYS), 0);
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
}

static const char *const texts[] = {
	"null", "true", "false", "0", "-9223372036854775808",
	"9223372036854775807", "\"\"", "[]", "{}",
	"\"plain ascii / slash\"",
	"\"quote \\\" backslash \\\\ controls \\b\\f\\n\\r\\t \\u0001\\u001f"
	" del \\u007f\"",
	"\"utf-8: \\u00e9 \\u20ac \\ud83d\\ude00 caf\\u00e9\"",
	"[0.1, 1.5, 3.0, 1e22, 1e300, -2.5e-7, 123456789012345678.0,"
	" 0.000001, 1e-5, 5e-324, 1.7976931348623157e308, 100.0, 1e16,"
	" 1e17, -0.0, 12345.678]",
	"{\"z\": 1, \"a\": {\"y\": [1, {\"c\": null, \"b\": true}],"
	" \"x\": \"\"},"
	" \"\\u00e9\": 2, \"A\": 3, \"a b\": 4, \"_\": 5}",
};

START_TEST(same_as_jansson)
{
	json_error_t err;
	json_t *v = json_loads(texts[_i], JSON_DECODE_ANY, &err);

	ck_assert_msg(v != NULL, "%s", err.text);
	assert_same(v);
	json_decref(v);
}
END_TEST

START_TEST(many_keys_and_nesting)
{
	json_t *o = json_object(), *a = json_array();
	char key[16];
	int i;

	/* More keys than fit the emitter's stack array. */
	for (i = 40; i > 0; i--) {
		snprintf(key, sizeof(key), "k%d", i * 7 % 41);
		json_object_set_new(o, key, json_integer(i));
	}
	for (i = 0; i < 50; i++)
		json_array_append_new(a, json_pack("{s:i, s:[s, f]}", "n", i,
		    "v", "x", i / 3.0));
	json_object_set_new(o, "list", a);
	assert_same(o);
	json_decref(o);
}
END_TEST

START_TEST(long_arrays_split)
{
	json_t *o = json_object(), *a = json_array(), *b = json_array();
	int i;

	/* Long enough to be written in two halves, one nested in another. */
	for (i = 0; i < 20000; i++) {
		json_array_append_new(a, json_pack("{s:i, s:s}", "z", -i, "a",
		    i % 3 ? "x" : "y\n"));
		if (i < 9000)
			json_array_append_new(b, json_integer(i));
	}
	json_array_append_new(a, b);
	json_object_set_new(o, "list", a);
	assert_same(o);
	json_decref(o);
}
END_TEST

START_TEST(null_value)
{
	char *s = (char *)1;

	ck_assert_int_lt(wf_json_dump(&s, NULL, NULL, 0), 0);
	ck_assert_ptr_null(s);
}
END_TEST

/* Also declared in check_suites.h once listed there. */
Suite *json_dump_suite(void);

Suite *
json_dump_suite(void)
{
	Suite *s = suite_create("json_dump");
	TCase *tc = tcase_create("emit");

	tcase_add_loop_test(tc, same_as_jansson, 0,
	    sizeof(texts) / sizeof(texts[0]));
	tcase_add_test(tc, many_keys_and_nesting);
	tcase_add_test(tc, long_arrays_split);
	tcase_add_test(tc, null_value);
	suite_add_tcase(s, tc);
	return s;
}
