/*
 * websession: the staff web page's sessions, kept in memory (docs/web.md).
 *
 * A session is a random 32-byte id, sent to the browser as 64 hex digits in
 * a cookie, with the user it was made for and a CSRF token for its forms.  It
 * ends after WEB_SESSION_IDLE_MS without a request, WEB_SESSION_MAX_AGE_MS
 * after its login however busy, at logout, or when WEB_SESSION_MAX others are
 * newer.  The caller passes the time, so the limits can be tested without
 * waiting for them.
 */
#ifndef HEGN_WEBSESSION_H
#define HEGN_WEBSESSION_H

#include <stdint.h>

/* Idle sessions expire after this long. */
#define WEB_SESSION_IDLE_MS (30 * 60 * 1000)
/* Every session ends this long after its login, however busy: a working day. */
#define WEB_SESSION_MAX_AGE_MS (12 * 60 * 60 * 1000LL)
/* At most this many sessions at once; a new login evicts the oldest. */
#define WEB_SESSION_MAX 512

/* A session id or CSRF token as hex, with its NUL. */
#define WEB_TOKEN_HEX 65

struct web_session {
	int used;
	uint8_t id[32];
	char csrf[WEB_TOKEN_HEX];
	char user[65], party[65], role[17];
	int64_t login_ms;
	int64_t last_ms;
};

/*
 * The live session whose id is the hex cookie (NULL: none) at time now, in
 * *out; marks it used at now.  Sessions past their limits are forgotten on
 * the way.  1 if found, else 0.
 */
int web_session_find(const char *cookie, int64_t now, struct web_session *out);

/*
 * A new session for user (of party, in role) logged in at now: its id as
 * hex in cookie, the session in *out.  Takes a free or expired slot, else
 * the least recently used one.
 */
void web_session_new(const char *user, const char *party, const char *role, int64_t now,
    char cookie[WEB_TOKEN_HEX], struct web_session *out);

/* End the session with this id, if there is one. */
void web_session_drop(const uint8_t id[32]);

/* Forget every session. */
void web_sessions_clear(void);

#endif
