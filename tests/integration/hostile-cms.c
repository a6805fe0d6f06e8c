/*
 * hostile-cms: writes the hostile CMS objects and certificates that
 * tests/integration/test_hostile.sh sends to a real hegnd (issue 8 item 5).
 * Built for `make check` only.
 *
 *   hostile-cms attrs CERT KEY CONTENT OUTDIR
 *	SignedData over CONTENT by CERT/KEY, one per signed-attribute fault,
 *	each re-signed so its signature is valid: OUTDIR/<case>.der.
 *   hostile-cms certs CERT KEY CONTENT OUTDIR
 *	A test anchor (OUTDIR/anchor.pem, anchor-crl.pem) and SignedData over
 *	CONTENT whose certificates are at fault: key usage, loops, a forged
 *	anchor, a chain of 200 CAs, 3000 extra certificates (signed by
 *	CERT/KEY); client chains for TLS (tls-*.pem with tls-*.key).
 *   hostile-cms der IN OUTPREFIX
 *	Malformed DER made from the valid object IN: OUTPREFIX<name>.der.
 *
 * Each command prints one line per object written: the file name, a tab,
 * and a phrase the refusal's reason must hold ("-" for none, "ok" for the
 * control that must be accepted).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "envelope.h"
#include "err.h"
#include "pki.h"
#include "testcerts.h"
#include "testhostile.h"
#include "util.h"

#define CHAIN_DEPTH	200
#define EXTRA_CERTS	3000

static const char *outdir;

static void
die(const char *what)
{
	fprintf(stderr, "hostile-cms: %s\n", what);
	exit(1);
}

static char *
opath(const char *name)
{
	static char p[4096];

	snprintf(p, sizeof(p), "%s/%s", outdir, name);
	return p;
}

static void
write_out(const char *path, const struct buf *b)
{
	FILE *f;

	if ((f = fopen(path, "wb")) == NULL || fwrite(b->data, 1, b->len, f) != b->len ||
	    fclose(f) != 0)
		die(path);
}

/* Write der as NAME.der and list it with the phrase its refusal must hold. */
static void
emit(const char *name, const struct buf *der, const char *want)
{
	char file[256];

	snprintf(file, sizeof(file), "%s.der", name);
	write_out(opath(file), der);
	printf("%s\t%s\n", file, want != NULL ? want : "-");
}

static void
load(const char *cert_path, const char *key_path, const char *content_path,
    X509 **cert, EVP_PKEY **key, struct buf *content)
{
	struct why why = { 0 };

	if (pki_load_cert(cert_path, cert, &why) != 0 ||
	    pki_load_key(key_path, key, &why) != 0 ||
	    util_read_file(content_path, ENVELOPE_MAX_DER, content, &why) != 0)
		die(why.text);
}

static void
cmd_attrs(X509 *cert, EVP_PKEY *key, const struct buf *content)
{
	struct buf der = { 0 };
	int i;

	for (i = 0; i < HOSTILE_NFAULTS; i++) {
		const struct testhostile_case *c = &testhostile_cases[i];

		if (testhostile_attrs(key, cert, NULL, content->data, content->len,
		    c->fault, &der) != 0 || testhostile_sig_valid(&der, cert) != 1)
			die(c->name);
		emit(c->name, &der, c->fault == HOSTILE_NONE ? "ok" : c->want);
		buf_free(&der, 0);
	}
}

/* A SignedData over content by key/cert with chain, listed under name. */
static void
signed_by(const char *name, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    const struct buf *content, const char *want)
{
	struct buf der = { 0 };
	struct why why = { 0 };

	if (envelope_sign(key, cert, chain, ENVELOPE_PKCS1, content->data, content->len,
	    NULL, &der, &why) != 0)
		die(why.text);
	emit(name, &der, want);
	buf_free(&der, 0);
}

/* A client certificate chain for TLS: leaf first, then chain, and its key. */
static void
tls_chain(const char *name, X509 *leaf, EVP_PKEY *key, STACK_OF(X509) *chain)
{
	char file[256];
	FILE *f;
	int i, ok;

	snprintf(file, sizeof(file), "%s.pem", name);
	if ((f = fopen(opath(file), "w")) == NULL)
		die(file);
	ok = PEM_write_X509(f, leaf);
	for (i = 0; ok && i < sk_X509_num(chain); i++)
		ok = PEM_write_X509(f, sk_X509_value(chain, i));
	if (fclose(f) != 0 || !ok)
		die(file);
	snprintf(file, sizeof(file), "%s.key", name);
	if (testcerts_write_key(opath(file), key) != 0)
		die(file);
	printf("%s.pem\t-\n", name);
}

static void
cmd_certs(X509 *cert, EVP_PKEY *key, const struct buf *content)
{
	EVP_PKEY *ak, *lk, *ka, *kb, *kc, *kx, *deep_key = NULL;
	X509 *anchor, *leaf, *b0, *a_by_b, *b_by_a, *c, *fake, *x;
	X509_CRL *crl;
	STACK_OF(X509) *chain, *deep, *extra;
	struct buf base = { 0 }, der = { 0 };
	struct why why = { 0 };
	FILE *f;
	char cn[64];
	static const struct { const char *name, *ku, *want; } kus[] = {
		{ "ku-keyEncipherment", "keyEncipherment", "key usage does not allow signing" },
		{ "ku-dataEncipherment", "dataEncipherment", "key usage does not allow signing" },
		{ "ku-keyAgreement", "keyAgreement", "key usage does not allow signing" },
		{ "ku-cRLSign", "cRLSign", "key usage does not allow signing" },
		/* Controls: what docs/pki.md allows; only the party is unknown. */
		{ "ku-digitalSignature", "digitalSignature", "not registered" },
		{ "ku-nonRepudiation", "nonRepudiation", "not registered" },
	};
	size_t i;
	int k;

	if ((ak = EVP_EC_gen("P-256")) == NULL || (lk = EVP_EC_gen("P-256")) == NULL ||
	    (ka = EVP_EC_gen("P-256")) == NULL || (kb = EVP_EC_gen("P-256")) == NULL ||
	    (kc = EVP_EC_gen("P-256")) == NULL || (kx = EVP_EC_gen("P-256")) == NULL)
		die("cannot make keys");
	if ((anchor = testhostile_cert(NULL, NULL, ak, "Hostile Test Root", 1, NULL, 1)) == NULL ||
	    (crl = testcerts_crl(anchor, ak, NULL)) == NULL ||
	    testcerts_write_cert(opath("anchor.pem"), anchor) != 0 ||
	    (f = fopen(opath("anchor-crl.pem"), "w")) == NULL)
		die("cannot make the test anchor");
	if (!PEM_write_X509_CRL(f, crl) || fclose(f) != 0)
		die("anchor-crl.pem");

	/* Key usage: an end entity of the anchor that may not sign. */
	for (i = 0; i < sizeof(kus) / sizeof(kus[0]); i++) {
		if ((leaf = testhostile_cert(anchor, ak, lk, kus[i].name, 10 + (long)i,
		    kus[i].ku, 0)) == NULL)
			die(kus[i].name);
		signed_by(kus[i].name, lk, leaf, NULL, content, kus[i].want);
		X509_free(leaf);
	}

	/* Two CAs that certify each other; the leaf is A's. */
	if ((b0 = testhostile_cert(NULL, NULL, kb, "Loop CA B", 2, NULL, 1)) == NULL ||
	    (a_by_b = testhostile_cert(b0, kb, ka, "Loop CA A", 3, NULL, 1)) == NULL ||
	    (b_by_a = testhostile_cert(a_by_b, ka, kb, "Loop CA B", 4, NULL, 1)) == NULL ||
	    (leaf = testhostile_cert(a_by_b, ka, lk, "Loop Leaf", 5,
	    "digitalSignature,nonRepudiation", 0)) == NULL ||
	    (chain = sk_X509_new_null()) == NULL)
		die("loop certificates");
	sk_X509_push(chain, a_by_b);
	sk_X509_push(chain, b_by_a);
	signed_by("loop-cross", lk, leaf, chain, content, "Loop");
	tls_chain("tls-loop", leaf, lk, chain);
	sk_X509_free(chain);
	X509_free(leaf);

	/* A self-issued CA that is not self-signed, and a leaf below it. */
	if ((c = testhostile_self_issued("Self Issued CA", kc, kx)) == NULL ||
	    (leaf = testhostile_cert(c, kc, lk, "Self Issued Leaf", 6,
	    "digitalSignature", 0)) == NULL || (chain = sk_X509_new_null()) == NULL)
		die("self-issued certificates");
	sk_X509_push(chain, c);
	signed_by("loop-self-issued", lk, leaf, chain, content, "Self Issued");
	sk_X509_free(chain);
	X509_free(leaf);

	/* The anchor's name and key identifier on another key. */
	if ((fake = X509_dup(anchor)) == NULL || X509_set_pubkey(fake, kx) != 1 ||
	    X509_sign(fake, kx, EVP_sha256()) == 0 ||
	    (leaf = testhostile_cert(fake, kx, lk, "Forged Anchor Leaf", 7,
	    "digitalSignature", 0)) == NULL || (chain = sk_X509_new_null()) == NULL)
		die("forged anchor");
	sk_X509_push(chain, fake);
	signed_by("forged-anchor", lk, leaf, chain, content,
	    "certificate Forged Anchor Leaf has a bad signature");
	sk_X509_free(chain);
	X509_free(leaf);

	/* 200 CAs below the anchor. */
	if ((deep = testhostile_ca_chain(anchor, ak, CHAIN_DEPTH, &deep_key)) == NULL ||
	    (leaf = testhostile_cert(sk_X509_value(deep, CHAIN_DEPTH - 1), deep_key, lk,
	    "Deep Leaf", 8, "digitalSignature", 0)) == NULL)
		die("deep chain");
	signed_by("chain-200", lk, leaf, deep, content, "201 certificates");
	/* A TLS client sends its chain upwards from the leaf. */
	if ((chain = sk_X509_new_null()) == NULL)
		die("deep chain");
	for (k = CHAIN_DEPTH - 1; k >= 0; k--)
		sk_X509_push(chain, sk_X509_value(deep, k));
	tls_chain("tls-chain-200", leaf, lk, chain);
	sk_X509_free(chain);
	X509_free(leaf);

	/* A valid signature by the party, and 3000 certificates beside it. */
	if (envelope_sign(key, cert, NULL, ENVELOPE_PKCS1, content->data, content->len,
	    NULL, &base, &why) != 0 || (extra = sk_X509_new_null()) == NULL)
		die("extra certificates");
	for (k = 0; k < EXTRA_CERTS; k++) {
		snprintf(cn, sizeof(cn), "Extra %d", k);
		if ((x = testhostile_cert(anchor, ak, kx, cn, 100000 + k, "digitalSignature",
		    0)) == NULL || !sk_X509_push(extra, x))
			die("extra certificate");
	}
	if (testhostile_add_certs(&base, extra, &der) != 0)
		die("cannot add the extra certificates");
	emit("extra-3000", &der, "3001 certificates");

	buf_free(&base, 0);
	buf_free(&der, 0);
	sk_X509_pop_free(extra, X509_free);
	sk_X509_pop_free(deep, X509_free);
	X509_free(anchor);
	X509_free(b0);
	X509_free(a_by_b);
	X509_free(b_by_a);
	X509_free(c);
	X509_free(fake);
	X509_CRL_free(crl);
	EVP_PKEY_free(deep_key);
	EVP_PKEY_free(ak);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	EVP_PKEY_free(kc);
	EVP_PKEY_free(kx);
}

static void
cmd_der(const char *in_path, const char *prefix)
{
	struct buf in = { 0 }, out = { 0 };
	struct why why = { 0 };
	const char *name;
	char path[4096];
	int i, r;

	if (util_read_file(in_path, ENVELOPE_MAX_DER, &in, &why) != 0)
		die(why.text);
	for (i = 0; (r = testhostile_malformed(&in, i, &name, &out)) == 0; i++) {
		snprintf(path, sizeof(path), "%s%s.der", prefix, name);
		write_out(path, &out);
		printf("%s\t-\n", path);
		buf_free(&out, 0);
	}
	if (r < 0)
		die("the input is not a DER ContentInfo");
	buf_free(&in, 0);
}

int
main(int argc, char **argv)
{
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	struct buf content = { 0 };

	if (argc == 4 && strcmp(argv[1], "der") == 0) {
		cmd_der(argv[2], argv[3]);
		return 0;
	}
	if (argc != 6 || (strcmp(argv[1], "attrs") != 0 && strcmp(argv[1], "certs") != 0)) {
		fprintf(stderr, "usage: hostile-cms attrs|certs CERT KEY CONTENT OUTDIR\n"
		    "       hostile-cms der IN OUTPREFIX\n");
		return 2;
	}
	outdir = argv[5];
	load(argv[2], argv[3], argv[4], &cert, &key, &content);
	if (strcmp(argv[1], "attrs") == 0)
		cmd_attrs(cert, key, &content);
	else
		cmd_certs(cert, key, &content);
	X509_free(cert);
	EVP_PKEY_free(key);
	buf_free(&content, 0);
	return 0;
}
