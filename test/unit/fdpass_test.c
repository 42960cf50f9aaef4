/* fdpass_test.c - one descriptor over a unix socket (base/fdpass.h). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fdpass.h"

static void pair(int sv[2])
{
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

Test(fdpass, the_receiver_gets_the_same_open_file_close_on_exec)
{
  int sv[2], p[2];
  pair(sv);
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  err_t *e = NULL;
  cr_assert_eq(fd_send(sv[1], p[1], &e), 0, "%s", e ? e->msg : "");
  close(p[1]);   /* the copy in flight keeps the pipe's write end open */
  int got = -1;
  cr_assert_eq(fd_recv(sv[0], 1000, &got, &e), 0, "%s", e ? e->msg : "");
  cr_assert(fcntl(got, F_GETFD) & FD_CLOEXEC);
  cr_assert_eq(write(got, "x", 1), 1);
  char c = 0;
  cr_assert_eq(read(p[0], &c, 1), 1);
  cr_assert_eq(c, 'x');
  close(got);
  close(p[0]);
  close(sv[0]);
  close(sv[1]);
}

Test(fdpass, nothing_in_time_is_an_error_saying_so)
{
  int sv[2];
  pair(sv);
  int got = -1;
  err_t *e = NULL;
  cr_assert_eq(fd_recv(sv[0], 0, &got, &e), -1);
  cr_assert_eq(e->code, ERR_INTERNAL);
  cr_assert(strstr(e->msg, "no descriptor arrived"), "%s", e->msg);
  err_free(&e);
  cr_assert_eq(got, -1);
  close(sv[0]);
  close(sv[1]);
}

Test(fdpass, a_peer_that_closes_or_sends_no_descriptor_is_an_error)
{
  int sv[2];
  pair(sv);
  cr_assert_eq(write(sv[1], "f", 1), 1);   /* a byte, no descriptor */
  int got = -1;
  err_t *e = NULL;
  cr_assert_eq(fd_recv(sv[0], 1000, &got, &e), -1);
  cr_assert(strstr(e->msg, "without exactly one descriptor"), "%s", e->msg);
  err_free(&e);
  close(sv[1]);
  cr_assert_eq(fd_recv(sv[0], 1000, &got, &e), -1);
  cr_assert(strstr(e->msg, "closed without sending"), "%s", e->msg);
  err_free(&e);
  cr_assert_eq(fd_send(sv[0], 0, &e), -1);   /* and no SIGPIPE */
  err_free(&e);
  close(sv[0]);
}
