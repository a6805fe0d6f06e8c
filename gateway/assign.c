#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assign.h"
#include "util.h"
#include "xmalloc.h"

const char *
assign_state_name(enum assign_state s)
{
	switch (s) {
	case ASSIGN_ACTIVE:
		return "active";
	case ASSIGN_ENDED:
		return "ended";
	default:
		return "none";
	}
}

void
assign_today(char out[11])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* ISO dates compare as strings; "" (open end) is after every date. */
static int
date_cmp_end(const char *a, const char *b)
{
	if (*a == '\0' && *b == '\0')
		return 0;
	if (*a == '\0')
		return 1;
	if (*b == '\0')
		return -1;
	return strcmp(a, b);
}

static int
covers(const struct store_assignment *a, const char *date)
{
	return strcmp(a->from_date, date) <= 0 && date_cmp_end(a->to_date, date) >= 0;
}

/* Does the comma list contain item? */
static int
list_has(const char *list, const char *item, size_t itemlen)
{
	const char *p = list;
	size_t n;

	while (*p != '\0') {
		n = strcspn(p, ",");
		if (n == itemlen && strncmp(p, item, n) == 0)
			return 1;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int
assign_services_cover(const char *have, const char *need)
{
	const char *p = need;
	size_t n;

	while (*p != '\0') {
		n = strcspn(p, ",");
		if (n > 0 && !list_has(have, p, n))
			return 0;
		p += n;
		if (*p == ',')
			p++;
	}
	return 1;
}

/* out = a united with b (comma lists, no duplicates, a's order first). */
static int
services_union(const char *a, const char *b, char out[257], struct why *why)
{
	const char *p = b;
	size_t n, len;

	snprintf(out, 257, "%s", a);
	len = strlen(out);
	while (*p != '\0') {
		n = strcspn(p, ",");
		if (n > 0 && !list_has(out, p, n)) {
			if (len + n + 2 > 257)
				return why_set(why, HEGN_ERR_INVALID, "services: too many categories");
			if (len > 0)
				out[len++] = ',';
			memcpy(out + len, p, n);
			len += n;
			out[len] = '\0';
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* out = a without the items in b. */
static void
services_minus(const char *a, const char *b, char out[257])
{
	const char *p = a;
	size_t n, len = 0;

	out[0] = '\0';
	while (*p != '\0') {
		n = strcspn(p, ",");
		if (n > 0 && !list_has(b, p, n) && len + n + 2 <= 257) {
			if (len > 0)
				out[len++] = ',';
			memcpy(out + len, p, n);
			len += n;
			out[len] = '\0';
		}
		p += n;
		if (*p == ',')
			p++;
	}
}

int
assign_state_of(struct store_tx *tx, const char *citizen_ref, const char *provider,
    const char *date, enum assign_state *out, char services[257], struct why *why)
{
	struct store_assignment *a = NULL;
	char today[11];
	size_t n = 0, i;
	int r;

	*out = ASSIGN_NONE;
	if (services != NULL)
		services[0] = '\0';
	if (date == NULL) {
		assign_today(today);
		date = today;
	}
	if ((r = store_assignment_list(tx, citizen_ref, provider, &a, &n, why)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (covers(&a[i], date)) {
			*out = ASSIGN_ACTIVE;
			if (services != NULL) {
				char have[257];

				memcpy(have, services, sizeof(have));
				if (services_union(have, a[i].services, services, NULL) != 0)
					break;
			}
		} else if (*out == ASSIGN_NONE && strcmp(a[i].from_date, date) <= 0) {
			*out = ASSIGN_ENDED;
		}
	}
	free(a);
	return 0;
}

int
assign_providers(struct store_tx *tx, const char *citizen_ref, const char *date,
    char (**out)[65], size_t *n, struct why *why)
{
	struct store_assignment *a = NULL;
	char today[11];
	size_t na = 0, i, k;
	int r;

	*out = NULL;
	*n = 0;
	if (date == NULL) {
		assign_today(today);
		date = today;
	}
	if ((r = store_assignment_list(tx, citizen_ref, NULL, &a, &na, why)) != 0)
		return r;
	*out = xcalloc(na ? na : 1, sizeof(**out));
	for (i = 0; i < na; i++) {
		if (!covers(&a[i], date))
			continue;
		for (k = 0; k < *n; k++)
			if (strcmp((*out)[k], a[i].provider) == 0)
				break;
		if (k == *n)
			memcpy((*out)[(*n)++], a[i].provider, 65);
	}
	free(a);
	return 0;
}

static int
valid_date(const char *s)
{
	int y, m, d;

	return s != NULL && util_parse_date(s, &y, &m, &d) == 0;
}

int
assign_refer(struct store_tx *tx, const char *citizen_ref, const char *provider,
    const char *services, const char *from, const char *to, const char *source, int64_t now_ms,
    struct why *why)
{
	struct store_assignment *a = NULL, row;
	size_t n = 0, i;
	int r;

	if (to == NULL)
		to = "";
	/* A bad date would make the period comparisons below meaningless. */
	if (!valid_date(from))
		return why_set(why, HEGN_ERR_INVALID, "from: not a date YYYY-MM-DD");
	if (*to != '\0' && (!valid_date(to) || strcmp(to, from) < 0))
		return why_set(why, HEGN_ERR_INVALID, "to: not a date YYYY-MM-DD on or after from");
	if (services == NULL || *services == '\0')
		return why_set(why, HEGN_ERR_INVALID, "services: none named");
	if ((r = store_assignment_list(tx, citizen_ref, provider, &a, &n, why)) != 0)
		return r;
	/* Extend the assignment that is current or still to come, if any. */
	for (i = 0; i < n; i++) {
		if (date_cmp_end(a[i].to_date, from) < 0 || a[i].end_reason[0] != '\0')
			continue;
		row = a[i];
		if ((r = services_union(a[i].services, services, row.services, why)) != 0)
			goto out;
		if (strcmp(from, row.from_date) < 0)
			snprintf(row.from_date, sizeof(row.from_date), "%s", from);
		if (date_cmp_end(to, row.to_date) > 0)
			snprintf(row.to_date, sizeof(row.to_date), "%s", to);
		snprintf(row.source, sizeof(row.source), "%s", source);
		row.updated_ms = now_ms;
		r = store_assignment_update(tx, &row, why);
		goto out;
	}
	memset(&row, 0, sizeof(row));
	snprintf(row.citizen_ref, sizeof(row.citizen_ref), "%s", citizen_ref);
	snprintf(row.provider, sizeof(row.provider), "%s", provider);
	snprintf(row.services, sizeof(row.services), "%s", services);
	snprintf(row.from_date, sizeof(row.from_date), "%s", from);
	snprintf(row.to_date, sizeof(row.to_date), "%s", to);
	snprintf(row.source, sizeof(row.source), "%s", source);
	row.created_ms = row.updated_ms = now_ms;
	r = store_assignment_insert(tx, &row, why);
out:
	free(a);
	return r;
}

/* The day after date (YYYY-MM-DD) into out. */
static void
next_day(const char *date, char out[11])
{
	int y, m, d;

	if (util_parse_date(date, &y, &m, &d) != 0) {
		snprintf(out, 11, "%s", date);
		return;
	}
	if (++d > util_days_in_month(y, m)) {
		d = 1;
		if (++m > 12) {
			m = 1;
			y++;
		}
	}
	snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
}

int
assign_end(struct store_tx *tx, const char *citizen_ref, const char *provider,
    const char *services, const char *end_date, const char *reason, const char *source,
    int64_t now_ms, struct why *why)
{
	struct store_assignment *a = NULL, row, rest;
	size_t n = 0, i;
	int r, ended = 0;

	if (!valid_date(end_date))
		return why_set(why, HEGN_ERR_INVALID, "end date: not a date YYYY-MM-DD");
	if ((r = store_assignment_list(tx, citizen_ref, provider, &a, &n, why)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		/* Only what still runs on the end date can end then. */
		if (a[i].end_reason[0] != '\0' || date_cmp_end(a[i].to_date, end_date) < 0)
			continue;
		memset(&rest, 0, sizeof(rest));
		if (services != NULL && *services != '\0') {
			services_minus(a[i].services, services, rest.services);
			/* None of the services to end is in this row: it goes on as it is. */
			if (strcmp(rest.services, a[i].services) == 0)
				continue;
		}
		row = a[i];
		/*
		 * A row that had not started by the end date ends before its
		 * start (to < from) and so is never active; ending it on its
		 * first day would grant a day that was cancelled.
		 */
		snprintf(row.to_date, sizeof(row.to_date), "%s", end_date);
		snprintf(row.end_reason, sizeof(row.end_reason), "%s", reason);
		snprintf(row.source, sizeof(row.source), "%s", source);
		row.updated_ms = now_ms;
		if ((r = store_assignment_update(tx, &row, why)) != 0)
			goto out;
		ended++;
		/* Ending some services: the others go on in a row of their own. */
		if (rest.services[0] == '\0')
			continue;
		memcpy(rest.citizen_ref, a[i].citizen_ref, sizeof(rest.citizen_ref));
		memcpy(rest.provider, a[i].provider, sizeof(rest.provider));
		next_day(end_date, rest.from_date);
		if (strcmp(rest.from_date, a[i].from_date) < 0)
			memcpy(rest.from_date, a[i].from_date, sizeof(rest.from_date));
		memcpy(rest.to_date, a[i].to_date, sizeof(rest.to_date));
		/* Ended on its last day: nothing is left to go on. */
		if (date_cmp_end(rest.to_date, rest.from_date) < 0)
			continue;
		snprintf(rest.source, sizeof(rest.source), "%s", source);
		rest.created_ms = rest.updated_ms = now_ms;
		if ((r = store_assignment_insert(tx, &rest, why)) != 0)
			goto out;
	}
	r = ended ? 0 : why_set(why, HEGN_ERR_NOT_FOUND, "no active assignment to end");
out:
	free(a);
	return r;
}
