/*
 * relay: the gateway's operations, independent of HTTP.
 *
 * One struct relay holds what every request shares, loaded once: the
 * configuration, the trust store, the registered parties, the keys (behind
 * signer) and the store.  The HTTP API, the web page and the command line
 * all call these functions; each returns 0 or a HEGN_ERR_* code with a
 * reason that is safe to show the caller (no personal data).
 */
#ifndef HEGN_RELAY_H
#define HEGN_RELAY_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "conf.h"
#include "err.h"
#include "party.h"
#include "pki.h"
#include "util.h"

struct relay;

/* What relay_open loads. */
#define RELAY_KEYS  0x01   /* load private keys (hegnd); the CLI's read-only commands do not */
#define RELAY_STORE 0x02   /* open the store */
#define RELAY_EXISTING 0x04 /* ... only if the database exists (tools that read it) */
/*
 * ... beside a running hegnd (the hegn command): every transaction syncs
 * what it sees (store_sync_snapshots), and a database at an older schema is
 * refused, not migrated (STORE_NO_MIGRATE)
 */
#define RELAY_BESIDE 0x08
/* run the delivery scheduler: hold the store's scheduler lock (relay_scheduler_lock_path) */
#define RELAY_SCHEDULER 0x10

/*
 * The file next to the database whose lock (flock) the one delivery
 * scheduler of a store holds: hegnd for as long as it runs, `hegn deliver`
 * for its pass.  "<database>-scheduler".
 */
void relay_scheduler_lock_path(const char *store_location, char *out, size_t size);

/* Load conf_path and what flags ask for; 0 and *out, or an error naming the file. */
int relay_open(const char *conf_path, int flags, struct relay **out, struct why *why);
void relay_close(struct relay *r);

const struct conf *relay_conf(const struct relay *r);
const struct pki *relay_pki(const struct relay *r);
const struct party_table *relay_parties(const struct relay *r);

/*
 * Reload the trust store, CRLs and policies (SIGHUP).  Requests in flight
 * finish with what they started with.  On failure the old ones stay and why
 * says what is wrong.  The reload is recorded in the audit log.
 */
int relay_reload(struct relay *r, struct why *why);

/* Record a gateway event (start, stop, reload) in the audit log. */
int relay_audit_gateway(struct relay *r, const char *action, const char *detail,
    struct why *why);

/*
 * Record every registered party and certificate in the audit log (at start
 * and after a reload), so changes to them show between two starts.
 */
int relay_audit_parties(struct relay *r, struct why *why);

/*
 * Housekeeping, called about once a second by hegnd: checkpoint the audit
 * log when checkpoint_interval has passed (or always when force is set) and
 * apply the retention period.  0 or an error (logged by the caller).
 */
int relay_tick(struct relay *r, int force, struct why *why);

/*
 * Check a configuration for hegnd -t: every file, permission, key and
 * certificate.  Problems go to report, one per line; returns the number of
 * errors (warnings, such as a registered party's expired certificate, do not
 * count).
 */
int relay_check(const char *conf_path, FILE *report);

/*
 * Map a TLS client certificate chain (leaf first) to a party: the chain must
 * verify for TLS client use and the leaf must be registered.  Returns 0 and
 * a borrowed *party, or HEGN_ERR_UNAUTH.
 */
int relay_authenticate(struct relay *r, X509 *leaf, STACK_OF(X509) *chain,
    const struct party **party, struct why *why);

/*
 * Submit a message.  caller is the TLS-authenticated party or NULL.
 * content_type is "application/json" or "application/pkcs7-mime".  On
 * success *response is {"id", "state", "recipients"} and *created is 1 for a
 * new message, 0 for an idempotent repeat.  Durable before it returns.
 */
int relay_submit(struct relay *r, const struct party *caller, const char *content_type,
    const uint8_t *body, size_t len, json_t **response, int *created, struct why *why);

/*
 * relay_submit with the body in the caller's buffer, which it wipes and
 * frees as soon as it has read the message from it (a sealed body: as soon
 * as it is decrypted), so that a large body is not held through verifying,
 * signing and sealing.  The caller frees what is left.
 */
int relay_submit_buf(struct relay *r, const struct party *caller, const char *content_type,
    struct buf *body, json_t **response, int *created, struct why *why);

/* The caller's undelivered messages after cursor: {"messages": [...], "next": "..."}. */
int relay_inbox(struct relay *r, const struct party *caller, const char *after,
    const char *limit, json_t **out, struct why *why);

/*
 * The message id sealed for caller (a recipient), in *out to be read in
 * pieces.  Records the first fetch.  HEGN_ERR_NOT_FOUND for anything the
 * caller may not see.  The first piece is read in the fetch's own
 * transaction, each later one in a read transaction of its own, so a fetch
 * holds at most RELAY_SEALED_PIECE bytes of the copy however large it is.
 */
#define RELAY_SEALED_PIECE (1024 * 1024)
struct relay_sealed;
int relay_fetch(struct relay *r, const struct party *caller, const char *id,
    struct relay_sealed **out, struct why *why);
/* The whole copy's length in bytes and its hex SHA-256. */
uint64_t relay_sealed_size(const struct relay_sealed *s);
const char *relay_sealed_sha256(const struct relay_sealed *s);
/*
 * Up to n bytes from offset into out (*got of them, 0 at the end).  A copy
 * replaced since the fetch (its SHA-256 changed) is HEGN_ERR_NOT_FOUND.
 */
int relay_sealed_read(struct relay_sealed *s, uint64_t offset, uint8_t *out, size_t n,
    size_t *got, struct why *why);
void relay_sealed_free(struct relay_sealed *s);

/* True when caller sent message id (no side effects, not audited). */
int relay_is_sender(struct relay *r, const struct party *caller, const char *id);

/* True when caller has a copy of message id (no side effects, not audited). */
int relay_is_recipient(struct relay *r, const struct party *caller, const char *id);

/* The status JSON of id for caller (sender or recipient; NULL: an administrator). */
int relay_status(struct relay *r, const struct party *caller, const char *id,
    json_t **out, struct why *why);

/*
 * Take a signed receipt for id (NULL: the id the receipt names, for
 * receipts a channel collected); caller may be NULL (the signature
 * authenticates).
 */
int relay_receipt(struct relay *r, const struct party *caller, const char *id,
    const uint8_t *body, size_t len, json_t **out, struct why *why);

/*
 * One pass of the delivery scheduler at now_ms (docs/delivery.md); *acted
 * counts the copies handled.
 */
int relay_deliver(struct relay *r, int64_t now_ms, int *acted, struct why *why);

/*
 * Staff record that copies of message id went by fax, phone or post
 * (recipient NULL: every copy not yet acknowledged), with the reason.
 */
int relay_fallback(struct relay *r, const char *actor, const char *id, const char *recipient,
    const char *channel, const char *reason, json_t **out, struct why *why);

/*
 * Register communication that went outside hegn entirely, so the
 * electronic share covers all of it: {"channel": "fax|phone|post", "party":
 * P, "kind": K or "other", "direction": "outbound|inbound", "reason": ...,
 * "at": RFC 3339 (optional)}.
 */
int relay_external(struct relay *r, const char *actor, const json_t *req, json_t **out,
    struct why *why);

/* The staff user role ("caseworker", ...; NULL: none) of the current request (this thread only). */
void relay_request_user_role(const char *role);
/*
 * The authentication cache: key is the SHA-256 over the client's chain as
 * sent (the caller's choice of encoding, the same for both calls).
 * relay_auth_cached gives the party and leaf fingerprint of a chain that
 * relay_authenticate_key accepted within the last minute with the current
 * pki, or HEGN_ERR_NOT_FOUND; relay_authenticate_key is relay_authenticate
 * and, on success, remembers the chain under key.
 */
int relay_auth_cached(struct relay *r, const uint8_t key[32], const struct party **party,
    char fingerprint[65]);
int relay_authenticate_key(struct relay *r, const uint8_t key[32], X509 *leaf,
    STACK_OF(X509) *chain, const struct party **party, struct why *why);

/* The certificate fingerprint the current request authenticated with (this thread only). */
void relay_request_cert(const char *fingerprint);

/* The store (borrowed), for the command line's audit tools. */
struct store *relay_store(struct relay *r);

/*
 * Print the decision for PARTY as sending KIND to TO about the citizen with
 * cpr (as `hegn policy check` shows it: allow or deny, the rule, the reason
 * and the classes TO would get).  0 for allow, HEGN_ERR_DENIED for deny.
 */
int relay_policy_check(struct relay *r, const char *as, const char *kind, const char *to,
    const char *cpr, FILE *out, struct why *why);

/* Staff management of assignments; actor names who did it (audited). */
int relay_assign_add(struct relay *r, const char *actor, const char *cpr, const char *provider,
    const char *services, const char *from, const char *to, struct why *why);
int relay_assign_end(struct relay *r, const char *actor, const char *cpr, const char *provider,
    const char *services, const char *date, const char *reason, struct why *why);
/* The assignments for cpr (NULL: all) as JSON; the CPR never appears in it. */
int relay_assign_list(struct relay *r, const char *cpr, const char *provider, json_t **out,
    struct why *why);

/* Users (audited). */
int relay_user_add(struct relay *r, const char *actor, const char *username, const char *party,
    const char *role, const char *password, struct why *why);
int relay_user_disable(struct relay *r, const char *actor, const char *username, int disabled,
    struct why *why);
int relay_user_list(struct relay *r, json_t **out, struct why *why);

/*
 * Who accessed the citizen's data, when and under which rule, denied
 * attempts included: {"citizen": "<keyed hash>", "entries": [...]}.
 * caller must be an auditor (or NULL: the command line).  The query itself
 * is audited.
 */
int relay_audit_query(struct relay *r, const struct party *caller, const char *actor,
    const char *cpr, int64_t from_ms, int64_t to_ms, json_t **out, struct why *why);

/*
 * MedCom (issue 7): relay_submit takes application/fhir+json from a hosted
 * party and sealed FHIR Bundles too.  Its answer (on success, and on a
 * refusal when *response is set) then carries the MedCom Acknowledgement
 * as the string member RELAY_MEDCOM_ACK, which the HTTP layer sends as the
 * body (application/fhir+json), byte for byte.
 */
#define RELAY_MEDCOM_ACK "medcom_acknowledgement"


/*
 * Web page support (gateway/web.c).
 */

/* The staff user behind the current request (this thread only; NULL: none), named in audit entries. */
void relay_request_user(const char *name);

/*
 * Log a staff user in (user_login: Argon2id, lockout) and record the
 * attempt as "user.login" with outcome ok or fail and the real reason.
 * 0 with the user's party and role, or HEGN_ERR_UNAUTH ("wrong user name
 * or password") for every kind of failure.
 */
int relay_user_login(struct relay *r, const char *username, const char *password, const char *ip,
    char party[65], char role[17], struct why *why);

/*
 * Whether a staff user logged in as party and role may still act: the user
 * exists, is not disabled, and has that party and role.  0, HEGN_ERR_UNAUTH
 * with the reason (never the user's name), or the store's error.  The web
 * page asks on every request, so `hegn user disable` ends a session at the
 * user's next click, not when it expires.
 */
int relay_user_current(struct relay *r, const char *username, const char *party,
    const char *role, struct why *why);

/* True when hegn holds the party's key (it may send JSON for it). */
int relay_party_hosted(struct relay *r, const char *party);

/*
 * What each recipient would get if sender submitted the JSON message now:
 * {"kind", "recipients": [{"party", "organisation", "allow", "rule",
 * "reason", "classes", "removed", "content"}]}; content is the minimised
 * message.  Nothing is stored.  HEGN_ERR_INVALID for a message that does
 * not parse (why names the field).
 */
int relay_preview(struct relay *r, const struct party *sender, const char *json, size_t len,
    json_t **out, struct why *why);

/*
 * The copies party sent or received since since_ms, newest first:
 * {"messages": [{"id", "kind", "from", "to", "state", "channel", "submitted",
 * "acknowledged", "deadline"}]}; no citizen data.
 */
int relay_party_messages(struct relay *r, const char *party, int64_t since_ms, json_t **out,
    struct why *why);

/*
 * Show message id to a staff user of party (user_role: "dispatcher", ...):
 * the sender's signed content, minimised for party, as {"id", "kind",
 * "from", "content"}.  The view is decided by policy (action view) and
 * audited as "message.view" (with the user set by relay_request_user).
 * HEGN_ERR_NOT_FOUND for a message that is not the party's.
 */
int relay_message_view(struct relay *r, const struct party *party, const char *user_role,
    const char *id, json_t **out, struct why *why);

/* Verify the audit log with the configured public key; the report goes to report. */
int relay_audit_verify(struct relay *r, FILE *report, struct why *why);

/*
 * Privilege separation (docs/PRIVSEP.md).  relay_open_keyd is relay_open for
 * the network process: with RELAY_KEYS it loads only the certificates, and
 * signing, decryption and checkpoints go to the key process over the nkeyd
 * connections keyd_fds (a pool; taken, closed by relay_close or on failure;
 * none: relay_open).  relay_keyd_serve is the key process: load the keys
 * from conf_path and answer on the n sockets fds, a worker process each,
 * until they close; 0 or the error that ended it.
 */
int relay_open_keyd(const char *conf_path, int flags, const int *keyd_fds, size_t nkeyd,
    struct relay **out, struct why *why);
int relay_keyd_serve(const char *conf_path, const int *fds, size_t n, struct why *why);

#endif
