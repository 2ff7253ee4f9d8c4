/*  aigw_tokens: token estimates for reservations. See aigw_tokens.h.

    The text estimate follows how OpenAI's BPE tokenizers (o200k_base,
    cl100k_base) work: a regex first cuts text into pieces (a word with its
    leading space or punctuation mark, camelCase split at each capital, up
    to three digits, a run of punctuation, a run of whitespace), and BPE
    never merges across pieces. So we cut the same pieces in one pass over
    the bytes, and cost each by its class and length from figures measured
    with o200k_base (tests/integration/tokens.test.mjs checks them against
    the real tokenizer over a varied corpus): a common word is one token, a
    long or all-capitals one a few, and text beyond ASCII by its script.
    Costs are in hundredths of a token, summed and rounded up at the end,
    and lean high: a reservation too large comes back at the settle, one
    too small lets requests past a limit. No allocation, no tables beyond
    a few ranges: about a byte a nanosecond. */
#include "aigw_tokens.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

//  Costs, in hundredths of a token.
#define S_CENTI 100
//  A run of digits: one token per three (the vocabularies hold 0-999).
#define S_DIGITS_PER_TOKEN 3
//  Letters of an ordinary word that cost one token; each further one costs
//  S_WORD_EXTRA, past S_WORD_LONG letters S_WORD_RARE (long words are rare
//  words, cut into syllables).
#define S_WORD_SHORT 5
#define S_WORD_LONG  9
#define S_WORD_EXTRA 10
#define S_WORD_RARE  28
//  A word without a leading space (line start, after punctuation, the
//  second part of camelCase) merges less well.
#define S_WORD_BARE 10
//  An all-capitals word: acronyms and constants, cut into short pieces.
#define S_UPPER_SHORT  3
#define S_UPPER_LETTER 32
//  A letter beyond ASCII inside a Latin word (é, ß, ø).
#define S_LATIN_MARK 45
//  Letters of other alphabets (Greek, Cyrillic, Arabic, Hebrew), per
//  letter, and per word.
#define S_ALPHA_LETTER 15
#define S_ALPHA_WORD   80
//  Letters of the scripts coded in three bytes before CJK (Devanagari,
//  Thai, ...), per letter.
#define S_SCRIPT_LETTER 70
//  Chinese and Japanese, per character; Korean syllables; rare ones
//  (four bytes).
#define S_CJK_CHAR    78
#define S_HANGUL_CHAR 60
#define S_CJK_RARE    200
//  Punctuation: a run of up to S_PUNCT_SHORT marks is one token, longer
//  runs about one per S_PUNCT_PER_TOKEN marks.
#define S_PUNCT_SHORT     3
#define S_PUNCT_PER_TOKEN 2
//  Symbols beyond ASCII: Latin-1 signs, general punctuation and symbols
//  (—, “, €, arrows, box drawing), emoji and the joiners between them.
#define S_SYMBOL_LATIN 100
#define S_SYMBOL       130
#define S_EMOJI        220
#define S_JOINER       60
//  A run of whitespace other than the one space a word takes along.
#define S_SPACE_RUN 100
//  A contraction ('s, 't, 'll) after its word: often merged with it.
#define S_CONTRACTION 50
//  A punctuation mark that leads a word (".example", "/keys").
#define S_MARK_WORD 50

//  The next code point of P (LEN bytes) at *I, advancing *I; a byte that
//  does not start valid UTF-8 comes back as itself (0x80-0xff), alone.
static uint32_t
s_next (const unsigned char *p, size_t len, size_t *i)
{
    unsigned char c = p[*i];
    size_t n = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 1;
    if (c < 0x80 || n == 1 || *i + n > len) {
        (*i)++;
        return c;
    }
    uint32_t cp = c & (0xff >> (n + 1));
    for (size_t k = 1; k < n; k++) {
        if ((p[*i + k] & 0xc0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = (cp << 6) | (p[*i + k] & 0x3f);
    }
    *i += n;
    return cp;
}

//  Classes of code points beyond ASCII, by range (no Unicode tables: the
//  ranges that matter for cost).
typedef enum {
    S_IS_LATIN,   //  a Latin letter with a mark: part of a word
    S_IS_ALPHA,   //  Greek, Cyrillic, Armenian, Hebrew, Arabic, ... letters
    S_IS_SCRIPT,  //  letters of the three-byte scripts before CJK
    S_IS_CJK,     //  Chinese and Japanese characters
    S_IS_HANGUL,  //  Korean syllables
    S_IS_RARE,    //  four-byte letters (CJK extensions)
    S_IS_SIGN,    //  a Latin-1 sign (°, ¿, «, ×)
    S_IS_SYMBOL,  //  punctuation and symbols coded in three bytes
    S_IS_EMOJI,   //  emoji and other four-byte symbols
    S_IS_JOIN     //  zero-width joiner, variation selectors, combining marks
} s_class_t;

static s_class_t
s_class (uint32_t cp)
{
    if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7)
        return S_IS_SIGN;
    if (cp < 0x2b0)
        return S_IS_LATIN;
    if (cp < 0x370)
        return S_IS_JOIN;  //  modifier letters, combining marks
    if (cp < 0x800)
        return S_IS_ALPHA;
    if (cp < 0x1e00)
        return S_IS_SCRIPT;
    if (cp < 0x2000)
        return S_IS_LATIN;  //  Latin and Greek extended
    if (cp == 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f))
        return S_IS_JOIN;
    if (cp < 0x2e80 || (cp >= 0x3000 && cp < 0x3040) || (cp >= 0xe000 && cp < 0xf900)
        || (cp >= 0xfe10 && cp < 0xfe70) || (cp >= 0xff00 && cp < 0xff66)
        || (cp >= 0xffe0 && cp < 0x10000))
        return S_IS_SYMBOL;
    if (cp >= 0xac00 && cp < 0xd7b0)
        return S_IS_HANGUL;
    if (cp < 0x10000)
        return S_IS_CJK;
    if (cp >= 0x1f000 && cp < 0x20000)
        return S_IS_EMOJI;
    if (cp >= 0xe0000)
        return S_IS_JOIN;  //  tags (flag sequences), selectors
    return cp >= 0x20000 ? S_IS_RARE : S_IS_EMOJI;
}

//  True when the class is part of a word.
static bool
s_letter (s_class_t class)
{
    return class <= S_IS_RARE || class == S_IS_JOIN;
}

static bool
s_space (unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool
s_ascii_letter (unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

//  Cost of one ASCII word part of LEN letters, UPPER when all capitals,
//  SPACED when a space leads it.
static int64_t
s_word (size_t len, bool upper, bool spaced)
{
    if (upper && len > S_UPPER_SHORT)
        return (int64_t) len * S_UPPER_LETTER;
    int64_t cost = S_CENTI + (spaced ? 0 : S_WORD_BARE);
    if (len > S_WORD_SHORT)
        cost += (int64_t) ((len < S_WORD_LONG ? len : S_WORD_LONG) - S_WORD_SHORT) * S_WORD_EXTRA;
    if (len > S_WORD_LONG)
        cost += (int64_t) (len - S_WORD_LONG) * S_WORD_RARE;
    return cost;
}

//  Cost of the word at P[*I] (a letter), advancing *I past it. SPACED when
//  a space leads it. ASCII letters split as o200k_base splits them: at a
//  capital after a small letter, and before the last capital of a run
//  that a small letter follows (HTTPServer: HTTP, Server).
static int64_t
s_word_at (const unsigned char *p, size_t len, size_t *i, bool spaced)
{
    int64_t cost = 0;
    size_t part = 0;      //  ASCII letters in the current part
    size_t capitals = 0;  //  leading capitals of the current part
    bool lower = false;   //  the part has a small letter
    bool other = false;   //  the word has letters beyond ASCII
    int64_t script = 0;   //  their cost
    size_t alpha = 0;     //  letters of other alphabets
    while (*i < len) {
        unsigned char c = p[*i];
        if (s_ascii_letter (c)) {
            bool capital = c <= 'Z';
            if (capital && lower) {
                cost += s_word (part, false, spaced);
                spaced = false;
                part = capitals = 0;
                lower = false;
            }
            else if (!capital && !lower && capitals > 1) {
                //  HTTPServer: the capitals but the last are a word.
                cost += s_word (capitals - 1, true, spaced);
                spaced = false;
                part = 1;
                capitals = 1;
            }
            part++;
            if (capital)
                capitals++;
            else
                lower = true;
            (*i)++;
            continue;
        }
        if (c < 0x80)
            break;
        size_t at = *i;
        s_class_t class = s_class (s_next (p, len, i));
        if (!s_letter (class)) {
            *i = at;
            break;
        }
        other = true;
        if (class == S_IS_LATIN) {
            part++;
            lower = true;
            script += S_LATIN_MARK;
        }
        else if (class == S_IS_ALPHA) {
            alpha++;
            script += S_ALPHA_LETTER;
        }
        else if (class == S_IS_SCRIPT)
            script += S_SCRIPT_LETTER;
        else if (class == S_IS_CJK)
            script += S_CJK_CHAR;
        else if (class == S_IS_HANGUL)
            script += S_HANGUL_CHAR;
        else if (class == S_IS_RARE)
            script += S_CJK_RARE;
    }
    if (part)
        cost += s_word (part, !lower, spaced);
    if (alpha)
        script += S_ALPHA_WORD;
    (void) other;
    return cost + script;
}

int64_t
aigw_tokens_text (const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text;
    int64_t cost = 0;
    size_t i = 0;
    bool spaced = false;  //  one space before P[i], which a word takes along
    while (i < len) {
        unsigned char c = p[i];
        size_t next = i;
        s_class_t class = c >= 0x80 ? s_class (s_next (p, len, &next)) : S_IS_SIGN;
        if (s_ascii_letter (c) || (c >= 0x80 && s_letter (class) && class != S_IS_JOIN)) {
            cost += s_word_at (p, len, &i, spaced);
            spaced = false;
            //  A contraction ('s, 't, 're, 've, 'm, 'll, 'd) joins its word.
            if (i + 1 < len && p[i] == '\'' && s_ascii_letter (p[i + 1])) {
                size_t k = i + 1;
                while (k < len && s_ascii_letter (p[k]) && k - i <= 3)
                    k++;
                if (k - i <= 3 && (k == len || !s_ascii_letter (p[k]))) {
                    cost += S_CONTRACTION;
                    i = k;
                }
            }
        }
        else if (c >= '0' && c <= '9') {
            size_t start = i;
            while (i < len && p[i] >= '0' && p[i] <= '9')
                i++;
            cost += (int64_t) ((i - start + S_DIGITS_PER_TOKEN - 1) / S_DIGITS_PER_TOKEN) * S_CENTI;
            spaced = false;
        }
        else if (s_space (c)) {
            //  Line breaks and other whitespace alternate in pieces of a
            //  token each; the last space before a word rides with it.
            size_t pieces = 0;
            size_t last = 0;      //  length of the last piece
            bool breaks = false;  //  the last piece is line breaks
            while (i < len && s_space (p[i])) {
                bool line = p[i] == '\n' || p[i] == '\r';
                if (pieces == 0 || line != breaks) {
                    pieces++;
                    last = 0;
                    breaks = line;
                }
                last++;
                i++;
            }
            spaced = !breaks && p[i - 1] == ' ' && i < len;
            bool digit = i < len && p[i] >= '0' && p[i] <= '9';
            if (spaced && last == 1 && !digit)
                pieces--;
            else if (spaced && last > 1 && digit)
                pieces++;  //  digits take no space along
            cost += (int64_t) pieces * S_SPACE_RUN;
        }
        else {
            //  Punctuation and symbols; one mark right before a word goes
            //  with it, as a space does.
            size_t marks = 0;
            int64_t symbols = 0;
            size_t start = i;
            while (i < len) {
                unsigned char d = p[i];
                if (d < 0x80) {
                    if (s_ascii_letter (d) || (d >= '0' && d <= '9') || s_space (d))
                        break;
                    marks++;
                    i++;
                    continue;
                }
                size_t at = i;
                s_class_t class = s_class (s_next (p, len, &i));
                if (s_letter (class) && class != S_IS_JOIN) {
                    i = at;
                    break;
                }
                symbols += class == S_IS_SIGN    ? S_SYMBOL_LATIN
                           : class == S_IS_EMOJI ? S_EMOJI
                           : class == S_IS_JOIN  ? S_JOINER
                                                 : S_SYMBOL;
            }
            if (i == start) {
                //  Cannot happen (every byte has a class); keep moving.
                cost += S_CENTI;
                i++;
                continue;
            }
            bool word_follows = i < len && (s_ascii_letter (p[i]) || p[i] >= 0x80);
            if (marks == 1 && !symbols && word_follows && i - start == 1) {
                //  "(foo", ".bar": one piece, which merges less well
                //  than a space and a word.
                cost += S_MARK_WORD;
                continue;
            }
            if (marks)
                cost += marks <= S_PUNCT_SHORT
                            ? S_CENTI
                            : (int64_t) ((marks + S_PUNCT_PER_TOKEN - 1) / S_PUNCT_PER_TOKEN)
                                  * S_CENTI;
            cost += symbols;
            spaced = false;
            //  Line breaks right after punctuation join its piece.
            while (i < len && (p[i] == '\n' || p[i] == '\r'))
                i++;
        }
    }
    return (cost + S_CENTI - 1) / S_CENTI;
}

//  Request formats: the overheads the chat templates add around the text.
//  OpenAI's: 3 tokens per message plus its role, 1 per name, 3 to prime
//  the reply. Anthropic's template is not published; the same figures,
//  and its tool-use system prompt (up to 346 tokens by its docs) when the
//  request has tools.
#define S_MESSAGE_OVERHEAD 4
#define S_NAME_OVERHEAD    1
#define S_REQUEST_OVERHEAD 3
#define S_ANTHROPIC_TOOLS  346
//  Images, whose size the estimate cannot know: OpenAI's high detail at
//  1024x1024 (4 tiles of 170, plus 85), its low detail, and Anthropic's
//  largest before it scales down (1568 px a side: about 1,600 tokens).
#define S_IMAGE_OPENAI     765
#define S_IMAGE_OPENAI_LOW 85
#define S_IMAGE_ANTHROPIC  1600
//  A file or document part (PDF pages, audio) of unknown size.
#define S_FILE_PART 1000
//  Choices asked for (chat's n) at most: OpenAI's own cap.
#define S_CHOICES_MAX 128
//  Nesting followed in content and tool results; deeper is not counted
//  (jansson already caps the parse).
#define S_DEPTH_MAX 8

static int64_t s_value (json_t *value, int depth);

static bool
s_is (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

//  Tokens of a string value, 0 for anything else.
static int64_t
s_string (json_t *value)
{
    return json_is_string (value)
               ? aigw_tokens_text (json_string_value (value), json_string_length (value))
               : 0;
}

//  Tokens of a JSON value as the model reads it: strings' text, keys and
//  numbers, with a token per member for the syntax around them (tool
//  definitions, tool calls' arguments, JSON schemas).
static int64_t
s_value (json_t *value, int depth)
{
    if (!value || depth > S_DEPTH_MAX)
        return 0;
    int64_t tokens = 0;
    if (json_is_string (value))
        return s_string (value);
    if (json_is_object (value)) {
        const char *key;
        json_t *member;
        json_object_foreach (value, key, member)
            tokens += 1 + aigw_tokens_text (key, strlen (key)) + s_value (member, depth + 1);
        return tokens + 1;
    }
    if (json_is_array (value)) {
        size_t i;
        json_t *item;
        json_array_foreach (value, i, item)
            tokens += 1 + s_value (item, depth + 1);
        return tokens + 1;
    }
    if (json_is_integer (value) || json_is_real (value)) {
        char number[64];
        int n = json_is_integer (value)
                    ? snprintf (number, sizeof number, "%" JSON_INTEGER_FORMAT,
                                json_integer_value (value))
                    : snprintf (number, sizeof number, "%.17g", json_real_value (value));
        return aigw_tokens_text (number, n > 0 ? (size_t) n : 0);
    }
    return 1;  //  true, false, null
}

//  Tokens of one content part (OpenAI's or Anthropic's content blocks).
static int64_t
s_part (aigw_tokens_format_t format, json_t *part, int depth)
{
    if (json_is_string (part))
        return s_string (part);
    if (!json_is_object (part) || depth > S_DEPTH_MAX)
        return 0;
    const char *type = json_string_value (json_object_get (part, "type"));
    type = type ? type : "";
    if (s_is (type, "image_url")) {
        const char *detail
            = json_string_value (json_object_get (json_object_get (part, "image_url"), "detail"));
        return detail && s_is (detail, "low") ? S_IMAGE_OPENAI_LOW : S_IMAGE_OPENAI;
    }
    if (s_is (type, "input_image")) {
        const char *detail = json_string_value (json_object_get (part, "detail"));
        return detail && s_is (detail, "low") ? S_IMAGE_OPENAI_LOW : S_IMAGE_OPENAI;
    }
    if (s_is (type, "image"))
        return S_IMAGE_ANTHROPIC;
    if (s_is (type, "input_audio") || s_is (type, "file") || s_is (type, "document")
        || s_is (type, "input_file"))
        return S_FILE_PART + s_string (json_object_get (part, "context"))
               + s_string (json_object_get (part, "title"));
    if (s_is (type, "tool_use") || s_is (type, "server_tool_use"))
        return s_string (json_object_get (part, "name"))
               + s_value (json_object_get (part, "input"), depth + 1) + S_MESSAGE_OVERHEAD;
    if (s_is (type, "tool_result")) {
        json_t *content = json_object_get (part, "content");
        int64_t tokens = S_MESSAGE_OVERHEAD;
        if (json_is_array (content)) {
            size_t i;
            json_t *inner;
            json_array_foreach (content, i, inner)
                tokens += s_part (format, inner, depth + 1);
        }
        else
            tokens += s_string (content);
        return tokens;
    }
    //  text, thinking, refusal, and whatever else carries text.
    return s_string (json_object_get (part, "text")) + s_string (json_object_get (part, "thinking"))
           + s_string (json_object_get (part, "refusal"));
}

//  Tokens of a content value: a string, or an array of parts.
static int64_t
s_content (aigw_tokens_format_t format, json_t *content)
{
    if (!json_is_array (content))
        return s_string (content);
    int64_t tokens = 0;
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part)
        tokens += s_part (format, part, 1);
    return tokens;
}

//  Tokens of an embeddings input: a string, an array of strings, an array
//  of token ids (one each), or an array of such arrays.
static int64_t
s_input (json_t *input)
{
    if (json_is_string (input))
        return s_string (input);
    int64_t tokens = 0;
    size_t i, k;
    json_t *item, *id;
    json_array_foreach (input, i, item) {
        if (json_is_integer (item))
            tokens++;
        else if (json_is_array (item))
            json_array_foreach (item, k, id)
                tokens += json_is_integer (id) ? 1 : s_string (id);
        else
            tokens += s_string (item);
    }
    return tokens;
}

//  The prompt tokens of a chat or messages request ROOT.
static int64_t
s_prompt (aigw_tokens_format_t format, json_t *root)
{
    int64_t tokens = S_REQUEST_OVERHEAD;
    //  Anthropic's system: a string or text blocks.
    json_t *system = json_object_get (root, "system");
    if (system)
        tokens += S_MESSAGE_OVERHEAD + s_content (format, system);
    size_t i;
    json_t *message;
    json_array_foreach (json_object_get (root, "messages"), i, message) {
        tokens += S_MESSAGE_OVERHEAD + s_content (format, json_object_get (message, "content"));
        if (json_object_get (message, "name"))
            tokens += S_NAME_OVERHEAD + s_string (json_object_get (message, "name"));
        json_t *calls = json_object_get (message, "tool_calls");
        size_t k;
        json_t *call;
        json_array_foreach (calls, k, call) {
            json_t *function = json_object_get (call, "function");
            tokens += S_MESSAGE_OVERHEAD + s_string (json_object_get (function, "name"));
            //  The arguments are JSON text: their own tokens, as written.
            tokens += s_string (json_object_get (function, "arguments"));
        }
        tokens += s_string (json_object_get (message, "refusal"));
    }
    json_t *tools = json_object_get (root, "tools");
    if (json_array_size (tools)) {
        tokens += s_value (tools, 0);
        if (format == AIGW_TOKENS_MESSAGES)
            tokens += S_ANTHROPIC_TOOLS;
    }
    //  Old-style functions, and a structured output's schema: both go
    //  into the prompt.
    tokens += s_value (json_object_get (root, "functions"), 0);
    tokens
        += s_value (json_object_get (json_object_get (root, "response_format"), "json_schema"), 0);
    return tokens;
}

//  The prompt tokens of a Responses request ROOT: instructions, then the
//  input (a string, or items: messages, function calls and their outputs),
//  tools and a structured output's schema.
static int64_t
s_responses_prompt (json_t *root)
{
    int64_t tokens = S_REQUEST_OVERHEAD;
    json_t *instructions = json_object_get (root, "instructions");
    if (json_is_string (instructions))
        tokens += S_MESSAGE_OVERHEAD + s_string (instructions);
    json_t *input = json_object_get (root, "input");
    if (json_is_string (input))
        tokens += S_MESSAGE_OVERHEAD + s_string (input);
    size_t i;
    json_t *item;
    json_array_foreach (input, i, item) {
        tokens += S_MESSAGE_OVERHEAD
                  + s_content (AIGW_TOKENS_RESPONSES, json_object_get (item, "content"))
                  + s_string (json_object_get (item, "name"))
                  + s_string (json_object_get (item, "arguments"))
                  + s_content (AIGW_TOKENS_RESPONSES, json_object_get (item, "output"));
    }
    tokens += s_value (json_object_get (root, "tools"), 0);
    json_t *format = json_object_get (json_object_get (root, "text"), "format");
    tokens += s_value (json_object_get (format, "schema"), 0);
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
    if (format == AIGW_TOKENS_EMBEDDINGS)
        *prompt = s_input (json_object_get (root, "input"));
    else {
        *prompt
            = format == AIGW_TOKENS_RESPONSES ? s_responses_prompt (root) : s_prompt (format, root);
        static const char *const ceilings[]
            = {"max_completion_tokens", "max_tokens", "max_output_tokens"};
        for (size_t k = 0; k < sizeof ceilings / sizeof ceilings[0] && !*completion; k++) {
            json_t *v = json_object_get (root, ceilings[k]);
            if (json_is_integer (v) && json_integer_value (v) > 0)
                *completion = json_integer_value (v);
        }
        if (!*completion)
            *completion = default_max > 0 ? default_max : 0;
        //  Each of chat's n choices is billed its own completion.
        json_t *n = json_object_get (root, "n");
        if (format == AIGW_TOKENS_CHAT && json_is_integer (n) && json_integer_value (n) > 1) {
            json_int_t choices = json_integer_value (n);
            *completion *= choices < S_CHOICES_MAX ? choices : S_CHOICES_MAX;
        }
    }
    json_decref (root);
    return 0;
}

//  Selftest helper: the estimate of BODY in FORMAT, completion into *COMPLETION.
static int64_t
s_test_prompt (aigw_tokens_format_t format, const char *body, int64_t *completion)
{
    int64_t prompt = -1;
    int rc = aigw_tokens_estimate (format, body, strlen (body), 1000, &prompt, completion);
    assert (rc == 0);
    return prompt;
}

void
aigw_tokens_test (bool verbose)
{
    if (verbose)
        printf (" * aigw_tokens: ");
    //  Text: figures o200k_base gives, or one above (costs round up).
    assert (aigw_tokens_text ("", 0) == 0);
    assert (aigw_tokens_text ("hello world", 11) == 3);  //  o200k: 2
    assert (aigw_tokens_text (" hello world", 12) == 2);
    assert (aigw_tokens_text ("12345", 5) == 2);
    assert (aigw_tokens_text ("1234567", 7) == 3);
    assert (aigw_tokens_text ("    indented", 12) == 3);
    const char *japanese = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";  //  three characters
    assert (aigw_tokens_text (japanese, strlen (japanese)) == 3);
    //  Whitespace is never free in runs; one space before a word is.
    assert (aigw_tokens_text (" a", 2) == 1);
    assert (aigw_tokens_text ("\n\n\n", 3) == 1);
    assert (aigw_tokens_text ("a\n    b", 7) > aigw_tokens_text ("a\nb", 3));
    //  camelCase and capitals cost more than one lowercase word.
    assert (aigw_tokens_text ("getRateLimit", 12) > aigw_tokens_text ("getratelimit", 12) - 1);
    assert (aigw_tokens_text ("HTTP", 4) >= 2);
    //  Emoji cost more than a token each; broken UTF-8 still counts.
    const char *emoji = "\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80";
    assert (aigw_tokens_text (emoji, strlen (emoji)) >= 4);
    assert (aigw_tokens_text ("\xff\xfe\xe6\x97", 4) >= 2);
    assert (aigw_tokens_text ("\xe6\x97", 2) >= 1);
    //  Long input: about its words, never wildly low.
    char big[4000];
    for (size_t i = 0; i + 6 <= sizeof big; i += 6)
        memcpy (big + i, " token", 6);
    int64_t words = (int64_t) (sizeof big / 6);
    assert (aigw_tokens_text (big, words * 6) >= words);
    assert (aigw_tokens_text (big, words * 6) <= words + 1);

    //  Chat: 3 for the reply, 4 a message (role included), 1 a name.
    int64_t completion;
    assert (s_test_prompt (AIGW_TOKENS_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\" hello world\"}],"
                           "\"max_tokens\":50}",
                           &completion)
            == 3 + 4 + 2);
    assert (completion == 50);
    assert (s_test_prompt (AIGW_TOKENS_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"name\":\"ann\","
                           "\"content\":\" hello world\"}]}",
                           &completion)
            == 3 + 4 + 1 + 2 + 2);
    assert (completion == 1000);
    //  Content parts: text counted, images at their ceiling.
    assert (s_test_prompt (AIGW_TOKENS_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                           "\"text\":\" hi\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                           "\"https://x\"}}]}]}",
                           &completion)
            == 3 + 4 + 1 + 765);
    //  n choices: n completions; max_completion_tokens first.
    s_test_prompt (AIGW_TOKENS_CHAT,
                   "{\"messages\":[],\"n\":3,\"max_completion_tokens\":10,\"max_tokens\":99}",
                   &completion);
    assert (completion == 30);
    //  Tools and tool calls add their text.
    const char *bare = "{\"messages\":[{\"role\":\"user\",\"content\":\" hi\"}]}";
    const char *tools
        = "{\"messages\":[{\"role\":\"user\",\"content\":\" hi\"}],\"tools\":[{\"type\":"
          "\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"The weather "
          "in a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
          "\"string\"}}}}}]}";
    const char *calls
        = "{\"messages\":[{\"role\":\"user\",\"content\":\" hi\"},{\"role\":\"assistant\","
          "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
          "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]"
          "},"
          "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\" sunny\"}]}";
    int64_t base = s_test_prompt (AIGW_TOKENS_CHAT, bare, &completion);
    assert (s_test_prompt (AIGW_TOKENS_CHAT, tools, &completion) >= base + 20);
    assert (s_test_prompt (AIGW_TOKENS_CHAT, calls, &completion) >= base + 4 + 4 + 6 + 4 + 1);
    //  Anthropic: system (string or blocks), tool_use, tool_result, and the
    //  tool-use system prompt.
    int64_t plain = s_test_prompt (
        AIGW_TOKENS_MESSAGES,
        "{\"system\":\" be brief\",\"messages\":[{\"role\":\"user\",\"content\":\" hi\"}]}",
        &completion);
    assert (plain == 3 + (4 + 2) + (4 + 1));
    assert (s_test_prompt (AIGW_TOKENS_MESSAGES,
                           "{\"system\":[{\"type\":\"text\",\"text\":\" be brief\"}],"
                           "\"messages\":[{\"role\":\"user\",\"content\":\" hi\"}]}",
                           &completion)
            == plain);
    int64_t blocks = s_test_prompt (
        AIGW_TOKENS_MESSAGES,
        "{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\","
        "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]},{\"role\":\"user\","
        "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":[{\"type\":"
        "\"text\",\"text\":\" sunny\"}]}]}],\"tools\":[{\"name\":\"get_weather\","
        "\"input_schema\":{\"type\":\"object\"}}]}",
        &completion);
    assert (blocks >= 3 + 4 + 4 + 3 + 4 + 4 + 1 + 346);
    //  Responses: the same prompt as instructions and a string input, or
    //  as message items; max_output_tokens is the ceiling.
    int64_t responses = s_test_prompt (
        AIGW_TOKENS_RESPONSES,
        "{\"instructions\":\" be brief\",\"input\":\" hi\",\"max_output_tokens\":7}", &completion);
    assert (responses == plain && completion == 7);
    assert (s_test_prompt (AIGW_TOKENS_RESPONSES,
                           "{\"instructions\":\" be brief\",\"input\":[{\"role\":\"user\","
                           "\"content\":[{\"type\":\"input_text\",\"text\":\" hi\"}]}]}",
                           &completion)
            == plain);
    //  Embeddings: strings, token ids one each, arrays of ids; no completion.
    assert (s_test_prompt (AIGW_TOKENS_EMBEDDINGS, "{\"input\":\" hello world\"}", &completion)
            == 2);
    assert (completion == 0);
    assert (s_test_prompt (AIGW_TOKENS_EMBEDDINGS, "{\"input\":[\" a b\",\" c\"]}", &completion)
            == 3);
    assert (s_test_prompt (AIGW_TOKENS_EMBEDDINGS, "{\"input\":[1,2,3,4]}", &completion) == 4);
    assert (s_test_prompt (AIGW_TOKENS_EMBEDDINGS, "{\"input\":[[1,2],[3]]}", &completion) == 3);
    //  Not an object: -1, both 0.
    int64_t prompt = 7;
    completion = 7;
    assert (aigw_tokens_estimate (AIGW_TOKENS_CHAT, "[1]", 3, 10, &prompt, &completion) == -1);
    assert (prompt == 0 && completion == 0);
    assert (aigw_tokens_estimate (AIGW_TOKENS_CHAT, NULL, 0, 10, &prompt, &completion) == -1);
    if (verbose)
        printf ("OK\n");
}
