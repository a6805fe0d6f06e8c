#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "websession.h"

static struct web_session sessions[WEB_SESSION_MAX];
static pthread_mutex_t sessions_lock = PTHREAD_MUTEX_INITIALIZER;

static int
expired(const struct web_session *s, int64_t now)
{
	return now - s->last_ms > WEB_SESSION_IDLE_MS || now - s->login_ms > WEB_SESSION_MAX_AGE_MS;
}

void
web_sessions_clear(void)
{
	pthread_mutex_lock(&sessions_lock);
	sodium_memzero(sessions, sizeof(sessions));
	pthread_mutex_unlock(&sessions_lock);
}

int
web_session_find(const char *cookie, int64_t now, struct web_session *out)
{
	uint8_t id[32];
	size_t n = 0, i;
	int found = 0;

	if (cookie == NULL || strlen(cookie) != 64 ||
	    sodium_hex2bin(id, sizeof(id), cookie, 64, NULL, &n, NULL) != 0 || n != sizeof(id))
		return 0;
	pthread_mutex_lock(&sessions_lock);
	for (i = 0; i < WEB_SESSION_MAX; i++) {
		struct web_session *s = &sessions[i];

		if (!s->used)
			continue;
		if (expired(s, now)) {
			sodium_memzero(s, sizeof(*s));
			continue;
		}
		/* Compared in constant time, and the walk goes on: the time says nothing. */
		if (!found && sodium_memcmp(s->id, id, sizeof(id)) == 0) {
			s->last_ms = now;
			*out = *s;
			found = 1;
		}
	}
	pthread_mutex_unlock(&sessions_lock);
	sodium_memzero(id, sizeof(id));
	return found;
}

void
web_session_new(const char *user, const char *party, const char *role, int64_t now,
    char cookie[WEB_TOKEN_HEX], struct web_session *out)
{
	struct web_session s, *slot = NULL;
	uint8_t raw[32];
	size_t i;

	memset(&s, 0, sizeof(s));
	s.used = 1;
	randombytes_buf(s.id, sizeof(s.id));
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(s.csrf, sizeof(s.csrf), raw, sizeof(raw));
	snprintf(s.user, sizeof(s.user), "%s", user);
	snprintf(s.party, sizeof(s.party), "%s", party);
	snprintf(s.role, sizeof(s.role), "%s", role);
	s.login_ms = s.last_ms = now;
	sodium_bin2hex(cookie, WEB_TOKEN_HEX, s.id, sizeof(s.id));
	pthread_mutex_lock(&sessions_lock);
	for (i = 0; i < WEB_SESSION_MAX; i++) {
		if (!sessions[i].used || expired(&sessions[i], now)) {
			slot = &sessions[i];
			break;
		}
		if (slot == NULL || sessions[i].last_ms < slot->last_ms)
			slot = &sessions[i];
	}
	*slot = s;
	pthread_mutex_unlock(&sessions_lock);
	*out = s;
	sodium_memzero(&s, sizeof(s));
	sodium_memzero(raw, sizeof(raw));
}

void
web_session_drop(const uint8_t id[32])
{
	size_t i;

	pthread_mutex_lock(&sessions_lock);
	for (i = 0; i < WEB_SESSION_MAX; i++)
		if (sessions[i].used && sodium_memcmp(sessions[i].id, id, 32) == 0)
			sodium_memzero(&sessions[i], sizeof(sessions[i]));
	pthread_mutex_unlock(&sessions_lock);
}
