#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "adapter.h"
#include "audit.h"
#include "delivery.h"
#include "envelope.h"
#include "log.h"
#include "medcom.h"
#include "message.h"
#include "util.h"

/* Copies handled per pass; the rest wait for the next one. */
#define DELIVERY_BATCH 100
/* Tries of a paper channel before the copy is given up as failed. */
#define PAPER_MAX_ATTEMPTS 5

int
delivery_channel(const struct party *p, int n, char out[17])
{
	const char *s = p->conf->delivery ? p->conf->delivery : "pull";
	size_t len;
	int i = 0;

	out[0] = '\0';
	while (*s != '\0') {
		s += strspn(s, ", ");
		len = strcspn(s, ", ");
		if (len == 0)
			break;
		if (i++ == n) {
			if (len > 16)
				return HEGN_ERR_NOT_FOUND;
			memcpy(out, s, len);
			out[len] = '\0';
			return 0;
		}
		s += len;
	}
	return HEGN_ERR_NOT_FOUND;
}

int
delivery_is_electronic(const char *channel)
{
	const struct adapter *a = adapter_find(channel);

	return a != NULL && a->electronic;
}

static int
is_paper(const char *channel)
{
	return strcmp(channel, "fax") == 0 || strcmp(channel, "post") == 0;
}

int64_t
delivery_backoff_ms(const struct conf *c, int attempts)
{
	int64_t wait = (int64_t)c->retry_base * 1000;
	int i;

	for (i = 1; i < attempts && wait < (int64_t)c->retry_max * 1000; i++)
		wait *= 2;
	if (wait > (int64_t)c->retry_max * 1000)
		wait = (int64_t)c->retry_max * 1000;
	/* +-20% so that copies that failed together do not retry together. */
	return wait * 8 / 10 + (int64_t)randombytes_uniform((uint32_t)(wait * 4 / 10 + 1));
}

/* The earlier of t and the deadline (when there is one). */
static int64_t
until_deadline(const struct store_schedule *s, int64_t t)
{
	return s->deadline_ms > 0 && s->deadline_ms < t ? s->deadline_ms : t;
}

void
delivery_initial(const struct conf *c, const struct party *to, enum message_kind kind,
    int64_t deadline_ms, int64_t now_ms, struct store_schedule *s)
{
	int secs = c->deadline[kind] > 0 ? c->deadline[kind] : c->deadline[MSG_KIND_COUNT];

	s->channel_index = 0;
	if (delivery_channel(to, 0, s->channel) != 0)
		snprintf(s->channel, sizeof(s->channel), "pull");
	s->attempts = s->resends = s->duplicates = 0;
	s->delivered_ms = s->acked_ms = 0;
	s->fallback_reason[0] = s->last_error[0] = '\0';
	s->deadline_ms = deadline_ms > 0 ? deadline_ms : now_ms + (int64_t)secs * 1000;
	/* Pull waits for the party; the scheduler looks again at resend time. */
	s->next_ms = strcmp(s->channel, "pull") == 0 ?
	    until_deadline(s, now_ms + (int64_t)c->resend_after * 1000) : now_ms;
}

static void
fill_target(const struct delivery_ctx *ctx, const struct party *to, struct adapter_target *t)
{
	const struct conf *c = ctx->conf;

	memset(t, 0, sizeof(*t));
	t->cert_pem = ctx->tls_cert_pem;
	t->key_pem = ctx->tls_key_pem;
	t->url = to->conf->push_url;
	t->cert = c->tls_cert;
	t->key = c->tls_key;
	t->ca = c->delivery_ca;
	t->mail_to = to->conf->mail;
	t->mail_from = c->mail_from;
	t->smtp_url = c->smtp_url;
	t->smtp_insecure = c->smtp_insecure;
	t->folder = to->conf->folder;
	t->receipt_folder = to->conf->receipt_folder;
	t->number = to->conf->fax;
}

/* Whether two reads of a copy's schedule are the same. */
static int
schedule_same(const struct store_schedule *a, const struct store_schedule *b)
{
	return strcmp(a->state, b->state) == 0 && strcmp(a->channel, b->channel) == 0 &&
	    a->channel_index == b->channel_index && a->attempts == b->attempts &&
	    a->resends == b->resends && a->duplicates == b->duplicates &&
	    a->next_ms == b->next_ms && a->deadline_ms == b->deadline_ms &&
	    a->delivered_ms == b->delivered_ms && a->acked_ms == b->acked_ms &&
	    strcmp(a->fallback_reason, b->fallback_reason) == 0 &&
	    strcmp(a->last_error, b->last_error) == 0;
}

/*
 * Write s, the copy as this pass leaves it, with one event and one audit
 * entry, in one transaction; was is the copy as the pass read it.
 */
static int
record(const struct delivery_ctx *ctx, const struct store_schedule *was,
    const struct store_schedule *s, const char *event, const char *detail, int64_t now,
    struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_schedule cur;
	struct store_event ev;
	struct store_message m;
	struct audit_event ae;
	char action[40];
	int rc;

	memset(&m, 0, sizeof(m));
	if ((rc = store_begin(ctx->store, 1, &tx, why)) != 0)
		return rc;
	/*
	 * The pass read the copy (was) before a hand-over that may take
	 * seconds; meanwhile a receipt or a fetch may have come over the API,
	 * or staff recorded a fallback.  Their change stands: written over, an
	 * acknowledged copy would be resent and in the end faxed.  What the
	 * pass did is still recorded below; the next pass starts from the row
	 * as it is now.
	 */
	if ((rc = store_schedule_get(tx, s->message_id, s->recipient, &cur, why)) != 0)
		goto out;
	if (!schedule_same(&cur, was))
		log_info("delivery: %s to %s changed during the pass (now %s): left as it is",
		    s->message_id, s->recipient, cur.state);
	else if ((rc = store_schedule_update(tx, s, why)) != 0)
		goto out;
	if (event != NULL) {
		memset(&ev, 0, sizeof(ev));
		ev.at_ms = now;
		snprintf(ev.message_id, sizeof(ev.message_id), "%s", s->message_id);
		snprintf(ev.recipient, sizeof(ev.recipient), "%s", s->recipient);
		snprintf(ev.event, sizeof(ev.event), "%s", event);
		snprintf(ev.actor, sizeof(ev.actor), "gateway");
		snprintf(ev.detail, sizeof(ev.detail), "%s", detail);
		if ((rc = store_event_add(tx, &ev, why)) != 0 ||
		    (rc = store_message_get(tx, s->message_id, 0, &m, why)) != 0)
			goto out;
		snprintf(action, sizeof(action), "delivery.%s", event);
		memset(&ae, 0, sizeof(ae));
		ae.action = action;
		ae.actor = "gateway";
		ae.message_id = s->message_id;
		ae.citizen_ref = m.citizen_ref;
		ae.outcome = strcmp(event, "failed") == 0 ? "fail" : "ok";
		ae.detail = ev.detail;
		if ((rc = audit_append(tx, &ae, now, why)) != 0)
			goto out;
	}
	rc = store_commit(tx, why);
	tx = NULL;
out:
	store_rollback(tx);
	store_message_clear(&m);
	return rc;
}

/* Move s to the next channel of its chain, or fail it when there is none. */
static int
fall_back(const struct delivery_ctx *ctx, const struct party *to,
    const struct store_schedule *was, struct store_schedule *s, const char *reason, int64_t now,
    struct why *why)
{
	char next[17], detail[257];

	if (delivery_channel(to, s->channel_index + 1, next) != 0) {
		snprintf(s->state, sizeof(s->state), "%s", STORE_STATE_FAILED);
		snprintf(s->fallback_reason, sizeof(s->fallback_reason), "%s", reason);
		s->next_ms = 0;
		snprintf(detail, sizeof(detail), "%s; no channel left", reason);
		log_warn("delivery: %s to %s failed (%s)", s->message_id, s->recipient, detail);
		return record(ctx, was, s, "failed", detail, now, why);
	}
	snprintf(detail, sizeof(detail), "%s -> %s: %s", s->channel, next, reason);
	s->channel_index++;
	snprintf(s->channel, sizeof(s->channel), "%s", next);
	/* Resends count for the copy, not the channel: MedCom allows two in all. */
	s->attempts = 0;
	snprintf(s->fallback_reason, sizeof(s->fallback_reason), "%s", reason);
	/* The copy starts over on the new channel. */
	snprintf(s->state, sizeof(s->state), "%s", STORE_STATE_SUBMITTED);
	s->next_ms = strcmp(next, "pull") == 0 ?
	    now + (int64_t)ctx->conf->resend_after * 1000 : now;
	/* The deadline passed on the old channel: the new one is tried at once, without one. */
	if (s->deadline_ms <= now)
		s->deadline_ms = is_paper(next) ? 0 :
		    now + (int64_t)ctx->conf->resend_after * 1000 * (ctx->conf->max_resends + 1);
	log_info("delivery: %s to %s falls back (%s)", s->message_id, s->recipient, detail);
	return record(ctx, was, s, "fallback", detail, now, why);
}

/*
 * The clear content for a paper channel: the sender's signed content,
 * minimised for the recipient as its electronic copy was.
 */
static int
paper_content(const struct delivery_ctx *ctx, const struct party *to, const char *id,
    struct buf *out, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_message m;
	struct envelope_signed *sig = NULL;
	struct message *msg = NULL, *min = NULL;
	struct policy_ctx pc;
	const struct party *sender;
	const uint8_t *content;
	size_t len;
	unsigned removed = 0;
	int rc;

	memset(&m, 0, sizeof(m));
	out->data = NULL;
	out->len = 0;
	if ((rc = store_begin(ctx->store, 0, &tx, why)) != 0)
		return rc;
	if ((rc = store_message_get(tx, id, 1, &m, why)) != 0)
		goto out;
	if (m.signed_der.data == NULL) {
		rc = why_set(why, HEGN_ERR_NOT_FOUND, "the content was deleted (retention)");
		goto out;
	}
	/* What goes on paper must be on disk first (docs/store.md, "Readers"). */
	if ((rc = store_end_read(&tx, 0, why)) != 0)
		goto out;
	if ((rc = envelope_verify(ctx->pki, m.signed_der.data, m.signed_der.len,
	    (time_t)(m.created_ms / 1000), &sig, why)) != 0)
		goto out;
	content = envelope_signed_content(sig, &len);
	if ((rc = message_parse(content, len, NULL, &msg, why)) != 0)
		goto out;
	sender = party_find(ctx->parties, m.sender);
	memset(&pc, 0, sizeof(pc));
	pc.actor_role = sender != NULL ? sender->role : ROLE_COUNT;
	pc.peer_role = to->role;
	pc.kind = message_kind(msg);
	pc.direction = policy_direction_to(to->role);
	pc.approvals = to->conf->services;
	if ((rc = message_minimise(msg, policy_classes_for(ctx->policy, &pc, NULL), &min, &removed,
	    why)) != 0 || (rc = message_canonical(min, out, why)) != 0)
		goto out;
	rc = 0;
out:
	message_free(min);
	message_free(msg);
	envelope_signed_free(sig);
	store_message_clear(&m);
	store_rollback(tx);
	return rc;
}

/* Hand s over through its (non-pull) channel. */
static int
hand_over(const struct delivery_ctx *ctx, const struct party *to,
    const struct store_schedule *was, struct store_schedule *s, int64_t now, struct why *why)
{
	const struct adapter *a = adapter_find(s->channel);
	struct adapter_msg msg;
	struct adapter_target t;
	struct adapter_result res;
	struct store_tx *tx = NULL;
	struct store_delivery d;
	struct store_message m;
	struct buf content = { 0 };
	struct why w = { 0 };
	const struct party *sender;
	char detail[300];
	int rc, resend, ack = 0;

	memset(&d, 0, sizeof(d));
	memset(&m, 0, sizeof(m));
	adapter_result_init(&res);
	if (a == NULL)
		return fall_back(ctx, to, was, s, "no such channel", now, why);
	if ((rc = store_begin(ctx->store, 0, &tx, why)) != 0)
		return rc;
	rc = store_delivery_get(tx, s->message_id, s->recipient, 1, &d, why);
	if (rc == 0)
		rc = store_message_get(tx, s->message_id, 0, &m, why);
	/*
	 * A copy handed over while its submission's sync could still fail
	 * would reach the recipient of a message its sender was refused.
	 */
	if ((rc = store_end_read(&tx, rc, why)) != 0)
		goto out;
	/* A MedCom Acknowledgement (docs/medcom.md) is for the sender's system, never paper. */
	if ((ack = strcmp(m.kind, MEDCOM_ACK_KIND) == 0) && is_paper(s->channel)) {
		snprintf(s->state, sizeof(s->state), "%s", STORE_STATE_FAILED);
		snprintf(s->fallback_reason, sizeof(s->fallback_reason),
		    "a MedCom Acknowledgement is not sent on paper");
		s->next_ms = 0;
		rc = record(ctx, was, s, "failed", s->fallback_reason, now, why);
		goto out;
	}
	if (is_paper(s->channel) && (rc = paper_content(ctx, to, s->message_id, &content, &w)) != 0) {
		rc = fall_back(ctx, to, was, s, w.text, now, why);
		goto out;
	}
	sender = party_find(ctx->parties, m.sender);
	memset(&msg, 0, sizeof(msg));
	msg.id = s->message_id;
	msg.kind = m.kind;
	msg.sender = m.sender;
	msg.recipient = s->recipient;
	msg.sealed = d.sealed.data;
	msg.sealed_len = d.sealed.len;
	msg.content = content.data;
	msg.content_len = content.len;
	msg.sender_name = sender != NULL ? sender->conf->organisation : NULL;
	msg.recipient_name = to->conf->organisation;
	fill_target(ctx, to, &t);
	t.command = strcmp(s->channel, "fax") == 0 ? ctx->conf->fax_command :
	    strcmp(s->channel, "post") == 0 ? ctx->conf->post_command : NULL;
	resend = s->delivered_ms != 0;
	rc = a->deliver(&msg, &t, &res, &w);
	if (rc != 0) {
		s->attempts++;
		snprintf(s->last_error, sizeof(s->last_error), "%s", w.text);
		if (!err_is_retryable(rc) ||
		    (is_paper(s->channel) && s->attempts >= PAPER_MAX_ATTEMPTS)) {
			rc = fall_back(ctx, to, was, s, w.text, now, why);
			goto out;
		}
		s->next_ms = until_deadline(s, now + delivery_backoff_ms(ctx->conf, s->attempts));
		snprintf(detail, sizeof(detail), "%s attempt %d failed: %s", s->channel, s->attempts,
		    w.text);
		rc = record(ctx, was, s, "retry", detail, now, why);
		goto out;
	}
	s->attempts = 0;
	s->last_error[0] = '\0';
	if (is_paper(s->channel)) {
		/* Handed to the fax or the printer: outside the secure channel now. */
		snprintf(s->state, sizeof(s->state), "%s", STORE_STATE_FALLBACK);
		s->delivered_ms = now;
		s->next_ms = 0;
		snprintf(detail, sizeof(detail), "sent by %s (%s): %s", s->channel, res.detail,
		    s->fallback_reason);
		rc = record(ctx, was, s, "fallback", detail, now, why);
		goto out;
	}
	if (resend)
		s->resends++;
	else
		s->delivered_ms = now;
	if (strcmp(s->state, STORE_STATE_SUBMITTED) == 0)
		snprintf(s->state, sizeof(s->state), "%s", STORE_STATE_DELIVERED);
	s->next_ms = until_deadline(s, now + (int64_t)ctx->conf->resend_after * 1000);
	if (ack) {
		/* Never acknowledged: handed over is done. */
		snprintf(s->state, sizeof(s->state), "%s", STORE_STATE_ACKNOWLEDGED);
		s->next_ms = 0;
	}
	snprintf(detail, sizeof(detail), "%s%s: %s", resend ? "resent by " : "delivered by ",
	    s->channel, res.detail);
	if ((rc = record(ctx, was, s, resend ? "resent" : "delivered", detail, now, why)) != 0)
		goto out;
	if (res.receipt.len > 0 && ctx->receipt != NULL &&
	    ctx->receipt(ctx->receipt_arg, to, s->message_id, res.receipt.data, res.receipt.len,
	    &w) != 0)
		log_warn("delivery: the receipt %s returned for %s was refused (%s)", s->recipient,
		    s->message_id, w.text);
	rc = 0;
out:
	adapter_result_free(&res);
	buf_free(&content, 1);
	store_delivery_clear(&d);
	store_message_clear(&m);
	return rc;
}

/* One due copy. */
static int
handle(const struct delivery_ctx *ctx, const struct store_schedule *was,
    struct store_schedule *s, int64_t now, struct why *why)
{
	const struct party *to = party_find(ctx->parties, s->recipient);
	char reason[200];

	if (to == NULL || strcmp(s->state, STORE_STATE_ACKNOWLEDGED) == 0 ||
	    strcmp(s->state, STORE_STATE_REJECTED) == 0 ||
	    strcmp(s->state, STORE_STATE_FALLBACK) == 0 || strcmp(s->state, STORE_STATE_FAILED) == 0) {
		s->next_ms = 0;
		return record(ctx, was, s, NULL, NULL, now, why);
	}
	if (s->deadline_ms > 0 && now >= s->deadline_ms && !is_paper(s->channel)) {
		snprintf(reason, sizeof(reason), "no receipt by the deadline on %s%s", s->channel,
		    s->delivered_ms ? "" : " (never collected)");
		return fall_back(ctx, to, was, s, reason, now, why);
	}
	/* Fetched after all while waiting for the fax: it reached the party electronically. */
	if (is_paper(s->channel) && strcmp(s->state, STORE_STATE_DELIVERED) == 0) {
		s->next_ms = 0;
		return record(ctx, was, s, "cancelled", "not sent by paper: the party fetched it", now,
		    why);
	}
	if (strcmp(s->channel, "pull") == 0) {
		/* Fetched without a receipt: offer it again (MedCom's resend). */
		if (strcmp(s->state, STORE_STATE_DELIVERED) == 0 &&
		    s->resends < ctx->conf->max_resends) {
			s->resends++;
			snprintf(s->state, sizeof(s->state), "%s", STORE_STATE_SUBMITTED);
			s->next_ms = until_deadline(s, now + (int64_t)ctx->conf->resend_after * 1000);
			snprintf(reason, sizeof(reason), "no receipt after %d s: offered again in the "
			    "inbox (resend %d of %d)", ctx->conf->resend_after, s->resends,
			    ctx->conf->max_resends);
			return record(ctx, was, s, "resent", reason, now, why);
		}
		s->next_ms = s->deadline_ms;
		return record(ctx, was, s, NULL, NULL, now, why);
	}
	if (strcmp(s->state, STORE_STATE_DELIVERED) == 0 && s->resends >= ctx->conf->max_resends) {
		s->next_ms = s->deadline_ms;
		return record(ctx, was, s, NULL, NULL, now, why);
	}
	return hand_over(ctx, to, was, s, now, why);
}

/* Receipts a folder channel collected: handed to the relay as the party's. */
struct folder_arg {
	const struct delivery_ctx *ctx;
	const struct party *party;
};

static int
on_folder_receipt(const uint8_t *der, size_t len, void *arg, struct why *why)
{
	struct folder_arg *fa = arg;

	if (fa->ctx->receipt == NULL)
		return HEGN_ERR_IO;
	return fa->ctx->receipt(fa->ctx->receipt_arg, fa->party, NULL, der, len, why);
}

static void
poll_receipts(const struct delivery_ctx *ctx)
{
	const struct adapter *a = adapter_find("folder");
	struct adapter_target t;
	struct folder_arg fa;
	struct why w;
	size_t i;

	for (i = 0; a != NULL && a->receipts != NULL && i < party_count(ctx->parties); i++) {
		const struct party *p = party_at(ctx->parties, i);

		if (p->conf->folder == NULL || p->conf->delivery == NULL ||
		    strstr(p->conf->delivery, "folder") == NULL)
			continue;
		fill_target(ctx, p, &t);
		fa.ctx = ctx;
		fa.party = p;
		memset(&w, 0, sizeof(w));
		if (a->receipts(&t, on_folder_receipt, &fa, &w) != 0)
			log_warn("delivery: cannot read %s's receipt folder (%s)", p->name, w.text);
	}
}

int
delivery_run(const struct delivery_ctx *ctx, int64_t now_ms, int *acted, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_schedule *due = NULL;
	struct why w;
	size_t n = 0, i;
	int rc;

	*acted = 0;
	poll_receipts(ctx);
	if ((rc = store_begin(ctx->store, 0, &tx, why)) != 0)
		return rc;
	rc = store_schedule_due(tx, now_ms, DELIVERY_BATCH, &due, &n, why);
	store_rollback(tx);
	if (rc != 0)
		return rc;
	for (i = 0; i < n; i++) {
		struct store_schedule cur, was;

		/* Read it again: a receipt may have come since the list was made. */
		memset(&w, 0, sizeof(w));
		if ((rc = store_begin(ctx->store, 0, &tx, &w)) != 0)
			continue;
		rc = store_schedule_get(tx, due[i].message_id, due[i].recipient, &cur, &w);
		store_rollback(tx);
		if (rc != 0 || cur.next_ms == 0 || cur.next_ms > now_ms)
			continue;
		was = cur;
		if (handle(ctx, &was, &cur, now_ms, &w) != 0)
			log_error("delivery: %s to %s: %s", cur.message_id, cur.recipient, w.text);
		(*acted)++;
	}
	free(due);
	return 0;
}

/*
 * Web page support: the content of message id minimised for the party to,
 * as the paper channels print it, for a staff user's view.
 */
int
delivery_content(const struct delivery_ctx *ctx, const struct party *to, const char *id,
    struct buf *out, struct why *why)
{
	return paper_content(ctx, to, id, out, why);
}
