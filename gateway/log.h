/*
 * log: the one place that formats log lines.
 *
 * Lines read "component: what failed (why)".  Callers must never pass a CPR
 * number, a name or message content: log identifiers (message ids, party
 * names, certificate fingerprints) only.
 */
#ifndef HEGN_LOG_H
#define HEGN_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Start logging as ident; to syslog when use_syslog, else to stderr. */
void log_init(const char *ident, enum log_level level, int use_syslog);

/* Change the threshold below which lines are dropped. */
void log_set_level(enum log_level level);

/* Parse "error", "warn", "info" or "debug"; returns -1 when unknown. */
int log_level_from_name(const char *name);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
