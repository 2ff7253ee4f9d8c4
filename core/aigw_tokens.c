/*  aigw_tokens: token estimates for reservations. See aigw_tokens.h.

    First version: a count by character classes that follows how BPE
    vocabularies split text (a word of up to six letters is one token, a longer one a few,
    digits go three to a token, each punctuation mark is one, other
    scripts about one per character). */
#include "aigw_tokens.h"

#include <assert.h>
#include <jansson.h>
#include <string.h>

//  Tokens a chat message costs beyond its text (role, separators).
#define S_MESSAGE_OVERHEAD 4
//  Tokens every request costs beyond its messages (the reply's priming).
#define S_REQUEST_OVERHEAD 3

int64_t
aigw_tokens_text (const char *text, size_t len)
{
    int64_t tokens = 0;
    size_t i = 0;
    const unsigned char *p = (const unsigned char *) text;
    while (i < len) {
        unsigned char c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t start = i;
            while (i < len && ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')))
                i++;
            tokens += (int64_t) ((i - start + 5) / 6);
        }
        else if (c >= '0' && c <= '9') {
            size_t start = i;
            while (i < len && p[i] >= '0' && p[i] <= '9')
                i++;
            tokens += (int64_t) ((i - start + 2) / 3);
        }
        else if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            i++;  //  whitespace rides with the next word
        else if (c < 0x80) {
            tokens++;
            i++;
        }
        else {
            //  One per code point beyond ASCII.
            size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            tokens++;
            i += n;
        }
    }
    return tokens;
}

//  Tokens of the text in a content value: a string, or an array of parts
//  holding "text" (images and other parts are not counted here).
static int64_t
s_content (json_t *content)
{
    if (json_is_string (content))
        return aigw_tokens_text (json_string_value (content), json_string_length (content));
    int64_t tokens = 0;
    size_t i;
    json_t *part;
    if (json_is_array (content))
        json_array_foreach (content, i, part) {
            json_t *text = json_is_string (part) ? part : json_object_get (part, "text");
            if (json_is_string (text))
                tokens += aigw_tokens_text (json_string_value (text), json_string_length (text));
        }
    return tokens;
}

//  Tokens of a JSON value written out (tool definitions, tool calls).
static int64_t
s_json (json_t *value)
{
    if (!value)
        return 0;
    char *text = json_dumps (value, JSON_COMPACT);
    int64_t tokens = text ? aigw_tokens_text (text, strlen (text)) : 0;
    free (text);
    return tokens;
}

int
aigw_tokens_estimate (aigw_tokens_format_t format, const char *body, size_t len,
                      int64_t default_max, int64_t *prompt, int64_t *completion)
{
    *prompt = 0;
    *completion = 0;
    json_t *root = json_loadb (body ? body : "", len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return -1;
    }
    int64_t tokens = 0;
    if (format == AIGW_TOKENS_EMBEDDINGS)
        tokens = s_content (json_object_get (root, "input"));
    else {
        tokens = S_REQUEST_OVERHEAD + s_content (json_object_get (root, "system"));
        size_t i;
        json_t *message;
        json_array_foreach (json_object_get (root, "messages"), i, message) {
            tokens += S_MESSAGE_OVERHEAD + s_content (json_object_get (message, "content"));
            tokens += s_json (json_object_get (message, "tool_calls"));
        }
        tokens += s_json (json_object_get (root, "tools"));
        static const char *const ceilings[]
            = {"max_completion_tokens", "max_tokens", "max_output_tokens"};
        for (size_t k = 0; k < sizeof ceilings / sizeof ceilings[0] && !*completion; k++) {
            json_t *v = json_object_get (root, ceilings[k]);
            if (json_is_integer (v) && json_integer_value (v) > 0)
                *completion = json_integer_value (v);
        }
        if (!*completion)
            *completion = default_max;
    }
    *prompt = tokens;
    json_decref (root);
    return 0;
}

void
aigw_tokens_test (bool verbose)
{
    (void) verbose;
    assert (aigw_tokens_text ("", 0) == 0);
    assert (aigw_tokens_text ("hello world", 11) == 2);
    assert (aigw_tokens_text ("internationalization", 20) == 4);
    assert (aigw_tokens_text ("12345", 5) == 2);
    assert (aigw_tokens_text ("a, b.", 5) == 4);
    assert (aigw_tokens_text ("\xe6\x97\xa5\xe6\x9c\xac", 6) == 2);
    int64_t prompt, completion;
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}],"
                       "\"max_tokens\":50}";
    assert (aigw_tokens_estimate (AIGW_TOKENS_CHAT, chat, strlen (chat), 4096, &prompt, &completion)
            == 0);
    assert (prompt == S_REQUEST_OVERHEAD + S_MESSAGE_OVERHEAD + 2 && completion == 50);
    const char *bare = "{\"messages\":[]}";
    assert (aigw_tokens_estimate (AIGW_TOKENS_CHAT, bare, strlen (bare), 4096, &prompt, &completion)
            == 0);
    assert (completion == 4096);
    const char *emb = "{\"input\":[\"a b\",\"c\"]}";
    assert (
        aigw_tokens_estimate (AIGW_TOKENS_EMBEDDINGS, emb, strlen (emb), 4096, &prompt, &completion)
        == 0);
    assert (prompt == 3 && completion == 0);
    assert (aigw_tokens_estimate (AIGW_TOKENS_CHAT, "[1]", 3, 10, &prompt, &completion) == -1);
    assert (prompt == 0 && completion == 0);
}
