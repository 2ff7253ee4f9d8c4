/*  aigw_json: checks on raw JSON text made before a parser sees it. */
#ifndef AIGW_JSON_H_INCLUDED
#define AIGW_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  True when the LEN bytes of JSON at TEXT nest objects and arrays no more
//  than MAX deep (brackets inside strings do not count). Run it before a
//  recursive parser, so hostile nesting cannot exhaust a small thread stack.
bool aigw_json_depth_ok (const char *text, size_t len, int max);

void aigw_json_test (bool verbose);

#endif
