#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "check_fixture.h"
#include "check_suites.h"
#include "error.h"
#include "sandbox.h"

static const struct fixture_file base_files[] = {
	{ "a.txt", "hello\n", 0 },
	{ "dir/b.txt", "bee\n", 0 },
	{ "run.sh", "#!/bin/sh\necho run\n", 0100755 },
	{ "link", "a.txt", 0120000 },
	{ "ext", "/tmp", 0120000 },	/* the repository's own: trusted */
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

static struct wf_sandbox *
new_sandbox(void)
{
	struct wf_sandbox *sb;
	int rc = wf_sandbox_new(&sb, repo, &commit, NULL);

	ck_assert_msg(rc == 0, "%s", wf_error_last());
	return sb;
}

static char *
slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "rb");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(checkout_is_fresh)
{
	struct wf_sandbox *sb;
	char *index_path = fixture_join(repo_dir, ".git/index"), *p;
	char before[65536], root[4096];
	struct stat st;
	char target[64];
	ssize_t n;

	strcpy(before, slurp(index_path));
	sb = new_sandbox();
	ck_assert_str_eq(wf_sandbox_dir(sb) + strlen(wf_sandbox_root(sb)),
	    "/work");
	p = fixture_join(wf_sandbox_dir(sb), "a.txt");
	ck_assert_str_eq(slurp(p), "hello\n");
	free(p);
	p = fixture_join(wf_sandbox_dir(sb), "dir/b.txt");
	ck_assert_str_eq(slurp(p), "bee\n");
	free(p);
	p = fixture_join(wf_sandbox_dir(sb), "run.sh");
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(st.st_mode & S_IXUSR);
	free(p);
	p = fixture_join(wf_sandbox_dir(sb), "link");
	n = readlink(p, target, sizeof(target) - 1);
	ck_assert_int_eq(n, 5);
	target[n] = '\0';
	ck_assert_str_eq(target, "a.txt");
	free(p);
	/* No .git in the sandbox; the repository's index is unchanged. */
	p = fixture_join(wf_sandbox_dir(sb), ".git");
	ck_assert_int_eq(lstat(p, &st), -1);
	free(p);
	ck_assert_str_eq(slurp(index_path), before);
	ck_assert(git_oid_equal(wf_sandbox_commit(sb), &commit));
	snprintf(root, sizeof(root), "%s", wf_sandbox_root(sb));
	wf_sandbox_free(sb);
	ck_assert_int_eq(lstat(root, &st), -1);
	free(index_path);
}
END_TEST

START_TEST(unknown_commit)
{
	struct wf_sandbox *sb;
	git_oid bogus;

	git_oid_fromstr(&bogus, "0123456789abcdef0123456789abcdef01234567");
	ck_assert_int_eq(wf_sandbox_new(&sb, repo, &bogus, NULL), WF_EINPUT);
	ck_assert_ptr_null(sb);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "not in the repository"));
}
END_TEST

START_TEST(environment_is_cleaned)
{
	struct wf_sandbox_opts o = WF_SANDBOX_OPTS_INIT;
	const char *extra[] = { "WF_CHECK_PASSED", NULL };
	struct wf_sandbox *sb;
	char *const *env;
	size_t i;

	setenv("WF_CHECK_SECRET", "s3cret", 1);
	setenv("WF_CHECK_PASSED", "yes", 1);
	setenv("LC_CHECK", "lc", 1);
	o.env = extra;
	ck_assert_int_eq(wf_sandbox_new(&sb, repo, &commit, &o), 0);
	ck_assert_ptr_null(wf_sandbox_getenv(sb, "WF_CHECK_SECRET"));
	ck_assert_str_eq(wf_sandbox_getenv(sb, "WF_CHECK_PASSED"), "yes");
	ck_assert_str_eq(wf_sandbox_getenv(sb, "LC_CHECK"), "lc");
	ck_assert_str_eq(wf_sandbox_getenv(sb, "PATH"), getenv("PATH"));
	ck_assert_str_eq(wf_sandbox_getenv(sb, "WF_SANDBOX"),
	    wf_sandbox_dir(sb));
	ck_assert_ptr_nonnull(strstr(wf_sandbox_getenv(sb, "TMPDIR"),
	    wf_sandbox_root(sb)));
	ck_assert_int_eq(wf_sandbox_setenv(sb, "WF_PLAN_ID", "p1"), 0);
	ck_assert_int_eq(wf_sandbox_setenv(sb, "AAA", "first"), 0);
	ck_assert_int_eq(wf_sandbox_setenv(sb, "WF_PLAN_ID", "p2"), 0);
	ck_assert_int_eq(wf_sandbox_setenv(sb, "LC_CHECK", NULL), 0);
	ck_assert_int_eq(wf_sandbox_setenv(sb, "1BAD", "x"), WF_EINPUT);
	env = wf_sandbox_environ(sb);
	ck_assert_str_eq(env[0], "AAA=first");
	for (i = 1; env[i]; i++) {
		ck_assert_msg(strcmp(env[i - 1], env[i]) < 0, "%s >= %s",
		    env[i - 1], env[i]);
		ck_assert(strncmp(env[i], "WF_CHECK_SECRET=", 16) != 0);
		ck_assert(strncmp(env[i], "LC_CHECK=", 9) != 0);
	}
	ck_assert_str_eq(wf_sandbox_getenv(sb, "WF_PLAN_ID"), "p2");
	wf_sandbox_free(sb);
	unsetenv("WF_CHECK_SECRET");
	unsetenv("WF_CHECK_PASSED");
	unsetenv("LC_CHECK");
}
END_TEST

/* Run a shell command in the sandbox's checkout. */
static void
in_sandbox(struct wf_sandbox *sb, const char *cmd)
{
	char buf[8192];

	snprintf(buf, sizeof(buf), "cd '%s' && %s", wf_sandbox_dir(sb), cmd);
	ck_assert_msg(system(buf) == 0, "%s", cmd);
}

START_TEST(collect_changes)
{
	struct wf_sandbox *sb = new_sandbox();
	struct wf_sandbox_file *f;
	git_oid id;
	size_t n;
	int rc;

	ck_assert_int_eq(wf_sandbox_collect(&f, &n, sb), 0);
	ck_assert_uint_eq(n, 0);
	wf_sandbox_files_free(f, n);
	in_sandbox(sb, "echo new >new.txt && echo changed >a.txt && "
	    "rm dir/b.txt && chmod -x run.sh && mkdir -p deep/er empty && "
	    "echo x >deep/er/x && ln -s ../a.txt deep/up && "
	    "echo t >\"$TMPDIR/ignored\"");
	rc = wf_sandbox_collect(&f, &n, sb);
	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(f[0].path, "a.txt");
	ck_assert_int_eq(f[0].change, WF_SANDBOX_MODIFIED);
	git_odb_hash(&id, "changed\n", 8, GIT_OBJECT_BLOB);
	ck_assert(git_oid_equal(&f[0].id, &id));
	ck_assert_str_eq(f[1].path, "deep/er/x");
	ck_assert_int_eq(f[1].change, WF_SANDBOX_ADDED);
	ck_assert_str_eq(f[2].path, "deep/up");
	ck_assert_uint_eq(f[2].mode, 0120000);
	ck_assert_str_eq(f[3].path, "dir/b.txt");
	ck_assert_int_eq(f[3].change, WF_SANDBOX_DELETED);
	ck_assert_uint_eq(f[3].mode, 0);
	ck_assert_str_eq(f[4].path, "new.txt");
	ck_assert_uint_eq(f[4].mode, 0100644);
	ck_assert_str_eq(f[5].path, "run.sh");
	ck_assert_int_eq(f[5].change, WF_SANDBOX_MODIFIED);
	ck_assert_uint_eq(f[5].mode, 0100644);
	wf_sandbox_files_free(f, n);
	wf_sandbox_free(sb);
}
END_TEST

START_TEST(snapshot_lists_everything)
{
	struct wf_sandbox *sb = new_sandbox();
	struct wf_sandbox_file *f;
	size_t n;
	int rc;

	in_sandbox(sb, "echo new >new.txt && echo changed >a.txt && "
	    "rm dir/b.txt");
	rc = wf_sandbox_snapshot(&f, &n, sb);
	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(f[0].path, "a.txt");
	ck_assert_int_eq(f[0].change, WF_SANDBOX_MODIFIED);
	ck_assert_str_eq(f[1].path, "ext");
	ck_assert_int_eq(f[1].change, WF_SANDBOX_UNCHANGED);
	ck_assert_uint_eq(f[1].mode, 0120000);
	ck_assert_str_eq(f[2].path, "link");
	ck_assert_str_eq(f[3].path, "new.txt");
	ck_assert_int_eq(f[3].change, WF_SANDBOX_ADDED);
	ck_assert_str_eq(f[4].path, "run.sh");
	ck_assert_uint_eq(f[4].mode, 0100755);
	wf_sandbox_files_free(f, n);
	wf_sandbox_free(sb);
}
END_TEST

/* The command, run in a fresh sandbox, makes collecting fail. */
static void
refused(const char *cmd, const char *message)
{
	struct wf_sandbox *sb = new_sandbox();
	struct wf_sandbox_file *f;
	size_t n;
	int rc;

	in_sandbox(sb, cmd);
	rc = wf_sandbox_collect(&f, &n, sb);
	ck_assert_msg(rc == WF_EINPUT, "%s: got %d", cmd, rc);
	ck_assert_ptr_null(f);
	ck_assert_msg(strstr(wf_error_last(), message) != NULL,
	    "%s: '%s' lacks '%s'", cmd, wf_error_last(), message);
	wf_sandbox_free(sb);
}

START_TEST(collect_refuses_escapes)
{
	refused("echo out >../escaped", "'../escaped': written outside the "
	    "sandbox");
	refused("ln -s /etc/passwd pw", "symbolic link 'pw' -> '/etc/passwd': "
	    "absolute link target");
	refused("mkdir d && ln -s ../../.. d/up", "link target leaves the "
	    "repository");
	refused("ln -s .git/config cfg", "link target in '.git'");
	refused("mkdir -p sub/.git && echo x >sub/.git/HEAD",
	    "'sub/.git': written in '.git'");
	refused("mkdir .GIT", "'.GIT': written in '.git'");
	refused("mkfifo pipe", "'pipe' is neither a file");
	refused("ln -s ext t", "symbolic link 't' -> 'ext': leads out of "
	    "the sandbox");
	refused("rm -rf ../work/* && rmdir ../work && ln -s / ../work",
	    "removed or replaced");
}
END_TEST

START_TEST(paths_and_reads)
{
	struct wf_sandbox *sb = new_sandbox();
	char *p, *buf;
	size_t len;
	struct stat st;

	ck_assert_int_eq(wf_sandbox_path(&p, sb, "x/y/z.txt", 1), 0);
	ck_assert_int_eq(strncmp(p, wf_sandbox_dir(sb),
	    strlen(wf_sandbox_dir(sb))), 0);
	ck_assert_str_eq(p + strlen(wf_sandbox_dir(sb)), "/x/y/z.txt");
	free(p);
	p = fixture_join(wf_sandbox_dir(sb), "x/y");
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	free(p);
	ck_assert_int_eq(wf_sandbox_path(&p, sb, "../x", 1), WF_EINPUT);
	ck_assert_int_eq(wf_sandbox_path(&p, sb, "a/.git/x", 1), WF_EINPUT);
	in_sandbox(sb, "ln -s /tmp out");
	ck_assert_int_eq(wf_sandbox_path(&p, sb, "out/x", 1), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "symbolic link 'out'"));
	ck_assert_int_eq(wf_sandbox_path(&p, sb, "a.txt/x", 0), WF_EINPUT);
	ck_assert_int_eq(wf_sandbox_read(&buf, &len, sb, "a.txt"), 0);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(buf, "hello\n");
	free(buf);
	ck_assert_int_eq(wf_sandbox_read(&buf, &len, sb, "link"), 0);
	ck_assert_str_eq(buf, "a.txt");
	free(buf);
	ck_assert_int_eq(wf_sandbox_read(&buf, &len, sb, "nope"),
	    WF_ENOTFOUND);
	ck_assert_int_eq(wf_sandbox_read(&buf, &len, sb, "out/passwd"),
	    WF_EINPUT);
	ck_assert_int_eq(wf_sandbox_read(&buf, &len, sb, "dir"), WF_EINPUT);
	wf_sandbox_free(sb);
}
END_TEST

START_TEST(free_removes_read_only)
{
	struct wf_sandbox *sb = new_sandbox();
	char root[4096];
	struct stat st;

	in_sandbox(sb, "mkdir -p ro/deeper && echo x >ro/deeper/f && "
	    "chmod 500 ro/deeper ro");
	snprintf(root, sizeof(root), "%s", wf_sandbox_root(sb));
	wf_sandbox_free(sb);
	ck_assert_int_eq(lstat(root, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

Suite *
sandbox_suite(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc;

	tc = tcase_create("checkout");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, checkout_is_fresh);
	tcase_add_test(tc, unknown_commit);
	tcase_add_test(tc, environment_is_cleaned);
	suite_add_tcase(s, tc);
	tc = tcase_create("collect");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, collect_changes);
	tcase_add_test(tc, snapshot_lists_everything);
	tcase_add_test(tc, collect_refuses_escapes);
	tcase_add_test(tc, paths_and_reads);
	tcase_add_test(tc, free_removes_read_only);
	suite_add_tcase(s, tc);
	return s;
}
