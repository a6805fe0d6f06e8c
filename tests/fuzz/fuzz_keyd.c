/*
 * fuzz_keyd: the key process's side of its socket, which a compromised
 * network process writes to (docs/PRIVSEP.md): keyd_request_decode() on a
 * whole message, and for one that decodes what serve_one() would do with
 * it, with the fuzz PKI's RSA and P-256 keys as parties "org" and "ec".
 *
 * Promises: a request that decodes encodes back to the same bytes (the
 * framing has one form); an RSA block that is answered is as long as the
 * modulus and comes back from the answer under the public key; a shared
 * secret is as long as the curve's field; a signature is made only over a
 * 32-byte digest.
 */
#include "config.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "envelope.h"
#include "fuzz.h"
#include "keyd.h"
#include "pki.h"
#include "signer.h"
#include "util.h"

static struct signer *keys;
static EVP_PKEY *org_pub;

/* party's key and certificate from the fuzz PKI (committed, so not mode 0600: signer_add). */
static void
add(const char *party, const char *key_file, const char *cert_file)
{
	struct why why = { 0 };
	char path[4096];
	EVP_PKEY *k = NULL;
	X509 *c = NULL;

	if (pki_load_key(fuzz_path(key_file, path, sizeof(path)), &k, &why) != 0 ||
	    pki_load_cert(fuzz_path(cert_file, path, sizeof(path)), &c, &why) != 0 ||
	    signer_add(keys, party, k, c, NULL, ENVELOPE_PSS, &why) != 0) {
		fprintf(stderr, "fuzz_keyd: %s\n", why.text);
		FUZZ_ASSERT(!"the fuzz keys and certificates load");
	}
	if (strcmp(party, "org") == 0)
		FUZZ_ASSERT((org_pub = X509_get_pubkey(c)) != NULL);
	EVP_PKEY_free(k);
	X509_free(c);
}

static void
setup(void)
{
	if (keys != NULL)
		return;
	keys = signer_new();
	add("org", "pki/org.key", "pki/org.pem");
	add("ec", "pki/ec.key", "pki/ec.pem");
}

/* The raw RSA operation undone: block = out^e mod n. */
static void
check_rsa(const uint8_t *block, size_t len, const struct buf *out)
{
	EVP_PKEY_CTX *ctx;
	uint8_t back[1024];
	size_t n = sizeof(back);

	FUZZ_ASSERT(out->len == len && len <= sizeof(back));
	FUZZ_ASSERT((ctx = EVP_PKEY_CTX_new(org_pub, NULL)) != NULL);
	FUZZ_ASSERT(EVP_PKEY_encrypt_init(ctx) > 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0 &&
	    EVP_PKEY_encrypt(ctx, back, &n, out->data, out->len) > 0);
	FUZZ_ASSERT(n == len && memcmp(back, block, len) == 0);
	EVP_PKEY_CTX_free(ctx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyd_request req;
	struct buf again = { 0 }, out = { 0 };
	struct why why = { 0 };
	int r = -1;

	setup();
	if (keyd_request_decode(data, size, KEYD_REQUEST_MAX, &req, &why) != 0)
		return 0;
	FUZZ_ASSERT(keyd_request_encode(&req, &again, &why) == 0);
	FUZZ_ASSERT(again.len == size && memcmp(again.data, data, size) == 0);
	buf_free(&again, 0);
	switch (req.type) {
	case KEYD_SIGN:
		r = signer_sign_digest(keys, req.party, req.data, req.len,
		    req.has_content_id ? req.content_id : NULL, &out, &why);
		FUZZ_ASSERT(r != 0 || req.len == 32);
		break;
	case KEYD_RSA_DECRYPT:
		r = signer_rsa_decrypt_raw(keys, req.party, req.data, req.len, &out, &why);
		if (r == 0)
			check_rsa(req.data, req.len, &out);
		break;
	case KEYD_ECDH:
		r = signer_ecdh(keys, req.party, req.data, req.len, &out, &why);
		FUZZ_ASSERT(r != 0 || out.len == 32);
		break;
	default:
		/* CHECKPOINT needs an audit key, which fuzz_keyd does not load: decoding is what is tested. */
		break;
	}
	FUZZ_ASSERT((r == 0) == (out.data != NULL));
	buf_free(&out, 1);
	return 0;
}
