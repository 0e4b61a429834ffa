/*
 * wf-enqueue: validate change requests and store them in the change
 * queue, all or nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "change.h"
#include "common.h"
#include "error.h"
#include "git.h"
#include "hash.h"
#include "mail.h"
#include "map.h"
#include "queue.h"
#include "str.h"

static const char usage[] =
"usage: wf-enqueue [--db PATH] [-C DIR] [--keep-going] [--dry-run]\n"
"                  [--pretty] [FILE...]\n"
"       wf-enqueue --id ID --target BRANCH [request options]\n"
"                  (--patch FILE | --tar FILE [--prefix DIR] |\n"
"                   --commits A..B)\n"
"       wf-enqueue --mbox FILE --target BRANCH [--id ID] [--priority N]\n"
"\n"
"Validate change requests (JSON, one per line) read from the FILEs or\n"
"standard input, or one request built from the options, and store them\n"
"in the change queue in one transaction.  An ExecutionSummary (what\n"
"wf-run writes) stands for the requests of its \"changes\".  Write one\n"
"line of JSON per request: {\"id\", \"queue_id\", \"state\", \"position\"}.\n"
"\n"
"  --db PATH            the queue database (default: $WF_DB, or\n"
"                       wf/queue.db in the repository's git directory)\n"
"  -C, --repo DIR       find the repository from DIR\n"
"  -k, --keep-going     store the valid requests and report each bad one\n"
"  -n, --dry-run        validate and report, store nothing\n"
"  --max-attempts N     leases before an entry is dead (default 5)\n"
"  --pretty             indent the output\n"
"  --help               show this help and exit\n"
"  --version            show the version and exit\n"
"\n"
"Request options:\n"
"  --patch FILE         a diff (git diff, git format-patch or diff -u);\n"
"                       '-' for standard input\n"
"  --tar FILE           files to add, replace or delete (.wh.NAME) as a\n"
"                       tar archive, compressed or not; '-' for stdin\n"
"  --prefix DIR         with --tar: place the files under DIR\n"
"  --commits A..B       commits already in the repository: what B\n"
"                       reaches and A does not, as in git\n"
"  --mbox FILE          patch mails (git format-patch --stdout), one\n"
"                       request each, as git am reads them; ids ID/1,\n"
"                       ID/2, ... or, without --id, mail/<hash>\n"
"  --id ID              the request id (required)\n"
"  --target BRANCH      the branch to land on (required)\n"
"  --base OID           the commit the patch or files apply to\n"
"  --message TEXT       the commit message\n"
"  --author 'NAME <EMAIL>'\n"
"  --priority N         higher leases first (default 0)\n"
"  --depends-on ID      land only after ID (repeatable)\n";

enum {
	OPT_DB = WF_OPT_TOOL,
	OPT_MAX_ATTEMPTS,
	OPT_PATCH,
	OPT_TAR,
	OPT_PREFIX,
	OPT_COMMITS,
	OPT_MBOX,
	OPT_ID,
	OPT_TARGET,
	OPT_BASE,
	OPT_MESSAGE,
	OPT_AUTHOR,
	OPT_PRIORITY,
	OPT_DEPENDS_ON
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "db", required_argument, NULL, OPT_DB },
	{ "repo", required_argument, NULL, 'C' },
	{ "keep-going", no_argument, NULL, 'k' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
	{ "patch", required_argument, NULL, OPT_PATCH },
	{ "tar", required_argument, NULL, OPT_TAR },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "commits", required_argument, NULL, OPT_COMMITS },
	{ "mbox", required_argument, NULL, OPT_MBOX },
	{ "id", required_argument, NULL, OPT_ID },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "base", required_argument, NULL, OPT_BASE },
	{ "message", required_argument, NULL, OPT_MESSAGE },
	{ "author", required_argument, NULL, OPT_AUTHOR },
	{ "priority", required_argument, NULL, OPT_PRIORITY },
	{ "depends-on", required_argument, NULL, OPT_DEPENDS_ON },
	{ NULL, 0, NULL, 0 }
};

/*
 * The requests read so far, with where each came from.  Reading and
 * validating run on one thread while another stores what is read, in
 * one transaction; `lock` guards what they share.
 */
struct run {
	git_repository *repo;
	struct wf_change_opts opts;	/* the reader's */
	int keep_going;
	int bad;		/* some request was refused */
	struct wf_map seen;	/* id -> index in hashes */
	git_oid *hashes;	/* of the requests read, in order */
	size_t nseen;
	pthread_mutex_t lock;
	pthread_cond_t more;	/* the reader added some or is done */
	pthread_cond_t room;	/* the storer took some */
	size_t ahead;		/* the most the reader may be ahead; 0 any */
	struct wf_change **changes;
	char **where;
	size_t n, cap;
	size_t taken;		/* changes[0..taken) are the storer's */
	int done;		/* the reader has finished ... */
	int error;		/* ... with this result */
	char errmsg[4096];
	int stop;		/* the storer gave up: stop reading */
	/*
	 * Changes stored, for the reader to free: it has time to spare,
	 * and they were made on its thread.
	 */
	struct wf_change **spent;
	size_t nspent, capspent;
	int refused;		/* the storer refused some (keep_going) */
};

static int
add_change(struct run *run, struct wf_change *c, const char *where)
{
	char *w = strdup(where);
	struct wf_change **spent = NULL;
	size_t nspent = 0;
	int error = 0;

	if (!w)
		return wf_error_oom();
	pthread_mutex_lock(&run->lock);
	while (run->ahead && run->n - run->taken >= run->ahead &&
	    !__atomic_load_n(&run->stop, __ATOMIC_RELAXED))
		pthread_cond_wait(&run->room, &run->lock);
	if (run->n == run->cap) {
		size_t cap = run->cap ? run->cap * 2 : 64;
		struct wf_change **cs = realloc(run->changes,
		    cap * sizeof(*cs));
		char **ws;

		if (!cs) {
			error = wf_error_oom();
			goto out;
		}
		run->changes = cs;
		if (!(ws = realloc(run->where, cap * sizeof(*ws)))) {
			error = wf_error_oom();
			goto out;
		}
		run->where = ws;
		run->cap = cap;
	}
	run->where[run->n] = w;
	run->changes[run->n++] = c;
	w = NULL;
	pthread_cond_signal(&run->more);
	spent = run->spent;
	nspent = run->nspent;
	run->spent = NULL;
	run->nspent = run->capspent = 0;
out:
	pthread_mutex_unlock(&run->lock);
	free(w);
	while (nspent > 0)
		wf_change_free(spent[--nspent]);
	free(spent);
	return error;
}

/* Refuse a request: fatal, or reported and skipped with --keep-going. */
static int
refuse(struct run *run, int error)
{
	if (!run->keep_going || error == WF_ENOMEM || error == WF_EOS ||
	    error == WF_EBUSY)
		return error;
	wf_cmd_fail(error);
	run->bad = 1;
	return 0;
}

static int read_request(const struct wf_json_doc *doc, struct run *run);

/* "<name>:<line>:<col>" of doc into out (snprintf costs, per request). */
static void
place(char *out, size_t size, const struct wf_json_doc *doc)
{
	char num[2][24], *p[2];
	unsigned long v[2] = { doc->line, doc->col };
	size_t i, len = strlen(doc->name);

	for (i = 0; i < 2; i++) {
		p[i] = num[i] + sizeof(num[i]);
		*--p[i] = '\0';
		do
			*--p[i] = (char)('0' + v[i] % 10);
		while ((v[i] /= 10) > 0);
	}
	if (len + 2 * 22 + 3 > size) {
		snprintf(out, size, "%s:%s:%s", doc->name, p[0], p[1]);
		return;
	}
	memcpy(out, doc->name, len);
	out[len++] = ':';
	len += (size_t)(stpcpy(out + len, p[0]) - (out + len));
	out[len++] = ':';
	strcpy(out + len, p[1]);
}

/*
 * A value is a change request, or an ExecutionSummary (what wf-run
 * writes) whose "changes" are requests.
 */
static int
read_one(const struct wf_json_doc *doc, void *ctx)
{
	struct run *run = ctx;
	json_t *changes = json_object_get(doc->value, "changes"), *c;
	struct wf_json_doc sub;
	size_t i;
	int error;

	if (!json_is_array(changes) ||
	    !json_object_get(doc->value, "stage_runs"))
		return read_request(doc, run);
	json_array_foreach(changes, i, c) {
		/* Places are the summary's: its text does not name them. */
		sub = *doc;
		sub.value = c;
		sub.text = NULL;
		sub.len = 0;
		if ((error = read_request(&sub, run)) < 0)
			return error;
	}
	return 0;
}

static int
read_request(const struct wf_json_doc *doc, struct run *run)
{
	struct wf_change *c = NULL;
	char where[1024], *id;
	size_t k;
	int error = 0;

	if (__atomic_load_n(&run->stop, __ATOMIC_RELAXED))
		return wf_error_set(WF_ERROR, "stopped");
	place(where, sizeof(where), doc);
	if ((error = wf_change_parse(&c, doc, run->repo, &run->opts)) < 0)
		return refuse(run, error);
	/* Ids are unique in a stream; the same request twice is one. */
	if (wf_map_get(&k, &run->seen, c->id) == 0) {
		if (!git_oid_equal(&run->hashes[k], &c->hash))
			error = refuse(run, wf_error_set(WF_EINPUT, "%s: request "
			    "'%s': the id is used earlier in the input for "
			    "different content", where, c->id));
		wf_change_free(c);
		return error;
	}
	if ((run->nseen & (run->nseen - 1)) == 0) {
		git_oid *h = realloc(run->hashes, (run->nseen ? 2 * run->nseen :
		    1) * sizeof(*h));

		if (!h) {
			wf_change_free(c);
			return wf_error_oom();
		}
		run->hashes = h;
	}
	if (!(id = strdup(c->id)) ||
	    wf_map_put(NULL, &run->seen, id, run->nseen) < 0) {
		free(id);
		wf_change_free(c);
		return wf_error_oom();
	}
	run->hashes[run->nseen++] = c->hash;
	if ((error = add_change(run, c, where)) < 0) {
		wf_change_free(c);
		return error;
	}
	return 0;
}

/* Read a whole file ("-" for stdin) into a NUL-terminated buffer. */
static int
slurp(char **out, size_t *len, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL, *b;
	size_t n = 0, cap = 0, got;
	int error = 0;

	*out = NULL;
	*len = 0;
	if (!f)
		return wf_error_set_errno(WF_EOS, "cannot open '%s'", path);
	do {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			if (!(b = realloc(buf, cap + 1))) {
				error = wf_error_oom();
				goto out;
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		error = wf_error_set_errno(WF_EOS, "cannot read '%s'", path);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	if (f != stdin)
		fclose(f);
	return error;
}

struct single {
	const char *patch, *tar, *prefix, *commits, *mbox, *id, *target,
	    *base, *message, *author, *priority;
	json_t *depends_on;
};

static int
resolve(char *out, git_repository *repo, const char *spec, size_t len)
{
	git_object *obj = NULL;
	git_commit *commit = NULL;
	char name[1024];
	int error;

	snprintf(name, sizeof(name), "%.*s", (int)len, spec);
	if (git_revparse_single(&obj, repo, name) < 0)
		return wf_error_set_git(WF_EINPUT, "--commits: unknown "
		    "revision '%s'", name);
	error = git_object_peel((git_object **)&commit, obj,
	    GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (error < 0)
		return wf_error_set_git(WF_EINPUT, "--commits: '%s' is not a "
		    "commit", name);
	git_oid_tostr(out, GIT_OID_HEXSZ + 1, git_commit_id(commit));
	git_commit_free(commit);
	return 0;
}

/*
 * git's A..B is what B reaches and A does not: when A is not an
 * ancestor of B, the range starts where they meet.
 */
static int
range_base(char *base, git_repository *repo, const char *head,
    const char *spec)
{
	git_oid a, b, mb;

	if (git_oid_fromstr(&a, base) < 0 || git_oid_fromstr(&b, head) < 0)
		return wf_error_set(WF_EINPUT, "--commits: bad object id");
	if (git_oid_equal(&a, &b) || git_graph_descendant_of(repo, &b, &a) == 1)
		return 0;
	if (git_merge_base(&mb, repo, &a, &b) < 0) {
		git_error_clear();
		return wf_error_set(WF_EINPUT, "--commits: '%s': the two "
		    "commits have no common history", spec);
	}
	git_oid_tostr(base, GIT_OID_HEXSZ + 1, &mb);
	return 0;
}

/*
 * Bytes as text when they are UTF-8 without a NUL (which a request's
 * strings may not hold), else as `key`_base64.
 */
static int
set_bytes(json_t *v, const char *key, const char *data, size_t len)
{
	char b64key[64], *enc;
	int error;

	if (wf_str_utf8_valid(data, len) && !memchr(data, '\0', len))
		return json_object_set_new(v, key, json_stringn(data, len));
	snprintf(b64key, sizeof(b64key), "%s_base64", key);
	if (!(enc = wf_change_base64(data, len)))
		return -1;
	error = json_object_set_new(v, b64key, json_string(enc));
	free(enc);
	return error;
}

/* Build the request the options describe, as JSON. */
static int
build_single(json_t **out, const struct single *s, git_repository *repo,
    const char **name)
{
	json_t *v = NULL, *files = NULL;
	char *text = NULL;
	size_t len;
	int error, fd = -1;

	*out = NULL;
	if (!(v = json_pack("{s:s, s:s}", "id", s->id, "target", s->target)))
		return wf_error_oom();
	if (s->patch) {
		*name = strcmp(s->patch, "-") == 0 ? "<stdin>" : s->patch;
		if ((error = slurp(&text, &len, s->patch)) < 0)
			goto out;
		if (json_object_set_new(v, "kind", json_string("patch")) < 0 ||
		    (error = set_bytes(v, "patch", text, len)) < 0)
			goto oom;
	} else if (s->tar) {
		*name = strcmp(s->tar, "-") == 0 ? "<stdin>" : s->tar;
		if (strcmp(s->tar, "-") == 0)
			fd = 0;
		else if ((fd = open(s->tar, O_RDONLY | O_CLOEXEC)) < 0) {
			error = wf_error_set_errno(WF_EOS, "cannot open '%s'",
			    s->tar);
			goto out;
		}
		if ((error = wf_change_files_from_tar(&files, fd, *name,
		    s->prefix, NULL)) < 0)
			goto out;
		if (json_object_set_new(v, "kind", json_string("files")) < 0 ||
		    json_object_set(v, "files", files) < 0) {
			error = wf_error_oom();
			goto out;
		}
	} else {
		const char *dots = strstr(s->commits, "..");
		char base[GIT_OID_HEXSZ + 1], head[GIT_OID_HEXSZ + 1];

		*name = "--commits";
		if (!dots || dots[2] == '.' || (dots == s->commits &&
		    !dots[2])) {
			error = wf_error_set(WF_EINPUT, "--commits: expected "
			    "A..B, got '%s'", s->commits);
			goto out;
		}
		if (!repo) {
			error = wf_error_set(WF_EINPUT, "--commits needs a "
			    "repository");
			goto out;
		}
		/* As git: A.. is A..HEAD, ..B is HEAD..B. */
		if ((error = dots == s->commits ? resolve(base, repo, "HEAD", 4) :
		    resolve(base, repo, s->commits,
		    (size_t)(dots - s->commits))) < 0 ||
		    (error = dots[2] ? resolve(head, repo, dots + 2,
		    strlen(dots + 2)) : resolve(head, repo, "HEAD", 4)) < 0 ||
		    (error = range_base(base, repo, head, s->commits)) < 0)
			goto out;
		if (json_object_set_new(v, "kind", json_string("commits")) < 0 ||
		    json_object_set_new(v, "base", json_string(base)) < 0 ||
		    json_object_set_new(v, "head", json_string(head)) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if (s->base && json_object_set_new(v, "base", json_string(s->base)) < 0)
		goto oom;
	if (s->message && set_bytes(v, "message", s->message,
	    strlen(s->message)) < 0)
		goto oom;
	if (json_array_size(s->depends_on) > 0 &&
	    json_object_set(v, "depends_on", s->depends_on) < 0)
		goto oom;
	if (s->priority) {
		char *end;
		long long p;

		errno = 0;
		p = strtoll(s->priority, &end, 10);
		if (errno || end == s->priority || *end) {
			error = wf_error_set(WF_EINPUT, "--priority: '%s' is "
			    "not a number", s->priority);
			goto out;
		}
		if (json_object_set_new(v, "priority", json_integer(p)) < 0)
			goto oom;
	}
	if (s->author) {
		const char *lt = strchr(s->author, '<');
		const char *gt = lt ? strchr(lt, '>') : NULL;
		size_t nl;

		if (!lt || !gt || gt[1] || lt == s->author) {
			error = wf_error_set(WF_EINPUT, "--author: expected "
			    "'NAME <EMAIL>', got '%s'", s->author);
			goto out;
		}
		for (nl = (size_t)(lt - s->author); nl > 0 &&
		    s->author[nl - 1] == ' '; nl--)
			;
		if (json_object_set_new(v, "author", json_pack("{s:s%, s:s%}",
		    "name", s->author, nl, "email", lt + 1,
		    (size_t)(gt - lt - 1))) < 0)
			goto oom;
	}
	*out = v;
	v = NULL;
	error = 0;
	goto out;
oom:
	error = wf_error_oom();
out:
	if (fd > 0)
		close(fd);
	free(text);
	json_decref(files);
	json_decref(v);
	return error;
}

static int
open_queue(struct wf_queue **out, const char *db, git_repository *repo,
    int max_attempts)
{
	struct wf_queue_opts o = WF_QUEUE_OPTS_INIT;
	char *path = NULL;
	int error;

	if (max_attempts > 0)
		o.max_attempts = max_attempts;
	if (!db && (error = wf_queue_default_path(&path, repo)) < 0)
		return error;
	error = wf_queue_open(out, db ? db : path, &o);
	free(path);
	return error;
}

/*
 * Give the reader cs[0..n) to free (under run->lock); those that do not
 * fit are freed here.
 */
static void
spend(struct run *run, struct wf_change **cs, size_t n)
{
	size_t i;

	if (n > run->capspent - run->nspent) {
		size_t cap = run->nspent + n + 64;
		struct wf_change **s = realloc(run->spent, cap * sizeof(*s));

		if (s) {
			run->spent = s;
			run->capspent = cap;
		}
	}
	for (i = 0; i < n; i++) {
		if (run->nspent < run->capspent)
			run->spent[run->nspent++] = cs[i];
		else
			wf_change_free(cs[i]);
		cs[i] = NULL;
	}
}

/*
 * Take the changes the reader has added since the last call into
 * *cs and *ws (the caller's to free), waiting for some: their number,
 * 0 when the reader is done, SIZE_MAX when out of memory.  The `prev`
 * changes of the last call, stored, go back to the reader to free.
 */
static size_t
take(struct run *run, struct wf_change ***cs, char ***ws, size_t *cap,
    size_t prev)
{
	size_t n;

	pthread_mutex_lock(&run->lock);
	spend(run, *cs, prev);
	while (run->taken == run->n && !run->done)
		pthread_cond_wait(&run->more, &run->lock);
	n = run->n - run->taken;
	if (n > *cap) {
		struct wf_change **c = realloc(*cs, n * sizeof(**cs));
		char **w = c ? realloc(*ws, n * sizeof(**ws)) : NULL;

		if (c)
			*cs = c;
		if (w)
			*ws = w;
		if ((!c || !w) && *cap == 0) {
			pthread_mutex_unlock(&run->lock);
			return SIZE_MAX;
		} else if (!c || !w) {
			/* Take what fits; the rest waits for the next call. */
			n = *cap;
		} else {
			*cap = n;
		}
	}
	/* Nothing to take (the reader stopped first): no pointer to use. */
	if (n > 0) {
		memcpy(*cs, run->changes + run->taken, n * sizeof(**cs));
		memcpy(*ws, run->where + run->taken, n * sizeof(**ws));
		memset(run->changes + run->taken, 0, n * sizeof(**cs));
		memset(run->where + run->taken, 0, n * sizeof(**ws));
	}
	run->taken += n;
	pthread_cond_signal(&run->room);
	pthread_mutex_unlock(&run->lock);
	return n;
}

/*
 * The line for one stored request, appended to `b`; with --pretty, as
 * jansson indents it, straight to stdout.
 */
static int
write_added(struct wf_json_buf *b, const struct wf_queue_added *a)
{
	json_t *v;
	int error;

	if (!wf_cmd_pretty()) {
		wf_json_buf_raw(b, "{\"id\":", 6);
		wf_json_buf_string(b, a->id, strlen(a->id));
		wf_json_buf_raw(b, ",\"queue_id\":", 12);
		if (a->queue_id)
			wf_json_buf_int(b, a->queue_id);
		else
			wf_json_buf_raw(b, "null", 4);
		wf_json_buf_raw(b, ",\"state\":", 9);
		wf_json_buf_string(b, a->state, strlen(a->state));
		wf_json_buf_raw(b, ",\"position\":", 12);
		if (a->position)
			wf_json_buf_int(b, a->position);
		else
			wf_json_buf_raw(b, "null", 4);
		if (a->existing)
			wf_json_buf_raw(b, ",\"existing\":true", 16);
		wf_json_buf_raw(b, "}\n", 2);
		return b->failed ? wf_error_oom() : 0;
	}
	if (!(v = wf_queue_added_json(a)))
		return wf_error_oom();
	if (!a->existing)
		json_object_del(v, "existing");
	error = wf_cmd_write_json(v);
	json_decref(v);
	return error;
}

/* Write out what `b` holds. */
static int
flush_out(struct wf_json_buf *b)
{
	int error = b->len ? wf_cmd_write_buf(b->s, b->len) : 0;

	b->len = 0;
	return error;
}

/*
 * Store what the reader adds, as it adds it, in one transaction that
 * commits only when the reader has finished without error.  With
 * `wait`, the transaction (and its write lock) starts only once the
 * reader is done: input from a pipe may come slowly, and the queue
 * must not be locked meanwhile.
 */
static int
store(struct run *run, const char *db, int max_attempts, int wait)
{
	struct wf_queue *q = NULL;
	struct wf_queue_batch *b = NULL;
	struct wf_queue_added a;
	struct wf_json_buf text = WF_JSON_BUF_INIT;
	struct wf_change **cs = NULL;
	char **ws = NULL;
	size_t cap = 0, n = 0, i;
	int error = 0;

	if (wait) {
		pthread_mutex_lock(&run->lock);
		while (!run->done)
			pthread_cond_wait(&run->more, &run->lock);
		pthread_mutex_unlock(&run->lock);
	}
	while ((n = take(run, &cs, &ws, &cap, n)) > 0) {
		if (n == SIZE_MAX) {
			error = wf_error_oom();
			goto out;
		}
		if (!b && ((error = open_queue(&q, db, run->repo,
		    max_attempts)) < 0 || (error = wf_queue_batch_begin(&b, q,
		    run->keep_going)) < 0))
			goto out;
		for (i = 0; i < n; i++) {
			error = wf_queue_batch_add(b, cs[i]);
			if (error == WF_ECONFLICT)
				wf_error_prefix(error, "%s", ws[i]);
			free(ws[i]);
			ws[i] = NULL;
			if (error == WF_ECONFLICT && run->keep_going) {
				wf_cmd_fail(error);
				run->refused = 1;
				continue;
			}
			if (error < 0)
				goto out;
		}
	}
	pthread_mutex_lock(&run->lock);
	if (run->error < 0) {
		error = wf_error_set(run->error, "%s", run->errmsg);
		pthread_mutex_unlock(&run->lock);
		goto out;
	}
	pthread_mutex_unlock(&run->lock);
	if (!b)
		return 0;
	if ((error = wf_queue_batch_commit(b)) < 0)
		goto out;
	n = wf_queue_batch_count(b);
	for (i = 0; i < n; i++) {
		wf_queue_batch_get(&a, b, i);
		if (!a.error && (error = write_added(&text, &a)) < 0)
			goto out;
		if (text.len >= 65536 && (error = flush_out(&text)) < 0)
			goto out;
	}
	error = flush_out(&text);
out:
	if (error < 0) {
		pthread_mutex_lock(&run->lock);
		__atomic_store_n(&run->stop, 1, __ATOMIC_RELAXED);
		pthread_cond_signal(&run->room);
		pthread_mutex_unlock(&run->lock);
	}
	for (i = 0; i < cap && cs; i++) {
		wf_change_free(cs[i]);
		free(ws[i]);
	}
	free(cs);
	free(ws);
	free(text.s);
	wf_queue_batch_free(b);
	wf_queue_free(q);
	return error;
}

static int
report_dry(struct run *run)
{
	char hex[GIT_OID_HEXSZ + 1];
	size_t i;
	int error;

	for (i = 0; i < run->n; i++) {
		struct wf_change *c = run->changes[i];
		json_t *v = json_pack("{s:s, s:s, s:s, s:O}", "id", c->id,
		    "kind", wf_change_kind_name(c->kind), "hash",
		    wf_hash_hex(hex, &c->hash), "paths", c->paths);

		if (!v)
			return wf_error_oom();
		error = wf_cmd_write_json(v);
		json_decref(v);
		if (error < 0)
			return error;
	}
	return 0;
}

/* The reader has finished, with `error`. */
static void
reader_done(struct run *run, int error)
{
	pthread_mutex_lock(&run->lock);
	run->done = 1;
	run->error = error < 0 ? error : 0;
	if (error < 0)
		snprintf(run->errmsg, sizeof(run->errmsg), "%s",
		    wf_error_last());
	pthread_cond_broadcast(&run->more);
	pthread_mutex_unlock(&run->lock);
}

struct reader {
	struct run *run;
	int argc;
	char **argv;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;

	reader_done(r->run, wf_cmd_each_value(r->argc, r->argv, read_one,
	    r->run));
	wf_arena_release();
	return NULL;
}

/* 1 when every input is a regular file, which never keeps us waiting. */
static int
all_files(int argc, char **argv)
{
	struct stat st;
	int i;

	if (argc == 0)
		return fstat(0, &st) == 0 && S_ISREG(st.st_mode);
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-") == 0 ? fstat(0, &st) < 0 :
		    stat(argv[i], &st) < 0)
			return 0;
		if (!S_ISREG(st.st_mode))
			return 0;
	}
	return 1;
}

static int
parse_int_opt(int *out, const char *arg, const char *name)
{
	size_t v;
	int code;

	if ((code = wf_cmd_parse_size(&v, arg, name)) != 0)
		return code;
	if (v == 0 || v > 1000000)
		return wf_cmd_usage_error("%s must be between 1 and 1000000",
		    name);
	*out = (int)v;
	return 0;
}

/* The request of one patch mail, as JSON. */
static int
mail_request(json_t **out, const struct single *s, const struct wf_mail *m,
    const char *id)
{
	json_t *v, *author = NULL;

	*out = NULL;
	if (!(v = json_pack("{s:s, s:s, s:s}", "id", id, "target", s->target,
	    "kind", "patch")) || set_bytes(v, "patch", m->patch,
	    m->patch_len) < 0 || set_bytes(v, "message", m->message,
	    m->message_len) < 0)
		goto oom;
	if (!(author = json_pack("{s:s, s:s}", "name", m->name, "email",
	    m->email)) || json_object_set_new(v, "author", author) < 0) {
		json_decref(v);
		return wf_error_set(WF_EINPUT, "mail '%s': the author is not "
		    "UTF-8 text", id);
	}
	if (m->date && json_object_set_new(author, "date",
	    json_string(m->date)) < 0)
		goto oom;
	if (json_array_size(s->depends_on) > 0 &&
	    json_object_set(v, "depends_on", s->depends_on) < 0)
		goto oom;
	*out = v;
	return 0;
oom:
	json_decref(v);
	return wf_error_oom();
}

/*
 * Every mail of an mbox is a request, all in one stream: each is
 * checked against the branch with the mails before it applied, as
 * git am applies them.
 */
static int
read_mbox(struct run *run, const struct single *s)
{
	const char *name = strcmp(s->mbox, "-") == 0 ? "<stdin>" : s->mbox;
	const char *pos, *end, *mail;
	char *text = NULL, *stop, id[WF_CHANGE_ID_MAX + 64];
	struct wf_json_doc doc;
	struct wf_mail m;
	size_t len, n = 0, line = 1, k;
	long long prio = 0;
	int error;

	if (s->priority) {
		errno = 0;
		prio = strtoll(s->priority, &stop, 10);
		if (errno || stop == s->priority || *stop)
			return wf_error_set(WF_EINPUT, "--priority: '%s' is "
			    "not a number", s->priority);
	}
	if ((error = slurp(&text, &len, s->mbox)) < 0)
		return error;
	pos = text;
	end = text + len;
	while ((error = wf_mail_next(&mail, &k, &pos, end)) == 0) {
		n++;
		if ((error = wf_mail_parse(&m, mail, k)) < 0) {
			error = wf_error_prefix(error, "%s: mail %zu", name, n);
			break;
		}
		if (s->id) {
			snprintf(id, sizeof(id), "%s/%zu", s->id, n);
		} else {
			git_oid h;

			if ((error = wf_hash_buf(&h, mail, k)) < 0) {
				wf_mail_release(&m);
				break;
			}
			snprintf(id, sizeof(id), "mail/%.12s",
			    git_oid_tostr_s(&h));
		}
		memset(&doc, 0, sizeof(doc));
		error = mail_request(&doc.value, s, &m, id);
		wf_mail_release(&m);
		if (error < 0)
			break;
		if (s->priority && json_object_set_new(doc.value, "priority",
		    json_integer(prio)) < 0) {
			json_decref(doc.value);
			error = wf_error_oom();
			break;
		}
		doc.name = name;
		doc.line = line;
		doc.col = 1;
		error = read_request(&doc, run);
		json_decref(doc.value);
		if (error < 0)
			break;
		for (; mail < pos; mail++)
			line += *mail == '\n';
	}
	if (error == 1)
		error = n == 0 ? wf_error_set(WF_EINPUT, "%s: no mail in it",
		    name) : 0;
	free(text);
	return error;
}

int
main(int argc, char **argv)
{
	struct run run;
	struct single s;
	const char *db = getenv("WF_DB"), *repo_dir = NULL, *bad_usage = NULL;
	int dry_run = 0, max_attempts = 0, opt, code = WF_EXIT_OK, error = 0,
	    nsingle;
	size_t i;

	/*
	 * jansson's values live in arena chunks (lib/arena.c): a stream of
	 * requests is millions of small values, made on the reading thread
	 * and freed on the storing one, where malloc and free would cost
	 * as much as the parse.  Set before any value exists.
	 */
	json_set_alloc_funcs(wf_arena_alloc, wf_arena_free);
	wf_cmd_init("wf-enqueue");
	/*
	 * Trees and preimages are read to check each patch: they come from
	 * packs git checked when it indexed them, or from objects git
	 * wrote.  git itself reads them without hashing them again; so
	 * does this (hashing every tree on the way to each path was a
	 * third of the time of a patch series).
	 */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	memset(&s, 0, sizeof(s));
	memset(&run, 0, sizeof(run));
	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.more, NULL);
	pthread_cond_init(&run.room, NULL);
	if (db && !*db)
		db = NULL;
	if (!(s.depends_on = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":C:kn", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DB:
			db = optarg;
			break;
		case 'C':
			repo_dir = optarg;
			break;
		case 'k':
			run.keep_going = 1;
			break;
		case 'n':
			dry_run = 1;
			break;
		case OPT_MAX_ATTEMPTS:
			if ((code = parse_int_opt(&max_attempts, optarg,
			    "--max-attempts")) != 0)
				goto done;
			break;
		case OPT_PATCH: s.patch = optarg; break;
		case OPT_TAR: s.tar = optarg; break;
		case OPT_PREFIX: s.prefix = optarg; break;
		case OPT_COMMITS: s.commits = optarg; break;
		case OPT_MBOX: s.mbox = optarg; break;
		case OPT_ID: s.id = optarg; break;
		case OPT_TARGET: s.target = optarg; break;
		case OPT_BASE: s.base = optarg; break;
		case OPT_MESSAGE: s.message = optarg; break;
		case OPT_AUTHOR: s.author = optarg; break;
		case OPT_PRIORITY: s.priority = optarg; break;
		case OPT_DEPENDS_ON:
			json_array_append_new(s.depends_on, json_string(optarg));
			break;
		case ':':
			code = wf_cmd_usage_error("option '%s' needs a value",
			    argv[optind - 1]);
			goto done;
		case '?':
			if (optopt && optopt < WF_OPT_HELP)
				code = wf_cmd_usage_error("unknown option "
				    "'-%c'", optopt);
			else
				code = wf_cmd_usage_error("unknown option "
				    "'%s'", argv[optind - 1]);
			goto done;
		default:
			switch (wf_cmd_common_option(opt, usage)) {
			case 1:
				code = WF_EXIT_OK;
				goto done;
			case 0:
				break;
			default:
				code = wf_cmd_usage_error("unknown option '%s'",
				    argv[optind - 1]);
				goto done;
			}
		}
	}
	argc -= optind;
	argv += optind;
	nsingle = !!s.patch + !!s.tar + !!s.commits + !!s.mbox;
	if (nsingle > 1)
		bad_usage = "--patch, --tar, --commits and --mbox exclude each "
		    "other";
	else if (nsingle && argc > 0)
		bad_usage = "no FILE operands with --patch, --tar, --commits "
		    "or --mbox";
	else if (s.mbox && !s.target)
		bad_usage = "--target is required with --mbox";
	else if (s.mbox && (s.base || s.message || s.author))
		bad_usage = "--mbox takes the base, message and author from "
		    "the mails";
	else if (nsingle && !s.mbox && (!s.id || !s.target))
		bad_usage = "--id and --target are required with --patch, "
		    "--tar or --commits";
	else if (!nsingle && (s.id || s.target || s.base || s.message ||
	    s.author || s.priority || json_array_size(s.depends_on)))
		bad_usage = "request options need --patch, --tar, --commits "
		    "or --mbox";
	else if (s.prefix && !s.tar)
		bad_usage = "--prefix needs --tar";
	if (bad_usage) {
		code = wf_cmd_usage_error("%s", bad_usage);
		goto done;
	}
	/* A missing operand is the likelier mistake: say so first. */
	for (i = 0; i < (size_t)argc; i++)
		if (strcmp(argv[i], "-") != 0 && access(argv[i], R_OK) < 0) {
			error = wf_error_set_errno(WF_EOS, "cannot open '%s'",
			    argv[i]);
			goto out;
		}
	error = wf_git_open(&run.repo, repo_dir);
	if (error == WF_ENOTFOUND && (db || dry_run) && !repo_dir) {
		/* A queue outside any repository: no object checks. */
		error = 0;
	} else if (error < 0) {
		goto out;
	}
	if (run.repo && (error = wf_change_trees_new(&run.opts.trees,
	    run.repo)) < 0)
		goto out;
	if (s.mbox) {
		error = read_mbox(&run, &s);
		reader_done(&run, error);
	} else if (nsingle) {
		struct wf_json_doc doc;
		const char *name = "-";

		memset(&doc, 0, sizeof(doc));
		if ((error = build_single(&doc.value, &s, run.repo, &name)) < 0)
			goto out;
		doc.name = name;
		doc.line = doc.col = 1;
		error = read_request(&doc, &run);
		json_decref(doc.value);
		reader_done(&run, error);
	} else if (dry_run) {
		reader_done(&run, error = wf_cmd_each_value(argc, argv,
		    read_one, &run));
	} else {
		struct reader r = { &run, argc, argv };
		int wait = !all_files(argc, argv), rc;
		pthread_t t;

		/* Stored as read, the reader need not run far ahead. */
		run.ahead = wait ? 0 : 16384;
		if ((rc = pthread_create(&t, NULL, reader_main, &r)) != 0) {
			errno = rc;
			error = wf_error_set_errno(WF_EOS, "cannot start a "
			    "thread");
			goto out;
		}
		error = store(&run, db, max_attempts, wait);
		pthread_join(t, NULL);
		goto out;
	}
	if (error < 0)
		goto out;
	error = dry_run ? report_dry(&run) : store(&run, db, max_attempts, 0);
out:
	if (error < 0)
		code = wf_cmd_fail(error);
	else if (run.bad || run.refused)
		code = WF_EXIT_INPUT;
done:
	for (i = 0; i < run.n; i++) {
		wf_change_free(run.changes[i]);
		free(run.where[i]);
	}
	free(run.changes);
	free(run.where);
	for (i = 0; i < run.seen.cap; i++)
		free((char *)run.seen.slots[i].key);
	while (run.nspent > 0)
		wf_change_free(run.spent[--run.nspent]);
	free(run.spent);
	wf_map_release(&run.seen);
	free(run.hashes);
	wf_change_trees_free(run.opts.trees);
	json_decref(s.depends_on);
	git_repository_free(run.repo);
	return wf_cmd_finish(code);
}
