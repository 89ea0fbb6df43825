/*
 * cli.h - parsing of command-line values, shared by the subcommands, so that
 * every command refuses "12x", "-3" or an empty list the same way: with a
 * message that names the flag and the value.
 */
#ifndef PRESHIFT_CLI_H
#define PRESHIFT_CLI_H

#include "kernels/kernels.h"

#include <stddef.h>

/* Parse a whole decimal integer in [lo, hi]; 0 or -1 with a message in err. */
int ps_parse_long(const char *flag, const char *s, long lo, long hi, long *out, char *err,
                  size_t errlen);
/* Parse a whole finite number in [lo, hi]. */
int ps_parse_double(const char *flag, const char *s, double lo, double hi, double *out, char *err,
                    size_t errlen);
/*
 * Parse a comma-separated list of integers in [lo, hi] ("1000,10000"),
 * at most cap entries; returns the count (> 0) or -1 with a message.
 */
int ps_parse_long_list(const char *flag, const char *s, long lo, long hi, long *out, size_t cap,
                       char *err, size_t errlen);

/* Parse a backend name: "cpu" or "cuda". */
int ps_parse_backend(const char *flag, const char *s, ps_backend_kind *out, char *err,
                     size_t errlen);

#endif
