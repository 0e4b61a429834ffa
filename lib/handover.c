#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "handover.h"
#include "hash.h"
#include "json.h"

/* Bytes of /proc/<pid>/stat we look at: the start time is well within. */
#define STAT_MAX 4096

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* An id from its lower-case hex form; -1 when it is not one. */
static int
oid_parse(git_oid *out, const char *s)
{
	size_t i;
	int hi, lo;

	if (!s || strlen(s) != GIT_OID_HEXSZ)
		return -1;
	for (i = 0; i < GIT_OID_RAWSZ; i++) {
		if ((hi = hexval(s[2 * i])) < 0 ||
		    (lo = hexval(s[2 * i + 1])) < 0)
			return -1;
		out->id[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* Read a small file whole into buf (NUL-terminated); its length or -1. */
static ssize_t
read_small(const char *path, char *buf, size_t size)
{
	ssize_t got, len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((size_t)len < size - 1 &&
	    (got = read(fd, buf + len, size - 1 - (size_t)len)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		len += got;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

/* The start time of process `pid` (field 22 of /proc/<pid>/stat). */
static int
start_time(unsigned long long *out, pid_t pid)
{
	char path[64], buf[STAT_MAX], *p, *end;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	/* The command name, in parentheses, may hold anything: skip it. */
	if (!(p = strrchr(buf, ')')))
		return -1;
	for (field = 2; field < 22; field++) {
		if (!(p = strchr(p + 1, ' ')))
			return -1;
	}
	errno = 0;
	*out = strtoull(p + 1, &end, 10);
	return errno || end == p + 1 ? -1 : 0;
}

/* This boot's id, its 32 hex digits. */
static int
boot_id(char out[33])
{
	char buf[64];
	size_t i, n = 0;

	if (read_small("/proc/sys/kernel/random/boot_id", buf,
	    sizeof(buf)) < 0)
		return -1;
	for (i = 0; buf[i] && n < 32; i++)
		if (hexval(buf[i]) >= 0)
			out[n++] = buf[i];
	out[n] = '\0';
	return n == 32 ? 0 : -1;
}

int
wf_handover_key(char **out, pid_t pid)
{
	unsigned long long t;
	char boot[33];

	*out = NULL;
	if (pid <= 1 || boot_id(boot) < 0 || start_time(&t, pid) < 0)
		return wf_error_set(WF_EOS, "cannot tell which process %ld is",
		    (long)pid);
	if (!(*out = malloc(32 + 2 * 24)))
		return wf_error_oom();
	sprintf(*out, "%s-%ld-%llu", boot, (long)pid, t);
	return 0;
}

/* Whether the process a key names is still running. */
static int
key_alive(const char *key)
{
	unsigned long long t, want;
	char boot[33], *end;
	long pid;

	if (boot_id(boot) < 0 || strncmp(key, boot, 32) != 0 ||
	    key[32] != '-')
		return 0;
	errno = 0;
	pid = strtol(key + 33, &end, 10);
	if (errno || *end != '-' || pid <= 1)
		return 0;
	want = strtoull(end + 1, &end, 10);
	if (*end && strcmp(end, ".tmp") != 0)
		return 0;
	return start_time(&t, (pid_t)pid) == 0 && t == want;
}

/* <gitdir>/wf/handover[/<name>], the directories made when `make`. */
static int
handover_path(char **out, const char *gitdir, const char *name, int make)
{
	size_t n = strlen(gitdir);
	char *p;

	*out = NULL;
	while (n > 1 && gitdir[n - 1] == '/')
		n--;
	if (!(p = malloc(n + strlen(name ? name : "") + 20)))
		return wf_error_oom();
	sprintf(p, "%.*s/wf", (int)n, gitdir);
	if (make && mkdir(p, 0777) < 0 && errno != EEXIST)
		goto fail;
	strcat(p, "/handover");
	if (make && mkdir(p, 0777) < 0 && errno != EEXIST)
		goto fail;
	if (name)
		sprintf(p + strlen(p), "/%s", name);
	*out = p;
	return 0;
fail:
	wf_error_set_errno(WF_EOS, "cannot create '%s'", p);
	free(p);
	return WF_EOS;
}

int
wf_handover_add(json_t **doc, const struct wf_push_update *u,
    const char *replaces)
{
	char old[GIT_OID_HEXSZ + 1], new[GIT_OID_HEXSZ + 1];
	char hash[GIT_OID_HEXSZ + 1], *line = NULL;
	const struct wf_change *c = u->change;
	json_t *e = NULL;
	int error = 0;

	if (!*doc && !(*doc = json_pack("{s:[]}", "updates")))
		return wf_error_oom();
	wf_hash_hex(old, &u->old_id);
	wf_hash_hex(new, &u->new_id);
	wf_hash_hex(hash, &c->hash);
	if (!(line = malloc(2 * GIT_OID_HEXSZ + strlen(u->ref) + 3))) {
		error = wf_error_oom();
		goto out;
	}
	sprintf(line, "%s %s %s", old, new, u->ref);
	if (!(e = json_pack("{s:s, s:s, s:O, s:s}", "line", line, "change",
	    c->text, "paths", c->paths, "hash", hash)) ||
	    (replaces && json_object_set_new(e, "replaces",
	    json_string(replaces)) < 0) ||
	    json_array_append(json_object_get(*doc, "updates"), e) < 0)
		error = wf_error_oom();
out:
	json_decref(e);
	free(line);
	return error;
}

/* Remove the handovers (and their temporary files) of gone processes. */
static void
sweep(const char *dir, const char *key)
{
	struct dirent *d;
	DIR *dp;
	int fd;

	if (!(dp = opendir(dir)))
		return;
	fd = dirfd(dp);
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.' || strncmp(d->d_name, key,
		    strlen(key)) == 0 || key_alive(d->d_name))
			continue;
		unlinkat(fd, d->d_name, 0);
	}
	closedir(dp);
}

int
wf_handover_save(const char *gitdir, const char *key, const json_t *doc)
{
	char *path = NULL, *tmp = NULL, *text = NULL;
	size_t len, off = 0;
	ssize_t w;
	int fd = -1, error;

	if ((error = handover_path(&path, gitdir, key, 1)) < 0)
		goto out;
	if (!(tmp = malloc(strlen(path) + 5)) ||
	    (error = wf_json_dump(&text, &len, doc, 0)) < 0) {
		error = tmp ? error : wf_error_oom();
		goto out;
	}
	sprintf(tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0666)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot create '%s'", tmp);
		goto out;
	}
	while (off < len) {
		if ((w = write(fd, text + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			error = wf_error_set_errno(WF_EOS, "cannot write '%s'",
			    tmp);
			goto out;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0) {
		fd = -1;
		error = wf_error_set_errno(WF_EOS, "cannot write '%s'", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot rename '%s'", tmp);
		goto out;
	}
	*strrchr(path, '/') = '\0';
	sweep(path, key);
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	if (error < 0 && tmp)
		unlink(tmp);
	free(text);
	free(tmp);
	free(path);
	return error;
}

int
wf_handover_discard(const char *gitdir, const char *key)
{
	char *path = NULL;
	int error;

	if ((error = handover_path(&path, gitdir, key, 0)) < 0)
		return error;
	if (unlink(path) < 0 && errno != ENOENT)
		error = wf_error_set_errno(WF_EOS, "cannot remove '%s'", path);
	free(path);
	return error;
}

int
wf_handover_take(json_t **out, const char *gitdir, const char *key)
{
	json_error_t jerr;
	json_t *doc = NULL;
	char *path = NULL;
	FILE *f = NULL;
	int error;

	*out = NULL;
	if ((error = handover_path(&path, gitdir, key, 0)) < 0)
		return error;
	if (!(f = fopen(path, "re"))) {
		if (errno != ENOENT)
			error = wf_error_set_errno(WF_EOS, "cannot open '%s'",
			    path);
		goto out;
	}
	/* Read once: whatever it holds, no one else is to use it. */
	if (unlink(path) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot remove '%s'", path);
		goto out;
	}
	doc = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_array(json_object_get(doc, "updates"))) {
		error = wf_error_set(WF_EINPUT, "'%s': not a handover", path);
		goto out;
	}
	*out = doc;
	doc = NULL;
out:
	if (f)
		fclose(f);
	json_decref(doc);
	free(path);
	return error;
}

int
wf_handover_find(struct wf_change **out, const char **replaces,
    const json_t *doc, const char *line)
{
	const json_t *e, *r;
	git_oid hash;
	size_t i;
	const char *l;

	*out = NULL;
	*replaces = NULL;
	json_array_foreach(json_object_get(doc, "updates"), i, e) {
		if (!(l = json_string_value(json_object_get(e, "line"))) ||
		    strcmp(l, line) != 0)
			continue;
		r = json_object_get(e, "replaces");
		if ((r && !json_is_string(r)) || !json_is_string(
		    json_object_get(e, "change")) || oid_parse(&hash,
		    json_string_value(json_object_get(e, "hash"))) < 0)
			return wf_error_set(WF_EINPUT, "the handover of "
			    "'%.200s' is damaged", line);
		*replaces = json_string_value(r);
		return wf_change_from_canonical(out, json_string_value(
		    json_object_get(e, "change")), json_object_get(e, "paths"),
		    &hash);
	}
	return wf_error_set(WF_ENOTFOUND, "no handover for '%.200s'", line);
}
