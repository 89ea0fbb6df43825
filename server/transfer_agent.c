/*
 * transfer_agent.c - the agent's transfer table and its journal
 * (transfer_agent.h, docs/transfer.md).
 *
 * The table is an array searched by (id, processor): an agent holds a few
 * thousand transfers at most and answers a few messages a second, so a
 * linear scan costs microseconds. When it is full, the oldest finished
 * transfer is forgotten; one still prepared never is.
 *
 * The journal is text, one record per line, the whole record after each
 * change, so the last line of a transfer is its state:
 *
 *   preshift transfer journal 1
 *   <state> TAB <id> TAB <processor> TAB <role> TAB <workload> TAB <peer>
 *           TAB <state_bytes> TAB <expected_seconds> TAB <reason> LF
 *
 * Names cannot hold a tab or a newline (printable ASCII without spaces), and
 * a reason has its control characters replaced, so fields split cleanly. A
 * line is written with one write, then fsync'ed, before the change is made
 * in memory and answered. At open, a last line without its newline (a crash
 * in the middle of a write) is cut off; any other malformed line refuses
 * the journal, saying where. A journal much longer than the table is
 * rewritten with one line per transfer (to a temporary file, renamed over).
 */
#include "transfer_agent.h"

#include "core/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define JOURNAL_HEADER "preshift transfer journal 1"

struct ps_xfer_agent {
    char name[PS_XFER_NAME_MAX + 1];
    bool any, refuse_destination;
    double delay;
    ps_xfer_record *rec;
    size_t n, cap;
    uint64_t seq;
    char *journal; /* path, NULL for none */
    FILE *jf;      /* open for appending */
    ps_xfer_agent_stats stats;
};

/* ---- the table ------------------------------------------------------------ */

static ps_xfer_record *find(const ps_xfer_agent *a, const char *processor, int64_t id)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->rec[i].id == id && !strcmp(a->rec[i].processor, processor))
            return (ps_xfer_record *)&a->rec[i];
    return NULL;
}

const ps_xfer_record *ps_xfer_agent_find(const ps_xfer_agent *a, const char *processor, int64_t id)
{
    return a && processor ? find(a, processor, id) : NULL;
}

size_t ps_xfer_agent_count(const ps_xfer_agent *a)
{
    return a ? a->n : 0;
}

ps_xfer_agent_stats ps_xfer_agent_get_stats(const ps_xfer_agent *a)
{
    ps_xfer_agent_stats s = {0};
    return a ? a->stats : s;
}

/* The slot for a new record: a free one, or the oldest finished one. NULL
 * when every slot holds a prepared transfer. */
static ps_xfer_record *slot_for_new(ps_xfer_agent *a)
{
    if (a->n < a->cap) return &a->rec[a->n];
    ps_xfer_record *old = NULL;
    for (size_t i = 0; i < a->n; i++)
        if (a->rec[i].state != PS_XFER_STATE_PREPARED && (!old || a->rec[i].seq < old->seq))
            old = &a->rec[i];
    return old;
}

/* Store r (its slot from find or slot_for_new). */
static void store(ps_xfer_agent *a, ps_xfer_record *slot, const ps_xfer_record *r)
{
    if (slot == &a->rec[a->n]) a->n++;
    *slot = *r;
    slot->seq = ++a->seq;
}

/* ---- the journal ---------------------------------------------------------- */

static void journal_line(const ps_xfer_record *r, char *line, size_t cap)
{
    char reason[sizeof r->reason];
    size_t i;
    for (i = 0; r->reason[i] && i + 1 < sizeof reason; i++)
        reason[i] = (unsigned char)r->reason[i] < 0x20 || r->reason[i] == 0x7f ? ' ' : r->reason[i];
    reason[i] = '\0';
    snprintf(line, cap, "%s\t%lld\t%s\t%s\t%s\t%s\t%.17g\t%.17g\t%s\n",
             ps_xfer_state_name(r->state), (long long)r->id, r->processor,
             ps_xfer_role_name(r->role), r->workload, r->peer, r->state_bytes, r->expected_seconds,
             reason);
}

/* Append r and sync: 0, or -1 with the reason. */
static int journal_put(ps_xfer_agent *a, const ps_xfer_record *r, char *err, size_t errlen)
{
    if (!a->jf) return 0;
    char line[1024];
    journal_line(r, line, sizeof line);
    size_t n = strlen(line);
    if (fwrite(line, 1, n, a->jf) != n || fflush(a->jf) != 0 || fsync(fileno(a->jf)) != 0) {
        snprintf(err, errlen, "journal %s: %s", a->journal, strerror(errno));
        clearerr(a->jf);
        return -1;
    }
    a->stats.journal_lines++;
    return 0;
}

/* Split line (without its newline) at tabs into exactly n fields. */
static int split(char *line, char **f, int n)
{
    int k = 0;
    f[k++] = line;
    for (char *p = line; *p; p++)
        if (*p == '\t') {
            if (k == n) return -1;
            *p = '\0';
            f[k++] = p + 1;
        }
    return k == n ? 0 : -1;
}

static int parse_amount(const char *s, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(x) || x < 0) return -1;
    *out = x;
    return 0;
}

/* One journal line into r: 0, or -1 with what is wrong in why. */
static int parse_line(char *line, ps_xfer_record *r, char *why, size_t whylen)
{
    char *f[9];
    memset(r, 0, sizeof *r);
    if (split(line, f, 9)) return snprintf(why, whylen, "not 9 tab-separated fields"), -1;
    int st = -1;
    for (int s = PS_XFER_STATE_PREPARED; s < PS_XFER_NSTATES; s++)
        if (!strcmp(f[0], ps_xfer_state_name(s))) st = s;
    if (st < 0) return snprintf(why, whylen, "unknown state '%.20s'", f[0]), -1;
    r->state = (ps_xfer_state)st;
    char *end;
    errno = 0;
    long long id = strtoll(f[1], &end, 10);
    if (!*f[1] || *end || errno || id <= 0)
        return snprintf(why, whylen, "bad transfer id '%.24s'", f[1]), -1;
    r->id = id;
    if (ps_xfer_name_check("processor", f[2], why, whylen)) return -1;
    snprintf(r->processor, sizeof r->processor, "%s", f[2]);
    if (!strcmp(f[3], "destination"))
        r->role = PS_XFER_ROLE_DESTINATION;
    else if (!strcmp(f[3], "source"))
        r->role = PS_XFER_ROLE_SOURCE;
    else if (!strcmp(f[3], "none") && r->state == PS_XFER_STATE_ROLLED_BACK)
        r->role = PS_XFER_ROLE_NONE;
    else
        return snprintf(why, whylen, "bad role '%.20s'", f[3]), -1;
    if (r->role != PS_XFER_ROLE_NONE) {
        if (ps_xfer_name_check("workload", f[4], why, whylen) ||
            ps_xfer_name_check("peer", f[5], why, whylen))
            return -1;
        snprintf(r->workload, sizeof r->workload, "%s", f[4]);
        snprintf(r->peer, sizeof r->peer, "%s", f[5]);
    } else if (f[4][0] || f[5][0]) {
        return snprintf(why, whylen, "a record without a role names a workload or peer"), -1;
    }
    if (parse_amount(f[6], &r->state_bytes) || parse_amount(f[7], &r->expected_seconds))
        return snprintf(why, whylen, "bad state_bytes or expected_seconds"), -1;
    snprintf(r->reason, sizeof r->reason, "%s", f[8]);
    return 0;
}

/* Rewrite the journal with one line per record. 0, or -1 with the reason. */
static int journal_compact(ps_xfer_agent *a, char *err, size_t errlen)
{
    size_t plen = strlen(a->journal) + 8;
    char *tmp = malloc(plen);
    if (!tmp) return ps_fail(err, errlen, -1, "out of memory");
    snprintf(tmp, plen, "%s.new", a->journal);
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    if (ok) ok = fprintf(f, "%s\n", JOURNAL_HEADER) > 0;
    for (size_t i = 0; ok && i < a->n; i++) {
        char line[1024];
        journal_line(&a->rec[i], line, sizeof line);
        ok = fputs(line, f) >= 0;
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, a->journal) != 0) {
        e = errno;
        ok = 0;
    }
    if (!ok) {
        remove(tmp);
        snprintf(err, errlen, "journal %s: cannot rewrite it: %s", a->journal, strerror(e));
    }
    free(tmp);
    return ok ? 0 : -1;
}

/* Read the journal into the table, cut a torn last line, open it for appending. */
static int journal_open(ps_xfer_agent *a, char *err, size_t errlen)
{
    FILE *f = fopen(a->journal, "r");
    long good = 0;
    size_t lines = 0;
    if (!f && errno != ENOENT)
        return ps_fail(err, errlen, -1, "journal %s: %s", a->journal, strerror(errno));
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        size_t lineno = 0;
        int rc = 0;
        while ((len = getline(&line, &cap, f)) > 0) {
            lineno++;
            if (line[len - 1] != '\n') break; /* torn: cut below */
            line[len - 1] = '\0';
            if (lineno == 1) {
                if (strcmp(line, JOURNAL_HEADER)) {
                    rc = ps_fail(err, errlen, -1, "journal %s: line 1 is not '%s'", a->journal,
                                 JOURNAL_HEADER);
                    break;
                }
            } else {
                ps_xfer_record r;
                char why[200];
                if (parse_line(line, &r, why, sizeof why)) {
                    rc = ps_fail(err, errlen, -1, "journal %s:%zu: %s", a->journal, lineno, why);
                    break;
                }
                ps_xfer_record *slot = find(a, r.processor, r.id);
                if (!slot) slot = slot_for_new(a);
                if (!slot) {
                    rc = ps_fail(err, errlen, -1,
                                 "journal %s:%zu: more than %zu transfers in progress (at most "
                                 "the table's capacity)",
                                 a->journal, lineno, a->cap);
                    break;
                }
                store(a, slot, &r);
                a->stats.replayed++;
                lines++;
            }
            good += (long)len;
        }
        int rerr = ferror(f);
        free(line);
        fclose(f);
        if (rc) return rc;
        if (rerr) return ps_fail(err, errlen, -1, "journal %s: read error", a->journal);
        if (truncate(a->journal, good) != 0)
            return ps_fail(err, errlen, -1, "journal %s: cannot cut a torn last line: %s",
                           a->journal, strerror(errno));
    }
    if (good > 0 && lines > 2 * a->n + 1024 && journal_compact(a, err, errlen)) return -1;
    a->jf = fopen(a->journal, "a");
    if (!a->jf) return ps_fail(err, errlen, -1, "journal %s: %s", a->journal, strerror(errno));
    if (good == 0 && (fprintf(a->jf, "%s\n", JOURNAL_HEADER) < 0 || fflush(a->jf) != 0 ||
                      fsync(fileno(a->jf)) != 0))
        return ps_fail(err, errlen, -1, "journal %s: %s", a->journal, strerror(errno));
    return 0;
}

/* ---- open and close ------------------------------------------------------- */

ps_xfer_agent *ps_xfer_agent_open(const ps_xfer_agent_config *cfg, char *err, size_t errlen)
{
    if (!cfg->any_processor && ps_xfer_name_check("processor name", cfg->name, err, errlen))
        return NULL;
    if (!(cfg->delay >= 0) || !isfinite(cfg->delay)) {
        snprintf(err, errlen, "delay %g is not a number of seconds >= 0", cfg->delay);
        return NULL;
    }
    ps_xfer_agent *a = calloc(1, sizeof *a);
    size_t cap = cfg->capacity ? cfg->capacity : PS_XFER_AGENT_CAPACITY;
    if (a) a->rec = calloc(cap, sizeof *a->rec);
    if (!a || !a->rec) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->cap = cap;
    a->any = cfg->any_processor;
    if (!a->any) snprintf(a->name, sizeof a->name, "%s", cfg->name);
    a->refuse_destination = cfg->refuse_destination;
    a->delay = cfg->delay;
    if (cfg->journal && cfg->journal[0]) {
        a->journal = strdup(cfg->journal);
        if (!a->journal) {
            snprintf(err, errlen, "out of memory");
            ps_xfer_agent_close(a);
            return NULL;
        }
        if (journal_open(a, err, errlen)) {
            ps_xfer_agent_close(a);
            return NULL;
        }
    }
    return a;
}

void ps_xfer_agent_close(ps_xfer_agent *a)
{
    if (!a) return;
    if (a->jf) fclose(a->jf);
    free(a->journal);
    free(a->rec);
    free(a);
}

/* ---- requests ------------------------------------------------------------- */

static int reply_error(ps_xfer_agent *a, ps_xfer_reply *rep, ps_xfer_event *ev, int code,
                       const char *message)
{
    rep->op = PS_XFER_OP_ERROR;
    rep->code = (uint32_t)code;
    snprintf(rep->name, sizeof rep->name, "%s", ps_xfer_code_name(code));
    snprintf(rep->message, sizeof rep->message, "%s", message);
    ev->code = code;
    snprintf(ev->reason, sizeof ev->reason, "%s", message);
    a->stats.errors++;
    return code;
}

static void refuse(ps_xfer_agent *a, ps_xfer_reply *rep, const char *reason)
{
    rep->result = PS_XFER_RESULT_REFUSED;
    snprintf(rep->reason, sizeof rep->reason, "%s", reason);
    a->stats.refused++;
}

/* Record r (a change) in the journal and the table: 0, or the error reply. */
static int change(ps_xfer_agent *a, ps_xfer_record *slot, const ps_xfer_record *r,
                  ps_xfer_reply *rep, ps_xfer_event *ev, int op)
{
    char why[512];
    if (journal_put(a, r, why, sizeof why)) return reply_error(a, rep, ev, PS_XFER_E_INTERNAL, why);
    store(a, slot, r);
    ev->changed = true;
    a->stats.applied[op]++;
    return 0;
}

/* Do the prepare's names match the record's? "" if so, else what differs. */
static const char *conflict(const ps_xfer_record *r, const ps_xfer_request *q, char *buf,
                            size_t cap)
{
    if (r->role == q->role && !strcmp(r->workload, q->workload) && !strcmp(r->peer, q->peer))
        return "";
    snprintf(buf, cap,
             "conflict: transfer %lld at %s is %s of workload %s with peer %s, not %s of %s with "
             "%s",
             (long long)r->id, r->processor, ps_xfer_role_name(r->role), r->workload, r->peer,
             ps_xfer_role_name(q->role), q->workload, q->peer);
    return buf;
}

static int do_prepare(ps_xfer_agent *a, ps_xfer_record *r, const ps_xfer_request *q, double now,
                      ps_xfer_reply *rep, double *reply_at, ps_xfer_event *ev)
{
    char buf[PS_XFER_TEXT_MAX + 1];
    if (r) {
        const char *c = conflict(r, q, buf, sizeof buf);
        switch (r->state) {
        case PS_XFER_STATE_ROLLED_BACK:
            if (r->reason[0]) {
                refuse(a, rep, r->reason);
            } else {
                snprintf(buf, sizeof buf, "transfer %lld was rolled back", (long long)r->id);
                refuse(a, rep, buf);
            }
            return 0;
        case PS_XFER_STATE_PREPARED:
        case PS_XFER_STATE_COMMITTED:
        default:
            if (c[0]) {
                refuse(a, rep, c);
                return 0;
            }
            if (r->state == PS_XFER_STATE_PREPARED && r->ready_at > *reply_at)
                *reply_at = r->ready_at;
            a->stats.repeats++;
            return 0;
        }
    }
    ps_xfer_record n = {.id = q->id,
                        .role = q->role,
                        .state = PS_XFER_STATE_PREPARED,
                        .state_bytes = q->state_bytes,
                        .expected_seconds = q->expected_seconds,
                        .ready_at = now};
    snprintf(n.processor, sizeof n.processor, "%s", q->processor);
    snprintf(n.workload, sizeof n.workload, "%s", q->workload);
    snprintf(n.peer, sizeof n.peer, "%s", q->peer);
    ps_xfer_record *slot = slot_for_new(a);
    if (!slot) {
        snprintf(buf, sizeof buf, "this agent holds %zu transfers in progress (at most %zu)", a->n,
                 a->cap);
        refuse(a, rep, buf);
        return 0;
    }
    if (a->refuse_destination && q->role == PS_XFER_ROLE_DESTINATION) {
        n.state = PS_XFER_STATE_ROLLED_BACK;
        snprintf(n.reason, sizeof n.reason, "processor %s takes no transfers", q->processor);
    } else if (q->role == PS_XFER_ROLE_DESTINATION) {
        n.ready_at = now + a->delay;
    }
    int rc = change(a, slot, &n, rep, ev, PS_XFER_OP_PREPARE);
    if (rc) return rc;
    if (n.state == PS_XFER_STATE_ROLLED_BACK) {
        refuse(a, rep, n.reason);
    } else if (n.ready_at > *reply_at) {
        *reply_at = n.ready_at;
    }
    return 0;
}

int ps_xfer_agent_apply(ps_xfer_agent *a, const ps_xfer_request *q, double now, ps_xfer_reply *rep,
                        double *reply_at, ps_xfer_event *ev)
{
    ps_xfer_event scratch_ev;
    double scratch_at;
    if (!ev) ev = &scratch_ev;
    if (!reply_at) reply_at = &scratch_at;
    memset(rep, 0, sizeof *rep);
    memset(ev, 0, sizeof *ev);
    *reply_at = now;
    int op = q->op >= PS_XFER_OP_PREPARE && q->op <= PS_XFER_OP_STATUS ? (int)q->op : 0;
    a->stats.received[op]++;
    rep->op = q->op;
    rep->id = q->id;
    snprintf(rep->processor, sizeof rep->processor, "%s", q->processor);
    ev->op = q->op;
    ev->id = q->id;
    snprintf(ev->processor, sizeof ev->processor, "%s", q->processor);
    ev->role = q->role;
    snprintf(ev->workload, sizeof ev->workload, "%s", q->workload);
    snprintf(ev->peer, sizeof ev->peer, "%s", q->peer);
    char buf[PS_XFER_TEXT_MAX + 1];
    if (!op) return reply_error(a, rep, ev, PS_XFER_E_UNKNOWN_OP, "not a request op");
    if (q->id <= 0 || ps_xfer_name_check("processor", q->processor, buf, sizeof buf))
        return reply_error(a, rep, ev, PS_XFER_E_BAD_REQUEST,
                           q->id <= 0 ? "'id' must be at least 1" : buf);
    if (!a->any && strcmp(q->processor, a->name)) {
        snprintf(buf, sizeof buf, "this agent serves processor %s, not %s", a->name, q->processor);
        return reply_error(a, rep, ev, PS_XFER_E_WRONG_PROCESSOR, buf);
    }
    ps_xfer_record *r = find(a, q->processor, q->id);
    ev->before = r ? r->state : PS_XFER_STATE_NONE;
    if (r && op != PS_XFER_OP_PREPARE) {
        ev->role = r->role;
        snprintf(ev->workload, sizeof ev->workload, "%s", r->workload);
        snprintf(ev->peer, sizeof ev->peer, "%s", r->peer);
    }
    int rc = 0;
    switch (op) {
    case PS_XFER_OP_STATUS:
        break;
    case PS_XFER_OP_PREPARE:
        rc = do_prepare(a, r, q, now, rep, reply_at, ev);
        break;
    case PS_XFER_OP_COMMIT:
        if (!r) {
            snprintf(buf, sizeof buf, "transfer %lld is unknown at %s (never prepared)",
                     (long long)q->id, q->processor);
            refuse(a, rep, buf);
        } else if (r->state == PS_XFER_STATE_ROLLED_BACK) {
            snprintf(buf, sizeof buf, "transfer %lld was rolled back at %s", (long long)q->id,
                     q->processor);
            refuse(a, rep, buf);
        } else if (r->state == PS_XFER_STATE_PREPARED) {
            ps_xfer_record n = *r;
            n.state = PS_XFER_STATE_COMMITTED;
            rc = change(a, r, &n, rep, ev, op);
        } else {
            a->stats.repeats++;
        }
        break;
    case PS_XFER_OP_ROLLBACK:
    default:
        if (r && r->state == PS_XFER_STATE_COMMITTED) {
            snprintf(buf, sizeof buf, "transfer %lld is committed at %s: too late to roll back",
                     (long long)q->id, q->processor);
            refuse(a, rep, buf);
        } else if (r && r->state == PS_XFER_STATE_PREPARED) {
            ps_xfer_record n = *r;
            n.state = PS_XFER_STATE_ROLLED_BACK;
            rc = change(a, r, &n, rep, ev, op);
        } else if (!r) {
            /* Never prepared here: leave a record, so that a late prepare
             * (a resend still on its way) is refused. With no room for
             * it, the rollback is still acknowledged. */
            ps_xfer_record n = {.id = q->id, .state = PS_XFER_STATE_ROLLED_BACK};
            snprintf(n.processor, sizeof n.processor, "%s", q->processor);
            ps_xfer_record *slot = slot_for_new(a);
            if (slot) rc = change(a, slot, &n, rep, ev, op);
        } else {
            a->stats.repeats++;
        }
        break;
    }
    if (rc) return rc;
    r = find(a, q->processor, q->id);
    rep->state = r ? r->state : PS_XFER_STATE_NONE;
    if (op == PS_XFER_OP_ROLLBACK && !r) rep->state = PS_XFER_STATE_ROLLED_BACK;
    ev->after = rep->state;
    ev->result = rep->result;
    if (rep->result == PS_XFER_RESULT_REFUSED)
        snprintf(ev->reason, sizeof ev->reason, "%s", rep->reason);
    return 0;
}

int ps_xfer_agent_handle(ps_xfer_agent *a, const uint8_t *msg, size_t len, double now, ps_buf *out,
                         double *reply_at, ps_xfer_event *ev)
{
    ps_xfer_event scratch_ev;
    double scratch_at;
    if (!ev) ev = &scratch_ev;
    if (!reply_at) reply_at = &scratch_at;
    *reply_at = now;
    ps_xfer_request q;
    char why[PS_XFER_TEXT_MAX + 1];
    int rc = ps_xfer_decode_request(msg, len, &q, why, sizeof why);
    if (rc) {
        memset(ev, 0, sizeof *ev);
        ev->op = q.op;
        ev->id = q.id;
        snprintf(ev->processor, sizeof ev->processor, "%s", q.processor);
        ev->code = rc;
        snprintf(ev->reason, sizeof ev->reason, "%s", why);
        a->stats.received[0]++;
        a->stats.errors++;
        if (ps_xfer_encode_error(out, &q, rc, "%s", why)) out->len = 0;
        return rc;
    }
    ps_xfer_reply rep;
    rc = ps_xfer_agent_apply(a, &q, now, &rep, reply_at, ev);
    int enc;
    if (rep.op == PS_XFER_OP_ERROR)
        enc = ps_xfer_encode_error(out, &q, (int)rep.code, "%s", rep.message);
    else
        enc = ps_xfer_encode_reply(out, &rep, why, sizeof why);
    if (enc) out->len = 0;
    return rc;
}
