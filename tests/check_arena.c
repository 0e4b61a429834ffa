#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "arena.h"
#include "check_suites.h"

#define NBLOCKS 200000		/* several chunks' worth */

/* A tiny LCG so the order of frees is the same on every run. */
static unsigned long
lcg(unsigned long *state)
{
	*state = *state * 6364136223846793005UL + 1442695040888963407UL;
	return *state >> 33;
}

START_TEST(blocks_are_aligned_and_kept_apart)
{
	unsigned char **p = malloc(NBLOCKS * sizeof(*p));
	unsigned long st = 7;
	size_t i, j, k, bad = 0;

	/* Few assertions: Check reports every one to its parent. */
	ck_assert_ptr_nonnull(p);
	for (i = 0; i < NBLOCKS; i++) {
		size_t n = i % 300;

		p[i] = wf_arena_alloc(n);
		if (!p[i] || (uintptr_t)p[i] % alignof(max_align_t) != 0)
			ck_abort_msg("block %zu: %p", i, (void *)p[i]);
		memset(p[i], (int)(i & 0xff), n);
	}
	for (i = 0; i < NBLOCKS; i++)
		for (j = 0; j < i % 300; j++)
			bad += p[i][j] != (i & 0xff);
	ck_assert_uint_eq(bad, 0);
	/* Free in a shuffled order: every chunk must go back. */
	for (i = NBLOCKS; i > 1; i--) {
		unsigned char *t;

		k = lcg(&st) % i;
		t = p[i - 1];
		p[i - 1] = p[k];
		p[k] = t;
	}
	for (i = 0; i < NBLOCKS; i++)
		wf_arena_free(p[i]);
	wf_arena_free(NULL);
	wf_arena_release();
	wf_arena_release();
	free(p);
}
END_TEST

START_TEST(big_blocks)
{
	static const size_t sizes[] = { 512 * 1024 + 1, 2 * 1024 * 1024,
	    5 * 1024 * 1024 + 3 };
	unsigned char *small = wf_arena_alloc(10), *p;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ck_assert_ptr_nonnull(p = wf_arena_alloc(sizes[i]));
		p[0] = 1;
		p[sizes[i] - 1] = 2;
		wf_arena_free(p);
	}
	ck_assert_ptr_null(wf_arena_alloc(SIZE_MAX - 8));
	wf_arena_free(small);
	wf_arena_release();
}
END_TEST

static void *
free_all(void *arg)
{
	void **p = arg;
	size_t i;

	for (i = 0; i < 1000; i++)
		wf_arena_free(p[i]);
	return NULL;
}

START_TEST(free_on_another_thread)
{
	void *p[1000];
	pthread_t t;
	size_t i;

	for (i = 0; i < 1000 && (p[i] = wf_arena_alloc(64)); i++)
		;
	ck_assert_uint_eq(i, 1000);
	wf_arena_release();
	ck_assert_int_eq(pthread_create(&t, NULL, free_all, p), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

START_TEST(jansson_values)
{
	json_t *v;
	char *s;

	json_set_alloc_funcs(wf_arena_alloc, wf_arena_free);
	v = json_loads("{\"a\": [1, 2.5, \"three\", {\"b\": null}]}", 0,
	    NULL);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(json_object_set_new(v, "c", json_string("d")), 0);
	s = json_dumps(v, JSON_COMPACT);
	ck_assert_str_eq(s, "{\"a\":[1,2.5,\"three\",{\"b\":null}],\"c\":\"d\"}");
	/* Text from jansson is freed the way jansson allocated it. */
	wf_arena_free(s);
	json_decref(v);
	wf_arena_release();
	json_set_alloc_funcs(malloc, free);
}
END_TEST

Suite *
arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("alloc");

	tcase_add_test(tc, blocks_are_aligned_and_kept_apart);
	tcase_add_test(tc, big_blocks);
	tcase_add_test(tc, free_on_another_thread);
	tcase_add_test(tc, jansson_values);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
