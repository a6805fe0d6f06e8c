/*
 * envelope: CMS SignedData and (Auth)EnvelopedData, the wire format of every
 * message.  See docs/formats.md for what exactly is signed and encrypted.
 *
 * Only public-key operations are used directly by the rest of the gateway
 * (seal, verify); sign and open take a private key and are called only by
 * signer.c, which owns the keys.
 */
#ifndef HEGN_ENVELOPE_H
#define HEGN_ENVELOPE_H

#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "err.h"
#include "pki.h"
#include "util.h"

enum envelope_cipher {
	ENVELOPE_AES256_GCM = 0, /* AuthEnvelopedData (RFC 5083/5084) */
	ENVELOPE_AES256_CBC,     /* EnvelopedData, for recipients that cannot do GCM */
};

enum envelope_padding {
	ENVELOPE_PKCS1 = 0,      /* RSA PKCS#1 v1.5 with SHA-256 */
	ENVELOPE_PSS,            /* RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 */
};

/* Size limit for any CMS object hegn parses (bytes). */
#define ENVELOPE_MAX_DER (64u * 1024 * 1024)

/*
 * Most certificates a SignedData may carry: a signer's chain is two or
 * three; thousands would only make chain building work for the sender.
 */
#define ENVELOPE_MAX_CERTS 32

/*
 * CMS SignedData with the content attached, SHA-256, signed attributes
 * content type, message digest, signing time and (when content_id is not
 * NULL) the ESS contentIdentifier attribute (RFC 2634) holding content_id.
 * The signer's certificate and chain (may be NULL) are included.  padding is
 * ignored for EC keys.  Returns 0 and the DER in *out, or an error.
 */
int envelope_sign(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    enum envelope_padding padding, const uint8_t *content, size_t len,
    const char *content_id, struct buf *out, struct why *why);

/*
 * envelope_sign in two halves, so that the private key needs only the
 * content's SHA-256 (docs/PRIVSEP.md).  envelope_sign_digest signs the
 * attributes for content whose SHA-256 is digest and returns the
 * SignedData without content or certificates; envelope_attach checks that
 * such a SignedData has exactly one signer, cert, over id-data with digest
 * (content's SHA-256, as computed for envelope_sign_digest), and returns it
 * with content, cert and chain added: the DER envelope_sign would return.
 */
int envelope_sign_digest(EVP_PKEY *key, X509 *cert, enum envelope_padding padding,
    const uint8_t digest[32], const char *content_id, struct buf *out, struct why *why);
int envelope_attach(const uint8_t *detached, size_t dlen, X509 *cert, STACK_OF(X509) *chain,
    const uint8_t *content, size_t len, const uint8_t digest[32], struct buf *out,
    struct why *why);

/*
 * Encrypt content for recipient with RSA-OAEP (SHA-256) key transport:
 * AuthEnvelopedData with AES-256-GCM, or EnvelopedData with AES-256-CBC.
 * When inner_signed is set the encrypted content type is id-signedData
 * (content is a SignedData DER), else id-data.  Returns 0 and the DER.
 */
int envelope_seal(X509 *recipient, enum envelope_cipher cipher,
    const uint8_t *content, size_t len, int inner_signed, struct buf *out,
    struct why *why);

/*
 * Decrypt an EnvelopedData or AuthEnvelopedData DER with key and cert.
 * Returns 0 and the content (caller wipes and frees), HEGN_ERR_INVALID for
 * something that is not such a CMS object, HEGN_ERR_DECRYPT when it is not
 * for this key or fails its integrity check.
 */
int envelope_open(EVP_PKEY *key, X509 *cert, const uint8_t *der, size_t len,
    struct buf *out, struct why *why);

/* A verified SignedData: its content and who signed it. */
struct envelope_signed;

/*
 * Verify a SignedData DER with exactly one signer and at most
 * ENVELOPE_MAX_CERTS certificates: the signed attributes (RFC 5652 section
 * 11: one contentType equal to the eContentType, one messageDigest, at most
 * one well-formed signingTime), the signature over the attached content, the
 * signer certificate's chain to p's anchors with CRLs, key usage for signing,
 * at time at (0: now).  Returns 0 and *out; HEGN_ERR_INVALID for malformed
 * input, HEGN_ERR_SIGNATURE when the signature does not verify,
 * HEGN_ERR_CERT when the signer's certificate is not valid.
 */
int envelope_verify(const struct pki *p, const uint8_t *der, size_t len,
    time_t at, struct envelope_signed **out, struct why *why);

/* Verify a SignedData whose content is detached (content given separately). */
int envelope_verify_detached(const struct pki *p, const uint8_t *der, size_t len,
    const uint8_t *content, size_t content_len, time_t at,
    struct envelope_signed **out, struct why *why);

/* Flags for envelope_verify_opts(). */
#define ENVELOPE_VERIFY_LEGACY_SHA1 0x01 /* accept SHA-1 digests: conformance tests only */
#define ENVELOPE_VERIFY_WHOLE       0x02 /* let OpenSSL decode the embedded certificates too */

/*
 * envelope_verify() with flags; content is the detached content, or NULL
 * when the content is attached (a detached SignedData is then refused).
 */
int envelope_verify_opts(const struct pki *p, const uint8_t *der, size_t len,
    const uint8_t *content, size_t content_len, time_t at, int flags,
    struct envelope_signed **out, struct why *why);

/* The signed content (borrowed, valid until envelope_signed_free). */
const uint8_t *envelope_signed_content(const struct envelope_signed *s, size_t *len);
/* The signer's certificate (borrowed). */
X509 *envelope_signed_signer(const struct envelope_signed *s);
/* The contentIdentifier attribute as a string, or NULL when absent. */
const char *envelope_signed_content_id(const struct envelope_signed *s);
/* The signingTime attribute, or 0 when absent. */
time_t envelope_signed_time(const struct envelope_signed *s);
void envelope_signed_free(struct envelope_signed *s);

/* True when der starts like a CMS ContentInfo of type SignedData / (Auth)EnvelopedData. */
int envelope_is_signed(const uint8_t *der, size_t len);
int envelope_is_enveloped(const uint8_t *der, size_t len);

#endif
