#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "store.h"
#include "store_sqlite.h"
#include "testlib.h"
#include "util.h"

/* The directory every test of a case works under; removed by the fixture. */
static char base[] = "/tmp/hegn-test-store-XXXXXX";

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
base_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/hegn-test-store-XXXXXX");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void
base_teardown(void)
{
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh database path under base for the calling test. */
static void
db_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s-%ld.db", base, name, (long)getpid());
}

static struct store *
open_ok(const char *path)
{
	struct store *s = NULL;
	struct why why = { 0 };
	int r;

	r = store_open(path, &s, &why);
	ck_assert_msg(r == 0, "store_open: %s", why.text);
	ck_assert_ptr_nonnull(s);
	return s;
}

static struct store_tx *
begin_ok(struct store *s, int write)
{
	struct store_tx *tx = NULL;
	struct why why = { 0 };

	ck_assert_msg(store_begin(s, write, &tx, &why) == 0, "begin: %s", why.text);
	return tx;
}

static void
commit_ok(struct store_tx *tx)
{
	struct why why = { 0 };

	ck_assert_msg(store_commit(tx, &why) == 0, "commit: %s", why.text);
}

static void
fill_message(struct store_message *m, const char *id, const char *sender)
{
	static const uint8_t der[] = { 0x30, 0x00, 0x82, 0x00, 0x00, 0xff, 0x00 };

	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->sender, sizeof(m->sender), "%s", sender);
	snprintf(m->kind, sizeof(m->kind), "referral");
	util_sha256_hex(id, strlen(id), m->content_sha256);
	util_sha256_hex("citizen", 7, m->citizen_ref);
	m->created_ms = 1795772760000LL;
	m->deadline_ms = 1795776360000LL;
	/* Points at static memory: inserts only read it. */
	m->signed_der.data = (uint8_t *)der;
	m->signed_der.len = sizeof(der);
}

static void
fill_delivery(struct store_delivery *d, const char *id, const char *recipient)
{
	static const uint8_t sealed[] = { 0x00, 0x00, 0x30, 0x80, 0x00, 0x01 };

	memset(d, 0, sizeof(*d));
	snprintf(d->message_id, sizeof(d->message_id), "%s", id);
	snprintf(d->recipient, sizeof(d->recipient), "%s", recipient);
	snprintf(d->state, sizeof(d->state), STORE_STATE_SUBMITTED);
	snprintf(d->channel, sizeof(d->channel), "pull");
	d->seq = 424242;  /* ignored: the store assigns it */
	d->updated_ms = 1795772761000LL;
	util_sha256_hex(sealed, sizeof(sealed), d->sealed_sha256);
	d->sealed.data = (uint8_t *)sealed;
	d->sealed.len = sizeof(sealed);
}

/* Insert one message with a delivery to recipient in its own transaction. */
static void
put_message(struct store *s, const char *id, const char *recipient)
{
	struct store_message m;
	struct store_delivery d;
	struct store_tx *tx = begin_ok(s, 1);
	struct why why = { 0 };

	fill_message(&m, id, "ringsted-visitation");
	fill_delivery(&d, id, recipient);
	ck_assert_msg(store_message_insert(tx, &m, &why) == 0, "%s", why.text);
	ck_assert_msg(store_delivery_insert(tx, &d, &why) == 0, "%s", why.text);
	commit_ok(tx);
}

static int
message_exists(struct store *s, const char *id)
{
	struct store_message m;
	struct store_tx *tx = begin_ok(s, 0);
	int r;

	r = store_message_get(tx, id, 0, &m, NULL);
	store_message_clear(&m);
	commit_ok(tx);
	ck_assert(r == 0 || r == HEGN_ERR_NOT_FOUND);
	return r == 0;
}

/* One integer from sql on a separate, raw connection to path. */
static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	    NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	sqlite3_close(db);
}

START_TEST(test_open_creates_and_migrates)
{
	char path[512], loc[600], wal[600];
	struct store *s;
	struct stat st;

	db_path(path, sizeof(path), "open");
	snprintf(loc, sizeof(loc), "sqlite:%s", path);
	s = open_ok(loc);
	ck_assert_int_eq(store_schema_version(s), 6);
	ck_assert_int_eq(store_schema_version(s), store_sqlite_schema_latest());
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	put_message(s, "m-1", "hovmand-care");
	/* SQLite gives the log the database's mode. */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	ck_assert_int_eq(stat(wal, &st), 0);
	ck_assert_int_eq(st.st_mode & 077, 0);
	ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 6);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	    " AND name IN ('messages', 'deliveries', 'events', 'receipts', 'assignments',"
	    " 'users', 'audit', 'checkpoints', 'external_comms')"), 9);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
	    " AND tbl_name = 'audit'"), 3);
	store_close(s);

	/* Reopened by bare path: same version, data kept, no second migration. */
	s = open_ok(path);
	ck_assert_int_eq(store_schema_version(s), 6);
	ck_assert(message_exists(s, "m-1"));
	ck_assert(!message_exists(s, "m-2"));
	store_close(s);
	ck_assert_int_eq(raw_int(path,
	    "SELECT value FROM counters WHERE name = 'delivery_seq'"), 1);
}
END_TEST

START_TEST(test_open_refusals)
{
	char path[512], loc[600];
	struct store *s = (struct store *)&s;
	struct why why = { 0 };
	int fd;

	/* A database from a newer hegn is refused and left as it was. */
	db_path(path, sizeof(path), "newer");
	raw_exec(path, "PRAGMA user_version = 999; CREATE TABLE future (x)");
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(store_open(path, &s, &why), HEGN_ERR_STORE);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(strstr(why.text, "999"));
	ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 999);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_master"), 1);

	/* Not a database at all. */
	db_path(path, sizeof(path), "garbage");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(write(fd, "this is not an SQLite file....\n", 32), 32);
	close(fd);
	why_clear(&why);
	ck_assert_int_eq(store_open(path, &s, &why), HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "store:"));

	/* Readable by others: refused before SQLite sees it. */
	db_path(path, sizeof(path), "open-mode");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	close(fd);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(store_open(path, &s, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "0644"));

	/* A directory that does not exist. */
	snprintf(path, sizeof(path), "%s/no/such/dir.db", base);
	ck_assert_int_eq(store_open(path, &s, &why), HEGN_ERR_IO);

	/* Unknown back ends and empty locations. */
	snprintf(loc, sizeof(loc), "postgres:%s/x.db", base);
	ck_assert_int_eq(store_open(loc, &s, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "postgres"));
	ck_assert_int_eq(store_open("sqlite:", &s, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_open("", &s, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_open(NULL, &s, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(s);
	store_close(NULL);

	/* A path with a colon after a slash is a path, not a scheme. */
	snprintf(path, sizeof(path), "%s/with:colon.db", base);
	s = open_ok(path);
	store_close(s);
}
END_TEST

START_TEST(test_round_trips)
{
	static const uint8_t rder[] = { 0x00, 0x30, 0x00, 0x00, 0x7f };
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_message m, mo;
	struct store_delivery d, d2, dout, *list = NULL;
	struct store_event e, *ev = NULL;
	struct store_receipt rc, ro;
	struct why why = { 0 };
	size_t n;

	db_path(path, sizeof(path), "rt");
	s = open_ok(path);
	fill_message(&m, "m-rt", "ringsted-visitation");
	fill_delivery(&d, "m-rt", "ringsted-homecare");
	fill_delivery(&d2, "m-rt", "hovmand-care");
	d2.sealed.data = NULL;
	d2.sealed.len = 0;
	memset(&e, 0, sizeof(e));
	snprintf(e.message_id, sizeof(e.message_id), "m-rt");
	snprintf(e.event, sizeof(e.event), "submitted");
	snprintf(e.actor, sizeof(e.actor), "ringsted-visitation");
	snprintf(e.detail, sizeof(e.detail), "kind referral");
	e.at_ms = 5;
	memset(&rc, 0, sizeof(rc));
	snprintf(rc.message_id, sizeof(rc.message_id), "m-rt");
	snprintf(rc.recipient, sizeof(rc.recipient), "ringsted-homecare");
	snprintf(rc.status, sizeof(rc.status), "rejected");
	snprintf(rc.reason, sizeof(rc.reason), "unknown citizen");
	rc.received_ms = 77;
	rc.signed_der.data = (uint8_t *)rder;
	rc.signed_der.len = sizeof(rder);

	tx = begin_ok(s, 1);
	ck_assert_msg(store_message_insert(tx, &m, &why) == 0, "%s", why.text);
	ck_assert_msg(store_delivery_insert(tx, &d, &why) == 0, "%s", why.text);
	ck_assert_msg(store_delivery_insert(tx, &d2, &why) == 0, "%s", why.text);
	ck_assert_msg(store_event_add(tx, &e, &why) == 0, "%s", why.text);
	ck_assert_msg(store_receipt_insert(tx, &rc, &why) == 0, "%s", why.text);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	/* Junk in the output record must not survive the reset. */
	memset(&mo, 'x', sizeof(mo));
	mo.signed_der.data = NULL;
	ck_assert_int_eq(store_message_get(tx, "m-rt", 1, &mo, &why), 0);
	ck_assert_str_eq(mo.id, m.id);
	ck_assert_str_eq(mo.sender, m.sender);
	ck_assert_str_eq(mo.kind, m.kind);
	ck_assert_str_eq(mo.content_sha256, m.content_sha256);
	ck_assert_str_eq(mo.citizen_ref, m.citizen_ref);
	ck_assert_int_eq(mo.created_ms, m.created_ms);
	ck_assert_int_eq(mo.deadline_ms, m.deadline_ms);
	ck_assert_uint_eq(mo.signed_der.len, m.signed_der.len);
	ck_assert_mem_eq(mo.signed_der.data, m.signed_der.data, m.signed_der.len);
	store_message_clear(&mo);
	ck_assert_ptr_null(mo.signed_der.data);
	ck_assert_int_eq(store_message_get(tx, "m-rt", 0, &mo, &why), 0);
	ck_assert_ptr_null(mo.signed_der.data);
	ck_assert_uint_eq(mo.signed_der.len, 0);
	ck_assert_str_eq(mo.sender, m.sender);
	store_message_clear(&mo);

	ck_assert_int_eq(store_delivery_get(tx, "m-rt", "ringsted-homecare", 1, &dout, &why), 0);
	ck_assert_str_eq(dout.message_id, "m-rt");
	ck_assert_str_eq(dout.recipient, "ringsted-homecare");
	ck_assert_str_eq(dout.state, STORE_STATE_SUBMITTED);
	ck_assert_str_eq(dout.channel, "pull");
	ck_assert_str_eq(dout.sealed_sha256, d.sealed_sha256);
	ck_assert_int_eq(dout.updated_ms, d.updated_ms);
	ck_assert_int_eq(dout.seq, 1);
	ck_assert_uint_eq(dout.sealed.len, d.sealed.len);
	ck_assert_mem_eq(dout.sealed.data, d.sealed.data, d.sealed.len);
	store_delivery_clear(&dout);
	ck_assert_int_eq(store_delivery_get(tx, "m-rt", "hovmand-care", 1, &dout, &why), 0);
	ck_assert_int_eq(dout.seq, 2);
	ck_assert_uint_eq(dout.sealed.len, 0);
	store_delivery_clear(&dout);

	/* Recipient order, no blobs. */
	ck_assert_int_eq(store_delivery_list(tx, "m-rt", &list, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].recipient, "hovmand-care");
	ck_assert_str_eq(list[1].recipient, "ringsted-homecare");
	ck_assert_ptr_null(list[1].sealed.data);
	store_delivery_list_free(list, n);
	ck_assert_int_eq(store_delivery_list(tx, "m-none", &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);

	ck_assert_int_eq(store_event_list(tx, "m-rt", &ev, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_gt(ev[0].id, 0);
	ck_assert_str_eq(ev[0].event, "submitted");
	ck_assert_str_eq(ev[0].actor, "ringsted-visitation");
	ck_assert_str_eq(ev[0].recipient, "");
	ck_assert_str_eq(ev[0].detail, "kind referral");
	ck_assert_int_eq(ev[0].at_ms, 5);
	free(ev);

	ck_assert_int_eq(store_receipt_get(tx, "m-rt", "ringsted-homecare", &ro, &why), 0);
	ck_assert_str_eq(ro.status, "rejected");
	ck_assert_str_eq(ro.reason, "unknown citizen");
	ck_assert_int_eq(ro.received_ms, 77);
	ck_assert_uint_eq(ro.signed_der.len, sizeof(rder));
	ck_assert_mem_eq(ro.signed_der.data, rder, sizeof(rder));
	store_receipt_clear(&ro);

	/* Absent records. */
	ck_assert_int_eq(store_message_get(tx, "m-none", 1, &mo, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(store_delivery_get(tx, "m-rt", "region-hospital", 1, &dout, &why),
	    HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(store_receipt_get(tx, "m-rt", "hovmand-care", &ro, &why),
	    HEGN_ERR_NOT_FOUND);
	/* A key longer than any stored one is refused, not truncated into a match. */
	ck_assert_int_eq(store_message_get(tx, "m-rtaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1, &mo, &why), HEGN_ERR_INVALID);
	/* Writes are refused in a read transaction. */
	ck_assert_int_eq(store_message_insert(tx, &m, &why), HEGN_ERR_INTERNAL);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-rt", "hovmand-care",
	    STORE_STATE_DELIVERED, 1, &why), HEGN_ERR_INTERNAL);
	commit_ok(tx);
	/* A second write transaction in the same thread fails at once. */
	tx = begin_ok(s, 1);
	{
		struct store_tx *tx2 = (struct store_tx *)&tx2;

		ck_assert_int_eq(store_begin(s, 1, &tx2, &why), HEGN_ERR_INTERNAL);
		ck_assert_ptr_null(tx2);
	}
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_conflicts_and_rollback)
{
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_message m;
	struct store_delivery d;
	struct store_receipt rc;
	struct why why = { 0 };

	db_path(path, sizeof(path), "conflict");
	s = open_ok(path);
	put_message(s, "m-1", "hovmand-care");

	/* Duplicate id. */
	tx = begin_ok(s, 1);
	fill_message(&m, "m-1", "ringsted-homecare");
	ck_assert_int_eq(store_message_insert(tx, &m, &why), HEGN_ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(why.text, "store: message insert failed"));
	store_rollback(tx);

	/* Message and a duplicate delivery: rolled back, nothing partial remains. */
	tx = begin_ok(s, 1);
	fill_message(&m, "m-2", "ringsted-visitation");
	fill_delivery(&d, "m-2", "hovmand-care");
	ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), 0);
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), HEGN_ERR_CONFLICT);
	store_rollback(tx);
	ck_assert(!message_exists(s, "m-2"));

	/* A delivery of a message that does not exist. */
	tx = begin_ok(s, 1);
	fill_message(&m, "m-3", "ringsted-visitation");
	fill_delivery(&d, "m-absent", "hovmand-care");
	ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), HEGN_ERR_NOT_FOUND);
	store_rollback(tx);
	ck_assert(!message_exists(s, "m-3"));

	/* Rollback discards; a commit after a rollback is a new transaction. */
	tx = begin_ok(s, 1);
	fill_message(&m, "m-4", "ringsted-visitation");
	ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
	store_rollback(tx);
	store_rollback(NULL);
	ck_assert(!message_exists(s, "m-4"));

	/* Bad fields. */
	tx = begin_ok(s, 1);
	fill_message(&m, "m-5", "ringsted-visitation");
	memset(m.kind, 'k', sizeof(m.kind));
	ck_assert_int_eq(store_message_insert(tx, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "kind"));
	fill_message(&m, "", "ringsted-visitation");
	ck_assert_int_eq(store_message_insert(tx, &m, &why), HEGN_ERR_INVALID);
	fill_delivery(&d, "m-1", "ringsted-homecare");
	snprintf(d.state, sizeof(d.state), "lost");
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), HEGN_ERR_INVALID);
	memset(d.state, 's', sizeof(d.state));
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), HEGN_ERR_INVALID);

	/* Receipts: one per delivery, and only for a delivery that exists. */
	memset(&rc, 0, sizeof(rc));
	snprintf(rc.message_id, sizeof(rc.message_id), "m-1");
	snprintf(rc.recipient, sizeof(rc.recipient), "hovmand-care");
	snprintf(rc.status, sizeof(rc.status), "accepted");
	ck_assert_int_eq(store_receipt_insert(tx, &rc, &why), 0);
	ck_assert_int_eq(store_receipt_insert(tx, &rc, &why), HEGN_ERR_CONFLICT);
	snprintf(rc.recipient, sizeof(rc.recipient), "ringsted-homecare");
	ck_assert_int_eq(store_receipt_insert(tx, &rc, &why), HEGN_ERR_NOT_FOUND);
	snprintf(rc.recipient, sizeof(rc.recipient), "hovmand-care");
	snprintf(rc.status, sizeof(rc.status), "maybe");
	snprintf(rc.message_id, sizeof(rc.message_id), "m-other");
	ck_assert_int_eq(store_receipt_insert(tx, &rc, &why), HEGN_ERR_INVALID);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_receipt_get(tx, "m-1", "hovmand-care", &rc, &why), 0);
	ck_assert_str_eq(rc.status, "accepted");
	ck_assert_uint_eq(rc.signed_der.len, 0);
	store_receipt_clear(&rc);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_too_long_in_database)
{
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_message m;
	struct why why = { 0 };

	db_path(path, sizeof(path), "long");
	s = open_ok(path);
	store_close(s);
	/* Another writer put a sender in that does not fit the field. */
	raw_exec(path, "INSERT INTO messages (id, sender, kind, content_sha256, citizen_ref,"
	    " created_ms, deadline_ms, signed_der) VALUES ('m-long', printf('%.100c', 'x'),"
	    " 'referral', '', '', 1, 0, x'0001')");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(store_message_get(tx, "m-long", 1, &m, &why), HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "sender"));
	ck_assert_ptr_null(m.signed_der.data);
	ck_assert_str_eq(m.id, "");
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_inbox)
{
	char path[512], id[32];
	struct store *s;
	struct store_tx *tx;
	struct store_inbox_item *it = NULL;
	struct store_delivery d;
	struct store_message m;
	struct why why = { 0 };
	size_t n;
	int i;

	db_path(path, sizeof(path), "inbox");
	s = open_ok(path);
	for (i = 1; i <= 5; i++) {
		snprintf(id, sizeof(id), "m-%d", i);
		put_message(s, id, "hovmand-care");
		if (i == 3)
			put_message(s, "m-other", "ringsted-homecare");
	}

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_inbox(tx, "hovmand-care", 0, 100, &it, &n, &why), 0);
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "m-%d", i + 1);
		ck_assert_str_eq(it[i].id, id);
		ck_assert_str_eq(it[i].kind, "referral");
		ck_assert_str_eq(it[i].from, "ringsted-visitation");
		ck_assert_int_eq(it[i].created_ms, 1795772760000LL);
		if (i > 0)
			ck_assert_int_gt(it[i].seq, it[i - 1].seq);
	}
	/* The copy for the other recipient took a number between them. */
	ck_assert_int_eq(it[3].seq - it[2].seq, 2);
	/* Cursor: after the second. */
	{
		int64_t after = it[1].seq;

		free(it);
		ck_assert_int_eq(store_inbox(tx, "hovmand-care", after, 100, &it, &n, &why), 0);
	}
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(it[0].id, "m-3");
	free(it);
	/* Limit. */
	ck_assert_int_eq(store_inbox(tx, "hovmand-care", 0, 2, &it, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(it[1].id, "m-2");
	free(it);
	/* Nobody's inbox: an empty answer is a NULL array. */
	ck_assert_int_eq(store_inbox(tx, "region-hospital", 0, 10, &it, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(it);
	store_rollback(tx);

	/* Acknowledged and delivered copies leave the inbox. */
	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-2", "hovmand-care",
	    STORE_STATE_ACKNOWLEDGED, 99, &why), 0);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-4", "hovmand-care",
	    STORE_STATE_DELIVERED, 99, &why), 0);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-9", "hovmand-care",
	    STORE_STATE_DELIVERED, 99, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-1", "region-hospital",
	    STORE_STATE_DELIVERED, 99, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-1", "hovmand-care",
	    "gone", 99, &why), HEGN_ERR_INVALID);
	commit_ok(tx);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_inbox(tx, "hovmand-care", 0, 100, &it, &n, &why), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(it[0].id, "m-1");
	ck_assert_str_eq(it[1].id, "m-3");
	ck_assert_str_eq(it[2].id, "m-5");
	free(it);
	ck_assert_int_eq(store_delivery_get(tx, "m-2", "hovmand-care", 0, &d, &why), 0);
	ck_assert_str_eq(d.state, STORE_STATE_ACKNOWLEDGED);
	ck_assert_int_eq(d.updated_ms, 99);
	store_delivery_clear(&d);
	store_rollback(tx);

	/* The cap: 1000 per call whatever the caller asks for. */
	tx = begin_ok(s, 1);
	for (i = 0; i < 1005; i++) {
		snprintf(id, sizeof(id), "bulk-%04d", i);
		fill_message(&m, id, "region-hospital");
		fill_delivery(&d, id, "ringsted-homecare");
		ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
		ck_assert_int_eq(store_delivery_insert(tx, &d, &why), 0);
	}
	commit_ok(tx);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_inbox(tx, "ringsted-homecare", 0, 5000, &it, &n, &why), 0);
	ck_assert_uint_eq(n, STORE_INBOX_MAX);
	ck_assert_str_eq(it[0].id, "m-other");
	free(it);
	ck_assert_int_eq(store_inbox(tx, "ringsted-homecare", 0, 0, &it, &n, &why), 0);
	ck_assert_uint_eq(n, STORE_INBOX_MAX);
	free(it);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_events_in_order)
{
	static const char *const names[] = { "submitted", "sealed", "fetched", "acknowledged" };
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_event e, *ev = NULL;
	struct why why = { 0 };
	size_t n, i;

	db_path(path, sizeof(path), "events");
	s = open_ok(path);
	for (i = 0; i < 4; i++) {
		tx = begin_ok(s, 1);
		memset(&e, 0, sizeof(e));
		e.id = 999;  /* ignored */
		snprintf(e.message_id, sizeof(e.message_id), "m-ev");
		snprintf(e.recipient, sizeof(e.recipient), "hovmand-care");
		snprintf(e.event, sizeof(e.event), "%s", names[i]);
		snprintf(e.actor, sizeof(e.actor), "hegnd");
		/* Clock steps back: order is by insertion, not by at_ms. */
		e.at_ms = 1000 - (int64_t)i;
		ck_assert_msg(store_event_add(tx, &e, &why) == 0, "%s", why.text);
		snprintf(e.message_id, sizeof(e.message_id), "m-else");
		ck_assert_int_eq(store_event_add(tx, &e, &why), 0);
		commit_ok(tx);
	}
	tx = begin_ok(s, 1);
	memset(&e, 0, sizeof(e));
	snprintf(e.message_id, sizeof(e.message_id), "m-ev");
	ck_assert_int_eq(store_event_add(tx, &e, &why), HEGN_ERR_INVALID);
	memset(e.detail, 'd', sizeof(e.detail));
	snprintf(e.event, sizeof(e.event), "x");
	ck_assert_int_eq(store_event_add(tx, &e, &why), HEGN_ERR_INVALID);
	store_rollback(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_event_list(tx, "m-ev", &ev, &n, &why), 0);
	ck_assert_uint_eq(n, 4);
	for (i = 0; i < 4; i++) {
		ck_assert_str_eq(ev[i].event, names[i]);
		ck_assert_str_eq(ev[i].message_id, "m-ev");
		ck_assert_str_eq(ev[i].recipient, "hovmand-care");
		ck_assert_int_ne(ev[i].id, 999);
		if (i > 0)
			ck_assert_int_gt(ev[i].id, ev[i - 1].id);
	}
	free(ev);
	ck_assert_int_eq(store_event_list(tx, "m-none", &ev, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(ev);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_connection_settings)
{
	char path[512], v[64];
	struct store *s;
	struct store_tx *tx;
	struct why why = { 0 };
	int w;

	db_path(path, sizeof(path), "pragma");
	s = open_ok(path);
	for (w = 0; w <= 1; w++) {
		tx = begin_ok(s, w);
		ck_assert_int_eq(store_sqlite_pragma(tx, "journal_mode", v, sizeof(v), &why), 0);
		ck_assert_str_eq(v, "wal");
		ck_assert_int_eq(store_sqlite_pragma(tx, "synchronous", v, sizeof(v), &why), 0);
		/* The writer syncs the WAL itself, once per group of commits (group commit). */
		ck_assert_str_eq(v, w ? "1" : "2");
		ck_assert_int_eq(store_sqlite_pragma(tx, "foreign_keys", v, sizeof(v), &why), 0);
		ck_assert_str_eq(v, "1");
		ck_assert_int_eq(store_sqlite_pragma(tx, "secure_delete", v, sizeof(v), &why), 0);
		ck_assert_str_eq(v, "1");
		ck_assert_int_eq(store_sqlite_pragma(tx, "query_only", v, sizeof(v), &why), 0);
		ck_assert_str_eq(v, w ? "0" : "1");
		ck_assert_int_eq(store_sqlite_pragma(tx, "busy_timeout", v, sizeof(v), &why), 0);
		ck_assert_int_gt(atoi(v), 0);
		ck_assert_int_eq(store_sqlite_pragma(tx, "user_version; DROP TABLE messages",
		    v, sizeof(v), &why), HEGN_ERR_INVALID);
		ck_assert_int_eq(store_sqlite_pragma(tx, "journal_mode", v, 2, &why),
		    HEGN_ERR_STORE);
		store_rollback(tx);
	}
	ck_assert_int_eq(store_sqlite_pragma(NULL, "journal_mode", v, sizeof(v), &why),
	    HEGN_ERR_INVALID);
	store_close(s);
}
END_TEST

/* sql on a separate, raw connection must fail with a message holding needle. */
static void
raw_exec_refused(const char *path, const char *sql, const char *needle)
{
	sqlite3 *db = NULL;
	int rc;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	ck_assert_msg(rc != SQLITE_OK, "not refused: %s", sql);
	ck_assert_msg(strstr(sqlite3_errmsg(db), needle) != NULL, "%s: %s", sql,
	    sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* A database made by a hegn that knew schema version 1 only, with rows in it. */
START_TEST(test_migration_from_v1)
{
	char path[512], sql[1024];
	const char *v1;
	struct store *s;
	struct store_tx *tx;
	struct store_delivery d;
	struct store_audit e;
	struct store_user u;
	struct why why = { 0 };
	char text[128];

	ck_assert_int_eq(store_sqlite_schema_latest(), 6);
	ck_assert_ptr_null(store_sqlite_migration_sql(0));
	ck_assert_ptr_null(store_sqlite_migration_sql(7));
	v1 = store_sqlite_migration_sql(1);
	ck_assert_ptr_nonnull(v1);
	ck_assert_ptr_null(strstr(v1, "audit"));

	db_path(path, sizeof(path), "v1");
	raw_exec(path, v1);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = 1;"
	    " INSERT INTO messages (id, sender, kind, content_sha256, citizen_ref, created_ms,"
	    " deadline_ms, signed_der) VALUES ('m-old', 'ringsted-visitation', 'referral', '',"
	    " 'c1', 5, 0, x'3000');"
	    " UPDATE counters SET value = 7 WHERE name = 'delivery_seq';"
	    " INSERT INTO deliveries (message_id, recipient, state, channel, seq, updated_ms,"
	    " sealed_sha256, sealed) VALUES ('m-old', 'hovmand-care', 'submitted', 'pull', 7, 6,"
	    " '', x'3080');");
	raw_exec(path, sql);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'audit'"),
	    0);

	/* The hegn command's open refuses it and leaves it as it was: only hegnd migrates. */
	s = NULL;
	ck_assert_int_eq(store_open_flags(path, STORE_NO_MIGRATE, &s, &why), HEGN_ERR_STORE);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(why.text, "schema version 1 and this program needs 6") != NULL &&
	    strstr(why.text, "only hegnd migrates") != NULL, "%s", why.text);
	ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 1);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'audit'"),
	    0);

	s = open_ok(path);
	ck_assert_int_eq(store_schema_version(s), 6);
	ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 6);
	{
		struct store *cli = NULL;

		/* Migrated by hegnd, the command opens it. */
		ck_assert_msg(store_open_flags(path, STORE_NO_MIGRATE, &cli, &why) == 0, "%s",
		    why.text);
		ck_assert_int_eq(store_schema_version(cli), 6);
		store_close(cli);
	}
	ck_assert(message_exists(s, "m-old"));
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_delivery_get(tx, "m-old", "hovmand-care", 1, &d, &why), 0);
	ck_assert_int_eq(d.seq, 7);
	ck_assert_uint_eq(d.sealed.len, 2);
	store_delivery_clear(&d);
	store_rollback(tx);
	/* The counter carried over: the next copy follows the old ones. */
	put_message(s, "m-new", "hovmand-care");
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_delivery_get(tx, "m-new", "hovmand-care", 0, &d, &why), 0);
	ck_assert_int_eq(d.seq, 8);
	store_delivery_clear(&d);
	store_rollback(tx);

	/* The new tables work. */
	tx = begin_ok(s, 1);
	memset(&e, 0, sizeof(e));
	e.at_ms = 9;
	snprintf(e.actor, sizeof(e.actor), "hegnd");
	snprintf(e.action, sizeof(e.action), "migrated");
	snprintf(text, sizeof(text), "{\"action\":\"migrated\"}");
	e.entry.data = (uint8_t *)text;
	e.entry.len = strlen(text);
	ck_assert_msg(store_audit_append(tx, &e, &why) == 0, "%s", why.text);
	ck_assert_int_eq(e.seq, 0);
	ck_assert_int_eq(store_user_get(tx, "nobody", &u, &why), HEGN_ERR_NOT_FOUND);
	commit_ok(tx);
	store_close(s);

	/* A second open finds nothing to do. */
	s = open_ok(path);
	ck_assert_int_eq(store_schema_version(s), 6);
	store_close(s);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM messages"), 2);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM audit"), 1);
}
END_TEST

static void
fill_assignment(struct store_assignment *a, const char *citizen, const char *provider,
    const char *from)
{
	memset(a, 0, sizeof(*a));
	a->id = 4242;  /* ignored on insert */
	snprintf(a->citizen_ref, sizeof(a->citizen_ref), "%s", citizen);
	snprintf(a->provider, sizeof(a->provider), "%s", provider);
	snprintf(a->services, sizeof(a->services), "practical_help,meals");
	snprintf(a->from_date, sizeof(a->from_date), "%s", from);
	snprintf(a->source, sizeof(a->source), "manual:ringsted-visitation");
	a->created_ms = 1000;
	a->updated_ms = 1000;
}

START_TEST(test_assignments)
{
	char path[512], cref[65], cref2[65];
	struct store *s;
	struct store_tx *tx;
	struct store_assignment a, b, *list = NULL;
	struct why why = { 0 };
	int64_t ids[3];
	size_t n;

	util_sha256_hex("citizen-a", 9, cref);
	util_sha256_hex("citizen-b", 9, cref2);
	db_path(path, sizeof(path), "assign");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	fill_assignment(&a, cref, "hovmand-care", "2026-11-01");
	ck_assert_msg(store_assignment_insert(tx, &a, &why) == 0, "%s", why.text);
	ids[0] = a.id;
	fill_assignment(&a, cref, "ringsted-homecare", "2026-11-02");
	snprintf(a.to_date, sizeof(a.to_date), "2026-12-31");
	ck_assert_int_eq(store_assignment_insert(tx, &a, &why), 0);
	ids[1] = a.id;
	fill_assignment(&a, cref2, "hovmand-care", "2026-10-01");
	ck_assert_int_eq(store_assignment_insert(tx, &a, &why), 0);
	ids[2] = a.id;
	ck_assert_int_ne(ids[0], 4242);
	ck_assert_int_gt(ids[1], ids[0]);
	ck_assert_int_gt(ids[2], ids[1]);

	/* Refused fields: nothing is inserted and the id is left alone. */
	fill_assignment(&b, cref, "hovmand-care", "1.11.2026");
	ck_assert_int_eq(store_assignment_insert(tx, &b, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(b.id, 4242);
	fill_assignment(&b, cref, "hovmand-care", "2026-11-01");
	snprintf(b.to_date, sizeof(b.to_date), "soon");
	ck_assert_int_eq(store_assignment_insert(tx, &b, &why), HEGN_ERR_INVALID);
	fill_assignment(&b, cref, "", "2026-11-01");
	ck_assert_int_eq(store_assignment_insert(tx, &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "provider"));
	fill_assignment(&b, "", "hovmand-care", "2026-11-01");
	ck_assert_int_eq(store_assignment_insert(tx, &b, &why), HEGN_ERR_INVALID);
	fill_assignment(&b, cref, "hovmand-care", "2026-11-01");
	memset(b.services, 's', sizeof(b.services));
	ck_assert_int_eq(store_assignment_insert(tx, &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "services"));
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_assignment_list(tx, NULL, NULL, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(list[0].id, ids[0]);
	ck_assert_int_eq(list[2].id, ids[2]);
	ck_assert_str_eq(list[1].citizen_ref, cref);
	ck_assert_str_eq(list[1].provider, "ringsted-homecare");
	ck_assert_str_eq(list[1].services, "practical_help,meals");
	ck_assert_str_eq(list[1].from_date, "2026-11-02");
	ck_assert_str_eq(list[1].to_date, "2026-12-31");
	ck_assert_str_eq(list[1].source, "manual:ringsted-visitation");
	ck_assert_str_eq(list[1].end_reason, "");
	ck_assert_int_eq(list[1].created_ms, 1000);
	ck_assert_int_eq(list[1].updated_ms, 1000);
	free(list);
	ck_assert_int_eq(store_assignment_list(tx, cref, NULL, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(list[0].id, ids[0]);
	ck_assert_int_eq(list[1].id, ids[1]);
	free(list);
	ck_assert_int_eq(store_assignment_list(tx, NULL, "hovmand-care", &list, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(list[0].id, ids[0]);
	ck_assert_int_eq(list[1].id, ids[2]);
	free(list);
	ck_assert_int_eq(store_assignment_list(tx, cref, "hovmand-care", &list, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(list[0].id, ids[0]);
	free(list);
	ck_assert_int_eq(store_assignment_list(tx, cref2, "ringsted-homecare", &list, &n, &why),
	    0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	ck_assert_int_eq(store_assignment_list(tx, "", NULL, &list, &n, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_assignment_list(tx, NULL, NULL, NULL, &n, &why),
	    HEGN_ERR_INTERNAL);
	/* Writes in a read transaction. */
	ck_assert_int_eq(store_assignment_insert(tx, &a, &why), HEGN_ERR_INTERNAL);
	ck_assert_int_eq(store_assignment_update(tx, &a, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);

	/* Ending one: all fields but id and created_ms are replaced. */
	tx = begin_ok(s, 1);
	fill_assignment(&a, cref, "hovmand-care", "2026-11-01");
	a.id = ids[0];
	snprintf(a.services, sizeof(a.services), "practical_help");
	snprintf(a.to_date, sizeof(a.to_date), "2026-11-30");
	snprintf(a.source, sizeof(a.source), "m-cancel-1");
	snprintf(a.end_reason, sizeof(a.end_reason), "cancellation");
	a.created_ms = 5;
	a.updated_ms = 2000;
	ck_assert_msg(store_assignment_update(tx, &a, &why) == 0, "%s", why.text);
	a.id = ids[2] + 100;
	ck_assert_int_eq(store_assignment_update(tx, &a, &why), HEGN_ERR_NOT_FOUND);
	a.id = ids[1];
	snprintf(a.from_date, sizeof(a.from_date), "tomorrow");
	ck_assert_int_eq(store_assignment_update(tx, &a, &why), HEGN_ERR_INVALID);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_assignment_list(tx, cref, "hovmand-care", &list, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(list[0].id, ids[0]);
	ck_assert_str_eq(list[0].services, "practical_help");
	ck_assert_str_eq(list[0].to_date, "2026-11-30");
	ck_assert_str_eq(list[0].source, "m-cancel-1");
	ck_assert_str_eq(list[0].end_reason, "cancellation");
	ck_assert_int_eq(list[0].created_ms, 1000);
	ck_assert_int_eq(list[0].updated_ms, 2000);
	free(list);
	/* The refused update left the other row as it was. */
	ck_assert_int_eq(store_assignment_list(tx, cref, "ringsted-homecare", &list, &n, &why),
	    0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(list[0].from_date, "2026-11-02");
	free(list);
	store_rollback(tx);
	store_close(s);
}
END_TEST

static void
fill_user(struct store_user *u, const char *name, const char *role)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->username, sizeof(u->username), "%s", name);
	snprintf(u->party, sizeof(u->party), "ringsted-visitation");
	snprintf(u->role, sizeof(u->role), "%s", role);
	snprintf(u->pw_hash, sizeof(u->pw_hash),
	    "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA");
	u->created_ms = 100;
	u->updated_ms = 100;
}

START_TEST(test_users)
{
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_user u, o, *list = NULL;
	struct why why = { 0 };
	size_t n;

	db_path(path, sizeof(path), "users");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	fill_user(&u, "ringsted-cw", "caseworker");
	ck_assert_msg(store_user_insert(tx, &u, &why) == 0, "%s", why.text);
	fill_user(&u, "hovmand-disp", "dispatcher");
	snprintf(u.party, sizeof(u.party), "hovmand-care");
	ck_assert_int_eq(store_user_insert(tx, &u, &why), 0);
	fill_user(&u, "audit", "auditor");
	ck_assert_int_eq(store_user_insert(tx, &u, &why), 0);
	/* A taken username, whatever the rest says. */
	fill_user(&u, "ringsted-cw", "administrator");
	ck_assert_int_eq(store_user_insert(tx, &u, &why), HEGN_ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(why.text, "exists already"));
	fill_user(&u, "root", "superuser");
	ck_assert_int_eq(store_user_insert(tx, &u, &why), HEGN_ERR_INVALID);
	fill_user(&u, "", "auditor");
	ck_assert_int_eq(store_user_insert(tx, &u, &why), HEGN_ERR_INVALID);
	fill_user(&u, "nohash", "auditor");
	u.pw_hash[0] = '\0';
	ck_assert_int_eq(store_user_insert(tx, &u, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "pw_hash"));
	fill_user(&u, "negative", "auditor");
	u.failed_logins = -1;
	ck_assert_int_eq(store_user_insert(tx, &u, &why), HEGN_ERR_INVALID);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	memset(&o, 'x', sizeof(o));
	ck_assert_int_eq(store_user_get(tx, "hovmand-disp", &o, &why), 0);
	ck_assert_str_eq(o.username, "hovmand-disp");
	ck_assert_str_eq(o.party, "hovmand-care");
	ck_assert_str_eq(o.role, "dispatcher");
	ck_assert_str_eq(o.pw_hash, u.pw_hash);
	ck_assert_int_eq(o.disabled, 0);
	ck_assert_int_eq(o.failed_logins, 0);
	ck_assert_int_eq(o.locked_until_ms, 0);
	ck_assert_int_eq(o.created_ms, 100);
	memset(&o, 'x', sizeof(o));
	ck_assert_int_eq(store_user_get(tx, "nobody", &o, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_str_eq(o.username, "");
	ck_assert_int_eq(store_user_get(tx, "ringsted-cwxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", &o, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_user_update(tx, &u, &why), HEGN_ERR_INTERNAL);
	ck_assert_int_eq(store_user_list(tx, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(list[0].username, "audit");
	ck_assert_str_eq(list[1].username, "hovmand-disp");
	ck_assert_str_eq(list[2].username, "ringsted-cw");
	ck_assert_str_eq(list[2].role, "caseworker");
	free(list);
	store_rollback(tx);

	/* Lock-out bookkeeping: every mutable field changes, created_ms does not. */
	tx = begin_ok(s, 1);
	fill_user(&u, "ringsted-cw", "administrator");
	snprintf(u.party, sizeof(u.party), "ringsted-homecare");
	snprintf(u.pw_hash, sizeof(u.pw_hash), "$argon2id$v=19$new");
	u.disabled = 7;  /* any true value is stored as 1 */
	u.failed_logins = 5;
	u.locked_until_ms = 1795776360000LL;
	u.created_ms = 1;
	u.updated_ms = 300;
	ck_assert_msg(store_user_update(tx, &u, &why) == 0, "%s", why.text);
	fill_user(&u, "ghost", "auditor");
	ck_assert_int_eq(store_user_update(tx, &u, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(why.text, "ghost"));
	fill_user(&u, "audit", "janitor");
	ck_assert_int_eq(store_user_update(tx, &u, &why), HEGN_ERR_INVALID);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_user_get(tx, "ringsted-cw", &o, &why), 0);
	ck_assert_str_eq(o.party, "ringsted-homecare");
	ck_assert_str_eq(o.role, "administrator");
	ck_assert_str_eq(o.pw_hash, "$argon2id$v=19$new");
	ck_assert_int_eq(o.disabled, 1);
	ck_assert_int_eq(o.failed_logins, 5);
	ck_assert_int_eq(o.locked_until_ms, 1795776360000LL);
	ck_assert_int_eq(o.created_ms, 100);
	ck_assert_int_eq(o.updated_ms, 300);
	ck_assert_int_eq(store_user_get(tx, "audit", &o, &why), 0);
	ck_assert_str_eq(o.role, "auditor");
	store_rollback(tx);
	store_close(s);
}
END_TEST

/* An audit entry whose JSON text lives in text (the store only reads it). */
static void
fill_audit(struct store_audit *e, char *text, size_t textlen, const char *citizen,
    int64_t at_ms, int n)
{
	memset(e, 0, sizeof(*e));
	e->seq = -77;  /* ignored: the store assigns it */
	e->at_ms = at_ms;
	snprintf(e->actor, sizeof(e->actor), "ringsted-visitation");
	snprintf(e->action, sizeof(e->action), "message.read");
	snprintf(e->message_id, sizeof(e->message_id), "m-%d", n);
	snprintf(e->citizen_ref, sizeof(e->citizen_ref), "%s", citizen);
	snprintf(text, textlen, "{\"n\":%d,\"at_ms\":%lld,\"citizen\":\"%s\"}", n,
	    (long long)at_ms, citizen);
	util_sha256(text, strlen(text), e->leaf_hash);
	e->entry.data = (uint8_t *)text;
	e->entry.len = strlen(text);
}

static int64_t
append_ok(struct store_tx *tx, struct store_audit *e)
{
	struct why why = { 0 };

	ck_assert_msg(store_audit_append(tx, e, &why) == 0, "audit append: %s", why.text);
	return e->seq;
}

START_TEST(test_audit_sequence)
{
	char path[512], text[8][160];
	struct store *s;
	struct store_tx *tx;
	struct store_audit e, *list = NULL;
	struct why why = { 0 };
	uint8_t digest[32];
	int64_t cnt;
	size_t n;
	int i;

	db_path(path, sizeof(path), "audit");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_audit_count(tx, &cnt, &why), 0);
	ck_assert_int_eq(cnt, 0);
	ck_assert_int_eq(store_audit_range(tx, 0, 0, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	fill_audit(&e, text[0], sizeof(text[0]), "c1", 1, 0);
	ck_assert_int_eq(store_audit_append(tx, &e, &why), HEGN_ERR_INTERNAL);
	ck_assert_int_eq(e.seq, -77);
	store_rollback(tx);

	/* 0, 1, 2 across transactions. */
	for (i = 0; i < 3; i++) {
		tx = begin_ok(s, 1);
		fill_audit(&e, text[i], sizeof(text[i]), "c1", 100 + i, i);
		ck_assert_int_eq(append_ok(tx, &e), i);
		commit_ok(tx);
	}
	/* A rolled-back append gives its number back. */
	tx = begin_ok(s, 1);
	fill_audit(&e, text[7], sizeof(text[7]), "c1", 999, 99);
	ck_assert_int_eq(append_ok(tx, &e), 3);
	ck_assert_int_eq(append_ok(tx, &e), 4);
	store_rollback(tx);
	/* Two in one transaction; refused ones in between change nothing. */
	tx = begin_ok(s, 1);
	fill_audit(&e, text[3], sizeof(text[3]), "c2", 200, 3);
	ck_assert_int_eq(append_ok(tx, &e), 3);
	fill_audit(&e, text[7], sizeof(text[7]), "c2", 201, 7);
	e.entry.len = 0;
	ck_assert_int_eq(store_audit_append(tx, &e, &why), HEGN_ERR_INVALID);
	e.entry.data = (uint8_t *)"{\"a\":\0}";
	e.entry.len = 7;
	ck_assert_int_eq(store_audit_append(tx, &e, &why), HEGN_ERR_INVALID);
	fill_audit(&e, text[7], sizeof(text[7]), "c2", 201, 7);
	e.action[0] = '\0';
	ck_assert_int_eq(store_audit_append(tx, &e, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(e.seq, -77);
	fill_audit(&e, text[4], sizeof(text[4]), "", 300, 4);
	e.message_id[0] = '\0';
	ck_assert_int_eq(append_ok(tx, &e), 4);
	ck_assert_int_eq(store_audit_count(tx, &cnt, &why), 0);
	ck_assert_int_eq(cnt, 5);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_audit_count(tx, &cnt, &why), 0);
	ck_assert_int_eq(cnt, 5);
	ck_assert_int_eq(store_audit_range(tx, 0, 0, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(list[i].seq, i);
		ck_assert_uint_eq(list[i].entry.len, strlen(text[i]));
		ck_assert_mem_eq(list[i].entry.data, text[i], list[i].entry.len);
		util_sha256(text[i], strlen(text[i]), digest);
		ck_assert_mem_eq(list[i].leaf_hash, digest, 32);
		ck_assert_str_eq(list[i].actor, "ringsted-visitation");
		ck_assert_str_eq(list[i].action, "message.read");
	}
	ck_assert_int_eq(list[0].at_ms, 100);
	ck_assert_str_eq(list[0].citizen_ref, "c1");
	ck_assert_str_eq(list[0].message_id, "m-0");
	ck_assert_str_eq(list[3].citizen_ref, "c2");
	ck_assert_str_eq(list[4].citizen_ref, "");
	ck_assert_str_eq(list[4].message_id, "");
	store_audit_list_free(list, n);
	ck_assert_int_eq(store_audit_range(tx, 2, 2, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(list[0].seq, 2);
	ck_assert_int_eq(list[1].seq, 3);
	store_audit_list_free(list, n);
	ck_assert_int_eq(store_audit_range(tx, 5, 10, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	store_audit_list_free(NULL, 0);
	store_rollback(tx);
	store_close(s);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM audit"), 5);
}
END_TEST

START_TEST(test_audit_append_only)
{
	char path[512], text[4][160];
	struct store *s;
	struct store_tx *tx;
	struct store_audit e, *list = NULL;
	struct why why = { 0 };
	int64_t cnt;
	size_t n;
	int i;

	db_path(path, sizeof(path), "append-only");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	for (i = 0; i < 3; i++) {
		fill_audit(&e, text[i], sizeof(text[i]), "c1", 10 + i, i);
		append_ok(tx, &e);
	}
	commit_ok(tx);

	/* Another connection, with no help from the store's code. */
	raw_exec_refused(path, "UPDATE audit SET actor = 'mallory' WHERE seq = 1",
	    "audit log is append-only");
	raw_exec_refused(path, "DELETE FROM audit WHERE seq = 2", "audit log is append-only");
	raw_exec_refused(path, "DELETE FROM audit", "audit log is append-only");
	/* REPLACE deletes without firing the delete trigger; the insert trigger stops it. */
	raw_exec_refused(path, "INSERT OR REPLACE INTO audit (seq, at_ms, actor, action,"
	    " leaf_hash, entry) VALUES (0, 1, 'x', 'x', zeroblob(32), '{}')",
	    "appended in seq order");
	/* Leaves stay contiguous, and hashes are 32 bytes. */
	raw_exec_refused(path, "INSERT INTO audit (seq, at_ms, actor, action, leaf_hash, entry)"
	    " VALUES (7, 1, 'x', 'x', zeroblob(32), '{}')", "appended in seq order");
	raw_exec_refused(path, "INSERT INTO audit (seq, at_ms, actor, action, leaf_hash, entry)"
	    " VALUES (3, 1, 'x', 'x', zeroblob(31), '{}')", "CHECK");
	raw_exec_refused(path, "INSERT INTO audit (seq, at_ms, actor, action, leaf_hash, entry)"
	    " VALUES (3, 1, 'x', 'x', hex(zeroblob(16)), '{}')", "CHECK");

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_audit_count(tx, &cnt, &why), 0);
	ck_assert_int_eq(cnt, 3);
	ck_assert_int_eq(store_audit_range(tx, 0, 0, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(list[1].actor, "ringsted-visitation");
	store_audit_list_free(list, n);
	store_rollback(tx);
	store_close(s);

	/* Someone with the file dropped the triggers and damaged a hash: reads refuse it. */
	raw_exec(path, "PRAGMA ignore_check_constraints = ON; DROP TRIGGER audit_no_update;"
	    " UPDATE audit SET leaf_hash = x'00' WHERE seq = 1");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_audit_range(tx, 0, 0, &list, &n, &why), HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "leaf_hash"));
	ck_assert_ptr_null(list);
	ck_assert_uint_eq(n, 0);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_audit_query)
{
	static const struct {
		const char *citizen;
		int64_t at_ms;
	} rows[] = {
		{ "c1", 1000 }, { "c2", 1000 }, { "c1", 2000 }, { "", 2500 },
		{ "c1", 3000 }, { "c1", 1500 }, { "c2", 4000 }, { "c1", 4000 },
	};
	char path[512], text[8][160];
	struct store *s;
	struct store_tx *tx;
	struct store_audit e, *list = NULL;
	struct why why = { 0 };
	size_t n, i;

	db_path(path, sizeof(path), "audit-query");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		fill_audit(&e, text[i], sizeof(text[i]), rows[i].citizen, rows[i].at_ms, (int)i);
		ck_assert_int_eq(append_ok(tx, &e), (int64_t)i);
	}
	commit_ok(tx);

	tx = begin_ok(s, 0);
	/* Everything about c1, in seq order although the clock stepped back. */
	ck_assert_int_eq(store_audit_query(tx, "c1", 0, 0, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(list[0].seq, 0);
	ck_assert_int_eq(list[1].seq, 2);
	ck_assert_int_eq(list[2].seq, 4);
	ck_assert_int_eq(list[3].seq, 5);
	ck_assert_int_eq(list[3].at_ms, 1500);
	ck_assert_int_eq(list[4].seq, 7);
	for (i = 0; i < n; i++) {
		ck_assert_str_eq(list[i].citizen_ref, "c1");
		ck_assert_uint_eq(list[i].entry.len, strlen(text[list[i].seq]));
	}
	store_audit_list_free(list, n);
	/* [1500, 3000): from inclusive, to exclusive. */
	ck_assert_int_eq(store_audit_query(tx, "c1", 1500, 3000, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(list[0].seq, 2);
	ck_assert_int_eq(list[1].seq, 5);
	store_audit_list_free(list, n);
	/* Open at the start, then open at the end. */
	ck_assert_int_eq(store_audit_query(tx, "c1", 0, 1500, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(list[0].seq, 0);
	store_audit_list_free(list, n);
	ck_assert_int_eq(store_audit_query(tx, "c1", 3000, 0, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(list[0].seq, 4);
	ck_assert_int_eq(list[1].seq, 7);
	store_audit_list_free(list, n);
	ck_assert_int_eq(store_audit_query(tx, "c2", 0, 0, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(list[0].seq, 1);
	ck_assert_int_eq(list[1].seq, 6);
	store_audit_list_free(list, n);
	/* Empty windows and unknown citizens. */
	ck_assert_int_eq(store_audit_query(tx, "c1", 3000, 3000, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	ck_assert_int_eq(store_audit_query(tx, "c1", 0, INT64_MIN, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(store_audit_query(tx, "c3", 0, 0, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	/* Entries about nobody are not a citizen to ask about. */
	ck_assert_int_eq(store_audit_query(tx, "", 0, 0, &list, &n, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_audit_query(tx, NULL, 0, 0, &list, &n, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_checkpoints)
{
	static const int64_t sizes[] = { 5, 1, 3 };
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_checkpoint c, *list = NULL;
	struct why why = { 0 };
	size_t n, i;

	db_path(path, sizeof(path), "checkpoints");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	for (i = 0; i < 3; i++) {
		memset(&c, 0, sizeof(c));
		c.size = sizes[i];
		c.at_ms = 100 * sizes[i];
		memset(c.root, (int)sizes[i], sizeof(c.root));
		c.root[31] = 0;
		snprintf(c.note, sizeof(c.note), "hegn.example/audit\n%lld\nroot\n\n— sig\n",
		    (long long)sizes[i]);
		ck_assert_msg(store_checkpoint_insert(tx, &c, &why) == 0, "%s", why.text);
	}
	ck_assert_int_eq(store_checkpoint_insert(tx, &c, &why), HEGN_ERR_CONFLICT);
	c.size = 9;
	c.note[0] = '\0';
	ck_assert_int_eq(store_checkpoint_insert(tx, &c, &why), HEGN_ERR_INVALID);
	c.size = -1;
	snprintf(c.note, sizeof(c.note), "n");
	ck_assert_int_eq(store_checkpoint_insert(tx, &c, &why), HEGN_ERR_INVALID);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_checkpoint_insert(tx, &c, &why), HEGN_ERR_INTERNAL);
	ck_assert_int_eq(store_checkpoint_list(tx, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < n; i++) {
		int64_t want = (int64_t)(2 * i + 1);
		uint8_t root[32];

		ck_assert_int_eq(list[i].size, want);
		ck_assert_int_eq(list[i].at_ms, 100 * want);
		memset(root, (int)want, sizeof(root));
		root[31] = 0;
		ck_assert_mem_eq(list[i].root, root, 32);
		ck_assert_ptr_nonnull(strstr(list[i].note, "— sig"));
	}
	free(list);
	store_rollback(tx);
	store_close(s);

	/* A root of the wrong length put in past the CHECK is refused on the way out. */
	raw_exec(path, "PRAGMA ignore_check_constraints = ON;"
	    " INSERT INTO checkpoints (size, at_ms, root, note) VALUES (7, 1, x'0102', 'n')");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	list = (struct store_checkpoint *)&list;
	ck_assert_int_eq(store_checkpoint_list(tx, &list, &n, &why), HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "root"));
	ck_assert_ptr_null(list);
	ck_assert_uint_eq(n, 0);
	store_rollback(tx);
	store_close(s);

	/* An empty list is a NULL array. */
	db_path(path, sizeof(path), "checkpoints-empty");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_checkpoint_list(tx, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(list);
	store_rollback(tx);
	store_close(s);
}
END_TEST

/* True when needle (len bytes) occurs anywhere in the file at path. */
static int
file_contains(const char *path, const uint8_t *needle, size_t len)
{
	struct buf b = { NULL, 0 };
	size_t i;
	int found = 0;

	ck_assert_int_eq(util_read_file(path, 64 << 20, &b, NULL), 0);
	for (i = 0; !found && b.len >= len && i <= b.len - len; i++)
		if (memcmp(b.data + i, needle, len) == 0)
			found = 1;
	buf_free(&b, 0);
	return found;
}

START_TEST(test_purge_content)
{
	static const int64_t created[] = { 1000, 2000, 2999, 3000, 5000 };
	char path[512], id[32], wal[600];
	uint8_t big[10000], small[48];
	struct store *s;
	struct store_tx *tx;
	struct store_message m, mo;
	struct store_delivery d, dout;
	struct store_schedule sched;
	struct store_event ev;
	struct why why = { 0 };
	int64_t n, failed;
	size_t i;
	int more;

	/* Markers to look for in the file: one on overflow pages, one inline in its row. */
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)("HEGN-SECRET-DER-"[i % 16]);
	memcpy(small, "HEGN-SEALED-COPY-0123456789-HEGN-SEALED-COPY-01", sizeof(small));

	db_path(path, sizeof(path), "purge");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	for (i = 0; i < sizeof(created) / sizeof(created[0]); i++) {
		snprintf(id, sizeof(id), "m-%zu", i);
		fill_message(&m, id, "ringsted-visitation");
		m.created_ms = created[i];
		m.signed_der.data = big;
		m.signed_der.len = sizeof(big);
		fill_delivery(&d, id, "hovmand-care");
		d.sealed.data = small;
		d.sealed.len = sizeof(small);
		ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
		ck_assert_int_eq(store_delivery_insert(tx, &d, &why), 0);
		memset(&ev, 0, sizeof(ev));
		snprintf(ev.message_id, sizeof(ev.message_id), "%s", id);
		snprintf(ev.event, sizeof(ev.event), "submitted");
		ck_assert_int_eq(store_event_add(tx, &ev, &why), 0);
	}
	/* A message whose content is empty already counts as nothing to purge. */
	fill_message(&m, "m-empty", "ringsted-visitation");
	m.created_ms = 10;
	m.signed_der.data = NULL;
	m.signed_der.len = 0;
	ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
	/* m-1 also went to a party that fetched it, and waits for its receipt. */
	fill_delivery(&d, "m-1", "aarhus-care");
	snprintf(d.state, sizeof(d.state), STORE_STATE_DELIVERED);
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), 0);
	commit_ok(tx);
	raw_exec(path, "UPDATE deliveries SET next_ms = 4000 WHERE message_id IN ('m-1', 'm-3')");

	tx = begin_ok(s, 0);
	n = failed = 99;
	ck_assert_int_eq(store_purge_content(tx, 3000, 7000, 100, &n, &failed, &more, &why),
	    HEGN_ERR_INTERNAL);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(failed, 0);
	store_rollback(tx);

	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_purge_content(tx, 3000, 7000, 0, &n, &failed, &more, &why),
	    HEGN_ERR_INVALID);
	ck_assert_msg(store_purge_content(tx, 3000, 7000, 100, &n, &failed, &more, &why) == 0, "%s",
	    why.text);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(failed, 3);
	ck_assert_int_eq(more, 0);
	commit_ok(tx);
	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_purge_content(tx, 3000, 7000, 100, &n, &failed, &more, &why), 0);
	ck_assert_int_eq(n + failed, 0);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	for (i = 0; i < sizeof(created) / sizeof(created[0]); i++) {
		int purged = created[i] < 3000;

		snprintf(id, sizeof(id), "m-%zu", i);
		ck_assert_int_eq(store_message_get(tx, id, 1, &mo, &why), 0);
		ck_assert_int_eq(mo.created_ms, created[i]);
		ck_assert_uint_eq(mo.signed_der.len, purged ? 0 : sizeof(big));
		store_message_clear(&mo);
		ck_assert_int_eq(store_delivery_get(tx, id, "hovmand-care", 1, &dout, &why), 0);
		ck_assert_uint_eq(dout.sealed.len, purged ? 0 : sizeof(small));
		/* The evidence stays: the hash of what was sent. */
		ck_assert_str_eq(dout.sealed_sha256, d.sealed_sha256);
		/* A copy never fetched cannot be any more: it failed, and the log says why. */
		ck_assert_str_eq(dout.state, purged ? STORE_STATE_FAILED : STORE_STATE_SUBMITTED);
		store_delivery_clear(&dout);
		ck_assert_int_eq(store_schedule_get(tx, id, "hovmand-care", &sched, &why), 0);
		ck_assert_str_eq(sched.fallback_reason, purged ? "the content was deleted under "
		    "retention before the copy was delivered" : "");
		ck_assert_int_eq(sched.next_ms, i == 3 ? 4000 : 0);
	}
	/* The fetched one keeps its state, but is neither offered again nor printed. */
	ck_assert_int_eq(store_schedule_get(tx, "m-1", "aarhus-care", &sched, &why), 0);
	ck_assert_str_eq(sched.state, STORE_STATE_DELIVERED);
	ck_assert_int_eq(sched.next_ms, 0);
	store_rollback(tx);
	store_close(s);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM messages"), 6);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM deliveries"), 6);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM events"), 8);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM events WHERE event = 'failed'"
	    " AND actor = 'gateway' AND at_ms = 7000 AND recipient = 'hovmand-care'"
	    " AND message_id IN ('m-0', 'm-1', 'm-2')"), 3);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM deliveries WHERE state = 'failed'"
	    " AND updated_ms = 7000"), 3);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM deliveries WHERE seq NOT IN"
	    " (SELECT seq FROM sealed_copies)"), 4);

	/*
	 * secure_delete: once the last connection closed (checkpointing and
	 * removing the WAL), the purged bytes are gone from the file.  Two
	 * unpurged messages still hold them, so purge those too first.
	 */
	s = open_ok(path);
	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_purge_content(tx, 0x7fffffffffffffffLL, 7000, 100, &n, &failed, &more,
	    &why), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(failed, 2);
	commit_ok(tx);
	store_close(s);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	ck_assert_int_eq(access(wal, F_OK), -1);
	ck_assert(!file_contains(path, big, 64));
	ck_assert(!file_contains(path, small, sizeof(small)));
}
END_TEST

/* Size of the file at path, or -1. */
static long long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Frames in the WAL of path, as a raw connection's PASSIVE checkpoint counts them. */
static int
wal_frames(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(PASSIVE)", -1, &st, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/*
 * Checkpoints run after the write lock is gone, on a connection of their
 * own (store_sqlite.c, sq_checkpoint_due): a commit of more than 1,000 WAL
 * frames has its pages in the database file when it returns, and the
 * write after it starts the WAL over.
 */
START_TEST(test_checkpoint_after_commit)
{
	enum { BIG = 5 << 20 };
	char path[512], wal[600];
	struct store *s;
	struct store_tx *tx;
	struct store_message m;
	struct why why = { 0 };
	uint8_t *big = malloc(BIG);

	ck_assert_ptr_nonnull(big);
	memset(big, 0x5a, BIG);
	db_path(path, sizeof(path), "checkpoint-after");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	s = open_ok(path);
	ck_assert_int_lt(file_size(path), 1 << 20);
	tx = begin_ok(s, 1);
	fill_message(&m, "ck-big", "ringsted-visitation");
	m.signed_der.data = big;
	m.signed_der.len = BIG;
	ck_assert_msg(store_message_insert(tx, &m, &why) == 0, "%s", why.text);
	commit_ok(tx);
	/* Only a checkpoint writes into the database file. */
	ck_assert_int_gt(file_size(path), BIG);
	ck_assert_int_gt(file_size(wal), BIG);
	/* Caught up, so the next write starts the WAL over instead of appending. */
	put_message(s, "ck-small", "hovmand-care");
	ck_assert_int_lt(wal_frames(path), 100);
	ck_assert(message_exists(s, "ck-big"));
	ck_assert_int_eq(raw_int(path, "SELECT length(signed_der) FROM messages WHERE id = 'ck-big'"),
	    BIG);
	store_close(s);
	free(big);
}
END_TEST

/*
 * The citizen index in blocks of 4,096 entries (schema version 6): a
 * citizen's entries in every block are found, the first and the last, in
 * seq order, with a clock that stepped back, exactly those a scan of the
 * table finds.
 */
START_TEST(test_audit_blocks)
{
	enum { N = 3 * 4096 + 100 };
	static const char *const who[] = { "c-a", "c-b", "c-c" };
	static const struct { const char *citizen; int64_t from, to; } ask[] = {
		{ "c-rare", 0, 0 }, { "c-a", 0, 0 }, { "c-a", 2000, 9000 }, { "c-b", 4000, 0 },
		{ "c-c", 0, 1200 }, { "c-none", 0, 0 },
	};
	char path[512], text[160], sql[256];
	struct store *s;
	struct store_tx *tx;
	struct store_audit e, *list = NULL;
	struct why why = { 0 };
	size_t n, i, k;
	int64_t at;

	db_path(path, sizeof(path), "audit-blocks");
	s = open_ok(path);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name ="
	    " 'audit_citizen' AND sql LIKE '%seq / 4096%'"), 1);
	tx = begin_ok(s, 1);
	for (i = 0; i < N; i++) {
		/* The clock steps back by 4 s in the second block. */
		at = 1000 + (int64_t)i - (i >= 5000 ? 4000 : 0);
		fill_audit(&e, text, sizeof(text), i % 97 == 0 ? "c-rare" : who[i % 3], at, (int)i);
		append_ok(tx, &e);
	}
	commit_ok(tx);
	/*
	 * With statistics SQLite 3.40 answers a join of the blocks with this
	 * index through a Bloom filter, and misses rows: the query is an IN
	 * list instead (store_sqlite_audit_query_sql).
	 */
	raw_exec(path, "ANALYZE");
	tx = begin_ok(s, 0);
	for (k = 0; k < sizeof(ask) / sizeof(ask[0]); k++) {
		ck_assert_msg(store_audit_query(tx, ask[k].citizen, ask[k].from, ask[k].to, &list, &n,
		    &why) == 0, "%s", why.text);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit NOT INDEXED WHERE citizen_ref"
		    " = '%s' AND at_ms >= %lld AND (%lld = 0 OR at_ms < %lld)", ask[k].citizen,
		    (long long)ask[k].from, (long long)ask[k].to, (long long)ask[k].to);
		ck_assert_int_eq((int64_t)n, raw_int(path, sql));
		for (i = 0; i < n; i++) {
			ck_assert_str_eq(list[i].citizen_ref, ask[k].citizen);
			ck_assert(i == 0 || list[i].seq > list[i - 1].seq);
		}
		if (k == 0) {
			/* Every 97th entry, from the first block to the last. */
			ck_assert_uint_eq(n, (N + 96) / 97);
			ck_assert_int_eq(list[0].seq, 0);
			ck_assert_int_eq(list[n - 1].seq, (int64_t)((N - 1) / 97 * 97));
		}
		store_audit_list_free(list, n);
		list = NULL;
	}
	store_rollback(tx);
	store_close(s);
}
END_TEST

/* Content (signed copy) of message id is still there. */
static int
has_content(struct store *s, const char *id)
{
	struct store_tx *tx = begin_ok(s, 0);
	struct store_message m;
	struct why why = { 0 };
	int has;

	ck_assert_int_eq(store_message_get(tx, id, 1, &m, &why), 0);
	has = m.signed_der.len > 0;
	store_message_clear(&m);
	store_rollback(tx);
	return has;
}

/*
 * Retention in batches: each call purges about limit messages from where the
 * last one stopped, a millisecond with more than limit goes whole, and what
 * lies before the cursor is never looked at again.
 */
START_TEST(test_purge_batches)
{
	static const int64_t created[] = { 100, 200, 300, 400, 500, 600, 700,
		1000, 1000, 1000, 1000, 1000 };
	static const struct { int64_t n; int more; } want[] = {
		{ 2, 1 }, { 2, 1 }, { 2, 1 }, { 1, 1 }, { 5, 1 }, { 0, 0 } };
	char path[512], id[32];
	uint8_t der[64];
	struct store *s;
	struct store_tx *tx;
	struct store_message m;
	struct why why = { 0 };
	int64_t n, failed;
	size_t i;
	int more;

	memset(der, 0x30, sizeof(der));
	db_path(path, sizeof(path), "purge-batches");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	for (i = 0; i < sizeof(created) / sizeof(created[0]); i++) {
		snprintf(id, sizeof(id), "b-%zu", i);
		fill_message(&m, id, "ringsted-visitation");
		m.created_ms = created[i];
		m.signed_der.data = der;
		m.signed_der.len = sizeof(der);
		ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
	}
	commit_ok(tx);
	/*
	 * Limit 2 before 2000: 100-200, 300-400, 500-600, 700 (the batch ends
	 * at the next message, 1000), then the five at 1000 together.
	 */
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		tx = begin_ok(s, 1);
		ck_assert_msg(store_purge_content(tx, 2000, 3000, 2, &n, &failed, &more, &why) == 0,
		    "%s", why.text);
		commit_ok(tx);
		ck_assert_msg(n == want[i].n && more == want[i].more, "call %zu: n %lld more %d", i,
		    (long long)n, more);
	}
	for (i = 0; i < sizeof(created) / sizeof(created[0]); i++) {
		snprintf(id, sizeof(id), "b-%zu", i);
		ck_assert_msg(!has_content(s, id), "%s kept its content", id);
	}
	/* Behind the cursor: a message dated back there is not looked at again. */
	tx = begin_ok(s, 1);
	fill_message(&m, "b-late", "ringsted-visitation");
	m.created_ms = 150;
	m.signed_der.data = der;
	m.signed_der.len = sizeof(der);
	ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
	ck_assert_int_eq(store_purge_content(tx, 2000, 3000, 2, &n, &failed, &more, &why), 0);
	ck_assert_int_eq(n, 0);
	/* A shorter cutoff than the cursor (a longer retention now) purges nothing. */
	ck_assert_int_eq(store_purge_content(tx, 500, 3000, 2, &n, &failed, &more, &why), 0);
	ck_assert_int_eq(n + more, 0);
	commit_ok(tx);
	ck_assert(has_content(s, "b-late"));
	ck_assert_int_eq(raw_int(path, "SELECT value FROM counters WHERE name = 'purged_before_ms'"),
	    2000);
	store_close(s);
}
END_TEST

/* Insert message id created at created_ms with a copy for each of n recipients. */
static void
add_message(struct store_tx *tx, const char *id, int64_t created_ms,
    const char *const *recipients, size_t n)
{
	struct store_message m;
	struct store_delivery d;
	struct why why = { 0 };
	size_t i;

	fill_message(&m, id, "ringsted-visitation");
	m.created_ms = created_ms;
	ck_assert_msg(store_message_insert(tx, &m, &why) == 0, "%s", why.text);
	for (i = 0; i < n; i++) {
		fill_delivery(&d, id, recipients[i]);
		ck_assert_msg(store_delivery_insert(tx, &d, &why) == 0, "%s", why.text);
	}
}

/* Give the copy (id, recipient) next_ms, keeping the rest of its schedule. */
static void
set_next(struct store_tx *tx, const char *id, const char *recipient, int64_t next_ms)
{
	struct store_schedule sc;
	struct why why = { 0 };

	ck_assert_msg(store_schedule_get(tx, id, recipient, &sc, &why) == 0, "%s", why.text);
	sc.next_ms = next_ms;
	ck_assert_msg(store_schedule_update(tx, &sc, &why) == 0, "%s", why.text);
}

static void
fill_external(struct store_external *e, int64_t at_ms, const char *party, const char *channel)
{
	memset(e, 0, sizeof(*e));
	e->id = 4242;  /* ignored: the store assigns it */
	e->at_ms = at_ms;
	snprintf(e->party, sizeof(e->party), "%s", party);
	snprintf(e->kind, sizeof(e->kind), "referral");
	snprintf(e->channel, sizeof(e->channel), "%s", channel);
	snprintf(e->direction, sizeof(e->direction), "outbound");
	snprintf(e->reason, sizeof(e->reason), "provider has no system");
	snprintf(e->registered_by, sizeof(e->registered_by), "caseworker-1");
}

/*
 * Insert message id with its delivery d, then read d's copy back into back
 * (n bytes) in pieces of piece_len, each in its own read transaction, as a
 * fetch reads them.
 */
static void
insert_and_read_back(struct store *s, const char *id, const struct store_delivery *d, size_t n,
    uint8_t *back, size_t piece_len)
{
	struct store_message m;
	struct store_tx *tx;
	struct why why = { 0 };
	uint8_t *piece = malloc(piece_len);
	uint64_t total, at;
	size_t got;

	ck_assert_ptr_nonnull(piece);
	fill_message(&m, id, "ringsted-visitation");
	tx = begin_ok(s, 1);
	ck_assert_msg(store_message_insert(tx, &m, &why) == 0, "%s", why.text);
	ck_assert_msg(store_delivery_insert(tx, d, &why) == 0, "%s", why.text);
	commit_ok(tx);
	for (at = 0; at < n; at += got) {
		tx = begin_ok(s, 0);
		ck_assert_msg(store_sealed_read(tx, id, d->recipient, d->sealed_sha256, at, piece,
		    piece_len, &got, &total, &why) == 0, "%s", why.text);
		store_rollback(tx);
		ck_assert_uint_eq(total, n);
		ck_assert_uint_eq(got, n - at < piece_len ? n - at : piece_len);
		memcpy(back + at, piece, got);
	}
	free(piece);
}

/*
 * A sealed copy read in pieces: every piece as stored, across the pages of
 * its overflow chain; a replaced or purged copy is not found, an offset past
 * the end refused.
 */
START_TEST(test_sealed_read)
{
	char path[512], other[65];
	struct store *s;
	struct store_tx *tx;
	struct store_delivery d;
	struct why why = { 0 };
	uint8_t *big, *back, piece[7000];
	uint64_t total;
	size_t got, n, i;

	db_path(path, sizeof(path), "sealed");
	s = open_ok(path);
	n = 300001;
	big = malloc(n);
	back = calloc(1, n);
	ck_assert(big != NULL && back != NULL);
	for (i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 9));
	fill_delivery(&d, "m-big", "hovmand-care");
	d.sealed.data = big;
	d.sealed.len = n;
	util_sha256_hex(big, n, d.sealed_sha256);
	/* Pieces of an odd size. */
	insert_and_read_back(s, "m-big", &d, n, back, sizeof(piece));
	ck_assert_mem_eq(back, big, n);

	tx = begin_ok(s, 0);
	/* At the end: nothing, and no error. */
	ck_assert_int_eq(store_sealed_read(tx, "m-big", "hovmand-care", d.sealed_sha256, n, piece,
	    sizeof(piece), &got, &total, &why), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_uint_eq(total, n);
	ck_assert_int_eq(store_sealed_read(tx, "m-big", "hovmand-care", d.sealed_sha256, n + 1,
	    piece, sizeof(piece), &got, &total, &why), HEGN_ERR_INVALID);
	ck_assert_uint_eq(total, 0);
	/* Another copy's digest, another recipient: not found. */
	memcpy(other, d.sealed_sha256, sizeof(other));
	other[0] = other[0] == 'a' ? 'b' : 'a';
	ck_assert_int_eq(store_sealed_read(tx, "m-big", "hovmand-care", other, 0, piece,
	    sizeof(piece), &got, &total, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(store_sealed_read(tx, "m-big", "ringsted-homecare", d.sealed_sha256, 0,
	    piece, sizeof(piece), &got, &total, &why), HEGN_ERR_NOT_FOUND);
	store_rollback(tx);

	/* Purged content (retention) is gone for a reader that knew its digest. */
	raw_exec(path, "DELETE FROM sealed_copies WHERE seq IN"
	    " (SELECT seq FROM deliveries WHERE message_id = 'm-big')");
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_sealed_read(tx, "m-big", "hovmand-care", d.sealed_sha256, 0, piece,
	    sizeof(piece), &got, &total, &why), HEGN_ERR_NOT_FOUND);
	store_rollback(tx);
	free(big);
	free(back);
	store_close(s);
}
END_TEST

/* Entries in dir that are not a database, its WAL or its shared memory. */
static int
count_not_db(const char *dir)
{
	static const char *const ends[] = { ".db", ".db-wal", ".db-shm", ".db-journal" };
	struct dirent *e;
	DIR *d;
	size_t i, len;
	int n = 0, db;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		len = strlen(e->d_name);
		for (db = 0, i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
			if (len > strlen(ends[i]) &&
			    strcmp(e->d_name + len - strlen(ends[i]), ends[i]) == 0)
				db = 1;
		n += !db;
	}
	closedir(d);
	return n;
}

/*
 * A sealed copy that waited in a spill file goes into its row in pieces,
 * exact; one that comes back other than it was (changed, or short) is
 * refused and leaves no row.  The spill file has no name in the store's
 * directory and is mode 0600.
 */
START_TEST(test_spilled_copy)
{
	char path[512], dir[512];
	struct store *s;
	struct store_tx *tx;
	struct store_delivery d;
	struct why why = { 0 };
	struct stat st;
	uint8_t *big, *back;
	size_t n, i;
	int fd;

	db_path(path, sizeof(path), "spill");
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	s = open_ok(path);
	/* Past two pieces of SQ_SPILL_PIECE, not a multiple of one. */
	n = 2 * 1024 * 1024 + 4099;
	big = malloc(n);
	back = calloc(1, n);
	ck_assert(big != NULL && back != NULL);
	for (i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 167 + (i >> 11));
	ck_assert_msg(store_spill_open(s, &fd, &why) == 0, "%s", why.text);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(count_not_db(dir), 0);
	/* Another copy before it in the file: the offset is honoured. */
	ck_assert_int_eq(pwrite(fd, "0123456789", 10, 0), 10);
	ck_assert_int_eq(pwrite(fd, big, n, 10), (ssize_t)n);

	fill_delivery(&d, "m-spill", "hovmand-care");
	d.sealed.data = NULL;
	d.sealed.len = 0;
	d.spilled.fd = fd;
	d.spilled.off = 10;
	d.spilled.len = n;
	util_sha256_hex(big, n, d.sealed_sha256);
	insert_and_read_back(s, "m-spill", &d, n, back, 65536);
	ck_assert_mem_eq(back, big, n);

	/* Changed in the file: refused, naming the recipient, and no row. */
	fill_delivery(&d, "m-spill", "ringsted-homecare");
	d.sealed.data = NULL;
	d.sealed.len = 0;
	d.spilled.fd = fd;
	d.spilled.off = 10;
	d.spilled.len = n;
	util_sha256_hex(big, n, d.sealed_sha256);
	ck_assert_int_eq(pwrite(fd, "x", 1, 10 + n / 2), 1);
	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), HEGN_ERR_STORE);
	ck_assert_msg(strstr(why.text, "ringsted-homecare") != NULL &&
	    strstr(why.text, "changed") != NULL, "%s", why.text);
	store_rollback(tx);
	/* Short: the file ends before the copy does. */
	d.spilled.len = n + 1;
	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), HEGN_ERR_STORE);
	ck_assert_msg(strstr(why.text, "ends early") != NULL, "%s", why.text);
	store_rollback(tx);
	/* Both in memory and spilled: the caller's mistake, refused before the store. */
	d.spilled.len = n;
	d.sealed.data = big;
	d.sealed.len = n;
	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_delivery_insert(tx, &d, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM deliveries"), 1);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sealed_copies"), 1);

	close(fd);
	free(big);
	free(back);
	store_close(s);
}
END_TEST

/*
 * A file system without O_TMPFILE, for the spill file's fallback: while
 * no_tmpfile is set, this test binary's open (which libgateway's calls and
 * SQLite's reach) refuses O_TMPFILE as such a file system does, and
 * remembers the last name opened with O_EXCL.  With no_tmpfile at 2 that
 * open is refused too.
 */
static int no_tmpfile;
static char excl_name[512];

int
open(const char *path, int flags, ...)
{
	static int (*real)(const char *, int, ...);
	mode_t mode = 0;
	va_list ap;

	if (real == NULL &&
	    (real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open")) == NULL)
		abort();
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (no_tmpfile && (flags & O_TMPFILE) == O_TMPFILE) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (no_tmpfile && (flags & O_EXCL)) {
		snprintf(excl_name, sizeof(excl_name), "%s", path);
		if (no_tmpfile == 2) {
			errno = EACCES;
			return -1;
		}
	}
	return real(path, flags, mode);
}

/*
 * Without O_TMPFILE the spill file is a new file of a random name beside
 * the database, made only if no such name exists, never through a
 * symbolic link, and unlinked at once: still nobody else's to open, and
 * gone with the descriptor.
 */
START_TEST(test_spill_fallback)
{
	char path[512], dir[512], prefix[600], buf[6];
	struct store *s;
	struct why why = { 0 };
	struct stat st;
	int fd;

	db_path(path, sizeof(path), "spill-fallback");
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	s = open_ok(path);
	no_tmpfile = 1;
	excl_name[0] = '\0';
	fd = -1;
	ck_assert_msg(store_spill_open(s, &fd, &why) == 0, "%s", why.text);
	no_tmpfile = 0;
	ck_assert_int_ge(fd, 0);
	snprintf(prefix, sizeof(prefix), "%s/.hegn-spill-", dir);
	ck_assert_msg(strncmp(excl_name, prefix, strlen(prefix)) == 0 &&
	    strlen(excl_name) == strlen(prefix) + 36, "made as %s", excl_name);
	ck_assert_int_eq(lstat(excl_name, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(count_not_db(dir), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(pwrite(fd, "sealed", 6, 0), 6);
	ck_assert_int_eq(pread(fd, buf, 6, 0), 6);
	ck_assert_mem_eq(buf, "sealed", 6);
	close(fd);

	/* Neither way works: the error names the directory and the reason. */
	no_tmpfile = 2;
	fd = 0;
	ck_assert_int_eq(store_spill_open(s, &fd, &why), HEGN_ERR_STORE);
	no_tmpfile = 0;
	ck_assert_int_eq(fd, -1);
	ck_assert_msg(strstr(why.text, dir) != NULL &&
	    strstr(why.text, strerror(EACCES)) != NULL, "%s", why.text);
	ck_assert_int_eq(count_not_db(dir), 0);
	store_close(s);
}
END_TEST

/* Every line of the plan of sql on path; fails on a full scan or (unless sort_ok) a sort. */
static void
assert_plan_uses(const char *path, const char *sql, const char *index, int sort_ok)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char q[1024];
	int found = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);

		ck_assert_ptr_nonnull(detail);
		/* The audit query's numbered blocks read no table. */
		ck_assert_msg(strncmp(detail, "SCAN", 4) != 0 || strcmp(detail, "SCAN blocks") == 0 ||
		    strcmp(detail, "SCAN CONSTANT ROW") == 0, "full scan: %s", detail);
		ck_assert_msg(sort_ok || strstr(detail, "USE TEMP B-TREE") == NULL, "sort: %s",
		    detail);
		if (strstr(detail, index) != NULL &&
		    (strstr(detail, "USING INDEX") != NULL ||
		    strstr(detail, "USING COVERING INDEX") != NULL))
			found = 1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ck_assert_msg(found, "the plan does not use %s", index);
}

/*
 * The plan of sql on path may scan, but only the (partial) index named:
 * never the table itself, and no sort.
 */
static void
assert_plan_scans_only(const char *path, const char *sql, const char *index)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char q[1024];
	int found = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s",
	    sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);

		ck_assert_ptr_nonnull(detail);
		ck_assert_msg(strncmp(detail, "SCAN", 4) != 0 || strstr(detail, index) != NULL,
		    "scan outside %s: %s", index, detail);
		ck_assert_msg(strstr(detail, "USE TEMP B-TREE") == NULL, "sort: %s", detail);
		if (strstr(detail, index) != NULL)
			found = 1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ck_assert_msg(found, "the plan does not use %s", index);
}

START_TEST(test_query_plans)
{
	char path[512], id[32], text[160];
	struct store *s;
	struct store_tx *tx;
	struct store_audit e;
	int i;

	db_path(path, sizeof(path), "plan");
	s = open_ok(path);
	for (i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "m-%d", i);
		put_message(s, id, i % 2 ? "hovmand-care" : "ringsted-homecare");
	}
	/*
	 * A thousand more, submitted over time: with ANALYZE's figures for a
	 * few rows SQLite rightly scans a table that small whatever the index.
	 */
	tx = begin_ok(s, 1);
	for (i = 0; i < 1000; i++) {
		struct store_message m;
		struct store_delivery d;
		struct why why = { 0 };

		snprintf(id, sizeof(id), "old-%d", i);
		fill_message(&m, id, "ringsted-visitation");
		m.created_ms = 1000000 + (int64_t)i * 1000;
		fill_delivery(&d, id, "hovmand-care");
		ck_assert_msg(store_message_insert(tx, &m, &why) == 0, "%s", why.text);
		ck_assert_msg(store_delivery_insert(tx, &d, &why) == 0, "%s", why.text);
	}
	commit_ok(tx);
	tx = begin_ok(s, 1);
	/* Many entries for one citizen: a walk in seq order would look cheap. */
	for (i = 0; i < 200; i++) {
		fill_audit(&e, text, sizeof(text), i % 10 ? "c-busy" : "c-rare", 1000 + i, i);
		append_ok(tx, &e);
	}
	/* A few scheduled, most not: the due index holds the few. */
	for (i = 0; i < 20; i += 5) {
		snprintf(id, sizeof(id), "m-%d", i);
		set_next(tx, id, i % 2 ? "hovmand-care" : "ringsted-homecare", 1000 + i);
	}
	for (i = 0; i < 20; i++) {
		struct store_external x;
		struct why why = { 0 };

		fill_external(&x, 100 * i, "ringsted-homecare", "fax");
		ck_assert_msg(store_external_insert(tx, &x, &why) == 0, "%s", why.text);
	}
	commit_ok(tx);
	for (i = 0; i < 2; i++) {
		assert_plan_uses(path, store_sqlite_inbox_sql, "deliveries_inbox", 0);
		assert_plan_uses(path, store_sqlite_event_list_sql, "events_message", 0);
		/* Only one citizen's matches are sorted by seq. */
		assert_plan_uses(path, store_sqlite_audit_query_sql, "audit_citizen", 1);
		/* Due copies straight from the partial index, in next_ms order. */
		assert_plan_uses(path, store_sqlite_schedule_due_sql, "deliveries_due", 0);
		/* Streamed: no sort, which would read the whole window first. */
		assert_plan_uses(path, store_sqlite_outcomes_sql, "messages_created", 0);
		assert_plan_uses(path, store_sqlite_external_list_sql, "external_comms_at", 0);
		assert_plan_scans_only(path, store_sqlite_queue_stats_sql, "deliveries_open");
		assert_plan_uses(path, store_sqlite_sealed_locate_sql, "sqlite_autoindex_deliveries_2",
		    0);
		/* Retention reads only the batch's range, never what it purged before. */
		assert_plan_uses(path, store_sqlite_purge_end_sql, "messages_created", 0);
		assert_plan_uses(path, store_sqlite_purge_copies_sql, "messages_created", 0);
		assert_plan_uses(path, store_sqlite_purge_messages_sql, "messages_created", 0);
		assert_plan_uses(path, store_sqlite_purge_fail_events_sql, "messages_created", 0);
		assert_plan_uses(path, store_sqlite_purge_fail_copies_sql, "messages_created", 0);
		assert_plan_uses(path, store_sqlite_purge_unschedule_sql, "messages_created", 0);
		/* After ANALYZE as well: the plan must not flip to a scan once stats exist. */
		raw_exec(path, "ANALYZE");
	}
	store_close(s);
}
END_TEST

/* Crash-safety: a writer that dies before COMMIT leaves nothing behind. */
START_TEST(test_crash_before_commit)
{
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_message m;
	struct store_delivery d;
	struct why why = { 0 };
	uint8_t *big;
	pid_t pid;
	int status, i;
	char v[64], id[32];

	db_path(path, sizeof(path), "crash");
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* The child: one committed message, then a large uncommitted tx. */
		if (store_open(path, &s, &why) != 0)
			_exit(2);
		put_message(s, "m-kept", "hovmand-care");
		if (store_begin(s, 1, &tx, &why) != 0)
			_exit(3);
		/* Bigger than the page cache, so uncommitted pages spill into the WAL. */
		big = calloc(1, 8 << 20);
		if (big == NULL)
			_exit(4);
		for (i = 0; i < 4; i++) {
			snprintf(id, sizeof(id), "m-lost-%d", i);
			fill_message(&m, id, "ringsted-visitation");
			m.signed_der.data = big;
			m.signed_der.len = 8 << 20;
			fill_delivery(&d, id, "hovmand-care");
			if (store_message_insert(tx, &m, &why) != 0 ||
			    store_delivery_insert(tx, &d, &why) != 0)
				_exit(5);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	s = open_ok(path);
	ck_assert(message_exists(s, "m-kept"));
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "m-lost-%d", i);
		ck_assert(!message_exists(s, id));
	}
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_sqlite_pragma(tx, "integrity_check", v, sizeof(v), &why), 0);
	ck_assert_str_eq(v, "ok");
	store_rollback(tx);
	/* The store takes writes again after the crash. */
	put_message(s, "m-after", "hovmand-care");
	store_close(s);
}
END_TEST

#define WRITERS 4
#define READERS 2
#define PER_WRITER 200

struct worker {
	struct store *s;
	int n;
	int errors;
	char why[512];
	volatile int *stop;
};

static void *
writer(void *arg)
{
	struct worker *w = arg;
	struct store_message m;
	struct store_delivery d;
	struct store_tx *tx;
	struct why why = { 0 };
	char id[32];
	int i;

	for (i = 0; i < PER_WRITER; i++) {
		snprintf(id, sizeof(id), "w%d-%d", w->n, i);
		fill_message(&m, id, "ringsted-visitation");
		fill_delivery(&d, id, i % 2 ? "hovmand-care" : "ringsted-homecare");
		if (store_begin(w->s, 1, &tx, &why) != 0 ||
		    store_message_insert(tx, &m, &why) != 0 ||
		    store_delivery_insert(tx, &d, &why) != 0 ||
		    store_commit(tx, &why) != 0) {
			w->errors++;
			snprintf(w->why, sizeof(w->why), "%s", why.text);
			return NULL;
		}
	}
	return NULL;
}

static void *
reader(void *arg)
{
	struct worker *w = arg;
	struct store_inbox_item *it;
	struct store_tx *tx;
	struct why why = { 0 };
	int64_t last;
	size_t n, i;

	while (!__atomic_load_n(w->stop, __ATOMIC_SEQ_CST)) {
		if (store_begin(w->s, 0, &tx, &why) != 0 ||
		    store_inbox(tx, w->n ? "hovmand-care" : "ringsted-homecare", 0, 1000,
		    &it, &n, &why) != 0) {
			w->errors++;
			snprintf(w->why, sizeof(w->why), "%s", why.text);
			store_rollback(tx);
			return NULL;
		}
		last = 0;
		for (i = 0; i < n; i++) {
			if (it[i].seq <= last) {
				w->errors++;
				snprintf(w->why, sizeof(w->why), "inbox out of order");
			}
			last = it[i].seq;
		}
		free(it);
		if (store_commit(tx, &why) != 0) {
			w->errors++;
			snprintf(w->why, sizeof(w->why), "%s", why.text);
			return NULL;
		}
	}
	return NULL;
}

START_TEST(test_concurrent)
{
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_inbox_item *it = NULL;
	struct worker w[WRITERS + READERS];
	pthread_t th[WRITERS + READERS];
	struct why why = { 0 };
	volatile int stop = 0;
	size_t n, total = 0;
	int i;

	db_path(path, sizeof(path), "threads");
	s = open_ok(path);
	for (i = 0; i < WRITERS + READERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = s;
		w[i].n = i < WRITERS ? i : i - WRITERS;
		w[i].stop = &stop;
		ck_assert_int_eq(pthread_create(&th[i], NULL, i < WRITERS ? writer : reader,
		    &w[i]), 0);
	}
	for (i = 0; i < WRITERS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	for (i = WRITERS; i < WRITERS + READERS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	for (i = 0; i < WRITERS + READERS; i++)
		ck_assert_msg(w[i].errors == 0, "thread %d: %s", i, w[i].why);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_inbox(tx, "hovmand-care", 0, 1000, &it, &n, &why), 0);
	total += n;
	free(it);
	ck_assert_int_eq(store_inbox(tx, "ringsted-homecare", 0, 1000, &it, &n, &why), 0);
	total += n;
	free(it);
	store_rollback(tx);
	ck_assert_uint_eq(total, WRITERS * PER_WRITER);
	store_close(s);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM messages"), WRITERS * PER_WRITER);
	ck_assert_int_eq(raw_int(path, "SELECT count(DISTINCT seq) FROM deliveries"),
	    WRITERS * PER_WRITER);
}
END_TEST

/* A database made by a hegn that knew schema version 2, with rows in it. */
START_TEST(test_migration_from_v2)
{
	char path[1024], sql[2048];
	const char *v3;
	struct store *s;
	struct store_tx *tx;
	struct store_schedule sc;
	struct store_delivery d;
	struct store_external x;
	struct store_user u;
	struct why why = { 0 };
	int64_t depth, oldest;

	ck_assert_ptr_null(strstr(store_sqlite_migration_sql(2), "next_ms"));
	v3 = store_sqlite_migration_sql(3);
	ck_assert_ptr_nonnull(v3);
	ck_assert_ptr_nonnull(strstr(v3, "external_comms"));

	db_path(path, sizeof(path), "v2");
	raw_exec(path, store_sqlite_migration_sql(1));
	raw_exec(path, store_sqlite_migration_sql(2));
	/*
	 * One message, four copies: acknowledged after a fetch, rejected
	 * without one, delivered without a receipt, and still waiting.
	 */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = 2;"
	    " INSERT INTO messages (id, sender, kind, content_sha256, citizen_ref, created_ms,"
	    " deadline_ms, signed_der) VALUES ('m-old', 'ringsted-visitation', 'referral', '',"
	    " 'c1', 5, 0, x'3000');"
	    " UPDATE counters SET value = 4 WHERE name = 'delivery_seq';"
	    " INSERT INTO deliveries (message_id, recipient, state, channel, seq, updated_ms,"
	    " sealed_sha256, sealed) VALUES"
	    " ('m-old', 'hovmand-care', 'acknowledged', 'pull', 1, 40, '', x'3080'),"
	    " ('m-old', 'ringsted-homecare', 'rejected', 'pull', 2, 50, '', NULL),"
	    " ('m-old', 'region-hospital', 'delivered', 'pull', 3, 30, '', NULL),"
	    " ('m-old', 'solsikken', 'submitted', 'pull', 4, 6, '', NULL);"
	    " INSERT INTO events (message_id, recipient, at_ms, event, actor, detail) VALUES"
	    " ('m-old', 'hovmand-care', 20, 'fetched', 'hovmand-care', 'pull'),"
	    " ('m-old', 'hovmand-care', 25, 'fetched', 'hovmand-care', 'pull'),"
	    " ('m-old', 'hovmand-care', 40, 'acknowledged', 'hovmand-care', '');"
	    " INSERT INTO receipts (message_id, recipient, status, reason, received_ms,"
	    " signed_der) VALUES ('m-old', 'hovmand-care', 'accepted', '', 40, x'30'),"
	    " ('m-old', 'ringsted-homecare', 'rejected', 'unknown citizen', 50, x'30');"
	    " INSERT INTO users (username, party, role, pw_hash, created_ms, updated_ms)"
	    " VALUES ('anna', 'ringsted-visitation', 'caseworker', '$argon2id$x', 1, 1);");
	raw_exec(path, sql);
	ck_assert_int_eq(chmod(path, 0600), 0);

	s = open_ok(path);
	ck_assert_int_eq(store_schema_version(s), 6);
	ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 6);
	tx = begin_ok(s, 0);
	/* The old rows are all there, and the new columns hold what the log said. */
	ck_assert_int_eq(store_delivery_get(tx, "m-old", "hovmand-care", 1, &d, &why), 0);
	ck_assert_int_eq(d.seq, 1);
	ck_assert_uint_eq(d.sealed.len, 2);
	ck_assert_mem_eq(d.sealed.data, "\x30\x80", 2);
	store_delivery_clear(&d);
	/* Version 5 moved the copies apart: the one there was, and no column left behind. */
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sealed_copies"), 1);
	ck_assert_int_eq(raw_int(path, "SELECT seq FROM sealed_copies"), 1);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM pragma_table_info('deliveries')"
	    " WHERE name = 'sealed'"), 0);
	ck_assert_int_eq(store_delivery_get(tx, "m-old", "ringsted-homecare", 1, &d, &why), 0);
	ck_assert_ptr_null(d.sealed.data);
	store_delivery_clear(&d);
	ck_assert_int_eq(store_user_get(tx, "anna", &u, &why), 0);
	ck_assert_msg(store_schedule_get(tx, "m-old", "hovmand-care", &sc, &why) == 0, "%s",
	    why.text);
	ck_assert_str_eq(sc.state, STORE_STATE_ACKNOWLEDGED);
	ck_assert_str_eq(sc.channel, "pull");
	ck_assert_int_eq(sc.created_ms, 5);
	ck_assert_int_eq(sc.delivered_ms, 20);
	ck_assert_int_eq(sc.acked_ms, 40);
	ck_assert_int_eq(sc.next_ms, 0);
	ck_assert_int_eq(sc.channel_index, 0);
	ck_assert_int_eq(sc.attempts, 0);
	ck_assert_int_eq(sc.resends, 0);
	ck_assert_int_eq(sc.duplicates, 0);
	ck_assert_int_eq(sc.deadline_ms, 0);
	ck_assert_str_eq(sc.fallback_reason, "");
	ck_assert_str_eq(sc.last_error, "");
	ck_assert_int_eq(store_schedule_get(tx, "m-old", "ringsted-homecare", &sc, &why), 0);
	ck_assert_int_eq(sc.delivered_ms, 50);
	ck_assert_int_eq(sc.acked_ms, 50);
	ck_assert_int_eq(store_schedule_get(tx, "m-old", "region-hospital", &sc, &why), 0);
	ck_assert_int_eq(sc.delivered_ms, 0);
	ck_assert_int_eq(sc.acked_ms, 0);
	ck_assert_int_eq(store_schedule_get(tx, "m-old", "solsikken", &sc, &why), 0);
	ck_assert_int_eq(sc.delivered_ms, 0);
	ck_assert_int_eq(sc.acked_ms, 0);
	ck_assert_str_eq(sc.state, STORE_STATE_SUBMITTED);
	/* Nothing from before is scheduled; two copies are unacknowledged. */
	{
		struct store_schedule *due = NULL;
		size_t n = 99;

		ck_assert_int_eq(store_schedule_due(tx, INT64_MAX, 0, &due, &n, &why), 0);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_null(due);
	}
	ck_assert_int_eq(store_queue_stats(tx, &depth, &oldest, &why), 0);
	ck_assert_int_eq(depth, 2);
	ck_assert_int_eq(oldest, 5);
	store_rollback(tx);

	/* The new table works, and the counter carried over. */
	tx = begin_ok(s, 1);
	fill_external(&x, 7, "solsikken", "phone");
	ck_assert_msg(store_external_insert(tx, &x, &why) == 0, "%s", why.text);
	ck_assert_int_eq(x.id, 1);
	commit_ok(tx);
	put_message(s, "m-new", "hovmand-care");
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_delivery_get(tx, "m-new", "hovmand-care", 0, &d, &why), 0);
	ck_assert_int_eq(d.seq, 5);
	store_delivery_clear(&d);
	store_rollback(tx);
	store_close(s);

	/* A second open finds nothing to do. */
	s = open_ok(path);
	ck_assert_int_eq(store_schema_version(s), 6);
	store_close(s);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM deliveries"), 5);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM receipts"), 2);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM events"), 3);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM external_comms"), 1);
}
END_TEST

START_TEST(test_schedule_round_trip)
{
	static const char *const rcpts[] = { "hovmand-care", "ringsted-homecare" };
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_schedule sc, so;
	struct store_delivery d;
	struct why why = { 0 };

	db_path(path, sizeof(path), "sched");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	add_message(tx, "m-s", 1795772760000LL, rcpts, 2);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	memset(&so, 'x', sizeof(so));
	ck_assert_msg(store_schedule_get(tx, "m-s", "hovmand-care", &so, &why) == 0, "%s",
	    why.text);
	ck_assert_str_eq(so.message_id, "m-s");
	ck_assert_str_eq(so.recipient, "hovmand-care");
	ck_assert_str_eq(so.state, STORE_STATE_SUBMITTED);
	ck_assert_str_eq(so.channel, "pull");
	ck_assert_int_eq(so.created_ms, 1795772760000LL);
	ck_assert_int_eq(so.next_ms, 0);
	ck_assert_int_eq(so.attempts, 0);
	ck_assert_str_eq(so.last_error, "");
	/* Writes need a write transaction. */
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INTERNAL);
	memset(&so, 'x', sizeof(so));
	ck_assert_int_eq(store_schedule_get(tx, "m-s", "region-hospital", &so, &why),
	    HEGN_ERR_NOT_FOUND);
	ck_assert_str_eq(so.message_id, "");
	ck_assert_int_eq(so.next_ms, 0);
	ck_assert_int_eq(store_schedule_get(tx, "m-none", "hovmand-care", &so, &why),
	    HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(store_schedule_get(tx, "m-s", "", &so, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_schedule_get(NULL, "m-s", "hovmand-care", &so, &why),
	    HEGN_ERR_INTERNAL);
	store_rollback(tx);

	/* Every field written, created_ms excepted (it is the message's). */
	memset(&sc, 0, sizeof(sc));
	snprintf(sc.message_id, sizeof(sc.message_id), "m-s");
	snprintf(sc.recipient, sizeof(sc.recipient), "hovmand-care");
	snprintf(sc.state, sizeof(sc.state), STORE_STATE_FALLBACK);
	snprintf(sc.channel, sizeof(sc.channel), "fax");
	sc.channel_index = 2;
	sc.attempts = 3;
	sc.resends = 1;
	sc.duplicates = 4;
	sc.next_ms = 1795772990000LL;
	sc.deadline_ms = 1795776360000LL;
	sc.created_ms = 12345;
	sc.delivered_ms = 1795772800000LL;
	sc.acked_ms = 1795772900000LL;
	snprintf(sc.fallback_reason, sizeof(sc.fallback_reason), "deadline passed on smime-mail");
	snprintf(sc.last_error, sizeof(sc.last_error), "smtp: 451 try again later");
	tx = begin_ok(s, 1);
	ck_assert_msg(store_schedule_update(tx, &sc, &why) == 0, "%s", why.text);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_schedule_get(tx, "m-s", "hovmand-care", &so, &why), 0);
	ck_assert_str_eq(so.state, STORE_STATE_FALLBACK);
	ck_assert_str_eq(so.channel, "fax");
	ck_assert_int_eq(so.channel_index, 2);
	ck_assert_int_eq(so.attempts, 3);
	ck_assert_int_eq(so.resends, 1);
	ck_assert_int_eq(so.duplicates, 4);
	ck_assert_int_eq(so.next_ms, sc.next_ms);
	ck_assert_int_eq(so.deadline_ms, sc.deadline_ms);
	ck_assert_int_eq(so.created_ms, 1795772760000LL);
	ck_assert_int_eq(so.delivered_ms, sc.delivered_ms);
	ck_assert_int_eq(so.acked_ms, sc.acked_ms);
	ck_assert_str_eq(so.fallback_reason, sc.fallback_reason);
	ck_assert_str_eq(so.last_error, sc.last_error);
	/* The delivery row is the same row: state and channel moved, the rest stayed. */
	ck_assert_int_eq(store_delivery_get(tx, "m-s", "hovmand-care", 1, &d, &why), 0);
	ck_assert_str_eq(d.state, STORE_STATE_FALLBACK);
	ck_assert_str_eq(d.channel, "fax");
	ck_assert_int_eq(d.seq, 1);
	ck_assert_uint_gt(d.sealed.len, 0);
	store_delivery_clear(&d);
	/* The other copy of the message is untouched. */
	ck_assert_int_eq(store_schedule_get(tx, "m-s", "ringsted-homecare", &so, &why), 0);
	ck_assert_str_eq(so.state, STORE_STATE_SUBMITTED);
	ck_assert_int_eq(so.attempts, 0);
	ck_assert_int_eq(so.next_ms, 0);
	store_rollback(tx);

	/* Refusals, none of which changes the row. */
	tx = begin_ok(s, 1);
	so = sc;
	snprintf(so.recipient, sizeof(so.recipient), "region-hospital");
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(why.text, "region-hospital"));
	so = sc;
	snprintf(so.state, sizeof(so.state), "lost");
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	memset(so.state, 's', sizeof(so.state));
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	so = sc;
	so.attempts = -1;
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	so = sc;
	so.next_ms = -5;
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	so = sc;
	so.resends = -1;
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	so = sc;
	memset(so.last_error, 'e', sizeof(so.last_error));
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "last_error"));
	so = sc;
	memset(so.fallback_reason, 'f', sizeof(so.fallback_reason));
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	so = sc;
	so.message_id[0] = '\0';
	ck_assert_int_eq(store_schedule_update(tx, &so, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_schedule_update(tx, NULL, &why), HEGN_ERR_INTERNAL);
	commit_ok(tx);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_schedule_get(tx, "m-s", "hovmand-care", &so, &why), 0);
	ck_assert_int_eq(so.attempts, 3);
	ck_assert_int_eq(so.next_ms, sc.next_ms);
	ck_assert_str_eq(so.state, STORE_STATE_FALLBACK);
	store_rollback(tx);
	store_close(s);

	/* Values another writer left that do not fit are refused, not cut. */
	raw_exec(path, "UPDATE deliveries SET last_error = printf('%.300c', 'x')"
	    " WHERE recipient = 'hovmand-care'");
	raw_exec(path, "UPDATE deliveries SET attempts = 3000000000"
	    " WHERE recipient = 'ringsted-homecare'");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_schedule_get(tx, "m-s", "hovmand-care", &so, &why),
	    HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "last_error"));
	ck_assert_str_eq(so.message_id, "");
	ck_assert_int_eq(store_schedule_get(tx, "m-s", "ringsted-homecare", &so, &why),
	    HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "attempts"));
	ck_assert_int_eq(so.attempts, 0);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_schedule_due)
{
	/* next_ms per message; 0 is never due, whatever the clock says. */
	static const int64_t next[] = { 0, 100, 50, 300, 200, 1000 };
	static const char *const rcpt[] = { "hovmand-care" };
	char path[512], id[32];
	struct store *s;
	struct store_tx *tx;
	struct store_schedule *due = NULL;
	struct why why = { 0 };
	size_t n, i;

	db_path(path, sizeof(path), "due");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	for (i = 0; i < sizeof(next) / sizeof(next[0]); i++) {
		snprintf(id, sizeof(id), "m-%zu", i);
		add_message(tx, id, 10 + (int64_t)i, rcpt, 1);
		set_next(tx, id, rcpt[0], next[i]);
	}
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_msg(store_schedule_due(tx, 250, 0, &due, &n, &why) == 0, "%s", why.text);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(due[0].message_id, "m-2");
	ck_assert_int_eq(due[0].next_ms, 50);
	ck_assert_int_eq(due[0].created_ms, 12);
	ck_assert_str_eq(due[0].recipient, "hovmand-care");
	ck_assert_str_eq(due[1].message_id, "m-1");
	ck_assert_str_eq(due[2].message_id, "m-4");
	free(due);
	/* The limit keeps the soonest. */
	ck_assert_int_eq(store_schedule_due(tx, 250, 2, &due, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(due[0].next_ms, 50);
	ck_assert_int_eq(due[1].next_ms, 100);
	free(due);
	/* Boundaries: due at exactly next_ms, not a millisecond before. */
	ck_assert_int_eq(store_schedule_due(tx, 49, 0, &due, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(due);
	ck_assert_int_eq(store_schedule_due(tx, 50, 0, &due, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	free(due);
	/* A clock at 0 or before sees nothing, not the unscheduled copy. */
	ck_assert_int_eq(store_schedule_due(tx, 0, 0, &due, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(store_schedule_due(tx, INT64_MIN, 0, &due, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	/* The end of time: everything scheduled, and still not m-0. */
	ck_assert_int_eq(store_schedule_due(tx, INT64_MAX, 0, &due, &n, &why), 0);
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < n; i++) {
		ck_assert_str_ne(due[i].message_id, "m-0");
		if (i > 0)
			ck_assert_int_le(due[i - 1].next_ms, due[i].next_ms);
	}
	free(due);
	ck_assert_int_eq(store_schedule_due(tx, 250, 0, NULL, &n, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);

	/* Taking a copy off the schedule (next_ms 0) drops it from the due list. */
	tx = begin_ok(s, 1);
	set_next(tx, "m-2", rcpt[0], 0);
	ck_assert_int_eq(store_schedule_due(tx, 250, 0, &due, &n, &why), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(due[0].message_id, "m-1");
	free(due);
	commit_ok(tx);

	/* At most STORE_SCHEDULE_MAX per call, whatever the limit asked. */
	tx = begin_ok(s, 1);
	for (i = 0; i < STORE_SCHEDULE_MAX + 5; i++) {
		snprintf(id, sizeof(id), "m-bulk-%zu", i);
		add_message(tx, id, 20, rcpt, 1);
		set_next(tx, id, rcpt[0], 2000 + (int64_t)i);
	}
	commit_ok(tx);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_schedule_due(tx, INT64_MAX, 100000, &due, &n, &why), 0);
	ck_assert_uint_eq(n, STORE_SCHEDULE_MAX);
	/* The soonest thousand: the five earlier ones, then the bulk in order. */
	ck_assert_int_eq(due[0].next_ms, 100);
	ck_assert_int_eq(due[4].next_ms, 2000);
	ck_assert_int_eq(due[n - 1].next_ms, 2000 + STORE_SCHEDULE_MAX - 5);
	free(due);
	ck_assert_int_eq(store_schedule_due(tx, INT64_MAX, 0, &due, &n, &why), 0);
	ck_assert_uint_eq(n, STORE_SCHEDULE_MAX);
	free(due);
	store_rollback(tx);
	store_close(s);
}
END_TEST

/* Collects outcomes; stops with stop_rc after stop_after rows (0: never). */
struct outcome_sink {
	struct store_outcome rows[16];
	size_t n;
	size_t stop_after;
	int stop_rc;
	struct store_tx *reenter;  /* call store_outcomes on it from inside */
	int reenter_rc;
};

static int
outcome_collect(const struct store_outcome *o, void *arg)
{
	struct outcome_sink *k = arg;
	struct why why = { 0 };

	ck_assert_uint_lt(k->n, sizeof(k->rows) / sizeof(k->rows[0]));
	k->rows[k->n++] = *o;
	if (k->reenter != NULL) {
		k->reenter_rc = store_outcomes(k->reenter, 0, 0, outcome_collect, k, &why);
		return k->reenter_rc;
	}
	if (k->stop_after != 0 && k->n == k->stop_after)
		return k->stop_rc;
	return 0;
}

static size_t
outcomes_count(struct store_tx *tx, int64_t from, int64_t to)
{
	struct outcome_sink k;
	struct why why = { 0 };

	memset(&k, 0, sizeof(k));
	ck_assert_msg(store_outcomes(tx, from, to, outcome_collect, &k, &why) == 0, "%s",
	    why.text);
	return k.n;
}

START_TEST(test_outcomes)
{
	static const char *const two[] = { "ringsted-homecare", "hovmand-care" };
	static const char *const one[] = { "solsikken" };
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_schedule sc;
	struct store_message m;
	struct outcome_sink k;
	struct why why = { 0 };

	db_path(path, sizeof(path), "outcomes");
	s = open_ok(path);
	tx = begin_ok(s, 1);
	/* Inserted out of time order: the walk is by submission time. */
	add_message(tx, "m-c", 3000, one, 1);
	add_message(tx, "m-a", 1000, two, 2);
	add_message(tx, "m-b2", 2000, one, 1);
	add_message(tx, "m-b1", 2000, two, 2);
	fill_message(&m, "m-bare", "ringsted-visitation");
	m.created_ms = 1500;
	ck_assert_int_eq(store_message_insert(tx, &m, &why), 0);
	ck_assert_int_eq(store_schedule_get(tx, "m-a", "hovmand-care", &sc, &why), 0);
	snprintf(sc.state, sizeof(sc.state), STORE_STATE_FALLBACK);
	snprintf(sc.channel, sizeof(sc.channel), "fax");
	sc.resends = 2;
	sc.duplicates = 1;
	sc.delivered_ms = 1100;
	sc.acked_ms = 1200;
	snprintf(sc.fallback_reason, sizeof(sc.fallback_reason), "no receipt by the deadline");
	ck_assert_int_eq(store_schedule_update(tx, &sc, &why), 0);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	memset(&k, 0, sizeof(k));
	ck_assert_msg(store_outcomes(tx, 0, 0, outcome_collect, &k, &why) == 0, "%s", why.text);
	/* Every copy once; a message without copies yields nothing. */
	ck_assert_uint_eq(k.n, 6);
	ck_assert_str_eq(k.rows[0].message_id, "m-a");
	ck_assert_str_eq(k.rows[0].recipient, "hovmand-care");
	ck_assert_str_eq(k.rows[0].sender, "ringsted-visitation");
	ck_assert_str_eq(k.rows[0].kind, "referral");
	ck_assert_str_eq(k.rows[0].state, STORE_STATE_FALLBACK);
	ck_assert_str_eq(k.rows[0].channel, "fax");
	ck_assert_int_eq(k.rows[0].resends, 2);
	ck_assert_int_eq(k.rows[0].duplicates, 1);
	ck_assert_int_eq(k.rows[0].created_ms, 1000);
	ck_assert_int_eq(k.rows[0].delivered_ms, 1100);
	ck_assert_int_eq(k.rows[0].acked_ms, 1200);
	ck_assert_str_eq(k.rows[0].fallback_reason, "no receipt by the deadline");
	ck_assert_str_eq(k.rows[1].message_id, "m-a");
	ck_assert_str_eq(k.rows[1].recipient, "ringsted-homecare");
	ck_assert_str_eq(k.rows[1].state, STORE_STATE_SUBMITTED);
	ck_assert_str_eq(k.rows[1].fallback_reason, "");
	ck_assert_int_eq(k.rows[1].acked_ms, 0);
	/* Same millisecond: in the order submitted, each message's copies together. */
	ck_assert_str_eq(k.rows[2].message_id, "m-b2");
	ck_assert_str_eq(k.rows[3].message_id, "m-b1");
	ck_assert_str_eq(k.rows[3].recipient, "hovmand-care");
	ck_assert_str_eq(k.rows[4].message_id, "m-b1");
	ck_assert_str_eq(k.rows[4].recipient, "ringsted-homecare");
	ck_assert_str_eq(k.rows[5].message_id, "m-c");
	ck_assert_int_eq(k.rows[5].created_ms, 3000);

	/* [from, to): the start counts, the end does not; 0 leaves an end open. */
	ck_assert_uint_eq(outcomes_count(tx, 2000, 3000), 3);
	ck_assert_uint_eq(outcomes_count(tx, 1000, 2000), 2);
	ck_assert_uint_eq(outcomes_count(tx, 1001, 2000), 0);
	ck_assert_uint_eq(outcomes_count(tx, 1000, 1001), 2);
	ck_assert_uint_eq(outcomes_count(tx, 0, 2000), 2);
	ck_assert_uint_eq(outcomes_count(tx, 2001, 0), 1);
	ck_assert_uint_eq(outcomes_count(tx, 3001, 0), 0);
	ck_assert_uint_eq(outcomes_count(tx, 5000, 1000), 0);
	ck_assert_uint_eq(outcomes_count(tx, 0, INT64_MIN), 0);
	ck_assert_uint_eq(outcomes_count(tx, INT64_MIN, INT64_MAX), 6);

	/* A non-zero return stops the walk and comes back as it is. */
	memset(&k, 0, sizeof(k));
	k.stop_after = 2;
	k.stop_rc = 7;
	ck_assert_int_eq(store_outcomes(tx, 0, 0, outcome_collect, &k, &why), 7);
	ck_assert_uint_eq(k.n, 2);
	memset(&k, 0, sizeof(k));
	k.stop_after = 1;
	k.stop_rc = HEGN_ERR_IO;
	ck_assert_int_eq(store_outcomes(tx, 0, 0, outcome_collect, &k, &why), HEGN_ERR_IO);
	ck_assert_uint_eq(k.n, 1);
	/* Calling it again from the callback is refused, and leaves the statement usable. */
	memset(&k, 0, sizeof(k));
	k.reenter = tx;
	ck_assert_int_eq(store_outcomes(tx, 0, 0, outcome_collect, &k, &why),
	    HEGN_ERR_INTERNAL);
	ck_assert_int_eq(k.reenter_rc, HEGN_ERR_INTERNAL);
	ck_assert_uint_eq(k.n, 1);
	ck_assert_uint_eq(outcomes_count(tx, 0, 0), 6);
	ck_assert_int_eq(store_outcomes(tx, 0, 0, NULL, NULL, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);
	store_close(s);

	/* A stored value too long for its field stops the walk with an error. */
	raw_exec(path, "UPDATE deliveries SET fallback_reason = printf('%.300c', 'x')"
	    " WHERE message_id = 'm-b1'");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(store_outcomes(tx, 0, 0, outcome_collect, &k, &why), HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "fallback_reason"));
	ck_assert_uint_eq(k.n, 3);
	store_rollback(tx);
	store_close(s);
}
END_TEST

struct external_sink {
	struct store_external rows[8];
	size_t n;
	size_t stop_after;
};

static int
external_collect(const struct store_external *e, void *arg)
{
	struct external_sink *k = arg;

	ck_assert_uint_lt(k->n, sizeof(k->rows) / sizeof(k->rows[0]));
	k->rows[k->n++] = *e;
	return k->stop_after != 0 && k->n == k->stop_after ? 3 : 0;
}

START_TEST(test_external)
{
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_external x, ids[3];
	struct external_sink k;
	struct why why = { 0 };

	db_path(path, sizeof(path), "external");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	fill_external(&x, 10, "hovmand-care", "fax");
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INTERNAL);
	ck_assert_int_eq(x.id, 4242);
	store_rollback(tx);

	tx = begin_ok(s, 1);
	fill_external(&ids[0], 20, "hovmand-care", "fax");
	fill_external(&ids[1], 10, "region-hospital", "phone");
	snprintf(ids[1].direction, sizeof(ids[1].direction), "inbound");
	snprintf(ids[1].kind, sizeof(ids[1].kind), "other");
	ids[1].reason[0] = '\0';
	fill_external(&ids[2], 20, "solsikken", "post");
	ck_assert_msg(store_external_insert(tx, &ids[0], &why) == 0, "%s", why.text);
	ck_assert_int_eq(store_external_insert(tx, &ids[1], &why), 0);
	ck_assert_int_eq(store_external_insert(tx, &ids[2], &why), 0);
	ck_assert_int_eq(ids[0].id, 1);
	ck_assert_int_eq(ids[1].id, 2);
	ck_assert_int_eq(ids[2].id, 3);

	/* The CHECKs and the field rules; a refused insert keeps the caller's id. */
	fill_external(&x, 30, "hovmand-care", "pigeon");
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "external communication insert"));
	ck_assert_int_eq(x.id, 4242);
	fill_external(&x, 30, "hovmand-care", "FAX");
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INVALID);
	fill_external(&x, 30, "hovmand-care", "fax");
	snprintf(x.direction, sizeof(x.direction), "sideways");
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INVALID);
	fill_external(&x, 30, "", "fax");
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "party"));
	fill_external(&x, 30, "hovmand-care", "fax");
	x.registered_by[0] = '\0';
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INVALID);
	fill_external(&x, 30, "hovmand-care", "fax");
	memset(x.reason, 'r', sizeof(x.reason));
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "reason"));
	fill_external(&x, 30, "hovmand-care", "fax");
	memset(x.channel, 'f', sizeof(x.channel));
	ck_assert_int_eq(store_external_insert(tx, &x, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_external_insert(tx, NULL, &why), HEGN_ERR_INTERNAL);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	memset(&k, 0, sizeof(k));
	ck_assert_msg(store_external_list(tx, 0, 0, external_collect, &k, &why) == 0, "%s",
	    why.text);
	/* By time, then by registration. */
	ck_assert_uint_eq(k.n, 3);
	ck_assert_int_eq(k.rows[0].id, 2);
	ck_assert_int_eq(k.rows[0].at_ms, 10);
	ck_assert_str_eq(k.rows[0].party, "region-hospital");
	ck_assert_str_eq(k.rows[0].kind, "other");
	ck_assert_str_eq(k.rows[0].channel, "phone");
	ck_assert_str_eq(k.rows[0].direction, "inbound");
	ck_assert_str_eq(k.rows[0].reason, "");
	ck_assert_str_eq(k.rows[0].registered_by, "caseworker-1");
	ck_assert_int_eq(k.rows[1].id, 1);
	ck_assert_str_eq(k.rows[1].channel, "fax");
	ck_assert_str_eq(k.rows[1].reason, "provider has no system");
	ck_assert_int_eq(k.rows[2].id, 3);
	ck_assert_str_eq(k.rows[2].channel, "post");
	/* Windows. */
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(store_external_list(tx, 20, 21, external_collect, &k, &why), 0);
	ck_assert_uint_eq(k.n, 2);
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(store_external_list(tx, 0, 20, external_collect, &k, &why), 0);
	ck_assert_uint_eq(k.n, 1);
	ck_assert_int_eq(k.rows[0].id, 2);
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(store_external_list(tx, 11, 20, external_collect, &k, &why), 0);
	ck_assert_uint_eq(k.n, 0);
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(store_external_list(tx, 0, INT64_MIN, external_collect, &k, &why), 0);
	ck_assert_uint_eq(k.n, 0);
	/* Early stop. */
	memset(&k, 0, sizeof(k));
	k.stop_after = 2;
	ck_assert_int_eq(store_external_list(tx, 0, 0, external_collect, &k, &why), 3);
	ck_assert_uint_eq(k.n, 2);
	ck_assert_int_eq(store_external_list(tx, 0, 0, NULL, &k, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);
	store_close(s);

	/* Another writer went around the CHECK: too long to read back is an error. */
	raw_exec(path, "UPDATE external_comms SET party = printf('%.80c', 'p') WHERE id = 1");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(store_external_list(tx, 0, 0, external_collect, &k, &why),
	    HEGN_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(why.text, "party"));
	ck_assert_uint_eq(k.n, 1);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_queue_stats)
{
	static const char *const rcpts[] = { "hovmand-care", "ringsted-homecare" };
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_schedule sc;
	struct why why = { 0 };
	int64_t depth, oldest;

	db_path(path, sizeof(path), "queue");
	s = open_ok(path);
	tx = begin_ok(s, 0);
	depth = oldest = 99;
	ck_assert_int_eq(store_queue_stats(tx, &depth, &oldest, &why), 0);
	ck_assert_int_eq(depth, 0);
	ck_assert_int_eq(oldest, 0);
	ck_assert_int_eq(store_queue_stats(tx, NULL, &oldest, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);

	tx = begin_ok(s, 1);
	add_message(tx, "m-300", 300, rcpts, 2);
	add_message(tx, "m-500", 500, rcpts, 1);
	add_message(tx, "m-1000", 1000, rcpts, 2);
	add_message(tx, "m-2000", 2000, rcpts, 1);
	/* The oldest message is finished for both its copies: it no longer counts. */
	ck_assert_int_eq(store_delivery_set_state(tx, "m-300", "hovmand-care",
	    STORE_STATE_ACKNOWLEDGED, 1, &why), 0);
	ck_assert_int_eq(store_schedule_get(tx, "m-300", "ringsted-homecare", &sc, &why), 0);
	snprintf(sc.state, sizeof(sc.state), STORE_STATE_FALLBACK);
	ck_assert_int_eq(store_schedule_update(tx, &sc, &why), 0);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-500", "hovmand-care",
	    STORE_STATE_FAILED, 1, &why), 0);
	/* Delivered but not acknowledged counts; so does each copy of one message. */
	ck_assert_int_eq(store_delivery_set_state(tx, "m-1000", "hovmand-care",
	    STORE_STATE_DELIVERED, 1, &why), 0);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-2000", "hovmand-care",
	    STORE_STATE_REJECTED, 1, &why), 0);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_msg(store_queue_stats(tx, &depth, &oldest, &why) == 0, "%s", why.text);
	ck_assert_int_eq(depth, 2);
	ck_assert_int_eq(oldest, 1000);
	store_rollback(tx);

	tx = begin_ok(s, 1);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-1000", "ringsted-homecare",
	    STORE_STATE_ACKNOWLEDGED, 2, &why), 0);
	ck_assert_int_eq(store_delivery_set_state(tx, "m-500", "hovmand-care",
	    STORE_STATE_SUBMITTED, 2, &why), 0);
	ck_assert_int_eq(store_queue_stats(tx, &depth, &oldest, &why), 0);
	ck_assert_int_eq(depth, 2);
	ck_assert_int_eq(oldest, 500);
	store_rollback(tx);
	store_close(s);
}
END_TEST

/* --- MedCom de-duplication (schema version 4) --- */

static void
fill_medcom(struct store_medcom *m, const char *sender, const char *bundle, const char *header,
    const char *msg, int64_t at, const char *ack)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->sender, sizeof(m->sender), "%s", sender);
	snprintf(m->bundle_id, sizeof(m->bundle_id), "%s", bundle);
	snprintf(m->header_id, sizeof(m->header_id), "%s", header);
	snprintf(m->message_id, sizeof(m->message_id), "%s", msg);
	m->received_ms = at;
	m->ack.data = (uint8_t *)ack;
	m->ack.len = ack != NULL ? strlen(ack) : 0;
}

START_TEST(test_medcom_received)
{
	static const char ack1[] = "{\"resourceType\":\"Bundle\",\"id\":\"ack-1\"}";
	char path[512];
	struct store *s;
	struct store_tx *tx;
	struct store_medcom m, got;
	struct why why = { 0 };

	db_path(path, sizeof(path), "medcom");
	s = open_ok(path);
	put_message(s, "m-1", "ringsted-visitation");
	put_message(s, "m-2", "ringsted-visitation");
	tx = begin_ok(s, 1);
	fill_medcom(&m, "region-hospital", "b-1", "h-1", "m-1", 10, ack1);
	ck_assert_msg(store_medcom_insert(tx, &m, &why) == 0, "%s", why.text);
	/* The resend of h-1 in a new envelope, remembered with the first answer. */
	fill_medcom(&m, "region-hospital", "b-2", "h-1", "m-1", 20, "{\"later\":1}");
	ck_assert_msg(store_medcom_insert(tx, &m, &why) == 0, "%s", why.text);
	/* Ids are per sender: another sender may use b-1. */
	fill_medcom(&m, "other-hospital", "b-1", "h-9", "m-2", 5, ack1);
	ck_assert_msg(store_medcom_insert(tx, &m, &why) == 0, "%s", why.text);
	/* The same sender's envelope twice is a conflict. */
	fill_medcom(&m, "region-hospital", "b-1", "h-7", "m-2", 30, ack1);
	ck_assert_int_eq(store_medcom_insert(tx, &m, &why), HEGN_ERR_CONFLICT);
	/* A message that does not exist, an empty answer, an empty key. */
	fill_medcom(&m, "region-hospital", "b-3", "h-3", "m-nowhere", 30, ack1);
	ck_assert_int_eq(store_medcom_insert(tx, &m, &why), HEGN_ERR_NOT_FOUND);
	fill_medcom(&m, "region-hospital", "b-3", "h-3", "m-1", 30, NULL);
	ck_assert_int_eq(store_medcom_insert(tx, &m, &why), HEGN_ERR_INVALID);
	fill_medcom(&m, "region-hospital", "", "h-3", "m-1", 30, ack1);
	ck_assert_int_eq(store_medcom_insert(tx, &m, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(store_medcom_insert(NULL, &m, &why), HEGN_ERR_INTERNAL);
	commit_ok(tx);

	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_medcom_get(tx, STORE_MEDCOM_BY_BUNDLE, "region-hospital", "b-2", &got,
	    &why), 0);
	ck_assert_str_eq(got.header_id, "h-1");
	ck_assert_str_eq(got.message_id, "m-1");
	ck_assert_int_eq(got.received_ms, 20);
	store_medcom_clear(&got);
	/* By letter: the first row, whose answer is the one to repeat byte for byte. */
	ck_assert_int_eq(store_medcom_get(tx, STORE_MEDCOM_BY_HEADER, "region-hospital", "h-1", &got,
	    &why), 0);
	ck_assert_str_eq(got.bundle_id, "b-1");
	ck_assert_uint_eq(got.ack.len, strlen(ack1));
	ck_assert(memcmp(got.ack.data, ack1, got.ack.len) == 0);
	store_medcom_clear(&got);
	ck_assert_int_eq(store_medcom_get(tx, STORE_MEDCOM_BY_MESSAGE, NULL, "m-2", &got, &why), 0);
	ck_assert_str_eq(got.sender, "other-hospital");
	store_medcom_clear(&got);
	ck_assert_int_eq(store_medcom_get(tx, STORE_MEDCOM_BY_MESSAGE, "region-hospital", "m-2", &got,
	    &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(store_medcom_get(tx, STORE_MEDCOM_BY_HEADER, "other-hospital", "h-1", &got,
	    &why), HEGN_ERR_NOT_FOUND);
	ck_assert_str_eq(got.sender, "");
	ck_assert_int_eq(store_medcom_get(tx, STORE_MEDCOM_BY_BUNDLE, NULL, "b-1", &got, &why),
	    HEGN_ERR_INTERNAL);
	ck_assert_int_eq(store_medcom_get(tx, (enum store_medcom_key)9, "x", "b-1", &got, &why),
	    HEGN_ERR_INTERNAL);
	/* Writing in a read transaction is our bug, never silently done. */
	fill_medcom(&m, "region-hospital", "b-5", "h-5", "m-1", 30, ack1);
	ck_assert_int_eq(store_medcom_insert(tx, &m, &why), HEGN_ERR_INTERNAL);
	store_rollback(tx);
	store_medcom_clear(NULL);
	store_close(s);
	ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM medcom_received"), 3);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");
	TCase *tl = tcase_create("load");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_creates_and_migrates);
	tcase_add_test(tc, test_open_refusals);
	tcase_add_test(tc, test_round_trips);
	tcase_add_test(tc, test_conflicts_and_rollback);
	tcase_add_test(tc, test_too_long_in_database);
	tcase_add_test(tc, test_inbox);
	tcase_add_test(tc, test_events_in_order);
	tcase_add_test(tc, test_connection_settings);
	tcase_add_test(tc, test_sealed_read);
	tcase_add_test(tc, test_spilled_copy);
	tcase_add_test(tc, test_spill_fallback);
	tcase_add_test(tc, test_query_plans);
	tcase_add_test(tc, test_crash_before_commit);
	tcase_add_test(tc, test_migration_from_v1);
	tcase_add_test(tc, test_assignments);
	tcase_add_test(tc, test_users);
	tcase_add_test(tc, test_audit_sequence);
	tcase_add_test(tc, test_audit_append_only);
	tcase_add_test(tc, test_audit_query);
	tcase_add_test(tc, test_audit_blocks);
	tcase_add_test(tc, test_checkpoints);
	tcase_add_test(tc, test_checkpoint_after_commit);
	tcase_add_test(tc, test_purge_content);
	tcase_add_test(tc, test_purge_batches);
	tcase_add_test(tc, test_migration_from_v2);
	tcase_add_test(tc, test_schedule_round_trip);
	tcase_add_test(tc, test_schedule_due);
	tcase_add_test(tc, test_outcomes);
	tcase_add_test(tc, test_external);
	tcase_add_test(tc, test_queue_stats);
	tcase_add_test(tc, test_medcom_received);
	suite_add_tcase(s, tc);

	/* Hundreds of synced commits: generous, as disks differ, but bounded. */
	tcase_add_unchecked_fixture(tl, base_setup, base_teardown);
	tcase_set_timeout(tl, 300);
	tcase_add_test(tl, test_concurrent);
	suite_add_tcase(s, tl);
	return s;
}

TESTLIB_MAIN(store_suite)
