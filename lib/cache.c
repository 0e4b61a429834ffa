#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache.h"
#include "db.h"
#include "error.h"
#include "str.h"
#include "path.h"
#include "git.h"
#include "hash.h"

#define CACHE_VERSION 1

struct wf_cache {
	git_repository *repo;
	git_odb *odb;
	sqlite3 *db;
	char *path;
	int explain;
};

int
wf_cache_default_path(char **out, git_repository *repo)
{
	return wf_git_common_path(out, repo, "wf/run.db");
}

static int
db_error(struct wf_cache *c, const char *what)
{
	int rc = sqlite3_errcode(c->db);

	return wf_error_set(rc == SQLITE_BUSY || rc == SQLITE_LOCKED ?
	    WF_EBUSY : WF_EOS, "step cache '%s': %s: %s", c->path, what,
	    sqlite3_errmsg(c->db));
}

int
wf_cache_open(struct wf_cache **out, git_repository *repo, const char *path,
    int explain)
{
	struct wf_cache *c;
	int error;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return wf_error_oom();
	c->repo = repo;
	c->explain = explain;
	if (path)
		c->path = strdup(path);
	else if ((error = wf_cache_default_path(&c->path, repo)) < 0)
		goto out;
	if (!c->path) {
		error = wf_error_oom();
		goto out;
	}
	if (git_repository_odb(&c->odb, repo) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot open the object "
		    "database");
		goto out;
	}
	if ((error = wf_path_mkdir_parent(c->path)) < 0)
		goto out;
	if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		error = c->db ? db_error(c, "cannot open") :
		    wf_error_oom();
		goto out;
	}
	sqlite3_busy_timeout(c->db, 30000);
	if (wf_db_wal(c->db, 30000) != SQLITE_OK) {
		error = db_error(c, "cannot use WAL mode");
		goto out;
	}
	if (sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL;"
	    "CREATE TABLE IF NOT EXISTS step_cache ("
	    " key TEXT PRIMARY KEY, manifest TEXT NOT NULL,"
	    " workflow TEXT, step TEXT, created_at INTEGER)",
	    NULL, NULL, NULL) != SQLITE_OK) {
		error = db_error(c, "cannot set up");
		goto out;
	}
	*out = c;
	c = NULL;
	error = 0;
out:
	wf_cache_free(c);
	return error;
}

void
wf_cache_free(struct wf_cache *c)
{
	if (!c)
		return;
	sqlite3_close(c->db);
	git_odb_free(c->odb);
	free(c->path);
	free(c);
}

static const char *
mode_name(uint32_t mode)
{
	switch (mode) {
	case 0100755: return "100755";
	case 0120000: return "120000";
	default: return "100644";
	}
}

static int
append_new(json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v) < 0)
		return wf_error_oom();
	return 0;
}

/* The input id: the base tree, or it and what changed. */
static int
input_id(git_oid *out, struct wf_sandbox *sb,
    const struct wf_sandbox_file *files, size_t n)
{
	char hex[GIT_OID_HEXSZ + 1], *buf = NULL, *b;
	size_t i, len = 0, cap = 0;
	int error = 0, changed = 0;

	git_oid_tostr(hex, sizeof(hex), wf_sandbox_tree(sb));
	for (i = 0; i < n; i++) {
		char line[64];
		size_t need;

		if (files[i].change == WF_SANDBOX_UNCHANGED)
			continue;
		if (!changed) {
			if (!(buf = wf_str_printf("base %s\n", hex)))
				return wf_error_oom();
			len = cap = strlen(buf);
			changed = 1;
		}
		snprintf(line, sizeof(line), "%s %s ", mode_name(files[i].mode),
		    git_oid_tostr_s(&files[i].id));
		need = strlen(line) + strlen(files[i].path) + 2;
		if (cap - len < need) {
			cap = (cap + need) * 2;
			if (!(b = realloc(buf, cap + 1))) {
				error = wf_error_oom();
				goto out;
			}
			buf = b;
		}
		len += (size_t)sprintf(buf + len, "%s%s\n", line, files[i].path);
	}
	if (!changed)
		*out = *wf_sandbox_tree(sb);
	else
		error = wf_hash_buf(out, buf, len);
out:
	free(buf);
	return error;
}

int
wf_cache_key(git_oid *out, json_t **explain, struct wf_cache *c,
    const struct wf_step *step, const json_t *def, struct wf_sandbox *sb,
    const struct wf_sandbox_file *files, size_t nfiles)
{
	char *const *env = wf_sandbox_environ(sb);
	json_t *k = NULL, *envv = NULL, *inputs = NULL, *x = NULL, *xenv = NULL;
	git_pathspec *ps = NULL;
	git_oid id;
	char hex[GIT_OID_HEXSZ + 1];
	size_t i;
	int error;

	if (explain)
		*explain = NULL;
	if (!(k = json_object()) ||
	    json_object_set_new(k, "version", json_integer(CACHE_VERSION)) < 0 ||
	    json_object_set(k, "step", (json_t *)def) < 0 ||
	    json_object_set_new(k, "env", envv = json_array()) < 0 ||
	    !(x = json_object()) ||
	    json_object_set_new(x, "env", xenv = json_array()) < 0) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; env[i]; i++) {
		size_t nl = strcspn(env[i], "=");
		char line[256];

		if (strncmp(env[i], "WF_SANDBOX=", 11) == 0 ||
		    strncmp(env[i], "TMPDIR=", 7) == 0)
			continue;
		if ((error = append_new(envv, json_string(env[i]))) < 0)
			goto out;
		wf_hash_buf(&id, env[i] + nl + 1, strlen(env[i] + nl + 1));
		snprintf(line, sizeof(line), "%.*s %s", (int)(nl > 200 ? 200 :
		    nl), env[i], git_oid_tostr(hex, sizeof(hex), &id));
		if ((error = append_new(xenv, json_string(line))) < 0)
			goto out;
	}
	if (step->inputs) {
		git_strarray specs;

		specs.strings = (char **)step->inputs;
		specs.count = step->ninputs;
		if (git_pathspec_new(&ps, &specs) < 0) {
			error = wf_error_set_git(WF_EINPUT, "step '%s': bad "
			    "\"inputs\"", step->id);
			goto out;
		}
		if (!(inputs = json_array())) {
			error = wf_error_oom();
			goto out;
		}
		for (i = 0; i < nfiles; i++) {
			if (!git_pathspec_matches_path(ps, 0, files[i].path))
				continue;
			if ((error = append_new(inputs, json_pack("[s, s, s]",
			    files[i].path, mode_name(files[i].mode),
			    git_oid_tostr(hex, sizeof(hex),
			    &files[i].id)))) < 0)
				goto out;
		}
		if (json_object_set(k, "inputs", inputs) < 0 ||
		    json_object_set(x, "inputs", inputs) < 0) {
			error = wf_error_oom();
			goto out;
		}
	} else {
		if ((error = input_id(&id, sb, files, nfiles)) < 0)
			goto out;
		git_oid_tostr(hex, sizeof(hex), &id);
		if (json_object_set_new(k, "input", json_string(hex)) < 0 ||
		    json_object_set_new(x, "input", json_string(hex)) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if ((error = wf_hash_json(out, k)) < 0)
		goto out;
	if (explain) {
		json_t *e = json_object();

		if (!e || json_object_set_new(e, "key", json_string(
		    git_oid_tostr(hex, sizeof(hex), out))) < 0) {
			json_decref(e);
			error = wf_error_oom();
			goto out;
		}
		if (c->explain) {
			wf_hash_json(&id, def);
			if (json_object_set_new(e, "step", json_string(
			    git_oid_tostr(hex, sizeof(hex), &id))) < 0 ||
			    json_object_update(e, x) < 0) {
				json_decref(e);
				error = wf_error_oom();
				goto out;
			}
		}
		*explain = e;
	}
	error = 0;
out:
	git_pathspec_free(ps);
	json_decref(inputs);
	json_decref(k);
	json_decref(x);
	return error;
}

static int
read_blob(char **out, size_t *len, struct wf_cache *c, const char *hex)
{
	git_odb_object *obj = NULL;
	git_oid id;

	*out = NULL;
	if (git_oid_fromstr(&id, hex) < 0 ||
	    git_odb_read(&obj, c->odb, &id) < 0)
		return wf_error_set_git(WF_ENOTFOUND, "cached object '%s' is "
		    "missing", hex);
	*len = git_odb_object_size(obj);
	if ((*out = malloc(*len + 1))) {
		memcpy(*out, git_odb_object_data(obj), *len);
		(*out)[*len] = '\0';
	}
	git_odb_object_free(obj);
	return *out ? 0 : wf_error_oom();
}

static int
has_blob(struct wf_cache *c, const char *hex)
{
	git_oid id;

	return hex && git_oid_fromstr(&id, hex) == 0 &&
	    git_odb_exists(c->odb, &id);
}

/* Write one stored file into the sandbox. */
static int
put_file(struct wf_cache *c, struct wf_sandbox *sb, json_t *f)
{
	const char *path = json_string_value(json_object_get(f, "path"));
	const char *mode = json_string_value(json_object_get(f, "mode"));
	char *full = NULL, *data = NULL;
	struct stat st;
	size_t len, off = 0;
	int error, fd = -1;

	if (!path)
		return wf_error_set(WF_EINPUT, "malformed cache entry");
	if ((error = wf_sandbox_path(&full, sb, path,
	    !json_is_true(json_object_get(f, "delete")))) < 0)
		goto out;
	if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
		error = wf_error_set(WF_EINPUT, "'%s' is a directory", path);
		goto out;
	}
	if (unlink(full) < 0 && errno != ENOENT) {
		error = wf_error_set_errno(WF_EOS, "cannot replace '%s'", path);
		goto out;
	}
	if (json_is_true(json_object_get(f, "delete")))
		goto out;
	if ((error = read_blob(&data, &len, c, json_string_value(
	    json_object_get(f, "blob")))) < 0)
		goto out;
	if (mode && strcmp(mode, "120000") == 0) {
		if (symlink(data, full) < 0)
			error = wf_error_set_errno(WF_EOS, "cannot write '%s'",
			    path);
		goto out;
	}
	if ((fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode && strcmp(mode, "100755") == 0 ? 0777 :
	    0666)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot write '%s'", path);
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			error = wf_error_set_errno(WF_EOS, "cannot write '%s'",
			    path);
			goto out;
		}
		off += (size_t)w;
	}
out:
	if (fd >= 0 && close(fd) < 0 && error == 0)
		error = wf_error_set_errno(WF_EOS, "cannot write '%s'", path);
	free(full);
	free(data);
	return error;
}

int
wf_cache_restore(char **stdout_value, char **tail, struct wf_cache *c,
    const git_oid *key, struct wf_sandbox *sb)
{
	sqlite3_stmt *st = NULL;
	json_t *m = NULL, *files, *f;
	char hex[GIT_OID_HEXSZ + 1];
	size_t i, len;
	int error = 0;

	*stdout_value = *tail = NULL;
	git_oid_tostr(hex, sizeof(hex), key);
	if (sqlite3_prepare_v2(c->db, "SELECT manifest FROM step_cache "
	    "WHERE key = ?", -1, &st, NULL) != SQLITE_OK) {
		error = db_error(c, "cannot look up");
		goto out;
	}
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;	/* a miss, or unreadable: run the step */
	m = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	files = json_object_get(m, "files");
	if (!json_is_array(files) ||
	    !has_blob(c, json_string_value(json_object_get(m, "stdout"))))
		goto out;
	/* Everything it needs must be there before anything is touched. */
	json_array_foreach(files, i, f)
		if (!json_is_true(json_object_get(f, "delete")) &&
		    !has_blob(c, json_string_value(json_object_get(f, "blob"))))
			goto out;
	json_array_foreach(files, i, f)
		if ((error = put_file(c, sb, f)) < 0)
			goto out;
	if ((error = read_blob(stdout_value, &len, c, json_string_value(
	    json_object_get(m, "stdout")))) < 0)
		goto out;
	if (!(*tail = strdup(json_is_string(json_object_get(m, "tail")) ?
	    json_string_value(json_object_get(m, "tail")) : ""))) {
		error = wf_error_oom();
		goto out;
	}
	error = 1;
out:
	if (error <= 0) {
		free(*stdout_value);
		free(*tail);
		*stdout_value = *tail = NULL;
	}
	sqlite3_finalize(st);
	json_decref(m);
	return error;
}

static int
write_blob(char *hex, struct wf_cache *c, const void *buf, size_t len)
{
	git_oid id;

	if (git_odb_write(&id, c->odb, buf, len, GIT_OBJECT_BLOB) < 0)
		return wf_error_set_git(WF_EOS, "cannot store a cached output");
	git_oid_tostr(hex, GIT_OID_HEXSZ + 1, &id);
	return 0;
}

/* Store file f of the sandbox as a blob; add it to `files`. */
static int
keep_file(json_t *files, struct wf_cache *c, struct wf_sandbox *sb,
    const struct wf_sandbox_file *f)
{
	char hex[GIT_OID_HEXSZ + 1], *data = NULL;
	size_t len;
	int error;

	if ((error = wf_sandbox_read(&data, &len, sb, f->path)) < 0 ||
	    (error = write_blob(hex, c, data, len)) < 0)
		goto out;
	error = append_new(files, json_pack("{s:s, s:s, s:s}", "path", f->path,
	    "mode", mode_name(f->mode), "blob", hex));
out:
	free(data);
	return error;
}

int
wf_cache_store(struct wf_cache *c, const git_oid *key, struct wf_sandbox *sb,
    const struct wf_sandbox_file *before, size_t nbefore, const char *out,
    const char *tail, const char *workflow, const char *step)
{
	struct wf_sandbox_file *after = NULL;
	sqlite3_stmt *st = NULL;
	json_t *m = NULL, *files;
	char hex[GIT_OID_HEXSZ + 1], keyhex[GIT_OID_HEXSZ + 1], *text = NULL;
	size_t nafter = 0, i = 0, j = 0;
	int error;

	if ((error = wf_sandbox_snapshot(&after, &nafter, sb)) < 0)
		goto out;
	if (!(m = json_object()) ||
	    json_object_set_new(m, "files", files = json_array()) < 0) {
		error = wf_error_oom();
		goto out;
	}
	/* Both lists are sorted by path: walk them side by side. */
	while (i < nbefore || j < nafter) {
		int cmp = i == nbefore ? 1 : j == nafter ? -1 :
		    strcmp(before[i].path, after[j].path);

		if (cmp < 0) {
			error = append_new(files, json_pack("{s:s, s:b}", "path",
			    before[i].path, "delete", 1));
			i++;
		} else if (cmp > 0) {
			error = keep_file(files, c, sb, &after[j]);
			j++;
		} else {
			if (before[i].mode != after[j].mode ||
			    !git_oid_equal(&before[i].id, &after[j].id))
				error = keep_file(files, c, sb, &after[j]);
			i++;
			j++;
		}
		if (error < 0)
			goto out;
	}
	if ((error = write_blob(hex, c, out ? out : "", out ? strlen(out) :
	    0)) < 0)
		goto out;
	if (json_object_set_new(m, "stdout", json_string(hex)) < 0 ||
	    json_object_set_new(m, "tail", json_string(tail ? tail : "")) < 0 ||
	    !(text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS))) {
		error = wf_error_oom();
		goto out;
	}
	git_oid_tostr(keyhex, sizeof(keyhex), key);
	if (sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO step_cache "
	    "(key, manifest, workflow, step, created_at) VALUES "
	    "(?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		error = db_error(c, "cannot store");
		goto out;
	}
	sqlite3_bind_text(st, 1, keyhex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, workflow, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, step, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (sqlite3_step(st) != SQLITE_DONE)
		error = db_error(c, "cannot store");
out:
	sqlite3_finalize(st);
	wf_sandbox_files_free(after, nafter);
	json_decref(m);
	free(text);
	return error;
}
