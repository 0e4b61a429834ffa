#ifndef WF_CATALOG_H
#define WF_CATALOG_H

#include <stddef.h>

#include <git2.h>

#include "workflow.h"

/*
 * A catalog: a directory of workflow definitions, one JSON file each.
 * Loading validates the whole catalog (every file, names unique across
 * files, every dependency known, no dependency cycle) so that nothing
 * is ever matched against a broken one.  A loaded catalog is read-only.
 */
struct wf_catalog_entry {
	struct wf_workflow *workflow;
	char *file;		/* the file it came from, as opened */
	size_t *deps;		/* entries named by depends_on, in its order */
	git_pathspec **specs;	/* one per workflow->paths, in its order */
};

struct wf_catalog {
	char *dir;
	struct wf_catalog_entry *entries;	/* sorted by workflow name */
	size_t n;
};

/*
 * Load the catalog in directory `dir`: every file whose name ends in
 * ".json" and does not start with '.', in byte order of file names;
 * other files and subdirectories are ignored, and an empty catalog is
 * valid (it matches nothing).  A file is named by "dir/file" in
 * messages.
 *
 * Returns WF_EOS when the directory or a file cannot be read (message
 * "cannot open catalog 'dir': ..."), and WF_EINPUT, with the message
 * "<file>:<line>:<col>: <path>: ..." naming the place, for malformed
 * JSON, an invalid definition (see wf_workflow_parse()), a negative or
 * magic pathspec ('!' or ':' first), a workflow name defined in two
 * files (both named), a dependency on an unknown workflow, or a
 * dependency cycle ("dependency cycle: a -> b -> a", each depending on
 * the next, spelled as wf-plan spells it).  WF_ENOMEM.
 *
 * *out is a new catalog for wf_catalog_free(); NULL on error.  `dir`
 * must not be NULL; the catalog keeps a copy of it.
 */
int wf_catalog_load(struct wf_catalog **out, const char *dir);

/* Free the catalog and its workflows; no-op on NULL. */
void wf_catalog_free(struct wf_catalog *c);

/*
 * The entry of the workflow called `name`: 0 with its index in *out, or
 * WF_ENOTFOUND without a message (*out untouched).  Binary search; c
 * and name must not be NULL.
 */
int wf_catalog_find(size_t *out, const struct wf_catalog *c,
    const char *name);

#endif
