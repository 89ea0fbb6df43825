/*
 * csv.h - metrics from CSV files: one row per tick, one column per metric.
 *
 * Files are untrusted, so the reader never trusts a size it has not counted:
 * lines are bounded (PS_CSV_MAX_LINE), so is everything it keeps
 * (PS_CSV_MAX_BYTES), and every refusal names the file, the line and the
 * column and says what was wrong, e.g.
 *     data.csv:12:3: 'n/a' is not a number (column 'cpu')
 *
 * Accepted:
 *  - plain or gzip-compressed (detected from the content; "-" reads stdin);
 *  - an optional header: a first line with a non-numeric field in a column
 *    that is numeric below it;
 *  - an optional leading label column (NAB style "timestamp,value"): when
 *    the first field of the first data row is not a number, the first
 *    column is kept as strings and every other column is numeric;
 *  - LF or CRLF line ends, with or without a final newline, blank lines
 *    before the first and after the last row, a UTF-8 byte order mark,
 *    spaces around fields, and double-quoted fields ("a,b" and "" inside).
 * Refused: ragged rows, empty or non-numeric values, NaN and infinities
 * (a gap in a metric is not something to train or score on silently),
 * numbers beyond the float range, blank lines between rows, NUL bytes,
 * quoted fields spanning lines, and a file with no data rows.
 */
#ifndef PRESHIFT_CSV_H
#define PRESHIFT_CSV_H

#include <stddef.h>

#define PS_CSV_MAX_LINE ((size_t)1 << 20)  /* bytes of one line */
#define PS_CSV_MAX_BYTES ((size_t)1 << 30) /* values, names and labels kept, together */

typedef struct ps_csv {
    size_t rows, cols; /* numeric columns only */
    float *values;     /* rows x cols, row-major */
    char **names;      /* cols header names, or NULL without a header */
    char **labels;     /* rows strings of the leading label column, or NULL */
    char *label_name;  /* the label column's header, or NULL */
} ps_csv;

/*
 * Read path ("-" for stdin) into out. Returns 0, or -1 with out zeroed and a
 * message in err that starts with the file's name.
 */
int ps_csv_read(const char *path, ps_csv *out, char *err, size_t errlen);
void ps_csv_free(ps_csv *csv);

#endif
