/*
 * model_file.h - a trained model (ps_model) to and from bytes in memory.
 *
 * The format is specified in docs/model-format.md: a fixed header (magic,
 * version, flags, total length), tagged sections that each say whether a
 * reader must understand them, and a CRC-32 trailer. New data goes into new
 * sections, so a later file stays readable here as long as what it adds is
 * optional, and is refused with a message that says why when it is not.
 *
 * Everything here works on memory; reading and writing files is the
 * server's (server/model_io.h).
 */
#ifndef PRESHIFT_MODEL_FILE_H
#define PRESHIFT_MODEL_FILE_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

/* The version this build writes and the only one it reads. */
#define PS_MODEL_FORMAT_VERSION 1u
#define PS_MODEL_HEADER_SIZE 32u
#define PS_MODEL_SECTION_HEADER_SIZE 16u
#define PS_MODEL_TRAILER_SIZE 4u
/* Section flag bit: a reader that does not know the section must refuse the file. */
#define PS_MODEL_SECTION_REQUIRED 0x1u

/* Errors of the model file, apart from kernels.h's PS_EINVAL and PS_ENOMEM. */
enum {
    PS_MODEL_EMAGIC = -100,     /* not a preshift model file */
    PS_MODEL_ETRUNCATED = -101, /* shorter than the header or its declared length */
    PS_MODEL_EVERSION = -102,   /* a format version this build does not read */
    PS_MODEL_ECHECKSUM = -103,  /* CRC-32 mismatch: the bytes were corrupted */
    PS_MODEL_EFORMAT = -104,    /* well framed, but its content is invalid */
    PS_MODEL_EIO = -105,        /* opening, reading or writing the file failed */
    PS_MODEL_ETOOLARGE = -106,  /* file larger than a reader accepts */
};

/*
 * 0 if m can be written and read back: shape within limits, parameters
 * present and finite, a known normalization kind, clip finite and >= 0,
 * per-input locations finite and scales finite and > 0 for PS_NORM_FIXED,
 * train_loss finite, train_source NUL-terminated, and a calibration that
 * ps_calibration_check accepts (none, the zero value, always is).
 * Otherwise PS_EINVAL, and err (if not NULL) says what is wrong.
 */
int ps_model_check(const ps_model *m, char *err, size_t errlen);

/*
 * Encode m into a new malloc'd buffer (*out, *outlen; the caller frees it).
 * 0, PS_EINVAL if ps_model_check refuses m, or PS_ENOMEM. The same model
 * always gives the same bytes.
 */
int ps_model_encode(const ps_model *m, uint8_t **out, size_t *outlen);

/*
 * Decode len bytes into m, which need not be initialized and is
 * overwritten. Returns 0 (m then owns memory: ps_model_free it) or a
 * negative code: one of PS_MODEL_E* above, PS_EINVAL for null arguments,
 * PS_ENOMEM. On failure m is left zeroed and nothing is allocated. err (if
 * not NULL) always receives a NUL-terminated message: empty on success,
 * otherwise what was wrong, e.g.
 *   "truncated: file is 1234 bytes, header declares 5678"
 *   "checksum mismatch: stored 0x1a2b3c4d, computed 0x5e6f7a8b (file corrupted)"
 * The whole input is validated before anything is allocated, so a declared
 * size never makes it allocate more than the input's own length.
 */
int ps_model_decode(const uint8_t *buf, size_t len, ps_model *m, char *err, size_t errlen);

/* A short description of any code above (and of PS_EINVAL, PS_ENOMEM). */
const char *ps_model_strerror(int code);

#endif
