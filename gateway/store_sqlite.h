/*
 * store_sqlite: the SQLite back end of store (see docs/store.md).
 *
 * One write connection behind a mutex and a small pool of read connections,
 * all in WAL mode with synchronous=FULL, so a commit that returned is on
 * disk and readers never wait for the writer.
 */
#ifndef HEGN_STORE_SQLITE_H
#define HEGN_STORE_SQLITE_H

#include <stddef.h>

#include "err.h"
#include "store.h"

extern const struct store_backend store_backend_sqlite;

/* The schema version this code migrates to. */
int store_sqlite_schema_latest(void);

/*
 * The queries behind store_inbox and store_event_list, so a test or an
 * operator can ask SQLite for their plans (EXPLAIN QUERY PLAN).
 */
extern const char store_sqlite_inbox_sql[];
extern const char store_sqlite_event_list_sql[];
extern const char store_sqlite_audit_query_sql[];
/* Likewise behind store_schedule_due, store_outcomes, store_external_list, store_queue_stats. */
extern const char store_sqlite_schedule_due_sql[];
extern const char store_sqlite_outcomes_sql[];
extern const char store_sqlite_purge_end_sql[];
extern const char store_sqlite_purge_copies_sql[];
extern const char store_sqlite_purge_messages_sql[];
extern const char store_sqlite_purge_fail_events_sql[];
extern const char store_sqlite_purge_fail_copies_sql[];
extern const char store_sqlite_purge_unschedule_sql[];
extern const char store_sqlite_external_list_sql[];
extern const char store_sqlite_queue_stats_sql[];
/* And behind store_sealed_read. */
extern const char store_sqlite_sealed_locate_sql[];

/*
 * The SQL script that takes the schema from version to - 1 to version to,
 * or NULL when there is none: for tests that build an old database by hand.
 */
const char *store_sqlite_migration_sql(int to);

/*
 * Read "PRAGMA name" on the connection behind tx (a transaction of an sqlite
 * store) into out as text: the first column of the first row.  name is
 * letters and '_' only.  Returns 0, HEGN_ERR_INVALID (bad name, not an sqlite
 * transaction) or HEGN_ERR_STORE.
 */
int store_sqlite_pragma(struct store_tx *tx, const char *name, char *out, size_t outlen,
    struct why *why);

#endif
