/*  aigw_provider: the provider stage. Sends each request to its upstream
    with libcurl's multi interface, driven by this actor's own event loop
    (curl's sockets sit in an epoll set whose fd is polled with the broker
    socket), so one actor holds thousands of transfers with no thread per
    request and reuses connections. Streams are relayed event by event as
    they arrive. Upstream errors answer 502 (client errors pass through),
    a missed deadline 504. Not replay-safe: a request may have cost money
    upstream, so the broker answers 503 if this worker dies holding it. */
#ifndef AIGW_PROVIDER_H_INCLUDED
#define AIGW_PROVIDER_H_INCLUDED

#include "aigw_stage.h"

//  The stage, for the host (aigw_stage.h).
extern const aigw_stage_def_t aigw_provider_stage;

void aigw_provider_test (bool verbose);

#endif
