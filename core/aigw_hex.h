/*  aigw_hex: lowercase hexadecimal, for hashes shown as text (key hashes,
    cache keys, SigV4) and percent-decoding. */
#ifndef AIGW_HEX_H_INCLUDED
#define AIGW_HEX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Write LEN bytes as lowercase hex into OUT, which holds 2 * LEN + 1.
void aigw_hex_encode (const unsigned char *bytes, size_t len, char *out);

//  Value of the hex digit C, or -1 if C is not one.
int aigw_hex_digit (char c);

//  LEN random bytes (not for secrets: request ids, trace and span ids,
//  usage record ids) from a per-thread generator seeded once from the
//  kernel, as LEN * 2 hex digits into OUT, which holds 2 * LEN + 1. Never
//  all zero, as W3C trace ids must not be.
void aigw_hex_random (size_t len, char *out);

//  The same bytes, raw, into OUT (LEN bytes).
void aigw_hex_random_bytes (size_t len, unsigned char *out);

//  A new id: PREFIX then LEN random bytes (at most 64) in hex, as
//  aigw_hex_random makes them ("resp_" and 24 digits, say). The caller
//  frees it; NULL when out of memory.
char *aigw_hex_id (const char *prefix, size_t len);

void aigw_hex_test (bool verbose);

#endif
