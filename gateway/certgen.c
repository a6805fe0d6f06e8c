/*
 * certgen: keys, certificates and CRLs imitating OCES3 (MitID Erhverv), made
 * with OpenSSL's C API so that the demo world and the tests need no openssl
 * binary.  The profile copies what the real chain shows (see docs/pki.md):
 * RSASSA-PSS SHA-512 signatures with salt length 64, critical
 * basicConstraints and keyUsage, organizationIdentifier NTRDK-<CVR> and a
 * UI:DK-O:G:<uuid> serialNumber, CRL distribution points and AIA URLs shaped
 * like ca1.gov.dk's but on localhost.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "err.h"
#include "util.h"

#define DEMO_BASE	"http://localhost/oces"
#define ROOT_CRL	DEMO_BASE "/root/crl/root.crl"
#define ROOT_CACERT	DEMO_BASE "/root/cacert/root.cer"
#define ISSUING_CRL	DEMO_BASE "/issuing/1/crl/issuing.crl"
#define ISSUING_CACERT	DEMO_BASE "/issuing/1/cacert/issuing.cer"
#define DEMO_OCSP	"http://localhost/ocsp"

int
certgen_key(enum certgen_keytype type, int bits, EVP_PKEY **out, struct why *why)
{
	EVP_PKEY *k = NULL;
	int r;

	*out = NULL;
	switch (type) {
	case CERTGEN_RSA:
		if (bits < 2048 || bits > 8192) {
			r = why_set(why, HEGN_ERR_INVALID,
			    "RSA key size %d outside 2048..8192", bits);
			goto out;
		}
		k = EVP_RSA_gen((unsigned int)bits);
		break;
	case CERTGEN_EC_P256:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	default:
		r = why_set(why, HEGN_ERR_INVALID, "unknown key type %d", (int)type);
		goto out;
	}
	if (k == NULL) {
		r = why_set(why, HEGN_ERR_CRYPTO, "key generation failed");
		why_openssl(why);
		goto out;
	}
	*out = k;
	r = 0;
 out:
	return r;
}

static int
is_rsa(EVP_PKEY *k)
{
	return EVP_PKEY_is_a(k, "RSA");
}

/*
 * A digest context for signing with key: RSASSA-PSS SHA-512, MGF1-SHA-512,
 * salt 64 for RSA (what OCES3 uses), ECDSA with SHA-256 otherwise.
 */
static EVP_MD_CTX *
sign_ctx(EVP_PKEY *key)
{
	EVP_MD_CTX *mctx;
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (is_rsa(key)) {
		if (EVP_DigestSignInit(mctx, &pctx, EVP_sha512(), NULL, key) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 64) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha512()) <= 0)
			goto out;
	} else {
		if (EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, key) != 1)
			goto out;
	}
	ok = 1;
 out:
	if (!ok) {
		EVP_MD_CTX_free(mctx);
		mctx = NULL;
	}
	return mctx;
}

static int
valid_cvr(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 8)
		return 0;
	for (i = 0; i < 8; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return 1;
}

static int
name_add(X509_NAME *n, int nid, const char *value)
{
	return X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8,
	    (const unsigned char *)value, -1, -1, 0);
}

/* The subject: C=DK, O, [OU], CN, [organizationIdentifier, serialNumber]. */
static X509_NAME *
make_subject(const struct certgen_subject *s, enum certgen_profile profile)
{
	X509_NAME *n;
	char oid[16], uuid[37], serial[64];
	int ok = 0, org = profile != CERTGEN_ROOT_CA && profile != CERTGEN_ISSUING_CA;

	if ((n = X509_NAME_new()) == NULL)
		return NULL;
	if (!X509_NAME_add_entry_by_NID(n, NID_countryName, MBSTRING_ASC,
	    (const unsigned char *)"DK", -1, -1, 0))
		goto out;
	if (s->org != NULL && !name_add(n, NID_organizationName, s->org))
		goto out;
	if (s->ou != NULL && !name_add(n, NID_organizationalUnitName, s->ou))
		goto out;
	if (!name_add(n, NID_commonName, s->cn))
		goto out;
	if (s->cvr != NULL) {
		snprintf(oid, sizeof(oid), "NTRDK-%s", s->cvr);
		if (!name_add(n, NID_organizationIdentifier, oid))
			goto out;
	}
	if (org) {
		/* A fresh UUID per certificate, as MitID Erhverv assigns them. */
		util_uuid(uuid);
		snprintf(serial, sizeof(serial), "UI:DK-O:G:%s", uuid);
		if (!X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC,
		    (const unsigned char *)serial, -1, -1, 0))
			goto out;
	}
	ok = 1;
 out:
	if (!ok) {
		X509_NAME_free(n);
		n = NULL;
	}
	return n;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static int
set_time(ASN1_TIME *t, time_t when)
{
	/* UTCTime until 2049, GeneralizedTime after, as RFC 5280 4.1.2.5 says. */
	return ASN1_TIME_set(t, when) != NULL;
}

/* The extensions of profile; issuer is x itself for a self-signed certificate. */
static int
add_extensions(X509 *x, X509 *issuer, EVP_PKEY *key, enum certgen_profile profile)
{
	X509V3_CTX ctx;
	const char *bc, *ku, *crl = NULL, *aia = NULL;
	int issuer_is_root, ok = 0;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	issuer_is_root = issuer != x &&
	    (X509_get_extension_flags(issuer) & EXFLAG_SS) != 0;
	switch (profile) {
	case CERTGEN_ROOT_CA:
		bc = "critical,CA:TRUE";
		ku = "critical,keyCertSign,cRLSign";
		break;
	case CERTGEN_ISSUING_CA:
		bc = "critical,CA:TRUE,pathlen:0";
		ku = "critical,keyCertSign,cRLSign";
		break;
	case CERTGEN_SIGN_ONLY:
		bc = "critical,CA:FALSE";
		ku = "critical,digitalSignature,nonRepudiation";
		break;
	case CERTGEN_ORG:
	case CERTGEN_SERVER:
	default:
		bc = "critical,CA:FALSE";
		/* An EC key cannot encipher a content key; it agrees one. */
		ku = is_rsa(key) ?
		    "critical,digitalSignature,nonRepudiation,keyEncipherment" :
		    "critical,digitalSignature,nonRepudiation,keyAgreement";
		break;
	}
	if (issuer != x) {
		crl = issuer_is_root ? "URI:" ROOT_CRL : "URI:" ISSUING_CRL;
		aia = issuer_is_root ?
		    "caIssuers;URI:" ROOT_CACERT ",OCSP;URI:" DEMO_OCSP :
		    "caIssuers;URI:" ISSUING_CACERT ",OCSP;URI:" DEMO_OCSP;
	}
	if (!add_ext(x, &ctx, NID_basic_constraints, bc) ||
	    !add_ext(x, &ctx, NID_key_usage, ku) ||
	    !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto out;
	if (crl != NULL && !add_ext(x, &ctx, NID_crl_distribution_points, crl))
		goto out;
	if (aia != NULL && !add_ext(x, &ctx, NID_info_access, aia))
		goto out;
	if (profile == CERTGEN_SERVER &&
	    (!add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth,emailProtection") ||
	    !add_ext(x, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost")))
		goto out;
	ok = 1;
 out:
	return ok;
}

int
certgen_cert(EVP_PKEY *key, const struct certgen_subject *subject,
    enum certgen_profile profile, X509 *issuer_cert, EVP_PKEY *issuer_key,
    time_t not_before, time_t not_after, uint64_t serial, X509 **out,
    struct why *why)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	ASN1_INTEGER *sn = NULL;
	EVP_MD_CTX *mctx = NULL;
	int r;

	*out = NULL;
	if (key == NULL || issuer_key == NULL || subject == NULL ||
	    subject->cn == NULL || *subject->cn == '\0') {
		r = why_set(why, HEGN_ERR_INVALID,
		    "certificate needs a key, an issuer key and a commonName");
		goto out;
	}
	if (subject->cvr != NULL && !valid_cvr(subject->cvr)) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "certificate %s: CVR must be 8 digits", subject->cn);
		goto out;
	}
	if (profile < CERTGEN_ROOT_CA || profile > CERTGEN_SIGN_ONLY) {
		r = why_set(why, HEGN_ERR_INVALID, "unknown certificate profile %d",
		    (int)profile);
		goto out;
	}
	if (profile == CERTGEN_ROOT_CA && issuer_cert != NULL) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "certificate %s: a root CA is self-signed", subject->cn);
		goto out;
	}
	if (serial == 0 || not_after <= not_before) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "certificate %s: serial must be positive and validity must not "
		    "end before it starts", subject->cn);
		goto out;
	}
	if (issuer_cert != NULL && X509_check_private_key(issuer_cert, issuer_key) != 1) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_INVALID,
		    "certificate %s: issuer key does not match the issuer certificate",
		    subject->cn);
		goto out;
	}
	if (issuer_cert == NULL && EVP_PKEY_eq(key, issuer_key) != 1) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_INVALID,
		    "certificate %s: a self-signed certificate is signed by its own key",
		    subject->cn);
		goto out;
	}
	if ((x = X509_new()) == NULL || (name = make_subject(subject, profile)) == NULL ||
	    (sn = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set_uint64(sn, serial) ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_serialNumber(x, sn) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer_cert != NULL ?
	    X509_get_subject_name(issuer_cert) : name) ||
	    !set_time(X509_getm_notBefore(x), not_before) ||
	    !set_time(X509_getm_notAfter(x), not_after) ||
	    !X509_set_pubkey(x, key) ||
	    !add_extensions(x, issuer_cert != NULL ? issuer_cert : x, key, profile)) {
		r = why_set(why, HEGN_ERR_CRYPTO,
		    "certificate %s: cannot build", subject->cn);
		why_openssl(why);
		goto out;
	}
	if ((mctx = sign_ctx(issuer_key)) == NULL || X509_sign_ctx(x, mctx) <= 0) {
		r = why_set(why, HEGN_ERR_CRYPTO,
		    "certificate %s: cannot sign", subject->cn);
		why_openssl(why);
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
 out:
	X509_free(x);
	X509_NAME_free(name);
	ASN1_INTEGER_free(sn);
	EVP_MD_CTX_free(mctx);
	return r;
}

static int
add_revoked(X509_CRL *crl, uint64_t serial, const ASN1_TIME *when)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *sn = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int ok = 0;

	if ((rev = X509_REVOKED_new()) == NULL ||
	    (sn = ASN1_INTEGER_new()) == NULL ||
	    (reason = ASN1_ENUMERATED_new()) == NULL ||
	    !ASN1_INTEGER_set_uint64(sn, serial) ||
	    !X509_REVOKED_set_serialNumber(rev, sn) ||
	    !X509_REVOKED_set_revocationDate(rev, (ASN1_TIME *)when) ||
	    !ASN1_ENUMERATED_set(reason, CRL_REASON_KEY_COMPROMISE) ||
	    !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0))
		goto out;
	if (!X509_CRL_add0_revoked(crl, rev))
		goto out;
	rev = NULL;
	ok = 1;
 out:
	X509_REVOKED_free(rev);
	ASN1_INTEGER_free(sn);
	ASN1_ENUMERATED_free(reason);
	return ok;
}

int
certgen_crl(X509 *issuer_cert, EVP_PKEY *issuer_key, const uint64_t *serials,
    size_t nserials, time_t last_update, int days, X509_CRL **out,
    struct why *why)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *lu = NULL, *nu = NULL;
	ASN1_INTEGER *num = NULL;
	EVP_MD_CTX *mctx = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *akid = NULL;
	size_t i;
	int r;

	*out = NULL;
	if (issuer_cert == NULL || issuer_key == NULL ||
	    (nserials > 0 && serials == NULL) || days <= 0 || days > 3660) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "CRL needs an issuer, its key and 1..3660 days of validity");
		goto out;
	}
	if (X509_check_private_key(issuer_cert, issuer_key) != 1) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_INVALID,
		    "CRL: issuer key does not match the issuer certificate");
		goto out;
	}
	if (last_update == 0)
		last_update = time(NULL);
	if ((crl = X509_CRL_new()) == NULL || (lu = ASN1_TIME_new()) == NULL ||
	    (nu = ASN1_TIME_new()) == NULL || (num = ASN1_INTEGER_new()) == NULL ||
	    !set_time(lu, last_update) ||
	    !set_time(nu, last_update + (time_t)days * 86400) ||
	    !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer_cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, lu) ||
	    !X509_CRL_set1_nextUpdate(crl, nu))
		goto fail;
	for (i = 0; i < nserials; i++) {
		if (serials[i] == 0 || !add_revoked(crl, serials[i], lu))
			goto fail;
	}
	X509V3_set_ctx(&ctx, issuer_cert, NULL, NULL, crl, 0);
	/* lastUpdate in seconds only grows, so it serves as the cRLNumber. */
	if ((akid = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
	    "keyid:always")) == NULL ||
	    !X509_CRL_add_ext(crl, akid, -1) ||
	    !ASN1_INTEGER_set_int64(num, (int64_t)last_update) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    !X509_CRL_sort(crl))
		goto fail;
	if ((mctx = sign_ctx(issuer_key)) == NULL || X509_CRL_sign_ctx(crl, mctx) <= 0)
		goto fail;
	*out = crl;
	crl = NULL;
	r = 0;
	goto out;
 fail:
	r = why_set(why, HEGN_ERR_CRYPTO, "cannot build or sign the CRL");
	why_openssl(why);
 out:
	X509_CRL_free(crl);
	ASN1_TIME_free(lu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	X509_EXTENSION_free(akid);
	EVP_MD_CTX_free(mctx);
	return r;
}

/* Write what bio holds to path; wipe it first when it is secret. */
static int
write_bio(const char *path, BIO *bio, int mode, int secret, struct why *why)
{
	char *data = NULL;
	long len;
	int r;

	len = BIO_get_mem_data(bio, &data);
	if (len <= 0) {
		r = why_set(why, HEGN_ERR_CRYPTO, "%s: nothing to write", path);
		goto out;
	}
	r = util_write_file(path, data, (size_t)len, mode, why);
 out:
	if (secret && data != NULL && len > 0)
		OPENSSL_cleanse(data, (size_t)len);
	return r;
}

int
certgen_write_key(const char *path, EVP_PKEY *key, struct why *why)
{
	BIO *bio = NULL;
	int r;

	if (key == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		r = why_set(why, HEGN_ERR_CRYPTO, "%s: cannot encode the key", path);
		why_openssl(why);
		goto out;
	}
	r = write_bio(path, bio, 0600, 1, why);
 out:
	BIO_free(bio);
	return r;
}

int
certgen_write_certs(const char *path, X509 *const *certs, size_t n, struct why *why)
{
	BIO *bio = NULL;
	size_t i;
	int r;

	if (certs == NULL || n == 0 || (bio = BIO_new(BIO_s_mem())) == NULL) {
		r = why_set(why, HEGN_ERR_INVALID, "%s: no certificates to write", path);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (certs[i] == NULL || !PEM_write_bio_X509(bio, certs[i])) {
			r = why_set(why, HEGN_ERR_CRYPTO,
			    "%s: cannot encode certificate %zu", path, i + 1);
			why_openssl(why);
			goto out;
		}
	}
	r = write_bio(path, bio, 0644, 0, why);
 out:
	BIO_free(bio);
	return r;
}

int
certgen_write_cert(const char *path, X509 *cert, struct why *why)
{
	return certgen_write_certs(path, &cert, 1, why);
}

int
certgen_write_crl(const char *path, X509_CRL *crl, struct why *why)
{
	BIO *bio = NULL;
	int r;

	if (crl == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_CRL(bio, crl)) {
		r = why_set(why, HEGN_ERR_CRYPTO, "%s: cannot encode the CRL", path);
		why_openssl(why);
		goto out;
	}
	r = write_bio(path, bio, 0644, 0, why);
 out:
	BIO_free(bio);
	return r;
}
