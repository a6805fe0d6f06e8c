/*
 * fax and post: the rendered PDF handed to a real command (a demo script
 * that files the PDF in a folder, as `hegn demo` does with DIR/fax-out).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "err.h"
#include "testadapter.h"
#include "testlib.h"
#include "util.h"

static const char content[] =
    "{\"id\": \"ref-7\", \"kind\": \"referral\", \"to\": \"hovmand-care\","
    " \"citizen\": {\"cpr\": \"2509479989\"},"
    " \"basic\": {\"services\": [\"practical_help\"], \"start_date\": \"2026-12-01\"},"
    " \"care\": {\"description\": \"Rengøring og indkøb hver tirsdag; æøå\"}}";

static char dir[64], faxout[128], script[128], argsfile[128];

static void
setup(void)
{
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/hegn-test-paper-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(faxout, sizeof(faxout), "%s/fax-out", dir);
	snprintf(script, sizeof(script), "%s/fakefax", dir);
	snprintf(argsfile, sizeof(argsfile), "%s/args", dir);
	mkdir(faxout, 0700);
	/*
	 * Like sendfax: options, the number, then the file; records what it got
	 * and answers as HylaFAX does.  FAKEFAX_FAIL makes it fail, FAKEFAX_KILL
	 * die by a signal, FAKEFAX_SLEEP hang (in a child, as a wrapper would).
	 */
	if ((f = fopen(script, "w")) == NULL)
		abort();
	fprintf(f, "#!/bin/sh\n"
	    "printf '%%s\\n' \"$@\" > '%s'\n"
	    "if [ -n \"$FAKEFAX_FAIL\" ]; then echo 'no modem available' >&2; exit 1; fi\n"
	    "if [ -n \"$FAKEFAX_KILL\" ]; then kill -9 $$; fi\n"
	    "if [ -n \"$FAKEFAX_SLEEP\" ]; then sleep 30; fi\n"
	    "for last; do :; done\n"
	    "cp \"$last\" '%s'/ || exit 2\n"
	    "echo 'request id is 17 (group id 17) for host localhost (1 file)'\n",
	    argsfile, faxout);
	fclose(f);
	chmod(script, 0700);
}

static void
teardown(void)
{
	tw_run("rm -rf '%s'", dir);
}

static struct adapter_msg
msg(void)
{
	struct adapter_msg m;

	memset(&m, 0, sizeof(m));
	m.id = "ref-7";
	m.kind = "referral";
	m.sender = "ringsted-visitation";
	m.recipient = "hovmand-care";
	m.sender_name = "Ringsted Kommune";
	m.recipient_name = "Hovmand Care ApS";
	m.content = (const uint8_t *)content;
	m.content_len = strlen(content);
	return m;
}

/* The line of args that names the PDF, which must be gone by now. */
static void
assert_pdf_removed(void)
{
	struct buf a = { NULL, 0 };
	char *line, *save = NULL, path[256] = "";

	ck_assert_int_eq(util_read_file(argsfile, 1u << 16, &a, NULL), 0);
	for (line = strtok_r((char *)a.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		snprintf(path, sizeof(path), "%s", line);
	buf_free(&a, 0);
	ck_assert_msg(strncmp(path, "/tmp/hegn-paper-", 16) == 0, "%s", path);
	ck_assert_int_ne(access(path, F_OK), 0);
	*strrchr(path, '/') = '\0';
	ck_assert_int_ne(access(path, F_OK), 0);
}

START_TEST(test_fax)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char cmd[256], pdf[256], txt[256];

	memset(&t, 0, sizeof(t));
	snprintf(cmd, sizeof(cmd), "%s -n -d {number}", script);
	t.command = cmd;
	t.number = "+4557001234";
	ck_assert_msg(adapter_fax.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	ck_assert_int_eq(res.delivered, 1);
	ck_assert_str_eq(res.detail, "fax job 17");
	ck_assert(tw_file_has(argsfile, "-n\n-d\n+4557001234\n/tmp/hegn-paper-"));
	ck_assert(tw_file_has(argsfile, "/ref-7.pdf\n"));
	assert_pdf_removed();
	snprintf(pdf, sizeof(pdf), "%s/ref-7.pdf", faxout);
	snprintf(txt, sizeof(txt), "%s/ref-7.txt", dir);
	ck_assert_int_eq(access(pdf, R_OK), 0);
	if (tw_run("command -v pdftotext >/dev/null 2>&1") != 0) {
		TESTLIB_SKIP("pdftotext (poppler-utils) not installed");
		return;
	}
	ck_assert_int_eq(tw_run("pdftotext -enc UTF-8 %s %s", pdf, txt), 0);
	ck_assert(tw_file_has(txt, "ref-7"));
	ck_assert(tw_file_has(txt, "referral (henvisning)"));
	ck_assert(tw_file_has(txt, "ADVARSEL: FORTROLIGE PERSONOPLYSNINGER"));
	ck_assert(tw_file_has(txt, "WARNING: CONFIDENTIAL PERSONAL DATA"));
	ck_assert(tw_file_has(txt, "Hovmand Care ApS (hovmand-care)"));
	ck_assert(tw_file_has(txt, "Rengøring og indkøb hver tirsdag; æøå"));
	ck_assert(tw_file_has(txt, "æøå"));
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_post)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char cmd[256], out[256], pdf[256];

	/* A print queue stand-in: cp with the file placed explicitly. */
	snprintf(out, sizeof(out), "%s/post-out", dir);
	mkdir(out, 0700);
	memset(&t, 0, sizeof(t));
	snprintf(cmd, sizeof(cmd), "cp {file} %s/", out);
	t.command = cmd;
	ck_assert_msg(adapter_post.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	ck_assert_int_eq(res.delivered, 1);
	ck_assert_str_eq(res.detail, "cp: exit 0");
	snprintf(pdf, sizeof(pdf), "%s/ref-7.pdf", out);
	ck_assert(tw_file_has(pdf, "%PDF-"));
	/* A command that consumes (moves) the file is fine too. */
	snprintf(cmd, sizeof(cmd), "mv {file} %s/moved.pdf", out);
	ck_assert_msg(adapter_post.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	snprintf(pdf, sizeof(pdf), "%s/moved.pdf", out);
	ck_assert(tw_file_has(pdf, "%PDF-"));
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_command_fails)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	char cmd[256];

	memset(&t, 0, sizeof(t));
	snprintf(cmd, sizeof(cmd), "%s -d {number}", script);
	t.command = cmd;
	t.number = "57001234";
	setenv("FAKEFAX_FAIL", "1", 1);
	ck_assert_int_eq(adapter_fax.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	unsetenv("FAKEFAX_FAIL");
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_str_eq(res.detail, "fakefax: exit 1: no modem available");
	ck_assert_ptr_nonnull(strstr(why.text, "exited with status 1 (no modem available)"));
	assert_pdf_removed();
	/* Killed by a signal. */
	setenv("FAKEFAX_KILL", "1", 1);
	ck_assert_int_eq(adapter_fax.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	unsetenv("FAKEFAX_KILL");
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_str_eq(res.detail, "fakefax: signal 9");
	assert_pdf_removed();
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_timeout)
{
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;

	memset(&t, 0, sizeof(t));
	t.command = script;
	t.timeout_s = 1;
	setenv("FAKEFAX_SLEEP", "1", 1);
	ck_assert_int_eq(adapter_post.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	unsetenv("FAKEFAX_SLEEP");
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_str_eq(res.detail, "fakefax: stopped after 1 s");
	assert_pdf_removed();
	adapter_result_free(&res);
}
END_TEST

START_TEST(test_config_errors)
{
	static const char *const bad_numbers[] = { "-x", "12", "+45 5700 1234", "5700;rm",
		"123456789012345678901", "", NULL };
	struct adapter_msg m = msg();
	struct adapter_target t;
	struct adapter_result res;
	struct why why;
	size_t i;

	memset(&t, 0, sizeof(t));
	/* The default sendfax command needs a number. */
	ck_assert_int_eq(adapter_fax.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "fax number"));
	t.command = "true -d {number}";
	for (i = 0; bad_numbers[i] != NULL; i++) {
		t.number = bad_numbers[i];
		ck_assert_int_eq(adapter_fax.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	}
	t.command = "/nonexistent/hegn-sendfax";
	ck_assert_int_eq(adapter_fax.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	ck_assert_str_eq(res.detail, "hegn-sendfax: not started");
	t.command = "  ";
	ck_assert_int_eq(adapter_post.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	/* Nothing to print. */
	t.command = "true";
	m.content = NULL;
	m.content_len = 0;
	ck_assert_int_eq(adapter_post.deliver(&m, &t, &res, &why), HEGN_ERR_INVALID);
	adapter_result_free(&res);
}
END_TEST

static Suite *
paper_suite(void)
{
	Suite *s = suite_create("paper");
	TCase *tc = tcase_create("command");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fax);
	tcase_add_test(tc, test_post);
	tcase_add_test(tc, test_command_fails);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_config_errors);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(paper_suite)
