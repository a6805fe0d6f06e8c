#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "log.h"
#include "message.h"
#include "receipt.h"
#include "relay.h"
#include "signer.h"
#include "store.h"
#include "xmalloc.h"

struct relay {
	struct conf *conf;
	pthread_rwlock_t pki_lock;      /* guards the pki pointer across SIGHUP reloads */
	struct pki *pki;
	struct party_table *parties;
	struct signer *signer;
	struct store *store;
	uint8_t citizen_key[crypto_generichash_KEYBYTES];
	struct message_limits limits;
};

#define GATEWAY_NAME "gateway"

/*
 * Which kinds a role may send to which role.  Deny by default: a pair not
 * listed is refused.  The rights model (policies/) narrows this further.
 */
struct route {
	enum party_role from, to;
	unsigned kinds;         /* bit set of 1 << enum message_kind */
};

#define K(k) (1u << (k))
static const struct route routes[] = {
	{ ROLE_VISITATION, ROLE_PROVIDER,
	    K(MSG_REFERRAL) | K(MSG_CARE_UPDATE) | K(MSG_CANCELLATION) | K(MSG_ADMISSION_NOTICE) |
	    K(MSG_DISCHARGE_NOTICE) | K(MSG_LEAVE_NOTICE) | K(MSG_DEATH_NOTICE) },
	{ ROLE_PROVIDER, ROLE_VISITATION,
	    K(MSG_CHANGE_REQUEST) | K(MSG_OBSERVATION) | K(MSG_TIME_USAGE) },
	{ ROLE_HOSPITAL, ROLE_VISITATION,
	    K(MSG_ADMISSION_NOTICE) | K(MSG_DISCHARGE_NOTICE) | K(MSG_LEAVE_NOTICE) | K(MSG_DEATH_NOTICE) },
};

static int
route_allowed(enum party_role from, enum party_role to, enum message_kind kind)
{
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].from == from && routes[i].to == to && (routes[i].kinds & K(kind)))
			return 1;
	return 0;
}

static int
load_citizen_key(const char *path, uint8_t key[crypto_generichash_KEYBYTES], struct why *why)
{
	struct buf b = { 0 };
	size_t n = 0;
	int r;

	if ((r = conf_check_file(path, 1, why)) != 0)
		return r;
	if ((r = util_read_file(path, 4096, &b, why)) != 0)
		return HEGN_ERR_CONFIG;
	if (sodium_hex2bin(key, crypto_generichash_KEYBYTES, (const char *)b.data, b.len, " \r\n",
	    &n, NULL) != 0 || n != crypto_generichash_KEYBYTES)
		r = why_set(why, HEGN_ERR_CONFIG, "%s: citizen key must be %d hex-encoded bytes", path,
		    crypto_generichash_KEYBYTES);
	buf_free(&b, 1);
	return r;
}

static int
load_pki(const struct conf *c, struct pki **out, struct why *why)
{
	return pki_load(c->anchors, c->chain, c->crl, c->crl_check ? PKI_CRL_CHECK : 0, out, why);
}

int
relay_open(const char *conf_path, int flags, struct relay **out, struct why *why)
{
	struct relay *r;
	size_t i;
	int rc;

	*out = NULL;
	r = xcalloc(1, sizeof(*r));
	pthread_rwlock_init(&r->pki_lock, NULL);
	if ((rc = conf_load(conf_path, &r->conf, why)) != 0)
		goto out;
	r->limits.max_attachments = (size_t)r->conf->max_attachments;
	r->limits.max_attachment_bytes = (size_t)r->conf->max_attachment_bytes;
	if ((rc = load_pki(r->conf, &r->pki, why)) != 0)
		goto out;
	if ((rc = party_table_load(r->conf, &r->parties, why)) != 0)
		goto out;
	if ((rc = load_citizen_key(r->conf->citizen_key, r->citizen_key, why)) != 0)
		goto out;
	r->signer = signer_new();
	if (flags & RELAY_KEYS) {
		if ((rc = signer_load(r->signer, GATEWAY_NAME, r->conf->gateway_key,
		    r->conf->gateway_cert, pki_chain(r->pki), ENVELOPE_PSS, why)) != 0)
			goto out;
		for (i = 0; i < r->conf->nparties; i++) {
			const struct conf_party *cp = &r->conf->parties[i];

			if (cp->key == NULL)
				continue;
			if ((rc = signer_load(r->signer, cp->name, cp->key, cp->cert, pki_chain(r->pki),
			    (enum envelope_padding)cp->padding, why)) != 0) {
				why_prefix(why, rc, "party %s", cp->name);
				goto out;
			}
		}
	}
	if ((flags & RELAY_STORE) && (rc = store_open(r->conf->store, &r->store, why)) != 0)
		goto out;
	*out = r;
	r = NULL;
	rc = 0;
out:
	relay_close(r);
	return rc;
}

void
relay_close(struct relay *r)
{
	if (r == NULL)
		return;
	store_close(r->store);
	signer_free(r->signer);
	party_table_free(r->parties);
	pki_free(r->pki);
	pthread_rwlock_destroy(&r->pki_lock);
	conf_free(r->conf);
	sodium_memzero(r->citizen_key, sizeof(r->citizen_key));
	free(r);
}

const struct conf *
relay_conf(const struct relay *r)
{
	return r->conf;
}

const struct pki *
relay_pki(const struct relay *r)
{
	return r->pki;
}

const struct party_table *
relay_parties(const struct relay *r)
{
	return r->parties;
}

/* A reference to the current pki, safe against a concurrent reload. */
static struct pki *
pki_get(struct relay *r)
{
	struct pki *p;

	pthread_rwlock_rdlock(&r->pki_lock);
	p = pki_ref(r->pki);
	pthread_rwlock_unlock(&r->pki_lock);
	return p;
}

int
relay_reload_pki(struct relay *r, struct why *why)
{
	struct pki *fresh = NULL, *old;
	int rc;

	if ((rc = load_pki(r->conf, &fresh, why)) != 0)
		return rc;
	pthread_rwlock_wrlock(&r->pki_lock);
	old = r->pki;
	r->pki = fresh;
	pthread_rwlock_unlock(&r->pki_lock);
	pki_free(old);
	return 0;
}

int
relay_authenticate(struct relay *r, X509 *leaf, STACK_OF(X509) *chain,
    const struct party **party, struct why *why)
{
	struct pki *pki = pki_get(r);
	const struct party *p;
	char *subject = NULL;
	int rc;

	*party = NULL;
	if (leaf == NULL) {
		rc = why_set(why, HEGN_ERR_UNAUTH, "no client certificate presented");
		goto out;
	}
	if (pki_verify(pki, leaf, chain, PKI_PURPOSE_TLS_CLIENT, 0, why) != 0) {
		why_prefix(why, HEGN_ERR_UNAUTH, "client certificate refused");
		rc = HEGN_ERR_UNAUTH;
		if (why != NULL)
			why->code = rc;
		goto out;
	}
	if ((p = party_by_cert(r->parties, leaf)) == NULL) {
		subject = pki_subject(leaf);
		rc = why_set(why, HEGN_ERR_UNAUTH, "certificate %s is not registered for any party",
		    subject ? subject : "(unreadable subject)");
		goto out;
	}
	*party = p;
	rc = 0;
out:
	free(subject);
	pki_free(pki);
	return rc;
}

static void
citizen_ref(const struct relay *r, const char *cpr, char out[65])
{
	uint8_t h[32];

	crypto_generichash(h, sizeof(h), (const uint8_t *)cpr, strlen(cpr), r->citizen_key,
	    sizeof(r->citizen_key));
	util_hex(h, sizeof(h), out);
}

static void
event_fill(struct store_event *e, const char *id, const char *recipient, const char *event,
    const char *actor, const char *detail, int64_t at)
{
	memset(e, 0, sizeof(*e));
	e->at_ms = at;
	snprintf(e->message_id, sizeof(e->message_id), "%s", id);
	snprintf(e->recipient, sizeof(e->recipient), "%s", recipient ? recipient : "");
	snprintf(e->event, sizeof(e->event), "%s", event);
	snprintf(e->actor, sizeof(e->actor), "%s", actor);
	snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
}

static json_t *
submit_response(const char *id, const char *state, const char *recipient)
{
	return json_pack("{s:s, s:s, s:[s]}", "id", id, "state", state, "recipients", recipient);
}

/*
 * A repeat of an id: the same sender with identical content is the same
 * submission; anything else is a conflict.
 */
static int
check_repeat(struct relay *r, const char *id, const char *sender, const char *content_sha,
    json_t **response, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_message old;
	struct store_delivery *d = NULL;
	size_t n = 0;
	int rc;

	memset(&old, 0, sizeof(old));
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_message_get(tx, id, 0, &old, why)) != 0)
		goto out;
	if (strcmp(old.sender, sender) != 0 || strcmp(old.content_sha256, content_sha) != 0) {
		rc = why_set(why, HEGN_ERR_CONFLICT,
		    "id: message %s was already submitted with other content", id);
		goto out;
	}
	if ((rc = store_delivery_list(tx, id, &d, &n, why)) != 0)
		goto out;
	*response = submit_response(id, n > 0 ? d[0].state : STORE_STATE_SUBMITTED,
	    n > 0 ? d[0].recipient : "");
	rc = 0;
out:
	store_delivery_list_free(d, n);
	store_message_clear(&old);
	store_rollback(tx);
	return rc;
}

/*
 * Open a sealed submission: decrypt with the gateway's key, verify the
 * sender's signature and map the signer to a party.
 */
static int
open_sealed(struct relay *r, struct pki *pki, const uint8_t *body, size_t len,
    struct buf *inner, struct envelope_signed **signed_out, const struct party **sender,
    struct why *why)
{
	X509 *signer_cert;
	char *subject = NULL;
	int rc;

	*sender = NULL;
	*signed_out = NULL;
	if (!envelope_is_enveloped(body, len))
		return why_set(why, HEGN_ERR_INVALID,
		    "body: not a CMS EnvelopedData or AuthEnvelopedData (DER) object");
	if ((rc = signer_decrypt(r->signer, GATEWAY_NAME, body, len, inner, why)) != 0)
		return rc;
	if ((rc = envelope_verify(pki, inner->data, inner->len, 0, signed_out, why)) != 0)
		return why_prefix(why, rc, "sealed submission");
	signer_cert = envelope_signed_signer(*signed_out);
	if ((*sender = party_by_cert(r->parties, signer_cert)) == NULL) {
		subject = pki_subject(signer_cert);
		rc = why_set(why, HEGN_ERR_CERT,
		    "sealed submission: signer certificate %s is not registered for any party",
		    subject ? subject : "(unreadable subject)");
		free(subject);
		return rc;
	}
	return 0;
}

int
relay_submit(struct relay *r, const struct party *caller, const char *content_type,
    const uint8_t *body, size_t len, json_t **response, int *created, struct why *why)
{
	struct pki *pki = pki_get(r);
	struct message *m = NULL;
	struct envelope_signed *sig = NULL;
	struct buf inner = { 0 }, canon = { 0 }, signed_der = { 0 }, sealed = { 0 };
	const struct party *sender = NULL, *to;
	struct store_tx *tx = NULL;
	struct store_message sm;
	struct store_delivery sd;
	struct store_event ev;
	const uint8_t *content;
	size_t content_len;
	const char *cid = NULL;
	char id[65], csha[65], detail[128];
	X509 *rcert = NULL;
	int64_t now;
	int rc, sealed_form;

	*response = NULL;
	*created = 0;
	memset(&sm, 0, sizeof(sm));
	memset(&sd, 0, sizeof(sd));
	sealed_form = strcmp(content_type, "application/pkcs7-mime") == 0;
	if (!sealed_form && strcmp(content_type, "application/json") != 0) {
		rc = why_set(why, HEGN_ERR_UNSUPPORTED,
		    "Content-Type: %s is not application/json or application/pkcs7-mime", content_type);
		goto out;
	}
	if (sealed_form) {
		if ((rc = open_sealed(r, pki, body, len, &inner, &sig, &sender, why)) != 0)
			goto out;
		if (caller != NULL && caller != sender) {
			rc = why_set(why, HEGN_ERR_DENIED,
			    "sealed submission signed by %s but sent over a connection of %s",
			    sender->name, caller->name);
			goto out;
		}
		content = envelope_signed_content(sig, &content_len);
		cid = envelope_signed_content_id(sig);
	} else {
		if (caller == NULL) {
			rc = why_set(why, HEGN_ERR_UNAUTH,
			    "a JSON submission needs a TLS client certificate");
			goto out;
		}
		if (!signer_has(r->signer, caller->name)) {
			rc = why_set(why, HEGN_ERR_DENIED,
			    "hegn does not hold the key of %s: submit a sealed message "
			    "(application/pkcs7-mime) signed with your own key", caller->name);
			goto out;
		}
		sender = caller;
		content = body;
		content_len = len;
	}
	if ((rc = message_parse(content, content_len, &r->limits, &m, why)) != 0)
		goto out;
	if (message_from(m) != NULL && strcmp(message_from(m), sender->name) != 0) {
		rc = why_set(why, HEGN_ERR_INVALID, "from: names %s, but the sender is %s",
		    message_from(m), sender->name);
		goto out;
	}
	if (message_id(m) != NULL && cid != NULL && strcmp(message_id(m), cid) != 0) {
		rc = why_set(why, HEGN_ERR_INVALID,
		    "id: differs from the signature's contentIdentifier attribute");
		goto out;
	}
	if (message_id(m) != NULL)
		snprintf(id, sizeof(id), "%s", message_id(m));
	else if (cid != NULL && util_valid_id(cid))
		snprintf(id, sizeof(id), "%s", cid);
	else
		util_uuid(id);

	if ((to = party_find(r->parties, message_to(m))) == NULL) {
		rc = why_set(why, HEGN_ERR_INVALID, "to: no party called %s", message_to(m));
		goto out;
	}
	if (to == sender) {
		rc = why_set(why, HEGN_ERR_INVALID, "to: a party cannot send to itself");
		goto out;
	}
	if (!route_allowed(sender->role, to->role, message_kind(m))) {
		rc = why_set(why, HEGN_ERR_DENIED, "a %s may not send %s to a %s (%s)",
		    conf_role_name(sender->role), message_kind_name(message_kind(m)),
		    conf_role_name(to->role), to->name);
		goto out;
	}

	if (sealed_form) {
		util_sha256_hex(content, content_len, csha);
		/* Keep the sender's own SignedData: the recipient verifies the sender. */
		signed_der = inner;
		memset(&inner, 0, sizeof(inner));
	} else {
		message_set_id(m, id);
		message_set_from(m, sender->name);
		if ((rc = message_canonical(m, &canon, why)) != 0)
			goto out;
		util_sha256_hex(canon.data, canon.len, csha);
	}

	/* Cheap repeat check before the expensive signature. */
	rc = check_repeat(r, id, sender->name, csha, response, why);
	if (rc == 0)
		goto out;
	if (rc != HEGN_ERR_NOT_FOUND)
		goto out;
	why_clear(why);

	if (!sealed_form && (rc = signer_sign(r->signer, sender->name, canon.data, canon.len, id,
	    &signed_der, why)) != 0)
		goto out;
	if ((rc = party_encryption_cert(to, pki, &rcert, why)) != 0) {
		/* The recipient's certificate is our configuration's problem, not the sender's input. */
		why_prefix(why, rc, "to: %s cannot receive", to->name);
		rc = HEGN_ERR_UNPROCESSABLE;
		if (why != NULL)
			why->code = rc;
		goto out;
	}
	if ((rc = envelope_seal(rcert, (enum envelope_cipher)to->conf->cipher, signed_der.data,
	    signed_der.len, 1, &sealed, why)) != 0)
		goto out;

	now = util_now_ms();
	snprintf(sm.id, sizeof(sm.id), "%s", id);
	snprintf(sm.sender, sizeof(sm.sender), "%s", sender->name);
	snprintf(sm.kind, sizeof(sm.kind), "%s", message_kind_name(message_kind(m)));
	snprintf(sm.content_sha256, sizeof(sm.content_sha256), "%s", csha);
	citizen_ref(r, message_cpr(m), sm.citizen_ref);
	sm.created_ms = now;
	sm.deadline_ms = (int64_t)message_deadline(m) * 1000;
	sm.signed_der = signed_der;
	snprintf(sd.message_id, sizeof(sd.message_id), "%s", id);
	snprintf(sd.recipient, sizeof(sd.recipient), "%s", to->name);
	snprintf(sd.state, sizeof(sd.state), "%s", STORE_STATE_SUBMITTED);
	snprintf(sd.channel, sizeof(sd.channel), "%s", to->conf->delivery);
	sd.updated_ms = now;
	util_sha256_hex(sealed.data, sealed.len, sd.sealed_sha256);
	sd.sealed = sealed;

	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	if ((rc = store_message_insert(tx, &sm, why)) != 0) {
		store_rollback(tx);
		tx = NULL;
		/* Lost a race with an identical submission: answer as a repeat. */
		if (rc == HEGN_ERR_CONFLICT) {
			why_clear(why);
			rc = check_repeat(r, id, sender->name, csha, response, why);
		}
		goto out;
	}
	snprintf(detail, sizeof(detail), "%s by %s (%s)", sealed_form ? "sealed" : "json",
	    sender->name, sealed_form ? "sender's signature" : "signed by hegn for the sender");
	event_fill(&ev, id, NULL, "submitted", sender->name, detail, now);
	if ((rc = store_delivery_insert(tx, &sd, why)) != 0 ||
	    (rc = store_event_add(tx, &ev, why)) != 0)
		goto out;
	event_fill(&ev, id, to->name, "sealed", GATEWAY_NAME,
	    to->conf->cipher == ENVELOPE_AES256_CBC ? "EnvelopedData AES-256-CBC" :
	    "AuthEnvelopedData AES-256-GCM", now);
	if ((rc = store_event_add(tx, &ev, why)) != 0)
		goto out;
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	log_info("relay: %s %s from %s to %s accepted", sm.kind, id, sender->name, to->name);
	*response = submit_response(id, STORE_STATE_SUBMITTED, to->name);
	*created = 1;
	rc = 0;
out:
	store_rollback(tx);
	envelope_signed_free(sig);
	message_free(m);
	buf_free(&inner, 1);
	buf_free(&canon, 1);
	buf_free(&signed_der, 0);
	buf_free(&sealed, 0);
	pki_free(pki);
	return rc;
}

int
relay_inbox(struct relay *r, const struct party *caller, const char *after, const char *limit,
    json_t **out, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_inbox_item *items = NULL;
	size_t n = 0, i, lim = 100;
	int64_t cursor = 0;
	char *end, when[40], next[32];
	json_t *list = NULL;
	long long v;
	int rc;

	*out = NULL;
	if (after != NULL && *after != '\0') {
		errno = 0;
		v = strtoll(after, &end, 10);
		if (errno != 0 || *end != '\0' || v < 0)
			return why_set(why, HEGN_ERR_INVALID, "after: not a cursor from an earlier answer");
		cursor = v;
	}
	if (limit != NULL && *limit != '\0') {
		errno = 0;
		v = strtoll(limit, &end, 10);
		if (errno != 0 || *end != '\0' || v < 1 || v > 1000)
			return why_set(why, HEGN_ERR_INVALID, "limit: must be 1..1000");
		lim = (size_t)v;
	}
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_inbox(tx, caller->name, cursor, lim, &items, &n, why)) != 0)
		goto out;
	list = json_array();
	for (i = 0; i < n; i++) {
		util_time_ms_rfc3339(items[i].created_ms, when);
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "id", items[i].id,
		    "kind", items[i].kind, "from", items[i].from, "submitted", when));
		cursor = items[i].seq;
	}
	snprintf(next, sizeof(next), "%lld", (long long)cursor);
	*out = json_pack("{s:o, s:s}", "messages", list, "next", next);
	list = NULL;
	rc = 0;
out:
	json_decref(list);
	free(items);
	store_rollback(tx);
	return rc;
}

static int
not_found(struct why *why, const char *id)
{
	return why_set(why, HEGN_ERR_NOT_FOUND, "no message %s for you", id);
}

int
relay_fetch(struct relay *r, const struct party *caller, const char *id, struct buf *sealed,
    char sha[65], struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_delivery d;
	struct store_event ev;
	int64_t now = util_now_ms();
	int rc;

	memset(&d, 0, sizeof(d));
	sealed->data = NULL;
	sealed->len = 0;
	if (!util_valid_id(id))
		return not_found(why, "");
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	rc = store_delivery_get(tx, id, caller->name, 1, &d, why);
	if (rc == HEGN_ERR_NOT_FOUND) {
		rc = not_found(why, id);
		goto out;
	}
	if (rc != 0)
		goto out;
	if (strcmp(d.state, STORE_STATE_SUBMITTED) == 0) {
		event_fill(&ev, id, caller->name, "fetched", caller->name, "pull", now);
		if ((rc = store_delivery_set_state(tx, id, caller->name, STORE_STATE_DELIVERED, now,
		    why)) != 0 || (rc = store_event_add(tx, &ev, why)) != 0)
			goto out;
	}
	/* The fetch is recorded before the bytes leave. */
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	memcpy(sha, d.sealed_sha256, 65);
	*sealed = d.sealed;
	memset(&d.sealed, 0, sizeof(d.sealed));
	rc = 0;
out:
	store_rollback(tx);
	store_delivery_clear(&d);
	return rc;
}

/* Least advanced first: the message's state is that of its slowest copy. */
static int
state_rank(const char *s)
{
	static const char *order[] = { STORE_STATE_SUBMITTED, STORE_STATE_DELIVERED,
		STORE_STATE_FALLBACK, STORE_STATE_FAILED, STORE_STATE_REJECTED,
		STORE_STATE_ACKNOWLEDGED };
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (strcmp(s, order[i]) == 0)
			return (int)i;
	return 0;
}

int
relay_status(struct relay *r, const struct party *caller, const char *id, json_t **out,
    struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_message m;
	struct store_delivery *d = NULL;
	struct store_event *ev = NULL;
	struct store_receipt rc_;
	size_t nd = 0, ne = 0, i;
	json_t *dl = NULL, *el = NULL, *obj;
	const char *state = STORE_STATE_SUBMITTED;
	char when[40];
	int rc, visible, best = 99;

	*out = NULL;
	memset(&m, 0, sizeof(m));
	memset(&rc_, 0, sizeof(rc_));
	if (!util_valid_id(id))
		return not_found(why, "");
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_message_get(tx, id, 0, &m, why)) != 0 ||
	    (rc = store_delivery_list(tx, id, &d, &nd, why)) != 0) {
		if (rc == HEGN_ERR_NOT_FOUND)
			rc = not_found(why, id);
		goto out;
	}
	visible = caller == NULL || strcmp(caller->name, m.sender) == 0;
	for (i = 0; i < nd && !visible; i++)
		visible = strcmp(d[i].recipient, caller->name) == 0;
	if (!visible) {
		rc = not_found(why, id);
		goto out;
	}
	if ((rc = store_event_list(tx, id, &ev, &ne, why)) != 0)
		goto out;
	dl = json_array();
	for (i = 0; i < nd; i++) {
		/* A recipient sees its own copy only, never who else got one. */
		if (caller != NULL && strcmp(caller->name, m.sender) != 0 &&
		    strcmp(caller->name, d[i].recipient) != 0)
			continue;
		obj = json_pack("{s:s, s:s, s:s, s:s}", "recipient", d[i].recipient, "channel",
		    d[i].channel, "state", d[i].state, "sealed_sha256", d[i].sealed_sha256);
		if (state_rank(d[i].state) < best) {
			best = state_rank(d[i].state);
			state = d[i].state;
		}
		store_receipt_clear(&rc_);
		if (store_receipt_get(tx, id, d[i].recipient, &rc_, NULL) == 0) {
			util_time_ms_rfc3339(rc_.received_ms, when);
			json_object_set_new(obj, "receipt", json_pack("{s:s, s:s, s:s}", "status",
			    rc_.status, "reason", rc_.reason, "received", when));
		}
		json_array_append_new(dl, obj);
	}
	el = json_array();
	for (i = 0; i < ne; i++) {
		if (caller != NULL && strcmp(caller->name, m.sender) != 0 && ev[i].recipient[0] != '\0' &&
		    strcmp(caller->name, ev[i].recipient) != 0)
			continue;
		util_time_ms_rfc3339(ev[i].at_ms, when);
		json_array_append_new(el, json_pack("{s:s, s:s, s:s, s:s, s:s}", "at", when, "event",
		    ev[i].event, "party", ev[i].actor, "recipient", ev[i].recipient, "detail",
		    ev[i].detail));
	}
	util_time_ms_rfc3339(m.created_ms, when);
	*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", m.id, "kind", m.kind, "from",
	    m.sender, "state", state, "submitted", when, "deliveries", dl, "events", el);
	dl = el = NULL;
	if (m.deadline_ms != 0) {
		util_time_ms_rfc3339(m.deadline_ms, when);
		json_object_set_new(*out, "deadline", json_string(when));
	}
	rc = 0;
out:
	json_decref(dl);
	json_decref(el);
	free(ev);
	store_delivery_list_free(d, nd);
	store_receipt_clear(&rc_);
	store_message_clear(&m);
	store_rollback(tx);
	return rc;
}

int
relay_receipt(struct relay *r, const struct party *caller, const char *id, const uint8_t *body,
    size_t len, json_t **out, struct why *why)
{
	struct pki *pki = pki_get(r);
	struct envelope_signed *sig = NULL;
	struct store_tx *tx = NULL;
	struct store_delivery d;
	struct store_receipt sr, old;
	struct store_event ev;
	struct receipt rcpt;
	const struct party *signer;
	const uint8_t *content;
	size_t clen;
	char *subject = NULL, sha[65];
	int64_t now = util_now_ms();
	int rc;

	*out = NULL;
	memset(&d, 0, sizeof(d));
	memset(&sr, 0, sizeof(sr));
	memset(&old, 0, sizeof(old));
	if (!util_valid_id(id)) {
		rc = not_found(why, "");
		goto out;
	}
	if (!envelope_is_signed(body, len)) {
		rc = why_set(why, HEGN_ERR_INVALID, "body: not a CMS SignedData (DER) object");
		goto out;
	}
	if ((rc = envelope_verify(pki, body, len, 0, &sig, why)) != 0) {
		why_prefix(why, rc, "receipt");
		goto out;
	}
	if ((signer = party_by_cert(r->parties, envelope_signed_signer(sig))) == NULL) {
		subject = pki_subject(envelope_signed_signer(sig));
		rc = why_set(why, HEGN_ERR_CERT, "receipt: signer certificate %s is not registered",
		    subject ? subject : "(unreadable subject)");
		goto out;
	}
	if (caller != NULL && caller != signer) {
		rc = why_set(why, HEGN_ERR_DENIED, "receipt signed by %s but sent by %s", signer->name,
		    caller->name);
		goto out;
	}
	content = envelope_signed_content(sig, &clen);
	if ((rc = receipt_parse(content, clen, &rcpt, why)) != 0) {
		why_prefix(why, rc, "receipt");
		goto out;
	}
	if (strcmp(rcpt.message_id, id) != 0) {
		rc = why_set(why, HEGN_ERR_INVALID, "receipt.message_id: names another message than %s",
		    id);
		goto out;
	}
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	rc = store_delivery_get(tx, id, signer->name, 0, &d, why);
	if (rc == HEGN_ERR_NOT_FOUND) {
		rc = not_found(why, id);
		goto out;
	}
	if (rc != 0)
		goto out;
	if (sodium_memcmp(rcpt.sha256, d.sealed_sha256, 64) != 0) {
		rc = why_set(why, HEGN_ERR_INVALID,
		    "receipt.sha256: does not match the message as sealed for %s", signer->name);
		goto out;
	}
	util_sha256_hex(body, len, sha);
	if (store_receipt_get(tx, id, signer->name, &old, NULL) == 0) {
		/* The first receipt stands; an identical repeat gets the same answer. */
		char oldsha[65];

		util_sha256_hex(old.signed_der.data, old.signed_der.len, oldsha);
		if (strcmp(oldsha, sha) != 0) {
			rc = why_set(why, HEGN_ERR_CONFLICT,
			    "a different receipt for %s was already taken; the first receipt stands", id);
			goto out;
		}
		*out = json_pack("{s:s, s:s, s:s}", "id", id, "recipient", signer->name, "state",
		    d.state);
		rc = 0;
		goto out;
	}
	snprintf(sr.message_id, sizeof(sr.message_id), "%s", id);
	snprintf(sr.recipient, sizeof(sr.recipient), "%s", signer->name);
	snprintf(sr.status, sizeof(sr.status), "%s", rcpt.accepted ? "accepted" : "rejected");
	snprintf(sr.reason, sizeof(sr.reason), "%s", rcpt.reason);
	sr.received_ms = now;
	sr.signed_der.data = (uint8_t *)body;
	sr.signed_der.len = len;
	event_fill(&ev, id, signer->name, rcpt.accepted ? "acknowledged" : "rejected", signer->name,
	    rcpt.accepted ? "signed receipt: accepted" : "signed receipt: rejected", now);
	if ((rc = store_receipt_insert(tx, &sr, why)) != 0 ||
	    (rc = store_delivery_set_state(tx, id, signer->name,
	    rcpt.accepted ? STORE_STATE_ACKNOWLEDGED : STORE_STATE_REJECTED, now, why)) != 0 ||
	    (rc = store_event_add(tx, &ev, why)) != 0)
		goto out;
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	log_info("relay: receipt for %s from %s: %s", id, signer->name, sr.status);
	*out = json_pack("{s:s, s:s, s:s}", "id", id, "recipient", signer->name, "state",
	    rcpt.accepted ? STORE_STATE_ACKNOWLEDGED : STORE_STATE_REJECTED);
	rc = 0;
out:
	store_rollback(tx);
	store_delivery_clear(&d);
	store_receipt_clear(&old);
	envelope_signed_free(sig);
	free(subject);
	pki_free(pki);
	return rc;
}

/* One problem for hegnd -t: "error: ..." or "warning: ...". */
static void
report(FILE *f, int *errors, int is_error, const char *text)
{
	fprintf(f, "%s: %s\n", is_error ? "error" : "warning", text);
	if (is_error)
		(*errors)++;
}

static void
check_file(FILE *f, int *errors, const char *path, int secret)
{
	struct why w = { 0 };

	if (path != NULL && conf_check_file(path, secret, &w) != 0)
		report(f, errors, 1, w.text);
}

int
relay_check(const char *conf_path, FILE *f)
{
	struct conf *c = NULL;
	struct pki *pki = NULL;
	struct party_table *parties = NULL;
	struct signer *signer = NULL;
	struct why w = { 0 };
	uint8_t ckey[crypto_generichash_KEYBYTES];
	X509 *gw = NULL;
	char line[700];
	size_t i;
	int errors = 0, k;

	check_file(f, &errors, conf_path, 0);
	if (conf_load(conf_path, &c, &w) != 0) {
		report(f, &errors, 1, w.text);
		goto out;
	}
	check_file(f, &errors, c->tls_cert, 0);
	check_file(f, &errors, c->tls_key, 1);
	check_file(f, &errors, c->anchors, 0);
	check_file(f, &errors, c->chain, 0);
	check_file(f, &errors, c->crl, 0);
	check_file(f, &errors, c->gateway_cert, 0);
	check_file(f, &errors, c->gateway_key, 1);
	for (i = 0; i < c->nparties; i++) {
		check_file(f, &errors, c->parties[i].cert, 0);
		check_file(f, &errors, c->parties[i].key, 1);
	}
	why_clear(&w);
	if (load_citizen_key(c->citizen_key, ckey, &w) != 0)
		report(f, &errors, 1, w.text);
	sodium_memzero(ckey, sizeof(ckey));
	why_clear(&w);
	if (load_pki(c, &pki, &w) != 0) {
		report(f, &errors, 1, w.text);
		goto out;
	}
	why_clear(&w);
	if (pki_load_cert(c->gateway_cert, &gw, &w) != 0) {
		report(f, &errors, 1, w.text);
	} else {
		why_clear(&w);
		if (pki_verify(pki, gw, NULL, PKI_PURPOSE_TLS_SERVER, 0, &w) != 0 ||
		    pki_verify(pki, gw, NULL, PKI_PURPOSE_ENCRYPT, 0, &w) != 0) {
			snprintf(line, sizeof(line), "gateway certificate %s: %s", c->gateway_cert, w.text);
			report(f, &errors, 1, line);
		}
	}
	why_clear(&w);
	if (party_table_load(c, &parties, &w) != 0) {
		report(f, &errors, 1, w.text);
		goto out;
	}
	signer = signer_new();
	why_clear(&w);
	if (signer_load(signer, GATEWAY_NAME, c->gateway_key, c->gateway_cert, pki_chain(pki),
	    ENVELOPE_PSS, &w) != 0)
		report(f, &errors, 1, w.text);
	for (i = 0; i < party_count(parties); i++) {
		const struct party *p = party_at(parties, i);

		for (k = 0; k < sk_X509_num(p->certs); k++) {
			why_clear(&w);
			if (pki_verify(pki, sk_X509_value(p->certs, k), NULL, PKI_PURPOSE_SIGN, 0,
			    &w) == 0)
				continue;
			/*
			 * A party's expired or revoked certificate is its problem
			 * (its traffic is refused), unless hegn signs with it.
			 */
			snprintf(line, sizeof(line), "party %s (line %d): %s", p->name, p->conf->line,
			    w.text);
			report(f, &errors, p->conf->key != NULL, line);
		}
		if (p->conf->key != NULL) {
			why_clear(&w);
			if (signer_load(signer, p->name, p->conf->key, p->conf->cert, pki_chain(pki),
			    (enum envelope_padding)p->conf->padding, &w) != 0) {
				snprintf(line, sizeof(line), "party %s: %s", p->name, w.text);
				report(f, &errors, 1, line);
			}
		}
	}
out:
	X509_free(gw);
	signer_free(signer);
	party_table_free(parties);
	pki_free(pki);
	conf_free(c);
	return errors;
}
