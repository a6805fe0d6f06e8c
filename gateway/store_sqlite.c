/*
 * store_sqlite: the SQLite back end (docs/store.md).
 *
 * One write connection guarded by a mutex (a write transaction holds it from
 * BEGIN IMMEDIATE to COMMIT or ROLLBACK) and a pool of read connections that
 * run deferred transactions, each a consistent snapshot; WAL lets readers run
 * beside the writer.  A connection is used by one thread at a time (the one
 * holding it), so connections are opened without SQLite's own mutexes.
 *
 * Every statement is prepared once per connection and kept; each use is
 * bind -> step -> check -> reset.  Error texts carry SQLite's message, which
 * names tables and columns but never bound values, so no message content or
 * personal data reaches a log through them.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "store_sqlite.h"
#include "util.h"
#include "xmalloc.h"

#define SQ_READERS  4      /* read connections in the pool */
#define SQ_BUSY_MS  5000   /* how long SQLite retries a locked database */
#define SQ_WAIT_MS  10000  /* how long begin waits for the writer lock or a reader */
#define SQ_CHECKPOINT_FRAMES 1000 /* WAL frames before a checkpoint, SQLite's default */
/*
 * WAL frames at which the writer checkpoints under the write lock after all,
 * so that the WAL starts over: about 62 MB, under journal_size_limit.
 */
#define SQ_CHECKPOINT_WAL_MAX 15000

/*
 * The migrations, in order: migrations[i] takes the schema from version i to
 * i + 1.  Never edit one that has shipped; append a new one.
 */
static const char *const sq_migrations[] = {
	/* 1: messages, their deliveries, the delivery log and receipts. */
	"CREATE TABLE messages ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  content_sha256 TEXT NOT NULL,"
	"  citizen_ref TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  deadline_ms INTEGER NOT NULL DEFAULT 0,"
	"  signed_der BLOB"
	");"
	/*
	 * The inbox cursor.  A counter rather than max(seq) + 1 so a number is
	 * never handed out twice, even after rows are deleted.
	 */
	"CREATE TABLE counters ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  value INTEGER NOT NULL"
	");"
	"INSERT INTO counters (name, value) VALUES ('delivery_seq', 0);"
	"CREATE TABLE deliveries ("
	"  message_id TEXT NOT NULL REFERENCES messages (id),"
	"  recipient TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('submitted', 'delivered',"
	"    'acknowledged', 'rejected', 'fallback', 'failed')),"
	"  channel TEXT NOT NULL,"
	"  seq INTEGER NOT NULL UNIQUE,"
	"  updated_ms INTEGER NOT NULL,"
	"  sealed_sha256 TEXT NOT NULL,"
	"  sealed BLOB,"
	"  PRIMARY KEY (message_id, recipient)"
	");"
	/*
	 * Partial: only undelivered copies are indexed, so the inbox index
	 * stays as small as the backlog while the table grows for years.
	 */
	"CREATE INDEX deliveries_inbox ON deliveries (recipient, seq)"
	"  WHERE state = 'submitted';"
	/*
	 * No foreign key to messages: a refused submission is logged under
	 * the id it came with although no message row exists for it.
	 */
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  message_id TEXT NOT NULL,"
	"  recipient TEXT NOT NULL DEFAULT '',"
	"  at_ms INTEGER NOT NULL,"
	"  event TEXT NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  detail TEXT NOT NULL"
	");"
	"CREATE INDEX events_message ON events (message_id);"
	"CREATE TABLE receipts ("
	"  message_id TEXT NOT NULL,"
	"  recipient TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),"
	"  reason TEXT NOT NULL,"
	"  received_ms INTEGER NOT NULL,"
	"  signed_der BLOB,"
	"  PRIMARY KEY (message_id, recipient),"
	"  FOREIGN KEY (message_id, recipient) REFERENCES deliveries (message_id, recipient)"
	");",

	/* 2: assignments, staff users, the audit log and its checkpoints. */
	/*
	 * Dates are text in one fixed shape, so comparing them as strings
	 * compares them as dates ("who was entitled on 2026-03-01").
	 */
	"CREATE TABLE assignments ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  citizen_ref TEXT NOT NULL,"
	"  provider TEXT NOT NULL,"
	"  services TEXT NOT NULL,"
	"  from_date TEXT NOT NULL"
	"    CHECK (from_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),"
	"  to_date TEXT NOT NULL DEFAULT '' CHECK (to_date = ''"
	"    OR to_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),"
	"  source TEXT NOT NULL,"
	"  end_reason TEXT NOT NULL DEFAULT '',"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX assignments_citizen ON assignments (citizen_ref);"
	"CREATE INDEX assignments_provider ON assignments (provider);"
	"CREATE TABLE users ("
	"  username TEXT PRIMARY KEY NOT NULL,"
	"  party TEXT NOT NULL,"
	"  role TEXT NOT NULL CHECK (role IN ('caseworker', 'dispatcher', 'auditor',"
	"    'administrator')),"
	"  pw_hash TEXT NOT NULL,"
	"  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
	"  failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),"
	"  locked_until_ms INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	");"
	/*
	 * seq is the leaf index of the Merkle tree: 0, 1, 2, ... without gaps,
	 * so the rowid alias and max(seq) + 1 is the tree size.
	 */
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY CHECK (seq >= 0),"
	"  at_ms INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  message_id TEXT NOT NULL DEFAULT '',"
	"  citizen_ref TEXT NOT NULL DEFAULT '',"
	"  leaf_hash BLOB NOT NULL"
	"    CHECK (typeof(leaf_hash) = 'blob' AND length(leaf_hash) = 32),"
	"  entry TEXT NOT NULL"
	");"
	"CREATE INDEX audit_citizen ON audit (citizen_ref, at_ms);"
	"CREATE INDEX audit_message ON audit (message_id);"
	/*
	 * Append-only for the gateway's own code.  Whoever can write the file
	 * can drop these; the Merkle tree and its signed checkpoints are what
	 * expose such edits.  The insert trigger keeps the leaves contiguous
	 * whoever inserts (max over the rowid is one B-tree descent).
	 */
	"CREATE TRIGGER audit_contiguous BEFORE INSERT ON audit"
	"  WHEN NEW.seq IS NOT (SELECT coalesce(max(seq) + 1, 0) FROM audit)"
	"  BEGIN SELECT RAISE(ABORT, 'audit entries are appended in seq order'); END;"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
	"CREATE TABLE checkpoints ("
	"  size INTEGER PRIMARY KEY CHECK (size >= 0),"
	"  at_ms INTEGER NOT NULL,"
	"  root BLOB NOT NULL CHECK (typeof(root) = 'blob' AND length(root) = 32),"
	"  note TEXT NOT NULL"
	");"
	/* Retention finds the messages to purge without scanning them all. */
	"CREATE INDEX messages_created ON messages (created_ms);",

	/* 3: the delivery schedule, outcomes for the reports, communication outside hegn. */
	"ALTER TABLE deliveries ADD COLUMN channel_index INTEGER NOT NULL DEFAULT 0"
	"  CHECK (channel_index >= 0);"
	"ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0"
	"  CHECK (attempts >= 0);"
	"ALTER TABLE deliveries ADD COLUMN resends INTEGER NOT NULL DEFAULT 0"
	"  CHECK (resends >= 0);"
	"ALTER TABLE deliveries ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0"
	"  CHECK (duplicates >= 0);"
	/* 0 means "never due": the due index leaves such copies out. */
	"ALTER TABLE deliveries ADD COLUMN next_ms INTEGER NOT NULL DEFAULT 0"
	"  CHECK (next_ms >= 0);"
	"ALTER TABLE deliveries ADD COLUMN deadline_ms INTEGER NOT NULL DEFAULT 0"
	"  CHECK (deadline_ms >= 0);"
	"ALTER TABLE deliveries ADD COLUMN delivered_ms INTEGER NOT NULL DEFAULT 0"
	"  CHECK (delivered_ms >= 0);"
	"ALTER TABLE deliveries ADD COLUMN acked_ms INTEGER NOT NULL DEFAULT 0"
	"  CHECK (acked_ms >= 0);"
	"ALTER TABLE deliveries ADD COLUMN fallback_reason TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE deliveries ADD COLUMN last_error TEXT NOT NULL DEFAULT '';"
	/*
	 * Copies from before this version keep what the log already says, so
	 * the reports' latencies cover them too: the receipt's time, and the
	 * first fetch (or, lacking one, the receipt, which implies delivery).
	 * None of them is scheduled (next_ms 0).
	 */
	"UPDATE deliveries SET acked_ms = (SELECT r.received_ms FROM receipts AS r"
	"  WHERE r.message_id = deliveries.message_id AND r.recipient = deliveries.recipient)"
	"  WHERE EXISTS (SELECT 1 FROM receipts AS r WHERE r.message_id = deliveries.message_id"
	"  AND r.recipient = deliveries.recipient AND r.received_ms >= 0);"
	"UPDATE deliveries SET delivered_ms = coalesce((SELECT min(e.at_ms) FROM events AS e"
	"  WHERE e.message_id = deliveries.message_id AND e.recipient = deliveries.recipient"
	"  AND e.event = 'fetched' AND e.at_ms >= 0), acked_ms)"
	"  WHERE state <> 'submitted';"
	/*
	 * Partial, like the inbox index: only copies the scheduler still has
	 * to look at, so the due query reads the backlog, not years of copies.
	 */
	"CREATE INDEX deliveries_due ON deliveries (next_ms) WHERE next_ms > 0;"
	/* The queue depth for the metrics, counted over unacknowledged copies only. */
	"CREATE INDEX deliveries_open ON deliveries (message_id)"
	"  WHERE state IN ('submitted', 'delivered');"
	"CREATE TABLE external_comms ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  at_ms INTEGER NOT NULL,"
	"  party TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  channel TEXT NOT NULL CHECK (channel IN ('fax', 'phone', 'post')),"
	"  direction TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),"
	"  reason TEXT NOT NULL,"
	"  registered_by TEXT NOT NULL"
	");"
	"CREATE INDEX external_comms_at ON external_comms (at_ms);",

	/*
	 * 4: MedCom messages received, for de-duplication on (Bundle.id,
	 * MessageHeader.id) per sender, with the first Acknowledgement as sent.
	 */
	"CREATE TABLE medcom_received ("
	"  sender TEXT NOT NULL,"
	"  bundle_id TEXT NOT NULL,"
	"  header_id TEXT NOT NULL,"
	"  message_id TEXT NOT NULL REFERENCES messages (id),"
	"  received_ms INTEGER NOT NULL,"
	"  ack BLOB NOT NULL,"
	"  PRIMARY KEY (sender, bundle_id)"
	");"
	"CREATE INDEX medcom_received_header ON medcom_received (sender, header_id, received_ms);"
	"CREATE INDEX medcom_received_message ON medcom_received (message_id, received_ms);",

	/*
	 * 5: the sealed copies apart from their deliveries.  In the row, every
	 * change of a delivery's state read the whole copy back into memory
	 * to write the row anew (and wrote it again to the WAL when the row's
	 * size changed); a copy keyed by its delivery's seq is written once.
	 */
	"CREATE TABLE sealed_copies ("
	"  seq INTEGER PRIMARY KEY REFERENCES deliveries (seq),"
	"  sealed BLOB NOT NULL"
	");"
	"INSERT INTO sealed_copies (seq, sealed)"
	"  SELECT seq, sealed FROM deliveries WHERE sealed IS NOT NULL;"
	"ALTER TABLE deliveries DROP COLUMN sealed;",

	/*
	 * 6: the audit log's citizen index in blocks of 4,096 entries.  Keyed
	 * by the pseudonym first, every entry went into a leaf anywhere in an
	 * index as large as the whole log, so an append cost more as the log
	 * grew: a page that was in no cache, and one more scattered page for
	 * each checkpoint to write and sync (docs/performance.md, item 21).
	 * Within the last block an entry lands among at most 4,095 others; a
	 * query seeks once per block (store_sqlite_audit_query_sql).
	 */
	"DROP INDEX IF EXISTS audit_citizen;"
	"CREATE INDEX audit_citizen ON audit (seq / 4096, citizen_ref, at_ms);",
};

#define SQ_SCHEMA_LATEST ((int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])))

/*
 * CROSS JOIN fixes deliveries as the outer loop, so the plan walks the
 * partial index in seq order whatever the statistics say.
 */
/* length() of a BLOB reads its record header, not its pages. */
const char store_sqlite_sealed_locate_sql[] =
    "SELECT s.seq, length(s.sealed) FROM deliveries AS d"
    " JOIN sealed_copies AS s ON s.seq = d.seq"
    " WHERE d.message_id = ?1 AND d.recipient = ?2 AND d.sealed_sha256 = ?3";

const char store_sqlite_inbox_sql[] =
    "SELECT d.message_id, m.kind, m.sender, d.seq, m.created_ms"
    " FROM deliveries AS d CROSS JOIN messages AS m ON m.id = d.message_id"
    " WHERE d.recipient = ?1 AND d.state = 'submitted' AND d.seq > ?2"
    " AND d.channel = 'pull'"
    " ORDER BY d.seq LIMIT ?3";

const char store_sqlite_event_list_sql[] =
    "SELECT id, at_ms, message_id, recipient, event, actor, detail"
    " FROM events WHERE message_id = ?1 ORDER BY id";

#define SQ_AUDIT_COLS "seq, at_ms, actor, action, message_id, citizen_ref, leaf_hash, entry"

/*
 * One seek into the citizen index per block of 4,096 entries (schema
 * version 6): the blocks are numbered up to the last entry's, and the
 * expression seq / 4096 is the index's own, so the planner matches it.
 * Ten million entries make 2,442 seeks.  The entries' times are not
 * assumed to rise with seq (a clock can be set back), so every block is
 * asked.  An IN list, not a join with the blocks: once ANALYZE has run,
 * SQLite 3.40 answers the join through this index from a Bloom filter and
 * misses rows (tests/unit/test_store.c, test_audit_blocks, compares with a
 * scan).  INDEXED BY: one citizen's
 * entries through the index whatever the statistics say (a citizen with
 * many entries must not tempt the planner into walking the whole log in
 * seq order).  Only the matches are sorted.  The window is inclusive at
 * both ends here; the C side turns the exclusive end and the open ends
 * into bounds.
 */
const char store_sqlite_audit_query_sql[] =
    "WITH RECURSIVE blocks (k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM blocks"
    " WHERE k < (SELECT coalesce(max(seq), 0) FROM audit) / 4096)"
    " SELECT " SQ_AUDIT_COLS " FROM audit INDEXED BY audit_citizen"
    " WHERE seq / 4096 IN (SELECT k FROM blocks) AND citizen_ref = ?1"
    " AND at_ms >= ?2 AND at_ms <= ?3 ORDER BY seq LIMIT ?4";

#define SQ_SCHEDULE_COLS "d.message_id, d.recipient, d.state, d.channel, d.channel_index," \
    " d.attempts, d.resends, d.duplicates, d.next_ms, d.deadline_ms, m.created_ms," \
    " d.delivered_ms, d.acked_ms, d.fallback_reason, d.last_error"

/*
 * Deliveries are the outer loop (CROSS JOIN), walked in next_ms order through
 * the partial index deliveries_due whatever the statistics say (INDEXED BY;
 * the literal "next_ms > 0" is what lets SQLite use a partial index at all):
 * the scheduler reads the few scheduled copies, never the years of others.
 */
const char store_sqlite_schedule_due_sql[] =
    "SELECT " SQ_SCHEDULE_COLS
    " FROM deliveries AS d INDEXED BY deliveries_due CROSS JOIN messages AS m"
    " ON m.id = d.message_id"
    " WHERE d.next_ms > 0 AND d.next_ms <= ?1 ORDER BY d.next_ms LIMIT ?2";

/*
 * Messages are the outer loop, walked through messages_created; within one
 * millisecond by rowid (insertion order), each message's copies by
 * recipient through the primary key: no sort, so rows stream as found.
 * Inclusive bounds; the C side makes the end exclusive and the open ends.
 */
/*
 * Retention works through [cursor, before) in batches: where the batch ends
 * (the created_ms of the message after the first limit), then the copies and
 * the content of the messages created in [?1, ?2).
 */
const char store_sqlite_purge_end_sql[] =
    "SELECT created_ms FROM messages WHERE created_ms >= ?1 AND created_ms < ?2"
    " ORDER BY created_ms LIMIT 1 OFFSET ?3";
const char store_sqlite_purge_copies_sql[] =
    "DELETE FROM sealed_copies WHERE seq IN (SELECT d.seq FROM messages AS m"
    " JOIN deliveries AS d ON d.message_id = m.id WHERE m.created_ms >= ?1 AND m.created_ms < ?2)";
const char store_sqlite_purge_messages_sql[] =
    "UPDATE messages SET signed_der = NULL"
    " WHERE created_ms >= ?1 AND created_ms < ?2 AND signed_der IS NOT NULL";
/*
 * A copy nobody has fetched or been handed by then never will be: without
 * its content it would stay in the party's inbox, answering 404 to every
 * fetch, or wait for a fax nothing can print.  It fails, logged like the
 * scheduler's failures; a copy delivered but unacknowledged keeps its state
 * and is no longer offered again or sent on paper.  ?3 is the time.
 */
#define SQ_PURGE_FAILED "the content was deleted under retention before the copy was delivered"
const char store_sqlite_purge_fail_events_sql[] =
    "INSERT INTO events (message_id, recipient, at_ms, event, actor, detail)"
    " SELECT d.message_id, d.recipient, ?3, 'failed', 'gateway', '" SQ_PURGE_FAILED "'"
    " FROM messages AS m JOIN deliveries AS d ON d.message_id = m.id"
    " WHERE m.created_ms >= ?1 AND m.created_ms < ?2 AND d.state = 'submitted'";
const char store_sqlite_purge_fail_copies_sql[] =
    "UPDATE deliveries SET state = 'failed', next_ms = 0, updated_ms = ?3,"
    " fallback_reason = '" SQ_PURGE_FAILED "'"
    " WHERE state = 'submitted' AND message_id IN"
    " (SELECT id FROM messages WHERE created_ms >= ?1 AND created_ms < ?2)";
const char store_sqlite_purge_unschedule_sql[] =
    "UPDATE deliveries SET next_ms = 0 WHERE next_ms > 0 AND message_id IN"
    " (SELECT id FROM messages WHERE created_ms >= ?1 AND created_ms < ?2)";

const char store_sqlite_outcomes_sql[] =
    "SELECT d.message_id, d.recipient, m.sender, m.kind, d.state, d.channel, d.resends,"
    " d.duplicates, m.created_ms, d.delivered_ms, d.acked_ms, d.fallback_reason"
    " FROM messages AS m CROSS JOIN deliveries AS d ON d.message_id = m.id"
    " WHERE m.created_ms >= ?1 AND m.created_ms <= ?2"
    " ORDER BY m.created_ms, m.rowid, d.recipient";

/* id is the rowid, which the at_ms index carries: ordered without a sort. */
const char store_sqlite_external_list_sql[] =
    "SELECT id, at_ms, party, kind, channel, direction, reason, registered_by"
    " FROM external_comms WHERE at_ms >= ?1 AND at_ms <= ?2 ORDER BY at_ms, id";

/*
 * Read for every metrics scrape: only the unacknowledged copies, through
 * the partial index deliveries_open (its IN list written alike), even when
 * statistics from a young database say a table scan costs the same.
 */
const char store_sqlite_queue_stats_sql[] =
    "SELECT count(*), coalesce(min(m.created_ms), 0)"
    " FROM deliveries AS d INDEXED BY deliveries_open CROSS JOIN messages AS m"
    " ON m.id = d.message_id"
    " WHERE d.state IN ('submitted', 'delivered')";

enum sq_stmt_id {
	SQ_BEGIN,
	SQ_BEGIN_IMMEDIATE,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_MESSAGE_INSERT,
	SQ_MESSAGE_GET,
	SQ_MESSAGE_GET_DER,
	SQ_SEQ_NEXT,
	SQ_DELIVERY_INSERT,
	SQ_SEALED_INSERT,
	SQ_DELIVERY_GET,
	SQ_DELIVERY_GET_SEALED,
	SQ_SEALED_LOCATE,
	SQ_DELIVERY_LIST,
	SQ_DELIVERY_SET_STATE,
	SQ_INBOX,
	SQ_EVENT_ADD,
	SQ_EVENT_LIST,
	SQ_RECEIPT_INSERT,
	SQ_RECEIPT_GET,
	SQ_ASSIGNMENT_INSERT,
	SQ_ASSIGNMENT_UPDATE,
	SQ_ASSIGNMENT_LIST_ALL,
	SQ_ASSIGNMENT_LIST_CITIZEN,
	SQ_ASSIGNMENT_LIST_PROVIDER,
	SQ_USER_INSERT,
	SQ_USER_GET,
	SQ_USER_UPDATE,
	SQ_USER_LIST,
	SQ_AUDIT_APPEND,
	SQ_AUDIT_COUNT,
	SQ_AUDIT_RANGE,
	SQ_AUDIT_QUERY,
	SQ_CHECKPOINT_INSERT,
	SQ_CHECKPOINT_LIST,
	SQ_PURGE_CURSOR,
	SQ_PURGE_END,
	SQ_PURGE_DELIVERIES,
	SQ_PURGE_MESSAGES,
	SQ_PURGE_FAIL_EVENTS,
	SQ_PURGE_FAIL_COPIES,
	SQ_PURGE_UNSCHEDULE,
	SQ_PURGE_SET_CURSOR,
	SQ_SCHEDULE_GET,
	SQ_SCHEDULE_UPDATE,
	SQ_SCHEDULE_DUE,
	SQ_OUTCOMES,
	SQ_EXTERNAL_INSERT,
	SQ_EXTERNAL_LIST,
	SQ_QUEUE_STATS,
	SQ_MEDCOM_INSERT,
	SQ_MEDCOM_BY_BUNDLE,
	SQ_MEDCOM_BY_HEADER,
	SQ_MEDCOM_BY_MESSAGE,
	SQ_NSTMT
};

#define SQ_MESSAGE_COLS "id, sender, kind, content_sha256, citizen_ref, created_ms, deadline_ms"
#define SQ_DELIVERY_COLS "message_id, recipient, state, channel, seq, updated_ms, sealed_sha256"
#define SQ_ASSIGNMENT_COLS "id, citizen_ref, provider, services, from_date, to_date, source," \
    " end_reason, created_ms, updated_ms"
#define SQ_MEDCOM_COLS "sender, bundle_id, header_id, message_id, received_ms, ack"
#define SQ_USER_COLS "username, party, role, pw_hash, disabled, failed_logins," \
    " locked_until_ms, created_ms, updated_ms"

static const char *const sq_sql[SQ_NSTMT] = {
	[SQ_BEGIN] = "BEGIN DEFERRED",
	[SQ_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_MESSAGE_INSERT] = "INSERT INTO messages (" SQ_MESSAGE_COLS ", signed_der)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[SQ_MESSAGE_GET] = "SELECT " SQ_MESSAGE_COLS ", NULL FROM messages WHERE id = ?1",
	[SQ_MESSAGE_GET_DER] = "SELECT " SQ_MESSAGE_COLS ", signed_der FROM messages WHERE id = ?1",
	[SQ_SEQ_NEXT] = "UPDATE counters SET value = value + 1 WHERE name = 'delivery_seq'"
	    " RETURNING value",
	[SQ_DELIVERY_INSERT] = "INSERT INTO deliveries (" SQ_DELIVERY_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[SQ_SEALED_INSERT] = "INSERT INTO sealed_copies (seq, sealed) VALUES (?1, ?2)",
	[SQ_DELIVERY_GET] = "SELECT " SQ_DELIVERY_COLS ", NULL FROM deliveries"
	    " WHERE message_id = ?1 AND recipient = ?2",
	[SQ_DELIVERY_GET_SEALED] = "SELECT " SQ_DELIVERY_COLS ", (SELECT sealed FROM sealed_copies"
	    " WHERE sealed_copies.seq = deliveries.seq) FROM deliveries"
	    " WHERE message_id = ?1 AND recipient = ?2",
	[SQ_SEALED_LOCATE] = store_sqlite_sealed_locate_sql,
	[SQ_DELIVERY_LIST] = "SELECT " SQ_DELIVERY_COLS ", NULL FROM deliveries"
	    " WHERE message_id = ?1 ORDER BY recipient",
	[SQ_DELIVERY_SET_STATE] = "UPDATE deliveries SET state = ?3, updated_ms = ?4"
	    " WHERE message_id = ?1 AND recipient = ?2",
	[SQ_INBOX] = store_sqlite_inbox_sql,
	[SQ_EVENT_ADD] = "INSERT INTO events (message_id, recipient, at_ms, event, actor, detail)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQ_EVENT_LIST] = store_sqlite_event_list_sql,
	[SQ_RECEIPT_INSERT] = "INSERT INTO receipts (message_id, recipient, status, reason,"
	    " received_ms, signed_der) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQ_RECEIPT_GET] = "SELECT message_id, recipient, status, reason, received_ms, signed_der"
	    " FROM receipts WHERE message_id = ?1 AND recipient = ?2",
	[SQ_ASSIGNMENT_INSERT] = "INSERT INTO assignments (citizen_ref, provider, services,"
	    " from_date, to_date, source, end_reason, created_ms, updated_ms)"
	    " VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	/* created_ms stays as inserted. */
	[SQ_ASSIGNMENT_UPDATE] = "UPDATE assignments SET citizen_ref = ?2, provider = ?3,"
	    " services = ?4, from_date = ?5, to_date = ?6, source = ?7, end_reason = ?8,"
	    " updated_ms = ?10 WHERE id = ?1",
	[SQ_ASSIGNMENT_LIST_ALL] = "SELECT " SQ_ASSIGNMENT_COLS " FROM assignments ORDER BY id",
	/* ?2 NULL: any provider. */
	[SQ_ASSIGNMENT_LIST_CITIZEN] = "SELECT " SQ_ASSIGNMENT_COLS " FROM assignments"
	    " WHERE citizen_ref = ?1 AND (?2 IS NULL OR provider = ?2) ORDER BY id",
	[SQ_ASSIGNMENT_LIST_PROVIDER] = "SELECT " SQ_ASSIGNMENT_COLS " FROM assignments"
	    " WHERE provider = ?1 ORDER BY id",
	[SQ_USER_INSERT] = "INSERT INTO users (" SQ_USER_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[SQ_USER_GET] = "SELECT " SQ_USER_COLS " FROM users WHERE username = ?1",
	/* created_ms stays as inserted. */
	[SQ_USER_UPDATE] = "UPDATE users SET party = ?2, role = ?3, pw_hash = ?4, disabled = ?5,"
	    " failed_logins = ?6, locked_until_ms = ?7, updated_ms = ?9 WHERE username = ?1",
	[SQ_USER_LIST] = "SELECT " SQ_USER_COLS " FROM users ORDER BY username",
	/*
	 * The next leaf index is the current size, read in the same write
	 * transaction: writers are serialised, and a rolled-back append gives
	 * its number back.
	 */
	[SQ_AUDIT_APPEND] = "INSERT INTO audit (" SQ_AUDIT_COLS ")"
	    " VALUES ((SELECT coalesce(max(seq) + 1, 0) FROM audit), ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	    " RETURNING seq",
	/* Equal to count(*) as seq has no gaps, and one B-tree descent instead of a scan. */
	[SQ_AUDIT_COUNT] = "SELECT coalesce(max(seq) + 1, 0) FROM audit",
	[SQ_AUDIT_RANGE] = "SELECT " SQ_AUDIT_COLS " FROM audit WHERE seq >= ?1"
	    " ORDER BY seq LIMIT ?2",
	[SQ_AUDIT_QUERY] = store_sqlite_audit_query_sql,
	[SQ_CHECKPOINT_INSERT] = "INSERT INTO checkpoints (size, at_ms, root, note)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[SQ_CHECKPOINT_LIST] = "SELECT size, at_ms, root, note FROM checkpoints ORDER BY size",
	[SQ_PURGE_CURSOR] = "SELECT value FROM counters WHERE name = 'purged_before_ms'",
	[SQ_PURGE_END] = store_sqlite_purge_end_sql,
	[SQ_PURGE_DELIVERIES] = store_sqlite_purge_copies_sql,
	[SQ_PURGE_MESSAGES] = store_sqlite_purge_messages_sql,
	[SQ_PURGE_FAIL_EVENTS] = store_sqlite_purge_fail_events_sql,
	[SQ_PURGE_FAIL_COPIES] = store_sqlite_purge_fail_copies_sql,
	[SQ_PURGE_UNSCHEDULE] = store_sqlite_purge_unschedule_sql,
	[SQ_PURGE_SET_CURSOR] = "INSERT INTO counters (name, value) VALUES ('purged_before_ms', ?1)"
	    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	[SQ_SCHEDULE_GET] = "SELECT " SQ_SCHEDULE_COLS
	    " FROM deliveries AS d JOIN messages AS m ON m.id = d.message_id"
	    " WHERE d.message_id = ?1 AND d.recipient = ?2",
	/* created_ms is the message's; updated_ms stays for delivery_set_state. */
	[SQ_SCHEDULE_UPDATE] = "UPDATE deliveries SET state = ?3, channel = ?4,"
	    " channel_index = ?5, attempts = ?6, resends = ?7, duplicates = ?8, next_ms = ?9,"
	    " deadline_ms = ?10, delivered_ms = ?11, acked_ms = ?12, fallback_reason = ?13,"
	    " last_error = ?14 WHERE message_id = ?1 AND recipient = ?2",
	[SQ_SCHEDULE_DUE] = store_sqlite_schedule_due_sql,
	[SQ_OUTCOMES] = store_sqlite_outcomes_sql,
	[SQ_EXTERNAL_INSERT] = "INSERT INTO external_comms (at_ms, party, kind, channel,"
	    " direction, reason, registered_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[SQ_EXTERNAL_LIST] = store_sqlite_external_list_sql,
	[SQ_QUEUE_STATS] = store_sqlite_queue_stats_sql,
	[SQ_MEDCOM_INSERT] = "INSERT INTO medcom_received (sender, bundle_id, header_id,"
	    " message_id, received_ms, ack) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQ_MEDCOM_BY_BUNDLE] = "SELECT " SQ_MEDCOM_COLS " FROM medcom_received"
	    " WHERE sender = ?1 AND bundle_id = ?2",
	[SQ_MEDCOM_BY_HEADER] = "SELECT " SQ_MEDCOM_COLS " FROM medcom_received"
	    " WHERE sender = ?1 AND header_id = ?2 ORDER BY received_ms, rowid LIMIT 1",
	[SQ_MEDCOM_BY_MESSAGE] = "SELECT " SQ_MEDCOM_COLS " FROM medcom_received"
	    " WHERE (?1 IS NULL OR sender = ?1) AND message_id = ?2"
	    " ORDER BY received_ms, rowid LIMIT 1",
};

struct sq_conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[SQ_NSTMT];
	int in_use;               /* readers: lent to a transaction */
};

/*
 * Group commit (docs/store.md "Durability").  With synchronous=FULL every
 * COMMIT synced the WAL while holding the write lock, so writers queued
 * behind one sync each.  Instead the write connection runs
 * synchronous=NORMAL (COMMIT appends to the WAL without a sync) and
 * store_sqlite_commit returns only once a sync of the WAL begun after its
 * COMMIT has succeeded: the first waiting committer syncs for all that
 * committed before it started, the others wait for that sync or the next.
 *
 * The sync is SQLite's own: xSync of the writer's WAL file object
 * (SQLITE_FCNTL_JOURNAL_POINTER), through whatever VFS the connection
 * uses, on SQLite's descriptor.  It runs without the write lock, beside
 * the next writer's xWrite and xTruncate on the same object; the unix
 * VFS's xSync changes the object only on its first call (the directory
 * sync), which sq_group_start makes before any commit.
 *
 * Readers see a transaction from its COMMIT on, before it is on disk; so
 * that nothing they answer rests on it, a read transaction ends only once
 * every transaction begun to commit before its end is on disk (started,
 * counted before COMMIT, is what it waits for).
 *
 * Checkpoints run in our WAL hook (sq_wal_hook) instead of SQLite's,
 * which ignores their errors.  A checkpoint syncs the WAL before it
 * copies pages and the database after, so it never makes an unsynced
 * commit look durable; but a failed sync inside it may have lost WAL
 * pages the kernel will not report again, so it counts as a failed sync.
 * After any failed sync of the writer's files nothing more is read,
 * written or acknowledged until the store is reopened.
 */
struct sq_group {
	sqlite3_file *wal;        /* the writer's WAL; NULL: synchronous=FULL */
	pthread_mutex_t lock;
	/*
	 * Two conditions, so that a COMMIT ending wakes only the readers
	 * waiting for it, not every committer waiting for a sync.
	 */
	pthread_cond_t committed_cv;  /* signalled when a COMMIT ends */
	pthread_cond_t synced_cv;     /* signalled when a sync ends, or one failed */
	uint64_t started;         /* write transactions that began to COMMIT */
	uint64_t committed;       /* ... and finished it (in the WAL, or failed) */
	uint64_t synced;          /* ... of which a successful sync covers the first n */
	int syncing;              /* a committer or reader is syncing for all */
	int failed;               /* the SQLite code of a failed sync: refuse everything */
};

struct sq_store {
	char *path;
	int version;
	pthread_mutex_t wlock;    /* held by the one write transaction */
	struct sq_conn w;
	pthread_mutex_t plock;    /* guards the in_use flags of r[] */
	pthread_cond_t pcond;     /* signalled when a reader comes back */
	struct sq_conn r[SQ_READERS];
	int locks_made;
	struct sq_group group;    /* group commit, see sq_durable */
	int sync_snapshots;       /* see sq_sync_snapshot; set before any transaction */
	/* Checkpoints outside the write lock (sq_wal_hook); ck.db NULL: none. */
	struct sq_conn ck;
	pthread_mutex_t cklock;   /* one checkpoint at a time on ck */
	int ck_due;               /* under group.lock: frames wait for a checkpoint */
	int ck_frames;            /* under group.lock: WAL frames the last one covered */
};

struct sq_tx {
	struct sq_store *s;
	struct sq_conn *c;
	int write;
};

int
store_sqlite_schema_latest(void)
{
	return SQ_SCHEMA_LATEST;
}

const char *
store_sqlite_migration_sql(int to)
{
	if (to < 1 || to > SQ_SCHEMA_LATEST)
		return NULL;
	return sq_migrations[to - 1];
}

/* Map an SQLite result code to ours, with "store: what failed (...)". */
static int
sq_error(sqlite3 *db, int rc, const char *what, struct why *why)
{
	const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
			return why_set(why, HEGN_ERR_CONFLICT,
			    "store: %s failed: the record exists already", what);
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			return why_set(why, HEGN_ERR_NOT_FOUND,
			    "store: %s failed: the record it refers to does not exist", what);
		return why_set(why, HEGN_ERR_INVALID, "store: %s failed (%s)", what, msg);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return why_set(why, HEGN_ERR_BUSY, "store: %s failed (%s)", what, msg);
	case SQLITE_NOMEM:
		return why_set(why, HEGN_ERR_NOMEM, "store: %s failed (%s)", what, msg);
	case SQLITE_TOOBIG:
		return why_set(why, HEGN_ERR_TOO_LARGE, "store: %s failed (%s)", what, msg);
	default:
		return why_set(why, HEGN_ERR_STORE, "store: %s failed (%s)", what, msg);
	}
}

static void
sq_deadline(struct timespec *ts, clockid_t clock, int ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The cached statement id on c, prepared on first use. */
static int
sq_stmt(struct sq_conn *c, enum sq_stmt_id id, sqlite3_stmt **out, struct why *why)
{
	int rc;

	*out = NULL;
	if (c->stmt[id] == NULL) {
		rc = sqlite3_prepare_v3(c->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		    &c->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return sq_error(c->db, rc, "preparing a statement", why);
	}
	*out = c->stmt[id];
	return 0;
}

/* Make a statement reusable and drop its references to the caller's memory. */
static void
sq_done(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/*
 * Step st to the one row it looks up: 0 at the row, HEGN_ERR_NOT_FOUND
 * (why untouched, for the caller to say what is missing) when there is
 * none, or the error of the step.
 */
static int
sq_step_row(sqlite3 *db, sqlite3_stmt *st, const char *what, struct why *why)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return HEGN_ERR_NOT_FOUND;
	return sq_error(db, rc, what, why);
}

/* Step a statement that returns no rows (or whose rows are ignored). */
static int
sq_run(struct sq_conn *c, enum sq_stmt_id id, const char *what, struct why *why)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = sq_stmt(c, id, &st, why)) != 0)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = sq_error(c->db, rc, what, why);
		goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

/* Step a bound statement that returns no rows; what names it in the error. */
static int
sq_step_done(sqlite3_stmt *st, const char *what, struct why *why)
{
	int rc;

	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		return sq_error(sqlite3_db_handle(st), rc, what, why);
	return 0;
}

/*
 * Bind a string that must fit a field of size bytes (NUL included); keys
 * must not be empty.  SQLITE_STATIC: the caller's memory outlives the step.
 */
static int
sq_bind_str(sqlite3_stmt *st, int idx, const char *s, size_t size, const char *field,
    int required, struct why *why)
{
	size_t len;
	int rc;

	len = strnlen(s, size);
	if (len == size)
		return why_set(why, HEGN_ERR_INVALID,
		    "store: %s is longer than %zu bytes or not terminated", field, size - 1);
	if (required && len == 0)
		return why_set(why, HEGN_ERR_INVALID, "store: %s is empty", field);
	if ((rc = sqlite3_bind_text(st, idx, s, (int)len, SQLITE_STATIC)) != SQLITE_OK)
		return sq_error(sqlite3_db_handle(st), rc, "binding a value", why);
	return 0;
}

#define SQ_BIND_FIELD(st, idx, rec, field, required, why) \
	sq_bind_str((st), (idx), (rec)->field, sizeof((rec)->field), #field, (required), (why))

static int
sq_bind_int(sqlite3_stmt *st, int idx, int64_t v, struct why *why)
{
	int rc;

	if ((rc = sqlite3_bind_int64(st, idx, v)) != SQLITE_OK)
		return sq_error(sqlite3_db_handle(st), rc, "binding a value", why);
	return 0;
}

/* An empty buffer is stored as NULL and read back as an empty buffer. */
static int
sq_bind_blob(sqlite3_stmt *st, int idx, const struct buf *b, struct why *why)
{
	int rc;

	if (b->data == NULL || b->len == 0)
		rc = sqlite3_bind_null(st, idx);
	else
		rc = sqlite3_bind_blob64(st, idx, b->data, b->len, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		return sq_error(sqlite3_db_handle(st), rc, "binding a value", why);
	return 0;
}

/* Copy text column col into dst[size]; a value that does not fit is an error. */
static int
sq_col_str(sqlite3_stmt *st, int col, char *dst, size_t size, struct why *why)
{
	const unsigned char *t;
	int n;

	dst[0] = '\0';
	t = sqlite3_column_text(st, col);
	n = sqlite3_column_bytes(st, col);
	if (t == NULL) {
		if (sqlite3_column_type(st, col) != SQLITE_NULL)
			return why_set(why, HEGN_ERR_NOMEM, "store: reading column %s failed",
			    sqlite3_column_name(st, col));
		return 0;
	}
	if (n < 0 || (size_t)n >= size || memchr(t, '\0', (size_t)n) != NULL)
		return why_set(why, HEGN_ERR_STORE,
		    "store: column %s holds %d bytes, which do not fit its field of %zu",
		    sqlite3_column_name(st, col), n, size - 1);
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
	return 0;
}

#define SQ_COL_FIELD(st, col, rec, field, why) \
	sq_col_str((st), (col), (rec)->field, sizeof((rec)->field), (why))

/* Copy blob column col into a new buffer owned by the caller. */
static int
sq_col_blob(sqlite3_stmt *st, int col, struct buf *out, struct why *why)
{
	const void *p;
	int n;

	out->data = NULL;
	out->len = 0;
	p = sqlite3_column_blob(st, col);
	n = sqlite3_column_bytes(st, col);
	if (p == NULL || n <= 0) {
		if (sqlite3_column_type(st, col) != SQLITE_NULL && n > 0)
			return why_set(why, HEGN_ERR_NOMEM, "store: reading column %s failed",
			    sqlite3_column_name(st, col));
		return 0;
	}
	/* One spare byte NUL-terminates, as util_read_file does. */
	if ((out->data = malloc((size_t)n + 1)) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "store: no memory for a %d byte value", n);
	memcpy(out->data, p, (size_t)n);
	out->data[n] = '\0';
	out->len = (size_t)n;
	return 0;
}

/* Grow *arr (of *cap elements of size each) to hold at least n + 1. */
static int
sq_grow(void **arr, size_t *cap, size_t n, size_t size, struct why *why)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap == 0 ? 8 : *cap * 2;
	if ((p = reallocarray(*arr, ncap, size)) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "store: no memory for a list of %zu", ncap);
	memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Fill the element at elem from the statement's current row. */
typedef int (*sq_row_fn)(sqlite3_stmt *st, void *elem, struct why *why);

/*
 * Step a bound statement to its end into a list of elements of size bytes,
 * one per row, each filled by row.  On success *out is a malloc'd array of
 * *n (NULL when *n is 0); on error nothing is returned and the elements
 * read so far are given to release (free() when NULL), the last one
 * possibly half filled.
 */
static int
sq_rows(struct sq_tx *tx, sqlite3_stmt *st, size_t size, sq_row_fn row,
    void (*release)(void *, size_t), const char *what, void **out, size_t *n, struct why *why)
{
	char *list = NULL;
	size_t cap = 0, cnt = 0;
	int r, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = sq_grow((void **)&list, &cap, cnt, size, why)) != 0)
			goto out;
		cnt++;
		if ((r = row(st, list + (cnt - 1) * size, why)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = sq_error(tx->c->db, rc, what, why);
		goto out;
	}
	*out = list;
	*n = cnt;
	list = NULL;
	r = 0;
out:
	if (release != NULL)
		release(list, cnt);
	else
		free(list);
	return r;
}

static int
sq_need_write(struct sq_tx *tx, const char *what, struct why *why)
{
	if (!tx->write)
		return why_set(why, HEGN_ERR_INTERNAL, "store: %s in a read transaction", what);
	return 0;
}

/* Read an integer PRAGMA (or any one-value query). */
static int
sq_query_int(sqlite3 *db, const char *sql, int64_t *out, const char *what, struct why *why)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	*out = 0;
	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK) {
		r = sq_error(db, rc, what, why);
		goto out;
	}
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = sq_error(db, rc == SQLITE_DONE ? SQLITE_ERROR : rc, what, why);
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

static int
sq_exec(sqlite3 *db, const char *sql, const char *what, struct why *why)
{
	int rc;

	if ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK)
		return sq_error(db, rc, what, why);
	return 0;
}

static void
sq_conn_close(struct sq_conn *c)
{
	size_t i;

	for (i = 0; i < SQ_NSTMT; i++) {
		sqlite3_finalize(c->stmt[i]);
		c->stmt[i] = NULL;
	}
	if (c->db != NULL)
		sqlite3_close(c->db);
	c->db = NULL;
}

/*
 * Open one connection and give it the settings that are per connection.
 * Each is read back: a build of SQLite without foreign keys or with a fixed
 * synchronous level would otherwise ignore the PRAGMA silently.
 */
static int
sq_conn_open(struct sq_conn *c, const char *path, int write, struct why *why)
{
	char what[512];
	int64_t v;
	int r, rc;

	memset(c, 0, sizeof(*c));
	snprintf(what, sizeof(what), "opening %s", path);
	/* No SQLITE_OPEN_CREATE: store_sqlite_open made the file, mode 0600. */
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	    SQLITE_OPEN_PRIVATECACHE, NULL);
	if (rc != SQLITE_OK) {
		r = sq_error(c->db, rc, what, why);
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, SQ_BUSY_MS);
	/* Refuse writable_schema tricks and "string" identifiers. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
	if ((r = sq_exec(c->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
	    " PRAGMA secure_delete = ON; PRAGMA trusted_schema = OFF", what, why)) != 0)
		goto out;
	if (!write && (r = sq_exec(c->db, "PRAGMA query_only = ON", what, why)) != 0)
		goto out;
	/*
	 * A checkpointed WAL is reused, not shrunk; the limit truncates it so
	 * old page images (deleted content among them) do not linger in it.
	 */
	if (write && (r = sq_exec(c->db, "PRAGMA journal_size_limit = 67108864",
	    what, why)) != 0)
		goto out;
	if ((r = sq_query_int(c->db, "PRAGMA foreign_keys", &v, what, why)) != 0)
		goto out;
	if (v != 1) {
		r = why_set(why, HEGN_ERR_STORE, "store: SQLite does not enforce foreign keys");
		goto out;
	}
	if ((r = sq_query_int(c->db, "PRAGMA synchronous", &v, what, why)) != 0)
		goto out;
	if (v != 2) {
		r = why_set(why, HEGN_ERR_STORE, "store: SQLite refused synchronous=FULL");
		goto out;
	}
	if ((r = sq_query_int(c->db, "PRAGMA secure_delete", &v, what, why)) != 0)
		goto out;
	if (v != 1) {
		r = why_set(why, HEGN_ERR_STORE, "store: SQLite refused secure_delete");
		goto out;
	}
	r = 0;
out:
	if (r != 0)
		sq_conn_close(c);
	return r;
}

/* WAL is a property of the file; it sticks once set. */
static int
sq_set_wal(sqlite3 *db, struct why *why)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int r, rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sq_error(db, rc, "setting the journal mode", why);
		goto out;
	}
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = sq_error(db, rc == SQLITE_DONE ? SQLITE_ERROR : rc,
		    "setting the journal mode", why);
		goto out;
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		r = why_set(why, HEGN_ERR_STORE, "store: the database refused WAL mode "
		    "(journal mode stays %s)", mode != NULL ? (const char *)mode : "unknown");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/*
 * Bring the schema to SQ_SCHEMA_LATEST, one migration per transaction with
 * its user_version bump, so a crash leaves the database at some version
 * and never between two.  The version is read inside the write transaction
 * so two processes opening one new file do not both migrate it.
 */
static int
sq_migrate(struct sq_store *s, struct why *why)
{
	sqlite3 *db = s->w.db;
	char sql[64], what[64];
	int64_t v;
	int r, intx = 0;

	for (;;) {
		if ((r = sq_exec(db, "BEGIN IMMEDIATE", "starting a migration", why)) != 0)
			goto out;
		intx = 1;
		if ((r = sq_query_int(db, "PRAGMA user_version", &v,
		    "reading the schema version", why)) != 0)
			goto out;
		if (v > SQ_SCHEMA_LATEST || v < 0) {
			r = why_set(why, HEGN_ERR_STORE, "store: %s has schema version %lld, "
			    "but this program knows versions up to %d: use a newer hegn",
			    s->path, (long long)v, SQ_SCHEMA_LATEST);
			goto out;
		}
		if (v == SQ_SCHEMA_LATEST)
			break;
		snprintf(what, sizeof(what), "migration to schema version %lld", (long long)v + 1);
		if ((r = sq_exec(db, sq_migrations[v], what, why)) != 0)
			goto out;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)v + 1);
		if ((r = sq_exec(db, sql, "recording the schema version", why)) != 0)
			goto out;
		if ((r = sq_exec(db, "COMMIT", "committing a migration", why)) != 0)
			goto out;
		intx = 0;
	}
	s->version = (int)v;
	r = 0;
out:
	if (intx)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/*
 * Create the file with mode 0600 ourselves (SQLite would use the umask) and
 * refuse one others can read: it holds signed content in clear.
 */
static int
sq_make_file(const char *path, struct why *why)
{
	struct stat st;
	int fd = -1, r;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		r = why_set(why, HEGN_ERR_IO, "store: cannot open %s (%s)", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		r = why_set(why, HEGN_ERR_IO, "store: cannot stat %s (%s)", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = why_set(why, HEGN_ERR_CONFIG, "store: %s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "store: %s is accessible by group or others "
		    "(mode %04o); it must be 0600", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	r = 0;
out:
	if (fd != -1)
		close(fd);
	return r;
}

/* An SQLite result code of a failed sync (xSync of the WAL or the database). */
static int
sq_sync_failed(int rc)
{
	return rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC;
}

/*
 * Refuse every later transaction: after a failed fsync the kernel may have
 * dropped the pages and report success to the next one (Linux does).
 */
static void
sq_poison(struct sq_store *s, int rc, const char *during)
{
	struct sq_group *g = &s->group;

	pthread_mutex_lock(&g->lock);
	if (!g->failed) {
		g->failed = rc;
		log_error("store: a sync of %s failed %s (%s): nothing more is read or written "
		    "until it is reopened", s->path, during, sqlite3_errstr(rc));
	}
	pthread_cond_broadcast(&g->committed_cv);
	pthread_cond_broadcast(&g->synced_cv);
	pthread_mutex_unlock(&g->lock);
}

static int
sq_refused(struct sq_store *s, int failed, struct why *why)
{
	return why_set(why, HEGN_ERR_STORE, "store: a sync of %s failed earlier (%s): nothing "
	    "more is read or written until the store is reopened", s->path,
	    sqlite3_errstr(failed));
}

/* A checkpoint on db, with its errors seen (see struct sq_group); records what it covered. */
static void
sq_checkpoint(struct sq_store *s, sqlite3 *db, const char *name)
{
	int rc, nlog = -1, done = -1;

	rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &nlog, &done);
	if (sq_sync_failed(rc))
		sq_poison(s, rc, "in a checkpoint");
	/* Any other failure (busy: another is running) leaves the WAL to the next one. */
	if (rc == SQLITE_OK && done >= 0) {
		pthread_mutex_lock(&s->group.lock);
		s->ck_frames = done;
		pthread_mutex_unlock(&s->group.lock);
	}
}

/*
 * The writer's WAL hook, run at the end of each COMMIT with the write lock
 * held.  A checkpoint syncs the WAL and then the database, whose pages lie
 * scattered through a large file: run here, it held up every writer for
 * those syncs (docs/performance.md, item 19).  So the hook only marks one
 * due, and the committer runs it on a connection of its own once the write
 * lock is gone (sq_checkpoint_due).  A checkpoint running beside writers
 * rarely catches up with them, and the WAL starts over only after one that
 * did; at SQ_CHECKPOINT_WAL_MAX frames the writer therefore checkpoints here,
 * under the lock, as it always did before.
 */
static int
sq_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_store *s = arg;
	int backlog;

	if (s->ck.db == NULL || frames >= SQ_CHECKPOINT_WAL_MAX) {
		if (frames >= SQ_CHECKPOINT_FRAMES)
			sq_checkpoint(s, db, name);
		return SQLITE_OK;
	}
	pthread_mutex_lock(&s->group.lock);
	/* Fewer frames than the last checkpoint covered: the WAL started over. */
	if (frames < s->ck_frames)
		s->ck_frames = 0;
	backlog = frames - s->ck_frames;
	if (backlog >= SQ_CHECKPOINT_FRAMES)
		s->ck_due = 1;
	pthread_mutex_unlock(&s->group.lock);
	return SQLITE_OK;
}

/* Run the checkpoint the hook marked due, unless one is running already. */
static void
sq_checkpoint_due(struct sq_store *s)
{
	int due;

	if (s->ck.db == NULL)
		return;
	pthread_mutex_lock(&s->group.lock);
	due = s->ck_due && !s->group.failed;
	pthread_mutex_unlock(&s->group.lock);
	if (!due || pthread_mutex_trylock(&s->cklock) != 0)
		return;
	pthread_mutex_lock(&s->group.lock);
	due = s->ck_due;
	s->ck_due = 0;
	pthread_mutex_unlock(&s->group.lock);
	if (due)
		sq_checkpoint(s, s->ck.db, "main");
	pthread_mutex_unlock(&s->cklock);
}

/*
 * Wait until write transaction number mine is covered by a successful
 * sync of the WAL begun after its COMMIT, syncing if no one else is.  A
 * reader's mine may still be in COMMIT: it waits for that to end first.
 */
static int
sq_durable(struct sq_store *s, uint64_t mine, struct why *why)
{
	struct sq_group *g = &s->group;
	uint64_t target;
	int r = 0, rc;

	pthread_mutex_lock(&g->lock);
	while (g->synced < mine && !g->failed) {
		if (g->committed < mine) {
			pthread_cond_wait(&g->committed_cv, &g->lock);
			continue;
		}
		if (g->syncing) {
			pthread_cond_wait(&g->synced_cv, &g->lock);
			continue;
		}
		/* Every transaction counted so far is in the WAL: one sync covers them all. */
		g->syncing = 1;
		target = g->committed;
		pthread_mutex_unlock(&g->lock);
		rc = g->wal->pMethods->xSync(g->wal, SQLITE_SYNC_NORMAL);
		pthread_mutex_lock(&g->lock);
		g->syncing = 0;
		if (rc == SQLITE_OK && target > g->synced)
			g->synced = target;
		if (rc != SQLITE_OK && !g->failed) {
			g->failed = rc;
			log_error("store: syncing the WAL of %s failed (%s): nothing more is read "
			    "or written until it is reopened", s->path, sqlite3_errstr(rc));
			pthread_cond_broadcast(&g->committed_cv);
		}
		pthread_cond_broadcast(&g->synced_cv);
	}
	if (g->synced < mine)
		r = why_set(why, HEGN_ERR_STORE, "store: syncing the WAL of %s failed (%s): "
		    "the commit may not be on disk, and nothing more is read or written until "
		    "the store is reopened", s->path, sqlite3_errstr(g->failed));
	pthread_mutex_unlock(&g->lock);
	return r;
}

/*
 * Switch the write connection to group commit once the schema is current.
 * The first sync of the WAL also syncs its directory (and changes SQLite's
 * file object): it is made here, before anyone else can sync.  Without a
 * WAL file object the writer keeps synchronous=FULL.
 */
static int
sq_group_start(struct sq_store *s, struct why *why)
{
	sqlite3_file *f = NULL;
	int64_t v;
	int r, rc;

	rc = sqlite3_file_control(s->w.db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
	if (rc != SQLITE_OK || f == NULL || f->pMethods == NULL) {
		r = 0;
		goto out;
	}
	if ((rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL)) != SQLITE_OK) {
		r = why_set(why, HEGN_ERR_STORE, "store: syncing the WAL of %s failed (%s)",
		    s->path, sqlite3_errstr(rc));
		goto out;
	}
	if ((r = sq_exec(s->w.db, "PRAGMA synchronous = NORMAL", "setting group commit",
	    why)) != 0 ||
	    (r = sq_query_int(s->w.db, "PRAGMA synchronous", &v, "setting group commit",
	    why)) != 0)
		goto out;
	if (v != 1) {
		r = why_set(why, HEGN_ERR_STORE, "store: SQLite refused synchronous=NORMAL");
		goto out;
	}
	sqlite3_wal_hook(s->w.db, sq_wal_hook, s);
	s->group.wal = f;
	r = 0;
out:
	return r;
}

static void
store_sqlite_close(void *impl)
{
	struct sq_store *s = impl;
	size_t i;

	if (s == NULL)
		return;
	/* The writer last: the last connection to close checkpoints the WAL. */
	for (i = 0; i < SQ_READERS; i++)
		sq_conn_close(&s->r[i]);
	sq_conn_close(&s->ck);
	sq_conn_close(&s->w);
	if (s->locks_made) {
		pthread_mutex_destroy(&s->cklock);
		pthread_mutex_destroy(&s->wlock);
		pthread_mutex_destroy(&s->plock);
		pthread_cond_destroy(&s->pcond);
		pthread_mutex_destroy(&s->group.lock);
		pthread_cond_destroy(&s->group.committed_cv);
		pthread_cond_destroy(&s->group.synced_cv);
	}
	free(s->path);
	free(s);
}

static int
store_sqlite_open(const char *location, int flags, void **impl, struct why *why)
{
	struct sq_store *s = NULL;
	pthread_condattr_t ca;
	pthread_mutexattr_t ma;
	char what[512];
	int64_t v;
	size_t i;
	int r;

	*impl = NULL;
	if (sqlite3_threadsafe() == 0) {
		r = why_set(why, HEGN_ERR_CONFIG,
		    "store: SQLite was built without thread support (SQLITE_THREADSAFE=0)");
		goto out;
	}
	s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(location);
	/* Error-checking: a thread that begins a second write fails at once. */
	if (pthread_mutexattr_init(&ma) != 0) {
		r = why_set(why, HEGN_ERR_INTERNAL, "store: cannot create locks");
		goto out;
	}
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	if (pthread_mutex_init(&s->wlock, &ma) != 0 ||
	    pthread_mutex_init(&s->cklock, NULL) != 0 ||
	    pthread_mutex_init(&s->plock, NULL) != 0 ||
	    pthread_mutex_init(&s->group.lock, NULL) != 0 ||
	    pthread_cond_init(&s->group.committed_cv, NULL) != 0 ||
	    pthread_cond_init(&s->group.synced_cv, NULL) != 0 ||
	    pthread_condattr_init(&ca) != 0) {
		pthread_mutexattr_destroy(&ma);
		r = why_set(why, HEGN_ERR_INTERNAL, "store: cannot create locks");
		goto out;
	}
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&s->pcond, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		r = why_set(why, HEGN_ERR_INTERNAL, "store: cannot create locks");
		goto out;
	}
	pthread_condattr_destroy(&ca);
	s->locks_made = 1;

	if ((r = sq_make_file(s->path, why)) != 0)
		goto out;
	if ((r = sq_conn_open(&s->w, s->path, 1, why)) != 0)
		goto out;
	/* Refuse a newer schema before changing anything in the file. */
	snprintf(what, sizeof(what), "reading the schema version of %s", s->path);
	if ((r = sq_query_int(s->w.db, "PRAGMA user_version", &v, what, why)) != 0)
		goto out;
	if (v > SQ_SCHEMA_LATEST) {
		r = why_set(why, HEGN_ERR_STORE, "store: %s has schema version %lld, but this "
		    "program knows versions up to %d: use a newer hegn", s->path,
		    (long long)v, SQ_SCHEMA_LATEST);
		goto out;
	}
	if ((flags & STORE_NO_MIGRATE) && v != SQ_SCHEMA_LATEST) {
		r = why_set(why, HEGN_ERR_STORE, "store: %s has schema version %lld and this "
		    "program needs %d; only hegnd migrates a database: start this version's "
		    "hegnd first (docs/operations.md, \"Upgrading\")", s->path, (long long)v,
		    SQ_SCHEMA_LATEST);
		goto out;
	}
	if ((r = sq_set_wal(s->w.db, why)) != 0)
		goto out;
	if ((r = sq_migrate(s, why)) != 0)
		goto out;
	for (i = 0; i < SQ_READERS; i++)
		if ((r = sq_conn_open(&s->r[i], s->path, 0, why)) != 0)
			goto out;
	if ((r = sq_group_start(s, why)) != 0)
		goto out;
	/* Only with group commit: without it every COMMIT syncs under the lock anyway. */
	if (s->group.wal != NULL && (r = sq_conn_open(&s->ck, s->path, 1, why)) != 0)
		goto out;
	*impl = s;
	s = NULL;
	r = 0;
out:
	store_sqlite_close(s);
	return r;
}

static int
store_sqlite_schema_version(void *impl)
{
	struct sq_store *s = impl;

	return s->version;
}

/*
 * In the database's directory, so a spilled copy takes the space it will
 * take in the database anyway, on the same file system.  O_TMPFILE gives a
 * file without a name; where the file system has none, a named one is
 * unlinked at once.  What is spilled is sealed for its recipient already.
 */
static int
store_sqlite_spill_open(void *impl, int *fd, struct why *why)
{
	struct sq_store *s = impl;
	const char *slash = strrchr(s->path, '/');
	char *dir, *tmpl, name[37];
	int e = 0;

	dir = slash == NULL ? xstrdup(".") : slash == s->path ? xstrdup("/") :
	    xasprintf("%.*s", (int)(slash - s->path), s->path);
	*fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd < 0)
		e = errno;
	/*
	 * Some file systems (FUSE, older kernels) have no O_TMPFILE: a new
	 * file under a random name (a UUID, never one that exists), unlinked
	 * at once.
	 */
	if (*fd < 0 && (e == EOPNOTSUPP || e == EISDIR || e == EINVAL)) {
		util_uuid(name);
		tmpl = xasprintf("%s/.hegn-spill-%s", dir, name);
		if ((*fd = open(tmpl, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0)
			unlink(tmpl);
		else
			e = errno;
		free(tmpl);
	}
	if (*fd < 0)
		why_set(why, HEGN_ERR_STORE, "store: cannot make a spill file in %s: %s", dir,
		    strerror(e));
	free(dir);
	return *fd < 0 ? HEGN_ERR_STORE : 0;
}

/* Give tx's connection back (to the pool, or the writer lock) and free tx. */
static void
sq_release(struct sq_tx *tx)
{
	struct sq_store *s = tx->s;

	if (tx->write) {
		pthread_mutex_unlock(&s->wlock);
	} else {
		pthread_mutex_lock(&s->plock);
		tx->c->in_use = 0;
		pthread_cond_signal(&s->pcond);
		pthread_mutex_unlock(&s->plock);
	}
	free(tx);
}

/* A free reader, waiting at most SQ_WAIT_MS for one. */
static struct sq_conn *
sq_take_reader(struct sq_store *s)
{
	struct sq_conn *c = NULL;
	struct timespec ts;
	size_t i;

	sq_deadline(&ts, CLOCK_MONOTONIC, SQ_WAIT_MS);
	pthread_mutex_lock(&s->plock);
	for (;;) {
		for (i = 0; i < SQ_READERS; i++) {
			if (!s->r[i].in_use) {
				c = &s->r[i];
				c->in_use = 1;
				goto out;
			}
		}
		/* 0 is a wake-up (maybe spurious); anything else ends the wait. */
		if (pthread_cond_timedwait(&s->pcond, &s->plock, &ts) != 0)
			goto out;
	}
out:
	pthread_mutex_unlock(&s->plock);
	return c;
}

/*
 * A store used beside the process that writes it (store_sync_snapshots):
 * that process's commits are visible here from their COMMIT on, and its
 * group commit cannot be waited for from another process.  So once the
 * transaction has its snapshot, sync the WAL, whoever wrote it: fsync
 * writes out the file's pages, not just this descriptor's.  All the
 * transaction can then read is on disk: the WAL's frames up to its
 * snapshot by this sync, and the pages a checkpoint copied into the
 * database because the checkpoint synced the database before it let go
 * of the WAL's frames.  Without a WAL (rollback journal) a commit is on
 * disk before others see it.
 */
static int
sq_sync_snapshot(struct sq_tx *tx, struct why *why)
{
	sqlite3_file *f = NULL;
	int64_t v;
	int r, rc;

	/* BEGIN DEFERRED takes no snapshot; the first read does. */
	if ((r = sq_query_int(tx->c->db, "PRAGMA schema_version", &v, "starting a transaction",
	    why)) != 0)
		return r;
	rc = sqlite3_file_control(tx->c->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
	if (rc != SQLITE_OK || f == NULL || f->pMethods == NULL)
		return 0;
	if ((rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL)) != SQLITE_OK) {
		sq_poison(tx->s, rc, "before a read");
		return why_set(why, HEGN_ERR_STORE, "store: syncing the WAL of %s before a read "
		    "failed (%s): what it would read may not be on disk, and nothing more is read "
		    "or written until the store is reopened", tx->s->path, sqlite3_errstr(rc));
	}
	return 0;
}

static void
store_sqlite_sync_snapshots(void *impl)
{
	((struct sq_store *)impl)->sync_snapshots = 1;
}

static int
store_sqlite_begin(void *impl, int write, void **out, struct why *why)
{
	struct sq_store *s = impl;
	struct sq_tx *tx = NULL;
	struct timespec ts;
	int r, e;

	*out = NULL;
	pthread_mutex_lock(&s->group.lock);
	e = s->group.failed;
	pthread_mutex_unlock(&s->group.lock);
	if (e != 0) {
		r = sq_refused(s, e, why);
		goto out;
	}
	tx = xcalloc(1, sizeof(*tx));
	tx->s = s;
	tx->write = write != 0;
	if (tx->write) {
		sq_deadline(&ts, CLOCK_REALTIME, SQ_WAIT_MS);
		if ((e = pthread_mutex_timedlock(&s->wlock, &ts)) != 0) {
			free(tx);
			if (e == EDEADLK)
				r = why_set(why, HEGN_ERR_INTERNAL, "store: this thread "
				    "holds a write transaction already");
			else
				r = why_set(why, HEGN_ERR_BUSY,
				    "store: timed out waiting for the write transaction");
			goto out;
		}
		tx->c = &s->w;
	} else if ((tx->c = sq_take_reader(s)) == NULL) {
		free(tx);
		r = why_set(why, HEGN_ERR_BUSY, "store: timed out waiting for a reader");
		goto out;
	}
	/* A connection left inside a transaction by a failed rollback. */
	if (!sqlite3_get_autocommit(tx->c->db))
		sqlite3_exec(tx->c->db, "ROLLBACK", NULL, NULL, NULL);
	if ((r = sq_run(tx->c, tx->write ? SQ_BEGIN_IMMEDIATE : SQ_BEGIN,
	    "starting a transaction", why)) != 0) {
		sq_release(tx);
		goto out;
	}
	if (s->sync_snapshots && (r = sq_sync_snapshot(tx, why)) != 0) {
		sqlite3_exec(tx->c->db, "ROLLBACK", NULL, NULL, NULL);
		sq_release(tx);
		goto out;
	}
	*out = tx;
	r = 0;
out:
	return r;
}

/*
 * End a transaction that commits nothing of its own (a read, or a write
 * rolled back): give the connection back, then wait until all it may have
 * seen is on disk (see struct sq_group).  A write transaction reads too,
 * and may answer from what it read without writing (a repeat).
 */
static int
sq_read_done(struct sq_tx *tx, struct why *why)
{
	struct sq_store *s = tx->s;
	uint64_t seen;

	sq_release(tx);
	if (s->group.wal == NULL)
		return 0;
	pthread_mutex_lock(&s->group.lock);
	seen = s->group.started;
	pthread_mutex_unlock(&s->group.lock);
	return sq_durable(s, seen, why);
}

static void
store_sqlite_rollback(void *h)
{
	struct sq_tx *tx = h;

	if (tx == NULL)
		return;
	if (!sqlite3_get_autocommit(tx->c->db))
		sq_run(tx->c, SQ_ROLLBACK, "rolling back", NULL);
	(void)sq_read_done(tx, NULL);
}

/*
 * Durable once this returns 0: COMMIT appended the transaction to the WAL
 * and sq_durable saw a sync begun after it succeed (or, without group
 * commit, synchronous=FULL synced the WAL inside COMMIT).  An error after
 * COMMIT (a failed sync) leaves the transaction in the database but not
 * known to be on disk: nothing of it may be acknowledged.
 */
static int
store_sqlite_commit(void *h, struct why *why)
{
	struct sq_tx *tx = h;
	struct sq_store *s = tx->s;
	struct sq_group *g = &s->group;
	uint64_t mine = 0;
	int r, failed = 0, group = tx->write && g->wal != NULL;

	if (group) {
		pthread_mutex_lock(&g->lock);
		if ((failed = g->failed) == 0)
			g->started++;
		pthread_mutex_unlock(&g->lock);
		if (failed != 0) {
			store_sqlite_rollback(tx);
			return sq_refused(s, failed, why);
		}
	}
	r = sq_run(tx->c, SQ_COMMIT, "commit", why);
	if (group) {
		/*
		 * Counted before the write lock goes, so the count follows the
		 * WAL's order; a failed COMMIT counts too, as readers wait for
		 * every one started.
		 */
		pthread_mutex_lock(&g->lock);
		mine = ++g->committed;
		pthread_cond_broadcast(&g->committed_cv);
		pthread_mutex_unlock(&g->lock);
	}
	if (r != 0) {
		if (tx->write && sq_sync_failed(sqlite3_extended_errcode(tx->c->db)))
			sq_poison(s, sqlite3_extended_errcode(tx->c->db), "in a commit");
		store_sqlite_rollback(tx);
		return r;
	}
	if (!tx->write)
		return sq_read_done(tx, why);
	sq_release(tx);
	/* Before the wait: a sync failed in it refuses this commit too. */
	if (group)
		sq_checkpoint_due(s);
	return group ? sq_durable(s, mine, why) : 0;
}

static int
store_sqlite_message_insert(void *h, const struct store_message *m, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "message insert", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_MESSAGE_INSERT, &st, why)) != 0)
		goto out;
	if ((r = SQ_BIND_FIELD(st, 1, m, id, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, m, sender, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, m, kind, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, m, content_sha256, 0, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 5, m, citizen_ref, 0, why)) != 0 ||
	    (r = sq_bind_int(st, 6, m->created_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 7, m->deadline_ms, why)) != 0 ||
	    (r = sq_bind_blob(st, 8, &m->signed_der, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "message insert", why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	return r;
}

/* Bind a key passed as a C string; it must fit the field it is kept in. */
static int
sq_bind_key(sqlite3_stmt *st, int idx, const char *s, const char *field, struct why *why)
{
	return sq_bind_str(st, idx, s, 65, field, 1, why);
}

static int
store_sqlite_message_get(void *h, const char *id, int with_der, struct store_message *out,
    struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = sq_stmt(tx->c, with_der ? SQ_MESSAGE_GET_DER : SQ_MESSAGE_GET, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0)
		goto out;
	if ((r = sq_step_row(tx->c->db, st, "message get", why)) == HEGN_ERR_NOT_FOUND)
		r = why_set(why, HEGN_ERR_NOT_FOUND, "store: no message with that id");
	if (r != 0)
		goto out;
	if ((r = SQ_COL_FIELD(st, 0, out, id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 1, out, sender, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, out, kind, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, out, content_sha256, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 4, out, citizen_ref, why)) != 0)
		goto out;
	out->created_ms = sqlite3_column_int64(st, 5);
	out->deadline_ms = sqlite3_column_int64(st, 6);
	if ((r = sq_col_blob(st, 7, &out->signed_der, why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	if (r != 0)
		store_message_clear(out);
	return r;
}

/* Fill d from a row of the SQ_DELIVERY_COLS columns plus sealed. */
static int
sq_row_delivery(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_delivery *d = elem;
	int r;

	if ((r = SQ_COL_FIELD(st, 0, d, message_id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 1, d, recipient, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, d, state, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, d, channel, why)) != 0)
		return r;
	d->seq = sqlite3_column_int64(st, 4);
	d->updated_ms = sqlite3_column_int64(st, 5);
	if ((r = SQ_COL_FIELD(st, 6, d, sealed_sha256, why)) != 0)
		return r;
	return sq_col_blob(st, 7, &d->sealed, why);
}

/*
 * The next inbox sequence number.  Writers are serialised, so numbers are
 * handed out in commit order and a reader's cursor never skips a copy that
 * commits later with a smaller number.
 */
static int
sq_next_seq(struct sq_tx *tx, int64_t *seq, struct why *why)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	*seq = 0;
	if ((r = sq_stmt(tx->c, SQ_SEQ_NEXT, &st, why)) != 0)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = sq_error(tx->c->db, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc,
		    "allocating a delivery sequence number", why);
		goto out;
	}
	*seq = sqlite3_column_int64(st, 0);
	if ((r = sq_step_done(st, "allocating a delivery sequence number", why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	return r;
}

/* Pieces in which a spilled copy is read back into its row. */
#define SQ_SPILL_PIECE (1024 * 1024)

/*
 * The sealed copy of the delivery with seq from its spill file: a row of
 * zeros of its length, filled through incremental BLOB I/O a piece at a
 * time, so the copy is never whole in memory.  SQLite spills the dirty
 * pages to the WAL as its cache fills.  The copy is hashed as it is read
 * back: a file that changed or came back short is refused, not stored.
 */
static int
sq_sealed_from_spill(struct sq_tx *tx, int64_t seq, const struct store_delivery *d,
    struct why *why)
{
	const struct store_spilled *sp = &d->spilled;
	struct util_sha256 h = { 0 };
	sqlite3_stmt *st = NULL;
	sqlite3_blob *blob = NULL;
	uint8_t *piece = NULL, digest[32];
	char hex[65];
	uint64_t done = 0;
	size_t cap;
	ssize_t got;
	int r, rc;

	if (sp->len > INT_MAX || sp->off > (uint64_t)INT64_MAX - sp->len) {
		r = why_set(why, HEGN_ERR_INVALID, "store: a sealed copy of %llu bytes is too large",
		    (unsigned long long)sp->len);
		goto out;
	}
	if ((r = sq_stmt(tx->c, SQ_SEALED_INSERT, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, seq, why)) != 0)
		goto out;
	if ((rc = sqlite3_bind_zeroblob64(st, 2, sp->len)) != SQLITE_OK) {
		r = sq_error(tx->c->db, rc, "binding a value", why);
		goto out;
	}
	if ((r = sq_step_done(st, "sealed copy insert", why)) != 0)
		goto out;
	if ((rc = sqlite3_blob_open(tx->c->db, "main", "sealed_copies", "sealed", seq, 1,
	    &blob)) != SQLITE_OK) {
		r = sq_error(tx->c->db, rc, "opening a sealed copy", why);
		goto out;
	}
	cap = sp->len < SQ_SPILL_PIECE ? (size_t)sp->len : SQ_SPILL_PIECE;
	if ((piece = malloc(cap)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "store: out of memory for a sealed copy");
		goto out;
	}
	util_sha256_init(&h);
	while (done < sp->len) {
		size_t n = sp->len - done < cap ? (size_t)(sp->len - done) : cap;

		got = pread(sp->fd, piece, n, (off_t)(sp->off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r = why_set(why, HEGN_ERR_STORE, "store: reading the sealed copy for %s back "
			    "from its spill file: %s", d->recipient, got < 0 ? strerror(errno) :
			    "the file ends early");
			goto out;
		}
		util_sha256_update(&h, piece, (size_t)got);
		if ((rc = sqlite3_blob_write(blob, piece, (int)got, (int)done)) != SQLITE_OK) {
			r = sq_error(tx->c->db, rc, "writing a sealed copy", why);
			goto out;
		}
		done += (uint64_t)got;
	}
	if (util_sha256_final(&h, digest) != 0) {
		r = why_set(why, HEGN_ERR_STORE, "store: cannot hash the sealed copy for %s",
		    d->recipient);
		goto out;
	}
	util_hex(digest, sizeof(digest), hex);
	if (strcmp(hex, d->sealed_sha256) != 0) {
		r = why_set(why, HEGN_ERR_STORE, "store: the sealed copy for %s came back from its "
		    "spill file changed", d->recipient);
		goto out;
	}
	r = 0;
out:
	if (blob != NULL && (rc = sqlite3_blob_close(blob)) != SQLITE_OK && r == 0)
		r = sq_error(tx->c->db, rc, "writing a sealed copy", why);
	util_sha256_free(&h);
	free(piece);
	sq_done(st);
	return r;
}

static int
store_sqlite_delivery_insert(void *h, const struct store_delivery *d, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int64_t seq;
	int r;

	if ((r = sq_need_write(tx, "delivery insert", why)) != 0)
		goto out;
	if ((r = sq_next_seq(tx, &seq, why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_DELIVERY_INSERT, &st, why)) != 0)
		goto out;
	if ((r = SQ_BIND_FIELD(st, 1, d, message_id, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, d, recipient, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, d, state, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, d, channel, 0, why)) != 0 ||
	    (r = sq_bind_int(st, 5, seq, why)) != 0 ||
	    (r = sq_bind_int(st, 6, d->updated_ms, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 7, d, sealed_sha256, 0, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "delivery insert", why)) != 0)
		goto out;
	if (d->spilled.len > 0) {
		sq_done(st);
		st = NULL;
		if ((r = sq_sealed_from_spill(tx, seq, d, why)) != 0)
			goto out;
	}
	/* No copy (a paper or phone delivery) is no row, as it was a NULL. */
	if (d->sealed.data != NULL && d->sealed.len > 0) {
		sq_done(st);
		if ((r = sq_stmt(tx->c, SQ_SEALED_INSERT, &st, why)) != 0)
			goto out;
		if ((r = sq_bind_int(st, 1, seq, why)) != 0 ||
		    (r = sq_bind_blob(st, 2, &d->sealed, why)) != 0)
			goto out;
		if ((r = sq_step_done(st, "sealed copy insert", why)) != 0)
			goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_delivery_get(void *h, const char *id, const char *recipient, int with_sealed,
    struct store_delivery *out, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = sq_stmt(tx->c, with_sealed ? SQ_DELIVERY_GET_SEALED : SQ_DELIVERY_GET,
	    &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0 ||
	    (r = sq_bind_key(st, 2, recipient, "recipient", why)) != 0)
		goto out;
	if ((r = sq_step_row(tx->c->db, st, "delivery get", why)) == HEGN_ERR_NOT_FOUND)
		r = why_set(why, HEGN_ERR_NOT_FOUND,
		    "store: no delivery of that message to %s", recipient);
	if (r != 0)
		goto out;
	if ((r = sq_row_delivery(st, out, why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	if (r != 0)
		store_delivery_clear(out);
	return r;
}

/*
 * A piece of a sealed copy, through SQLite's incremental BLOB I/O, so a
 * fetch holds one piece in memory instead of the whole copy.
 */
static int
store_sqlite_sealed_read(void *h, const char *id, const char *recipient, const char *sha,
    uint64_t offset, uint8_t *out, size_t n, size_t *got, uint64_t *total, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	sqlite3_blob *blob = NULL;
	sqlite3_int64 rowid, len;
	int r, rc;

	*got = 0;
	*total = 0;
	if ((r = sq_stmt(tx->c, SQ_SEALED_LOCATE, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0 ||
	    (r = sq_bind_key(st, 2, recipient, "recipient", why)) != 0 ||
	    (r = sq_bind_key(st, 3, sha, "sealed_sha256", why)) != 0)
		goto out;
	if ((r = sq_step_row(tx->c->db, st, "sealed read", why)) == HEGN_ERR_NOT_FOUND)
		r = why_set(why, HEGN_ERR_NOT_FOUND,
		    "store: the sealed copy for %s is gone or was replaced", recipient);
	if (r != 0)
		goto out;
	rowid = sqlite3_column_int64(st, 0);
	len = sqlite3_column_int64(st, 1);
	if (sqlite3_column_type(st, 1) == SQLITE_NULL || len < 0) {
		r = why_set(why, HEGN_ERR_NOT_FOUND, "store: no sealed copy for %s", recipient);
		goto out;
	}
	if (offset > (uint64_t)len) {
		r = why_set(why, HEGN_ERR_INVALID, "store: offset %llu past the sealed copy's %lld bytes",
		    (unsigned long long)offset, (long long)len);
		goto out;
	}
	*total = (uint64_t)len;
	if (n > (uint64_t)len - offset)
		n = (size_t)((uint64_t)len - offset);
	if (n > INT_MAX)
		n = INT_MAX;
	if (n > 0) {
		if ((rc = sqlite3_blob_open(tx->c->db, "main", "sealed_copies", "sealed", rowid, 0,
		    &blob)) != SQLITE_OK) {
			r = sq_error(tx->c->db, rc, "opening a sealed copy", why);
			goto out;
		}
		if ((rc = sqlite3_blob_read(blob, out, (int)n, (int)offset)) != SQLITE_OK) {
			r = sq_error(tx->c->db, rc, "reading a sealed copy", why);
			goto out;
		}
	}
	*got = n;
	r = 0;
out:
	sqlite3_blob_close(blob);
	sq_done(st);
	if (r != 0)
		*total = 0;
	return r;
}

/* store_delivery_list_free for sq_rows. */
static void
sq_release_deliveries(void *list, size_t n)
{
	store_delivery_list_free(list, n);
}

static int
store_sqlite_delivery_list(void *h, const char *id, struct store_delivery **out, size_t *n,
    struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = sq_stmt(tx->c, SQ_DELIVERY_LIST, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0)
		goto out;
	r = sq_rows(tx, st, sizeof(**out), sq_row_delivery, sq_release_deliveries,
	    "delivery list", (void **)out, n, why);
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_delivery_set_state(void *h, const char *id, const char *recipient,
    const char *state, int64_t at_ms, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "delivery state change", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_DELIVERY_SET_STATE, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0 ||
	    (r = sq_bind_key(st, 2, recipient, "recipient", why)) != 0 ||
	    (r = sq_bind_str(st, 3, state, sizeof(((struct store_delivery *)0)->state),
	    "state", 1, why)) != 0 ||
	    (r = sq_bind_int(st, 4, at_ms, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "delivery state change", why)) != 0)
		goto out;
	if (sqlite3_changes(tx->c->db) == 0) {
		r = why_set(why, HEGN_ERR_NOT_FOUND,
		    "store: no delivery of that message to %s", recipient);
		goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
sq_row_inbox(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_inbox_item *it = elem;
	int r;

	if ((r = SQ_COL_FIELD(st, 0, it, id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 1, it, kind, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, it, from, why)) != 0)
		return r;
	it->seq = sqlite3_column_int64(st, 3);
	it->created_ms = sqlite3_column_int64(st, 4);
	return 0;
}

static int
store_sqlite_inbox(void *h, const char *recipient, int64_t after, size_t limit,
    struct store_inbox_item **out, size_t *n, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if (limit == 0 || limit > STORE_INBOX_MAX)
		limit = STORE_INBOX_MAX;
	if ((r = sq_stmt(tx->c, SQ_INBOX, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, recipient, "recipient", why)) != 0 ||
	    (r = sq_bind_int(st, 2, after, why)) != 0 ||
	    (r = sq_bind_int(st, 3, (int64_t)limit, why)) != 0)
		goto out;
	r = sq_rows(tx, st, sizeof(**out), sq_row_inbox, NULL, "inbox", (void **)out, n, why);
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_event_add(void *h, const struct store_event *e, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "event add", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_EVENT_ADD, &st, why)) != 0)
		goto out;
	if ((r = SQ_BIND_FIELD(st, 1, e, message_id, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, e, recipient, 0, why)) != 0 ||
	    (r = sq_bind_int(st, 3, e->at_ms, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, e, event, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 5, e, actor, 0, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 6, e, detail, 0, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "event add", why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
sq_row_event(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_event *e = elem;
	int r;

	e->id = sqlite3_column_int64(st, 0);
	e->at_ms = sqlite3_column_int64(st, 1);
	if ((r = SQ_COL_FIELD(st, 2, e, message_id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, e, recipient, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 4, e, event, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 5, e, actor, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 6, e, detail, why)) != 0)
		return r;
	return 0;
}

static int
store_sqlite_event_list(void *h, const char *id, struct store_event **out, size_t *n,
    struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = sq_stmt(tx->c, SQ_EVENT_LIST, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0)
		goto out;
	r = sq_rows(tx, st, sizeof(**out), sq_row_event, NULL, "event list", (void **)out, n, why);
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_receipt_insert(void *h, const struct store_receipt *rec, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "receipt insert", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_RECEIPT_INSERT, &st, why)) != 0)
		goto out;
	if ((r = SQ_BIND_FIELD(st, 1, rec, message_id, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, rec, recipient, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, rec, status, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, rec, reason, 0, why)) != 0 ||
	    (r = sq_bind_int(st, 5, rec->received_ms, why)) != 0 ||
	    (r = sq_bind_blob(st, 6, &rec->signed_der, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "receipt insert", why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_receipt_get(void *h, const char *id, const char *recipient,
    struct store_receipt *out, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = sq_stmt(tx->c, SQ_RECEIPT_GET, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0 ||
	    (r = sq_bind_key(st, 2, recipient, "recipient", why)) != 0)
		goto out;
	if ((r = sq_step_row(tx->c->db, st, "receipt get", why)) == HEGN_ERR_NOT_FOUND)
		r = why_set(why, HEGN_ERR_NOT_FOUND,
		    "store: no receipt from %s for that message", recipient);
	if (r != 0)
		goto out;
	if ((r = SQ_COL_FIELD(st, 0, out, message_id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 1, out, recipient, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, out, status, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, out, reason, why)) != 0)
		goto out;
	out->received_ms = sqlite3_column_int64(st, 4);
	if ((r = sq_col_blob(st, 5, &out->signed_der, why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	if (r != 0)
		store_receipt_clear(out);
	return r;
}

/* Bind the fields of a (?2 to ?10; ?1 is the id where a statement uses it). */
static int
sq_bind_assignment(sqlite3_stmt *st, const struct store_assignment *a, struct why *why)
{
	int r;

	if ((r = SQ_BIND_FIELD(st, 2, a, citizen_ref, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, a, provider, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, a, services, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 5, a, from_date, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 6, a, to_date, 0, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 7, a, source, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 8, a, end_reason, 0, why)) != 0 ||
	    (r = sq_bind_int(st, 9, a->created_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 10, a->updated_ms, why)) != 0)
		return r;
	return 0;
}

static int
store_sqlite_assignment_insert(void *h, struct store_assignment *a, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "assignment insert", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_ASSIGNMENT_INSERT, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_assignment(st, a, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "assignment insert", why)) != 0)
		goto out;
	/* The connection is this transaction's alone, so the rowid is ours. */
	a->id = sqlite3_last_insert_rowid(tx->c->db);
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_assignment_update(void *h, const struct store_assignment *a, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "assignment update", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_ASSIGNMENT_UPDATE, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, a->id, why)) != 0 ||
	    (r = sq_bind_assignment(st, a, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "assignment update", why)) != 0)
		goto out;
	if (sqlite3_changes(tx->c->db) == 0) {
		r = why_set(why, HEGN_ERR_NOT_FOUND, "store: no assignment with id %lld",
		    (long long)a->id);
		goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

/* Fill a from a row of the SQ_ASSIGNMENT_COLS columns. */
static int
sq_row_assignment(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_assignment *a = elem;
	int r;

	a->id = sqlite3_column_int64(st, 0);
	if ((r = SQ_COL_FIELD(st, 1, a, citizen_ref, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, a, provider, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, a, services, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 4, a, from_date, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 5, a, to_date, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 6, a, source, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 7, a, end_reason, why)) != 0)
		return r;
	a->created_ms = sqlite3_column_int64(st, 8);
	a->updated_ms = sqlite3_column_int64(st, 9);
	return 0;
}

/* One statement per filter shape, so no SQL is built from strings. */
static int
store_sqlite_assignment_list(void *h, const char *citizen_ref, const char *provider,
    struct store_assignment **out, size_t *n, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if (citizen_ref != NULL) {
		if ((r = sq_stmt(tx->c, SQ_ASSIGNMENT_LIST_CITIZEN, &st, why)) != 0 ||
		    (r = sq_bind_key(st, 1, citizen_ref, "citizen_ref", why)) != 0)
			goto out;
		if (provider != NULL &&
		    (r = sq_bind_key(st, 2, provider, "provider", why)) != 0)
			goto out;
	} else if (provider != NULL) {
		if ((r = sq_stmt(tx->c, SQ_ASSIGNMENT_LIST_PROVIDER, &st, why)) != 0 ||
		    (r = sq_bind_key(st, 1, provider, "provider", why)) != 0)
			goto out;
	} else if ((r = sq_stmt(tx->c, SQ_ASSIGNMENT_LIST_ALL, &st, why)) != 0)
		goto out;
	r = sq_rows(tx, st, sizeof(**out), sq_row_assignment, NULL,
	    "assignment list", (void **)out, n, why);
out:
	sq_done(st);
	return r;
}

/* Bind all columns of u as ?1 to ?9, in SQ_USER_COLS order. */
static int
sq_bind_user(sqlite3_stmt *st, const struct store_user *u, struct why *why)
{
	int r;

	if ((r = SQ_BIND_FIELD(st, 1, u, username, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, u, party, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, u, role, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, u, pw_hash, 1, why)) != 0 ||
	    (r = sq_bind_int(st, 5, u->disabled != 0, why)) != 0 ||
	    (r = sq_bind_int(st, 6, u->failed_logins, why)) != 0 ||
	    (r = sq_bind_int(st, 7, u->locked_until_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 8, u->created_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 9, u->updated_ms, why)) != 0)
		return r;
	return 0;
}

static int
store_sqlite_user_insert(void *h, const struct store_user *u, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "user insert", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_USER_INSERT, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_user(st, u, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "user insert", why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	return r;
}

/* Fill u from a row of the SQ_USER_COLS columns. */
static int
sq_row_user(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_user *u = elem;
	int64_t v;
	int r;

	if ((r = SQ_COL_FIELD(st, 0, u, username, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 1, u, party, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, u, role, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, u, pw_hash, why)) != 0)
		return r;
	u->disabled = sqlite3_column_int64(st, 4) != 0;
	/* An int field: a count it cannot hold is refused, not wrapped. */
	v = sqlite3_column_int64(st, 5);
	if (v < 0 || v > INT_MAX)
		return why_set(why, HEGN_ERR_STORE,
		    "store: column failed_logins holds %lld, which does not fit its field",
		    (long long)v);
	u->failed_logins = (int)v;
	u->locked_until_ms = sqlite3_column_int64(st, 6);
	u->created_ms = sqlite3_column_int64(st, 7);
	u->updated_ms = sqlite3_column_int64(st, 8);
	return 0;
}

static int
store_sqlite_user_get(void *h, const char *username, struct store_user *out, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = sq_stmt(tx->c, SQ_USER_GET, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, username, "username", why)) != 0)
		goto out;
	if ((r = sq_step_row(tx->c->db, st, "user get", why)) == HEGN_ERR_NOT_FOUND)
		r = why_set(why, HEGN_ERR_NOT_FOUND, "store: no user named %s", username);
	if (r != 0)
		goto out;
	if ((r = sq_row_user(st, out, why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

static int
store_sqlite_user_update(void *h, const struct store_user *u, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "user update", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_USER_UPDATE, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_user(st, u, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "user update", why)) != 0)
		goto out;
	if (sqlite3_changes(tx->c->db) == 0) {
		r = why_set(why, HEGN_ERR_NOT_FOUND, "store: no user named %s", u->username);
		goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_user_list(void *h, struct store_user **out, size_t *n, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = sq_stmt(tx->c, SQ_USER_LIST, &st, why)) != 0)
		goto out;
	r = sq_rows(tx, st, sizeof(**out), sq_row_user, NULL, "user list", (void **)out, n, why);
out:
	sq_done(st);
	return r;
}

/* Bind a hash of exactly len bytes. */
static int
sq_bind_fixed(sqlite3_stmt *st, int idx, const uint8_t *p, int len, struct why *why)
{
	int rc;

	if ((rc = sqlite3_bind_blob(st, idx, p, len, SQLITE_STATIC)) != SQLITE_OK)
		return sq_error(sqlite3_db_handle(st), rc, "binding a value", why);
	return 0;
}

/* Copy a blob column that must hold exactly len bytes (a hash) into dst. */
static int
sq_col_fixed(sqlite3_stmt *st, int col, uint8_t *dst, size_t len, struct why *why)
{
	const void *p;
	int n;

	memset(dst, 0, len);
	if (sqlite3_column_type(st, col) != SQLITE_BLOB)
		return why_set(why, HEGN_ERR_STORE, "store: column %s does not hold a blob",
		    sqlite3_column_name(st, col));
	p = sqlite3_column_blob(st, col);
	n = sqlite3_column_bytes(st, col);
	if (p == NULL || n < 0 || (size_t)n != len)
		return why_set(why, HEGN_ERR_STORE, "store: column %s holds %d bytes, not %zu",
		    sqlite3_column_name(st, col), n, len);
	memcpy(dst, p, len);
	return 0;
}

static int
store_sqlite_audit_append(void *h, struct store_audit *e, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int64_t seq;
	int r, rc;

	if ((r = sq_need_write(tx, "audit append", why)) != 0)
		goto out;
	/* TEXT in the table: no NUL inside, or SQLite would keep what C cannot read. */
	if (e->entry.data == NULL || e->entry.len == 0 ||
	    memchr(e->entry.data, '\0', e->entry.len) != NULL) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "store: audit entry is empty or holds a NUL byte");
		goto out;
	}
	if ((r = sq_stmt(tx->c, SQ_AUDIT_APPEND, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 2, e->at_ms, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, e, actor, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, e, action, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 5, e, message_id, 0, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 6, e, citizen_ref, 0, why)) != 0 ||
	    (r = sq_bind_fixed(st, 7, e->leaf_hash, (int)sizeof(e->leaf_hash), why)) != 0)
		goto out;
	if ((rc = sqlite3_bind_text64(st, 8, (const char *)e->entry.data, e->entry.len,
	    SQLITE_STATIC, SQLITE_UTF8)) != SQLITE_OK) {
		r = sq_error(tx->c->db, rc, "binding a value", why);
		goto out;
	}
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = sq_error(tx->c->db, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc,
		    "audit append", why);
		goto out;
	}
	seq = sqlite3_column_int64(st, 0);
	/* The row is written when the statement runs to its end. */
	if ((r = sq_step_done(st, "audit append", why)) != 0)
		goto out;
	e->seq = seq;
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_audit_count(void *h, int64_t *n, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r, rc;

	*n = 0;
	if ((r = sq_stmt(tx->c, SQ_AUDIT_COUNT, &st, why)) != 0)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = sq_error(tx->c->db, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc,
		    "audit count", why);
		goto out;
	}
	*n = sqlite3_column_int64(st, 0);
	r = 0;
out:
	sq_done(st);
	return r;
}

/* Fill e from a row of the SQ_AUDIT_COLS columns. */
static int
sq_row_audit(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_audit *e = elem;
	int r;

	e->seq = sqlite3_column_int64(st, 0);
	e->at_ms = sqlite3_column_int64(st, 1);
	if ((r = SQ_COL_FIELD(st, 2, e, actor, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, e, action, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 4, e, message_id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 5, e, citizen_ref, why)) != 0 ||
	    (r = sq_col_fixed(st, 6, e->leaf_hash, sizeof(e->leaf_hash), why)) != 0)
		return r;
	return sq_col_blob(st, 7, &e->entry, why);
}

/* store_audit_list_free for sq_rows. */
static void
sq_release_audit(void *list, size_t n)
{
	store_audit_list_free(list, n);
}

/* Step a bound audit statement into a list. */
static int
sq_audit_rows(struct sq_tx *tx, sqlite3_stmt *st, const char *what, struct store_audit **out,
    size_t *n, struct why *why)
{
	return sq_rows(tx, st, sizeof(**out), sq_row_audit, sq_release_audit, what, (void **)out, n,
	    why);
}

static int
store_sqlite_audit_range(void *h, int64_t from, size_t limit, struct store_audit **out,
    size_t *n, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if (limit == 0 || limit > STORE_AUDIT_MAX)
		limit = STORE_AUDIT_MAX;
	if ((r = sq_stmt(tx->c, SQ_AUDIT_RANGE, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, from, why)) != 0 ||
	    (r = sq_bind_int(st, 2, (int64_t)limit, why)) != 0)
		goto out;
	r = sq_audit_rows(tx, st, "audit range", out, n, why);
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_audit_query(void *h, const char *citizen_ref, int64_t from_ms, int64_t to_ms,
    struct store_audit **out, size_t *n, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int64_t lo, hi;
	int r;

	*out = NULL;
	*n = 0;
	/* Nothing lies before the smallest time (and to_ms - 1 would overflow). */
	if (to_ms == INT64_MIN) {
		r = 0;
		goto out;
	}
	/* Inclusive bounds for the statement; 0 leaves either end open. */
	lo = from_ms == 0 ? INT64_MIN : from_ms;
	hi = to_ms == 0 ? INT64_MAX : to_ms - 1;
	if ((r = sq_stmt(tx->c, SQ_AUDIT_QUERY, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, citizen_ref, "citizen_ref", why)) != 0 ||
	    (r = sq_bind_int(st, 2, lo, why)) != 0 ||
	    (r = sq_bind_int(st, 3, hi, why)) != 0 ||
	    (r = sq_bind_int(st, 4, STORE_AUDIT_MAX, why)) != 0)
		goto out;
	r = sq_audit_rows(tx, st, "audit query", out, n, why);
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_checkpoint_insert(void *h, const struct store_checkpoint *c, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "checkpoint insert", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_CHECKPOINT_INSERT, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, c->size, why)) != 0 ||
	    (r = sq_bind_int(st, 2, c->at_ms, why)) != 0 ||
	    (r = sq_bind_fixed(st, 3, c->root, (int)sizeof(c->root), why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, c, note, 1, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "checkpoint insert", why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
sq_row_checkpoint(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_checkpoint *c = elem;
	int r;

	c->size = sqlite3_column_int64(st, 0);
	c->at_ms = sqlite3_column_int64(st, 1);
	if ((r = sq_col_fixed(st, 2, c->root, sizeof(c->root), why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, c, note, why)) != 0)
		return r;
	return 0;
}

static int
store_sqlite_checkpoint_list(void *h, struct store_checkpoint **out, size_t *n,
    struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = sq_stmt(tx->c, SQ_CHECKPOINT_LIST, &st, why)) != 0)
		goto out;
	r = sq_rows(tx, st, sizeof(**out), sq_row_checkpoint, NULL,
	    "checkpoint list", (void **)out, n, why);
out:
	sq_done(st);
	return r;
}

/*
 * Drop the content and keep the rows: ids, hashes, states and the delivery
 * log stay as evidence of what was sent.  secure_delete zeroes the freed
 * pages in the database file (docs/store.md says what it cannot reach).
 * The copies go first, while the messages still say which are old.
 */
/* Run q, a purge statement, over the messages created in [from, end) at time now. */
static int
sq_purge_range(struct sq_tx *tx, enum sq_stmt_id q, int64_t from, int64_t end, int64_t now,
    struct why *why)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_stmt(tx->c, q, &st, why)) == 0 && (r = sq_bind_int(st, 1, from, why)) == 0 &&
	    (r = sq_bind_int(st, 2, end, why)) == 0 &&
	    (sqlite3_bind_parameter_count(st) < 3 || (r = sq_bind_int(st, 3, now, why)) == 0))
		r = sq_step_done(st, "content purge", why);
	sq_done(st);
	return r;
}

/*
 * One batch of retention (store.h).  The cursor in counters is the
 * created_ms before which all content is gone already, so a purge never
 * reads the years of rows it emptied before, and one batch holds the write
 * lock for about limit messages however much is due at once (retention
 * switched on over a full store, or hegnd down for a while).
 */
static int
store_sqlite_purge_content(void *h, int64_t before_ms, int64_t now_ms, size_t limit, int64_t *n,
    int64_t *failed, int *more, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int64_t from = 0, end = before_ms;
	int r, rc;

	*n = 0;
	*failed = 0;
	*more = 0;
	if ((r = sq_need_write(tx, "content purge", why)) != 0)
		goto out;
	if (limit == 0 || limit > INT_MAX) {
		r = why_set(why, HEGN_ERR_INVALID, "store: content purge: a batch of %zu", limit);
		goto out;
	}
	if ((r = sq_stmt(tx->c, SQ_PURGE_CURSOR, &st, why)) != 0)
		goto out;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		from = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE) {
		r = sq_error(tx->c->db, rc, "content purge", why);
		goto out;
	}
	sq_done(st);
	st = NULL;
	/* A longer retention than before: what is gone stays gone, the cursor stays. */
	if (from >= before_ms) {
		r = 0;
		goto out;
	}
	if ((r = sq_stmt(tx->c, SQ_PURGE_END, &st, why)) != 0 ||
	    (r = sq_bind_int(st, 1, from, why)) != 0 ||
	    (r = sq_bind_int(st, 2, before_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 3, (int64_t)limit, why)) != 0)
		goto out;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		end = sqlite3_column_int64(st, 0);
		/* More than limit messages in one millisecond: that millisecond whole. */
		if (end == from)
			end = from + 1;
	} else if (rc != SQLITE_DONE) {
		r = sq_error(tx->c->db, rc, "content purge", why);
		goto out;
	}
	sq_done(st);
	st = NULL;
	if ((r = sq_purge_range(tx, SQ_PURGE_FAIL_EVENTS, from, end, now_ms, why)) != 0 ||
	    (r = sq_purge_range(tx, SQ_PURGE_FAIL_COPIES, from, end, now_ms, why)) != 0)
		goto out;
	*failed = sqlite3_changes64(tx->c->db);
	if ((r = sq_purge_range(tx, SQ_PURGE_UNSCHEDULE, from, end, now_ms, why)) != 0 ||
	    (r = sq_purge_range(tx, SQ_PURGE_DELIVERIES, from, end, now_ms, why)) != 0 ||
	    (r = sq_purge_range(tx, SQ_PURGE_MESSAGES, from, end, now_ms, why)) != 0)
		goto out;
	*n = sqlite3_changes64(tx->c->db);
	if ((r = sq_stmt(tx->c, SQ_PURGE_SET_CURSOR, &st, why)) != 0 ||
	    (r = sq_bind_int(st, 1, end, why)) != 0 ||
	    (r = sq_step_done(st, "content purge", why)) != 0)
		goto out;
	*more = end < before_ms;
	r = 0;
out:
	sq_done(st);
	if (r != 0)
		*n = *failed = 0;
	return r;
}

/* Copy a count column into an int field; a value it cannot hold is refused, not wrapped. */
static int
sq_col_count(sqlite3_stmt *st, int col, int *dst, struct why *why)
{
	int64_t v;

	*dst = 0;
	v = sqlite3_column_int64(st, col);
	if (v < 0 || v > INT_MAX)
		return why_set(why, HEGN_ERR_STORE,
		    "store: column %s holds %lld, which does not fit its field",
		    sqlite3_column_name(st, col), (long long)v);
	*dst = (int)v;
	return 0;
}

/* Fill s from a row of the SQ_SCHEDULE_COLS columns. */
static int
sq_row_schedule(sqlite3_stmt *st, void *elem, struct why *why)
{
	struct store_schedule *s = elem;
	int r;

	if ((r = SQ_COL_FIELD(st, 0, s, message_id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 1, s, recipient, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, s, state, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, s, channel, why)) != 0 ||
	    (r = sq_col_count(st, 4, &s->channel_index, why)) != 0 ||
	    (r = sq_col_count(st, 5, &s->attempts, why)) != 0 ||
	    (r = sq_col_count(st, 6, &s->resends, why)) != 0 ||
	    (r = sq_col_count(st, 7, &s->duplicates, why)) != 0)
		return r;
	s->next_ms = sqlite3_column_int64(st, 8);
	s->deadline_ms = sqlite3_column_int64(st, 9);
	s->created_ms = sqlite3_column_int64(st, 10);
	s->delivered_ms = sqlite3_column_int64(st, 11);
	s->acked_ms = sqlite3_column_int64(st, 12);
	if ((r = SQ_COL_FIELD(st, 13, s, fallback_reason, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 14, s, last_error, why)) != 0)
		return r;
	return 0;
}

static int
store_sqlite_schedule_get(void *h, const char *id, const char *recipient,
    struct store_schedule *out, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = sq_stmt(tx->c, SQ_SCHEDULE_GET, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_key(st, 1, id, "message id", why)) != 0 ||
	    (r = sq_bind_key(st, 2, recipient, "recipient", why)) != 0)
		goto out;
	if ((r = sq_step_row(tx->c->db, st, "schedule get", why)) == HEGN_ERR_NOT_FOUND)
		r = why_set(why, HEGN_ERR_NOT_FOUND,
		    "store: no delivery of that message to %s", recipient);
	if (r != 0)
		goto out;
	if ((r = sq_row_schedule(st, out, why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

static int
store_sqlite_schedule_update(void *h, const struct store_schedule *s, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "schedule update", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_SCHEDULE_UPDATE, &st, why)) != 0)
		goto out;
	if ((r = SQ_BIND_FIELD(st, 1, s, message_id, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, s, recipient, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, s, state, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, s, channel, 0, why)) != 0 ||
	    (r = sq_bind_int(st, 5, s->channel_index, why)) != 0 ||
	    (r = sq_bind_int(st, 6, s->attempts, why)) != 0 ||
	    (r = sq_bind_int(st, 7, s->resends, why)) != 0 ||
	    (r = sq_bind_int(st, 8, s->duplicates, why)) != 0 ||
	    (r = sq_bind_int(st, 9, s->next_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 10, s->deadline_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 11, s->delivered_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 12, s->acked_ms, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 13, s, fallback_reason, 0, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 14, s, last_error, 0, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "schedule update", why)) != 0)
		goto out;
	if (sqlite3_changes(tx->c->db) == 0) {
		r = why_set(why, HEGN_ERR_NOT_FOUND,
		    "store: no delivery of that message to %s", s->recipient);
		goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_schedule_due(void *h, int64_t now_ms, size_t limit, struct store_schedule **out,
    size_t *n, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if (limit == 0 || limit > STORE_SCHEDULE_MAX)
		limit = STORE_SCHEDULE_MAX;
	if ((r = sq_stmt(tx->c, SQ_SCHEDULE_DUE, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, now_ms, why)) != 0 ||
	    (r = sq_bind_int(st, 2, (int64_t)limit, why)) != 0)
		goto out;
	r = sq_rows(tx, st, sizeof(**out), sq_row_schedule, NULL,
	    "schedule due", (void **)out, n, why);
out:
	sq_done(st);
	return r;
}

/*
 * The cached statement id for a streaming call.  A callback that called
 * the same function again on this transaction would reset the statement
 * under the outer loop; that is refused, and *out stays NULL so the
 * caller's cleanup leaves the outer statement alone.
 */
static int
sq_stmt_stream(struct sq_conn *c, enum sq_stmt_id id, const char *what, sqlite3_stmt **out,
    struct why *why)
{
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	if ((r = sq_stmt(c, id, &st, why)) != 0)
		return r;
	if (sqlite3_stmt_busy(st))
		return why_set(why, HEGN_ERR_INTERNAL,
		    "store: %s called from its own callback", what);
	*out = st;
	return 0;
}

/* Inclusive bounds for [from_ms, to_ms) with 0 leaving an end open; 0 when empty. */
static int
sq_window(int64_t from_ms, int64_t to_ms, int64_t *lo, int64_t *hi)
{
	/* Nothing lies before the smallest time (and to_ms - 1 would overflow). */
	if (to_ms == INT64_MIN)
		return 0;
	*lo = from_ms == 0 ? INT64_MIN : from_ms;
	*hi = to_ms == 0 ? INT64_MAX : to_ms - 1;
	return 1;
}

/*
 * Rows go to fn as they are stepped, one record on the stack: a report over
 * years of copies never holds more than one in memory.
 */
static int
store_sqlite_outcomes(void *h, int64_t from_ms, int64_t to_ms, store_outcome_fn fn,
    void *arg, struct why *why)
{
	struct sq_tx *tx = h;
	struct store_outcome o;
	sqlite3_stmt *st = NULL;
	int64_t lo, hi;
	int r, rc;

	if (!sq_window(from_ms, to_ms, &lo, &hi)) {
		r = 0;
		goto out;
	}
	if ((r = sq_stmt_stream(tx->c, SQ_OUTCOMES, "outcomes", &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, lo, why)) != 0 ||
	    (r = sq_bind_int(st, 2, hi, why)) != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&o, 0, sizeof(o));
		if ((r = SQ_COL_FIELD(st, 0, &o, message_id, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 1, &o, recipient, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 2, &o, sender, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 3, &o, kind, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 4, &o, state, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 5, &o, channel, why)) != 0 ||
		    (r = sq_col_count(st, 6, &o.resends, why)) != 0 ||
		    (r = sq_col_count(st, 7, &o.duplicates, why)) != 0)
			goto out;
		o.created_ms = sqlite3_column_int64(st, 8);
		o.delivered_ms = sqlite3_column_int64(st, 9);
		o.acked_ms = sqlite3_column_int64(st, 10);
		if ((r = SQ_COL_FIELD(st, 11, &o, fallback_reason, why)) != 0)
			goto out;
		if ((r = fn(&o, arg)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = sq_error(tx->c->db, rc, "outcomes", why);
		goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_external_insert(void *h, struct store_external *e, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "external communication insert", why)) != 0)
		goto out;
	if ((r = sq_stmt(tx->c, SQ_EXTERNAL_INSERT, &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, e->at_ms, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, e, party, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, e, kind, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, e, channel, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 5, e, direction, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 6, e, reason, 0, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 7, e, registered_by, 1, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "external communication insert", why)) != 0)
		goto out;
	/* The connection is this transaction's alone, so the rowid is ours. */
	e->id = sqlite3_last_insert_rowid(tx->c->db);
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_external_list(void *h, int64_t from_ms, int64_t to_ms, store_external_fn fn,
    void *arg, struct why *why)
{
	struct sq_tx *tx = h;
	struct store_external e;
	sqlite3_stmt *st = NULL;
	int64_t lo, hi;
	int r, rc;

	if (!sq_window(from_ms, to_ms, &lo, &hi)) {
		r = 0;
		goto out;
	}
	if ((r = sq_stmt_stream(tx->c, SQ_EXTERNAL_LIST, "external communication list",
	    &st, why)) != 0)
		goto out;
	if ((r = sq_bind_int(st, 1, lo, why)) != 0 ||
	    (r = sq_bind_int(st, 2, hi, why)) != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		e.id = sqlite3_column_int64(st, 0);
		e.at_ms = sqlite3_column_int64(st, 1);
		if ((r = SQ_COL_FIELD(st, 2, &e, party, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 3, &e, kind, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 4, &e, channel, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 5, &e, direction, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 6, &e, reason, why)) != 0 ||
		    (r = SQ_COL_FIELD(st, 7, &e, registered_by, why)) != 0)
			goto out;
		if ((r = fn(&e, arg)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = sq_error(tx->c->db, rc, "external communication list", why);
		goto out;
	}
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_queue_stats(void *h, int64_t *depth, int64_t *oldest_ms, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r, rc;

	*depth = 0;
	*oldest_ms = 0;
	if ((r = sq_stmt(tx->c, SQ_QUEUE_STATS, &st, why)) != 0)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = sq_error(tx->c->db, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc,
		    "queue stats", why);
		goto out;
	}
	*depth = sqlite3_column_int64(st, 0);
	*oldest_ms = sqlite3_column_int64(st, 1);
	r = 0;
out:
	sq_done(st);
	return r;
}

int
store_sqlite_pragma(struct store_tx *stx, const char *name, char *out, size_t outlen,
    struct why *why)
{
	struct sq_tx *tx = store_tx_impl(stx, &store_backend_sqlite);
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	char sql[64];
	size_t i;
	int r, rc;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (tx == NULL || name == NULL || out == NULL || outlen == 0) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "store: no sqlite transaction to read a pragma in");
		goto out;
	}
	for (i = 0; name[i] != '\0'; i++) {
		if ((name[i] < 'a' || name[i] > 'z') && name[i] != '_')
			break;
	}
	if (i == 0 || name[i] != '\0' || i > 40) {
		r = why_set(why, HEGN_ERR_INVALID, "store: not a pragma name");
		goto out;
	}
	snprintf(sql, sizeof(sql), "PRAGMA %s", name);
	if ((rc = sqlite3_prepare_v2(tx->c->db, sql, -1, &st, NULL)) != SQLITE_OK) {
		r = sq_error(tx->c->db, rc, "reading a pragma", why);
		goto out;
	}
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = sq_error(tx->c->db, rc == SQLITE_DONE ? SQLITE_ERROR : rc,
		    "reading a pragma", why);
		goto out;
	}
	t = sqlite3_column_text(st, 0);
	if (t == NULL || strlen((const char *)t) >= outlen) {
		r = why_set(why, HEGN_ERR_STORE, "store: pragma %s has no value that fits", name);
		goto out;
	}
	memcpy(out, t, strlen((const char *)t) + 1);
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/* --- MedCom de-duplication (migration 4, issue 7) --- */

static int
store_sqlite_medcom_insert(void *h, const struct store_medcom *m, struct why *why)
{
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = sq_need_write(tx, "medcom insert", why)) != 0)
		goto out;
	if (m->ack.data == NULL || m->ack.len == 0) {
		r = why_set(why, HEGN_ERR_INVALID, "store: ack is empty");
		goto out;
	}
	if ((r = sq_stmt(tx->c, SQ_MEDCOM_INSERT, &st, why)) != 0)
		goto out;
	if ((r = SQ_BIND_FIELD(st, 1, m, sender, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 2, m, bundle_id, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 3, m, header_id, 1, why)) != 0 ||
	    (r = SQ_BIND_FIELD(st, 4, m, message_id, 1, why)) != 0 ||
	    (r = sq_bind_int(st, 5, m->received_ms, why)) != 0 ||
	    (r = sq_bind_blob(st, 6, &m->ack, why)) != 0)
		goto out;
	if ((r = sq_step_done(st, "medcom insert", why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	return r;
}

static int
store_sqlite_medcom_get(void *h, enum store_medcom_key key, const char *sender,
    const char *value, struct store_medcom *out, struct why *why)
{
	static const enum sq_stmt_id stmt[] = {
		[STORE_MEDCOM_BY_BUNDLE] = SQ_MEDCOM_BY_BUNDLE,
		[STORE_MEDCOM_BY_HEADER] = SQ_MEDCOM_BY_HEADER,
		[STORE_MEDCOM_BY_MESSAGE] = SQ_MEDCOM_BY_MESSAGE,
	};
	struct sq_tx *tx = h;
	sqlite3_stmt *st = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((int)key < 0 || (size_t)key >= sizeof(stmt) / sizeof(stmt[0]) || value == NULL ||
	    (sender == NULL && key != STORE_MEDCOM_BY_MESSAGE)) {
		r = why_set(why, HEGN_ERR_INTERNAL, "store: medcom get with a missing argument");
		goto out;
	}
	/* Prepared once per connection: every hegn receipt asks whether its message was MedCom. */
	if ((r = sq_stmt(tx->c, stmt[key], &st, why)) != 0)
		goto out;
	if ((sender != NULL && (r = sq_bind_key(st, 1, sender, "sender", why)) != 0) ||
	    (r = sq_bind_key(st, 2, value, "medcom id", why)) != 0)
		goto out;
	if ((r = sq_step_row(tx->c->db, st, "medcom get", why)) == HEGN_ERR_NOT_FOUND)
		r = why_set(why, HEGN_ERR_NOT_FOUND, "store: no such MedCom message");
	if (r != 0)
		goto out;
	if ((r = SQ_COL_FIELD(st, 0, out, sender, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 1, out, bundle_id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 2, out, header_id, why)) != 0 ||
	    (r = SQ_COL_FIELD(st, 3, out, message_id, why)) != 0)
		goto out;
	out->received_ms = sqlite3_column_int64(st, 4);
	if ((r = sq_col_blob(st, 5, &out->ack, why)) != 0)
		goto out;
	r = 0;
out:
	sq_done(st);
	if (r != 0)
		store_medcom_clear(out);
	return r;
}

const struct store_backend store_backend_sqlite = {
	.name = "sqlite",
	.open = store_sqlite_open,
	.close = store_sqlite_close,
	.schema_version = store_sqlite_schema_version,
	.begin = store_sqlite_begin,
	.commit = store_sqlite_commit,
	.rollback = store_sqlite_rollback,
	.sync_snapshots = store_sqlite_sync_snapshots,
	.message_insert = store_sqlite_message_insert,
	.message_get = store_sqlite_message_get,
	.spill_open = store_sqlite_spill_open,
	.delivery_insert = store_sqlite_delivery_insert,
	.delivery_get = store_sqlite_delivery_get,
	.sealed_read = store_sqlite_sealed_read,
	.delivery_list = store_sqlite_delivery_list,
	.delivery_set_state = store_sqlite_delivery_set_state,
	.inbox = store_sqlite_inbox,
	.event_add = store_sqlite_event_add,
	.event_list = store_sqlite_event_list,
	.receipt_insert = store_sqlite_receipt_insert,
	.receipt_get = store_sqlite_receipt_get,
	.assignment_insert = store_sqlite_assignment_insert,
	.assignment_update = store_sqlite_assignment_update,
	.assignment_list = store_sqlite_assignment_list,
	.user_insert = store_sqlite_user_insert,
	.user_get = store_sqlite_user_get,
	.user_update = store_sqlite_user_update,
	.user_list = store_sqlite_user_list,
	.audit_append = store_sqlite_audit_append,
	.audit_count = store_sqlite_audit_count,
	.audit_range = store_sqlite_audit_range,
	.audit_query = store_sqlite_audit_query,
	.checkpoint_insert = store_sqlite_checkpoint_insert,
	.checkpoint_list = store_sqlite_checkpoint_list,
	.purge_content = store_sqlite_purge_content,
	.schedule_get = store_sqlite_schedule_get,
	.schedule_update = store_sqlite_schedule_update,
	.schedule_due = store_sqlite_schedule_due,
	.outcomes = store_sqlite_outcomes,
	.external_insert = store_sqlite_external_insert,
	.external_list = store_sqlite_external_list,
	.queue_stats = store_sqlite_queue_stats,
	.medcom_insert = store_sqlite_medcom_insert,
	.medcom_get = store_sqlite_medcom_get,
};
