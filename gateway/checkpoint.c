/*
 * checkpoint: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519
 * with libsodium.  Byte-compatible with golang.org/x/mod/sumdb/note: the
 * tests reproduce that package's published example note exactly.
 *
 * Parsing is strict on purpose: a checkpoint is evidence, and two
 * spellings of the same tree head (a leading zero in the size, a
 * non-canonical base64 root) would let a log show different texts for one
 * signed statement.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "err.h"

#define ALG_ED25519 0x01
#define KEY_NAME_MAX 255
#define KEYHASH_LEN 4
#define SIG_LEN (KEYHASH_LEN + crypto_sign_BYTES)
#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL
#define ROOT_LEN 32
#define ROOT_B64_LEN 44
#define SIGNER_PREFIX "PRIVATE+KEY+"
/* U+2014 EM DASH and a space, as UTF-8. */
#define SIG_PREFIX "\xe2\x80\x94 "
#define SIG_PREFIX_LEN 4

/* A parsed key: name, key hash, and the public key (and seed, for signers). */
struct key {
	char name[KEY_NAME_MAX + 1];
	uint8_t hash[KEYHASH_LEN];
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

static void
key_wipe(struct key *k)
{
	sodium_memzero(k, sizeof(*k));
}

/*
 * Our own key names: printable ASCII without space or '+'.  The Go package
 * allows any UTF-8 without Unicode spaces; the narrower set keeps names
 * safe in file names, logs and error texts.
 */
static int
valid_key_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > KEY_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '+')
			return 0;
	}
	return 1;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or > U+10FFFF. */
static int
valid_utf8(const uint8_t *s, size_t len)
{
	size_t i = 0, n, j;
	uint32_t c;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			n = 1;
			c = s[i] & 0x1f;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			n = 2;
			c = s[i] & 0x0f;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			n = 3;
			c = s[i] & 0x07;
		} else
			return 0;
		if (len - i <= n)
			return 0;
		for (j = 1; j <= n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (s[i + j] & 0x3f);
		}
		if ((n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
		    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Valid UTF-8 with no ASCII control character other than newline. */
static int
valid_note_text(const char *s, size_t len, int allow_newline)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 &&
		    !(allow_newline && s[i] == '\n'))
			return 0;
	}
	return valid_utf8((const uint8_t *)s, len);
}

/*
 * Decode exactly slen characters of padded standard base64 into out (cap
 * bytes).  libsodium already refuses non-zero padding bits and missing
 * padding, so the encoding accepted is the canonical one.
 */
static int
b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap,
    size_t *outlen)
{
	const char *end = NULL;

	*outlen = 0;
	if (slen == 0 || slen % 4 != 0)
		return -1;
	if (sodium_base642bin(out, cap, s, slen, NULL, outlen, &end,
	    B64_VARIANT) != 0 || end != s + slen) {
		*outlen = 0;
		return -1;
	}
	return 0;
}

static void
key_hash(const char *name, const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
    uint8_t out[KEYHASH_LEN])
{
	crypto_hash_sha256_state st;
	uint8_t sum[crypto_hash_sha256_BYTES];
	const uint8_t sep[2] = { '\n', ALG_ED25519 };

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
	crypto_hash_sha256_update(&st, sep, sizeof(sep));
	crypto_hash_sha256_update(&st, pk, crypto_sign_PUBLICKEYBYTES);
	crypto_hash_sha256_final(&st, sum);
	memcpy(out, sum, KEYHASH_LEN);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Eight lower-case hex digits, as the Go package writes them. */
static int
parse_key_hash(const char *s, size_t len, uint8_t out[KEYHASH_LEN])
{
	size_t i;
	int hi, lo;

	if (len != 2 * KEYHASH_LEN)
		return -1;
	for (i = 0; i < KEYHASH_LEN; i++) {
		hi = hexval(s[2 * i]);
		lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/*
 * "<name>+<hash>+<base64(0x01 || 32 bytes)>" at s into k's name and hash
 * and the 32 key bytes into key (which the caller wipes).
 */
static int
parse_key_fields(const char *s, const char *what, struct key *k,
    uint8_t key[32], struct why *why)
{
	const char *p1, *p2;
	uint8_t raw[1 + 32 + 1];
	size_t rawlen = 0, namelen;
	int r = HEGN_ERR_CONFIG;

	if ((p1 = strchr(s, '+')) == NULL ||
	    (p2 = strchr(p1 + 1, '+')) == NULL) {
		why_set(why, r, "%s: not of the form name+hash+key", what);
		goto out;
	}
	namelen = (size_t)(p1 - s);
	if (!valid_key_name(s, namelen)) {
		why_set(why, r, "%s: key name must be 1 to %d printable "
		    "characters without space or '+'", what, KEY_NAME_MAX);
		goto out;
	}
	memcpy(k->name, s, namelen);
	k->name[namelen] = '\0';
	if (parse_key_hash(p1 + 1, (size_t)(p2 - p1 - 1), k->hash) != 0) {
		why_set(why, r, "%s: key hash of key %s is not 8 lower-case "
		    "hex digits", what, k->name);
		goto out;
	}
	if (b64_decode(p2 + 1, strlen(p2 + 1), raw, sizeof(raw),
	    &rawlen) != 0 || rawlen != sizeof(raw) - 1) {
		why_set(why, r, "%s: key data of key %s is not base64 of 33 "
		    "bytes", what, k->name);
		goto out;
	}
	if (raw[0] != ALG_ED25519) {
		why_set(why, r, "%s: key %s has algorithm %u, not Ed25519 (1)",
		    what, k->name, raw[0]);
		goto out;
	}
	memcpy(key, raw + 1, 32);
	r = 0;
 out:
	sodium_memzero(raw, sizeof(raw));
	return r;
}

static int
parse_signer(const char *skey, struct key *k, struct why *why)
{
	uint8_t seed[crypto_sign_SEEDBYTES], want[KEYHASH_LEN];
	int r = HEGN_ERR_CONFIG;

	memset(k, 0, sizeof(*k));
	if (skey == NULL || strncmp(skey, SIGNER_PREFIX,
	    strlen(SIGNER_PREFIX)) != 0) {
		why_set(why, r, "signer key: does not start with %s",
		    SIGNER_PREFIX);
		goto out;
	}
	if ((r = parse_key_fields(skey + strlen(SIGNER_PREFIX), "signer key",
	    k, seed, why)) != 0)
		goto out;
	if (crypto_sign_seed_keypair(k->pk, k->sk, seed) != 0) {
		r = why_set(why, HEGN_ERR_CRYPTO, "signer key: cannot derive "
		    "the Ed25519 key pair of key %s", k->name);
		goto out;
	}
	/* The hash names the public key, so it is checked after deriving it. */
	key_hash(k->name, k->pk, want);
	if (sodium_memcmp(want, k->hash, KEYHASH_LEN) != 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "signer key: key hash of key "
		    "%s does not match its key", k->name);
		goto out;
	}
	r = 0;
 out:
	sodium_memzero(seed, sizeof(seed));
	if (r != 0)
		key_wipe(k);
	return r;
}

static int
parse_verifier(const char *vkey, struct key *k, struct why *why)
{
	uint8_t want[KEYHASH_LEN];
	int r = HEGN_ERR_CONFIG;

	memset(k, 0, sizeof(*k));
	if (vkey == NULL) {
		why_set(why, r, "verifier key: missing");
		goto out;
	}
	if ((r = parse_key_fields(vkey, "verifier key", k, k->pk, why)) != 0)
		goto out;
	key_hash(k->name, k->pk, want);
	if (sodium_memcmp(want, k->hash, KEYHASH_LEN) != 0) {
		r = why_set(why, HEGN_ERR_CONFIG, "verifier key: key hash of "
		    "key %s does not match its key", k->name);
		goto out;
	}
	r = 0;
 out:
	if (r != 0)
		key_wipe(k);
	return r;
}

/* "<name>+<hex hash>+<base64(0x01 || key)>", with prefix before it. */
static char *
format_key(const char *prefix, const struct key *k, const uint8_t key[32])
{
	uint8_t raw[33];
	char hex[2 * KEYHASH_LEN + 1];
	char b64[sodium_base64_ENCODED_LEN(33, B64_VARIANT)];
	char *s = NULL;
	size_t len;

	raw[0] = ALG_ED25519;
	memcpy(raw + 1, key, 32);
	sodium_bin2hex(hex, sizeof(hex), k->hash, KEYHASH_LEN);
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), B64_VARIANT);
	len = strlen(prefix) + strlen(k->name) + 1 + strlen(hex) + 1 +
	    strlen(b64) + 1;
	if ((s = malloc(len)) != NULL)
		snprintf(s, len, "%s%s+%s+%s", prefix, k->name, hex, b64);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(b64, sizeof(b64));
	return s;
}

void
checkpoint_key_free(char *signer_key)
{
	if (signer_key == NULL)
		return;
	sodium_memzero(signer_key, strlen(signer_key));
	free(signer_key);
}

int
checkpoint_keygen(const char *name, char **signer_key, char **verifier_key,
    struct why *why)
{
	struct key k;
	char *skey = NULL, *vkey = NULL;
	int r = HEGN_ERR_INVALID;

	*signer_key = NULL;
	*verifier_key = NULL;
	memset(&k, 0, sizeof(k));
	if (name == NULL || !valid_key_name(name, strlen(name))) {
		why_set(why, r, "checkpoint key name must be 1 to %d printable "
		    "characters without space or '+'", KEY_NAME_MAX);
		goto out;
	}
	if (sodium_init() < 0) {
		r = why_set(why, HEGN_ERR_CRYPTO, "libsodium failed to "
		    "initialise");
		goto out;
	}
	snprintf(k.name, sizeof(k.name), "%s", name);
	crypto_sign_keypair(k.pk, k.sk);
	key_hash(k.name, k.pk, k.hash);
	/* libsodium's secret key is seed || public key. */
	if ((skey = format_key(SIGNER_PREFIX, &k, k.sk)) == NULL ||
	    (vkey = format_key("", &k, k.pk)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory for the "
		    "checkpoint key %s", name);
		goto out;
	}
	*signer_key = skey;
	*verifier_key = vkey;
	skey = vkey = NULL;
	r = 0;
 out:
	key_wipe(&k);
	checkpoint_key_free(skey);
	free(vkey);
	return r;
}

int
checkpoint_verifier_key(const char *signer_key, char **verifier_key,
    struct why *why)
{
	struct key k;
	int r;

	*verifier_key = NULL;
	if ((r = parse_signer(signer_key, &k, why)) != 0)
		goto out;
	if ((*verifier_key = format_key("", &k, k.pk)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory for the "
		    "verifier key");
		goto out;
	}
	r = 0;
 out:
	key_wipe(&k);
	return r;
}

int
checkpoint_sign(const char *signer_key, const char *origin, uint64_t size,
    const uint8_t root[32], char **out, struct why *why)
{
	struct key k;
	uint8_t sig[SIG_LEN];
	char rootb64[sodium_base64_ENCODED_LEN(ROOT_LEN, B64_VARIANT)];
	char sigb64[sodium_base64_ENCODED_LEN(SIG_LEN, B64_VARIANT)];
	char *body = NULL, *note = NULL;
	size_t bodylen, notelen;
	int n, r;

	*out = NULL;
	memset(&k, 0, sizeof(k));
	if (origin == NULL || *origin == '\0' ||
	    !valid_note_text(origin, strlen(origin), 0)) {
		r = why_set(why, HEGN_ERR_INVALID, "checkpoint origin must be "
		    "non-empty UTF-8 without control characters");
		goto out;
	}
	if ((r = parse_signer(signer_key, &k, why)) != 0)
		goto out;
	sodium_bin2base64(rootb64, sizeof(rootb64), root, ROOT_LEN,
	    B64_VARIANT);
	bodylen = strlen(origin) + 1 + 20 + 1 + strlen(rootb64) + 2;
	if ((body = malloc(bodylen)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory for a "
		    "checkpoint");
		goto out;
	}
	n = snprintf(body, bodylen, "%s\n%llu\n%s\n", origin,
	    (unsigned long long)size, rootb64);
	if (n < 0 || (size_t)n >= bodylen) {
		r = why_set(why, HEGN_ERR_INTERNAL, "checkpoint body does not "
		    "fit its buffer");
		goto out;
	}
	bodylen = (size_t)n;
	memcpy(sig, k.hash, KEYHASH_LEN);
	if (crypto_sign_detached(sig + KEYHASH_LEN, NULL,
	    (const uint8_t *)body, bodylen, k.sk) != 0) {
		r = why_set(why, HEGN_ERR_CRYPTO, "Ed25519 signing with key %s "
		    "failed", k.name);
		goto out;
	}
	sodium_bin2base64(sigb64, sizeof(sigb64), sig, sizeof(sig),
	    B64_VARIANT);
	notelen = bodylen + 1 + SIG_PREFIX_LEN + strlen(k.name) + 1 +
	    strlen(sigb64) + 2;
	if ((note = malloc(notelen)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory for a "
		    "checkpoint");
		goto out;
	}
	snprintf(note, notelen, "%s\n%s%s %s\n", body, SIG_PREFIX, k.name,
	    sigb64);
	*out = note;
	note = NULL;
	r = 0;
 out:
	key_wipe(&k);
	free(body);
	free(note);
	return r;
}

/* The tree size: "0" or a decimal without leading zeros, below 2^64. */
static int
parse_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;
	unsigned int d;

	*out = 0;
	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned int)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/*
 * The body: origin, size, root, then optional non-empty extension lines;
 * body ends with its final newline.
 */
static int
parse_body(const char *body, size_t len, char **origin, uint64_t *size,
    uint8_t root[ROOT_LEN], struct why *why)
{
	const char *line = body, *nl, *end = body + len;
	size_t llen, rootlen, lineno;
	int r = HEGN_ERR_INVALID;

	for (lineno = 1; line < end; lineno++, line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		llen = (size_t)(nl - line);
		if (llen == 0) {
			why_set(why, r, "checkpoint: line %zu is empty", lineno);
			goto out;
		}
		if (lineno == 1) {
			if ((*origin = malloc(llen + 1)) == NULL) {
				r = why_set(why, HEGN_ERR_NOMEM, "out of "
				    "memory for a checkpoint origin");
				goto out;
			}
			memcpy(*origin, line, llen);
			(*origin)[llen] = '\0';
		} else if (lineno == 2) {
			if (parse_size(line, llen, size) != 0) {
				why_set(why, r, "checkpoint: tree size (line 2) "
				    "is not a canonical decimal below 2^64");
				goto out;
			}
		} else if (lineno == 3) {
			if (llen != ROOT_B64_LEN || b64_decode(line, llen, root,
			    ROOT_LEN, &rootlen) != 0 || rootlen != ROOT_LEN) {
				why_set(why, r, "checkpoint: root hash (line 3) "
				    "is not base64 of 32 bytes");
				goto out;
			}
		}
	}
	if (lineno <= 3) {
		why_set(why, r, "checkpoint: %zu lines where origin, tree size "
		    "and root hash are required", lineno - 1);
		goto out;
	}
	r = 0;
 out:
	return r;
}

/*
 * Check every signature line of sigs (len bytes, each ending in a newline)
 * and verify the ones by k over body.  Lines by other keys must be
 * well-formed but are otherwise ignored, as signed-note requires.
 */
static int
check_signatures(const struct key *k, const char *body, size_t bodylen,
    const char *sigs, size_t len, struct why *why)
{
	const char *line = sigs, *nl, *sp, *end = sigs + len, *b64;
	uint8_t *raw = NULL, hash[KEYHASH_LEN];
	size_t llen, namelen, b64len, rawlen, count = 0;
	int verified = 0, r = HEGN_ERR_INVALID;

	if (len == 0) {
		why_set(why, r, "checkpoint: no signature lines after the "
		    "blank line");
		goto out;
	}
	for (; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		llen = (size_t)(nl - line);
		if (++count > CHECKPOINT_MAX_SIGS) {
			why_set(why, r, "checkpoint: more than %d signature "
			    "lines", CHECKPOINT_MAX_SIGS);
			goto out;
		}
		if (llen < SIG_PREFIX_LEN ||
		    memcmp(line, SIG_PREFIX, SIG_PREFIX_LEN) != 0) {
			why_set(why, r, "checkpoint: signature line %zu does "
			    "not start with an em dash and a space", count);
			goto out;
		}
		sp = memchr(line + SIG_PREFIX_LEN, ' ',
		    llen - SIG_PREFIX_LEN);
		if (sp == NULL || sp == line + SIG_PREFIX_LEN) {
			why_set(why, r, "checkpoint: signature line %zu has "
			    "no key name followed by a space", count);
			goto out;
		}
		namelen = (size_t)(sp - line - SIG_PREFIX_LEN);
		if (memchr(line + SIG_PREFIX_LEN, '+', namelen) != NULL) {
			why_set(why, r, "checkpoint: key name in signature "
			    "line %zu contains '+'", count);
			goto out;
		}
		b64 = sp + 1;
		b64len = (size_t)(nl - b64);
		free(raw);
		if ((raw = malloc(b64len / 4 * 3 + 1)) == NULL) {
			r = why_set(why, HEGN_ERR_NOMEM, "out of memory for a "
			    "checkpoint signature");
			goto out;
		}
		if (b64_decode(b64, b64len, raw, b64len / 4 * 3 + 1,
		    &rawlen) != 0 || rawlen < KEYHASH_LEN + 1) {
			why_set(why, r, "checkpoint: signature line %zu is not "
			    "base64 of a key hash and a signature", count);
			goto out;
		}
		memcpy(hash, raw, KEYHASH_LEN);
		if (namelen != strlen(k->name) ||
		    memcmp(line + SIG_PREFIX_LEN, k->name, namelen) != 0 ||
		    memcmp(hash, k->hash, KEYHASH_LEN) != 0)
			continue;
		/* A bad signature by a known key refuses the whole note. */
		if (rawlen != SIG_LEN || crypto_sign_verify_detached(
		    raw + KEYHASH_LEN, (const uint8_t *)body, bodylen,
		    k->pk) != 0) {
			r = why_set(why, HEGN_ERR_SIGNATURE, "checkpoint: "
			    "signature by key %s does not verify", k->name);
			goto out;
		}
		verified = 1;
	}
	if (!verified) {
		r = why_set(why, HEGN_ERR_SIGNATURE, "checkpoint: no signature "
		    "by key %s+%02x%02x%02x%02x", k->name, k->hash[0],
		    k->hash[1], k->hash[2], k->hash[3]);
		goto out;
	}
	r = 0;
 out:
	free(raw);
	return r;
}

int
checkpoint_verify(const char *verifier_key, const char *text, size_t len,
    char **origin, uint64_t *size, uint8_t root[32], struct why *why)
{
	struct key k;
	const char *split;
	char *org = NULL;
	uint8_t rt[ROOT_LEN];
	uint64_t sz = 0;
	size_t bodylen;
	int r;

	*origin = NULL;
	*size = 0;
	memset(root, 0, ROOT_LEN);
	memset(&k, 0, sizeof(k));
	if ((r = parse_verifier(verifier_key, &k, why)) != 0)
		goto out;
	r = HEGN_ERR_INVALID;
	if (text == NULL || len == 0) {
		why_set(why, r, "checkpoint: empty");
		goto out;
	}
	if (len > CHECKPOINT_MAX_LEN) {
		r = why_set(why, HEGN_ERR_TOO_LARGE, "checkpoint: %zu bytes, "
		    "more than %d", len, CHECKPOINT_MAX_LEN);
		goto out;
	}
	if (!valid_note_text(text, len, 1)) {
		why_set(why, r, "checkpoint: not UTF-8 text without control "
		    "characters");
		goto out;
	}
	if (text[len - 1] != '\n') {
		why_set(why, r, "checkpoint: does not end with a newline");
		goto out;
	}
	/*
	 * The body has no empty line, so the first blank line ends it; any
	 * later blank line falls among the signatures and is refused there.
	 */
	if ((split = memmem(text, len, "\n\n", 2)) == NULL) {
		why_set(why, r, "checkpoint: no blank line between body and "
		    "signatures");
		goto out;
	}
	bodylen = (size_t)(split - text) + 1;
	if ((r = parse_body(text, bodylen, &org, &sz, rt, why)) != 0)
		goto out;
	if ((r = check_signatures(&k, text, bodylen, split + 2,
	    len - bodylen - 1, why)) != 0)
		goto out;
	*origin = org;
	org = NULL;
	*size = sz;
	memcpy(root, rt, ROOT_LEN);
	r = 0;
 out:
	key_wipe(&k);
	free(org);
	return r;
}
