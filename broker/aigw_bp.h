/*  aigw_bp: the broker protocol, AIGW-BP/2 (schemas/broker-protocol.md),
    as one class: its wire constants, the frame helpers that the broker,
    the worker, the client and the peer share, and rendezvous hashing. It
    depends on no other broker class, so each of them includes it and
    nothing here includes them back. */
#ifndef AIGW_BP_H_INCLUDED
#define AIGW_BP_H_INCLUDED

#include <czmq.h>

//  Header frames: the protocol version per side (sections 3, 4 and 8).
#define AIGW_BP_CLIENT_HEADER "AGWC01"  //  client to broker
#define AIGW_BP_WORKER_HEADER "AGWW01"  //  worker to broker
#define AIGW_BP_PEER_HEADER   "AGWP01"  //  peer to peer (BP/2)
#define AIGW_BP_HEADER_SIZE   6         //  bytes in any header

//  Client commands (section 3).
#define AIGW_BP_CLIENT_REQUEST   0x01
#define AIGW_BP_CLIENT_REPLY     0x02
#define AIGW_BP_CLIENT_ERROR     0x03
#define AIGW_BP_CLIENT_HEARTBEAT 0x04
#define AIGW_BP_CLIENT_STATUS    0x06
#define AIGW_BP_CLIENT_METRICS   0x07
#define AIGW_BP_CLIENT_REPORTS   0x08
#define AIGW_BP_CLIENT_DIRECTORY 0x09

//  Worker commands (sections 4, 4a and 7).
#define AIGW_BP_WORKER_READY      0x01
#define AIGW_BP_WORKER_REQUEST    0x02
#define AIGW_BP_WORKER_REPLY      0x03
#define AIGW_BP_WORKER_HEARTBEAT  0x04
#define AIGW_BP_WORKER_DISCONNECT 0x05
#define AIGW_BP_WORKER_REPORT     0x06
#define AIGW_BP_WORKER_DIRECTORY  0x07

//  Peer commands (section 8).
#define AIGW_BP_PEER_REQUEST 0x01
#define AIGW_BP_PEER_REPLY   0x02
#define AIGW_BP_PEER_ERROR   0x03
#define AIGW_BP_PEER_DONE    0x04
#define AIGW_BP_PEER_CANCEL  0x05
#define AIGW_BP_PEER_ONEWAY  0x06

//  Flags: the REPLY flags byte (sections 3, 4 and 8), READY's flags string.
#define AIGW_BP_FLAG_LAST        0x01  //  final reply of the request
#define AIGW_BP_FLAG_FORWARD     0x02  //  worker REPLY: next stage
#define AIGW_BP_REPLAY_SAFE_FLAG 'R'   //  READY flags: may be replayed

//  Limits and defaults.
#define AIGW_BP_HEARTBEAT_MS     250         //  heartbeat interval
#define AIGW_BP_LIVENESS         8           //  silent intervals before death
#define AIGW_BP_HWM              100000      //  ZeroMQ send/receive HWM
#define AIGW_BP_FRAME_MAX        (64 << 20)  //  a peer sending a bigger frame is cut off
#define AIGW_BP_IDENTITY_MAX     255         //  ZeroMQ routing identities are 1-255 bytes
#define AIGW_BP_NAME_MAX         64          //  service name, [A-Za-z0-9._-]
#define AIGW_BP_SERVICES_MAX     256         //  services the broker creates
#define AIGW_BP_WORKER_ID_MAX    255         //  worker id, printable ASCII
#define AIGW_BP_SHARD_KEY_MAX    255         //  shard key bytes
#define AIGW_BP_REQUEST_ID_MAX   128         //  request id bytes
#define AIGW_BP_CREDIT_MAX       50000       //  credit one worker may claim
#define AIGW_BP_DEADLINE_MS      60000       //  deadline of a deadline-0 request
#define AIGW_BP_DEADLINE_MAX_MS  3600000     //  deadlines are capped to this
#define AIGW_BP_GRACE_MS         10000       //  in-flight kept past its deadline
#define AIGW_BP_RECONNECT_MIN_MS 1000        //  first reconnect backoff
#define AIGW_BP_RECONNECT_MAX_MS 32000       //  backoff stops doubling here
#define AIGW_BP_REPORT_MAX       (1 << 20)   //  bytes in one worker REPORT
#define AIGW_BP_REPORT_DEPTH_MAX 32          //  nesting of a REPORT's JSON
#define AIGW_BP_ENDPOINT_MAX     255         //  a peer endpoint's bytes
//  A restarted broker's directory is merged with the old one this long: two
//  liveness periods at the default.
#define AIGW_BP_DIRECTORY_GRACE_MS 4000
#define AIGW_BP_DONE_BATCH         256  //  requests in one DONE

//  True if NAME (SIZE bytes) is a valid service name: 1 to
//  AIGW_BP_NAME_MAX of [A-Za-z0-9._-].
bool aigw_bp_name_valid (const char *name, size_t size);

//  True if the SIZE bytes at DATA are a valid worker id: 1 to
//  AIGW_BP_WORKER_ID_MAX printable ASCII characters without spaces.
bool aigw_bp_worker_id_valid (const void *data, size_t size);

//  Parse the SIZE bytes at DATA as a decimal number of 1 to DIGITS_MAX
//  digits (at most 18). Returns 0 with *VALUE set, or -1.
int aigw_bp_decimal (const void *data, size_t size, size_t digits_max, int64_t *value);

//  Send HEADER and the command CMD on HANDLE without blocking; MORE says
//  whether frames follow. Returns 0, or -1 if the socket would not take it
//  (after an accepted first frame the rest of a message cannot fail).
int aigw_bp_send_head (void *handle, const char *header, byte cmd, bool more);

//  Send the string TEXT (NULL: an empty frame) as one frame, more to follow.
void aigw_bp_send_str (void *handle, const char *text);

//  The command of a message whose first frames are HEADER_FRAME and
//  COMMAND_FRAME, if the header is HEADER and the command one byte; else -1.
int aigw_bp_command (zmq_msg_t *header_frame, zmq_msg_t *command_frame, const char *header);

//  Frames every peer message carries before its last (payload) frame:
//  header, command and two more (client: request id, flags or status;
//  worker: client identity, request id).
#define AIGW_BP_SMALL_FRAMES 4

//  Receive one message without blocking: the first AIGW_BP_SMALL_FRAMES
//  frames into FRAMES (the caller closes the ones counted), the next into
//  *LAST (the caller owns it), and discard any beyond, setting *OVERSIZED.
//  Returns the frame count, 0 if none waits, -1 on error.
int aigw_bp_recv (void *handle, zmq_msg_t *frames, zframe_t **last, bool *oversized);

//  One message as the worker and the client read it.
typedef struct {
    zmq_msg_t frames[AIGW_BP_SMALL_FRAMES];  //  its first frames
    int count;                               //  frames in the message
    int cmd;                                 //  its command; -1 if the header is not the
                                             //  expected one or a frame is missing or extra
    zframe_t *last;                          //  the frame after the small ones, or NULL;
                                             //  the reader may take it (and null it)
} aigw_bp_message_t;

//  Receive one message on HANDLE without blocking into SELF, checking its
//  header against HEADER. Returns 1, 0 if none waits, -1 on error; after 1,
//  call aigw_bp_message_close.
int aigw_bp_message_recv (aigw_bp_message_t *self, void *handle, const char *header);
void aigw_bp_message_close (aigw_bp_message_t *self);

//  Rendezvous hashing (AIGW-BP section 5): the score of WORKER_ID for
//  SHARD_KEY is mix64 (fnv1a64 (shard key) XOR mix64 (fnv1a64 (worker id)));
//  the owner is the live worker with the highest score, ties to the greater
//  worker id. KEY_HASH is aigw_bp_fnv1a of the shard key, ID_HASH
//  aigw_bp_id_hash of the worker id.
uint64_t aigw_bp_fnv1a (const void *data, size_t size);
uint64_t aigw_bp_mix64 (uint64_t hash);
uint64_t aigw_bp_id_hash (const char *worker_id);
uint64_t aigw_bp_shard_score (uint64_t key_hash, uint64_t id_hash);

//  Keep a DIRECTORY answer (section 7): copies of the VERSION and TEXT
//  frames replace *VERSION_P and *TEXT_P (malloc'd strings), or nothing
//  changes when a copy cannot be made.
void aigw_bp_directory_keep (zmq_msg_t *version, zmq_msg_t *text, char **version_p, char **text_p);

//  Payloads this small are copied into a message, not handed over.
#define AIGW_BP_COPY_MAX 32

//  Initialise MSG with the SIZE bytes at *DATA, taking the malloc'd buffer
//  (small ones are copied and freed) and nulling *DATA.
void aigw_bp_msg_take (zmq_msg_t *msg, char **data, size_t size);

//  Test support, for selftests that play one side of the protocol: the next
//  message on SOCK with HEADER and command CMD (on a ROUTER, after the
//  identity frame, which stays first), skipping others; NULL if none came
//  within TIMEOUT_MS.
zmsg_t *aigw_bp_expect (zsock_t *sock, const char *header, byte cmd, int timeout_ms);

//  Test support: send HEADER and command CMD on the ROUTER SOCK to the peer
//  at IDENTITY, with the strings up to NULL as the next frames.
void aigw_bp_test_send (zsock_t *sock, zframe_t *identity, const char *header, byte cmd, ...);

//  Test support: true if frame I of MSG is the string TEXT.
bool aigw_bp_frame_is (zmsg_t *msg, size_t i, const char *text);

void aigw_bp_test (bool verbose);

#endif
