/*  aigw_detect: the guardrail's detectors, compiled once per policy and
    run over a text, or over a stream as a window the caller slides.

    Detectors and their rules (names are stable: policies, verdicts,
    metrics and error answers use them):
      pii               email, phone, card (Luhn), iban (mod 97, length
                        by country), ssn (US, valid ranges), ipv4, ipv6
                        (parsed as inet_pton does)
      secrets           openai_key, anthropic_key, google_api_key,
                        aws_access_key_id, aws_secret_key, github_token,
                        slack_token, stripe_key, jwt, private_key,
                        connection_password, password_assignment
      prompt_injection  a phrase rule each (aigw_inject.c's table:
                        ignore_previous, do_anything_now, ...), in the
                        families override, roleplay, extraction,
                        developer_mode, delimiter, encoding
      patterns          a policy's regex and keyword lists, one rule each
      size              max_chars, max_tokens (aigw_detect_size)
    A match is {detector, rule, start, end, score} with a typed
    placeholder for redaction ([EMAIL], [PHONE], [CARD], ...).

    Streams. aigw_detect_scan takes a window of the stream: WIN->from
    bytes of left context already released (a match cannot start in it;
    it only tells where a word begins), then text not yet released.
    With WIN->more set (the stream goes on), a match within
    AIGW_DETECT_LOOKAHEAD bytes of the window's end is held (it may grow
    or turn out not to be one) and reported by a later window, and
    result->release says how far the caller may release: never into the
    last aigw_detect_holdback () bytes, nor into a held match or a word
    that runs into them. The next window starts AIGW_DETECT_CONTEXT bytes
    (or fewer) before the release point and sets WIN->seen to what of it
    the previous window saw, so nothing is reported twice. The same text
    in one piece or in windows gives the same matches. */
#ifndef AIGW_DETECT_H_INCLUDED
#define AIGW_DETECT_H_INCLUDED

#include "aigw_patterns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

//  Detector bits for aigw_detect_config_t.detectors.
#define AIGW_DETECT_PII       1
#define AIGW_DETECT_SECRETS   2
#define AIGW_DETECT_INJECTION 4
//  PII, secrets and injection: the default policy's set.
#define AIGW_DETECT_DEFAULT (AIGW_DETECT_PII | AIGW_DETECT_SECRETS | AIGW_DETECT_INJECTION)
//  Injection score at or over which the text is an injection.
#define AIGW_DETECT_INJECTION_THRESHOLD 0.5
//  Longest match of a built-in rule, bytes (an email's 254, a JWT's cap).
#define AIGW_DETECT_MATCH_MAX 1024
//  Longest match a built-in rule makes across whitespace (an IBAN or a
//  phone written in groups, an injection phrase). A stream holds words
//  back whole (up to AIGW_DETECT_WORD_MAX) and an open PEM block until its
//  END line, so this, not the longest match, sets the hold-back.
#define AIGW_DETECT_SPAN_MAX 128
//  Right context a rule may read past its match (a version's next ".5").
#define AIGW_DETECT_LOOKAHEAD 16
//  Left context a rule may read before its match (the keyword before an
//  AWS secret key, a mention before an injection phrase).
#define AIGW_DETECT_CONTEXT 128
//  Longest word a stream holds back whole; a longer one is released.
#define AIGW_DETECT_WORD_MAX 8192

//  What a policy turns on.
typedef struct {
    unsigned detectors;                     //  AIGW_DETECT_* bits
    double injection_threshold;             //  0: AIGW_DETECT_INJECTION_THRESHOLD
    const aigw_patterns_entry_t *patterns;  //  the policy's regex and keyword lists
    size_t pattern_count;                   //  entries in patterns
    int64_t max_chars;                      //  size cap in characters; 0: none
    int64_t max_tokens;                     //  size cap in estimated tokens; 0: none
    size_t holdback;  //  stream hold-back, bytes; 0: the longest match (see below)
} aigw_detect_config_t;

//  One match; the strings are static (or the config's pattern names).
typedef struct {
    const char *detector;     //  "pii", "secrets", "prompt_injection", "patterns"
    const char *rule;         //  rule name within the detector
    const char *placeholder;  //  typed placeholder for redaction: "[EMAIL]"
    size_t start;             //  first byte in the scanned text
    size_t end;               //  past the last byte
    double score;             //  1 for a checked match; an injection phrase's weight
} aigw_detect_match_t;

//  A stream's window (see the header comment); NULL for a whole text.
typedef struct {
    size_t from;  //  bytes of released left context at the start
    size_t seen;  //  bytes of this window the previous window scanned
    bool more;    //  the stream goes on after this window
} aigw_detect_window_t;

//  What one scan found. The array belongs to the engine and stays valid
//  until its next scan.
typedef struct {
    const aigw_detect_match_t *matches;  //  in order of start
    size_t count;                        //  entries in matches
    double injection_score;              //  the injection phrases combined, 0..1
    bool injection;                      //  injection_score reached the threshold
    size_t release;                      //  stream: bytes the caller may release
} aigw_detect_result_t;

//  What aigw_detect_size counted.
typedef struct {
    int64_t chars;     //  characters (code points) over every text
    int64_t tokens;    //  estimated tokens over every text
    const char *rule;  //  "max_chars" or "max_tokens" when over a cap, else NULL
} aigw_detect_size_t;

typedef struct _aigw_detect_t aigw_detect_t;

//  Compile CONFIG (copied; pattern names and texts must outlive the
//  engine). NULL with the reason in ERR when a pattern does not compile.
//  Caller owns it. One engine per thread: it keeps the scan's scratch.
aigw_detect_t *aigw_detect_new (const aigw_detect_config_t *config, char *err, size_t err_size);

//  Destroy; safe twice, nulls the caller's pointer.
void aigw_detect_destroy (aigw_detect_t **self_p);

//  Scan LEN bytes of TEXT (any bytes) with every detector the config turns
//  on; WIN is NULL for a whole text. Returns 0, or -1 when out of memory
//  or a backend failed (RESULT then empty).
int aigw_detect_scan (aigw_detect_t *self, const char *text, size_t len,
                      const aigw_detect_window_t *win, aigw_detect_result_t *result);

//  Bytes a stream must hold back past the release point: the longest
//  match any enabled detector can make, plus the lookahead.
size_t aigw_detect_holdback (const aigw_detect_t *self);

//  Count characters and estimated tokens (aigw_tokens_text) over COUNT
//  texts (every text the model will see) against the config's caps.
//  Returns 0 within them, -1 over one (OUT->rule names it).
int aigw_detect_size (const aigw_detect_t *self, const char *const *texts, const size_t *lens,
                      size_t count, aigw_detect_size_t *out);

//  Combine an injection score with one more rule's weight (1 - (1-a)(1-b)).
//  A text's score combines the highest weight of each phrase rule found; a
//  stream keeps each rule's highest over its windows and combines them
//  the same way, which gives the score of the whole text.
double aigw_detect_score_add (double score, double weight);

//  Write TEXT with each match replaced by its placeholder into OUT (SIZE
//  bytes with the NUL); overlapping matches make one placeholder (the
//  first's). Returns the length written, or -1 when OUT is too small.
ssize_t aigw_detect_redact (const char *text, size_t len, const aigw_detect_result_t *result,
                            char *out, size_t size);

void aigw_detect_test (bool verbose);

#endif
