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

size_t
aigw_json_space (const char *text, size_t len, size_t i)
{
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
        i++;
    return i;
}

//  Past the string whose opening quote is at TEXT[I]; LEN when it does not
//  end. *ESCAPED tells whether it holds a backslash.
static size_t
s_string_end (const char *text, size_t len, size_t i, bool *escaped)
{
    *escaped = false;
    for (i++; i < len; i++) {
        if (text[i] == '\\') {
            *escaped = true;
            i++;
        }
        else if (text[i] == '"')
            return i + 1;
    }
    return len;
}

//  Past the value at TEXT[I] (a parser accepted it); LEN when it does not
//  end.
static size_t
s_value_end (const char *text, size_t len, size_t i)
{
    bool escaped;
    if (i < len && text[i] == '"')
        return s_string_end (text, len, i, &escaped);
    if (i < len && (text[i] == '{' || text[i] == '[')) {
        int depth = 0;
        while (i < len) {
            char c = text[i];
            if (c == '"') {
                i = s_string_end (text, len, i, &escaped);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return len;
    }
    //  A number or a literal: up to what ends it.
    while (i < len && text[i] != ',' && text[i] != '}' && text[i] != ']' && text[i] != ' '
           && text[i] != '\n' && text[i] != '\r' && text[i] != '\t')
        i++;
    return i;
}

int
aigw_json_member (const char *text, size_t len, const char *key, size_t *at, size_t *size)
{
    size_t key_len = strlen (key);
    size_t i = aigw_json_space (text, len, 0);
    if (i >= len || text[i] != '{')
        return -1;
    i = aigw_json_space (text, len, i + 1);
    if (i < len && text[i] == '}')
        return 0;
    int found = 0;
    while (i < len && text[i] == '"') {
        bool escaped;
        size_t key_end = s_string_end (text, len, i, &escaped);
        if (escaped || key_end >= len)
            return -1;
        bool match = key_end - i - 2 == key_len && memcmp (text + i + 1, key, key_len) == 0;
        i = aigw_json_space (text, len, key_end);
        if (i >= len || text[i] != ':')
            return -1;
        i = aigw_json_space (text, len, i + 1);
        size_t end = s_value_end (text, len, i);
        if (end >= len || end == i)
            return -1;
        if (match && found++ == 0) {
            *at = i;
            *size = end - i;
        }
        i = aigw_json_space (text, len, end);
        if (i < len && text[i] == '}')
            return found > 1 ? 2 : found;
        if (i >= len || text[i] != ',')
            return -1;
        i = aigw_json_space (text, len, i + 1);
    }
    return -1;
}

char *
aigw_json_quote (const char *text, size_t len, size_t *out_len)
{
    //  At most six bytes per input byte (\u00XX), two quotes, a NUL.
    char *out = malloc (len * 6 + 3);
    if (!out)
        return NULL;
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char) c;
        }
        else if (c < 0x20)
            n += (size_t) sprintf (out + n, "\\u%04x", c);
        else
            out[n++] = (char) c;
    }
    out[n++] = '"';
    out[n] = '\0';
    *out_len = n;
    return out;
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
    //  Top-level members: found by key, counted, nested ones not seen.
    size_t at = 0, size = 0;
    const char *doc = " {\"a\" : {\"model\":1}, \"model\":\"x\\\"y\", \"b\":[\"]\"]} ";
    assert (aigw_json_member (doc, strlen (doc), "model", &at, &size) == 1);
    assert (size == 6 && memcmp (doc + at, "\"x\\\"y\"", 6) == 0);
    assert (aigw_json_member (doc, strlen (doc), "b", &at, &size) == 1);
    assert (size == 5 && memcmp (doc + at, "[\"]\"]", 5) == 0);
    assert (aigw_json_member (doc, strlen (doc), "c", &at, &size) == 0);
    assert (aigw_json_member ("{}", 2, "a", &at, &size) == 0);
    assert (aigw_json_member ("{\"a\":1,\"a\":2,\"a\":3}", 19, "a", &at, &size) == 2);
    assert (at == 5 && size == 1);
    //  What the quick scan does not read: the caller parses.
    const char *unread[] = {"[1]",       "",         "{\"a\":1",   "{\"a\\u0062\":1}",
                            "{\"a\" 1}", "{\"a\":}", "{\"a\":1,}", "{\"a\":\"x}",
                            "\"s\""};
    for (size_t i = 0; i < sizeof unread / sizeof unread[0]; i++)
        assert (aigw_json_member (unread[i], strlen (unread[i]), "a", &at, &size) == -1);
    //  Quoting: what Jansson reads back as the same string.
    const char *raw = "a\"b\\c\n\x01\xc3\xa9";
    size_t quoted_len = 0;
    char *as_json = aigw_json_quote (raw, strlen (raw), &quoted_len);
    assert (as_json && quoted_len == strlen (as_json));
    json_t *back = json_loadb (as_json, quoted_len, JSON_DECODE_ANY, NULL);
    assert (json_is_string (back) && strcmp (json_string_value (back), raw) == 0);
    json_decref (back);
    free (as_json);
    if (verbose)
        printf ("json: ok\n");
}
