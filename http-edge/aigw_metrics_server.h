/*  aigw_metrics_server: a tiny HTTP listener that serves GET /metrics with
    the process's figures (aigw_stats), for processes without an edge:
    `aigw actor usage --metrics-port N` in a split deployment. */
#ifndef AIGW_METRICS_SERVER_H_INCLUDED
#define AIGW_METRICS_SERVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _aigw_metrics_server_t aigw_metrics_server_t;

//  Listen on HOST:PORT (0: any free port). NULL, with the reason in ERR,
//  when it cannot.
aigw_metrics_server_t *aigw_metrics_server_new (const char *host, int port, char *err,
                                                size_t err_size);

//  Stop listening; nulls *SELF_P.
void aigw_metrics_server_destroy (aigw_metrics_server_t **self_p);

//  The port bound.
int aigw_metrics_server_port (aigw_metrics_server_t *self);

void aigw_metrics_server_test (bool verbose);

#endif
