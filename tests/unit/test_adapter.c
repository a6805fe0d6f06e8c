#include "config.h"

#include <string.h>

#include "adapter.h"
#include "err.h"
#include "testlib.h"

/* A minimal sealed-looking message is not needed by pull. */
static struct adapter_msg
msg_ok(void)
{
	struct adapter_msg m;

	memset(&m, 0, sizeof(m));
	m.id = "msg-1";
	m.kind = "referral";
	m.sender = "ringsted-visitation";
	m.recipient = "hovmand-care";
	return m;
}

START_TEST(test_registry)
{
	static const char *const names[] = { "pull", "push", "smime-mail", "folder", "fax",
		"post", NULL };
	size_t i, n = 0;

	for (i = 0; names[i] != NULL; i++) {
		const struct adapter *a = adapter_find(names[i]);

		ck_assert_ptr_nonnull(a);
		ck_assert_str_eq(a->name, names[i]);
		ck_assert_ptr_nonnull(a->deliver);
	}
	for (i = 0; adapters[i] != NULL; i++)
		n++;
	ck_assert_uint_eq(n, 6);
	ck_assert_ptr_null(adapter_find("carrier-pigeon"));
	ck_assert_ptr_null(adapter_find(""));
	ck_assert_ptr_null(adapter_find(NULL));
	ck_assert_ptr_null(adapter_find("PUSH"));
}
END_TEST

START_TEST(test_electronic)
{
	ck_assert_int_eq(adapter_find("pull")->electronic, 1);
	ck_assert_int_eq(adapter_find("push")->electronic, 1);
	ck_assert_int_eq(adapter_find("smime-mail")->electronic, 1);
	ck_assert_int_eq(adapter_find("folder")->electronic, 1);
	ck_assert_int_eq(adapter_find("fax")->electronic, 0);
	ck_assert_int_eq(adapter_find("post")->electronic, 0);
	/* Only the folder collects receipts of its own. */
	ck_assert_ptr_nonnull(adapter_find("folder")->receipts);
	ck_assert_ptr_null(adapter_find("push")->receipts);
	ck_assert_ptr_null(adapter_find("pull")->receipts);
}
END_TEST

START_TEST(test_pull)
{
	struct adapter_msg m = msg_ok();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;

	memset(&t, 0, sizeof(t));
	memset(&res, 0xa5, sizeof(res));
	res.receipt.data = NULL;
	ck_assert_int_eq(adapter_pull.deliver(&m, &t, &res, &why), 0);
	/* Ready, not handed over: the party has not fetched it yet. */
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_ptr_null(res.receipt.data);
	ck_assert_str_eq(res.detail, "ready in the inbox");
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_check_msg)
{
	struct adapter_msg m = msg_ok();
	struct adapter_result res;
	struct why why;
	static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };

	ck_assert_int_eq(adapter_check_msg(&m, 0, &why), 0);
	ck_assert_int_eq(adapter_check_msg(NULL, 0, &why), HEGN_ERR_INVALID);
	m.id = "../etc/passwd";
	ck_assert_int_eq(adapter_check_msg(&m, 0, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(adapter_pull.deliver(&m, NULL, &res, &why), HEGN_ERR_INVALID);
	m = msg_ok();
	m.kind = "referral\r\nBcc: x@y";
	ck_assert_int_eq(adapter_check_msg(&m, 0, &why), HEGN_ERR_INVALID);
	m = msg_ok();
	m.recipient = "Hovmand Care";
	ck_assert_int_eq(adapter_check_msg(&m, 0, &why), HEGN_ERR_INVALID);
	m = msg_ok();
	m.sender = NULL;
	ck_assert_int_eq(adapter_check_msg(&m, 0, &why), HEGN_ERR_INVALID);
	/* A channel that sends the sealed DER refuses anything not enveloped. */
	m = msg_ok();
	ck_assert_int_eq(adapter_check_msg(&m, 1, &why), HEGN_ERR_INVALID);
	m.sealed = junk;
	m.sealed_len = sizeof(junk);
	ck_assert_int_eq(adapter_check_msg(&m, 1, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "EnvelopedData"));
	ck_assert_ptr_null(adapter_smime_type(junk, sizeof(junk)));
	ck_assert_ptr_null(adapter_smime_type(NULL, 0));
}
END_TEST

static Suite *
adapter_suite(void)
{
	Suite *s = suite_create("adapter");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_registry);
	tcase_add_test(tc, test_electronic);
	tcase_add_test(tc, test_pull);
	tcase_add_test(tc, test_check_msg);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(adapter_suite)
