/*
 * ratelimit: a token bucket per key ("party NAME", "address IP"), for
 * requests per party per minute.
 *
 * Each bucket holds up to burst tokens and gains per_minute tokens a
 * minute, evenly; a request takes one.  A request that finds the bucket
 * empty is refused with HEGN_ERR_RATE and the whole seconds after which
 * one token will be there again (for Retry-After).  Refused requests take
 * nothing, so a client that honours Retry-After gets through.
 *
 * Thread-safe: libmicrohttpd serves each connection in its own thread.
 * Keys are parties and the addresses of clients without a certificate; the
 * table is bounded (RATELIMIT_MAX_KEYS) and forgets the longest idle bucket
 * when full.  The key appears in the reason, so it must not be personal data.
 */
#ifndef HEGN_RATELIMIT_H
#define HEGN_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RATELIMIT_MAX_KEYS 4096
#define RATELIMIT_KEY_MAX 80    /* a key from ratelimit_client_key, with its NUL */

struct ratelimit;

/*
 * A limiter of per_minute requests a minute with bursts of up to burst
 * (burst 0: per_minute).  per_minute 0 means no limit: every take succeeds.
 */
struct ratelimit *ratelimit_new(unsigned int per_minute, unsigned int burst);
void ratelimit_free(struct ratelimit *rl);

/*
 * Take a token from key's bucket at now_ms (a monotonic or wall clock in
 * milliseconds; a clock that goes back adds nothing).  Returns 0, or
 * HEGN_ERR_RATE with *retry_after set to the seconds (at least 1) until a
 * token is there, and why naming the limit.  rl NULL: no limit.
 */
int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms,
    unsigned int *retry_after, struct why *why);

/*
 * Whom a client's requests count against, for this limit and for its share
 * of the memory for bodies (docs/operations.md, "Limits"): "party NAME" for
 * a client with a certificate of a party (party non-NULL), else "address
 * IP" from sa (NULL: "address unknown").  An IPv6 client is keyed by its
 * /64, the block a single host or network is usually given, so that
 * stepping through addresses in it does not make a new client; an IPv4
 * client on an IPv6 socket (::ffff:a.b.c.d) stays its one address.
 */
struct sockaddr;
void ratelimit_client_key(const struct sockaddr *sa, const char *party,
    char key[RATELIMIT_KEY_MAX]);

/* Buckets currently held (for tests). */
unsigned int ratelimit_keys(struct ratelimit *rl);

#endif
