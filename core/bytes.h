/*
 * bytes.h - little-endian fixed-width encoding through bounds-checked
 * cursors, for the per-processor state snapshots (scorer_state.c and the
 * state of the models it is made of).
 *
 * Every value goes through byte-by-byte shifts, so the encoding is the same
 * on any host and nothing is ever read through a misaligned pointer. A
 * cursor never reads or writes past its end: a read past the end returns 0
 * and marks the cursor short, so a decoder can read a whole section and
 * check once, naming the section, instead of checking every value.
 */
#ifndef PRESHIFT_BYTES_H
#define PRESHIFT_BYTES_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128,
               "state snapshots store IEEE 754 binary32 floats");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53 && DBL_MAX_EXP == 1024,
               "state snapshots store IEEE 754 binary64 doubles");

static inline void ps_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void ps_put_u64(uint8_t *p, uint64_t v)
{
    ps_put_u32(p, (uint32_t)v);
    ps_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t ps_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ps_get_u64(const uint8_t *p)
{
    return (uint64_t)ps_get_u32(p) | (uint64_t)ps_get_u32(p + 4) << 32;
}

/* ---- writing: the caller sized the buffer, the cursor only guards it ---- */

typedef struct ps_wcur {
    uint8_t *p;
    size_t len, pos;
    int over; /* a write did not fit: a sizing bug, reported by the caller */
} ps_wcur;

static inline ps_wcur ps_wcur_init(uint8_t *p, size_t len)
{
    return (ps_wcur){.p = p, .len = len};
}

static inline uint8_t *ps_wcur_take(ps_wcur *w, size_t n)
{
    if (w->over || n > w->len - w->pos) {
        w->over = 1;
        return NULL;
    }
    uint8_t *p = w->p + w->pos;
    w->pos += n;
    return p;
}

static inline void ps_w_bytes(ps_wcur *w, const void *src, size_t n)
{
    uint8_t *p = ps_wcur_take(w, n);
    if (p && n) memcpy(p, src, n);
}

static inline void ps_w_u8(ps_wcur *w, uint8_t v)
{
    uint8_t *p = ps_wcur_take(w, 1);
    if (p) *p = v;
}

static inline void ps_w_u32(ps_wcur *w, uint32_t v)
{
    uint8_t *p = ps_wcur_take(w, 4);
    if (p) ps_put_u32(p, v);
}

static inline void ps_w_u64(ps_wcur *w, uint64_t v)
{
    uint8_t *p = ps_wcur_take(w, 8);
    if (p) ps_put_u64(p, v);
}

static inline void ps_w_f32(ps_wcur *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    ps_w_u32(w, u);
}

static inline void ps_w_f64(ps_wcur *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    ps_w_u64(w, u);
}

/* ---- reading: untrusted bytes ---- */

typedef struct ps_rcur {
    const uint8_t *p;
    size_t len, pos;
    int shrt; /* a read went past the end: the input is truncated */
} ps_rcur;

static inline ps_rcur ps_rcur_init(const uint8_t *p, size_t len)
{
    return (ps_rcur){.p = p, .len = len};
}

static inline const uint8_t *ps_rcur_take(ps_rcur *r, size_t n)
{
    if (r->shrt || n > r->len - r->pos) {
        r->shrt = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static inline uint8_t ps_r_u8(ps_rcur *r)
{
    const uint8_t *p = ps_rcur_take(r, 1);
    return p ? *p : 0;
}

static inline uint32_t ps_r_u32(ps_rcur *r)
{
    const uint8_t *p = ps_rcur_take(r, 4);
    return p ? ps_get_u32(p) : 0;
}

static inline uint64_t ps_r_u64(ps_rcur *r)
{
    const uint8_t *p = ps_rcur_take(r, 8);
    return p ? ps_get_u64(p) : 0;
}

static inline float ps_r_f32(ps_rcur *r)
{
    uint32_t u = ps_r_u32(r);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline double ps_r_f64(ps_rcur *r)
{
    uint64_t u = ps_r_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Two's complement without relying on the implementation-defined conversion. */
static inline int32_t ps_r_i32(ps_rcur *r)
{
    uint32_t u = ps_r_u32(r);
    if (u <= (uint32_t)INT32_MAX) return (int32_t)u;
    return -(int32_t)(~u) - 1;
}

/* Bytes left, for checking a declared count against what is there before
 * allocating for it. */
static inline size_t ps_rcur_left(const ps_rcur *r)
{
    return r->shrt ? 0 : r->len - r->pos;
}

#endif
