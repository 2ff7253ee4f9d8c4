/*  aigw_json: pre-parse checks on JSON text, shared load and dump steps. */
#include "aigw_json.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
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

char *
aigw_json_dump (json_t *root, size_t *out_len)
{
    char *result = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    if (result && out_len)
        *out_len = strlen (result);
    return result;
}

char *
aigw_json_error_message (const char *body, size_t len)
{
    json_t *root = json_loadb (body ? body : "", body ? len : 0, 0, NULL);
    json_t *message = json_object_get (json_object_get (root, "error"), "message");
    char *result = json_is_string (message) ? strdup (json_string_value (message)) : NULL;
    json_decref (root);
    return result;
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

    //  Dump: compact, length set, ROOT stolen (ASan sees a leak otherwise).
    size_t len = 0;
    char *text = aigw_json_dump (json_pack ("{s:i, s:[s]}", "a", 1, "b", "c"), &len);
    assert (text && strcmp (text, "{\"a\":1,\"b\":[\"c\"]}") == 0 && len == strlen (text));
    free (text);
    assert (aigw_json_dump (NULL, &len) == NULL);

    //  Error message: error.message, else NULL; NULL body is no body.
    const char *error = "{\"error\":{\"type\":\"x\",\"message\":\"slow down\"}}";
    text = aigw_json_error_message (error, strlen (error));
    assert (text && strcmp (text, "slow down") == 0);
    free (text);
    assert (!aigw_json_error_message ("{\"error\":{\"message\":7}}", 25));
    assert (!aigw_json_error_message ("not json", 8));
    assert (!aigw_json_error_message (NULL, 10));
    if (verbose)
        printf ("json: ok\n");
}
