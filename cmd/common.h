#ifndef WF_CMD_COMMON_H
#define WF_CMD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "change.h"
#include "json.h"
#include "queue.h"

/* Exit codes shared by every tool; each man page lists them. */
enum {
	WF_EXIT_OK = 0,		/* success */
	WF_EXIT_NO = 1,		/* a negative answer: no match, check failed */
	WF_EXIT_USAGE = 2,	/* bad options or arguments */
	WF_EXIT_INPUT = 3,	/* bad input: malformed, invalid, refused */
	WF_EXIT_OS = 4,		/* system or I/O error */
	WF_EXIT_TEMP = 75	/* temporary failure (busy, locked): retry */
};

/* Long options every tool takes; getopt_long values above any char. */
enum {
	WF_OPT_HELP = 0x100,
	WF_OPT_VERSION,
	WF_OPT_PRETTY,
	WF_OPT_TOOL		/* first value free for the tool */
};

#define WF_COMMON_LONGOPTS \
	{ "help", no_argument, NULL, WF_OPT_HELP }, \
	{ "version", no_argument, NULL, WF_OPT_VERSION }, \
	{ "pretty", no_argument, NULL, WF_OPT_PRETTY }

/* Set the tool's name (for diagnostics) and initialise the library. */
void wf_cmd_init(const char *name);

/*
 * wf_cmd_init() for a tool that never calls libgit2 (wf-proc-receive):
 * it does not pay for libgit2's initialisation, which reads every CA
 * certificate of the system.
 */
void wf_cmd_init_without_git(const char *name);

/* The tool's name as given to wf_cmd_init(). */
const char *wf_cmd_name(void);

/* "name: error: ..." on stderr. */
void wf_cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "name: warning: ..." on stderr. */
void wf_cmd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The exit code for a library error code. */
int wf_cmd_exit_code(int error);

/* Report wf_error_last() and return the exit code for `error`. */
int wf_cmd_fail(int error);

/*
 * Report a usage error with a pointer to --help; returns WF_EXIT_USAGE.
 */
int wf_cmd_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/*
 * Handle the common options: prints help (the tool's `usage` text) or
 * version and returns 1 when the tool should exit 0 after it; 0 when
 * `opt` was handled otherwise (--pretty); -1 when `opt` is not common.
 */
int wf_cmd_common_option(int opt, const char *usage);

/*
 * Handle what getopt_long() returned that the tool's own cases did not:
 * the common options, and the ':' and '?' of a missing value or an
 * unknown option (the tool calls getopt_long with opterr = 0 and a
 * leading ':' in its short options).  Returns 0 when the tool should go
 * on parsing; 1 when it should exit at once with *code (0 after --help
 * or --version, WF_EXIT_USAGE after a usage error).
 */
int wf_cmd_other_option(int *code, int opt, char **argv, const char *usage);

/* Parse a non-negative decimal number for option `name`. */
int wf_cmd_parse_size(size_t *out, const char *arg, const char *name);

/*
 * Write one JSON value to stdout as a line (compact) or, after --pretty,
 * indented.  Returns 0 or WF_EOS.
 */
int wf_cmd_write_json(const json_t *v);

/* Whether --pretty was given. */
int wf_cmd_pretty(void);

/* Write len bytes of s to stdout as they are.  Returns 0 or WF_EOS. */
int wf_cmd_write_buf(const char *s, size_t len);

/* Write a string to stdout as is.  Returns 0 or WF_EOS. */
int wf_cmd_write_text(const char *s);

/*
 * Call fn for every JSON value in the operands (stdin when there are
 * none; "-" is stdin).  Stops at the first error from the reader or fn
 * and returns it; returns 0 when all input was consumed.  fn owns
 * nothing: the doc's value is released after it returns.
 */
int wf_cmd_each_value(int argc, char **argv,
    int (*fn)(const struct wf_json_doc *doc, void *ctx), void *ctx);

/*
 * Flush and close stdout; a write error (full disk, closed pipe) turns
 * `code` into WF_EXIT_OS with a message.  Returns the final exit code.
 */
int wf_cmd_finish(int code);

/* The receive hooks (wf-hooks, wf-proc-receive). */

/* Say something to the pusher: "name: ...", on stderr, as hooks talk. */
void wf_cmd_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The key of the push a receive hook runs for (wf_handover_key() of
 * the git-receive-pack running the hooks: $WF_RECEIVE_PID, which the
 * hook scripts set, else the parent process).  WF_EOS when there is no
 * telling.
 */
int wf_cmd_hook_key(char **out);

/*
 * Start `<wf_hooks> land -C <gitdir>` in the background, its output
 * appended to <gitdir>/wf/hooks.log, once the git-receive-pack of the
 * push has exited, and, unless `quiet`, tell the pusher where that log
 * is.
 */
int wf_cmd_hook_start_runner(const char *wf_hooks, const char *gitdir,
    int quiet);

/* One update a proc-receive hook answers. */
struct wf_cmd_proc_item {
	const char *ref;		/* the ref pushed (borrowed) */
	const char *new_hex;		/* the commit pushed: 40 hex digits,
					   perhaps more text after (borrowed) */
	struct wf_change *change;	/* what to queue (borrowed), or NULL */
	const char *why;		/* change NULL: why it is refused */
	/* Set by wf_cmd_hook_proc_queue(): */
	int64_t queue_id;
	char kept[64];			/* the ref keeping it, or "" */
	char *error;			/* not queued: why (owned) */
};

/*
 * Queue the changes of items[0..n) in one transaction, each pushed to
 * a topic superseding the earlier versions of that topic still waiting
 * (wf_queue_batch_supersede()), and keep each one's commits at
 * WF_PUSH_KEPT_PREFIX<queue id> in `gitdir` before the transaction commits,
 * so that an item without error is queued and kept, both: as loose refs
 * written directly when `loose` (the pre-receive found the repository's
 * refs to be plain files, lib/loose_ref.h), else or when that fails by
 * `git update-ref`.  Tell the
 * pusher each one's id, position and ref.  A change refused by the
 * queue (its id queued with other content) gets its error; on any
 * other error nothing is queued, every item with a change gets the
 * error, and it is returned.
 */
int wf_cmd_hook_proc_queue(struct wf_queue *q, const char *gitdir,
    struct wf_cmd_proc_item *items, size_t n, int loose);

/*
 * Answer receive-pack for items[0..n), in order, on `fd`: ok with the
 * kept ref, or ng with the item's error or why; then a flush.  WF_EOS.
 */
int wf_cmd_hook_proc_answer(int fd, const struct wf_cmd_proc_item *items,
    size_t n);

/* Free what the items own (not the array).  NULL is a no-op. */
void wf_cmd_proc_items_release(struct wf_cmd_proc_item *items, size_t n);

#endif
