/*
 * The outbox: a SQLite table of events waiting for their sink.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"
#include "error.h"
#include "path.h"
#include "git.h"
#include "outbox.h"

#define OUTBOX_SCHEMA_VERSION 1
#define OUTBOX_BUSY_TIMEOUT_MS 30000

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS outbox ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" sink TEXT NOT NULL,"
	" event_id TEXT NOT NULL,"
	" line BLOB NOT NULL,"
	" spooled_at INTEGER NOT NULL,"	/* ms since the epoch */
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT);"
	"CREATE INDEX IF NOT EXISTS outbox_sink ON outbox (sink, seq);";

struct wf_outbox {
	sqlite3 *db;
	char *path;
};

static int
db_error(struct wf_outbox *ob, int rc, const char *what)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return wf_error_set(WF_EBUSY, "outbox '%s' is busy: %s",
		    ob->path, what);
	if (rc == SQLITE_NOMEM)
		return wf_error_oom();
	if (rc == SQLITE_NOTADB)
		return wf_error_set(WF_EOS, "'%s' is not an outbox database",
		    ob->path);
	return wf_error_set(WF_EOS, "outbox '%s': %s: %s", ob->path, what,
	    sqlite3_errmsg(ob->db));
}

static int
exec(struct wf_outbox *ob, const char *sql)
{
	int rc = sqlite3_exec(ob->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_error(ob, rc, "cannot update");
}

static void
rollback(struct wf_outbox *ob)
{
	if (!sqlite3_get_autocommit(ob->db))
		sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
migrate(struct wf_outbox *ob)
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int rc, version, error;

	if ((error = exec(ob, "BEGIN IMMEDIATE")) < 0)
		return error;
	rc = sqlite3_prepare_v2(ob->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW) {
		error = db_error(ob, rc, "cannot read the schema version");
		goto out;
	}
	version = sqlite3_column_int(st, 0);
	if (version > OUTBOX_SCHEMA_VERSION) {
		error = wf_error_set(WF_EINPUT, "outbox '%s' has schema version "
		    "%d, newer than this wf (%d): upgrade wf", ob->path, version,
		    OUTBOX_SCHEMA_VERSION);
		goto out;
	}
	if (version < OUTBOX_SCHEMA_VERSION) {
		if ((error = exec(ob, schema)) < 0)
			goto out;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    OUTBOX_SCHEMA_VERSION);
		if ((error = exec(ob, sql)) < 0)
			goto out;
	}
	error = 0;
out:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(ob);
	else
		error = exec(ob, "COMMIT");
	return error;
}

int
wf_outbox_open(struct wf_outbox **out, const char *path, int create,
    int durable)
{
	struct wf_outbox *ob;
	int rc, error;

	*out = NULL;
	if (!create && access(path, F_OK) < 0 && errno == ENOENT)
		return WF_ENOTFOUND;
	if (!(ob = calloc(1, sizeof(*ob))) || !(ob->path = strdup(path))) {
		free(ob);
		return wf_error_oom();
	}
	if (create && (error = wf_path_mkdir_parent(path)) < 0)
		goto out;
	rc = sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE |
	    (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		error = wf_error_set(WF_EOS, "cannot open outbox '%s': %s", path,
		    ob->db ? sqlite3_errmsg(ob->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_extended_result_codes(ob->db, 0);
	sqlite3_busy_timeout(ob->db, OUTBOX_BUSY_TIMEOUT_MS);
	if ((rc = wf_db_wal(ob->db, OUTBOX_BUSY_TIMEOUT_MS)) != SQLITE_OK) {
		error = db_error(ob, rc, "cannot use WAL mode");
		goto out;
	}
	if ((error = exec(ob, durable ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL")) < 0 ||
	    (error = migrate(ob)) < 0)
		goto out;
	*out = ob;
	return 0;
out:
	wf_outbox_free(ob);
	return error;
}

void
wf_outbox_free(struct wf_outbox *ob)
{
	if (!ob)
		return;
	sqlite3_close(ob->db);
	free(ob->path);
	free(ob);
}

const char *
wf_outbox_path(const struct wf_outbox *ob)
{
	return ob->path;
}

int
wf_outbox_default_path(char **out, git_repository *repo)
{
	return wf_git_common_path(out, repo, "wf/outbox.db");
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
wf_outbox_add(struct wf_outbox *ob, const char *sink, const char *id,
    const char *line, size_t len, const char *why)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(ob->db, "INSERT INTO outbox (sink, event_id, "
	    "line, spooled_at, last_error) VALUES (?, ?, ?, ?, ?)", -1, &st,
	    NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 3, line, len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now_ms());
		sqlite3_bind_text(st, 5, why, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(ob, rc, "cannot keep an event");
	return 0;
}

int
wf_outbox_pending(size_t *out, struct wf_outbox *ob, const char *sink)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = 0;
	rc = sqlite3_prepare_v2(ob->db, sink ?
	    "SELECT count(*) FROM outbox WHERE sink = ?" :
	    "SELECT count(*) FROM outbox", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		if (sink)
			sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW)
			*out = (size_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_error(ob, rc, "cannot count events");
	return 0;
}

void
wf_outbox_strings_free(char **list)
{
	char **p;

	if (!list)
		return;
	for (p = list; *p; p++)
		free(*p);
	free(list);
}

int
wf_outbox_sinks(char ***out, size_t *n, struct wf_outbox *ob)
{
	sqlite3_stmt *st = NULL;
	char **list = NULL, **bigger;
	size_t len = 0, cap = 0;
	int rc, error = 0;

	*out = NULL;
	*n = 0;
	rc = sqlite3_prepare_v2(ob->db, "SELECT sink FROM outbox GROUP BY sink "
	    "ORDER BY min(seq)", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(ob, rc, "cannot list sinks");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len + 2 > cap) {
			cap = cap ? cap * 2 : 8;
			if (!(bigger = realloc(list, cap * sizeof(*list)))) {
				error = wf_error_oom();
				goto out;
			}
			list = bigger;
		}
		list[len + 1] = NULL;
		if (!(list[len] = strdup((const char *)
		    sqlite3_column_text(st, 0)))) {
			error = wf_error_oom();
			goto out;
		}
		len++;
	}
	if (rc != SQLITE_DONE) {
		error = db_error(ob, rc, "cannot list sinks");
		goto out;
	}
	if (!list && !(list = calloc(1, sizeof(*list)))) {
		error = wf_error_oom();
		goto out;
	}
	*out = list;
	*n = len;
	list = NULL;
out:
	sqlite3_finalize(st);
	wf_outbox_strings_free(list);
	return error;
}

/*
 * Deliver the oldest event of `sink` in one transaction: 1 when one was
 * delivered, 0 when none waits, an error otherwise.
 */
static int
flush_one(struct wf_outbox *ob, const char *sink,
    int (*deliver)(const char *, size_t, void *), void *payload)
{
	sqlite3_stmt *st = NULL, *upd = NULL;
	int64_t seq;
	int rc, error, refused;

	if ((error = exec(ob, "BEGIN IMMEDIATE")) < 0)
		return error;
	rc = sqlite3_prepare_v2(ob->db, "SELECT seq, line FROM outbox WHERE "
	    "sink = ? ORDER BY seq LIMIT 1", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		error = db_error(ob, rc, "cannot read an event");
		goto out;
	}
	sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		error = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		error = db_error(ob, rc, "cannot read an event");
		goto out;
	}
	seq = sqlite3_column_int64(st, 0);
	refused = deliver(sqlite3_column_blob(st, 1),
	    (size_t)sqlite3_column_bytes(st, 1), payload);
	if (refused < 0) {
		char why[512];

		snprintf(why, sizeof(why), "%s", wf_error_last());
		rc = sqlite3_prepare_v2(ob->db, "UPDATE outbox SET attempts = "
		    "attempts + 1, last_error = ? WHERE seq = ?", -1, &upd, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(upd, 1, why, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(upd, 2, seq);
			rc = sqlite3_step(upd);
		}
		/* Best effort: the delivery's error is the one to report. */
		if (rc == SQLITE_DONE)
			exec(ob, "COMMIT");
		error = wf_error_set(refused, "%s", why);
		goto out;
	}
	rc = sqlite3_prepare_v2(ob->db, "DELETE FROM outbox WHERE seq = ?", -1,
	    &upd, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(upd, 1, seq);
		rc = sqlite3_step(upd);
	}
	if (rc != SQLITE_DONE) {
		error = db_error(ob, rc, "cannot delete a delivered event");
		goto out;
	}
	error = 1;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(upd);
	if (error < 0)
		rollback(ob);
	else if (!sqlite3_get_autocommit(ob->db)) {
		int e = exec(ob, "COMMIT");

		if (e < 0) {
			rollback(ob);
			error = e;
		}
	}
	return error;
}

int
wf_outbox_flush(size_t *delivered, struct wf_outbox *ob, const char *sink,
    int (*deliver)(const char *line, size_t len, void *payload),
    void *payload)
{
	size_t n = 0;
	int error;

	while ((error = flush_one(ob, sink, deliver, payload)) > 0)
		n++;
	if (delivered)
		*delivered = n;
	return error;
}
