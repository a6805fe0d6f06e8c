/*
 * testhostile: hostile CMS objects and certificates for the tests of issue 8
 * item 5 (test-only; not part of libgateway).
 *
 * Attribute faults: a valid SignedData whose signed attributes are then
 * changed and signed again, so the signature is valid over the faulty set and
 * only the attribute check can refuse it.  They are the faults of OpenSSL's
 * must-reject test objects (test/recipes/80-test_cms_data/bad_signtime_attr.cms,
 * no_ct_attr.cms, no_md_attr.cms, ct_multiple_attr.cms) and their neighbours,
 * made here with our own test PKI, so the fault is the object's only defect.
 */
#ifndef HEGN_TESTHOSTILE_H
#define HEGN_TESTHOSTILE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util.h"

enum testhostile_fault {
	HOSTILE_NONE = 0,          /* attributes re-signed unchanged: must verify */
	HOSTILE_ST_INTEGER,        /* signingTime is an INTEGER */
	HOSTILE_ST_OCTETS,         /* signingTime is an OCTET STRING */
	HOSTILE_ST_GARBLED,        /* a UTCTime that is no time */
	HOSTILE_ST_TWO_VALUES,     /* one signingTime, two UTCTime values */
	HOSTILE_ST_TWO_ATTRS,      /* two signingTime attributes */
	HOSTILE_CT_MISSING,        /* no contentType */
	HOSTILE_CT_TWO_VALUES,
	HOSTILE_CT_TWO_ATTRS,
	HOSTILE_CT_MISMATCH,       /* id-signedData while the content is id-data */
	HOSTILE_CT_NOT_OID,        /* an OCTET STRING */
	HOSTILE_MD_MISSING,        /* no messageDigest */
	HOSTILE_MD_TWO_VALUES,
	HOSTILE_MD_TWO_ATTRS,
	HOSTILE_MD_WRONG,          /* the SHA-256 of other content */
	HOSTILE_MD_SHORT,          /* 20 bytes */
	HOSTILE_MD_NOT_OCTETS,     /* an INTEGER */
	HOSTILE_ATTR_NO_VALUE,     /* an extra attribute with an empty SET of values */
	HOSTILE_ATTRS_EMPTY,       /* signed attributes present, but an empty SET */
	HOSTILE_NFAULTS
};

struct testhostile_case {
	enum testhostile_fault fault;
	const char *name;          /* file-name friendly */
	const char *want;          /* a phrase the refusal's reason must hold */
};

/* Every fault, HOSTILE_NONE first; HOSTILE_NFAULTS entries. */
extern const struct testhostile_case testhostile_cases[];

/*
 * Sign content with key and cert (chain may be NULL; PKCS#1 v1.5 for RSA),
 * apply fault to the signed attributes and sign them again.  Returns 0 and
 * the DER in *out, or -1.
 */
int testhostile_attrs(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    const uint8_t *content, size_t len, enum testhostile_fault fault,
    struct buf *out);

/*
 * 1 when der's one SignerInfo signature is valid over its signed attributes
 * for cert's key (as OpenSSL encodes them for verification), 0 when not, -1
 * when der cannot be read.  Tells that an object is refused for its
 * attributes, not for its signature.
 */
int testhostile_sig_valid(const struct buf *der, X509 *cert);

/* A copy of a valid SignedData der carrying extra as additional certificates; 0 or -1. */
int testhostile_add_certs(const struct buf *der, STACK_OF(X509) *extra, struct buf *out);

/*
 * Malformed DER made from a valid object: each call with i = 0, 1, ... makes
 * the i-th variant of in and returns 0, its name in *name and a phrase for
 * tests; 1 past the last; -1 on failure.
 */
int testhostile_malformed(const struct buf *in, int i, const char **name,
    struct buf *out);

/*
 * A chain of n CA certificates below issuer (each signed by the one before,
 * P-256 keys, no path length limit); the last's key in *last_key.  NULL on
 * failure.
 */
STACK_OF(X509) *testhostile_ca_chain(X509 *issuer, EVP_PKEY *issuer_key, int n,
    EVP_PKEY **last_key);

/*
 * A certificate for key named cn, issued by issuer/issuer_key (NULL:
 * self-signed), end entity with keyUsage ku (a string for the
 * configuration, e.g. "keyEncipherment"; NULL: none) or, when ca, a CA.
 */
X509 *testhostile_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key,
    const char *cn, long serial, const char *ku, int ca);

/*
 * A CA certificate for key named cn whose issuer is its own subject, but
 * signed by signing_key: self-issued, not self-signed, and without an
 * authorityKeyIdentifier.  NULL on failure.
 */
X509 *testhostile_self_issued(const char *cn, EVP_PKEY *key, EVP_PKEY *signing_key);

#endif
