/*
 * serve_http.h - the scoring server's HTTP side, on nng's HTTP server:
 *
 *   GET /metrics   Prometheus text format (serve_metrics.h)
 *   GET /healthz   200 while the process serves at all (liveness)
 *   GET /readyz    200 once the model is loaded (and, later, state restored)
 *                  and until shutdown begins, 503 otherwise (readiness)
 *
 * Handlers run on nng's threads and only read the metrics under their mutex.
 */
#ifndef PRESHIFT_SERVE_HTTP_H
#define PRESHIFT_SERVE_HTTP_H

#include "serve_metrics.h"

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include <stddef.h>

typedef struct ps_serve_http ps_serve_http;

/*
 * Serve on url (http://HOST:PORT or https://HOST:PORT; port 0 picks a free
 * one). tls is used for https:// and may be NULL otherwise. NULL with the
 * reason in err on failure.
 */
ps_serve_http *ps_serve_http_start(const char *url, nng_tls_config *tls, ps_serve_metrics *m,
                                   char *err, size_t errlen);
/* The TCP port it listens on. */
int ps_serve_http_port(const ps_serve_http *h);
void ps_serve_http_stop(ps_serve_http *h);

#endif
