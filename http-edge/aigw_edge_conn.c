/*  aigw_edge_conn: the interposed recv(2). */
#include "aigw_edge_conn.h"

#include <assert.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

//  This thread's last descriptor read.
static __thread int s_last_fd = -1;

typedef ssize_t (s_recv_fn) (int fd, void *buf, size_t len, int flags);

//  The process's recv: note FD for this thread, then the next definition
//  (libc's, or a sanitizer's) does the work. Looked up once; the lookup is
//  idempotent, so two threads racing to it store the same pointer.
ssize_t
recv (int fd, void *buf, size_t len, int flags)
{
    static s_recv_fn *next;
    if (!next)
        next = (s_recv_fn *) dlsym (RTLD_NEXT, "recv");
    s_last_fd = fd;
    return next (fd, buf, len, flags);
}

int
aigw_edge_conn_fd (void)
{
    return s_last_fd;
}

void
aigw_edge_conn_test (bool verbose)
{
    int pair[2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    assert (write (pair[0], "hi", 2) == 2);
    char buf[4];
    assert (recv (pair[1], buf, sizeof buf, 0) == 2);
    assert (aigw_edge_conn_fd () == pair[1]);
    close (pair[0]);
    close (pair[1]);
    if (verbose)
        printf ("edge_conn: ok\n");
}
