/*
 * folder: atomic drops a watcher never sees half-written, and receipts
 * picked up from the sibling folder.
 */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adapter.h"
#include "envelope.h"
#include "err.h"
#include "pki.h"
#include "testadapter.h"
#include "testlib.h"
#include "util.h"

static struct tworld w;
static struct buf sealed;
static char drop[128], receipts[128];

static void
setup(void)
{
	tw_setup(&w, "folder");
	tw_seal(&w, ENVELOPE_AES256_GCM, "{\"kind\":\"referral\"}", &sealed);
	snprintf(drop, sizeof(drop), "%s/hovmand/out", w.dir);
	snprintf(receipts, sizeof(receipts), "%s/hovmand/receipts", w.dir);
	ck_assert_int_eq(util_mkdirs(drop, 0700, NULL), 0);
	ck_assert_int_eq(util_mkdirs(receipts, 0700, NULL), 0);
}

static void
teardown(void)
{
	buf_free(&sealed, 0);
	tw_teardown(&w);
}

static struct adapter_msg
msg(void)
{
	struct adapter_msg m;

	memset(&m, 0, sizeof(m));
	m.id = "msg-1";
	m.kind = "referral";
	m.sender = "ringsted-visitation";
	m.recipient = "hovmand-care";
	m.sealed = sealed.data;
	m.sealed_len = sealed.len;
	return m;
}

static struct adapter_target
target(void)
{
	struct adapter_target t;

	memset(&t, 0, sizeof(t));
	t.folder = drop;
	return t;
}

/* Names in dir, space-separated and sorted, for exact comparisons. */
static const char *
listing(const char *dir)
{
	static char out[1024];
	struct dirent **ents = NULL;
	int i, n;

	out[0] = '\0';
	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0)
		return "(unreadable)";
	for (i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") != 0 && strcmp(ents[i]->d_name, "..") != 0) {
			if (out[0] != '\0')
				strncat(out, " ", sizeof(out) - strlen(out) - 1);
			strncat(out, ents[i]->d_name, sizeof(out) - strlen(out) - 1);
		}
		free(ents[i]);
	}
	free(ents);
	return out;
}

START_TEST(test_drop)
{
	struct adapter_msg m = msg();
	struct adapter_target t = target();
	struct adapter_result res;
	struct buf got = { NULL, 0 };
	struct why why;
	struct stat st;
	char path[256];

	ck_assert_msg(adapter_folder.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
	ck_assert_int_eq(res.delivered, 1);
	ck_assert_str_eq(res.detail, "written as msg-1.p7m");
	/* Exactly the one file: no temporary left behind. */
	ck_assert_str_eq(listing(drop), "msg-1.p7m");
	snprintf(path, sizeof(path), "%s/msg-1.p7m", drop);
	ck_assert_int_eq(util_read_file(path, 1u << 24, &got, &why), 0);
	ck_assert_uint_eq(got.len, sealed.len);
	ck_assert_mem_eq(got.data, sealed.data, sealed.len);
	buf_free(&got, 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	/* A resend replaces the file whole. */
	ck_assert_int_eq(adapter_folder.deliver(&m, &t, &res, &why), 0);
	ck_assert_str_eq(listing(drop), "msg-1.p7m");
	unlink(path);
	adapter_result_free(&res);
}
END_TEST

/*
 * A watcher polls the folder while large messages are dropped again and
 * again; every *.p7m it manages to open must be complete.
 */
START_TEST(test_never_partial)
{
	struct buf big = { NULL, 0 };
	struct adapter_msg m = msg();
	struct adapter_target t = target();
	struct adapter_result res;
	struct why why;
	char path[256], stop[256], *content;
	size_t clen = 4u * 1024 * 1024;
	pid_t pid;
	int i, st;

	content = malloc(clen + 1);
	memset(content, 'x', clen);
	memcpy(content, "{\"a\":\"", 6);
	memcpy(content + clen - 2, "\"}", 2);
	content[clen] = '\0';
	tw_seal(&w, ENVELOPE_AES256_GCM, content, &big);
	free(content);
	m.sealed = big.data;
	m.sealed_len = big.len;
	m.id = "big-1";
	snprintf(path, sizeof(path), "%s/big-1.p7m", drop);
	snprintf(stop, sizeof(stop), "%s/stop", w.dir);
	if ((pid = fork()) == 0) {
		struct stat s;
		struct buf b = { NULL, 0 };
		int seen = 0, bad = 0;

		while (access(stop, F_OK) != 0) {
			if (util_read_file(path, 1u << 26, &b, NULL) == 0) {
				seen++;
				if (b.len != big.len || memcmp(b.data, big.data, big.len) != 0)
					bad++;
				buf_free(&b, 0);
			} else if (stat(path, &s) == 0 && (size_t)s.st_size != big.len)
				bad++;
		}
		/* 2: the watcher saw a partial file; 3: it never saw one at all. */
		_exit(bad ? 2 : seen ? 0 : 3);
	}
	ck_assert_int_gt(pid, 0);
	for (i = 0; i < 20; i++) {
		ck_assert_msg(adapter_folder.deliver(&m, &t, &res, &why) == 0, "%s", why.text);
		adapter_result_free(&res);
	}
	ck_assert_int_eq(util_write_file(stop, "", 0, 0600, NULL), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ck_assert_str_eq(listing(drop), "big-1.p7m");
	unlink(path);
	unlink(stop);
	buf_free(&big, 0);
}
END_TEST

START_TEST(test_failures_leave_nothing)
{
	struct adapter_msg m = msg();
	struct adapter_target t = target();
	struct adapter_result res;
	struct why why;
	char path[256];
	static const uint8_t clear[] = "{\"kind\":\"referral\"}";

	/* The final name is taken by a directory: the rename fails, the temporary goes. */
	snprintf(path, sizeof(path), "%s/msg-1.p7m/x", drop);
	ck_assert_int_eq(util_mkdirs(path, 0700, NULL), 0);
	ck_assert_int_eq(adapter_folder.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	ck_assert_int_eq(res.delivered, 0);
	ck_assert_str_eq(listing(drop), "msg-1.p7m");
	tw_run("rm -rf '%s/msg-1.p7m'", drop);
	t.folder = "/nonexistent/hegn/drop";
	ck_assert_int_eq(adapter_folder.deliver(&m, &t, &res, &why), HEGN_ERR_IO);
	t.folder = NULL;
	ck_assert_int_eq(adapter_folder.deliver(&m, &t, &res, &why), HEGN_ERR_CONFIG);
	/* Clear content and unsafe ids are refused before anything is written. */
	t = target();
	m.sealed = clear;
	m.sealed_len = sizeof(clear) - 1;
	ck_assert_int_eq(adapter_folder.deliver(&m, &t, &res, &why), HEGN_ERR_INVALID);
	m = msg();
	m.id = "../escape";
	ck_assert_int_eq(adapter_folder.deliver(&m, &t, &res, &why), HEGN_ERR_INVALID);
	ck_assert_str_eq(listing(drop), "");
	adapter_result_free(&res);
}
END_TEST

struct taken {
	int calls, ok, io;
	struct pki *pki;
	char ids[8][65];
};

/* Take valid receipts (signature checks out), refuse others, or play "busy". */
static int
take(const uint8_t *der, size_t len, void *arg, struct why *why)
{
	struct taken *tk = arg;
	struct envelope_signed *sd = NULL;
	const uint8_t *c;
	size_t clen;
	int r;

	tk->calls++;
	if (tk->io)
		return why_set(why, HEGN_ERR_IO, "store busy");
	if ((r = envelope_verify(tk->pki, der, len, 0, &sd, why)) != 0)
		return r;
	c = envelope_signed_content(sd, &clen);
	if (tk->ok < 8)
		snprintf(tk->ids[tk->ok], sizeof(tk->ids[0]), "%.*s", (int)clen, (const char *)c);
	tk->ok++;
	envelope_signed_free(sd);
	return 0;
}

static void
put_receipt(const char *dir, const char *name, const char *content)
{
	struct buf der = { NULL, 0 };
	char path[256];

	ck_assert_int_eq(envelope_sign(w.rcpt_key, w.rcpt, NULL, ENVELOPE_PKCS1,
	    (const uint8_t *)content, strlen(content), NULL, &der, NULL), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(util_write_file(path, der.data, der.len, 0600, NULL), 0);
	buf_free(&der, 0);
}

START_TEST(test_receipts)
{
	struct adapter_target t = target();
	struct taken tk;
	struct why why;
	char path[256], link_target[256];

	memset(&tk, 0, sizeof(tk));
	ck_assert_int_eq(pki_load(tw_path(&w, "ca.pem"), NULL, NULL, 0, &tk.pki, &why), 0);
	put_receipt(receipts, "r1.p7m", "receipt-one");
	put_receipt(receipts, ".r2.p7m.tmp", "still being written");
	put_receipt(receipts, "notes.txt", "not a receipt");
	snprintf(path, sizeof(path), "%s/r3.p7m", receipts);
	ck_assert_int_eq(util_write_file(path, "garbage", 7, 0600, NULL), 0);
	snprintf(link_target, sizeof(link_target), "%s/r1.p7m", receipts);
	snprintf(path, sizeof(path), "%s/r4.p7m", receipts);
	ck_assert_int_eq(symlink(link_target, path), 0);
	snprintf(path, sizeof(path), "%s/r5.p7m", receipts);
	ck_assert_int_eq(mkdir(path, 0700), 0);

	ck_assert_msg(adapter_folder.receipts(&t, take, &tk, &why) == 0, "%s", why.text);
	/* r1 taken and gone; garbage, the link and the directory set aside; the rest untouched. */
	ck_assert_int_eq(tk.ok, 1);
	ck_assert_str_eq(tk.ids[0], "receipt-one");
	ck_assert_int_eq(tk.calls, 2);
	ck_assert_str_eq(listing(receipts),
	    ".r2.p7m.tmp notes.txt r3.p7m.refused r4.p7m.refused r5.p7m.refused");
	/* A second poll finds nothing new. */
	ck_assert_int_eq(adapter_folder.receipts(&t, take, &tk, &why), 0);
	ck_assert_int_eq(tk.calls, 2);

	/* A passing failure leaves the receipt for the next poll. */
	put_receipt(receipts, "r6.p7m", "receipt-six");
	tk.io = 1;
	ck_assert_int_eq(adapter_folder.receipts(&t, take, &tk, &why), 0);
	ck_assert_int_eq(tk.calls, 3);
	ck_assert_ptr_nonnull(strstr(listing(receipts), "r6.p7m"));
	tk.io = 0;
	ck_assert_int_eq(adapter_folder.receipts(&t, take, &tk, &why), 0);
	ck_assert_int_eq(tk.ok, 2);
	ck_assert_str_eq(tk.ids[1], "receipt-six");
	ck_assert_ptr_null(strstr(listing(receipts), "r6.p7m "));

	/* A receipt folder named in the target. */
	snprintf(path, sizeof(path), "%s/elsewhere", w.dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	put_receipt(path, "r7.p7m", "receipt-seven");
	t.receipt_folder = path;
	ck_assert_int_eq(adapter_folder.receipts(&t, take, &tk, &why), 0);
	ck_assert_int_eq(tk.ok, 3);
	ck_assert_str_eq(tk.ids[2], "receipt-seven");
	ck_assert_str_eq(listing(path), "");
	t.receipt_folder = "/nonexistent/hegn/receipts";
	ck_assert_int_eq(adapter_folder.receipts(&t, take, &tk, &why), HEGN_ERR_IO);
	pki_free(tk.pki);
}
END_TEST

static Suite *
folder_suite(void)
{
	Suite *s = suite_create("folder");
	TCase *tc = tcase_create("folder");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_drop);
	tcase_add_test(tc, test_never_partial);
	tcase_add_test(tc, test_failures_leave_nothing);
	tcase_add_test(tc, test_receipts);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(folder_suite)
