/*
 * policy: the policy language and the decision engine (docs/policies.md).
 *
 * Files are read line by line into tokens (words, commas, one quoted
 * reason); a trailing backslash joins the next line.  Each logical line is
 * one rule, parsed strictly: every word must be one the position allows,
 * and an unknown word is refused with the nearest known one suggested, so
 * a typo can never silently widen or narrow a rule.
 *
 * A rule keeps each condition as a bit set over its domain with every bit
 * set when the rule does not constrain it, so matching is a handful of
 * bit tests and needs no locking: the loaded policy is never written.
 */
#include "config.h"

#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "err.h"
#include "message.h"
#include "policy.h"
#include "util.h"
#include "xmalloc.h"

#define POLICY_MAX_FILE_BYTES ((size_t)1024 * 1024)
#define POLICY_MAX_RULES 10000
#define POLICY_MAX_WORD 64
#define POLICY_MAX_REASON 200

enum approved_mode {
	APPROVED_UNCONSTRAINED = 0,
	APPROVED_LIST,       /* approved for any of the listed categories */
	APPROVED_ANY_NAMED,  /* approved for at least one category the message names */
	APPROVED_ALL_NAMED   /* approved for every category the message names */
};

struct rule {
	char id[POLICY_RULE_ID_MAX];
	int allow;
	enum policy_action action;
	/* Bit sets over each domain; all bits set: not constrained. */
	unsigned kinds, classes, actors, peers, users, assignments, directions;
	enum approved_mode approved;
	unsigned categories;    /* APPROVED_LIST: bits over message_service_categories */
	char *reason;           /* as written, or NULL */
	char *text;             /* the rule as understood, for explain and default reasons */
	const char *file;       /* points into policy->files */
	int line;
};

struct policy {
	atomic_int refs;
	struct rule *rules;
	size_t nrules;
	char **files;
	size_t nfiles;
};

/* Which context slot the words by, to and from fill for each action. */
enum slot { SLOT_NONE = 0, SLOT_ACTOR, SLOT_PEER };

static const struct action_spec {
	const char *name;
	int kinds;       /* takes message kinds after the action */
	int classes;     /* takes 'class' */
	int users;       /* takes 'user' */
	int conds;       /* takes 'if' conditions */
	enum slot by, to, from;
} actions[POLICY_ACTION_COUNT] = {
	[POLICY_SEND] = { "send", 1, 0, 1, 1, SLOT_ACTOR, SLOT_PEER, SLOT_ACTOR },
	[POLICY_FETCH] = { "fetch", 1, 0, 1, 1, SLOT_ACTOR, SLOT_ACTOR, SLOT_PEER },
	[POLICY_VIEW] = { "view", 1, 0, 1, 1, SLOT_ACTOR, SLOT_NONE, SLOT_NONE },
	[POLICY_RECEIVE] = { "receive", 1, 1, 0, 1, SLOT_NONE, SLOT_PEER, SLOT_ACTOR },
	[POLICY_AUDIT] = { "audit", 0, 0, 1, 0, SLOT_ACTOR, SLOT_NONE, SLOT_NONE },
	[POLICY_ADMIN] = { "admin", 0, 0, 1, 0, SLOT_ACTOR, SLOT_NONE, SLOT_NONE },
};

static const char *const user_names[POLICY_USER_COUNT] = {
	"none", "caseworker", "dispatcher", "auditor", "administrator"
};
static const char *const direction_names[POLICY_DIR_COUNT] = {
	"none", "inbound", "outbound"
};
static const char *const assignment_names[POLICY_ASSIGN_COUNT] = {
	"none", "active", "ended"
};

/* The vocabularies a list may draw from. */
enum vocab { V_KIND, V_CLASS, V_ROLE, V_USER, V_ASSIGN, V_CATEGORY, V_DIRECTION };

static const char *const vocab_what[] = {
	[V_KIND] = "message kind",
	[V_CLASS] = "data class",
	[V_ROLE] = "party role",
	[V_USER] = "user role",
	[V_ASSIGN] = "assignment state",
	[V_CATEGORY] = "service category",
	[V_DIRECTION] = "direction",
};

#define VOCAB_MAX 32

/* Fill names with the words of v; returns how many. */
static size_t
vocab_names(enum vocab v, const char *names[VOCAB_MAX])
{
	size_t n = 0;

	switch (v) {
	case V_KIND:
		for (n = 0; n < MSG_KIND_COUNT; n++)
			names[n] = message_kind_name((enum message_kind)n);
		break;
	case V_CLASS:
		for (n = 0; n < CLASS_COUNT; n++)
			names[n] = message_class_name((enum message_class)n);
		break;
	case V_ROLE:
		for (n = 0; n < ROLE_COUNT; n++)
			names[n] = conf_role_name((enum party_role)n);
		break;
	case V_USER:
		for (n = 0; n < POLICY_USER_COUNT; n++)
			names[n] = user_names[n];
		break;
	case V_ASSIGN:
		for (n = 0; n < POLICY_ASSIGN_COUNT; n++)
			names[n] = assignment_names[n];
		break;
	case V_CATEGORY:
		for (n = 0; n < VOCAB_MAX && message_service_categories[n] != NULL; n++)
			names[n] = message_service_categories[n];
		break;
	case V_DIRECTION:
		/* "none" is a context value, not something a rule can ask for. */
		for (n = 0; n + 1 < POLICY_DIR_COUNT; n++)
			names[n] = direction_names[n + 1];
		break;
	}
	return n;
}

static unsigned
full_set(size_t n)
{
	return n >= 32 ? ~0u : (1u << n) - 1;
}

/* Edit distance (with transpositions) of two short words (longer ones count as far apart). */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev2[POLICY_MAX_WORD + 1],
	    prev[POLICY_MAX_WORD + 1], cur[POLICY_MAX_WORD + 1], c;

	if (la > POLICY_MAX_WORD || lb > POLICY_MAX_WORD)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			c = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < c)
				c = prev[j] + 1;
			if (cur[j - 1] + 1 < c)
				c = cur[j - 1] + 1;
			/* Swapped neighbours ("sned") are one typo, not two. */
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < c)
				c = prev2[j - 2] + 1;
			cur[j] = c;
		}
		memcpy(prev2, prev, sizeof(prev2));
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb];
}

/* The candidate nearest to word when near enough to be a typo, else NULL. */
static const char *
nearest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t i, d, bestd = (size_t)-1, lim;

	lim = strlen(word) <= 4 ? 1 : 2;
	for (i = 0; i < n; i++) {
		if (cands[i] == NULL)
			continue;
		if ((d = distance(word, cands[i])) < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return bestd <= lim ? best : NULL;
}

/* Tokens */

enum tok_type { TOK_WORD, TOK_COMMA, TOK_STRING };

struct tok {
	enum tok_type type;
	char *text;
	int line;
};

struct parser {
	const char *name;       /* the file, for messages */
	struct policy *p;
	struct tok *toks;
	size_t ntoks, cap, pos;
	struct why *why;
};

static void
toks_clear(struct parser *ps)
{
	size_t i;

	for (i = 0; i < ps->ntoks; i++)
		free(ps->toks[i].text);
	ps->ntoks = ps->pos = 0;
}

static void
tok_push(struct parser *ps, enum tok_type type, const char *s, size_t len, int line)
{
	char *text;

	if (ps->ntoks == ps->cap) {
		ps->cap = ps->cap == 0 ? 32 : ps->cap * 2;
		ps->toks = xrealloc(ps->toks, ps->cap * sizeof(*ps->toks));
	}
	text = xmalloc(len + 1);
	memcpy(text, s, len);
	text[len] = '\0';
	ps->toks[ps->ntoks].type = type;
	ps->toks[ps->ntoks].text = text;
	ps->toks[ps->ntoks].line = line;
	ps->ntoks++;
}

static int
perr(struct parser *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record "FILE:LINE: what" in ps->why; returns HEGN_ERR_CONFIG. */
static int
perr(struct parser *ps, int line, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return why_set(ps->why, HEGN_ERR_CONFIG, "%s:%d: %s", ps->name, line, msg);
}

static int
is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/*
 * Split one physical line [s, e) into tokens.  *cont is set when the line
 * ends in a backslash, joining the next line to this rule.
 */
static int
tokenize_line(struct parser *ps, const char *s, const char *e, int line, int *cont)
{
	const char *q;

	*cont = 0;
	while (s < e) {
		if (*s == ' ' || *s == '\t' || *s == '\r') {
			s++;
		} else if (*s == '#') {
			break;
		} else if (*s == ',') {
			tok_push(ps, TOK_COMMA, ",", 1, line);
			s++;
		} else if (*s == '\\') {
			for (q = s + 1; q < e && (*q == ' ' || *q == '\t' || *q == '\r'); q++)
				;
			if (q != e)
				return perr(ps, line,
				    "a backslash may only end a line (to continue the rule on the next)");
			*cont = 1;
			break;
		} else if (*s == '"') {
			for (q = s + 1; q < e && *q != '"'; q++) {
				if ((unsigned char)*q < 0x20 && *q != '\t')
					return perr(ps, line, "control character in a quoted reason");
				if (*q == 0x7f)
					return perr(ps, line, "control character in a quoted reason");
			}
			if (q == e)
				return perr(ps, line, "quoted reason is not closed with '\"'");
			tok_push(ps, TOK_STRING, s + 1, (size_t)(q - s - 1), line);
			s = q + 1;
		} else if (is_word_char((unsigned char)*s)) {
			for (q = s; q < e && is_word_char((unsigned char)*q); q++)
				;
			if ((size_t)(q - s) > POLICY_MAX_WORD)
				return perr(ps, line, "word longer than %d characters",
				    POLICY_MAX_WORD);
			tok_push(ps, TOK_WORD, s, (size_t)(q - s), line);
			s = q;
		} else if ((unsigned char)*s >= 0x21 && (unsigned char)*s < 0x7f) {
			return perr(ps, line, "unexpected character '%c'", *s);
		} else {
			return perr(ps, line, "unexpected byte 0x%02x",
			    (unsigned)(unsigned char)*s);
		}
	}
	return 0;
}

/* Parsing one rule */

static struct tok *
peek(struct parser *ps)
{
	return ps->pos < ps->ntoks ? &ps->toks[ps->pos] : NULL;
}

static int
peek_word(struct parser *ps, const char *w)
{
	struct tok *t = peek(ps);

	return t != NULL && t->type == TOK_WORD && strcmp(t->text, w) == 0;
}

/* The line of the current token, or of the last one at the end of the rule. */
static int
cur_line(struct parser *ps)
{
	if (ps->pos < ps->ntoks)
		return ps->toks[ps->pos].line;
	return ps->ntoks > 0 ? ps->toks[ps->ntoks - 1].line : 0;
}

static const char *
tok_desc(const struct tok *t)
{
	if (t == NULL)
		return "the end of the rule";
	if (t->type == TOK_COMMA)
		return "','";
	if (t->type == TOK_STRING)
		return "a quoted reason";
	return t->text;
}

/* Refuse word t with the nearest of cands suggested, and a hint for words of another place. */
static int
unknown_word(struct parser *ps, const struct tok *t, const char *expected,
    const char *const *cands, size_t n)
{
	const char *near, *names[VOCAB_MAX];
	enum message_kind k;
	size_t i, nn;

	if (t == NULL || t->type != TOK_WORD)
		return perr(ps, cur_line(ps), "expected %s, found %s", expected,
		    tok_desc(t));
	if ((near = nearest(t->text, cands, n)) != NULL)
		return perr(ps, t->line, "unknown word '%s' where %s belongs (did you mean '%s'?)",
		    t->text, expected, near);
	nn = vocab_names(V_USER, names);
	for (i = 1; i < nn; i++) {
		if (strcmp(t->text, names[i]) == 0)
			return perr(ps, t->line, "'%s' is a user role: write 'user %s'",
			    t->text, t->text);
	}
	if (message_kind_from_name(t->text, &k) == 0)
		return perr(ps, t->line,
		    "message kind '%s' out of place: kinds follow the action, as in 'allow send %s'",
		    t->text, t->text);
	return perr(ps, t->line, "unknown word '%s' where %s belongs", t->text, expected);
}

/* Look word up in v; its index or -1. */
static int
vocab_index(enum vocab v, const char *word)
{
	const char *names[VOCAB_MAX];
	size_t i, n;

	n = vocab_names(v, names);
	for (i = 0; i < n; i++) {
		if (strcmp(word, names[i]) == 0)
			return (int)i;
	}
	return -1;
}

/* Parse "a,b,c" from v into *set (bits by index). */
static int
parse_list(struct parser *ps, enum vocab v, const char *clause, unsigned *set)
{
	const char *names[VOCAB_MAX];
	char expected[96];
	struct tok *t;
	size_t n;
	int i;

	*set = 0;
	n = vocab_names(v, names);
	snprintf(expected, sizeof(expected), "a %s after '%s'", vocab_what[v], clause);
	for (;;) {
		t = peek(ps);
		if (t == NULL || t->type != TOK_WORD ||
		    (i = vocab_index(v, t->text)) < 0)
			return unknown_word(ps, t, expected, names, n);
		*set |= 1u << i;
		ps->pos++;
		if ((t = peek(ps)) == NULL || t->type != TOK_COMMA)
			break;
		ps->pos++;
		if ((t = peek(ps)) == NULL || t->type != TOK_WORD)
			return perr(ps, cur_line(ps), "a list may not end with ',' (after '%s')",
			    clause);
	}
	return 0;
}

/* Words that begin a clause, for suggestions. */
static const char *const clause_words[] = {
	"class", "by", "to", "from", "user", "if", "and"
};
static const char *const cond_words[] = { "assignment", "approved", "direction" };

static int
parse_approved(struct parser *ps, struct rule *r)
{
	struct tok *t = peek(ps);

	if (t != NULL && t->type == TOK_WORD && strcmp(t->text, "any-named") == 0) {
		r->approved = APPROVED_ANY_NAMED;
		ps->pos++;
		return 0;
	}
	if (t != NULL && t->type == TOK_WORD && strcmp(t->text, "all-named") == 0) {
		r->approved = APPROVED_ALL_NAMED;
		ps->pos++;
		return 0;
	}
	if (t != NULL && t->type == TOK_WORD && vocab_index(V_CATEGORY, t->text) < 0) {
		const char *names[VOCAB_MAX + 2];
		size_t n = vocab_names(V_CATEGORY, names);

		names[n++] = "any-named";
		names[n++] = "all-named";
		return unknown_word(ps, t,
		    "a service category, 'any-named' or 'all-named' after 'approved'",
		    names, n);
	}
	r->approved = APPROVED_LIST;
	return parse_list(ps, V_CATEGORY, "approved", &r->categories);
}

/* "if COND {and COND}" (the 'if' already taken). */
static int
parse_conds(struct parser *ps, struct rule *r, int *seen_assign, int *seen_approved,
    int *seen_dir)
{
	struct tok *t;
	unsigned set;
	int r2;

	for (;;) {
		t = peek(ps);
		if (t != NULL && t->type == TOK_WORD && strcmp(t->text, "assignment") == 0) {
			if (*seen_assign)
				return perr(ps, t->line, "'assignment' given twice");
			*seen_assign = 1;
			ps->pos++;
			if ((r2 = parse_list(ps, V_ASSIGN, "assignment", &r->assignments)) != 0)
				return r2;
		} else if (t != NULL && t->type == TOK_WORD &&
		    strcmp(t->text, "approved") == 0) {
			if (*seen_approved)
				return perr(ps, t->line, "'approved' given twice");
			*seen_approved = 1;
			ps->pos++;
			if ((r2 = parse_approved(ps, r)) != 0)
				return r2;
		} else if (t != NULL && t->type == TOK_WORD &&
		    strcmp(t->text, "direction") == 0) {
			if (*seen_dir)
				return perr(ps, t->line, "'direction' given twice");
			*seen_dir = 1;
			ps->pos++;
			if ((r2 = parse_list(ps, V_DIRECTION, "direction", &set)) != 0)
				return r2;
			/* Bit i of the list is direction i + 1. */
			r->directions = set << 1;
		} else {
			return unknown_word(ps, t,
			    "a condition (assignment, approved or direction)",
			    cond_words, sizeof(cond_words) / sizeof(cond_words[0]));
		}
		if (!peek_word(ps, "and"))
			break;
		ps->pos++;
	}
	return 0;
}

/* Fill the slot 'word' names for r's action with a role list. */
static int
parse_roles(struct parser *ps, struct rule *r, const char *word, enum slot slot,
    int *seen_actor, int *seen_peer, int line)
{
	const struct action_spec *a = &actions[r->action];
	unsigned *set;
	int *seen;

	if (slot == SLOT_NONE) {
		if (r->action == POLICY_RECEIVE)
			return perr(ps, line,
			    "receive rules name the sender with 'from' and the recipient with 'to', not '%s'",
			    word);
		return perr(ps, line, "'%s' does not apply to %s rules (they name only the acting party, with 'by')",
		    word, a->name);
	}
	set = slot == SLOT_ACTOR ? &r->actors : &r->peers;
	seen = slot == SLOT_ACTOR ? seen_actor : seen_peer;
	if (*seen)
		return perr(ps, line, "the %s party is named twice ('%s' repeats an earlier 'by', 'to' or 'from')",
		    slot == SLOT_ACTOR ? "acting" : "other", word);
	*seen = 1;
	return parse_list(ps, V_ROLE, word, set);
}

/* Refuse a reason that could carry a CPR number or another identifier. */
static int
check_reason(struct parser *ps, const struct tok *t)
{
	size_t i, run = 0;

	if (strlen(t->text) > POLICY_MAX_REASON)
		return perr(ps, t->line, "reason longer than %d characters", POLICY_MAX_REASON);
	if (t->text[0] == '\0')
		return perr(ps, t->line, "empty reason");
	for (i = 0; t->text[i] != '\0'; i++) {
		run = (t->text[i] >= '0' && t->text[i] <= '9') ? run + 1 : 0;
		if (run >= 6)
			return perr(ps, t->line,
			    "reason holds a run of 6 or more digits, which could be a CPR number: reasons must not carry citizen data");
	}
	return 0;
}

static void
sappend(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append to the string in out[len], truncating. */
static void
sappend(char *out, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(out, len);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(out + used, len - used, fmt, ap);
	va_end(ap);
}

/* Append " word a,b" for the members of set drawn from v (bit i + off is word i). */
static void
text_set(char *out, size_t len, const char *word, enum vocab v, unsigned set, int off)
{
	const char *names[VOCAB_MAX];
	size_t i, n;
	int first = 1;

	n = vocab_names(v, names);
	if (word != NULL)
		sappend(out, len, " %s", word);
	for (i = 0; i < n; i++) {
		if ((set & (1u << (i + (size_t)off))) == 0)
			continue;
		sappend(out, len, "%s%s", first ? " " : ",", names[i]);
		first = 0;
	}
}

/* The rule as understood, in canonical word order (without id and reason). */
static char *
rule_text(const struct rule *r)
{
	const struct action_spec *a = &actions[r->action];
	char out[1024];
	const char *sep = " if";

	out[0] = '\0';
	sappend(out, sizeof(out), "%s %s", r->allow ? "allow" : "deny", a->name);
	if (a->kinds && r->kinds != full_set(MSG_KIND_COUNT))
		text_set(out, sizeof(out), NULL, V_KIND, r->kinds, 0);
	if (a->classes && r->classes != full_set(CLASS_COUNT))
		text_set(out, sizeof(out), "class", V_CLASS, r->classes, 0);
	if (r->actors != full_set(ROLE_COUNT))
		text_set(out, sizeof(out), a->by == SLOT_ACTOR ? "by" :
		    a->from == SLOT_ACTOR ? "from" : "to", V_ROLE, r->actors, 0);
	if (r->peers != full_set(ROLE_COUNT))
		text_set(out, sizeof(out), a->to == SLOT_PEER ? "to" : "from", V_ROLE,
		    r->peers, 0);
	if (r->users != full_set(POLICY_USER_COUNT))
		text_set(out, sizeof(out), "user", V_USER, r->users, 0);
	if (r->assignments != full_set(POLICY_ASSIGN_COUNT)) {
		sappend(out, sizeof(out), "%s", sep);
		text_set(out, sizeof(out), "assignment", V_ASSIGN, r->assignments, 0);
		sep = " and";
	}
	if (r->approved != APPROVED_UNCONSTRAINED) {
		sappend(out, sizeof(out), "%s approved", sep);
		if (r->approved == APPROVED_LIST)
			text_set(out, sizeof(out), NULL, V_CATEGORY, r->categories, 0);
		else
			sappend(out, sizeof(out), " %s", r->approved == APPROVED_ANY_NAMED ?
			    "any-named" : "all-named");
		sep = " and";
	}
	if (r->directions != full_set(POLICY_DIR_COUNT)) {
		sappend(out, sizeof(out), "%s", sep);
		text_set(out, sizeof(out), "direction", V_DIRECTION, r->directions, 1);
	}
	return xstrdup(out);
}

static int
valid_rule_id(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	    (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (!is_word_char((unsigned char)s[i]))
			return 0;
	}
	return i < POLICY_RULE_ID_MAX;
}

/* Parse the tokens of one logical line into a new rule of ps->p. */
static int
parse_rule(struct parser *ps)
{
	const char *names[VOCAB_MAX];
	struct rule r;
	struct tok *t;
	const struct action_spec *a;
	size_t i, n;
	int ret = HEGN_ERR_CONFIG, seen_kinds = 0, seen_class = 0, seen_actor = 0,
	    seen_peer = 0, seen_user = 0, seen_assign = 0, seen_approved = 0,
	    seen_dir = 0, seen_if = 0, line;
	static const char *const rule_word[] = { "rule" };
	static const char *const effects[] = { "allow", "deny" };

	memset(&r, 0, sizeof(r));
	r.kinds = full_set(MSG_KIND_COUNT);
	r.classes = full_set(CLASS_COUNT);
	r.actors = r.peers = full_set(ROLE_COUNT);
	r.users = full_set(POLICY_USER_COUNT);
	r.assignments = full_set(POLICY_ASSIGN_COUNT);
	r.directions = full_set(POLICY_DIR_COUNT);
	r.line = ps->toks[0].line;

	if (!peek_word(ps, "rule")) {
		ret = unknown_word(ps, peek(ps), "'rule' at the start of a line", rule_word, 1);
		goto out;
	}
	ps->pos++;
	if ((t = peek(ps)) == NULL || t->type != TOK_WORD) {
		ret = perr(ps, cur_line(ps), "expected a rule id after 'rule', found %s",
		    tok_desc(t));
		goto out;
	}
	if (!valid_rule_id(t->text)) {
		ret = perr(ps, t->line,
		    "rule id '%s' must be 1 to %d letters, digits, '_', '-' or '.', starting with a letter or digit",
		    t->text, POLICY_RULE_ID_MAX - 1);
		goto out;
	}
	if (strcmp(t->text, POLICY_DEFAULT_DENY) == 0) {
		ret = perr(ps, t->line, "rule id '%s' is reserved for the default decision",
		    t->text);
		goto out;
	}
	for (i = 0; i < ps->p->nrules; i++) {
		if (strcmp(ps->p->rules[i].id, t->text) == 0) {
			ret = perr(ps, t->line, "rule id '%s' already used at %s:%d",
			    t->text, ps->p->rules[i].file, ps->p->rules[i].line);
			goto out;
		}
	}
	snprintf(r.id, sizeof(r.id), "%s", t->text);
	ps->pos++;

	t = peek(ps);
	if (peek_word(ps, "allow") || peek_word(ps, "deny")) {
		r.allow = strcmp(t->text, "allow") == 0;
		ps->pos++;
	} else {
		ret = unknown_word(ps, t, "'allow' or 'deny' after the rule id", effects, 2);
		goto out;
	}

	t = peek(ps);
	for (i = 0; i < POLICY_ACTION_COUNT; i++)
		names[i] = actions[i].name;
	if (t == NULL || t->type != TOK_WORD ||
	    policy_action_from_name(t->text, &r.action) != 0) {
		ret = unknown_word(ps, t, "an action (send, fetch, view, receive, audit, admin)",
		    names, POLICY_ACTION_COUNT);
		goto out;
	}
	a = &actions[r.action];
	ps->pos++;

	/* Kinds come right after the action, without a keyword. */
	if ((t = peek(ps)) != NULL && t->type == TOK_WORD &&
	    (strcmp(t->text, "any") == 0 || vocab_index(V_KIND, t->text) >= 0)) {
		if (!a->kinds) {
			ret = perr(ps, t->line, "%s rules take no message kind", a->name);
			goto out;
		}
		seen_kinds = 1;
		if (strcmp(t->text, "any") == 0)
			ps->pos++;
		else if ((ret = parse_list(ps, V_KIND, a->name, &r.kinds)) != 0)
			goto out;
	}

	while ((t = peek(ps)) != NULL && t->type != TOK_STRING) {
		line = t->line;
		if (t->type != TOK_WORD) {
			ret = perr(ps, line, "unexpected ','");
			goto out;
		}
		if (strcmp(t->text, "class") == 0) {
			ps->pos++;
			if (!a->classes) {
				ret = perr(ps, line, "'class' applies only to receive rules");
				goto out;
			}
			if (seen_class) {
				ret = perr(ps, line, "'class' given twice");
				goto out;
			}
			seen_class = 1;
			if ((ret = parse_list(ps, V_CLASS, "class", &r.classes)) != 0)
				goto out;
		} else if (strcmp(t->text, "by") == 0 || strcmp(t->text, "to") == 0 ||
		    strcmp(t->text, "from") == 0) {
			enum slot slot = t->text[0] == 'b' ? a->by :
			    t->text[0] == 't' ? a->to : a->from;
			const char *word = t->text;

			ps->pos++;
			if ((ret = parse_roles(ps, &r, word, slot, &seen_actor, &seen_peer,
			    line)) != 0)
				goto out;
		} else if (strcmp(t->text, "user") == 0) {
			ps->pos++;
			if (!a->users) {
				ret = perr(ps, line,
				    "'user' does not apply to %s rules (the recipient's data classes do not depend on who sent)",
				    a->name);
				goto out;
			}
			if (seen_user) {
				ret = perr(ps, line, "'user' given twice");
				goto out;
			}
			seen_user = 1;
			if ((ret = parse_list(ps, V_USER, "user", &r.users)) != 0)
				goto out;
		} else if (strcmp(t->text, "if") == 0) {
			ps->pos++;
			if (!a->conds) {
				ret = perr(ps, line, "%s rules take no 'if' conditions", a->name);
				goto out;
			}
			if (seen_if) {
				ret = perr(ps, line, "'if' given twice: join conditions with 'and'");
				goto out;
			}
			seen_if = 1;
			if ((ret = parse_conds(ps, &r, &seen_assign, &seen_approved,
			    &seen_dir)) != 0)
				goto out;
		} else if (vocab_index(V_KIND, t->text) >= 0 || strcmp(t->text, "any") == 0) {
			ret = perr(ps, line, seen_kinds || !a->kinds ?
			    "message kind '%s' out of place: kinds follow the action once, as one list" :
			    "message kind '%s' out of place: kinds follow the action directly",
			    t->text);
			goto out;
		} else if (vocab_index(V_ROLE, t->text) >= 0) {
			ret = perr(ps, line,
			    "party role '%s' needs 'by', 'to' or 'from' before it", t->text);
			goto out;
		} else {
			/* A misspelt kind is as likely as a misspelt keyword. */
			n = 0;
			for (i = 0; i < sizeof(clause_words) / sizeof(clause_words[0]); i++)
				names[n++] = clause_words[i];
			for (i = 0; a->kinds && !seen_kinds && i < MSG_KIND_COUNT; i++)
				names[n++] = message_kind_name((enum message_kind)i);
			ret = unknown_word(ps, t,
			    "a clause (class, by, to, from, user, if) or a quoted reason",
			    names, n);
			goto out;
		}
	}
	if ((t = peek(ps)) != NULL) {
		/* A quoted reason, which must end the rule. */
		if ((ret = check_reason(ps, t)) != 0)
			goto out;
		r.reason = xstrdup(t->text);
		ps->pos++;
		if ((t = peek(ps)) != NULL) {
			ret = perr(ps, t->line, "%s after the reason: the reason ends the rule",
			    tok_desc(t));
			goto out;
		}
	}
	if (ps->p->nrules >= POLICY_MAX_RULES) {
		ret = perr(ps, r.line, "more than %d rules", POLICY_MAX_RULES);
		goto out;
	}
	r.file = ps->p->files[ps->p->nfiles - 1];
	r.text = rule_text(&r);
	ps->p->rules = xrealloc(ps->p->rules, (ps->p->nrules + 1) * sizeof(r));
	ps->p->rules[ps->p->nrules++] = r;
	memset(&r, 0, sizeof(r));
	ret = 0;
 out:
	free(r.reason);
	free(r.text);
	return ret;
}

/* Parse text[0..len) as the file called name into p. */
static int
parse_text(struct policy *p, const char *name, const char *text, size_t len,
    struct why *why)
{
	struct parser ps;
	const char *s = text, *e = text + len, *nl;
	size_t before;
	int r = HEGN_ERR_CONFIG, line = 0, cont = 0, was_cont;

	memset(&ps, 0, sizeof(ps));
	ps.name = name;
	ps.p = p;
	ps.why = why;
	p->files = xrealloc(p->files, (p->nfiles + 1) * sizeof(*p->files));
	p->files[p->nfiles++] = xstrdup(name);

	if (memchr(text, '\0', len) != NULL) {
		r = why_set(why, HEGN_ERR_CONFIG, "%s: contains a NUL byte", name);
		goto out;
	}
	while (s < e) {
		line++;
		if ((nl = memchr(s, '\n', (size_t)(e - s))) == NULL)
			nl = e;
		before = ps.ntoks;
		was_cont = cont;
		if ((r = tokenize_line(&ps, s, nl, line, &cont)) != 0)
			goto out;
		/* Else deleting a continued line would silently shorten the rule. */
		if (was_cont && ps.ntoks == before) {
			r = perr(&ps, line,
			    "this line continues the rule above (which ends in a backslash) but is empty or only a comment");
			goto out;
		}
		s = nl < e ? nl + 1 : e;
		if (cont)
			continue;
		if (ps.ntoks > 0 && (r = parse_rule(&ps)) != 0)
			goto out;
		toks_clear(&ps);
	}
	if (cont) {
		r = perr(&ps, line, "the last line ends in a backslash but nothing follows");
		goto out;
	}
	r = 0;
 out:
	toks_clear(&ps);
	free(ps.toks);
	return r;
}

static struct policy *
policy_new(void)
{
	struct policy *p = xcalloc(1, sizeof(*p));

	atomic_init(&p->refs, 1);
	return p;
}

int
policy_load_string(const char *name, const char *text, struct policy **out,
    struct why *why)
{
	struct policy *p = NULL;
	int r;

	*out = NULL;
	if (name == NULL || text == NULL) {
		r = why_set(why, HEGN_ERR_CONFIG, "policy: no name or text");
		goto out;
	}
	p = policy_new();
	if ((r = parse_text(p, name, text, strlen(text), why)) != 0)
		goto out;
	*out = p;
	p = NULL;
	r = 0;
 out:
	policy_free(p);
	return r;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
is_policy_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 7 && strcmp(n + len - 7, ".policy") == 0;
}

int
policy_load_dir(const char *dir, struct policy **out, struct why *why)
{
	struct policy *p = NULL;
	DIR *d = NULL;
	struct dirent *de;
	struct buf b = { 0 };
	char **names = NULL, *path = NULL;
	size_t n = 0, i;
	int r;

	*out = NULL;
	if ((d = opendir(dir)) == NULL) {
		r = why_set(why, HEGN_ERR_CONFIG, "policy directory %s: %s", dir,
		    strerror(errno));
		goto out;
	}
	/* Whoever may add a file to the folder may add a rule that grants them anything. */
	{
		struct stat st;

		if (fstat(dirfd(d), &st) == -1) {
			r = why_set(why, HEGN_ERR_CONFIG, "policy directory %s: %s", dir,
			    strerror(errno));
			goto out;
		}
		if ((st.st_mode & 022) != 0) {
			r = why_set(why, HEGN_ERR_CONFIG,
			    "policy directory %s: writable by group or others (mode %04o): chmod go-w it",
			    dir, (unsigned)(st.st_mode & 07777));
			goto out;
		}
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_policy_name(de->d_name))
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	if (n == 0) {
		r = why_set(why, HEGN_ERR_CONFIG,
		    "policy directory %s holds no *.policy files (everything would be denied)",
		    dir);
		goto out;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	p = policy_new();
	for (i = 0; i < n; i++) {
		free(path);
		path = xasprintf("%s/%s", dir, names[i]);
		/* A file others may write could grant them anything. */
		if ((r = conf_check_file(path, 0, why)) != 0)
			goto out;
		buf_free(&b, 0);
		if ((r = util_read_file(path, POLICY_MAX_FILE_BYTES, &b, why)) != 0) {
			r = HEGN_ERR_CONFIG;
			goto out;
		}
		if ((r = parse_text(p, path, (const char *)b.data, b.len, why)) != 0)
			goto out;
	}
	*out = p;
	p = NULL;
	r = 0;
 out:
	if (d != NULL)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
	buf_free(&b, 0);
	policy_free(p);
	return r;
}

struct policy *
policy_ref(struct policy *p)
{
	if (p != NULL)
		atomic_fetch_add(&p->refs, 1);
	return p;
}

void
policy_free(struct policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	for (i = 0; i < p->nrules; i++) {
		free(p->rules[i].reason);
		free(p->rules[i].text);
	}
	free(p->rules);
	for (i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	free(p);
}

size_t
policy_rule_count(const struct policy *p)
{
	return p == NULL ? 0 : p->nrules;
}

const char *
policy_rule_id(const struct policy *p, size_t i)
{
	return p == NULL || i >= p->nrules ? NULL : p->rules[i].id;
}

/* Decisions */

/* Is the token [s, s+len) one of the comma-separated items of list? */
static int
list_has(const char *list, const char *s, size_t len)
{
	const char *e;
	size_t l;

	if (list == NULL || len == 0)
		return 0;
	while (*list != '\0') {
		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		for (e = list; *e != '\0' && *e != ','; e++)
			;
		l = (size_t)(e - list);
		while (l > 0 && (list[l - 1] == ' ' || list[l - 1] == '\t'))
			l--;
		if (l == len && memcmp(list, s, len) == 0)
			return 1;
		list = e;
	}
	return 0;
}

/*
 * How many items of services are in approvals (*named: how many items
 * services has); empty items are skipped.
 */
static size_t
named_approved(const char *services, const char *approvals, size_t *named)
{
	const char *s = services, *e;
	size_t l, hits = 0;

	*named = 0;
	if (s == NULL)
		return 0;
	while (*s != '\0') {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		for (e = s; *e != '\0' && *e != ','; e++)
			;
		l = (size_t)(e - s);
		while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
			l--;
		if (l > 0) {
			(*named)++;
			hits += list_has(approvals, s, l);
		}
		s = e;
	}
	return hits;
}

static int
approved_matches(const struct rule *r, const struct policy_ctx *ctx)
{
	size_t i, named, hits;

	switch (r->approved) {
	case APPROVED_UNCONSTRAINED:
		return 1;
	case APPROVED_LIST:
		for (i = 0; message_service_categories[i] != NULL && i < VOCAB_MAX; i++) {
			if ((r->categories & (1u << i)) != 0 &&
			    list_has(ctx->approvals, message_service_categories[i],
			    strlen(message_service_categories[i])))
				return 1;
		}
		return 0;
	case APPROVED_ANY_NAMED:
		hits = named_approved(ctx->services, ctx->approvals, &named);
		return hits > 0;
	case APPROVED_ALL_NAMED:
		/* A message that names no service gives nothing to be approved for. */
		hits = named_approved(ctx->services, ctx->approvals, &named);
		return named > 0 && hits == named;
	}
	return 0;
}

#define IN(set, v) ((((set) >> (unsigned)(v)) & 1u) != 0)

static int
rule_matches(const struct rule *r, const struct policy_ctx *ctx)
{
	const struct action_spec *a = &actions[ctx->action];

	if (r->action != ctx->action)
		return 0;
	if (a->kinds && !IN(r->kinds, ctx->kind))
		return 0;
	if (a->classes && !IN(r->classes, ctx->data_class))
		return 0;
	if (!IN(r->actors, ctx->actor_role) || !IN(r->peers, ctx->peer_role))
		return 0;
	if (!IN(r->users, ctx->user_role))
		return 0;
	if (!IN(r->assignments, ctx->assignment) || !IN(r->directions, ctx->direction))
		return 0;
	return approved_matches(r, ctx);
}

static int
ctx_valid(const struct policy_ctx *ctx)
{
	return ctx != NULL &&
	    (unsigned)ctx->action < POLICY_ACTION_COUNT &&
	    (unsigned)ctx->actor_role < ROLE_COUNT &&
	    (unsigned)ctx->user_role < POLICY_USER_COUNT &&
	    (unsigned)ctx->peer_role < ROLE_COUNT &&
	    (unsigned)ctx->kind < MSG_KIND_COUNT &&
	    (unsigned)ctx->direction < POLICY_DIR_COUNT &&
	    (unsigned)ctx->assignment < POLICY_ASSIGN_COUNT &&
	    (unsigned)ctx->data_class < CLASS_COUNT;
}

/* The reason of the default deny: what was asked, in words (no citizen data exists in ctx). */
static void
default_reason(const struct policy_ctx *ctx, char *out, size_t len)
{
	const struct action_spec *a = &actions[ctx->action];
	const char *sender, *recipient;

	out[0] = '\0';
	sappend(out, len, "no rule allows %s", a->name);
	if (ctx->action == POLICY_RECEIVE)
		sappend(out, len, " of %s data", message_class_name(ctx->data_class));
	if (a->kinds)
		sappend(out, len, " of %s", message_kind_name(ctx->kind));
	if (ctx->action == POLICY_SEND || ctx->action == POLICY_RECEIVE) {
		sender = conf_role_name(ctx->actor_role);
		recipient = conf_role_name(ctx->peer_role);
	} else if (ctx->action == POLICY_FETCH) {
		sender = conf_role_name(ctx->peer_role);
		recipient = conf_role_name(ctx->actor_role);
	} else {
		sender = recipient = NULL;
	}
	if (sender != NULL)
		sappend(out, len, " from %s to %s", sender, recipient);
	else
		sappend(out, len, " by %s", conf_role_name(ctx->actor_role));
	if (a->users)
		sappend(out, len, " (user %s)", user_names[ctx->user_role]);
	if (a->conds)
		sappend(out, len, " with assignment %s", assignment_names[ctx->assignment]);
	sappend(out, len, "; everything not allowed is denied");
}

int
policy_decide(const struct policy *p, const struct policy_ctx *ctx,
    struct policy_decision *out)
{
	const struct rule *allow = NULL, *deny = NULL, *r;
	size_t i;

	memset(out, 0, sizeof(*out));
	snprintf(out->rule_id, sizeof(out->rule_id), "%s", POLICY_DEFAULT_DENY);
	if (!ctx_valid(ctx)) {
		snprintf(out->reason, sizeof(out->reason),
		    "the request could not be described to the policy (a field is out of range)");
		return HEGN_ERR_INVALID;
	}
	for (i = 0; p != NULL && i < p->nrules; i++) {
		r = &p->rules[i];
		if (!rule_matches(r, ctx))
			continue;
		if (!r->allow) {
			deny = r;
			break;
		}
		if (allow == NULL)
			allow = r;
	}
	if ((r = deny != NULL ? deny : allow) != NULL) {
		out->allow = r->allow;
		snprintf(out->rule_id, sizeof(out->rule_id), "%s", r->id);
		snprintf(out->reason, sizeof(out->reason), "%s",
		    r->reason != NULL ? r->reason : r->text);
	} else {
		default_reason(ctx, out->reason, sizeof(out->reason));
	}
	return 0;
}

unsigned
policy_classes_for(const struct policy *p, const struct policy_ctx *ctx,
    struct policy_decision per_class[CLASS_COUNT])
{
	struct policy_ctx c;
	struct policy_decision d, *dp;
	unsigned set = 0;
	int i;

	if (ctx != NULL)
		c = *ctx;
	else
		memset(&c, 0, sizeof(c));
	c.action = POLICY_RECEIVE;
	for (i = 0; i < CLASS_COUNT; i++) {
		dp = per_class != NULL ? &per_class[i] : &d;
		c.data_class = (enum message_class)i;
		if (ctx == NULL) {
			memset(dp, 0, sizeof(*dp));
			snprintf(dp->rule_id, sizeof(dp->rule_id), "%s", POLICY_DEFAULT_DENY);
			snprintf(dp->reason, sizeof(dp->reason), "no request to decide");
			continue;
		}
		if (policy_decide(p, &c, dp) == 0 && dp->allow)
			set |= 1u << i;
	}
	return set;
}

int
policy_print_decision(const struct policy_decision *d, FILE *f)
{
	if (fprintf(f, "%s (rule %s): %s\n", d->allow ? "allow" : "deny", d->rule_id,
	    d->reason) < 0)
		return HEGN_ERR_IO;
	return 0;
}

int
policy_explain(const struct policy *p, FILE *f)
{
	const struct rule *r;
	size_t i, j, n;
	int ok = 1;

	ok &= fprintf(f, "# %zu rule%s from %zu file%s\n", policy_rule_count(p),
	    policy_rule_count(p) == 1 ? "" : "s", p == NULL ? (size_t)0 : p->nfiles,
	    p != NULL && p->nfiles == 1 ? "" : "s") >= 0;
	for (i = 0; p != NULL && i < p->nfiles; i++) {
		for (j = n = 0; j < p->nrules; j++)
			n += p->rules[j].file == p->files[i];
		ok &= fprintf(f, "# %s: %zu rule%s\n", p->files[i], n,
		    n == 1 ? "" : "s") >= 0;
	}
	ok &= fprintf(f, "# decision: a matching deny rule wins over every allow; else the first "
	    "matching allow; else deny (rule %s)\n", POLICY_DEFAULT_DENY) >= 0;
	for (i = 0; p != NULL && i < p->nrules; i++) {
		r = &p->rules[i];
		ok &= fprintf(f, "%s:%d: rule %s %s", r->file, r->line, r->id, r->text) >= 0;
		if (r->reason != NULL)
			ok &= fprintf(f, " \"%s\"", r->reason) >= 0;
		ok &= fputc('\n', f) != EOF;
	}
	return ok ? 0 : HEGN_ERR_IO;
}

enum policy_direction
policy_direction_to(enum party_role recipient)
{
	switch (recipient) {
	case ROLE_VISITATION:
	case ROLE_AUDITOR:
		return POLICY_DIR_INBOUND;
	case ROLE_PROVIDER:
	case ROLE_HOSPITAL:
		return POLICY_DIR_OUTBOUND;
	default:
		return POLICY_DIR_NONE;
	}
}

/* Names */

static int
name_lookup(const char *const *names, size_t n, const char *name, int *out)
{
	size_t i;

	for (i = 0; name != NULL && i < n; i++) {
		if (names[i] != NULL && strcmp(name, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return HEGN_ERR_INVALID;
}

const char *
policy_action_name(enum policy_action a)
{
	return (unsigned)a < POLICY_ACTION_COUNT ? actions[a].name : NULL;
}

const char *
policy_user_role_name(enum policy_user_role u)
{
	return (unsigned)u < POLICY_USER_COUNT ? user_names[u] : NULL;
}

const char *
policy_direction_name(enum policy_direction d)
{
	return (unsigned)d < POLICY_DIR_COUNT ? direction_names[d] : NULL;
}

const char *
policy_assignment_name(enum policy_assignment s)
{
	return (unsigned)s < POLICY_ASSIGN_COUNT ? assignment_names[s] : NULL;
}

int
policy_action_from_name(const char *name, enum policy_action *a)
{
	const char *names[POLICY_ACTION_COUNT];
	int i, r;

	for (i = 0; i < POLICY_ACTION_COUNT; i++)
		names[i] = actions[i].name;
	if ((r = name_lookup(names, POLICY_ACTION_COUNT, name, &i)) == 0)
		*a = (enum policy_action)i;
	return r;
}

int
policy_user_role_from_name(const char *name, enum policy_user_role *u)
{
	int i, r;

	if ((r = name_lookup(user_names, POLICY_USER_COUNT, name, &i)) == 0)
		*u = (enum policy_user_role)i;
	return r;
}

int
policy_direction_from_name(const char *name, enum policy_direction *d)
{
	int i, r;

	if ((r = name_lookup(direction_names, POLICY_DIR_COUNT, name, &i)) == 0)
		*d = (enum policy_direction)i;
	return r;
}

int
policy_assignment_from_name(const char *name, enum policy_assignment *s)
{
	int i, r;

	if ((r = name_lookup(assignment_names, POLICY_ASSIGN_COUNT, name, &i)) == 0)
		*s = (enum policy_assignment)i;
	return r;
}
