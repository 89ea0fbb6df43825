/*
 * test_model_file.c - the model file format and its files on disk.
 *
 * Crafted files are built here byte by byte from docs/model-format.md rather
 * than by editing the encoder's output, so the test also checks that the
 * specification alone is enough to write a file the decoder accepts. Every
 * truncated input is decoded from a buffer of exactly its own length, so the
 * sanitizer build catches any read past the end.
 */
#define _POSIX_C_SOURCE 200809L

#include "core/crc32.h"
#include "core/model.h"
#include "core/model_file.h"
#include "server/model_io.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- little-endian helpers, written from the spec ---- */

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void lef(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    le32(p, u);
}

static void led(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    le64(p, u);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* Recompute the trailer after editing bytes, so only the edit is judged. */
static void refix_crc(uint8_t *buf, size_t len)
{
    le32(buf + len - 4, ps_crc32(0, buf, len - 4));
}

/* Offset of the payload of the first section with this tag, 0 if none. */
static size_t find_section(const uint8_t *buf, size_t len, const char *tag, size_t *plen)
{
    size_t off = rd32(buf + 24);
    while (off + 16 <= len - 4) {
        size_t n = (size_t)rd64(buf + off + 8);
        if (memcmp(buf + off, tag, 4) == 0) {
            if (plen) *plen = n;
            return off + 16;
        }
        off += 16 + n + (8 - n % 8) % 8;
    }
    return 0;
}

/* ---- a file builder that follows docs/model-format.md ---- */

typedef struct craft {
    uint8_t buf[16384];
    size_t len;
    uint32_t nsec;
} craft;

static void craft_begin(craft *c)
{
    static const uint8_t magic[8] = {0x89, 'P', 'S', 'M', '\r', '\n', 0x1a, '\n'};
    memset(c, 0, sizeof *c);
    memcpy(c->buf, magic, 8);
    le32(c->buf + 8, 1);
    le32(c->buf + 24, 32);
    c->len = 32;
}

/* A section whose header declares `declared` bytes but carries n (they differ only to lie). */
static void craft_raw(craft *c, const char *tag, uint32_t flags, uint64_t declared,
                      const void *payload, size_t n)
{
    memcpy(c->buf + c->len, tag, 4);
    le32(c->buf + c->len + 4, flags);
    le64(c->buf + c->len + 8, declared);
    c->len += 16;
    if (n) memcpy(c->buf + c->len, payload, n);
    c->len += n + (8 - n % 8) % 8;
    c->nsec++;
}

static void craft_section(craft *c, const char *tag, uint32_t flags, const void *payload, size_t n)
{
    craft_raw(c, tag, flags, n, payload, n);
}

static size_t craft_end(craft *c)
{
    size_t total = c->len + 4;
    le64(c->buf + 16, total);
    le32(c->buf + 28, c->nsec);
    refix_crc(c->buf, total);
    return total;
}

static void hpar(uint8_t p[24], int32_t in, int32_t hid, int32_t lay, int32_t out, uint32_t norm,
                 float clip)
{
    le32(p, (uint32_t)in);
    le32(p + 4, (uint32_t)hid);
    le32(p + 8, (uint32_t)lay);
    le32(p + 12, (uint32_t)out);
    le32(p + 16, norm);
    lef(p + 20, clip);
}

/* A valid file of shape 1/2/1/1, baseline normalization, parameters k*0.01. */
static const ps_lstm_shape small_shape = {1, 2, 1, 1};

static void craft_small_parm(craft *c)
{
    static uint8_t p[4 * 64];
    size_t n = ps_lstm_param_count(&small_shape);
    for (size_t k = 0; k < n; k++)
        lef(p + 4 * k, 0.01f * (float)k);
    craft_section(c, "PARM", 1, p, 4 * n);
}

static void craft_small_hpar(craft *c)
{
    uint8_t h[24];
    hpar(h, 1, 2, 1, 1, 0, 4.0f);
    craft_section(c, "HPAR", 1, h, 24);
}

/* ---- models ---- */

static void make_model(ps_model *m, ps_lstm_shape s, ps_norm_kind norm, uint64_t seed)
{
    CHECK(ps_model_init(m, &s) == PS_OK);
    ps_model_init_random(m, seed);
    m->norm = norm;
    m->clip = norm == PS_NORM_FIXED ? 6.5f : 0.0f;
    if (norm == PS_NORM_FIXED) {
        m->norm_loc = malloc((size_t)s.input * sizeof(float));
        m->norm_scale = malloc((size_t)s.input * sizeof(float));
        for (int j = 0; j < s.input; j++) {
            m->norm_loc[j] = -3.25f + (float)j;
            m->norm_scale[j] = 0.125f * (float)(j + 1);
        }
    }
    m->train_seed = 0x0123456789abcdefull ^ seed;
    m->train_epochs = 40 + (uint32_t)seed;
    m->train_window = 96;
    m->train_loss = 0.0123f;
    snprintf(m->train_source, sizeof m->train_source,
             "preshift train --data heartbeats.csv --seed %llu \"quoted\" \xc3\xa9",
             (unsigned long long)seed);
}

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Field by field: struct padding is not part of the value. */
static int calibrations_equal(const ps_calibration *a, const ps_calibration *b)
{
    if (a->kind != b->kind) return 0;
    if (a->kind == PS_CALIB_NONE) return 1;
    if (a->samples != b->samples || a->positives != b->positives) return 0;
    if (a->kind == PS_CALIB_PLATT) return same_double(a->a, b->a) && same_double(a->b, b->b);
    if (a->count != b->count) return 0;
    for (uint32_t i = 0; i < a->count; i++)
        if (!same_double(a->score[i], b->score[i]) || !same_double(a->prob[i], b->prob[i]))
            return 0;
    return 1;
}

static int models_equal(const ps_model *a, const ps_model *b)
{
    if (!calibrations_equal(&a->calibration, &b->calibration)) return 0;
    if (memcmp(&a->shape, &b->shape, sizeof a->shape) != 0) return 0;
    if (a->norm != b->norm || !same_float(a->clip, b->clip)) return 0;
    size_t n = ps_lstm_param_count(&a->shape);
    if (memcmp(a->params, b->params, n * sizeof(float)) != 0) return 0;
    if (a->norm == PS_NORM_FIXED) {
        size_t in = (size_t)a->shape.input;
        if (!b->norm_loc || !b->norm_scale) return 0;
        if (memcmp(a->norm_loc, b->norm_loc, in * sizeof(float)) != 0) return 0;
        if (memcmp(a->norm_scale, b->norm_scale, in * sizeof(float)) != 0) return 0;
    } else if (b->norm_loc || b->norm_scale) {
        return 0;
    }
    return a->train_seed == b->train_seed && a->train_epochs == b->train_epochs &&
           a->train_window == b->train_window && same_float(a->train_loss, b->train_loss) &&
           strcmp(a->train_source, b->train_source) == 0;
}

static int model_is_zero(const ps_model *m)
{
    static const ps_model zero;
    return memcmp(m, &zero, sizeof zero) == 0;
}

/* Decode and expect a failure with this code and a message that starts with prefix. */
static void expect_fail(const uint8_t *buf, size_t len, int code, const char *prefix,
                        const char *what)
{
    ps_model m;
    char err[256];
    int rc = ps_model_decode(buf, len, &m, err, sizeof err);
    CHECKF(rc == code, "%s: rc %d (%s), want %d; message: %s", what, rc, ps_model_strerror(rc),
           code, err);
    CHECKF(strncmp(err, prefix, strlen(prefix)) == 0, "%s: message '%s', want '%s...'", what, err,
           prefix);
    CHECKF(model_is_zero(&m), "%s: model not left zeroed", what);
    if (rc == 0) ps_model_free(&m);
}

/* ---- tests ---- */

static void test_crc32(void)
{
    const char *s = "123456789";
    CHECK(ps_crc32(0, s, 9) == 0xcbf43926u);
    CHECK(ps_crc32(ps_crc32(0, s, 4), s + 4, 5) == 0xcbf43926u);
    CHECK(ps_crc32(0, NULL, 0) == 0);
    CHECK(ps_crc32(0, "a", 1) == 0xe8b7be43u);
}

static void test_round_trip(void)
{
    static const ps_lstm_shape shapes[] = {
        {1, 1, 1, 1}, {1, 8, 1, 1}, {3, 5, 2, 3}, {4, 16, 3, 2}, {2, 7, 8, 1}, {19, 12, 2, 19},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        for (int k = 0; k < 2; k++) {
            ps_model a, b;
            ps_norm_kind norm = k ? PS_NORM_FIXED : PS_NORM_BASELINE;
            make_model(&a, shapes[i], norm, 7 + i);
            uint8_t *buf = NULL, *buf2 = NULL;
            size_t len = 0, len2 = 0;
            CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
            CHECK(len % 8 == 4);
            char err[256] = "x";
            int rc = ps_model_decode(buf, len, &b, err, sizeof err);
            CHECKF(rc == PS_OK, "shape %zu norm %d: %s", i, k, err);
            CHECK(err[0] == '\0');
            if (rc == PS_OK) {
                CHECKF(models_equal(&a, &b), "shape %zu norm %d differs after round trip", i, k);
                /* the same model always gives the same bytes */
                CHECK(ps_model_encode(&b, &buf2, &len2) == PS_OK);
                CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
                ps_model_free(&b);
            }
            free(buf);
            free(buf2);
            ps_model_free(&a);
        }
    }

    /* values at the edges of float32 survive bit for bit */
    ps_model a, b;
    make_model(&a, (ps_lstm_shape){1, 2, 1, 1}, PS_NORM_FIXED, 1);
    a.params[0] = -0.0f;
    a.params[1] = 1e-45f; /* smallest subnormal */
    a.params[2] = FLT_MAX;
    a.params[3] = -FLT_MAX;
    a.norm_scale[0] = FLT_MIN;
    a.train_seed = UINT64_MAX;
    a.train_epochs = UINT32_MAX;
    memset(a.train_source, 'z', sizeof a.train_source - 1); /* the longest source */
    a.train_source[sizeof a.train_source - 1] = '\0';
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    CHECK(ps_model_decode(buf, len, &b, NULL, 0) == PS_OK);
    CHECK(models_equal(&a, &b));
    ps_model_free(&b);
    free(buf);

    /* an empty training source and no provenance at all */
    memset(a.train_source, 0, sizeof a.train_source);
    a.train_loss = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    CHECK(ps_model_decode(buf, len, &b, NULL, 0) == PS_OK);
    CHECK(models_equal(&a, &b));
    ps_model_free(&b);
    free(buf);
    ps_model_free(&a);
}

/* The bytes are little-endian and where the specification says. */
static void test_layout(void)
{
    ps_model a;
    make_model(&a, (ps_lstm_shape){3, 2, 1, 2}, PS_NORM_FIXED, 3);
    a.params[0] = 1.0f;
    a.clip = 2.0f;
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    static const uint8_t magic[8] = {0x89, 0x50, 0x53, 0x4d, 0x0d, 0x0a, 0x1a, 0x0a};
    CHECK(memcmp(buf, magic, 8) == 0);
    CHECK(rd32(buf + 8) == 1 && buf[8] == 1);
    CHECK(rd32(buf + 12) == 0);
    CHECK(rd64(buf + 16) == len);
    CHECK(rd32(buf + 24) == 32);
    CHECK(rd32(buf + 28) == 4);
    CHECK(memcmp(buf + 32, "HPAR", 4) == 0 && rd32(buf + 36) == 1 && rd64(buf + 40) == 24);
    CHECK(buf[48] == 3 && buf[49] == 0 && rd32(buf + 52) == 2 && rd32(buf + 56) == 1);
    CHECK(rd32(buf + 60) == 2 && rd32(buf + 64) == 1);
    CHECK(buf[68] == 0x00 && buf[69] == 0x00 && buf[70] == 0x00 && buf[71] == 0x40); /* 2.0f */
    CHECK(memcmp(buf + 72, "TRAI", 4) == 0 && rd32(buf + 76) == 0);
    size_t n = 0;
    size_t parm = find_section(buf, len, "PARM", &n);
    CHECK(parm % 8 == 0 && n == 4 * ps_lstm_param_count(&a.shape));
    CHECK(buf[parm] == 0x00 && buf[parm + 1] == 0x00 && buf[parm + 2] == 0x80 &&
          buf[parm + 3] == 0x3f); /* 1.0f */
    size_t norm = find_section(buf, len, "NORM", &n);
    CHECK(norm % 8 == 0 && n == 24);
    CHECK(rd32(buf + len - 4) == ps_crc32(0, buf, len - 4));
    free(buf);
    ps_model_free(&a);
}

static void test_truncation(void)
{
    ps_model a;
    make_model(&a, (ps_lstm_shape){2, 3, 2, 2}, PS_NORM_FIXED, 11);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    for (size_t l = 0; l < len; l++) {
        uint8_t *cp = malloc(l ? l : 1);
        memcpy(cp, buf, l);
        ps_model m;
        char err[256];
        int rc = ps_model_decode(l ? cp : NULL, l, &m, err, sizeof err);
        CHECKF(rc == PS_MODEL_ETRUNCATED, "length %zu of %zu: rc %d: %s", l, len, rc, err);
        char want[128];
        if (l < 32)
            snprintf(want, sizeof want,
                     "truncated: file is %zu bytes, shorter than the 32-byte header", l);
        else
            snprintf(want, sizeof want, "truncated: file is %zu bytes, header declares %zu", l,
                     len);
        CHECKF(strcmp(err, want) == 0, "length %zu: '%s', want '%s'", l, err, want);
        CHECK(model_is_zero(&m));
        free(cp);
    }
    free(buf);
    ps_model_free(&a);
}

static void test_bit_flips(void)
{
    ps_model a;
    make_model(&a, small_shape, PS_NORM_FIXED, 5);
    snprintf(a.train_source, sizeof a.train_source, "flip");
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    uint8_t *cp = malloc(len);
    size_t flips = 0, checksum = 0;
    for (size_t byte = 0; byte < len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(cp, buf, len);
            cp[byte] ^= (uint8_t)(1u << bit);
            ps_model m;
            char err[256];
            int rc = ps_model_decode(cp, len, &m, err, sizeof err);
            flips++;
            CHECKF(rc < 0, "flip of byte %zu bit %d accepted", byte, bit);
            CHECK(model_is_zero(&m));
            if (rc == PS_MODEL_ECHECKSUM) checksum++;
            /* past the header only the CRC can tell */
            if (byte >= 32)
                CHECKF(rc == PS_MODEL_ECHECKSUM, "flip of byte %zu bit %d: %d %s", byte, bit, rc,
                       err);
            if (rc == 0) ps_model_free(&m);
        }
    }
    CHECK(flips - checksum <= 8 * 32); /* only header flips may say otherwise */

    /* the message gives both values */
    memcpy(cp, buf, len);
    cp[100] ^= 0x10;
    char want[128];
    snprintf(want, sizeof want,
             "checksum mismatch: stored 0x%08lx, computed 0x%08lx (file corrupted)",
             (unsigned long)rd32(cp + len - 4), (unsigned long)ps_crc32(0, cp, len - 4));
    expect_fail(cp, len, PS_MODEL_ECHECKSUM, want, "checksum message");
    free(cp);
    free(buf);
    ps_model_free(&a);
}

static void test_header(void)
{
    ps_model a;
    make_model(&a, small_shape, PS_NORM_BASELINE, 2);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    uint8_t *cp = malloc(len + 8);

    /* a later version is refused as such, CRC valid or not */
    memcpy(cp, buf, len);
    le32(cp + 8, 2);
    refix_crc(cp, len);
    expect_fail(cp, len, PS_MODEL_EVERSION, "unsupported version 2 (this build reads version 1)",
                "version 2");
    le32(cp + 8, 0);
    refix_crc(cp, len);
    expect_fail(cp, len, PS_MODEL_EVERSION, "unsupported version 0 (this build reads version 1)",
                "version 0");

    memcpy(cp, buf, len);
    cp[0] = 'P';
    expect_fail(cp, len, PS_MODEL_EMAGIC, "not a preshift model file (bad magic)", "magic");
    const char *text = "input,hidden\n1,2\nthis is a CSV, not a model file\n";
    expect_fail((const uint8_t *)text, strlen(text), PS_MODEL_EMAGIC,
                "not a preshift model file (bad magic)", "text");
    expect_fail((const uint8_t *)"abc", 3, PS_MODEL_EMAGIC, "not a preshift", "3 bytes");

    memcpy(cp, buf, len);
    le32(cp + 12, 0x4);
    refix_crc(cp, len);
    expect_fail(cp, len, PS_MODEL_EFORMAT, "unknown header flags 0x00000004", "header flags");

    memcpy(cp, buf, len);
    cp[len] = 0;
    expect_fail(cp, len + 1, PS_MODEL_EFORMAT, "file is", "trailing data");

    memcpy(cp, buf, len);
    le32(cp + 24, 36);
    refix_crc(cp, len);
    expect_fail(cp, len, PS_MODEL_EFORMAT, "header length 36 is invalid", "header length 36");
    le32(cp + 24, 16);
    refix_crc(cp, len);
    expect_fail(cp, len, PS_MODEL_EFORMAT, "header length 16 is invalid", "header length 16");

    memcpy(cp, buf, len);
    le32(cp + 28, 7);
    refix_crc(cp, len);
    expect_fail(cp, len, PS_MODEL_EFORMAT, "header declares 7 sections, file holds 3",
                "section count");

    /* a header extension (header length 40) is skipped by this reader */
    memcpy(cp, buf, 32);
    le32(cp + 24, 40);
    le64(cp + 16, len + 8);
    memset(cp + 32, 0xee, 8);
    memcpy(cp + 40, buf + 32, len - 32);
    refix_crc(cp, len + 8);
    ps_model b;
    CHECK(ps_model_decode(cp, len + 8, &b, NULL, 0) == PS_OK);
    CHECK(models_equal(&a, &b));
    ps_model_free(&b);

    /* argument errors */
    char err[64];
    CHECK(ps_model_decode(buf, len, NULL, err, sizeof err) == PS_EINVAL);
    CHECK(ps_model_decode(NULL, 10, &b, err, sizeof err) == PS_EINVAL);
    CHECK(ps_model_decode(NULL, 0, &b, NULL, 0) == PS_MODEL_ETRUNCATED);
    CHECK(ps_model_decode(buf, len, &b, err, 0) == PS_OK);
    ps_model_free(&b);
    char tiny[8];
    cp[0] = 0;
    CHECK(ps_model_decode(cp, len, &b, tiny, sizeof tiny) == PS_MODEL_EMAGIC);
    CHECK(strlen(tiny) == sizeof tiny - 1);

    free(cp);
    free(buf);
    ps_model_free(&a);
}

static void test_crafted(void)
{
    craft c;
    uint8_t h[24];
    size_t len;
    ps_model m;
    char err[256];

    /* a minimal file written from the specification alone */
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_small_parm(&c);
    len = craft_end(&c);
    int rc = ps_model_decode(c.buf, len, &m, err, sizeof err);
    CHECKF(rc == PS_OK, "minimal crafted file: %s", err);
    if (rc == PS_OK) {
        CHECK(m.shape.input == 1 && m.shape.hidden == 2 && m.shape.layers == 1);
        CHECK(m.norm == PS_NORM_BASELINE && m.clip == 4.0f && !m.norm_loc);
        CHECK(m.params[3] == 0.01f * 3.0f);
        CHECK(m.train_seed == 0 && m.train_source[0] == '\0');
        ps_model_free(&m);
    }

    /* sections in any order, an unknown optional one skipped */
    craft_begin(&c);
    craft_section(&c, "XTRA", 0, "hello", 5);
    craft_small_parm(&c);
    craft_section(&c, "\x01\x02zz", 0x6, "", 0); /* unknown flag bits of an optional one */
    craft_small_hpar(&c);
    len = craft_end(&c);
    rc = ps_model_decode(c.buf, len, &m, err, sizeof err);
    CHECKF(rc == PS_OK, "unknown optional section: %s", err);
    if (rc == PS_OK) ps_model_free(&m);

    craft_begin(&c);
    craft_small_hpar(&c);
    craft_small_parm(&c);
    craft_section(&c, "CALB", 1, "future", 6);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "unknown required section CALB at offset",
                "unknown required");
    craft_begin(&c);
    craft_section(&c, "\x01Q\\\xff", 1, "", 0);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "unknown required section \\x01Q\\x5c\\xff",
                "unprintable tag");

    /* a huge shape with a small PARM: refused by length, nothing allocated */
    craft_begin(&c);
    hpar(h, PS_LSTM_MAX_INPUT, PS_LSTM_MAX_HIDDEN, PS_LSTM_MAX_LAYERS, PS_LSTM_MAX_INPUT, 0, 0);
    craft_section(&c, "HPAR", 1, h, 24);
    craft_section(&c, "PARM", 1, "\0\0\0\0\0\0\0\0", 8);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section PARM is 8 bytes, expected 4", "huge shape");

    /* a declared length far beyond the file */
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_raw(&c, "PARM", 1, (uint64_t)1 << 62, "\0\0\0\0\0\0\0\0", 8);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT,
                "section PARM at offset 72 declares 4611686018427387904 bytes",
                "huge section length");
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_raw(&c, "PARM", 1, UINT64_MAX, "", 0);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section PARM at offset 72 declares", "max length");

    /* shape fields out of range, each named */
    static const struct {
        int32_t in, hid, lay, out;
        const char *msg;
    } bad[] = {
        {1, 0, 1, 1, "hidden size 0 out of range 1..4096"},
        {1, 1000000, 1, 1, "hidden size 1000000 out of range 1..4096"},
        {1, -7, 1, 1, "hidden size -7 out of range 1..4096"},
        {0, 2, 1, 1, "input width 0 out of range 1..4096"},
        {4097, 2, 1, 1, "input width 4097 out of range 1..4096"},
        {1, 2, 9, 1, "layer count 9 out of range 1..8"},
        {1, 2, 0, 1, "layer count 0 out of range 1..8"},
        {1, 2, 1, 0, "output width 0 out of range 1..4096"},
        {1, 2, 1, INT32_MIN, "output width -2147483648 out of range 1..4096"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        craft_begin(&c);
        hpar(h, bad[i].in, bad[i].hid, bad[i].lay, bad[i].out, 0, 0);
        craft_section(&c, "HPAR", 1, h, 24);
        craft_small_parm(&c);
        len = craft_end(&c);
        expect_fail(c.buf, len, PS_MODEL_EFORMAT, bad[i].msg, bad[i].msg);
    }

    /* framing errors */
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_small_hpar(&c);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "duplicate section HPAR at offset 72 (first at 32)",
                "duplicate");
    craft_begin(&c);
    craft_small_hpar(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "missing required section PARM", "no PARM");
    craft_begin(&c);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "missing required section HPAR", "no HPAR");
    craft_begin(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "missing required section HPAR", "no sections");
    craft_begin(&c);
    hpar(h, 1, 2, 1, 1, 0, 0);
    craft_section(&c, "HPAR", 1, h, 20);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section HPAR is 20 bytes, expected 24", "HPAR 20");
    craft_begin(&c);
    craft_section(&c, "HPAR", 3, h, 24);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section HPAR at offset 32 has unknown flags",
                "HPAR flags");
    craft_begin(&c);
    craft_small_parm(&c);
    craft_section(&c, "XTRA", 0, "abc", 3);
    c.buf[c.len - 2] = 1; /* a padding byte */
    craft_small_hpar(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section XTRA at offset", "padding");
    /* a section header cut by the trailer: 8 bytes left where 16 are needed */
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_small_parm(&c);
    c.len += 8;
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section header at offset", "cut header");

    /* normalization */
    craft_begin(&c);
    hpar(h, 1, 2, 1, 1, 2, 0);
    craft_section(&c, "HPAR", 1, h, 24);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "unknown normalization kind 2", "norm kind");
    craft_begin(&c);
    hpar(h, 1, 2, 1, 1, 1, 0);
    craft_section(&c, "HPAR", 1, h, 24);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "missing required section NORM", "no NORM");
    uint8_t nv[8];
    lef(nv, 1.0f);
    lef(nv + 4, 2.0f);
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_section(&c, "NORM", 1, nv, 8);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section NORM present but normalization is baseline",
                "NORM with baseline");
    craft_begin(&c);
    craft_section(&c, "HPAR", 1, h, 24);
    craft_section(&c, "NORM", 1, nv, 4);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section NORM is 4 bytes, expected 8", "NORM 4");
    craft_begin(&c);
    craft_section(&c, "HPAR", 1, h, 24);
    craft_section(&c, "NORM", 1, nv, 8);
    craft_small_parm(&c);
    len = craft_end(&c);
    rc = ps_model_decode(c.buf, len, &m, err, sizeof err);
    CHECKF(rc == PS_OK, "crafted fixed normalization: %s", err);
    if (rc == PS_OK) {
        CHECK(m.norm == PS_NORM_FIXED && m.norm_loc[0] == 1.0f && m.norm_scale[0] == 2.0f);
        ps_model_free(&m);
    }

    /* provenance */
    uint8_t t[24 + 300];
    memset(t, 'a', sizeof t);
    le32(t + 16, 0);
    le32(t + 20, 300);
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_section(&c, "TRAI", 0, t, sizeof t);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "training source is 300 bytes, at most 255",
                "long source");
    le32(t + 20, 10);
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_section(&c, "TRAI", 0, t, 24 + 9);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section TRAI is 33 bytes, expected 34", "TRAI len");
    t[30] = 0;
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_section(&c, "TRAI", 0, t, 24 + 10);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "training source contains a NUL byte", "TRAI NUL");
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_section(&c, "TRAI", 0, t, 20);
    craft_small_parm(&c);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "section TRAI is 20 bytes, at least 24",
                "TRAI short");
}

/* Non-finite and out-of-range values inside an otherwise valid file. */
static void test_values(void)
{
    ps_model a;
    make_model(&a, (ps_lstm_shape){2, 3, 2, 2}, PS_NORM_FIXED, 9);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    uint8_t *cp = malloc(len);
    size_t parm = find_section(buf, len, "PARM", NULL);
    size_t norm = find_section(buf, len, "NORM", NULL);
    size_t hp = find_section(buf, len, "HPAR", NULL);
    size_t tr = find_section(buf, len, "TRAI", NULL);
    CHECK(parm && norm && hp && tr);
    size_t n = ps_lstm_param_count(&a.shape);
    size_t w1 = ps_lstm_weight_offset(&a.shape, 1);

    static const struct {
        int where; /* 0 param, 1 loc, 2 scale, 3 clip, 4 loss */
        size_t index;
        float value;
        const char *msg;
    } cases[] = {
        {0, 5, NAN, "parameter 5 of"},
        {0, 0, INFINITY, "parameter 0 of"},
        {0, 1000000, -INFINITY, "parameter"}, /* the last one: index fixed below */
        {1, 1, NAN, "normalization location of input 1 is not finite (nan)"},
        {2, 0, INFINITY, "normalization scale of input 0 is not finite (inf)"},
        {2, 1, 0.0f, "normalization scale of input 1 is 0 (must be > 0)"},
        {2, 0, -1.5f, "normalization scale of input 0 is -1.5 (must be > 0)"},
        {3, 0, NAN, "clip is not finite (nan)"},
        {3, 0, -1.0f, "clip -1 is negative"},
        {4, 0, INFINITY, "training loss is not finite (inf)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(cp, buf, len);
        size_t at = 0;
        switch (cases[i].where) {
        case 0:
            at = parm + 4 * (cases[i].index < n ? cases[i].index : n - 1);
            break;
        case 1:
            at = norm + 4 * cases[i].index;
            break;
        case 2:
            at = norm + 4 * ((size_t)a.shape.input + cases[i].index);
            break;
        case 3:
            at = hp + 20;
            break;
        default:
            at = tr + 16;
            break;
        }
        lef(cp + at, cases[i].value);
        refix_crc(cp, len);
        expect_fail(cp, len, PS_MODEL_EFORMAT, cases[i].msg, cases[i].msg);
    }
    /* the message locates the parameter in the layout */
    memcpy(cp, buf, len);
    lef(cp + parm + 4 * (w1 + 1), NAN);
    refix_crc(cp, len);
    char want[128];
    snprintf(want, sizeof want, "parameter %zu of %zu (layer 1 weights) is not finite (nan)",
             w1 + 1, n);
    expect_fail(cp, len, PS_MODEL_EFORMAT, want, "located");
    memcpy(cp, buf, len);
    lef(cp + parm + 4 * (n - 1), NAN);
    refix_crc(cp, len);
    snprintf(want, sizeof want, "parameter %zu of %zu (head bias)", n - 1, n);
    expect_fail(cp, len, PS_MODEL_EFORMAT, want, "head bias");

    free(cp);
    free(buf);
    ps_model_free(&a);
}

static void test_encode_refuses(void)
{
    ps_model a;
    uint8_t *buf = (uint8_t *)&a;
    size_t len = 1;
    char err[256];
    make_model(&a, (ps_lstm_shape){2, 3, 1, 2}, PS_NORM_FIXED, 4);

    a.params[2] = NAN;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_EINVAL && buf == NULL && len == 0);
    CHECK(ps_model_check(&a, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "parameter 2 of") != NULL, "%s", err);
    a.params[2] = 0;
    a.norm_scale[1] = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_EINVAL);
    a.norm_scale[1] = 1;
    float *loc = a.norm_loc;
    a.norm_loc = NULL;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_EINVAL);
    a.norm_loc = loc;
    a.clip = -1;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_EINVAL);
    a.clip = 0;
    a.norm = (ps_norm_kind)5;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_EINVAL);
    a.norm = PS_NORM_FIXED;
    a.train_loss = NAN;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_EINVAL);
    a.train_loss = 0;
    memset(a.train_source, 'x', sizeof a.train_source);
    CHECK(ps_model_encode(&a, &buf, &len) == PS_EINVAL);
    CHECK(ps_model_check(&a, err, sizeof err) == PS_EINVAL);
    CHECK(strcmp(err, "training source is not NUL-terminated") == 0);
    a.train_source[0] = '\0';
    a.shape.hidden = 5000;
    CHECK(ps_model_check(&a, err, sizeof err) == PS_EINVAL);
    CHECK(strcmp(err, "hidden size 5000 out of range 1..4096") == 0);
    a.shape.hidden = 3;
    CHECK(ps_model_check(&a, err, sizeof err) == PS_OK && err[0] == '\0');
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    free(buf);
    CHECK(ps_model_encode(NULL, &buf, &len) == PS_EINVAL);
    CHECK(ps_model_encode(&a, NULL, &len) == PS_EINVAL);
    ps_model_free(&a);

    static const int codes[] = {PS_OK,
                                PS_EINVAL,
                                PS_ENOMEM,
                                PS_MODEL_EMAGIC,
                                PS_MODEL_ETRUNCATED,
                                PS_MODEL_EVERSION,
                                PS_MODEL_ECHECKSUM,
                                PS_MODEL_EFORMAT,
                                PS_MODEL_EIO,
                                PS_MODEL_ETOOLARGE};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(ps_model_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(ps_model_strerror(codes[i]), ps_model_strerror(codes[j])) != 0);
    }
    CHECK(strcmp(ps_model_strerror(-12345), "unknown error") == 0);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void test_files(void)
{
    char dir[] = "/tmp/preshift-test-model-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECKF(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    char path[512], other[512], missing[512], nodir[512], empty[512], big[512];
    snprintf(path, sizeof path, "%s/model.psm", dir);
    snprintf(other, sizeof other, "%s/corrupt.psm", dir);
    snprintf(missing, sizeof missing, "%s/missing.psm", dir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/model.psm", dir);
    snprintf(empty, sizeof empty, "%s/empty.psm", dir);
    snprintf(big, sizeof big, "%s/big.psm", dir);
    char err[512];
    ps_model a, b, c;

    make_model(&a, (ps_lstm_shape){3, 4, 2, 3}, PS_NORM_FIXED, 21);
    int rc = ps_model_save(path, &a, err, sizeof err);
    CHECKF(rc == PS_OK, "save: %s", err);
    rc = ps_model_load(path, &b, err, sizeof err);
    CHECKF(rc == PS_OK, "load: %s", err);
    if (rc == PS_OK) {
        CHECK(models_equal(&a, &b));
        ps_model_free(&b);
    }

    /* replacing an existing file leaves only the new one, no temporaries */
    make_model(&c, (ps_lstm_shape){1, 6, 1, 1}, PS_NORM_BASELINE, 22);
    CHECK(ps_model_save(path, &c, err, sizeof err) == PS_OK);
    CHECK(count_entries(dir) == 1);
    rc = ps_model_load(path, &b, err, sizeof err);
    CHECKF(rc == PS_OK, "load after replace: %s", err);
    if (rc == PS_OK) {
        CHECK(models_equal(&c, &b));
        ps_model_free(&b);
    }

    /* a relative path (directory ".") works too */
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(dir) == 0) {
        CHECK(ps_model_save("relative.psm", &a, err, sizeof err) == PS_OK);
        CHECK(ps_model_load("relative.psm", &b, err, sizeof err) == PS_OK);
        CHECK(models_equal(&a, &b));
        ps_model_free(&b);
        CHECK(unlink("relative.psm") == 0);
        CHECK(chdir(cwd) == 0);
    }

    rc = ps_model_load(missing, &b, err, sizeof err);
    CHECK(rc == PS_MODEL_EIO && model_is_zero(&b));
    CHECKF(strstr(err, missing) != NULL && strstr(err, strerror(ENOENT)) != NULL, "%s", err);

    rc = ps_model_save(nodir, &a, err, sizeof err);
    CHECK(rc == PS_MODEL_EIO);
    CHECKF(strstr(err, nodir) != NULL, "%s", err);

    rc = ps_model_load(dir, &b, err, sizeof err);
    CHECKF(rc == PS_MODEL_EIO && strstr(err, "not a regular file") != NULL, "%s", err);

    /* decode errors name the file */
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    buf[len / 2] ^= 1;
    FILE *f = fopen(other, "wb");
    CHECK(f && fwrite(buf, 1, len, f) == len);
    if (f) fclose(f);
    rc = ps_model_load(other, &b, err, sizeof err);
    char want[600];
    snprintf(want, sizeof want, "%s: checksum mismatch", other);
    CHECKF(rc == PS_MODEL_ECHECKSUM && strncmp(err, want, strlen(want)) == 0, "%s", err);
    free(buf);

    f = fopen(empty, "wb");
    if (f) fclose(f);
    rc = ps_model_load(empty, &b, err, sizeof err);
    snprintf(want, sizeof want, "%s: truncated: file is 0 bytes", empty);
    CHECKF(rc == PS_MODEL_ETRUNCATED && strncmp(err, want, strlen(want)) == 0, "%s", err);

    /* an oversized (sparse) file is refused before anything is read */
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(ftruncate(fd, (off_t)PS_MODEL_FILE_MAX_BYTES + 1) == 0);
        close(fd);
        rc = ps_model_load(big, &b, err, sizeof err);
        CHECKF(rc == PS_MODEL_ETOOLARGE && strstr(err, big) != NULL, "%s", err);
    }

    /* an invalid model is refused with the reason, and nothing is written */
    a.norm_scale[0] = -1;
    rc = ps_model_save(path, &a, err, sizeof err);
    CHECKF(rc == PS_EINVAL && strstr(err, "normalization scale of input 0") != NULL, "%s", err);
    CHECK(ps_model_load(path, &b, err, sizeof err) == PS_OK && models_equal(&c, &b));
    ps_model_free(&b);

    unlink(path);
    unlink(other);
    unlink(empty);
    unlink(big);
    CHECK(count_entries(dir) == 0);
    CHECK(rmdir(dir) == 0);
    ps_model_free(&a);
    ps_model_free(&c);
}

/* ---- the PFP calibration section ---- */

/* An isotonic calibration with n breakpoints, scores from lo up by step. */
static void make_isotonic(ps_calibration *c, uint32_t n, double lo, double step)
{
    memset(c, 0, sizeof *c);
    c->kind = PS_CALIB_ISOTONIC;
    c->count = n;
    for (uint32_t i = 0; i < n; i++) {
        c->score[i] = lo + step * i;
        c->prob[i] = n > 1 ? (double)i / (n - 1) : 0.5;
    }
    c->samples = 12345;
    c->positives = 67;
}

/* A PFPC payload written from docs/model-format.md; returns its length. */
static size_t pfpc_payload(uint8_t *p, uint32_t kind, uint32_t n, uint64_t samples,
                           uint64_t positives, double a, double b, const double *sc,
                           const double *pr)
{
    le32(p, kind);
    le32(p + 4, n);
    le64(p + 8, samples);
    le64(p + 16, positives);
    led(p + 24, a);
    led(p + 32, b);
    for (uint32_t i = 0; sc && i < n; i++) {
        led(p + 40 + 8 * (size_t)i, sc[i]);
        led(p + 40 + 8 * ((size_t)n + i), pr[i]);
    }
    return 40 + 16 * (size_t)n;
}

/* A minimal valid file with this PFPC payload (flags 1). */
static size_t craft_pfpc(craft *c, const uint8_t *payload, size_t n)
{
    craft_begin(c);
    craft_small_hpar(c);
    craft_small_parm(c);
    craft_section(c, "PFPC", 1, payload, n);
    return craft_end(c);
}

static void test_calibration_section(void)
{
    ps_model a, b;
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0, plen = 0;
    char err[256];

    /* round trips: Platt, isotonic with every breakpoint, extremes bit for bit */
    for (int k = 0; k < 5; k++) {
        make_model(&a, (ps_lstm_shape){2, 3, 1, 2}, k % 2 ? PS_NORM_FIXED : PS_NORM_BASELINE,
                   40 + (uint64_t)k);
        ps_calibration *c = &a.calibration;
        switch (k) {
        case 0:
            *c = (ps_calibration){.kind = PS_CALIB_PLATT, .a = -1.2345678901234567, .b = 3.5};
            c->samples = 1000;
            c->positives = 12;
            break;
        case 1:
            *c = (ps_calibration){.kind = PS_CALIB_PLATT, .a = -0.0, .b = -DBL_MAX};
            c->samples = UINT64_MAX;
            c->positives = UINT64_MAX;
            break;
        case 2:
            make_isotonic(c, PS_CALIB_MAX_BREAKPOINTS, -3.0, 0.0625);
            break;
        case 3:
            make_isotonic(c, 1, 2.0, 0);
            c->prob[0] = 0.0;
            break;
        default:
            make_isotonic(c, 3, -DBL_MAX / 2, DBL_MAX / 4);
            c->prob[0] = 4.9e-324; /* the smallest subnormal */
            c->prob[1] = 0.5;
            c->prob[2] = 1.0;
            break;
        }
        CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
        int rc = ps_model_decode(buf, len, &b, err, sizeof err);
        CHECKF(rc == PS_OK, "calibration %d: %s", k, err);
        if (rc == PS_OK) {
            CHECKF(models_equal(&a, &b), "calibration %d differs after round trip", k);
            CHECK(ps_model_encode(&b, &buf2, &len2) == PS_OK);
            CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
            free(buf2);
            buf2 = NULL;
            ps_model_free(&b);
        }
        /* layout: required, last, 40 + 16 n bytes, counted in the header */
        size_t at = find_section(buf, len, "PFPC", &plen);
        uint32_t n = c->kind == PS_CALIB_ISOTONIC ? c->count : 0;
        CHECK(at && rd32(buf + at - 12) == 1 && plen == 40 + 16 * (size_t)n);
        CHECK(at + plen + 4 == len);
        CHECK(rd32(buf + 28) == (k % 2 ? 5u : 4u));
        CHECK(rd32(buf + at) == (uint32_t)c->kind && rd32(buf + at + 4) == n);
        CHECK(rd64(buf + at + 8) == c->samples && rd64(buf + at + 16) == c->positives);
        if (c->kind == PS_CALIB_ISOTONIC) {
            CHECK(rd64(buf + at + 24) == 0 && rd64(buf + at + 32) == 0);
            double d;
            uint64_t u = rd64(buf + at + 40 + 8 * (size_t)n);
            memcpy(&d, &u, 8);
            CHECK(same_double(d, c->prob[0]));
        }
        free(buf);
        ps_model_free(&a);
    }

    /* no calibration, no section: files stay what they were */
    make_model(&a, small_shape, PS_NORM_BASELINE, 3);
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    CHECK(find_section(buf, len, "PFPC", NULL) == 0 && rd32(buf + 28) == 3);
    CHECK(ps_model_decode(buf, len, &b, NULL, 0) == PS_OK);
    CHECK(b.calibration.kind == PS_CALIB_NONE);
    ps_model_free(&b);
    free(buf);

    /* a calibrated file: every truncation and every bit flip is refused */
    make_isotonic(&a.calibration, 20, 0, 1);
    CHECK(ps_model_encode(&a, &buf, &len) == PS_OK);
    uint8_t *cp = malloc(len);
    size_t bad = 0;
    for (size_t l = 0; l < len; l++) {
        memcpy(cp, buf, l);
        if (ps_model_decode(cp, l, &b, NULL, 0) != PS_MODEL_ETRUNCATED || !model_is_zero(&b)) bad++;
    }
    CHECKF(bad == 0, "%zu truncations of a calibrated file not refused as truncated", bad);
    size_t at = find_section(buf, len, "PFPC", NULL);
    for (size_t byte = at - 16; byte < len; byte++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(cp, buf, len);
            cp[byte] ^= (uint8_t)(1u << bit);
            if (ps_model_decode(cp, len, &b, NULL, 0) != PS_MODEL_ECHECKSUM) bad++;
        }
    CHECKF(bad == 0, "%zu bit flips in PFPC not refused by the checksum", bad);

    /* the encoder refuses what the decoder would */
    a.calibration.prob[3] = 0.9;
    CHECK(ps_model_encode(&a, &buf2, &len2) == PS_EINVAL && buf2 == NULL);
    CHECK(ps_model_check(&a, err, sizeof err) == PS_EINVAL);
    CHECKF(strcmp(err, "calibration breakpoint 4: probability 0.210526 is below the previous "
                       "one's 0.9") == 0,
           "%s", err);
    a.calibration = (ps_calibration){.kind = PS_CALIB_PLATT, .a = 1};
    CHECK(ps_model_encode(&a, &buf2, &len2) == PS_EINVAL);
    a.calibration.kind = (ps_calibration_kind)9;
    CHECK(ps_model_check(&a, err, sizeof err) == PS_EINVAL);
    CHECKF(strcmp(err, "unknown calibration kind 9") == 0, "%s", err);
    free(cp);
    free(buf);
    ps_model_free(&a);

    /* written from the specification alone */
    craft c;
    uint8_t p[40 + 16 * 300];
    double sc[300], pr[300];
    for (int i = 0; i < 300; i++) {
        sc[i] = i;
        pr[i] = i / 299.0;
    }
    size_t n = pfpc_payload(p, 1, 0, 50, 5, -2.0, 1.0, NULL, NULL);
    len = craft_pfpc(&c, p, n);
    int rc = ps_model_decode(c.buf, len, &b, err, sizeof err);
    CHECKF(rc == PS_OK, "crafted Platt: %s", err);
    if (rc == PS_OK) {
        CHECK(b.calibration.kind == PS_CALIB_PLATT && b.calibration.a == -2.0);
        CHECK(b.calibration.b == 1.0 && b.calibration.samples == 50);
        CHECK(b.calibration.positives == 5 && b.calibration.count == 0);
        ps_model_free(&b);
    }
    n = pfpc_payload(p, 2, 3, 9, 3, 0, 0, (double[]){-1, 0, 1}, (double[]){0, 0.5, 0.5});
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_section(&c, "PFPC", 0, p, n); /* known tags are decoded whatever their flag says */
    craft_small_parm(&c);
    len = craft_end(&c);
    rc = ps_model_decode(c.buf, len, &b, err, sizeof err);
    CHECKF(rc == PS_OK, "crafted isotonic: %s", err);
    if (rc == PS_OK) {
        CHECK(b.calibration.kind == PS_CALIB_ISOTONIC && b.calibration.count == 3);
        CHECK(ps_calibration_apply(&b.calibration, -0.5) == 0.25);
        ps_model_free(&b);
    }

    /* malformed sections */
    static const struct {
        uint32_t kind, n;
        uint64_t samples, positives;
        double a, b;
        int with_points; /* breakpoints follow the fixed part */
        size_t len;      /* 0: as the count says */
        double s1, p1;   /* replace the second breakpoint */
        const char *msg;
    } cases[] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 1, 0.5, "unknown calibration kind 0 (this build knows 1 = Platt"},
        {3, 0, 0, 0, 0, 0, 0, 0, 1, 0.5, "unknown calibration kind 3"},
        {1, 1, 0, 0, -1, 0, 1, 0, 1, 0.5, "Platt calibration declares 1 breakpoints (must be 0)"},
        {2, 0, 0, 0, 0, 0, 0, 0, 1, 0.5, "isotonic calibration has 0 breakpoints, 1..256"},
        {2, 257, 0, 0, 0, 0, 1, 0, 1, 0.5, "isotonic calibration has 257 breakpoints, 1..256"},
        {2, 0xffffffffu, 0, 0, 0, 0, 0, 0, 1, 0.5, "isotonic calibration has 4294967295"},
        {2, 3, 0, 0, 0, 0, 1, 56, 1, 0.5,
         "section PFPC is 56 bytes, expected 88 for 3 breakpoints"},
        {1, 0, 0, 0, -1, 0, 0, 48, 1, 0.5, "section PFPC is 48 bytes, expected 40 for 0"},
        {1, 0, 0, 0, -1, 0, 0, 32, 1, 0.5, "section PFPC is 32 bytes, at least 40 expected"},
        {2, 3, 0, 0, 0.5, 0, 1, 0, 1, 0.5, "isotonic calibration has Platt coefficients"},
        {2, 3, 0, 0, -0.0, 0, 1, 0, 1, 0.5, "isotonic calibration has Platt coefficients"},
        {2, 3, 0, 0, 0, 0, 1, 0, -1, 0.5, "calibration breakpoint 1: score -1 is not above the"},
        {2, 3, 0, 0, 0, 0, 1, 0, 3, 0.5,
         "calibration breakpoint 2: score 2 is not above the previous one's 3"},
        {2, 3, 0, 0, 0, 0, 1, 0, 1, 0.75, "calibration breakpoint 2: probability 0.5 is below"},
        {2, 3, 0, 0, 0, 0, 1, 0, 1, 1.25, "calibration breakpoint 1: probability 1.25 is outside"},
        {2, 3, 0, 0, 0, 0, 1, 0, NAN, 0.5, "calibration breakpoint 1: score is not finite (nan)"},
        {2, 3, 0, 0, 0, 0, 1, 0, 1, -INFINITY, "calibration breakpoint 1: probability is not"},
        {2, 3, 1, 2, 0, 0, 1, 0, 0.5, 0.5, "calibration counts 2 positives among 1 samples"},
        {1, 0, 0, 0, 0.5, 0, 0, 0, 1, 0.5, "Platt coefficient a = 0.5 is positive"},
        {1, 0, 0, 0, -1, NAN, 0, 0, 1, 0.5, "Platt coefficient b is not finite (nan)"},
        {1, 0, 0, 0, INFINITY, 0, 0, 0, 1, 0.5, "Platt coefficient a is not finite (inf)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double s3[3] = {-1, cases[i].s1, 2}, p3[3] = {0, cases[i].p1, 0.5};
        uint32_t pts = cases[i].with_points ? 3 : 0;
        memset(p, 0, sizeof p);
        n = pfpc_payload(p, cases[i].kind, pts, cases[i].samples, cases[i].positives, cases[i].a,
                         cases[i].b, pts ? s3 : NULL, p3);
        le32(p + 4, cases[i].n);
        if (cases[i].len) n = cases[i].len;
        len = craft_pfpc(&c, p, n);
        expect_fail(c.buf, len, PS_MODEL_EFORMAT, cases[i].msg, cases[i].msg);
    }
    /* a count that claims far more than the bytes there are */
    n = pfpc_payload(p, 2, 300, 0, 0, 0, 0, sc, pr);
    len = craft_pfpc(&c, p, 40 + 16 * 3);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "isotonic calibration has 300 breakpoints",
                "count 300");
    /* twice */
    n = pfpc_payload(p, 1, 0, 0, 0, -1, 0, NULL, NULL);
    craft_begin(&c);
    craft_small_hpar(&c);
    craft_section(&c, "PFPC", 1, p, n);
    craft_small_parm(&c);
    craft_section(&c, "PFPC", 1, p, n);
    len = craft_end(&c);
    expect_fail(c.buf, len, PS_MODEL_EFORMAT, "duplicate section PFPC", "duplicate PFPC");
}

int main(void)
{
    test_crc32();
    test_round_trip();
    test_layout();
    test_truncation();
    test_bit_flips();
    test_header();
    test_crafted();
    test_values();
    test_encode_refuses();
    test_calibration_section();
    test_files();
    return test_finish("test_model_file");
}
