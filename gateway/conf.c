#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "envelope.h"
#include "log.h"
#include "message.h"
#include "util.h"
#include "xmalloc.h"

#include "conf.h"

static const char *const role_names[ROLE_COUNT] = {
	"visitation", "provider", "hospital", "auditor",
};

const char *
conf_role_name(enum party_role role)
{
	if ((int)role < 0 || role >= ROLE_COUNT)
		return NULL;
	return role_names[role];
}

int
conf_role_from_name(const char *name, enum party_role *role)
{
	int i;

	for (i = 0; i < ROLE_COUNT; i++) {
		if (strcmp(name, role_names[i]) == 0) {
			*role = (enum party_role)i;
			return 0;
		}
	}
	return HEGN_ERR_INVALID;
}

enum kw_type { KW_STRING, KW_PATH, KW_INT, KW_BOOL, KW_LOGLEVEL, KW_ROLE, KW_CIPHER, KW_PADDING, KW_CHANNEL };

/*
 * One table of keywords.  section "party" applies to every [party NAME]
 * section; offsets are into struct conf or struct conf_party.
 */
struct keyword {
	const char *section;
	const char *name;
	enum kw_type type;
	size_t offset;
	int64_t min, max;
	const char *def;        /* default, parsed like a value; NULL: none */
	int required;
	const char *help;
};

#define C(f) offsetof(struct conf, f)
#define P(f) offsetof(struct conf_party, f)

static const struct keyword keywords[] = {
	{ "server", "listen", KW_STRING, C(listen), 0, 0, "127.0.0.1", 0,
	    "IPv4 or IPv6 address to listen on" },
	{ "server", "port", KW_INT, C(port), 1, 65535, "8443", 0, "TCP port" },
	{ "server", "tls_cert", KW_PATH, C(tls_cert), 0, 0, NULL, 1,
	    "PEM certificate (and chain) the server presents" },
	{ "server", "tls_key", KW_PATH, C(tls_key), 0, 0, NULL, 1, "PEM private key of tls_cert" },
	{ "server", "max_body", KW_INT, C(max_body), 1024, 1073741824, "33554432", 0,
	    "largest request body in bytes; larger requests get 413" },
	{ "server", "max_connections", KW_INT, C(max_connections), 1, 100000, "256", 0,
	    "most concurrent connections" },
	{ "server", "pid_file", KW_PATH, C(pid_file), 0, 0, NULL, 0, "file hegnd writes its pid to" },
	{ "server", "user", KW_STRING, C(user), 0, 0, NULL, 0,
	    "account the network process runs as when hegnd starts as root (docs/PRIVSEP.md); "
	    "unset: hegn, else nobody" },
	{ "server", "seccomp", KW_BOOL, C(seccomp), 0, 1, "no", 0,
	    "confine the network process to a list of system calls (docs/PRIVSEP.md)" },
	{ "server", "log_level", KW_LOGLEVEL, C(log_level), 0, 0, "info", 0,
	    "error, warn, info or debug" },
	{ "store", "location", KW_PATH, C(store), 0, 0, NULL, 1,
	    "database: a path (SQLite) or sqlite:PATH" },
	{ "pki", "anchors", KW_PATH, C(anchors), 0, 0, NULL, 1, "PEM trust anchors (root CAs)" },
	{ "pki", "chain", KW_PATH, C(chain), 0, 0, NULL, 0, "PEM intermediate CA certificates" },
	{ "pki", "crl", KW_PATH, C(crl), 0, 0, NULL, 0, "PEM CRLs of every CA in the chains" },
	{ "pki", "crl_check", KW_BOOL, C(crl_check), 0, 1, "yes", 0,
	    "require a current CRL for every certificate of a chain" },
	{ "gateway", "cert", KW_PATH, C(gateway_cert), 0, 0, NULL, 1,
	    "the gateway's certificate: sealed submissions are encrypted to it" },
	{ "gateway", "key", KW_PATH, C(gateway_key), 0, 0, NULL, 1, "the gateway's private key" },
	{ "gateway", "citizen_key", KW_PATH, C(citizen_key), 0, 0, NULL, 1,
	    "secret key (64 hex digits) for the keyed hash that stands for a CPR in the store and audit log" },
	{ "policy", "dir", KW_PATH, C(policy_dir), 0, 0, NULL, 1,
	    "folder of *.policy files (docs/policies.md)" },
	{ "audit", "key", KW_PATH, C(audit_key), 0, 0, NULL, 1,
	    "Ed25519 signer key (C2SP note format) for the audit log's checkpoints" },
	{ "audit", "pubkey", KW_PATH, C(audit_pubkey), 0, 0, NULL, 1,
	    "the matching verifier key, for `hegn audit verify`" },
	{ "audit", "origin", KW_STRING, C(audit_origin), 0, 0, "hegn audit log", 0,
	    "the checkpoints' origin line: names this log" },
	{ "audit", "checkpoint_interval", KW_INT, C(checkpoint_interval), 5, 86400, "60", 0,
	    "seconds between checkpoints while there are new entries" },
	{ "audit", "retention_days", KW_INT, C(retention_days), 0, 36500, "0", 0,
	    "days message content is kept (0: for ever); the audit log is kept whole" },
	{ "delivery", "ca", KW_PATH, C(delivery_ca), 0, 0, NULL, 0,
	    "push and smime-mail: CA file to verify the peers' servers (default: the system's)" },
	{ "delivery", "mail_from", KW_STRING, C(mail_from), 0, 0, "hegn@localhost", 0,
	    "smime-mail: the sender address" },
	{ "delivery", "smtp_url", KW_STRING, C(smtp_url), 0, 0, "smtp://127.0.0.1:25", 0,
	    "smime-mail: smtp://host:port (STARTTLS required) or smtps://host:port" },
	{ "delivery", "smtp_insecure", KW_BOOL, C(smtp_insecure), 0, 1, "no", 0,
	    "smime-mail: allow SMTP without TLS (tests only; the mail is encrypted anyway)" },
	{ "delivery", "fax_command", KW_STRING, C(fax_command), 0, 0, "sendfax -n -d {number}", 0,
	    "fax: the command the PDF's path is appended to" },
	{ "delivery", "post_command", KW_STRING, C(post_command), 0, 0, "lp", 0,
	    "post: the print command the PDF's path is appended to" },
	{ "delivery", "resend_after", KW_INT, C(resend_after), 1, 86400, "1800", 0,
	    "seconds without a receipt before a resend (MedCom: 30 minutes)" },
	{ "delivery", "max_resends", KW_INT, C(max_resends), 0, 10, "2", 0,
	    "resends on one channel (MedCom: 2)" },
	{ "delivery", "retry_base", KW_INT, C(retry_base), 1, 3600, "30", 0,
	    "seconds before the first retry of a failed attempt; doubles each time, with jitter" },
	{ "delivery", "retry_max", KW_INT, C(retry_max), 1, 86400, "3600", 0,
	    "longest wait between retries" },
	{ "delivery", "deadline", KW_INT, C(deadline[MSG_KIND_COUNT]), 60, 31536000, "86400", 0,
	    "default seconds from submission to receipt before falling back" },
	{ "delivery", "deadline_referral", KW_INT, C(deadline[MSG_REFERRAL]), 0, 31536000, "0", 0,
	    "per kind (0: the default); likewise deadline_<kind> for every kind" },
	{ "delivery", "deadline_care_update", KW_INT, C(deadline[MSG_CARE_UPDATE]), 0, 31536000, "0", 0, "" },
	{ "delivery", "deadline_cancellation", KW_INT, C(deadline[MSG_CANCELLATION]), 0, 31536000, "0", 0, "" },
	{ "delivery", "deadline_admission_notice", KW_INT, C(deadline[MSG_ADMISSION_NOTICE]), 0, 31536000, "0", 0, "" },
	{ "delivery", "deadline_discharge_notice", KW_INT, C(deadline[MSG_DISCHARGE_NOTICE]), 0, 31536000, "7200", 0, "" },
	{ "delivery", "deadline_leave_notice", KW_INT, C(deadline[MSG_LEAVE_NOTICE]), 0, 31536000, "0", 0, "" },
	{ "delivery", "deadline_death_notice", KW_INT, C(deadline[MSG_DEATH_NOTICE]), 0, 31536000, "900", 0, "" },
	{ "delivery", "deadline_change_request", KW_INT, C(deadline[MSG_CHANGE_REQUEST]), 0, 31536000, "0", 0, "" },
	{ "delivery", "deadline_observation", KW_INT, C(deadline[MSG_OBSERVATION]), 0, 31536000, "0", 0, "" },
	{ "delivery", "deadline_time_usage", KW_INT, C(deadline[MSG_TIME_USAGE]), 0, 31536000, "0", 0, "" },
	{ "limits", "max_attachments", KW_INT, C(max_attachments), 0, 1000, "20", 0,
	    "attachments per message" },
	{ "limits", "max_attachment_bytes", KW_INT, C(max_attachment_bytes), 0, 1073741824,
	    "20971520", 0, "decoded size of one attachment" },
	{ "limits", "requests_per_minute", KW_INT, C(requests_per_minute), 0, 1000000, "600", 0,
	    "requests a minute per party (per address without a client certificate); more get "
	    "429 with Retry-After (0: no limit)" },
	{ "limits", "request_burst", KW_INT, C(request_burst), 0, 1000000, "0", 0,
	    "requests a party may make at once before the per-minute rate applies "
	    "(0: requests_per_minute)" },
	{ "limits", "connections_per_ip", KW_INT, C(connections_per_ip), 0, 100000, "32", 0,
	    "concurrent connections from one client address; more are closed at once (0: no limit)" },
	{ "limits", "max_header_bytes", KW_INT, C(max_header_bytes), 8192, 16777216, "131072", 0,
	    "memory for one connection's request line and headers; larger requests get 431" },
	{ "limits", "connection_timeout", KW_INT, C(connection_timeout), 1, 3600, "60", 0,
	    "seconds a connection may stay idle before it is closed" },
	/* Performance (issue 9, docs/performance.md). */
	{ "limits", "crypto_workers", KW_INT, C(crypto_workers), 0, 1024, "0", 0,
	    "private-key operations (signing, decryption) at once; more wait their turn "
	    "(0: the number of online CPUs)" },
	{ "limits", "body_memory", KW_INT, C(body_memory), 0, INT64_C(1) << 40, "134217728", 0,
	    "bytes of request bodies larger than 64 KiB held at once; a body that does not fit "
	    "gets 503 with Retry-After before it is read (0: no limit; else at least max_body)" },
	{ "party", "role", KW_ROLE, P(role), 0, 0, NULL, 1,
	    "visitation, provider, hospital or auditor" },
	{ "party", "cert", KW_PATH, P(cert), 0, 0, NULL, 1,
	    "PEM certificate(s) registered for the party" },
	{ "party", "key", KW_PATH, P(key), 0, 0, NULL, 0,
	    "PEM private key, when hegn holds the party's key and signs for it" },
	{ "party", "organisation", KW_STRING, P(organisation), 0, 0, NULL, 0,
	    "the organisation's name, for fax and post cover sheets" },
	{ "party", "cvr", KW_STRING, P(cvr), 0, 0, NULL, 0, "CVR number" },
	{ "party", "sor", KW_STRING, P(sor), 0, 0, NULL, 0, "SOR code" },
	{ "party", "gln", KW_STRING, P(gln), 0, 0, NULL, 0, "EAN/GLN location number" },
	{ "party", "delivery", KW_CHANNEL, P(delivery), 0, 0, "pull", 0,
	    "delivery channels in fallback order, e.g. push,smime-mail,fax" },
	{ "party", "push_url", KW_STRING, P(push_url), 0, 0, NULL, 0,
	    "push: the party's https:// endpoint" },
	{ "party", "mail", KW_STRING, P(mail), 0, 0, NULL, 0, "smime-mail: the party's address" },
	{ "party", "folder", KW_PATH, P(folder), 0, 0, NULL, 0, "folder: the drop folder" },
	{ "party", "receipt_folder", KW_PATH, P(receipt_folder), 0, 0, NULL, 0,
	    "folder: where the party leaves receipts (default: the drop folder's sibling receipts/)" },
	{ "party", "fax", KW_STRING, P(fax), 0, 0, NULL, 0, "fax: the party's fax number" },
	{ "party", "format", KW_STRING, P(format), 0, 0, "hegn", 0,
	    "what the party reads: hegn (JSON) or medcom (FHIR, for MedCom messages)" },
	{ "party", "cipher", KW_CIPHER, P(cipher), 0, 0, "aes-256-gcm", 0,
	    "content encryption for this recipient: aes-256-gcm or aes-256-cbc" },
	{ "party", "signature", KW_PADDING, P(padding), 0, 0, "pss", 0,
	    "RSA signature padding when hegn signs for the party: pss or pkcs1" },
	{ "party", "services", KW_STRING, P(services), 0, 0, NULL, 0,
	    "approved service categories, comma-separated" },
};

#define NKEYWORDS (sizeof(keywords) / sizeof(keywords[0]))

struct parse_state {
	struct conf *c;
	struct why *why;
	int failed;
	char current[128];      /* the section as written */
	struct conf_party *party;
	unsigned char seen[NKEYWORDS];
	unsigned char *party_seen;  /* NKEYWORDS per party */
};

/* The channels a chain may name, in the words hegn.conf uses. */
static const char *const channel_names[] = {
	"pull", "push", "smime-mail", "folder", "fax", "post", NULL
};

/* A delivery chain: channel names separated by commas, each once. */
static int
channel_chain_check(const char *value, struct why *why)
{
	char copy[256], *tok, *save = NULL, seen[8] = { 0 };
	size_t i;

	if (*value == '\0' || strlen(value) >= sizeof(copy))
		return why_set(why, HEGN_ERR_CONFIG, "a chain of channels such as pull,fax");
	snprintf(copy, sizeof(copy), "%s", value);
	for (tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		for (i = 0; channel_names[i] != NULL; i++)
			if (strcmp(tok, channel_names[i]) == 0)
				break;
		if (channel_names[i] == NULL)
			return why_set(why, HEGN_ERR_CONFIG,
			    "unknown delivery channel '%s' (known: pull, push, smime-mail, folder, fax, "
			    "post)", tok);
		if (seen[i]++)
			return why_set(why, HEGN_ERR_CONFIG, "channel '%s' named twice", tok);
	}
	return 0;
}

static int
parse_value(const struct keyword *kw, void *base, const char *value, const char *cfgpath,
    struct why *why)
{
	char *end;
	long long v;
	int iv;

	switch (kw->type) {
	case KW_STRING:
	case KW_CHANNEL:
		if (kw->type == KW_CHANNEL && channel_chain_check(value, why) != 0)
			return why_prefix(why, HEGN_ERR_CONFIG, "%s", kw->name);
		free(*(char **)((char *)base + kw->offset));
		*(char **)((char *)base + kw->offset) = xstrdup(value);
		return 0;
	case KW_PATH:
		if (*value == '\0')
			return why_set(why, HEGN_ERR_CONFIG, "%s: empty path", kw->name);
		free(*(char **)((char *)base + kw->offset));
		if (strncmp(value, "sqlite:", 7) == 0) {
			char *p = util_path_relative_to(cfgpath, value + 7);

			*(char **)((char *)base + kw->offset) = xasprintf("sqlite:%s", p);
			free(p);
		} else {
			*(char **)((char *)base + kw->offset) = util_path_relative_to(cfgpath, value);
		}
		return 0;
	case KW_INT:
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0')
			return why_set(why, HEGN_ERR_CONFIG, "%s: '%s' is not a number", kw->name, value);
		if (v < kw->min || v > kw->max)
			return why_set(why, HEGN_ERR_CONFIG, "%s: %lld is outside %lld..%lld", kw->name,
			    v, (long long)kw->min, (long long)kw->max);
		if (kw->offset == C(max_body) || kw->offset == C(max_connections) ||
		    kw->offset == C(max_attachments) || kw->offset == C(max_attachment_bytes) ||
		    kw->offset == C(body_memory))
			*(int64_t *)((char *)base + kw->offset) = v;
		else
			*(int *)((char *)base + kw->offset) = (int)v;
		return 0;
	case KW_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
			iv = 1;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
			iv = 0;
		else
			return why_set(why, HEGN_ERR_CONFIG, "%s: '%s' is not yes or no", kw->name, value);
		*(int *)((char *)base + kw->offset) = iv;
		return 0;
	case KW_LOGLEVEL:
		if ((iv = log_level_from_name(value)) < 0)
			return why_set(why, HEGN_ERR_CONFIG, "%s: '%s' is not error, warn, info or debug",
			    kw->name, value);
		*(int *)((char *)base + kw->offset) = iv;
		return 0;
	case KW_ROLE: {
		enum party_role role;

		if (conf_role_from_name(value, &role) != 0)
			return why_set(why, HEGN_ERR_CONFIG,
			    "%s: '%s' is not visitation, provider, hospital or auditor", kw->name, value);
		*(enum party_role *)((char *)base + kw->offset) = role;
		return 0;
	}
	case KW_CIPHER:
		if (strcmp(value, "aes-256-gcm") == 0)
			iv = ENVELOPE_AES256_GCM;
		else if (strcmp(value, "aes-256-cbc") == 0)
			iv = ENVELOPE_AES256_CBC;
		else
			return why_set(why, HEGN_ERR_CONFIG, "%s: '%s' is not aes-256-gcm or aes-256-cbc",
			    kw->name, value);
		*(int *)((char *)base + kw->offset) = iv;
		return 0;
	case KW_PADDING:
		if (strcmp(value, "pss") == 0)
			iv = ENVELOPE_PSS;
		else if (strcmp(value, "pkcs1") == 0)
			iv = ENVELOPE_PKCS1;
		else
			return why_set(why, HEGN_ERR_CONFIG, "%s: '%s' is not pss or pkcs1", kw->name, value);
		*(int *)((char *)base + kw->offset) = iv;
		return 0;
	}
	return why_set(why, HEGN_ERR_INTERNAL, "%s: unknown keyword type", kw->name);
}

static int
valid_party_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    (s[i] == '-' && i > 0)))
			return 0;
	return 1;
}

/* inih does not tell the handler its line: find a section's line for messages. */
static int
section_line(const char *path, const char *section)
{
	char line[512], want[160];
	FILE *f;
	int n = 0, found = 0;

	snprintf(want, sizeof(want), "[%s]", section);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, want) == 0) {
			found = n;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Start a [party NAME] section. */
static int
start_party(struct parse_state *st, const char *name)
{
	struct conf *c = st->c;
	size_t i;

	if (!valid_party_name(name))
		return why_set(st->why, HEGN_ERR_CONFIG,
		    "party name '%s' must be 1-64 characters of a-z, 0-9 and '-'", name);
	if (strcmp(name, "gateway") == 0)
		return why_set(st->why, HEGN_ERR_CONFIG, "party name 'gateway' is reserved for hegn itself");
	for (i = 0; i < c->nparties; i++)
		if (strcmp(c->parties[i].name, name) == 0)
			return why_set(st->why, HEGN_ERR_CONFIG, "party %s is defined twice (first at line %d)",
			    name, c->parties[i].line);
	c->parties = xrealloc(c->parties, (c->nparties + 1) * sizeof(*c->parties));
	st->party_seen = xrealloc(st->party_seen, (c->nparties + 1) * NKEYWORDS);
	memset(st->party_seen + c->nparties * NKEYWORDS, 0, NKEYWORDS);
	st->party = &c->parties[c->nparties++];
	memset(st->party, 0, sizeof(*st->party));
	st->party->name = xstrdup(name);
	st->party->line = section_line(c->path, st->current);
	return 0;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	const char *kwsection = section;
	unsigned char *seen = st->seen;
	void *base = st->c;
	size_t i;

	if (st->failed)
		return 1;       /* report only the first problem */
	if (strncmp(section, "party ", 6) == 0) {
		if (strcmp(st->current, section) != 0) {
			snprintf(st->current, sizeof(st->current), "%s", section);
			if (start_party(st, section + 6) != 0)
				goto fail;
		}
		kwsection = "party";
		seen = st->party_seen + (size_t)(st->party - st->c->parties) * NKEYWORDS;
		base = st->party;
	} else if (strcmp(section, "party") == 0) {
		/*
		 * Without a name there is no party record: the party keywords
		 * would be written into struct conf at party offsets.
		 */
		why_set(st->why, HEGN_ERR_CONFIG, "section [party] needs a name: [party NAME]");
		goto fail;
	} else {
		snprintf(st->current, sizeof(st->current), "%s", section);
	}
	for (i = 0; i < NKEYWORDS; i++) {
		if (strcmp(keywords[i].section, kwsection) == 0 && strcmp(keywords[i].name, name) == 0)
			break;
	}
	if (i == NKEYWORDS) {
		for (i = 0; i < NKEYWORDS; i++)
			if (strcmp(keywords[i].section, kwsection) == 0)
				break;
		if (i == NKEYWORDS)
			why_set(st->why, HEGN_ERR_CONFIG, "unknown section [%s]", section);
		else
			why_set(st->why, HEGN_ERR_CONFIG, "unknown keyword '%s' in [%s]", name, section);
		goto fail;
	}
	if (seen[i]) {
		why_set(st->why, HEGN_ERR_CONFIG, "'%s' given twice in [%s]", name, section);
		goto fail;
	}
	seen[i] = 1;
	if (parse_value(&keywords[i], base, value, st->c->path, st->why) != 0)
		goto fail;
	return 1;
fail:
	st->failed = 1;
	return 0;
}

static int
apply_defaults(struct parse_state *st, const char *section, void *base, unsigned char *seen,
    const char *label)
{
	size_t i;

	for (i = 0; i < NKEYWORDS; i++) {
		if (strcmp(keywords[i].section, section) != 0 || seen[i])
			continue;
		if (keywords[i].required)
			return why_set(st->why, HEGN_ERR_CONFIG, "%s: '%s' is required in %s",
			    st->c->path, keywords[i].name, label);
		if (keywords[i].def != NULL &&
		    parse_value(&keywords[i], base, keywords[i].def, st->c->path, st->why) != 0)
			return HEGN_ERR_INTERNAL;
	}
	return 0;
}

int
conf_load(const char *path, struct conf **out, struct why *why)
{
	struct parse_state st;
	struct conf *c;
	char label[160];
	size_t i;
	int line, r;

	*out = NULL;
	memset(&st, 0, sizeof(st));
	c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(path);
	st.c = c;
	st.why = why;
	line = ini_parse(path, handler, &st);
	if (line < 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "%s: cannot open (%s)", path, strerror(errno));
		goto out;
	}
	if (line > 0) {
		if (st.failed)
			r = why_prefix(why, HEGN_ERR_CONFIG, "%s:%d", path, line);
		else
			r = why_set(why, HEGN_ERR_CONFIG, "%s:%d: syntax error", path, line);
		goto out;
	}
	if ((r = apply_defaults(&st, "server", c, st.seen, "[server]")) != 0 ||
	    (r = apply_defaults(&st, "store", c, st.seen, "[store]")) != 0 ||
	    (r = apply_defaults(&st, "pki", c, st.seen, "[pki]")) != 0 ||
	    (r = apply_defaults(&st, "gateway", c, st.seen, "[gateway]")) != 0 ||
	    (r = apply_defaults(&st, "limits", c, st.seen, "[limits]")) != 0 ||
	    (r = apply_defaults(&st, "policy", c, st.seen, "[policy]")) != 0 ||
	    (r = apply_defaults(&st, "audit", c, st.seen, "[audit]")) != 0 ||
	    (r = apply_defaults(&st, "delivery", c, st.seen, "[delivery]")) != 0)
		goto out;
	/* A body of the largest size allowed must fit, or it could never be read. */
	if (c->body_memory != 0 && c->body_memory < c->max_body) {
		r = why_set(why, HEGN_ERR_CONFIG, "%s: body_memory: %lld is less than max_body (%lld): "
		    "a body of the largest size allowed could never be read", path,
		    (long long)c->body_memory, (long long)c->max_body);
		goto out;
	}
	for (i = 0; i < c->nparties; i++) {
		snprintf(label, sizeof(label), "[party %s] (line %d)", c->parties[i].name,
		    c->parties[i].line);
		if ((r = apply_defaults(&st, "party", &c->parties[i], st.party_seen + i * NKEYWORDS,
		    label)) != 0)
			goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	free(st.party_seen);
	conf_free(c);
	return r;
}

void
conf_free(struct conf *c)
{
	size_t i, k;

	if (c == NULL)
		return;
	for (i = 0; i < c->nparties; i++) {
		free(c->parties[i].name);
		for (k = 0; k < NKEYWORDS; k++)
			if (strcmp(keywords[k].section, "party") == 0 &&
			    (keywords[k].type == KW_STRING || keywords[k].type == KW_PATH ||
			    keywords[k].type == KW_CHANNEL))
				free(*(char **)((char *)&c->parties[i] + keywords[k].offset));
	}
	free(c->parties);
	for (k = 0; k < NKEYWORDS; k++)
		if (strcmp(keywords[k].section, "party") != 0 &&
		    (keywords[k].type == KW_STRING || keywords[k].type == KW_PATH ||
		    keywords[k].type == KW_CHANNEL))
			free(*(char **)((char *)c + keywords[k].offset));
	free(c->path);
	free(c);
}

const struct conf_party *
conf_party(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nparties; i++)
		if (strcmp(c->parties[i].name, name) == 0)
			return &c->parties[i];
	return NULL;
}

int
conf_check_file(const char *path, int is_secret, struct why *why)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return why_set(why, HEGN_ERR_CONFIG, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return why_set(why, HEGN_ERR_CONFIG, "%s: not a regular file", path);
	/* As sshd's StrictModes: another user who owns the file can change it. */
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return why_set(why, HEGN_ERR_CONFIG,
		    "%s: owned by uid %u, neither root nor the user hegn runs as (uid %u)",
		    path, (unsigned)st.st_uid, (unsigned)geteuid());
	if (is_secret && (st.st_mode & 077) != 0)
		return why_set(why, HEGN_ERR_CONFIG,
		    "%s: key file is accessible by group or others (mode %04o): chmod 600 it",
		    path, (unsigned)(st.st_mode & 07777));
	if (!is_secret && (st.st_mode & 022) != 0)
		return why_set(why, HEGN_ERR_CONFIG,
		    "%s: writable by group or others (mode %04o): chmod go-w it",
		    path, (unsigned)(st.st_mode & 07777));
	return 0;
}

void
conf_print_keywords(void *stream)
{
	FILE *f = stream;
	const char *last = "";
	size_t i;

	for (i = 0; i < NKEYWORDS; i++) {
		if (strcmp(last, keywords[i].section) != 0) {
			fprintf(f, "[%s]\n", strcmp(keywords[i].section, "party") == 0 ?
			    "party NAME" : keywords[i].section);
			last = keywords[i].section;
		}
		fprintf(f, "  %-22s %s%s%s%s\n", keywords[i].name, keywords[i].help,
		    keywords[i].required ? " (required)" : "",
		    keywords[i].def ? "; default " : "", keywords[i].def ? keywords[i].def : "");
	}
}
