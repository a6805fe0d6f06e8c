#include "config.h"

#include <sys/stat.h>

#include <ftw.h>
#include <stdint.h>
#include <unistd.h>

#include "err.h"
#include "store.h"
#include "testlib.h"
#include "user.h"
#include "util.h"

/*
 * Every hash costs crypto_pwhash's INTERACTIVE limits (fixed in user.c), so
 * the tests add few users and log in only as often as a case needs.
 */

static char base[] = "/tmp/hegn-test-user-XXXXXX";

#define NOW 1795772760000LL
#define PASSWORD "correct horse battery"
#define GENERIC "wrong user name or password"

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
	snprintf(base, sizeof(base), "/tmp/hegn-test-user-XXXXXX");
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

static struct store *
open_fresh(const char *name, struct store_tx **tx)
{
	char path[512];
	struct store *s = NULL;
	struct why why = { 0 };

	snprintf(path, sizeof(path), "%s/%s-%ld.db", base, name, (long)getpid());
	ck_assert_msg(store_open(path, &s, &why) == 0, "store_open: %s", why.text);
	ck_assert_msg(store_begin(s, 1, tx, &why) == 0, "begin: %s", why.text);
	return s;
}

static void
add_ok(struct store_tx *tx, const char *username, const char *role)
{
	struct why why = { 0 };

	char hash[USER_HASH_MAX];

	ck_assert_int_eq(user_hash_password(PASSWORD, hash, &why), 0);
	ck_assert_msg(user_add(tx, username, "ringsted-visitation", role, hash, NOW,
	    &why) == 0, "user_add %s: %s", username, why.text);
}

/* user_login_read, user_password_matches and user_login_finish, as relay_user_login runs them. */
static int
login(struct store_tx *tx, const char *username, const char *password, int64_t now,
    struct store_user *out, char reason[64], struct why *why)
{
	char hash[USER_HASH_MAX];
	int r;

	if ((r = user_login_read(tx, username, hash, why)) != 0)
		return r;
	return user_login_finish(tx, username, hash, user_password_matches(hash, password), now,
	    out, reason, why);
}

/* A login that must be refused: the caller's text is generic, reason is not. */
static void
login_refused(struct store_tx *tx, const char *username, const char *password, int64_t now,
    const char *want_reason)
{
	struct store_user u;
	struct why why = { 0 };
	char reason[64];

	memset(&u, 'x', sizeof(u));
	ck_assert_int_eq(login(tx, username, password, now, &u, reason, &why),
	    HEGN_ERR_UNAUTH);
	ck_assert_int_eq(why.code, HEGN_ERR_UNAUTH);
	ck_assert_str_eq(why.text, GENERIC);
	ck_assert_str_eq(reason, want_reason);
	/* Nothing about the user leaks out on a refusal. */
	ck_assert_str_eq(u.username, "");
	ck_assert_str_eq(u.pw_hash, "");
}

static void
login_ok(struct store_tx *tx, const char *username, int64_t now)
{
	struct store_user u;
	struct why why = { 0 };
	char reason[64];

	ck_assert_msg(login(tx, username, PASSWORD, now, &u, reason, &why) == 0,
	    "user_login %s: %s (%s)", username, why.text, reason);
	ck_assert_str_eq(reason, "");
	ck_assert_str_eq(u.username, username);
	ck_assert_int_eq(u.failed_logins, 0);
	ck_assert_int_eq(u.locked_until_ms, 0);
}

static struct store_user
stored(struct store_tx *tx, const char *username)
{
	struct store_user u;
	struct why why = { 0 };

	ck_assert_msg(store_user_get(tx, username, &u, &why) == 0, "user_get: %s", why.text);
	return u;
}

START_TEST(test_roles)
{
	ck_assert(user_role_valid("caseworker"));
	ck_assert(user_role_valid("dispatcher"));
	ck_assert(user_role_valid("auditor"));
	ck_assert(user_role_valid("administrator"));
	ck_assert(!user_role_valid("Administrator"));
	ck_assert(!user_role_valid("admin"));
	ck_assert(!user_role_valid(""));
	ck_assert(!user_role_valid("auditor "));
}
END_TEST

START_TEST(test_add_and_login)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("login", &tx);
	struct store_user u, got;
	struct why why = { 0 };
	char reason[64] = "untouched";

	add_ok(tx, "anna.k", "caseworker");
	u = stored(tx, "anna.k");
	ck_assert_str_eq(u.party, "ringsted-visitation");
	ck_assert_str_eq(u.role, "caseworker");
	ck_assert_int_eq(u.disabled, 0);
	ck_assert_int_eq(u.created_ms, NOW);
	/* Argon2id in libsodium's string form, never the password. */
	ck_assert_msg(strncmp(u.pw_hash, "$argon2id$", 10) == 0, "hash: %.16s", u.pw_hash);
	ck_assert_ptr_null(strstr(u.pw_hash, PASSWORD));
	ck_assert_ptr_null(strstr(u.pw_hash, "horse"));

	ck_assert_msg(login(tx, "anna.k", PASSWORD, NOW + 1000, &got, reason, &why) == 0,
	    "%s", why.text);
	ck_assert_str_eq(reason, "");
	ck_assert_str_eq(got.username, "anna.k");
	ck_assert_str_eq(got.party, "ringsted-visitation");
	ck_assert_str_eq(got.role, "caseworker");
	/* out and reason may be NULL. */
	ck_assert_int_eq(login(tx, "anna.k", PASSWORD, NOW + 2000, NULL, NULL, NULL), 0);
	store_rollback(tx);
	store_close(s);
}
END_TEST

/*
 * The steps of a login apart, as relay_user_login runs them around its
 * transactions: what changed between the check and the finish counts.
 */
START_TEST(test_login_steps)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("steps", &tx);
	struct store_user u;
	struct why why = { 0 };
	char hash[USER_HASH_MAX], reason[64];

	add_ok(tx, "dan.v", "caseworker");
	ck_assert_int_eq(user_login_read(tx, "dan.v", hash, &why), 0);
	ck_assert_str_eq(hash, stored(tx, "dan.v").pw_hash);
	ck_assert(user_password_matches(hash, PASSWORD));
	ck_assert(!user_password_matches(hash, "not the password"));
	/* The password is replaced after the check: the old one no longer logs in. */
	u = stored(tx, "dan.v");
	u.pw_hash[strlen(u.pw_hash) - 1] ^= 1;
	ck_assert_int_eq(store_user_update(tx, &u, &why), 0);
	ck_assert_int_eq(user_login_finish(tx, "dan.v", hash, 1, NOW + 1, NULL, reason, &why),
	    HEGN_ERR_UNAUTH);
	ck_assert_str_eq(reason, "wrong password");
	ck_assert_int_eq(stored(tx, "dan.v").failed_logins, 1);
	/* A name nobody had when it was read is unknown, even if added since. */
	ck_assert_int_eq(user_login_read(tx, "eva.w", hash, &why), 0);
	ck_assert_str_eq(hash, "");
	ck_assert(!user_password_matches(hash, PASSWORD));
	add_ok(tx, "eva.w", "caseworker");
	ck_assert_int_eq(user_login_finish(tx, "eva.w", hash, 1, NOW + 2, NULL, reason, &why),
	    HEGN_ERR_UNAUTH);
	ck_assert_str_eq(reason, "unknown user");
	ck_assert_int_eq(stored(tx, "eva.w").failed_logins, 0);
	/* A name no user can have reads as unknown, not as an error. */
	ck_assert_int_eq(user_login_read(tx, "Not A Name", hash, &why), 0);
	ck_assert_str_eq(hash, "");
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_wrong_password)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("wrong", &tx);

	add_ok(tx, "anna.k", "caseworker");
	login_refused(tx, "anna.k", "correct horse battery!", NOW, "wrong password");
	ck_assert_int_eq(stored(tx, "anna.k").failed_logins, 1);
	/* A prefix of the password is no password. */
	login_refused(tx, "anna.k", "correct horse", NOW, "wrong password");
	ck_assert_int_eq(stored(tx, "anna.k").failed_logins, 2);
	/* A success resets the count. */
	login_ok(tx, "anna.k", NOW + 1000);
	ck_assert_int_eq(stored(tx, "anna.k").failed_logins, 0);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_unknown_user)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("unknown", &tx);
	char longname[300];

	login_refused(tx, "nobody", PASSWORD, NOW, "unknown user");
	/* A name no user could have gets the same answer. */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	login_refused(tx, longname, PASSWORD, NOW, "unknown user");
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_lockout)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("lockout", &tx);
	struct store_user u;
	int i;

	add_ok(tx, "bo.d", "dispatcher");
	for (i = 1; i < USER_MAX_FAILURES; i++) {
		login_refused(tx, "bo.d", "not the password", NOW + i, "wrong password");
		ck_assert_int_eq(stored(tx, "bo.d").failed_logins, i);
	}
	login_refused(tx, "bo.d", "not the password", NOW + i, "wrong password; user now locked");
	u = stored(tx, "bo.d");
	ck_assert_int_eq(u.locked_until_ms, NOW + i + (int64_t)USER_LOCK_SECONDS * 1000);
	/* While locked even the right password fails, and says why only to the log. */
	login_refused(tx, "bo.d", PASSWORD, NOW + i + 1000, "user locked after repeated failures");
	/* A lock is not extended or counted by attempts during it. */
	u = stored(tx, "bo.d");
	ck_assert_int_eq(u.locked_until_ms, NOW + i + (int64_t)USER_LOCK_SECONDS * 1000);
	/* After the lock the right password works again. */
	login_ok(tx, "bo.d", u.locked_until_ms + 1);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_disabled)
{
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("disabled", &tx);
	struct why why = { 0 };

	add_ok(tx, "cai.auditor", "auditor");
	ck_assert_int_eq(user_set_disabled(tx, "cai.auditor", 1, NOW + 1, &why), 0);
	ck_assert_int_eq(stored(tx, "cai.auditor").disabled, 1);
	ck_assert_int_eq(stored(tx, "cai.auditor").updated_ms, NOW + 1);
	login_refused(tx, "cai.auditor", PASSWORD, NOW + 2, "user disabled");
	ck_assert_int_eq(user_set_disabled(tx, "cai.auditor", 0, NOW + 3, &why), 0);
	login_ok(tx, "cai.auditor", NOW + 4);

	ck_assert_int_eq(user_set_disabled(tx, "nobody", 1, NOW, &why), HEGN_ERR_NOT_FOUND);
	store_rollback(tx);
	store_close(s);
}
END_TEST

START_TEST(test_add_refusals)
{
	static const char *const bad_names[] = {
		"", "a", "Anna", "anna k", "-anna", ".anna", "anna@example.dk", "anna/k",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL
	};
	struct store_tx *tx = NULL;
	struct store *s = open_fresh("refusals", &tx);
	struct store_user *list = NULL;
	struct why why = { 0 };
	char hash[USER_HASH_MAX];
	size_t i, n = 0;

	ck_assert_int_eq(user_hash_password(PASSWORD, hash, &why), 0);
	for (i = 0; bad_names[i] != NULL; i++) {
		ck_assert_msg(user_add(tx, bad_names[i], "ringsted-visitation", "caseworker",
		    hash, NOW, &why) == HEGN_ERR_INVALID, "username '%s' accepted",
		    bad_names[i]);
		ck_assert_ptr_nonnull(strstr(why.text, "username"));
	}
	ck_assert_int_eq(user_add(tx, "anna.k", "ringsted-visitation", "root", hash, NOW,
	    &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "role"));
	ck_assert_int_eq(user_add(tx, "anna.k", "ringsted-visitation", "", hash, NOW, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "role"));
	ck_assert_int_eq(user_add(tx, "anna.k", "ringsted-visitation", "caseworker", "", NOW,
	    &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "password"));
	ck_assert_int_eq(user_hash_password("123456789", hash, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "password"));
	/* The reason never repeats the password. */
	ck_assert_ptr_null(strstr(why.text, "123456789"));
	ck_assert_str_eq(hash, "");
	ck_assert_int_eq(user_hash_password("", hash, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "password"));
	ck_assert_int_eq(store_user_list(tx, &list, &n, &why), 0);
	ck_assert_uint_eq(n, 0);
	free(list);

	/* Longest name allowed; then a taken one. */
	add_ok(tx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "caseworker");
	add_ok(tx, "anna.k", "caseworker");
	ck_assert_int_eq(user_hash_password("another password", hash, &why), 0);
	ck_assert_int_eq(user_add(tx, "anna.k", "hovmand-care", "dispatcher", hash,
	    NOW, &why), HEGN_ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(why.text, "username"));
	/* The first one is unchanged. */
	ck_assert_str_eq(stored(tx, "anna.k").party, "ringsted-visitation");
	ck_assert_str_eq(stored(tx, "anna.k").role, "caseworker");
	store_rollback(tx);
	store_close(s);
}
END_TEST

static Suite *
user_suite(void)
{
	Suite *s = suite_create("user");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	/* Argon2id at INTERACTIVE cost, a dozen times: generous, but bounded. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roles);
	tcase_add_test(tc, test_add_and_login);
	tcase_add_test(tc, test_login_steps);
	tcase_add_test(tc, test_wrong_password);
	tcase_add_test(tc, test_unknown_user);
	tcase_add_test(tc, test_lockout);
	tcase_add_test(tc, test_disabled);
	tcase_add_test(tc, test_add_refusals);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(user_suite)
