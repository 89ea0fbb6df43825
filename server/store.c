/*
 * store.c - the manager's SQLite store (store.h, docs/store.md).
 *
 * Durability. The file is in WAL mode: a commit appends to the write-ahead
 * log, readers keep reading the last committed state meanwhile, and a crash
 * at any point loses at most the transaction in progress, never the
 * consistency of the file. synchronous=FULL makes every commit fsync the
 * log before it returns. NORMAL would be faster and just as consistent,
 * but a power cut could then forget the last few commits, and the manager
 * acts on a commit at once: it starts copying a workload after
 * ps_store_begin_transfer returns. A store that forgot the transfer while
 * the workload had moved would restart into the wrong map. Commits are
 * rare (a transfer, a decision pass, an operator's change), so one fsync
 * each costs nothing that matters.
 *
 * Every write is BEGIN IMMEDIATE ... COMMIT: the write lock is taken
 * before anything is read, so the checks and the write see the same state
 * even with another writer (a second manager, an operator's sqlite3)
 * waiting on the busy timeout, and no transaction has to be retried.
 * Checks come first and name what is wrong; the schema's constraints
 * (foreign keys, CHECKs, unique indexes) hold the same rules once more, so
 * a bug here cannot write an inconsistent store.
 *
 * Statements are prepared once (SQLITE_PREPARE_PERSISTENT), on first use,
 * and reset after each use.
 */
#include "store.h"

#include "core/error.h"
#include "kernels/kernels.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- the schema ---- */

static const char SCHEMA_V1[] =
    "CREATE TABLE classes (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),\n"
    "  created_ms INTEGER NOT NULL);\n"
    "CREATE TABLE processors (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),\n"
    "  class TEXT NOT NULL REFERENCES classes(name),\n"
    "  cpu_capacity REAL NOT NULL CHECK (cpu_capacity > 0),\n"
    "  mem_capacity REAL NOT NULL CHECK (mem_capacity > 0),\n"
    "  net_bandwidth REAL NOT NULL CHECK (net_bandwidth > 0),\n"
    "  alive INTEGER NOT NULL DEFAULT 1 CHECK (alive IN (0, 1)),\n"
    "  updated_ms INTEGER NOT NULL);\n"
    "CREATE INDEX processors_class ON processors(class);\n"
    "CREATE TABLE workloads (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),\n"
    "  processor TEXT NOT NULL REFERENCES processors(name),\n"
    "  cpu REAL NOT NULL CHECK (cpu >= 0),\n"
    "  mem REAL NOT NULL CHECK (mem >= 0),\n"
    "  state_bytes REAL NOT NULL CHECK (state_bytes >= 0),\n"
    "  criticality REAL NOT NULL CHECK (criticality >= 0),\n"
    "  replica_group TEXT CHECK (replica_group IS NULL OR length(replica_group) BETWEEN 1 AND "
    "63),\n"
    "  updated_ms INTEGER NOT NULL);\n"
    "CREATE INDEX workloads_processor ON workloads(processor);\n"
    "CREATE UNIQUE INDEX workloads_replicas_apart ON workloads(replica_group, processor)\n"
    "  WHERE replica_group IS NOT NULL;\n"
    "CREATE TABLE dependencies (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  upstream TEXT NOT NULL REFERENCES workloads(name) ON DELETE CASCADE,\n"
    "  downstream TEXT NOT NULL REFERENCES workloads(name) ON DELETE CASCADE,\n"
    "  created_ms INTEGER NOT NULL,\n"
    "  UNIQUE (upstream, downstream),\n"
    "  CHECK (upstream <> downstream));\n"
    "CREATE INDEX dependencies_downstream ON dependencies(downstream);\n"
    "CREATE TABLE transfers (\n"
    "  id INTEGER PRIMARY KEY CHECK (id > 0),\n"
    "  workload TEXT NOT NULL,\n"
    "  source TEXT NOT NULL,\n"
    "  destination TEXT NOT NULL CHECK (destination <> source),\n"
    "  state TEXT NOT NULL CHECK (state IN ('prepared', 'committed', 'rolled_back')),\n"
    "  tick INTEGER NOT NULL,\n"
    "  pfp REAL,\n"
    "  threshold REAL,\n"
    "  expected_seconds REAL,\n"
    "  reason TEXT NOT NULL,\n"
    "  started_ms INTEGER NOT NULL,\n"
    "  finished_ms INTEGER,\n"
    "  note TEXT NOT NULL DEFAULT '',\n"
    "  outcome TEXT CHECK (outcome IN ('averted', 'unnecessary', 'disruptive')),\n"
    "  outcome_ms INTEGER,\n"
    "  CHECK ((state = 'prepared') = (finished_ms IS NULL)),\n"
    "  CHECK (outcome IS NULL OR state <> 'prepared'),\n"
    "  CHECK ((outcome IS NULL) = (outcome_ms IS NULL)));\n"
    "CREATE UNIQUE INDEX transfers_one_open ON transfers(workload) WHERE state = 'prepared';\n"
    "CREATE INDEX transfers_open_to ON transfers(destination) WHERE state = 'prepared';\n"
    "CREATE INDEX transfers_started ON transfers(started_ms);\n"
    "CREATE TABLE decisions (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  at_ms INTEGER NOT NULL,\n"
    "  tick INTEGER NOT NULL,\n"
    "  processor TEXT NOT NULL,\n"
    "  workload TEXT NOT NULL,\n"
    "  decision TEXT NOT NULL,\n"
    "  target TEXT,\n"
    "  transfer_id INTEGER,\n"
    "  pfp REAL, threshold REAL, held_ticks INTEGER, rank INTEGER,\n"
    "  ratio REAL, risk_reduction REAL, disruption REAL, loss REAL,\n"
    "  residual_loss REAL, allowed_loss REAL,\n"
    "  detail TEXT NOT NULL);\n"
    "CREATE INDEX decisions_at ON decisions(at_ms);\n"
    "CREATE INDEX decisions_workload ON decisions(workload, at_ms);\n"
    "CREATE TABLE thresholds (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  class TEXT NOT NULL,\n"
    "  time INTEGER NOT NULL,\n"
    "  at_ms INTEGER NOT NULL,\n"
    "  cause TEXT NOT NULL\n"
    "    CHECK (cause IN ('averted', 'unnecessary', 'disruptive', 'missed', 'environment')),\n"
    "  value REAL NOT NULL, old_value REAL,\n"
    "  base REAL, old_base REAL, env_offset REAL, load REAL, congestion REAL,\n"
    "  rate_averted REAL, rate_unnecessary REAL, rate_disruptive REAL, rate_missed REAL,\n"
    "  why TEXT NOT NULL);\n"
    "CREATE INDEX thresholds_class ON thresholds(class, id);\n";

/*
 * Version 2: the id a processor's heartbeats carry (a uint64 kept as
 * SQLite's signed 64-bit integer, filled for existing rows with the default,
 * the hash of the name) and its agent's address; the kind of a transfer.
 */
static const char SCHEMA_V2[] =
    "ALTER TABLE processors ADD COLUMN heartbeat_id INTEGER;\n"
    "ALTER TABLE processors ADD COLUMN agent TEXT NOT NULL DEFAULT '' "
    "CHECK (length(agent) < 512);\n"
    "CREATE UNIQUE INDEX processors_heartbeat_id ON processors(heartbeat_id);\n"
    "ALTER TABLE transfers ADD COLUMN kind TEXT NOT NULL DEFAULT 'shift' "
    "CHECK (kind IN ('shift', 'failover'));\n"
    "CREATE TABLE meta (\n"
    "  key TEXT PRIMARY KEY,\n"
    "  value TEXT NOT NULL,\n"
    "  updated_ms INTEGER NOT NULL);\n";

static int fill_heartbeat_ids(ps_store *s, char *err, size_t errlen);

/* Forward only: a store at version v gets every migration above v, in one transaction. */
static const struct migration {
    int version;
    const char *description;
    const char *sql;
    int (*then)(ps_store *s, char *err, size_t errlen); /* C after the SQL, or NULL */
} migrations[] = {
    {1, "classes, processors, workloads, dependencies, transfers, decisions, thresholds", SCHEMA_V1,
     NULL},
    {2, "processor heartbeat ids and agent addresses, transfer kinds, meta", SCHEMA_V2,
     fill_heartbeat_ids},
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* ---- statements ---- */

#define TRANSFER_COLS                                                                              \
    "id, workload, source, destination, state, tick, pfp, threshold, expected_seconds, reason, "   \
    "started_ms, finished_ms, note, outcome, outcome_ms, kind"

enum {
    ST_CLASS_FIND,
    ST_CLASS_INSERT,
    ST_CLASS_DELETE,
    ST_CLASS_USERS,
    ST_PROC_GET,
    ST_PROC_INSERT,
    ST_PROC_DELETE,
    ST_PROC_SET_ALIVE,
    ST_PROC_HOSTED,
    ST_PROC_INBOUND,
    ST_PROC_BY_ID,
    ST_WORK_GET,
    ST_WORK_INSERT,
    ST_WORK_DELETE,
    ST_WORK_SET_HOST,
    ST_GROUP_TOUCHES,
    ST_DEP_FIND,
    ST_DEP_INSERT,
    ST_DEP_DELETE,
    ST_TR_GET,
    ST_TR_OPEN_OF,
    ST_TR_INSERT,
    ST_TR_FINISH,
    ST_TR_OUTCOME,
    ST_TR_OPEN_LIST,
    ST_TR_QUERY,
    ST_TR_COUNT_OPEN,
    ST_TR_NEXT_ID,
    ST_DEC_INSERT,
    ST_TH_INSERT,
    ST_TH_LATEST,
    ST_LOAD_CLASSES,
    ST_LOAD_PROCS,
    ST_LOAD_WORKS,
    ST_LOAD_DEPS,
    ST_META_GET,
    ST_META_SET,
    ST_COUNT
};

#define PROC_COLS                                                                                  \
    "name, class, cpu_capacity, mem_capacity, net_bandwidth, alive, heartbeat_id, agent"

static const char *const SQL[ST_COUNT] = {
    [ST_CLASS_FIND] = "SELECT 1 FROM classes WHERE name = ?1",
    [ST_CLASS_INSERT] = "INSERT INTO classes (name, created_ms) VALUES (?1, ?2)",
    [ST_CLASS_DELETE] = "DELETE FROM classes WHERE name = ?1",
    [ST_CLASS_USERS] = "SELECT count(*), min(name) FROM processors WHERE class = ?1",
    [ST_PROC_GET] = "SELECT " PROC_COLS " FROM processors WHERE name = ?1",
    [ST_PROC_INSERT] = "INSERT INTO processors (name, class, cpu_capacity, mem_capacity, "
                       "net_bandwidth, alive, updated_ms, heartbeat_id, agent) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_PROC_DELETE] = "DELETE FROM processors WHERE name = ?1",
    [ST_PROC_SET_ALIVE] = "UPDATE processors SET alive = ?2, updated_ms = ?3 WHERE name = ?1",
    [ST_PROC_HOSTED] = "SELECT (SELECT count(*) FROM workloads WHERE processor = ?1), "
                       "(SELECT group_concat(name, ', ') FROM (SELECT name FROM workloads "
                       "WHERE processor = ?1 ORDER BY id LIMIT 5))",
    [ST_PROC_INBOUND] = "SELECT count(*), min(id) FROM transfers "
                        "WHERE destination = ?1 AND state = 'prepared'",
    [ST_PROC_BY_ID] = "SELECT name FROM processors WHERE heartbeat_id = ?1",
    [ST_WORK_GET] = "SELECT name, processor, replica_group, cpu, mem, state_bytes, criticality "
                    "FROM workloads WHERE name = ?1",
    [ST_WORK_INSERT] = "INSERT INTO workloads (name, processor, cpu, mem, state_bytes, "
                       "criticality, replica_group, updated_ms) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_WORK_DELETE] = "DELETE FROM workloads WHERE name = ?1",
    [ST_WORK_SET_HOST] = "UPDATE workloads SET processor = ?2, updated_ms = ?3 WHERE name = ?1",
    [ST_GROUP_TOUCHES] = "SELECT w.name FROM workloads w WHERE w.replica_group = ?1 "
                         "AND w.name <> ?2 AND (w.processor = ?3 OR EXISTS (SELECT 1 FROM "
                         "transfers t WHERE t.workload = w.name AND t.state = 'prepared' AND "
                         "t.destination = ?3)) LIMIT 1",
    [ST_DEP_FIND] = "SELECT 1 FROM dependencies WHERE upstream = ?1 AND downstream = ?2",
    [ST_DEP_INSERT] = "INSERT INTO dependencies (upstream, downstream, created_ms) "
                      "VALUES (?1, ?2, ?3)",
    [ST_DEP_DELETE] = "DELETE FROM dependencies WHERE upstream = ?1 AND downstream = ?2",
    [ST_TR_GET] = "SELECT " TRANSFER_COLS " FROM transfers WHERE id = ?1",
    [ST_TR_OPEN_OF] = "SELECT id, destination FROM transfers "
                      "WHERE workload = ?1 AND state = 'prepared'",
    [ST_TR_INSERT] = "INSERT INTO transfers (id, workload, source, destination, state, tick, "
                     "pfp, threshold, expected_seconds, reason, started_ms, kind) "
                     "VALUES (?1, ?2, ?3, ?4, 'prepared', ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_TR_FINISH] = "UPDATE transfers SET state = ?2, finished_ms = ?3, note = ?4 "
                     "WHERE id = ?1 AND state = 'prepared'",
    [ST_TR_OUTCOME] = "UPDATE transfers SET outcome = ?2, outcome_ms = ?3 WHERE id = ?1",
    [ST_TR_OPEN_LIST] = "SELECT " TRANSFER_COLS " FROM transfers WHERE state = 'prepared' "
                        "ORDER BY id",
    [ST_TR_QUERY] = "SELECT " TRANSFER_COLS " FROM transfers "
                    "WHERE (?1 IS NULL OR started_ms >= ?1) AND (?2 IS NULL OR started_ms < ?2) "
                    "AND (?3 IS NULL OR workload = ?3) "
                    "AND (?4 IS NULL OR source = ?4 OR destination = ?4) "
                    "AND (?5 IS NULL OR state = ?5) AND (?7 IS NULL OR kind = ?7) "
                    "AND (?8 IS NULL OR outcome IS NULL) "
                    "ORDER BY started_ms DESC, id DESC LIMIT ?6",
    [ST_TR_COUNT_OPEN] = "SELECT count(*), min(id) FROM transfers WHERE state = 'prepared'",
    [ST_TR_NEXT_ID] = "SELECT coalesce(max(id), 0) + 1 FROM transfers",
    [ST_DEC_INSERT] = "INSERT INTO decisions (at_ms, tick, processor, workload, decision, target, "
                      "transfer_id, pfp, threshold, held_ticks, rank, ratio, risk_reduction, "
                      "disruption, loss, residual_loss, allowed_loss, detail) VALUES (?1, ?2, ?3, "
                      "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    [ST_TH_INSERT] = "INSERT INTO thresholds (class, time, at_ms, cause, value, old_value, base, "
                     "old_base, env_offset, load, congestion, rate_averted, rate_unnecessary, "
                     "rate_disruptive, rate_missed, why) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                     "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    [ST_TH_LATEST] = "SELECT time, cause, value, old_value, base, old_base, env_offset, load, "
                     "congestion, rate_averted, rate_unnecessary, rate_disruptive, rate_missed "
                     "FROM thresholds WHERE class = ?1 ORDER BY id DESC LIMIT 1",
    [ST_LOAD_CLASSES] = "SELECT name FROM classes ORDER BY id",
    [ST_LOAD_PROCS] = "SELECT " PROC_COLS " FROM processors ORDER BY id",
    [ST_LOAD_WORKS] = "SELECT name, processor, replica_group, cpu, mem, state_bytes, criticality "
                      "FROM workloads ORDER BY id",
    [ST_LOAD_DEPS] = "SELECT upstream, downstream FROM dependencies ORDER BY id",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value, updated_ms) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (key) DO UPDATE SET value = ?2, updated_ms = ?3",
};

struct ps_store {
    sqlite3 *db;
    char *path;
    int version;
    sqlite3_stmt *st[ST_COUNT];
};

/* ---- plumbing ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t when(int64_t at_ms)
{
    return at_ms ? at_ms : now_ms();
}

static int db_fail(ps_store *s, char *err, size_t errlen, const char *what)
{
    return ps_fail(err, errlen, PS_STORE_EIO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(ps_store *s, const char *sql, const char *what, char *err, size_t errlen)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, errlen, what);
    return PS_OK;
}

/* The cached statement, reset and unbound; NULL (err set) if it cannot be prepared. */
static sqlite3_stmt *prep(ps_store *s, int which, char *err, size_t errlen)
{
    sqlite3_stmt *st = s->st[which];
    if (!st) {
        if (sqlite3_prepare_v3(s->db, SQL[which], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK) {
            db_fail(s, err, errlen, "preparing a statement");
            return NULL;
        }
        s->st[which] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* NaN and infinities are stored as NULL ("not known"). */
static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static void col_text(sqlite3_stmt *st, int i, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, size, "%s", t ? (const char *)t : "");
}

/* One step: 1 = a row, 0 = done (the statement is then reset), < 0 = failed (reset). */
static int step(ps_store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    int r = db_fail(s, err, errlen, what);
    sqlite3_reset(st);
    return r;
}

/* Run a statement that returns no rows. */
static int run(ps_store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = step(s, st, what, err, errlen);
    if (rc == 1) {
        sqlite3_reset(st);
        rc = 0;
    }
    return rc;
}

static int tx_begin(ps_store *s, char *err, size_t errlen)
{
    return exec(s, "BEGIN IMMEDIATE", "starting a transaction", err, errlen);
}

/* Commit if rc >= 0 (and return rc), else roll back (and return rc). */
static int tx_end(ps_store *s, int rc, char *err, size_t errlen)
{
    if (rc >= 0) {
        int c = exec(s, "COMMIT", "committing", err, errlen);
        if (c == PS_OK) return rc;
        rc = c;
    }
    for (int i = 0; i < ST_COUNT; i++)
        if (s->st[i]) sqlite3_reset(s->st[i]);
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int check_name(const char *kind, const char *name, char *err, size_t errlen)
{
    char msg[160];
    if (ps_name_check(name, msg, sizeof msg))
        return ps_fail(err, errlen, PS_EINVAL, "bad %s name: %s", kind, msg);
    return PS_OK;
}

/* ---- open ---- */

static int read_version(ps_store *s, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    *version = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'schema_migrations'",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, errlen, "reading the schema");
    int rc = sqlite3_step(st);
    int have = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (have < 0) return db_fail(s, err, errlen, "reading the schema");
    if (!have) return PS_OK;
    if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s, err, errlen, "reading the schema version");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return db_fail(s, err, errlen, "reading the schema version");
    return PS_OK;
}

static int pragma_int(ps_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Apply every migration above the store's version, in one transaction. */
static int migrate(ps_store *s, char *err, size_t errlen)
{
    int rc = tx_begin(s, err, errlen);
    if (rc) return rc;
    int v;
    rc = read_version(s, &v, err, errlen); /* again, under the write lock */
    if (rc == PS_OK && v == 0) {
        rc = exec(s,
                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                  "applied_ms INTEGER NOT NULL, description TEXT NOT NULL)",
                  "creating the schema", err, errlen);
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", PS_STORE_APPLICATION_ID);
        if (rc == PS_OK) rc = exec(s, sql, "marking the file as a preshift store", err, errlen);
    }
    for (size_t i = 0; i < N_MIGRATIONS && rc == PS_OK; i++) {
        const struct migration *m = &migrations[i];
        if (m->version <= v) continue;
        char what[64];
        snprintf(what, sizeof what, "migrating to schema version %d", m->version);
        rc = exec(s, m->sql, what, err, errlen);
        if (rc == PS_OK && m->then) rc = m->then(s, err, errlen);
        sqlite3_stmt *st = NULL;
        if (rc == PS_OK &&
            sqlite3_prepare_v2(s->db,
                               "INSERT INTO schema_migrations (version, applied_ms, description) "
                               "VALUES (?1, ?2, ?3)",
                               -1, &st, NULL) != SQLITE_OK)
            rc = db_fail(s, err, errlen, what);
        if (rc == PS_OK) {
            sqlite3_bind_int(st, 1, m->version);
            sqlite3_bind_int64(st, 2, now_ms());
            sqlite3_bind_text(st, 3, m->description, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(s, err, errlen, what);
        }
        sqlite3_finalize(st);
        if (rc == PS_OK) s->version = m->version;
    }
    return tx_end(s, rc, err, errlen);
}

static int open_db(ps_store *s, int flags, char *err, size_t errlen)
{
    struct stat sb;
    int exists = stat(s->path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode))
        return ps_fail(err, errlen, PS_STORE_ENOTSTORE, "%s is a directory, not a preshift store",
                       s->path);
    if (!exists && !(flags & PS_STORE_CREATE))
        return ps_fail(err, errlen, PS_STORE_ENOTSTORE, "%s: no store there (%s)", s->path,
                       strerror(errno));
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (flags & PS_STORE_CREATE) oflags |= SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(s->path, &s->db, oflags, NULL) != SQLITE_OK) {
        if (!s->db)
            return ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory opening the store", s->path);
        return db_fail(s, err, errlen, "cannot open");
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* An operator's sqlite3 or a second process may hold the lock for a moment. */
    sqlite3_busy_timeout(s->db, 5000);

    /* Is it ours? Only read-only questions until it is known to be. */
    int64_t app = 0, tables = 0;
    int rc = pragma_int(s, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK) rc = pragma_int(s, "SELECT count(*) FROM sqlite_master", &tables);
    if ((rc & 0xff) == SQLITE_NOTADB)
        return ps_fail(err, errlen, PS_STORE_ENOTSTORE,
                       "%s is not a preshift store (not an SQLite database)", s->path);
    if (rc != SQLITE_OK) return db_fail(s, err, errlen, "cannot read");
    int fresh = app == 0 && tables == 0;
    if (fresh && !(flags & PS_STORE_CREATE))
        return ps_fail(err, errlen, PS_STORE_ENOTSTORE,
                       "%s is an empty database, not a preshift store", s->path);
    if (!fresh && app != PS_STORE_APPLICATION_ID)
        return ps_fail(err, errlen, PS_STORE_ENOTSTORE,
                       "%s is an SQLite database but not a preshift store (application_id "
                       "0x%08llx, %lld schema objects)",
                       s->path, (unsigned long long)(uint32_t)app, (long long)tables);
    if (!fresh) {
        rc = read_version(s, &s->version, err, errlen);
        if (rc) return rc;
        if (s->version > PS_STORE_SCHEMA_VERSION)
            return ps_fail(err, errlen, PS_STORE_EVERSION,
                           "%s has schema version %d, newer than this preshift reads (%d); "
                           "use a newer preshift",
                           s->path, s->version, PS_STORE_SCHEMA_VERSION);
        if (s->version < 1)
            return ps_fail(err, errlen, PS_STORE_ENOTSTORE,
                           "%s is marked as a preshift store but has no schema version", s->path);
    }

    /* The journal mode is kept in the file; the others are per connection. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, errlen, "setting WAL mode");
    char mode[16] = "";
    if (sqlite3_step(st) == SQLITE_ROW) col_text(st, 0, mode, sizeof mode);
    sqlite3_finalize(st);
    if (strcmp(mode, "wal"))
        return ps_fail(err, errlen, PS_STORE_EIO,
                       "%s: cannot use WAL mode (journal mode is '%s'; is it on a network file "
                       "system?)",
                       s->path, mode);
    rc = exec(s, "PRAGMA synchronous = FULL", "setting synchronous", err, errlen);
    if (!rc) rc = exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys", err, errlen);
    if (!rc && s->version < PS_STORE_SCHEMA_VERSION) rc = migrate(s, err, errlen);
    if (!rc && s->version != PS_STORE_SCHEMA_VERSION) {
        /* Another process migrated meanwhile (or to a newer version). */
        rc = read_version(s, &s->version, err, errlen);
        if (!rc && s->version != PS_STORE_SCHEMA_VERSION)
            rc = ps_fail(err, errlen, PS_STORE_EVERSION, "%s has schema version %d, expected %d",
                         s->path, s->version, PS_STORE_SCHEMA_VERSION);
    }
    return rc;
}

int ps_store_open(const char *path, int flags, ps_store **out, char *err, size_t errlen)
{
    if (!out) return ps_fail(err, errlen, PS_EINVAL, "no place for the store");
    *out = NULL;
    if (!path || !*path) return ps_fail(err, errlen, PS_EINVAL, "no store path");
    ps_store *s = calloc(1, sizeof *s);
    if (s) s->path = malloc(strlen(path) + 1);
    if (!s || !s->path) {
        free(s);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory opening %s", path);
    }
    strcpy(s->path, path);
    int rc = open_db(s, flags, err, errlen);
    if (rc) {
        ps_store_close(s);
        return rc;
    }
    *out = s;
    return PS_OK;
}

void ps_store_close(ps_store *s)
{
    if (!s) return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

int ps_store_schema_version(const ps_store *s)
{
    return s->version;
}

const char *ps_transfer_kind_name(ps_transfer_kind k)
{
    return k == PS_STORE_FAILOVER ? "failover" : "shift";
}

const char *ps_transfer_state_name(ps_transfer_state st)
{
    switch (st) {
    case PS_STORE_PREPARED:
        return "prepared";
    case PS_STORE_COMMITTED:
        return "committed";
    case PS_STORE_ROLLED_BACK:
        return "rolled_back";
    }
    return "?";
}

static int state_of(const char *name)
{
    for (int i = PS_STORE_PREPARED; i <= PS_STORE_ROLLED_BACK; i++)
        if (!strcmp(name, ps_transfer_state_name((ps_transfer_state)i))) return i;
    return -1;
}

static int outcome_of(const char *name)
{
    for (int i = 0; i < PS_CAUSE_ENVIRONMENT + 1; i++)
        if (!strcmp(name, ps_threshold_cause_name((ps_threshold_cause)i))) return i;
    return -1;
}

/* ---- lookups inside a transaction ---- */

/* 1 if the class exists, 0 if not, < 0 on failure. */
static int class_exists(ps_store *s, const char *name, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_CLASS_FIND, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, name);
    int rc = step(s, st, "looking up a class", err, errlen);
    sqlite3_reset(st);
    return rc;
}

/* A uint64 id as SQLite's signed 64-bit integer and back, bit for bit. */
static int64_t id_to_sql(uint64_t id)
{
    int64_t v;
    memcpy(&v, &id, sizeof v);
    return v;
}

static uint64_t id_from_sql(int64_t v)
{
    uint64_t id;
    memcpy(&id, &v, sizeof id);
    return id;
}

static void read_processor(sqlite3_stmt *st, ps_store_processor *p)
{
    col_text(st, 0, p->name, sizeof p->name);
    col_text(st, 1, p->cls, sizeof p->cls);
    p->cpu_capacity = sqlite3_column_double(st, 2);
    p->mem_capacity = sqlite3_column_double(st, 3);
    p->net_bandwidth = sqlite3_column_double(st, 4);
    p->alive = sqlite3_column_int(st, 5);
    p->id = sqlite3_column_type(st, 6) == SQLITE_NULL ? ps_processor_default_id(p->name)
                                                      : id_from_sql(sqlite3_column_int64(st, 6));
    col_text(st, 7, p->agent, sizeof p->agent);
}

/* The migration to version 2: every processor gets its default id. */
static int fill_heartbeat_ids(ps_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = PS_OK;
    if (sqlite3_prepare_v2(s->db, "SELECT name FROM processors WHERE heartbeat_id IS NULL", -1,
                           &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "UPDATE processors SET heartbeat_id = ?2 WHERE name = ?1", -1,
                           &upd, NULL) != SQLITE_OK)
        rc = db_fail(s, err, errlen, "filling processor ids");
    char name[PS_NAME_MAX];
    while (rc == PS_OK && sqlite3_step(sel) == SQLITE_ROW) {
        col_text(sel, 0, name, sizeof name);
        sqlite3_reset(upd);
        sqlite3_bind_text(upd, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(upd, 2, id_to_sql(ps_processor_default_id(name)));
        if (sqlite3_step(upd) != SQLITE_DONE) rc = db_fail(s, err, errlen, "filling processor ids");
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return rc;
}

static void read_workload(sqlite3_stmt *st, ps_store_workload *w)
{
    col_text(st, 0, w->name, sizeof w->name);
    col_text(st, 1, w->processor, sizeof w->processor);
    col_text(st, 2, w->group, sizeof w->group);
    w->cpu = sqlite3_column_double(st, 3);
    w->mem = sqlite3_column_double(st, 4);
    w->state_bytes = sqlite3_column_double(st, 5);
    w->criticality = sqlite3_column_double(st, 6);
}

/* 1 and *out if the processor exists, 0 if not, < 0 on failure. */
static int get_processor(ps_store *s, const char *name, ps_store_processor *out, char *err,
                         size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_PROC_GET, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, name);
    int rc = step(s, st, "looking up a processor", err, errlen);
    if (rc == 1) read_processor(st, out);
    sqlite3_reset(st);
    return rc;
}

static int get_workload(ps_store *s, const char *name, ps_store_workload *out, char *err,
                        size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_WORK_GET, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, name);
    int rc = step(s, st, "looking up a workload", err, errlen);
    if (rc == 1) read_workload(st, out);
    sqlite3_reset(st);
    return rc;
}

static void read_transfer(sqlite3_stmt *st, ps_store_transfer *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, t->workload, sizeof t->workload);
    col_text(st, 2, t->source, sizeof t->source);
    col_text(st, 3, t->destination, sizeof t->destination);
    char buf[32];
    col_text(st, 4, buf, sizeof buf);
    int state = state_of(buf);
    t->state = state < 0 ? PS_STORE_PREPARED : (ps_transfer_state)state;
    t->tick = sqlite3_column_int64(st, 5);
    t->pfp = col_real(st, 6);
    t->threshold = col_real(st, 7);
    t->expected_seconds = col_real(st, 8);
    col_text(st, 9, t->reason, sizeof t->reason);
    t->started_ms = sqlite3_column_int64(st, 10);
    t->finished_ms = sqlite3_column_int64(st, 11);
    col_text(st, 12, t->note, sizeof t->note);
    col_text(st, 13, buf, sizeof buf);
    t->outcome = buf[0] ? outcome_of(buf) : PS_STORE_NO_OUTCOME;
    t->outcome_ms = sqlite3_column_int64(st, 14);
    col_text(st, 15, buf, sizeof buf);
    t->kind = strcmp(buf, "failover") ? PS_STORE_SHIFT : PS_STORE_FAILOVER;
}

static int get_transfer(ps_store *s, int64_t id, ps_store_transfer *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_TR_GET, err, errlen);
    if (!st) return PS_STORE_EIO;
    sqlite3_bind_int64(st, 1, id);
    int rc = step(s, st, "looking up a transfer", err, errlen);
    if (rc == 1) read_transfer(st, out);
    sqlite3_reset(st);
    return rc;
}

/* 1 and the id and destination of w's open transfer, 0 if none. */
static int open_transfer_of(ps_store *s, const char *w, int64_t *id, char dest[PS_NAME_MAX],
                            char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_TR_OPEN_OF, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, w);
    int rc = step(s, st, "looking up open transfers", err, errlen);
    if (rc == 1) {
        *id = sqlite3_column_int64(st, 0);
        col_text(st, 1, dest, PS_NAME_MAX);
    }
    sqlite3_reset(st);
    return rc;
}

/* 1 and the member's name if another member of group is on or heading to proc. */
static int group_touches(ps_store *s, const char *group, const char *except, const char *proc,
                         char member[PS_NAME_MAX], char *err, size_t errlen)
{
    if (!group || !*group) return 0;
    sqlite3_stmt *st = prep(s, ST_GROUP_TOUCHES, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, group);
    bind_text(st, 2, except);
    bind_text(st, 3, proc);
    int rc = step(s, st, "checking replica anti-affinity", err, errlen);
    if (rc == 1) col_text(st, 0, member, PS_NAME_MAX);
    sqlite3_reset(st);
    return rc;
}

/* ---- classes ---- */

int ps_store_add_class(ps_store *s, const char *name, char *err, size_t errlen)
{
    int rc = check_name("class", name, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    rc = class_exists(s, name, err, errlen);
    if (rc == 1) rc = ps_fail(err, errlen, PS_STORE_EEXISTS, "class '%s' already exists", name);
    if (rc == 0) {
        sqlite3_stmt *st = prep(s, ST_CLASS_INSERT, err, errlen);
        rc = st ? PS_OK : PS_STORE_EIO;
        if (st) {
            bind_text(st, 1, name);
            sqlite3_bind_int64(st, 2, now_ms());
            rc = run(s, st, "adding a class", err, errlen);
        }
    }
    return tx_end(s, rc, err, errlen);
}

int ps_store_remove_class(ps_store *s, const char *name, char *err, size_t errlen)
{
    int rc = check_name("class", name, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    rc = class_exists(s, name, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no class '%s'", name);
    sqlite3_stmt *st = rc == 1 ? prep(s, ST_CLASS_USERS, err, errlen) : NULL;
    if (rc == 1 && !st) rc = PS_STORE_EIO;
    if (st) {
        bind_text(st, 1, name);
        rc = step(s, st, "checking a class's processors", err, errlen);
        if (rc == 1 && sqlite3_column_int64(st, 0) > 0) {
            char first[PS_NAME_MAX];
            col_text(st, 1, first, sizeof first);
            rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                         "class '%s' is still the class of %lld processor(s), e.g. '%s'", name,
                         (long long)sqlite3_column_int64(st, 0), first);
        }
        sqlite3_reset(st);
    }
    if (rc >= 0 && (st = prep(s, ST_CLASS_DELETE, err, errlen)) != NULL) {
        bind_text(st, 1, name);
        rc = run(s, st, "removing a class", err, errlen);
    } else if (rc >= 0) {
        rc = PS_STORE_EIO;
    }
    return tx_end(s, rc, err, errlen);
}

/* ---- processors ---- */

static int check_processor(const ps_store_processor *p, char *err, size_t errlen)
{
    if (!p) return ps_fail(err, errlen, PS_EINVAL, "no processor");
    int rc = check_name("processor", p->name, err, errlen);
    if (!rc) rc = check_name("class", p->cls, err, errlen);
    if (rc) return rc;
    if (p->agent[0] && (strnlen(p->agent, sizeof p->agent) == sizeof p->agent ||
                        (strncmp(p->agent, "tcp://", 6) && strncmp(p->agent, "ipc://", 6) &&
                         strncmp(p->agent, "tls+tcp://", 10))))
        return ps_fail(err, errlen, PS_EINVAL,
                       "processor '%s': agent must be a tcp://, ipc:// or tls+tcp:// address of "
                       "at most %d bytes",
                       p->name, PS_AGENT_URL_MAX - 1);
    if (!(isfinite(p->cpu_capacity) && p->cpu_capacity > 0) ||
        !(isfinite(p->mem_capacity) && p->mem_capacity > 0) ||
        !(isfinite(p->net_bandwidth) && p->net_bandwidth > 0))
        return ps_fail(err, errlen, PS_EINVAL,
                       "processor '%s': capacities must be finite and > 0 (cpu %g, mem %g, net %g)",
                       p->name, p->cpu_capacity, p->mem_capacity, p->net_bandwidth);
    return PS_OK;
}

static int insert_processor(ps_store *s, const ps_store_processor *p, int64_t at, char *err,
                            size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_PROC_INSERT, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, p->name);
    bind_text(st, 2, p->cls);
    sqlite3_bind_double(st, 3, p->cpu_capacity);
    sqlite3_bind_double(st, 4, p->mem_capacity);
    sqlite3_bind_double(st, 5, p->net_bandwidth);
    sqlite3_bind_int(st, 6, p->alive ? 1 : 0);
    sqlite3_bind_int64(st, 7, at);
    sqlite3_bind_int64(st, 8, id_to_sql(p->id));
    bind_text(st, 9, p->agent);
    return run(s, st, "adding a processor", err, errlen);
}

int ps_store_add_processor(ps_store *s, const ps_store_processor *p, char *err, size_t errlen)
{
    int rc = check_processor(p, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_processor old;
    rc = get_processor(s, p->name, &old, err, errlen);
    if (rc == 1)
        rc = ps_fail(err, errlen, PS_STORE_EEXISTS, "processor '%s' already exists", p->name);
    if (rc == 0) {
        rc = class_exists(s, p->cls, err, errlen);
        if (rc == 0)
            rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "processor '%s': no class '%s'", p->name,
                         p->cls);
    }
    if (rc == 1) {
        sqlite3_stmt *st = prep(s, ST_PROC_BY_ID, err, errlen);
        rc = st ? PS_OK : PS_STORE_EIO;
        if (st) {
            sqlite3_bind_int64(st, 1, id_to_sql(p->id));
            rc = step(s, st, "looking up a processor id", err, errlen);
            if (rc == 1) {
                char other[PS_NAME_MAX];
                col_text(st, 0, other, sizeof other);
                rc = ps_fail(err, errlen, PS_STORE_EEXISTS,
                             "processor '%s': id %llu is already the id of '%s'", p->name,
                             (unsigned long long)p->id, other);
            }
            sqlite3_reset(st);
        }
    }
    if (rc == 0) rc = insert_processor(s, p, now_ms(), err, errlen);
    return tx_end(s, rc, err, errlen);
}

int ps_store_remove_processor(ps_store *s, const char *name, char *err, size_t errlen)
{
    int rc = check_name("processor", name, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_processor p;
    rc = get_processor(s, name, &p, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no processor '%s'", name);
    sqlite3_stmt *st = rc == 1 ? prep(s, ST_PROC_HOSTED, err, errlen) : NULL;
    if (rc == 1 && !st) rc = PS_STORE_EIO;
    if (st) {
        bind_text(st, 1, name);
        rc = step(s, st, "counting a processor's workloads", err, errlen);
        if (rc == 1 && sqlite3_column_int64(st, 0) > 0) {
            long long n = sqlite3_column_int64(st, 0);
            char list[PS_NAME_MAX * 5 + 16];
            col_text(st, 1, list, sizeof list);
            rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                         "processor '%s' still hosts %lld workload(s) (%s%s); move or remove "
                         "them first",
                         name, n, list, n > 5 ? ", ..." : "");
        }
        sqlite3_reset(st);
    }
    if (rc >= 0) {
        st = prep(s, ST_PROC_INBOUND, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            bind_text(st, 1, name);
            rc = step(s, st, "counting transfers", err, errlen);
            if (rc == 1 && sqlite3_column_int64(st, 0) > 0)
                rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                             "processor '%s' receives %lld transfer(s) in flight (e.g. %lld); "
                             "finish them first",
                             name, (long long)sqlite3_column_int64(st, 0),
                             (long long)sqlite3_column_int64(st, 1));
            sqlite3_reset(st);
        }
    }
    if (rc >= 0) {
        st = prep(s, ST_PROC_DELETE, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            bind_text(st, 1, name);
            rc = run(s, st, "removing a processor", err, errlen);
        }
    }
    return tx_end(s, rc, err, errlen);
}

int ps_store_set_alive(ps_store *s, const char *name, int alive, char *err, size_t errlen)
{
    int rc = check_name("processor", name, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_processor p;
    rc = get_processor(s, name, &p, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no processor '%s'", name);
    if (rc == 1) {
        sqlite3_stmt *st = prep(s, ST_PROC_SET_ALIVE, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            bind_text(st, 1, name);
            sqlite3_bind_int(st, 2, alive ? 1 : 0);
            sqlite3_bind_int64(st, 3, now_ms());
            rc = run(s, st, "marking a processor", err, errlen);
        }
    }
    return tx_end(s, rc, err, errlen);
}

int ps_store_get_processor(ps_store *s, const char *name, ps_store_processor *out, char *err,
                           size_t errlen)
{
    int rc = check_name("processor", name, err, errlen);
    if (rc) return rc;
    rc = get_processor(s, name, out, err, errlen);
    if (rc == 0) return ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no processor '%s'", name);
    return rc < 0 ? rc : PS_OK;
}

/* ---- workloads ---- */

static int check_workload(const ps_store_workload *w, char *err, size_t errlen)
{
    if (!w) return ps_fail(err, errlen, PS_EINVAL, "no workload");
    int rc = check_name("workload", w->name, err, errlen);
    if (!rc) rc = check_name("processor", w->processor, err, errlen);
    if (!rc && w->group[0]) rc = check_name("replica group", w->group, err, errlen);
    if (rc) return rc;
    if (!(isfinite(w->cpu) && w->cpu >= 0) || !(isfinite(w->mem) && w->mem >= 0) ||
        !(isfinite(w->state_bytes) && w->state_bytes >= 0) ||
        !(isfinite(w->criticality) && w->criticality >= 0))
        return ps_fail(err, errlen, PS_EINVAL,
                       "workload '%s': cpu %g, mem %g, state %g bytes and criticality %g must be "
                       "finite and >= 0",
                       w->name, w->cpu, w->mem, w->state_bytes, w->criticality);
    return PS_OK;
}

static int insert_workload(ps_store *s, const ps_store_workload *w, int64_t at, char *err,
                           size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_WORK_INSERT, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, w->name);
    bind_text(st, 2, w->processor);
    sqlite3_bind_double(st, 3, w->cpu);
    sqlite3_bind_double(st, 4, w->mem);
    sqlite3_bind_double(st, 5, w->state_bytes);
    sqlite3_bind_double(st, 6, w->criticality);
    bind_text(st, 7, w->group[0] ? w->group : NULL);
    sqlite3_bind_int64(st, 8, at);
    return run(s, st, "adding a workload", err, errlen);
}

int ps_store_add_workload(ps_store *s, const ps_store_workload *w, char *err, size_t errlen)
{
    int rc = check_workload(w, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_workload old;
    ps_store_processor p;
    char member[PS_NAME_MAX];
    rc = get_workload(s, w->name, &old, err, errlen);
    if (rc == 1)
        rc = ps_fail(err, errlen, PS_STORE_EEXISTS, "workload '%s' already exists", w->name);
    if (rc == 0) {
        rc = get_processor(s, w->processor, &p, err, errlen);
        if (rc == 0)
            rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "workload '%s': no processor '%s'",
                         w->name, w->processor);
        if (rc == 1 && !p.alive)
            rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                         "workload '%s': processor '%s' is not alive", w->name, w->processor);
    }
    if (rc == 1) {
        rc = group_touches(s, w->group, w->name, w->processor, member, err, errlen);
        if (rc == 1)
            rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                         "workload '%s': processor '%s' already holds '%s' of replica group '%s'",
                         w->name, w->processor, member, w->group);
    }
    if (rc == 0) rc = insert_workload(s, w, now_ms(), err, errlen);
    return tx_end(s, rc, err, errlen);
}

int ps_store_remove_workload(ps_store *s, const char *name, char *err, size_t errlen)
{
    int rc = check_name("workload", name, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_workload w;
    rc = get_workload(s, name, &w, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no workload '%s'", name);
    int64_t id = 0;
    char dest[PS_NAME_MAX];
    if (rc == 1) rc = open_transfer_of(s, name, &id, dest, err, errlen);
    if (rc == 1) {
        sqlite3_stmt *st = prep(s, ST_TR_FINISH, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            bind_text(st, 2, "rolled_back");
            sqlite3_bind_int64(st, 3, now_ms());
            bind_text(st, 4, "workload removed");
            rc = run(s, st, "closing the removed workload's transfer", err, errlen);
        }
    }
    if (rc >= 0) {
        sqlite3_stmt *st = prep(s, ST_WORK_DELETE, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            bind_text(st, 1, name);
            rc = run(s, st, "removing a workload", err, errlen);
        }
    }
    return tx_end(s, rc, err, errlen);
}

int ps_store_get_workload(ps_store *s, const char *name, ps_store_workload *out, char *err,
                          size_t errlen)
{
    int rc = check_name("workload", name, err, errlen);
    if (rc) return rc;
    rc = get_workload(s, name, out, err, errlen);
    if (rc == 0) return ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no workload '%s'", name);
    return rc < 0 ? rc : PS_OK;
}

static int set_host(ps_store *s, const char *w, const char *proc, int64_t at, char *err,
                    size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_WORK_SET_HOST, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, w);
    bind_text(st, 2, proc);
    sqlite3_bind_int64(st, 3, at);
    int rc = run(s, st, "moving a workload", err, errlen);
    if (rc == 0 && sqlite3_changes(s->db) != 1)
        rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no workload '%s'", w);
    return rc;
}

/*
 * The checks of a move of w to target (as core/cluster.c's check_target):
 * 0 if allowed, < 0 with the reason.
 */
static int check_target(ps_store *s, const ps_store_workload *w, const char *target, char *err,
                        size_t errlen)
{
    ps_store_processor p;
    char member[PS_NAME_MAX];
    int rc = get_processor(s, target, &p, err, errlen);
    if (rc == 0)
        return ps_fail(err, errlen, PS_STORE_ENOTFOUND, "workload '%s': no processor '%s'", w->name,
                       target);
    if (rc < 0) return rc;
    if (!p.alive)
        return ps_fail(err, errlen, PS_STORE_ECONFLICT,
                       "workload '%s': target processor '%s' is not alive", w->name, target);
    if (!strcmp(w->processor, target))
        return ps_fail(err, errlen, PS_STORE_ECONFLICT, "workload '%s' is already on '%s'", w->name,
                       target);
    rc = group_touches(s, w->group, w->name, target, member, err, errlen);
    if (rc == 1)
        return ps_fail(err, errlen, PS_STORE_ECONFLICT,
                       "workload '%s': processor '%s' already holds (or receives) '%s' of "
                       "replica group '%s'",
                       w->name, target, member, w->group);
    return rc;
}

int ps_store_move_workload(ps_store *s, const char *workload, const char *processor, char *err,
                           size_t errlen)
{
    int rc = check_name("workload", workload, err, errlen);
    if (!rc) rc = check_name("processor", processor, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_workload w;
    int64_t id = 0;
    char dest[PS_NAME_MAX];
    rc = get_workload(s, workload, &w, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no workload '%s'", workload);
    if (rc == 1) rc = open_transfer_of(s, workload, &id, dest, err, errlen);
    if (rc == 1)
        rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                     "workload '%s' has transfer %lld in flight to '%s'; finish it first", workload,
                     (long long)id, dest);
    if (rc == 0) rc = check_target(s, &w, processor, err, errlen);
    if (rc == 0) rc = set_host(s, workload, processor, now_ms(), err, errlen);
    return tx_end(s, rc, err, errlen);
}

/* ---- dependencies ---- */

static int dep_exists(ps_store *s, const char *a, const char *b, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_DEP_FIND, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, a);
    bind_text(st, 2, b);
    int rc = step(s, st, "looking up a dependency", err, errlen);
    sqlite3_reset(st);
    return rc;
}

static int insert_dep(ps_store *s, const char *a, const char *b, int64_t at, char *err,
                      size_t errlen)
{
    sqlite3_stmt *st = prep(s, ST_DEP_INSERT, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, a);
    bind_text(st, 2, b);
    sqlite3_bind_int64(st, 3, at);
    return run(s, st, "adding a dependency", err, errlen);
}

int ps_store_add_dependency(ps_store *s, const char *a, const char *b, char *err, size_t errlen)
{
    int rc = check_name("workload", a, err, errlen);
    if (!rc) rc = check_name("workload", b, err, errlen);
    if (rc) return rc;
    if (!strcmp(a, b))
        return ps_fail(err, errlen, PS_STORE_ECONFLICT, "workload '%s' cannot depend on itself", a);
    if ((rc = tx_begin(s, err, errlen))) return rc;
    ps_store_workload w;
    rc = get_workload(s, a, &w, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no workload '%s'", a);
    if (rc == 1) {
        rc = get_workload(s, b, &w, err, errlen);
        if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no workload '%s'", b);
    }
    if (rc == 1) {
        rc = dep_exists(s, a, b, err, errlen);
        if (rc == 1)
            rc = ps_fail(err, errlen, PS_STORE_EEXISTS, "'%s' already depends on '%s'", b, a);
    }
    if (rc == 0) rc = insert_dep(s, a, b, now_ms(), err, errlen);
    return tx_end(s, rc, err, errlen);
}

int ps_store_remove_dependency(ps_store *s, const char *a, const char *b, char *err, size_t errlen)
{
    int rc = check_name("workload", a, err, errlen);
    if (!rc) rc = check_name("workload", b, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    rc = dep_exists(s, a, b, err, errlen);
    if (rc == 0)
        rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "'%s' does not depend on '%s'", b, a);
    if (rc == 1) {
        sqlite3_stmt *st = prep(s, ST_DEP_DELETE, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            bind_text(st, 1, a);
            bind_text(st, 2, b);
            rc = run(s, st, "removing a dependency", err, errlen);
        }
    }
    return tx_end(s, rc, err, errlen);
}

/* ---- the whole cluster ---- */

int ps_store_processor_from(const ps_cluster *c, const ps_names *names, uint32_t id,
                            ps_store_processor *out, char *err, size_t errlen)
{
    if (!c || !names || !out) return ps_fail(err, errlen, PS_EINVAL, "no cluster, names or out");
    if (id >= c->max_processors || !c->proc[id].present)
        return ps_fail(err, errlen, PS_EINVAL, "no processor in slot %u", id);
    const ps_processor *p = &c->proc[id];
    const char *name = ps_name_of(&names->processors, id),
               *cls = ps_name_of(&names->classes, p->cls);
    if (!name) return ps_fail(err, errlen, PS_EINVAL, "processor slot %u has no name", id);
    if (!cls)
        return ps_fail(err, errlen, PS_EINVAL, "class %u of processor '%s' has no name",
                       (unsigned)p->cls, name);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->cls, sizeof out->cls, "%s", cls);
    out->id = ps_names_processor_id(names, id);
    snprintf(out->agent, sizeof out->agent, "%s", ps_names_agent(names, id));
    out->cpu_capacity = p->cpu_capacity;
    out->mem_capacity = p->mem_capacity;
    out->net_bandwidth = p->net_bandwidth;
    out->alive = p->alive;
    return PS_OK;
}

int ps_store_workload_from(const ps_cluster *c, const ps_names *names, uint32_t w,
                           ps_store_workload *out, char *err, size_t errlen)
{
    if (!c || !names || !out) return ps_fail(err, errlen, PS_EINVAL, "no cluster, names or out");
    if (w >= c->max_workloads || !c->work[w].present)
        return ps_fail(err, errlen, PS_EINVAL, "no workload in slot %u", w);
    const ps_workload *x = &c->work[w];
    const char *name = ps_name_of(&names->workloads, w);
    const char *proc = ps_name_of(&names->processors, x->proc);
    const char *group = x->group ? ps_name_of(&names->groups, x->group) : "";
    if (!name) return ps_fail(err, errlen, PS_EINVAL, "workload slot %u has no name", w);
    if (!proc)
        return ps_fail(err, errlen, PS_EINVAL, "processor %u of workload '%s' has no name", x->proc,
                       name);
    if (!group)
        return ps_fail(err, errlen, PS_EINVAL, "replica group %u of workload '%s' has no name",
                       x->group, name);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->processor, sizeof out->processor, "%s", proc);
    snprintf(out->group, sizeof out->group, "%s", group);
    out->cpu = x->cpu;
    out->mem = x->mem;
    out->state_bytes = x->state_bytes;
    out->criticality = x->criticality;
    return PS_OK;
}

int ps_store_replace_cluster(ps_store *s, const ps_cluster *c, const ps_names *names, char *err,
                             size_t errlen)
{
    if (!s || !c || !names) return ps_fail(err, errlen, PS_EINVAL, "no store, cluster or names");
    for (uint32_t w = 0; w < c->max_workloads; w++)
        if (c->work[w].present && c->work[w].dest != PS_NONE)
            return ps_fail(err, errlen, PS_STORE_ECONFLICT,
                           "the cluster has transfers in flight (workload slot %u); record them "
                           "with ps_store_begin_transfer instead",
                           w);
    int rc = tx_begin(s, err, errlen);
    if (rc) return rc;
    sqlite3_stmt *st = prep(s, ST_TR_COUNT_OPEN, err, errlen);
    rc = st ? step(s, st, "counting open transfers", err, errlen) : PS_STORE_EIO;
    if (rc == 1 && sqlite3_column_int64(st, 0) > 0)
        rc =
            ps_fail(err, errlen, PS_STORE_ECONFLICT,
                    "%lld transfer(s) are open (e.g. %lld); finish them before replacing the "
                    "cluster",
                    (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1));
    if (st) sqlite3_reset(st);
    if (rc >= 0)
        rc = exec(s,
                  "DELETE FROM dependencies; DELETE FROM workloads; DELETE FROM processors; "
                  "DELETE FROM classes",
                  "clearing the cluster", err, errlen);
    int64_t at = now_ms();
    for (uint32_t k = 0; k < c->n_classes && rc >= 0; k++) {
        const char *name = ps_name_of(&names->classes, k);
        if (!name) continue; /* an unnamed class no processor uses is skipped below */
        st = prep(s, ST_CLASS_INSERT, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            bind_text(st, 1, name);
            sqlite3_bind_int64(st, 2, at);
            rc = run(s, st, "adding a class", err, errlen);
        }
    }
    for (uint32_t p = 0; p < c->max_processors && rc >= 0; p++) {
        if (!c->proc[p].present) continue;
        ps_store_processor rec;
        rc = ps_store_processor_from(c, names, p, &rec, err, errlen);
        if (!rc) rc = insert_processor(s, &rec, at, err, errlen);
    }
    for (uint32_t w = 0; w < c->max_workloads && rc >= 0; w++) {
        if (!c->work[w].present) continue;
        ps_store_workload rec;
        rc = ps_store_workload_from(c, names, w, &rec, err, errlen);
        if (!rc) rc = insert_workload(s, &rec, at, err, errlen);
    }
    for (uint32_t w = 0; w < c->max_workloads && rc >= 0; w++) {
        if (!c->work[w].present) continue;
        uint32_t n;
        const uint32_t *out = ps_cluster_dependents(c, w, &n);
        for (uint32_t i = 0; i < n && rc >= 0; i++) {
            const char *b = ps_name_of(&names->workloads, out[i]);
            if (!b) rc = ps_fail(err, errlen, PS_EINVAL, "workload slot %u has no name", out[i]);
            if (rc >= 0) rc = insert_dep(s, ps_name_of(&names->workloads, w), b, at, err, errlen);
        }
    }
    return tx_end(s, rc < 0 ? rc : PS_OK, err, errlen);
}

/* Rows read by load_cluster before the cluster is sized. */
typedef struct load_rows {
    ps_processor_spec *proc;
    uint8_t *alive;
    ps_workload_spec *work;
    uint32_t *dep; /* pairs a, b */
    size_t n_proc, n_work, n_dep, cap_proc, cap_work, cap_dep;
    uint32_t *tr; /* pairs workload, destination */
    int64_t *tr_id;
    size_t n_tr, cap_tr;
} load_rows;

static void rows_free(load_rows *r)
{
    free(r->proc);
    free(r->alive);
    free(r->work);
    free(r->dep);
    free(r->tr);
    free(r->tr_id);
}

/* Grow an array of size-byte elements to hold n + 1; 0 or PS_ENOMEM. */
static int room_for(void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return PS_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    void *na = realloc(*arr, nc * size);
    if (!na) return PS_ENOMEM;
    *arr = na;
    *cap = nc;
    return PS_OK;
}

static int read_rows(ps_store *s, load_rows *r, ps_names *N, char *err, size_t errlen)
{
    char a[PS_NAME_MAX], b[PS_NAME_MAX], g[PS_NAME_MAX];
    sqlite3_stmt *st = prep(s, ST_LOAD_CLASSES, err, errlen);
    if (!st) return PS_STORE_EIO;
    int rc;
    uint32_t k = 0;
    while ((rc = step(s, st, "reading classes", err, errlen)) == 1) {
        if (k >= PS_THRESHOLD_MAX_CLASSES) {
            sqlite3_reset(st);
            return ps_fail(err, errlen, PS_EINVAL, "%s holds more than %d classes", s->path,
                           PS_THRESHOLD_MAX_CLASSES);
        }
        col_text(st, 0, a, sizeof a);
        if ((rc = ps_name_set(&N->classes, k++, a, err, errlen))) break;
    }
    sqlite3_reset(st);
    if (rc < 0) return rc;

    if (!(st = prep(s, ST_LOAD_PROCS, err, errlen))) return PS_STORE_EIO;
    while ((rc = step(s, st, "reading processors", err, errlen)) == 1) {
        ps_store_processor p;
        read_processor(st, &p);
        void *arr = r->proc;
        size_t cap = r->cap_proc;
        if ((rc = room_for(&arr, r->n_proc, &cap, sizeof *r->proc))) break;
        r->proc = arr;
        arr = r->alive;
        if ((rc = room_for(&arr, r->n_proc, &r->cap_proc, sizeof *r->alive))) break;
        r->alive = arr;
        if ((rc = ps_name_set(&N->processors, (uint32_t)r->n_proc, p.name, err, errlen)) ||
            (rc = ps_names_set_info(N, (uint32_t)r->n_proc, p.id, p.agent, err, errlen)))
            break;
        r->proc[r->n_proc] = (ps_processor_spec){(uint16_t)ps_name_find(&N->classes, p.cls),
                                                 p.cpu_capacity, p.mem_capacity, p.net_bandwidth};
        r->alive[r->n_proc++] = (uint8_t)p.alive;
    }
    sqlite3_reset(st);
    if (rc < 0) return rc;

    if (!(st = prep(s, ST_LOAD_WORKS, err, errlen))) return PS_STORE_EIO;
    while ((rc = step(s, st, "reading workloads", err, errlen)) == 1) {
        ps_store_workload w;
        read_workload(st, &w);
        void *arr = r->work;
        if ((rc = room_for(&arr, r->n_work, &r->cap_work, sizeof *r->work))) break;
        r->work = arr;
        if ((rc = ps_name_set(&N->workloads, (uint32_t)r->n_work, w.name, err, errlen))) break;
        uint32_t grp = 0;
        if (w.group[0]) {
            snprintf(g, sizeof g, "%s", w.group);
            grp = ps_name_find(&N->groups, g);
            if (grp == PS_NONE && (rc = ps_name_add(&N->groups, g, PS_NONE, &grp, err, errlen)))
                break;
        }
        r->work[r->n_work++] = (ps_workload_spec){ps_name_find(&N->processors, w.processor),
                                                  w.cpu,
                                                  w.mem,
                                                  w.state_bytes,
                                                  w.criticality,
                                                  grp};
    }
    sqlite3_reset(st);
    if (rc < 0) return rc;

    if (!(st = prep(s, ST_LOAD_DEPS, err, errlen))) return PS_STORE_EIO;
    while ((rc = step(s, st, "reading dependencies", err, errlen)) == 1) {
        col_text(st, 0, a, sizeof a);
        col_text(st, 1, b, sizeof b);
        void *arr = r->dep;
        if ((rc = room_for(&arr, r->n_dep, &r->cap_dep, 2 * sizeof *r->dep))) break;
        r->dep = arr;
        r->dep[2 * r->n_dep] = ps_name_find(&N->workloads, a);
        r->dep[2 * r->n_dep + 1] = ps_name_find(&N->workloads, b);
        r->n_dep++;
    }
    sqlite3_reset(st);
    if (rc < 0) return rc;

    if (!(st = prep(s, ST_TR_OPEN_LIST, err, errlen))) return PS_STORE_EIO;
    while ((rc = step(s, st, "reading open transfers", err, errlen)) == 1) {
        ps_store_transfer t;
        read_transfer(st, &t);
        void *arr = r->tr;
        size_t cap = r->cap_tr;
        if ((rc = room_for(&arr, r->n_tr, &cap, 2 * sizeof *r->tr))) break;
        r->tr = arr;
        arr = r->tr_id;
        if ((rc = room_for(&arr, r->n_tr, &r->cap_tr, sizeof *r->tr_id))) break;
        r->tr_id = arr;
        r->tr[2 * r->n_tr] = ps_name_find(&N->workloads, t.workload);
        r->tr[2 * r->n_tr + 1] = ps_name_find(&N->processors, t.destination);
        r->tr_id[r->n_tr++] = t.id;
    }
    sqlite3_reset(st);
    if (rc == PS_ENOMEM) return ps_fail(err, errlen, PS_ENOMEM, "out of memory loading the store");
    return rc < 0 ? rc : PS_OK;
}

static uint32_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return (uint32_t)(m > c ? m : c);
}

int ps_store_load_cluster(ps_store *s, const ps_load_room *room, ps_cluster *c, ps_names *names,
                          char *err, size_t errlen)
{
    if (!s || !c || !names) return ps_fail(err, errlen, PS_EINVAL, "no store, cluster or names");
    memset(c, 0, sizeof *c);
    ps_names_init(names);
    ps_load_room rm = room ? *room : (ps_load_room){0, 0, 0, 0};
    if (rm.classes > PS_THRESHOLD_MAX_CLASSES)
        return ps_fail(err, errlen, PS_EINVAL, "room for %u classes asked, at most %d", rm.classes,
                       PS_THRESHOLD_MAX_CLASSES);
    /* One read transaction: a consistent snapshot even while another process writes. */
    int rc = exec(s, "BEGIN", "starting a read", err, errlen);
    if (rc) return rc;
    load_rows r;
    memset(&r, 0, sizeof r);
    ps_names N;
    ps_names_init(&N);
    rc = read_rows(s, &r, &N, err, errlen);
    tx_end(s, rc < 0 ? rc : PS_OK, err, errlen);
    if (rc == PS_OK)
        rc = ps_cluster_init(c, max3(rm.processors, r.n_proc, 1), max3(rm.workloads, r.n_work, 1),
                             max3(rm.groups, N.groups.len - 1, 0),
                             (uint16_t)max3(rm.classes, N.classes.count, 1), err, errlen);
    char msg[256];
    const char *what = "";
    const char *who = "";
    for (size_t i = 0; i < r.n_proc && rc == PS_OK; i++) {
        what = "processor";
        who = ps_name_of(&N.processors, (uint32_t)i);
        rc = ps_cluster_add_processor(c, (uint32_t)i, &r.proc[i], msg, sizeof msg);
    }
    for (size_t i = 0; i < r.n_work && rc == PS_OK; i++) {
        what = "workload";
        who = ps_name_of(&N.workloads, (uint32_t)i);
        rc = ps_cluster_add_workload(c, (uint32_t)i, &r.work[i], msg, sizeof msg);
    }
    for (size_t i = 0; i < r.n_dep && rc == PS_OK; i++) {
        what = "dependency of";
        who = ps_name_of(&N.workloads, r.dep[2 * i + 1]);
        rc = ps_cluster_add_edge(c, r.dep[2 * i], r.dep[2 * i + 1], msg, sizeof msg);
    }
    for (size_t i = 0; i < r.n_tr && rc == PS_OK; i++) {
        what = "open transfer of";
        who = ps_name_of(&N.workloads, r.tr[2 * i]);
        rc = ps_cluster_begin_transfer(c, r.tr[2 * i], r.tr[2 * i + 1], msg, sizeof msg);
    }
    for (size_t i = 0; i < r.n_proc && rc == PS_OK; i++) {
        what = "processor";
        who = ps_name_of(&N.processors, (uint32_t)i);
        if (!r.alive[i]) rc = ps_cluster_set_alive(c, (uint32_t)i, 0, msg, sizeof msg);
    }
    /* Failures after ps_cluster_init are the cluster refusing what the store holds. */
    if (rc != PS_OK && c->proc)
        rc = ps_fail(err, errlen, rc, "%s: cannot load %s '%s': %s", s->path, what, who ? who : "?",
                     msg);
    rows_free(&r);
    if (rc != PS_OK) {
        ps_cluster_free(c);
        ps_names_free(&N);
        return rc;
    }
    *names = N;
    return PS_OK;
}

/* ---- transfers ---- */

/* t (may be NULL) must end within max bytes, its NUL included. */
static int check_text(const char *what, const char *t, size_t max, char *err, size_t errlen)
{
    if (t && strnlen(t, max) == max)
        return ps_fail(err, errlen, PS_EINVAL, "%s is too long (at most %zu bytes)", what, max - 1);
    return PS_OK;
}

int ps_store_begin_transfer(ps_store *s, ps_store_transfer *t, char *err, size_t errlen)
{
    if (!s || !t) return ps_fail(err, errlen, PS_EINVAL, "no store or transfer");
    if (t->id <= 0)
        return ps_fail(err, errlen, PS_EINVAL, "transfer id %lld must be > 0", (long long)t->id);
    int rc = check_name("workload", t->workload, err, errlen);
    if (!rc) rc = check_name("processor", t->destination, err, errlen);
    if (!rc) rc = check_text("transfer reason", t->reason, PS_STORE_REASON_MAX, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_transfer old;
    rc = get_transfer(s, t->id, &old, err, errlen);
    if (rc == 1) {
        if (!strcmp(old.workload, t->workload) && !strcmp(old.destination, t->destination)) {
            *t = old;
        } else {
            rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                         "transfer %lld is already recorded for '%s' -> '%s' (%s), not for '%s' "
                         "-> '%s'",
                         (long long)t->id, old.workload, old.destination,
                         ps_transfer_state_name(old.state), t->workload, t->destination);
        }
        return tx_end(s, rc, err, errlen);
    }
    ps_store_workload w;
    int64_t other = 0;
    char dest[PS_NAME_MAX];
    if (rc == 0) {
        rc = get_workload(s, t->workload, &w, err, errlen);
        if (rc == 0)
            rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "transfer %lld: no workload '%s'",
                         (long long)t->id, t->workload);
    }
    if (rc == 1) rc = open_transfer_of(s, t->workload, &other, dest, err, errlen);
    if (rc == 1)
        rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                     "transfer %lld: workload '%s' already has transfer %lld in flight to '%s'",
                     (long long)t->id, t->workload, (long long)other, dest);
    if (rc == 0) rc = check_target(s, &w, t->destination, err, errlen);
    if (rc == 0) {
        sqlite3_stmt *st = prep(s, ST_TR_INSERT, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            sqlite3_bind_int64(st, 1, t->id);
            bind_text(st, 2, t->workload);
            bind_text(st, 3, w.processor);
            bind_text(st, 4, t->destination);
            sqlite3_bind_int64(st, 5, t->tick);
            bind_real(st, 6, t->pfp);
            bind_real(st, 7, t->threshold);
            bind_real(st, 8, t->expected_seconds);
            bind_text(st, 9, t->reason);
            sqlite3_bind_int64(st, 10, when(t->started_ms));
            bind_text(st, 11, ps_transfer_kind_name(t->kind));
            rc = run(s, st, "recording a transfer", err, errlen);
        }
    }
    if (rc == 0) {
        rc = get_transfer(s, t->id, t, err, errlen);
        if (rc == 1) rc = 0;
    }
    return tx_end(s, rc, err, errlen);
}

int ps_store_finish_transfer(ps_store *s, int64_t id, ps_transfer_state end, const char *note,
                             int64_t at_ms, ps_store_transfer *out, char *err, size_t errlen)
{
    if (!s) return ps_fail(err, errlen, PS_EINVAL, "no store");
    if (end != PS_STORE_COMMITTED && end != PS_STORE_ROLLED_BACK)
        return ps_fail(err, errlen, PS_EINVAL, "a transfer ends committed or rolled back");
    int rc = check_text("transfer note", note, PS_STORE_NOTE_MAX, err, errlen);
    if (rc || (rc = tx_begin(s, err, errlen))) return rc;
    ps_store_transfer t;
    rc = get_transfer(s, id, &t, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no transfer %lld", (long long)id);
    if (rc == 1 && t.state != PS_STORE_PREPARED) {
        if (t.state == end)
            rc = 2; /* already so: return 1 */
        else
            rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                         "transfer %lld already ended %s, cannot end it %s", (long long)id,
                         ps_transfer_state_name(t.state), ps_transfer_state_name(end));
    }
    int64_t at = when(at_ms);
    if (rc == 1 && end == PS_STORE_COMMITTED) {
        int moved = set_host(s, t.workload, t.destination, at, err, errlen);
        if (moved < 0) rc = moved;
    }
    if (rc == 1) {
        sqlite3_stmt *st = prep(s, ST_TR_FINISH, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            bind_text(st, 2, ps_transfer_state_name(end));
            sqlite3_bind_int64(st, 3, at);
            bind_text(st, 4, note ? note : "");
            rc = run(s, st, "finishing a transfer", err, errlen);
        }
    }
    if (rc >= 0 && out) {
        int again = get_transfer(s, id, out, err, errlen);
        if (again < 0) rc = again;
    }
    if (rc == 2) rc = 1;
    return tx_end(s, rc, err, errlen);
}

int ps_store_record_outcome(ps_store *s, int64_t id, ps_outcome outcome, int64_t at_ms, char *err,
                            size_t errlen)
{
    if (!s) return ps_fail(err, errlen, PS_EINVAL, "no store");
    if (outcome != PS_OUTCOME_AVERTED && outcome != PS_OUTCOME_UNNECESSARY &&
        outcome != PS_OUTCOME_DISRUPTIVE)
        return ps_fail(err, errlen, PS_EINVAL,
                       "a transfer's outcome is averted, unnecessary or disruptive");
    const char *name = ps_threshold_cause_name((ps_threshold_cause)outcome);
    int rc = tx_begin(s, err, errlen);
    if (rc) return rc;
    ps_store_transfer t;
    rc = get_transfer(s, id, &t, err, errlen);
    if (rc == 0) rc = ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no transfer %lld", (long long)id);
    if (rc == 1 && t.state == PS_STORE_PREPARED)
        rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                     "transfer %lld is still in flight; finish it before its outcome",
                     (long long)id);
    if (rc == 1 && t.outcome != PS_STORE_NO_OUTCOME) {
        if (t.outcome == (int)outcome)
            rc = 2;
        else
            rc = ps_fail(err, errlen, PS_STORE_ECONFLICT,
                         "transfer %lld already turned out %s, not %s", (long long)id,
                         ps_threshold_cause_name((ps_threshold_cause)t.outcome), name);
    }
    if (rc == 1) {
        sqlite3_stmt *st = prep(s, ST_TR_OUTCOME, err, errlen);
        rc = PS_STORE_EIO;
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            bind_text(st, 2, name);
            sqlite3_bind_int64(st, 3, when(at_ms));
            rc = run(s, st, "recording an outcome", err, errlen);
        }
    }
    if (rc == 2) rc = 1;
    return tx_end(s, rc, err, errlen);
}

int ps_store_get_transfer(ps_store *s, int64_t id, ps_store_transfer *out, char *err, size_t errlen)
{
    if (!s || !out) return ps_fail(err, errlen, PS_EINVAL, "no store or out");
    int rc = get_transfer(s, id, out, err, errlen);
    if (rc == 0) return ps_fail(err, errlen, PS_STORE_ENOTFOUND, "no transfer %lld", (long long)id);
    return rc < 0 ? rc : PS_OK;
}

int ps_store_next_transfer_id(ps_store *s, int64_t *id, char *err, size_t errlen)
{
    if (!s || !id) return ps_fail(err, errlen, PS_EINVAL, "no store or id");
    sqlite3_stmt *st = prep(s, ST_TR_NEXT_ID, err, errlen);
    if (!st) return PS_STORE_EIO;
    int rc = step(s, st, "reading transfer ids", err, errlen);
    if (rc == 1) *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == 1 ? PS_OK : rc < 0 ? rc : PS_STORE_EIO;
}

void ps_store_transfer_list_free(ps_store_transfer_list *l)
{
    if (!l) return;
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Every row of a bound transfer statement into out. */
static int collect(ps_store *s, sqlite3_stmt *st, ps_store_transfer_list *out, char *err,
                   size_t errlen)
{
    size_t cap = 0;
    int rc;
    while ((rc = step(s, st, "reading transfers", err, errlen)) == 1) {
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ps_store_transfer *ni = realloc(out->items, nc * sizeof *ni);
            if (!ni) {
                rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory reading transfers");
                break;
            }
            out->items = ni;
            cap = nc;
        }
        read_transfer(st, &out->items[out->n++]);
    }
    sqlite3_reset(st);
    if (rc < 0) ps_store_transfer_list_free(out);
    return rc < 0 ? rc : PS_OK;
}

int ps_store_open_transfers(ps_store *s, ps_store_transfer_list *out, char *err, size_t errlen)
{
    if (!s || !out) return ps_fail(err, errlen, PS_EINVAL, "no store or list");
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = prep(s, ST_TR_OPEN_LIST, err, errlen);
    if (!st) return PS_STORE_EIO;
    return collect(s, st, out, err, errlen);
}

int ps_store_query_transfers(ps_store *s, const ps_store_transfer_query *q,
                             ps_store_transfer_list *out, char *err, size_t errlen)
{
    if (!s || !out) return ps_fail(err, errlen, PS_EINVAL, "no store or list");
    memset(out, 0, sizeof *out);
    ps_store_transfer_query all = {0, 0, NULL, NULL, 0, 0, 0, 0};
    if (!q) q = &all;
    if (q->state < 0 || q->state > PS_STORE_ROLLED_BACK + 1)
        return ps_fail(err, errlen, PS_EINVAL, "bad transfer state filter %d", q->state);
    if (q->kind < 0 || q->kind > PS_STORE_FAILOVER + 1)
        return ps_fail(err, errlen, PS_EINVAL, "bad transfer kind filter %d", q->kind);
    sqlite3_stmt *st = prep(s, ST_TR_QUERY, err, errlen);
    if (!st) return PS_STORE_EIO;
    if (q->since_ms) sqlite3_bind_int64(st, 1, q->since_ms);
    if (q->until_ms) sqlite3_bind_int64(st, 2, q->until_ms);
    bind_text(st, 3, q->workload);
    bind_text(st, 4, q->processor);
    if (q->state) bind_text(st, 5, ps_transfer_state_name((ps_transfer_state)(q->state - 1)));
    sqlite3_bind_int64(st, 6, q->limit ? (int64_t)q->limit : -1);
    if (q->kind) bind_text(st, 7, ps_transfer_kind_name((ps_transfer_kind)(q->kind - 1)));
    if (q->undecided) sqlite3_bind_int(st, 8, 1);
    return collect(s, st, out, err, errlen);
}

/* ---- decisions and thresholds ---- */

int ps_store_record_decisions(ps_store *s, const ps_decision *d, size_t n, const ps_names *names,
                              const int64_t *transfer_ids, int64_t at_ms, char *err, size_t errlen)
{
    if (!s || (!d && n) || !names)
        return ps_fail(err, errlen, PS_EINVAL, "no store, decisions or names");
    if (!n) return PS_OK;
    int rc = tx_begin(s, err, errlen);
    if (rc) return rc;
    int64_t at = when(at_ms);
    char line[1024];
    for (size_t i = 0; i < n && rc >= 0; i++) {
        const ps_decision *x = &d[i];
        const char *proc = ps_name_of(&names->processors, x->processor);
        const char *work = ps_name_of(&names->workloads, x->workload);
        const char *target =
            x->target == PS_NONE ? NULL : ps_name_of(&names->processors, x->target);
        if (!proc || !work || (x->target != PS_NONE && !target)) {
            rc = ps_fail(err, errlen, PS_EINVAL,
                         "decision %zu: processor %u, workload %u or target %u has no name", i,
                         x->processor, x->workload, x->target);
            break;
        }
        ps_decision_format(x, line, sizeof line);
        sqlite3_stmt *st = prep(s, ST_DEC_INSERT, err, errlen);
        if (!st) {
            rc = PS_STORE_EIO;
            break;
        }
        sqlite3_bind_int64(st, 1, at);
        sqlite3_bind_int64(st, 2, x->tick);
        bind_text(st, 3, proc);
        bind_text(st, 4, work);
        bind_text(st, 5, ps_decision_reason_name(x->reason));
        bind_text(st, 6, target);
        if (transfer_ids && transfer_ids[i]) sqlite3_bind_int64(st, 7, transfer_ids[i]);
        bind_real(st, 8, x->pfp);
        bind_real(st, 9, x->threshold);
        sqlite3_bind_int64(st, 10, x->held_ticks);
        sqlite3_bind_int64(st, 11, x->rank);
        bind_real(st, 12, x->score.ratio);
        bind_real(st, 13, x->score.risk_reduction);
        bind_real(st, 14, x->score.disruption);
        bind_real(st, 15, x->score.loss);
        bind_real(st, 16, x->residual_loss);
        bind_real(st, 17, x->allowed_loss);
        bind_text(st, 18, line);
        rc = run(s, st, "recording a decision", err, errlen);
    }
    return tx_end(s, rc, err, errlen);
}

int ps_store_append_thresholds(ps_store *s, const ps_threshold_change *ch, size_t n,
                               const ps_names *names, int64_t at_ms, char *err, size_t errlen)
{
    if (!s || (!ch && n) || !names)
        return ps_fail(err, errlen, PS_EINVAL, "no store, changes or names");
    if (!n) return PS_OK;
    int rc = tx_begin(s, err, errlen);
    if (rc) return rc;
    int64_t at = when(at_ms);
    for (size_t i = 0; i < n && rc >= 0; i++) {
        const ps_threshold_change *x = &ch[i];
        const char *cls = ps_name_of(&names->classes, x->cls);
        if (!cls || (int)x->cause < 0 || x->cause > PS_CAUSE_ENVIRONMENT) {
            rc = ps_fail(err, errlen, PS_EINVAL,
                         cls ? "threshold change %zu: bad cause %d (class %u)"
                             : "threshold change %zu: cause %d, class %u has no name",
                         i, (int)x->cause, x->cls);
            break;
        }
        const char *cause = ps_threshold_cause_name(x->cause);
        char why[256];
        snprintf(why, sizeof why,
                 "%s: threshold %.4f -> %.4f (base %.3f -> %.3f log-odds; environment %+.3f from "
                 "load %.2f, congestion %.2f)",
                 cause, x->old_threshold, x->new_threshold, x->old_base, x->new_base, x->env_offset,
                 x->load, x->congestion);
        sqlite3_stmt *st = prep(s, ST_TH_INSERT, err, errlen);
        if (!st) {
            rc = PS_STORE_EIO;
            break;
        }
        bind_text(st, 1, cls);
        sqlite3_bind_int64(st, 2, x->time);
        sqlite3_bind_int64(st, 3, at);
        bind_text(st, 4, cause);
        bind_real(st, 5, x->new_threshold);
        bind_real(st, 6, x->old_threshold);
        bind_real(st, 7, x->new_base);
        bind_real(st, 8, x->old_base);
        bind_real(st, 9, x->env_offset);
        bind_real(st, 10, x->load);
        bind_real(st, 11, x->congestion);
        for (int k = 0; k < PS_OUTCOME_COUNT; k++)
            bind_real(st, 12 + k, x->rate[k]);
        bind_text(st, 16, why);
        rc = run(s, st, "recording a threshold", err, errlen);
    }
    return tx_end(s, rc, err, errlen);
}

int ps_store_latest_threshold(ps_store *s, const ps_names *names, uint32_t cls,
                              ps_threshold_change *out, char *err, size_t errlen)
{
    if (!s || !names || !out) return ps_fail(err, errlen, PS_EINVAL, "no store, names or out");
    const char *name = ps_name_of(&names->classes, cls);
    if (!name) return ps_fail(err, errlen, PS_EINVAL, "class %u has no name", cls);
    sqlite3_stmt *st = prep(s, ST_TH_LATEST, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, name);
    int rc = step(s, st, "reading thresholds", err, errlen);
    if (rc == 1) {
        memset(out, 0, sizeof *out);
        char cause[32];
        out->time = sqlite3_column_int64(st, 0);
        out->cls = cls;
        col_text(st, 1, cause, sizeof cause);
        int k = outcome_of(cause);
        out->cause = k < 0 ? PS_CAUSE_ENVIRONMENT : (ps_threshold_cause)k;
        out->new_threshold = col_real(st, 2);
        out->old_threshold = col_real(st, 3);
        out->new_base = col_real(st, 4);
        out->old_base = col_real(st, 5);
        out->env_offset = col_real(st, 6);
        out->load = col_real(st, 7);
        out->congestion = col_real(st, 8);
        for (int i = 0; i < PS_OUTCOME_COUNT; i++)
            out->rate[i] = col_real(st, 9 + i);
        rc = 0;
    } else if (rc == 0) {
        rc = 1;
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- meta ---- */

int ps_store_get_meta(ps_store *s, const char *key, char *value, size_t len, char *err,
                      size_t errlen)
{
    if (!s || !key || !value || !len) return ps_fail(err, errlen, PS_EINVAL, "no store or key");
    sqlite3_stmt *st = prep(s, ST_META_GET, err, errlen);
    if (!st) return PS_STORE_EIO;
    bind_text(st, 1, key);
    int rc = step(s, st, "reading meta", err, errlen);
    if (rc == 1) col_text(st, 0, value, len);
    sqlite3_reset(st);
    return rc == 1 ? 0 : rc == 0 ? 1 : rc;
}

int ps_store_set_meta(ps_store *s, const char *key, const char *value, char *err, size_t errlen)
{
    if (!s || !key || !*key || !value) return ps_fail(err, errlen, PS_EINVAL, "no store or key");
    int rc = tx_begin(s, err, errlen);
    if (rc) return rc;
    sqlite3_stmt *st = prep(s, ST_META_SET, err, errlen);
    rc = PS_STORE_EIO;
    if (st) {
        bind_text(st, 1, key);
        bind_text(st, 2, value);
        sqlite3_bind_int64(st, 3, now_ms());
        rc = run(s, st, "writing meta", err, errlen);
    }
    return tx_end(s, rc, err, errlen);
}
