#include "config.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "err.h"
#include "pki.h"
#include "testlib.h"
#include "util.h"

#define DAY	86400

static EVP_PKEY *rk, *ik, *ok_key, *eck;
static X509 *root, *issuing, *org, *server;
static time_t now;

static X509 *
issue(EVP_PKEY *key, const struct certgen_subject *s, enum certgen_profile prof,
    X509 *icert, EVP_PKEY *ikey, time_t nb, time_t na, uint64_t serial)
{
	struct why why = { 0 };
	X509 *x = NULL;

	if (certgen_cert(key, s, prof, icert, ikey, nb, na, serial, &x, &why) != 0) {
		fprintf(stderr, "certgen_cert: %s\n", why.text);
		abort();
	}
	return x;
}

static const struct certgen_subject root_s = { "Demo OCES rod-CA", "Demo Stat", NULL, NULL };
static const struct certgen_subject iss_s = { "Demo OCES udstedende-CA 1", "Demo Stat", NULL,
    "Test - cti" };
static const struct certgen_subject org_s = { "Ringsted Visitation", "Ringsted Kommune",
    "18957981", NULL };
static const struct certgen_subject gw_s = { "hegn gateway", "Ringsted Kommune",
    "18957981", "IT" };

static void
world_setup(void)
{
	struct why why = { 0 };

	now = time(NULL);
	if (certgen_key(CERTGEN_RSA, 2048, &rk, &why) != 0 ||
	    certgen_key(CERTGEN_RSA, 2048, &ik, &why) != 0 ||
	    certgen_key(CERTGEN_RSA, 2048, &ok_key, &why) != 0 ||
	    certgen_key(CERTGEN_EC_P256, 0, &eck, &why) != 0) {
		fprintf(stderr, "certgen_key: %s\n", why.text);
		abort();
	}
	root = issue(rk, &root_s, CERTGEN_ROOT_CA, NULL, rk, now - DAY, now + 3650 * DAY, 1);
	issuing = issue(ik, &iss_s, CERTGEN_ISSUING_CA, root, rk, now - DAY,
	    now + 1825 * DAY, 2);
	org = issue(ok_key, &org_s, CERTGEN_ORG, issuing, ik, now - DAY, now + 365 * DAY, 10);
	server = issue(ok_key, &gw_s, CERTGEN_SERVER, issuing, ik, now - DAY,
	    now + 365 * DAY, 11);
}

static void
world_teardown(void)
{
	X509_free(root);
	X509_free(issuing);
	X509_free(org);
	X509_free(server);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(ok_key);
	EVP_PKEY_free(eck);
}

static void
rmtree(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The text OpenSSL prints for the signature algorithm of x. */
static char *
sigalg_text(const X509_ALGOR *alg, const ASN1_BIT_STRING *sig)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	ck_assert_int_eq(X509_signature_print(bio, alg, sig), 1);
	len = BIO_get_mem_data(bio, &data);
	out = malloc((size_t)len + 1);
	memcpy(out, data, (size_t)len);
	out[len] = '\0';
	BIO_free(bio);
	return out;
}

static void
assert_pss_sha512_64(const X509_ALGOR *alg, const ASN1_BIT_STRING *sig)
{
	char *t = sigalg_text(alg, sig);

	ck_assert_msg(strstr(t, "rsassaPss") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "Hash Algorithm: sha512") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "Mask Algorithm: mgf1 with sha512") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "Salt Length: 0x40") != NULL, "%s", t);
	free(t);
}

START_TEST(test_keys)
{
	EVP_PKEY *k = NULL;
	struct why why = { 0 };

	ck_assert_int_eq(EVP_PKEY_get_bits(ok_key), 2048);
	ck_assert(EVP_PKEY_is_a(ok_key, "RSA"));
	ck_assert(EVP_PKEY_is_a(eck, "EC"));
	ck_assert_int_eq(EVP_PKEY_get_bits(eck), 256);
	/* OCES3's size, once. */
	ck_assert_int_eq(certgen_key(CERTGEN_RSA, 3072, &k, &why), 0);
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 3072);
	EVP_PKEY_free(k);
	k = NULL;
	ck_assert_int_eq(certgen_key(CERTGEN_RSA, 1024, &k, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(certgen_key((enum certgen_keytype)7, 2048, &k, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(k);
}
END_TEST

START_TEST(test_profiles)
{
	BASIC_CONSTRAINTS *bc;
	int crit;
	uint32_t ku;

	/* Root: self-signed CA, keyCertSign+cRLSign, no CRL DP of its own. */
	ck_assert(X509_get_extension_flags(root) & EXFLAG_SS);
	bc = X509_get_ext_d2i(root, NID_basic_constraints, &crit, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert(bc->ca);
	ck_assert_int_eq(crit, 1);
	ck_assert_ptr_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_uint_eq(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ck_assert_int_lt(X509_get_ext_by_NID(root, NID_crl_distribution_points, -1), 0);

	/* Issuing CA: pathlen 0, points at the root's CRL. */
	bc = X509_get_ext_d2i(issuing, NID_basic_constraints, &crit, NULL);
	ck_assert(bc->ca);
	ck_assert_int_eq(crit, 1);
	ck_assert_ptr_nonnull(bc->pathlen);
	ck_assert_int_eq(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_int_eq(X509_get_pathlen(issuing), 0);
	ck_assert_uint_eq(X509_get_key_usage(issuing), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(issuing));
	ck_assert_ptr_nonnull(X509_get0_authority_key_id(issuing));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(issuing),
	    X509_get0_subject_key_id(root)), 0);

	/* Organisation: critical keyUsage with the three OCES3 bits, CA:FALSE. */
	ku = X509_get_key_usage(org);
	ck_assert_uint_eq(ku, KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(X509_EXTENSION_get_critical(X509_get_ext(org,
	    X509_get_ext_by_NID(org, NID_key_usage, -1))), 1);
	bc = X509_get_ext_d2i(org, NID_basic_constraints, &crit, NULL);
	ck_assert(!bc->ca);
	ck_assert_int_eq(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_int_eq(X509_check_ca(org), 0);
	ck_assert(!(X509_get_extension_flags(org) & EXFLAG_XKUSAGE));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(org),
	    X509_get0_subject_key_id(issuing)), 0);
	ck_assert_int_eq(X509_get_version(org), X509_VERSION_3);
	ck_assert_int_eq(ASN1_INTEGER_get(X509_get0_serialNumber(org)), 10);
}
END_TEST

START_TEST(test_urls)
{
	STACK_OF(DIST_POINT) *dps;
	AUTHORITY_INFO_ACCESS *aia;
	GENERAL_NAME *gn;
	const char *uri;
	int i, ocsp = 0, cai = 0;

	dps = X509_get_ext_d2i(org, NID_crl_distribution_points, NULL, NULL);
	ck_assert_ptr_nonnull(dps);
	gn = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);
	ck_assert_int_eq(gn->type, GEN_URI);
	ck_assert_str_eq((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
	    "http://localhost/oces/issuing/1/crl/issuing.crl");
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	dps = X509_get_ext_d2i(issuing, NID_crl_distribution_points, NULL, NULL);
	gn = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);
	ck_assert_str_eq((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
	    "http://localhost/oces/root/crl/root.crl");
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);

	aia = X509_get_ext_d2i(issuing, NID_info_access, NULL, NULL);
	ck_assert_ptr_nonnull(aia);
	for (i = 0; i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);

		uri = (const char *)ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier);
		if (OBJ_obj2nid(ad->method) == NID_ad_OCSP) {
			ck_assert_str_eq(uri, "http://localhost/ocsp");
			ocsp++;
		} else if (OBJ_obj2nid(ad->method) == NID_ad_ca_issuers) {
			ck_assert_str_eq(uri, "http://localhost/oces/root/cacert/root.cer");
			cai++;
		}
	}
	ck_assert_int_eq(ocsp, 1);
	ck_assert_int_eq(cai, 1);
	AUTHORITY_INFO_ACCESS_free(aia);
}
END_TEST

START_TEST(test_subject)
{
	X509_NAME *n = X509_get_subject_name(org);
	char buf[256], cvr[9];
	int idx;

	ck_assert_int_gt(X509_NAME_get_text_by_NID(n, NID_countryName, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "DK");
	X509_NAME_get_text_by_NID(n, NID_organizationName, buf, sizeof(buf));
	ck_assert_str_eq(buf, "Ringsted Kommune");
	X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof(buf));
	ck_assert_str_eq(buf, "Ringsted Visitation");
	/* organizationIdentifier is OID 2.5.4.97. */
	idx = X509_NAME_get_index_by_OBJ(n, OBJ_txt2obj("2.5.4.97", 1), -1);
	ck_assert_int_ge(idx, 0);
	X509_NAME_get_text_by_NID(n, NID_organizationIdentifier, buf, sizeof(buf));
	ck_assert_str_eq(buf, "NTRDK-18957981");
	X509_NAME_get_text_by_NID(n, NID_serialNumber, buf, sizeof(buf));
	ck_assert_int_eq(strlen(buf), strlen("UI:DK-O:G:") + 36);
	ck_assert_int_eq(strncmp(buf, "UI:DK-O:G:", 10), 0);
	ck_assert(util_valid_id(buf + 10));
	ck_assert_int_lt(X509_NAME_get_index_by_NID(n, NID_organizationalUnitName, -1), 0);
	ck_assert_int_eq(pki_cert_cvr(org, cvr), 0);
	ck_assert_str_eq(cvr, "18957981");
	/* Each certificate gets its own UUID. */
	{
		char other[256];

		X509_NAME_get_text_by_NID(X509_get_subject_name(server), NID_serialNumber,
		    other, sizeof(other));
		ck_assert_str_ne(buf, other);
	}
	/* OU when given; CAs have no organisation identifier or serialNumber. */
	X509_NAME_get_text_by_NID(X509_get_subject_name(server), NID_organizationalUnitName,
	    buf, sizeof(buf));
	ck_assert_str_eq(buf, "IT");
	ck_assert_int_lt(X509_NAME_get_index_by_NID(X509_get_subject_name(issuing),
	    NID_serialNumber, -1), 0);
	ck_assert_int_lt(X509_NAME_get_index_by_NID(X509_get_subject_name(root),
	    NID_organizationIdentifier, -1), 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(org),
	    X509_get_subject_name(issuing)), 0);
}
END_TEST

START_TEST(test_server_san)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gn;
	int i, ip = 0, dns = 0;

	gens = X509_get_ext_d2i(server, NID_subject_alt_name, NULL, NULL);
	ck_assert_ptr_nonnull(gens);
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		gn = sk_GENERAL_NAME_value(gens, i);
		if (gn->type == GEN_IPADD) {
			ck_assert_int_eq(ASN1_STRING_length(gn->d.iPAddress), 4);
			ck_assert_mem_eq(ASN1_STRING_get0_data(gn->d.iPAddress),
			    "\x7f\x00\x00\x01", 4);
			ip++;
		} else if (gn->type == GEN_DNS) {
			ck_assert_str_eq((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
			    "localhost");
			dns++;
		}
	}
	ck_assert_int_eq(ip, 1);
	ck_assert_int_eq(dns, 1);
	GENERAL_NAMES_free(gens);
	ck_assert_int_eq(X509_check_ip_asc(server, "127.0.0.1", 0), 1);
	ck_assert_int_eq(X509_check_host(server, "localhost", 0, 0, NULL), 1);
	ck_assert_int_ne(X509_check_host(server, "example.org", 0, 0, NULL), 1);
	ck_assert_uint_eq(X509_get_extended_key_usage(server), XKU_SSL_SERVER | XKU_SSL_CLIENT | XKU_SMIME);
	/* emailProtection: the gateway signs minimised copies, which openssl cms -verify checks for S/MIME. */
	/* The organisation profile carries neither. */
	ck_assert_ptr_null(X509_get_ext_d2i(org, NID_subject_alt_name, NULL, NULL));
}
END_TEST

START_TEST(test_pss_signature)
{
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;

	ck_assert_int_eq(X509_get_signature_nid(root), NID_rsassaPss);
	ck_assert_int_eq(X509_get_signature_nid(issuing), NID_rsassaPss);
	ck_assert_int_eq(X509_get_signature_nid(org), NID_rsassaPss);
	X509_get0_signature(&sig, &alg, org);
	assert_pss_sha512_64(alg, sig);
	ck_assert_int_eq(X509_verify(org, ik), 1);
	ck_assert_int_eq(X509_verify(org, rk), 0);
	ck_assert_int_eq(X509_verify(root, rk), 1);
}
END_TEST

START_TEST(test_chain_verifies)
{
	STACK_OF(X509) *a = sk_X509_new_null(), *c = sk_X509_new_null();
	struct pki *p = NULL;
	struct why why = { 0 };

	sk_X509_push(a, root);
	sk_X509_push(c, issuing);
	ck_assert_int_eq(pki_from_objects(a, c, NULL, 0, &p, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_ENCRYPT, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_TLS_CLIENT, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, server, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why), 0);
	pki_free(p);
	/* What certgen makes also passes OpenSSL's strict RFC 5280 checks. */
	ck_assert_int_eq(pki_from_objects(a, c, NULL, PKI_STRICT, &p, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, server, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why), 0);
	pki_free(p);
	sk_X509_free(a);
	sk_X509_free(c);
}
END_TEST

START_TEST(test_crl)
{
	uint64_t serials[] = { 10, 12345 };
	X509_CRL *crl = NULL, *rcrl = NULL;
	STACK_OF(X509) *a = sk_X509_new_null(), *c = sk_X509_new_null();
	STACK_OF(X509_CRL) *l = sk_X509_CRL_new_null();
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	X509_REVOKED *rev = NULL;
	ASN1_ENUMERATED *reason;
	ASN1_INTEGER *num;
	AUTHORITY_KEYID *akid;
	struct pki *p = NULL;
	struct why why = { 0 };

	ck_assert_int_eq(certgen_crl(issuing, ik, serials, 2, now - 3600, 7, &crl, &why), 0);
	ck_assert_int_eq(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	ck_assert_int_eq(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(issuing)), 0);
	ck_assert_int_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
	ck_assert_int_eq(X509_CRL_get0_by_cert(crl, &rev, org), 1);
	reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
	ck_assert_ptr_nonnull(reason);
	ck_assert_int_eq(ASN1_ENUMERATED_get(reason), CRL_REASON_KEY_COMPROMISE);
	ASN1_ENUMERATED_free(reason);
	ck_assert_int_eq(X509_CRL_get0_by_cert(crl, &rev, server), 0);
	ck_assert_int_eq(X509_cmp_time(X509_CRL_get0_lastUpdate(crl), NULL), -1);
	ck_assert_int_eq(X509_cmp_time(X509_CRL_get0_nextUpdate(crl), NULL), 1);
	{
		time_t t = now + 8 * DAY;

		ck_assert_int_eq(X509_cmp_time(X509_CRL_get0_nextUpdate(crl), &t), -1);
	}
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	ck_assert_ptr_nonnull(num);
	ck_assert_int_gt(ASN1_INTEGER_get(num), 0);
	ASN1_INTEGER_free(num);
	akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	ck_assert_ptr_nonnull(akid);
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(akid->keyid,
	    X509_get0_subject_key_id(issuing)), 0);
	AUTHORITY_KEYID_free(akid);
	ck_assert_int_eq(X509_CRL_get_signature_nid(crl), NID_rsassaPss);
	X509_CRL_get0_signature(crl, &sig, &alg);
	assert_pss_sha512_64(alg, sig);
	ck_assert_int_eq(X509_CRL_verify(crl, ik), 1);
	ck_assert_int_eq(X509_CRL_verify(crl, rk), 0);

	/* pki_verify accepts the PSS-signed CRLs and finds the revocation. */
	ck_assert_int_eq(certgen_crl(root, rk, NULL, 0, 0, 30, &rcrl, &why), 0);
	sk_X509_push(a, root);
	sk_X509_push(c, issuing);
	sk_X509_CRL_push(l, crl);
	sk_X509_CRL_push(l, rcrl);
	ck_assert_int_eq(pki_from_objects(a, c, l, PKI_CRL_CHECK, &p, &why), 0);
	ck_assert_int_eq(pki_verify(p, server, NULL, PKI_PURPOSE_TLS_SERVER, 0, &why), 0);
	ck_assert_int_eq(pki_verify(p, org, NULL, PKI_PURPOSE_SIGN, 0, &why), HEGN_ERR_CERT);
	ck_assert_ptr_nonnull(strstr(why.text, "revoked"));
	pki_free(p);

	/* Refusals. */
	X509_CRL_free(rcrl);
	rcrl = NULL;
	ck_assert_int_eq(certgen_crl(issuing, rk, NULL, 0, 0, 30, &rcrl, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(rcrl);
	ck_assert_int_eq(certgen_crl(issuing, ik, NULL, 0, 0, 0, &rcrl, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(certgen_crl(issuing, ik, NULL, 3, 0, 30, &rcrl, &why), HEGN_ERR_INVALID);
	{
		uint64_t zero = 0;

		ck_assert_int_eq(certgen_crl(issuing, ik, &zero, 1, 0, 30, &rcrl, &why),
		    HEGN_ERR_CRYPTO);
		ck_assert_ptr_null(rcrl);
	}
	X509_CRL_free(crl);
	sk_X509_free(a);
	sk_X509_free(c);
	sk_X509_CRL_free(l);
}
END_TEST

START_TEST(test_refusals)
{
	struct certgen_subject s = org_s;
	struct why why = { 0 };
	X509 *x = NULL;

	s.cvr = "1234567";
	ck_assert_int_eq(certgen_cert(ok_key, &s, CERTGEN_ORG, issuing, ik, now, now + DAY, 5,
	    &x, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "CVR"));
	s.cvr = "1234567a";
	ck_assert_int_eq(certgen_cert(ok_key, &s, CERTGEN_ORG, issuing, ik, now, now + DAY, 5,
	    &x, &why), HEGN_ERR_INVALID);
	s.cvr = "12345678";
	s.cn = NULL;
	ck_assert_int_eq(certgen_cert(ok_key, &s, CERTGEN_ORG, issuing, ik, now, now + DAY, 5,
	    &x, &why), HEGN_ERR_INVALID);
	s.cn = "X";
	/* Serial 0, inverted validity. */
	ck_assert_int_eq(certgen_cert(ok_key, &s, CERTGEN_ORG, issuing, ik, now, now + DAY, 0,
	    &x, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(certgen_cert(ok_key, &s, CERTGEN_ORG, issuing, ik, now, now, 5,
	    &x, &why), HEGN_ERR_INVALID);
	/* The issuer key must belong to the issuer certificate. */
	ck_assert_int_eq(certgen_cert(ok_key, &s, CERTGEN_ORG, issuing, rk, now, now + DAY, 5,
	    &x, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "issuer key"));
	/* A root is self-signed, by its own key. */
	ck_assert_int_eq(certgen_cert(rk, &root_s, CERTGEN_ROOT_CA, root, rk, now, now + DAY, 5,
	    &x, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(certgen_cert(rk, &root_s, CERTGEN_ROOT_CA, NULL, ik, now, now + DAY, 5,
	    &x, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(certgen_cert(ok_key, &s, (enum certgen_profile)99, issuing, ik, now,
	    now + DAY, 5, &x, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(x);
}
END_TEST

START_TEST(test_ec)
{
	struct certgen_subject s = { "EC Org", "EC Org ApS", "11223344", NULL };
	struct why why = { 0 };
	X509 *ecroot = NULL, *leaf = NULL;

	/* An EC issuer signs with ECDSA-SHA256; an EC leaf agrees keys. */
	ck_assert_int_eq(certgen_cert(eck, &root_s, CERTGEN_ROOT_CA, NULL, eck, now - DAY,
	    now + DAY, 1, &ecroot, &why), 0);
	ck_assert_int_eq(X509_get_signature_nid(ecroot), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(certgen_cert(eck, &s, CERTGEN_ORG, issuing, ik, now - DAY,
	    now + DAY, 3, &leaf, &why), 0);
	ck_assert_int_eq(X509_get_signature_nid(leaf), NID_rsassaPss);
	ck_assert_uint_eq(X509_get_key_usage(leaf),
	    KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_AGREEMENT);
	X509_free(ecroot);
	X509_free(leaf);
}
END_TEST

/* Run cmd through the shell; its exit status. */
static int
run(const char *cmd)
{
	int st = system(cmd);

	ck_assert_int_ne(st, -1);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

START_TEST(test_files_and_stock_openssl)
{
	char dir[] = "/tmp/hegn-test-certgen-XXXXXX";
	char rp[128], ip[128], lp[128], kp[128], cp[128], bp[128], crlp[128], rcrlp[128];
	char cmd[1024];
	X509 *both[2];
	X509_CRL *crl = NULL, *rcrl = NULL;
	uint64_t revoked[] = { 10 };
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *certs = NULL;
	struct stat st;
	struct why why = { 0 };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(rp, sizeof(rp), "%s/root.pem", dir);
	snprintf(ip, sizeof(ip), "%s/issuing.pem", dir);
	snprintf(lp, sizeof(lp), "%s/leaf.pem", dir);
	snprintf(kp, sizeof(kp), "%s/leaf.key", dir);
	snprintf(cp, sizeof(cp), "%s/gateway.pem", dir);
	snprintf(bp, sizeof(bp), "%s/both.pem", dir);
	snprintf(crlp, sizeof(crlp), "%s/crl.pem", dir);
	snprintf(rcrlp, sizeof(rcrlp), "%s/rootcrl.pem", dir);
	ck_assert_int_eq(certgen_write_cert(rp, root, &why), 0);
	ck_assert_int_eq(certgen_write_cert(ip, issuing, &why), 0);
	ck_assert_int_eq(certgen_write_cert(lp, org, &why), 0);
	ck_assert_int_eq(certgen_write_cert(cp, server, &why), 0);
	ck_assert_int_eq(certgen_write_key(kp, ok_key, &why), 0);
	both[0] = issuing;
	both[1] = root;
	ck_assert_int_eq(certgen_write_certs(bp, both, 2, &why), 0);
	ck_assert_int_eq(certgen_crl(issuing, ik, revoked, 1, 0, 30, &crl, &why), 0);
	ck_assert_int_eq(certgen_crl(root, rk, NULL, 0, 0, 30, &rcrl, &why), 0);
	ck_assert_int_eq(certgen_write_crl(crlp, crl, &why), 0);
	ck_assert_int_eq(certgen_write_crl(rcrlp, rcrl, &why), 0);
	ck_assert_int_eq(certgen_write_certs(bp, NULL, 0, &why), HEGN_ERR_INVALID);

	/* Modes: keys private, the rest readable. */
	ck_assert_int_eq(stat(kp, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(lp, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	ck_assert_int_eq(stat(crlp, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);

	/* They read back. */
	ck_assert_int_eq(pki_load_key(kp, &k, &why), 0);
	ck_assert_int_eq(EVP_PKEY_eq(k, ok_key), 1);
	EVP_PKEY_free(k);
	ck_assert_int_eq(pki_load_cert(lp, &x, &why), 0);
	ck_assert_int_eq(X509_cmp(x, org), 0);
	X509_free(x);
	ck_assert_int_eq(pki_load_certs(bp, &certs, &why), 0);
	ck_assert_int_eq(sk_X509_num(certs), 2);
	sk_X509_pop_free(certs, X509_free);

	/* Stock openssl accepts the chain, the SAN and the PSS-signed CRLs. */
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile '%s' -untrusted '%s' '%s' '%s' "
	    ">/dev/null 2>&1", rp, ip, lp, cp);
	ck_assert_int_eq(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile '%s' -untrusted '%s' "
	    "-purpose sslserver -verify_ip 127.0.0.1 '%s' >/dev/null 2>&1", rp, ip, cp);
	ck_assert_int_eq(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "openssl verify -crl_check_all -CRLfile '%s' "
	    "-CRLfile '%s' -CAfile '%s' -untrusted '%s' '%s' >/dev/null 2>&1",
	    crlp, rcrlp, rp, ip, cp);
	ck_assert_int_eq(run(cmd), 0);
	/* ... and refuses what it must: the revoked leaf, and a chain without its root. */
	snprintf(cmd, sizeof(cmd), "openssl verify -crl_check_all -CRLfile '%s' "
	    "-CRLfile '%s' -CAfile '%s' -untrusted '%s' '%s' >/dev/null 2>&1",
	    crlp, rcrlp, rp, ip, lp);
	ck_assert_int_ne(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", ip, lp);
	ck_assert_int_ne(run(cmd), 0);
	/* openssl reads the key. */
	snprintf(cmd, sizeof(cmd), "openssl pkey -in '%s' -noout >/dev/null 2>&1", kp);
	ck_assert_int_eq(run(cmd), 0);

	/* Writing into a missing directory fails with the path named. */
	snprintf(cmd, sizeof(cmd), "%s/missing/x.pem", dir);
	ck_assert_int_eq(certgen_write_cert(cmd, org, &why), HEGN_ERR_IO);
	ck_assert_ptr_nonnull(strstr(why.text, "missing"));

	X509_CRL_free(crl);
	X509_CRL_free(rcrl);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	rmtree(dir);
}
END_TEST

START_TEST(test_generalized_time)
{
	struct why why = { 0 };
	X509 *x = NULL;
	/* 2055-01-01: past 2049, so GeneralizedTime (RFC 5280 4.1.2.5). */
	time_t far = (time_t)2682374400LL;

	ck_assert_int_eq(certgen_cert(ok_key, &org_s, CERTGEN_ORG, issuing, ik, now - DAY, far,
	    20, &x, &why), 0);
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
	X509_free(x);
}
END_TEST

static Suite *
certgen_suite(void)
{
	Suite *s = suite_create("certgen");
	TCase *tc = tcase_create("certgen");

	tcase_add_unchecked_fixture(tc, world_setup, world_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_profiles);
	tcase_add_test(tc, test_urls);
	tcase_add_test(tc, test_subject);
	tcase_add_test(tc, test_server_san);
	tcase_add_test(tc, test_pss_signature);
	tcase_add_test(tc, test_chain_verifies);
	tcase_add_test(tc, test_crl);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_ec);
	tcase_add_test(tc, test_files_and_stock_openssl);
	tcase_add_test(tc, test_generalized_time);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(certgen_suite)
