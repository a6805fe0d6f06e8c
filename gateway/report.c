#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery.h"
#include "report.h"
#include "xmalloc.h"

enum outcome { OUT_ACKED = 0, OUT_NO_RECEIPT, OUT_FALLBACK, OUT_FAILED, OUT_REJECTED,
	OUT_PENDING, OUT_COUNT };

static const char *const outcome_names[OUT_COUNT] = {
	"acknowledged", "delivered_without_receipt", "fallback", "failed", "rejected", "pending",
};

/* The channels a report breaks down by; phone only comes from staff. */
static const char *const channel_names[] = {
	"pull", "push", "smime-mail", "folder", "fax", "post", "phone", NULL
};
#define NCHANNELS 7

/* One group: a month, a party or a kind. */
struct group {
	char key[65];
	int64_t outcome[OUT_COUNT];
	int64_t channel[NCHANNELS];
	int64_t matrix[OUT_COUNT][NCHANNELS];
	int64_t electronic, total;
};

struct groups {
	struct group *g;
	size_t n;
};

struct reason {
	char text[257];
	int64_t count;
};

struct report {
	int64_t from_ms, to_ms;
	struct group all;
	struct groups months, by_party, kinds, rows;   /* rows: month|party|kind for eDag2 */
	struct reason *reasons;
	size_t nreasons;
	int64_t *latency;           /* submission to receipt, ms, of acknowledged copies */
	size_t nlatency, caplatency;
	int64_t resends, duplicates;
	const struct party_table *parties;
};

static int
channel_index(const char *c)
{
	int i;

	for (i = 0; channel_names[i] != NULL; i++)
		if (strcmp(c, channel_names[i]) == 0)
			return i;
	return -1;
}

static struct group *
group_of(struct groups *gs, const char *key)
{
	size_t i;

	for (i = 0; i < gs->n; i++)
		if (strcmp(gs->g[i].key, key) == 0)
			return &gs->g[i];
	gs->g = xrealloc(gs->g, (gs->n + 1) * sizeof(*gs->g));
	memset(&gs->g[gs->n], 0, sizeof(gs->g[gs->n]));
	snprintf(gs->g[gs->n].key, sizeof(gs->g[gs->n].key), "%s", key);
	return &gs->g[gs->n++];
}

static void
count(struct group *g, enum outcome o, const char *channel)
{
	int ci = channel_index(channel);

	g->outcome[o]++;
	g->total++;
	if (ci >= 0) {
		g->channel[ci]++;
		g->matrix[o][ci]++;
	}
	/* Electronic and secure: it reached the party through a secure channel. */
	if (o == OUT_ACKED || o == OUT_NO_RECEIPT || o == OUT_REJECTED)
		g->electronic++;
}

static void
month_of(int64_t ms, char out[8])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 8, "%Y-%m", &tm);
}

static void
add_reason(struct report *r, const char *text)
{
	size_t i;

	for (i = 0; i < r->nreasons; i++)
		if (strcmp(r->reasons[i].text, text) == 0) {
			r->reasons[i].count++;
			return;
		}
	r->reasons = xrealloc(r->reasons, (r->nreasons + 1) * sizeof(*r->reasons));
	snprintf(r->reasons[r->nreasons].text, sizeof(r->reasons[r->nreasons].text), "%s", text);
	r->reasons[r->nreasons++].count = 1;
}

/* The party outside the municipality's administration: what "by party" means. */
static const char *
counterpart(const struct report *r, const char *sender, const char *recipient)
{
	const struct party *p = party_find(r->parties, recipient);

	return p != NULL && (p->role == ROLE_VISITATION || p->role == ROLE_AUDITOR) ? sender :
	    recipient;
}

static void
tally(struct report *r, enum outcome o, const char *channel, int64_t at_ms, const char *party,
    const char *kind)
{
	char month[8], row[200];

	month_of(at_ms, month);
	count(&r->all, o, channel);
	count(group_of(&r->months, month), o, channel);
	count(group_of(&r->by_party, party), o, channel);
	count(group_of(&r->kinds, kind), o, channel);
	snprintf(row, sizeof(row), "%s|%s|%s", month, party, kind);
	count(group_of(&r->rows, row), o, channel);
}

/*
 * A copy's outcome in the reports: its state, except that an electronic
 * copy handed over without a receipt yet counts apart from one still waiting.
 */
static enum outcome
outcome_of(const struct store_outcome *o)
{
	if (strcmp(o->state, STORE_STATE_ACKNOWLEDGED) == 0)
		return OUT_ACKED;
	if (strcmp(o->state, STORE_STATE_REJECTED) == 0)
		return OUT_REJECTED;
	if (strcmp(o->state, STORE_STATE_FALLBACK) == 0)
		return OUT_FALLBACK;
	if (strcmp(o->state, STORE_STATE_FAILED) == 0)
		return OUT_FAILED;
	if (o->delivered_ms != 0 && delivery_is_electronic(o->channel))
		return OUT_NO_RECEIPT;
	return OUT_PENDING;
}

static int
on_outcome(const struct store_outcome *o, void *arg)
{
	struct report *r = arg;
	enum outcome out;

	out = outcome_of(o);
	tally(r, out, o->channel, o->created_ms, counterpart(r, o->sender, o->recipient), o->kind);
	if ((out == OUT_FALLBACK || out == OUT_FAILED) && o->fallback_reason[0] != '\0')
		add_reason(r, o->fallback_reason);
	if (o->acked_ms > 0 && out == OUT_ACKED) {
		if (r->nlatency == r->caplatency) {
			r->caplatency = r->caplatency ? r->caplatency * 2 : 256;
			r->latency = xrealloc(r->latency, r->caplatency * sizeof(*r->latency));
		}
		r->latency[r->nlatency++] = o->acked_ms - o->created_ms;
	}
	r->resends += o->resends;
	r->duplicates += o->duplicates;
	return 0;
}

static int
on_external(const struct store_external *e, void *arg)
{
	struct report *r = arg;

	tally(r, OUT_FALLBACK, e->channel, e->at_ms, e->party, e->kind);
	add_reason(r, e->reason);
	return 0;
}

int
report_collect(struct store *s, const struct party_table *parties, int64_t from_ms,
    int64_t to_ms, struct report **out, struct why *why)
{
	struct report *r = xcalloc(1, sizeof(*r));
	struct store_tx *tx = NULL;
	int rc;

	*out = NULL;
	r->from_ms = from_ms;
	r->to_ms = to_ms;
	r->parties = parties;
	snprintf(r->all.key, sizeof(r->all.key), "all");
	if ((rc = store_begin(s, 0, &tx, why)) != 0)
		goto out;
	if ((rc = store_outcomes(tx, from_ms, to_ms, on_outcome, r, why)) != 0 ||
	    (rc = store_external_list(tx, from_ms, to_ms, on_external, r, why)) != 0)
		goto out;
	if ((rc = store_end_read(&tx, 0, why)) != 0)
		goto out;
	*out = r;
	r = NULL;
out:
	store_rollback(tx);
	report_free(r);
	return rc;
}

void
report_free(struct report *r)
{
	if (r == NULL)
		return;
	free(r->months.g);
	free(r->by_party.g);
	free(r->kinds.g);
	free(r->rows.g);
	free(r->reasons);
	free(r->latency);
	free(r);
}

static double
share(int64_t part, int64_t total)
{
	return total > 0 ? (double)part / (double)total : 0.0;
}

static json_t *
group_json(const struct group *g, const char *keyname)
{
	json_t *o = json_object(), *outs = json_object(), *chs = json_object();
	int i;

	for (i = 0; i < OUT_COUNT; i++)
		json_object_set_new(outs, outcome_names[i], json_integer(g->outcome[i]));
	for (i = 0; i < NCHANNELS; i++)
		if (g->channel[i] > 0)
			json_object_set_new(chs, channel_names[i], json_integer(g->channel[i]));
	if (keyname != NULL)
		json_object_set_new(o, keyname, json_string(g->key));
	json_object_set_new(o, "total", json_integer(g->total));
	json_object_set_new(o, "outcomes", outs);
	json_object_set_new(o, "channels", chs);
	json_object_set_new(o, "electronic_share", json_real(share(g->electronic, g->total)));
	return o;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct group *)a)->key, ((const struct group *)b)->key);
}

static json_t *
groups_json(struct groups *gs, const char *keyname)
{
	json_t *a = json_array();
	size_t i;

	/* An empty period has no array at all, and qsort must not see NULL. */
	if (gs->n > 0)
		qsort(gs->g, gs->n, sizeof(*gs->g), cmp_group);
	for (i = 0; i < gs->n; i++)
		json_array_append_new(a, group_json(&gs->g[i], keyname));
	return a;
}

static void
period(const struct report *r, json_t *o)
{
	char when[40];

	if (r->from_ms > 0) {
		util_time_ms_rfc3339(r->from_ms, when);
		json_object_set_new(o, "from", json_string(when));
	}
	if (r->to_ms > 0) {
		util_time_ms_rfc3339(r->to_ms, when);
		json_object_set_new(o, "to", json_string(when));
	}
}

static json_t *
reasons_json(const struct report *r)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < r->nreasons; i++)
		json_array_append_new(a, json_pack("{s:s, s:I}", "reason", r->reasons[i].text,
		    "count", (json_int_t)r->reasons[i].count));
	return a;
}

json_t *
report_delivery_json(const struct report *rc)
{
	struct report *r = (struct report *)rc;
	json_t *o = group_json(&r->all, NULL), *lat = json_object();

	period(r, o);
	json_object_set_new(o, "shares", json_object());
	{
		int i;

		for (i = 0; i < OUT_COUNT; i++)
			json_object_set_new(json_object_get(o, "shares"), outcome_names[i],
			    json_real(share(r->all.outcome[i], r->all.total)));
	}
	if (r->nlatency > 0) {
		qsort(r->latency, r->nlatency, sizeof(*r->latency), cmp_i64);
		json_object_set_new(lat, "median_seconds",
		    json_real((double)r->latency[(r->nlatency - 1) / 2] / 1000.0));
		json_object_set_new(lat, "p95_seconds",
		    json_real((double)r->latency[(r->nlatency * 95 + 99) / 100 - 1] / 1000.0));
	}
	json_object_set_new(lat, "count", json_integer((json_int_t)r->nlatency));
	json_object_set_new(o, "submission_to_receipt", lat);
	json_object_set_new(o, "resends", json_integer(r->resends));
	json_object_set_new(o, "duplicates", json_integer(r->duplicates));
	json_object_set_new(o, "fallback_reasons", reasons_json(r));
	json_object_set_new(o, "by_month", groups_json(&r->months, "period"));
	json_object_set_new(o, "by_party", groups_json(&r->by_party, "party"));
	json_object_set_new(o, "by_kind", groups_json(&r->kinds, "kind"));
	return o;
}

/* One eDag2 row: electronic and secure against fax, post and phone. */
static json_t *
edag2_row(const struct group *g)
{
	char month[8] = "", party[65] = "", kind[33] = "";

	sscanf(g->key, "%7[^|]|%64[^|]|%32s", month, party, kind);
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
	    "month", month, "party", party, "kind", kind,
	    "electronic", (json_int_t)g->electronic,
	    "fax", (json_int_t)g->channel[channel_index("fax")],
	    "post", (json_int_t)g->channel[channel_index("post")],
	    "phone", (json_int_t)g->channel[channel_index("phone")],
	    "failed", (json_int_t)g->outcome[OUT_FAILED],
	    "pending", (json_int_t)g->outcome[OUT_PENDING],
	    "total", (json_int_t)g->total,
	    "electronic_share", share(g->electronic, g->total));
}

json_t *
report_edag2_json(const struct report *rc)
{
	struct report *r = (struct report *)rc;
	json_t *o = json_object(), *rows = json_array(), *tot;
	size_t i;

	period(r, o);
	if (r->rows.n > 0)
		qsort(r->rows.g, r->rows.n, sizeof(*r->rows.g), cmp_group);
	for (i = 0; i < r->rows.n; i++)
		json_array_append_new(rows, edag2_row(&r->rows.g[i]));
	tot = edag2_row(&r->all);
	json_object_del(tot, "month");
	json_object_del(tot, "party");
	json_object_del(tot, "kind");
	json_object_set_new(o, "total", tot);
	json_object_set_new(o, "rows", rows);
	json_object_set_new(o, "fallback_reasons", reasons_json(r));
	return o;
}

int
report_edag2_text(const struct report *rc, FILE *f)
{
	json_t *j = report_edag2_json(rc), *row, *tot = json_object_get(j, "total");
	size_t i;

	fprintf(f, "eDag2: electronic and secure communication against fax, post and phone\n\n");
	fprintf(f, "%-7s  %-22s  %-17s  %6s  %4s  %4s  %5s  %6s  %5s  %6s\n", "month", "party", "kind",
	    "electr", "fax", "post", "phone", "failed", "total", "share");
	json_array_foreach(json_object_get(j, "rows"), i, row)
		fprintf(f, "%-7s  %-22s  %-17s  %6lld  %4lld  %4lld  %5lld  %6lld  %5lld  %5.1f%%\n",
		    json_string_value(json_object_get(row, "month")),
		    json_string_value(json_object_get(row, "party")),
		    json_string_value(json_object_get(row, "kind")),
		    json_integer_value(json_object_get(row, "electronic")),
		    json_integer_value(json_object_get(row, "fax")),
		    json_integer_value(json_object_get(row, "post")),
		    json_integer_value(json_object_get(row, "phone")),
		    json_integer_value(json_object_get(row, "failed")),
		    json_integer_value(json_object_get(row, "total")),
		    100.0 * json_real_value(json_object_get(row, "electronic_share")));
	fprintf(f, "\ntotal: %lld of %lld electronic and secure (%.1f%%); fax %lld, post %lld, "
	    "phone %lld, failed %lld\n", json_integer_value(json_object_get(tot, "electronic")),
	    json_integer_value(json_object_get(tot, "total")),
	    100.0 * json_real_value(json_object_get(tot, "electronic_share")),
	    json_integer_value(json_object_get(tot, "fax")),
	    json_integer_value(json_object_get(tot, "post")),
	    json_integer_value(json_object_get(tot, "phone")),
	    json_integer_value(json_object_get(tot, "failed")));
	if (json_array_size(json_object_get(j, "fallback_reasons")) > 0) {
		fprintf(f, "\nreasons for falling back:\n");
		json_array_foreach(json_object_get(j, "fallback_reasons"), i, row)
			fprintf(f, "  %4lld  %s\n", json_integer_value(json_object_get(row, "count")),
			    json_string_value(json_object_get(row, "reason")));
	}
	json_decref(j);
	return ferror(f) ? HEGN_ERR_IO : 0;
}

/* A CSV field, quoted when it must be (RFC 4180). */
static void
csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\n\r") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

int
report_edag2_csv(const struct report *rc, FILE *f)
{
	json_t *j = report_edag2_json(rc), *row;
	size_t i;

	fprintf(f, "month,party,kind,electronic,fax,post,phone,failed,pending,total,electronic_share\r\n");
	json_array_foreach(json_object_get(j, "rows"), i, row) {
		csv_field(f, json_string_value(json_object_get(row, "month")));
		fputc(',', f);
		csv_field(f, json_string_value(json_object_get(row, "party")));
		fputc(',', f);
		csv_field(f, json_string_value(json_object_get(row, "kind")));
		fprintf(f, ",%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.4f\r\n",
		    json_integer_value(json_object_get(row, "electronic")),
		    json_integer_value(json_object_get(row, "fax")),
		    json_integer_value(json_object_get(row, "post")),
		    json_integer_value(json_object_get(row, "phone")),
		    json_integer_value(json_object_get(row, "failed")),
		    json_integer_value(json_object_get(row, "pending")),
		    json_integer_value(json_object_get(row, "total")),
		    json_real_value(json_object_get(row, "electronic_share")));
	}
	json_decref(j);
	return ferror(f) ? HEGN_ERR_IO : 0;
}

/* Append printf output to b. */
static void
bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	b->data = xrealloc(b->data, b->len + (size_t)n + 1);
	memcpy(b->data + b->len, s, (size_t)n + 1);
	b->len += (size_t)n;
	free(s);
}

int
report_metrics(struct store *s, const struct party_table *parties, struct buf *out,
    struct why *why)
{
	static const double buckets[] = { 1, 10, 60, 300, 1800, 3600, 14400, 86400 };
	struct report *r = NULL;
	struct store_tx *tx = NULL;
	int64_t depth = 0, oldest = 0, now = util_now_ms();
	size_t i, k, n;
	int o, c, rc;

	out->data = NULL;
	out->len = 0;
	if ((rc = report_collect(s, parties, 0, 0, &r, why)) != 0)
		return rc;
	if ((rc = store_begin(s, 0, &tx, why)) != 0)
		goto out;
	rc = store_queue_stats(tx, &depth, &oldest, why);
	if ((rc = store_end_read(&tx, rc, why)) != 0)
		goto out;
	bprintf(out, "# HELP hegn_deliveries Copies of messages (and communication "
	    "registered as outside hegn) by their current outcome and channel.\n"
	    "# TYPE hegn_deliveries gauge\n");
	for (o = 0; o < OUT_COUNT; o++)
		for (c = 0; c < NCHANNELS; c++)
			if (r->all.matrix[o][c] > 0)
				bprintf(out, "hegn_deliveries{outcome=\"%s\",channel=\"%s\"} %lld\n",
				    outcome_names[o], channel_names[c], (long long)r->all.matrix[o][c]);
	bprintf(out, "# HELP hegn_channel_copies Copies by the channel they ended on (fallbacks "
	    "included).\n# TYPE hegn_channel_copies gauge\n");
	for (c = 0; c < NCHANNELS; c++)
		bprintf(out, "hegn_channel_copies{channel=\"%s\"} %lld\n", channel_names[c],
		    (long long)r->all.channel[c]);
	bprintf(out, "# HELP hegn_delivery_latency_seconds Submission to signed receipt.\n"
	    "# TYPE hegn_delivery_latency_seconds histogram\n");
	{
		double sum = 0;

		for (i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
			for (n = 0, k = 0; k < r->nlatency; k++)
				if ((double)r->latency[k] / 1000.0 <= buckets[i])
					n++;
			bprintf(out, "hegn_delivery_latency_seconds_bucket{le=\"%g\"} %zu\n", buckets[i],
			    n);
		}
		for (k = 0; k < r->nlatency; k++)
			sum += (double)r->latency[k] / 1000.0;
		bprintf(out, "hegn_delivery_latency_seconds_bucket{le=\"+Inf\"} %zu\n"
		    "hegn_delivery_latency_seconds_sum %.3f\n"
		    "hegn_delivery_latency_seconds_count %zu\n", r->nlatency, sum, r->nlatency);
	}
	bprintf(out, "# HELP hegn_resends_total MedCom resends.\n# TYPE hegn_resends_total counter\n"
	    "hegn_resends_total %lld\n", (long long)r->resends);
	bprintf(out, "# HELP hegn_duplicates_total Copies fetched or acknowledged again.\n"
	    "# TYPE hegn_duplicates_total counter\nhegn_duplicates_total %lld\n",
	    (long long)r->duplicates);
	bprintf(out, "# HELP hegn_queue_depth Copies not yet acknowledged.\n"
	    "# TYPE hegn_queue_depth gauge\nhegn_queue_depth %lld\n", (long long)depth);
	bprintf(out, "# HELP hegn_oldest_unacknowledged_seconds Age of the oldest copy without "
	    "a receipt.\n# TYPE hegn_oldest_unacknowledged_seconds gauge\n"
	    "hegn_oldest_unacknowledged_seconds %.3f\n",
	    oldest > 0 ? (double)(now - oldest) / 1000.0 : 0.0);
	rc = 0;
out:
	report_free(r);
	if (rc != 0)
		buf_free(out, 0);
	return rc;
}

/*
 * Web page support: the electronic share against fallback by ISO week, for
 * the dashboard's chart.  The copies are classified as the reports do.
 */
struct weeks {
	struct groups g;
	const struct party_table *parties;
};

static void
week_of(int64_t ms, char out[9])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 9, "%G-W%V", &tm);
}

static int
on_week_outcome(const struct store_outcome *o, void *arg)
{
	struct weeks *w = arg;
	enum outcome out;
	char wk[9];

	out = outcome_of(o);
	week_of(o->created_ms, wk);
	count(group_of(&w->g, wk), out, o->channel);
	return 0;
}

static int
on_week_external(const struct store_external *e, void *arg)
{
	struct weeks *w = arg;
	char wk[9];

	week_of(e->at_ms, wk);
	count(group_of(&w->g, wk), OUT_FALLBACK, e->channel);
	return 0;
}

int
report_weeks(struct store *s, const struct party_table *parties, int64_t from_ms, int64_t to_ms,
    json_t **out, struct why *why)
{
	struct weeks w;
	struct store_tx *tx = NULL;
	json_t *a;
	size_t i;
	int rc;

	*out = NULL;
	memset(&w, 0, sizeof(w));
	w.parties = parties;
	if ((rc = store_begin(s, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_outcomes(tx, from_ms, to_ms, on_week_outcome, &w, why)) != 0 ||
	    (rc = store_external_list(tx, from_ms, to_ms, on_week_external, &w, why)) != 0)
		goto out;
	if ((rc = store_end_read(&tx, 0, why)) != 0)
		goto out;
	qsort(w.g.g, w.g.n, sizeof(*w.g.g), cmp_group);
	a = json_array();
	for (i = 0; i < w.g.n; i++)
		json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "week",
		    w.g.g[i].key, "electronic", (json_int_t)w.g.g[i].electronic, "fallback",
		    (json_int_t)w.g.g[i].outcome[OUT_FALLBACK], "failed",
		    (json_int_t)w.g.g[i].outcome[OUT_FAILED], "pending",
		    (json_int_t)w.g.g[i].outcome[OUT_PENDING], "total",
		    (json_int_t)w.g.g[i].total));
	*out = json_pack("{s:o}", "weeks", a);
	rc = 0;
out:
	free(w.g.g);
	store_rollback(tx);
	return rc;
}
