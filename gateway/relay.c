#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <sodium.h>

#include "assign.h"
#include "audit.h"
#include "cpr.h"
#include "delivery.h"
#include "envelope.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "receipt.h"
#include "relay.h"
#include "signer.h"
#include "store.h"
#include "user.h"
#include "xmalloc.h"

struct relay {
	struct conf *conf;
	pthread_rwlock_t pki_lock;      /* guards pki and policy across SIGHUP reloads */
	struct pki *pki;
	struct policy *policy;
	struct audit_signer *audit;     /* hegnd only: signs checkpoints */
	struct party_table *parties;
	struct signer *signer;
	struct store *store;
	uint8_t citizen_key[crypto_generichash_KEYBYTES];
	struct message_limits limits;
};

#define GATEWAY_NAME "gateway"

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

/* The file behind a store location ("sqlite:PATH" or PATH). */
static const char *
store_path(const char *location)
{
	return strncmp(location, "sqlite:", 7) == 0 ? location + 7 : location;
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
	if ((rc = policy_load_dir(r->conf->policy_dir, &r->policy, why)) != 0)
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
	if ((flags & RELAY_KEYS) && (rc = audit_signer_load(r->conf->audit_key,
	    r->conf->audit_origin, &r->audit, why)) != 0)
		goto out;
	if ((flags & RELAY_EXISTING) && access(store_path(r->conf->store), F_OK) != 0) {
		rc = why_set(why, HEGN_ERR_CONFIG, "%s: no database there (%s)",
		    store_path(r->conf->store), strerror(errno));
		goto out;
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
	audit_signer_free(r->audit);
	policy_free(r->policy);
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

/* The current policy, safe against a concurrent reload. */
static struct policy *
policy_get(struct relay *r)
{
	struct policy *p;

	pthread_rwlock_rdlock(&r->pki_lock);
	p = policy_ref(r->policy);
	pthread_rwlock_unlock(&r->pki_lock);
	return p;
}

int
relay_reload(struct relay *r, struct why *why)
{
	struct pki *fresh = NULL, *old;
	struct policy *pfresh = NULL, *pold;
	int rc;

	if ((rc = load_pki(r->conf, &fresh, why)) != 0)
		goto fail;
	if ((rc = policy_load_dir(r->conf->policy_dir, &pfresh, why)) != 0)
		goto fail;
	pthread_rwlock_wrlock(&r->pki_lock);
	old = r->pki;
	r->pki = fresh;
	pold = r->policy;
	r->policy = pfresh;
	pthread_rwlock_unlock(&r->pki_lock);
	pki_free(old);
	policy_free(pold);
	if (r->store != NULL)
		relay_audit_gateway(r, "gateway.reload", "trust anchors, CRLs and policies reloaded",
		    NULL);
	return 0;
fail:
	pki_free(fresh);
	if (r->store != NULL)
		relay_audit_gateway(r, "gateway.reload", why != NULL ? why->text : "reload failed",
		    NULL);
	return rc;
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

/* One recipient's copy of a submission. */
struct copy {
	const struct party *to;
	struct policy_decision send;    /* why it may be sent */
	unsigned keep, removed;          /* classes kept and dropped for it */
	struct buf signed_der;           /* what is sealed: the original or a minimised copy */
	int own_signed;                  /* signed_der is ours to free (a minimised copy) */
	struct buf sealed;
	char sealed_sha[65];
};

/* A provider's assignment for the citizen, as the policy language sees it. */
static enum policy_assignment
policy_assignment_of(enum assign_state s)
{
	switch (s) {
	case ASSIGN_ACTIVE:
		return POLICY_ASSIGN_ACTIVE;
	case ASSIGN_ENDED:
		return POLICY_ASSIGN_ENDED;
	default:
		return POLICY_ASSIGN_NONE;
	}
}

static int
is_notice(enum message_kind k)
{
	return k == MSG_ADMISSION_NOTICE || k == MSG_DISCHARGE_NOTICE || k == MSG_LEAVE_NOTICE ||
	    k == MSG_DEATH_NOTICE;
}

/*
 * The send decision for sender -> to about the citizen, with the assignment
 * of whichever of the two is a provider and the recipient's approvals.
 */
static int
decide_send(struct relay *r, struct policy *pol, struct store_tx *tx, const struct party *sender,
    const struct party *to, const struct message *m, const char *cref, const char *services,
    struct policy_ctx *ctx, struct policy_decision *d, struct why *why)
{
	const struct party *provider = NULL;
	enum assign_state as = ASSIGN_NONE;
	int rc;

	(void)r;
	memset(ctx, 0, sizeof(*ctx));
	ctx->action = POLICY_SEND;
	ctx->actor_role = sender->role;
	ctx->user_role = POLICY_USER_NONE;
	ctx->peer_role = to->role;
	ctx->kind = message_kind(m);
	ctx->direction = policy_direction_to(to->role);
	ctx->approvals = to->conf->services;
	ctx->services = services;
	if (sender->role == ROLE_PROVIDER)
		provider = sender;
	else if (to->role == ROLE_PROVIDER)
		provider = to;
	if (provider != NULL &&
	    (rc = assign_state_of(tx, cref, provider->name, NULL, &as, NULL, why)) != 0)
		return rc;
	ctx->assignment = policy_assignment_of(as);
	policy_decide(pol, ctx, d);
	return 0;
}

/*
 * The fingerprint of the certificate the current request came with, for
 * its audit entries.  Each request runs start to end on one thread.
 */
static __thread char request_cert[65];

void
relay_request_cert(const char *fingerprint)
{
	snprintf(request_cert, sizeof(request_cert), "%s", fingerprint ? fingerprint : "");
}

static void
audit_fill(struct audit_event *e, const char *action, const char *actor, const char *id,
    const char *cref, const char *outcome, const char *rule, const char *detail)
{
	memset(e, 0, sizeof(*e));
	e->action = action;
	e->actor = actor;
	e->message_id = id;
	e->citizen_ref = cref;
	e->outcome = outcome;
	e->rule = rule;
	e->detail = detail;
	e->cert = request_cert;
}

/* Record a refusal in the audit log, in a transaction of its own. */
static void
audit_refusal(struct relay *r, const char *action, const char *actor, const char *id,
    const char *cref, const char *rule, const char *detail)
{
	struct store_tx *tx = NULL;
	struct audit_event e;
	struct why w = { 0 };

	audit_fill(&e, action, actor, id, cref, "deny", rule, detail);
	if (store_begin(r->store, 1, &tx, &w) != 0)
		goto fail;
	if (audit_append(tx, &e, util_now_ms(), &w) != 0) {
		store_rollback(tx);
		goto fail;
	}
	/* store_commit frees tx whether or not it succeeds. */
	if (store_commit(tx, &w) == 0)
		return;
fail:
	log_error("relay: cannot record a refusal in the audit log (%s)", w.text);
}

/* A bit set of classes as "basic,care". */
static void
class_list(unsigned mask, char out[32])
{
	int c;

	out[0] = '\0';
	for (c = 0; c < CLASS_COUNT; c++)
		if (mask & (1u << c)) {
			if (out[0] != '\0')
				strcat(out, ",");
			strcat(out, message_class_name((enum message_class)c));
		}
	if (out[0] == '\0')
		strcpy(out, "none");
}

/*
 * Sign a minimised copy: by the sender when hegn holds its key, else by the
 * gateway, naming the digest of the original's signed content.
 */
static int
sign_minimised(struct relay *r, const struct party *sender, const struct message *m,
    const char *id, const char *orig_sha, struct copy *cp, struct why *why)
{
	struct message *min = NULL;
	struct buf canon = { 0 };
	const char *signer = signer_has(r->signer, sender->name) ? sender->name : GATEWAY_NAME;
	int rc;

	if ((rc = message_minimise(m, cp->keep, &min, &cp->removed, why)) != 0)
		return rc;
	/* A field jansson could not add would be missing from what is signed. */
	if (message_set_id(min, id) != 0 || message_set_from(min, sender->name) != 0 ||
	    message_set_minimised(min, orig_sha, cp->removed,
	    strcmp(signer, GATEWAY_NAME) == 0 ? "gateway" : "sender") != 0)
		rc = why_set(why, HEGN_ERR_NOMEM, "out of memory for the minimised copy");
	else if ((rc = message_canonical(min, &canon, why)) == 0 &&
	    (rc = signer_sign(r->signer, signer, canon.data, canon.len, id, &cp->signed_der,
	    why)) == 0)
		cp->own_signed = 1;
	buf_free(&canon, 1);
	message_free(min);
	return rc;
}

/* What a message does to assignments, in the transaction that stores it. */
static int
apply_assignments(struct store_tx *tx, const struct message *m, const char *cref,
    const struct party *to, const char *services, const char *id, int64_t now, struct why *why)
{
	char date[11];
	const char *t;
	int rc;

	switch (message_kind(m)) {
	case MSG_REFERRAL:
		return assign_refer(tx, cref, to->name, services, message_field(m, "basic",
		    "start_date"), message_field(m, "basic", "end_date"), id, now, why);
	case MSG_CANCELLATION:
		rc = assign_end(tx, cref, to->name, *services ? services : NULL,
		    message_field(m, "basic", "end_date"), "cancellation", id, now, why);
		return rc == HEGN_ERR_NOT_FOUND ? 0 : rc;
	case MSG_DEATH_NOTICE:
		t = message_field(m, "basic", "time_of_death");
		snprintf(date, sizeof(date), "%.10s", t != NULL ? t : "");
		if (strlen(date) != 10)
			assign_today(date);
		rc = assign_end(tx, cref, NULL, NULL, date, "death notice", id, now, why);
		return rc == HEGN_ERR_NOT_FOUND ? 0 : rc;
	default:
		return 0;
	}
}

int
relay_submit(struct relay *r, const struct party *caller, const char *content_type,
    const uint8_t *body, size_t len, json_t **response, int *created, struct why *why)
{
	struct pki *pki = pki_get(r);
	struct policy *pol = policy_get(r);
	struct message *m = NULL;
	struct envelope_signed *sig = NULL;
	struct buf inner = { 0 }, canon = { 0 }, signed_der = { 0 };
	const struct party *sender = NULL, *to;
	struct store_tx *tx = NULL;
	struct store_message sm;
	struct store_delivery sd;
	struct store_event ev;
	struct audit_event ae;
	struct policy_ctx ctx;
	struct policy_decision dec;
	struct copy *copies = NULL;
	struct store_schedule sched;
	size_t ncopies = 0, i, nprov = 0;
	char (*providers)[65] = NULL;
	const uint8_t *content;
	size_t content_len;
	const char *cid = NULL;
	char id[65], csha[65], cref[65] = "", services[257], detail[256], classes[32], removed[32];
	char signer_fp[65];
	X509 *rcert = NULL;
	json_t *list;
	int64_t now;
	int rc, sealed_form, withheld = 0;

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
		pki_fingerprint(envelope_signed_signer(sig), signer_fp);
		relay_request_cert(signer_fp);
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
	citizen_ref(r, message_cpr(m), cref);
	message_services(m, services);

	if (sealed_form) {
		util_sha256_hex(content, content_len, csha);
		/* Keep the sender's own SignedData: the recipient verifies the sender. */
		signed_der = inner;
		memset(&inner, 0, sizeof(inner));
	} else {
		if (message_set_id(m, id) != 0 || message_set_from(m, sender->name) != 0) {
			rc = why_set(why, HEGN_ERR_NOMEM, "out of memory for the message");
			goto out;
		}
		if ((rc = message_canonical(m, &canon, why)) != 0)
			goto out;
		util_sha256_hex(canon.data, canon.len, csha);
	}

	/* A repeat is answered before any policy or crypto work. */
	rc = check_repeat(r, id, sender->name, csha, response, why);
	if (rc == 0 || rc != HEGN_ERR_NOT_FOUND)
		goto out;
	why_clear(why);

	/*
	 * Decide who gets a copy.  A hospital's notice to the municipality
	 * goes on to the providers serving the citizen; for a citizen who
	 * receives no services it is recorded and shown to nobody
	 * (Retssikkerhedsloven section 12c).
	 */
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	copies = xcalloc(1, sizeof(*copies));
	ncopies = 1;
	copies[0].to = to;
	if ((rc = decide_send(r, pol, tx, sender, to, m, cref, services, &ctx, &dec, why)) != 0)
		goto out;
	if (!dec.allow) {
		store_rollback(tx);
		tx = NULL;
		snprintf(detail, sizeof(detail), "%s to %s refused: %s", message_kind_name(
		    message_kind(m)), to->name, dec.reason);
		audit_refusal(r, "message.submit", sender->name, id, cref, dec.rule_id, detail);
		rc = why_set(why, HEGN_ERR_DENIED, "%s (rule %s)", dec.reason, dec.rule_id);
		goto out;
	}
	copies[0].send = dec;
	if (sender->role == ROLE_HOSPITAL && to->role == ROLE_VISITATION &&
	    is_notice(message_kind(m))) {
		if ((rc = assign_providers(tx, cref, NULL, &providers, &nprov, why)) != 0)
			goto out;
		if (nprov == 0) {
			withheld = 1;
			ncopies = 0;
		}
		copies = xrealloc(copies, (1 + nprov) * sizeof(*copies));
		for (i = 0; i < nprov; i++) {
			const struct party *p = party_find(r->parties, providers[i]);

			if (p == NULL || p == sender)
				continue;
			memset(&copies[ncopies], 0, sizeof(copies[ncopies]));
			if ((rc = decide_send(r, pol, tx, sender, p, m, cref, services, &ctx,
			    &copies[ncopies].send, why)) != 0)
				goto out;
			if (!copies[ncopies].send.allow)
				continue;
			copies[ncopies++].to = p;
		}
	}
	store_rollback(tx);
	tx = NULL;

	/* Minimise, sign and seal each copy: the crypto runs outside any transaction. */
	if (!sealed_form && (rc = signer_sign(r->signer, sender->name, canon.data, canon.len, id,
	    &signed_der, why)) != 0)
		goto out;
	for (i = 0; i < ncopies; i++) {
		struct copy *cp = &copies[i];

		memset(&ctx, 0, sizeof(ctx));
		ctx.actor_role = sender->role;
		ctx.peer_role = cp->to->role;
		ctx.kind = message_kind(m);
		ctx.direction = policy_direction_to(cp->to->role);
		ctx.approvals = cp->to->conf->services;
		ctx.services = services;
		cp->keep = policy_classes_for(pol, &ctx, NULL);
		if ((message_classes(m) & ~cp->keep) != 0) {
			if ((rc = sign_minimised(r, sender, m, id, csha, cp, why)) != 0) {
				if (i > 0)
					goto out;   /* a routed copy: the gateway's fault */
				snprintf(detail, sizeof(detail), "%s to %s refused: %s",
				    message_kind_name(message_kind(m)), cp->to->name, why->text);
				audit_refusal(r, "message.submit", sender->name, id, cref,
				    "minimisation", detail);
				goto out;
			}
		} else {
			cp->signed_der = signed_der;
		}
		if ((rc = party_encryption_cert(cp->to, pki, &rcert, why)) != 0) {
			/* The recipient's certificate is our configuration's problem. */
			why_prefix(why, rc, "to: %s cannot receive", cp->to->name);
			rc = HEGN_ERR_UNPROCESSABLE;
			if (why != NULL)
				why->code = rc;
			goto out;
		}
		if ((rc = envelope_seal(rcert, (enum envelope_cipher)cp->to->conf->cipher,
		    cp->signed_der.data, cp->signed_der.len, 1, &cp->sealed, why)) != 0)
			goto out;
		util_sha256_hex(cp->sealed.data, cp->sealed.len, cp->sealed_sha);
	}

	now = util_now_ms();
	snprintf(sm.id, sizeof(sm.id), "%s", id);
	snprintf(sm.sender, sizeof(sm.sender), "%s", sender->name);
	snprintf(sm.kind, sizeof(sm.kind), "%s", message_kind_name(message_kind(m)));
	snprintf(sm.content_sha256, sizeof(sm.content_sha256), "%s", csha);
	memcpy(sm.citizen_ref, cref, sizeof(sm.citizen_ref));
	sm.created_ms = now;
	sm.deadline_ms = (int64_t)message_deadline(m) * 1000;
	sm.signed_der = signed_der;

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
	if ((rc = store_event_add(tx, &ev, why)) != 0)
		goto out;
	snprintf(detail, sizeof(detail), "%s to %s", sm.kind, to->name);
	audit_fill(&ae, "message.submit", sender->name, id, cref, "allow", copies[0].send.rule_id,
	    detail);
	if (withheld) {
		audit_fill(&ae, "message.submit", sender->name, id, cref, "allow",
		    copies[0].send.rule_id,
		    "recorded, delivered to nobody: the citizen receives no services "
		    "(Retssikkerhedsloven section 12c)");
		event_fill(&ev, id, NULL, "withheld", GATEWAY_NAME,
		    "the citizen receives no services: delivered to nobody", now);
		if ((rc = store_event_add(tx, &ev, why)) != 0)
			goto out;
	}
	if ((rc = audit_append(tx, &ae, now, why)) != 0)
		goto out;
	for (i = 0; i < ncopies; i++) {
		struct copy *cp = &copies[i];

		memset(&sd, 0, sizeof(sd));
		snprintf(sd.message_id, sizeof(sd.message_id), "%s", id);
		snprintf(sd.recipient, sizeof(sd.recipient), "%s", cp->to->name);
		snprintf(sd.state, sizeof(sd.state), "%s", STORE_STATE_SUBMITTED);
		snprintf(sd.channel, sizeof(sd.channel), "pull");
		sd.updated_ms = now;
		memcpy(sd.sealed_sha256, cp->sealed_sha, sizeof(sd.sealed_sha256));
		sd.sealed = cp->sealed;
		if ((rc = store_delivery_insert(tx, &sd, why)) != 0)
			goto out;
		memset(&sched, 0, sizeof(sched));
		memcpy(sched.message_id, sd.message_id, sizeof(sched.message_id));
		memcpy(sched.recipient, sd.recipient, sizeof(sched.recipient));
		memcpy(sched.state, sd.state, sizeof(sched.state));
		delivery_initial(r->conf, cp->to, message_kind(m), sm.deadline_ms, now, &sched);
		snprintf(sd.channel, sizeof(sd.channel), "%s", sched.channel);
		if ((rc = store_schedule_update(tx, &sched, why)) != 0)
			goto out;
		class_list(cp->keep & message_classes(m), classes);
		class_list(cp->removed, removed);
		if (cp->removed != 0) {
			snprintf(detail, sizeof(detail), "removed %s; signed by %s", removed,
			    signer_has(r->signer, sender->name) ? "the sender" : "the gateway");
			event_fill(&ev, id, cp->to->name, "minimised", GATEWAY_NAME, detail, now);
			if ((rc = store_event_add(tx, &ev, why)) != 0)
				goto out;
		}
		snprintf(detail, sizeof(detail), "%s; classes %s",
		    cp->to->conf->cipher == ENVELOPE_AES256_CBC ? "EnvelopedData AES-256-CBC" :
		    "AuthEnvelopedData AES-256-GCM", classes);
		event_fill(&ev, id, cp->to->name, "sealed", GATEWAY_NAME, detail, now);
		if ((rc = store_event_add(tx, &ev, why)) != 0)
			goto out;
		snprintf(detail, sizeof(detail), "copy for %s: classes %s, removed %s", cp->to->name,
		    classes, removed);
		audit_fill(&ae, "message.seal", sender->name, id, cref, "allow", cp->send.rule_id,
		    detail);
		if ((rc = audit_append(tx, &ae, now, why)) != 0)
			goto out;
	}
	if ((rc = apply_assignments(tx, m, cref, to, services, id, now, why)) != 0)
		goto out;
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	log_info("relay: %s %s from %s accepted, %zu cop%s", sm.kind, id, sender->name, ncopies,
	    ncopies == 1 ? "y" : "ies");
	list = json_array();
	for (i = 0; i < ncopies; i++)
		json_array_append_new(list, json_string(copies[i].to->name));
	*response = json_pack("{s:s, s:s, s:o}", "id", id, "state", STORE_STATE_SUBMITTED,
	    "recipients", list);
	if (withheld)
		json_object_set_new(*response, "withheld", json_true());
	*created = 1;
	rc = 0;
out:
	store_rollback(tx);
	for (i = 0; i < ncopies; i++) {
		if (copies[i].own_signed)
			buf_free(&copies[i].signed_der, 1);
		buf_free(&copies[i].sealed, 0);
	}
	free(copies);
	free(providers);
	envelope_signed_free(sig);
	message_free(m);
	buf_free(&inner, 1);
	buf_free(&canon, 1);
	buf_free(&signed_der, 1);
	policy_free(pol);
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
	struct policy *pol = policy_get(r);
	struct store_tx *tx = NULL;
	struct store_message m;
	struct store_delivery d;
	struct store_event ev;
	struct store_schedule sched;
	struct audit_event ae;
	struct policy_ctx ctx;
	struct policy_decision dec;
	const struct party *sender;
	enum assign_state as = ASSIGN_NONE;
	enum message_kind kind;
	char detail[300];
	int64_t now = util_now_ms();
	int rc;

	memset(&d, 0, sizeof(d));
	memset(&m, 0, sizeof(m));
	sealed->data = NULL;
	sealed->len = 0;
	if (!util_valid_id(id)) {
		rc = not_found(why, "");
		goto out;
	}
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	rc = store_delivery_get(tx, id, caller->name, 1, &d, why);
	if (rc == HEGN_ERR_NOT_FOUND) {
		/* Asking for what is not yours is recorded; the answer is the same 404. */
		/* The citizen of an existing message, so the probe shows in their access log. */
		if (store_message_get(tx, id, 0, &m, NULL) != 0)
			m.citizen_ref[0] = '\0';
		store_rollback(tx);
		tx = NULL;
		audit_refusal(r, "message.fetch", caller->name, id, m.citizen_ref, "addressing",
		    m.citizen_ref[0] ? "not addressed to the party" : "no such message");
		rc = not_found(why, id);
		goto out;
	}
	if (rc != 0 || (rc = store_message_get(tx, id, 0, &m, why)) != 0)
		goto out;
	memset(&ctx, 0, sizeof(ctx));
	ctx.action = POLICY_FETCH;
	ctx.actor_role = caller->role;
	sender = party_find(r->parties, m.sender);
	ctx.peer_role = sender != NULL ? sender->role : ROLE_COUNT;
	if (message_kind_from_name(m.kind, &kind) == 0)
		ctx.kind = kind;
	ctx.direction = policy_direction_to(caller->role);
	if (caller->role == ROLE_PROVIDER &&
	    (rc = assign_state_of(tx, m.citizen_ref, caller->name, NULL, &as, NULL, why)) != 0)
		goto out;
	ctx.assignment = policy_assignment_of(as);
	policy_decide(pol, &ctx, &dec);
	if (!dec.allow || sender == NULL) {
		store_rollback(tx);
		tx = NULL;
		audit_refusal(r, "message.fetch", caller->name, id, m.citizen_ref, dec.rule_id,
		    dec.reason);
		rc = not_found(why, id);
		goto out;
	}
	if ((rc = store_schedule_get(tx, id, caller->name, &sched, why)) != 0)
		goto out;
	if (strcmp(d.state, STORE_STATE_SUBMITTED) == 0) {
		event_fill(&ev, id, caller->name, "fetched", caller->name, "pull", now);
		snprintf(sched.state, sizeof(sched.state), "%s", STORE_STATE_DELIVERED);
		if (sched.delivered_ms == 0)
			sched.delivered_ms = now;
		else
			sched.duplicates++;
		/* The scheduler looks again when a receipt is due (MedCom's resend). */
		sched.next_ms = now + (int64_t)r->conf->resend_after * 1000;
		if (sched.deadline_ms > 0 && sched.deadline_ms < sched.next_ms)
			sched.next_ms = sched.deadline_ms;
		if ((rc = store_schedule_update(tx, &sched, why)) != 0 ||
		    (rc = store_event_add(tx, &ev, why)) != 0)
			goto out;
	} else {
		/* The same copy again: counted, never shown as new. */
		sched.duplicates++;
		if ((rc = store_schedule_update(tx, &sched, why)) != 0)
			goto out;
	}
	snprintf(detail, sizeof(detail), "%s fetched by %s", m.kind, caller->name);
	audit_fill(&ae, "message.fetch", caller->name, id, m.citizen_ref, "allow", dec.rule_id,
	    detail);
	if ((rc = audit_append(tx, &ae, now, why)) != 0)
		goto out;
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
	store_message_clear(&m);
	policy_free(pol);
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
	struct store_schedule sched;
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
	visible = caller == NULL || caller->role == ROLE_AUDITOR ||
	    strcmp(caller->name, m.sender) == 0;
	for (i = 0; i < nd && !visible; i++)
		visible = strcmp(d[i].recipient, caller->name) == 0;
	if (!visible) {
		store_rollback(tx);
		tx = NULL;
		audit_refusal(r, "message.status", caller->name, id, m.citizen_ref, "addressing",
		    "not the sender or a recipient");
		rc = not_found(why, id);
		goto out;
	}
	if ((rc = store_event_list(tx, id, &ev, &ne, why)) != 0)
		goto out;
	dl = json_array();
	for (i = 0; i < nd; i++) {
		/* A recipient sees its own copy only, never who else got one. */
		if (caller != NULL && caller->role != ROLE_AUDITOR &&
		    strcmp(caller->name, m.sender) != 0 && strcmp(caller->name, d[i].recipient) != 0)
			continue;
		obj = json_pack("{s:s, s:s, s:s, s:s}", "recipient", d[i].recipient, "channel",
		    d[i].channel, "state", d[i].state, "sealed_sha256", d[i].sealed_sha256);
		if (store_schedule_get(tx, id, d[i].recipient, &sched, NULL) == 0) {
			json_object_set_new(obj, "resends", json_integer(sched.resends));
			json_object_set_new(obj, "duplicates", json_integer(sched.duplicates));
			if (sched.deadline_ms > 0) {
				util_time_ms_rfc3339(sched.deadline_ms, when);
				json_object_set_new(obj, "deadline", json_string(when));
			}
			if (sched.fallback_reason[0] != '\0')
				json_object_set_new(obj, "fallback_reason",
				    json_string(sched.fallback_reason));
		}
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
		if (caller != NULL && caller->role != ROLE_AUDITOR &&
		    strcmp(caller->name, m.sender) != 0 && ev[i].recipient[0] != '\0' &&
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
	struct store_message m;
	struct store_schedule sched;
	struct store_event ev;
	struct audit_event ae;
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
	memset(&m, 0, sizeof(m));
	if (id != NULL && !util_valid_id(id)) {
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
	if (id == NULL)
		id = rcpt.message_id;     /* a receipt a channel collected names its message */
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
	audit_fill(&ae, "message.receipt", signer->name, id, m.citizen_ref, "ok", "",
	    rcpt.accepted ? "accepted" : "rejected");
	if ((rc = store_message_get(tx, id, 0, &m, why)) != 0 ||
	    (rc = audit_append(tx, &ae, now, why)) != 0 ||
	    (rc = store_receipt_insert(tx, &sr, why)) != 0 ||
	    (rc = store_event_add(tx, &ev, why)) != 0 ||
	    (rc = store_schedule_get(tx, id, signer->name, &sched, why)) != 0)
		goto out;
	/* A copy that already went by fax keeps that outcome; the receipt is kept beside it. */
	if (strcmp(sched.state, STORE_STATE_FALLBACK) != 0 &&
	    strcmp(sched.state, STORE_STATE_FAILED) != 0)
		snprintf(sched.state, sizeof(sched.state), "%s",
		    rcpt.accepted ? STORE_STATE_ACKNOWLEDGED : STORE_STATE_REJECTED);
	sched.acked_ms = now;
	if (sched.delivered_ms == 0)
		sched.delivered_ms = now;
	sched.next_ms = 0;
	if ((rc = store_schedule_update(tx, &sched, why)) != 0)
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
	store_message_clear(&m);
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
	check_file(f, &errors, c->audit_key, 1);
	check_file(f, &errors, c->audit_pubkey, 0);
	{
		struct policy *pol = NULL;
		struct audit_signer *as = NULL;
		struct sockaddr_in6 sa6;

		why_clear(&w);
		if (policy_load_dir(c->policy_dir, &pol, &w) != 0)
			report(f, &errors, 1, w.text);
		policy_free(pol);
		why_clear(&w);
		if (audit_signer_load(c->audit_key, c->audit_origin, &as, &w) != 0)
			report(f, &errors, 1, w.text);
		audit_signer_free(as);
		if (inet_pton(AF_INET, c->listen, &sa6) != 1 && inet_pton(AF_INET6, c->listen, &sa6) != 1) {
			snprintf(line, sizeof(line), "listen: '%s' is not an IPv4 or IPv6 address",
			    c->listen);
			report(f, &errors, 1, line);
		}
	}
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
	if (strcmp(c->tls_cert, c->gateway_cert) != 0) {
		X509 *tls = NULL;

		why_clear(&w);
		if (pki_load_cert(c->tls_cert, &tls, &w) != 0 ||
		    pki_verify(pki, tls, pki_chain(pki), PKI_PURPOSE_TLS_SERVER, 0, &w) != 0) {
			snprintf(line, sizeof(line), "tls_cert %s: %s", c->tls_cert, w.text);
			report(f, &errors, 1, line);
		}
		X509_free(tls);
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

int
relay_audit_gateway(struct relay *r, const char *action, const char *detail, struct why *why)
{
	struct store_tx *tx = NULL;
	struct audit_event e;
	int rc;

	audit_fill(&e, action, GATEWAY_NAME, NULL, NULL, "ok", NULL, detail);
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = audit_append(tx, &e, util_now_ms(), why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	return store_commit(tx, why);
}

int
relay_tick(struct relay *r, int force, struct why *why)
{
	static int64_t last_checkpoint, last_retention;
	struct store_tx *tx = NULL;
	int64_t now = util_now_ms(), size = 0, purged = 0;
	int rc = 0;

	if (r->audit != NULL && (force || now - last_checkpoint >=
	    (int64_t)r->conf->checkpoint_interval * 1000)) {
		last_checkpoint = now;
		if ((rc = audit_checkpoint(r->audit, r->store, force, &size, why)) != 0)
			return rc;
	}
	/* Retention runs hourly: content older than the period is deleted. */
	if (r->conf->retention_days > 0 && now - last_retention >= 3600 * 1000) {
		struct audit_event e;
		char detail[96];

		last_retention = now;
		if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
			return rc;
		if ((rc = store_purge_content(tx, now - (int64_t)r->conf->retention_days * 86400000,
		    &purged, why)) != 0)
			goto out;
		if (purged > 0) {
			snprintf(detail, sizeof(detail), "content of %lld messages older than %d days "
			    "deleted", (long long)purged, r->conf->retention_days);
			audit_fill(&e, "retention.purge", GATEWAY_NAME, NULL, NULL, "ok", NULL, detail);
			if ((rc = audit_append(tx, &e, now, why)) != 0)
				goto out;
		}
		rc = store_commit(tx, why);
		tx = NULL;
	}
out:
	store_rollback(tx);
	return rc;
}

struct store *
relay_store(struct relay *r)
{
	return r->store;
}

int
relay_policy_check(struct relay *r, const char *as, const char *kind, const char *to,
    const char *cpr, FILE *out, struct why *why)
{
	struct policy *pol = policy_get(r);
	const struct party *sender, *recipient;
	struct policy_ctx ctx;
	struct policy_decision d, per[CLASS_COUNT];
	struct store_tx *tx = NULL;
	enum message_kind k;
	enum assign_state as_state = ASSIGN_NONE;
	const struct party *provider = NULL;
	char cref[65], norm[11], services[257] = "";
	unsigned keep;
	int rc, c;

	if ((sender = party_find(r->parties, as)) == NULL) {
		rc = why_set(why, HEGN_ERR_INVALID, "--as: no party called %s", as);
		goto out;
	}
	if ((recipient = party_find(r->parties, to)) == NULL) {
		rc = why_set(why, HEGN_ERR_INVALID, "--to: no party called %s", to);
		goto out;
	}
	if (message_kind_from_name(kind, &k) != 0) {
		rc = why_set(why, HEGN_ERR_INVALID, "--kind: no kind called %s", kind);
		goto out;
	}
	if (cpr_check(cpr, NULL, NULL, NULL, why) != 0 || cpr_normalize(cpr, norm) != 0) {
		rc = why_prefix(why, HEGN_ERR_INVALID, "--cpr");
		goto out;
	}
	citizen_ref(r, norm, cref);
	memset(&ctx, 0, sizeof(ctx));
	ctx.action = POLICY_SEND;
	ctx.actor_role = sender->role;
	ctx.peer_role = recipient->role;
	ctx.kind = k;
	ctx.direction = policy_direction_to(recipient->role);
	ctx.approvals = recipient->conf->services;
	provider = sender->role == ROLE_PROVIDER ? sender :
	    recipient->role == ROLE_PROVIDER ? recipient : NULL;
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	if (provider != NULL && (rc = assign_state_of(tx, cref, provider->name, NULL, &as_state,
	    services, why)) != 0)
		goto out;
	/* A referral names services; judge it by the recipient's approvals. */
	ctx.services = k == MSG_REFERRAL ? recipient->conf->services : services;
	ctx.assignment = policy_assignment_of(as_state);
	policy_decide(pol, &ctx, &d);
	fprintf(out, "%s %s -> %s: %s\n", sender->name, kind, recipient->name,
	    d.allow ? "allow" : "deny");
	fprintf(out, "rule:       %s\nreason:     %s\n", d.rule_id, d.reason);
	fprintf(out, "assignment: %s%s%s%s%s\n", provider ? provider->name : "(no provider)",
	    provider ? " " : "", provider ? assign_state_name(as_state) : "",
	    services[0] ? " for " : "", services);
	keep = policy_classes_for(pol, &ctx, per);
	fprintf(out, "%s would get:", recipient->name);
	for (c = 0; c < CLASS_COUNT; c++)
		fprintf(out, " %s=%s", message_class_name((enum message_class)c),
		    (keep & (1u << c)) ? "yes" : "no");
	fprintf(out, "\n");
	for (c = 0; c < CLASS_COUNT; c++)
		fprintf(out, "  %s: %s (%s)\n", message_class_name((enum message_class)c),
		    per[c].rule_id, per[c].reason);
	rc = d.allow ? 0 : HEGN_ERR_DENIED;
out:
	store_rollback(tx);
	policy_free(pol);
	return rc;
}

static int
cpr_ref(struct relay *r, const char *cpr, char cref[65], struct why *why)
{
	char norm[11];

	if (cpr_check(cpr, NULL, NULL, NULL, why) != 0 || cpr_normalize(cpr, norm) != 0)
		return why_prefix(why, HEGN_ERR_INVALID, "cpr");
	citizen_ref(r, norm, cref);
	sodium_memzero(norm, sizeof(norm));
	return 0;
}

/* Commit tx with one audit entry for an administrative change. */
static int
commit_audited(struct store_tx *tx, const char *action, const char *actor, const char *cref,
    const char *detail, struct why *why)
{
	struct audit_event e;
	int rc;

	audit_fill(&e, action, actor, NULL, cref, "ok", NULL, detail);
	if ((rc = audit_append(tx, &e, util_now_ms(), why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	return store_commit(tx, why);
}

static int
valid_services(const char *list, struct why *why)
{
	char copy[257], *tok, *save = NULL;
	size_t i;

	if (list == NULL || *list == '\0' || strlen(list) >= sizeof(copy))
		return why_set(why, HEGN_ERR_INVALID, "services: a comma-separated list of categories");
	snprintf(copy, sizeof(copy), "%s", list);
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; message_service_categories[i] != NULL; i++)
			if (strcmp(tok, message_service_categories[i]) == 0)
				break;
		if (message_service_categories[i] == NULL)
			return why_set(why, HEGN_ERR_INVALID, "services: unknown category '%s'", tok);
	}
	return 0;
}

int
relay_assign_add(struct relay *r, const char *actor, const char *cpr, const char *provider,
    const char *services, const char *from, const char *to, struct why *why)
{
	const struct party *p = party_find(r->parties, provider);
	struct store_tx *tx = NULL;
	char cref[65], source[97], detail[200];
	int y, mo, d, rc;

	if (p == NULL || p->role != ROLE_PROVIDER)
		return why_set(why, HEGN_ERR_INVALID, "provider: %s is not a provider", provider);
	if ((rc = valid_services(services, why)) != 0)
		return rc;
	if (!assign_services_cover(p->conf->services ? p->conf->services : "", services))
		return why_set(why, HEGN_ERR_DENIED, "services: %s is not approved for all of %s",
		    provider, services);
	if (util_parse_date(from, &y, &mo, &d) != 0 ||
	    (to != NULL && *to != '\0' && (util_parse_date(to, &y, &mo, &d) != 0 ||
	    strcmp(to, from) < 0)))
		return why_set(why, HEGN_ERR_INVALID, "from/to: dates YYYY-MM-DD, to not before from");
	if ((rc = cpr_ref(r, cpr, cref, why)) != 0)
		return rc;
	snprintf(source, sizeof(source), "manual:%s", actor);
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = assign_refer(tx, cref, provider, services, from, to, source, util_now_ms(),
	    why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	snprintf(detail, sizeof(detail), "%s assigned %s from %s to %s", provider, services, from,
	    to && *to ? to : "(open)");
	return commit_audited(tx, "assignment.add", actor, cref, detail, why);
}

int
relay_assign_end(struct relay *r, const char *actor, const char *cpr, const char *provider,
    const char *services, const char *date, const char *reason, struct why *why)
{
	struct store_tx *tx = NULL;
	char cref[65], source[97], detail[200];
	int y, mo, d, rc;

	if (util_parse_date(date, &y, &mo, &d) != 0)
		return why_set(why, HEGN_ERR_INVALID, "date: YYYY-MM-DD");
	if (services != NULL && (rc = valid_services(services, why)) != 0)
		return rc;
	if ((rc = cpr_ref(r, cpr, cref, why)) != 0)
		return rc;
	snprintf(source, sizeof(source), "manual:%s", actor);
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = assign_end(tx, cref, provider, services, date, reason ? reason : "ended by staff",
	    source, util_now_ms(), why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	snprintf(detail, sizeof(detail), "%s: %s ended on %s", provider ? provider : "all providers",
	    services ? services : "all services", date);
	return commit_audited(tx, "assignment.end", actor, cref, detail, why);
}

int
relay_assign_list(struct relay *r, const char *cpr, const char *provider, json_t **out,
    struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_assignment *a = NULL;
	size_t n = 0, i;
	char cref[65];
	json_t *list;
	int rc;

	*out = NULL;
	if (cpr != NULL && (rc = cpr_ref(r, cpr, cref, why)) != 0)
		return rc;
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_assignment_list(tx, cpr ? cref : NULL, provider, &a, &n, why)) != 0)
		goto out;
	list = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		    "id", (json_int_t)a[i].id, "citizen", a[i].citizen_ref, "provider",
		    a[i].provider, "services", a[i].services, "from", a[i].from_date, "to",
		    a[i].to_date, "source", a[i].source, "end_reason", a[i].end_reason));
	*out = json_pack("{s:o}", "assignments", list);
	rc = 0;
out:
	free(a);
	store_rollback(tx);
	return rc;
}

int
relay_user_add(struct relay *r, const char *actor, const char *username, const char *party,
    const char *role, const char *password, struct why *why)
{
	struct store_tx *tx = NULL;
	char detail[200];
	int rc;

	if (party_find(r->parties, party) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "party: no party called %s", party);
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = user_add(tx, username, party, role, password, util_now_ms(), why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	snprintf(detail, sizeof(detail), "user %s (%s at %s) added", username, role, party);
	return commit_audited(tx, "user.add", actor, NULL, detail, why);
}

int
relay_user_disable(struct relay *r, const char *actor, const char *username, int disabled,
    struct why *why)
{
	struct store_tx *tx = NULL;
	char detail[200];
	int rc;

	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = user_set_disabled(tx, username, disabled, util_now_ms(), why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	snprintf(detail, sizeof(detail), "user %s %s", username, disabled ? "disabled" : "enabled");
	return commit_audited(tx, disabled ? "user.disable" : "user.enable", actor, NULL, detail,
	    why);
}

int
relay_user_list(struct relay *r, json_t **out, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_user *u = NULL;
	size_t n = 0, i;
	json_t *list;
	int rc;

	*out = NULL;
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_user_list(tx, &u, &n, why)) != 0)
		goto out;
	list = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:b, s:b}", "username",
		    u[i].username, "party", u[i].party, "role", u[i].role, "disabled", u[i].disabled,
		    "locked", u[i].locked_until_ms > util_now_ms()));
	*out = json_pack("{s:o}", "users", list);
	rc = 0;
out:
	if (u != NULL)
		sodium_memzero(u, n * sizeof(*u));
	free(u);
	store_rollback(tx);
	return rc;
}

int
relay_audit_query(struct relay *r, const struct party *caller, const char *cpr, int64_t from_ms,
    int64_t to_ms, json_t **out, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_audit *a = NULL;
	size_t n = 0, i;
	char cref[65], when[40];
	json_t *list = NULL, *e;
	int rc;

	*out = NULL;
	if (caller != NULL && caller->role != ROLE_AUDITOR)
		return why_set(why, HEGN_ERR_DENIED, "only an auditor may read the audit log");
	if ((rc = cpr_ref(r, cpr, cref, why)) != 0)
		return rc;
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_audit_query(tx, cref, from_ms, to_ms, &a, &n, why)) != 0)
		goto out;
	list = json_array();
	for (i = 0; i < n; i++) {
		e = json_loadb((const char *)a[i].entry.data, a[i].entry.len, 0, NULL);
		if (e == NULL)
			continue;
		util_time_ms_rfc3339(a[i].at_ms, when);
		json_object_set_new(e, "time", json_string(when));
		json_object_del(e, "prev");
		json_array_append_new(list, e);
	}
	store_rollback(tx);
	tx = NULL;
	/* Reading the log about a citizen is itself recorded. */
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	if ((rc = commit_audited(tx, "audit.query", caller ? caller->name : "hegn", cref,
	    "access log read for one citizen", why)) != 0) {
		tx = NULL;
		goto out;
	}
	tx = NULL;
	*out = json_pack("{s:s, s:o}", "citizen", cref, "entries", list);
	list = NULL;
	rc = 0;
out:
	json_decref(list);
	store_audit_list_free(a, n);
	store_rollback(tx);
	return rc;
}

static int
relay_receipt_cb(void *arg, const struct party *from, const char *id, const uint8_t *der,
    size_t len, struct why *why)
{
	json_t *j = NULL;
	int rc;

	rc = relay_receipt(arg, from, id, der, len, &j, why);
	json_decref(j);
	return rc;
}

int
relay_deliver(struct relay *r, int64_t now_ms, int *acted, struct why *why)
{
	struct delivery_ctx ctx;
	struct pki *pki = pki_get(r);
	struct policy *pol = policy_get(r);
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.conf = r->conf;
	ctx.parties = r->parties;
	ctx.pki = pki;
	ctx.policy = pol;
	ctx.store = r->store;
	ctx.receipt = relay_receipt_cb;
	ctx.receipt_arg = r;
	rc = delivery_run(&ctx, now_ms, acted, why);
	policy_free(pol);
	pki_free(pki);
	return rc;
}

static int
valid_fallback_channel(const char *c)
{
	return c != NULL && (strcmp(c, "fax") == 0 || strcmp(c, "phone") == 0 ||
	    strcmp(c, "post") == 0);
}

int
relay_fallback(struct relay *r, const char *actor, const char *id, const char *recipient,
    const char *channel, const char *reason, json_t **out, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_delivery *d = NULL;
	struct store_schedule s;
	struct store_message m;
	struct store_event ev;
	struct audit_event ae;
	char detail[300];
	size_t n = 0, i, done = 0;
	int64_t now = util_now_ms();
	json_t *list;
	int rc;

	*out = NULL;
	memset(&m, 0, sizeof(m));
	if (!valid_fallback_channel(channel))
		return why_set(why, HEGN_ERR_INVALID, "channel: fax, phone or post");
	if (reason == NULL || *reason == '\0' || strlen(reason) > 256)
		return why_set(why, HEGN_ERR_INVALID, "reason: 1 to 256 characters saying why");
	if (id == NULL || !util_valid_id(id))
		return not_found(why, "");
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = store_message_get(tx, id, 0, &m, why)) != 0 ||
	    (rc = store_delivery_list(tx, id, &d, &n, why)) != 0) {
		if (rc == HEGN_ERR_NOT_FOUND)
			rc = not_found(why, id);
		goto out;
	}
	list = json_array();
	for (i = 0; i < n; i++) {
		if (recipient != NULL && strcmp(recipient, d[i].recipient) != 0)
			continue;
		if ((rc = store_schedule_get(tx, id, d[i].recipient, &s, why)) != 0) {
			json_decref(list);
			goto out;
		}
		if (strcmp(s.state, STORE_STATE_ACKNOWLEDGED) == 0)
			continue;
		snprintf(s.state, sizeof(s.state), "%s", STORE_STATE_FALLBACK);
		snprintf(s.channel, sizeof(s.channel), "%s", channel);
		snprintf(s.fallback_reason, sizeof(s.fallback_reason), "%s", reason);
		s.next_ms = 0;
		if (s.delivered_ms == 0)
			s.delivered_ms = now;
		snprintf(detail, sizeof(detail), "sent by %s by hand (%s): %s", channel, actor, reason);
		event_fill(&ev, id, d[i].recipient, "fallback", actor, detail, now);
		audit_fill(&ae, "delivery.fallback", actor, id, m.citizen_ref, "ok", NULL, detail);
		if ((rc = store_schedule_update(tx, &s, why)) != 0 ||
		    (rc = store_event_add(tx, &ev, why)) != 0 ||
		    (rc = audit_append(tx, &ae, now, why)) != 0) {
			json_decref(list);
			goto out;
		}
		json_array_append_new(list, json_string(d[i].recipient));
		done++;
	}
	if (done == 0) {
		json_decref(list);
		rc = why_set(why, HEGN_ERR_CONFLICT, recipient ?
		    "that copy is acknowledged already, or has no such recipient" :
		    "every copy is acknowledged already");
		goto out;
	}
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0) {
		json_decref(list);
		goto out;
	}
	*out = json_pack("{s:s, s:s, s:o}", "id", id, "state", STORE_STATE_FALLBACK, "recipients",
	    list);
	rc = 0;
out:
	store_delivery_list_free(d, n);
	store_message_clear(&m);
	store_rollback(tx);
	return rc;
}

int
relay_external(struct relay *r, const char *actor, const json_t *req, json_t **out,
    struct why *why)
{
	static const char *const allowed[] = { "channel", "party", "kind", "direction", "reason",
		"at", NULL };
	struct store_external e;
	struct store_tx *tx = NULL;
	struct audit_event ae;
	const char *channel, *party, *kind, *dir, *reason, *at, *key;
	enum message_kind k;
	char detail[300];
	time_t t = 0;
	json_t *v;
	size_t i;
	int rc;

	*out = NULL;
	if (!json_is_object(req))
		return why_set(why, HEGN_ERR_INVALID, "body: a JSON object");
	json_object_foreach((json_t *)req, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return why_set(why, HEGN_ERR_INVALID, "unknown field '%.40s'", key);
	}
	channel = json_string_value(json_object_get(req, "channel"));
	party = json_string_value(json_object_get(req, "party"));
	kind = json_string_value(json_object_get(req, "kind"));
	dir = json_string_value(json_object_get(req, "direction"));
	reason = json_string_value(json_object_get(req, "reason"));
	at = json_string_value(json_object_get(req, "at"));
	if (!valid_fallback_channel(channel))
		return why_set(why, HEGN_ERR_INVALID, "channel: fax, phone or post");
	if (party == NULL || party_find(r->parties, party) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "party: a registered party");
	if (kind == NULL)
		kind = "other";
	if (strcmp(kind, "other") != 0 && message_kind_from_name(kind, &k) != 0)
		return why_set(why, HEGN_ERR_INVALID, "kind: a message kind or \"other\"");
	if (dir == NULL)
		dir = "outbound";
	if (strcmp(dir, "outbound") != 0 && strcmp(dir, "inbound") != 0)
		return why_set(why, HEGN_ERR_INVALID, "direction: outbound or inbound");
	if (reason == NULL || *reason == '\0' || strlen(reason) > 256)
		return why_set(why, HEGN_ERR_INVALID, "reason: 1 to 256 characters saying why");
	if (at != NULL && util_parse_rfc3339(at, &t) != 0)
		return why_set(why, HEGN_ERR_INVALID, "at: an RFC 3339 time with a zone");
	memset(&e, 0, sizeof(e));
	e.at_ms = at != NULL ? (int64_t)t * 1000 : util_now_ms();
	snprintf(e.party, sizeof(e.party), "%s", party);
	snprintf(e.kind, sizeof(e.kind), "%s", kind);
	snprintf(e.channel, sizeof(e.channel), "%s", channel);
	snprintf(e.direction, sizeof(e.direction), "%s", dir);
	snprintf(e.reason, sizeof(e.reason), "%s", reason);
	snprintf(e.registered_by, sizeof(e.registered_by), "%s", actor);
	snprintf(detail, sizeof(detail), "%s %s %s with %s outside hegn: %s", kind, dir, channel,
	    party, reason);
	audit_fill(&ae, "fallback.register", actor, NULL, NULL, "ok", NULL, detail);
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = store_external_insert(tx, &e, why)) != 0 ||
	    (rc = audit_append(tx, &ae, util_now_ms(), why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	if ((rc = store_commit(tx, why)) != 0)
		return rc;
	*out = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)e.id, "channel", channel,
	    "party", party, "kind", kind);
	return 0;
}
