/*  aigw_json: checks on raw JSON text made before a parser sees it, and the
    few Jansson load and dump steps every translator repeats. */
#ifndef AIGW_JSON_H_INCLUDED
#define AIGW_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

//  True when the LEN bytes of JSON at TEXT nest objects and arrays no more
//  than MAX deep (brackets inside strings do not count). Run it before a
//  recursive parser, so hostile nesting cannot exhaust a small thread stack.
bool aigw_json_depth_ok (const char *text, size_t len, int max);

//  ROOT serialised compactly into a new string the caller owns, its length
//  in *OUT_LEN when OUT_LEN is not NULL; steals ROOT (NULL is allowed).
//  NULL on allocation failure.
char *aigw_json_dump (json_t *root, size_t *out_len);

//  The string at error.message of the JSON BODY (LEN bytes, NULL allowed),
//  the error shape OpenAI and Anthropic share, as a new string the caller
//  owns, or NULL.
char *aigw_json_error_message (const char *body, size_t len);

//  Past the JSON whitespace at TEXT[I] (LEN bytes): I, or where it ends.
size_t aigw_json_space (const char *text, size_t len, size_t i);

//  Where the top-level member KEY of the JSON object at TEXT (LEN bytes)
//  has its value: its offset in *AT and its length in *SIZE. Returns how
//  many members are named KEY (0, 1, or 2 for more: the caller decides
//  which a parser would take), or -1 when TEXT is not an object this quick
//  scan reads (a key written with escapes, say): parse it then. Values are
//  skipped, not checked: run it on text a parser accepted.
int aigw_json_member (const char *text, size_t len, const char *key, size_t *at, size_t *size);

//  TEXT (LEN bytes, valid UTF-8) as a JSON string, quotes included, into a
//  new buffer the caller owns; its length in *OUT_LEN. NULL on allocation
//  failure.
char *aigw_json_quote (const char *text, size_t len, size_t *out_len);

void aigw_json_test (bool verbose);

#endif
