#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <csv.h>
#include <jansson.h>

#include "cpr.h"
#include "message.h"
#include "timeusage.h"
#include "xmalloc.h"

enum col { COL_CPR = 0, COL_DATE, COL_SERVICE, COL_MINUTES, COL_VISIT, NCOLS };

static const char *const col_names[NCOLS] = { "cpr", "date", "service", "minutes", "visit_id" };

struct citizen {
	char cpr[11];
	json_t *visits;
};

struct parse {
	int line;                 /* 1-based, counting the header */
	int field;                /* column within the current row */
	int map[16];              /* file column -> enum col, -1 for ignored */
	int nmap;
	char *row[NCOLS];
	struct citizen *cits;
	size_t ncits;
	int failed;
	struct why *why;
};

static void
clear_row(struct parse *p)
{
	int i;

	for (i = 0; i < NCOLS; i++) {
		free(p->row[i]);
		p->row[i] = NULL;
	}
	p->field = 0;
}

static void
on_field(void *data, size_t len, void *arg)
{
	struct parse *p = arg;
	char *s;
	int i;

	if (p->failed)
		return;
	s = xmalloc(len + 1);
	memcpy(s, data, len);
	s[len] = '\0';
	if (p->line == 1) {
		/* The header names the columns; their order is free. */
		if (p->field >= 16) {
			why_set(p->why, HEGN_ERR_INVALID, "line 1: more than 16 columns");
			p->failed = 1;
		} else {
			p->map[p->field] = -1;
			for (i = 0; i < NCOLS; i++)
				if (strcasecmp(s, col_names[i]) == 0)
					p->map[p->field] = i;
			p->nmap = p->field + 1;
		}
		free(s);
	} else if (p->field < p->nmap && p->map[p->field] >= 0) {
		free(p->row[p->map[p->field]]);
		p->row[p->map[p->field]] = s;
	} else {
		free(s);
	}
	p->field++;
}

static struct citizen *
citizen_of(struct parse *p, const char *cpr)
{
	size_t i;

	for (i = 0; i < p->ncits; i++)
		if (strcmp(p->cits[i].cpr, cpr) == 0)
			return &p->cits[i];
	p->cits = xrealloc(p->cits, (p->ncits + 1) * sizeof(*p->cits));
	memset(&p->cits[p->ncits], 0, sizeof(p->cits[p->ncits]));
	memcpy(p->cits[p->ncits].cpr, cpr, 11);
	p->cits[p->ncits].visits = json_array();
	return &p->cits[p->ncits++];
}

static int
row_fail(struct parse *p, const char *col, const char *what)
{
	why_set(p->why, HEGN_ERR_INVALID, "line %d: %s: %s", p->line, col, what);
	p->failed = 1;
	return -1;
}

static void
on_row(int c, void *arg)
{
	struct parse *p = arg;
	struct why w = { 0 };
	char cpr[11], *end;
	const char *const *cat;
	long minutes;
	int y, m, d, i;
	json_t *visit;

	(void)c;
	if (p->failed)
		goto out;
	if (p->line == 1) {
		for (i = 0; i < NCOLS - 1; i++) {
			int k, found = 0;

			for (k = 0; k < p->nmap; k++)
				found |= p->map[k] == i;
			if (!found) {
				row_fail(p, col_names[i], "missing from the header row");
				goto out;
			}
		}
		goto out;
	}
	/* A row of empty cells is a spreadsheet's trailing blank line. */
	for (i = 0; i < NCOLS; i++)
		if (p->row[i] != NULL && p->row[i][0] != '\0')
			break;
	if (i == NCOLS)
		goto out;
	if (p->row[COL_CPR] == NULL || cpr_check(p->row[COL_CPR], NULL, NULL, NULL, &w) != 0 ||
	    cpr_normalize(p->row[COL_CPR], cpr) != 0) {
		row_fail(p, "cpr", w.text[0] ? w.text : "missing");
		goto out;
	}
	if (p->row[COL_DATE] == NULL || util_parse_date(p->row[COL_DATE], &y, &m, &d) != 0) {
		row_fail(p, "date", "not a date YYYY-MM-DD");
		goto out;
	}
	for (cat = message_service_categories; *cat != NULL; cat++)
		if (p->row[COL_SERVICE] != NULL && strcmp(*cat, p->row[COL_SERVICE]) == 0)
			break;
	if (*cat == NULL) {
		row_fail(p, "service", "not a service category (practical_help, personal_care, ...)");
		goto out;
	}
	errno = 0;
	minutes = p->row[COL_MINUTES] ? strtol(p->row[COL_MINUTES], &end, 10) : 0;
	if (p->row[COL_MINUTES] == NULL || errno != 0 || *end != '\0' || minutes < 1 ||
	    minutes > 1440) {
		row_fail(p, "minutes", "not a whole number from 1 to 1440");
		goto out;
	}
	visit = json_pack("{s:s, s:s, s:i}", "date", p->row[COL_DATE], "service", *cat,
	    "minutes", (int)minutes);
	if (p->row[COL_VISIT] != NULL && p->row[COL_VISIT][0] != '\0')
		json_object_set_new(visit, "visit_id", json_string(p->row[COL_VISIT]));
	json_array_append_new(citizen_of(p, cpr)->visits, visit);
out:
	clear_row(p);
	p->line++;
}

void
timeusage_free(struct buf *docs, size_t n)
{
	size_t i;

	for (i = 0; docs != NULL && i < n; i++)
		buf_free(&docs[i], 1);
	free(docs);
}

int
timeusage_parse(const uint8_t *csv, size_t len, const char *to, struct buf **out, size_t *n,
    struct why *why)
{
	struct csv_parser cp;
	struct parse p;
	struct message *m = NULL;
	struct buf *docs = NULL;
	size_t i, nl;
	json_t *doc;
	char *text;
	int r;

	*out = NULL;
	*n = 0;
	if (len > TIMEUSAGE_MAX)
		return why_set(why, HEGN_ERR_TOO_LARGE, "the CSV file is larger than %u bytes",
		    TIMEUSAGE_MAX);
	memset(&p, 0, sizeof(p));
	p.line = 1;
	p.why = why;
	if (csv_init(&cp, CSV_STRICT | CSV_APPEND_NULL) != 0)
		return why_set(why, HEGN_ERR_NOMEM, "cannot start the CSV parser");
	/* Danish spreadsheets export with ';'; the header line tells which it is. */
	/* The input need not end in NUL: measure the header line within len. */
	nl = memchr(csv, '\n', len) != NULL ? (size_t)((const uint8_t *)memchr(csv, '\n', len) -
	    csv) : len;
	if (memchr(csv, ';', nl) != NULL)
		csv_set_delim(&cp, ';');
	if (csv_parse(&cp, csv, len, on_field, on_row, &p) != len && !p.failed) {
		why_set(why, HEGN_ERR_INVALID, "line %d: %s", p.line, csv_strerror(csv_error(&cp)));
		p.failed = 1;
	}
	if (!p.failed && csv_fini(&cp, on_field, on_row, &p) != 0 && !p.failed) {
		why_set(why, HEGN_ERR_INVALID, "line %d: %s", p.line, csv_strerror(csv_error(&cp)));
		p.failed = 1;
	}
	csv_free(&cp);
	if (p.failed) {
		r = HEGN_ERR_INVALID;
		goto out;
	}
	if (p.ncits == 0) {
		r = why_set(why, HEGN_ERR_INVALID, "no visits in the file");
		goto out;
	}
	docs = xcalloc(p.ncits, sizeof(*docs));
	for (i = 0; i < p.ncits; i++) {
		doc = json_pack("{s:s, s:s, s:{s:s}, s:{s:O}}", "kind", "time_usage", "to", to,
		    "citizen", "cpr", p.cits[i].cpr, "basic", "visits", p.cits[i].visits);
		text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(doc);
		docs[i].data = (uint8_t *)text;
		docs[i].len = strlen(text);
		/* What we make must pass the gateway's own validation. */
		if ((r = message_parse(docs[i].data, docs[i].len, NULL, &m, why)) != 0) {
			why_prefix(why, r, "the report for citizen %zu of the file", i + 1);
			goto out;
		}
		message_free(m);
		m = NULL;
	}
	*out = docs;
	*n = p.ncits;
	docs = NULL;
	r = 0;
out:
	timeusage_free(docs, p.ncits);
	for (i = 0; i < p.ncits; i++)
		json_decref(p.cits[i].visits);
	free(p.cits);
	clear_row(&p);
	return r;
}
