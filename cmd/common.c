#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "error.h"
#include "git.h"

static const char *progname = "wf";
static int pretty;

void
wf_cmd_init(const char *name)
{
	progname = name;
	if (wf_git_init() < 0) {
		wf_cmd_error("%s", wf_error_last());
		exit(WF_EXIT_OS);
	}
}

const char *
wf_cmd_name(void)
{
	return progname;
}

static void
vreport(const char *kind, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: %s: ", progname, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
wf_cmd_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("error", fmt, ap);
	va_end(ap);
}

void
wf_cmd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning", fmt, ap);
	va_end(ap);
}

int
wf_cmd_exit_code(int error)
{
	switch (error) {
	case WF_OK:
		return WF_EXIT_OK;
	case WF_EINPUT:
	case WF_ENOTFOUND:
	case WF_ECONFLICT:
		return WF_EXIT_INPUT;
	case WF_EBUSY:
		return WF_EXIT_TEMP;
	default:
		return WF_EXIT_OS;
	}
}

int
wf_cmd_fail(int error)
{
	const char *msg = wf_error_last();

	wf_cmd_error("%s", *msg ? msg : "unknown error");
	return wf_cmd_exit_code(error);
}

int
wf_cmd_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("error", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", progname);
	return WF_EXIT_USAGE;
}

int
wf_cmd_common_option(int opt, const char *usage)
{
	switch (opt) {
	case WF_OPT_HELP:
		fputs(usage, stdout);
		return 1;
	case WF_OPT_VERSION:
		printf("%s (wf) %s\n", progname, WF_VERSION);
		return 1;
	case WF_OPT_PRETTY:
		pretty = 1;
		return 0;
	}
	return -1;
}

int
wf_cmd_other_option(int *code, int opt, char **argv, const char *usage)
{
	const char *arg = argv[optind - 1];

	switch (opt) {
	case ':':
		*code = wf_cmd_usage_error("option '%s' needs a value", arg);
		return 1;
	case '?':
		if (optopt >= WF_OPT_HELP)
			*code = wf_cmd_usage_error("option '%.*s' takes no "
			    "value", (int)strcspn(arg, "="), arg);
		else if (optopt)
			*code = wf_cmd_usage_error("unknown option '-%c'",
			    optopt);
		else
			*code = wf_cmd_usage_error("unknown option '%s'", arg);
		return 1;
	}
	switch (wf_cmd_common_option(opt, usage)) {
	case 1:
		*code = WF_EXIT_OK;
		return 1;
	case 0:
		return 0;
	}
	*code = wf_cmd_usage_error("unknown option '%s'", arg);
	return 1;
}

int
wf_cmd_parse_size(size_t *out, const char *arg, const char *name)
{
	unsigned long long v;
	char *end;

	if (*arg < '0' || *arg > '9')
		goto bad;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || *end || v > (unsigned long long)SIZE_MAX)
		goto bad;
	*out = (size_t)v;
	return 0;
bad:
	return wf_cmd_usage_error("invalid number '%s' for %s", arg, name);
}

int
wf_cmd_write_json(const json_t *v)
{
	char *s = NULL;
	size_t len;
	int error;

	if (pretty) {
		if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) < 0 ||
		    putchar('\n') == EOF)
			return wf_error_set_errno(WF_EOS,
			    "cannot write to stdout");
		return 0;
	}
	if ((error = wf_json_dump(&s, &len, v, 0)) < 0)
		return error;
	s[len] = '\n';
	if (fwrite(s, 1, len + 1, stdout) != len + 1)
		error = wf_error_set_errno(WF_EOS, "cannot write to stdout");
	free(s);
	return error;
}

int
wf_cmd_pretty(void)
{
	return pretty;
}

int
wf_cmd_write_buf(const char *s, size_t len)
{
	if (fwrite(s, 1, len, stdout) != len)
		return wf_error_set_errno(WF_EOS, "cannot write to stdout");
	return 0;
}

int
wf_cmd_write_text(const char *s)
{
	if (fputs(s, stdout) == EOF)
		return wf_error_set_errno(WF_EOS, "cannot write to stdout");
	return 0;
}

static int
each_in(const char *path, int (*fn)(const struct wf_json_doc *, void *),
    void *ctx)
{
	struct wf_json_reader *r = NULL;
	struct wf_json_doc doc;
	int error;

	if ((error = wf_json_reader_open(&r, path)) < 0)
		return error;
	while ((error = wf_json_reader_next(&doc, r)) > 0) {
		error = fn(&doc, ctx);
		json_decref(doc.value);
		if (error < 0)
			break;
	}
	wf_json_reader_free(r);
	return error;
}

int
wf_cmd_each_value(int argc, char **argv,
    int (*fn)(const struct wf_json_doc *doc, void *ctx), void *ctx)
{
	int i, error;

	if (argc == 0)
		return each_in("-", fn, ctx);
	for (i = 0; i < argc; i++)
		if ((error = each_in(argv[i], fn, ctx)) < 0)
			return error;
	return 0;
}

int
wf_cmd_finish(int code)
{
	static int finished;
	int bad;

	if (finished)
		return code;
	finished = 1;
	bad = ferror(stdout);
	if (fclose(stdout) != 0)
		bad = 1;
	if (bad) {
		/* errno may be stale after ferror; say what we know. */
		fprintf(stderr, "%s: error: cannot write to stdout%s%s\n",
		    progname, errno ? ": " : "", errno ? strerror(errno) : "");
		return code == WF_EXIT_OK || code == WF_EXIT_NO ?
		    WF_EXIT_OS : code;
	}
	return code;
}
