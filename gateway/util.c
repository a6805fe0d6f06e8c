#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "util.h"
#include "xmalloc.h"

void
buf_free(struct buf *b, int wipe)
{
	if (b == NULL)
		return;
	if (b->data != NULL && wipe)
		sodium_memzero(b->data, b->len);
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

int
util_read_file(const char *path, size_t max, struct buf *out, struct why *why)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t len = 0, cap;
	ssize_t n;
	int fd = -1, r;

	out->data = NULL;
	out->len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		r = why_set(why, HEGN_ERR_IO, "cannot open %s (%s)", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		r = why_set(why, HEGN_ERR_IO, "cannot stat %s (%s)", path, strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
		r = why_set(why, HEGN_ERR_TOO_LARGE, "%s is larger than %zu bytes", path, max);
		goto out;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	data = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max + 1) {
				r = why_set(why, HEGN_ERR_TOO_LARGE, "%s is larger than %zu bytes", path, max);
				goto out;
			}
			cap *= 2;
			data = xrealloc(data, cap);
		}
		n = read(fd, data + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = why_set(why, HEGN_ERR_IO, "cannot read %s (%s)", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = why_set(why, HEGN_ERR_TOO_LARGE, "%s is larger than %zu bytes", path, max);
			goto out;
		}
	}
	data[len] = '\0';
	out->data = data;
	out->len = len;
	data = NULL;
	r = 0;
out:
	if (fd != -1)
		close(fd);
	free(data);
	return r;
}

static int
fsync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd, r = 0;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fsync(fd) == -1)
		r = -1;
	if (fd != -1)
		close(fd);
	free(copy);
	return r;
}

int
util_write_file(const char *path, const void *data, size_t len, int mode, struct why *why)
{
	char *tmp = NULL;
	const uint8_t *p = data;
	size_t off = 0;
	ssize_t n;
	int fd = -1, r;

	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) == -1) {
		r = why_set(why, HEGN_ERR_IO, "cannot create %s (%s)", tmp, strerror(errno));
		goto out;
	}
	/* The umask must not widen or narrow what the caller asked for. */
	if (fchmod(fd, (mode_t)mode) == -1) {
		r = why_set(why, HEGN_ERR_IO, "cannot chmod %s (%s)", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		n = write(fd, p + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = why_set(why, HEGN_ERR_IO, "cannot write %s (%s)", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		r = why_set(why, HEGN_ERR_IO, "cannot flush %s (%s)", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		r = why_set(why, HEGN_ERR_IO, "cannot rename %s to %s (%s)", tmp, path, strerror(errno));
		goto out;
	}
	if (fsync_dir_of(path) == -1) {
		r = why_set(why, HEGN_ERR_IO, "cannot sync the directory of %s (%s)", path, strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (fd != -1)
		close(fd);
	if (r != 0)
		unlink(tmp);
	free(tmp);
	return r;
}

int
util_mkdirs(const char *path, int mode, struct why *why)
{
	char *copy = xstrdup(path), *p;
	int r = 0;

	for (p = copy + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(copy, (mode_t)mode) == -1 && errno != EEXIST) {
				r = why_set(why, HEGN_ERR_IO, "cannot create directory %s (%s)", copy, strerror(errno));
				break;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	free(copy);
	return r;
}

void
util_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

void
util_sha256(const void *data, size_t len, uint8_t out[32])
{
	/*
	 * OpenSSL's uses the CPU's SHA extensions: 20 times libsodium's speed on
	 * 200 KB.  But OpenSSL 3 allocates inside SHA256() and may fail, leaving
	 * out unwritten (found by tests/unit/test_faults.c); libsodium's cannot
	 * fail, so it takes over then.
	 */
	if (SHA256(data, len, out) == NULL)
		crypto_hash_sha256(out, data, len);
}

void
util_sha256_init(struct util_sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	h->failed = 0;
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	h->evp = c;
	if (c == NULL)
		crypto_hash_sha256_init(&h->na);
}

void
util_sha256_update(struct util_sha256 *h, const void *data, size_t len)
{
	if (h->evp == NULL)
		crypto_hash_sha256_update(&h->na, data, (unsigned long long)len);
	else if (EVP_DigestUpdate(h->evp, data, len) != 1)
		h->failed = 1;
}

int
util_sha256_final(struct util_sha256 *h, uint8_t out[32])
{
	unsigned int n = 0;
	int r = 0;

	if (h->evp == NULL) {
		crypto_hash_sha256_final(&h->na, out);
		return 0;
	}
	if (h->failed || EVP_DigestFinal_ex(h->evp, out, &n) != 1 || n != 32)
		r = -1;
	util_sha256_free(h);
	return r;
}

void
util_sha256_free(struct util_sha256 *h)
{
	EVP_MD_CTX_free(h->evp);
	h->evp = NULL;
}

void
util_sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[32];

	util_sha256(data, len, md);
	util_hex(md, sizeof(md), out);
}

static void
uuid_format(const uint8_t b[16], char out[37])
{
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
	    b[11], b[12], b[13], b[14], b[15]);
}

void
util_uuid(char out[37])
{
	uint8_t b[16];

	randombytes_buf(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	uuid_format(b, out);
}

void
util_uuid7(int64_t ms, char out[37])
{
	uint8_t b[16];
	uint64_t t = ms < 0 ? 0 : (uint64_t)ms;
	int i;

	randombytes_buf(b, sizeof(b));
	for (i = 5; i >= 0; i--, t >>= 8)
		b[i] = (uint8_t)t;
	b[6] = (b[6] & 0x0f) | 0x70;
	b[8] = (b[8] & 0x3f) | 0x80;
	uuid_format(b, out);
}

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
util_time_rfc3339(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
util_time_ms_rfc3339(int64_t ms, char out[40])
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);
	char base[32];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%03dZ", base, (int)(ms % 1000));
}

int
util_days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	if (month < 1 || month > 12)
		return 0;
	return days[month - 1] + (month == 2 && leap);
}

static int
digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
util_parse_date(const char *s, int *year, int *month, int *day)
{
	int y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) ||
	    digits(s + 5, 2, &m) || digits(s + 8, 2, &d))
		return HEGN_ERR_INVALID;
	if (m < 1 || m > 12 || d < 1 || d > util_days_in_month(y, m))
		return HEGN_ERR_INVALID;
	*year = y;
	*month = m;
	*day = d;
	return 0;
}

int
util_parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p;
	char date[11];

	if (strlen(s) < 20 || (s[10] != 'T' && s[10] != 't'))
		return HEGN_ERR_INVALID;
	memcpy(date, s, 10);
	date[10] = '\0';
	if (util_parse_date(date, &y, &mo, &d) != 0)
		return HEGN_ERR_INVALID;
	if (s[13] != ':' || s[16] != ':' || digits(s + 11, 2, &h) ||
	    digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec) || h > 23 || mi > 59 || sec > 60)
		return HEGN_ERR_INVALID;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return HEGN_ERR_INVALID;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		sign = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
	    digits(p + 1, 2, &oh) == 0 && digits(p + 4, 2, &om) == 0 && oh < 24 && om < 60) {
		sign = *p == '+' ? 1 : -1;
	} else {
		return HEGN_ERR_INVALID;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec;
	*out = timegm(&tm) - sign * (oh * 3600 + om * 60);
	return 0;
}

char *
util_path_relative_to(const char *base, const char *path)
{
	char *copy, *dir, *r;

	if (path[0] == '/')
		return xstrdup(path);
	copy = xstrdup(base);
	dir = dirname(copy);
	r = xasprintf("%s/%s", dir, path);
	free(copy);
	return r;
}

int
util_valid_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && !(i > 0 && (c == '.' || c == '_' || c == ':' || c == '-')))
			return 0;
	}
	return 1;
}
