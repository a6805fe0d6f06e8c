/*
 * demo: `hegn demo init DIR`: a complete demo world imitating OCES3 (CA,
 * parties, gateway, a revoked and an expired provider, CRLs), a
 * configuration, the database and one example message per kind.
 */
#ifndef HEGN_DEMO_H
#define HEGN_DEMO_H

#include "certgen.h"
#include "err.h"

/* Create the demo world in dir (which must not exist or be empty); 0 or an error. */
int demo_init(const char *dir, int port, struct why *why);

/*
 * The same with nproviders extra providers (provider-01 ... approved for
 * practical help, for the benchmark) and every key of keytype (RSA 3072 or
 * P-256); 0 or an error.
 */
int demo_init_opts(const char *dir, int port, int nproviders, enum certgen_keytype keytype,
    struct why *why);

#endif
