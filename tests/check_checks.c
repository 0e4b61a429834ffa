#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "checks.h"
#include "check_suites.h"
#include "error.h"

static char dir[256];
static git_repository *repo;
static git_oid head, base;

static void
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(system(cmd), 0);
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/wf-check-check.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	sh("cd '%s' && git init -q -b main . && git config user.name C && "
	    "git config user.email c@example.com && echo one >f && "
	    "git add f && git commit -q -m one && mkdir -p d/e && echo two >"
	    "d/e/g && ln -s f link && git add . && git commit -q -m two", dir);
	ck_assert_int_eq(git_repository_open(&repo, dir), 0);
	ck_assert_int_eq(git_reference_name_to_id(&head, repo, "HEAD"), 0);
	{
		git_commit *c, *parent;

		ck_assert_int_eq(git_commit_lookup(&c, repo, &head), 0);
		ck_assert_int_eq(git_commit_parent(&parent, c, 0), 0);
		base = *git_commit_id(parent);
		git_commit_free(parent);
		git_commit_free(c);
	}
}

static void
teardown(void)
{
	git_repository_free(repo);
	sh("rm -rf '%s'", dir);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *
nth(json_t *res, size_t i)
{
	return json_array_get(json_object_get(res, "checks"), i);
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

START_TEST(test_configured)
{
	char **v;

	ck_assert_int_eq(wf_checks_configured(&v, repo, "main"), 0);
	ck_assert_ptr_null(v[0]);
	wf_checks_strv_free(v);
	sh("cd '%s' && git config --add wf.main.check 'make test' && "
	    "git config --add wf.main.check './lint' && "
	    "git config --add wf.other.check nope", dir);
	ck_assert_int_eq(wf_checks_configured(&v, repo, "refs/heads/main"), 0);
	ck_assert_str_eq(v[0], "make test");
	ck_assert_str_eq(v[1], "./lint");
	ck_assert_ptr_null(v[2]);
	wf_checks_strv_free(v);
	wf_checks_strv_free(NULL);
}
END_TEST

/* The checkout holds the tree; the environment names what is checked. */
START_TEST(test_runs_on_the_tree)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	const char *cmds[] = {
		"test \"$(cat f)\" = one && test \"$(cat d/e/g)\" = two && "
		"test -L link && test ! -e .git && "
		"test \"$WF_TREE\" = \"$(git --git-dir=\"$WF_GIT_DIR\" "
		"rev-parse HEAD^{tree})\" && "
		"test \"$WF_HEAD\" = \"$(git --git-dir=\"$WF_GIT_DIR\" "
		"rev-parse HEAD)\" && "
		"test \"$WF_BASE\" = \"$(git --git-dir=\"$WF_GIT_DIR\" "
		"rev-parse HEAD~1)\" && test \"$WF_TARGET\" = main && "
		"test \"$WF_QUEUE_IDS\" = 'a b' && echo fine",
		"echo out; echo err >&2; exit 3",
		"echo never",
		NULL
	};
	json_t *res, *r;
	char tmp[300];

	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	sh("mkdir '%s'", tmp);
	o.tmpdir = tmp;
	o.target = "main";
	o.queue_ids = "a b";
	ck_assert_int_eq(wf_checks_run(&res, repo, cmds, &base, &head, &o), 0);
	ck_assert(json_is_false(json_object_get(res, "ok")));
	ck_assert_int_eq(json_array_size(json_object_get(res, "checks")), 2);
	r = nth(res, 0);
	ck_assert_str_eq(str(r, "output"), "fine\n");
	ck_assert(json_is_true(json_object_get(r, "ok")));
	r = nth(res, 1);
	ck_assert(json_is_false(json_object_get(r, "ok")));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "exit")), 3);
	ck_assert(json_is_null(json_object_get(r, "signal")));
	ck_assert(json_is_false(json_object_get(r, "timed_out")));
	ck_assert(json_is_false(json_object_get(r, "cached")));
	ck_assert_str_eq(str(r, "output"), "out\nerr\n");
	json_decref(res);
	/* Nothing to run: ok, and no checkout. */
	ck_assert_int_eq(wf_checks_run(&res, repo, NULL, &base, &head, &o), 0);
	ck_assert(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	/* The checkouts are gone. */
	sh("test -z \"$(ls -A '%s/tmp')\"", dir);
}
END_TEST

START_TEST(test_bare_repository)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	const char *cmds[] = { "test \"$(cat d/e/g)\" = two", NULL };
	git_repository *bare;
	json_t *res;
	char path[400];

	sh("cd '%s' && git clone -q --bare . bare.git", dir);
	snprintf(path, sizeof(path), "%s/bare.git", dir);
	ck_assert_int_eq(git_repository_open(&bare, path), 0);
	ck_assert_int_eq(wf_checks_run(&res, bare, cmds, &base, &head, &o), 0);
	ck_assert(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	git_repository_free(bare);
}
END_TEST

START_TEST(test_timeout_kills_the_group)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	const char *hang[] = { "echo started; sleep 30; echo late", NULL };
	const char *stubborn[] = { "trap '' TERM; echo stubborn; "
	    "while :; do sleep 1; done", NULL };
	const char *leaves[] = { "sleep 30 & echo left", NULL };
	json_t *res, *r;
	int64_t t0;

	o.timeout_ms = 300;
	o.grace_ms = 300;
	t0 = now_ms();
	ck_assert_int_eq(wf_checks_run(&res, repo, hang, &base, &head, &o), 0);
	ck_assert_int_lt(now_ms() - t0, 15000);	/* not the 30 s */
	r = nth(res, 0);
	ck_assert(json_is_false(json_object_get(res, "ok")));
	ck_assert(json_is_true(json_object_get(r, "timed_out")));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "signal")), 15);
	ck_assert_str_eq(str(r, "output"), "started\n");
	json_decref(res);
	/* SIGTERM ignored: SIGKILL after the grace period. */
	t0 = now_ms();
	ck_assert_int_eq(wf_checks_run(&res, repo, stubborn, &base, &head, &o),
	    0);
	ck_assert_int_lt(now_ms() - t0, 15000);	/* not the 30 s */
	r = nth(res, 0);
	ck_assert(json_is_true(json_object_get(r, "timed_out")));
	ck_assert_int_eq(json_integer_value(json_object_get(r, "signal")), 9);
	json_decref(res);
	/* What a passing check leaves running does not hold it up. */
	o.timeout_ms = 20000;
	t0 = now_ms();
	ck_assert_int_eq(wf_checks_run(&res, repo, leaves, &base, &head, &o), 0);
	ck_assert_int_lt(now_ms() - t0, 15000);	/* not the 30 s */
	ck_assert(json_is_true(json_object_get(res, "ok")));
	ck_assert_str_eq(str(nth(res, 0), "output"), "left\n");
	json_decref(res);
}
END_TEST

START_TEST(test_output_tail)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	const char *big[] = { "head -c 10000 /dev/zero | tr '\\0' a; "
	    "printf 'end'", NULL };
	const char *bad[] = { "printf 'x\\377y\\303\\251z'; exit 1", NULL };
	json_t *res;
	const char *s;

	o.tail = 100;
	ck_assert_int_eq(wf_checks_run(&res, repo, big, &base, &head, &o), 0);
	s = str(nth(res, 0), "output");
	ck_assert_int_eq(strlen(s), 100);
	ck_assert_str_eq(s + 97, "end");
	json_decref(res);
	ck_assert_int_eq(wf_checks_run(&res, repo, bad, &base, &head, &o), 0);
	ck_assert_str_eq(str(nth(res, 0), "output"), "x?y\xc3\xa9z");
	json_decref(res);
}
END_TEST

START_TEST(test_cache)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	struct wf_queue *q;
	char db[300], cmd[400];
	const char *cmds[] = { cmd, NULL };
	json_t *res;

	snprintf(db, sizeof(db), "%s/q.db", dir);
	snprintf(cmd, sizeof(cmd), "echo ran >>'%s/log'", dir);
	ck_assert_int_eq(wf_queue_open(&q, db, NULL), 0);
	o.cache = q;
	ck_assert_int_eq(wf_checks_run(&res, repo, cmds, &base, &head, &o), 0);
	ck_assert(json_is_false(json_object_get(nth(res, 0), "cached")));
	json_decref(res);
	ck_assert_int_eq(wf_checks_run(&res, repo, cmds, &base, &head, &o), 0);
	ck_assert(json_is_true(json_object_get(nth(res, 0), "cached")));
	ck_assert(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	/* Another tree is run again. */
	ck_assert_int_eq(wf_checks_run(&res, repo, cmds, &base, &base, &o), 0);
	ck_assert(json_is_false(json_object_get(nth(res, 0), "cached")));
	json_decref(res);
	sh("test $(wc -l <'%s/log') -eq 2", dir);
	wf_queue_free(q);
}
END_TEST

static int
stop_now(void *payload)
{
	(void)payload;
	return wf_error_set(WF_EBUSY, "stopped");
}

START_TEST(test_tick_stops)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	const char *hang[] = { "sleep 30", NULL };
	json_t *res;
	int64_t t0 = now_ms();

	o.tick = stop_now;
	o.tick_ms = 100;
	ck_assert_int_eq(wf_checks_run(&res, repo, hang, &base, &head, &o),
	    WF_EBUSY);
	ck_assert_ptr_null(res);
	ck_assert_int_lt(now_ms() - t0, 15000);	/* not the 30 s */
}
END_TEST

static volatile sig_atomic_t flag;

static int
raise_flag(void *payload)
{
	(void)payload;
	flag = 1;
	return 0;
}

/* Field `n` (3: the state, 22: the start time) of /proc/PID/stat. */
static unsigned long long
proc_field(pid_t pid, int n)
{
	char path[64], buf[1024], *s;
	unsigned long long v = 0;
	size_t got;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	if (!(s = strrchr(buf, ')')))
		return 0;
	for (i = 3, s += 2; i < n && (s = strchr(s, ' ')); i++)
		s++;
	if (!s)
		return 0;
	if (n == 3)
		return (unsigned char)*s;
	sscanf(s, "%llu", &v);
	return v;
}

/* Whether `pid` runs: a zombie does not. */
static int
running(pid_t pid)
{
	unsigned long long state = proc_field(pid, 3);

	return state && state != 'Z' && state != 'X';
}

/* The pid written to `path`, waiting up to 10 s for it. */
static pid_t
read_pid(const char *path)
{
	long pid = 0;
	int i;

	for (i = 0; i < 200 && pid <= 0; i++) {
		FILE *f = fopen(path, "r");

		if (f) {
			if (fscanf(f, "%ld", &pid) != 1)
				pid = 0;
			fclose(f);
		}
		if (pid <= 0)
			usleep(50000);
	}
	ck_assert_int_gt(pid, 0);
	return (pid_t)pid;
}

/*
 * An interrupt ends the command running at once (SIGTERM), or a second
 * later (SIGKILL) if it ignores SIGTERM, whatever the grace for
 * timeouts; none starts once it is set.  The checkouts are gone.
 */
START_TEST(test_interrupt)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	const char *hang[] = { "sleep 30", NULL };
	char stubborn_cmd[400], log_cmd[400], tmp[300], pidfile[300];
	const char *stubborn[] = { stubborn_cmd, NULL };
	const char *logs[] = { log_cmd, NULL };
	json_t *res = NULL;
	int64_t t0, ms;
	pid_t pid;

	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	snprintf(stubborn_cmd, sizeof(stubborn_cmd), "trap '' TERM; "
	    "echo $$ >'%s'; while :; do sleep 1; done", pidfile);
	snprintf(log_cmd, sizeof(log_cmd), "echo ran >'%s/log'", dir);
	sh("mkdir '%s'", tmp);
	o.tmpdir = tmp;
	o.tick = raise_flag;
	o.tick_ms = 200;
	o.interrupt = &flag;
	o.grace_ms = 20000;
	flag = 0;
	t0 = now_ms();
	ck_assert_int_eq(wf_checks_run(&res, repo, hang, &base, &head, &o),
	    WF_EINTR);
	ck_assert_ptr_null(res);
	ck_assert_int_lt(now_ms() - t0, 10000);	/* not the 30 s */
	flag = 0;
	t0 = now_ms();
	ck_assert_int_eq(wf_checks_run(&res, repo, stubborn, &base, &head, &o),
	    WF_EINTR);
	ms = now_ms() - t0;
	ck_assert_int_ge(ms, 1000);	/* SIGTERM first, then the second */
	ck_assert_int_lt(ms, 10000);	/* not the 20 s of grace_ms */
	pid = read_pid(pidfile);
	ck_assert(!running(pid));
	/* Raised before: nothing runs. */
	ck_assert_int_eq(wf_checks_run(&res, repo, logs, &base, &head, &o),
	    WF_EINTR);
	sh("test ! -e '%s/log'", dir);
	sh("test -z \"$(ls -A '%s')\"", tmp);
}
END_TEST

/* A process that left the command's group is killed with it too. */
START_TEST(test_escaped_process)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	char cmd[800], pidfile[300];
	const char *cmds[] = { cmd, NULL };
	json_t *res;
	pid_t pid;

	snprintf(pidfile, sizeof(pidfile), "%s/escaped", dir);
	snprintf(cmd, sizeof(cmd), "setsid sh -c 'echo $$ >\"$0\"; "
	    "exec sleep 30' '%s' & while ! test -s '%s'; do sleep 0.05; done; "
	    "test \"${#WF_CHECK_ID}\" = 32", pidfile, pidfile);
	ck_assert_int_eq(wf_checks_run(&res, repo, cmds, &base, &head, &o), 0);
	ck_assert(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	pid = read_pid(pidfile);
	ck_assert_int_eq((pid_t)proc_field(pid, 5), pid);	/* its own group */
	ck_assert(!running(pid));
}
END_TEST

/*
 * The owner killed with -9 mid-check: its checkout and the grandchild
 * of its check stay, until a cleanup removes and kills them.
 */
START_TEST(test_cleanup_after_kill)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	char cmd[400], tmp[300], pidfile[300];
	const char *cmds[] = { cmd, NULL };
	size_t n = 9, k = 9;
	pid_t owner, grandchild;

	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/grandchild", dir);
	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! >'%s'; wait", pidfile);
	sh("mkdir '%s'", tmp);
	o.tmpdir = tmp;
	if ((owner = fork()) == 0) {
		json_t *res;

		wf_checks_run(&res, repo, cmds, &base, &head, &o);
		_exit(0);
	}
	ck_assert_int_gt(owner, 0);
	grandchild = read_pid(pidfile);
	/* Not yet: the owner runs, and cleanup leaves it alone. */
	ck_assert_int_eq(wf_checks_cleanup(&n, &k, tmp), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(k, 0);
	ck_assert(running(grandchild));
	kill(owner, SIGKILL);
	ck_assert_int_eq(waitpid(owner, NULL, 0), owner);
	usleep(200000);
	ck_assert(running(grandchild));
	sh("test -n \"$(ls -A '%s')\"", tmp);
	ck_assert_int_eq(wf_checks_cleanup(&n, &k, tmp), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_ge(k, 1);
	ck_assert(!running(grandchild));
	sh("test -z \"$(ls -A '%s')\"", tmp);
	ck_assert_int_eq(wf_checks_cleanup(&n, &k, tmp), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(k, 0);
}
END_TEST

/* Write the record of a check directory tmp/name, as checks_dir.c does. */
static void
record(const char *tmp, const char *name, const char *host, long pgid,
    unsigned long long start)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s/tree", tmp, name);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s/lock", tmp, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "wf-check 1\nhost %s\npid %010ld\nid "
	    "0123456789abcdef0123456789abcdef\npgid %010ld %020llu\n", host,
	    99999L, pgid, start);
	ck_assert_int_eq(fclose(f), 0);
}

/* A process of its own session and group, waiting; its pid. */
static pid_t
spawn_leader(void)
{
	int p[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		setsid();
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ck_assert_int_gt(pid, 0);
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

/*
 * Only what is provably abandoned is removed, and only the recorded
 * group that is still the check's is killed: a process that has the
 * recorded group id, but not the recorded start time, is a stranger.
 */
START_TEST(test_cleanup_rules)
{
	char tmp[300], host[256], path[600];
	size_t n, k;
	pid_t stranger, leader;
	int fd;

	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	sh("mkdir '%s'", tmp);
	stranger = spawn_leader();
	leader = spawn_leader();
	ck_assert_uint_gt(proc_field(leader, 22), 0);
	/* Its owner lives: it holds the lock. */
	record(tmp, "wf-check.live01", host, 0, 0);
	snprintf(path, sizeof(path), "%s/wf-check.live01/lock", tmp);
	ck_assert_int_ge(fd = open(path, O_RDWR), 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	/* Abandoned, its group id now a stranger's. */
	record(tmp, "wf-check.reuse1", host, (long)stranger,
	    proc_field(stranger, 22) + 1);
	/* Abandoned, its group still running. */
	record(tmp, "wf-check.group1", host, (long)leader,
	    proc_field(leader, 22));
	/* Made on another host: its owner may run there. */
	record(tmp, "wf-check.other1", "elsewhere.invalid", 0, 0);
	/* Killed before its lock was made. */
	sh("mkdir '%s/wf-check.empty1'", tmp);
	/* Not a check directory of this wf: no record. */
	sh("mkdir '%s/wf-check.older1' && echo x >'%s/wf-check.older1/f' && "
	    "mkdir '%s/wf-check.older2' && : >'%s/wf-check.older2/lock' && "
	    "echo x >'%s/wf-check.older2/f' && mkdir '%s/wf-checks' '%s/x'",
	    tmp, tmp, tmp, tmp, tmp, tmp, tmp);
	ck_assert_int_eq(wf_checks_cleanup(&n, &k, tmp), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(k, 1);
	ck_assert(running(stranger));
	ck_assert_int_eq(waitpid(leader, NULL, 0), leader);
	sh("cd '%s' && ls -A | sort | tr '\\n' ' ' >'%s/left'", tmp, dir);
	sh("test \"$(cat '%s/left')\" = 'wf-check.live01 wf-check.older1 "
	    "wf-check.older2 wf-check.other1 wf-checks x '", dir);
	sh("test -s '%s/wf-check.live01/lock' && test -d "
	    "'%s/wf-check.live01/tree'", tmp, tmp);
	close(fd);
	kill(stranger, SIGKILL);
	ck_assert_int_eq(waitpid(stranger, NULL, 0), stranger);
}
END_TEST

Suite *
checks_suite(void)
{
	Suite *s = suite_create("checks");
	TCase *tc = tcase_create("run");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_configured);
	tcase_add_test(tc, test_runs_on_the_tree);
	tcase_add_test(tc, test_bare_repository);
	tcase_add_test(tc, test_timeout_kills_the_group);
	tcase_add_test(tc, test_output_tail);
	tcase_add_test(tc, test_cache);
	tcase_add_test(tc, test_tick_stops);
	tcase_add_test(tc, test_interrupt);
	tcase_add_test(tc, test_escaped_process);
	tcase_add_test(tc, test_cleanup_after_kill);
	tcase_add_test(tc, test_cleanup_rules);
	suite_add_tcase(s, tc);
	return s;
}
