/*
 * test_csv.c - the CSV reader on well-formed and broken files.
 *
 * Every case is a real file in a fresh mkdtemp directory (one gzip'd with
 * zlib itself), because the reader's job is files: line ends, compression,
 * truncation. Errors are checked for the file name, the line (and column)
 * and the reason, since a message without them is what this reader exists
 * to avoid.
 */
#include "server/csv.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];

static const char *write_file(const char *name, const char *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return path;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
    return path;
}

static const char *write_str(const char *name, const char *data)
{
    return write_file(name, data, strlen(data));
}

/* Read a file that must parse. */
static int read_ok(const char *path, ps_csv *c)
{
    char err[512];
    int rc = ps_csv_read(path, c, err, sizeof err);
    CHECKF(rc == 0, "%s: %s", path, err);
    return rc == 0;
}

/* Read a file that must fail, with every fragment in the message. */
static void read_fails(const char *path, const char *frag1, const char *frag2)
{
    char err[512];
    ps_csv c;
    int rc = ps_csv_read(path, &c, err, sizeof err);
    CHECKF(rc == -1, "%s parsed but should not", path);
    CHECK(c.values == NULL && c.rows == 0 && c.names == NULL && c.labels == NULL);
    CHECKF(strstr(err, path) == err || !strcmp(path, "-"), "message does not start with %s: %s",
           path, err);
    CHECKF(!frag1 || strstr(err, frag1), "'%s' not in: %s", frag1, err);
    CHECKF(!frag2 || strstr(err, frag2), "'%s' not in: %s", frag2, err);
}

static void test_good(void)
{
    ps_csv c;
    /* Header, LF, final newline. */
    if (read_ok(write_str("h.csv", "cpu,mem\n1,2\n3.5,-4e-1\n"), &c)) {
        CHECK(c.rows == 2 && c.cols == 2 && c.names && !c.labels && !c.label_name);
        CHECK(!strcmp(c.names[0], "cpu") && !strcmp(c.names[1], "mem"));
        CHECK(c.values[0] == 1 && c.values[1] == 2 && c.values[2] == 3.5f && c.values[3] == -0.4f);
        ps_csv_free(&c);
        CHECK(c.values == NULL && c.rows == 0);
    }
    /* No header, CRLF, no final newline, spaces around fields. */
    if (read_ok(write_str("crlf.csv", "1, 2 ,3\r\n 4,5,6 \r\n7,8,9"), &c)) {
        CHECK(c.rows == 3 && c.cols == 3 && !c.names && !c.labels);
        CHECK(c.values[4] == 5 && c.values[8] == 9);
        ps_csv_free(&c);
    }
    /* Blank lines at either end, BOM. */
    if (read_ok(write_str("blank.csv", "\xEF\xBB\xBF\n\na\n1\n2\r\n\r\n\n  \n"), &c)) {
        CHECK(c.rows == 2 && c.cols == 1 && c.names && !strcmp(c.names[0], "a"));
        ps_csv_free(&c);
    }
    /* NAB: a timestamp label column under a header. */
    if (read_ok(write_str("nab.csv", "timestamp,value\n2014-04-01 00:00:00,19.761\n"
                                     "2014-04-01 00:05:00,20.5\n"),
                &c)) {
        CHECK(c.rows == 2 && c.cols == 1 && c.labels && c.label_name && c.names);
        CHECK(!strcmp(c.label_name, "timestamp") && !strcmp(c.names[0], "value"));
        CHECK(!strcmp(c.labels[1], "2014-04-01 00:05:00") && c.values[0] == 19.761f);
        ps_csv_free(&c);
    }
    /* A label column without a header; one of a single row. */
    if (read_ok(write_str("lab.csv", "t0,1,2\nt1,3,4\n"), &c)) {
        CHECK(c.rows == 2 && c.cols == 2 && c.labels && !c.names && !c.label_name);
        CHECK(!strcmp(c.labels[0], "t0") && c.values[3] == 4);
        ps_csv_free(&c);
    }
    if (read_ok(write_str("lab1.csv", "t0,1.5"), &c)) {
        CHECK(c.rows == 1 && c.cols == 1 && c.labels && c.values[0] == 1.5f);
        ps_csv_free(&c);
    }
    /* A header whose only non-number is over a numeric first column. */
    if (read_ok(write_str("hdr0.csv", "t0,1\n2,3\n"), &c)) {
        CHECK(c.rows == 1 && c.cols == 2 && c.names && !c.labels && !strcmp(c.names[0], "t0"));
        ps_csv_free(&c);
    }
    /* A header over one numeric column. */
    if (read_ok(write_str("one.csv", "time\n1\n2\n"), &c)) {
        CHECK(c.rows == 2 && c.cols == 1 && c.names && !c.labels);
        ps_csv_free(&c);
    }
    /* Quoted header fields with a comma and an escaped quote; quoted numbers. */
    if (read_ok(write_str("q.csv", "\"a,b\", \"say \"\"hi\"\"\"\n\"1\",2\n"), &c)) {
        CHECK(c.rows == 1 && c.cols == 2 && !strcmp(c.names[0], "a,b") &&
              !strcmp(c.names[1], "say \"hi\"") && c.values[0] == 1);
        ps_csv_free(&c);
    }
    /* gzip, written by zlib itself, spread over several internal chunks. */
    char gzpath[256];
    snprintf(gzpath, sizeof gzpath, "%s/data.csv.gz", dir);
    gzFile gz = gzopen(gzpath, "wb");
    CHECK(gz != NULL);
    if (gz) {
        gzprintf(gz, "x,y\n");
        for (int i = 0; i < 20000; i++)
            gzprintf(gz, "%d,%d.25\n", i, -i);
        gzclose(gz);
        if (read_ok(gzpath, &c)) {
            CHECK(c.rows == 20000 && c.cols == 2 && !strcmp(c.names[1], "y"));
            CHECK(c.values[2 * 19999] == 19999 && c.values[2 * 19999 + 1] == -19999.25f);
            ps_csv_free(&c);
        }
        /* Truncated and corrupted gzip: refused, never half-read silently. */
        FILE *f = fopen(gzpath, "rb");
        static unsigned char buf[1 << 20];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        CHECK(n > 100);
        read_fails(write_file("trunc.csv.gz", (char *)buf, n / 2), "truncated", NULL);
        for (size_t i = n / 3; i < n / 3 + 64; i++)
            buf[i] ^= 0x5a;
        read_fails(write_file("corrupt.csv.gz", (char *)buf, n), "gzip", NULL);
    }
    /* stdin as "-". */
    int fd = open(write_str("stdin.csv", "1,2\n3,4\n"), O_RDONLY);
    int saved = dup(STDIN_FILENO);
    CHECK(fd >= 0 && saved >= 0 && dup2(fd, STDIN_FILENO) == STDIN_FILENO);
    if (read_ok("-", &c)) {
        CHECK(c.rows == 2 && c.values[3] == 4);
        ps_csv_free(&c);
    }
    dup2(saved, STDIN_FILENO);
    close(saved);
    close(fd);
}

static void test_bad(void)
{
    read_fails(write_str("empty.csv", ""), "empty", NULL);
    read_fails(write_str("blanks.csv", "\n \r\n\n"), "empty", NULL);
    read_fails(write_str("hdr.csv", "a,b\n"), "no data rows", NULL);
    read_fails(write_str("ragged.csv", "a,b\n1,2\n3\n"), "ragged.csv:3:", "1 field, expected 2");
    read_fails(write_str("ragged2.csv", "1,2\n3,4,5\n"), ":2: 3 fields", "as on line 1");
    read_fails(write_str("word.csv", "a,b\n1,2\n3,x7\n"), ":3:2: 'x7' is not a number (column 'b')",
               NULL);
    read_fails(write_str("word2.csv", "1,2\n3,4\nq,5\n"), ":3:1: 'q' is not a number", NULL);
    read_fails(write_str("nan.csv", "a\n1\nnan\n"), ":3:1: 'nan' is not finite", NULL);
    read_fails(write_str("inf.csv", "1,-inf\n"), ":2", "not finite");
    read_fails(write_str("big.csv", "1\n1e39\n"), ":2:1: '1e39' is out of the range", NULL);
    read_fails(write_str("huge.csv", "1\n1e999\n"), "out of the range", NULL);
    read_fails(write_str("emptyval.csv", "1,2\n3,\n"), ":2:2: empty value", NULL);
    read_fails(write_str("gap.csv", "1\n2\n\n3\n"), ":3: blank line between rows", NULL);
    read_fails(write_file("nul.csv", "1,2\n3,\0\n", 8), ":2: NUL byte", NULL);
    read_fails(write_str("quote.csv", "\"a,b\n1\n"), ":1:1: unterminated", NULL);
    read_fails(write_str("quote2.csv", "\"a\"x,b\n1,2\n"), "text after a closing quote", NULL);
    read_fails(write_str("labonly.csv", "abc\ndef\n"), ":1:1: 'abc' is not a number", NULL);
    read_fails(write_str("lab2.csv", "t0,1\nt1,3\nt2,x\n"), ":3:2: 'x' is not a number", NULL);

    /* A line over the bound, without reading it all into memory first. */
    size_t n = PS_CSV_MAX_LINE + 100;
    char *big = malloc(n);
    CHECK(big != NULL);
    if (big) {
        memcpy(big, "1\n", 2);
        memset(big + 2, '7', n - 2);
        read_fails(write_file("long.csv", big, n), ":2: line longer than", NULL);
        free(big);
    }
    char missing[128];
    snprintf(missing, sizeof missing, "%s/does-not-exist.csv", dir);
    read_fails(missing, "cannot open", "No such file");
    read_fails(dir, NULL, NULL); /* a directory */

    /* Errors never overflow a small buffer, and still terminate it. */
    char small[16];
    ps_csv c;
    CHECK(ps_csv_read(missing, &c, small, sizeof small) == -1 && strlen(small) < sizeof small);
}

static void cleanup(void)
{
    /* The names above, and nothing else, live in dir. */
    static const char *names[] = {
        "h.csv",     "crlf.csv",   "blank.csv",   "nab.csv",      "lab.csv",        "lab1.csv",
        "one.csv",   "q.csv",      "data.csv.gz", "trunc.csv.gz", "corrupt.csv.gz", "stdin.csv",
        "empty.csv", "blanks.csv", "hdr.csv",     "ragged.csv",   "ragged2.csv",    "word.csv",
        "word2.csv", "nan.csv",    "inf.csv",     "big.csv",      "huge.csv",       "emptyval.csv",
        "gap.csv",   "nul.csv",    "quote.csv",   "quote2.csv",   "labonly.csv",    "lab2.csv",
        "long.csv",  "hdr0.csv",
    };
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ps_csv_XXXXXX");
    if (!mkdtemp(dir)) TEST_SKIP("mkdtemp failed");
    test_good();
    test_bad();
    cleanup();
    return test_finish("test_csv");
}
