/*
 * keyproxy: open a CMS (Auth)EnvelopedData in the network process with a
 * private key that stays in the key process (docs/PRIVSEP.md, "The
 * requests").
 *
 * The key process used to get the whole EnvelopedData and parse it with
 * OpenSSL's CMS code, as root, holding every key.  Now the network process
 * parses it and decrypts the content; the key process makes only the one
 * private-key operation of the RecipientInfo, on a fixed-size input it
 * checks against the key: an RSA block (as long as the modulus) or a point
 * on the key's curve.
 *
 * OpenSSL 3.0 decrypts a RecipientInfo only with an EVP_PKEY in hand, and
 * calls out for its private half in one of two ways: a provider of our own,
 * or a key with legacy methods (RSA_METHOD, EC_KEY_METHOD) whose private-key
 * callback makes the request.  The second is what OpenSSH (ssh-pkcs11.c) and
 * OpenSMTPD (ca.c) do for the same purpose, and is far smaller.  Its functions
 * are deprecated in 3.0, hence the define, for this file only.  OpenSSL takes
 * a key with methods of its own ("foreign") down its legacy path, where the
 * padding (OAEP, or a sender's PKCS#1 v1.5) and the key derivation of ECDH
 * stay in OpenSSL's code, here.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "config.h"

#include <pthread.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "envelope.h"
#include "err.h"
#include "keyd.h"
#include "keyproxy.h"

/* The decryption this thread is making: where the callbacks send their request. */
struct call {
	struct keyd_client *c;
	const char *party;
	int failed;             /* 0, or why the key process could not answer */
	struct why why;
};

static _Thread_local struct call *current;

static RSA_METHOD *rsa_method;
static EC_KEY_METHOD *ec_method;
static pthread_once_t methods_once = PTHREAD_ONCE_INIT;

/*
 * A refusal of the block or point (HEGN_ERR_INVALID) depends only on what
 * the sender sent: it fails like a wrong key, and CMS_decrypt goes on with a
 * random content key (envelope_open).  Anything else is the gateway's fault
 * and is reported as such.
 */
static void
call_failed(struct call *cl, int rc, const struct why *w)
{
	if (rc == HEGN_ERR_INVALID || cl->failed != 0)
		return;
	cl->failed = rc;
	cl->why = *w;
}

static int
rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	struct call *cl = current;
	struct buf raw = { 0 };
	struct why w = { 0 };
	int n = RSA_size(rsa), r = -1, rc;

	/* OAEP is checked by OpenSSL after a call without padding. */
	if (cl == NULL || flen != n || (padding != RSA_NO_PADDING && padding != RSA_PKCS1_PADDING))
		return -1;
	if ((rc = keyd_client_rsa_decrypt(cl->c, cl->party, from, (size_t)flen, &raw, &w)) != 0) {
		call_failed(cl, rc, &w);
		return -1;
	}
	if (raw.len == (size_t)n) {
		if (padding == RSA_NO_PADDING) {
			memcpy(to, raw.data, raw.len);
			r = n;
		} else {
			/* In constant time, as OpenSSL's own (Bleichenbacher). */
			r = RSA_padding_check_PKCS1_type_2(to, n, raw.data, n, n);
		}
	}
	buf_free(&raw, 1);
	return r;
}

static int
ec_compute_key(unsigned char **psec, size_t *pseclen, const EC_POINT *pub, const EC_KEY *ec)
{
	struct call *cl = current;
	struct buf z = { 0 };
	struct why w = { 0 };
	unsigned char *point = NULL;
	size_t n;
	int rc, r = 0;

	if (cl == NULL || (n = EC_POINT_point2buf(EC_KEY_get0_group(ec), pub,
	    POINT_CONVERSION_UNCOMPRESSED, &point, NULL)) == 0)
		return 0;
	if ((rc = keyd_client_ecdh(cl->c, cl->party, point, n, &z, &w)) != 0) {
		call_failed(cl, rc, &w);
		goto out;
	}
	/* ECDH_compute_key frees it with OPENSSL_clear_free. */
	if (z.len == 0 || (*psec = OPENSSL_malloc(z.len)) == NULL)
		goto out;
	memcpy(*psec, z.data, z.len);
	*pseclen = z.len;
	r = 1;
out:
	OPENSSL_free(point);
	buf_free(&z, 1);
	return r;
}

static void
make_methods(void)
{
	RSA_METHOD *rm;
	EC_KEY_METHOD *em;

	if ((rm = RSA_meth_dup(RSA_PKCS1_OpenSSL())) != NULL &&
	    RSA_meth_set1_name(rm, "hegn key process") == 1 &&
	    RSA_meth_set_priv_dec(rm, rsa_priv_dec) == 1)
		rsa_method = rm;
	else
		RSA_meth_free(rm);
	if ((em = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) != NULL) {
		EC_KEY_METHOD_set_compute_key(em, ec_compute_key);
		ec_method = em;
	}
}

/* A key with cert's public half whose private-key operation is a request. */
static int
proxy_key(X509 *cert, const char *party, EVP_PKEY **out, struct why *why)
{
	EVP_PKEY *pub, *pk = NULL;
	RSA *rsa = NULL;
	EC_KEY *ec = NULL;
	int ok = 0;

	*out = NULL;
	pthread_once(&methods_once, make_methods);
	if ((pub = X509_get0_pubkey(cert)) == NULL)
		return why_set(why, HEGN_ERR_INTERNAL, "the certificate of %s has no usable key",
		    party);
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		ok = rsa_method != NULL && (rsa = RSAPublicKey_dup(EVP_PKEY_get0_RSA(pub))) != NULL &&
		    RSA_set_method(rsa, rsa_method) == 1 && (pk = EVP_PKEY_new()) != NULL &&
		    EVP_PKEY_assign_RSA(pk, rsa) == 1;
		if (ok)
			rsa = NULL;
		break;
	case EVP_PKEY_EC:
		ok = ec_method != NULL && (ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(pub))) != NULL &&
		    EC_KEY_set_method(ec, ec_method) == 1 && (pk = EVP_PKEY_new()) != NULL &&
		    EVP_PKEY_assign_EC_KEY(pk, ec) == 1;
		if (ok)
			ec = NULL;
		break;
	default:
		return why_set(why, HEGN_ERR_UNSUPPORTED, "the key of %s (%s) cannot decrypt",
		    party, OBJ_nid2sn(EVP_PKEY_get_base_id(pub)));
	}
	RSA_free(rsa);
	EC_KEY_free(ec);
	if (!ok) {
		EVP_PKEY_free(pk);
		return why_set(why, HEGN_ERR_NOMEM, "out of memory for the key of %s", party);
	}
	*out = pk;
	return 0;
}

int
keyproxy_open(struct keyd_client *c, const char *party, X509 *cert, const uint8_t *der,
    size_t len, struct buf *out, struct why *why)
{
	struct call cl;
	EVP_PKEY *pk;
	int r;

	out->data = NULL;
	out->len = 0;
	if ((r = proxy_key(cert, party, &pk, why)) != 0)
		return r;
	memset(&cl, 0, sizeof(cl));
	cl.c = c;
	cl.party = party;
	current = &cl;
	r = envelope_open(pk, cert, der, len, out, why);
	current = NULL;
	EVP_PKEY_free(pk);
	if (cl.failed != 0) {
		buf_free(out, 1);
		r = why_set(why, cl.failed, "%s", cl.why.text);
	}
	return r;
}
