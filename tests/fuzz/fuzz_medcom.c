/*
 * fuzz_medcom: medcom_parse() on a MedCom message as a hospital or a care
 * system sends it; what it accepts must keep the header's promises, be
 * acknowledgeable (an Acknowledgement that parses back and names the
 * message), and convert to hegn's format where the gateway converts it.
 * medcom_fatal_for_unparseable() must answer any input that is not an
 * Acknowledgement.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "cpr.h"
#include "fuzz.h"
#include "medcom.h"
#include "message.h"
#include "util.h"

#define OUR_SOR "953741000016009"
#define OUR_GLN "5790001348120"

static void
check_accepted(const uint8_t *data, size_t size, struct medcom_msg *m)
{
	struct medcom_msg *back = NULL;
	struct message *hm = NULL;
	struct buf ack = { 0 };
	struct why why = { 0 };
	json_t *hj = NULL;
	const char *kind = NULL;
	char *text = NULL, key[32];
	size_t i;

	FUZZ_ASSERT(medcom_is_fhir(data, size));
	FUZZ_ASSERT((int)medcom_event(m) >= 0 && medcom_event(m) < MEDCOM_EVENT_COUNT);
	FUZZ_ASSERT(medcom_bundle_id(m) != NULL && medcom_header_id(m) != NULL);
	FUZZ_ASSERT(strlen(medcom_bundle_id(m)) <= 64 && strlen(medcom_header_id(m)) <= 64);
	FUZZ_ASSERT(medcom_sor_valid(medcom_sender_sor(m)) && medcom_sor_valid(medcom_receiver_sor(m)));
	FUZZ_ASSERT(medcom_gln_valid(medcom_sender_gln(m)) && medcom_gln_valid(medcom_receiver_gln(m)));
	FUZZ_ASSERT(medcom_source_endpoint(m) != NULL && medcom_destination_endpoint(m) != NULL);
	FUZZ_ASSERT(medcom_activity(m) != NULL);
	if (medcom_event(m) == MEDCOM_ACKNOWLEDGEMENT) {
		FUZZ_ASSERT(medcom_response_identifier(m) != NULL);
		FUZZ_ASSERT(medcom_response_code(m) < MEDCOM_ACK_CODE_COUNT);
		/* An Acknowledgement is never acknowledged. */
		FUZZ_ASSERT(medcom_ack_build(m, MEDCOM_ACK_OK, NULL, OUR_SOR, OUR_GLN, &ack, &why) ==
		    HEGN_ERR_INVALID);
		goto out;
	}
	for (i = 0; i < medcom_cc_count(m); i++)
		FUZZ_ASSERT(medcom_sor_valid(medcom_cc_sor(m, i)) &&
		    medcom_gln_valid(medcom_cc_gln(m, i)));
	FUZZ_ASSERT(medcom_cc_count(m) <= MEDCOM_MAX_CC);
	FUZZ_ASSERT(medcom_cc_sor(m, medcom_cc_count(m)) == NULL);
	FUZZ_ASSERT((medcom_cpr(m) != NULL) != (medcom_ecpr(m) != NULL));
	FUZZ_ASSERT(medcom_cpr(m) == NULL || strlen(medcom_cpr(m)) == 10);
	FUZZ_ASSERT(medcom_ack_build(m, MEDCOM_ACK_FATAL_ERROR, "fuzz", OUR_SOR, OUR_GLN, &ack,
	    &why) == 0);
	FUZZ_ASSERT(medcom_parse(ack.data, ack.len, &back, &why) == 0);
	FUZZ_ASSERT(medcom_event(back) == MEDCOM_ACKNOWLEDGEMENT);
	FUZZ_ASSERT(strcmp(medcom_response_identifier(back), medcom_header_id(m)) == 0);
	FUZZ_ASSERT(medcom_response_code(back) == MEDCOM_ACK_FATAL_ERROR);

	/* What the gateway converts must be valid in hegn's own format. */
	if (medcom_event(m) == MEDCOM_HOSPITAL_NOTIFICATION) {
		FUZZ_ASSERT(medcom_notification_kind(m, &kind, &why) == 0);
	} else {
		kind = "observation";
	}
	/* A citizen without a CPR is converted too, keyed by its X-eCPR (cpr.h). */
	FUZZ_ASSERT(medcom_to_hegn(m, kind, "ringsted-visitation", &hj, &why) == 0);
	FUZZ_ASSERT((text = json_dumps(hj, JSON_COMPACT)) != NULL);
	FUZZ_ASSERT(message_parse((const uint8_t *)text, strlen(text), NULL, &hm, &why) == 0);
	if (medcom_cpr(m) != NULL) {
		FUZZ_ASSERT(strcmp(message_cpr(hm), medcom_cpr(m)) == 0);
	} else {
		FUZZ_ASSERT(cpr_ecpr_key(medcom_ecpr(m), key, sizeof(key), &why) == 0);
		FUZZ_ASSERT(strcmp(message_cpr(hm), key) == 0);
	}
	FUZZ_ASSERT(strcmp(message_kind_name(message_kind(hm)), kind) == 0);
 out:
	free(text);
	json_decref(hj);
	message_free(hm);
	medcom_free(back);
	buf_free(&ack, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct medcom_msg *m = NULL;
	struct buf fatal = { 0 };
	struct why why = { 0 };
	int r;

	r = medcom_parse(data, size, &m, &why);
	FUZZ_ASSERT(r == 0 || r == HEGN_ERR_INVALID || r == HEGN_ERR_TOO_LARGE);
	FUZZ_ASSERT((r == 0) == (m != NULL));
	FUZZ_ASSERT(r == 0 || why.text[0] != '\0');
	if (m != NULL)
		check_accepted(data, size, m);
	/* The answer to a refusal: FHIR-shaped JSON, or no answer for an Acknowledgement. */
	r = medcom_fatal_for_unparseable(data, size, why.text[0] ? why.text : "fuzz", OUR_SOR,
	    OUR_GLN, &fatal, &why);
	FUZZ_ASSERT(r == 0 || r == HEGN_ERR_INVALID);
	if (r == 0)
		FUZZ_ASSERT(medcom_is_fhir(fatal.data, fatal.len));
	buf_free(&fatal, 0);
	medcom_free(m);
	return 0;
}
