#include <stdlib.h>

#include <check.h>

#include "check_suites.h"
#include "git.h"

int
main(void)
{
	SRunner *sr;
	int failed;

	if (wf_git_init() < 0)
		return EXIT_FAILURE;
	sr = srunner_create(NULL);
#define WF_SUITE(name) srunner_add_suite(sr, name##_suite());
	WF_SUITES
#undef WF_SUITE
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_git_shutdown();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
