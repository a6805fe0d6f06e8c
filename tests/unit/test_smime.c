/*
 * smime-mail against a real SMTP server on loopback (aiosmtpd through
 * tests/integration/smtp_receiver.py), the mail decrypted and verified with
 * stock openssl cms.
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
#include "testadapter.h"
#include "testlib.h"
#include "util.h"

static struct tworld w;
static pid_t tls_server = -1, plain_server = -1;
static int tls_port, plain_port;
static struct buf sealed;
static const char content[] =
    "{\"kind\":\"referral\",\"to\":\"hovmand-care\",\"care\":{\"description\":\"bad og p\xc3\xa5kl\xc3\xa6\x64ning\"}}";

static pid_t
start(const char *py, const char *name, int tls, int *port)
{
	char script[512], dir[128], pf[128], cert[128], key[128];
	char *argv[12];
	int i = 0;

	snprintf(script, sizeof(script), "%s/tests/integration/smtp_receiver.py", tw_srcdir());
	snprintf(dir, sizeof(dir), "%s/%s", w.dir, name);
	snprintf(pf, sizeof(pf), "%s/%s.port", w.dir, name);
	snprintf(cert, sizeof(cert), "%s/server.pem", w.dir);
	snprintf(key, sizeof(key), "%s/server.key", w.dir);
	mkdir(dir, 0700);
	argv[i++] = (char *)py;
	argv[i++] = script;
	argv[i++] = "--dir";
	argv[i++] = dir;
	argv[i++] = "--port-file";
	argv[i++] = pf;
	if (tls) {
		argv[i++] = "--cert";
		argv[i++] = cert;
		argv[i++] = "--key";
		argv[i++] = key;
	}
	argv[i] = NULL;
	return tw_spawn(argv, pf, port);
}

static void
setup(void)
{
	const char *py = tw_python("aiosmtpd");

	tw_setup(&w, "smime");
	tw_seal(&w, ENVELOPE_AES256_GCM, content, &sealed);
	if (py == NULL)
		return;
	tls_server = start(py, "tls", 1, &tls_port);
	plain_server = start(py, "plain", 0, &plain_port);
}

static void
teardown(void)
{
	tw_stop(tls_server);
	tw_stop(plain_server);
	buf_free(&sealed, 0);
	tw_teardown(&w);
}

#define NEED_SERVERS()                                                           \
	do {                                                                     \
		if (tls_server <= 0 || plain_server <= 0) {                      \
			TESTLIB_SKIP("python3-aiosmtpd not available");          \
			return;                                                  \
		}                                                                \
	} while (0)

static int
mails(const char *name)
{
	DIR *d = opendir(tw_path(&w, name));
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);

		if (l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0)
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

static struct adapter_target
target(int port)
{
	static char url[64], ca[256];
	struct adapter_target t;

	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	snprintf(ca, sizeof(ca), "%s", tw_path(&w, "ca.pem"));
	memset(&t, 0, sizeof(t));
	t.smtp_url = url;
	t.ca = ca;
	t.mail_to = "care@hovmand.example";
	t.mail_from = "hegn@ringsted.example";
	return t;
}

/* Decrypt DIR/eml with stock openssl as the recipient, verify, compare with content. */
static void
assert_opens(const char *eml)
{
	char out[256];

	snprintf(out, sizeof(out), "%s", tw_path(&w, "content.out"));
	ck_assert_int_eq(tw_run("openssl cms -decrypt -in %s -recip %s -inkey %s "
	    "-out %s >/dev/null 2>&1", eml, tw_path(&w, "rcpt.pem"), tw_path(&w, "rcpt.key"),
	    tw_path(&w, "inner.der")), 0);
	ck_assert_int_eq(tw_run("openssl cms -verify -inform DER -in %s -CAfile %s -out %s "
	    ">/dev/null 2>&1", tw_path(&w, "inner.der"), tw_path(&w, "ca.pem"), out), 0);
	ck_assert(tw_file_has(out, content));
	/* And the wrong key cannot open it. */
	ck_assert_int_ne(tw_run("openssl cms -decrypt -in %s -recip %s -inkey %s "
	    "-out /dev/null >/dev/null 2>&1", eml, tw_path(&w, "sender.pem"),
	    tw_path(&w, "sender.key")), 0);
}

START_TEST(test_starttls)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct buf mail = { NULL, 0 };
	struct why why;
	char eml[64], meta[64], *line, *save = NULL;
	int before;

	NEED_SERVERS();
	t = target(tls_port);
	before = mails("tls");
	ck_assert_msg(adapter_smime.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	ck_assert_int_eq(res.delivered, 1);
	ck_assert_msg(strncmp(res.detail, "SMTP 250", 8) == 0, "%s", res.detail);
	ck_assert_ptr_nonnull(strstr(res.detail, "queued as"));
	ck_assert_int_eq(mails("tls"), before + 1);
	snprintf(meta, sizeof(meta), "tls/%d.meta", before + 1);
	snprintf(eml, sizeof(eml), "tls/%d.eml", before + 1);
	ck_assert(tw_file_has(tw_path(&w, meta), "tls=1"));
	ck_assert(tw_file_has(tw_path(&w, meta), "to=care@hovmand.example"));
	ck_assert(tw_file_has(tw_path(&w, meta), "from=hegn@ringsted.example"));
	ck_assert(tw_file_has(tw_path(&w, eml), "Subject: hegn message msg-1 (referral)\r\n"));
	ck_assert(tw_file_has(tw_path(&w, eml), "Content-Type: application/pkcs7-mime; "
	    "smime-type=authEnveloped-data; name=smime.p7m\r\n"));
	ck_assert(tw_file_has(tw_path(&w, eml), "Content-Transfer-Encoding: base64\r\n"));
	ck_assert(tw_file_has(tw_path(&w, eml), "Content-Disposition: attachment; filename=smime.p7m"));
	ck_assert(tw_file_has(tw_path(&w, eml), "MIME-Version: 1.0\r\n"));
	ck_assert(tw_file_has(tw_path(&w, eml), "Message-ID: <hegn-"));
	ck_assert(tw_file_has(tw_path(&w, eml), "Date: "));
	/* Nothing of the content travels in clear. */
	ck_assert(!tw_file_has(tw_path(&w, eml), "description"));
	/* Base64 body lines are at most 76 characters. */
	ck_assert_int_eq(util_read_file(tw_path(&w, eml), 1u << 24, &mail, &why), 0);
	ck_assert_ptr_nonnull(strstr((char *)mail.data, "\r\n\r\n"));
	for (line = strtok_r(strstr((char *)mail.data, "\r\n\r\n"), "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		ck_assert_uint_le(strlen(line), 77);
	buf_free(&mail, 0);
	assert_opens(tw_path(&w, eml));
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_enveloped_cbc)
{
	struct buf cbc = { NULL, 0 };
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char eml[64];
	int before;

	NEED_SERVERS();
	tw_seal(&w, ENVELOPE_AES256_CBC, content, &cbc);
	m.sealed = cbc.data;
	m.sealed_len = cbc.len;
	t = target(tls_port);
	before = mails("tls");
	ck_assert_msg(adapter_smime.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	snprintf(eml, sizeof(eml), "tls/%d.eml", before + 1);
	ck_assert(tw_file_has(tw_path(&w, eml), "smime-type=enveloped-data;"));
	assert_opens(tw_path(&w, eml));
	adapter_result_free(&res);
	buf_free(&cbc, 0);
}
END_TEST

START_TEST(test_no_starttls_refused)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	int before;

	NEED_SERVERS();
	t = target(plain_port);
	before = mails("plain");
	ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "STARTTLS"));
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_int_eq(mails("plain"), before);
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_insecure_mode)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char meta[64], eml[64];
	int before;

	NEED_SERVERS();
	t = target(plain_port);
	t.smtp_insecure = 1;
	before = mails("plain");
	ck_assert_msg(adapter_smime.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	ck_assert_int_eq(res.delivered, 1);
	ck_assert_int_eq(mails("plain"), before + 1);
	snprintf(meta, sizeof(meta), "plain/%d.meta", before + 1);
	snprintf(eml, sizeof(eml), "plain/%d.eml", before + 1);
	ck_assert(tw_file_has(tw_path(&w, meta), "tls=0"));
	assert_opens(tw_path(&w, eml));
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

	NEED_SERVERS();
	t = target(tls_port);
	snprintf(ca, sizeof(ca), "%s", tw_path(&w, "other-ca.pem"));
	t.ca = ca;
	before = mails("tls");
	ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_CERT);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_int_eq(mails("tls"), before);
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_recipient_refused)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;

	NEED_SERVERS();
	t = target(tls_port);
	t.mail_to = "reject@hovmand.example";
	ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_UNPROCESSABLE);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_msg(strstr(res.detail, "550") != NULL, "%s", res.detail);
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_bad_addresses)
{
	static const char *const bad[] = { "care@hovmand.example\r\nBcc: x@y.example",
		"care", "@hovmand.example", "care@", "a@b@c", "care@hov mand.example",
		"<care@hovmand.example>", ".care@hovmand.example", "care@hovmand.example.", NULL };
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		t = target(tls_port);
		t.mail_to = bad[i];
		ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
		t = target(tls_port);
		t.mail_from = bad[i];
		ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	}
	t = target(tls_port);
	t.smtp_url = "http://127.0.0.1:25";
	ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	t.smtp_url = NULL;
	ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	m.sealed = (const uint8_t *)content;
	m.sealed_len = sizeof(content) - 1;
	t = target(tls_port);
	ck_assert_int_eq(adapter_smime.deliver(&m, &t, &res, &why), HEGN_ERR_INVALID);
	adapter_result_free(&res);
}
END_TEST

static Suite *
smime_suite(void)
{
	Suite *s = suite_create("smime");
	TCase *tc = tcase_create("loopback");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_starttls);
	tcase_add_test(tc, test_enveloped_cbc);
	tcase_add_test(tc, test_no_starttls_refused);
	tcase_add_test(tc, test_insecure_mode);
	tcase_add_test(tc, test_wrong_server_ca);
	tcase_add_test(tc, test_recipient_refused);
	tcase_add_test(tc, test_bad_addresses);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(smime_suite)
