#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "map.h"

uint64_t
wf_map_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	/* Mix the high bits down: the table uses the low ones. */
	h ^= h >> 29;
	return h;
}

void
wf_map_init(struct wf_map *m)
{
	memset(m, 0, sizeof(*m));
}

void
wf_map_release(struct wf_map *m)
{
	if (!m)
		return;
	free(m->slots);
	wf_map_init(m);
}

static size_t
slot_of(const struct wf_map *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1, i = (size_t)h & mask;
	const struct wf_map_slot *s;

	while ((s = &m->slots[i])->key &&
	    (s->hash != h || strcmp(s->key, key) != 0))
		i = (i + 1) & mask;
	return i;
}

static int
resize(struct wf_map *m, size_t cap)
{
	struct wf_map n = WF_MAP_INIT;
	size_t i;

	if (!(n.slots = calloc(cap, sizeof(*n.slots))))
		return wf_error_oom();
	n.cap = cap;
	n.len = m->len;
	for (i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			n.slots[slot_of(&n, m->slots[i].key,
			    m->slots[i].hash)] = m->slots[i];
	wf_map_release(m);
	*m = n;
	return 0;
}

int
wf_map_reserve(struct wf_map *m, size_t n)
{
	size_t cap = 16;

	if (n > SIZE_MAX / 4 / sizeof(*m->slots))
		return wf_error_oom();
	while (cap < 2 * n)
		cap *= 2;
	if (cap <= m->cap)
		return 0;
	return resize(m, cap);
}

int
wf_map_put(size_t *out, struct wf_map *m, const char *key, size_t value)
{
	uint64_t h = wf_map_hash(key);
	struct wf_map_slot *s;
	int error;

	if (2 * (m->len + 1) > m->cap &&
	    (error = wf_map_reserve(m, m->cap > m->len + 1 ?
	    m->cap : m->len + 1)) < 0)
		return error;
	s = &m->slots[slot_of(m, key, h)];
	if (s->key) {
		if (out)
			*out = s->value;
		return WF_ECONFLICT;
	}
	s->key = key;
	s->hash = h;
	s->value = value;
	m->len++;
	if (out)
		*out = value;
	return 0;
}

int
wf_map_get(size_t *out, const struct wf_map *m, const char *key)
{
	const struct wf_map_slot *s;

	if (m->len == 0)
		return WF_ENOTFOUND;
	s = &m->slots[slot_of(m, key, wf_map_hash(key))];
	if (!s->key)
		return WF_ENOTFOUND;
	*out = s->value;
	return 0;
}
