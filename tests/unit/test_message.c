#include "config.h"

#include <jansson.h>
#include <sodium.h>

#include "err.h"
#include "message.h"
#include "testlib.h"
#include "util.h"

#define CPR "2509479989"

/* The example of kind as a jansson tree, for mutation. */
static json_t *
example_json(enum message_kind kind)
{
	struct buf b = { 0 };
	json_error_t err;
	json_t *j;

	ck_assert_int_eq(message_example(kind, "hovmand-care", &b), 0);
	j = json_loadb((const char *)b.data, b.len, 0, &err);
	ck_assert_msg(j != NULL, "example does not parse: %s", err.text);
	buf_free(&b, 0);
	return j;
}

/* Parse text; expect code and (when non-NULL) want in the reason. */
static void
expect_text(const char *text, size_t len, const struct message_limits *lim, int code,
    const char *want)
{
	struct message *m = (struct message *)1;
	struct why why = { 0 };
	int r;

	r = message_parse((const uint8_t *)text, len, lim, &m, &why);
	ck_assert_msg(r == code, "got %d (%s), want %d", r, why.text, code);
	if (code != 0) {
		ck_assert_ptr_null(m);
		ck_assert_int_eq(why.code, code);
		if (want != NULL)
			ck_assert_msg(strstr(why.text, want) != NULL, "'%s' lacks '%s'",
			    why.text, want);
		/* No reason ever carries the citizen's number. */
		ck_assert_msg(strstr(why.text, CPR) == NULL, "'%s' carries the CPR", why.text);
	}
	message_free(m);
}

/* Serialise j (consumed), parse it, and check the outcome. */
static void
expect_lim(json_t *j, const struct message_limits *lim, int code, const char *want)
{
	char *text;

	ck_assert_ptr_nonnull(j);
	text = json_dumps(j, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	expect_text(text, strlen(text), lim, code, want);
	free(text);
	json_decref(j);
}

static void
expect(json_t *j, int code, const char *want)
{
	expect_lim(j, NULL, code, want);
}

static json_t *
at(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	ck_assert_msg(v != NULL, "example lacks %s", key);
	return v;
}

START_TEST(test_examples_parse)
{
	struct message *m = NULL;
	struct why why = { 0 };
	struct buf b = { 0 };
	int k;

	for (k = 0; k < MSG_KIND_COUNT; k++) {
		ck_assert_int_eq(message_example(k, "ringsted-visitation", &b), 0);
		ck_assert_int_eq(b.data[b.len - 1], '\n');
		ck_assert_msg(message_parse(b.data, b.len, NULL, &m, &why) == 0,
		    "%s: %s", message_kind_name(k), why.text);
		ck_assert_int_eq(message_kind(m), k);
		ck_assert_str_eq(message_to(m), "ringsted-visitation");
		ck_assert_str_eq(message_cpr(m), CPR);
		ck_assert(message_classes(m) & (1u << CLASS_BASIC));
		message_free(m);
		m = NULL;
		buf_free(&b, 0);
	}
	/* The referral example carries health content and an attachment. */
	ck_assert_int_eq(message_example(MSG_REFERRAL, "hovmand-care", &b), 0);
	ck_assert_int_eq(message_parse(b.data, b.len, NULL, &m, &why), 0);
	ck_assert_uint_eq(message_classes(m),
	    (1u << CLASS_BASIC) | (1u << CLASS_CARE) | (1u << CLASS_HEALTH));
	ck_assert_int_eq(json_array_size(json_object_get(message_json(m), "attachments")), 1);
	ck_assert_ptr_nonnull(json_object_get(message_json(m), "health"));
	message_free(m);
	buf_free(&b, 0);

	ck_assert_int_eq(message_example(MSG_KIND_COUNT, "hovmand-care", &b), HEGN_ERR_INVALID);
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(message_example(MSG_REFERRAL, "Hovmand Care", &b), HEGN_ERR_INVALID);
	ck_assert_int_eq(message_example(MSG_REFERRAL, NULL, &b), HEGN_ERR_INVALID);
	message_free(NULL);
}
END_TEST

START_TEST(test_names)
{
	enum message_kind k;
	enum message_class c;
	int i;

	for (i = 0; i < MSG_KIND_COUNT; i++) {
		ck_assert_int_eq(message_kind_from_name(message_kind_name(i), &k), 0);
		ck_assert_int_eq(k, i);
	}
	ck_assert_str_eq(message_kind_name(MSG_REFERRAL), "referral");
	ck_assert_str_eq(message_kind_name(MSG_TIME_USAGE), "time_usage");
	ck_assert_ptr_null(message_kind_name(MSG_KIND_COUNT));
	ck_assert_int_eq(message_kind_from_name("Referral", &k), HEGN_ERR_INVALID);
	ck_assert_int_eq(message_kind_from_name(NULL, &k), HEGN_ERR_INVALID);
	ck_assert_int_eq(message_class_from_name("health", &c), 0);
	ck_assert_int_eq(c, CLASS_HEALTH);
	ck_assert_str_eq(message_class_name(CLASS_CARE), "care");
	ck_assert_ptr_null(message_class_name(CLASS_COUNT));
	ck_assert_int_eq(message_class_from_name("secret", &c), HEGN_ERR_INVALID);
	ck_assert_str_eq(message_service_categories[0], "practical_help");
}
END_TEST

/* Removing each required member is refused with a reason naming it. */
START_TEST(test_required)
{
	static const struct {
		enum message_kind kind;
		const char *object;   /* top level when NULL */
		const char *member;
		const char *want;
	} cases[] = {
		{ MSG_REFERRAL, NULL, "kind", "kind: missing" },
		{ MSG_REFERRAL, NULL, "to", "to: missing" },
		{ MSG_REFERRAL, NULL, "citizen", "citizen: missing" },
		{ MSG_REFERRAL, "citizen", "cpr", "citizen.cpr: missing" },
		{ MSG_REFERRAL, NULL, "basic", "basic: missing" },
		{ MSG_REFERRAL, "basic", "services", "basic.services: missing" },
		{ MSG_REFERRAL, "basic", "start_date", "basic.start_date: missing" },
		{ MSG_CARE_UPDATE, NULL, "care", "care: missing" },
		{ MSG_CARE_UPDATE, "care", "description", "care.description: missing" },
		{ MSG_CANCELLATION, NULL, "basic", "basic: missing" },
		{ MSG_CANCELLATION, "basic", "end_date", "basic.end_date: missing" },
		{ MSG_CANCELLATION, "basic", "reason", "basic.reason: missing" },
		{ MSG_ADMISSION_NOTICE, "basic", "event_time", "basic.event_time: missing" },
		{ MSG_ADMISSION_NOTICE, "basic", "hospital", "basic.hospital: missing" },
		{ MSG_DISCHARGE_NOTICE, "basic", "event_time", "basic.event_time: missing" },
		{ MSG_DISCHARGE_NOTICE, "basic", "hospital", "basic.hospital: missing" },
		{ MSG_LEAVE_NOTICE, "basic", "event_time", "basic.event_time: missing" },
		{ MSG_LEAVE_NOTICE, "basic", "hospital", "basic.hospital: missing" },
		{ MSG_DEATH_NOTICE, NULL, "basic", "basic: missing" },
		{ MSG_DEATH_NOTICE, "basic", "time_of_death", "basic.time_of_death: missing" },
		{ MSG_CHANGE_REQUEST, "basic", "services", "basic.services: missing" },
		{ MSG_CHANGE_REQUEST, NULL, "care", "care: missing" },
		{ MSG_CHANGE_REQUEST, "care", "proposal", "care.proposal: missing" },
		{ MSG_OBSERVATION, NULL, "care", "care: missing" },
		{ MSG_OBSERVATION, "care", "text", "care.text: missing" },
		{ MSG_TIME_USAGE, NULL, "basic", "basic: missing" },
		{ MSG_TIME_USAGE, "basic", "visits", "basic.visits: missing" },
	};
	static const char *const visit_members[] = { "date", "service", "minutes" };
	static const char *const attachment_members[] = {
		"filename", "content_type", "class", "data"
	};
	char want[64];
	json_t *j, *obj;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		j = example_json(cases[i].kind);
		obj = cases[i].object == NULL ? j : at(j, cases[i].object);
		ck_assert_int_eq(json_object_del(obj, cases[i].member), 0);
		expect(j, HEGN_ERR_INVALID, cases[i].want);
	}
	for (i = 0; i < 3; i++) {
		j = example_json(MSG_TIME_USAGE);
		obj = json_array_get(at(at(j, "basic"), "visits"), 1);
		ck_assert_int_eq(json_object_del(obj, visit_members[i]), 0);
		snprintf(want, sizeof(want), "basic.visits[1].%s: missing", visit_members[i]);
		expect(j, HEGN_ERR_INVALID, want);
	}
	for (i = 0; i < 4; i++) {
		j = example_json(MSG_REFERRAL);
		obj = json_array_get(at(j, "attachments"), 0);
		ck_assert_int_eq(json_object_del(obj, attachment_members[i]), 0);
		snprintf(want, sizeof(want), "attachments[0].%s: missing", attachment_members[i]);
		expect(j, HEGN_ERR_INVALID, want);
	}
	/* Optional members may go. */
	j = example_json(MSG_REFERRAL);
	json_object_del(j, "health");
	json_object_del(j, "care");
	json_object_del(j, "attachments");
	json_object_del(at(j, "citizen"), "name");
	json_object_del(at(j, "basic"), "address");
	expect(j, 0, NULL);
	j = example_json(MSG_OBSERVATION);
	json_object_del(j, "basic");
	expect(j, 0, NULL);
}
END_TEST

START_TEST(test_unknown)
{
	json_t *j;

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "kind", json_string("memo"));
	expect(j, HEGN_ERR_INVALID, "kind: unknown kind 'memo'");

	/* A value that might be a CPR number is described, not shown. */
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "kind", json_string(CPR));
	expect(j, HEGN_ERR_INVALID, "kind: unknown kind (not shown)");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "kind", json_string("Elmer Testesen"));
	expect(j, HEGN_ERR_INVALID, "kind: unknown kind (not shown)");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "kind", json_integer(1));
	expect(j, HEGN_ERR_INVALID, "kind: not a string");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "foo", json_true());
	expect(j, HEGN_ERR_INVALID, "unknown field 'foo'");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, CPR, json_true());
	expect(j, HEGN_ERR_INVALID, "unknown field (not shown)");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "basic"), "colour", json_string("blue"));
	expect(j, HEGN_ERR_INVALID, "basic: unknown field 'colour'");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "citizen"), "address", json_string("x"));
	expect(j, HEGN_ERR_INVALID, "citizen: unknown field 'address'");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "health"), "blood_type", json_string("0"));
	expect(j, HEGN_ERR_INVALID, "health: unknown field 'blood_type'");

	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(json_array_get(at(at(j, "basic"), "visits"), 0), "x", json_true());
	expect(j, HEGN_ERR_INVALID, "basic.visits[0]: unknown field 'x'");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(json_array_get(at(j, "attachments"), 0), "size", json_integer(3));
	expect(j, HEGN_ERR_INVALID, "attachments[0]: unknown field 'size'");

	/* "notes" is allowed in every class. */
	j = example_json(MSG_DEATH_NOTICE);
	json_object_set_new(at(j, "basic"), "notes", json_string("Nøglen ligger i nøgleboksen."));
	expect(j, 0, NULL);

	/* A class the kind does not carry is refused, attachments included. */
	j = example_json(MSG_DEATH_NOTICE);
	json_object_set_new(j, "health", json_pack("{s:s}", "notes", "x"));
	expect(j, HEGN_ERR_INVALID, "health: not allowed for kind death_notice");
	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(j, "care", json_pack("{s:s}", "notes", "x"));
	expect(j, HEGN_ERR_INVALID, "care: not allowed for kind time_usage");
	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(j, "attachments", json_pack("[{s:s, s:s, s:s, s:s}]",
	    "filename", "a.txt", "content_type", "text/plain", "class", "health", "data", "YQ=="));
	expect(j, HEGN_ERR_INVALID, "attachments[0].class: a time_usage carries no health content");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "basic", json_string("x"));
	expect(j, HEGN_ERR_INVALID, "basic: not an object");
}
END_TEST

START_TEST(test_fields)
{
	char *big;
	json_t *j;

	j = example_json(MSG_REFERRAL);
	json_array_append_new(at(at(j, "basic"), "services"), json_string("x"));
	json_array_set_new(at(at(j, "basic"), "services"), 1, json_string("x"));
	expect(j, HEGN_ERR_INVALID, "basic.services[1]: unknown service category 'x'");

	j = example_json(MSG_REFERRAL);
	json_array_append_new(at(at(j, "basic"), "services"), json_string("practical_help"));
	expect(j, HEGN_ERR_INVALID, "basic.services[1]: 'practical_help' listed twice");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "basic"), "services", json_array());
	expect(j, HEGN_ERR_INVALID, "basic.services: not a non-empty list");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "basic"), "start_date", json_string("2026-02-30"));
	expect(j, HEGN_ERR_INVALID, "basic.start_date: not a date");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "basic"), "end_date", json_string("2026-11-30"));
	expect(j, HEGN_ERR_INVALID, "basic.end_date: before basic.start_date");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "basic"), "end_date", json_string("2026-12-01"));
	expect(j, 0, NULL);

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "basic"), "visits_per_week", json_integer(0));
	expect(j, HEGN_ERR_INVALID, "basic.visits_per_week: not between 1 and 100");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "basic"), "visits_per_week", json_real(14.0));
	expect(j, HEGN_ERR_INVALID, "basic.visits_per_week: not an integer");

	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(json_array_get(at(at(j, "basic"), "visits"), 0), "minutes",
	    json_integer(1441));
	expect(j, HEGN_ERR_INVALID, "basic.visits[0].minutes: not between 1 and 1440");
	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(json_array_get(at(at(j, "basic"), "visits"), 0), "minutes",
	    json_string("25"));
	expect(j, HEGN_ERR_INVALID, "basic.visits[0].minutes: not an integer");
	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(json_array_get(at(at(j, "basic"), "visits"), 1), "service",
	    json_string("gardening"));
	expect(j, HEGN_ERR_INVALID, "basic.visits[1].service: unknown service category");
	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(at(j, "basic"), "visits", json_array());
	expect(j, HEGN_ERR_INVALID, "basic.visits: not a non-empty list");
	j = example_json(MSG_TIME_USAGE);
	json_object_set_new(json_array_get(at(at(j, "basic"), "visits"), 0), "visit_id",
	    json_string("../x"));
	expect(j, HEGN_ERR_INVALID, "basic.visits[0].visit_id");

	j = example_json(MSG_ADMISSION_NOTICE);
	json_object_set_new(at(j, "basic"), "event_time", json_string("2026-11-27T08:15:00"));
	expect(j, HEGN_ERR_INVALID, "basic.event_time: not an RFC 3339 date-time with a time zone");

	/* One-line fields refuse control characters; free text keeps line breaks. */
	j = example_json(MSG_ADMISSION_NOTICE);
	json_object_set_new(at(j, "basic"), "hospital", json_string("Køge\x1b[2J"));
	expect(j, HEGN_ERR_INVALID, "basic.hospital: contains a control character");
	j = example_json(MSG_ADMISSION_NOTICE);
	json_object_set_new(at(j, "basic"), "hospital", json_string("Køge\nRoskilde"));
	expect(j, HEGN_ERR_INVALID, "basic.hospital: contains a control character");
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(at(j, "care"), "text", json_string("Linje 1\nLinje 2\n\tindrykket"));
	expect(j, 0, NULL);
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(at(j, "care"), "text", json_string(""));
	expect(j, HEGN_ERR_INVALID, "care.text: empty");
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(at(j, "care"), "text", json_integer(3));
	expect(j, HEGN_ERR_INVALID, "care.text: not a string");

	/* Limits count characters, not bytes: 10000 'ø' pass, 10001 do not. */
	big = calloc(1, 2 * 10001 + 1);
	for (int i = 0; i < 10000; i++)
		memcpy(big + 2 * i, "ø", 2);
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(at(j, "care"), "text", json_string(big));
	expect(j, 0, NULL);
	memcpy(big + 2 * 10000, "ø", 2);
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(at(j, "care"), "text", json_string(big));
	expect(j, HEGN_ERR_INVALID, "care.text: longer than 10000 characters");
	free(big);

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "health"), "diagnoses", json_pack("[s, i]", "KOL", 3));
	expect(j, HEGN_ERR_INVALID, "health.diagnoses[1]: not a string");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "health"), "diagnoses", json_array());
	expect(j, 0, NULL);
}
END_TEST

START_TEST(test_top_level)
{
	struct message *m = NULL;
	struct why why = { 0 };
	char *text;
	json_t *j;

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "to", json_string("Hovmand Care"));
	expect(j, HEGN_ERR_INVALID, "to: not a party name");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "to", json_string(
	    "a123456789b123456789c123456789d123456789e123456789f123456789g1234"));
	expect(j, HEGN_ERR_INVALID, "to: not a party name");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "to", json_string(""));
	expect(j, HEGN_ERR_INVALID, "to: not a party name");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "id", json_string("../../etc/passwd"));
	expect(j, HEGN_ERR_INVALID, "id: not 1 to 64");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "from", json_integer(7));
	expect(j, HEGN_ERR_INVALID, "from: not a party name");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "deadline", json_string("2026-11-28T12:00:00"));
	expect(j, HEGN_ERR_INVALID, "deadline: not an RFC 3339 date-time with a time zone");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "deadline", json_string("2026-11-28"));
	expect(j, HEGN_ERR_INVALID, "deadline: not an RFC 3339");

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "id", json_string("ref-2026-0042"));
	json_object_set_new(j, "from", json_string("ringsted-visitation"));
	json_object_set_new(j, "deadline", json_string("2026-11-27T10:46:00+01:00"));
	json_object_set_new(at(j, "citizen"), "cpr", json_string("250947-9989"));
	text = json_dumps(j, 0);
	json_decref(j);
	ck_assert_int_eq(message_parse((uint8_t *)text, strlen(text), NULL, &m, &why), 0);
	free(text);
	ck_assert_str_eq(message_id(m), "ref-2026-0042");
	ck_assert_str_eq(message_from(m), "ringsted-visitation");
	ck_assert_str_eq(message_to(m), "hovmand-care");
	ck_assert_str_eq(message_cpr(m), CPR);
	ck_assert_int_eq((long long)message_deadline(m), 1795772760LL);
	ck_assert_int_eq(message_kind(m), MSG_REFERRAL);
	message_set_id(m, "c0ffee-1");
	ck_assert_str_eq(message_id(m), "c0ffee-1");
	message_set_from(m, "hovmand-care");
	ck_assert_str_eq(message_from(m), "hovmand-care");
	message_set_id(m, NULL);
	ck_assert_ptr_null(message_id(m));
	message_set_from(m, NULL);
	ck_assert_ptr_null(message_from(m));
	message_free(m);

	/* Without a deadline, message_deadline is 0. */
	j = example_json(MSG_CANCELLATION);
	text = json_dumps(j, 0);
	json_decref(j);
	ck_assert_int_eq(message_parse((uint8_t *)text, strlen(text), NULL, &m, &why), 0);
	free(text);
	ck_assert_int_eq((long long)message_deadline(m), 0);
	ck_assert_ptr_null(message_id(m));
	ck_assert_uint_eq(message_classes(m), 1u << CLASS_BASIC);
	message_free(m);
}
END_TEST

START_TEST(test_cpr_in_message)
{
	static const struct {
		const char *cpr;
		const char *want;
	} cases[] = {
		{ "3102471234", "citizen.cpr: day 31 does not exist in month 02 of 1947" },
		{ "0113471234", "citizen.cpr: month 13 does not exist" },
		{ "0001471234", "citizen.cpr: day 00 does not exist" },
		{ "2902001000", "citizen.cpr: day 29 does not exist in month 02 of 1900" },
		{ "25094799a9", "citizen.cpr: not ten digits" },
		{ "250947998", "citizen.cpr: not ten digits" },
		{ "25094799891", "citizen.cpr: not ten digits" },
	};
	json_t *j;
	size_t i;
	char *text;
	struct message *m = NULL;
	struct why why = { 0 };

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		j = example_json(MSG_REFERRAL);
		json_object_set_new(at(j, "citizen"), "cpr", json_string(cases[i].cpr));
		text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		ck_assert_int_eq(message_parse((uint8_t *)text, strlen(text), NULL, &m, &why),
		    HEGN_ERR_INVALID);
		free(text);
		ck_assert_msg(strstr(why.text, cases[i].want) != NULL, "'%s' lacks '%s'",
		    why.text, cases[i].want);
		if (strlen(cases[i].cpr) >= 10)
			ck_assert_msg(strstr(why.text, cases[i].cpr) == NULL,
			    "'%s' carries the number", why.text);
	}
	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "citizen"), "cpr", json_integer(2509479989LL));
	expect(j, HEGN_ERR_INVALID, "citizen.cpr: not a string");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "citizen"), "name", json_string(""));
	expect(j, HEGN_ERR_INVALID, "citizen.name: empty");
	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "citizen", json_string(CPR));
	expect(j, HEGN_ERR_INVALID, "citizen: not an object");
	/* The test CPR fails modulus 11 and is accepted (the examples use it). */
	j = example_json(MSG_REFERRAL);
	expect(j, 0, NULL);
}
END_TEST

/* A citizen without a CPR: citizen.ecpr instead, keyed apart from every CPR. */
START_TEST(test_ecpr_in_message)
{
	json_t *j;
	char *text;
	struct message *m = NULL;
	struct why why = { 0 };

	j = example_json(MSG_REFERRAL);
	json_object_del(at(j, "citizen"), "cpr");
	json_object_set_new(at(j, "citizen"), "ecpr", json_string("0101701A2B"));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	ck_assert_msg(message_parse((uint8_t *)text, strlen(text), NULL, &m, &why) == 0, "%s",
	    why.text);
	free(text);
	ck_assert_str_eq(message_cpr(m), "X-eCPR:0101701A2B");
	message_free(m);
	m = NULL;

	j = example_json(MSG_REFERRAL);
	json_object_set_new(at(j, "citizen"), "ecpr", json_string("0101701A2B"));
	expect(j, HEGN_ERR_INVALID, "citizen: both cpr and ecpr");
	j = example_json(MSG_REFERRAL);
	json_object_del(at(j, "citizen"), "cpr");
	json_object_set_new(at(j, "citizen"), "ecpr", json_string("0101701a2b"));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	ck_assert_int_eq(message_parse((uint8_t *)text, strlen(text), NULL, &m, &why),
	    HEGN_ERR_INVALID);
	free(text);
	ck_assert_ptr_nonnull(strstr(why.text, "citizen.ecpr"));
	ck_assert_ptr_null(strstr(why.text, "0101701a2b"));
	j = example_json(MSG_REFERRAL);
	json_object_del(at(j, "citizen"), "cpr");
	json_object_set_new(at(j, "citizen"), "ecpr", json_integer(1));
	expect(j, HEGN_ERR_INVALID, "citizen.ecpr: not a string");
	j = example_json(MSG_REFERRAL);
	json_object_del(at(j, "citizen"), "cpr");
	expect(j, HEGN_ERR_INVALID, "citizen.cpr: missing");
}
END_TEST

START_TEST(test_malformed)
{
	static const char deep_head[] = "{\"kind\":\"referral\",\"basic\":";
	char *deep;
	size_t i, n;
	struct buf b = { 0 };
	const char *dupc;
	char *dup;

	expect_text("{\"kind\": ", 9, NULL, HEGN_ERR_INVALID, "malformed JSON at line 1 column");
	expect_text("", 0, NULL, HEGN_ERR_INVALID, "malformed JSON at line");
	expect_text(NULL, 0, NULL, HEGN_ERR_INVALID, "malformed JSON");
	/* jansson quotes the bad token; the reason must not. */
	expect_text("{\"kind\": 2509479989x}", 21, NULL, HEGN_ERR_INVALID, "malformed JSON");
	expect_text("{\"kind\": \"x\"} trailing", 22, NULL, HEGN_ERR_INVALID, "malformed JSON");
	expect_text("[1, 2]", 6, NULL, HEGN_ERR_INVALID, "message: not a JSON object");
	/* NUL in a string, escaped or raw. */
	expect_text("{\"kind\": \"refer\\u0000ral\"}", 26, NULL, HEGN_ERR_INVALID,
	    "malformed JSON");
	expect_text("{\"kind\": \"refer\0ral\"}", 21, NULL, HEGN_ERR_INVALID, "malformed JSON");
	/* Invalid UTF-8. */
	expect_text("{\"kind\": \"\xff\"}", 13, NULL, HEGN_ERR_INVALID, "malformed JSON");

	/* Duplicate keys: two parsers could disagree on which one counts. */
	ck_assert_int_eq(message_example(MSG_DEATH_NOTICE, "hovmand-care", &b), 0);
	n = b.len + 32;
	dup = calloc(1, n);
	snprintf(dup, n, "{\"kind\": \"referral\",%s", (char *)b.data + 1);
	expect_text(dup, strlen(dup), NULL, HEGN_ERR_INVALID, "duplicate");
	free(dup);
	buf_free(&b, 0);
	dupc = "{\"kind\":\"referral\",\"citizen\":{\"cpr\":\"1\",\"cpr\":\"2\"}}";
	expect_text(dupc, strlen(dupc), NULL, HEGN_ERR_INVALID, "duplicate");

	/* Deep nesting is refused before jansson builds a tree. */
	n = strlen(deep_head) + 2 * 200 + 2;
	deep = calloc(1, n);
	strcpy(deep, deep_head);
	for (i = 0; i < 200; i++)
		strcat(deep, "[");
	for (i = 0; i < 200; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	expect_text(deep, strlen(deep), NULL, HEGN_ERR_INVALID, "nested deeper than 16 levels");
	free(deep);
	/* Brackets inside strings do not count. */
	{
		json_t *j = example_json(MSG_OBSERVATION);

		json_object_set_new(at(j, "care"), "text",
		    json_string("[[[[[[[[[[[[[[[[[[[[ \" {{{{{{{{{{{{{{{{{{{{"));
		expect(j, 0, NULL);
	}
	/*
	 * Nor after escaped quotes and backslashes (the depth check skips
	 * through strings); deep nesting after such a string still counts.
	 */
	{
		static const char *const texts[] = {
			"\\\\\\\\\\\\\\\\\\\\", "\\\"[[[[[[[[[[[[[[[[[[[[\\\"\\",
			"\"\"\"\"[[[[[[[[[[[[[[[[[[[[\"", "ends with a backslash \\",
		};
		json_t *j;
		char *text, *deeper;
		size_t k;

		for (k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
			j = example_json(MSG_OBSERVATION);
			json_object_set_new(at(j, "care"), "text", json_string(texts[k]));
			text = json_dumps(j, JSON_COMPACT);
			ck_assert_ptr_nonnull(text);
			expect_text(text, strlen(text), NULL, 0, NULL);
			/* The same, with a list nested 20 deep after the text. */
			n = strlen(text) + 64;
			deeper = calloc(1, n);
			snprintf(deeper, n, "%.*s,\"x\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}",
			    (int)strlen(text) - 1, text);
			expect_text(deeper, strlen(deeper), NULL, HEGN_ERR_INVALID,
			    "nested deeper than 16 levels");
			free(deeper);
			free(text);
			json_decref(j);
		}
	}
}
END_TEST

static json_t *
attachment(const char *filename, const char *type, const char *cls, const char *data)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "filename", filename, "content_type", type,
	    "class", cls, "data", data);
}

START_TEST(test_attachments)
{
	struct message_limits lim = { 2, 10 };
	struct message *m = NULL;
	struct why why = { 0 };
	char *text;
	json_t *j;

	/* "MDEyMzQ1Njc4OQ==" is ten bytes, "MDEyMzQ1Njc4OTA=" eleven. */
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o]",
	    attachment("a.txt", "text/plain", "care", "MDEyMzQ1Njc4OQ==")));
	expect_lim(j, &lim, 0, NULL);
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o]",
	    attachment("a.txt", "text/plain", "care", "MDEyMzQ1Njc4OTA=")));
	expect_lim(j, &lim, HEGN_ERR_TOO_LARGE,
	    "attachments[0].data: 11 bytes, more than the limit of 10");

	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o,o,o]",
	    attachment("a.txt", "text/plain", "care", "YQ=="),
	    attachment("b.txt", "text/plain", "care", "YQ=="),
	    attachment("c.txt", "text/plain", "care", "YQ==")));
	expect_lim(j, &lim, HEGN_ERR_TOO_LARGE,
	    "attachments: 3 attachments, more than the limit of 2");
	lim.max_attachments = 0;
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o]",
	    attachment("a.txt", "text/plain", "care", "YQ==")));
	expect_lim(j, &lim, HEGN_ERR_TOO_LARGE, "attachments: 1 attachments");

	/* The default limit is 20 attachments. */
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_array());
	for (int i = 0; i < 21; i++)
		json_array_append_new(json_object_get(j, "attachments"),
		    attachment("a.txt", "text/plain", "care", "YQ=="));
	expect(j, HEGN_ERR_TOO_LARGE, "more than the limit of 20");

	static const char *const bad_b64[] = {
		"not base64!", "YQ=", "YQ", "Y===", "YQ==YWJj", "YW Jj", "YWJj\n", "=YWJ",
		"YR==", "",
	};
	for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
		j = example_json(MSG_OBSERVATION);
		json_object_set_new(j, "attachments", json_pack("[o]",
		    attachment("a.txt", "text/plain", "care", bad_b64[i])));
		expect(j, HEGN_ERR_INVALID, "attachments[0].data: not valid base64");
	}
	/* Base64 longer than one decoding slice, with the padding at its end. */
	{
		size_t n = 3 * 4000 + 1;
		unsigned char *bin = calloc(1, n);
		char *b64 = calloc(1, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL));

		sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL),
		    bin, n, sodium_base64_VARIANT_ORIGINAL);
		j = example_json(MSG_OBSERVATION);
		json_object_set_new(j, "attachments", json_pack("[o]",
		    attachment("big.pdf", "application/pdf", "care", b64)));
		expect(j, 0, NULL);
		/* A stray character deep inside is still caught. */
		b64[5000] = '*';
		j = example_json(MSG_OBSERVATION);
		json_object_set_new(j, "attachments", json_pack("[o]",
		    attachment("big.pdf", "application/pdf", "care", b64)));
		expect(j, HEGN_ERR_INVALID, "not valid base64");
		free(b64);
		free(bin);
	}

	static const char *const bad_names[] = { "../x", "a/b", "a\\b", ".", "..", "a\nb", "" };
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		j = example_json(MSG_OBSERVATION);
		json_object_set_new(j, "attachments", json_pack("[o]",
		    attachment(bad_names[i], "text/plain", "care", "YQ==")));
		expect(j, HEGN_ERR_INVALID, "attachments[0].filename");
	}
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o,o]",
	    attachment("a.txt", "text/plain", "care", "YQ=="),
	    attachment("a.html", "text/html", "care", "YQ==")));
	expect(j, HEGN_ERR_INVALID, "attachments[1].content_type: 'text/html' is not one of");
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o]",
	    attachment("a.txt", "text/plain", "secret", "YQ==")));
	expect(j, HEGN_ERR_INVALID, "attachments[0].class: 'secret' is not basic, care or health");
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_object());
	expect(j, HEGN_ERR_INVALID, "attachments: not a list");
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[s]", "x"));
	expect(j, HEGN_ERR_INVALID, "attachments[0]: not an object");

	/* An attachment's class counts as present even without the class object. */
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o]",
	    attachment("epikrise.pdf", "application/pdf", "health", "JVBERi0=")));
	text = json_dumps(j, 0);
	json_decref(j);
	ck_assert_int_eq(message_parse((uint8_t *)text, strlen(text), NULL, &m, &why), 0);
	free(text);
	ck_assert_uint_eq(message_classes(m),
	    (1u << CLASS_BASIC) | (1u << CLASS_CARE) | (1u << CLASS_HEALTH));
	message_free(m);
}
END_TEST

static void
canonical_of(const char *text, struct buf *out)
{
	struct message *m = NULL;
	struct why why = { 0 };

	ck_assert_msg(message_parse((const uint8_t *)text, strlen(text), NULL, &m, &why) == 0,
	    "%s", why.text);
	ck_assert_int_eq(message_canonical(m, out, &why), 0);
	message_free(m);
}

START_TEST(test_canonical)
{
	struct buf a = { 0 }, b = { 0 }, c = { 0 };
	const char *x = "{\"to\": \"hovmand-care\", \"kind\": \"death_notice\",\n"
	    "  \"citizen\": {\"name\": \"Elmer Testesen\", \"cpr\": \"250947-9989\"},\n"
	    "  \"basic\": {\"time_of_death\": \"2026-11-27T03:40:00+01:00\", \"notes\": \"Rådhus\\u00e6\"}}";
	const char *y = "{\"basic\":{\"notes\":\"Rådhusæ\",\"time_of_death\":"
	    "\"2026-11-27T03:40:00+01:00\"},\"citizen\":{\"cpr\":\"250947-9989\","
	    "\"name\":\"Elmer Testesen\"},\"kind\":\"death_notice\",\"to\":\"hovmand-care\"}";
	int k;

	canonical_of(x, &a);
	/* Compact, keys sorted, UTF-8 kept, no trailing newline. */
	ck_assert_int_eq(a.len, strlen(y));
	ck_assert_mem_eq(a.data, y, a.len);
	ck_assert_int_eq(a.data[a.len], '\0');
	/* Key order and white space do not matter. */
	canonical_of(y, &b);
	ck_assert_int_eq(a.len, b.len);
	ck_assert_mem_eq(a.data, b.data, a.len);
	buf_free(&a, 0);
	buf_free(&b, 0);

	/* parse(canonical(x)) has the same canonical form, for every kind. */
	for (k = 0; k < MSG_KIND_COUNT; k++) {
		ck_assert_int_eq(message_example(k, "hovmand-care", &a), 0);
		canonical_of((char *)a.data, &b);
		canonical_of((char *)b.data, &c);
		ck_assert_int_eq(b.len, c.len);
		ck_assert_mem_eq(b.data, c.data, b.len);
		ck_assert(b.data[b.len - 1] == '}');
		buf_free(&a, 0);
		buf_free(&b, 0);
		buf_free(&c, 0);
	}

	/* "from" set by the gateway is part of the canonical bytes. */
	{
		struct message *m = NULL;
		struct why why = { 0 };

		ck_assert_int_eq(message_parse((const uint8_t *)y, strlen(y), NULL, &m, &why), 0);
		message_set_from(m, "ringsted-visitation");
		message_set_id(m, "m-1");
		ck_assert_int_eq(message_canonical(m, &a, &why), 0);
		ck_assert_ptr_nonnull(strstr((char *)a.data,
		    "\"citizen\":{\"cpr\":\"250947-9989\",\"name\":\"Elmer Testesen\"},"
		    "\"from\":\"ringsted-visitation\",\"id\":\"m-1\",\"kind\""));
		buf_free(&a, 0);
		message_free(m);
	}
}
END_TEST

/*
 * A minimised copy shares m's members instead of copying them, and what is
 * done to the copy (classes dropped, id, from, minimised) leaves m as it was;
 * message_drop_attachment_data empties only the attachments' data.
 */
START_TEST(test_minimise_shares)
{
	struct message *m = NULL, *min = NULL;
	struct why why = { 0 };
	struct buf before = { 0 }, after = { 0 }, cmin = { 0 };
	unsigned removed = 0;
	json_t *j, *atts;
	char *text;

	j = example_json(MSG_REFERRAL);
	json_object_set_new(j, "attachments", json_pack("[o,o]",
	    attachment("care.txt", "text/plain", "care", "Y2FyZQ=="),
	    attachment("health.txt", "text/plain", "health", "aGVhbHRo")));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	ck_assert_int_eq(message_parse((const uint8_t *)text, strlen(text), NULL, &m, &why), 0);
	free(text);
	ck_assert_int_eq(message_canonical(m, &before, &why), 0);

	ck_assert_int_eq(message_minimise(m, (1u << CLASS_BASIC) | (1u << CLASS_CARE), &min,
	    &removed, &why), 0);
	ck_assert_uint_eq(removed, 1u << CLASS_HEALTH);
	ck_assert_int_eq(message_set_id(min, "m-1"), 0);
	ck_assert_int_eq(message_set_from(min, "ringsted-visitation"), 0);
	ck_assert_int_eq(message_set_minimised(min, "00", removed, "sender"), 0);
	ck_assert_int_eq(message_canonical(min, &cmin, &why), 0);
	ck_assert_ptr_null(strstr((char *)cmin.data, "\"health\":{"));
	ck_assert_ptr_nonnull(strstr((char *)cmin.data, "\"removed\":[\"health\"]"));
	ck_assert_ptr_null(strstr((char *)cmin.data, "aGVhbHRo"));
	ck_assert_ptr_nonnull(strstr((char *)cmin.data, "\"data\":\"Y2FyZQ==\""));
	ck_assert_ptr_nonnull(strstr((char *)cmin.data, "\"minimised\":"));
	/* The original is exactly as it was. */
	ck_assert_int_eq(message_canonical(m, &after, &why), 0);
	ck_assert_uint_eq(after.len, before.len);
	ck_assert_mem_eq(after.data, before.data, before.len);
	ck_assert_ptr_eq(json_object_get(message_json(min), "care"),
	    json_object_get(message_json(m), "care"));
	message_free(min);
	buf_free(&after, 0);

	message_drop_attachment_data(m);
	atts = json_object_get(message_json(m), "attachments");
	ck_assert_uint_eq(json_array_size(atts), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(atts, 0), "data")), "");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(atts, 1), "data")), "");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(atts, 1), "class")),
	    "health");
	ck_assert_uint_eq(message_classes(m), (1u << CLASS_BASIC) | (1u << CLASS_CARE) |
	    (1u << CLASS_HEALTH));
	ck_assert_str_eq(message_to(m), "hovmand-care");
	/* A message without attachments is left alone. */
	message_free(m);
	m = NULL;
	text = "{\"kind\":\"death_notice\",\"to\":\"x\",\"citizen\":{\"cpr\":\"2509479989\"},"
	    "\"basic\":{\"time_of_death\":\"2026-11-27T03:40:00+01:00\"}}";
	ck_assert_int_eq(message_parse((const uint8_t *)text, strlen(text), NULL, &m, &why), 0);
	message_drop_attachment_data(m);
	message_free(m);
	buf_free(&before, 0);
	buf_free(&cmin, 0);
}
END_TEST

/* Every full example in docs/messages.md parses, one per kind. */
START_TEST(test_doc_examples)
{
	char path[4096];
	struct buf doc = { 0 };
	struct message *m = NULL;
	struct why why = { 0 };
	unsigned seen = 0;
	char *p, *end;
	int n = 0;

	/* make check sets HEGN_TOP_SRCDIR; "." fits only an in-tree build. */
	snprintf(path, sizeof(path), "%s/docs/messages.md", getenv("HEGN_TOP_SRCDIR") != NULL ?
	    getenv("HEGN_TOP_SRCDIR") : HEGN_TOP_SRCDIR);
	ck_assert_msg(util_read_file(path, 1 << 20, &doc, &why) == 0, "%s", why.text);
	for (p = (char *)doc.data; (p = strstr(p, "```json\n{\n")) != NULL; p = end) {
		p += strlen("```json\n");
		end = strstr(p, "```");
		ck_assert_ptr_nonnull(end);
		ck_assert_msg(message_parse((uint8_t *)p, (size_t)(end - p), NULL, &m, &why) == 0,
		    "example %d in %s: %s", n, path, why.text);
		seen |= 1u << message_kind(m);
		message_free(m);
		m = NULL;
		n++;
	}
	ck_assert_int_eq(n, MSG_KIND_COUNT);
	ck_assert_uint_eq(seen, (1u << MSG_KIND_COUNT) - 1);
	buf_free(&doc, 0);
}
END_TEST

/* The bytes jansson writes with JSON_COMPACT | JSON_SORT_KEYS, for comparison. */
static char *
jansson_canonical(json_t *j)
{
	char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	ck_assert_ptr_nonnull(t);
	return t;
}

static void
same_as_jansson(json_t *j)
{
	struct buf b = { 0 };
	struct why why = { 0 };
	char *want = jansson_canonical(j);

	ck_assert_msg(message_canonical_json(j, &b, &why) == 0, "%s", why.text);
	ck_assert_msg(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
	    "canonical form differs from jansson's:\n%s\n%s", (char *)b.data, want);
	ck_assert_int_eq(b.data[b.len], '\0');
	free(want);
	buf_free(&b, 0);
}

/*
 * The one-pass canonical form writes exactly jansson's bytes: for every
 * kind's example (with "from", "id" and an attachment), and for strings
 * with every escape, non-ASCII text, keys that are prefixes of each other,
 * nesting, integers, booleans and null.
 */
START_TEST(test_canonical_json)
{
	static const char *const strings[] = {
		"", "plain", "quote \" and backslash \\ and slash /", "\b\f\n\r\t",
		"\x01\x02\x1f\x7f end", "Rådhusæøå 日本 😀", "\"\"\\\\", "\x1f",
		"tab\tat\tthe\tend\t",
	};
	struct buf b = { 0 }, c = { 0 };
	struct message *m = NULL;
	struct why why = { 0 };
	json_t *j, *list;
	size_t i;
	int k;

	for (k = 0; k < MSG_KIND_COUNT; k++) {
		j = example_json(k);
		json_object_set_new(j, "from", json_string("ringsted-visitation"));
		json_object_set_new(j, "id", json_string("m-1"));
		same_as_jansson(j);
		json_decref(j);
	}
	j = example_json(MSG_OBSERVATION);
	json_object_set_new(j, "attachments", json_pack("[o]",
	    attachment("a b.txt", "text/plain", "care", "YWJj")));
	same_as_jansson(j);
	/* message_canonical gives the same bytes for the parsed message. */
	{
		char *text = json_dumps(j, 0), *want = jansson_canonical(j);

		ck_assert_int_eq(message_parse((const uint8_t *)text, strlen(text), NULL, &m,
		    &why), 0);
		ck_assert_int_eq(message_canonical(m, &c, &why), 0);
		ck_assert_int_eq(c.len, strlen(want));
		ck_assert_mem_eq(c.data, want, c.len);
		buf_free(&c, 0);
		message_free(m);
		free(text);
		free(want);
	}
	json_decref(j);

	j = json_object();
	list = json_array();
	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		json_array_append_new(list, json_string(strings[i]));
		json_object_set_new(j, strings[i], json_integer((json_int_t)i - 4));
	}
	json_object_set_new(j, "list", list);
	json_object_set_new(j, "a", json_true());
	json_object_set_new(j, "ab", json_false());
	json_object_set_new(j, "aa", json_null());
	json_object_set_new(j, "big", json_integer(INT64_MIN));
	json_object_set_new(j, "empty", json_pack("{s:{},s:[]}", "o", "l"));
	json_object_set_new(j, "deep", json_pack("[[[{s:[1,2,{}]}]]]", "z"));
	same_as_jansson(j);
	same_as_jansson(list);
	json_decref(j);

	/* A real number is left to jansson; a bare value has no canonical form. */
	j = json_pack("{s:f}", "r", 1.5);
	ck_assert_int_eq(message_canonical_json(j, &b, &why), HEGN_ERR_UNSUPPORTED);
	ck_assert_ptr_null(b.data);
	json_decref(j);
	j = json_string("x");
	ck_assert_int_eq(message_canonical_json(j, &b, &why), HEGN_ERR_INVALID);
	json_decref(j);
}
END_TEST

/*
 * The base64 check decides as libsodium's decoder did: every string of
 * length 0..12 from a small alphabet (letters whose low bits differ, the
 * two symbols, padding and outsiders), plus random ones.
 */
static int
sodium_accepts(const char *s, size_t len)
{
	unsigned char bin[64];
	size_t binlen = 0;

	return sodium_base642bin(bin, sizeof(bin), s, len, NULL, &binlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) == 0 && binlen > 0;
}

static int
parse_accepts(const char *b64)
{
	json_t *j = example_json(MSG_OBSERVATION);
	struct message *m = NULL;
	struct why why = { 0 };
	char *text;
	int r;

	json_object_set_new(j, "attachments", json_pack("[o]",
	    attachment("a.txt", "text/plain", "care", b64)));
	text = json_dumps(j, JSON_COMPACT);
	r = message_parse((const uint8_t *)text, strlen(text), NULL, &m, &why);
	if (r != 0)
		ck_assert_msg(strstr(why.text, "attachments[0].data: ") != NULL, "%s", why.text);
	message_free(m);
	free(text);
	json_decref(j);
	return r == 0;
}

START_TEST(test_base64_like_sodium)
{
	static const char alpha[] = "AQgw+/=-_ *";   /* 11 characters */
	char s[20];      /* up to 16 characters and the NUL */
	uint32_t x;
	size_t len, i, tried = 0;
	int round;

	/* Every four-character string over the alphabet. */
	len = 4;
	for (x = 0; x < 11 * 11 * 11 * 11; x++) {
		for (i = 0; i < len; i++)
			s[i] = alpha[(x / (i == 0 ? 1 : i == 1 ? 11 : i == 2 ? 121 : 1331)) % 11];
		s[len] = '\0';
		ck_assert_msg(parse_accepts(s) == sodium_accepts(s, len), "\"%s\"", s);
		tried++;
	}
	for (round = 0; round < 2000; round++) {
		len = 4 * (1 + randombytes_uniform(4));
		for (i = 0; i < len; i++)
			s[i] = alpha[randombytes_uniform(sizeof(alpha) - 1)];
		if (randombytes_uniform(2))
			s[len - 1] = '=';
		if (randombytes_uniform(3) == 0)
			s[len - 2] = '=';
		s[len] = '\0';
		ck_assert_msg(parse_accepts(s) == sodium_accepts(s, len), "\"%s\"", s);
		tried++;
	}
	ck_assert_uint_eq(tried, 11 * 11 * 11 * 11 + 2000);
	/* Padding whose left-over bits are not zero is refused, as libsodium does. */
	ck_assert(!parse_accepts("YR=="));
	ck_assert(!parse_accepts("YWJ="));
	ck_assert(parse_accepts("YQ=="));
	ck_assert(parse_accepts("YWI="));
	ck_assert(parse_accepts("+/+/"));
}
END_TEST

static Suite *
message_suite(void)
{
	Suite *s = suite_create("message");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_examples_parse);
	tcase_add_test(tc, test_minimise_shares);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_required);
	tcase_add_test(tc, test_unknown);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_top_level);
	tcase_add_test(tc, test_cpr_in_message);
	tcase_add_test(tc, test_ecpr_in_message);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_attachments);
	tcase_add_test(tc, test_canonical);
	tcase_add_test(tc, test_doc_examples);
	tcase_add_test(tc, test_canonical_json);
	tcase_add_test(tc, test_base64_like_sodium);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(message_suite)
