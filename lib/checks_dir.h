#ifndef WF_CHECKS_DIR_H
#define WF_CHECKS_DIR_H

#include <sys/types.h>

/*
 * The directories the checks run in, private to lib/checks*.c.  Each is
 * TMP/wf-check.XXXXXX, holding
 *
 *   lock   flock()ed by its owner from before the checkout is written
 *          until after it is removed, and holding the record below;
 *   tree/  the checkout, where the commands run.
 *
 * A kill -9 leaves both behind, but not the flock: whoever can take it
 * knows the owner is gone.  The record names the owner's host, its
 * process, the WF_CHECK_ID every command of the directory gets in its
 * environment, and the group of the command that ran last with the
 * start time of its leader (field 22 of /proc/PID/stat):
 *
 *   wf-check 1
 *   host HOSTNAME
 *   pid 0000012345
 *   id 0123456789abcdef0123456789abcdef
 *   pgid 0000012346 00000000000001234567
 *
 * A pgid of 0 means no command has started yet.
 */
struct wf_checks_dir {
	char *path;		/* TMP/wf-check.XXXXXX */
	char *tree;		/* PATH/tree */
	int fd;			/* PATH/lock, locked; -1 once released */
	char id[33];		/* WF_CHECK_ID: 32 hex digits */
	pid_t pgid;		/* the group of the command that ran last */
	unsigned long long start;	/* its leader's start time */
};

/* $TMPDIR when set and not empty, else /tmp, when `tmpdir` is NULL. */
const char *wf_checks_dir_tmp(const char *tmpdir);

/*
 * Make a new directory in `tmp`, take its lock and write its record;
 * PATH/tree is made, empty.  WF_EOS or WF_ENOMEM; *d is then released.
 */
int wf_checks_dir_create(struct wf_checks_dir *d, const char *tmp);

/*
 * Record `pgid` (a command's group, of which it is the leader) before
 * anything of that command could be left behind.  Best effort: the id
 * in the commands' environment finds them without it.
 */
void wf_checks_dir_started(struct wf_checks_dir *d, pid_t pgid);

/*
 * Kill (SIGKILL) what still runs of the commands of `d`, as
 * wf_checks_cleanup() does for an abandoned directory, and wait up to
 * `wait_ms` for it to end.  Returns how many processes were found.
 */
size_t wf_checks_dir_sweep(const struct wf_checks_dir *d, long wait_ms);

/*
 * Remove the directory and release its lock; the lock file stays, for
 * a later wf_checks_cleanup(), when the tree could not all be removed.
 * Safe on a directory never created or already released.
 */
void wf_checks_dir_release(struct wf_checks_dir *d);

#endif
