/*
 * demo: `hegn demo init DIR`: a complete demo world imitating OCES3 (CA,
 * parties, gateway, a revoked and an expired provider, CRLs), a
 * configuration, the database and one example message per kind.
 */
#ifndef HEGN_DEMO_H
#define HEGN_DEMO_H

#include "err.h"

/* Create the demo world in dir (which must not exist or be empty); 0 or an error. */
int demo_init(const char *dir, int port, struct why *why);

#endif
