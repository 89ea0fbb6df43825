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
    p->table = calloc(size, sizeof *p->table);
    if (!p->rec || !p->table) {
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
    free(p->table);
    memset(p, 0, sizeof *p);
}

/* The table index holding id, or the empty one where it would go. */
static size_t probe(const ps_procs *p, uint64_t id)
{
    size_t i = (size_t)(mix(id ^ p->seed) & p->mask);
    while (p->table[i] && p->rec[p->table[i] - 1].id != id)
        i = (i + 1) & p->mask;
    return i;
}

long ps_procs_find(const ps_procs *p, uint64_t id)
{
    uint32_t e = p->table[probe(p, id)];
    return e ? (long)e - 1 : -1;
}

long ps_procs_get(ps_procs *p, uint64_t id)
{
    size_t i = probe(p, id);
    if (p->table[i]) return (long)p->table[i] - 1;
    if (p->n == p->cap) return -1;
    size_t slot = p->n++;
    p->rec[slot] = (ps_proc_rec){.id = id, .latest = {.id = id, .top = -1}};
    p->table[i] = (uint32_t)slot + 1;
    return (long)slot;
}
