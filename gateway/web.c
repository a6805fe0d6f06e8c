#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <sodium.h>

#include "log.h"
#include "message.h"
#include "report.h"
#include "web.h"
#include "web_assets.h"
#include "websession.h"
#include "xmalloc.h"

#define COOKIE_SESSION "hegn_session"
#define COOKIE_LOGIN "hegn_login"
#define COOKIE_LANG "hegn_lang"
#define COOKIE_ATTRS "; HttpOnly; Secure; SameSite=Strict; Path=/web"
#define TOKEN_HEX WEB_TOKEN_HEX

/* Everything the page may load comes from hegnd itself. */
#define WEB_CSP "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/* One request being answered. */
struct page {
	struct relay *r;
	const struct http_request *req;
	struct http_response *resp;
	struct web_session s;
	int logged_in;
	int en;
	const struct party *party;
	FILE *f;
	char *html;
	size_t html_len;
	char **strs;            /* decoded form values, freed with the page */
	size_t nstrs;
};

static const char *
tr(const struct page *p, const char *da, const char *en)
{
	return p->en ? en : da;
}

void
web_escape(FILE *f, const char *s)
{
	if (s == NULL)
		return;
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *
form_decode(const uint8_t *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i, o = 0;
	int hi, lo, c;

	for (i = 0; i < n; i++) {
		c = s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%' && i + 2 < n &&
		    (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
			c = hi * 16 + lo;
			i += 2;
		}
		if (c != '\0')
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

int
web_form_next(const uint8_t *body, size_t len, size_t *pos, char **name, char **value)
{
	size_t start, end, eq;

	*name = *value = NULL;
	while (body != NULL && *pos < len) {
		start = *pos;
		for (end = start; end < len && body[end] != '&'; end++)
			;
		*pos = end < len ? end + 1 : len;
		if (end == start)
			continue;
		for (eq = start; eq < end && body[eq] != '='; eq++)
			;
		*name = form_decode(body + start, eq - start);
		*value = form_decode(body + (eq < end ? eq + 1 : end), eq < end ? end - eq - 1 : 0);
		return 1;
	}
	return 0;
}

char *
web_form_value(const uint8_t *body, size_t len, const char *name)
{
	size_t pos = 0;
	char *n, *v;

	while (web_form_next(body, len, &pos, &n, &v)) {
		if (strcmp(n, name) == 0) {
			free(n);
			return v;
		}
		free(n);
		freezero(v, strlen(v));
	}
	return NULL;
}

/* Keep s until the page is done; returns s. */
static char *
keep(struct page *p, char *s)
{
	p->strs = xrealloc(p->strs, (p->nstrs + 1) * sizeof(*p->strs));
	p->strs[p->nstrs++] = s;
	return s;
}

/* A field of the POST body, "" when absent (valid until the page is done). */
static const char *
fv(struct page *p, const char *name)
{
	char *v;

	if (strcmp(p->req->method, "POST") != 0)
		return "";
	v = web_form_value(p->req->body.data, p->req->body.len, name);
	return v != NULL ? keep(p, v) : "";
}

/* True when the POST body has field name with value. */
static int
fv_has(struct page *p, const char *name, const char *value)
{
	size_t pos = 0;
	char *n, *v;
	int found = 0;

	if (strcmp(p->req->method, "POST") != 0)
		return 0;
	while (!found && web_form_next(p->req->body.data, p->req->body.len, &pos, &n, &v)) {
		found = strcmp(n, name) == 0 && strcmp(v, value) == 0;
		free(n);
		freezero(v, strlen(v));
	}
	return found;
}

static const char *
cookie(const struct page *p, const char *name)
{
	return MHD_lookup_connection_value(p->req->conn, MHD_COOKIE_KIND, name);
}

/* Two hex tokens of TOKEN_HEX - 1 characters, compared in constant time. */
static int
token_equal(const char *a, const char *b)
{
	return a != NULL && b != NULL && strlen(a) == TOKEN_HEX - 1 &&
	    strlen(b) == TOKEN_HEX - 1 && sodium_memcmp(a, b, TOKEN_HEX - 1) == 0;
}

static void
out(struct page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Markup: only constant text and values already known safe (numbers, tokens) go through here. */
static void
out(struct page *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(p->f, fmt, ap);
	va_end(ap);
}

static void
esc(struct page *p, const char *s)
{
	web_escape(p->f, s);
}

static void
redirect(struct page *p, const char *to)
{
	p->resp->status = 303;
	snprintf(p->resp->location, sizeof(p->resp->location), "%s", to);
	p->resp->content_type = "text/plain; charset=utf-8";
}

static const char *
role_label(const struct page *p, const char *role)
{
	if (strcmp(role, "caseworker") == 0)
		return tr(p, "sagsbehandler", "caseworker");
	if (strcmp(role, "dispatcher") == 0)
		return tr(p, "disponent", "dispatcher");
	if (strcmp(role, "auditor") == 0)
		return tr(p, "revisor", "auditor");
	return tr(p, "administrator", "administrator");
}

static int
is_caseworker(const struct page *p)
{
	return p->logged_in && p->party != NULL && p->party->role == ROLE_VISITATION &&
	    strcmp(p->s.role, "caseworker") == 0;
}

static int
is_dispatcher(const struct page *p)
{
	return p->logged_in && p->party != NULL && p->party->role == ROLE_PROVIDER &&
	    strcmp(p->s.role, "dispatcher") == 0;
}

static int
is_auditor(const struct page *p)
{
	return p->logged_in && p->party != NULL && p->party->role == ROLE_AUDITOR &&
	    strcmp(p->s.role, "auditor") == 0;
}

static void
nav_link(struct page *p, const char *href, const char *label)
{
	int here = strcmp(p->req->path, href) == 0;

	out(p, "<li><a href=\"%s\"%s>", href, here ? " aria-current=\"page\"" : "");
	esc(p, label);
	out(p, "</a></li>");
}

static void
csrf_field(struct page *p)
{
	out(p, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", p->s.csrf);
}

static void
page_start(struct page *p, const char *title)
{
	const char *path = p->req->path;

	out(p, "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<title>", p->en ? "en" : "da");
	esc(p, title);
	out(p, " - hegn</title><link rel=\"stylesheet\" href=\"/web/static/hegn.css\">"
	    "<link rel=\"icon\" href=\"/web/static/icon.svg\" type=\"image/svg+xml\">"
	    "<script src=\"/web/static/hegn.js\" defer></script></head><body>"
	    "<a class=\"skip\" href=\"#main\">%s</a>"
	    "<header class=\"top\"><p class=\"brand\">hegn</p>",
	    tr(p, "Spring til indholdet", "Skip to content"));
	if (p->logged_in) {
		out(p, "<nav aria-label=\"%s\"><ul>", tr(p, "Hovedmenu", "Main menu"));
		if (is_caseworker(p)) {
			nav_link(p, "/web/compose", tr(p, "Ny besked", "New message"));
			nav_link(p, "/web/messages", tr(p, "Sendte beskeder", "Sent messages"));
			nav_link(p, "/web/inbox", tr(p, "Indbakke", "Inbox"));
			nav_link(p, "/web/external", tr(p, "Fax, telefon, post", "Fax, phone, post"));
			nav_link(p, "/web/dashboard", tr(p, "Overblik", "Dashboard"));
		} else if (is_dispatcher(p)) {
			nav_link(p, "/web/inbox", tr(p, "Indbakke", "Inbox"));
			nav_link(p, "/web/compose", tr(p, "Ny besked", "New message"));
			nav_link(p, "/web/messages", tr(p, "Sendte beskeder", "Sent messages"));
		} else if (is_auditor(p)) {
			nav_link(p, "/web/audit", tr(p, "Adgangslog", "Access log"));
			nav_link(p, "/web/verify", tr(p, "Loggens integritet", "Log integrity"));
			nav_link(p, "/web/edag2", tr(p, "eDag2-rapport", "eDag2 report"));
			nav_link(p, "/web/dashboard", tr(p, "Overblik", "Dashboard"));
		}
		out(p, "</ul></nav><div class=\"who\"><span>");
		esc(p, p->s.user);
		out(p, " (");
		esc(p, role_label(p, p->s.role));
		out(p, ", ");
		esc(p, p->party && p->party->conf->organisation ? p->party->conf->organisation :
		    p->s.party);
		out(p, ")</span><form method=\"post\" action=\"/web/logout\">");
		csrf_field(p);
		out(p, "<button type=\"submit\">%s</button></form></div>", tr(p, "Log ud", "Log out"));
	}
	out(p, "<p class=\"lang\">");
	if (p->en) {
		out(p, "<a href=\"/web/lang?to=da&amp;back=");
		esc(p, path);
		out(p, "\" lang=\"da\" hreflang=\"da\">Dansk</a>");
	} else {
		out(p, "<a href=\"/web/lang?to=en&amp;back=");
		esc(p, path);
		out(p, "\" lang=\"en\" hreflang=\"en\">English</a>");
	}
	out(p, "</p></header><main id=\"main\" tabindex=\"-1\"><h1>");
	esc(p, title);
	out(p, "</h1>");
}

static void
page_end(struct page *p)
{
	out(p, "</main><footer><p>%s</p></footer></body></html>\n",
	    tr(p, "hegn: sikker beskedudveksling mellem visitationen og leverandørerne.",
	    "hegn: secure messaging between the visitation office and the providers."));
	if (p->resp->status == 0)
		p->resp->status = 200;
	p->resp->content_type = "text/html; charset=utf-8";
	p->resp->csp = WEB_CSP;
}

static void
alert(struct page *p, const char *text)
{
	out(p, "<p class=\"error\" role=\"alert\">");
	esc(p, text);
	out(p, "</p>");
}

static void
notice(struct page *p, const char *text)
{
	out(p, "<p class=\"ok\" role=\"status\">");
	esc(p, text);
	out(p, "</p>");
}

/* A page that only says text (an error or a refusal) with status. */
static void
message_page(struct page *p, int status, const char *title, const char *text)
{
	p->resp->status = status;
	page_start(p, title);
	alert(p, text);
	page_end(p);
}

static void
not_found_page(struct page *p)
{
	message_page(p, 404, tr(p, "Ikke fundet", "Not found"),
	    tr(p, "Siden findes ikke, eller du har ikke adgang til den.",
	    "The page does not exist, or you have no access to it."));
}

static void
forbidden_page(struct page *p)
{
	message_page(p, 403, tr(p, "Ingen adgang", "No access"),
	    tr(p, "Din rolle giver ikke adgang til denne side.",
	    "Your role gives no access to this page."));
}

/* The client's address, for the login audit entry. */
static void
client_ip(const struct page *p, char out_[INET6_ADDRSTRLEN])
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	snprintf(out_, INET6_ADDRSTRLEN, "unknown");
	ci = MHD_get_connection_info(p->req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out_,
		    INET6_ADDRSTRLEN);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    out_, INET6_ADDRSTRLEN);
}

/* ---- login ---- */

static void
login_page(struct page *p, const char *error)
{
	char token[TOKEN_HEX];
	uint8_t raw[32];

	/* Login CSRF: the form's token must match a cookie only this page set. */
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
	snprintf(p->resp->cookie[0], sizeof(p->resp->cookie[0]), COOKIE_LOGIN "=%s" COOKIE_ATTRS,
	    token);
	page_start(p, tr(p, "Log ind", "Log in"));
	if (error != NULL)
		alert(p, error);
	out(p, "<form method=\"post\" action=\"/web/login\" class=\"login\">"
	    "<input type=\"hidden\" name=\"login_token\" value=\"%s\">"
	    "<p><label for=\"username\">%s</label>"
	    "<input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus></p>"
	    "<p><label for=\"password\">%s</label>"
	    "<input id=\"password\" name=\"password\" type=\"password\" "
	    "autocomplete=\"current-password\" required></p>"
	    "<p><button type=\"submit\">%s</button></p></form>",
	    token, tr(p, "Brugernavn", "User name"), tr(p, "Adgangskode", "Password"),
	    tr(p, "Log ind", "Log in"));
	page_end(p);
	sodium_memzero(raw, sizeof(raw));
}

static const char *
home_of(const struct page *p)
{
	if (is_caseworker(p))
		return "/web/compose";
	if (is_dispatcher(p))
		return "/web/inbox";
	if (is_auditor(p))
		return "/web/audit";
	return NULL;
}

static void
post_login(struct page *p)
{
	struct why why = { 0 };
	char ip[INET6_ADDRSTRLEN], party[65], role[17], sid[TOKEN_HEX];
	const char *user = fv(p, "username"), *token = fv(p, "login_token");
	char *pw = web_form_value(p->req->body.data, p->req->body.len, "password");
	int rc;

	if (!token_equal(token, cookie(p, COOKIE_LOGIN))) {
		p->logged_in = 0;
		login_page(p, tr(p, "Formularen er udløbet. Prøv igen.",
		    "The form has expired. Please try again."));
		goto out;
	}
	/* A new login replaces the session the browser had, if any. */
	if (p->logged_in)
		web_session_drop(p->s.id);
	p->logged_in = 0;
	client_ip(p, ip);
	rc = relay_user_login(p->r, user, pw ? pw : "", ip, party, role, &why);
	if (rc != 0) {
		if (rc != HEGN_ERR_UNAUTH)
			p->resp->status = 503;
		login_page(p, rc == HEGN_ERR_UNAUTH ?
		    tr(p, "Forkert brugernavn eller adgangskode.", "Wrong user name or password.") :
		    tr(p, "Log ind mislykkedes; prøv igen senere.", "Login failed; try again later."));
		goto out;
	}
	web_session_new(user, party, role, util_now_ms(), sid, &p->s);
	snprintf(p->resp->cookie[0], sizeof(p->resp->cookie[0]), COOKIE_SESSION "=%s" COOKIE_ATTRS,
	    sid);
	snprintf(p->resp->cookie[1], sizeof(p->resp->cookie[1]),
	    COOKIE_LOGIN "=; Max-Age=0" COOKIE_ATTRS);
	p->logged_in = 1;
	p->party = party_find(relay_parties(p->r), party);
	redirect(p, home_of(p) ? home_of(p) : "/web/");
	sodium_memzero(sid, sizeof(sid));
out:
	if (pw != NULL)
		freezero(pw, strlen(pw));
}

static void
post_logout(struct page *p)
{
	web_session_drop(p->s.id);
	snprintf(p->resp->cookie[0], sizeof(p->resp->cookie[0]),
	    COOKIE_SESSION "=; Max-Age=0" COOKIE_ATTRS);
	p->logged_in = 0;
	redirect(p, "/web/login");
}

static void
get_lang(struct page *p)
{
	const char *to = http_query(p->req, "to"), *back = http_query(p->req, "back");

	snprintf(p->resp->cookie[0], sizeof(p->resp->cookie[0]),
	    COOKIE_LANG "=%s; Secure; SameSite=Strict; Path=/web; Max-Age=31536000",
	    to != NULL && strcmp(to, "en") == 0 ? "en" : "da");
	/* Only back to a page of ours: no open redirect. */
	if (back == NULL || strncmp(back, "/web/", 5) != 0 || strpbrk(back, "\r\n\\") != NULL ||
	    strstr(back, "//") != NULL || strlen(back) > 100)
		back = "/web/";
	redirect(p, back);
}

/* ---- shared renderers ---- */

/* The Danish or English label of key in a table of {key, da, en}; key itself when unknown. */
static const char *
label(const struct page *p, const char *const (*names)[3], size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(key, names[i][0]) == 0)
			return p->en ? names[i][2] : names[i][1];
	return key;
}

static const char *
class_label(const struct page *p, const char *c)
{
	if (strcmp(c, "basic") == 0)
		return tr(p, "Grundoplysninger (basic)", "Basic information (basic)");
	if (strcmp(c, "care") == 0)
		return tr(p, "Pleje (care)", "Care (care)");
	if (strcmp(c, "health") == 0)
		return tr(p, "Helbred (health)", "Health (health)");
	return c;
}

static const char *
kind_label(const struct page *p, const char *k)
{
	static const char *const names[][3] = {
		{ "referral", "Henvisning", "Referral" },
		{ "care_update", "Opdatering af pleje", "Care update" },
		{ "cancellation", "Ophør", "Cancellation" },
		{ "admission_notice", "Indlæggelse", "Admission notice" },
		{ "discharge_notice", "Udskrivning", "Discharge notice" },
		{ "leave_notice", "Orlov", "Leave notice" },
		{ "death_notice", "Dødsfald", "Death notice" },
		{ "change_request", "Ændringsforslag", "Change request" },
		{ "observation", "Observation", "Observation" },
		{ "time_usage", "Tidsforbrug", "Time usage" },
		{ "other", "Andet", "Other" },
	};
	return label(p, names, sizeof(names) / sizeof(names[0]), k);
}

static const char *
service_label(const struct page *p, const char *s)
{
	static const char *const names[][3] = {
		{ "practical_help", "Praktisk hjælp", "Practical help" },
		{ "personal_care", "Personlig pleje", "Personal care" },
		{ "meals", "Madservice", "Meals" },
		{ "nursing", "Sygepleje", "Nursing" },
		{ "rehabilitation", "Genoptræning", "Rehabilitation" },
	};
	return label(p, names, sizeof(names) / sizeof(names[0]), s);
}

static const char *
state_label(const struct page *p, const char *s)
{
	static const char *const names[][3] = {
		{ "submitted", "Modtaget af hegn", "Submitted" },
		{ "delivered", "Leveret", "Delivered" },
		{ "acknowledged", "Kvitteret", "Acknowledged" },
		{ "rejected", "Afvist", "Rejected" },
		{ "fallback", "Sendt uden om (fax/post/telefon)", "Fallback (fax/post/phone)" },
		{ "failed", "Mislykket", "Failed" },
	};
	return label(p, names, sizeof(names) / sizeof(names[0]), s);
}

static const char *
jstr(const json_t *j, const char *name)
{
	const char *v = json_string_value(json_object_get(j, name));

	return v != NULL ? v : "";
}

/* A member of a class object (docs/messages.md) as staff call it; unknown names as they are. */
static const char *
field_label(const struct page *p, const char *k)
{
	static const char *const names[][3] = {
		{ "services", "Ydelser", "Services" },
		{ "start_date", "Startdato", "Start date" },
		{ "end_date", "Slutdato", "End date" },
		{ "address", "Adresse", "Address" },
		{ "contact", "Kontakt", "Contact" },
		{ "visits_per_week", "Besøg pr. uge", "Visits per week" },
		{ "notes", "Bemærkninger", "Notes" },
		{ "description", "Beskrivelse", "Description" },
		{ "diagnoses", "Diagnoser", "Diagnoses" },
		{ "medication", "Medicin", "Medication" },
		{ "allergies", "Allergier", "Allergies" },
		{ "effective_from", "Gælder fra", "Effective from" },
		{ "reason", "Årsag", "Reason" },
		{ "proposed_from", "Foreslået fra", "Proposed from" },
		{ "proposal", "Forslag", "Proposal" },
		{ "text", "Tekst", "Text" },
		{ "observed_at", "Observeret", "Observed at" },
		{ "event_time", "Tidspunkt", "Time" },
		{ "hospital", "Hospital", "Hospital" },
		{ "department", "Afdeling", "Department" },
		{ "time_of_death", "Dødstidspunkt", "Time of death" },
		{ "next_visit_needed_by", "Næste besøg senest", "Next visit needed by" },
		{ "expected_return", "Forventet hjemkomst", "Expected return" },
		{ "visits", "Besøg", "Visits" },
	};
	return label(p, names, sizeof(names) / sizeof(names[0]), k);
}

static void
render_value(struct page *p, const json_t *v)
{
	const json_t *e;
	size_t i;

	if (json_is_string(v))
		esc(p, json_string_value(v));
	else if (json_is_integer(v))
		out(p, "%lld", (long long)json_integer_value(v));
	else if (json_is_array(v)) {
		out(p, "<ul>");
		json_array_foreach(v, i, e) {
			out(p, "<li>");
			render_value(p, e);
			out(p, "</li>");
		}
		out(p, "</ul>");
	} else if (json_is_object(v)) {
		const char *k;

		out(p, "<dl>");
		json_object_foreach((json_t *)v, k, e) {
			out(p, "<dt>");
			esc(p, field_label(p, k));
			out(p, "</dt><dd>");
			render_value(p, e);
			out(p, "</dd>");
		}
		out(p, "</dl>");
	} else if (json_is_true(v))
		out(p, "%s", tr(p, "ja", "yes"));
	else if (json_is_false(v))
		out(p, "%s", tr(p, "nej", "no"));
}

/* A message's content by data class, with the attachments listed. */
static void
render_content(struct page *p, const json_t *c)
{
	static const char *const classes[] = { "basic", "care", "health" };
	const json_t *cit = json_object_get(c, "citizen"), *a;
	size_t i;

	out(p, "<section class=\"content\"><h3>%s</h3><dl>", tr(p, "Borger", "Citizen"));
	/* A citizen without a CPR is known by an X-eCPR (docs/messages.md). */
	out(p, "<dt>%s</dt><dd>", json_object_get(cit, "ecpr") != NULL ? "X-eCPR" : "CPR");
	esc(p, jstr(cit, json_object_get(cit, "ecpr") != NULL ? "ecpr" : "cpr"));
	out(p, "</dd>");
	if (json_object_get(cit, "name") != NULL) {
		out(p, "<dt>%s</dt><dd>", tr(p, "Navn", "Name"));
		esc(p, jstr(cit, "name"));
		out(p, "</dd>");
	}
	out(p, "</dl>");
	for (i = 0; i < 3; i++) {
		const json_t *o = json_object_get(c, classes[i]);

		if (o == NULL)
			continue;
		out(p, "<h3 data-class=\"%s\">", classes[i]);
		esc(p, class_label(p, classes[i]));
		out(p, "</h3>");
		render_value(p, o);
	}
	a = json_object_get(c, "attachments");
	if (json_array_size(a) > 0) {
		const json_t *e;

		out(p, "<h3>%s</h3><ul class=\"attachments\">", tr(p, "Bilag", "Attachments"));
		json_array_foreach(a, i, e) {
			const char *d = jstr(e, "data");
			size_t b64 = strlen(d), pad = 0;

			while (pad < 2 && pad < b64 && d[b64 - 1 - pad] == '=')
				pad++;

			out(p, "<li>");
			esc(p, jstr(e, "filename"));
			out(p, " (");
			esc(p, jstr(e, "content_type"));
			out(p, ", ");
			esc(p, class_label(p, jstr(e, "class")));
			out(p, ", %zu bytes)</li>", b64 / 4 * 3 - pad);
		}
		out(p, "</ul>");
	}
	out(p, "</section>");
}

/* ---- compose, preview, send ---- */

static const char *const form_fields[] = {
	"kind", "cpr", "name", "to", "start_date", "end_date", "reason", "address", "contact",
	"basic_notes", "care_text", "care_notes", "diagnoses", "medication", "allergies",
	"health_notes", "attachments", "att_class", NULL
};

static int
may_compose(const struct page *p)
{
	return is_caseworker(p) || is_dispatcher(p);
}

/* Lines of text as a JSON list of the non-empty ones. */
static json_t *
lines(const char *text)
{
	json_t *a = json_array();
	const char *s = text, *e;
	char *l;
	size_t n;

	while (*s != '\0') {
		e = s + strcspn(s, "\r\n");
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		n = (size_t)(e - s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n > 0) {
			l = xmalloc(n + 1);
			memcpy(l, s, n);
			l[n] = '\0';
			json_array_append_new(a, json_string(l));
			free(l);
		}
		s = e + strspn(e, "\r\n");
	}
	return a;
}

static void
set_if(json_t *o, const char *name, const char *v)
{
	if (v != NULL && *v != '\0')
		json_object_set_new(o, name, json_string(v));
}

/* The message the compose form describes, as JSON (hegn's format). */
static json_t *
build_message(struct page *p)
{
	const char *kind = fv(p, "kind"), *care_text = fv(p, "care_text"), *cls;
	json_t *m = json_object(), *basic = json_object(), *care = json_object(),
	    *health = json_object(), *svc = json_array(), *att, *e, *l;
	size_t pos = 0, i;
	char *n, *v;
	int referral = strcmp(kind, "referral") == 0, update = strcmp(kind, "care_update") == 0,
	    cancel = strcmp(kind, "cancellation") == 0, change = strcmp(kind, "change_request") == 0,
	    obs = strcmp(kind, "observation") == 0;

	json_object_set_new(m, "kind", json_string(kind));
	json_object_set_new(m, "to", json_string(fv(p, "to")));
	json_object_set_new(m, "citizen", json_pack("{s:s}", "cpr", fv(p, "cpr")));
	set_if(json_object_get(m, "citizen"), "name", fv(p, "name"));
	while (web_form_next(p->req->body.data, p->req->body.len, &pos, &n, &v)) {
		if (strcmp(n, "services") == 0)
			json_array_append_new(svc, json_string(v));
		free(n);
		free(v);
	}
	if (referral || change || (cancel && json_array_size(svc) > 0))
		json_object_set(basic, "services", svc);
	json_decref(svc);
	if (referral) {
		set_if(basic, "start_date", fv(p, "start_date"));
		set_if(basic, "end_date", fv(p, "end_date"));
		set_if(basic, "address", fv(p, "address"));
		set_if(basic, "contact", fv(p, "contact"));
		set_if(care, "description", care_text);
	} else if (update) {
		set_if(basic, "effective_from", fv(p, "start_date"));
		set_if(care, "description", care_text);
	} else if (cancel) {
		set_if(basic, "end_date", fv(p, "end_date"));
		set_if(basic, "reason", fv(p, "reason"));
	} else if (change) {
		set_if(basic, "proposed_from", fv(p, "start_date"));
		set_if(care, "proposal", care_text);
	} else if (obs) {
		set_if(care, "text", care_text);
	}
	set_if(basic, "notes", fv(p, "basic_notes"));
	if (!cancel) {
		set_if(care, "notes", fv(p, "care_notes"));
		if (json_array_size(l = lines(fv(p, "diagnoses"))) > 0)
			json_object_set(health, "diagnoses", l);
		json_decref(l);
		if (json_array_size(l = lines(fv(p, "medication"))) > 0)
			json_object_set(health, "medication", l);
		json_decref(l);
		if (json_array_size(l = lines(fv(p, "allergies"))) > 0)
			json_object_set(health, "allergies", l);
		json_decref(l);
		set_if(health, "notes", fv(p, "health_notes"));
	}
	if (json_object_size(basic) > 0)
		json_object_set(m, "basic", basic);
	if (json_object_size(care) > 0)
		json_object_set(m, "care", care);
	if (json_object_size(health) > 0)
		json_object_set(m, "health", health);
	json_decref(basic);
	json_decref(care);
	json_decref(health);
	/* The page's script puts the files here as [{filename, content_type, data}]. */
	att = json_loads(fv(p, "attachments"), 0, NULL);
	cls = fv(p, "att_class");
	if (*cls == '\0')
		cls = "care";
	if (json_array_size(att) > 0) {
		json_t *list = json_array();

		json_array_foreach(att, i, e) {
			if (!json_is_object(e))
				continue;
			json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "filename",
			    jstr(e, "filename"), "content_type", jstr(e, "content_type"), "class",
			    *jstr(e, "class") ? jstr(e, "class") : cls, "data", jstr(e, "data")));
		}
		json_object_set_new(m, "attachments", list);
	}
	json_decref(att);
	return m;
}

/* An active assignment today, from relay_assign_list's rows. */
static int
active_today(const json_t *a)
{
	char today[11];
	time_t t = time(NULL);
	struct tm tm;
	const char *to = jstr(a, "to");

	gmtime_r(&t, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	return strcmp(jstr(a, "from"), today) <= 0 && (*to == '\0' || strcmp(to, today) >= 0);
}

static void
text_input(struct page *p, const char *name, const char *label, const char *type,
    const char *extra)
{
	out(p, "<p><label for=\"f-%s\">", name);
	esc(p, label);
	out(p, "</label><input id=\"f-%s\" name=\"%s\" type=\"%s\" value=\"", name, name, type);
	esc(p, fv(p, name));
	out(p, "\"%s></p>", extra);
}

static void
textarea(struct page *p, const char *name, const char *label, const char *hint)
{
	out(p, "<p><label for=\"f-%s\">", name);
	esc(p, label);
	out(p, "</label>");
	if (hint != NULL) {
		out(p, "<span class=\"hint\" id=\"h-%s\">", name);
		esc(p, hint);
		out(p, "</span>");
	}
	out(p, "<textarea id=\"f-%s\" name=\"%s\" rows=\"3\"%s%s%s>", name, name,
	    hint ? " aria-describedby=\"h-" : "", hint ? name : "", hint ? "\"" : "");
	esc(p, fv(p, name));
	out(p, "</textarea></p>");
}

static void
compose_page(struct page *p, const char *error)
{
	const struct party_table *pt = relay_parties(p->r);
	const char *kind = fv(p, "kind"), *to = fv(p, "to"), *cpr = fv(p, "cpr");
	static const char *const visitation_kinds[] = { "referral", "care_update", "cancellation",
		NULL };
	static const char *const provider_kinds[] = { "change_request", "observation", NULL };
	const char *const *kinds = is_caseworker(p) ? visitation_kinds : provider_kinds;
	json_t *assigned = NULL, *a;
	struct why why = { 0 };
	size_t i, j;
	int any = 0;

	page_start(p, tr(p, "Ny besked", "New message"));
	if (!relay_party_hosted(p->r, p->party->name)) {
		alert(p, tr(p, "hegn har ikke jeres nøgle: send beskeder fra jeres eget system, "
		    "der underskriver dem med jeres certifikat.",
		    "hegn does not hold your key: send messages from your own system, which signs "
		    "them with your certificate."));
		page_end(p);
		return;
	}
	if (error != NULL)
		alert(p, error);
	if (*cpr != '\0' && is_caseworker(p) &&
	    relay_assign_list(p->r, cpr, NULL, &assigned, &why) != 0) {
		alert(p, why.text);
		assigned = NULL;
	}
	out(p, "<form method=\"post\" action=\"/web/preview\" id=\"compose\" class=\"compose\">");
	csrf_field(p);
	out(p, "<fieldset><legend>%s</legend><p><label for=\"f-kind\">%s</label>"
	    "<select id=\"f-kind\" name=\"kind\">", tr(p, "Besked", "Message"),
	    tr(p, "Slags", "Kind"));
	for (i = 0; kinds[i] != NULL; i++) {
		out(p, "<option value=\"%s\"%s>", kinds[i],
		    strcmp(kind, kinds[i]) == 0 ? " selected" : "");
		esc(p, kind_label(p, kinds[i]));
		out(p, "</option>");
	}
	out(p, "</select></p>");
	text_input(p, "cpr", tr(p, "Borgerens CPR-nummer", "The citizen's CPR number"), "text",
	    " required inputmode=\"numeric\" autocomplete=\"off\" pattern=\"[0-9]{6}-?[0-9]{4}\"");
	text_input(p, "name", tr(p, "Borgerens navn", "The citizen's name"), "text",
	    " autocomplete=\"off\"");
	if (is_caseworker(p))
		out(p, "<p><button type=\"submit\" formaction=\"/web/compose\" name=\"lookup\" "
		    "value=\"1\" formnovalidate>%s</button></p>",
		    tr(p, "Find borgerens leverandører", "Find the citizen's providers"));
	out(p, "</fieldset><fieldset><legend>%s</legend><ul class=\"checks\">",
	    tr(p, "Ydelser", "Services"));
	for (i = 0; message_service_categories[i] != NULL; i++) {
		const char *s = message_service_categories[i];

		out(p, "<li><input type=\"checkbox\" name=\"services\" id=\"s-%s\" value=\"%s\"%s>"
		    "<label for=\"s-%s\">%s (%s)</label></li>", s, s,
		    fv_has(p, "services", s) ? " checked" : "", s, service_label(p, s), s);
	}
	out(p, "</ul></fieldset><fieldset><legend>%s</legend>", tr(p, "Modtager", "Recipient"));
	json_array_foreach(json_object_get(assigned, "assignments"), i, a)
		if (active_today(a))
			any = 1;
	if (assigned != NULL)
		out(p, "<p class=\"hint\">%s</p>", any ? tr(p,
		    "Borgerens aktive tildelinger står først.",
		    "The citizen's active assignments come first.") : tr(p,
		    "Borgeren har ingen aktive tildelinger: vælg en godkendt leverandør.",
		    "The citizen has no active assignments: choose an approved provider."));
	any = 0;
	out(p, "<ul class=\"checks\" id=\"recipients\">");
	/* Assigned providers first, then the others a message may go to. */
	for (j = 0; j < 2; j++) {
		for (i = 0; i < party_count(pt); i++) {
			const struct party *q = party_at(pt, i);
			int is_assigned = 0;
			size_t k;

			if (is_caseworker(p) ? q->role != ROLE_PROVIDER : q->role != ROLE_VISITATION)
				continue;
			json_array_foreach(json_object_get(assigned, "assignments"), k, a)
				if (strcmp(jstr(a, "provider"), q->name) == 0 && active_today(a))
					is_assigned = 1;
			if (is_assigned != (j == 0))
				continue;
			out(p, "<li><input type=\"radio\" name=\"to\" id=\"to-");
			esc(p, q->name);
			out(p, "\" value=\"");
			esc(p, q->name);
			out(p, "\" data-services=\"");
			esc(p, q->conf->services ? q->conf->services : "");
			out(p, "\"%s required><label for=\"to-",
			    strcmp(to, q->name) == 0 || (*to == '\0' && !any && is_assigned) ?
			    " checked" : "");
			esc(p, q->name);
			out(p, "\">");
			esc(p, q->conf->organisation ? q->conf->organisation : q->name);
			out(p, " <span class=\"hint\">(");
			esc(p, q->name);
			if (is_caseworker(p)) {
				out(p, "; %s ", tr(p, "godkendt til", "approved for"));
				esc(p, q->conf->services ? q->conf->services : "-");
			}
			if (is_assigned)
				out(p, "; <strong>%s</strong>", tr(p, "tildelt borgeren",
				    "assigned to the citizen"));
			out(p, ")</span></label></li>");
			any = 1;
		}
	}
	out(p, "</ul></fieldset>");
	out(p, "<fieldset><legend>%s</legend>", class_label(p, "basic"));
	text_input(p, "start_date", tr(p, "Startdato (henvisning), gælder fra (opdatering), "
	    "foreslået fra (ændringsforslag)", "Start date (referral), effective from (update), "
	    "proposed from (change request)"), "date", "");
	text_input(p, "end_date", tr(p, "Slutdato (henvisning, ophør)",
	    "End date (referral, cancellation)"), "date", "");
	text_input(p, "reason", tr(p, "Årsag (ophør)", "Reason (cancellation)"), "text", "");
	text_input(p, "address", tr(p, "Adresse", "Address"), "text", "");
	text_input(p, "contact", tr(p, "Kontakt", "Contact"), "text", "");
	textarea(p, "basic_notes", tr(p, "Bemærkninger", "Notes"), NULL);
	out(p, "</fieldset><fieldset><legend>%s</legend>", class_label(p, "care"));
	textarea(p, "care_text", tr(p, "Beskrivelse, forslag eller observation",
	    "Description, proposal or observation"), NULL);
	textarea(p, "care_notes", tr(p, "Bemærkninger", "Notes"), NULL);
	out(p, "</fieldset><fieldset><legend>%s</legend>", class_label(p, "health"));
	textarea(p, "diagnoses", tr(p, "Diagnoser", "Diagnoses"), tr(p, "Én pr. linje",
	    "One per line"));
	textarea(p, "medication", tr(p, "Medicin", "Medication"), tr(p, "Én pr. linje",
	    "One per line"));
	textarea(p, "allergies", tr(p, "Allergier", "Allergies"), tr(p, "Én pr. linje",
	    "One per line"));
	textarea(p, "health_notes", tr(p, "Bemærkninger", "Notes"), NULL);
	out(p, "</fieldset><fieldset><legend>%s</legend>", tr(p, "Bilag", "Attachments"));
	out(p, "<div id=\"dropzone\" class=\"dropzone\"><p><label for=\"f-files\">%s</label>"
	    "<input id=\"f-files\" type=\"file\" multiple "
	    "accept=\"application/pdf,image/png,image/jpeg,image/gif,text/plain\"></p>"
	    "<p class=\"hint\">%s</p></div>",
	    tr(p, "Vælg filer (PDF, billeder, tekst)", "Choose files (PDF, images, text)"),
	    tr(p, "eller træk dem hertil", "or drag them here"));
	out(p, "<p><label for=\"f-att_class\">%s</label><select id=\"f-att_class\" "
	    "name=\"att_class\">", tr(p, "Bilagenes dataklasse", "The attachments' data class"));
	for (i = 0; i < 3; i++) {
		const char *c = message_class_name((enum message_class)i);

		out(p, "<option value=\"%s\"%s>", c,
		    strcmp(fv(p, "att_class"), c) == 0 || (*fv(p, "att_class") == '\0' && i == 1) ?
		    " selected" : "");
		esc(p, class_label(p, c));
		out(p, "</option>");
	}
	out(p, "</select></p><ul id=\"attach-list\" aria-live=\"polite\"></ul>"
	    "<input type=\"hidden\" name=\"attachments\" id=\"attachments\" value=\"");
	esc(p, fv(p, "attachments"));
	out(p, "\"></fieldset><p><button type=\"submit\" class=\"primary\">%s</button></p></form>",
	    tr(p, "Vis hvad modtageren får", "Preview what the recipient gets"));
	json_decref(assigned);
	page_end(p);
}

static void
preview_page(struct page *p)
{
	struct why why = { 0 };
	json_t *m = build_message(p), *pv = NULL, *rc_, *removed;
	char *js = json_dumps(m, JSON_COMPACT);
	size_t i, k;
	int sendable = 1;

	if (relay_preview(p->r, p->party, js, strlen(js), &pv, &why) != 0) {
		compose_page(p, why.text);
		goto out;
	}
	page_start(p, tr(p, "Sådan ser beskeden ud for modtageren",
	    "What the recipient will receive"));
	json_array_foreach(json_object_get(pv, "recipients"), i, rc_) {
		out(p, "<section class=\"recipient\" data-party=\"");
		esc(p, jstr(rc_, "party"));
		out(p, "\"><h2>%s: ", tr(p, "Modtager", "Recipient"));
		esc(p, jstr(rc_, "organisation"));
		out(p, "</h2>");
		if (!json_is_true(json_object_get(rc_, "allow"))) {
			sendable = 0;
			out(p, "<p class=\"error\" role=\"alert\">%s ",
			    tr(p, "Beskeden må ikke sendes:", "The message may not be sent:"));
			esc(p, jstr(rc_, "reason"));
			out(p, " (%s ", tr(p, "regel", "rule"));
			esc(p, jstr(rc_, "rule"));
			out(p, ")</p></section>");
			continue;
		}
		out(p, "<p>%s ", tr(p, "Tilladt af reglen", "Allowed by the rule"));
		esc(p, jstr(rc_, "rule"));
		out(p, ": ");
		esc(p, jstr(rc_, "reason"));
		out(p, "</p>");
		removed = json_object_get(rc_, "removed");
		if (json_array_size(removed) > 0) {
			json_t *c;

			out(p, "<p class=\"removed\">%s <strong>",
			    tr(p, "Fjernes før afsendelse (modtageren må ikke se det):",
			    "Removed before sending (the recipient may not see it):"));
			json_array_foreach(removed, k, c) {
				out(p, "%s<span data-removed=\"", k ? ", " : "");
				esc(p, json_string_value(c));
				out(p, "\">");
				esc(p, class_label(p, json_string_value(c)));
				out(p, "</span>");
			}
			out(p, "</strong></p>");
		} else {
			out(p, "<p class=\"kept\">%s</p>", tr(p, "Intet fjernes.",
			    "Nothing is removed."));
		}
		render_content(p, json_object_get(rc_, "content"));
		out(p, "</section>");
	}
	if (sendable) {
		out(p, "<form method=\"post\" action=\"/web/send\">");
		csrf_field(p);
		out(p, "<input type=\"hidden\" name=\"message\" value=\"");
		esc(p, js);
		out(p, "\"><p><button type=\"submit\" class=\"primary\" id=\"send\">%s</button></p>"
		    "</form>", tr(p, "Send sikkert", "Send securely"));
	}
	/* Back to the form with everything as it was. */
	out(p, "<form method=\"post\" action=\"/web/compose\">");
	csrf_field(p);
	for (i = 0; form_fields[i] != NULL; i++) {
		out(p, "<input type=\"hidden\" name=\"%s\" value=\"", form_fields[i]);
		esc(p, fv(p, form_fields[i]));
		out(p, "\">");
	}
	for (i = 0; message_service_categories[i] != NULL; i++)
		if (fv_has(p, "services", message_service_categories[i]))
			out(p, "<input type=\"hidden\" name=\"services\" value=\"%s\">",
			    message_service_categories[i]);
	out(p, "<p><button type=\"submit\">%s</button></p></form>", tr(p, "Ret beskeden",
	    "Edit the message"));
	page_end(p);
out:
	json_decref(pv);
	json_decref(m);
	if (js != NULL)
		freezero(js, strlen(js));
}

static void
post_send(struct page *p)
{
	struct why why = { 0 };
	const char *msg = fv(p, "message");
	json_t *j = NULL;
	char loc[100];
	int created = 0;

	if (relay_submit(p->r, p->party, "application/json", (const uint8_t *)msg, strlen(msg), &j,
	    &created, &why) != 0) {
		message_page(p, err_http_status(why.code) >= 500 ? 503 : 400,
		    tr(p, "Beskeden blev ikke sendt", "The message was not sent"),
		    err_http_status(why.code) >= 500 ? hegn_strerror(why.code) : why.text);
		return;
	}
	snprintf(loc, sizeof(loc), "/web/message/%s?sent=1", jstr(j, "id"));
	json_decref(j);
	redirect(p, loc);
}

/* ---- messages, timeline, view ---- */

static void
messages_table(struct page *p, const json_t *list, int received)
{
	const json_t *m;
	size_t i, shown = 0;

	out(p, "<table class=\"list\"><thead><tr><th scope=\"col\">%s</th><th scope=\"col\">%s"
	    "</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th></tr></thead><tbody>", tr(p, "Sendt", "Submitted"),
	    tr(p, "Slags", "Kind"), received ? tr(p, "Fra", "From") : tr(p, "Til", "To"),
	    tr(p, "Status", "State"), tr(p, "Frist", "Deadline"), tr(p, "Besked", "Message"));
	json_array_foreach(list, i, m) {
		int to_me = strcmp(jstr(m, "to"), p->party->name) == 0;

		if (to_me != received)
			continue;
		shown++;
		out(p, "<tr><td>");
		esc(p, jstr(m, "submitted"));
		out(p, "</td><td>");
		esc(p, kind_label(p, jstr(m, "kind")));
		out(p, "</td><td>");
		esc(p, received ? jstr(m, "from") : jstr(m, "to"));
		out(p, "</td><td class=\"state-");
		esc(p, jstr(m, "state"));
		out(p, "\">");
		esc(p, state_label(p, jstr(m, "state")));
		out(p, "</td><td>");
		esc(p, jstr(m, "deadline"));
		out(p, "</td><td>");
		if (received) {
			out(p, "<a href=\"/web/view/");
			esc(p, jstr(m, "id"));
			out(p, "\">%s</a> ", tr(p, "Åbn", "Open"));
		}
		out(p, "<a href=\"/web/message/");
		esc(p, jstr(m, "id"));
		out(p, "\">%s <span class=\"id\">", tr(p, "Forløb", "Timeline"));
		esc(p, jstr(m, "id"));
		out(p, "</span></a></td></tr>");
	}
	if (shown == 0)
		out(p, "<tr><td colspan=\"6\">%s</td></tr>", tr(p, "Ingen beskeder.", "No messages."));
	out(p, "</tbody></table>");
}

#define DAY_MS ((int64_t)86400 * 1000)

static void
list_page(struct page *p, int received)
{
	struct why why = { 0 };
	json_t *j = NULL;

	page_start(p, received ? tr(p, "Indbakke", "Inbox") :
	    tr(p, "Sendte beskeder", "Sent messages"));
	if (relay_party_messages(p->r, p->party->name, util_now_ms() - 90 * DAY_MS, &j, &why) != 0)
		alert(p, why.text);
	else
		messages_table(p, json_object_get(j, "messages"), received);
	json_decref(j);
	page_end(p);
}

static void
timeline_page(struct page *p, const char *id)
{
	struct why why = { 0 };
	json_t *j = NULL, *e;
	size_t i;

	if (relay_status(p->r, p->party, id, &j, &why) != 0) {
		not_found_page(p);
		return;
	}
	page_start(p, tr(p, "Beskedens forløb", "Message timeline"));
	if (http_query(p->req, "sent") != NULL)
		notice(p, tr(p, "Beskeden er sendt sikkert.", "The message was sent securely."));
	if (http_query(p->req, "registered") != NULL)
		notice(p, tr(p, "Registreret.", "Registered."));
	out(p, "<dl class=\"facts\"><dt>Id</dt><dd id=\"message-id\">");
	esc(p, jstr(j, "id"));
	out(p, "</dd><dt>%s</dt><dd>", tr(p, "Slags", "Kind"));
	esc(p, kind_label(p, jstr(j, "kind")));
	out(p, "</dd><dt>%s</dt><dd>", tr(p, "Fra", "From"));
	esc(p, jstr(j, "from"));
	out(p, "</dd><dt>%s</dt><dd id=\"state\" data-state=\"", tr(p, "Status", "State"));
	esc(p, jstr(j, "state"));
	out(p, "\">");
	esc(p, state_label(p, jstr(j, "state")));
	out(p, "</dd><dt>%s</dt><dd>", tr(p, "Sendt", "Submitted"));
	esc(p, jstr(j, "submitted"));
	out(p, "</dd></dl><h2>%s</h2><table class=\"list\"><thead><tr><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
	    tr(p, "Kopier", "Copies"), tr(p, "Modtager", "Recipient"), tr(p, "Kanal", "Channel"),
	    tr(p, "Status", "State"), tr(p, "Genafsendt", "Resends"), tr(p, "Frist", "Deadline"),
	    tr(p, "Kvittering eller årsag", "Receipt or reason"));
	json_array_foreach(json_object_get(j, "deliveries"), i, e) {
		json_t *rcpt = json_object_get(e, "receipt");

		out(p, "<tr><td>");
		esc(p, jstr(e, "recipient"));
		out(p, "</td><td>");
		esc(p, jstr(e, "channel"));
		out(p, "</td><td>");
		esc(p, state_label(p, jstr(e, "state")));
		out(p, "</td><td>%lld</td><td>", (long long)json_integer_value(json_object_get(e,
		    "resends")));
		esc(p, jstr(e, "deadline"));
		out(p, "</td><td>");
		if (rcpt != NULL) {
			esc(p, jstr(rcpt, "status"));
			out(p, " ");
			esc(p, jstr(rcpt, "received"));
			out(p, " ");
			esc(p, jstr(rcpt, "reason"));
		}
		esc(p, jstr(e, "fallback_reason"));
		out(p, "</td></tr>");
	}
	out(p, "</tbody></table><h2>%s</h2><ol class=\"timeline\">", tr(p, "Hændelser", "Events"));
	json_array_foreach(json_object_get(j, "events"), i, e) {
		out(p, "<li data-event=\"");
		esc(p, jstr(e, "event"));
		out(p, "\"><time>");
		esc(p, jstr(e, "at"));
		out(p, "</time> <strong>");
		esc(p, jstr(e, "event"));
		out(p, "</strong> ");
		esc(p, jstr(e, "recipient"));
		out(p, " <span class=\"hint\">(");
		esc(p, jstr(e, "party"));
		out(p, ") ");
		esc(p, jstr(e, "detail"));
		out(p, "</span></li>");
	}
	out(p, "</ol><p><a href=\"/web/view/");
	esc(p, id);
	out(p, "\">%s</a></p>", tr(p, "Vis indholdet", "Show the content"));
	/* Still waiting for an electronic answer (or given up on): it can go by hand. */
	if (is_caseworker(p) && strcmp(jstr(j, "from"), p->party->name) == 0 &&
	    (strcmp(jstr(j, "state"), "submitted") == 0 || strcmp(jstr(j, "state"), "delivered") == 0 ||
	    strcmp(jstr(j, "state"), "failed") == 0)) {
		out(p, "<form method=\"post\" class=\"fallback\" action=\"/web/message/");
		esc(p, id);
		out(p, "/fallback\">");
		csrf_field(p);
		out(p, "<fieldset><legend>%s</legend><p><label for=\"f-reason\">%s</label>"
		    "<input id=\"f-reason\" name=\"reason\" maxlength=\"256\" required value=\"%s\">"
		    "</p><p class=\"buttons\">"
		    "<button type=\"submit\" name=\"channel\" value=\"fax\">%s</button> "
		    "<button type=\"submit\" name=\"channel\" value=\"phone\">%s</button> "
		    "<button type=\"submit\" name=\"channel\" value=\"post\">%s</button></p>"
		    "</fieldset></form>",
		    tr(p, "Registrér at beskeden gik uden om hegn", "Register that it went outside hegn"),
		    tr(p, "Årsag", "Reason"),
		    tr(p, "Modtageren svarede ikke elektronisk", "No electronic answer from the recipient"),
		    tr(p, "Sendt pr. fax", "Sent by fax"), tr(p, "Ringet op", "Phoned"),
		    tr(p, "Sendt med post", "Sent by post"));
	}
	json_decref(j);
	page_end(p);
}

static void
post_fallback(struct page *p, const char *id)
{
	struct why why = { 0 };
	json_t *j = NULL;
	char loc[120];

	if (relay_fallback(p->r, p->party->name, id, NULL, fv(p, "channel"), fv(p, "reason"), &j,
	    &why) != 0) {
		message_page(p, err_http_status(why.code) >= 500 ? 503 : 400,
		    tr(p, "Ikke registreret", "Not registered"), why.text);
		return;
	}
	json_decref(j);
	snprintf(loc, sizeof(loc), "/web/message/%s?registered=1", id);
	redirect(p, loc);
}

static void
view_page(struct page *p, const char *id)
{
	struct why why = { 0 };
	json_t *j = NULL;

	if (relay_message_view(p->r, p->party, p->s.role, id, &j, &why) != 0) {
		if (why.code == HEGN_ERR_DENIED)
			message_page(p, 403, tr(p, "Ingen adgang", "No access"), why.text);
		else
			not_found_page(p);
		return;
	}
	page_start(p, kind_label(p, jstr(j, "kind")));
	out(p, "<p>%s ", tr(p, "Fra", "From"));
	esc(p, jstr(j, "from"));
	out(p, ". %s</p>", tr(p, "Visningen er registreret i adgangsloggen.",
	    "This view is recorded in the access log."));
	render_content(p, json_object_get(j, "content"));
	out(p, "<p><a href=\"/web/message/");
	esc(p, id);
	out(p, "\">%s</a></p>", tr(p, "Beskedens forløb", "Message timeline"));
	json_decref(j);
	page_end(p);
}

/* ---- outside communication ---- */

static void
external_page(struct page *p, const char *done)
{
	const struct party_table *pt = relay_parties(p->r);
	static const char *const kinds[] = { "referral", "care_update", "cancellation",
		"discharge_notice", "change_request", "observation", "other", NULL };
	size_t i;

	page_start(p, tr(p, "Kommunikation uden om hegn", "Communication outside hegn"));
	if (done != NULL)
		notice(p, done);
	out(p, "<p>%s</p><form method=\"post\" action=\"/web/external\">",
	    tr(p, "Vælg part og tryk på kanalen: så er det registreret.",
	    "Pick the party and press the channel: that registers it."));
	csrf_field(p);
	out(p, "<p><label for=\"f-party\">%s</label><select id=\"f-party\" name=\"party\">",
	    tr(p, "Part", "Party"));
	for (i = 0; i < party_count(pt); i++) {
		const struct party *q = party_at(pt, i);

		if (q == p->party || q->role == ROLE_AUDITOR)
			continue;
		out(p, "<option value=\"");
		esc(p, q->name);
		out(p, "\">");
		esc(p, q->conf->organisation ? q->conf->organisation : q->name);
		out(p, "</option>");
	}
	out(p, "</select></p><p><label for=\"f-ekind\">%s</label><select id=\"f-ekind\" "
	    "name=\"kind\">", tr(p, "Slags", "Kind"));
	for (i = 0; kinds[i] != NULL; i++) {
		out(p, "<option value=\"%s\">", kinds[i]);
		esc(p, kind_label(p, kinds[i]));
		out(p, "</option>");
	}
	out(p, "</select></p><fieldset><legend>%s</legend>"
	    "<input type=\"radio\" id=\"d-out\" name=\"direction\" value=\"outbound\" checked>"
	    "<label for=\"d-out\">%s</label> "
	    "<input type=\"radio\" id=\"d-in\" name=\"direction\" value=\"inbound\">"
	    "<label for=\"d-in\">%s</label></fieldset>"
	    "<p><label for=\"f-ereason\">%s</label><input id=\"f-ereason\" name=\"reason\" "
	    "maxlength=\"256\" required value=\"%s\"></p><p class=\"buttons\">"
	    "<button type=\"submit\" name=\"channel\" value=\"fax\">Fax</button> "
	    "<button type=\"submit\" name=\"channel\" value=\"phone\">%s</button> "
	    "<button type=\"submit\" name=\"channel\" value=\"post\">Post</button></p></form>",
	    tr(p, "Retning", "Direction"), tr(p, "Vi sendte", "We sent"),
	    tr(p, "Vi modtog", "We received"), tr(p, "Årsag", "Reason"),
	    tr(p, "Registreret af personalet", "Registered by staff"), tr(p, "Telefon", "Phone"));
	page_end(p);
}

static void
post_external(struct page *p)
{
	struct why why = { 0 };
	json_t *req, *j = NULL;

	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "channel", fv(p, "channel"), "party",
	    fv(p, "party"), "kind", fv(p, "kind"), "direction", fv(p, "direction"), "reason",
	    fv(p, "reason"));
	if (relay_external(p->r, p->party->name, req, &j, &why) != 0) {
		message_page(p, err_http_status(why.code) >= 500 ? 503 : 400,
		    tr(p, "Ikke registreret", "Not registered"), why.text);
	} else {
		external_page(p, tr(p, "Registreret. Det tæller med i overblikket.",
		    "Registered. It counts in the dashboard."));
	}
	json_decref(req);
	json_decref(j);
}

/* ---- dashboard ---- */

static int64_t
ji(const json_t *j, const char *name)
{
	return (int64_t)json_integer_value(json_object_get(j, name));
}

/* A stacked bar chart: per row, electronic, fallback and the rest. */
static void
bar_chart(struct page *p, const char *id, const char *title, const json_t *rows,
    const char *keyname, int by_party)
{
	const json_t *r;
	size_t i, n = json_array_size(rows);
	int64_t max = 1;
	int w = 640, h = 240, left = 40, bottom = 200, bw;

	json_array_foreach(rows, i, r) {
		int64_t t = by_party ? ji(r, "total") : ji(r, "total");

		if (t > max)
			max = t;
	}
	bw = n > 0 ? (w - left - 10) / (int)n : 0;
	if (bw > 80)
		bw = 80;
	out(p, "<figure><svg id=\"%s\" role=\"img\" aria-labelledby=\"%s-t\" viewBox=\"0 0 %d %d\" "
	    "width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"%s-t\">",
	    id, id, w, h, w, h, id);
	esc(p, title);
	out(p, "</title><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
	    "<text x=\"2\" y=\"14\" font-size=\"11\">%lld</text>"
	    "<text x=\"2\" y=\"%d\" font-size=\"11\">0</text>",
	    left, bottom, w - 5, bottom, (long long)max, bottom);
	json_array_foreach(rows, i, r) {
		int64_t el, fb, tot, rest;
		int x = left + 5 + (int)i * bw, he, hf, hr;

		if (by_party) {
			const json_t *o = json_object_get(r, "outcomes");

			tot = ji(r, "total");
			fb = ji(o, "fallback");
			el = (int64_t)(json_real_value(json_object_get(r, "electronic_share")) *
			    (double)tot + 0.5);
		} else {
			tot = ji(r, "total");
			fb = ji(r, "fallback");
			el = ji(r, "electronic");
		}
		rest = tot - el - fb;
		if (rest < 0)
			rest = 0;
		he = (int)(el * 180 / max);
		hf = (int)(fb * 180 / max);
		hr = (int)(rest * 180 / max);
		out(p, "<g><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#2e7d32\"/>"
		    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#e65100\"/>"
		    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#9e9e9e\"/>",
		    x, bottom - he, bw - 6, he, x, bottom - he - hf, bw - 6, hf,
		    x, bottom - he - hf - hr, bw - 6, hr);
		out(p, "<text x=\"%d\" y=\"%d\" font-size=\"10\">", x, bottom + 14 + (int)(i % 2) * 12);
		esc(p, jstr(r, keyname));
		out(p, "</text></g>");
	}
	out(p, "<rect x=\"%d\" y=\"6\" width=\"10\" height=\"10\" fill=\"#2e7d32\"/>"
	    "<text x=\"%d\" y=\"15\" font-size=\"11\">%s</text>"
	    "<rect x=\"%d\" y=\"22\" width=\"10\" height=\"10\" fill=\"#e65100\"/>"
	    "<text x=\"%d\" y=\"31\" font-size=\"11\">%s</text>"
	    "<rect x=\"%d\" y=\"38\" width=\"10\" height=\"10\" fill=\"#9e9e9e\"/>"
	    "<text x=\"%d\" y=\"47\" font-size=\"11\">%s</text></svg>",
	    w - 170, w - 155, tr(p, "elektronisk", "electronic"), w - 170, w - 155,
	    tr(p, "fax, post, telefon", "fax, post, phone"), w - 170, w - 155,
	    tr(p, "andet (venter, fejlet)", "other (pending, failed)"));
	out(p, "</figure>");
}

static void
dashboard_page(struct page *p)
{
	struct report *rep = NULL;
	struct why why = { 0 };
	json_t *weeks = NULL, *del = NULL, *msgs = NULL, *r;
	int64_t now = util_now_ms(), since = now - 26 * 7 * DAY_MS;
	size_t i, n;

	page_start(p, tr(p, "Overblik", "Dashboard"));
	if (report_collect(relay_store(p->r), relay_parties(p->r), since, 0, &rep, &why) != 0 ||
	    report_weeks(relay_store(p->r), relay_parties(p->r), since, 0, &weeks, &why) != 0) {
		alert(p, why.text);
		goto out;
	}
	del = report_delivery_json(rep);
	out(p, "<p id=\"totals\" data-total=\"%lld\" data-electronic=\"%lld\" "
	    "data-fallback=\"%lld\">%s %lld, %s %lld, %s %lld (%s %.0f %%).</p>",
	    (long long)ji(del, "total"),
	    (long long)(ji(del, "total") - ji(json_object_get(del, "outcomes"), "fallback") -
	    ji(json_object_get(del, "outcomes"), "failed") -
	    ji(json_object_get(del, "outcomes"), "pending")),
	    (long long)ji(json_object_get(del, "outcomes"), "fallback"),
	    tr(p, "Beskeder i alt:", "Messages in all:"), (long long)ji(del, "total"),
	    tr(p, "uden om hegn (fax, post, telefon):", "outside hegn (fax, post, phone):"),
	    (long long)ji(json_object_get(del, "outcomes"), "fallback"),
	    tr(p, "kvitteret elektronisk:", "acknowledged electronically:"),
	    (long long)ji(json_object_get(del, "outcomes"), "acknowledged"),
	    tr(p, "elektronisk andel", "electronic share"),
	    json_real_value(json_object_get(del, "electronic_share")) * 100.0);
	out(p, "<h2>%s</h2>", tr(p, "Elektronisk mod fax, post og telefon pr. uge",
	    "Electronic against fax, post and phone by week"));
	bar_chart(p, "chart-weeks", tr(p, "Pr. uge", "By week"), json_object_get(weeks, "weeks"),
	    "week", 0);
	out(p, "<table class=\"list\" id=\"weeks-table\"><caption>%s</caption><thead><tr>"
	    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th></tr></thead><tbody>", tr(p, "Pr. uge", "By week"),
	    tr(p, "Uge", "Week"), tr(p, "Elektronisk", "Electronic"),
	    tr(p, "Fax, post, telefon", "Fax, post, phone"), tr(p, "I alt", "Total"));
	json_array_foreach(json_object_get(weeks, "weeks"), i, r) {
		out(p, "<tr><th scope=\"row\">");
		esc(p, jstr(r, "week"));
		out(p, "</th><td>%lld</td><td>%lld</td><td>%lld</td></tr>",
		    (long long)ji(r, "electronic"), (long long)ji(r, "fallback"),
		    (long long)ji(r, "total"));
	}
	out(p, "</tbody></table><h2>%s</h2>", tr(p, "Pr. part", "By party"));
	bar_chart(p, "chart-parties", tr(p, "Pr. part", "By party"),
	    json_object_get(del, "by_party"), "party", 1);
	out(p, "<table class=\"list\" id=\"party-table\"><caption>%s</caption><thead><tr>"
	    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th></tr></thead><tbody>", tr(p, "Pr. part", "By party"),
	    tr(p, "Part", "Party"), tr(p, "Elektronisk andel", "Electronic share"),
	    tr(p, "Fax, post, telefon", "Fax, post, phone"), tr(p, "I alt", "Total"));
	json_array_foreach(json_object_get(del, "by_party"), i, r) {
		out(p, "<tr><th scope=\"row\">");
		esc(p, jstr(r, "party"));
		out(p, "</th><td>%.0f %%</td><td>%lld</td><td>%lld</td></tr>",
		    json_real_value(json_object_get(r, "electronic_share")) * 100.0,
		    (long long)ji(json_object_get(r, "outcomes"), "fallback"),
		    (long long)ji(r, "total"));
	}
	out(p, "</tbody></table>");
	if (is_caseworker(p) &&
	    relay_party_messages(p->r, p->party->name, now - 90 * DAY_MS, &msgs, &why) == 0) {
		json_t *open = json_array(), *soon = json_array(), *m;

		/* The list is newest first: walk it backwards for the oldest. */
		n = json_array_size(json_object_get(msgs, "messages"));
		for (i = n; i-- > 0;) {
			const char *st;

			m = json_array_get(json_object_get(msgs, "messages"), i);
			st = jstr(m, "state");
			if (strcmp(st, "submitted") != 0 && strcmp(st, "delivered") != 0)
				continue;
			if (json_array_size(open) < 10)
				json_array_append(open, m);
			if (ji(m, "deadline_ms") > 0 && ji(m, "deadline_ms") < now + DAY_MS &&
			    json_array_size(soon) < 10)
				json_array_append(soon, m);
		}
		out(p, "<h2>%s</h2>", tr(p, "Ældste ikke-kvitterede beskeder",
		    "Oldest unacknowledged messages"));
		messages_table(p, open, 0);
		out(p, "<h2>%s</h2>", tr(p, "Beskeder tæt på fristen (under et døgn)",
		    "Messages near their deadline (within a day)"));
		messages_table(p, soon, 0);
		json_decref(open);
		json_decref(soon);
	}
out:
	json_decref(msgs);
	json_decref(del);
	json_decref(weeks);
	report_free(rep);
	page_end(p);
}

/* ---- auditor ---- */

/* A date field (YYYY-MM-DD) as ms at the start of that day UTC (plus days); 0 when empty. */
static int
date_ms(const char *s, int add_days, int64_t *out_)
{
	struct tm tm;
	int y, m, d;

	*out_ = 0;
	if (*s == '\0')
		return 0;
	if (util_parse_date(s, &y, &m, &d) != 0)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d + add_days;
	*out_ = (int64_t)timegm(&tm) * 1000;
	return 0;
}

static void
audit_page(struct page *p)
{
	struct why why = { 0 };
	const char *cpr = fv(p, "cpr");
	int64_t from, to;
	json_t *j = NULL, *e;
	size_t i;

	page_start(p, tr(p, "Adgangslog for en borger", "Access log for a citizen"));
	out(p, "<form method=\"post\" action=\"/web/audit\" class=\"search\">");
	csrf_field(p);
	text_input(p, "cpr", tr(p, "CPR-nummer", "CPR number"), "text",
	    " required inputmode=\"numeric\" autocomplete=\"off\"");
	text_input(p, "from", tr(p, "Fra dato", "From date"), "date", "");
	text_input(p, "to", tr(p, "Til og med dato", "To date (inclusive)"), "date", "");
	out(p, "<p><button type=\"submit\" class=\"primary\">%s</button></p></form>",
	    tr(p, "Søg", "Search"));
	if (strcmp(p->req->method, "POST") == 0) {
		if (date_ms(fv(p, "from"), 0, &from) != 0 || date_ms(fv(p, "to"), 1, &to) != 0) {
			alert(p, tr(p, "Datoer skrives ÅÅÅÅ-MM-DD.", "Dates are YYYY-MM-DD."));
		} else if (relay_audit_query(p->r, p->party, NULL, cpr, from, to, &j, &why) != 0) {
			alert(p, why.text);
		} else {
			out(p, "<section aria-labelledby=\"res-h\"><h2 id=\"res-h\">%s</h2>"
			    "<p>%s <code>", tr(p, "Resultat", "Result"),
			    tr(p, "Borgeren er nøglet som", "The citizen is keyed as"));
			esc(p, jstr(j, "citizen"));
			out(p, "</code>. <span id=\"result-count\">%zu</span> %s</p>",
			    json_array_size(json_object_get(j, "entries")),
			    tr(p, "hændelser.", "events."));
			out(p, "<table class=\"list\" id=\"access\"><thead><tr>");
			out(p, "<th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
			    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
			    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
			    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
			    tr(p, "Tid", "Time"), tr(p, "Part", "Party"), tr(p, "Bruger", "User"),
			    tr(p, "Handling", "Action"), tr(p, "Udfald", "Outcome"),
			    tr(p, "Regel", "Rule"), tr(p, "Besked", "Message"),
			    tr(p, "Detalje", "Detail"));
			json_array_foreach(json_object_get(j, "entries"), i, e) {
				static const char *const cols[] = { "time", "actor", "user",
					"action", "outcome", "rule", "message", "detail" };
				size_t c;

				out(p, "<tr>");
				for (c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
					out(p, "<td>");
					esc(p, jstr(e, cols[c]));
					out(p, "</td>");
				}
				out(p, "</tr>");
			}
			out(p, "</tbody></table></section>");
		}
	}
	json_decref(j);
	page_end(p);
}

static void
verify_page(struct page *p)
{
	struct why why = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	f = open_memstream(&text, &len);
	rc = relay_audit_verify(p->r, f, &why);
	fclose(f);
	page_start(p, tr(p, "Adgangsloggens integritet", "Integrity of the access log"));
	if (rc == 0)
		out(p, "<p class=\"ok\" id=\"verify-status\" data-ok=\"1\">%s</p>",
		    tr(p, "Loggen er intakt: hver post og hvert signeret kontrolpunkt stemmer.",
		    "The log is intact: every entry and every signed checkpoint holds."));
	else {
		out(p, "<p class=\"error\" id=\"verify-status\" data-ok=\"0\" role=\"alert\">%s ",
		    tr(p, "Loggen er IKKE intakt:", "The log is NOT intact:"));
		esc(p, why.text);
		out(p, "</p>");
	}
	out(p, "<h2>%s</h2><pre>", tr(p, "Rapport", "Report"));
	esc(p, text);
	out(p, "</pre>");
	free(text);
	page_end(p);
}

static void
edag2_page(struct page *p)
{
	struct report *rep = NULL;
	struct why why = { 0 };
	json_t *j = NULL, *row, *tot;
	size_t i;

	page_start(p, tr(p, "eDag2-rapport", "eDag2 report"));
	if (report_collect(relay_store(p->r), relay_parties(p->r), 0, 0, &rep, &why) != 0) {
		alert(p, why.text);
		page_end(p);
		return;
	}
	j = report_edag2_json(rep);
	out(p, "<table class=\"list\" id=\"edag2\"><caption>%s</caption><thead><tr>",
	    tr(p, "Elektronisk og sikker kommunikation mod fax, post og telefon",
	    "Electronic and secure communication against fax, post and phone"));
	out(p, "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th><th scope=\"col\">Fax</th><th scope=\"col\">Post</th>"
	    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th></tr></thead><tbody>",
	    tr(p, "Måned", "Month"), tr(p, "Part", "Party"), tr(p, "Slags", "Kind"),
	    tr(p, "Elektronisk", "Electronic"), tr(p, "Telefon", "Phone"),
	    tr(p, "Fejlet", "Failed"), tr(p, "I alt", "Total"), tr(p, "Andel", "Share"));
	json_array_foreach(json_object_get(j, "rows"), i, row) {
		out(p, "<tr><td>");
		esc(p, jstr(row, "month"));
		out(p, "</td><td>");
		esc(p, jstr(row, "party"));
		out(p, "</td><td>");
		esc(p, kind_label(p, jstr(row, "kind")));
		out(p, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td>"
		    "<td>%lld</td><td>%.0f %%</td></tr>", (long long)ji(row, "electronic"),
		    (long long)ji(row, "fax"), (long long)ji(row, "post"),
		    (long long)ji(row, "phone"), (long long)ji(row, "failed"),
		    (long long)ji(row, "total"),
		    json_real_value(json_object_get(row, "electronic_share")) * 100.0);
	}
	tot = json_object_get(j, "total");
	if (tot != NULL)
		out(p, "</tbody><tfoot><tr><th scope=\"row\" colspan=\"3\">%s</th><td>%lld</td>"
		    "<td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td>"
		    "<td>%.0f %%</td></tr></tfoot>", tr(p, "I alt", "Total"),
		    (long long)ji(tot, "electronic"), (long long)ji(tot, "fax"),
		    (long long)ji(tot, "post"), (long long)ji(tot, "phone"),
		    (long long)ji(tot, "failed"), (long long)ji(tot, "total"),
		    json_real_value(json_object_get(tot, "electronic_share")) * 100.0);
	else
		out(p, "</tbody>");
	out(p, "</table>");
	json_decref(j);
	report_free(rep);
	page_end(p);
}

/* ---- routing ---- */

static void
static_file(struct page *p, const char *type, const char *text)
{
	p->resp->status = 200;
	p->resp->content_type = type;
	fputs(text, p->f);
}

/* The id in path after prefix, up to the next '/', into id; the rest in *rest. */
static int
path_id(const char *path, const char *prefix, char id[65], const char **rest)
{
	size_t plen = strlen(prefix), n;

	if (strncmp(path, prefix, plen) != 0)
		return 0;
	n = strcspn(path + plen, "/");
	if (n == 0 || n > 64)
		return 0;
	memcpy(id, path + plen, n);
	id[n] = '\0';
	*rest = path + plen + n;
	return util_valid_id(id);
}

static void
route(struct page *p)
{
	const char *path = p->req->path, *rest = NULL;
	int get = strcmp(p->req->method, "GET") == 0 || strcmp(p->req->method, "HEAD") == 0;
	int post = strcmp(p->req->method, "POST") == 0;
	char id[65];

	if (strcmp(path, "/") == 0 || strcmp(path, "/web") == 0) {
		redirect(p, "/web/");
		return;
	}
	if (get && strcmp(path, "/web/static/hegn.css") == 0) {
		static_file(p, "text/css; charset=utf-8", web_asset_css);
		return;
	}
	if (get && strcmp(path, "/web/static/icon.svg") == 0) {
		/* A fence: the browser asks for an icon on every page. */
		static_file(p, "image/svg+xml", "<svg xmlns=\"http://www.w3.org/2000/svg\" "
		    "viewBox=\"0 0 16 16\"><path d=\"M2 3v12M6 3v12M10 3v12M14 3v12M1 6h14M1 12h14\" "
		    "stroke=\"#123d5c\" stroke-width=\"2\"/></svg>\n");
		return;
	}
	if (get && strcmp(path, "/web/static/hegn.js") == 0) {
		static_file(p, "text/javascript; charset=utf-8", web_asset_js);
		return;
	}
	if (get && strcmp(path, "/web/lang") == 0) {
		get_lang(p);
		return;
	}
	if (!get && !post) {
		message_page(p, 405, tr(p, "Ikke tilladt", "Not allowed"),
		    tr(p, "Den metode bruges ikke her.", "That method is not used here."));
		return;
	}
	if (post && strcmp(path, "/web/login") == 0) {
		post_login(p);
		return;
	}
	if (!p->logged_in) {
		if (get && (strcmp(path, "/web/") == 0 || strcmp(path, "/web/login") == 0))
			login_page(p, NULL);
		else if (get)
			redirect(p, "/web/login");
		else
			message_page(p, 401, tr(p, "Log ind igen", "Log in again"),
			    tr(p, "Din session er udløbet.", "Your session has expired."));
		return;
	}
	/* Every form of a session carries its token. */
	if (post && !token_equal(fv(p, "csrf"), p->s.csrf)) {
		message_page(p, 403, tr(p, "Formularen blev afvist", "The form was refused"),
		    tr(p, "Formularen kom ikke fra denne session. Åbn siden igen.",
		    "The form did not come from this session. Open the page again."));
		return;
	}
	if (strcmp(path, "/web/") == 0 || strcmp(path, "/web/login") == 0) {
		if (home_of(p) != NULL)
			redirect(p, home_of(p));
		else
			message_page(p, 403, tr(p, "Ingen sider", "No pages"),
			    tr(p, "Websiden har ingen sider for din rolle; brug kommandolinjen.",
			    "The web page has no pages for your role; use the command line."));
		return;
	}
	if (post && strcmp(path, "/web/logout") == 0) {
		post_logout(p);
		return;
	}
	if (strcmp(path, "/web/compose") == 0 && may_compose(p)) {
		compose_page(p, NULL);
		return;
	}
	if (post && strcmp(path, "/web/preview") == 0 && may_compose(p) &&
	    relay_party_hosted(p->r, p->party->name)) {
		preview_page(p);
		return;
	}
	if (post && strcmp(path, "/web/send") == 0 && may_compose(p)) {
		post_send(p);
		return;
	}
	if (get && strcmp(path, "/web/messages") == 0 && may_compose(p)) {
		list_page(p, 0);
		return;
	}
	if (get && strcmp(path, "/web/inbox") == 0 && may_compose(p)) {
		list_page(p, 1);
		return;
	}
	if (path_id(path, "/web/message/", id, &rest) && may_compose(p)) {
		if (get && *rest == '\0')
			timeline_page(p, id);
		else if (post && strcmp(rest, "/fallback") == 0 && is_caseworker(p))
			post_fallback(p, id);
		else
			not_found_page(p);
		return;
	}
	if (get && path_id(path, "/web/view/", id, &rest) && *rest == '\0' && may_compose(p)) {
		view_page(p, id);
		return;
	}
	if (strcmp(path, "/web/external") == 0 && is_caseworker(p)) {
		if (post)
			post_external(p);
		else
			external_page(p, NULL);
		return;
	}
	if (get && strcmp(path, "/web/dashboard") == 0 && (is_caseworker(p) || is_auditor(p))) {
		dashboard_page(p);
		return;
	}
	if (strcmp(path, "/web/audit") == 0 && is_auditor(p)) {
		audit_page(p);
		return;
	}
	if (get && strcmp(path, "/web/verify") == 0 && is_auditor(p)) {
		verify_page(p);
		return;
	}
	if (get && strcmp(path, "/web/edag2") == 0 && is_auditor(p)) {
		edag2_page(p);
		return;
	}
	if (strncmp(path, "/web/", 5) == 0 && (strcmp(path, "/web/compose") == 0 ||
	    strcmp(path, "/web/dashboard") == 0 || strcmp(path, "/web/audit") == 0 ||
	    strcmp(path, "/web/external") == 0 || strcmp(path, "/web/inbox") == 0)) {
		forbidden_page(p);
		return;
	}
	not_found_page(p);
}

void
web_handle(struct relay *r, const struct http_request *req, struct http_response *resp)
{
	struct page p;
	const char *lang;
	size_t i;

	memset(&p, 0, sizeof(p));
	p.r = r;
	p.req = req;
	p.resp = resp;
	lang = cookie(&p, COOKIE_LANG);
	p.en = lang != NULL && strcmp(lang, "en") == 0;
	if (web_session_find(cookie(&p, COOKIE_SESSION), util_now_ms(), &p.s)) {
		struct why why = { 0 };
		int rc;

		p.logged_in = 1;
		p.party = party_find(relay_parties(r), p.s.party);
		if (p.party == NULL)
			p.logged_in = 0;
		/* A user disabled since the login (hegn user disable) is out at the next request. */
		if (p.logged_in &&
		    (rc = relay_user_current(r, p.s.user, p.s.party, p.s.role, &why)) != 0) {
			if (rc != HEGN_ERR_UNAUTH) {
				log_error("web: cannot check a session's user (%s)", why.text);
				buf_free(&resp->body, 0);
				resp->body.data = (uint8_t *)xstrdup("temporarily unavailable\n");
				resp->body.len = strlen((char *)resp->body.data);
				resp->status = 503;
				resp->content_type = "text/plain; charset=utf-8";
				goto out;
			}
			log_info("web: a session ended: %s", why.text);
			web_session_drop(p.s.id);
			p.logged_in = 0;
		}
	}
	relay_request_user(p.logged_in ? p.s.user : NULL);
	relay_request_user_role(p.logged_in ? p.s.role : NULL);
	buf_free(&resp->body, 0);
	if ((p.f = open_memstream(&p.html, &p.html_len)) == NULL) {
		log_error("web: cannot build a page (out of memory)");
		resp->status = 503;
		resp->content_type = "text/plain; charset=utf-8";
		goto out;
	}
	route(&p);
	fclose(p.f);
	resp->body.data = (uint8_t *)p.html;
	resp->body.len = p.html_len;
	if (resp->content_type == NULL)
		resp->content_type = "text/html; charset=utf-8";
out:
	relay_request_user(NULL);
	relay_request_user_role(NULL);
	for (i = 0; i < p.nstrs; i++)
		freezero(p.strs[i], strlen(p.strs[i]));
	free(p.strs);
	sodium_memzero(&p.s, sizeof(p.s));
}
