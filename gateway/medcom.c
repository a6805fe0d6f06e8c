/*
 * medcom: MedCom FHIR messages, validated as far as routing and safety
 * depend on them, and the Acknowledgements hegn sends back.
 *
 * This is not a FHIR profile validator.  It checks what a wrong answer
 * would turn into a misrouted or misattributed message: the envelope and
 * letter ids, the event, who sends and who receives (SOR and GLN, resolved
 * through entry.fullUrl), which citizen, the activity, and the time zone of
 * every timestamp.  docs/medcom.md lists the rules; the tables below and
 * that document change together.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "cpr.h"
#include "err.h"
#include "medcom.h"
#include "util.h"

#define SYS_EVENT "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-eventCodes"
#define SYS_ACTIVITY "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-activityCodes"
#define SYS_DEST_USE "http://medcomfhir.dk/ig/terminology/CodeSystem/medcom-messaging-destinationUse"
#define EXT_DEST_USE \
	"http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-destinationUseExtension"
#define SYS_SOR "urn:oid:1.2.208.176.1.1"
#define SYS_CPR "urn:oid:1.2.208.176.1.2"
#define SYS_XECPR "urn:oid:1.2.208.176.1.6.1.1"
#define SYS_GLN_HTTPS "https://www.gs1.org/gln"
#define SYS_GLN_HTTP "http://www.gs1.org/gln"
#define SOR_ENDPOINT "https://sor2.sum.dsdn.dk/#id="

/* Shapes copied from the published Acknowledgement 2.0.3 examples. */
#define ACK_FULLURL_BASE "https://medcomfhir.dk/ig/acknowledgement/"
#define ACK_PROFILE \
	"http://medcomfhir.dk/ig/acknowledgement/StructureDefinition/medcom-messaging-acknowledgement"
#define ACK_HEADER_PROFILE \
	"http://medcomfhir.dk/ig/acknowledgement/StructureDefinition/medcom-messaging-acknowledgementHeader"
#define ACK_OO_PROFILE \
	"http://medcomfhir.dk/ig/acknowledgement/StructureDefinition/medcom-acknowledgement-operationoutcome"
#define ORG_PROFILE "http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-organization"
#define PROV_PROFILE "http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-provenance"

/* What a fatal-error Acknowledgement says when the input gave nothing better. */
#define NIL_UUID "00000000-0000-0000-0000-000000000000"
#define UNKNOWN_ENDPOINT "urn:hegn:unknown"
#define UNKNOWN_SENDER "unknown sender"

/*
 * FHIR nests deeper than hegn's own format, but a MedCom message stays well
 * under this; the limit keeps the recursive checks below bounded.
 */
#define MEDCOM_MAX_DEPTH 32
/* Bounds the quadratic fullUrl uniqueness check. */
#define MEDCOM_MAX_ENTRIES 1000
#define MEDCOM_MAX_DIAGNOSTICS 4096

static const char *const event_codes[MEDCOM_EVENT_COUNT] = {
	[MEDCOM_HOSPITAL_NOTIFICATION] = "hospital-notification-message",
	[MEDCOM_CARE_COMMUNICATION] = "care-communication-message",
	[MEDCOM_ACKNOWLEDGEMENT] = "acknowledgement-message",
};

static const char *const ack_codes[MEDCOM_ACK_CODE_COUNT] = {
	[MEDCOM_ACK_OK] = "ok",
	[MEDCOM_ACK_TRANSIENT_ERROR] = "transient-error",
	[MEDCOM_ACK_FATAL_ERROR] = "fatal-error",
};

/*
 * HospitalNotification activities (ValueSet
 * medcom-hospitalNotification-messageActivities) by their base code; the
 * revise- and cancel- variants carry the base code's kind.  The end of a
 * leave is an admission notice: the citizen is back in hospital, and the
 * home helpers must stop visiting exactly as on an admission.
 */
static const struct {
	const char *code;
	const char *kind;
} hn_activities[] = {
	{ "admit-inpatient", "admission_notice" },          /* STIN */
	{ "admit-emergency", "admission_notice" },          /* STAA */
	{ "start-leave-inpatient", "leave_notice" },        /* STOR */
	{ "end-leave-inpatient", "admission_notice" },      /* SLOR */
	{ "discharge-inpatient-home", "discharge_notice" }, /* SLHJ */
	{ "discharge-emergency-home", "discharge_notice" }, /* SLHJ */
};

static const char *const encounter_statuses[] = {
	"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
	"cancelled", "entered-in-error", "unknown", NULL
};

static const char *const dup_names[] = {
	[MEDCOM_DUP_NEW] = "new",
	[MEDCOM_DUP_DUPLICATE] = "duplicate",
	[MEDCOM_DUP_RESEND] = "resend",
	[MEDCOM_DUP_ENVELOPE_REUSED] = "envelope_reused",
};

struct medcom_msg {
	json_t *root;
	enum medcom_event event;
	const char *bundle_id;
	const char *header_id;
	const char *timestamp;
	const char *sender_sor, *sender_gln, *sender_name;
	const char *receiver_sor, *receiver_gln;
	size_t ncc;
	struct {
		const char *sor, *gln;
	} cc[MEDCOM_MAX_CC];
	const char *source_endpoint;
	const char *dest_endpoint;
	char cpr[11];
	const char *ecpr;
	const char *activity;
	const char *encounter_status;
	bool deceased;
	const char *response_id;
	enum medcom_ack_code response_code;
	const char *outcome_text;
	/* Kept for medcom_to_hegn (borrowed from root). */
	json_t *patient;
	const char *occurred;     /* the current Provenance's time, with a zone */
};

/* The Bundle's entries, as the reference resolver sees them. */
struct bundle {
	json_t *entries;
	size_t n;
	const char *header_fullurl;
};

/* What an Acknowledgement needs to know about the message it answers. */
struct acked_info {
	const char *header_id;
	const char *sor, *gln, *name;
	const char *endpoint;
};

const char *
medcom_event_name(enum medcom_event ev)
{
	if ((int)ev < 0 || ev >= MEDCOM_EVENT_COUNT)
		return NULL;
	return event_codes[ev];
}

const char *
medcom_ack_code_name(enum medcom_ack_code code)
{
	if ((int)code < 0 || code >= MEDCOM_ACK_CODE_COUNT)
		return NULL;
	return ack_codes[code];
}

int
medcom_ack_code_from_name(const char *name, enum medcom_ack_code *code)
{
	int i;

	for (i = 0; name != NULL && i < MEDCOM_ACK_CODE_COUNT; i++) {
		if (strcmp(name, ack_codes[i]) == 0) {
			*code = (enum medcom_ack_code)i;
			return 0;
		}
	}
	return HEGN_ERR_INVALID;
}

static bool
all_digits(const char *s, size_t min, size_t max)
{
	size_t i, n;

	if (s == NULL)
		return false;
	n = strnlen(s, max + 1);
	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool
medcom_gln_valid(const char *gln)
{
	int i, sum = 0;

	if (!all_digits(gln, 13, 13))
		return false;
	/* GS1: weights 3 and 1 alternate from the digit left of the check digit. */
	for (i = 11; i >= 0; i--)
		sum += (gln[i] - '0') * ((11 - i) % 2 == 0 ? 3 : 1);
	return (10 - sum % 10) % 10 == gln[12] - '0';
}

bool
medcom_sor_valid(const char *sor)
{
	return all_digits(sor, 1, 18);
}

/* FHIR id: 1 to 64 of [A-Za-z0-9.-]. */
static bool
fhir_id_valid(const char *s)
{
	size_t i, n;

	if (s == NULL)
		return false;
	n = strnlen(s, 65);
	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* A URL or URI we are willing to repeat in an acknowledgement: printable ASCII, bounded. */
static bool
uri_valid(const char *s)
{
	size_t i, n;

	if (s == NULL)
		return false;
	n = strnlen(s, 1025);
	if (n == 0 || n > 1024)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/*
 * A value echoed in a reason: codes and identifiers of up to 40 characters
 * with fewer than six digits.  Anything else (possibly a CPR or a name) is
 * described, not shown.
 */
static const char *
shown(const char *s, char *out, size_t outlen)
{
	size_t i, n, ndigits = 0;

	if (s == NULL) {
		snprintf(out, outlen, "(none)");
		return out;
	}
	n = strnlen(s, 41);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			ndigits++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || c == '-' || c == '.' || c == '/' || c == ':'))
			break;
	}
	if (n == 0 || n > 40 || i < n || ndigits >= 6)
		snprintf(out, outlen, "(not shown)");
	else
		snprintf(out, outlen, "'%s'", s);
	return out;
}

static const char *
get_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static const char *
resource_type(json_t *res)
{
	return get_str(res, "resourceType");
}

static bool
in_list(const char *const *list, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool
depth_ok(const uint8_t *p, size_t len)
{
	size_t i;
	int depth = 0, in_string = 0, escaped = 0;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (escaped)
				escaped = 0;
			else if (p[i] == '\\')
				escaped = 1;
			else if (p[i] == '"')
				in_string = 0;
		} else if (p[i] == '"') {
			in_string = 1;
		} else if (p[i] == '{' || p[i] == '[') {
			if (++depth > MEDCOM_MAX_DEPTH)
				return false;
		} else if (p[i] == '}' || p[i] == ']') {
			depth--;
		}
	}
	return true;
}

/*
 * Strict JSON: no duplicate keys (two parsers picking different duplicates
 * would route differently), no NUL in strings, bounded size and depth.
 * jansson's text ends with the offending token, which may be content, so
 * that part is cut.
 */
static int
load_strict(const uint8_t *json, size_t len, json_t **out, struct why *why)
{
	json_error_t err;
	char *near;

	*out = NULL;
	if (json == NULL || len == 0)
		return why_set(why, HEGN_ERR_INVALID, "Bundle: malformed JSON: no input");
	if (len > MEDCOM_MAX_BYTES)
		return why_set(why, HEGN_ERR_TOO_LARGE, "Bundle: %zu bytes, more than %zu",
		    len, MEDCOM_MAX_BYTES);
	if (!depth_ok(json, len))
		return why_set(why, HEGN_ERR_INVALID,
		    "Bundle: malformed JSON: nested deeper than %d levels", MEDCOM_MAX_DEPTH);
	if ((*out = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		err.text[sizeof(err.text) - 1] = '\0';
		if ((near = strstr(err.text, " near ")) != NULL)
			*near = '\0';
		return why_set(why, HEGN_ERR_INVALID,
		    "Bundle: malformed JSON at line %d column %d: %s", err.line, err.column, err.text);
	}
	return 0;
}

/*
 * Find the entry a reference points to.  A relative reference "Type/id"
 * resolves against the base of the entries' fullUrls (the fullUrl ends in
 * "/Type/id"); an absolute one (or urn:uuid:) must equal a fullUrl.  The
 * target must be a type resource.  Returns the resource or NULL with why
 * naming path.
 */
static json_t *
resolve(const struct bundle *b, const char *ref, const char *type, const char *path,
    struct why *why)
{
	json_t *found = NULL, *e;
	const char *url, *rt;
	char tmp[64];
	size_t i, rlen, ulen, nfound = 0;
	bool relative;

	if (ref == NULL || *ref == '\0') {
		why_set(why, HEGN_ERR_INVALID, "%s.reference: missing", path);
		return NULL;
	}
	relative = strstr(ref, "://") == NULL && strncmp(ref, "urn:", 4) != 0;
	rlen = strlen(ref);
	if (relative && (strncmp(ref, type, strlen(type)) != 0 || ref[strlen(type)] != '/')) {
		why_set(why, HEGN_ERR_INVALID, "%s.reference: %s does not name an %s", path,
		    shown(ref, tmp, sizeof(tmp)), type);
		return NULL;
	}
	for (i = 0; i < b->n; i++) {
		e = json_array_get(b->entries, i);
		if ((url = get_str(e, "fullUrl")) == NULL)
			continue;
		ulen = strlen(url);
		if (strcmp(url, ref) == 0 || (relative && ulen > rlen &&
		    url[ulen - rlen - 1] == '/' && strcmp(url + ulen - rlen, ref) == 0)) {
			found = json_object_get(e, "resource");
			nfound++;
		}
	}
	if (nfound == 0) {
		why_set(why, HEGN_ERR_INVALID, "%s.reference: %s resolves to no entry in the Bundle",
		    path, shown(ref, tmp, sizeof(tmp)));
		return NULL;
	}
	if (nfound > 1) {
		why_set(why, HEGN_ERR_INVALID, "%s.reference: %s resolves to %zu entries",
		    path, shown(ref, tmp, sizeof(tmp)), nfound);
		return NULL;
	}
	if ((rt = resource_type(found)) == NULL || strcmp(rt, type) != 0) {
		why_set(why, HEGN_ERR_INVALID, "%s.reference: resolves to a %s, not an %s",
		    path, rt == NULL ? "resource without a type" : shown(rt, tmp, sizeof(tmp)), type);
		return NULL;
	}
	return found;
}

/*
 * An Organization's SOR and GLN: exactly one of each, well-formed.  role is
 * "sender" or "receiver".  Organisation identifiers are not personal data,
 * so a bad GLN is quoted once it has the shape of one.
 */
static int
org_identifiers(json_t *org, const char *role, const char **sor, const char **gln,
    struct why *why)
{
	json_t *ids, *id;
	const char *sys, *val, *s = NULL, *g = NULL;
	size_t i;
	int nsor = 0, ngln = 0;

	*sor = *gln = NULL;
	ids = json_object_get(org, "identifier");
	if (!json_is_array(ids))
		return why_set(why, HEGN_ERR_INVALID, "Organization (%s).identifier: missing", role);
	json_array_foreach(ids, i, id) {
		sys = get_str(id, "system");
		val = get_str(id, "value");
		if (sys == NULL)
			continue;
		if (strcmp(sys, SYS_SOR) == 0) {
			nsor++;
			s = val;
		} else if (strcmp(sys, SYS_GLN_HTTPS) == 0 || strcmp(sys, SYS_GLN_HTTP) == 0) {
			ngln++;
			g = val;
		}
	}
	if (nsor != 1)
		return why_set(why, HEGN_ERR_INVALID, "Organization (%s).identifier: %d SOR identifiers "
		    "(system %s), expected 1", role, nsor, SYS_SOR);
	if (!medcom_sor_valid(s))
		return why_set(why, HEGN_ERR_INVALID,
		    "Organization (%s).identifier SOR: not 1 to 18 digits", role);
	if (ngln != 1)
		return why_set(why, HEGN_ERR_INVALID, "Organization (%s).identifier: %d GLN identifiers "
		    "(system %s), expected 1", role, ngln, SYS_GLN_HTTPS);
	if (!all_digits(g, 13, 13))
		return why_set(why, HEGN_ERR_INVALID,
		    "Organization (%s).identifier GLN: not 13 digits", role);
	if (!medcom_gln_valid(g))
		return why_set(why, HEGN_ERR_INVALID,
		    "Organization (%s).identifier GLN %s: bad check digit", role, g);
	*sor = s;
	*gln = g;
	return 0;
}

/* An endpoint naming a SOR code must name the Organization's own. */
static int
endpoint_matches(const char *path, const char *endpoint, const char *sor, struct why *why)
{
	const char *named;
	size_t n = strlen(SOR_ENDPOINT);

	if (strncmp(endpoint, SOR_ENDPOINT, n) != 0)
		return 0;
	named = endpoint + n;
	if (!medcom_sor_valid(named))
		return why_set(why, HEGN_ERR_INVALID, "%s: SOR endpoint without a valid SOR code", path);
	if (strcmp(named, sor) != 0)
		return why_set(why, HEGN_ERR_INVALID, "%s: names SOR %s, but the Organization has SOR %s",
		    path, named, sor);
	return 0;
}

static bool
is_timestamp_key(const char *key)
{
	static const char *const keys[] = {
		"timestamp", "recorded", "start", "end", "lastUpdated", "issued", "sent",
		"received", "authoredOn", "occurrenceDateTime", NULL
	};
	size_t n = strlen(key);

	if (in_list(keys, key))
		return true;
	return (n > 8 && strcmp(key + n - 8, "DateTime") == 0) ||
	    (n > 7 && strcmp(key + n - 7, "Instant") == 0);
}

/* A FHIR partial date: YYYY, YYYY-MM or YYYY-MM-DD. */
static bool
partial_date_valid(const char *s)
{
	char full[11];
	int y, m, d;
	size_t n = strlen(s);

	if (n == 4 && all_digits(s, 4, 4))
		return true;
	if (n == 7) {
		snprintf(full, sizeof(full), "%s-01", s);
		return util_parse_date(full, &y, &m, &d) == 0;
	}
	if (n == 10)
		return util_parse_date(s, &y, &m, &d) == 0;
	return false;
}

/*
 * Every timestamp in v: a value with a time must carry a zone (a zoneless
 * time is ambiguous by an hour or two, enough to miss a home visit); a bare
 * date is allowed where FHIR allows one.
 */
static int
check_timestamps(json_t *v, char *path, size_t cap, struct why *why)
{
	const char *key, *s;
	json_t *item;
	size_t i, len = strlen(path);
	time_t t;
	int r = 0;

	if (json_is_array(v)) {
		json_array_foreach(v, i, item)
			if ((r = check_timestamps(item, path, cap, why)) != 0)
				return r;
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	json_object_foreach(v, key, item) {
		if (strcmp(key, "text") == 0)
			continue;
		snprintf(path + len, cap - len, ".%s", key);
		if (json_is_string(item) && is_timestamp_key(key)) {
			s = json_string_value(item);
			if (strchr(s, 'T') != NULL ? util_parse_rfc3339(s, &t) != 0 :
			    !partial_date_valid(s)) {
				r = why_set(why, HEGN_ERR_INVALID, "%s: not a date-time with a time zone",
				    path);
				break;
			}
		} else if ((r = check_timestamps(item, path, cap, why)) != 0) {
			break;
		}
	}
	path[len] = '\0';
	return r;
}

/* An instant (Bundle.timestamp, Provenance.recorded): present, with a time and zone. */
static int
check_instant(json_t *obj, const char *key, const char *path, const char **out, struct why *why)
{
	const char *s = get_str(obj, key);
	time_t t;

	if (out != NULL)
		*out = NULL;
	if (s == NULL)
		return why_set(why, HEGN_ERR_INVALID, "%s: missing", path);
	if (util_parse_rfc3339(s, &t) != 0)
		return why_set(why, HEGN_ERR_INVALID, "%s: not a date-time with a time zone", path);
	if (out != NULL)
		*out = s;
	return 0;
}

/* entry[]: objects with a resource and a unique fullUrl; exactly one MessageHeader, first. */
static int
check_entries(struct medcom_msg *m, struct bundle *b, json_t **header, struct why *why)
{
	json_t *e, *res;
	const char *url, *rt;
	size_t i, j;
	char tmp[64];

	*header = NULL;
	b->entries = json_object_get(m->root, "entry");
	if (!json_is_array(b->entries) || (b->n = json_array_size(b->entries)) == 0)
		return why_set(why, HEGN_ERR_INVALID, "Bundle.entry: missing or empty");
	if (b->n > MEDCOM_MAX_ENTRIES)
		return why_set(why, HEGN_ERR_INVALID, "Bundle.entry: %zu entries, more than %d",
		    b->n, MEDCOM_MAX_ENTRIES);
	for (i = 0; i < b->n; i++) {
		e = json_array_get(b->entries, i);
		res = json_object_get(e, "resource");
		if (!json_is_object(res) || (rt = resource_type(res)) == NULL)
			return why_set(why, HEGN_ERR_INVALID,
			    "Bundle.entry[%zu].resource: missing or without resourceType", i);
		if ((url = get_str(e, "fullUrl")) == NULL || *url == '\0')
			return why_set(why, HEGN_ERR_INVALID, "Bundle.entry[%zu].fullUrl: missing", i);
		for (j = 0; j < i; j++)
			if (strcmp(url, get_str(json_array_get(b->entries, j), "fullUrl")) == 0)
				return why_set(why, HEGN_ERR_INVALID,
				    "Bundle.entry[%zu].fullUrl: same as entry[%zu]", i, j);
		if (strcmp(rt, "MessageHeader") == 0) {
			if (i != 0)
				return why_set(why, HEGN_ERR_INVALID, "Bundle.entry[%zu]: %s", i,
				    *header == NULL ? "the MessageHeader is not the first entry" :
				    "a second MessageHeader");
			*header = res;
			b->header_fullurl = url;
		} else if (i == 0) {
			return why_set(why, HEGN_ERR_INVALID,
			    "Bundle.entry[0]: a %s, expected the MessageHeader", shown(rt, tmp, sizeof(tmp)));
		}
	}
	return 0;
}

static int
check_event(struct medcom_msg *m, json_t *header, struct why *why)
{
	json_t *ec = json_object_get(header, "eventCoding");
	const char *sys = get_str(ec, "system"), *code = get_str(ec, "code");
	char tmp[64];
	int i;

	if (!json_is_object(ec))
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.eventCoding: missing");
	if (sys == NULL || strcmp(sys, SYS_EVENT) != 0)
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.eventCoding.system: %s, expected %s",
		    shown(sys, tmp, sizeof(tmp)), SYS_EVENT);
	for (i = 0; code != NULL && i < MEDCOM_EVENT_COUNT; i++) {
		if (strcmp(code, event_codes[i]) == 0) {
			m->event = (enum medcom_event)i;
			return 0;
		}
	}
	return why_set(why, HEGN_ERR_INVALID, "MessageHeader.eventCoding.code: unknown event %s",
	    shown(code, tmp, sizeof(tmp)));
}

/* The destinationUse code of one destination ("primary" or "cc"), or NULL with why set. */
static const char *
destination_use(json_t *dest, size_t i, struct why *why)
{
	json_t *exts, *ext, *vc;
	const char *url, *use = NULL, *sys;
	size_t j;
	int n = 0;
	char tmp[64];

	exts = json_object_get(dest, "extension");
	json_array_foreach(exts, j, ext) {
		if ((url = get_str(ext, "url")) == NULL || strcmp(url, EXT_DEST_USE) != 0)
			continue;
		n++;
		vc = json_object_get(ext, "valueCoding");
		sys = get_str(vc, "system");
		use = get_str(vc, "code");
		if (sys != NULL && strcmp(sys, SYS_DEST_USE) != 0) {
			why_set(why, HEGN_ERR_INVALID, "MessageHeader.destination[%zu].extension "
			    "(destinationUse): system %s, expected %s", i, shown(sys, tmp, sizeof(tmp)),
			    SYS_DEST_USE);
			return NULL;
		}
	}
	if (n != 1) {
		why_set(why, HEGN_ERR_INVALID, "MessageHeader.destination[%zu]: %d destinationUse "
		    "extensions, expected 1", i, n);
		return NULL;
	}
	if (use == NULL || (strcmp(use, "primary") != 0 && strcmp(use, "cc") != 0)) {
		why_set(why, HEGN_ERR_INVALID, "MessageHeader.destination[%zu] destinationUse: %s, "
		    "expected 'primary' or 'cc'", i, shown(use, tmp, sizeof(tmp)));
		return NULL;
	}
	return use;
}

/*
 * A cc destination is checked as the primary one is (an identifier that
 * fails its check could name another organisation), and remembered for
 * routing.
 */
static int
check_cc(struct medcom_msg *m, const struct bundle *b, json_t *d, size_t i, struct why *why)
{
	json_t *org;
	const char *endpoint;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "MessageHeader.destination[%zu]", i);
	if (m->ncc == MEDCOM_MAX_CC)
		return why_set(why, HEGN_ERR_INVALID, "%s: more than %d cc destinations", path,
		    MEDCOM_MAX_CC);
	if (!uri_valid(endpoint = get_str(d, "endpoint")))
		return why_set(why, HEGN_ERR_INVALID, "%s.endpoint: missing or not a URL", path);
	if ((org = resolve(b, get_str(json_object_get(d, "receiver"), "reference"),
	    "Organization", "MessageHeader.destination.receiver (cc)", why)) == NULL)
		return why->code;
	if ((r = org_identifiers(org, "cc receiver", &m->cc[m->ncc].sor, &m->cc[m->ncc].gln,
	    why)) != 0)
		return r;
	if ((r = endpoint_matches("MessageHeader.destination.endpoint (cc)", endpoint,
	    m->cc[m->ncc].sor, why)) != 0)
		return r;
	m->ncc++;
	return 0;
}

static int
check_routing(struct medcom_msg *m, const struct bundle *b, json_t *header, struct why *why)
{
	json_t *dests, *d, *primary = NULL, *org;
	const char *use;
	size_t i;
	int nprimary = 0, r;

	dests = json_object_get(header, "destination");
	if (!json_is_array(dests) || json_array_size(dests) == 0)
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.destination: missing");
	json_array_foreach(dests, i, d) {
		if ((use = destination_use(d, i, why)) == NULL)
			return why->code;
		if (strcmp(use, "primary") == 0) {
			nprimary++;
			primary = d;
		} else if ((r = check_cc(m, b, d, i, why)) != 0) {
			return r;
		}
	}
	if (nprimary != 1)
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.destination: %d primary destinations",
		    nprimary);

	if (!uri_valid(m->dest_endpoint = get_str(primary, "endpoint")))
		return why_set(why, HEGN_ERR_INVALID,
		    "MessageHeader.destination.endpoint: missing or not a URL");
	if ((org = resolve(b, get_str(json_object_get(primary, "receiver"), "reference"),
	    "Organization", "MessageHeader.destination.receiver", why)) == NULL)
		return why->code;
	if ((r = org_identifiers(org, "receiver", &m->receiver_sor, &m->receiver_gln, why)) != 0)
		return r;
	if ((r = endpoint_matches("MessageHeader.destination.endpoint", m->dest_endpoint,
	    m->receiver_sor, why)) != 0)
		return r;

	if ((org = resolve(b, get_str(json_object_get(header, "sender"), "reference"),
	    "Organization", "MessageHeader.sender", why)) == NULL)
		return why->code;
	if ((r = org_identifiers(org, "sender", &m->sender_sor, &m->sender_gln, why)) != 0)
		return r;
	m->sender_name = get_str(org, "name");

	if (!uri_valid(m->source_endpoint = get_str(json_object_get(header, "source"), "endpoint")))
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.source.endpoint: missing or not a URL");
	return endpoint_matches("MessageHeader.source.endpoint", m->source_endpoint, m->sender_sor, why);
}

/* The one Patient, its CPR (or X-eCPR) and whether it is deceased. */
static int
check_patient(struct medcom_msg *m, const struct bundle *b, struct why *why)
{
	json_t *e, *res, *patient = NULL, *ids, *id, *dec;
	const char *sys, *cpr = NULL, *ecpr = NULL;
	size_t i, npat = 0, ncpr = 0, necpr = 0;
	int r;

	for (i = 0; i < b->n; i++) {
		e = json_array_get(b->entries, i);
		res = json_object_get(e, "resource");
		if (strcmp(resource_type(res), "Patient") == 0) {
			npat++;
			patient = res;
		}
	}
	if (npat != 1)
		return why_set(why, HEGN_ERR_INVALID, "Patient: %zu Patient entries, expected 1", npat);
	m->patient = patient;
	ids = json_object_get(patient, "identifier");
	json_array_foreach(ids, i, id) {
		if ((sys = get_str(id, "system")) == NULL)
			continue;
		if (strcmp(sys, SYS_CPR) == 0) {
			ncpr++;
			cpr = get_str(id, "value");
		} else if (strcmp(sys, SYS_XECPR) == 0) {
			necpr++;
			ecpr = get_str(id, "value");
		}
	}
	if (ncpr > 1)
		return why_set(why, HEGN_ERR_INVALID, "Patient.identifier: %zu CPR identifiers", ncpr);
	if (ncpr == 1) {
		/* A CPR, when present, is what identifies the citizen (MedComCorePatient). */
		if (cpr == NULL)
			return why_set(why, HEGN_ERR_INVALID, "Patient.identifier (CPR): no value");
		if ((r = cpr_check(cpr, NULL, NULL, NULL, why)) != 0)
			return why_prefix(why, r, "Patient.identifier (CPR)");
		if (cpr_normalize(cpr, m->cpr) != 0)
			return why_set(why, HEGN_ERR_INVALID, "Patient.identifier (CPR): malformed");
	} else if (necpr == 1) {
		/* X-eCPR: ten characters; its "date" part is not a date, so only the shape. */
		if (cpr_ecpr_check(ecpr, NULL) != 0)
			return why_set(why, HEGN_ERR_INVALID,
			    "Patient.identifier (X-eCPR): not 10 digits or capital letters");
		m->ecpr = ecpr;
	} else {
		return why_set(why, HEGN_ERR_INVALID, "Patient.identifier: no CPR (system %s) "
		    "or X-eCPR (system %s)", SYS_CPR, SYS_XECPR);
	}

	if ((dec = json_object_get(patient, "deceasedBoolean")) != NULL) {
		if (!json_is_boolean(dec))
			return why_set(why, HEGN_ERR_INVALID, "Patient.deceasedBoolean: not a boolean");
		m->deceased = json_is_true(dec);
	}
	if ((dec = json_object_get(patient, "deceasedDateTime")) != NULL) {
		if (m->deceased || json_object_get(patient, "deceasedBoolean") != NULL)
			return why_set(why, HEGN_ERR_INVALID,
			    "Patient: both deceasedBoolean and deceasedDateTime");
		if (!json_is_string(dec))
			return why_set(why, HEGN_ERR_INVALID, "Patient.deceasedDateTime: not a string");
		m->deceased = true;
	}
	return 0;
}

static bool
targets_header(json_t *prov, const struct bundle *b, const char *header_id)
{
	json_t *t;
	const char *ref;
	size_t i;

	json_array_foreach(json_object_get(prov, "target"), i, t) {
		if ((ref = get_str(t, "reference")) == NULL)
			continue;
		if (strcmp(ref, b->header_fullurl) == 0 ||
		    (strncmp(ref, "MessageHeader/", 14) == 0 && strcmp(ref + 14, header_id) == 0))
			return true;
	}
	return false;
}

/* Find the base activity entry of code, with revise-/cancel- stripped; -1 if none. */
static int
hn_activity_index(const char *code)
{
	size_t i;

	if (code == NULL)
		return -1;
	if (strncmp(code, "revise-", 7) == 0)
		code += 7;
	else if (strncmp(code, "cancel-", 7) == 0)
		code += 7;
	for (i = 0; i < sizeof(hn_activities) / sizeof(hn_activities[0]); i++)
		if (strcmp(code, hn_activities[i].code) == 0)
			return (int)i;
	return -1;
}

/*
 * At least one Provenance, each with a recorded instant, and exactly one
 * for this MessageHeader: its activity is what happened now (the others
 * are the history of earlier messages about the same stay).
 */
static int
check_provenance(struct medcom_msg *m, const struct bundle *b, struct why *why)
{
	json_t *res, *cur = NULL, *c;
	const char *sys, *code;
	size_t i, nprov = 0, ncur = 0;
	char tmp[64];
	time_t t;
	int r;

	for (i = 0; i < b->n; i++) {
		res = json_object_get(json_array_get(b->entries, i), "resource");
		if (strcmp(resource_type(res), "Provenance") != 0)
			continue;
		nprov++;
		if ((r = check_instant(res, "recorded", "Provenance.recorded", NULL, why)) != 0)
			return r;
		if (targets_header(res, b, m->header_id)) {
			ncur++;
			cur = res;
		}
	}
	if (nprov == 0)
		return why_set(why, HEGN_ERR_INVALID, "Provenance: none in the Bundle");
	if (ncur != 1)
		return why_set(why, HEGN_ERR_INVALID,
		    "Provenance.target: %zu Provenances target this MessageHeader, expected 1", ncur);
	json_array_foreach(json_object_get(json_object_get(cur, "activity"), "coding"), i, c) {
		sys = get_str(c, "system");
		if (sys != NULL && strcmp(sys, SYS_ACTIVITY) == 0 && (code = get_str(c, "code")) != NULL) {
			m->activity = code;
			break;
		}
	}
	/* When it happened, if given to the second with a zone; else when it was recorded. */
	m->occurred = get_str(cur, "occurredDateTime");
	if (m->occurred == NULL || util_parse_rfc3339(m->occurred, &t) != 0)
		m->occurred = get_str(cur, "recorded");
	if (m->activity == NULL || *m->activity == '\0')
		return why_set(why, HEGN_ERR_INVALID, "Provenance.activity: no code of system %s",
		    SYS_ACTIVITY);
	if (m->event == MEDCOM_HOSPITAL_NOTIFICATION && hn_activity_index(m->activity) < 0)
		return why_set(why, HEGN_ERR_INVALID,
		    "Provenance.activity: %s is not a HospitalNotification activity",
		    shown(m->activity, tmp, sizeof(tmp)));
	return 0;
}

/* A HospitalNotification is about the Encounter in MessageHeader.focus. */
static int
check_encounter(struct medcom_msg *m, const struct bundle *b, json_t *header, struct why *why)
{
	json_t *focus = json_object_get(header, "focus"), *enc;
	char tmp[64];

	if (json_array_size(focus) != 1)
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.focus: %zu references, expected 1",
		    json_array_size(focus));
	if ((enc = resolve(b, get_str(json_array_get(focus, 0), "reference"), "Encounter",
	    "MessageHeader.focus", why)) == NULL)
		return why->code;
	m->encounter_status = get_str(enc, "status");
	if (!in_list(encounter_statuses, m->encounter_status))
		return why_set(why, HEGN_ERR_INVALID, "Encounter.status: %s is not an Encounter status",
		    shown(m->encounter_status, tmp, sizeof(tmp)));
	return 0;
}

/* The first issue's details text, diagnostics or details code: what went wrong, for the log. */
static const char *
outcome_text(json_t *oo)
{
	json_t *issue = json_array_get(json_object_get(oo, "issue"), 0);
	json_t *details = json_object_get(issue, "details");
	const char *s;

	if ((s = get_str(details, "text")) != NULL)
		return s;
	if ((s = get_str(issue, "diagnostics")) != NULL)
		return s;
	return get_str(json_array_get(json_object_get(details, "coding"), 0), "code");
}

static int
check_response(struct medcom_msg *m, const struct bundle *b, json_t *header, struct why *why)
{
	json_t *resp = json_object_get(header, "response"), *details, *oo = NULL, *res;
	const char *code;
	size_t i;
	char tmp[64];

	if (!json_is_object(resp))
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.response: missing");
	if (!fhir_id_valid(m->response_id = get_str(resp, "identifier")))
		return why_set(why, HEGN_ERR_INVALID,
		    "MessageHeader.response.identifier: missing or not a FHIR id");
	code = get_str(resp, "code");
	if (medcom_ack_code_from_name(code, &m->response_code) != 0)
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.response.code: %s, expected "
		    "ok, transient-error or fatal-error", shown(code, tmp, sizeof(tmp)));
	if ((details = json_object_get(resp, "details")) != NULL) {
		if ((oo = resolve(b, get_str(details, "reference"), "OperationOutcome",
		    "MessageHeader.response.details", why)) == NULL)
			return why->code;
	} else {
		for (i = 0; i < b->n && oo == NULL; i++) {
			res = json_object_get(json_array_get(b->entries, i), "resource");
			if (strcmp(resource_type(res), "OperationOutcome") == 0)
				oo = res;
		}
	}
	if (m->response_code != MEDCOM_ACK_OK && oo == NULL)
		return why_set(why, HEGN_ERR_INVALID,
		    "OperationOutcome: missing, required when response.code is %s", code);
	if (oo != NULL)
		m->outcome_text = outcome_text(oo);
	return 0;
}

static int
check_message(struct medcom_msg *m, struct why *why)
{
	struct bundle b = { 0 };
	json_t *header = NULL;
	const char *s;
	char tmp[64], path[512];
	size_t i;
	int r;

	if (!json_is_object(m->root))
		return why_set(why, HEGN_ERR_INVALID, "Bundle: not a JSON object");
	s = resource_type(m->root);
	if (s == NULL || strcmp(s, "Bundle") != 0)
		return why_set(why, HEGN_ERR_INVALID, "Bundle.resourceType: %s, expected 'Bundle'",
		    shown(s, tmp, sizeof(tmp)));
	s = get_str(m->root, "type");
	if (s == NULL || strcmp(s, "message") != 0)
		return why_set(why, HEGN_ERR_INVALID, "Bundle.type: %s, expected 'message'",
		    shown(s, tmp, sizeof(tmp)));
	if (!fhir_id_valid(m->bundle_id = get_str(m->root, "id")))
		return why_set(why, HEGN_ERR_INVALID, "Bundle.id: missing or not a FHIR id");
	if ((r = check_instant(m->root, "timestamp", "Bundle.timestamp", &m->timestamp, why)) != 0)
		return r;
	if ((r = check_entries(m, &b, &header, why)) != 0)
		return r;
	if (!fhir_id_valid(m->header_id = get_str(header, "id")))
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.id: missing or not a FHIR id");
	if ((r = check_event(m, header, why)) != 0)
		return r;
	if ((r = check_routing(m, &b, header, why)) != 0)
		return r;
	if (m->event != MEDCOM_ACKNOWLEDGEMENT && (r = check_patient(m, &b, why)) != 0)
		return r;
	if (m->event == MEDCOM_HOSPITAL_NOTIFICATION && (r = check_encounter(m, &b, header, why)) != 0)
		return r;
	if (m->event == MEDCOM_ACKNOWLEDGEMENT && (r = check_response(m, &b, header, why)) != 0)
		return r;
	if ((r = check_provenance(m, &b, why)) != 0)
		return r;
	for (i = 0; i < b.n; i++) {
		json_t *res = json_object_get(json_array_get(b.entries, i), "resource");

		snprintf(path, sizeof(path), "%s", resource_type(res));
		if ((r = check_timestamps(res, path, sizeof(path), why)) != 0)
			return r;
	}
	return 0;
}

int
medcom_parse(const uint8_t *json, size_t len, struct medcom_msg **out, struct why *why)
{
	struct medcom_msg *m = NULL;
	struct why local;
	int r;

	*out = NULL;
	/* The checks return why->code, so they always get a why to fill. */
	if (why == NULL)
		why = &local;
	why_clear(why);
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "medcom: out of memory");
		goto out;
	}
	m->response_code = MEDCOM_ACK_CODE_COUNT;
	if ((r = load_strict(json, len, &m->root, why)) != 0)
		goto out;
	if ((r = check_message(m, why)) != 0)
		goto out;
	*out = m;
	m = NULL;
	r = 0;
 out:
	medcom_free(m);
	return r;
}

void
medcom_free(struct medcom_msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->root);
	sodium_memzero(m, sizeof(*m));
	free(m);
}

enum medcom_event
medcom_event(const struct medcom_msg *m)
{
	return m->event;
}

const char *
medcom_bundle_id(const struct medcom_msg *m)
{
	return m->bundle_id;
}

const char *
medcom_header_id(const struct medcom_msg *m)
{
	return m->header_id;
}

const char *
medcom_timestamp(const struct medcom_msg *m)
{
	return m->timestamp;
}

const char *
medcom_sender_sor(const struct medcom_msg *m)
{
	return m->sender_sor;
}

const char *
medcom_sender_gln(const struct medcom_msg *m)
{
	return m->sender_gln;
}

const char *
medcom_receiver_sor(const struct medcom_msg *m)
{
	return m->receiver_sor;
}

const char *
medcom_receiver_gln(const struct medcom_msg *m)
{
	return m->receiver_gln;
}

size_t
medcom_cc_count(const struct medcom_msg *m)
{
	return m->ncc;
}

const char *
medcom_cc_sor(const struct medcom_msg *m, size_t i)
{
	return i < m->ncc ? m->cc[i].sor : NULL;
}

const char *
medcom_cc_gln(const struct medcom_msg *m, size_t i)
{
	return i < m->ncc ? m->cc[i].gln : NULL;
}

const char *
medcom_source_endpoint(const struct medcom_msg *m)
{
	return m->source_endpoint;
}

const char *
medcom_destination_endpoint(const struct medcom_msg *m)
{
	return m->dest_endpoint;
}

const char *
medcom_cpr(const struct medcom_msg *m)
{
	return m->cpr[0] != '\0' ? m->cpr : NULL;
}

const char *
medcom_ecpr(const struct medcom_msg *m)
{
	return m->ecpr;
}

const char *
medcom_activity(const struct medcom_msg *m)
{
	return m->activity;
}

const char *
medcom_encounter_status(const struct medcom_msg *m)
{
	return m->encounter_status;
}

bool
medcom_deceased(const struct medcom_msg *m)
{
	return m->deceased;
}

const char *
medcom_response_identifier(const struct medcom_msg *m)
{
	return m->response_id;
}

enum medcom_ack_code
medcom_response_code(const struct medcom_msg *m)
{
	return m->response_code;
}

const char *
medcom_outcome_text(const struct medcom_msg *m)
{
	return m->outcome_text;
}

int
medcom_notification_kind(const struct medcom_msg *m, const char **kind, struct why *why)
{
	char tmp[64];
	int i;

	*kind = NULL;
	if (m->event != MEDCOM_HOSPITAL_NOTIFICATION)
		return why_set(why, HEGN_ERR_INVALID, "MessageHeader.eventCoding: %s is not a "
		    "HospitalNotification", event_codes[m->event]);
	/* A death outranks the activity: the home helpers must stop at once. */
	if (m->deceased) {
		*kind = "death_notice";
		return 0;
	}
	if ((i = hn_activity_index(m->activity)) < 0)
		return why_set(why, HEGN_ERR_INVALID, "Provenance.activity: %s has no notice kind",
		    shown(m->activity, tmp, sizeof(tmp)));
	*kind = hn_activities[i].kind;
	return 0;
}

bool
medcom_is_cancellation(const struct medcom_msg *m)
{
	return m->activity != NULL && strncmp(m->activity, "cancel-", 7) == 0;
}

bool
medcom_is_revision(const struct medcom_msg *m)
{
	return m->activity != NULL && strncmp(m->activity, "revise-", 7) == 0;
}

static json_t *
reference(const char *type, const char *id)
{
	char ref[128];

	snprintf(ref, sizeof(ref), "%s/%s", type, id);
	return json_pack("{s:s}", "reference", ref);
}

static json_t *
entry(const char *type, const char *id, json_t *resource)
{
	char url[256];

	if (resource == NULL)
		return NULL;
	snprintf(url, sizeof(url), ACK_FULLURL_BASE "%s/%s", type, id);
	return json_pack("{s:s, s:o}", "fullUrl", url, "resource", resource);
}

static json_t *
organization(const char *id, const char *sor, const char *gln, const char *name)
{
	json_t *org, *ids;

	if ((ids = json_array()) == NULL)
		return NULL;
	if ((gln != NULL && json_array_append_new(ids,
	    json_pack("{s:s, s:s}", "system", SYS_GLN_HTTPS, "value", gln)) != 0) ||
	    (sor != NULL && json_array_append_new(ids,
	    json_pack("{s:s, s:s}", "system", SYS_SOR, "value", sor)) != 0)) {
		json_decref(ids);
		return NULL;
	}
	org = json_pack("{s:s, s:s, s:{s:[s]}, s:o}", "resourceType", "Organization", "id", id,
	    "meta", "profile", ORG_PROFILE, "identifier", ids);
	/* FHIR org-1: an Organization has an identifier or a name. */
	if (org != NULL && (name != NULL || json_array_size(ids) == 0) &&
	    json_object_set_new(org, "name", json_string(name != NULL ? name : UNKNOWN_SENDER)) != 0) {
		json_decref(org);
		return NULL;
	}
	return org;
}

/* The Acknowledgement of the message described by a, as JSON text in *out. */
static int
build_ack(const struct acked_info *a, enum medcom_ack_code code, const char *diagnostics,
    const char *our_sor, const char *our_gln, struct buf *out, struct why *why)
{
	char bundle_id[37], mh_id[37], prov_id[37], our_id[37], their_id[37], oo_id[37];
	char now[32], source[128];
	json_t *root = NULL, *entries = NULL, *mh = NULL, *resp = NULL, *oo = NULL, *diag = NULL;
	char *text = NULL;
	int r;

	out->data = NULL;
	out->len = 0;
	if (!medcom_sor_valid(our_sor) || !medcom_gln_valid(our_gln)) {
		r = why_set(why, HEGN_ERR_CONFIG, "medcom: our SOR or GLN is malformed");
		goto out;
	}
	if (medcom_ack_code_name(code) == NULL) {
		r = why_set(why, HEGN_ERR_INVALID, "medcom: acknowledgement code %d out of range", code);
		goto out;
	}
	if (code != MEDCOM_ACK_OK) {
		if (diagnostics == NULL || *diagnostics == '\0')
			diagnostics = code == MEDCOM_ACK_FATAL_ERROR ? "message refused" :
			    "message not processed, send again later";
		if (strlen(diagnostics) > MEDCOM_MAX_DIAGNOSTICS ||
		    (diag = json_string(diagnostics)) == NULL) {
			r = why_set(why, HEGN_ERR_INVALID, "medcom: diagnostics longer than %d bytes "
			    "or not UTF-8", MEDCOM_MAX_DIAGNOSTICS);
			goto out;
		}
	}
	util_uuid(bundle_id);
	util_uuid(mh_id);
	util_uuid(prov_id);
	util_uuid(our_id);
	util_uuid(their_id);
	util_uuid(oo_id);
	util_time_rfc3339(time(NULL), now);
	snprintf(source, sizeof(source), SOR_ENDPOINT "%s", our_sor);

	r = why_set(why, HEGN_ERR_NOMEM, "medcom: out of memory building the acknowledgement");
	if ((resp = json_pack("{s:s, s:s}", "identifier", a->header_id, "code",
	    medcom_ack_code_name(code))) == NULL)
		goto out;
	if (code != MEDCOM_ACK_OK &&
	    json_object_set_new(resp, "details", reference("OperationOutcome", oo_id)) != 0)
		goto out;
	mh = json_pack("{s:s, s:s, s:{s:[s]}, s:{s:s, s:s}, s:[{s:[{s:s, s:{s:s, s:s}}], s:s, s:o}],"
	    " s:o, s:{s:s}, s:O}",
	    "resourceType", "MessageHeader", "id", mh_id,
	    "meta", "profile", ACK_HEADER_PROFILE,
	    "eventCoding", "system", SYS_EVENT, "code", event_codes[MEDCOM_ACKNOWLEDGEMENT],
	    "destination", "extension", "url", EXT_DEST_USE, "valueCoding", "system", SYS_DEST_USE,
	    "code", "primary", "endpoint", a->endpoint, "receiver", reference("Organization", their_id),
	    "sender", reference("Organization", our_id),
	    "source", "endpoint", source,
	    "response", resp);
	if (mh == NULL)
		goto out;
	if ((entries = json_pack("[o, o, o, o]",
	    entry("MessageHeader", mh_id, mh),
	    entry("Organization", our_id, organization(our_id, our_sor, our_gln, NULL)),
	    entry("Organization", their_id, organization(their_id, a->sor, a->gln, a->name)),
	    entry("Provenance", prov_id, json_pack("{s:s, s:s, s:{s:[s]}, s:[o], s:s, s:s, "
	    "s:{s:[{s:s, s:s}]}, s:[{s:o}], s:[{s:s, s:o}]}",
	    "resourceType", "Provenance", "id", prov_id, "meta", "profile", PROV_PROFILE,
	    "target", reference("MessageHeader", mh_id),
	    "occurredDateTime", now, "recorded", now,
	    "activity", "coding", "system", SYS_ACTIVITY, "code", "acknowledgement",
	    "agent", "who", reference("Organization", our_id),
	    "entity", "role", "revision", "what", reference("MessageHeader", a->header_id))))) == NULL)
		goto out;
	if (code != MEDCOM_ACK_OK) {
		/* MedCom puts the human-readable reason in issue.details.text. */
		oo = json_pack("{s:s, s:s, s:{s:[s]}, s:[{s:s, s:s, s:{s:O}}]}",
		    "resourceType", "OperationOutcome", "id", oo_id, "meta", "profile", ACK_OO_PROFILE,
		    "issue", "severity", "error",
		    "code", code == MEDCOM_ACK_FATAL_ERROR ? "invalid" : "transient",
		    "details", "text", diag);
		if (json_array_append_new(entries, entry("OperationOutcome", oo_id, oo)) != 0)
			goto out;
	}
	if ((root = json_pack("{s:s, s:s, s:{s:[s]}, s:s, s:s, s:O}",
	    "resourceType", "Bundle", "id", bundle_id, "meta", "profile", ACK_PROFILE,
	    "type", "message", "timestamp", now, "entry", entries)) == NULL)
		goto out;
	if ((text = json_dumps(root, JSON_INDENT(2))) == NULL)
		goto out;
	out->len = strlen(text);
	if ((out->data = malloc(out->len + 1)) == NULL) {
		out->len = 0;
		goto out;
	}
	memcpy(out->data, text, out->len + 1);
	why_clear(why);
	r = 0;
 out:
	free(text);
	json_decref(root);
	json_decref(entries);
	json_decref(resp);
	json_decref(diag);
	return r;
}

int
medcom_ack_build(const struct medcom_msg *acked, enum medcom_ack_code code,
    const char *diagnostics, const char *our_sor, const char *our_gln,
    struct buf *out, struct why *why)
{
	struct acked_info a;

	out->data = NULL;
	out->len = 0;
	if (acked->event == MEDCOM_ACKNOWLEDGEMENT)
		return why_set(why, HEGN_ERR_INVALID,
		    "MessageHeader.eventCoding: an acknowledgement is never acknowledged");
	a.header_id = acked->header_id;
	a.sor = acked->sender_sor;
	a.gln = acked->sender_gln;
	a.name = acked->sender_name;
	a.endpoint = acked->source_endpoint;
	return build_ack(&a, code, diagnostics, our_sor, our_gln, out, why);
}

/*
 * Read what can be trusted from input medcom_parse refused: each value is
 * taken only when it is well-formed by itself, and left NULL otherwise.
 */
static void
salvage(json_t *root, struct acked_info *a, bool *is_ack)
{
	struct bundle b = { 0 };
	json_t *header, *org, *e;
	const char *s;
	size_t i;

	memset(a, 0, sizeof(*a));
	*is_ack = false;
	b.entries = json_object_get(root, "entry");
	b.n = json_array_size(b.entries);
	if (b.n > MEDCOM_MAX_ENTRIES)
		b.n = MEDCOM_MAX_ENTRIES;
	e = json_array_get(b.entries, 0);
	header = json_object_get(e, "resource");
	if ((s = resource_type(header)) == NULL || strcmp(s, "MessageHeader") != 0)
		return;
	if ((s = get_str(json_object_get(header, "eventCoding"), "code")) != NULL &&
	    strcmp(s, event_codes[MEDCOM_ACKNOWLEDGEMENT]) == 0)
		*is_ack = true;
	if (fhir_id_valid(s = get_str(header, "id")))
		a->header_id = s;
	if (uri_valid(s = get_str(json_object_get(header, "source"), "endpoint")))
		a->endpoint = s;
	if ((b.header_fullurl = get_str(e, "fullUrl")) == NULL)
		return;
	/* Entries without a fullUrl would confuse resolve(); take only a clean Bundle's. */
	for (i = 0; i < b.n; i++)
		if (get_str(json_array_get(b.entries, i), "fullUrl") == NULL)
			return;
	if ((org = resolve(&b, get_str(json_object_get(header, "sender"), "reference"),
	    "Organization", "MessageHeader.sender", NULL)) == NULL)
		return;
	json_array_foreach(json_object_get(org, "identifier"), i, e) {
		if ((s = get_str(e, "system")) == NULL)
			continue;
		if (strcmp(s, SYS_SOR) == 0 && medcom_sor_valid(get_str(e, "value")))
			a->sor = get_str(e, "value");
		else if ((strcmp(s, SYS_GLN_HTTPS) == 0 || strcmp(s, SYS_GLN_HTTP) == 0) &&
		    medcom_gln_valid(get_str(e, "value")))
			a->gln = get_str(e, "value");
	}
	if ((s = get_str(org, "name")) != NULL && strlen(s) <= 200)
		a->name = s;
}

int
medcom_fatal_for_unparseable(const uint8_t *json, size_t len, const char *diagnostics,
    const char *our_sor, const char *our_gln, struct buf *out, struct why *why)
{
	struct acked_info a;
	json_t *root = NULL;
	char endpoint[64];
	bool is_ack = false;
	int r;

	out->data = NULL;
	out->len = 0;
	memset(&a, 0, sizeof(a));
	/* Input that is not even strict JSON yields no ids: every field takes its stand-in value (docs/medcom.md). */
	if (load_strict(json, len, &root, NULL) == 0)
		salvage(root, &a, &is_ack);
	if (is_ack) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "MessageHeader.eventCoding: an acknowledgement is never acknowledged");
		goto out;
	}
	if (a.header_id == NULL)
		a.header_id = NIL_UUID;
	/* No source endpoint: the SOR endpoint of the sender, if it has a SOR at all. */
	if (a.endpoint == NULL && a.sor != NULL) {
		snprintf(endpoint, sizeof(endpoint), SOR_ENDPOINT "%s", a.sor);
		a.endpoint = endpoint;
	} else if (a.endpoint == NULL) {
		a.endpoint = UNKNOWN_ENDPOINT;
	}
	r = build_ack(&a, MEDCOM_ACK_FATAL_ERROR, diagnostics, our_sor, our_gln, out, why);
 out:
	json_decref(root);
	return r;
}

enum medcom_dup
medcom_classify(bool bundle_seen, bool header_seen, bool same_pair)
{
	if (same_pair)
		return MEDCOM_DUP_DUPLICATE;
	/* A known envelope around another letter: the sender reuses Bundle.ids. */
	if (bundle_seen)
		return MEDCOM_DUP_ENVELOPE_REUSED;
	if (header_seen)
		return MEDCOM_DUP_RESEND;
	return MEDCOM_DUP_NEW;
}

const char *
medcom_dup_name(enum medcom_dup d)
{
	if ((int)d < 0 || (size_t)d >= sizeof(dup_names) / sizeof(dup_names[0]))
		return NULL;
	return dup_names[d];
}

/* --- The gateway's side: detection and conversion to hegn's format (issue 7) --- */

bool
medcom_is_fhir(const uint8_t *json, size_t len)
{
	json_t *root;
	const char *rt;
	bool yes = false;

	if (json == NULL || len == 0 || len > MEDCOM_MAX_BYTES)
		return false;
	/* Loose on purpose: medcom_parse is the judge; this only picks the parser. */
	if ((root = json_loadb((const char *)json, len, 0, NULL)) == NULL)
		return false;
	rt = get_str(root, "resourceType");
	yes = rt != NULL && strcmp(rt, "Bundle") == 0;
	json_decref(root);
	return yes;
}

/*
 * Append src to the buffer at *len (cap bytes with the NUL), cutting at a
 * UTF-8 character boundary when it does not fit.
 */
static void
append_cut(char *dst, size_t cap, size_t *len, const char *src)
{
	size_t n = strlen(src);

	if (*len + n + 1 > cap) {
		n = cap - 1 - *len;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst + *len, src, n);
	*len += n;
	dst[*len] = '\0';
}

/* Patient.name[0] as "given family" on one line, or NULL when there is none that fits. */
static char *
patient_name(json_t *patient)
{
	json_t *name = json_array_get(json_object_get(patient, "name"), 0), *g;
	char buf[201];
	size_t len = 0, i;
	const char *family = get_str(name, "family");

	buf[0] = '\0';
	json_array_foreach(json_object_get(name, "given"), i, g) {
		if (!json_is_string(g))
			continue;
		if (len > 0)
			append_cut(buf, sizeof(buf), &len, " ");
		append_cut(buf, sizeof(buf), &len, json_string_value(g));
	}
	if (family != NULL) {
		if (len > 0)
			append_cut(buf, sizeof(buf), &len, " ");
		append_cut(buf, sizeof(buf), &len, family);
	}
	if (len == 0 || strpbrk(buf, "\r\n\t") != NULL)
		return NULL;
	return strdup(buf);
}

/* The text of a CareCommunication: every payload's contentString, blank-line separated. */
static char *
communication_text(json_t *comm)
{
	static const size_t cap = 9000;   /* hegn's text fields hold 10000 characters */
	json_t *p;
	const char *t;
	char *buf;
	size_t len = 0, i;

	if ((buf = malloc(cap)) == NULL)
		return NULL;
	buf[0] = '\0';
	json_array_foreach(json_object_get(comm, "payload"), i, p) {
		if ((t = get_str(p, "contentString")) == NULL || *t == '\0')
			continue;
		if (len > 0)
			append_cut(buf, cap, &len, "\n\n");
		append_cut(buf, cap, &len, t);
	}
	if (len == 0)
		snprintf(buf, cap, "(a MedCom CareCommunication without text; see the original)");
	return buf;
}

int
medcom_to_hegn(const struct medcom_msg *m, const char *kind, const char *to, json_t **out,
    struct why *why)
{
	json_t *root = NULL, *basic = NULL, *care = NULL, *res, *comm = NULL;
	char *name = NULL, *text = NULL, hospital[201], note[300];
	const char *dec;
	size_t i, len = 0;
	time_t t;
	int r;

	*out = NULL;
	if (kind == NULL || to == NULL) {
		r = why_set(why, HEGN_ERR_INVALID, "medcom: no kind or recipient to convert to");
		goto out;
	}
	/* A citizen without a CPR keeps the X-eCPR (docs/messages.md, citizen.ecpr). */
	root = json_pack("{s:s, s:s, s:{s:s}}", "kind", kind, "to", to, "citizen",
	    m->cpr[0] != '\0' ? "cpr" : "ecpr", m->cpr[0] != '\0' ? m->cpr : m->ecpr);
	if (root == NULL) {
		r = why_set(why, HEGN_ERR_INVALID, "medcom: no citizen to convert");
		goto out;
	}
	if (m->patient != NULL && (name = patient_name(m->patient)) != NULL)
		json_object_set_new(json_object_get(root, "citizen"), "name", json_string(name));
	basic = json_object();
	if (strcmp(kind, "admission_notice") == 0 || strcmp(kind, "discharge_notice") == 0 ||
	    strcmp(kind, "leave_notice") == 0) {
		if (m->event != MEDCOM_HOSPITAL_NOTIFICATION) {
			r = why_set(why, HEGN_ERR_INVALID, "medcom: %s from a message that is not a "
			    "HospitalNotification", kind);
			goto out;
		}
		hospital[0] = '\0';
		if (m->sender_name != NULL && strpbrk(m->sender_name, "\r\n\t") == NULL)
			append_cut(hospital, sizeof(hospital), &len, m->sender_name);
		if (hospital[0] == '\0')
			snprintf(hospital, sizeof(hospital), "SOR %s", m->sender_sor);
		json_object_set_new(basic, "event_time", json_string(m->occurred));
		json_object_set_new(basic, "hospital", json_string(hospital));
	} else if (strcmp(kind, "death_notice") == 0) {
		dec = m->patient != NULL ? get_str(m->patient, "deceasedDateTime") : NULL;
		if (dec == NULL || util_parse_rfc3339(dec, &t) != 0)
			dec = m->occurred;
		json_object_set_new(basic, "time_of_death", json_string(dec));
	} else if (strcmp(kind, "observation") == 0 || strcmp(kind, "care_update") == 0) {
		if (m->event != MEDCOM_CARE_COMMUNICATION) {
			r = why_set(why, HEGN_ERR_INVALID, "medcom: %s from a message that is not a "
			    "CareCommunication", kind);
			goto out;
		}
		for (i = 0; comm == NULL &&
		    i < json_array_size(json_object_get(m->root, "entry")); i++) {
			res = json_object_get(json_array_get(json_object_get(m->root, "entry"), i),
			    "resource");
			if (strcmp(resource_type(res), "Communication") == 0)
				comm = res;
		}
		if ((text = communication_text(comm)) == NULL) {
			r = why_set(why, HEGN_ERR_NOMEM, "medcom: out of memory");
			goto out;
		}
		care = json_object();
		if (strcmp(kind, "observation") == 0) {
			json_object_set_new(basic, "observed_at", json_string(m->occurred));
			json_object_set_new(care, "text", json_string(text));
		} else {
			json_object_set_new(care, "description", json_string(text));
		}
	} else {
		r = why_set(why, HEGN_ERR_INVALID, "medcom: no conversion to kind %s", kind);
		goto out;
	}
	if (medcom_is_cancellation(m) || medcom_is_revision(m)) {
		snprintf(note, sizeof(note), "MedCom %s: %s an earlier notice",
		    m->activity, medcom_is_cancellation(m) ? "cancels" : "corrects");
		json_object_set_new(basic, "notes", json_string(note));
	}
	json_object_set_new(root, "basic", basic);
	basic = NULL;
	if (care != NULL) {
		json_object_set_new(root, "care", care);
		care = NULL;
	}
	*out = root;
	root = NULL;
	r = 0;
out:
	json_decref(root);
	json_decref(basic);
	json_decref(care);
	if (name != NULL)
		sodium_memzero(name, strlen(name));
	free(name);
	if (text != NULL)
		sodium_memzero(text, strlen(text));
	free(text);
	return r;
}
