#ifndef WF_ERROR_H
#define WF_ERROR_H

/*
 * Error codes returned by every library function: 0 on success, one of
 * these (all negative) on failure.  The human message of the last failure
 * in this thread is kept for wf_error_last(); callers test the code, never
 * the text.
 */
enum {
	WF_OK = 0,
	WF_ERROR = -1,		/* generic failure */
	WF_EINPUT = -2,		/* the input is malformed or refused */
	WF_ENOTFOUND = -3,	/* a named thing does not exist */
	WF_ECONFLICT = -4,	/* the request conflicts with what exists */
	WF_EBUSY = -5,		/* temporary: locked or busy, try again */
	WF_EOS = -6,		/* system or I/O failure */
	WF_ENOMEM = -7,		/* out of memory */
	WF_EINTR = -8		/* stopped by the caller's interrupt flag */
};

/*
 * Record a failure and return `code`, so callers can write
 * `return wf_error_set(WF_EINPUT, "bad '%s'", name);`.
 */
int wf_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* As wf_error_set(), with ": strerror(errno)" appended. */
int wf_error_set_errno(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * As wf_error_set(), with ": " and libgit2's last error message appended
 * (or nothing when libgit2 has none).
 */
int wf_error_set_git(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Prefix the current message with "prefix: ", keeping the code.  Returns
 * `code` for the same tail-call use as wf_error_set().
 */
int wf_error_prefix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The message of the last failure in this thread; "" when there is none. */
const char *wf_error_last(void);

/* Forget the last failure. */
void wf_error_clear(void);

/* Report an allocation failure; returns WF_ENOMEM. */
int wf_error_oom(void);

#endif
