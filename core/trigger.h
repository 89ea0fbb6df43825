/*
 * trigger.h - when a processor's PFP is high enough, for long enough, to act
 * on, and when a workload may be moved again.
 *
 * Hysteresis per processor: a tick with PFP above the processor's threshold
 * counts one up; a tick below the reset level, the threshold lowered by
 * reset_margin in log-odds, clears the count; a tick in between (the dead
 * band) leaves the count as it is. The processor is triggered while the
 * count is at least hold_ticks. So a single noisy spike does not trigger, a
 * PFP hovering around the threshold neither flaps on nor off, and a
 * triggered processor stays triggered until its PFP really drops.
 *
 * The margin is in log-odds, like the threshold's steps (threshold.h),
 * because the threshold lives anywhere in [0.5, 0.9999]: a fixed 0.05 in
 * probability would be a dead band of half the scale at 0.9999 and of
 * nothing at all meaningful at 0.5.
 *
 * Cooldown per workload: once a move of w has been decided at tick t, w is
 * not moved again before t + cooldown_ticks, whatever its processor does,
 * so a workload cannot ping-pong between two flapping processors.
 *
 * Ticks are the manager's clock (one per PFP batch); a cooldown in seconds
 * is cooldown_ticks times the tick period.
 */
#ifndef PRESHIFT_TRIGGER_H
#define PRESHIFT_TRIGGER_H

#include "cluster.h"

#include <stddef.h>
#include <stdint.h>

/* The tick before any move: cooldowns measured from it have long expired. */
#define PS_TICK_NEVER INT64_MIN

typedef struct ps_trigger_config {
    uint32_t hold_ticks;     /* ticks above threshold before acting, >= 1 (default 3) */
    double reset_margin;     /* dead band below the threshold, log-odds, >= 0 (default 0.5) */
    uint32_t cooldown_ticks; /* ticks between two moves of one workload (default 30) */
} ps_trigger_config;

/* A triggered processor and the PFP it was triggered with. */
typedef struct ps_triggered {
    uint32_t processor;
    double pfp;
} ps_triggered;

typedef struct ps_trigger {
    ps_trigger_config cfg;
    uint32_t max_processors, max_workloads;
    uint32_t *held;     /* [max_processors] hysteresis counters */
    int64_t *last_move; /* [max_workloads] tick of the last decided move */
    ps_triggered *list; /* [max_processors] triggered this tick, highest PFP first */
    uint32_t n_triggered;
} ps_trigger;

ps_trigger_config ps_trigger_default_config(void);
/* PS_EINVAL for hold_ticks 0 or a negative or non-finite margin. */
int ps_trigger_config_check(const ps_trigger_config *cfg, char *err, size_t errlen);

/* State for every id of c's ranges; 0, PS_EINVAL or PS_ENOMEM. */
int ps_trigger_init(ps_trigger *t, const ps_trigger_config *cfg, const ps_cluster *c, char *err,
                    size_t errlen);
void ps_trigger_free(ps_trigger *t);

/*
 * One tick: update every processor's counter from its PFP and its class's
 * threshold (class_threshold[cls], each in (0, 1)), and list the triggered
 * processors in t->list, highest PFP first, ties by lower id. Absent or
 * dead processors have their counter cleared. Returns the number triggered.
 * O(processors + triggered log triggered), no allocation.
 */
uint32_t ps_trigger_update(ps_trigger *t, const ps_cluster *c, const double *class_threshold);

/* A slot reused for a new processor or workload starts with a clean history. */
void ps_trigger_forget_processor(ps_trigger *t, uint32_t p);
void ps_trigger_forget_workload(ps_trigger *t, uint32_t w);

static inline uint32_t ps_trigger_held(const ps_trigger *t, uint32_t p)
{
    return t->held[p];
}

static inline int ps_trigger_in_cooldown(const ps_trigger *t, uint32_t w, int64_t tick)
{
    int64_t last = t->last_move[w];
    /* Compare as a difference only when it cannot overflow: last is never after tick. */
    return last != PS_TICK_NEVER && last <= tick && tick - last < (int64_t)t->cfg.cooldown_ticks;
}

static inline void ps_trigger_note_move(ps_trigger *t, uint32_t w, int64_t tick)
{
    t->last_move[w] = tick;
}

#endif
