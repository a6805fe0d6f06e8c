/*
 * fuzz_cert: pki_cert_from_der() on a certificate from the network (a TLS
 * client's or a SignedData signer's), then what the gateway reads from it:
 * subject, CVR, fingerprint, and validation against the fuzz PKI.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pki.h"

static struct pki *fuzz_pki;

static void
setup(void)
{
	struct why why = { 0 };
	char anchors[4096];

	if (fuzz_pki != NULL)
		return;
	fuzz_path("pki/ca.pem", anchors, sizeof(anchors));
	if (pki_load(anchors, NULL, NULL, 0, &fuzz_pki, &why) != 0) {
		fprintf(stderr, "fuzz_cert: %s\n", why.text);
		FUZZ_ASSERT(!"the fuzz PKI loads");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	X509 *x = NULL;
	struct why why = { 0 };
	char cvr[9], fp[65], *subject = NULL;

	setup();
	if (pki_cert_from_der(data, size, &x, &why) != 0) {
		FUZZ_ASSERT(x == NULL);
		goto out;
	}
	subject = pki_subject(x);
	if (pki_cert_cvr(x, cvr) == 0)
		FUZZ_ASSERT(strlen(cvr) == 8 && strspn(cvr, "0123456789") == 8);
	else
		FUZZ_ASSERT(cvr[0] == '\0');
	pki_fingerprint(x, fp);
	FUZZ_ASSERT(fp[0] == '\0' || strlen(fp) == 64);
	(void)pki_verify(fuzz_pki, x, NULL, PKI_PURPOSE_SIGN, 0, &why);
	(void)pki_verify(fuzz_pki, x, NULL, PKI_PURPOSE_TLS_CLIENT, 0, &why);
 out:
	free(subject);
	X509_free(x);
	return 0;
}
