#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "landing.h"

static void
pause_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&t, NULL);
}

START_TEST(spawn_waits_for_the_push)
{
	char dir[] = "/tmp/wf-landing-XXXXXX", marker[64], log[64], cmd[128];
	char *argv[3];
	pid_t push, runner;
	int ws, i;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(marker, sizeof(marker), "%s/started", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	/* The push: a process that lasts a while. */
	if ((push = fork()) == 0) {
		pause_ms(400);
		_exit(0);
	}
	ck_assert_int_gt(push, 0);
	argv[0] = (char *)"touch";
	argv[1] = marker;
	argv[2] = NULL;
	ck_assert_int_eq(wf_landing_spawn(&runner, argv, log, push), 0);
	ck_assert_int_gt(runner, 0);
	pause_ms(150);
	ck_assert_msg(access(marker, F_OK) < 0, "the runner did not wait");
	ck_assert_int_eq(waitpid(push, &ws, 0), push);
	for (i = 0; i < 500 && access(marker, F_OK) < 0; i++)
		pause_ms(10);
	ck_assert_msg(access(marker, F_OK) == 0, "the runner never started");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *
landing_suite(void)
{
	Suite *s = suite_create("landing");
	TCase *tc = tcase_create("spawn");

	tcase_add_test(tc, spawn_waits_for_the_push);
	suite_add_tcase(s, tc);
	return s;
}
