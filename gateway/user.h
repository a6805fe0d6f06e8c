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

/* True for caseworker, dispatcher, auditor, administrator. */
int user_role_valid(const char *role);

/*
 * Add a user (password at least 10 characters).  0, HEGN_ERR_CONFLICT for a
 * taken name, HEGN_ERR_INVALID naming the bad field.
 */
int user_add(struct store_tx *tx, const char *username, const char *party, const char *role,
    const char *password, int64_t now_ms, struct why *why);

/*
 * Check a password.  Returns 0 and the user in *out (may be NULL);
 * HEGN_ERR_UNAUTH for an unknown user, a wrong password, a disabled or
 * locked user, all with the same text to the caller ("wrong user name or
 * password") while *reason (may be NULL) gets the real one for the audit
 * log.  Failures and successes update the failure count.
 */
int user_login(struct store_tx *tx, const char *username, const char *password,
    int64_t now_ms, struct store_user *out, char reason[64], struct why *why);

/* Disable or enable a user; HEGN_ERR_NOT_FOUND when there is none. */
int user_set_disabled(struct store_tx *tx, const char *username, int disabled,
    int64_t now_ms, struct why *why);

#endif
