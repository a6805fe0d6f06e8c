/*
 * delivery: the scheduler.  Its schedule lives in the store, so it survives
 * restarts: each copy of a message sits on one channel of its recipient's
 * fallback chain, with its attempts, MedCom resends and deadline.
 *
 * One pass (delivery_run) takes the copies that are due at a given time and
 * acts on each: hand it over through the channel's adapter, retry after a
 * failure with exponential backoff and jitter, resend when no receipt came
 * within resend_after (at most max_resends, with the same message id), and
 * past the deadline fall back to the next channel of the chain, recording
 * why.  The time is a parameter, so tests drive the clock.
 */
#ifndef HEGN_DELIVERY_H
#define HEGN_DELIVERY_H

#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "party.h"
#include "pki.h"
#include "policy.h"
#include "store.h"

/* Hands a receipt that a channel returned (push, folder) back to the relay. */
typedef int (*delivery_receipt_fn)(void *arg, const struct party *from, const char *id,
    const uint8_t *der, size_t len, struct why *why);

/* What a pass needs; all borrowed. */
struct delivery_ctx {
	const struct conf *conf;
	const struct party_table *parties;
	const struct pki *pki;
	const struct policy *policy;
	struct store *store;
	delivery_receipt_fn receipt;
	void *receipt_arg;
	const struct buf *tls_cert_pem, *tls_key_pem;  /* our TLS client identity, read before dropping privileges */
};

/* The n-th channel (from 0) of a party's chain into out; 0, or HEGN_ERR_NOT_FOUND past the end. */
int delivery_channel(const struct party *p, int n, char out[17]);

/*
 * The schedule of a new copy submitted at now_ms: the chain's first
 * channel, due at once (pull: at resend time), with the deadline from the
 * message's own (deadline_ms, 0: none) or its kind's.
 */
void delivery_initial(const struct conf *c, const struct party *to, enum message_kind kind,
    int64_t deadline_ms, int64_t now_ms, struct store_schedule *s);

/* One scheduler pass at now_ms; *acted counts the copies handled.  0 or an error. */
int delivery_run(const struct delivery_ctx *ctx, int64_t now_ms, int *acted, struct why *why);

/* The wait before retry number attempts (1, 2, ...): base * 2^(n-1), capped, +-20% jitter. */
int64_t delivery_backoff_ms(const struct conf *c, int attempts);

/* True when the channel counts as electronic and secure (eDag2). */
int delivery_is_electronic(const char *channel);

/*
 * The sender's signed content of message id, verified and minimised for the
 * party to (as fax and post print it), as canonical JSON in *out (personal
 * data: the caller wipes it).  0, HEGN_ERR_NOT_FOUND when the content is
 * gone (retention), or the error of verifying or parsing it.
 */
int delivery_content(const struct delivery_ctx *ctx, const struct party *to, const char *id,
    struct buf *out, struct why *why);

#endif
