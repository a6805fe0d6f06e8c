#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "audit.h"
#include "checkpoint.h"
#include "conf.h"
#include "merkle.h"
#include "util.h"
#include "xmalloc.h"

#define S(x) ((x) != NULL ? (x) : "")

/* Entries read per batch when walking the whole log. */
#define AUDIT_BATCH 5000

/*
 * Canonical JSON in a malloc'd string, or NULL.  Not json_dumps: jansson
 * (2.14) ignores a failure to grow its buffer while writing an object key
 * and returns the JSON with that key missing, which would enter the log
 * for good (tests/unit/test_faults.c found it).  json_dumpb into a buffer
 * of the right size does not allocate while writing.
 */
static char *
dump_canonical(json_t *j)
{
	size_t need, len;
	char *s;

	if ((need = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS)) == 0 ||
	    (s = malloc(need + 1)) == NULL)
		return NULL;
	if ((len = json_dumpb(j, s, need, JSON_COMPACT | JSON_SORT_KEYS)) != need) {
		free(s);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

static char *
entry_text(int64_t seq, int64_t at_ms, const struct audit_event *e, const char *prev_hex)
{
	json_t *j;
	char *s;

	j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "seq", (json_int_t)seq, "at", (json_int_t)at_ms, "action", S(e->action),
	    "actor", S(e->actor), "user", S(e->user), "cert", S(e->cert),
	    "message", S(e->message_id), "citizen", S(e->citizen_ref), "outcome", S(e->outcome),
	    "rule", S(e->rule), "detail", S(e->detail), "prev", prev_hex);
	s = j != NULL ? dump_canonical(j) : NULL;
	json_decref(j);
	return s;
}

/* "" (no citizen) or 64 lowercase hex digits. */
static int
valid_citizen_ref(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0)
		return 1;
	if (n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int
audit_append(struct store_tx *tx, const struct audit_event *e, int64_t at_ms, struct why *why)
{
	struct store_audit row, *last = NULL;
	size_t nlast = 0;
	int64_t count = 0;
	char prev[65] = "";
	char *text = NULL;
	int r;

	memset(&row, 0, sizeof(row));
	/* The log outlives the messages: a CPR in it could never be purged. */
	if (!valid_citizen_ref(S(e->citizen_ref))) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "audit: citizen must be the keyed hash of the CPR (64 hex digits)");
		goto out;
	}
	if ((r = store_audit_count(tx, &count, why)) != 0)
		goto out;
	if (count > 0) {
		if ((r = store_audit_range(tx, count - 1, 1, &last, &nlast, why)) != 0)
			goto out;
		if (nlast != 1) {
			r = why_set(why, HEGN_ERR_STORE, "audit: entry %lld is missing",
			    (long long)count - 1);
			goto out;
		}
		util_hex(last[0].leaf_hash, 32, prev);
	}
	if ((text = entry_text(count, at_ms, e, prev)) == NULL) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "audit: an event field is not valid UTF-8 (or out of memory)");
		goto out;
	}
	row.at_ms = at_ms;
	snprintf(row.actor, sizeof(row.actor), "%s", S(e->actor));
	snprintf(row.action, sizeof(row.action), "%s", S(e->action));
	snprintf(row.message_id, sizeof(row.message_id), "%s", S(e->message_id));
	snprintf(row.citizen_ref, sizeof(row.citizen_ref), "%s", S(e->citizen_ref));
	row.entry.data = (uint8_t *)text;
	row.entry.len = strlen(text);
	merkle_leaf_hash(row.entry.data, row.entry.len, row.leaf_hash);
	if ((r = store_audit_append(tx, &row, why)) != 0)
		goto out;
	if (row.seq != count) {
		r = why_set(why, HEGN_ERR_STORE, "audit: entry stored as %lld, expected %lld",
		    (long long)row.seq, (long long)count);
		goto out;
	}
	r = 0;
out:
	store_audit_list_free(last, nlast);
	free(text);
	return r;
}

struct audit_signer {
	pthread_mutex_t lock;
	char *key;
	char *origin;
	struct merkle_tree *tree;   /* over the entries read so far */
	audit_sign_fn remote;       /* privilege separation: key is elsewhere */
	void *remote_arg;
};

int
audit_signer_load(const char *key_path, const char *origin, struct audit_signer **out,
    struct why *why)
{
	struct audit_signer *a;
	struct buf b = { 0 };
	char *pub = NULL;
	int r;

	*out = NULL;
	if ((r = conf_check_file(key_path, 1, why)) != 0)
		return r;
	if ((r = util_read_file(key_path, 4096, &b, why)) != 0)
		return HEGN_ERR_CONFIG;
	b.data[strcspn((char *)b.data, "\r\n")] = '\0';
	if ((r = checkpoint_verifier_key((char *)b.data, &pub, why)) != 0) {
		why_prefix(why, HEGN_ERR_CONFIG, "%s", key_path);
		buf_free(&b, 1);
		return HEGN_ERR_CONFIG;
	}
	free(pub);
	a = xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->key = xstrdup((char *)b.data);
	a->origin = xstrdup(origin);
	a->tree = merkle_tree_new();
	buf_free(&b, 1);
	*out = a;
	return 0;
}

void
audit_signer_free(struct audit_signer *a)
{
	if (a == NULL)
		return;
	checkpoint_key_free(a->key);
	free(a->origin);
	merkle_tree_free(a->tree);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

struct audit_signer *
audit_signer_remote(const char *origin, audit_sign_fn fn, void *arg)
{
	struct audit_signer *a;

	a = xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->origin = xstrdup(origin);
	a->tree = merkle_tree_new();
	a->remote = fn;
	a->remote_arg = arg;
	return a;
}

int
audit_signer_sign(struct audit_signer *a, uint64_t size, const uint8_t root[32], char **note,
    struct why *why)
{
	*note = NULL;
	if (a->remote != NULL)
		return a->remote(a->remote_arg, size, root, note, why);
	return checkpoint_sign(a->key, a->origin, size, root, note, why);
}

/* Bring the in-memory tree up to every committed entry. */
static int
catch_up(struct audit_signer *a, struct store_tx *tx, struct why *why)
{
	struct store_audit *rows = NULL;
	size_t n = 0, i;
	int r;

	for (;;) {
		if ((r = store_audit_range(tx, (int64_t)merkle_tree_size(a->tree), AUDIT_BATCH, &rows,
		    &n, why)) != 0)
			return r;
		for (i = 0; i < n; i++) {
			if (rows[i].seq != (int64_t)merkle_tree_size(a->tree)) {
				store_audit_list_free(rows, n);
				return why_set(why, HEGN_ERR_STORE, "audit: entry %lld is missing",
				    (long long)merkle_tree_size(a->tree));
			}
			merkle_tree_append(a->tree, rows[i].leaf_hash);
		}
		store_audit_list_free(rows, n);
		if (n < AUDIT_BATCH)
			return 0;
	}
}

int
audit_checkpoint(struct audit_signer *a, struct store *s, int force, int64_t *size,
    struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_checkpoint *cps = NULL, cp;
	size_t ncp = 0;
	char *note = NULL;
	int r;

	*size = 0;
	pthread_mutex_lock(&a->lock);
	/*
	 * Most of the log (all of it, the first time after a start) is read in
	 * a read transaction, beside the writers; the write transaction then
	 * reads only what was appended since and keeps the size fixed while we
	 * sign it.  Entries are never changed or removed (the triggers), so
	 * what the first pass read stays valid.
	 */
	if ((r = store_begin(s, 0, &tx, why)) != 0)
		goto out;
	r = catch_up(a, tx, why);
	store_rollback(tx);
	tx = NULL;
	if (r != 0)
		goto out;
	if ((r = store_begin(s, 1, &tx, why)) != 0)
		goto out;
	if ((r = catch_up(a, tx, why)) != 0 || (r = store_checkpoint_list(tx, &cps, &ncp, why)) != 0)
		goto out;
	*size = (int64_t)merkle_tree_size(a->tree);
	if (ncp > 0 && cps[ncp - 1].size == *size) {
		r = 0;
		goto out;
	}
	if (ncp > 0 && cps[ncp - 1].size > *size) {
		r = why_set(why, HEGN_ERR_STORE,
		    "audit: a checkpoint covers %lld entries but only %lld are stored",
		    (long long)cps[ncp - 1].size, (long long)*size);
		goto out;
	}
	if (!force && *size == 0) {
		r = 0;
		goto out;
	}
	memset(&cp, 0, sizeof(cp));
	cp.size = *size;
	cp.at_ms = util_now_ms();
	merkle_tree_root(a->tree, cp.root);
	if ((r = audit_signer_sign(a, (uint64_t)cp.size, cp.root, &note, why)) != 0)
		goto out;
	if (strlen(note) >= sizeof(cp.note)) {
		r = why_set(why, HEGN_ERR_INTERNAL, "audit: checkpoint note too long");
		goto out;
	}
	memcpy(cp.note, note, strlen(note) + 1);
	if ((r = store_checkpoint_insert(tx, &cp, why)) != 0)
		goto out;
	r = store_commit(tx, why);
	tx = NULL;
out:
	store_rollback(tx);
	free(cps);
	free(note);
	if (r != 0) {
		/* Rebuild from the store next time rather than trust a half-read tree. */
		merkle_tree_free(a->tree);
		a->tree = merkle_tree_new();
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* Walks entries in order and checks them against each other and the checkpoints. */
struct verifier {
	const char *key;
	FILE *out;
	struct merkle_tree *tree;
	uint8_t prev[32];
	int64_t n;
	struct store_checkpoint *cps;
	size_t ncp, next_cp;
	int64_t good_size;     /* size of the last checkpoint that held */
};

/* Every checkpoint at the size verified so far must match the tree and be signed. */
static int
check_checkpoints(struct verifier *v, struct why *why)
{
	int r = HEGN_ERR_SIGNATURE;

	while (v->next_cp < v->ncp && v->cps[v->next_cp].size == v->n) {
		const struct store_checkpoint *cp = &v->cps[v->next_cp];
		uint8_t root[32], noted[32];
		uint64_t nsize = 0;
		char *origin = NULL, when[40];
		struct why w = { 0 };

		merkle_tree_root(v->tree, root);
		util_time_ms_rfc3339(cp->at_ms, when);
		if (checkpoint_verify(v->key, cp->note, strlen(cp->note), &origin, &nsize, noted,
		    &w) != 0) {
			why_set(why, r, "checkpoint at size %lld (%s): %s", (long long)cp->size,
			    when, w.text);
			goto out;
		}
		free(origin);
		if (nsize != (uint64_t)cp->size || sodium_memcmp(noted, cp->root, 32) != 0) {
			why_set(why, r, "checkpoint at size %lld (%s): its signed note names another "
			    "tree", (long long)cp->size, when);
			goto out;
		}
		if (sodium_memcmp(root, cp->root, 32) != 0) {
			why_set(why, r, "checkpoint at size %lld (%s) does not match the entries: "
			    "an entry from %lld to %lld was changed", (long long)cp->size, when,
			    (long long)v->good_size, (long long)cp->size - 1);
			goto out;
		}
		v->good_size = cp->size;
		if (v->out != NULL)
			fprintf(v->out, "checkpoint at size %lld (%s): ok\n", (long long)cp->size, when);
		v->next_cp++;
	}
	r = 0;
out:
	return r;
}

static int
check_entry(struct verifier *v, int64_t seq, const uint8_t leaf[32], const uint8_t *text,
    size_t len, const struct store_audit *cols, struct why *why)
{
	uint8_t h[32];
	char prev_hex[65], *again = NULL;
	json_t *j = NULL;
	json_error_t err;
	int r = HEGN_ERR_SIGNATURE;

	if (seq != v->n)
		return why_set(why, r, "entry %lld: found where entry %lld should be (deleted, "
		    "inserted or reordered)", (long long)seq, (long long)v->n);
	merkle_leaf_hash(text, len, h);
	if (sodium_memcmp(h, leaf, 32) != 0)
		return why_set(why, r, "entry %lld: its text does not match its leaf hash (edited)",
		    (long long)seq);
	if ((j = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		why_set(why, r, "entry %lld: not valid JSON", (long long)seq);
		goto out;
	}
	again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (again == NULL || strlen(again) != len || memcmp(again, text, len) != 0) {
		why_set(why, r, "entry %lld: not in canonical form", (long long)seq);
		goto out;
	}
	if (json_integer_value(json_object_get(j, "seq")) != seq) {
		why_set(why, r, "entry %lld: names itself entry %lld (reordered)", (long long)seq,
		    (long long)json_integer_value(json_object_get(j, "seq")));
		goto out;
	}
	if (seq == 0)
		prev_hex[0] = '\0';
	else
		util_hex(v->prev, 32, prev_hex);
	if (!json_is_string(json_object_get(j, "prev")) ||
	    strcmp(json_string_value(json_object_get(j, "prev")), prev_hex) != 0) {
		why_set(why, r, "entry %lld: does not follow entry %lld (an entry was deleted, "
		    "inserted, reordered or edited)", (long long)seq, (long long)seq - 1);
		goto out;
	}
	if (cols != NULL && (json_integer_value(json_object_get(j, "at")) != cols->at_ms ||
	    strcmp(json_string_value(json_object_get(j, "actor")), cols->actor) != 0 ||
	    strcmp(json_string_value(json_object_get(j, "action")), cols->action) != 0 ||
	    strcmp(json_string_value(json_object_get(j, "message")), cols->message_id) != 0 ||
	    strcmp(json_string_value(json_object_get(j, "citizen")), cols->citizen_ref) != 0)) {
		why_set(why, r, "entry %lld: its columns differ from its text (edited)",
		    (long long)seq);
		goto out;
	}
	memcpy(v->prev, h, 32);
	merkle_tree_append(v->tree, h);
	v->n++;
	if ((r = check_checkpoints(v, why)) != 0)
		goto out;
	r = 0;
out:
	free(again);
	json_decref(j);
	return r;
}

static int
finish(struct verifier *v, struct why *why)
{
	if (v->next_cp < v->ncp)
		return why_set(why, HEGN_ERR_SIGNATURE,
		    "entry %lld: missing: a checkpoint covers %lld entries but the log ends at %lld "
		    "(truncated)", (long long)v->n, (long long)v->cps[v->next_cp].size,
		    (long long)v->n);
	if (v->out != NULL)
		fprintf(v->out, "%lld entries, %zu checkpoints: audit log verified\n",
		    (long long)v->n, v->ncp);
	return 0;
}

static int
cp_cmp(const void *a, const void *b)
{
	const struct store_checkpoint *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

int
audit_verify_store(struct store *s, const char *verifier, FILE *out, struct why *why)
{
	struct verifier v;
	struct store_tx *tx = NULL;
	struct store_audit *rows = NULL;
	size_t n = 0, i;
	int r;

	memset(&v, 0, sizeof(v));
	v.key = verifier;
	v.out = out;
	v.tree = merkle_tree_new();
	if ((r = store_begin(s, 0, &tx, why)) != 0)
		goto out;
	if ((r = store_checkpoint_list(tx, &v.cps, &v.ncp, why)) != 0)
		goto out;
	if (v.ncp > 0)
		qsort(v.cps, v.ncp, sizeof(*v.cps), cp_cmp);
	/* A checkpoint of the empty log comes before any entry. */
	if ((r = check_checkpoints(&v, why)) != 0)
		goto out;
	for (;;) {
		if ((r = store_audit_range(tx, v.n, AUDIT_BATCH, &rows, &n, why)) != 0)
			goto out;
		for (i = 0; i < n; i++)
			if ((r = check_entry(&v, rows[i].seq, rows[i].leaf_hash, rows[i].entry.data,
			    rows[i].entry.len, &rows[i], why)) != 0)
				goto out;
		store_audit_list_free(rows, n);
		rows = NULL;
		if (n < AUDIT_BATCH)
			break;
	}
	r = finish(&v, why);
out:
	store_audit_list_free(rows, n);
	store_rollback(tx);
	free(v.cps);
	merkle_tree_free(v.tree);
	return r;
}

int
audit_export(struct store *s, FILE *f, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_audit *rows = NULL;
	struct store_checkpoint *cps = NULL;
	size_t n = 0, ncp = 0, i;
	int64_t next = 0;
	char hex[65], *line;
	json_t *j;
	int r;

	if ((r = store_begin(s, 0, &tx, why)) != 0)
		return r;
	for (;;) {
		if ((r = store_audit_range(tx, next, AUDIT_BATCH, &rows, &n, why)) != 0)
			goto out;
		for (i = 0; i < n; i++) {
			util_hex(rows[i].leaf_hash, 32, hex);
			j = json_pack("{s:s, s:I, s:s, s:s%}", "type", "entry", "seq",
			    (json_int_t)rows[i].seq, "leaf_hash", hex, "entry",
			    (const char *)rows[i].entry.data, rows[i].entry.len);
			line = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
			fprintf(f, "%s\n", line);
			free(line);
			json_decref(j);
			next = rows[i].seq + 1;
		}
		store_audit_list_free(rows, n);
		rows = NULL;
		if (n < AUDIT_BATCH)
			break;
	}
	if ((r = store_checkpoint_list(tx, &cps, &ncp, why)) != 0)
		goto out;
	for (i = 0; i < ncp; i++) {
		util_hex(cps[i].root, 32, hex);
		j = json_pack("{s:s, s:I, s:I, s:s, s:s}", "type", "checkpoint", "size",
		    (json_int_t)cps[i].size, "at", (json_int_t)cps[i].at_ms, "root", hex, "note",
		    cps[i].note);
		line = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		fprintf(f, "%s\n", line);
		free(line);
		json_decref(j);
	}
	if (fflush(f) != 0 || ferror(f))
		r = why_set(why, HEGN_ERR_IO, "audit export: cannot write (%s)", strerror(errno));
	else
		r = 0;
out:
	store_audit_list_free(rows, n);
	free(cps);
	store_rollback(tx);
	return r;
}

static int
hex32(const char *s, uint8_t out[32])
{
	size_t n = 0;

	if (s == NULL || strlen(s) != 64)
		return -1;
	return sodium_hex2bin(out, 32, s, 64, NULL, &n, NULL) == 0 && n == 32 ? 0 : -1;
}

int
audit_verify_export(const char *path, const char *verifier, FILE *out, struct why *why)
{
	struct verifier v;
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0, pass;
	ssize_t len;
	long lineno;
	json_t *j = NULL;
	int r = 0;

	memset(&v, 0, sizeof(v));
	v.key = verifier;
	v.out = out;
	v.tree = merkle_tree_new();
	if ((f = fopen(path, "r")) == NULL) {
		r = why_set(why, HEGN_ERR_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* First pass: the checkpoints; second: the entries against them. */
	for (pass = 0; pass < 2 && r == 0; pass++) {
		rewind(f);
		lineno = 0;
		while ((len = getline(&line, &cap, f)) > 0) {
			const char *type;

			lineno++;
			json_decref(j);
			if ((j = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
			    (type = json_string_value(json_object_get(j, "type"))) == NULL) {
				r = why_set(why, HEGN_ERR_SIGNATURE, "%s:%ld: not an export line", path,
				    lineno);
				goto out;
			}
			if (pass == 0 && strcmp(type, "checkpoint") == 0) {
				struct store_checkpoint *cp;
				const char *note = json_string_value(json_object_get(j, "note"));

				v.cps = xrealloc(v.cps, (v.ncp + 1) * sizeof(*v.cps));
				cp = &v.cps[v.ncp++];
				memset(cp, 0, sizeof(*cp));
				cp->size = json_integer_value(json_object_get(j, "size"));
				cp->at_ms = json_integer_value(json_object_get(j, "at"));
				if (note == NULL || strlen(note) >= sizeof(cp->note) ||
				    !json_is_integer(json_object_get(j, "size")) ||
				    hex32(json_string_value(json_object_get(j, "root")), cp->root) != 0) {
					r = why_set(why, HEGN_ERR_SIGNATURE, "%s:%ld: malformed checkpoint",
					    path, lineno);
					goto out;
				}
				memcpy(cp->note, note, strlen(note) + 1);
			} else if (pass == 1 && strcmp(type, "entry") == 0) {
				uint8_t leaf[32];
				const char *text = json_string_value(json_object_get(j, "entry"));

				if (text == NULL || !json_is_integer(json_object_get(j, "seq")) ||
				    hex32(json_string_value(json_object_get(j, "leaf_hash")), leaf) != 0) {
					r = why_set(why, HEGN_ERR_SIGNATURE, "%s:%ld: malformed entry",
					    path, lineno);
					goto out;
				}
				if ((r = check_entry(&v, json_integer_value(json_object_get(j, "seq")),
				    leaf, (const uint8_t *)text, json_string_length(json_object_get(j,
				    "entry")), NULL, why)) != 0)
					goto out;
			} else if (strcmp(type, "checkpoint") != 0 && strcmp(type, "entry") != 0) {
				/* Skipping it would let a damaged line hide an entry or checkpoint. */
				r = why_set(why, HEGN_ERR_SIGNATURE, "%s:%ld: unknown line type", path,
				    lineno);
				goto out;
			}
		}
		if (pass == 0 && v.ncp > 0)
			qsort(v.cps, v.ncp, sizeof(*v.cps), cp_cmp);
		if (pass == 0 && (r = check_checkpoints(&v, why)) != 0)
			goto out;
	}
	if (v.ncp == 0) {
		r = why_set(why, HEGN_ERR_SIGNATURE, "%s: no checkpoint: nothing vouches for the entries",
		    path);
		goto out;
	}
	r = finish(&v, why);
out:
	json_decref(j);
	free(line);
	if (f != NULL)
		fclose(f);
	free(v.cps);
	merkle_tree_free(v.tree);
	return r;
}

int
audit_keygen(const char *name, const char *key_path, const char *pub_path, struct why *why)
{
	char *sk = NULL, *vk = NULL, *line = NULL;
	int r;

	if ((r = checkpoint_keygen(name, &sk, &vk, why)) != 0)
		return r;
	line = xasprintf("%s\n", sk);
	r = util_write_file(key_path, line, strlen(line), 0600, why);
	sodium_memzero(line, strlen(line));
	free(line);
	if (r == 0) {
		line = xasprintf("%s\n", vk);
		r = util_write_file(pub_path, line, strlen(line), 0644, why);
		free(line);
	}
	checkpoint_key_free(sk);
	free(vk);
	return r;
}

/* The leaf hashes of the first n entries (n * 32 bytes, freed by the caller). */
static int
load_leaves(struct store_tx *tx, int64_t n, uint8_t (**out)[32], struct why *why)
{
	struct store_audit *rows = NULL;
	uint8_t (*leaves)[32];
	size_t got = 0, i;
	int64_t next = 0;
	int r;

	*out = NULL;
	leaves = xcalloc(n > 0 ? (size_t)n : 1, 32);
	while (next < n) {
		if ((r = store_audit_range(tx, next, AUDIT_BATCH, &rows, &got, why)) != 0) {
			free(leaves);
			return r;
		}
		for (i = 0; i < got && next < n; i++, next++)
			memcpy(leaves[next], rows[i].leaf_hash, 32);
		store_audit_list_free(rows, got);
		if (got == 0)
			break;
	}
	if (next < n) {
		free(leaves);
		return why_set(why, HEGN_ERR_SIGNATURE, "entry %lld: missing below a checkpoint",
		    (long long)next);
	}
	*out = leaves;
	return 0;
}

static json_t *
hex_list(const uint8_t (*proof)[32], size_t n)
{
	json_t *a = json_array();
	char hex[65];
	size_t i;

	for (i = 0; i < n; i++) {
		util_hex(proof[i], 32, hex);
		json_array_append_new(a, json_string(hex));
	}
	return a;
}

static int
print_json(FILE *f, json_t *j)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	json_decref(j);
	if (text == NULL)
		return HEGN_ERR_NOMEM;
	fprintf(f, "%s\n", text);
	free(text);
	return 0;
}

int
audit_prove_inclusion(struct store *s, int64_t seq, FILE *out, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_checkpoint *cps = NULL, *cp;
	uint8_t (*leaves)[32] = NULL, proof[MERKLE_MAX_PROOF][32];
	size_t ncp = 0, plen = 0;
	char hex[65], root[65];
	int r;

	if ((r = store_begin(s, 0, &tx, why)) != 0)
		return r;
	if ((r = store_checkpoint_list(tx, &cps, &ncp, why)) != 0)
		goto out;
	if (ncp > 0)
		qsort(cps, ncp, sizeof(*cps), cp_cmp);
	if (ncp == 0 || seq < 0 || seq >= cps[ncp - 1].size) {
		r = why_set(why, HEGN_ERR_NOT_FOUND,
		    "entry %lld: not covered by a checkpoint yet", (long long)seq);
		goto out;
	}
	cp = &cps[ncp - 1];
	if ((r = load_leaves(tx, cp->size, &leaves, why)) != 0 ||
	    (r = merkle_inclusion_proof((const uint8_t (*)[32])leaves, (size_t)cp->size,
	    (size_t)seq, proof, MERKLE_MAX_PROOF, &plen, why)) != 0)
		goto out;
	/* A proof that does not hold against the signed root is a finding, not an answer. */
	if ((r = merkle_verify_inclusion((uint64_t)seq, (uint64_t)cp->size, leaves[seq],
	    (const uint8_t (*)[32])proof, plen, cp->root, why)) != 0)
		goto out;
	util_hex(leaves[seq], 32, hex);
	util_hex(cp->root, 32, root);
	r = print_json(out, json_pack("{s:I, s:s, s:I, s:s, s:o, s:s}", "seq", (json_int_t)seq,
	    "leaf_hash", hex, "tree_size", (json_int_t)cp->size, "root", root, "proof",
	    hex_list((const uint8_t (*)[32])proof, plen), "checkpoint", cp->note));
out:
	free(leaves);
	free(cps);
	store_rollback(tx);
	return r;
}

int
audit_prove_consistency(struct store *s, int64_t old_size, FILE *out, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_checkpoint *cps = NULL, *old = NULL, *cur;
	uint8_t (*leaves)[32] = NULL, proof[MERKLE_MAX_PROOF][32];
	size_t ncp = 0, plen = 0, i;
	int r;

	if ((r = store_begin(s, 0, &tx, why)) != 0)
		return r;
	if ((r = store_checkpoint_list(tx, &cps, &ncp, why)) != 0)
		goto out;
	if (ncp > 0)
		qsort(cps, ncp, sizeof(*cps), cp_cmp);
	for (i = 0; i < ncp; i++)
		if (cps[i].size == old_size)
			old = &cps[i];
	if (old == NULL || old_size <= 0) {
		r = why_set(why, HEGN_ERR_NOT_FOUND, "no checkpoint at size %lld",
		    (long long)old_size);
		goto out;
	}
	cur = &cps[ncp - 1];
	if ((r = load_leaves(tx, cur->size, &leaves, why)) != 0 ||
	    (r = merkle_consistency_proof((const uint8_t (*)[32])leaves, (size_t)cur->size,
	    (size_t)old_size, proof, MERKLE_MAX_PROOF, &plen, why)) != 0)
		goto out;
	if ((r = merkle_verify_consistency((uint64_t)old_size, (uint64_t)cur->size, old->root,
	    cur->root, (const uint8_t (*)[32])proof, plen, why)) != 0)
		goto out;
	r = print_json(out, json_pack("{s:I, s:I, s:o, s:s, s:s}", "old_size",
	    (json_int_t)old_size, "new_size", (json_int_t)cur->size, "proof",
	    hex_list((const uint8_t (*)[32])proof, plen), "old_checkpoint", old->note,
	    "new_checkpoint", cur->note));
out:
	free(leaves);
	free(cps);
	store_rollback(tx);
	return r;
}
