/*
 * checkpoint: signed tree heads of the audit log in the C2SP
 * tlog-checkpoint format, signed as C2SP signed notes with Ed25519
 * (libsodium), so the Go note package and other transparency-log tooling
 * read and verify them.
 *
 *   <origin>\n
 *   <tree size, decimal>\n
 *   <base64 root hash>\n
 *   \n
 *   — <key name> <base64(key hash || Ed25519 signature)>\n
 *
 * Key strings are those of golang.org/x/mod/sumdb/note:
 *   signer   PRIVATE+KEY+<name>+<8 hex key hash>+<base64(0x01 || seed)>
 *   verifier <name>+<8 hex key hash>+<base64(0x01 || public key)>
 * with key hash = SHA-256(name || 0x0A || 0x01 || public key)[0:4].
 *
 * Errors: HEGN_ERR_CONFIG for an unusable key string, HEGN_ERR_INVALID for
 * malformed checkpoint text or arguments, HEGN_ERR_SIGNATURE when no line
 * carries a valid signature by the verifier's key (or one carries a bad
 * one).  See docs/audit.md.
 */
#ifndef HEGN_CHECKPOINT_H
#define HEGN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Limits on what checkpoint_verify reads. */
#define CHECKPOINT_MAX_LEN 65536
#define CHECKPOINT_MAX_SIGS 100

/*
 * Generate a new Ed25519 key named name (non-empty, printable ASCII without
 * space or '+', at most 255 bytes) into *signer_key (secret: release with
 * checkpoint_key_free) and *verifier_key (public; free()).  Returns 0,
 * HEGN_ERR_INVALID for a bad name, or HEGN_ERR_CRYPTO.
 */
int checkpoint_keygen(const char *name, char **signer_key, char **verifier_key,
    struct why *why);

/*
 * The verifier key string matching signer_key into *verifier_key (free()).
 * Returns 0 or HEGN_ERR_CONFIG (malformed key, wrong key hash).
 */
int checkpoint_verifier_key(const char *signer_key, char **verifier_key,
    struct why *why);

/* Wipe and free a signer key string; accepts NULL. */
void checkpoint_key_free(char *signer_key);

/*
 * Sign the checkpoint (origin, size, root) with signer_key into *out, a
 * NUL-terminated signed note (free()).  origin must be non-empty valid UTF-8
 * without control characters.  Returns 0, HEGN_ERR_CONFIG (bad key),
 * HEGN_ERR_INVALID (bad origin) or HEGN_ERR_CRYPTO.
 */
int checkpoint_sign(const char *signer_key, const char *origin, uint64_t size,
    const uint8_t root[32], char **out, struct why *why);

/*
 * Verify the signed checkpoint text (len bytes) against verifier_key and
 * return its origin (*origin, free()), tree size and root hash.  Extension
 * lines after the root are allowed and ignored; signature lines by other
 * keys are parsed and ignored.  Outputs are reset first and set only on
 * success.  Returns 0, HEGN_ERR_CONFIG (bad verifier key), HEGN_ERR_INVALID,
 * HEGN_ERR_TOO_LARGE or HEGN_ERR_SIGNATURE.
 */
int checkpoint_verify(const char *verifier_key, const char *text, size_t len,
    char **origin, uint64_t *size, uint8_t root[32], struct why *why);

#endif
