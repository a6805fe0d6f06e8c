/*
 * party: the registered parties, built from the [party NAME] sections, with
 * their certificates loaded once and indexed by fingerprint so a TLS client
 * or a CMS signer maps to a party without touching the file system.
 */
#ifndef HEGN_PARTY_H
#define HEGN_PARTY_H

#include <openssl/x509.h>

#include "conf.h"
#include "err.h"
#include "pki.h"

struct party {
	const struct conf_party *conf;   /* borrowed from the configuration */
	const char *name;
	enum party_role role;
	STACK_OF(X509) *certs;           /* registered certificates, file order */
	char (*fingerprints)[65];        /* SHA-256 hex of each */
};

struct party_table;

/* Load every party's certificates; HEGN_ERR_CONFIG naming the party and file. */
int party_table_load(const struct conf *c, struct party_table **out, struct why *why);
void party_table_free(struct party_table *t);

/* The party called name, or NULL. */
const struct party *party_find(const struct party_table *t, const char *name);
/* The party that registered the certificate with this fingerprint, or NULL. */
const struct party *party_by_cert(const struct party_table *t, X509 *cert);
/* Number of parties and the i-th, for listings. */
size_t party_count(const struct party_table *t);
const struct party *party_at(const struct party_table *t, size_t i);

/*
 * The certificate to encrypt to: the first registered one valid for
 * encryption now.  Returns 0 and a borrowed *out, or HEGN_ERR_CERT.
 */
int party_encryption_cert(const struct party *p, const struct pki *pki, X509 **out,
    struct why *why);

#endif
