#include "config.h"

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "medcom.h"
#include "message.h"
#include "testlib.h"
#include "util.h"

#define TEST_CPR "2509479989"
#define TEST_NAME "Elmer"
#define HOSPITAL_SOR "265161000016000"
#define HOSPITAL_GLN "5790000209354"
#define VISITATION_SOR "953741000016009"
#define VISITATION_GLN "5790001348120"
#define SOR_URL "https://sor2.sum.dsdn.dk/#id="

struct example {
	const char *file;
	enum medcom_event event;
	const char *bundle_id;
	const char *header_id;
	const char *sender_sor, *sender_gln, *receiver_sor, *receiver_gln;
	const char *cpr;
	const char *activity;
	const char *encounter_status;
	const char *kind;
	const char *response_id;
	enum medcom_ack_code response_code;
};

static const struct example examples[] = {
	{ "hospitalnotification-admit-inpatient.json", MEDCOM_HOSPITAL_NOTIFICATION,
	    "a5e5b880-c087-4055-b9ec-99108695f81d", "b9b4818e-02de-4cc4-b418-d20cbc7b5404",
	    HOSPITAL_SOR, HOSPITAL_GLN, VISITATION_SOR, VISITATION_GLN, TEST_CPR,
	    "admit-inpatient", "in-progress", "admission_notice", NULL, MEDCOM_ACK_CODE_COUNT },
	{ "hospitalnotification-discharge-home.json", MEDCOM_HOSPITAL_NOTIFICATION,
	    "f4aa42a4-86db-4e68-9b38-9dda0dfd5774", "g1affa53-c157-4080-abb0-8e681524f969",
	    HOSPITAL_SOR, HOSPITAL_GLN, VISITATION_SOR, VISITATION_GLN, TEST_CPR,
	    "discharge-inpatient-home", "finished", "discharge_notice", NULL, MEDCOM_ACK_CODE_COUNT },
	{ "hospitalnotification-start-leave.json", MEDCOM_HOSPITAL_NOTIFICATION,
	    "d3128d9b-cede-4c7f-8904-809eab322d7d", "e563a2b2-bf92-4b13-bbd2-0a021a95bded",
	    HOSPITAL_SOR, HOSPITAL_GLN, VISITATION_SOR, VISITATION_GLN, TEST_CPR,
	    "start-leave-inpatient", "onleave", "leave_notice", NULL, MEDCOM_ACK_CODE_COUNT },
	{ "carecommunication-new.json", MEDCOM_CARE_COMMUNICATION,
	    "k7bfbc0c-553d-11ed-bdc3-0242ac120002", "3076d9b0-5521-11ed-bdc3-0242ac120002",
	    HOSPITAL_SOR, HOSPITAL_GLN, VISITATION_SOR, VISITATION_GLN, TEST_CPR,
	    "reply-message", NULL, NULL, NULL, MEDCOM_ACK_CODE_COUNT },
	{ "acknowledgement-ok.json", MEDCOM_ACKNOWLEDGEMENT,
	    "a8c041b8-c65a-4fde-a90f-962076918834", "aba2d9bf-2c6c-47e8-bce4-7928bcd51019",
	    VISITATION_SOR, VISITATION_GLN, HOSPITAL_SOR, HOSPITAL_GLN, NULL,
	    "acknowledgement", NULL, NULL, "42cb9200-f421-4d08-8391-7d51a2503cb4", MEDCOM_ACK_OK },
	{ "acknowledgement-transient-error.json", MEDCOM_ACKNOWLEDGEMENT,
	    "c9c2b2f6-0807-11ed-861d-0242ac120002", "c9a0b728-0807-11ed-861d-0242ac120002",
	    VISITATION_SOR, VISITATION_GLN, HOSPITAL_SOR, HOSPITAL_GLN, NULL,
	    "acknowledgement", NULL, NULL, "53128d9b-cede-4c7f-8904-809eab322d7d",
	    MEDCOM_ACK_TRANSIENT_ERROR },
};
#define NEXAMPLES ((int)(sizeof(examples) / sizeof(examples[0])))

/* Read an example into *b; false (after a SKIP line) when the shared data is absent. */
static bool
load_example(const char *file, struct buf *b)
{
	const char *dir = testlib_shared_dir();
	char path[4096];
	struct why why = { 0 };

	if (dir == NULL) {
		TESTLIB_SKIP("shared data absent: MedCom examples not tested");
		return false;
	}
	snprintf(path, sizeof(path), "%s/medcom-examples/%s", dir, file);
	ck_assert_msg(util_read_file(path, 1 << 20, b, &why) == 0, "%s: %s", path, why.text);
	return true;
}

static json_t *
load_example_json(const char *file)
{
	struct buf b = { 0 };
	json_t *root;

	if (!load_example(file, &b))
		return NULL;
	root = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_ptr_nonnull(root);
	buf_free(&b, 0);
	return root;
}

static int
parse_json(json_t *root, struct medcom_msg **m, struct why *why)
{
	char *text = json_dumps(root, JSON_COMPACT);
	int r;

	ck_assert_ptr_nonnull(text);
	r = medcom_parse((const uint8_t *)text, strlen(text), m, why);
	free(text);
	return r;
}

static int
parse_text(const char *text, struct medcom_msg **m, struct why *why)
{
	return medcom_parse((const uint8_t *)text, strlen(text), m, why);
}

/* The n-th resource (from 0) of type in the Bundle, or NULL. */
static json_t *
find_res(json_t *root, const char *type, int n)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(root, "entry"), i, e) {
		json_t *res = json_object_get(e, "resource");
		const char *rt = json_string_value(json_object_get(res, "resourceType"));

		if (rt != NULL && strcmp(rt, type) == 0 && n-- == 0)
			return res;
	}
	return NULL;
}

static json_t *
header_of(json_t *root)
{
	return find_res(root, "MessageHeader", 0);
}

/* The Organization MessageHeader.destination[0].receiver names. */
static json_t *
receiver_org(json_t *root)
{
	json_t *dest = json_array_get(json_object_get(header_of(root), "destination"), 0);
	const char *ref = json_string_value(json_object_get(json_object_get(dest, "receiver"),
	    "reference"));
	json_t *org;
	int i;

	for (i = 0; (org = find_res(root, "Organization", i)) != NULL; i++) {
		char want[128];

		snprintf(want, sizeof(want), "Organization/%s",
		    json_string_value(json_object_get(org, "id")));
		if (strcmp(want, ref) == 0)
			return org;
	}
	return NULL;
}

static void
set_identifier(json_t *res, const char *system, const char *value)
{
	json_t *id;
	size_t i;

	json_array_foreach(json_object_get(res, "identifier"), i, id) {
		const char *sys = json_string_value(json_object_get(id, "system"));

		if (sys != NULL && strcmp(sys, system) == 0)
			json_object_set_new(id, "value", json_string(value));
	}
}

/* Remove every entry whose resource is of type. */
static void
remove_entries(json_t *root, const char *type)
{
	json_t *entries = json_object_get(root, "entry");
	size_t i = 0;

	while (i < json_array_size(entries)) {
		json_t *res = json_object_get(json_array_get(entries, i), "resource");

		if (strcmp(json_string_value(json_object_get(res, "resourceType")), type) == 0)
			json_array_remove(entries, i);
		else
			i++;
	}
}

/* The Provenance of the current MessageHeader (the last one in the examples). */
static json_t *
current_provenance(json_t *root)
{
	json_t *p, *last = NULL;
	int i;

	for (i = 0; (p = find_res(root, "Provenance", i)) != NULL; i++)
		last = p;
	return last;
}

static void
set_activity(json_t *root, const char *code)
{
	json_t *coding = json_array_get(json_object_get(json_object_get(current_provenance(root),
	    "activity"), "coding"), 0);

	json_object_set_new(coding, "code", json_string(code));
}

static void
assert_str_eq_or_null(const char *got, const char *want)
{
	if (want == NULL)
		ck_assert_ptr_null(got);
	else
		ck_assert_str_eq(got, want);
}

START_TEST(test_examples)
{
	const struct example *ex = &examples[_i];
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	struct buf b = { 0 };
	const char *kind = NULL;
	char endpoint[64];

	if (!load_example(ex->file, &b))
		return;
	ck_assert_msg(medcom_parse(b.data, b.len, &m, &why) == 0, "%s: %s", ex->file, why.text);
	ck_assert_int_eq(medcom_event(m), ex->event);
	ck_assert_str_eq(medcom_bundle_id(m), ex->bundle_id);
	ck_assert_str_eq(medcom_header_id(m), ex->header_id);
	ck_assert_str_eq(medcom_sender_sor(m), ex->sender_sor);
	ck_assert_str_eq(medcom_sender_gln(m), ex->sender_gln);
	ck_assert_str_eq(medcom_receiver_sor(m), ex->receiver_sor);
	ck_assert_str_eq(medcom_receiver_gln(m), ex->receiver_gln);
	snprintf(endpoint, sizeof(endpoint), SOR_URL "%s", ex->sender_sor);
	ck_assert_str_eq(medcom_source_endpoint(m), endpoint);
	snprintf(endpoint, sizeof(endpoint), SOR_URL "%s", ex->receiver_sor);
	ck_assert_str_eq(medcom_destination_endpoint(m), endpoint);
	assert_str_eq_or_null(medcom_cpr(m), ex->cpr);
	ck_assert_ptr_null(medcom_ecpr(m));
	ck_assert_str_eq(medcom_activity(m), ex->activity);
	assert_str_eq_or_null(medcom_encounter_status(m), ex->encounter_status);
	ck_assert(!medcom_deceased(m));
	ck_assert(!medcom_is_cancellation(m));
	ck_assert(!medcom_is_revision(m));
	ck_assert_ptr_nonnull(medcom_timestamp(m));
	assert_str_eq_or_null(medcom_response_identifier(m), ex->response_id);
	ck_assert_int_eq(medcom_response_code(m), ex->response_code);
	if (ex->response_code == MEDCOM_ACK_TRANSIENT_ERROR)
		ck_assert_str_eq(medcom_outcome_text(m), "MSG_Mailbox_Out_Of_Operation");
	else
		ck_assert_ptr_null(medcom_outcome_text(m));
	if (ex->kind != NULL) {
		ck_assert_int_eq(medcom_notification_kind(m, &kind, &why), 0);
		ck_assert_str_eq(kind, ex->kind);
	} else {
		ck_assert_int_eq(medcom_notification_kind(m, &kind, &why), HEGN_ERR_INVALID);
		ck_assert_ptr_null(kind);
		ck_assert_ptr_nonnull(strstr(why.text, "not a HospitalNotification"));
	}
	medcom_free(m);
	buf_free(&b, 0);
}
END_TEST

/* Broken copies of the admission example, each refused with a reason naming the problem. */
struct mutation {
	const char *name;
	void (*apply)(json_t *root);
	const char *expect;
};

static void
mut_no_cpr(json_t *root)
{
	json_object_del(find_res(root, "Patient", 0), "identifier");
}

static void
mut_cpr_bad_date(json_t *root)
{
	set_identifier(find_res(root, "Patient", 0), "urn:oid:1.2.208.176.1.2", "3209479989");
}

static void
mut_two_cprs(json_t *root)
{
	json_t *ids = json_object_get(find_res(root, "Patient", 0), "identifier");

	json_array_append_new(ids, json_deep_copy(json_array_get(ids, 0)));
}

static void
mut_two_primary(json_t *root)
{
	json_t *dests = json_object_get(header_of(root), "destination");

	json_array_append_new(dests, json_deep_copy(json_array_get(dests, 0)));
}

static void
mut_no_primary(json_t *root)
{
	json_t *dest = json_array_get(json_object_get(header_of(root), "destination"), 0);
	json_t *ext = json_array_get(json_object_get(dest, "extension"), 0);

	json_object_set_new(json_object_get(ext, "valueCoding"), "code", json_string("cc"));
}

static void
mut_bad_use(json_t *root)
{
	json_t *dest = json_array_get(json_object_get(header_of(root), "destination"), 0);
	json_t *ext = json_array_get(json_object_get(dest, "extension"), 0);

	json_object_set_new(json_object_get(ext, "valueCoding"), "code", json_string("bcc"));
}

static void
mut_no_use_ext(json_t *root)
{
	json_object_del(json_array_get(json_object_get(header_of(root), "destination"), 0),
	    "extension");
}

static void
mut_bad_gln(json_t *root)
{
	set_identifier(receiver_org(root), "https://www.gs1.org/gln", "5790001348121");
}

static void
mut_gln_is_cpr(json_t *root)
{
	set_identifier(receiver_org(root), "https://www.gs1.org/gln", TEST_CPR);
}

static void
mut_no_sor(json_t *root)
{
	set_identifier(receiver_org(root), "urn:oid:1.2.208.176.1.1", "SOR-not-digits");
}

static void
mut_no_gln(json_t *root)
{
	json_array_remove(json_object_get(receiver_org(root), "identifier"), 0);
}

static void
mut_no_provenance(json_t *root)
{
	remove_entries(root, "Provenance");
}

static void
mut_provenance_elsewhere(json_t *root)
{
	json_t *t = json_array_get(json_object_get(current_provenance(root), "target"), 0);

	json_object_set_new(t, "reference", json_string("MessageHeader/some-other-letter"));
}

static void
mut_provenance_zoneless(json_t *root)
{
	json_object_set_new(current_provenance(root), "recorded",
	    json_string("2022-12-07T12:00:02"));
}

static void
mut_activity_unknown(json_t *root)
{
	set_activity(root, "new-message");
}

static void
mut_event_unknown(json_t *root)
{
	json_object_set_new(json_object_get(header_of(root), "eventCoding"), "code",
	    json_string("referral-message"));
}

static void
mut_event_system(json_t *root)
{
	json_object_set_new(json_object_get(header_of(root), "eventCoding"), "system",
	    json_string("http://example.org/events"));
}

static void
mut_timestamp_zoneless(json_t *root)
{
	json_object_set_new(root, "timestamp", json_string("2022-12-07T12:00:01"));
}

static void
mut_timestamp_missing(json_t *root)
{
	json_object_del(root, "timestamp");
}

static void
mut_period_zoneless(json_t *root)
{
	json_object_set_new(json_object_get(find_res(root, "Encounter", 0), "period"), "start",
	    json_string("2022-12-07T12:00:00"));
}

static void
mut_period_garbage(json_t *root)
{
	json_object_set_new(json_object_get(find_res(root, "Encounter", 0), "period"), "end",
	    json_string("yesterday"));
}

static void
mut_type_document(json_t *root)
{
	json_object_set_new(root, "type", json_string("document"));
}

static void
mut_not_bundle(json_t *root)
{
	json_object_set_new(root, "resourceType", json_string("Parameters"));
}

static void
mut_no_bundle_id(json_t *root)
{
	json_object_del(root, "id");
}

static void
mut_bad_bundle_id(json_t *root)
{
	json_object_set_new(root, "id", json_string("has space"));
}

static void
mut_sender_dangling(json_t *root)
{
	json_object_set_new(json_object_get(header_of(root), "sender"), "reference",
	    json_string("Organization/nowhere"));
}

static void
mut_receiver_dangling(json_t *root)
{
	json_t *dest = json_array_get(json_object_get(header_of(root), "destination"), 0);

	json_object_set_new(json_object_get(dest, "receiver"), "reference",
	    json_string("Organization/nowhere"));
}

static void
mut_sender_is_patient(json_t *root)
{
	char ref[128];

	snprintf(ref, sizeof(ref), "Patient/%s",
	    json_string_value(json_object_get(find_res(root, "Patient", 0), "id")));
	json_object_set_new(json_object_get(header_of(root), "sender"), "reference",
	    json_string(ref));
}

static void
mut_header_not_first(json_t *root)
{
	json_t *entries = json_object_get(root, "entry");
	json_t *first = json_incref(json_array_get(entries, 0));

	json_array_remove(entries, 0);
	json_array_append_new(entries, first);
}

static void
mut_duplicate_fullurl(json_t *root)
{
	json_t *entries = json_object_get(root, "entry");

	json_object_set(json_array_get(entries, 2), "fullUrl",
	    json_object_get(json_array_get(entries, 1), "fullUrl"));
}

static void
mut_two_patients(json_t *root)
{
	json_t *entries = json_object_get(root, "entry");
	json_t *copy = json_deep_copy(json_array_get(entries, 1));

	json_object_set_new(copy, "fullUrl", json_string("https://example.org/Patient/second"));
	json_array_append_new(entries, copy);
}

static void
mut_endpoint_mismatch(json_t *root)
{
	json_object_set_new(json_array_get(json_object_get(header_of(root), "destination"), 0),
	    "endpoint", json_string(SOR_URL "123456"));
}

static void
mut_source_missing(json_t *root)
{
	json_object_del(header_of(root), "source");
}

static void
mut_encounter_status(json_t *root)
{
	json_object_set_new(find_res(root, "Encounter", 0), "status", json_string("teleported"));
}

static void
mut_no_focus(json_t *root)
{
	json_object_del(header_of(root), "focus");
}

static void
mut_deceased_zoneless(json_t *root)
{
	json_object_set_new(find_res(root, "Patient", 0), "deceasedDateTime",
	    json_string("2022-12-07T10:00:00"));
}

static void
mut_deceased_string(json_t *root)
{
	json_object_set_new(find_res(root, "Patient", 0), "deceasedBoolean", json_string("true"));
}

static void
mut_entry_without_resource(json_t *root)
{
	json_object_del(json_array_get(json_object_get(root, "entry"), 3), "resource");
}

static const struct mutation mutations[] = {
	{ "no CPR", mut_no_cpr, "Patient.identifier: no CPR" },
	{ "CPR with a bad date", mut_cpr_bad_date, "Patient.identifier (CPR)" },
	{ "two CPRs", mut_two_cprs, "Patient.identifier: 2 CPR identifiers" },
	{ "two primary destinations", mut_two_primary,
	    "MessageHeader.destination: 2 primary destinations" },
	{ "no primary destination", mut_no_primary,
	    "MessageHeader.destination: 0 primary destinations" },
	{ "unknown destination use", mut_bad_use, "destinationUse: 'bcc'" },
	{ "no destinationUse", mut_no_use_ext, "0 destinationUse extensions" },
	{ "bad GLN check digit", mut_bad_gln,
	    "Organization (receiver).identifier GLN 5790001348121: bad check digit" },
	{ "a CPR as GLN", mut_gln_is_cpr, "Organization (receiver).identifier GLN: not 13 digits" },
	{ "SOR not digits", mut_no_sor, "Organization (receiver).identifier SOR: not 1 to 18 digits" },
	{ "no GLN", mut_no_gln, "Organization (receiver).identifier: 0 GLN identifiers" },
	{ "no Provenance", mut_no_provenance, "Provenance: none in the Bundle" },
	{ "Provenance for another letter", mut_provenance_elsewhere,
	    "0 Provenances target this MessageHeader" },
	{ "Provenance.recorded without zone", mut_provenance_zoneless, "Provenance.recorded" },
	{ "activity not a HospitalNotification one", mut_activity_unknown,
	    "'new-message' is not a HospitalNotification activity" },
	{ "unknown event code", mut_event_unknown,
	    "MessageHeader.eventCoding.code: unknown event 'referral-message'" },
	{ "foreign event system", mut_event_system, "MessageHeader.eventCoding.system" },
	{ "timestamp without zone", mut_timestamp_zoneless,
	    "Bundle.timestamp: not a date-time with a time zone" },
	{ "timestamp missing", mut_timestamp_missing, "Bundle.timestamp: missing" },
	{ "period start without zone", mut_period_zoneless,
	    "Encounter.period.start: not a date-time with a time zone" },
	{ "period end not a date", mut_period_garbage, "Encounter.period.end" },
	{ "Bundle.type document", mut_type_document, "Bundle.type: 'document', expected 'message'" },
	{ "not a Bundle", mut_not_bundle, "Bundle.resourceType: 'Parameters'" },
	{ "no Bundle.id", mut_no_bundle_id, "Bundle.id: missing" },
	{ "bad Bundle.id", mut_bad_bundle_id, "Bundle.id: missing or not a FHIR id" },
	{ "sender resolves to nothing", mut_sender_dangling,
	    "MessageHeader.sender.reference: 'Organization/nowhere' resolves to no entry" },
	{ "receiver resolves to nothing", mut_receiver_dangling,
	    "MessageHeader.destination.receiver.reference: 'Organization/nowhere' resolves to no" },
	{ "sender is the Patient", mut_sender_is_patient, "does not name an Organization" },
	{ "MessageHeader not first", mut_header_not_first, "Bundle.entry[0]: a 'Patient'" },
	{ "duplicate fullUrl", mut_duplicate_fullurl, "Bundle.entry[2].fullUrl: same as entry[1]" },
	{ "two Patients", mut_two_patients, "Patient: 2 Patient entries" },
	{ "endpoint names another SOR", mut_endpoint_mismatch,
	    "MessageHeader.destination.endpoint: names SOR 123456, but the Organization has SOR "
	    VISITATION_SOR },
	{ "no source", mut_source_missing, "MessageHeader.source.endpoint: missing" },
	{ "unknown Encounter.status", mut_encounter_status, "Encounter.status: 'teleported'" },
	{ "no focus", mut_no_focus, "MessageHeader.focus: 0 references" },
	{ "deceasedDateTime without zone", mut_deceased_zoneless, "Patient.deceasedDateTime" },
	{ "deceasedBoolean a string", mut_deceased_string, "Patient.deceasedBoolean: not a boolean" },
	{ "entry without resource", mut_entry_without_resource, "Bundle.entry[3].resource: missing" },
};
#define NMUTATIONS ((int)(sizeof(mutations) / sizeof(mutations[0])))

START_TEST(test_refused)
{
	const struct mutation *mu = &mutations[_i];
	struct medcom_msg *m = (struct medcom_msg *)&m;
	struct why why = { 0 };
	json_t *root;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	mu->apply(root);
	ck_assert_msg(parse_json(root, &m, &why) == HEGN_ERR_INVALID, "%s: accepted", mu->name);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(why.code, HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, mu->expect) != NULL, "%s: why '%s' lacks '%s'",
	    mu->name, why.text, mu->expect);
	ck_assert_msg(strstr(why.text, TEST_CPR) == NULL, "%s: why shows the CPR", mu->name);
	ck_assert_msg(strstr(why.text, TEST_NAME) == NULL, "%s: why shows the name", mu->name);
	/* The same refusal without a why must not crash. */
	ck_assert_int_eq(parse_json(root, &m, NULL), HEGN_ERR_INVALID);
	json_decref(root);
}
END_TEST

START_TEST(test_refused_text)
{
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
		{ "not json", "Bundle: malformed JSON at line 1" },
		{ "", "Bundle: malformed JSON: no input" },
		{ "{\"resourceType\": \"Bundle\", \"resourceType\": \"Bundle\"}",
		    "duplicate object key" },
		{ "[1, 2]", "Bundle: not a JSON object" },
		{ "{\"resourceType\": \"Bundle\", \"type\": \"message\", \"id\": \"x\", "
		    "\"timestamp\": \"2026-11-27T10:00:00Z\"}", "Bundle.entry: missing or empty" },
		{ "{\"resourceType\": \"Bundle\", \"type\": \"message\", \"id\": \"x\", "
		    "\"timestamp\": \"2026-11-27T10:00:00Z\", \"entry\": []}",
		    "Bundle.entry: missing or empty" },
		{ "{\"resourceType\": \"Bundle\", \"id\": \"a\\u0000b\"}", "malformed JSON" },
		{ "{\"resourceType\": \"Bundle\", \"id\": \"" TEST_CPR "\", \"type\": \"message\"}",
		    "Bundle.timestamp: missing" },
	};
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	char deep[200];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(parse_text(cases[i].text, &m, &why), HEGN_ERR_INVALID);
		ck_assert_ptr_null(m);
		ck_assert_msg(strstr(why.text, cases[i].expect) != NULL, "case %zu: '%s'", i, why.text);
		ck_assert(strstr(why.text, TEST_CPR) == NULL);
	}
	ck_assert_int_eq(medcom_parse(NULL, 0, &m, &why), HEGN_ERR_INVALID);
	memset(deep, '[', sizeof(deep));
	ck_assert_int_eq(medcom_parse((const uint8_t *)deep, sizeof(deep), &m, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "nested deeper"));
	ck_assert_int_eq(medcom_parse((const uint8_t *)deep, MEDCOM_MAX_BYTES + 1, &m, &why),
	    HEGN_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_truncated)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	struct buf b = { 0 };
	size_t cut;

	if (!load_example("hospitalnotification-admit-inpatient.json", &b))
		return;
	for (cut = 0; cut < b.len - 1; cut += 997) {
		ck_assert_int_eq(medcom_parse(b.data, cut, &m, &why), HEGN_ERR_INVALID);
		ck_assert_ptr_null(m);
	}
	buf_free(&b, 0);
}
END_TEST

START_TEST(test_gln_http_spelling)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	json_t *root, *id;
	size_t i;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	json_array_foreach(json_object_get(receiver_org(root), "identifier"), i, id)
		if (strcmp(json_string_value(json_object_get(id, "system")),
		    "https://www.gs1.org/gln") == 0)
			json_object_set_new(id, "system", json_string("http://www.gs1.org/gln"));
	ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
	ck_assert_str_eq(medcom_receiver_gln(m), VISITATION_GLN);
	medcom_free(m);

	/* Both spellings at once are two GLNs: ambiguous. */
	json_array_append_new(json_object_get(receiver_org(root), "identifier"),
	    json_pack("{s:s, s:s}", "system", "https://www.gs1.org/gln", "value", VISITATION_GLN));
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "2 GLN identifiers"));
	json_decref(root);
}
END_TEST

START_TEST(test_ecpr)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	json_t *root, *pat;

	if ((root = load_example_json("carecommunication-new.json")) == NULL)
		return;
	pat = find_res(root, "Patient", 0);
	json_object_set_new(pat, "identifier", json_pack("[{s:s, s:s}]",
	    "system", "urn:oid:1.2.208.176.1.6.1.1", "value", "0000000AB1"));
	ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
	ck_assert_ptr_null(medcom_cpr(m));
	ck_assert_str_eq(medcom_ecpr(m), "0000000AB1");
	medcom_free(m);

	json_object_set_new(pat, "identifier", json_pack("[{s:s, s:s}]",
	    "system", "urn:oid:1.2.208.176.1.6.1.1", "value", "abc"));
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "Patient.identifier (X-eCPR)"));

	/* A CPR beside the eCPR wins. */
	json_object_set_new(pat, "identifier", json_pack("[{s:s, s:s}, {s:s, s:s}]",
	    "system", "urn:oid:1.2.208.176.1.6.1.1", "value", "0000000AB1",
	    "system", "urn:oid:1.2.208.176.1.2", "value", "250947-9989"));
	ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
	ck_assert_str_eq(medcom_cpr(m), TEST_CPR);
	ck_assert_ptr_null(medcom_ecpr(m));
	medcom_free(m);
	json_decref(root);
}
END_TEST

/* Add a cc destination naming a new Organization with gln and sor; returns that Organization. */
static json_t *
add_cc(json_t *root, const char *gln, const char *sor)
{
	json_t *hdr = header_of(root), *dest, *org;
	char url[256], ref[128], ep[128];
	static int n;

	snprintf(ref, sizeof(ref), "Organization/cc-org-%d", ++n);
	snprintf(url, sizeof(url), "https://medcomfhir.dk/ig/hospitalnotification/%s", ref);
	snprintf(ep, sizeof(ep), "https://sor2.sum.dsdn.dk/#id=%s", sor);
	org = json_pack("{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "resourceType", "Organization",
	    "id", ref + strlen("Organization/"), "identifier",
	    "system", "https://www.gs1.org/gln", "value", gln,
	    "system", "urn:oid:1.2.208.176.1.1", "value", sor);
	ck_assert_ptr_nonnull(org);
	json_array_append_new(json_object_get(root, "entry"), json_pack("{s:s, s:o}", "fullUrl",
	    url, "resource", org));
	dest = json_deep_copy(json_array_get(json_object_get(hdr, "destination"), 0));
	json_object_set_new(json_object_get(json_array_get(json_object_get(dest, "extension"), 0),
	    "valueCoding"), "code", json_string("cc"));
	json_object_set_new(dest, "endpoint", json_string(ep));
	json_object_set_new(dest, "receiver", json_pack("{s:s}", "reference", ref));
	json_array_append_new(json_object_get(hdr, "destination"), dest);
	return org;
}

START_TEST(test_cc)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	json_t *root, *org, *dest;
	int i;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
	ck_assert_uint_eq(medcom_cc_count(m), 0);
	ck_assert_ptr_null(medcom_cc_sor(m, 0));
	medcom_free(m);

	add_cc(root, "5790009000013", "123456789012346");
	add_cc(root, "5790000209354", "265161000016000");
	ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
	ck_assert_uint_eq(medcom_cc_count(m), 2);
	ck_assert_str_eq(medcom_cc_gln(m, 0), "5790009000013");
	ck_assert_str_eq(medcom_cc_sor(m, 0), "123456789012346");
	ck_assert_str_eq(medcom_cc_gln(m, 1), "5790000209354");
	ck_assert_ptr_null(medcom_cc_gln(m, 2));
	/* The primary is still the primary. */
	ck_assert_str_eq(medcom_receiver_sor(m), "953741000016009");
	medcom_free(m);

	/* A cc receiver's GLN is checked as the primary's is. */
	org = add_cc(root, "5790009000014", "1");
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, "cc receiver") != NULL && strstr(why.text,
	    "bad check digit") != NULL, "%s", why.text);
	set_identifier(org, "https://www.gs1.org/gln", "5790009000013");
	ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
	medcom_free(m);

	/* A cc without an endpoint, one naming another SOR, and an unresolvable receiver. */
	dest = json_array_get(json_object_get(header_of(root), "destination"), 3);
	json_object_del(dest, "endpoint");
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, "destination[3].endpoint") != NULL, "%s", why.text);
	json_object_set_new(dest, "endpoint", json_string("https://sor2.sum.dsdn.dk/#id=2"));
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, "(cc)") != NULL, "%s", why.text);
	json_object_set_new(dest, "endpoint", json_string("https://sor2.sum.dsdn.dk/#id=1"));
	json_object_set_new(dest, "receiver", json_pack("{s:s}", "reference",
	    "Organization/nowhere"));
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, "destination.receiver (cc)") != NULL, "%s", why.text);
	json_decref(root);

	/* At most MEDCOM_MAX_CC of them. */
	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	for (i = 0; i <= MEDCOM_MAX_CC; i++)
		add_cc(root, "5790009000013", "123456789012346");
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, "cc destinations") != NULL, "%s", why.text);
	json_decref(root);
}
END_TEST

START_TEST(test_deceased)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	const char *kind = NULL;
	json_t *root, *pat;
	int i;

	for (i = 0; i < 3; i++) {
		if ((root = load_example_json(examples[i].file)) == NULL)
			return;
		pat = find_res(root, "Patient", 0);
		json_object_set_new(pat, "deceasedBoolean", json_true());
		ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
		ck_assert(medcom_deceased(m));
		ck_assert_int_eq(medcom_notification_kind(m, &kind, &why), 0);
		ck_assert_str_eq(kind, "death_notice");
		medcom_free(m);

		json_object_set_new(pat, "deceasedBoolean", json_false());
		ck_assert_int_eq(parse_json(root, &m, &why), 0);
		ck_assert(!medcom_deceased(m));
		ck_assert_int_eq(medcom_notification_kind(m, &kind, &why), 0);
		ck_assert_str_eq(kind, examples[i].kind);
		medcom_free(m);

		json_object_del(pat, "deceasedBoolean");
		json_object_set_new(pat, "deceasedDateTime", json_string("2022-12-07T10:00:00+01:00"));
		ck_assert_int_eq(parse_json(root, &m, &why), 0);
		ck_assert(medcom_deceased(m));
		ck_assert_int_eq(medcom_notification_kind(m, &kind, &why), 0);
		ck_assert_str_eq(kind, "death_notice");
		medcom_free(m);
		json_decref(root);
	}
}
END_TEST

START_TEST(test_activity_kinds)
{
	static const struct {
		const char *code;
		const char *kind;
		bool cancel, revise;
	} cases[] = {
		{ "admit-inpatient", "admission_notice", false, false },
		{ "revise-admit-inpatient", "admission_notice", false, true },
		{ "cancel-admit-inpatient", "admission_notice", true, false },
		{ "admit-emergency", "admission_notice", false, false },
		{ "revise-admit-emergency", "admission_notice", false, true },
		{ "cancel-admit-emergency", "admission_notice", true, false },
		{ "start-leave-inpatient", "leave_notice", false, false },
		{ "revise-start-leave-inpatient", "leave_notice", false, true },
		{ "cancel-start-leave-inpatient", "leave_notice", true, false },
		{ "end-leave-inpatient", "admission_notice", false, false },
		{ "revise-end-leave-inpatient", "admission_notice", false, true },
		{ "cancel-end-leave-inpatient", "admission_notice", true, false },
		{ "discharge-inpatient-home", "discharge_notice", false, false },
		{ "revise-discharge-inpatient-home", "discharge_notice", false, true },
		{ "cancel-discharge-inpatient-home", "discharge_notice", true, false },
		{ "discharge-emergency-home", "discharge_notice", false, false },
		{ "revise-discharge-emergency-home", "discharge_notice", false, true },
		{ "cancel-discharge-emergency-home", "discharge_notice", true, false },
	};
	static const char *const refused[] = {
		"revise-", "cancel-", "revise-cancel-admit-inpatient", "admit", "ADMIT-INPATIENT",
		"acknowledgement", "",
	};
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	const char *kind;
	json_t *root;
	size_t i;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_activity(root, cases[i].code);
		ck_assert_msg(parse_json(root, &m, &why) == 0, "%s: %s", cases[i].code, why.text);
		ck_assert_str_eq(medcom_activity(m), cases[i].code);
		ck_assert_int_eq(medcom_notification_kind(m, &kind, &why), 0);
		ck_assert_msg(strcmp(kind, cases[i].kind) == 0, "%s: %s", cases[i].code, kind);
		ck_assert_int_eq(medcom_is_cancellation(m), cases[i].cancel);
		ck_assert_int_eq(medcom_is_revision(m), cases[i].revise);
		medcom_free(m);
	}
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		set_activity(root, refused[i]);
		ck_assert_msg(parse_json(root, &m, &why) == HEGN_ERR_INVALID, "%s accepted", refused[i]);
		ck_assert_ptr_nonnull(strstr(why.text, "Provenance.activity"));
	}
	json_decref(root);
}
END_TEST

/* The built Bundle's entry of resource type, or NULL. */
static json_t *
ack_entry(const struct buf *b, json_t **root, const char *type)
{
	*root = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_ptr_nonnull(*root);
	return find_res(*root, type, 0);
}

START_TEST(test_ack_build)
{
	static const char *const diag = "Patient.identifier (CPR): no such date";
	const struct example *ex = &examples[_i / MEDCOM_ACK_CODE_COUNT];
	enum medcom_ack_code code = (enum medcom_ack_code)(_i % MEDCOM_ACK_CODE_COUNT);
	struct medcom_msg *m = NULL, *ack = NULL;
	struct why why = { 0 };
	struct buf b = { 0 }, out = { 0 };
	json_t *root = NULL, *oo;
	char endpoint[64];

	if (ex->event == MEDCOM_ACKNOWLEDGEMENT || !load_example(ex->file, &b))
		return;
	ck_assert_int_eq(medcom_parse(b.data, b.len, &m, &why), 0);
	/* We are the receiver of the example. */
	ck_assert_msg(medcom_ack_build(m, code, diag, VISITATION_SOR, VISITATION_GLN, &out,
	    &why) == 0, "%s", why.text);
	ck_assert_msg(medcom_parse(out.data, out.len, &ack, &why) == 0, "built ack: %s", why.text);
	ck_assert_int_eq(medcom_event(ack), MEDCOM_ACKNOWLEDGEMENT);
	ck_assert_str_eq(medcom_response_identifier(ack), ex->header_id);
	ck_assert_int_eq(medcom_response_code(ack), code);
	ck_assert_str_eq(medcom_sender_sor(ack), VISITATION_SOR);
	ck_assert_str_eq(medcom_sender_gln(ack), VISITATION_GLN);
	ck_assert_str_eq(medcom_receiver_sor(ack), ex->sender_sor);
	ck_assert_str_eq(medcom_receiver_gln(ack), ex->sender_gln);
	ck_assert_str_eq(medcom_destination_endpoint(ack), medcom_source_endpoint(m));
	snprintf(endpoint, sizeof(endpoint), SOR_URL "%s", VISITATION_SOR);
	ck_assert_str_eq(medcom_source_endpoint(ack), endpoint);
	ck_assert_str_eq(medcom_activity(ack), "acknowledgement");
	ck_assert_int_eq(strlen(medcom_bundle_id(ack)), 36);
	ck_assert_str_ne(medcom_bundle_id(ack), medcom_bundle_id(m));
	ck_assert_str_ne(medcom_header_id(ack), medcom_header_id(m));
	ck_assert_str_ne(medcom_bundle_id(ack), medcom_header_id(ack));
	ck_assert_ptr_null(medcom_cpr(ack));
	oo = ack_entry(&out, &root, "OperationOutcome");
	if (code == MEDCOM_ACK_OK) {
		ck_assert_ptr_null(oo);
		ck_assert_ptr_null(medcom_outcome_text(ack));
	} else {
		ck_assert_ptr_nonnull(oo);
		ck_assert_str_eq(medcom_outcome_text(ack), diag);
	}
	/* The acknowledgement never carries the citizen. */
	ck_assert_ptr_null(find_res(root, "Patient", 0));
	ck_assert_ptr_null(memmem(out.data, out.len, TEST_CPR, strlen(TEST_CPR)));
	/* An acknowledgement is never acknowledged. */
	buf_free(&b, 0);
	ck_assert_int_eq(medcom_ack_build(ack, MEDCOM_ACK_OK, NULL, HOSPITAL_SOR, HOSPITAL_GLN,
	    &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(b.data);
	json_decref(root);
	medcom_free(ack);
	medcom_free(m);
	buf_free(&out, 0);
}
END_TEST

START_TEST(test_ack_build_refused)
{
	struct medcom_msg *m = NULL, *ack = NULL;
	struct why why = { 0 };
	struct buf b = { 0 }, out = { 0 };

	if (!load_example(examples[0].file, &b))
		return;
	ck_assert_int_eq(medcom_parse(b.data, b.len, &m, &why), 0);
	ck_assert_int_eq(medcom_ack_build(m, MEDCOM_ACK_OK, NULL, VISITATION_SOR, "5790001348121",
	    &out, &why), HEGN_ERR_CONFIG);
	ck_assert_int_eq(medcom_ack_build(m, MEDCOM_ACK_OK, NULL, "not-a-sor", VISITATION_GLN,
	    &out, &why), HEGN_ERR_CONFIG);
	ck_assert_int_eq(medcom_ack_build(m, MEDCOM_ACK_FATAL_ERROR, "bad \xff utf-8",
	    VISITATION_SOR, VISITATION_GLN, &out, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(medcom_ack_build(m, MEDCOM_ACK_CODE_COUNT, NULL, VISITATION_SOR,
	    VISITATION_GLN, &out, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(out.data);
	/* No diagnostics on an error: a default text still fills the OperationOutcome. */
	ck_assert_int_eq(medcom_ack_build(m, MEDCOM_ACK_TRANSIENT_ERROR, NULL, VISITATION_SOR,
	    VISITATION_GLN, &out, &why), 0);
	ck_assert_int_eq(medcom_parse(out.data, out.len, &ack, &why), 0);
	ck_assert_ptr_nonnull(medcom_outcome_text(ack));
	medcom_free(ack);
	medcom_free(m);
	buf_free(&out, 0);
	buf_free(&b, 0);
}
END_TEST

START_TEST(test_fatal_for_unparseable)
{
	static const char *const diag = "Patient.identifier: no CPR";
	struct medcom_msg *m = NULL, *ack = NULL;
	struct why why = { 0 };
	struct buf out = { 0 };
	json_t *root, *back, *mh;
	char *text;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	mut_no_cpr(root);
	text = json_dumps(root, 0);
	ck_assert_int_eq(parse_text(text, &m, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(medcom_fatal_for_unparseable((const uint8_t *)text, strlen(text), diag,
	    VISITATION_SOR, VISITATION_GLN, &out, &why), 0);
	ck_assert_msg(medcom_parse(out.data, out.len, &ack, &why) == 0, "%s", why.text);
	ck_assert_str_eq(medcom_response_identifier(ack), examples[0].header_id);
	ck_assert_int_eq(medcom_response_code(ack), MEDCOM_ACK_FATAL_ERROR);
	ck_assert_str_eq(medcom_outcome_text(ack), diag);
	ck_assert_str_eq(medcom_receiver_sor(ack), HOSPITAL_SOR);
	ck_assert_str_eq(medcom_receiver_gln(ack), HOSPITAL_GLN);
	ck_assert_str_eq(medcom_destination_endpoint(ack), SOR_URL HOSPITAL_SOR);
	medcom_free(ack);
	buf_free(&out, 0);
	free(text);

	/*
	 * A sender (here the receiving care home, whose GLN was broken) with a bad
	 * GLN and no source: the ack goes to its SOR endpoint, the GLN is left out.
	 */
	mut_bad_gln(root);
	json_object_del(header_of(root), "source");
	json_object_set_new(json_object_get(header_of(root), "sender"), "reference",
	    json_string("Organization/o4cdf292-abf3-4f5f-80ea-60a48013ff6d"));
	text = json_dumps(root, 0);
	ck_assert_int_eq(medcom_fatal_for_unparseable((const uint8_t *)text, strlen(text), diag,
	    VISITATION_SOR, VISITATION_GLN, &out, &why), 0);
	back = json_loadb((const char *)out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_ptr_nonnull(back);
	mh = header_of(back);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(mh,
	    "destination"), 0), "endpoint")), SOR_URL VISITATION_SOR);
	ck_assert_int_eq(medcom_parse(out.data, out.len, &ack, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "GLN identifiers"));
	json_decref(back);
	buf_free(&out, 0);
	free(text);
	json_decref(root);

	/* Not JSON at all: the nil UUID and an unknown endpoint, still FHIR-shaped JSON. */
	ck_assert_int_eq(medcom_fatal_for_unparseable((const uint8_t *)"{{{", 3, NULL,
	    VISITATION_SOR, VISITATION_GLN, &out, &why), 0);
	back = json_loadb((const char *)out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(json_string_value(json_object_get(back, "resourceType")), "Bundle");
	mh = header_of(back);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(mh, "response"),
	    "identifier")), "00000000-0000-0000-0000-000000000000");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(mh, "response"), "code")),
	    "fatal-error");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(mh,
	    "destination"), 0), "endpoint")), "urn:hegn:unknown");
	ck_assert_ptr_nonnull(find_res(back, "OperationOutcome", 0));
	json_decref(back);
	buf_free(&out, 0);

	/* Empty input and an empty object take the same path. */
	ck_assert_int_eq(medcom_fatal_for_unparseable(NULL, 0, NULL, VISITATION_SOR,
	    VISITATION_GLN, &out, &why), 0);
	buf_free(&out, 0);
	ck_assert_int_eq(medcom_fatal_for_unparseable((const uint8_t *)"{}", 2, NULL,
	    VISITATION_SOR, VISITATION_GLN, &out, &why), 0);
	buf_free(&out, 0);
	ck_assert_int_eq(medcom_fatal_for_unparseable((const uint8_t *)"{}", 2, NULL,
	    VISITATION_SOR, "123", &out, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_null(out.data);
}
END_TEST

START_TEST(test_fatal_not_for_acks)
{
	struct why why = { 0 };
	struct buf out = { 0 };
	json_t *root;
	char *text;

	if ((root = load_example_json("acknowledgement-ok.json")) == NULL)
		return;
	json_object_del(root, "timestamp");
	text = json_dumps(root, 0);
	ck_assert_int_eq(medcom_fatal_for_unparseable((const uint8_t *)text, strlen(text), "x",
	    VISITATION_SOR, VISITATION_GLN, &out, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "never acknowledged"));
	ck_assert_ptr_null(out.data);
	free(text);
	json_decref(root);
}
END_TEST

START_TEST(test_ack_without_outcome)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	json_t *root, *resp;

	if ((root = load_example_json("acknowledgement-transient-error.json")) == NULL)
		return;
	remove_entries(root, "OperationOutcome");
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "MessageHeader.response.details.reference"));
	resp = json_object_get(header_of(root), "response");
	json_object_del(resp, "details");
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "OperationOutcome: missing"));
	json_object_set_new(resp, "code", json_string("ok"));
	ck_assert_int_eq(parse_json(root, &m, &why), 0);
	medcom_free(m);
	json_object_set_new(resp, "code", json_string("maybe"));
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "MessageHeader.response.code: 'maybe'"));
	json_object_del(header_of(root), "response");
	ck_assert_int_eq(parse_json(root, &m, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "MessageHeader.response: missing"));
	json_decref(root);
}
END_TEST

START_TEST(test_classify)
{
	/* same_pair implies both ids were seen; the other rows are the four cases. */
	ck_assert_int_eq(medcom_classify(false, false, false), MEDCOM_DUP_NEW);
	ck_assert_int_eq(medcom_classify(true, true, true), MEDCOM_DUP_DUPLICATE);
	ck_assert_int_eq(medcom_classify(false, true, false), MEDCOM_DUP_RESEND);
	ck_assert_int_eq(medcom_classify(true, false, false), MEDCOM_DUP_ENVELOPE_REUSED);
	/* Both ids known, but never together: the envelope id was reused. */
	ck_assert_int_eq(medcom_classify(true, true, false), MEDCOM_DUP_ENVELOPE_REUSED);
	ck_assert_str_eq(medcom_dup_name(MEDCOM_DUP_NEW), "new");
	ck_assert_str_eq(medcom_dup_name(MEDCOM_DUP_DUPLICATE), "duplicate");
	ck_assert_str_eq(medcom_dup_name(MEDCOM_DUP_RESEND), "resend");
	ck_assert_str_eq(medcom_dup_name(MEDCOM_DUP_ENVELOPE_REUSED), "envelope_reused");
	ck_assert_ptr_null(medcom_dup_name((enum medcom_dup)17));
}
END_TEST

START_TEST(test_identifiers)
{
	enum medcom_ack_code code;

	ck_assert(medcom_gln_valid(VISITATION_GLN));
	ck_assert(medcom_gln_valid(HOSPITAL_GLN));
	ck_assert(medcom_gln_valid("5790000121526"));
	ck_assert(!medcom_gln_valid("5790000209355"));
	ck_assert(!medcom_gln_valid("5790001348121"));
	ck_assert(!medcom_gln_valid("579000134812"));
	ck_assert(!medcom_gln_valid("57900013481200"));
	ck_assert(!medcom_gln_valid("579000134812a"));
	ck_assert(!medcom_gln_valid(NULL));
	ck_assert(medcom_sor_valid(VISITATION_SOR));
	ck_assert(medcom_sor_valid("1"));
	ck_assert(!medcom_sor_valid(""));
	ck_assert(!medcom_sor_valid("1234567890123456789"));
	ck_assert(!medcom_sor_valid("12a"));
	ck_assert_str_eq(medcom_event_name(MEDCOM_CARE_COMMUNICATION), "care-communication-message");
	ck_assert_ptr_null(medcom_event_name(MEDCOM_EVENT_COUNT));
	ck_assert_str_eq(medcom_ack_code_name(MEDCOM_ACK_FATAL_ERROR), "fatal-error");
	ck_assert_ptr_null(medcom_ack_code_name(MEDCOM_ACK_CODE_COUNT));
	ck_assert_int_eq(medcom_ack_code_from_name("transient-error", &code), 0);
	ck_assert_int_eq(code, MEDCOM_ACK_TRANSIENT_ERROR);
	ck_assert_int_eq(medcom_ack_code_from_name("OK", &code), HEGN_ERR_INVALID);
	ck_assert_int_eq(medcom_ack_code_from_name(NULL, &code), HEGN_ERR_INVALID);
	medcom_free(NULL);
}
END_TEST

/* --- The gateway's side: detection and conversion to hegn's format --- */

/* Convert root as kind and check hegn's parser takes it; returns the dumped JSON. */
static char *
convert_ok(json_t *root, const char *kind, struct message **hm)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	json_t *out = NULL;
	char *text;

	ck_assert_msg(parse_json(root, &m, &why) == 0, "%s", why.text);
	ck_assert_msg(medcom_to_hegn(m, kind, "ringsted-homecare", &out, &why) == 0, "%s", why.text);
	text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(message_parse((const uint8_t *)text, strlen(text), NULL, hm, &why) == 0,
	    "hegn's parser refused the conversion: %s (%s)", why.text, text);
	json_decref(out);
	medcom_free(m);
	return text;
}

static const struct {
	const char *file, *kind, *event_time;
} notices[] = {
	{ "hospitalnotification-admit-inpatient.json", "admission_notice",
	    "2022-12-07T12:00:02+02:00" },
	{ "hospitalnotification-discharge-home.json", "discharge_notice",
	    "2022-12-18T09:45:32+02:00" },
	{ "hospitalnotification-start-leave.json", "leave_notice", "2022-12-13T14:00:12+02:00" },
};
#define NNOTICES ((int)(sizeof(notices) / sizeof(notices[0])))

START_TEST(test_to_hegn_notices)
{
	struct message *hm = NULL;
	json_t *root;
	char *text;

	if ((root = load_example_json(notices[_i].file)) == NULL)
		return;
	text = convert_ok(root, notices[_i].kind, &hm);
	ck_assert_str_eq(message_kind_name(message_kind(hm)), notices[_i].kind);
	ck_assert_str_eq(message_to(hm), "ringsted-homecare");
	ck_assert_str_eq(message_cpr(hm), TEST_CPR);
	/* The time of the current letter's Provenance, not of the earlier ones. */
	ck_assert_str_eq(message_field(hm, "basic", "event_time"), notices[_i].event_time);
	ck_assert_str_eq(message_field(hm, "basic", "hospital"),
	    "Hjerteafdelingen p\xc3\xa5 Herlev og Gentofte hospital");
	ck_assert_ptr_null(message_field(hm, "basic", "notes"));
	/* A notice carries basic data only: nothing for minimisation to take. */
	ck_assert_uint_eq(message_classes(hm), 1u << CLASS_BASIC);
	ck_assert_ptr_nonnull(strstr(text, "\"name\":\"" TEST_NAME "\""));
	free(text);
	message_free(hm);
	json_decref(root);
}
END_TEST

START_TEST(test_to_hegn_death)
{
	struct message *hm = NULL;
	json_t *root, *pat;
	char *text;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	pat = find_res(root, "Patient", 0);
	json_object_set_new(pat, "deceasedDateTime", json_string("2022-12-08T03:40:00+01:00"));
	text = convert_ok(root, "death_notice", &hm);
	ck_assert_str_eq(message_field(hm, "basic", "time_of_death"), "2022-12-08T03:40:00+01:00");
	free(text);
	message_free(hm);

	/* Only a date of death: the time the hospital recorded stands in. */
	json_object_set_new(pat, "deceasedDateTime", json_string("2022-12-08"));
	text = convert_ok(root, "death_notice", &hm);
	ck_assert_str_eq(message_field(hm, "basic", "time_of_death"), "2022-12-07T12:00:02+02:00");
	free(text);
	message_free(hm);

	json_object_del(pat, "deceasedDateTime");
	json_object_set_new(pat, "deceasedBoolean", json_true());
	text = convert_ok(root, "death_notice", &hm);
	ck_assert_str_eq(message_field(hm, "basic", "time_of_death"), "2022-12-07T12:00:02+02:00");
	ck_assert_ptr_null(strstr(text, "\"hospital\""));
	free(text);
	message_free(hm);
	json_decref(root);
}
END_TEST

START_TEST(test_to_hegn_cancel_revise)
{
	struct message *hm = NULL;
	json_t *root;
	char *text;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	set_activity(root, "cancel-admit-inpatient");
	text = convert_ok(root, "admission_notice", &hm);
	ck_assert_ptr_nonnull(strstr(message_field(hm, "basic", "notes"), "cancels"));
	ck_assert_ptr_nonnull(strstr(message_field(hm, "basic", "notes"), "cancel-admit-inpatient"));
	free(text);
	message_free(hm);
	set_activity(root, "revise-admit-inpatient");
	text = convert_ok(root, "admission_notice", &hm);
	ck_assert_ptr_nonnull(strstr(message_field(hm, "basic", "notes"), "corrects"));
	free(text);
	message_free(hm);
	json_decref(root);
}
END_TEST

START_TEST(test_to_hegn_carecommunication)
{
	struct message *hm = NULL;
	json_t *root, *comm, *payload;
	char *text, *big;
	const char *t;
	size_t i;

	if ((root = load_example_json("carecommunication-new.json")) == NULL)
		return;
	text = convert_ok(root, "observation", &hm);
	ck_assert_int_eq(message_kind(hm), MSG_OBSERVATION);
	/* The letter's text is care class: minimisation can take it away. */
	ck_assert(message_classes(hm) & (1u << CLASS_CARE));
	ck_assert_str_eq(message_field(hm, "care", "text"), "We have a question regarding the referal...");
	ck_assert_str_eq(message_field(hm, "basic", "observed_at"), "2024-05-07T18:00:00+02:00");
	free(text);
	message_free(hm);

	text = convert_ok(root, "care_update", &hm);
	ck_assert_str_eq(message_field(hm, "care", "description"),
	    "We have a question regarding the referal...");
	free(text);
	message_free(hm);

	/* Two payloads, one long: blank-line separated, cut at a character boundary. */
	comm = find_res(root, "Communication", 0);
	payload = json_object_get(comm, "payload");
	big = malloc(20001);
	ck_assert_ptr_nonnull(big);
	for (i = 0; i < 20000; i += 2)
		memcpy(big + i, "\xc3\xa6", 2);
	big[20000] = '\0';
	json_array_append_new(payload, json_pack("{s:s}", "contentString", big));
	text = convert_ok(root, "observation", &hm);
	t = message_field(hm, "care", "text");
	ck_assert_ptr_nonnull(strstr(t, "referal...\n\n\xc3\xa6"));
	ck_assert_uint_lt(strlen(t), 9000);
	ck_assert_uint_eq((strlen(t) - strlen("We have a question regarding the referal...\n\n")) % 2, 0);
	free(text);
	message_free(hm);
	free(big);

	/* No text at all (attachments only): a sentence says so. */
	json_object_set_new(comm, "payload", json_array());
	text = convert_ok(root, "observation", &hm);
	ck_assert_ptr_nonnull(strstr(message_field(hm, "care", "text"), "without text"));
	free(text);
	message_free(hm);
	json_decref(root);
}
END_TEST

START_TEST(test_to_hegn_refused)
{
	struct medcom_msg *m = NULL;
	struct why why = { 0 };
	json_t *root, *out = NULL;

	if ((root = load_example_json("hospitalnotification-admit-inpatient.json")) == NULL)
		return;
	ck_assert_int_eq(parse_json(root, &m, &why), 0);
	ck_assert_int_eq(medcom_to_hegn(m, "observation", "x", &out, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(medcom_to_hegn(m, "referral", "x", &out, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(medcom_to_hegn(m, NULL, "x", &out, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(medcom_to_hegn(m, "admission_notice", NULL, &out, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(strstr(why.text, TEST_CPR));
	medcom_free(m);
	json_decref(root);

	/* A citizen known by an X-eCPR only keeps it as citizen.ecpr, which hegn's parser takes. */
	if ((root = load_example_json("carecommunication-new.json")) == NULL)
		return;
	ck_assert_int_eq(parse_json(root, &m, &why), 0);
	ck_assert_int_eq(medcom_to_hegn(m, "admission_notice", "x", &out, &why), HEGN_ERR_INVALID);
	medcom_free(m);
	json_object_set_new(find_res(root, "Patient", 0), "identifier", json_pack("[{s:s, s:s}]",
	    "system", "urn:oid:1.2.208.176.1.6.1.1", "value", "0000000AB1"));
	ck_assert_int_eq(parse_json(root, &m, &why), 0);
	ck_assert_msg(medcom_to_hegn(m, "observation", "x", &out, &why) == 0, "%s", why.text);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "citizen"),
	    "ecpr")), "0000000AB1");
	ck_assert_ptr_null(json_object_get(json_object_get(out, "citizen"), "cpr"));
	{
		char *text = json_dumps(out, JSON_COMPACT);
		struct message *hm = NULL;

		ck_assert_ptr_nonnull(text);
		ck_assert_msg(message_parse((const uint8_t *)text, strlen(text), NULL, &hm,
		    &why) == 0, "%s", why.text);
		/* The key cannot collide with a CPR: it is prefixed. */
		ck_assert_str_eq(message_cpr(hm), "X-eCPR:0000000AB1");
		message_free(hm);
		free(text);
	}
	json_decref(out);
	out = NULL;
	medcom_free(m);
	json_decref(root);

	/* An Acknowledgement carries no citizen. */
	if ((root = load_example_json("acknowledgement-ok.json")) == NULL)
		return;
	ck_assert_int_eq(parse_json(root, &m, &why), 0);
	ck_assert_int_eq(medcom_to_hegn(m, "admission_notice", "x", &out, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_null(out);
	medcom_free(m);
	json_decref(root);
}
END_TEST

START_TEST(test_is_fhir)
{
	struct buf b = { 0 };
	int i;

	for (i = 0; i < NEXAMPLES; i++) {
		if (!load_example(examples[i].file, &b))
			return;
		ck_assert_msg(medcom_is_fhir(b.data, b.len), "%s", examples[i].file);
		buf_free(&b, 0);
	}
#define IS(s) medcom_is_fhir((const uint8_t *)(s), strlen(s))
	ck_assert(IS("{\"resourceType\": \"Bundle\"}"));
	ck_assert(!IS("{\"kind\": \"referral\", \"to\": \"hovmand-care\"}"));
	ck_assert(!IS("{\"kind\": \"observation\", \"care\": {\"text\": \"resourceType Bundle\"}}"));
	ck_assert(!IS("{\"resourceType\": \"Patient\"}"));
	ck_assert(!IS("{\"resourceType\": [\"Bundle\"]}"));
	ck_assert(!IS("{\"x\": {\"resourceType\": \"Bundle\"}}"));
	ck_assert(!IS("[{\"resourceType\": \"Bundle\"}]"));
	ck_assert(!IS("{\"resourceType\": \"Bundle\""));
	ck_assert(!IS("\x30\x82\x01\x00"));
	ck_assert(!IS(""));
#undef IS
	ck_assert(!medcom_is_fhir(NULL, 10));
}
END_TEST

static Suite *
medcom_suite(void)
{
	Suite *s = suite_create("medcom");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_examples, 0, NEXAMPLES);
	tcase_add_loop_test(tc, test_refused, 0, NMUTATIONS);
	tcase_add_test(tc, test_refused_text);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_gln_http_spelling);
	tcase_add_test(tc, test_ecpr);
	tcase_add_test(tc, test_cc);
	tcase_add_test(tc, test_deceased);
	tcase_add_test(tc, test_activity_kinds);
	tcase_add_loop_test(tc, test_ack_build, 0, NEXAMPLES * MEDCOM_ACK_CODE_COUNT);
	tcase_add_test(tc, test_ack_build_refused);
	tcase_add_test(tc, test_fatal_for_unparseable);
	tcase_add_test(tc, test_fatal_not_for_acks);
	tcase_add_test(tc, test_ack_without_outcome);
	tcase_add_test(tc, test_classify);
	tcase_add_test(tc, test_identifiers);
	tcase_add_loop_test(tc, test_to_hegn_notices, 0, NNOTICES);
	tcase_add_test(tc, test_to_hegn_death);
	tcase_add_test(tc, test_to_hegn_cancel_revise);
	tcase_add_test(tc, test_to_hegn_carecommunication);
	tcase_add_test(tc, test_to_hegn_refused);
	tcase_add_test(tc, test_is_fhir);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(medcom_suite)
