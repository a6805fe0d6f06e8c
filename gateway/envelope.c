/*
 * envelope: CMS SignedData and (Auth)EnvelopedData with OpenSSL 3.0.
 *
 * docs/formats.md describes the result byte for byte; keep it in step.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "envelope.h"
#include "err.h"
#include "pki.h"
#include "util.h"

/* PSS salt length for SHA-256: larger salts break gpgsm (see design.md). */
#define PSS_SALTLEN 32

/* contentIdentifier: what the gateway puts there is a message id. */
#define CONTENT_ID_MAX 64

struct envelope_signed {
	uint8_t *content;
	size_t len;
	X509 *signer;
	char *content_id;
	time_t signing_time;
};

static int strip_certs(const struct pki *, const uint8_t *, size_t, struct buf *,
    STACK_OF(X509) **);

/*
 * Parse a whole DER ContentInfo.  Trailing bytes are refused: a second
 * object glued behind the first must not ride along unverified.
 */
static int
parse_cms(const uint8_t *der, size_t len, CMS_ContentInfo **out, struct why *why)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	int r;

	*out = NULL;
	if (der == NULL || len == 0) {
		r = why_set(why, HEGN_ERR_INVALID, "CMS object is empty");
		goto out;
	}
	if (len > ENVELOPE_MAX_DER) {
		r = why_set(why, HEGN_ERR_TOO_LARGE,
		    "CMS object of %zu bytes exceeds the limit of %u bytes",
		    len, ENVELOPE_MAX_DER);
		goto out;
	}
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_INVALID, "not a DER CMS ContentInfo");
		goto out;
	}
	if (p != der + len) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "CMS object is followed by %zu bytes of trailing data",
		    (size_t)(der + len - p));
		goto out;
	}
	*out = cms;
	cms = NULL;
	r = 0;
out:
	CMS_ContentInfo_free(cms);
	return r;
}

/* Nesting followed by the certificate count below; OpenSSL's own limit is 30. */
#define DER_MAX_DEPTH 32

/* Skip one BER element at *pp, of definite or indefinite length; 0 or -1. */
static int
der_skip(const unsigned char **pp, const unsigned char *end, int depth)
{
	const unsigned char *p = *pp;
	long len;
	int tag, xclass, ret;

	if (depth > DER_MAX_DEPTH || p >= end)
		return -1;
	ret = ASN1_get_object(&p, &len, &tag, &xclass, (long)(end - p));
	if (ret & 0x80)
		return -1;
	if (ret == (V_ASN1_CONSTRUCTED | 1)) {
		/* Indefinite: elements up to the end-of-contents octets. */
		while (!(end - p >= 2 && p[0] == 0 && p[1] == 0))
			if (der_skip(&p, end, depth + 1) != 0)
				return -1;
		p += 2;
	} else
		p += len;
	*pp = p;
	return 0;
}

/*
 * Enter the constructed element at *pp if it has the tag and class: *pp at
 * its first child, *inner_end where its contents end (end itself for an
 * indefinite length, whose end-of-contents the caller does not need).
 */
static int
der_enter(const unsigned char **pp, const unsigned char *end, int want_tag,
    int want_class, const unsigned char **inner_end)
{
	const unsigned char *p = *pp;
	long len;
	int tag, xclass, ret;

	if (p >= end)
		return -1;
	ret = ASN1_get_object(&p, &len, &tag, &xclass, (long)(end - p));
	if ((ret & 0x80) || !(ret & V_ASN1_CONSTRUCTED) || tag != want_tag ||
	    xclass != want_class)
		return -1;
	*inner_end = ret == (V_ASN1_CONSTRUCTED | 1) ? end : p + len;
	*pp = p;
	return 0;
}

/*
 * The number of certificates in a SignedData, read from the BER headers
 * alone: d2i decodes every certificate and caches its extensions (about
 * 0.1 ms each), so a body full of certificates is refused before that.
 * -1 when the layout is not a SignedData's (d2i then decides).
 */
static int
count_certs(const uint8_t *der, size_t len)
{
	const unsigned char *p = der, *end = der + len, *e, *q;
	long clen;
	int tag, xclass, ret, i, n = 0;

	if (der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &end) != 0 ||
	    der_skip(&p, end, 1) != 0 ||                 /* contentType */
	    der_enter(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &end) != 0 ||
	    der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &end) != 0)
		goto bad;
	for (i = 0; i < 3; i++)                          /* version, digests, content */
		if (der_skip(&p, end, 3) != 0)
			goto bad;
	q = p;
	ret = p < end ? ASN1_get_object(&q, &clen, &tag, &xclass, (long)(end - p)) : 0x80;
	if ((ret & 0x80) || tag != 0 || xclass != V_ASN1_CONTEXT_SPECIFIC)
		goto none;
	if (der_enter(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &e) != 0)
		goto bad;
	while (p < e && !(e - p >= 2 && p[0] == 0 && p[1] == 0)) {
		if (der_skip(&p, e, 4) != 0)
			goto bad;
		n++;
	}
none:
	ERR_clear_error();
	return n;
bad:
	ERR_clear_error();
	return -1;
}

/* Copy what a memory BIO holds into a fresh malloc'd buffer. */
static int
bio_to_buf(BIO *bio, struct buf *out, struct why *why)
{
	char *data = NULL;
	long n;

	out->data = NULL;
	out->len = 0;
	n = BIO_get_mem_data(bio, &data);
	if (n < 0)
		return why_set(why, HEGN_ERR_CRYPTO, "cannot read CMS output");
	/* One spare byte so an empty result still has a valid pointer. */
	if ((out->data = malloc((size_t)n + 1)) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "out of memory for %ld bytes", n);
	if (n > 0)
		memcpy(out->data, data, (size_t)n);
	out->data[n] = '\0';
	out->len = (size_t)n;
	return 0;
}

/*
 * The DER of cms in a fresh malloc'd buffer.  OpenSSL 3.0's encoder ignores
 * a failed allocation while it sorts a SET OF (the signed attributes) and
 * goes on, leaving the set out: the bytes written then fall short of the
 * length the first pass computed.  i2d_CMS_bio cannot tell; this can.
 */
static int
cms_der(CMS_ContentInfo *cms, struct buf *out, struct why *why)
{
	unsigned char *p;
	int len, n;

	out->data = NULL;
	out->len = 0;
	if ((len = i2d_CMS_ContentInfo(cms, NULL)) <= 0)
		return why_set(why, HEGN_ERR_CRYPTO, "cannot encode CMS output");
	if ((out->data = malloc((size_t)len)) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "out of memory for %d bytes", len);
	p = out->data;
	n = i2d_CMS_ContentInfo(cms, &p);
	if (n != len || p - out->data != len) {
		free(out->data);
		out->data = NULL;
		return why_set(why, HEGN_ERR_CRYPTO, "cannot encode CMS output");
	}
	out->len = (size_t)len;
	return 0;
}

static int
valid_content_id(const uint8_t *s, size_t len)
{
	size_t i;

	if (len < 1 || len > CONTENT_ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

static int
set_rsa_pss(EVP_PKEY_CTX *pctx)
{
	if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALTLEN) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
		return -1;
	return 0;
}

/*
 * The signature algorithm of si, as CMS_final writes it from the signing
 * context: rsaEncryption for RSA PKCS #1 v1.5 (RFC 3370 section 3.2),
 * RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 4056),
 * ecdsa-with-SHA256 (RFC 5753).  Signing the attributes without the content
 * (envelope_sign_digest) skips the step of CMS_final that writes it;
 * CMS_SignerInfo_verify reads it back, so a wrong one fails there, and
 * test_envelope compares it with CMS_final's.
 */
static int
set_sig_alg(CMS_SignerInfo *si, EVP_PKEY *key, enum envelope_padding padding)
{
	X509_ALGOR *alg = NULL, *mgf1_md = NULL;
	RSA_PSS_PARAMS *pss = NULL;
	ASN1_STRING *inner = NULL, *params = NULL;
	int ok = 0, snid;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &alg);
	if (alg == NULL)
		return 0;
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		return OBJ_find_sigid_by_algs(&snid, NID_sha256, EVP_PKEY_get_base_id(key)) &&
		    X509_ALGOR_set0(alg, OBJ_nid2obj(snid), V_ASN1_UNDEF, NULL);
	}
	if (padding != ENVELOPE_PSS)
		return X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_NULL, NULL);
	if ((pss = RSA_PSS_PARAMS_new()) == NULL ||
	    (pss->hashAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pss->maskGenAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pss->saltLength = ASN1_INTEGER_new()) == NULL ||
	    (mgf1_md = X509_ALGOR_new()) == NULL)
		goto out;
	/* SHA-256 with NULL parameters, as OpenSSL writes them here. */
	if (X509_ALGOR_set0(pss->hashAlgorithm, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) != 1 ||
	    X509_ALGOR_set0(mgf1_md, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) != 1 ||
	    ASN1_INTEGER_set(pss->saltLength, PSS_SALTLEN) != 1 ||
	    ASN1_item_pack(mgf1_md, ASN1_ITEM_rptr(X509_ALGOR), &inner) == NULL ||
	    X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE,
	    inner) != 1)
		goto out;
	inner = NULL;
	if (ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &params) == NULL ||
	    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, params) != 1)
		goto out;
	params = NULL;
	ok = 1;
out:
	ASN1_STRING_free(inner);
	ASN1_STRING_free(params);
	X509_ALGOR_free(mgf1_md);
	RSA_PSS_PARAMS_free(pss);
	return ok;
}

int
envelope_sign_digest(EVP_PKEY *key, X509 *cert, enum envelope_padding padding,
    const uint8_t digest[32], const char *content_id, struct buf *out, struct why *why)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	EVP_PKEY_CTX *pctx;
	int r, flags = CMS_PARTIAL | CMS_BINARY | CMS_DETACHED | CMS_NOCERTS;

	out->data = NULL;
	out->len = 0;
	if (key == NULL || cert == NULL || digest == NULL) {
		r = why_set(why, HEGN_ERR_INTERNAL, "envelope_sign: no key or certificate");
		goto out;
	}
	if (content_id != NULL &&
	    !valid_content_id((const uint8_t *)content_id, strlen(content_id))) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "content identifier must be 1..%d printable characters",
		    CONTENT_ID_MAX);
		goto out;
	}
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL ||
	    CMS_set_detached(cms, 1) != 1)
		goto crypto;
	/*
	 * No SMIMECapabilities: the signed attributes are exactly those
	 * listed in docs/formats.md.  CMS_KEY_PARAM leaves the signing
	 * context open so the RSA padding can be chosen.
	 */
	if ((si = CMS_add1_signer(cms, cert, key, EVP_sha256(),
	    CMS_KEY_PARAM | CMS_NOSMIMECAP | CMS_NOCERTS)) == NULL)
		goto crypto;
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA && padding == ENVELOPE_PSS) {
		if ((pctx = CMS_SignerInfo_get0_pkey_ctx(si)) == NULL ||
		    set_rsa_pss(pctx) != 0)
			goto crypto;
	}
	/*
	 * What CMS_final adds from the content, added from its digest; the
	 * signing time comes with the signature.
	 */
	if (CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
	    OBJ_nid2obj(NID_pkcs7_data), -1) != 1 ||
	    CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
	    digest, 32) != 1)
		goto crypto;
	if (content_id != NULL &&
	    CMS_signed_add1_attr_by_NID(si, NID_id_smime_aa_contentIdentifier,
	    V_ASN1_OCTET_STRING, content_id, (int)strlen(content_id)) != 1)
		goto crypto;
	if (set_sig_alg(si, key, padding) != 1 || CMS_SignerInfo_sign(si) != 1)
		goto crypto;
	/*
	 * OpenSSL 3.0 can return a signature that does not verify: an
	 * allocation failure while it reads the PSS parameters back from the
	 * signing context is taken for "the defaults" (tests/unit/test_faults.c
	 * finds one).  Verifying costs one public-key operation; a signature
	 * nobody can verify would reach the recipient as a forgery.
	 */
	if (CMS_SignerInfo_verify(si) != 1)
		goto crypto;
	r = cms_der(cms, out, why);
	goto out;
crypto:
	r = why_set(why, HEGN_ERR_CRYPTO, "cannot create CMS signature");
	why_openssl(why);
out:
	CMS_ContentInfo_free(cms);
	return r;
}

/*
 * Whether cms is what envelope_sign_digest makes for a content whose
 * SHA-256 is digest: a detached SignedData over id-data with one signer,
 * cert, whose messageDigest attribute is digest.
 */
static int
signed_for(CMS_ContentInfo *cms, X509 *cert, const uint8_t digest[32])
{
	STACK_OF(CMS_SignerInfo) *sis;
	CMS_SignerInfo *si;
	const ASN1_OCTET_STRING *md;

	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data ||
	    CMS_is_detached(cms) != 1 || (sis = CMS_get0_SignerInfos(cms)) == NULL ||
	    sk_CMS_SignerInfo_num(sis) != 1)
		return 0;
	si = sk_CMS_SignerInfo_value(sis, 0);
	if (CMS_SignerInfo_cert_cmp(si, cert) != 0)
		return 0;
	md = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_messageDigest), -3,
	    V_ASN1_OCTET_STRING);
	return md != NULL && ASN1_STRING_length(md) == 32 &&
	    memcmp(ASN1_STRING_get0_data(md), digest, 32) == 0;
}

int
envelope_attach(const uint8_t *detached, size_t dlen, X509 *cert, STACK_OF(X509) *chain,
    const uint8_t *content, size_t len, const uint8_t digest[32], struct buf *out,
    struct why *why)
{
	CMS_ContentInfo *cms = NULL;
	ASN1_OCTET_STRING **pos = NULL;
	int r, i;

	out->data = NULL;
	out->len = 0;
	if (cert == NULL || (content == NULL && len != 0) || digest == NULL) {
		r = why_set(why, HEGN_ERR_INTERNAL, "envelope_attach: no certificate or content");
		goto out;
	}
	if (len > ENVELOPE_MAX_DER) {
		r = why_set(why, HEGN_ERR_TOO_LARGE,
		    "content of %zu bytes is too large to sign", len);
		goto out;
	}
	if ((r = parse_cms(detached, dlen, &cms, why)) != 0) {
		r = why_prefix(why, HEGN_ERR_CRYPTO, "the signature made");
		goto out;
	}
	/*
	 * The signature is taken for this content only when it is what
	 * envelope_sign_digest makes for it: one signer, this certificate's,
	 * over id-data with this content's digest (the caller's, computed for
	 * the request: the content is not hashed twice).
	 */
	if (!signed_for(cms, cert, digest)) {
		r = why_set(why, HEGN_ERR_CRYPTO,
		    "the signature made is not one over this content by this certificate");
		goto out;
	}
	if (CMS_add1_cert(cms, cert) != 1)
		goto crypto;
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++)
		if (CMS_add1_cert(cms, sk_X509_value(chain, i)) != 1)
			goto crypto;
	if (CMS_set_detached(cms, 0) != 1 || (pos = CMS_get0_content(cms)) == NULL ||
	    *pos == NULL || ASN1_OCTET_STRING_set(*pos, len == 0 ? (const unsigned char *)"" :
	    content, (int)len) != 1)
		goto crypto;
	r = cms_der(cms, out, why);
	goto out;
crypto:
	r = why_set(why, HEGN_ERR_CRYPTO, "cannot create CMS signature");
	why_openssl(why);
out:
	/* The content's copy inside cms is the citizen's data: wiped, not just freed. */
	if (pos != NULL && *pos != NULL && ASN1_STRING_length(*pos) > 0)
		OPENSSL_cleanse((void *)ASN1_STRING_get0_data(*pos), (size_t)ASN1_STRING_length(*pos));
	CMS_ContentInfo_free(cms);
	return r;
}

int
envelope_sign(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    enum envelope_padding padding, const uint8_t *content, size_t len,
    const char *content_id, struct buf *out, struct why *why)
{
	struct buf detached = { 0 };
	uint8_t digest[32];
	int r;

	out->data = NULL;
	out->len = 0;
	if (key == NULL || cert == NULL || (content == NULL && len != 0))
		return why_set(why, HEGN_ERR_INTERNAL, "envelope_sign: no key or certificate");
	if (len > ENVELOPE_MAX_DER)
		return why_set(why, HEGN_ERR_TOO_LARGE,
		    "content of %zu bytes is too large to sign", len);
	util_sha256(content, len, digest);
	if ((r = envelope_sign_digest(key, cert, padding, digest, content_id, &detached,
	    why)) == 0)
		r = envelope_attach(detached.data, detached.len, cert, chain, content, len, digest,
		    out, why);
	buf_free(&detached, 0);
	return r;
}

/*
 * The key-encryption algorithm identifiers envelope_seal asks for, as DER:
 * RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 A.2.1, RFC 4055), and
 * dhSinglePass-stdDH-sha256kdf-scheme with id-aes256-wrap (RFC 5753), the
 * wrap OpenSSL picks for a 256-bit content key.
 */
static const uint8_t kek_rsa_oaep_sha256[] = {
	0x30, 0x38, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
	0x07, 0x30, 0x2b, 0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09,
	0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0b, 0x06,
	0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
};
static const uint8_t kek_ecdh_sha256kdf_aes256wrap[] = {
	0x30, 0x15, 0x06, 0x06, 0x2b, 0x81, 0x04, 0x01, 0x0b, 0x01, 0x30, 0x0b,
	0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2d,
};

/*
 * OpenSSL 3.0 writes the key-encryption algorithm of a recipient from
 * digest names it reads back from the key context, and an allocation
 * failure in that lookup is taken for "no digest", i.e. the SHA-1 default:
 * the identifier then names SHA-1 while SHA-256 was used, and the recipient
 * cannot open the message (tests/unit/test_faults.c finds one).  So the
 * identifier written is compared with the one asked for.
 */
static int
kek_as_asked(CMS_RecipientInfo *ri, int rsa)
{
	X509_ALGOR *alg = NULL;
	unsigned char *der = NULL;
	const uint8_t *want = rsa ? kek_rsa_oaep_sha256 : kek_ecdh_sha256kdf_aes256wrap;
	size_t want_len = rsa ? sizeof(kek_rsa_oaep_sha256) :
	    sizeof(kek_ecdh_sha256kdf_aes256wrap);
	int n, same;

	if (rsa ? CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) != 1 :
	    CMS_RecipientInfo_kari_get0_alg(ri, &alg, NULL) != 1)
		return 0;
	if (alg == NULL || (n = i2d_X509_ALGOR(alg, &der)) <= 0)
		return 0;
	same = (size_t)n == want_len && memcmp(der, want, want_len) == 0;
	OPENSSL_free(der);
	return same;
}

int
envelope_seal(X509 *recipient, enum envelope_cipher cipher,
    const uint8_t *content, size_t len, int inner_signed, struct buf *out,
    struct why *why)
{
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;
	EVP_PKEY *pub;
	const EVP_CIPHER *evp;
	BIO *in = NULL;
	int r, flags = CMS_PARTIAL | CMS_BINARY, rsa;

	out->data = NULL;
	out->len = 0;
	if (recipient == NULL || (content == NULL && len != 0)) {
		r = why_set(why, HEGN_ERR_INTERNAL, "envelope_seal: no recipient");
		goto out;
	}
	if (len > ENVELOPE_MAX_DER) {
		r = why_set(why, HEGN_ERR_TOO_LARGE,
		    "content of %zu bytes is too large to seal", len);
		goto out;
	}
	if ((pub = X509_get0_pubkey(recipient)) == NULL) {
		r = why_set(why, HEGN_ERR_CERT,
		    "recipient certificate has no usable public key");
		goto out;
	}
	rsa = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA;
	if (!rsa && EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC) {
		r = why_set(why, HEGN_ERR_UNSUPPORTED,
		    "recipient key type %s cannot receive CMS messages",
		    OBJ_nid2sn(EVP_PKEY_get_base_id(pub)));
		goto out;
	}
	switch (cipher) {
	case ENVELOPE_AES256_GCM:
		/* An AEAD cipher makes OpenSSL build AuthEnvelopedData. */
		evp = EVP_aes_256_gcm();
		break;
	case ENVELOPE_AES256_CBC:
		evp = EVP_aes_256_cbc();
		break;
	default:
		r = why_set(why, HEGN_ERR_INTERNAL, "unknown content cipher %d",
		    (int)cipher);
		goto out;
	}
	/* As CMS_sign, CMS_encrypt ignores a failure to attach the content. */
	if ((cms = CMS_encrypt(NULL, NULL, evp, flags)) == NULL ||
	    CMS_set_detached(cms, 0) != 1)
		goto crypto;
	/*
	 * RSA: OAEP with SHA-256 and MGF1-SHA-256, never PKCS#1 v1.5
	 * (Bleichenbacher).  EC: ephemeral-static ECDH (kari) with the
	 * X9.63 KDF over SHA-256 rather than OpenSSL's default SHA-1.
	 */
	if ((ri = CMS_add1_recipient_cert(cms, recipient, CMS_KEY_PARAM)) == NULL ||
	    (pctx = CMS_RecipientInfo_get0_pkey_ctx(ri)) == NULL)
		goto crypto;
	if (rsa) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
			goto crypto;
	} else if (EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) <= 0)
		goto crypto;
	if (inner_signed &&
	    CMS_set1_eContentType(cms, OBJ_nid2obj(NID_pkcs7_signed)) != 1)
		goto crypto;
	if ((in = BIO_new_mem_buf(len == 0 ? "" : (const void *)content,
	    (int)len)) == NULL)
		goto crypto;
	if (CMS_final(cms, in, NULL, flags) != 1 || !kek_as_asked(ri, rsa))
		goto crypto;
	r = cms_der(cms, out, why);
	goto out;
crypto:
	r = why_set(why, HEGN_ERR_CRYPTO, "cannot encrypt CMS message");
	why_openssl(why);
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return r;
}

int
envelope_open(EVP_PKEY *key, X509 *cert, const uint8_t *der, size_t len,
    struct buf *out, struct why *why)
{
	CMS_ContentInfo *cms = NULL;
	BIO *bout = NULL;
	int r, nid;

	out->data = NULL;
	out->len = 0;
	if (key == NULL || cert == NULL) {
		r = why_set(why, HEGN_ERR_INTERNAL, "envelope_open: no key or certificate");
		goto out;
	}
	if ((r = parse_cms(der, len, &cms, why)) != 0)
		goto out;
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "CMS object is %s, not EnvelopedData or AuthEnvelopedData",
		    OBJ_nid2ln(nid));
		goto out;
	}
	/* Decrypted content is secret: the secure BIO wipes it on free. */
	if ((bout = BIO_new(BIO_s_secmem())) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	/*
	 * The certificate restricts decryption to the RecipientInfo issued
	 * to it; without CMS_DEBUG_DECRYPT a failed key transport continues
	 * with a random key, so the caller learns nothing about which step
	 * failed (Bleichenbacher/MMA).
	 */
	if (CMS_decrypt(cms, key, cert, NULL, bout, CMS_BINARY) != 1) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_DECRYPT,
		    "message is not addressed to this key or is damaged");
		goto out;
	}
	r = bio_to_buf(bout, out, why);
out:
	BIO_free(bout);
	CMS_ContentInfo_free(cms);
	return r;
}

static int
digest_is_weak(int nid)
{
	switch (nid) {
	case NID_md2:
	case NID_md4:
	case NID_md5:
	case NID_md5_sha1:
	case NID_mdc2:
	case NID_ripemd160:
	case NID_sha1:
	case NID_sha224:
		return 1;
	default:
		return 0;
	}
}

static int
digest_is_strong(int nid)
{
	return nid == NID_sha256 || nid == NID_sha384 || nid == NID_sha512;
}

/* Accept nid as a digest of the signature, or say why not. */
static int
check_digest(int nid, const char *where, int flags, struct why *why)
{
	if (digest_is_strong(nid))
		return 0;
	if (nid == NID_sha1 && (flags & ENVELOPE_VERIFY_LEGACY_SHA1))
		return 0;
	if (digest_is_weak(nid))
		return why_set(why, HEGN_ERR_SIGNATURE,
		    "signature uses a weak digest (%s in %s)", OBJ_nid2sn(nid), where);
	return why_set(why, HEGN_ERR_UNSUPPORTED,
	    "signature digest %s in %s is not supported",
	    nid == NID_undef ? "(unknown)" : OBJ_nid2sn(nid), where);
}

/*
 * The digests named in RSASSA-PSS parameters; an absent hash or mask
 * generation function means SHA-1 (RFC 4055), which is weak.
 */
static int
check_pss(const X509_ALGOR *sig, int dnid, int flags, struct why *why)
{
	RSA_PSS_PARAMS *pss = NULL;
	X509_ALGOR *mgfmd = NULL;
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, hnid, mnid, r;

	X509_ALGOR_get0(&obj, &ptype, &pval, sig);
	if (ptype != V_ASN1_SEQUENCE || (pss = ASN1_TYPE_unpack_sequence(
	    ASN1_ITEM_rptr(RSA_PSS_PARAMS), (const ASN1_TYPE *)sig->parameter)) == NULL) {
		ERR_clear_error();
		r = why_set(why, HEGN_ERR_INVALID, "RSASSA-PSS parameters are malformed");
		goto out;
	}
	hnid = pss->hashAlgorithm == NULL ? NID_sha1 :
	    OBJ_obj2nid(pss->hashAlgorithm->algorithm);
	if ((r = check_digest(hnid, "the PSS hash", flags, why)) != 0)
		goto out;
	if (hnid != dnid) {
		r = why_set(why, HEGN_ERR_SIGNATURE,
		    "PSS hash %s differs from the digest algorithm %s",
		    OBJ_nid2sn(hnid), OBJ_nid2sn(dnid));
		goto out;
	}
	mnid = NID_sha1;
	if (pss->maskGenAlgorithm != NULL) {
		if (OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1 ||
		    pss->maskGenAlgorithm->parameter == NULL ||
		    pss->maskGenAlgorithm->parameter->type != V_ASN1_SEQUENCE ||
		    (mgfmd = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR),
		    pss->maskGenAlgorithm->parameter)) == NULL) {
			ERR_clear_error();
			r = why_set(why, HEGN_ERR_UNSUPPORTED,
			    "PSS mask generation function is not MGF1");
			goto out;
		}
		mnid = OBJ_obj2nid(mgfmd->algorithm);
	}
	r = check_digest(mnid, "the PSS MGF1 hash", flags, why);
out:
	X509_ALGOR_free(mgfmd);
	RSA_PSS_PARAMS_free(pss);
	return r;
}

static int
check_algs(CMS_SignerInfo *si, int flags, struct why *why)
{
	X509_ALGOR *dig = NULL, *sig = NULL;
	int dnid, snid, mdnid = NID_undef, pknid = NID_undef, r;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	if (dig == NULL || sig == NULL)
		return why_set(why, HEGN_ERR_INVALID, "SignerInfo lacks its algorithms");
	dnid = OBJ_obj2nid(dig->algorithm);
	if ((r = check_digest(dnid, "the digest algorithm", flags, why)) != 0)
		return r;
	snid = OBJ_obj2nid(sig->algorithm);
	if (snid == NID_rsassaPss)
		return check_pss(sig, dnid, flags, why);
	/*
	 * A combined algorithm (sha1WithRSAEncryption, ecdsa-with-SHA1)
	 * names its own digest; OpenSSL uses the digestAlgorithm, but a
	 * weak name here is refused all the same.
	 */
	if (OBJ_find_sigid_algs(snid, &mdnid, &pknid) && mdnid != NID_undef)
		return check_digest(mdnid, "the signature algorithm", flags, why);
	return 0;
}

/* Classify a CMS_verify failure (signature only, certificates apart). */
static int
verify_failure(struct why *why)
{
	unsigned long e;
	int notfound = 0, nocontent = 0;

	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_LIB(e) != ERR_LIB_CMS)
			continue;
		if (ERR_GET_REASON(e) == CMS_R_SIGNER_CERTIFICATE_NOT_FOUND)
			notfound = 1;
		if (ERR_GET_REASON(e) == CMS_R_NO_CONTENT)
			nocontent = 1;
	}
	if (notfound)
		return why_set(why, HEGN_ERR_CERT,
		    "the signer's certificate is not included in the SignedData");
	if (nocontent)
		return why_set(why, HEGN_ERR_INVALID, "SignedData has no content");
	return why_set(why, HEGN_ERR_SIGNATURE,
	    "signature does not verify: content or signature altered");
}

static int
get_content_id(CMS_SignerInfo *si, char **out, struct why *why)
{
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	int loc;

	*out = NULL;
	loc = CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_contentIdentifier, -1);
	if (loc < 0)
		return 0;
	if (CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_contentIdentifier, loc) >= 0)
		return why_set(why, HEGN_ERR_INVALID,
		    "SignedData has more than one contentIdentifier attribute");
	attr = CMS_signed_get_attr(si, loc);
	if (X509_ATTRIBUTE_count(attr) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL ||
	    t->type != V_ASN1_OCTET_STRING)
		return why_set(why, HEGN_ERR_INVALID,
		    "contentIdentifier attribute is not one OCTET STRING");
	/* It becomes a message id: refuse what could not be one. */
	if (!valid_content_id(ASN1_STRING_get0_data(t->value.octet_string),
	    (size_t)ASN1_STRING_length(t->value.octet_string)))
		return why_set(why, HEGN_ERR_INVALID,
		    "contentIdentifier is not 1..%d printable characters",
		    CONTENT_ID_MAX);
	if ((*out = strndup((const char *)ASN1_STRING_get0_data(t->value.octet_string),
	    (size_t)ASN1_STRING_length(t->value.octet_string))) == NULL)
		return why_set(why, HEGN_ERR_NOMEM, "out of memory");
	return 0;
}

static int
get_signing_time(CMS_SignerInfo *si, time_t *out, struct why *why)
{
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	struct tm tm;
	int loc;

	*out = 0;
	loc = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	if (loc < 0)
		return 0;
	if (CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, loc) >= 0)
		return why_set(why, HEGN_ERR_INVALID,
		    "SignedData has more than one signingTime attribute");
	attr = CMS_signed_get_attr(si, loc);
	if (X509_ATTRIBUTE_count(attr) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL ||
	    (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME) ||
	    !ASN1_TIME_check((const ASN1_TIME *)t->value.asn1_string) ||
	    !ASN1_TIME_to_tm((const ASN1_TIME *)t->value.asn1_string, &tm)) {
		ERR_clear_error();
		return why_set(why, HEGN_ERR_INVALID, "signingTime attribute is malformed");
	}
	*out = timegm(&tm);
	return 0;
}

/*
 * The one attribute of type nid in the signed attributes, with exactly one
 * value; *out NULL when it is absent and not required.
 */
static int
one_attr(CMS_SignerInfo *si, int nid, const char *name, int required,
    ASN1_TYPE **out, struct why *why)
{
	X509_ATTRIBUTE *attr;
	int loc, n;

	*out = NULL;
	if ((loc = CMS_signed_get_attr_by_NID(si, nid, -1)) < 0) {
		if (required)
			return why_set(why, HEGN_ERR_INVALID,
			    "signed attribute %s is missing", name);
		return 0;
	}
	if (CMS_signed_get_attr_by_NID(si, nid, loc) >= 0)
		return why_set(why, HEGN_ERR_INVALID,
		    "SignedData has more than one %s attribute", name);
	attr = CMS_signed_get_attr(si, loc);
	if ((n = X509_ATTRIBUTE_count(attr)) != 1)
		return why_set(why, HEGN_ERR_INVALID,
		    "%s attribute has %d values, not one", name, n);
	if ((*out = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL)
		return why_set(why, HEGN_ERR_INVALID, "%s attribute is malformed", name);
	return 0;
}

/* The messageDigest attribute against the content as received. */
static int
check_message_digest(CMS_ContentInfo *cms, CMS_SignerInfo *si, const ASN1_TYPE *t,
    const uint8_t *content, size_t content_len, struct why *why)
{
	ASN1_OCTET_STRING **pos;
	X509_ALGOR *dig = NULL;
	const EVP_MD *md;
	unsigned char mval[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	int vlen, r;

	if (t->type != V_ASN1_OCTET_STRING || t->value.octet_string == NULL)
		return why_set(why, HEGN_ERR_INVALID,
		    "messageDigest attribute is not an OCTET STRING");
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	/* check_algs() has admitted only digests OpenSSL knows. */
	if (dig == NULL || (md = EVP_get_digestbyobj(dig->algorithm)) == NULL)
		return why_set(why, HEGN_ERR_UNSUPPORTED, "signature digest is not supported");
	vlen = ASN1_STRING_length(t->value.octet_string);
	if (vlen != EVP_MD_get_size(md))
		return why_set(why, HEGN_ERR_INVALID,
		    "messageDigest attribute holds %d bytes, a %s digest has %d",
		    vlen, EVP_MD_get0_name(md), EVP_MD_get_size(md));
	if (content == NULL) {
		if ((pos = CMS_get0_content(cms)) == NULL || *pos == NULL)
			return why_set(why, HEGN_ERR_INVALID, "SignedData has no content");
		content = ASN1_STRING_get0_data(*pos);
		content_len = (size_t)ASN1_STRING_length(*pos);
	}
	if (EVP_Digest(content_len == 0 ? (const void *)"" : content, content_len,
	    mval, &mlen, md, NULL) != 1) {
		r = why_set(why, HEGN_ERR_CRYPTO, "cannot digest the signed content");
		why_openssl(why);
		return r;
	}
	if (mlen != (unsigned int)vlen ||
	    CRYPTO_memcmp(mval, ASN1_STRING_get0_data(t->value.octet_string), mlen) != 0)
		return why_set(why, HEGN_ERR_SIGNATURE, "signature does not verify: the "
		    "content does not match the signed messageDigest (content altered)");
	return 0;
}

/*
 * The signed attributes RFC 5652 section 11 rules on, before the signature:
 * exactly one contentType naming the eContentType, exactly one
 * messageDigest matching the content, at most one signingTime holding one
 * UTCTime or GeneralizedTime.  OpenSSL 3.0 counts contentType and
 * messageDigest and their values, but does not compare contentType with the
 * content's type nor look at signingTime's type; and when it refuses, it
 * says only that verification failed.  Checking here names the fault.
 */
static int
check_signed_attrs(CMS_ContentInfo *cms, CMS_SignerInfo *si,
    const uint8_t *content, size_t content_len, struct why *why)
{
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *ct, *md, *st;
	const ASN1_OBJECT *etype;
	char got[80], want[80];
	int i, n, r;

	/* No signed attributes: the signature covers the content itself. */
	if ((n = CMS_signed_get_attr_count(si)) < 0)
		return 0;
	if (n == 0)
		return why_set(why, HEGN_ERR_INVALID,
		    "SignedData has an empty set of signed attributes");
	for (i = 0; i < n; i++) {
		attr = CMS_signed_get_attr(si, i);
		if (X509_ATTRIBUTE_count(attr) < 1) {
			OBJ_obj2txt(got, sizeof(got), X509_ATTRIBUTE_get0_object(attr), 0);
			return why_set(why, HEGN_ERR_INVALID,
			    "signed attribute %s has no value", got);
		}
	}
	if ((r = one_attr(si, NID_pkcs9_contentType, "contentType", 1, &ct, why)) != 0 ||
	    (r = one_attr(si, NID_pkcs9_messageDigest, "messageDigest", 1, &md, why)) != 0 ||
	    (r = one_attr(si, NID_pkcs9_signingTime, "signingTime", 0, &st, why)) != 0)
		return r;
	if (ct->type != V_ASN1_OBJECT || ct->value.object == NULL)
		return why_set(why, HEGN_ERR_INVALID,
		    "contentType attribute is not an OBJECT IDENTIFIER");
	etype = CMS_get0_eContentType(cms);
	if (etype == NULL || OBJ_cmp(ct->value.object, etype) != 0) {
		OBJ_obj2txt(got, sizeof(got), ct->value.object, 0);
		if (etype == NULL)
			snprintf(want, sizeof(want), "(none)");
		else
			OBJ_obj2txt(want, sizeof(want), etype, 0);
		return why_set(why, HEGN_ERR_INVALID,
		    "contentType attribute %s differs from the content's type %s",
		    got, want);
	}
	if (st != NULL && ((st->type != V_ASN1_UTCTIME &&
	    st->type != V_ASN1_GENERALIZEDTIME) || st->value.asn1_string == NULL ||
	    !ASN1_TIME_check((const ASN1_TIME *)st->value.asn1_string))) {
		ERR_clear_error();
		return why_set(why, HEGN_ERR_INVALID,
		    "signingTime attribute is not a valid UTCTime or GeneralizedTime");
	}
	return check_message_digest(cms, si, md, content, content_len, why);
}

int
envelope_verify_opts(const struct pki *p, const uint8_t *der, size_t len,
    const uint8_t *content, size_t content_len, time_t at, int flags,
    struct envelope_signed **out, struct why *why)
{
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *certs = NULL;
	CMS_SignerInfo *si;
	struct envelope_signed *s = NULL;
	struct buf b = { 0 }, stripped = { 0 };
	BIO *dcont = NULL, *bout = NULL;
	X509 *signer = NULL;
	int r, nid, detached, ncerts;

	*out = NULL;
	if (p == NULL) {
		r = why_set(why, HEGN_ERR_INTERNAL, "envelope_verify: no trust configuration");
		goto out;
	}
	if (len <= ENVELOPE_MAX_DER && (ncerts = count_certs(der, len)) > ENVELOPE_MAX_CERTS) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "SignedData carries %d certificates, more than the %d accepted",
		    ncerts, ENVELOPE_MAX_CERTS);
		goto out;
	}
	/*
	 * The certificates apart, from the pki's parse cache, when the DER is
	 * plain enough to take them out (see "Certificates apart" at the end);
	 * anything else goes the whole way through OpenSSL as before.
	 */
	if ((flags & ENVELOPE_VERIFY_WHOLE) || strip_certs(p, der, len, &stripped, &certs) != 0 ||
	    parse_cms(stripped.data, stripped.len, &cms, NULL) != 0) {
		CMS_ContentInfo_free(cms);
		cms = NULL;
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
		if ((r = parse_cms(der, len, &cms, why)) != 0)
			goto out;
	}
	/* The parsed object has its own copy of everything: a large content is held once less. */
	buf_free(&stripped, 0);
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_pkcs7_signed) {
		r = why_set(why, HEGN_ERR_INVALID, "CMS object is %s, not SignedData",
		    OBJ_nid2ln(nid));
		goto out;
	}
	/*
	 * hegn signs only id-data; another type inside would be read as
	 * something its signer did not mean.
	 */
	if ((nid = OBJ_obj2nid(CMS_get0_eContentType(cms))) != NID_pkcs7_data) {
		r = why_set(why, HEGN_ERR_UNSUPPORTED,
		    "SignedData content type %s is not id-data",
		    nid == NID_undef ? "(unknown)" : OBJ_nid2ln(nid));
		goto out;
	}
	detached = CMS_is_detached(cms);
	if (content == NULL && detached) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "SignedData does not carry its content");
		goto out;
	}
	if (content != NULL && !detached) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "SignedData carries content although detached content was given");
		goto out;
	}
	if ((sis = CMS_get0_SignerInfos(cms)) == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "SignedData must have exactly one signer, it has %d",
		    sis == NULL ? 0 : sk_CMS_SignerInfo_num(sis));
		goto out;
	}
	if (certs == NULL && (certs = CMS_get1_certs(cms)) == NULL &&
	    (certs = sk_X509_new_null()) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (sk_X509_num(certs) > ENVELOPE_MAX_CERTS) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "SignedData carries %d certificates, more than the %d accepted",
		    sk_X509_num(certs), ENVELOPE_MAX_CERTS);
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	if ((r = check_algs(si, flags, why)) != 0 ||
	    (r = check_signed_attrs(cms, si, content, content_len, why)) != 0)
		goto out;

	if (content != NULL && (dcont = BIO_new_mem_buf(content_len == 0 ? "" :
	    (const void *)content, (int)content_len)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((bout = BIO_new(BIO_s_secmem())) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	/*
	 * The signature first, the certificate second: both must pass, and
	 * doing them apart tells an altered message from an expired or
	 * unknown certificate.  Certificates are validated only by
	 * pki_verify(), the same rules as for TLS clients (CRLs, time at,
	 * key usage).
	 */
	ERR_clear_error();
	if (CMS_verify(cms, certs, NULL, dcont, bout,
	    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		r = verify_failure(why);
		goto out;
	}
	CMS_SignerInfo_get0_algs(si, NULL, &signer, NULL, NULL);
	if (signer == NULL) {
		r = why_set(why, HEGN_ERR_CERT,
		    "the signer's certificate is not included in the SignedData");
		goto out;
	}
	if ((r = pki_verify(p, signer, certs, PKI_PURPOSE_SIGN, at, why)) != 0) {
		if (r != HEGN_ERR_CERT)
			goto out;
		r = why_prefix(why, HEGN_ERR_CERT, "signer certificate");
		goto out;
	}

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = get_content_id(si, &s->content_id, why)) != 0 ||
	    (r = get_signing_time(si, &s->signing_time, why)) != 0)
		goto out;
	if (X509_up_ref(signer) != 1) {
		r = why_set(why, HEGN_ERR_CRYPTO, "cannot reference signer certificate");
		goto out;
	}
	s->signer = signer;
	/*
	 * Everything else is read from cms: it goes before the content is
	 * copied out, so a large content is not held three times at once.
	 */
	CMS_ContentInfo_free(cms);
	cms = NULL;
	if ((r = bio_to_buf(bout, &b, why)) != 0)
		goto out;
	s->content = b.data;
	s->len = b.len;
	*out = s;
	s = NULL;
	r = 0;
out:
	ERR_clear_error();
	envelope_signed_free(s);
	sk_X509_pop_free(certs, X509_free);
	BIO_free(dcont);
	BIO_free(bout);
	CMS_ContentInfo_free(cms);
	buf_free(&stripped, 0);
	return r;
}

int
envelope_verify(const struct pki *p, const uint8_t *der, size_t len,
    time_t at, struct envelope_signed **out, struct why *why)
{
	return envelope_verify_opts(p, der, len, NULL, 0, at, 0, out, why);
}

int
envelope_verify_detached(const struct pki *p, const uint8_t *der, size_t len,
    const uint8_t *content, size_t content_len, time_t at,
    struct envelope_signed **out, struct why *why)
{
	*out = NULL;
	if (content == NULL)
		return why_set(why, HEGN_ERR_INVALID, "no detached content given");
	return envelope_verify_opts(p, der, len, content, content_len, at, 0,
	    out, why);
}

const uint8_t *
envelope_signed_content(const struct envelope_signed *s, size_t *len)
{
	*len = s->len;
	return s->content;
}

X509 *
envelope_signed_signer(const struct envelope_signed *s)
{
	return s->signer;
}

const char *
envelope_signed_content_id(const struct envelope_signed *s)
{
	return s->content_id;
}

time_t
envelope_signed_time(const struct envelope_signed *s)
{
	return s->signing_time;
}

void
envelope_signed_free(struct envelope_signed *s)
{
	if (s == NULL)
		return;
	/* bio_to_buf allocated it with malloc: OPENSSL_free would not match. */
	if (s->content != NULL) {
		OPENSSL_cleanse(s->content, s->len + 1);
		free(s->content);
	}
	X509_free(s->signer);
	free(s->content_id);
	free(s);
}

/*
 * The NID of a ContentInfo's contentType, read from the first bytes only:
 * SEQUENCE { OBJECT IDENTIFIER, ... }.  NID_undef for anything else.
 */
static int
peek_type(const uint8_t *der, size_t len)
{
	const unsigned char *q = der;
	ASN1_OBJECT *obj = NULL;
	long plen;
	int tag, xclass, ret, nid;

	if (der == NULL || len < 2 || len > ENVELOPE_MAX_DER)
		return NID_undef;
	ret = ASN1_get_object(&q, &plen, &tag, &xclass, (long)len);
	if ((ret & 0x80) || tag != V_ASN1_SEQUENCE ||
	    xclass != V_ASN1_UNIVERSAL || !(ret & V_ASN1_CONSTRUCTED)) {
		ERR_clear_error();
		return NID_undef;
	}
	if ((obj = d2i_ASN1_OBJECT(NULL, &q, (long)(len - (size_t)(q - der)))) == NULL) {
		ERR_clear_error();
		return NID_undef;
	}
	nid = OBJ_obj2nid(obj);
	ASN1_OBJECT_free(obj);
	return nid;
}

int
envelope_is_signed(const uint8_t *der, size_t len)
{
	return peek_type(der, len) == NID_pkcs7_signed;
}

int
envelope_is_enveloped(const uint8_t *der, size_t len)
{
	int nid = peek_type(der, len);

	return nid == NID_pkcs7_enveloped || nid == NID_id_smime_ct_authEnvelopedData;
}

/*
 * Certificates apart (performance, docs/performance.md).
 *
 * d2i_CMS_ContentInfo decodes every certificate a SignedData carries, and
 * OpenSSL 3.0 decodes each public key through its provider decoders: that
 * was most of the cost of reading a receipt, which carries the same chain
 * every time.  So the certificates field is cut out of the DER and its
 * certificates come from the pki's parse cache (keyed by each one's DER);
 * CMS_verify then finds the signer among exactly those certificates, and
 * pki_verify sees exactly those as untrusted, as before.  Only plain DER is
 * taken apart: definite lengths in minimal form, a ContentInfo holding a
 * SignedData and nothing after it, certificates that are all X.509 ones.
 * For anything else this returns -1 and the caller parses the whole.
 */

/* One TLV at *p (before end): its tag, class, content and where it ends. */
struct tlv {
	const uint8_t *start, *content, *end;
	long len;
	int tag, xclass, constructed;
};

static int
tlv_next(const uint8_t *p, const uint8_t *end, struct tlv *t)
{
	const unsigned char *q = p;
	int ret;

	memset(t, 0, sizeof(*t));
	if (p >= end)
		return -1;
	ret = ASN1_get_object(&q, &t->len, &t->tag, &t->xclass, (long)(end - p));
	if ((ret & 0x80) || (ret & 0x01) || t->len < 0 || (size_t)t->len > (size_t)(end - q)) {
		ERR_clear_error();
		return -1;
	}
	t->constructed = (ret & V_ASN1_CONSTRUCTED) != 0;
	/* Minimal DER: the header must be what ASN1_put_object would write. */
	if (ASN1_object_size(t->constructed, t->len, t->tag) - t->len != (int)(q - p)) {
		ERR_clear_error();
		return -1;
	}
	t->start = p;
	t->content = q;
	t->end = q + t->len;
	return 0;
}

static int
tlv_is(const struct tlv *t, int xclass, int tag, int constructed)
{
	return t->xclass == xclass && t->tag == tag && t->constructed == constructed;
}

/* A header of tag and content length len at *q, which moves past it. */
static void
put_header(uint8_t **q, int constructed, size_t len, int tag, int xclass)
{
	unsigned char *w = *q;

	ASN1_put_object(&w, constructed, (int)len, tag, xclass);
	*q = w;
}

static int
strip_certs(const struct pki *p, const uint8_t *der, size_t len, struct buf *out,
    STACK_OF(X509) **certs_out)
{
	static const uint8_t signed_data_oid[] = {
		0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02
	};
	STACK_OF(X509) *certs = NULL;
	struct tlv ci, oid, wrap, sd, f, c, certs_field;
	const uint8_t *end = der + len, *q;
	size_t sd_len, wrap_len, ci_len, total;
	uint8_t *w, *data = NULL;
	X509 *x = NULL;
	int i, r = -1;

	out->data = NULL;
	out->len = 0;
	*certs_out = NULL;
	if (der == NULL || len == 0 || len > ENVELOPE_MAX_DER || len > INT32_MAX)
		goto out;
	memset(&certs_field, 0, sizeof(certs_field));
	/* ContentInfo ::= SEQUENCE { id-signedData, [0] EXPLICIT SignedData }, nothing after. */
	if (tlv_next(der, end, &ci) != 0 || !tlv_is(&ci, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1) ||
	    ci.end != end ||
	    tlv_next(ci.content, ci.end, &oid) != 0 ||
	    (size_t)(oid.end - oid.start) != sizeof(signed_data_oid) ||
	    memcmp(oid.start, signed_data_oid, sizeof(signed_data_oid)) != 0 ||
	    tlv_next(oid.end, ci.end, &wrap) != 0 || !tlv_is(&wrap, V_ASN1_CONTEXT_SPECIFIC, 0, 1) ||
	    wrap.end != ci.end ||
	    tlv_next(wrap.content, wrap.end, &sd) != 0 ||
	    !tlv_is(&sd, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1) || sd.end != wrap.end)
		goto out;
	/* SignedData: version, digestAlgorithms, encapContentInfo, [0] certificates, ... */
	for (i = 0, q = sd.content; q < sd.end && i < 4; i++, q = f.end) {
		if (tlv_next(q, sd.end, &f) != 0)
			goto out;
		if (i == 3 && tlv_is(&f, V_ASN1_CONTEXT_SPECIFIC, 0, 1))
			certs_field = f;
	}
	if (certs_field.start == NULL)
		goto out;
	/*
	 * Only crls [1] or the signerInfos may follow.  A second [0] would,
	 * once the first is cut out, pass for the certificates of a DER that
	 * OpenSSL refuses whole (and its certificates escape the count).
	 */
	if (certs_field.end < sd.end && (tlv_next(certs_field.end, sd.end, &f) != 0 ||
	    (f.xclass == V_ASN1_CONTEXT_SPECIFIC && f.tag == 0)))
		goto out;
	if ((certs = sk_X509_new_null()) == NULL)
		goto out;
	for (q = certs_field.content; q < certs_field.end; q = c.end) {
		if (tlv_next(q, certs_field.end, &c) != 0 ||
		    !tlv_is(&c, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, 1) ||
		    pki_cert_from_der_cached(p, c.start, (size_t)(c.end - c.start), &x,
		    NULL) != 0)
			goto out;
		if (!sk_X509_push(certs, x))
			goto out;
		x = NULL;
	}
	/* The same DER without the certificates field, the three headers rewritten. */
	sd_len = (size_t)sd.len - (size_t)(certs_field.end - certs_field.start);
	wrap_len = (size_t)ASN1_object_size(1, (long)sd_len, V_ASN1_SEQUENCE);
	ci_len = (size_t)(oid.end - oid.start) + (size_t)ASN1_object_size(1, (long)wrap_len, 0);
	total = (size_t)ASN1_object_size(1, (long)ci_len, V_ASN1_SEQUENCE);
	if ((data = malloc(total)) == NULL)
		goto out;
	w = data;
	put_header(&w, 1, ci_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(w, oid.start, (size_t)(oid.end - oid.start));
	w += oid.end - oid.start;
	put_header(&w, 1, wrap_len, 0, V_ASN1_CONTEXT_SPECIFIC);
	put_header(&w, 1, sd_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(w, sd.content, (size_t)(certs_field.start - sd.content));
	w += certs_field.start - sd.content;
	memcpy(w, certs_field.end, (size_t)(sd.end - certs_field.end));
	w += sd.end - certs_field.end;
	if ((size_t)(w - data) != total)
		goto out;
	out->data = data;
	out->len = total;
	data = NULL;
	*certs_out = certs;
	certs = NULL;
	r = 0;
 out:
	free(data);
	X509_free(x);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return r;
}
