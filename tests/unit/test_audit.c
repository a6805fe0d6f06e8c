#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <ftw.h>
#include <stdint.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "checkpoint.h"
#include "err.h"
#include "merkle.h"
#include "store.h"
#include "store_sqlite.h"
#include "testlib.h"
#include "util.h"

/*
 * The tamper tests build one good log (12 entries appended in three
 * transactions of 5, 4 and 3, with signed checkpoints at sizes 5 and 12),
 * copy its file while the store is closed, change the copy through a raw
 * SQLite handle with the append-only triggers dropped, and expect
 * audit_verify_store to fail naming the first bad entry.
 */

static char base[] = "/tmp/hegn-test-audit-XXXXXX";

#define ORIGIN "hegn.test/audit"
#define KEYNAME "hegn.test"
#define NENTRIES 12
#define NOW 1795772760000LL

/* One good log per test: its file, its keys and the verifier string. */
struct good {
	char db[512];
	char key[512];
	char pub[512];
	char verifier[512];
};

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
	snprintf(base, sizeof(base), "/tmp/hegn-test-audit-XXXXXX");
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

/* A path under base unique to the calling test (each runs in its own process). */
static void
path_for(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%ld-%s", base, (long)getpid(), name);
}

static struct store *
open_ok(const char *path)
{
	struct store *s = NULL;
	struct why why = { 0 };

	ck_assert_msg(store_open(path, &s, &why) == 0, "store_open %s: %s", path, why.text);
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

/* Entry i of the standard log: distinct text in every field. */
static void
append_nth(struct store_tx *tx, int i)
{
	struct audit_event e;
	struct why why = { 0 };
	char msg[32], detail[32], cref[65], who[32];

	snprintf(msg, sizeof(msg), "msg-%d", i);
	snprintf(detail, sizeof(detail), "event %d", i);
	snprintf(who, sizeof(who), "citizen-%d", i % 3);
	util_sha256_hex(who, strlen(who), cref);
	memset(&e, 0, sizeof(e));
	e.action = i % 2 ? "message.fetch" : "message.submit";
	e.actor = i % 2 ? "hovmand-care" : "ringsted-visitation";
	e.user = i % 4 == 0 ? "anna.k" : NULL;
	e.message_id = msg;
	e.citizen_ref = cref;
	e.outcome = "ok";
	e.rule = "base-10";
	e.detail = detail;
	ck_assert_msg(audit_append(tx, &e, NOW + i * 1000, &why) == 0, "audit_append %d: %s", i,
	    why.text);
}

/* The first line of a file, without its newline, into out. */
static void
read_line(const char *path, char *out, size_t len)
{
	struct buf b = { 0 };
	struct why why = { 0 };

	ck_assert_msg(util_read_file(path, 4096, &b, &why) == 0, "%s", why.text);
	ck_assert_uint_gt(b.len, 0);
	b.data[strcspn((char *)b.data, "\r\n")] = '\0';
	ck_assert_uint_lt(strlen((char *)b.data), len);
	snprintf(out, len, "%s", (char *)b.data);
	buf_free(&b, 1);
}

static struct audit_signer *
signer_ok(const struct good *g)
{
	struct audit_signer *a = NULL;
	struct why why = { 0 };

	ck_assert_msg(audit_signer_load(g->key, ORIGIN, &a, &why) == 0, "signer: %s", why.text);
	return a;
}

static void
checkpoint_ok(struct audit_signer *a, struct store *s, int64_t want)
{
	struct why why = { 0 };
	int64_t size = -1;

	ck_assert_msg(audit_checkpoint(a, s, 0, &size, &why) == 0, "checkpoint: %s", why.text);
	ck_assert_int_eq(size, want);
}

static void
build_good(struct good *g)
{
	struct audit_signer *a;
	struct store *s;
	struct store_tx *tx = NULL;
	struct why why = { 0 };
	char wal[600];
	int i;

	path_for(g->db, sizeof(g->db), "good.db");
	path_for(g->key, sizeof(g->key), "audit.key");
	path_for(g->pub, sizeof(g->pub), "audit.pub");
	ck_assert_msg(audit_keygen(KEYNAME, g->key, g->pub, &why) == 0, "keygen: %s", why.text);
	read_line(g->pub, g->verifier, sizeof(g->verifier));
	a = signer_ok(g);
	s = open_ok(g->db);
	for (i = 0; i < NENTRIES; i++) {
		if (i == 0 || i == 5 || i == 9)
			tx = begin_ok(s, 1);
		append_nth(tx, i);
		if (i == 4 || i == 8 || i == 11)
			commit_ok(tx);
		if (i == 4)
			checkpoint_ok(a, s, 5);
	}
	checkpoint_ok(a, s, NENTRIES);
	store_close(s);
	audit_signer_free(a);
	/* The last close folded the WAL back: the file alone is the database. */
	snprintf(wal, sizeof(wal), "%s-wal", g->db);
	ck_assert_int_ne(access(wal, F_OK), 0);
}

/* A fresh copy of the good database named name (mode 0600, as the store wants). */
static void
copy_db(const struct good *g, const char *name, char *out, size_t len)
{
	struct buf b = { 0 };
	struct why why = { 0 };

	path_for(out, len, name);
	ck_assert_msg(util_read_file(g->db, 64 << 20, &b, &why) == 0, "%s", why.text);
	ck_assert_msg(util_write_file(out, b.data, b.len, 0600, &why) == 0, "%s", why.text);
	buf_free(&b, 0);
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql,
	    err != NULL ? err : "?");
}

/* The raw handle an attacker with the file would use, guards removed. */
static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	exec_ok(db, "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
	    " DROP TRIGGER audit_contiguous;");
	return db;
}

static void
raw_close(sqlite3 *db)
{
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* Entry seq's text (free()) and leaf hash. */
static char *
raw_entry(sqlite3 *db, int64_t seq, uint8_t leaf[32])
{
	sqlite3_stmt *st = NULL;
	char *text;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT entry, leaf_hash FROM audit WHERE seq = ?1",
	    -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, seq);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	text = strdup((const char *)sqlite3_column_text(st, 0));
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(sqlite3_column_bytes(st, 1), 32);
	if (leaf != NULL)
		memcpy(leaf, sqlite3_column_blob(st, 1), 32);
	sqlite3_finalize(st);
	return text;
}

/* Replace entry seq's text; with fix_leaf also its leaf hash, as a careful forger would. */
static void
raw_set_entry(sqlite3 *db, int64_t seq, const char *text, int fix_leaf)
{
	sqlite3_stmt *st = NULL;
	uint8_t leaf[32];

	merkle_leaf_hash(text, strlen(text), leaf);
	ck_assert_int_eq(sqlite3_prepare_v2(db, fix_leaf ?
	    "UPDATE audit SET entry = ?2, leaf_hash = ?3 WHERE seq = ?1" :
	    "UPDATE audit SET entry = ?2 WHERE seq = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
	if (fix_leaf)
		sqlite3_bind_blob(st, 3, leaf, 32, SQLITE_TRANSIENT);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	ck_assert_int_eq(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
}

static int64_t
raw_count(sqlite3 *db, const char *table)
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int64_t n;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* text with one field set (canonical form, as audit.c writes it); free(). */
static char *
with_field(const char *text, const char *key, json_t *value)
{
	json_t *j = json_loads(text, 0, NULL);
	char *out;

	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_object_set_new(j, key, value), 0);
	out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_ptr_nonnull(out);
	json_decref(j);
	return out;
}

/*
 * What a forger who knows the format does after a change: rewrite every
 * entry from `from` on with its position and the link to the one before,
 * and recompute the leaf hashes, so that only the signed checkpoints can
 * tell.
 */
static void
raw_rechain(sqlite3 *db, int64_t from)
{
	int64_t n = raw_count(db, "audit"), seq;
	uint8_t prev[32];
	char hex[65], *t, *t2, *t3;

	for (seq = from; seq < n; seq++) {
		free(raw_entry(db, seq - 1, prev));
		util_hex(prev, 32, hex);
		t = raw_entry(db, seq, NULL);
		t2 = with_field(t, "seq", json_integer(seq));
		t3 = with_field(t2, "prev", json_string(hex));
		raw_set_entry(db, seq, t3, 1);
		free(t);
		free(t2);
		free(t3);
	}
}

/* Swap rows i and j whole (text, leaf, columns): the order of events changes. */
static void
raw_swap(sqlite3 *db, int64_t i, int64_t j)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "UPDATE audit SET seq = 1000000 WHERE seq = %lld;"
	    " UPDATE audit SET seq = %lld WHERE seq = %lld;"
	    " UPDATE audit SET seq = %lld WHERE seq = 1000000;",
	    (long long)i, (long long)i, (long long)j, (long long)j);
	exec_ok(db, sql);
}

/* Verify the store at path; 0 or the code, with why filled. */
static int
verify_path(const char *path, const char *verifier, struct why *why)
{
	struct store *s = open_ok(path);
	int r;

	r = audit_verify_store(s, verifier, NULL, why);
	store_close(s);
	return r;
}

/* The store at path must fail verification with every needle in the reason. */
static void
expect_bad(const char *path, const char *verifier, const char *needle1, const char *needle2)
{
	struct why why = { 0 };
	int r;

	r = verify_path(path, verifier, &why);
	ck_assert_msg(r == HEGN_ERR_SIGNATURE, "verify returned %d (%s)", r, why.text);
	ck_assert_int_eq(why.code, HEGN_ERR_SIGNATURE);
	ck_assert_msg(strstr(why.text, needle1) != NULL, "'%s' not in: %s", needle1, why.text);
	if (needle2 != NULL)
		ck_assert_msg(strstr(why.text, needle2) != NULL, "'%s' not in: %s", needle2,
		    why.text);
}

START_TEST(test_good_log)
{
	struct good g;
	struct store *s;
	struct store_tx *tx;
	struct store_audit *rows = NULL;
	struct store_checkpoint *cps = NULL;
	struct audit_signer *a;
	struct why why = { 0 };
	char *report = NULL, hex[65], other_key[512], other_pub[512], other[512];
	size_t rlen = 0, n = 0, ncp = 0, i;
	FILE *out;
	json_t *j;

	build_good(&g);
	s = open_ok(g.db);
	ck_assert_ptr_nonnull(out = open_memstream(&report, &rlen));
	ck_assert_msg(audit_verify_store(s, g.verifier, out, &why) == 0, "%s", why.text);
	fclose(out);
	ck_assert_ptr_nonnull(strstr(report, "checkpoint at size 5"));
	ck_assert_ptr_nonnull(strstr(report, "12 entries, 2 checkpoints: audit log verified"));
	free(report);

	/* Each entry names its place and the leaf hash of the one before. */
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_audit_range(tx, 0, 100, &rows, &n, &why), 0);
	ck_assert_uint_eq(n, NENTRIES);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(rows[i].seq, (int64_t)i);
		ck_assert_ptr_nonnull(j = json_loadb((const char *)rows[i].entry.data,
		    rows[i].entry.len, 0, NULL));
		ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), (json_int_t)i);
		if (i == 0)
			hex[0] = '\0';
		else
			util_hex(rows[i - 1].leaf_hash, 32, hex);
		ck_assert_str_eq(json_string_value(json_object_get(j, "prev")), hex);
		json_decref(j);
	}
	store_audit_list_free(rows, n);
	ck_assert_int_eq(store_checkpoint_list(tx, &cps, &ncp, &why), 0);
	ck_assert_uint_eq(ncp, 2);
	ck_assert_int_eq(cps[0].size, 5);
	ck_assert_int_eq(cps[1].size, NENTRIES);
	ck_assert_ptr_nonnull(strstr(cps[1].note, ORIGIN "\n12\n"));
	free(cps);
	store_rollback(tx);

	/* Nothing new: no new checkpoint. */
	a = signer_ok(&g);
	checkpoint_ok(a, s, NENTRIES);
	audit_signer_free(a);
	tx = begin_ok(s, 0);
	ck_assert_int_eq(store_checkpoint_list(tx, &cps, &ncp, &why), 0);
	ck_assert_uint_eq(ncp, 2);
	free(cps);
	store_rollback(tx);

	/* Another key does not vouch for this log. */
	path_for(other_key, sizeof(other_key), "other.key");
	path_for(other_pub, sizeof(other_pub), "other.pub");
	ck_assert_int_eq(audit_keygen(KEYNAME, other_key, other_pub, &why), 0);
	read_line(other_pub, other, sizeof(other));
	ck_assert_int_eq(audit_verify_store(s, other, NULL, &why), HEGN_ERR_SIGNATURE);
	ck_assert_ptr_nonnull(strstr(why.text, "checkpoint at size 5"));
	store_close(s);
}
END_TEST

START_TEST(test_tamper_edit_byte)
{
	struct good g;
	char path[512], *t;
	sqlite3 *db;

	build_good(&g);
	/* One byte of entry 7's text, its leaf hash left as it was. */
	copy_db(&g, "edit7.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE audit SET entry = replace(entry, '\"event 7\"', '\"event 8\"')"
	    " WHERE seq = 7");
	ck_assert_int_eq(sqlite3_changes(db), 1);
	raw_close(db);
	expect_bad(path, g.verifier, "entry 7:", "leaf hash");

	/* The first entry. */
	copy_db(&g, "edit0.db", path, sizeof(path));
	db = raw_open(path);
	t = raw_entry(db, 0, NULL);
	t[strlen(t) / 2] ^= 0x01;
	raw_set_entry(db, 0, t, 0);
	free(t);
	raw_close(db);
	expect_bad(path, g.verifier, "entry 0:", "leaf hash");

	/* The last entry. */
	copy_db(&g, "edit11.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE audit SET entry = replace(entry, '\"ok\"', '\"deny\"') WHERE seq = 11");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 11:", "leaf hash");

	/* A leaf hash changed, the text not. */
	copy_db(&g, "leaf3.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE audit SET leaf_hash = zeroblob(32) WHERE seq = 3");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 3:", NULL);
}
END_TEST

START_TEST(test_tamper_columns)
{
	struct good g;
	char path[512];
	sqlite3 *db;

	build_good(&g);
	/* The indexed columns answer "who saw this citizen": they must match the text. */
	copy_db(&g, "cols.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE audit SET citizen_ref = '' WHERE seq = 6");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 6:", "columns");

	copy_db(&g, "actor.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE audit SET actor = 'someone-else' WHERE seq = 2");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 2:", "columns");

	copy_db(&g, "at.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 10");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 10:", "columns");
}
END_TEST

START_TEST(test_tamper_edit_rehashed)
{
	struct good g;
	char path[512], *t, *t2;
	sqlite3 *db;

	build_good(&g);
	/* Text and leaf hash both changed: the next entry's link breaks. */
	copy_db(&g, "rehash7.db", path, sizeof(path));
	db = raw_open(path);
	t = raw_entry(db, 7, NULL);
	t2 = with_field(t, "outcome", json_string("deny"));
	raw_set_entry(db, 7, t2, 1);
	free(t);
	free(t2);
	raw_close(db);
	expect_bad(path, g.verifier, "entry 8:", "does not follow entry 7");

	/* The last entry has no next one: the checkpoint covering it fails. */
	copy_db(&g, "rehash11.db", path, sizeof(path));
	db = raw_open(path);
	t = raw_entry(db, 11, NULL);
	t2 = with_field(t, "actor", json_string("someone-else"));
	raw_set_entry(db, 11, t2, 1);
	exec_ok(db, "UPDATE audit SET actor = 'someone-else' WHERE seq = 11");
	free(t);
	free(t2);
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 12", "to 11");

	/* Every link after it rewritten too: only the checkpoint can tell. */
	copy_db(&g, "rechain7.db", path, sizeof(path));
	db = raw_open(path);
	t = raw_entry(db, 7, NULL);
	t2 = with_field(t, "detail", json_string("nothing happened"));
	raw_set_entry(db, 7, t2, 1);
	raw_rechain(db, 8);
	free(t);
	free(t2);
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 12", "from 5 to 11");
}
END_TEST

START_TEST(test_tamper_delete)
{
	struct good g;
	char path[512];
	sqlite3 *db;

	build_good(&g);
	/* A gap in the numbering. */
	copy_db(&g, "del4.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit WHERE seq = 4");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 5:", "where entry 4 should be");

	/* Renumbered to close the gap. */
	copy_db(&g, "del4r.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit WHERE seq = 4; UPDATE audit SET seq = seq - 1 WHERE seq > 4");
	ck_assert_int_eq(raw_count(db, "audit"), NENTRIES - 1);
	raw_close(db);
	expect_bad(path, g.verifier, "entry 4:", "names itself entry 5");

	/* Renumbered and relinked: the checkpoint over it fails. */
	copy_db(&g, "del4rc.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit WHERE seq = 4; UPDATE audit SET seq = seq - 1 WHERE seq > 4");
	raw_rechain(db, 4);
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 5", "from 0 to 4");

	/* The first entry. */
	copy_db(&g, "del0.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit WHERE seq = 0");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 1:", "where entry 0 should be");
}
END_TEST

/* Insert a well-formed entry at 6, moving the rest up by one. */
static void
raw_insert_forged(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	uint8_t prev[32], leaf[32];
	char hex[65], *t, *t2, *t3, *t4;

	free(raw_entry(db, 5, prev));
	util_hex(prev, 32, hex);
	t = raw_entry(db, 5, NULL);
	t2 = with_field(t, "seq", json_integer(6));
	t3 = with_field(t2, "prev", json_string(hex));
	t4 = with_field(t3, "detail", json_string("forged"));
	merkle_leaf_hash(t4, strlen(t4), leaf);
	exec_ok(db, "UPDATE audit SET seq = seq + 1000 WHERE seq >= 6;"
	    " UPDATE audit SET seq = seq - 999 WHERE seq >= 1000;");
	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO audit SELECT 6, at_ms, actor, action,"
	    " message_id, citizen_ref, ?1, ?2 FROM audit WHERE seq = 5", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, leaf, 32, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, t4, -1, SQLITE_TRANSIENT);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	ck_assert_int_eq(raw_count(db, "audit"), NENTRIES + 1);
	free(t);
	free(t2);
	free(t3);
	free(t4);
}

START_TEST(test_tamper_insert)
{
	struct good g;
	char path[512];
	sqlite3 *db;

	build_good(&g);
	/* The forged entry itself is well formed; the one it displaced is not where it says. */
	copy_db(&g, "ins6.db", path, sizeof(path));
	db = raw_open(path);
	raw_insert_forged(db);
	raw_close(db);
	expect_bad(path, g.verifier, "entry 7:", "names itself entry 6");

	/* Relinked after it: the checkpoint over it fails. */
	copy_db(&g, "ins6c.db", path, sizeof(path));
	db = raw_open(path);
	raw_insert_forged(db);
	raw_rechain(db, 7);
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 12", "from 5 to 11");

	/* A copy of an earlier entry, appended at the end in its own numbering. */
	copy_db(&g, "dup.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "INSERT INTO audit SELECT 12, at_ms, actor, action, message_id, citizen_ref,"
	    " leaf_hash, entry FROM audit WHERE seq = 3");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 12:", "names itself entry 3");
}
END_TEST

START_TEST(test_tamper_swap)
{
	struct good g;
	char path[512];
	sqlite3 *db;

	build_good(&g);
	copy_db(&g, "swap.db", path, sizeof(path));
	db = raw_open(path);
	raw_swap(db, 2, 9);
	raw_close(db);
	expect_bad(path, g.verifier, "entry 2:", "names itself entry 9");

	/* Neighbours. */
	copy_db(&g, "swapn.db", path, sizeof(path));
	db = raw_open(path);
	raw_swap(db, 10, 11);
	raw_close(db);
	expect_bad(path, g.verifier, "entry 10:", "names itself entry 11");

	/* Swapped and relinked: the first checkpoint fails. */
	copy_db(&g, "swapc.db", path, sizeof(path));
	db = raw_open(path);
	raw_swap(db, 2, 3);
	raw_rechain(db, 2);
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 5", "from 0 to 4");
}
END_TEST

START_TEST(test_tamper_truncate)
{
	struct good g;
	char path[512];
	sqlite3 *db;

	build_good(&g);
	copy_db(&g, "trunc9.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit WHERE seq >= 9");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 9:", "truncated");

	/* Below the first checkpoint too. */
	copy_db(&g, "trunc3.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit WHERE seq >= 3");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 3:", "truncated");

	/* Only the last one. */
	copy_db(&g, "trunc11.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit WHERE seq = 11");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 11:", "truncated");

	/* Everything. */
	copy_db(&g, "trunc0.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "DELETE FROM audit");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 0:", "truncated");
}
END_TEST

/* Put note (and, when root is not NULL, root) in the checkpoint row of size. */
static void
raw_set_checkpoint(sqlite3 *db, int64_t size, const char *note, const uint8_t *root)
{
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(db, root != NULL ?
	    "UPDATE checkpoints SET note = ?2, root = ?3 WHERE size = ?1" :
	    "UPDATE checkpoints SET note = ?2 WHERE size = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, size);
	sqlite3_bind_text(st, 2, note, -1, SQLITE_TRANSIENT);
	if (root != NULL)
		sqlite3_bind_blob(st, 3, root, 32, SQLITE_TRANSIENT);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	ck_assert_int_eq(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
}

/* The root the entries of db give for their first size leaves. */
static void
raw_root(sqlite3 *db, int64_t size, uint8_t root[32])
{
	struct merkle_tree *t = merkle_tree_new();
	uint8_t leaf[32];
	int64_t i;

	for (i = 0; i < size; i++) {
		free(raw_entry(db, i, leaf));
		ck_assert_int_eq(merkle_tree_append(t, leaf), 0);
	}
	merkle_tree_root(t, root);
	merkle_tree_free(t);
}

START_TEST(test_forged_checkpoint)
{
	struct good g;
	struct why why = { 0 };
	char path[512], *sk = NULL, *vk = NULL, *note = NULL, *t, *t2;
	uint8_t root[32];
	sqlite3 *db;

	build_good(&g);
	/* The forger's key has the same name as the real one. */
	ck_assert_int_eq(checkpoint_keygen(KEYNAME, &sk, &vk, &why), 0);

	/* Over the true root: the log is intact, but the signature is not ours. */
	copy_db(&g, "forged.db", path, sizeof(path));
	db = raw_open(path);
	raw_root(db, NENTRIES, root);
	ck_assert_int_eq(checkpoint_sign(sk, ORIGIN, NENTRIES, root, &note, &why), 0);
	raw_set_checkpoint(db, NENTRIES, note, NULL);
	free(note);
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 12", NULL);

	/* The whole job: an entry changed, the chain relinked, a new head signed. */
	copy_db(&g, "forged2.db", path, sizeof(path));
	db = raw_open(path);
	t = raw_entry(db, 8, NULL);
	t2 = with_field(t, "outcome", json_string("deny"));
	raw_set_entry(db, 8, t2, 1);
	raw_rechain(db, 9);
	raw_root(db, NENTRIES, root);
	ck_assert_int_eq(checkpoint_sign(sk, ORIGIN, NENTRIES, root, &note, &why), 0);
	raw_set_checkpoint(db, NENTRIES, note, root);
	free(note);
	free(t);
	free(t2);
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 12", NULL);

	/* A genuine note moved to another size names another tree. */
	copy_db(&g, "moved.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE checkpoints SET note = (SELECT note FROM checkpoints WHERE size = 5),"
	    " root = (SELECT root FROM checkpoints WHERE size = 5) WHERE size = 12");
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 12", "another tree");

	/* The stored root changed under a genuine note. */
	copy_db(&g, "root.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "UPDATE checkpoints SET root = zeroblob(32) WHERE size = 5");
	raw_close(db);
	expect_bad(path, g.verifier, "checkpoint at size 5", NULL);

	/* A checkpoint beyond the log. */
	copy_db(&g, "beyond.db", path, sizeof(path));
	db = raw_open(path);
	exec_ok(db, "INSERT INTO checkpoints SELECT 13, at_ms, root, note FROM checkpoints"
	    " WHERE size = 12");
	raw_close(db);
	expect_bad(path, g.verifier, "entry 12:", "truncated");
	checkpoint_key_free(sk);
	free(vk);
}
END_TEST

/* Export the store at path to file out. */
static void
export_ok(const char *path, const char *out)
{
	struct store *s = open_ok(path);
	struct why why = { 0 };
	FILE *f;

	ck_assert_ptr_nonnull(f = fopen(out, "w"));
	ck_assert_msg(audit_export(s, f, &why) == 0, "export: %s", why.text);
	ck_assert_int_eq(fclose(f), 0);
	store_close(s);
}

/* Copy the text of file src to dst with line skip left out and byte at flipped. */
static void
write_variant(const struct buf *src, const char *dst, size_t flip_at, int skip_type_cp)
{
	FILE *f;
	const char *p = (const char *)src->data, *end = p + src->len, *nl;
	size_t off;

	ck_assert_ptr_nonnull(f = fopen(dst, "w"));
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl != NULL ? nl + 1 : end;
		if (!(skip_type_cp && memmem(p, (size_t)(nl - p), "\"type\":\"checkpoint\"", 19))) {
			off = (size_t)(p - (const char *)src->data);
			if (flip_at >= off && flip_at < off + (size_t)(nl - p)) {
				fwrite(p, 1, flip_at - off, f);
				fputc(p[flip_at - off] ^ 0x01, f);
				fwrite(p + (flip_at - off) + 1, 1, (size_t)(nl - p) - (flip_at - off) - 1,
				    f);
			} else {
				fwrite(p, 1, (size_t)(nl - p), f);
			}
		}
		p = nl;
	}
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_export)
{
	struct good g;
	struct buf b = { 0 };
	struct why why = { 0 };
	char exp[512], bad[512], other_key[512], other_pub[512], other[512], *report = NULL;
	const char *entries_end;
	size_t rlen = 0, i, nentries_bytes, failed = 0;
	FILE *out;

	build_good(&g);
	path_for(exp, sizeof(exp), "export.jsonl");
	path_for(bad, sizeof(bad), "bad.jsonl");
	export_ok(g.db, exp);

	/* Offline: only the file and the verifier string. */
	ck_assert_ptr_nonnull(out = open_memstream(&report, &rlen));
	ck_assert_msg(audit_verify_export(exp, g.verifier, out, &why) == 0, "%s", why.text);
	fclose(out);
	ck_assert_ptr_nonnull(strstr(report, "12 entries, 2 checkpoints: audit log verified"));
	free(report);

	path_for(other_key, sizeof(other_key), "other.key");
	path_for(other_pub, sizeof(other_pub), "other.pub");
	ck_assert_int_eq(audit_keygen(KEYNAME, other_key, other_pub, &why), 0);
	read_line(other_pub, other, sizeof(other));
	ck_assert_int_eq(audit_verify_export(exp, other, NULL, &why), HEGN_ERR_SIGNATURE);

	ck_assert_int_eq(util_read_file(exp, 1 << 20, &b, &why), 0);
	/* The entries come first, then the checkpoints. */
	entries_end = strstr((const char *)b.data, "{\"at\":");
	ck_assert_ptr_nonnull(entries_end);
	ck_assert_ptr_nonnull(strstr(entries_end, "\"type\":\"checkpoint\""));
	nentries_bytes = (size_t)(entries_end - (const char *)b.data);
	ck_assert_uint_gt(nentries_bytes, 0);

	/* A flipped byte in entry 7's text is named. */
	{
		const char *at = strstr((const char *)b.data, "event 7");

		ck_assert_ptr_nonnull(at);
		write_variant(&b, bad, (size_t)(at - (const char *)b.data) + 6, 0);
		ck_assert_int_eq(audit_verify_export(bad, g.verifier, NULL, &why),
		    HEGN_ERR_SIGNATURE);
		ck_assert_msg(strstr(why.text, "entry 7:") != NULL, "%s", why.text);
	}

	/* Every byte of every entry line matters. */
	for (i = 0; i < nentries_bytes; i++) {
		write_variant(&b, bad, i, 0);
		if (audit_verify_export(bad, g.verifier, NULL, &why) != HEGN_ERR_SIGNATURE) {
			failed++;
			fprintf(stderr, "flip at %zu not detected: ...%.40s...\n", i,
			    (const char *)b.data + (i > 20 ? i - 20 : 0));
		}
	}
	ck_assert_uint_eq(failed, 0);

	/* And every byte of the checkpoints' signed notes. */
	{
		const char *p = entries_end, *note;

		while ((note = strstr(p, "\"note\":\"")) != NULL) {
			const char *q = note + 8, *e = strchr(q, '"');

			ck_assert_ptr_nonnull(e);
			for (; q < e; q++) {
				write_variant(&b, bad, (size_t)(q - (const char *)b.data), 0);
				ck_assert_msg(audit_verify_export(bad, g.verifier, NULL, &why) != 0,
				    "flip at %zu in a note not detected",
				    (size_t)(q - (const char *)b.data));
			}
			p = e;
		}
	}

	/* Without its checkpoints nothing vouches for the entries. */
	write_variant(&b, bad, SIZE_MAX, 1);
	ck_assert_int_eq(audit_verify_export(bad, g.verifier, NULL, &why), HEGN_ERR_SIGNATURE);
	ck_assert_ptr_nonnull(strstr(why.text, "no checkpoint"));

	/* An unknown line is refused, not skipped. */
	ck_assert_ptr_nonnull(out = fopen(bad, "w"));
	fwrite(b.data, 1, b.len, out);
	fputs("{\"type\":\"note\",\"text\":\"ignore me\"}\n", out);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_int_eq(audit_verify_export(bad, g.verifier, NULL, &why), HEGN_ERR_SIGNATURE);

	/* Missing and empty files. */
	ck_assert_int_eq(util_write_file(bad, "", 0, 0600, &why), 0);
	ck_assert_int_eq(audit_verify_export(bad, g.verifier, NULL, &why), HEGN_ERR_SIGNATURE);
	unlink(bad);
	ck_assert_int_eq(audit_verify_export(bad, g.verifier, NULL, &why), HEGN_ERR_IO);
	buf_free(&b, 0);
}
END_TEST

START_TEST(test_export_without_checkpoints)
{
	struct store *s;
	struct store_tx *tx;
	struct why why = { 0 };
	char db[512], exp[512], key[512], pub[512], verifier[512];
	int i;

	path_for(db, sizeof(db), "nocp.db");
	path_for(exp, sizeof(exp), "nocp.jsonl");
	path_for(key, sizeof(key), "nocp.key");
	path_for(pub, sizeof(pub), "nocp.pub");
	ck_assert_int_eq(audit_keygen(KEYNAME, key, pub, &why), 0);
	read_line(pub, verifier, sizeof(verifier));
	s = open_ok(db);
	tx = begin_ok(s, 1);
	for (i = 0; i < 3; i++)
		append_nth(tx, i);
	commit_ok(tx);
	/* The store's own check finds the entries consistent... */
	ck_assert_msg(audit_verify_store(s, verifier, NULL, &why) == 0, "%s", why.text);
	store_close(s);
	/* ...but an export needs a signature to vouch for it. */
	export_ok(db, exp);
	ck_assert_int_eq(audit_verify_export(exp, verifier, NULL, &why), HEGN_ERR_SIGNATURE);
	ck_assert_ptr_nonnull(strstr(why.text, "no checkpoint"));
}
END_TEST

static void
fill_message(struct store_message *m, const char *id)
{
	static const uint8_t der[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };

	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->sender, sizeof(m->sender), "ringsted-visitation");
	snprintf(m->kind, sizeof(m->kind), "referral");
	util_sha256_hex(id, strlen(id), m->content_sha256);
	util_sha256_hex("citizen-0", 9, m->citizen_ref);
	m->created_ms = NOW;
	m->signed_der.data = (uint8_t *)der;
	m->signed_der.len = sizeof(der);
}

/*
 * In a child: store a message and its audit entry in one write transaction,
 * commit it or not, and exit without closing anything, as a crash would.
 */
static void
child_event(const char *path, const char *id, int commit)
{
	struct store *s = NULL;
	struct store_tx *tx = NULL;
	struct store_message m;
	struct audit_event e;
	struct why why = { 0 };

	if (store_open(path, &s, &why) != 0 || store_begin(s, 1, &tx, &why) != 0)
		_exit(2);
	fill_message(&m, id);
	memset(&e, 0, sizeof(e));
	e.action = "message.submit";
	e.actor = "ringsted-visitation";
	e.message_id = id;
	e.citizen_ref = m.citizen_ref;
	e.outcome = "ok";
	if (store_message_insert(tx, &m, &why) != 0)
		_exit(3);
	if (audit_append(tx, &e, NOW + 100000, &why) != 0)
		_exit(4);
	if (commit && store_commit(tx, &why) != 0)
		_exit(5);
	_exit(0);
}

static void
run_child(const char *path, const char *id, int commit)
{
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		child_event(path, id, commit);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* After a crash: integrity holds, the log verifies; the count of entries and message id. */
static void
after_crash(const struct good *g, const char *id, int want_message, int64_t want_entries)
{
	struct store *s = open_ok(g->db);
	struct store_tx *tx = begin_ok(s, 0);
	struct store_message m;
	struct store_audit *rows = NULL;
	struct why why = { 0 };
	char v[64];
	int64_t n = -1;
	size_t nq = 0, i;
	int found = 0;

	ck_assert_int_eq(store_sqlite_pragma(tx, "integrity_check", v, sizeof(v), &why), 0);
	ck_assert_str_eq(v, "ok");
	ck_assert_int_eq(store_message_get(tx, id, 0, &m, &why),
	    want_message ? 0 : HEGN_ERR_NOT_FOUND);
	store_message_clear(&m);
	ck_assert_int_eq(store_audit_count(tx, &n, &why), 0);
	ck_assert_int_eq(n, want_entries);
	ck_assert_int_eq(store_audit_range(tx, 0, 100, &rows, &nq, &why), 0);
	for (i = 0; i < nq; i++)
		if (strcmp(rows[i].message_id, id) == 0)
			found++;
	store_audit_list_free(rows, nq);
	ck_assert_int_eq(found, want_message ? 1 : 0);
	store_rollback(tx);
	ck_assert_msg(audit_verify_store(s, g->verifier, NULL, &why) == 0, "%s", why.text);
	store_close(s);
}

START_TEST(test_crash_loses_both_or_neither)
{
	struct good g;
	struct audit_signer *a;
	struct store *s;

	build_good(&g);
	/* Crash before the commit: neither the message nor its entry. */
	run_child(g.db, "m-crashed", 0);
	after_crash(&g, "m-crashed", 0, NENTRIES);

	/* Committed: both, and the next entry follows on. */
	run_child(g.db, "m-committed", 1);
	after_crash(&g, "m-committed", 1, NENTRIES + 1);
	run_child(g.db, "m-crashed-again", 0);
	after_crash(&g, "m-crashed-again", 0, NENTRIES + 1);

	/* The signer takes up where the log is. */
	a = signer_ok(&g);
	s = open_ok(g.db);
	checkpoint_ok(a, s, NENTRIES + 1);
	store_close(s);
	audit_signer_free(a);
	after_crash(&g, "m-committed", 1, NENTRIES + 1);
}
END_TEST

START_TEST(test_no_cpr_in_entries)
{
	static const char cpr[] = "0101901234";
	static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct store *s;
	struct store_tx *tx;
	struct store_audit *rows = NULL;
	struct audit_event e;
	struct why why = { 0 };
	uint8_t h[32];
	char db[512], cref[65], *text;
	size_t n = 0;
	int64_t count = -1;

	/* The citizen as the audit key's keyed hash of the CPR, as the relay makes it. */
	crypto_generichash(h, sizeof(h), (const uint8_t *)cpr, strlen(cpr), key, sizeof(key));
	util_hex(h, sizeof(h), cref);
	path_for(db, sizeof(db), "cpr.db");
	s = open_ok(db);
	tx = begin_ok(s, 1);
	memset(&e, 0, sizeof(e));
	e.action = "message.view";
	e.actor = "hovmand-care";
	e.user = "bo.d";
	e.citizen_ref = cref;
	e.outcome = "allow";
	ck_assert_msg(audit_append(tx, &e, NOW, &why) == 0, "%s", why.text);
	ck_assert_int_eq(store_audit_range(tx, 0, 10, &rows, &n, &why), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_ptr_nonnull(text = strndup((const char *)rows[0].entry.data,
	    rows[0].entry.len));
	ck_assert_ptr_nonnull(strstr(text, cref));
	ck_assert_ptr_null(strstr(text, cpr));
	ck_assert_ptr_null(strstr(text, "010190"));
	ck_assert_str_eq(rows[0].citizen_ref, cref);
	free(text);
	store_audit_list_free(rows, n);

	/* A CPR where the hash belongs is refused, never written. */
	e.citizen_ref = cpr;
	ck_assert_int_eq(audit_append(tx, &e, NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(strstr(why.text, cpr));
	e.citizen_ref = "010190-1234";
	ck_assert_int_eq(audit_append(tx, &e, NOW, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(strstr(why.text, "010190"));
	ck_assert_int_eq(store_audit_count(tx, &count, &why), 0);
	ck_assert_int_eq(count, 1);
	/* No citizen at all is fine. */
	e.citizen_ref = NULL;
	ck_assert_int_eq(audit_append(tx, &e, NOW, &why), 0);
	e.citizen_ref = "";
	ck_assert_int_eq(audit_append(tx, &e, NOW, &why), 0);
	commit_ok(tx);
	store_close(s);
}
END_TEST

START_TEST(test_signer_load)
{
	struct audit_signer *a = NULL;
	struct store *s;
	struct why why = { 0 };
	struct good g;
	char db[512];
	int64_t size = -1;

	path_for(g.key, sizeof(g.key), "k.key");
	path_for(g.pub, sizeof(g.pub), "k.pub");
	ck_assert_int_eq(audit_keygen(KEYNAME, g.key, g.pub, &why), 0);
	read_line(g.pub, g.verifier, sizeof(g.verifier));

	/* A key others can read is refused, naming the file. */
	ck_assert_int_eq(chmod(g.key, 0640), 0);
	ck_assert_int_eq(audit_signer_load(g.key, ORIGIN, &a, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(why.text, g.key));
	ck_assert_int_eq(chmod(g.key, 0600), 0);
	/* The public half is no signer key. */
	ck_assert_int_eq(chmod(g.pub, 0600), 0);
	ck_assert_int_eq(audit_signer_load(g.pub, ORIGIN, &a, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(why.text, g.pub));
	ck_assert_int_eq(audit_signer_load("/nonexistent/k.key", ORIGIN, &a, &why),
	    HEGN_ERR_CONFIG);
	audit_signer_free(NULL);

	/* An empty log gets a checkpoint only when forced. */
	a = signer_ok(&g);
	path_for(db, sizeof(db), "empty.db");
	s = open_ok(db);
	ck_assert_int_eq(audit_checkpoint(a, s, 0, &size, &why), 0);
	ck_assert_int_eq(size, 0);
	ck_assert_int_eq(audit_verify_store(s, g.verifier, NULL, &why), 0);
	ck_assert_int_eq(audit_checkpoint(a, s, 1, &size, &why), 0);
	ck_assert_int_eq(size, 0);
	{
		struct store_tx *tx = begin_ok(s, 0);
		struct store_checkpoint *cps = NULL;
		size_t ncp = 0;

		ck_assert_int_eq(store_checkpoint_list(tx, &cps, &ncp, &why), 0);
		ck_assert_uint_eq(ncp, 1);
		ck_assert_int_eq(cps[0].size, 0);
		free(cps);
		store_rollback(tx);
	}
	ck_assert_msg(audit_verify_store(s, g.verifier, NULL, &why) == 0, "%s", why.text);
	store_close(s);
	audit_signer_free(a);
}
END_TEST

/* The root of the last checkpoint in the store. */
static void
last_root(struct store *s, int64_t want_size, uint8_t root[32])
{
	struct store_tx *tx = begin_ok(s, 0);
	struct store_checkpoint *cps = NULL;
	struct why why = { 0 };
	size_t ncp = 0;

	ck_assert_msg(store_checkpoint_list(tx, &cps, &ncp, &why) == 0, "%s", why.text);
	store_rollback(tx);
	ck_assert_uint_gt(ncp, 0);
	ck_assert_int_eq(cps[ncp - 1].size, want_size);
	memcpy(root, cps[ncp - 1].root, 32);
	free(cps);
}

/*
 * A signer after a start reads the whole log (two batches of 5,000 and
 * more, in a read transaction first, the rest under the write lock): its
 * tree gives the root the entries give, as does the signer that kept its
 * tree, and the log with all checkpoints verifies.
 */
START_TEST(test_catch_up_after_start)
{
	struct good g;
	struct audit_signer *a1, *a2;
	struct store *s;
	struct store_tx *tx;
	struct why why = { 0 };
	uint8_t got[32], want[32];
	sqlite3 *db;
	int i, n = 10003;

	path_for(g.db, sizeof(g.db), "catchup.db");
	path_for(g.key, sizeof(g.key), "catchup.key");
	path_for(g.pub, sizeof(g.pub), "catchup.pub");
	ck_assert_msg(audit_keygen(KEYNAME, g.key, g.pub, &why) == 0, "keygen: %s", why.text);
	read_line(g.pub, g.verifier, sizeof(g.verifier));
	s = open_ok(g.db);
	tx = begin_ok(s, 1);
	for (i = 0; i < n; i++)
		append_nth(tx, i);
	commit_ok(tx);
	a1 = signer_ok(&g);
	checkpoint_ok(a1, s, n);
	last_root(s, n, got);
	db = raw_open(g.db);
	raw_root(db, n, want);
	ck_assert_mem_eq(got, want, 32);

	/* More entries; a new signer, as after a restart, starts from nothing. */
	tx = begin_ok(s, 1);
	for (i = n; i < n + 4; i++)
		append_nth(tx, i);
	commit_ok(tx);
	a2 = signer_ok(&g);
	checkpoint_ok(a2, s, n + 4);
	last_root(s, n + 4, got);
	raw_root(db, n + 4, want);
	ck_assert_mem_eq(got, want, 32);

	/* The first signer goes on from its own tree to the same root. */
	tx = begin_ok(s, 1);
	append_nth(tx, n + 4);
	commit_ok(tx);
	checkpoint_ok(a1, s, n + 5);
	last_root(s, n + 5, got);
	raw_root(db, n + 5, want);
	ck_assert_mem_eq(got, want, 32);
	sqlite3_close(db);
	ck_assert_msg(audit_verify_store(s, g.verifier, NULL, &why) == 0, "%s", why.text);
	store_close(s);
	audit_signer_free(a1);
	audit_signer_free(a2);
}
END_TEST

static Suite *
audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("core");
	TCase *tt = tcase_create("tamper");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_good_log);
	tcase_add_test(tc, test_no_cpr_in_entries);
	tcase_add_test(tc, test_signer_load);
	tcase_add_test(tc, test_crash_loses_both_or_neither);
	tcase_add_test(tc, test_catch_up_after_start);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(tt, base_setup, base_teardown);
	/* The export case verifies the file once per byte of its entries. */
	tcase_set_timeout(tt, 300);
	tcase_add_test(tt, test_tamper_edit_byte);
	tcase_add_test(tt, test_tamper_columns);
	tcase_add_test(tt, test_tamper_edit_rehashed);
	tcase_add_test(tt, test_tamper_delete);
	tcase_add_test(tt, test_tamper_insert);
	tcase_add_test(tt, test_tamper_swap);
	tcase_add_test(tt, test_tamper_truncate);
	tcase_add_test(tt, test_forged_checkpoint);
	tcase_add_test(tt, test_export);
	tcase_add_test(tt, test_export_without_checkpoints);
	suite_add_tcase(s, tt);
	return s;
}

TESTLIB_MAIN(audit_suite)
