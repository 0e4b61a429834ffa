/*
 * raw-queue: the baseline of bench/queue-vs-sqlite.sh.  The same work
 * as wf's queue, written as the plainest SQLite C loop: the same
 * database (a copy of an empty wf queue, so the same schema and
 * indexes), WAL, synchronous=NORMAL, the same rows (each entry with
 * its payload, an audit row per state change with a detail of the same
 * shape), and nothing else: no JSON library, no duplicate or tombstone
 * lookups, no positions, no expired-lease reclaim, no dependency
 * bookkeeping, no statistics.
 *
 *   raw-queue enqueue DB ROWS
 *	store the rows of ROWS (written by wf-queue-bench enqueue: one
 *	entry a line, id TAB target TAB kind TAB hash TAB priority TAB
 *	paths TAB payload) in one transaction
 *   raw-queue work DB WORKERS BATCH
 *	WORKERS processes lease BATCH entries at a time (one transaction)
 *	and ack each one landed (a transaction each) until none is left
 *
 * Prints "SECONDS COUNT" for the timed part only (reading ROWS and
 * opening the database are not timed).  Exit status 0, 2 on a usage
 * error, 4 when anything fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define EXIT_USAGE 2
#define EXIT_OS 4

struct row {
	char *id, *target, *kind, *hash, *paths, *payload;
	int64_t priority;
};

static const char *prog = "raw-queue";

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

static void
die_db(sqlite3 *db, const char *what)
{
	die("%s: %s", what, sqlite3_errmsg(db));
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* UTC ISO 8601 with milliseconds, as the audit log writes times. */
static char *
fmt_time(char *buf, size_t size, int64_t ms)
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
	return buf;
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

static sqlite3 *
open_db(const char *path)
{
	sqlite3 *db;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		die("cannot open '%s': %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 30000);
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL;"
	    " PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
	    NULL, NULL, NULL) != SQLITE_OK)
		die_db(db, "cannot set up the connection");
	return db;
}

static sqlite3_stmt *
prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	    NULL) != SQLITE_OK)
		die_db(db, "cannot prepare a statement");
	return st;
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die_db(db, sql);
}

static void
step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die_db(db, what);
	sqlite3_reset(st);
}

/* Split the lines of `path` at tabs into rows; *n receives how many. */
static struct row *
read_rows(size_t *n, const char *path)
{
	FILE *f = fopen(path, "r");
	struct row *rows = NULL, *r;
	char *line = NULL, *field[7];
	size_t cap = 0, size = 0, i;
	ssize_t len;

	*n = 0;
	if (!f)
		die("cannot open '%s': %s", path, strerror(errno));
	while ((len = getline(&line, &size, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		field[0] = line;
		for (i = 1; i < 7; i++) {
			if (!(field[i] = strchr(field[i - 1], '\t')))
				die("%s:%zu: expected 7 fields", path, *n + 1);
			*field[i]++ = '\0';
		}
		if (*n == cap && !(rows = realloc(rows, (cap = cap ? cap * 2 :
		    1024) * sizeof(*rows))))
			die("out of memory");
		r = &rows[(*n)++];
		if (!(r->id = strdup(field[0])) ||
		    !(r->target = strdup(field[1])) ||
		    !(r->kind = strdup(field[2])) ||
		    !(r->hash = strdup(field[3])) ||
		    !(r->paths = strdup(field[5])) ||
		    !(r->payload = strdup(field[6])))
			die("out of memory");
		r->priority = strtoll(field[4], NULL, 10);
	}
	if (ferror(f))
		die("cannot read '%s': %s", path, strerror(errno));
	free(line);
	fclose(f);
	return rows;
}

static void
audit(sqlite3 *db, sqlite3_stmt *st, int64_t qid, const char *id,
    int64_t at, const char *from, const char *to, const char *detail)
{
	sqlite3_bind_int64(st, 1, qid);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, at);
	if (from)
		sqlite3_bind_text(st, 4, from, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
	step_done(db, st, "cannot write the audit log");
}

static const char audit_sql[] = "INSERT INTO audit (qid, entry_id, at,"
    " from_state, to_state, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static int
enqueue(const char *path, const char *rows_path)
{
	sqlite3 *db = open_db(path);
	sqlite3_stmt *ins, *pay, *aud;
	struct row *rows;
	char detail[256], when[64];
	size_t n, i;
	int64_t now, qid;
	double t0;

	rows = read_rows(&n, rows_path);
	ins = prepare(db, "INSERT INTO entries (id, target, kind, hash,"
	    " paths, priority, state, blocked, max_attempts,"
	    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?6, ?7,"
	    " 'queued', 0, 5, ?8, ?8)");
	pay = prepare(db, "INSERT INTO payloads (qid, payload) VALUES (?1, ?2)");
	aud = prepare(db, audit_sql);
	t0 = seconds();
	now = now_ms();
	snprintf(detail, sizeof(detail), "{\"who\":\"pid %ld\",\"when\":"
	    "\"%s\",\"why\":\"enqueue\",\"from\":null,\"to\":\"queued\"}",
	    (long)getpid(), fmt_time(when, sizeof(when), now));
	exec(db, "BEGIN IMMEDIATE");
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(ins, 1, rows[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, rows[i].target, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, rows[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, rows[i].hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 6, rows[i].paths, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 7, rows[i].priority);
		sqlite3_bind_int64(ins, 8, now);
		step_done(db, ins, "cannot insert an entry");
		qid = sqlite3_last_insert_rowid(db);
		sqlite3_bind_int64(pay, 1, qid);
		sqlite3_bind_text(pay, 2, rows[i].payload, -1, SQLITE_STATIC);
		step_done(db, pay, "cannot insert a payload");
		audit(db, aud, qid, rows[i].id, now, NULL, "queued", detail);
	}
	exec(db, "COMMIT");
	printf("%.6f %zu\n", seconds() - t0, n);
	sqlite3_finalize(ins);
	sqlite3_finalize(pay);
	sqlite3_finalize(aud);
	if (sqlite3_close(db) != SQLITE_OK)
		die("cannot close '%s'", path);
	for (i = 0; i < n; i++) {
		free(rows[i].id);
		free(rows[i].target);
		free(rows[i].kind);
		free(rows[i].hash);
		free(rows[i].paths);
		free(rows[i].payload);
	}
	free(rows);
	return 0;
}

struct leased {
	int64_t qid;
	char id[300];
	char token[33];
	char *payload;	/* what the worker would apply */
};

/* One worker: lease `batch` at a time and ack each; returns how many. */
static size_t
work(const char *path, long batch, const char *owner, int ready_fd, int go)
{
	sqlite3 *db = open_db(path);
	sqlite3_stmt *ready, *lease, *get, *land, *aud;
	struct leased *l;
	uint64_t rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL | 1;
	char detail[4096], when[64], byte;
	size_t done = 0, n, i;
	int64_t now;

	if (!(l = calloc((size_t)batch, sizeof(*l))))
		die("out of memory");
	ready = prepare(db, "SELECT e.qid, e.id, p.payload FROM entries e"
	    " JOIN payloads p ON p.qid = e.qid"
	    " WHERE e.target = ?1 AND e.state IN ('queued', 'failed') AND"
	    " e.blocked = 0 AND e.not_before <= ?2"
	    " ORDER BY e.priority DESC, e.qid LIMIT ?3");
	lease = prepare(db, "UPDATE entries SET state = 'leased', attempts ="
	    " attempts + 1, lease_owner = ?2, lease_token = ?3,"
	    " lease_expires = ?4, leased_at = ?5, updated_at = ?5"
	    " WHERE qid = ?1");
	get = prepare(db, "SELECT qid, state, lease_token, lease_owner, paths"
	    " FROM entries WHERE id = ?1");
	land = prepare(db, "UPDATE entries SET state = 'landed',"
	    " lease_owner = NULL, lease_token = NULL, lease_expires = NULL,"
	    " finished_at = ?2, updated_at = ?2, last_error = NULL"
	    " WHERE qid = ?1");
	aud = prepare(db, audit_sql);
	/* Ready; wait for the start (the parent closes the pipe). */
	byte = 'r';
	if (write(ready_fd, &byte, 1) != 1 || read(go, &byte, 1) < 0)
		die("cannot wait for the start: %s", strerror(errno));
	for (;;) {
		now = now_ms();
		exec(db, "BEGIN IMMEDIATE");
		sqlite3_bind_text(ready, 1, "main", -1, SQLITE_STATIC);
		sqlite3_bind_int64(ready, 2, now);
		sqlite3_bind_int64(ready, 3, batch);
		for (n = 0; sqlite3_step(ready) == SQLITE_ROW; n++) {
			l[n].qid = sqlite3_column_int64(ready, 0);
			snprintf(l[n].id, sizeof(l[n].id), "%s",
			    (const char *)sqlite3_column_text(ready, 1));
			if (!(l[n].payload = strdup((const char *)
			    sqlite3_column_text(ready, 2))))
				die("out of memory");
		}
		if (sqlite3_reset(ready) != SQLITE_OK)
			die_db(db, "cannot find entries to lease");
		snprintf(detail, sizeof(detail), "{\"who\":\"%s\",\"when\":"
		    "\"%s\",\"why\":\"lease\",\"from\":\"queued\",\"to\":"
		    "\"leased\"}", owner, fmt_time(when, sizeof(when), now));
		for (i = 0; i < n; i++) {
			rng ^= rng >> 12;
			rng ^= rng << 25;
			rng ^= rng >> 27;
			snprintf(l[i].token, sizeof(l[i].token), "%016llx%016llx",
			    (unsigned long long)(rng * 2685821657736338717ULL),
			    (unsigned long long)rng);
			sqlite3_bind_int64(lease, 1, l[i].qid);
			sqlite3_bind_text(lease, 2, owner, -1, SQLITE_STATIC);
			sqlite3_bind_text(lease, 3, l[i].token, -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(lease, 4, now + 600000);
			sqlite3_bind_int64(lease, 5, now);
			step_done(db, lease, "cannot lease an entry");
			audit(db, aud, l[i].qid, l[i].id, now, "queued",
			    "leased", detail);
		}
		exec(db, "COMMIT");
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			const char *state, *token, *paths;
			int64_t qid;

			now = now_ms();
			exec(db, "BEGIN IMMEDIATE");
			sqlite3_bind_text(get, 1, l[i].id, -1, SQLITE_STATIC);
			if (sqlite3_step(get) != SQLITE_ROW)
				die_db(db, "cannot look up an entry");
			qid = sqlite3_column_int64(get, 0);
			state = (const char *)sqlite3_column_text(get, 1);
			token = (const char *)sqlite3_column_text(get, 2);
			paths = (const char *)sqlite3_column_text(get, 4);
			if (strcmp(state, "leased") != 0 || !token ||
			    strcmp(token, l[i].token) != 0)
				die("entry '%s': stale lease token", l[i].id);
			snprintf(detail, sizeof(detail), "{\"who\":\"%s\","
			    "\"when\":\"%s\",\"why\":\"landed\",\"paths\":%s,"
			    "\"from\":\"leased\",\"to\":\"landed\"}", owner,
			    fmt_time(when, sizeof(when), now), paths);
			sqlite3_reset(get);
			sqlite3_bind_int64(land, 1, qid);
			sqlite3_bind_int64(land, 2, now);
			step_done(db, land, "cannot mark an entry landed");
			audit(db, aud, qid, l[i].id, now, "leased", "landed",
			    detail);
			exec(db, "COMMIT");
			free(l[i].payload);
			done++;
		}
	}
	sqlite3_finalize(ready);
	sqlite3_finalize(lease);
	sqlite3_finalize(get);
	sqlite3_finalize(land);
	sqlite3_finalize(aud);
	if (sqlite3_close(db) != SQLITE_OK)
		die("cannot close '%s'", path);
	free(l);
	return done;
}

static int
run_workers(const char *path, long workers, long batch)
{
	int go[2], ready[2], res[2], status, failed = 0;
	size_t total = 0, got;
	pid_t pid;
	long i;
	double t0, t;
	sqlite3 *db;
	sqlite3_stmt *st;
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
			got = work(path, batch, owner, ready[1], go[0]);
			if (write(res[1], &got, sizeof(got)) != sizeof(got))
				_exit(EXIT_OS);
			_exit(0);
		}
	}
	close(go[0]);
	close(ready[1]);
	close(res[1]);
	/* Start the clock once every worker is connected and prepared. */
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
	db = open_db(path);
	st = prepare(db, "SELECT count(*), (SELECT count(*) FROM entries)"
	    " FROM entries WHERE state = 'landed'");
	if (sqlite3_step(st) != SQLITE_ROW)
		die_db(db, "cannot count the entries");
	if ((size_t)sqlite3_column_int64(st, 0) != total ||
	    sqlite3_column_int64(st, 0) != sqlite3_column_int64(st, 1))
		die("%zu acked, but %lld of %lld entries landed", total,
		    (long long)sqlite3_column_int64(st, 0),
		    (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	sqlite3_close(db);
	printf("%.6f %zu\n", t, total);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "enqueue") == 0)
		enqueue(argv[2], argv[3]);
	else if (argc == 5 && strcmp(argv[1], "work") == 0)
		run_workers(argv[2], parse_count(argv[3], "WORKERS", 64),
		    parse_count(argv[4], "BATCH", 100000));
	else {
		fprintf(stderr, "usage: raw-queue enqueue DB ROWS\n"
		    "       raw-queue work DB WORKERS BATCH\n");
		return EXIT_USAGE;
	}
	if (ferror(stdout) || fclose(stdout) != 0)
		die("cannot write the output: %s", strerror(errno));
	return 0;
}
