/*
 * xmalloc: allocation for daemon-internal bookkeeping, where running out of
 * memory is fatal.  Code that parses untrusted input must not use these for
 * sizes the input controls; it returns HEGN_ERR_NOMEM or HEGN_ERR_TOO_LARGE.
 */
#ifndef HEGN_XMALLOC_H
#define HEGN_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipe len bytes of ptr, then free it; accepts NULL. */
void freezero(void *ptr, size_t len);

#endif
