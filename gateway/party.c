#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "party.h"
#include "xmalloc.h"

struct party_table {
	struct party *parties;
	size_t n;
};

int
party_table_load(const struct conf *c, struct party_table **out, struct why *why)
{
	struct party_table *t;
	struct party *p;
	size_t i, k, j, q;
	int r;

	*out = NULL;
	t = xcalloc(1, sizeof(*t));
	t->parties = xcalloc(c->nparties ? c->nparties : 1, sizeof(*t->parties));
	for (i = 0; i < c->nparties; i++) {
		p = &t->parties[t->n++];
		p->conf = &c->parties[i];
		p->name = c->parties[i].name;
		p->role = c->parties[i].role;
		if ((r = pki_load_certs(p->conf->cert, &p->certs, why)) != 0) {
			why_prefix(why, HEGN_ERR_CONFIG, "party %s", p->name);
			r = HEGN_ERR_CONFIG;
			goto out;
		}
		p->fingerprints = xcalloc((size_t)sk_X509_num(p->certs), sizeof(*p->fingerprints));
		for (k = 0; k < (size_t)sk_X509_num(p->certs); k++)
			pki_fingerprint(sk_X509_value(p->certs, (int)k), p->fingerprints[k]);
	}
	/* One certificate must never stand for two parties. */
	for (i = 0; i < t->n; i++)
		for (j = i + 1; j < t->n; j++)
			for (k = 0; k < (size_t)sk_X509_num(t->parties[i].certs); k++)
				for (q = 0; q < (size_t)sk_X509_num(t->parties[j].certs); q++)
					if (strcmp(t->parties[i].fingerprints[k],
					    t->parties[j].fingerprints[q]) == 0) {
						r = why_set(why, HEGN_ERR_CONFIG,
						    "parties %s and %s register the same certificate",
						    t->parties[i].name, t->parties[j].name);
						goto out;
					}
	*out = t;
	t = NULL;
	r = 0;
out:
	party_table_free(t);
	return r;
}

void
party_table_free(struct party_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		sk_X509_pop_free(t->parties[i].certs, X509_free);
		free(t->parties[i].fingerprints);
	}
	free(t->parties);
	free(t);
}

const struct party *
party_find(const struct party_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->parties[i].name, name) == 0)
			return &t->parties[i];
	return NULL;
}

const struct party *
party_by_cert(const struct party_table *t, X509 *cert)
{
	char fp[65];
	size_t i, k;

	pki_fingerprint(cert, fp);
	for (i = 0; i < t->n; i++)
		for (k = 0; k < (size_t)sk_X509_num(t->parties[i].certs); k++)
			if (strcmp(t->parties[i].fingerprints[k], fp) == 0)
				return &t->parties[i];
	return NULL;
}

size_t
party_count(const struct party_table *t)
{
	return t->n;
}

const struct party *
party_at(const struct party_table *t, size_t i)
{
	return i < t->n ? &t->parties[i] : NULL;
}

int
party_encryption_cert(const struct party *p, const struct pki *pki, X509 **out, struct why *why)
{
	struct why first = { 0 };
	int i;

	*out = NULL;
	for (i = 0; i < sk_X509_num(p->certs); i++) {
		struct why w = { 0 };

		if (pki_verify(pki, sk_X509_value(p->certs, i), NULL, PKI_PURPOSE_ENCRYPT, 0, &w) == 0) {
			*out = sk_X509_value(p->certs, i);
			return 0;
		}
		if (i == 0)
			first = w;
	}
	return why_set(why, HEGN_ERR_CERT, "party %s has no certificate valid for encryption: %s",
	    p->name, first.text);
}
