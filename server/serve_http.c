#include "serve_http.h"

#include <nng/supplemental/http/http.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ps_serve_http {
    nng_http_server *server;
    int port;
};

static void respond(nng_aio *aio, uint16_t status, const char *type, const char *body, size_t len)
{
    nng_http_res *res;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0) rv = nng_http_res_set_status(res, status);
    if (rv == 0) rv = nng_http_res_set_header(res, "Content-Type", type);
    if (rv == 0) rv = nng_http_res_copy_data(res, body, len);
    if (rv != 0) {
        if (res) nng_http_res_free(res);
        /* nng closes the connection, after a 500 when it can. */
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static ps_serve_metrics *metrics_of(nng_aio *aio)
{
    return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void on_metrics(nng_aio *aio)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    ps_serve_metrics_render(metrics_of(aio), f);
    if (fclose(f) != 0) {
        free(text);
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void on_healthz(nng_aio *aio)
{
    respond(aio, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void on_readyz(nng_aio *aio)
{
    ps_serve_status st = ps_serve_metrics_status(metrics_of(aio));
    if (st.ready && !st.stopping)
        respond(aio, 200, "text/plain; charset=utf-8", "ready\n", 6);
    else {
        const char *why = st.stopping ? "stopping\n" : "starting\n";
        respond(aio, 503, "text/plain; charset=utf-8", why, strlen(why));
    }
}

ps_serve_http *ps_serve_http_start(const char *url, nng_tls_config *tls, ps_serve_metrics *m,
                                   char *err, size_t errlen)
{
    static const struct {
        const char *path;
        void (*cb)(nng_aio *);
    } routes[] = {{"/metrics", on_metrics}, {"/healthz", on_healthz}, {"/readyz", on_readyz}};
    ps_serve_http *h = calloc(1, sizeof *h);
    nng_url *u = NULL;
    int rv;
    const char *what = "";
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((rv = nng_url_parse(&u, url)) != 0) {
        what = "parse";
        goto fail;
    }
    if ((rv = nng_http_server_hold(&h->server, u)) != 0) {
        what = "create";
        goto fail;
    }
    if (!strncmp(url, "https://", 8) && (rv = nng_http_server_set_tls(h->server, tls)) != 0) {
        what = "set TLS on";
        goto fail;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        nng_http_handler *hd = NULL;
        if ((rv = nng_http_handler_alloc(&hd, routes[i].path, routes[i].cb)) != 0 ||
            (rv = nng_http_handler_set_data(hd, m, NULL)) != 0 ||
            (rv = nng_http_server_add_handler(h->server, hd)) != 0) {
            if (hd) nng_http_handler_free(hd);
            what = "add a handler to";
            goto fail;
        }
    }
    if ((rv = nng_http_server_start(h->server)) != 0) {
        what = "start";
        goto fail;
    }
    nng_sockaddr sa;
    if (nng_http_server_get_addr(h->server, &sa) == 0 &&
        (sa.s_family == NNG_AF_INET || sa.s_family == NNG_AF_INET6))
        h->port = ntohs(sa.s_family == NNG_AF_INET ? sa.s_in.sa_port : sa.s_in6.sa_port);
    nng_url_free(u);
    return h;
fail:
    snprintf(err, errlen, "HTTP: cannot %s the server at %s: %s", what, url, nng_strerror(rv));
    if (u) nng_url_free(u);
    if (h->server) nng_http_server_release(h->server);
    free(h);
    return NULL;
}

int ps_serve_http_port(const ps_serve_http *h)
{
    return h ? h->port : 0;
}

void ps_serve_http_stop(ps_serve_http *h)
{
    if (!h) return;
    nng_http_server_stop(h->server);
    nng_http_server_release(h->server);
    free(h);
}
