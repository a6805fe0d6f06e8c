/*
 * err: the one error space of hegn.
 *
 * 0 is success; failures are negative HEGN_ERR_* codes, grouped by what the
 * caller should do about them.  A human-readable reason travels beside the
 * code in a struct why, so a user sees "certificate for party hovmand-care
 * expired on 2026-03-01", not "error -7".  The HTTP layer maps codes to
 * status codes through err_http_status() and nothing else.
 */
#ifndef HEGN_ERR_H
#define HEGN_ERR_H

#include <stddef.h>

enum {
	HEGN_OK = 0,

	/* Retry: the operation may succeed later. */
	HEGN_ERR_IO = -1,          /* disk or network failure */
	HEGN_ERR_BUSY = -2,        /* a resource is temporarily unavailable */
	HEGN_ERR_RATE = -3,        /* too many requests */

	/* Reject: the caller sent something wrong. */
	HEGN_ERR_INVALID = -20,    /* malformed or incomplete input */
	HEGN_ERR_TOO_LARGE = -21,  /* input exceeds a configured limit */
	HEGN_ERR_UNSUPPORTED = -22,/* media type or algorithm not supported */
	HEGN_ERR_SIGNATURE = -23,  /* signature does not verify */
	HEGN_ERR_CERT = -24,       /* certificate invalid, expired, revoked, unknown CA */
	HEGN_ERR_DECRYPT = -25,    /* cannot decrypt: not for us, or damaged */
	HEGN_ERR_UNAUTH = -26,     /* no or unacceptable credentials */
	HEGN_ERR_DENIED = -27,     /* authenticated, but policy says no */
	HEGN_ERR_NOT_FOUND = -28,  /* no such object (or not visible to the caller) */
	HEGN_ERR_CONFLICT = -29,   /* clashes with existing state */
	HEGN_ERR_UNPROCESSABLE = -30, /* well-formed, but semantically refused */

	/* Fail: the gateway's own fault. */
	HEGN_ERR_INTERNAL = -50,
	HEGN_ERR_NOMEM = -51,
	HEGN_ERR_CONFIG = -52,     /* configuration or key material unusable */
	HEGN_ERR_CRYPTO = -53,     /* a cryptographic library failed unexpectedly */
	HEGN_ERR_STORE = -54,      /* the store failed or is corrupt */
};

/* Short English description of code; never NULL. */
const char *hegn_strerror(int code);

/* Stable machine-readable name for code ("invalid", "denied", ...); never NULL. */
const char *err_name(int code);

/* HTTP status for code: 4xx for the caller's faults, 5xx for ours. */
int err_http_status(int code);

/* True when the caller may retry the operation later. */
int err_is_retryable(int code);

/*
 * The reason beside a code.  Functions that can fail take a struct why *
 * (which may be NULL when the caller does not care) and fill it with a
 * sentence naming the field, certificate or file and what is wrong.
 * The text never carries CPR numbers, names or message content.
 */
struct why {
	int code;
	char text[512];
};

/* Record code and a printf-style reason in w (if non-NULL); returns code. */
int why_set(struct why *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the reason already in w with "prefix: "; returns w->code (or code). */
int why_prefix(struct why *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear w (if non-NULL). */
void why_clear(struct why *w);

/* Append OpenSSL's most recent error to w->text and clear OpenSSL's queue. */
void why_openssl(struct why *w);

#endif
