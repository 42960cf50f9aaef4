#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/trim.h"
#include "base/xalloc.h"

Test(err, wrap_prefixes_context_and_keeps_code)
{
  err_t *e = NULL;
  cr_assert_eq(err_set(&e, ERR_NOT_FOUND, 0, "blob %s", "sha256:ab"), -1);
  cr_assert_eq(err_wrap(&e, "pull %s", "busybox"), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  cr_assert_str_eq(e->msg, "pull busybox: blob sha256:ab");
  err_free(&e);
  cr_assert_null(e);
}

Test(err, sys_maps_errno_and_names_it)
{
  err_t *e = NULL;
  err_sys(&e, ENOSPC, "write %s", "x");
  cr_assert_eq(e->code, ERR_RESOURCE);
  cr_assert_eq(e->sys_errno, ENOSPC);
  cr_assert(strstr(e->msg, "No space left") != NULL);
  err_free(&e);
}

Test(buf, grows_and_stays_nul_terminated)
{
  cleanup_buf struct buf b = BUF_INIT;
  cr_assert_str_eq(buf_str(&b), "");
  for (int i = 0; i < 1000; i++)
    buf_printf(&b, "%d,", i);
  cr_assert_eq(strlen(b.data), b.len);
  cr_assert(strncmp(b.data, "0,1,2,", 6) == 0);
}

Test(buf, json_str_escapes_quotes_and_controls)
{
  cleanup_buf struct buf b = BUF_INIT;
  buf_json_str(&b, "a\"b\\c\n\x01");
  cr_assert_str_eq(buf_str(&b), "\"a\\\"b\\\\c\\n\\u0001\"");
}

Test(log, quotes_values_that_need_it)
{
  cleanup_buf struct buf b = BUF_INIT;
  log_append_kv(&b, "pod", "abc123");
  log_append_kv(&b, "msg", "two words");
  log_append_kv(&b, "empty", "");
  log_append_kv(&b, "eq", "a=b");
  cr_assert_str_eq(buf_str(&b), " pod=abc123 msg=\"two words\" empty=\"\" eq=\"a=b\"");
}

Test(log, one_line_per_event_with_time_level_msg)
{
  int p[2];
  cr_assert_eq(pipe(p), 0);
  log_set_fd(p[1]);
  log_set_level(LOG_INFO);
  log_debug("hidden", NULL);
  log_info("pod started", "pod", "p1", "skip", NULL, "ctr", "c 1", NULL);
  log_set_fd(2);
  close(p[1]);
  char line[512] = {0};
  ssize_t n = read(p[0], line, sizeof(line) - 1);
  close(p[0]);
  cr_assert_gt(n, 0);
  cr_assert(strncmp(line, "time=", 5) == 0, "%s", line);
  cr_assert(strstr(line, " level=info msg=\"pod started\" pod=p1 ctr=\"c 1\"\n") != NULL, "%s", line);
  cr_assert_null(strstr(line, "hidden"));
  cr_assert_eq(strchr(line, '\n'), line + n - 1, "exactly one line");
}

Test(log, level_names_parse)
{
  enum log_level l;
  cr_assert_eq(log_level_parse("WARNING", &l), 0);
  cr_assert_eq(l, LOG_WARN);
  cr_assert_eq(log_level_parse("debug", &l), 0);
  cr_assert_eq(l, LOG_DEBUG);
  cr_assert_eq(log_level_parse("loud", &l), -1);
}

static char *tmpdir(void)
{
  char *d = xstrdup("/tmp/crisp-unit-XXXXXX");
  cr_assert_not_null(mkdtemp(d));
  return d;
}

Test(file, atomic_write_replaces_content_and_leaves_no_temp)
{
  cleanup_free char *d = tmpdir();
  cleanup_free char *p = path_join(d, "rec.json");
  err_t *e = NULL;
  cr_assert_eq(file_write_atomic(p, "one", 3, 0600, &e), 0);
  cr_assert_eq(file_write_atomic_nosync(p, "first", 5, 0600, &e), 0);
  cr_assert_eq(file_write_atomic(p, "second", 6, 0640, &e), 0);
  cleanup_free char *got = NULL;
  size_t len;
  cr_assert_eq(file_read_all(p, 100, &got, &len, &e), 0);
  cr_assert_str_eq(got, "second");
  struct stat st;
  cr_assert_eq(stat(p, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0640);
  cleanup_closedir DIR *dir = opendir(d);
  int entries = 0;
  for (struct dirent *de; (de = readdir(dir));)
    entries += de->d_name[0] != '.';
  cr_assert_eq(entries, 1, "only the record, no temp file");
  cr_assert_eq(rm_rf(d, &e), 0);
}

Test(file, read_all_refuses_more_than_max)
{
  cleanup_free char *d = tmpdir();
  cleanup_free char *p = path_join(d, "big");
  err_t *e = NULL;
  char data[4096];
  memset(data, 'x', sizeof(data));
  cr_assert_eq(file_write_atomic(p, data, sizeof(data), 0600, &e), 0);
  char *got = NULL;
  cr_assert_eq(file_read_all(p, 100, &got, NULL, &e), -1);
  cr_assert_eq(e->code, ERR_RESOURCE);
  err_free(&e);
  cr_assert_eq(file_read_all("/nonexistent/x", 100, &got, NULL, &e), -1);
  cr_assert_eq(e->code, ERR_NOT_FOUND);
  err_free(&e);
  rm_rf(d, &e);
}

Test(file, reading_an_empty_file_gives_an_empty_string)
{
  cleanup_free char *d = tmpdir();
  cleanup_free char *p = path_join(d, "empty");
  err_t *e = NULL;
  cr_assert_eq(file_write_atomic(p, "", 0, 0600, &e), 0);
  cleanup_free char *got = NULL;
  size_t len = 99;
  cr_assert_eq(file_read_all(p, 100, &got, &len, &e), 0);
  cr_assert_eq(len, 0);
  cr_assert_str_eq(got, "");
  rm_rf(d, &e);
}

Test(file, mkdir_p_and_rm_rf_round_trip)
{
  cleanup_free char *d = tmpdir();
  cleanup_free char *deep = path_join(d, "a/b/c");
  err_t *e = NULL;
  cr_assert_eq(mkdir_p(deep, 0755, &e), 0);
  cr_assert_eq(mkdir_p(deep, 0755, &e), 0, "existing is fine");
  cleanup_free char *f = path_join(deep, "f");
  cr_assert_eq(file_write_atomic(f, "x", 1, 0600, &e), 0);
  cleanup_free char *ln = path_join(d, "a/link");
  cr_assert_eq(symlink("/etc", ln), 0);
  cr_assert_eq(rm_rf(d, &e), 0);
  cr_assert_eq(access(d, F_OK), -1);
  cr_assert_eq(access("/etc/hostname", F_OK) == 0 || errno == ENOENT, 1, "symlink target untouched");
  cr_assert_eq(rm_rf(d, &e), 0, "missing path is success");
}

Test(file, mkdir_p_refuses_a_file_in_the_way)
{
  cleanup_free char *d = tmpdir();
  cleanup_free char *f = path_join(d, "f");
  err_t *e = NULL;
  cr_assert_eq(file_write_atomic(f, "x", 1, 0600, &e), 0);
  cr_assert_eq(mkdir_p(f, 0755, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  err_free(&e);
  rm_rf(d, &e);
}

Test(json, reads_nested_values)
{
  cleanup_json json_t *j = NULL;
  err_t *e = NULL;
  cr_assert_eq(json_parse("{\"a\":{\"b\":[1,\"x\",true]},\"n\":-3}", &j, &e), 0);
  const json_t *arr = json_get(json_get(j, "a"), "b");
  cr_assert_eq(json_type(arr), JSON_ARRAY);
  cr_assert_eq(json_len(arr), 3);
  long long n;
  cr_assert_eq(json_int(json_at(arr, 0), &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(json_str(json_at(arr, 1)), "x");
  bool b;
  cr_assert_eq(json_bool(json_at(arr, 2), &b), 0);
  cr_assert(b);
  cr_assert_null(json_get(json_get(j, "missing"), "deeper"), "absent chains safely");
  cr_assert_eq(json_int(json_get(j, "n"), &n), 0);
  cr_assert_eq(n, -3);
}

Test(json, syntax_error_is_invalid_with_a_message)
{
  json_t *j = NULL;
  err_t *e = NULL;
  cr_assert_eq(json_parse("{\"a\": }", &j, &e), -1);
  cr_assert_eq(e->code, ERR_INVALID);
  cr_assert(strstr(e->msg, "invalid JSON") != NULL);
  cr_assert_null(strchr(e->msg, '\n'), "one line");
  err_free(&e);
}

/* the trim drops the executable's read-only pages that still map the file, RELRO's too;
 * a RELRO page the loader relocated (this PIE's function table) must stay as written */
static int trim_one(void)
{
  return 1;
}
static int trim_two(void)
{
  return 2;
}
static int (*const trim_table[])(void) = {trim_one, trim_two};
static const char trim_text[] = "read-only data faults back in";

Test(trim, keeps_relocated_read_only_data_and_code_runs_on)
{
  trim_startup_pages();
  int (*const volatile *t)(void) = trim_table;
  cr_assert_eq(t[0](), 1);
  cr_assert_eq(t[1](), 2);
  const char *volatile s = trim_text;
  cr_assert_str_eq(s, "read-only data faults back in");
}
