#include <string.h>
#include <time.h>

#include "db.h"

static int
journal_mode(sqlite3 *db, const char *sql, int *is_wal)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*is_wal = 0;
	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		*is_wal = mode && strcmp(mode, "wal") == 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

int
wf_db_wal(sqlite3 *db, int timeout_ms)
{
	struct timespec pause = { 0, 1000000 };
	long waited_ms = 0;
	int rc, is_wal;

	for (;;) {
		rc = journal_mode(db, "PRAGMA journal_mode", &is_wal);
		if (rc == SQLITE_OK && is_wal)
			return SQLITE_OK;
		if (rc == SQLITE_OK)
			rc = journal_mode(db, "PRAGMA journal_mode = WAL",
			    &is_wal);
		if (rc == SQLITE_OK && is_wal)
			return SQLITE_OK;
		if ((rc != SQLITE_OK && rc != SQLITE_BUSY &&
		    rc != SQLITE_LOCKED) || waited_ms >= timeout_ms)
			return rc == SQLITE_OK ? SQLITE_BUSY : rc;
		nanosleep(&pause, NULL);
		waited_ms += pause.tv_nsec / 1000000;
		if (pause.tv_nsec < 64000000)
			pause.tv_nsec *= 2;
	}
}
