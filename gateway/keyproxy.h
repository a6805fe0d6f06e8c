/*
 * keyproxy: open a CMS (Auth)EnvelopedData in the network process with a
 * private key that stays in the key process (docs/PRIVSEP.md).
 */
#ifndef HEGN_KEYPROXY_H
#define HEGN_KEYPROXY_H
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "err.h"
#include "util.h"

struct keyd_client;

/*
 * envelope_open for party, whose certificate is cert and whose key the key
 * process behind c holds: the CMS is parsed and the content decrypted here,
 * and only the private-key operation of the RecipientInfo (RSA, or ECDH) is
 * asked of c.  Errors as envelope_open's; a key process that cannot be
 * reached is HEGN_ERR_INTERNAL, not a message that cannot be opened.
 */
int keyproxy_open(struct keyd_client *c, const char *party, X509 *cert, const uint8_t *der,
    size_t len, struct buf *out, struct why *why);

#endif
