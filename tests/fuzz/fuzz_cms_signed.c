/*
 * fuzz_cms_signed: envelope_verify() on a SignedData as a provider submits
 * it, against the fuzz PKI in tests/fuzz/pki/ (so that seeds signed with its
 * key verify all the way), and once more with detached content and the
 * legacy SHA-1 flag.  Nothing may crash; what verifies must keep the
 * promises of envelope.h.
 */
#include "config.h"

#include <string.h>

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
