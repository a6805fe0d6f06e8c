/*
 * user: staff users within parties (caseworkers at the visitation office,
 * dispatchers at a provider, auditors, administrators), with passwords
 * hashed by Argon2id (libsodium crypto_pwhash_str) and a lockout after
 * repeated failures.
 */
#ifndef HEGN_USER_H
#define HEGN_USER_H

#include "err.h"
#include "store.h"

/* After this many failures in a row a user is locked for USER_LOCK_SECONDS. */
#define USER_MAX_FAILURES 5
#define USER_LOCK_SECONDS 900
/* Room for a stored password hash (libsodium's crypto_pwhash_STRBYTES). */
#define USER_HASH_MAX 128
/* Password checks at once: each takes crypto_pwhash_MEMLIMIT_INTERACTIVE (64 MiB). */
#define USER_CHECKS 2

/* True for caseworker, dispatcher, auditor, administrator. */
int user_role_valid(const char *role);

/*
 * The stored form of a new password (at least 10 characters): Argon2id,
 * about 64 MiB and a tenth of a second, so made outside any transaction
 * (as user_password_matches is).  0, HEGN_ERR_INVALID naming the password
 * (never repeating it), HEGN_ERR_NOMEM.
 */
int user_hash_password(const char *password, char hash[USER_HASH_MAX], struct why *why);

/*
 * Add a user with a hash from user_hash_password.  0, HEGN_ERR_CONFLICT for
 * a taken name, HEGN_ERR_INVALID naming the bad field.
 */
int user_add(struct store_tx *tx, const char *username, const char *party, const char *role,
    const char *hash, int64_t now_ms, struct why *why);

/*
 * A login in three steps, so that the password check holds no transaction:
 * Argon2id takes about 64 MiB and a tenth of a second, and a write
 * transaction held that long would stall every submission behind each
 * attempt, anyone's, at the login form.
 *
 * user_login_read, in any transaction: the user's password hash into hash,
 * or "" for a name no user has (0 either way; a store error otherwise).
 */
int user_login_read(struct store_tx *tx, const char *username,
    char hash[USER_HASH_MAX], struct why *why);
/*
 * user_password_matches, in no transaction: 1 when password matches hash.
 * For "" it spends the time of a real check on a dummy hash, so that an
 * unknown name answers as slowly as a known one.  At most USER_CHECKS at
 * once (memory); more wait.
 */
int user_password_matches(const char *hash, const char *password);
/*
 * user_login_finish, in a write transaction: the outcome against the user
 * as stored now.  0 and the user in *out (may be NULL); HEGN_ERR_UNAUTH
 * for an unknown user, a wrong password (or one checked against a hash
 * that has changed since), a disabled or locked user, all with the same
 * text to the caller ("wrong user name or password") while *reason (may be
 * NULL) gets the real one for the audit log.  Failures and successes update
 * the failure count.
 */
int user_login_finish(struct store_tx *tx, const char *username, const char *checked_hash,
    int matches, int64_t now_ms, struct store_user *out, char reason[64], struct why *why);

/* Disable or enable a user; HEGN_ERR_NOT_FOUND when there is none. */
int user_set_disabled(struct store_tx *tx, const char *username, int disabled,
    int64_t now_ms, struct why *why);

#endif
