/*
 * state_file.c - the snapshot file (see state_file.h, docs/state-file.md).
 *
 * Plain POSIX calls, as in model_io.c: saving needs fsync on the file and
 * on its directory, loading needs the size before reading. Records are
 * written as they are exported, through one buffer, so a snapshot of many
 * processors never needs them all in memory at once; the file's CRC is
 * computed over the bytes as they go out.
 *
 * Loading reads the whole file and judges it in stages that each trust only
 * what the previous one checked: header, then the framing and CRC of every
 * record (so a damaged record is named by number and offset), then the
 * trailer's CRC over the whole file, then the fingerprint, then every
 * processor state against the scorer. Only a file that passed all of them
 * is imported.
 */
#define _POSIX_C_SOURCE 200809L

#include "state_file.h"

#include "core/bytes.h"
#include "core/crc32.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t file_magic[4] = {'P', 'S', 'S', 'T'};
static const uint8_t end_magic[4] = {'P', 'S', 'N', 'D'};

enum {
    HEADER_BYTES = 20,     /* magic, version, fingerprint, record count */
    TRAILER_BYTES = 8,     /* end magic, CRC of everything before the CRC */
    RECORD_MIN_BYTES = 16, /* slot, blob length, state length, CRC */
};

/* ---- saving ---- */

typedef struct out {
    int fd;
    int failed; /* errno of the first failed write, or 0 */
    uint32_t crc;
    size_t n;
    uint8_t buf[1 << 16];
} out;

static void out_flush(out *o)
{
    size_t done = 0;
    while (!o->failed && done < o->n) {
        ssize_t w = write(o->fd, o->buf + done, o->n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) o->failed = errno ? errno : EIO;
        if (w > 0) done += (size_t)w;
    }
    o->n = 0;
}

static void out_bytes(out *o, const void *p, size_t n)
{
    o->crc = ps_crc32(o->crc, p, n);
    const uint8_t *b = p;
    while (n > 0 && !o->failed) {
        size_t k = sizeof o->buf - o->n < n ? sizeof o->buf - o->n : n;
        memcpy(o->buf + o->n, b, k);
        o->n += k;
        b += k;
        n -= k;
        if (o->n == sizeof o->buf) out_flush(o);
    }
}

static void out_u32(out *o, uint32_t v)
{
    uint8_t b[4];
    ps_put_u32(b, v);
    out_bytes(o, b, 4);
}

/* Creates "<path>.tmp-<pid>-<n>" exclusively; returns the fd, or -1 with errno set. */
static int create_temp(const char *path, char *tmp, size_t tmplen)
{
    static atomic_uint counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&counter, 1u);
        snprintf(tmp, tmplen, "%s.tmp-%ld-%u", path, (long)getpid(), n);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || (errno != EEXIST && errno != EINTR)) return fd;
    }
    errno = EEXIST;
    return -1;
}

/* fsync the directory holding path, so that the rename itself is durable. */
static int sync_parent(const char *path, char *dir, size_t dirlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, dirlen, ".");
    else if (slash == path)
        snprintf(dir, dirlen, "/");
    else
        snprintf(dir, dirlen, "%.*s", (int)(slash - path), path);
    int fd;
    do
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some file systems cannot sync a directory and say so with EINVAL: nothing to do */
    if (rc != 0 && errno == EINVAL) rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int check_save_args(const char *path, const ps_scorer *s, size_t n, const uint32_t *slots,
                           const uint8_t *const *extra, const size_t *extra_len, char *err,
                           size_t errlen)
{
    if (!path || !s || (n && !slots))
        return ps_fail(err, errlen, PS_EINVAL, "state file: NULL argument");
    if (n > UINT32_MAX)
        return ps_fail(err, errlen, PS_EINVAL, "state file: %zu records are too many", n);
    size_t P = ps_scorer_config_of(s)->processors;
    uint8_t *seen = calloc(P, 1);
    if (!seen) return ps_fail(err, errlen, PS_ENOMEM, "state file: out of memory");
    int rc = PS_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t el = extra_len ? extra_len[i] : 0;
        if (slots[i] >= P)
            rc = ps_fail(err, errlen, PS_EINVAL, "state file: slot %u out of range (%zu)",
                         (unsigned)slots[i], P);
        else if (seen[slots[i]]++)
            rc = ps_fail(err, errlen, PS_EINVAL, "state file: slot %u given twice",
                         (unsigned)slots[i]);
        else if (el > PS_STATE_EXTRA_MAX || (el && (!extra || !extra[i])))
            rc = ps_fail(err, errlen, PS_EINVAL,
                         "state file: blob of slot %u is %zu bytes (at most %d) or NULL",
                         (unsigned)slots[i], el, PS_STATE_EXTRA_MAX);
    }
    free(seen);
    return rc;
}

/* Header, records and trailer into o; 0 or the failing code with err set. */
static int write_body(out *o, const ps_scorer *s, size_t n, const uint32_t *slots,
                      const uint8_t *const *extra, const size_t *extra_len, char *err,
                      size_t errlen)
{
    uint8_t h[HEADER_BYTES];
    memcpy(h, file_magic, 4);
    ps_put_u32(h + 4, PS_STATE_FILE_VERSION);
    ps_put_u64(h + 8, ps_scorer_fingerprint(s));
    ps_put_u32(h + 16, (uint32_t)n);
    out_bytes(o, h, sizeof h);
    uint8_t *state = NULL;
    size_t cap = 0;
    int rc = PS_OK;
    for (size_t i = 0; i < n && !rc && !o->failed; i++) {
        size_t len = ps_scorer_state_size(s, slots[i]);
        if (len > UINT32_MAX) {
            rc = ps_fail(err, errlen, PS_EINVAL, "state of slot %u is too large (%zu bytes)",
                         (unsigned)slots[i], len);
            break;
        }
        if (len > cap) {
            uint8_t *b = realloc(state, len);
            if (!b) {
                rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory for the state of slot %u",
                             (unsigned)slots[i]);
                break;
            }
            state = b;
            cap = len;
        }
        rc = ps_scorer_state_export(s, slots[i], state, len);
        if (rc) {
            ps_fail(err, errlen, rc, "cannot export the state of slot %u (error %d)",
                    (unsigned)slots[i], rc);
            break;
        }
        size_t el = extra_len ? extra_len[i] : 0;
        /* The record's own CRC, over its bytes from the slot on. */
        uint8_t f[8];
        ps_put_u32(f, slots[i]);
        ps_put_u32(f + 4, (uint32_t)el);
        uint32_t rcrc = ps_crc32(0, f, 8);
        out_bytes(o, f, 8);
        if (el) {
            rcrc = ps_crc32(rcrc, extra[i], el);
            out_bytes(o, extra[i], el);
        }
        ps_put_u32(f, (uint32_t)len);
        rcrc = ps_crc32(rcrc, f, 4);
        out_bytes(o, f, 4);
        rcrc = ps_crc32(rcrc, state, len);
        out_bytes(o, state, len);
        out_u32(o, rcrc);
    }
    free(state);
    if (rc) return rc;
    out_bytes(o, end_magic, 4);
    out_u32(o, o->crc);
    out_flush(o);
    return PS_OK;
}

int ps_state_file_save(const char *path, const ps_scorer *s, size_t n, const uint32_t *slots,
                       const uint8_t *const *extra, const size_t *extra_len, char *err,
                       size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    int rc = check_save_args(path, s, n, slots, extra, extra_len, err, errlen);
    if (rc) return rc;
    size_t tmplen = strlen(path) + 64;
    char *tmp = malloc(tmplen);
    out *o = malloc(sizeof *o);
    if (!tmp || !o) {
        free(tmp);
        free(o);
        return ps_fail(err, errlen, PS_ENOMEM, "cannot save state to %s: out of memory", path);
    }
    *o = (out){.fd = create_temp(path, tmp, tmplen)};
    if (o->fd < 0) {
        rc = ps_fail(err, errlen, PS_STATE_EIO, "cannot create temporary file %s: %s", tmp,
                     strerror(errno));
        goto out;
    }
    char msg[256];
    rc = write_body(o, s, n, slots, extra, extra_len, msg, sizeof msg);
    if (!rc && !o->failed && fsync(o->fd) != 0) o->failed = errno;
    if (close(o->fd) != 0 && !o->failed) o->failed = errno;
    if (rc || o->failed) {
        unlink(tmp);
        if (rc)
            ps_fail(err, errlen, rc, "cannot save state to %s: %s", path, msg);
        else
            rc = ps_fail(err, errlen, PS_STATE_EIO, "cannot write state file %s: %s", tmp,
                         strerror(o->failed));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        rc = ps_fail(err, errlen, PS_STATE_EIO, "cannot rename %s to %s: %s", tmp, path,
                     strerror(e));
        goto out;
    }
    /* the directory name is no longer than path, so tmp's buffer holds it */
    if (sync_parent(path, tmp, tmplen) != 0)
        rc = ps_fail(err, errlen, PS_STATE_EIO, "saved %s but cannot sync its directory %s: %s",
                     path, tmp, strerror(errno));
out:
    free(tmp);
    free(o);
    return rc;
}

/* ---- loading ---- */

typedef struct view {
    uint32_t slot;
    size_t at; /* the record's first byte */
    size_t extra_at, extra_len, state_at, state_len;
} view;

static int read_file(const char *path, uint8_t **buf, size_t *size, int *found, char *err,
                     size_t errlen)
{
    *buf = NULL;
    *found = 0;
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == ENOENT) return PS_OK;
    if (fd < 0)
        return ps_fail(err, errlen, PS_STATE_EIO, "cannot open state file %s: %s", path,
                       strerror(errno));
    *found = 1;
    struct stat st;
    int rc = PS_OK;
    if (fstat(fd, &st) != 0)
        rc = ps_fail(err, errlen, PS_STATE_EIO, "cannot stat state file %s: %s", path,
                     strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = ps_fail(err, errlen, PS_STATE_EIO, "state file %s is not a regular file", path);
    else if (st.st_size < 0 || (uint64_t)st.st_size > PS_STATE_FILE_MAX_BYTES ||
             (uint64_t)st.st_size > SIZE_MAX)
        rc = ps_fail(err, errlen, PS_STATE_ECORRUPT, "state file %s is too large (%jd bytes)", path,
                     (intmax_t)st.st_size);
    if (rc) {
        close(fd);
        return rc;
    }
    size_t want = (size_t)st.st_size, got = 0;
    *buf = malloc(want ? want : 1);
    if (!*buf) {
        close(fd);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory reading state file %s (%zu bytes)",
                       path, want);
    }
    /* A file that shrinks meanwhile reads as truncated, one that grows as
     * bytes after the trailer: both are refused. */
    while (got < want) {
        ssize_t r = read(fd, *buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = ps_fail(err, errlen, PS_STATE_EIO, "cannot read state file %s: %s", path,
                         strerror(errno));
            break;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (rc) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    *size = got;
    return PS_OK;
}

#define CORRUPT(...) ps_fail(err, errlen, PS_STATE_ECORRUPT, __VA_ARGS__)

/* Header and framing: every record's bounds and CRC, and the file's CRC. */
static int check_frame(const uint8_t *b, size_t size, size_t P, view **views, size_t *count,
                       char *err, size_t errlen)
{
    *views = NULL;
    if (size < HEADER_BYTES + TRAILER_BYTES)
        return CORRUPT("truncated: %zu bytes, a snapshot has at least %d", size,
                       HEADER_BYTES + TRAILER_BYTES);
    if (memcmp(b, file_magic, 4) != 0) return CORRUPT("not a preshift state file (bad magic)");
    uint32_t version = ps_get_u32(b + 4);
    if (version != PS_STATE_FILE_VERSION)
        return CORRUPT("state file version %u, this build reads %d", (unsigned)version,
                       PS_STATE_FILE_VERSION);
    size_t n = ps_get_u32(b + 16);
    /* Bound the declared count by the bytes there are before allocating for it. */
    if (n > (size - HEADER_BYTES - TRAILER_BYTES) / RECORD_MIN_BYTES)
        return CORRUPT("header declares %zu records, %zu bytes hold at most %zu (truncated, or "
                       "a damaged header)",
                       n, size, (size - HEADER_BYTES - TRAILER_BYTES) / RECORD_MIN_BYTES);
    view *v = calloc(n ? n : 1, sizeof *v);
    uint8_t *seen = calloc(P, 1);
    int rc = PS_OK;
    if (!v || !seen) {
        rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory checking the state file");
        goto out;
    }
    size_t o = HEADER_BYTES, end = size - TRAILER_BYTES;
    for (size_t i = 0; i < n; i++) {
        view *r = &v[i];
        r->at = o;
        if (end - o < 8) {
            rc = CORRUPT("truncated in record %zu of %zu at byte %zu", i, n, o);
            goto out;
        }
        r->slot = ps_get_u32(b + o);
        r->extra_len = ps_get_u32(b + o + 4);
        r->extra_at = o + 8;
        if (r->extra_len > PS_STATE_EXTRA_MAX || end - r->extra_at < r->extra_len + 4) {
            rc =
                CORRUPT("record %zu of %zu at byte %zu: blob of %zu bytes %s", i, n, o,
                        r->extra_len, r->extra_len > PS_STATE_EXTRA_MAX ? "too long" : "truncated");
            goto out;
        }
        size_t sl = r->extra_at + r->extra_len;
        r->state_len = ps_get_u32(b + sl);
        r->state_at = sl + 4;
        if (end - r->state_at < 4 || end - r->state_at - 4 < r->state_len) {
            rc = CORRUPT("record %zu of %zu at byte %zu: state of %zu bytes truncated", i, n, o,
                         r->state_len);
            goto out;
        }
        size_t crc_at = r->state_at + r->state_len;
        uint32_t want = ps_get_u32(b + crc_at), got = ps_crc32(0, b + o, crc_at - o);
        if (want != got) {
            rc = CORRUPT("record %zu of %zu at byte %zu: CRC mismatch (stored %08x, computed "
                         "%08x): the file is corrupted",
                         i, n, o, (unsigned)want, (unsigned)got);
            goto out;
        }
        if (r->slot >= P) {
            rc = ps_fail(err, errlen, PS_STATE_EMISMATCH,
                         "record %zu at byte %zu: slot %u, the scorer has %zu processors", i, o,
                         (unsigned)r->slot, P);
            goto out;
        }
        if (seen[r->slot]++) {
            rc = CORRUPT("record %zu at byte %zu: slot %u appears twice", i, o, (unsigned)r->slot);
            goto out;
        }
        o = crc_at + 4;
    }
    if (o != end || memcmp(b + end, end_magic, 4) != 0) {
        rc = CORRUPT("no trailer after record %zu at byte %zu (%zu bytes left): truncated or "
                     "damaged",
                     n, o, size - o);
        goto out;
    }
    uint32_t want = ps_get_u32(b + end + 4), got = ps_crc32(0, b, end + 4);
    if (want != got)
        rc = CORRUPT("file CRC mismatch (stored %08x, computed %08x): the file is corrupted",
                     (unsigned)want, (unsigned)got);
out:
    free(seen);
    if (rc)
        free(v);
    else {
        *views = v;
        *count = n;
    }
    return rc;
}

/* Put back every slot of v[0..n-1] as never seen. */
static void forget_all(ps_scorer *s, const view *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ps_scorer_forget(s, v[i].slot);
}

int ps_state_file_load(const char *path, ps_scorer *s, ps_state_record_fn on_record, void *ctx,
                       ps_state_load_info *info, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    ps_state_load_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    if (!path || !s) return ps_fail(err, errlen, PS_EINVAL, "state file: NULL argument");
    uint8_t *b;
    size_t size = 0;
    char msg[256];
    int rc = read_file(path, &b, &size, &info->found, err, errlen);
    if (rc || !info->found) return rc;
    info->bytes = size;
    view *v = NULL;
    size_t n = 0;
    rc = check_frame(b, size, ps_scorer_config_of(s)->processors, &v, &n, msg, sizeof msg);
    if (rc) {
        ps_fail(err, errlen, rc, "state file %s: %s", path, msg);
        goto out;
    }
    info->fingerprint = ps_get_u64(b + 8);
    /* Every state, checked against the scorer; the first record names what
     * differs when the fingerprints do. */
    for (size_t i = 0; i < n; i++) {
        int r2 = ps_scorer_state_check(s, b + v[i].state_at, v[i].state_len, msg, sizeof msg);
        if (r2 || info->fingerprint != ps_scorer_fingerprint(s)) {
            int mismatch = info->fingerprint != ps_scorer_fingerprint(s);
            rc = ps_fail(err, errlen, mismatch ? PS_STATE_EMISMATCH : PS_STATE_ECORRUPT,
                         "state file %s: record %zu (slot %u) at byte %zu: %s", path, i,
                         (unsigned)v[i].slot, v[i].at,
                         r2 ? msg : "written under another configuration or model");
            goto out;
        }
    }
    if (n == 0 && info->fingerprint != ps_scorer_fingerprint(s)) {
        rc = ps_fail(err, errlen, PS_STATE_EMISMATCH,
                     "state file %s: written under another configuration or model (fingerprint "
                     "%016llx, the scorer's %016llx)",
                     path, (unsigned long long)info->fingerprint,
                     (unsigned long long)ps_scorer_fingerprint(s));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = ps_scorer_state_import(s, v[i].slot, b + v[i].state_at, v[i].state_len, msg,
                                    sizeof msg);
        if (rc) {
            ps_fail(err, errlen, rc, "state file %s: record %zu (slot %u): %s", path, i,
                    (unsigned)v[i].slot, msg);
        } else if (on_record) {
            rc = on_record(ctx, v[i].slot, b + v[i].extra_at, v[i].extra_len);
            if (rc > 0) rc = PS_EINVAL;
            if (rc)
                ps_fail(err, errlen, rc,
                        "state file %s: record %zu (slot %u) refused by the caller", path, i,
                        (unsigned)v[i].slot);
        }
        if (rc) {
            forget_all(s, v, i + 1);
            info->records = info->scored = 0;
            goto out;
        }
        info->records++;
        info->scored += ps_scorer_proc_state(s, v[i].slot) == PS_PROC_SCORED;
    }
out:
    free(v);
    free(b);
    return rc;
}
