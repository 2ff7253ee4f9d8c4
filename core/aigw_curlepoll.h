/*  aigw_curlepoll: a curl multi handle driven from an epoll set, as the
    provider and the webhook guardrail drive theirs: curl's socket
    callback mirrored into the set, and epoll's events turned into the
    mask curl_multi_socket_action takes. */
#ifndef AIGW_CURLEPOLL_H_INCLUDED
#define AIGW_CURLEPOLL_H_INCLUDED

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

//  From a CURLMOPT_SOCKETFUNCTION callback with its FD, WHAT and SOCKETP:
//  mirror curl's interest in FD into the epoll set EPFD, each event
//  carrying DATA. A socket new to the set is assigned ASSIGN on MULTI,
//  so curl's next call for it is a change, not an add.
void aigw_curlepoll_socket (int epfd, CURLM *multi, curl_socket_t fd, int what, void *socketp,
                            epoll_data_t data, void *assign);

//  The CURL_CSELECT_* mask for epoll's EVENTS.
int aigw_curlepoll_mask (uint32_t events);

void aigw_curlepoll_test (bool verbose);

#endif
