/*
 * thread_pool.h - a fixed set of workers that run one function together.
 *
 * ps_pool_run(pool, fn, ctx) calls fn(ctx, i, n) once for every i in [0, n)
 * (n = the pool's size, the caller's thread being worker 0) and returns when
 * all have finished. That is all a kernel needs: split rows into n shares,
 * no queue, no futures.
 */
#ifndef PRESHIFT_THREAD_POOL_H
#define PRESHIFT_THREAD_POOL_H

typedef struct ps_pool ps_pool;
typedef void (*ps_pool_fn)(void *ctx, int index, int count);

/* NULL on failure. threads >= 2 (threads - 1 workers are started). */
ps_pool *ps_pool_create(int threads);
void ps_pool_free(ps_pool *pool);
int ps_pool_size(const ps_pool *pool);
void ps_pool_run(ps_pool *pool, ps_pool_fn fn, void *ctx);

#endif
