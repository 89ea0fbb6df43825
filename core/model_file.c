/*
 * model_file.c - encoder and decoder of the model file (docs/model-format.md).
 *
 * Every multi-byte value goes through the byte-by-byte helpers below, so the
 * file is little-endian on any host and nothing is ever loaded through a
 * misaligned pointer. The decoder works in stages that each trust only what
 * the previous one checked: magic, version, declared length against the
 * bytes there are, CRC, then the section framing, then each section's
 * content; the model's memory is allocated only after every byte has been
 * judged, so a hostile length cannot make it allocate more than it was given.
 */
#include "model_file.h"
#include "crc32.h"
#include "error.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128,
               "the model file stores IEEE 754 binary32 floats");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53 && DBL_MAX_EXP == 1024,
               "the calibration section stores IEEE 754 binary64 doubles");

static const uint8_t file_magic[8] = {0x89, 'P', 'S', 'M', '\r', '\n', 0x1a, '\n'};

/* Section tags as they appear in the file. */
static const char tag_hpar[4] = {'H', 'P', 'A', 'R'};
static const char tag_trai[4] = {'T', 'R', 'A', 'I'};
static const char tag_norm[4] = {'N', 'O', 'R', 'M'};
static const char tag_parm[4] = {'P', 'A', 'R', 'M'};
static const char tag_pfpc[4] = {'P', 'F', 'P', 'C'};

enum {
    HPAR_SIZE = 24,
    TRAI_FIXED_SIZE = 24,
    TRAI_SOURCE_MAX = (int)sizeof(((ps_model *)0)->train_source) - 1,
    PFPC_FIXED_SIZE = 40,
};

/* ---- little-endian bytes ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static void putf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    put32(p, u);
}

static void putd(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    put64(p, u);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Two's complement without relying on the implementation-defined conversion. */
static int32_t geti32(const uint8_t *p)
{
    uint32_t u = get32(p);
    if (u <= (uint32_t)INT32_MAX) return (int32_t)u;
    return -(int32_t)(~u) - 1;
}

static float getf(const uint8_t *p)
{
    uint32_t u = get32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double getd(const uint8_t *p)
{
    uint64_t u = get64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static size_t pad8(size_t n)
{
    return (8 - n % 8) % 8;
}

/* ---- messages ---- */

static const char *nonfinite_name(float f)
{
    if (isnan(f)) return "nan";
    return f > 0 ? "inf" : "-inf";
}

/* A tag for a message: printable ASCII as is, other bytes as \xNN. */
static void tag_text(const uint8_t *tag, char out[17])
{
    size_t k = 0;
    for (int i = 0; i < 4; i++) {
        if (tag[i] >= 0x20 && tag[i] < 0x7f && tag[i] != '\\') {
            out[k++] = (char)tag[i];
        } else {
            snprintf(out + k, 5, "\\x%02x", tag[i]);
            k += 4;
        }
    }
    out[k] = '\0';
}

/* Which block of the flat parameter vector index i falls in, for messages. */
static void param_where(const ps_lstm_shape *s, size_t i, char *out, size_t outlen)
{
    if (i >= ps_lstm_head_offset(s)) {
        size_t b = ps_lstm_head_offset(s) + (size_t)s->hidden * (size_t)s->output;
        snprintf(out, outlen, "%s", i < b ? "head weights" : "head bias");
        return;
    }
    int l = 0;
    while (l + 1 < s->layers && i >= ps_lstm_weight_offset(s, l + 1))
        l++;
    snprintf(out, outlen, "layer %d %s", l, i < ps_lstm_bias_offset(s, l) ? "weights" : "bias");
}

static int check_shape(const ps_lstm_shape *s, char *err, size_t errlen, int code)
{
    if (s->input < 1 || s->input > PS_LSTM_MAX_INPUT)
        return ps_fail(err, errlen, code, "input width %d out of range 1..%d", (int)s->input,
                       PS_LSTM_MAX_INPUT);
    if (s->hidden < 1 || s->hidden > PS_LSTM_MAX_HIDDEN)
        return ps_fail(err, errlen, code, "hidden size %d out of range 1..%d", (int)s->hidden,
                       PS_LSTM_MAX_HIDDEN);
    if (s->layers < 1 || s->layers > PS_LSTM_MAX_LAYERS)
        return ps_fail(err, errlen, code, "layer count %d out of range 1..%d", (int)s->layers,
                       PS_LSTM_MAX_LAYERS);
    if (s->output < 1 || s->output > PS_LSTM_MAX_INPUT)
        return ps_fail(err, errlen, code, "output width %d out of range 1..%d", (int)s->output,
                       PS_LSTM_MAX_INPUT);
    /* the limits above are kernels.h's; this catches them drifting apart */
    if (ps_lstm_shape_check(s) != PS_OK)
        return ps_fail(err, errlen, code, "shape %d/%d/%d/%d refused by the kernels", (int)s->input,
                       (int)s->hidden, (int)s->layers, (int)s->output);
    return PS_OK;
}

static int check_clip(float clip, char *err, size_t errlen, int code)
{
    if (!isfinite(clip))
        return ps_fail(err, errlen, code, "clip is not finite (%s)", nonfinite_name(clip));
    if (clip < 0) return ps_fail(err, errlen, code, "clip %g is negative", (double)clip);
    return PS_OK;
}

static int check_norm_value(int input, float loc, float scale, char *err, size_t errlen, int code)
{
    if (!isfinite(loc))
        return ps_fail(err, errlen, code, "normalization location of input %d is not finite (%s)",
                       input, nonfinite_name(loc));
    if (!isfinite(scale))
        return ps_fail(err, errlen, code, "normalization scale of input %d is not finite (%s)",
                       input, nonfinite_name(scale));
    if (!(scale > 0))
        return ps_fail(err, errlen, code, "normalization scale of input %d is %g (must be > 0)",
                       input, (double)scale);
    return PS_OK;
}

static int param_not_finite(const ps_lstm_shape *s, size_t i, size_t n, float v, char *err,
                            size_t errlen, int code)
{
    char where[48];
    param_where(s, i, where, sizeof where);
    return ps_fail(err, errlen, code, "parameter %zu of %zu (%s) is not finite (%s)", i, n, where,
                   nonfinite_name(v));
}

/* ---- encode ---- */

int ps_model_check(const ps_model *m, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!m) return ps_fail(err, errlen, PS_EINVAL, "no model");
    int rc = check_shape(&m->shape, err, errlen, PS_EINVAL);
    if (rc) return rc;
    if (!m->params) return ps_fail(err, errlen, PS_EINVAL, "model has no parameters");
    size_t n = ps_lstm_param_count(&m->shape);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(m->params[i]))
            return param_not_finite(&m->shape, i, n, m->params[i], err, errlen, PS_EINVAL);
    if (m->norm != PS_NORM_BASELINE && m->norm != PS_NORM_FIXED)
        return ps_fail(err, errlen, PS_EINVAL, "unknown normalization kind %d", (int)m->norm);
    rc = check_clip(m->clip, err, errlen, PS_EINVAL);
    if (rc) return rc;
    if (m->norm == PS_NORM_FIXED) {
        if (!m->norm_loc || !m->norm_scale)
            return ps_fail(err, errlen, PS_EINVAL,
                           "fixed normalization without per-input location and scale");
        for (int j = 0; j < m->shape.input; j++) {
            rc = check_norm_value(j, m->norm_loc[j], m->norm_scale[j], err, errlen, PS_EINVAL);
            if (rc) return rc;
        }
    }
    if (!isfinite(m->train_loss))
        return ps_fail(err, errlen, PS_EINVAL, "training loss is not finite (%s)",
                       nonfinite_name(m->train_loss));
    if (memchr(m->train_source, '\0', sizeof m->train_source) == NULL)
        return ps_fail(err, errlen, PS_EINVAL, "training source is not NUL-terminated");
    return ps_calibration_check(&m->calibration, err, errlen);
}

/* Payload length of the PFPC section; 0 when the model has no calibration. */
static size_t pfpc_size(const ps_calibration *c)
{
    if (c->kind == PS_CALIB_NONE) return 0;
    size_t n = c->kind == PS_CALIB_ISOTONIC ? c->count : 0;
    return PFPC_FIXED_SIZE + 16 * n;
}

/* Writes a section header at p; returns where its payload starts. */
static uint8_t *put_section(uint8_t *p, const char tag[4], uint32_t flags, size_t len)
{
    memcpy(p, tag, 4);
    put32(p + 4, flags);
    put64(p + 8, (uint64_t)len);
    return p + PS_MODEL_SECTION_HEADER_SIZE;
}

static size_t section_span(size_t len)
{
    return PS_MODEL_SECTION_HEADER_SIZE + len + pad8(len);
}

int ps_model_encode(const ps_model *m, uint8_t **out, size_t *outlen)
{
    if (!out || !outlen) return PS_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (ps_model_check(m, NULL, 0) != PS_OK) return PS_EINVAL;

    const ps_lstm_shape *s = &m->shape;
    size_t nparam = ps_lstm_param_count(s);
    size_t source_len = strlen(m->train_source);
    size_t trai_len = TRAI_FIXED_SIZE + source_len;
    size_t norm_len = m->norm == PS_NORM_FIXED ? 8 * (size_t)s->input : 0;
    if (nparam > (SIZE_MAX - 4096) / 4) return PS_ENOMEM;
    size_t parm_len = 4 * nparam;
    size_t pfpc_len = pfpc_size(&m->calibration);
    uint32_t nsections = 3 + (norm_len ? 1 : 0) + (pfpc_len ? 1 : 0);

    size_t total = PS_MODEL_HEADER_SIZE + section_span(HPAR_SIZE) + section_span(trai_len) +
                   (norm_len ? section_span(norm_len) : 0) +
                   (pfpc_len ? section_span(pfpc_len) : 0);
    if (section_span(parm_len) > SIZE_MAX - PS_MODEL_TRAILER_SIZE - total) return PS_ENOMEM;
    total += section_span(parm_len) + PS_MODEL_TRAILER_SIZE;

    /* zeroed, so every padding byte is already the zero the format asks for */
    uint8_t *buf = calloc(1, total);
    if (!buf) return PS_ENOMEM;

    memcpy(buf, file_magic, sizeof file_magic);
    put32(buf + 8, PS_MODEL_FORMAT_VERSION);
    put32(buf + 12, 0);
    put64(buf + 16, (uint64_t)total);
    put32(buf + 24, PS_MODEL_HEADER_SIZE);
    put32(buf + 28, nsections);
    uint8_t *p = buf + PS_MODEL_HEADER_SIZE;

    uint8_t *q = put_section(p, tag_hpar, PS_MODEL_SECTION_REQUIRED, HPAR_SIZE);
    put32(q, (uint32_t)s->input);
    put32(q + 4, (uint32_t)s->hidden);
    put32(q + 8, (uint32_t)s->layers);
    put32(q + 12, (uint32_t)s->output);
    put32(q + 16, (uint32_t)m->norm);
    putf(q + 20, m->clip);
    p += section_span(HPAR_SIZE);

    q = put_section(p, tag_trai, 0, trai_len);
    put64(q, m->train_seed);
    put32(q + 8, m->train_epochs);
    put32(q + 12, m->train_window);
    putf(q + 16, m->train_loss);
    put32(q + 20, (uint32_t)source_len);
    memcpy(q + 24, m->train_source, source_len);
    p += section_span(trai_len);

    if (norm_len) {
        q = put_section(p, tag_norm, PS_MODEL_SECTION_REQUIRED, norm_len);
        for (size_t j = 0; j < (size_t)s->input; j++) {
            putf(q + 4 * j, m->norm_loc[j]);
            putf(q + 4 * ((size_t)s->input + j), m->norm_scale[j]);
        }
        p += section_span(norm_len);
    }

    q = put_section(p, tag_parm, PS_MODEL_SECTION_REQUIRED, parm_len);
    for (size_t i = 0; i < nparam; i++)
        putf(q + 4 * i, m->params[i]);
    p += section_span(parm_len);

    if (pfpc_len) {
        /* required: an old reader must not serve uncalibrated PFPs from a calibrated model */
        const ps_calibration *c = &m->calibration;
        q = put_section(p, tag_pfpc, PS_MODEL_SECTION_REQUIRED, pfpc_len);
        size_t n = c->kind == PS_CALIB_ISOTONIC ? c->count : 0;
        put32(q, (uint32_t)c->kind);
        put32(q + 4, (uint32_t)n);
        put64(q + 8, c->samples);
        put64(q + 16, c->positives);
        if (c->kind == PS_CALIB_PLATT) {
            putd(q + 24, c->a);
            putd(q + 32, c->b);
        }
        for (size_t i = 0; i < n; i++) {
            putd(q + PFPC_FIXED_SIZE + 8 * i, c->score[i]);
            putd(q + PFPC_FIXED_SIZE + 8 * (n + i), c->prob[i]);
        }
        p += section_span(pfpc_len);
    }

    put32(p, ps_crc32(0, buf, total - PS_MODEL_TRAILER_SIZE));
    *out = buf;
    *outlen = total;
    return PS_OK;
}

/* ---- decode ---- */

typedef struct section {
    const uint8_t *data; /* payload; NULL while the section has not been seen */
    size_t len;
    size_t offset; /* of its header, for messages */
} section;

/*
 * Walks the sections between the header and the trailer: each must fit in
 * what is left, have zero padding, and appear at most once if this reader
 * knows it; an unknown section is refused if required and skipped if not.
 */
static int walk_sections(const uint8_t *buf, size_t start, size_t end, uint32_t declared,
                         section *hpar, section *trai, section *norm, section *parm, section *pfpc,
                         char *err, size_t errlen)
{
    const int E = PS_MODEL_EFORMAT;
    size_t off = start;
    uint32_t count = 0;
    while (off < end) {
        char name[17];
        if (end - off < PS_MODEL_SECTION_HEADER_SIZE)
            return ps_fail(err, errlen, E,
                           "section header at offset %zu needs %u bytes, only %zu left before "
                           "the trailer",
                           off, PS_MODEL_SECTION_HEADER_SIZE, end - off);
        const uint8_t *h = buf + off;
        tag_text(h, name);
        uint32_t flags = get32(h + 4);
        uint64_t len64 = get64(h + 8);
        size_t left = end - off - PS_MODEL_SECTION_HEADER_SIZE;
        if (len64 > (uint64_t)left)
            return ps_fail(err, errlen, E,
                           "section %s at offset %zu declares %llu bytes, only %zu left before "
                           "the trailer",
                           name, off, (unsigned long long)len64, left);
        size_t len = (size_t)len64;
        size_t pad = pad8(len);
        if (pad > left - len)
            return ps_fail(err, errlen, E,
                           "section %s at offset %zu: its padding to 8 bytes runs into the trailer",
                           name, off);
        const uint8_t *data = h + PS_MODEL_SECTION_HEADER_SIZE;
        for (size_t k = 0; k < pad; k++)
            if (data[len + k] != 0)
                return ps_fail(err, errlen, E,
                               "section %s at offset %zu: padding byte %zu is not 0", name, off, k);

        section *known = NULL;
        if (memcmp(h, tag_hpar, 4) == 0)
            known = hpar;
        else if (memcmp(h, tag_trai, 4) == 0)
            known = trai;
        else if (memcmp(h, tag_norm, 4) == 0)
            known = norm;
        else if (memcmp(h, tag_parm, 4) == 0)
            known = parm;
        else if (memcmp(h, tag_pfpc, 4) == 0)
            known = pfpc;

        if (known) {
            if (known->data)
                return ps_fail(err, errlen, E, "duplicate section %s at offset %zu (first at %zu)",
                               name, off, known->offset);
            if (flags & ~PS_MODEL_SECTION_REQUIRED)
                return ps_fail(err, errlen, E, "section %s at offset %zu has unknown flags 0x%08lx",
                               name, off, (unsigned long)flags);
            known->data = data;
            known->len = len;
            known->offset = off;
        } else if (flags & PS_MODEL_SECTION_REQUIRED) {
            return ps_fail(err, errlen, E,
                           "unknown required section %s at offset %zu (written by a newer "
                           "preshift?)",
                           name, off);
        }
        count++;
        off += PS_MODEL_SECTION_HEADER_SIZE + len + pad;
    }
    if (count != declared)
        return ps_fail(err, errlen, E, "header declares %lu sections, file holds %lu",
                       (unsigned long)declared, (unsigned long)count);
    return PS_OK;
}

/* Checks the framing up to and including the CRC; sets *end to the trailer's offset. */
static int check_frame(const uint8_t *buf, size_t len, size_t *end, char *err, size_t errlen)
{
    if (len < sizeof file_magic) {
        if (memcmp(buf, file_magic, len) != 0)
            return ps_fail(err, errlen, PS_MODEL_EMAGIC, "not a preshift model file (bad magic)");
        return ps_fail(err, errlen, PS_MODEL_ETRUNCATED,
                       "truncated: file is %zu bytes, shorter than the %u-byte header", len,
                       PS_MODEL_HEADER_SIZE);
    }
    if (memcmp(buf, file_magic, sizeof file_magic) != 0)
        return ps_fail(err, errlen, PS_MODEL_EMAGIC, "not a preshift model file (bad magic)");
    if (len < PS_MODEL_HEADER_SIZE)
        return ps_fail(err, errlen, PS_MODEL_ETRUNCATED,
                       "truncated: file is %zu bytes, shorter than the %u-byte header", len,
                       PS_MODEL_HEADER_SIZE);
    /* before the CRC: a later version may place or compute its checksum differently */
    uint32_t version = get32(buf + 8);
    if (version != PS_MODEL_FORMAT_VERSION)
        return ps_fail(err, errlen, PS_MODEL_EVERSION,
                       "unsupported version %lu (this build reads version %u)",
                       (unsigned long)version, PS_MODEL_FORMAT_VERSION);
    uint64_t total = get64(buf + 16);
    if (total > (uint64_t)len)
        return ps_fail(err, errlen, PS_MODEL_ETRUNCATED,
                       "truncated: file is %zu bytes, header declares %llu", len,
                       (unsigned long long)total);
    if (total < (uint64_t)len)
        return ps_fail(err, errlen, PS_MODEL_EFORMAT,
                       "file is %zu bytes, header declares %llu (trailing data)", len,
                       (unsigned long long)total);
    uint32_t header_len = get32(buf + 24);
    if (total < PS_MODEL_HEADER_SIZE + PS_MODEL_TRAILER_SIZE || total % 8 != 4)
        return ps_fail(err, errlen, PS_MODEL_EFORMAT,
                       "total length %llu is invalid (must be at least %u and 4 more than a "
                       "multiple of 8)",
                       (unsigned long long)total, PS_MODEL_HEADER_SIZE + PS_MODEL_TRAILER_SIZE);
    if (header_len < PS_MODEL_HEADER_SIZE || header_len % 8 != 0 ||
        header_len > len - PS_MODEL_TRAILER_SIZE)
        return ps_fail(err, errlen, PS_MODEL_EFORMAT,
                       "header length %lu is invalid (a multiple of 8, at least %u, within the "
                       "file)",
                       (unsigned long)header_len, PS_MODEL_HEADER_SIZE);
    *end = len - PS_MODEL_TRAILER_SIZE;
    uint32_t stored = get32(buf + *end);
    uint32_t computed = ps_crc32(0, buf, *end);
    if (stored != computed)
        return ps_fail(err, errlen, PS_MODEL_ECHECKSUM,
                       "checksum mismatch: stored 0x%08lx, computed 0x%08lx (file corrupted)",
                       (unsigned long)stored, (unsigned long)computed);
    uint32_t flags = get32(buf + 12);
    if (flags != 0)
        return ps_fail(err, errlen, PS_MODEL_EFORMAT,
                       "unknown header flags 0x%08lx (this build knows none)",
                       (unsigned long)flags);
    return PS_OK;
}

/* The hyper-parameters section: shape, normalization kind, clip. */
static int parse_hpar(const section *sec, ps_model *m, char *err, size_t errlen)
{
    const int E = PS_MODEL_EFORMAT;
    if (!sec->data)
        return ps_fail(err, errlen, E, "missing required section HPAR (hyper-parameters)");
    if (sec->len != HPAR_SIZE)
        return ps_fail(err, errlen, E, "section HPAR is %zu bytes, expected %d", sec->len,
                       HPAR_SIZE);
    const uint8_t *q = sec->data;
    m->shape.input = geti32(q);
    m->shape.hidden = geti32(q + 4);
    m->shape.layers = geti32(q + 8);
    m->shape.output = geti32(q + 12);
    int rc = check_shape(&m->shape, err, errlen, E);
    if (rc) return rc;
    uint32_t norm = get32(q + 16);
    if (norm != PS_NORM_BASELINE && norm != PS_NORM_FIXED)
        return ps_fail(err, errlen, E,
                       "unknown normalization kind %lu (this build knows 0 = baseline, 1 = fixed)",
                       (unsigned long)norm);
    m->norm = (ps_norm_kind)norm;
    m->clip = getf(q + 20);
    return check_clip(m->clip, err, errlen, E);
}

/* The optional provenance section; absent means all zero and an empty source. */
static int parse_trai(const section *sec, ps_model *m, char *err, size_t errlen)
{
    const int E = PS_MODEL_EFORMAT;
    if (!sec->data) return PS_OK;
    if (sec->len < TRAI_FIXED_SIZE)
        return ps_fail(err, errlen, E, "section TRAI is %zu bytes, at least %d expected", sec->len,
                       TRAI_FIXED_SIZE);
    const uint8_t *q = sec->data;
    uint32_t source_len = get32(q + 20);
    if (source_len > TRAI_SOURCE_MAX)
        return ps_fail(err, errlen, E, "training source is %lu bytes, at most %d allowed",
                       (unsigned long)source_len, TRAI_SOURCE_MAX);
    if (sec->len != TRAI_FIXED_SIZE + (size_t)source_len)
        return ps_fail(err, errlen, E,
                       "section TRAI is %zu bytes, expected %zu for a %lu-byte training source",
                       sec->len, TRAI_FIXED_SIZE + (size_t)source_len, (unsigned long)source_len);
    if (memchr(q + 24, '\0', source_len))
        return ps_fail(err, errlen, E, "training source contains a NUL byte");
    m->train_seed = get64(q);
    m->train_epochs = get32(q + 8);
    m->train_window = get32(q + 12);
    m->train_loss = getf(q + 16);
    if (!isfinite(m->train_loss))
        return ps_fail(err, errlen, E, "training loss is not finite (%s)",
                       nonfinite_name(m->train_loss));
    memcpy(m->train_source, q + 24, source_len);
    m->train_source[source_len] = '\0';
    return PS_OK;
}

static int check_norm(const section *sec, const ps_model *m, char *err, size_t errlen)
{
    const int E = PS_MODEL_EFORMAT;
    if (m->norm != PS_NORM_FIXED) {
        if (sec->data)
            return ps_fail(err, errlen, E, "section NORM present but normalization is baseline");
        return PS_OK;
    }
    if (!sec->data)
        return ps_fail(err, errlen, E, "missing required section NORM (normalization is fixed)");
    size_t in = (size_t)m->shape.input;
    if (sec->len != 8 * in)
        return ps_fail(err, errlen, E,
                       "section NORM is %zu bytes, expected %zu for input width %zu", sec->len,
                       8 * in, in);
    for (size_t j = 0; j < in; j++) {
        int rc = check_norm_value((int)j, getf(sec->data + 4 * j), getf(sec->data + 4 * (in + j)),
                                  err, errlen, E);
        if (rc) return rc;
    }
    return PS_OK;
}

static int check_parm(const section *sec, const ps_model *m, char *err, size_t errlen)
{
    const int E = PS_MODEL_EFORMAT;
    const ps_lstm_shape *s = &m->shape;
    if (!sec->data) return ps_fail(err, errlen, E, "missing required section PARM (parameters)");
    size_t n = ps_lstm_param_count(s);
    uint64_t want = 4 * (uint64_t)n;
    if ((uint64_t)sec->len != want)
        return ps_fail(err, errlen, E,
                       "section PARM is %zu bytes, expected %llu (%zu float32 parameters for input "
                       "%d, hidden %d, layers %d, output %d)",
                       sec->len, (unsigned long long)want, n, (int)s->input, (int)s->hidden,
                       (int)s->layers, (int)s->output);
    for (size_t i = 0; i < n; i++) {
        float v = getf(sec->data + 4 * i);
        if (!isfinite(v)) return param_not_finite(s, i, n, v, err, errlen, E);
    }
    return PS_OK;
}

/*
 * The optional calibration section: framing checked here, values by
 * ps_calibration_check, so a file can hold no calibration that the encoder
 * would refuse. Fields a kind does not use must be 0, which leaves them free
 * to mean something to a later kind.
 */
static int parse_pfpc(const section *sec, ps_calibration *c, char *err, size_t errlen)
{
    const int E = PS_MODEL_EFORMAT;
    if (!sec->data) return PS_OK;
    if (sec->len < PFPC_FIXED_SIZE)
        return ps_fail(err, errlen, E, "section PFPC is %zu bytes, at least %d expected", sec->len,
                       PFPC_FIXED_SIZE);
    const uint8_t *q = sec->data;
    uint32_t kind = get32(q), n = get32(q + 4);
    if (kind != PS_CALIB_PLATT && kind != PS_CALIB_ISOTONIC)
        return ps_fail(err, errlen, E,
                       "unknown calibration kind %lu (this build knows 1 = Platt, 2 = isotonic)",
                       (unsigned long)kind);
    if (kind == PS_CALIB_PLATT && n != 0)
        return ps_fail(err, errlen, E, "Platt calibration declares %lu breakpoints (must be 0)",
                       (unsigned long)n);
    if (kind == PS_CALIB_ISOTONIC && (n < 1 || n > PS_CALIB_MAX_BREAKPOINTS))
        return ps_fail(err, errlen, E, "isotonic calibration has %lu breakpoints, 1..%d allowed",
                       (unsigned long)n, PS_CALIB_MAX_BREAKPOINTS);
    size_t want = PFPC_FIXED_SIZE + 16 * (size_t)n;
    if (sec->len != want)
        return ps_fail(err, errlen, E,
                       "section PFPC is %zu bytes, expected %zu for %lu breakpoints", sec->len,
                       want, (unsigned long)n);
    if (kind == PS_CALIB_ISOTONIC && (get64(q + 24) != 0 || get64(q + 32) != 0))
        return ps_fail(err, errlen, E, "isotonic calibration has Platt coefficients (must be 0)");
    c->kind = (ps_calibration_kind)kind;
    c->count = n;
    c->samples = get64(q + 8);
    c->positives = get64(q + 16);
    if (kind == PS_CALIB_PLATT) {
        c->a = getd(q + 24);
        c->b = getd(q + 32);
    }
    for (size_t i = 0; i < n; i++) {
        c->score[i] = getd(q + PFPC_FIXED_SIZE + 8 * i);
        c->prob[i] = getd(q + PFPC_FIXED_SIZE + 8 * (n + i));
    }
    if (ps_calibration_check(c, err, errlen) != PS_OK) return E;
    return PS_OK;
}

int ps_model_decode(const uint8_t *buf, size_t len, ps_model *m, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!m) return ps_fail(err, errlen, PS_EINVAL, "no model to decode into");
    memset(m, 0, sizeof *m);
    if (!buf && len) return ps_fail(err, errlen, PS_EINVAL, "no buffer to decode");
    static const uint8_t empty[1] = {0};
    if (!buf) buf = empty;

    size_t end = 0;
    int rc = check_frame(buf, len, &end, err, errlen);
    if (rc) return rc;

    section hpar = {0}, trai = {0}, norm = {0}, parm = {0}, pfpc = {0};
    rc = walk_sections(buf, get32(buf + 24), end, get32(buf + 28), &hpar, &trai, &norm, &parm,
                       &pfpc, err, errlen);
    if (!rc) rc = parse_hpar(&hpar, m, err, errlen);
    if (!rc) rc = parse_trai(&trai, m, err, errlen);
    if (!rc) rc = check_norm(&norm, m, err, errlen);
    if (!rc) rc = check_parm(&parm, m, err, errlen);
    if (!rc) rc = parse_pfpc(&pfpc, &m->calibration, err, errlen);
    if (rc) {
        memset(m, 0, sizeof *m);
        return rc;
    }

    /* Everything is valid; sizes now derive from a checked shape and the input's length. */
    ps_model tmp = *m;
    rc = ps_model_init(m, &tmp.shape);
    if (rc) {
        ps_model_free(m);
        return ps_fail(err, errlen, rc, "out of memory for %zu parameters",
                       ps_lstm_param_count(&tmp.shape));
    }
    float *params = m->params;
    *m = tmp;
    m->params = params;
    size_t n = ps_lstm_param_count(&m->shape);
    for (size_t i = 0; i < n; i++)
        m->params[i] = getf(parm.data + 4 * i);
    if (m->norm == PS_NORM_FIXED) {
        size_t in = (size_t)m->shape.input;
        m->norm_loc = malloc(in * sizeof(float));
        m->norm_scale = malloc(in * sizeof(float));
        if (!m->norm_loc || !m->norm_scale) {
            ps_model_free(m);
            return ps_fail(err, errlen, PS_ENOMEM, "out of memory for normalization");
        }
        for (size_t j = 0; j < in; j++) {
            m->norm_loc[j] = getf(norm.data + 4 * j);
            m->norm_scale[j] = getf(norm.data + 4 * (in + j));
        }
    }
    return PS_OK;
}

const char *ps_model_strerror(int code)
{
    switch (code) {
    case PS_OK:
        return "success";
    case PS_EINVAL:
        return "invalid argument or model";
    case PS_ENOMEM:
        return "out of memory";
    case PS_MODEL_EMAGIC:
        return "not a preshift model file";
    case PS_MODEL_ETRUNCATED:
        return "model file truncated";
    case PS_MODEL_EVERSION:
        return "unsupported model file version";
    case PS_MODEL_ECHECKSUM:
        return "model file checksum mismatch";
    case PS_MODEL_EFORMAT:
        return "invalid model file content";
    case PS_MODEL_EIO:
        return "model file I/O error";
    case PS_MODEL_ETOOLARGE:
        return "model file too large";
    default:
        return "unknown error";
    }
}
