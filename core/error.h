/*
 * error.h - the one way the project's C code reports a failure: a negative
 * code returned, the reason written into the caller's buffer.
 */
#ifndef PRESHIFT_ERROR_H
#define PRESHIFT_ERROR_H

#include <stddef.h>

/* Write the printf-style reason into err (if err and errlen) and return code. */
int ps_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
