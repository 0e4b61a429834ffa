#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "error.h"
#include "json.h"

/*
 * While loading, each definition keeps its source text so that the
 * checks across files (duplicates, dependencies, cycles) can name the
 * place; the texts are dropped once the catalog is valid.
 */
struct load {
	struct wf_catalog_entry e;
	struct wf_json_doc doc;
	char *buf;
	size_t order;		/* position in file name order */
};

static void
entry_release(struct wf_catalog_entry *e)
{
	size_t i;

	if (e->specs && e->workflow)
		for (i = 0; i < e->workflow->npaths; i++)
			git_pathspec_free(e->specs[i]);
	free(e->specs);
	free(e->deps);
	free(e->file);
	wf_workflow_free(e->workflow);
}

void
wf_catalog_free(struct wf_catalog *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		entry_release(&c->entries[i]);
	free(c->entries);
	free(c->dir);
	free(c);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
is_catalog_file(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/* The names of the candidate files in `dir`, sorted; *out is owned. */
static int
list_dir(char ***out, size_t *n, const char *dir)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, **grown;
	size_t cap = 0, len = 0;
	int error = 0;

	*out = NULL;
	*n = 0;
	if (!(d = opendir(dir)))
		return wf_error_set_errno(WF_EOS, "cannot open catalog '%s'",
		    dir);
	for (;;) {
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				error = wf_error_set_errno(WF_EOS,
				    "cannot read catalog '%s'", dir);
			break;
		}
		if (!is_catalog_file(de->d_name))
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			if (!(grown = realloc(names, cap * sizeof(*names)))) {
				error = wf_error_oom();
				break;
			}
			names = grown;
		}
		if (!(names[len] = strdup(de->d_name))) {
			error = wf_error_oom();
			break;
		}
		len++;
	}
	closedir(d);
	if (error < 0) {
		while (len > 0)
			free(names[--len]);
		free(names);
		return error;
	}
	if (len > 0)
		qsort(names, len, sizeof(*names), cmp_str);
	*out = names;
	*n = len;
	return 0;
}

static char *
join_path(const char *dir, const char *name)
{
	size_t dn = strlen(dir), nn = strlen(name);
	int slash = dn > 0 && dir[dn - 1] == '/';
	char *p = malloc(dn + nn + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, dn);
	if (!slash)
		p[dn++] = '/';
	memcpy(p + dn, name, nn + 1);
	return p;
}

/*
 * Each pathspec on its own, so a match can name the ones that matched.
 * libgit2 reads '!' as a negation that only works in a combined list,
 * first match winning, and has no ':' magic: both are refused.
 */
static int
compile_specs(struct load *l)
{
	struct wf_workflow *w = l->e.workflow;
	struct wf_jpath path = WF_JPATH_INIT;
	size_t i;
	int error = 0;

	if (w->npaths == 0)
		return 0;
	if (!(l->e.specs = calloc(w->npaths, sizeof(*l->e.specs))))
		return wf_error_oom();
	wf_jpath_push_key(&path, "match");
	wf_jpath_push_key(&path, "paths");
	for (i = 0; i < w->npaths && error == 0; i++) {
		git_strarray one;
		char *s = (char *)w->paths[i];

		wf_jpath_push_index(&path, i);
		if (s[0] == '!' || s[0] == ':')
			error = wf_json_error(&l->doc, &path, "unsupported "
			    "pathspec '%s': no '!' negation or ':' magic", s);
		one.strings = &s;
		one.count = 1;
		if (error == 0 && git_pathspec_new(&l->e.specs[i], &one) < 0)
			error = wf_json_error(&l->doc, &path,
			    "invalid pathspec '%s'", s);
		wf_jpath_pop(&path);
	}
	return error;
}

static int
load_one(struct load *l, const char *dir, const char *name, size_t order)
{
	struct wf_jpath path = WF_JPATH_INIT;
	int error;

	l->order = order;
	if (!(l->e.file = join_path(dir, name)))
		return wf_error_oom();
	if ((error = wf_json_load_file(&l->doc, &l->buf, l->e.file,
	    NULL)) < 0)
		return error;
	if ((error = wf_workflow_parse(&l->e.workflow, &l->doc, &path,
	    l->doc.value, WF_WORKFLOW_DEFINITION)) < 0)
		return error;
	return compile_specs(l);
}

static int
cmp_load(const void *a, const void *b)
{
	const struct load *x = a, *y = b;
	int c = strcmp(x->e.workflow->name, y->e.workflow->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
find_load(size_t *out, const struct load *ls, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, ls[mid].e.workflow->name);

		if (c == 0) {
			*out = mid;
			return 0;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return WF_ENOTFOUND;
}

/*
 * A name defined twice: report the second definition in the earliest
 * file, naming the file of the first.  `ls` is sorted by name, then by
 * file order, so the first of each run of equal names is the original.
 */
static int
check_duplicates(const struct load *ls, size_t n)
{
	struct wf_jpath path = WF_JPATH_INIT;
	size_t k, first = 0, dup = SIZE_MAX, orig = 0;

	for (k = 1; k < n; k++) {
		if (strcmp(ls[k].e.workflow->name,
		    ls[first].e.workflow->name) != 0) {
			first = k;
			continue;
		}
		if (dup == SIZE_MAX || ls[k].order < ls[dup].order) {
			dup = k;
			orig = first;
		}
	}
	if (dup == SIZE_MAX)
		return 0;
	wf_jpath_push_key(&path, "name");
	return wf_json_error(&ls[dup].doc, &path, "duplicate workflow '%s', "
	    "also defined in '%s'", ls[dup].e.workflow->name,
	    ls[orig].e.file);
}

/* Resolve depends_on to entries, checking files in name order. */
static int
resolve_deps(struct load *ls, const size_t *byorder, size_t n)
{
	struct wf_jpath path = WF_JPATH_INIT;
	size_t o, i;
	int error;

	for (o = 0; o < n; o++) {
		struct load *l = &ls[byorder[o]];
		struct wf_workflow *w = l->e.workflow;

		if (w->ndepends_on == 0)
			continue;
		if (!(l->e.deps = calloc(w->ndepends_on, sizeof(*l->e.deps))))
			return wf_error_oom();
		for (i = 0; i < w->ndepends_on; i++) {
			if (find_load(&l->e.deps[i], ls, n,
			    w->depends_on[i]) == 0)
				continue;
			wf_jpath_push_key(&path, "depends_on");
			wf_jpath_push_index(&path, i);
			error = wf_json_error(&l->doc, &path,
			    "unknown workflow '%s'", w->depends_on[i]);
			return error;
		}
	}
	return 0;
}

/*
 * Kahn's order over the dependencies; what it cannot reach holds a
 * cycle.  As wf-plan does, walk from the smallest unreached name along
 * each node's smallest unreached dependency until a node repeats, and
 * spell the cycle from its smallest name.  Entries are sorted by name,
 * so "smallest" is "lowest index".
 */
static int
check_cycles(const struct load *ls, size_t n)
{
	size_t *left = NULL, *off = NULL, *rev = NULL, *queue = NULL;
	size_t *pos = NULL, *walk = NULL;
	size_t k, i, head = 0, tail = 0, start, len = 0, cur, at, low, j;
	struct wf_jpath path = WF_JPATH_INIT;
	char *msg = NULL;
	size_t msglen = 0;
	FILE *f = NULL;
	int error = 0;

	if (n == 0)
		return 0;
	if (!(left = calloc(n, sizeof(*left))) ||
	    !(off = calloc(n + 1, sizeof(*off))) ||
	    !(queue = calloc(n, sizeof(*queue)))) {
		error = wf_error_oom();
		goto out;
	}
	/* rev[off[d] .. off[d + 1]) are the entries depending on d. */
	for (k = 0; k < n; k++) {
		left[k] = ls[k].e.workflow->ndepends_on;
		for (i = 0; i < left[k]; i++)
			off[ls[k].e.deps[i] + 1]++;
	}
	for (k = 0; k < n; k++)
		off[k + 1] += off[k];
	if (!(rev = calloc(off[n] + 1, sizeof(*rev))) ||
	    !(pos = calloc(n, sizeof(*pos)))) {
		error = wf_error_oom();
		goto out;
	}
	for (k = 0; k < n; k++)
		for (i = 0; i < ls[k].e.workflow->ndepends_on; i++)
			rev[off[ls[k].e.deps[i]] + pos[ls[k].e.deps[i]]++] = k;
	for (k = 0; k < n; k++)
		if (left[k] == 0)
			queue[tail++] = k;
	while (head < tail) {
		size_t d = queue[head++];

		for (i = off[d]; i < off[d + 1]; i++)
			if (--left[rev[i]] == 0)
				queue[tail++] = rev[i];
	}
	if (tail == n)
		goto out;

	for (start = 0; left[start] == 0; start++)
		;
	if (!(walk = calloc(n, sizeof(*walk)))) {
		error = wf_error_oom();
		goto out;
	}
	for (k = 0; k < n; k++)
		pos[k] = SIZE_MAX;
	for (cur = start; pos[cur] == SIZE_MAX;) {
		size_t next = SIZE_MAX;

		pos[cur] = len;
		walk[len++] = cur;
		for (i = 0; i < ls[cur].e.workflow->ndepends_on; i++) {
			size_t d = ls[cur].e.deps[i];

			if (left[d] > 0 && d < next)
				next = d;
		}
		cur = next;
	}
	/* The cycle is walk[pos[cur] .. len); start it at its lowest. */
	at = pos[cur];
	for (low = at, k = at; k < len; k++)
		if (walk[k] < walk[low])
			low = k;
	if (!(f = open_memstream(&msg, &msglen))) {
		error = wf_error_oom();
		goto out;
	}
	fputs("dependency cycle: ", f);
	for (k = 0; k <= len - at; k++) {
		size_t node = walk[at + (low - at + k) % (len - at)];

		fprintf(f, "%s%s", k ? " -> " : "", ls[node].e.workflow->name);
	}
	if (fclose(f) != 0) {
		f = NULL;
		error = wf_error_oom();
		goto out;
	}
	f = NULL;
	/* Point at the dependency that closes the first link. */
	cur = walk[low];
	k = walk[at + (low - at + 1) % (len - at)];
	for (j = 0; ls[cur].e.deps[j] != k; j++)
		;
	wf_jpath_push_key(&path, "depends_on");
	wf_jpath_push_index(&path, j);
	error = wf_json_error(&ls[cur].doc, &path, "%s", msg);
out:
	if (f)
		fclose(f);
	free(msg);
	free(walk);
	free(pos);
	free(rev);
	free(queue);
	free(off);
	free(left);
	return error;
}

int
wf_catalog_load(struct wf_catalog **out, const char *dir)
{
	struct wf_catalog *c = NULL;
	struct load *ls = NULL;
	char **names = NULL;
	size_t *byorder = NULL;
	size_t nnames = 0, n = 0, i;
	int error;

	*out = NULL;
	if ((error = list_dir(&names, &nnames, dir)) < 0)
		goto out;
	if (!(ls = calloc(nnames + 1, sizeof(*ls))) ||
	    !(byorder = calloc(nnames + 1, sizeof(*byorder)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < nnames; i++) {
		char *p = join_path(dir, names[i]);
		struct stat st;
		int rc;

		if (!p) {
			error = wf_error_oom();
			goto out;
		}
		rc = stat(p, &st);
		if (rc < 0)
			error = wf_error_set_errno(WF_EOS, "cannot open '%s'",
			    p);
		free(p);
		if (rc < 0)
			goto out;
		if (!S_ISREG(st.st_mode))
			continue;
		/* Counted first, so a failed load is released too. */
		n++;
		if ((error = load_one(&ls[n - 1], dir, names[i], n - 1)) < 0)
			goto out;
	}
	if (n > 0)
		qsort(ls, n, sizeof(*ls), cmp_load);
	for (i = 0; i < n; i++)
		byorder[ls[i].order] = i;
	if ((error = check_duplicates(ls, n)) < 0 ||
	    (error = resolve_deps(ls, byorder, n)) < 0 ||
	    (error = check_cycles(ls, n)) < 0)
		goto out;

	if (!(c = calloc(1, sizeof(*c))) || !(c->dir = strdup(dir)) ||
	    !(c->entries = calloc(n + 1, sizeof(*c->entries)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		c->entries[i] = ls[i].e;
		memset(&ls[i].e, 0, sizeof(ls[i].e));
	}
	c->n = n;
	*out = c;
	c = NULL;
	error = 0;
out:
	for (i = 0; ls && i < n; i++) {
		entry_release(&ls[i].e);
		json_decref(ls[i].doc.value);
		free(ls[i].buf);
	}
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	free(byorder);
	free(ls);
	wf_catalog_free(c);
	return error;
}

int
wf_catalog_find(size_t *out, const struct wf_catalog *c, const char *name)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, c->entries[mid].workflow->name);

		if (r == 0) {
			*out = mid;
			return 0;
		}
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return WF_ENOTFOUND;
}
