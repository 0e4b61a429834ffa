#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "db.h"
#include "error.h"
#include "path.h"
#include "json.h"
#include "hash.h"
#include "queue.h"
#include "str.h"
#include "tarball.h"

/*
 * Forward migrations: migration[i] takes the schema from version i to
 * i + 1.  Never edit a released one; append.
 */
static const char *const migration[] = {
	/* 0 -> 1 */
	"CREATE TABLE entries ("
	" qid INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" target TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" hash TEXT NOT NULL,"
	" payload TEXT NOT NULL,"
	" paths TEXT NOT NULL,"
	" priority INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN"
	"  ('queued', 'leased', 'landed', 'failed', 'dead')),"
	" blocked INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" max_attempts INTEGER NOT NULL,"
	" not_before INTEGER NOT NULL DEFAULT 0,"
	" lease_owner TEXT, lease_token TEXT, lease_expires INTEGER,"
	" leased_at INTEGER,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	" finished_at INTEGER, last_error TEXT);"
	/* The lease path: one range scan, O(log n) to the first entry. */
	"CREATE INDEX entries_ready ON entries (target, priority DESC, qid)"
	" WHERE state IN ('queued', 'failed') AND blocked = 0;"
	"CREATE INDEX entries_leases ON entries (lease_expires)"
	" WHERE state = 'leased';"
	"CREATE INDEX entries_state ON entries (state, target, priority);"
	"CREATE INDEX entries_finished ON entries (finished_at)"
	" WHERE state IN ('landed', 'dead');"
	"CREATE TABLE deps ("
	" qid INTEGER NOT NULL REFERENCES entries (qid) ON DELETE CASCADE,"
	" dep_id TEXT NOT NULL, PRIMARY KEY (qid, dep_id)) WITHOUT ROWID;"
	"CREATE INDEX deps_dep ON deps (dep_id);"
	"CREATE TABLE audit ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" qid INTEGER NOT NULL, entry_id TEXT NOT NULL, at INTEGER NOT NULL,"
	" from_state TEXT, to_state TEXT, detail TEXT NOT NULL);"
	"CREATE INDEX audit_qid ON audit (qid, seq);"
	"CREATE INDEX audit_at ON audit (to_state, at);"
	/* Ids archived away, so they are never enqueued twice. */
	"CREATE TABLE tombstones (id TEXT PRIMARY KEY, hash TEXT NOT NULL,"
	" state TEXT NOT NULL, archived_at INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
	" WITHOUT ROWID;",
	/* 1 -> 2: check results by tree, so a tree is checked once. */
	"CREATE TABLE check_cache (tree TEXT NOT NULL, command TEXT NOT NULL,"
	" result TEXT NOT NULL, at INTEGER NOT NULL,"
	" PRIMARY KEY (tree, command)) WITHOUT ROWID;",
	/* 2 -> 3: the entries waiting on others, in queue order. */
	"CREATE INDEX entries_waiting ON entries (target, priority DESC, qid)"
	" WHERE state IN ('queued', 'failed') AND blocked > 0;",
	/*
	 * 3 -> 4: payloads in a table of their own.  A payload never
	 * changes, but an entry's row is written again at each lease,
	 * extension and ack, and SQLite writes a row whole, overflow pages
	 * and all; reading a column after the payload walked them too.
	 */
	"CREATE TABLE payloads ("
	" qid INTEGER PRIMARY KEY REFERENCES entries (qid) ON DELETE CASCADE,"
	" payload TEXT NOT NULL);"
	"INSERT INTO payloads (qid, payload) SELECT qid, payload FROM entries;"
	"ALTER TABLE entries DROP COLUMN payload;",
};

#define NMIGRATIONS (sizeof(migration) / sizeof(*migration))

_Static_assert(NMIGRATIONS == WF_QUEUE_SCHEMA_VERSION,
    "a migration needs WF_QUEUE_SCHEMA_VERSION raised with it");

enum stmt {
	S_FIND, S_TOMB, S_INSERT, S_DEP, S_BLOCKED, S_AUDIT, S_POSITION,
	S_POSITION_SPAN,
	S_RECLAIM_SEL, S_READY, S_LEASE, S_ROW, S_GETSTATE, S_LAND,
	S_DEPENDENT, S_UNBLOCK, S_FAIL, S_EXTEND, S_STAT, S_BEGIN, S_COMMIT,
	S_ANY_WAITING, S_READY_P, S_WAITING, S_DEPS_OPEN, S_PAYLOAD, NSTMT
};

static const char *const stmt_sql[NSTMT] = {
	[S_FIND] = "SELECT qid, hash, state FROM entries WHERE id = ?1",
	[S_TOMB] = "SELECT hash, state FROM tombstones WHERE id = ?1",
	[S_INSERT] = "INSERT INTO entries (id, target, kind, hash,"
	    " paths, priority, state, blocked, max_attempts, created_at,"
	    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0,"
	    " ?7, ?8, ?8) ON CONFLICT (id) DO NOTHING",
	[S_PAYLOAD] = "INSERT INTO payloads (qid, payload) VALUES (?1, ?2)",
	[S_DEP] = "INSERT INTO deps (qid, dep_id) VALUES (?1, ?2)",
	[S_BLOCKED] = "UPDATE entries SET blocked = (SELECT count(*) FROM"
	    " deps d WHERE d.qid = ?1 AND NOT EXISTS (SELECT 1 FROM entries e"
	    " WHERE e.id = d.dep_id AND e.state = 'landed') AND NOT EXISTS"
	    " (SELECT 1 FROM tombstones t WHERE t.id = d.dep_id AND"
	    " t.state = 'landed')) WHERE qid = ?1",
	[S_AUDIT] = "INSERT INTO audit (qid, entry_id, at, from_state,"
	    " to_state, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	/* Two ranges of entries_state, so only the entries ahead are read. */
	[S_POSITION] = "SELECT (SELECT count(*) FROM entries WHERE"
	    " state IN ('queued', 'failed') AND target = ?1 AND priority > ?2)"
	    " + (SELECT count(*) FROM entries WHERE state IN ('queued',"
	    " 'failed') AND target = ?1 AND priority = ?2 AND qid < ?3)",
	/* The waiting entries of one priority from one qid to before another. */
	[S_POSITION_SPAN] = "SELECT count(*) FROM entries WHERE state IN"
	    " ('queued', 'failed') AND target = ?1 AND priority = ?2 AND"
	    " qid >= ?3 AND qid < ?4",
	[S_RECLAIM_SEL] = "SELECT qid, id, attempts, max_attempts, lease_owner"
	    " FROM entries WHERE state = 'leased' AND lease_expires < ?1",
	[S_READY] = "SELECT qid, created_at, not_before, state, id FROM entries"
	    " WHERE target = ?1 AND state IN ('queued', 'failed') AND"
	    " blocked = 0 AND not_before <= ?2 ORDER BY priority DESC, qid"
	    " LIMIT ?3",
	[S_LEASE] = "UPDATE entries SET state = 'leased', attempts ="
	    " attempts + 1, lease_owner = ?2, lease_token = ?3,"
	    " lease_expires = ?4, leased_at = ?5, updated_at = ?5"
	    " WHERE qid = ?1",
	[S_ROW] = "SELECT qid, id, target, kind, state, priority, attempts,"
	    " max_attempts, blocked, not_before, lease_owner, lease_token,"
	    " lease_expires, created_at, updated_at, finished_at, last_error,"
	    " hash, paths, (SELECT payload FROM payloads p WHERE"
	    " p.qid = entries.qid), (SELECT json_group_array(dep_id) FROM"
	    " (SELECT dep_id FROM deps d WHERE d.qid = entries.qid"
	    " ORDER BY dep_id)) FROM entries WHERE qid = ?1",
	[S_GETSTATE] = "SELECT qid, state, lease_token, lease_owner,"
	    " attempts, max_attempts, paths FROM entries WHERE id = ?1",
	[S_LAND] = "UPDATE entries SET state = 'landed', lease_owner = NULL,"
	    " lease_token = NULL, lease_expires = NULL, finished_at = ?2,"
	    " updated_at = ?2, last_error = NULL WHERE qid = ?1",
	[S_DEPENDENT] = "SELECT 1 FROM deps WHERE dep_id = ?1 LIMIT 1",
	[S_UNBLOCK] = "UPDATE entries SET blocked = blocked - 1 WHERE qid IN"
	    " (SELECT qid FROM deps WHERE dep_id = ?1) AND blocked > 0",
	[S_FAIL] = "UPDATE entries SET state = ?2, lease_owner = NULL,"
	    " lease_token = NULL, lease_expires = NULL, not_before = ?3,"
	    " updated_at = ?4, finished_at = ?5, last_error = ?6"
	    " WHERE qid = ?1",
	[S_EXTEND] = "UPDATE entries SET lease_expires = ?2, updated_at = ?3"
	    " WHERE qid = ?1",
	[S_STAT] = "INSERT INTO stats (name, value) VALUES (?1, ?2)"
	    " ON CONFLICT (name) DO UPDATE SET value = value + ?2",
	/*
	 * Named, since without statistics SQLite takes entries_state and
	 * reads every waiting entry of the target, at each lease.
	 */
	[S_ANY_WAITING] = "SELECT 1 FROM entries INDEXED BY entries_waiting"
	    " WHERE target = ?1 AND state IN ('queued', 'failed') AND"
	    " blocked > 0 LIMIT 1",
	[S_READY_P] = "SELECT qid, created_at, not_before, state, id, priority"
	    " FROM entries WHERE target = ?1 AND state IN ('queued', 'failed')"
	    " AND blocked = 0 AND not_before <= ?2 ORDER BY priority DESC, qid"
	    " LIMIT ?3",
	[S_WAITING] = "SELECT qid, created_at, not_before, state, id, priority"
	    " FROM entries WHERE target = ?1 AND state IN ('queued', 'failed')"
	    " AND blocked > 0 AND not_before <= ?2 ORDER BY priority DESC, qid"
	    " LIMIT ?3",
	[S_DEPS_OPEN] = "SELECT dep_id FROM deps d WHERE d.qid = ?1 AND NOT"
	    " EXISTS (SELECT 1 FROM entries e WHERE e.id = d.dep_id AND"
	    " e.state = 'landed') AND NOT EXISTS (SELECT 1 FROM tombstones t"
	    " WHERE t.id = d.dep_id AND t.state = 'landed')",
	/* Prepared once: parsing them for every transaction shows up. */
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
};

struct wf_queue {
	sqlite3 *db;
	char *path;
	struct wf_queue_opts opts;
	char actor[64];
	sqlite3_stmt *stmt[NSTMT];
	uint64_t busy_retries, busy_flushed;
	int64_t busy_start;
	uint64_t rng;
};

int64_t
wf_queue_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
rnd(struct wf_queue *q)
{
	/* xorshift64*: jitter only, never secrets. */
	q->rng ^= q->rng >> 12;
	q->rng ^= q->rng << 25;
	q->rng ^= q->rng >> 27;
	return q->rng * 2685821657736338717ULL;
}

static int
db_error(struct wf_queue *q, int rc, const char *what)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return wf_error_set(WF_EBUSY, "queue '%s' is busy: %s", q->path,
		    what);
	if (rc == SQLITE_NOMEM)
		return wf_error_oom();
	return wf_error_set(WF_EOS, "queue '%s': %s: %s", q->path, what,
	    sqlite3_errmsg(q->db));
}

/*
 * Wait out a lock with jittered exponential backoff (1 ms doubling to
 * 64 ms, each sleep a random fraction of that), up to the busy timeout.
 */
static int
busy_cb(void *p, int count)
{
	struct wf_queue *q = p;
	int64_t now = wf_clock_ms(), cap;
	struct timespec ts;
	uint64_t ms;

	if (count == 0)
		q->busy_start = now;
	else if (now - q->busy_start >= q->opts.busy_timeout_ms)
		return 0;
	cap = (int64_t)1 << (count < 6 ? count : 6);
	ms = 1 + rnd(q) % (uint64_t)cap;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(ms * 1000000);
	nanosleep(&ts, NULL);
	q->busy_retries++;
	return 1;
}

static int
get_stmt(sqlite3_stmt **out, struct wf_queue *q, enum stmt s)
{
	int rc;

	if (!q->stmt[s]) {
		rc = sqlite3_prepare_v3(q->db, stmt_sql[s], -1,
		    SQLITE_PREPARE_PERSISTENT, &q->stmt[s], NULL);
		if (rc != SQLITE_OK)
			return db_error(q, rc, "cannot prepare a statement");
	}
	sqlite3_reset(q->stmt[s]);
	sqlite3_clear_bindings(q->stmt[s]);
	*out = q->stmt[s];
	return 0;
}

int
wf_queue_explain(struct wf_queue *q,
    int (*fn)(const char *sql, const char *plan, void *arg), void *arg)
{
	sqlite3_stmt *st;
	char *sql, *plan;
	int i, rc, error = 0;

	for (i = 0; i < NSTMT && error == 0; i++) {
		if (i == S_BEGIN || i == S_COMMIT)
			continue;
		if (!(sql = wf_str_printf("EXPLAIN QUERY PLAN %s",
		    stmt_sql[i])))
			return wf_error_oom();
		rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
		free(sql);
		if (rc != SQLITE_OK)
			return db_error(q, rc, "cannot explain a statement");
		plan = NULL;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st,
			    3);
			char *np = wf_str_printf("%s%s%s", plan ? plan : "",
			    plan ? "; " : "", d ? d : "");

			free(plan);
			if (!(plan = np)) {
				sqlite3_finalize(st);
				return wf_error_oom();
			}
		}
		if (rc != SQLITE_DONE)
			error = db_error(q, rc, "cannot explain a statement");
		else
			error = fn(stmt_sql[i], plan ? plan : "", arg);
		sqlite3_finalize(st);
		free(plan);
	}
	return error;
}

static int
exec(struct wf_queue *q, const char *sql)
{
	int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_error(q, rc, sql);
}

/* Step a statement that returns no row (or ignores them). */
static int
step_done(struct wf_queue *q, sqlite3_stmt *st, const char *what)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return db_error(q, rc, what);
	return 0;
}

static int
begin(struct wf_queue *q)
{
	sqlite3_stmt *st;
	int error;

	if ((error = get_stmt(&st, q, S_BEGIN)) < 0)
		return error;
	error = step_done(q, st, "BEGIN IMMEDIATE");
	sqlite3_reset(st);
	return error;
}

static int
commit(struct wf_queue *q)
{
	int error;
	sqlite3_stmt *st;

	/* Busy retries are counted into the database with each write. */
	if (q->busy_retries > q->busy_flushed) {
		if ((error = get_stmt(&st, q, S_STAT)) < 0)
			return error;
		sqlite3_bind_text(st, 1, "busy_retries", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2,
		    (sqlite3_int64)(q->busy_retries - q->busy_flushed));
		if ((error = step_done(q, st, "cannot count retries")) < 0)
			return error;
		q->busy_flushed = q->busy_retries;
	}
	if ((error = get_stmt(&st, q, S_COMMIT)) < 0)
		return error;
	error = step_done(q, st, "COMMIT");
	sqlite3_reset(st);
	return error;
}

static void
rollback(struct wf_queue *q)
{
	if (!sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
migrate(struct wf_queue *q)
{
	sqlite3_stmt *st = NULL;
	int version, error, rc;
	char sql[64];

	if ((error = begin(q)) < 0)
		return error;
	rc = sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		error = db_error(q, rc == SQLITE_OK ? sqlite3_errcode(q->db) : rc,
		    "cannot read the schema version");
		goto out;
	}
	version = sqlite3_column_int(st, 0);
	if (version < 0 || (size_t)version > NMIGRATIONS) {
		error = wf_error_set(WF_EINPUT, "queue '%s' has schema version "
		    "%d, newer than this wf (%d): upgrade wf", q->path, version,
		    (int)NMIGRATIONS);
		goto out;
	}
	for (; (size_t)version < NMIGRATIONS; version++) {
		if ((error = exec(q, migration[version])) < 0)
			goto out;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    version + 1);
		if ((error = exec(q, sql)) < 0)
			goto out;
	}
	error = 0;
out:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(q);
	else
		error = commit(q);
	return error;
}

int
wf_queue_open(struct wf_queue **out, const char *path,
    const struct wf_queue_opts *opts)
{
	static const struct wf_queue_opts defaults = WF_QUEUE_OPTS_INIT;
	struct wf_queue *q;
	uint64_t seed = 0;
	int rc, error;

	*out = NULL;
	if (!(q = calloc(1, sizeof(*q))) || !(q->path = strdup(path))) {
		free(q);
		return wf_error_oom();
	}
	q->opts = opts ? *opts : defaults;
	if (q->opts.max_attempts <= 0)
		q->opts.max_attempts = defaults.max_attempts;
	if (q->opts.backoff_ms < 0)
		q->opts.backoff_ms = 0;
	if (q->opts.backoff_max_ms < q->opts.backoff_ms)
		q->opts.backoff_max_ms = q->opts.backoff_ms;
	if (q->opts.busy_timeout_ms <= 0)
		q->opts.busy_timeout_ms = defaults.busy_timeout_ms;
	snprintf(q->actor, sizeof(q->actor), "%s", q->opts.actor ?
	    q->opts.actor : "");
	if (!q->opts.actor)
		snprintf(q->actor, sizeof(q->actor), "pid %ld", (long)getpid());
	q->opts.actor = NULL;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)wf_queue_now() ^ ((uint64_t)getpid() << 32);
	q->rng = seed | 1;
	if ((error = wf_path_mkdir_parent(path)) < 0)
		goto out;
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		error = wf_error_set(WF_EOS, "cannot open queue '%s': %s", path,
		    q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_extended_result_codes(q->db, 0);
	sqlite3_busy_handler(q->db, busy_cb, q);
	if ((rc = wf_db_wal(q->db, q->opts.busy_timeout_ms)) != SQLITE_OK) {
		error = db_error(q, rc, "PRAGMA journal_mode = WAL");
		goto out;
	}
	/* The next connection to close checkpoints what this one wrote. */
	if (q->opts.no_checkpoint && sqlite3_db_config(q->db,
	    SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK) {
		error = db_error(q, sqlite3_errcode(q->db), "cannot configure "
		    "the database");
		goto out;
	}
	if ((error = exec(q, q->opts.durable ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL")) < 0 ||
	    (error = exec(q, "PRAGMA foreign_keys = ON")) < 0)
		goto out;
	if ((error = migrate(q)) < 0)
		goto out;
	*out = q;
	q = NULL;
	error = 0;
out:
	if (error == WF_EOS && strstr(wf_error_last(), "not a database"))
		error = wf_error_set(WF_EOS, "'%s' is not a queue database",
		    path);
	wf_queue_free(q);
	return error;
}

void
wf_queue_free(struct wf_queue *q)
{
	size_t i;

	if (!q)
		return;
	for (i = 0; i < NSTMT; i++)
		sqlite3_finalize(q->stmt[i]);
	sqlite3_close(q->db);
	free(q->path);
	free(q);
}

uint64_t
wf_queue_busy_retries(const struct wf_queue *q)
{
	return q->busy_retries;
}

int
wf_queue_default_path(char **out, git_repository *repo)
{
	const char *dir = git_repository_commondir(repo);
	size_t n;

	*out = NULL;
	if (!dir)
		return wf_error_set(WF_EOS, "repository has no git directory");
	n = strlen(dir) + sizeof("/wf/queue.db");
	if (!(*out = malloc(n)))
		return wf_error_oom();
	snprintf(*out, n, "%s%swf/queue.db", dir,
	    dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/");
	return 0;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void
civil(int64_t days, int *y, int *m, int *d)
{
	int64_t z = days + 719468, era = z / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static void
put_digits(char *p, int v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * A time as UTC ISO 8601 with milliseconds into buf[80].  Written by
 * hand: strftime and snprintf were a tenth of a lease's instructions.
 * Times outside years 0-9999 keep the libc path.
 */
static char *
fmt_time(char *buf, int64_t ms)
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);
	int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
	int y, mo, d;
	size_t n;

	if (ms >= 0 && ms < INT64_C(253402300800000)) {
		civil(days, &y, &mo, &d);
		memcpy(buf, "0000-00-00T00:00:00.000Z", 25);
		put_digits(buf, y, 4);
		put_digits(buf + 5, mo, 2);
		put_digits(buf + 8, d, 2);
		put_digits(buf + 11, (int)(rem / 3600), 2);
		put_digits(buf + 14, (int)(rem / 60 % 60), 2);
		put_digits(buf + 17, (int)(rem % 60), 2);
		put_digits(buf + 20, (int)(ms % 1000), 3);
		return buf;
	}
	gmtime_r(&t, &tm);
	n = strftime(buf, 60, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 80 - n, ".%03dZ", (int)(ms % 1000));
	return buf;
}

/* A time as UTC ISO 8601 with milliseconds, or JSON null. */
static json_t *
time_json(sqlite3_stmt *st, int col)
{
	char buf[80];

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	return json_string(fmt_time(buf, sqlite3_column_int64(st, col)));
}

static json_t *
text_json(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s ? json_string((const char *)s) : json_null();
}

static json_t *fast_parse(const char *text, size_t len);

static json_t *
parsed_json(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);
	json_error_t err;
	json_t *v;

	if (s && s[0] == '[' && s[1] == ']' && !s[2])
		return json_array();
	if (!s)
		return json_null();
	if ((v = fast_parse(s, (size_t)sqlite3_column_bytes(st, col))))
		return v;
	return json_loads(s, 0, &err);
}

/* Whether s[0..n) is all ASCII, eight bytes at a time. */
static int
is_ascii(const char *s, size_t n)
{
	uint64_t w, acc = 0;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)s[i];
	return !(acc & 0x8080808080808080ull);
}

/* How row_json() gives the payload. */
enum payload { PAYLOAD_NONE, PAYLOAD_PARSED, PAYLOAD_TEXT };

static json_t *
payload_json(sqlite3_stmt *st, int col, enum payload how)
{
	const char *s;
	size_t n;

	if (how == PAYLOAD_PARSED)
		return parsed_json(st, col);
	s = (const char *)sqlite3_column_text(st, col);
	n = (size_t)sqlite3_column_bytes(st, col);
	/* jansson checks UTF-8 a byte at a time: not for ASCII. */
	return is_ascii(s, n) ? json_stringn_nocheck(s, n) :
	    json_stringn(s, n);
}

/* The entry at queue id `qid` as JSON, with "payload" as `with_payload`. */
static int
row_json(json_t **out, struct wf_queue *q, int64_t qid,
    enum payload with_payload)
{
	sqlite3_stmt *st;
	json_t *v;
	int error, rc;

	*out = NULL;
	if ((error = get_stmt(&st, q, S_ROW)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, qid);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		error = rc == SQLITE_DONE ? wf_error_set(WF_ENOTFOUND,
		    "no entry %lld", (long long)qid) :
		    db_error(q, rc, "cannot read an entry");
		sqlite3_reset(st);
		return error;
	}
	v = json_object();
	if (!v ||
	    json_object_set_new(v, "queue_id",
	    json_integer(sqlite3_column_int64(st, 0))) < 0 ||
	    json_object_set_new(v, "id", text_json(st, 1)) < 0 ||
	    json_object_set_new(v, "target", text_json(st, 2)) < 0 ||
	    json_object_set_new(v, "kind", text_json(st, 3)) < 0 ||
	    json_object_set_new(v, "state", text_json(st, 4)) < 0 ||
	    json_object_set_new(v, "priority",
	    json_integer(sqlite3_column_int64(st, 5))) < 0 ||
	    json_object_set_new(v, "attempts",
	    json_integer(sqlite3_column_int64(st, 6))) < 0 ||
	    json_object_set_new(v, "max_attempts",
	    json_integer(sqlite3_column_int64(st, 7))) < 0 ||
	    json_object_set_new(v, "blocked",
	    json_integer(sqlite3_column_int64(st, 8))) < 0 ||
	    json_object_set_new(v, "depends_on", parsed_json(st, 20)) < 0 ||
	    json_object_set_new(v, "not_before", sqlite3_column_int64(st, 9) ?
	    time_json(st, 9) : json_null()) < 0 ||
	    json_object_set_new(v, "lease_owner", text_json(st, 10)) < 0 ||
	    json_object_set_new(v, "lease_token", text_json(st, 11)) < 0 ||
	    json_object_set_new(v, "lease_expires", time_json(st, 12)) < 0 ||
	    json_object_set_new(v, "created_at", time_json(st, 13)) < 0 ||
	    json_object_set_new(v, "updated_at", time_json(st, 14)) < 0 ||
	    json_object_set_new(v, "finished_at", time_json(st, 15)) < 0 ||
	    json_object_set_new(v, "last_error", text_json(st, 16)) < 0 ||
	    json_object_set_new(v, "hash", text_json(st, 17)) < 0 ||
	    json_object_set_new(v, "paths", parsed_json(st, 18)) < 0 ||
	    (with_payload != PAYLOAD_NONE && json_object_set_new(v,
	    "payload", payload_json(st, 19, with_payload)) < 0)) {
		json_decref(v);
		sqlite3_reset(st);
		return wf_error_oom();
	}
	sqlite3_reset(st);
	*out = v;
	return 0;
}

static int
audit(struct wf_queue *q, int64_t qid, const char *id, int64_t at,
    const char *from, const char *to, json_t *detail)
{
	sqlite3_stmt *st;
	char *s;
	int error;

	/* Every row says who, when, from, to and why. */
	if (!detail)
		return wf_error_oom();
	if (json_object_set_new(detail, "from", from ? json_string(from) :
	    json_null()) < 0 ||
	    json_object_set_new(detail, "to", to ? json_string(to) :
	    json_null()) < 0 || wf_json_dump(&s, NULL, detail, 0) < 0) {
		json_decref(detail);
		return wf_error_oom();
	}
	json_decref(detail);
	if ((error = get_stmt(&st, q, S_AUDIT)) < 0) {
		free(s);
		return error;
	}
	sqlite3_bind_int64(st, 1, qid);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, at);
	if (from)
		sqlite3_bind_text(st, 4, from, -1, SQLITE_STATIC);
	if (to)
		sqlite3_bind_text(st, 5, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, s, -1, free);
	return step_done(q, st, "cannot write the audit log");
}

/*
 * Audit details of the busy paths (enqueue, lease, landed) are written
 * as text: building them as jansson objects and dumping them cost more
 * than the INSERT.  The bytes are those audit() writes for the same
 * object.
 */
struct dtext {
	char *s;
	size_t len, cap;
	int failed;
};

static void
dt_put(struct dtext *t, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		for (cap = t->cap ? t->cap : 256; cap < t->len + n + 1; cap *= 2)
			;
		if (!(p = realloc(t->s, cap))) {
			t->failed = 1;
			return;
		}
		t->s = p;
		t->cap = cap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void
dt_cat(struct dtext *t, const char *s)
{
	dt_put(t, s, strlen(s));
}

/* UTF-8 as jansson accepts it: shortest forms, no surrogates. */
static int
utf8_valid(const unsigned char *s)
{
	unsigned char c, lo, hi;
	int n;

	while ((c = *s++)) {
		if (c < 0x80)
			continue;
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else
			return 0;
		if (*s < lo || *s > hi)
			return 0;
		for (s++; --n > 0; s++)
			if (*s < 0x80 || *s > 0xbf)
				return 0;
	}
	return 1;
}

/*
 * `s` as a JSON string, escaped as jansson's compact dump does.  Not
 * UTF-8: fails, as json_string() does.
 */
static void
dt_string(struct dtext *t, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *run = s;
	unsigned char c;

	if (!utf8_valid((const unsigned char *)s)) {
		t->failed = 1;
		return;
	}
	dt_put(t, "\"", 1);
	for (;; s++) {
		c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		dt_put(t, run, (size_t)(s - run));
		if (!c)
			break;
		switch (c) {
		case '"': dt_put(t, "\\\"", 2); break;
		case '\\': dt_put(t, "\\\\", 2); break;
		case '\b': dt_put(t, "\\b", 2); break;
		case '\f': dt_put(t, "\\f", 2); break;
		case '\n': dt_put(t, "\\n", 2); break;
		case '\r': dt_put(t, "\\r", 2); break;
		case '\t': dt_put(t, "\\t", 2); break;
		default: {
			char seq[6] = { '\\', 'u', '0', '0', hex[c >> 4],
			    hex[c & 0xf] };

			dt_put(t, seq, 6);
		}
		}
		run = s + 1;
	}
	dt_put(t, "\"", 1);
}

/*
 * The detail {"who", "when", "why", <extra>, "from", "to"} as text;
 * `extra` is members already serialised ("\"paths\":[...]") or NULL,
 * `who` NULL for the queue's actor, `from` and `to` NULL for null.  A
 * new malloc'ed string; NULL when out of memory or a string is not
 * UTF-8 (where json_pack() fails too).
 */
static char *
detail_text(struct wf_queue *q, const char *who, int64_t at,
    const char *why, const char *extra, const char *from, const char *to)
{
	struct dtext t = { NULL, 0, 0, 0 };
	char buf[80];

	dt_cat(&t, "{\"who\":");
	dt_string(&t, who ? who : q->actor);
	dt_cat(&t, ",\"when\":\"");
	dt_cat(&t, fmt_time(buf, at));
	dt_cat(&t, "\",\"why\":");
	dt_string(&t, why);
	if (extra) {
		dt_put(&t, ",", 1);
		dt_cat(&t, extra);
	}
	dt_cat(&t, ",\"from\":");
	if (from)
		dt_string(&t, from);
	else
		dt_cat(&t, "null");
	dt_cat(&t, ",\"to\":");
	if (to)
		dt_string(&t, to);
	else
		dt_cat(&t, "null");
	dt_put(&t, "}", 1);
	if (t.failed) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

/* As audit(), with the detail already as text (borrowed; NULL: OOM). */
static int
audit_text(struct wf_queue *q, int64_t qid, const char *id, int64_t at,
    const char *from, const char *to, const char *text)
{
	sqlite3_stmt *st;
	int error;

	if (!text)
		return wf_error_oom();
	if ((error = get_stmt(&st, q, S_AUDIT)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, qid);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, at);
	if (from)
		sqlite3_bind_text(st, 4, from, -1, SQLITE_STATIC);
	if (to)
		sqlite3_bind_text(st, 5, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, text, -1, SQLITE_STATIC);
	return step_done(q, st, "cannot write the audit log");
}

/* A detail object {"who", "when", "why"}; NULL when out of memory. */
static json_t *
detail(struct wf_queue *q, const char *who, int64_t at, const char *why)
{
	char buf[80];

	return json_pack("{s:s, s:s, s:s}", "who", who ? who : q->actor,
	    "when", fmt_time(buf, at), "why", why);
}

/*
 * A stream of changes going into the queue: one transaction, and per
 * change a compact record of what became of it, so a batch of a
 * hundred thousand costs no JSON until someone asks for it.
 */
struct added {
	size_t id;		/* offset of the id in b->ids */
	int64_t qid;		/* 0: archived */
	int64_t priority;
	int64_t position;	/* 0: not waiting; -1: counted after commit */
	char *error;		/* refused under keep_going */
	unsigned int target;	/* index in b->targets */
	unsigned char state;	/* index in state_names */
	unsigned char fresh, existing;
};

static const char *const state_names[] = { "queued", "leased", "landed",
    "failed", "dead" };

struct wf_queue_batch {
	struct wf_queue *q;
	int keep_going, open;
	int tombs;		/* any id archived (fixed under the lock) */
	int64_t now;
	char *audit_detail;
	struct added *a;
	size_t n, cap;
	char *ids;
	size_t ids_len, ids_cap;
	char **targets;
	unsigned int ntargets;
};

static unsigned char
state_index(const char *state)
{
	unsigned char i;

	for (i = 0; i < sizeof(state_names) / sizeof(*state_names); i++)
		if (strcmp(state, state_names[i]) == 0)
			return i;
	return 0;
}

static int
is_waiting(const char *state)
{
	return strcmp(state, "queued") == 0 || strcmp(state, "failed") == 0;
}

/* A new record for `c`, its id and target kept. */
static int
batch_record(struct added **out, struct wf_queue_batch *b,
    const struct wf_change *c)
{
	size_t len = strlen(c->id) + 1;
	struct added *a;
	unsigned int t;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;

		if (!(a = realloc(b->a, cap * sizeof(*a))))
			return wf_error_oom();
		b->a = a;
		b->cap = cap;
	}
	if (b->ids_cap - b->ids_len < len) {
		size_t cap = b->ids_cap ? b->ids_cap * 2 : 4096;
		char *s;

		while (cap - b->ids_len < len)
			cap *= 2;
		if (!(s = realloc(b->ids, cap)))
			return wf_error_oom();
		b->ids = s;
		b->ids_cap = cap;
	}
	/* Targets are few: the last one added is the likeliest. */
	for (t = b->ntargets; t > 0; t--)
		if (strcmp(b->targets[t - 1], c->target) == 0)
			break;
	if (t == 0) {
		char **ts = realloc(b->targets, (b->ntargets + 1) *
		    sizeof(*ts));

		if (!ts)
			return wf_error_oom();
		b->targets = ts;
		if (!(ts[b->ntargets] = strdup(c->target)))
			return wf_error_oom();
		t = ++b->ntargets;
	}
	a = &b->a[b->n++];
	memset(a, 0, sizeof(*a));
	a->id = b->ids_len;
	memcpy(b->ids + b->ids_len, c->id, len);
	b->ids_len += len;
	a->target = t - 1;
	a->priority = c->priority;
	*out = a;
	return 0;
}

static int
position_of(int64_t *out, struct wf_queue *q, const char *target,
    int64_t priority, int64_t qid)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = get_stmt(&st, q, S_POSITION)) < 0)
		return error;
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, priority);
	sqlite3_bind_int64(st, 3, qid);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		return db_error(q, rc, "cannot count the queue");
	*out = sqlite3_column_int64(st, 0) + 1;
	sqlite3_reset(st);
	return 0;
}

/* The waiting entries of `target` and `priority` with from <= qid < to. */
static int
position_span(int64_t *out, struct wf_queue *q, const char *target,
    int64_t priority, int64_t from, int64_t to)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = get_stmt(&st, q, S_POSITION_SPAN)) < 0)
		return error;
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, priority);
	sqlite3_bind_int64(st, 3, from);
	sqlite3_bind_int64(st, 4, to);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		return db_error(q, rc, "cannot count the queue");
	*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/*
 * An id already stored (in entries, or archived when `st` is S_TOMB's),
 * whose row `st` is on: the same content is a no-op.
 */
static int
enqueue_existing(struct added *a, sqlite3_stmt *st,
    const struct wf_change *c, const char *hex)
{
	int tomb = sqlite3_column_count(st) == 2, error;
	const char *h = (const char *)sqlite3_column_text(st, tomb ? 0 : 1);
	char state[16];

	snprintf(state, sizeof(state), "%s",
	    (const char *)sqlite3_column_text(st, tomb ? 1 : 2));
	if (strcmp(h, hex) != 0) {
		error = wf_error_set(WF_ECONFLICT, "request '%s': already "
		    "queued with different content (stored %.12s, "
		    "given %.12s)", c->id, h, hex);
		sqlite3_reset(st);
		return error;
	}
	a->qid = tomb ? 0 : sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	a->state = state_index(state);
	a->existing = 1;
	/* Its place is counted after the commit (count_positions()). */
	if (!tomb && is_waiting(state))
		a->position = -1;
	return 0;
}

/* Look `id` up with `which` (S_FIND or S_TOMB): 1 when found, *out on it. */
static int
find_id(sqlite3_stmt **out, struct wf_queue *q, const char *id,
    enum stmt which)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = get_stmt(&st, q, which)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = st;
		return 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_error(q, rc, "cannot look up an id");
	return 0;
}

/*
 * Enqueue one change inside the batch's transaction, filling in `a`.
 * The insert comes first and does nothing when the id is taken, so a
 * new id (the usual case) costs one index probe, not two.
 */
static int
enqueue_one(struct added *a, struct wf_queue_batch *b,
    const struct wf_change *c)
{
	struct wf_queue *q = b->q;
	char hex[GIT_OID_HEXSZ + 1];
	sqlite3_stmt *st;
	char *paths = NULL;
	size_t i;
	int error;

	wf_hash_hex(hex, &c->hash);
	if (b->tombs && (error = find_id(&st, q, c->id, S_TOMB)) != 0)
		return error < 0 ? error : enqueue_existing(a, st, c, hex);
	if ((!c->paths_text &&
	    (error = wf_json_dump(&paths, NULL, c->paths, 0)) < 0) ||
	    (error = get_stmt(&st, q, S_INSERT)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, wf_change_kind_name(c->kind), -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 4, hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->paths_text ? c->paths_text : paths, -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, c->priority);
	sqlite3_bind_int(st, 7, q->opts.max_attempts);
	sqlite3_bind_int64(st, 8, b->now);
	if ((error = step_done(q, st, "cannot insert an entry")) < 0)
		goto out;
	if (sqlite3_changes(q->db) == 0) {
		/* The id is taken. */
		if ((error = find_id(&st, q, c->id, S_FIND)) == 0)
			error = wf_error_set(WF_ERROR, "request '%s': its id "
			    "is taken but not found", c->id);
		if (error > 0)
			error = enqueue_existing(a, st, c, hex);
		goto out;
	}
	a->qid = sqlite3_last_insert_rowid(q->db);
	if ((error = get_stmt(&st, q, S_PAYLOAD)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, a->qid);
	sqlite3_bind_text(st, 2, c->text, c->text_len > 0 &&
	    c->text_len <= INT_MAX ? (int)c->text_len : -1, SQLITE_STATIC);
	if ((error = step_done(q, st, "cannot insert a payload")) < 0)
		goto out;
	if (c->ndepends > 0) {
		for (i = 0; i < c->ndepends; i++) {
			if ((error = get_stmt(&st, q, S_DEP)) < 0)
				goto out;
			sqlite3_bind_int64(st, 1, a->qid);
			sqlite3_bind_text(st, 2, c->depends_on[i], -1,
			    SQLITE_STATIC);
			if ((error = step_done(q, st, "cannot insert a "
			    "dependency")) < 0)
				goto out;
		}
		if ((error = get_stmt(&st, q, S_BLOCKED)) < 0)
			goto out;
		sqlite3_bind_int64(st, 1, a->qid);
		if ((error = step_done(q, st, "cannot count dependencies")) < 0)
			goto out;
	}
	if ((error = audit_text(q, a->qid, c->id, b->now, NULL, "queued",
	    b->audit_detail)) < 0)
		goto out;
	a->fresh = 1;
	a->position = -1;
	error = 0;
out:
	free(paths);
	return error;
}

/* 1 when any id is archived, inside the caller's transaction. */
static int
have_tombstones(struct wf_queue *q)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(q->db, "SELECT 1 FROM tombstones LIMIT 1",
	    -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		rc = 1;
	else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = db_error(q, rc, "cannot look for tombstones");
	sqlite3_finalize(st);
	return rc;
}

int
wf_queue_batch_begin(struct wf_queue_batch **out, struct wf_queue *q,
    int keep_going)
{
	struct wf_queue_batch *b;
	int error;

	*out = NULL;
	if (!(b = calloc(1, sizeof(*b))))
		return wf_error_oom();
	b->q = q;
	b->keep_going = keep_going;
	b->now = wf_queue_now();
	/* Every entry of a batch has the same audit detail. */
	if (!(b->audit_detail = detail_text(q, NULL, b->now, "enqueue", NULL,
	    NULL, "queued"))) {
		error = wf_error_oom();
		goto fail;
	}
	if ((error = begin(q)) < 0)
		goto fail;
	b->open = 1;
	if ((error = b->tombs = have_tombstones(q)) < 0)
		goto fail;
	*out = b;
	return 0;
fail:
	wf_queue_batch_free(b);
	return error;
}

int
wf_queue_batch_add(struct wf_queue_batch *b, const struct wf_change *c)
{
	struct added *a = NULL;
	int error, e;

	if (!b->open)
		return wf_error_set(WF_ERROR, "the batch is closed");
	if ((error = batch_record(&a, b, c)) < 0)
		return error;
	if (b->keep_going && (error = exec(b->q, "SAVEPOINT one")) < 0)
		goto undo;
	error = enqueue_one(a, b, c);
	if (error == WF_ECONFLICT && b->keep_going) {
		if ((e = exec(b->q, "ROLLBACK TO one")) < 0) {
			error = e;
			goto undo;
		}
		if (!(a->error = strdup(wf_error_last()))) {
			error = wf_error_oom();
			goto undo;
		}
		wf_error_set(WF_ECONFLICT, "%s", a->error);
		a->fresh = a->existing = 0;
		a->position = 0;
	} else if (error < 0) {
		goto undo;
	}
	if (b->keep_going && (e = exec(b->q, "RELEASE one")) < 0) {
		error = e;
		goto undo;
	}
	return error;
undo:
	/* The batch cannot go on: nothing of it will be committed. */
	b->n--;
	b->ids_len = b->a[b->n].id;
	free(b->a[b->n].error);
	return error;
}

static int
by_place(const void *x, const void *y)
{
	const struct added *a = *(struct added *const *)x;
	const struct added *b = *(struct added *const *)y;

	if (a->target != b->target)
		return a->target < b->target ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return a->qid < b->qid ? -1 : a->qid > b->qid;
}

/*
 * The places of the waiting entries of a committed batch, new or
 * there already: told, not kept, and counted after the commit, so no
 * write lock is held for them.  In queue order, the first of each
 * (target, priority) is counted and each later one is the one before
 * plus the waiting entries between them, so a batch walks the queue
 * ahead of it once, not once per entry.  One read transaction, so every
 * count sees the same queue; a place that cannot be counted is left
 * unknown (0).
 */
static void
count_positions(struct wf_queue_batch *b)
{
	struct added **v, *prev = NULL;
	size_t n = 0, i;
	int64_t span = 0;

	for (i = 0; i < b->n; i++)
		n += b->a[i].position == -1;
	if (n == 0)
		return;
	if (!(v = malloc(n * sizeof(*v))) ||
	    sqlite3_exec(b->q->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		free(v);
		for (i = 0; i < b->n; i++)
			if (b->a[i].position == -1)
				b->a[i].position = 0;
		return;
	}
	for (i = 0, n = 0; i < b->n; i++)
		if (b->a[i].position == -1)
			v[n++] = &b->a[i];
	qsort(v, n, sizeof(*v), by_place);
	for (i = 0; i < n; i++) {
		struct added *a = v[i];
		const char *target = b->targets[a->target];

		if (prev && prev->position > 0 && prev->target == a->target &&
		    prev->priority == a->priority) {
			if (position_span(&span, b->q, target, a->priority,
			    prev->qid, a->qid) < 0)
				a->position = 0;
			else
				a->position = prev->position + span;
		} else if (position_of(&a->position, b->q, target,
		    a->priority, a->qid) < 0)
			a->position = 0;
		prev = a;
	}
	rollback(b->q);
	free(v);
}

int
wf_queue_batch_commit(struct wf_queue_batch *b)
{
	int error;

	if (!b->open)
		return wf_error_set(WF_ERROR, "the batch is closed");
	if ((error = commit(b->q)) < 0)
		return error;
	b->open = 0;
	count_positions(b);
	return 0;
}

size_t
wf_queue_batch_count(const struct wf_queue_batch *b)
{
	return b->n;
}

void
wf_queue_batch_get(struct wf_queue_added *out, const struct wf_queue_batch *b,
    size_t i)
{
	const struct added *a = &b->a[i];

	out->id = b->ids + a->id;
	out->queue_id = a->qid;
	out->state = state_names[a->state];
	out->position = a->position;
	out->existing = a->existing;
	out->error = a->error;
}

void
wf_queue_batch_free(struct wf_queue_batch *b)
{
	size_t i;

	if (!b)
		return;
	if (b->open)
		rollback(b->q);
	for (i = 0; i < b->n; i++)
		free(b->a[i].error);
	for (i = 0; i < b->ntargets; i++)
		free(b->targets[i]);
	free(b->targets);
	free(b->a);
	free(b->ids);
	free(b->audit_detail);
	free(b);
}

/* {"id", "queue_id", "state", "position", "existing"} or {"id", "error"}. */
json_t *
wf_queue_added_json(const struct wf_queue_added *a)
{
	if (a->error)
		return json_pack("{s:s, s:s}", "id", a->id, "error", a->error);
	return json_pack("{s:s, s:o, s:s, s:o, s:b}", "id", a->id,
	    "queue_id", a->queue_id ? json_integer(a->queue_id) : json_null(),
	    "state", a->state,
	    "position", a->position ? json_integer(a->position) : json_null(),
	    "existing", a->existing);
}

int
wf_queue_enqueue(json_t **out, size_t *bad, struct wf_queue *q,
    struct wf_change *const *changes, size_t n, int keep_going)
{
	struct wf_queue_batch *b = NULL;
	struct wf_queue_added a;
	json_t *arr = NULL, *item;
	size_t i, unused;
	int error;

	*out = NULL;
	if (!bad)
		bad = &unused;
	*bad = n;
	if ((error = wf_queue_batch_begin(&b, q, keep_going)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		error = wf_queue_batch_add(b, changes[i]);
		if (error == WF_ECONFLICT && keep_going)
			continue;
		if (error < 0) {
			if (error == WF_ECONFLICT)
				*bad = i;
			goto out;
		}
	}
	if ((error = wf_queue_batch_commit(b)) < 0)
		goto out;
	if (!(arr = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < wf_queue_batch_count(b); i++) {
		wf_queue_batch_get(&a, b, i);
		if (!(item = wf_queue_added_json(&a)) ||
		    json_array_append_new(arr, item) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	*out = arr;
	arr = NULL;
	error = 0;
out:
	wf_queue_batch_free(b);
	json_decref(arr);
	return error;
}

static int
new_token(char *out, struct wf_queue *q)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t i;

	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		uint64_t x = rnd(q), y = rnd(q);

		memcpy(b, &x, 8);
		memcpy(b + 8, &y, 8);
	}
	for (i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 0xf];
	}
	out[2 * sizeof(b)] = '\0';
	return 0;
}

/* Expired leases back to queued (or dead), inside a transaction. */
static int
reclaim(size_t *count, struct wf_queue *q, int64_t now)
{
	sqlite3_stmt *st;
	struct item {
		int64_t qid;
		int dead;
		char *id, *owner;
	} *items = NULL;
	size_t n = 0, cap = 0, i;
	int error, rc;

	*count = 0;
	if ((error = get_stmt(&st, q, S_RECLAIM_SEL)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *owner = (const char *)sqlite3_column_text(st, 4);

		if (n == cap) {
			struct item *p = realloc(items, (cap = cap ? cap * 2 :
			    8) * sizeof(*items));

			if (!p) {
				error = wf_error_oom();
				goto out;
			}
			items = p;
		}
		items[n].qid = sqlite3_column_int64(st, 0);
		items[n].dead = sqlite3_column_int64(st, 2) >=
		    sqlite3_column_int64(st, 3);
		items[n].id = strdup((const char *)sqlite3_column_text(st, 1));
		items[n].owner = strdup(owner ? owner : "");
		if (!items[n].id || !items[n].owner) {
			free(items[n].id);
			free(items[n].owner);
			error = wf_error_oom();
			goto out;
		}
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot find expired leases");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *to = items[i].dead ? "dead" : "queued";
		json_t *d;

		if ((error = get_stmt(&st, q, S_FAIL)) < 0)
			goto out;
		sqlite3_bind_int64(st, 1, items[i].qid);
		sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, 0);
		sqlite3_bind_int64(st, 4, now);
		if (items[i].dead)
			sqlite3_bind_int64(st, 5, now);
		sqlite3_bind_text(st, 6, "lease expired", -1, SQLITE_STATIC);
		if ((error = step_done(q, st, "cannot reclaim a lease")) < 0)
			goto out;
		d = detail(q, NULL, now, "lease expired");
		if (d && json_object_set_new(d, "lease_owner",
		    json_string(items[i].owner)) < 0) {
			json_decref(d);
			d = NULL;
		}
		if ((error = audit(q, items[i].qid, items[i].id, now, "leased",
		    to, d)) < 0)
			goto out;
	}
	*count = n;
	error = 0;
out:
	for (i = 0; i < n; i++) {
		free(items[i].id);
		free(items[i].owner);
	}
	free(items);
	return error;
}

int
wf_queue_reclaim(size_t *count, struct wf_queue *q)
{
	size_t n = 0;
	int error;

	if (count)
		*count = 0;
	if ((error = begin(q)) < 0)
		return error;
	if ((error = reclaim(&n, q, wf_queue_now())) < 0 ||
	    (error = commit(q)) < 0) {
		rollback(q);
		return error;
	}
	if (count)
		*count = n;
	return 0;
}

/* Is `id` one of ids[0..n)? */
static int
in_ids(char *const *ids, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

static int
in_qids(const int64_t *qids, size_t n, int64_t qid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (qids[i] == qid)
			return 1;
	return 0;
}

/*
 * Are all the dependencies that have not landed of the entry in row
 * `st` (column 0 its qid) among ids[0..n)?  1 yes, 0 no, <0 error.
 */
static int
deps_taken(struct wf_queue *q, sqlite3_stmt *st, char *const *ids, size_t n)
{
	sqlite3_stmt *deps;
	int error, rc, all = 1;

	if ((error = get_stmt(&deps, q, S_DEPS_OPEN)) < 0)
		return error;
	sqlite3_bind_int64(deps, 1, sqlite3_column_int64(st, 0));
	while ((rc = sqlite3_step(deps)) == SQLITE_ROW)
		if (!in_ids(ids, n, (const char *)sqlite3_column_text(deps,
		    0))) {
			all = 0;
			break;
		}
	sqlite3_reset(deps);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(q, rc, "cannot read dependencies");
	return all;
}

/* Add the entry of row `st` (qid, created_at, not_before, state, id). */
static int
take_row(struct wf_queue *q, sqlite3_stmt *st, int64_t now, int64_t *qids,
    char **ids, char *was_failed, size_t *n, int64_t *latency)
{
	int64_t from = sqlite3_column_int64(st, 2);

	(void)q;
	if (from < sqlite3_column_int64(st, 1))
		from = sqlite3_column_int64(st, 1);
	*latency += now - from;
	was_failed[*n] = sqlite3_column_text(st, 3)[0] == 'f';
	qids[*n] = sqlite3_column_int64(st, 0);
	if (!(ids[*n] = strdup((const char *)sqlite3_column_text(st, 4))))
		return wf_error_oom();
	(*n)++;
	return 0;
}

/*
 * Choose what to lease when some entries of the target wait on others:
 * walk the ready and the waiting entries together in queue order
 * (priority, then first in first out), taking each ready one and each
 * waiting one whose dependencies that have not landed are all taken
 * already (a series: each builds on the one before, and lands in the
 * same batch, in order).  The lander drops a change whose dependency
 * does not make it.  At most FOLLOW_SCAN waiting entries are looked at.
 */
#define FOLLOW_SCAN 256

static int
lease_walk(struct wf_queue *q, const char *target, int64_t now, size_t max,
    int64_t *qids, char **ids, char *was_failed, size_t *n,
    int64_t *latency)
{
	sqlite3_stmt *ready = NULL, *wait = NULL;
	int rr, wr, error = 0, progress;

	if ((error = get_stmt(&ready, q, S_READY_P)) < 0 ||
	    (error = get_stmt(&wait, q, S_WAITING)) < 0)
		return error;
	sqlite3_bind_text(ready, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ready, 2, now);
	sqlite3_bind_int64(ready, 3, (sqlite3_int64)max);
	sqlite3_bind_text(wait, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(wait, 2, now);
	sqlite3_bind_int64(wait, 3, FOLLOW_SCAN);
	rr = sqlite3_step(ready);
	wr = sqlite3_step(wait);
	while (*n < max && (rr == SQLITE_ROW || wr == SQLITE_ROW)) {
		sqlite3_stmt *st;
		int take = 1;

		if (rr == SQLITE_ROW && wr == SQLITE_ROW) {
			int64_t rq = sqlite3_column_int64(ready, 0);
			int64_t wq = sqlite3_column_int64(wait, 0);
			int64_t rp = sqlite3_column_int64(ready, 5);
			int64_t wp = sqlite3_column_int64(wait, 5);

			st = rp > wp || (rp == wp && rq < wq) ? ready : wait;
		} else {
			st = rr == SQLITE_ROW ? ready : wait;
		}
		if (st == wait && (take = deps_taken(q, wait, ids, *n)) < 0) {
			error = take;
			goto out;
		}
		if (take && (error = take_row(q, st, now, qids, ids,
		    was_failed, n, latency)) < 0)
			goto out;
		if (st == ready)
			rr = sqlite3_step(ready);
		else
			wr = sqlite3_step(wait);
	}
	if ((rr != SQLITE_ROW && rr != SQLITE_DONE) ||
	    (wr != SQLITE_ROW && wr != SQLITE_DONE)) {
		error = db_error(q, rr != SQLITE_ROW && rr != SQLITE_DONE ?
		    rr : wr, "cannot find entries to lease");
		goto out;
	}
	/*
	 * Entries queued before what they wait on (a higher priority, or
	 * a dependency enqueued later) follow it, after it.
	 */
	for (progress = 1; progress && *n < max;) {
		progress = 0;
		sqlite3_reset(wait);
		while (*n < max && (wr = sqlite3_step(wait)) == SQLITE_ROW) {
			int take;

			if (in_qids(qids, *n, sqlite3_column_int64(wait, 0)))
				continue;
			if ((take = deps_taken(q, wait, ids, *n)) < 0) {
				error = take;
				goto out;
			}
			if (take && (error = take_row(q, wait, now, qids, ids,
			    was_failed, n, latency)) < 0)
				goto out;
			progress |= take;
		}
		if (wr != SQLITE_ROW && wr != SQLITE_DONE) {
			error = db_error(q, wr, "cannot find entries to lease");
			goto out;
		}
	}
out:
	sqlite3_reset(ready);
	sqlite3_reset(wait);
	return error;
}

/* Any entry of `target` waiting on others?  1 yes, 0 no, <0 error. */
static int
any_waiting(struct wf_queue *q, const char *target)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = get_stmt(&st, q, S_ANY_WAITING)) < 0)
		return error;
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(q, rc, "cannot find entries to lease");
	return rc == SQLITE_ROW;
}

int
wf_queue_lease(json_t **out, struct wf_queue *q, const char *target,
    size_t max, const char *owner, int64_t lease_ms)
{
	sqlite3_stmt *st;
	json_t *arr = NULL, *v;
	int64_t now = wf_queue_now(), *qids = NULL, latency = 0;
	char *was_failed = NULL, **ids = NULL, *lease_detail[2] = { NULL, NULL };
	size_t n = 0, i, reclaimed;
	int error, rc;

	*out = NULL;
	if (!owner || !*owner)
		return wf_error_set(WF_EINPUT, "a lease needs an owner");
	if (lease_ms <= 0)
		return wf_error_set(WF_EINPUT, "a lease needs a positive "
		    "duration");
	if (!(arr = json_array()) ||
	    !(qids = calloc(max ? max : 1, sizeof(*qids))) ||
	    !(was_failed = calloc(max ? max : 1, 1)) ||
	    !(ids = calloc(max ? max : 1, sizeof(*ids)))) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = begin(q)) < 0)
		goto out;
	if ((error = reclaim(&reclaimed, q, now)) < 0)
		goto out;
	if ((error = any_waiting(q, target)) < 0)
		goto out;
	if (error == 1) {
		if ((error = lease_walk(q, target, now, max, qids, ids,
		    was_failed, &n, &latency)) < 0)
			goto out;
		goto chosen;
	}
	if ((error = get_stmt(&st, q, S_READY)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t from = sqlite3_column_int64(st, 2);

		if (from < sqlite3_column_int64(st, 1))
			from = sqlite3_column_int64(st, 1);
		latency += now - from;
		was_failed[n] = sqlite3_column_text(st, 3)[0] == 'f';
		qids[n] = sqlite3_column_int64(st, 0);
		if (!(ids[n++] = strdup((const char *)
		    sqlite3_column_text(st, 4)))) {
			sqlite3_reset(st);
			error = wf_error_oom();
			goto out;
		}
	}
	sqlite3_reset(st);
	if (n < max && rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot find entries to lease");
		goto out;
	}
chosen:
	for (i = 0; i < n; i++) {
		char token[33];
		const char *from;
		size_t k;

		new_token(token, q);
		if ((error = get_stmt(&st, q, S_LEASE)) < 0)
			goto out;
		sqlite3_bind_int64(st, 1, qids[i]);
		sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, token, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, now + lease_ms);
		sqlite3_bind_int64(st, 5, now);
		if ((error = step_done(q, st, "cannot lease an entry")) < 0)
			goto out;
		if (sqlite3_changes(q->db) != 1) {
			error = wf_error_set(WF_EOS, "queue '%s': cannot lease "
			    "entry '%s': it is gone", q->path, ids[i]);
			goto out;
		}
		/* One detail per lease and "from" state: owner and time agree. */
		k = was_failed[i] != 0;
		from = k ? "failed" : "queued";
		if (!lease_detail[k] && !(lease_detail[k] = detail_text(q, owner,
		    now, "lease", NULL, from, "leased"))) {
			error = wf_error_oom();
			goto out;
		}
		if ((error = audit_text(q, qids[i], ids[i], now, from, "leased",
		    lease_detail[k])) < 0)
			goto out;
	}
	if (n > 0) {
		if ((error = get_stmt(&st, q, S_STAT)) < 0)
			goto out;
		sqlite3_bind_text(st, 1, "leases", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)n);
		if ((error = step_done(q, st, "cannot count leases")) < 0 ||
		    (error = get_stmt(&st, q, S_STAT)) < 0)
			goto out;
		sqlite3_bind_text(st, 1, "lease_latency_ms", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, latency);
		if ((error = step_done(q, st, "cannot count leases")) < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if ((error = row_json(&v, q, qids[i], PAYLOAD_TEXT)) < 0)
			goto out;
		if (json_array_append_new(arr, v) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if ((error = commit(q)) < 0)
		goto out;
	*out = arr;
	arr = NULL;
out:
	if (error < 0)
		rollback(q);
	for (i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
	free(qids);
	free(was_failed);
	free(lease_detail[0]);
	free(lease_detail[1]);
	json_decref(arr);
	return error;
}

/* JSON white space. */
static int
is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/*
 * text[0..len) as json_loadb(text, len, 0) parses it, by the fast
 * parser of lib/json.h (jansson's goes a character at a time through a
 * callback, 160 instructions a byte of a payload); NULL when that one
 * leaves it to jansson.
 */
static json_t *
fast_parse(const char *text, size_t len)
{
	size_t i = 0, used;
	json_t *v;

	while (i < len && is_ws(text[i]))
		i++;
	if (i == len || (text[i] != '{' && text[i] != '[') ||
	    !(v = wf_json_fast_parse(text, len, &used)))
		return NULL;
	while (used < len && is_ws(text[used]))
		used++;
	if (used != len) {
		json_decref(v);
		return NULL;
	}
	return v;
}

int
wf_queue_payload(json_t **out, json_t *entry)
{
	json_t *p = json_object_get(entry, "payload"), *v;
	const char *id = json_string_value(json_object_get(entry, "id"));
	json_error_t err;

	*out = NULL;
	if (!json_is_string(p)) {
		if (!json_is_object(p))
			return wf_error_set(WF_EINPUT, "entry '%s' has no payload",
			    id ? id : "?");
		*out = p;
		return 0;
	}
	if (!(v = fast_parse(json_string_value(p), json_string_length(p))) &&
	    !(v = json_loadb(json_string_value(p), json_string_length(p), 0,
	    &err)))
		return wf_error_set(WF_EINPUT, "entry '%s': stored payload is "
		    "not JSON: %s", id ? id : "?", err.text);
	/* Replacing a member keeps its place, so dumps are as before. */
	if (json_object_set_new(entry, "payload", v) < 0)
		return wf_error_oom();
	*out = v;
	return 0;
}

struct held {
	int64_t qid;
	int64_t attempts, max_attempts;
	char owner[256];
	char *paths;
};

/* Find `id` leased with `token`, inside a transaction. */
static int
find_lease(struct held *h, struct wf_queue *q, const char *id,
    const char *token)
{
	sqlite3_stmt *st;
	const char *state, *cur, *owner, *paths;
	int error, rc;

	memset(h, 0, sizeof(*h));
	if ((error = get_stmt(&st, q, S_GETSTATE)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return wf_error_set(WF_ENOTFOUND, "no entry '%s' in the "
			    "queue", id);
		return db_error(q, rc, "cannot look up an entry");
	}
	state = (const char *)sqlite3_column_text(st, 1);
	cur = (const char *)sqlite3_column_text(st, 2);
	if (strcmp(state, "leased") != 0 || !cur || !token ||
	    strcmp(cur, token) != 0) {
		error = wf_error_set(WF_ECONFLICT, "entry '%s': stale lease "
		    "token (the entry is %s%s)", id, state,
		    strcmp(state, "leased") == 0 ? " under another lease" : "");
		sqlite3_reset(st);
		return error;
	}
	h->qid = sqlite3_column_int64(st, 0);
	owner = (const char *)sqlite3_column_text(st, 3);
	snprintf(h->owner, sizeof(h->owner), "%s", owner ? owner : "");
	h->attempts = sqlite3_column_int64(st, 4);
	h->max_attempts = sqlite3_column_int64(st, 5);
	paths = (const char *)sqlite3_column_text(st, 6);
	h->paths = strdup(paths ? paths : "[]");
	sqlite3_reset(st);
	return h->paths ? 0 : wf_error_oom();
}

int
wf_queue_extend(struct wf_queue *q, const char *id, const char *token,
    int64_t lease_ms)
{
	struct held h = { 0, 0, 0, "", NULL };
	sqlite3_stmt *st;
	int64_t now = wf_queue_now();
	int error;

	if (lease_ms <= 0)
		return wf_error_set(WF_EINPUT, "a lease needs a positive "
		    "duration");
	if ((error = begin(q)) < 0)
		return error;
	if ((error = find_lease(&h, q, id, token)) < 0 ||
	    (error = get_stmt(&st, q, S_EXTEND)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, h.qid);
	sqlite3_bind_int64(st, 2, now + lease_ms);
	sqlite3_bind_int64(st, 3, now);
	if ((error = step_done(q, st, "cannot extend a lease")) < 0)
		goto out;
	error = commit(q);
out:
	if (error < 0)
		rollback(q);
	free(h.paths);
	return error;
}

/* Mark the leased entry `id` landed, inside the caller's transaction. */
static int
land(struct wf_queue *q, const char *id, const char *token,
    const json_t *paths, int64_t now)
{
	struct held h = { 0, 0, 0, "", NULL };
	sqlite3_stmt *st;
	char *dumped = NULL, *extra = NULL, *text = NULL;
	int error, rc;

	if ((error = find_lease(&h, q, id, token)) < 0 ||
	    (error = get_stmt(&st, q, S_LAND)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, h.qid);
	sqlite3_bind_int64(st, 2, now);
	if ((error = step_done(q, st, "cannot mark an entry landed")) < 0 ||
	    (error = get_stmt(&st, q, S_DEPENDENT)) < 0)
		goto out;
	/* Most entries have no dependents: skip the update's IN table. */
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW && rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot find dependents");
		goto out;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		if ((error = get_stmt(&st, q, S_UNBLOCK)) < 0)
			goto out;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if ((error = step_done(q, st, "cannot release dependents")) < 0)
			goto out;
	}
	/* The stored paths are wf's compact JSON already: used as they are. */
	if (paths && (error = wf_json_dump(&dumped, NULL, paths, 0)) < 0)
		goto out;
	if (!(extra = malloc(strlen(dumped ? dumped : h.paths) + 9))) {
		error = wf_error_oom();
		goto out;
	}
	strcpy(extra, "\"paths\":");
	strcat(extra, dumped ? dumped : h.paths);
	text = detail_text(q, h.owner, now, "landed", extra, "leased",
	    "landed");
	error = audit_text(q, h.qid, id, now, "leased", "landed", text);
out:
	free(h.paths);
	free(dumped);
	free(extra);
	free(text);
	return error;
}

int
wf_queue_ack_landed(struct wf_queue *q, const char *id, const char *token,
    const json_t *paths)
{
	int error;

	if ((error = begin(q)) < 0)
		return error;
	if ((error = land(q, id, token, paths, wf_queue_now())) < 0 ||
	    (error = commit(q)) < 0)
		rollback(q);
	return error;
}

int
wf_queue_ack_landed_batch(struct wf_queue *q, const char *const *ids,
    const char *const *tokens, size_t n)
{
	int64_t now = wf_queue_now();
	size_t i;
	int error;

	if (n == 0)
		return 0;
	if ((error = begin(q)) < 0)
		return error;
	for (i = 0; i < n; i++)
		if ((error = land(q, ids[i], tokens[i], NULL, now)) < 0)
			goto out;
	error = commit(q);
out:
	if (error < 0)
		rollback(q);
	return error;
}

int
wf_queue_ack_failed(struct wf_queue *q, const char *id, const char *token,
    const char *why)
{
	struct held h = { 0, 0, 0, "", NULL };
	sqlite3_stmt *st;
	json_t *d;
	int64_t now = wf_queue_now(), delay = 0;
	int error, dead;

	if ((error = begin(q)) < 0)
		return error;
	if ((error = find_lease(&h, q, id, token)) < 0)
		goto out;
	dead = h.attempts >= h.max_attempts;
	if (!dead && q->opts.backoff_ms > 0) {
		int shift = h.attempts > 1 ? (int)(h.attempts - 1) : 0;

		delay = q->opts.backoff_ms;
		while (shift-- > 0 && delay < q->opts.backoff_max_ms)
			delay *= 2;
		if (delay > q->opts.backoff_max_ms)
			delay = q->opts.backoff_max_ms;
		/* Jitter: between half and all of the delay. */
		delay = delay / 2 + (int64_t)(rnd(q) % (uint64_t)(delay / 2 + 1));
	}
	if ((error = get_stmt(&st, q, S_FAIL)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, h.qid);
	sqlite3_bind_text(st, 2, dead ? "dead" : "failed", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, dead ? 0 : now + delay);
	sqlite3_bind_int64(st, 4, now);
	if (dead)
		sqlite3_bind_int64(st, 5, now);
	if (why)
		sqlite3_bind_text(st, 6, why, -1, SQLITE_STATIC);
	if ((error = step_done(q, st, "cannot mark an entry failed")) < 0)
		goto out;
	d = detail(q, h.owner, now, why ? why : "failed");
	if (d && json_object_set_new(d, "attempts",
	    json_integer(h.attempts)) < 0) {
		json_decref(d);
		d = NULL;
	}
	if ((error = audit(q, h.qid, id, now, "leased", dead ? "dead" :
	    "failed", d)) < 0)
		goto out;
	error = commit(q);
out:
	if (error < 0)
		rollback(q);
	free(h.paths);
	return error;
}

/* The queue id and state of `id`, in or out of a transaction. */
static int
lookup(int64_t *qid, char *state, size_t size, struct wf_queue *q,
    const char *id)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = get_stmt(&st, q, S_FIND)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*qid = sqlite3_column_int64(st, 0);
		snprintf(state, size, "%s", sqlite3_column_text(st, 2));
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return wf_error_set(WF_ENOTFOUND, "no entry '%s' in the queue",
		    id);
	return db_error(q, rc, "cannot look up an entry");
}

int
wf_queue_show(json_t **out, struct wf_queue *q, const char *id)
{
	sqlite3_stmt *st = NULL;
	json_t *v = NULL, *log = NULL;
	char state[16];
	int64_t qid;
	int error, rc;

	*out = NULL;
	if ((error = exec(q, "BEGIN")) < 0)
		return error;
	if ((error = lookup(&qid, state, sizeof(state), q, id)) < 0 ||
	    (error = row_json(&v, q, qid, PAYLOAD_PARSED)) < 0)
		goto out;
	if (!(log = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	rc = sqlite3_prepare_v2(q->db, "SELECT detail FROM audit WHERE qid = ?1"
	    " ORDER BY seq", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot read the audit log");
		goto out;
	}
	sqlite3_bind_int64(st, 1, qid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (json_array_append_new(log, parsed_json(st, 0)) < 0) {
			error = wf_error_oom();
			goto out;
		}
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot read the audit log");
		goto out;
	}
	if (json_object_set_new(v, "audit", log) < 0) {
		log = NULL;
		error = wf_error_oom();
		goto out;
	}
	log = NULL;
	*out = v;
	v = NULL;
	error = 0;
out:
	sqlite3_finalize(st);
	rollback(q);
	json_decref(v);
	json_decref(log);
	return error;
}

static int
valid_state(const char *s)
{
	return strcmp(s, "queued") == 0 || strcmp(s, "leased") == 0 ||
	    strcmp(s, "landed") == 0 || strcmp(s, "failed") == 0 ||
	    strcmp(s, "dead") == 0;
}

int
wf_queue_list(json_t **out, struct wf_queue *q,
    const struct wf_queue_filter *f)
{
	static const struct wf_queue_filter none = WF_QUEUE_FILTER_INIT;
	sqlite3_stmt *st = NULL;
	json_t *arr = NULL, *v;
	int error, rc;

	*out = NULL;
	if (!f)
		f = &none;
	if (f->state && !valid_state(f->state))
		return wf_error_set(WF_EINPUT, "unknown state '%s' (queued, "
		    "leased, landed, failed, dead)", f->state);
	if (!(arr = json_array()))
		return wf_error_oom();
	if ((error = exec(q, "BEGIN")) < 0)
		goto out;
	rc = sqlite3_prepare_v2(q->db, "SELECT qid FROM entries WHERE"
	    " (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR target = ?2) AND"
	    " created_at >= ?3 ORDER BY qid LIMIT ?4", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot list the queue");
		goto out;
	}
	if (f->state)
		sqlite3_bind_text(st, 1, f->state, -1, SQLITE_STATIC);
	if (f->target)
		sqlite3_bind_text(st, 2, f->target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, f->since_ms);
	sqlite3_bind_int64(st, 4, f->limit ? (sqlite3_int64)f->limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((error = row_json(&v, q, sqlite3_column_int64(st, 0),
		    PAYLOAD_NONE)) < 0)
			goto out;
		if (json_array_append_new(arr, v) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot list the queue");
		goto out;
	}
	*out = arr;
	arr = NULL;
	error = 0;
out:
	sqlite3_finalize(st);
	rollback(q);
	json_decref(arr);
	return error;
}

int
wf_queue_retry(struct wf_queue *q, const char *id)
{
	sqlite3_stmt *st = NULL;
	char state[16];
	int64_t qid, now = wf_queue_now();
	int error, rc;

	if ((error = begin(q)) < 0)
		return error;
	if ((error = lookup(&qid, state, sizeof(state), q, id)) < 0)
		goto out;
	if (strcmp(state, "dead") != 0 && strcmp(state, "failed") != 0) {
		error = wf_error_set(WF_ECONFLICT, "entry '%s' is %s: only dead "
		    "or failed entries can be retried", id, state);
		goto out;
	}
	rc = sqlite3_prepare_v2(q->db, "UPDATE entries SET state = 'queued',"
	    " attempts = 0, not_before = 0, finished_at = NULL,"
	    " updated_at = ?2 WHERE qid = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot retry an entry");
		goto out;
	}
	sqlite3_bind_int64(st, 1, qid);
	sqlite3_bind_int64(st, 2, now);
	if ((error = step_done(q, st, "cannot retry an entry")) < 0 ||
	    (error = audit(q, qid, id, now, state, "queued",
	    detail(q, NULL, now, "retry"))) < 0)
		goto out;
	error = commit(q);
out:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(q);
	return error;
}

int
wf_queue_drop(struct wf_queue *q, const char *id)
{
	sqlite3_stmt *st = NULL;
	char state[16];
	int64_t qid, now = wf_queue_now();
	int error, rc;

	if ((error = begin(q)) < 0)
		return error;
	if ((error = lookup(&qid, state, sizeof(state), q, id)) < 0)
		goto out;
	if (strcmp(state, "leased") == 0) {
		error = wf_error_set(WF_ECONFLICT, "entry '%s' is leased: ack "
		    "it or let the lease expire first", id);
		goto out;
	}
	rc = sqlite3_prepare_v2(q->db, "DELETE FROM entries WHERE qid = ?1",
	    -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot drop an entry");
		goto out;
	}
	sqlite3_bind_int64(st, 1, qid);
	if ((error = step_done(q, st, "cannot drop an entry")) < 0 ||
	    (error = audit(q, qid, id, now, state, NULL,
	    detail(q, NULL, now, "drop"))) < 0)
		goto out;
	error = commit(q);
out:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(q);
	return error;
}

/*
 * Run `sql` (binding ?1 to `a` and ?2 to `b`) and put the first column
 * of its first row in *out; *isnull says it was NULL or there was no
 * row (may be NULL when that cannot happen or does not matter).
 */
static int
query_int(int64_t *out, int *isnull, struct wf_queue *q, const char *sql,
    int64_t a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int error = 0, rc;

	*out = 0;
	if (isnull)
		*isnull = 1;
	if ((rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return db_error(q, rc, "cannot prepare a query");
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (isnull)
			*isnull = sqlite3_column_type(st, 0) == SQLITE_NULL;
		*out = sqlite3_column_int64(st, 0);
	} else if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot run a query");
	}
	sqlite3_finalize(st);
	return error;
}

static int
set_int(json_t *obj, const char *key, int64_t v)
{
	return json_object_set_new(obj, key, json_integer((json_int_t)v)) < 0 ?
	    wf_error_oom() : 0;
}

static const char *const state_name[] = { "queued", "leased", "landed",
	"failed", "dead" };

#define NSTATES (sizeof(state_name) / sizeof(*state_name))

int
wf_queue_metrics(json_t **out, struct wf_queue *q)
{
	sqlite3_stmt *st = NULL;
	json_t *m = NULL, *depth = NULL, *x;
	int64_t now = wf_queue_now(), v, leases, latency, landed, failed;
	int error, rc, isnull;
	size_t i;

	*out = NULL;
	if (!(m = json_object()) || !(depth = json_object()) ||
	    json_object_set(m, "depth", depth) < 0) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < NSTATES; i++)
		if ((error = set_int(depth, state_name[i], 0)) < 0)
			goto out;
	/* One read transaction: every number is of the same moment. */
	if ((error = exec(q, "BEGIN")) < 0)
		goto out;
	rc = sqlite3_prepare_v2(q->db, "SELECT state, count(*) FROM entries"
	    " GROUP BY state", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot count entries");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((error = set_int(depth, (const char *)sqlite3_column_text(st,
		    0), sqlite3_column_int64(st, 1))) < 0)
			goto out;
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot count entries");
		goto out;
	}
	if ((error = query_int(&v, NULL, q, "SELECT count(*) FROM entries"
	    " WHERE state IN ('queued', 'failed') AND blocked > 0", 0, 0)) < 0 ||
	    (error = set_int(m, "blocked", v)) < 0)
		goto out;
	if ((error = query_int(&v, &isnull, q, "SELECT min(created_at) FROM"
	    " entries WHERE state = 'queued'", 0, 0)) < 0)
		goto out;
	if (json_object_set_new(m, "oldest_queued_age_ms", isnull ?
	    json_null() : json_integer((json_int_t)(now - v))) < 0) {
		error = wf_error_oom();
		goto out;
	}
	/* Landings and failures from the audit log (its (to_state, at) index). */
	if ((error = query_int(&landed, NULL, q, "SELECT count(*) FROM audit"
	    " WHERE to_state = 'landed' AND at >= ?1", now - 3600000, 0)) < 0 ||
	    (error = query_int(&failed, NULL, q, "SELECT (SELECT count(*) FROM"
	    " audit WHERE to_state = 'failed' AND at >= ?1) + (SELECT count(*)"
	    " FROM audit WHERE to_state = 'dead' AND at >= ?1)",
	    now - 3600000, 0)) < 0 ||
	    (error = set_int(m, "landed_last_hour", landed)) < 0 ||
	    (error = set_int(m, "failed_last_hour", failed)) < 0)
		goto out;
	if ((error = query_int(&landed, NULL, q, "SELECT count(*) FROM audit"
	    " WHERE to_state = 'landed' AND at >= ?1", now - 86400000, 0)) < 0 ||
	    (error = query_int(&failed, NULL, q, "SELECT (SELECT count(*) FROM"
	    " audit WHERE to_state = 'failed' AND at >= ?1) + (SELECT count(*)"
	    " FROM audit WHERE to_state = 'dead' AND at >= ?1)",
	    now - 86400000, 0)) < 0)
		goto out;
	if (json_object_set_new(m, "landed_per_hour_24h",
	    json_real((double)landed / 24.0)) < 0 ||
	    json_object_set_new(m, "failed_per_hour_24h",
	    json_real((double)failed / 24.0)) < 0) {
		error = wf_error_oom();
		goto out;
	}
	/* Counters kept by lease() and commit(), across all processes. */
	if ((error = query_int(&leases, NULL, q, "SELECT value FROM stats"
	    " WHERE name = 'leases'", 0, 0)) < 0 ||
	    (error = query_int(&latency, NULL, q, "SELECT value FROM stats"
	    " WHERE name = 'lease_latency_ms'", 0, 0)) < 0 ||
	    (error = query_int(&v, NULL, q, "SELECT value FROM stats"
	    " WHERE name = 'busy_retries'", 0, 0)) < 0)
		goto out;
	x = leases > 0 ? json_real((double)latency / (double)leases) :
	    json_null();
	if (json_object_set_new(m, "leases", json_integer(leases)) < 0 ||
	    json_object_set_new(m, "lease_latency_ms_mean", x) < 0 ||
	    set_int(m, "busy_retries", v + (int64_t)(q->busy_retries -
	    q->busy_flushed)) < 0) {
		error = wf_error_oom();
		goto out;
	}
	*out = m;
	m = NULL;
	error = 0;
out:
	sqlite3_finalize(st);
	rollback(q);
	json_decref(depth);
	json_decref(m);
	return error;
}

/* Append a check {"check", "ok", "value", "detail", "advice"}. */
static int
add_check(json_t *checks, const char *name, int ok, json_t *value,
    const char *detail, const char *advice)
{
	json_t *c = json_pack("{s:s, s:b, s:o, s:s, s:s*}", "check", name,
	    "ok", ok, "value", value ? value : json_null(), "detail", detail,
	    "advice", ok ? NULL : advice);

	if (!c || json_array_append_new(checks, c) < 0)
		return wf_error_oom();
	return 0;
}

int
wf_queue_doctor(json_t **out, struct wf_queue *q,
    const struct wf_queue_doctor_opts *opts)
{
	static const struct wf_queue_doctor_opts defaults =
	    WF_QUEUE_DOCTOR_OPTS_INIT;
	sqlite3_stmt *st = NULL;
	json_t *report = NULL, *checks = NULL, *msgs = NULL;
	int64_t now = wf_queue_now(), v, n;
	char detail[512], *wal = NULL;
	struct stat sb;
	size_t problems = 0, len;
	int error, rc, ok;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (!(checks = json_array()) || !(msgs = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = exec(q, "BEGIN")) < 0)
		goto out;

	if ((error = query_int(&v, NULL, q, "PRAGMA user_version", 0, 0)) < 0)
		goto out;
	ok = v == WF_QUEUE_SCHEMA_VERSION;
	snprintf(detail, sizeof(detail), "schema version %lld (this wf "
	    "writes %d)", (long long)v, WF_QUEUE_SCHEMA_VERSION);
	problems += !ok;
	if ((error = add_check(checks, "schema", ok, json_integer(v), detail,
	    "open the queue with a wf of the same version; a newer schema "
	    "needs a newer wf")) < 0)
		goto out;

	rc = sqlite3_prepare_v2(q->db, "PRAGMA integrity_check(20)", -1, &st,
	    NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot check integrity");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (json_array_append_new(msgs, text_json(st, 0)) < 0) {
			error = wf_error_oom();
			goto out;
		}
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot check integrity");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	ok = json_array_size(msgs) == 1 && json_string_value(json_array_get(
	    msgs, 0)) && strcmp(json_string_value(json_array_get(msgs, 0)),
	    "ok") == 0;
	problems += !ok;
	snprintf(detail, sizeof(detail), "%s", ok ? "integrity_check ok" :
	    "integrity_check found damage");
	error = add_check(checks, "integrity", ok, msgs, detail, "stop all "
	    "writers, copy the file away, then rebuild it: sqlite3 queue.db "
	    ".recover | sqlite3 new.db; or restore from an archive");
	msgs = NULL;
	if (error < 0)
		goto out;

	len = strlen(q->path) + sizeof("-wal");
	if (!(wal = malloc(len))) {
		error = wf_error_oom();
		goto out;
	}
	snprintf(wal, len, "%s-wal", q->path);
	v = stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0;
	ok = v <= opts->wal_max_bytes;
	problems += !ok;
	snprintf(detail, sizeof(detail), "write-ahead log of %lld bytes "
	    "(limit %lld)", (long long)v, (long long)opts->wal_max_bytes);
	if ((error = add_check(checks, "wal_size", ok, json_integer(v), detail,
	    "a long-lived reader keeps the log from being checkpointed: stop "
	    "it, then run sqlite3 queue.db 'PRAGMA wal_checkpoint(TRUNCATE)'"))
	    < 0)
		goto out;

	if ((error = query_int(&n, NULL, q, "SELECT count(*) FROM entries"
	    " WHERE state = 'leased' AND lease_expires < ?1", now, 0)) < 0)
		goto out;
	ok = n == 0;
	problems += !ok;
	snprintf(detail, sizeof(detail), "%lld expired lease%s", (long long)n,
	    n == 1 ? "" : "s");
	if ((error = add_check(checks, "expired_leases", ok, json_integer(n),
	    detail, "their workers died or hung: the next lease returns them "
	    "to the queue, or run wf-queue reclaim now")) < 0)
		goto out;

	if ((error = query_int(&n, NULL, q, "SELECT count(*) FROM entries"
	    " WHERE state IN ('queued', 'failed') AND blocked = 0 AND"
	    " max(created_at, not_before) < ?1", now - opts->stuck_ms, 0)) < 0)
		goto out;
	ok = n == 0;
	problems += !ok;
	snprintf(detail, sizeof(detail), "%lld entr%s ready for over %lld s "
	    "and not leased", (long long)n, n == 1 ? "y" : "ies",
	    (long long)(opts->stuck_ms / 1000));
	if ((error = add_check(checks, "stuck_ready", ok, json_integer(n),
	    detail, "no worker leases their target: start one (wf-queue list "
	    "--state queued shows the targets)")) < 0)
		goto out;

	/* Blocked for good: a dependency that is dead or was never queued. */
	if ((error = query_int(&n, NULL, q, "SELECT count(DISTINCT e.qid) FROM"
	    " entries e JOIN deps d ON d.qid = e.qid WHERE e.state IN"
	    " ('queued', 'failed') AND e.blocked > 0 AND NOT EXISTS (SELECT 1"
	    " FROM tombstones t WHERE t.id = d.dep_id AND t.state = 'landed')"
	    " AND NOT EXISTS (SELECT 1 FROM entries x WHERE x.id = d.dep_id"
	    " AND x.state <> 'dead')", 0, 0)) < 0)
		goto out;
	ok = n == 0;
	problems += !ok;
	snprintf(detail, sizeof(detail), "%lld entr%s waiting on a dependency "
	    "that is dead or not queued", (long long)n, n == 1 ? "y" : "ies");
	if ((error = add_check(checks, "stuck_blocked", ok, json_integer(n),
	    detail, "wf-queue show ID names the dependencies: enqueue the "
	    "missing one, retry the dead one, or drop the waiting entry")) < 0)
		goto out;

	if (!(report = json_pack("{s:b, s:I, s:O}", "ok", problems == 0,
	    "problems", (json_int_t)problems, "checks", checks))) {
		error = wf_error_oom();
		goto out;
	}
	*out = report;
	error = 0;
out:
	sqlite3_finalize(st);
	rollback(q);
	free(wal);
	json_decref(checks);
	json_decref(msgs);
	return error;
}

/*
 * Archival.  The archive's lines are the rows as stored: every column by
 * name, text as JSON strings (payload, paths and detail are the stored
 * JSON texts, kept as strings so they come back byte for byte),
 * integers as numbers, NULL as null.
 */
struct column {
	const char *name;
	int type;		/* SQLITE_INTEGER or SQLITE_TEXT */
	int nullable;
};

static const struct column entry_col[] = {
	{ "qid", SQLITE_INTEGER, 0 }, { "id", SQLITE_TEXT, 0 },
	{ "target", SQLITE_TEXT, 0 }, { "kind", SQLITE_TEXT, 0 },
	{ "hash", SQLITE_TEXT, 0 }, { "payload", SQLITE_TEXT, 0 },
	{ "paths", SQLITE_TEXT, 0 }, { "priority", SQLITE_INTEGER, 0 },
	{ "state", SQLITE_TEXT, 0 }, { "blocked", SQLITE_INTEGER, 0 },
	{ "attempts", SQLITE_INTEGER, 0 },
	{ "max_attempts", SQLITE_INTEGER, 0 },
	{ "not_before", SQLITE_INTEGER, 0 },
	{ "lease_owner", SQLITE_TEXT, 1 }, { "lease_token", SQLITE_TEXT, 1 },
	{ "lease_expires", SQLITE_INTEGER, 1 },
	{ "leased_at", SQLITE_INTEGER, 1 },
	{ "created_at", SQLITE_INTEGER, 0 },
	{ "updated_at", SQLITE_INTEGER, 0 },
	{ "finished_at", SQLITE_INTEGER, 1 },
	{ "last_error", SQLITE_TEXT, 1 },
	{ NULL, 0, 0 }
};

static const struct column audit_col[] = {
	{ "seq", SQLITE_INTEGER, 0 }, { "qid", SQLITE_INTEGER, 0 },
	{ "entry_id", SQLITE_TEXT, 0 }, { "at", SQLITE_INTEGER, 0 },
	{ "from_state", SQLITE_TEXT, 1 }, { "to_state", SQLITE_TEXT, 1 },
	{ "detail", SQLITE_TEXT, 0 },
	{ NULL, 0, 0 }
};

#define ARCHIVE_FORMAT "wf-queue-archive"
#define ARCHIVE_VERSION 1

/* What is archived: finished before the cutoff ?1. */
#define ARCHIVABLE "state IN ('landed', 'dead') AND" \
	" coalesce(finished_at, updated_at) <= ?1"

/* The row of `st` (columns as `cols`, then extra ones) as a JSON object. */
static int
row_object(json_t **out, struct wf_queue *q, sqlite3_stmt *st,
    const struct column *cols)
{
	json_t *v, *x;
	int i;

	*out = NULL;
	if (!(v = json_object()))
		return wf_error_oom();
	for (i = 0; cols[i].name; i++) {
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			x = json_null();
			break;
		case SQLITE_INTEGER:
			x = json_integer(sqlite3_column_int64(st, i));
			break;
		case SQLITE_TEXT:
			x = json_stringn((const char *)sqlite3_column_text(st, i),
			    (size_t)sqlite3_column_bytes(st, i));
			if (!x) {
				json_decref(v);
				return wf_error_set(WF_EINPUT, "queue '%s': column "
				    "%s is not UTF-8", q->path, cols[i].name);
			}
			break;
		default:
			json_decref(v);
			return wf_error_set(WF_EINPUT, "queue '%s': column %s "
			    "has an unexpected type", q->path, cols[i].name);
		}
		if (!x || json_object_set_new(v, cols[i].name, x) < 0) {
			json_decref(v);
			return wf_error_oom();
		}
	}
	*out = v;
	return 0;
}

/* SELECT of `cols` FROM `table` WHERE `where`, into buf. */
static void
select_sql(char *buf, size_t size, const struct column *cols,
    const char *table, const char *where)
{
	size_t n;
	int i;

	n = (size_t)snprintf(buf, size, "SELECT ");
	for (i = 0; cols[i].name && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
		    cols[i].name);
	if (n < size)
		snprintf(buf + n, size - n, " FROM %s WHERE %s", table, where);
}

static int
append_json(struct wf_tarball *t, const char *stream, json_t *v)
{
	char *s;
	int error;

	if (!(s = json_dumps(v, JSON_COMPACT)))
		return wf_error_oom();
	error = wf_tarball_append(t, stream, s, strlen(s));
	free(s);
	return error;
}

/* Write the archivable entries (with depends_on) to the tarball. */
static int
archive_entries(struct wf_queue *q, struct wf_tarball *t, int64_t cutoff)
{
	sqlite3_stmt *st = NULL, *dep = NULL;
	json_t *v = NULL, *deps;
	char sql[1024];
	int error, rc;

	select_sql(sql, sizeof(sql), entry_col,
	    "entries JOIN payloads USING (qid)", ARCHIVABLE " ORDER BY qid");
	if ((rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(q->db, "SELECT dep_id FROM deps WHERE"
	    " qid = ?1 ORDER BY dep_id", -1, &dep, NULL)) != SQLITE_OK) {
		error = db_error(q, rc, "cannot read entries to archive");
		goto out;
	}
	sqlite3_bind_int64(st, 1, cutoff);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((error = row_object(&v, q, st, entry_col)) < 0)
			goto out;
		if (!(deps = json_array()) ||
		    json_object_set_new(v, "depends_on", deps) < 0) {
			error = wf_error_oom();
			goto out;
		}
		sqlite3_reset(dep);
		sqlite3_bind_int64(dep, 1, sqlite3_column_int64(st, 0));
		while ((rc = sqlite3_step(dep)) == SQLITE_ROW)
			if (json_array_append_new(deps, json_string((const char *)
			    sqlite3_column_text(dep, 0))) < 0) {
				error = wf_error_oom();
				goto out;
			}
		if (rc != SQLITE_DONE) {
			error = db_error(q, rc, "cannot read dependencies");
			goto out;
		}
		if ((error = append_json(t, "entries", v)) < 0)
			goto out;
		json_decref(v);
		v = NULL;
	}
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot read entries to archive");
		goto out;
	}
	error = 0;
out:
	json_decref(v);
	sqlite3_finalize(st);
	sqlite3_finalize(dep);
	return error;
}

/* Write the audit rows of the archivable entries to the tarball. */
static int
archive_audit(struct wf_queue *q, struct wf_tarball *t, int64_t cutoff)
{
	sqlite3_stmt *st = NULL;
	json_t *v = NULL;
	char sql[1024];
	int error, rc;

	select_sql(sql, sizeof(sql), audit_col, "audit", "qid IN (SELECT qid"
	    " FROM entries WHERE " ARCHIVABLE ") ORDER BY seq");
	if ((rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL)) != SQLITE_OK) {
		error = db_error(q, rc, "cannot read the audit log");
		goto out;
	}
	sqlite3_bind_int64(st, 1, cutoff);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((error = row_object(&v, q, st, audit_col)) < 0 ||
		    (error = append_json(t, "audit", v)) < 0)
			goto out;
		json_decref(v);
		v = NULL;
	}
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot read the audit log");
		goto out;
	}
	error = 0;
out:
	json_decref(v);
	sqlite3_finalize(st);
	return error;
}

/* Run `sql` with ?1 bound to `a` and ?2 to `b`, for its effect. */
static int
exec_bound(struct wf_queue *q, const char *sql, int64_t a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int error, rc;

	if ((rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return db_error(q, rc, "cannot prepare a statement");
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	error = step_done(q, st, sql);
	sqlite3_finalize(st);
	return error;
}

int
wf_queue_archive(json_t **out, struct wf_queue *q, const char *path,
    int64_t older_than_ms)
{
	struct wf_tarball *t = NULL;
	json_t *manifest = NULL, *report = NULL;
	int64_t now = wf_queue_now(), cutoff, nentries, naudit;
	char when[80], cut[80], *s = NULL, *line = NULL;
	int error;

	if (out)
		*out = NULL;
	if (older_than_ms < 0)
		return wf_error_set(WF_EINPUT, "a negative age to archive");
	cutoff = now - older_than_ms;
	if ((error = wf_tarball_create(&t, path)) < 0)
		return error;
	/* The write lock is held from the first read to the commit. */
	if ((error = begin(q)) < 0)
		goto out;
	if ((error = query_int(&nentries, NULL, q, "SELECT count(*) FROM"
	    " entries WHERE " ARCHIVABLE, cutoff, 0)) < 0 ||
	    (error = query_int(&naudit, NULL, q, "SELECT count(*) FROM audit"
	    " WHERE qid IN (SELECT qid FROM entries WHERE " ARCHIVABLE ")",
	    cutoff, 0)) < 0)
		goto out;
	fmt_time(when, now);
	fmt_time(cut, cutoff);
	if (!(manifest = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:I, s:I}",
	    "format", ARCHIVE_FORMAT, "version", ARCHIVE_VERSION, "schema",
	    WF_QUEUE_SCHEMA_VERSION, "created_at", when, "created_by",
	    q->actor, "cutoff", cut, "entries", (json_int_t)nentries,
	    "audit", (json_int_t)naudit)) ||
	    !(line = json_dumps(manifest, JSON_COMPACT)) ||
	    !(s = malloc(strlen(line) + 2))) {
		error = wf_error_oom();
		goto out;
	}
	/* One line with its newline, like the other members. */
	snprintf(s, strlen(line) + 2, "%s\n", line);
	if ((error = wf_tarball_add(t, "manifest.json", s, strlen(s))) < 0)
		goto out;
	if ((error = archive_entries(q, t, cutoff)) < 0 ||
	    (error = archive_audit(q, t, cutoff)) < 0 ||
	    (error = wf_tarball_finish(t)) < 0)
		goto out;
	/* The archive is complete and synced: now the deletion. */
	if ((error = exec_bound(q, "INSERT OR REPLACE INTO tombstones (id,"
	    " hash, state, archived_at) SELECT id, hash, state, ?2 FROM"
	    " entries WHERE " ARCHIVABLE, cutoff, now)) < 0 ||
	    (error = exec_bound(q, "DELETE FROM audit WHERE qid IN (SELECT"
	    " qid FROM entries WHERE " ARCHIVABLE ")", cutoff, 0)) < 0 ||
	    (error = exec_bound(q, "DELETE FROM entries WHERE " ARCHIVABLE,
	    cutoff, 0)) < 0)
		goto out;
	if (out && !(report = json_pack("{s:s, s:I, s:I, s:s}", "archive",
	    path, "entries", (json_int_t)nentries, "audit",
	    (json_int_t)naudit, "cutoff", cut))) {
		error = wf_error_oom();
		goto out;
	}
	/*
	 * Publish, then commit: a crash in between leaves the entries both
	 * in the queue and in the archive, never in neither.
	 */
	if ((error = wf_tarball_publish(t)) < 0)
		goto out;
	if ((error = commit(q)) < 0)
		wf_error_prefix(error, "archive '%s' is written but the queue "
		    "still holds its entries", path);
	if (error == 0 && out) {
		*out = report;
		report = NULL;
	}
out:
	if (error < 0)
		rollback(q);
	wf_tarball_free(t);
	json_decref(manifest);
	json_decref(report);
	free(line);
	free(s);
	return error;
}

struct restore {
	struct wf_queue *q;
	const char *path;
	int stage;		/* 0 before the manifest, 1 entries, 2 audit */
	int renumber_entries, renumber_audit;
	int64_t want_entries, want_audit, nentries, naudit, last_seq;
	sqlite3_stmt *find, *entry, *payload, *dep, *untomb, *reblock, *map_put,
	    *map_get, *owner, *qid_used, *seq_used, *audit;
};

static const char *const restore_sql[] = {
	"SELECT 1 FROM entries WHERE id = ?1",
	/* Bound as entry_col; ?6, the payload, goes to the next one. */
	"INSERT INTO entries (qid, id, target, kind, hash, paths,"
	" priority, state, blocked, attempts, max_attempts, not_before,"
	" lease_owner, lease_token, lease_expires, leased_at, created_at,"
	" updated_at, finished_at, last_error) VALUES (?1, ?2, ?3, ?4, ?5,"
	" ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,"
	" ?20, ?21)",
	"INSERT INTO payloads (qid, payload) VALUES (?1, ?2)",
	"INSERT INTO deps (qid, dep_id) VALUES (?1, ?2)",
	"DELETE FROM tombstones WHERE id = ?1",
	/* Entries waiting on a restored id count their dependencies anew. */
	"UPDATE entries SET blocked = (SELECT count(*) FROM deps d WHERE"
	" d.qid = entries.qid AND NOT EXISTS (SELECT 1 FROM entries e WHERE"
	" e.id = d.dep_id AND e.state = 'landed') AND NOT EXISTS (SELECT 1"
	" FROM tombstones t WHERE t.id = d.dep_id AND t.state = 'landed'))"
	" WHERE state IN ('queued', 'failed') AND qid IN (SELECT qid FROM"
	" deps WHERE dep_id = ?1)",
	"INSERT INTO temp.wf_restored (old, new) VALUES (?1, ?2)",
	"SELECT new FROM temp.wf_restored WHERE old = ?1",
	"SELECT 1 FROM entries WHERE qid = ?1 AND id = ?2",
	"SELECT 1 FROM entries WHERE qid = ?1",
	"SELECT 1 FROM audit WHERE seq = ?1",
	"INSERT INTO audit (seq, qid, entry_id, at, from_state, to_state,"
	" detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
};

#define NRESTORE_SQL (sizeof(restore_sql) / sizeof(*restore_sql))

static sqlite3_stmt **
restore_stmt(struct restore *r, size_t i)
{
	sqlite3_stmt **all[] = { &r->find, &r->entry, &r->payload, &r->dep,
	    &r->untomb,
	    &r->reblock, &r->map_put, &r->map_get, &r->owner, &r->qid_used,
	    &r->seq_used, &r->audit };

	return all[i];
}

/* Check that `v` has exactly the keys of `cols` (and `extra`), typed. */
static int
check_row(struct restore *r, const char *member, size_t lineno,
    const json_t *v, const struct column *cols, const char *extra)
{
	const char *key;
	json_t *x;
	int i, found;

	if (!json_is_object(v))
		return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: expected "
		    "an object", r->path, member, lineno);
	for (i = 0; cols[i].name; i++) {
		if (!(x = json_object_get(v, cols[i].name)))
			return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: "
			    ".%s is missing", r->path, member, lineno,
			    cols[i].name);
		if (json_is_null(x) ? !cols[i].nullable :
		    cols[i].type == SQLITE_INTEGER ? !json_is_integer(x) :
		    !json_is_string(x))
			return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: "
			    ".%s: expected %s", r->path, member, lineno,
			    cols[i].name, cols[i].type == SQLITE_INTEGER ?
			    "an integer" : "a string");
	}
	json_object_foreach((json_t *)v, key, x) {
		found = extra && strcmp(key, extra) == 0;
		for (i = 0; !found && cols[i].name; i++)
			found = strcmp(key, cols[i].name) == 0;
		if (!found)
			return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: "
			    "unknown key '%s'", r->path, member, lineno, key);
	}
	return 0;
}

static void
bind_json(sqlite3_stmt *st, int i, const json_t *x)
{
	if (json_is_integer(x))
		sqlite3_bind_int64(st, i, json_integer_value(x));
	else if (json_is_string(x))
		sqlite3_bind_text(st, i, json_string_value(x),
		    (int)json_string_length(x), SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Run a restore statement for its effect or its first row. */
static int
restore_step(int *row, struct restore *r, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (row)
		*row = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(r->q, rc, "cannot restore");
	return 0;
}

static int
restore_manifest(struct restore *r, const json_t *v)
{
	const char *format = NULL;
	json_int_t version = 0, schema = 0, entries = 0, audit_rows = 0;
	json_error_t jerr;

	if (json_unpack_ex((json_t *)v, &jerr, 0, "{s:s, s:I, s:I, s:I, s:I}",
	    "format", &format, "version", &version, "schema", &schema,
	    "entries", &entries, "audit", &audit_rows) < 0 ||
	    strcmp(format, ARCHIVE_FORMAT) != 0)
		return wf_error_set(WF_EINPUT, "'%s' is not a wf queue archive",
		    r->path);
	if (version != ARCHIVE_VERSION || schema < 1 ||
	    schema > WF_QUEUE_SCHEMA_VERSION)
		return wf_error_set(WF_EINPUT, "archive '%s' has version %lld "
		    "and schema %lld; this wf reads version %d and schema %d or "
		    "older", r->path, (long long)version, (long long)schema,
		    ARCHIVE_VERSION, WF_QUEUE_SCHEMA_VERSION);
	r->want_entries = entries;
	r->want_audit = audit_rows;
	return 0;
}

static int
restore_entry(struct restore *r, const char *member, size_t lineno,
    const json_t *v)
{
	const char *id, *state;
	const json_t *deps = json_object_get(v, "depends_on"), *x;
	int64_t old, qid;
	size_t i;
	int error, row;

	if ((error = check_row(r, member, lineno, v, entry_col,
	    "depends_on")) < 0)
		return error;
	id = json_string_value(json_object_get(v, "id"));
	state = json_string_value(json_object_get(v, "state"));
	old = json_integer_value(json_object_get(v, "qid"));
	if (strcmp(state, "landed") != 0 && strcmp(state, "dead") != 0)
		return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: entry "
		    "'%s' is %s: only landed and dead entries are archived",
		    r->path, member, lineno, id, state);
	if (!json_is_array(deps))
		return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: "
		    ".depends_on: expected an array", r->path, member, lineno);
	json_array_foreach(deps, i, x)
		if (!json_is_string(x))
			return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: "
			    ".depends_on[%zu]: expected a string", r->path,
			    member, lineno, i);
	sqlite3_reset(r->find);
	sqlite3_bind_text(r->find, 1, id, -1, SQLITE_STATIC);
	if ((error = restore_step(&row, r, r->find)) < 0)
		return error;
	if (row)
		return wf_error_set(WF_ECONFLICT, "archive '%s': entry '%s' is "
		    "in the queue already", r->path, id);
	/* Keep the queue id unless it is taken; from then on, take new ones
	 * so the restored entries keep their order. */
	if (!r->renumber_entries) {
		sqlite3_reset(r->qid_used);
		sqlite3_bind_int64(r->qid_used, 1, old);
		if ((error = restore_step(&row, r, r->qid_used)) < 0)
			return error;
		r->renumber_entries = row;
	}
	sqlite3_reset(r->entry);
	for (i = 0; entry_col[i].name; i++)
		bind_json(r->entry, (int)i + 1, json_object_get(v,
		    entry_col[i].name));
	if (r->renumber_entries)
		sqlite3_bind_null(r->entry, 1);
	if ((error = restore_step(NULL, r, r->entry)) < 0)
		return error;
	qid = sqlite3_last_insert_rowid(r->q->db);
	sqlite3_reset(r->payload);
	sqlite3_bind_int64(r->payload, 1, qid);
	bind_json(r->payload, 2, json_object_get(v, "payload"));
	if ((error = restore_step(NULL, r, r->payload)) < 0)
		return error;
	sqlite3_reset(r->map_put);
	sqlite3_bind_int64(r->map_put, 1, old);
	sqlite3_bind_int64(r->map_put, 2, qid);
	if ((error = restore_step(NULL, r, r->map_put)) < 0) {
		if (sqlite3_errcode(r->q->db) == SQLITE_CONSTRAINT)
			error = wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: "
			    "queue id %lld twice", r->path, member, lineno,
			    (long long)old);
		return error;
	}
	json_array_foreach(deps, i, x) {
		sqlite3_reset(r->dep);
		sqlite3_bind_int64(r->dep, 1, qid);
		sqlite3_bind_text(r->dep, 2, json_string_value(x), -1,
		    SQLITE_STATIC);
		if ((error = restore_step(NULL, r, r->dep)) < 0)
			return error;
	}
	sqlite3_reset(r->untomb);
	sqlite3_bind_text(r->untomb, 1, id, -1, SQLITE_STATIC);
	if ((error = restore_step(NULL, r, r->untomb)) < 0)
		return error;
	sqlite3_reset(r->reblock);
	sqlite3_bind_text(r->reblock, 1, id, -1, SQLITE_STATIC);
	if ((error = restore_step(NULL, r, r->reblock)) < 0)
		return error;
	r->nentries++;
	return 0;
}

static int
restore_audit(struct restore *r, const char *member, size_t lineno,
    const json_t *v)
{
	const char *id;
	int64_t seq, old, qid;
	size_t i;
	int error, row;

	if ((error = check_row(r, member, lineno, v, audit_col, NULL)) < 0)
		return error;
	seq = json_integer_value(json_object_get(v, "seq"));
	old = json_integer_value(json_object_get(v, "qid"));
	id = json_string_value(json_object_get(v, "entry_id"));
	if (seq <= r->last_seq)
		return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: audit "
		    "rows out of order", r->path, member, lineno);
	r->last_seq = seq;
	sqlite3_reset(r->map_get);
	sqlite3_bind_int64(r->map_get, 1, old);
	if ((error = restore_step(&row, r, r->map_get)) < 0)
		return error;
	qid = row ? sqlite3_column_int64(r->map_get, 0) : 0;
	sqlite3_reset(r->owner);
	sqlite3_bind_int64(r->owner, 1, qid);
	sqlite3_bind_text(r->owner, 2, id, -1, SQLITE_STATIC);
	if (row && (error = restore_step(&row, r, r->owner)) < 0)
		return error;
	if (!row)
		return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: audit row "
		    "of '%s', which is not in the archive", r->path, member,
		    lineno, id);
	/* As for queue ids: keep, or renumber from the first one taken. */
	if (!r->renumber_audit) {
		sqlite3_reset(r->seq_used);
		sqlite3_bind_int64(r->seq_used, 1, seq);
		if ((error = restore_step(&row, r, r->seq_used)) < 0)
			return error;
		r->renumber_audit = row;
	}
	sqlite3_reset(r->audit);
	for (i = 0; audit_col[i].name; i++)
		bind_json(r->audit, (int)i + 1, json_object_get(v,
		    audit_col[i].name));
	if (r->renumber_audit)
		sqlite3_bind_null(r->audit, 1);
	sqlite3_bind_int64(r->audit, 2, qid);
	if ((error = restore_step(NULL, r, r->audit)) < 0)
		return error;
	r->naudit++;
	return 0;
}

/* Which member: 0 manifest, 1 entries, 2 audit, -1 unknown. */
static int
member_kind(const char *name)
{
	size_t n;

	if (strcmp(name, "manifest.json") == 0)
		return 0;
	n = strlen(name);
	if (n < 12 || strcmp(name + n - 6, ".jsonl") != 0)
		return -1;
	if (strncmp(name, "entries-", 8) == 0)
		return 1;
	if (strncmp(name, "audit-", 6) == 0)
		return 2;
	return -1;
}

static int
restore_line(void *ctx, const char *member, size_t lineno, const char *line,
    size_t len)
{
	struct restore *r = ctx;
	json_error_t jerr;
	json_t *v;
	int kind = member_kind(member), error;

	if (kind < 0)
		return wf_error_set(WF_EINPUT, "archive '%s': unexpected member "
		    "'%s'", r->path, member);
	if ((kind == 0) != (r->stage == 0) || kind < r->stage)
		return wf_error_set(WF_EINPUT, "archive '%s': member '%s' out of "
		    "order (manifest.json, entries-*.jsonl, audit-*.jsonl)",
		    r->path, member);
	if (!(v = json_loadb(line, len, 0, &jerr)))
		return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu:%d: %s",
		    r->path, member, lineno, jerr.column, jerr.text);
	switch (kind) {
	case 0:
		error = restore_manifest(r, v);
		r->stage = 1;
		break;
	case 1:
		error = restore_entry(r, member, lineno, v);
		break;
	default:
		r->stage = 2;
		error = restore_audit(r, member, lineno, v);
		break;
	}
	json_decref(v);
	return error;
}

int
wf_queue_restore(json_t **out, struct wf_queue *q, const char *path)
{
	struct restore r;
	json_t *report = NULL;
	size_t i;
	int error, rc;

	if (out)
		*out = NULL;
	memset(&r, 0, sizeof(r));
	r.q = q;
	r.path = path;
	if ((error = begin(q)) < 0)
		return error;
	if ((error = exec(q, "CREATE TEMP TABLE IF NOT EXISTS wf_restored"
	    " (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")) < 0 ||
	    (error = exec(q, "DELETE FROM temp.wf_restored")) < 0)
		goto out;
	for (i = 0; i < NRESTORE_SQL; i++)
		if ((rc = sqlite3_prepare_v2(q->db, restore_sql[i], -1,
		    restore_stmt(&r, i), NULL)) != SQLITE_OK) {
			error = db_error(q, rc, "cannot prepare a statement");
			goto out;
		}
	if ((error = wf_tarball_read(path, restore_line, &r)) < 0)
		goto out;
	if (r.stage == 0) {
		error = wf_error_set(WF_EINPUT, "'%s' is not a wf queue archive "
		    "(no manifest.json)", path);
		goto out;
	}
	if (r.nentries != r.want_entries || r.naudit != r.want_audit) {
		error = wf_error_set(WF_EINPUT, "archive '%s' is incomplete: "
		    "%lld of %lld entries and %lld of %lld audit rows", path,
		    (long long)r.nentries, (long long)r.want_entries,
		    (long long)r.naudit, (long long)r.want_audit);
		goto out;
	}
	if ((error = exec(q, "DELETE FROM temp.wf_restored")) < 0)
		goto out;
	if (out && !(report = json_pack("{s:s, s:I, s:I}", "archive", path,
	    "entries", (json_int_t)r.nentries, "audit",
	    (json_int_t)r.naudit))) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = commit(q)) < 0)
		goto out;
	if (out) {
		*out = report;
		report = NULL;
	}
out:
	for (i = 0; i < NRESTORE_SQL; i++)
		sqlite3_finalize(*restore_stmt(&r, i));
	if (error < 0)
		rollback(q);
	json_decref(report);
	return error;
}

/*
 * Leases held by wf-apply: released after a crash, annotated with what
 * the checks said, and the check results cached by tree.
 */

int
wf_queue_release(struct wf_queue *q, const char *id, const char *token,
    const char *why)
{
	struct held h = { 0, 0, 0, "", NULL };
	sqlite3_stmt *st = NULL;
	int64_t now = wf_queue_now();
	json_t *d;
	int error, rc;

	if ((error = begin(q)) < 0)
		return error;
	if ((error = find_lease(&h, q, id, token)) < 0)
		goto out;
	rc = sqlite3_prepare_v2(q->db, "UPDATE entries SET state = 'queued',"
	    " attempts = max(attempts - 1, 0), lease_owner = NULL,"
	    " lease_token = NULL, lease_expires = NULL, not_before = 0,"
	    " updated_at = ?2 WHERE qid = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot release a lease");
		goto out;
	}
	sqlite3_bind_int64(st, 1, h.qid);
	sqlite3_bind_int64(st, 2, now);
	if ((error = step_done(q, st, "cannot release a lease")) < 0)
		goto out;
	d = detail(q, h.owner, now, why ? why : "released");
	if ((error = audit(q, h.qid, id, now, "leased", "queued", d)) < 0)
		goto out;
	error = commit(q);
out:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(q);
	free(h.paths);
	return error;
}

int
wf_queue_note(struct wf_queue *q, const char *id, const char *token,
    const char *why, const json_t *extra)
{
	struct held h = { 0, 0, 0, "", NULL };
	int64_t now = wf_queue_now();
	const char *k;
	json_t *d = NULL, *v;
	int error;

	if ((error = begin(q)) < 0)
		return error;
	if ((error = find_lease(&h, q, id, token)) < 0)
		goto out;
	if (!(d = detail(q, h.owner, now, why))) {
		error = wf_error_oom();
		goto out;
	}
	json_object_foreach((json_t *)extra, k, v)
		if (!json_object_get(d, k) && json_object_set(d, k, v) < 0) {
			error = wf_error_oom();
			goto out;
		}
	error = audit(q, h.qid, id, now, "leased", "leased", d);
	d = NULL;
	if (error < 0)
		goto out;
	error = commit(q);
out:
	json_decref(d);
	if (error < 0)
		rollback(q);
	free(h.paths);
	return error;
}

int
wf_queue_cache_get(json_t **out, struct wf_queue *q, const char *tree,
    const char *command)
{
	sqlite3_stmt *st = NULL;
	json_error_t jerr;
	int error, rc;

	*out = NULL;
	rc = sqlite3_prepare_v2(q->db, "SELECT result FROM check_cache WHERE"
	    " tree = ?1 AND command = ?2", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_error(q, rc, "cannot read the check cache");
	sqlite3_bind_text(st, 1, tree, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, command, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		error = wf_error_set(WF_ENOTFOUND, "no cached result");
	} else if (rc != SQLITE_ROW) {
		error = db_error(q, rc, "cannot read the check cache");
	} else if (!(*out = json_loads((const char *)sqlite3_column_text(st, 0),
	    0, &jerr))) {
		error = wf_error_set(WF_EOS, "queue '%s': a damaged check "
		    "result: %s", q->path, jerr.text);
	} else {
		error = 0;
	}
	sqlite3_finalize(st);
	return error;
}

int
wf_queue_cache_put(struct wf_queue *q, const char *tree, const char *command,
    const json_t *result)
{
	sqlite3_stmt *st = NULL;
	char *s = NULL;
	int error, rc;

	if (wf_json_dump(&s, NULL, result, 0) < 0)
		return wf_error_oom();
	if ((error = begin(q)) < 0)
		goto out;
	rc = sqlite3_prepare_v2(q->db, "INSERT OR REPLACE INTO check_cache"
	    " (tree, command, result, at) VALUES (?1, ?2, ?3, ?4)", -1, &st,
	    NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot write the check cache");
		goto out;
	}
	sqlite3_bind_text(st, 1, tree, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, command, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, wf_queue_now());
	if ((error = step_done(q, st, "cannot write the check cache")) < 0)
		goto out;
	error = commit(q);
out:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(q);
	free(s);
	return error;
}

int
wf_queue_batch_supersede(json_t **out, struct wf_queue_batch *b,
    const char *target, const char *ref, const char *by)
{
	struct wf_queue *q = b->q;
	sqlite3_stmt *st = NULL;
	json_t *found = NULL, *res = NULL, *e;
	size_t i;
	int error, rc;

	if (out)
		*out = NULL;
	if (!b->open)
		return wf_error_set(WF_ERROR, "the batch is closed");
	if (!(found = json_array()) || !(res = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	rc = sqlite3_prepare_v2(q->db, "SELECT qid, id, state FROM entries"
	    " WHERE target = ?1 AND state IN ('queued', 'failed', 'leased')"
	    " AND id <> ?3 AND json_extract((SELECT payload FROM payloads p"
	    " WHERE p.qid = entries.qid), '$.meta.ref') = ?2"
	    " ORDER BY qid", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot look for earlier versions");
		goto out;
	}
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(e = json_pack("{s:I, s:s, s:s}", "queue_id",
		    (json_int_t)sqlite3_column_int64(st, 0), "id",
		    (const char *)sqlite3_column_text(st, 1), "state",
		    (const char *)sqlite3_column_text(st, 2))) ||
		    json_array_append_new(found, e) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		error = db_error(q, rc, "cannot look for earlier versions");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = sqlite3_prepare_v2(q->db, "DELETE FROM entries WHERE qid = ?1",
	    -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(q, rc, "cannot drop an entry");
		goto out;
	}
	json_array_foreach(found, i, e) {
		int64_t qid = json_integer_value(json_object_get(e,
		    "queue_id"));
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *state = json_string_value(json_object_get(e,
		    "state"));
		json_t *d;

		if (strcmp(state, "leased") != 0) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, qid);
			if ((error = step_done(q, st, "cannot drop an "
			    "entry")) < 0)
				goto out;
			d = detail(q, NULL, b->now, "superseded");
			if (d && json_object_set_new(d, "by",
			    json_string(by)) < 0) {
				json_decref(d);
				d = NULL;
			}
			if ((error = audit(q, qid, id, b->now, state, NULL,
			    d)) < 0)
				goto out;
		}
		if (json_array_append(res, e) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if (out) {
		*out = res;
		res = NULL;
	}
	error = 0;
out:
	sqlite3_finalize(st);
	json_decref(found);
	json_decref(res);
	return error;
}

int
wf_queue_find_qid(char **id, char **state, struct wf_queue *q, int64_t qid)
{
	sqlite3_stmt *st = NULL;
	int error, rc;

	*id = NULL;
	if (state)
		*state = NULL;
	rc = sqlite3_prepare_v2(q->db, "SELECT id, state FROM entries"
	    " WHERE qid = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_error(q, rc, "cannot look up a queue id");
	sqlite3_bind_int64(st, 1, qid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		error = wf_error_set(WF_ENOTFOUND, "no entry with queue id "
		    "%lld", (long long)qid);
	} else if (rc != SQLITE_ROW) {
		error = db_error(q, rc, "cannot look up a queue id");
	} else if (!(*id = strdup((const char *)sqlite3_column_text(st,
	    0))) || (state && !(*state = strdup((const char *)
	    sqlite3_column_text(st, 1))))) {
		free(*id);
		*id = NULL;
		error = wf_error_oom();
	} else {
		error = 0;
	}
	sqlite3_finalize(st);
	return error;
}
