#ifndef WF_EVENT_H
#define WF_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "json.h"

/*
 * Telemetry events.  The multi_workflow.* events follow the telemetry
 * contract (shared/seeds/001_2feaf45aef7e57e6.txt) field for field; the
 * wf.change.* and wf.batch.metrics events are wf's own, described in
 * doc/events.md in the same style.  Every event is held as a typed
 * structure and turned into JSON only by this module, so a payload
 * always has the fields, types and vocabulary its schema (in schema/)
 * says: the parsers refuse input that could not make one.
 *
 * Strings in the structures are borrowed.  Events parsed from JSON keep
 * a reference to the input value they borrow from, so they stand alone.
 */

enum wf_event_type {
	WF_EVENT_PLAN_CREATED,		/* multi_workflow.plan_created */
	WF_EVENT_EXECUTION_SUMMARY,	/* multi_workflow.execution_summary */
	WF_EVENT_CHANGE_ENQUEUED,	/* wf.change.enqueued */
	WF_EVENT_CHANGE_LANDED,		/* wf.change.landed */
	WF_EVENT_CHANGE_FAILED,		/* wf.change.failed */
	WF_EVENT_CHANGE_DEAD,		/* wf.change.dead */
	WF_EVENT_BATCH_METRICS		/* wf.batch.metrics */
};

#define WF_EVENT_TYPE_COUNT 7

/* The contract's name of `type` ("multi_workflow.plan_created"...). */
const char *wf_event_type_name(enum wf_event_type type);

/* The type named `name`: 0, or WF_ENOTFOUND without a message. */
int wf_event_type_parse(enum wf_event_type *out, const char *name);

/* stages[].run_mode */
enum wf_event_run_mode {
	WF_EVENT_SEQUENTIAL,
	WF_EVENT_PARALLEL
};

/* stage_runs[].workflows[].status and the summary's status. */
enum wf_event_status {
	WF_EVENT_EXECUTED,
	WF_EVENT_SKIPPED,
	WF_EVENT_FAILED		/* workflows only */
};

/* What --redact-paths does to created_files and deliverable paths. */
enum wf_event_redact {
	WF_EVENT_REDACT_KEEP,	/* as they are (the default) */
	WF_EVENT_REDACT_HASH,	/* each path its git blob id, 40 hex digits */
	WF_EVENT_REDACT_DROP	/* left out */
};

/* "keep", "hash" or "drop": 0, or WF_EINPUT with a message. */
int wf_event_redact_parse(enum wf_event_redact *out, const char *name);

/* An optional value: absent, null, or there. */
enum wf_event_has {
	WF_EVENT_ABSENT = 0,
	WF_EVENT_NULL,
	WF_EVENT_VALUE
};

/* One element of "stages" (plan_created and execution_summary). */
struct wf_event_stage {
	int64_t index;
	enum wf_event_run_mode run_mode;
	const char *const *workflows;
	size_t nworkflows;
	const char *const *blocking_conflicts;
	size_t nblocking_conflicts;
};

/* multi_workflow.plan_created */
struct wf_event_plan {
	const char *plan_id;			/* required */
	enum wf_event_has has_issue_number;	/* absent is written null */
	int64_t issue_number;
	const char *batch_id;			/* NULL: left out */
	int64_t stage_count;
	int64_t workflow_count;
	int allow_partial_success;
	int preview_only;
	const char *selection_reason;		/* NULL: left out */
	const char *selection_message;		/* NULL: left out */
	const struct wf_event_stage *stages;
	size_t nstages;
};

/* stage_runs[].workflows[] */
struct wf_event_workflow_run {
	const char *workflow_name;		/* required */
	enum wf_event_status status;
	int has_created_files;			/* 0: left out */
	const char *const *created_files;
	size_t ncreated_files;
	const char *message;			/* NULL: left out */
};

/* stage_runs[] */
struct wf_event_stage_run {
	int64_t index;
	enum wf_event_run_mode run_mode;
	const char *const *blocking_conflicts;
	size_t nblocking_conflicts;
	const struct wf_event_workflow_run *workflows;
	size_t nworkflows;
};

/* deliverable_manifest.entries[], as wf-plan(1) writes them */
struct wf_event_deliverable {
	const char *workflow;			/* required */
	const char *name;			/* required */
	const char *path;			/* required */
	const char *template;			/* NULL: left out */
	const char *renamed_from;		/* NULL: left out */
};

/* errors[] */
struct wf_event_error {
	const char *workflow_name;
	const char *error;
};

/* multi_workflow.execution_summary */
struct wf_event_summary {
	int64_t issue_number;
	const char *plan_id;			/* required */
	int64_t stage_count;
	int64_t workflow_count;
	const struct wf_event_stage *stages;
	size_t nstages;
	int preview_only;
	const char *selection_reason;		/* NULL: left out */
	const char *selection_message;		/* NULL: left out */
	int allow_partial_success;
	enum wf_event_has has_overall_timeout_seconds;
	int64_t overall_timeout_seconds;
	int has_deliverable_manifest;
	const struct wf_event_deliverable *deliverables;
	size_t ndeliverables;
	const struct wf_event_stage_run *stage_runs;
	size_t nstage_runs;
	enum wf_event_status status;		/* executed or skipped */
	const char *skip_reason;		/* NULL: left out */
	int has_errors;				/* 0: left out */
	const struct wf_event_error *errors;
	size_t nerrors;
};

/* wf.change.enqueued, .landed, .failed, .dead: see doc/events.md */
struct wf_event_change {
	const char *change_id;			/* required */
	enum wf_event_has has_queue_id;		/* absent is written null */
	int64_t queue_id;
	const char *state;			/* required */
	const char *target;			/* NULL: left out */
	/* enqueued only */
	enum wf_event_has has_position;		/* absent is written null */
	int64_t position;
	int existing;
	/* landed only: the commit, 40 hex digits */
	const char *commit;
	/* failed and dead only: why */
	const char *error;
	/* any, when known; -1: left out */
	int64_t attempts;
	int64_t duration_ms;
};

/* Statistics of durations in milliseconds; count 0 writes nulls. */
struct wf_event_durations {
	uint64_t count;
	int64_t total_ms, min_ms, max_ms;
};

/* wf.batch.metrics: see doc/events.md */
struct wf_event_metrics {
	uint64_t event_count;		/* distinct inputs counted */
	uint64_t duplicate_count;	/* inputs seen before, not counted */
	uint64_t plan_count;
	uint64_t summary_count;
	uint64_t executed_count;
	uint64_t skipped_count;
	uint64_t multi_workflow_count;
	uint64_t partial_success_count;
	uint64_t conflict_count;
	uint64_t workflows_executed;
	uint64_t workflows_skipped;
	uint64_t workflows_failed;
	uint64_t enqueued_count;
	uint64_t landed_count;
	uint64_t failed_count;
	uint64_t dead_count;
	struct wf_event_durations execution;	/* summaries' duration_ms */
	struct wf_event_durations step;		/* their steps' duration_ms */
	struct wf_event_durations landing;	/* changes' duration_ms */
};

/*
 * One event: its type and its typed content.  Made by the wf_event_from_*
 * parsers or filled in by hand (then `src` and `priv` stay NULL).
 */
struct wf_event {
	enum wf_event_type type;
	union {
		struct wf_event_plan plan;
		struct wf_event_summary summary;
		struct wf_event_change change;
		struct wf_event_metrics metrics;
	} u;
	json_t *src;		/* the input, referenced; NULL when built */
	void *priv;		/* arrays the parser allocated */
};

/* Free an event from a wf_event_from_*() parser; no-op on NULL. */
void wf_event_free(struct wf_event *ev);

/*
 * Parse an ExecutionPlan (what wf-plan writes) into a plan_created
 * event.  The fields the contract names are read and checked, others are
 * ignored.  *out is the caller's to wf_event_free(); NULL on error.
 * Returns WF_EINPUT with a message "<name>:<line>:<col>: <path>: ..."
 * naming the missing or bad field; WF_ENOMEM.  `doc` is not changed.
 */
int wf_event_from_plan(struct wf_event **out, const struct wf_json_doc *doc);

/*
 * Parse an execution summary (the contract's execution_summary fields,
 * as wf-run writes them) into an execution_summary event.  "stages" may
 * be absent: it is then made from "stage_runs", which has the same
 * fields.  Other fields ("changes"...) are ignored.  Ownership and
 * errors as wf_event_from_plan().
 */
int wf_event_from_summary(struct wf_event **out,
    const struct wf_json_doc *doc);

/*
 * The contract's preview-skip execution_summary of an ExecutionPlan:
 * every workflow "skipped" with the preview message, status "skipped",
 * skip_reason "preview_only_guard".  The plan must say "preview_only":
 * true (WF_EINPUT at .preview_only otherwise) and have an integer
 * issue_number.  Ownership and errors as wf_event_from_plan().
 */
int wf_event_from_skipped_plan(struct wf_event **out,
    const struct wf_json_doc *doc);

/*
 * Parse one line of wf-enqueue ({"id", "queue_id", "state", "position",
 * "existing"}) or wf-apply ({"id", "queue_id", "state": "landed" with
 * "commit", or "failed" / "dead" with "error" or "reason"}) into a
 * wf.change.* event: a line with "position" is enqueued, the others take
 * their type from "state".  "target", "attempts" and "duration_ms" are
 * kept when present; other fields are ignored.  Ownership and errors as
 * wf_event_from_plan().
 */
int wf_event_from_change(struct wf_event **out,
    const struct wf_json_doc *doc);

/* How to write an event; see wf_event_render(). */
struct wf_event_opts {
	enum wf_event_redact redact;
	int cloudevents;	/* wrap in a CloudEvents 1.0 envelope */
	const char *source;	/* CloudEvents source (NULL: "urn:wf:wf-emit") */
	int64_t time;		/* CloudEvents time, seconds since the epoch;
				 * -1 leaves "time" out */
};

#define WF_EVENT_OPTS_INIT { WF_EVENT_REDACT_KEEP, 0, NULL, -1 }
#define WF_EVENT_SOURCE_DEFAULT "urn:wf:wf-emit"

/*
 * The payload of `ev` with paths redacted as `redact` says, its keys in
 * the order of the contract's table.  *out is a new reference; NULL on
 * error: WF_EINPUT when a hand-filled event breaks its schema (a NULL
 * required string, a status outside the vocabulary, a summary status of
 * "failed", a negative count, a change state that does not fit its
 * type), with a message naming the field; WF_ENOMEM.
 */
int wf_event_payload(json_t **out, const struct wf_event *ev,
    enum wf_event_redact redact);

/*
 * The id of a payload: the git blob id of its canonical form (compact,
 * keys sorted), as `git hash-object` gives it, so equal payloads have
 * equal ids and a consumer can drop duplicates.
 */
int wf_event_id(git_oid *out, const json_t *payload);

/*
 * Wrap `payload` (borrowed) as CloudEvents 1.0 JSON: specversion, id
 * (wf_event_id() in hex), source, type, subject (the plan_id or change
 * id, when the event has one), time (RFC 3339, UTC, when opts->time is
 * not -1), datacontenttype "application/json", data.  *out is a new
 * reference; NULL on WF_ENOMEM, or WF_EINPUT for a time out of range.
 */
int wf_event_envelope(json_t **out, const struct wf_event *ev,
    const json_t *payload, const struct wf_event_opts *opts);

/*
 * The event as it is sent: the payload, or its envelope with
 * opts->cloudevents; compact, in one line ending in "\n".  *out is a
 * malloc'ed string the caller frees, *len its length without the NUL;
 * `id` (may be NULL) receives the payload's id.  opts NULL means
 * WF_EVENT_OPTS_INIT.  Errors as wf_event_payload(); *out is then NULL.
 */
int wf_event_render(char **out, size_t *len, git_oid *id,
    const struct wf_event *ev, const struct wf_event_opts *opts);

/*
 * As wf_event_render(), indented for people (still ending in "\n").
 */
int wf_event_render_pretty(char **out, size_t *len,
    const struct wf_event *ev, const struct wf_event_opts *opts);

/*
 * Batch metrics over a stream of summaries and change events.  Each
 * input is counted once: a value whose canonical form was seen before
 * is a duplicate (events are delivered at least once).
 */
struct wf_event_batch;

/* A new, empty batch; *out is the caller's to wf_event_batch_free(). */
int wf_event_batch_new(struct wf_event_batch **out);

/* Free the batch; no-op on NULL. */
void wf_event_batch_free(struct wf_event_batch *b);

/*
 * Count one input: an execution summary (as wf-run writes it or as an
 * execution_summary payload), an ExecutionPlan or plan_created payload,
 * a wf.change.* payload, a line of wf-enqueue or wf-apply, or any of
 * these events in a CloudEvents envelope.  A "duration_ms" integer in a
 * summary, in a step of its stage_runs[].workflows[].steps[] (as wf-run
 * writes them) or in a change is added to the execution, step or landing
 * durations.
 * WF_EINPUT, naming the place, for a value that is none of these or is
 * malformed; the batch is then unchanged.
 */
int wf_event_batch_add(struct wf_event_batch *b,
    const struct wf_json_doc *doc);

/*
 * The wf.batch.metrics event of what was counted so far, in *out (a
 * plain struct: nothing to free).
 */
void wf_event_batch_event(struct wf_event *out,
    const struct wf_event_batch *b);

#endif
