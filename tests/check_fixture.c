#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "check_fixture.h"

char *
fixture_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);

	ck_assert_ptr_nonnull(s);
	snprintf(s, n, "%s/%s", a, b);
	return s;
}

void
fixture_write(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot write '%s': %s", path,
	    strerror(errno));
	fputs(content, f);
	ck_assert_int_eq(fclose(f), 0);
}

void
fixture_rm(const char *dir)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; "
	    "rm -rf '%s'", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
mkdirs_for(const char *path)
{
	char buf[4096], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(buf, 0777) < 0)
			ck_assert_int_eq(errno, EEXIST);
		*p = '/';
	}
}

static void
add_files(git_repository *repo, const struct fixture_file *files)
{
	const char *wd = git_repository_workdir(repo);
	git_index *index;

	ck_assert_int_eq(git_repository_index(&index, repo), 0);
	for (; files->path; files++) {
		char *full = fixture_join(wd, files->path);

		mkdirs_for(full);
		unlink(full);
		if (files->mode == 0120000) {
			ck_assert_int_eq(symlink(files->content, full), 0);
		} else {
			fixture_write(full, files->content);
			ck_assert_int_eq(chmod(full, files->mode == 0100755 ?
			    0755 : 0644), 0);
		}
		ck_assert_msg(git_index_add_bypath(index, files->path) == 0,
		    "%s", git_error_last()->message);
		free(full);
	}
	ck_assert_int_eq(git_index_write(index), 0);
	git_index_free(index);
}

static void
commit_index(git_oid *out, git_repository *repo, git_commit *parent)
{
	git_signature *sig;
	git_index *index;
	git_tree *tree;
	git_oid tree_id;
	const git_commit *parents[1] = { parent };

	ck_assert_int_eq(git_repository_index(&index, repo), 0);
	ck_assert_int_eq(git_index_write_tree(&tree_id, index), 0);
	ck_assert_int_eq(git_tree_lookup(&tree, repo, &tree_id), 0);
	ck_assert_int_eq(git_signature_new(&sig, "A U Thor",
	    "author@example.com", 1700000000, 0), 0);
	ck_assert_int_eq(git_commit_create(out, repo, "HEAD", sig, sig, NULL,
	    "fixture", tree, parent ? 1 : 0, parents), 0);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(index);
}

git_repository *
fixture_repo(char **dir, git_oid *commit, const struct fixture_file *files)
{
	git_repository *repo;
	char tmpl[] = "/tmp/wf-fixture.XXXXXX";
	git_repository_init_options o;

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	*dir = strdup(tmpl);
	ck_assert_ptr_nonnull(*dir);
	git_repository_init_options_init(&o,
	    GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	o.flags = GIT_REPOSITORY_INIT_MKPATH;
	o.initial_head = "main";
	ck_assert_int_eq(git_repository_init_ext(&repo, *dir, &o), 0);
	add_files(repo, files);
	commit_index(commit, repo, NULL);
	return repo;
}

void
fixture_commit(git_oid *out, git_repository *repo,
    const struct fixture_file *files)
{
	git_commit *head;
	git_oid id;

	ck_assert_int_eq(git_reference_name_to_id(&id, repo, "HEAD"), 0);
	ck_assert_int_eq(git_commit_lookup(&head, repo, &id), 0);
	add_files(repo, files);
	commit_index(out, repo, head);
	git_commit_free(head);
}
