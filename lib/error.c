#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <git2.h>

#include "error.h"

static _Thread_local char last[4096];

static void
vset(const char *fmt, va_list ap)
{
	vsnprintf(last, sizeof(last), fmt, ap);
}

int
wf_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	return code;
}

int
wf_error_set_errno(int code, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	size_t n;

	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	n = strlen(last);
	snprintf(last + n, sizeof(last) - n, ": %s", strerror(saved));
	return code;
}

int
wf_error_set_git(int code, const char *fmt, ...)
{
	const git_error *e = git_error_last();
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	if (e && e->message && *e->message) {
		n = strlen(last);
		snprintf(last + n, sizeof(last) - n, ": %s", e->message);
	}
	return code;
}

int
wf_error_prefix(int code, const char *fmt, ...)
{
	char prefix[1024], old[sizeof(last)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last, sizeof(old));
	{
		size_t n = strlen(prefix);

		if (n > sizeof(last) - 3)
			n = sizeof(last) - 3;
		memcpy(last, prefix, n);
		last[n++] = ':';
		last[n++] = ' ';
		/* Copy what fits of the old message. */
		{
			size_t m = strlen(old);

			if (m > sizeof(last) - n - 1)
				m = sizeof(last) - n - 1;
			memcpy(last + n, old, m);
			last[n + m] = '\0';
		}
	}
	return code;
}

const char *
wf_error_last(void)
{
	return last;
}

void
wf_error_clear(void)
{
	last[0] = '\0';
}

int
wf_error_oom(void)
{
	return wf_error_set(WF_ENOMEM, "out of memory");
}
