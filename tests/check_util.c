#include <string.h>
#include <unistd.h>

#include "check_suites.h"

/*
 * A reader over `text` through a pipe, as stdin would be.  The text must
 * fit in a pipe buffer (64 KiB).  Free with test_reader_free().
 */
struct wf_json_reader *
test_reader(const char *text)
{
	struct wf_json_reader *r;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], text, strlen(text)),
	    (ssize_t)strlen(text));
	close(fds[1]);
	ck_assert_int_eq(wf_json_reader_fdopen(&r, fds[0], "<stdin>"), 0);
	ck_assert_int_eq(wf_json_reader_fd(r), fds[0]);
	return r;
}

void
test_reader_free(struct wf_json_reader *r)
{
	if (r)
		close(wf_json_reader_fd(r));
	wf_json_reader_free(r);
}

void
test_doc(struct wf_json_doc *doc, struct wf_json_reader **r, const char *text)
{
	*r = test_reader(text);
	ck_assert_int_eq(wf_json_reader_next(doc, *r), 1);
}
