/*
 * testhostile: hostile CMS objects and certificates (test-only).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "envelope.h"
#include "testhostile.h"
#include "util.h"

/*
 * The signed attributes as OpenSSL encodes them to verify a signature
 * (CMS_Attributes_Verify in crypto/cms/cms_asn1.c): a SET OF Attribute in
 * the order received.
 */
typedef STACK_OF(X509_ATTRIBUTE) HOSTILE_ATTRS;
ASN1_ITEM_TEMPLATE(HOSTILE_ATTRS) =
	ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SET_ORDER, V_ASN1_SET, HOSTILE_ATTRS, X509_ATTRIBUTE)
static_ASN1_ITEM_TEMPLATE_END(HOSTILE_ATTRS)

const struct testhostile_case testhostile_cases[HOSTILE_NFAULTS] = {
	{ HOSTILE_NONE, "control", NULL },
	{ HOSTILE_ST_INTEGER, "signtime-integer", "signingTime" },
	{ HOSTILE_ST_OCTETS, "signtime-octets", "signingTime" },
	{ HOSTILE_ST_GARBLED, "signtime-garbled", "signingTime" },
	{ HOSTILE_ST_TWO_VALUES, "signtime-two-values", "signingTime attribute has 2 values" },
	{ HOSTILE_ST_TWO_ATTRS, "signtime-two-attrs", "more than one signingTime" },
	{ HOSTILE_CT_MISSING, "ct-missing", "contentType is missing" },
	{ HOSTILE_CT_TWO_VALUES, "ct-two-values", "contentType attribute has 2 values" },
	{ HOSTILE_CT_TWO_ATTRS, "ct-two-attrs", "more than one contentType" },
	{ HOSTILE_CT_MISMATCH, "ct-mismatch", "differs from the content's type" },
	{ HOSTILE_CT_NOT_OID, "ct-not-oid", "contentType attribute is not an OBJECT IDENTIFIER" },
	{ HOSTILE_MD_MISSING, "md-missing", "messageDigest is missing" },
	{ HOSTILE_MD_TWO_VALUES, "md-two-values", "messageDigest attribute has 2 values" },
	{ HOSTILE_MD_TWO_ATTRS, "md-two-attrs", "more than one messageDigest" },
	{ HOSTILE_MD_WRONG, "md-wrong", "does not match the signed messageDigest" },
	{ HOSTILE_MD_SHORT, "md-short", "messageDigest attribute holds 20 bytes" },
	{ HOSTILE_MD_NOT_OCTETS, "md-not-octets", "messageDigest attribute is not an OCTET STRING" },
	{ HOSTILE_ATTR_NO_VALUE, "attr-no-value", "has no value" },
	{ HOSTILE_ATTRS_EMPTY, "attrs-empty", "empty set of signed attributes" },
};

static void
del_all(CMS_SignerInfo *si, int nid)
{
	int loc;

	while ((loc = CMS_signed_get_attr_by_NID(si, nid, -1)) >= 0)
		X509_ATTRIBUTE_free(CMS_signed_delete_attr(si, loc));
}

/*
 * Replace every attribute nid by one holding the value (type1, v1, l1) and,
 * when type2 is not 0, a second value; type1 0 makes an empty SET of values.
 * A length of -1 passes an object (ASN1_OBJECT *) rather than bytes.
 */
static int
put(CMS_SignerInfo *si, int nid, int type1, const void *v1, int l1,
    int type2, const void *v2, int l2)
{
	X509_ATTRIBUTE *a;
	int ok;

	del_all(si, nid);
	if ((a = X509_ATTRIBUTE_create_by_NID(NULL, nid, type1, v1, l1)) == NULL)
		return -1;
	ok = (type2 == 0 || X509_ATTRIBUTE_set1_data(a, type2, v2, l2) == 1) &&
	    CMS_signed_add1_attr(si, a) == 1;
	X509_ATTRIBUTE_free(a);
	return ok ? 0 : -1;
}

/* Add one more attribute nid beside those there are. */
static int
add(CMS_SignerInfo *si, int nid, int type, const void *v, int l)
{
	return CMS_signed_add1_attr_by_NID(si, nid, type, v, l) == 1 ? 0 : -1;
}

/* The value of the (first) messageDigest attribute, 32 bytes. */
static int
digest_of(CMS_SignerInfo *si, unsigned char md[32])
{
	ASN1_OCTET_STRING *os;

	os = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_messageDigest), -1,
	    V_ASN1_OCTET_STRING);
	if (os == NULL || ASN1_STRING_length(os) != 32)
		return -1;
	memcpy(md, ASN1_STRING_get0_data(os), 32);
	return 0;
}

static int
apply(CMS_SignerInfo *si, enum testhostile_fault f)
{
	static const char t1[] = "261127120000Z", t2[] = "261127120001Z";
	ASN1_OBJECT *data = OBJ_nid2obj(NID_pkcs7_data);
	ASN1_OBJECT *signd = OBJ_nid2obj(NID_pkcs7_signed);
	unsigned char md[32], other[32];
	int n;

	if (digest_of(si, md) != 0)
		return -1;
	if (EVP_Digest("other content", 13, other, NULL, EVP_sha256(), NULL) != 1)
		return -1;
	switch (f) {
	case HOSTILE_NONE:
		return 0;
	case HOSTILE_ST_INTEGER:
		return put(si, NID_pkcs9_signingTime, V_ASN1_INTEGER, "\x01", 1, 0, NULL, 0);
	case HOSTILE_ST_OCTETS:
		return put(si, NID_pkcs9_signingTime, V_ASN1_OCTET_STRING, t1, 13, 0, NULL, 0);
	case HOSTILE_ST_GARBLED:
		return put(si, NID_pkcs9_signingTime, V_ASN1_UTCTIME, "hello world!Z", 13,
		    0, NULL, 0);
	case HOSTILE_ST_TWO_VALUES:
		return put(si, NID_pkcs9_signingTime, V_ASN1_UTCTIME, t1, 13,
		    V_ASN1_UTCTIME, t2, 13);
	case HOSTILE_ST_TWO_ATTRS:
		return add(si, NID_pkcs9_signingTime, V_ASN1_UTCTIME, t2, 13);
	case HOSTILE_CT_MISSING:
		del_all(si, NID_pkcs9_contentType);
		return 0;
	case HOSTILE_CT_TWO_VALUES:
		return put(si, NID_pkcs9_contentType, V_ASN1_OBJECT, data, -1,
		    V_ASN1_OBJECT, signd, -1);
	case HOSTILE_CT_TWO_ATTRS:
		return add(si, NID_pkcs9_contentType, V_ASN1_OBJECT, data, -1);
	case HOSTILE_CT_MISMATCH:
		return put(si, NID_pkcs9_contentType, V_ASN1_OBJECT, signd, -1, 0, NULL, 0);
	case HOSTILE_CT_NOT_OID:
		return put(si, NID_pkcs9_contentType, V_ASN1_OCTET_STRING,
		    "\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01", 9, 0, NULL, 0);
	case HOSTILE_MD_MISSING:
		del_all(si, NID_pkcs9_messageDigest);
		return 0;
	case HOSTILE_MD_TWO_VALUES:
		return put(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, md, 32,
		    V_ASN1_OCTET_STRING, other, 32);
	case HOSTILE_MD_TWO_ATTRS:
		return add(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, md, 32);
	case HOSTILE_MD_WRONG:
		return put(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, other, 32,
		    0, NULL, 0);
	case HOSTILE_MD_SHORT:
		return put(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, md, 20,
		    0, NULL, 0);
	case HOSTILE_MD_NOT_OCTETS:
		return put(si, NID_pkcs9_messageDigest, V_ASN1_INTEGER, "\x01", 1, 0, NULL, 0);
	case HOSTILE_ATTR_NO_VALUE:
		return put(si, NID_SMIMECapabilities, 0, NULL, 0, 0, NULL, 0);
	case HOSTILE_ATTRS_EMPTY:
		while ((n = CMS_signed_get_attr_count(si)) > 0)
			X509_ATTRIBUTE_free(CMS_signed_delete_attr(si, n - 1));
		return 0;
	default:
		return -1;
	}
}

static CMS_ContentInfo *
parse(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;

	return d2i_CMS_ContentInfo(NULL, &p, (long)len);
}

static int
encode(CMS_ContentInfo *cms, struct buf *out)
{
	unsigned char *der = NULL;
	int n;

	out->data = NULL;
	out->len = 0;
	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		return -1;
	if ((out->data = malloc((size_t)n)) == NULL) {
		OPENSSL_free(der);
		return -1;
	}
	memcpy(out->data, der, (size_t)n);
	out->len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

static CMS_SignerInfo *
first_signer(CMS_ContentInfo *cms)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);

	return sis == NULL || sk_CMS_SignerInfo_num(sis) < 1 ? NULL :
	    sk_CMS_SignerInfo_value(sis, 0);
}

/* The DER of si's signed attributes as OpenSSL verifies them; length or -1. */
static int
attrs_der(CMS_SignerInfo *si, unsigned char **out)
{
	STACK_OF(X509_ATTRIBUTE) *attrs;
	int i, n;

	*out = NULL;
	if ((attrs = sk_X509_ATTRIBUTE_new_null()) == NULL)
		return -1;
	for (i = 0; i < CMS_signed_get_attr_count(si); i++)
		sk_X509_ATTRIBUTE_push(attrs, CMS_signed_get_attr(si, i));
	n = ASN1_item_i2d((ASN1_VALUE *)attrs, out, ASN1_ITEM_rptr(HOSTILE_ATTRS));
	sk_X509_ATTRIBUTE_free(attrs);
	return n;
}

int
testhostile_attrs(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    const uint8_t *content, size_t len, enum testhostile_fault fault,
    struct buf *out)
{
	CMS_ContentInfo *cms = NULL, *again = NULL;
	CMS_SignerInfo *si;
	EVP_MD_CTX *mctx = NULL;
	struct buf signed_der = { 0 }, mid = { 0 };
	unsigned char *abuf = NULL, *sig = NULL;
	size_t slen = 0;
	int alen, r = -1;

	out->data = NULL;
	out->len = 0;
	if (envelope_sign(key, cert, chain, ENVELOPE_PKCS1, content, len, NULL,
	    &signed_der, NULL) != 0)
		goto out;
	if ((cms = parse(signed_der.data, signed_der.len)) == NULL ||
	    (si = first_signer(cms)) == NULL || apply(si, fault) != 0)
		goto out;
	/*
	 * Encoded and read back, the attributes are in the order the DER
	 * encoder sorted them, which is the order the verifier sees.
	 */
	if (encode(cms, &mid) != 0 || (again = parse(mid.data, mid.len)) == NULL ||
	    (si = first_signer(again)) == NULL)
		goto out;
	if ((alen = attrs_der(si, &abuf)) <= 0)
		goto out;
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(mctx, NULL, &slen, abuf, (size_t)alen) != 1 ||
	    (sig = malloc(slen)) == NULL ||
	    EVP_DigestSign(mctx, sig, &slen, abuf, (size_t)alen) != 1)
		goto out;
	if (ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig, (int)slen) != 1)
		goto out;
	r = encode(again, out);
out:
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(abuf);
	free(sig);
	buf_free(&signed_der, 0);
	buf_free(&mid, 0);
	CMS_ContentInfo_free(cms);
	CMS_ContentInfo_free(again);
	return r;
}

int
testhostile_sig_valid(const struct buf *der, X509 *cert)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	EVP_MD_CTX *mctx = NULL;
	ASN1_OCTET_STRING *sig;
	unsigned char *abuf = NULL;
	int alen, r = -1;

	if ((cms = parse(der->data, der->len)) == NULL || (si = first_signer(cms)) == NULL ||
	    (alen = attrs_der(si, &abuf)) <= 0)
		goto out;
	sig = CMS_SignerInfo_get0_signature(si);
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)) != 1)
		goto out;
	r = EVP_DigestVerify(mctx, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig),
	    abuf, (size_t)alen) == 1;
out:
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(abuf);
	CMS_ContentInfo_free(cms);
	return r;
}

int
testhostile_add_certs(const struct buf *der, STACK_OF(X509) *extra, struct buf *out)
{
	CMS_ContentInfo *cms;
	int i, r = -1;

	out->data = NULL;
	out->len = 0;
	if ((cms = parse(der->data, der->len)) == NULL)
		return -1;
	for (i = 0; i < sk_X509_num(extra); i++)
		if (CMS_add1_cert(cms, sk_X509_value(extra, i)) != 1)
			goto out;
	r = encode(cms, out);
out:
	CMS_ContentInfo_free(cms);
	return r;
}

/* Append n bytes to b (grown with realloc); aborts on exhaustion, as tests may. */
static void
put_bytes(struct buf *b, const void *p, size_t n)
{
	uint8_t *d;

	if ((d = realloc(b->data, b->len + n + 1)) == NULL)
		abort();
	b->data = d;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* A DER length field for n. */
static void
put_len(struct buf *b, size_t n)
{
	uint8_t l[9];
	size_t k = 0, v;
	int i;

	if (n < 0x80) {
		l[0] = (uint8_t)n;
		put_bytes(b, l, 1);
		return;
	}
	for (v = n; v > 0; v >>= 8)
		k++;
	l[0] = (uint8_t)(0x80 | k);
	for (i = 0; i < (int)k; i++)
		l[1 + i] = (uint8_t)(n >> (8 * (k - 1 - (size_t)i)));
	put_bytes(b, l, 1 + k);
}

/* Where the outer SEQUENCE's content starts (after its header), or 0. */
static size_t
content_start(const struct buf *in)
{
	size_t n;

	if (in->len < 4 || in->data[0] != 0x30)
		return 0;
	if (in->data[1] < 0x80)
		return 2;
	n = in->data[1] & 0x7f;
	if (n == 0 || n > 4 || 2 + n >= in->len)
		return 0;
	return 2 + n;
}

int
testhostile_malformed(const struct buf *in, int i, const char **name, struct buf *out)
{
	static const uint8_t junk[16] = { 0xde, 0xad, 0xbe, 0xef, 0x30, 0x80, 0x00, 0x00,
	    0x04, 0x01, 0x41, 0xff, 0xff, 0x05, 0x00, 0x00 };
	size_t start = content_start(in), oidlen, k;
	int depth;

	out->data = NULL;
	out->len = 0;
	*name = NULL;
	if (start == 0 || in->data[start] != 0x06 || start + 2 >= in->len)
		return -1;
	oidlen = 2 + in->data[start + 1];
	switch (i) {
	case 0:
		*name = "truncated-half";
		put_bytes(out, in->data, in->len / 2);
		break;
	case 1:
		*name = "truncated-last-byte";
		put_bytes(out, in->data, in->len - 1);
		break;
	case 2:
		*name = "trailing-garbage";
		put_bytes(out, in->data, in->len);
		put_bytes(out, junk, sizeof(junk));
		break;
	case 3:
		*name = "trailing-second-object";
		put_bytes(out, in->data, in->len);
		put_bytes(out, in->data, in->len);
		break;
	case 4:
		*name = "outer-tag-set";
		put_bytes(out, in->data, in->len);
		out->data[0] = 0x31;
		break;
	case 5:
		*name = "oid-tag-octets";
		put_bytes(out, in->data, in->len);
		out->data[start] = 0x04;
		break;
	case 6:
		*name = "explicit-tag-wrong";
		put_bytes(out, in->data, in->len);
		out->data[start + oidlen] ^= 0x01;
		break;
	case 7:
		*name = "length-huge";
		put_bytes(out, "\x30\x84\x7f\xff\xff\xff", 6);
		put_bytes(out, in->data + start, in->len - start);
		break;
	case 8:
		*name = "length-eight-bytes";
		put_bytes(out, "\x30\x88\xff\xff\xff\xff\xff\xff\xff\xff", 10);
		put_bytes(out, in->data + start, in->len - start);
		break;
	case 9:
		*name = "length-past-end";
		put_bytes(out, "\x30", 1);
		put_len(out, in->len - start + 1);
		put_bytes(out, in->data + start, in->len - start);
		break;
	case 10:
		*name = "length-short";
		put_bytes(out, "\x30", 1);
		put_len(out, in->len - start - 1);
		put_bytes(out, in->data + start, in->len - start);
		break;
	case 11:
		*name = "length-zero";
		put_bytes(out, "\x30\x00", 2);
		break;
	case 12:
	case 13:
		/*
		 * The right content type, then SEQUENCEs of indefinite length
		 * nested far deeper than any parser should follow; terminated
		 * (12) or not (13).
		 */
		*name = i == 12 ? "indefinite-deep" : "indefinite-deep-unterminated";
		depth = 20000;
		put_bytes(out, "\x30\x80", 2);
		put_bytes(out, in->data + start, oidlen);
		put_bytes(out, "\xa0\x80", 2);
		for (k = 0; k < (size_t)depth; k++)
			put_bytes(out, "\x30\x80", 2);
		if (i == 12)
			for (k = 0; k < (size_t)depth + 2; k++)
				put_bytes(out, "\x00\x00", 2);
		break;
	case 14:
		*name = "indefinite-outer-unterminated";
		put_bytes(out, "\x30\x80", 2);
		put_bytes(out, in->data + start, in->len - start);
		break;
	case 15:
		*name = "header-only";
		put_bytes(out, in->data, start + oidlen);
		break;
	default:
		return 1;
	}
	return 0;
}

X509 *
testhostile_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key,
    const char *cn, long serial, const char *ku, int ca)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	X509 *cert;
	X509_NAME *name;
	char kubuf[128];
	struct { int nid; const char *value; } exts[4];
	int i, n = 0;

	if ((cert = X509_new()) == NULL)
		return NULL;
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
	X509_gmtime_adj(X509_getm_notBefore(cert), -86400);
	X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 86400);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"hegn hostile test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
	    -1, -1, 0);
	if (issuer == NULL) {
		issuer = cert;
		issuer_key = key;
	}
	X509_set_issuer_name(cert, X509_get_subject_name(issuer));
	exts[n].nid = NID_basic_constraints;
	exts[n++].value = ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
	if (ca || ku != NULL) {
		snprintf(kubuf, sizeof(kubuf), "critical,%s",
		    ca ? "keyCertSign,cRLSign" : ku);
		exts[n].nid = NID_key_usage;
		exts[n++].value = kubuf;
	}
	exts[n].nid = NID_subject_key_identifier;
	exts[n++].value = "hash";
	if (issuer != cert) {
		exts[n].nid = NID_authority_key_identifier;
		exts[n++].value = "keyid:always";
	}
	for (i = 0; i < n; i++) {
		X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
		if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value)) == NULL)
			goto fail;
		if (X509_add_ext(cert, ext, -1) != 1) {
			X509_EXTENSION_free(ext);
			goto fail;
		}
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(cert, issuer_key, EVP_sha256()) == 0)
		goto fail;
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

STACK_OF(X509) *
testhostile_ca_chain(X509 *issuer, EVP_PKEY *issuer_key, int n, EVP_PKEY **last_key)
{
	STACK_OF(X509) *chain;
	EVP_PKEY *key = NULL, *prev_key = NULL;
	X509 *prev = issuer, *x;
	char cn[64];
	int i;

	*last_key = NULL;
	if ((chain = sk_X509_new_null()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		snprintf(cn, sizeof(cn), "Hostile Intermediate %d", i + 1);
		if ((key = EVP_EC_gen("P-256")) == NULL ||
		    (x = testhostile_cert(prev, prev_key != NULL ? prev_key : issuer_key,
		    key, cn, 1000 + i, NULL, 1)) == NULL) {
			EVP_PKEY_free(key);
			goto fail;
		}
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			EVP_PKEY_free(key);
			goto fail;
		}
		EVP_PKEY_free(prev_key);
		prev_key = key;
		prev = x;
	}
	*last_key = prev_key;
	return chain;
fail:
	EVP_PKEY_free(prev_key);
	sk_X509_pop_free(chain, X509_free);
	return NULL;
}

X509 *
testhostile_self_issued(const char *cn, EVP_PKEY *key, EVP_PKEY *signing_key)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	X509 *cert;
	X509_NAME *name;
	int ok;

	if ((cert = X509_new()) == NULL)
		return NULL;
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 77);
	X509_gmtime_adj(X509_getm_notBefore(cert), -86400);
	X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 86400);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"hegn hostile test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
	    -1, -1, 0);
	X509_set_issuer_name(cert, name);
	/* A CA, and no authorityKeyIdentifier: only names link it to itself. */
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	    "critical,CA:TRUE")) == NULL)
		goto fail;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (ok != 1 || (ext = X509V3_EXT_conf_nid(NULL, &ctx,
	    NID_subject_key_identifier, "hash")) == NULL)
		goto fail;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (ok != 1 || X509_sign(cert, signing_key, EVP_sha256()) == 0)
		goto fail;
	return cert;
fail:
	X509_free(cert);
	return NULL;
}
