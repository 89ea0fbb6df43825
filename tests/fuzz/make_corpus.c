/*
 * make_corpus.c - writes the seed corpus of the protocol fuzzer
 * (tests/fuzz/corpus/): one small file per message, valid ones written by
 * the project's encoders, broken ones by msgpack-c's packer, which writes
 * whatever it is told. Usage: make_corpus DIR.
 *
 * The corpus in the repository is this program's output plus the
 * regression inputs the fuzzer found (regress-*), which it does not write.
 */
#include "server/protocol.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;
static int failures;

static void save(const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        failures++;
    }
}

static void save_buf(const char *name, int rc, const ps_buf *b)
{
    if (rc != PS_PROTO_OK) {
        fprintf(stderr, "make_corpus: %s: encoding failed (%s)\n", name, ps_proto_code_name(rc));
        failures++;
        return;
    }
    save(name, b->data, b->len);
}

/* ---- hand-made messages ---------------------------------------------------- */

static msgpack_sbuffer sb;
static msgpack_packer pk;

static msgpack_packer *start(size_t keys)
{
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, keys);
    return &pk;
}

static void key(const char *k)
{
    msgpack_pack_str_with_body(&pk, k, strlen(k));
}

static void str(const char *s)
{
    msgpack_pack_str_with_body(&pk, s, strlen(s));
}

/* "v": v, "op": op */
static void head(unsigned v, const char *op)
{
    key("v");
    msgpack_pack_unsigned_int(&pk, v);
    key("op");
    str(op);
}

static void save_sb(const char *name)
{
    save(name, sb.data, sb.size);
}

static void hand_made(void)
{
    /* Row form with every number encoding where a number is expected. */
    start(3);
    head(1, "score");
    key("rows");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint16(&pk, 300);
    msgpack_pack_int64(&pk, 9);
    msgpack_pack_float(&pk, 1.7e9f);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int8(&pk, -3);
    msgpack_pack_uint32(&pk, 70000);
    msgpack_pack_double(&pk, 0.25);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 7);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_int32(&pk, 1700000001);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_fix_int8(&pk, -32);
    msgpack_pack_float(&pk, -0.0f);
    msgpack_pack_int16(&pk, -1000);
    save_sb("req-rows-number-types");

    /* An unknown key holding ext, nil, bool and a nested map: skipped. */
    start(3);
    head(1, "health");
    key("x-future");
    msgpack_pack_array(&pk, 4);
    msgpack_pack_ext_with_body(&pk, "\x01\x02", 2, 5);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_map(&pk, 1);
    key("a");
    msgpack_pack_bin_with_body(&pk, "z", 1);
    save_sb("req-health-unknown-key");

    /* The same key twice. */
    start(3);
    head(1, "health");
    key("v");
    msgpack_pack_unsigned_int(&pk, 1);
    save_sb("bad-duplicate-key");

    /* A version this side does not speak, with an id to echo. */
    start(3);
    head(2, "info");
    key("id");
    msgpack_pack_uint64(&pk, 77);
    save_sb("bad-version");

    /* An unknown op. */
    start(2);
    head(1, "scores");
    save_sb("bad-unknown-op");

    /* NaN in row form. */
    start(4);
    head(1, "score");
    key("k");
    msgpack_pack_unsigned_int(&pk, 2);
    key("rows");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_double(&pk, 1.0);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_float(&pk, 1.0f);
    msgpack_pack_double(&pk, NAN);
    save_sb("bad-rows-nan");

    /* Columnar form with one processor twice (out of order: the sort path). */
    start(7);
    head(1, "score");
    key("k");
    msgpack_pack_unsigned_int(&pk, 1);
    key("ids");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 9);
    msgpack_pack_uint8(&pk, 4);
    msgpack_pack_uint8(&pk, 9);
    key("seqs");
    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++)
        msgpack_pack_uint8(&pk, 1);
    key("ts");
    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++)
        msgpack_pack_uint8(&pk, 1);
    key("metrics");
    msgpack_pack_bin_with_body(&pk, "\0\0\x80?\0\0\x80?\0\0\x80?", 12);
    save_sb("bad-repeated-id");

    /* Nested 20 deep under an unknown key (at most 16). */
    start(3);
    head(1, "info");
    key("deep");
    for (int i = 0; i < 20; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    save_sb("bad-too-deep");

    /* A score reply whose state is beyond uint8 and whose top has one
     * entry too many. */
    start(8);
    head(1, "score");
    key("tick");
    msgpack_pack_uint8(&pk, 1);
    key("ids");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint8(&pk, 42);
    key("state");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint16(&pk, 256);
    key("score");
    msgpack_pack_bin_with_body(&pk, "\0\0\0\0", 4);
    key("pfp");
    msgpack_pack_bin_with_body(&pk, "\0\0\0\0\0\0\0\0", 8);
    key("top");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int8(&pk, -1);
    msgpack_pack_int8(&pk, -1);
    save_sb("bad-rep-state-top");

    /* A PUB message whose records would run past seq 2^64 - 1. */
    start(11);
    head(1, "pub");
    key("run");
    msgpack_pack_uint8(&pk, 1);
    key("seq");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    key("tick");
    msgpack_pack_uint8(&pk, 1);
    key("t");
    msgpack_pack_double(&pk, 1.0);
    key("ids");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    key("ts");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    key("score");
    msgpack_pack_bin_with_body(&pk, "\0\0\0\0\0\0\0\0", 8);
    key("pfp");
    msgpack_pack_bin_with_body(&pk, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    key("top");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int8(&pk, -1);
    msgpack_pack_int8(&pk, 0);
    save_sb("bad-pub-seq-overflow");

    /* A latest request naming one processor twice (out of order: the sort
     * path), and one naming none. */
    start(3);
    head(1, "latest");
    key("ids");
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 9);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_uint8(&pk, 4);
    msgpack_pack_uint8(&pk, 9);
    save_sb("bad-latest-repeated-id");
    start(3);
    head(1, "latest");
    key("ids");
    msgpack_pack_array(&pk, 0);
    save_sb("bad-latest-empty");

    /* A latest reply with a state from the future and a NaN ts. */
    start(9);
    head(1, "latest");
    key("tick");
    msgpack_pack_uint8(&pk, 3);
    key("ids");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    key("state");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 5);
    msgpack_pack_uint8(&pk, 200);
    key("score");
    msgpack_pack_bin_with_body(&pk, "\0\0\0\0\0\0\0\0", 8);
    key("pfp");
    msgpack_pack_bin_with_body(&pk, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    key("top");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int8(&pk, -1);
    msgpack_pack_int8(&pk, -1);
    key("ts");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_float(&pk, NAN);
    save_sb("bad-rep-latest-nan-ts");

    /* PUB messages whose metrics are one float short, and hold a NaN. */
    for (int c = 0; c < 2; c++) {
        start(13);
        head(1, "pub");
        key("run");
        msgpack_pack_uint8(&pk, 1);
        key("seq");
        msgpack_pack_uint8(&pk, 1);
        key("tick");
        msgpack_pack_uint8(&pk, 1);
        key("t");
        msgpack_pack_double(&pk, 1.0);
        key("ids");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_uint8(&pk, 1);
        key("ts");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_uint8(&pk, 1);
        key("score");
        msgpack_pack_bin_with_body(&pk, "\0\0\0\0", 4);
        key("pfp");
        msgpack_pack_bin_with_body(&pk, "\0\0\0\0\0\0\0\0", 8);
        key("top");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int8(&pk, -1);
        key("k");
        msgpack_pack_uint8(&pk, 2);
        key("x");
        if (c == 0)
            msgpack_pack_bin_with_body(&pk, "\0\0\x80?", 4);
        else
            msgpack_pack_bin_with_body(&pk, "\0\0\x80?\0\0\xc0\x7f", 8);
        save_sb(c == 0 ? "bad-pub-x-short" : "bad-pub-x-nan");
    }

    /* A long key twice (the message shows it cut short). */
    start(4);
    head(1, "health");
    key("a-key-longer-than-thirty-two-bytes");
    msgpack_pack_nil(&pk);
    key("a-key-longer-than-thirty-two-bytes");
    msgpack_pack_nil(&pk);
    save_sb("bad-long-key-twice");

    /* Raw bytes: a count the message cannot hold, a reserved byte, bytes
     * after the map, a cut string. */
    static const uint8_t huge[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
    save("bad-huge-count", huge, sizeof huge);
    static const uint8_t reserved[] = {0x82, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xc1};
    save("bad-reserved-byte", reserved, sizeof reserved);
    static const uint8_t trailing[] = {0x82, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa6,
                                       'h',  'e',  'a', 'l',  't',  'h', 0x00};
    save("bad-trailing-byte", trailing, sizeof trailing);
    static const uint8_t cut[] = {0x82, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xd9, 0x10, 'i', 'n'};
    save("bad-cut-string", cut, sizeof cut);
}

/* ---- messages the encoders write ------------------------------------------- */

static void encoded(void)
{
    ps_buf b = {0};
    char err[256];
    uint64_t id = 258;

    /* The worked example of docs/protocol.md, in both forms. */
    uint64_t ids1[] = {42}, seqs1[] = {5};
    double ts1[] = {1700000000.0};
    float m1[] = {4.0f, 1.5f};
    ps_proto_request q = {.op = PS_PROTO_OP_SCORE,
                          .has_id = true,
                          .id = id,
                          .n = 1,
                          .k = 2,
                          .ids = ids1,
                          .seqs = seqs1,
                          .ts = ts1,
                          .metrics = m1};
    save_buf("req-score-columns",
             ps_proto_encode_request(&b, &q, PS_PROTO_FORM_COLUMNS, err, sizeof err), &b);
    save_buf("req-score-rows", ps_proto_encode_request(&b, &q, PS_PROTO_FORM_ROWS, err, sizeof err),
             &b);

    /* Three heartbeats out of id order, K = 3. */
    uint64_t ids3[] = {30, 10, 20}, seqs3[] = {1, 2, 3};
    double ts3[] = {1.5, 2.5, 3.5};
    float m3[] = {0.0f, -1.0f, 2.0f, 3.5f, 1e-40f, -7.0f, 8.0f, 9.0f, 1e30f};
    ps_proto_request q3 = {.op = PS_PROTO_OP_SCORE,
                           .n = 3,
                           .k = 3,
                           .ids = ids3,
                           .seqs = seqs3,
                           .ts = ts3,
                           .metrics = m3};
    save_buf("req-score-columns-n3",
             ps_proto_encode_request(&b, &q3, PS_PROTO_FORM_COLUMNS, err, sizeof err), &b);

    ps_proto_request h = {.op = PS_PROTO_OP_HEALTH, .has_id = true, .id = 1};
    save_buf("req-health", ps_proto_encode_request(&b, &h, PS_PROTO_FORM_COLUMNS, err, sizeof err),
             &b);
    ps_proto_request in = {.op = PS_PROTO_OP_INFO};
    save_buf("req-info", ps_proto_encode_request(&b, &in, PS_PROTO_FORM_COLUMNS, err, sizeof err),
             &b);
    /* The example of docs/protocol.md: three processors, out of order. */
    uint64_t lids[] = {42, 7, 99};
    ps_proto_request lq = {
        .op = PS_PROTO_OP_LATEST, .has_id = true, .id = 259, .n = 3, .ids = lids};
    save_buf("req-latest", ps_proto_encode_request(&b, &lq, PS_PROTO_FORM_COLUMNS, err, sizeof err),
             &b);

    ps_proto_result res[] = {{.id = 42, .score = 1.5f, .pfp = 0.25, .top = 1, .state = 1},
                             {.id = 7, .score = 0.0f, .pfp = 0.0, .top = -1, .state = 0}};
    ps_proto_score_reply sr = {.tick = 7, .n = 2, .results = res};
    save_buf("rep-score", ps_proto_encode_score_reply(&b, &id, &sr, err, sizeof err), &b);
    ps_proto_result lres[] = {{.id = 42, .score = 1.5f, .pfp = 0.25, .top = 1, .state = 1},
                              {.id = 7, .top = -1, .state = PS_PROTO_STATE_WARMING_UP},
                              {.id = 99, .top = -1, .state = PS_PROTO_STATE_UNKNOWN}};
    double lts[] = {1700000000.0, 1699999999.5, 0.0};
    ps_proto_latest_reply lr = {.tick = 7, .n = 3, .results = lres, .ts = lts};
    save_buf("rep-latest", ps_proto_encode_latest_reply(&b, &id, &lr, err, sizeof err), &b);
    ps_proto_health hr = {.status = PS_PROTO_STATUS_OK, .uptime = 12.5, .tick = 3};
    save_buf("rep-health", ps_proto_encode_health_reply(&b, NULL, &hr, err, sizeof err), &b);
    ps_proto_info ir = {.version = "preshift 0.1.0",
                        .model = "models/default.psm",
                        .backend = "cpu (avx2)",
                        .k = 8,
                        .hidden = 32,
                        .run = 99,
                        .warming_up = 1,
                        .scored = 2,
                        .stale = 3,
                        .max_message_bytes = PS_PROTO_MAX_MESSAGE,
                        .max_batch = PS_PROTO_MAX_BATCH,
                        .max_processors = 1000};
    save_buf("rep-info", ps_proto_encode_info_reply(&b, &id, &ir, err, sizeof err), &b);
    save_buf("rep-error",
             ps_proto_encode_error(&b, &id, PS_PROTO_E_BAD_REQUEST,
                                   "ids has 3 entries but seqs "
                                   "has 2"),
             &b);

    ps_proto_record rec[] = {{.id = 42, .ts = 1700000000.0, .score = 1.5f, .pfp = 0.25, .top = 1},
                             {.id = 43, .ts = 1700000000.5, .score = 2.0f, .pfp = 1.0, .top = 0}};
    ps_proto_pub pub = {.run = 5, .seq = 1, .tick = 7, .t = 1700000001.0, .n = 2, .records = rec};
    save_buf("pub", ps_proto_encode_pub(&b, &pub, err, sizeof err), &b);
    ps_proto_pub empty = {.run = 5, .seq = 3, .tick = 8, .t = 1700000002.0};
    save_buf("pub-empty", ps_proto_encode_pub(&b, &empty, err, sizeof err), &b);
    /* With the records' metrics, K = 3; and K announced with no records. */
    float x[] = {4.0f, 1.5f, -0.0f, 1e-40f, 3e38f, 7.0f};
    ps_proto_pub px = {
        .run = 5, .seq = 5, .tick = 9, .t = 1700000003.0, .n = 2, .records = rec, .k = 3, .x = x};
    save_buf("pub-metrics", ps_proto_encode_pub(&b, &px, err, sizeof err), &b);
    ps_proto_pub pk0 = {.run = 5, .seq = 7, .tick = 10, .t = 1700000004.0, .k = 3};
    save_buf("pub-metrics-empty", ps_proto_encode_pub(&b, &pk0, err, sizeof err), &b);
    ps_buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    hand_made();
    encoded();
    msgpack_sbuffer_destroy(&sb);
    return failures ? 1 : 0;
}
