#include "config.h"

#include <dirent.h>

#include <jansson.h>

#include "cpr.h"
#include "err.h"
#include "testlib.h"

/* Expect cpr to be refused with a reason containing want and not the number. */
static void
refused(const char *cpr, const char *want)
{
	struct why why = { 0 };
	int y = -1, m = -1, d = -1;

	ck_assert_int_eq(cpr_check(cpr, &y, &m, &d, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(why.code, HEGN_ERR_INVALID);
	ck_assert_msg(strstr(why.text, want) != NULL, "'%s' lacks '%s'", why.text, want);
	if (cpr != NULL && strlen(cpr) >= 10)
		ck_assert_msg(strstr(why.text, cpr) == NULL, "reason repeats the number");
	ck_assert_int_eq(y, 0);
	ck_assert_int_eq(m, 0);
	ck_assert_int_eq(d, 0);
}

static void
accepted(const char *cpr, int year, int month, int day)
{
	struct why why = { 0 };
	int y, m, d;

	ck_assert_msg(cpr_check(cpr, &y, &m, &d, &why) == 0, "refused: %s", why.text);
	ck_assert_int_eq(y, year);
	ck_assert_int_eq(m, month);
	ck_assert_int_eq(d, day);
}

START_TEST(test_valid)
{
	/* The design's test number fails modulus 11 on purpose. */
	accepted("2509479989", 1947, 9, 25);
	accepted("250947-9989", 1947, 9, 25);
	accepted("0101001234", 1900, 1, 1);
	accepted("3112993999", 1999, 12, 31);
	ck_assert_int_eq(cpr_check("2509479989", NULL, NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(test_century)
{
	/* Seventh digit 4 or 9: 00-36 is 2000-2036, 37-99 is 1937-1999. */
	accepted("0101364000", 2036, 1, 1);
	accepted("0101374000", 1937, 1, 1);
	accepted("0101369000", 2036, 1, 1);
	accepted("0101379000", 1937, 1, 1);
	/* Seventh digit 5 to 8: 00-57 is 2000-2057, 58-99 is 1858-1899. */
	accepted("0101575000", 2057, 1, 1);
	accepted("0101585000", 1858, 1, 1);
	accepted("0101578000", 2057, 1, 1);
	accepted("0101998000", 1899, 1, 1);
	/* Seventh digit 0 to 3: always 1900-1999. */
	accepted("0101003000", 1900, 1, 1);
	accepted("0101360000", 1936, 1, 1);

	/* 29 February 2000 exists, 29 February 1900 does not. */
	accepted("2902004000", 2000, 2, 29);
	accepted("2902005000", 2000, 2, 29);
	refused("2902001000", "day 29 does not exist in month 02 of 1900");
	/* Seventh digit 5 puts 96 in 1896 (a leap year), seventh digit 2 in 1996. */
	accepted("2902965000", 1896, 2, 29);
	accepted("2902962000", 1996, 2, 29);
	/* 1858 and 2057 are not leap years; 2056 and 1956 are. */
	refused("2902585000", "month 02 of 1858");
	refused("2902575000", "month 02 of 2057");
	accepted("2902565000", 2056, 2, 29);
	accepted("2902560000", 1956, 2, 29);
}
END_TEST

START_TEST(test_bad_dates)
{
	refused("3102471234", "day 31 does not exist in month 02 of 1947");
	refused("3002471234", "day 30 does not exist in month 02 of 1947");
	refused("3104471234", "day 31 does not exist in month 04 of 1947");
	refused("3201471234", "day 32 does not exist in month 01 of 1947");
	refused("0001471234", "day 00 does not exist in month 01 of 1947");
	refused("0113471234", "month 13 does not exist");
	refused("0100471234", "month 00 does not exist");
	refused("2902231234", "day 29 does not exist in month 02 of 1923");
}
END_TEST

START_TEST(test_bad_shape)
{
	refused("25094799a9", "not ten digits");
	refused("250947998", "not ten digits");
	refused("25094799899", "not ten digits");
	refused("2509-479989", "not ten digits");
	refused("250947 9989", "not ten digits");
	refused("250947--9989", "not ten digits");
	refused("250947-998", "not ten digits");
	refused("+2509479989", "not ten digits");
	refused("２509479989", "not ten digits");
	refused("", "not ten digits");
	refused(NULL, "not ten digits");
}
END_TEST

START_TEST(test_normalize)
{
	char out[11];

	ck_assert_int_eq(cpr_normalize("250947-9989", out), 0);
	ck_assert_str_eq(out, "2509479989");
	ck_assert_int_eq(cpr_normalize("2509479989", out), 0);
	ck_assert_str_eq(out, "2509479989");
	memcpy(out, "xxxxxxxxxx", 11);
	ck_assert_int_eq(cpr_normalize("3102471234", out), HEGN_ERR_INVALID);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(cpr_normalize("2509-479989", out), HEGN_ERR_INVALID);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_ecpr)
{
	char key[32];
	struct why why = { 0 };

	ck_assert_int_eq(cpr_ecpr_check("0101701A2B", NULL), 0);
	ck_assert_int_eq(cpr_ecpr_check("0000000000", NULL), 0);
	ck_assert_int_eq(cpr_ecpr_check(NULL, NULL), HEGN_ERR_INVALID);
	ck_assert_int_eq(cpr_ecpr_check("0101701a2b", &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(strstr(why.text, "0101701a2b"));
	ck_assert_int_eq(cpr_ecpr_check("0101701A2", NULL), HEGN_ERR_INVALID);
	ck_assert_int_eq(cpr_ecpr_check("0101701A2BC", NULL), HEGN_ERR_INVALID);
	ck_assert_int_eq(cpr_ecpr_check("010170-A2B", NULL), HEGN_ERR_INVALID);
	ck_assert_int_eq(cpr_ecpr_key("0101701A2B", key, sizeof(key), NULL), 0);
	ck_assert_str_eq(key, CPR_ECPR_PREFIX "0101701A2B");
	/* A key never has the shape of a CPR, even for an all-digit X-eCPR. */
	ck_assert_int_eq(cpr_ecpr_key("2509479989", key, sizeof(key), NULL), 0);
	ck_assert_int_ne(cpr_check(key, NULL, NULL, NULL, NULL), 0);
	ck_assert_int_eq(cpr_ecpr_key("bad", key, sizeof(key), NULL), HEGN_ERR_INVALID);
	ck_assert_str_eq(key, "");
	ck_assert_int_eq(cpr_ecpr_key("0101701A2B", key, 10, NULL), HEGN_ERR_INTERNAL);
	ck_assert_str_eq(key, "");
}
END_TEST

/* Count CPR identifiers in j (recursively), failing on any cpr_check refuses. */
static int
check_identifiers(json_t *j)
{
	const char *key, *system, *value;
	struct why why = { 0 };
	json_t *v;
	size_t i;
	int n = 0;

	if (json_is_object(j)) {
		system = json_string_value(json_object_get(j, "system"));
		value = json_string_value(json_object_get(j, "value"));
		if (system != NULL && value != NULL &&
		    strcmp(system, "urn:oid:1.2.208.176.1.2") == 0) {
			ck_assert_msg(cpr_check(value, NULL, NULL, NULL, &why) == 0,
			    "MedCom test CPR refused: %s", why.text);
			n++;
		}
		json_object_foreach(j, key, v)
			n += check_identifiers(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			n += check_identifiers(v);
	}
	return n;
}

START_TEST(test_medcom_examples)
{
	const char *shared = testlib_shared_dir();
	char dir[4200], path[4600];
	struct dirent *de;
	json_error_t err;
	json_t *j;
	DIR *d;
	int files = 0, found = 0;

	if (shared == NULL) {
		TESTLIB_SKIP("no shared conformance data");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/medcom-examples", shared);
	if ((d = opendir(dir)) == NULL) {
		TESTLIB_SKIP("no medcom-examples");
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		j = json_load_file(path, 0, &err);
		ck_assert_msg(j != NULL, "%s: %s", path, err.text);
		found += check_identifiers(j);
		json_decref(j);
		files++;
	}
	closedir(d);
	ck_assert_int_gt(files, 0);
	/* Every patient-carrying example names its citizen by CPR. */
	ck_assert_int_ge(found, 4);
}
END_TEST

static Suite *
cpr_suite(void)
{
	Suite *s = suite_create("cpr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_century);
	tcase_add_test(tc, test_bad_dates);
	tcase_add_test(tc, test_bad_shape);
	tcase_add_test(tc, test_normalize);
	tcase_add_test(tc, test_ecpr);
	tcase_add_test(tc, test_medcom_examples);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(cpr_suite)
