/*
 * audit: the tamper-evident audit log (docs/audit.md).
 *
 * Every entry is canonical JSON naming who did what, when, to which message,
 * about which citizen (as the keyed hash of the CPR, never the CPR), with the
 * outcome and the rule that decided it.  Entries are written in the same
 * transaction as the event they record, each carries the hash of the one
 * before it, and all of them are the leaves of an RFC 9162 Merkle tree whose
 * heads are signed as C2SP checkpoints with Ed25519.
 */
#ifndef HEGN_AUDIT_H
#define HEGN_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "store.h"

/* One event to record; any string may be NULL (recorded as ""). */
struct audit_event {
	const char *action;      /* "message.submit", "policy.send", "user.login", ... */
	const char *actor;       /* party */
	const char *user;        /* staff user, if any */
	const char *cert;        /* SHA-256 fingerprint of the certificate used */
	const char *message_id;
	const char *citizen_ref; /* keyed hash of the CPR */
	const char *outcome;     /* "ok", "allow", "deny", "fail" */
	const char *rule;        /* the policy rule that decided, if any */
	const char *detail;      /* free text without personal data */
};

/* Append e inside tx (a write transaction) at time at_ms; 0 or a store error. */
int audit_append(struct store_tx *tx, const struct audit_event *e, int64_t at_ms,
    struct why *why);

/* The signing side: the Ed25519 key and the tree head kept in memory. */
struct audit_signer;

/*
 * Load the signer key file (C2SP note signer key; mode 0600) for checkpoints
 * of origin.  0 or HEGN_ERR_CONFIG naming the file.
 */
int audit_signer_load(const char *key_path, const char *origin, struct audit_signer **out,
    struct why *why);
void audit_signer_free(struct audit_signer *a);

/*
 * Privilege separation (docs/PRIVSEP.md): a signer without the key, whose
 * tree heads are signed by fn(arg, ...) (the key process) instead.  Never fails.
 */
typedef int (*audit_sign_fn)(void *arg, uint64_t size, const uint8_t root[32], char **note,
    struct why *why);
struct audit_signer *audit_signer_remote(const char *origin, audit_sign_fn fn, void *arg);

/* Sign the tree head (size, root) as a checkpoint note (*note, free()); 0 or an error. */
int audit_signer_sign(struct audit_signer *a, uint64_t size, const uint8_t root[32],
    char **note, struct why *why);

/*
 * Sign and store a checkpoint over every committed entry when there are new
 * ones since the last (or force is set and there is none at this size).
 * *size gets the size checkpointed (or the current one).  0 or an error.
 */
int audit_checkpoint(struct audit_signer *a, struct store *s, int force, int64_t *size,
    struct why *why);

/*
 * Verify the whole log in s: each entry's leaf hash and link to the one
 * before, its indexed fields against its text, and every checkpoint's root
 * and signature (verifier: the public key string).  Reports to out; returns
 * 0 when everything holds, else HEGN_ERR_SIGNATURE with why naming the
 * first bad entry or checkpoint.
 */
int audit_verify_store(struct store *s, const char *verifier, FILE *out, struct why *why);

/*
 * Proofs an auditor can check with only a signed checkpoint (RFC 9162):
 * that entry seq is in the tree of the latest checkpoint, and that the tree
 * of the checkpoint at old_size is a prefix of the latest one.  Each prints
 * a JSON object with the proof (hex hashes) and the checkpoint note(s), after
 * checking the proof itself.  0, HEGN_ERR_NOT_FOUND (no such entry or
 * checkpoint), or HEGN_ERR_SIGNATURE when the proof does not verify.
 */
int audit_prove_inclusion(struct store *s, int64_t seq, FILE *out, struct why *why);
int audit_prove_consistency(struct store *s, int64_t old_size, FILE *out, struct why *why);

/* Write the log and its checkpoints as JSON lines to f. */
int audit_export(struct store *s, FILE *f, struct why *why);

/* Verify an export file offline with only the public key. */
int audit_verify_export(const char *path, const char *verifier, FILE *out, struct why *why);

/* Generate a key pair: the signer key to key_path (0600), the verifier to pub_path. */
int audit_keygen(const char *name, const char *key_path, const char *pub_path,
    struct why *why);

#endif
