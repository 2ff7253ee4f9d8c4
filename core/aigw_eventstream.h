/*  aigw_eventstream: the AWS event-stream binary framing
    (application/vnd.amazon.eventstream), which Bedrock's ConverseStream
    answers in: an incremental parser and an encoder, with the CRC-32 both
    use. Pure functions and one small object; no I/O, no logging. Both the
    Bedrock adapter and the mock provider speak it, so it lives here with
    the plumbing rather than inside either. */
#ifndef AIGW_EVENTSTREAM_H_INCLUDED
#define AIGW_EVENTSTREAM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Default cap on one message (prelude to trailing CRC).
#define AIGW_EVENTSTREAM_MAX_MESSAGE (16u * 1024 * 1024)

typedef struct _aigw_eventstream_t aigw_eventstream_t;

//  One string header (type 7) for the encoder.
typedef struct {
    const char *name;   //  header name, 1 to 255 bytes
    const char *value;  //  header value, at most 65535 bytes
} aigw_eventstream_header_t;

//  One parsed message: the string headers the protocol defines, and the payload.
typedef struct {
    const char *event_type;        //  :event-type, or NULL
    const char *message_type;      //  :message-type ("event", "exception", "error"), or NULL
    const char *content_type;      //  :content-type, or NULL
    const char *exception_type;    //  :exception-type, or NULL
    const char *error_code;        //  :error-code, or NULL
    const char *error_message;     //  :error-message, or NULL
    const unsigned char *payload;  //  payload bytes (not NUL-terminated)
    size_t payload_len;            //  payload length
} aigw_eventstream_message_t;

//  New parser refusing messages over MAX_MESSAGE bytes (0: the default).
//  NULL when out of memory.
aigw_eventstream_t *aigw_eventstream_new (size_t max_message);

//  Destroy the parser; safe on NULL and twice; nulls the caller's pointer.
void aigw_eventstream_destroy (aigw_eventstream_t **self_p);

//  Append LEN bytes of stream. Call _next until it returns 0 before the
//  next feed. Returns 0, or -1 after an error (see _error).
int aigw_eventstream_feed (aigw_eventstream_t *self, const void *data, size_t len);

//  Take the next complete message into MSG: 1 when one was taken, 0 when
//  more bytes are needed, -1 on a corrupt or oversized frame (sticky).
//  MSG's pointers stay valid until the next call on SELF.
int aigw_eventstream_next (aigw_eventstream_t *self, aigw_eventstream_message_t *msg);

//  Bytes held that do not yet form a message (nonzero at end of stream
//  means it was truncated).
size_t aigw_eventstream_pending (aigw_eventstream_t *self);

//  Why the parser failed, or NULL when it has not.
const char *aigw_eventstream_error (aigw_eventstream_t *self);

//  Encode one message with string HEADERS (type 7) and PAYLOAD into a new
//  buffer *OUT (caller frees) of *OUT_LEN bytes. Returns 0 or -1.
int aigw_eventstream_encode (const aigw_eventstream_header_t *headers, size_t header_count,
                             const void *payload, size_t payload_len, unsigned char **out,
                             size_t *out_len);

//  CRC-32 (IEEE, as zlib's crc32) of LEN bytes, continuing from CRC (0 to start).
uint32_t aigw_eventstream_crc32 (uint32_t crc, const void *data, size_t len);

void aigw_eventstream_test (bool verbose);

#endif
