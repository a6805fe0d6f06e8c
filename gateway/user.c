#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "user.h"
#include "util.h"

static const char *const roles[] = { "caseworker", "dispatcher", "auditor", "administrator", NULL };

int
user_role_valid(const char *role)
{
	size_t i;

	for (i = 0; roles[i] != NULL; i++)
		if (strcmp(role, roles[i]) == 0)
			return 1;
	return 0;
}

static int
valid_username(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 2 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    (i > 0 && (s[i] == '.' || s[i] == '-' || s[i] == '_'))))
			return 0;
	return 1;
}

int
user_hash_password(const char *password, char hash[USER_HASH_MAX], struct why *why)
{
	hash[0] = '\0';
	if (strlen(password) < 10)
		return why_set(why, HEGN_ERR_INVALID, "password: at least 10 characters");
	if (crypto_pwhash_str(hash, password, strlen(password),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return why_set(why, HEGN_ERR_NOMEM, "password hashing ran out of memory");
	return 0;
}

int
user_add(struct store_tx *tx, const char *username, const char *party, const char *role,
    const char *hash, int64_t now_ms, struct why *why)
{
	struct store_user u;
	int r;

	memset(&u, 0, sizeof(u));
	if (!valid_username(username))
		return why_set(why, HEGN_ERR_INVALID,
		    "username: 2-64 characters of a-z, 0-9, '.', '-' and '_'");
	if (!user_role_valid(role))
		return why_set(why, HEGN_ERR_INVALID,
		    "role: '%s' is not caseworker, dispatcher, auditor or administrator", role);
	if (hash[0] == '\0' || strlen(hash) >= sizeof(u.pw_hash))
		return why_set(why, HEGN_ERR_INVALID, "password: no hash from user_hash_password");
	snprintf(u.username, sizeof(u.username), "%s", username);
	snprintf(u.party, sizeof(u.party), "%s", party);
	snprintf(u.role, sizeof(u.role), "%s", role);
	snprintf(u.pw_hash, sizeof(u.pw_hash), "%s", hash);
	u.created_ms = u.updated_ms = now_ms;
	r = store_user_insert(tx, &u, why);
	if (r == HEGN_ERR_CONFLICT)
		why_set(why, r, "username: %s exists already", username);
	sodium_memzero(&u, sizeof(u));
	return r;
}

_Static_assert(USER_HASH_MAX >= crypto_pwhash_STRBYTES, "USER_HASH_MAX holds a hash");

/* A hash to spend the same time on when the user does not exist. */
static char dummy[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
make_dummy(void)
{
	if (crypto_pwhash_str(dummy, "no such user", 12, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		dummy[0] = '\0';
}

int
user_login_read(struct store_tx *tx, const char *username, char hash[USER_HASH_MAX],
    struct why *why)
{
	struct store_user u;
	int r;

	hash[0] = '\0';
	/* A name no user can have is unknown, not a store error the caller could tell apart. */
	if (!valid_username(username))
		return 0;
	memset(&u, 0, sizeof(u));
	r = store_user_get(tx, username, &u, NULL);
	if (r == 0)
		snprintf(hash, USER_HASH_MAX, "%s", u.pw_hash);
	else if (r == HEGN_ERR_NOT_FOUND)
		r = 0;
	else
		r = why_set(why, r, "cannot read the user");
	sodium_memzero(&u, sizeof(u));
	return r;
}

/* See user_password_matches: Argon2id's memory, bounded. */
static pthread_mutex_t checks_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t checks_cv = PTHREAD_COND_INITIALIZER;
static int checks_running;

int
user_password_matches(const char *hash, const char *password)
{
	int ok;

	pthread_once(&dummy_once, make_dummy);
	pthread_mutex_lock(&checks_lock);
	while (checks_running >= USER_CHECKS)
		pthread_cond_wait(&checks_cv, &checks_lock);
	checks_running++;
	pthread_mutex_unlock(&checks_lock);
	if (hash[0] == '\0') {
		/* Spend the time a real check takes; the outcome is the same either way. */
		if (dummy[0] != '\0')
			(void)!crypto_pwhash_str_verify(dummy, password, strlen(password));
		ok = 0;
	} else {
		ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
	}
	pthread_mutex_lock(&checks_lock);
	checks_running--;
	pthread_cond_signal(&checks_cv);
	pthread_mutex_unlock(&checks_lock);
	return ok;
}

int
user_login_finish(struct store_tx *tx, const char *username, const char *checked_hash,
    int matches, int64_t now_ms, struct store_user *out, char reason[64], struct why *why)
{
	struct store_user u;
	const char *fail = NULL;
	int r, ok;

	memset(&u, 0, sizeof(u));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (reason != NULL)
		reason[0] = '\0';
	r = checked_hash[0] != '\0' && valid_username(username) ?
	    store_user_get(tx, username, &u, NULL) : HEGN_ERR_NOT_FOUND;
	if (r == HEGN_ERR_NOT_FOUND) {
		fail = "unknown user";
		goto out;
	}
	if (r != 0)
		return why_set(why, r, "cannot read the user");
	/* Checked against a hash since replaced: not this user's password now. */
	ok = matches && strcmp(u.pw_hash, checked_hash) == 0;
	if (u.disabled)
		fail = "user disabled";
	else if (u.locked_until_ms > now_ms)
		fail = "user locked after repeated failures";
	else if (!ok)
		fail = "wrong password";
	if (fail == NULL) {
		u.failed_logins = 0;
		u.locked_until_ms = 0;
	} else if (!u.disabled && u.locked_until_ms <= now_ms) {
		if (++u.failed_logins >= USER_MAX_FAILURES) {
			u.locked_until_ms = now_ms + (int64_t)USER_LOCK_SECONDS * 1000;
			u.failed_logins = 0;
			fail = "wrong password; user now locked";
		}
	}
	u.updated_ms = now_ms;
	if ((r = store_user_update(tx, &u, why)) != 0)
		goto done;
out:
	if (fail != NULL) {
		if (reason != NULL)
			snprintf(reason, 64, "%s", fail);
		r = why_set(why, HEGN_ERR_UNAUTH, "wrong user name or password");
		goto done;
	}
	if (out != NULL)
		*out = u;
	r = 0;
done:
	sodium_memzero(&u, sizeof(u));
	return r;
}

int
user_set_disabled(struct store_tx *tx, const char *username, int disabled, int64_t now_ms,
    struct why *why)
{
	struct store_user u;
	int r;

	if ((r = store_user_get(tx, username, &u, why)) != 0)
		return r;
	u.disabled = disabled ? 1 : 0;
	u.updated_ms = now_ms;
	r = store_user_update(tx, &u, why);
	sodium_memzero(&u, sizeof(u));
	return r;
}
