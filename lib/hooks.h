#ifndef WF_HOOKS_H
#define WF_HOOKS_H

#include <git2.h>
#include <jansson.h>

/*
 * wf's git hooks in a repository: the server's pre-receive and
 * proc-receive, the client's pre-push.  They are installed from
 * templates, small shell scripts that carry WF_HOOKS_MARKER, by which
 * wf tells its own hooks from anyone else's.  A hook that was there
 * before (a "foreign" hook) is kept as <hook>.wf-chained beside it; wf's
 * hook runs it first, with the same arguments and input, and stops where
 * it fails (pre-receive, pre-push).  Uninstalling puts it back.  A
 * proc-receive hook cannot be chained (it answers git for each ref, and
 * only one can): install refuses a foreign one.  wf's post-receive of
 * old is taken out by install, its chained hook put back.
 *
 * Results are arrays of {"hook", "path", "state", "chained"}, "chained"
 * being the path of the chained hook or null, and "state":
 *   install:    installed, updated (an older wf hook replaced), unchanged
 *   uninstall:  removed, restored (the chained hook put back), foreign
 *               (not wf's: left alone), absent
 *   status:     installed, outdated (differs from the template), foreign,
 *               absent
 */

#define WF_HOOKS_MARKER "# wf-hooks: managed hook"

enum {
	WF_HOOKS_SERVER = 1,	/* pre-receive, proc-receive */
	WF_HOOKS_CLIENT = 2,	/* pre-push */
	WF_HOOKS_ALL = 3
};

struct wf_hooks_opts {
	unsigned which;		/* WF_HOOKS_SERVER, _CLIENT or both */
	const char *templates;	/* directory holding the templates */
	/*
	 * Written into the hooks as WF_BIN, where they look for wf-hooks
	 * before PATH (NULL: PATH only).
	 */
	const char *bin_dir;
};

#define WF_HOOKS_OPTS_INIT { WF_HOOKS_ALL, NULL, NULL }

/*
 * The directory git runs `repo`'s hooks from: core.hooksPath (with "~/"
 * expanded; a relative one is relative to the top of the work tree, or
 * to the git directory of a bare repository), else "hooks" in the common
 * git directory.  *out is a new malloc'ed string.
 */
int wf_hooks_dir(char **out, git_repository *repo);

/*
 * Install the hooks `opts->which` names into wf_hooks_dir() (created when
 * missing), each written whole and renamed into place, mode 0755.  With
 * WF_HOOKS_SERVER, the git on PATH must have proc-receive (WF_EOS, by
 * wf_hooks_git_check(), before anything is changed), and the
 * repository's configuration gets receive.advertisePushOptions true
 * (pushers pass -o wf.wait and the like) and receive.procReceiveRefs
 * refs/for (git leaves those pushes to proc-receive), each once.
 * Idempotent: installing again changes nothing.  Nothing is changed
 * when a hook cannot be installed: WF_ECONFLICT when a foreign hook is
 * there and a chained one too (say which, to sort out by hand), or a
 * foreign proc-receive, WF_EINPUT for a template without the marker,
 * WF_EOS for a missing template or a file that cannot be written.
 * *out (may be NULL) is a new array, as above; an old wf post-receive
 * taken out is in it as "removed" or "restored".
 */
int wf_hooks_install(json_t **out, git_repository *repo,
    const struct wf_hooks_opts *opts);

/*
 * Remove wf's hooks among `which`, putting each chained hook back; a
 * foreign hook is left as it is.  With WF_HOOKS_SERVER the value
 * refs/for of receive.procReceiveRefs goes too.  *out (may be NULL) is
 * a new array.
 */
int wf_hooks_uninstall(json_t **out, git_repository *repo, unsigned which);

/*
 * What is installed for the hooks `opts->which` names; a wf hook is
 * compared with what installing it from opts->templates (NULL: not
 * compared) would write.  *out is a new array.
 */
int wf_hooks_status(json_t **out, git_repository *repo,
    const struct wf_hooks_opts *opts);

/*
 * Whether a git of version `version` (major, minor, patch, as
 * wf_git_version_parse() gives it) can run the server hooks: 0 from
 * 2.29 on, which has proc-receive; else WF_EOS saying so.
 */
int wf_hooks_git_check(const unsigned version[3]);

#endif
