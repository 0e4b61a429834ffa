#include <string.h>
#include <strings.h>

#include "path.h"

const char *
wf_path_problem(const char *p)
{
	const char *c;

	if (*p == '\0')
		return "empty path";
	if (*p == '/')
		return "absolute path";
	for (c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return "control character in path";
	for (c = p; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 0)
			return "empty path component";
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return "'.' or '..' component";
		if (n == 4 && strncasecmp(c, ".git", 4) == 0)
			return "'.git' component";
		c += n;
		if (*c == '/' && *++c == '\0')
			return "trailing '/'";
	}
	return NULL;
}
