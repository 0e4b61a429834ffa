#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <pthread.h>
#include <stdio.h>

#include <git2.h>
#include <git2/sys/config.h>
#include <git2/sys/path.h>
#include <git2/sys/repository.h>

#include "error.h"
#include "path.h"

/*
 * git's own rules for names in a tree are libgit2's: what git refuses
 * with core.protectNTFS and core.protectHFS on (".git" in every
 * spelling NTFS and HFS+ take for it: "GIT~1", ".git.", ".git::$DATA",
 * ".g\u200cit", ...).  libgit2 applies them when a path is added to an
 * index, with the protections its repository's configuration turns on;
 * the index here belongs to a repository of its own whose configuration
 * turns both on, whatever the user's.
 */
struct protect {
	git_config_backend parent;
};

static int
protect_open(git_config_backend *b, git_config_level_t level,
    const git_repository *repo)
{
	(void)b;
	(void)level;
	(void)repo;
	return 0;
}

static void
protect_entry_free(git_config_entry *e)
{
	(void)e;
}

static git_config_entry protect_entries[] = {
	{ "core.protecthfs", "true", 0, GIT_CONFIG_LEVEL_APP,
	    protect_entry_free, NULL },
	{ "core.protectntfs", "true", 0, GIT_CONFIG_LEVEL_APP,
	    protect_entry_free, NULL },
};

static int
protect_get(git_config_backend *b, const char *key, git_config_entry **out)
{
	size_t i;

	(void)b;
	for (i = 0; i < sizeof(protect_entries) / sizeof(*protect_entries);
	    i++)
		if (strcasecmp(key, protect_entries[i].name) == 0) {
			*out = &protect_entries[i];
			return 0;
		}
	return GIT_ENOTFOUND;
}

static void
protect_free(git_config_backend *b)
{
	free(b);
}

static pthread_mutex_t checker_lock = PTHREAD_MUTEX_INITIALIZER;
/* Kept for the life of the process: the index must keep its owner. */
static git_repository *checker_repo;
static git_index *checker;

static int
checker_init(void)
{
	struct protect *pb = NULL;
	git_repository *repo = NULL;
	git_config *cfg = NULL;
	git_index *index = NULL;

	if (git_libgit2_init() < 0)
		return -1;
	if (!(pb = calloc(1, sizeof(*pb))) ||
	    git_config_init_backend(&pb->parent,
	    GIT_CONFIG_BACKEND_VERSION) < 0)
		goto fail;
	pb->parent.readonly = 1;
	pb->parent.open = protect_open;
	pb->parent.get = protect_get;
	pb->parent.free = protect_free;
	if (git_config_new(&cfg) < 0 || git_config_add_backend(cfg,
	    &pb->parent, GIT_CONFIG_LEVEL_APP, NULL, 0) < 0)
		goto fail;
	pb = NULL;
	if (git_repository_new(&repo) < 0 ||
	    git_repository_set_config(repo, cfg) < 0 ||
	    git_index_new(&index) < 0 ||
	    git_repository_set_index(repo, index) < 0)
		goto fail;
	git_config_free(cfg);
	checker_repo = repo;
	checker = index;
	return 0;
fail:
	free(pb);
	git_index_free(index);
	git_repository_free(repo);
	git_config_free(cfg);
	return -1;
}

/* Would git put `p` in an index?  1 yes, 0 no, -1 when it cannot tell. */
static int
git_takes(const char *p, unsigned mode)
{
	git_index_entry e;
	int ok;

	memset(&e, 0, sizeof(e));
	e.path = p;
	e.mode = mode == 0120000 || mode == 0160000 || mode == 0100755 ?
	    mode : 0100644;
	memset(e.id.id, 0x01, sizeof(e.id.id));
	pthread_mutex_lock(&checker_lock);
	if (!checker && checker_init() < 0) {
		pthread_mutex_unlock(&checker_lock);
		return -1;
	}
	/*
	 * The path is checked before anything else is done with it; what
	 * may fail after (this repository has no directories) is no
	 * verdict on the path.
	 */
	git_error_clear();
	if (git_index_add(checker, &e) == 0) {
		ok = 1;
		git_index_clear(checker);
	} else {
		const git_error *ge = git_error_last();

		ok = !(ge && ge->klass == GIT_ERROR_INDEX &&
		    strncmp(ge->message, "invalid path", 12) == 0);
		git_error_clear();
	}
	pthread_mutex_unlock(&checker_lock);
	return ok;
}

/* Is the last component of `p` a file git reads as its own? */
static const char *
special_link(const char *p)
{
	static const struct {
		git_path_gitfile file;
		const char *name;
	} files[] = {
		{ GIT_PATH_GITFILE_GITMODULES, "'.gitmodules'" },
		{ GIT_PATH_GITFILE_GITIGNORE, "'.gitignore'" },
		{ GIT_PATH_GITFILE_GITATTRIBUTES, "'.gitattributes'" },
	};
	const char *base = strrchr(p, '/');
	size_t i;

	base = base ? base + 1 : p;
	for (i = 0; i < sizeof(files) / sizeof(*files); i++)
		if (git_path_is_gitfile(base, strlen(base), files[i].file,
		    GIT_PATH_FS_GENERIC))
			return files[i].name;
	/* git fsck's mailmapSymlink; libgit2 has no name for it. */
	if (strcasecmp(base, ".mailmap") == 0)
		return "'.mailmap'";
	return NULL;
}

const char *
wf_path_problem(const char *p)
{
	return wf_path_problem_mode(p, 0100644);
}

const char *
wf_path_problem_mode(const char *p, unsigned mode)
{
	static __thread char why[64];
	const char *c, *name;
	size_t len;

	if (*p == '\0')
		return "empty path";
	if (*p == '/')
		return "absolute path";
	for (c = p; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return "control character in path";
	if ((len = (size_t)(c - p)) > WF_PATH_MAX)
		return "path longer than " WF_STR(WF_PATH_MAX) " bytes";
	for (c = p; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 0)
			return "empty path component";
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return "'.' or '..' component";
		if (n > WF_PATH_MAX_NAME)
			return "name longer than " WF_STR(WF_PATH_MAX_NAME)
			    " bytes";
		c += n;
		if (*c == '/' && *++c == '\0')
			return "trailing '/'";
	}
	switch (git_takes(p, mode)) {
	case 0:
		return "'.git' component";
	case -1:
		return "cannot check the name";
	}
	/*
	 * git with core.protectNTFS takes a backslash for a separator, so
	 * "a\.git\x" writes into ".git" on Windows; libgit2 only looks
	 * at a name that starts with ".git".
	 */
	for (c = p; *c;) {
		size_t n = strcspn(c, "/");
		const char *piece, *end = c + n;

		if (memchr(c, '\\', n))
			for (piece = c; piece < end;) {
				size_t k = strcspn(piece, "/\\");
				char one[WF_PATH_MAX_NAME + 1];

				memcpy(one, piece, k);
				one[k] = '\0';
				if (k > 0 && wf_path_is_dotgit(one))
					return "'.git' component";
				piece += k + (piece + k < end);
			}
		c = *end ? end + 1 : end;
	}
	if ((mode & 0170000) == 0120000 && (name = special_link(p))) {
		snprintf(why, sizeof(why), "%s as a symbolic link", name);
		return why;
	}
	return NULL;
}

/* Is the link target component c[0..n) a name for ".git"? */
static int
is_git_name(const char *c, size_t n)
{
	char name[WF_PATH_MAX_NAME + 1];

	if (n > WF_PATH_MAX_NAME)
		return 0;
	memcpy(name, c, n);
	name[n] = '\0';
	return wf_path_is_dotgit(name);
}

int
wf_path_is_dotgit(const char *name)
{
	return !strchr(name, '/') && *name && strcmp(name, ".") != 0 &&
	    strcmp(name, "..") != 0 && git_takes(name, 0100644) != 1;
}

const char *
wf_path_link_problem(const char *link, const char *target)
{
	const char *c, *slash;
	long depth = 0;

	if (*target == '\0')
		return "empty link target";
	if (*target == '/')
		return "absolute link target";
	for (c = target; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return "control character in link target";
		if (*c == '\\')
			return "backslash in link target";
	}
	/* The link's directory is `depth` levels below the top. */
	for (c = link; (slash = strchr(c, '/')); c = slash + 1)
		depth++;
	for (c = target; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (--depth < 0)
				return "link target leaves the repository";
		} else if (n == 1 && c[0] == '.') {
			;
		} else if (n > 0) {
			if (is_git_name(c, n))
				return "link target in '.git'";
			depth++;
		}
		c += n;
		if (*c == '/')
			c++;
	}
	return NULL;
}

int
wf_path_mkdir_parent(const char *path)
{
	char *dir = strdup(path), *slash;
	int error = 0;

	if (!dir)
		return wf_error_oom();
	if ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0777) < 0 && errno != EEXIST)
			error = wf_error_set_errno(WF_EOS, "cannot create '%s'",
			    dir);
	}
	free(dir);
	return error;
}
