/*
 * render: messages as PDF with libharu and the PDF base-14 Helvetica fonts
 * in WinAnsi encoding (Windows-1252), which covers Danish and needs no font
 * files.  Everything libharu allocates holds personal data, so its memory is
 * wiped before it is freed.
 */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hpdf.h>
#include <jansson.h>

#include "err.h"
#include "render.h"
#include "util.h"
#include "xmalloc.h"

#define PAGE_MARGIN 56.0f
#define PAGE_BOTTOM 64.0f   /* lowest text line; the footer sits below */
#define BODY_SIZE 10.0f
#define LINE(size) ((size) * 1.35f)
#define LABEL_COL 170.0f
#define INDENT 14.0f
#define MAX_DEPTH 8
#define MAX_STRING 20000    /* longer strings are cut with a note */

/* Windows-1252 0x80..0x9f; 0 where the code page has a hole. */
static const uint16_t cp1252_high[32] = {
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
	0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
};

static int
to_cp1252(uint32_t cp)
{
	int i;

	if (cp < 0x80 || (cp >= 0xa0 && cp <= 0xff))
		return (int)cp;
	for (i = 0; i < 32; i++) {
		if (cp1252_high[i] == cp)
			return 0x80 + i;
	}
	return '?';
}

char *
render_winansi(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = xmalloc(len + 1);
	size_t i = 0, o = 0, need, k;
	uint32_t cp, min;
	int c;

	while (i < len) {
		if (p[i] < 0x80) {
			cp = p[i++];
		} else {
			if ((p[i] & 0xe0) == 0xc0) {
				need = 1;
				cp = p[i] & 0x1f;
				min = 0x80;
			} else if ((p[i] & 0xf0) == 0xe0) {
				need = 2;
				cp = p[i] & 0x0f;
				min = 0x800;
			} else if ((p[i] & 0xf8) == 0xf0) {
				need = 3;
				cp = p[i] & 0x07;
				min = 0x10000;
			} else {
				out[o++] = '?';
				i++;
				continue;
			}
			for (k = 1; k <= need; k++) {
				if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
					break;
				cp = (cp << 6) | (p[i + k] & 0x3f);
			}
			if (k <= need || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
				out[o++] = '?';
				i++;
				continue;
			}
			i += need + 1;
		}
		if (cp == '\t')
			cp = ' ';
		if ((cp < 0x20 && cp != '\n') || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
			continue;
		c = to_cp1252(cp);
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

/* libharu's allocations, wiped on free. */
static void *
pen_alloc(HPDF_UINT size)
{
	return malloc(size);
}

static void
pen_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

struct pen {
	HPDF_Doc pdf;
	HPDF_Page page;
	HPDF_Font font, bold;
	float y, width, height;
	int pageno;
	HPDF_STATUS err, detail;
	const char *id;
};

static void
pen_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *arg)
{
	struct pen *pen = arg;

	if (pen->err == 0) {
		pen->err = error_no;
		pen->detail = detail_no;
	}
}

static void
text_at(struct pen *pen, HPDF_Font font, float size, float x, float y, const char *cp)
{
	HPDF_Page_BeginText(pen->page);
	HPDF_Page_SetFontAndSize(pen->page, font, size);
	HPDF_Page_TextOut(pen->page, x, y, cp);
	HPDF_Page_EndText(pen->page);
}

static void
new_page(struct pen *pen)
{
	char foot[200], *cp;

	pen->page = HPDF_AddPage(pen->pdf);
	HPDF_Page_SetSize(pen->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
	pen->width = HPDF_Page_GetWidth(pen->page);
	pen->height = HPDF_Page_GetHeight(pen->page);
	pen->y = pen->height - PAGE_MARGIN;
	pen->pageno++;
	snprintf(foot, sizeof(foot),
	    "Fortroligt: personoplysninger – Confidential: personal data    "
	    "hegn %s    side/page %d", pen->id, pen->pageno);
	cp = render_winansi(foot, strlen(foot));
	text_at(pen, pen->font, 8.0f, PAGE_MARGIN, 30.0f, cp);
	free(cp);
}

static void
need_space(struct pen *pen, float h)
{
	if (pen->y - h < PAGE_BOTTOM)
		new_page(pen);
}

/*
 * Lay cp (Windows-1252, may hold LF) out in lines of at most width points;
 * calls emit for each line when emit is set.  Returns the number of lines.
 */
static int
wrap(struct pen *pen, HPDF_Font font, float size, float width, const char *cp,
    void (*emit)(struct pen *, const char *, void *), void *arg)
{
	char *copy = xstrdup(cp), *para, *next, *p, save;
	HPDF_UINT n;
	HPDF_REAL real;
	int lines = 0;

	HPDF_Page_SetFontAndSize(pen->page, font, size);
	for (para = copy; para != NULL; para = next) {
		if ((next = strchr(para, '\n')) != NULL)
			*next++ = '\0';
		p = para;
		if (*p == '\0') {
			if (emit != NULL)
				emit(pen, "", arg);
			lines++;
			continue;
		}
		while (*p != '\0') {
			n = HPDF_Page_MeasureText(pen->page, p, width, HPDF_TRUE, &real);
			if (n == 0)
				n = HPDF_Page_MeasureText(pen->page, p, width, HPDF_FALSE, &real);
			if (n == 0)
				n = 1;
			save = p[n];
			p[n] = '\0';
			if (emit != NULL)
				emit(pen, p, arg);
			p[n] = save;
			lines++;
			p += n;
			while (*p == ' ')
				p++;
		}
	}
	free(copy);
	return lines;
}

struct emit_ctx {
	HPDF_Font font;
	float size, x;
};

static void
emit_line(struct pen *pen, const char *line, void *arg)
{
	struct emit_ctx *e = arg;

	need_space(pen, LINE(e->size));
	pen->y -= LINE(e->size);
	text_at(pen, e->font, e->size, e->x, pen->y, line);
}

/* A paragraph of UTF-8 text at x, wrapped to the right margin. */
static void
para(struct pen *pen, HPDF_Font font, float size, float x, const char *utf8)
{
	struct emit_ctx e = { font, size, x };
	char *cp = render_winansi(utf8, strlen(utf8));

	wrap(pen, font, size, pen->width - PAGE_MARGIN - x, cp, emit_line, &e);
	free(cp);
}

static void
heading(struct pen *pen, const char *utf8)
{
	need_space(pen, 3 * LINE(13.0f));
	pen->y -= 8.0f;
	para(pen, pen->bold, 13.0f, PAGE_MARGIN, utf8);
	pen->y -= 3.0f;
}

/* "label  value" with the value wrapped in its own column. */
static void
field(struct pen *pen, float x, const char *label, const char *value)
{
	struct emit_ctx e = { pen->font, BODY_SIZE, x + LABEL_COL };
	char *lcp = render_winansi(label, strlen(label));
	char *vcp = render_winansi(value, strlen(value));
	float lw;

	HPDF_Page_SetFontAndSize(pen->page, pen->bold, BODY_SIZE);
	lw = HPDF_Page_TextWidth(pen->page, lcp);
	if (lw > LABEL_COL - 6.0f || x + LABEL_COL > pen->width - PAGE_MARGIN - 120.0f) {
		/* A long label or a deep level: the value goes below, indented. */
		para(pen, pen->bold, BODY_SIZE, x, label);
		e.x = x + INDENT;
	} else {
		need_space(pen, 2 * LINE(BODY_SIZE));
		text_at(pen, pen->bold, BODY_SIZE, x, pen->y - LINE(BODY_SIZE), lcp);
	}
	wrap(pen, pen->font, BODY_SIZE, pen->width - PAGE_MARGIN - e.x, vcp, emit_line, &e);
	pen->y -= 2.0f;
	free(lcp);
	free(vcp);
}

/* Danish and English labels for the members docs/messages.md defines. */
static const struct {
	const char *key, *label;
} labels[] = {
	{ "name", "Navn / Name" },
	{ "cpr", "CPR-nummer / CPR number" },
	{ "ecpr", "Erstatnings-CPR (X-eCPR) / replacement CPR (X-eCPR)" },
	{ "services", "Ydelser / Services" },
	{ "start_date", "Startdato / Start date" },
	{ "end_date", "Slutdato / End date" },
	{ "address", "Adresse / Address" },
	{ "contact", "Kontakt / Contact" },
	{ "visits_per_week", "Besøg pr. uge / Visits per week" },
	{ "notes", "Bemærkninger / Notes" },
	{ "description", "Beskrivelse / Description" },
	{ "diagnoses", "Diagnoser / Diagnoses" },
	{ "medication", "Medicin / Medication" },
	{ "allergies", "Allergier / Allergies" },
	{ "effective_from", "Gældende fra / Effective from" },
	{ "reason", "Årsag / Reason" },
	{ "event_time", "Tidspunkt / Time" },
	{ "hospital", "Sygehus / Hospital" },
	{ "department", "Afdeling / Department" },
	{ "next_visit_needed_by", "Næste besøg senest / Next visit by" },
	{ "expected_return", "Forventet retur / Expected return" },
	{ "time_of_death", "Dødstidspunkt / Time of death" },
	{ "proposed_from", "Foreslået fra / Proposed from" },
	{ "proposal", "Forslag / Proposal" },
	{ "observed_at", "Observeret / Observed at" },
	{ "text", "Observation / Observation" },
	{ "visits", "Besøg / Visits" },
	{ "date", "Dato / Date" },
	{ "service", "Ydelse / Service" },
	{ "minutes", "Minutter / Minutes" },
	{ "visit_id", "Besøgs-id / Visit id" },
	{ "deadline", "Frist / Deadline" },
};

static const char *
label_for(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		if (strcmp(labels[i].key, key) == 0)
			return labels[i].label;
	}
	return key;
}

static char *
scalar_text(json_t *v)
{
	size_t len;

	if (json_is_string(v)) {
		len = json_string_length(v);
		if (len > MAX_STRING)
			return xasprintf("%.*s ... (%zu bytes more not printed)", MAX_STRING,
			    json_string_value(v), len - MAX_STRING);
		return xstrdup(json_string_value(v));
	}
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	if (json_is_real(v))
		return xasprintf("%g", json_real_value(v));
	if (json_is_true(v))
		return xstrdup("ja / yes");
	if (json_is_false(v))
		return xstrdup("nej / no");
	return xstrdup("-");
}

static int
all_scalars(json_t *a)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		if (json_is_object(v) || json_is_array(v))
			return 0;
	}
	return 1;
}

static void
value(struct pen *pen, float x, const char *label, json_t *v, int depth)
{
	const char *key;
	char *text, *joined, *tmp, num[32];
	size_t i;
	json_t *c;

	if (depth > MAX_DEPTH) {
		field(pen, x, label, "(nested too deep to print)");
		return;
	}
	if (json_is_object(v)) {
		para(pen, pen->bold, BODY_SIZE, x, label);
		json_object_foreach(v, key, c)
			value(pen, x + INDENT, label_for(key), c, depth + 1);
		return;
	}
	if (json_is_array(v) && all_scalars(v)) {
		/* One line per item, bulleted, under one label. */
		joined = xstrdup("");
		json_array_foreach(v, i, c) {
			text = scalar_text(c);
			tmp = xasprintf("%s%s• %s", joined, i > 0 ? "\n" : "", text);
			free(joined);
			free(text);
			joined = tmp;
		}
		field(pen, x, label, json_array_size(v) > 0 ? joined : "-");
		free(joined);
		return;
	}
	if (json_is_array(v)) {
		para(pen, pen->bold, BODY_SIZE, x, label);
		json_array_foreach(v, i, c) {
			snprintf(num, sizeof(num), "%zu.", i + 1);
			value(pen, x + INDENT, num, c, depth + 1);
		}
		return;
	}
	text = scalar_text(v);
	field(pen, x, label, text);
	free(text);
}

static const struct {
	const char *kind, *danish;
} kinds[] = {
	{ "referral", "henvisning" },
	{ "care_update", "ændrede plejeforhold" },
	{ "cancellation", "ophør" },
	{ "admission_notice", "indlæggelse" },
	{ "discharge_notice", "udskrivning" },
	{ "leave_notice", "orlov" },
	{ "death_notice", "dødsfald" },
	{ "change_request", "ændringsforslag" },
	{ "observation", "observation" },
	{ "time_usage", "tidsforbrug" },
	{ "receipt", "kvittering" },
};

static const char *
kind_danish(const char *kind)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(kinds[i].kind, kind) == 0)
			return kinds[i].danish;
	}
	return NULL;
}

static const char warn_da[] =
    "ADVARSEL: FORTROLIGE PERSONOPLYSNINGER\n"
    "Dette dokument indeholder personoplysninger om en borger, herunder "
    "eventuelt helbredsoplysninger. Det skal behandles fortroligt efter "
    "databeskyttelsesforordningen og må kun læses af den, der har brug for "
    "det i sit arbejde. Opbevar det låst inde og destruér det sikkert. "
    "Har du fået det ved en fejl, så kontakt afsenderen straks.";

static const char warn_en[] =
    "WARNING: CONFIDENTIAL PERSONAL DATA\n"
    "This document holds personal data about a citizen, possibly including "
    "health data. It must be handled confidentially under the GDPR and read only "
    "by those who need it for their work. Keep it locked away and destroy it "
    "securely. If you received it in error, contact the sender at once.";

static void
party_line(char *out, size_t n, const char *name, const char *party)
{
	if (name != NULL && *name != '\0')
		snprintf(out, n, "%s (%s)", name, party);
	else
		snprintf(out, n, "%s", party);
}

static void
cover(struct pen *pen, const struct render_doc *doc)
{
	struct emit_ctx e;
	char line[600], date[40], *da, *en;
	const char *dk;
	float box_w, h, top;
	time_t when = doc->when != 0 ? doc->when : time(NULL);
	struct tm tm;
	int n;

	para(pen, pen->bold, 20.0f, PAGE_MARGIN, "Fortrolig besked");
	para(pen, pen->font, 14.0f, PAGE_MARGIN, "Confidential message");
	pen->y -= 18.0f;
	party_line(line, sizeof(line), doc->sender_name, doc->sender);
	field(pen, PAGE_MARGIN, "Afsender / Sender", line);
	party_line(line, sizeof(line), doc->recipient_name, doc->recipient);
	field(pen, PAGE_MARGIN, "Modtager / Recipient", line);
	field(pen, PAGE_MARGIN, "Besked-id / Message id", doc->id);
	if ((dk = kind_danish(doc->kind)) != NULL)
		snprintf(line, sizeof(line), "%s (%s)", doc->kind, dk);
	else
		snprintf(line, sizeof(line), "%s", doc->kind);
	field(pen, PAGE_MARGIN, "Type / Kind", line);
	gmtime_r(&when, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	field(pen, PAGE_MARGIN, "Dato / Date", date);
	field(pen, PAGE_MARGIN, "Afsendt via / Sent by", "hegn");

	/* The warning in a framed box: measure first, then draw frame and text. */
	pen->y -= 28.0f;
	box_w = pen->width - 2 * PAGE_MARGIN;
	da = render_winansi(warn_da, strlen(warn_da));
	en = render_winansi(warn_en, strlen(warn_en));
	n = wrap(pen, pen->bold, 11.0f, box_w - 24.0f, da, NULL, NULL) +
	    wrap(pen, pen->bold, 11.0f, box_w - 24.0f, en, NULL, NULL);
	h = (float)n * LINE(11.0f) + 44.0f;
	top = pen->y;
	HPDF_Page_SetLineWidth(pen->page, 3.0f);
	HPDF_Page_SetRGBFill(pen->page, 0.92f, 0.92f, 0.92f);
	HPDF_Page_Rectangle(pen->page, PAGE_MARGIN, top - h, box_w, h);
	HPDF_Page_FillStroke(pen->page);
	HPDF_Page_SetRGBFill(pen->page, 0.0f, 0.0f, 0.0f);
	pen->y = top - 10.0f;
	e.font = pen->bold;
	e.size = 11.0f;
	e.x = PAGE_MARGIN + 12.0f;
	wrap(pen, pen->bold, 11.0f, box_w - 24.0f, da, emit_line, &e);
	pen->y -= 12.0f;
	wrap(pen, pen->bold, 11.0f, box_w - 24.0f, en, emit_line, &e);
	pen->y = top - h;
	free(da);
	free(en);
}

static void
attachments(struct pen *pen, json_t *list)
{
	char line[600], num[32];
	size_t i, b64, bytes;
	json_t *a, *data;
	const char *fn, *ct, *cl, *s;

	heading(pen, "Bilag / Attachments");
	para(pen, pen->font, 9.0f, PAGE_MARGIN,
	    "Bilag udskrives ikke; de findes i den elektroniske besked. / "
	    "Attachments are not printed; they are in the electronic message.");
	if (!json_is_array(list))
		return;
	json_array_foreach(list, i, a) {
		fn = json_string_value(json_object_get(a, "filename"));
		ct = json_string_value(json_object_get(a, "content_type"));
		cl = json_string_value(json_object_get(a, "class"));
		data = json_object_get(a, "data");
		bytes = 0;
		if ((s = json_string_value(data)) != NULL) {
			b64 = json_string_length(data);
			bytes = b64 / 4 * 3;
			if (b64 >= 1 && s[b64 - 1] == '=')
				bytes--;
			if (b64 >= 2 && s[b64 - 2] == '=')
				bytes--;
		}
		snprintf(line, sizeof(line), "%s (%s, %s, %zu bytes)", fn ? fn : "-",
		    ct ? ct : "-", cl ? cl : "-", bytes);
		snprintf(num, sizeof(num), "%zu.", i + 1);
		field(pen, PAGE_MARGIN, num, line);
	}
}

static const struct {
	const char *key, *title;
} sections[] = {
	{ "basic", "Grundoplysninger / Basic" },
	{ "care", "Pleje og omsorg / Care" },
	{ "health", "Helbredsoplysninger / Health" },
};

static int
is_known_top(const char *key)
{
	static const char *const known[] = { "id", "kind", "from", "to", "citizen", "deadline",
		"basic", "care", "health", "attachments", NULL };
	size_t i;

	for (i = 0; known[i] != NULL; i++) {
		if (strcmp(known[i], key) == 0)
			return 1;
	}
	return 0;
}

static void
content(struct pen *pen, const struct render_doc *doc)
{
	json_t *root = NULL, *v, *c;
	json_error_t jerr;
	const char *key;
	char *text;
	size_t i;
	int other = 0;

	root = json_loadb((const char *)doc->content, doc->content_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		/* Not a hegn JSON message (a MedCom document, say): print it as text. */
		heading(pen, "Indhold / Content");
		text = xmalloc(doc->content_len + 1);
		memcpy(text, doc->content, doc->content_len);
		text[doc->content_len] = '\0';
		para(pen, pen->font, 9.0f, PAGE_MARGIN, text);
		freezero(text, doc->content_len + 1);
		goto out;
	}
	if ((v = json_object_get(root, "citizen")) != NULL) {
		heading(pen, "Borger / Citizen");
		if (json_is_object(v)) {
			json_object_foreach(v, key, c)
				value(pen, PAGE_MARGIN, label_for(key), c, 1);
		} else
			value(pen, PAGE_MARGIN, "-", v, 1);
	}
	if ((v = json_object_get(root, "deadline")) != NULL)
		value(pen, PAGE_MARGIN, label_for("deadline"), v, 1);
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if ((v = json_object_get(root, sections[i].key)) == NULL)
			continue;
		heading(pen, sections[i].title);
		if (json_is_object(v)) {
			json_object_foreach(v, key, c)
				value(pen, PAGE_MARGIN, label_for(key), c, 1);
		} else
			value(pen, PAGE_MARGIN, "-", v, 1);
	}
	json_object_foreach(root, key, v) {
		if (is_known_top(key))
			continue;
		if (!other)
			heading(pen, "Andet / Other");
		other = 1;
		value(pen, PAGE_MARGIN, key, v, 1);
	}
	if ((v = json_object_get(root, "attachments")) != NULL)
		attachments(pen, v);
out:
	json_decref(root);
}

int
render_pdf(const struct render_doc *doc, struct buf *out, struct why *why)
{
	struct pen pen;
	HPDF_UINT32 size;
	char title[128];
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	memset(&pen, 0, sizeof(pen));
	if (out == NULL || doc == NULL || doc->id == NULL || doc->kind == NULL ||
	    doc->sender == NULL || doc->recipient == NULL || doc->content == NULL) {
		r = why_set(why, HEGN_ERR_INVALID,
		    "render: id, kind, sender, recipient and content are required");
		goto out;
	}
	pen.id = doc->id;
	if ((pen.pdf = HPDF_NewEx(pen_error, pen_alloc, pen_free, 0, &pen)) == NULL) {
		r = why_set(why, HEGN_ERR_NOMEM, "render: cannot start a PDF");
		goto out;
	}
	HPDF_SetCompressionMode(pen.pdf, HPDF_COMP_ALL);
	snprintf(title, sizeof(title), "hegn %s (%s)", doc->id, doc->kind);
	HPDF_SetInfoAttr(pen.pdf, HPDF_INFO_TITLE, title);
	HPDF_SetInfoAttr(pen.pdf, HPDF_INFO_CREATOR, "hegn");
	pen.font = HPDF_GetFont(pen.pdf, "Helvetica", "WinAnsiEncoding");
	pen.bold = HPDF_GetFont(pen.pdf, "Helvetica-Bold", "WinAnsiEncoding");
	if (pen.font == NULL || pen.bold == NULL || pen.err != 0) {
		r = why_set(why, HEGN_ERR_INTERNAL, "render: base fonts unavailable (libharu error 0x%04x)",
		    (unsigned)pen.err);
		goto out;
	}
	new_page(&pen);
	cover(&pen, doc);
	new_page(&pen);
	content(&pen, doc);
	if (pen.err == 0)
		HPDF_SaveToStream(pen.pdf);
	if (pen.err != 0) {
		r = why_set(why, HEGN_ERR_INTERNAL, "render: libharu error 0x%04x (detail %u)",
		    (unsigned)pen.err, (unsigned)pen.detail);
		goto out;
	}
	size = HPDF_GetStreamSize(pen.pdf);
	out->data = xmalloc(size > 0 ? size : 1);
	if (HPDF_ReadFromStream(pen.pdf, out->data, &size) != HPDF_OK && pen.err != 0) {
		buf_free(out, 1);
		r = why_set(why, HEGN_ERR_INTERNAL, "render: cannot read the PDF back (libharu error 0x%04x)",
		    (unsigned)pen.err);
		goto out;
	}
	out->len = size;
	r = 0;
out:
	if (pen.pdf != NULL)
		HPDF_Free(pen.pdf);
	return r;
}
