#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "envelope.h"
#include "err.h"
#include "pki.h"
#include "testcerts.h"
#include "testhostile.h"
#include "testlib.h"
#include "util.h"

/* The test world: one CA, leaves for each case, and the same on disk. */
static struct {
	char dir[64];
	EVP_PKEY *ca_key, *other_key, *leaf_key, *ec_key, *expired_key;
	EVP_PKEY *revoked_key, *enconly_key, *stranger_key;
	X509 *ca, *other, *leaf, *ec, *expired, *revoked, *enconly, *stranger;
	X509_CRL *crl;
	struct pki *pki;     /* trusts ca, no CRL checks */
	struct pki *pki_crl; /* trusts ca, checks its CRL */
} w;

static const char msg[] = "{\"kind\":\"referral\",\"to\":\"hovmand-care\",\"basic\":{}}";

static char *
wpath(const char *name)
{
	static char p[8][128];
	static int n;

	n = (n + 1) % 8;
	snprintf(p[n], sizeof(p[n]), "%s/%s", w.dir, name);
	return p[n];
}

static void
setup_world(void)
{
	X509 *revoked[2];
	STACK_OF(X509) *anchors;
	STACK_OF(X509_CRL) *crls;
	long year = 365L * 86400;

	snprintf(w.dir, sizeof(w.dir), "/tmp/hegn-test-envelope-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		abort();
	w.ca_key = testcerts_rsa(2048);
	w.other_key = testcerts_rsa(2048);
	w.leaf_key = testcerts_rsa(2048);
	w.ec_key = testcerts_ec();
	w.expired_key = testcerts_rsa(2048);
	w.revoked_key = testcerts_rsa(2048);
	w.enconly_key = testcerts_rsa(2048);
	w.stranger_key = testcerts_rsa(2048);
	w.ca = testcerts_cert(NULL, NULL, w.ca_key, "Test Root CA", 1, -86400, 10 * year,
	    TESTCERTS_CA);
	w.other = testcerts_cert(NULL, NULL, w.other_key, "Other Root CA", 1, -86400,
	    10 * year, TESTCERTS_CA);
	w.leaf = testcerts_cert(w.ca, w.ca_key, w.leaf_key, "ringsted-visitation", 10,
	    -86400, year, TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	w.ec = testcerts_cert(w.ca, w.ca_key, w.ec_key, "ec-party", 11, -86400, year,
	    TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	w.expired = testcerts_cert(w.ca, w.ca_key, w.expired_key, "expired-provider", 12,
	    -2 * year, -86400, TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	w.revoked = testcerts_cert(w.ca, w.ca_key, w.revoked_key, "revoked-provider", 13,
	    -86400, year, TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	w.enconly = testcerts_cert(w.ca, w.ca_key, w.enconly_key, "encrypt-only", 14,
	    -86400, year, TESTCERTS_ENCRYPT);
	w.stranger = testcerts_cert(w.other, w.other_key, w.stranger_key, "stranger", 15,
	    -86400, year, TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	revoked[0] = w.revoked;
	revoked[1] = NULL;
	w.crl = testcerts_crl(w.ca, w.ca_key, revoked);
	if (w.ca == NULL || w.other == NULL || w.leaf == NULL || w.ec == NULL ||
	    w.expired == NULL || w.revoked == NULL || w.enconly == NULL ||
	    w.stranger == NULL || w.crl == NULL)
		abort();
	anchors = sk_X509_new_null();
	sk_X509_push(anchors, w.ca);
	crls = sk_X509_CRL_new_null();
	sk_X509_CRL_push(crls, w.crl);
	if (pki_from_objects(anchors, NULL, NULL, 0, &w.pki, NULL) != 0 ||
	    pki_from_objects(anchors, NULL, crls, PKI_CRL_CHECK, &w.pki_crl, NULL) != 0)
		abort();
	sk_X509_free(anchors);
	sk_X509_CRL_free(crls);
	if (testcerts_write_cert(wpath("ca.pem"), w.ca) != 0 ||
	    testcerts_write_cert(wpath("leaf.pem"), w.leaf) != 0 ||
	    testcerts_write_key(wpath("leaf.key"), w.leaf_key) != 0 ||
	    testcerts_write_cert(wpath("ec.pem"), w.ec) != 0 ||
	    testcerts_write_key(wpath("ec.key"), w.ec_key) != 0 ||
	    testcerts_write_cert(wpath("stranger.pem"), w.stranger) != 0 ||
	    testcerts_write_key(wpath("stranger.key"), w.stranger_key) != 0)
		abort();
}

static void
teardown_world(void)
{
	pki_free(w.pki);
	pki_free(w.pki_crl);
	X509_CRL_free(w.crl);
	X509_free(w.ca);
	X509_free(w.other);
	X509_free(w.leaf);
	X509_free(w.ec);
	X509_free(w.expired);
	X509_free(w.revoked);
	X509_free(w.enconly);
	X509_free(w.stranger);
	EVP_PKEY_free(w.ca_key);
	EVP_PKEY_free(w.other_key);
	EVP_PKEY_free(w.leaf_key);
	EVP_PKEY_free(w.ec_key);
	EVP_PKEY_free(w.expired_key);
	EVP_PKEY_free(w.revoked_key);
	EVP_PKEY_free(w.enconly_key);
	EVP_PKEY_free(w.stranger_key);
	testcerts_rmtree(w.dir);
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static void
read_bytes(const char *path, struct buf *b)
{
	ck_assert_int_eq(util_read_file(path, ENVELOPE_MAX_DER, b, NULL), 0);
}

/* The signatureAlgorithm of the one SignerInfo in der. */
static int
sig_alg_nid(const struct buf *der, int *saltlen)
{
	const unsigned char *p = der->data;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	X509_ALGOR *sig;
	RSA_PSS_PARAMS *pss;
	int nid;

	cms = d2i_CMS_ContentInfo(NULL, &p, (long)der->len);
	ck_assert_ptr_nonnull(cms);
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sig);
	nid = OBJ_obj2nid(sig->algorithm);
	*saltlen = -1;
	if (nid == NID_rsassaPss) {
		pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS),
		    sig->parameter);
		ck_assert_ptr_nonnull(pss);
		*saltlen = (int)ASN1_INTEGER_get(pss->saltLength);
		RSA_PSS_PARAMS_free(pss);
	}
	CMS_ContentInfo_free(cms);
	return nid;
}

/*
 * ours (envelope_sign: the attributes signed from the content's digest,
 * envelope_sign_digest, then the content attached, envelope_attach) is
 * what OpenSSL's own CMS_final makes from the content: the same signature
 * algorithm identifier, byte for byte, the same signed attributes in the
 * same order, and (RSA: the signature's length is fixed) the same length.
 */
static void
same_as_cms_final(EVP_PKEY *key, X509 *cert, enum envelope_padding pad, const struct buf *ours)
{
	CMS_ContentInfo *ref, *our;
	CMS_SignerInfo *rsi, *osi;
	X509_ALGOR *ralg, *oalg;
	EVP_PKEY_CTX *pctx;
	BIO *in;
	const unsigned char *p = ours->data;
	unsigned char *rder = NULL, *oder = NULL;
	int rn, on, i, flags = CMS_PARTIAL | CMS_BINARY;

	ck_assert_ptr_nonnull(ref = CMS_sign(NULL, NULL, NULL, NULL, flags));
	ck_assert_ptr_nonnull(rsi = CMS_add1_signer(ref, cert, key, EVP_sha256(),
	    CMS_KEY_PARAM | CMS_NOSMIMECAP));
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA && pad == ENVELOPE_PSS) {
		ck_assert_ptr_nonnull(pctx = CMS_SignerInfo_get0_pkey_ctx(rsi));
		ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 0);
		ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 0);
		ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 0);
	}
	ck_assert_int_eq(CMS_signed_add1_attr_by_NID(rsi, NID_id_smime_aa_contentIdentifier,
	    V_ASN1_OCTET_STRING, "msg-0001", 8), 1);
	ck_assert_ptr_nonnull(in = BIO_new_mem_buf(msg, (int)strlen(msg)));
	ck_assert_int_eq(CMS_final(ref, in, NULL, flags), 1);
	BIO_free(in);

	ck_assert_ptr_nonnull(our = d2i_CMS_ContentInfo(NULL, &p, (long)ours->len));
	osi = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(our), 0);
	CMS_SignerInfo_get0_algs(rsi, NULL, NULL, NULL, &ralg);
	CMS_SignerInfo_get0_algs(osi, NULL, NULL, NULL, &oalg);
	rn = i2d_X509_ALGOR(ralg, &rder);
	on = i2d_X509_ALGOR(oalg, &oder);
	ck_assert_int_gt(rn, 0);
	ck_assert_int_eq(on, rn);
	ck_assert_mem_eq(oder, rder, (size_t)rn);
	OPENSSL_free(rder);
	OPENSSL_free(oder);
	ck_assert_int_eq(CMS_signed_get_attr_count(osi), CMS_signed_get_attr_count(rsi));
	for (i = 0; i < CMS_signed_get_attr_count(rsi); i++)
		ck_assert_int_eq(OBJ_cmp(X509_ATTRIBUTE_get0_object(CMS_signed_get_attr(osi, i)),
		    X509_ATTRIBUTE_get0_object(CMS_signed_get_attr(rsi, i))), 0);
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
		ck_assert_int_eq(i2d_CMS_ContentInfo(our, NULL), i2d_CMS_ContentInfo(ref, NULL));
	CMS_ContentInfo_free(ref);
	CMS_ContentInfo_free(our);
}

static void
check_round_trip(EVP_PKEY *key, X509 *cert, enum envelope_padding pad, int want_nid)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const uint8_t *c;
	size_t clen;
	time_t now = time(NULL);
	int saltlen;

	ck_assert_int_eq(envelope_sign(key, cert, NULL, pad, (const uint8_t *)msg,
	    strlen(msg), "msg-0001", &der, &why), 0);
	ck_assert(envelope_is_signed(der.data, der.len));
	ck_assert(!envelope_is_enveloped(der.data, der.len));
	ck_assert_int_eq(sig_alg_nid(&der, &saltlen), want_nid);
	if (want_nid == NID_rsassaPss)
		ck_assert_int_eq(saltlen, 32);
	same_as_cms_final(key, cert, pad, &der);
	ck_assert_msg(envelope_verify(w.pki, der.data, der.len, 0, &s, &why) == 0,
	    "verify: %s", why.text);
	c = envelope_signed_content(s, &clen);
	ck_assert_uint_eq(clen, strlen(msg));
	ck_assert_mem_eq(c, msg, clen);
	ck_assert_str_eq(envelope_signed_content_id(s), "msg-0001");
	/* signingTime is the signer's clock; it was just now. */
	ck_assert(envelope_signed_time(s) >= now - 300 &&
	    envelope_signed_time(s) <= now + 300);
	ck_assert_int_eq(X509_cmp(envelope_signed_signer(s), cert), 0);
	envelope_signed_free(s);
	buf_free(&der, 0);
}

START_TEST(test_sign_verify_pkcs1)
{
	/* OpenSSL names PKCS#1 v1.5 rsaEncryption (RFC 5754 allows both). */
	check_round_trip(w.leaf_key, w.leaf, ENVELOPE_PKCS1, NID_rsaEncryption);
}
END_TEST

START_TEST(test_sign_verify_pss)
{
	check_round_trip(w.leaf_key, w.leaf, ENVELOPE_PSS, NID_rsassaPss);
}
END_TEST

START_TEST(test_sign_verify_ecdsa)
{
	/* padding is ignored for EC keys */
	check_round_trip(w.ec_key, w.ec, ENVELOPE_PSS, NID_ecdsa_with_SHA256);
}
END_TEST

START_TEST(test_sign_content_id)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	size_t clen;

	/* Without an id there is no attribute; an empty content signs too. */
	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    NULL, 0, NULL, &der, &why), 0);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why), 0);
	ck_assert_ptr_null(envelope_signed_content_id(s));
	envelope_signed_content(s, &clen);
	ck_assert_uint_eq(clen, 0);
	envelope_signed_free(s);
	buf_free(&der, 0);

	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), "has space", &der, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(der.data);
	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), "", &der, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg),
	    "x123456789x123456789x123456789x123456789x123456789x123456789abcde",
	    &der, &why), HEGN_ERR_INVALID);
	/* A key that is not the certificate's cannot sign. */
	ck_assert_int_ne(envelope_sign(w.ec_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), NULL, &der, &why), 0);
	ck_assert_ptr_null(der.data);
}
END_TEST

START_TEST(test_openssl_verifies_ours)
{
	struct buf der = { 0 }, got = { 0 };
	enum envelope_padding pads[] = { ENVELOPE_PKCS1, ENVELOPE_PSS };
	size_t i;

	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, pads[i],
		    (const uint8_t *)msg, strlen(msg), "msg-1", &der, NULL), 0);
		write_bytes(wpath("ours.der"), der.data, der.len);
		ck_assert_int_eq(testcerts_run("openssl cms -verify -inform DER -in %s "
		    "-CAfile %s -out %s", wpath("ours.der"), wpath("ca.pem"),
		    wpath("ours.out")), 0);
		read_bytes(wpath("ours.out"), &got);
		ck_assert_uint_eq(got.len, strlen(msg));
		ck_assert_mem_eq(got.data, msg, got.len);
		buf_free(&got, 0);
		/* The same tool refuses it under another trust anchor. */
		ck_assert_int_ne(testcerts_run("openssl cms -verify -inform DER -in %s "
		    "-CAfile %s -out /dev/null", wpath("ours.der"),
		    wpath("stranger.pem")), 0);
		buf_free(&der, 0);
	}
}
END_TEST

START_TEST(test_we_verify_openssl)
{
	const char *opts[] = { "", "-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32" };
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const uint8_t *c;
	size_t i, clen;

	write_bytes(wpath("msg.txt"), msg, strlen(msg));
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(testcerts_run("openssl cms -sign -binary -nodetach "
		    "-outform DER -md sha256 -in %s -signer %s -inkey %s %s -out %s",
		    wpath("msg.txt"), wpath("leaf.pem"), wpath("leaf.key"), opts[i],
		    wpath("theirs.der")), 0);
		read_bytes(wpath("theirs.der"), &der);
		ck_assert_msg(envelope_verify(w.pki, der.data, der.len, 0, &s, &why) == 0,
		    "verify %zu: %s", i, why.text);
		c = envelope_signed_content(s, &clen);
		ck_assert_uint_eq(clen, strlen(msg));
		ck_assert_mem_eq(c, msg, clen);
		ck_assert_ptr_null(envelope_signed_content_id(s));
		ck_assert(envelope_signed_time(s) != 0);
		envelope_signed_free(s);
		buf_free(&der, 0);
	}
}
END_TEST

START_TEST(test_weak_digest)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };

	write_bytes(wpath("msg.txt"), msg, strlen(msg));
	ck_assert_int_eq(testcerts_run("openssl cms -sign -binary -nodetach "
	    "-outform DER -md sha1 -in %s -signer %s -inkey %s -out %s",
	    wpath("msg.txt"), wpath("leaf.pem"), wpath("leaf.key"),
	    wpath("sha1.der")), 0);
	read_bytes(wpath("sha1.der"), &der);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why),
	    HEGN_ERR_SIGNATURE);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(strstr(why.text, "weak digest"));
	/* The conformance switch accepts it; production never sets it. */
	ck_assert_int_eq(envelope_verify_opts(w.pki, der.data, der.len, NULL, 0, 0,
	    ENVELOPE_VERIFY_LEGACY_SHA1, &s, &why), 0);
	envelope_signed_free(s);
	buf_free(&der, 0);

	/* PSS whose parameters default to SHA-1. */
	ck_assert_int_eq(testcerts_run("openssl cms -sign -binary -nodetach "
	    "-outform DER -md sha1 -in %s -signer %s -inkey %s "
	    "-keyopt rsa_padding_mode:pss -out %s",
	    wpath("msg.txt"), wpath("leaf.pem"), wpath("leaf.key"),
	    wpath("sha1pss.der")), 0);
	read_bytes(wpath("sha1pss.der"), &der);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why),
	    HEGN_ERR_SIGNATURE);
	ck_assert_ptr_nonnull(strstr(why.text, "weak digest"));
	buf_free(&der, 0);
}
END_TEST

START_TEST(test_two_signers_and_detached)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const uint8_t *c;
	size_t clen;
	char other[] = "something else entirely";

	write_bytes(wpath("msg.txt"), msg, strlen(msg));
	ck_assert_int_eq(testcerts_run("openssl cms -sign -binary -nodetach "
	    "-outform DER -md sha256 -in %s -signer %s -inkey %s -signer %s -inkey %s "
	    "-out %s", wpath("msg.txt"), wpath("leaf.pem"), wpath("leaf.key"),
	    wpath("ec.pem"), wpath("ec.key"), wpath("two.der")), 0);
	read_bytes(wpath("two.der"), &der);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "exactly one signer"));
	buf_free(&der, 0);

	ck_assert_int_eq(testcerts_run("openssl cms -sign -binary "
	    "-outform DER -md sha256 -in %s -signer %s -inkey %s -out %s",
	    wpath("msg.txt"), wpath("leaf.pem"), wpath("leaf.key"),
	    wpath("det.der")), 0);
	read_bytes(wpath("det.der"), &der);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(envelope_verify_detached(w.pki, der.data, der.len,
	    (const uint8_t *)msg, strlen(msg), 0, &s, &why), 0);
	c = envelope_signed_content(s, &clen);
	ck_assert_uint_eq(clen, strlen(msg));
	ck_assert_mem_eq(c, msg, clen);
	envelope_signed_free(s);
	ck_assert_int_eq(envelope_verify_detached(w.pki, der.data, der.len,
	    (const uint8_t *)other, strlen(other), 0, &s, &why), HEGN_ERR_SIGNATURE);
	ck_assert_ptr_null(s);
	buf_free(&der, 0);
}
END_TEST

/* Every flip inside the content or the signature value must be refused. */
START_TEST(test_tampered_signed)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const uint8_t *c, *at;
	size_t i, clen, cstart, sigstart;
	int r, refused = 0;

	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PSS,
	    (const uint8_t *)msg, strlen(msg), "msg-7", &der, NULL), 0);
	at = memmem(der.data, der.len, msg, strlen(msg));
	ck_assert_ptr_nonnull(at);
	cstart = (size_t)(at - der.data);
	/* No unsigned attributes: the RSA-2048 signature value ends the DER. */
	sigstart = der.len - 256;
	for (i = 0; i < der.len; i++) {
		der.data[i] ^= 0x01;
		r = envelope_verify(w.pki, der.data, der.len, 0, &s, &why);
		der.data[i] ^= 0x01;
		if (r == 0) {
			/* Accepted: then nothing that matters may have changed. */
			ck_assert_msg(!(i >= cstart && i < cstart + strlen(msg)) &&
			    i < sigstart, "flip at %zu of %zu accepted", i, der.len);
			c = envelope_signed_content(s, &clen);
			ck_assert_uint_eq(clen, strlen(msg));
			ck_assert_mem_eq(c, msg, clen);
			ck_assert_str_eq(envelope_signed_content_id(s), "msg-7");
			envelope_signed_free(s);
			s = NULL;
			continue;
		}
		ck_assert_ptr_null(s);
		refused++;
		if (i >= cstart && i < cstart + strlen(msg))
			ck_assert_msg(r == HEGN_ERR_SIGNATURE, "content flip at %zu: %d %s",
			    i, r, why.text);
		if (i >= sigstart)
			ck_assert_msg(r == HEGN_ERR_SIGNATURE, "signature flip at %zu: %d %s",
			    i, r, why.text);
	}
	ck_assert_int_gt(refused, (int)(der.len * 9 / 10));
	/* The untouched original still verifies. */
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why), 0);
	envelope_signed_free(s);
	buf_free(&der, 0);
}
END_TEST

START_TEST(test_truncated_and_garbage)
{
	struct buf der = { 0 }, env = { 0 }, out = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	uint8_t junk[512], *big;
	size_t n;
	int r;

	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), "msg-1", &der, NULL), 0);
	ck_assert_int_eq(envelope_seal(w.leaf, ENVELOPE_AES256_GCM, der.data, der.len,
	    1, &env, NULL), 0);
	for (n = 0; n < der.len; n += (n < 64 ? 1 : 37)) {
		r = envelope_verify(w.pki, der.data, n, 0, &s, &why);
		ck_assert_msg(r != 0, "truncated to %zu accepted", n);
		ck_assert_ptr_null(s);
	}
	for (n = 0; n < env.len; n += (n < 64 ? 1 : 41)) {
		r = envelope_open(w.leaf_key, w.leaf, env.data, n, &out, &why);
		ck_assert_msg(r != 0, "truncated envelope %zu accepted", n);
		ck_assert_ptr_null(out.data);
		(void)envelope_is_signed(env.data, n);
		(void)envelope_is_enveloped(der.data, n);
	}
	/* Trailing bytes are refused too. */
	big = malloc(der.len + 4);
	memcpy(big, der.data, der.len);
	memcpy(big + der.len, "\x05\x00\x05\x00", 4);
	ck_assert_int_eq(envelope_verify(w.pki, big, der.len + 4, 0, &s, &why),
	    HEGN_ERR_INVALID);
	free(big);

	/* Garbage, an empty buffer, and the wrong CMS type. */
	for (n = 0; n < sizeof(junk); n++)
		junk[n] = (uint8_t)(n * 131 + 7);
	ck_assert_int_eq(envelope_verify(w.pki, junk, sizeof(junk), 0, &s, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(envelope_verify(w.pki, junk, 0, 0, &s, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(envelope_open(w.leaf_key, w.leaf, junk, sizeof(junk), &out,
	    &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(envelope_verify(w.pki, env.data, env.len, 0, &s, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(envelope_open(w.leaf_key, w.leaf, der.data, der.len, &out,
	    &why), HEGN_ERR_INVALID);
	ck_assert(!envelope_is_signed(junk, sizeof(junk)));
	ck_assert(!envelope_is_enveloped(junk, sizeof(junk)));
	ck_assert(!envelope_is_signed(NULL, 0));
	ck_assert(!envelope_is_signed((const uint8_t *)"\x30\x80", 2));
	ck_assert(!envelope_is_signed((const uint8_t *)"\x30\x03\x06\x01", 4));
	ck_assert(envelope_is_enveloped(env.data, env.len));
	ck_assert(!envelope_is_signed(env.data, env.len));
	buf_free(&der, 0);
	buf_free(&env, 0);
}
END_TEST

/*
 * Random multi-byte damage (a fixed-seed generator, so a failure repeats):
 * parsing must never crash, and nothing altered may verify with other
 * content or open to other content.
 */
START_TEST(test_random_damage)
{
	struct buf der = { 0 }, env = { 0 }, out = { 0 };
	struct envelope_signed *s = NULL;
	uint32_t x = 2463534242u;
	uint8_t *copy;
	size_t i, k, n, clen;
	const uint8_t *c;

	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PSS,
	    (const uint8_t *)msg, strlen(msg), "msg-3", &der, NULL), 0);
	ck_assert_int_eq(envelope_seal(w.leaf, ENVELOPE_AES256_GCM, der.data, der.len,
	    1, &env, NULL), 0);
	copy = malloc(der.len > env.len ? der.len : env.len);
	for (i = 0; i < 1500; i++) {
		const struct buf *b = (i & 1) ? &env : &der;

		memcpy(copy, b->data, b->len);
		n = 1 + (x % 4);
		for (k = 0; k < n; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			copy[x % b->len] = (uint8_t)(x >> 8);
		}
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (memcmp(copy, b->data, b->len) == 0)
			continue;
		(void)envelope_is_signed(copy, b->len);
		(void)envelope_is_enveloped(copy, b->len);
		if (b == &der) {
			if (envelope_verify(w.pki, copy, b->len, 0, &s, NULL) == 0) {
				c = envelope_signed_content(s, &clen);
				ck_assert_uint_eq(clen, strlen(msg));
				ck_assert_mem_eq(c, msg, clen);
				envelope_signed_free(s);
				s = NULL;
			}
		} else if (envelope_open(w.leaf_key, w.leaf, copy, b->len, &out,
		    NULL) == 0) {
			ck_assert_uint_eq(out.len, der.len);
			ck_assert_mem_eq(out.data, der.data, out.len);
			buf_free(&out, 1);
		}
	}
	free(copy);
	buf_free(&der, 0);
	buf_free(&env, 0);
}
END_TEST

static void
check_cert_refused(EVP_PKEY *key, X509 *cert, const struct pki *p, time_t at,
    const char *want)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };

	ck_assert_int_eq(envelope_sign(key, cert, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), "msg-1", &der, NULL), 0);
	ck_assert_int_eq(envelope_verify(p, der.data, der.len, at, &s, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(why.text, want) != NULL, "reason: %s", why.text);
	buf_free(&der, 0);
}

START_TEST(test_signer_certificate)
{
	check_cert_refused(w.expired_key, w.expired, w.pki, 0, "expired");
	check_cert_refused(w.stranger_key, w.stranger, w.pki, 0, "unknown CA");
	check_cert_refused(w.revoked_key, w.revoked, w.pki_crl, 0, "revoked");
	check_cert_refused(w.enconly_key, w.enconly, w.pki, 0, "key usage");
	/* A valid certificate, validated at a time before it was issued. */
	check_cert_refused(w.leaf_key, w.leaf, w.pki, time(NULL) - 3 * 86400,
	    "not yet valid");
}
END_TEST

/* Only id-data is signed content; another eContentType is refused. */
START_TEST(test_econtent_type)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };

	write_bytes(wpath("msg.txt"), msg, strlen(msg));
	ck_assert_int_eq(testcerts_run("openssl cms -sign -binary -nodetach "
	    "-econtent_type 1.2.840.113549.1.9.16.1.1 -outform DER -md sha256 "
	    "-in %s -signer %s -inkey %s -out %s", wpath("msg.txt"),
	    wpath("leaf.pem"), wpath("leaf.key"), wpath("ct.der")), 0);
	read_bytes(wpath("ct.der"), &der);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why),
	    HEGN_ERR_UNSUPPORTED);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(strstr(why.text, "not id-data"));
	buf_free(&der, 0);
}
END_TEST

/* A signer certificate left out of the SignedData cannot be validated. */
START_TEST(test_signer_not_included)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };

	write_bytes(wpath("msg.txt"), msg, strlen(msg));
	ck_assert_int_eq(testcerts_run("openssl cms -sign -binary -nodetach -nocerts "
	    "-outform DER -md sha256 -in %s -signer %s -inkey %s -out %s",
	    wpath("msg.txt"), wpath("leaf.pem"), wpath("leaf.key"),
	    wpath("nocert.der")), 0);
	read_bytes(wpath("nocert.der"), &der);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "not included"));
	buf_free(&der, 0);
}
END_TEST

static int
cms_type(const struct buf *der, int *inner)
{
	const unsigned char *p = der->data;
	CMS_ContentInfo *cms;
	int nid;

	cms = d2i_CMS_ContentInfo(NULL, &p, (long)der->len);
	ck_assert_ptr_nonnull(cms);
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	*inner = OBJ_obj2nid(CMS_get0_eContentType(cms));
	CMS_ContentInfo_free(cms);
	return nid;
}

START_TEST(test_seal_open)
{
	struct buf env = { 0 }, out = { 0 };
	struct why why = { 0 };
	int inner, c, r;

	for (c = 0; c < 2; c++) {
		ck_assert_int_eq(envelope_seal(w.leaf, (enum envelope_cipher)c,
		    (const uint8_t *)msg, strlen(msg), 0, &env, &why), 0);
		ck_assert_int_eq(cms_type(&env, &inner), c == ENVELOPE_AES256_GCM ?
		    NID_id_smime_ct_authEnvelopedData : NID_pkcs7_enveloped);
		ck_assert_int_eq(inner, NID_pkcs7_data);
		ck_assert_int_eq(envelope_open(w.leaf_key, w.leaf, env.data, env.len,
		    &out, &why), 0);
		ck_assert_uint_eq(out.len, strlen(msg));
		ck_assert_mem_eq(out.data, msg, out.len);
		buf_free(&out, 1);
		/* Another party's key is told nothing but "not for you". */
		ck_assert_int_eq(envelope_open(w.stranger_key, w.stranger, env.data,
		    env.len, &out, &why), HEGN_ERR_DECRYPT);
		ck_assert_ptr_null(out.data);
		ck_assert_str_eq(why.text,
		    "message is not addressed to this key or is damaged");
		/*
		 * The right certificate with the wrong key: GCM fails.  CBC
		 * decrypts with a random key (no oracle), and its padding
		 * check passes about once in 256 tries, so the assertion is
		 * that the sealed content never comes out.
		 */
		r = envelope_open(w.stranger_key, w.leaf, env.data, env.len, &out, &why);
		if (c == ENVELOPE_AES256_GCM)
			ck_assert_int_eq(r, HEGN_ERR_DECRYPT);
		ck_assert(r != 0 || out.len != strlen(msg) ||
		    memcmp(out.data, msg, out.len) != 0);
		buf_free(&out, 1);
		buf_free(&env, 0);

		/* inner_signed marks the encrypted content as SignedData. */
		ck_assert_int_eq(envelope_seal(w.leaf, (enum envelope_cipher)c,
		    (const uint8_t *)msg, strlen(msg), 1, &env, &why), 0);
		cms_type(&env, &inner);
		ck_assert_int_eq(inner, NID_pkcs7_signed);
		buf_free(&env, 0);

		/* EC P-256 recipients use ECDH key agreement. */
		ck_assert_int_eq(envelope_seal(w.ec, (enum envelope_cipher)c,
		    (const uint8_t *)msg, strlen(msg), 0, &env, &why), 0);
		ck_assert_int_eq(envelope_open(w.ec_key, w.ec, env.data, env.len,
		    &out, &why), 0);
		ck_assert_mem_eq(out.data, msg, out.len);
		buf_free(&out, 1);
		ck_assert_int_eq(envelope_open(w.leaf_key, w.leaf, env.data, env.len,
		    &out, &why), HEGN_ERR_DECRYPT);
		buf_free(&env, 0);
	}
}
END_TEST

START_TEST(test_seal_tampered)
{
	struct buf env = { 0 }, out = { 0 };
	struct why why = { 0 };
	size_t i;
	int r, refused = 0;

	ck_assert_int_eq(envelope_seal(w.leaf, ENVELOPE_AES256_GCM,
	    (const uint8_t *)msg, strlen(msg), 0, &env, &why), 0);
	/* The GCM tag (mac) closes the AuthEnvelopedData. */
	env.data[env.len - 1] ^= 0x80;
	ck_assert_int_eq(envelope_open(w.leaf_key, w.leaf, env.data, env.len, &out,
	    &why), HEGN_ERR_DECRYPT);
	env.data[env.len - 1] ^= 0x80;
	/* No flip anywhere may yield other content than was sealed. */
	for (i = 0; i < env.len; i++) {
		env.data[i] ^= 0x04;
		r = envelope_open(w.leaf_key, w.leaf, env.data, env.len, &out, &why);
		env.data[i] ^= 0x04;
		if (r == 0) {
			ck_assert_uint_eq(out.len, strlen(msg));
			ck_assert_mem_eq(out.data, msg, out.len);
			buf_free(&out, 1);
		} else {
			ck_assert_ptr_null(out.data);
			refused++;
		}
	}
	ck_assert_int_gt(refused, (int)(env.len * 9 / 10));
	buf_free(&env, 0);
}
END_TEST

START_TEST(test_openssl_decrypts_ours)
{
	struct buf env = { 0 }, got = { 0 };
	int c;

	for (c = 0; c < 2; c++) {
		ck_assert_int_eq(envelope_seal(w.leaf, (enum envelope_cipher)c,
		    (const uint8_t *)msg, strlen(msg), 0, &env, NULL), 0);
		write_bytes(wpath("sealed.der"), env.data, env.len);
		ck_assert_int_eq(testcerts_run("openssl cms -decrypt -binary -inform DER "
		    "-in %s -recip %s -inkey %s -out %s", wpath("sealed.der"),
		    wpath("leaf.pem"), wpath("leaf.key"), wpath("sealed.out")), 0);
		read_bytes(wpath("sealed.out"), &got);
		ck_assert_uint_eq(got.len, strlen(msg));
		ck_assert_mem_eq(got.data, msg, got.len);
		buf_free(&got, 0);
		ck_assert_int_ne(testcerts_run("openssl cms -decrypt -binary -inform DER "
		    "-in %s -recip %s -inkey %s -out /dev/null", wpath("sealed.der"),
		    wpath("stranger.pem"), wpath("stranger.key")), 0);
		buf_free(&env, 0);
	}
}
END_TEST

/*
 * What a provider does with a fetched message (docs/formats.md): decrypt,
 * then verify, with stock openssl; for an RSA and an EC recipient.
 */
START_TEST(test_openssl_provider_pipeline)
{
	struct buf der = { 0 }, env = { 0 }, got = { 0 };
	const char *who[] = { "leaf", "ec" };
	X509 *certs[] = { w.leaf, w.ec };
	size_t i;

	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PSS,
	    (const uint8_t *)msg, strlen(msg), "msg-9", &der, NULL), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(envelope_seal(certs[i], ENVELOPE_AES256_GCM, der.data,
		    der.len, 1, &env, NULL), 0);
		write_bytes(wpath("fetched.der"), env.data, env.len);
		ck_assert_int_eq(testcerts_run("openssl cms -decrypt -binary -inform DER "
		    "-in %s -recip %s/%s.pem -inkey %s/%s.key -out %s && "
		    "openssl cms -verify -binary -inform DER -in %s -CAfile %s -out %s",
		    wpath("fetched.der"), w.dir, who[i], w.dir, who[i],
		    wpath("inner.der"), wpath("inner.der"), wpath("ca.pem"),
		    wpath("fetched.out")), 0);
		read_bytes(wpath("fetched.out"), &got);
		ck_assert_uint_eq(got.len, strlen(msg));
		ck_assert_mem_eq(got.data, msg, got.len);
		buf_free(&got, 0);
		buf_free(&env, 0);
	}
	buf_free(&der, 0);
}
END_TEST

/*
 * A sealed submission made with stock openssl (sign, then encrypt to the
 * gateway): the encrypted content type is id-data, since openssl cms
 * -encrypt ignores -econtent_type; the gateway opens it and finds a
 * SignedData inside.
 */
START_TEST(test_openssl_sealed_submission)
{
	struct buf env = { 0 }, out = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const uint8_t *c;
	size_t clen;

	write_bytes(wpath("sub.json"), msg, strlen(msg));
	ck_assert_int_eq(testcerts_run("openssl cms -sign -binary -nodetach "
	    "-outform DER -md sha256 -in %s -signer %s -inkey %s "
	    "-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out %s && "
	    "openssl cms -encrypt -binary -outform DER -in %s -aes-256-gcm "
	    "-recip %s -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 "
	    "-keyopt rsa_mgf1_md:sha256 -out %s",
	    wpath("sub.json"), wpath("leaf.pem"), wpath("leaf.key"),
	    wpath("sub-signed.der"), wpath("sub-signed.der"), wpath("leaf.pem"),
	    wpath("sub.der")), 0);
	read_bytes(wpath("sub.der"), &env);
	ck_assert_int_eq(envelope_open(w.leaf_key, w.leaf, env.data, env.len, &out,
	    &why), 0);
	ck_assert(envelope_is_signed(out.data, out.len));
	ck_assert_msg(envelope_verify(w.pki, out.data, out.len, 0, &s, &why) == 0,
	    "%s", why.text);
	c = envelope_signed_content(s, &clen);
	ck_assert_uint_eq(clen, strlen(msg));
	ck_assert_mem_eq(c, msg, clen);
	ck_assert_int_eq(X509_cmp(envelope_signed_signer(s), w.leaf), 0);
	envelope_signed_free(s);
	buf_free(&out, 1);
	buf_free(&env, 0);
}
END_TEST

START_TEST(test_we_decrypt_openssl)
{
	const char *opts[] = {
		"-aes-256-gcm -recip $CERT -keyopt rsa_padding_mode:oaep",
		"-aes-256-cbc -recip $CERT",            /* PKCS#1 v1.5 key transport */
		"-aes-256-gcm -recip $CERT",
		"-aes-256-cbc -recip $CERT -keyopt rsa_padding_mode:oaep "
		    "-keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256",
	};
	struct buf env = { 0 }, out = { 0 };
	struct why why = { 0 };
	size_t i;

	write_bytes(wpath("msg.txt"), msg, strlen(msg));
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		/* The shell expands $CERT inside the options. */
		ck_assert_int_eq(testcerts_run("CERT=%s; openssl cms -encrypt -binary "
		    "-outform DER -in %s %s -out %s", wpath("leaf.pem"),
		    wpath("msg.txt"), opts[i], wpath("enc.der")), 0);
		read_bytes(wpath("enc.der"), &env);
		ck_assert(envelope_is_enveloped(env.data, env.len));
		ck_assert_msg(envelope_open(w.leaf_key, w.leaf, env.data, env.len, &out,
		    &why) == 0, "%zu: %s", i, why.text);
		ck_assert_uint_eq(out.len, strlen(msg));
		ck_assert_mem_eq(out.data, msg, out.len);
		buf_free(&out, 1);
		buf_free(&env, 0);
	}
}
END_TEST

/* gpgsm (GnuPG's own CMS code) must accept our PSS signatures. */
START_TEST(test_gpgsm_verifies_pss)
{
	struct buf der = { 0 };
	char home[128], fpr[EVP_MAX_MD_SIZE * 3 + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen, i;
	FILE *f;

	if (testcerts_run("command -v gpgsm") != 0) {
		TESTLIB_SKIP("gpgsm not installed; PSS interoperability not checked");
		return;
	}
	snprintf(home, sizeof(home), "%s/gnupg", w.dir);
	ck_assert_int_eq(mkdir(home, 0700), 0);
	/* gpgsm trusts a root listed by SHA-1 fingerprint in trustlist.txt. */
	X509_digest(w.ca, EVP_sha1(), md, &mdlen);
	for (i = 0; i < mdlen; i++)
		snprintf(fpr + 3 * i, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
	snprintf(fpr + 3 * mdlen - 1, 2, "%s", "");
	f = fopen(wpath("gnupg/trustlist.txt"), "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s S relax\n", fpr);
	fclose(f);
	f = fopen(wpath("gnupg/gpgsm.conf"), "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "disable-crl-checks\ndisable-policy-checks\n");
	fclose(f);
	ck_assert_int_eq(testcerts_run("gpgsm --homedir %s --batch --import %s",
	    home, wpath("ca.pem")), 0);
	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PSS,
	    (const uint8_t *)msg, strlen(msg), "msg-1", &der, NULL), 0);
	write_bytes(wpath("gpgsm.der"), der.data, der.len);
	ck_assert_int_eq(testcerts_run("gpgsm --homedir %s --batch --verify %s",
	    home, wpath("gpgsm.der")), 0);
	/* And refuses it once the content is altered. */
	der.data[(const uint8_t *)memmem(der.data, der.len, msg, strlen(msg)) -
	    der.data] ^= 0x01;
	write_bytes(wpath("gpgsm-bad.der"), der.data, der.len);
	ck_assert_int_ne(testcerts_run("gpgsm --homedir %s --batch --verify %s",
	    home, wpath("gpgsm-bad.der")), 0);
	testcerts_run("gpgconf --homedir %s --kill all", home);
	buf_free(&der, 0);
}
END_TEST

/* RFC 4134 -------------------------------------------------------------- */

static char rfcdir[4096];

static int
rfc_present(void)
{
	const char *shared = testlib_shared_dir();

	if (shared == NULL)
		return 0;
	snprintf(rfcdir, sizeof(rfcdir), "%s/testdata/rfc4134", shared);
	return access(rfcdir, R_OK) == 0;
}

static void
rfc_read(const char *name, struct buf *b)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", rfcdir, name);
	ck_assert_msg(util_read_file(path, ENVELOPE_MAX_DER, b, NULL) == 0, "read %s", path);
}

static X509 *
rfc_cert(const char *name)
{
	struct buf b = { 0 };
	const unsigned char *p;
	X509 *x;

	rfc_read(name, &b);
	p = b.data;
	x = d2i_X509(NULL, &p, (long)b.len);
	ck_assert_ptr_nonnull(x);
	buf_free(&b, 0);
	return x;
}

/* Carl's anchors, no CRLs; RFC 4134 certificates run 1999..2039. */
static struct pki *
rfc_pki(void)
{
	STACK_OF(X509) *anchors = sk_X509_new_null();
	struct pki *p = NULL;

	sk_X509_push(anchors, rfc_cert("CarlRSASelf.cer"));
	sk_X509_push(anchors, rfc_cert("CarlDSSSelf.cer"));
	ck_assert_int_eq(pki_from_objects(anchors, NULL, NULL, 0, &p, NULL), 0);
	sk_X509_pop_free(anchors, X509_free);
	return p;
}

#define RFC_TIME ((time_t)1577836800) /* 2020-01-01 */

/*
 * Where the content bytes sit in der: one run, or (BER, as in 4.5) several
 * chunks, found greedily.  Fills pos[] with one DER offset per content byte.
 */
static void
content_positions(const struct buf *der, const uint8_t *c, size_t clen, size_t *pos)
{
	const uint8_t *hit;
	size_t k = 0, from = 0, m, j;

	while (k < clen) {
		hit = NULL;
		for (m = clen - k; m >= 1 && hit == NULL; m--)
			if (m >= 4 || m == clen - k)
				hit = memmem(der->data + from, der->len - from, c + k, m);
		ck_assert_msg(hit != NULL, "content byte %zu not found", k);
		m++;
		for (j = 0; j < m; j++)
			pos[k + j] = (size_t)(hit - der->data) + j;
		from = (size_t)(hit - der->data) + m;
		k += m;
	}
}

/*
 * Verify one RFC 4134 SignedData (detached content in dc when not NULL):
 * refused as SHA-1 in production, accepted for conformance with content
 * want (when not NULL), and refused after any one flip of a content byte.
 */
static void
rfc_check(const struct pki *p, const char *name, struct buf *der, struct buf *dc,
    const struct buf *want, time_t want_time)
{
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const uint8_t *c;
	uint8_t *copy, *b;
	size_t k, clen, *pos;
	int r;

	r = envelope_verify_opts(p, der->data, der->len, dc ? dc->data : NULL,
	    dc ? dc->len : 0, RFC_TIME, 0, &s, &why);
	ck_assert_msg(r == HEGN_ERR_SIGNATURE && strstr(why.text, "weak digest"),
	    "%s: %d %s", name, r, why.text);
	ck_assert_ptr_null(s);
	r = envelope_verify_opts(p, der->data, der->len, dc ? dc->data : NULL,
	    dc ? dc->len : 0, RFC_TIME, ENVELOPE_VERIFY_LEGACY_SHA1, &s, &why);
	ck_assert_msg(r == 0, "%s: %d %s", name, r, why.text);
	c = envelope_signed_content(s, &clen);
	ck_assert_uint_gt(clen, 0);
	if (want != NULL) {
		ck_assert_uint_eq(clen, want->len);
		ck_assert_mem_eq(c, want->data, clen);
	}
	if (want_time != 0)
		ck_assert_int_eq((long long)envelope_signed_time(s), (long long)want_time);
	copy = malloc(clen);
	memcpy(copy, c, clen);
	envelope_signed_free(s);
	s = NULL;

	pos = calloc(clen, sizeof(*pos));
	if (dc == NULL)
		content_positions(der, copy, clen, pos);
	for (k = 0; k < clen; k++) {
		b = dc != NULL ? dc->data + k : der->data + pos[k];
		*b ^= 0x20;
		r = envelope_verify_opts(p, der->data, der->len, dc ? dc->data : NULL,
		    dc ? dc->len : 0, RFC_TIME, ENVELOPE_VERIFY_LEGACY_SHA1, &s, &why);
		*b ^= 0x20;
		ck_assert_msg(r == HEGN_ERR_SIGNATURE, "%s: flip of content byte "
		    "%zu: %d %s", name, k, r, why.text);
		ck_assert_ptr_null(s);
	}
	free(pos);
	free(copy);
}

START_TEST(test_rfc4134_signed)
{
	const char *names[] = { "4.1.bin", "4.2.bin", "4.3.bin", "4.4.bin", "4.5.bin",
	    "4.7.bin", "4.10.bin" };
	struct buf der = { 0 }, ex = { 0 }, dc = { 0 };
	struct pki *p;
	size_t i;
	int detached;

	if (!rfc_present()) {
		TESTLIB_SKIP("shared/testdata/rfc4134 not found");
		return;
	}
	p = rfc_pki();
	rfc_read("ExContent.bin", &ex);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rfc_read(names[i], &der);
		detached = strcmp(names[i], "4.3.bin") == 0;
		if (detached)
			rfc_read("ExContent.bin", &dc);
		/* 4.4 carries signingTime 2003-05-14 15:39:00 UTC. */
		rfc_check(p, names[i], &der, detached ? &dc : NULL, &ex,
		    strcmp(names[i], "4.4.bin") == 0 ? 1052926740 : 0);
		buf_free(&dc, 0);
		buf_free(&der, 0);
	}
	buf_free(&ex, 0);
	pki_free(p);
}
END_TEST

START_TEST(test_rfc4134_enveloped)
{
	struct buf der = { 0 }, key = { 0 }, ex = { 0 }, out = { 0 };
	struct why why = { 0 };
	const unsigned char *p;
	EVP_PKEY *pkey;
	X509 *bob, *alice;

	if (!rfc_present()) {
		TESTLIB_SKIP("shared/testdata/rfc4134 not found");
		return;
	}
	rfc_read("5.1.bin", &der);
	rfc_read("BobPrivRSAEncrypt.pri", &key);
	rfc_read("ExContent.bin", &ex);
	p = key.data;
	pkey = d2i_AutoPrivateKey(NULL, &p, (long)key.len);
	ck_assert_ptr_nonnull(pkey);
	bob = rfc_cert("BobRSASignByCarl.cer");
	alice = rfc_cert("AliceRSASignByCarl.cer");
	ck_assert(envelope_is_enveloped(der.data, der.len));
	ck_assert_msg(envelope_open(pkey, bob, der.data, der.len, &out, &why) == 0,
	    "5.1: %s", why.text);
	ck_assert_uint_eq(out.len, ex.len);
	ck_assert_mem_eq(out.data, ex.data, ex.len);
	buf_free(&out, 1);
	/* Not addressed to Alice. */
	ck_assert_int_eq(envelope_open(pkey, alice, der.data, der.len, &out, &why),
	    HEGN_ERR_DECRYPT);
	EVP_PKEY_free(pkey);
	X509_free(bob);
	X509_free(alice);
	buf_free(&der, 0);
	buf_free(&key, 1);
	buf_free(&ex, 0);
}
END_TEST

/*
 * 4.8 (multipart/signed) and 4.9 (application/pkcs7-mime) are S/MIME:
 * unwrapped with SMIME_read_CMS here in the test only; the gateway itself
 * takes DER.  The signed MIME part of 4.8 is canonical text (CRLF).
 */
START_TEST(test_rfc4134_smime)
{
	const char *names[] = { "4.8.eml", "4.9.eml" };
	struct buf der = { 0 }, dc = { 0 };
	CMS_ContentInfo *cms;
	struct pki *p;
	BIO *bio, *mem, *bcont, *canon;
	char path[4200];
	char *data;
	long n;
	size_t i;

	if (!rfc_present()) {
		TESTLIB_SKIP("shared/testdata/rfc4134 not found");
		return;
	}
	p = rfc_pki();
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", rfcdir, names[i]);
		bio = BIO_new_file(path, "r");
		ck_assert_ptr_nonnull(bio);
		bcont = NULL;
		cms = SMIME_read_CMS(bio, &bcont);
		ck_assert_ptr_nonnull(cms);
		mem = BIO_new(BIO_s_mem());
		ck_assert_int_eq(i2d_CMS_bio(mem, cms), 1);
		n = BIO_get_mem_data(mem, &data);
		der.data = malloc((size_t)n);
		memcpy(der.data, data, (size_t)n);
		der.len = (size_t)n;
		ck_assert(envelope_is_signed(der.data, der.len));
		if (bcont != NULL) {
			canon = BIO_new(BIO_s_mem());
			ck_assert_int_eq(SMIME_crlf_copy(bcont, canon, 0), 1);
			n = BIO_get_mem_data(canon, &data);
			dc.data = malloc((size_t)n);
			memcpy(dc.data, data, (size_t)n);
			dc.len = (size_t)n;
			BIO_free(canon);
			BIO_free(bcont);
		}
		rfc_check(p, names[i], &der, bcont != NULL ? &dc : NULL, NULL, 0);
		buf_free(&dc, 0);
		buf_free(&der, 0);
		BIO_free(mem);
		BIO_free(bio);
		CMS_ContentInfo_free(cms);
	}
	pki_free(p);
}
END_TEST

/*
 * Hostile input (issue 8 item 5).  The signed-attribute faults of OpenSSL's
 * must-reject test objects and their neighbours, made with this test PKI and
 * signed again after the change (tests/unit/testhostile.c): the signature is
 * valid over the faulty attributes, so only the attribute check can refuse.
 */
static void
check_attr_faults(EVP_PKEY *key, X509 *cert)
{
	const struct testhostile_case *c;
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	struct buf der = { 0 };
	const uint8_t *got;
	size_t glen;
	int i, r, want;

	for (i = 0; i < HOSTILE_NFAULTS; i++) {
		c = &testhostile_cases[i];
		ck_assert_msg(testhostile_attrs(key, cert, NULL, (const uint8_t *)msg,
		    strlen(msg), c->fault, &der) == 0, "cannot make %s", c->name);
		ck_assert_msg(testhostile_sig_valid(&der, cert) == 1,
		    "%s: the signature over the attributes is not valid", c->name);
		r = envelope_verify(w.pki, der.data, der.len, 0, &s, &why);
		if (c->fault == HOSTILE_NONE) {
			/* The control: re-signing alone breaks nothing. */
			ck_assert_msg(r == 0, "control refused: %s", why.text);
			got = envelope_signed_content(s, &glen);
			ck_assert_uint_eq(glen, strlen(msg));
			ck_assert_mem_eq(got, msg, glen);
			envelope_signed_free(s);
			s = NULL;
		} else {
			want = c->fault == HOSTILE_MD_WRONG ? HEGN_ERR_SIGNATURE :
			    HEGN_ERR_INVALID;
			ck_assert_msg(r == want, "%s: %d (%s)", c->name, r, why.text);
			ck_assert_ptr_null(s);
			ck_assert_msg(strstr(why.text, c->want) != NULL, "%s: reason \"%s\"",
			    c->name, why.text);
		}
		buf_free(&der, 0);
	}
}

START_TEST(test_hostile_attrs)
{
	check_attr_faults(w.leaf_key, w.leaf);
	check_attr_faults(w.ec_key, w.ec);
}
END_TEST

/* Every malformed variant of a signed and of a sealed object is refused as invalid. */
START_TEST(test_hostile_der)
{
	struct buf der = { 0 }, env = { 0 }, bad = { 0 }, out = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const struct buf *base;
	const char *name;
	int i, k, r, n = 0;

	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), "msg-1", &der, NULL), 0);
	ck_assert_int_eq(envelope_seal(w.leaf, ENVELOPE_AES256_GCM, der.data, der.len,
	    1, &env, NULL), 0);
	for (k = 0; k < 2; k++) {
		base = k == 0 ? &der : &env;
		for (i = 0; (r = testhostile_malformed(base, i, &name, &bad)) == 0; i++) {
			(void)envelope_is_signed(bad.data, bad.len);
			(void)envelope_is_enveloped(bad.data, bad.len);
			r = envelope_verify(w.pki, bad.data, bad.len, 0, &s, &why);
			ck_assert_msg(r == HEGN_ERR_INVALID, "%s of %s: verify %d (%s)", name,
			    k == 0 ? "SignedData" : "AuthEnvelopedData", r, why.text);
			ck_assert_ptr_null(s);
			r = envelope_open(w.leaf_key, w.leaf, bad.data, bad.len, &out, &why);
			ck_assert_msg(r == HEGN_ERR_INVALID, "%s of %s: open %d (%s)", name,
			    k == 0 ? "SignedData" : "AuthEnvelopedData", r, why.text);
			ck_assert_ptr_null(out.data);
			buf_free(&bad, 0);
			n++;
		}
		ck_assert_int_eq(r, 1);
	}
	ck_assert_int_ge(n, 32);
	buf_free(&der, 0);
	buf_free(&env, 0);
}
END_TEST

/* Sign msg with key/cert and chain and expect code and a reason holding want (0: accepted). */
static void
check_signed_by(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain, int code,
    const char *want)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	int r;

	ck_assert_int_eq(envelope_sign(key, cert, chain, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), NULL, &der, &why), 0);
	r = envelope_verify(w.pki, der.data, der.len, 0, &s, &why);
	ck_assert_msg(r == code, "want %d, got %d (%s)", code, r, r ? why.text : "");
	if (code == 0) {
		ck_assert_ptr_nonnull(s);
		envelope_signed_free(s);
	} else {
		ck_assert_ptr_null(s);
		ck_assert_msg(strstr(why.text, want) != NULL, "reason: %s", why.text);
	}
	buf_free(&der, 0);
}

/* Signer certificates at fault: key usage, loops, a forged anchor, far too many. */
START_TEST(test_hostile_certs)
{
	static const char *const bad_ku[] = { "keyEncipherment", "dataEncipherment",
	    "keyAgreement", "cRLSign", "keyEncipherment,dataEncipherment", NULL };
	EVP_PKEY *lk = testcerts_ec(), *ka = testcerts_ec(), *kb = testcerts_ec();
	EVP_PKEY *kx = testcerts_ec(), *deep_key = NULL;
	X509 *leaf, *b0, *a_by_b, *b_by_a, *c, *fake;
	STACK_OF(X509) *chain, *deep, *extra;
	struct buf base = { 0 }, der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	char cn[64];
	int i, r, total;

	ck_assert(lk != NULL && ka != NULL && kb != NULL && kx != NULL);
	/* Key usage: signing needs digitalSignature or nonRepudiation (docs/pki.md). */
	for (i = 0; bad_ku[i] != NULL; i++) {
		snprintf(cn, sizeof(cn), "KU %s", bad_ku[i]);
		leaf = testhostile_cert(w.ca, w.ca_key, lk, cn, 200 + i, bad_ku[i], 0);
		ck_assert_ptr_nonnull(leaf);
		check_signed_by(lk, leaf, NULL, HEGN_ERR_CERT, "key usage does not allow signing");
		check_signed_by(lk, leaf, NULL, HEGN_ERR_CERT, cn);
		X509_free(leaf);
	}
	leaf = testhostile_cert(w.ca, w.ca_key, lk, "KU digitalSignature", 210,
	    "digitalSignature", 0);
	check_signed_by(lk, leaf, NULL, 0, NULL);
	X509_free(leaf);
	leaf = testhostile_cert(w.ca, w.ca_key, lk, "KU nonRepudiation", 211,
	    "nonRepudiation", 0);
	check_signed_by(lk, leaf, NULL, 0, NULL);
	X509_free(leaf);

	/* Two CAs certifying each other, neither trusted. */
	b0 = testhostile_cert(NULL, NULL, kb, "Loop CA B", 2, NULL, 1);
	a_by_b = testhostile_cert(b0, kb, ka, "Loop CA A", 3, NULL, 1);
	b_by_a = testhostile_cert(a_by_b, ka, kb, "Loop CA B", 4, NULL, 1);
	leaf = testhostile_cert(a_by_b, ka, lk, "Loop Leaf", 5, "digitalSignature", 0);
	ck_assert(b0 != NULL && a_by_b != NULL && b_by_a != NULL && leaf != NULL);
	chain = sk_X509_new_null();
	sk_X509_push(chain, a_by_b);
	sk_X509_push(chain, b_by_a);
	check_signed_by(lk, leaf, chain, HEGN_ERR_CERT, "unknown CA");
	sk_X509_free(chain);
	X509_free(leaf);

	/* A self-issued CA that is not self-signed. */
	c = testhostile_self_issued("Self Issued CA", ka, kx);
	leaf = testhostile_cert(c, ka, lk, "Self Issued Leaf", 6, "digitalSignature", 0);
	ck_assert(c != NULL && leaf != NULL);
	chain = sk_X509_new_null();
	sk_X509_push(chain, c);
	check_signed_by(lk, leaf, chain, HEGN_ERR_CERT, "Self Issued");
	sk_X509_free(chain);
	X509_free(leaf);

	/* The anchor's name and key identifier on another key. */
	fake = X509_dup(w.ca);
	ck_assert_ptr_nonnull(fake);
	ck_assert_int_eq(X509_set_pubkey(fake, kx), 1);
	ck_assert_int_ne(X509_sign(fake, kx, EVP_sha256()), 0);
	leaf = testhostile_cert(fake, kx, lk, "Forged Anchor Leaf", 7, "digitalSignature", 0);
	ck_assert_ptr_nonnull(leaf);
	chain = sk_X509_new_null();
	sk_X509_push(chain, fake);
	/*
	 * Which certificate OpenSSL's path building blames (the forgery, a
	 * self-signed stranger; or the leaf, for a bad signature or an unknown
	 * issuer) depends on the extensions; refused and named it is.
	 */
	check_signed_by(lk, leaf, chain, HEGN_ERR_CERT, "signer certificate: certificate ");
	check_signed_by(lk, leaf, NULL, HEGN_ERR_CERT,
	    "signer certificate: certificate Forged Anchor Leaf ");
	sk_X509_free(chain);
	X509_free(leaf);

	/* 200 CAs deep: refused for the number of certificates, before any chain building. */
	deep = testhostile_ca_chain(w.ca, w.ca_key, 200, &deep_key);
	ck_assert_ptr_nonnull(deep);
	leaf = testhostile_cert(sk_X509_value(deep, 199), deep_key, lk, "Deep Leaf", 8,
	    "digitalSignature", 0);
	ck_assert_ptr_nonnull(leaf);
	check_signed_by(lk, leaf, deep, HEGN_ERR_INVALID, "SignedData carries 201 certificates");
	X509_free(leaf);

	/* A valid signature with extra certificates: 31 pass (32 in all), 32 and 3000 do not. */
	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)msg, strlen(msg), NULL, &base, NULL), 0);
	extra = sk_X509_new_null();
	for (i = 1; i <= 3000; i++) {
		snprintf(cn, sizeof(cn), "Extra %d", i);
		leaf = testhostile_cert(w.ca, w.ca_key, kx, cn, 10000 + i, "digitalSignature", 0);
		ck_assert_ptr_nonnull(leaf);
		sk_X509_push(extra, leaf);
		if (i != ENVELOPE_MAX_CERTS - 1 && i != ENVELOPE_MAX_CERTS && i != 3000)
			continue;
		/* The signer's own certificate is one more. */
		total = i + 1;
		ck_assert_int_eq(testhostile_add_certs(&base, extra, &der), 0);
		r = envelope_verify(w.pki, der.data, der.len, 0, &s, &why);
		if (total <= ENVELOPE_MAX_CERTS) {
			ck_assert_msg(r == 0, "%d certificates: %s", total, why.text);
			envelope_signed_free(s);
			s = NULL;
		} else {
			ck_assert_int_eq(r, HEGN_ERR_INVALID);
			ck_assert_ptr_null(s);
			snprintf(cn, sizeof(cn), "carries %d certificates", total);
			ck_assert_msg(strstr(why.text, cn) != NULL, "reason: %s", why.text);
		}
		buf_free(&der, 0);
	}
	buf_free(&base, 0);
	sk_X509_pop_free(extra, X509_free);
	sk_X509_pop_free(deep, X509_free);
	X509_free(b0);
	X509_free(a_by_b);
	X509_free(b_by_a);
	X509_free(c);
	X509_free(fake);
	EVP_PKEY_free(deep_key);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	EVP_PKEY_free(kx);
}
END_TEST

/* Append a TLV with a definite length (or, with len -1, an indefinite header). */
static void
tlv(struct buf *b, uint8_t tag, const uint8_t *v, long len)
{
	uint8_t h[6];
	size_t n = 0;

	h[n++] = tag;
	if (len < 0)
		h[n++] = 0x80;
	else if (len < 0x80)
		h[n++] = (uint8_t)len;
	else {
		h[n++] = 0x83;
		h[n++] = (uint8_t)(len >> 16);
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	}
	b->data = realloc(b->data, b->len + n + (len > 0 ? (size_t)len : 0));
	ck_assert_ptr_nonnull(b->data);
	memcpy(b->data + b->len, h, n);
	b->len += n;
	if (len > 0) {
		memcpy(b->data + b->len, v, (size_t)len);
		b->len += (size_t)len;
	}
}

/*
 * A SignedData skeleton whose certificates are n empty SEQUENCEs: no
 * certificate decoder accepts it, so only a count taken before decoding can
 * name the number.  indefinite: the outer three levels in BER indefinite form.
 */
static void
skeleton(int n, int indefinite, struct buf *out)
{
	static const uint8_t signed_oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02 };
	static const uint8_t data_oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01 };
	struct buf certs = { 0 }, sd = { 0 }, eci = { 0 }, ci = { 0 }, e0 = { 0 };
	int i;

	for (i = 0; i < n; i++)
		tlv(&certs, 0x30, NULL, 0);
	tlv(&eci, 0x06, data_oid, sizeof(data_oid));
	tlv(&sd, 0x02, (const uint8_t *)"\x01", 1);
	tlv(&sd, 0x31, NULL, 0);
	tlv(&sd, 0x30, eci.data, (long)eci.len);
	tlv(&sd, 0xa0, certs.data, (long)certs.len);
	tlv(&sd, 0x31, NULL, 0);
	tlv(&ci, 0x06, signed_oid, sizeof(signed_oid));
	if (indefinite) {
		tlv(&ci, 0xa0, NULL, -1);
		tlv(&ci, 0x30, NULL, -1);
		ci.data = realloc(ci.data, ci.len + sd.len + 4);
		memcpy(ci.data + ci.len, sd.data, sd.len);
		memcpy(ci.data + ci.len + sd.len, "\0\0\0\0", 4);
		ci.len += sd.len + 4;
		tlv(out, 0x30, NULL, -1);
		out->data = realloc(out->data, out->len + ci.len + 2);
		memcpy(out->data + out->len, ci.data, ci.len);
		memcpy(out->data + out->len + ci.len, "\0\0", 2);
		out->len += ci.len + 2;
	} else {
		tlv(&e0, 0x30, sd.data, (long)sd.len);
		tlv(&ci, 0xa0, e0.data, (long)e0.len);
		tlv(out, 0x30, ci.data, (long)ci.len);
	}
	buf_free(&certs, 0);
	buf_free(&sd, 0);
	buf_free(&eci, 0);
	buf_free(&ci, 0);
	buf_free(&e0, 0);
}

/* The number of certificates is read from the headers, before any certificate is decoded. */
START_TEST(test_hostile_cert_count)
{
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	int ind, n;

	for (ind = 0; ind < 2; ind++) {
		for (n = 3; n <= 70000; n = n < 100 ? n + 30 : n * 10) {
			der.data = NULL;
			der.len = 0;
			skeleton(n, ind, &der);
			ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why),
			    HEGN_ERR_INVALID);
			ck_assert_ptr_null(s);
			if (n <= ENVELOPE_MAX_CERTS) {
				ck_assert_msg(strstr(why.text, "not a DER CMS ContentInfo") != NULL,
				    "%d, %s: %s", n, ind ? "indefinite" : "definite", why.text);
			} else {
				char want[64];

				snprintf(want, sizeof(want), "carries %d certificates", n);
				ck_assert_msg(strstr(why.text, want) != NULL, "%d, %s: %s", n,
				    ind ? "indefinite" : "definite", why.text);
			}
			buf_free(&der, 0);
		}
	}
}
END_TEST

/*
 * Certificates apart: a SignedData's certificates come from the pki's parse
 * cache, and every outcome (result, code, reason, content, signer) is the
 * one of the whole parse by OpenSSL, for the intact DER and for damaged
 * copies of it.
 */
static void
same_outcome(const uint8_t *der, size_t len)
{
	struct envelope_signed *a = NULL, *b = NULL;
	struct why wa = { 0 }, wb = { 0 };
	const uint8_t *ca, *cb;
	size_t la, lb;
	int ra, rb;

	ra = envelope_verify_opts(w.pki, der, len, NULL, 0, 0, 0, &a, &wa);
	rb = envelope_verify_opts(w.pki, der, len, NULL, 0, 0, ENVELOPE_VERIFY_WHOLE, &b, &wb);
	ck_assert_msg(ra == rb, "apart %d (%s), whole %d (%s)", ra, wa.text, rb, wb.text);
	ck_assert_str_eq(wa.text, wb.text);
	if (ra == 0) {
		ca = envelope_signed_content(a, &la);
		cb = envelope_signed_content(b, &lb);
		ck_assert_uint_eq(la, lb);
		ck_assert_mem_eq(ca, cb, la);
		ck_assert_int_eq(X509_cmp(envelope_signed_signer(a), envelope_signed_signer(b)), 0);
	}
	envelope_signed_free(a);
	envelope_signed_free(b);
}

START_TEST(test_certs_apart)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct buf der = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	uint64_t hits0, misses0, hits1, misses1;
	uint32_t x = 88172645u;
	uint8_t *copy, *ber;
	size_t i, k;

	sk_X509_push(chain, w.ca);
	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, chain, ENVELOPE_PSS,
	    (const uint8_t *)msg, strlen(msg), "msg-9", &der, NULL), 0);
	/* The second time, both certificates come from the cache. */
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why), 0);
	envelope_signed_free(s);
	pki_cert_cache_stats(w.pki, &hits0, &misses0);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why), 0);
	ck_assert_int_eq(X509_cmp(envelope_signed_signer(s), w.leaf), 0);
	envelope_signed_free(s);
	pki_cert_cache_stats(w.pki, &hits1, &misses1);
	ck_assert_uint_eq(hits1, hits0 + 2);
	ck_assert_uint_eq(misses1, misses0);
	same_outcome(der.data, der.len);

	/* Every single flipped bit, and random damage. */
	copy = malloc(der.len);
	for (i = 0; i < der.len * 8; i += 5) {
		memcpy(copy, der.data, der.len);
		copy[i / 8] ^= (uint8_t)(1u << (i % 8));
		same_outcome(copy, der.len);
	}
	for (i = 0; i < 400; i++) {
		memcpy(copy, der.data, der.len);
		for (k = 0; k < 1 + i % 3; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			copy[x % der.len] = (uint8_t)(x >> 8);
		}
		same_outcome(copy, der.len);
	}
	free(copy);

	/*
	 * BER the fast path does not take apart (a length in more bytes than
	 * needed) still verifies, through OpenSSL's own parse.
	 */
	ck_assert_uint_eq(der.data[0], 0x30);
	ck_assert_uint_eq(der.data[1], 0x82);
	ber = malloc(der.len + 1);
	ber[0] = 0x30;
	ber[1] = 0x83;
	ber[2] = 0x00;
	memcpy(ber + 3, der.data + 2, der.len - 2);
	same_outcome(ber, der.len + 1);
	ck_assert_int_eq(envelope_verify(w.pki, ber, der.len + 1, 0, &s, &why), 0);
	envelope_signed_free(s);
	free(ber);
	sk_X509_free(chain);
	buf_free(&der, 0);
}
END_TEST

/* Append a TLV with a minimal DER header. */
static void
der_put(struct buf *b, int constructed, int tag, int xclass, const uint8_t *v, size_t len)
{
	int hl = ASN1_object_size(constructed, (long)len, tag) - (int)len;
	unsigned char *wp;

	b->data = realloc(b->data, b->len + (size_t)hl + len);
	ck_assert_ptr_nonnull(b->data);
	wp = b->data + b->len;
	ASN1_put_object(&wp, constructed, (int)len, tag, xclass);
	if (len > 0)
		memcpy(wp, v, len);
	b->len += (size_t)hl + len;
}

/*
 * A second [0] behind the certificates: OpenSSL refuses the whole (only
 * crls [1] or the signerInfos may follow), so taking the first out must
 * not let the second pass for the certificates, nor its n certificates
 * past the limit read before decoding.
 */
START_TEST(test_certs_apart_two_sets)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct buf der = { 0 }, sd = { 0 }, extra = { 0 }, certs = { 0 }, e0 = { 0 }, ci = { 0 };
	struct buf out = { 0 };
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const unsigned char *p, *oid, *field[8], *sd_end;
	unsigned char *leaf = NULL;
	long l;
	int tag, xclass, nf, i, n, leaf_len;

	sk_X509_push(chain, w.ca);
	ck_assert_int_eq(envelope_sign(w.leaf_key, w.leaf, chain, ENVELOPE_PSS,
	    (const uint8_t *)msg, strlen(msg), "msg-10", &der, NULL), 0);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &s, &why), 0);
	envelope_signed_free(s);
	s = NULL;
	leaf_len = i2d_X509(w.leaf, &leaf);
	ck_assert_int_gt(leaf_len, 0);
	/* ContentInfo, contentType, [0], SignedData, its fields. */
	p = der.data;
	ck_assert_int_eq(ASN1_get_object(&p, &l, &tag, &xclass, (long)der.len) & 0x80, 0);
	oid = p;
	ck_assert_int_eq(ASN1_get_object(&p, &l, &tag, &xclass, (long)der.len) & 0x80, 0);
	p += l;
	ci.len = (size_t)(p - oid);
	ck_assert_int_eq(ASN1_get_object(&p, &l, &tag, &xclass, (long)der.len) & 0x80, 0);
	ck_assert_int_eq(ASN1_get_object(&p, &l, &tag, &xclass, (long)der.len) & 0x80, 0);
	sd_end = p + l;
	for (nf = 0; p < sd_end && nf < 7; nf++) {
		field[nf] = p;
		ck_assert_int_eq(ASN1_get_object(&p, &l, &tag, &xclass, (long)(sd_end - p)) & 0x80,
		    0);
		p += l;
	}
	field[nf] = sd_end;
	/* version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos */
	ck_assert_int_eq(nf, 5);
	ck_assert_uint_eq(field[3][0], 0xa0);
	for (n = 1; n <= 40; n += 39) {
		certs.data = NULL;
		certs.len = 0;
		for (i = 0; i < n; i++) {
			certs.data = realloc(certs.data, certs.len + (size_t)leaf_len);
			memcpy(certs.data + certs.len, leaf, (size_t)leaf_len);
			certs.len += (size_t)leaf_len;
		}
		der_put(&extra, 1, 0, V_ASN1_CONTEXT_SPECIFIC, certs.data, certs.len);
		sd.data = malloc((size_t)(field[4] - field[0]));
		memcpy(sd.data, field[0], (size_t)(field[4] - field[0]));
		sd.len = (size_t)(field[4] - field[0]);
		sd.data = realloc(sd.data, sd.len + extra.len + (size_t)(sd_end - field[4]));
		memcpy(sd.data + sd.len, extra.data, extra.len);
		sd.len += extra.len;
		memcpy(sd.data + sd.len, field[4], (size_t)(sd_end - field[4]));
		sd.len += (size_t)(sd_end - field[4]);
		der_put(&e0, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, sd.data, sd.len);
		ci.data = malloc(ci.len + 16 + e0.len);
		memcpy(ci.data, oid, ci.len);
		{
			unsigned char *wp = ci.data + ci.len;

			ASN1_put_object(&wp, 1, (int)e0.len, 0, V_ASN1_CONTEXT_SPECIFIC);
			memcpy(wp, e0.data, e0.len);
			wp += e0.len;
			der_put(&out, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, ci.data,
			    (size_t)(wp - ci.data));
		}
		ck_assert_int_eq(envelope_verify(w.pki, out.data, out.len, 0, &s, &why),
		    HEGN_ERR_INVALID);
		ck_assert_ptr_null(s);
		same_outcome(out.data, out.len);
		buf_free(&certs, 0);
		buf_free(&extra, 0);
		buf_free(&sd, 0);
		buf_free(&e0, 0);
		free(ci.data);
		ci.data = NULL;
		buf_free(&out, 0);
	}
	OPENSSL_free(leaf);
	sk_X509_free(chain);
	buf_free(&der, 0);
}
END_TEST

static Suite *
envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("envelope");

	tcase_add_unchecked_fixture(tc, setup_world, teardown_world);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_sign_verify_pkcs1);
	tcase_add_test(tc, test_sign_verify_pss);
	tcase_add_test(tc, test_sign_verify_ecdsa);
	tcase_add_test(tc, test_sign_content_id);
	tcase_add_test(tc, test_openssl_verifies_ours);
	tcase_add_test(tc, test_we_verify_openssl);
	tcase_add_test(tc, test_weak_digest);
	tcase_add_test(tc, test_two_signers_and_detached);
	tcase_add_test(tc, test_tampered_signed);
	tcase_add_test(tc, test_certs_apart);
	tcase_add_test(tc, test_certs_apart_two_sets);
	tcase_add_test(tc, test_truncated_and_garbage);
	tcase_add_test(tc, test_random_damage);
	tcase_add_test(tc, test_signer_certificate);
	tcase_add_test(tc, test_signer_not_included);
	tcase_add_test(tc, test_econtent_type);
	tcase_add_test(tc, test_seal_open);
	tcase_add_test(tc, test_seal_tampered);
	tcase_add_test(tc, test_openssl_decrypts_ours);
	tcase_add_test(tc, test_we_decrypt_openssl);
	tcase_add_test(tc, test_openssl_provider_pipeline);
	tcase_add_test(tc, test_openssl_sealed_submission);
	tcase_add_test(tc, test_gpgsm_verifies_pss);
	tcase_add_test(tc, test_rfc4134_signed);
	tcase_add_test(tc, test_rfc4134_enveloped);
	tcase_add_test(tc, test_rfc4134_smime);
	tcase_add_test(tc, test_hostile_attrs);
	tcase_add_test(tc, test_hostile_der);
	tcase_add_test(tc, test_hostile_certs);
	tcase_add_test(tc, test_hostile_cert_count);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(envelope_suite)
