/*
 * hegn: the command line for staff, administrators and auditors, and a
 * reference client for a provider's side.  See hegn(1).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "audit.h"
#include "client.h"
#include "conf.h"
#include "cpr.h"
#include "demo.h"
#include "envelope.h"
#include "log.h"
#include "message.h"
#include "pki.h"
#include "policy.h"
#include "receipt.h"
#include "relay.h"
#include "render.h"
#include "report.h"
#include "timeusage.h"
#include "signer.h"
#include "util.h"
#include "xmalloc.h"

/* --name value options of one command. */
struct opts {
	int argc;
	char **argv;
	const char *const *names;   /* accepted --names; a trailing '!' marks a flag */
	const char *values[16];
	const char *args[8];        /* positional arguments */
	int nargs;
};

static int
opts_parse(struct opts *o, int argc, char **argv, const char *const *names)
{
	int i, k;

	memset(o->values, 0, sizeof(o->values));
	o->nargs = 0;
	o->names = names;
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0) {
			if (o->nargs == 8) {
				fprintf(stderr, "hegn: too many arguments\n");
				return -1;
			}
			o->args[o->nargs++] = argv[i];
			continue;
		}
		for (k = 0; names[k] != NULL; k++) {
			size_t n = strcspn(names[k], "!");

			if (strlen(argv[i] + 2) == n && strncmp(argv[i] + 2, names[k], n) == 0)
				break;
		}
		if (names[k] == NULL) {
			fprintf(stderr, "hegn: unknown option %s\n", argv[i]);
			return -1;
		}
		if (names[k][strcspn(names[k], "!")] == '!') {
			o->values[k] = "yes";
		} else {
			if (i + 1 >= argc) {
				fprintf(stderr, "hegn: %s needs a value\n", argv[i]);
				return -1;
			}
			o->values[k] = argv[++i];
		}
	}
	return 0;
}

static const char *
opt(const struct opts *o, const char *name)
{
	int k;

	for (k = 0; o->names[k] != NULL; k++)
		if (strncmp(o->names[k], name, strcspn(o->names[k], "!")) == 0 &&
		    strlen(name) == strcspn(o->names[k], "!"))
			return o->values[k];
	return NULL;
}

static int
fail(const char *what, const struct why *why)
{
	fprintf(stderr, "hegn: %s: %s\n", what, why->text[0] ? why->text : hegn_strerror(why->code));
	return 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hegn [-c FILE] COMMAND ...\n"
	    "commands:\n"
	    "  demo init DIR [--port N]          create a demo world in DIR\n"
	    "  send [--as PARTY] FILE.json       submit a message for a party whose key hegn holds\n"
	    "  status ID [--json]                a message's state and delivery log\n"
	    "  fetch --server URL --cert F --key F --ca F --out DIR [--crl F] [--once]\n"
	    "                                    fetch, decrypt and verify as a party, send receipts\n"
	    "  agent --server URL --cert F --key F --ca F --out DIR [--once] [--interval S]\n"
	    "        [--time-usage CSV --to PARTY --gateway-cert F]\n"
	    "                                    the reference client: fetch, write JSON and PDF, receipts,\n"
	    "                                    and time-usage reports from a spreadsheet's CSV\n"
	    "  cert verify FILE [--purpose P] [--at TIME]\n"
	    "                                    validate a certificate as hegnd does\n"
	    "  config keywords                   list hegn.conf's keywords\n"
	    "  policy check --as P --kind K --to P --cpr CPR\n"
	    "                                    the decision, its rule and the classes the recipient gets\n"
	    "  policy show                       the rules as the gateway understands them\n"
	    "  assign add --cpr CPR|--ecpr ECPR --provider P --services S --from DATE [--to DATE]\n"
	    "  assign end --cpr CPR|--ecpr ECPR [--provider P] [--services S] --date DATE"
	    " [--reason TEXT]\n"
	    "  assign list [--cpr CPR|--ecpr ECPR] [--provider P]\n"
	    "  user add NAME --party P --role R [--password-file F]   (else read from stdin)\n"
	    "  user list | user disable NAME | user enable NAME\n"
	    "  audit verify [--export FILE --pubkey FILE]\n"
	    "  audit export [--out FILE]\n"
	    "  audit prove --seq N | --old-size N   an inclusion proof of entry N, or a consistency\n"
	    "                                    proof from the checkpoint at size N, to the latest\n"
	    "  audit query --cpr CPR [--from TIME] [--to TIME]\n"
	    "  fallback ID --channel fax|phone|post --reason TEXT [--recipient P]\n"
	    "  fallback register --channel C --party P [--kind K] [--direction D] --reason TEXT [--at TIME]\n"
	    "  report delivery|edag2 [--from TIME] [--to TIME] [--format text|json|csv]\n"
	    "  deliver [--now TIME]                one delivery scheduler pass (hegnd runs them itself)\n");
	exit(2);
}

static int
cmd_demo(int argc, char **argv)
{
	static const char *const names[] = { "port", "providers", "keytype", NULL };
	struct opts o;
	struct why why = { 0 };
	enum certgen_keytype keytype = CERTGEN_RSA;
	int port = 8443, nproviders = 0;

	if (argc < 1 || strcmp(argv[0], "init") != 0)
		usage();
	if (opts_parse(&o, argc - 1, argv + 1, names) != 0 || o.nargs != 1)
		usage();
	if (opt(&o, "port") != NULL)
		port = atoi(opt(&o, "port"));
	/* Undocumented in usage: the benchmark's world (bench/run.sh). */
	if (opt(&o, "providers") != NULL)
		nproviders = atoi(opt(&o, "providers"));
	if (opt(&o, "keytype") != NULL) {
		if (strcmp(opt(&o, "keytype"), "p256") == 0)
			keytype = CERTGEN_EC_P256;
		else if (strcmp(opt(&o, "keytype"), "rsa") != 0) {
			fprintf(stderr, "hegn: --keytype: rsa or p256\n");
			return 2;
		}
	}
	if (demo_init_opts(o.args[0], port, nproviders, keytype, &why) != 0)
		return fail("demo init", &why);
	printf("demo world created in %s\n"
	    "  configuration  %s/hegn.conf (hegnd will listen on 127.0.0.1:%d)\n"
	    "  start          hegnd -c %s/hegn.conf -D\n"
	    "  examples       %s/examples/\n", o.args[0], o.args[0], port, o.args[0], o.args[0]);
	return 0;
}

/* The base URL of the gateway a configuration describes. */
static char *
conf_url(const struct conf *c)
{
	if (strchr(c->listen, ':') != NULL)
		return xasprintf("https://[%s]:%d", c->listen, c->port);
	return xasprintf("https://%s:%d", c->listen, c->port);
}

static int
cmd_send(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "as", NULL };
	struct opts o;
	struct why why = { 0 };
	struct conf *c = NULL;
	const struct conf_party *p = NULL;
	struct client *cl = NULL;
	struct client_response resp;
	struct buf body = { 0 };
	char *url = NULL, err[600];
	const char *as;
	size_t i;
	int rc = 1;

	memset(&resp, 0, sizeof(resp));
	if (opts_parse(&o, argc, argv, names) != 0 || o.nargs != 1 || conf_path == NULL)
		usage();
	if (conf_load(conf_path, &c, &why) != 0)
		return fail("configuration", &why);
	if ((as = opt(&o, "as")) == NULL) {
		/* Without --as: the only visitation party whose key hegn holds. */
		for (i = 0; i < c->nparties; i++)
			if (c->parties[i].key != NULL && c->parties[i].role == ROLE_VISITATION) {
				as = c->parties[i].name;
				break;
			}
		if (as == NULL) {
			fprintf(stderr, "hegn: send: say which party sends with --as\n");
			goto out;
		}
	}
	if ((p = conf_party(c, as)) == NULL || p->key == NULL) {
		fprintf(stderr, "hegn: send: %s is not a party whose key hegn holds\n", as);
		goto out;
	}
	if (util_read_file(o.args[0], (size_t)c->max_body, &body, &why) != 0) {
		fail("send", &why);
		goto out;
	}
	url = conf_url(c);
	if (client_new(url, p->cert, p->key, c->anchors, &cl, &why) != 0 ||
	    client_request(cl, "POST", "/v1/messages", "application/json", "application/json",
	    body.data, body.len, &resp, &why) != 0) {
		fail("send", &why);
		goto out;
	}
	if (resp.status != 200 && resp.status != 201) {
		fprintf(stderr, "hegn: send: refused: %s\n", client_error_text(&resp, err, sizeof(err)));
		goto out;
	}
	printf("%.*s\n", (int)resp.body.len, resp.body.data);
	rc = 0;
out:
	client_response_clear(&resp);
	client_free(cl);
	buf_free(&body, 1);
	free(url);
	conf_free(c);
	return rc;
}

static int
print_status(json_t *j, int as_json)
{
	json_t *ev, *d;
	size_t i;

	if (as_json) {
		char *s = json_dumps(j, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
		return 0;
	}
	printf("message %s (%s) from %s\n", json_string_value(json_object_get(j, "id")),
	    json_string_value(json_object_get(j, "kind")),
	    json_string_value(json_object_get(j, "from")));
	json_array_foreach(json_object_get(j, "deliveries"), i, d)
		printf("  to %-22s %-8s %s\n", json_string_value(json_object_get(d, "recipient")),
		    json_string_value(json_object_get(d, "channel")),
		    json_string_value(json_object_get(d, "state")));
	printf("delivery log:\n");
	json_array_foreach(json_object_get(j, "events"), i, ev)
		printf("  %s  %-13s %-20s %s\n", json_string_value(json_object_get(ev, "at")),
		    json_string_value(json_object_get(ev, "event")),
		    json_string_value(json_object_get(ev, "party")),
		    json_string_value(json_object_get(ev, "detail")));
	printf("state: %s\n", json_string_value(json_object_get(j, "state")));
	return 0;
}

static int
cmd_status(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "json!", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct why why = { 0 };
	json_t *j = NULL;
	int rc;

	if (opts_parse(&o, argc, argv, names) != 0 || o.nargs != 1 || conf_path == NULL)
		usage();
	if (relay_open(conf_path, RELAY_STORE | RELAY_EXISTING | RELAY_BESIDE, &r, &why) != 0)
		return fail("configuration", &why);
	if (relay_status(r, NULL, o.args[0], &j, &why) != 0) {
		rc = fail("status", &why);
		goto out;
	}
	rc = print_status(j, opt(&o, "json") != NULL);
out:
	json_decref(j);
	relay_close(r);
	return rc;
}

/* Write data to dir/name; 0 or an error. */
static int
write_out(const char *dir, const char *name, const void *data, size_t len, struct why *why)
{
	char *path = xasprintf("%s/%s", dir, name);
	int rc = util_write_file(path, data, len, 0600, why);

	free(path);
	return rc;
}

/*
 * Fetch, open and verify one message, write it to out, and send the signed
 * receipt: accepted when everything checks, rejected with the reason when not.
 */
static int
fetch_one(struct client *cl, struct signer *self, struct pki *pki, const char *out,
    const char *id, const char *kind, const char *from, int pdf)
{
	struct client_response resp, rresp;
	struct buf inner = { 0 }, rjson = { 0 }, rder = { 0 };
	struct envelope_signed *sig = NULL;
	struct receipt rcpt;
	struct why why = { 0 };
	char path[160], name[120], err[600], *subject = NULL;
	const uint8_t *content = NULL;
	size_t clen = 0;
	int rc = 1;

	memset(&resp, 0, sizeof(resp));
	memset(&rresp, 0, sizeof(rresp));
	memset(&rcpt, 0, sizeof(rcpt));
	snprintf(path, sizeof(path), "/v1/messages/%s", id);
	if (client_request(cl, "GET", path, NULL, "application/pkcs7-mime", NULL, 0, &resp,
	    &why) != 0)
		return fail("fetch", &why);
	if (resp.status != 200) {
		fprintf(stderr, "hegn: fetch %s: %s\n", id, client_error_text(&resp, err, sizeof(err)));
		goto out;
	}
	snprintf(rcpt.message_id, sizeof(rcpt.message_id), "%s", id);
	util_sha256_hex(resp.body.data, resp.body.len, rcpt.sha256);
	snprintf(name, sizeof(name), "%s.p7m", id);
	if (write_out(out, name, resp.body.data, resp.body.len, &why) != 0) {
		fail("fetch", &why);
		goto out;
	}
	rcpt.accepted = 1;
	if (signer_decrypt(self, "self", resp.body.data, resp.body.len, &inner, &why) != 0 ||
	    envelope_verify(pki, inner.data, inner.len, 0, &sig, &why) != 0) {
		rcpt.accepted = 0;
		snprintf(rcpt.reason, sizeof(rcpt.reason), "%s", why.text);
	} else {
		content = envelope_signed_content(sig, &clen);
		subject = pki_subject(envelope_signed_signer(sig));
		snprintf(name, sizeof(name), "%s.json", id);
		if (write_out(out, name, content, clen, &why) != 0) {
			fail("fetch", &why);
			goto out;
		}
		if (pdf) {
			struct render_doc doc;
			struct buf pdfb = { 0 };

			memset(&doc, 0, sizeof(doc));
			doc.id = id;
			doc.kind = kind;
			doc.sender = from;
			doc.recipient = "";
			doc.sender_name = subject;
			doc.content = content;
			doc.content_len = clen;
			snprintf(name, sizeof(name), "%s.pdf", id);
			if (render_pdf(&doc, &pdfb, &why) != 0 ||
			    write_out(out, name, pdfb.data, pdfb.len, &why) != 0) {
				buf_free(&pdfb, 1);
				fail("fetch", &why);
				goto out;
			}
			buf_free(&pdfb, 1);
		}
	}
	if (receipt_build(&rcpt, &rjson, &why) != 0 ||
	    signer_sign(self, "self", rjson.data, rjson.len, NULL, &rder, &why) != 0) {
		fail("receipt", &why);
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/messages/%s/receipt", id);
	if (client_request(cl, "POST", path, "application/pkcs7-mime", "application/json",
	    rder.data, rder.len, &rresp, &why) != 0) {
		fail("receipt", &why);
		goto out;
	}
	if (rresp.status != 200) {
		fprintf(stderr, "hegn: receipt for %s refused: %s\n", id,
		    client_error_text(&rresp, err, sizeof(err)));
		goto out;
	}
	printf("%s %s from %s%s%s: written to %s/%s.json; receipt %s (sha256 %s)\n", id, kind, from,
	    subject ? ", signed by " : "", subject ? subject : "", out, id,
	    rcpt.accepted ? "accepted" : "rejected", rcpt.sha256);
	if (!rcpt.accepted)
		printf("  reason: %s\n", rcpt.reason);
	rc = rcpt.accepted ? 0 : 1;
out:
	free(subject);
	envelope_signed_free(sig);
	buf_free(&inner, 1);
	buf_free(&rjson, 0);
	buf_free(&rder, 0);
	client_response_clear(&resp);
	client_response_clear(&rresp);
	return rc;
}

/* Fetch every new message in the inbox; *total and *bad count them. */
static int
fetch_all(struct client *cl, struct signer *self, struct pki *pki, const char *out, int pdf,
    int one_page, int *total, int *bad)
{
	struct client_response resp;
	struct why why = { 0 };
	json_t *j = NULL, *m;
	char after[40] = "0", path[96], err[600];
	size_t i, n;
	int rc = 1;

	memset(&resp, 0, sizeof(resp));
	for (;;) {
		snprintf(path, sizeof(path), "/v1/inbox?after=%s", after);
		if (client_request(cl, "GET", path, NULL, "application/json", NULL, 0, &resp,
		    &why) != 0) {
			fail("inbox", &why);
			goto out;
		}
		if (resp.status != 200) {
			fprintf(stderr, "hegn: inbox: %s\n", client_error_text(&resp, err, sizeof(err)));
			goto out;
		}
		json_decref(j);
		j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
		client_response_clear(&resp);
		if (!json_is_array(json_object_get(j, "messages"))) {
			fprintf(stderr, "hegn: inbox: the server's answer is not an inbox\n");
			goto out;
		}
		n = json_array_size(json_object_get(j, "messages"));
		json_array_foreach(json_object_get(j, "messages"), i, m) {
			const char *id = json_string_value(json_object_get(m, "id"));

			/* The id names files: it must be one of ours. */
			if (id == NULL || !util_valid_id(id)) {
				(*bad)++;
				continue;
			}
			(*total)++;
			if (fetch_one(cl, self, pki, out, id,
			    json_string_value(json_object_get(m, "kind")),
			    json_string_value(json_object_get(m, "from")), pdf) != 0)
				(*bad)++;
		}
		snprintf(after, sizeof(after), "%s",
		    json_string_value(json_object_get(j, "next")) ?
		    json_string_value(json_object_get(j, "next")) : "0");
		if (n == 0 || one_page)
			break;
	}
	rc = 0;
out:
	json_decref(j);
	client_response_clear(&resp);
	return rc;
}

static int
cmd_fetch(int argc, char **argv)
{
	static const char *const names[] = { "server", "cert", "key", "ca", "chain", "crl", "out",
		"once!", NULL };
	struct opts o;
	struct why why = { 0 };
	struct client *cl = NULL;
	struct signer *self = NULL;
	struct pki *pki = NULL;
	int rc = 1, bad = 0, total = 0;

	if (opts_parse(&o, argc, argv, names) != 0 || o.nargs != 0 || !opt(&o, "server") ||
	    !opt(&o, "cert") || !opt(&o, "key") || !opt(&o, "ca") || !opt(&o, "out"))
		usage();
	if (util_mkdirs(opt(&o, "out"), 0700, &why) != 0)
		return fail("fetch", &why);
	if (pki_load(opt(&o, "ca"), opt(&o, "chain"), opt(&o, "crl"),
	    opt(&o, "crl") ? PKI_CRL_CHECK : 0, &pki, &why) != 0)
		return fail("trust anchors", &why);
	self = signer_new();
	if (signer_load(self, "self", opt(&o, "key"), opt(&o, "cert"), NULL, ENVELOPE_PSS,
	    &why) != 0) {
		fail("key", &why);
		goto out;
	}
	if (client_new(opt(&o, "server"), opt(&o, "cert"), opt(&o, "key"), opt(&o, "ca"), &cl,
	    &why) != 0) {
		fail("fetch", &why);
		goto out;
	}
	/* --once: one page of the inbox (up to 100 messages) rather than all of it. */
	if (fetch_all(cl, self, pki, opt(&o, "out"), 0, opt(&o, "once") != NULL, &total, &bad) != 0)
		goto out;
	if (total == 0)
		printf("no new messages\n");
	rc = bad ? 1 : 0;
out:
	client_free(cl);
	signer_free(self);
	pki_free(pki);
	return rc;
}

static volatile sig_atomic_t agent_quit;

static void
agent_on_signal(int sig)
{
	(void)sig;
	agent_quit = 1;
}

/*
 * Submit the time-usage CSV as sealed submissions: each citizen's report is
 * signed with our key and encrypted to the gateway.  The file is renamed
 * *.sent once every report is accepted, so it is never sent twice.
 */
static int
agent_time_usage(struct client *cl, struct signer *self, X509 *gateway, const char *csv,
    const char *to)
{
	struct buf text = { 0 }, *docs = NULL, signed_der = { 0 }, sealed = { 0 };
	struct client_response resp;
	struct why why = { 0 };
	size_t n = 0, i;
	char err[600], *done = NULL;
	int rc = 1, ok = 0;

	memset(&resp, 0, sizeof(resp));
	if (util_read_file(csv, TIMEUSAGE_MAX, &text, &why) != 0 ||
	    timeusage_parse(text.data, text.len, to, &docs, &n, &why) != 0) {
		fail(csv, &why);
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct message *m = NULL;
		struct buf withid = { 0 };
		char id[65], hex[65];

		/*
		 * The id is derived from the report's content, so sending the same
		 * file again after a crash is an idempotent repeat, not a second
		 * report.
		 */
		util_sha256_hex(docs[i].data, docs[i].len, hex);
		snprintf(id, sizeof(id), "tu-%.40s", hex);
		if (message_parse(docs[i].data, docs[i].len, NULL, &m, &why) != 0) {
			fail("time usage", &why);
			goto out;
		}
		message_set_id(m, id);
		rc = message_canonical(m, &withid, &why);
		message_free(m);
		if (rc != 0) {
			fail("time usage", &why);
			rc = 1;
			goto out;
		}
		rc = 1;
		buf_free(&docs[i], 1);
		docs[i] = withid;
		buf_free(&signed_der, 1);
		buf_free(&sealed, 0);
		client_response_clear(&resp);
		if (signer_sign(self, "self", docs[i].data, docs[i].len, id, &signed_der,
		    &why) != 0 || envelope_seal(gateway, ENVELOPE_AES256_GCM, signed_der.data,
		    signed_der.len, 1, &sealed, &why) != 0 ||
		    client_request(cl, "POST", "/v1/messages", "application/pkcs7-mime",
		    "application/json", sealed.data, sealed.len, &resp, &why) != 0) {
			fail("time usage", &why);
			goto out;
		}
		if (resp.status != 201 && resp.status != 200) {
			fprintf(stderr, "hegn: time usage report %zu of %s refused: %s\n", i + 1, csv,
			    client_error_text(&resp, err, sizeof(err)));
			goto out;
		}
		ok++;
	}
	printf("time usage: %d report%s from %s submitted\n", ok, ok == 1 ? "" : "s", csv);
	done = xasprintf("%s.sent", csv);
	if (rename(csv, done) != 0)
		fprintf(stderr, "hegn: cannot rename %s: %s\n", csv, strerror(errno));
	rc = 0;
out:
	free(done);
	client_response_clear(&resp);
	buf_free(&signed_der, 1);
	buf_free(&sealed, 0);
	buf_free(&text, 1);
	timeusage_free(docs, n);
	return rc;
}

static int
cmd_agent(int argc, char **argv)
{
	static const char *const names[] = { "server", "cert", "key", "ca", "chain", "crl", "out",
		"once!", "interval", "time-usage", "to", "gateway-cert", NULL };
	struct opts o;
	struct why why = { 0 };
	struct client *cl = NULL;
	struct signer *self = NULL;
	struct pki *pki = NULL;
	struct sigaction sa;
	X509 *gw = NULL;
	int rc = 1, bad, total, interval = 60;

	if (opts_parse(&o, argc, argv, names) != 0 || o.nargs != 0 || !opt(&o, "server") ||
	    !opt(&o, "cert") || !opt(&o, "key") || !opt(&o, "ca") || !opt(&o, "out"))
		usage();
	if (opt(&o, "interval") != NULL && ((interval = atoi(opt(&o, "interval"))) < 1 ||
	    interval > 86400)) {
		fprintf(stderr, "hegn: agent: --interval: seconds from 1 to 86400\n");
		return 2;
	}
	if (opt(&o, "time-usage") != NULL && (opt(&o, "to") == NULL ||
	    opt(&o, "gateway-cert") == NULL)) {
		fprintf(stderr, "hegn: agent: --time-usage needs --to PARTY and --gateway-cert FILE\n");
		return 2;
	}
	if (util_mkdirs(opt(&o, "out"), 0700, &why) != 0)
		return fail("agent", &why);
	if (pki_load(opt(&o, "ca"), opt(&o, "chain"), opt(&o, "crl"),
	    opt(&o, "crl") ? PKI_CRL_CHECK : 0, &pki, &why) != 0)
		return fail("trust anchors", &why);
	self = signer_new();
	if (signer_load(self, "self", opt(&o, "key"), opt(&o, "cert"), pki_chain(pki),
	    ENVELOPE_PSS, &why) != 0) {
		fail("key", &why);
		goto out;
	}
	if (opt(&o, "gateway-cert") != NULL &&
	    (pki_load_cert(opt(&o, "gateway-cert"), &gw, &why) != 0 ||
	    pki_verify(pki, gw, NULL, PKI_PURPOSE_ENCRYPT, 0, &why) != 0)) {
		fail("gateway certificate", &why);
		goto out;
	}
	if (client_new(opt(&o, "server"), opt(&o, "cert"), opt(&o, "key"), opt(&o, "ca"), &cl,
	    &why) != 0) {
		fail("agent", &why);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = agent_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = 0;
	while (!agent_quit) {
		bad = total = 0;
		if (fetch_all(cl, self, pki, opt(&o, "out"), 1, 0, &total, &bad) != 0 || bad > 0)
			rc = 1;
		if (opt(&o, "time-usage") != NULL && access(opt(&o, "time-usage"), F_OK) == 0 &&
		    agent_time_usage(cl, self, gw, opt(&o, "time-usage"), opt(&o, "to")) != 0)
			rc = 1;
		if (opt(&o, "once"))
			break;
		fflush(stdout);
		sleep((unsigned)interval);
	}
out:
	X509_free(gw);
	client_free(cl);
	signer_free(self);
	pki_free(pki);
	return rc;
}

static int
cmd_cert(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "purpose", "at", NULL };
	static const struct { const char *name; enum pki_purpose p; } purposes[] = {
		{ "any", PKI_PURPOSE_ANY }, { "sign", PKI_PURPOSE_SIGN },
		{ "encrypt", PKI_PURPOSE_ENCRYPT }, { "tls-client", PKI_PURPOSE_TLS_CLIENT },
		{ "tls-server", PKI_PURPOSE_TLS_SERVER },
	};
	struct opts o;
	struct why why = { 0 };
	struct conf *c = NULL;
	struct pki *pki = NULL;
	STACK_OF(X509) *certs = NULL;
	enum pki_purpose purpose = PKI_PURPOSE_SIGN;
	char *subject = NULL, fp[65];
	time_t at = 0;
	size_t i;
	int rc = 1;

	if (argc < 1 || strcmp(argv[0], "verify") != 0)
		usage();
	if (opts_parse(&o, argc - 1, argv + 1, names) != 0 || o.nargs != 1 || conf_path == NULL)
		usage();
	if (opt(&o, "purpose") != NULL) {
		for (i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++)
			if (strcmp(purposes[i].name, opt(&o, "purpose")) == 0)
				break;
		if (i == sizeof(purposes) / sizeof(purposes[0])) {
			fprintf(stderr, "hegn: --purpose: one of any, sign, encrypt, tls-client, "
			    "tls-server\n");
			return 2;
		}
		purpose = purposes[i].p;
	}
	if (opt(&o, "at") != NULL && util_parse_rfc3339(opt(&o, "at"), &at) != 0) {
		fprintf(stderr, "hegn: --at: not an RFC 3339 time with a zone\n");
		return 2;
	}
	if (conf_load(conf_path, &c, &why) != 0)
		return fail("configuration", &why);
	if (pki_load(c->anchors, c->chain, c->crl, c->crl_check ? PKI_CRL_CHECK : 0, &pki,
	    &why) != 0 || pki_load_certs(o.args[0], &certs, &why) != 0) {
		fail("cert verify", &why);
		goto out;
	}
	subject = pki_subject(sk_X509_value(certs, 0));
	pki_fingerprint(sk_X509_value(certs, 0), fp);
	printf("subject: %s\nsha256:  %s\n", subject ? subject : "?", fp);
	if (pki_verify(pki, sk_X509_value(certs, 0), certs, purpose, at, &why) != 0) {
		printf("result:  invalid: %s\n", why.text);
		goto out;
	}
	printf("result:  valid\n");
	rc = 0;
out:
	free(subject);
	sk_X509_pop_free(certs, X509_free);
	pki_free(pki);
	conf_free(c);
	return rc;
}

/* Who runs an administrative command, for the audit log. */
static const char *
operator_name(void)
{
	const char *u = getenv("SUDO_USER");

	if (u == NULL || *u == '\0')
		u = getenv("USER");
	return u != NULL && *u != '\0' ? u : "hegn";
}

static int
open_relay(const char *conf_path, struct relay **r)
{
	struct why why = { 0 };

	if (conf_path == NULL) {
		fprintf(stderr, "hegn: this command needs -c FILE\n");
		exit(2);
	}
	if (relay_open(conf_path, RELAY_STORE | RELAY_EXISTING | RELAY_BESIDE, r, &why) != 0)
		return fail("configuration", &why);
	return 0;
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));

	printf("%s\n", s);
	free(s);
}

static int
cmd_policy(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "as", "kind", "to", "cpr", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct policy *pol = NULL;
	struct why why = { 0 };
	int rc;

	if (argc < 1)
		usage();
	if (strcmp(argv[0], "show") == 0) {
		struct conf *c = NULL;

		if (conf_path == NULL)
			usage();
		if (conf_load(conf_path, &c, &why) != 0)
			return fail("configuration", &why);
		rc = policy_load_dir(c->policy_dir, &pol, &why);
		conf_free(c);
		if (rc != 0)
			return fail("policy", &why);
		policy_explain(pol, stdout);
		policy_free(pol);
		return 0;
	}
	if (strcmp(argv[0], "check") != 0)
		usage();
	if (opts_parse(&o, argc - 1, argv + 1, names) != 0 || !opt(&o, "as") || !opt(&o, "kind") ||
	    !opt(&o, "to") || !opt(&o, "cpr"))
		usage();
	if (open_relay(conf_path, &r) != 0)
		return 1;
	rc = relay_policy_check(r, opt(&o, "as"), opt(&o, "kind"), opt(&o, "to"), opt(&o, "cpr"),
	    stdout, &why);
	if (rc != 0 && rc != HEGN_ERR_DENIED)
		fail("policy check", &why);
	relay_close(r);
	return rc == 0 ? 0 : 1;
}

static int
cmd_assign(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "cpr", "provider", "services", "from", "to", "date",
		"reason", "ecpr", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct why why = { 0 };
	json_t *j = NULL;
	/* A citizen without a CPR is named by its X-eCPR key (cpr.h), never both. */
	char ekey[64];
	const char *cpr;
	int rc = 1;

	if (argc < 1 || opts_parse(&o, argc - 1, argv + 1, names) != 0)
		usage();
	cpr = opt(&o, "cpr");
	if (opt(&o, "ecpr") != NULL) {
		if (cpr != NULL)
			usage();
		snprintf(ekey, sizeof(ekey), "%s%s", CPR_ECPR_PREFIX, opt(&o, "ecpr"));
		cpr = ekey;
	}
	if (open_relay(conf_path, &r) != 0)
		return 1;
	if (strcmp(argv[0], "add") == 0) {
		if (!cpr || !opt(&o, "provider") || !opt(&o, "services") || !opt(&o, "from"))
			usage();
		if (relay_assign_add(r, operator_name(), cpr, opt(&o, "provider"),
		    opt(&o, "services"), opt(&o, "from"), opt(&o, "to"), &why) != 0)
			goto fail;
		printf("assigned\n");
	} else if (strcmp(argv[0], "end") == 0) {
		if (!cpr || !opt(&o, "date"))
			usage();
		if (relay_assign_end(r, operator_name(), cpr, opt(&o, "provider"),
		    opt(&o, "services"), opt(&o, "date"), opt(&o, "reason"), &why) != 0)
			goto fail;
		printf("ended\n");
	} else if (strcmp(argv[0], "list") == 0) {
		if (relay_assign_list(r, cpr, opt(&o, "provider"), &j, &why) != 0)
			goto fail;
		print_json(j);
	} else {
		usage();
	}
	rc = 0;
	goto out;
fail:
	fail("assign", &why);
out:
	sodium_memzero(ekey, sizeof(ekey));
	json_decref(j);
	relay_close(r);
	return rc;
}

/* A password from a file's first line, or from standard input. */
static int
read_password(const char *file, char *out, size_t len)
{
	FILE *f = file ? fopen(file, "r") : stdin;

	if (f == NULL)
		return -1;
	if (file == NULL && isatty(fileno(stdin)))
		fprintf(stderr, "password: ");
	if (fgets(out, (int)len, f) == NULL) {
		if (file)
			fclose(f);
		return -1;
	}
	out[strcspn(out, "\r\n")] = '\0';
	if (file)
		fclose(f);
	return 0;
}

static int
cmd_user(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "party", "role", "password-file", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct why why = { 0 };
	json_t *j = NULL;
	char pw[256];
	int rc = 1;

	if (argc < 1 || opts_parse(&o, argc - 1, argv + 1, names) != 0)
		usage();
	if (open_relay(conf_path, &r) != 0)
		return 1;
	if (strcmp(argv[0], "add") == 0 && o.nargs == 1 && opt(&o, "party") && opt(&o, "role")) {
		if (read_password(opt(&o, "password-file"), pw, sizeof(pw)) != 0) {
			fprintf(stderr, "hegn: user add: no password given\n");
			goto out;
		}
		rc = relay_user_add(r, operator_name(), o.args[0], opt(&o, "party"), opt(&o, "role"),
		    pw, &why);
		sodium_memzero(pw, sizeof(pw));
		if (rc != 0) {
			rc = fail("user add", &why);
			goto out;
		}
		printf("user %s added\n", o.args[0]);
	} else if ((strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0) &&
	    o.nargs == 1) {
		if (relay_user_disable(r, operator_name(), o.args[0], argv[0][0] == 'd', &why) != 0) {
			rc = fail("user", &why);
			goto out;
		}
		printf("user %s %sd\n", o.args[0], argv[0]);
	} else if (strcmp(argv[0], "list") == 0) {
		if (relay_user_list(r, &j, &why) != 0) {
			rc = fail("user list", &why);
			goto out;
		}
		print_json(j);
	} else {
		usage();
	}
	rc = 0;
out:
	json_decref(j);
	relay_close(r);
	return rc;
}

static int
read_first_line(const char *path, char **out, struct why *why)
{
	struct buf b = { 0 };
	int rc;

	*out = NULL;
	if ((rc = util_read_file(path, 4096, &b, why)) != 0)
		return rc;
	b.data[strcspn((char *)b.data, "\r\n")] = '\0';
	*out = (char *)b.data;
	return 0;
}

static int
cmd_audit(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "export", "pubkey", "out", "cpr", "from", "to", "seq",
		"old-size", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct why why = { 0 };
	char *pub = NULL;
	json_t *j = NULL;
	time_t from = 0, to = 0;
	FILE *f;
	int rc = 1;

	if (argc < 1 || opts_parse(&o, argc - 1, argv + 1, names) != 0)
		usage();
	if (strcmp(argv[0], "verify") == 0 && opt(&o, "export") != NULL) {
		/* Offline: only the export and the public key, no configuration. */
		if (opt(&o, "pubkey") == NULL)
			usage();
		if (read_first_line(opt(&o, "pubkey"), &pub, &why) != 0)
			return fail("audit verify", &why);
		rc = audit_verify_export(opt(&o, "export"), pub, stdout, &why);
		free(pub);
		if (rc != 0)
			return fail("audit verify", &why);
		return 0;
	}
	if (open_relay(conf_path, &r) != 0)
		return 1;
	if (strcmp(argv[0], "verify") == 0) {
		if (read_first_line(opt(&o, "pubkey") ? opt(&o, "pubkey") :
		    relay_conf(r)->audit_pubkey, &pub, &why) != 0 ||
		    audit_verify_store(relay_store(r), pub, stdout, &why) != 0) {
			fail("audit verify", &why);
			goto out;
		}
	} else if (strcmp(argv[0], "export") == 0) {
		f = opt(&o, "out") ? fopen(opt(&o, "out"), "w") : stdout;
		if (f == NULL) {
			fprintf(stderr, "hegn: audit export: %s: %s\n", opt(&o, "out"), strerror(errno));
			goto out;
		}
		rc = audit_export(relay_store(r), f, &why);
		if (f != stdout && fclose(f) != 0 && rc == 0)
			rc = why_set(&why, HEGN_ERR_IO, "cannot write %s", opt(&o, "out"));
		if (rc != 0) {
			rc = fail("audit export", &why);
			goto out;
		}
	} else if (strcmp(argv[0], "prove") == 0) {
		if (opt(&o, "seq") != NULL)
			rc = audit_prove_inclusion(relay_store(r), atoll(opt(&o, "seq")), stdout, &why);
		else if (opt(&o, "old-size") != NULL)
			rc = audit_prove_consistency(relay_store(r), atoll(opt(&o, "old-size")), stdout,
			    &why);
		else
			usage();
		if (rc != 0) {
			rc = fail("audit prove", &why);
			goto out;
		}
	} else if (strcmp(argv[0], "query") == 0) {
		if (opt(&o, "cpr") == NULL)
			usage();
		if ((opt(&o, "from") && util_parse_rfc3339(opt(&o, "from"), &from) != 0) ||
		    (opt(&o, "to") && util_parse_rfc3339(opt(&o, "to"), &to) != 0)) {
			fprintf(stderr, "hegn: audit query: --from/--to take RFC 3339 times with a zone\n");
			rc = 2;
			goto out;
		}
		if (relay_audit_query(r, NULL, operator_name(), opt(&o, "cpr"), (int64_t)from * 1000,
		    (int64_t)to * 1000, &j, &why) != 0) {
			fail("audit query", &why);
			goto out;
		}
		print_json(j);
	} else {
		usage();
	}
	rc = 0;
out:
	free(pub);
	json_decref(j);
	relay_close(r);
	return rc;
}

static int
cmd_fallback(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "channel", "reason", "recipient", "party", "kind",
		"direction", "at", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct why why = { 0 };
	json_t *j = NULL, *req = NULL;
	int rc = 1;

	if (opts_parse(&o, argc, argv, names) != 0 || o.nargs != 1)
		usage();
	if (open_relay(conf_path, &r) != 0)
		return 1;
	if (strcmp(o.args[0], "register") == 0) {
		req = json_object();
		static const char *const keys[] = { "channel", "reason", "party", "kind", "direction",
			"at", NULL };
		size_t i;

		for (i = 0; keys[i] != NULL; i++)
			if (opt(&o, keys[i]) != NULL)
				json_object_set_new(req, keys[i], json_string(opt(&o, keys[i])));
		rc = relay_external(r, operator_name(), req, &j, &why);
	} else {
		rc = relay_fallback(r, operator_name(), o.args[0], opt(&o, "recipient"),
		    opt(&o, "channel"), opt(&o, "reason"), &j, &why);
	}
	if (rc != 0) {
		rc = fail("fallback", &why);
		goto out;
	}
	print_json(j);
	rc = 0;
out:
	json_decref(req);
	json_decref(j);
	relay_close(r);
	return rc;
}

static int
cmd_report(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "from", "to", "format", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct report *rep = NULL;
	struct why why = { 0 };
	const char *format;
	time_t from = 0, to = 0;
	json_t *j;
	int rc = 1;

	if (argc < 1 || opts_parse(&o, argc - 1, argv + 1, names) != 0 || o.nargs != 0)
		usage();
	format = opt(&o, "format") ? opt(&o, "format") : "text";
	if ((opt(&o, "from") && util_parse_rfc3339(opt(&o, "from"), &from) != 0) ||
	    (opt(&o, "to") && util_parse_rfc3339(opt(&o, "to"), &to) != 0)) {
		fprintf(stderr, "hegn: report: --from/--to take RFC 3339 times with a zone\n");
		return 2;
	}
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
		fprintf(stderr, "hegn: report: --format text, json or csv\n");
		return 2;
	}
	if (open_relay(conf_path, &r) != 0)
		return 1;
	if (report_collect(relay_store(r), relay_parties(r), (int64_t)from * 1000,
	    (int64_t)to * 1000, &rep, &why) != 0) {
		fail("report", &why);
		goto out;
	}
	if (strcmp(argv[0], "delivery") == 0) {
		j = report_delivery_json(rep);
		print_json(j);
		json_decref(j);
	} else if (strcmp(argv[0], "edag2") == 0) {
		if (strcmp(format, "json") == 0) {
			j = report_edag2_json(rep);
			print_json(j);
			json_decref(j);
		} else if (strcmp(format, "csv") == 0) {
			report_edag2_csv(rep, stdout);
		} else {
			report_edag2_text(rep, stdout);
		}
	} else {
		usage();
	}
	rc = 0;
out:
	report_free(rep);
	relay_close(r);
	return rc;
}

static int
cmd_deliver(const char *conf_path, int argc, char **argv)
{
	static const char *const names[] = { "now", NULL };
	struct opts o;
	struct relay *r = NULL;
	struct why why = { 0 };
	time_t now = time(NULL);
	int acted = 0, rc;

	if (opts_parse(&o, argc, argv, names) != 0 || o.nargs != 0)
		usage();
	if (opt(&o, "now") && util_parse_rfc3339(opt(&o, "now"), &now) != 0) {
		fprintf(stderr, "hegn: deliver: --now takes an RFC 3339 time with a zone\n");
		return 2;
	}
	if (conf_path == NULL)
		usage();
	/* The scheduler signs nothing, but fax and post need the policies and the trust store. */
	if (relay_open(conf_path, RELAY_STORE | RELAY_EXISTING | RELAY_BESIDE | RELAY_SCHEDULER,
	    &r, &why) != 0)
		return fail("deliver", &why);
	rc = relay_deliver(r, (int64_t)now * 1000, &acted, &why);
	if (rc != 0)
		fail("deliver", &why);
	else
		printf("%d cop%s handled\n", acted, acted == 1 ? "y" : "ies");
	relay_close(r);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *conf_path = NULL;
	const char *cmd;
	int i = 1;

	if (sodium_init() < 0) {
		fprintf(stderr, "hegn: libsodium failed to initialise\n");
		return 1;
	}
	log_init("hegn", LOG_LVL_WARN, 0);
	if (i < argc && strcmp(argv[i], "-c") == 0) {
		if (i + 1 >= argc)
			usage();
		conf_path = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		usage();
	cmd = argv[i++];
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
		printf("hegn %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "demo") == 0)
		return cmd_demo(argc - i, argv + i);
	if (strcmp(cmd, "send") == 0)
		return cmd_send(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "fetch") == 0)
		return cmd_fetch(argc - i, argv + i);
	if (strcmp(cmd, "agent") == 0)
		return cmd_agent(argc - i, argv + i);
	if (strcmp(cmd, "cert") == 0)
		return cmd_cert(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "policy") == 0)
		return cmd_policy(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "assign") == 0)
		return cmd_assign(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "user") == 0)
		return cmd_user(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "fallback") == 0)
		return cmd_fallback(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "report") == 0)
		return cmd_report(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "deliver") == 0)
		return cmd_deliver(conf_path, argc - i, argv + i);
	if (strcmp(cmd, "config") == 0 && i < argc && strcmp(argv[i], "keywords") == 0) {
		conf_print_keywords(stdout);
		return 0;
	}
	usage();
	return 2;
}
