#ifndef WF_QUEUE_H
#define WF_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "change.h"

/*
 * The change queue: one SQLite database in WAL mode that every landing
 * goes through.  Entries move queued -> leased -> landed, or back to
 * failed (retried after a backoff) and finally dead after max attempts.
 * A lease carries a token that changes on every lease; an ack with a
 * stale token is refused, so an expired lease taken over by another
 * worker can never be acked twice.  Writers use BEGIN IMMEDIATE and wait
 * out SQLITE_BUSY with jittered backoff: callers see WF_EBUSY only when
 * the database stayed locked for the whole busy timeout.
 *
 * Entries are reported as JSON objects with these keys, in this order:
 * queue_id, id, target, kind, state, priority, attempts, max_attempts,
 * blocked (dependencies not yet landed), depends_on, not_before,
 * lease_owner, lease_token, lease_expires, created_at, updated_at,
 * finished_at, last_error, hash, paths; times are UTC ISO 8601 strings
 * with milliseconds, absent values null.
 */
struct wf_queue;

struct wf_queue_opts {
	int max_attempts;	/* leases before an entry is dead (5) */
	int64_t backoff_ms;	/* first retry delay, doubled each time (1000) */
	int64_t backoff_max_ms;	/* cap on the retry delay (1 hour) */
	int64_t busy_timeout_ms;	/* how long to wait out a lock (30 s) */
	int durable;		/* synchronous=FULL: survive power loss too */
	const char *actor;	/* "who" in the audit log (NULL: "pid N") */
	/*
	 * Leave the log (WAL) as it is on close, for the next connection
	 * to close to fold into the database: a short-lived writer (the
	 * post-receive hook) then returns without the checkpoint's
	 * fsyncs.  What it committed is as safe as synchronous=NORMAL
	 * makes it (lost only with the machine, until that checkpoint).
	 */
	int no_checkpoint;
};

#define WF_QUEUE_OPTS_INIT { 5, 1000, 3600000, 30000, 0, NULL, 0 }

/* The schema version this code reads and writes. */
#define WF_QUEUE_SCHEMA_VERSION 4

/*
 * Open (creating when missing, with its directory) the queue at `path`
 * and bring its schema up to date.  `opts` may be NULL.  *out is the
 * caller's to wf_queue_free(); NULL on error: WF_EOS when the file
 * cannot be opened or is not a queue, WF_EINPUT when its schema is newer
 * than this code, WF_EBUSY when it stayed locked.
 */
int wf_queue_open(struct wf_queue **out, const char *path,
    const struct wf_queue_opts *opts);

/* Close the database and free the handle; no-op on NULL. */
void wf_queue_free(struct wf_queue *q);

/*
 * The default queue of a repository: "wf/queue.db" inside its common git
 * directory (shared by all worktrees).  *out is a new malloc'ed string.
 */
int wf_queue_default_path(char **out, git_repository *repo);

/*
 * Store `n` validated changes in one transaction.  *out is a new array
 * with, per change, {"id", "queue_id", "state", "position", "existing"}
 * (position: 1 for the next entry a lease takes, null when not waiting;
 * existing: true when the same id with the same content was already
 * stored, which is a no-op).  The same id with different content is
 * WF_ECONFLICT: without `keep_going` nothing is stored and *out is NULL;
 * with it the other changes are stored and the refused one's item is
 * {"id", "error"}.  *bad (may be NULL) is set to the index of the
 * change an error is about (n when none is).  On any other error the
 * queue is unchanged.
 */
int wf_queue_enqueue(json_t **out, size_t *bad, struct wf_queue *q,
    struct wf_change *const *changes, size_t n, int keep_going);

/*
 * The same, a change at a time, for a stream: wf_queue_batch_begin()
 * takes the write lock and opens the transaction; each
 * wf_queue_batch_add() stores one change.  A change whose id is stored
 * with other content is WF_ECONFLICT: with `keep_going` it is recorded
 * as refused (its `error`) and the batch goes on; without, or on any
 * other error, the batch can only be freed.  wf_queue_batch_commit()
 * fills in positions and commits; wf_queue_batch_free() rolls back
 * what was not committed.  Then wf_queue_batch_get() tells what became
 * of each change added, in order.
 */
struct wf_queue_batch;

struct wf_queue_added {
	const char *id;
	int64_t queue_id;	/* 0 when archived */
	const char *state;
	int64_t position;	/* 1 for the next a lease takes; 0 not waiting */
	int existing;		/* the same request was stored before */
	const char *error;	/* refused with keep_going, else NULL */
};

int wf_queue_batch_begin(struct wf_queue_batch **out, struct wf_queue *q,
    int keep_going);
int wf_queue_batch_add(struct wf_queue_batch *b, const struct wf_change *c);
int wf_queue_batch_commit(struct wf_queue_batch *b);
size_t wf_queue_batch_count(const struct wf_queue_batch *b);
void wf_queue_batch_get(struct wf_queue_added *out,
    const struct wf_queue_batch *b, size_t i);
void wf_queue_batch_free(struct wf_queue_batch *b);

/* What wf_queue_enqueue() gives for one change; NULL when out of memory. */
json_t *wf_queue_added_json(const struct wf_queue_added *a);

/*
 * Lease up to `max` entries of `target` for `owner` for `lease_ms`:
 * highest priority first, then first in first out, skipping entries
 * whose dependencies have not all landed and failed entries still in
 * their backoff; an entry whose dependencies that have not landed are
 * all in the lease comes with it, after them (a series lands in one
 * batch; the lander must drop a change whose dependency fails).
 * Expired leases are reclaimed first.  *out is a new
 * array of entries, possibly empty, each with its new lease_token and a
 * "payload": the canonical request as stored, as a JSON string of its
 * text (parsing it was a fifth of a lease): wf_queue_payload() gives
 * it parsed.  On error the queue is unchanged.
 */
int wf_queue_lease(json_t **out, struct wf_queue *q, const char *target,
    size_t max, const char *owner, int64_t lease_ms);

/*
 * The payload of a leased entry, parsed: *out is a reference borrowed
 * from `entry`.  The first call parses the text wf_queue_lease() left
 * and puts the object in its place in `entry` (so a dump of the entry
 * then shows it as wf_queue_show() does); later calls return it.
 * WF_EINPUT when the entry has no payload or it is not JSON; *out is
 * then NULL and the entry unchanged.
 */
int wf_queue_payload(json_t **out, json_t *entry);

/*
 * Extend the lease of entry `id` held with `token` to `lease_ms` from
 * now.  WF_ENOTFOUND for an unknown id, WF_ECONFLICT when the token is
 * not the entry's current lease (expired and taken over, or acked); the
 * queue is then unchanged.
 */
int wf_queue_extend(struct wf_queue *q, const char *id, const char *token,
    int64_t lease_ms);

/*
 * Mark the leased entry `id` landed.  `paths` (borrowed; NULL for the
 * paths recorded at enqueue) goes into the audit log as the paths the
 * landing modified.  Entries that depended on it may become leasable.
 * Errors as for wf_queue_extend(), and the queue is then unchanged.
 */
int wf_queue_ack_landed(struct wf_queue *q, const char *id,
    const char *token, const json_t *paths);

/*
 * As wf_queue_ack_landed() for the `n` entries ids[i] held with
 * tokens[i] (paths as recorded at enqueue), in one transaction: all are
 * acked, or, on any error, none.
 */
int wf_queue_ack_landed_batch(struct wf_queue *q, const char *const *ids,
    const char *const *tokens, size_t n);

/*
 * Mark the leased entry `id` failed with `why` (NULL for none): it is
 * retried after a jittered exponential backoff, or dead when it has used
 * all its attempts.  Errors as for wf_queue_extend().
 */
int wf_queue_ack_failed(struct wf_queue *q, const char *id,
    const char *token, const char *why);

/*
 * Return expired leases to the queue (or to dead when out of attempts).
 * *count (may be NULL) receives how many.  On error nothing changes.
 */
int wf_queue_reclaim(size_t *count, struct wf_queue *q);

/*
 * The entry `id` with "payload" and "audit" (its log, oldest first).
 * *out is a new reference; WF_ENOTFOUND for an unknown id.
 */
int wf_queue_show(json_t **out, struct wf_queue *q, const char *id);

/* Filters for wf_queue_list(); NULL / 0 fields do not filter. */
struct wf_queue_filter {
	const char *state;
	const char *target;
	int64_t since_ms;	/* created at or after (ms since the epoch) */
	size_t limit;
};

#define WF_QUEUE_FILTER_INIT { NULL, NULL, 0, 0 }

/*
 * Entries matching `f` (may be NULL) in queue order (queue_id), as a new
 * array.  WF_EINPUT for an unknown state name.
 */
int wf_queue_list(json_t **out, struct wf_queue *q,
    const struct wf_queue_filter *f);

/*
 * Put a dead or failed entry back in the queue with its attempts reset.
 * WF_ENOTFOUND for an unknown id, WF_ECONFLICT in any other state.
 */
int wf_queue_retry(struct wf_queue *q, const char *id);

/*
 * Delete an entry that is not leased (its audit log stays).
 * WF_ENOTFOUND for an unknown id, WF_ECONFLICT when leased.
 */
int wf_queue_drop(struct wf_queue *q, const char *id);

/*
 * Numbers for monitoring, of one consistent moment, as a new object:
 * {"depth": {"queued", "leased", "landed", "failed", "dead"},
 *  "blocked" (waiting entries held back by dependencies),
 *  "oldest_queued_age_ms" (null when none is queued),
 *  "landed_last_hour", "failed_last_hour" (failures and deaths),
 *  "landed_per_hour_24h", "failed_per_hour_24h" (averages of the day),
 *  "leases", "lease_latency_ms_mean" (from ready to leased; null before
 *  any lease), "busy_retries" (lock waits, all processes)}.
 * Reads only; on error *out is NULL.
 */
int wf_queue_metrics(json_t **out, struct wf_queue *q);

struct wf_queue_doctor_opts {
	int64_t stuck_ms;	/* ready and not leased for this long (1 h) */
	int64_t wal_max_bytes;	/* a larger WAL is a problem (64 MiB) */
};

#define WF_QUEUE_DOCTOR_OPTS_INIT { 3600000, 64 * 1024 * 1024 }

/*
 * Check the queue's health.  *out is a new object {"ok", "problems",
 * "checks": [{"check", "ok", "value", "detail", "advice"}]} with the
 * checks schema, integrity (PRAGMA integrity_check; value: its
 * messages), wal_size, expired_leases, stuck_ready and stuck_blocked;
 * "advice", present only on a failed check, says what to do.  A problem
 * found is not an error: the function returns 0 with "ok" false.  Reads
 * only; `opts` may be NULL for the defaults.
 */
int wf_queue_doctor(json_t **out, struct wf_queue *q,
    const struct wf_queue_doctor_opts *opts);

/*
 * Move the landed and dead entries finished more than `older_than_ms`
 * ago, with their dependencies and audit rows, into a new archive at
 * `path` (a gzip'ed tar of JSON Lines: manifest.json, entries-NNNN.jsonl,
 * audit-NNNN.jsonl; see wf-queue(1)), delete them and leave a tombstone
 * per id, so an archived id is never queued again and still satisfies
 * depends_on.  The write lock is held throughout: the archive is written
 * to "PATH.tmp-XXXXXX" and synced, the deletion made, the archive
 * renamed into place, then the deletion committed, so a crash leaves the
 * entries in the queue, in the archive, or in both, never in neither.
 * *out (may be NULL) is a new object {"archive", "entries", "audit",
 * "cutoff"}.  WF_ECONFLICT when `path` exists.  On error the queue is
 * unchanged and nothing is left at `path`, except when the final commit
 * itself failed: then the complete archive stays (the message says so).
 */
int wf_queue_archive(json_t **out, struct wf_queue *q, const char *path,
    int64_t older_than_ms);

/*
 * Bring back the entries and audit rows of the archive at `path`, as
 * they were (queue ids and audit sequence numbers too, unless taken:
 * then new ones in the same order), and remove their tombstones, in one
 * transaction.  *out (may be NULL) is a new object {"archive", "entries",
 * "audit"}.  WF_ECONFLICT when an id is in the queue already, WF_EINPUT
 * when the file is not a wf queue archive or is damaged or incomplete,
 * WF_EOS when it cannot be read; the queue is then unchanged.
 */
int wf_queue_restore(json_t **out, struct wf_queue *q, const char *path);

/* "SQLITE_BUSY retries" this handle waited out so far. */
uint64_t wf_queue_busy_retries(const struct wf_queue *q);

/*
 * Call fn(sql, plan, arg) for each statement the queue keeps prepared,
 * with SQLite's query plan for it ("; " between the steps of the plan),
 * so a test can tell that none reads more of the queue than it needs.
 * Stops at the first non-zero return of fn and returns it.
 */
int wf_queue_explain(struct wf_queue *q,
    int (*fn)(const char *sql, const char *plan, void *arg), void *arg);

/* Milliseconds since the epoch, the clock the queue uses. */
int64_t wf_queue_now(void);

/*
 * Give back the lease of entry `id` held with `token` without counting
 * the attempt: it is queued again at once.  For leases a crash or an
 * interrupted step left behind.  Errors as for wf_queue_extend(), and
 * the queue is then unchanged.
 */
int wf_queue_release(struct wf_queue *q, const char *id, const char *token,
    const char *why);

/*
 * Add a row to the audit log of the leased entry `id` (held with
 * `token`) without changing its state: {"who", "when", "why", ...} with
 * the members of `extra` (borrowed; may be NULL) after these.  Errors as
 * for wf_queue_extend().
 */
int wf_queue_note(struct wf_queue *q, const char *id, const char *token,
    const char *why, const json_t *extra);

/*
 * The cached result of check `command` on tree `tree` (hex id), as
 * stored by wf_queue_cache_put(): *out is a new reference.
 * WF_ENOTFOUND when there is none; *out is then NULL.
 */
int wf_queue_cache_get(json_t **out, struct wf_queue *q, const char *tree,
    const char *command);

/*
 * Keep `result` (borrowed) as the result of `command` on `tree`,
 * replacing an older one.  On error the cache is unchanged.
 */
int wf_queue_cache_put(struct wf_queue *q, const char *tree,
    const char *command, const json_t *result);

/*
 * Inside batch `b`, before change `by` is added: supersede the earlier
 * versions of a change pushed again to the same ref, the entries of
 * `target`, other than `by`, whose request's meta.ref is `ref`.  Those
 * waiting (queued or failed) are dropped as wf_queue_drop() does, the
 * audit row saying "superseded" and "by"; leased ones, being landed,
 * are left as they are.  *out (may be NULL) is a new array, in queue
 * order, of {"queue_id", "id", "state"} (the state they had: leased
 * ones were kept, the others dropped).  On error the batch can only be
 * freed (nothing of it is committed).
 */
int wf_queue_batch_supersede(json_t **out, struct wf_queue_batch *b,
    const char *target, const char *ref, const char *by);

/*
 * The id and state of the entry with queue id `qid`: *id and *state
 * (may be NULL) are new strings.  WF_ENOTFOUND when there is no such
 * entry (never queued, dropped, superseded or archived); *id is then
 * NULL.
 */
int wf_queue_find_qid(char **id, char **state, struct wf_queue *q,
    int64_t qid);

#endif
