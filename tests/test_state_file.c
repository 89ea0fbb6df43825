/*
 * test_state_file.c - the snapshot file (server/state_file.h).
 *
 * A scorer saved and loaded continues bit for bit, with every caller blob
 * back. A missing file is no snapshot. A truncated file, a flipped byte, a
 * file from another configuration, a slot beyond the scorer: refused with a
 * message that says what and where, and the scorer untouched. A save that
 * fails, before writing or part way through (the file size limit cuts the
 * write), leaves the previous snapshot as it was and no temporary file.
 */
#define _POSIX_C_SOURCE 200809L

#include "core/bytes.h"
#include "server/state_file.h"
#include "state_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static char dir[64];
static char path[128];

/* The blob a server would keep: its id for the slot and a sequence number. */
typedef struct blob {
    uint8_t bytes[16];
} blob;

static blob blob_of(uint32_t slot)
{
    blob b;
    ps_put_u64(b.bytes, 0xfeed000000000000ull + slot);
    ps_put_u64(b.bytes + 8, 1000u * slot + 7);
    return b;
}

typedef struct seen {
    int count, bad;
    uint32_t slots[FIX_P];
    int fail_at; /* refuse the record with this index, -1 never */
} seen;

static int on_record(void *ctx, uint32_t slot, const uint8_t *extra, size_t len)
{
    seen *s = ctx;
    blob want = blob_of(slot);
    /* Slot 4 was saved without a blob. */
    size_t want_len = slot == 4 ? 0 : sizeof want.bytes;
    if (len != want_len || (len && memcmp(extra, want.bytes, len) != 0)) s->bad++;
    if (s->count == s->fail_at) return -1;
    if (s->count < FIX_P) s->slots[s->count] = slot;
    s->count++;
    return 0;
}

static int save_all(const ps_scorer *s, const char *to, char *err, size_t errlen)
{
    uint32_t slots[FIX_P];
    blob b[FIX_P];
    const uint8_t *extra[FIX_P];
    size_t len[FIX_P];
    for (uint32_t i = 0; i < FIX_P; i++) {
        slots[i] = FIX_P - 1 - i; /* any order */
        b[i] = blob_of(slots[i]);
        extra[i] = slots[i] == 4 ? NULL : b[i].bytes;
        len[i] = slots[i] == 4 ? 0 : sizeof b[i].bytes;
    }
    return ps_state_file_save(to, s, FIX_P, slots, extra, len, err, errlen);
}

static uint8_t *read_all(const char *from, size_t *len)
{
    FILE *f = fopen(from, "rb");
    CHECK(f != NULL);
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len ? *len : 1);
    CHECK(fread(b, 1, *len, f) == *len);
    fclose(f);
    return b;
}

static void write_all(const char *to, const uint8_t *b, size_t len)
{
    FILE *f = fopen(to, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(b, 1, len, f) == len);
    fclose(f);
}

/* Files in the test directory, to catch a temporary file left behind. */
static int files_in_dir(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* Whether every slot of s is still never seen. */
static int untouched(const ps_scorer *s, const ps_scorer *fresh)
{
    for (uint32_t p = 0; p < FIX_P; p++) {
        size_t len;
        uint8_t *b = fix_export(fresh, p, &len);
        int same = fix_state_is(s, p, b, len);
        free(b);
        if (!same) return 0;
    }
    return 1;
}

static ps_scorer *at_split(void)
{
    ps_scorer_config c = fix_config();
    ps_scorer *s = fix_scorer(&c);
    ps_score o[FIX_P];
    for (int r = 0; s && r < FIX_SPLIT; r++)
        fix_tick(s, r, o);
    return s;
}

static void test_round_trip(void)
{
    ps_scorer_config c = fix_config();
    ps_scorer *a = at_split(), *b = fix_scorer(&c);
    char err[256] = "";
    if (!a || !b) goto out;
    CHECKF(save_all(a, path, err, sizeof err) == 0, "%s", err);
    CHECK(files_in_dir() == 1);
    seen sn = {.fail_at = -1};
    ps_state_load_info info;
    CHECKF(ps_state_file_load(path, b, on_record, &sn, &info, err, sizeof err) == 0, "%s", err);
    CHECK(info.found == 1 && info.records == FIX_P && sn.count == FIX_P && sn.bad == 0);
    CHECKF(info.scored == 3, "%zu scored", info.scored); /* 0, 1, 2; 3 and 5 warm, 4 unseen */
    CHECK(info.fingerprint == ps_scorer_fingerprint(a));
    int diverged = -1;
    for (int r = FIX_SPLIT; r < FIX_ROWS; r++) {
        ps_score oa[FIX_P], ob[FIX_P];
        fix_tick(a, r, oa);
        fix_tick(b, r, ob);
        for (int p = 0; p < FIX_P && diverged < 0; p++)
            if (!fix_same(&oa[p], &ob[p])) diverged = r * FIX_P + p;
    }
    CHECKF(diverged < 0, "outputs differ first at tick %d, processor %d", diverged / FIX_P,
           diverged % FIX_P);

    /* An empty snapshot is a snapshot, of nothing. */
    ps_scorer *e = fix_scorer(&c);
    CHECKF(ps_state_file_save(path, a, 0, NULL, NULL, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(ps_state_file_load(path, e, NULL, NULL, &info, err, sizeof err) == 0);
    CHECK(info.found == 1 && info.records == 0);
    ps_scorer_free(e);
out:
    ps_scorer_free(a);
    ps_scorer_free(b);
}

static void test_missing(void)
{
    ps_scorer_config c = fix_config();
    ps_scorer *s = fix_scorer(&c);
    char missing[160], err[256] = "";
    snprintf(missing, sizeof missing, "%s/no-such-file", dir);
    ps_state_load_info info = {.found = 7};
    CHECK(ps_state_file_load(missing, s, NULL, NULL, &info, err, sizeof err) == 0);
    CHECK(info.found == 0 && info.records == 0);
    ps_scorer_free(s);
}

/* Load bytes b (written to a scratch file) into a fresh scorer: refused, untouched. */
static void expect_refused(const uint8_t *b, size_t len, int code, const char *what,
                           const char *label)
{
    char bad[160], err[512] = "";
    snprintf(bad, sizeof bad, "%s/bad", dir);
    write_all(bad, b, len);
    ps_scorer_config c = fix_config();
    ps_scorer *s = fix_scorer(&c), *fresh = fix_scorer(&c);
    seen sn = {.fail_at = -1};
    ps_state_load_info info;
    int rc = ps_state_file_load(bad, s, on_record, &sn, &info, err, sizeof err);
    CHECKF(rc == code, "%s: rc %d (want %d): %s", label, rc, code, err);
    CHECKF(strstr(err, bad) != NULL && (!what || strstr(err, what) != NULL),
           "%s: expected '%s' in: %s", label, what ? what : "", err);
    CHECKF(sn.count == 0 && untouched(s, fresh), "%s: the scorer changed", label);
    ps_scorer_free(s);
    ps_scorer_free(fresh);
    remove(bad);
}

static void test_damaged(void)
{
    ps_scorer *a = at_split();
    char err[256] = "";
    if (!a) return;
    CHECKF(save_all(a, path, err, sizeof err) == 0, "%s", err);
    size_t len;
    uint8_t *good = read_all(path, &len);
    if (!good) goto out;
    /* Truncated at every kind of place: in the header, in a record's frame,
     * blob, state and CRC, and in the trailer. */
    size_t cuts[] = {0,       3,       19,      20,      27,      28,     40,
                     len / 3, len / 2, len - 9, len - 8, len - 5, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char label[64];
        snprintf(label, sizeof label, "cut at %zu of %zu", cuts[i], len);
        expect_refused(good, cuts[i], PS_STATE_ECORRUPT, NULL, label);
    }
    /* The message says where: a cut inside the second record names it. */
    expect_refused(good, len / 2, PS_STATE_ECORRUPT, "record", "cut in a record");
    /* A flipped byte anywhere is refused (CRC), and said to be. */
    uint8_t *bad = malloc(len);
    for (size_t at = 0; at < len; at += 1 + at / 8) {
        memcpy(bad, good, len);
        bad[at] ^= 0x10;
        char label[64];
        snprintf(label, sizeof label, "flip at byte %zu", at);
        expect_refused(bad, len, PS_STATE_ECORRUPT, NULL, label);
    }
    memcpy(bad, good, len);
    bad[len / 2] ^= 1;
    expect_refused(bad, len, PS_STATE_ECORRUPT, "CRC mismatch", "flip in a record");
    expect_refused(bad, len, PS_STATE_ECORRUPT, "byte", "flip in a record, where");
    /* Bytes after the trailer. */
    uint8_t *longer = malloc(len + 3);
    memcpy(longer, good, len);
    memset(longer + len, 0, 3);
    expect_refused(longer, len + 3, PS_STATE_ECORRUPT, NULL, "trailing bytes");
    free(longer);
    free(bad);
out:
    free(good);
    ps_scorer_free(a);
}

static void test_mismatch(void)
{
    ps_scorer *a = at_split();
    char err[512] = "";
    if (!a) return;
    CHECKF(save_all(a, path, err, sizeof err) == 0, "%s", err);
    ps_scorer_config c = fix_config();
    c.metrics = 2;
    ps_scorer *s = fix_scorer(&c);
    CHECK(ps_state_file_load(path, s, NULL, NULL, NULL, err, sizeof err) == PS_STATE_EMISMATCH);
    CHECKF(strstr(err, "metrics") != NULL, "%s", err);
    ps_scorer_free(s);
    /* Fewer processors than the file's slots. */
    c = fix_config();
    c.processors = 3;
    s = fix_scorer(&c);
    CHECK(ps_state_file_load(path, s, NULL, NULL, NULL, err, sizeof err) == PS_STATE_EMISMATCH);
    CHECKF(strstr(err, "slot") != NULL, "%s", err);
    ps_scorer_free(s);
    ps_scorer_free(a);
}

/*
 * The caller refuses a record: everything restored so far is forgotten.
 * (Forgotten means the configured warm-up, so these scorers give no slot a
 * shorter one.)
 */
static void test_caller_refuses(void)
{
    ps_scorer *a = at_split();
    ps_scorer_config c = fix_config();
    char err[256] = "";
    ps_scorer *s = ps_scorer_create(fix_be, &fix_model, &c, err, sizeof err);
    ps_scorer *fresh = ps_scorer_create(fix_be, &fix_model, &c, err, sizeof err);
    if (!a || !s || !fresh) goto out;
    CHECKF(save_all(a, path, err, sizeof err) == 0, "%s", err);
    seen sn = {.fail_at = 3};
    ps_state_load_info info;
    CHECK(ps_state_file_load(path, s, on_record, &sn, &info, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "refused by the caller") != NULL, "%s", err);
    CHECK(info.records == 0 && untouched(s, fresh));
out:
    ps_scorer_free(a);
    ps_scorer_free(s);
    ps_scorer_free(fresh);
}

static void test_failed_save(void)
{
    ps_scorer *a = at_split();
    char err[256] = "";
    if (!a) return;
    CHECKF(save_all(a, path, err, sizeof err) == 0, "%s", err);
    size_t len;
    uint8_t *old = read_all(path, &len);

    /* Refused before writing: a slot out of range, a blob too long. */
    uint32_t slots[2] = {0, FIX_P};
    CHECK(ps_state_file_save(path, a, 2, slots, NULL, NULL, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "out of range") != NULL, "%s", err);
    slots[1] = 0;
    CHECK(ps_state_file_save(path, a, 2, slots, NULL, NULL, err, sizeof err) == PS_EINVAL);
    uint8_t big[PS_STATE_EXTRA_MAX + 1] = {0};
    const uint8_t *extra[1] = {big};
    size_t elen[1] = {sizeof big};
    CHECK(ps_state_file_save(path, a, 1, slots, extra, elen, err, sizeof err) == PS_EINVAL);

    /* A directory that does not exist. */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no-such-dir/state", dir);
    CHECK(ps_state_file_save(nodir, a, 0, NULL, NULL, NULL, err, sizeof err) == PS_STATE_EIO);
    CHECKF(strstr(err, "no-such-dir") != NULL, "%s", err);

    /* Part way through: the file size limit stops the write after 4 KiB. */
    struct rlimit was;
    CHECK(getrlimit(RLIMIT_FSIZE, &was) == 0);
    struct rlimit small = was;
    small.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    int rc = save_all(a, path, err, sizeof err);
    CHECK(setrlimit(RLIMIT_FSIZE, &was) == 0);
    signal(SIGXFSZ, prev);
    CHECKF(rc == PS_STATE_EIO, "rc %d: %s", rc, err);

    size_t now_len;
    uint8_t *now = read_all(path, &now_len);
    CHECK(now && now_len == len && memcmp(now, old, len) == 0);
    CHECKF(files_in_dir() == 1, "%d files: a temporary file was left", files_in_dir());
    ps_scorer_config c = fix_config();
    ps_scorer *s = fix_scorer(&c);
    CHECK(ps_state_file_load(path, s, NULL, NULL, NULL, err, sizeof err) == 0);
    ps_scorer_free(s);
    free(now);
    free(old);
    ps_scorer_free(a);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ps-state-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/state.psst", dir);
    fix_setup();
    test_round_trip();
    test_missing();
    test_damaged();
    test_mismatch();
    test_caller_refuses();
    test_failed_save();
    fix_teardown();
    remove(path);
    rmdir(dir);
    return test_finish("test_state_file");
}
