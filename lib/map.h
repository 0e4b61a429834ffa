#ifndef WF_MAP_H
#define WF_MAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * A map from strings to size_t values: open addressing with linear
 * probing in a power-of-two table kept at most half full, so lookups
 * cost one hash and, nearly always, one string comparison.  Keys are
 * borrowed: each must stay valid and unchanged while it is in the map.
 *
 *	struct wf_map m = WF_MAP_INIT;
 *	...
 *	wf_map_release(&m);
 */
struct wf_map_slot {
	const char *key;	/* NULL marks an empty slot */
	uint64_t hash;
	size_t value;
};

struct wf_map {
	struct wf_map_slot *slots;	/* one cache line holds a probe */
	size_t cap;		/* 0 or a power of two */
	size_t len;
};

#define WF_MAP_INIT { NULL, 0, 0 }

/* Set up an empty map (the same as WF_MAP_INIT). */
void wf_map_init(struct wf_map *m);

/* Free the table (not the keys) and leave an empty map; NULL is a no-op. */
void wf_map_release(struct wf_map *m);

/*
 * Make room for `n` keys in all, so that many puts will not rehash.
 * Returns 0 or WF_ENOMEM (the map is unchanged).
 */
int wf_map_reserve(struct wf_map *m, size_t n);

/*
 * Add `key` with `value`.  When the key is already there, its value is
 * left alone, *out (if not NULL) receives the existing value and the
 * result is WF_ECONFLICT without an error message, so callers can word
 * it.  Otherwise *out receives `value` and the result is 0; WF_ENOMEM
 * leaves the map unchanged.
 */
int wf_map_put(size_t *out, struct wf_map *m, const char *key, size_t value);

/*
 * Look `key` up: 0 with its value in *out, or WF_ENOTFOUND (no message,
 * *out untouched).
 */
int wf_map_get(size_t *out, const struct wf_map *m, const char *key);

/* The hash wf_map uses (64-bit FNV-1a), for callers keying their own. */
uint64_t wf_map_hash(const char *s);

#endif
