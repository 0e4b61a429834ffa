#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/path.h>

#include "error.h"
#include "guard.h"
#include "map.h"
#include "path.h"
#include "str.h"
#include "treediff.h"

/* Linux follows at most 40 links in one lookup (ELOOP after). */
#define MAX_HOPS 40

/* The longest link target read; symlink(2) refuses longer ones. */
#define MAX_TARGET 4095

/* The symbolic links of a tree: path -> target. */
struct links {
	struct wf_map map;	/* path -> index */
	char **path;
	char **target;		/* NULL: more than MAX_TARGET bytes or a NUL */
	size_t n, cap;
	git_repository *repo;
	int error;
};

static void
links_free(struct links *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->path[i]);
		free(l->target[i]);
	}
	free(l->path);
	free(l->target);
	wf_map_release(&l->map);
	memset(l, 0, sizeof(*l));
}

/* The target of the link blob `id`: *out malloc'ed, NULL when unusable. */
static int
read_target(char **out, git_repository *repo, const git_oid *id)
{
	git_blob *blob = NULL;
	size_t len;

	*out = NULL;
	if (git_blob_lookup(&blob, repo, id) < 0)
		return wf_error_set_git(WF_EOS, "cannot read link %s",
		    git_oid_tostr_s(id));
	len = (size_t)git_blob_rawsize(blob);
	if (len <= MAX_TARGET && !memchr(git_blob_rawcontent(blob), '\0',
	    len)) {
		if (!(*out = malloc(len + 1))) {
			git_blob_free(blob);
			return wf_error_oom();
		}
		memcpy(*out, git_blob_rawcontent(blob), len);
		(*out)[len] = '\0';
	}
	git_blob_free(blob);
	return 0;
}

static int
collect(const char *root, const git_tree_entry *e, void *payload)
{
	struct links *l = payload;
	char *path, *target;
	size_t k;

	if (git_tree_entry_filemode(e) != GIT_FILEMODE_LINK)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **p = realloc(l->path, cap * sizeof(*p)), **t;

		if (p)
			l->path = p;
		if (!p || !(t = realloc(l->target, cap * sizeof(*t)))) {
			l->error = wf_error_oom();
			return -1;
		}
		l->target = t;
		l->cap = cap;
	}
	if (!(path = wf_str_printf("%s%s", root, git_tree_entry_name(e)))) {
		l->error = wf_error_oom();
		return -1;
	}
	if ((l->error = read_target(&target, l->repo,
	    git_tree_entry_id(e))) < 0) {
		free(path);
		return -1;
	}
	l->path[l->n] = path;
	l->target[l->n] = target;
	if ((l->error = wf_map_put(&k, &l->map, path, l->n)) < 0) {
		free(path);
		free(target);
		return -1;
	}
	l->n++;
	return 0;
}

/* Every link of the tree `id` (NULL: none). */
static int
links_of(struct links *l, git_repository *repo, const git_oid *id)
{
	git_tree *tree = NULL;

	memset(l, 0, sizeof(*l));
	l->repo = repo;
	if (!id)
		return 0;
	if (git_tree_lookup(&tree, repo, id) < 0)
		return wf_error_set_git(WF_EOS, "cannot read tree %s",
		    git_oid_tostr_s(id));
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, collect, l) < 0 &&
	    l->error == 0)
		l->error = wf_error_set_git(WF_EOS, "cannot read tree %s",
		    git_oid_tostr_s(id));
	git_tree_free(tree);
	return l->error;
}

static const char *
target_of(const struct links *l, const char *path, int *found)
{
	size_t k;

	*found = wf_map_get(&k, &l->map, path) == 0;
	return *found ? l->target[k] : NULL;
}

/* Put `s` followed by the text `rest` (if any) into *buf. */
static int
prepend(char **buf, size_t *cap, const char *s, const char *rest)
{
	size_t a = strlen(s), b = rest ? strlen(rest) : 0;
	char *n;

	if (a + b + 2 > *cap) {
		size_t c = 2 * (a + b + 2);

		if (!(n = malloc(c)))
			return wf_error_oom();
		memcpy(n, s, a);
		n[a] = '/';
		memcpy(n + a + 1, rest ? rest : "", b + 1);
		free(*buf);
		*buf = n;
		*cap = c;
		return 0;
	}
	memmove(*buf + a + 1, rest ? rest : "", b + 1);
	memcpy(*buf, s, a);
	(*buf)[a] = '/';
	return 0;
}

/*
 * Resolve the link `link` of `l` as the kernel would look it up in a
 * checkout of the tree: *problem is NULL when it stays inside and out
 * of ".git", else the reason.
 */
static int
resolve(const char **problem, const struct links *l, const char *link,
    const char *target)
{
	char cur[WF_PATH_MAX + WF_PATH_MAX_NAME + 2], *rest = NULL, *r;
	size_t cap = 0, len;
	const char *slash;
	int hops = 0, error = 0, found;

	*problem = NULL;
	if (!target)
		return (*problem = "link target too long or holding a NUL"), 0;
	if (*target == '\0')
		return (*problem = "empty link target"), 0;
	if (*target == '/')
		return (*problem = "absolute link target"), 0;
	slash = strrchr(link, '/');
	len = slash ? (size_t)(slash - link) : 0;
	if (len >= sizeof(cur))
		return (*problem = "path too long"), 0;
	memcpy(cur, link, len);
	cur[len] = '\0';
	if ((error = prepend(&rest, &cap, target, NULL)) < 0)
		return error;
	r = rest;
	while (*r) {
		size_t n = strcspn(r, "/");
		char comp[WF_PATH_MAX_NAME + 1];
		const char *t;

		if (n > WF_PATH_MAX_NAME) {
			*problem = "link target has a name too long";
			goto out;
		}
		memcpy(comp, r, n);
		comp[n] = '\0';
		r += n;
		if (*r == '/')
			r++;
		if (n == 0 || strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *up;

			if (len == 0) {
				*problem = "link leaves the repository";
				goto out;
			}
			up = strrchr(cur, '/');
			len = up ? (size_t)(up - cur) : 0;
			cur[len] = '\0';
			continue;
		}
		if (wf_path_problem(comp)) {
			*problem = "link points into '.git' or at a name git "
			    "refuses";
			goto out;
		}
		if (len + 1 + n >= sizeof(cur)) {
			*problem = "link resolves to a path too long";
			goto out;
		}
		if (len)
			cur[len++] = '/';
		memcpy(cur + len, comp, n + 1);
		len += n;
		t = target_of(l, cur, &found);
		if (!found)
			continue;
		if (++hops > MAX_HOPS) {
			*problem = "too many levels of symbolic links";
			goto out;
		}
		if (!t || *t == '\0' || *t == '/') {
			*problem = "link goes through an absolute, empty or "
			    "unreadable link";
			goto out;
		}
		/* The link is replaced by its target, from its directory. */
		{
			char *up = strrchr(cur, '/');
			char *copy = strdup(r);

			if (!copy) {
				error = wf_error_oom();
				goto out;
			}
			len = up ? (size_t)(up - cur) : 0;
			cur[len] = '\0';
			error = prepend(&rest, &cap, t, *copy ? copy : NULL);
			free(copy);
			if (error < 0)
				goto out;
			r = rest;
		}
	}
out:
	free(rest);
	return error;
}

/*
 * git fsck's rules for a .gitmodules blob (its gitmodulesName,
 * gitmodulesUrl, gitmodulesPath, gitmodulesUpdate and gitmodulesParse
 * checks), read with libgit2's configuration parser.
 */
struct gm {
	char *why;
};

static int
bad_name(const char *name, size_t n)
{
	const char *c = name, *end = name + n;

	if (n == 0)
		return 1;
	while (c < end) {
		size_t k = 0;

		while (c + k < end && c[k] != '/' && c[k] != '\\')
			k++;
		if (k == 2 && c[0] == '.' && c[1] == '.')
			return 1;
		c += k + (c + k < end);
	}
	return 0;
}

static int
gm_entry(const git_config_entry *e, void *payload)
{
	struct gm *g = payload;
	const char *name = e->name + strlen("submodule."), *dot;
	const char *v = e->value ? e->value : "";

	if (!(dot = strrchr(name, '.')) || dot == name)
		return 0;
	if (bad_name(name, (size_t)(dot - name)))
		g->why = wf_str_printf("submodule name '%.*s' is one git "
		    "refuses", (int)(dot - name), name);
	else if ((strcmp(dot, ".url") == 0 || strcmp(dot, ".path") == 0) &&
	    (*v == '-' || strchr(v, '\n')))
		g->why = wf_str_printf("submodule '%.*s': %s '%s' looks like "
		    "an option", (int)(dot - name), name, dot + 1, v);
	else if (strcmp(dot, ".update") == 0 && *v == '!')
		g->why = wf_str_printf("submodule '%.*s': update runs a "
		    "command", (int)(dot - name), name);
	else
		return 0;
	return g->why ? GIT_EUSER : wf_error_oom();
}

/* Does the text hold a line opening an [include] or [includeIf] section? */
static int
has_include(const char *s, size_t n)
{
	const char *end = s + n;

	while (s < end) {
		const char *eol = memchr(s, '\n', (size_t)(end - s));

		if (!eol)
			eol = end;
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;
		if (s < eol && *s == '[') {
			s++;
			while (s < eol && (*s == ' ' || *s == '\t'))
				s++;
			if (eol - s >= 7 && strncasecmp(s, "include", 7) == 0)
				return 1;
		}
		s = eol + 1;
	}
	return 0;
}

static int
check_gitmodules(char **why, git_repository *repo, const char *path,
    const git_oid *id)
{
	char tmpl[4096];
	const char *dir = getenv("TMPDIR");
	git_blob *blob = NULL;
	git_config *cfg = NULL;
	struct gm g = { NULL };
	int fd = -1, error = 0, r;
	size_t len;

	if (git_blob_lookup(&blob, repo, id) < 0)
		return wf_error_set_git(WF_EOS, "cannot read '%s'", path);
	snprintf(tmpl, sizeof(tmpl), "%s/wf-gitmodules.XXXXXX",
	    dir && *dir ? dir : "/tmp");
	if ((fd = mkstemp(tmpl)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot create '%s'", tmpl);
		goto out;
	}
	len = (size_t)git_blob_rawsize(blob);
	/* libgit2 would follow an include; git never reads one here. */
	if (has_include(git_blob_rawcontent(blob), len)) {
		*why = wf_str_printf("'%s': an include section, which git "
		    "does not read in this file", path);
		error = *why ? 1 : wf_error_oom();
		goto out;
	}
	if (write(fd, git_blob_rawcontent(blob), len) != (ssize_t)len) {
		error = wf_error_set_errno(WF_EOS, "cannot write '%s'", tmpl);
		goto out;
	}
	if (git_config_open_ondisk(&cfg, tmpl) < 0) {
		*why = wf_str_printf("'%s': not git configuration text: %s",
		    path, git_error_last() ? git_error_last()->message : "");
		error = *why ? 1 : wf_error_oom();
		goto out;
	}
	r = git_config_foreach_match(cfg, "^submodule\\.", gm_entry, &g);
	if (g.why) {
		*why = wf_str_printf("'%s': %s", path, g.why);
		error = *why ? 1 : wf_error_oom();
	} else if (r < 0) {
		error = r == WF_ENOMEM ? r : wf_error_set_git(WF_EOS,
		    "cannot read '%s'", path);
	}
out:
	free(g.why);
	git_config_free(cfg);
	if (fd >= 0) {
		close(fd);
		unlink(tmpl);
	}
	git_blob_free(blob);
	return error;
}

static int
refuse(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
refuse(char **why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*why = wf_str_vprintf(fmt, ap);
	va_end(ap);
	return *why ? 1 : wf_error_oom();
}

/* Check the links of `now`, as the change left them. */
static int
check_links(char **why, git_repository *repo, const git_oid *old_tree,
    const git_oid *new_tree)
{
	struct links now, before;
	const char *problem, *was;
	size_t i;
	int error, found, before_read = 0;

	memset(&before, 0, sizeof(before));
	if ((error = links_of(&now, repo, new_tree)) < 0)
		goto out;
	for (i = 0; i < now.n; i++) {
		if ((error = resolve(&problem, &now, now.path[i],
		    now.target[i])) < 0)
			goto out;
		if (!problem)
			continue;
		/* What was there before, the same way, is not new. */
		if (!before_read && (error = links_of(&before, repo,
		    old_tree)) < 0)
			goto out;
		before_read = 1;
		was = target_of(&before, now.path[i], &found);
		if (found && was && now.target[i] &&
		    strcmp(was, now.target[i]) == 0) {
			const char *old_problem;

			if ((error = resolve(&old_problem, &before,
			    now.path[i], was)) < 0)
				goto out;
			if (old_problem)
				continue;
		}
		error = refuse(why, "symbolic link '%s' -> '%s': %s",
		    now.path[i], now.target[i] ? now.target[i] : "?", problem);
		goto out;
	}
	error = 0;
out:
	links_free(&now);
	links_free(&before);
	return error;
}

/* What the walk over the changed entries found. */
struct seen {
	git_repository *repo;
	char **why;
	int links;		/* a link added, changed or removed */
	int error;
};

static int
changed(const struct wf_treediff_entry *e, void *payload)
{
	struct seen *s = payload;
	const char *problem, *base;

	if (e->old_mode == GIT_FILEMODE_LINK ||
	    e->new_mode == GIT_FILEMODE_LINK)
		s->links = 1;
	if (e->new_mode == 0)
		return 0;
	/* A new name, or a name that takes a new kind, is checked. */
	if (e->old_mode != e->new_mode &&
	    (problem = wf_path_problem_mode(e->path, e->new_mode))) {
		char *text = wf_str_path_text(e->path);

		s->error = text ? refuse(s->why, "path '%.256s%s': %s", text,
		    strlen(text) > 256 ? "..." : "", problem) : wf_error_oom();
		free(text);
		return 1;
	}
	base = strrchr(e->path, '/');
	base = base ? base + 1 : e->path;
	if ((e->new_mode == GIT_FILEMODE_BLOB ||
	    e->new_mode == GIT_FILEMODE_BLOB_EXECUTABLE) &&
	    git_path_is_gitfile(base, strlen(base),
	    GIT_PATH_GITFILE_GITMODULES, GIT_PATH_FS_GENERIC) &&
	    (s->error = check_gitmodules(s->why, s->repo, e->path,
	    e->new_id)) != 0)
		return 1;
	return 0;
}

int
wf_guard_tree(char **why, git_repository *repo, const git_oid *old_tree,
    const git_oid *new_tree)
{
	struct seen s = { repo, why, 0, 0 };
	int error;

	*why = NULL;
	if (old_tree && git_oid_equal(old_tree, new_tree))
		return 0;
	error = wf_treediff(repo, old_tree, new_tree, 1, changed, &s);
	if (error == 1)
		return s.error;
	if (error < 0)
		return error;
	return s.links ? check_links(why, repo, old_tree, new_tree) : 0;
}
