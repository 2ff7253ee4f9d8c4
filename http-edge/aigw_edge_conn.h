/*  aigw_edge_conn: which client socket a CivetWeb handler thread serves.

    Debian's CivetWeb 1.15 has no call that gives a handler its connection's
    descriptor, and the edge needs it to notice a client that leaves while
    its request waits on the pipeline (poll for EPOLLRDHUP), so the work is
    cancelled at once rather than at a timeout. Each CivetWeb worker thread
    serves one connection at a time and reads it with recv(2): this module
    interposes recv and remembers, per thread, the descriptor last read. A
    handler that has read its request asks for it. */
#ifndef AIGW_EDGE_CONN_H_INCLUDED
#define AIGW_EDGE_CONN_H_INCLUDED

#include <stdbool.h>

//  The descriptor this thread last read with recv(2), or -1.
int aigw_edge_conn_fd (void);

void aigw_edge_conn_test (bool verbose);

#endif
