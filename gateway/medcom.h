/*
 * medcom: MedCom FHIR messages (HospitalNotification, CareCommunication,
 * Acknowledgement), parsed and validated as far as routing and safety
 * depend on them, and the Acknowledgements hegn sends back.
 *
 * The rules are in docs/medcom.md: Bundle.type "message", the MessageHeader
 * as the first entry, exactly one primary destination, sender and receiver
 * Organizations with a SOR and a GLN, a Patient with a CPR or an X-eCPR
 * (except in an Acknowledgement), a Provenance for this MessageHeader, and
 * a time zone on every timestamp.
 */
#ifndef HEGN_MEDCOM_H
#define HEGN_MEDCOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "util.h"

/* Largest MedCom message accepted, in bytes (attachments are base64 inside). */
#define MEDCOM_MAX_BYTES ((size_t)64 * 1024 * 1024)
/*
 * The kind hegn records for an Acknowledgement it delivers to a MedCom
 * sender (inbox, status, reports); not a kind of hegn's JSON format.
 */
#define MEDCOM_ACK_KIND "acknowledgement"

/* Most cc destinations one message may name. */
#define MEDCOM_MAX_CC 32

enum medcom_event {
	MEDCOM_HOSPITAL_NOTIFICATION = 0,
	MEDCOM_CARE_COMMUNICATION,
	MEDCOM_ACKNOWLEDGEMENT,
	MEDCOM_EVENT_COUNT
};

enum medcom_ack_code {
	MEDCOM_ACK_OK = 0,
	MEDCOM_ACK_TRANSIENT_ERROR,
	MEDCOM_ACK_FATAL_ERROR,
	MEDCOM_ACK_CODE_COUNT
};

/* The four cases of (Bundle.id, MessageHeader.id) de-duplication. */
enum medcom_dup {
	MEDCOM_DUP_NEW = 0,         /* new Bundle.id, new MessageHeader.id: deliver */
	MEDCOM_DUP_DUPLICATE,       /* same pair again: resend the first ack, do not deliver */
	MEDCOM_DUP_RESEND,          /* new Bundle.id, known MessageHeader.id: as a duplicate */
	MEDCOM_DUP_ENVELOPE_REUSED  /* known Bundle.id with a new MessageHeader.id: fatal-error ack */
};

struct medcom_msg;

/* The eventCoding code ("hospital-notification-message", ...); NULL if out of range. */
const char *medcom_event_name(enum medcom_event ev);
/* The response.code ("ok", "transient-error", "fatal-error"); NULL if out of range. */
const char *medcom_ack_code_name(enum medcom_ack_code code);
/* 0 and *code for a known response.code name, HEGN_ERR_INVALID otherwise. */
int medcom_ack_code_from_name(const char *name, enum medcom_ack_code *code);

/*
 * Parse and validate a MedCom message.  Returns 0 and *out, or
 * HEGN_ERR_INVALID (why names the FHIR path and the problem, never the CPR
 * or a name) or HEGN_ERR_TOO_LARGE (more than MEDCOM_MAX_BYTES).
 */
int medcom_parse(const uint8_t *json, size_t len, struct medcom_msg **out, struct why *why);
/* Free m (wiping the CPR); accepts NULL. */
void medcom_free(struct medcom_msg *m);

/* The event type from MessageHeader.eventCoding. */
enum medcom_event medcom_event(const struct medcom_msg *m);
/* Bundle.id: the envelope id, new on every send. */
const char *medcom_bundle_id(const struct medcom_msg *m);
/* MessageHeader.id: the letter id, unchanged on a resend. */
const char *medcom_header_id(const struct medcom_msg *m);
/* Bundle.timestamp as sent (RFC 3339 with a zone). */
const char *medcom_timestamp(const struct medcom_msg *m);
/* SOR code of the sending Organization (MessageHeader.sender). */
const char *medcom_sender_sor(const struct medcom_msg *m);
/* GLN (EAN location number) of the sending Organization. */
const char *medcom_sender_gln(const struct medcom_msg *m);
/* SOR code of the primary receiver (MessageHeader.destination.receiver). */
const char *medcom_receiver_sor(const struct medcom_msg *m);
/* GLN of the primary receiver. */
const char *medcom_receiver_gln(const struct medcom_msg *m);
/* How many cc destinations (destinationUse cc) the message names. */
size_t medcom_cc_count(const struct medcom_msg *m);
/* SOR code of the i-th cc receiver, or NULL when i is out of range. */
const char *medcom_cc_sor(const struct medcom_msg *m, size_t i);
/* GLN of the i-th cc receiver, or NULL when i is out of range. */
const char *medcom_cc_gln(const struct medcom_msg *m, size_t i);
/* MessageHeader.source.endpoint: where the acknowledgement goes. */
const char *medcom_source_endpoint(const struct medcom_msg *m);
/* The primary destination's endpoint. */
const char *medcom_destination_endpoint(const struct medcom_msg *m);
/* The CPR as ten digits, or NULL (an Acknowledgement, or an X-eCPR). */
const char *medcom_cpr(const struct medcom_msg *m);
/* The X-eCPR replacement number, or NULL (an Acknowledgement, or a CPR). */
const char *medcom_ecpr(const struct medcom_msg *m);
/* Provenance.activity code of the Provenance that targets this MessageHeader. */
const char *medcom_activity(const struct medcom_msg *m);
/* Encounter.status of a HospitalNotification's focus, or NULL for other events. */
const char *medcom_encounter_status(const struct medcom_msg *m);
/* True when Patient.deceasedBoolean is true or Patient.deceasedDateTime is present. */
bool medcom_deceased(const struct medcom_msg *m);
/* An Acknowledgement's response.identifier (the acknowledged MessageHeader.id), or NULL. */
const char *medcom_response_identifier(const struct medcom_msg *m);
/* An Acknowledgement's response.code; MEDCOM_ACK_CODE_COUNT for other events. */
enum medcom_ack_code medcom_response_code(const struct medcom_msg *m);
/* An Acknowledgement's first OperationOutcome issue (diagnostics or details code), or NULL. */
const char *medcom_outcome_text(const struct medcom_msg *m);

/*
 * Map a HospitalNotification to hegn's message kind name ("admission_notice",
 * "leave_notice", "discharge_notice", "death_notice"; revise-* and cancel-*
 * map as their base code).  Returns 0 and *kind (static), or HEGN_ERR_INVALID
 * for another event type or an activity code without a mapping.
 */
int medcom_notification_kind(const struct medcom_msg *m, const char **kind, struct why *why);
/* True when the activity code is a cancel-* variant. */
bool medcom_is_cancellation(const struct medcom_msg *m);
/* True when the activity code is a revise-* variant. */
bool medcom_is_revision(const struct medcom_msg *m);

/*
 * Build the Acknowledgement of acked, sent by us (our_sor, our_gln) to the
 * acked message's sender at its source endpoint, with an OperationOutcome
 * carrying diagnostics when code is not ok.  Returns 0 and the JSON in *out,
 * HEGN_ERR_INVALID when acked is itself an Acknowledgement (never
 * acknowledged) or diagnostics is not UTF-8, or HEGN_ERR_CONFIG when our
 * SOR or GLN is malformed.
 */
int medcom_ack_build(const struct medcom_msg *acked, enum medcom_ack_code code,
    const char *diagnostics, const char *our_sor, const char *our_gln,
    struct buf *out, struct why *why);

/*
 * Build a fatal-error Acknowledgement for input that medcom_parse refused
 * (the body of an HTTP 422), taking what can still be read from it: the
 * MessageHeader.id (else the nil UUID), the sender's SOR, GLN and source
 * endpoint (else the stand-in values of docs/medcom.md: FHIR-shaped, not routable).
 * Returns 0 and *out, HEGN_ERR_INVALID when the input is recognisably an
 * Acknowledgement, or HEGN_ERR_CONFIG for a malformed SOR or GLN of ours.
 */
int medcom_fatal_for_unparseable(const uint8_t *json, size_t len, const char *diagnostics,
    const char *our_sor, const char *our_gln, struct buf *out, struct why *why);

/*
 * Classify an arriving message for de-duplication: bundle_seen when its
 * Bundle.id was received before, header_seen when its MessageHeader.id was
 * (from the same sender), same_pair when exactly this pair was.
 */
enum medcom_dup medcom_classify(bool bundle_seen, bool header_seen, bool same_pair);
/* "new", "duplicate", "resend", "envelope_reused"; NULL if out of range. */
const char *medcom_dup_name(enum medcom_dup d);

/* True when gln is 13 digits with a valid GS1 mod-10 check digit. */
bool medcom_gln_valid(const char *gln);
/* True when sor is 1 to 18 digits (a SOR code). */
bool medcom_sor_valid(const char *sor);

/*
 * True when json is a JSON object with resourceType "Bundle": the gateway
 * hands such content to medcom_parse rather than to hegn's own parser.
 */
bool medcom_is_fhir(const uint8_t *json, size_t len);

/*
 * Convert a parsed HospitalNotification or CareCommunication to hegn's
 * message format (docs/messages.md) as kind, addressed to party to
 * (docs/medcom.md, "hegn's format for a MedCom message").  Returns 0 and a
 * new *out (citizen.cpr, or citizen.ecpr for a citizen known by an X-eCPR
 * only), or HEGN_ERR_INVALID for a kind that does not fit the event.
 */
int medcom_to_hegn(const struct medcom_msg *m, const char *kind, const char *to, json_t **out,
    struct why *why);

#endif
