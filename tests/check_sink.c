#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "outbox.h"
#include "sink.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/wf-check-sink-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static char *
in_dir(const char *name)
{
	static char buf[4][256];
	static int n;
	char *b = buf[n++ % 4];

	snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
	return b;
}

/* The whole file, or "" when it does not exist; the caller frees it. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s = calloc(1, 1 << 16);
	size_t n = 0;

	ck_assert_ptr_nonnull(s);
	if (f) {
		n = fread(s, 1, (1 << 16) - 1, f);
		fclose(f);
	}
	s[n] = '\0';
	return s;
}

/* Deliver into a string, refusing after `allow` lines. */
struct collect {
	char buf[1024];
	int allow;
};

static int
collect(const char *line, size_t len, void *payload)
{
	struct collect *c = payload;

	if (c->allow-- <= 0)
		return wf_error_set(WF_EOS, "refused");
	strncat(c->buf, line, len);
	return 0;
}

START_TEST(test_outbox_order)
{
	struct wf_outbox *ob = NULL;
	struct collect c;
	char **sinks;
	size_t n, pending;

	ck_assert_int_eq(wf_outbox_open(&ob, in_dir("sub/ob.db"), 0, 0),
	    WF_ENOTFOUND);
	ck_assert_ptr_null(ob);
	ck_assert_int_eq(wf_outbox_open(&ob, in_dir("sub/ob.db"), 1, 0), 0);
	ck_assert_str_eq(wf_outbox_path(ob), in_dir("sub/ob.db"));
	ck_assert_int_eq(wf_outbox_add(ob, "file:/b", "1", "b1\n", 3, "x"), 0);
	ck_assert_int_eq(wf_outbox_add(ob, "file:/a", "2", "a1\n", 3, NULL), 0);
	ck_assert_int_eq(wf_outbox_add(ob, "file:/b", "3", "b2\n", 3, NULL), 0);
	ck_assert_int_eq(wf_outbox_add(ob, "file:/b", "4", "b3\n", 3, NULL), 0);
	ck_assert_int_eq(wf_outbox_pending(&pending, ob, NULL), 0);
	ck_assert_uint_eq(pending, 4);
	ck_assert_int_eq(wf_outbox_sinks(&sinks, &n, ob), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(sinks[0], "file:/b");
	ck_assert_str_eq(sinks[1], "file:/a");
	ck_assert_ptr_null(sinks[2]);
	wf_outbox_strings_free(sinks);

	/* A refusal stops the flush and keeps the rest, in order. */
	memset(&c, 0, sizeof(c));
	c.allow = 1;
	ck_assert_int_eq(wf_outbox_flush(&n, ob, "file:/b", collect, &c),
	    WF_EOS);
	ck_assert_str_eq(wf_error_last(), "refused");
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(c.buf, "b1\n");
	ck_assert_int_eq(wf_outbox_pending(&pending, ob, "file:/b"), 0);
	ck_assert_uint_eq(pending, 2);

	c.allow = 10;
	ck_assert_int_eq(wf_outbox_flush(&n, ob, "file:/b", collect, &c), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(c.buf, "b1\nb2\nb3\n");
	ck_assert_int_eq(wf_outbox_flush(&n, ob, "file:/b", collect, &c), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(wf_outbox_pending(&pending, ob, NULL), 0);
	ck_assert_uint_eq(pending, 1);
	wf_outbox_free(ob);

	/* Kept across opens. */
	ck_assert_int_eq(wf_outbox_open(&ob, in_dir("sub/ob.db"), 0, 1), 0);
	ck_assert_int_eq(wf_outbox_pending(&pending, ob, "file:/a"), 0);
	ck_assert_uint_eq(pending, 1);
	wf_outbox_free(ob);
	wf_outbox_free(NULL);
}
END_TEST

START_TEST(test_outbox_not_a_database)
{
	struct wf_outbox *ob = NULL;
	FILE *f = fopen(in_dir("junk"), "w");

	ck_assert_ptr_nonnull(f);
	fputs("this is not sqlite, not at all, and long enough to tell\n", f);
	fclose(f);
	ck_assert_int_eq(wf_outbox_open(&ob, in_dir("junk"), 1, 0), WF_EOS);
	ck_assert_ptr_null(ob);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "not an outbox"));
}
END_TEST

START_TEST(test_file_sink)
{
	struct wf_sink_opts so = WF_SINK_OPTS_INIT;
	struct wf_sink *s;
	char *text, key[300];
	int spooled;

	so.fsync = 1;
	ck_assert_int_eq(wf_sink_open_file(&s, in_dir("ev.jsonl"), &so), 0);
	snprintf(key, sizeof(key), "file:%s", in_dir("ev.jsonl"));
	ck_assert_str_eq(wf_sink_key(s), key);
	/* Nothing is made before the first event. */
	ck_assert_int_ne(access(in_dir("ev.jsonl"), F_OK), 0);
	ck_assert_int_eq(wf_sink_write(&spooled, s, "1", "{}\n", 3), 0);
	ck_assert_int_eq(spooled, 0);
	ck_assert_int_eq(wf_sink_write(NULL, s, "2", "[]\n", 3), 0);
	ck_assert_ptr_null(wf_sink_failure(s));
	wf_sink_free(s);
	text = slurp(in_dir("ev.jsonl"));
	ck_assert_str_eq(text, "{}\n[]\n");
	free(text);

	/* No outbox: a failure is the caller's. */
	ck_assert_int_eq(wf_sink_open_file(&s, in_dir("no/ev.jsonl"), NULL),
	    0);
	ck_assert_int_eq(wf_sink_write(&spooled, s, "1", "{}\n", 3), WF_EOS);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "No such file"));
	wf_sink_free(s);
	wf_sink_free(NULL);
}
END_TEST

START_TEST(test_spool_and_flush)
{
	struct wf_sink_opts so = WF_SINK_OPTS_INIT;
	struct wf_sink *s;
	size_t delivered, pending;
	char *text, outbox[256];
	int spooled;

	snprintf(outbox, sizeof(outbox), "%s", in_dir("ob.db"));
	so.outbox = outbox;
	ck_assert_int_eq(wf_sink_open_file(&s, in_dir("later/ev"), &so), 0);
	/* Nothing spooled yet: nothing to flush, no outbox made. */
	ck_assert_int_eq(wf_sink_flush(&delivered, &pending, s), 0);
	ck_assert_int_ne(access(in_dir("ob.db"), F_OK), 0);
	ck_assert_int_eq(wf_sink_write(&spooled, s, "1", "a\n", 2), 0);
	ck_assert_int_eq(spooled, 1);
	ck_assert_ptr_nonnull(strstr(wf_sink_failure(s), "cannot open"));
	/* Once down, later events follow the first into the outbox. */
	ck_assert_int_eq(mkdir(in_dir("later"), 0777), 0);
	ck_assert_int_eq(wf_sink_write(&spooled, s, "2", "b\n", 2), 0);
	ck_assert_int_eq(spooled, 1);
	text = slurp(in_dir("later/ev"));
	ck_assert_str_eq(text, "");
	free(text);
	wf_sink_free(s);

	/* A new sink delivers the backlog before its own event. */
	ck_assert_int_eq(wf_sink_open_file(&s, in_dir("later/ev"), &so), 0);
	ck_assert_int_eq(wf_sink_write(&spooled, s, "3", "c\n", 2), 0);
	ck_assert_int_eq(spooled, 0);
	text = slurp(in_dir("later/ev"));
	ck_assert_str_eq(text, "a\nb\nc\n");
	free(text);
	ck_assert_int_eq(wf_sink_flush(&delivered, &pending, s), 0);
	ck_assert_uint_eq(delivered, 0);
	ck_assert_uint_eq(pending, 0);
	wf_sink_free(s);
}
END_TEST

START_TEST(test_flush_down)
{
	struct wf_sink_opts so = WF_SINK_OPTS_INIT;
	struct wf_sink *s;
	size_t delivered, pending;
	int spooled;

	so.outbox = in_dir("ob.db");
	ck_assert_int_eq(wf_sink_open_socket(&s, in_dir("none.sock"), &so), 0);
	ck_assert_int_eq(wf_sink_write(&spooled, s, "1", "a\n", 2), 0);
	ck_assert_int_eq(spooled, 1);
	ck_assert_int_eq(wf_sink_write(&spooled, s, "2", "b\n", 2), 0);
	ck_assert_int_eq(wf_sink_flush(&delivered, &pending, s), WF_EBUSY);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "cannot connect"));
	ck_assert_uint_eq(delivered, 0);
	ck_assert_uint_eq(pending, 2);
	wf_sink_free(s);
}
END_TEST

START_TEST(test_socket_sink)
{
	struct sockaddr_un sun;
	struct wf_sink *s;
	char buf[64];
	int fd, c;
	ssize_t n;

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", in_dir("s.sock"));
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(wf_sink_open_socket(&s, in_dir("s.sock"), NULL), 0);
	ck_assert_int_eq(wf_sink_write(NULL, s, "1", "{\"a\":1}\n", 8), 0);
	c = accept(fd, NULL, NULL);
	ck_assert_int_ge(c, 0);
	n = read(c, buf, sizeof(buf) - 1);
	ck_assert_int_eq(n, 8);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "{\"a\":1}\n");
	close(c);
	close(fd);
	wf_sink_free(s);
}
END_TEST

START_TEST(test_keys)
{
	struct wf_sink *s;
	char long_path[200];

	ck_assert_int_eq(wf_sink_open_key(&s, "socket:/run/x.sock", NULL), 0);
	ck_assert_str_eq(wf_sink_key(s), "socket:/run/x.sock");
	wf_sink_free(s);
	ck_assert_int_eq(wf_sink_open_key(&s, "file:/var/log/e.jsonl", NULL),
	    0);
	ck_assert_str_eq(wf_sink_key(s), "file:/var/log/e.jsonl");
	wf_sink_free(s);
	ck_assert_int_eq(wf_sink_open_key(&s, "file:relative", NULL),
	    WF_EINPUT);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(wf_sink_open_fd(&s, 1, "stdout"), 0);
	ck_assert_str_eq(wf_sink_key(s), "fd:1");
	wf_sink_free(s);
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	ck_assert_int_eq(wf_sink_open_socket(&s, long_path, NULL), WF_EINPUT);
	ck_assert_ptr_null(s);
}
END_TEST

Suite *
sink_suite(void)
{
	Suite *s = suite_create("sink");
	TCase *tc;

	tc = tcase_create("outbox");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_outbox_order);
	tcase_add_test(tc, test_outbox_not_a_database);
	suite_add_tcase(s, tc);

	tc = tcase_create("sinks");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_file_sink);
	tcase_add_test(tc, test_spool_and_flush);
	tcase_add_test(tc, test_flush_down);
	tcase_add_test(tc, test_socket_sink);
	tcase_add_test(tc, test_keys);
	suite_add_tcase(s, tc);
	return s;
}
