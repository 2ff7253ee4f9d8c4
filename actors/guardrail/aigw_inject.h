/*  aigw_inject: prompt-injection phrases, found in a normalized copy of
    the text so that spacing, case and lookalike characters do not hide
    them.

    Normalizing folds case, drops zero-width characters and soft hyphens,
    maps fullwidth forms, mathematical letters, Latin accents and the
    Cyrillic and Greek letters that look Latin to ASCII, reads digits and
    @ $ inside words as the letters they imitate (1gn0re), joins words
    spelt one letter at a time (i g n o r e), and splits the rest into
    words. Phrases are families of word sequences with bounded gaps, in
    English, German, French and Spanish, plus chat-template delimiters
    found in the raw text. Each hit carries a weight; a hit preceded by
    words that mention rather than use (an example, a quote, a negation)
    counts less. The caller (aigw_detect) combines the weights. */
#ifndef AIGW_INJECT_H_INCLUDED
#define AIGW_INJECT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Longest span of one hit, in bytes of the original text: a phrase that
//  would run longer is not matched (a stream's hold-back covers it).
#define AIGW_INJECT_SPAN_MAX 240
//  Words before a hit searched for mention markers.
#define AIGW_INJECT_MENTION_WORDS 6
//  What a mention marker leaves of a hit's weight.
#define AIGW_INJECT_MENTION_FACTOR 0.35

typedef struct _aigw_inject_t aigw_inject_t;

//  One hit: FAMILY ("override", "roleplay", "extraction",
//  "developer_mode", "delimiter", "encoding"), a rule name within it, the
//  span [START, END) in the original text, and the weight in (0, 1].
typedef int (aigw_inject_fn) (const char *family, const char *rule, size_t start, size_t end,
                              double weight, void *arg);

//  The compiled phrase table with its scratch. Caller owns it; one per
//  thread. NULL on allocation failure.
aigw_inject_t *aigw_inject_new (void);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_inject_destroy (aigw_inject_t **self_p);

//  Find every hit in LEN bytes of TEXT (any bytes) and call FN for each,
//  in order of start; FN returns non-zero to stop. Returns 0, or -1 when
//  out of memory.
int aigw_inject_scan (aigw_inject_t *self, const char *text, size_t len, aigw_inject_fn *fn,
                      void *arg);

//  The normalized words of TEXT, space-separated, into OUT (at most SIZE
//  bytes with the NUL): for tests and for explaining a verdict.
void aigw_inject_normalize (aigw_inject_t *self, const char *text, size_t len, char *out,
                            size_t size);

void aigw_inject_test (bool verbose);

#endif
