/*  aigw_eventstream: the AWS event-stream framing, written from AWS's
    published description of the format. Each message is:
      total length (4, big-endian) | headers length (4) | prelude CRC (4)
      headers | payload | message CRC (4)
    where the prelude CRC covers the first 8 bytes and the message CRC
    every byte before it. A header is: name length (1) | name | type (1) |
    value, with type 7 (string) and 6 (bytes) carrying a 2-byte length. */
#include "aigw_eventstream.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Prelude: total length, headers length, prelude CRC.
#define S_ES_PRELUDE 12
//  Trailing message CRC.
#define S_ES_TRAILER 4
//  Smallest possible message: prelude plus trailer.
#define S_ES_MIN_MESSAGE (S_ES_PRELUDE + S_ES_TRAILER)
//  Longest string header value (2-byte length on the wire).
#define S_ES_STRING_MAX 65535
//  CRC-32 (IEEE 802.3) polynomial, bit-reflected, as zlib uses.
#define S_CRC32_POLY 0xEDB88320u

//  CRC-32 lookup table for the reflected IEEE polynomial, built once.
static uint32_t s_crc_table[256];
static pthread_once_t s_crc_once = PTHREAD_ONCE_INIT;

//  Fill s_crc_table; run through pthread_once so threads never race on it.
static void
s_crc_table_init (void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? S_CRC32_POLY ^ (c >> 1) : c >> 1;
        s_crc_table[n] = c;
    }
}

uint32_t
aigw_eventstream_crc32 (uint32_t crc, const void *data, size_t len)
{
    pthread_once (&s_crc_once, s_crc_table_init);
    const unsigned char *bytes = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = s_crc_table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

//  Read a big-endian 32-bit value.
static uint32_t
s_be32 (const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

//  Write a big-endian 32-bit value.
static void
s_put_be32 (unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}

//  The string headers a message exposes, by name.
static const char *s_es_known[] = {":event-type",     ":message-type", ":content-type",
                                   ":exception-type", ":error-code",   ":error-message"};
#define S_ES_KNOWN (sizeof s_es_known / sizeof s_es_known[0])

struct _aigw_eventstream_t {
    unsigned char *data;       //  buffered bytes
    size_t len;                //  bytes buffered
    size_t cap;                //  bytes allocated
    size_t start;              //  first byte not yet consumed
    size_t max_message;        //  largest message accepted
    char *values[S_ES_KNOWN];  //  last message's known string headers
    char error[128];           //  why parsing stopped, "" while healthy
};

aigw_eventstream_t *
aigw_eventstream_new (size_t max_message)
{
    aigw_eventstream_t *self = calloc (1, sizeof *self);
    if (self)
        self->max_message = max_message ? max_message : AIGW_EVENTSTREAM_MAX_MESSAGE;
    return self;
}

//  Free the previous message's header strings.
static void
s_es_clear_values (aigw_eventstream_t *self)
{
    for (size_t i = 0; i < S_ES_KNOWN; i++) {
        free (self->values[i]);
        self->values[i] = NULL;
    }
}

void
aigw_eventstream_destroy (aigw_eventstream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aigw_eventstream_t *self = *self_p;
    s_es_clear_values (self);
    free (self->data);
    free (self);
    *self_p = NULL;
}

//  Record a failure; returns -1 for the caller to pass on.
static int
s_es_fail (aigw_eventstream_t *self, const char *why)
{
    snprintf (self->error, sizeof self->error, "event stream: %s", why);
    return -1;
}

int
aigw_eventstream_feed (aigw_eventstream_t *self, const void *data, size_t len)
{
    assert (self);
    if (self->error[0])
        return -1;
    //  Drop consumed bytes so the buffer holds at most one partial message
    if (self->start) {
        memmove (self->data, self->data + self->start, self->len - self->start);
        self->len -= self->start;
        self->start = 0;
    }
    if (self->len > self->max_message)
        return s_es_fail (self, "caller did not drain messages");
    if (len == 0)
        return 0;
    if (self->len + len > self->cap) {
        size_t cap = self->cap ? self->cap : 4096;
        while (cap < self->len + len)
            cap *= 2;
        unsigned char *data_new = realloc (self->data, cap);
        if (!data_new)
            return s_es_fail (self, "out of memory");
        self->data = data_new;
        self->cap = cap;
    }
    memcpy (self->data + self->len, data, len);
    self->len += len;
    return 0;
}

int
aigw_eventstream_next (aigw_eventstream_t *self, aigw_eventstream_message_t *msg)
{
    assert (self);
    assert (msg);
    memset (msg, 0, sizeof *msg);
    s_es_clear_values (self);
    if (self->error[0])
        return -1;
    size_t avail = self->len - self->start;
    if (avail < S_ES_PRELUDE)
        return 0;
    const unsigned char *frame = self->data + self->start;
    uint32_t total = s_be32 (frame);
    uint32_t headers_len = s_be32 (frame + 4);
    if (aigw_eventstream_crc32 (0, frame, 8) != s_be32 (frame + 8))
        return s_es_fail (self, "prelude CRC mismatch");
    if (total < S_ES_MIN_MESSAGE)
        return s_es_fail (self, "message length too small");
    if (total > self->max_message)
        return s_es_fail (self, "message exceeds the size cap");
    if (headers_len > total - S_ES_MIN_MESSAGE)
        return s_es_fail (self, "headers length exceeds the message");
    if (avail < total)
        return 0;
    if (aigw_eventstream_crc32 (0, frame, total - S_ES_TRAILER) != s_be32 (frame + total - 4))
        return s_es_fail (self, "message CRC mismatch");

    //  Walk the headers, keeping the string ones we know
    const unsigned char *cursor = frame + S_ES_PRELUDE;
    const unsigned char *limit = cursor + headers_len;
    while (cursor < limit) {
        size_t name_len = *cursor++;
        if (name_len == 0 || (size_t) (limit - cursor) < name_len + 1)
            return s_es_fail (self, "truncated header name");
        const unsigned char *name = cursor;
        cursor += name_len;
        unsigned char type = *cursor++;
        size_t value_len;
        switch (type) {
            case 0:  //  bool true
            case 1:  //  bool false
                value_len = 0;
                break;
            case 2:  //  byte
                value_len = 1;
                break;
            case 3:  //  short
                value_len = 2;
                break;
            case 4:  //  int
                value_len = 4;
                break;
            case 5:  //  long
            case 8:  //  timestamp
                value_len = 8;
                break;
            case 9:  //  uuid
                value_len = 16;
                break;
            case 6:  //  bytes
            case 7:  //  string
                if (limit - cursor < 2)
                    return s_es_fail (self, "truncated header length");
                value_len = (size_t) cursor[0] << 8 | cursor[1];
                cursor += 2;
                break;
            default: return s_es_fail (self, "unknown header type");
        }
        if ((size_t) (limit - cursor) < value_len)
            return s_es_fail (self, "truncated header value");
        if (type == 7)
            for (size_t i = 0; i < S_ES_KNOWN; i++)
                if (strlen (s_es_known[i]) == name_len
                    && memcmp (s_es_known[i], name, name_len) == 0) {
                    free (self->values[i]);
                    self->values[i] = strndup ((const char *) cursor, value_len);
                    if (!self->values[i])
                        return s_es_fail (self, "out of memory");
                }
        cursor += value_len;
    }
    msg->event_type = self->values[0];
    msg->message_type = self->values[1];
    msg->content_type = self->values[2];
    msg->exception_type = self->values[3];
    msg->error_code = self->values[4];
    msg->error_message = self->values[5];
    msg->payload = limit;
    msg->payload_len = total - S_ES_MIN_MESSAGE - headers_len;
    self->start += total;
    return 1;
}

size_t
aigw_eventstream_pending (aigw_eventstream_t *self)
{
    assert (self);
    return self->len - self->start;
}

const char *
aigw_eventstream_error (aigw_eventstream_t *self)
{
    assert (self);
    return self->error[0] ? self->error : NULL;
}

int
aigw_eventstream_encode (const aigw_eventstream_header_t *headers, size_t header_count,
                         const void *payload, size_t payload_len, unsigned char **out,
                         size_t *out_len)
{
    if (!out || !out_len || (header_count && !headers) || (payload_len && !payload))
        return -1;
    *out = NULL;
    *out_len = 0;
    size_t headers_len = 0;
    for (size_t i = 0; i < header_count; i++) {
        size_t name_len = headers[i].name ? strlen (headers[i].name) : 0;
        size_t value_len = headers[i].value ? strlen (headers[i].value) : S_ES_STRING_MAX + 1;
        if (name_len == 0 || name_len > 255 || value_len > S_ES_STRING_MAX)
            return -1;
        headers_len += 1 + name_len + 1 + 2 + value_len;
    }
    if (headers_len > UINT32_MAX - S_ES_MIN_MESSAGE
        || payload_len > UINT32_MAX - S_ES_MIN_MESSAGE - headers_len)
        return -1;
    size_t total = S_ES_MIN_MESSAGE + headers_len + payload_len;
    unsigned char *frame = malloc (total);
    if (!frame)
        return -1;
    s_put_be32 (frame, (uint32_t) total);
    s_put_be32 (frame + 4, (uint32_t) headers_len);
    s_put_be32 (frame + 8, aigw_eventstream_crc32 (0, frame, 8));
    unsigned char *cursor = frame + S_ES_PRELUDE;
    for (size_t i = 0; i < header_count; i++) {
        size_t name_len = strlen (headers[i].name);
        size_t value_len = strlen (headers[i].value);
        *cursor++ = (unsigned char) name_len;
        memcpy (cursor, headers[i].name, name_len);
        cursor += name_len;
        *cursor++ = 7;
        *cursor++ = (unsigned char) (value_len >> 8);
        *cursor++ = (unsigned char) value_len;
        memcpy (cursor, headers[i].value, value_len);
        cursor += value_len;
    }
    if (payload_len)
        memcpy (cursor, payload, payload_len);
    cursor += payload_len;
    s_put_be32 (cursor, aigw_eventstream_crc32 (0, frame, total - S_ES_TRAILER));
    *out = frame;
    *out_len = total;
    return 0;
}

//  --------------------------------------------------------------------
//  Selftest

//  A growable byte buffer for building streams.
typedef struct {
    unsigned char *data;  //  bytes, malloc'd
    size_t len;           //  bytes used
} s_test_buf_t;

//  Append LEN bytes of DATA to BUF; asserts on allocation failure.
static void
s_test_add (s_test_buf_t *buf, const void *data, size_t len)
{
    buf->data = realloc (buf->data, buf->len + len);
    assert (buf->data);
    memcpy (buf->data + buf->len, data, len);
    buf->len += len;
}

//  One frame from raw HEADERS bytes and PAYLOAD with correct CRCs, for
//  header types the encoder does not write. Caller frees.
static unsigned char *
s_test_raw_frame (const unsigned char *headers, size_t headers_len, const char *payload,
                  size_t *out_len)
{
    size_t payload_len = strlen (payload);
    size_t total = S_ES_MIN_MESSAGE + headers_len + payload_len;
    unsigned char *frame = malloc (total);
    assert (frame);
    s_put_be32 (frame, (uint32_t) total);
    s_put_be32 (frame + 4, (uint32_t) headers_len);
    s_put_be32 (frame + 8, aigw_eventstream_crc32 (0, frame, 8));
    memcpy (frame + S_ES_PRELUDE, headers, headers_len);
    memcpy (frame + S_ES_PRELUDE + headers_len, payload, payload_len);
    s_put_be32 (frame + total - 4, aigw_eventstream_crc32 (0, frame, total - 4));
    *out_len = total;
    return frame;
}

//  Feed BYTES to a fresh parser in slices (1 byte when SEED is 0, else
//  pseudo-random up to 97 bytes) and return the number of messages; the
//  messages' event types joined by ',' go into TYPES.
static int
s_test_parse (const unsigned char *bytes, size_t len, unsigned seed, size_t max_message,
              char *types, size_t types_size, int *status)
{
    aigw_eventstream_t *parser = aigw_eventstream_new (max_message);
    assert (parser);
    int count = 0;
    *status = 0;
    types[0] = 0;
    size_t at = 0;
    while (at < len && *status == 0) {
        size_t step = 1;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            step = 1 + (seed >> 16) % 97;
        }
        if (step > len - at)
            step = len - at;
        if (aigw_eventstream_feed (parser, bytes + at, step)) {
            *status = -1;
            break;
        }
        at += step;
        aigw_eventstream_message_t msg;
        int rc;
        while ((rc = aigw_eventstream_next (parser, &msg)) == 1) {
            count++;
            size_t used = strlen (types);
            snprintf (types + used, types_size - used, "%s%s:%.*s", used ? "," : "",
                      msg.event_type ? msg.event_type : "-", (int) msg.payload_len,
                      (const char *) msg.payload);
        }
        if (rc < 0) {
            *status = -1;
            assert (aigw_eventstream_error (parser));
        }
    }
    if (*status == 0 && aigw_eventstream_pending (parser))
        *status = 1;  //  truncated
    aigw_eventstream_destroy (&parser);
    aigw_eventstream_destroy (&parser);
    return count;
}

void
aigw_eventstream_test (bool verbose)
{
    //  CRC-32 check value, then round trips
    unsigned char *frame;
    size_t frame_len;
    assert (aigw_eventstream_crc32 (0, "123456789", 9) == 0xCBF43926u);
    s_test_buf_t stream = {0};
    static const char *events[][2]
        = {{"messageStart", "{\"role\":\"assistant\"}"},
           {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}"}};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        aigw_eventstream_header_t headers[] = {{":event-type", events[i][0]},
                                               {":content-type", "application/json"},
                                               {":message-type", "event"}};
        assert (aigw_eventstream_encode (headers, 3, events[i][1], strlen (events[i][1]), &frame,
                                         &frame_len)
                == 0);
        s_test_add (&stream, frame, frame_len);
        free (frame);
    }
    aigw_eventstream_header_t bare[] = {{":event-type", "empty"}};
    assert (aigw_eventstream_encode (bare, 1, NULL, 0, &frame, &frame_len) == 0);
    s_test_add (&stream, frame, frame_len);
    free (frame);
    //  A frame with every non-string header type, which the parser must skip
    unsigned char typed[] = {2,   'b', 't', 0,                                       //  bool true
                             2,   'b', 'f', 1,                                       //  bool false
                             1,   'y', 2,   7,                                       //  byte
                             1,   's', 3,   0,   1,                                  //  short
                             1,   'i', 4,   0,   0,   0,    1,                       //  int
                             1,   'l', 5,   0,   0,   0,    0,    0,   0,   0,   1,  //  long
                             1,   'x', 6,   0,   2,   0xAB, 0xCD,                    //  bytes
                             1,   't', 8,   0,   0,   0,    0,    0,   0,   0,   1,  //  timestamp
                             1,   'u', 9,   1,   2,   3,    4,    5,   6,   7,   8,   9,   10,
                             11,  12,  13,  14,  15,  16,   11,   ':', 'e', 'v', 'e', 'n', 't',
                             '-', 't', 'y', 'p', 'e', 7,    0,    5,   't', 'y', 'p', 'e', 'd'};
    frame = s_test_raw_frame (typed, sizeof typed, "{}", &frame_len);
    s_test_add (&stream, frame, frame_len);
    free (frame);
    const char *expected_types = "messageStart:{\"role\":\"assistant\"},"
                                 "contentBlockDelta:{\"contentBlockIndex\":0,\"delta\":{\"text\":"
                                 "\"Hi\"}},empty:,typed:{}";
    char types[512];
    int status;
    assert (
        s_test_parse ((unsigned char *) stream.data, stream.len, 0, 0, types, sizeof types, &status)
        == 4);
    assert (status == 0 && strcmp (types, expected_types) == 0);
    for (unsigned seed = 1; seed < 40; seed++) {
        assert (s_test_parse ((unsigned char *) stream.data, stream.len, seed, 0, types,
                              sizeof types, &status)
                == 4);
        assert (status == 0 && strcmp (types, expected_types) == 0);
    }
    //  Truncated: every strict prefix leaves bytes pending or fewer messages
    for (size_t cut = 1; cut < stream.len; cut += 7) {
        int count
            = s_test_parse ((unsigned char *) stream.data, cut, 3, 0, types, sizeof types, &status);
        assert (count < 4 && status >= 0);
    }
    //  Corruption: flipping any byte is caught by a CRC or a bounds check
    //  (or, for the length fields, looks like a truncated or short stream)
    for (size_t at = 0; at < stream.len; at++) {
        stream.data[at] ^= 0x5A;
        int count = s_test_parse ((unsigned char *) stream.data, stream.len, 7, 0, types,
                                  sizeof types, &status);
        assert (status != 0 || count < 4);
        stream.data[at] ^= 0x5A;
    }
    stream.data[stream.len - 1] ^= 1;  //  message CRC
    assert (
        s_test_parse ((unsigned char *) stream.data, stream.len, 0, 0, types, sizeof types, &status)
        == 3);
    assert (status == -1);
    stream.data[stream.len - 1] ^= 1;
    //  Oversized: a cap below the largest frame refuses it cleanly
    assert (s_test_parse ((unsigned char *) stream.data, stream.len, 5, 40, types, sizeof types,
                          &status)
            == 0);
    assert (status == -1);
    //  Unknown header type and a header running past its block
    unsigned char unknown[] = {1, 'q', 10, 0};
    frame = s_test_raw_frame (unknown, sizeof unknown, "", &frame_len);
    assert (s_test_parse (frame, frame_len, 0, 0, types, sizeof types, &status) == 0);
    assert (status == -1);
    free (frame);
    unsigned char overrun[] = {1, 'q', 7, 0, 9, 'a'};
    frame = s_test_raw_frame (overrun, sizeof overrun, "", &frame_len);
    assert (s_test_parse (frame, frame_len, 0, 0, types, sizeof types, &status) == 0);
    assert (status == -1);
    free (frame);
    //  Headers length larger than the message
    unsigned char tiny[] = {0, 0, 0, 16, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0};
    s_put_be32 (tiny + 8, aigw_eventstream_crc32 (0, tiny, 8));
    assert (s_test_parse (tiny, sizeof tiny, 0, 0, types, sizeof types, &status) == 0);
    assert (status == -1);
    aigw_eventstream_header_t nameless[] = {{"", "x"}};
    assert (aigw_eventstream_encode (nameless, 1, NULL, 0, &frame, &frame_len) == -1);
    free (stream.data);
    if (verbose)
        printf ("eventstream: ok\n");
}
