#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "demo.h"
#include "envelope.h"
#include "err.h"
#include "pki.h"
#include "relay.h"
#include "report.h"
#include "store.h"
#include "testlib.h"
#include "util.h"
#include "web.h"
#include "xmalloc.h"

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


/* The session limits, on a clock the test moves (websession.h). */
START_TEST(test_session_limits)
{
	const int64_t t0 = 1800000000000LL, min = 60 * 1000;
	static char cookies[WEB_SESSION_MAX][WEB_TOKEN_HEX];
	char a[WEB_TOKEN_HEX], b[WEB_TOKEN_HEX], bad[WEB_TOKEN_HEX];
	struct web_session s, s2;
	int64_t t;
	size_t i;

	web_sessions_clear();
	web_session_new("karin", "ringsted-visitation", "caseworker", t0, a, &s);
	ck_assert_uint_eq(strlen(a), 64);
	ck_assert_uint_eq(strlen(s.csrf), 64);
	ck_assert_str_ne(a, s.csrf);
	ck_assert(web_session_find(a, t0 + 1, &s2));
	ck_assert_str_eq(s2.user, "karin");
	ck_assert_str_eq(s2.party, "ringsted-visitation");
	ck_assert_str_eq(s2.role, "caseworker");
	ck_assert_str_eq(s2.csrf, s.csrf);
	/* Not a cookie of this gateway's: one digit off, too short, not hex. */
	memcpy(bad, a, sizeof(bad));
	bad[10] = bad[10] == '0' ? '1' : '0';
	ck_assert(!web_session_find(bad, t0 + 2, &s2));
	ck_assert(!web_session_find("abcd", t0 + 2, &s2));
	memset(bad, 'z', 64);
	ck_assert(!web_session_find(bad, t0 + 2, &s2));
	ck_assert(!web_session_find(NULL, t0 + 2, &s2));

	/* Busy: used every 20 minutes, it lasts until 12 hours after the login, not longer. */
	for (t = t0 + 20 * min; t <= t0 + WEB_SESSION_MAX_AGE_MS; t += 20 * min)
		ck_assert_msg(web_session_find(a, t, &s2), "session gone at %lld min",
		    (long long)((t - t0) / min));
	ck_assert(!web_session_find(a, t0 + WEB_SESSION_MAX_AGE_MS + 1, &s2));
	/* Forgotten, not only refused: an earlier clock does not bring it back. */
	ck_assert(!web_session_find(a, t0 + 2, &s2));

	/* Idle: 30 minutes without a request, and it is over. */
	web_session_new("karin", "ringsted-visitation", "caseworker", t0, a, &s);
	ck_assert(web_session_find(a, t0 + WEB_SESSION_IDLE_MS, &s2));
	ck_assert(!web_session_find(a, t0 + 2 * WEB_SESSION_IDLE_MS + 1, &s2));

	/* Logout. */
	web_session_new("karin", "ringsted-visitation", "caseworker", t0, a, &s);
	web_session_new("hans", "hovmand-care", "dispatcher", t0, b, &s2);
	web_session_drop(s.id);
	ck_assert(!web_session_find(a, t0 + 1, &s2));
	ck_assert(web_session_find(b, t0 + 1, &s2));
	ck_assert_str_eq(s2.user, "hans");

	/*
	 * Full: a new login takes the place of a session past its 12 hours
	 * before that of the least recently used live one.  "old" logged in at
	 * t0 and was used last, the others logged in later and were used before it.
	 */
	web_sessions_clear();
	t = t0 + WEB_SESSION_MAX_AGE_MS;
	web_session_new("old", "ringsted-visitation", "caseworker", t0, a, &s);
	for (t = t0 + 20 * min; t < t0 + WEB_SESSION_MAX_AGE_MS - 2 * min; t += 20 * min)
		ck_assert(web_session_find(a, t, &s2));
	t = t0 + WEB_SESSION_MAX_AGE_MS;
	for (i = 1; i < WEB_SESSION_MAX; i++)
		web_session_new("u", "hovmand-care", "dispatcher", t - 2 * min + (int64_t)i,
		    cookies[i], &s2);
	ck_assert(web_session_find(a, t - min, &s2));
	web_session_new("new", "ringsted-visitation", "caseworker", t + 1, b, &s2);
	ck_assert(web_session_find(b, t + 2, &s2));
	ck_assert(!web_session_find(a, t + 2, &s2));
	for (i = 1; i < WEB_SESSION_MAX; i++)
		ck_assert_msg(web_session_find(cookies[i], t + 3, &s2), "session %zu evicted", i);
	/* None past its limits: the least recently used goes, "new" (the loop used the others since). */
	web_session_new("newer", "ringsted-visitation", "caseworker", t + 4, a, &s2);
	ck_assert(!web_session_find(b, t + 5, &s2));
	ck_assert(web_session_find(a, t + 5, &s2));
	ck_assert_str_eq(s2.user, "newer");
	ck_assert(web_session_find(cookies[1], t + 5, &s2));
	web_sessions_clear();
}
END_TEST

/*
 * The relay's web page support against a demo world, made once (its keys
 * take a while); each test opens the relay in its own process.
 */
static char demo_dir[64];
static struct relay *rl;

static void
demo_setup(void)
{
	struct why why = { 0 };
	char tmpl[] = "/tmp/hegn-test-web-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(demo_dir, sizeof(demo_dir), "%s/demo", tmpl);
	if (demo_init(demo_dir, 4443, &why) != 0)
		ck_abort_msg("demo init: %s", why.text);
}

static void
demo_teardown(void)
{
	char *cmd = xasprintf("rm -rf '%.*s'", (int)(strrchr(demo_dir, '/') - demo_dir), demo_dir);

	(void)!system(cmd);
	free(cmd);
}

static void
relay_setup(void)
{
	struct why why = { 0 };
	char *conf = xasprintf("%s/hegn.conf", demo_dir);

	if (relay_open(conf, RELAY_KEYS | RELAY_STORE, &rl, &why) != 0)
		ck_abort_msg("relay_open: %s", why.text);
	free(conf);
}

static void
relay_teardown(void)
{
	relay_close(rl);
	rl = NULL;
}

/* The demo password of user. */
static void
password_of(const char *user, char pw[64])
{
	char *path = xasprintf("%s/demo-users.txt", demo_dir), name[65], role[17], party[65];
	FILE *f = fopen(path, "r");

	pw[0] = '\0';
	ck_assert_ptr_nonnull(f);
	while (fscanf(f, "%64s %63s %16s %64s", name, pw, role, party) == 4)
		if (strcmp(name, user) == 0)
			break;
	fclose(f);
	free(path);
	ck_assert_str_eq(name, user);
}

/* How many audit entries contain every one of the strings a, b (NULL: any). */
static size_t
audit_count(const char *a, const char *b)
{
	struct store_tx *tx = NULL;
	struct store_audit *e = NULL;
	struct why why = { 0 };
	size_t n = 0, i, hits = 0;

	ck_assert_int_eq(store_begin(relay_store(rl), 0, &tx, &why), 0);
	ck_assert_int_eq(store_audit_range(tx, 0, 0, &e, &n, &why), 0);
	for (i = 0; i < n; i++) {
		char *text = xmalloc(e[i].entry.len + 1);

		memcpy(text, e[i].entry.data, e[i].entry.len);
		text[e[i].entry.len] = '\0';
		if (strstr(text, a) != NULL && (b == NULL || strstr(text, b) != NULL))
			hits++;
		free(text);
	}
	store_audit_list_free(e, n);
	store_rollback(tx);
	return hits;
}

START_TEST(test_login)
{
	struct why why = { 0 };
	char pw[64], party[65], role[17];
	int i;

	password_of("karin", pw);
	ck_assert_int_eq(relay_user_login(rl, "karin", pw, "192.0.2.7", party, role, &why), 0);
	ck_assert_str_eq(party, "ringsted-visitation");
	ck_assert_str_eq(role, "caseworker");
	ck_assert_uint_eq(audit_count("\"user.login\"", "logged in from 192.0.2.7"), 1);
	ck_assert_uint_eq(audit_count("\"user\":\"karin\"", "\"outcome\":\"ok\""), 1);

	/* Every failure reads the same to the caller; the log has the real reason. */
	ck_assert_int_eq(relay_user_login(rl, "karin", "wrong password!", "192.0.2.7", party, role,
	    &why), HEGN_ERR_UNAUTH);
	ck_assert_str_eq(why.text, "wrong user name or password");
	ck_assert_str_eq(party, "");
	ck_assert_uint_eq(audit_count("\"outcome\":\"fail\"", "wrong password from 192.0.2.7"), 1);
	why_clear(&why);
	ck_assert_int_eq(relay_user_login(rl, "Tr0ub4dor&3-typed-as-name", pw, NULL, party, role,
	    &why), HEGN_ERR_UNAUTH);
	ck_assert_str_eq(why.text, "wrong user name or password");
	ck_assert_uint_eq(audit_count("unknown user", NULL), 1);
	/* A name nobody has may be a password typed in the wrong field: never logged. */
	ck_assert_uint_eq(audit_count("Tr0ub4dor", NULL), 0);

	/* Five failures lock the user: then even the right password fails, and the log says why. */
	password_of("hovmand", pw);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(relay_user_login(rl, "hovmand", "not it at all", "192.0.2.8", party,
		    role, &why), HEGN_ERR_UNAUTH);
	ck_assert_int_eq(relay_user_login(rl, "hovmand", pw, "192.0.2.8", party, role, &why),
	    HEGN_ERR_UNAUTH);
	ck_assert_uint_eq(audit_count("user now locked", "\"user\":\"hovmand\""), 1);
	ck_assert_uint_eq(audit_count("user locked after repeated failures", "hovmand-care"), 1);
	/* Another user is not affected. */
	password_of("karin", pw);
	ck_assert_int_eq(relay_user_login(rl, "karin", pw, NULL, party, role, &why), 0);
	ck_assert_int_eq(relay_audit_verify(rl, NULL, &why), 0);
	sodium_memzero(pw, sizeof(pw));
}
END_TEST

/* What a session asks on every request: is its user still the one who logged in? */
START_TEST(test_user_current)
{
	struct why why = { 0 };

	ck_assert_int_eq(relay_user_current(rl, "karin", "ringsted-visitation", "caseworker",
	    &why), 0);
	ck_assert_int_eq(relay_user_current(rl, "karin", "ringsted-visitation", "auditor", &why),
	    HEGN_ERR_UNAUTH);
	ck_assert_str_eq(why.text, "the user's party or role changed");
	ck_assert_int_eq(relay_user_current(rl, "karin", "hovmand-care", "caseworker", &why),
	    HEGN_ERR_UNAUTH);
	ck_assert_int_eq(relay_user_current(rl, "nobody-here", "ringsted-visitation", "caseworker",
	    &why), HEGN_ERR_UNAUTH);
	ck_assert_str_eq(why.text, "the user no longer exists");
	ck_assert_int_eq(relay_user_disable(rl, "test", "karin", 1, &why), 0);
	ck_assert_int_eq(relay_user_current(rl, "karin", "ringsted-visitation", "caseworker",
	    &why), HEGN_ERR_UNAUTH);
	ck_assert_str_eq(why.text, "the user is disabled");
	ck_assert_ptr_null(strstr(why.text, "karin"));
	ck_assert_int_eq(relay_user_disable(rl, "test", "karin", 0, &why), 0);
	ck_assert_int_eq(relay_user_current(rl, "karin", "ringsted-visitation", "caseworker",
	    &why), 0);
}
END_TEST

static const char referral[] =
    "{\"kind\":\"referral\",\"to\":\"%s\",\"citizen\":{\"cpr\":\"2509479989\"},"
    "\"basic\":{\"services\":[\"%s\"],\"start_date\":\"2026-12-01\"},"
    "\"care\":{\"description\":\"Rengøring hver 14. dag.\"},"
    "\"health\":{\"diagnoses\":[\"Type 2-diabetes\"]}}";

static const struct party *
party(const char *name)
{
	const struct party *p = party_find(relay_parties(rl), name);

	ck_assert_ptr_nonnull(p);
	return p;
}

static size_t
copies(void)
{
	json_t *j = NULL;
	struct why why = { 0 };
	size_t n;

	ck_assert_int_eq(relay_party_messages(rl, "ringsted-visitation", 0, &j, &why), 0);
	n = json_array_size(json_object_get(j, "messages"));
	json_decref(j);
	return n;
}

START_TEST(test_preview)
{
	struct why why = { 0 };
	json_t *j = NULL, *rc_;
	char *msg;
	size_t before = copies();

	msg = xasprintf(referral, "hovmand-care", "practical_help");
	ck_assert_int_eq(relay_preview(rl, party("ringsted-visitation"), msg, strlen(msg), &j, &why),
	    0);
	rc_ = json_array_get(json_object_get(j, "recipients"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rc_, "party")), "hovmand-care");
	ck_assert(json_is_true(json_object_get(rc_, "allow")));
	ck_assert_str_eq(json_string_value(json_object_get(rc_, "rule")), "refer");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(rc_, "removed"), 0)),
	    "health");
	ck_assert_ptr_null(json_object_get(json_object_get(rc_, "content"), "health"));
	ck_assert_ptr_nonnull(json_object_get(json_object_get(rc_, "content"), "care"));
	json_decref(j);
	free(msg);

	/* The municipal home care, approved for nursing, gets every class. */
	msg = xasprintf(referral, "ringsted-homecare", "practical_help");
	ck_assert_int_eq(relay_preview(rl, party("ringsted-visitation"), msg, strlen(msg), &j, &why),
	    0);
	rc_ = json_array_get(json_object_get(j, "recipients"), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(rc_, "removed")), 0);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(rc_, "content"), "health"));
	json_decref(j);
	free(msg);

	/* A service the provider is not approved for: shown as refused, with the rule. */
	msg = xasprintf(referral, "hovmand-care", "nursing");
	ck_assert_int_eq(relay_preview(rl, party("ringsted-visitation"), msg, strlen(msg), &j, &why),
	    0);
	rc_ = json_array_get(json_object_get(j, "recipients"), 0);
	ck_assert(json_is_false(json_object_get(rc_, "allow")));
	ck_assert_ptr_null(json_object_get(rc_, "content"));
	json_decref(j);
	free(msg);

	/* Bad input names the field; a party cannot write to itself. */
	ck_assert_int_eq(relay_preview(rl, party("ringsted-visitation"), "{\"kind\":", 8, &j, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_null(j);
	msg = xasprintf(referral, "no-such-party", "practical_help");
	ck_assert_int_eq(relay_preview(rl, party("ringsted-visitation"), msg, strlen(msg), &j, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why.text, "to:"));
	free(msg);
	msg = xasprintf(referral, "ringsted-visitation", "practical_help");
	ck_assert_int_eq(relay_preview(rl, party("ringsted-visitation"), msg, strlen(msg), &j, &why),
	    HEGN_ERR_INVALID);
	free(msg);
	/* A preview stores nothing. */
	ck_assert_uint_eq(copies(), before);
}
END_TEST

/*
 * relay_submit_buf lets the body go once the message is read from it (a
 * large body is then not held through signing and sealing), and leaves it
 * to the caller when it could not be read.
 */
START_TEST(test_submit_releases_body)
{
	struct why why = { 0 };
	struct buf b;
	json_t *j = NULL;
	char *msg;
	int created = 0;

	msg = xasprintf(referral, "hovmand-care", "practical_help");
	b.data = (uint8_t *)msg;
	b.len = strlen(msg);
	ck_assert_int_eq(relay_submit_buf(rl, party("ringsted-visitation"), "application/json", &b,
	    &j, &created, &why), 0);
	ck_assert_int_eq(created, 1);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	json_decref(j);
	j = NULL;
	b.data = (uint8_t *)xstrdup("{\"kind\": ");
	b.len = strlen((char *)b.data);
	ck_assert_int_eq(relay_submit_buf(rl, party("ringsted-visitation"), "application/json", &b,
	    &j, &created, &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_ptr_null(j);
	buf_free(&b, 1);
}
END_TEST

static void
buf_copy(struct buf *b, const char *data, size_t len)
{
	b->data = xmalloc(len);
	memcpy(b->data, data, len);
	b->len = len;
}

/* body signed by the demo's region-hospital and sealed to the gateway (sign = 0: sealed only). */
static void
sealed_body(const char *body, int sign, struct buf *out)
{
	struct why why = { 0 };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *gw = NULL;
	STACK_OF(X509) *chain = NULL;
	struct buf signed_der = { 0 };
	char *kp = xasprintf("%s/pki/region-hospital.key", demo_dir);
	char *cp = xasprintf("%s/pki/region-hospital.pem", demo_dir);
	char *chp = xasprintf("%s/pki/chain.pem", demo_dir);
	char *gp = xasprintf("%s/pki/gateway.pem", demo_dir);

	ck_assert_msg(pki_load_key(kp, &key, &why) == 0 && pki_load_cert(cp, &cert, &why) == 0 &&
	    pki_load_certs(chp, &chain, &why) == 0 && pki_load_cert(gp, &gw, &why) == 0, "%s",
	    why.text);
	if (sign)
		ck_assert_msg(envelope_sign(key, cert, chain, ENVELOPE_PSS, (const uint8_t *)body,
		    strlen(body), NULL, &signed_der, &why) == 0, "%s", why.text);
	else
		buf_copy(&signed_der, body, strlen(body));
	ck_assert_msg(envelope_seal(gw, ENVELOPE_AES256_GCM, signed_der.data, signed_der.len, sign,
	    out, &why) == 0, "%s", why.text);
	buf_free(&signed_der, 0);
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(gw);
	sk_X509_pop_free(chain, X509_free);
	free(kp);
	free(cp);
	free(chp);
	free(gp);
}

/*
 * A sealed body goes as soon as it is decrypted, before the signature is
 * verified, whether the submission is then accepted or refused; one that
 * cannot be decrypted stays with the caller.
 */
START_TEST(test_submit_sealed_releases_body)
{
	static const char notice[] = "{\"kind\": \"admission_notice\", \"to\": "
	    "\"ringsted-visitation\", \"citizen\": {\"cpr\": \"2509479989\"}, \"basic\": "
	    "{\"event_time\": \"2026-11-27T08:15:00+01:00\", \"hospital\": \"Køge\"}}";
	struct why why = { 0 };
	struct buf b = { 0 };
	json_t *j = NULL;
	int created = 0;

	sealed_body(notice, 1, &b);
	ck_assert_msg(relay_submit_buf(rl, NULL, "application/pkcs7-mime", &b, &j, &created,
	    &why) == 0, "%s", why.text);
	ck_assert_int_eq(created, 1);
	ck_assert_ptr_null(b.data);
	json_decref(j);
	j = NULL;

	/* Decrypted, but not signed: refused, and the body is gone all the same. */
	sealed_body(notice, 0, &b);
	ck_assert_int_eq(relay_submit_buf(rl, NULL, "application/pkcs7-mime", &b, &j, &created,
	    &why), HEGN_ERR_INVALID);
	ck_assert_ptr_null(b.data);
	ck_assert_ptr_null(j);

	buf_copy(&b, "not CMS", 7);
	ck_assert_int_eq(relay_submit_buf(rl, NULL, "application/pkcs7-mime", &b, &j, &created,
	    &why), HEGN_ERR_INVALID);
	ck_assert_ptr_nonnull(b.data);
	buf_free(&b, 0);
}
END_TEST

START_TEST(test_view)
{
	struct why why = { 0 };
	json_t *j = NULL, *weeks = NULL, *ext;
	char *msg, id[65];
	int created = 0;

	msg = xasprintf(referral, "hovmand-care", "practical_help");
	relay_request_user("karin");
	ck_assert_int_eq(relay_submit(rl, party("ringsted-visitation"), "application/json",
	    (const uint8_t *)msg, strlen(msg), &j, &created, &why), 0);
	relay_request_user(NULL);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(msg);
	ck_assert_uint_eq(audit_count("\"message.submit\"", "\"user\":\"karin\""), 1);

	/* Listed for the sender and the recipient, not for anyone else. */
	ck_assert_int_eq(relay_party_messages(rl, "hovmand-care", 0, &j, &why), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "messages")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j,
	    "messages"), 0), "id")), id);
	ck_assert_ptr_nonnull(json_object_get(json_array_get(json_object_get(j, "messages"), 0),
	    "deadline"));
	json_decref(j);
	ck_assert_int_eq(relay_party_messages(rl, "ringsted-homecare", 0, &j, &why), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "messages")), 0);
	json_decref(j);

	/* The dispatcher sees the content minimised for its provider; the view is audited. */
	relay_request_user("hovmand");
	ck_assert_int_eq(relay_message_view(rl, party("hovmand-care"), "dispatcher", id, &j, &why),
	    0);
	ck_assert_ptr_null(json_object_get(json_object_get(j, "content"), "health"));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "content"), "kind")),
	    "referral");
	json_decref(j);
	ck_assert_uint_eq(audit_count("\"message.view\"", "\"user\":\"hovmand\""), 1);
	ck_assert_uint_eq(audit_count("\"message.view\"", "view-dispatcher"), 1);

	/* Another provider: not found, and the attempt is recorded. */
	relay_request_user("hjemmepleje");
	ck_assert_int_eq(relay_message_view(rl, party("ringsted-homecare"), "dispatcher", id, &j,
	    &why), HEGN_ERR_NOT_FOUND);
	ck_assert_ptr_null(j);
	ck_assert_uint_eq(audit_count("\"message.view\"", "\"outcome\":\"deny\""), 1);
	ck_assert_int_eq(relay_message_view(rl, party("hovmand-care"), "dispatcher", "../../etc",
	    &j, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_int_eq(relay_message_view(rl, party("hovmand-care"), "dispatcher", "nosuchid", &j,
	    &why), HEGN_ERR_NOT_FOUND);
	/* An auditor user reads the log, never content (rule view-auditor). */
	relay_request_user("revisor");
	ck_assert_int_eq(relay_message_view(rl, party("hovmand-care"), "auditor", id, &j, &why),
	    HEGN_ERR_DENIED);
	ck_assert_ptr_nonnull(strstr(why.text, "view-auditor"));
	relay_request_user(NULL);

	/* The weekly figures: the copy is pending, then a fax registered outside hegn counts. */
	ck_assert_int_eq(report_weeks(relay_store(rl), relay_parties(rl), 0, 0, &weeks, &why), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(weeks, "weeks")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(weeks,
	    "weeks"), 0), "fallback")), 0);
	json_decref(weeks);
	ext = json_pack("{s:s, s:s, s:s}", "channel", "fax", "party", "hovmand-care", "reason",
	    "test");
	ck_assert_int_eq(relay_external(rl, "ringsted-visitation", ext, &j, &why), 0);
	json_decref(ext);
	json_decref(j);
	ck_assert_int_eq(report_weeks(relay_store(rl), relay_parties(rl), 0, 0, &weeks, &why), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(weeks,
	    "weeks"), 0), "fallback")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(weeks,
	    "weeks"), 0), "total")), 2);
	json_decref(weeks);
	ck_assert_int_eq(relay_audit_verify(rl, NULL, &why), 0);
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
	tcase_add_test(tc, test_session_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("relay");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, demo_setup, demo_teardown);
	tcase_add_checked_fixture(tc, relay_setup, relay_teardown);
	tcase_add_test(tc, test_login);
	tcase_add_test(tc, test_user_current);
	tcase_add_test(tc, test_preview);
	tcase_add_test(tc, test_view);
	/* After test_view, which counts the messages stored. */
	tcase_add_test(tc, test_submit_releases_body);
	tcase_add_test(tc, test_submit_sealed_releases_body);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(web_suite)
