#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <sodium.h>

#include "assign.h"
#include "audit.h"
#include "cpr.h"
#include "delivery.h"
#include "envelope.h"
#include "keyd.h"
#include "log.h"
#include "medcom.h"
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
	struct buf tls_cert_pem, tls_key_pem;  /* hegnd: push and mail present these */
	struct party_table *parties;
	struct signer *signer;
	struct keyd_client *keyd;       /* privilege separation: the key process */
	struct store *store;
	uint8_t citizen_key[crypto_generichash_KEYBYTES];
	struct message_limits limits;
	struct auth_cache *auth_cache;  /* see "Authentication cache" at the end */
	int sched_fd;                   /* RELAY_SCHEDULER: holds the scheduler lock; else -1 */
};

#define GATEWAY_NAME "gateway"

static void auth_cache_free(struct auth_cache *);
static int recipient_cert(struct relay *, struct pki *, const struct party *, X509 **,
    struct why *);

/* The staff user behind the current request (web page), "" when none, and its role. */
static __thread char request_user[65];
static __thread enum policy_user_role request_user_role;

void
relay_request_user_role(const char *role)
{
	enum policy_user_role u;

	request_user_role = role != NULL && policy_user_role_from_name(role, &u) == 0 ? u :
	    POLICY_USER_NONE;
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

/* The file behind a store location ("sqlite:PATH" or PATH). */
static const char *
store_path(const char *location)
{
	return strncmp(location, "sqlite:", 7) == 0 ? location + 7 : location;
}

void
relay_scheduler_lock_path(const char *store_location, char *out, size_t size)
{
	snprintf(out, size, "%s-scheduler", store_path(store_location));
}

/*
 * One delivery scheduler per store.  Two would each hand the same due copy
 * to its channel (a fax sent twice, a push twice), since a pass reads what
 * is due and records the hand-over only after it.  A second hegnd on the
 * same database would also break group commit's promise to its readers,
 * which cannot wait for another process's sync (docs/store.md).  flock,
 * not fcntl: SQLite's POSIX locks on the database are not disturbed, and
 * the lock goes with the process, however it ends.
 */
static int
scheduler_lock(struct relay *r, struct why *why)
{
	char path[4096];
	int fd;

	relay_scheduler_lock_path(r->conf->store, path, sizeof(path));
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600)) == -1)
		return why_set(why, HEGN_ERR_CONFIG, "the scheduler lock %s: %s", path,
		    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return why_set(why, HEGN_ERR_BUSY, "another process runs the delivery "
			    "scheduler of %s (a running hegnd, or hegn deliver): %s is locked",
			    store_path(r->conf->store), path);
		return why_set(why, HEGN_ERR_CONFIG, "the scheduler lock %s: %s", path,
		    strerror(e));
	}
	r->sched_fd = fd;
	return 0;
}

static int
keyd_checkpoint(void *arg, uint64_t size, const uint8_t root[32], char **note, struct why *why)
{
	return keyd_client_checkpoint(arg, size, root, note, why);
}

/* A key here, or (privilege-separated) only its certificate, the key being in the key process. */
static int
load_key(struct relay *r, const char *name, const char *key_path, const char *cert_path,
    enum envelope_padding padding, struct why *why)
{
	if (r->keyd != NULL)
		return signer_load_cert(r->signer, name, cert_path, pki_chain(r->pki), why);
	return signer_load(r->signer, name, key_path, cert_path, pki_chain(r->pki), padding, why);
}

static int
load_pki(const struct conf *c, struct pki **out, struct why *why)
{
	return pki_load(c->anchors, c->chain, c->crl, c->crl_check ? PKI_CRL_CHECK : 0, out, why);
}

int
relay_open(const char *conf_path, int flags, struct relay **out, struct why *why)
{
	return relay_open_keyd(conf_path, flags, NULL, 0, out, why);
}

int
relay_open_keyd(const char *conf_path, int flags, const int *keyd_fds, size_t nkeyd,
    struct relay **out, struct why *why)
{
	struct relay *r;
	size_t i;
	int rc;

	*out = NULL;
	r = xcalloc(1, sizeof(*r));
	r->sched_fd = -1;
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
	signer_set_workers(r->signer, r->conf->crypto_workers);  /* performance, issue 9 */
	if (nkeyd > 0) {
		r->keyd = keyd_client_new_pool(keyd_fds, nkeyd, KEYD_REQUEST_MAX);
		nkeyd = 0;
		signer_connect(r->signer, r->keyd);
	}
	if (flags & RELAY_KEYS) {
		if ((rc = load_key(r, GATEWAY_NAME, r->conf->gateway_key,
		    r->conf->gateway_cert, ENVELOPE_PSS, why)) != 0)
			goto out;
		for (i = 0; i < r->conf->nparties; i++) {
			const struct conf_party *cp = &r->conf->parties[i];

			if (cp->key == NULL)
				continue;
			if ((rc = load_key(r, cp->name, cp->key, cp->cert,
			    (enum envelope_padding)cp->padding, why)) != 0) {
				why_prefix(why, rc, "party %s", cp->name);
				goto out;
			}
		}
	}
	if ((flags & RELAY_KEYS) && r->keyd != NULL)
		r->audit = audit_signer_remote(r->conf->audit_origin, keyd_checkpoint, r->keyd);
	else if ((flags & RELAY_KEYS) && (rc = audit_signer_load(r->conf->audit_key,
	    r->conf->audit_origin, &r->audit, why)) != 0)
		goto out;
	if ((flags & RELAY_EXISTING) && access(store_path(r->conf->store), F_OK) != 0) {
		rc = why_set(why, HEGN_ERR_CONFIG, "%s: no database there (%s)",
		    store_path(r->conf->store), strerror(errno));
		goto out;
	}
	if ((flags & RELAY_SCHEDULER) && (rc = scheduler_lock(r, why)) != 0)
		goto out;
	if ((flags & RELAY_STORE) && (rc = store_open_flags(r->conf->store,
	    (flags & RELAY_BESIDE) ? STORE_NO_MIGRATE : 0, &r->store, why)) != 0)
		goto out;
	if ((flags & RELAY_STORE) && (flags & RELAY_BESIDE))
		store_sync_snapshots(r->store);
	/*
	 * The TLS identity push and mail present, read now: after the network
	 * process drops privileges it can no longer open the key file.  A tool
	 * that may not read it (not root) uses the files, as before.
	 */
	if (flags & RELAY_STORE) {
		if (util_read_file(r->conf->tls_cert, 1 << 20, &r->tls_cert_pem, NULL) != 0 ||
		    util_read_file(r->conf->tls_key, 1 << 20, &r->tls_key_pem, NULL) != 0) {
			buf_free(&r->tls_cert_pem, 0);
			buf_free(&r->tls_key_pem, 1);
		}
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	for (i = 0; i < nkeyd; i++)
		close(keyd_fds[i]);
	relay_close(r);
	return rc;
}

void
relay_close(struct relay *r)
{
	if (r == NULL)
		return;
	store_close(r->store);
	/* After the store: whoever takes the lock next finds the database closed. */
	if (r->sched_fd != -1)
		close(r->sched_fd);
	buf_free(&r->tls_cert_pem, 0);
	buf_free(&r->tls_key_pem, 1);
	audit_signer_free(r->audit);
	policy_free(r->policy);
	signer_free(r->signer);
	keyd_client_free(r->keyd);
	party_table_free(r->parties);
	pki_free(r->pki);
	auth_cache_free(r->auth_cache);
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
		relay_audit_gateway(r, "gateway.reload.failed", why != NULL ? why->text :
		    "reload failed", NULL);
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
 * submission; anything else is a conflict.  Read in *txp; a repeat ends it
 * with a commit (and *txp is NULL), a new id leaves it open for the caller.
 */
static int
repeat_in(struct store_tx **txp, const char *id, const char *sender, const char *content_sha,
    json_t **response, struct why *why)
{
	struct store_message old;
	struct store_delivery *d = NULL;
	size_t n = 0;
	int rc;

	memset(&old, 0, sizeof(old));
	if ((rc = store_message_get(*txp, id, 0, &old, why)) != 0)
		goto out;
	if (strcmp(old.sender, sender) != 0 || strcmp(old.content_sha256, content_sha) != 0) {
		rc = why_set(why, HEGN_ERR_CONFLICT,
		    "id: message %s was already submitted with other content", id);
		goto out;
	}
	if ((rc = store_delivery_list(*txp, id, &d, &n, why)) != 0)
		goto out;
	/*
	 * Ended by a commit, which says whether what was read is on disk (the
	 * first submission's sync may have failed); a rollback would not.
	 */
	rc = store_commit(*txp, why);
	*txp = NULL;
	if (rc != 0)
		goto out;
	*response = submit_response(id, n > 0 ? d[0].state : STORE_STATE_SUBMITTED,
	    n > 0 ? d[0].recipient : "");
out:
	store_delivery_list_free(d, n);
	store_message_clear(&old);
	return rc;
}

/* repeat_in in a read transaction of its own. */
static int
check_repeat(struct relay *r, const char *id, const char *sender, const char *content_sha,
    json_t **response, struct why *why)
{
	struct store_tx *tx = NULL;
	int rc;

	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	rc = repeat_in(&tx, id, sender, content_sha, response, why);
	store_rollback(tx);
	return rc;
}

/*
 * Open a sealed submission: decrypt with the gateway's key, verify the
 * sender's signature and map the signer to a party.  The body is let go
 * once decrypted when the caller lets it (release): the verification holds
 * the SignedData and its content apart, one whole copy fewer beside them.
 */
static int
open_sealed(struct relay *r, struct pki *pki, const uint8_t *body, size_t len,
    struct buf *release, struct buf *inner, struct envelope_signed **signed_out,
    const struct party **sender, struct why *why)
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
		return why_prefix(why, rc, "sealed submission");
	if (release != NULL)
		buf_free(release, 1);
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
	struct store_spilled spilled;    /* or, once spilled (seal_copy), where it waits */
	char sealed_sha[65];
	const char *form;                /* what the copy carries, for the delivery log; NULL: hegn's JSON */
};

/*
 * Sealed copies of at least this size, all but the last of a submission,
 * wait for the commit in a spill file instead of memory.
 */
#define RELAY_SPILL_MIN (1024 * 1024)

/* A submission's spill file, opened when its first copy goes there. */
struct spill {
	int fd;                          /* -1: none yet */
	uint64_t end;
};

static int
spill_write(struct relay *r, struct spill *sp, struct copy *cp, struct why *why)
{
	uint64_t done = 0;
	ssize_t n;
	int rc;

	if (sp->fd < 0 && (rc = store_spill_open(r->store, &sp->fd, why)) != 0)
		return rc;
	while (done < cp->sealed.len) {
		n = pwrite(sp->fd, cp->sealed.data + done, cp->sealed.len - done,
		    (off_t)(sp->end + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return why_set(why, HEGN_ERR_STORE, "spilling the sealed copy for %s: %s",
			    cp->to->name, n < 0 ? strerror(errno) : "nothing written");
		done += (uint64_t)n;
	}
	cp->spilled.fd = sp->fd;
	cp->spilled.off = sp->end;
	cp->spilled.len = done;
	sp->end += done;
	buf_free(&cp->sealed, 0);
	return 0;
}

/*
 * Seal cp->signed_der for its recipient (rcert).  A minimised signed copy is
 * not needed once sealed, and a large sealed copy that is not the last goes
 * to the spill file: a submission to many recipients holds one sealed copy
 * in memory, however many it makes.  The spill file is on the store's file
 * system and what goes there is sealed already (store_spill_open).
 */
static int
seal_copy(struct relay *r, X509 *rcert, struct copy *cp, int last, struct spill *sp,
    struct why *why)
{
	int rc;

	if ((rc = envelope_seal(rcert, (enum envelope_cipher)cp->to->conf->cipher,
	    cp->signed_der.data, cp->signed_der.len, 1, &cp->sealed, why)) != 0)
		return rc;
	util_sha256_hex(cp->sealed.data, cp->sealed.len, cp->sealed_sha);
	if (cp->own_signed)
		buf_free(&cp->signed_der, 1);
	if (!last && cp->sealed.len >= RELAY_SPILL_MIN)
		return spill_write(r, sp, cp, why);
	return 0;
}

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
	/* Staff at the web page act under their role; a party's own system under none. */
	ctx->user_role = request_user_role;
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
	e->user = request_user[0] != '\0' ? request_user : NULL;
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

/* MedCom messages (issue 7): the section at the end of this file. */
static int relay_submit_medcom(struct relay *r, const struct party *caller,
    const struct party *sealed_by, const uint8_t *content, size_t clen,
    const struct buf *sender_signed, json_t **response, int *created, struct why *why);
static int relay_receipt_medcom(struct relay *r, const struct party *signer, const char *id,
    const uint8_t *content, size_t clen, const uint8_t *body, size_t len, json_t **out,
    struct why *why);
/* A MedCom Acknowledgement for the sender of a MedCom message its recipient answered. */
struct medcom_answer;
static int medcom_answer_prepare(struct relay *r, const struct party *answerer, const char *id,
    int accepted, const char *reason, struct medcom_answer **out, struct why *why);
static int medcom_answer_store(struct relay *r, struct store_tx *tx,
    const struct medcom_answer *a, int64_t now, struct why *why);
static void medcom_answer_free(struct medcom_answer *a);
static int medcom_answer_build(struct relay *r, const struct party *answerer, const char *id,
    enum medcom_ack_code code, const char *reason, const struct medcom_msg *their,
    const struct buf *their_der, struct medcom_answer **out, struct why *why);
/* The fetch decision for an Acknowledgement hegn delivers: 1 when m is one (and *d is set). */
static int medcom_ack_fetch(const struct store_message *m, const struct party *caller,
    struct policy_decision *d);

/*
 * The audit entry of an accepted submission (detail: what went to whom), and
 * for a notice about a citizen who receives no services, withheld, the event
 * that it was recorded and delivered to nobody (Retssikkerhedsloven section
 * 12c), in tx.
 */
static int
audit_accepted(struct store_tx *tx, const char *id, const char *sender, const char *cref,
    const char *rule, const char *detail, int withheld, int64_t now, struct why *why)
{
	struct audit_event ae;
	struct store_event ev;
	int rc;

	audit_fill(&ae, "message.submit", sender, id, cref, "allow", rule, withheld ?
	    "recorded, delivered to nobody: the citizen receives no services "
	    "(Retssikkerhedsloven section 12c)" : detail);
	if (withheld) {
		event_fill(&ev, id, NULL, "withheld", GATEWAY_NAME,
		    "the citizen receives no services: delivered to nobody", now);
		if ((rc = store_event_add(tx, &ev, why)) != 0)
			return rc;
	}
	return audit_append(tx, &ae, now, why);
}

/*
 * A hospital's notice to the municipality goes on to every provider with an
 * active assignment for the citizen that the policy lets have it
 * (hospital-route); for a citizen who receives no services it is recorded and
 * shown to nobody, *withheld (Retssikkerhedsloven section 12c).  *copies holds
 * the primary's decision on entry and grows here.
 */
static int
route_notice(struct relay *r, struct policy *pol, struct store_tx *tx,
    const struct party *sender, const struct party *to, const struct message *m,
    const char *cref, const char *services, struct policy_ctx *ctx, struct copy **copies,
    size_t *ncopies, int *withheld, struct why *why)
{
	char (*providers)[65] = NULL;
	struct copy *c;
	size_t nprov = 0, i;
	int rc = 0;

	if (sender->role != ROLE_HOSPITAL || to->role != ROLE_VISITATION ||
	    !is_notice(message_kind(m)))
		goto out;
	if ((rc = assign_providers(tx, cref, NULL, &providers, &nprov, why)) != 0)
		goto out;
	if (nprov == 0) {
		*withheld = 1;
		*ncopies = 0;
	}
	*copies = c = xrealloc(*copies, (1 + nprov) * sizeof(**copies));
	for (i = 0; i < nprov; i++) {
		const struct party *p = party_find(r->parties, providers[i]);

		if (p == NULL || p == sender)
			continue;
		memset(&c[*ncopies], 0, sizeof(c[*ncopies]));
		if ((rc = decide_send(r, pol, tx, sender, p, m, cref, services, ctx,
		    &c[*ncopies].send, why)) != 0)
			goto out;
		if (!c[*ncopies].send.allow)
			continue;
		c[(*ncopies)++].to = p;
	}
out:
	free(providers);
	return rc;
}

/*
 * Store each copy of a submission with its schedule, and record in the
 * delivery log and the audit log what it carries: the classes kept, those
 * removed (and who signed the minimised copy), and the envelope.
 */
static int
store_copies(struct relay *r, struct store_tx *tx, const char *id, const char *sender,
    const char *cref, enum message_kind kind, unsigned present, int64_t deadline_ms,
    const struct copy *copies, size_t n, const char *minimised_by,
    int64_t now, struct why *why)
{
	struct store_delivery sd;
	struct store_schedule sched;
	struct store_event ev;
	struct audit_event ae;
	char detail[256], classes[32], removed[32];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		const struct copy *cp = &copies[i];

		memset(&sd, 0, sizeof(sd));
		snprintf(sd.message_id, sizeof(sd.message_id), "%s", id);
		snprintf(sd.recipient, sizeof(sd.recipient), "%s", cp->to->name);
		snprintf(sd.state, sizeof(sd.state), "%s", STORE_STATE_SUBMITTED);
		snprintf(sd.channel, sizeof(sd.channel), "pull");
		sd.updated_ms = now;
		memcpy(sd.sealed_sha256, cp->sealed_sha, sizeof(sd.sealed_sha256));
		sd.sealed = cp->sealed;
		sd.spilled = cp->spilled;
		if ((rc = store_delivery_insert(tx, &sd, why)) != 0)
			return rc;
		memset(&sched, 0, sizeof(sched));
		memcpy(sched.message_id, sd.message_id, sizeof(sched.message_id));
		memcpy(sched.recipient, sd.recipient, sizeof(sched.recipient));
		memcpy(sched.state, sd.state, sizeof(sched.state));
		delivery_initial(r->conf, cp->to, kind, deadline_ms, now, &sched);
		if ((rc = store_schedule_update(tx, &sched, why)) != 0)
			return rc;
		class_list(cp->keep & present, classes);
		class_list(cp->removed, removed);
		if (cp->removed != 0) {
			snprintf(detail, sizeof(detail), "removed %s%s%s", removed,
			    minimised_by ? "; signed by " : "", minimised_by ? minimised_by : "");
			event_fill(&ev, id, cp->to->name, "minimised", GATEWAY_NAME, detail, now);
			if ((rc = store_event_add(tx, &ev, why)) != 0)
				return rc;
		}
		snprintf(detail, sizeof(detail), "%s%s%s; classes %s", cp->form ? cp->form : "",
		    cp->form ? "; " : "", cp->to->conf->cipher == ENVELOPE_AES256_CBC ?
		    "EnvelopedData AES-256-CBC" : "AuthEnvelopedData AES-256-GCM", classes);
		event_fill(&ev, id, cp->to->name, "sealed", GATEWAY_NAME, detail, now);
		if ((rc = store_event_add(tx, &ev, why)) != 0)
			return rc;
		snprintf(detail, sizeof(detail), "copy for %s: classes %s, removed %s", cp->to->name,
		    classes, removed);
		audit_fill(&ae, "message.seal", sender, id, cref, "allow", cp->send.rule_id, detail);
		if ((rc = audit_append(tx, &ae, now, why)) != 0)
			return rc;
	}
	return 0;
}

static int submit(struct relay *r, const struct party *caller, const char *content_type,
    const uint8_t *body, size_t len, struct buf *release, json_t **response, int *created,
    struct why *why);

int
relay_submit(struct relay *r, const struct party *caller, const char *content_type,
    const uint8_t *body, size_t len, json_t **response, int *created, struct why *why)
{
	return submit(r, caller, content_type, body, len, NULL, response, created, why);
}

int
relay_submit_buf(struct relay *r, const struct party *caller, const char *content_type,
    struct buf *body, json_t **response, int *created, struct why *why)
{
	return submit(r, caller, content_type, body->data, body->len, body, response, created,
	    why);
}

/* body and len, in release when the caller lets it go early (relay_submit_buf). */
static int
submit(struct relay *r, const struct party *caller, const char *content_type,
    const uint8_t *body, size_t len, struct buf *release, json_t **response, int *created,
    struct why *why)
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
	struct policy_ctx ctx;
	struct policy_decision dec;
	struct copy *copies = NULL;
	size_t ncopies = 0, i;
	const uint8_t *content;
	size_t content_len;
	const char *cid = NULL;
	char id[65], csha[65], cref[65] = "", services[257], detail[256];
	char signer_fp[65];
	X509 *rcert = NULL;
	json_t *list, *answer = NULL;
	struct spill spill = { .fd = -1 };
	int64_t now;
	int rc, sealed_form, withheld = 0, whole;

	*response = NULL;
	*created = 0;
	memset(&sm, 0, sizeof(sm));
	memset(&sd, 0, sizeof(sd));
	if (strcmp(content_type, "application/fhir+json") == 0) {
		rc = relay_submit_medcom(r, caller, NULL, body, len, NULL, response, created, why);
		goto out;
	}
	sealed_form = strcmp(content_type, "application/pkcs7-mime") == 0;
	if (!sealed_form && strcmp(content_type, "application/json") != 0) {
		rc = why_set(why, HEGN_ERR_UNSUPPORTED,
		    "Content-Type: %s is not application/json or application/pkcs7-mime", content_type);
		goto out;
	}
	if (sealed_form) {
		rc = open_sealed(r, pki, body, len, release, &inner, &sig, &sender, why);
		if (release != NULL)
			body = NULL;
		if (rc != 0)
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
		if (medcom_is_fhir(content, content_len)) {
			rc = relay_submit_medcom(r, caller, sender, content, content_len, &inner,
			    response, created, why);
			goto out;
		}
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
	/*
	 * The message is in m now (or, sealed, in inner): the body goes, one
	 * whole copy fewer through the signing and sealing.
	 */
	if (release != NULL) {
		buf_free(release, 1);
		body = NULL;
		if (!sealed_form)
			content = NULL;
	}
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
		/*
		 * Time-ordered: the indexes keyed by message id then grow at
		 * their right edge instead of touching a random page each
		 * (docs/performance.md, item 18).
		 */
		util_uuid7(util_now_ms(), id);
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
		/* It holds the content too, and m has what was read from it. */
		envelope_signed_free(sig);
		sig = NULL;
		content = NULL;
		cid = NULL;
	} else {
		if (message_set_id(m, id) != 0 || message_set_from(m, sender->name) != 0) {
			rc = why_set(why, HEGN_ERR_NOMEM, "out of memory for the message");
			goto out;
		}
		if ((rc = message_canonical(m, &canon, why)) != 0)
			goto out;
		util_sha256_hex(canon.data, canon.len, csha);
	}

	/*
	 * A repeat is answered before any policy or crypto work.  The check
	 * and the decision below share one read transaction: ending a read
	 * waits until what it may have seen is on disk, once is enough
	 * (docs/performance.md, item 10).
	 */
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	rc = repeat_in(&tx, id, sender->name, csha, response, why);
	if (rc == 0 || rc != HEGN_ERR_NOT_FOUND)
		goto out;
	why_clear(why);

	/*
	 * Decide who gets a copy.  A hospital's notice to the municipality
	 * goes on to the providers serving the citizen; for a citizen who
	 * receives no services it is recorded and shown to nobody
	 * (Retssikkerhedsloven section 12c).
	 */
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
	if ((rc = route_notice(r, pol, tx, sender, to, m, cref, services, &ctx, &copies,
	    &ncopies, &withheld, why)) != 0)
		goto out;
	store_rollback(tx);
	tx = NULL;

	/*
	 * What each copy may carry.  A minimised copy is made from m; when
	 * every copy carries the whole message, m's attachments are not needed
	 * again, and go before the signing and sealing: one whole copy fewer.
	 */
	whole = 1;
	for (i = 0; i < ncopies; i++) {
		memset(&ctx, 0, sizeof(ctx));
		ctx.actor_role = sender->role;
		ctx.peer_role = copies[i].to->role;
		ctx.kind = message_kind(m);
		ctx.direction = policy_direction_to(copies[i].to->role);
		ctx.approvals = copies[i].to->conf->services;
		ctx.services = services;
		copies[i].keep = policy_classes_for(pol, &ctx, NULL);
		if ((message_classes(m) & ~copies[i].keep) != 0)
			whole = 0;
	}
	if (whole)
		message_drop_attachment_data(m);

	/* Minimise, sign and seal each copy: the crypto runs outside any transaction. */
	if (!sealed_form && (rc = signer_sign(r->signer, sender->name, canon.data, canon.len, id,
	    &signed_der, why)) != 0)
		goto out;
	/* The signed copy holds the content now: one whole copy fewer while the rest is done. */
	buf_free(&canon, 1);
	for (i = 0; i < ncopies; i++) {
		struct copy *cp = &copies[i];

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
		if ((rc = recipient_cert(r, pki, cp->to, &rcert, why)) != 0) {
			/* The recipient's certificate is our configuration's problem. */
			why_prefix(why, rc, "to: %s cannot receive", cp->to->name);
			rc = HEGN_ERR_UNPROCESSABLE;
			if (why != NULL)
				why->code = rc;
			goto out;
		}
		if ((rc = seal_copy(r, rcert, cp, i + 1 == ncopies, &spill, why)) != 0)
			goto out;
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
	if ((rc = audit_accepted(tx, id, sender->name, cref, copies[0].send.rule_id, detail,
	    withheld, now, why)) != 0)
		goto out;
	if ((rc = store_copies(r, tx, id, sender->name, cref, message_kind(m), message_classes(m),
	    sm.deadline_ms, copies, ncopies, signer_has(r->signer, sender->name) ?
	    "the sender" : "the gateway", now, why)) != 0)
		goto out;
	if ((rc = apply_assignments(tx, m, cref, to, services, id, now, why)) != 0)
		goto out;
	/*
	 * The answer is made before the commit: once committed, the sender
	 * must hear so, and running out of memory then would leave it with
	 * neither an answer nor an error.
	 */
	if ((list = json_array()) == NULL) {
		rc = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ncopies; i++)
		if (json_array_append_new(list, json_string(copies[i].to->name)) != 0) {
			json_decref(list);
			rc = why_set(why, HEGN_ERR_NOMEM, "out of memory");
			goto out;
		}
	if ((answer = json_pack("{s:s, s:s, s:o}", "id", id, "state", STORE_STATE_SUBMITTED,
	    "recipients", list)) == NULL || (withheld &&
	    json_object_set_new(answer, "withheld", json_true()) != 0)) {
		rc = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	log_info("relay: %s %s from %s accepted, %zu cop%s", sm.kind, id, sender->name, ncopies,
	    ncopies == 1 ? "y" : "ies");
	*response = answer;
	answer = NULL;
	*created = 1;
	rc = 0;
out:
	json_decref(answer);
	store_rollback(tx);
	for (i = 0; i < ncopies; i++) {
		if (copies[i].own_signed)
			buf_free(&copies[i].signed_der, 1);
		buf_free(&copies[i].sealed, 0);
	}
	free(copies);
	if (spill.fd >= 0)
		close(spill.fd);
	envelope_signed_free(sig);
	message_free(m);
	buf_free(&inner, 1);
	buf_free(&canon, 1);
	buf_free(&signed_der, 1);
	policy_free(pol);
	pki_free(pki);
	return rc;
}

/*
 * End the read *tx that *out was made from: the answer stands only once all
 * the read may have seen is on disk (docs/store.md, "Readers"), which
 * store_rollback could not report.  On failure *out is dropped.
 */
static int
end_answer(struct store_tx **tx, json_t **out, struct why *why)
{
	int rc = store_end_read(tx, 0, why);

	if (rc != 0) {
		json_decref(*out);
		*out = NULL;
	}
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
	if (*out == NULL) {
		rc = why_set(why, HEGN_ERR_NOMEM, "out of memory for the inbox");
		goto out;
	}
	rc = end_answer(&tx, out, why);
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

/* A fetched copy and the piece of it in memory (relay_sealed_read). */
struct relay_sealed {
	struct relay *r;
	char id[65];
	char recipient[65];
	char sha[65];
	uint64_t size;
	uint8_t *piece;             /* piece_cap bytes: the copy, or RELAY_SEALED_PIECE of it */
	size_t piece_cap;
	uint64_t piece_at;
	size_t piece_len;
};

int
relay_fetch(struct relay *r, const struct party *caller, const char *id,
    struct relay_sealed **out, struct why *why)
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
	struct relay_sealed *sealed = NULL;
	enum assign_state as = ASSIGN_NONE;
	enum message_kind kind;
	char detail[300];
	int64_t now = util_now_ms();
	int rc;

	*out = NULL;
	memset(&d, 0, sizeof(d));
	memset(&m, 0, sizeof(m));
	if (!util_valid_id(id)) {
		rc = not_found(why, "");
		goto out;
	}
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	rc = store_delivery_get(tx, id, caller->name, 0, &d, why);
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
	if (!medcom_ack_fetch(&m, caller, &dec))
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
		/* An Acknowledgement waits for no receipt: delivered is done (docs/medcom.md). */
		if (strcmp(m.kind, MEDCOM_ACK_KIND) == 0) {
			snprintf(sched.state, sizeof(sched.state), "%s", STORE_STATE_ACKNOWLEDGED);
			sched.next_ms = 0;
		}
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
	/* The first piece, with the copy's length, in the transaction that records the fetch. */
	sealed = xcalloc(1, sizeof(*sealed));
	sealed->r = r;
	snprintf(sealed->id, sizeof(sealed->id), "%s", id);
	snprintf(sealed->recipient, sizeof(sealed->recipient), "%s", caller->name);
	memcpy(sealed->sha, d.sealed_sha256, sizeof(sealed->sha));
	/* Asking for no bytes gives the size, so a small copy gets a buffer of its own size. */
	if ((rc = store_sealed_read(tx, id, caller->name, sealed->sha, 0, NULL, 0,
	    &sealed->piece_len, &sealed->size, why)) == 0) {
		sealed->piece_cap = sealed->size < RELAY_SEALED_PIECE ? (size_t)sealed->size :
		    RELAY_SEALED_PIECE;
		sealed->piece = xmalloc(sealed->piece_cap > 0 ? sealed->piece_cap : 1);
		rc = store_sealed_read(tx, id, caller->name, sealed->sha, 0, sealed->piece,
		    sealed->piece_cap, &sealed->piece_len, &sealed->size, why);
	}
	if (rc != 0) {
		/*
		 * Only retention deletes a sealed copy: the party asked too late,
		 * which is not the gateway's fault (404, not 500), and nothing of
		 * the fetch is recorded.
		 */
		if (rc == HEGN_ERR_NOT_FOUND)
			rc = why_set(why, HEGN_ERR_NOT_FOUND, "message %s: the sealed copy for %s "
			    "was deleted under retention", id, caller->name);
		goto out;
	}
	/* The fetch is recorded before the bytes leave. */
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	*out = sealed;
	sealed = NULL;
	rc = 0;
out:
	store_rollback(tx);
	relay_sealed_free(sealed);
	store_delivery_clear(&d);
	store_message_clear(&m);
	policy_free(pol);
	return rc;
}

uint64_t
relay_sealed_size(const struct relay_sealed *s)
{
	return s->size;
}

const char *
relay_sealed_sha256(const struct relay_sealed *s)
{
	return s->sha;
}

int
relay_sealed_read(struct relay_sealed *s, uint64_t offset, uint8_t *out, size_t n,
    size_t *got, struct why *why)
{
	struct store_tx *tx = NULL;
	uint64_t total = 0;
	size_t have;
	int rc;

	*got = 0;
	if (offset >= s->size)
		return 0;
	if (offset < s->piece_at || offset >= s->piece_at + s->piece_len) {
		s->piece_at = offset;
		s->piece_len = 0;
		if ((rc = store_begin(s->r->store, 0, &tx, why)) != 0)
			return rc;
		rc = store_sealed_read(tx, s->id, s->recipient, s->sha, offset, s->piece,
		    s->piece_cap, &s->piece_len, &total, why);
		store_rollback(tx);
		if (rc != 0)
			return rc;
		if (total != s->size || s->piece_len == 0)
			return why_set(why, HEGN_ERR_STORE, "the sealed copy of %s for %s changed size "
			    "while it was sent", s->id, s->recipient);
	}
	have = (size_t)(s->piece_at + s->piece_len - offset);
	if (n > have)
		n = have;
	memcpy(out, s->piece + (offset - s->piece_at), n);
	*got = n;
	return 0;
}

void
relay_sealed_free(struct relay_sealed *s)
{
	if (s == NULL)
		return;
	free(s->piece);
	free(s);
}

int
relay_is_sender(struct relay *r, const struct party *caller, const char *id)
{
	struct store_tx *tx = NULL;
	struct store_message m;
	int yes;

	memset(&m, 0, sizeof(m));
	if (caller == NULL || !util_valid_id(id) || store_begin(r->store, 0, &tx, NULL) != 0)
		return 0;
	yes = store_message_get(tx, id, 0, &m, NULL) == 0 && strcmp(m.sender, caller->name) == 0;
	store_message_clear(&m);
	store_rollback(tx);
	return yes;
}

int
relay_is_recipient(struct relay *r, const struct party *caller, const char *id)
{
	struct store_tx *tx = NULL;
	struct store_delivery d;
	int yes;

	if (caller == NULL || !util_valid_id(id) || store_begin(r->store, 0, &tx, NULL) != 0)
		return 0;
	yes = store_delivery_get(tx, id, caller->name, 0, &d, NULL) == 0;
	store_delivery_clear(&d);
	store_rollback(tx);
	return yes;
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
	if (*out == NULL) {
		rc = why_set(why, HEGN_ERR_NOMEM, "out of memory for the status");
		goto out;
	}
	if (m.deadline_ms != 0) {
		util_time_ms_rfc3339(m.deadline_ms, when);
		json_object_set_new(*out, "deadline", json_string(when));
	}
	rc = end_answer(&tx, out, why);
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
	struct medcom_answer *ans = NULL;
	struct store_medcom row;
	const struct party *signer;
	const uint8_t *content;
	size_t clen;
	char *subject = NULL, sha[65];
	int64_t now = util_now_ms();
	int rc, prepared = 0;

	*out = NULL;
	memset(&d, 0, sizeof(d));
	memset(&sr, 0, sizeof(sr));
	memset(&old, 0, sizeof(old));
	memset(&m, 0, sizeof(m));
	memset(&row, 0, sizeof(row));
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
	if (medcom_is_fhir(content, clen)) {
		rc = relay_receipt_medcom(r, signer, id, content, clen, body, len, out, why);
		goto out;
	}
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
again:
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	/*
	 * A MedCom sender gets the answer as an Acknowledgement, which is
	 * signed outside any transaction: for a MedCom message this one is
	 * left, the answer built, and the receipt taken in a second.  Asking
	 * here rather than in a read of its own costs a hegn message nothing.
	 */
	if (!prepared) {
		rc = store_medcom_get(tx, STORE_MEDCOM_BY_MESSAGE, NULL, id, &row, why);
		store_medcom_clear(&row);
		if (rc == 0) {
			store_rollback(tx);
			tx = NULL;
			prepared = 1;
			if ((rc = medcom_answer_prepare(r, signer, id, rcpt.accepted, rcpt.reason,
			    &ans, why)) != 0)
				goto out;
			goto again;
		}
		if (rc != HEGN_ERR_NOT_FOUND)
			goto out;
		why_clear(why);
		prepared = 1;
	}
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
		/* The same receipt again: counted, answered as the first time. */
		if ((rc = store_schedule_get(tx, id, signer->name, &sched, why)) != 0)
			goto out;
		sched.duplicates++;
		if ((rc = store_schedule_update(tx, &sched, why)) != 0 ||
		    (rc = store_commit(tx, why)) != 0) {
			tx = NULL;
			goto out;
		}
		tx = NULL;
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
	if ((rc = store_schedule_update(tx, &sched, why)) != 0 ||
	    (rc = medcom_answer_store(r, tx, ans, now, why)) != 0)
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
	medcom_answer_free(ans);
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
	int errors = 0, k, shared_tls_key = 0;

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
		if (tls != NULL && gw != NULL &&
		    EVP_PKEY_eq(X509_get0_pubkey(tls), X509_get0_pubkey(gw)) == 1)
			shared_tls_key = 1;
		X509_free(tls);
	} else {
		shared_tls_key = 1;
	}
	/* docs/PRIVSEP.md: the process that terminates TLS holds the TLS key. */
	if (shared_tls_key)
		report(f, &errors, 0, "tls_key is the gateway's own key: the network process, which "
		    "terminates TLS, then holds the key that opens sealed submissions and signs as "
		    "the gateway; give TLS a key of its own (docs/PRIVSEP.md)");
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

	audit_fill(&e, action, GATEWAY_NAME, NULL, NULL,
	    strstr(action, ".failed") != NULL ? "fail" : "ok", NULL, detail);
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = audit_append(tx, &e, util_now_ms(), why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	return store_commit(tx, why);
}

int
relay_audit_parties(struct relay *r, struct why *why)
{
	struct store_tx *tx = NULL;
	struct audit_event e;
	char detail[256], *subject;
	int64_t now = util_now_ms();
	size_t i;
	int k, rc;

	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	for (i = 0; i < party_count(r->parties); i++) {
		const struct party *p = party_at(r->parties, i);

		for (k = 0; k < sk_X509_num(p->certs); k++) {
			subject = pki_subject(sk_X509_value(p->certs, k));
			snprintf(detail, sizeof(detail), "%s (%s%s) registered with %.160s", p->name,
			    conf_role_name(p->role), p->conf->key != NULL ? ", key held by hegn" : "",
			    subject != NULL ? subject : "?");
			free(subject);
			audit_fill(&e, "party.certificate", GATEWAY_NAME, NULL, NULL, "ok", NULL, detail);
			e.cert = p->fingerprints[k];
			if ((rc = audit_append(tx, &e, now, why)) != 0) {
				store_rollback(tx);
				return rc;
			}
		}
	}
	return store_commit(tx, why);
}

/* Retention: messages per transaction, and transactions per tick of hegnd's main loop. */
#define RETENTION_BATCH 500
#define RETENTION_BATCHES_PER_TICK 20

int
relay_tick(struct relay *r, int force, struct why *why)
{
	static int64_t last_checkpoint, last_retention;
	static int retention_more;
	struct store_tx *tx = NULL;
	int64_t now = util_now_ms(), size = 0, purged = 0, failed = 0;
	int rc = 0, batches;

	if (r->audit != NULL && (force || now - last_checkpoint >=
	    (int64_t)r->conf->checkpoint_interval * 1000)) {
		last_checkpoint = now;
		if ((rc = audit_checkpoint(r->audit, r->store, force, &size, why)) != 0)
			return rc;
	}
	/*
	 * Retention runs hourly: content older than the period is deleted, in
	 * batches of their own transactions so that writers get the lock in
	 * between; a run with more left goes on at the next tick.
	 */
	if (r->conf->retention_days > 0 &&
	    (retention_more || now - last_retention >= 3600 * 1000)) {
		struct audit_event e;
		char detail[128];

		if (!retention_more)
			last_retention = now;
		for (batches = 0; batches < RETENTION_BATCHES_PER_TICK; batches++) {
			if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
				return rc;
			if ((rc = store_purge_content(tx, now -
			    (int64_t)r->conf->retention_days * 86400000, now, RETENTION_BATCH, &purged,
			    &failed, &retention_more, why)) != 0)
				goto out;
			if (failed > 0)
				log_warn("retention: %lld copies never delivered failed (their content "
				    "was deleted)", (long long)failed);
			if (purged > 0 || failed > 0) {
				snprintf(detail, sizeof(detail), "content of %lld messages older than "
				    "%d days deleted; %lld copies not delivered failed", (long long)purged,
				    r->conf->retention_days, (long long)failed);
				audit_fill(&e, "retention.purge", GATEWAY_NAME, NULL, NULL, "ok", NULL,
				    detail);
				if ((rc = audit_append(tx, &e, now, why)) != 0)
					goto out;
			}
			rc = store_commit(tx, why);
			tx = NULL;
			if (rc != 0 || !retention_more)
				break;
		}
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
	if ((rc = store_end_read(&tx, 0, why)) != 0)
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

	/* A citizen without a CPR: keyed by its X-eCPR key (cpr.h), as its messages are. */
	if (cpr != NULL && strncmp(cpr, CPR_ECPR_PREFIX, strlen(CPR_ECPR_PREFIX)) == 0) {
		if (cpr_ecpr_check(cpr + strlen(CPR_ECPR_PREFIX), why) != 0)
			return why_prefix(why, HEGN_ERR_INVALID, "ecpr");
		citizen_ref(r, cpr, cref);
		return 0;
	}
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
	rc = end_answer(&tx, out, why);
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
	char detail[200], hash[USER_HASH_MAX];
	int rc;

	if (party_find(r->parties, party) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "party: no party called %s", party);
	/* Hashed before the transaction: hegnd's writers would wait for Argon2id (user.h). */
	if ((rc = user_hash_password(password, hash, why)) != 0)
		return rc;
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		return rc;
	if ((rc = user_add(tx, username, party, role, hash, util_now_ms(), why)) != 0) {
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
	rc = end_answer(&tx, out, why);
out:
	if (u != NULL)
		sodium_memzero(u, n * sizeof(*u));
	free(u);
	store_rollback(tx);
	return rc;
}

int
relay_audit_query(struct relay *r, const struct party *caller, const char *actor,
    const char *cpr, int64_t from_ms, int64_t to_ms, json_t **out, struct why *why)
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
	if ((rc = store_end_read(&tx, 0, why)) != 0)
		goto out;
	/* Reading the log about a citizen is itself recorded. */
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	if ((rc = commit_audited(tx, "audit.query", caller ? caller->name : actor, cref,
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
	struct pki *pki;
	struct policy *pol;
	int rc;

	if (r->sched_fd == -1)
		return why_set(why, HEGN_ERR_INTERNAL, "relay_deliver: the relay was opened "
		    "without RELAY_SCHEDULER");
	pki = pki_get(r);
	pol = policy_get(r);
	memset(&ctx, 0, sizeof(ctx));
	ctx.conf = r->conf;
	ctx.parties = r->parties;
	ctx.pki = pki;
	ctx.policy = pol;
	ctx.store = r->store;
	ctx.receipt = relay_receipt_cb;
	ctx.receipt_arg = r;
	ctx.tls_cert_pem = &r->tls_cert_pem;
	ctx.tls_key_pem = &r->tls_key_pem;
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
		/* An acknowledged copy, or one already sent another way, keeps its outcome. */
		if (strcmp(s.state, STORE_STATE_ACKNOWLEDGED) == 0 ||
		    strcmp(s.state, STORE_STATE_FALLBACK) == 0)
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
		    "that copy is acknowledged or sent another way already, or has no such recipient" :
		    "every copy is acknowledged or sent another way already");
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

/*
 * --- MedCom messages (issue 7, docs/medcom.md) ---
 *
 * HospitalNotification and CareCommunication arrive as FHIR (sealed by the
 * sending party, or application/fhir+json from a hosted party), route by
 * the receiver's SOR and GLN, and go on under the same policy as hegn's own
 * notices.  Each is answered with a MedCom Acknowledgement; an
 * Acknowledgement a party sends becomes the acknowledged message's receipt.
 */

/*
 * Do p's configured identifiers name the organisation with this SOR and
 * GLN?  Every identifier the party has must match, and it needs one.
 */
static int
medcom_ids_match(const struct party *p, const char *sor, const char *gln)
{
	const char *psor = p->conf->sor, *pgln = p->conf->gln;

	if ((psor == NULL || *psor == '\0') && (pgln == NULL || *pgln == '\0'))
		return 0;
	if (psor != NULL && *psor != '\0' && (sor == NULL || strcmp(psor, sor) != 0))
		return 0;
	if (pgln != NULL && *pgln != '\0' && (gln == NULL || strcmp(pgln, gln) != 0))
		return 0;
	return 1;
}

/* The party with this GLN (else this SOR), which must carry both if it has them. */
static int
medcom_party(const struct relay *r, const char *what, const char *sor, const char *gln,
    const struct party **out, struct why *why)
{
	const struct party *p, *by_gln = NULL, *by_sor = NULL;
	size_t i;

	*out = NULL;
	for (i = 0; i < party_count(r->parties); i++) {
		p = party_at(r->parties, i);
		if (by_gln == NULL && p->conf->gln != NULL && gln != NULL &&
		    strcmp(p->conf->gln, gln) == 0)
			by_gln = p;
		if (by_sor == NULL && p->conf->sor != NULL && sor != NULL &&
		    strcmp(p->conf->sor, sor) == 0)
			by_sor = p;
	}
	p = by_gln != NULL ? by_gln : by_sor;
	if (p == NULL)
		return why_set(why, HEGN_ERR_UNPROCESSABLE,
		    "%s: no party has GLN %s or SOR %s", what, gln ? gln : "-", sor ? sor : "-");
	if (!medcom_ids_match(p, sor, gln))
		return why_set(why, HEGN_ERR_UNPROCESSABLE,
		    "%s: GLN %s and SOR %s do not name the same party", what, gln ? gln : "-",
		    sor ? sor : "-");
	*out = p;
	return 0;
}

/*
 * Who signs our Acknowledgements: the receiving party when it has a valid
 * SOR and GLN, else the municipality (the first visitation party that has).
 */
static void
medcom_our_ids(const struct relay *r, const struct party *to, const char **sor,
    const char **gln)
{
	const struct party *p;
	size_t i;

	*sor = *gln = NULL;
	for (i = 0; i <= party_count(r->parties); i++) {
		p = i == 0 ? to : party_at(r->parties, i - 1);
		if (p == NULL || (i > 0 && p->role != ROLE_VISITATION))
			continue;
		if (p->conf->sor != NULL && p->conf->gln != NULL && medcom_sor_valid(p->conf->sor) &&
		    medcom_gln_valid(p->conf->gln)) {
			*sor = p->conf->sor;
			*gln = p->conf->gln;
			return;
		}
	}
}

/* {RELAY_MEDCOM_ACK: the Acknowledgement}, the body the HTTP layer answers with. */
static json_t *
medcom_ack_response(const struct buf *ack)
{
	return json_pack("{s:s%}", RELAY_MEDCOM_ACK, (const char *)ack->data, ack->len);
}

/*
 * Refuse a message with code, answering with a fatal-error Acknowledgement
 * naming why (m parsed, or else the raw content).  Returns code, with why
 * kept; without an Acknowledgement (ours unconfigured, or the refused
 * message is itself one) the answer is the plain error.
 */
static void
medcom_answer_error(struct relay *r, const struct party *to, const struct medcom_msg *m,
    enum medcom_ack_code code, const char *text, json_t **response)
{
	struct buf ack = { 0 };
	const char *sor, *gln;

	medcom_our_ids(r, to, &sor, &gln);
	if (sor != NULL && medcom_ack_build(m, code, text, sor, gln, &ack, NULL) == 0)
		*response = medcom_ack_response(&ack);
	buf_free(&ack, 0);
}

static int
medcom_refuse(struct relay *r, const struct party *to, const struct medcom_msg *m,
    const uint8_t *content, size_t len, int code, json_t **response, struct why *why)
{
	struct buf ack = { 0 };
	const char *sor, *gln;
	char text[512];

	snprintf(text, sizeof(text), "%s", why != NULL && why->text[0] ? why->text :
	    hegn_strerror(code));
	if (m != NULL)
		medcom_answer_error(r, to, m, MEDCOM_ACK_FATAL_ERROR, text, response);
	else {
		medcom_our_ids(r, to, &sor, &gln);
		if (sor != NULL && medcom_fatal_for_unparseable(content, len, text, sor, gln,
		    &ack, NULL) == 0)
			*response = medcom_ack_response(&ack);
		buf_free(&ack, 0);
	}
	if (why != NULL)
		why->code = code;
	return code;
}

/*
 * Record a MedCom Acknowledgement from signer as the receipt for copy id:
 * ok is accepted, transient-error and fatal-error rejected with the
 * OperationOutcome's text.  The first receipt stands: the same answer
 * again is taken as a repeat, another one is a conflict.
 */
static int
medcom_record_receipt(struct relay *r, const struct party *signer, const char *id,
    const struct medcom_msg *ack, const struct buf *signed_der, json_t **out, struct why *why)
{
	struct medcom_answer *ans = NULL;
	struct store_tx *tx = NULL;
	struct store_delivery d;
	struct store_receipt sr, old;
	struct store_message m;
	struct store_schedule sched;
	struct store_event ev;
	struct audit_event ae;
	int accepted = medcom_response_code(ack) == MEDCOM_ACK_OK;
	const char *status = accepted ? "accepted" : "rejected";
	const char *reason;
	char detail[256];
	int64_t now = util_now_ms();
	int rc;

	memset(&d, 0, sizeof(d));
	memset(&sr, 0, sizeof(sr));
	memset(&old, 0, sizeof(old));
	memset(&m, 0, sizeof(m));
	reason = medcom_outcome_text(ack);
	if (!accepted && (reason == NULL || *reason == '\0'))
		reason = medcom_ack_code_name(medcom_response_code(ack));
	/* The sender gets this Acknowledgement itself, when it named signer (docs/medcom.md). */
	if ((rc = medcom_answer_build(r, signer, id, medcom_response_code(ack), reason, ack,
	    signed_der, &ans, why)) != 0)
		goto out;
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	rc = store_delivery_get(tx, id, signer->name, 0, &d, why);
	if (rc == HEGN_ERR_NOT_FOUND)
		rc = not_found(why, id);
	if (rc != 0)
		goto out;
	if (store_receipt_get(tx, id, signer->name, &old, NULL) == 0) {
		if (strcmp(old.status, status) != 0) {
			rc = why_set(why, HEGN_ERR_CONFLICT, "a different receipt for %s was already "
			    "taken; the first receipt stands", id);
			goto out;
		}
		/* A commit of nothing: it says whether the first receipt is on disk. */
		rc = store_commit(tx, why);
		tx = NULL;
		if (rc != 0)
			goto out;
		*out = json_pack("{s:s, s:s, s:s}", "id", id, "recipient", signer->name, "state",
		    d.state);
		goto out;
	}
	snprintf(sr.message_id, sizeof(sr.message_id), "%s", id);
	snprintf(sr.recipient, sizeof(sr.recipient), "%s", signer->name);
	snprintf(sr.status, sizeof(sr.status), "%s", status);
	snprintf(sr.reason, sizeof(sr.reason), "%s", reason != NULL ? reason : "");
	sr.received_ms = now;
	sr.signed_der = *signed_der;
	snprintf(detail, sizeof(detail), "MedCom Acknowledgement %s: %s",
	    medcom_ack_code_name(medcom_response_code(ack)), status);
	event_fill(&ev, id, signer->name, accepted ? "acknowledged" : "rejected", signer->name,
	    detail, now);
	audit_fill(&ae, "message.receipt", signer->name, id, m.citizen_ref, "ok", "", status);
	if ((rc = store_message_get(tx, id, 0, &m, why)) != 0 ||
	    (rc = audit_append(tx, &ae, now, why)) != 0 ||
	    (rc = store_receipt_insert(tx, &sr, why)) != 0 ||
	    (rc = store_event_add(tx, &ev, why)) != 0 ||
	    (rc = store_schedule_get(tx, id, signer->name, &sched, why)) != 0)
		goto out;
	if (strcmp(sched.state, STORE_STATE_FALLBACK) != 0 &&
	    strcmp(sched.state, STORE_STATE_FAILED) != 0)
		snprintf(sched.state, sizeof(sched.state), "%s",
		    accepted ? STORE_STATE_ACKNOWLEDGED : STORE_STATE_REJECTED);
	sched.acked_ms = now;
	if (sched.delivered_ms == 0)
		sched.delivered_ms = now;
	sched.next_ms = 0;
	if ((rc = store_schedule_update(tx, &sched, why)) != 0 ||
	    (rc = medcom_answer_store(r, tx, ans, now, why)) != 0)
		goto out;
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	log_info("relay: MedCom acknowledgement for %s from %s: %s", id, signer->name, status);
	*out = json_pack("{s:s, s:s, s:s}", "id", id, "recipient", signer->name, "state",
	    accepted ? STORE_STATE_ACKNOWLEDGED : STORE_STATE_REJECTED);
	rc = 0;
out:
	store_rollback(tx);
	store_delivery_clear(&d);
	store_receipt_clear(&old);
	store_message_clear(&m);
	medcom_answer_free(ans);
	return rc;
}

/*
 * A signed MedCom Acknowledgement sent to /v1/messages/{id}/receipt: it
 * must acknowledge that message's MessageHeader.id.
 */
static int
relay_receipt_medcom(struct relay *r, const struct party *signer, const char *id,
    const uint8_t *content, size_t clen, const uint8_t *body, size_t len, json_t **out,
    struct why *why)
{
	struct medcom_msg *ack = NULL;
	struct store_tx *tx = NULL;
	struct store_medcom row;
	struct buf der;
	int rc;

	memset(&row, 0, sizeof(row));
	if (id == NULL) {
		rc = why_set(why, HEGN_ERR_INVALID,
		    "receipt: a MedCom Acknowledgement is taken for a named message only");
		goto out;
	}
	if ((rc = medcom_parse(content, clen, &ack, why)) != 0) {
		why_prefix(why, rc, "receipt");
		goto out;
	}
	if (medcom_event(ack) != MEDCOM_ACKNOWLEDGEMENT) {
		rc = why_set(why, HEGN_ERR_INVALID,
		    "receipt: a MedCom %s, not an Acknowledgement", medcom_event_name(medcom_event(ack)));
		goto out;
	}
	if (!medcom_ids_match(signer, medcom_sender_sor(ack), medcom_sender_gln(ack))) {
		rc = why_set(why, HEGN_ERR_DENIED, "receipt: MessageHeader.sender (SOR %s, GLN %s) "
		    "is not %s", medcom_sender_sor(ack), medcom_sender_gln(ack), signer->name);
		goto out;
	}
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	rc = store_medcom_get(tx, STORE_MEDCOM_BY_MESSAGE, NULL, id, &row, why);
	store_rollback(tx);
	tx = NULL;
	if (rc == HEGN_ERR_NOT_FOUND) {
		rc = why_set(why, HEGN_ERR_INVALID,
		    "receipt: %s is not a MedCom message; send a hegn receipt", id);
		goto out;
	}
	if (rc != 0)
		goto out;
	if (strcmp(row.header_id, medcom_response_identifier(ack)) != 0) {
		rc = why_set(why, HEGN_ERR_INVALID, "receipt: MessageHeader.response.identifier "
		    "%s is not the MessageHeader.id of %s", medcom_response_identifier(ack), id);
		goto out;
	}
	der.data = (uint8_t *)body;
	der.len = len;
	rc = medcom_record_receipt(r, signer, id, ack, &der, out, why);
out:
	store_medcom_clear(&row);
	medcom_free(ack);
	return rc;
}

/*
 * An Acknowledgement a party submits: addressed to the party that sent the
 * original, it becomes that original's receipt.  It is never acknowledged.
 */
static int
medcom_take_ack(struct relay *r, const struct party *sender, const struct medcom_msg *ack,
    const struct buf *signed_der, json_t **response, struct why *why)
{
	const struct party *orig_sender = NULL;
	struct store_tx *tx = NULL;
	struct store_medcom row;
	int rc;

	memset(&row, 0, sizeof(row));
	if ((rc = medcom_party(r, "MessageHeader.destination.receiver", medcom_receiver_sor(ack),
	    medcom_receiver_gln(ack), &orig_sender, why)) != 0)
		goto out;
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	rc = store_medcom_get(tx, STORE_MEDCOM_BY_HEADER, orig_sender->name,
	    medcom_response_identifier(ack), &row, why);
	store_rollback(tx);
	if (rc == HEGN_ERR_NOT_FOUND)
		rc = why_set(why, HEGN_ERR_NOT_FOUND, "MessageHeader.response.identifier: no message "
		    "%s from %s for you", medcom_response_identifier(ack), orig_sender->name);
	if (rc != 0)
		goto out;
	rc = medcom_record_receipt(r, sender, row.message_id, ack, signed_der, response, why);
out:
	store_medcom_clear(&row);
	return rc;
}

/* hegn's kind for a MedCom message from sender. */
static int
medcom_kind(const struct medcom_msg *m, const struct party *sender, const char **kind,
    struct why *why)
{
	*kind = NULL;
	switch (medcom_event(m)) {
	case MEDCOM_HOSPITAL_NOTIFICATION:
		return medcom_notification_kind(m, kind, why);
	case MEDCOM_CARE_COMMUNICATION:
		/* Correspondence: a report to the municipality, or a case message from it. */
		*kind = sender->role == ROLE_VISITATION ? "care_update" : "observation";
		return 0;
	default:
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.eventCoding: %s is not routed",
		    medcom_event_name(medcom_event(m)));
	}
}

/* Answer a duplicate or a resend with the first Acknowledgement, recording it. */
static int
medcom_repeat(struct relay *r, const struct party *sender, const struct medcom_msg *mm,
    const struct store_medcom *first, enum medcom_dup dup, json_t **response, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_medcom row;
	struct store_event ev;
	json_t *answer = NULL;
	int64_t now = util_now_ms();
	int rc;

	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	if (dup == MEDCOM_DUP_RESEND) {
		/* The new envelope is remembered, so its reuse for another letter is caught. */
		row = *first;
		snprintf(row.bundle_id, sizeof(row.bundle_id), "%s", medcom_bundle_id(mm));
		row.received_ms = now;
		if ((rc = store_medcom_insert(tx, &row, why)) != 0 && rc != HEGN_ERR_CONFLICT)
			goto out;
	}
	event_fill(&ev, first->message_id, NULL, "duplicate", sender->name,
	    dup == MEDCOM_DUP_RESEND ? "MedCom resend (new Bundle.id): the first acknowledgement "
	    "again, not delivered again" : "MedCom duplicate: the first acknowledgement again, "
	    "not delivered again", now);
	if ((rc = store_event_add(tx, &ev, why)) != 0)
		goto out;
	if ((answer = medcom_ack_response(&first->ack)) == NULL ||
	    json_object_set_new(answer, "id", json_string(first->message_id)) != 0 ||
	    json_object_set_new(answer, "state", json_string(medcom_dup_name(dup))) != 0) {
		rc = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	*response = answer;
	answer = NULL;
	log_info("relay: MedCom %s of %s from %s answered with the first acknowledgement",
	    medcom_dup_name(dup), first->message_id, sender->name);
out:
	json_decref(answer);
	store_rollback(tx);
	return rc;
}

/*
 * cc destinations (docs/medcom.md, "cc destinations"): each that names a
 * party gets a copy under the same policy as the primary, appended to
 * copies (room for every cc is there).  One that names no party, the
 * sender, or a party that already has a copy, or that the policy refuses,
 * gets none; *notes collects what is recorded about it (event, recipient,
 * rule, detail), in the message's transaction.  A message withheld from
 * everybody is withheld from its cc too.
 */
/* Append a cc note; HEGN_ERR_NOMEM rather than a note silently lost. */
static int
medcom_cc_note(json_t *notes, const char *event, const char *to, const char *rule,
    const char *detail, struct why *why)
{
	if (json_array_append_new(notes, json_pack("{s:s, s:s, s:s, s:s}", "event", event,
	    "recipient", to, "rule", rule, "detail", detail)) != 0)
		return why_set(why, HEGN_ERR_NOMEM, "out of memory for the cc destinations");
	return 0;
}

static int
medcom_route_cc(struct relay *r, struct policy *pol, struct store_tx *tx,
    const struct party *sender, const struct medcom_msg *mm, const struct message *hm,
    const char *cref, const char *services, int withheld, struct copy *copies,
    size_t *ncopies, json_t **notes, struct why *why)
{
	const struct party *p;
	struct policy_ctx ctx;
	struct policy_decision dec;
	struct why w = { 0 };
	unsigned missing;
	char detail[256], classes[32];
	size_t i, j;
	int rc, dup;

	if ((*notes = json_array()) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "out of memory for the cc destinations");
	for (i = 0; i < medcom_cc_count(mm); i++) {
		if (medcom_party(r, "MessageHeader.destination (cc)", medcom_cc_sor(mm, i),
		    medcom_cc_gln(mm, i), &p, &w) != 0) {
			if ((rc = medcom_cc_note(*notes, "cc_unrouted", "", "", w.text, why)) != 0)
				return rc;
			continue;
		}
		for (dup = p == sender, j = 0; !dup && j < *ncopies; j++)
			dup = copies[j].to == p;
		if (dup) {
			/* The sender itself, or a party that has its copy already: never twice. */
			snprintf(detail, sizeof(detail), "cc %s: %s", p->name, p == sender ?
			    "the sender itself, no copy" : "has a copy already, not a second one");
			if ((rc = medcom_cc_note(*notes, "cc_skipped", p->name, "", detail,
			    why)) != 0)
				return rc;
			continue;
		}
		if (withheld) {
			if ((rc = medcom_cc_note(*notes, "cc_withheld", p->name, "",
			    "withheld with the message: the citizen receives no services", why)) != 0)
				return rc;
			continue;
		}
		memset(&copies[*ncopies], 0, sizeof(copies[*ncopies]));
		if ((rc = decide_send(r, pol, tx, sender, p, hm, cref, services, &ctx, &dec,
		    why)) != 0)
			return rc;
		if (dec.allow) {
			/* A required class that p may not see would fail its copy later. */
			ctx.action = POLICY_SEND;
			missing = message_required_classes(message_kind(hm)) & message_classes(hm) &
			    ~policy_classes_for(pol, &ctx, NULL);
			if (missing != 0) {
				class_list(missing, classes);
				dec.allow = 0;
				snprintf(dec.rule_id, sizeof(dec.rule_id), "minimisation");
				snprintf(dec.reason, sizeof(dec.reason),
				    "%s may not see %s, which %s requires", p->name, classes,
				    message_kind_name(message_kind(hm)));
			}
		}
		if (!dec.allow) {
			snprintf(detail, sizeof(detail), "cc %s refused: %s (rule %s)", p->name,
			    dec.reason, dec.rule_id);
			if ((rc = medcom_cc_note(*notes, "cc_refused", p->name, dec.rule_id, detail,
			    why)) != 0)
				return rc;
			continue;
		}
		copies[*ncopies].send = dec;
		copies[(*ncopies)++].to = p;
	}
	return 0;
}

/* What medcom_route_cc noted, in the delivery log and (refusals) the audit log. */
static int
medcom_record_cc(struct store_tx *tx, const char *id, const char *sender, const char *cref,
    json_t *notes, int64_t now, struct why *why)
{
	struct store_event ev;
	struct audit_event ae;
	json_t *n;
	size_t i;
	int rc;

	json_array_foreach(notes, i, n) {
		const char *event = json_string_value(json_object_get(n, "event"));
		const char *to = json_string_value(json_object_get(n, "recipient"));
		const char *detail = json_string_value(json_object_get(n, "detail"));

		event_fill(&ev, id, *to ? to : NULL, event, GATEWAY_NAME, detail, now);
		if ((rc = store_event_add(tx, &ev, why)) != 0)
			return rc;
		if (strcmp(event, "cc_refused") != 0)
			continue;
		audit_fill(&ae, "message.submit", sender, id, cref, "deny",
		    json_string_value(json_object_get(n, "rule")), detail);
		if ((rc = audit_append(tx, &ae, now, why)) != 0)
			return rc;
	}
	return 0;
}

static int
relay_submit_medcom(struct relay *r, const struct party *caller, const struct party *sealed_by,
    const uint8_t *content, size_t clen, const struct buf *sender_signed, json_t **response,
    int *created, struct why *why)
{
	struct pki *pki = pki_get(r);
	struct policy *pol = policy_get(r);
	struct medcom_msg *mm = NULL;
	struct message *hm = NULL;
	json_t *hj = NULL, *list, *answer = NULL;
	char *hjs = NULL;
	const struct party *sender = sealed_by, *to = NULL;
	struct buf own_signed = { 0 }, ack = { 0 };
	const struct buf *orig;
	struct store_tx *tx = NULL;
	struct store_medcom by_bundle, by_header, row;
	struct store_message sm;
	struct store_event ev;
	struct policy_ctx ctx;
	struct policy_decision dec;
	struct copy *copies = NULL;
	size_t ncopies = 0, i;
	const char *kind = NULL, *our_sor, *our_gln, *format;
	char id[65], csha[65], cref[65] = "", services[257], detail[256];
	enum medcom_dup dup;
	X509 *rcert = NULL;
	json_t *cc_notes = NULL;
	struct spill spill = { .fd = -1 };
	int64_t now;
	int rc, withheld = 0, bseen = 0, hseen = 0;

	*response = NULL;
	*created = 0;
	memset(&by_bundle, 0, sizeof(by_bundle));
	memset(&by_header, 0, sizeof(by_header));
	memset(&sm, 0, sizeof(sm));
	if (sender == NULL) {
		/* application/fhir+json: hegn signs for a hosted party, as for JSON. */
		if (caller == NULL) {
			rc = why_set(why, HEGN_ERR_UNAUTH,
			    "a FHIR submission needs a TLS client certificate");
			goto out;
		}
		if (!signer_has(r->signer, caller->name)) {
			rc = why_set(why, HEGN_ERR_DENIED,
			    "hegn does not hold the key of %s: submit the MedCom message sealed "
			    "(application/pkcs7-mime) and signed with your own key", caller->name);
			goto out;
		}
		sender = caller;
	}
	if ((rc = medcom_parse(content, clen, &mm, why)) != 0) {
		if (rc == HEGN_ERR_INVALID)
			rc = medcom_refuse(r, NULL, NULL, content, clen, HEGN_ERR_UNPROCESSABLE,
			    response, why);
		goto out;
	}
	if (!medcom_ids_match(sender, medcom_sender_sor(mm), medcom_sender_gln(mm))) {
		why_set(why, HEGN_ERR_DENIED, "MessageHeader.sender: SOR %s and GLN %s are not the "
		    "identifiers of %s, who signed it", medcom_sender_sor(mm), medcom_sender_gln(mm),
		    sender->name);
		rc = medcom_refuse(r, NULL, mm, content, clen, HEGN_ERR_DENIED, response, why);
		goto out;
	}
	if (sender_signed == NULL && (rc = signer_sign(r->signer, sender->name, content, clen,
	    NULL, &own_signed, why)) != 0)
		goto out;
	orig = sender_signed != NULL ? sender_signed : &own_signed;
	if (medcom_event(mm) == MEDCOM_ACKNOWLEDGEMENT) {
		rc = medcom_take_ack(r, sender, mm, orig, response, why);
		goto out;
	}
	if ((rc = medcom_party(r, "MessageHeader.destination.receiver", medcom_receiver_sor(mm),
	    medcom_receiver_gln(mm), &to, why)) != 0) {
		rc = medcom_refuse(r, NULL, mm, content, clen, rc, response, why);
		goto out;
	}
	if (to == sender) {
		why_set(why, HEGN_ERR_UNPROCESSABLE,
		    "MessageHeader.destination: a party cannot send to itself");
		rc = medcom_refuse(r, to, mm, content, clen, HEGN_ERR_UNPROCESSABLE, response, why);
		goto out;
	}
	if ((rc = medcom_kind(mm, sender, &kind, why)) != 0 ||
	    (rc = medcom_to_hegn(mm, kind, to->name, &hj, why)) != 0 ||
	    (hjs = json_dumps(hj, JSON_COMPACT)) == NULL ||
	    (rc = message_parse((const uint8_t *)hjs, strlen(hjs), &r->limits, &hm, why)) != 0) {
		if (rc == 0)
			rc = why_set(why, HEGN_ERR_NOMEM, "medcom: out of memory");
		else if (err_http_status(rc) < 500) {
			why_prefix(why, rc, "in hegn's format");
			rc = medcom_refuse(r, to, mm, content, clen, HEGN_ERR_UNPROCESSABLE,
			    response, why);
		}
		goto out;
	}

	/* De-duplication on (Bundle.id, MessageHeader.id) per sender, before any other work. */
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	rc = store_medcom_get(tx, STORE_MEDCOM_BY_BUNDLE, sender->name, medcom_bundle_id(mm),
	    &by_bundle, why);
	if (rc == 0 || rc == HEGN_ERR_NOT_FOUND) {
		bseen = rc == 0;
		rc = store_medcom_get(tx, STORE_MEDCOM_BY_HEADER, sender->name, medcom_header_id(mm),
		    &by_header, why);
		hseen = rc == 0;
	}
	store_rollback(tx);
	tx = NULL;
	if (rc != 0 && rc != HEGN_ERR_NOT_FOUND)
		goto out;
	why_clear(why);
	dup = medcom_classify(bseen, hseen, bseen &&
	    strcmp(by_bundle.header_id, medcom_header_id(mm)) == 0);
	if (dup == MEDCOM_DUP_DUPLICATE || dup == MEDCOM_DUP_RESEND) {
		rc = medcom_repeat(r, sender, mm, dup == MEDCOM_DUP_DUPLICATE ? &by_bundle :
		    &by_header, dup, response, why);
		goto out;
	}
	if (dup == MEDCOM_DUP_ENVELOPE_REUSED) {
		why_set(why, HEGN_ERR_UNPROCESSABLE, "Bundle.id: %s was already used by %s for "
		    "another MessageHeader.id (a resend keeps MessageHeader.id, a new message needs "
		    "a new Bundle.id)", medcom_bundle_id(mm), sender->name);
		rc = medcom_refuse(r, to, mm, content, clen, HEGN_ERR_UNPROCESSABLE, response, why);
		goto out;
	}

	util_uuid7(util_now_ms(), id);
	message_set_id(hm, id);
	message_set_from(hm, sender->name);
	citizen_ref(r, message_cpr(hm), cref);
	message_services(hm, services);
	util_sha256_hex(content, clen, csha);

	/* Who gets a copy: as relay_submit decides for hegn's notices. */
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	copies = xcalloc(1, sizeof(*copies));
	ncopies = 1;
	copies[0].to = to;
	if ((rc = decide_send(r, pol, tx, sender, to, hm, cref, services, &ctx, &dec, why)) != 0)
		goto out;
	if (!dec.allow) {
		store_rollback(tx);
		tx = NULL;
		snprintf(detail, sizeof(detail), "MedCom %s to %s refused: %s", kind, to->name,
		    dec.reason);
		audit_refusal(r, "message.submit", sender->name, id, cref, dec.rule_id, detail);
		why_set(why, HEGN_ERR_DENIED, "%s (rule %s)", dec.reason, dec.rule_id);
		rc = medcom_refuse(r, to, mm, content, clen, HEGN_ERR_DENIED, response, why);
		goto out;
	}
	copies[0].send = dec;
	if ((rc = route_notice(r, pol, tx, sender, to, hm, cref, services, &ctx, &copies,
	    &ncopies, &withheld, why)) != 0)
		goto out;
	/* copies[0] keeps the primary's decision even when withheld leaves ncopies 0. */
	copies = xrealloc(copies, (ncopies + 1 + medcom_cc_count(mm)) * sizeof(*copies));
	if ((rc = medcom_route_cc(r, pol, tx, sender, mm, hm, cref, services, withheld, copies,
	    &ncopies, &cc_notes, why)) != 0)
		goto out;
	store_rollback(tx);
	tx = NULL;

	/*
	 * Each copy: the original FHIR for a party that reads MedCom and may
	 * see all of it; hegn's format otherwise, minimised to what it may see
	 * and signed as a derived copy (by the sender when hegn holds its key).
	 */
	for (i = 0; i < ncopies; i++) {
		struct copy *cp = &copies[i];

		memset(&ctx, 0, sizeof(ctx));
		ctx.actor_role = sender->role;
		ctx.peer_role = cp->to->role;
		ctx.kind = message_kind(hm);
		ctx.direction = policy_direction_to(cp->to->role);
		ctx.approvals = cp->to->conf->services;
		ctx.services = services;
		cp->keep = policy_classes_for(pol, &ctx, NULL);
		format = cp->to->conf->format != NULL ? cp->to->conf->format : "hegn";
		if (strcmp(format, "medcom") == 0 && (message_classes(hm) & ~cp->keep) == 0) {
			cp->signed_der = *orig;
		} else if ((rc = sign_minimised(r, sender, hm, id, csha, cp, why)) != 0) {
			if (i > 0)
				goto out;
			snprintf(detail, sizeof(detail), "MedCom %s to %s refused: %s", kind,
			    cp->to->name, why->text);
			audit_refusal(r, "message.submit", sender->name, id, cref, "minimisation",
			    detail);
			rc = medcom_refuse(r, to, mm, content, clen, rc, response, why);
			goto out;
		}
		if ((rc = party_encryption_cert(cp->to, pki, &rcert, why)) != 0) {
			why_prefix(why, rc, "to: %s cannot receive", cp->to->name);
			rc = HEGN_ERR_UNPROCESSABLE;
			if (why != NULL)
				why->code = rc;
			goto out;
		}
		if ((rc = seal_copy(r, rcert, cp, i + 1 == ncopies, &spill, why)) != 0)
			goto out;
	}

	medcom_our_ids(r, to, &our_sor, &our_gln);
	if (our_sor == NULL) {
		rc = why_set(why, HEGN_ERR_CONFIG, "medcom: neither %s nor a visitation party has a "
		    "valid SOR and GLN to acknowledge with", to->name);
		goto out;
	}
	if ((rc = medcom_ack_build(mm, MEDCOM_ACK_OK, NULL, our_sor, our_gln, &ack, why)) != 0)
		goto out;

	now = util_now_ms();
	snprintf(sm.id, sizeof(sm.id), "%s", id);
	snprintf(sm.sender, sizeof(sm.sender), "%s", sender->name);
	snprintf(sm.kind, sizeof(sm.kind), "%s", kind);
	snprintf(sm.content_sha256, sizeof(sm.content_sha256), "%s", csha);
	memcpy(sm.citizen_ref, cref, sizeof(sm.citizen_ref));
	sm.created_ms = now;
	sm.signed_der = *orig;
	memset(&row, 0, sizeof(row));
	snprintf(row.sender, sizeof(row.sender), "%s", sender->name);
	snprintf(row.bundle_id, sizeof(row.bundle_id), "%s", medcom_bundle_id(mm));
	snprintf(row.header_id, sizeof(row.header_id), "%s", medcom_header_id(mm));
	snprintf(row.message_id, sizeof(row.message_id), "%s", id);
	row.received_ms = now;
	row.ack = ack;

	if ((rc = store_begin(r->store, 1, &tx, why)) != 0 ||
	    (rc = store_message_insert(tx, &sm, why)) != 0)
		goto out;
	/* Inserted in the same transaction: a race with the same envelope loses here. */
	if ((rc = store_medcom_insert(tx, &row, why)) != 0) {
		if (rc == HEGN_ERR_CONFLICT)
			rc = why_set(why, HEGN_ERR_BUSY, "Bundle.id: the same envelope is being "
			    "taken in at this moment; send it again");
		goto out;
	}
	snprintf(detail, sizeof(detail), "MedCom %s %s by %s (%s)", medcom_event_name(
	    medcom_event(mm)), sealed_by != NULL ? "sealed" : "fhir+json", sender->name,
	    sealed_by != NULL ? "sender's signature" : "signed by hegn for the sender");
	event_fill(&ev, id, NULL, "submitted", sender->name, detail, now);
	if ((rc = store_event_add(tx, &ev, why)) != 0)
		goto out;
	snprintf(detail, sizeof(detail), "%s to %s (MedCom %s)", kind, to->name,
	    medcom_activity(mm));
	if ((rc = audit_accepted(tx, id, sender->name, cref, copies[0].send.rule_id, detail,
	    withheld, now, why)) != 0)
		goto out;
	for (i = 0; i < ncopies; i++)
		copies[i].form = copies[i].own_signed ? "hegn's format" : "the original MedCom FHIR";
	if ((rc = store_copies(r, tx, id, sender->name, cref, message_kind(hm),
	    message_classes(hm), 0, copies, ncopies, NULL, now, why)) != 0 ||
	    (rc = medcom_record_cc(tx, id, sender->name, cref, cc_notes, now, why)) != 0)
		goto out;
	/* A death (Patient.deceased) ends the assignments, as hegn's death_notice does. */
	if ((rc = apply_assignments(tx, hm, cref, to, services, id, now, why)) != 0)
		goto out;
	/* The answer before the commit, as in relay_submit. */
	if ((answer = medcom_ack_response(&ack)) == NULL || (list = json_array()) == NULL ||
	    json_object_set_new(answer, "recipients", list) != 0 ||
	    json_object_set_new(answer, "id", json_string(id)) != 0 ||
	    json_object_set_new(answer, "state", json_string(STORE_STATE_SUBMITTED)) != 0 ||
	    (withheld && json_object_set_new(answer, "withheld", json_true()) != 0)) {
		rc = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ncopies; i++)
		if (json_array_append_new(list, json_string(copies[i].to->name)) != 0) {
			rc = why_set(why, HEGN_ERR_NOMEM, "out of memory");
			goto out;
		}
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0)
		goto out;
	log_info("relay: MedCom %s %s from %s accepted as %s, %zu cop%s",
	    medcom_event_name(medcom_event(mm)), id, sender->name, kind, ncopies,
	    ncopies == 1 ? "y" : "ies");
	*response = answer;
	answer = NULL;
	*created = 1;
	rc = 0;
out:
	/*
	 * Our own failure (the store, memory, the key process) after the
	 * message was read: a transient-error Acknowledgement with the 5xx, so
	 * the sender's MedCom system resends it rather than giving up.  The
	 * text says nothing of our internals.
	 */
	if (rc != 0 && *response == NULL && mm != NULL &&
	    medcom_event(mm) != MEDCOM_ACKNOWLEDGEMENT && err_http_status(rc) >= 500)
		medcom_answer_error(r, to, mm, MEDCOM_ACK_TRANSIENT_ERROR,
		    "the gateway could not take the message now; send it again later", response);
	json_decref(answer);
	store_rollback(tx);
	for (i = 0; i < ncopies; i++) {
		if (copies[i].own_signed)
			buf_free(&copies[i].signed_der, 1);
		buf_free(&copies[i].sealed, 0);
	}
	free(copies);
	if (spill.fd >= 0)
		close(spill.fd);
	store_medcom_clear(&by_bundle);
	store_medcom_clear(&by_header);
	json_decref(cc_notes);
	buf_free(&ack, 0);
	buf_free(&own_signed, 1);
	message_free(hm);
	if (hjs != NULL)
		sodium_memzero(hjs, strlen(hjs));
	free(hjs);
	json_decref(hj);
	medcom_free(mm);
	policy_free(pol);
	pki_free(pki);
	return rc;
}

/*
 * --- MedCom Acknowledgements to the sender (issue 7, items 4 and 5) ---
 *
 * When a destination the sender of a MedCom message named (the primary or
 * a cc) answers its copy, with hegn's receipt or a MedCom Acknowledgement,
 * the sender gets a MedCom Acknowledgement as a message of its own, in its
 * inbox, through the delivery machinery (docs/medcom.md, "Acknowledgements
 * to the sender").  It is stored in the receipt's transaction, so a
 * repeated receipt, which is answered before anything is stored, never
 * makes a second one.
 */

#define MEDCOM_ACK_RULE "medcom-acknowledgement"

struct medcom_answer {
	char id[65];                    /* the Acknowledgement's hegn id */
	char orig_id[65];               /* the message it answers */
	char cref[65];                  /* the original's citizen, for the audit log */
	char code[17];                  /* its response.code */
	char signed_by[65];             /* who signed it */
	int theirs;                     /* the answerer's own Acknowledgement, as it signed it */
	char skip[200];                 /* set: none is sent, and this says why */
	const struct party *from;       /* the answering party */
	struct copy cp;                 /* the copy for the original's sender */
	struct buf signed_der;
	char content_sha[65];
};

static void
medcom_answer_free(struct medcom_answer *a)
{
	if (a == NULL)
		return;
	buf_free(&a->signed_der, 0);
	buf_free(&a->cp.sealed, 0);
	free(a);
}

/* Did the sender of orig name p as a destination (primary or cc)? */
static int
medcom_addressed(const struct relay *r, const struct medcom_msg *orig, const struct party *p)
{
	const struct party *q;
	size_t i;

	if (medcom_party(r, "", medcom_receiver_sor(orig), medcom_receiver_gln(orig), &q,
	    NULL) == 0 && q == p)
		return 1;
	for (i = 0; i < medcom_cc_count(orig); i++)
		if (medcom_party(r, "", medcom_cc_sor(orig, i), medcom_cc_gln(orig, i), &q,
		    NULL) == 0 && q == p)
			return 1;
	return 0;
}

/*
 * Build, sign and seal the Acknowledgement for answerer's answer (code,
 * reason) to message id, or take their own (their, parsed, and their_der,
 * as signed).  *out stays NULL when none is due: id is not a MedCom
 * message, answerer already answered it, or answerer was not a destination
 * the sender named (a copy hegn routed on by assignment).  A problem with
 * what was stored earlier (content deleted, a sender that cannot receive)
 * is not the answerer's fault: *out then carries skip, recorded beside the
 * receipt.  Errors are the answerer's (their Acknowledgement names another
 * receiver) or retryable.
 */
static int
medcom_answer_build(struct relay *r, const struct party *answerer, const char *id,
    enum medcom_ack_code code, const char *reason, const struct medcom_msg *their,
    const struct buf *their_der, struct medcom_answer **out, struct why *why)
{
	struct pki *pki = pki_get(r);
	struct store_tx *tx = NULL;
	struct store_medcom row;
	struct store_message m;
	struct store_receipt old;
	struct store_delivery d;
	struct envelope_signed *sig = NULL;
	struct medcom_msg *orig = NULL;
	struct medcom_answer *a = NULL;
	struct buf ack = { 0 };
	const struct party *to, *named;
	const uint8_t *content;
	const char *sor, *gln, *signer;
	struct why w = { 0 };
	X509 *rcert = NULL;
	size_t clen;
	int rc;

	*out = NULL;
	memset(&row, 0, sizeof(row));
	memset(&m, 0, sizeof(m));
	memset(&old, 0, sizeof(old));
	memset(&d, 0, sizeof(d));
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	rc = store_medcom_get(tx, STORE_MEDCOM_BY_MESSAGE, NULL, id, &row, why);
	/* No copy for the answerer: the receipt is refused later, with nothing built for it. */
	if (rc == HEGN_ERR_NOT_FOUND ||
	    (rc == 0 && store_receipt_get(tx, id, answerer->name, &old, NULL) == 0) ||
	    (rc == 0 && store_delivery_get(tx, id, answerer->name, 0, &d, NULL) != 0)) {
		why_clear(why);
		rc = 0;
		goto out;
	}
	if (rc != 0 || (rc = store_message_get(tx, id, 1, &m, why)) != 0)
		goto out;
	store_rollback(tx);
	tx = NULL;
	/* An Acknowledgement is never acknowledged, and hegn's never gets a medcom row. */
	if ((to = party_find(r->parties, m.sender)) == NULL ||
	    strcmp(m.kind, MEDCOM_ACK_KIND) == 0)
		goto out;
	if (their != NULL && (medcom_party(r, "", medcom_receiver_sor(their),
	    medcom_receiver_gln(their), &named, NULL) != 0 || named != to)) {
		rc = why_set(why, HEGN_ERR_INVALID, "MessageHeader.destination.receiver: (SOR %s, "
		    "GLN %s) is not %s, who sent %s", medcom_receiver_sor(their),
		    medcom_receiver_gln(their), to->name, id);
		goto out;
	}
	a = xcalloc(1, sizeof(*a));
	a->from = answerer;
	a->cp.to = to;
	a->cp.form = "a MedCom Acknowledgement";
	snprintf(a->cp.send.rule_id, sizeof(a->cp.send.rule_id), "%s", MEDCOM_ACK_RULE);
	snprintf(a->orig_id, sizeof(a->orig_id), "%s", id);
	memcpy(a->cref, m.citizen_ref, sizeof(a->cref));
	snprintf(a->code, sizeof(a->code), "%s", medcom_ack_code_name(code));
	util_uuid7(util_now_ms(), a->id);
	if (m.signed_der.data == NULL) {
		snprintf(a->skip, sizeof(a->skip),
		    "the original's content was deleted (retention)");
		goto done;
	}
	/* Read back as taken in: the signature was valid then. */
	if (envelope_verify(pki, m.signed_der.data, m.signed_der.len,
	    (time_t)(m.created_ms / 1000), &sig, &w) != 0) {
		snprintf(a->skip, sizeof(a->skip), "the original does not verify now: %s", w.text);
		goto done;
	}
	content = envelope_signed_content(sig, &clen);
	if (medcom_parse(content, clen, &orig, &w) != 0) {
		snprintf(a->skip, sizeof(a->skip), "the original does not parse now: %s", w.text);
		goto done;
	}
	if (!medcom_addressed(r, orig, answerer)) {
		medcom_answer_free(a);
		a = NULL;
		goto out;
	}
	if (their != NULL) {
		/* Their own Acknowledgement goes on as they signed it (non-repudiation). */
		a->theirs = 1;
		snprintf(a->signed_by, sizeof(a->signed_by), "%s", answerer->name);
		a->signed_der.data = xmalloc(their_der->len);
		memcpy(a->signed_der.data, their_der->data, their_der->len);
		a->signed_der.len = their_der->len;
		util_sha256_hex(their_der->data, their_der->len, a->content_sha);
	} else {
		medcom_our_ids(r, answerer, &sor, &gln);
		if (sor == NULL) {
			snprintf(a->skip, sizeof(a->skip),
			    "neither %s nor a visitation party has a valid SOR and GLN",
			    answerer->name);
			goto done;
		}
		if (medcom_ack_build(orig, code, reason, sor, gln, &ack, &w) != 0) {
			snprintf(a->skip, sizeof(a->skip), "%s", w.text);
			goto done;
		}
		signer = signer_has(r->signer, answerer->name) ? answerer->name : GATEWAY_NAME;
		snprintf(a->signed_by, sizeof(a->signed_by), "%s", signer);
		util_sha256_hex(ack.data, ack.len, a->content_sha);
		if ((rc = signer_sign(r->signer, signer, ack.data, ack.len, a->id, &a->signed_der,
		    why)) != 0)
			goto out;
	}
	if (recipient_cert(r, pki, to, &rcert, &w) != 0) {
		snprintf(a->skip, sizeof(a->skip), "%s cannot receive: %s", to->name, w.text);
		goto done;
	}
	if ((rc = envelope_seal(rcert, (enum envelope_cipher)to->conf->cipher, a->signed_der.data,
	    a->signed_der.len, 1, &a->cp.sealed, why)) != 0)
		goto out;
	util_sha256_hex(a->cp.sealed.data, a->cp.sealed.len, a->cp.sealed_sha);
done:
	*out = a;
	a = NULL;
	rc = 0;
out:
	store_rollback(tx);
	medcom_answer_free(a);
	buf_free(&ack, 0);
	medcom_free(orig);
	envelope_signed_free(sig);
	store_receipt_clear(&old);
	store_delivery_clear(&d);
	store_message_clear(&m);
	store_medcom_clear(&row);
	pki_free(pki);
	return rc;
}

/* The Acknowledgement for a hegn receipt: ok for accepted, fatal-error with the reason. */
static int
medcom_answer_prepare(struct relay *r, const struct party *answerer, const char *id,
    int accepted, const char *reason, struct medcom_answer **out, struct why *why)
{
	return medcom_answer_build(r, answerer, id, accepted ? MEDCOM_ACK_OK :
	    MEDCOM_ACK_FATAL_ERROR, reason, NULL, NULL, out, why);
}

/*
 * Store the Acknowledgement a (NULL: none due) as a message from the
 * answerer to the original's sender, in tx: the message, its copy and
 * schedule, the delivery log and the audit entries.  It waits for no
 * receipt: no deadline, no resends.
 */
static int
medcom_answer_store(struct relay *r, struct store_tx *tx, const struct medcom_answer *a,
    int64_t now, struct why *why)
{
	struct store_message sm;
	struct store_schedule sched;
	struct store_event ev;
	struct audit_event ae;
	char detail[256];
	int rc;

	if (a == NULL)
		return 0;
	if (a->skip[0] != '\0') {
		snprintf(detail, sizeof(detail), "no MedCom Acknowledgement to %s: %s",
		    a->cp.to->name, a->skip);
		log_warn("relay: %s for %s (%s)", detail, a->orig_id, a->from->name);
		event_fill(&ev, a->orig_id, a->from->name, "medcom_ack", GATEWAY_NAME, detail, now);
		return store_event_add(tx, &ev, why);
	}
	memset(&sm, 0, sizeof(sm));
	snprintf(sm.id, sizeof(sm.id), "%s", a->id);
	snprintf(sm.sender, sizeof(sm.sender), "%s", a->from->name);
	snprintf(sm.kind, sizeof(sm.kind), "%s", MEDCOM_ACK_KIND);
	memcpy(sm.content_sha256, a->content_sha, sizeof(sm.content_sha256));
	memcpy(sm.citizen_ref, a->cref, sizeof(sm.citizen_ref));
	sm.created_ms = now;
	sm.signed_der = a->signed_der;
	if ((rc = store_message_insert(tx, &sm, why)) != 0)
		return rc;
	snprintf(detail, sizeof(detail), "MedCom Acknowledgement %s answering %s: %s%s", a->code,
	    a->orig_id, a->theirs ? "the recipient's own, as it signed it" :
	    "built from the receipt, signed by ", a->theirs ? "" : a->signed_by);
	event_fill(&ev, a->id, NULL, "submitted", a->from->name, detail, now);
	if ((rc = store_event_add(tx, &ev, why)) != 0)
		return rc;
	snprintf(detail, sizeof(detail), "MedCom Acknowledgement %s to %s for %s", a->code,
	    a->cp.to->name, a->orig_id);
	audit_fill(&ae, "message.submit", a->from->name, a->id, a->cref, "allow", MEDCOM_ACK_RULE,
	    detail);
	if ((rc = audit_append(tx, &ae, now, why)) != 0)
		return rc;
	if ((rc = store_copies(r, tx, a->id, a->from->name, a->cref, MSG_KIND_COUNT, 0, 0, &a->cp,
	    1, NULL, now, why)) != 0)
		return rc;
	/* Never acknowledged: no deadline to fall back on, nothing to resend. */
	if ((rc = store_schedule_get(tx, a->id, a->cp.to->name, &sched, why)) != 0)
		return rc;
	sched.deadline_ms = 0;
	sched.next_ms = strcmp(sched.channel, "pull") == 0 ? 0 : now;
	if ((rc = store_schedule_update(tx, &sched, why)) != 0)
		return rc;
	snprintf(detail, sizeof(detail), "MedCom Acknowledgement %s to %s: message %s", a->code,
	    a->cp.to->name, a->id);
	event_fill(&ev, a->orig_id, a->from->name, "medcom_ack", a->from->name, detail, now);
	if ((rc = store_event_add(tx, &ev, why)) != 0)
		return rc;
	log_info("relay: MedCom Acknowledgement %s for %s from %s to %s as %s", a->code,
	    a->orig_id, a->from->name, a->cp.to->name, a->id);
	return 0;
}

static int
medcom_ack_fetch(const struct store_message *m, const struct party *caller,
    struct policy_decision *d)
{
	(void)caller;
	if (strcmp(m->kind, MEDCOM_ACK_KIND) != 0)
		return 0;
	/* Only its addressee has a copy to fetch; it carries no citizen data. */
	memset(d, 0, sizeof(*d));
	d->allow = 1;
	snprintf(d->rule_id, sizeof(d->rule_id), "%s", MEDCOM_ACK_RULE);
	snprintf(d->reason, sizeof(d->reason), "a MedCom Acknowledgement carries no citizen data "
	    "and goes to the sender of the message it answers");
	return 1;
}

/*
 * Web page support: the staff page (gateway/web.c) logs users in, previews
 * what each recipient will get, lists a party's recent messages and shows
 * one message to a staff user, every step audited with the user's name.
 */

void
relay_request_user(const char *name)
{
	snprintf(request_user, sizeof(request_user), "%s", name ? name : "");
}

int
relay_user_login(struct relay *r, const char *username, const char *password, const char *ip,
    char party[65], char role[17], struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_user u;
	struct audit_event ae;
	struct why w = { 0 };
	char reason[64] = "", detail[200], hash[USER_HASH_MAX];
	int64_t now;
	int rc, login, matches;

	party[0] = role[0] = '\0';
	memset(&u, 0, sizeof(u));
	/* The password is checked between two transactions, holding neither (user.h). */
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	rc = user_login_read(tx, username, hash, why);
	store_rollback(tx);
	tx = NULL;
	if (rc != 0)
		return rc;
	matches = user_password_matches(hash, password);
	now = util_now_ms();
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0)
		goto out;
	login = user_login_finish(tx, username, hash, matches, now, &u, reason, &w);
	if (login != 0 && login != HEGN_ERR_UNAUTH) {
		store_rollback(tx);
		rc = why_set(why, login, "%s", w.text);
		goto out;
	}
	snprintf(detail, sizeof(detail), "%s from %s", login == 0 ? "logged in" : reason,
	    ip ? ip : "an unknown address");
	/* A name nobody has is not written to the log: it may be a password typed in the wrong field. */
	relay_request_user(login == 0 || strcmp(reason, "unknown user") != 0 ? username : "");
	audit_fill(&ae, "user.login", login == 0 ? u.party : "web", NULL, NULL,
	    login == 0 ? "ok" : "fail", NULL, detail);
	if (login != 0 && strcmp(reason, "unknown user") != 0) {
		struct store_user known;

		/* The party of a known user who failed, so the log shows whose account it was. */
		if (store_user_get(tx, username, &known, NULL) == 0)
			snprintf(u.party, sizeof(u.party), "%s", known.party);
		sodium_memzero(&known, sizeof(known));
		if (u.party[0] != '\0')
			ae.actor = u.party;
	}
	if ((rc = audit_append(tx, &ae, now, why)) != 0) {
		store_rollback(tx);
		goto out;
	}
	/* The failure count must persist, so a failed login commits too. */
	if ((rc = store_commit(tx, why)) != 0)
		goto out;
	if (login != 0) {
		rc = why_set(why, HEGN_ERR_UNAUTH, "wrong user name or password");
		goto out;
	}
	snprintf(party, 65, "%s", u.party);
	snprintf(role, 17, "%s", u.role);
	rc = 0;
out:
	relay_request_user(NULL);
	sodium_memzero(&u, sizeof(u));
	sodium_memzero(hash, sizeof(hash));
	return rc;
}

int
relay_user_current(struct relay *r, const char *username, const char *party, const char *role,
    struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_user u;
	int rc;

	memset(&u, 0, sizeof(u));
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	rc = store_user_get(tx, username, &u, why);
	if ((rc = store_end_read(&tx, rc, why)) == HEGN_ERR_NOT_FOUND)
		rc = why_set(why, HEGN_ERR_UNAUTH, "the user no longer exists");
	else if (rc == 0 && u.disabled)
		rc = why_set(why, HEGN_ERR_UNAUTH, "the user is disabled");
	else if (rc == 0 && (strcmp(u.party, party) != 0 || strcmp(u.role, role) != 0))
		rc = why_set(why, HEGN_ERR_UNAUTH, "the user's party or role changed");
	sodium_memzero(&u, sizeof(u));
	return rc;
}

int
relay_party_hosted(struct relay *r, const char *party)
{
	return r->signer != NULL && signer_has(r->signer, party);
}

/* A class bit set as a JSON list of names. */
static json_t *
class_array(unsigned mask)
{
	json_t *a = json_array();
	int c;

	for (c = 0; c < CLASS_COUNT; c++)
		if (mask & (1u << c))
			json_array_append_new(a, json_string(message_class_name((enum message_class)c)));
	return a;
}

int
relay_preview(struct relay *r, const struct party *sender, const char *json, size_t len,
    json_t **out, struct why *why)
{
	struct policy *pol = policy_get(r);
	struct message *m = NULL, *min = NULL;
	struct store_tx *tx = NULL;
	struct policy_ctx ctx;
	struct policy_decision dec;
	const struct party *to;
	struct why w = { 0 };
	char cref[65], services[257];
	unsigned keep, removed = 0;
	json_t *rcp;
	int rc;

	*out = NULL;
	if ((rc = message_parse((const uint8_t *)json, len, &r->limits, &m, why)) != 0)
		goto out;
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
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	rc = decide_send(r, pol, tx, sender, to, m, cref, services, &ctx, &dec, why);
	if ((rc = store_end_read(&tx, rc, why)) != 0)
		goto out;
	rcp = json_pack("{s:s, s:s, s:b, s:s, s:s}", "party", to->name, "organisation",
	    to->conf->organisation ? to->conf->organisation : to->name, "allow", dec.allow,
	    "rule", dec.rule_id, "reason", dec.reason);
	if (dec.allow) {
		memset(&ctx, 0, sizeof(ctx));
		ctx.actor_role = sender->role;
		ctx.peer_role = to->role;
		ctx.kind = message_kind(m);
		ctx.direction = policy_direction_to(to->role);
		ctx.approvals = to->conf->services;
		ctx.services = services;
		keep = policy_classes_for(pol, &ctx, NULL);
		if (message_minimise(m, keep, &min, &removed, &w) != 0) {
			/* A class the kind requires would go: the message cannot be sent as it is. */
			json_object_set_new(rcp, "allow", json_false());
			json_object_set_new(rcp, "rule", json_string("minimisation"));
			json_object_set_new(rcp, "reason", json_string(w.text));
		} else {
			json_object_set_new(rcp, "classes",
			    class_array(message_classes(m) & keep));
			json_object_set_new(rcp, "removed", class_array(removed));
			json_object_set_new(rcp, "content", json_deep_copy(message_json(min)));
		}
	}
	*out = json_pack("{s:s, s:[o]}", "kind", message_kind_name(message_kind(m)),
	    "recipients", rcp);
	rc = 0;
out:
	message_free(min);
	message_free(m);
	policy_free(pol);
	return rc;
}

struct party_copies {
	const char *party;
	struct store_outcome *o;
	size_t n, cap;
};

static int
collect_copy(const struct store_outcome *o, void *arg)
{
	struct party_copies *pc = arg;

	if (strcmp(o->sender, pc->party) != 0 && strcmp(o->recipient, pc->party) != 0)
		return 0;
	if (pc->n == pc->cap) {
		pc->cap = pc->cap ? pc->cap * 2 : 64;
		pc->o = xrealloc(pc->o, pc->cap * sizeof(*pc->o));
	}
	pc->o[pc->n++] = *o;
	return 0;
}

int
relay_party_messages(struct relay *r, const char *party, int64_t since_ms, json_t **out,
    struct why *why)
{
	struct party_copies pc = { party, NULL, 0, 0 };
	struct store_tx *tx = NULL;
	struct store_schedule s;
	char when[40];
	json_t *list = NULL, *o;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_outcomes(tx, since_ms, 0, collect_copy, &pc, why)) != 0)
		goto out;
	list = json_array();
	/* Newest first: the outcomes come in submission order. */
	for (i = pc.n; i-- > 0;) {
		const struct store_outcome *c = &pc.o[i];

		util_time_ms_rfc3339(c->created_ms, when);
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", c->message_id,
		    "kind", c->kind, "from", c->sender, "to", c->recipient, "state", c->state,
		    "channel", c->channel, "submitted", when, "submitted_ms",
		    (json_int_t)c->created_ms);
		if (c->acked_ms > 0) {
			util_time_ms_rfc3339(c->acked_ms, when);
			json_object_set_new(o, "acknowledged", json_string(when));
		}
		if (store_schedule_get(tx, c->message_id, c->recipient, &s, NULL) == 0 &&
		    s.deadline_ms > 0) {
			util_time_ms_rfc3339(s.deadline_ms, when);
			json_object_set_new(o, "deadline", json_string(when));
			json_object_set_new(o, "deadline_ms", json_integer(s.deadline_ms));
		}
		json_array_append_new(list, o);
	}
	*out = json_pack("{s:o}", "messages", list);
	list = NULL;
	rc = end_answer(&tx, out, why);
out:
	json_decref(list);
	free(pc.o);
	store_rollback(tx);
	return rc;
}

int
relay_message_view(struct relay *r, const struct party *party, const char *user_role,
    const char *id, json_t **out, struct why *why)
{
	struct pki *pki = pki_get(r);
	struct policy *pol = policy_get(r);
	struct delivery_ctx dc;
	struct store_tx *tx = NULL;
	struct store_message m;
	struct store_delivery d;
	struct policy_ctx ctx;
	struct policy_decision dec;
	struct audit_event ae;
	struct buf content = { 0 };
	enum policy_user_role ur = POLICY_USER_NONE;
	enum assign_state as = ASSIGN_NONE;
	enum message_kind kind;
	char detail[200];
	json_t *j;
	int rc, mine;

	*out = NULL;
	memset(&m, 0, sizeof(m));
	memset(&d, 0, sizeof(d));
	if (!util_valid_id(id)) {
		rc = not_found(why, "");
		goto out;
	}
	if (user_role != NULL && policy_user_role_from_name(user_role, &ur) != 0)
		ur = POLICY_USER_NONE;
	if ((rc = store_begin(r->store, 0, &tx, why)) != 0)
		goto out;
	if ((rc = store_message_get(tx, id, 0, &m, why)) != 0) {
		store_rollback(tx);
		tx = NULL;
		audit_refusal(r, "message.view", party->name, id, NULL, "addressing",
		    "no such message");
		rc = not_found(why, id);
		goto out;
	}
	mine = strcmp(m.sender, party->name) == 0 ||
	    store_delivery_get(tx, id, party->name, 0, &d, NULL) == 0;
	/* A MedCom Acknowledgement is FHIR without citizen data: its status says all it says. */
	if (mine && strcmp(m.kind, MEDCOM_ACK_KIND) == 0) {
		rc = why_set(why, HEGN_ERR_UNSUPPORTED,
		    "%s is a MedCom Acknowledgement: its status shows what it answers", id);
		goto out;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.action = POLICY_VIEW;
	ctx.actor_role = party->role;
	ctx.user_role = ur;
	if (message_kind_from_name(m.kind, &kind) == 0)
		ctx.kind = kind;
	if (party->role == ROLE_PROVIDER &&
	    (rc = assign_state_of(tx, m.citizen_ref, party->name, NULL, &as, NULL, why)) != 0)
		goto out;
	ctx.assignment = policy_assignment_of(as);
	policy_decide(pol, &ctx, &dec);
	store_rollback(tx);
	tx = NULL;
	if (!mine || !dec.allow) {
		audit_refusal(r, "message.view", party->name, id, m.citizen_ref,
		    mine ? dec.rule_id : "addressing",
		    mine ? dec.reason : "not the sender or a recipient");
		rc = mine ? why_set(why, HEGN_ERR_DENIED, "%s (rule %s)", dec.reason, dec.rule_id) :
		    not_found(why, id);
		goto out;
	}
	memset(&dc, 0, sizeof(dc));
	dc.conf = r->conf;
	dc.parties = r->parties;
	dc.pki = pki;
	dc.policy = pol;
	dc.store = r->store;
	if ((rc = delivery_content(&dc, party, id, &content, why)) != 0)
		goto out;
	if ((j = json_loadb((const char *)content.data, content.len, 0, NULL)) == NULL) {
		rc = why_set(why, HEGN_ERR_INTERNAL, "the stored content is not JSON");
		goto out;
	}
	snprintf(detail, sizeof(detail), "%s viewed in the web page", m.kind);
	audit_fill(&ae, "message.view", party->name, id, m.citizen_ref, "allow", dec.rule_id,
	    detail);
	if ((rc = store_begin(r->store, 1, &tx, why)) != 0 ||
	    (rc = audit_append(tx, &ae, util_now_ms(), why)) != 0) {
		json_decref(j);
		goto out;
	}
	rc = store_commit(tx, why);
	tx = NULL;
	if (rc != 0) {
		json_decref(j);
		goto out;
	}
	*out = json_pack("{s:s, s:s, s:s, s:o}", "id", m.id, "kind", m.kind, "from", m.sender,
	    "content", j);
	rc = 0;
out:
	store_rollback(tx);
	buf_free(&content, 1);
	store_delivery_clear(&d);
	store_message_clear(&m);
	policy_free(pol);
	pki_free(pki);
	return rc;
}

int
relay_audit_verify(struct relay *r, FILE *report, struct why *why)
{
	struct buf b = { 0 };
	char *pub = NULL;
	int rc;

	if ((rc = util_read_file(r->conf->audit_pubkey, 4096, &b, why)) != 0)
		return rc;
	pub = xmalloc(b.len + 1);
	memcpy(pub, b.data, b.len);
	pub[b.len] = '\0';
	pub[strcspn(pub, "\r\n")] = '\0';
	rc = audit_verify_store(r->store, pub, report, why);
	free(pub);
	buf_free(&b, 0);
	return rc;
}

/*
 * Privilege separation (docs/PRIVSEP.md): the key process's whole life.  It
 * loads the keys as relay_open does for hegnd and answers the network
 * process, a worker process per socket, until that closes them.
 */
int
relay_keyd_serve(const char *conf_path, const int *fds, size_t n, struct why *why)
{
	struct relay *r = NULL;
	size_t i;
	int rc;

	if ((rc = relay_open(conf_path, RELAY_KEYS, &r, why)) != 0) {
		for (i = 0; i < n; i++)
			close(fds[i]);
		goto out;
	}
	rc = keyd_serve_workers(fds, n, r->signer, r->audit, KEYD_REQUEST_MAX, why);
out:
	relay_close(r);
	return rc;
}

/*
 * Authentication cache (performance, docs/performance.md).
 *
 * A keep-alive client sends its certificate chain once per TLS session but
 * is authenticated on every request; decoding and verifying the chain
 * (X509_verify_cert, the CRLs, the issuers' signatures) took a quarter of
 * hegnd's CPU in the end-to-end benchmark.  A successful verification is
 * remembered for at most AUTH_TTL seconds, never past the leaf's notAfter,
 * and only for the pki it was made with: a reload (new CRLs or anchors)
 * starts afresh, because the entry holds a reference to the pki and must
 * find it current.
 * Failures are never cached.
 */
#define AUTH_SLOTS 256
#define AUTH_TTL 60

struct auth_entry {
	uint8_t key[32];
	struct pki *pki;                /* a reference: the pki the chain was verified with */
	const struct party *party;
	char fingerprint[65];
	int64_t until_ms;
};

/* A recipient's certificate for encryption, as party_encryption_cert chose it. */
struct enc_entry {
	const struct party *party;
	struct pki *pki;                /* a reference, as in auth_entry */
	X509 *cert;                     /* borrowed from the party table */
	int64_t until_ms;
};

struct auth_cache {
	pthread_mutex_t lock;
	struct auth_entry slot[AUTH_SLOTS];
	struct enc_entry enc[AUTH_SLOTS];
};

static pthread_mutex_t auth_cache_create = PTHREAD_MUTEX_INITIALIZER;

static void
auth_cache_free(struct auth_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < AUTH_SLOTS; i++) {
		pki_free(c->slot[i].pki);
		pki_free(c->enc[i].pki);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct auth_cache *
auth_cache_get(struct relay *r)
{
	struct auth_cache *c;

	pthread_mutex_lock(&auth_cache_create);
	if ((c = r->auth_cache) == NULL) {
		c = xcalloc(1, sizeof(*c));
		pthread_mutex_init(&c->lock, NULL);
		r->auth_cache = c;
	}
	pthread_mutex_unlock(&auth_cache_create);
	return c;
}

int
relay_auth_cached(struct relay *r, const uint8_t key[32], const struct party **party,
    char fingerprint[65])
{
	struct auth_cache *c = auth_cache_get(r);
	struct auth_entry *e = &c->slot[key[0]];
	int rc = HEGN_ERR_NOT_FOUND;

	*party = NULL;
	fingerprint[0] = '\0';
	pthread_rwlock_rdlock(&r->pki_lock);
	pthread_mutex_lock(&c->lock);
	if (e->pki != NULL && e->pki == r->pki && sodium_memcmp(e->key, key, 32) == 0 &&
	    util_now_ms() < e->until_ms) {
		*party = e->party;
		memcpy(fingerprint, e->fingerprint, 65);
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	pthread_rwlock_unlock(&r->pki_lock);
	return rc;
}

int
relay_authenticate_key(struct relay *r, const uint8_t key[32], X509 *leaf,
    STACK_OF(X509) *chain, const struct party **party, struct why *why)
{
	struct auth_cache *c = auth_cache_get(r);
	struct auth_entry *e = &c->slot[key[0]];
	struct pki *before = pki_get(r), *old = NULL;
	int64_t ttl = AUTH_TTL;
	int days = 0, secs = 0, rc;

	if ((rc = relay_authenticate(r, leaf, chain, party, why)) != 0)
		goto out;
	if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf)))
		goto out;
	if ((int64_t)days * 86400 + secs < ttl)
		ttl = (int64_t)days * 86400 + secs;
	if (ttl <= 0)
		goto out;
	/* Only when the pki verified with is still the current one (no reload in between). */
	pthread_rwlock_rdlock(&r->pki_lock);
	pthread_mutex_lock(&c->lock);
	if (r->pki == before) {
		old = e->pki;
		memcpy(e->key, key, 32);
		e->pki = before;
		before = NULL;
		e->party = *party;
		pki_fingerprint(leaf, e->fingerprint);
		e->until_ms = util_now_ms() + ttl * 1000;
	}
	pthread_mutex_unlock(&c->lock);
	pthread_rwlock_unlock(&r->pki_lock);
out:
	pki_free(old);
	pki_free(before);
	return rc;
}

/*
 * The recipient's encryption certificate, verified (chain, CRL, key usage)
 * at most AUTH_TTL seconds ago with the same pki, never past its notAfter.
 * Every submission needs it; the verification cost as much as the sealing.
 */
static int
recipient_cert(struct relay *r, struct pki *pki, const struct party *to, X509 **out,
    struct why *why)
{
	struct auth_cache *c = auth_cache_get(r);
	struct enc_entry *e = &c->enc[((uintptr_t)to / sizeof(void *)) % AUTH_SLOTS];
	struct pki *old = NULL;
	int64_t ttl = AUTH_TTL;
	int days = 0, secs = 0, rc;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	if (e->party == to && e->pki == pki && util_now_ms() < e->until_ms)
		*out = e->cert;
	pthread_mutex_unlock(&c->lock);
	if (*out != NULL)
		return 0;
	if ((rc = party_encryption_cert(to, pki, out, why)) != 0)
		return rc;
	if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(*out)))
		return 0;
	if ((int64_t)days * 86400 + secs < ttl)
		ttl = (int64_t)days * 86400 + secs;
	if (ttl <= 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	old = e->pki;
	e->party = to;
	e->pki = pki_ref(pki);
	e->cert = *out;
	e->until_ms = util_now_ms() + ttl * 1000;
	pthread_mutex_unlock(&c->lock);
	pki_free(old);
	return 0;
}
