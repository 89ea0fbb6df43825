/*
 * sim_agent.h - the transfer agent of a simulated cluster: one REP endpoint
 * standing in for every processor (as `preshift agent --any-processor`),
 * answering the shifting manager's transfer protocol (docs/transfer.md)
 * with what the simulated world (core/sim_world.h) does.
 *
 * A destination's prepare is the request that moves something:
 *
 *   - its source (the prepare's peer) has been silent for longer than the
 *     manager's failure timeout: a failover, ps_sim_failover at once,
 *     answered ok (or refused when the world refuses it);
 *   - otherwise a shift: ps_sim_shift starts the world's copy and the
 *     prepare is held until the world ends that transfer (its ticks later,
 *     in simulated time): ok when it committed, or when its source failed
 *     mid-copy (the world restarts the workload on the destination then),
 *     refused when the copy failed or the destination failed; refused at
 *     once when the world refuses the shift (its host has failed, a replica
 *     conflict, ...).
 *
 * Every other request (the source's prepare, commits, rollbacks, status)
 * is the bundled agent's state machine (server/transfer_agent.h) and
 * touches nothing in the world. Each transfer id reaches the world at
 * most once: resent prepares while one is held are answered together
 * when it ends, and later repeats are answered from the table.
 *
 * Determinism: requests are received on the caller's thread, only when it
 * pumps; new destination prepares are kept pending and applied to the
 * world by ps_sim_agent_apply_pending in transfer id order (the manager's
 * order of decision), whatever order the network delivered them in. The
 * answers that end a destination's wait go out in id order too, one
 * transfer at a time: the next once the manager's last message of the
 * previous one has been answered, so that the manager finishes transfers
 * in id order.
 *
 * Not thread-safe: one caller (the simulation's thread) drives it.
 */
#ifndef PRESHIFT_SIM_AGENT_H
#define PRESHIFT_SIM_AGENT_H

#include "core/sim_world.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_sim_agent ps_sim_agent;

typedef struct ps_sim_agent_config {
    const char *url;        /* REP address to listen on (ipc://, tcp://) */
    ps_sim_world *world;    /* what prepares act on; borrowed */
    double t0;              /* stream time (seconds) of tick 0 */
    double failure_timeout; /* the manager's, in stream seconds: when a prepare is a failover */
} ps_sim_agent_config;

typedef struct ps_sim_agent_stats {
    uint64_t messages;      /* requests received (resends included) */
    uint64_t errors;        /* answered with an error (undecodable, unknown names) */
    uint64_t transfers;     /* distinct transfer ids whose destination prepare arrived */
    uint64_t shifts;        /* ps_sim_shift calls the world accepted */
    uint64_t failovers;     /* ps_sim_failover calls the world accepted */
    uint64_t refused;       /* destination prepares refused (by the world, or the copy failed) */
    uint64_t accepted;      /* destination prepares answered ok */
    uint64_t resends;       /* repeated destination prepares while one was pending or held */
    uint64_t held_max;      /* most prepares held at once */
    uint64_t divergences;   /* the manager's map disagreed with the world's (should stay 0) */
    uint64_t table_repeats; /* requests the table answered without a change */
} ps_sim_agent_stats;

/* Listen on cfg->url. NULL with the reason in err. */
ps_sim_agent *ps_sim_agent_open(const ps_sim_agent_config *cfg, char *err, size_t errlen);
void ps_sim_agent_close(ps_sim_agent *a);

/*
 * Receive and answer what has arrived, waiting up to wait_ms for the first
 * message (0: do not wait). New destination prepares are kept pending.
 * Returns how many messages were handled, or < 0 on a fatal error.
 */
int ps_sim_agent_pump(ps_sim_agent *a, int wait_ms, char *err, size_t errlen);

/*
 * Apply the pending destination prepares to the world, in transfer id
 * order: within a tick only (between ps_sim_world_begin_tick and
 * ps_sim_world_end_tick). Answers those that end at once. 0, or < 0 on a
 * fatal error (out of memory, a world call outside a tick).
 */
int ps_sim_agent_apply_pending(ps_sim_agent *a, char *err, size_t errlen);

/*
 * After ps_sim_world_begin_tick: answer the held prepares of the world's
 * transfers that ended at this tick. 0 or < 0.
 */
int ps_sim_agent_tick_ends(ps_sim_agent *a, char *err, size_t errlen);

/* Distinct transfers whose destination prepare arrived; pending ones (not yet applied); held
   ones (the world copies, or the answer waits its turn). */
uint64_t ps_sim_agent_seen(const ps_sim_agent *a);
size_t ps_sim_agent_pending(const ps_sim_agent *a);
size_t ps_sim_agent_held(const ps_sim_agent *a);

ps_sim_agent_stats ps_sim_agent_get_stats(const ps_sim_agent *a);

/* The manager's transfer id of world transfer tr, 0 if none. */
int64_t ps_sim_agent_transfer_id(const ps_sim_agent *a, uint32_t tr);

#endif
