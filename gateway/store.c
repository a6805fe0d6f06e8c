/*
 * store: the front end.  It picks a back end by the scheme of the location
 * and forwards every call through the back end's table, so callers never
 * see which database holds the state.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"
#include "store_sqlite.h"
#include "util.h"
#include "xmalloc.h"

const struct store_backend *const store_backends[] = {
	&store_backend_sqlite,
	NULL,
};

struct store {
	const struct store_backend *be;
	void *impl;
};

struct store_tx {
	const struct store_backend *be;
	void *h;
};

static const char *const store_states[] = {
	STORE_STATE_SUBMITTED,
	STORE_STATE_DELIVERED,
	STORE_STATE_ACKNOWLEDGED,
	STORE_STATE_REJECTED,
	STORE_STATE_FALLBACK,
	STORE_STATE_FAILED,
};

/*
 * Split location into a scheme and the rest.  Only a leading RFC 3986
 * scheme counts, so "/srv/a:b.db" stays a path.  Returns 0 or
 * HEGN_ERR_INVALID when the scheme does not fit in scheme.
 */
static int
store_split(const char *location, char *scheme, size_t schemelen, const char **rest,
    struct why *why)
{
	size_t i;

	*rest = location;
	snprintf(scheme, schemelen, "sqlite");
	if (!isalpha((unsigned char)location[0]))
		return 0;
	for (i = 1; location[i] != '\0'; i++) {
		if (location[i] == ':')
			break;
		if (!isalnum((unsigned char)location[i]) && location[i] != '+' &&
		    location[i] != '-' && location[i] != '.')
			return 0;
	}
	if (location[i] != ':')
		return 0;
	if (i >= schemelen)
		return why_set(why, HEGN_ERR_CONFIG,
		    "store: the location's scheme is longer than any back end's name");
	memcpy(scheme, location, i);
	scheme[i] = '\0';
	*rest = location + i + 1;
	return 0;
}

int
store_open(const char *location, struct store **out, struct why *why)
{
	return store_open_flags(location, 0, out, why);
}

int
store_open_flags(const char *location, int flags, struct store **out, struct why *why)
{
	const struct store_backend *be = NULL;
	struct store *s = NULL;
	const char *rest;
	char scheme[33];
	void *impl = NULL;
	size_t i;
	int r;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || location == NULL || *location == '\0') {
		r = why_set(why, HEGN_ERR_INVALID, "store: no location given");
		goto out;
	}
	if ((r = store_split(location, scheme, sizeof(scheme), &rest, why)) != 0)
		goto out;
	for (i = 0; store_backends[i] != NULL; i++) {
		if (strcmp(store_backends[i]->name, scheme) == 0) {
			be = store_backends[i];
			break;
		}
	}
	if (be == NULL) {
		r = why_set(why, HEGN_ERR_CONFIG, "store: no back end named \"%s\"", scheme);
		goto out;
	}
	if (*rest == '\0') {
		r = why_set(why, HEGN_ERR_INVALID, "store: the %s location has no path", scheme);
		goto out;
	}
	if ((r = be->open(rest, flags, &impl, why)) != 0)
		goto out;
	s = xcalloc(1, sizeof(*s));
	s->be = be;
	s->impl = impl;
	*out = s;
	r = 0;
out:
	return r;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	s->be->close(s->impl);
	free(s);
}

void
store_sync_snapshots(struct store *s)
{
	if (s != NULL && s->be->sync_snapshots != NULL)
		s->be->sync_snapshots(s->impl);
}

int
store_schema_version(struct store *s)
{
	if (s == NULL)
		return 0;
	return s->be->schema_version(s->impl);
}

int
store_begin(struct store *s, int write, struct store_tx **out, struct why *why)
{
	struct store_tx *tx = NULL;
	void *h = NULL;
	int r;

	if (out != NULL)
		*out = NULL;
	if (s == NULL || out == NULL) {
		r = why_set(why, HEGN_ERR_INTERNAL, "store: begin called without a store");
		goto out;
	}
	if ((r = s->be->begin(s->impl, write, &h, why)) != 0)
		goto out;
	tx = xcalloc(1, sizeof(*tx));
	tx->be = s->be;
	tx->h = h;
	*out = tx;
	r = 0;
out:
	return r;
}

int
store_commit(struct store_tx *tx, struct why *why)
{
	int r;

	if (tx == NULL)
		return why_set(why, HEGN_ERR_INTERNAL,
		    "store: commit called without a transaction");
	r = tx->be->commit(tx->h, why);
	free(tx);
	return r;
}

void
store_rollback(struct store_tx *tx)
{
	if (tx == NULL)
		return;
	tx->be->rollback(tx->h);
	free(tx);
}

int
store_end_read(struct store_tx **tx, int rc, struct why *why)
{
	struct store_tx *t = *tx;

	*tx = NULL;
	if (rc != 0) {
		store_rollback(t);
		return rc;
	}
	return store_commit(t, why);
}

void *
store_tx_impl(struct store_tx *tx, const struct store_backend *be)
{
	if (tx == NULL || tx->be != be)
		return NULL;
	return tx->h;
}

int
store_state_valid(const char *state)
{
	size_t i;

	if (state == NULL)
		return 0;
	for (i = 0; i < sizeof(store_states) / sizeof(store_states[0]); i++)
		if (strcmp(state, store_states[i]) == 0)
			return 1;
	return 0;
}

static int
store_bad_state(struct why *why)
{
	return why_set(why, HEGN_ERR_INVALID, "store: delivery state is not one of "
	    "submitted, delivered, acknowledged, rejected, fallback, failed");
}

static int
store_no_tx(const char *what, struct why *why)
{
	return why_set(why, HEGN_ERR_INTERNAL, "store: %s called without a transaction or "
	    "with a missing argument", what);
}

int
store_message_insert(struct store_tx *tx, const struct store_message *m, struct why *why)
{
	if (tx == NULL || m == NULL)
		return store_no_tx("message insert", why);
	return tx->be->message_insert(tx->h, m, why);
}

int
store_message_get(struct store_tx *tx, const char *id, int with_der,
    struct store_message *out, struct why *why)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (tx == NULL || id == NULL || out == NULL)
		return store_no_tx("message get", why);
	return tx->be->message_get(tx->h, id, with_der, out, why);
}

int
store_spill_open(struct store *s, int *fd, struct why *why)
{
	if (fd != NULL)
		*fd = -1;
	if (s == NULL || fd == NULL)
		return why_set(why, HEGN_ERR_INTERNAL, "store: spill file without a store");
	return s->be->spill_open(s->impl, fd, why);
}

int
store_delivery_insert(struct store_tx *tx, const struct store_delivery *d, struct why *why)
{
	if (tx == NULL || d == NULL)
		return store_no_tx("delivery insert", why);
	if (d->spilled.len > 0 && (d->spilled.fd < 0 || d->sealed.data != NULL))
		return why_set(why, HEGN_ERR_INTERNAL,
		    "store: a delivery's copy is both in memory and spilled, or spilled nowhere");
	if (memchr(d->state, '\0', sizeof(d->state)) == NULL || !store_state_valid(d->state))
		return store_bad_state(why);
	return tx->be->delivery_insert(tx->h, d, why);
}

int
store_delivery_get(struct store_tx *tx, const char *id, const char *recipient,
    int with_sealed, struct store_delivery *out, struct why *why)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (tx == NULL || id == NULL || recipient == NULL || out == NULL)
		return store_no_tx("delivery get", why);
	return tx->be->delivery_get(tx->h, id, recipient, with_sealed, out, why);
}

int
store_sealed_read(struct store_tx *tx, const char *id, const char *recipient, const char *sha,
    uint64_t offset, uint8_t *out, size_t n, size_t *got, uint64_t *total, struct why *why)
{
	if (got != NULL)
		*got = 0;
	if (total != NULL)
		*total = 0;
	if (tx == NULL || id == NULL || recipient == NULL || sha == NULL ||
	    (out == NULL && n != 0) || got == NULL || total == NULL)
		return store_no_tx("sealed read", why);
	return tx->be->sealed_read(tx->h, id, recipient, sha, offset, out, n, got, total, why);
}

int
store_delivery_list(struct store_tx *tx, const char *id, struct store_delivery **out,
    size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || id == NULL || out == NULL || n == NULL)
		return store_no_tx("delivery list", why);
	return tx->be->delivery_list(tx->h, id, out, n, why);
}

int
store_delivery_set_state(struct store_tx *tx, const char *id, const char *recipient,
    const char *state, int64_t at_ms, struct why *why)
{
	if (tx == NULL || id == NULL || recipient == NULL || state == NULL)
		return store_no_tx("delivery state change", why);
	if (!store_state_valid(state))
		return store_bad_state(why);
	return tx->be->delivery_set_state(tx->h, id, recipient, state, at_ms, why);
}

int
store_inbox(struct store_tx *tx, const char *recipient, int64_t after, size_t limit,
    struct store_inbox_item **out, size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || recipient == NULL || out == NULL || n == NULL)
		return store_no_tx("inbox", why);
	if (limit == 0 || limit > STORE_INBOX_MAX)
		limit = STORE_INBOX_MAX;
	return tx->be->inbox(tx->h, recipient, after, limit, out, n, why);
}

int
store_event_add(struct store_tx *tx, const struct store_event *e, struct why *why)
{
	if (tx == NULL || e == NULL)
		return store_no_tx("event add", why);
	return tx->be->event_add(tx->h, e, why);
}

int
store_event_list(struct store_tx *tx, const char *id, struct store_event **out,
    size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || id == NULL || out == NULL || n == NULL)
		return store_no_tx("event list", why);
	return tx->be->event_list(tx->h, id, out, n, why);
}

int
store_receipt_insert(struct store_tx *tx, const struct store_receipt *r, struct why *why)
{
	if (tx == NULL || r == NULL)
		return store_no_tx("receipt insert", why);
	return tx->be->receipt_insert(tx->h, r, why);
}

int
store_receipt_get(struct store_tx *tx, const char *id, const char *recipient,
    struct store_receipt *out, struct why *why)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (tx == NULL || id == NULL || recipient == NULL || out == NULL)
		return store_no_tx("receipt get", why);
	return tx->be->receipt_get(tx->h, id, recipient, out, why);
}

int
store_assignment_insert(struct store_tx *tx, struct store_assignment *a, struct why *why)
{
	if (tx == NULL || a == NULL)
		return store_no_tx("assignment insert", why);
	return tx->be->assignment_insert(tx->h, a, why);
}

int
store_assignment_update(struct store_tx *tx, const struct store_assignment *a,
    struct why *why)
{
	if (tx == NULL || a == NULL)
		return store_no_tx("assignment update", why);
	return tx->be->assignment_update(tx->h, a, why);
}

int
store_assignment_list(struct store_tx *tx, const char *citizen_ref, const char *provider,
    struct store_assignment **out, size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || out == NULL || n == NULL)
		return store_no_tx("assignment list", why);
	return tx->be->assignment_list(tx->h, citizen_ref, provider, out, n, why);
}

int
store_user_insert(struct store_tx *tx, const struct store_user *u, struct why *why)
{
	if (tx == NULL || u == NULL)
		return store_no_tx("user insert", why);
	return tx->be->user_insert(tx->h, u, why);
}

int
store_user_get(struct store_tx *tx, const char *username, struct store_user *out,
    struct why *why)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (tx == NULL || username == NULL || out == NULL)
		return store_no_tx("user get", why);
	return tx->be->user_get(tx->h, username, out, why);
}

int
store_user_update(struct store_tx *tx, const struct store_user *u, struct why *why)
{
	if (tx == NULL || u == NULL)
		return store_no_tx("user update", why);
	return tx->be->user_update(tx->h, u, why);
}

int
store_user_list(struct store_tx *tx, struct store_user **out, size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || out == NULL || n == NULL)
		return store_no_tx("user list", why);
	return tx->be->user_list(tx->h, out, n, why);
}

int
store_audit_append(struct store_tx *tx, struct store_audit *e, struct why *why)
{
	if (tx == NULL || e == NULL)
		return store_no_tx("audit append", why);
	return tx->be->audit_append(tx->h, e, why);
}

int
store_audit_count(struct store_tx *tx, int64_t *n, struct why *why)
{
	if (n != NULL)
		*n = 0;
	if (tx == NULL || n == NULL)
		return store_no_tx("audit count", why);
	return tx->be->audit_count(tx->h, n, why);
}

int
store_audit_range(struct store_tx *tx, int64_t from, size_t limit,
    struct store_audit **out, size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || out == NULL || n == NULL)
		return store_no_tx("audit range", why);
	if (limit == 0 || limit > STORE_AUDIT_MAX)
		limit = STORE_AUDIT_MAX;
	return tx->be->audit_range(tx->h, from, limit, out, n, why);
}

int
store_audit_query(struct store_tx *tx, const char *citizen_ref, int64_t from_ms,
    int64_t to_ms, struct store_audit **out, size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || citizen_ref == NULL || out == NULL || n == NULL)
		return store_no_tx("audit query", why);
	return tx->be->audit_query(tx->h, citizen_ref, from_ms, to_ms, out, n, why);
}

int
store_checkpoint_insert(struct store_tx *tx, const struct store_checkpoint *c,
    struct why *why)
{
	if (tx == NULL || c == NULL)
		return store_no_tx("checkpoint insert", why);
	return tx->be->checkpoint_insert(tx->h, c, why);
}

int
store_checkpoint_list(struct store_tx *tx, struct store_checkpoint **out, size_t *n,
    struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || out == NULL || n == NULL)
		return store_no_tx("checkpoint list", why);
	return tx->be->checkpoint_list(tx->h, out, n, why);
}

int
store_purge_content(struct store_tx *tx, int64_t before_ms, int64_t now_ms, size_t limit,
    int64_t *n, int64_t *failed, int *more, struct why *why)
{
	if (n != NULL)
		*n = 0;
	if (failed != NULL)
		*failed = 0;
	if (more != NULL)
		*more = 0;
	if (tx == NULL || n == NULL || failed == NULL || more == NULL)
		return store_no_tx("content purge", why);
	return tx->be->purge_content(tx->h, before_ms, now_ms, limit, n, failed, more, why);
}

int
store_schedule_get(struct store_tx *tx, const char *id, const char *recipient,
    struct store_schedule *out, struct why *why)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (tx == NULL || id == NULL || recipient == NULL || out == NULL)
		return store_no_tx("schedule get", why);
	return tx->be->schedule_get(tx->h, id, recipient, out, why);
}

int
store_schedule_update(struct store_tx *tx, const struct store_schedule *s, struct why *why)
{
	if (tx == NULL || s == NULL)
		return store_no_tx("schedule update", why);
	if (memchr(s->state, '\0', sizeof(s->state)) == NULL || !store_state_valid(s->state))
		return store_bad_state(why);
	return tx->be->schedule_update(tx->h, s, why);
}

int
store_schedule_due(struct store_tx *tx, int64_t now_ms, size_t limit,
    struct store_schedule **out, size_t *n, struct why *why)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (tx == NULL || out == NULL || n == NULL)
		return store_no_tx("schedule due", why);
	if (limit == 0 || limit > STORE_SCHEDULE_MAX)
		limit = STORE_SCHEDULE_MAX;
	return tx->be->schedule_due(tx->h, now_ms, limit, out, n, why);
}

int
store_outcomes(struct store_tx *tx, int64_t from_ms, int64_t to_ms, store_outcome_fn fn,
    void *arg, struct why *why)
{
	if (tx == NULL || fn == NULL)
		return store_no_tx("outcomes", why);
	return tx->be->outcomes(tx->h, from_ms, to_ms, fn, arg, why);
}

int
store_external_insert(struct store_tx *tx, struct store_external *e, struct why *why)
{
	if (tx == NULL || e == NULL)
		return store_no_tx("external communication insert", why);
	return tx->be->external_insert(tx->h, e, why);
}

int
store_external_list(struct store_tx *tx, int64_t from_ms, int64_t to_ms,
    store_external_fn fn, void *arg, struct why *why)
{
	if (tx == NULL || fn == NULL)
		return store_no_tx("external communication list", why);
	return tx->be->external_list(tx->h, from_ms, to_ms, fn, arg, why);
}

int
store_queue_stats(struct store_tx *tx, int64_t *depth, int64_t *oldest_ms, struct why *why)
{
	if (depth != NULL)
		*depth = 0;
	if (oldest_ms != NULL)
		*oldest_ms = 0;
	if (tx == NULL || depth == NULL || oldest_ms == NULL)
		return store_no_tx("queue stats", why);
	return tx->be->queue_stats(tx->h, depth, oldest_ms, why);
}

/*
 * signed_der holds the signed content in clear (CPR, care details), so it
 * is wiped; sealed copies are wiped too, as they cost nothing to wipe.
 */
void
store_message_clear(struct store_message *m)
{
	if (m == NULL)
		return;
	buf_free(&m->signed_der, 1);
	memset(m, 0, sizeof(*m));
}

void
store_delivery_clear(struct store_delivery *d)
{
	if (d == NULL)
		return;
	buf_free(&d->sealed, 1);
	memset(d, 0, sizeof(*d));
}

void
store_receipt_clear(struct store_receipt *r)
{
	if (r == NULL)
		return;
	buf_free(&r->signed_der, 1);
	memset(r, 0, sizeof(*r));
}

void
store_delivery_list_free(struct store_delivery *d, size_t n)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < n; i++)
		store_delivery_clear(&d[i]);
	free(d);
}

/* Entries name citizens (by keyed hash): wiped like the other content. */
void
store_audit_list_free(struct store_audit *a, size_t n)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < n; i++)
		buf_free(&a[i].entry, 1);
	free(a);
}

/* --- MedCom de-duplication (migration 4, issue 7) --- */

int
store_medcom_insert(struct store_tx *tx, const struct store_medcom *m, struct why *why)
{
	if (tx == NULL || m == NULL)
		return store_no_tx("medcom insert", why);
	return tx->be->medcom_insert(tx->h, m, why);
}

int
store_medcom_get(struct store_tx *tx, enum store_medcom_key key, const char *sender,
    const char *value, struct store_medcom *out, struct why *why)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (tx == NULL || value == NULL || out == NULL)
		return store_no_tx("medcom get", why);
	return tx->be->medcom_get(tx->h, key, sender, value, out, why);
}

/* The acknowledgement carries no content, but is wiped like the rest. */
void
store_medcom_clear(struct store_medcom *m)
{
	if (m == NULL)
		return;
	buf_free(&m->ack, 1);
	memset(m, 0, sizeof(*m));
}
