/*
 * pki: trust anchors, intermediates, CRLs and certificate validation.
 *
 * A struct pki is immutable once built: the X509_STORE holds only the trust
 * anchors and CRLs, the intermediates stay in a stack that each verification
 * passes as untrusted, and every verification builds its own X509_STORE_CTX
 * (with its own copy of the verification parameters).  That is what lets many
 * threads verify against one pki at once.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "pki.h"
#include "util.h"
#include "xmalloc.h"

/* Certificate, chain and CRL files are small; a larger one is a mistake. */
#define PKI_FILE_MAX	(16 * 1024 * 1024)

struct vcache;

struct pki {
	atomic_int refs;
	int flags;
	X509_STORE *store;		/* anchors and CRLs */
	STACK_OF(X509) *anchors;
	STACK_OF(X509) *chain;		/* intermediates, never trusted */
	STACK_OF(X509_CRL) *crls;
	struct vcache *vcache;		/* see "Verification cache" at the end */
	int64_t crl_until_ms;		/* the earliest nextUpdate of the CRLs */
	struct dcache *dcache;		/* see "Parsed certificates" at the end */
};

struct dcache;
static struct dcache *dcache_new(void);
static void dcache_free(struct dcache *);

static struct vcache *vcache_new(void);
static void vcache_free(struct vcache *);
static int64_t crls_next_update_ms(STACK_OF(X509_CRL) *);
static int vcache_key(X509 *, STACK_OF(X509) *, enum pki_purpose, uint8_t[32]);
static int vcache_lookup(struct vcache *, const uint8_t[32]);
static void vcache_store(const struct pki *, const uint8_t[32], STACK_OF(X509) *);

/*
 * A printable name for cert in error texts: its commonName, else its whole
 * subject.  Certificates come from outside, so control characters are
 * replaced before the name reaches a log line or an HTTP answer.
 */
static void
cert_name(X509 *cert, char *out, size_t outlen)
{
	X509_NAME *name;
	X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	char *subject = NULL;
	const char *src = "(no certificate)";
	int idx, len;
	size_t i;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (cert != NULL) {
		name = X509_get_subject_name(cert);
		idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
		if (idx >= 0 && (e = X509_NAME_get_entry(name, idx)) != NULL &&
		    (len = ASN1_STRING_to_UTF8(&utf8,
		    X509_NAME_ENTRY_get_data(e))) > 0 &&
		    memchr(utf8, '\0', (size_t)len) == NULL)
			src = (const char *)utf8;
		else if ((subject = pki_subject(cert)) != NULL && *subject != '\0')
			src = subject;
		else
			src = "(empty subject)";
	}
	snprintf(out, outlen, "%s", src);
	for (i = 0; out[i] != '\0'; i++) {
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = '?';
	}
	OPENSSL_free(utf8);
	free(subject);
}

/* "YYYY-MM-DD" of an ASN1 time, or "(unknown date)". */
static void
asn1_date(const ASN1_TIME *t, char out[32])
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		snprintf(out, 32, "(unknown date)");
		return;
	}
	snprintf(out, 32, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday);
}

static void
name_oneline(const X509_NAME *name, char *out, size_t outlen)
{
	BIO *bio = NULL;
	char *data;
	long len;
	size_t i;

	snprintf(out, outlen, "(unknown)");
	if (name == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
		goto out;
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0)
		goto out;
	snprintf(out, outlen, "%.*s", (int)len, data);
	for (i = 0; out[i] != '\0'; i++) {
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = '?';
	}
 out:
	BIO_free(bio);
}

char *
pki_subject(X509 *cert)
{
	BIO *bio = NULL;
	char *data, *ret = NULL;
	long len;

	if (cert == NULL)
		return NULL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
	    XN_FLAG_RFC2253) < 0)
		goto out;
	len = BIO_get_mem_data(bio, &data);
	if (len < 0)
		goto out;
	ret = xmalloc((size_t)len + 1);
	memcpy(ret, data, (size_t)len);
	ret[len] = '\0';
 out:
	BIO_free(bio);
	return ret;
}

void
pki_fingerprint(X509 *cert, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	out[0] = '\0';
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &len) != 1 ||
	    len != 32) {
		ERR_clear_error();
		return;
	}
	util_hex(md, len, out);
}

/* True when s is exactly n ASCII digits. */
static int
all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return 1;
}

/* The UTF-8 value of the first entry of nid in name; caller frees with OPENSSL_free. */
static char *
name_entry_utf8(X509_NAME *name, int nid)
{
	X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	int idx, len;

	idx = X509_NAME_get_index_by_NID(name, nid, -1);
	if (idx < 0 || (e = X509_NAME_get_entry(name, idx)) == NULL)
		return NULL;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
	if (len < 0)
		return NULL;
	if (memchr(utf8, '\0', (size_t)len) != NULL) {
		OPENSSL_free(utf8);
		return NULL;
	}
	return (char *)utf8;
}

int
pki_cert_cvr(X509 *cert, char out[9])
{
	X509_NAME *name;
	char *v = NULL;
	int r = HEGN_ERR_INVALID;

	out[0] = '\0';
	if (cert == NULL)
		goto out;
	name = X509_get_subject_name(cert);
	/* OCES3: organizationIdentifier "NTRDK-12345678", nothing after. */
	if ((v = name_entry_utf8(name, NID_organizationIdentifier)) != NULL &&
	    strncmp(v, "NTRDK-", 6) == 0 && strlen(v) == 14 &&
	    all_digits(v + 6, 8)) {
		memcpy(out, v + 6, 8);
		out[8] = '\0';
		r = 0;
		goto out;
	}
	OPENSSL_free(v);
	/* OCES2: serialNumber "CVR:12345678-FID:..." (or -RID:/-UID:). */
	if ((v = name_entry_utf8(name, NID_serialNumber)) != NULL &&
	    strncmp(v, "CVR:", 4) == 0 && strlen(v) >= 13 &&
	    all_digits(v + 4, 8) && v[12] == '-') {
		memcpy(out, v + 4, 8);
		out[8] = '\0';
		r = 0;
		goto out;
	}
 out:
	OPENSSL_free(v);
	return r;
}

/* The OpenSSL verification flags for pki flags. */
static unsigned long
verify_flags(int flags)
{
	unsigned long f = 0;

	if (flags & PKI_CRL_CHECK)
		f |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL |
		    X509_V_FLAG_EXTENDED_CRL_SUPPORT | X509_V_FLAG_USE_DELTAS;
	if (flags & PKI_STRICT)
		f |= X509_V_FLAG_X509_STRICT;
	return f;
}

static void
pki_free_contents(struct pki *p)
{
	X509_STORE_free(p->store);
	sk_X509_pop_free(p->anchors, X509_free);
	sk_X509_pop_free(p->chain, X509_free);
	sk_X509_CRL_pop_free(p->crls, X509_CRL_free);
	vcache_free(p->vcache);
	dcache_free(p->dcache);
	free(p);
}

void
pki_free(struct pki *p)
{
	if (p == NULL)
		return;
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	pki_free_contents(p);
}

struct pki *
pki_ref(struct pki *p)
{
	if (p != NULL)
		atomic_fetch_add(&p->refs, 1);
	return p;
}

/* A new stack holding one more reference to each certificate of in (NULL: empty). */
static STACK_OF(X509) *
certs_dup(STACK_OF(X509) *in)
{
	STACK_OF(X509) *out;
	int i;

	if ((out = sk_X509_new_null()) == NULL)
		return NULL;
	for (i = 0; in != NULL && i < sk_X509_num(in); i++) {
		if (!sk_X509_push(out, sk_X509_value(in, i))) {
			sk_X509_free(out);
			return NULL;
		}
		X509_up_ref(sk_X509_value(in, i));
	}
	return out;
}

static STACK_OF(X509_CRL) *
crls_dup(STACK_OF(X509_CRL) *in)
{
	STACK_OF(X509_CRL) *out;
	int i;

	if ((out = sk_X509_CRL_new_null()) == NULL)
		return NULL;
	for (i = 0; in != NULL && i < sk_X509_CRL_num(in); i++) {
		if (!sk_X509_CRL_push(out, sk_X509_CRL_value(in, i))) {
			sk_X509_CRL_free(out);
			return NULL;
		}
		X509_CRL_up_ref(sk_X509_CRL_value(in, i));
	}
	return out;
}

/* Add anchors (and extra certificates, may be NULL) and CRLs to a new store. */
static X509_STORE *
store_build(STACK_OF(X509) *anchors, STACK_OF(X509) *extra,
    STACK_OF(X509_CRL) *crls, int flags)
{
	X509_STORE *st;
	int i, ok = 0;

	if ((st = X509_STORE_new()) == NULL)
		return NULL;
	for (i = 0; i < sk_X509_num(anchors); i++) {
		if (!X509_STORE_add_cert(st, sk_X509_value(anchors, i)))
			goto out;
	}
	for (i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
		if (!X509_STORE_add_cert(st, sk_X509_value(extra, i)))
			goto out;
	}
	for (i = 0; i < sk_X509_CRL_num(crls); i++) {
		if (!X509_STORE_add_crl(st, sk_X509_CRL_value(crls, i)))
			goto out;
	}
	if (!X509_STORE_set_flags(st, verify_flags(flags)))
		goto out;
	ok = 1;
 out:
	if (!ok) {
		X509_STORE_free(st);
		st = NULL;
	}
	return st;
}

int
pki_from_objects(STACK_OF(X509) *anchors, STACK_OF(X509) *chain,
    STACK_OF(X509_CRL) *crls, int flags, struct pki **out, struct why *why)
{
	struct pki *p = NULL;
	int r = HEGN_ERR_INTERNAL;

	*out = NULL;
	if (anchors == NULL || sk_X509_num(anchors) == 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "no trust anchors given");
		goto out;
	}
	p = xcalloc(1, sizeof(*p));
	atomic_init(&p->refs, 1);
	p->flags = flags;
	p->vcache = vcache_new();
	p->dcache = dcache_new();
	p->crl_until_ms = crls_next_update_ms(crls);
	if ((p->anchors = certs_dup(anchors)) == NULL ||
	    (p->chain = certs_dup(chain)) == NULL ||
	    (p->crls = crls_dup(crls)) == NULL ||
	    (p->store = store_build(p->anchors, NULL, p->crls, flags)) == NULL) {
		r = why_set(why, HEGN_ERR_CRYPTO, "cannot build the trust store");
		why_openssl(why);
		goto out;
	}
	*out = p;
	p = NULL;
	r = 0;
 out:
	if (p != NULL)
		pki_free_contents(p);
	return r;
}

/* Read path into a memory BIO; the buffer is returned in b for wiping. */
static int
file_bio(const char *path, struct buf *b, BIO **out, struct why *why)
{
	int r;

	*out = NULL;
	if ((r = util_read_file(path, PKI_FILE_MAX, b, why)) != 0)
		return r;
	if ((*out = BIO_new_mem_buf(b->data, (int)b->len)) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "cannot read %s: out of memory", path);
	return 0;
}

int
pki_load_certs(const char *path, STACK_OF(X509) **out, struct why *why)
{
	struct buf b = { 0 };
	BIO *bio = NULL;
	STACK_OF(X509) *certs = NULL;
	X509 *x;
	unsigned long e;
	int r;

	*out = NULL;
	if ((r = file_bio(path, &b, &bio, why)) != 0)
		goto out;
	if ((certs = sk_X509_new_null()) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "cannot read %s: out of memory", path);
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			r = why_set(why, HEGN_ERR_NOMEM, "cannot read %s: out of memory", path);
			goto out;
		}
	}
	/* The loop ends on "no start line" at the end of the file; anything else is damage. */
	e = ERR_peek_last_error();
	if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
		r = why_set(why, HEGN_ERR_INVALID, "%s holds a damaged certificate", path);
		why_openssl(why);
		goto out;
	}
	ERR_clear_error();
	if (sk_X509_num(certs) == 0) {
		r = why_set(why, HEGN_ERR_INVALID, "%s holds no PEM certificate", path);
		goto out;
	}
	*out = certs;
	certs = NULL;
	r = 0;
 out:
	BIO_free(bio);
	buf_free(&b, 0);
	sk_X509_pop_free(certs, X509_free);
	return r;
}

int
pki_load_cert(const char *path, X509 **out, struct why *why)
{
	STACK_OF(X509) *certs = NULL;
	int r;

	*out = NULL;
	if ((r = pki_load_certs(path, &certs, why)) != 0)
		goto out;
	*out = sk_X509_shift(certs);
	r = 0;
 out:
	sk_X509_pop_free(certs, X509_free);
	return r;
}

static int
load_crls(const char *path, STACK_OF(X509_CRL) **out, struct why *why)
{
	struct buf b = { 0 };
	BIO *bio = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	X509_CRL *crl;
	unsigned long e;
	int r;

	*out = NULL;
	if ((r = file_bio(path, &b, &bio, why)) != 0)
		goto out;
	if ((crls = sk_X509_CRL_new_null()) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "cannot read %s: out of memory", path);
		goto out;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_CRL_push(crls, crl)) {
			X509_CRL_free(crl);
			r = why_set(why, HEGN_ERR_NOMEM, "cannot read %s: out of memory", path);
			goto out;
		}
	}
	e = ERR_peek_last_error();
	if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
		r = why_set(why, HEGN_ERR_INVALID, "%s holds a damaged CRL", path);
		why_openssl(why);
		goto out;
	}
	ERR_clear_error();
	if (sk_X509_CRL_num(crls) == 0) {
		r = why_set(why, HEGN_ERR_INVALID, "%s holds no PEM CRL", path);
		goto out;
	}
	*out = crls;
	crls = NULL;
	r = 0;
 out:
	BIO_free(bio);
	buf_free(&b, 0);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

/* Refuses to prompt for a passphrase: hegn keys are unencrypted PEM. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int
pki_load_key(const char *path, EVP_PKEY **out, struct why *why)
{
	struct buf b = { 0 };
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	int r;

	*out = NULL;
	if ((r = file_bio(path, &b, &bio, why)) != 0)
		goto out;
	if ((key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)) == NULL) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "%s holds no usable unencrypted PEM private key", path);
		why_openssl(why);
		goto out;
	}
	*out = key;
	r = 0;
 out:
	BIO_free(bio);
	buf_free(&b, 1);
	return r;
}

int
pki_cert_from_der(const uint8_t *der, size_t len, X509 **out, struct why *why)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	int r;

	*out = NULL;
	if (der == NULL || len == 0 || len > PKI_FILE_MAX) {
		r = why_set(why, HEGN_ERR_INVALID, "certificate: empty or too large");
		goto out;
	}
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL) {
		r = why_set(why, HEGN_ERR_INVALID, "not a DER certificate");
		why_openssl(why);
		goto out;
	}
	if (p != der + len) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "certificate: %zu bytes of trailing data", (size_t)(der + len - p));
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
 out:
	X509_free(x);
	return r;
}

int
pki_load(const char *anchors, const char *chain, const char *crls, int flags,
    struct pki **out, struct why *why)
{
	STACK_OF(X509) *a = NULL, *c = NULL;
	STACK_OF(X509_CRL) *l = NULL;
	int r;

	*out = NULL;
	if (anchors == NULL) {
		r = why_set(why, HEGN_ERR_CONFIG, "no trust anchor file configured");
		goto out;
	}
	if ((r = pki_load_certs(anchors, &a, why)) != 0 ||
	    (chain != NULL && (r = pki_load_certs(chain, &c, why)) != 0) ||
	    (crls != NULL && (r = load_crls(crls, &l, why)) != 0)) {
		/* The reason already names the file; the caller sees a config fault. */
		if (why != NULL)
			why->code = HEGN_ERR_CONFIG;
		r = HEGN_ERR_CONFIG;
		goto out;
	}
	if ((r = pki_from_objects(a, c, l, flags, out, why)) != 0) {
		r = HEGN_ERR_CONFIG;
		if (why != NULL)
			why->code = r;
		goto out;
	}
	r = 0;
 out:
	sk_X509_pop_free(a, X509_free);
	sk_X509_pop_free(c, X509_free);
	sk_X509_CRL_pop_free(l, X509_CRL_free);
	return r;
}

X509_STORE *
pki_new_store(const struct pki *p)
{
	if (p == NULL)
		return NULL;
	/*
	 * CMS_verify takes no untrusted stack of ours, so the intermediates go
	 * into the store.  They do not become anchors: without
	 * X509_V_FLAG_PARTIAL_CHAIN a chain must still end at a self-signed
	 * certificate of the store.
	 */
	return store_build(p->anchors, p->chain, p->crls, p->flags);
}

STACK_OF(X509) *
pki_chain(const struct pki *p)
{
	return p->chain;
}

/* Turn a failed X509_verify_cert into a sentence naming the certificate. */
static int
explain_failure(X509_STORE_CTX *ctx, X509 *leaf, struct why *why)
{
	X509 *cur;
	char name[256], issuer[256], date[32];
	int err;

	err = X509_STORE_CTX_get_error(ctx);
	if ((cur = X509_STORE_CTX_get_current_cert(ctx)) == NULL)
		cur = leaf;
	cert_name(cur, name, sizeof(name));
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		asn1_date(X509_get0_notAfter(cur), date);
		return why_set(why, HEGN_ERR_CERT, "certificate %s expired on %s",
		    name, date);
	case X509_V_ERR_CERT_NOT_YET_VALID:
		asn1_date(X509_get0_notBefore(cur), date);
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s is not yet valid until %s", name, date);
	case X509_V_ERR_CERT_REVOKED:
		return why_set(why, HEGN_ERR_CERT, "certificate %s revoked", name);
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
		name_oneline(X509_get_issuer_name(cur), issuer, sizeof(issuer));
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s issued by an unknown CA (%s)", name, issuer);
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return why_set(why, HEGN_ERR_CERT, "certificate %s has no CRL", name);
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s: its CRL has expired", name);
	case X509_V_ERR_CRL_NOT_YET_VALID:
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s: its CRL is not yet valid", name);
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s: its CRL has a bad signature", name);
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s has a bad signature", name);
	case X509_V_ERR_INVALID_CA:
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s is not a valid CA certificate", name);
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		return why_set(why, HEGN_ERR_CERT,
		    "certificate %s: path length constraint exceeded", name);
	default:
		return why_set(why, HEGN_ERR_CERT, "certificate %s: %s", name,
		    X509_verify_cert_error_string(err));
	}
}

/* Check the end-entity certificate's key usage and EKU against purpose. */
static int
check_purpose(X509 *leaf, enum pki_purpose purpose, struct why *why)
{
	uint32_t xflags, ku, eku;
	char name[256];
	const char *need = NULL;
	int r = 0, is_rsa;

	if (purpose == PKI_PURPOSE_ANY)
		return 0;
	cert_name(leaf, name, sizeof(name));
	xflags = X509_get_extension_flags(leaf);
	if (xflags & EXFLAG_INVALID) {
		r = why_set(why, HEGN_ERR_CERT,
		    "certificate %s has invalid extensions", name);
		goto out;
	}
	if (X509_check_ca(leaf) != 0) {
		r = why_set(why, HEGN_ERR_CERT,
		    "certificate %s is a CA certificate, not an end entity", name);
		goto out;
	}
	/* Without a keyUsage extension every usage is allowed (RFC 5280 4.2.1.3). */
	if (xflags & EXFLAG_KUSAGE) {
		ku = X509_get_key_usage(leaf);
		is_rsa = EVP_PKEY_is_a(X509_get0_pubkey(leaf), "RSA") ||
		    EVP_PKEY_is_a(X509_get0_pubkey(leaf), "RSA-PSS");
		switch (purpose) {
		case PKI_PURPOSE_SIGN:
			if (!(ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)))
				need = "signing";
			break;
		case PKI_PURPOSE_ENCRYPT:
			/* Non-RSA keys receive content by key agreement. */
			if (!(ku & KU_KEY_ENCIPHERMENT) &&
			    (is_rsa || !(ku & KU_KEY_AGREEMENT)))
				need = "encryption";
			break;
		case PKI_PURPOSE_TLS_CLIENT:
			if (!(ku & KU_DIGITAL_SIGNATURE))
				need = "TLS client authentication";
			break;
		case PKI_PURPOSE_TLS_SERVER:
			if (!(ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT)))
				need = "TLS server authentication";
			break;
		default:
			break;
		}
		if (need != NULL) {
			r = why_set(why, HEGN_ERR_CERT,
			    "certificate %s: key usage does not allow %s", name, need);
			goto out;
		}
	}
	/*
	 * An extendedKeyUsage restricts TLS to the named role (anyExtendedKeyUsage
	 * counts as every role).  For CMS signing and encryption any EKU is
	 * accepted: OCES3 certificates carry varying EKUs and keyUsage already
	 * decides what the key may do.
	 */
	if (xflags & EXFLAG_XKUSAGE) {
		eku = X509_get_extended_key_usage(leaf);
		if (purpose == PKI_PURPOSE_TLS_CLIENT &&
		    !(eku & (XKU_SSL_CLIENT | XKU_ANYEKU))) {
			r = why_set(why, HEGN_ERR_CERT, "certificate %s: extended key "
			    "usage does not allow TLS client authentication", name);
			goto out;
		}
		if (purpose == PKI_PURPOSE_TLS_SERVER &&
		    !(eku & (XKU_SSL_SERVER | XKU_ANYEKU))) {
			r = why_set(why, HEGN_ERR_CERT, "certificate %s: extended key "
			    "usage does not allow TLS server authentication", name);
			goto out;
		}
	}
 out:
	return r;
}

/* Parse a comma-separated list of policy OIDs ("anyPolicy" allowed). */
static int
parse_policies(const char *list, STACK_OF(ASN1_OBJECT) **out, struct why *why)
{
	STACK_OF(ASN1_OBJECT) *st = NULL;
	ASN1_OBJECT *obj;
	char *copy = NULL, *tok, *save = NULL;
	int r;

	*out = NULL;
	copy = xstrdup(list);
	if ((st = sk_ASN1_OBJECT_new_null()) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (strcmp(tok, "anyPolicy") == 0)
			obj = OBJ_nid2obj(NID_any_policy);
		else
			obj = OBJ_txt2obj(tok, 1);
		if (obj == NULL) {
			r = why_set(why, HEGN_ERR_INVALID, "bad policy OID \"%s\"", tok);
			ERR_clear_error();
			goto out;
		}
		if (!sk_ASN1_OBJECT_push(st, obj)) {
			ASN1_OBJECT_free(obj);
			r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (sk_ASN1_OBJECT_num(st) == 0) {
		r = why_set(why, HEGN_ERR_INVALID, "empty policy list");
		goto out;
	}
	*out = st;
	st = NULL;
	r = 0;
 out:
	free(copy);
	sk_ASN1_OBJECT_pop_free(st, ASN1_OBJECT_free);
	return r;
}

/*
 * The one verification path: chain, time, CRLs, optional policy inputs, then
 * (when purpose is not ANY) the end-entity's key usage.
 */
static int
verify(const struct pki *p, X509 *cert, STACK_OF(X509) *untrusted,
    enum pki_purpose purpose, const struct pki_policy_opts *opts, time_t at,
    struct why *why)
{
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	STACK_OF(X509) *extra = NULL;
	STACK_OF(ASN1_OBJECT) *policies = NULL;
	unsigned long vflags;
	uint8_t key[32];
	char name[256];
	int i, r, ok, cacheable = 0;

	if (p == NULL || cert == NULL) {
		r = why_set(why, HEGN_ERR_INVALID, "no certificate to verify");
		goto out;
	}
	/* Only a verification as of now can be reused, and only without policy inputs. */
	if (opts == NULL && at == 0 && p->vcache != NULL &&
	    vcache_key(cert, untrusted, purpose, key) == 0) {
		cacheable = 1;
		if (vcache_lookup(p->vcache, key) == 0) {
			r = 0;
			goto out;
		}
	}
	if ((extra = certs_dup(p->chain)) == NULL)
		goto nomem;
	for (i = 0; untrusted != NULL && i < sk_X509_num(untrusted); i++) {
		if (!sk_X509_push(extra, sk_X509_value(untrusted, i)))
			goto nomem;
		X509_up_ref(sk_X509_value(untrusted, i));
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, p->store, cert, extra))
		goto nomem;
	/*
	 * The store finds CRLs only by the certificate's issuer name; an
	 * indirect CRL (issued by another CA, RFC 5280 5.2.5) is found only in
	 * a CRL list of the context, which OpenSSL searches in full.
	 */
	X509_STORE_CTX_set0_crls(ctx, p->crls);
	param = X509_STORE_CTX_get0_param(ctx);
	vflags = verify_flags(p->flags);
	if (opts != NULL) {
		vflags |= X509_V_FLAG_POLICY_CHECK;
		if (opts->require_explicit_policy)
			vflags |= X509_V_FLAG_EXPLICIT_POLICY;
		if (opts->inhibit_policy_mapping)
			vflags |= X509_V_FLAG_INHIBIT_MAP;
		if (opts->inhibit_any_policy)
			vflags |= X509_V_FLAG_INHIBIT_ANY;
		/*
		 * OpenSSL's user-constrained policy set is empty unless some
		 * initial policy is given, so "no preference" is anyPolicy.
		 */
		if ((r = parse_policies(opts->policies != NULL ? opts->policies :
		    "anyPolicy", &policies, why)) != 0)
			goto out;
		if (!X509_VERIFY_PARAM_set1_policies(param, policies))
			goto nomem;
	}
	X509_VERIFY_PARAM_set_flags(param, vflags);
	if (at != 0)
		X509_VERIFY_PARAM_set_time(param, at);
	ok = X509_verify_cert(ctx);
	if (ok != 1) {
		r = explain_failure(ctx, cert, why);
		ERR_clear_error();
		goto out;
	}
	if ((r = check_purpose(cert, purpose, why)) != 0)
		goto out;
	if (cacheable)
		vcache_store(p, key, X509_STORE_CTX_get0_chain(ctx));
	r = 0;
	goto out;
 nomem:
	cert_name(cert, name, sizeof(name));
	r = why_set(why, HEGN_ERR_CRYPTO, "certificate %s: cannot set up verification",
	    name);
	why_openssl(why);
 out:
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(extra, X509_free);
	sk_ASN1_OBJECT_pop_free(policies, ASN1_OBJECT_free);
	/* Leave no stale errors for the next OpenSSL call on this thread. */
	ERR_clear_error();
	return r;
}

int
pki_verify(const struct pki *p, X509 *cert, STACK_OF(X509) *untrusted,
    enum pki_purpose purpose, time_t at, struct why *why)
{
	return verify(p, cert, untrusted, purpose, NULL, at, why);
}

int
pki_verify_policy(const struct pki *p, X509 *cert, STACK_OF(X509) *untrusted,
    const struct pki_policy_opts *opts, time_t at, struct why *why)
{
	struct pki_policy_opts none = { 0 };

	return verify(p, cert, untrusted, PKI_PURPOSE_ANY,
	    opts != NULL ? opts : &none, at, why);
}

/*
 * Verification cache (performance, docs/performance.md).
 *
 * Receipts, sealed submissions and recipients' certificates bring the same
 * few certificates again and again, and X509_verify_cert with the CRLs cost
 * a sixth of hegnd's CPU end to end.  A verification as of now that passed
 * is remembered by the SHA-256 over the purpose and each certificate's DER
 * as presented (leaf, then the untrusted ones in order) for at most
 * VCACHE_TTL seconds, never past the notAfter of any certificate of the
 * chain built, nor past the earliest nextUpdate of the CRLs when they are
 * checked.  The cache belongs to its pki: a reload (new CRLs, anchors,
 * parties) builds a new pki with an empty cache.  Refusals are never kept.
 * It is a set-associative table of fixed size; a full set gives up the
 * entry that would expire first.
 */
#define VCACHE_SETS	256
#define VCACHE_WAYS	4
#define VCACHE_TTL	60

struct vcache_entry {
	uint8_t key[32];
	int64_t until_ms;		/* 0: empty */
};

struct vcache {
	pthread_mutex_t lock;
	int ttl;			/* seconds; 0: nothing is kept */
	uint64_t hits, misses, stored;
	struct vcache_entry set[VCACHE_SETS][VCACHE_WAYS];
};

static struct vcache *
vcache_new(void)
{
	struct vcache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	c->ttl = VCACHE_TTL;
	return c;
}

static void
vcache_free(struct vcache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Seconds since the epoch of an ASN.1 time, or -1. */
static int
asn1_epoch(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	*out = -1;
	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return -1;
	}
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int64_t
crls_next_update_ms(STACK_OF(X509_CRL) *crls)
{
	int64_t until = INT64_MAX, t;
	int i;

	for (i = 0; crls != NULL && i < sk_X509_CRL_num(crls); i++) {
		/* A CRL without nextUpdate sets no bound of its own. */
		if (X509_CRL_get0_nextUpdate(sk_X509_CRL_value(crls, i)) == NULL)
			continue;
		if (asn1_epoch(X509_CRL_get0_nextUpdate(sk_X509_CRL_value(crls, i)), &t) != 0)
			return 0;
		if (t * 1000 < until)
			until = t * 1000;
	}
	return until;
}

static int
digest_cert(EVP_MD_CTX *md, X509 *x)
{
	unsigned char *der = NULL;
	uint8_t l[4];
	int len, ok;

	if ((len = i2d_X509(x, &der)) <= 0)
		return 0;
	l[0] = (uint8_t)((unsigned)len >> 24);
	l[1] = (uint8_t)((unsigned)len >> 16);
	l[2] = (uint8_t)((unsigned)len >> 8);
	l[3] = (uint8_t)len;
	ok = EVP_DigestUpdate(md, l, sizeof(l)) == 1 &&
	    EVP_DigestUpdate(md, der, (size_t)len) == 1;
	OPENSSL_free(der);
	return ok;
}

static int
vcache_key(X509 *cert, STACK_OF(X509) *untrusted, enum pki_purpose purpose,
    uint8_t key[32])
{
	EVP_MD_CTX *md = NULL;
	uint8_t pu[4];
	unsigned int len = 0;
	int i, ok;

	pu[0] = pu[1] = pu[2] = 0;
	pu[3] = (uint8_t)purpose;
	ok = (md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, pu, sizeof(pu)) == 1 && digest_cert(md, cert);
	for (i = 0; ok && untrusted != NULL && i < sk_X509_num(untrusted); i++)
		ok = digest_cert(md, sk_X509_value(untrusted, i));
	ok = ok && EVP_DigestFinal_ex(md, key, &len) == 1 && len == 32;
	EVP_MD_CTX_free(md);
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : -1;
}

static int
vcache_lookup(struct vcache *c, const uint8_t key[32])
{
	struct vcache_entry *set = c->set[key[0]];
	int64_t now = util_now_ms();
	int i, r = -1;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < VCACHE_WAYS; i++) {
		if (now < set[i].until_ms && memcmp(set[i].key, key, 32) == 0) {
			r = 0;
			break;
		}
	}
	if (r == 0)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Remember a verification of key that passed with the chain built. */
static void
vcache_store(const struct pki *p, const uint8_t key[32], STACK_OF(X509) *chain)
{
	struct vcache *c = p->vcache;
	struct vcache_entry *set = c->set[key[0]], *e = NULL;
	int64_t now = util_now_ms(), until = INT64_MAX, t;
	int i;

	if (chain == NULL || sk_X509_num(chain) == 0)
		return;
	for (i = 0; i < sk_X509_num(chain); i++) {
		if (asn1_epoch(X509_get0_notAfter(sk_X509_value(chain, i)), &t) != 0)
			return;
		if (t * 1000 < until)
			until = t * 1000;
	}
	if ((p->flags & PKI_CRL_CHECK) && p->crl_until_ms < until)
		until = p->crl_until_ms;
	pthread_mutex_lock(&c->lock);
	if (now + (int64_t)c->ttl * 1000 < until)
		until = now + (int64_t)c->ttl * 1000;
	if (until <= now)
		goto out;
	/* The same key again, else a free or expired way, else the one expiring first. */
	for (i = 0; i < VCACHE_WAYS && e == NULL; i++) {
		if (memcmp(set[i].key, key, 32) == 0)
			e = &set[i];
	}
	for (i = 0; i < VCACHE_WAYS && e == NULL; i++) {
		if (set[i].until_ms <= now)
			e = &set[i];
	}
	if (e == NULL) {
		e = &set[0];
		for (i = 1; i < VCACHE_WAYS; i++) {
			if (set[i].until_ms < e->until_ms)
				e = &set[i];
		}
	}
	memcpy(e->key, key, 32);
	e->until_ms = until;
	c->stored++;
 out:
	pthread_mutex_unlock(&c->lock);
}

void
pki_set_cache_ttl(struct pki *p, int seconds)
{
	size_t i;

	if (p == NULL || p->vcache == NULL)
		return;
	pthread_mutex_lock(&p->vcache->lock);
	p->vcache->ttl = seconds < 0 ? 0 : seconds;
	/* Shortening the time applies to what is kept already. */
	for (i = 0; i < VCACHE_SETS * VCACHE_WAYS; i++)
		p->vcache->set[i / VCACHE_WAYS][i % VCACHE_WAYS].until_ms = 0;
	pthread_mutex_unlock(&p->vcache->lock);
}

void
pki_cache_stats(const struct pki *p, struct pki_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (p == NULL || p->vcache == NULL)
		return;
	pthread_mutex_lock(&p->vcache->lock);
	out->hits = p->vcache->hits;
	out->misses = p->vcache->misses;
	out->stored = p->vcache->stored;
	pthread_mutex_unlock(&p->vcache->lock);
}

/*
 * Parsed certificates (performance, docs/performance.md).
 *
 * Every receipt carries the provider's certificate chain, and OpenSSL 3.0
 * decodes each certificate's public key through its provider decoders: that
 * was most of the cost of reading a receipt.  The same DER always parses to
 * the same certificate, so a parse is kept by the SHA-256 of the DER, in a
 * table of DCACHE_SLOTS entries, if the DER is at most DCACHE_MAX_DER bytes.
 * The first byte of the hash picks a set of DCACHE_WAYS entries, and a new
 * certificate takes the set's least recently used one: with one entry per
 * hash, a party's certificate and its CA's, which come together in every
 * receipt, would take each other's place on every read whenever their
 * hashes began alike (one chain in 256).  It decides nothing about trust:
 * pki_verify() does that as before.
 */
#define DCACHE_SLOTS	256
#define DCACHE_WAYS	4
/*
 * A real certificate is one or two kilobytes; anything larger is parsed
 * but not kept, so the table holds a few megabytes at most, and no party
 * can fill it with certificates of a body's size.
 */
#define DCACHE_MAX_DER	16384

struct dcache_entry {
	uint8_t key[32];
	X509 *cert;			/* NULL: empty */
	uint64_t used;			/* the tick it was last found or stored at */
};

struct dcache {
	pthread_mutex_t lock;
	uint64_t hits, misses, tick;
	struct dcache_entry slot[DCACHE_SLOTS];
};

static struct dcache *
dcache_new(void)
{
	struct dcache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
dcache_free(struct dcache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < DCACHE_SLOTS; i++)
		X509_free(c->slot[i].cert);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int
pki_cert_from_der_cached(const struct pki *p, const uint8_t *der, size_t len, X509 **out,
    struct why *why)
{
	struct dcache *c = p != NULL ? p->dcache : NULL;
	struct dcache_entry *set, *e;
	X509 *x = NULL, *old = NULL;
	uint8_t key[32];
	size_t i;
	int r;

	*out = NULL;
	if (c == NULL || der == NULL || len == 0 || len > DCACHE_MAX_DER) {
		if (c != NULL) {
			pthread_mutex_lock(&c->lock);
			c->misses++;
			pthread_mutex_unlock(&c->lock);
		}
		return pki_cert_from_der(der, len, out, why);
	}
	util_sha256(der, len, key);
	set = &c->slot[(key[0] % (DCACHE_SLOTS / DCACHE_WAYS)) * DCACHE_WAYS];
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < DCACHE_WAYS && x == NULL; i++) {
		e = &set[i];
		if (e->cert != NULL && memcmp(e->key, key, 32) == 0 && X509_up_ref(e->cert) == 1) {
			x = e->cert;
			e->used = ++c->tick;
		}
	}
	if (x != NULL)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
	if (x != NULL) {
		*out = x;
		return 0;
	}
	if ((r = pki_cert_from_der(der, len, &x, why)) != 0)
		return r;
	/* The cache's own reference; if it cannot be taken, the certificate is simply not kept. */
	if (X509_up_ref(x) == 1) {
		pthread_mutex_lock(&c->lock);
		for (e = &set[0], i = 1; i < DCACHE_WAYS; i++)
			if (set[i].used < e->used)
				e = &set[i];
		old = e->cert;
		memcpy(e->key, key, 32);
		e->cert = x;
		e->used = ++c->tick;
		pthread_mutex_unlock(&c->lock);
		X509_free(old);
	}
	*out = x;
	return 0;
}

void
pki_cert_cache_stats(const struct pki *p, uint64_t *hits, uint64_t *misses)
{
	*hits = *misses = 0;
	if (p == NULL || p->dcache == NULL)
		return;
	pthread_mutex_lock(&p->dcache->lock);
	*hits = p->dcache->hits;
	*misses = p->dcache->misses;
	pthread_mutex_unlock(&p->dcache->lock);
}
