/*
 * state_file.h - the scoring server's snapshot file: the state of every
 * processor of a scorer, and a small opaque blob per processor for the
 * caller (its external id, last sequence number, last time seen ...).
 * docs/state-file.md gives the format and its guarantees.
 *
 * Saving is atomic: a temporary file in the same directory is written,
 * fsync'd and renamed over the path, and the directory is fsync'd, so the
 * path holds the old snapshot or the new one, never a mixture, even across
 * SIGKILL or a power cut. Loading checks the whole file (framing, a CRC-32
 * per record and one over the file, the configuration fingerprint, every
 * processor state) before it changes anything.
 *
 * Nothing here is thread-safe: save reads the scorer, load writes it; the
 * caller keeps ticks out meanwhile (one thread owns a scorer).
 */
#ifndef PRESHIFT_STATE_FILE_H
#define PRESHIFT_STATE_FILE_H

#include "core/scorer.h"

#include <stddef.h>
#include <stdint.h>

#define PS_STATE_FILE_VERSION 1
/* Largest caller blob per processor. */
#define PS_STATE_EXTRA_MAX 256
/* Larger files are refused before anything is read. */
#define PS_STATE_FILE_MAX_BYTES ((uint64_t)1 << 36)

/* Failures beyond the PS_E* codes of kernels.h. */
enum {
    PS_STATE_EIO = -120,       /* open, read, write, fsync or rename failed (strerror follows) */
    PS_STATE_ECORRUPT = -121,  /* truncated, bad magic, CRC mismatch, bad framing or state */
    PS_STATE_EMISMATCH = -122, /* written under another configuration or model */
};

/*
 * Write the state of the n processors slots[0..n-1] (distinct, each below
 * the scorer's processor count) with their blobs extra[i] of extra_len[i]
 * bytes (<= PS_STATE_EXTRA_MAX; extra or extra_len may be NULL for none)
 * to path, atomically. 0, PS_EINVAL (bad arguments, nothing written),
 * PS_ENOMEM, PS_EDEVICE (a state could not be read from the backend) or
 * PS_STATE_EIO; on failure the temporary file is removed and an existing
 * snapshot at path is untouched. err names the file and what failed.
 */
int ps_state_file_save(const char *path, const ps_scorer *s, size_t n, const uint32_t *slots,
                       const uint8_t *const *extra, const size_t *extra_len, char *err,
                       size_t errlen);

/* Called once per restored processor, after its state is in the scorer: 0, or
 * a negative code (a positive one counts as PS_EINVAL) to stop the load. */
typedef int (*ps_state_record_fn)(void *ctx, uint32_t slot, const uint8_t *extra, size_t extra_len);

typedef struct ps_state_load_info {
    int found;            /* 0: there is no file at path (not an error) */
    size_t records;       /* processors restored */
    size_t scored;        /* of which past their warm-up */
    uint64_t fingerprint; /* the file's */
    uint64_t bytes;       /* its size */
} ps_state_load_info;

/*
 * Restore the snapshot at path into s, which should be fresh (slots the
 * file does not name are left as they are). A missing file is no snapshot:
 * 0 with info->found = 0. Otherwise the whole file is checked first; a
 * truncated or corrupted file (PS_STATE_ECORRUPT) or one written under
 * another configuration or model (PS_STATE_EMISMATCH) is refused with a
 * message that says what and where (record number, byte offset), and s is
 * untouched. Then each record is imported and on_record (may be NULL)
 * called with its slot and blob; a nonzero return from it stops the load.
 * If importing or on_record fails, every slot restored so far is forgotten
 * (ps_scorer_forget), so s is never left half restored, and that code is
 * returned. info may be NULL.
 */
int ps_state_file_load(const char *path, ps_scorer *s, ps_state_record_fn on_record, void *ctx,
                       ps_state_load_info *info, char *err, size_t errlen);

#endif
