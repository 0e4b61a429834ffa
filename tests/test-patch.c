/*
 * test-patch: apply a patch to a tree with lib/patch.c, for the
 * differential tests against git apply (t4000).
 *
 *   test-patch [--fuzz N] TREE-ISH PATCH-FILE
 *   test-patch --id PATCH-FILE
 *   test-patch --commit-id COMMIT
 *
 * Run inside a repository: writes the new objects as one pack and prints
 * the new tree's id; on failure prints "error: <message>" on stderr and
 * exits 1 (does not apply) or 3 (bad patch) or 4.  With --id, prints
 * the patch's wf_patch_id() instead (git patch-id --stable's); with
 * --commit-id, the ids of the commit's change that wf_cherry_commit_id()
 * gives: without renames, then with renames found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cherry.h"
#include "error.h"
#include "git.h"
#include "pack.h"
#include "patch.h"

static int
slurp(char **out, size_t *len, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *b;
	size_t cap = 0, n = 0, got;

	if (!f)
		return wf_error_set_errno(WF_EOS, "cannot open '%s'", path);
	do {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			if (!(b = realloc(buf, cap))) {
				free(buf);
				fclose(f);
				return wf_error_oom();
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

int
main(int argc, char **argv)
{
	struct wf_patch_opts opts = WF_PATCH_OPTS_INIT;
	struct wf_patch *patch = NULL;
	struct wf_pack *pack = NULL;
	git_repository *repo = NULL;
	git_object *obj = NULL;
	git_tree *tree = NULL;
	git_oid id;
	char *text = NULL, hex[GIT_OID_HEXSZ + 1];
	size_t len = 0;
	int error, code;

	if (argc == 3 && strcmp(argv[1], "--id") == 0) {
		if ((error = slurp(&text, &len, argv[2])) < 0 ||
		    (error = wf_patch_parse(&patch, text, len)) < 0 ||
		    (error = wf_patch_id(&id, patch)) < 0)
			goto out;
		printf("%s\n", git_oid_tostr(hex, sizeof(hex), &id));
		goto out;
	}
	if (argc == 3 && strcmp(argv[1], "--commit-id") == 0) {
		git_oid renamed;

		if ((error = wf_git_init()) < 0 ||
		    (error = wf_git_open(&repo, NULL)) < 0)
			goto out;
		if (git_revparse_single(&obj, repo, argv[2]) < 0 ||
		    git_object_type(obj) != GIT_OBJECT_COMMIT) {
			error = wf_error_set_git(WF_EINPUT, "bad commit '%s'",
			    argv[2]);
			goto out;
		}
		if ((error = wf_cherry_commit_id(&id, &renamed, repo,
		    (git_commit *)obj)) < 0)
			goto out;
		if (error == 0) {
			printf("%s ", git_oid_tostr(hex, sizeof(hex), &id));
			printf("%s\n", git_oid_tostr(hex, sizeof(hex),
			    &renamed));
		}
		error = 0;
		goto out;
	}
	if (argc == 5 && strcmp(argv[1], "--fuzz") == 0) {
		opts.fuzz = (unsigned)strtoul(argv[2], NULL, 10);
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: test-patch [--fuzz N] TREE-ISH "
		    "PATCH-FILE\n");
		return 2;
	}
	if ((error = wf_git_init()) < 0 ||
	    (error = wf_git_open(&repo, NULL)) < 0)
		goto out;
	if (git_revparse_single(&obj, repo, argv[1]) < 0 ||
	    git_object_peel((git_object **)&tree, obj, GIT_OBJECT_TREE) < 0) {
		error = wf_error_set_git(WF_EINPUT, "bad tree '%s'", argv[1]);
		goto out;
	}
	if ((error = slurp(&text, &len, argv[2])) < 0 ||
	    (error = wf_patch_parse(&patch, text, len)) < 0 ||
	    (error = wf_pack_attach(&pack, repo)) < 0 ||
	    (error = wf_patch_apply(&id, repo, tree, patch, &opts)) < 0 ||
	    (error = wf_pack_flush(pack)) < 0)
		goto out;
	printf("%s\n", git_oid_tostr(hex, sizeof(hex), &id));
out:
	code = error == 0 ? 0 : error == WF_ECONFLICT ? 1 :
	    error == WF_EINPUT ? 3 : 4;
	if (error < 0)
		fprintf(stderr, "error: %s\n", wf_error_last());
	wf_pack_free(pack);
	wf_patch_free(patch);
	free(text);
	git_tree_free(tree);
	git_object_free(obj);
	git_repository_free(repo);
	wf_git_shutdown();
	return code;
}
