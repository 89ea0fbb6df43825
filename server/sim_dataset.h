/*
 * sim_dataset.h - the simulator's metric data: a directory in the layout of
 * ../shared/data/asd/ (its README.md), loaded into the series that
 * core/sim_world.h replays.
 *
 *   DIR/train/NAME.txt[.gz]       healthy history: rows of comma-separated floats
 *   DIR/test/NAME.txt[.gz]        the series replayed, same column count
 *   DIR/test_label/NAME.txt[.gz]  one 0 or 1 per test row
 *   DIR/interpretation_label/NAME.txt[.gz]   optional: "start-end:m,m,..." per line
 *
 * An entity is a NAME present in train/, test/ and test_label/; a NAME in
 * one of them but not the others is refused, as is NAME.txt beside
 * NAME.txt.gz. Files are read with zlib's gzopen, which reads plain and
 * gzip files alike (whatever the suffix says). Other files are ignored.
 * Entities are sorted by name, digit runs compared as numbers (omi-2
 * before omi-10), so that processor p replays entity p mod E in a stable
 * order.
 *
 * Strict: every malformed input is refused with FILE:LINE:COL (COL the
 * 1-based field) and what is wrong: a value that is empty, not a number,
 * NaN, infinite or beyond the float range; a row with another column
 * count than the first row of the first train file; a blank line between
 * rows (blank lines at the end are ignored; CRLF is accepted); a NUL byte;
 * a label other than 0 or 1; a label count other than the test row count;
 * an empty file. Interpretation lines must name 0-based test rows
 * start <= end inside one labelled event and 1-based metrics within the
 * column count; their metrics are merged per event (a labelled event may
 * be split over several lines). anomaly_type.txt and the like are ignored.
 *
 * Values are kept as floats: ASD's 12 entities take about 12 MiB.
 */
#ifndef PRESHIFT_SIM_DATASET_H
#define PRESHIFT_SIM_DATASET_H

#include "core/sim_world.h"

#include <stddef.h>
#include <stdint.h>

enum {
    PS_SIMDATA_EPARSE = -190, /* malformed or inconsistent: FILE:LINE:COL: what */
    PS_SIMDATA_EIO = -191,    /* a directory or file could not be opened or read */
};

/* Lines longer than this are refused; files larger than PS_SIMDATA_MAX_BYTES too. */
#define PS_SIMDATA_MAX_LINE ((size_t)1 << 20)
#define PS_SIMDATA_MAX_BYTES ((size_t)1 << 31)

typedef struct ps_sim_entity {
    char *name;
    ps_sim_event *events; /* maximal runs of 1s in the labels */
    uint32_t n_events;
    /* interpretation_label/: the 0-based metrics explaining event i are
       metrics[metric_start[i] .. metric_start[i + 1]), ascending; both NULL
       when the entity has no interpretation file. */
    uint32_t *metric_start, *metrics;
} ps_sim_entity;

typedef struct ps_sim_dataset {
    uint32_t n, cols;
    ps_sim_series *series;  /* [n]: what ps_sim_scenario_build takes; arrays owned here */
    ps_sim_entity *entity;  /* [n] */
    uint32_t n_events;      /* over all entities */
    int has_interpretation; /* DIR/interpretation_label/ exists */
} ps_sim_dataset;

/* 0, or PS_SIMDATA_EPARSE / PS_SIMDATA_EIO / PS_ENOMEM with out zeroed and the reason in err. */
int ps_sim_dataset_load(const char *dir, ps_sim_dataset *out, char *err, size_t errlen);
void ps_sim_dataset_free(ps_sim_dataset *d);

/*
 * Replay from test row `rows` on: each entity's test rows [0, rows) join
 * the end of its train rows (history, so their labelled events fail
 * nothing: a scenario built on the result starts `rows` into the test
 * period), its test rows and labels start at `rows`, and its events are
 * found again in what is left (an event that straddles the cut keeps the
 * rows after it). Interpretation labels are dropped (their events moved).
 * Labels are never changed. 0; PS_EINVAL when rows is not below every
 * entity's test rows; PS_ENOMEM (d unchanged then).
 */
int ps_sim_dataset_skip_test(ps_sim_dataset *d, uint32_t rows, char *err, size_t errlen);

#endif
