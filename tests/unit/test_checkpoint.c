#include "config.h"

#include <stdint.h>

#include <sodium.h>

#include "checkpoint.h"
#include "err.h"
#include "testlib.h"

/*
 * The example key of golang.org/x/mod/sumdb/note (package documentation
 * and note_test.go): a signer key, its verifier key, and the note it signs.
 * Ed25519 is deterministic, so signing the same body must give the same
 * signature line.
 */
#define GO_SKEY "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define GO_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define GO_TEXT "If you think cryptography is the answer to your problem,\n" \
	"then you don't know what your problem is.\n"
#define GO_SIG "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

#define GO_SEED "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"

#define ORIGIN "ringsted.example/hegn/audit"
/* base64 of root_a below. */
#define ROOT_A_B64 "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o="

static uint8_t root_a[32];

static void
fill_root(void)
{
	size_t i;

	for (i = 0; i < sizeof(root_a); i++)
		root_a[i] = (uint8_t)(i * 7 + 1);
}

/* Verify text with vkey; returns the result, freeing any origin. */
static int
verify(const char *vkey, const char *text, struct why *why)
{
	char *origin = NULL;
	uint64_t size = 99;
	uint8_t root[32];
	int r;

	memset(root, 0xaa, sizeof(root));
	why_clear(why);
	r = checkpoint_verify(vkey, text, strlen(text), &origin, &size, root,
	    why);
	if (r != 0) {
		/* Outputs are reset on failure, never half-filled. */
		ck_assert_ptr_null(origin);
		ck_assert_uint_eq(size, 0);
	}
	free(origin);
	return r;
}

/* Replace the first occurrence of from in s by to; returns a new string. */
static char *
replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	char *out;

	ck_assert_ptr_nonnull(p);
	out = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
	memcpy(out, s, (size_t)(p - s));
	strcpy(out + (p - s), to);
	strcat(out, p + strlen(from));
	return out;
}

/* Sign a note over body with skey the way a forger with the key would. */
static char *
note_with_body(const char *skey_seed_b64, const char *name,
    const uint8_t hash[4], const char *body)
{
	uint8_t raw[33], pk[32], sk[64], sig[68];
	char b64[128], *out;
	size_t rawlen = 0;

	ck_assert_int_eq(sodium_base642bin(raw, sizeof(raw), skey_seed_b64,
	    strlen(skey_seed_b64), NULL, &rawlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL), 0);
	ck_assert_int_eq(crypto_sign_seed_keypair(pk, sk, raw + 1), 0);
	memcpy(sig, hash, 4);
	crypto_sign_detached(sig + 4, NULL, (const uint8_t *)body, strlen(body),
	    sk);
	sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig),
	    sodium_base64_VARIANT_ORIGINAL);
	out = malloc(strlen(body) + strlen(name) + strlen(b64) + 16);
	sprintf(out, "%s\n\xe2\x80\x94 %s %s\n", body, name, b64);
	sodium_memzero(sk, sizeof(sk));
	return out;
}

START_TEST(test_known_answer)
{
	char *vkey = NULL, *note = NULL, *origin = NULL, *want = NULL;
	struct why why = { 0 };
	uint64_t size;
	uint8_t root[32];
	const uint8_t go_hash[4] = { 0xc7, 0x4f, 0x20, 0xa3 };

	/*
	 * The independent signer below reproduces Go's published note byte
	 * for byte, so it can stand in for the Go package on other bodies.
	 */
	want = note_with_body(GO_SEED, "PeterNeumann", go_hash, GO_TEXT);
	ck_assert_str_eq(want, GO_TEXT "\n" GO_SIG);
	free(want);

	/* The verifier key derived from the signer key is Go's, byte for byte. */
	ck_assert_int_eq(checkpoint_verifier_key(GO_SKEY, &vkey, &why), 0);
	ck_assert_str_eq(vkey, GO_VKEY);
	free(vkey);

	/* checkpoint_sign gives exactly what the Go package would. */
	fill_root();
	ck_assert_int_eq(checkpoint_sign(GO_SKEY, ORIGIN, 12345, root_a, &note,
	    &why), 0);
	want = note_with_body(GO_SEED, "PeterNeumann", go_hash,
	    ORIGIN "\n12345\n" ROOT_A_B64 "\n");
	ck_assert_str_eq(note, want);
	free(want);
	ck_assert_int_eq(checkpoint_verify(GO_VKEY, note, strlen(note), &origin,
	    &size, root, &why), 0);
	ck_assert_str_eq(origin, ORIGIN);
	ck_assert_uint_eq(size, 12345);
	ck_assert_mem_eq(root, root_a, 32);
	free(origin);
	free(note);

	/*
	 * Go's example note itself is a valid signed note but not a
	 * checkpoint: its second line is not a tree size.
	 */
	ck_assert_int_eq(verify(GO_VKEY, GO_TEXT "\n" GO_SIG, &why),
	    HEGN_ERR_INVALID);
	ck_assert(strstr(why.text, "line 2") != NULL);
}
END_TEST

START_TEST(test_round_trip)
{
	char *skey = NULL, *vkey = NULL, *vkey2 = NULL, *note = NULL;
	char *origin = NULL;
	struct why why = { 0 };
	uint64_t size;
	uint8_t root[32];
	const uint64_t sizes[] = { 0, 1, 9, 10, 12345, UINT64_MAX };
	size_t i;

	fill_root();
	ck_assert_int_eq(checkpoint_keygen("hegn.example/audit", &skey, &vkey,
	    &why), 0);
	ck_assert(strncmp(skey, "PRIVATE+KEY+hegn.example/audit+", 31) == 0);
	ck_assert(strncmp(vkey, "hegn.example/audit+", 19) == 0);
	ck_assert_uint_eq(strlen(vkey), 19 + 8 + 1 + 44);
	ck_assert_int_eq(checkpoint_verifier_key(skey, &vkey2, &why), 0);
	ck_assert_str_eq(vkey, vkey2);

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ck_assert_int_eq(checkpoint_sign(skey, ORIGIN, sizes[i], root_a,
		    &note, &why), 0);
		ck_assert_int_eq(checkpoint_verify(vkey, note, strlen(note),
		    &origin, &size, root, &why), 0);
		ck_assert_str_eq(origin, ORIGIN);
		ck_assert_uint_eq(size, sizes[i]);
		ck_assert_mem_eq(root, root_a, 32);
		free(origin);
		origin = NULL;
		if (i == 4) {
			const char *want = ORIGIN "\n12345\n" ROOT_A_B64
			    "\n\n\xe2\x80\x94 hegn.example/audit ";

			/* The exact layout of the body and signature line. */
			ck_assert(strncmp(note, want, strlen(want)) == 0);
			ck_assert_uint_eq(strlen(note), strlen(want) + 92 + 1);
		}
		free(note);
		note = NULL;
	}
	checkpoint_key_free(skey);
	checkpoint_key_free(NULL);
	free(vkey);
	free(vkey2);
}
END_TEST

START_TEST(test_tampering)
{
	char *note = NULL, *bad = NULL, *skey2 = NULL, *vkey2 = NULL;
	struct why why = { 0 };
	size_t i, len;
	const uint8_t go_hash[4] = { 0xc7, 0x4f, 0x20, 0xa3 };
	const char *seed = GO_SEED;

	fill_root();
	ck_assert_int_eq(checkpoint_sign(GO_SKEY, ORIGIN, 12345, root_a, &note,
	    &why), 0);
	ck_assert_int_eq(verify(GO_VKEY, note, &why), 0);

	/* Changed size, origin, root: the signature no longer covers them. */
	bad = replace(note, "\n12345\n", "\n12346\n");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_SIGNATURE);
	ck_assert(strstr(why.text, "does not verify") != NULL);
	free(bad);
	bad = replace(note, ORIGIN, "ringsted.example/hegn/audi7");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_SIGNATURE);
	free(bad);
	bad = replace(note, "AQgPFh0k", "AQgPFh0l");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_SIGNATURE);
	free(bad);

	/* Every single flipped bit anywhere in the note is refused. */
	len = strlen(note);
	bad = strdup(note);
	for (i = 0; i < len * 8; i++) {
		bad[i / 8] ^= (char)(1 << (i % 8));
		ck_assert_msg(checkpoint_verify(GO_VKEY, bad, len, &(char *){ 0 },
		    &(uint64_t){ 0 }, (uint8_t[32]){ 0 }, NULL) != 0,
		    "bit %zu flipped still verifies", i);
		bad[i / 8] ^= (char)(1 << (i % 8));
	}
	free(bad);
	bad = NULL;

	/* Signed by another key: unknown to this verifier. */
	ck_assert_int_eq(checkpoint_keygen("PeterNeumann", &skey2, &vkey2,
	    &why), 0);
	ck_assert_int_eq(verify(vkey2, note, &why), HEGN_ERR_SIGNATURE);
	ck_assert(strstr(why.text, "no signature by key PeterNeumann+") != NULL);

	/* A second signature line by another key is ignored ... */
	{
		char *other = NULL, *both;

		ck_assert_int_eq(checkpoint_sign(skey2, ORIGIN, 12345, root_a,
		    &other, &why), 0);
		both = malloc(strlen(note) + strlen(other) + 1);
		strcpy(both, note);
		strcat(both, strstr(other, "\n\n") + 2);
		ck_assert_int_eq(verify(GO_VKEY, both, &why), 0);
		ck_assert_int_eq(verify(vkey2, both, &why), 0);
		free(both);
		free(other);
	}

	/*
	 * ... but a bad one by the verifier's own name and key hash refuses
	 * the note even when a good one follows (a forged line must not hide
	 * behind a valid one).
	 */
	{
		char *body = strndup(note, (size_t)(strstr(note, "\n\n") - note + 1));
		char *forged = note_with_body(seed, "PeterNeumann", go_hash,
		    "other body\n1\n" ROOT_A_B64 "\n");
		char *mixed = malloc(strlen(note) + strlen(forged) + 1);

		strcpy(mixed, body);
		strcat(mixed, "\n");
		strcat(mixed, strstr(forged, "\n\n") + 2);
		strcat(mixed, strstr(note, "\n\n") + 2);
		ck_assert_int_eq(verify(GO_VKEY, mixed, &why),
		    HEGN_ERR_SIGNATURE);
		/* The same with the valid line first. */
		strcpy(mixed, note);
		strcat(mixed, strstr(forged, "\n\n") + 2);
		ck_assert_int_eq(verify(GO_VKEY, mixed, &why),
		    HEGN_ERR_SIGNATURE);
		free(mixed);
		free(forged);
		free(body);
	}

	/* Malformed bodies, validly signed, are refused as malformed. */
	{
		const char *bodies[] = {
			ORIGIN "\n012345\n" ROOT_A_B64 "\n",   /* leading zero */
			ORIGIN "\n+12345\n" ROOT_A_B64 "\n",   /* sign */
			ORIGIN "\n 12345\n" ROOT_A_B64 "\n",   /* space */
			ORIGIN "\n12345 \n" ROOT_A_B64 "\n",   /* trailing space */
			ORIGIN "\n18446744073709551616\n" ROOT_A_B64 "\n", /* 2^64 */
			ORIGIN "\n0x10\n" ROOT_A_B64 "\n",
			ORIGIN "\n\n" ROOT_A_B64 "\n",         /* empty size */
			/* Non-zero padding bits: a second spelling of the root. */
			ORIGIN "\n12345\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09p=\n",
			ORIGIN "\n12345\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM\n",
			ORIGIN "\n12345\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o\n",
			ORIGIN "\n12345\nAQgPFh0k-zI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=\n",
			ORIGIN "\n12345\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=AAAA\n",
			ORIGIN "\n12345\n",                    /* root missing */
			ORIGIN "\n",
			"\n12345\n" ROOT_A_B64 "\n",           /* empty origin */
		};

		for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
			free(bad);
			bad = note_with_body(seed, "PeterNeumann", go_hash,
			    bodies[i]);
			ck_assert_msg(verify(GO_VKEY, bad, &why) ==
			    HEGN_ERR_INVALID, "body %zu accepted or wrong "
			    "error: %s", i, why.text);
		}
		/* An extension line is allowed and ignored. */
		free(bad);
		bad = note_with_body(seed, "PeterNeumann", go_hash, ORIGIN
		    "\n12345\n" ROOT_A_B64 "\nextension line\n");
		ck_assert_int_eq(verify(GO_VKEY, bad, &why), 0);
	}
	free(bad);
	free(note);
	checkpoint_key_free(skey2);
	free(vkey2);
}
END_TEST

START_TEST(test_note_syntax)
{
	char *note = NULL, *bad = NULL;
	struct why why = { 0 };
	const char *sigline;

	fill_root();
	ck_assert_int_eq(checkpoint_sign(GO_SKEY, ORIGIN, 7, root_a, &note,
	    &why), 0);
	sigline = strstr(note, "\n\n") + 2;

	/* Missing blank line. */
	bad = replace(note, "\n\n", "\n");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	ck_assert(strstr(why.text, "blank line") != NULL);
	free(bad);
	/* Two blank lines. */
	bad = replace(note, "\n\n", "\n\n\n");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	/* No signature lines at all. */
	bad = strndup(note, (size_t)(sigline - note));
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	/* A hyphen or "--" instead of the em dash. */
	bad = replace(note, "\xe2\x80\x94 ", "- ");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	bad = replace(note, "\xe2\x80\x94 ", "\xe2\x80\x94");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	/* Two spaces after the name, a missing final newline, CR LF. */
	bad = replace(note, "PeterNeumann ", "PeterNeumann  ");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	bad = strndup(note, strlen(note) - 1);
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	bad = replace(note, "\n7\n", "\r\n7\r\n");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	/* A trailing line that is not a signature. */
	bad = malloc(strlen(note) + 8);
	sprintf(bad, "%sjunk\n", note);
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	/* Invalid UTF-8 and a NUL byte in the origin. */
	bad = replace(note, "ringsted", "ring\xc3\x28sted");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	bad = strdup(note);
	bad[3] = '\0';
	ck_assert_int_eq(checkpoint_verify(GO_VKEY, bad, strlen(note),
	    &(char *){ 0 }, &(uint64_t){ 0 }, (uint8_t[32]){ 0 }, &why),
	    HEGN_ERR_INVALID);
	free(bad);
	/*
	 * Lines by other keys must still be well-formed: a name with '+',
	 * a signature too short to hold a key hash and a signature.
	 */
	bad = malloc(strlen(note) + 64);
	sprintf(bad, "%s\xe2\x80\x94 other+name AAAAAAAA\n", note);
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	sprintf(bad, "%s\xe2\x80\x94 other AAAAAA==\n", note);
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	sprintf(bad, "%s\xe2\x80\x94 other AAAAAAA=\n", note);
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), 0);
	free(bad);
	/* Signature base64 without its padding. */
	bad = replace(note, "=\n", "\n");
	ck_assert_int_eq(verify(GO_VKEY, bad, &why), HEGN_ERR_INVALID);
	free(bad);
	/* Too large, empty. */
	{
		char *big = malloc(CHECKPOINT_MAX_LEN + 2);

		memset(big, 'a', CHECKPOINT_MAX_LEN + 1);
		big[CHECKPOINT_MAX_LEN + 1] = '\0';
		ck_assert_int_eq(verify(GO_VKEY, big, &why),
		    HEGN_ERR_TOO_LARGE);
		free(big);
	}
	ck_assert_int_eq(verify(GO_VKEY, "", &why), HEGN_ERR_INVALID);
	/* More than 100 signature lines. */
	{
		size_t i, sl = strlen(sigline);
		char *many = malloc(strlen(note) + 101 * sl + 1);

		strcpy(many, note);
		for (i = 0; i < 100; i++)
			strcat(many, sigline);
		ck_assert_int_eq(verify(GO_VKEY, many, &why),
		    HEGN_ERR_INVALID);
		ck_assert(strstr(why.text, "more than 100") != NULL);
		free(many);
	}
	free(note);
}
END_TEST

START_TEST(test_key_strings)
{
	const char *bad_vkeys[] = {
		"",
		"PeterNeumann",
		"PeterNeumann+c74f20a3",
		"PeterNeumann+c74f20a3+",
		"+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW==",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAAAA",
		"Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"peterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		/* Algorithm byte 2 (key hash recomputed for it would still fail). */
		"PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		/* The signer key where a verifier key belongs. */
		GO_SKEY,
	};
	const char *bad_skeys[] = {
		"",
		GO_VKEY,
		"PRIVATE+KEY+PeterNeumann+c74f20a3",
		"PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
		"PRIVATE+KEY+Peterneumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
		"PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
		"PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
		"private+key+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	};
	char *s = NULL, *v = NULL;
	struct why why = { 0 };
	size_t i;

	fill_root();
	for (i = 0; i < sizeof(bad_vkeys) / sizeof(bad_vkeys[0]); i++) {
		ck_assert_msg(verify(bad_vkeys[i], "x\n\n", &why) ==
		    HEGN_ERR_CONFIG, "verifier key %zu accepted", i);
		ck_assert(strstr(why.text, "verifier key") != NULL);
	}
	ck_assert_int_eq(verify(NULL, "x\n\n", &why), HEGN_ERR_CONFIG);
	for (i = 0; i < sizeof(bad_skeys) / sizeof(bad_skeys[0]); i++) {
		ck_assert_msg(checkpoint_sign(bad_skeys[i], ORIGIN, 1, root_a,
		    &s, &why) == HEGN_ERR_CONFIG, "signer key %zu accepted", i);
		ck_assert_ptr_null(s);
		ck_assert_msg(checkpoint_verifier_key(bad_skeys[i], &v, &why) ==
		    HEGN_ERR_CONFIG, "signer key %zu accepted", i);
		ck_assert_ptr_null(v);
	}
	/* Bad key names and origins. */
	ck_assert_int_eq(checkpoint_keygen("", &s, &v, &why), HEGN_ERR_INVALID);
	ck_assert_int_eq(checkpoint_keygen("a+b", &s, &v, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(checkpoint_keygen("a b", &s, &v, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(checkpoint_keygen("a\nb", &s, &v, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_null(s);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(checkpoint_sign(GO_SKEY, "", 1, root_a, &s, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(checkpoint_sign(GO_SKEY, "a\nb", 1, root_a, &s, &why),
	    HEGN_ERR_INVALID);
	ck_assert_int_eq(checkpoint_sign(GO_SKEY, "a\xff", 1, root_a, &s, &why),
	    HEGN_ERR_INVALID);
	ck_assert_ptr_null(s);
	/* A UTF-8 origin is fine. */
	ck_assert_int_eq(checkpoint_sign(GO_SKEY, "ringsted.dk/revision-\xc3\xa6",
	    1, root_a, &s, &why), 0);
	ck_assert_int_eq(verify(GO_VKEY, s, &why), 0);
	free(s);
}
END_TEST

static Suite *
checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_known_answer);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_tampering);
	tcase_add_test(tc, test_note_syntax);
	tcase_add_test(tc, test_key_strings);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(checkpoint_suite)
