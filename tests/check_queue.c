#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <sqlite3.h>

#include "change.h"
#include "check_suites.h"
#include "error.h"
#include "queue.h"

static char dir[256], dbpath[300];
static struct wf_queue *q;

static void
setup(void)
{
	struct wf_queue_opts o = WF_QUEUE_OPTS_INIT;

	snprintf(dir, sizeof(dir), "/tmp/wf-check-queue.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(dbpath, sizeof(dbpath), "%s/sub/queue.db", dir);
	o.max_attempts = 3;
	o.backoff_ms = 0;
	o.actor = "check";
	ck_assert_msg(wf_queue_open(&q, dbpath, &o) == 0, "%s",
	    wf_error_last());
}

static void
teardown(void)
{
	char cmd[300];

	wf_queue_free(q);
	q = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A change request parsed from its JSON text. */
static struct wf_change *
parse_change(const char *text)
{
	struct wf_json_reader *r;
	struct wf_json_doc d;
	struct wf_change *c;

	test_doc(&d, &r, text);
	ck_assert_msg(wf_change_parse(&c, &d, NULL, NULL) == 0, "%s",
	    wf_error_last());
	json_decref(d.value);
	test_reader_free(r);
	return c;
}

/* A files request; `deps` is a JSON array text or NULL. */
static struct wf_change *
change(const char *id, int priority, const char *deps, const char *content)
{
	char text[1024];

	snprintf(text, sizeof(text), "{\"id\": \"%s\", \"target\": \"main\","
	    " \"kind\": \"files\", \"priority\": %d, \"depends_on\": %s,"
	    " \"files\": [{\"path\": \"f/%s\", \"content\": \"%s\"}]}", id,
	    priority, deps ? deps : "[]", id, content ? content : "aGk=");
	return parse_change(text);
}

/* A files request pushed to `ref` (its meta.ref), as the hooks make. */
static struct wf_change *
change_ref(const char *id, const char *ref)
{
	char text[1024];

	snprintf(text, sizeof(text), "{\"id\": \"%s\", \"target\": \"main\","
	    " \"kind\": \"files\", \"meta\": {\"ref\": \"%s\"},"
	    " \"files\": [{\"path\": \"f/%s\", \"content\": \"aGk=\"}]}",
	    id, ref, id);
	return parse_change(text);
}

static json_t *
enqueue(struct wf_change *c)
{
	json_t *out;

	ck_assert_msg(wf_queue_enqueue(&out, NULL, q, &c, 1, 0) == 0, "%s",
	    wf_error_last());
	wf_change_free(c);
	return out;
}

static void
enqueue_quiet(struct wf_change *c)
{
	json_decref(enqueue(c));
}

static const char *
state_of(const char *id)
{
	static char buf[16];
	json_t *v;

	ck_assert_msg(wf_queue_show(&v, q, id) == 0, "%s", wf_error_last());
	snprintf(buf, sizeof(buf), "%s",
	    json_string_value(json_object_get(v, "state")));
	json_decref(v);
	return buf;
}

/* Lease at most `n` and return the array (caller decrefs). */
static json_t *
lease(size_t n, int64_t ms)
{
	json_t *out;

	ck_assert_msg(wf_queue_lease(&out, q, "main", n, "worker-1", ms) == 0,
	    "%s", wf_error_last());
	return out;
}

static const char *
field(json_t *arr, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(arr, i), key));
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

START_TEST(schema)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	struct wf_queue *q2;

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), WF_QUEUE_SCHEMA_VERSION);
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	/* The lease query walks the ready index, never the table. */
	ck_assert_int_eq(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT qid,"
	    " created_at, not_before, state FROM entries WHERE target = 'main'"
	    " AND state IN ('queued', 'failed') AND blocked = 0 AND"
	    " not_before <= 5 ORDER BY priority DESC, qid LIMIT 1", -1, &st,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_ptr_nonnull(strstr((const char *)sqlite3_column_text(st, 3),
	    "USING INDEX entries_ready"));
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	/* Reopening is a no-op; a newer schema is refused. */
	ck_assert_int_eq(wf_queue_open(&q2, dbpath, NULL), 0);
	wf_queue_free(q2);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(wf_queue_open(&q2, dbpath, NULL), WF_EINPUT);
	ck_assert_ptr_null(q2);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "schema version 99"));
}
END_TEST

/*
 * A queue of schema 3 held the payload in the entries row: opened now,
 * it is migrated with nothing lost, and the rows no longer hold it.
 */
START_TEST(migrate_payloads)
{
	static const char *const to_v3 =
	    "ALTER TABLE entries ADD COLUMN payload TEXT;"
	    "UPDATE entries SET payload = (SELECT payload FROM payloads p"
	    " WHERE p.qid = entries.qid);"
	    "DROP TABLE payloads; PRAGMA user_version = 3;";
	sqlite3 *db;
	sqlite3_stmt *st;
	json_t *got, *p;
	char *text;

	enqueue_quiet(change("a", 0, NULL, "b25l"));
	enqueue_quiet(change("b", 0, NULL, "dHdv"));
	wf_queue_free(q);
	q = NULL;
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, to_v3, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	ck_assert_msg(wf_queue_open(&q, dbpath, NULL) == 0, "%s",
	    wf_error_last());
	got = lease(2, 60000);
	ck_assert_uint_eq(json_array_size(got), 2);
	ck_assert_int_eq(wf_queue_payload(&p, json_array_get(got, 1)), 0);
	ck_assert_ptr_nonnull(text = json_dumps(p, 0));
	ck_assert_ptr_nonnull(strstr(text, "\"dHdv\""));
	free(text);
	json_decref(got);
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM"
	    " pragma_table_info('entries') WHERE name = 'payload'", -1, &st,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
}
END_TEST

START_TEST(not_a_queue)
{
	struct wf_queue *q2;
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/junk.db", dir);
	f = fopen(path, "w");
	fputs("this is not an SQLite database, not at all, no.\n", f);
	fclose(f);
	ck_assert_int_eq(wf_queue_open(&q2, path, NULL), WF_EOS);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "not a queue database"));
}
END_TEST

START_TEST(enqueue_idempotent)
{
	struct wf_change *batch[3];
	json_t *out;
	size_t bad;

	out = enqueue(change("a", 0, NULL, NULL));
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out,
	    0), "position")), 1);
	ck_assert(json_is_false(json_object_get(json_array_get(out, 0),
	    "existing")));
	json_decref(out);
	/* The same id and content: reports the stored entry. */
	out = enqueue(change("a", 0, NULL, NULL));
	ck_assert(json_is_true(json_object_get(json_array_get(out, 0),
	    "existing")));
	ck_assert_str_eq(field(out, 0, "state"), "queued");
	json_decref(out);
	/* Different content under the same id: refused, nothing stored. */
	batch[0] = change("b", 0, NULL, NULL);
	batch[1] = change("a", 0, NULL, "aG8=");
	batch[2] = change("c", 0, NULL, NULL);
	ck_assert_int_eq(wf_queue_enqueue(&out, &bad, q, batch, 3, 0),
	    WF_ECONFLICT);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(bad, 1);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "request 'a': already "
	    "queued with different content"));
	ck_assert_int_eq(wf_queue_show(&out, q, "b"), WF_ENOTFOUND);
	/* With keep_going the others are stored. */
	ck_assert_int_eq(wf_queue_enqueue(&out, &bad, q, batch, 3, 1), 0);
	ck_assert_uint_eq(json_array_size(out), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out,
	    0), "position")), 2);
	ck_assert_ptr_nonnull(field(out, 1, "error"));
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out,
	    2), "position")), 3);
	json_decref(out);
	wf_change_free(batch[0]);
	wf_change_free(batch[1]);
	wf_change_free(batch[2]);
	ck_assert_str_eq(state_of("b"), "queued");
	ck_assert_str_eq(state_of("c"), "queued");
	/* Re-sent entries tell their place: priority first, then age. */
	enqueue_quiet(change("hi", 5, NULL, NULL));
	batch[0] = change("c", 0, NULL, NULL);
	batch[1] = change("hi", 5, NULL, NULL);
	batch[2] = change("a", 0, NULL, NULL);
	ck_assert_int_eq(wf_queue_enqueue(&out, &bad, q, batch, 3, 0), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out,
	    0), "position")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out,
	    1), "position")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out,
	    2), "position")), 2);
	json_decref(out);
	wf_change_free(batch[0]);
	wf_change_free(batch[1]);
	wf_change_free(batch[2]);
}
END_TEST

/* A files request for `target`. */
static struct wf_change *
change_to(const char *id, const char *target, int priority)
{
	char text[512];

	snprintf(text, sizeof(text), "{\"id\": \"%s\", \"target\": \"%s\","
	    " \"kind\": \"files\", \"priority\": %d, \"files\": [{\"path\":"
	    " \"f/%s\", \"content\": \"aGk=\"}]}", id, target, priority, id);
	return parse_change(text);
}

static json_int_t
position_in(json_t *out, size_t i)
{
	json_t *p = json_object_get(json_array_get(out, i), "position");

	return json_is_null(p) ? 0 : json_integer_value(p);
}

/*
 * Places of a large re-send, counted once per target and priority, are
 * each what the entry gets re-sent alone: across targets, priorities,
 * leased and landed entries between them, ids given twice, any order.
 */
START_TEST(resend_positions)
{
	struct wf_change *batch[40];
	json_t *out, *one, *got;
	char id[32];
	size_t i, n = 0;

	for (i = 0; i < 60; i++) {
		snprintf(id, sizeof(id), "e%zu", i);
		enqueue_quiet(change_to(id, i % 4 == 3 ? "dev" : "main",
		    (int)(i % 3)));
	}
	/* Five leased from the front of main, two of them landed. */
	ck_assert_int_eq(wf_queue_lease(&got, q, "main", 5, "w", 60000), 0);
	ck_assert_uint_eq(json_array_size(got), 5);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(wf_queue_ack_landed(q, field(got, i, "id"),
		    field(got, i, "lease_token"), NULL), 0);
	json_decref(got);
	/* Every other entry, backwards, and every tenth one twice. */
	for (i = 60; i-- > 0;) {
		if (i % 2)
			continue;
		snprintf(id, sizeof(id), "e%zu", i);
		batch[n++] = change_to(id, i % 4 == 3 ? "dev" : "main",
		    (int)(i % 3));
		if (i % 5 == 0)
			batch[n++] = change_to(id, i % 4 == 3 ? "dev" : "main",
			    (int)(i % 3));
	}
	ck_assert_int_eq(wf_queue_enqueue(&out, NULL, q, batch, n, 0), 0);
	ck_assert_uint_eq(json_array_size(out), n);
	for (i = 0; i < n; i++) {
		one = enqueue(change_to(batch[i]->id, batch[i]->target,
		    (int)batch[i]->priority));
		ck_assert_msg(position_in(out, i) == position_in(one, 0),
		    "%s: %lld in the batch, %lld alone", batch[i]->id,
		    (long long)position_in(out, i),
		    (long long)position_in(one, 0));
		json_decref(one);
	}
	/* Of the 30 sent, e2 landed, e14 and e26 leased. */
	for (i = 0, n = 0; i < json_array_size(out); i++)
		n += position_in(out, i) != 0;
	ck_assert_uint_eq(n, 30 - 3 + 6);
	json_decref(out);
	for (i = 0; i < 36; i++)
		wf_change_free(batch[i]);
}
END_TEST

/*
 * A lease, an ack or an enqueue reads what it needs, not the queue: no
 * statement scans the entries, and those looking for ready or waiting
 * entries of a target go through the partial index of those, whose
 * size is what a lease may take, not the depth of the queue.
 */
static int
plan_ok(const char *sql, const char *plan, void *arg)
{
	int *n = arg;

	(*n)++;
	ck_assert_msg(!strstr(plan, "SCAN entries"), "%s: %s", sql, plan);
	if (strstr(sql, "state IN ('queued', 'failed')") &&
	    strstr(sql, "blocked > 0"))
		ck_assert_msg(strstr(plan, "entries_waiting"), "%s: %s", sql,
		    plan);
	if (strstr(sql, "state IN ('queued', 'failed')") &&
	    strstr(sql, "blocked = 0"))
		ck_assert_msg(strstr(plan, "entries_ready"), "%s: %s", sql,
		    plan);
	return 0;
}

START_TEST(plans_read_what_they_need)
{
	int i, n = 0;

	/* A deep queue, some of it waiting on others, as the planner sees. */
	for (i = 0; i < 300; i++) {
		char id[16], deps[32];

		snprintf(id, sizeof(id), "p%d", i);
		snprintf(deps, sizeof(deps), "[\"p%d\"]", i - 1);
		enqueue_quiet(change(id, i % 2, i % 3 == 1 ? deps : NULL,
		    NULL));
	}
	ck_assert_int_eq(wf_queue_explain(q, plan_ok, &n), 0);
	ck_assert_int_gt(n, 20);
}
END_TEST

START_TEST(priority_then_fifo)
{
	json_t *got, *payload, *again;

	enqueue_quiet(change("low1", 0, NULL, NULL));
	enqueue_quiet(change("high", 5, NULL, NULL));
	enqueue_quiet(change("low2", 0, NULL, NULL));
	enqueue_quiet(change("neg", -1, NULL, NULL));
	got = lease(3, 60000);
	ck_assert_uint_eq(json_array_size(got), 3);
	ck_assert_str_eq(field(got, 0, "id"), "high");
	ck_assert_str_eq(field(got, 1, "id"), "low1");
	ck_assert_str_eq(field(got, 2, "id"), "low2");
	ck_assert_str_eq(field(got, 0, "state"), "leased");
	ck_assert_str_eq(field(got, 0, "lease_owner"), "worker-1");
	ck_assert_uint_eq(strlen(field(got, 0, "lease_token")), 32);
	/* The payload comes as its stored text, parsed on demand. */
	ck_assert(json_is_string(json_object_get(json_array_get(got, 0),
	    "payload")));
	ck_assert_int_eq(wf_queue_payload(&payload, json_array_get(got, 0)),
	    0);
	ck_assert(json_is_object(payload));
	ck_assert_str_eq(json_string_value(json_object_get(payload, "id")),
	    "high");
	ck_assert_ptr_eq(json_object_get(json_array_get(got, 0), "payload"),
	    payload);
	ck_assert_int_eq(wf_queue_payload(&again, json_array_get(got, 0)), 0);
	ck_assert_ptr_eq(again, payload);
	json_decref(got);
	got = lease(10, 60000);
	ck_assert_uint_eq(json_array_size(got), 1);
	ck_assert_str_eq(field(got, 0, "id"), "neg");
	json_decref(got);
	got = lease(10, 60000);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
}
END_TEST

START_TEST(stale_token_refused)
{
	json_t *got, *v;
	char token[64];

	enqueue_quiet(change("a", 0, NULL, NULL));
	got = lease(1, 60000);
	snprintf(token, sizeof(token), "%s", field(got, 0, "lease_token"));
	json_decref(got);
	ck_assert_int_eq(wf_queue_ack_landed(q, "a", "0123", NULL),
	    WF_ECONFLICT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "stale lease token"));
	ck_assert_int_eq(wf_queue_ack_failed(q, "nope", token, "x"),
	    WF_ENOTFOUND);
	ck_assert_int_eq(wf_queue_extend(q, "a", token, 60000), 0);
	ck_assert_int_eq(wf_queue_ack_landed(q, "a", token, NULL), 0);
	ck_assert_str_eq(state_of("a"), "landed");
	/* A second ack with the same token is refused: no double update. */
	ck_assert_int_eq(wf_queue_ack_landed(q, "a", token, NULL),
	    WF_ECONFLICT);
	ck_assert_int_eq(wf_queue_ack_failed(q, "a", token, "late"),
	    WF_ECONFLICT);
	ck_assert_str_eq(state_of("a"), "landed");
	/* The audit log: enqueue, lease, landed with the paths. */
	ck_assert_int_eq(wf_queue_show(&v, q, "a"), 0);
	got = json_object_get(v, "audit");
	ck_assert_uint_eq(json_array_size(got), 3);
	ck_assert_str_eq(field(got, 0, "why"), "enqueue");
	ck_assert_str_eq(field(got, 0, "who"), "check");
	ck_assert_str_eq(field(got, 1, "to"), "leased");
	ck_assert_str_eq(field(got, 1, "who"), "worker-1");
	ck_assert_str_eq(field(got, 2, "from"), "leased");
	ck_assert_str_eq(field(got, 2, "to"), "landed");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(
	    json_array_get(got, 2), "paths"), 0)), "f/a");
	json_decref(v);
}
END_TEST

START_TEST(expiry_and_reclaim)
{
	json_t *got;
	char token[64];
	size_t n;

	enqueue_quiet(change("a", 0, NULL, NULL));
	got = lease(1, 1);
	snprintf(token, sizeof(token), "%s", field(got, 0, "lease_token"));
	json_decref(got);
	sleep_ms(20);
	ck_assert_int_eq(wf_queue_reclaim(&n, q), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(state_of("a"), "queued");
	ck_assert_int_eq(wf_queue_ack_landed(q, "a", token, NULL),
	    WF_ECONFLICT);
	ck_assert_int_eq(wf_queue_extend(q, "a", token, 1000), WF_ECONFLICT);
	/* Taken over by another lease (which reclaims by itself too). */
	got = lease(1, 1);
	ck_assert_str_ne(field(got, 0, "lease_token"), token);
	json_decref(got);
	sleep_ms(20);
	got = lease(1, 60000);
	ck_assert_uint_eq(json_array_size(got), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(got,
	    0), "attempts")), 3);
	snprintf(token, sizeof(token), "%s", field(got, 0, "lease_token"));
	json_decref(got);
	ck_assert_int_eq(wf_queue_ack_landed(q, "a", token, NULL), 0);
	ck_assert_int_eq(wf_queue_reclaim(&n, q), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(max_attempts_to_dead)
{
	json_t *got;
	char token[64];
	int i;

	enqueue_quiet(change("a", 0, NULL, NULL));
	for (i = 0; i < 3; i++) {
		got = lease(1, 60000);
		ck_assert_uint_eq(json_array_size(got), 1);
		snprintf(token, sizeof(token), "%s", field(got, 0,
		    "lease_token"));
		json_decref(got);
		ck_assert_int_eq(wf_queue_ack_failed(q, "a", token,
		    "conflict in f/a"), 0);
		ck_assert_str_eq(state_of("a"), i < 2 ? "failed" : "dead");
	}
	got = lease(1, 60000);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
	ck_assert_int_eq(wf_queue_list(&got, q, &(struct wf_queue_filter){
	    "dead", NULL, 0, 0 }), 0);
	ck_assert_uint_eq(json_array_size(got), 1);
	ck_assert_str_eq(field(got, 0, "last_error"), "conflict in f/a");
	json_decref(got);
	ck_assert_int_eq(wf_queue_retry(q, "a"), 0);
	ck_assert_str_eq(state_of("a"), "queued");
	ck_assert_int_eq(wf_queue_retry(q, "a"), WF_ECONFLICT);
	got = lease(1, 60000);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(got,
	    0), "attempts")), 1);
	json_decref(got);
	ck_assert_int_eq(wf_queue_drop(q, "a"), WF_ECONFLICT);
}
END_TEST

START_TEST(backoff)
{
	struct wf_queue_opts o = WF_QUEUE_OPTS_INIT;
	json_t *got;
	char token[64];

	wf_queue_free(q);
	o.backoff_ms = 60000;
	ck_assert_int_eq(wf_queue_open(&q, dbpath, &o), 0);
	enqueue_quiet(change("a", 0, NULL, NULL));
	got = lease(1, 60000);
	snprintf(token, sizeof(token), "%s", field(got, 0, "lease_token"));
	json_decref(got);
	ck_assert_int_eq(wf_queue_ack_failed(q, "a", token, NULL), 0);
	ck_assert_str_eq(state_of("a"), "failed");
	/* In its backoff: not leasable yet. */
	got = lease(1, 60000);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
}
END_TEST

START_TEST(depends_on_order)
{
	json_t *got;
	char token[64];

	/* b depends on a (enqueued later) and goes first by priority. */
	enqueue_quiet(change("b", 9, "[\"a\"]", NULL));
	enqueue_quiet(change("c", 9, "[\"a\", \"b\"]", NULL));
	got = lease(5, 60000);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
	enqueue_quiet(change("a", 0, NULL, NULL));
	/* A lease of one holds a alone: b and c wait for it. */
	got = lease(1, 60000);
	ck_assert_uint_eq(json_array_size(got), 1);
	ck_assert_str_eq(field(got, 0, "id"), "a");
	snprintf(token, sizeof(token), "%s", field(got, 0, "lease_token"));
	json_decref(got);
	got = lease(5, 60000);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
	ck_assert_int_eq(wf_queue_ack_landed(q, "a", token, NULL), 0);
	got = lease(1, 60000);
	ck_assert_uint_eq(json_array_size(got), 1);
	ck_assert_str_eq(field(got, 0, "id"), "b");
	snprintf(token, sizeof(token), "%s", field(got, 0, "lease_token"));
	json_decref(got);
	ck_assert_int_eq(wf_queue_ack_landed(q, "b", token, NULL), 0);
	got = lease(5, 60000);
	ck_assert_str_eq(field(got, 0, "id"), "c");
	json_decref(got);
	/* A dependency already landed does not block. */
	enqueue_quiet(change("d", 0, "[\"a\"]", NULL));
	got = lease(5, 60000);
	ck_assert_str_eq(field(got, 0, "id"), "d");
	json_decref(got);
}
END_TEST

/*
 * A series is leased in one batch: entries whose dependencies that have
 * not landed are all in the lease come with it, after them, in order;
 * one that waits on anything else stays.
 */
START_TEST(series_leased_together)
{
	json_t *got;

	enqueue_quiet(change("s1", 0, NULL, NULL));
	enqueue_quiet(change("s2", 0, "[\"s1\"]", NULL));
	enqueue_quiet(change("r", 0, NULL, NULL));
	enqueue_quiet(change("s3", 0, "[\"s2\"]", NULL));
	enqueue_quiet(change("x", 5, "[\"elsewhere\"]", NULL));
	enqueue_quiet(change("s4", 0, "[\"s3\", \"x\"]", NULL));
	/* A dependent of higher priority than what it waits on follows it. */
	enqueue_quiet(change("h", 9, "[\"s1\"]", NULL));
	got = lease(8, 60000);
	ck_assert_uint_eq(json_array_size(got), 5);
	/* Queue order, with each entry after what it waits on. */
	ck_assert_str_eq(field(got, 0, "id"), "s1");
	ck_assert_str_eq(field(got, 1, "id"), "s2");
	ck_assert_str_eq(field(got, 2, "id"), "r");
	ck_assert_str_eq(field(got, 3, "id"), "s3");
	ck_assert_str_eq(field(got, 4, "id"), "h");
	json_decref(got);
	got = lease(8, 60000);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
}
END_TEST

START_TEST(list_and_drop)
{
	json_t *got;
	struct wf_queue_filter f = WF_QUEUE_FILTER_INIT;

	enqueue_quiet(change("a", 0, NULL, NULL));
	enqueue_quiet(change("b", 0, NULL, NULL));
	ck_assert_int_eq(wf_queue_list(&got, q, NULL), 0);
	ck_assert_uint_eq(json_array_size(got), 2);
	ck_assert_str_eq(field(got, 0, "id"), "a");
	ck_assert_ptr_null(json_object_get(json_array_get(got, 0), "payload"));
	json_decref(got);
	f.limit = 1;
	f.target = "main";
	ck_assert_int_eq(wf_queue_list(&got, q, &f), 0);
	ck_assert_uint_eq(json_array_size(got), 1);
	json_decref(got);
	f.state = "bogus";
	ck_assert_int_eq(wf_queue_list(&got, q, &f), WF_EINPUT);
	ck_assert_int_eq(wf_queue_drop(q, "a"), 0);
	ck_assert_int_eq(wf_queue_drop(q, "a"), WF_ENOTFOUND);
	ck_assert_int_eq(wf_queue_show(&got, q, "a"), WF_ENOTFOUND);
}
END_TEST

/* A new version of a topic drops the waiting one, in the same batch. */
START_TEST(supersede_in_batch)
{
	struct wf_queue_batch *b;
	struct wf_queue_added a;
	json_t *old, *got;
	char *id, *state;

	enqueue_quiet(change_ref("main:t@1", "refs/for/main/t"));
	enqueue_quiet(change_ref("main:u@1", "refs/for/main/u"));
	enqueue_quiet(change_ref("main:t@2", "refs/for/main/t"));
	/* One of them is being landed: it is left to land. */
	got = lease(1, 60000);
	ck_assert_str_eq(field(got, 0, "id"), "main:t@1");
	json_decref(got);

	ck_assert_int_eq(wf_queue_batch_begin(&b, q, 1), 0);
	ck_assert_int_eq(wf_queue_batch_supersede(&old, b, "main",
	    "refs/for/main/t", "main:t@3"), 0);
	ck_assert_uint_eq(json_array_size(old), 2);
	ck_assert_str_eq(field(old, 0, "id"), "main:t@1");
	ck_assert_str_eq(field(old, 0, "state"), "leased");
	ck_assert_str_eq(field(old, 1, "id"), "main:t@2");
	ck_assert_str_eq(field(old, 1, "state"), "queued");
	json_decref(old);
	{
		struct wf_change *c = change_ref("main:t@3", "refs/for/main/t");

		ck_assert_int_eq(wf_queue_batch_add(b, c), 0);
		wf_change_free(c);
	}
	wf_queue_batch_get(&a, b, 0);
	ck_assert_int_eq(a.queue_id, 4);
	ck_assert_int_eq(wf_queue_batch_commit(b), 0);
	wf_queue_batch_free(b);

	ck_assert_int_eq(wf_queue_show(&got, q, "main:t@2"), WF_ENOTFOUND);
	ck_assert_str_eq(state_of("main:t@1"), "leased");
	ck_assert_str_eq(state_of("main:u@1"), "queued");
	ck_assert_str_eq(state_of("main:t@3"), "queued");
	ck_assert_int_eq(wf_queue_find_qid(&id, &state, q, 4), 0);
	ck_assert_str_eq(id, "main:t@3");
	ck_assert_str_eq(state, "queued");
	free(id);
	free(state);
	ck_assert_int_eq(wf_queue_find_qid(&id, NULL, q, 3), WF_ENOTFOUND);
	ck_assert_ptr_null(id);

	/* A failed batch supersedes nothing. */
	ck_assert_int_eq(wf_queue_batch_begin(&b, q, 0), 0);
	ck_assert_int_eq(wf_queue_batch_supersede(NULL, b, "main",
	    "refs/for/main/u", "main:u@2"), 0);
	wf_queue_batch_free(b);
	ck_assert_str_eq(state_of("main:u@1"), "queued");
}
END_TEST

static json_t *
check_named(json_t *report, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(report, "checks"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "check")),
		    name) == 0)
			return c;
	ck_abort_msg("no check '%s'", name);
	return NULL;
}

static json_int_t
ival(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	ck_assert_msg(json_is_integer(v), "'%s' is not an integer", key);
	return json_integer_value(v);
}

START_TEST(metrics_count)
{
	json_t *m, *got;
	char t1[64], t2[64];

	ck_assert_int_eq(wf_queue_metrics(&m, q), 0);
	ck_assert_int_eq(ival(json_object_get(m, "depth"), "queued"), 0);
	ck_assert_int_eq(ival(json_object_get(m, "depth"), "dead"), 0);
	ck_assert(json_is_null(json_object_get(m, "oldest_queued_age_ms")));
	ck_assert(json_is_null(json_object_get(m, "lease_latency_ms_mean")));
	ck_assert_int_eq(ival(m, "busy_retries"), 0);
	json_decref(m);

	enqueue_quiet(change("a", 0, NULL, NULL));
	enqueue_quiet(change("b", 0, NULL, NULL));
	enqueue_quiet(change("c", 0, NULL, NULL));
	enqueue_quiet(change("d", 0, "[\"a\"]", NULL));
	sleep_ms(5);
	got = lease(2, 60000);
	snprintf(t1, sizeof(t1), "%s", field(got, 0, "lease_token"));
	snprintf(t2, sizeof(t2), "%s", field(got, 1, "lease_token"));
	json_decref(got);
	ck_assert_int_eq(wf_queue_ack_landed(q, "a", t1, NULL), 0);
	ck_assert_int_eq(wf_queue_ack_failed(q, "b", t2, "boom"), 0);

	ck_assert_int_eq(wf_queue_metrics(&m, q), 0);
	got = json_object_get(m, "depth");
	ck_assert_int_eq(ival(got, "queued"), 2);
	ck_assert_int_eq(ival(got, "leased"), 0);
	ck_assert_int_eq(ival(got, "landed"), 1);
	ck_assert_int_eq(ival(got, "failed"), 1);
	ck_assert_int_eq(ival(got, "dead"), 0);
	/* d was blocked until a landed. */
	ck_assert_int_eq(ival(m, "blocked"), 0);
	ck_assert_int_ge(ival(m, "oldest_queued_age_ms"), 5);
	ck_assert_int_eq(ival(m, "landed_last_hour"), 1);
	ck_assert_int_eq(ival(m, "failed_last_hour"), 1);
	ck_assert(json_real_value(json_object_get(m, "landed_per_hour_24h")) >
	    0.04);
	ck_assert_int_eq(ival(m, "leases"), 2);
	ck_assert(json_real_value(json_object_get(m, "lease_latency_ms_mean"))
	    >= 5.0);
	json_decref(m);
}
END_TEST

START_TEST(busy_is_counted)
{
	struct wf_queue_opts o = WF_QUEUE_OPTS_INIT;
	sqlite3 *db;
	json_t *m, *out;
	struct wf_change *c;

	wf_queue_free(q);
	o.busy_timeout_ms = 50;
	ck_assert_int_eq(wf_queue_open(&q, dbpath, &o), 0);
	/* Another connection holds the write lock past the timeout. */
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	c = change("a", 0, NULL, NULL);
	ck_assert_int_eq(wf_queue_enqueue(&out, NULL, q, &c, 1, 0), WF_EBUSY);
	ck_assert_ptr_null(out);
	ck_assert_uint_gt(wf_queue_busy_retries(q), 0);
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	/* The queue is unchanged; the waits are counted. */
	ck_assert_int_eq(wf_queue_show(&out, q, "a"), WF_ENOTFOUND);
	ck_assert_int_eq(wf_queue_metrics(&m, q), 0);
	ck_assert_int_eq(ival(m, "busy_retries"),
	    (json_int_t)wf_queue_busy_retries(q));
	json_decref(m);
	/* ... and written down with the next transaction. */
	ck_assert_int_eq(wf_queue_enqueue(&out, NULL, q, &c, 1, 0), 0);
	json_decref(out);
	wf_change_free(c);
	wf_queue_free(q);
	ck_assert_int_eq(wf_queue_open(&q, dbpath, NULL), 0);
	ck_assert_int_eq(wf_queue_metrics(&m, q), 0);
	ck_assert_int_gt(ival(m, "busy_retries"), 0);
	json_decref(m);
	sqlite3_close(db);
}
END_TEST

START_TEST(doctor_healthy)
{
	struct wf_queue_doctor_opts o = WF_QUEUE_DOCTOR_OPTS_INIT;
	json_t *r, *c;

	enqueue_quiet(change("a", 0, NULL, NULL));
	ck_assert_int_eq(wf_queue_doctor(&r, q, &o), 0);
	ck_assert(json_is_true(json_object_get(r, "ok")));
	ck_assert_int_eq(ival(r, "problems"), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(r, "checks")), 6);
	c = check_named(r, "schema");
	ck_assert_int_eq(ival(c, "value"), WF_QUEUE_SCHEMA_VERSION);
	c = check_named(r, "integrity");
	ck_assert(json_is_true(json_object_get(c, "ok")));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c,
	    "value"), 0)), "ok");
	ck_assert_ptr_null(json_object_get(c, "advice"));
	c = check_named(r, "wal_size");
	ck_assert_int_gt(ival(c, "value"), 0);
	json_decref(r);
	/* A tiny WAL limit makes the log a problem. */
	o.wal_max_bytes = 1;
	ck_assert_int_eq(wf_queue_doctor(&r, q, &o), 0);
	ck_assert(json_is_false(json_object_get(r, "ok")));
	c = check_named(r, "wal_size");
	ck_assert(json_is_false(json_object_get(c, "ok")));
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(c,
	    "advice")), "wal_checkpoint"));
	json_decref(r);
}
END_TEST

START_TEST(doctor_problems)
{
	struct wf_queue_doctor_opts o = WF_QUEUE_DOCTOR_OPTS_INIT;
	json_t *r, *c, *got;
	size_t n;

	enqueue_quiet(change("a", 0, NULL, NULL));
	enqueue_quiet(change("b", 0, NULL, NULL));
	enqueue_quiet(change("w", 0, "[\"nowhere\"]", NULL));
	got = lease(1, 1);
	json_decref(got);
	sleep_ms(20);
	o.stuck_ms = 10;
	ck_assert_int_eq(wf_queue_doctor(&r, q, &o), 0);
	ck_assert(json_is_false(json_object_get(r, "ok")));
	ck_assert_int_eq(ival(r, "problems"), 3);
	c = check_named(r, "expired_leases");
	ck_assert_int_eq(ival(c, "value"), 1);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(c,
	    "advice")), "wf-queue reclaim"));
	c = check_named(r, "stuck_ready");
	ck_assert_int_eq(ival(c, "value"), 1);
	ck_assert_ptr_nonnull(json_object_get(c, "advice"));
	c = check_named(r, "stuck_blocked");
	ck_assert_int_eq(ival(c, "value"), 1);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(c,
	    "detail")), "1 entry waiting on a dependency"));
	json_decref(r);
	/* Following the advice clears the lease problem. */
	ck_assert_int_eq(wf_queue_reclaim(&n, q), 0);
	ck_assert_uint_eq(n, 1);
	o.stuck_ms = 3600000;
	ck_assert_int_eq(wf_queue_doctor(&r, q, &o), 0);
	ck_assert_int_eq(ival(r, "problems"), 1);
	ck_assert(json_is_true(json_object_get(check_named(r,
	    "expired_leases"), "ok")));
	json_decref(r);
	/* A dependency that is dead blocks for good too. */
	ck_assert_int_eq(wf_queue_drop(q, "w"), 0);
	enqueue_quiet(change("v", 0, "[\"a\"]", NULL));
	ck_assert_int_eq(wf_queue_doctor(&r, q, &o), 0);
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
}
END_TEST

/* Lease the next entry of main and ack it landed (or failed). */
static void
finish_next(const char *id, int failed)
{
	json_t *got = lease(1, 60000);

	ck_assert_uint_eq(json_array_size(got), 1);
	ck_assert_str_eq(field(got, 0, "id"), id);
	if (failed)
		ck_assert_int_eq(wf_queue_ack_failed(q, id, field(got, 0,
		    "lease_token"), "broken"), 0);
	else
		ck_assert_int_eq(wf_queue_ack_landed(q, id, field(got, 0,
		    "lease_token"), NULL), 0);
	json_decref(got);
}

/*
 * Every row of the tables the archive touches, in a second connection,
 * as one string with each value's type and bytes (quote()), so two dumps
 * are equal only when the rows are byte for byte the same.
 */
static char *
dump(void)
{
	static const char *const sql[] = {
		"SELECT 'E', quote(qid), quote(id), quote(target), quote(kind),"
		" quote(hash), quote(payload), quote(paths), quote(priority),"
		" quote(state), quote(blocked), quote(attempts),"
		" quote(max_attempts), quote(not_before), quote(lease_owner),"
		" quote(lease_token), quote(lease_expires), quote(leased_at),"
		" quote(created_at), quote(updated_at), quote(finished_at),"
		" quote(last_error) FROM entries JOIN payloads USING (qid)"
		" ORDER BY qid",
		"SELECT 'D', quote(qid), quote(dep_id) FROM deps ORDER BY 2, 3",
		"SELECT 'A', quote(seq), quote(qid), quote(entry_id), quote(at),"
		" quote(from_state), quote(to_state), quote(detail) FROM audit"
		" ORDER BY seq",
		"SELECT 'T', quote(id), quote(hash), quote(state) FROM tombstones"
		" ORDER BY id",
	};
	sqlite3 *db;
	sqlite3_stmt *st;
	char *buf = NULL;
	size_t len = 0, i;
	int c, rc;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	for (i = 0; i < sizeof(sql) / sizeof(*sql); i++) {
		ck_assert_int_eq(sqlite3_prepare_v2(db, sql[i], -1, &st, NULL),
		    SQLITE_OK);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			for (c = 0; c < sqlite3_column_count(st); c++)
				fprintf(f, "%s|", sqlite3_column_text(st, c));
			fputc('\n', f);
		}
		ck_assert_int_eq(rc, SQLITE_DONE);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	fclose(f);
	return buf;
}

static int
count_rows(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Files in the test directory (the queue's own and the archives). */
static int
count_files(const char *sub)
{
	char cmd[400];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s/%s' | wc -l", dir, sub);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	ck_assert_int_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* a landed, b dead (3 failed attempts), c waiting on a: in the queue. */
static void
archive_fixture(void)
{
	json_t *got;
	int i;

	enqueue_quiet(change("a", 1, NULL, NULL));
	enqueue_quiet(change("b", 0, NULL, "Ynll"));
	finish_next("a", 0);
	for (i = 0; i < 3; i++)
		finish_next("b", 1);
	ck_assert_str_eq(state_of("b"), "dead");
	enqueue_quiet(change("c", 0, "[\"a\", \"zz\"]", NULL));
	got = lease(1, 60000);
	ck_assert_uint_eq(json_array_size(got), 0);
	json_decref(got);
}

START_TEST(archive_round_trip)
{
	char path[400], *before, *archived, *after;
	json_t *r, *out;
	struct wf_change *c;
	size_t bad;

	archive_fixture();
	before = dump();
	snprintf(path, sizeof(path), "%s/old.tar.gz", dir);
	ck_assert_msg(wf_queue_archive(&r, q, path, 0) == 0, "%s",
	    wf_error_last());
	ck_assert_int_eq(json_integer_value(json_object_get(r, "entries")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "audit")), 10);
	json_decref(r);
	/* Gone from the queue, tombstoned, the temporary file removed. */
	ck_assert_int_eq(wf_queue_show(&r, q, "a"), WF_ENOTFOUND);
	ck_assert_int_eq(wf_queue_show(&r, q, "b"), WF_ENOTFOUND);
	ck_assert_str_eq(state_of("c"), "queued");
	ck_assert_int_eq(count_rows("SELECT count(*) FROM audit WHERE"
	    " entry_id IN ('a', 'b')"), 0);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM tombstones"), 2);
	ck_assert_int_eq(count_files(""), 2);
	/* An archived id is still taken, and still satisfies depends_on. */
	c = change("a", 1, NULL, "b3RoZXI=");
	ck_assert_int_eq(wf_queue_enqueue(&out, &bad, q, &c, 1, 0),
	    WF_ECONFLICT);
	wf_change_free(c);
	enqueue_quiet(change("d", 0, "[\"a\"]", NULL));
	archived = dump();
	ck_assert_str_ne(archived, before);
	/* Nothing more to archive: an empty archive, the queue unchanged. */
	snprintf(path, sizeof(path), "%s/none.tar.gz", dir);
	ck_assert_int_eq(wf_queue_archive(&r, q, path, 3600000), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "entries")), 0);
	json_decref(r);
	after = dump();
	ck_assert_str_eq(after, archived);
	free(after);
	ck_assert_int_eq(wf_queue_restore(&r, q, path), 0);
	json_decref(r);
	/* Restored byte for byte, tombstones gone; twice is a conflict. */
	ck_assert_int_eq(wf_queue_drop(q, "d"), 0);
	snprintf(path, sizeof(path), "%s/old.tar.gz", dir);
	ck_assert_msg(wf_queue_restore(&r, q, path) == 0, "%s",
	    wf_error_last());
	ck_assert_int_eq(json_integer_value(json_object_get(r, "entries")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "audit")), 10);
	json_decref(r);
	after = dump();
	/* d's enqueue and drop stay in the log: compare without them. */
	ck_assert_int_eq(count_rows("SELECT count(*) FROM audit WHERE"
	    " entry_id = 'd'"), 2);
	{
		sqlite3 *db;

		ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
		ck_assert_int_eq(sqlite3_exec(db, "DELETE FROM audit WHERE"
		    " entry_id = 'd'", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	free(after);
	after = dump();
	ck_assert_str_eq(after, before);
	ck_assert_int_eq(wf_queue_restore(&r, q, path), WF_ECONFLICT);
	free(archived);
	archived = dump();
	ck_assert_str_eq(archived, before);
	free(before);
	free(archived);
	free(after);
}
END_TEST

/* A files request with `n` bytes of random (incompressible) content. */
static struct wf_change *
big_change(const char *id, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct wf_change *c;
	char *text = malloc(n + 256);
	size_t i, len;

	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, 256, "{\"id\": \"%s\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"f/%s\", \"content\":"
	    " \"", id, id);
	for (i = 0; i < n; i++)
		text[len++] = b64[random() % 64];
	snprintf(text + len, 256, "\"}]}");
	c = parse_change(text);
	free(text);
	return c;
}

START_TEST(archive_failed_write_changes_nothing)
{
	char path[400], *before, *after;
	struct rlimit old, lim;
	char id[8];
	json_t *r;
	int i, error;

	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "big%d", i);
		enqueue_quiet(big_change(id, 40000));
		finish_next(id, 0);
	}
	before = dump();
	snprintf(path, sizeof(path), "%s/full.tar.gz", dir);
	/* A file size limit: the archive's writes fail part way (EFBIG). */
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 60000;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	error = wf_queue_archive(&r, q, path, 0);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	ck_assert_int_eq(error, WF_EOS);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "cannot write archive"));
	after = dump();
	ck_assert_str_eq(after, before);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(count_files(""), 1);
	/* The queue still works, and the same archive can be made now. */
	ck_assert_int_eq(wf_queue_archive(&r, q, path, 0), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "entries")), 4);
	json_decref(r);
	free(before);
	free(after);
}
END_TEST

START_TEST(archive_refusals)
{
	char path[400], bad[400], cmd[1000], *before, *after;
	json_t *r;

	archive_fixture();
	snprintf(path, sizeof(path), "%s/old.tar.gz", dir);
	ck_assert_int_eq(wf_queue_archive(&r, q, path, 0), 0);
	json_decref(r);
	before = dump();
	/* Never replaces a file. */
	ck_assert_int_eq(wf_queue_archive(&r, q, path, 0), WF_ECONFLICT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "exists already"));
	/* Missing, not an archive, truncated, with a foreign member. */
	snprintf(bad, sizeof(bad), "%s/missing.tar.gz", dir);
	ck_assert_int_eq(wf_queue_restore(&r, q, bad), WF_EOS);
	snprintf(bad, sizeof(bad), "%s/sub/queue.db", dir);
	ck_assert_int_eq(wf_queue_restore(&r, q, bad), WF_EINPUT);
	snprintf(bad, sizeof(bad), "%s/cut.tar.gz", dir);
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s' | head -c 2048 | gzip >'%s'",
	    path, bad);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(wf_queue_restore(&r, q, bad), WF_EINPUT);
	snprintf(cmd, sizeof(cmd), "cd '%s' && mkdir x && cd x && tar xzf "
	    "../old.tar.gz && sed -i 's/\"state\":\"dead\"/\"state\":\"queued\"/'"
	    " entries-0001.jsonl && tar czf ../odd.tar.gz manifest.json "
	    "entries-0001.jsonl audit-0001.jsonl", dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(bad, sizeof(bad), "%s/odd.tar.gz", dir);
	ck_assert_int_eq(wf_queue_restore(&r, q, bad), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "only landed and dead"));
	snprintf(cmd, sizeof(cmd), "cd '%s/x' && tar czf ../rev.tar.gz "
	    "audit-0001.jsonl manifest.json", dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(bad, sizeof(bad), "%s/rev.tar.gz", dir);
	ck_assert_int_eq(wf_queue_restore(&r, q, bad), WF_EINPUT);
	after = dump();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}
END_TEST

/* wf-apply's additions: release without an attempt, notes, the cache. */
START_TEST(release_note_cache)
{
	json_t *l, *v, *log;
	const char *tok;

	enqueue_quiet(change("a", 0, NULL, NULL));
	l = lease(1, 60000);
	tok = field(l, 0, "lease_token");
	ck_assert_int_eq(wf_queue_note(q, "a", "stale", "check", NULL),
	    WF_ECONFLICT);
	v = json_pack("{s:s, s:s}", "output", "ok\n", "who", "ignored");
	ck_assert_int_eq(wf_queue_note(q, "a", tok, "check passed", v), 0);
	json_decref(v);
	ck_assert_int_eq(wf_queue_release(q, "a", tok, "crashed"), 0);
	ck_assert_int_eq(wf_queue_release(q, "a", tok, "again"), WF_ECONFLICT);
	json_decref(l);
	ck_assert_int_eq(wf_queue_show(&v, q, "a"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(v, "state")),
	    "queued");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "attempts")), 0);
	log = json_object_get(v, "audit");
	ck_assert_int_eq(json_array_size(log), 4);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(log,
	    2), "why")), "check passed");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(log,
	    2), "output")), "ok\n");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(log,
	    2), "who")), "worker-1");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(log,
	    3), "why")), "crashed");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(log,
	    3), "to")), "queued");
	json_decref(v);
	/* Leasable again at once. */
	l = lease(1, 60000);
	ck_assert_int_eq(json_array_size(l), 1);
	json_decref(l);
	ck_assert_int_eq(wf_queue_cache_get(&v, q, "t", "c"), WF_ENOTFOUND);
	v = json_pack("{s:b}", "ok", 1);
	ck_assert_int_eq(wf_queue_cache_put(q, "t", "c", v), 0);
	json_decref(v);
	ck_assert_int_eq(wf_queue_cache_get(&v, q, "t", "c"), 0);
	ck_assert(json_is_true(json_object_get(v, "ok")));
	json_decref(v);
	ck_assert_int_eq(wf_queue_cache_get(&v, q, "t", "d"), WF_ENOTFOUND);
}
END_TEST

/* Acks of many in one transaction: all or none. */
START_TEST(ack_landed_batch)
{
	const char *ids[3] = { "a", "b", "c" }, *tokens[3];
	json_t *l;

	enqueue_quiet(change("a", 0, NULL, NULL));
	enqueue_quiet(change("b", 0, NULL, NULL));
	enqueue_quiet(change("c", 0, "[\"a\"]", NULL));
	l = lease(2, 60000);
	tokens[0] = field(l, 0, "lease_token");
	tokens[1] = "stale";
	ck_assert_int_eq(wf_queue_ack_landed_batch(q, ids, tokens, 2),
	    WF_ECONFLICT);
	ck_assert_str_eq(state_of("a"), "leased");
	tokens[1] = field(l, 1, "lease_token");
	ck_assert_int_eq(wf_queue_ack_landed_batch(q, ids, tokens, 2), 0);
	ck_assert_str_eq(state_of("a"), "landed");
	ck_assert_str_eq(state_of("b"), "landed");
	json_decref(l);
	/* c depended on a: leasable now. */
	l = lease(1, 60000);
	ck_assert_str_eq(field(l, 0, "id"), "c");
	json_decref(l);
	ck_assert_int_eq(wf_queue_ack_landed_batch(q, ids, tokens, 0), 0);
}
END_TEST

/*
 * A payload's text is read by the queue's own reader where it can, by
 * jansson where it cannot: either way, what jansson gives, or an error
 * where jansson fails.
 */
START_TEST(payload_as_jansson_reads_it)
{
	static const char *const texts[] = {
		"{\"author\":{\"email\":\"a@e.com\",\"name\":\"A U Thor\"},"
		    "\"id\":\"am/0001\",\"kind\":\"patch\",\"patch\":\"diff --git"
		    " a/f b/f\\n--- a/f\\n+++ b/f\\n@@ -1 +1 @@\\n-\\\"x\\\"\\n"
		    "+\\ty\\r\\n\",\"priority\":0,\"depends_on\":[]}",
		"{\"a\":\"\\u00e9\\ud83d\\ude00 caf\\u00e9 \\u0001\",\"b\":[1,-0,"
		    "-9223372036854775808,9223372036854775807],\"c\":{\"d\":"
		    "[true,false,null,{}],\"e\":[]}}",
		"{\"s\":\"raw \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\","
		    "\"\xc3\xa9\":1}",
		"{\"esc\":\"\\/\\b\\f\\r\\t\\\\\\\"\\n\"}",
		" { \"ws\" :\t[ 1 ,\n2 ] }\n ",
		"{\"dup\":1,\"z\":3,\"dup\":[2]}",
		"[{\"x\":\"\"},[],\"\"]",
		"{\"r\":1.5,\"x\":1e3,\"y\":-0.0}",
		"{\"big\":9223372036854775808}",
		"{\"neg\":-9223372036854775809}",
		"{\"bad\":\"\xff\"}",
		"{\"bad\xc0\xaf\":1}",
		"{\"nul\":\"a\\u0000b\"}",
		"{\"lone\":\"\\ud800\"}",
		"{\"lone\":\"\\udc00x\"}",
		"{\"ctl\":\"a\tb\"}",
		"{\"zero\":01}",
		"{\"a\":1} x",
		"\"top\"",
		"[1,2",
		"{\"a\":tru}",
		"{\"a\" 1}",
		"{\"a\":1,}",
		"",
	};
	json_t *entry, *v, *want;
	json_error_t err;
	char *a, *b, deep[6001];
	size_t i;

	memset(deep, '[', 3000);
	memset(deep + 3000, ']', 3000);
	deep[6000] = '\0';
	for (i = 0; i <= sizeof(texts) / sizeof(*texts); i++) {
		const char *t = i < sizeof(texts) / sizeof(*texts) ?
		    texts[i] : deep;

		want = json_loadb(t, strlen(t), 0, &err);
		/* Not checked: the reader must refuse bad UTF-8 itself. */
		entry = json_pack("{s:s, s:o}", "id", "x", "payload",
		    json_stringn_nocheck(t, strlen(t)));
		ck_assert_ptr_nonnull(entry);
		if (!want) {
			ck_assert_msg(wf_queue_payload(&v, entry) == WF_EINPUT,
			    "text %zu: read, jansson fails", i);
			ck_assert_ptr_null(v);
			json_decref(entry);
			continue;
		}
		ck_assert_msg(wf_queue_payload(&v, entry) == 0, "text %zu: %s",
		    i, wf_error_last());
		a = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
		b = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_nonnull(b);
		ck_assert_msg(strcmp(a, b) == 0, "text %zu: %s, not %s", i,
		    b, a);
		ck_assert(json_equal(want, v));
		ck_assert_ptr_eq(json_object_get(entry, "payload"), v);
		free(a);
		free(b);
		json_decref(want);
		json_decref(entry);
	}
}
END_TEST

Suite *
queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("states");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, schema);
	tcase_add_test(tc, migrate_payloads);
	tcase_add_test(tc, not_a_queue);
	tcase_add_test(tc, enqueue_idempotent);
	tcase_add_test(tc, resend_positions);
	tcase_add_test(tc, plans_read_what_they_need);
	tcase_add_test(tc, priority_then_fifo);
	tcase_add_test(tc, stale_token_refused);
	tcase_add_test(tc, expiry_and_reclaim);
	tcase_add_test(tc, max_attempts_to_dead);
	tcase_add_test(tc, backoff);
	tcase_add_test(tc, depends_on_order);
	tcase_add_test(tc, series_leased_together);
	tcase_add_test(tc, list_and_drop);
	tcase_add_test(tc, supersede_in_batch);
	tcase_add_test(tc, release_note_cache);
	tcase_add_test(tc, ack_landed_batch);
	tcase_add_test(tc, payload_as_jansson_reads_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, metrics_count);
	tcase_add_test(tc, busy_is_counted);
	tcase_add_test(tc, doctor_healthy);
	tcase_add_test(tc, doctor_problems);
	suite_add_tcase(s, tc);

	tc = tcase_create("archive");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, archive_round_trip);
	tcase_add_test(tc, archive_failed_write_changes_nothing);
	tcase_add_test(tc, archive_refusals);
	suite_add_tcase(s, tc);
	return s;
}
