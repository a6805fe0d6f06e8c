#include "config.h"

#include <stdint.h>
#include <unistd.h>

#include "err.h"
#include "testlib.h"
#include "util.h"

START_TEST(test_rfc3339)
{
	time_t t;

	ck_assert_int_eq(util_parse_rfc3339("2026-11-27T09:46:00Z", &t), 0);
	ck_assert_int_eq((long long)t, 1795772760LL);
	ck_assert_int_eq(util_parse_rfc3339("2026-11-27T10:46:00+01:00", &t), 0);
	ck_assert_int_eq((long long)t, 1795772760LL);
	ck_assert_int_eq(util_parse_rfc3339("2026-11-27T09:46:00.123Z", &t), 0);
	ck_assert_int_eq((long long)t, 1795772760LL);
	/* A time without a zone is ambiguous and refused. */
	ck_assert_int_eq(util_parse_rfc3339("2026-11-27T09:46:00", &t), HEGN_ERR_INVALID);
	ck_assert_int_eq(util_parse_rfc3339("2026-02-30T09:46:00Z", &t), HEGN_ERR_INVALID);
	ck_assert_int_eq(util_parse_rfc3339("2026-11-27T24:00:00Z", &t), HEGN_ERR_INVALID);
	ck_assert_int_eq(util_parse_rfc3339("2026-11-27T09:46:00+1:00", &t), HEGN_ERR_INVALID);
	ck_assert_int_eq(util_parse_rfc3339("", &t), HEGN_ERR_INVALID);
}
END_TEST

START_TEST(test_dates)
{
	int y, m, d;

	ck_assert_int_eq(util_parse_date("2024-02-29", &y, &m, &d), 0);
	ck_assert_int_eq(util_parse_date("2023-02-29", &y, &m, &d), HEGN_ERR_INVALID);
	ck_assert_int_eq(util_parse_date("1900-02-29", &y, &m, &d), HEGN_ERR_INVALID);
	ck_assert_int_eq(util_parse_date("2000-02-29", &y, &m, &d), 0);
	ck_assert_int_eq(util_parse_date("2000-13-01", &y, &m, &d), HEGN_ERR_INVALID);
	ck_assert_int_eq(util_parse_date("2000-1-01", &y, &m, &d), HEGN_ERR_INVALID);
}
END_TEST

START_TEST(test_ids)
{
	char uuid[37];

	util_uuid(uuid);
	ck_assert_int_eq(strlen(uuid), 36);
	ck_assert(util_valid_id(uuid));
	ck_assert_int_eq(uuid[14], '4');
	ck_assert_ptr_nonnull(strchr("89ab", uuid[19]));

	/* Version 7: the time first, big-endian, so later ids sort after earlier ones. */
	util_uuid7(0x0123456789abLL, uuid);
	ck_assert_int_eq(strlen(uuid), 36);
	ck_assert(util_valid_id(uuid));
	ck_assert_int_eq(strncmp(uuid, "01234567-89ab-7", 15), 0);
	ck_assert_ptr_nonnull(strchr("89ab", uuid[19]));
	{
		char a[37], b[37], c[37];

		util_uuid7(1795772761000LL, a);
		util_uuid7(1795772761000LL, b);
		util_uuid7(1795772761001LL, c);
		ck_assert_str_ne(a, b);
		ck_assert_int_eq(strncmp(a, b, 13), 0);
		ck_assert_int_lt(strcmp(a, c), 0);
		ck_assert_int_lt(strcmp(b, c), 0);
		util_uuid7(-5, a);
		ck_assert_int_eq(strncmp(a, "00000000-0000-7", 15), 0);
	}
	ck_assert(util_valid_id("msg-1.a:b_c"));
	ck_assert(!util_valid_id(""));
	ck_assert(!util_valid_id("-leading"));
	ck_assert(!util_valid_id("has space"));
	ck_assert(!util_valid_id("../etc/passwd"));
	ck_assert(!util_valid_id("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}
END_TEST

START_TEST(test_sha256)
{
	char hex[65];

	util_sha256_hex("abc", 3, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_files)
{
	char dir[] = "/tmp/hegn-test-util-XXXXXX", *path;
	struct buf b = { 0 };
	struct why why = { 0 };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	path = malloc(strlen(dir) + 16);
	sprintf(path, "%s/f", dir);
	ck_assert_int_eq(util_write_file(path, "hello", 5, 0600, &why), 0);
	ck_assert_int_eq(util_read_file(path, 100, &b, &why), 0);
	ck_assert_int_eq(b.len, 5);
	ck_assert_mem_eq(b.data, "hello", 5);
	buf_free(&b, 1);
	ck_assert_int_eq(util_read_file(path, 4, &b, &why), HEGN_ERR_TOO_LARGE);
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(util_read_file("/nonexistent/x", 4, &b, &why), HEGN_ERR_IO);
	ck_assert(strstr(why.text, "/nonexistent/x") != NULL);
	unlink(path);
	rmdir(dir);
	free(path);
}
END_TEST

START_TEST(test_errors)
{
	struct why why = { 0 };

	ck_assert_int_eq(err_http_status(HEGN_ERR_INVALID), 400);
	ck_assert_int_eq(err_http_status(HEGN_ERR_NOT_FOUND), 404);
	ck_assert_int_eq(err_http_status(HEGN_ERR_CONFLICT), 409);
	ck_assert_int_eq(err_http_status(HEGN_ERR_INTERNAL), 500);
	ck_assert_int_eq(err_http_status(-999), 500);
	ck_assert_str_eq(err_name(HEGN_ERR_DENIED), "denied");
	ck_assert_int_eq(why_set(&why, HEGN_ERR_INVALID, "citizen.cpr: %s", "bad date"), HEGN_ERR_INVALID);
	why_prefix(&why, HEGN_ERR_INTERNAL, "message");
	ck_assert_str_eq(why.text, "message: citizen.cpr: bad date");
	ck_assert_int_eq(why.code, HEGN_ERR_INVALID);
	ck_assert(err_is_retryable(HEGN_ERR_BUSY));
	ck_assert(!err_is_retryable(HEGN_ERR_INVALID));
}
END_TEST

static Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_rfc3339);
	tcase_add_test(tc, test_dates);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_sha256);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(util_suite)
