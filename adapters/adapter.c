/*
 * adapter: the registry of delivery channels.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "adapter.h"
#include "err.h"
#include "util.h"

const struct adapter *const adapters[] = {
	&adapter_pull,
	&adapter_push,
	&adapter_smime,
	&adapter_folder,
	&adapter_fax,
	&adapter_post,
	NULL,
};

const struct adapter *
adapter_find(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; adapters[i] != NULL; i++) {
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	}
	return NULL;
}

void
adapter_result_init(struct adapter_result *res)
{
	if (res == NULL)
		return;
	memset(res, 0, sizeof(*res));
}

void
adapter_result_free(struct adapter_result *res)
{
	if (res == NULL)
		return;
	buf_free(&res->receipt, 0);
	memset(res, 0, sizeof(*res));
}

static int
valid_word(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || *s == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-'))
			return 0;
	}
	return 1;
}

int
adapter_check_msg(const struct adapter_msg *msg, int need_sealed, struct why *why)
{
	if (msg == NULL)
		return why_set(why, HEGN_ERR_INVALID, "adapter: no message");
	if (!util_valid_id(msg->id))
		return why_set(why, HEGN_ERR_INVALID, "adapter: message id missing or not valid");
	/* The kind and party names go into headers, subjects and file names. */
	if (!valid_word(msg->kind, 32))
		return why_set(why, HEGN_ERR_INVALID, "adapter: message %s: kind missing or not valid",
		    msg->id);
	if (!valid_word(msg->sender, 64) || !valid_word(msg->recipient, 64))
		return why_set(why, HEGN_ERR_INVALID,
		    "adapter: message %s: sender or recipient party name missing or not valid", msg->id);
	if (need_sealed && (msg->sealed == NULL || msg->sealed_len == 0))
		return why_set(why, HEGN_ERR_INVALID, "adapter: message %s: no sealed message", msg->id);
	if (need_sealed && adapter_smime_type(msg->sealed, msg->sealed_len) == NULL)
		return why_set(why, HEGN_ERR_INVALID,
		    "adapter: message %s: not an EnvelopedData or AuthEnvelopedData", msg->id);
	return 0;
}

const char *
adapter_smime_type(const uint8_t *der, size_t len)
{
	CMS_ContentInfo *cms = NULL;
	const unsigned char *p = der;
	const char *type = NULL;

	if (der == NULL || len == 0 || len > LONG_MAX)
		return NULL;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL)
		goto out;
	/* Trailing bytes would travel unnoticed inside the mail or the POST. */
	if (p != der + len)
		goto out;
	switch (OBJ_obj2nid(CMS_get0_type(cms))) {
	case NID_pkcs7_enveloped:
		type = "enveloped-data";
		break;
	case NID_id_smime_ct_authEnvelopedData:
		type = "authEnveloped-data";
		break;
	default:
		break;
	}
out:
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return type;
}

void
adapter_curl_client_cert(CURL *curl, const struct adapter_target *t)
{
	struct curl_blob cert, key;

	if (t->cert_pem != NULL && t->key_pem != NULL && t->cert_pem->data != NULL &&
	    t->key_pem->data != NULL) {
		cert.data = t->cert_pem->data;
		cert.len = t->cert_pem->len;
		cert.flags = CURL_BLOB_COPY;
		key.data = t->key_pem->data;
		key.len = t->key_pem->len;
		key.flags = CURL_BLOB_COPY;
		curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
		curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
		return;
	}
	curl_easy_setopt(curl, CURLOPT_SSLCERT, t->cert);
	curl_easy_setopt(curl, CURLOPT_SSLKEY, t->key);
}
