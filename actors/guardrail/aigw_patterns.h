/*  aigw_patterns: a policy's regex and keyword lists, compiled once into
    one set and matched in one pass over a text.

    Backend: Hyperscan's API (Debian 12: libvectorscan-dev, or
    libhyperscan-dev on x86-64) when the build finds libhs, else PCRE2
    with JIT. Why Hyperscan first: it compiles every pattern into one
    automaton and reports every match of every pattern in a single scan,
    so the cost of a policy grows with the text, not with the number of
    entries; PCRE2 matches one pattern per pass (an alternation stops at
    the first alternative that matches, so it cannot report them all).
    The PCRE2 fallback keeps the build and the semantics where libhs is
    missing, at N passes. Hyperscan refuses back-references and
    look-arounds: aigw_patterns_new says which pattern, so a policy is
    checked where it is written. Matching is by bytes (no UTF-8 mode: a
    scanned text may be any bytes); caseless is ASCII caseless. */
#ifndef AIGW_PATTERNS_H_INCLUDED
#define AIGW_PATTERNS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Most entries one set holds (a policy's lists together).
#define AIGW_PATTERNS_MAX 1024

//  One entry of a list: a regex or a literal keyword.
typedef struct {
    const char *name;     //  rule name reported with each match
    const char *pattern;  //  regex, or the keyword itself when literal
    bool literal;         //  keyword: PATTERN is matched as plain text
    bool caseless;        //  ASCII case-insensitive
} aigw_patterns_entry_t;

typedef struct _aigw_patterns_t aigw_patterns_t;

//  Called for each match: entry index ID at [START, END) of the text.
//  Return 0 to go on, non-zero to stop the scan.
typedef int (aigw_patterns_fn) (unsigned id, size_t start, size_t end, void *arg);

//  Compile COUNT entries into one set. Returns NULL, with the reason and
//  the entry's name in ERR, when one does not compile. Caller owns the set.
aigw_patterns_t *aigw_patterns_new (const aigw_patterns_entry_t *entries, size_t count, char *err,
                                    size_t err_size);

//  Destroy the set; safe twice, nulls the caller's pointer.
void aigw_patterns_destroy (aigw_patterns_t **self_p);

//  Match every entry against LEN bytes of TEXT in one pass (Hyperscan)
//  and call FN for each match, leftmost start first per entry; overlapping
//  matches of one entry come as one. The set keeps per-scan scratch: one
//  set per thread. Returns 0, or -1 when the backend failed.
int aigw_patterns_scan (aigw_patterns_t *self, const char *text, size_t len, aigw_patterns_fn *fn,
                        void *arg);

//  Longest match any entry can make, in bytes, or 0 when one is unbounded
//  (a stream must then hold back its own figure). PCRE2: always 0.
size_t aigw_patterns_max_width (const aigw_patterns_t *self);

//  The backend compiled in: "hyperscan" or "pcre2".
const char *aigw_patterns_backend (void);

void aigw_patterns_test (bool verbose);

#endif
