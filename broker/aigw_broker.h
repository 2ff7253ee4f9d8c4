/*  aigw_broker: the AIGW-BP/1 broker (schemas/broker-protocol.md) as a CZMQ
    actor. Start with zactor_new (aigw_broker_actor, &args); it signals 0 on
    the pipe once bound, -1 if the bind failed. Commands on the pipe: "$TERM",
    and "ENDPOINT", answered with the bound endpoint as one string (the
    resolved port for "tcp://host:*"), or "" if the bind failed. */
#ifndef AIGW_BROKER_H_INCLUDED
#define AIGW_BROKER_H_INCLUDED

#include <czmq.h>

//  Defaults of the broker's own settings; the protocol's constants, limits
//  and the other defaults are in aigw_bp.h.
#define AIGW_BROKER_QUEUE_MAX       20000  //  queued requests per service
#define AIGW_BROKER_PIPE_TIMEOUT_MS 5000   //  wait for an ENDPOINT answer

//  Start-up settings; copied by the actor, so the caller may free them.
typedef struct {
    const char *endpoint;  //  ROUTER bind endpoint
    int heartbeat_ms;      //  heartbeat interval (0: the default)
    int liveness;          //  silent intervals before a peer is dead (0: the default)
    int queue_max;         //  queued requests per service (0: the default)
} aigw_broker_args_t;

void aigw_broker_actor (zsock_t *pipe, void *args);

//  Ask a running broker actor for its bound endpoint. Returns a string the
//  caller frees, or NULL if the bind failed or the actor did not answer.
char *aigw_broker_endpoint (zactor_t *broker);

void aigw_broker_test (bool verbose);

#endif
