/*
 * pki_shim: a MINIMAL stand-in for gateway/pki.c, linked only into the
 * envelope and signer tests until the real module is merged (then this
 * file goes and the tests link pki.c from libgateway).  It implements just
 * what envelope.c and the tests call: pki_from_objects, pki_free,
 * pki_verify, pki_new_store, pki_chain.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "pki.h"

struct pki {
	STACK_OF(X509) *anchors;
	STACK_OF(X509) *chain;
	STACK_OF(X509_CRL) *crls;
	int flags;
};

int
pki_from_objects(STACK_OF(X509) *anchors, STACK_OF(X509) *chain,
    STACK_OF(X509_CRL) *crls, int flags, struct pki **out, struct why *why)
{
	struct pki *p;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "out of memory");
	p->anchors = anchors ? X509_chain_up_ref(anchors) : sk_X509_new_null();
	p->chain = chain ? X509_chain_up_ref(chain) : sk_X509_new_null();
	p->crls = sk_X509_CRL_new_null();
	for (int i = 0; crls != NULL && i < sk_X509_CRL_num(crls); i++) {
		X509_CRL_up_ref(sk_X509_CRL_value(crls, i));
		sk_X509_CRL_push(p->crls, sk_X509_CRL_value(crls, i));
	}
	p->flags = flags;
	*out = p;
	return 0;
}

void
pki_free(struct pki *p)
{
	if (p == NULL)
		return;
	sk_X509_pop_free(p->anchors, X509_free);
	sk_X509_pop_free(p->chain, X509_free);
	sk_X509_CRL_pop_free(p->crls, X509_CRL_free);
	free(p);
}

X509_STORE *
pki_new_store(const struct pki *p)
{
	X509_STORE *st;
	int i;

	if ((st = X509_STORE_new()) == NULL)
		return NULL;
	for (i = 0; i < sk_X509_num(p->anchors); i++)
		X509_STORE_add_cert(st, sk_X509_value(p->anchors, i));
	for (i = 0; i < sk_X509_CRL_num(p->crls); i++)
		X509_STORE_add_crl(st, sk_X509_CRL_value(p->crls, i));
	if (p->flags & PKI_CRL_CHECK)
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return st;
}

STACK_OF(X509) *
pki_chain(const struct pki *p)
{
	return p->chain;
}

int
pki_verify(const struct pki *p, X509 *cert, STACK_OF(X509) *untrusted,
    enum pki_purpose purpose, time_t at, struct why *why)
{
	X509_STORE *st = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *all = NULL;
	uint32_t ku;
	int r, i, err;

	if ((st = pki_new_store(p)) == NULL || (ctx = X509_STORE_CTX_new()) == NULL ||
	    (all = sk_X509_new_null()) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; untrusted != NULL && i < sk_X509_num(untrusted); i++)
		sk_X509_push(all, sk_X509_value(untrusted, i));
	for (i = 0; i < sk_X509_num(p->chain); i++)
		sk_X509_push(all, sk_X509_value(p->chain, i));
	if (!X509_STORE_CTX_init(ctx, st, cert, all)) {
		r = why_set(why, HEGN_ERR_CRYPTO, "cannot set up validation");
		goto out;
	}
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, at);
	if (X509_verify_cert(ctx) != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		r = why_set(why, HEGN_ERR_CERT, "%s",
		    err == X509_V_ERR_CERT_HAS_EXPIRED ? "expired" :
		    err == X509_V_ERR_CERT_REVOKED ? "revoked" :
		    (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
		    err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
		    err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) ? "unknown issuer" :
		    X509_verify_cert_error_string(err));
		goto out;
	}
	ku = X509_get_key_usage(cert);
	if (purpose == PKI_PURPOSE_SIGN &&
	    !(ku & (X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_NON_REPUDIATION))) {
		r = why_set(why, HEGN_ERR_CERT, "key usage does not allow signing");
		goto out;
	}
	if (purpose == PKI_PURPOSE_ENCRYPT && !(ku & X509v3_KU_KEY_ENCIPHERMENT)) {
		r = why_set(why, HEGN_ERR_CERT, "key usage does not allow encryption");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	sk_X509_free(all);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return r;
}
