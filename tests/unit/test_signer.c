#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "envelope.h"
#include "err.h"
#include "pki.h"
#include "signer.h"
#include "testcerts.h"
#include "testlib.h"
#include "util.h"

static struct {
	char dir[64];
	EVP_PKEY *ca_key, *a_key, *b_key;
	X509 *ca, *a, *b;
	struct pki *pki;
} w;

static const char msg[] = "{\"kind\":\"observation\",\"care\":{}}";

static char *
wpath(const char *name)
{
	static char p[8][128];
	static int n;

	n = (n + 1) % 8;
	snprintf(p[n], sizeof(p[n]), "%s/%s", w.dir, name);
	return p[n];
}

static void
setup_world(void)
{
	STACK_OF(X509) *anchors;
	long year = 365L * 86400;

	snprintf(w.dir, sizeof(w.dir), "/tmp/hegn-test-signer-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		abort();
	w.ca_key = testcerts_rsa(2048);
	w.a_key = testcerts_rsa(2048);
	w.b_key = testcerts_ec();
	w.ca = testcerts_cert(NULL, NULL, w.ca_key, "Test Root CA", 1, -86400, 10 * year,
	    TESTCERTS_CA);
	w.a = testcerts_cert(w.ca, w.ca_key, w.a_key, "gateway", 2, -86400, year,
	    TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	w.b = testcerts_cert(w.ca, w.ca_key, w.b_key, "ringsted-visitation", 3, -86400,
	    year, TESTCERTS_SIGN | TESTCERTS_ENCRYPT);
	if (w.a == NULL || w.b == NULL)
		abort();
	anchors = sk_X509_new_null();
	sk_X509_push(anchors, w.ca);
	if (pki_from_objects(anchors, NULL, NULL, 0, &w.pki, NULL) != 0)
		abort();
	sk_X509_free(anchors);
	if (testcerts_write_cert(wpath("a.pem"), w.a) != 0 ||
	    testcerts_write_key(wpath("a.key"), w.a_key) != 0 ||
	    testcerts_write_cert(wpath("b.pem"), w.b) != 0 ||
	    testcerts_write_key(wpath("b.key"), w.b_key) != 0 ||
	    chmod(wpath("a.key"), 0600) != 0 || chmod(wpath("b.key"), 0600) != 0)
		abort();
}

static void
teardown_world(void)
{
	pki_free(w.pki);
	X509_free(w.ca);
	X509_free(w.a);
	X509_free(w.b);
	EVP_PKEY_free(w.ca_key);
	EVP_PKEY_free(w.a_key);
	EVP_PKEY_free(w.b_key);
	testcerts_rmtree(w.dir);
}

START_TEST(test_load_sign_decrypt)
{
	struct signer *s = signer_new();
	struct buf der = { 0 }, env = { 0 }, out = { 0 };
	struct envelope_signed *v = NULL;
	struct why why = { 0 };
	const uint8_t *c;
	size_t clen;

	ck_assert_msg(signer_load(s, "gateway", wpath("a.key"), wpath("a.pem"), NULL,
	    ENVELOPE_PSS, &why) == 0, "%s", why.text);
	ck_assert_int_eq(signer_load(s, "ringsted-visitation", wpath("b.key"),
	    wpath("b.pem"), NULL, ENVELOPE_PKCS1, &why), 0);
	ck_assert(signer_has(s, "gateway"));
	ck_assert(signer_has(s, "ringsted-visitation"));
	ck_assert(!signer_has(s, "hovmand-care"));
	ck_assert_int_eq(X509_cmp(signer_cert(s, "gateway"), w.a), 0);
	ck_assert_ptr_null(signer_cert(s, "hovmand-care"));

	ck_assert_int_eq(signer_sign(s, "gateway", (const uint8_t *)msg, strlen(msg),
	    "m-1", &der, &why), 0);
	ck_assert_int_eq(envelope_verify(w.pki, der.data, der.len, 0, &v, &why), 0);
	c = envelope_signed_content(v, &clen);
	ck_assert_mem_eq(c, msg, clen);
	ck_assert_str_eq(envelope_signed_content_id(v), "m-1");
	ck_assert_int_eq(X509_cmp(envelope_signed_signer(v), w.a), 0);
	envelope_signed_free(v);
	buf_free(&der, 0);

	ck_assert_int_eq(signer_sign(s, "hovmand-care", (const uint8_t *)msg,
	    strlen(msg), NULL, &der, &why), HEGN_ERR_NOT_FOUND);
	ck_assert_ptr_null(der.data);

	/* Sealed to one party, opened only by that party's key. */
	ck_assert_int_eq(envelope_seal(signer_cert(s, "ringsted-visitation"),
	    ENVELOPE_AES256_GCM, (const uint8_t *)msg, strlen(msg), 0, &env, &why), 0);
	ck_assert_int_eq(signer_decrypt(s, "ringsted-visitation", env.data, env.len,
	    &out, &why), 0);
	ck_assert_uint_eq(out.len, strlen(msg));
	ck_assert_mem_eq(out.data, msg, out.len);
	buf_free(&out, 1);
	ck_assert_int_eq(signer_decrypt(s, "gateway", env.data, env.len, &out, &why),
	    HEGN_ERR_DECRYPT);
	ck_assert_int_eq(signer_decrypt(s, "nobody", env.data, env.len, &out, &why),
	    HEGN_ERR_NOT_FOUND);
	ck_assert_ptr_null(out.data);
	buf_free(&env, 0);

	/* One key per name. */
	ck_assert_int_eq(signer_add(s, "gateway", w.a_key, w.a, NULL, ENVELOPE_PSS,
	    &why), HEGN_ERR_CONFLICT);
	signer_free(s);
	signer_free(NULL);
}
END_TEST

START_TEST(test_load_refusals)
{
	struct signer *s = signer_new();
	struct why why = { 0 };
	FILE *f;

	/* Readable or writable by others: refused, naming the file and mode. */
	ck_assert_int_eq(chmod(wpath("a.key"), 0644), 0);
	ck_assert_int_eq(signer_load(s, "gateway", wpath("a.key"), wpath("a.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "readable by group or others (mode 0644)"));
	ck_assert_ptr_nonnull(strstr(why.text, wpath("a.key")));
	ck_assert_int_eq(chmod(wpath("a.key"), 0640), 0);
	ck_assert_int_eq(signer_load(s, "gateway", wpath("a.key"), wpath("a.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	ck_assert_int_eq(chmod(wpath("a.key"), 0620), 0);
	ck_assert_int_eq(signer_load(s, "gateway", wpath("a.key"), wpath("a.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "writable by group or others"));
	ck_assert_int_eq(chmod(wpath("a.key"), 0600), 0);
	ck_assert(!signer_has(s, "gateway"));

	/* A key that is not the certificate's. */
	ck_assert_int_eq(signer_load(s, "gateway", wpath("a.key"), wpath("b.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "does not match"));
	ck_assert_int_eq(signer_add(s, "gateway", w.a_key, w.b, NULL, ENVELOPE_PSS,
	    &why), HEGN_ERR_CONFIG);

	/* Missing files, and files that hold something else. */
	ck_assert_int_eq(signer_load(s, "gateway", wpath("none.key"), wpath("a.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why.text, "none.key"));
	ck_assert_int_eq(signer_load(s, "gateway", wpath("a.key"), wpath("none.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	f = fopen(wpath("junk.key"), "w");
	ck_assert_ptr_nonnull(f);
	fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(wpath("junk.key"), 0600), 0);
	ck_assert_int_eq(signer_load(s, "gateway", wpath("junk.key"), wpath("a.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	ck_assert_int_eq(signer_load(s, "gateway", wpath("a.pem"), wpath("a.key"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	/* An encrypted key must be refused without prompting for a passphrase. */
	ck_assert_int_eq(testcerts_run("openssl pkey -in %s -aes256 -passout pass:secret "
	    "-out %s && chmod 600 %s", wpath("a.key"), wpath("enc.key"),
	    wpath("enc.key")), 0);
	ck_assert_int_eq(signer_load(s, "gateway", wpath("enc.key"), wpath("a.pem"),
	    NULL, ENVELOPE_PSS, &why), HEGN_ERR_CONFIG);
	ck_assert(!signer_has(s, "gateway"));
	signer_free(s);
}
END_TEST

struct job {
	struct signer *s;
	int ok;
};

static void *
sign_many(void *arg)
{
	struct job *j = arg;
	struct buf der = { 0 };
	struct envelope_signed *v = NULL;
	int i;

	for (i = 0; i < 8; i++) {
		if (signer_sign(j->s, (i & 1) ? "gateway" : "ringsted-visitation",
		    (const uint8_t *)msg, strlen(msg), "m-2", &der, NULL) != 0)
			return NULL;
		if (envelope_verify(w.pki, der.data, der.len, 0, &v, NULL) != 0)
			return NULL;
		envelope_signed_free(v);
		buf_free(&der, 0);
		j->ok++;
	}
	return NULL;
}

/* Keys are read-only after loading: several threads sign at once. */
START_TEST(test_concurrent_signing)
{
	struct signer *s = signer_new();
	struct job jobs[4];
	pthread_t t[4];
	int i;

	ck_assert_int_eq(signer_add(s, "gateway", w.a_key, w.a, NULL, ENVELOPE_PSS,
	    NULL), 0);
	ck_assert_int_eq(signer_add(s, "ringsted-visitation", w.b_key, w.b, NULL,
	    ENVELOPE_PKCS1, NULL), 0);
	for (i = 0; i < 4; i++) {
		jobs[i].s = s;
		jobs[i].ok = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, sign_many, &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(jobs[i].ok, 8);
	}
	signer_free(s);
}
END_TEST

/*
 * The crypto worker limit: with one worker, four threads signing and
 * opening at once all succeed, one private-key operation at a time.
 */
static void *
sign_open_many(void *arg)
{
	struct job *j = arg;
	struct buf der = { 0 }, env = { 0 }, out = { 0 };
	int i;

	for (i = 0; i < 6; i++) {
		if (signer_sign(j->s, "ringsted-visitation", (const uint8_t *)msg, strlen(msg),
		    "m-3", &der, NULL) != 0 ||
		    envelope_seal(w.a, ENVELOPE_AES256_GCM, der.data, der.len, 1, &env, NULL) != 0 ||
		    signer_decrypt(j->s, "gateway", env.data, env.len, &out, NULL) != 0 ||
		    out.len != der.len || memcmp(out.data, der.data, der.len) != 0)
			break;
		buf_free(&der, 0);
		buf_free(&env, 0);
		buf_free(&out, 1);
		j->ok++;
	}
	buf_free(&der, 0);
	buf_free(&env, 0);
	buf_free(&out, 1);
	return NULL;
}

START_TEST(test_worker_limit)
{
	struct signer *s = signer_new();
	struct job jobs[4];
	pthread_t t[4];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int i, peak = -1;

	/* A new signer has no limit; 0 means the online CPUs. */
	ck_assert_int_eq(signer_workers(s, &peak), 0);
	ck_assert_int_eq(peak, 0);
	signer_set_workers(s, 0);
	ck_assert_int_eq(signer_workers(s, NULL), cpus < 1 ? 1 : (int)cpus);
	signer_set_workers(s, 1);
	ck_assert_int_eq(signer_workers(s, NULL), 1);
	ck_assert_int_eq(signer_add(s, "gateway", w.a_key, w.a, NULL, ENVELOPE_PSS,
	    NULL), 0);
	ck_assert_int_eq(signer_add(s, "ringsted-visitation", w.b_key, w.b, NULL,
	    ENVELOPE_PKCS1, NULL), 0);
	for (i = 0; i < 4; i++) {
		jobs[i].s = s;
		jobs[i].ok = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, sign_open_many, &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(jobs[i].ok, 6);
	}
	ck_assert_int_eq(signer_workers(s, &peak), 1);
	ck_assert_int_eq(peak, 1);
	signer_free(s);
}
END_TEST

static Suite *
signer_suite(void)
{
	Suite *s = suite_create("signer");
	TCase *tc = tcase_create("signer");

	tcase_add_unchecked_fixture(tc, setup_world, teardown_world);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_load_sign_decrypt);
	tcase_add_test(tc, test_load_refusals);
	tcase_add_test(tc, test_concurrent_signing);
	tcase_add_test(tc, test_worker_limit);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(signer_suite)
