#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "db.h"
#include "error.h"
#include "path.h"
#include "state.h"

struct wf_state {
	sqlite3 *db;
	char *path;
};

static int
db_error(struct wf_state *st, const char *what)
{
	int rc = sqlite3_errcode(st->db);

	return wf_error_set(rc == SQLITE_BUSY || rc == SQLITE_LOCKED ?
	    WF_EBUSY : WF_EOS, "run state '%s': %s: %s", st->path, what,
	    sqlite3_errmsg(st->db));
}

int
wf_state_open(struct wf_state **out, const char *path)
{
	struct wf_state *st;
	int error;

	*out = NULL;
	if (!(st = calloc(1, sizeof(*st))) || !(st->path = strdup(path))) {
		free(st);
		return wf_error_oom();
	}
	if ((error = wf_path_mkdir_parent(path)) < 0)
		goto out;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		error = st->db ? db_error(st, "cannot open") : wf_error_oom();
		goto out;
	}
	sqlite3_busy_timeout(st->db, 30000);
	if (wf_db_wal(st->db, 30000) != SQLITE_OK) {
		error = db_error(st, "cannot use WAL mode");
		goto out;
	}
	if (sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL;"
	    "CREATE TABLE IF NOT EXISTS plan_state ("
	    " plan_id TEXT PRIMARY KEY, run_key TEXT NOT NULL,"
	    " finished INTEGER NOT NULL, updated_at INTEGER);"
	    "CREATE TABLE IF NOT EXISTS workflow_state ("
	    " plan_id TEXT NOT NULL, workflow TEXT NOT NULL,"
	    " entry TEXT NOT NULL, change TEXT, updated_at INTEGER,"
	    " PRIMARY KEY (plan_id, workflow))",
	    NULL, NULL, NULL) != SQLITE_OK) {
		error = db_error(st, "cannot set up");
		goto out;
	}
	*out = st;
	st = NULL;
	error = 0;
out:
	wf_state_free(st);
	return error;
}

void
wf_state_free(struct wf_state *st)
{
	if (!st)
		return;
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

/* Run one statement with text parameters (NULL binds NULL). */
static int
run(struct wf_state *st, const char *sql, int n, const char *const *args)
{
	sqlite3_stmt *s = NULL;
	int i, rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_error(st, "cannot prepare");
	for (i = 0; i < n; i++)
		sqlite3_bind_text(s, i + 1, args[i], -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, "cannot write");
	return 0;
}

static int
load(json_t *out, struct wf_state *st, const char *plan_id)
{
	sqlite3_stmt *s = NULL;
	int rc, error = 0;

	if (sqlite3_prepare_v2(st->db, "SELECT workflow, entry, change FROM "
	    "workflow_state WHERE plan_id = ?", -1, &s, NULL) != SQLITE_OK)
		return db_error(st, "cannot read");
	sqlite3_bind_text(s, 1, plan_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *change = (const char *)sqlite3_column_text(s, 2);
		json_t *entry = json_loads((const char *)sqlite3_column_text(s,
		    1), 0, NULL);
		json_t *ch = change ? json_loads(change, 0, NULL) : json_null();

		/* An unreadable record: that workflow runs again. */
		if (json_is_object(entry) && ch &&
		    json_object_set_new(out, (const char *)sqlite3_column_text(s,
		    0), json_pack("{s:O, s:O}", "entry", entry, "change",
		    ch)) < 0)
			error = wf_error_oom();
		json_decref(entry);
		json_decref(ch);
		if (error < 0)
			break;
	}
	if (error == 0 && rc != SQLITE_DONE)
		error = db_error(st, "cannot read");
	sqlite3_finalize(s);
	return error;
}

int
wf_state_begin(json_t **out, struct wf_state *st, const char *plan_id,
    const char *run_key)
{
	sqlite3_stmt *s = NULL;
	json_t *done = NULL;
	char now[32];
	const char *args[3];
	int rc, error, resume = 0;

	*out = NULL;
	if (!(done = json_object()))
		return wf_error_oom();
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		error = db_error(st, "cannot begin");
		goto out;
	}
	if (sqlite3_prepare_v2(st->db, "SELECT run_key, finished FROM "
	    "plan_state WHERE plan_id = ?", -1, &s, NULL) != SQLITE_OK) {
		error = db_error(st, "cannot read");
		goto rollback;
	}
	sqlite3_bind_text(s, 1, plan_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		resume = strcmp((const char *)sqlite3_column_text(s, 0),
		    run_key) == 0 && sqlite3_column_int(s, 1) == 0;
	else if (rc != SQLITE_DONE) {
		error = db_error(st, "cannot read");
		goto rollback;
	}
	sqlite3_finalize(s);
	s = NULL;
	args[0] = plan_id;
	if (resume) {
		if ((error = load(done, st, plan_id)) < 0)
			goto rollback;
	} else if ((error = run(st, "DELETE FROM workflow_state WHERE "
	    "plan_id = ?", 1, args)) < 0) {
		goto rollback;
	}
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	args[1] = run_key;
	args[2] = now;
	if ((error = run(st, "INSERT OR REPLACE INTO plan_state (plan_id, "
	    "run_key, finished, updated_at) VALUES (?, ?, 0, ?)", 3,
	    args)) < 0)
		goto rollback;
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		error = db_error(st, "cannot commit");
		goto rollback;
	}
	*out = done;
	done = NULL;
	error = 0;
	goto out;
rollback:
	sqlite3_finalize(s);
	s = NULL;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
	json_decref(done);
	return error;
}

int
wf_state_record(struct wf_state *st, const char *plan_id,
    const char *workflow, const json_t *entry, const json_t *change)
{
	char *e = json_dumps(entry, JSON_COMPACT), now[32];
	char *c = change ? json_dumps(change, JSON_COMPACT) : NULL;
	const char *args[5];
	int error;

	if (!e || (change && !c)) {
		error = wf_error_oom();
		goto out;
	}
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	args[0] = plan_id;
	args[1] = workflow;
	args[2] = e;
	args[3] = c;
	args[4] = now;
	error = run(st, "INSERT OR REPLACE INTO workflow_state (plan_id, "
	    "workflow, entry, change, updated_at) VALUES (?, ?, ?, ?, ?)", 5,
	    args);
out:
	free(e);
	free(c);
	return error;
}

int
wf_state_finish(struct wf_state *st, const char *plan_id)
{
	const char *args[1] = { plan_id };
	int error;

	if ((error = run(st, "UPDATE plan_state SET finished = 1 WHERE "
	    "plan_id = ?", 1, args)) < 0)
		return error;
	return run(st, "DELETE FROM workflow_state WHERE plan_id = ?", 1, args);
}
