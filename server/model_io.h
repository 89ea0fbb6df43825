/*
 * model_io.h - model files on disk: the file side of core/model_file.h.
 *
 * Loading reads the whole file into memory and decodes it there, so the
 * format's checks (length, CRC, every section) run on exactly the bytes that
 * were read. Saving never leaves a half-written model under the target name:
 * a reader sees the old file or the new one, even across a crash.
 */
#ifndef PRESHIFT_MODEL_IO_H
#define PRESHIFT_MODEL_IO_H

#include "core/model.h"
#include "core/model_file.h"

#include <stddef.h>

/* Larger files are refused before anything is read: no valid model we ship comes near. */
#define PS_MODEL_FILE_MAX_BYTES ((size_t)1 << 30)

/*
 * Read and decode the model file at path into m (overwritten; ps_model_free
 * it after success). Returns 0 or a negative code: those of ps_model_decode,
 * PS_MODEL_EIO (open, stat or read failed, or not a regular file; the
 * message carries strerror), PS_MODEL_ETOOLARGE (over PS_MODEL_FILE_MAX_BYTES),
 * PS_ENOMEM, PS_EINVAL. err always receives a message, and every failure
 * message names the file. On failure m is left zeroed.
 */
int ps_model_load(const char *path, ps_model *m, char *err, size_t errlen);

/*
 * Encode m and write it to path atomically: a temporary file in the same
 * directory is written, fsync'd and renamed over path, then the directory
 * is fsync'd. Returns 0, PS_EINVAL (m invalid; the message says why),
 * PS_ENOMEM or PS_MODEL_EIO; on failure the temporary file is removed and
 * any existing file at path is untouched. The new file's mode is 0666
 * less the umask, like any file the process creates.
 */
int ps_model_save(const char *path, const ps_model *m, char *err, size_t errlen);

#endif
