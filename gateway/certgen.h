/*
 * certgen: make keys, certificates and CRLs that imitate OCES3, for the demo
 * world and for tests.  Everything is done with OpenSSL's C API.
 */
#ifndef HEGN_CERTGEN_H
#define HEGN_CERTGEN_H

#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "err.h"

enum certgen_keytype { CERTGEN_RSA = 0, CERTGEN_EC_P256 };

/* A new key: RSA of bits (3072 for OCES3; tests may use 2048), or P-256. */
int certgen_key(enum certgen_keytype type, int bits, EVP_PKEY **out, struct why *why);

struct certgen_subject {
	const char *cn;          /* commonName */
	const char *org;         /* organizationName */
	const char *cvr;         /* 8 digits: organizationIdentifier NTRDK-<cvr>; NULL for CAs */
	const char *ou;          /* organizationalUnitName, may be NULL */
};

enum certgen_profile {
	CERTGEN_ROOT_CA,      /* self-signed, CA:TRUE, keyCertSign+cRLSign */
	CERTGEN_ISSUING_CA,   /* CA:TRUE pathlen 0, keyCertSign+cRLSign */
	CERTGEN_ORG,          /* organisation: digitalSignature, nonRepudiation, keyEncipherment */
	CERTGEN_SERVER,       /* organisation profile plus serverAuth/clientAuth, SAN IP 127.0.0.1, DNS localhost */
	CERTGEN_SIGN_ONLY,    /* only digitalSignature+nonRepudiation (negative tests) */
};

/*
 * Issue a certificate for key with subject, signed by issuer_key (issuer_cert
 * NULL for self-signed), valid from not_before to not_after, with serial.
 * Certificate signatures are RSASSA-PSS SHA-512 salt 64 when the issuer key
 * is RSA (as OCES3 does), ECDSA-SHA256 otherwise.
 */
int certgen_cert(EVP_PKEY *key, const struct certgen_subject *subject,
    enum certgen_profile profile, X509 *issuer_cert, EVP_PKEY *issuer_key,
    time_t not_before, time_t not_after, uint64_t serial, X509 **out, struct why *why);

/* A CRL from issuer revoking the given serials, valid from now for days. */
int certgen_crl(X509 *issuer_cert, EVP_PKEY *issuer_key, const uint64_t *serials,
    size_t nserials, time_t last_update, int days, X509_CRL **out, struct why *why);

/* Write PEM files (keys unencrypted, mode 0600; certificates and CRLs 0644). */
int certgen_write_key(const char *path, EVP_PKEY *key, struct why *why);
int certgen_write_cert(const char *path, X509 *cert, struct why *why);
int certgen_write_certs(const char *path, X509 *const *certs, size_t n, struct why *why);
int certgen_write_crl(const char *path, X509_CRL *crl, struct why *why);

#endif
