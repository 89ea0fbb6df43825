#include "serve_procs.h"

#include <stdlib.h>
#include <string.h>

/* splitmix64's finalizer: every input bit reaches every output bit. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

int ps_procs_init(ps_procs *p, size_t cap, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    if (cap == 0 || cap > UINT32_MAX / 4) return -1;
    /* At most half full, so that a probe ends after a few entries. */
    size_t size = 16;
    while (size < 2 * cap)
        size *= 2;
    p->rec = calloc(cap, sizeof *p->rec);
    p->free = malloc(cap * sizeof *p->free);
    p->table = calloc(size, sizeof *p->table);
    if (!p->rec || !p->free || !p->table) {
        ps_procs_free(p);
        return -1;
    }
    p->cap = cap;
    p->mask = size - 1;
    p->seed = seed;
    return 0;
}

void ps_procs_free(ps_procs *p)
{
    free(p->rec);
    free(p->free);
    free(p->table);
    memset(p, 0, sizeof *p);
}

static size_t home(const ps_procs *p, uint64_t id)
{
    return (size_t)(mix(id ^ p->seed) & p->mask);
}

/* The table index holding id, or the empty one where it would go. */
static size_t probe(const ps_procs *p, uint64_t id)
{
    size_t i = home(p, id);
    while (p->table[i] && p->rec[p->table[i] - 1].id != id)
        i = (i + 1) & p->mask;
    return i;
}

long ps_procs_find(const ps_procs *p, uint64_t id)
{
    uint32_t e = p->table[probe(p, id)];
    return e ? (long)e - 1 : -1;
}

static void take(ps_procs *p, size_t at, uint64_t id, uint32_t slot)
{
    p->rec[slot] = (ps_proc_rec){.id = id, .used = 1, .latest = {.id = id, .top = -1}};
    p->table[at] = slot + 1;
    p->n++;
    if (slot >= p->hi) p->hi = (size_t)slot + 1;
}

long ps_procs_get(ps_procs *p, uint64_t id)
{
    size_t i = probe(p, id);
    if (p->table[i]) return (long)p->table[i] - 1;
    if (p->n == p->cap) return -1;
    uint32_t slot = p->nfree ? p->free[--p->nfree] : (uint32_t)p->hi;
    take(p, i, id, slot);
    return (long)slot;
}

int ps_procs_put(ps_procs *p, uint64_t id, uint32_t slot)
{
    /* Only into a table that has never given a slot back. */
    if (slot >= p->cap || p->rec[slot].used || p->nfree) return -1;
    size_t i = probe(p, id);
    if (p->table[i]) return -1;
    take(p, i, id, slot);
    return 0;
}

void ps_procs_restored(ps_procs *p)
{
    /* Pushed from the top, so the lowest free slot is taken first. */
    p->nfree = 0;
    for (size_t s = p->hi; s-- > 0;)
        if (!p->rec[s].used) p->free[p->nfree++] = (uint32_t)s;
}

void ps_procs_remove(ps_procs *p, uint32_t slot)
{
    if (slot >= p->hi || !p->rec[slot].used) return;
    size_t i = probe(p, p->rec[slot].id);
    /* Backward shift: pull every later entry of the probe chain that may
     * live at the hole into it, so that no lookup stops early. */
    for (size_t j = (i + 1) & p->mask; p->table[j]; j = (j + 1) & p->mask) {
        size_t h = home(p, p->rec[p->table[j] - 1].id);
        /* The entry may move to i when its home is not in (i, j], cyclically. */
        int between = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!between) {
            p->table[i] = p->table[j];
            i = j;
        }
    }
    p->table[i] = 0;
    p->rec[slot] = (ps_proc_rec){0};
    p->n--;
    p->free[p->nfree++] = slot;
}
