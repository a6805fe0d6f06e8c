/*
 * signer: the table of private keys by party name.
 *
 * Entries are immutable once added and live until signer_free(), so a
 * lookup holds the lock only to find the entry; signing and decryption then
 * run concurrently on read-only keys.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "envelope.h"
#include "err.h"
#include "keyd.h"
#include "keyproxy.h"
#include "signer.h"
#include "util.h"
#include "xmalloc.h"

struct signer_key {
	char *name;
	EVP_PKEY *key;          /* NULL: the key is in the key process */
	X509 *cert;
	STACK_OF(X509) *chain;
	enum envelope_padding padding;
};

struct signer {
	pthread_mutex_t lock;
	struct signer_key **keys;
	size_t nkeys;
	struct keyd_client *remote;     /* the key process, when privilege-separated */
	/* The crypto worker limit (see "Crypto worker limit" at the end). */
	pthread_cond_t turn;
	int workers;                    /* 0: no limit */
	int busy, peak;
};

static void crypto_enter(struct signer *);
static void crypto_leave(struct signer *);

struct signer *
signer_new(void)
{
	struct signer *s;

	s = xcalloc(1, sizeof(*s));
	if (pthread_mutex_init(&s->lock, NULL) != 0 || pthread_cond_init(&s->turn, NULL) != 0) {
		/* Only fails for lack of resources, like xcalloc. */
		perror("pthread_mutex_init");
		abort();
	}
	return s;
}

static void
signer_key_free(struct signer_key *k)
{
	if (k == NULL)
		return;
	free(k->name);
	/* EVP_PKEY_free clears the key's numbers before freeing them. */
	EVP_PKEY_free(k->key);
	X509_free(k->cert);
	sk_X509_pop_free(k->chain, X509_free);
	free(k);
}

void
signer_free(struct signer *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nkeys; i++)
		signer_key_free(s->keys[i]);
	free(s->keys);
	pthread_cond_destroy(&s->turn);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Caller holds s->lock. */
static struct signer_key *
find_locked(const struct signer *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i]->name, name) == 0)
			return s->keys[i];
	return NULL;
}

static struct signer_key *
find(const struct signer *s, const char *name)
{
	struct signer *ms = (struct signer *)s; /* the lock is not the state */
	struct signer_key *k;

	if (s == NULL || name == NULL)
		return NULL;
	pthread_mutex_lock(&ms->lock);
	k = find_locked(s, name);
	pthread_mutex_unlock(&ms->lock);
	return k;
}

int
signer_add(struct signer *s, const char *name, EVP_PKEY *key, X509 *cert,
    STACK_OF(X509) *chain, enum envelope_padding padding, struct why *why)
{
	struct signer_key *k = NULL;
	int r, locked = 0;

	if (s == NULL || name == NULL || *name == '\0' || key == NULL || cert == NULL) {
		r = why_set(why, HEGN_ERR_INTERNAL, "signer_add: missing name, key or certificate");
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_CONFIG,
		    "key for party %s does not match its certificate", name);
		goto out;
	}
	k = xcalloc(1, sizeof(*k));
	k->name = xstrdup(name);
	k->padding = padding;
	if (EVP_PKEY_up_ref(key) != 1) {
		r = why_set(why, HEGN_ERR_CRYPTO, "cannot reference key for party %s", name);
		goto out;
	}
	k->key = key;
	if (X509_up_ref(cert) != 1) {
		r = why_set(why, HEGN_ERR_CRYPTO,
		    "cannot reference certificate for party %s", name);
		goto out;
	}
	k->cert = cert;
	if (chain != NULL && (k->chain = X509_chain_up_ref(chain)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	locked = 1;
	if (find_locked(s, name) != NULL) {
		r = why_set(why, HEGN_ERR_CONFLICT, "a key for party %s is already loaded", name);
		goto out;
	}
	s->keys = xrealloc(s->keys, (s->nkeys + 1) * sizeof(*s->keys));
	s->keys[s->nkeys++] = k;
	k = NULL;
	r = 0;
out:
	if (locked)
		pthread_mutex_unlock(&s->lock);
	signer_key_free(k);
	return r;
}

/*
 * Open the key file and refuse it when others may read or change it: the
 * checks run on the open descriptor, so the file read is the file checked.
 */
static int
read_key_file(const char *path, EVP_PKEY **out, struct why *why)
{
	struct stat st;
	FILE *f = NULL;
	int fd = -1, r;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		r = why_set(why, HEGN_ERR_CONFIG, "cannot open key file %s: %s",
		    path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		r = why_set(why, HEGN_ERR_CONFIG, "cannot stat key file %s: %s",
		    path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = why_set(why, HEGN_ERR_CONFIG, "key file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH)) {
		r = why_set(why, HEGN_ERR_CONFIG,
		    "key file %s is readable by group or others (mode %04o): chmod 600 it",
		    path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		r = why_set(why, HEGN_ERR_CONFIG,
		    "key file %s is writable by group or others (mode %04o): chmod 600 it",
		    path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		r = why_set(why, HEGN_ERR_CONFIG, "cannot read key file %s: %s",
		    path, strerror(errno));
		goto out;
	}
	fd = -1;
	/* An empty passphrase: an encrypted key must not prompt a terminal. */
	if ((*out = PEM_read_PrivateKey(f, NULL, NULL, (void *)"")) == NULL) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_CONFIG,
		    "key file %s holds no unencrypted PEM private key", path);
		goto out;
	}
	r = 0;
out:
	if (f != NULL)
		fclose(f);
	if (fd != -1)
		close(fd);
	return r;
}

static int
read_cert_file(const char *path, X509 **out, struct why *why)
{
	BIO *bio = NULL;
	int r;

	*out = NULL;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_CONFIG, "cannot open certificate file %s", path);
		goto out;
	}
	if ((*out = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_CONFIG,
		    "certificate file %s holds no PEM certificate", path);
		goto out;
	}
	r = 0;
out:
	BIO_free(bio);
	return r;
}

int
signer_load(struct signer *s, const char *name, const char *key_path,
    const char *cert_path, STACK_OF(X509) *chain, enum envelope_padding padding,
    struct why *why)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	if ((r = read_key_file(key_path, &key, why)) != 0 ||
	    (r = read_cert_file(cert_path, &cert, why)) != 0)
		goto out;
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_CONFIG,
		    "key file %s does not match certificate %s", key_path, cert_path);
		goto out;
	}
	r = signer_add(s, name, key, cert, chain, padding, why);
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}

int
signer_has(const struct signer *s, const char *name)
{
	return find(s, name) != NULL;
}

X509 *
signer_cert(const struct signer *s, const char *name)
{
	struct signer_key *k;

	if ((k = find(s, name)) == NULL)
		return NULL;
	return k->cert;
}

/* Privilege separation: requests to the key process. */
void
signer_connect(struct signer *s, struct keyd_client *c)
{
	s->remote = c;
}

int
signer_load_cert(struct signer *s, const char *name, const char *cert_path,
    STACK_OF(X509) *chain, struct why *why)
{
	struct signer_key *k = NULL;
	X509 *cert = NULL;
	int r;

	if (name == NULL || *name == '\0') {
		r = why_set(why, HEGN_ERR_INTERNAL, "signer_load_cert: missing name");
		goto out;
	}
	if ((r = read_cert_file(cert_path, &cert, why)) != 0)
		goto out;
	k = xcalloc(1, sizeof(*k));
	k->name = xstrdup(name);
	k->cert = cert;
	cert = NULL;
	if (chain != NULL && (k->chain = X509_chain_up_ref(chain)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory for the chain of %s", name);
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	if (find_locked(s, name) != NULL) {
		pthread_mutex_unlock(&s->lock);
		r = why_set(why, HEGN_ERR_CONFLICT, "a key for party %s is already loaded", name);
		goto out;
	}
	s->keys = xrealloc(s->keys, (s->nkeys + 1) * sizeof(*s->keys));
	s->keys[s->nkeys++] = k;
	k = NULL;
	pthread_mutex_unlock(&s->lock);
	r = 0;
out:
	X509_free(cert);
	signer_key_free(k);
	return r;
}

/*
 * Only the content's SHA-256 goes to the key process, and a SignedData
 * without content or certificates comes back (envelope_sign_digest): the
 * content is attached here, and checked to be what was signed.  The key
 * process never sees a message it signs, and a large one is not copied
 * there and back.
 */
static int
remote_sign(struct signer *s, const struct signer_key *k, const uint8_t *content, size_t len,
    const char *content_id, struct buf *out, struct why *why)
{
	struct buf detached = { 0 };
	uint8_t digest[32];
	int r;

	if (s->remote == NULL)
		return why_set(why, HEGN_ERR_INTERNAL, "the key of party %s is in no key process",
		    k->name);
	if (len > ENVELOPE_MAX_DER)
		return why_set(why, HEGN_ERR_TOO_LARGE,
		    "content of %zu bytes is too large to sign", len);
	util_sha256(content, len, digest);
	if ((r = keyd_client_sign(s->remote, k->name, digest, sizeof(digest), content_id,
	    &detached, why)) == 0)
		r = envelope_attach(detached.data, detached.len, k->cert, k->chain, content, len,
		    digest, out, why);
	buf_free(&detached, 0);
	return r;
}

static int
remote_decrypt(struct signer *s, const struct signer_key *k, const uint8_t *der, size_t len,
    struct buf *out, struct why *why)
{
	if (s->remote == NULL)
		return why_set(why, HEGN_ERR_INTERNAL, "the key of party %s is in no key process",
		    k->name);
	return keyproxy_open(s->remote, k->name, k->cert, der, len, out, why);
}

int
signer_sign(struct signer *s, const char *name, const uint8_t *content,
    size_t len, const char *content_id, struct buf *out, struct why *why)
{
	struct signer_key *k;

	out->data = NULL;
	out->len = 0;
	if ((k = find(s, name)) == NULL)
		return why_set(why, HEGN_ERR_NOT_FOUND,
		    "no signing key for party %s", name == NULL ? "(none)" : name);
	int r;

	if (k->key == NULL)
		return remote_sign(s, k, content, len, content_id, out, why);
	crypto_enter(s);
	r = envelope_sign(k->key, k->cert, k->chain, k->padding, content, len,
	    content_id, out, why);
	crypto_leave(s);
	return r;
}

int
signer_sign_digest(struct signer *s, const char *name, const uint8_t *digest, size_t len,
    const char *content_id, struct buf *out, struct why *why)
{
	struct signer_key *k;
	int r;

	out->data = NULL;
	out->len = 0;
	if ((k = find(s, name)) == NULL || k->key == NULL)
		return why_set(why, HEGN_ERR_NOT_FOUND,
		    "no signing key for party %s", name == NULL ? "(none)" : name);
	if (len != 32)
		return why_set(why, HEGN_ERR_INVALID, "a SHA-256 digest is 32 bytes, not %zu", len);
	crypto_enter(s);
	r = envelope_sign_digest(k->key, k->cert, k->padding, digest, content_id, out, why);
	crypto_leave(s);
	return r;
}

int
signer_decrypt(struct signer *s, const char *name, const uint8_t *der,
    size_t len, struct buf *out, struct why *why)
{
	struct signer_key *k;

	out->data = NULL;
	out->len = 0;
	if ((k = find(s, name)) == NULL)
		return why_set(why, HEGN_ERR_NOT_FOUND,
		    "no decryption key for party %s", name == NULL ? "(none)" : name);
	int r;

	if (k->key == NULL)
		return remote_decrypt(s, k, der, len, out, why);
	crypto_enter(s);
	r = envelope_open(k->key, k->cert, der, len, out, why);
	crypto_leave(s);
	return r;
}

/* name's key, held here, of type base (EVP_PKEY_RSA or EVP_PKEY_EC). */
static int
local_key(struct signer *s, const char *name, int base, struct signer_key **out,
    struct why *why)
{
	struct signer_key *k;

	if ((k = find(s, name)) == NULL || k->key == NULL)
		return why_set(why, HEGN_ERR_NOT_FOUND, "no decryption key for party %s",
		    name == NULL ? "(none)" : name);
	if (EVP_PKEY_get_base_id(k->key) != base)
		return why_set(why, HEGN_ERR_UNSUPPORTED, "the key of party %s is not an %s key",
		    name, base == EVP_PKEY_RSA ? "RSA" : "EC");
	*out = k;
	return 0;
}

int
signer_rsa_decrypt_raw(struct signer *s, const char *name, const uint8_t *block,
    size_t len, struct buf *out, struct why *why)
{
	struct signer_key *k;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n;
	int r;

	out->data = NULL;
	out->len = 0;
	if ((r = local_key(s, name, EVP_PKEY_RSA, &k, why)) != 0)
		return r;
	n = (size_t)EVP_PKEY_get_size(k->key);
	if (len != n)
		return why_set(why, HEGN_ERR_INVALID, "a %zu-byte block for the %zu-byte RSA key "
		    "of party %s", len, n, name);
	out->data = xmalloc(n);
	out->len = n;
	crypto_enter(s);
	/* OpenSSL blinds the operation and checks its result with the public key. */
	if ((ctx = EVP_PKEY_CTX_new(k->key, NULL)) == NULL ||
	    EVP_PKEY_decrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) <= 0) {
		r = why_set(why, HEGN_ERR_CRYPTO, "cannot use the RSA key of party %s", name);
		ERR_clear_error();
		buf_free(out, 1);
	} else if (EVP_PKEY_decrypt(ctx, out->data, &n, block, len) <= 0 || n != len) {
		/* The one failure the caller controls: a block not below the modulus. */
		r = why_set(why, HEGN_ERR_INVALID, "the block is not an RSA ciphertext for the "
		    "key of party %s", name);
		ERR_clear_error();
		buf_free(out, 1);
	} else {
		out->len = n;
		r = 0;
	}
	crypto_leave(s);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
signer_ecdh(struct signer *s, const char *name, const uint8_t *point, size_t len,
    struct buf *out, struct why *why)
{
	struct signer_key *k;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *peer = NULL;
	size_t n = 0;
	int r;

	out->data = NULL;
	out->len = 0;
	if ((r = local_key(s, name, EVP_PKEY_EC, &k, why)) != 0)
		return r;
	/* A point off the key's curve (an invalid-curve attack) fails here or in the check below. */
	if ((peer = EVP_PKEY_new()) == NULL || EVP_PKEY_copy_parameters(peer, k->key) != 1 ||
	    EVP_PKEY_set1_encoded_public_key(peer, point, len) != 1) {
		r = why_set(why, HEGN_ERR_INVALID, "the point is not on the curve of the key of "
		    "party %s", name);
		goto out;
	}
	crypto_enter(s);
	if ((ctx = EVP_PKEY_CTX_new(k->key, NULL)) == NULL || EVP_PKEY_derive_init(ctx) <= 0) {
		r = why_set(why, HEGN_ERR_CRYPTO, "cannot use the EC key of party %s", name);
	} else if (EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) <= 0 ||
	    EVP_PKEY_derive(ctx, NULL, &n) <= 0) {
		r = why_set(why, HEGN_ERR_INVALID, "no shared secret with that point for the key "
		    "of party %s", name);
	} else {
		out->data = xmalloc(n);
		out->len = n;
		if (EVP_PKEY_derive(ctx, out->data, &n) <= 0) {
			r = why_set(why, HEGN_ERR_INVALID, "no shared secret with that point for "
			    "the key of party %s", name);
			buf_free(out, 1);
		} else {
			out->len = n;
			r = 0;
		}
	}
	crypto_leave(s);
out:
	if (r != 0)
		ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return r;
}

/*
 * Crypto worker limit (performance, docs/performance.md).
 *
 * hegnd serves each connection on a thread of its own; with more clients
 * than cores every one of those threads signed at once, and the private-key
 * operations (a millisecond and more of arithmetic each) were time-sliced
 * against each other and against the TLS and HTTP work.  At most workers of
 * them run at once and the others wait; threads that need no private key
 * (fetches, receipts, TLS) are not held up.
 */
void
signer_set_workers(struct signer *s, int workers)
{
	long n;

	if (workers <= 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		workers = n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
	}
	pthread_mutex_lock(&s->lock);
	s->workers = workers;
	pthread_cond_broadcast(&s->turn);
	pthread_mutex_unlock(&s->lock);
}

int
signer_workers(const struct signer *s, int *peak)
{
	struct signer *ms = (struct signer *)s; /* the lock is not the state */
	int n;

	pthread_mutex_lock(&ms->lock);
	n = s->workers;
	if (peak != NULL)
		*peak = s->peak;
	pthread_mutex_unlock(&ms->lock);
	return n;
}

static void
crypto_enter(struct signer *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->workers > 0 && s->busy >= s->workers)
		pthread_cond_wait(&s->turn, &s->lock);
	if (++s->busy > s->peak)
		s->peak = s->busy;
	pthread_mutex_unlock(&s->lock);
}

static void
crypto_leave(struct signer *s)
{
	pthread_mutex_lock(&s->lock);
	s->busy--;
	pthread_cond_signal(&s->turn);
	pthread_mutex_unlock(&s->lock);
}
