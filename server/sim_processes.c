/*
 * sim_processes.c - `preshift serve` and `preshift manage` as child
 * processes of the simulation (sim_processes.h).
 */
#include "sim_processes.h"

#include "core/error.h"
#include "prom_text.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/util/platform.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SERVE, MANAGE, N_CHILDREN };
static const char *const child_names[N_CHILDREN] = {"preshift serve", "preshift manage"};

struct ps_sim_processes {
    pid_t pid[N_CHILDREN]; /* 0 once reaped */
    int status[N_CHILDREN];
    nng_url *url[N_CHILDREN]; /* each one's /metrics */
    nng_http_client *http[N_CHILDREN];
    nng_http_conn *conn[N_CHILDREN]; /* kept open between scrapes; NULL until connected */
    nng_aio *aio;
    char *body; /* the last /metrics */
    size_t cap;
};

/* c written by write(c, f) into path. */
static int write_config(const char *path, const void *c, void (*write)(const void *, FILE *),
                        char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) return ps_fail(err, errlen, PS_EINVAL, "%s: %s", path, strerror(errno));
    write(c, f);
    if (fclose(f) != 0) return ps_fail(err, errlen, PS_EINVAL, "%s: %s", path, strerror(errno));
    return 0;
}

static void write_serve(const void *c, FILE *f)
{
    ps_serve_config_write(c, f);
}

static void write_manage(const void *c, FILE *f)
{
    ps_manage_config_write(c, f);
}

/* fork and exec argv; only async-signal-safe calls between the two. */
static pid_t spawn(char *const argv[], pid_t parent)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127); /* the parent died before prctl */
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    dup2(STDERR_FILENO, STDOUT_FILENO); /* the simulation's stdout may be its JSON */
    execv(argv[0], argv);
    _exit(127);
}

/* How child i ended, from its wait status. */
static void describe(const ps_sim_processes *p, int i, char *out, size_t len)
{
    int st = p->status[i];
    if (WIFEXITED(st))
        snprintf(out, len, "%s exited with status %d%s", child_names[i], WEXITSTATUS(st),
                 WEXITSTATUS(st) == 127 ? " (could it be started?)" : "");
    else if (WIFSIGNALED(st))
        snprintf(out, len, "%s was killed by signal %d (%s)", child_names[i], WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(out, len, "%s ended (wait status %d)", child_names[i], st);
}

/* -1 with how when a child has exited (reaping it). */
static int check_children(ps_sim_processes *p, char *err, size_t errlen)
{
    for (int i = 0; i < N_CHILDREN; i++) {
        if (!p->pid[i]) continue;
        pid_t r = waitpid(p->pid[i], &p->status[i], WNOHANG);
        if (r == 0) continue;
        p->pid[i] = 0;
        char how[160];
        describe(p, i, how, sizeof how);
        return ps_fail(err, errlen, PS_SIM_PROCESS_EXITED, "%s (its messages are above)", how);
    }
    return 0;
}

/*
 * GET child i's /metrics into res on the kept connection: made when there
 * is none, and made anew once when a kept one fails (the server may have
 * closed it). 0 or nng's error.
 */
static int transact(ps_sim_processes *p, int i, nng_http_req *req, nng_http_res **res)
{
    for (int attempt = 0;; attempt++) {
        int reused = p->conn[i] != NULL, rv = 0;
        if (!reused) { /* a scrape every millisecond or so: one connection, not one each */
            nng_http_client_connect(p->http[i], p->aio);
            nng_aio_wait(p->aio);
            if ((rv = nng_aio_result(p->aio)) != 0) return rv;
            p->conn[i] = nng_aio_get_output(p->aio, 0);
        }
        if ((rv = nng_http_res_alloc(res)) != 0) return rv;
        nng_http_conn_transact(p->conn[i], req, *res, p->aio);
        nng_aio_wait(p->aio);
        if ((rv = nng_aio_result(p->aio)) == 0) return 0;
        nng_http_res_free(*res);
        *res = NULL;
        nng_http_conn_close(p->conn[i]);
        p->conn[i] = NULL;
        if (!reused || attempt) return rv;
    }
}

/* GET child i's /metrics into p->body; 0 or -1. */
static int scrape(ps_sim_processes *p, int i, char *err, size_t errlen)
{
    int rc = check_children(p, err, errlen);
    if (rc) return rc;
    nng_http_req *req = NULL;
    nng_http_res *res = NULL;
    int rv = nng_http_req_alloc(&req, p->url[i]);
    if (rv == 0) rv = transact(p, i, req, &res);
    int status = rv == 0 ? nng_http_res_get_status(res) : 0;
    void *data = NULL;
    size_t len = 0;
    if (rv == 0 && status == 200) nng_http_res_get_data(res, &data, &len);
    if (rv == 0 && status == 200 && len + 1 > p->cap) {
        char *nb = realloc(p->body, len + 1);
        if (nb) {
            p->body = nb;
            p->cap = len + 1;
        }
    }
    int ok = rv == 0 && status == 200 && len + 1 <= p->cap;
    if (ok) {
        memcpy(p->body, data, len);
        p->body[len] = '\0';
    }
    if (res) nng_http_res_free(res);
    if (req) nng_http_req_free(req);
    if (ok) return 0;
    if (rv)
        return ps_fail(err, errlen, PS_EINVAL, "%s's /metrics: %s", child_names[i],
                       nng_strerror(rv));
    return ps_fail(err, errlen, PS_EINVAL, "%s's /metrics: HTTP status %d", child_names[i], status);
}

int ps_sim_processes_manager_stats(ps_sim_processes *p, ps_manage_stats *out, char *err,
                                   size_t errlen)
{
    int rc = scrape(p, MANAGE, err, errlen);
    if (rc) return rc;
    return ps_manage_stats_from_metrics(p->body, out, err, errlen);
}

int ps_sim_processes_subscribers(ps_sim_processes *p, uint64_t *n, char *err, size_t errlen)
{
    double v;
    int rc = scrape(p, SERVE, err, errlen);
    if (rc) return rc;
    if (ps_prom_value(p->body, "preshift_stream_subscribers", &v))
        return ps_fail(err, errlen, PS_EINVAL,
                       "preshift serve's /metrics has no preshift_stream_subscribers");
    *n = (uint64_t)v;
    return 0;
}

ps_sim_processes *ps_sim_processes_start(const char *exe, const char *dir, const ps_serve_config *s,
                                         const ps_manage_config *m, char *err, size_t errlen)
{
    const char *http[N_CHILDREN] = {s->http, m->http};
    for (int i = 0; i < N_CHILDREN; i++)
        if (strncmp(http[i], "http://", 7)) {
            ps_fail(err, errlen, PS_EINVAL, "%s needs an http:// address, not '%s'", child_names[i],
                    http[i]);
            return NULL;
        }
    ps_sim_processes *p = calloc(1, sizeof *p);
    if (!p) {
        ps_fail(err, errlen, PS_ENOMEM, "out of memory");
        return NULL;
    }
    char conf[N_CHILDREN][512], metrics[PS_SERVE_STR_MAX + 16];
    snprintf(conf[SERVE], sizeof conf[SERVE], "%s/serve.conf", dir);
    snprintf(conf[MANAGE], sizeof conf[MANAGE], "%s/manage.conf", dir);
    int rv;
    if (write_config(conf[SERVE], s, write_serve, err, errlen) ||
        write_config(conf[MANAGE], m, write_manage, err, errlen))
        goto fail;
    for (int i = 0; i < N_CHILDREN; i++) {
        snprintf(metrics, sizeof metrics, "%s/metrics", http[i]);
        if ((rv = nng_url_parse(&p->url[i], metrics)) != 0 ||
            (rv = nng_http_client_alloc(&p->http[i], p->url[i])) != 0) {
            ps_fail(err, errlen, PS_EINVAL, "%s: %s", metrics, nng_strerror(rv));
            goto fail;
        }
    }
    if ((rv = nng_aio_alloc(&p->aio, NULL, NULL)) != 0) {
        ps_fail(err, errlen, PS_EINVAL, "nng aio: %s", nng_strerror(rv));
        goto fail;
    }
    nng_aio_set_timeout(p->aio, 10000);
    static const char *const commands[N_CHILDREN] = {"serve", "manage"};
    for (int i = 0; i < N_CHILDREN; i++) {
        char *argv[] = {(char *)exe, (char *)commands[i], "--config", conf[i], NULL};
        p->pid[i] = spawn(argv, getpid());
        if (p->pid[i] < 0) {
            p->pid[i] = 0;
            ps_fail(err, errlen, PS_EINVAL, "cannot start %s: %s", child_names[i], strerror(errno));
            goto fail;
        }
    }
    return p;
fail:
    ps_sim_processes_stop(p, NULL, 0);
    return NULL;
}

int ps_sim_processes_stop(ps_sim_processes *p, char *err, size_t errlen)
{
    if (!p) return 0;
    int rc = 0;
    for (int i = N_CHILDREN; i-- > 0;) {
        if (!p->pid[i]) continue;
        kill(p->pid[i], SIGTERM);
        int waited = 0;
        pid_t r;
        while ((r = waitpid(p->pid[i], &p->status[i], WNOHANG)) == 0 && waited < 30000) {
            nng_msleep(5);
            waited += 5;
        }
        if (r == 0) {
            kill(p->pid[i], SIGKILL);
            waitpid(p->pid[i], &p->status[i], 0);
        }
        p->pid[i] = 0;
        if (!(WIFEXITED(p->status[i]) && WEXITSTATUS(p->status[i]) == 0) && rc == 0) {
            char how[160];
            describe(p, i, how, sizeof how);
            rc = ps_fail(err, errlen, PS_EINVAL, "%s%s", how, r == 0 ? " after 30 s" : "");
        }
    }
    if (p->aio) nng_aio_free(p->aio);
    for (int i = 0; i < N_CHILDREN; i++) {
        if (p->conn[i]) nng_http_conn_close(p->conn[i]);
        if (p->http[i]) nng_http_client_free(p->http[i]);
        if (p->url[i]) nng_url_free(p->url[i]);
    }
    free(p->body);
    free(p);
    return rc;
}
