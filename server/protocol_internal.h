/*
 * protocol_internal.h - what protocol.c (names, encoders) and
 * protocol_decode.c share: checks both sides of the wire apply the same way,
 * so that an encoder never writes a message its decoder would refuse.
 */
#ifndef PRESHIFT_PROTOCOL_INTERNAL_H
#define PRESHIFT_PROTOCOL_INTERNAL_H

#include "protocol.h"

/*
 * PS_PROTO_OK when the n ids are pairwise distinct, else PS_PROTO_E_BAD_REQUEST
 * naming the first repeat ("ids[5] repeats ids[2] (processor 17)"). scratch
 * holds 2n values; it is only touched when the ids are not increasing.
 */
int psp_check_distinct(const uint64_t *ids, size_t n, uint64_t *scratch, char *err, size_t errlen);

/* Why the float x cannot be sent: "NaN", "infinite", or NULL when it can. */
const char *psp_not_finite(double x);

/* Little-endian float32 and float64, whatever the host's byte order. */
void psp_put_f32le(uint8_t *p, float x);
void psp_put_f64le(uint8_t *p, double x);
float psp_get_f32le(const uint8_t *p);
double psp_get_f64le(const uint8_t *p);

#endif
