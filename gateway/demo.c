#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/pem.h>
#include <sodium.h>

#include "audit.h"
#include "certgen.h"
#include "demo.h"
#include "message.h"
#include "policies_builtin.h"
#include "user.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

struct demo_party {
	const char *name;
	const char *role;
	const char *org;
	const char *cvr;
	const char *sor;
	const char *gln;
	int hosted;             /* hegn holds the key and signs for it */
	const char *services;   /* approved service categories (providers) */
	enum { VALID, REVOKED, EXPIRED } status;
};

/*
 * The demo parties.  The hospital and the visitation office carry the SOR
 * and GLN identifiers of MedCom's published examples so those route as-is;
 * the others have made-up GLNs with a correct GS1 check digit.
 */
static const struct demo_party parties[] = {
	{ "ringsted-visitation", "visitation", "Ringsted Kommune, Visitationen", "19438414",
	    "953741000016009", "5790001348120", 1, NULL, VALID },
	{ "hovmand-care", "provider", "Hovmand Care ApS", "38291746", NULL, "5790009000013", 0,
	    "practical_help", VALID },
	{ "ringsted-homecare", "provider", "Ringsted Kommune, Hjemmeplejen", "19438422", NULL,
	    "5790009000020", 1, "practical_help,personal_care,meals,nursing", VALID },
	{ "region-hospital", "hospital", "Region Sjaelland, Sjaellands Universitetshospital",
	    "29190623", "265161000016000", "5790000209354", 0, NULL, VALID },
	{ "ringsted-audit", "auditor", "Ringsted Kommune, Revision", "19438430", NULL,
	    "5790009000037", 1, NULL, VALID },
	{ "revoked-provider", "provider", "Tilbagekaldt Pleje ApS", "40112233", NULL,
	    "5790009000044", 0, "practical_help", REVOKED },
	{ "expired-provider", "provider", "Udloebet Omsorg ApS", "40445566", NULL,
	    "5790009000051", 0, "practical_help", EXPIRED },
};
#define NBUILTIN (sizeof(parties) / sizeof(parties[0]))

/*
 * The world of one demo: the built-in parties plus any extra providers
 * (`--providers N`, for the benchmark), and the key type of every key.
 */
struct demo_world {
	struct demo_party *p;
	size_t n;
	char **strings;         /* the extra providers' names and numbers */
	size_t nstrings;
	enum certgen_keytype keytype;
};

#define NPARTIES (w->n)
/*
 * Keys: root, issuing CA, gateway, one per party, then the TLS server's: a
 * key of its own, so that the network process, which terminates TLS, holds
 * no key that opens sealed messages or signs as the gateway (docs/PRIVSEP.md).
 */
#define NKEYS (4 + NPARTIES)
#define TLS_KEY (3 + NPARTIES)

struct keygen_job {
	EVP_PKEY **keys;
	size_t from, step, nkeys;
	enum certgen_keytype keytype;
	int failed;
	struct why why;
};

static void *
keygen_worker(void *arg)
{
	struct keygen_job *job = arg;
	size_t i;

	for (i = job->from; i < job->nkeys; i += job->step)
		if (certgen_key(job->keytype, 3072, &job->keys[i], &job->why) != 0) {
			job->failed = 1;
			break;
		}
	return NULL;
}

/* RSA-3072 generation dominates: use both cores. */
static int
make_keys(const struct demo_world *w, EVP_PKEY **keys, struct why *why)
{
	struct keygen_job jobs[2];
	pthread_t t;
	int r = 0;

	memset(jobs, 0, sizeof(jobs));
	jobs[0].keys = jobs[1].keys = keys;
	jobs[0].nkeys = jobs[1].nkeys = NKEYS;
	jobs[0].keytype = jobs[1].keytype = w->keytype;
	jobs[0].from = 0;
	jobs[1].from = 1;
	jobs[0].step = jobs[1].step = 2;
	if (pthread_create(&t, NULL, keygen_worker, &jobs[1]) != 0)
		return why_set(why, HEGN_ERR_INTERNAL, "cannot start a key generation thread");
	keygen_worker(&jobs[0]);
	pthread_join(t, NULL);
	if (jobs[0].failed)
		r = why_set(why, jobs[0].why.code, "%s", jobs[0].why.text);
	else if (jobs[1].failed)
		r = why_set(why, jobs[1].why.code, "%s", jobs[1].why.text);
	return r;
}

static uint64_t
random_serial(void)
{
	uint64_t s;

	randombytes_buf(&s, sizeof(s));
	return (s >> 1) | 1;    /* positive and non-zero */
}

static int
dir_is_empty_or_missing(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (d == NULL)
		return errno == ENOENT;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

static int
write_text(const char *dir, const char *name, const char *text, int mode, struct why *why)
{
	char *path = xasprintf("%s/%s", dir, name);
	int r = util_write_file(path, text, strlen(text), mode, why);

	free(path);
	return r;
}

static char *
conf_text(const struct demo_world *w, const char *dir, int port)
{
	char *s, *t, absdir[4096];
	size_t i;

	if (realpath(dir, absdir) == NULL)
		snprintf(absdir, sizeof(absdir), "%s", dir);
	s = xasprintf(
	    "# hegn.conf: the demo world made by `hegn demo init`. See hegn.conf(5).\n"
	    "# Relative paths are relative to this file.\n"
	    "\n"
	    "[server]\n"
	    "listen = 127.0.0.1\n"
	    "port = %d\n"
	    "tls_cert = pki/gateway-tls.pem\n"
	    "tls_key = pki/gateway-tls.key\n"
	    "pid_file = run/hegnd.pid\n"
	    "log_level = info\n"
	    "\n"
	    "[store]\n"
	    "location = state/hegn.db\n"
	    "\n"
	    "[pki]\n"
	    "anchors = pki/ca.pem\n"
	    "chain = pki/chain.pem\n"
	    "crl = pki/crl.pem\n"
	    "crl_check = yes\n"
	    "\n"
	    "[gateway]\n"
	    "cert = pki/gateway.pem\n"
	    "key = pki/gateway.key\n"
	    "citizen_key = state/citizen.key\n"
	    "\n"
	    "[policy]\n"
	    "dir = policies\n"
	    "\n"
	    "[audit]\n"
	    "key = state/audit.key\n"
	    "pubkey = audit.pub\n"
	    "origin = hegn.demo.ringsted.dk/audit\n"
	    "checkpoint_interval = 60\n"
	    "retention_days = 0\n"
	    "\n"
	    "[delivery]\n"
	    "# Push endpoints and mail servers in the demo use the demo CA.\n"
	    "ca = pki/ca.pem\n"
	    "# The demo has no fax line: its fax command files the PDF in fax-out/.\n"
	    "fax_command = cp {file} %s/fax-out/\n"
	    "post_command = cp {file} %s/fax-out/\n"
	    "resend_after = 1800\n"
	    "max_resends = 2\n"
	    "deadline = 86400\n"
	    "deadline_discharge_notice = 7200\n"
	    "deadline_death_notice = 900\n"
	    "\n"
	    "[limits]\n"
	    "max_attachments = 20\n"
	    "max_attachment_bytes = 20971520\n", port, absdir, absdir);
	for (i = 0; i < NPARTIES; i++) {
		const struct demo_party *p = &w->p[i];

		t = xasprintf("%s\n[party %s]\nrole = %s\norganisation = %s\ncert = pki/%s.pem\n%s%s%s"
		    "cvr = %s\n%s%s%sgln = %s\ndelivery = %s\ncipher = aes-256-gcm\n%s%s%s",
		    s, p->name, p->role, p->org, p->name,
		    p->hosted ? "key = pki/" : "", p->hosted ? p->name : "", p->hosted ? ".key\n" : "",
		    p->cvr, p->sor ? "sor = " : "", p->sor ? p->sor : "", p->sor ? "\n" : "", p->gln,
		    strcmp(p->name, "hovmand-care") == 0 ? "pull,fax\nfax = +4557671234" : "pull",
		    p->services ? "services = " : "", p->services ? p->services : "",
		    p->services ? "\n" : "");
		free(s);
		s = t;
	}
	return s;
}

/* The demo's staff users, one per role and provider, with random passwords. */
static const struct {
	const char *username, *role, *party;
} demo_staff[] = {
	{ "karin", "caseworker", "ringsted-visitation" },
	{ "admin", "administrator", "ringsted-visitation" },
	{ "hovmand", "dispatcher", "hovmand-care" },
	{ "hjemmepleje", "dispatcher", "ringsted-homecare" },
	{ "revisor", "auditor", "ringsted-audit" },
};

static int
demo_users(const char *dir, struct store *store, struct why *why)
{
	struct store_tx *tx = NULL;
	char *lines = xstrdup(""), *t, pw[17], hash[USER_HASH_MAX], *path = NULL;
	uint8_t raw[12];
	size_t i;
	int r;

	if ((r = store_begin(store, 1, &tx, why)) != 0)
		goto out;
	/* A new store nobody else uses yet: hashing inside the transaction holds up no one. */
	for (i = 0; i < sizeof(demo_staff) / sizeof(demo_staff[0]); i++) {
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2base64(pw, sizeof(pw), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		if ((r = user_hash_password(pw, hash, why)) != 0 ||
		    (r = user_add(tx, demo_staff[i].username, demo_staff[i].party, demo_staff[i].role,
		    hash, util_now_ms(), why)) != 0)
			goto out;
		t = xasprintf("%s%s %s %s %s\n", lines, demo_staff[i].username, pw,
		    demo_staff[i].role, demo_staff[i].party);
		freezero(lines, strlen(lines));
		lines = t;
	}
	if ((r = store_commit(tx, why)) != 0) {
		tx = NULL;
		goto out;
	}
	tx = NULL;
	path = xasprintf("%s/demo-users.txt", dir);
	r = util_write_file(path, lines, strlen(lines), 0600, why);
out:
	store_rollback(tx);
	sodium_memzero(pw, sizeof(pw));
	freezero(lines, strlen(lines));
	free(path);
	return r;
}

/* The GS1 check digit of the twelve digits in s. */
static char
gln_check_digit(const char *s)
{
	int sum = 0, i;

	for (i = 11; i >= 0; i--)
		sum += (s[i] - '0') * ((11 - i) % 2 == 0 ? 3 : 1);
	return (char)('0' + (10 - sum % 10) % 10);
}

static char *
world_string(struct demo_world *w, char *s)
{
	w->strings[w->nstrings++] = s;
	return s;
}

/* The built-in parties and nextra providers named provider-01 ... */
static void
world_make(struct demo_world *w, int nextra, enum certgen_keytype keytype)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	w->keytype = keytype;
	w->n = NBUILTIN + (size_t)nextra;
	w->p = xcalloc(w->n, sizeof(*w->p));
	w->strings = xcalloc(4 * (size_t)nextra + 1, sizeof(*w->strings));
	memcpy(w->p, parties, sizeof(parties));
	for (i = NBUILTIN; i < w->n; i++) {
		struct demo_party *p = &w->p[i];
		int k = (int)(i - NBUILTIN) + 1;
		char *gln;

		p->name = world_string(w, xasprintf("provider-%02d", k));
		p->role = "provider";
		p->org = world_string(w, xasprintf("Benchmark Pleje %02d ApS", k));
		p->cvr = world_string(w, xasprintf("4120%04d", k));
		gln = world_string(w, xasprintf("579000910%03d0", k));
		gln[12] = gln_check_digit(gln);
		p->gln = gln;
		p->services = "practical_help";
		p->status = VALID;
	}
}

static void
world_free(struct demo_world *w)
{
	size_t i;

	for (i = 0; i < w->nstrings; i++)
		free(w->strings[i]);
	free(w->strings);
	free(w->p);
}

int
demo_init(const char *dir, int port, struct why *why)
{
	return demo_init_opts(dir, port, 0, CERTGEN_RSA, why);
}

int
demo_init_opts(const char *dir, int port, int nproviders, enum certgen_keytype keytype,
    struct why *why)
{
	struct demo_world world, *w = &world;
	EVP_PKEY **keys = NULL;
	X509 *root = NULL, *issuing = NULL, *gw = NULL, *tls = NULL, **pcerts = NULL;
	X509_CRL *root_crl = NULL, *issuing_crl = NULL;
	struct certgen_subject subj;
	struct store *store = NULL;
	struct buf ex = { 0 };
	uint64_t *revoked = NULL;
	size_t nrevoked = 0, i;
	time_t now = time(NULL);
	const time_t day = 86400;
	char *path = NULL, *text = NULL, *sub = NULL, hex[65];
	uint8_t ckey[32];
	int r;
	BIO *bio = NULL;

	if (port < 1 || port > 65535)
		return why_set(why, HEGN_ERR_INVALID, "--port: %d is not a TCP port", port);
	if (nproviders < 0 || nproviders > 999)
		return why_set(why, HEGN_ERR_INVALID, "--providers: %d is not 0 to 999", nproviders);
	if (!dir_is_empty_or_missing(dir))
		return why_set(why, HEGN_ERR_CONFLICT,
		    "%s exists and is not empty: choose a new folder", dir);
	world_make(w, nproviders, keytype);
	keys = xcalloc(NKEYS, sizeof(*keys));
	pcerts = xcalloc(NPARTIES, sizeof(*pcerts));
	revoked = xcalloc(NPARTIES, sizeof(*revoked));
	static const char *const subdirs[] = { "", "/pki", "/examples", "/state", "/run",
		"/fax-out", "/policies" };
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		sub = xasprintf("%s%s", dir, subdirs[i]);
		r = util_mkdirs(sub, 0755, why);
		free(sub);
		sub = NULL;
		if (r != 0)
			goto out;
	}
	/*
	 * The demo's fax command runs as the account hegnd serves the network
	 * as (docs/PRIVSEP.md): it may drop files here, not list or remove them.
	 */
	sub = xasprintf("%s/fax-out", dir);
	chmod(sub, 01733);
	free(sub);
	sub = xasprintf("%s/state", dir);
	chmod(sub, 0700);
	free(sub);
	sub = xasprintf("%s/pki", dir);

	if ((r = make_keys(w, keys, why)) != 0)
		goto out;

	/* The CA pair imitates "Den Danske Stat OCES rod-CA" and "udstedende-CA 1". */
	memset(&subj, 0, sizeof(subj));
	subj.cn = "hegn demo OCES rod-CA";
	subj.org = "hegn demo (ikke Den Danske Stat)";
	subj.ou = "Test - cti";
	if ((r = certgen_cert(keys[0], &subj, CERTGEN_ROOT_CA, NULL, keys[0], now - day,
	    now + 25 * 365 * day, random_serial(), &root, why)) != 0)
		goto out;
	subj.cn = "hegn demo OCES udstedende-CA 1";
	if ((r = certgen_cert(keys[1], &subj, CERTGEN_ISSUING_CA, root, keys[0], now - day,
	    now + 10 * 365 * day, random_serial(), &issuing, why)) != 0)
		goto out;

	memset(&subj, 0, sizeof(subj));
	subj.cn = "hegn gateway";
	subj.org = "Ringsted Kommune, hegn";
	subj.cvr = "19438414";
	subj.ou = "Test - cti";
	if ((r = certgen_cert(keys[2], &subj, CERTGEN_SERVER, issuing, keys[1], now - day,
	    now + 2 * 365 * day, random_serial(), &gw, why)) != 0 ||
	    (r = certgen_cert(keys[TLS_KEY], &subj, CERTGEN_SERVER, issuing, keys[1], now - day,
	    now + 2 * 365 * day, random_serial(), &tls, why)) != 0)
		goto out;

	for (i = 0; i < NPARTIES; i++) {
		const struct demo_party *p = &w->p[i];
		uint64_t serial = random_serial();
		time_t nb = now - day, na = now + 2 * 365 * day;

		if (p->status == EXPIRED) {
			nb = now - 400 * day;
			na = now - 30 * day;
		}
		memset(&subj, 0, sizeof(subj));
		subj.cn = p->org;
		subj.org = p->org;
		subj.cvr = p->cvr;
		subj.ou = "Test - cti";
		if ((r = certgen_cert(keys[3 + i], &subj, CERTGEN_ORG, issuing, keys[1], nb, na,
		    serial, &pcerts[i], why)) != 0)
			goto out;
		if (p->status == REVOKED)
			revoked[nrevoked++] = serial;
	}
	if ((r = certgen_crl(root, keys[0], NULL, 0, now - 3600, 365, &root_crl, why)) != 0 ||
	    (r = certgen_crl(issuing, keys[1], revoked, nrevoked, now - 3600, 365, &issuing_crl,
	    why)) != 0)
		goto out;

	/* Files. */
#define PKI(name) (free(path), path = xasprintf("%s/%s", sub, (name)))
	if ((r = certgen_write_cert(PKI("ca.pem"), root, why)) != 0 ||
	    (r = certgen_write_cert(PKI("chain.pem"), issuing, why)) != 0 ||
	    (r = certgen_write_cert(PKI("gateway.pem"), gw, why)) != 0 ||
	    (r = certgen_write_key(PKI("gateway.key"), keys[2], why)) != 0)
		goto out;
	{
		X509 *full[2] = { gw, issuing };

		X509 *tls_full[2] = { tls, issuing };

		if ((r = certgen_write_certs(PKI("gateway-fullchain.pem"), full, 2, why)) != 0 ||
		    (r = certgen_write_certs(PKI("gateway-tls.pem"), tls_full, 2, why)) != 0 ||
		    (r = certgen_write_key(PKI("gateway-tls.key"), keys[TLS_KEY], why)) != 0)
			goto out;
	}
	for (i = 0; i < NPARTIES; i++) {
		char name[96];

		snprintf(name, sizeof(name), "%s.pem", w->p[i].name);
		if ((r = certgen_write_cert(PKI(name), pcerts[i], why)) != 0)
			goto out;
		snprintf(name, sizeof(name), "%s.key", w->p[i].name);
		if ((r = certgen_write_key(PKI(name), keys[3 + i], why)) != 0)
			goto out;
	}
	/* One CRL file holds both CAs' CRLs: every level of a chain is checked. */
	{
		BUF_MEM *mem;

		bio = BIO_new(BIO_s_mem());
		if (!PEM_write_bio_X509_CRL(bio, root_crl) || !PEM_write_bio_X509_CRL(bio, issuing_crl)) {
			r = why_set(why, HEGN_ERR_CRYPTO, "cannot encode the demo CRLs");
			goto out;
		}
		BIO_get_mem_ptr(bio, &mem);
		if ((r = util_write_file(PKI("crl.pem"), mem->data, mem->length, 0644, why)) != 0)
			goto out;
	}

	/* The secret behind the keyed hash that stands for a CPR. */
	randombytes_buf(ckey, sizeof(ckey));
	util_hex(ckey, sizeof(ckey), hex);
	sodium_memzero(ckey, sizeof(ckey));
	free(path);
	path = xasprintf("%s/state", dir);
	r = write_text(path, "citizen.key", hex, 0600, why);
	sodium_memzero(hex, sizeof(hex));
	if (r != 0)
		goto out;

	text = conf_text(w, dir, port);
	if ((r = write_text(dir, "hegn.conf", text, 0644, why)) != 0)
		goto out;

	free(path);
	path = xasprintf("%s/examples", dir);
	for (i = 0; i < MSG_KIND_COUNT; i++) {
		enum message_kind k = (enum message_kind)i;
		const char *to;
		char name[64];

		switch (k) {
		case MSG_CHANGE_REQUEST:
		case MSG_OBSERVATION:
		case MSG_TIME_USAGE:
			to = "ringsted-visitation";
			break;
		default:
			to = "hovmand-care";
			break;
		}
		if ((r = message_example(k, to, &ex)) != 0) {
			why_set(why, r, "cannot make the example %s", message_kind_name(k));
			goto out;
		}
		snprintf(name, sizeof(name), "%s/%s.json", path, message_kind_name(k));
		if ((r = util_write_file(name, ex.data, ex.len, 0644, why)) != 0)
			goto out;
		buf_free(&ex, 0);
	}

	for (i = 0; policies_builtin[i].name != NULL; i++) {
		free(path);
		path = xasprintf("%s/policies/%s", dir, policies_builtin[i].name);
		if ((r = util_write_file(path, policies_builtin[i].text,
		    strlen(policies_builtin[i].text), 0644, why)) != 0)
			goto out;
	}
	free(path);
	path = xasprintf("%s/state/audit.key", dir);
	free(text);
	text = xasprintf("%s/audit.pub", dir);
	if ((r = audit_keygen("hegn.demo.ringsted.dk/audit", path, text, why)) != 0)
		goto out;

	free(path);
	path = xasprintf("%s/state/hegn.db", dir);
	if ((r = store_open(path, &store, why)) != 0)
		goto out;
	if ((r = demo_users(dir, store, why)) != 0)
		goto out;
	r = 0;
out:
#undef PKI
	store_close(store);
	BIO_free(bio);
	buf_free(&ex, 0);
	for (i = 0; keys != NULL && i < NKEYS; i++)
		EVP_PKEY_free(keys[i]);
	for (i = 0; pcerts != NULL && i < NPARTIES; i++)
		X509_free(pcerts[i]);
	free(keys);
	free(pcerts);
	free(revoked);
	world_free(w);
	X509_free(root);
	X509_free(issuing);
	X509_free(gw);
	X509_free(tls);
	X509_CRL_free(root_crl);
	X509_CRL_free(issuing_crl);
	free(path);
	free(text);
	free(sub);
	return r;
}
