/*
 * wf-queue-bench: wf's side of bench/queue-vs-sqlite.sh.  Drives the
 * queue library (lib/libwf.a) directly, so what is timed is the queue
 * and not process start-up or JSON on stdout.
 *
 *   wf-queue-bench init DB
 *	create an empty queue (raw-queue starts from a copy of it, so both
 *	sides have the same schema and indexes)
 *   wf-queue-bench enqueue DB STREAM [ROWS]
 *	parse and validate the change requests of STREAM (not timed), then
 *	store them all with one wf_queue_enqueue() call (timed); with
 *	ROWS, write the rows as stored, for raw-queue (not timed)
 *   wf-queue-bench work DB WORKERS BATCH
 *	WORKERS processes each loop on wf_queue_lease(BATCH) and
 *	wf_queue_ack_landed() of every entry leased until none is left
 *
 * Prints "SECONDS COUNT" for the timed part.  Exit status 0, 2 on a usage
 * error, 4 when anything fails.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "change.h"
#include "error.h"
#include "git.h"
#include "hash.h"
#include "json.h"
#include "queue.h"

#define EXIT_USAGE 2
#define EXIT_OS 4

static const char *prog = "wf-queue-bench";

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_OS);
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
parse_count(const char *s, const char *what, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max) {
		fprintf(stderr, "%s: error: %s must be a number from 1 to %ld, "
		    "not '%s'\n", prog, what, max, s);
		exit(EXIT_USAGE);
	}
	return v;
}

static struct wf_queue *
open_queue(const char *path)
{
	struct wf_queue *q;

	if (wf_queue_open(&q, path, NULL) < 0)
		die("%s", wf_error_last());
	return q;
}

/* Parse and validate every request of `path`, as wf-enqueue does. */
static struct wf_change **
read_changes(size_t *n, const char *path)
{
	struct wf_json_reader *r;
	struct wf_json_doc doc;
	struct wf_change **cs = NULL;
	size_t cap = 0;
	int rc;

	*n = 0;
	if (wf_json_reader_open(&r, path) < 0)
		die("%s", wf_error_last());
	while ((rc = wf_json_reader_next(&doc, r)) == 1) {
		if (*n == cap && !(cs = realloc(cs, (cap = cap ? cap * 2 :
		    1024) * sizeof(*cs))))
			die("out of memory");
		rc = wf_change_parse(&cs[*n], &doc, NULL, NULL);
		json_decref(doc.value);
		if (rc < 0)
			die("%s", wf_error_last());
		(*n)++;
	}
	if (rc < 0)
		die("%s", wf_error_last());
	wf_json_reader_free(r);
	return cs;
}

/* The columns raw-queue inserts, one entry a line, tab-separated. */
static void
write_rows(const char *path, struct wf_change **cs, size_t n)
{
	FILE *f = fopen(path, "w");
	char hex[GIT_OID_HEXSZ + 1], *paths;
	size_t i;

	if (!f)
		die("cannot create '%s': %s", path, strerror(errno));
	for (i = 0; i < n; i++) {
		if (strpbrk(cs[i]->id, "\t\n") || strpbrk(cs[i]->target, "\t\n"))
			die("request '%s': a tab or newline in the id or target",
			    cs[i]->id);
		if (!(paths = json_dumps(cs[i]->paths, JSON_COMPACT)))
			die("out of memory");
		fprintf(f, "%s\t%s\t%s\t%s\t%lld\t%s\t%s\n", cs[i]->id,
		    cs[i]->target, wf_change_kind_name(cs[i]->kind),
		    wf_hash_hex(hex, &cs[i]->hash), (long long)cs[i]->priority,
		    paths, cs[i]->text);
		free(paths);
	}
	if (ferror(f) || fclose(f) != 0)
		die("cannot write '%s': %s", path, strerror(errno));
}

static void
enqueue(const char *db, const char *stream, const char *rows)
{
	struct wf_queue *q;
	struct wf_change **cs;
	json_t *res;
	size_t n, i;
	double t0, t;

	cs = read_changes(&n, stream);
	q = open_queue(db);
	t0 = seconds();
	if (wf_queue_enqueue(&res, NULL, q, cs, n, 0) < 0)
		die("%s", wf_error_last());
	t = seconds() - t0;
	if (json_array_size(res) != n)
		die("%zu requests, %zu results", n, json_array_size(res));
	json_decref(res);
	wf_queue_free(q);
	if (rows)
		write_rows(rows, cs, n);
	for (i = 0; i < n; i++)
		wf_change_free(cs[i]);
	free(cs);
	printf("%.6f %zu\n", t, n);
}

/* One worker: lease `batch` at a time and ack each; returns how many. */
static size_t
work(const char *db, long batch, const char *owner, int ready_fd, int go)
{
	struct wf_queue *q = open_queue(db);
	json_t *arr, *e;
	size_t done = 0, i;
	char byte = 'r';

	if (write(ready_fd, &byte, 1) != 1 || read(go, &byte, 1) < 0)
		die("cannot wait for the start: %s", strerror(errno));
	for (;;) {
		if (wf_queue_lease(&arr, q, "main", (size_t)batch, owner,
		    600000) < 0)
			die("%s", wf_error_last());
		if (json_array_size(arr) == 0) {
			json_decref(arr);
			break;
		}
		json_array_foreach(arr, i, e) {
			const char *id = json_string_value(json_object_get(e,
			    "id"));
			const char *token = json_string_value(json_object_get(e,
			    "lease_token"));

			if (wf_queue_ack_landed(q, id, token, NULL) < 0)
				die("%s", wf_error_last());
			done++;
		}
		json_decref(arr);
	}
	wf_queue_free(q);
	return done;
}

static void
run_workers(const char *db, long workers, long batch)
{
	int go[2], ready[2], res[2], status, failed = 0;
	size_t total = 0, got;
	struct wf_queue *q;
	json_t *m, *depth;
	json_int_t landed, others = 0;
	const char *key;
	json_t *v;
	pid_t pid;
	long i;
	double t0, t;
	char byte;

	if (pipe(go) < 0 || pipe(ready) < 0 || pipe(res) < 0)
		die("cannot make a pipe: %s", strerror(errno));
	for (i = 0; i < workers; i++) {
		if ((pid = fork()) < 0)
			die("cannot fork: %s", strerror(errno));
		if (pid == 0) {
			char owner[32];

			close(go[1]);
			close(ready[0]);
			close(res[0]);
			snprintf(owner, sizeof(owner), "bench w%ld", i);
			got = work(db, batch, owner, ready[1], go[0]);
			if (write(res[1], &got, sizeof(got)) != sizeof(got))
				_exit(EXIT_OS);
			_exit(0);
		}
	}
	close(go[0]);
	close(ready[1]);
	close(res[1]);
	/* Start the clock once every worker has its queue open. */
	for (i = 0; i < workers; i++)
		if (read(ready[0], &byte, 1) != 1)
			die("a worker failed to start");
	t0 = seconds();
	close(go[1]);
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	t = seconds() - t0;
	while (read(res[0], &got, sizeof(got)) == sizeof(got))
		total += got;
	if (failed)
		die("a worker failed");
	q = open_queue(db);
	if (wf_queue_metrics(&m, q) < 0)
		die("%s", wf_error_last());
	depth = json_object_get(m, "depth");
	landed = json_integer_value(json_object_get(depth, "landed"));
	json_object_foreach(depth, key, v)
		if (strcmp(key, "landed") != 0)
			others += json_integer_value(v);
	if ((size_t)landed != total || others != 0)
		die("%zu acked, but %lld landed and %lld not", total,
		    (long long)landed, (long long)others);
	json_decref(m);
	wf_queue_free(q);
	printf("%.6f %zu\n", t, total);
}

int
main(int argc, char **argv)
{
	if (wf_git_init() < 0)
		die("%s", wf_error_last());
	if (argc == 3 && strcmp(argv[1], "init") == 0)
		wf_queue_free(open_queue(argv[2]));
	else if ((argc == 4 || argc == 5) && strcmp(argv[1], "enqueue") == 0)
		enqueue(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	else if (argc == 5 && strcmp(argv[1], "work") == 0)
		run_workers(argv[2], parse_count(argv[3], "WORKERS", 64),
		    parse_count(argv[4], "BATCH", 100000));
	else {
		fprintf(stderr, "usage: wf-queue-bench init DB\n"
		    "       wf-queue-bench enqueue DB STREAM [ROWS]\n"
		    "       wf-queue-bench work DB WORKERS BATCH\n");
		return EXIT_USAGE;
	}
	if (ferror(stdout) || fclose(stdout) != 0)
		die("cannot write the output: %s", strerror(errno));
	wf_git_shutdown();
	return 0;
}
