/*  aigw_words: the semantic cache's tokenizer (see the header). One pass,
    bounded by the text's length; every branch advances by at least a byte. */
#include "aigw_words.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

//  What a position in the text holds.
typedef enum { S_SPACE, S_END, S_APOS, S_DIGIT, S_LETTER, S_SYMBOL, S_PUNCT } s_kind_t;

//  The scan's state.
typedef struct {
    const unsigned char *text;  //  the text
    size_t len;                 //  its length
    unsigned options;           //  AIGW_WORDS_*
    aigw_word_t *out;           //  where words go
    size_t max;                 //  room at OUT
    size_t count;               //  words written
    size_t total;               //  words seen
    bool sentence;              //  the next word starts a sentence
} s_scan_t;

//  The kind of the character at POS and its length in bytes (>= 1).
static s_kind_t
s_kind (const s_scan_t *s, size_t pos, size_t *size_p)
{
    const unsigned char *p = s->text + pos;
    size_t left = s->len - pos;
    unsigned char c = p[0];
    *size_p = 1;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v')
        return S_SPACE;
    if (c == '\n' || c == '.' || c == '!' || c == '?')
        return S_END;
    if (c == '\'')
        return S_APOS;
    if (c >= '0' && c <= '9')
        return S_DIGIT;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return S_LETTER;
    if (c < 0x80)
        return strchr ("$%+-*/=<>^#@&~|", c) && c ? S_SYMBOL : S_PUNCT;
    //  UTF-8: the few non-letters that prompts carry; any other byte at
    //  or above 0x80 (a letter, or invalid input) belongs to a word.
    if (c == 0xC2 && left >= 2) {
        *size_p = 2;
        if (p[1] == 0xA0)
            return S_SPACE;  //  no-break space
        if (p[1] == 0xA3 || p[1] == 0xA5)
            return S_SYMBOL;  //  £ ¥
        if (p[1] == 0xAB || p[1] == 0xBB || p[1] == 0xBF || p[1] == 0xA1)
            return S_PUNCT;  //  « » ¿ ¡
        *size_p = 1;
    }
    if (c == 0xE2 && left >= 3) {
        *size_p = 3;
        if (p[1] == 0x80 && (p[2] == 0x98 || p[2] == 0x99))
            return S_APOS;  //  ‘ ’
        if (p[1] == 0x80 && (p[2] == 0x9C || p[2] == 0x9D || p[2] == 0x93 || p[2] == 0x94))
            return S_PUNCT;  //  “ ” – —
        if (p[1] == 0x80 && p[2] == 0xA6)
            return S_END;  //  …
        if (p[1] == 0x82 && p[2] == 0xAC)
            return S_SYMBOL;  //  €
        *size_p = 1;
    }
    return S_LETTER;
}

static bool
s_digit_at (const s_scan_t *s, size_t pos)
{
    return pos < s->len && s->text[pos] >= '0' && s->text[pos] <= '9';
}

//  A thousands group at POS: ",ddd" and no fourth digit.
static bool
s_group (const s_scan_t *s, size_t pos)
{
    return s_digit_at (s, pos + 1) && s_digit_at (s, pos + 2) && s_digit_at (s, pos + 3)
           && !s_digit_at (s, pos + 4);
}

//  Record a word [START, END) with normal form NORM (LEN bytes).
static void
s_emit (s_scan_t *s, size_t start, size_t end, const char *norm, size_t len, unsigned flags)
{
    s->total++;
    if (s->sentence)
        flags |= AIGW_WORD_SENTENCE;
    s->sentence = false;
    if (s->count == s->max)
        return;
    aigw_word_t *w = &s->out[s->count++];
    w->start = start;
    w->end = end;
    if (len > AIGW_WORDS_LEN_MAX) {
        len = AIGW_WORDS_LEN_MAX;
        flags |= AIGW_WORD_CUT;
    }
    memcpy (w->norm, norm, len);
    w->norm[len] = 0;
    w->norm_len = len;
    w->flags = flags;
}

//  Emit the letters [START, END) as a word, lowercased, with case flags.
static void
s_emit_letters (s_scan_t *s, size_t start, size_t end, unsigned extra)
{
    char norm[AIGW_WORDS_LEN_MAX + 1];
    size_t n = 0, upper = 0, lower = 0;
    for (size_t i = start; i < end; i++) {
        unsigned char c = s->text[i];
        if (c >= 'A' && c <= 'Z') {
            upper++;
            c = (unsigned char) (c - 'A' + 'a');
        }
        else if (c >= 'a' && c <= 'z')
            lower++;
        if (n < AIGW_WORDS_LEN_MAX)
            norm[n++] = (char) c;
    }
    unsigned flags = extra;
    unsigned char first = s->text[start];
    if (first >= 'A' && first <= 'Z')
        flags |= AIGW_WORD_CAPITAL;
    if (upper >= 2 && lower == 0)
        flags |= AIGW_WORD_ALLCAPS;
    if (end - start > AIGW_WORDS_LEN_MAX)
        flags |= AIGW_WORD_CUT;
    s_emit (s, start, end, norm, n, flags);
}

static bool
s_is (const s_scan_t *s, size_t start, size_t end, const char *word)
{
    size_t n = strlen (word);
    if (end - start != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s->text[start + i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char) (c - 'A' + 'a');
        if (c != (unsigned char) word[i])
            return false;
    }
    return true;
}

//  A letter run [START, END), then an apostrophe of SIZE bytes at END and
//  ASCII letters [SUF, SUF_END): open the contraction. Returns false when
//  it is none, and the caller emits the parts as they are.
static bool
s_contraction (s_scan_t *s, size_t start, size_t end, size_t suf, size_t suf_end)
{
    //  "n't": the stem without its n, three irregular.
    if (s_is (s, suf, suf_end, "t") && end - start >= 2
        && (s->text[end - 1] == 'n' || s->text[end - 1] == 'N')) {
        static const char *irregular[][2] = {{"ca", "can"}, {"wo", "will"}, {"sha", "shall"}};
        bool done = false;
        for (size_t i = 0; i < 3 && !done; i++)
            if (s_is (s, start, end - 1, irregular[i][0])) {
                unsigned flags
                    = s->text[start] >= 'A' && s->text[start] <= 'Z' ? AIGW_WORD_CAPITAL : 0;
                s_emit (s, start, end - 1, irregular[i][1], strlen (irregular[i][1]), flags);
                done = true;
            }
        if (!done)
            s_emit_letters (s, start, end - 1, 0);
        s_emit (s, end - 1, suf_end, "not", 3, AIGW_WORD_OPENED);
        return true;
    }
    static const char *forms[][2]
        = {{"re", "are"}, {"ve", "have"}, {"ll", "will"}, {"d", "would"}, {"m", "am"}};
    for (size_t i = 0; i < 5; i++)
        if (s_is (s, suf, suf_end, forms[i][0])) {
            s_emit_letters (s, start, end, 0);
            s_emit (s, suf, suf_end, forms[i][1], strlen (forms[i][1]), AIGW_WORD_OPENED);
            return true;
        }
    if (s_is (s, suf, suf_end, "s")) {
        //  "it's" is "it is"; "Anna's" is Anna, possessive dropped.
        static const char *subjects[] = {"it",  "that", "what",  "there", "here", "he",
                                         "she", "who",  "where", "how",   "when", "why"};
        s_emit_letters (s, start, end, 0);
        for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++)
            if (s_is (s, start, end, subjects[i])) {
                s_emit (s, suf, suf_end, "is", 2, AIGW_WORD_OPENED);
                break;
            }
        return true;
    }
    return false;
}

size_t
aigw_words_split (const char *text, size_t len, unsigned options, aigw_word_t *out, size_t max,
                  size_t *total_p)
{
    s_scan_t s = {(const unsigned char *) text, len, options, out, max, 0, 0, true};
    size_t pos = 0;
    while (pos < len) {
        size_t size;
        s_kind_t kind = s_kind (&s, pos, &size);
        if (kind == S_SPACE || kind == S_PUNCT || kind == S_APOS) {
            pos += size;
            continue;
        }
        if (kind == S_END) {
            //  A '.' between digits belongs to the number (read below).
            s.sentence = true;
            pos += size;
            continue;
        }
        if (kind == S_SYMBOL) {
            if (options & AIGW_WORDS_SYMBOLS)
                s_emit (&s, pos, pos + size, text + pos, size, AIGW_WORD_SYMBOL);
            else
                s.sentence = false;
            pos += size;
            continue;
        }
        if (kind == S_DIGIT) {
            //  Digits, thousands groups ("1,000") joined, one decimal part.
            char norm[AIGW_WORDS_LEN_MAX + 1];
            size_t n = 0, start = pos;
            bool dot = false;
            while (pos < len) {
                unsigned char c = s.text[pos];
                if (c >= '0' && c <= '9') {
                    if (n < AIGW_WORDS_LEN_MAX)
                        norm[n++] = (char) c;
                    pos++;
                }
                else if (c == ',' && !dot && s_group (&s, pos))
                    pos++;
                else if (c == '.' && !dot && pos + 1 < len && s.text[pos + 1] >= '0'
                         && s.text[pos + 1] <= '9') {
                    dot = true;
                    if (n < AIGW_WORDS_LEN_MAX)
                        norm[n++] = '.';
                    pos++;
                }
                else
                    break;
            }
            s_emit (&s, start, pos, norm, n, AIGW_WORD_DIGITS);
            continue;
        }
        //  Letters.
        size_t start = pos;
        while (pos < len && s_kind (&s, pos, &size) == S_LETTER)
            pos += size;
        size_t end = pos;
        if (pos < len && s_kind (&s, pos, &size) == S_APOS) {
            size_t suf = pos + size, suf_end = suf;
            while (suf_end < len
                   && ((s.text[suf_end] >= 'a' && s.text[suf_end] <= 'z')
                       || (s.text[suf_end] >= 'A' && s.text[suf_end] <= 'Z')))
                suf_end++;
            if (suf_end > suf && s_contraction (&s, start, end, suf, suf_end)) {
                pos = suf_end;
                continue;
            }
        }
        s_emit_letters (&s, start, end, 0);
    }
    if (total_p)
        *total_p = s.total;
    return s.count;
}

//  The normalized words of TEXT joined by spaces, for the selftest.
static const char *
s_test_join (const char *text, unsigned options)
{
    static char joined[512];
    aigw_word_t words[32];
    size_t n = aigw_words_split (text, strlen (text), options, words, 32, NULL);
    joined[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat (joined, " ");
        strcat (joined, words[i].norm);
    }
    return joined;
}

void
aigw_words_test (bool verbose)
{
    const char *cases[][2] = {
        {"Turn ON the lights!", "turn on the lights"},
        {"don't DOESN'T can't won't I'm we're it's Anna's", "do not does not can not will not i am "
                                                            "we are it is anna"},
        {"gpt4 costs $1,000.50 or 3.5%", "gpt 4 costs $ 1000.50 or 3.5 %"},
        {"1,00 12,345,678 1,2345", "1 00 12345678 1 2345"},
        {"caf\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d it\xe2\x80\x99s", "caf\xc3\xa9 quoted it is"},
        {"5\xe2\x82\xac vs \xc2\xa3"
         "5",
         "5 \xe2\x82\xac vs \xc2\xa3 5"},
        {"x=y+1; a<b", "x = y + 1 a < b"},
        {"end.", "end"},
        {"3.", "3"},
        {"'quoted' o'clock", "quoted o clock"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = s_test_join (cases[i][0], AIGW_WORDS_SYMBOLS);
        if (verbose || strcmp (got, cases[i][1]))
            fprintf (stderr, "words: '%s' -> '%s'\n", cases[i][0], got);
        assert (strcmp (got, cases[i][1]) == 0);
    }
    //  Without symbols.
    assert (strcmp (s_test_join ("pay $5 + tax", 0), "pay 5 tax") == 0);

    //  Flags: capitals not at a sentence start, all capitals, numbers.
    aigw_word_t w[16];
    const char *text = "Is Paris in the EU? Yes, ask NASA about 42.";
    size_t total;
    size_t n = aigw_words_split (text, strlen (text), 0, w, 16, &total);
    assert (n == 10 && total == 10);
    assert (w[0].flags & AIGW_WORD_SENTENCE && w[0].flags & AIGW_WORD_CAPITAL);
    assert (!(w[1].flags & AIGW_WORD_SENTENCE) && w[1].flags & AIGW_WORD_CAPITAL);
    assert (w[4].flags & AIGW_WORD_ALLCAPS);
    assert (w[5].flags & AIGW_WORD_SENTENCE);
    assert (w[7].flags & AIGW_WORD_ALLCAPS);
    assert (w[9].flags & AIGW_WORD_DIGITS && strcmp (w[9].norm, "42") == 0);
    assert (text[w[1].start] == 'P' && w[1].end - w[1].start == 5);
    //  A cap on the count: the total still says how many.
    n = aigw_words_split (text, strlen (text), 0, w, 3, &total);
    assert (n == 3 && total == 10);
    //  Long words are cut and flagged; odd bytes never read past the end.
    char longword[200];
    memset (longword, 'a', sizeof longword);
    n = aigw_words_split (longword, sizeof longword, 0, w, 16, NULL);
    assert (n == 1 && w[0].norm_len == AIGW_WORDS_LEN_MAX && w[0].flags & AIGW_WORD_CUT);
    const char odd[] = {'a', (char) 0xE2, (char) 0x80};
    n = aigw_words_split (odd, sizeof odd, 0, w, 16, NULL);
    assert (n == 1 && w[0].end == 3);
    n = aigw_words_split ("don'", 4, 0, w, 16, NULL);
    assert (n == 1 && strcmp (w[0].norm, "don") == 0);
    n = aigw_words_split ("1,", 2, 0, w, 16, NULL);
    assert (n == 1 && strcmp (w[0].norm, "1") == 0);
}
