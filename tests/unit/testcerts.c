/*
 * testcerts: a throw-away PKI for unit tests (test-only).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testcerts.h"

EVP_PKEY *
testcerts_rsa(int bits)
{
	return EVP_RSA_gen((unsigned int)bits);
}

EVP_PKEY *
testcerts_ec(void)
{
	return EVP_EC_gen("P-256");
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

X509 *
testcerts_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key,
    const char *cn, long serial, long from_s, long to_s, int usage)
{
	X509 *cert = NULL;
	X509_NAME *name;
	char ku[128] = "critical";

	if ((cert = X509_new()) == NULL)
		return NULL;
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
	X509_gmtime_adj(X509_getm_notBefore(cert), from_s);
	X509_gmtime_adj(X509_getm_notAfter(cert), to_s);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"DK", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"hegn test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	if (issuer == NULL) {
		issuer = cert;
		issuer_key = key;
	}
	X509_set_issuer_name(cert, X509_get_subject_name(issuer));
	if (usage & TESTCERTS_CA) {
		if (add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE") != 0)
			goto fail;
		strcat(ku, ",keyCertSign,cRLSign");
	} else if (add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") != 0)
		goto fail;
	if (usage & TESTCERTS_SIGN)
		strcat(ku, ",digitalSignature,nonRepudiation");
	if (usage & TESTCERTS_ENCRYPT)
		strcat(ku, EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ?
		    ",keyAgreement" : ",keyEncipherment");
	if (add_ext(cert, issuer, NID_key_usage, ku) != 0 ||
	    add_ext(cert, issuer, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") != 0)
		goto fail;
	if (X509_sign(cert, issuer_key, EVP_sha256()) == 0)
		goto fail;
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

X509_CRL *
testcerts_crl(X509 *ca, EVP_PKEY *ca_key, X509 **revoked)
{
	X509_CRL *crl = NULL;
	X509_REVOKED *rev;
	ASN1_TIME *t = NULL;
	int i;

	if ((crl = X509_CRL_new()) == NULL)
		return NULL;
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	t = X509_gmtime_adj(NULL, -3600);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, 30L * 86400);
	X509_CRL_set1_nextUpdate(crl, t);
	for (i = 0; revoked != NULL && revoked[i] != NULL; i++) {
		rev = X509_REVOKED_new();
		X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(revoked[i]));
		X509_gmtime_adj(t, -1800);
		X509_REVOKED_set_revocationDate(rev, t);
		X509_CRL_add0_revoked(crl, rev);
	}
	ASN1_TIME_free(t);
	X509_CRL_sort(crl);
	if (X509_CRL_sign(crl, ca_key, EVP_sha256()) == 0) {
		X509_CRL_free(crl);
		return NULL;
	}
	return crl;
}

int
testcerts_write_cert(const char *path, X509 *cert)
{
	FILE *f;
	int ok;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	ok = PEM_write_X509(f, cert);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

int
testcerts_write_key(const char *path, EVP_PKEY *key)
{
	FILE *f;
	int ok;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

int
testcerts_run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	if ((st = system(cmd)) == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

void
testcerts_rmtree(const char *dir)
{
	if (dir != NULL && strncmp(dir, "/tmp/", 5) == 0)
		testcerts_run("rm -rf '%s'", dir);
}
