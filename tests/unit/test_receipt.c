#include "config.h"

#include "err.h"
#include "receipt.h"
#include "testlib.h"
#include "util.h"

#define SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void
refused(const char *text, const char *want)
{
	struct receipt r;
	struct why why = { 0 };

	memset(&r, 'x', sizeof(r));
	ck_assert_int_eq(receipt_parse((const uint8_t *)text, strlen(text), &r, &why),
	    HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, want) != NULL, "'%s' lacks '%s'", why.text, want);
	/* The output is reset, not half-filled. */
	ck_assert_str_eq(r.message_id, "");
	ck_assert_str_eq(r.sha256, "");
	ck_assert_int_eq(r.accepted, 0);
}

START_TEST(test_roundtrip)
{
	struct receipt r = { 0 }, back;
	struct buf b = { 0 };
	struct why why = { 0 };
	const char *text;

	snprintf(r.message_id, sizeof(r.message_id), "2b9f6c1e-8d7a-4c53-9b1e-0f2a6d4c8e11");
	snprintf(r.sha256, sizeof(r.sha256), SHA);
	r.accepted = 1;
	ck_assert_int_eq(receipt_build(&r, &b, &why), 0);
	ck_assert_str_eq((char *)b.data, "{\"message_id\":\"2b9f6c1e-8d7a-4c53-9b1e-0f2a6d4c8e11\","
	    "\"sha256\":\"" SHA "\",\"status\":\"accepted\"}");
	ck_assert_int_eq(b.len, strlen((char *)b.data));
	ck_assert_int_eq(receipt_parse(b.data, b.len, &back, &why), 0);
	ck_assert_str_eq(back.message_id, r.message_id);
	ck_assert_str_eq(back.sha256, SHA);
	ck_assert_int_eq(back.accepted, 1);
	ck_assert_str_eq(back.reason, "");
	buf_free(&b, 0);

	r.accepted = 0;
	snprintf(r.reason, sizeof(r.reason), "Borgeren er ikke tilknyttet leverandøren");
	ck_assert_int_eq(receipt_build(&r, &b, &why), 0);
	ck_assert_ptr_nonnull(strstr((char *)b.data, "\"status\":\"rejected\""));
	ck_assert_int_eq(receipt_parse(b.data, b.len, &back, &why), 0);
	ck_assert_int_eq(back.accepted, 0);
	ck_assert_str_eq(back.reason, r.reason);
	buf_free(&b, 0);

	/* A reason may accompany an acceptance; an empty one is the same as none. */
	text = "{\"message_id\":\"m\",\"sha256\":\"" SHA
	    "\",\"status\":\"accepted\",\"reason\":\"\"}";
	ck_assert_int_eq(receipt_parse((const uint8_t *)text, strlen(text), &back, &why), 0);
	ck_assert_int_eq(back.accepted, 1);
	text = "{\"reason\":\"ok\",\"status\":\"accepted\","
	    "\"sha256\":\"" SHA "\",\"message_id\":\"m\"}";
	ck_assert_int_eq(receipt_parse((const uint8_t *)text, strlen(text), &back, &why), 0);
	ck_assert_str_eq(back.reason, "ok");
	ck_assert_str_eq(back.message_id, "m");
}
END_TEST

START_TEST(test_parse_refused)
{
	char text[1024], reason[600];

	refused("{\"sha256\":\"" SHA "\",\"status\":\"accepted\"}", "receipt.message_id: missing");
	refused("{\"message_id\":\"m\",\"status\":\"accepted\"}", "receipt.sha256: missing");
	refused("{\"message_id\":\"m\",\"sha256\":\"" SHA "\"}", "receipt.status: missing");
	refused("{\"message_id\":\"m\",\"sha256\":\"" SHA "\",\"status\":\"ok\"}",
	    "receipt.status: not 'accepted' or 'rejected'");
	refused("{\"message_id\":\"m\",\"sha256\":\"" SHA "\",\"status\":\"rejected\"}",
	    "receipt.reason: required when the status is rejected");
	refused("{\"message_id\":\"m\",\"sha256\":\"" SHA "\",\"status\":\"rejected\",\"reason\":\"\"}",
	    "receipt.reason: required when the status is rejected");
	refused("{\"message_id\":\"m\",\"sha256\":\"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\","
	    "\"status\":\"accepted\"}", "receipt.sha256: not 64 lower-case");
	refused("{\"message_id\":\"m\",\"sha256\":\"a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\","
	    "\"status\":\"accepted\"}", "receipt.sha256: not 64 lower-case");
	refused("{\"message_id\":\"m\",\"sha256\":\"ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\","
	    "\"status\":\"accepted\"}", "receipt.sha256: not 64 lower-case");
	refused("{\"message_id\":\"../m\",\"sha256\":\"" SHA "\",\"status\":\"accepted\"}",
	    "receipt.message_id: not 1 to 64");
	refused("{\"message_id\":\"a123456789b123456789c123456789d123456789e123456789f123456789g1234\","
	    "\"sha256\":\"" SHA "\",\"status\":\"accepted\"}", "receipt.message_id: not 1 to 64");
	refused("{\"message_id\":\"m\",\"sha256\":\"" SHA "\",\"status\":\"accepted\",\"extra\":\"x\"}",
	    "receipt: unknown field");
	refused("{\"message_id\":\"m\",\"sha256\":\"" SHA "\",\"status\":true}",
	    "receipt.status: not a string");
	refused("{\"message_id\":\"m\",\"message_id\":\"n\",\"sha256\":\"" SHA "\",\"status\":\"accepted\"}",
	    "duplicate");
	refused("{\"message_id\":\"m\",\"sha256\":\"" SHA "\",\"status\":\"rejected\",\"reason\":\"a\\u0000b\"}",
	    "malformed JSON");
	refused("{\"message_id\":\"m\"", "receipt: malformed JSON at line 1");
	refused("[\"m\"]", "receipt: not a JSON object");
	refused("", "receipt: malformed JSON");

	/* 512 bytes of reason pass, 513 do not. */
	memset(reason, 'r', 513);
	reason[512] = '\0';
	snprintf(text, sizeof(text), "{\"message_id\":\"m\",\"sha256\":\"" SHA
	    "\",\"status\":\"rejected\",\"reason\":\"%s\"}", reason);
	{
		struct receipt r;

		ck_assert_int_eq(receipt_parse((uint8_t *)text, strlen(text), &r, NULL), 0);
		ck_assert_int_eq(strlen(r.reason), 512);
	}
	reason[512] = 'r';
	reason[513] = '\0';
	snprintf(text, sizeof(text), "{\"message_id\":\"m\",\"sha256\":\"" SHA
	    "\",\"status\":\"rejected\",\"reason\":\"%s\"}", reason);
	refused(text, "receipt.reason: longer than 512 bytes");
	{
		struct receipt r;

		ck_assert_int_eq(receipt_parse(NULL, 0, &r, NULL), HEGN_ERR_INVALID);
	}
}
END_TEST

START_TEST(test_build_refused)
{
	struct receipt r = { 0 };
	struct buf b = { 0 };
	struct why why = { 0 };

	snprintf(r.message_id, sizeof(r.message_id), "m-1");
	snprintf(r.sha256, sizeof(r.sha256), SHA);
	r.accepted = 0;
	ck_assert_int_eq(receipt_build(&r, &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(b.data);
	ck_assert_ptr_nonnull(strstr(why.text, "receipt.reason: required"));

	snprintf(r.reason, sizeof(r.reason), "\xff\xfe");
	ck_assert_int_eq(receipt_build(&r, &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "receipt.reason: not UTF-8"));
	ck_assert_ptr_null(b.data);

	r.accepted = 1;
	r.reason[0] = '\0';
	snprintf(r.sha256, sizeof(r.sha256), "%.63s", SHA);
	ck_assert_int_eq(receipt_build(&r, &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "receipt.sha256"));

	snprintf(r.sha256, sizeof(r.sha256), SHA);
	r.message_id[0] = '\0';
	ck_assert_int_eq(receipt_build(&r, &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "receipt.message_id"));

	/* Fields without a terminator are refused, not overread. */
	memset(r.message_id, 'a', sizeof(r.message_id));
	ck_assert_int_eq(receipt_build(&r, &b, &why), HEGN_ERR_INVALID);
	snprintf(r.message_id, sizeof(r.message_id), "m-1");
	memset(r.reason, 'a', sizeof(r.reason));
	ck_assert_int_eq(receipt_build(&r, &b, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(b.data);
}
END_TEST

static Suite *
receipt_suite(void)
{
	Suite *s = suite_create("receipt");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_parse_refused);
	tcase_add_test(tc, test_build_refused);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(receipt_suite)
