#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "lane.h"

static char dir[256];
static git_repository *repo;

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/wf-check-lane.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(git_repository_init(&repo, dir, 1), 0);
}

static void
teardown(void)
{
	char cmd[512];

	git_repository_free(repo);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* "NAME@HOST:PID" of this process. */
static void
me(char *buf, size_t size, const char *name)
{
	char host[256];

	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	snprintf(buf, size, "%s@%s:%ld", name, host, (long)getpid());
}

START_TEST(test_one_holder_at_a_time)
{
	struct wf_lane *a, *b;
	char want[600], msg[700];
	int orphaned = -1;

	ck_assert_int_eq(wf_lane_open(&a, repo, "main"), 0);
	ck_assert_int_eq(wf_lane_open(&b, repo, "refs/heads/main"), 0);
	ck_assert_str_eq(wf_lane_path(a), wf_lane_path(b));
	ck_assert_int_eq(wf_lane_take(&orphaned, a, "first"), 0);
	ck_assert_int_eq(orphaned, 0);
	ck_assert(wf_lane_held(a));
	/* Taken again by its holder: still held, once. */
	ck_assert_int_eq(wf_lane_take(NULL, a, "first"), 0);
	/* Two handles of one process exclude each other. */
	ck_assert_int_eq(wf_lane_take(&orphaned, b, "second"), WF_EBUSY);
	ck_assert(!wf_lane_held(b));
	me(want, sizeof(want), "first");
	ck_assert_str_eq(wf_lane_holder(b), want);
	snprintf(msg, sizeof(msg), "branch 'main' is being landed by '%s'",
	    want);
	ck_assert_str_eq(wf_error_last(), msg);
	wf_lane_drop(a);
	ck_assert(!wf_lane_held(a));
	/* Let go properly: not taken for a dead holder's. */
	ck_assert_int_eq(wf_lane_take(&orphaned, b, "second"), 0);
	ck_assert_int_eq(orphaned, 0);
	ck_assert_int_eq(wf_lane_take(NULL, a, "first"), WF_EBUSY);
	/* Freeing lets go. */
	wf_lane_free(b);
	ck_assert_int_eq(wf_lane_take(NULL, a, "first"), 0);
	wf_lane_free(a);
	wf_lane_free(NULL);
	wf_lane_drop(NULL);
}
END_TEST

START_TEST(test_holder_killed)
{
	struct wf_lane *a;
	int orphaned = -1, ws, p[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		struct wf_lane *l;

		close(p[0]);
		if (wf_lane_open(&l, repo, "main") < 0 ||
		    wf_lane_take(NULL, l, "child") < 0)
			_exit(1);
		/* Holding it; then killed. */
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(1);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	ck_assert_int_eq(wf_lane_open(&a, repo, "main"), 0);
	ck_assert_int_eq(wf_lane_take(NULL, a, "parent"), WF_EBUSY);
	ck_assert_ptr_nonnull(strstr(wf_lane_holder(a), "child@"));
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert(WIFSIGNALED(ws));
	/* The kernel let go for it; its name says it died holding it. */
	ck_assert_int_eq(wf_lane_take(&orphaned, a, "parent"), 0);
	ck_assert_int_eq(orphaned, 1);
	wf_lane_drop(a);
	ck_assert_int_eq(wf_lane_take(&orphaned, a, "parent"), 0);
	ck_assert_int_eq(orphaned, 0);
	wf_lane_free(a);
}
END_TEST

/* The lane's path relative to the git directory. */
static const char *
rel(const struct wf_lane *l)
{
	const char *p = wf_lane_path(l), *g = git_repository_commondir(repo);

	ck_assert_int_eq(strncmp(p, g, strlen(g)), 0);
	return p + strlen(g) + (g[strlen(g) - 1] != '/');
}

START_TEST(test_file_names)
{
	struct wf_lane *l;
	char name[400];
	const char *r;

	ck_assert_int_eq(wf_lane_open(&l, repo, "main"), 0);
	ck_assert_str_eq(rel(l), "wf/apply-main.lock");
	ck_assert_int_eq(access(wf_lane_path(l), F_OK), 0);
	wf_lane_free(l);
	ck_assert_int_eq(wf_lane_open(&l, repo, "topic/x_1.2-%"), 0);
	ck_assert_str_eq(rel(l), "wf/apply-topic%2Fx_1.2-%25.lock");
	wf_lane_free(l);
	/* Too long for a file name: its blob id instead. */
	memset(name, 'a', 300);
	name[300] = '\0';
	ck_assert_int_eq(wf_lane_open(&l, repo, name), 0);
	r = rel(l);
	ck_assert_int_eq(strlen(r), strlen("wf/apply-.lock") + 40);
	ck_assert_int_eq(strspn(r + 9, "0123456789abcdef"), 40);
	wf_lane_free(l);
}
END_TEST

Suite *
lane_suite(void)
{
	Suite *s = suite_create("lane");
	TCase *tc = tcase_create("lane");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_one_holder_at_a_time);
	tcase_add_test(tc, test_holder_killed);
	tcase_add_test(tc, test_file_names);
	suite_add_tcase(s, tc);
	return s;
}
