#include "tls_setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int given(const char *s)
{
    return s && s[0];
}

/* A PEM file, NUL-terminated; NULL with the reason in err. */
static char *read_pem(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 8192;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (len < cap - 1) break;
        if (cap >= (1u << 20)) {
            snprintf(err, errlen, "%s %s: larger than 1 MiB", what, path);
            free(buf);
            fclose(f);
            return NULL;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    if (!buf || ferror(f)) {
        snprintf(err, errlen, "%s %s: %s", what, path, buf ? "read error" : "out of memory");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Present cert and key from their files. */
static int own_cert(nng_tls_config *tc, const char *cert, const char *key, const char **what,
                    char *err, size_t errlen)
{
    char *c = read_pem("TLS certificate", cert, err, errlen);
    char *k = c ? read_pem("TLS key", key, err, errlen) : NULL;
    int rv = -1;
    if (c && k) {
        *what = "load the certificate and key";
        rv = nng_tls_config_own_cert(tc, c, k, NULL);
    }
    free(c);
    free(k);
    return rv;
}

static int finish(int rv, const char *what, nng_tls_config *tc, nng_tls_config **out, char *err,
                  size_t errlen)
{
    /* rv -1: a file could not be read, and err says so already. */
    if (rv > 0) snprintf(err, errlen, "TLS: cannot %s: %s", what, nng_strerror(rv));
    if (rv) {
        if (tc) nng_tls_config_free(tc);
        return -1;
    }
    *out = tc;
    return 0;
}

int ps_tls_server_config(const char *cert, const char *key, const char *ca, nng_tls_config **out,
                         char *err, size_t errlen)
{
    if (!given(cert) || !given(key)) {
        snprintf(err, errlen, "TLS: a server needs both a certificate and its key");
        return -1;
    }
    nng_tls_config *tc = NULL;
    const char *what = "allocate a configuration";
    int rv = nng_tls_config_alloc(&tc, NNG_TLS_MODE_SERVER);
    if (rv == 0) rv = own_cert(tc, cert, key, &what, err, errlen);
    if (rv == 0 && given(ca)) {
        what = "load the CA file";
        rv = nng_tls_config_ca_file(tc, ca);
    }
    if (rv == 0)
        rv = nng_tls_config_auth_mode(tc, given(ca) ? NNG_TLS_AUTH_MODE_REQUIRED
                                                    : NNG_TLS_AUTH_MODE_NONE);
    return finish(rv, what, tc, out, err, errlen);
}

int ps_tls_client_config(const char *url, const char *ca, const char *cert, const char *key,
                         const char *server_name, nng_tls_config **out, char *err, size_t errlen)
{
    if (given(cert) != given(key)) {
        snprintf(err, errlen, "TLS: a client certificate needs both the certificate and its key");
        return -1;
    }
    nng_tls_config *tc = NULL;
    nng_url *u = NULL;
    const char *what = "allocate a configuration";
    int rv = nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT);
    if (rv == 0 && given(ca)) {
        what = "load the CA file";
        if ((rv = nng_tls_config_ca_file(tc, ca)) == 0)
            rv = nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_REQUIRED);
    } else if (rv == 0) {
        rv = nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_NONE);
    }
    if (rv == 0 && given(cert)) rv = own_cert(tc, cert, key, &what, err, errlen);
    if (rv == 0) {
        what = "set the server name";
        if (given(server_name)) {
            rv = nng_tls_config_server_name(tc, server_name);
        } else if ((rv = nng_url_parse(&u, url)) == 0) {
            if (given(u->u_hostname)) rv = nng_tls_config_server_name(tc, u->u_hostname);
        }
    }
    if (u) nng_url_free(u);
    return finish(rv, what, tc, out, err, errlen);
}
