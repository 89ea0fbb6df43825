/*
 * prom_text.h - reading one value out of a Prometheus text exposition
 * (what /metrics of `preshift serve` and `preshift manage` answer).
 */
#ifndef PRESHIFT_PROM_TEXT_H
#define PRESHIFT_PROM_TEXT_H

/*
 * The value of the series named exactly `series`, labels included as
 * rendered (`name{a="x",b="y"}`), in text: 0, or -1 when it is absent or
 * its value is not a number.
 */
int ps_prom_value(const char *text, const char *series, double *v);

#endif
