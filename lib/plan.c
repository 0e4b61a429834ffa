#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "hash.h"
#include "map.h"
#include "plan.h"
#include "workflow.h"

/*
 * Part one: the scheduling graph.
 */

/*
 * The sparse union-find of one conflict key lives in one table for all
 * keys: (key << 32 | stage) maps to the next stage to try and the node
 * that holds the key in `stage`.  A stage absent from the table does
 * not hold the key.
 */
struct held {
	uint64_t *keys;		/* HELD_EMPTY marks an empty slot */
	uint32_t *next;
	uint32_t *holder;
	size_t cap;		/* a power of two */
	int shift;		/* 64 - log2(cap) */
};

#define HELD_EMPTY UINT64_MAX

struct wf_plan_graph {
	size_t n, cap;
	const char **names;
	int64_t *prio;
	struct wf_map byname;

	/* Edge i: edge_node[i] depends on edge_dep[i]. */
	size_t *edge_node, *edge_dep;
	size_t nedges, capedges;

	size_t *pair_node, *pair_key;	/* node holds key */
	size_t npairs, cappairs;
	char **keys;
	size_t nkeys, capkeys;
	struct wf_map bykey;

	int scheduled;

	/* Results. */
	size_t nstages;
	size_t *order;
	struct wf_plan_placement *place;
	size_t *stage_start;		/* nstages + 1 offsets */
	size_t *stage_nodes;
	size_t *block_start;		/* nstages + 1 offsets */
	const char **block_keys;
	size_t *cycle;
	size_t ncycle;
};

/*
 * Grow the array `p` of `size`-byte items, now `*cap` long, to hold at
 * least `need` items (doubling).  Returns the array, NULL when out of
 * memory (then `p` and *cap are unchanged).
 */
static void *
grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return p;
	while (c < need) {
		if (c > SIZE_MAX / 2 / size)
			return NULL;
		c *= 2;
	}
	if (!(q = realloc(p, c * size)))
		return NULL;
	*cap = c;
	return q;
}

int
wf_plan_graph_new(struct wf_plan_graph **out, size_t hint)
{
	struct wf_plan_graph *g;

	*out = NULL;
	if (!(g = calloc(1, sizeof(*g))))
		return wf_error_oom();
	if (hint > 0 && (!(g->names = malloc(hint * sizeof(*g->names))) ||
	    !(g->prio = malloc(hint * sizeof(*g->prio))) ||
	    wf_map_reserve(&g->byname, hint) < 0)) {
		wf_plan_graph_free(g);
		return wf_error_oom();
	}
	g->cap = hint;
	*out = g;
	return 0;
}

void
wf_plan_graph_free(struct wf_plan_graph *g)
{
	size_t i;

	if (!g)
		return;
	free(g->names);
	free(g->prio);
	wf_map_release(&g->byname);
	free(g->edge_node);
	free(g->edge_dep);
	free(g->pair_node);
	free(g->pair_key);
	for (i = 0; i < g->nkeys; i++)
		free(g->keys[i]);
	free(g->keys);
	wf_map_release(&g->bykey);
	free(g->order);
	free(g->place);
	free(g->stage_start);
	free(g->stage_nodes);
	free(g->block_start);
	free(g->block_keys);
	free(g->cycle);
	free(g);
}

int
wf_plan_graph_add(size_t *out, struct wf_plan_graph *g, const char *name,
    int64_t priority)
{
	size_t cap = g->cap, existing;
	int error;

	if (g->scheduled)
		return wf_error_set(WF_ERROR, "graph already scheduled");
	if (g->n == cap) {
		const char **names;
		int64_t *p;

		if (!(names = grow(g->names, &cap, g->n + 1, sizeof(*names))))
			return wf_error_oom();
		g->names = names;
		if (!(p = realloc(g->prio, cap * sizeof(*p))))
			return wf_error_oom();
		g->prio = p;
		g->cap = cap;
	}
	error = wf_map_put(&existing, &g->byname, name, g->n);
	if (error == WF_ECONFLICT) {
		*out = existing;
		return wf_error_set(WF_ECONFLICT, "duplicate workflow '%s'",
		    name);
	}
	if (error < 0)
		return error;
	g->names[g->n] = name;
	g->prio[g->n] = priority;
	*out = g->n++;
	return 0;
}

int
wf_plan_graph_find(size_t *out, const struct wf_plan_graph *g,
    const char *name)
{
	return wf_map_get(out, &g->byname, name);
}

int
wf_plan_graph_depend(struct wf_plan_graph *g, size_t node, size_t dep)
{
	size_t cap = g->capedges, *p;

	if (g->scheduled || node >= g->n || dep >= g->n)
		return wf_error_set(WF_ERROR, "bad dependency %zu -> %zu",
		    node, dep);
	if (g->nedges == cap) {
		if (!(p = grow(g->edge_node, &cap, g->nedges + 1, sizeof(*p))))
			return wf_error_oom();
		g->edge_node = p;
		cap = g->capedges;
		if (!(p = grow(g->edge_dep, &cap, g->nedges + 1, sizeof(*p))))
			return wf_error_oom();
		g->edge_dep = p;
		g->capedges = cap;
	}
	g->edge_node[g->nedges] = node;
	g->edge_dep[g->nedges] = dep;
	g->nedges++;
	return 0;
}

int
wf_plan_graph_conflict(struct wf_plan_graph *g, size_t node, const char *key)
{
	size_t id, cap, *p;
	char *copy;
	int error;

	if (g->scheduled || node >= g->n)
		return wf_error_set(WF_ERROR, "bad conflict for %zu", node);
	if (g->npairs == g->cappairs) {
		cap = g->cappairs;
		if (!(p = grow(g->pair_node, &cap, g->npairs + 1, sizeof(*p))))
			return wf_error_oom();
		g->pair_node = p;
		cap = g->cappairs;
		if (!(p = grow(g->pair_key, &cap, g->npairs + 1, sizeof(*p))))
			return wf_error_oom();
		g->pair_key = p;
		g->cappairs = cap;
	}
	if (wf_map_get(&id, &g->bykey, key) < 0) {
		char **keys;

		cap = g->capkeys;
		if (!(keys = grow(g->keys, &cap, g->nkeys + 1, sizeof(*keys))))
			return wf_error_oom();
		g->keys = keys;
		g->capkeys = cap;
		if (!(copy = strdup(key)))
			return wf_error_oom();
		if ((error = wf_map_put(&id, &g->bykey, copy, g->nkeys)) < 0) {
			free(copy);
			return error;
		}
		g->keys[g->nkeys++] = copy;
	}
	g->pair_node[g->npairs] = node;
	g->pair_key[g->npairs] = id;
	g->npairs++;
	return 0;
}

size_t
wf_plan_graph_size(const struct wf_plan_graph *g)
{
	return g->n;
}

const char *
wf_plan_graph_name(const struct wf_plan_graph *g, size_t node)
{
	return node < g->n ? g->names[node] : NULL;
}

size_t
wf_plan_graph_stage_count(const struct wf_plan_graph *g)
{
	return g->nstages;
}

const size_t *
wf_plan_graph_order(const struct wf_plan_graph *g)
{
	return g->order;
}

int
wf_plan_graph_stage(struct wf_plan_stage *out, const struct wf_plan_graph *g,
    size_t index)
{
	if (!g->stage_start || index >= g->nstages)
		return WF_ENOTFOUND;
	out->nodes = g->stage_nodes + g->stage_start[index];
	out->nnodes = g->stage_start[index + 1] - g->stage_start[index];
	out->blocking = g->block_keys + g->block_start[index];
	out->nblocking = g->block_start[index + 1] - g->block_start[index];
	return 0;
}

int
wf_plan_graph_placement(struct wf_plan_placement *out,
    const struct wf_plan_graph *g, size_t node)
{
	if (!g->place || !g->order || node >= g->n)
		return WF_ENOTFOUND;
	*out = g->place[node];
	return 0;
}

size_t
wf_plan_graph_cycle(const size_t **out, const struct wf_plan_graph *g)
{
	*out = g->cycle;
	return g->ncycle;
}

/* The held-key table. */

static int
held_init(struct held *h, size_t n)
{
	size_t cap = 16;
	int bits = 4;

	while (cap < 2 * n) {
		if (cap > SIZE_MAX / 4)
			return wf_error_oom();
		cap *= 2;
		bits++;
	}
	h->keys = malloc(cap * sizeof(*h->keys));
	h->next = malloc(cap * sizeof(*h->next));
	h->holder = malloc(cap * sizeof(*h->holder));
	if (!h->keys || !h->next || !h->holder)
		return wf_error_oom();
	memset(h->keys, 0xff, cap * sizeof(*h->keys));
	h->cap = cap;
	h->shift = 64 - bits;
	return 0;
}

static void
held_release(struct held *h)
{
	free(h->keys);
	free(h->next);
	free(h->holder);
}

/* The slot of (key, stage): where it is, or the empty slot for it. */
static size_t
held_slot(const struct held *h, size_t key, size_t stage)
{
	uint64_t k = (uint64_t)key << 32 | (uint64_t)stage;
	size_t i = (size_t)((k * 0x9e3779b97f4a7c15ULL) >> h->shift);

	while (h->keys[i] != HELD_EMPTY && h->keys[i] != k)
		i = (i + 1) & (h->cap - 1);
	return i;
}

/* The first stage >= stage that does not hold key. */
static size_t
held_find(struct held *h, size_t key, size_t stage)
{
	size_t root = stage, i;

	while (h->keys[i = held_slot(h, key, root)] != HELD_EMPTY)
		root = h->next[i];
	while (stage != root) {
		i = held_slot(h, key, stage);
		stage = h->next[i];
		h->next[i] = (uint32_t)root;
	}
	return root;
}

/* Record that node holds key in stage; the table never fills up. */
static void
held_put(struct held *h, size_t key, size_t stage, size_t node)
{
	size_t i = held_slot(h, key, stage);

	h->keys[i] = (uint64_t)key << 32 | (uint64_t)stage;
	h->next[i] = (uint32_t)(stage + 1);
	h->holder[i] = (uint32_t)node;
}

/* The holder of key in stage, or WF_PLAN_NONE. */
static size_t
held_holder(const struct held *h, size_t key, size_t stage)
{
	size_t i = held_slot(h, key, stage);

	return h->keys[i] == HELD_EMPTY ? WF_PLAN_NONE : h->holder[i];
}

/* The first stage >= s with room; room[s] == s when s has room. */
static size_t
room_find(size_t *room, size_t s)
{
	while (room[s] != s) {
		room[s] = room[room[s]];
		s = room[s];
	}
	return s;
}

/* A binary min-heap of ranks. */
static void
heap_push(size_t *heap, size_t *n, size_t v)
{
	size_t i = (*n)++;

	while (i > 0 && heap[(i - 1) / 2] > v) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = v;
}

static size_t
heap_pop(size_t *heap, size_t *n)
{
	size_t top = heap[0], v = heap[--*n], i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && heap[c + 1] < heap[c])
			c++;
		if (heap[c] >= v)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (*n > 0)
		heap[i] = v;
	return top;
}

/*
 * Sort keys.  Comparing the first eight bytes of names as one number
 * settles most comparisons without touching the strings.
 */
struct name_key {
	uint64_t prefix;
	const char *name;
	size_t node;
};

struct rank_key {
	int64_t priority;
	size_t by_name;		/* place in name order */
	size_t node;
};

static uint64_t
name_prefix(const char *s)
{
	uint64_t p = 0;
	int i;

	for (i = 0; i < 8; i++) {
		p <<= 8;
		if (*s)
			p |= (unsigned char)*s++;
	}
	return p;
}

static int
cmp_name_key(const void *a, const void *b)
{
	const struct name_key *x = a, *y = b;

	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Priority descending, then name ascending. */
static int
cmp_rank_key(const void *a, const void *b)
{
	const struct rank_key *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->by_name < y->by_name ? -1 : x->by_name > y->by_name;
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Kahn's state of a node, kept small: the edge loop touches it at random. */
struct kahn {
	uint32_t earliest;	/* first stage its dependencies allow */
	uint32_t via;		/* the dependency that set it; UINT32_MAX */
	uint32_t indeg;		/* dependencies not yet placed */
	uint32_t rank;		/* place in the priority-then-name order */
	uint32_t stage;
};

/* An interval [lo, hi) of stages. */
struct span {
	size_t lo, hi;
};

static int
cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/*
 * Counting sort of `n` (item, bucket) pairs into CSR form: *start gets
 * nbuckets + 1 offsets into *list.
 */
static int
csr(size_t **start, size_t **list, const size_t *bucket, const size_t *item,
    size_t n, size_t nbuckets)
{
	size_t i, *s, *l;

	*start = NULL;
	*list = NULL;
	if (!(s = calloc(nbuckets + 2, sizeof(*s))) ||
	    !(l = malloc((n ? n : 1) * sizeof(*l)))) {
		free(s);
		return wf_error_oom();
	}
	for (i = 0; i < n; i++)
		s[bucket[i] + 2]++;
	for (i = 2; i < nbuckets + 2; i++)
		s[i] += s[i - 1];
	for (i = 0; i < n; i++)
		l[s[bucket[i] + 1]++] = item[i];
	*start = s;
	*list = l;
	return 0;
}

/*
 * Find a cycle among the nodes Kahn's order left unplaced (those with
 * indeg > 0) and set the error message.
 */
static int
find_cycle(struct wf_plan_graph *g, const struct kahn *k)
{
	size_t *dstart = NULL, *dlist = NULL, *pos = NULL, *path = NULL;
	size_t i, u, len = 0, first, best, msglen;
	char *msg = NULL, *p;
	int error;

	if ((error = csr(&dstart, &dlist, g->edge_node, g->edge_dep,
	    g->nedges, g->n)) < 0)
		goto out;
	pos = malloc(g->n * sizeof(*pos));
	path = malloc(g->n * sizeof(*path));
	if (!pos || !path) {
		error = wf_error_oom();
		goto out;
	}
	u = WF_PLAN_NONE;
	for (i = 0; i < g->n; i++) {
		pos[i] = WF_PLAN_NONE;
		if (k[i].indeg > 0 && (u == WF_PLAN_NONE ||
		    strcmp(g->names[i], g->names[u]) < 0))
			u = i;
	}
	/* Every unplaced node has an unplaced dependency: walk them. */
	while (pos[u] == WF_PLAN_NONE) {
		size_t next = WF_PLAN_NONE;

		pos[u] = len;
		path[len++] = u;
		for (i = dstart[u]; i < dstart[u + 1]; i++) {
			size_t d = dlist[i];

			if (k[d].indeg > 0 && (next == WF_PLAN_NONE ||
			    strcmp(g->names[d], g->names[next]) < 0))
				next = d;
		}
		u = next;
	}
	first = pos[u];
	g->ncycle = len - first;
	if (!(g->cycle = malloc(g->ncycle * sizeof(*g->cycle)))) {
		error = wf_error_oom();
		goto out;
	}
	best = first;
	for (i = first; i < len; i++)
		if (strcmp(g->names[path[i]], g->names[path[best]]) < 0)
			best = i;
	msglen = 1;
	for (i = 0; i < g->ncycle; i++) {
		g->cycle[i] = path[first + (best - first + i) % g->ncycle];
		msglen += strlen(g->names[g->cycle[i]]) + 4;
	}
	msglen += strlen(g->names[g->cycle[0]]);
	if (!(p = msg = malloc(msglen))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < g->ncycle; i++)
		p += sprintf(p, "%s -> ", g->names[g->cycle[i]]);
	strcpy(p, g->names[g->cycle[0]]);
	error = wf_error_set(WF_EINPUT, "dependency cycle: %s", msg);
out:
	free(dstart);
	free(dlist);
	free(pos);
	free(path);
	free(msg);
	return error;
}

/*
 * Per key, mark the stages holding it that some holder allowed there
 * (by its dependencies) was pushed past, then gather them per stage.
 */
static int
find_blocking(struct wf_plan_graph *g, const size_t *kstart,
    const size_t *klist)
{
	size_t *hstart = NULL, *hlist = NULL, *pnode = NULL, *pkey = NULL;
	size_t *bstage = NULL, *bkey = NULL, *held = NULL, *sstart = NULL;
	size_t *slist = NULL;
	struct span *spans = NULL;
	size_t npairs = kstart[g->n], nb = 0, i, k, v;
	int error;

	pnode = malloc((npairs ? npairs : 1) * sizeof(*pnode));
	pkey = malloc((npairs ? npairs : 1) * sizeof(*pkey));
	if (!pnode || !pkey) {
		error = wf_error_oom();
		goto out;
	}
	for (v = 0; v < g->n; v++)
		for (i = kstart[v]; i < kstart[v + 1]; i++) {
			pnode[i] = v;
			pkey[i] = klist[i];
		}
	if ((error = csr(&hstart, &hlist, pkey, pnode, npairs, g->nkeys)) < 0)
		goto out;
	held = malloc((npairs ? npairs : 1) * sizeof(*held));
	spans = malloc((npairs ? npairs : 1) * sizeof(*spans));
	bstage = malloc((npairs ? npairs : 1) * sizeof(*bstage));
	bkey = malloc((npairs ? npairs : 1) * sizeof(*bkey));
	if (!held || !spans || !bstage || !bkey) {
		error = wf_error_oom();
		goto out;
	}
	for (k = 0; k < g->nkeys; k++) {
		size_t nh = 0, ns = 0, j = 0, reach = 0;

		for (i = hstart[k]; i < hstart[k + 1]; i++) {
			const struct wf_plan_placement *pl;

			pl = &g->place[hlist[i]];
			held[nh++] = pl->stage;
			if (pl->stage > pl->earliest) {
				spans[ns].lo = pl->earliest;
				spans[ns++].hi = pl->stage;
			}
		}
		if (ns == 0)
			continue;
		qsort(held, nh, sizeof(*held), cmp_size);
		qsort(spans, ns, sizeof(*spans), cmp_span);
		for (i = 0; i < nh; i++) {
			while (j < ns && spans[j].lo <= held[i]) {
				if (spans[j].hi > reach)
					reach = spans[j].hi;
				j++;
			}
			if (held[i] < reach) {
				bstage[nb] = held[i];
				bkey[nb++] = k;
			}
		}
	}
	if ((error = csr(&sstart, &slist, bstage, bkey, nb, g->nstages)) < 0)
		goto out;
	g->block_start = sstart;
	sstart = NULL;
	if (!(g->block_keys = malloc((nb ? nb : 1) *
	    sizeof(*g->block_keys)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < nb; i++)
		g->block_keys[i] = g->keys[slist[i]];
	for (i = 0; i < g->nstages; i++)
		qsort(g->block_keys + g->block_start[i],
		    g->block_start[i + 1] - g->block_start[i],
		    sizeof(*g->block_keys), cmp_str);
out:
	free(hstart);
	free(hlist);
	free(pnode);
	free(pkey);
	free(bstage);
	free(bkey);
	free(held);
	free(spans);
	free(sstart);
	free(slist);
	return error;
}

/* Sort each node's keys and drop repeats; updates kstart in place. */
static void
unique_keys(size_t *kstart, size_t *klist, size_t n)
{
	size_t v, i, w = 0, lo = 0;

	for (v = 0; v < n; v++) {
		size_t hi = kstart[v + 1], from = w;

		qsort(klist + lo, hi - lo, sizeof(*klist), cmp_size);
		for (i = lo; i < hi; i++)
			if (i == lo || klist[i] != klist[i - 1])
				klist[w++] = klist[i];
		kstart[v] = from;
		lo = hi;
	}
	kstart[n] = w;
}

/* Why v, placed in stage s > earliest, is not in stage s - 1. */
static void
explain_pushed(struct wf_plan_placement *pl, const struct wf_plan_graph *g,
    const struct held *h, const size_t *ks, size_t nks)
{
	size_t i, s = pl->stage - 1;

	pl->why_stage = s;
	pl->reason = WF_PLAN_REASON_PARALLELISM;
	pl->other = WF_PLAN_NONE;
	pl->key = NULL;
	for (i = 0; i < nks; i++) {
		size_t w = held_holder(h, ks[i], s);

		if (w == WF_PLAN_NONE || (pl->key &&
		    strcmp(g->keys[ks[i]], pl->key) >= 0))
			continue;
		pl->reason = WF_PLAN_REASON_CONFLICT;
		pl->other = w;
		pl->key = g->keys[ks[i]];
	}
}

int
wf_plan_graph_schedule(struct wf_plan_graph *g, size_t max_parallel)
{
	size_t n = g->n, i, nheap = 0, placed = 0;
	size_t *byrank = NULL, *ostart = NULL;
	size_t *olist = NULL, *kstart = NULL, *klist = NULL, *heap = NULL;
	struct kahn *k = NULL;
	size_t *room = NULL, *count = NULL, *stage_of = NULL, *byname = NULL;
	struct name_key *nk = NULL;
	struct rank_key *rk = NULL;
	struct held h = { NULL, NULL, NULL, 0, 0 };
	int error;

	if (g->scheduled)
		return wf_error_set(WF_ERROR, "graph already scheduled");
	g->scheduled = 1;
	if (n >= UINT32_MAX || g->nkeys >= UINT32_MAX)
		return wf_error_set(WF_ERROR, "too many workflows to plan");
	if (max_parallel > n)
		max_parallel = 0;

	byrank = malloc((n ? n : 1) * sizeof(*byrank));
	k = calloc(n ? n : 1, sizeof(*k));
	heap = malloc((n ? n : 1) * sizeof(*heap));
	room = malloc((n + 1) * sizeof(*room));
	count = calloc(n + 1, sizeof(*count));
	stage_of = malloc((n ? n : 1) * sizeof(*stage_of));
	byname = malloc((n ? n : 1) * sizeof(*byname));
	nk = malloc((n ? n : 1) * sizeof(*nk));
	rk = malloc((n ? n : 1) * sizeof(*rk));
	g->order = malloc((n ? n : 1) * sizeof(*g->order));
	g->place = calloc(n ? n : 1, sizeof(*g->place));
	if (!byrank || !k || !heap || !room || !count ||
	    !stage_of || !byname || !nk || !rk || !g->order || !g->place) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		nk[i].prefix = name_prefix(g->names[i]);
		nk[i].name = g->names[i];
		nk[i].node = i;
	}
	qsort(nk, n, sizeof(*nk), cmp_name_key);
	for (i = 0; i < n; i++) {
		byname[i] = nk[i].node;
		rk[i].priority = g->prio[nk[i].node];
		rk[i].by_name = i;
		rk[i].node = nk[i].node;
	}
	/* Already in name order: only differing priorities need a sort. */
	for (i = 1; i < n && rk[i].priority == rk[0].priority; i++)
		;
	if (i < n)
		qsort(rk, n, sizeof(*rk), cmp_rank_key);
	for (i = 0; i < n; i++) {
		byrank[i] = rk[i].node;
		k[rk[i].node].rank = (uint32_t)i;
	}
	for (i = 0; i <= n; i++)
		room[i] = i;
	for (i = 0; i < g->nedges; i++)
		k[g->edge_node[i]].indeg++;
	if ((error = csr(&ostart, &olist, g->edge_dep, g->edge_node,
	    g->nedges, n)) < 0 ||
	    (error = csr(&kstart, &klist, g->pair_node, g->pair_key,
	    g->npairs, n)) < 0)
		goto out;
	unique_keys(kstart, klist, n);
	if ((error = held_init(&h, kstart[n])) < 0)
		goto out;

	for (i = 0; i < n; i++) {
		k[i].via = UINT32_MAX;
		if (k[i].indeg == 0)
			heap_push(heap, &nheap, k[i].rank);
	}
	while (nheap > 0) {
		size_t v = byrank[heap_pop(heap, &nheap)];
		struct wf_plan_placement *pl = &g->place[v];
		const size_t *ks = klist + kstart[v];
		size_t nks = kstart[v + 1] - kstart[v], s = k[v].earliest, t;

		for (;;) {
			t = max_parallel ? room_find(room, s) : s;
			for (i = 0; i < nks; i++)
				t = held_find(&h, ks[i], t);
			if (t == s)
				break;
			s = t;
		}
		pl->stage = s;
		pl->earliest = k[v].earliest;
		pl->other = WF_PLAN_NONE;
		k[v].stage = (uint32_t)s;
		if (max_parallel && ++count[s] == max_parallel)
			room[s] = s + 1;
		if (s > pl->earliest) {
			explain_pushed(pl, g, &h, ks, nks);
		} else if (k[v].via != UINT32_MAX) {
			pl->reason = WF_PLAN_REASON_DEPENDENCY;
			pl->other = k[v].via;
			pl->why_stage = k[k[v].via].stage;
		}
		for (i = 0; i < nks; i++)
			held_put(&h, ks[i], s, v);
		g->order[placed++] = v;
		if (s + 1 > g->nstages)
			g->nstages = s + 1;
		for (i = ostart[v]; i < ostart[v + 1]; i++) {
			struct kahn *w = &k[olist[i]];

			/*
			 * Remember the latest dependency as the reason; among
			 * equals the first placed, so no names are compared.
			 */
			if (s + 1 > w->earliest) {
				w->earliest = (uint32_t)(s + 1);
				w->via = (uint32_t)v;
			}
			if (--w->indeg == 0)
				heap_push(heap, &nheap, w->rank);
		}
	}
	if (placed < n) {
		error = find_cycle(g, k);
		goto out;
	}

	/* Bucketing the nodes in name order sorts each stage by name. */
	for (i = 0; i < n; i++)
		stage_of[i] = g->place[byname[i]].stage;
	if ((error = csr(&g->stage_start, &g->stage_nodes, stage_of,
	    byname, n, g->nstages)) < 0)
		goto out;
	if ((error = find_blocking(g, kstart, klist)) < 0)
		goto out;
	error = 0;
out:
	if (error < 0) {
		/* Results are all or nothing. */
		free(g->order);
		g->order = NULL;
		free(g->place);
		g->place = NULL;
		free(g->stage_start);
		g->stage_start = NULL;
		g->nstages = 0;
	}
	free(byrank);
	free(k);
	free(heap);
	free(room);
	free(count);
	free(stage_of);
	free(byname);
	free(nk);
	free(rk);
	free(ostart);
	free(olist);
	free(kstart);
	free(klist);
	held_release(&h);
	return error;
}

/*
 * Part two: WorkflowPlan in, ExecutionPlan out.
 */

/* What one build works with; released by plan_release(). */
/*
 * What one build works with; released by build_release().  A candidate
 * is parsed with wf_workflow_parse() to check it, and what the plan
 * needs is kept here, the strings borrowed from the WorkflowPlan, so
 * the parsed workflow can go at once (a 100,000-candidate plan would
 * otherwise hold 100,000 of them).  Node i of the graph is candidate i.
 */
struct build {
	const struct wf_json_doc *doc;
	const struct wf_plan_opts *opts;
	json_t *item;
	json_t *candidates;
	int has_number;
	int64_t number;
	size_t n;			/* candidates read so far */
	json_t **defs;			/* each candidate */
	json_t **names;			/* its "name" string */
	const char **deps;		/* every depends_on, candidate by */
	size_t *dep_start;		/* candidate: n + 1 offsets */
	size_t ndeps, capdeps;
	struct wf_deliverable *dls;	/* the same for deliverables */
	size_t *dl_start;
	size_t ndls, capdls;
	struct wf_plan_graph *g;
};

static void
build_release(struct build *b)
{
	free(b->defs);
	free(b->names);
	free(b->deps);
	free(b->dep_start);
	free(b->dls);
	free(b->dl_start);
	wf_plan_graph_free(b->g);
}

/* Add v to object o under key, stealing v (NULL v means out of memory). */
static int
set_new(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		return wf_error_oom();
	return 0;
}

static int
append_new(json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v) < 0)
		return wf_error_oom();
	return 0;
}

/* An optional string-or-null field of the WorkflowPlan. */
static int
check_opt_string(const struct build *b, struct wf_jpath *path, json_t *v,
    const char *key)
{
	json_t *f = json_object_get(v, key);
	const char *s;
	int error = 0;

	if (!f || json_is_null(f))
		return 0;
	wf_jpath_push_key(path, key);
	error = wf_json_check_string(&s, b->doc, path, f);
	wf_jpath_pop(path);
	return error;
}

static int
parse_item(struct build *b, struct wf_jpath *path, json_t *v)
{
	json_t *num;
	int error = 0;

	if (!(b->item = json_object_get(v, "item")))
		return wf_json_error(b->doc, path, "missing field \"item\"");
	wf_jpath_push_key(path, "item");
	if (!json_is_object(b->item)) {
		error = wf_json_error(b->doc, path, "expected an object");
		goto out;
	}
	num = json_object_get(b->item, "number");
	if (num && !json_is_null(num)) {
		wf_jpath_push_key(path, "number");
		error = wf_json_check_int(&b->number, b->doc, path, num);
		wf_jpath_pop(path);
		b->has_number = error == 0;
	}
out:
	wf_jpath_pop(path);
	return error;
}

/* Keep what the plan needs of candidate i, parsed as w. */
static int
keep_candidate(struct build *b, size_t i, const struct wf_workflow *w)
{
	size_t j;
	void *p;

	b->defs[i] = w->def;
	b->names[i] = json_object_get(w->def, "name");
	if (b->ndeps + w->ndepends_on > b->capdeps) {
		if (!(p = grow(b->deps, &b->capdeps, b->ndeps + w->ndepends_on,
		    sizeof(*b->deps))))
			return wf_error_oom();
		b->deps = p;
	}
	for (j = 0; j < w->ndepends_on; j++)
		b->deps[b->ndeps++] = w->depends_on[j];
	b->dep_start[i + 1] = b->ndeps;
	if (b->ndls + w->ndeliverables > b->capdls) {
		if (!(p = grow(b->dls, &b->capdls, b->ndls + w->ndeliverables,
		    sizeof(*b->dls))))
			return wf_error_oom();
		b->dls = p;
	}
	for (j = 0; j < w->ndeliverables; j++)
		b->dls[b->ndls++] = w->deliverables[j];
	b->dl_start[i + 1] = b->ndls;
	return 0;
}

/* Add candidate i's node and conflict keys to the graph. */
static int
add_node(struct build *b, struct wf_jpath *path, size_t i,
    const struct wf_workflow *w)
{
	char key[256];
	size_t j, node;
	int error;

	error = wf_plan_graph_add(&node, b->g, w->name, w->priority);
	if (error == WF_ECONFLICT) {
		wf_jpath_push_key(path, "name");
		error = wf_json_error(b->doc, path, "duplicate candidate name "
		    "'%s' (also .candidates[%zu])", w->name, node);
		wf_jpath_pop(path);
		return error;
	}
	if (error < 0)
		return error;
	for (j = 0; j < w->nconflicts; j++)
		if ((error = wf_plan_graph_conflict(b->g, i,
		    w->conflicts[j])) < 0)
			return error;
	/* Names are at most 100 bytes: see wf_workflow_name_valid(). */
	for (j = 0; j < w->ndeliverables; j++) {
		snprintf(key, sizeof(key), "deliverable:%s",
		    w->deliverables[j].name);
		if ((error = wf_plan_graph_conflict(b->g, i, key)) < 0)
			return error;
	}
	return 0;
}

/* Parse the candidates and add them, their keys and edges to the graph. */
static int
parse_candidates(struct build *b, struct wf_jpath *path, json_t *v)
{
	struct wf_workflow *w = NULL;
	size_t i, j, n;
	int error = 0;

	if (!(b->candidates = json_object_get(v, "candidates")))
		return wf_json_error(b->doc, path,
		    "missing field \"candidates\"");
	wf_jpath_push_key(path, "candidates");
	if (!json_is_array(b->candidates)) {
		error = wf_json_error(b->doc, path,
		    "expected an array of candidate objects");
		goto out;
	}
	n = json_array_size(b->candidates);
	b->defs = malloc((n ? n : 1) * sizeof(*b->defs));
	b->names = malloc((n ? n : 1) * sizeof(*b->names));
	b->dep_start = calloc(n + 1, sizeof(*b->dep_start));
	b->dl_start = calloc(n + 1, sizeof(*b->dl_start));
	if (!b->defs || !b->names || !b->dep_start || !b->dl_start) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = wf_plan_graph_new(&b->g, n)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		wf_jpath_push_index(path, i);
		if ((error = wf_workflow_parse(&w, b->doc, path,
		    json_array_get(b->candidates, i),
		    WF_WORKFLOW_CANDIDATE)) < 0 ||
		    (error = add_node(b, path, i, w)) < 0 ||
		    (error = keep_candidate(b, i, w)) < 0)
			goto out;
		b->n = i + 1;
		wf_workflow_free(w);
		w = NULL;
		wf_jpath_pop(path);
	}
	/* Edges once every name is known. */
	for (i = 0; i < n; i++) {
		for (j = b->dep_start[i]; j < b->dep_start[i + 1]; j++) {
			const char *d = b->deps[j];
			size_t dep;

			if (wf_plan_graph_find(&dep, b->g, d) < 0) {
				wf_jpath_push_index(path, i);
				wf_jpath_push_key(path, "depends_on");
				wf_jpath_push_index(path, j - b->dep_start[i]);
				error = wf_json_error(b->doc, path,
				    "dependency '%s' of '%s' is not among "
				    "the candidates", d,
				    json_string_value(b->names[i]));
				goto out;
			}
			if ((error = wf_plan_graph_depend(b->g, i, dep)) < 0)
				goto out;
		}
	}
out:
	wf_workflow_free(w);
	/* On error the path is left where it failed; it is not used again. */
	if (error == 0)
		wf_jpath_pop(path);
	return error;
}

/* Report the cycle at the first edge of it, keeping the graph's words. */
static int
cycle_error(const struct build *b)
{
	struct wf_jpath path = WF_JPATH_INIT;
	const size_t *cycle;
	const char *to;
	char *msg;
	size_t n, j;
	int error;

	n = wf_plan_graph_cycle(&cycle, b->g);
	if (n == 0 || !(msg = strdup(wf_error_last())))
		return WF_EINPUT;
	to = wf_plan_graph_name(b->g, cycle[1 % n]);
	for (j = b->dep_start[cycle[0]]; j < b->dep_start[cycle[0] + 1]; j++)
		if (strcmp(b->deps[j], to) == 0)
			break;
	j -= b->dep_start[cycle[0]];
	wf_jpath_push_key(&path, "candidates");
	wf_jpath_push_index(&path, cycle[0]);
	wf_jpath_push_key(&path, "depends_on");
	wf_jpath_push_index(&path, j);
	error = wf_json_error(b->doc, &path, "%s", msg);
	free(msg);
	return error;
}

/* The names of `nodes`, sharing the candidates' name strings. */
static json_t *
json_names(const struct build *b, const size_t *nodes, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		if (append_new(a, json_incref(b->names[nodes[i]])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *
json_strings(const char *const *s, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		if (append_new(a, json_string(s[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The stages array, and the workflows array in stage then name order. */
static int
build_stages(json_t *plan, const struct build *b)
{
	json_t *stages = json_array(), *wfs = json_array(), *st;
	json_t *seq = json_string("sequential"), *par = json_string("parallel");
	struct wf_plan_stage s;
	size_t i, j;
	int error = 0;

	if (!stages || !wfs || !seq || !par) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; wf_plan_graph_stage(&s, b->g, i) == 0; i++) {
		/* stages owns st from here on. */
		if ((error = append_new(stages, st = json_object())) < 0 ||
		    (error = set_new(st, "index",
		    json_integer((json_int_t)i))) < 0 ||
		    (error = set_new(st, "run_mode",
		    json_incref(s.nnodes > 1 ? par : seq))) < 0 ||
		    (error = set_new(st, "workflows", json_names(b, s.nodes,
		    s.nnodes))) < 0 ||
		    (error = set_new(st, "blocking_conflicts",
		    json_strings(s.blocking, s.nblocking))) < 0)
			goto out;
		for (j = 0; j < s.nnodes; j++) {
			json_t *def = b->defs[s.nodes[j]];

			if (json_array_append(wfs, def) < 0) {
				error = wf_error_oom();
				goto out;
			}
		}
	}
	error = set_new(plan, "stages", stages);
	stages = NULL;
	if (error < 0 ||
	    (error = set_new(plan, "max_parallel",
	    json_integer((json_int_t)b->opts->max_parallel))) < 0 ||
	    (error = set_new(plan, "item", json_incref(b->item))) < 0)
		goto out;
	error = set_new(plan, "workflows", wfs);
	wfs = NULL;
out:
	json_decref(stages);
	json_decref(wfs);
	json_decref(seq);
	json_decref(par);
	return error;
}

/* Fill {number} and {workflow} into a deliverable path template. */
static char *
resolve_template(const char *tmpl, const char *number, const char *workflow)
{
	size_t nlen = strlen(number), wlen = strlen(workflow), len = 1;
	const char *c;
	char *out, *o;

	for (c = tmpl; *c; c++, len++)
		if (strncmp(c, "{number}", 8) == 0)
			len += nlen;
		else if (strncmp(c, "{workflow}", 10) == 0)
			len += wlen;
	if (!(o = out = malloc(len)))
		return NULL;
	for (c = tmpl; *c;) {
		if (strncmp(c, "{number}", 8) == 0) {
			memcpy(o, number, nlen);
			o += nlen;
			c += 8;
		} else if (strncmp(c, "{workflow}", 10) == 0) {
			memcpy(o, workflow, wlen);
			o += wlen;
			c += 10;
		} else {
			*o++ = *c++;
		}
	}
	*o = '\0';
	return out;
}

/*
 * A free path for `path`, already taken, of `workflow`: ".<workflow>"
 * goes before the extension of the last component (the part from its
 * last '.', unless that '.' starts it), then "-2", "-3", ... after the
 * workflow name until the path is free.  Returns malloc'ed or NULL.
 */
static char *
rename_path(const char *path, const char *workflow, const struct wf_map *taken)
{
	const char *comp = strrchr(path, '/'), *dot;
	size_t base, k, dummy, len;
	char *out;

	comp = comp ? comp + 1 : path;
	dot = strrchr(comp, '.');
	if (!dot || dot == comp)
		dot = path + strlen(path);
	base = (size_t)(dot - path);
	len = strlen(path) + strlen(workflow) + 2 + 3 * sizeof(size_t) + 2;
	if (!(out = malloc(len)))
		return NULL;
	for (k = 1;; k++) {
		if (k == 1)
			snprintf(out, len, "%.*s.%s%s", (int)base, path,
			    workflow, dot);
		else
			snprintf(out, len, "%.*s.%s-%zu%s", (int)base, path,
			    workflow, k, dot);
		if (wf_map_get(&dummy, taken, out) < 0)
			return out;
	}
}

/* One manifest entry of workflow `name`'s deliverable d. */
static int
manifest_entry(json_t *entries, struct wf_map *taken, const char *name,
    const struct wf_deliverable *d, const char *number)
{
	json_t *e, *p;
	char *path = NULL, *renamed = NULL;
	size_t dummy;
	int error;

	if ((error = append_new(entries, e = json_object())) < 0)
		return error;
	if (!(path = resolve_template(d->path, number, name))) {
		error = wf_error_oom();
		goto out;
	}
	if (wf_map_get(&dummy, taken, path) == 0 &&
	    !(renamed = rename_path(path, name, taken))) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = set_new(e, "workflow", json_string(name))) < 0 ||
	    (error = set_new(e, "name", json_string(d->name))) < 0 ||
	    (error = set_new(e, "path", p = json_string(renamed ?
	    renamed : path))) < 0 ||
	    (error = set_new(e, "template", json_string(d->path))) < 0 ||
	    (renamed && (error = set_new(e, "renamed_from",
	    json_string(path))) < 0))
		goto out;
	/* The key is the entry's own string, alive as long as the plan. */
	error = wf_map_put(NULL, taken, json_string_value(p), 0);
out:
	free(path);
	free(renamed);
	return error;
}

static int
build_manifest(json_t *plan, const struct build *b)
{
	struct wf_map taken = WF_MAP_INIT;
	const size_t *order = wf_plan_graph_order(b->g);
	json_t *m = json_object(), *entries = json_array();
	char number[32];
	size_t i, j;
	int error;

	if (b->has_number)
		snprintf(number, sizeof(number), "%" PRId64, b->number);
	else
		snprintf(number, sizeof(number), "none");
	if ((error = set_new(plan, "deliverable_manifest", m)) < 0 ||
	    (error = set_new(m, "entries", entries)) < 0)
		goto out;
	for (i = 0; i < b->n; i++) {
		size_t v = order[i];

		for (j = b->dl_start[v]; j < b->dl_start[v + 1]; j++)
			if ((error = manifest_entry(entries, &taken,
			    wf_plan_graph_name(b->g, v), &b->dls[j],
			    number)) < 0)
				goto out;
	}
out:
	wf_map_release(&taken);
	return error;
}

static json_t *
explain_entry(const struct build *b, size_t node)
{
	static const char *const reasons[] = { "none", "dependency",
	    "conflict", "parallelism" };
	struct wf_plan_placement pl;
	char detail[512];
	json_t *e;

	if (wf_plan_graph_placement(&pl, b->g, node) < 0)
		return NULL;
	switch (pl.reason) {
	case WF_PLAN_REASON_DEPENDENCY:
		snprintf(detail, sizeof(detail),
		    "depends on '%s' in stage %zu",
		    wf_plan_graph_name(b->g, pl.other), pl.why_stage);
		break;
	case WF_PLAN_REASON_CONFLICT:
		snprintf(detail, sizeof(detail),
		    "conflict key '%s' held by '%s' in stage %zu", pl.key,
		    wf_plan_graph_name(b->g, pl.other), pl.why_stage);
		break;
	case WF_PLAN_REASON_PARALLELISM:
		snprintf(detail, sizeof(detail),
		    "parallelism bound %zu reached in stage %zu",
		    b->opts->max_parallel, pl.why_stage);
		break;
	default:
		snprintf(detail, sizeof(detail),
		    "no dependency, conflict or bound held it back");
		break;
	}
	e = json_pack("{s:s, s:I, s:s, s:s}",
	    "workflow", wf_plan_graph_name(b->g, node),
	    "stage", (json_int_t)pl.stage,
	    "reason", reasons[pl.reason],
	    "detail", detail);
	return e;
}

static int
build_explain(json_t *plan, const struct build *b)
{
	const size_t *order = wf_plan_graph_order(b->g);
	json_t *a = json_array();
	size_t i;
	int error;

	if ((error = set_new(plan, "explain", a)) < 0)
		return error;
	for (i = 0; i < b->n; i++)
		if ((error = append_new(a, explain_entry(b, order[i]))) < 0)
			return error;
	return 0;
}

/* The plan up to selection_message, then the rest; no plan_id. */
static int
build_body(json_t **out, const struct build *b, json_t *v)
{
	json_t *body = json_object(), *f;
	int error;

	*out = NULL;
	if (!body)
		return wf_error_oom();
	if ((error = set_new(body, "issue_number", b->has_number ?
	    json_integer((json_int_t)b->number) : json_null())) < 0 ||
	    (error = set_new(body, "stage_count", json_integer(
	    (json_int_t)wf_plan_graph_stage_count(b->g)))) < 0 ||
	    (error = set_new(body, "workflow_count",
	    json_integer((json_int_t)b->n))) < 0 ||
	    (error = set_new(body, "allow_partial_success",
	    json_boolean(b->opts->allow_partial_success))) < 0 ||
	    (error = set_new(body, "preview_only",
	    json_boolean(b->opts->preview_only))) < 0)
		goto out;
	f = json_object_get(v, "selection_reason");
	if ((error = set_new(body, "selection_reason",
	    f ? json_incref(f) : json_null())) < 0)
		goto out;
	f = json_object_get(v, "selection_message");
	if ((error = set_new(body, "selection_message",
	    f ? json_incref(f) : json_null())) < 0 ||
	    (error = build_stages(body, b)) < 0 ||
	    (error = build_manifest(body, b)) < 0)
		goto out;
	*out = body;
	body = NULL;
out:
	json_decref(body);
	return error;
}

/* "multiwf-" and 32 hex digits: the length of a plan_id, NUL included. */
#define PLAN_ID_SIZE (8 + 32 + 1)

/*
 * Check the WorkflowPlan, schedule it and build the plan without
 * plan_id and explain (*body, a new reference), and its compact text
 * (*text, malloc'ed, *len bytes): the plan_id is the blob id of that
 * text, so it is written once for the id and the output.  On error
 * both are NULL.  b is the caller's to build_release() either way.
 */
static int
build_text(json_t **body, char **text, size_t *len, struct build *b,
    const struct wf_json_doc *doc, const struct wf_plan_opts *opts)
{
	static const char *const keys[] = { "item", "candidates",
	    "selection_reason", "selection_message", NULL };
	static const struct wf_plan_opts defaults = WF_PLAN_OPTS_INIT;
	struct wf_jpath path = WF_JPATH_INIT;
	json_t *v = doc->value;
	int error;

	*body = NULL;
	*text = NULL;
	*len = 0;
	memset(b, 0, sizeof(*b));
	b->doc = doc;
	b->opts = opts ? opts : &defaults;
	if (b->opts->version != WF_PLAN_OPTS_VERSION)
		return wf_error_set(WF_ERROR, "unsupported wf_plan_opts "
		    "version %u", b->opts->version);
	if (b->opts->max_parallel > (size_t)INT64_MAX)
		return wf_error_set(WF_ERROR, "max_parallel %zu is too large",
		    b->opts->max_parallel);
	if ((error = wf_json_check_object(doc, &path, v, keys)) < 0 ||
	    (error = check_opt_string(b, &path, v, "selection_reason")) < 0 ||
	    (error = check_opt_string(b, &path, v,
	    "selection_message")) < 0 ||
	    (error = parse_item(b, &path, v)) < 0 ||
	    (error = parse_candidates(b, &path, v)) < 0)
		return error;
	error = wf_plan_graph_schedule(b->g, b->opts->max_parallel);
	if (error == WF_EINPUT)
		error = cycle_error(b);
	if (error < 0 || (error = build_body(body, b, v)) < 0)
		return error;
	if ((error = wf_json_dump(text, len, *body, 0)) < 0) {
		json_decref(*body);
		*body = NULL;
	}
	return error;
}

/* The plan_id of a plan whose body (see build_text()) is `text`. */
static int
plan_id(char *out, const char *text, size_t len)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_oid oid;
	int error;

	if ((error = wf_hash_buf(&oid, text, len)) < 0)
		return error;
	wf_hash_hex(hex, &oid);
	snprintf(out, PLAN_ID_SIZE, "multiwf-%.32s", hex);
	return 0;
}

int
wf_plan_build(json_t **out, const struct wf_json_doc *doc,
    const struct wf_plan_opts *opts)
{
	struct build b;
	json_t *body = NULL, *plan = NULL;
	char id[PLAN_ID_SIZE], *text = NULL;
	size_t len;
	int error;

	*out = NULL;
	if ((error = build_text(&body, &text, &len, &b, doc, opts)) < 0 ||
	    (error = plan_id(id, text, len)) < 0)
		goto out;
	if (!(plan = json_object()) ||
	    (error = set_new(plan, "plan_id", json_string(id))) < 0 ||
	    json_object_update(plan, body) < 0 ||
	    (b.opts->explain && (error = build_explain(plan, &b)) < 0)) {
		error = error < 0 ? error : wf_error_oom();
		goto out;
	}
	*out = plan;
	plan = NULL;
	error = 0;
out:
	free(text);
	json_decref(body);
	json_decref(plan);
	build_release(&b);
	return error;
}

int
wf_plan_build_text(char **out, size_t *len, const struct wf_json_doc *doc,
    const struct wf_plan_opts *opts)
{
	struct build b;
	json_t *body = NULL, *explain = NULL;
	char id[PLAN_ID_SIZE], head[64], *text = NULL, *etext = NULL, *s;
	size_t blen, hlen, elen = 0, n;
	int error;

	*out = NULL;
	*len = 0;
	if ((error = build_text(&body, &text, &blen, &b, doc, opts)) < 0 ||
	    (error = plan_id(id, text, blen)) < 0)
		goto out;
	if (b.opts->explain) {
		if (!(explain = json_object())) {
			error = wf_error_oom();
			goto out;
		}
		if ((error = build_explain(explain, &b)) < 0 ||
		    (error = wf_json_dump(&etext, &elen, explain, 0)) < 0)
			goto out;
	}
	/*
	 * {"plan_id":"…", then the body's members, then ,"explain":[…] from
	 * the object {"explain":[…]}.  A body always has members.
	 */
	hlen = (size_t)snprintf(head, sizeof(head), "{\"plan_id\":\"%s\",", id);
	n = hlen + (blen - 2) + (etext ? elen - 1 : 0) + 1;
	if (!(s = realloc(text, n + 1))) {
		error = wf_error_oom();
		goto out;
	}
	text = s;
	memmove(s + hlen, s + 1, blen - 2);
	memcpy(s, head, hlen);
	if (etext) {
		s[hlen + blen - 2] = ',';
		memcpy(s + hlen + blen - 1, etext + 1, elen - 1);
	} else {
		s[n - 1] = '}';
	}
	s[n] = '\0';
	*out = text;
	*len = n;
	text = NULL;
out:
	free(text);
	free(etext);
	json_decref(explain);
	json_decref(body);
	build_release(&b);
	return error;
}

/*
 * Part three: renderings of a finished plan.  They read only the plan's
 * JSON, so a plan saved earlier renders the same.
 */

/* A growing string on a memstream; errors show at fmt_finish(). */
struct fmt {
	FILE *f;
	char *buf;
	size_t len;
};

static int
fmt_open(struct fmt *s)
{
	s->buf = NULL;
	s->len = 0;
	if (!(s->f = open_memstream(&s->buf, &s->len)))
		return wf_error_oom();
	return 0;
}

/* Close; on success *out takes the string. */
static int
fmt_finish(char **out, struct fmt *s, int error)
{
	int bad = ferror(s->f);

	if (fclose(s->f) != 0)
		bad = 1;
	if (error == 0 && bad)
		error = wf_error_oom();
	if (error < 0) {
		free(s->buf);
		return error;
	}
	*out = s->buf;
	return 0;
}

static int
not_a_plan(const char *what)
{
	return wf_error_set(WF_EINPUT, "not an execution plan: bad '%s'",
	    what);
}

/* The string at key, or NULL when absent or not a string. */
static const char *
get_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Print the strings of array a joined by sep; WF_EINPUT if not strings. */
static int
print_strings(FILE *f, const json_t *a, const char *sep, const char *what)
{
	size_t i;

	if (!json_is_array(a))
		return not_a_plan(what);
	for (i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (!s)
			return not_a_plan(what);
		fprintf(f, "%s%s", i ? sep : "", s);
	}
	return 0;
}

static int
text_stages(FILE *f, const json_t *plan)
{
	const json_t *stages = json_object_get(plan, "stages"), *st;
	size_t i;
	int error;

	if (!json_is_array(stages))
		return not_a_plan("stages");
	json_array_foreach(stages, i, st) {
		const char *mode = get_str(st, "run_mode");
		const json_t *bc = json_object_get(st, "blocking_conflicts");

		if (!mode)
			return not_a_plan("stages");
		fprintf(f, "stage %zu, %s: ", i, mode);
		if ((error = print_strings(f, json_object_get(st, "workflows"),
		    ", ", "stages")) < 0)
			return error;
		fputc('\n', f);
		if (json_array_size(bc) > 0) {
			fputs("  blocking conflicts: ", f);
			if ((error = print_strings(f, bc, ", ", "stages")) < 0)
				return error;
			fputc('\n', f);
		}
	}
	return 0;
}

static int
text_manifest(FILE *f, const json_t *plan)
{
	const json_t *m = json_object_get(plan, "deliverable_manifest");
	const json_t *entries = json_object_get(m, "entries"), *e;
	size_t i;

	if (!json_is_array(entries))
		return not_a_plan("deliverable_manifest");
	fputs("\ndeliverables:", f);
	if (json_array_size(entries) == 0)
		fputs(" none", f);
	fputc('\n', f);
	json_array_foreach(entries, i, e) {
		const char *w = get_str(e, "workflow"), *n = get_str(e, "name");
		const char *p = get_str(e, "path");
		const char *from = get_str(e, "renamed_from");

		if (!w || !n || !p)
			return not_a_plan("deliverable_manifest");
		fprintf(f, "  %s/%s: %s", w, n, p);
		if (from)
			fprintf(f, " (renamed from %s)", from);
		fputc('\n', f);
	}
	return 0;
}

static int
text_explain(FILE *f, const json_t *plan)
{
	const json_t *ex = json_object_get(plan, "explain"), *e;
	size_t i;

	if (!ex)
		return 0;
	if (!json_is_array(ex))
		return not_a_plan("explain");
	fputs("\nexplain:\n", f);
	json_array_foreach(ex, i, e) {
		const char *w = get_str(e, "workflow");
		const char *r = get_str(e, "reason");
		const char *d = get_str(e, "detail");
		json_t *st = json_object_get(e, "stage");

		if (!w || !r || !d || !json_is_integer(st))
			return not_a_plan("explain");
		fprintf(f, "  %s in stage %" JSON_INTEGER_FORMAT ": %s: %s\n",
		    w, json_integer_value(st), r, d);
	}
	return 0;
}

int
wf_plan_format_text(char **out, const json_t *plan)
{
	const json_t *num, *mp, *stages;
	const char *id, *reason, *message;
	struct fmt s;
	int error;

	*out = NULL;
	id = get_str(plan, "plan_id");
	num = json_object_get(plan, "issue_number");
	mp = json_object_get(plan, "max_parallel");
	stages = json_object_get(plan, "stages");
	if (!id)
		return not_a_plan("plan_id");
	if (!json_is_integer(mp))
		return not_a_plan("max_parallel");
	if (!json_is_array(stages))
		return not_a_plan("stages");
	reason = get_str(plan, "selection_reason");
	message = get_str(plan, "selection_message");
	if ((error = fmt_open(&s)) < 0)
		return error;
	fprintf(s.f, "plan: %s\n", id);
	if (json_is_integer(num))
		fprintf(s.f, "issue: %" JSON_INTEGER_FORMAT "\n",
		    json_integer_value(num));
	else
		fputs("issue: none\n", s.f);
	fprintf(s.f, "selection: %s%s%s\n", reason ? reason : "none",
	    message ? ": " : "", message ? message : "");
	fprintf(s.f, "workflows: %zu in %zu stage%s, ",
	    json_array_size(json_object_get(plan, "workflows")),
	    json_array_size(stages), json_array_size(stages) == 1 ? "" : "s");
	if (json_integer_value(mp) > 0)
		fprintf(s.f, "at most %" JSON_INTEGER_FORMAT " per stage\n",
		    json_integer_value(mp));
	else
		fputs("no bound per stage\n", s.f);
	fprintf(s.f, "allow partial success: %s\npreview only: %s\n\n",
	    json_is_true(json_object_get(plan, "allow_partial_success")) ?
	    "yes" : "no",
	    json_is_true(json_object_get(plan, "preview_only")) ? "yes" : "no");
	if ((error = text_stages(s.f, plan)) < 0 ||
	    (error = text_manifest(s.f, plan)) < 0 ||
	    (error = text_explain(s.f, plan)) < 0)
		goto out;
out:
	return fmt_finish(out, &s, error);
}

/* A DOT quoted string. */
static void
dot_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else if ((unsigned char)*s < 0x20)
			fputc(' ', f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static int
dot_stages(FILE *f, const json_t *plan)
{
	const json_t *stages = json_object_get(plan, "stages"), *st, *w;
	size_t i, j;

	if (!json_is_array(stages))
		return not_a_plan("stages");
	json_array_foreach(stages, i, st) {
		const json_t *ws = json_object_get(st, "workflows");
		const json_t *bc = json_object_get(st, "blocking_conflicts");
		const char *mode = get_str(st, "run_mode");

		if (!mode || !json_is_array(ws))
			return not_a_plan("stages");
		fprintf(f, "\tsubgraph \"cluster_%zu\" {\n\t\tlabel=", i);
		fprintf(f, "\"stage %zu (%s)", i, mode);
		json_array_foreach(bc, j, w) {
			const char *k = json_string_value(w);

			if (!k)
				return not_a_plan("stages");
			fputs(j ? ", " : "\\nblocking: ", f);
			/* Inside the label's quotes: escape without quoting. */
			for (; *k; k++) {
				if (*k == '"' || *k == '\\')
					fputc('\\', f);
				fputc((unsigned char)*k < 0x20 ? ' ' : *k, f);
			}
		}
		fputs("\";\n", f);
		json_array_foreach(ws, j, w) {
			if (!json_is_string(w))
				return not_a_plan("stages");
			fputs("\t\t", f);
			dot_quote(f, json_string_value(w));
			fputs(";\n", f);
		}
		fputs("\t}\n", f);
	}
	return 0;
}

static int
dot_edges(FILE *f, const json_t *plan)
{
	const json_t *wfs = json_object_get(plan, "workflows"), *w, *d;
	size_t i, j;

	if (!json_is_array(wfs))
		return not_a_plan("workflows");
	json_array_foreach(wfs, i, w) {
		const char *name = get_str(w, "name");
		const json_t *deps = json_object_get(w, "depends_on");

		if (!name)
			return not_a_plan("workflows");
		json_array_foreach(deps, j, d) {
			if (!json_is_string(d))
				return not_a_plan("workflows");
			fputc('\t', f);
			dot_quote(f, json_string_value(d));
			fputs(" -> ", f);
			dot_quote(f, name);
			fputs(";\n", f);
		}
	}
	return 0;
}

int
wf_plan_format_dot(char **out, const json_t *plan)
{
	const char *id = get_str(plan, "plan_id");
	struct fmt s;
	int error;

	*out = NULL;
	if (!id)
		return not_a_plan("plan_id");
	if ((error = fmt_open(&s)) < 0)
		return error;
	fputs("digraph ", s.f);
	dot_quote(s.f, id);
	fputs(" {\n\trankdir=LR;\n\tnode [shape=box];\n", s.f);
	if ((error = dot_stages(s.f, plan)) < 0 ||
	    (error = dot_edges(s.f, plan)) < 0)
		goto out;
	fputs("}\n", s.f);
out:
	return fmt_finish(out, &s, error);
}
