/*
 * testcerts: a throw-away PKI for unit tests, made with the OpenSSL API
 * (test-only; not part of libgateway).
 */
#ifndef HEGN_TESTCERTS_H
#define HEGN_TESTCERTS_H

#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* What a leaf may do; TESTCERTS_CA makes a CA certificate. */
#define TESTCERTS_SIGN    0x01 /* digitalSignature, nonRepudiation */
#define TESTCERTS_ENCRYPT 0x02 /* keyEncipherment (RSA) or keyAgreement (EC) */
#define TESTCERTS_CA      0x04

EVP_PKEY *testcerts_rsa(int bits);
EVP_PKEY *testcerts_ec(void);

/*
 * A certificate for key named cn, issued by issuer/issuer_key (NULL:
 * self-signed), valid from now+from_s to now+to_s seconds.
 */
X509 *testcerts_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key,
    const char *cn, long serial, long from_s, long to_s, int usage);

/* A CRL by ca listing the serials of revoked (NULL-terminated). */
X509_CRL *testcerts_crl(X509 *ca, EVP_PKEY *ca_key, X509 **revoked);

/* Write PEM files; 0 or -1. */
int testcerts_write_cert(const char *path, X509 *cert);
int testcerts_write_key(const char *path, EVP_PKEY *key);

/* Run a shell command with output discarded; its exit status or -1. */
int testcerts_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Remove a directory tree (rm -rf). */
void testcerts_rmtree(const char *dir);

#endif
