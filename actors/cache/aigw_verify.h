/*  aigw_verify: decides whether two prompts whose vectors are close mean
    the same, before the semantic cache answers one with the other's
    answer. Similarity alone blurs what changes an answer ("turn on" and
    "turn off" sit close in any embedding space); this check looks at the
    words. A pair passes only when every difference keeps the meaning:

    - politeness and filler (please, thanks, could you, just), articles;
    - digits against number words ("2" and "two", "twenty five" and "25");
    - spelling: British and American forms, plurals, and a typo (a small
      edit distance where one of the two words is rare or unknown);
    - synonyms, from a curated table, or from the word vectors when two
      words are closer than SYNONYM_MIN (GloVe puts co-hyponyms such as
      cat and dog at 0.88, above many true synonyms: the bar is high and
      the table carries the common ones);
    - word order that keeps roles: a phrase that moves with its
      preposition ("in Python, how do I..." and "how do I ... in Python").

    Anything else fails, with the kind of difference: a number, a unit or
    an operator; a named entity (capitalized not first in its sentence,
    all capitals); negation (not, no, never, n't, without, ...); an
    antonym pair (on/off, increase/decrease, buy/sell, ...); the direction
    of a relation (a bare word that moved: "USD to EUR" and "EUR to USD",
    "does A cause B" and "does B cause A"); the asked-for format, language
    or audience (JSON/YAML, French/English, a child/an expert, list/
    paragraph); any other word that differs. Prompts longer than
    AIGW_VERIFY_WORDS_MAX words are not verified (no semantic hit). */
#ifndef AIGW_VERIFY_H_INCLUDED
#define AIGW_VERIFY_H_INCLUDED

#include "aigw_vectors.h"

#include <stdbool.h>
#include <stddef.h>

//  Most words of one prompt the verifier compares.
#define AIGW_VERIFY_WORDS_MAX 256
//  Default cosine above which two differing words count as synonyms
//  (chosen on tests/fixtures/semantic/pairs.jsonl: README, Issue 13).
#define AIGW_VERIFY_SYNONYM_MIN 0.90
//  A word ranked past this (or unknown) may be a typo of a commoner one.
#define AIGW_VERIFY_RARE_RANK 30000

//  What decided the verdict.
typedef enum {
    AIGW_VERIFY_SAME = 0,   //  meaning kept: the pair may share an answer
    AIGW_VERIFY_NUMBER,     //  numbers, units or operators differ
    AIGW_VERIFY_ENTITY,     //  a named entity differs
    AIGW_VERIFY_NEGATION,   //  one is negated, the other not
    AIGW_VERIFY_ANTONYM,    //  an antonym pair
    AIGW_VERIFY_DIRECTION,  //  the same words in other roles
    AIGW_VERIFY_FORMAT,     //  format, language or audience
    AIGW_VERIFY_CONTENT,    //  another word differs
    AIGW_VERIFY_LENGTH      //  too long to verify
} aigw_verify_verdict_t;

//  A verdict and what it rests on, for logs and the labelled set's report.
typedef struct {
    aigw_verify_verdict_t verdict;  //  the kind
    char detail[160];               //  the words, e.g. "on / off"
} aigw_verify_result_t;

typedef struct _aigw_verify_t aigw_verify_t;

//  A verifier. VECTORS (borrowed, may be NULL: then only the table gives
//  synonyms and every unknown word is rare) serve word similarity and
//  frequency; SYNONYM_MIN is the cosine bar for vector synonyms (> 1
//  turns them off). One verifier per thread: it keeps scratch space.
aigw_verify_t *aigw_verify_new (const aigw_vectors_t *vectors, double synonym_min);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_verify_destroy (aigw_verify_t **self_p);

//  True when prompt A (ALEN bytes) and B (BLEN) mean the same; RESULT
//  (may be NULL) says why not.
bool aigw_verify_same (aigw_verify_t *self, const char *a, size_t alen, const char *b, size_t blen,
                       aigw_verify_result_t *result);

//  The verdict's name: "same", "number", "entity", "negation", "antonym",
//  "direction", "format", "content", "length".
const char *aigw_verify_verdict_name (aigw_verify_verdict_t verdict);

void aigw_verify_test (bool verbose);

#endif
