/*
 * fuzz_cms_sealed: envelope_open() on an (Auth)EnvelopedData as a party
 * receives it, with the fuzz organisation's fixed key from tests/fuzz/pki/
 * (so that seeds sealed for it decrypt all the way).
 */
#include "config.h"

#include <string.h>

#include "envelope.h"
#include "fuzz.h"
#include "pki.h"
#include "util.h"

static EVP_PKEY *fuzz_key;
static X509 *fuzz_cert;

static void
setup(void)
{
	struct why why = { 0 };
	char path[4096];

	if (fuzz_key != NULL)
		return;
	if (pki_load_cert(fuzz_path("pki/org.pem", path, sizeof(path)), &fuzz_cert, &why) != 0 ||
	    pki_load_key(fuzz_path("pki/org.key", path, sizeof(path)), &fuzz_key, &why) != 0) {
		fprintf(stderr, "fuzz_cms_sealed: %s\n", why.text);
		FUZZ_ASSERT(!"the fuzz key and certificate load");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = { 0 };
	struct why why = { 0 };
	int r;

	setup();
	(void)envelope_is_enveloped(data, size);
	r = envelope_open(fuzz_key, fuzz_cert, data, size, &out, &why);
	FUZZ_ASSERT((r == 0) == (out.data != NULL));
	if (r == 0)
		FUZZ_ASSERT(envelope_is_enveloped(data, size));
	buf_free(&out, 1);
	return 0;
}
