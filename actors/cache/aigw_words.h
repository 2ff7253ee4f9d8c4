/*  aigw_words: the tokenizer the semantic cache embeds and verifies with.
    Words are runs of letters (ASCII, and any UTF-8 character that is not
    punctuation, so "café" is one word), lowercased (ASCII); digits are
    words of their own ("gpt4" is "gpt" and "4"; "1,000" is "1000" and
    "3.5" one number). English contractions are opened: "don't" gives "do"
    and "not", "can't" "can" and "not", "it's" "it" and "is"; a possessive
    's is dropped. Symbols that change a meaning ($ € £ ¥ % + - * / = < >
    ^ # @ & ~ |) are words only when asked for (the verifier wants them,
    the embedder does not). Every word keeps where it was and what its
    case said: capitalized, all capitals, first in its sentence. */
#ifndef AIGW_WORDS_H_INCLUDED
#define AIGW_WORDS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Longest normalized word kept; longer ones are cut (and flagged).
#define AIGW_WORDS_LEN_MAX 63

//  Word flags.
#define AIGW_WORD_DIGITS   0x01  //  a number: digits, maybe a '.' inside
#define AIGW_WORD_CAPITAL  0x02  //  starts with an ASCII capital
#define AIGW_WORD_ALLCAPS  0x04  //  two or more letters, all capitals
#define AIGW_WORD_SENTENCE 0x08  //  first word of its sentence
#define AIGW_WORD_SYMBOL   0x10  //  a symbol ($, %, +, ...)
#define AIGW_WORD_CUT      0x20  //  longer than AIGW_WORDS_LEN_MAX
#define AIGW_WORD_OPENED   0x40  //  came from a contraction ("n't" -> "not")

//  Options for aigw_words_split.
#define AIGW_WORDS_SYMBOLS 0x01  //  emit symbols as words

//  One word.
typedef struct {
    size_t start;                       //  byte offset in the text
    size_t end;                         //  end offset in the text
    char norm[AIGW_WORDS_LEN_MAX + 1];  //  normalized form, NUL-terminated
    size_t norm_len;                    //  its length
    unsigned flags;                     //  AIGW_WORD_*
} aigw_word_t;

//  Split LEN bytes of TEXT into at most MAX words at OUT. Returns how many
//  were written; *TOTAL_P (when not NULL) gets how many the text holds, so
//  a caller sees when MAX cut it. Never reads past LEN; any bytes are fine.
size_t aigw_words_split (const char *text, size_t len, unsigned options, aigw_word_t *out,
                         size_t max, size_t *total_p);

void aigw_words_test (bool verbose);

#endif
