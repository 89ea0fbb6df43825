/*
 * tls_setup.h - nng TLS configurations from PEM files, the same way for
 * every socket preshift opens: the scoring server, the agent's transfer
 * socket and the manager's control socket on the server side; the client
 * library and the manager's transfers on the client side.
 */
#ifndef PRESHIFT_TLS_SETUP_H
#define PRESHIFT_TLS_SETUP_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include <stddef.h>

/*
 * A server configuration: present cert and key (PEM files, both needed);
 * with ca (NULL or "" for none), require every client to present a
 * certificate signed by a CA in that file. 0, or -1 with the reason
 * (naming the file) in err.
 */
int ps_tls_server_config(const char *cert, const char *key, const char *ca, nng_tls_config **out,
                         char *err, size_t errlen);

/*
 * A client configuration for url: verify the server against ca (NULL or
 * "": encrypt only), present cert and key when given (both or neither),
 * and expect server_name, else url's host. 0, or -1 with the reason.
 */
int ps_tls_client_config(const char *url, const char *ca, const char *cert, const char *key,
                         const char *server_name, nng_tls_config **out, char *err, size_t errlen);

#endif
