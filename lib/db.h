#ifndef WF_DB_H
#define WF_DB_H

#include <sqlite3.h>

/*
 * Put the database in WAL mode.  Switching needs an exclusive lock, and
 * SQLite answers SQLITE_BUSY at once (without calling the busy handler)
 * when another process opens or switches the same new database at that
 * moment; so this retries with a short, growing sleep for up to
 * timeout_ms.  A database already in WAL mode is left as it is.
 * Returns an SQLite result code: SQLITE_OK, or the last failure.
 */
int wf_db_wal(sqlite3 *db, int timeout_ms);

#endif
