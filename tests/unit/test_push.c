/*
 * push against a real HTTPS receiver on loopback (tests/integration/
 * push_receiver.py) that requires a client certificate.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "envelope.h"
#include "err.h"
#include "pki.h"
#include "receipt.h"
#include "testadapter.h"
#include "testlib.h"
#include "util.h"

static struct tworld w;
static pid_t receiver = -1;
static int port;
static struct buf sealed;
static const char content[] = "{\"kind\":\"referral\",\"to\":\"hovmand-care\"}";

static void
setup(void)
{
	const char *py = tw_python(NULL);
	char script[512], recv[128], pf[128], cert[128], key[128], ca[128], scert[128], skey[128];

	tw_setup(&w, "push");
	tw_seal(&w, ENVELOPE_AES256_GCM, content, &sealed);
	if (py == NULL)
		return;
	snprintf(script, sizeof(script), "%s/tests/integration/push_receiver.py", tw_srcdir());
	snprintf(recv, sizeof(recv), "%s/recv", w.dir);
	snprintf(pf, sizeof(pf), "%s/port", w.dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", w.dir);
	snprintf(key, sizeof(key), "%s/server.key", w.dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", w.dir);
	snprintf(scert, sizeof(scert), "%s/rcpt.pem", w.dir);
	snprintf(skey, sizeof(skey), "%s/rcpt.key", w.dir);
	mkdir(recv, 0700);
	{
		char *argv[] = { (char *)py, script, "--cert", cert, "--key", key, "--ca", ca,
			"--dir", recv, "--port-file", pf, "--sign-cert", scert, "--sign-key", skey,
			NULL };

		receiver = tw_spawn(argv, pf, &port);
	}
}

static void
teardown(void)
{
	tw_stop(receiver);
	buf_free(&sealed, 0);
	tw_teardown(&w);
}

/* Receiver up, or a visible skip. */
#define NEED_RECEIVER()                                                          \
	do {                                                                     \
		if (receiver <= 0) {                                             \
			TESTLIB_SKIP("python3 receiver not available");          \
			return;                                                  \
		}                                                                \
	} while (0)

static int
received(void)
{
	DIR *d = opendir(tw_path(&w, "recv"));
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);

		if (l > 5 && strcmp(e->d_name + l - 5, ".body") == 0)
			n++;
	}
	closedir(d);
	return n;
}

static struct adapter_msg
msg(void)
{
	struct adapter_msg m;

	memset(&m, 0, sizeof(m));
	m.id = "msg-1";
	m.kind = "referral";
	m.sender = "ringsted-visitation";
	m.recipient = "hovmand-care";
	m.sealed = sealed.data;
	m.sealed_len = sealed.len;
	return m;
}

static char url_buf[128];

static struct adapter_target
target(const char *path)
{
	static char cert[256], key[256], ca[256];
	struct adapter_target t;

	snprintf(cert, sizeof(cert), "%s", tw_path(&w, "client.pem"));
	snprintf(key, sizeof(key), "%s", tw_path(&w, "client.key"));
	snprintf(ca, sizeof(ca), "%s", tw_path(&w, "ca.pem"));
	snprintf(url_buf, sizeof(url_buf), "https://127.0.0.1:%d%s", port, path);
	memset(&t, 0, sizeof(t));
	t.url = url_buf;
	t.cert = cert;
	t.key = key;
	t.ca = ca;
	return t;
}

START_TEST(test_delivered)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct buf got = { NULL, 0 };
	struct why why;
	char name[64];
	int before;

	NEED_RECEIVER();
	t = target("/ok");
	before = received();
	ck_assert_msg(adapter_push.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	ck_assert_int_eq(res.delivered, 1);
	ck_assert_str_eq(res.detail, "HTTP 202");
	ck_assert_ptr_null(res.receipt.data);
	ck_assert_int_eq(received(), before + 1);
	snprintf(name, sizeof(name), "recv/%d.body", before + 1);
	ck_assert_int_eq(util_read_file(tw_path(&w, name), 1u << 24, &got, &why), 0);
	ck_assert_uint_eq(got.len, sealed.len);
	ck_assert_mem_eq(got.data, sealed.data, sealed.len);
	buf_free(&got, 0);
	/* We presented our client certificate, and said what the body is. */
	snprintf(name, sizeof(name), "recv/%d.peer", before + 1);
	ck_assert(tw_file_has(tw_path(&w, name), "hegn-gateway"));
	snprintf(name, sizeof(name), "recv/%d.headers", before + 1);
	ck_assert(tw_file_has(tw_path(&w, name),
	    "Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data"));
	ck_assert(tw_file_has(tw_path(&w, name), "X-Hegn-Message-Id: msg-1"));
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_cbc_type)
{
	struct buf cbc = { NULL, 0 };
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char name[64];
	int before;

	NEED_RECEIVER();
	tw_seal(&w, ENVELOPE_AES256_CBC, content, &cbc);
	m.sealed = cbc.data;
	m.sealed_len = cbc.len;
	t = target("/ok");
	before = received();
	ck_assert_msg(adapter_push.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	snprintf(name, sizeof(name), "recv/%d.headers", before + 1);
	ck_assert(tw_file_has(tw_path(&w, name), "smime-type=enveloped-data"));
	adapter_result_free(&res);
	buf_free(&cbc, 0);
}
END_TEST

START_TEST(test_receipt)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct envelope_signed *sd = NULL;
	struct pki *p = NULL;
	struct receipt rc;
	struct why why;
	const uint8_t *c;
	char hex[65];
	size_t clen;

	NEED_RECEIVER();
	t = target("/receipt");
	ck_assert_msg(adapter_push.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	ck_assert_int_eq(res.delivered, 1);
	ck_assert_str_eq(res.detail, "HTTP 202 with receipt");
	ck_assert_ptr_nonnull(res.receipt.data);
	/* The receipt is the party's signature over what it received, byte for byte. */
	ck_assert_int_eq(pki_load(tw_path(&w, "ca.pem"), NULL, NULL, 0, &p, &why), 0);
	ck_assert_msg(envelope_verify(p, res.receipt.data, res.receipt.len, 0, &sd, &why) == 0,
	    "%s", why.text);
	c = envelope_signed_content(sd, &clen);
	ck_assert_int_eq(receipt_parse(c, clen, &rc, &why), 0);
	ck_assert_str_eq(rc.message_id, "msg-1");
	util_sha256_hex(sealed.data, sealed.len, hex);
	ck_assert_str_eq(rc.sha256, hex);
	ck_assert_int_eq(rc.accepted, 1);
	envelope_signed_free(sd);
	pki_free(p);
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_server_error)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;

	NEED_RECEIVER();
	t = target("/fail");
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_str_eq(res.detail, "HTTP 500");
	ck_assert_ptr_nonnull(strstr(why.text, "HTTP 500"));
	ck_assert(err_is_retryable(why.code));
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_refused)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;

	NEED_RECEIVER();
	t = target("/refuse");
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_UNPROCESSABLE);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_str_eq(res.detail, "HTTP 400");
	ck_assert(!err_is_retryable(why.code));
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_client_cert_required)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char cert[256], key[256];
	int before;

	NEED_RECEIVER();
	before = received();
	/* A certificate from a CA the receiver does not trust is turned away. */
	t = target("/ok");
	snprintf(cert, sizeof(cert), "%s", tw_path(&w, "stranger.pem"));
	snprintf(key, sizeof(key), "%s", tw_path(&w, "stranger.key"));
	t.cert = cert;
	t.key = key;
	ck_assert_int_ne(adapter_push.deliver(&m, &t, &res, &why), 0);
	ck_assert_int_eq(res.delivered, 0);
	adapter_result_free(&res);
	/* And so is a client with none (stock curl, since the adapter refuses to try). */
	ck_assert_int_ne(tw_run("curl -sf --cacert %s --data-binary x https://127.0.0.1:%d/ok "
	    ">/dev/null 2>&1", tw_path(&w, "ca.pem"), port), 0);
	ck_assert_int_eq(received(), before);
	t = target("/ok");
	t.cert = NULL;
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_wrong_server_ca)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char ca[256];
	int before;

	NEED_RECEIVER();
	before = received();
	t = target("/ok");
	snprintf(ca, sizeof(ca), "%s", tw_path(&w, "other-ca.pem"));
	t.ca = ca;
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_CERT);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_int_eq(received(), before);
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_timeout)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;

	NEED_RECEIVER();
	t = target("/slow");
	t.timeout_s = 1;
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_str_eq(res.detail, "timed out after 1 s");
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_bad_config)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	static const uint8_t clear[] = "{\"not\":\"sealed\"}";

	t = target("/ok");
	t.url = "http://127.0.0.1:1/ok";
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	t.url = NULL;
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	ck_assert_int_eq(adapter_push.deliver(&m, NULL, &res, &why), HEGN_ERR_CONFIG);
	/* Never clear content over the wire. */
	t = target("/ok");
	m.sealed = clear;
	m.sealed_len = sizeof(clear) - 1;
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_INVALID);
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_unreachable)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;

	t = target("/ok");
	/* Port 1 on loopback: nobody listens there in a test environment. */
	t.url = "https://127.0.0.1:1/ok";
	ck_assert_int_eq(adapter_push.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert(res.detail[0] != '\0');
	adapter_result_free(&res);
}
END_TEST

static Suite *
push_suite(void)
{
	Suite *s = suite_create("push");
	TCase *tc = tcase_create("loopback");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_delivered);
	tcase_add_test(tc, test_cbc_type);
	tcase_add_test(tc, test_receipt);
	tcase_add_test(tc, test_server_error);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_client_cert_required);
	tcase_add_test(tc, test_wrong_server_ca);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_bad_config);
	tcase_add_test(tc, test_unreachable);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(push_suite)
