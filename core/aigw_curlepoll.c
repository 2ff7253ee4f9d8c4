/*  aigw_curlepoll: a curl multi handle driven from an epoll set. */
#include "aigw_curlepoll.h"

#include <assert.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

void
aigw_curlepoll_socket (int epfd, CURLM *multi, curl_socket_t fd, int what, void *socketp,
                       epoll_data_t data, void *assign)
{
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl (epfd, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign (multi, fd, NULL);
        return;
    }
    struct epoll_event ev = {0};
    ev.data = data;
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp)
        epoll_ctl (epfd, EPOLL_CTL_MOD, fd, &ev);
    else {
        epoll_ctl (epfd, EPOLL_CTL_ADD, fd, &ev);
        curl_multi_assign (multi, fd, assign);
    }
}

int
aigw_curlepoll_mask (uint32_t events)
{
    int mask = 0;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    return mask;
}

//  ---------------------------------------------------------------------
//  Selftest

void
aigw_curlepoll_test (bool verbose)
{
    if (verbose)
        printf (" * aigw_curlepoll: ");
    assert (aigw_curlepoll_mask (EPOLLIN) == CURL_CSELECT_IN);
    assert (aigw_curlepoll_mask (EPOLLIN | EPOLLOUT) == (CURL_CSELECT_IN | CURL_CSELECT_OUT));
    assert (aigw_curlepoll_mask (EPOLLHUP) == CURL_CSELECT_ERR);
    assert (aigw_curlepoll_mask (EPOLLERR | EPOLLIN) == (CURL_CSELECT_ERR | CURL_CSELECT_IN));

    //  A socket pair stands for a transfer's socket: added with IN, its
    //  events carry the caller's data; changed to OUT alone, a byte to read
    //  no longer wakes the set; removed, nothing does.
    int epfd = epoll_create1 (EPOLL_CLOEXEC);
    assert (epfd >= 0);
    CURLM *multi = curl_multi_init ();
    assert (multi);
    int pair[2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    assert (write (pair[1], "x", 1) == 1);
    epoll_data_t data = {.u64 = ((uint64_t) 7 << 32) | (uint32_t) pair[0]};
    aigw_curlepoll_socket (epfd, multi, pair[0], CURL_POLL_IN, NULL, data, &data);
    struct epoll_event ev;
    assert (epoll_wait (epfd, &ev, 1, 0) == 1);
    assert (ev.data.u64 == data.u64 && aigw_curlepoll_mask (ev.events) == CURL_CSELECT_IN);
    data.u64 = 42;
    aigw_curlepoll_socket (epfd, multi, pair[0], CURL_POLL_OUT, &data, data, &data);
    assert (epoll_wait (epfd, &ev, 1, 0) == 1);
    assert (ev.data.u64 == 42 && aigw_curlepoll_mask (ev.events) == CURL_CSELECT_OUT);
    aigw_curlepoll_socket (epfd, multi, pair[0], CURL_POLL_REMOVE, &data, data, NULL);
    assert (epoll_wait (epfd, &ev, 1, 0) == 0);
    close (pair[0]);
    close (pair[1]);
    curl_multi_cleanup (multi);
    close (epfd);
    if (verbose)
        printf ("OK\n");
}
