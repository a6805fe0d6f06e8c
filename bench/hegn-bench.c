/*
 * hegn-bench: load generator for hegnd, and the signing ceiling of the
 * machine it runs on.  bench/run.sh drives it; see docs/performance.md.
 *
 *   hegn-bench ceiling --key FILE [--threads N] [--seconds S]
 *   hegn-bench submit|e2e --url URL --dir DEMO --pid PID [--clients N]
 *       [--seconds S] [--warmup S] [--providers N] [--attach BYTES] [--rate R]
 *       [--ids seq|uuid4|none] [--citizens N] [--label L]
 *
 * submit: N client threads, each with one libcurl easy handle (keep-alive)
 * and the visitation office's client certificate, POST 4 KB JSON referrals
 * round-robin to provider-01 ... provider-N; a 201 comes only after commit.
 *
 * e2e: the same submitters, plus one thread per provider with the provider's
 * certificate, which fetches each message it is told of (GET
 * /v1/messages/{id}), signs the receipt with the provider's key (CMS, as a
 * provider's system would) and posts it.  A message counts when its receipt
 * is answered 200; its latency runs from the start of the submission.  The
 * number of messages between submission and receipt is bounded (twice the
 * clients), so the run measures a steady state rather than a growing backlog.
 *
 * --ids: the message ids the submitters choose.  seq (the default): a tag of
 * the run, the client's number and a counter, so each client's ids sort in
 * the order sent; uuid4: a random UUID each, as a case system may send;
 * none: no id, hegnd makes one (submit only: e2e needs the id up front).
 *
 * --citizens N: the referrals are about N citizens, each in turn (0, the
 * default: nearly every referral a new citizen, and so a new assignment).
 *
 * --rate R paces the submitters to R messages per second in all (open loop;
 * latency then counts from each message's planned start).
 *
 * Each result is one line of key=value pairs.  CPU seconds per message are
 * hegnd's utime+stime (/proc/PID/stat, with its key process's and its key
 * workers' under privilege separation) over the measured window divided by
 * the messages in it; rss_peak_mb is hegnd's VmHWM at the end.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#define MAXPROV 64

struct lat {
	double *v;
	size_t n, cap;
};

struct item {
	char id[64];
	double t0;
	struct item *next;
};

struct provider {
	char name[32];
	char cert[512], key[512];
	EVP_PKEY *pkey;
	X509 *x509;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item *head, *tail;
	pthread_t thread;
	struct lat lat;
	unsigned long done, errors;
};

static struct {
	const char *mode, *url, *dir, *label, *keyfile;
	int pid, clients, providers, threads;
	double seconds, warmup, rate;
	size_t attach;
	unsigned long citizens;
	const char *ids;
	char *attach_b64;
	char tag[16];
	STACK_OF(X509) *chain;
	sem_t window;
	volatile int measuring, stop;
	struct provider prov[MAXPROV];
	pthread_mutex_t err_mu;
	int err_shown;
} g;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "hegn-bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void
lat_add(struct lat *l, double ms)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4096;
		if ((l->v = realloc(l->v, l->cap * sizeof(*l->v))) == NULL)
			die("out of memory");
	}
	l->v[l->n++] = ms;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
pct(const struct lat *l, double p)
{
	size_t i;

	if (l->n == 0)
		return 0;
	i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return l->v[i];
}

/* One process's utime+stime in seconds. */
static double
proc_cpu1(int pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	/* After ')': state is field 3; utime and stime are fields 14 and 15. */
	p += 2;
	for (i = 3; i < 14 && p != NULL; i++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p == NULL || sscanf(p, "%lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * hegnd's utime+stime in seconds, with its descendants': started as root,
 * hegnd signs and decrypts in a key process of its own (privilege
 * separation), whose workers are its children.  A worker's time reaches its
 * parent's counters only when it is reaped, at the end, so every live
 * process of the tree is read.
 */
static double
proc_cpu_tree(int pid, int depth)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	FILE *f;
	double cpu = proc_cpu1(pid);
	int child;

	if (depth > 4)
		return cpu;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if ((d = opendir(path)) == NULL)
		return cpu;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", pid, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fscanf(f, "%d", &child) == 1)
			cpu += proc_cpu_tree(child, depth + 1);
		fclose(f);
	}
	closedir(d);
	return cpu;
}

static double
proc_cpu(int pid)
{
	return proc_cpu_tree(pid, 0);
}

static long
proc_status_kb(int pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	size_t n = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			kb = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return kb;
}

struct resp {
	char *data;
	size_t len, cap;
};

static size_t
resp_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct resp *r = arg;
	size_t n = size * nmemb;

	if (r->len + n + 1 > r->cap) {
		r->cap = (r->len + n + 1) * 2;
		if ((r->data = realloc(r->data, r->cap)) == NULL)
			return 0;
	}
	memcpy(r->data + r->len, ptr, n);
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

static void
show_error(const char *what, long status, CURLcode cc, const struct resp *r)
{
	pthread_mutex_lock(&g.err_mu);
	if (g.err_shown++ < 3)
		fprintf(stderr, "hegn-bench: %s: %s status %ld: %.300s\n", what,
		    cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP", status,
		    r->data != NULL ? r->data : "");
	pthread_mutex_unlock(&g.err_mu);
}

static CURL *
handle_new(const char *cert, const char *key)
{
	char ca[600];
	CURL *c;

	if ((c = curl_easy_init()) == NULL)
		die("curl_easy_init failed");
	snprintf(ca, sizeof(ca), "%s/pki/ca.pem", g.dir);
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, resp_write);
	return c;
}

/* One request on a kept-alive handle; the status, or 0 on a transport error. */
static long
request(CURL *c, const char *method, const char *url, struct curl_slist *hdr,
    const void *body, size_t len, struct resp *r, CURLcode *ccp)
{
	long status = 0;
	CURLcode cc;

	r->len = 0;
	if (r->data != NULL)
		r->data[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	*ccp = cc;
	return status;
}

/* A valid CPR (the modulus-11 check is not applied) from a counter. */
static void
make_cpr(unsigned long n, char out[11])
{
	snprintf(out, 11, "%02lu%02lu%02lu%04lu", 1 + n % 28, 1 + (n / 28) % 12,
	    60 + (n / 336) % 40, (n / 13440) % 4000);
}

static const char filler[] =
    "Har brug for hjaelp til rengoering hver 14. dag og til indkoeb en gang om ugen. "
    "Gaar med rollator; noeglen ligger i noegleboks ved hoveddoeren. ";

/* A referral of about 4 KB (plus the attachment, when there is one). */
/* The id of client no's message number seq, by --ids (none: unused). */
static void
make_id(int no, unsigned long seq, char id[64])
{
	unsigned char b[16];

	if (strcmp(g.ids, "uuid4") != 0) {
		snprintf(id, 64, "b%s-%d-%lu", g.tag, no, seq);
		return;
	}
	if (RAND_bytes(b, sizeof(b)) != 1)
		die("RAND_bytes failed");
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(id, 64, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	    b[14], b[15]);
}

/* The JSON of a referral to to, with id (NULL: none) and the n-th citizen. */
static char *
make_body(const char *id, const char *to, unsigned long n, size_t *lenp)
{
	char cpr[11], desc[3400];
	size_t cap, off = 0;
	char *s;
	int len;

	make_cpr(n, cpr);
	while (off + sizeof(filler) < sizeof(desc)) {
		memcpy(desc + off, filler, sizeof(filler) - 1);
		off += sizeof(filler) - 1;
	}
	desc[off] = '\0';
	cap = 4096 + sizeof(desc) + (g.attach_b64 != NULL ? strlen(g.attach_b64) : 0);
	if ((s = malloc(cap)) == NULL)
		die("out of memory");
	len = snprintf(s, cap,
	    "{%s%s%s\"kind\":\"referral\",\"to\":\"%s\","
	    "\"citizen\":{\"cpr\":\"%s\",\"name\":\"Benchmark Borger\"},"
	    "\"basic\":{\"address\":\"Noerregade 12, 2. th., 4100 Ringsted\","
	    "\"contact\":\"Datter, tlf. 20 30 40 50\",\"services\":[\"practical_help\"],"
	    "\"start_date\":\"2026-12-01\",\"visits_per_week\":1},"
	    "\"care\":{\"description\":\"%s\"}%s%s%s}",
	    id ? "\"id\":\"" : "", id ? id : "", id ? "\"," : "", to, cpr, desc,
	    g.attach_b64 ? ",\"attachments\":[{\"filename\":\"bilag.pdf\","
	    "\"content_type\":\"application/pdf\",\"class\":\"care\",\"data\":\"" : "",
	    g.attach_b64 ? g.attach_b64 : "", g.attach_b64 ? "\"}]" : "");
	if (len < 0 || (size_t)len >= cap)
		die("message too long");
	*lenp = (size_t)len;
	return s;
}

struct client {
	int no;
	pthread_t thread;
	struct lat lat;
	unsigned long done, errors;
};

static void *
submitter(void *arg)
{
	struct client *cl = arg;
	char cert[600], key[600], url[600], id[64];
	struct curl_slist *hdr = NULL;
	struct resp r = { 0 };
	unsigned long seq = 0;
	int e2e = strcmp(g.mode, "e2e") == 0;
	double next = now_s() + (g.rate > 0 ? (double)cl->no / g.rate : 0);
	CURL *c;

	snprintf(cert, sizeof(cert), "%s/pki/ringsted-visitation.pem", g.dir);
	snprintf(key, sizeof(key), "%s/pki/ringsted-visitation.key", g.dir);
	snprintf(url, sizeof(url), "%s/v1/messages", g.url);
	c = handle_new(cert, key);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	while (!g.stop) {
		struct provider *p = &g.prov[(unsigned long)(cl->no + seq * g.clients) %
		    (unsigned long)g.providers];
		unsigned long n = seq * (unsigned long)g.clients + (unsigned long)cl->no;
		size_t len;
		char *body;
		double t0;
		long st;
		CURLcode cc;

		if (e2e) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (sem_timedwait(&g.window, &ts) != 0)
				continue;
		}
		make_id(cl->no, seq++, id);
		n += (unsigned long)time(NULL) * 7;
		body = make_body(strcmp(g.ids, "none") == 0 ? NULL : id, p->name,
		    g.citizens > 0 ? n % g.citizens : n, &len);
		t0 = now_s();
		if (g.rate > 0) {
			/* Open loop: latency counts from the planned start, so a late start shows. */
			if (next > t0)
				usleep((useconds_t)((next - t0) * 1e6));
			t0 = next;
			next += (double)g.clients / g.rate;
		}
		st = request(c, "POST", url, hdr, body, len, &r, &cc);
		free(body);
		if (st != 201) {
			show_error("submit", st, cc, &r);
			if (g.measuring)
				cl->errors++;
			if (e2e)
				sem_post(&g.window);
			continue;
		}
		if (!e2e) {
			if (g.measuring) {
				lat_add(&cl->lat, (now_s() - t0) * 1000);
				cl->done++;
			}
			continue;
		}
		{
			struct item *it = calloc(1, sizeof(*it));

			if (it == NULL)
				die("out of memory");
			snprintf(it->id, sizeof(it->id), "%s", id);
			it->t0 = t0;
			pthread_mutex_lock(&p->mu);
			if (p->tail != NULL)
				p->tail->next = it;
			else
				p->head = it;
			p->tail = it;
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&p->mu);
		}
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(r.data);
	return NULL;
}

/* The receipt, CMS SignedData with the content attached, by the provider's key. */
static unsigned char *
sign_receipt(struct provider *p, const char *id, const unsigned char *sealed, size_t slen,
    int *outlen)
{
	unsigned char md[32], *der = NULL;
	char json[256], hex[65];
	BIO *in = NULL;
	CMS_ContentInfo *cms = NULL;
	int i, n;

	SHA256(sealed, slen, md);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	n = snprintf(json, sizeof(json),
	    "{\"message_id\":\"%s\",\"reason\":\"\",\"sha256\":\"%s\",\"status\":\"accepted\"}",
	    id, hex);
	in = BIO_new_mem_buf(json, n);
	cms = CMS_sign(p->x509, p->pkey, g.chain, in, CMS_BINARY);
	if (cms != NULL)
		*outlen = i2d_CMS_ContentInfo(cms, &der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return der;
}

static void *
receiver(void *arg)
{
	struct provider *p = arg;
	struct curl_slist *get_hdr = NULL, *post_hdr = NULL;
	struct resp r = { 0 };
	char url[700];
	CURL *c = handle_new(p->cert, p->key);

	get_hdr = curl_slist_append(get_hdr, "Accept: application/pkcs7-mime");
	post_hdr = curl_slist_append(post_hdr, "Content-Type: application/pkcs7-mime");
	post_hdr = curl_slist_append(post_hdr, "Expect:");
	for (;;) {
		struct item *it;
		unsigned char *der, *sealed;
		size_t slen;
		int dlen = 0;
		long st;
		CURLcode cc;

		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !g.stop)
			pthread_cond_wait(&p->cv, &p->mu);
		it = p->head;
		if (it != NULL && (p->head = it->next) == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		if (it == NULL)
			break;
		snprintf(url, sizeof(url), "%s/v1/messages/%s", g.url, it->id);
		st = request(c, "GET", url, get_hdr, NULL, 0, &r, &cc);
		if (st != 200) {
			show_error("fetch", st, cc, &r);
			goto next;
		}
		slen = r.len;
		if ((sealed = malloc(slen ? slen : 1)) == NULL)
			die("out of memory");
		memcpy(sealed, r.data, slen);
		der = sign_receipt(p, it->id, sealed, slen, &dlen);
		free(sealed);
		if (der == NULL || dlen <= 0)
			die("cannot sign a receipt for %s", p->name);
		snprintf(url, sizeof(url), "%s/v1/messages/%s/receipt", g.url, it->id);
		st = request(c, "POST", url, post_hdr, der, (size_t)dlen, &r, &cc);
		OPENSSL_free(der);
		if (st != 200) {
			show_error("receipt", st, cc, &r);
			goto next;
		}
		if (g.measuring) {
			lat_add(&p->lat, (now_s() - it->t0) * 1000);
			p->done++;
		}
next:
		if (st != 200 && g.measuring)
			p->errors++;
		free(it);
		sem_post(&g.window);
	}
	curl_slist_free_all(get_hdr);
	curl_slist_free_all(post_hdr);
	curl_easy_cleanup(c);
	free(r.data);
	return NULL;
}

static EVP_PKEY *
load_key(const char *path)
{
	EVP_PKEY *k = NULL;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL)
		die("%s: not a private key", path);
	return k;
}

static X509 *
load_cert(const char *path)
{
	X509 *x = NULL;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		die("%s: not a certificate", path);
	return x;
}

static void
make_attachment(void)
{
	unsigned char *raw;
	size_t b64len = 4 * ((g.attach + 2) / 3) + 1;

	if ((raw = malloc(g.attach)) == NULL || (g.attach_b64 = malloc(b64len)) == NULL)
		die("out of memory");
	RAND_bytes(raw, (int)g.attach);
	/* A PDF's header, so the attachment is as a care system would send it. */
	memcpy(raw, "%PDF-1.4\n", g.attach < 9 ? g.attach : 9);
	EVP_EncodeBlock((unsigned char *)g.attach_b64, raw, (int)g.attach);
	free(raw);
}

static void
run_load(void)
{
	struct client *cl;
	double c0, c1, t0, t1, secs;
	struct lat all = { 0 };
	unsigned long done = 0, errors = 0;
	char path[600];
	int i, e2e = strcmp(g.mode, "e2e") == 0;
	long hwm;
	FILE *f;

	if (g.url == NULL || g.dir == NULL || g.pid <= 0)
		die("submit and e2e need --url, --dir and --pid");
	if (g.providers < 1 || g.providers > MAXPROV)
		die("--providers: 1 to %d", MAXPROV);
	{
		unsigned char rnd[6];

		/* Random, so runs against the same store never reuse an id. */
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			die("no random bytes");
		snprintf(g.tag, sizeof(g.tag), "%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		    rnd[3], rnd[4], rnd[5]);
	}
	if (g.attach > 0)
		make_attachment();
	snprintf(path, sizeof(path), "%s/pki/chain.pem", g.dir);
	g.chain = sk_X509_new_null();
	if ((f = fopen(path, "r")) != NULL) {
		X509 *x;

		while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
			sk_X509_push(g.chain, x);
		fclose(f);
		ERR_clear_error();
	}
	sem_init(&g.window, 0, (unsigned)(2 * g.clients));
	for (i = 0; i < g.providers; i++) {
		struct provider *p = &g.prov[i];

		snprintf(p->name, sizeof(p->name), "provider-%02d", i + 1);
		snprintf(p->cert, sizeof(p->cert), "%s/pki/%s.pem", g.dir, p->name);
		snprintf(p->key, sizeof(p->key), "%s/pki/%s.key", g.dir, p->name);
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
		if (e2e) {
			p->pkey = load_key(p->key);
			p->x509 = load_cert(p->cert);
			pthread_create(&p->thread, NULL, receiver, p);
		}
	}
	if ((cl = calloc((size_t)g.clients, sizeof(*cl))) == NULL)
		die("out of memory");
	for (i = 0; i < g.clients; i++) {
		cl[i].no = i;
		pthread_create(&cl[i].thread, NULL, submitter, &cl[i]);
	}
	usleep((useconds_t)(g.warmup * 1e6));
	c0 = proc_cpu(g.pid);
	t0 = now_s();
	g.measuring = 1;
	usleep((useconds_t)(g.seconds * 1e6));
	g.measuring = 0;
	t1 = now_s();
	c1 = proc_cpu(g.pid);
	g.stop = 1;
	for (i = 0; i < g.providers; i++) {
		pthread_mutex_lock(&g.prov[i].mu);
		pthread_cond_broadcast(&g.prov[i].cv);
		pthread_mutex_unlock(&g.prov[i].mu);
	}
	for (i = 0; i < g.clients; i++)
		pthread_join(cl[i].thread, NULL);
	for (i = 0; i < g.providers; i++)
		if (e2e)
			pthread_join(g.prov[i].thread, NULL);
	hwm = proc_status_kb(g.pid, "VmHWM");
	for (i = 0; i < g.clients; i++) {
		size_t k;

		for (k = 0; k < cl[i].lat.n; k++)
			lat_add(&all, cl[i].lat.v[k]);
		done += cl[i].done;
		errors += cl[i].errors;
		free(cl[i].lat.v);
	}
	for (i = 0; i < g.providers; i++) {
		struct provider *p = &g.prov[i];
		size_t k;

		for (k = 0; k < p->lat.n; k++)
			lat_add(&all, p->lat.v[k]);
		done += p->done;
		errors += p->errors;
		free(p->lat.v);
		EVP_PKEY_free(p->pkey);
		X509_free(p->x509);
	}
	qsort(all.v, all.n, sizeof(*all.v), cmp_double);
	secs = t1 - t0;
	printf("label=%s mode=%s clients=%d providers=%d attach=%zu rate=%.0f msgs=%lu secs=%.2f "
	    "msgs_per_s=%.1f p50_ms=%.1f p99_ms=%.1f cpu_ms_per_msg=%.2f rss_peak_mb=%.1f "
	    "errors=%lu\n", g.label ? g.label : g.mode, g.mode, g.clients, g.providers, g.attach, g.rate,
	    done, secs, (double)done / secs, pct(&all, 0.5), pct(&all, 0.99),
	    done ? (c1 - c0) * 1000 / (double)done : 0, hwm > 0 ? (double)hwm / 1024 : 0, errors);
	fflush(stdout);
	free(all.v);
	free(cl);
	free(g.attach_b64);
	sk_X509_pop_free(g.chain, X509_free);
}

struct signjob {
	EVP_PKEY *key;
	unsigned long n;
	pthread_t thread;
};

/* What one CMS signature costs: one private-key operation on a SHA-256 digest. */
static void *
signer_thread(void *arg)
{
	struct signjob *j = arg;
	unsigned char msg[96], sig[1024];
	size_t slen;

	memset(msg, 0x5a, sizeof(msg));
	while (!g.stop) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		slen = sizeof(sig);
		if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, j->key) != 1 ||
		    EVP_DigestSign(ctx, sig, &slen, msg, sizeof(msg)) != 1)
			die("signing failed");
		EVP_MD_CTX_free(ctx);
		j->n++;
	}
	return NULL;
}

static void
run_ceiling(void)
{
	struct signjob *jobs;
	struct rusage ru;
	EVP_PKEY *key;
	unsigned long total = 0;
	double t0, secs, cpu;
	int i;

	if (g.keyfile == NULL)
		die("ceiling needs --key");
	key = load_key(g.keyfile);
	if (g.threads <= 0)
		g.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if ((jobs = calloc((size_t)g.threads, sizeof(*jobs))) == NULL)
		die("out of memory");
	t0 = now_s();
	for (i = 0; i < g.threads; i++) {
		jobs[i].key = key;
		pthread_create(&jobs[i].thread, NULL, signer_thread, &jobs[i]);
	}
	usleep((useconds_t)(g.seconds * 1e6));
	g.stop = 1;
	for (i = 0; i < g.threads; i++) {
		pthread_join(jobs[i].thread, NULL);
		total += jobs[i].n;
	}
	secs = now_s() - t0;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("label=%s mode=ceiling key=%s bits=%d threads=%d signs=%lu secs=%.2f "
	    "signs_per_s=%.1f cpu_ms_per_sign=%.3f\n", g.label ? g.label : "ceiling",
	    EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "rsa" : "ec", EVP_PKEY_get_bits(key),
	    g.threads, total, secs, (double)total / secs, total ? cpu * 1000 / (double)total : 0);
	fflush(stdout);
	EVP_PKEY_free(key);
	free(jobs);
}

int
main(int argc, char **argv)
{
	int i;

	if (argc < 2)
		die("usage: hegn-bench ceiling|submit|e2e [options]");
	g.mode = argv[1];
	g.clients = 1;
	g.providers = 10;
	g.ids = "seq";
	g.seconds = 5;
	g.warmup = 1;
	pthread_mutex_init(&g.err_mu, NULL);
	for (i = 2; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			die("%s needs a value", o);
		i++;
		if (strcmp(o, "--url") == 0)
			g.url = v;
		else if (strcmp(o, "--dir") == 0)
			g.dir = v;
		else if (strcmp(o, "--pid") == 0)
			g.pid = atoi(v);
		else if (strcmp(o, "--clients") == 0)
			g.clients = atoi(v);
		else if (strcmp(o, "--providers") == 0)
			g.providers = atoi(v);
		else if (strcmp(o, "--seconds") == 0)
			g.seconds = atof(v);
		else if (strcmp(o, "--warmup") == 0)
			g.warmup = atof(v);
		else if (strcmp(o, "--attach") == 0)
			g.attach = (size_t)strtoul(v, NULL, 10);
		else if (strcmp(o, "--rate") == 0)
			g.rate = atof(v);
		else if (strcmp(o, "--label") == 0)
			g.label = v;
		else if (strcmp(o, "--ids") == 0)
			g.ids = v;
		else if (strcmp(o, "--citizens") == 0)
			g.citizens = strtoul(v, NULL, 10);
		else if (strcmp(o, "--key") == 0)
			g.keyfile = v;
		else if (strcmp(o, "--threads") == 0)
			g.threads = atoi(v);
		else
			die("unknown option %s", o);
	}
	if (g.clients < 1 || g.clients > 1024)
		die("--clients: 1 to 1024");
	if (strcmp(g.ids, "seq") != 0 && strcmp(g.ids, "uuid4") != 0 && strcmp(g.ids, "none") != 0)
		die("--ids: seq, uuid4 or none");
	if (strcmp(g.ids, "none") == 0 && strcmp(g.mode, "e2e") == 0)
		die("--ids none: submit only (e2e must know each id up front)");
	if (strcmp(g.mode, "ceiling") == 0) {
		run_ceiling();
		return 0;
	}
	if (strcmp(g.mode, "submit") != 0 && strcmp(g.mode, "e2e") != 0)
		die("unknown mode %s", g.mode);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	run_load();
	curl_global_cleanup();
	return 0;
}
