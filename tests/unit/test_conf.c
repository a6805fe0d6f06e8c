#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "envelope.h"
#include "testlib.h"
#include "util.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/hegn-test-conf-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/hegn.conf", dir);
}

static void
teardown(void)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/key", dir);
	unlink(p);
	unlink(path);
	rmdir(dir);
}

static void
write_conf(const char *text)
{
	struct why why = { 0 };

	ck_assert_int_eq(util_write_file(path, text, strlen(text), 0644, &why), 0);
}

#define BASE \
	"[server]\ntls_cert = tls.pem\ntls_key = tls.key\n" \
	"[store]\nlocation = state/hegn.db\n" \
	"[pki]\nanchors = ca.pem\n" \
	"[gateway]\ncert = gw.pem\nkey = gw.key\ncitizen_key = citizen.key\n" \
	"[policy]\ndir = policies\n[audit]\nkey = audit.key\npubkey = audit.pub\n"

START_TEST(test_minimal)
{
	struct conf *c = NULL;
	struct why why = { 0 };
	char expect[200];

	write_conf(BASE "[party hovmand-care]\nrole = provider\ncert = hovmand.pem\n"
	    "cipher = aes-256-cbc\nsignature = pkcs1\n");
	ck_assert_int_eq(conf_load(path, &c, &why), 0);
	ck_assert_str_eq(c->listen, "127.0.0.1");
	ck_assert_int_eq(c->port, 8443);
	ck_assert_int_eq(c->crl_check, 1);
	snprintf(expect, sizeof(expect), "%s/state/hegn.db", dir);
	ck_assert_str_eq(c->store, expect);
	ck_assert_int_eq(c->nparties, 1);
	ck_assert_str_eq(c->parties[0].name, "hovmand-care");
	ck_assert_int_eq(c->parties[0].role, ROLE_PROVIDER);
	ck_assert_int_eq(c->parties[0].cipher, ENVELOPE_AES256_CBC);
	ck_assert_int_eq(c->parties[0].padding, ENVELOPE_PKCS1);
	ck_assert_str_eq(c->parties[0].delivery, "pull");
	ck_assert_ptr_null(c->parties[0].key);
	ck_assert_int_eq(c->parties[0].line, 17);
	ck_assert_ptr_nonnull(conf_party(c, "hovmand-care"));
	ck_assert_ptr_null(conf_party(c, "nobody"));
	/* Private-key operations at once: 0 stands for the online CPUs. */
	ck_assert_int_eq(c->crypto_workers, 0);
	/* Large request bodies at once: 128 MiB, four bodies of the default max_body. */
	ck_assert_int_eq(c->body_memory, 134217728);
	ck_assert_int_eq(c->body_memory, 4 * c->max_body);
	conf_free(c);
	c = NULL;
	write_conf(BASE "[limits]\ncrypto_workers = 3\nbody_memory = 0\n");
	ck_assert_int_eq(conf_load(path, &c, &why), 0);
	ck_assert_int_eq(c->crypto_workers, 3);
	ck_assert_int_eq(c->body_memory, 0);
	conf_free(c);
	c = NULL;
	write_conf(BASE "[server]\nmax_body = 65536\n[limits]\nbody_memory = 65536\n");
	ck_assert_int_eq(conf_load(path, &c, &why), 0);
	ck_assert_int_eq(c->body_memory, 65536);
	conf_free(c);
}
END_TEST

/* Each bad configuration is refused with the line and the reason. */
START_TEST(test_errors)
{
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
		{ BASE "[server]\nport = 70000\n", ":18: port: 70000 is outside 1..65535" },
		{ BASE "[server]\nport = abc\n", "'abc' is not a number" },
		{ BASE "[server]\nbogus = 1\n", "unknown keyword 'bogus' in [server]" },
		{ BASE "[nowhere]\nx = 1\n", "unknown section [nowhere]" },
		{ "[server]\ntls_key = k\n[store]\nlocation = x\n", "'tls_cert' is required in [server]" },
		{ BASE "[party a]\nrole = boss\ncert = a.pem\n", "'boss' is not visitation" },
		{ BASE "[party A b]\nrole = provider\ncert = a.pem\n", "party name 'A b'" },
		{ BASE "[party gateway]\nrole = provider\ncert = a.pem\n", "reserved" },
		/* Found by fuzz_conf: a nameless party wrote into struct conf. */
		{ BASE "[party]\nrole = provider\ncert = a.pem\n", "[party] needs a name" },
		{ BASE "[party a]\nrole = provider\n", "'cert' is required in [party a] (line 17)" },
		{ BASE "[party a]\nrole = provider\ncert = a.pem\ndelivery = pigeon\n",
		    "unknown delivery channel 'pigeon'" },
		{ BASE "[party a]\nrole = provider\ncert = a.pem\ncipher = des\n", "'des' is not" },
		{ BASE "[pki]\ncrl_check = maybe\n", "'maybe' is not yes or no" },
		{ BASE "[server]\nport = 1\nport = 2\n", "'port' given twice" },
		{ BASE "this is not ini\n", ":17: syntax error" },
		{ BASE "[limits]\ncrypto_workers = 1025\n", "crypto_workers: 1025 is outside 0..1024" },
		{ BASE "[limits]\nbody_memory = 1000000\n",
		    "body_memory: 1000000 is less than max_body (33554432)" },
		{ BASE "[server]\nmax_body = 65536\n[limits]\nbody_memory = 65535\n",
		    "body_memory: 65535 is less than max_body (65536)" },
		{ BASE "[limits]\nbody_memory = -1\n", "body_memory: -1 is outside" },
	};
	struct conf *c;
	struct why why;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = NULL;
		memset(&why, 0, sizeof(why));
		write_conf(cases[i].text);
		ck_assert_int_eq(conf_load(path, &c, &why), HEGN_ERR_CONFIG);
		ck_assert_ptr_null(c);
		ck_assert_msg(strstr(why.text, cases[i].expect) != NULL, "case %zu: got '%s'", i,
		    why.text);
	}
}
END_TEST

START_TEST(test_duplicate_party)
{
	struct conf *c = NULL;
	struct why why = { 0 };

	write_conf(BASE "[party a]\nrole = provider\ncert = a.pem\n[party b]\nrole = provider\n"
	    "cert = b.pem\n[party a]\nrole = provider\n");
	/* inih merges a repeated section only when it follows itself; a later one is a new party. */
	ck_assert_int_eq(conf_load(path, &c, &why), HEGN_ERR_CONFIG);
	ck_assert_msg(strstr(why.text, "party a is defined twice") != NULL, "%s", why.text);
}
END_TEST

START_TEST(test_missing_file)
{
	struct conf *c = NULL;
	struct why why = { 0 };

	ck_assert_int_eq(conf_load("/nonexistent/hegn.conf", &c, &why), HEGN_ERR_CONFIG);
	ck_assert(strstr(why.text, "/nonexistent/hegn.conf") != NULL);
}
END_TEST

START_TEST(test_file_modes)
{
	struct why why = { 0 };
	char key[160];

	snprintf(key, sizeof(key), "%s/key", dir);
	ck_assert_int_eq(util_write_file(key, "k", 1, 0600, &why), 0);
	ck_assert_int_eq(conf_check_file(key, 1, &why), 0);
	chmod(key, 0640);
	ck_assert_int_eq(conf_check_file(key, 1, &why), HEGN_ERR_CONFIG);
	ck_assert(strstr(why.text, key) != NULL);
	ck_assert(strstr(why.text, "0640") != NULL);
	chmod(key, 0644);
	ck_assert_int_eq(conf_check_file(key, 0, &why), 0);
	chmod(key, 0666);
	ck_assert_int_eq(conf_check_file(key, 0, &why), HEGN_ERR_CONFIG);
	ck_assert(strstr(why.text, "writable by group or others") != NULL);
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_minimal);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_duplicate_party);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_file_modes);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(conf_suite)
