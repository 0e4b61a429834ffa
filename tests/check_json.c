#include <stdint.h>
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

/* Columns count characters, not bytes, however long the line. */
START_TEST(columns_count_characters)
{
	char text[512];
	struct wf_json_reader *r;
	struct wf_json_doc d;
	size_t i, n;

	n = (size_t)snprintf(text, sizeof(text), "{\"k\":\"");
	for (i = 0; i < 30; i++)	/* é: two bytes, one character */
		n += (size_t)snprintf(text + n, sizeof(text) - n, "\xc3\xa9");
	snprintf(text + n, sizeof(text) - n, "\"} {\"x\":1}\n\xc3\xa9 \n");
	r = test_reader(text);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	json_decref(d.value);
	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	ck_assert_uint_eq(d.line, 1);
	ck_assert_uint_eq(d.col, 40);
	json_decref(d.value);
	/* The stray é: an error at line 2, column 1. */
	ck_assert_int_eq(wf_json_reader_next(&d, r), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), ":2:1:"));
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

/* Found by fuzzing: of duplicate keys, jansson keeps the last. */
START_TEST(locate_duplicate_key)
{
	const char *text = "{\"s\": [{\"id\": 1}],\n \"s\": [{\"t\": 2}]}";
	struct wf_json_reader *r = test_reader(text);
	struct wf_json_doc d;
	struct wf_jpath p = WF_JPATH_INIT;
	unsigned long line, col;

	ck_assert_int_eq(wf_json_reader_next(&d, r), 1);
	wf_jpath_push_key(&p, "s");
	wf_jpath_push_index(&p, 0);
	wf_jpath_push_key(&p, "t");
	ck_assert_int_eq(wf_json_locate(&line, &col, &d, &p), 0);
	ck_assert_uint_eq(line, 2);
	ck_assert_uint_eq(col, 14);
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

/*
 * The fast parser against jansson: random documents (nested, with
 * escapes, surrogate pairs, UTF-8 good and bad, numbers of every kind,
 * duplicate keys, deep nesting) and random damage to them.  Whenever
 * the fast parser answers, jansson gives the same value, key order and
 * length; whenever jansson refuses, the fast parser does too.
 */
struct gen {
	char *buf;
	size_t len, cap;
	uint32_t seed;
};

static uint32_t
gen_rand(struct gen *g)
{
	g->seed = g->seed * 1103515245u + 12345u;
	return g->seed >> 8;
}

static void
gen_put(struct gen *g, const char *s, size_t n)
{
	if (g->len + n + 1 > g->cap) {
		g->cap = (g->len + n + 1) * 2;
		g->buf = realloc(g->buf, g->cap);
		ck_assert_ptr_nonnull(g->buf);
	}
	memcpy(g->buf + g->len, s, n);
	g->len += n;
	g->buf[g->len] = '\0';
}

static void
gen_ws(struct gen *g)
{
	static const char *const ws[] = { "", "", "", " ", "\n", "\t ", "\r\n" };

	const char *w = ws[gen_rand(g) % 7];

	gen_put(g, w, strlen(w));
}

static void
gen_string(struct gen *g)
{
	static const char *const pieces[] = { "a", "key", "\\n", "\\\"",
	    "\\\\", "\\/", "\\t", "\\u00e9", "\\u20AC", "\\ud83d\\ude00",
	    "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ", "x y",
	    "\\u0041", "id", "path" };
	static const char *const bad[] = { "\\u0000", "\\ud800", "\\udc00x",
	    "\xc0\x80", "\xed\xa0\x80", "\xff", "\x01", "\\x", "\\u12",
	    "\xe2\x82", "\xf4\x90\x80\x80" };
	int n = (int)(gen_rand(g) % 5), i;

	gen_put(g, "\"", 1);
	for (i = 0; i < n; i++) {
		const char *p = gen_rand(g) % 40 == 0 ?
		    bad[gen_rand(g) % (sizeof(bad) / sizeof(*bad))] :
		    pieces[gen_rand(g) % (sizeof(pieces) / sizeof(*pieces))];

		gen_put(g, p, strlen(p));
	}
	gen_put(g, "\"", 1);
}

static void
gen_value(struct gen *g, int depth)
{
	static const char *const scalars[] = { "true", "false", "null", "0",
	    "-0", "7", "-12", "123456789012345678", "1234567890123456789",
	    "-9223372036854775808", "99999999999999999999", "1.5", "-2e3",
	    "1E+2", "01", "-", "tru", "nul", "1a", "0.0" };
	uint32_t r = gen_rand(g) % 10;
	int n, i;

	if (depth < 6 && r < 3) {
		int obj = r == 0 || r == 1;

		gen_put(g, obj ? "{" : "[", 1);
		n = (int)(gen_rand(g) % 5);
		for (i = 0; i < n; i++) {
			if (i)
				gen_put(g, ",", 1);
			gen_ws(g);
			if (obj) {
				gen_string(g);
				gen_ws(g);
				gen_put(g, ":", 1);
				gen_ws(g);
			}
			gen_value(g, depth + 1);
			gen_ws(g);
		}
		gen_put(g, obj ? "}" : "]", 1);
	} else if (r < 6) {
		gen_string(g);
	} else {
		const char *s = scalars[gen_rand(g) %
		    (sizeof(scalars) / sizeof(*scalars))];

		gen_put(g, s, strlen(s));
	}
}

static void
compare_parsers(const char *s, size_t len)
{
	json_error_t err;
	json_t *j = json_loadb(s, len, JSON_DECODE_ANY |
	    JSON_DISABLE_EOF_CHECK, &err);
	size_t used = 0;
	json_t *f = wf_json_fast_parse(s, len, &used);

	if (!j) {
		ck_assert_msg(f == NULL, "fast parser took what jansson "
		    "refuses (%s): %.*s", err.text, (int)len, s);
	} else if (f) {
		char *a = NULL, *b = NULL;

		ck_assert_msg(json_equal(f, j), "values differ: %.*s",
		    (int)len, s);
		ck_assert_int_eq(used, (size_t)err.position);
		ck_assert_int_eq(wf_json_dump(&a, NULL, f, 0), 0);
		ck_assert_int_eq(wf_json_dump(&b, NULL, j, 0), 0);
		ck_assert_str_eq(a, b);
		free(a);
		free(b);
	}
	json_decref(j);
	json_decref(f);
}

START_TEST(fast_parser_agrees)
{
	struct gen g = { NULL, 0, 0, 20261121 };
	size_t took = 0, k;
	int i;

	for (i = 0; i < 20000; i++) {
		g.len = 0;
		gen_put(&g, i % 2 ? "{" : "[", 1);
		gen_value(&g, 0);
		gen_put(&g, i % 2 ? "}" : "]", 1);
		/* Arrays of one value; objects need a key. */
		if (i % 2) {
			g.len = 0;
			gen_put(&g, "{\"k\":", 5);
			gen_value(&g, 0);
			gen_ws(&g);
			gen_put(&g, "}", 1);
		}
		compare_parsers(g.buf, g.len);
		{
			size_t u;
			json_t *v = wf_json_fast_parse(g.buf, g.len, &u);

			took += v != NULL;
			json_decref(v);
		}
		/* Damage: cut short, a byte changed, a byte dropped. */
		k = gen_rand(&g) % g.len;
		compare_parsers(g.buf, k);
		{
			char save = g.buf[k];
			static const char junk[] = "{}[],:\"\\ 0a-\x80\x01";

			g.buf[k] = junk[gen_rand(&g) % (sizeof(junk) - 1)];
			compare_parsers(g.buf, g.len);
			g.buf[k] = save;
			memmove(g.buf + k, g.buf + k + 1, g.len - k - 1);
			compare_parsers(g.buf, g.len - 1);
		}
	}
	/* The fast path really is taken for most documents. */
	ck_assert_msg(took > 5000, "fast parser took only %zu", took);
	/* Nesting: fine at 2048 levels, left to jansson beyond. */
	for (k = 2047; k <= 2050; k++) {
		size_t d;

		g.len = 0;
		for (d = 0; d < k; d++)
			gen_put(&g, "[", 1);
		for (d = 0; d < k; d++)
			gen_put(&g, "]", 1);
		compare_parsers(g.buf, g.len);
	}
	free(g.buf);
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
	tcase_add_test(tc, columns_count_characters);
	tcase_add_test(tc, truncated_input);
	tcase_add_test(tc, malformed_names_place);
	tcase_add_test(tc, scalars_need_separator);
	tcase_add_test(tc, large_value_across_reads);
	tcase_add_test(tc, fast_parser_agrees);
	/* 20,000 documents: seconds under the sanitizers on a busy machine. */
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tc = tcase_create("path");
	tcase_add_test(tc, path_format);
	tcase_add_test(tc, locate_path);
	tcase_add_test(tc, locate_duplicate_key);
	tcase_add_test(tc, check_unknown_field);
	tcase_add_test(tc, canonical_sorts_keys);
	suite_add_tcase(s, tc);
	return s;
}
