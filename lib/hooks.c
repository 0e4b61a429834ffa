#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "git.h"
#include "hooks.h"

#define CHAINED ".wf-chained"
#define MAX_HOOK (1024 * 1024)

/* proc-receive appeared in git 2.29. */
#define PROC_RECEIVE_MAJOR 2
#define PROC_RECEIVE_MINOR 29
#define PROC_RECEIVE_REFS "refs/for"

enum {
	NO_CHAIN = 1,	/* a foreign hook there cannot be chained */
	RETIRED = 2	/* wf's no more: install takes an old one out */
};

static const struct {
	const char *name;
	unsigned which;
	unsigned flags;
} hooks[] = {
	{ "pre-receive", WF_HOOKS_SERVER, 0 },
	{ "proc-receive", WF_HOOKS_SERVER, NO_CHAIN },
	/* Before proc-receive, post-receive queued: gone since. */
	{ "post-receive", WF_HOOKS_SERVER, RETIRED },
	{ "pre-push", WF_HOOKS_CLIENT, 0 },
	{ NULL, 0, 0 }
};

#define NHOOKS (sizeof(hooks) / sizeof(*hooks) - 1)

static char *
join(const char *dir, const char *name, const char *suffix)
{
	size_t n = strlen(dir);
	char *p = malloc(n + strlen(name) + strlen(suffix) + 2);

	if (p)
		sprintf(p, "%s%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" :
		    "/", name, suffix);
	return p;
}

int
wf_hooks_dir(char **out, git_repository *repo)
{
	git_config *cfg = NULL;
	git_buf buf = GIT_BUF_INIT;
	const char *base;
	int error;

	*out = NULL;
	if (git_repository_config_snapshot(&cfg, repo) < 0)
		return wf_error_set_git(WF_EOS, "cannot read the configuration");
	error = git_config_get_path(&buf, cfg, "core.hooksPath");
	if (error == 0 && buf.size > 0) {
		if (buf.ptr[0] == '/') {
			*out = strdup(buf.ptr);
		} else {
			base = git_repository_is_bare(repo) ?
			    git_repository_path(repo) :
			    git_repository_workdir(repo);
			*out = join(base, buf.ptr, "");
		}
	} else if (error == 0 || error == GIT_ENOTFOUND) {
		git_buf_dispose(&buf);
		if (git_repository_item_path(&buf, repo,
		    GIT_REPOSITORY_ITEM_HOOKS) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot find the hooks "
			    "directory");
			goto out;
		}
		*out = strdup(buf.ptr);
	} else {
		error = wf_error_set_git(WF_EINPUT, "bad core.hooksPath");
		goto out;
	}
	error = *out ? 0 : wf_error_oom();
	/* "hooks/" and "hooks" are one directory: drop a final slash. */
	if (*out) {
		size_t n = strlen(*out);

		while (n > 1 && (*out)[n - 1] == '/')
			(*out)[--n] = '\0';
	}
out:
	git_buf_dispose(&buf);
	git_config_free(cfg);
	return error;
}

/* Read a whole (small) file; WF_ENOTFOUND when it is not there. */
static int
slurp(char **out, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t got;
	int fd, error = 0;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? wf_error_set(WF_ENOTFOUND, "no file "
		    "'%s'", path) : wf_error_set_errno(WF_EOS, "cannot open "
		    "'%s'", path);
	if (!(buf = malloc(MAX_HOOK + 1))) {
		error = wf_error_oom();
		goto out;
	}
	while (len < MAX_HOOK && (got = read(fd, buf + len,
	    MAX_HOOK - len)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			error = wf_error_set_errno(WF_EOS, "cannot read '%s'",
			    path);
			goto out;
		}
		len += (size_t)got;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return error;
}

/* Whether a hook's text carries the marker at the start of a line. */
static int
ours(const char *text)
{
	size_t n = strlen(WF_HOOKS_MARKER);

	return strncmp(text, WF_HOOKS_MARKER, n) == 0 ||
	    strstr(text, "\n" WF_HOOKS_MARKER) != NULL;
}

/*
 * The hook as installed: the template with its "WF_BIN=" line set to
 * bin_dir, single-quoted for the shell.
 */
static int
render(char **out, const char *templates, const char *name,
    const char *bin_dir)
{
	char *path = join(templates, name, ""), *text = NULL, *line, *r, *o;
	const char *s;
	size_t extra;
	int error;

	*out = NULL;
	if (!path)
		return wf_error_oom();
	error = slurp(&text, path);
	if (error == WF_ENOTFOUND)
		error = wf_error_set(WF_EOS, "no hook template '%s'", path);
	if (error < 0)
		goto out;
	if (!ours(text)) {
		error = wf_error_set(WF_EINPUT, "'%s' is not a wf hook "
		    "template: it lacks the line '%s'", path, WF_HOOKS_MARKER);
		goto out;
	}
	line = strncmp(text, "WF_BIN=\n", 8) == 0 ? text :
	    strstr(text, "\nWF_BIN=\n");
	if (!bin_dir || !line) {
		*out = text;
		text = NULL;
		goto out;
	}
	if (line != text)
		line++;
	/* Each ' becomes '\'' (3 more bytes); two quotes around. */
	for (extra = 2, s = bin_dir; *s; s++)
		extra += *s == '\'' ? 4 : 1;
	if (!(r = malloc(strlen(text) + extra + 1))) {
		error = wf_error_oom();
		goto out;
	}
	o = r;
	memcpy(o, text, (size_t)(line - text) + 7);
	o += (line - text) + 7;
	*o++ = '\'';
	for (s = bin_dir; *s; s++) {
		if (*s == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *s;
		}
	}
	*o++ = '\'';
	strcpy(o, line + 7);
	*out = r;
out:
	free(text);
	free(path);
	return error;
}

/* Write `text` to `path` whole, mode 0755, by renaming a temporary. */
static int
write_hook(const char *path, const char *text)
{
	char *tmp = malloc(strlen(path) + 16);
	size_t len = strlen(text);
	int fd = -1, error = 0;

	if (!tmp)
		return wf_error_oom();
	sprintf(tmp, "%s.wf-XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot create a file beside "
		    "'%s'", path);
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, 0755) < 0 ||
	    close(fd) < 0) {
		fd = -1;
		error = wf_error_set_errno(WF_EOS, "cannot write '%s'", tmp);
		unlink(tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot rename '%s' to '%s'",
		    tmp, path);
		unlink(tmp);
	}
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	return error;
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int
mkdirs(const char *dir)
{
	char *p = strdup(dir), *s;
	int error = 0;

	if (!p)
		return wf_error_oom();
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		if (*s == '/' && s[-1] == '/')
			continue;
		{
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0777) < 0 && errno != EEXIST) {
				error = wf_error_set_errno(WF_EOS, "cannot "
				    "create '%s'", p);
				break;
			}
			*s = c;
		}
		if (*s == '\0')
			break;
	}
	free(p);
	return error;
}

static int
item(json_t *arr, const char *hook, const char *path, const char *state,
    const char *chained)
{
	json_t *v = json_pack("{s:s, s:s, s:s, s:s?}", "hook", hook, "path",
	    path, "state", state, "chained", chained);

	if (!v || json_array_append_new(arr, v) < 0)
		return wf_error_oom();
	return 0;
}

/* What is at one hook's place. */
struct place {
	const char *name;
	char *path, *chained;
	char *text;		/* the file there, or NULL */
	int present, mine, has_chained;
};

static void
place_release(struct place *p)
{
	free(p->path);
	free(p->chained);
	free(p->text);
	memset(p, 0, sizeof(*p));
}

static int
look(struct place *p, const char *dir, const char *name)
{
	int error;

	memset(p, 0, sizeof(*p));
	p->name = name;
	if (!(p->path = join(dir, name, "")) ||
	    !(p->chained = join(dir, name, CHAINED)))
		return wf_error_oom();
	p->present = exists(p->path);
	p->has_chained = exists(p->chained);
	if (!p->present)
		return 0;
	error = slurp(&p->text, p->path);
	if (error == WF_ENOTFOUND) {
		/* A dangling symbolic link: a foreign hook all the same. */
		wf_error_clear();
		return 0;
	}
	if (error < 0)
		return error;
	p->mine = ours(p->text);
	return 0;
}

/* Whether receive.procReceiveRefs holds refs/for already. */
static int
has_for_refs(int *out, git_config *cfg)
{
	git_config_iterator *it = NULL;
	git_config_entry *e;
	int error;

	*out = 0;
	if (git_config_multivar_iterator_new(&it, cfg,
	    "receive.procReceiveRefs", NULL) < 0)
		return wf_error_set_git(WF_EOS, "cannot read "
		    "receive.procReceiveRefs");
	while ((error = git_config_next(&e, it)) == 0)
		if (e->value && strcmp(e->value, PROC_RECEIVE_REFS) == 0)
			*out = 1;
	git_config_iterator_free(it);
	if (error != GIT_ITEROVER)
		return wf_error_set_git(WF_EOS, "cannot read "
		    "receive.procReceiveRefs");
	return 0;
}

/*
 * The configuration the server hooks need: push options advertised
 * (-o wf.wait), and refs/for/ left to proc-receive.
 */
static int
set_server_config(git_repository *repo)
{
	git_config *cfg = NULL;
	int v = 0, has, error = 0;

	if (git_repository_config(&cfg, repo) < 0)
		return wf_error_set_git(WF_EOS, "cannot read the configuration");
	if ((git_config_get_bool(&v, cfg, "receive.advertisePushOptions") < 0 ||
	    !v) && git_config_set_bool(cfg, "receive.advertisePushOptions",
	    1) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot set "
		    "receive.advertisePushOptions");
		goto out;
	}
	git_error_clear();
	if ((error = has_for_refs(&has, cfg)) < 0)
		goto out;
	if (!has && git_config_set_multivar(cfg, "receive.procReceiveRefs",
	    "^$", PROC_RECEIVE_REFS) < 0)
		error = wf_error_set_git(WF_EOS, "cannot set "
		    "receive.procReceiveRefs");
out:
	git_error_clear();
	git_config_free(cfg);
	return error;
}

/* Take out what set_server_config() put in for proc-receive. */
static int
unset_server_config(git_repository *repo)
{
	git_config *cfg = NULL;
	int error = 0, rc;

	if (git_repository_config(&cfg, repo) < 0)
		return wf_error_set_git(WF_EOS, "cannot read the configuration");
	rc = git_config_delete_multivar(cfg, "receive.procReceiveRefs",
	    "^refs/for$");
	if (rc < 0 && rc != GIT_ENOTFOUND)
		error = wf_error_set_git(WF_EOS, "cannot unset "
		    "receive.procReceiveRefs");
	git_error_clear();
	git_config_free(cfg);
	return error;
}

int
wf_hooks_git_check(const unsigned version[3])
{
	if (version[0] > PROC_RECEIVE_MAJOR || (version[0] ==
	    PROC_RECEIVE_MAJOR && version[1] >= PROC_RECEIVE_MINOR))
		return 0;
	return wf_error_set(WF_EOS, "git %u.%u.%u is too old for the server "
	    "hooks: they need its proc-receive hook, git %d.%d or later",
	    version[0], version[1], version[2], PROC_RECEIVE_MAJOR,
	    PROC_RECEIVE_MINOR);
}

/* Take wf's hook out of place `p`, putting the chained one back. */
static int
take_out(const char **state, struct place *p, int *restored)
{
	*restored = 0;
	*state = "absent";
	if (p->present && !p->mine) {
		*state = "foreign";
		return 0;
	}
	if (p->present) {
		if (unlink(p->path) < 0)
			return wf_error_set_errno(WF_EOS, "cannot remove '%s'",
			    p->path);
		*state = "removed";
	}
	if (p->has_chained) {
		if (rename(p->chained, p->path) < 0)
			return wf_error_set_errno(WF_EOS, "cannot rename '%s'",
			    p->chained);
		*state = "restored";
		*restored = 1;
	}
	return 0;
}

int
wf_hooks_install(json_t **out, git_repository *repo,
    const struct wf_hooks_opts *opts)
{
	struct place p[NHOOKS];
	char *dir = NULL, *text[NHOOKS];
	json_t *res = NULL;
	unsigned which = opts && opts->which ? opts->which : WF_HOOKS_ALL;
	unsigned version[3];
	size_t i;
	int error, restored;

	if (out)
		*out = NULL;
	memset(p, 0, sizeof(p));
	memset(text, 0, sizeof(text));
	if (!opts || !opts->templates)
		return wf_error_set(WF_ERROR, "no hook templates given");
	if ((which & WF_HOOKS_SERVER) && ((error = wf_git_version(version)) < 0 ||
	    (error = wf_hooks_git_check(version)) < 0))
		return error;
	if (!(res = json_array()))
		return wf_error_oom();
	if ((error = wf_hooks_dir(&dir, repo)) < 0)
		goto out;
	/* Look at everything first: refuse before changing anything. */
	for (i = 0; hooks[i].name; i++) {
		if (!(hooks[i].which & which))
			continue;
		if ((!(hooks[i].flags & RETIRED) && (error = render(&text[i],
		    opts->templates, hooks[i].name, opts->bin_dir)) < 0) ||
		    (error = look(&p[i], dir, hooks[i].name)) < 0)
			goto out;
		if (hooks[i].flags & RETIRED)
			continue;
		if (p[i].present && !p[i].mine &&
		    (hooks[i].flags & NO_CHAIN)) {
			error = wf_error_set(WF_ECONFLICT, "'%s' is not wf's "
			    "hook, and a %s hook cannot be chained: it "
			    "answers git for the refs it is given, and only "
			    "one can; move it away", p[i].path, hooks[i].name);
			goto out;
		}
		if (p[i].present && !p[i].mine && p[i].has_chained) {
			error = wf_error_set(WF_ECONFLICT, "'%s' is not wf's "
			    "hook, and '%s' is there too: move one of them "
			    "away", p[i].path, p[i].chained);
			goto out;
		}
	}
	if ((error = mkdirs(dir)) < 0)
		goto out;
	for (i = 0; hooks[i].name; i++) {
		const char *state;

		if (!(hooks[i].which & which))
			continue;
		if (hooks[i].flags & RETIRED) {
			/* An older wf's hook goes; anyone else's stays. */
			if (!p[i].mine)
				continue;
			if ((error = take_out(&state, &p[i], &restored)) < 0 ||
			    (error = item(res, hooks[i].name, p[i].path, state,
			    NULL)) < 0)
				goto out;
			continue;
		}
		if (p[i].mine && strcmp(p[i].text, text[i]) == 0) {
			state = "unchanged";
		} else {
			state = p[i].mine ? "updated" : "installed";
			if (p[i].present && !p[i].mine) {
				if (rename(p[i].path, p[i].chained) < 0) {
					error = wf_error_set_errno(WF_EOS,
					    "cannot rename '%s'", p[i].path);
					goto out;
				}
				p[i].has_chained = 1;
			}
			if ((error = write_hook(p[i].path, text[i])) < 0)
				goto out;
		}
		if ((error = item(res, hooks[i].name, p[i].path, state,
		    p[i].has_chained ? p[i].chained : NULL)) < 0)
			goto out;
	}
	if ((which & WF_HOOKS_SERVER) && (error = set_server_config(repo)) < 0)
		goto out;
	if (out) {
		*out = res;
		res = NULL;
	}
	error = 0;
out:
	for (i = 0; i < NHOOKS; i++) {
		place_release(&p[i]);
		free(text[i]);
	}
	free(dir);
	json_decref(res);
	return error;
}

int
wf_hooks_uninstall(json_t **out, git_repository *repo, unsigned which)
{
	struct place p;
	char *dir = NULL;
	json_t *res = NULL;
	size_t i;
	int error, restored;

	if (out)
		*out = NULL;
	memset(&p, 0, sizeof(p));
	if (!which)
		which = WF_HOOKS_ALL;
	if (!(res = json_array()))
		return wf_error_oom();
	if ((error = wf_hooks_dir(&dir, repo)) < 0)
		goto out;
	for (i = 0; hooks[i].name; i++) {
		const char *state;

		if (!(hooks[i].which & which))
			continue;
		if ((error = look(&p, dir, hooks[i].name)) < 0)
			goto out;
		/* A retired hook is news only when it was wf's. */
		if ((hooks[i].flags & RETIRED) && !p.mine) {
			place_release(&p);
			continue;
		}
		if ((error = take_out(&state, &p, &restored)) < 0 ||
		    (error = item(res, hooks[i].name, p.path, state,
		    p.has_chained && !restored ? p.chained : NULL)) < 0)
			goto out;
		place_release(&p);
	}
	if ((which & WF_HOOKS_SERVER) && (error = unset_server_config(repo)) < 0)
		goto out;
	if (out) {
		*out = res;
		res = NULL;
	}
	error = 0;
out:
	place_release(&p);
	free(dir);
	json_decref(res);
	return error;
}

int
wf_hooks_status(json_t **out, git_repository *repo,
    const struct wf_hooks_opts *opts)
{
	struct place p;
	char *dir = NULL, *text = NULL;
	json_t *res = NULL;
	unsigned which = opts && opts->which ? opts->which : WF_HOOKS_ALL;
	size_t i;
	int error;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	if (!(res = json_array()))
		return wf_error_oom();
	if ((error = wf_hooks_dir(&dir, repo)) < 0)
		goto out;
	for (i = 0; hooks[i].name; i++) {
		const char *state = "absent";

		if (!(hooks[i].which & which))
			continue;
		if ((error = look(&p, dir, hooks[i].name)) < 0)
			goto out;
		if (hooks[i].flags & RETIRED) {
			/* An older wf's: install takes it out. */
			if (p.mine && (error = item(res, hooks[i].name, p.path,
			    "outdated", p.has_chained ? p.chained : NULL)) < 0)
				goto out;
			place_release(&p);
			continue;
		}
		if (p.present && !p.mine) {
			state = "foreign";
		} else if (p.present) {
			state = "installed";
			if (opts && opts->templates) {
				if ((error = render(&text, opts->templates,
				    hooks[i].name, opts->bin_dir)) < 0)
					goto out;
				if (strcmp(text, p.text) != 0)
					state = "outdated";
				free(text);
				text = NULL;
			}
		}
		if ((error = item(res, hooks[i].name, p.path, state,
		    p.has_chained ? p.chained : NULL)) < 0)
			goto out;
		place_release(&p);
	}
	*out = res;
	res = NULL;
	error = 0;
out:
	place_release(&p);
	free(text);
	free(dir);
	json_decref(res);
	return error;
}
