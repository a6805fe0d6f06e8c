/*
 * Fault injection (issue 8, docs/reliability.md): the main operations run
 * again and again with the k-th allocation of SQLite, OpenSSL and jansson
 * failing (once, or from k on), and with the N-th xRead, xWrite or xSync of
 * SQLite's files failing with SQLITE_IOERR.  Each must return 0 with a
 * correct result or a negative HEGN_ERR code with a reason, leak nothing
 * and leave the database intact with no partial rows.
 *
 * xmalloc, which daemon bookkeeping uses, aborts on exhaustion by design
 * (docs/conventions): the failures go into the libraries, where an
 * allocation can fail on input hegn does not control.
 */
#include "config.h"

#include <sys/wait.h>

#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "demo.h"
#include "envelope.h"
#include "err.h"
#include "log.h"
#include "message.h"
#include "party.h"
#include "pki.h"
#include "relay.h"
#include "report.h"
#include "store.h"
#include "testcerts.h"
#include "testlib.h"
#include "util.h"
#include "xmalloc.h"

/*
 * Runs per operation and mode: every k up to DENSE, then k grows by 1/16
 * per run, so the allocations late in a long operation (an RSA signature,
 * a commit) are sampled rather than all tried; at most MAX_RUNS runs.
 * Signing and sealing try every k: OpenSSL 3.0 swallows some allocation
 * failures late in them (while it encodes the output, while it names the
 * digests it used), and envelope.c has to catch each one.
 */
#define DENSE    150
#define MAX_RUNS 400

/* ---- The allocators and the VFS with faults ---- */

/*
 * The allocators live in their own section, so a crash report can step
 * over their frames to the code that asked for the memory.
 */
#define ALLOCATOR __attribute__((section("hegn_faultalloc"), noinline))
extern char __start_hegn_faultalloc[], __stop_hegn_faultalloc[];

enum fault_lib { LIB_SQLITE = 0, LIB_OPENSSL, LIB_JANSSON, LIB_COUNT };
enum fault_io { IO_READ = 0, IO_WRITE, IO_SYNC, IO_COUNT };

static struct {
	int armed;           /* count and fail allocations */
	long k;              /* the allocation (or I/O call) that fails */
	int persistent;      /* ... and every one after it */
	long n;              /* counted since armed */
	long hits;           /* failures injected */
	int io;              /* >= 0: fail I/O calls of this kind instead */
	long live[LIB_COUNT];/* blocks allocated and not yet freed */
} F = { .io = -1 };

ALLOCATOR static int
fault_now(void)
{
	if (!F.armed)
		return 0;
	F.n++;
	if (F.n == F.k || (F.persistent && F.n > F.k)) {
		F.hits++;
		return 1;
	}
	return 0;
}

static void
arm(long k, int persistent, int io)
{
	F.k = k;
	F.persistent = persistent;
	F.n = 0;
	F.hits = 0;
	F.io = io;
	F.armed = 1;
}

static void
disarm(void)
{
	F.armed = 0;
}

/* A header before each block keeps its size, which SQLite asks for. */
#define HDR 16

ALLOCATOR static void *
hdr_alloc(enum fault_lib lib, size_t n)
{
	uint8_t *p;

	if (F.io < 0 && fault_now())
		return NULL;
	if ((p = malloc(n + HDR)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	F.live[lib]++;
	return p + HDR;
}

ALLOCATOR static void
hdr_free(enum fault_lib lib, void *ptr)
{
	if (ptr == NULL)
		return;
	F.live[lib]--;
	free((uint8_t *)ptr - HDR);
}

ALLOCATOR static size_t
hdr_size(void *ptr)
{
	size_t n;

	if (ptr == NULL)
		return 0;
	memcpy(&n, (uint8_t *)ptr - HDR, sizeof(n));
	return n;
}

ALLOCATOR static void *
hdr_realloc(enum fault_lib lib, void *ptr, size_t n)
{
	uint8_t *p;

	if (ptr == NULL)
		return hdr_alloc(lib, n);
	if (F.io < 0 && fault_now())
		return NULL;
	if ((p = realloc((uint8_t *)ptr - HDR, n + HDR)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + HDR;
}

ALLOCATOR static void *sq_malloc(int n) { return hdr_alloc(LIB_SQLITE, (size_t)n); }
ALLOCATOR static void sq_free(void *p) { hdr_free(LIB_SQLITE, p); }
ALLOCATOR static void *sq_realloc(void *p, int n) { return hdr_realloc(LIB_SQLITE, p, (size_t)n); }
ALLOCATOR static int sq_size(void *p) { return (int)hdr_size(p); }
static int sq_roundup(int n) { return (n + 7) & ~7; }
static int sq_init(void *a) { (void)a; return SQLITE_OK; }
static void sq_shutdown(void *a) { (void)a; }

ALLOCATOR static void *
ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return hdr_alloc(LIB_OPENSSL, n);
}

ALLOCATOR static void *
ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return hdr_realloc(LIB_OPENSSL, p, n);
}

ALLOCATOR static void
ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	hdr_free(LIB_OPENSSL, p);
}

/*
 * jansson without a header: hegn frees json_dumps() results with free(), as
 * jansson documents.
 */
static int in_json_loader;
#define FAULT_IN_LOADER "test_faults: allocation failed inside json_loadb"
static int loader_faults;   /* inject inside json_loadb too (forked runs only) */

ALLOCATOR static void *
json_alloc(size_t n)
{
	void *p;

	if (F.io < 0 && (!in_json_loader || loader_faults) && fault_now()) {
		/* The parent tells jansson's aborts from others by this line. */
		if (in_json_loader)
			(void)!write(STDERR_FILENO, FAULT_IN_LOADER "\n", strlen(FAULT_IN_LOADER) + 1);
		return NULL;
	}
	if ((p = malloc(n)) != NULL)
		F.live[LIB_JANSSON]++;
	return p;
}

ALLOCATOR static void
json_release(void *p)
{
	if (p != NULL)
		F.live[LIB_JANSSON]--;
	free(p);
}

/*
 * jansson's lexer asserts, and so aborts, when an allocation fails while it
 * saves a token (akheron/jansson#362, open; 2.14 as packaged).  That is the
 * library's bug, not hegn's: this json_loadb, which the test binary
 * interposes on libgateway's calls, parses with faults held off.  Faults
 * still reach every other jansson allocation (json_pack, the objects hegn
 * builds, json_dump*).
 */
json_t *
json_loadb(const char *buffer, size_t len, size_t flags, json_error_t *error)
{
	static json_t *(*real)(const char *, size_t, size_t, json_error_t *);
	json_t *j;

	if (real == NULL &&
	    (real = (json_t *(*)(const char *, size_t, size_t, json_error_t *))
	    dlsym(RTLD_NEXT, "json_loadb")) == NULL)
		abort();
	in_json_loader++;
	j = real(buffer, len, flags, error);
	in_json_loader--;
	return j;
}

/*
 * The VFS shim: the default VFS with every file wrapped, so the N-th
 * xRead, xWrite or xSync (counted over all files) can fail.
 */
enum shim_kind { FILE_OTHER = 0, FILE_DB, FILE_WAL };

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real;  /* follows this struct, szOsFile of the real VFS */
	int kind;            /* enum shim_kind */
};

/*
 * What the group commit test (t_group_commit) watches: the WAL's writes
 * and syncs numbered in one sequence, and a hold on the next WAL sync.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	long events;         /* WAL writes and WAL sync starts, numbered */
	long synced_from;    /* the largest number of a WAL sync that ended well */
	long wal_syncs;      /* WAL syncs started */
	int failed_kind;     /* the file of the last sync failed by a fault */
	int hold;            /* the next WAL sync waits while this is set */
	int held;            /* ... and how many have waited */
	int fail_held;       /* ... and then fails */
	long wal_reads;      /* reads of the WAL */
	long read_marks;     /* read marks taken: transactions begun */
} T = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

static __thread long my_wal_write;  /* the number of this thread's last WAL write */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;

static int
io_fault(int kind)
{
	return F.io == kind && fault_now();
}

#define REAL(f) (((struct shim_file *)(f))->real)

static int
shim_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
shim_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	if (io_fault(IO_READ))
		return SQLITE_IOERR_READ;
	if (((struct shim_file *)f)->kind == FILE_WAL) {
		pthread_mutex_lock(&T.lock);
		T.wal_reads++;
		pthread_cond_broadcast(&T.cond);
		pthread_mutex_unlock(&T.lock);
	}
	return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

static int
shim_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	int rc;

	if (io_fault(IO_WRITE))
		return SQLITE_IOERR_WRITE;
	rc = REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
	if (((struct shim_file *)f)->kind == FILE_WAL) {
		pthread_mutex_lock(&T.lock);
		my_wal_write = ++T.events;
		pthread_mutex_unlock(&T.lock);
	}
	return rc;
}

static int
shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int
shim_sync(sqlite3_file *f, int flags)
{
	int kind = ((struct shim_file *)f)->kind, rc;
	long start = 0;

	if (io_fault(IO_SYNC)) {
		T.failed_kind = kind;
		return SQLITE_IOERR_FSYNC;
	}
	if (kind == FILE_WAL) {
		pthread_mutex_lock(&T.lock);
		start = ++T.events;
		T.wal_syncs++;
		if (T.hold) {
			T.held++;
			pthread_cond_broadcast(&T.cond);
			while (T.hold)
				pthread_cond_wait(&T.cond, &T.lock);
			if (T.fail_held) {
				T.fail_held = 0;
				T.failed_kind = kind;
				pthread_mutex_unlock(&T.lock);
				return SQLITE_IOERR_FSYNC;
			}
		}
		pthread_mutex_unlock(&T.lock);
	}
	rc = REAL(f)->pMethods->xSync(REAL(f), flags);
	if (kind == FILE_WAL && rc == SQLITE_OK) {
		pthread_mutex_lock(&T.lock);
		if (start > T.synced_from)
			T.synced_from = start;
		pthread_mutex_unlock(&T.lock);
	}
	return rc;
}

static int
shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
shim_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int
shim_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int
shim_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
shim_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
shim_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
shim_caps(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

/* Lock offsets 3.. of the WAL-index are the read marks (SQLite's wal.c, WAL_READ_LOCK). */
#define SHM_READ_MARKS 3

static int
shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	int rc = REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);

	/* A read mark taken shared: a transaction has begun with its snapshot of the WAL. */
	if (rc == SQLITE_OK && off >= SHM_READ_MARKS &&
	    flags == (SQLITE_SHM_LOCK | SQLITE_SHM_SHARED)) {
		pthread_mutex_lock(&T.lock);
		T.read_marks++;
		pthread_cond_broadcast(&T.cond);
		pthread_mutex_unlock(&T.lock);
	}
	return rc;
}

static void
shim_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
shim_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
shim_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	/* No memory-mapped reads: every read goes through xRead. */
	(void)f;
	(void)off;
	(void)amt;
	*pp = NULL;
	return SQLITE_OK;
}

static int
shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	(void)f;
	(void)off;
	(void)p;
	return SQLITE_OK;
}

static const sqlite3_io_methods shim_methods = {
	3, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_file_size,
	shim_lock, shim_unlock, shim_check_lock, shim_control, shim_sector, shim_caps,
	shim_shm_map, shim_shm_lock, shim_shm_barrier, shim_shm_unmap, shim_fetch, shim_unfetch,
};

static int
shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct shim_file *sf = (struct shim_file *)f;
	int rc;

	(void)vfs;
	sf->real = (sqlite3_file *)&sf[1];
	sf->kind = (flags & SQLITE_OPEN_WAL) ? FILE_WAL : (flags & SQLITE_OPEN_MAIN_DB) ?
	    FILE_DB : FILE_OTHER;
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set. */
	sf->base.pMethods = sf->real->pMethods != NULL ? &shim_methods : NULL;
	return rc;
}

static int
shim_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	return real_vfs->xDelete(real_vfs, name, sync);
}

static int
shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int
shim_full_path(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int
shim_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int
shim_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return real_vfs->xSleep(real_vfs, us);
}

static int
shim_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int
shim_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int
shim_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static int
faults_install(void)
{
	static const sqlite3_mem_methods mem = {
		sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL,
	};

	/* Before anything allocates: OpenSSL refuses the switch afterwards. */
	if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
		return -1;
	json_set_alloc_funcs(json_alloc, json_release);
	/* Lookaside slots would hide allocations from the counter. */
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK ||
	    sqlite3_initialize() != SQLITE_OK)
		return -1;
	if ((real_vfs = sqlite3_vfs_find(NULL)) == NULL)
		return -1;
	memset(&shim_vfs, 0, sizeof(shim_vfs));
	shim_vfs.iVersion = 2;
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.mxPathname = real_vfs->mxPathname;
	shim_vfs.zName = "hegn-faults";
	shim_vfs.xOpen = shim_open;
	shim_vfs.xDelete = shim_delete;
	shim_vfs.xAccess = shim_access;
	shim_vfs.xFullPathname = shim_full_path;
	shim_vfs.xRandomness = shim_random;
	shim_vfs.xSleep = shim_sleep;
	shim_vfs.xCurrentTime = shim_time;
	shim_vfs.xGetLastError = shim_last_error;
	shim_vfs.xCurrentTimeInt64 = shim_time64;
	return sqlite3_vfs_register(&shim_vfs, 1) == SQLITE_OK ? 0 : -1;
}

/* ---- The world: a demo installation made once, before the tests fork ---- */

static struct {
	char dir[64];
	char demo[128];
	char conf[192];
	char verifier[256];
	struct pki *pki;
	EVP_PKEY *key;        /* ringsted-visitation's */
	X509 *cert;
	EVP_PKEY *hov_key;    /* hovmand-care's, to open what the relay sealed for it */
	X509 *hov_cert;
	EVP_PKEY *gw_key;     /* the gateway's */
	X509 *gw_cert;
	struct buf sig;       /* a SignedData of msg by ringsted-visitation */
	struct buf sealed;    /* msg sealed for the gateway */
	struct buf canon;     /* msg parsed, in canonical form */
} w;

static const char msg[] =
    "{\"kind\": \"referral\", \"to\": \"hovmand-care\", \"citizen\": {\"cpr\": \"2509479989\"},"
    " \"basic\": {\"services\": [\"practical_help\"], \"start_date\": \"2030-01-01\"},"
    " \"care\": {\"description\": \"fault injection\"}, \"attachments\": [{\"class\": \"care\","
    " \"content_type\": \"text/plain\", \"filename\": \"a.txt\", \"data\": \"aGVqCg==\"}]}";

static const char *
wpath(const char *name)
{
	static char p[8][256];
	static int n;

	n = (n + 1) % 8;
	snprintf(p[n], sizeof(p[n]), "%s/%s", w.demo, name);
	return p[n];
}

static int
world_make(void)
{
	struct why why = { 0 };
	struct message *m = NULL;
	struct buf pub = { 0 };
	char *nl;

	snprintf(w.dir, sizeof(w.dir), "/tmp/hegn-test-faults-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		return -1;
	snprintf(w.demo, sizeof(w.demo), "%s/demo", w.dir);
	snprintf(w.conf, sizeof(w.conf), "%s/hegn.conf", w.demo);
	if (demo_init(w.demo, 4433, &why) != 0 ||
	    pki_load(wpath("pki/ca.pem"), wpath("pki/chain.pem"), wpath("pki/crl.pem"),
	    PKI_CRL_CHECK, &w.pki, &why) != 0 ||
	    pki_load_key(wpath("pki/ringsted-visitation.key"), &w.key, &why) != 0 ||
	    pki_load_cert(wpath("pki/ringsted-visitation.pem"), &w.cert, &why) != 0 ||
	    pki_load_key(wpath("pki/hovmand-care.key"), &w.hov_key, &why) != 0 ||
	    pki_load_cert(wpath("pki/hovmand-care.pem"), &w.hov_cert, &why) != 0 ||
	    pki_load_key(wpath("pki/gateway.key"), &w.gw_key, &why) != 0 ||
	    pki_load_cert(wpath("pki/gateway.pem"), &w.gw_cert, &why) != 0 ||
	    envelope_sign(w.key, w.cert, NULL, ENVELOPE_PSS, (const uint8_t *)msg, strlen(msg),
	    "fault-1", &w.sig, &why) != 0 ||
	    envelope_seal(w.gw_cert, ENVELOPE_AES256_GCM, w.sig.data, w.sig.len, 1, &w.sealed,
	    &why) != 0 ||
	    message_parse((const uint8_t *)msg, strlen(msg), NULL, &m, &why) != 0 ||
	    message_canonical(m, &w.canon, &why) != 0 ||
	    util_read_file(wpath("audit.pub"), 4096, &pub, &why) != 0) {
		fprintf(stderr, "test_faults: cannot make the world: %s\n", why.text);
		message_free(m);
		return -1;
	}
	snprintf(w.verifier, sizeof(w.verifier), "%.*s", (int)pub.len, (const char *)pub.data);
	if ((nl = strchr(w.verifier, '\n')) != NULL)
		*nl = '\0';
	buf_free(&pub, 0);
	message_free(m);
	return 0;
}

static void
world_free(void)
{
	pki_free(w.pki);
	EVP_PKEY_free(w.key);
	X509_free(w.cert);
	EVP_PKEY_free(w.hov_key);
	X509_free(w.hov_cert);
	EVP_PKEY_free(w.gw_key);
	X509_free(w.gw_cert);
	buf_free(&w.sig, 0);
	buf_free(&w.sealed, 0);
	buf_free(&w.canon, 0);
	/* TEST_FAULTS_KEEP=1 keeps the databases for a look after a failure. */
	if (w.dir[0] != '\0' && getenv("TEST_FAULTS_KEEP") == NULL)
		testcerts_rmtree(w.dir);
}

/* ---- The loop ---- */

/*
 * One operation under test: run() does it with faults armed (it arms them
 * itself, after its own set-up, through op_arm) and returns its code;
 * check() then looks at the outcome with faults off: a result that is
 * correct for rc == 0, nothing half-done for rc < 0.  Both report a
 * failure with ck_abort_msg.
 */
struct op {
	const char *name;
	void (*setup)(void);
	int (*run)(struct why *why);
	void (*check)(int rc, long k);
	void (*teardown)(void);
	unsigned track;      /* libraries whose live blocks must balance per run */
	long dense;          /* every k up to this one is tried (0: DENSE) */
};

#define TRACK(lib) (1u << (lib))

static long op_k;
static int op_persistent, op_io, op_warmup;
/* The reason the last run gave, for check(), which sees only the code. */
static char run_reason[sizeof(((struct why *)0)->text)];

static void
op_arm(void)
{
	ERR_clear_error();
	if (!op_warmup)
		arm(op_k, op_persistent, op_io);
}

static void
live_snapshot(long out[LIB_COUNT])
{
	memcpy(out, F.live, sizeof(F.live));
}

/*
 * Each run is a child process (unless CK_FORK=no), so a crash is caught
 * and its stack looked at: a crash whose innermost frame, past libc, the
 * sanitizer and this file's allocators, lies in OpenSSL, jansson or SQLite
 * is the library's bug and is counted as such; anywhere else it is hegn's
 * and fails the test.  The child reports its stack on stderr: the handler
 * below without sanitizers, AddressSanitizer's report with them.
 */
static int fork_runs = 1;
static long test_pid;       /* names the test's files, the same in every run's child */
static char err_path[256];

#define ALLOCATOR_FUNCS " fault_now hdr_alloc hdr_free hdr_realloc hdr_size sq_malloc " \
	"sq_free sq_realloc sq_size ossl_malloc ossl_realloc ossl_free json_alloc " \
	"json_release crash_handler "

static const char *
frame_library(const char *path)
{
	if (strstr(path, "libcrypto.so") != NULL || strstr(path, "libssl.so") != NULL)
		return "OpenSSL";
	if (strstr(path, "libjansson.so") != NULL)
		return "jansson";
	if (strstr(path, "libsqlite3.so") != NULL)
		return "SQLite";
	return NULL;
}

ALLOCATOR static void
crash_handler(int sig)
{
	void *frames[64];
	Dl_info info;
	char line[512];
	int i, n, len;

	n = backtrace(frames, 64);
	for (i = 0; i < n; i++) {
		memset(&info, 0, sizeof(info));
		if (dladdr(frames[i], &info) == 0 || info.dli_fname == NULL)
			continue;
		if ((char *)frames[i] >= __start_hegn_faultalloc &&
		    (char *)frames[i] < __stop_hegn_faultalloc)
			info.dli_sname = "fault_now";
		len = snprintf(line, sizeof(line), "    #%d in %s (%s)\n", i,
		    info.dli_sname != NULL ? info.dli_sname : "?", info.dli_fname);
		if (len > 0)
			(void)!write(STDERR_FILENO, line, (size_t)len < sizeof(line) ?
			    (size_t)len : sizeof(line) - 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * The library a crash report blames, or NULL when the innermost frame that
 * is not libc, the sanitizer or an allocator above is hegn's (or unknown).
 */
static const char *
crash_library(const char *text)
{
	const char *p = text, *nl, *lib;
	char line[1024], fn[128];
	size_t len;

	while ((p = strstr(p, "    #")) != NULL) {
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		p += len;
		if ((lib = frame_library(line)) != NULL)
			return lib;
		if (strstr(line, "libasan") != NULL || strstr(line, "libubsan") != NULL ||
		    strstr(line, "libc.so") != NULL || strstr(line, "ld-linux") != NULL ||
		    strstr(line, "__interceptor") != NULL || strstr(line, "compiler-rt") != NULL ||
		    strstr(line, "sanitizer_common") != NULL || strstr(line, " in malloc ") != NULL ||
		    strstr(line, " in free ") != NULL || strstr(line, " in realloc ") != NULL)
			continue;
		/* A frame of this file's allocators, or of the handler. */
		if (sscanf(line, "%*s %*s in %127s", fn) == 1 ||
		    sscanf(line, "%*s in %127s", fn) == 1) {
			char want[132];

			snprintf(want, sizeof(want), " %s ", fn);
			if (strstr(ALLOCATOR_FUNCS, want) != NULL)
				continue;
		}
		if (strstr(line, "(?)") != NULL || strstr(line, "in ? (") != NULL) {
			/* An unnamed frame of the test binary: the handler's own, or hegn's. */
			if (strstr(line, "test_faults") != NULL)
				return NULL;
			continue;
		}
		return NULL;
	}
	return NULL;
}

/* Run op once at k; the result in bits: 0x10 no fault hit, 0x20 an error returned. */
static int
run_once(const struct op *op, long k, int persistent)
{
	long before[LIB_COUNT];
	struct why why;
	int rc, lib;

	ERR_clear_error();
	live_snapshot(before);
	if (op->setup != NULL)
		op->setup();
	op_k = k;
	memset(&why, 0, sizeof(why));
	rc = op->run(&why);
	disarm();
	snprintf(run_reason, sizeof(run_reason), "%s", why.text);
	ck_assert_msg(rc <= 0, "%s k=%ld%s: positive return %d", op->name, k,
	    persistent ? " persistent" : "", rc);
	ck_assert_msg(rc == 0 || why.text[0] != '\0', "%s k=%ld%s: error %d without a reason",
	    op->name, k, persistent ? " persistent" : "", rc);
	op->check(rc, k);
	if (op->teardown != NULL)
		op->teardown();
	ERR_clear_error();
	/*
	 * OpenSSL keeps per-thread error state and caches, an open SQLite
	 * connection its last error and statements: those are left to the
	 * sanitizer build's leak check at exit.
	 */
	for (lib = 0; lib < LIB_COUNT; lib++)
		ck_assert_msg(!(op->track & TRACK(lib)) || F.live[lib] == before[lib],
		    "%s k=%ld%s: %ld blocks leaked by library %d", op->name, k,
		    persistent ? " persistent" : "", F.live[lib] - before[lib], lib);
	return (F.hits == 0 ? 0x10 : 0) | (rc < 0 ? 0x20 : 0);
}

/* run_once in a child: its bits, or -1 after a crash the library is to blame for. */
static int
run_forked(const struct op *op, long k, int persistent, const char **blamed)
{
	char text[16384];
	const char *lib;
	int status, fd, code;
	ssize_t n;
	pid_t pid;

	*blamed = NULL;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		if ((fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
			dup2(fd, STDERR_FILENO);
		signal(SIGSEGV, crash_handler);
		signal(SIGBUS, crash_handler);
		signal(SIGABRT, crash_handler);
		signal(SIGFPE, crash_handler);
		signal(SIGILL, crash_handler);
		exit(run_once(op, k, persistent));
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (code >= 0 && (code & ~0x30) == 0)
		return code;
	text[0] = '\0';
	if ((fd = open(err_path, O_RDONLY)) != -1) {
		n = read(fd, text, sizeof(text) - 1);
		text[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	/*
	 * Exit status 1 is a failed check in the child (libcheck has its
	 * message already), or a sanitizer's report.
	 */
	if (code == 1 && strstr(text, "Sanitizer") == NULL)
		exit(1);
	if (strstr(text, "LeakSanitizer") != NULL)
		ck_abort_msg("%s k=%ld%s: leak: %.3000s", op->name, k,
		    persistent ? " persistent" : "", text);
	lib = crash_library(text);
	ck_assert_msg(lib != NULL, "%s k=%ld%s: %s %d in hegn: %.3000s", op->name, k,
	    persistent ? " persistent" : "", code < 0 ? "signal" : "exit",
	    code < 0 ? WTERMSIG(status) : code, text);
	*blamed = lib;
	return -1;
}

/*
 * Run op for k = 1, 2, ... until a run sees no fault (the operation made
 * fewer than k counted calls).  Returns the number of runs.
 */
static int
fault_loop(const struct op *op, int persistent, int io)
{
	const char *blamed, *first = NULL;
	long k = 1, first_k = 0;
	struct why why;
	int runs = 0, rc, code, failed = 0, crashes = 0;

	op_persistent = persistent;
	op_io = io;
	test_pid = (long)getpid();
	snprintf(err_path, sizeof(err_path), "%s/%ld.err", w.dir, test_pid);
	/* A first run without faults fills what is filled once (caches, lazy loads). */
	op_warmup = 1;
	if (op->setup != NULL)
		op->setup();
	memset(&why, 0, sizeof(why));
	rc = op->run(&why);
	snprintf(run_reason, sizeof(run_reason), "%s", why.text);
	ck_assert_msg(rc == 0, "%s without faults: %s", op->name, why.text);
	op->check(rc, 0);
	if (op->teardown != NULL)
		op->teardown();
	op_warmup = 0;
	for (runs = 0; runs < MAX_RUNS; runs++) {
		code = fork_runs ? run_forked(op, k, persistent, &blamed) :
		    run_once(op, k, persistent);
		if (code < 0) {
			if (crashes++ == 0) {
				first = blamed;
				first_k = k;
			}
		} else {
			if (code & 0x20)
				failed++;
			if (code & 0x10)
				break;
		}
		k += k < (op->dense > 0 ? op->dense : DENSE) ? 1 : k / 16;
	}
	printf("%s (%s, %s): %d runs, %d errors, last k %ld%s", op->name,
	    io < 0 ? "allocation" : io == IO_READ ? "xRead" : io == IO_WRITE ? "xWrite" : "xSync",
	    persistent ? "persistent" : "once", runs + 1, failed, k,
	    runs == MAX_RUNS ? " (capped)" : "");
	if (crashes > 0)
		printf("; %d crashes inside %s (first at k %ld)", crashes, first, first_k);
	printf("\n");
	/* The operation hit at least one fault, and recovered to succeed after all. */
	ck_assert_int_gt(failed, 0);
	return runs;
}

static void
all_modes(const struct op *op)
{
	fault_loop(op, 0, -1);
	fault_loop(op, 1, -1);
}

/* ---- message_parse ---- */

/*
 * With faults inside jansson's parser too, so each run is a child process:
 * an abort there (jansson#362, see json_loadb above) is counted as the
 * library's and told apart, by its message, from anything else.
 */
static int
parse_child(long k, int persistent)
{
	struct message *m = NULL;
	struct buf c = { 0 };
	struct why why = { 0 };
	long before = F.live[LIB_JANSSON];
	int rc, bad = 0;

	loader_faults = 1;
	arm(k, persistent, -1);
	rc = message_parse((const uint8_t *)msg, strlen(msg), NULL, &m, &why);
	disarm();
	if (rc > 0 || (rc < 0 && (m != NULL || why.text[0] == '\0')))
		bad = 0x04;
	if (rc == 0 && (m == NULL || message_canonical(m, &c, &why) != 0 ||
	    c.len != w.canon.len || memcmp(c.data, w.canon.data, c.len) != 0))
		bad = 0x04;
	buf_free(&c, 0);
	message_free(m);
	if (F.live[LIB_JANSSON] != before)
		bad |= 0x08;
	return bad | (F.hits == 0 ? 0x10 : 0) | (rc < 0 ? 0x20 : 0);
}

static void
parse_loop(int persistent)
{
	char errpath[256], text[4096];
	long k = 1;
	int runs, status, code, aborts = 0, errors = 0, fd;
	ssize_t n;
	pid_t pid;

	snprintf(errpath, sizeof(errpath), "%s/%ld-parse.err", w.dir, (long)getpid());
	for (runs = 0; runs < MAX_RUNS; runs++) {
		fflush(NULL);
		if ((pid = fork()) == 0) {
			if ((fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
				dup2(fd, STDERR_FILENO);
			exit(parse_child(k, persistent));
		}
		ck_assert_int_gt(pid, 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (code >= 0 && (code & ~0x30) == 0) {
			if (code & 0x20)
				errors++;
			if (code & 0x10)
				break;
		} else {
			text[0] = '\0';
			if ((fd = open(errpath, O_RDONLY)) != -1) {
				n = read(fd, text, sizeof(text) - 1);
				text[n > 0 ? n : 0] = '\0';
				close(fd);
			}
			ck_assert_msg(code < 0 || (code & 0x0c) == 0, "message_parse k=%ld%s: %s", k,
			    persistent ? " persistent" : "", (code & 0x0c) == 0x08 ?
			    "jansson blocks leaked" : "a wrong result for the error, or 0 with a "
			    "wrong message");
			/*
			 * A crash, or a sanitizer's report (exit status 1), after a
			 * fault inside jansson's parser; a leak report is never excused.
			 */
			ck_assert_msg(strstr(text, FAULT_IN_LOADER) != NULL &&
			    strstr(text, "LeakSanitizer") == NULL,
			    "message_parse k=%ld%s: %s %d: %.3000s", k, persistent ? " persistent" : "",
			    code < 0 ? "signal" : "exit", code < 0 ? WTERMSIG(status) : code, text);
			aborts++;
		}
		k += k < DENSE ? 1 : k / 16;
	}
	printf("message_parse (allocation, %s): %d runs, %d errors, %d aborts inside "
	    "jansson's parser, last k %ld%s\n", persistent ? "persistent" : "once", runs + 1,
	    errors, aborts, k, runs == MAX_RUNS ? " (capped)" : "");
	ck_assert_int_gt(errors, 0);
}

START_TEST(t_message_parse)
{
	parse_loop(0);
	parse_loop(1);
}
END_TEST

/* ---- message_minimise ---- */

/*
 * A copy without the health class.  Unchecked, a failed allocation in
 * jansson left the copy without attachments it should keep, and still 0.
 */
static const char min_msg[] =
    "{\"kind\": \"referral\", \"to\": \"hovmand-care\", \"citizen\": {\"cpr\": \"2509479989\"},"
    " \"basic\": {\"services\": [\"practical_help\"], \"start_date\": \"2030-01-01\"},"
    " \"care\": {\"description\": \"fault injection\"}, \"health\": {\"notes\": \"x\"},"
    " \"attachments\": [{\"class\": \"care\", \"content_type\": \"text/plain\","
    " \"filename\": \"a.txt\", \"data\": \"aGVqCg==\"}, {\"class\": \"health\","
    " \"content_type\": \"text/plain\", \"filename\": \"b.txt\", \"data\": \"aGVqCg==\"}]}";
static struct message *min_m, *min_out;
static struct buf min_want, min_orig;
#define MIN_KEEP ((1u << CLASS_BASIC) | (1u << CLASS_CARE))

static void
min_setup(void)
{
	struct message *c = NULL;
	struct why why = { 0 };
	unsigned removed;

	ck_assert_int_eq(message_parse((const uint8_t *)min_msg, strlen(min_msg), NULL, &min_m,
	    &why), 0);
	if (min_want.data == NULL) {
		ck_assert_int_eq(message_canonical(min_m, &min_orig, &why), 0);
		ck_assert_int_eq(message_minimise(min_m, MIN_KEEP, &c, &removed, &why), 0);
		ck_assert_int_eq(message_canonical(c, &min_want, &why), 0);
		message_free(c);
	}
}

static int
min_run(struct why *why)
{
	unsigned removed = 0;

	op_arm();
	return message_minimise(min_m, MIN_KEEP, &min_out, &removed, why);
}

static void
min_check(int rc, long k)
{
	struct buf c = { 0 };
	struct why why = { 0 };

	if (rc < 0) {
		ck_assert_msg(min_out == NULL, "message_minimise k=%ld: a copy on error", k);
	} else {
		ck_assert_msg(min_out != NULL && message_canonical(min_out, &c, &why) == 0 &&
		    c.len == min_want.len && memcmp(c.data, min_want.data, c.len) == 0,
		    "message_minimise k=%ld: 0 with another copy than without faults", k);
		buf_free(&c, 0);
	}
	/* The original is shared with the copy, never changed by it. */
	ck_assert_int_eq(message_canonical(min_m, &c, &why), 0);
	ck_assert_msg(c.len == min_orig.len && memcmp(c.data, min_orig.data, c.len) == 0,
	    "message_minimise k=%ld: the original changed", k);
	buf_free(&c, 0);
}

static void
min_teardown(void)
{
	message_free(min_out);
	message_free(min_m);
	min_out = min_m = NULL;
}

static const struct op op_minimise = { "message_minimise", min_setup, min_run, min_check,
	min_teardown, 0, MAX_RUNS };

START_TEST(t_message_minimise)
{
	all_modes(&op_minimise);
	buf_free(&min_want, 0);
	buf_free(&min_orig, 0);
}
END_TEST

/* ---- envelope_sign, envelope_verify, envelope_seal, envelope_open ---- */

static struct buf eb;
static struct envelope_signed *es;

static int
sign_run(struct why *why)
{
	op_arm();
	return envelope_sign(w.key, w.cert, NULL, ENVELOPE_PSS, (const uint8_t *)msg,
	    strlen(msg), "fault-2", &eb, why);
}

/* b is a signature by w.cert over msg; what names it in a failure. */
static void
sign_verifies(const struct buf *b, long k, const char *what)
{
	struct envelope_signed *s = NULL;
	struct why why = { 0 };
	const uint8_t *c;
	size_t len;

	ck_assert_msg(envelope_verify(w.pki, b->data, b->len, 0, &s, &why) == 0,
	    "envelope_sign k=%ld: %s does not verify (%s)", k, what, why.text);
	c = envelope_signed_content(s, &len);
	ck_assert(len == strlen(msg) && memcmp(c, msg, len) == 0);
	ck_assert_str_eq(envelope_signed_content_id(s), "fault-2");
	envelope_signed_free(s);
}

static void
sign_check(int rc, long k)
{
	struct buf again = { 0 };
	struct why why = { 0 };

	if (rc < 0)
		ck_assert_msg(eb.data == NULL && eb.len == 0, "envelope_sign k=%ld: output on error", k);
	else
		sign_verifies(&eb, k, "0 with a signature that");
	/* The key and certificate are shared by every message: nothing the fault broke stays broken. */
	ck_assert_msg(envelope_sign(w.key, w.cert, NULL, ENVELOPE_PSS, (const uint8_t *)msg,
	    strlen(msg), "fault-2", &again, &why) == 0,
	    "envelope_sign k=%ld: the next signature fails (%s)", k, why.text);
	sign_verifies(&again, k, "the next signature");
	buf_free(&again, 0);
}

static void
eb_teardown(void)
{
	buf_free(&eb, 1);
	envelope_signed_free(es);
	es = NULL;
}

static int
verify_run(struct why *why)
{
	op_arm();
	return envelope_verify(w.pki, w.sig.data, w.sig.len, 0, &es, why);
}

static void
verify_check(int rc, long k)
{
	const uint8_t *c;
	size_t len;

	if (rc < 0) {
		ck_assert_msg(es == NULL, "envelope_verify k=%ld: output on error", k);
		return;
	}
	ck_assert_msg(es != NULL, "envelope_verify k=%ld: 0 without output", k);
	c = envelope_signed_content(es, &len);
	ck_assert(len == strlen(msg) && memcmp(c, msg, len) == 0);
	ck_assert_int_eq(X509_cmp(envelope_signed_signer(es), w.cert), 0);
}

static int
seal_run(struct why *why)
{
	op_arm();
	return envelope_seal(w.gw_cert, ENVELOPE_AES256_GCM, w.sig.data, w.sig.len, 1, &eb, why);
}

/* b opens with the gateway's key to w.sig; what names it in a failure. */
static void
seal_opens(const struct buf *b, long k, const char *what)
{
	struct buf out = { 0 };
	struct why why = { 0 };

	ck_assert_msg(envelope_open(w.gw_key, w.gw_cert, b->data, b->len, &out, &why) == 0,
	    "envelope_seal k=%ld: %s does not open (%s)", k, what, why.text);
	ck_assert(out.len == w.sig.len && memcmp(out.data, w.sig.data, out.len) == 0);
	buf_free(&out, 1);
}

static void
seal_check(int rc, long k)
{
	struct buf again = { 0 };
	struct why why = { 0 };

	if (rc < 0)
		ck_assert_msg(eb.data == NULL && eb.len == 0, "envelope_seal k=%ld: output on error", k);
	else
		seal_opens(&eb, k, "0 with something that");
	/* The recipient's certificate is shared by every message: nothing the fault broke stays broken. */
	ck_assert_msg(envelope_seal(w.gw_cert, ENVELOPE_AES256_GCM, w.sig.data, w.sig.len, 1,
	    &again, &why) == 0, "envelope_seal k=%ld: the next sealing fails (%s)", k, why.text);
	seal_opens(&again, k, "the next sealed message");
	buf_free(&again, 0);
}

static int
open_run(struct why *why)
{
	op_arm();
	return envelope_open(w.gw_key, w.gw_cert, w.sealed.data, w.sealed.len, &eb, why);
}

static void
open_check(int rc, long k)
{
	if (rc < 0) {
		ck_assert_msg(eb.data == NULL && eb.len == 0, "envelope_open k=%ld: output on error", k);
		return;
	}
	ck_assert_msg(eb.len == w.sig.len && memcmp(eb.data, w.sig.data, eb.len) == 0,
	    "envelope_open k=%ld: 0 with other content", k);
}

static const struct op op_sign = { "envelope_sign", NULL, sign_run, sign_check, eb_teardown,
	0, MAX_RUNS };
static const struct op op_verify = { "envelope_verify", NULL, verify_run, verify_check,
	eb_teardown, 0, 0 };
static const struct op op_seal = { "envelope_seal", NULL, seal_run, seal_check, eb_teardown, 0,
	MAX_RUNS };
static const struct op op_open = { "envelope_open", NULL, open_run, open_check, eb_teardown, 0, 0 };

START_TEST(t_envelope_sign)
{
	all_modes(&op_sign);
}
END_TEST

START_TEST(t_envelope_verify)
{
	all_modes(&op_verify);
}
END_TEST

START_TEST(t_envelope_seal)
{
	all_modes(&op_seal);
}
END_TEST

START_TEST(t_envelope_open)
{
	all_modes(&op_open);
}
END_TEST

/* ---- The store: a message with its delivery and event, and an audit entry ---- */

static char db_path[256];
static struct store *st;
static int msg_seq;
static char cur_id[65];

/* A raw look at the file: integrity and a count, with faults off. */
static void
db_expect(const char *what, long k, const char *count_sql, int want)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	const unsigned char *txt;
	int n = -1;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	txt = sqlite3_column_text(s, 0);
	ck_assert_msg(txt != NULL && strcmp((const char *)txt, "ok") == 0,
	    "%s k=%ld: integrity_check says %s", what, k, txt != NULL ? (const char *)txt : "?");
	sqlite3_finalize(s);
	if (count_sql != NULL) {
		ck_assert_int_eq(sqlite3_prepare_v2(db, count_sql, -1, &s, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_bind_text(s, 1, cur_id, -1, SQLITE_STATIC), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
		n = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		ck_assert_msg(n == want, "%s k=%ld: %d rows for %s where %d belong", what, k, n,
		    cur_id, want);
	}
	sqlite3_close(db);
}

/*
 * A sync of the WAL that failed after COMMIT (group commit, docs/store.md
 * "Durability"): the transaction is in the file, but was refused as not
 * known to be on disk.
 */
static int
unsynced(int rc)
{
	return rc < 0 && strstr(run_reason, "may not be on disk") != NULL;
}

/*
 * After a failed sync the store takes no more transactions until it is
 * reopened: a reader could see what was not known to be on disk.
 */
static void
expect_refused(struct store *s, const char *what, long k)
{
	struct store_tx *tx = NULL;
	struct why why = { 0 };
	int rc, write;

	for (write = 0; write <= 1; write++) {
		memset(&why, 0, sizeof(why));
		rc = store_begin(s, write, &tx, &why);
		if (rc == 0)
			store_rollback(tx);
		ck_assert_msg(rc == HEGN_ERR_STORE &&
		    strstr(why.text, "until the store is reopened") != NULL,
		    "%s k=%ld: a %s after a failed sync (%s) gives %d (%s)", what, k,
		    write ? "write" : "read", run_reason, rc, why.text);
	}
}

static void
store_setup(void)
{
	struct why why = { 0 };

	/*
	 * Half the runs write to a database of their own (an empty log), half
	 * to the test's, where the earlier runs' rows are.
	 */
	snprintf(db_path, sizeof(db_path), "%s/%ld.db", w.dir,
	    getpid() % 2 ? (long)getpid() : test_pid);
	ck_assert_msg(store_open(db_path, &st, &why) == 0, "store_open: %s", why.text);
	snprintf(cur_id, sizeof(cur_id), "fault-%ld-%d", (long)getpid(), ++msg_seq);
}

static int
write_run(struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_message m;
	struct store_delivery d;
	struct store_event e;
	int rc;

	memset(&m, 0, sizeof(m));
	memset(&d, 0, sizeof(d));
	memset(&e, 0, sizeof(e));
	snprintf(m.id, sizeof(m.id), "%s", cur_id);
	snprintf(m.sender, sizeof(m.sender), "ringsted-visitation");
	snprintf(m.kind, sizeof(m.kind), "referral");
	memset(m.content_sha256, 'a', 64);
	memset(m.citizen_ref, 'b', 64);
	m.created_ms = 1795772760000LL;
	m.signed_der = w.sig;
	snprintf(d.message_id, sizeof(d.message_id), "%s", cur_id);
	snprintf(d.recipient, sizeof(d.recipient), "hovmand-care");
	snprintf(d.state, sizeof(d.state), STORE_STATE_SUBMITTED);
	snprintf(d.channel, sizeof(d.channel), "pull");
	d.updated_ms = m.created_ms;
	memset(d.sealed_sha256, 'c', 64);
	d.sealed = w.sealed;
	snprintf(e.message_id, sizeof(e.message_id), "%s", cur_id);
	snprintf(e.event, sizeof(e.event), "submitted");
	snprintf(e.actor, sizeof(e.actor), "ringsted-visitation");
	e.at_ms = m.created_ms;

	op_arm();
	if ((rc = store_begin(st, 1, &tx, why)) != 0)
		return rc;
	if ((rc = store_message_insert(tx, &m, why)) != 0 ||
	    (rc = store_delivery_insert(tx, &d, why)) != 0 ||
	    (rc = store_event_add(tx, &e, why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	return store_commit(tx, why);
}

#define COUNT_ALL "SELECT (SELECT count(*) FROM messages WHERE id = ?1) +" \
	" (SELECT count(*) FROM deliveries WHERE message_id = ?1) +" \
	" (SELECT count(*) FROM sealed_copies WHERE seq IN" \
	"  (SELECT seq FROM deliveries WHERE message_id = ?1)) +" \
	" (SELECT count(*) FROM events WHERE message_id = ?1)"

static void
write_check(int rc, long k)
{
	db_expect("store write", k, COUNT_ALL, rc == 0 || unsynced(rc) ? 4 : 0);
	if (rc < 0 && op_io == IO_SYNC)
		expect_refused(st, "store write", k);
}

/* A connection per run, so SQLite's blocks balance when it is closed. */
static void
store_teardown(void)
{
	store_close(st);
	st = NULL;
}

static const struct op op_write = { "store write", store_setup, write_run, write_check,
	store_teardown, TRACK(LIB_SQLITE), 0 };

START_TEST(t_store_write)
{
	all_modes(&op_write);
	fault_loop(&op_write, 0, IO_WRITE);
	fault_loop(&op_write, 0, IO_SYNC);
	fault_loop(&op_write, 1, IO_WRITE);
}
END_TEST

/* Opening (and so creating) the database. */
static void
open_setup(void)
{
	snprintf(db_path, sizeof(db_path), "%s/%ld-%d.db", w.dir, (long)getpid(), ++msg_seq);
}

static int
store_open_run(struct why *why)
{
	op_arm();
	return store_open(db_path, &st, why);
}

static void
store_open_check(int rc, long k)
{
	struct why why = { 0 };

	if (rc < 0)
		ck_assert_msg(st == NULL, "store_open k=%ld: a store on error", k);
	store_close(st);
	st = NULL;
	/* Whatever a failure left behind opens, at the current schema, and is sound. */
	ck_assert_msg(store_open(db_path, &st, &why) == 0, "store_open k=%ld then again: %s",
	    k, why.text);
	store_close(st);
	st = NULL;
	db_expect("store_open", k, NULL, 0);
}

static const struct op op_store_open = { "store_open", open_setup, store_open_run,
	store_open_check, NULL, TRACK(LIB_SQLITE), 0 };

START_TEST(t_store_open)
{
	all_modes(&op_store_open);
	fault_loop(&op_store_open, 0, IO_WRITE);
	fault_loop(&op_store_open, 0, IO_SYNC);
	fault_loop(&op_store_open, 0, IO_READ);
}
END_TEST

static int64_t audit_before;

static void
audit_setup(void)
{
	struct store_tx *tx = NULL;
	struct why why = { 0 };

	store_setup();
	ck_assert_int_eq(store_begin(st, 0, &tx, &why), 0);
	ck_assert_int_eq(store_audit_count(tx, &audit_before, &why), 0);
	store_rollback(tx);
}

static int
audit_run(struct why *why)
{
	struct audit_event e = { .action = "message.submit", .actor = "ringsted-visitation",
		.message_id = cur_id, .outcome = "ok", .rule = "fault", .detail = "injected" };
	struct store_tx *tx = NULL;
	int rc;

	op_arm();
	if ((rc = store_begin(st, 1, &tx, why)) != 0)
		return rc;
	if ((rc = audit_append(tx, &e, 1795772760000LL, why)) != 0) {
		store_rollback(tx);
		return rc;
	}
	return store_commit(tx, why);
}

static void
audit_check(int rc, long k)
{
	struct store_tx *tx = NULL;
	struct why why = { 0 };
	int64_t n = 0;
	int added = rc == 0 || unsynced(rc);
	FILE *null;

	db_expect("audit_append", k, "SELECT count(*) FROM audit WHERE message_id = ?1",
	    added);
	if (rc < 0 && op_io == IO_SYNC) {
		expect_refused(st, "audit_append", k);
		/* Reopened, the log holds what the file holds, and verifies. */
		store_close(st);
		st = NULL;
		ck_assert_msg(store_open(db_path, &st, &why) == 0, "store_open: %s", why.text);
	}
	ck_assert_int_eq(store_begin(st, 0, &tx, &why), 0);
	ck_assert_int_eq(store_audit_count(tx, &n, &why), 0);
	store_rollback(tx);
	ck_assert_msg(n == audit_before + added, "audit_append k=%ld: %lld entries"
	    " after %lld", k, (long long)n, (long long)audit_before);
	null = fopen("/dev/null", "w");
	ck_assert_msg(audit_verify_store(st, w.verifier, null, &why) == 0,
	    "audit_append k=%ld: the log no longer verifies (%s)", k, why.text);
	fclose(null);
}

static const struct op op_audit = { "audit_append", audit_setup, audit_run, audit_check,
	store_teardown, TRACK(LIB_SQLITE), 0 };

START_TEST(t_audit_append)
{
	all_modes(&op_audit);
	fault_loop(&op_audit, 0, IO_WRITE);
	fault_loop(&op_audit, 0, IO_SYNC);
}
END_TEST

/* ---- relay_submit on the demo world ---- */

static struct relay *rl;
static json_t *resp;

static void
relay_setup(void)
{
	struct why why = { 0 };

	if (rl == NULL) {
		ck_assert_msg(relay_open(w.conf, RELAY_KEYS | RELAY_STORE, &rl, &why) == 0,
		    "relay_open: %s", why.text);
		snprintf(db_path, sizeof(db_path), "%s/state/hegn.db", w.demo);
	}
	snprintf(cur_id, sizeof(cur_id), "fault-relay-%ld-%d", (long)getpid(), ++msg_seq);
}

static int
relay_body(char *body, size_t size)
{
	int n = snprintf(body, size, "{\"id\": \"%s\", %s", cur_id, msg + 1);

	ck_assert(n > 0 && (size_t)n < size);
	return n;
}

static int
relay_run(struct why *why)
{
	const struct party *p = party_find(relay_parties(rl), "ringsted-visitation");
	char body[1024];
	struct buf b;
	int created = -1, n, rc;

	/* As hegnd submits: the body in a buffer the relay frees once it is read. */
	n = relay_body(body, sizeof(body));
	b.data = xmalloc((size_t)n + 1);
	memcpy(b.data, body, (size_t)n + 1);
	b.len = (size_t)n;
	op_arm();
	rc = relay_submit_buf(rl, p, "application/json", &b, &resp, &created, why);
	buf_free(&b, 1);
	return rc;
}

/*
 * What hovmand-care would get: its copy opens with its key, the signature
 * inside verifies and covers exactly what was submitted (with id and from).
 */
static void
relay_check_copy(long k)
{
	struct message *m = NULL;
	struct buf canon = { 0 }, inner = { 0 };
	struct envelope_signed *sig = NULL;
	struct why why = { 0 };
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	char body[1024], want[65], got[65];
	const uint8_t *c;
	size_t len;
	int n;

	/* The check itself runs without faults: it must see what was stored, not fail itself. */
	disarm();
	n = relay_body(body, sizeof(body));
	ck_assert_int_eq(message_parse((const uint8_t *)body, (size_t)n, NULL, &m, &why), 0);
	ck_assert_int_eq(message_set_from(m, "ringsted-visitation"), 0);
	ck_assert_int_eq(message_canonical(m, &canon, &why), 0);
	util_sha256_hex(canon.data, canon.len, want);
	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT m.content_sha256, s.sealed FROM messages m"
	    " JOIN deliveries d ON d.message_id = m.id JOIN sealed_copies s ON s.seq = d.seq"
	    " WHERE m.id = ?1 AND d.recipient = 'hovmand-care'", -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_bind_text(q, 1, cur_id, -1, SQLITE_STATIC), SQLITE_OK);
	ck_assert_msg(sqlite3_step(q) == SQLITE_ROW, "relay_submit k=%ld: no copy for "
	    "hovmand-care", k);
	ck_assert_msg(strcmp((const char *)sqlite3_column_text(q, 0), want) == 0,
	    "relay_submit k=%ld: content_sha256 is not that of what was sent", k);
	ck_assert_msg(envelope_open(w.hov_key, w.hov_cert, sqlite3_column_blob(q, 1),
	    (size_t)sqlite3_column_bytes(q, 1), &inner, &why) == 0,
	    "relay_submit k=%ld: hovmand-care cannot open its copy (%s)", k, why.text);
	ck_assert_msg(envelope_verify(w.pki, inner.data, inner.len, 0, &sig, &why) == 0,
	    "relay_submit k=%ld: the copy's signature does not verify (%s)", k, why.text);
	c = envelope_signed_content(sig, &len);
	util_sha256_hex(c, len, got);
	ck_assert_msg(strcmp(got, want) == 0, "relay_submit k=%ld: the copy is not what was sent",
	    k);
	envelope_signed_free(sig);
	buf_free(&inner, 1);
	buf_free(&canon, 0);
	message_free(m);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void
relay_check_outcome(int rc, long k)
{
	struct why why = { 0 };
	json_t *id;

	if (rc == 0) {
		ck_assert_msg(resp != NULL, "relay_submit k=%ld: 0 without an answer", k);
		id = json_object_get(resp, "id");
		ck_assert_msg(json_is_string(id) && strcmp(json_string_value(id), cur_id) == 0,
		    "relay_submit k=%ld: answered another id", k);
	} else {
		ck_assert_msg(resp == NULL, "relay_submit k=%ld: an answer on error", k);
	}
	/*
	 * A refused submission leaves no message, delivery or event row behind,
	 * unless a sync after its COMMIT failed: then it is stored, though not
	 * acknowledged.
	 */
	db_expect("relay_submit", k, "SELECT (SELECT count(*) FROM messages WHERE id = ?1) +"
	    " (SELECT count(*) FROM deliveries WHERE message_id = ?1) +"
	    " (SELECT count(*) FROM sealed_copies WHERE seq IN"
	    "  (SELECT seq FROM deliveries WHERE message_id = ?1))",
	    rc == 0 || unsynced(rc) ? 3 : 0);
	if (rc != 0 && op_io == IO_SYNC) {
		/* After a failed sync the retry is refused until the store is reopened. */
		json_decref(resp);
		resp = NULL;
		op_warmup = 1;
		rc = relay_run(&why);
		op_warmup = 0;
		ck_assert_msg(rc == HEGN_ERR_STORE && strstr(why.text, "until the store is reopened") != NULL,
		    "relay_submit k=%ld: the retry after a failed sync (%s) gives %d (%s)", k,
		    run_reason, rc, why.text);
		relay_close(rl);
		rl = NULL;
		ck_assert_msg(relay_open(w.conf, RELAY_KEYS | RELAY_STORE, &rl, &why) == 0,
		    "relay_open: %s", why.text);
		rc = -1;
	}
	if (rc != 0) {
		/* The client's retry, in the same process: nothing the fault broke stays broken. */
		json_decref(resp);
		resp = NULL;
		op_warmup = 1;
		rc = relay_run(&why);
		op_warmup = 0;
		ck_assert_msg(rc == 0, "relay_submit k=%ld: the retry fails too (%s)", k, why.text);
	}
	relay_check_copy(k);
}

static void
relay_teardown(void)
{
	json_decref(resp);
	resp = NULL;
}

static const struct op op_relay = { "relay_submit", relay_setup, relay_run,
	relay_check_outcome, relay_teardown, 0, 0 };

START_TEST(t_relay_submit)
{
	struct why why = { 0 };
	long sq_before = F.live[LIB_SQLITE];
	FILE *null;

	all_modes(&op_relay);
	fault_loop(&op_relay, 0, IO_WRITE);
	fault_loop(&op_relay, 0, IO_SYNC);
	fault_loop(&op_relay, 0, IO_READ);
	/* Every refusal and success was audited consistently. */
	null = fopen("/dev/null", "w");
	ck_assert_msg(audit_verify_store(relay_store(rl), w.verifier, null, &why) == 0,
	    "the audit log no longer verifies (%s)", why.text);
	fclose(null);
	relay_close(rl);
	rl = NULL;
	ck_assert_msg(F.live[LIB_SQLITE] == sq_before, "relay_submit: %ld SQLite blocks leaked",
	    F.live[LIB_SQLITE] - sq_before);
}
END_TEST

/* ---- Group commit (docs/store.md "Durability") ---- */

/* Store one message with id (and a signed copy of big bytes, if big > 0). */
static int
gc_write(struct store *s, const char *id, size_t big, struct why *why)
{
	struct store_tx *tx = NULL;
	struct store_message m;
	uint8_t *blob = NULL;
	int rc;

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "%s", id);
	snprintf(m.sender, sizeof(m.sender), "ringsted-visitation");
	snprintf(m.kind, sizeof(m.kind), "referral");
	memset(m.content_sha256, 'a', 64);
	memset(m.citizen_ref, 'b', 64);
	m.created_ms = 1795772760000LL;
	m.signed_der = w.sig;
	if (big > 0) {
		ck_assert_ptr_nonnull(blob = malloc(big));
		memset(blob, 'x', big);
		m.signed_der.data = blob;
		m.signed_der.len = big;
	}
	if ((rc = store_begin(s, 1, &tx, why)) == 0) {
		if ((rc = store_message_insert(tx, &m, why)) != 0)
			store_rollback(tx);
		else
			rc = store_commit(tx, why);
	}
	free(blob);
	return rc;
}

static void
gc_open(const char *name)
{
	struct why why = { 0 };

	snprintf(db_path, sizeof(db_path), "%s/%ld-%s.db", w.dir, (long)getpid(), name);
	ck_assert_msg(store_open(db_path, &st, &why) == 0, "store_open: %s", why.text);
	/* A first commit: the WAL is past its header, whose sync belongs to a COMMIT. */
	ck_assert_msg(gc_write(st, "gc-first", 0, &why) == 0, "a first write: %s", why.text);
}

/*
 * The one fault armed was a sync of kind, and failed as why says: st
 * refuses every transaction now; close it.
 */
static void
gc_refused_after(int kind, const struct why *why, const char *what)
{
	ck_assert_int_eq(F.hits, 1);
	ck_assert_int_eq(T.failed_kind, kind);
	snprintf(run_reason, sizeof(run_reason), "%s", why->text);
	expect_refused(st, what, 0);
	store_close(st);
	st = NULL;
}

/* The WAL's sync after COMMIT fails: the commit is refused, and every write after it. */
static void
gc_sync_fails(void)
{
	struct why why = { 0 };
	int rc;

	gc_open("gc-sync");
	T.failed_kind = FILE_OTHER;
	arm(1, 0, IO_SYNC);
	rc = gc_write(st, "gc-lost", 0, &why);
	disarm();
	ck_assert_msg(rc == HEGN_ERR_STORE && strstr(why.text, "may not be on disk") != NULL,
	    "a commit whose WAL sync failed gives %d (%s)", rc, why.text);
	ck_assert_int_eq(F.hits, 1);
	ck_assert_int_eq(T.failed_kind, FILE_WAL);
	/* In the file, but never acknowledged. */
	snprintf(cur_id, sizeof(cur_id), "gc-lost");
	db_expect("group commit", 0, "SELECT count(*) FROM messages WHERE id = ?1", 1);
	snprintf(run_reason, sizeof(run_reason), "%s", why.text);
	expect_refused(st, "group commit", 0);
	store_close(st);
	st = NULL;
	/* Reopened, it takes writes again. */
	ck_assert_msg(store_open(db_path, &st, &why) == 0, "store_open: %s", why.text);
	ck_assert_msg(gc_write(st, "gc-after", 0, &why) == 0, "a write after reopening: %s",
	    why.text);
	store_close(st);
	st = NULL;
}

/*
 * A sync inside a checkpoint fails (here the database's, which only a
 * checkpoint syncs): SQLite's own checkpoint hook would ignore it; the
 * store refuses the commit that ran the checkpoint and every write after.
 */
static void
gc_checkpoint_fails(void)
{
	struct why why = { 0 };
	int rc;

	gc_open("gc-ckpt");
	T.failed_kind = FILE_OTHER;
	/* The checkpoint syncs the WAL (1), copies it, syncs the database (2). */
	arm(2, 0, IO_SYNC);
	/* More than 1,000 pages: the commit's WAL hook checkpoints. */
	rc = gc_write(st, "gc-big", 5 << 20, &why);
	disarm();
	ck_assert_msg(rc == HEGN_ERR_STORE && strstr(why.text, "may not be on disk") != NULL,
	    "a commit whose checkpoint failed to sync gives %d (%s)", rc, why.text);
	gc_refused_after(FILE_DB, &why, "group commit");
}

struct gc_thread {
	pthread_t th;
	const char *name;
	int n;               /* commits to make */
	int rc;
	int durable;         /* at each return, a WAL sync begun after its COMMIT had ended */
	int done;            /* under T.lock */
};

static void *
gc_committer(void *arg)
{
	struct gc_thread *t = arg;
	struct why why = { 0 };
	char id[64];
	int i;

	t->durable = 1;
	for (i = 0; i < t->n && t->rc == 0; i++) {
		snprintf(id, sizeof(id), "%s-%d", t->name, i);
		t->rc = gc_write(st, id, 0, &why);
		/* my_wal_write: this thread's COMMIT, its last write to the WAL. */
		pthread_mutex_lock(&T.lock);
		if (t->rc == 0 && T.synced_from <= my_wal_write)
			t->durable = 0;
		pthread_mutex_unlock(&T.lock);
	}
	pthread_mutex_lock(&T.lock);
	t->done = 1;
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
	return NULL;
}

/*
 * A reader of gc-a-0: its transaction ends only once what it saw is on
 * disk, a write transaction that read it and rolled back (answering from
 * what it read, as a repeat is) as well as a read.
 */
struct gc_reader {
	pthread_t th;
	struct store *s;     /* the store read; NULL: st */
	int write;           /* read in a write transaction, ended by a rollback */
	int rc;              /* of store_begin */
	char why[512];
	int saw;             /* found gc-a-0 */
	int read;            /* under T.lock: has read, and is ending its transaction */
	int done;            /* under T.lock: its transaction has ended */
};

static void *
gc_read(void *arg)
{
	struct gc_reader *g = arg;
	struct store_tx *tx = NULL;
	struct store_message m;
	struct why why = { 0 };

	if ((g->rc = store_begin(g->s != NULL ? g->s : st, g->write, &tx, &why)) == 0) {
		if (store_message_get(tx, "gc-a-0", 0, &m, &why) == 0) {
			g->saw = 1;
			store_message_clear(&m);
		}
		pthread_mutex_lock(&T.lock);
		g->read = 1;
		pthread_cond_broadcast(&T.cond);
		pthread_mutex_unlock(&T.lock);
		store_rollback(tx);
	}
	snprintf(g->why, sizeof(g->why), "%s", why.text);
	pthread_mutex_lock(&T.lock);
	g->read = 1;
	g->done = 1;
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
	return NULL;
}

/*
 * Both committed, as seen from outside the store: any transaction of the
 * store's own ends only once what it saw is on disk, which the held sync
 * keeps from happening.
 */
static int
gc_committed(const char *a, const char *b)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int n = -1;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages WHERE id IN (?1, ?2)",
	    -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC), SQLITE_OK);
	ck_assert_int_eq(sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n == 2;
}

/*
 * The acknowledgement waits for the sync, and one sync serves many:
 * A's sync of the WAL is held in the VFS; B and C commit meanwhile (the
 * sync runs without the write lock), and none of the three returns
 * before a WAL sync begun after its COMMIT has ended.  A reader that saw
 * A's message ends its transaction only after that sync too, and so does
 * a write transaction that saw it and rolled back.  Released,
 * A's sync covers A, and one more covers B and C.
 */
static void
gc_ack_waits(void)
{
	struct gc_thread t[3] = { { .name = "gc-a", .n = 1 }, { .name = "gc-b", .n = 1 },
		{ .name = "gc-c", .n = 1 } };
	struct gc_reader rd = { 0 }, wr = { .write = 1 };
	struct store_tx *tx = NULL;
	struct why why = { 0 };
	long syncs_before;
	int i, polls;

	gc_open("gc-ack");
	pthread_mutex_lock(&T.lock);
	T.hold = 1;
	T.held = 0;
	pthread_mutex_unlock(&T.lock);
	ck_assert_int_eq(pthread_create(&t[0].th, NULL, gc_committer, &t[0]), 0);
	pthread_mutex_lock(&T.lock);
	while (!T.held && !t[0].done)
		pthread_cond_wait(&T.cond, &T.lock);
	syncs_before = T.wal_syncs - 1;
	pthread_mutex_unlock(&T.lock);
	ck_assert_msg(!t[0].done, "gc-a returned without a sync of the WAL");
	ck_assert_int_eq(pthread_create(&rd.th, NULL, gc_read, &rd), 0);
	pthread_mutex_lock(&T.lock);
	while (!rd.read)
		pthread_cond_wait(&T.cond, &T.lock);
	pthread_mutex_unlock(&T.lock);
	ck_assert_int_eq(pthread_create(&wr.th, NULL, gc_read, &wr), 0);
	pthread_mutex_lock(&T.lock);
	while (!wr.read)
		pthread_cond_wait(&T.cond, &T.lock);
	pthread_mutex_unlock(&T.lock);
	for (i = 1; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i].th, NULL, gc_committer, &t[i]), 0);
	/* A watchdog, not a timing check: with the sync under the write lock this never ends. */
	for (polls = 0; !gc_committed("gc-b-0", "gc-c-0"); polls++) {
		ck_assert_msg(polls < 60000, "B and C cannot commit while A's sync is held");
		usleep(1000);
	}
	/* Once the write lock is free again, both have counted their commits. */
	ck_assert_msg(store_begin(st, 1, &tx, &why) == 0, "store_begin: %s", why.text);
	pthread_mutex_lock(&T.lock);
	for (i = 0; i < 3; i++)
		ck_assert_msg(!t[i].done, "%s returned before a sync after its commit", t[i].name);
	ck_assert_msg(rd.saw, "the reader does not see gc-a's commit");
	ck_assert_msg(!rd.done, "a read of gc-a ended before gc-a was on disk");
	ck_assert_msg(wr.saw, "the write transaction does not see gc-a's commit");
	ck_assert_msg(!wr.done, "a write transaction that read gc-a and rolled back ended "
	    "before gc-a was on disk");
	T.hold = 0;
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_join(t[i].th, NULL), 0);
		ck_assert_msg(t[i].rc == 0, "%s: %d", t[i].name, t[i].rc);
		ck_assert_msg(t[i].durable, "%s returned before a WAL sync begun after its COMMIT "
		    "had ended", t[i].name);
	}
	ck_assert_int_eq(pthread_join(rd.th, NULL), 0);
	ck_assert_int_eq(pthread_join(wr.th, NULL), 0);
	store_rollback(tx);
	ck_assert_int_eq(T.wal_syncs - syncs_before, 2);
	store_close(st);
	st = NULL;
}

/* Many committers at once: every return follows a sync begun after its COMMIT. */
static void
gc_many(void)
{
	struct gc_thread t[4] = { { .name = "gc-m0", .n = 50 }, { .name = "gc-m1", .n = 50 },
		{ .name = "gc-m2", .n = 50 }, { .name = "gc-m3", .n = 50 } };
	int i;

	gc_open("gc-many");
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i].th, NULL, gc_committer, &t[i]), 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i].th, NULL), 0);
		ck_assert_msg(t[i].rc == 0, "%s: %d", t[i].name, t[i].rc);
		ck_assert_msg(t[i].durable, "%s returned before a WAL sync begun after its COMMIT "
		    "had ended", t[i].name);
	}
	store_close(st);
	st = NULL;
}

/*
 * One relay_submit of body on a thread of its own, as hegnd serves a
 * connection; or one of the reads whose result is shown to someone.
 */
enum gc_read {
	GC_SUBMIT,
	GC_INBOX,               /* hovmand-care's inbox */
	GC_STATUS,              /* the status of status_id, to hovmand-care */
	GC_WEB_LIST,            /* hovmand-care's messages, as its web page lists them */
	GC_REPORT,              /* the delivery report */
	GC_METRICS,             /* GET /metrics */
};

struct gc_submit {
	pthread_t th;
	const char *body;
	size_t len;
	enum gc_read read;
	const char *status_id;
	json_t *resp;
	int rc;
	char why[512];
	int done;            /* under T.lock */
};

static void *
gc_submitter(void *arg)
{
	struct gc_submit *g = arg;
	const struct party *p = party_find(relay_parties(rl), "ringsted-visitation");
	const struct party *to = party_find(relay_parties(rl), "hovmand-care");
	struct why why = { 0 };
	struct report *rep = NULL;
	struct buf metrics = { 0 };
	int created = -1;

	switch (g->read) {
	case GC_SUBMIT:
		g->rc = relay_submit(rl, p, "application/json", (const uint8_t *)g->body, g->len,
		    &g->resp, &created, &why);
		break;
	case GC_STATUS:
		g->rc = relay_status(rl, to, g->status_id, &g->resp, &why);
		break;
	case GC_INBOX:
		g->rc = relay_inbox(rl, to, NULL, NULL, &g->resp, &why);
		break;
	case GC_WEB_LIST:
		g->rc = relay_party_messages(rl, to->name, 0, &g->resp, &why);
		break;
	case GC_REPORT:
		/* An answer of either kind is a response here. */
		if ((g->rc = report_collect(relay_store(rl), relay_parties(rl), 0, 0, &rep,
		    &why)) == 0)
			g->resp = report_delivery_json(rep);
		report_free(rep);
		break;
	case GC_METRICS:
		if ((g->rc = report_metrics(relay_store(rl), relay_parties(rl), &metrics,
		    &why)) == 0)
			g->resp = json_stringn((const char *)metrics.data, metrics.len);
		buf_free(&metrics, 0);
		break;
	}
	snprintf(g->why, sizeof(g->why), "%s", why.text);
	pthread_mutex_lock(&T.lock);
	g->done = 1;
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
	return NULL;
}

/*
 * After a first commit (the WAL is then past its header, whose sync belongs
 * to a COMMIT), start a submission of a new message (its body into body)
 * whose WAL sync is held, to fail when let go; return once it is held.
 */
static void
gc_start_held(struct gc_submit *a, char *body, size_t size)
{
	struct gc_submit first = { 0 };

	relay_setup();
	first.body = body;
	first.len = (size_t)relay_body(body, size);
	gc_submitter(&first);
	ck_assert_msg(first.rc == 0, "a first submission: %s", first.why);
	json_decref(first.resp);
	relay_setup();
	a->body = body;
	a->len = (size_t)relay_body(body, size);
	pthread_mutex_lock(&T.lock);
	T.hold = 1;
	T.held = 0;
	T.fail_held = 1;
	pthread_mutex_unlock(&T.lock);
	ck_assert_int_eq(pthread_create(&a->th, NULL, gc_submitter, a), 0);
	pthread_mutex_lock(&T.lock);
	while (!T.held && !a->done)
		pthread_cond_wait(&T.cond, &T.lock);
	ck_assert_msg(!a->done, "the submission returned without a sync of the WAL");
	pthread_mutex_unlock(&T.lock);
}

/*
 * Start fn(arg) on *th and wait until it has begun a transaction, whose
 * snapshot then holds the held commit, or read the WAL (or is done, *done
 * set under T.lock).  A read of the WAL alone was not proof enough: a
 * pooled connection that had read the held commit's pages for an earlier
 * reader keeps them in its cache while the WAL does not change, and the next
 * reader on it reads nothing from the WAL.
 */
static void
gc_start_reading(pthread_t *th, void *(*fn)(void *), void *arg, const int *done,
    const char *what)
{
	struct timespec until;
	long reads, marks;

	pthread_mutex_lock(&T.lock);
	reads = T.wal_reads;
	marks = T.read_marks;
	pthread_mutex_unlock(&T.lock);
	ck_assert_int_eq(pthread_create(th, NULL, fn, arg), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 120;
	pthread_mutex_lock(&T.lock);
	/* A watchdog, not a timing check: it reads the WAL at once. */
	while (T.wal_reads == reads && T.read_marks == marks && !*done)
		ck_assert_msg(pthread_cond_timedwait(&T.cond, &T.lock, &until) == 0,
		    "%s never read the WAL", what);
	pthread_mutex_unlock(&T.lock);
}

/* Let the held sync go (and fail). */
static void
gc_release(void)
{
	pthread_mutex_lock(&T.lock);
	T.hold = 0;
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
}

/*
 * A submission's commit waits for its WAL sync.  Meanwhile the same
 * submission again reads it and is answered as a repeat, the recipient
 * lists its inbox, asks for the message's status and lists its messages as
 * the web page does, and the delivery report and the metrics are made; all
 * of them see the commit.  The sync then fails: the first is refused, and
 * none of the others may answer from what may not be on disk.
 */
static void
gc_reads_failed_sync(void)
{
	struct gc_submit a = { 0 }, b = { 0 }, inbox = { .read = GC_INBOX },
	    status = { .read = GC_STATUS }, web = { .read = GC_WEB_LIST },
	    report = { .read = GC_REPORT }, metrics = { .read = GC_METRICS };
	struct gc_submit *all[] = { &a, &b, &inbox, &status, &web, &report, &metrics };
	static const char *const names[] = { "the submission whose sync failed",
	    "its repeat, read before the sync failed,", "the inbox, read before the sync failed,",
	    "the status, read before the sync failed,",
	    "the web page's list, read before the sync failed,",
	    "the delivery report, read before the sync failed,",
	    "the metrics, read before the sync failed," };
	char body[1024];
	size_t i;

	gc_start_held(&a, body, sizeof(body));
	b.body = a.body;
	b.len = a.len;
	gc_start_reading(&b.th, gc_submitter, &b, &b.done, "the repeat");
	gc_start_reading(&inbox.th, gc_submitter, &inbox, &inbox.done, "the inbox");
	status.status_id = cur_id;
	gc_start_reading(&status.th, gc_submitter, &status, &status.done, "the status");
	gc_start_reading(&web.th, gc_submitter, &web, &web.done, "the web page's list");
	gc_start_reading(&report.th, gc_submitter, &report, &report.done, "the report");
	gc_start_reading(&metrics.th, gc_submitter, &metrics, &metrics.done, "the metrics");
	gc_release();
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		ck_assert_int_eq(pthread_join(all[i]->th, NULL), 0);
	ck_assert_int_eq(T.failed_kind, FILE_WAL);
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		ck_assert_msg(all[i]->rc == HEGN_ERR_STORE && all[i]->resp == NULL, "%s gives %d "
		    "(%s)", names[i], all[i]->rc, all[i]->why);
		json_decref(all[i]->resp);
	}
	relay_close(rl);
	rl = NULL;
}

/*
 * A store beside the writer's (the hegn command's beside hegnd's, here a
 * second store on the same file: its group commit knows nothing of the
 * first's) cannot wait for the writer's sync; with store_sync_snapshots
 * each of its transactions syncs the WAL once it has its snapshot.  gc-a's
 * WAL sync is held; a read of gc-a-0 in the other store gets as far as a
 * WAL sync of its own, held too, and no further.  Let go, the first of the
 * two syncs to run fails: the store whose sync it was refuses (the commit,
 * or the read), and the other one's sync, which ran after, covered gc-a.
 * Last, a sync that fails before a read refuses that read and every
 * transaction after it.
 */
static void
gc_beside(void)
{
	struct gc_thread t = { .name = "gc-a", .n = 1 };
	struct gc_reader rd = { 0 };
	struct store *other = NULL;
	struct store_tx *tx = NULL;
	struct timespec until;
	struct why why = { 0 };
	int rc;

	gc_open("gc-beside");
	ck_assert_msg(store_open(db_path, &other, &why) == 0, "store_open: %s", why.text);
	store_sync_snapshots(other);
	rd.s = other;
	pthread_mutex_lock(&T.lock);
	T.hold = 1;
	T.held = 0;
	T.fail_held = 1;
	pthread_mutex_unlock(&T.lock);
	ck_assert_int_eq(pthread_create(&t.th, NULL, gc_committer, &t), 0);
	pthread_mutex_lock(&T.lock);
	while (!T.held && !t.done)
		pthread_cond_wait(&T.cond, &T.lock);
	ck_assert_msg(!t.done, "gc-a returned without a sync of the WAL");
	pthread_mutex_unlock(&T.lock);
	ck_assert_int_eq(pthread_create(&rd.th, NULL, gc_read, &rd), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 120;
	pthread_mutex_lock(&T.lock);
	/* A watchdog, not a timing check: the read syncs before anything else. */
	while (T.held < 2 && !rd.done)
		ck_assert_msg(pthread_cond_timedwait(&T.cond, &T.lock, &until) == 0,
		    "the other store's read never synced the WAL");
	ck_assert_msg(!rd.read, "the other store read gc-a-0 (saw it: %d) before a sync of the "
	    "WAL", rd.saw);
	T.hold = 0;
	pthread_cond_broadcast(&T.cond);
	pthread_mutex_unlock(&T.lock);
	ck_assert_int_eq(pthread_join(t.th, NULL), 0);
	ck_assert_int_eq(pthread_join(rd.th, NULL), 0);
	ck_assert_int_eq(T.failed_kind, FILE_WAL);
	if (rd.rc == 0) {
		ck_assert_msg(rd.saw, "the other store's read missed gc-a-0");
		ck_assert_msg(t.rc == HEGN_ERR_STORE, "gc-a's commit gives %d, the read's sync did "
		    "not fail", t.rc);
		snprintf(run_reason, sizeof(run_reason), "gc-a's sync");
		expect_refused(st, "beside", 0);
	} else {
		ck_assert_msg(rd.rc == HEGN_ERR_STORE && strstr(rd.why, "before a read") != NULL &&
		    strstr(rd.why, "gc-beside.db") != NULL, "the read whose sync failed gives %d "
		    "(%s)", rd.rc, rd.why);
		ck_assert_msg(!rd.saw, "the read whose sync failed read on");
		ck_assert_msg(t.rc == 0 && t.durable, "gc-a's commit gives %d (durable %d), its "
		    "sync did not fail", t.rc, t.durable);
		snprintf(run_reason, sizeof(run_reason), "%s", rd.why);
		expect_refused(other, "beside", 0);
	}
	store_close(other);
	store_close(st);
	st = NULL;
	/* A sync that fails before a read. */
	ck_assert_msg(store_open(db_path, &st, &why) == 0, "store_open: %s", why.text);
	store_sync_snapshots(st);
	T.failed_kind = FILE_OTHER;
	arm(1, 0, IO_SYNC);
	rc = store_begin(st, 0, &tx, &why);
	disarm();
	if (rc == 0)
		store_rollback(tx);
	ck_assert_msg(rc == HEGN_ERR_STORE && strstr(why.text, "syncing the WAL") != NULL &&
	    strstr(why.text, "before a read") != NULL, "a read whose sync failed gives %d (%s)",
	    rc, why.text);
	gc_refused_after(FILE_WAL, &why, "beside");
}

START_TEST(t_group_commit)
{
	gc_sync_fails();
	gc_checkpoint_fails();
	gc_ack_waits();
	gc_many();
	gc_reads_failed_sync();
	gc_beside();
}
END_TEST

/* A crash report from a child that crashes in fn (it installs the handler first). */
static void
crash_report(void (*fn)(void), char *text, size_t size)
{
	int status, fd;
	ssize_t n;
	pid_t pid;

	snprintf(err_path, sizeof(err_path), "%s/%ld-blame.err", w.dir, (long)getpid());
	fflush(NULL);
	if ((pid = fork()) == 0) {
		if ((fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
			dup2(fd, STDERR_FILENO);
		signal(SIGSEGV, crash_handler);
		fn();
		exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0),
	    "the child did not crash");
	text[0] = '\0';
	if ((fd = open(err_path, O_RDONLY)) != -1) {
		n = read(fd, text, size - 1);
		text[n > 0 ? n : 0] = '\0';
		close(fd);
	}
}

static void
crash_in_openssl(void)
{
	/* memset through a NULL pointer, inside libcrypto. */
	OPENSSL_cleanse(NULL, 64);
}

static void __attribute__((noinline))
crash_here(void)
{
	volatile int *p = NULL;

	*p = 1;
}

/* The blame for a crash: the library where it happened, not the code calling it. */
START_TEST(t_crash_blame)
{
	char text[16384];
	const char *lib;

	crash_report(crash_in_openssl, text, sizeof(text));
	lib = crash_library(text);
	ck_assert_msg(lib != NULL && strcmp(lib, "OpenSSL") == 0, "blamed %s for: %s",
	    lib != NULL ? lib : "hegn", text);
	crash_report(crash_here, text, sizeof(text));
	ck_assert_msg(crash_library(text) == NULL, "blamed %s for: %s", crash_library(text), text);
	/* The allocators' frames are stepped over, as in a double free found in free(). */
	ck_assert_str_eq(crash_library("    #0 in raise (/lib/x86_64-linux-gnu/libc.so.6)\n"
	    "    #1 in fault_now (tests/unit/test_faults)\n"
	    "    #2 in CRYPTO_free (/lib/x86_64-linux-gnu/libcrypto.so.3)\n"), "OpenSSL");
	ck_assert_ptr_null(crash_library("    #0 0x7f in __interceptor_free asan_malloc_linux.cpp:52\n"
	    "    #1 0x55 in hdr_free tests/unit/test_faults.c:130\n"
	    "    #2 0x55 in envelope_signed_free gateway/envelope.c:720\n"
	    "    #3 0x7f in CMS_verify (/lib/x86_64-linux-gnu/libcrypto.so.3+0x1f00)\n"));
}
END_TEST

/* The shim itself: a fault it claims to inject reaches SQLite's caller. */
START_TEST(t_shim_works)
{
	sqlite3 *db = NULL;
	int rc;

	snprintf(db_path, sizeof(db_path), "%s/%ld-shim.db", w.dir, (long)getpid());
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	arm(1, 1, IO_WRITE);
	rc = sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL);
	disarm();
	ck_assert_int_ne(rc, SQLITE_OK);
	ck_assert_int_gt(F.hits, 0);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	arm(1, 0, -1);
	rc = sqlite3_open(db_path, &db);
	disarm();
	ck_assert_int_ne(rc, SQLITE_OK);
	sqlite3_close(db);
}
END_TEST

/* One case per operation, so CK_RUN_CASE=relay_submit runs one alone. */
static void
add_case(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);

	/* Hundreds of runs each, with RSA and fsync in them. */
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

static Suite *
faults_suite(void)
{
	Suite *s = suite_create("faults");

	add_case(s, "shim", t_shim_works);
	add_case(s, "crash_blame", t_crash_blame);
	add_case(s, "message_parse", t_message_parse);
	add_case(s, "message_minimise", t_message_minimise);
	add_case(s, "envelope_sign", t_envelope_sign);
	add_case(s, "envelope_verify", t_envelope_verify);
	add_case(s, "envelope_seal", t_envelope_seal);
	add_case(s, "envelope_open", t_envelope_open);
	add_case(s, "store_write", t_store_write);
	add_case(s, "store_open", t_store_open);
	add_case(s, "audit_append", t_audit_append);
	add_case(s, "relay_submit", t_relay_submit);
	add_case(s, "group_commit", t_group_commit);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if (faults_install() != 0) {
		fprintf(stderr, "test_faults: cannot install the faulty allocators and VFS\n");
		return EXIT_FAILURE;
	}
	if (sodium_init() < 0)
		return EXIT_FAILURE;
	if (getenv("CK_FORK") != NULL && strcmp(getenv("CK_FORK"), "no") == 0)
		fork_runs = 0;
	{
		/* Load what backtrace() needs now, not in a signal handler. */
		void *f[4];

		(void)backtrace(f, 4);
	}
	/* The errors are expected by the thousand. */
	log_init("test_faults", LOG_LVL_ERROR, 0);
	if (world_make() != 0) {
		world_free();
		return EXIT_FAILURE;
	}
	sr = srunner_create(faults_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	world_free();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
