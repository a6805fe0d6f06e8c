/*
 * render: the PDF for fax and post, read back with pdftotext (poppler-utils).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "render.h"
#include "testadapter.h"
#include "testlib.h"
#include "util.h"

static const char referral[] =
    "{\"id\": \"ref-2026-0042\", \"kind\": \"referral\", \"from\": \"ringsted-visitation\","
    " \"to\": \"ringsted-homecare\","
    " \"citizen\": {\"cpr\": \"2509479989\", \"name\": \"Karen Ærø Sørensen\"},"
    " \"deadline\": \"2026-11-28T12:00:00+01:00\","
    " \"basic\": {\"services\": [\"practical_help\", \"personal_care\"],"
    "   \"start_date\": \"2026-12-01\", \"address\": \"Søgade 3, 4100 Ringsted\","
    "   \"visits_per_week\": 3},"
    " \"care\": {\"description\": \"Hjælp til bad og påklædning. Test af tegn: æøå ÆØÅ é €.\\n"
    "Ny linje: morgenbesøg før kl. 9.\"},"
    " \"health\": {\"diagnoses\": [\"Type 2-diabetes\"], \"medication\": [\"Metformin 500 mg\"]},"
    " \"attachments\": [{\"filename\": \"epikrise.pdf\", \"content_type\": \"application/pdf\","
    "   \"class\": \"health\", \"data\": \"QkFTRTY0UEFZTE9BRA==\"}]}";

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/hegn-test-render-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
}

static void
teardown(void)
{
	tw_run("rm -rf '%s'", dir);
}

static int
have_pdftotext(void)
{
	return tw_run("command -v pdftotext >/dev/null 2>&1") == 0;
}

/* Render content, write it out, and convert it to text; returns the text file. */
static const char *
render_to_text(const char *content, const char *name)
{
	static char txt[256];
	struct render_doc doc;
	struct buf pdf = { NULL, 0 };
	struct why why;
	char path[256];

	memset(&doc, 0, sizeof(doc));
	doc.id = "ref-2026-0042";
	doc.kind = "referral";
	doc.sender = "ringsted-visitation";
	doc.recipient = "ringsted-homecare";
	doc.sender_name = "Ringsted Kommune, Visitationen";
	doc.recipient_name = "Ringsted Hjemmepleje";
	doc.content = (const uint8_t *)content;
	doc.content_len = strlen(content);
	doc.when = 1796112000; /* 2026-12-01 08:00 UTC */
	ck_assert_msg(render_pdf(&doc, &pdf, &why) == 0, "%s", why.text);
	ck_assert_uint_gt(pdf.len, 1000);
	ck_assert_mem_eq(pdf.data, "%PDF-", 5);
	snprintf(path, sizeof(path), "%s/%s.pdf", dir, name);
	snprintf(txt, sizeof(txt), "%s/%s.txt", dir, name);
	ck_assert_int_eq(util_write_file(path, pdf.data, pdf.len, 0600, NULL), 0);
	buf_free(&pdf, 1);
	ck_assert_int_eq(tw_run("pdftotext -enc UTF-8 %s %s", path, txt), 0);
	return txt;
}

START_TEST(test_referral)
{
	const char *txt;

	if (!have_pdftotext()) {
		TESTLIB_SKIP("pdftotext (poppler-utils) not installed");
		return;
	}
	txt = render_to_text(referral, "referral");
	/* The cover sheet. */
	ck_assert(tw_file_has(txt, "Fortrolig besked"));
	ck_assert(tw_file_has(txt, "ref-2026-0042"));
	ck_assert(tw_file_has(txt, "referral (henvisning)"));
	ck_assert(tw_file_has(txt, "Ringsted Kommune, Visitationen (ringsted-visitation)"));
	ck_assert(tw_file_has(txt, "Ringsted Hjemmepleje (ringsted-homecare)"));
	ck_assert(tw_file_has(txt, "2026-12-01 08:00 UTC"));
	ck_assert(tw_file_has(txt, "ADVARSEL: FORTROLIGE PERSONOPLYSNINGER"));
	ck_assert(tw_file_has(txt, "WARNING: CONFIDENTIAL PERSONAL DATA"));
	ck_assert(tw_file_has(txt, "databeskyttelsesforordningen"));
	/* Danish letters survive the trip through the font's encoding. */
	ck_assert(tw_file_has(txt, "æøå ÆØÅ é €"));
	ck_assert(tw_file_has(txt, "Karen Ærø Sørensen"));
	ck_assert(tw_file_has(txt, "Søgade 3, 4100 Ringsted"));
	/* The content by class, with labels. */
	ck_assert(tw_file_has(txt, "Borger / Citizen"));
	ck_assert(tw_file_has(txt, "2509479989"));
	ck_assert(tw_file_has(txt, "Pleje og omsorg / Care"));
	ck_assert(tw_file_has(txt, "Hjælp til bad og påklædning"));
	ck_assert(tw_file_has(txt, "morgenbesøg før kl. 9."));
	ck_assert(tw_file_has(txt, "Helbredsoplysninger / Health"));
	ck_assert(tw_file_has(txt, "Metformin 500 mg"));
	ck_assert(tw_file_has(txt, "practical_help"));
	ck_assert(tw_file_has(txt, "Besøg pr. uge / Visits per week"));
	ck_assert(tw_file_has(txt, "2026-11-28T12:00:00+01:00"));
	/* Attachments listed, never printed. */
	ck_assert(tw_file_has(txt, "epikrise.pdf (application/pdf, health, 13 bytes)"));
	ck_assert(!tw_file_has(txt, "QkFTRTY0UEFZTE9BRA"));
	ck_assert(tw_file_has(txt, "side/page 2"));
}
END_TEST

START_TEST(test_long_wraps_and_breaks)
{
	struct buf big = { NULL, 0 };
	char *json, *p;
	const char *txt;
	size_t i, n = 9000;

	if (!have_pdftotext()) {
		TESTLIB_SKIP("pdftotext (poppler-utils) not installed");
		return;
	}
	/* Notes of 9000 characters in words, an unbreakable run, and many list items. */
	json = malloc(n + 4096);
	p = json + sprintf(json, "{\"kind\":\"observation\",\"care\":{\"text\":\"");
	for (i = 0; i + 12 < n; i += 12)
		p += sprintf(p, "ord%04zu sø ", i / 12);
	p += sprintf(p, "SLUTMÆRKE\",\"notes\":\"");
	for (i = 0; i < 300; i++)
		*p++ = 'x';
	p += sprintf(p, "\"},\"health\":{\"allergies\":[");
	for (i = 0; i < 60; i++)
		p += sprintf(p, "%s\"allergi %zu\"", i ? "," : "", i);
	sprintf(p, "]}}");
	txt = render_to_text(json, "long");
	free(json);
	ck_assert(tw_file_has(txt, "ord0000 sø"));
	ck_assert(tw_file_has(txt, "SLUTMÆRKE"));
	ck_assert(tw_file_has(txt, "allergi 59"));
	ck_assert(tw_file_has(txt, "side/page 4"));
	/* pdftotext breaks lines where the PDF does: nothing ran off the page. */
	ck_assert_int_eq(util_read_file(txt, 1u << 24, &big, NULL), 0);
	for (p = strtok((char *)big.data, "\n"); p != NULL; p = strtok(NULL, "\n"))
		ck_assert_uint_lt(strlen(p), 160);
	buf_free(&big, 0);
}
END_TEST

START_TEST(test_odd_content)
{
	const char *txt;

	if (!have_pdftotext()) {
		TESTLIB_SKIP("pdftotext (poppler-utils) not installed");
		return;
	}
	/* Not JSON (a MedCom XML, say): printed as text. */
	txt = render_to_text("<Emessage>Plejeforløb: æøå \xff</Emessage>\n", "xml");
	ck_assert(tw_file_has(txt, "Indhold / Content"));
	ck_assert(tw_file_has(txt, "<Emessage>Plejeforløb: æøå ?</Emessage>"));
	/* Unknown members, nesting, invalid UTF-8 and control characters. */
	txt = render_to_text("{\"basic\":{\"x\":{\"y\":{\"z\":[[1,2],{\"k\":true}]}}},"
	    "\"extra\":\"control \\u0001 and \\u4e2d\"}", "odd");
	ck_assert(tw_file_has(txt, "Andet / Other"));
	ck_assert(tw_file_has(txt, "extra"));
	ck_assert(tw_file_has(txt, "control and ?"));
	ck_assert(tw_file_has(txt, "ja / yes"));
}
END_TEST

START_TEST(test_deep_nesting)
{
	char json[4096], *p = json;
	const char *txt;
	int i;

	if (!have_pdftotext()) {
		TESTLIB_SKIP("pdftotext (poppler-utils) not installed");
		return;
	}
	p += sprintf(p, "{\"basic\":");
	for (i = 0; i < 200; i++)
		p += sprintf(p, "{\"a\":");
	p += sprintf(p, "\"innermost\"");
	for (i = 0; i < 201; i++)
		*p++ = '}';
	*p = '\0';
	/* Cut off with a note after a few levels, not recursed 200 deep. */
	txt = render_to_text(json, "deep");
	ck_assert(tw_file_has(txt, "(nested too deep to print)"));
	ck_assert(!tw_file_has(txt, "innermost"));
}
END_TEST

START_TEST(test_required)
{
	struct render_doc doc;
	struct buf pdf = { (uint8_t *)"x", 1 };
	struct why why;

	memset(&doc, 0, sizeof(doc));
	doc.id = "m-1";
	doc.kind = "referral";
	doc.sender = "a";
	doc.recipient = "b";
	ck_assert_int_eq(render_pdf(&doc, &pdf, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(pdf.data);
	ck_assert_int_eq(render_pdf(NULL, &pdf, &why), HEGN_ERR_INVALID);
	doc.content = (const uint8_t *)"{}";
	doc.content_len = 2;
	ck_assert_int_eq(render_pdf(&doc, NULL, &why), HEGN_ERR_INVALID);
	doc.id = NULL;
	ck_assert_int_eq(render_pdf(&doc, &pdf, &why), HEGN_ERR_INVALID);
}
END_TEST

START_TEST(test_winansi)
{
	char *s;

	s = render_winansi("æøåÆØÅ", strlen("æøåÆØÅ"));
	ck_assert_str_eq(s, "\xe6\xf8\xe5\xc6\xd8\xc5");
	free(s);
	s = render_winansi("€ – “x” •", strlen("€ – “x” •"));
	ck_assert_str_eq(s, "\x80 \x96 \x93x\x94 \x95");
	free(s);
	/* Outside the code page, invalid, overlong, surrogate, truncated. */
	s = render_winansi("中\xff\xc0\xaf\xed\xa0\x80\xc3", 10);
	ck_assert_str_eq(s, "????????");
	free(s);
	s = render_winansi("a\tb\x01\x7f\nc\r", 8);
	ck_assert_str_eq(s, "a b\nc");
	free(s);
	/* A C1 control encoded as UTF-8 is dropped, not turned into a glyph. */
	s = render_winansi("x\xc2\x85y", 4);
	ck_assert_str_eq(s, "xy");
	free(s);
}
END_TEST

static Suite *
render_suite(void)
{
	Suite *s = suite_create("render");
	TCase *tc = tcase_create("pdf");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_referral);
	tcase_add_test(tc, test_long_wraps_and_breaks);
	tcase_add_test(tc, test_odd_content);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_required);
	tcase_add_test(tc, test_winansi);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(render_suite)
