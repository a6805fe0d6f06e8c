#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "web.h"

/* s escaped by web_escape, as a new string. */
static char *
escaped(const char *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	web_escape(f, s);
	fclose(f);
	return text;
}

START_TEST(test_escape)
{
	char *e;

	e = escaped("<script>alert('x')</script> & \"q\"");
	ck_assert_str_eq(e, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
	free(e);
	/* An attribute cannot be closed early, whatever quote it uses. */
	e = escaped("\" onfocus=\"x' onblur='y");
	ck_assert_ptr_null(strchr(e, '"'));
	ck_assert_ptr_null(strchr(e, '\''));
	free(e);
	/* Already escaped text is escaped again: data is never markup. */
	e = escaped("&amp;");
	ck_assert_str_eq(e, "&amp;amp;");
	free(e);
	/* UTF-8 passes through untouched. */
	e = escaped("Nørregade 12, 2. th.");
	ck_assert_str_eq(e, "Nørregade 12, 2. th.");
	free(e);
	e = escaped(NULL);
	ck_assert(e == NULL || *e == '\0');
	free(e);
}
END_TEST

static char *
value(const char *body, const char *name)
{
	return web_form_value((const uint8_t *)body, strlen(body), name);
}

START_TEST(test_form)
{
	char *v;

	v = value("a=1&b=hello+world&c=%C3%B8%2B%26", "b");
	ck_assert_str_eq(v, "hello world");
	free(v);
	v = value("a=1&b=hello+world&c=%C3%B8%2B%26", "c");
	ck_assert_str_eq(v, "ø+&");
	free(v);
	ck_assert_ptr_null(value("a=1&b=2", "c"));
	ck_assert_ptr_null(value("", "a"));
	/* The first of repeated fields. */
	v = value("s=one&s=two", "s");
	ck_assert_str_eq(v, "one");
	free(v);
	/* A field without '=' has an empty value. */
	v = value("flag&x=1", "flag");
	ck_assert_str_eq(v, "");
	free(v);
	/* Encoded names match their decoded form. */
	v = value("na%6De=z", "name");
	ck_assert_str_eq(v, "z");
	free(v);
}
END_TEST

START_TEST(test_form_adversarial)
{
	size_t pos = 0, n = 0;
	char *name, *val;

	/* Malformed escapes stay as they are; nothing reads past the end. */
	val = value("a=%", "a");
	ck_assert_str_eq(val, "%");
	free(val);
	val = value("a=%4", "a");
	ck_assert_str_eq(val, "%4");
	free(val);
	val = value("a=%zz%4g", "a");
	ck_assert_str_eq(val, "%zz%4g");
	free(val);
	/* A NUL byte cannot cut a value short or smuggle one in. */
	val = value("a=x%00y", "a");
	ck_assert_str_eq(val, "xy");
	free(val);
	/* Empty fields are skipped; every field is walked once. */
	while (web_form_next((const uint8_t *)"&&a=1&&b=2&", 11, &pos, &name, &val)) {
		n++;
		free(name);
		free(val);
	}
	ck_assert_uint_eq(n, 2);
	/* A body that is not NUL-terminated is read only up to its length. */
	{
		const uint8_t body[] = { 'a', '=', '%', '4', '1' };

		val = web_form_value(body, 4, "a");
		ck_assert_str_eq(val, "%4");
		free(val);
		val = web_form_value(body, 5, "a");
		ck_assert_str_eq(val, "A");
		free(val);
	}
	pos = 0;
	ck_assert_int_eq(web_form_next(NULL, 0, &pos, &name, &val), 0);
	ck_assert_ptr_null(name);
}
END_TEST

static Suite *
web_suite(void)
{
	Suite *s = suite_create("web");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_form);
	tcase_add_test(tc, test_form_adversarial);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(web_suite)
