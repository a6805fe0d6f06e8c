#include "config.h"

#include <jansson.h>

#include "message.h"
#include "testlib.h"
#include "timeusage.h"

static int
parse(const char *csv, struct buf **docs, size_t *n, struct why *why)
{
	return timeusage_parse((const uint8_t *)csv, strlen(csv), "ringsted-visitation", docs, n,
	    why);
}

START_TEST(test_semicolon_and_grouping)
{
	const char *csv =
	    "cpr;date;service;minutes;visit_id\r\n"
	    "2509479989;2026-11-25;practical_help;45;v-1\r\n"
	    "010140-1234;2026-11-25;meals;10;\r\n"
	    "2509479989;2026-11-26;practical_help;30;v-2\r\n"
	    ";;;;\r\n";
	struct buf *docs = NULL;
	struct why why = { 0 };
	struct message *m = NULL;
	json_t *visits;
	size_t n = 0;

	ck_assert_int_eq(parse(csv, &docs, &n, &why), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(message_parse(docs[0].data, docs[0].len, NULL, &m, &why), 0);
	ck_assert_int_eq(message_kind(m), MSG_TIME_USAGE);
	ck_assert_str_eq(message_cpr(m), "2509479989");
	ck_assert_str_eq(message_to(m), "ringsted-visitation");
	visits = json_object_get(json_object_get(message_json(m), "basic"), "visits");
	ck_assert_int_eq(json_array_size(visits), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(visits, 1), "minutes")), 30);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(visits, 0), "visit_id")),
	    "v-1");
	message_free(m);
	ck_assert_int_eq(message_parse(docs[1].data, docs[1].len, NULL, &m, &why), 0);
	ck_assert_str_eq(message_cpr(m), "0101401234");
	/* An empty visit_id is left out, not sent as "". */
	visits = json_object_get(json_object_get(message_json(m), "basic"), "visits");
	ck_assert_ptr_null(json_object_get(json_array_get(visits, 0), "visit_id"));
	message_free(m);
	timeusage_free(docs, n);
}
END_TEST

START_TEST(test_comma_quotes_and_column_order)
{
	const char *csv =
	    "minutes,service,\"cpr\",date,note\n"
	    "15,\"personal_care\",2509479989,2026-11-20,\"a note, with a comma\"\n";
	struct buf *docs = NULL;
	struct why why = { 0 };
	size_t n = 0;

	ck_assert_msg(parse(csv, &docs, &n, &why) == 0, "%s", why.text);
	ck_assert_int_eq(n, 1);
	ck_assert(strstr((char *)docs[0].data, "\"minutes\":15") != NULL);
	ck_assert(strstr((char *)docs[0].data, "note") == NULL);
	timeusage_free(docs, n);
}
END_TEST

/* Each bad file is refused naming the line and column, never the CPR. */
START_TEST(test_refusals)
{
	static const struct {
		const char *csv, *expect;
	} cases[] = {
		{ "cpr;date;service\n2509479989;2026-11-25;meals\n", "minutes: missing from the header" },
		{ "cpr;date;service;minutes\n3102479989;2026-11-25;meals;10\n", "line 2: cpr:" },
		{ "cpr;date;service;minutes\n25094799;2026-11-25;meals;10\n", "line 2: cpr:" },
		{ "cpr;date;service;minutes\n2509479989;2026-13-25;meals;10\n", "line 2: date:" },
		{ "cpr;date;service;minutes\n2509479989;2026-11-25;gardening;10\n", "line 2: service:" },
		{ "cpr;date;service;minutes\n2509479989;2026-11-25;meals;0\n", "line 2: minutes:" },
		{ "cpr;date;service;minutes\n2509479989;2026-11-25;meals;1441\n", "line 2: minutes:" },
		{ "cpr;date;service;minutes\n2509479989;2026-11-25;meals;ten\n", "line 2: minutes:" },
		{ "cpr;date;service;minutes\n2509479989;2026-11-25;meals;10\n"
		    "2509479989;2026-11-25;meals;-5\n", "line 3: minutes:" },
		{ "cpr;date;service;minutes\n", "no visits" },
		{ "cpr;date;service;minutes\n\"2509479989;2026-11-25;meals;10\n", "line 2" },
	};
	struct buf *docs;
	struct why why;
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		docs = NULL;
		n = 0;
		memset(&why, 0, sizeof(why));
		ck_assert_int_eq(parse(cases[i].csv, &docs, &n, &why), HEGN_ERR_INVALID);
		ck_assert_ptr_null(docs);
		ck_assert_msg(strstr(why.text, cases[i].expect) != NULL, "case %zu: %s", i, why.text);
		ck_assert_msg(strstr(why.text, "2509479989") == NULL &&
		    strstr(why.text, "3102479989") == NULL, "case %zu repeats a CPR", i);
	}
}
END_TEST

static Suite *
timeusage_suite(void)
{
	Suite *s = suite_create("timeusage");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_semicolon_and_grouping);
	tcase_add_test(tc, test_comma_quotes_and_column_order);
	tcase_add_test(tc, test_refusals);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(timeusage_suite)
