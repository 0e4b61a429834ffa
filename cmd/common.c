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
#include "handover.h"
#include "landing.h"
#include "loose_ref.h"
#include "pktline.h"
#include "push.h"

static const char *progname = "wf";
static int pretty;

void
wf_cmd_init_without_git(const char *name)
{
	progname = name;
}

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
	case WF_EINTR:
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

void
wf_cmd_say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The git-receive-pack a receive hook runs for; 0 when unknown. */
static pid_t
receive_pid(void)
{
	const char *env = getenv("WF_RECEIVE_PID");
	char *end;
	long pid;

	if (!env || !*env)
		return getppid();
	errno = 0;
	pid = strtol(env, &end, 10);
	if (errno || *end || pid <= 1 || pid > INT_MAX)
		return 0;
	return (pid_t)pid;
}

int
wf_cmd_hook_key(char **out)
{
	pid_t pid = receive_pid();

	*out = NULL;
	if (pid == 0)
		return wf_error_set(WF_EOS, "bad WF_RECEIVE_PID '%.40s'",
		    getenv("WF_RECEIVE_PID"));
	return wf_handover_key(out, pid);
}

int
wf_cmd_hook_start_runner(const char *wf_hooks, const char *gitdir,
    int quiet)
{
	size_t n = strlen(gitdir);
	char *log, *argv[5];
	int error;

	while (n > 1 && gitdir[n - 1] == '/')
		n--;
	if (!(log = malloc(n + sizeof("/wf/hooks.log"))))
		return wf_error_oom();
	sprintf(log, "%.*s/wf/hooks.log", (int)n, gitdir);
	argv[0] = (char *)wf_hooks;
	argv[1] = (char *)"land";
	argv[2] = (char *)"-C";
	argv[3] = (char *)gitdir;
	argv[4] = NULL;
	/* It starts once the push is over: the pusher waits for that. */
	error = wf_landing_spawn(NULL, argv, log, receive_pid());
	if (error == 0 && !quiet)
		wf_cmd_say("landing in the background; its log: %s", log);
	free(log);
	return error;
}

/* Run a `git update-ref --stdin` script in gitdir; WF_EOS. */
static int
update_refs(const char *gitdir, const char *script)
{
	const char *args[] = { "update-ref", "--stdin", NULL };
	int status;

	return wf_git_run(NULL, &status, gitdir, args, script);
}

/*
 * Keep the commits of the items at[0..nb) queued with a ref each, as
 * loose refs written here (lib/loose_ref.h): 0, or the first failure,
 * with the refs written before it removed again.
 */
static int
keep_loose(const char *gitdir, const struct wf_cmd_proc_item *items,
    const size_t *at, size_t nb)
{
	size_t k;
	int error = 0;

	for (k = 0; k < nb && error == 0; k++)
		if (items[at[k]].kept[0])
			error = wf_loose_ref_write(gitdir, items[at[k]].kept,
			    items[at[k]].new_hex);
	if (error == 0)
		return 0;
	while (k-- > 0)
		if (items[at[k]].kept[0])
			wf_loose_ref_remove(gitdir, items[at[k]].kept,
			    items[at[k]].new_hex);
	return error;
}

/* Append a line to the script *s (of *len bytes). */
static int
script_add(char **s, size_t *len, const char *verb, const char *ref,
    const char *hex)
{
	size_t n = strlen(verb) + strlen(ref) + (hex ? strlen(hex) : 0) + 3;
	char *p = realloc(*s, *len + n + 1);

	if (!p)
		return wf_error_oom();
	*s = p;
	/* A hex id may be the start of an update line: 40 digits. */
	*len += (size_t)sprintf(p + *len, "%s %s%s%.40s\n", verb, ref,
	    hex ? " " : "", hex ? hex : "");
	return 0;
}

/* Tell the pusher about the earlier versions `c` superseded. */
static void
say_superseded(const struct wf_change *c, const json_t *old)
{
	const json_t *e;
	size_t i;

	json_array_foreach(old, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *st = json_string_value(json_object_get(e,
		    "state"));

		if (st && strcmp(st, "leased") == 0)
			wf_cmd_say("'%s', pushed to the same ref before, is "
			    "being landed; '%s' is a change of its own", id,
			    c->id);
		else
			wf_cmd_say("'%s' replaces '%s', which is dropped from "
			    "the queue", c->id, id);
	}
}

static void
fail_all(struct wf_cmd_proc_item *items, size_t n, const char *why)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!items[i].change || items[i].error)
			continue;
		items[i].error = strdup(why);
		items[i].queue_id = 0;
	}
}

int
wf_cmd_hook_proc_queue(struct wf_queue *q, const char *gitdir,
    struct wf_cmd_proc_item *items, size_t n, int loose)
{
	struct wf_queue_batch *b = NULL;
	struct wf_queue_added a;
	json_t *old = NULL, *gone = NULL;
	char *script = NULL, *drop = NULL;
	size_t i, k, len = 0, dlen = 0, nb = 0;
	size_t *at = NULL;	/* item of each change added to the batch */
	int error, kept_loose = 0;

	if (!(at = calloc(n + 1, sizeof(*at))) || !(gone = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = wf_queue_batch_begin(&b, q, 1)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct wf_change *c = items[i].change;

		if (!c || items[i].error)
			continue;
		/* A topic's change replaces its earlier versions. */
		if (strchr(c->id, ':')) {
			if ((error = wf_queue_batch_supersede(&old, b,
			    c->target, items[i].ref, c->id)) < 0)
				goto out;
			say_superseded(c, old);
			json_array_extend(gone, old);
			json_decref(old);
			old = NULL;
		}
		error = wf_queue_batch_add(b, c);
		if (error < 0 && error != WF_ECONFLICT)
			goto out;
		wf_error_clear();
		at[nb++] = i;
	}
	for (k = 0; k < nb; k++) {
		struct wf_cmd_proc_item *it = &items[at[k]];

		wf_queue_batch_get(&a, b, k);
		if (a.error) {
			it->error = strdup(a.error);
			continue;
		}
		it->queue_id = a.queue_id;
		snprintf(it->kept, sizeof(it->kept), WF_PUSH_KEPT_PREFIX "%lld",
		    (long long)a.queue_id);
		if (a.queue_id > 0 && (error = script_add(&script, &len,
		    "update", it->kept, it->new_hex)) < 0)
			goto out;
		if (a.queue_id == 0)
			it->kept[0] = '\0';	/* archived: landed long ago */
	}
	/*
	 * The commits kept before the queue holds them: ok means both.
	 * Loose refs when the pre-receive found them safe to write here,
	 * else (or when that fails) through git.
	 */
	if (script && loose && keep_loose(gitdir, items, at, nb) == 0) {
		kept_loose = 1;
	} else if (script) {
		wf_error_clear();
		if ((error = update_refs(gitdir, script)) < 0)
			goto out;
	}
	if ((error = wf_queue_batch_commit(b)) < 0) {
		char *undo = NULL;
		size_t ulen = 0;

		for (k = 0; kept_loose && k < nb; k++)
			if (items[at[k]].kept[0])
				wf_loose_ref_remove(gitdir, items[at[k]].kept,
				    items[at[k]].new_hex);
		for (k = 0; !kept_loose && k < nb; k++)
			if (items[at[k]].kept[0] && script_add(&undo, &ulen,
			    "delete", items[at[k]].kept, NULL) < 0)
				break;
		if (undo)
			update_refs(gitdir, undo);
		free(undo);
		goto out;
	}
	for (k = 0; k < nb; k++) {
		struct wf_cmd_proc_item *it = &items[at[k]];

		wf_queue_batch_get(&a, b, k);
		if (a.error) {
			wf_cmd_error("'%s' was not queued: %s", a.id, a.error);
			continue;
		}
		if (a.existing)
			wf_cmd_say("'%s' was queued before; it is %s", a.id,
			    a.state);
		else if (a.position > 0)
			wf_cmd_say("queued '%s' for %s at position %lld (queue "
			    "id %lld)", a.id, it->change->target,
			    (long long)a.position, (long long)a.queue_id);
		else
			wf_cmd_say("queued '%s' for %s (queue id %lld): it "
			    "waits for its dependencies", a.id,
			    it->change->target, (long long)a.queue_id);
		if (it->kept[0])
			wf_cmd_say("its commits are kept at %s; follow it with: "
			    "wf-queue show %s", it->kept, a.id);
	}
	/* The refs of the versions dropped: nothing needs them now. */
	json_array_foreach(gone, i, old) {
		char ref[64];

		if (strcmp(json_string_value(json_object_get(old, "state")),
		    "leased") == 0)
			continue;
		snprintf(ref, sizeof(ref), WF_PUSH_KEPT_PREFIX "%lld", (long long)
		    json_integer_value(json_object_get(old, "queue_id")));
		if ((error = script_add(&drop, &dlen, "delete", ref,
		    NULL)) < 0)
			break;
	}
	old = NULL;
	if (drop && update_refs(gitdir, drop) < 0)
		wf_cmd_warn("%s", wf_error_last());
	error = 0;
out:
	if (error < 0)
		fail_all(items, n, wf_error_last());
	wf_queue_batch_free(b);
	json_decref(old);
	json_decref(gone);
	free(script);
	free(drop);
	free(at);
	return error;
}

int
wf_cmd_hook_proc_answer(int fd, const struct wf_cmd_proc_item *items,
    size_t n)
{
	size_t i;
	int error;

	for (i = 0; i < n; i++) {
		const struct wf_cmd_proc_item *it = &items[i];
		const char *why = it->error ? it->error : it->why;

		if (!why && !it->change)
			why = "not queued";
		if ((error = wf_push_proc_answer(fd, it->ref, why ? NULL :
		    it->kept[0] ? it->kept : NULL, why)) < 0)
			return error;
	}
	return wf_pktline_flush(fd);
}

void
wf_cmd_proc_items_release(struct wf_cmd_proc_item *items, size_t n)
{
	size_t i;

	for (i = 0; items && i < n; i++)
		free(items[i].error);
}
