/*
 * timeusage: time-usage reports from a spreadsheet.  A provider without a
 * system of its own keeps minutes per visit in a spreadsheet and exports it
 * as CSV (docs/agent.md): one row per visit,
 *
 *   cpr;date;service;minutes;visit_id
 *   2509479989;2026-11-25;practical_help;45;v-1030
 *
 * with ';' (Danish spreadsheets) or ',' as the separator, a header row, and
 * visit_id optional.  Each citizen's rows become one time_usage message.
 */
#ifndef HEGN_TIMEUSAGE_H
#define HEGN_TIMEUSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util.h"

/* Largest CSV file taken (bytes). */
#define TIMEUSAGE_MAX (4u * 1024 * 1024)

/*
 * Parse csv into time_usage messages addressed to `to`: *out is a malloc'd
 * array of *n JSON documents (each valid under message_parse), freed with
 * timeusage_free.  Returns 0 or HEGN_ERR_INVALID with why naming the line and
 * the column ("line 4: minutes: not a whole number from 1 to 1440"), never
 * repeating a CPR.
 */
int timeusage_parse(const uint8_t *csv, size_t len, const char *to, struct buf **out,
    size_t *n, struct why *why);

void timeusage_free(struct buf *docs, size_t n);

#endif
