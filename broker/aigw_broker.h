/*  aigw_broker: the AIGW-BP/1 broker (schemas/broker-protocol.md) as a CZMQ
    actor. Start with zactor_new (aigw_broker_actor, &args); it signals 0 on
    the pipe once bound, -1 if the bind failed. Commands on the pipe: "$TERM",
    and "ENDPOINT", answered with the bound endpoint as one string (the
    resolved port for "tcp://host:*"), or "" if the bind failed. */
#ifndef AIGW_BROKER_H_INCLUDED
#define AIGW_BROKER_H_INCLUDED

#include <czmq.h>

//  Frame constants of AIGW-BP/1, shared by the broker, worker and client.
#define AIGW_BP_CLIENT_HEADER "AGWC01"      //  header frame, client side
#define AIGW_BP_WORKER_HEADER "AGWW01"      //  header frame, worker side
#define AIGW_BP_HEADER_SIZE 6               //  bytes in either header
#define AIGW_BP_CLIENT_REQUEST 0x01
#define AIGW_BP_CLIENT_REPLY 0x02
#define AIGW_BP_CLIENT_ERROR 0x03
#define AIGW_BP_CLIENT_HEARTBEAT 0x04
#define AIGW_BP_CLIENT_STATUS 0x06
#define AIGW_BP_CLIENT_METRICS 0x07
#define AIGW_BP_CLIENT_REPORTS 0x08
#define AIGW_BP_WORKER_READY 0x01
#define AIGW_BP_WORKER_REQUEST 0x02
#define AIGW_BP_WORKER_REPLY 0x03
#define AIGW_BP_WORKER_HEARTBEAT 0x04
#define AIGW_BP_WORKER_DISCONNECT 0x05
#define AIGW_BP_WORKER_REPORT 0x06
#define AIGW_BP_CLIENT_DIRECTORY 0x09
#define AIGW_BP_WORKER_DIRECTORY 0x07
#define AIGW_BP_PEER_HEADER "AGWP01"        //  header frame, peer to peer (BP/2)
#define AIGW_BP_PEER_REQUEST 0x01
#define AIGW_BP_PEER_REPLY 0x02
#define AIGW_BP_PEER_ERROR 0x03
#define AIGW_BP_PEER_DONE 0x04
#define AIGW_BP_PEER_CANCEL 0x05
#define AIGW_BP_ENDPOINT_MAX 255            //  a peer endpoint's bytes
#define AIGW_BP_REPLAY_SAFE_FLAG 'R'        //  READY flags: may be replayed
#define AIGW_BP_REPORT_MAX (1 << 20)        //  bytes in one worker REPORT
#define AIGW_BP_REPORT_DEPTH_MAX 32         //  nesting of a REPORT's JSON

//  Defaults for settings left at 0 in aigw_broker_args_t (and in the worker
//  and client constructors), and the protocol's fixed limits.
#define AIGW_BROKER_HEARTBEAT_MS 250        //  heartbeat interval
#define AIGW_BROKER_LIVENESS 8              //  silent intervals before death
#define AIGW_BROKER_QUEUE_MAX 20000         //  queued requests per service
#define AIGW_BROKER_HWM 100000              //  ZeroMQ send/receive HWM
#define AIGW_BROKER_FRAME_MAX (64 << 20)    //  a peer sending a bigger frame is cut off
#define AIGW_BROKER_DEADLINE_MS 60000       //  deadline of a deadline-0 request
#define AIGW_BROKER_DEADLINE_MAX_MS 3600000 //  deadlines are capped to this
#define AIGW_BROKER_GRACE_MS 10000          //  in-flight kept past its deadline
#define AIGW_BROKER_SERVICES_MAX 256        //  services the broker creates
#define AIGW_BROKER_NAME_MAX 64             //  service name, [A-Za-z0-9._-]
#define AIGW_BROKER_WORKER_ID_MAX 255       //  worker id, printable ASCII
#define AIGW_BROKER_SHARD_KEY_MAX 255       //  shard key bytes
#define AIGW_BROKER_REQUEST_ID_MAX 128      //  request id bytes
#define AIGW_BROKER_CREDIT_MAX 50000        //  credit one worker may claim
#define AIGW_BROKER_RECONNECT_MIN_MS 1000   //  first reconnect backoff
#define AIGW_BROKER_RECONNECT_MAX_MS 32000  //  backoff stops doubling here
#define AIGW_BROKER_PIPE_TIMEOUT_MS 5000    //  wait for an ENDPOINT answer

//  Start-up settings; copied by the actor, so the caller may free them.
typedef struct {
    const char *endpoint;       //  ROUTER bind endpoint
    int heartbeat_ms;           //  heartbeat interval
    int liveness;               //  intervals of silence before a peer is dead
    int queue_max;              //  queued requests per service
} aigw_broker_args_t;

void aigw_broker_actor (zsock_t *pipe, void *args);

//  Ask a running broker actor for its bound endpoint. Returns a string the
//  caller frees, or NULL if the bind failed or the actor did not answer.
char *aigw_broker_endpoint (zactor_t *broker);

//  True if NAME is a valid service name: 1 to AIGW_BROKER_NAME_MAX of
//  [A-Za-z0-9._-].
bool aigw_broker_name_valid (const char *name, size_t size);

void aigw_broker_test (bool verbose);

#endif
