#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "map.h"
#include "path.h"
#include "sandbox.h"

extern char **environ;

struct wf_sandbox {
	char *root;		/* realpath of the mkdtemp directory */
	char *work;		/* root/work */
	char *tmp;		/* root/tmp */
	git_repository *repo;	/* borrowed */
	git_oid commit;
	git_oid tree;
	char **env;		/* sorted "NAME=value", NULL-terminated */
	size_t nenv;
	int keep;
};

/* Names passed from the caller's environment to every sandbox. */
static const char *const allowlist[] = { "PATH", "HOME", "USER", "LOGNAME",
	"SHELL", "LANG", "LANGUAGE", "TZ", "TERM", NULL };

static int
env_name_valid(const char *n, size_t len)
{
	size_t i;

	if (len == 0 || !(isalpha((unsigned char)n[0]) || n[0] == '_'))
		return 0;
	for (i = 1; i < len; i++)
		if (!(isalnum((unsigned char)n[i]) || n[i] == '_'))
			return 0;
	return 1;
}

/* The index of `name` (len bytes) in the sorted env, or where it goes. */
static size_t
env_find(const struct wf_sandbox *sb, const char *name, size_t len, int *found)
{
	size_t lo = 0, hi = sb->nenv;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *e = sb->env[mid];
		size_t el = strcspn(e, "=");
		int c = memcmp(e, name, el < len ? el : len);

		if (c == 0)
			c = el < len ? -1 : el > len;
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
wf_sandbox_setenv(struct wf_sandbox *sb, const char *name, const char *value)
{
	size_t len = strlen(name), i;
	char *s, **env;
	int found;

	if (!env_name_valid(name, len))
		return wf_error_set(WF_EINPUT, "invalid environment variable "
		    "name '%s'", name);
	i = env_find(sb, name, len, &found);
	if (!value) {
		if (found) {
			free(sb->env[i]);
			memmove(&sb->env[i], &sb->env[i + 1],
			    (sb->nenv - i) * sizeof(*sb->env));
			sb->nenv--;
		}
		return 0;
	}
	if (!(s = malloc(len + strlen(value) + 2)))
		return wf_error_oom();
	sprintf(s, "%s=%s", name, value);
	if (found) {
		free(sb->env[i]);
		sb->env[i] = s;
		return 0;
	}
	if (!(env = realloc(sb->env, (sb->nenv + 2) * sizeof(*env)))) {
		free(s);
		return wf_error_oom();
	}
	sb->env = env;
	memmove(&env[i + 1], &env[i], (sb->nenv + 1 - i) * sizeof(*env));
	env[i] = s;
	sb->nenv++;
	return 0;
}

char *const *
wf_sandbox_environ(const struct wf_sandbox *sb)
{
	return sb->env;
}

const char *
wf_sandbox_getenv(const struct wf_sandbox *sb, const char *name)
{
	size_t i, len = strlen(name);
	int found;

	i = env_find(sb, name, len, &found);
	return found ? sb->env[i] + len + 1 : NULL;
}

static int
passed(const char *entry, const char *const *extra)
{
	size_t i, len = strcspn(entry, "=");

	if (len > 3 && strncmp(entry, "LC_", 3) == 0)
		return 1;
	for (i = 0; allowlist[i]; i++)
		if (strlen(allowlist[i]) == len &&
		    strncmp(entry, allowlist[i], len) == 0)
			return 1;
	for (i = 0; extra && extra[i]; i++)
		if (strlen(extra[i]) == len && strncmp(entry, extra[i], len) == 0)
			return 1;
	return 0;
}

static int
env_init(struct wf_sandbox *sb, const char *const *extra)
{
	char **e;
	int error;

	if (!(sb->env = calloc(1, sizeof(*sb->env))))
		return wf_error_oom();
	for (e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char name[256];

		if (!eq || (size_t)(eq - *e) >= sizeof(name) ||
		    !passed(*e, extra) || !env_name_valid(*e,
		    (size_t)(eq - *e)))
			continue;
		memcpy(name, *e, (size_t)(eq - *e));
		name[eq - *e] = '\0';
		if ((error = wf_sandbox_setenv(sb, name, eq + 1)) < 0)
			return error;
	}
	if ((error = wf_sandbox_setenv(sb, "TMPDIR", sb->tmp)) < 0 ||
	    (error = wf_sandbox_setenv(sb, "WF_SANDBOX", sb->work)) < 0)
		return error;
	return 0;
}

static char *
join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s/%s", a, b);
	return s;
}

/* Remove `path` and everything below it, making directories writable. */
static void
rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	chmod(path, 0700);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			char *sub;

			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			if ((sub = join(path, de->d_name))) {
				rm_rf(sub);
				free(sub);
			}
		}
		closedir(d);
	}
	rmdir(path);
}

void
wf_sandbox_free(struct wf_sandbox *sb)
{
	size_t i;

	if (!sb)
		return;
	if (sb->root && !sb->keep)
		rm_rf(sb->root);
	for (i = 0; i < sb->nenv; i++)
		free(sb->env[i]);
	free(sb->env);
	free(sb->root);
	free(sb->work);
	free(sb->tmp);
	free(sb);
}

static int
checkout(struct wf_sandbox *sb, const git_oid *commit_id)
{
	git_checkout_options co;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	int error = 0;

	git_oid_tostr(hex, sizeof(hex), commit_id);
	if (git_commit_lookup(&commit, sb->repo, commit_id) < 0) {
		error = wf_error_set_git(WF_EINPUT, "commit '%s' is not in the "
		    "repository", hex);
		goto out;
	}
	if (git_commit_tree(&tree, commit) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the tree of '%s'",
		    hex);
		goto out;
	}
	sb->commit = *commit_id;
	sb->tree = *git_tree_id(tree);
	/*
	 * Everything is written afresh, byte for byte as stored (so
	 * collecting compares blob ids); the repository's index stays.
	 */
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.disable_filters = 1;
	co.checkout_strategy = GIT_CHECKOUT_FORCE |
	    GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = sb->work;
	if (git_checkout_tree(sb->repo, (const git_object *)tree, &co) < 0)
		error = wf_error_set_git(WF_EOS, "cannot check out '%s' into "
		    "'%s'", hex, sb->work);
out:
	git_tree_free(tree);
	git_commit_free(commit);
	return error;
}

int
wf_sandbox_new(struct wf_sandbox **out, git_repository *repo,
    const git_oid *commit, const struct wf_sandbox_opts *opts)
{
	static const struct wf_sandbox_opts defaults = WF_SANDBOX_OPTS_INIT;
	struct wf_sandbox *sb;
	const char *parent;
	char *tmpl = NULL, resolved[PATH_MAX];
	int error;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	parent = opts->parent;
	if (!parent || !*parent)
		parent = getenv("TMPDIR");
	if (!parent || !*parent)
		parent = "/tmp";
	if (!(sb = calloc(1, sizeof(*sb))))
		return wf_error_oom();
	sb->repo = repo;
	if (!(tmpl = join(parent, "wf-run.XXXXXX"))) {
		error = wf_error_oom();
		goto out;
	}
	if (!mkdtemp(tmpl)) {
		error = wf_error_set_errno(WF_EOS, "cannot create a sandbox "
		    "in '%s'", parent);
		goto out;
	}
	if (!realpath(tmpl, resolved)) {
		error = wf_error_set_errno(WF_EOS, "cannot resolve '%s'", tmpl);
		rmdir(tmpl);
		goto out;
	}
	if (!(sb->root = strdup(resolved)) ||
	    !(sb->work = join(resolved, "work")) ||
	    !(sb->tmp = join(resolved, "tmp"))) {
		error = wf_error_oom();
		rmdir(tmpl);
		goto out;
	}
	if (mkdir(sb->work, 0777) < 0 || mkdir(sb->tmp, 0777) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot create '%s'",
		    sb->work);
		goto out;
	}
	if ((error = env_init(sb, opts->env)) < 0 ||
	    (error = checkout(sb, commit)) < 0)
		goto out;
	sb->keep = opts->keep;
	*out = sb;
	sb = NULL;
out:
	free(tmpl);
	wf_sandbox_free(sb);
	return error;
}

const char *
wf_sandbox_dir(const struct wf_sandbox *sb)
{
	return sb->work;
}

const char *
wf_sandbox_root(const struct wf_sandbox *sb)
{
	return sb->root;
}

const git_oid *
wf_sandbox_commit(const struct wf_sandbox *sb)
{
	return &sb->commit;
}

const git_oid *
wf_sandbox_tree(const struct wf_sandbox *sb)
{
	return &sb->tree;
}

int
wf_sandbox_path(char **out, struct wf_sandbox *sb, const char *path,
    int mkdirs)
{
	const char *problem = wf_path_problem(path);
	char *full = NULL, *p;
	struct stat st;
	int error = 0;

	*out = NULL;
	if (problem)
		return wf_error_set(WF_EINPUT, "'%s': %s", path, problem);
	if (!(full = join(sb->work, path)))
		return wf_error_oom();
	/* Every directory on the way: real, not a link. */
	for (p = full + strlen(sb->work) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (lstat(full, &st) < 0) {
			if (errno != ENOENT || !mkdirs) {
				*p = '/';
				if (errno == ENOENT)
					break;
				error = wf_error_set_errno(WF_EOS, "cannot "
				    "look at '%s'", path);
				goto out;
			}
			if (mkdir(full, 0777) < 0) {
				error = wf_error_set_errno(WF_EOS, "cannot "
				    "create a directory for '%s'", path);
				*p = '/';
				goto out;
			}
		} else if (S_ISLNK(st.st_mode)) {
			error = wf_error_set(WF_EINPUT, "'%s': leads through "
			    "the symbolic link '%s'", path,
			    full + strlen(sb->work) + 1);
			*p = '/';
			goto out;
		} else if (!S_ISDIR(st.st_mode)) {
			error = wf_error_set(WF_EINPUT, "'%s': '%s' is not a "
			    "directory", path, full + strlen(sb->work) + 1);
			*p = '/';
			goto out;
		}
		*p = '/';
	}
	*out = full;
	full = NULL;
out:
	free(full);
	return error;
}

int
wf_sandbox_read(char **out, size_t *len, struct wf_sandbox *sb,
    const char *path)
{
	char *full = NULL, *buf = NULL, *b;
	size_t n = 0, cap = 0;
	struct stat st;
	ssize_t got;
	int error, fd = -1;

	*out = NULL;
	*len = 0;
	if ((error = wf_sandbox_path(&full, sb, path, 0)) < 0)
		return error;
	if (lstat(full, &st) < 0) {
		error = errno == ENOENT || errno == ENOTDIR ?
		    wf_error_set(WF_ENOTFOUND, "'%s' does not exist", path) :
		    wf_error_set_errno(WF_EOS, "cannot look at '%s'", path);
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		if (!(buf = malloc(PATH_MAX + 1))) {
			error = wf_error_oom();
			goto out;
		}
		if ((got = readlink(full, buf, PATH_MAX)) < 0) {
			error = wf_error_set_errno(WF_EOS, "cannot read '%s'",
			    path);
			goto out;
		}
		n = (size_t)got;
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		error = wf_error_set(WF_EINPUT, "'%s' is not a file", path);
		goto out;
	}
	if ((fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot open '%s'", path);
		goto out;
	}
	for (;;) {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : (size_t)st.st_size + 4096;
			if (!(b = realloc(buf, cap + 1))) {
				error = wf_error_oom();
				goto out;
			}
			buf = b;
		}
		if ((got = read(fd, buf + n, cap - n)) < 0) {
			if (errno == EINTR)
				continue;
			error = wf_error_set_errno(WF_EOS, "cannot read '%s'",
			    path);
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
done:
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(full);
	return error;
}

/*
 * Collecting: the base tree as a list of files, then a walk of the
 * checkout that marks what it finds.
 */
struct base_file {
	char *path;
	git_oid id;
	uint32_t mode;
	int seen;
};

struct collect {
	struct wf_sandbox *sb;
	struct base_file *base;
	size_t nbase, capbase;
	struct wf_map map;		/* path -> index in base */
	struct wf_sandbox_file *files;
	size_t n, cap;
	int all;			/* unchanged files too, no deletions */
};

static int
tree_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct collect *c = payload;
	git_filemode_t mode = git_tree_entry_filemode(e);
	struct base_file *b;
	const char *name = git_tree_entry_name(e);
	size_t len;

	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
	    mode != GIT_FILEMODE_LINK)
		return 0;
	if (c->nbase == c->capbase) {
		size_t cap = c->capbase ? c->capbase * 2 : 64;

		if (!(b = realloc(c->base, cap * sizeof(*b))))
			return -1;
		c->base = b;
		c->capbase = cap;
	}
	b = &c->base[c->nbase];
	len = strlen(root) + strlen(name) + 1;
	if (!(b->path = malloc(len)))
		return -1;
	snprintf(b->path, len, "%s%s", root, name);
	b->id = *git_tree_entry_id(e);
	b->mode = mode;
	b->seen = 0;
	c->nbase++;
	return 0;
}

static int
add_file(struct collect *c, const char *path, enum wf_sandbox_change change,
    uint32_t mode, const git_oid *id)
{
	struct wf_sandbox_file *f;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;

		if (!(f = realloc(c->files, cap * sizeof(*f))))
			return wf_error_oom();
		c->files = f;
		c->cap = cap;
	}
	f = &c->files[c->n];
	if (!(f->path = strdup(path)))
		return wf_error_oom();
	f->change = change;
	f->mode = mode;
	if (id)
		f->id = *id;
	else
		memset(&f->id, 0, sizeof(f->id));
	c->n++;
	return 0;
}

/* A new or changed symbolic link must stay in the checkout. */
static int
check_link(struct collect *c, const char *rel, const char *full,
    const char *target)
{
	const char *problem = wf_path_link_problem(rel, target);
	char real[PATH_MAX];
	size_t wl = strlen(c->sb->work);

	if (problem)
		return wf_error_set(WF_EINPUT, "symbolic link '%s' -> '%s': %s",
		    rel, target, problem);
	/* What it resolves to now, through other links, too. */
	if (realpath(full, real) &&
	    (strncmp(real, c->sb->work, wl) != 0 ||
	    (real[wl] != '\0' && real[wl] != '/')))
		return wf_error_set(WF_EINPUT, "symbolic link '%s' -> '%s': "
		    "leads out of the sandbox", rel, target);
	return 0;
}

static int
visit_entry(struct collect *c, const char *rel, const char *full,
    const struct stat *st)
{
	enum wf_sandbox_change change = WF_SANDBOX_ADDED;
	char target[PATH_MAX + 1];
	const char *problem;
	uint32_t mode;
	git_oid id;
	size_t bi;
	ssize_t len = 0;

	if (S_ISLNK(st->st_mode)) {
		mode = GIT_FILEMODE_LINK;
		if ((len = readlink(full, target, PATH_MAX)) < 0)
			return wf_error_set_errno(WF_EOS, "cannot read '%s'",
			    rel);
		target[len] = '\0';
		if (git_odb_hash(&id, target, (size_t)len, GIT_OBJECT_BLOB) < 0)
			return wf_error_set_git(WF_ERROR, "cannot hash '%s'",
			    rel);
	} else if (S_ISREG(st->st_mode)) {
		mode = st->st_mode & S_IXUSR ? GIT_FILEMODE_BLOB_EXECUTABLE :
		    GIT_FILEMODE_BLOB;
		if (git_odb_hashfile(&id, full, GIT_OBJECT_BLOB) < 0)
			return wf_error_set_git(WF_EOS, "cannot read '%s'", rel);
	} else {
		return wf_error_set(WF_EINPUT, "'%s' is neither a file, a "
		    "directory nor a symbolic link", rel);
	}
	if (wf_map_get(&bi, &c->map, rel) == 0) {
		struct base_file *b = &c->base[bi];

		b->seen = 1;
		if (b->mode == mode && git_oid_equal(&b->id, &id))
			return c->all ? add_file(c, rel, WF_SANDBOX_UNCHANGED,
			    mode, &id) : 0;
		change = WF_SANDBOX_MODIFIED;
	}
	if ((problem = wf_path_problem(rel)))
		return wf_error_set(WF_EINPUT, "'%s': %s", rel, problem);
	if (mode == GIT_FILEMODE_LINK) {
		int error = check_link(c, rel, full, target);

		if (error < 0)
			return error;
	}
	return add_file(c, rel, change, mode, &id);
}

/* Is this one name a spelling of ".git"? */
static int
is_git_component(const char *name)
{
	return wf_path_is_dotgit(name);
}

static int
walk(struct collect *c, const char *rel)
{
	char *dir = NULL, *full = NULL, *sub = NULL;
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int error = 0;

	if (!(dir = *rel ? join(c->sb->work, rel) : strdup(c->sb->work)))
		return wf_error_oom();
	if (!(d = opendir(dir))) {
		error = wf_error_set_errno(WF_EOS, "cannot read the directory "
		    "'%s'", *rel ? rel : ".");
		goto out;
	}
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		free(sub);
		free(full);
		full = NULL;
		if (!(sub = *rel ? join(rel, de->d_name) : strdup(de->d_name)) ||
		    !(full = join(dir, de->d_name))) {
			error = wf_error_oom();
			goto out;
		}
		if (is_git_component(de->d_name)) {
			error = wf_error_set(WF_EINPUT, "'%s': written in "
			    "'.git'", sub);
			goto out;
		}
		if (lstat(full, &st) < 0) {
			error = wf_error_set_errno(WF_EOS, "cannot look at "
			    "'%s'", sub);
			goto out;
		}
		if (S_ISDIR(st.st_mode))
			error = walk(c, sub);
		else
			error = visit_entry(c, sub, full, &st);
		if (error < 0)
			goto out;
	}
	if (errno) {
		error = wf_error_set_errno(WF_EOS, "cannot read the directory "
		    "'%s'", *rel ? rel : ".");
		goto out;
	}
out:
	if (d)
		closedir(d);
	free(sub);
	free(full);
	free(dir);
	return error;
}

/* Only work/ and tmp/ may be in the root, both real directories. */
static int
check_root(struct collect *c)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int error = 0;

	if (lstat(c->sb->work, &st) < 0 || !S_ISDIR(st.st_mode))
		return wf_error_set(WF_EINPUT, "the sandbox's checkout was "
		    "removed or replaced");
	if (!(d = opendir(c->sb->root)))
		return wf_error_set_errno(WF_EOS, "cannot read '%s'",
		    c->sb->root);
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "work") == 0 ||
		    strcmp(de->d_name, "tmp") == 0)
			continue;
		error = wf_error_set(WF_EINPUT, "'../%s': written outside the "
		    "sandbox", de->d_name);
		break;
	}
	closedir(d);
	return error;
}

static int
cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct wf_sandbox_file *)a)->path,
	    ((const struct wf_sandbox_file *)b)->path);
}

static int
gather(struct wf_sandbox_file **out, size_t *n, struct wf_sandbox *sb, int all)
{
	struct collect c;
	git_tree *tree = NULL;
	size_t i;
	int error;

	*out = NULL;
	*n = 0;
	memset(&c, 0, sizeof(c));
	c.sb = sb;
	c.all = all;
	wf_map_init(&c.map);
	if ((error = check_root(&c)) < 0)
		goto out;
	if (git_tree_lookup(&tree, sb->repo, &sb->tree) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the base tree");
		goto out;
	}
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, tree_cb, &c) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot walk the base tree");
		goto out;
	}
	if ((error = wf_map_reserve(&c.map, c.nbase)) < 0)
		goto out;
	for (i = 0; i < c.nbase; i++)
		if ((error = wf_map_put(NULL, &c.map, c.base[i].path, i)) < 0)
			goto out;
	if ((error = walk(&c, "")) < 0)
		goto out;
	for (i = 0; !all && i < c.nbase; i++)
		if (!c.base[i].seen && (error = add_file(&c, c.base[i].path,
		    WF_SANDBOX_DELETED, 0, NULL)) < 0)
			goto out;
	if (c.n > 1)
		qsort(c.files, c.n, sizeof(*c.files), cmp_file);
	*out = c.files;
	*n = c.n;
	c.files = NULL;
	c.n = 0;
out:
	git_tree_free(tree);
	wf_map_release(&c.map);
	for (i = 0; i < c.nbase; i++)
		free(c.base[i].path);
	free(c.base);
	wf_sandbox_files_free(c.files, c.n);
	return error;
}

int
wf_sandbox_collect(struct wf_sandbox_file **out, size_t *n,
    struct wf_sandbox *sb)
{
	return gather(out, n, sb, 0);
}

int
wf_sandbox_snapshot(struct wf_sandbox_file **out, size_t *n,
    struct wf_sandbox *sb)
{
	return gather(out, n, sb, 1);
}

void
wf_sandbox_files_free(struct wf_sandbox_file *files, size_t n)
{
	size_t i;

	if (!files)
		return;
	for (i = 0; i < n; i++)
		free(files[i].path);
	free(files);
}
