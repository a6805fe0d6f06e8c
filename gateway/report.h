/*
 * report: the delivery report, the eDag2 figures and the Prometheus
 * metrics, computed from the copies' outcomes and the communication staff
 * registered as having gone outside hegn.
 *
 * Every copy ends in one outcome: acknowledged (electronically, with a
 * signed receipt), delivered without receipt, fallback (fax, post or phone,
 * with the reason), failed, rejected (by the recipient), or still pending.
 */
#ifndef HEGN_REPORT_H
#define HEGN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "err.h"
#include "party.h"
#include "store.h"
#include "util.h"

struct report;

/* Gather every copy submitted in [from_ms, to_ms) (0: open) and every registered outside communication. */
int report_collect(struct store *s, const struct party_table *parties, int64_t from_ms,
    int64_t to_ms, struct report **out, struct why *why);
void report_free(struct report *r);

/* GET /v1/reports/delivery: counts and shares by outcome and channel, latency, reasons, by month, party and kind. */
json_t *report_delivery_json(const struct report *r);

/* The eDag2 figures: electronic and secure against fax, post and phone, by month, party and kind. */
json_t *report_edag2_json(const struct report *r);
int report_edag2_text(const struct report *r, FILE *f);
int report_edag2_csv(const struct report *r, FILE *f);

/* The Prometheus text exposition of the metrics (docs/operations.md). */
int report_metrics(struct store *s, const struct party_table *parties, struct buf *out,
    struct why *why);

/*
 * Web page support: copies submitted (and outside communication registered)
 * in [from_ms, to_ms) by ISO week: {"weeks": [{"week": "2026-W48",
 * "electronic", "fallback", "failed", "pending", "total"}]}, oldest first.
 */
int report_weeks(struct store *s, const struct party_table *parties, int64_t from_ms,
    int64_t to_ms, json_t **out, struct why *why);

#endif
