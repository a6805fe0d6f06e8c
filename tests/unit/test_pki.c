#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "err.h"
#include "pki.h"
#include "testcerts.h"
#include "testhostile.h"
#include "testlib.h"
#include "util.h"

#define DAY		86400
/* 2011-04-15 00:00 UTC: inside every PKITS certificate's validity. */
#define PKITS_TIME	((time_t)1302825600)
/* 2025-06-01 and 2035-01-01 00:00 UTC, for the real OCES3 certificates. */
#define T_2025		((time_t)1748736000)
#define T_2035		((time_t)2051222400)

/*
 * PKITS cases on which OpenSSL 3.0 disagrees with the expected result, and
 * why (docs/pki.md says the same):
 *  4.1.5   DSA parameter inheritance: OpenSSL cannot verify a DSA signature
 *          whose key inherits its domain parameters from the issuer.
 *  4.14.30 the CRL signer's own certificate is checked against a CRL that
 *          needs that same certificate: OpenSSL does not resolve the cycle.
 */
static const char *const pkits_exceptions[] = { "4.1.5", "4.14.30", NULL };

/* A demo world, made once per test case (the tests then fork from it). */
static EVP_PKEY *rk, *ik, *ok_key, *xk;
static X509 *root, *issuing, *org, *server, *signonly;
static time_t now;

static X509 *
issue(EVP_PKEY *key, const char *cn, const char *cvr, enum certgen_profile prof,
    X509 *icert, EVP_PKEY *ikey, time_t nb, time_t na, uint64_t serial)
{
	struct certgen_subject s = { cn, "Demo Org", cvr, NULL };
	struct why why = { 0 };
	X509 *x = NULL;

	if (certgen_cert(key, &s, prof, icert, ikey, nb, na, serial, &x, &why) != 0) {
		fprintf(stderr, "certgen_cert: %s\n", why.text);
		abort();
	}
	return x;
}

static void
world_setup(void)
{
	struct why why = { 0 };

	now = time(NULL);
	if (certgen_key(CERTGEN_RSA, 2048, &rk, &why) != 0 ||
	    certgen_key(CERTGEN_RSA, 2048, &ik, &why) != 0 ||
	    certgen_key(CERTGEN_RSA, 2048, &ok_key, &why) != 0 ||
	    certgen_key(CERTGEN_EC_P256, 0, &xk, &why) != 0) {
		fprintf(stderr, "certgen_key: %s\n", why.text);
		abort();
	}
	root = issue(rk, "Demo Root CA", NULL, CERTGEN_ROOT_CA, NULL, rk,
	    now - 1000 * DAY, now + 3650 * DAY, 1);
	issuing = issue(ik, "Demo Issuing CA 1", NULL, CERTGEN_ISSUING_CA, root, rk,
	    now - 1000 * DAY, now + 1825 * DAY, 2);
	org = issue(ok_key, "Hovmand Care", "12345678", CERTGEN_ORG, issuing, ik,
	    now - DAY, now + 365 * DAY, 100);
	server = issue(ok_key, "hegn gateway", "29189846", CERTGEN_SERVER, issuing, ik,
	    now - DAY, now + 365 * DAY, 101);
	signonly = issue(xk, "Sign Only", "12345678", CERTGEN_SIGN_ONLY, issuing, ik,
	    now - DAY, now + 365 * DAY, 102);
}

static void
world_teardown(void)
{
	X509_free(root);
	X509_free(issuing);
	X509_free(org);
	X509_free(server);
	X509_free(signonly);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(ok_key);
	EVP_PKEY_free(xk);
}

/* A pki trusting root, with issuing as intermediate and the given CRLs. */
static struct pki *
world_pki(X509_CRL *crl1, X509_CRL *crl2, int flags)
{
	STACK_OF(X509) *a = sk_X509_new_null(), *c = sk_X509_new_null();
	STACK_OF(X509_CRL) *l = sk_X509_CRL_new_null();
	struct pki *p = NULL;
	struct why why = { 0 };

	sk_X509_push(a, root);
	sk_X509_push(c, issuing);
	if (crl1 != NULL)
		sk_X509_CRL_push(l, crl1);
	if (crl2 != NULL)
		sk_X509_CRL_push(l, crl2);
	ck_assert_int_eq(pki_from_objects(a, c, l, flags, &p, &why), 0);
	/* The pki holds its own references. */
	sk_X509_free(a);
	sk_X509_free(c);
	sk_X509_CRL_free(l);
	return p;
}

static X509_CRL *
make_crl(X509 *icert, EVP_PKEY *ikey, const uint64_t *serials, size_t n,
    time_t last_update, int days)
{
	X509_CRL *crl = NULL;
	struct why why = { 0 };

	ck_assert_int_eq(certgen_crl(icert, ikey, serials, n, last_update, days,
	    &crl, &why), 0);
	return crl;
}

START_TEST(test_chain_purposes)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };

	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_ANY, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_ENCRYPT, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_TLS_CLIENT, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, server, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, server, NULL, PKI_PURPOSE_TLS_CLIENT, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, signonly, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	/* At an explicit time inside the validity too. */
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, now + 30 * DAY, &why), 0);
	pki_free(p);
}
END_TEST

START_TEST(test_untrusted_intermediate)
{
	STACK_OF(X509) *a = sk_X509_new_null(), *u = sk_X509_new_null();
	struct pki *p = NULL;
	struct why why = { 0 };

	sk_X509_push(a, root);
	ck_assert_int_eq(pki_from_objects(a, NULL, NULL, 0, &p, &why), 0);
	ck_assert_int_eq(sk_X509_num(pki_chain(p)), 0);
	/* Without the intermediate the issuer is unknown ... */
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "unknown CA"));
	ck_assert_ptr_nonnull(strstr(why.text, "Demo Issuing CA 1"));
	/* ... with it passed as untrusted, the chain closes. */
	sk_X509_push(u, issuing);
	ck_assert_int_eq(pki_verify(p, org, u, PKI_PURPOSE_SIGN, 0, &why), 0);
	/* The intermediate itself hangs directly under the anchor. */
	ck_assert_int_eq(pki_verify(p, issuing, NULL, PKI_PURPOSE_ANY, 0, &why), 0);
	pki_free(p);
	sk_X509_free(a);
	sk_X509_free(u);
}
END_TEST

START_TEST(test_expired)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };
	X509 *x;
	char want[64];
	struct tm tm;
	time_t na = now - 10 * DAY;

	x = issue(ok_key, "Old Care", "12345678", CERTGEN_ORG, issuing, ik,
	    now - 400 * DAY, na, 200);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	gmtime_r(&na, &tm);
	strftime(want, sizeof(want), "certificate Old Care expired on %Y-%m-%d", &tm);
	ck_assert_str_eq(why.text, want);
	ck_assert_int_eq(why.code, HEGN_ERR_CERT);
	/* At a time before it expired, it verifies. */
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, now - 20 * DAY, &why), 0);
	/* The org certificate expires in a year: at two years it is refused. */
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, now + 730 * DAY, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "expired on"));
	X509_free(x);
	pki_free(p);
}
END_TEST

START_TEST(test_not_yet_valid)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };
	X509 *x;

	x = issue(ok_key, "Future Care", "12345678", CERTGEN_ORG, issuing, ik,
	    now + 10 * DAY, now + 400 * DAY, 201);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "Future Care is not yet valid until"));
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, now + 11 * DAY, &why), 0);
	X509_free(x);
	pki_free(p);
}
END_TEST

START_TEST(test_revoked)
{
	uint64_t revoked[] = { 7, 100, 9 };
	X509_CRL *rcrl = make_crl(root, rk, NULL, 0, now - DAY, 30);
	X509_CRL *icrl = make_crl(issuing, ik, revoked, 3, now - DAY, 30);
	struct pki *p = world_pki(rcrl, icrl, PKI_CRL_CHECK);
	struct why why = { 0 };

	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_str_eq(why.text, "certificate Hovmand Care revoked");
	/* Serial 101 is not on the CRL. */
	ck_assert_int_eq(pki_verify(p, server, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_free(p);
	/* Without CRL checking the revocation is not looked at. */
	p = world_pki(rcrl, icrl, 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_free(p);
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl);
}
END_TEST

START_TEST(test_crl_missing_or_stale)
{
	X509_CRL *rcrl = make_crl(root, rk, NULL, 0, now - DAY, 30);
	X509_CRL *icrl = make_crl(issuing, ik, NULL, 0, now - DAY, 30);
	X509_CRL *old = make_crl(issuing, ik, NULL, 0, now - 40 * DAY, 30);
	struct pki *p;
	struct why why = { 0 };

	/* Only the root's CRL: the issuing CA's certificates have none. */
	p = world_pki(rcrl, NULL, PKI_CRL_CHECK);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_str_eq(why.text, "certificate Hovmand Care has no CRL");
	pki_free(p);
	/* Only the issuing CA's: the whole chain is checked, so the CA itself fails. */
	p = world_pki(NULL, icrl, PKI_CRL_CHECK);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_str_eq(why.text, "certificate Demo Issuing CA 1 has no CRL");
	pki_free(p);
	/* A CRL past its nextUpdate. */
	p = world_pki(rcrl, old, PKI_CRL_CHECK);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "CRL has expired"));
	pki_free(p);
	/* Both current CRLs: fine. */
	p = world_pki(rcrl, icrl, PKI_CRL_CHECK);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_ENCRYPT, 0, &why), 0);
	pki_free(p);
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl);
	X509_CRL_free(old);
}
END_TEST

START_TEST(test_unknown_ca)
{
	EVP_PKEY *k2 = NULL;
	X509 *root2, *leaf2;
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };

	ck_assert_int_eq(certgen_key(CERTGEN_EC_P256, 0, &k2, &why), 0);
	root2 = issue(k2, "Rogue Root", NULL, CERTGEN_ROOT_CA, NULL, k2,
	    now - DAY, now + 100 * DAY, 1);
	leaf2 = issue(ok_key, "Hovmand Care", "12345678", CERTGEN_ORG, root2, k2,
	    now - DAY, now + 100 * DAY, 100);
	ck_assert_int_eq(pki_verify(p, leaf2, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "issued by an unknown CA (CN=Rogue Root"));
	/* A self-signed certificate that is not an anchor. */
	ck_assert_int_eq(pki_verify(p, root2, NULL, PKI_PURPOSE_ANY, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "unknown CA"));
	/* Nor does offering the rogue root as untrusted help. */
	{
		STACK_OF(X509) *u = sk_X509_new_null();

		sk_X509_push(u, root2);
		ck_assert_int_eq(pki_verify(p, leaf2, u, PKI_PURPOSE_SIGN, 0, &why),
		    HEGN_ERR_CERT);
		sk_X509_free(u);
	}
	X509_free(root2);
	X509_free(leaf2);
	EVP_PKEY_free(k2);
	pki_free(p);
}
END_TEST

START_TEST(test_key_usage)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };

	ck_assert_int_eq(pki_verify(p, signonly, NULL, PKI_PURPOSE_ENCRYPT, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_str_eq(why.text,
	    "certificate Sign Only: key usage does not allow encryption");
	/* A CA certificate is no end entity, whatever it is for. */
	ck_assert_int_eq(pki_verify(p, issuing, NULL, PKI_PURPOSE_SIGN, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "is a CA certificate"));
	ck_assert_int_eq(pki_verify(p, issuing, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_int_eq(pki_verify(p, root, NULL, PKI_PURPOSE_ENCRYPT, 0, &why),
	    HEGN_ERR_CERT);
	/* As ANY, the CA certificates verify. */
	ck_assert_int_eq(pki_verify(p, issuing, NULL, PKI_PURPOSE_ANY, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, root, NULL, PKI_PURPOSE_ANY, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, NULL, NULL, PKI_PURPOSE_ANY, 0, &why),
	    HEGN_ERR_INVALID);
	pki_free(p);
}
END_TEST

/* A leaf with hand-made extensions, signed by the issuing CA. */
static X509 *
custom_leaf(const char *ku, const char *eku, const char *bc)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 300);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Custom", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, X509_get_subject_name(issuing));
	X509_gmtime_adj(X509_getm_notBefore(x), -DAY);
	X509_gmtime_adj(X509_getm_notAfter(x), DAY);
	X509_set_pubkey(x, ok_key);
	X509V3_set_ctx(&ctx, issuing, x, NULL, NULL, 0);
	if (ku != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, ku);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (eku != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (bc != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, bc);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	ck_assert_int_gt(X509_sign(x, ik, EVP_sha256()), 0);
	X509_NAME_free(n);
	return x;
}

START_TEST(test_eku_and_absent_ku)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };
	X509 *x;

	/* No keyUsage at all: every purpose is allowed. */
	x = custom_leaf(NULL, NULL, NULL);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_ENCRYPT, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why), 0);
	X509_free(x);
	/* EKU serverAuth only: no TLS client, but signing is still fine. */
	x = custom_leaf("digitalSignature,keyEncipherment", "serverAuth", NULL);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_TLS_CLIENT, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "TLS client"));
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	X509_free(x);
	/* EKU emailProtection: neither TLS role. */
	x = custom_leaf("digitalSignature", "emailProtection", NULL);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	/* keyUsage digitalSignature only: no encryption. */
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_ENCRYPT, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "key usage does not allow encryption"));
	X509_free(x);
	/* keyEncipherment only: no signing, no TLS client. */
	x = custom_leaf("keyEncipherment", NULL, NULL);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "key usage does not allow signing"));
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_TLS_CLIENT, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_ENCRYPT, 0, &why), 0);
	X509_free(x);
	pki_free(p);
}
END_TEST

START_TEST(test_cvr)
{
	X509 *x = NULL;
	X509_NAME *n;
	char cvr[9];
	static const char *const bad[] = { "CVR:1234567-FID:1", "CVR:123456789-FID:1",
	    "CVR:12345678", "CVR:1234567a-FID:1", "UI:DK-O:G:1234", NULL };
	int i;

	ck_assert_int_eq(pki_cert_cvr(org, cvr), 0);
	ck_assert_str_eq(cvr, "12345678");
	ck_assert_int_eq(pki_cert_cvr(server, cvr), 0);
	ck_assert_str_eq(cvr, "29189846");
	/* A CA has none. */
	ck_assert_int_eq(pki_cert_cvr(root, cvr), HEGN_ERR_INVALID);
	ck_assert_str_eq(cvr, "");
	ck_assert_int_eq(pki_cert_cvr(NULL, cvr), HEGN_ERR_INVALID);

	/* OCES2: serialNumber "CVR:<8 digits>-FID:<id>". */
	x = X509_new();
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Old Org", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "serialNumber", MBSTRING_ASC,
	    (const unsigned char *)"CVR:87654321-FID:1234567890123", -1, -1, 0);
	ck_assert_int_eq(pki_cert_cvr(x, cvr), 0);
	ck_assert_str_eq(cvr, "87654321");
	X509_free(x);

	for (i = 0; bad[i] != NULL; i++) {
		x = X509_new();
		n = X509_get_subject_name(x);
		X509_NAME_add_entry_by_txt(n, "serialNumber", MBSTRING_ASC,
		    (const unsigned char *)bad[i], -1, -1, 0);
		ck_assert_msg(pki_cert_cvr(x, cvr) == HEGN_ERR_INVALID, "%s", bad[i]);
		X509_free(x);
	}
	/* OCES3 shapes that are not quite right. */
	{
		static const char *const badoi[] = { "NTRDK-1234567", "NTRDK-123456789",
		    "NTRSE-12345678", "NTRDK-1234567X", "ntrdk-12345678", NULL };

		for (i = 0; badoi[i] != NULL; i++) {
			x = X509_new();
			n = X509_get_subject_name(x);
			X509_NAME_add_entry_by_txt(n, "organizationIdentifier", MBSTRING_UTF8,
			    (const unsigned char *)badoi[i], -1, -1, 0);
			ck_assert_msg(pki_cert_cvr(x, cvr) == HEGN_ERR_INVALID, "%s", badoi[i]);
			X509_free(x);
		}
	}
}
END_TEST

START_TEST(test_real_oces3)
{
	const char *shared = testlib_shared_dir();
	char rootp[4096], issp[4096];
	struct pki *p = NULL;
	X509 *x = NULL;
	struct why why = { 0 };
	char fp[65];

	if (shared == NULL) {
		TESTLIB_SKIP("no shared data: real OCES3 certificates not checked");
		return;
	}
	snprintf(rootp, sizeof(rootp), "%s/oces3/oces3-root-ca.pem", shared);
	snprintf(issp, sizeof(issp), "%s/oces3/oces3-issuing-ca-1.pem", shared);
	ck_assert_int_eq(pki_load(rootp, NULL, NULL, 0, &p, &why), 0);
	ck_assert_int_eq(pki_load_cert(issp, &x, &why), 0);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_ANY, T_2025, &why), 0);
	ck_assert_int_eq(X509_get_signature_nid(x), NID_rsassaPss);
	pki_fingerprint(x, fp);
	ck_assert_str_eq(fp, "5b5662aa0112b984033a33afd3a95a49a79c7aee9c249428dd82bfd4c02d67b8");
	/* In 2035 the issuing CA has expired (2031-11-08). */
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_ANY, T_2035, &why), HEGN_ERR_CERT);
	ck_assert_str_eq(why.text,
	    "certificate Den Danske Stat OCES udstedende-CA 1 expired on 2031-11-08");
	/* A CA is not an end entity. */
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_SIGN, T_2025, &why), HEGN_ERR_CERT);
	/* With CRL checking and no CRL, it is refused. */
	pki_free(p);
	ck_assert_int_eq(pki_load(rootp, NULL, NULL, PKI_CRL_CHECK, &p, &why), 0);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_ANY, T_2025, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "has no CRL"));
	pki_free(p);
	/* Our demo root does not vouch for the real CA. */
	p = world_pki(NULL, NULL, 0);
	ck_assert_int_eq(pki_verify(p, x, NULL, PKI_PURPOSE_ANY, T_2025, &why), HEGN_ERR_CERT);
	ck_assert_msg(strstr(why.text, "unknown CA (C=DK,O=Den Danske Stat,CN=Den Danske Stat OCES rod-CA)") != NULL,
	    "%s", why.text);
	pki_free(p);
	X509_free(x);
}
END_TEST

/* A fresh temporary directory; remove with rmtree(). */
static void
rmtree(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_load_files)
{
	char dir[] = "/tmp/hegn-test-pki-XXXXXX";
	char a[256], c[256], l[256], k[256], empty[256], junk[256], nofile[256];
	X509_CRL *rcrl = make_crl(root, rk, NULL, 0, now - DAY, 30);
	uint64_t rev[] = { 100 };
	X509_CRL *icrl = make_crl(issuing, ik, rev, 1, now - DAY, 30);
	struct pki *p = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *certs = NULL;
	struct why why = { 0 };
	BIO *bio;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/ca.pem", dir);
	snprintf(c, sizeof(c), "%s/chain.pem", dir);
	snprintf(l, sizeof(l), "%s/crl.pem", dir);
	snprintf(k, sizeof(k), "%s/org.key", dir);
	snprintf(empty, sizeof(empty), "%s/empty.pem", dir);
	snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
	snprintf(nofile, sizeof(nofile), "%s/nonexistent.pem", dir);
	ck_assert_int_eq(certgen_write_cert(a, root, &why), 0);
	ck_assert_int_eq(certgen_write_cert(c, issuing, &why), 0);
	ck_assert_int_eq(certgen_write_key(k, ok_key, &why), 0);
	/* Two CRLs in one file. */
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_X509_CRL(bio, rcrl);
	PEM_write_bio_X509_CRL(bio, icrl);
	{
		char *data;
		long len = BIO_get_mem_data(bio, &data);

		ck_assert_int_eq(util_write_file(l, data, (size_t)len, 0644, &why), 0);
	}
	BIO_free(bio);
	f = fopen(empty, "w");
	fputs("no certificates here\n", f);
	fclose(f);
	f = fopen(junk, "w");
	fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
	fclose(f);

	ck_assert_int_eq(pki_load(a, c, l, PKI_CRL_CHECK, &p, &why), 0);
	ck_assert_int_eq(sk_X509_num(pki_chain(p)), 1);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "revoked"));
	ck_assert_int_eq(pki_verify(p, server, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	/* pki_new_store gives CMS_verify the same view. */
	{
		X509_STORE *st = pki_new_store(p);
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();

		ck_assert_ptr_nonnull(st);
		ck_assert_int_eq(X509_STORE_CTX_init(ctx, st, server, NULL), 1);
		ck_assert_int_eq(X509_verify_cert(ctx), 1);
		X509_STORE_CTX_cleanup(ctx);
		ck_assert_int_eq(X509_STORE_CTX_init(ctx, st, org, NULL), 1);
		ck_assert_int_ne(X509_verify_cert(ctx), 1);
		ck_assert_int_eq(X509_STORE_CTX_get_error(ctx), X509_V_ERR_CERT_REVOKED);
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(st);
	}
	pki_free(p);
	p = NULL;

	/* An anchors file without a certificate is an error naming the file. */
	ck_assert_int_eq(pki_load(empty, NULL, NULL, 0, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(why.text, empty));
	ck_assert_int_eq(why.code, HEGN_ERR_CONFIG);
	ck_assert_int_eq(pki_load(nofile, NULL, NULL, 0, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, nofile));
	ck_assert_int_eq(pki_load(junk, NULL, NULL, 0, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, junk));
	ck_assert_int_eq(pki_load(a, empty, NULL, 0, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, empty));
	/* A certificate file is no CRL file. */
	ck_assert_int_eq(pki_load(a, NULL, a, 0, &p, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, a));
	ck_assert_int_eq(pki_load(NULL, NULL, NULL, 0, &p, &why), HEGN_ERR_CONFIG);

	ck_assert_int_eq(pki_load_key(k, &key, &why), 0);
	ck_assert_int_eq(EVP_PKEY_eq(key, ok_key), 1);
	EVP_PKEY_free(key);
	ck_assert_int_eq(pki_load_key(a, &key, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(key);
	ck_assert_int_eq(pki_load_key(nofile, &key, &why), HEGN_ERR_IO);
	ck_assert_int_eq(pki_load_cert(c, &x, &why), 0);
	ck_assert_int_eq(X509_cmp(x, issuing), 0);
	X509_free(x);
	ck_assert_int_eq(pki_load_cert(empty, &x, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(x);
	ck_assert_int_eq(pki_load_certs(a, &certs, &why), 0);
	ck_assert_int_eq(sk_X509_num(certs), 1);
	sk_X509_pop_free(certs, X509_free);

	rmtree(dir);
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl);
}
END_TEST

START_TEST(test_encrypted_key_refused)
{
	char dir[] = "/tmp/hegn-test-pki-XXXXXX", path[256];
	BIO *bio = BIO_new(BIO_s_mem());
	EVP_PKEY *key = NULL;
	struct why why = { 0 };
	char *data;
	long len;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/enc.key", dir);
	ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, ok_key, EVP_aes_256_cbc(),
	    (unsigned char *)"secret", 6, NULL, NULL), 1);
	len = BIO_get_mem_data(bio, &data);
	ck_assert_int_eq(util_write_file(path, data, (size_t)len, 0600, &why), 0);
	/* Never prompts on a terminal: it fails and says why. */
	ck_assert_int_eq(pki_load_key(path, &key, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, path));
	BIO_free(bio);
	rmtree(dir);
}
END_TEST

START_TEST(test_fingerprint_subject_der)
{
	char dir[] = "/tmp/hegn-test-pki-XXXXXX", path[256], cmd[512], line[512];
	char fp[65], norm[65], *s;
	unsigned char *der = NULL;
	X509 *x = NULL;
	struct why why = { 0 };
	FILE *f;
	size_t n = 0, i;
	int len;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/org.pem", dir);
	ck_assert_int_eq(certgen_write_cert(path, org, &why), 0);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -noout -fingerprint -sha256", path);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_int_eq(pclose(f), 0);
	s = strchr(line, '=');
	ck_assert_ptr_nonnull(s);
	for (s++; *s != '\0' && *s != '\n' && n < 64; s++) {
		if (*s != ':')
			norm[n++] = (char)(*s >= 'A' && *s <= 'F' ? *s - 'A' + 'a' : *s);
	}
	norm[n] = '\0';
	pki_fingerprint(org, fp);
	ck_assert_int_eq(strlen(fp), 64);
	ck_assert_str_eq(fp, norm);
	pki_fingerprint(server, fp);
	ck_assert_str_ne(fp, norm);
	rmtree(dir);

	s = pki_subject(org);
	ck_assert_ptr_nonnull(strstr(s, "CN=Hovmand Care"));
	ck_assert_ptr_nonnull(strstr(s, "organizationIdentifier=NTRDK-12345678"));
	ck_assert_ptr_nonnull(strstr(s, "C=DK"));
	free(s);

	len = i2d_X509(org, &der);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(pki_cert_from_der(der, (size_t)len, &x, &why), 0);
	ck_assert_int_eq(X509_cmp(x, org), 0);
	X509_free(x);
	/* Truncated at every length: never a certificate, never a crash. */
	for (i = 0; i < (size_t)len; i += 7) {
		ck_assert_int_eq(pki_cert_from_der(der, i, &x, &why), HEGN_ERR_INVALID);
		ck_assert_ptr_null(x);
	}
	{
		unsigned char *longer = malloc((size_t)len + 1);

		memcpy(longer, der, (size_t)len);
		longer[len] = 0;
		ck_assert_int_eq(pki_cert_from_der(longer, (size_t)len + 1, &x, &why),
		    HEGN_ERR_INVALID);
		ck_assert_ptr_nonnull(strstr(why.text, "trailing"));
		free(longer);
	}
	OPENSSL_free(der);
}
END_TEST

struct thread_arg {
	struct pki *p;
	int failures;
};

static void *
verify_thread(void *v)
{
	struct thread_arg *ta = v;
	struct why why;
	int i;

	for (i = 0; i < 50; i++) {
		why_clear(&why);
		if (pki_verify(ta->p, org, NULL, PKI_PURPOSE_SIGN, 0, &why) != 0)
			ta->failures++;
		if (pki_verify(ta->p, signonly, NULL, PKI_PURPOSE_ENCRYPT, 0, &why) !=
		    HEGN_ERR_CERT)
			ta->failures++;
	}
	pki_free(ta->p);
	return NULL;
}

START_TEST(test_refcount_threads)
{
	X509_CRL *rcrl = make_crl(root, rk, NULL, 0, now - DAY, 30);
	X509_CRL *icrl = make_crl(issuing, ik, NULL, 0, now - DAY, 30);
	struct pki *p = world_pki(rcrl, icrl, PKI_CRL_CHECK);
	struct thread_arg ta[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		ta[i].p = pki_ref(p);
		ta[i].failures = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, verify_thread, &ta[i]), 0);
	}
	/* The creator's reference may go first: the threads keep theirs. */
	pki_free(p);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(ta[i].failures, 0);
	}
	pki_free(NULL);
	ck_assert_ptr_null(pki_ref(NULL));
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl);
}
END_TEST

START_TEST(test_policy_opts)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct pki_policy_opts o = { 0 };
	struct why why = { 0 };

	/* Certgen puts no certificatePolicies in: anyPolicy passes, explicit fails. */
	ck_assert_int_eq(pki_verify_policy(p, org, NULL, NULL, 0, &why), 0);
	ck_assert_int_eq(pki_verify_policy(p, org, NULL, &o, 0, &why), 0);
	o.require_explicit_policy = 1;
	ck_assert_int_eq(pki_verify_policy(p, org, NULL, &o, 0, &why), HEGN_ERR_CERT);
	o.require_explicit_policy = 0;
	o.policies = "1.2.3,,not-an-oid";
	ck_assert_int_eq(pki_verify_policy(p, org, NULL, &o, 0, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "not-an-oid"));
	pki_free(p);
}
END_TEST

/* PKITS ---------------------------------------------------------------- */

static X509 *
pkits_cert(const char *dir, const char *name)
{
	char path[4096];
	struct buf b = { 0 };
	struct why why = { 0 };
	X509 *x = NULL;

	snprintf(path, sizeof(path), "%s/certs/%s.crt", dir, name);
	ck_assert_msg(util_read_file(path, 1 << 20, &b, &why) == 0, "%s", why.text);
	ck_assert_msg(pki_cert_from_der(b.data, b.len, &x, &why) == 0, "%s: %s", name, why.text);
	buf_free(&b, 0);
	return x;
}

static X509_CRL *
pkits_crl(const char *dir, const char *name)
{
	char path[4096];
	struct buf b = { 0 };
	struct why why = { 0 };
	const unsigned char *q;
	X509_CRL *crl;

	snprintf(path, sizeof(path), "%s/crls/%s.crl", dir, name);
	ck_assert_msg(util_read_file(path, 1 << 20, &b, &why) == 0, "%s", why.text);
	q = b.data;
	crl = d2i_X509_CRL(NULL, &q, (long)b.len);
	ck_assert_msg(crl != NULL, "%s", name);
	buf_free(&b, 0);
	return crl;
}

/* "NIST-test-policy-1,anyPolicy" into OIDs; NULL when the set is anyPolicy alone. */
static void
pkits_policies(const char *in, char *out, size_t outlen)
{
	char copy[512], *tok, *save = NULL;
	size_t len = 0;

	out[0] = '\0';
	if (strcmp(in, "anyPolicy") == 0)
		return;
	snprintf(copy, sizeof(copy), "%s", in);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		ck_assert_msg(strncmp(tok, "NIST-test-policy-", 17) == 0 ||
		    strcmp(tok, "anyPolicy") == 0, "policy %s", tok);
		len += (size_t)snprintf(out + len, outlen - len, "%s%s%s",
		    len > 0 ? "," : "",
		    tok[0] == 'N' ? "2.16.840.1.101.3.2.1.48." : "",
		    tok[0] == 'N' ? tok + 17 : "2.5.29.32.0");
		ck_assert_uint_lt(len, outlen);
	}
}

static int
pkits_bool(const char *s)
{
	ck_assert_msg(strcmp(s, "true") == 0 || strcmp(s, "false") == 0, "bool %s", s);
	return strcmp(s, "true") == 0;
}

static int
is_exception(const char *num)
{
	int i;

	for (i = 0; pkits_exceptions[i] != NULL; i++) {
		if (strcmp(pkits_exceptions[i], num) == 0)
			return 1;
	}
	return 0;
}

/* Run one case; returns 1 when the result agrees with the expectation. */
static int
pkits_case(const char *dir, char **f, char *why_out, size_t why_len)
{
	STACK_OF(X509) *anchors = sk_X509_new_null(), *chain = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	struct pki_policy_opts opts = { 0 };
	struct pki *p = NULL;
	struct why why = { 0 };
	char policies[512], copy[4096], *tok, *save = NULL;
	X509 *leaf = NULL, *x;
	int n = 0, r, valid;

	pkits_policies(f[3], policies, sizeof(policies));
	opts.policies = policies[0] != '\0' ? policies : NULL;
	opts.require_explicit_policy = pkits_bool(f[4]);
	opts.inhibit_policy_mapping = pkits_bool(f[5]);
	opts.inhibit_any_policy = pkits_bool(f[6]);
	snprintf(copy, sizeof(copy), "%s", f[8]);
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		x = pkits_cert(dir, tok);
		if (n++ == 0) {
			sk_X509_push(anchors, x);
		} else {
			if (leaf != NULL)
				sk_X509_push(chain, leaf);
			leaf = x;
		}
	}
	ck_assert_ptr_nonnull(leaf);
	snprintf(copy, sizeof(copy), "%s", f[9]);
	save = NULL;
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
		sk_X509_CRL_push(crls, pkits_crl(dir, tok));
	ck_assert_int_eq(pki_from_objects(anchors, chain, crls, PKI_CRL_CHECK, &p, &why), 0);
	r = pki_verify_policy(p, leaf, NULL, &opts, PKITS_TIME, &why);
	ck_assert_msg(r == 0 || r == HEGN_ERR_CERT, "%s: code %d (%s)", f[0], r, why.text);
	valid = r == 0;
	snprintf(why_out, why_len, "%s", valid ? "valid" : why.text);
	pki_free(p);
	X509_free(leaf);
	sk_X509_pop_free(anchors, X509_free);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return valid == (strcmp(f[2], "VALID") == 0);
}

START_TEST(test_pkits)
{
	const char *shared = testlib_shared_dir();
	char dir[4096], path[4200], line[8192], whytext[600], *f[10], *s, *save;
	int total = 0, agree = 0, unexpected = 0, excepted_ok = 0, nf;
	FILE *fp;

	if (shared == NULL) {
		TESTLIB_SKIP("no shared data: PKITS conformance not run");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/testdata/pkits", shared);
	snprintf(path, sizeof(path), "%s/expected_results.tsv", dir);
	if ((fp = fopen(path, "r")) == NULL) {
		TESTLIB_SKIP("no testdata/pkits/expected_results.tsv: PKITS not run");
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		/* Tab-separated with possibly empty fields: strsep, not strtok. */
		save = line;
		for (nf = 0; nf < 10 && (s = strsep(&save, "\t")) != NULL; nf++)
			f[nf] = s;
		ck_assert_msg(nf == 10, "bad line in %s: %s", path, line);
		total++;
		if (pkits_case(dir, f, whytext, sizeof(whytext))) {
			agree++;
			if (is_exception(f[0])) {
				excepted_ok++;
				fprintf(stderr, "PKITS %s agrees now (listed as exception)\n", f[0]);
			}
		} else if (!is_exception(f[0])) {
			unexpected++;
			fprintf(stderr, "PKITS %s %s: expected %s, got %s\n", f[0], f[1], f[2],
			    whytext);
		}
	}
	fclose(fp);
	fprintf(stderr, "PKITS: %d of %d cases agree\n", agree, total);
	ck_assert_int_eq(total, 249);
	ck_assert_int_eq(unexpected, 0);
	ck_assert_int_ge(agree, 247);
}
END_TEST

/*
 * Hostile chains (issue 8 item 5): loops, a self-issued CA that is not
 * self-signed, a forged anchor, 200 CAs deep, thousands of strangers among
 * the untrusted certificates.  Each is refused naming a certificate, or, for
 * the strangers beside a good chain, ignored.
 */
START_TEST(test_hostile_chains)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };
	EVP_PKEY *lk = EVP_EC_gen("P-256"), *ka = EVP_EC_gen("P-256");
	EVP_PKEY *kb = EVP_EC_gen("P-256"), *kx = EVP_EC_gen("P-256"), *dk = NULL;
	EVP_PKEY *sk = NULL;
	X509 *leaf, *b0, *a_by_b, *b_by_a, *c, *fake, *x;
	STACK_OF(X509) *u, *deep, *shallow, *strangers;
	char cn[64];
	int i;

	ck_assert(lk != NULL && ka != NULL && kb != NULL && kx != NULL);
	/* Two CAs that certify each other: the path never reaches an anchor. */
	b0 = testhostile_cert(NULL, NULL, kb, "Loop CA B", 2, NULL, 1);
	a_by_b = testhostile_cert(b0, kb, ka, "Loop CA A", 3, NULL, 1);
	b_by_a = testhostile_cert(a_by_b, ka, kb, "Loop CA B", 4, NULL, 1);
	leaf = testhostile_cert(a_by_b, ka, lk, "Loop Leaf", 5, "digitalSignature", 0);
	ck_assert(b0 != NULL && a_by_b != NULL && b_by_a != NULL && leaf != NULL);
	u = sk_X509_new_null();
	sk_X509_push(u, a_by_b);
	sk_X509_push(u, b_by_a);
	ck_assert_int_eq(pki_verify(p, leaf, u, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_msg(strstr(why.text, "Loop CA") != NULL &&
	    strstr(why.text, "unknown CA") != NULL, "reason: %s", why.text);
	ck_assert_int_eq(pki_verify(p, leaf, u, PKI_PURPOSE_TLS_CLIENT, 0, &why),
	    HEGN_ERR_CERT);
	sk_X509_free(u);
	X509_free(leaf);

	/* A self-issued CA, not self-signed, with no authorityKeyIdentifier. */
	c = testhostile_self_issued("Self Issued CA", ka, kx);
	leaf = testhostile_cert(c, ka, lk, "Self Issued Leaf", 6, "digitalSignature", 0);
	ck_assert(c != NULL && leaf != NULL);
	u = sk_X509_new_null();
	sk_X509_push(u, c);
	ck_assert_int_eq(pki_verify(p, leaf, u, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_msg(strstr(why.text, "Self Issued") != NULL, "reason: %s", why.text);
	/* Given as the certificate itself. */
	ck_assert_int_eq(pki_verify(p, c, u, PKI_PURPOSE_ANY, 0, &why), HEGN_ERR_CERT);
	sk_X509_free(u);
	X509_free(leaf);

	/* The anchor's name and key identifier on another key. */
	fake = X509_dup(root);
	ck_assert(fake != NULL && X509_set_pubkey(fake, kx) == 1 &&
	    X509_sign(fake, kx, EVP_sha256()) != 0);
	leaf = testhostile_cert(fake, kx, lk, "Forged Anchor Leaf", 7, "digitalSignature", 0);
	ck_assert_ptr_nonnull(leaf);
	u = sk_X509_new_null();
	sk_X509_push(u, fake);
	ck_assert_int_eq(pki_verify(p, leaf, u, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_msg(strstr(why.text, "certificate ") != NULL, "reason: %s", why.text);
	ck_assert_int_eq(pki_verify(p, fake, NULL, PKI_PURPOSE_ANY, 0, &why), HEGN_ERR_CERT);
	sk_X509_free(u);
	X509_free(leaf);

	/* 200 CAs below the anchor: longer than OpenSSL's depth limit of 100. */
	deep = testhostile_ca_chain(root, rk, 200, &dk);
	ck_assert_ptr_nonnull(deep);
	leaf = testhostile_cert(sk_X509_value(deep, 199), dk, lk, "Deep Leaf", 8,
	    "digitalSignature", 0);
	ck_assert_ptr_nonnull(leaf);
	ck_assert_int_eq(pki_verify(p, leaf, deep, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_msg(strstr(why.text, "chain too long") != NULL, "reason: %s", why.text);
	X509_free(leaf);
	/* Twenty deep is a valid path: the refusal above is the length, not the shape. */
	shallow = testhostile_ca_chain(root, rk, 20, &sk);
	ck_assert_ptr_nonnull(shallow);
	leaf = testhostile_cert(sk_X509_value(shallow, 19), sk, lk, "Shallow Leaf", 9,
	    "digitalSignature", 0);
	ck_assert_ptr_nonnull(leaf);
	ck_assert_msg(pki_verify(p, leaf, shallow, PKI_PURPOSE_SIGN, 0, &why) == 0,
	    "reason: %s", why.text);
	X509_free(leaf);
	sk_X509_pop_free(shallow, X509_free);
	EVP_PKEY_free(sk);

	/* 3000 strangers among the untrusted certificates. */
	strangers = sk_X509_new_null();
	for (i = 0; i < 3000; i++) {
		snprintf(cn, sizeof(cn), "Stranger %d", i);
		x = testhostile_cert(i % 2 ? a_by_b : NULL, i % 2 ? ka : NULL, kx, cn,
		    20000 + i, "digitalSignature", 0);
		ck_assert_ptr_nonnull(x);
		sk_X509_push(strangers, x);
	}
	ck_assert_msg(pki_verify(p, org, strangers, PKI_PURPOSE_SIGN, 0, &why) == 0,
	    "reason: %s", why.text);
	ck_assert_int_eq(pki_verify(p, sk_X509_value(strangers, 1), strangers,
	    PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_msg(strstr(why.text, "unknown CA") != NULL, "reason: %s", why.text);

	sk_X509_pop_free(strangers, X509_free);
	sk_X509_pop_free(deep, X509_free);
	X509_free(b0);
	X509_free(a_by_b);
	X509_free(b_by_a);
	X509_free(c);
	X509_free(fake);
	EVP_PKEY_free(dk);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	EVP_PKEY_free(kx);
	pki_free(p);
}
END_TEST

/*
 * Verification cache: a verification that passed is served again for the
 * same certificates and purpose, refusals never are, a new pki (a reload)
 * starts empty, and nothing outlives the TTL, a notAfter or a nextUpdate.
 */
START_TEST(test_cache_served)
{
	X509_CRL *rcrl = make_crl(root, rk, NULL, 0, now - DAY, 30);
	X509_CRL *icrl = make_crl(issuing, ik, NULL, 0, now - DAY, 30);
	struct pki *p = world_pki(rcrl, icrl, PKI_CRL_CHECK);
	STACK_OF(X509) *u = sk_X509_new_null();
	struct pki_cache_stats st;
	struct why why = { 0 };

	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits + st.misses + st.stored, 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.misses, 1);
	ck_assert_uint_eq(st.stored, 1);
	ck_assert_uint_eq(st.hits, 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits, 1);
	/* Another purpose is another verification (its key usage is checked). */
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_ENCRYPT, 0, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.stored, 2);
	/* So is the same leaf with other certificates presented. */
	sk_X509_push(u, issuing);
	ck_assert_int_eq(pki_verify(p, org, u, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.stored, 3);
	/* A verification at another time than now neither uses nor fills it. */
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, now - 2 * DAY, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "not yet valid"));
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, now + DAY, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.misses, 3);
	ck_assert_uint_eq(st.stored, 3);
	/* A refusal is never kept: the second attempt is verified (and refused) again. */
	why_clear(&why);
	ck_assert_int_eq(pki_verify(p, signonly, NULL, PKI_PURPOSE_ENCRYPT, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "key usage does not allow encryption"));
	why_clear(&why);
	ck_assert_int_eq(pki_verify(p, signonly, NULL, PKI_PURPOSE_ENCRYPT, 0, &why),
	    HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "key usage does not allow encryption"));
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.misses, 5);
	ck_assert_uint_eq(st.stored, 3);
	/* A TTL of 0 keeps nothing and forgets what was kept. */
	pki_set_cache_ttl(p, 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.stored, 3);
	sk_X509_free(u);
	pki_free(p);
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl);
}
END_TEST

START_TEST(test_cache_reload_revoked)
{
	uint64_t revoked[] = { 100 };
	X509_CRL *rcrl = make_crl(root, rk, NULL, 0, now - DAY, 30);
	X509_CRL *icrl = make_crl(issuing, ik, NULL, 0, now - DAY, 30);
	X509_CRL *icrl2 = make_crl(issuing, ik, revoked, 1, now - 60, 30);
	struct pki *p = world_pki(rcrl, icrl, PKI_CRL_CHECK), *fresh;
	struct pki_cache_stats st;
	struct why why = { 0 };

	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits, 1);
	/* The reload brings a CRL revoking org: refused at once. */
	fresh = world_pki(rcrl, icrl2, PKI_CRL_CHECK);
	pki_cache_stats(fresh, &st);
	ck_assert_uint_eq(st.hits + st.misses + st.stored, 0);
	ck_assert_int_eq(pki_verify(fresh, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_str_eq(why.text, "certificate Hovmand Care revoked");
	ck_assert_int_eq(pki_verify(fresh, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_str_eq(why.text, "certificate Hovmand Care revoked");
	pki_cache_stats(fresh, &st);
	ck_assert_uint_eq(st.hits, 0);
	ck_assert_uint_eq(st.stored, 0);
	/* Others under the same CA still pass, and are kept in the new cache. */
	ck_assert_int_eq(pki_verify(fresh, server, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(fresh, server, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(fresh, &st);
	ck_assert_uint_eq(st.hits, 1);
	pki_free(fresh);
	pki_free(p);
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl);
	X509_CRL_free(icrl2);
}
END_TEST

/* Sleep until time(NULL) is past t. */
static void
wait_past(time_t t)
{
	while (time(NULL) <= t)
		usleep(100 * 1000);
}

START_TEST(test_cache_expiry)
{
	time_t t0 = time(NULL), na = t0 + 2;
	/* CRLs are issued for whole days: this one's nextUpdate is t0 + 2. */
	X509_CRL *rcrl = make_crl(root, rk, NULL, 0, t0 - DAY, 30);
	X509_CRL *icrl = make_crl(issuing, ik, NULL, 0, t0 - DAY, 30);
	X509_CRL *short_crl = make_crl(issuing, ik, NULL, 0, t0 + 2 - 30 * DAY, 30);
	struct pki *p = world_pki(rcrl, icrl, PKI_CRL_CHECK);
	struct pki *crlp = world_pki(rcrl, short_crl, PKI_CRL_CHECK);
	struct pki *ttlp = world_pki(rcrl, icrl, PKI_CRL_CHECK);
	struct pki_cache_stats st;
	struct why why = { 0 };
	X509 *brief;

	brief = issue(ok_key, "Brief Care", "12345678", CERTGEN_ORG, issuing, ik,
	    t0 - DAY, na, 300);
	pki_set_cache_ttl(ttlp, 1);
	ck_assert_int_eq(pki_verify(p, brief, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(crlp, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(ttlp, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.stored, 1);
	pki_cache_stats(crlp, &st);
	ck_assert_uint_eq(st.stored, 1);
	wait_past(na);
	/* Past the leaf's notAfter the kept result is not served: expired. */
	ck_assert_int_eq(pki_verify(p, brief, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "Brief Care expired on"));
	/* Past the CRL's nextUpdate neither: the CRL has expired. */
	ck_assert_int_eq(pki_verify(crlp, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "CRL has expired"));
	/* Past the TTL the certificate is verified again (and still passes). */
	ck_assert_int_eq(pki_verify(ttlp, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	pki_cache_stats(ttlp, &st);
	ck_assert_uint_eq(st.hits, 0);
	ck_assert_uint_eq(st.misses, 2);
	ck_assert_uint_eq(st.stored, 2);
	X509_free(brief);
	pki_free(p);
	pki_free(crlp);
	pki_free(ttlp);
	X509_CRL_free(rcrl);
	X509_CRL_free(icrl);
	X509_CRL_free(short_crl);
}
END_TEST

/* More distinct verifications than the cache holds: it stays bounded. */
START_TEST(test_cache_bounded)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	STACK_OF(X509) *u = sk_X509_new_null();
	struct pki_cache_stats st;
	struct why why = { 0 };
	int i, n = 1200;

	/* Each longer list of presented certificates is another key. */
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(pki_verify(p, org, u, PKI_PURPOSE_ANY, 0, &why), 0);
		sk_X509_push(u, issuing);
	}
	sk_X509_zero(u);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(pki_verify(p, org, u, PKI_PURPOSE_ANY, 0, &why), 0);
		sk_X509_push(u, issuing);
	}
	pki_cache_stats(p, &st);
	ck_assert_uint_eq(st.hits + st.misses, 2 * (uint64_t)n);
	ck_assert_uint_le(st.hits, 1024);
	ck_assert_uint_ge(st.hits, 1);
	sk_X509_free(u);
	pki_free(p);
}
END_TEST

/*
 * Certificates whose hashes fall in one set of the parse cache (the first
 * byte, as gateway/pki.c picks the set) all stay, as a party's certificate
 * and its CA's must: with one entry per hash, two such took each other's
 * place on every read.  Four fill a set; a fifth takes the least recently
 * used one's place.
 */
START_TEST(test_cert_parse_cache_sets)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };
	EVP_PKEY *key = testcerts_ec();
	unsigned char *der[5] = { NULL }, *d;
	int len[5], n = 0, k;
	uint8_t md[32], want = 0;
	uint64_t hits, misses;
	long serial;
	X509 *x, *got;

	ck_assert_ptr_nonnull(key);
	/* The sets are the first byte of the hash modulo 64 (256 entries, 4 ways). */
	for (serial = 1; n < 5 && serial < 100000; serial++) {
		x = testcerts_cert(NULL, key, key, "set", serial, -60, 3600, TESTCERTS_SIGN);
		ck_assert_ptr_nonnull(x);
		d = NULL;
		len[n] = i2d_X509(x, &d);
		X509_free(x);
		ck_assert_int_gt(len[n], 0);
		util_sha256(d, (size_t)len[n], md);
		if (n == 0)
			want = md[0] % 64;
		if (md[0] % 64 != want) {
			OPENSSL_free(d);
			continue;
		}
		der[n++] = d;
	}
	ck_assert_int_eq(n, 5);
	for (k = 0; k < 8; k++) {
		ck_assert_int_eq(pki_cert_from_der_cached(p, der[k % 4], (size_t)len[k % 4], &got,
		    &why), 0);
		X509_free(got);
	}
	pki_cert_cache_stats(p, &hits, &misses);
	ck_assert_uint_eq(misses, 4);
	ck_assert_uint_eq(hits, 4);
	/* der[0] is the least recently used: the fifth takes its place, the others stay. */
	ck_assert_int_eq(pki_cert_from_der_cached(p, der[4], (size_t)len[4], &got, &why), 0);
	X509_free(got);
	for (k = 1; k <= 4; k++) {
		ck_assert_int_eq(pki_cert_from_der_cached(p, der[k], (size_t)len[k], &got, &why), 0);
		X509_free(got);
	}
	pki_cert_cache_stats(p, &hits, &misses);
	ck_assert_uint_eq(misses, 5);
	ck_assert_uint_eq(hits, 8);
	ck_assert_int_eq(pki_cert_from_der_cached(p, der[0], (size_t)len[0], &got, &why), 0);
	X509_free(got);
	pki_cert_cache_stats(p, &hits, &misses);
	ck_assert_uint_eq(misses, 6);
	for (k = 0; k < 5; k++)
		OPENSSL_free(der[k]);
	EVP_PKEY_free(key);
	pki_free(p);
}
END_TEST

/* The parse cache gives the same certificate for the same DER, and refuses what is not one. */
START_TEST(test_cert_parse_cache)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };
	unsigned char *der = NULL;
	uint64_t hits, misses;
	X509 *a = NULL, *b = NULL, *c = NULL;
	int len;

	len = i2d_X509(org, &der);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(pki_cert_from_der_cached(p, der, (size_t)len, &a, &why), 0);
	ck_assert_int_eq(pki_cert_from_der_cached(p, der, (size_t)len, &b, &why), 0);
	ck_assert_int_eq(X509_cmp(a, org), 0);
	ck_assert_ptr_eq(a, b);
	pki_cert_cache_stats(p, &hits, &misses);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(misses, 1);
	/* Each caller holds a reference of its own. */
	X509_free(a);
	ck_assert_int_eq(X509_cmp(b, org), 0);
	X509_free(b);
	/* Trailing bytes and damage are refused, and a refusal is not kept. */
	ck_assert_int_eq(pki_cert_from_der_cached(p, der, (size_t)len - 1, &c, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_null(c);
	der[0] ^= 0xff;
	ck_assert_int_eq(pki_cert_from_der_cached(p, der, (size_t)len, &c, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(pki_cert_from_der_cached(p, der, (size_t)len, &c, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_null(c);
	pki_cert_cache_stats(p, &hits, &misses);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(misses, 4);
	/* Without a pki there is no cache, only the parse. */
	der[0] ^= 0xff;
	ck_assert_int_eq(pki_cert_from_der_cached(NULL, der, (size_t)len, &c, &why), 0);
	ck_assert_int_eq(X509_cmp(c, org), 0);
	X509_free(c);
	OPENSSL_free(der);
	pki_free(p);
}
END_TEST

/*
 * A certificate far larger than a real one (64 KiB of extension) is parsed
 * but never kept: 256 of them, sent by one party, would hold gigabytes.
 */
START_TEST(test_cert_parse_cache_large)
{
	struct pki *p = world_pki(NULL, NULL, 0);
	struct why why = { 0 };
	ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	unsigned char *der = NULL, *big;
	uint64_t hits, misses;
	X509 *x = X509_dup(org), *a = NULL, *b = NULL;
	int len;

	big = calloc(1, 65536);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(ASN1_OCTET_STRING_set(os, big, 65536), 1);
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	ck_assert_ptr_nonnull(ext);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	/* Encoded anew (the signature no longer matches; only the parse is looked at). */
	ck_assert_int_gt(i2d_re_X509_tbs(x, NULL), 65536);
	len = i2d_X509(x, &der);
	ck_assert_int_gt(len, 65536);
	ck_assert_int_eq(pki_cert_from_der_cached(p, der, (size_t)len, &a, &why), 0);
	ck_assert_int_eq(pki_cert_from_der_cached(p, der, (size_t)len, &b, &why), 0);
	ck_assert_int_eq(X509_cmp(a, b), 0);
	ck_assert_ptr_ne(a, b);
	pki_cert_cache_stats(p, &hits, &misses);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 2);
	X509_free(a);
	X509_free(b);
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	X509_free(x);
	free(big);
	pki_free(p);
}
END_TEST

static Suite *
pki_suite(void)
{
	Suite *s = suite_create("pki");
	TCase *tc = tcase_create("pki");

	tcase_add_unchecked_fixture(tc, world_setup, world_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_chain_purposes);
	tcase_add_test(tc, test_untrusted_intermediate);
	tcase_add_test(tc, test_expired);
	tcase_add_test(tc, test_not_yet_valid);
	tcase_add_test(tc, test_revoked);
	tcase_add_test(tc, test_crl_missing_or_stale);
	tcase_add_test(tc, test_unknown_ca);
	tcase_add_test(tc, test_key_usage);
	tcase_add_test(tc, test_eku_and_absent_ku);
	tcase_add_test(tc, test_cvr);
	tcase_add_test(tc, test_real_oces3);
	tcase_add_test(tc, test_load_files);
	tcase_add_test(tc, test_encrypted_key_refused);
	tcase_add_test(tc, test_fingerprint_subject_der);
	tcase_add_test(tc, test_refcount_threads);
	tcase_add_test(tc, test_policy_opts);
	tcase_add_test(tc, test_pkits);
	tcase_add_test(tc, test_hostile_chains);
	tcase_add_test(tc, test_cache_served);
	tcase_add_test(tc, test_cache_reload_revoked);
	tcase_add_test(tc, test_cache_expiry);
	tcase_add_test(tc, test_cache_bounded);
	tcase_add_test(tc, test_cert_parse_cache);
	tcase_add_test(tc, test_cert_parse_cache_sets);
	tcase_add_test(tc, test_cert_parse_cache_large);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(pki_suite)
