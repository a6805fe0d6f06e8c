/*
 * util: small helpers shared by every layer (files, hex, time, ids, digests).
 */
#ifndef HEGN_UTIL_H
#define HEGN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <sodium.h>

#include "err.h"

/* A byte buffer owned by whoever holds it; free with buf_free(). */
struct buf {
	uint8_t *data;
	size_t len;
};

/* Free b's data (wiping it when wipe is set) and reset b; accepts NULL. */
void buf_free(struct buf *b, int wipe);

/*
 * Read a whole file of at most max bytes into *out (NUL-terminated beyond
 * len, for text).  Returns 0, HEGN_ERR_IO or HEGN_ERR_TOO_LARGE.
 */
int util_read_file(const char *path, size_t max, struct buf *out, struct why *why);

/*
 * Write data to path atomically (temporary file, fsync, rename, fsync of the
 * directory) with the given mode.  Returns 0 or HEGN_ERR_IO.
 */
int util_write_file(const char *path, const void *data, size_t len, int mode,
    struct why *why);

/* Create directory path (and parents) with mode; 0 or HEGN_ERR_IO. */
int util_mkdirs(const char *path, int mode, struct why *why);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void util_hex(const uint8_t *in, size_t len, char *out);

/* SHA-256 of data into out. */
void util_sha256(const void *data, size_t len, uint8_t out[32]);

/* SHA-256 of data as 64 lower-case hex digits plus NUL. */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * SHA-256 of data given in pieces, with util_sha256's implementations:
 * OpenSSL's, or libsodium's when OpenSSL cannot have its context.  _final
 * writes out and frees what _init took; it returns -1 (out unwritten) if
 * OpenSSL failed on a piece after all.
 */
struct util_sha256 {
	void *evp;                      /* EVP_MD_CTX, or NULL: na */
	crypto_hash_sha256_state na;
	int failed;
};
void util_sha256_init(struct util_sha256 *h);
void util_sha256_update(struct util_sha256 *h, const void *data, size_t len);
int util_sha256_final(struct util_sha256 *h, uint8_t out[32]);
/* What _init took, for a hash given up before _final; accepts a finished or zeroed h. */
void util_sha256_free(struct util_sha256 *h);

/* A random version-4 UUID, 36 characters plus NUL. */
void util_uuid(char out[37]);
/*
 * A version-7 UUID (RFC 9562) for the time ms: 48 bits of the time, then 74
 * random bits.  Ids made later sort after earlier ones, as text too.
 */
void util_uuid7(int64_t ms, char out[37]);

/* Milliseconds since the epoch. */
int64_t util_now_ms(void);

/* Format t (seconds since the epoch, UTC) as RFC 3339 "2026-11-27T09:46:00Z". */
void util_time_rfc3339(time_t t, char out[32]);

/* Format ms since the epoch as RFC 3339 with milliseconds. */
void util_time_ms_rfc3339(int64_t ms, char out[40]);

/*
 * Parse an RFC 3339 date-time with a time zone ("Z" or "+hh:mm"); fractional
 * seconds are accepted and dropped.  Returns 0 or HEGN_ERR_INVALID.
 */
int util_parse_rfc3339(const char *s, time_t *out);

/* Parse a calendar date "YYYY-MM-DD" that exists; 0 or HEGN_ERR_INVALID. */
int util_parse_date(const char *s, int *year, int *month, int *day);

/* Days in month of year (Gregorian). */
int util_days_in_month(int year, int month);

/*
 * Resolve path against the directory of base when it is relative; returns a
 * new string.
 */
char *util_path_relative_to(const char *base, const char *path);

/* True when s is 1..64 characters of [A-Za-z0-9._:-], starting alphanumeric. */
int util_valid_id(const char *s);

#endif
