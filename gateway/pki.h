/*
 * pki: trust anchors, intermediates, CRLs and certificate validation.
 *
 * One struct pki is loaded at start (and on reload) and shared read-only by
 * every thread; validation never touches the file system.
 */
#ifndef HEGN_PKI_H
#define HEGN_PKI_H

#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "err.h"

struct pki;

/* What a certificate is being validated for; each adds key-usage checks. */
enum pki_purpose {
	PKI_PURPOSE_ANY = 0,
	PKI_PURPOSE_SIGN,        /* digitalSignature or nonRepudiation */
	PKI_PURPOSE_ENCRYPT,     /* keyEncipherment */
	PKI_PURPOSE_TLS_CLIENT,  /* digitalSignature */
	PKI_PURPOSE_TLS_SERVER,  /* digitalSignature or keyEncipherment */
};

/* Flags for pki_load(). */
#define PKI_CRL_CHECK   0x01 /* require a valid CRL for every certificate in the chain */
#define PKI_STRICT      0x02 /* X509_V_FLAG_X509_STRICT */

/*
 * Load trust anchors (PEM file, one or more certificates), optional
 * intermediates (PEM, may be NULL) and optional CRLs (PEM, may be NULL).
 * Returns 0 and *out, or HEGN_ERR_CONFIG with why naming the file.
 */
int pki_load(const char *anchors, const char *chain, const char *crls, int flags,
    struct pki **out, struct why *why);

/* Build a pki from objects already in memory (tests, PKITS); copies references. */
int pki_from_objects(STACK_OF(X509) *anchors, STACK_OF(X509) *chain,
    STACK_OF(X509_CRL) *crls, int flags, struct pki **out, struct why *why);

void pki_free(struct pki *p);

/* Take one more reference to p (it is freed by the last pki_free). */
struct pki *pki_ref(struct pki *p);

/*
 * Validate cert for purpose at time at (0 means now), with untrusted extra
 * certificates (may be NULL) besides the configured intermediates.  Returns
 * 0, or HEGN_ERR_CERT with why naming the certificate's subject and the
 * reason ("expired on 2026-03-01", "revoked", "unknown issuer", ...).
 */
int pki_verify(const struct pki *p, X509 *cert, STACK_OF(X509) *untrusted,
    enum pki_purpose purpose, time_t at, struct why *why);

/*
 * A pki_verify() as of now (at 0) that passed is kept for at most 60 seconds,
 * never past a notAfter of its chain or the CRLs' earliest nextUpdate; the
 * cache belongs to the pki, so a reload starts with none.  Refusals are never
 * kept.  pki_set_cache_ttl() changes the 60 seconds (0: keep nothing) and
 * forgets what is kept; pki_cache_stats() counts lookups.
 */
struct pki_cache_stats {
	uint64_t hits, misses, stored;
};
void pki_set_cache_ttl(struct pki *p, int seconds);
void pki_cache_stats(const struct pki *p, struct pki_cache_stats *out);

/*
 * Validation with explicit RFC 5280 policy inputs, for conformance testing:
 * policies is a comma-separated list of OIDs (NULL: anyPolicy).
 */
struct pki_policy_opts {
	const char *policies;
	int require_explicit_policy;
	int inhibit_policy_mapping;
	int inhibit_any_policy;
};
int pki_verify_policy(const struct pki *p, X509 *cert, STACK_OF(X509) *untrusted,
    const struct pki_policy_opts *opts, time_t at, struct why *why);

/* A new X509_STORE with the anchors, intermediates and CRLs (for CMS_verify); NULL on failure. */
X509_STORE *pki_new_store(const struct pki *p);

/* The intermediates of p (borrowed; may be empty, never NULL). */
STACK_OF(X509) *pki_chain(const struct pki *p);

/* Lower-case hex SHA-256 of cert's DER into out. */
void pki_fingerprint(X509 *cert, char out[65]);

/* The subject as a one-line RFC 2253 string; caller frees with free(). */
char *pki_subject(X509 *cert);

/*
 * The organisation's CVR number from the subject: organizationIdentifier
 * "NTRDK-<CVR>" (OCES3) or serialNumber "CVR:<CVR>-..." (OCES2).  Writes 8
 * digits to out and returns 0, or HEGN_ERR_INVALID.
 */
int pki_cert_cvr(X509 *cert, char out[9]);

/* Load a single certificate / all certificates / a private key from a PEM file. */
int pki_load_cert(const char *path, X509 **out, struct why *why);
int pki_load_certs(const char *path, STACK_OF(X509) **out, struct why *why);
int pki_load_key(const char *path, EVP_PKEY **out, struct why *why);

/* Parse one DER certificate; HEGN_ERR_INVALID when it is not one. */
int pki_cert_from_der(const uint8_t *der, size_t len, X509 **out, struct why *why);

/*
 * The same, kept in p by the SHA-256 of der, so that a certificate seen
 * again is not decoded again (a parse, not a trust decision).  *out holds a
 * reference of its own; the caller frees it.  p NULL: no cache.
 */
int pki_cert_from_der_cached(const struct pki *p, const uint8_t *der, size_t len, X509 **out,
    struct why *why);
void pki_cert_cache_stats(const struct pki *p, uint64_t *hits, uint64_t *misses);

#endif
