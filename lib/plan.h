#ifndef WF_PLAN_H
#define WF_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "json.h"

/*
 * The planner: turns one WorkflowPlan (what wf-match writes) into an
 * ExecutionPlan (the multi_workflow.plan_created payload plus the
 * definitions and deliverable manifest an executor needs).
 */
struct wf_plan_opts {
	unsigned int version;
	size_t max_parallel;		/* workflows per stage; 0: no bound */
	int allow_partial_success;
	int preview_only;
	int explain;			/* add "explain" to the plan */
};

#define WF_PLAN_OPTS_VERSION 1
#define WF_PLAN_MAX_PARALLEL_DEFAULT 4
#define WF_PLAN_OPTS_INIT \
	{ WF_PLAN_OPTS_VERSION, WF_PLAN_MAX_PARALLEL_DEFAULT, 0, 0, 0 }

/*
 * Plan the WorkflowPlan `doc->value` (read from `doc`, which names the
 * places of input errors).  opts NULL means WF_PLAN_OPTS_INIT.
 *
 * On success *out is a new reference to the ExecutionPlan, its keys in
 * this order: plan_id, issue_number, stage_count, workflow_count,
 * allow_partial_success, preview_only, selection_reason,
 * selection_message, stages, max_parallel, item, workflows,
 * deliverable_manifest, and explain when opts->explain is set.
 * plan_id is "multiwf-" and the first 32 hex digits of the blob id
 * (wf_hash_buf()) of the plan without plan_id and explain, written by
 * wf_json_dump() with its keys in the order above, so the same input
 * gives the same id whatever the order of the candidates or the output
 * format.  (Candidate definitions and the item keep their keys in the
 * order read, in the id as in the output.)
 * wf-plan(1) describes every field.
 *
 * Returns WF_EINPUT, with a message "<name>:<line>:<col>: <path>: ..."
 * naming the place, for a malformed WorkflowPlan, duplicate candidate
 * names, a dependency that is not a candidate or a dependency cycle
 * ("dependency cycle: a -> b -> a", each workflow depending on the
 * next); WF_ENOMEM or WF_ERROR otherwise.  *out is NULL on error and
 * `doc` is never changed.
 *
 * The plan shares values with doc->value rather than copying them: the
 * item, each candidate definition and the name strings.  Treat both as
 * read-only, or json_deep_copy() one before changing it.
 */
int wf_plan_build(json_t **out, const struct wf_json_doc *doc,
    const struct wf_plan_opts *opts);

/*
 * As wf_plan_build(), but *out is the plan's compact text: byte for byte
 * what wf_json_dump() of wf_plan_build()'s plan gives, without building
 * that plan, so a large plan is serialised once, not once for its id and
 * again for the output.  *out is malloc'ed and NUL-terminated, *len its
 * length; the caller frees it.  Both are NULL/0 on error; errors are
 * those of wf_plan_build().
 */
int wf_plan_build_text(char **out, size_t *len, const struct wf_json_doc *doc,
    const struct wf_plan_opts *opts);

/*
 * Render an ExecutionPlan from wf_plan_build() for people: the plan id,
 * issue, selection, one line per stage with its blocking conflicts, the
 * deliverable manifest, and the explanations when the plan has them.
 * *out is a malloc'ed string the caller frees; NULL on error.  Returns
 * WF_EINPUT when `plan` does not have the shape wf_plan_build() gives,
 * WF_ENOMEM when out of memory.
 */
int wf_plan_format_text(char **out, const json_t *plan);

/*
 * Render an ExecutionPlan as a Graphviz digraph: one cluster per stage
 * ("cluster_<index>", labelled with the index and run mode) holding its
 * workflows, and one edge per dependency drawn from the dependency to
 * the workflow that needs it (the direction execution flows).  Same
 * ownership and errors as wf_plan_format_text().
 */
int wf_plan_format_dot(char **out, const json_t *plan);

/*
 * The scheduling graph, apart from any JSON, so it can be driven and
 * measured on its own.  Nodes are workflows, numbered from 0 in the
 * order they are added; edges are dependencies; conflict keys are
 * strings.  Scheduling places every node in a stage:
 *
 *  - in Kahn's topological order, the ready node with the highest
 *    priority going first and names breaking ties (so the result does
 *    not depend on the order of adding);
 *  - in the first stage after all of its dependencies' stages that
 *    holds fewer than max_parallel nodes (0: no bound) and none of its
 *    conflict keys.
 *
 * Finding that stage uses a union-find over stages with room and, per
 * conflict key, a sparse union-find over the stages holding it, so a
 * hot key or a small bound costs near-linear time.  A node whose
 * several keys are held in alternating stages still walks those stages
 * one by one.
 */
struct wf_plan_graph;

/* Why a node sits in its stage rather than an earlier one. */
enum wf_plan_reason {
	WF_PLAN_REASON_NONE,		/* stage 0, nothing held it back */
	WF_PLAN_REASON_DEPENDENCY,	/* right after its latest dependency */
	WF_PLAN_REASON_CONFLICT,	/* the stage before held its key */
	WF_PLAN_REASON_PARALLELISM	/* the stage before was full */
};

/* Where a node was placed and why; see wf_plan_graph_placement(). */
struct wf_plan_placement {
	size_t stage;
	size_t earliest;		/* first stage its dependencies allow */
	enum wf_plan_reason reason;
	/*
	 * DEPENDENCY: the latest dependency (the first placed among
	 * equals) and its stage.  CONFLICT: the node holding `key` in
	 * why_stage, which is stage - 1.  PARALLELISM: why_stage is
	 * stage - 1, other is WF_PLAN_NONE.  NONE: other is WF_PLAN_NONE,
	 * why_stage 0.
	 */
	size_t other;
	size_t why_stage;
	const char *key;		/* CONFLICT only; borrowed */
};

/* One stage of a scheduled graph; see wf_plan_graph_stage(). */
struct wf_plan_stage {
	const size_t *nodes;		/* sorted by name */
	size_t nnodes;
	const char *const *blocking;	/* conflict keys, sorted, unique */
	size_t nblocking;
};

#define WF_PLAN_NONE ((size_t)-1)

/*
 * Create an empty graph; `hint` is the expected number of nodes (0 if
 * unknown).  *out is the caller's to wf_plan_graph_free(); NULL on
 * WF_ENOMEM.
 */
int wf_plan_graph_new(struct wf_plan_graph **out, size_t hint);

/* Free the graph and everything it allocated; no-op on NULL. */
void wf_plan_graph_free(struct wf_plan_graph *g);

/*
 * Add a node.  `name` is borrowed and must outlive the graph.  *out
 * receives the new node's number; WF_ECONFLICT (message "duplicate
 * workflow 'x'", *out the existing node) when the name is taken;
 * WF_ENOMEM, or WF_ERROR after scheduling, leave the graph unchanged.
 */
int wf_plan_graph_add(size_t *out, struct wf_plan_graph *g, const char *name,
    int64_t priority);

/* The node named `name`: 0, or WF_ENOTFOUND without a message. */
int wf_plan_graph_find(size_t *out, const struct wf_plan_graph *g,
    const char *name);

/*
 * Make `node` depend on `dep` (both existing numbers): it runs in a
 * later stage.  Repeating an edge is harmless.  WF_ERROR for a bad
 * number or after scheduling; WF_ENOMEM.
 */
int wf_plan_graph_depend(struct wf_plan_graph *g, size_t node, size_t dep);

/*
 * Give `node` the conflict key `key` (copied): no two nodes sharing a
 * key share a stage.  Repeating a key is harmless.  Errors as
 * wf_plan_graph_depend().
 */
int wf_plan_graph_conflict(struct wf_plan_graph *g, size_t node,
    const char *key);

/*
 * Place every node (see above); call once, after which the graph takes
 * no more nodes, edges or keys.  WF_EINPUT with the message
 * "dependency cycle: a -> b -> a" when the dependencies have a cycle:
 * the walk starts at the smallest name Kahn's order could not reach,
 * follows each node's smallest such dependency, and the cycle it finds
 * is spelled from its smallest name; wf_plan_graph_cycle() gives it as
 * nodes.  WF_ENOMEM; WF_ERROR when called twice or with more than
 * UINT32_MAX - 1 nodes.  Results are only valid after a 0 return.
 */
int wf_plan_graph_schedule(struct wf_plan_graph *g, size_t max_parallel);

/* Number of nodes. */
size_t wf_plan_graph_size(const struct wf_plan_graph *g);

/* The name of `node` (borrowed, as given to wf_plan_graph_add()). */
const char *wf_plan_graph_name(const struct wf_plan_graph *g, size_t node);

/* After scheduling: the number of stages (0 for an empty graph). */
size_t wf_plan_graph_stage_count(const struct wf_plan_graph *g);

/*
 * After scheduling: the nodes in the order they were placed (Kahn's
 * order above), wf_plan_graph_size() of them; borrowed from the graph.
 */
const size_t *wf_plan_graph_order(const struct wf_plan_graph *g);

/*
 * After scheduling: fill *out with stage `index` (pointers borrowed
 * from the graph).  A key is in the stage's blocking list when the
 * stage holds it and some node with that key which its dependencies
 * allowed into this stage or an earlier one was placed later.
 * WF_ENOTFOUND (no message) past the last stage.
 */
int wf_plan_graph_stage(struct wf_plan_stage *out,
    const struct wf_plan_graph *g, size_t index);

/*
 * After scheduling: where `node` went and why.  WF_ENOTFOUND (no
 * message) for a bad number.
 */
int wf_plan_graph_placement(struct wf_plan_placement *out,
    const struct wf_plan_graph *g, size_t node);

/*
 * After wf_plan_graph_schedule() returned WF_EINPUT: the cycle as
 * nodes, each depending on the next and the last on the first; *out is
 * borrowed from the graph.  Returns the length, 0 when there is none.
 */
size_t wf_plan_graph_cycle(const size_t **out, const struct wf_plan_graph *g);

#endif
