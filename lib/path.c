#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>

#include "error.h"
#include "path.h"

/* Is c[0..n) a name some file system takes for ".git"? */
static int
is_git_name(const char *c, size_t n)
{
	size_t i;

	if (n == 5 && strncasecmp(c, "git~1", 5) == 0)
		return 1;
	if (n < 4 || strncasecmp(c, ".git", 4) != 0)
		return 0;
	/* Windows and macOS ignore trailing dots and spaces. */
	for (i = 4; i < n; i++)
		if (c[i] != '.' && c[i] != ' ')
			return 0;
	return 1;
}

const char *
wf_path_problem(const char *p)
{
	const char *c;

	if (*p == '\0')
		return "empty path";
	if (*p == '/')
		return "absolute path";
	for (c = p; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return "control character in path";
	for (c = p; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 0)
			return "empty path component";
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return "'.' or '..' component";
		c += n;
		if (*c == '/' && *++c == '\0')
			return "trailing '/'";
	}
	/* ".git" between backslashes too: a separator elsewhere. */
	for (c = p; *c;) {
		size_t n = strcspn(c, "/\\");

		if (is_git_name(c, n))
			return "'.git' component";
		c += n;
		if (*c)
			c++;
	}
	return NULL;
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
