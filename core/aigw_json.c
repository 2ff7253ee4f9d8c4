/*  aigw_json: pre-parse checks on JSON text. */
#include "aigw_json.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

bool
aigw_json_depth_ok (const char *text, size_t len, int max)
{
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        }
        else if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        }
        else if (c == '}' || c == ']')
            depth--;
    }
    return true;
}

void
aigw_json_test (bool verbose)
{
    const char *deep = "[[[[[{\"a\":1}]]]]]";
    assert (aigw_json_depth_ok (deep, strlen (deep), 6));
    assert (!aigw_json_depth_ok (deep, strlen (deep), 5));
    //  Brackets inside strings, escaped quotes included, do not count.
    const char *quoted = "{\"a\":\"[[[[\\\"[[[[\"}";
    assert (aigw_json_depth_ok (quoted, strlen (quoted), 1));
    //  Siblings do not add up.
    const char *wide = "[[],[],[],[]]";
    assert (aigw_json_depth_ok (wide, strlen (wide), 2));
    assert (aigw_json_depth_ok ("", 0, 0));
    if (verbose)
        printf ("json: ok\n");
}
