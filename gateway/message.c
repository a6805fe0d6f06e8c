/*
 * message: hegn's JSON message format, parsed and validated strictly.
 *
 * The schema lives in the tables below: for each kind, which class objects
 * it may or must carry and which fields each may or must hold.
 * docs/messages.md describes the same tables for people; keep them in step.
 *
 * Everything a client sends is untrusted: unknown members are refused rather
 * than passed on (a member the gateway does not understand cannot be
 * minimised), duplicate keys are refused (two parsers could disagree on
 * which one wins), and error texts never echo values that could carry a CPR
 * number, a name or message content.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cpr.h"
#include "err.h"
#include "message.h"
#include "util.h"
#include "xmalloc.h"

/* Deeper than any valid message (at most 4), shallow enough for any stack. */
#define MSG_MAX_DEPTH 16

#define TEXT_LONG 10000      /* free text */
#define TEXT_LINE 500        /* an address, a reason */
#define TEXT_NAME 200        /* a name, a hospital, a diagnosis */
#define PARTY_MAX 64
#define FILENAME_MAX_BYTES 255
#define LIST_MAX 100         /* strings in a list */
#define VISITS_MAX 1000      /* visits in one time_usage */

const char *const message_service_categories[] = {
	"practical_help",
	"personal_care",
	"meals",
	"nursing",
	"rehabilitation",
	NULL
};

static const char *const content_types[] = {
	"application/pdf",
	"image/png",
	"image/jpeg",
	"text/plain",
	NULL
};

static const char *const class_names[CLASS_COUNT] = { "basic", "care", "health" };

enum ftype {
	F_TEXT,      /* one line: no control characters */
	F_LONGTEXT,  /* free text: tab, CR and LF allowed */
	F_DATE,      /* YYYY-MM-DD */
	F_TIME,      /* RFC 3339 with a zone */
	F_INT,
	F_ID,        /* util_valid_id */
	F_SERVICE,   /* one category */
	F_SERVICES,  /* non-empty list of distinct categories */
	F_STRLIST,   /* list of one-line strings */
	F_VISITS     /* time_usage visits */
};

struct field {
	const char *name;
	enum ftype type;
	int required;
	size_t max;         /* characters of a string; items of a list */
	size_t item_max;    /* characters of each F_STRLIST item */
	long long min, imax;
};

#define OPT 0
#define REQ 1
#define TEXT(n, r, m)      { (n), F_TEXT, (r), (m), 0, 0, 0 }
#define LONGTEXT(n, r)     { (n), F_LONGTEXT, (r), TEXT_LONG, 0, 0, 0 }
#define DATE(n, r)         { (n), F_DATE, (r), 0, 0, 0, 0 }
#define TIME(n, r)         { (n), F_TIME, (r), 0, 0, 0, 0 }
#define INT(n, r, lo, hi)  { (n), F_INT, (r), 0, 0, (lo), (hi) }
#define ID(n, r)           { (n), F_ID, (r), 0, 0, 0, 0 }
#define SERVICE(n, r)      { (n), F_SERVICE, (r), 0, 0, 0, 0 }
#define SERVICES(n, r)     { (n), F_SERVICES, (r), 0, 0, 0, 0 }
#define STRLIST(n, r, m, i) { (n), F_STRLIST, (r), (m), (i), 0, 0 }
#define VISITS(n, r)       { (n), F_VISITS, (r), VISITS_MAX, 0, 0, 0 }
#define NOTES              LONGTEXT("notes", OPT)
#define END                { NULL, F_TEXT, 0, 0, 0, 0, 0 }

static const struct field referral_basic[] = {
	SERVICES("services", REQ),
	DATE("start_date", REQ),
	DATE("end_date", OPT),
	TEXT("address", OPT, TEXT_LINE),
	TEXT("contact", OPT, TEXT_LINE),
	INT("visits_per_week", OPT, 1, 100),
	NOTES,
	END
};

static const struct field care_update_basic[] = {
	DATE("effective_from", OPT),
	NOTES,
	END
};

static const struct field cancellation_basic[] = {
	DATE("end_date", REQ),
	TEXT("reason", REQ, TEXT_LINE),
	SERVICES("services", OPT),
	NOTES,
	END
};

static const struct field admission_basic[] = {
	TIME("event_time", REQ),
	TEXT("hospital", REQ, TEXT_NAME),
	TEXT("department", OPT, TEXT_NAME),
	NOTES,
	END
};

static const struct field discharge_basic[] = {
	TIME("event_time", REQ),
	TEXT("hospital", REQ, TEXT_NAME),
	TEXT("department", OPT, TEXT_NAME),
	TIME("next_visit_needed_by", OPT),
	NOTES,
	END
};

static const struct field leave_basic[] = {
	TIME("event_time", REQ),
	TEXT("hospital", REQ, TEXT_NAME),
	TEXT("department", OPT, TEXT_NAME),
	TIME("expected_return", OPT),
	NOTES,
	END
};

static const struct field death_basic[] = {
	TIME("time_of_death", REQ),
	NOTES,
	END
};

static const struct field change_basic[] = {
	SERVICES("services", REQ),
	DATE("proposed_from", OPT),
	NOTES,
	END
};

static const struct field observation_basic[] = {
	TIME("observed_at", OPT),
	NOTES,
	END
};

static const struct field time_usage_basic[] = {
	VISITS("visits", REQ),
	NOTES,
	END
};

static const struct field visit_fields[] = {
	DATE("date", REQ),
	SERVICE("service", REQ),
	INT("minutes", REQ, 1, 1440),
	ID("visit_id", OPT),
	END
};

static const struct field care_optional[] = {
	LONGTEXT("description", OPT),
	NOTES,
	END
};

static const struct field care_description[] = {
	LONGTEXT("description", REQ),
	NOTES,
	END
};

static const struct field care_proposal[] = {
	LONGTEXT("proposal", REQ),
	NOTES,
	END
};

static const struct field care_text[] = {
	LONGTEXT("text", REQ),
	NOTES,
	END
};

static const struct field health_fields[] = {
	STRLIST("diagnoses", OPT, LIST_MAX, TEXT_NAME),
	STRLIST("medication", OPT, LIST_MAX, TEXT_LINE),
	STRLIST("allergies", OPT, LIST_MAX, TEXT_NAME),
	NOTES,
	END
};

enum presence { ABSENT = 0, OPTIONAL, REQUIRED };

struct class_spec {
	enum presence presence;
	const struct field *fields;
};

struct kind_spec {
	const char *name;
	struct class_spec classes[CLASS_COUNT];
};

#define NONE { ABSENT, NULL }
#define HEALTH { OPTIONAL, health_fields }

static const struct kind_spec kinds[MSG_KIND_COUNT] = {
	[MSG_REFERRAL] = { "referral",
	    { { REQUIRED, referral_basic }, { OPTIONAL, care_optional }, HEALTH } },
	[MSG_CARE_UPDATE] = { "care_update",
	    { { OPTIONAL, care_update_basic }, { REQUIRED, care_description }, HEALTH } },
	[MSG_CANCELLATION] = { "cancellation",
	    { { REQUIRED, cancellation_basic }, NONE, NONE } },
	[MSG_ADMISSION_NOTICE] = { "admission_notice",
	    { { REQUIRED, admission_basic }, { OPTIONAL, care_optional }, HEALTH } },
	[MSG_DISCHARGE_NOTICE] = { "discharge_notice",
	    { { REQUIRED, discharge_basic }, { OPTIONAL, care_optional }, HEALTH } },
	[MSG_LEAVE_NOTICE] = { "leave_notice",
	    { { REQUIRED, leave_basic }, { OPTIONAL, care_optional }, HEALTH } },
	[MSG_DEATH_NOTICE] = { "death_notice",
	    { { REQUIRED, death_basic }, NONE, NONE } },
	[MSG_CHANGE_REQUEST] = { "change_request",
	    { { REQUIRED, change_basic }, { REQUIRED, care_proposal }, HEALTH } },
	[MSG_OBSERVATION] = { "observation",
	    { { OPTIONAL, observation_basic }, { REQUIRED, care_text }, HEALTH } },
	[MSG_TIME_USAGE] = { "time_usage",
	    { { REQUIRED, time_usage_basic }, NONE, NONE } },
};

static const char *const top_fields[] = {
	"id", "kind", "from", "to", "citizen", "deadline", "minimised",
	"basic", "care", "health", "attachments", NULL
};

struct message {
	json_t *root;
	enum message_kind kind;
	char cpr[sizeof(CPR_ECPR_PREFIX) + 10];   /* ten digits, or the X-eCPR key */
	time_t deadline;
	unsigned classes;
};

const char *
message_kind_name(enum message_kind kind)
{
	if ((int)kind < 0 || kind >= MSG_KIND_COUNT)
		return NULL;
	return kinds[kind].name;
}

int
message_kind_from_name(const char *name, enum message_kind *kind)
{
	int i;

	for (i = 0; name != NULL && i < MSG_KIND_COUNT; i++) {
		if (strcmp(name, kinds[i].name) == 0) {
			*kind = (enum message_kind)i;
			return 0;
		}
	}
	return HEGN_ERR_INVALID;
}

const char *
message_class_name(enum message_class c)
{
	if ((int)c < 0 || c >= CLASS_COUNT)
		return NULL;
	return class_names[c];
}

int
message_class_from_name(const char *name, enum message_class *c)
{
	int i;

	for (i = 0; name != NULL && i < CLASS_COUNT; i++) {
		if (strcmp(name, class_names[i]) == 0) {
			*c = (enum message_class)i;
			return 0;
		}
	}
	return HEGN_ERR_INVALID;
}

static int
in_list(const char *const *list, const char *s)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

/*
 * Quote s for an error text only when it is short and cannot carry a CPR
 * number, a name or content: a few letters, digits, '_', '-' and '.', with
 * fewer than six digits.  Anything else is described, not shown.
 */
static const char *
shown(const char *s, char *out, size_t outlen)
{
	size_t i, n = strlen(s), ndigits = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			ndigits++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || c == '-' || c == '.' || c == '/'))
			break;
	}
	if (n == 0 || n > 40 || i < n || ndigits >= 6)
		snprintf(out, outlen, "(not shown)");
	else
		snprintf(out, outlen, "'%s'", s);
	return out;
}

static int
valid_party(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > PARTY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-'))
			return 0;
	return 1;
}

/*
 * A string of 1..max characters (code points; jansson has checked the
 * UTF-8).  Control characters could rewrite a terminal or a log viewer when
 * the message is shown, so only free text may hold tab, CR and LF.
 */
static int
check_string(const char *path, json_t *v, size_t max, int multiline, struct why *why)
{
	const unsigned char *s;
	size_t i, len, chars = 0;

	if (!json_is_string(v))
		return why_set(why, HEGN_ERR_INVALID, "%s: not a string", path);
	s = (const unsigned char *)json_string_value(v);
	len = json_string_length(v);
	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			return why_set(why, HEGN_ERR_INVALID, "%s: contains a NUL character", path);
		if (s[i] < 0x20 || s[i] == 0x7f) {
			if (!multiline || !(s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
				return why_set(why, HEGN_ERR_INVALID,
				    "%s: contains a control character", path);
		}
		if ((s[i] & 0xc0) != 0x80)
			chars++;
	}
	if (chars == 0)
		return why_set(why, HEGN_ERR_INVALID, "%s: empty", path);
	if (chars > max)
		return why_set(why, HEGN_ERR_INVALID, "%s: longer than %zu characters",
		    path, max);
	return 0;
}

static int
check_service(const char *path, json_t *v, struct why *why)
{
	char tmp[64];

	if (!json_is_string(v))
		return why_set(why, HEGN_ERR_INVALID, "%s: not a string", path);
	if (!in_list(message_service_categories, json_string_value(v)))
		return why_set(why, HEGN_ERR_INVALID, "%s: unknown service category %s",
		    path, shown(json_string_value(v), tmp, sizeof(tmp)));
	return 0;
}

static int check_object(const char *, json_t *, const struct field *, struct why *);

static int
check_field(const char *path, const struct field *f, json_t *v, struct why *why)
{
	char sub[192];
	json_t *item;
	size_t i, j;
	time_t t;
	int y, m, d, r;

	switch (f->type) {
	case F_TEXT:
	case F_LONGTEXT:
		return check_string(path, v, f->max, f->type == F_LONGTEXT, why);
	case F_DATE:
		if (!json_is_string(v) ||
		    util_parse_date(json_string_value(v), &y, &m, &d) != 0)
			return why_set(why, HEGN_ERR_INVALID,
			    "%s: not a date YYYY-MM-DD that exists", path);
		return 0;
	case F_TIME:
		if (!json_is_string(v) || util_parse_rfc3339(json_string_value(v), &t) != 0)
			return why_set(why, HEGN_ERR_INVALID,
			    "%s: not an RFC 3339 date-time with a time zone", path);
		return 0;
	case F_INT:
		if (!json_is_integer(v))
			return why_set(why, HEGN_ERR_INVALID, "%s: not an integer", path);
		if (json_integer_value(v) < f->min || json_integer_value(v) > f->imax)
			return why_set(why, HEGN_ERR_INVALID, "%s: not between %lld and %lld",
			    path, f->min, f->imax);
		return 0;
	case F_ID:
		if (!json_is_string(v) || !util_valid_id(json_string_value(v)))
			return why_set(why, HEGN_ERR_INVALID,
			    "%s: not 1 to 64 of letters, digits, '.', '_', ':' and '-'", path);
		return 0;
	case F_SERVICE:
		return check_service(path, v, why);
	case F_SERVICES:
		if (!json_is_array(v) || json_array_size(v) == 0)
			return why_set(why, HEGN_ERR_INVALID,
			    "%s: not a non-empty list of service categories", path);
		json_array_foreach(v, i, item) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if ((r = check_service(sub, item, why)) != 0)
				return r;
			for (j = 0; j < i; j++)
				if (json_equal(json_array_get(v, j), item))
					return why_set(why, HEGN_ERR_INVALID,
					    "%s: '%s' listed twice", sub, json_string_value(item));
		}
		return 0;
	case F_STRLIST:
		if (!json_is_array(v))
			return why_set(why, HEGN_ERR_INVALID, "%s: not a list", path);
		if (json_array_size(v) > f->max)
			return why_set(why, HEGN_ERR_INVALID, "%s: more than %zu entries",
			    path, f->max);
		json_array_foreach(v, i, item) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if ((r = check_string(sub, item, f->item_max, 0, why)) != 0)
				return r;
		}
		return 0;
	case F_VISITS:
		if (!json_is_array(v) || json_array_size(v) == 0)
			return why_set(why, HEGN_ERR_INVALID, "%s: not a non-empty list of visits",
			    path);
		if (json_array_size(v) > f->max)
			return why_set(why, HEGN_ERR_INVALID, "%s: more than %zu visits",
			    path, f->max);
		json_array_foreach(v, i, item) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if ((r = check_object(sub, item, visit_fields, why)) != 0)
				return r;
		}
		return 0;
	}
	return why_set(why, HEGN_ERR_INTERNAL, "%s: no rule for this field", path);
}

/* obj must be an object whose members are exactly some of fields, the required ones included. */
static int
check_object(const char *path, json_t *obj, const struct field *fields, struct why *why)
{
	const struct field *f;
	const char *key;
	char sub[192], tmp[64];
	json_t *v;
	int r;

	if (!json_is_object(obj))
		return why_set(why, HEGN_ERR_INVALID, "%s: not an object", path);
	json_object_foreach(obj, key, v) {
		for (f = fields; f->name != NULL; f++)
			if (strcmp(f->name, key) == 0)
				break;
		if (f->name == NULL)
			return why_set(why, HEGN_ERR_INVALID, "%s: unknown field %s", path,
			    shown(key, tmp, sizeof(tmp)));
	}
	for (f = fields; f->name != NULL; f++) {
		snprintf(sub, sizeof(sub), "%s.%s", path, f->name);
		if ((v = json_object_get(obj, f->name)) == NULL) {
			if (f->required)
				return why_set(why, HEGN_ERR_INVALID, "%s: missing", sub);
			continue;
		}
		if ((r = check_field(sub, f, v, why)) != 0)
			return r;
	}
	return 0;
}

static const char *
get_string(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static int
check_citizen(struct message *m, json_t *c, struct why *why)
{
	const char *key;
	char tmp[64];
	json_t *v;
	int r;

	if (c == NULL)
		return why_set(why, HEGN_ERR_INVALID, "citizen: missing");
	if (!json_is_object(c))
		return why_set(why, HEGN_ERR_INVALID, "citizen: not an object");
	json_object_foreach(c, key, v) {
		if (strcmp(key, "cpr") != 0 && strcmp(key, "ecpr") != 0 && strcmp(key, "name") != 0)
			return why_set(why, HEGN_ERR_INVALID, "citizen: unknown field %s",
			    shown(key, tmp, sizeof(tmp)));
	}
	/* A citizen without a CPR is known by an X-eCPR; one of the two, never both. */
	if ((v = json_object_get(c, "ecpr")) != NULL) {
		if (json_object_get(c, "cpr") != NULL)
			return why_set(why, HEGN_ERR_INVALID, "citizen: both cpr and ecpr");
		if (!json_is_string(v))
			return why_set(why, HEGN_ERR_INVALID, "citizen.ecpr: not a string");
		if ((r = cpr_ecpr_key(json_string_value(v), m->cpr, sizeof(m->cpr), why)) != 0)
			return why_prefix(why, r, "citizen.ecpr");
	} else {
		if ((v = json_object_get(c, "cpr")) == NULL)
			return why_set(why, HEGN_ERR_INVALID, "citizen.cpr: missing");
		if (!json_is_string(v))
			return why_set(why, HEGN_ERR_INVALID, "citizen.cpr: not a string");
		if ((r = cpr_check(json_string_value(v), NULL, NULL, NULL, why)) != 0)
			return why_prefix(why, r, "citizen.cpr");
		if (cpr_normalize(json_string_value(v), m->cpr) != 0)
			return why_set(why, HEGN_ERR_INVALID, "citizen.cpr: not ten digits");
	}
	if ((v = json_object_get(c, "name")) != NULL &&
	    (r = check_string("citizen.name", v, TEXT_NAME, 0, why)) != 0)
		return r;
	return 0;
}

/* Each base64 character's value plus one; 0 for every other byte. */
static const unsigned char b64_value[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
	['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
	['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
	['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
	['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
	['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64
};

/*
 * Check that s is padded base64 (RFC 4648 section 4, no line breaks) of
 * 1..max bytes, in canonical form (the bits the padding leaves over are
 * zero), as libsodium's decoder requires.  Only the characters are looked
 * at: nothing is decoded, so no copy of the content is made.
 */
static int
check_base64(const char *path, const char *s, size_t len, size_t max, struct why *why)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t size, i, pad;
	int r = HEGN_ERR_INVALID;

	if (len == 0 || len % 4 != 0) {
		why_set(why, r, "%s: not valid base64", path);
		goto out;
	}
	for (i = 0; i + 2 < len; i++) {
		if (s[i] == '=') {
			why_set(why, r, "%s: not valid base64", path);
			goto out;
		}
	}
	size = len / 4 * 3 - (s[len - 1] == '=') - (s[len - 2] == '=');
	if (size > max) {
		r = why_set(why, HEGN_ERR_TOO_LARGE, "%s: %zu bytes, more than the limit of %zu",
		    path, size, max);
		goto out;
	}
	pad = s[len - 1] != '=' ? 0 : (s[len - 2] == '=' ? 2 : 1);
	for (i = 0; i < len - pad; i++) {
		if (b64_value[u[i]] == 0) {
			why_set(why, r, "%s: not valid base64", path);
			goto out;
		}
	}
	if ((pad == 1 && ((b64_value[u[len - 2]] - 1) & 0x03) != 0) ||
	    (pad == 2 && ((b64_value[u[len - 3]] - 1) & 0x0f) != 0)) {
		why_set(why, r, "%s: not valid base64", path);
		goto out;
	}
	if (size == 0) {
		why_set(why, r, "%s: empty", path);
		goto out;
	}
	r = 0;
 out:
	return r;
}

static int
check_attachment(struct message *m, size_t idx, json_t *a, const struct message_limits *lim,
    struct why *why)
{
	static const char *const names[] = {
		"filename", "content_type", "class", "data", NULL
	};
	const char *key, *s;
	char path[64], sub[96], tmp[64];
	enum message_class c;
	json_t *v;
	size_t i;
	int r;

	snprintf(path, sizeof(path), "attachments[%zu]", idx);
	if (!json_is_object(a))
		return why_set(why, HEGN_ERR_INVALID, "%s: not an object", path);
	json_object_foreach(a, key, v) {
		if (!in_list(names, key))
			return why_set(why, HEGN_ERR_INVALID, "%s: unknown field %s", path,
			    shown(key, tmp, sizeof(tmp)));
	}
	for (i = 0; names[i] != NULL; i++) {
		if (json_object_get(a, names[i]) == NULL)
			return why_set(why, HEGN_ERR_INVALID, "%s.%s: missing", path, names[i]);
		if (!json_is_string(json_object_get(a, names[i])))
			return why_set(why, HEGN_ERR_INVALID, "%s.%s: not a string", path,
			    names[i]);
	}

	/* The agent writes attachments to disk under this name. */
	snprintf(sub, sizeof(sub), "%s.filename", path);
	v = json_object_get(a, "filename");
	if ((r = check_string(sub, v, FILENAME_MAX_BYTES, 0, why)) != 0)
		return r;
	s = json_string_value(v);
	if (json_string_length(v) > FILENAME_MAX_BYTES)
		return why_set(why, HEGN_ERR_INVALID, "%s: longer than %d bytes", sub,
		    FILENAME_MAX_BYTES);
	if (strchr(s, '/') != NULL || strchr(s, '\\') != NULL || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0)
		return why_set(why, HEGN_ERR_INVALID,
		    "%s: must be a plain file name (no '/' or '\\', not '.' or '..')", sub);

	s = get_string(a, "content_type");
	if (!in_list(content_types, s))
		return why_set(why, HEGN_ERR_INVALID, "%s.content_type: %s is not one of "
		    "application/pdf, image/png, image/jpeg, text/plain", path,
		    shown(s, tmp, sizeof(tmp)));

	s = get_string(a, "class");
	if (message_class_from_name(s, &c) != 0)
		return why_set(why, HEGN_ERR_INVALID, "%s.class: %s is not basic, care or health",
		    path, shown(s, tmp, sizeof(tmp)));
	if (kinds[m->kind].classes[c].presence == ABSENT)
		return why_set(why, HEGN_ERR_INVALID, "%s.class: a %s carries no %s content",
		    path, kinds[m->kind].name, class_names[c]);
	m->classes |= 1u << c;

	snprintf(sub, sizeof(sub), "%s.data", path);
	v = json_object_get(a, "data");
	return check_base64(sub, json_string_value(v), json_string_length(v),
	    lim->max_attachment_bytes, why);
}

static int
check_attachments(struct message *m, json_t *list, const struct message_limits *lim,
    struct why *why)
{
	json_t *a;
	size_t i;
	int r;

	if (!json_is_array(list))
		return why_set(why, HEGN_ERR_INVALID, "attachments: not a list");
	if (json_array_size(list) > lim->max_attachments)
		return why_set(why, HEGN_ERR_TOO_LARGE,
		    "attachments: %zu attachments, more than the limit of %zu",
		    json_array_size(list), lim->max_attachments);
	json_array_foreach(list, i, a) {
		if ((r = check_attachment(m, i, a, lim, why)) != 0)
			return r;
	}
	return 0;
}

/* Rules that span fields. */
static int
check_cross(struct message *m, struct why *why)
{
	json_t *basic = json_object_get(m->root, "basic");
	const char *start, *end;

	if (m->kind == MSG_REFERRAL) {
		start = get_string(basic, "start_date");
		end = get_string(basic, "end_date");
		/* Both are valid YYYY-MM-DD, so text order is date order. */
		if (start != NULL && end != NULL && strcmp(end, start) < 0)
			return why_set(why, HEGN_ERR_INVALID,
			    "basic.end_date: before basic.start_date");
	}
	return 0;
}

static int
check_message(struct message *m, const struct message_limits *lim, struct why *why)
{
	const struct kind_spec *spec;
	const char *key;
	char tmp[64];
	json_t *root = m->root, *v;
	int c, r;

	if (!json_is_object(root))
		return why_set(why, HEGN_ERR_INVALID, "message: not a JSON object");
	json_object_foreach(root, key, v) {
		if (!in_list(top_fields, key))
			return why_set(why, HEGN_ERR_INVALID, "unknown field %s",
			    shown(key, tmp, sizeof(tmp)));
	}

	if ((v = json_object_get(root, "kind")) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "kind: missing");
	if (!json_is_string(v))
		return why_set(why, HEGN_ERR_INVALID, "kind: not a string");
	if (message_kind_from_name(json_string_value(v), &m->kind) != 0)
		return why_set(why, HEGN_ERR_INVALID, "kind: unknown kind %s",
		    shown(json_string_value(v), tmp, sizeof(tmp)));
	spec = &kinds[m->kind];

	if ((v = json_object_get(root, "id")) != NULL &&
	    (!json_is_string(v) || !util_valid_id(json_string_value(v))))
		return why_set(why, HEGN_ERR_INVALID,
		    "id: not 1 to 64 of letters, digits, '.', '_', ':' and '-'");
	if ((v = json_object_get(root, "from")) != NULL &&
	    (!json_is_string(v) || !valid_party(json_string_value(v))))
		return why_set(why, HEGN_ERR_INVALID,
		    "from: not a party name (1 to 64 of a-z, 0-9 and '-')");
	/* Set by the gateway on a minimised copy; a sender's own is only shape-checked. */
	if ((v = json_object_get(root, "minimised")) != NULL &&
	    (!json_is_object(v) || !json_is_string(json_object_get(v, "original_sha256")) ||
	    !json_is_array(json_object_get(v, "removed")) ||
	    !json_is_string(json_object_get(v, "signed_by")) || json_object_size(v) != 3))
		return why_set(why, HEGN_ERR_INVALID,
		    "minimised: not {\"original_sha256\", \"removed\", \"signed_by\"}");
	if ((v = json_object_get(root, "to")) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "to: missing");
	if (!json_is_string(v) || !valid_party(json_string_value(v)))
		return why_set(why, HEGN_ERR_INVALID,
		    "to: not a party name (1 to 64 of a-z, 0-9 and '-')");
	if ((r = check_citizen(m, json_object_get(root, "citizen"), why)) != 0)
		return r;
	if ((v = json_object_get(root, "deadline")) != NULL &&
	    (!json_is_string(v) || util_parse_rfc3339(json_string_value(v), &m->deadline) != 0))
		return why_set(why, HEGN_ERR_INVALID,
		    "deadline: not an RFC 3339 date-time with a time zone");

	for (c = 0; c < CLASS_COUNT; c++) {
		v = json_object_get(root, class_names[c]);
		if (v == NULL) {
			if (spec->classes[c].presence == REQUIRED)
				return why_set(why, HEGN_ERR_INVALID,
				    "%s: missing (required for kind %s)", class_names[c], spec->name);
			continue;
		}
		if (spec->classes[c].presence == ABSENT)
			return why_set(why, HEGN_ERR_INVALID, "%s: not allowed for kind %s",
			    class_names[c], spec->name);
		if ((r = check_object(class_names[c], v, spec->classes[c].fields, why)) != 0)
			return r;
		m->classes |= 1u << c;
	}
	if ((r = check_cross(m, why)) != 0)
		return r;
	if ((v = json_object_get(root, "attachments")) != NULL &&
	    (r = check_attachments(m, v, lim, why)) != 0)
		return r;
	return 0;
}

/*
 * jansson keeps nesting to 2048 levels, but a valid message never goes past
 * four, so refuse deep input before any tree is built.
 */
static int
depth_ok(const uint8_t *p, size_t len)
{
	const uint8_t *q = NULL, *bs;
	size_t i;
	int depth = 0, in_string = 0, escaped = 0;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (escaped) {
				escaped = 0;
				continue;
			}
			/*
			 * Skip to the next quote or backslash with memchr: an
			 * attachment is one string of hundreds of kilobytes.  The
			 * next quote is looked for again only once passed, so
			 * many escapes cost no more than one scan.
			 */
			if ((q == NULL || q < p + i) &&
			    (q = memchr(p + i, '"', len - i)) == NULL)
				break;
			if ((bs = memchr(p + i, '\\', (size_t)(q - (p + i)))) != NULL) {
				i = (size_t)(bs - p);
				escaped = 1;
			} else {
				i = (size_t)(q - p);
				in_string = 0;
			}
		} else if (p[i] == '"') {
			in_string = 1;
		} else if (p[i] == '{' || p[i] == '[') {
			if (++depth > MSG_MAX_DEPTH)
				return 0;
		} else if (p[i] == '}' || p[i] == ']') {
			depth--;
		}
	}
	return 1;
}

/*
 * Parse JSON text strictly: no duplicate keys, no NUL in strings, an object
 * or array at the top.  jansson's error text ends with the offending token
 * ("near '...'"), which may be content, so that part is cut.
 */
static int
load_strict(const uint8_t *json, size_t len, json_t **out, struct why *why)
{
	json_error_t err;
	char *near;

	*out = NULL;
	if (json == NULL)
		return why_set(why, HEGN_ERR_INVALID, "malformed JSON: no input");
	if (!depth_ok(json, len))
		return why_set(why, HEGN_ERR_INVALID, "malformed JSON: nested deeper than %d levels",
		    MSG_MAX_DEPTH);
	if ((*out = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		err.text[sizeof(err.text) - 1] = '\0';
		if ((near = strstr(err.text, " near ")) != NULL)
			*near = '\0';
		return why_set(why, HEGN_ERR_INVALID, "malformed JSON at line %d column %d: %s",
		    err.line, err.column, err.text);
	}
	return 0;
}

int
message_parse(const uint8_t *json, size_t len, const struct message_limits *limits,
    struct message **out, struct why *why)
{
	static const struct message_limits defaults = {
		MESSAGE_DEFAULT_MAX_ATTACHMENTS, MESSAGE_DEFAULT_MAX_ATTACHMENT_BYTES
	};
	struct message *m = NULL;
	int r;

	*out = NULL;
	if (limits == NULL)
		limits = &defaults;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "message: out of memory");
		goto out;
	}
	if ((r = load_strict(json, len, &m->root, why)) != 0)
		goto out;
	if ((r = check_message(m, limits, why)) != 0)
		goto out;
	*out = m;
	m = NULL;
	r = 0;
 out:
	message_free(m);
	return r;
}

void
message_free(struct message *m)
{
	if (m == NULL)
		return;
	json_decref(m->root);
	sodium_memzero(m, sizeof(*m));
	free(m);
}

const char *
message_id(const struct message *m)
{
	return get_string(m->root, "id");
}

/* 0, or HEGN_ERR_NOMEM when jansson could not allocate (the old value may stay). */
static int
set_or_remove(json_t *root, const char *key, const char *value)
{
	if (value == NULL) {
		json_object_del(root, key);
		return 0;
	}
	return json_object_set_new(root, key, json_string(value)) == 0 ? 0 : HEGN_ERR_NOMEM;
}

int
message_set_id(struct message *m, const char *id)
{
	return set_or_remove(m->root, "id", id);
}

const char *
message_from(const struct message *m)
{
	return get_string(m->root, "from");
}

int
message_set_from(struct message *m, const char *from)
{
	return set_or_remove(m->root, "from", from);
}

enum message_kind
message_kind(const struct message *m)
{
	return m->kind;
}

const char *
message_to(const struct message *m)
{
	return get_string(m->root, "to");
}

const char *
message_cpr(const struct message *m)
{
	return m->cpr;
}

time_t
message_deadline(const struct message *m)
{
	return m->deadline;
}

unsigned
message_classes(const struct message *m)
{
	return m->classes;
}

json_t *
message_json(const struct message *m)
{
	return m->root;
}

/* Dump j into a new buffer (NUL-terminated beyond len), adding a newline when asked. */
static int
dump(json_t *j, size_t flags, int newline, struct buf *out, struct why *why)
{
	uint8_t *data = NULL;
	size_t need, len;
	int r;

	out->data = NULL;
	out->len = 0;
	if ((need = json_dumpb(j, NULL, 0, flags)) == 0) {
		r = why_set(why, HEGN_ERR_INTERNAL, "message: cannot serialise");
		goto out;
	}
	if ((data = malloc(need + 2)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "message: out of memory");
		goto out;
	}
	if ((len = json_dumpb(j, (char *)data, need, flags)) != need) {
		r = why_set(why, HEGN_ERR_INTERNAL, "message: cannot serialise");
		goto out;
	}
	if (newline)
		data[len++] = '\n';
	data[len] = '\0';
	out->data = data;
	out->len = len;
	data = NULL;
	r = 0;
 out:
	if (data != NULL) {
		sodium_memzero(data, need + 2);
		free(data);
	}
	return r;
}

int
message_canonical(const struct message *m, struct buf *out, struct why *why)
{
	json_t *back;
	int r;

	/* The direct form first (see "Canonical form" at the end); jansson for what it leaves. */
	if ((r = message_canonical_json(m->root, out, why)) != HEGN_ERR_UNSUPPORTED)
		return r;
	why_clear(why);
	if ((r = dump(m->root, JSON_COMPACT | JSON_SORT_KEYS, 0, out, why)) != 0)
		return r;
	/*
	 * jansson can leave a member out of a dump when memory runs short and
	 * still report success (found by tests/unit/test_faults.c).  These bytes
	 * get signed, so read them back and make sure they say the same.
	 */
	back = json_loadb((const char *)out->data, out->len, 0, NULL);
	if (back == NULL || !json_equal(back, m->root)) {
		json_decref(back);
		buf_free(out, 1);
		return why_set(why, HEGN_ERR_NOMEM, "message: could not serialise (out of memory)");
	}
	json_decref(back);
	return 0;
}

unsigned
message_required_classes(enum message_kind kind)
{
	unsigned mask = 0;
	int c;

	if ((int)kind < 0 || kind >= MSG_KIND_COUNT)
		return 0;
	for (c = 0; c < CLASS_COUNT; c++)
		if (kinds[kind].classes[c].presence == REQUIRED)
			mask |= 1u << c;
	return mask;
}

int
message_minimise(const struct message *m, unsigned keep, struct message **out,
    unsigned *removed, struct why *why)
{
	struct message *copy;
	json_t *atts, *kept, *a, *v;
	const char *key;
	unsigned drop = m->classes & ~keep, lost;
	enum message_class cls;
	size_t i;
	int c;

	*out = NULL;
	*removed = 0;
	lost = drop & message_required_classes(m->kind);
	if (lost != 0) {
		for (c = 0; c < CLASS_COUNT; c++)
			if (lost & (1u << c))
				break;
		return why_set(why, HEGN_ERR_UNPROCESSABLE,
		    "%s: the recipient may not receive %s data, which a %s requires",
		    message_class_name((enum message_class)c), message_class_name((enum message_class)c),
		    kinds[m->kind].name);
	}
	copy = xcalloc(1, sizeof(*copy));
	*copy = *m;
	/*
	 * A shallow copy: only the copy's own members change (the classes
	 * dropped, the attachments list, id, from, minimised), so it shares the
	 * rest, the attachments' data above all, instead of holding them again.
	 * Not json_copy: it leaves out a member it cannot add and still
	 * succeeds (found by tests/unit/test_faults.c).
	 */
	if ((copy->root = json_object()) == NULL)
		goto nomem;
	json_object_foreach(m->root, key, v)
		if (json_object_set(copy->root, key, v) != 0)
			goto nomem;
	for (c = 0; c < CLASS_COUNT; c++)
		if (drop & (1u << c))
			json_object_del(copy->root, message_class_name((enum message_class)c));
	atts = json_object_get(copy->root, "attachments");
	if (atts != NULL) {
		/* Unchecked, a failure here would drop attachments the recipient may have. */
		if ((kept = json_array()) == NULL)
			goto nomem;
		json_array_foreach(atts, i, a) {
			if (message_class_from_name(json_string_value(json_object_get(a, "class")),
			    &cls) == 0 && (drop & (1u << cls)))
				continue;
			if (json_array_append(kept, a) != 0) {
				json_decref(kept);
				goto nomem;
			}
		}
		if (json_array_size(kept) == 0)
			json_object_del(copy->root, "attachments");
		else if (json_object_set(copy->root, "attachments", kept) != 0) {
			json_decref(kept);
			goto nomem;
		}
		json_decref(kept);
	}
	copy->classes = m->classes & ~drop;
	*removed = drop;
	*out = copy;
	return 0;
nomem:
	message_free(copy);
	return why_set(why, HEGN_ERR_NOMEM, "out of memory for the minimised copy");
}

void
message_drop_attachment_data(struct message *m)
{
	json_t *a;
	size_t i;

	/* Out of memory, an attachment keeps its data: more memory held, nothing lost. */
	json_array_foreach(json_object_get(m->root, "attachments"), i, a)
		(void)json_object_set_new(a, "data", json_string(""));
}

int
message_set_minimised(struct message *m, const char *original_sha256, unsigned removed,
    const char *signed_by)
{
	json_t *list = json_array();
	int c;

	for (c = 0; c < CLASS_COUNT; c++)
		if (removed & (1u << c) && json_array_append_new(list,
		    json_string(message_class_name((enum message_class)c))) != 0) {
			json_decref(list);
			return HEGN_ERR_NOMEM;
		}
	/* json_pack's "o" takes list even when it fails. */
	return json_object_set_new(m->root, "minimised", json_pack("{s:s, s:o, s:s}",
	    "original_sha256", original_sha256, "removed", list, "signed_by", signed_by)) == 0 ?
	    0 : HEGN_ERR_NOMEM;
}

const char *
message_field(const struct message *m, const char *class_name, const char *name)
{
	return json_string_value(json_object_get(json_object_get(m->root, class_name), name));
}

void
message_services(const struct message *m, char out[257])
{
	json_t *list = json_object_get(json_object_get(m->root, "basic"), "services"), *v;
	size_t i, len = 0, n;

	out[0] = '\0';
	json_array_foreach(list, i, v) {
		if (!json_is_string(v))
			continue;
		n = strlen(json_string_value(v));
		if (len + n + 2 > 257)
			break;
		if (len > 0)
			out[len++] = ',';
		memcpy(out + len, json_string_value(v), n + 1);
		len += n;
	}
}

static json_t *
example_attachment(void)
{
	static const char text[] =
	    "Visitationsafgørelse\n"
	    "Personlig pleje morgen og aften, praktisk hjælp hver 14. dag.\n";
	char b64[sodium_base64_ENCODED_LEN(sizeof(text) - 1, sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)text, sizeof(text) - 1,
	    sodium_base64_VARIANT_ORIGINAL);
	return json_pack("[{s:s, s:s, s:s, s:s}]",
	    "filename", "visitationsafgoerelse.txt",
	    "content_type", "text/plain",
	    "class", "care",
	    "data", b64);
}

static json_t *
example_body(enum message_kind kind)
{
	switch (kind) {
	case MSG_REFERRAL:
		return json_pack("{s:{s:[s], s:s, s:s, s:s, s:i},"
		    " s:{s:s}, s:{s:[s,s], s:[s,s], s:s}, s:o}",
		    "basic",
		    "services", "practical_help",
		    "start_date", "2026-12-01",
		    "address", "Nørregade 12, 2. th., 4100 Ringsted",
		    "contact", "Datter Mette Testesen, tlf. 20 30 40 50",
		    "visits_per_week", 1,
		    "care",
		    "description", "Har brug for hjælp til rengøring hver 14. dag og til "
		    "indkøb en gang om ugen. Går med rollator.",
		    "health",
		    "diagnoses", "Hjerteinsufficiens", "Type 2-diabetes",
		    "medication", "Furosemid 40 mg morgen", "Metformin 500 mg morgen og aften",
		    "notes", "Vægt kontrolleres mandag og torsdag; stigning over 2 kg meldes "
		    "til sygeplejen.",
		    "attachments", example_attachment());
	case MSG_CARE_UPDATE:
		return json_pack("{s:{s:s}, s:{s:s}, s:{s:[s]}}",
		    "basic", "effective_from", "2026-12-01",
		    "care", "description", "Fra 1. december hjælp til at tage "
		    "kompressionsstrømper på om morgenen og af om aftenen.",
		    "health", "medication", "Furosemid 40 mg morgen, øget fra 20 mg");
	case MSG_CANCELLATION:
		return json_pack("{s:{s:s, s:s, s:[s]}}",
		    "basic", "end_date", "2026-12-31",
		    "reason", "Borgeren flytter på plejecenter.",
		    "services", "practical_help");
	case MSG_ADMISSION_NOTICE:
		return json_pack("{s:{s:s, s:s, s:s}}",
		    "basic", "event_time", "2026-11-27T08:15:00+01:00",
		    "hospital", "Sjællands Universitetshospital, Køge",
		    "department", "Kardiologisk afdeling");
	case MSG_DISCHARGE_NOTICE:
		return json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:s}}",
		    "basic", "event_time", "2026-11-28T14:30:00+01:00",
		    "hospital", "Sjællands Universitetshospital, Køge",
		    "department", "Kardiologisk afdeling",
		    "next_visit_needed_by", "2026-11-28T18:00:00+01:00",
		    "care", "description", "Udskrives til eget hjem. Behov for hjælp til bad "
		    "og påklædning de første to uger.");
	case MSG_LEAVE_NOTICE:
		return json_pack("{s:{s:s, s:s, s:s}}",
		    "basic", "event_time", "2026-12-24T10:00:00+01:00",
		    "hospital", "Psykiatrien Region Sjælland, Roskilde",
		    "expected_return", "2026-12-26T18:00:00+01:00");
	case MSG_DEATH_NOTICE:
		return json_pack("{s:{s:s}}",
		    "basic", "time_of_death", "2026-11-27T03:40:00+01:00");
	case MSG_CHANGE_REQUEST:
		return json_pack("{s:{s:[s], s:s}, s:{s:s}}",
		    "basic", "services", "practical_help", "proposed_from", "2026-12-07",
		    "care", "proposal", "Borgeren klarer nu selv de lette indkøb. Vi foreslår, "
		    "at indkøbshjælpen ændres til hver anden uge.");
	case MSG_OBSERVATION:
		return json_pack("{s:{s:s}, s:{s:s}}",
		    "basic", "observed_at", "2026-11-27T07:20:00+01:00",
		    "care", "text", "Borgeren virkede forvirret og havde ikke spist "
		    "aftensmaden fra i går.");
	case MSG_TIME_USAGE:
		return json_pack("{s:{s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}}",
		    "basic", "visits",
		    "date", "2026-11-18", "service", "practical_help", "minutes", 55,
		    "visit_id", "v-20261118-1030",
		    "date", "2026-11-25", "service", "practical_help", "minutes", 45,
		    "visit_id", "v-20261125-1030");
	default:
		return NULL;
	}
}

int
message_example(enum message_kind kind, const char *to, struct buf *out)
{
	json_t *root = NULL;
	int r;

	out->data = NULL;
	out->len = 0;
	if (message_kind_name(kind) == NULL || to == NULL || !valid_party(to)) {
		r = HEGN_ERR_INVALID;
		goto out;
	}
	if ((root = example_body(kind)) == NULL ||
	    json_object_set_new(root, "kind", json_string(kinds[kind].name)) != 0 ||
	    json_object_set_new(root, "to", json_string(to)) != 0 ||
	    json_object_set_new(root, "citizen", json_pack("{s:s, s:s}",
	    "cpr", "2509479989", "name", "Elmer Testesen")) != 0) {
		r = HEGN_ERR_NOMEM;
		goto out;
	}
	r = dump(root, JSON_INDENT(2) | JSON_SORT_KEYS, 1, out, NULL);
 out:
	json_decref(root);
	return r;
}

/*
 * Canonical form (performance, docs/performance.md).
 *
 * jansson's json_dumpb serialises the whole document once to learn the size
 * and again to write it, and because jansson can drop a member of a dump
 * when memory runs short, message_canonical read the result back and
 * compared it: with a 200 KB attachment that was a fifth of hegnd's CPU.
 * This writes the same bytes as json_dumpb(JSON_COMPACT | JSON_SORT_KEYS)
 * in one pass, with every allocation checked, so nothing can go missing
 * and no read-back is needed.  Strings are copied in runs up to the next
 * character that needs an escape (quote, backslash, control character), as
 * jansson escapes them; jansson's strings are valid UTF-8 already.  Reals
 * (which a message does not carry) are left to jansson: HEGN_ERR_UNSUPPORTED.
 */
struct cbuf {
	uint8_t *data;
	size_t len, cap;
	int failed;             /* 0, or the HEGN_ERR_* that stopped it */
};

/* Make room for n more bytes and a NUL; a moved buffer leaves no copy behind. */
static int
cbuf_room(struct cbuf *b, size_t n)
{
	uint8_t *fresh;
	size_t cap;

	if (b->failed)
		return -1;
	if (b->cap - b->len > n)
		return 0;
	cap = b->cap < 4096 ? 4096 : b->cap;
	while (cap - b->len <= n) {
		if (cap > SIZE_MAX / 2) {
			b->failed = HEGN_ERR_NOMEM;
			return -1;
		}
		cap *= 2;
	}
	if ((fresh = malloc(cap)) == NULL) {
		b->failed = HEGN_ERR_NOMEM;
		return -1;
	}
	if (b->data != NULL) {
		memcpy(fresh, b->data, b->len);
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = fresh;
	b->cap = cap;
	return 0;
}

static void
cbuf_put(struct cbuf *b, const void *p, size_t n)
{
	if (cbuf_room(b, n) != 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
canon_string(struct cbuf *b, const char *str, size_t len)
{
	const unsigned char *u = (const unsigned char *)str;
	size_t i, run = 0;
	char esc[8];

	cbuf_put(b, "\"", 1);
	for (i = 0; i < len; i++) {
		if (u[i] >= 0x20 && u[i] != '"' && u[i] != '\\')
			continue;
		cbuf_put(b, str + run, i - run);
		run = i + 1;
		switch (u[i]) {
		case '"':
			cbuf_put(b, "\\\"", 2);
			break;
		case '\\':
			cbuf_put(b, "\\\\", 2);
			break;
		case '\b':
			cbuf_put(b, "\\b", 2);
			break;
		case '\f':
			cbuf_put(b, "\\f", 2);
			break;
		case '\n':
			cbuf_put(b, "\\n", 2);
			break;
		case '\r':
			cbuf_put(b, "\\r", 2);
			break;
		case '\t':
			cbuf_put(b, "\\t", 2);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)u[i]);
			cbuf_put(b, esc, 6);
			break;
		}
	}
	cbuf_put(b, str + run, len - run);
	cbuf_put(b, "\"", 1);
}

/* jansson's key order: bytewise, a prefix first. */
static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
canon_value(struct cbuf *b, json_t *v)
{
	const char **keys = NULL;
	char num[32];
	void *it;
	size_t i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		n = json_object_size(v);
		if (n > 0 && (keys = calloc(n, sizeof(*keys))) == NULL) {
			b->failed = HEGN_ERR_NOMEM;
			return;
		}
		for (i = 0, it = json_object_iter(v); it != NULL && i < n;
		    it = json_object_iter_next(v, it))
			keys[i++] = json_object_iter_key(it);
		if (i != n || it != NULL) {
			b->failed = HEGN_ERR_INTERNAL;
			break;
		}
		if (n > 1)
			qsort(keys, n, sizeof(*keys), key_cmp);
		cbuf_put(b, "{", 1);
		for (i = 0; i < n && !b->failed; i++) {
			if (i > 0)
				cbuf_put(b, ",", 1);
			canon_string(b, keys[i], strlen(keys[i]));
			cbuf_put(b, ":", 1);
			canon_value(b, json_object_get(v, keys[i]));
		}
		cbuf_put(b, "}", 1);
		break;
	case JSON_ARRAY:
		cbuf_put(b, "[", 1);
		for (i = 0; i < json_array_size(v) && !b->failed; i++) {
			if (i > 0)
				cbuf_put(b, ",", 1);
			canon_value(b, json_array_get(v, i));
		}
		cbuf_put(b, "]", 1);
		break;
	case JSON_STRING:
		canon_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		cbuf_put(b, num, strlen(num));
		break;
	case JSON_TRUE:
		cbuf_put(b, "true", 4);
		break;
	case JSON_FALSE:
		cbuf_put(b, "false", 5);
		break;
	case JSON_NULL:
		cbuf_put(b, "null", 4);
		break;
	default:
		if (!b->failed)
			b->failed = HEGN_ERR_UNSUPPORTED;
		break;
	}
	free(keys);
}

int
message_canonical_json(json_t *j, struct buf *out, struct why *why)
{
	struct cbuf b = { 0 };
	int r;

	out->data = NULL;
	out->len = 0;
	if (j == NULL || (!json_is_object(j) && !json_is_array(j))) {
		r = why_set(why, HEGN_ERR_INVALID, "message: only an object or a list has a "
		    "canonical form");
		goto out;
	}
	canon_value(&b, j);
	if (cbuf_room(&b, 0) == 0)
		b.data[b.len] = '\0';
	if (b.failed == HEGN_ERR_UNSUPPORTED) {
		r = why_set(why, HEGN_ERR_UNSUPPORTED, "message: a number that is not an integer");
		goto out;
	}
	if (b.failed != 0) {
		r = why_set(why, b.failed, b.failed == HEGN_ERR_NOMEM ?
		    "message: could not serialise (out of memory)" : "message: cannot serialise");
		goto out;
	}
	out->data = b.data;
	out->len = b.len;
	b.data = NULL;
	r = 0;
 out:
	if (b.data != NULL) {
		sodium_memzero(b.data, b.cap);
		free(b.data);
	}
	return r;
}
