/*
 * signer: the only holder of private keys.
 *
 * Everything that needs a private key (signing for a hosted party, opening a
 * message sealed to the gateway or to a hosted party) goes through these
 * calls by party name, so the keys can move into a separate process without
 * touching the callers.
 */
#ifndef HEGN_SIGNER_H
#define HEGN_SIGNER_H

#include <stdint.h>

#include <openssl/x509.h>

#include "envelope.h"
#include "err.h"
#include "util.h"

struct signer;

/* A new, empty signer.  Never fails. */
struct signer *signer_new(void);

/*
 * Load key_path and cert_path (PEM) for the party name; chain may be NULL.
 * Refuses a key file that is group- or world-readable, or a key that does not
 * match the certificate.  Returns 0, or HEGN_ERR_CONFIG naming the file.
 */
int signer_load(struct signer *s, const char *name, const char *key_path,
    const char *cert_path, STACK_OF(X509) *chain, enum envelope_padding padding,
    struct why *why);

/* Add an in-memory key for name (references taken); 0 or an error. */
int signer_add(struct signer *s, const char *name, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *chain, enum envelope_padding padding, struct why *why);

/* True when s holds a key for name. */
int signer_has(const struct signer *s, const char *name);

/* The certificate of name (borrowed), or NULL. */
X509 *signer_cert(const struct signer *s, const char *name);

/* CMS SignedData of content by name (see envelope_sign); 0 or an error. */
int signer_sign(struct signer *s, const char *name, const uint8_t *content,
    size_t len, const char *content_id, struct buf *out, struct why *why);

/*
 * The key process's half of signer_sign: envelope_sign_digest with name's
 * key held here, for content whose SHA-256 (len 32) is digest.
 */
int signer_sign_digest(struct signer *s, const char *name, const uint8_t *digest, size_t len,
    const char *content_id, struct buf *out, struct why *why);

/* Open an (Auth)EnvelopedData addressed to name (see envelope_open). */
int signer_decrypt(struct signer *s, const char *name, const uint8_t *der,
    size_t len, struct buf *out, struct why *why);

/*
 * The key process's halves of signer_decrypt (keyproxy.c): name's RSA
 * private-key operation without padding on block, which must be as long as
 * the modulus and below it (out: as long); and the ECDH shared secret of
 * name's EC key with point, an X9.62 encoding of a point on its curve.
 * Only keys held here; HEGN_ERR_INVALID for a block or point that does not
 * fit the key, HEGN_ERR_UNSUPPORTED for the other kind of key.
 */
int signer_rsa_decrypt_raw(struct signer *s, const char *name, const uint8_t *block,
    size_t len, struct buf *out, struct why *why);
int signer_ecdh(struct signer *s, const char *name, const uint8_t *point, size_t len,
    struct buf *out, struct why *why);

/*
 * Privilege separation (docs/PRIVSEP.md): in the network process the keys
 * live in the key process.  After signer_connect, signer_sign and
 * signer_decrypt for a name registered with signer_load_cert are requests
 * to c (borrowed: it must outlive s).
 */
struct keyd_client;
void signer_connect(struct signer *s, struct keyd_client *c);

/*
 * Register name with its certificate only (the key is elsewhere) and the
 * chain its SignedData carry (may be NULL); 0 or HEGN_ERR_CONFIG.
 */
int signer_load_cert(struct signer *s, const char *name, const char *cert_path,
    STACK_OF(X509) *chain, struct why *why);

/*
 * At most workers private-key operations (signing, decryption with a key
 * held here) at once; more wait their turn.  0 or less: the number of online
 * CPUs.  A new signer has no limit.  signer_workers() returns the limit
 * and in *peak (may be NULL) the most that ever ran at once.
 */
void signer_set_workers(struct signer *s, int workers);
int signer_workers(const struct signer *s, int *peak);

/* Free s, wiping its keys; accepts NULL. */
void signer_free(struct signer *s);

#endif
