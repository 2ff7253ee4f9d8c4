/*  aigw_text: small checks on text from outside (UTF-8 length, strict
    decimal integers) that the config, the admin API, the operator CLI and
    the actors share, so each rule is written once. */
#ifndef AIGW_TEXT_H_INCLUDED
#define AIGW_TEXT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Most digits aigw_text_integer reads: more could overflow int64_t.
#define AIGW_TEXT_INT_DIGITS_MAX 18

//  Code points in the LEN bytes at TEXT, which must already be valid UTF-8
//  (a JSON parser's strings are): counts the bytes that start a character.
size_t aigw_text_utf8_length (const char *text, size_t len);

//  Code points in the NUL-terminated TEXT if it is valid UTF-8 (no
//  overlong forms, surrogates or code points past U+10FFFF), else -1.
int64_t aigw_text_utf8_check (const char *text);

//  Parses TEXT as a plain decimal integer (digits only, no sign, at most
//  AIGW_TEXT_INT_DIGITS_MAX) within MIN..MAX into *VALUE. Returns 0, or -1
//  (VALUE untouched) if it is not one.
int aigw_text_integer (const char *text, int64_t min, int64_t max, int64_t *value);

//  An RFC 3339 date-time ("2030-01-31T12:00:00.5+01:00"; T and Z either
//  case, a fraction of up to 9 digits) as Unix ms into *MS (may be NULL).
//  Returns 0, or -1 when TEXT is not one (30 February included).
int aigw_text_time_parse (const char *text, int64_t *ms);

//  Append LEN bytes of DATA to the growing buffer *BUF (*LEN bytes used,
//  *CAP allocated; all zero to start), kept NUL-terminated; it doubles as
//  it grows. Returns 0, or -1 when out of memory (the buffer as it was).
int aigw_text_append (char **buf, size_t *len, size_t *cap, const char *data, size_t n);

void aigw_text_test (bool verbose);

//  True when TEXT (may be NULL) is a UUID in its canonical text form:
//  8-4-4-4-12 hexadecimal digits.
bool aigw_text_uuid_valid (const char *text);

//  True when TEXT is a valid W3C traceparent of version 00: 55 characters,
//  lowercase hex trace id (32) and parent id (16), neither all zero, and
//  flags (2). Writes the trace id, parent id (NUL-terminated) and flags
//  when their pointers are not NULL.
bool aigw_text_traceparent (const char *text, char *trace_id, char *span_id, int *flags);

#endif
