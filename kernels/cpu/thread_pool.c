/*
 * thread_pool.c - workers that wake together, each run its share, and report.
 *
 * A generation counter under one mutex is the whole protocol: run() bumps it
 * and broadcasts, every worker runs fn once for the new generation and
 * decrements a pending count, the last one signals the caller. The caller
 * does share 0 itself instead of sleeping. Kernels only use the pool for
 * batches large enough that a wake-up (tens of microseconds) is noise.
 */
#include "thread_pool.h"

#include <pthread.h>
#include <stdlib.h>

struct ps_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    unsigned long generation;
    int pending;
    int stopping;
    ps_pool_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    ps_pool *pool;
    int index;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *arg = p;
    ps_pool *pool = arg->pool;
    int index = arg->index;
    free(arg);

    unsigned long seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (pool->generation == seen && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stopping) break;
        seen = pool->generation;
        ps_pool_fn fn = pool->fn;
        void *ctx = pool->ctx;
        pthread_mutex_unlock(&pool->mu);

        fn(ctx, index, pool->threads);

        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0) pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

ps_pool *ps_pool_create(int threads)
{
    if (threads < 2) return NULL;
    ps_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads;
    pool->tids = calloc((size_t)threads, sizeof *pool->tids);
    if (!pool->tids) {
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (arg) *arg = (worker_arg){pool, i};
        if (!arg || pthread_create(&pool->tids[i], NULL, worker_main, arg) != 0) {
            free(arg);
            pool->threads = i; /* join only what started */
            ps_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void ps_pool_free(ps_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->threads; i++)
        pthread_join(pool->tids[i], NULL);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mu);
    free(pool->tids);
    free(pool);
}

int ps_pool_size(const ps_pool *pool)
{
    return pool->threads;
}

void ps_pool_run(ps_pool *pool, ps_pool_fn fn, void *ctx)
{
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->pending = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);

    fn(ctx, 0, pool->threads);

    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}
