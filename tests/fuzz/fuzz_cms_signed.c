/*
 * fuzz_cms_signed: envelope_verify() on a SignedData as a provider submits
 * it, against the fuzz PKI in tests/fuzz/pki/ (so that seeds signed with its
 * key verify all the way), and once more with detached content and the
 * legacy SHA-1 flag.  Nothing may crash; what verifies must keep the
 * promises of envelope.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "envelope.h"
#include "fuzz.h"
#include "pki.h"
#include "util.h"

static struct pki *fuzz_pki;
static struct buf detached_content;

static void
setup(void)
{
	struct why why = { 0 };
	char anchors[4096], content[4096];

	if (fuzz_pki != NULL)
		return;
	fuzz_path("pki/ca.pem", anchors, sizeof(anchors));
	if (pki_load(anchors, NULL, NULL, 0, &fuzz_pki, &why) != 0) {
		fprintf(stderr, "fuzz_cms_signed: %s\n", why.text);
		FUZZ_ASSERT(!"the fuzz PKI loads");
	}
	/* What seed-detached.der was signed over (see make-corpus.sh). */
	fuzz_path("corpus/message/seed-cancellation.json", content, sizeof(content));
	if (util_read_file(content, 1 << 20, &detached_content, &why) != 0) {
		fprintf(stderr, "fuzz_cms_signed: %s\n", why.text);
		FUZZ_ASSERT(!"the detached content loads");
	}
}

static void
check(const struct envelope_signed *s)
{
	const uint8_t *content;
	const char *id;
	size_t len;

	content = envelope_signed_content(s, &len);
	FUZZ_ASSERT(content != NULL);
	FUZZ_ASSERT(envelope_signed_signer(s) != NULL);
	/* It becomes a message id: 1..64 printable characters. */
	if ((id = envelope_signed_content_id(s)) != NULL)
		FUZZ_ASSERT(strlen(id) >= 1 && strlen(id) <= 64 &&
		    strspn(id, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNO"
		    "PQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~") == strlen(id));
	(void)envelope_signed_time(s);
}

/*
 * envelope_verify takes the certificates out of plain DER itself and
 * parses the rest with OpenSSL ("Certificates apart" in envelope.c); that
 * cut must change nothing: the outcome, its reason, the content and the
 * signer are those of OpenSSL's parse of the whole.
 */
static void
same_as_whole(const uint8_t *data, size_t size, int r, const struct why *why,
    const struct envelope_signed *s)
{
	struct envelope_signed *w = NULL;
	struct why ww = { 0 };
	const uint8_t *ca, *cb;
	size_t la, lb;
	int rw;

	rw = envelope_verify_opts(fuzz_pki, data, size, NULL, 0, 0, ENVELOPE_VERIFY_WHOLE, &w,
	    &ww);
	if (rw != r || strcmp(why->text, ww.text) != 0)
		fprintf(stderr, "fuzz_cms_signed: apart %d (%s), whole %d (%s)\n", r, why->text,
		    rw, ww.text);
	FUZZ_ASSERT(rw == r);
	FUZZ_ASSERT(strcmp(why->text, ww.text) == 0);
	if (r == 0) {
		ca = envelope_signed_content(s, &la);
		cb = envelope_signed_content(w, &lb);
		FUZZ_ASSERT(la == lb && memcmp(ca, cb, la) == 0);
		FUZZ_ASSERT(X509_cmp(envelope_signed_signer(s), envelope_signed_signer(w)) == 0);
	}
	envelope_signed_free(w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	int r;

	setup();
	(void)envelope_is_signed(data, size);
	(void)envelope_is_enveloped(data, size);

	r = envelope_verify(fuzz_pki, data, size, 0, &s, &why);
	FUZZ_ASSERT((r == 0) == (s != NULL));
	if (r == 0) {
		FUZZ_ASSERT(envelope_is_signed(data, size));
		check(s);
	}
	same_as_whole(data, size, r, &why, s);
	envelope_signed_free(s);
	s = NULL;

	r = envelope_verify_opts(fuzz_pki, data, size, detached_content.data,
	    detached_content.len, 0, ENVELOPE_VERIFY_LEGACY_SHA1, &s, &why);
	FUZZ_ASSERT((r == 0) == (s != NULL));
	if (r == 0)
		check(s);
	envelope_signed_free(s);
	return 0;
}
