/*  aigw_patterns: a policy's regex and keyword lists in one set (see the
    header for the choice of backend). */
#include "aigw_patterns.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AIGW_HAVE_HYPERSCAN
#include <hs.h>
#else
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

//  One entry's match being grown while Hyperscan reports its end offsets.
typedef struct {
    size_t start;  //  leftmost start of the span
    size_t end;    //  furthest end seen so far
    bool open;     //  a span is being grown
} s_span_t;

struct _aigw_patterns_t {
    size_t count;      //  entries in the set
    size_t max_width;  //  longest match, bytes; 0 when unbounded
    s_span_t *spans;   //  per entry, the span being grown (Hyperscan)
#ifdef AIGW_HAVE_HYPERSCAN
    hs_database_t *db;      //  every entry in one block-mode database
    hs_scratch_t *scratch;  //  per-scan scratch (one set per thread)
#else
    pcre2_code **codes;       //  one compiled, JIT'd pattern per entry
    pcre2_match_data *match;  //  reused for every match
#endif
};

const char *
aigw_patterns_backend (void)
{
#ifdef AIGW_HAVE_HYPERSCAN
    return "hyperscan";
#else
    return "pcre2";
#endif
}

void
aigw_patterns_destroy (aigw_patterns_t **self_p)
{
    assert (self_p);
    aigw_patterns_t *self = *self_p;
    if (!self)
        return;
#ifdef AIGW_HAVE_HYPERSCAN
    hs_free_scratch (self->scratch);
    hs_free_database (self->db);
#else
    for (size_t i = 0; self->codes && i < self->count; i++)
        pcre2_code_free (self->codes[i]);
    free (self->codes);
    pcre2_match_data_free (self->match);
#endif
    free (self->spans);
    free (self);
    *self_p = NULL;
}

#ifdef AIGW_HAVE_HYPERSCAN
//  A keyword as a Hyperscan expression: every byte but [A-Za-z0-9] escaped
//  as \xHH. Caller frees.
static char *
s_escape (const char *literal)
{
    size_t len = strlen (literal);
    char *out = malloc (len * 4 + 1);
    if (!out)
        return NULL;
    char *to = out;
    for (const unsigned char *s = (const unsigned char *) literal; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))
            *to++ = (char) *s;
        else
            to += sprintf (to, "\\x%02x", *s);
    }
    *to = 0;
    return out;
}
#endif

aigw_patterns_t *
aigw_patterns_new (const aigw_patterns_entry_t *entries, size_t count, char *err, size_t err_size)
{
    if (count == 0 || count > AIGW_PATTERNS_MAX) {
        snprintf (err, err_size, "a pattern set holds 1 to %d entries", AIGW_PATTERNS_MAX);
        return NULL;
    }
    aigw_patterns_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->count = count;
    self->spans = calloc (count, sizeof *self->spans);
#ifdef AIGW_HAVE_HYPERSCAN
    char **exprs = calloc (count, sizeof *exprs);
    unsigned *flags = calloc (count, sizeof *flags);
    unsigned *ids = calloc (count, sizeof *ids);
    bool ok = self->spans && exprs && flags && ids;
    size_t widest = 0;
    bool bounded = true;
    for (size_t i = 0; ok && i < count; i++) {
        exprs[i] = entries[i].literal ? s_escape (entries[i].pattern) : strdup (entries[i].pattern);
        flags[i] = HS_FLAG_SOM_LEFTMOST | (entries[i].caseless ? HS_FLAG_CASELESS : 0);
        ids[i] = (unsigned) i;
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *cerr = NULL;
        if (!exprs[i])
            ok = false;
        else if (hs_expression_info (exprs[i], flags[i], &info, &cerr) != HS_SUCCESS) {
            snprintf (err, err_size, "pattern \"%.100s\": %.200s", entries[i].name, cerr->message);
            hs_free_compile_error (cerr);
            ok = false;
        }
        else {
            if (info->max_width == UINT32_MAX)
                bounded = false;
            else if (info->max_width > widest)
                widest = info->max_width;
            free (info);
        }
    }
    if (ok) {
        hs_compile_error_t *cerr = NULL;
        if (hs_compile_multi ((const char *const *) exprs, flags, ids, (unsigned) count,
                              HS_MODE_BLOCK, NULL, &self->db, &cerr)
            != HS_SUCCESS) {
            //  expression is -1 when no single entry is at fault.
            snprintf (err, err_size, "pattern \"%.100s\": %.200s",
                      cerr->expression >= 0 ? entries[cerr->expression].name : "(set)",
                      cerr->message);
            hs_free_compile_error (cerr);
            ok = false;
        }
        else if (hs_alloc_scratch (self->db, &self->scratch) != HS_SUCCESS) {
            snprintf (err, err_size, "cannot allocate the pattern scratch");
            ok = false;
        }
    }
    for (size_t i = 0; exprs && i < count; i++)
        free (exprs[i]);
    free (exprs);
    free (flags);
    free (ids);
    self->max_width = bounded ? widest : 0;
#else
    self->codes = calloc (count, sizeof *self->codes);
    self->match = pcre2_match_data_create (1, NULL);
    bool ok = self->spans && self->codes && self->match;
    for (size_t i = 0; ok && i < count; i++) {
        int error;
        PCRE2_SIZE offset;
        uint32_t options
            = (entries[i].literal ? PCRE2_LITERAL : 0) | (entries[i].caseless ? PCRE2_CASELESS : 0);
        self->codes[i] = pcre2_compile ((PCRE2_SPTR) entries[i].pattern, PCRE2_ZERO_TERMINATED,
                                        options, &error, &offset, NULL);
        if (!self->codes[i]) {
            char message[120];
            pcre2_get_error_message (error, (PCRE2_UCHAR *) message, sizeof message);
            snprintf (err, err_size, "pattern \"%.100s\": %s at %zu", entries[i].name, message,
                      (size_t) offset);
            ok = false;
        }
        else
            pcre2_jit_compile (self->codes[i], PCRE2_JIT_COMPLETE);
    }
#endif
    if (!ok)
        aigw_patterns_destroy (&self);
    return self;
}

size_t
aigw_patterns_max_width (const aigw_patterns_t *self)
{
    assert (self);
    return self->max_width;
}

#ifdef AIGW_HAVE_HYPERSCAN
//  What the Hyperscan callback needs.
typedef struct {
    aigw_patterns_t *set;  //  the set being scanned
    aigw_patterns_fn *fn;  //  the caller's callback
    void *arg;             //  its argument
    bool stopped;          //  the caller asked to stop
} s_scan_t;

//  Hyperscan reports matches by end offset, each with its leftmost start:
//  grow one span per entry and hand it on when a later match does not
//  overlap it.
static int
s_on_match (unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx)
{
    s_scan_t *scan = (s_scan_t *) ctx;
    s_span_t *span = &scan->set->spans[id];
    if (span->open && from < span->end) {
        if (from < span->start)
            span->start = from;
        span->end = to;
        return 0;
    }
    if (span->open && scan->fn (id, span->start, span->end, scan->arg)) {
        scan->stopped = true;
        return 1;
    }
    span->open = true;
    span->start = from;
    span->end = to;
    return 0;
}
#endif

int
aigw_patterns_scan (aigw_patterns_t *self, const char *text, size_t len, aigw_patterns_fn *fn,
                    void *arg)
{
    assert (self);
    assert (fn);
#ifdef AIGW_HAVE_HYPERSCAN
    if (len > UINT32_MAX)
        return -1;
    s_scan_t scan = {self, fn, arg, false};
    memset (self->spans, 0, self->count * sizeof *self->spans);
    hs_error_t rc
        = hs_scan (self->db, text ? text : "", (unsigned) len, 0, self->scratch, s_on_match, &scan);
    if (rc != HS_SUCCESS && !(rc == HS_SCAN_TERMINATED && scan.stopped))
        return -1;
    for (size_t i = 0; !scan.stopped && i < self->count; i++)
        if (self->spans[i].open && fn ((unsigned) i, self->spans[i].start, self->spans[i].end, arg))
            break;
    return 0;
#else
    for (size_t i = 0; i < self->count; i++) {
        size_t offset = 0;
        while (offset <= len) {
            int rc = pcre2_match (self->codes[i], (PCRE2_SPTR) (text ? text : ""), len, offset, 0,
                                  self->match, NULL);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0)
                return -1;
            PCRE2_SIZE *ovector = pcre2_get_ovector_pointer (self->match);
            size_t start = ovector[0], end = ovector[1];
            //  An empty match carries nothing to report (Hyperscan refuses
            //  such patterns); step past it.
            if (end > start && fn ((unsigned) i, start, end, arg))
                return 0;
            offset = end > start ? end : end + 1;
        }
    }
    return 0;
#endif
}

//  Selftest: collects matches as "id:start-end" in a string.
static int
s_test_collect (unsigned id, size_t start, size_t end, void *arg)
{
    char *out = (char *) arg;
    size_t used = strlen (out);
    snprintf (out + used, 256 - used, "%u:%zu-%zu ", id, start, end);
    return 0;
}

void
aigw_patterns_test (bool verbose)
{
    if (verbose)
        printf (" * aigw_patterns (%s): ", aigw_patterns_backend ());
    char err[300];
    aigw_patterns_entry_t entries[] = {
        {"order", "ORD-[0-9]{6}", false, false},
        {"project", "project x.y", true, true},
        {"codename", "blue(bird|jay)", false, true},
    };
    aigw_patterns_t *set = aigw_patterns_new (entries, 3, err, sizeof err);
    assert (set);
    char out[256] = "";
    const char *text = "see ORD-123456 and PROJECT X.Y, not project xzy; BlueJay";
    assert (aigw_patterns_scan (set, text, strlen (text), s_test_collect, out) == 0);
    //  Every entry found in the one scan; the keyword's '.' is literal.
    assert (strstr (out, "0:4-14 "));
    assert (strstr (out, "1:19-30 "));
    assert (!strstr (out, "1:36"));
    assert (strstr (out, "2:49-56 "));
    out[0] = 0;
    assert (aigw_patterns_scan (set, "", 0, s_test_collect, out) == 0);
    assert (out[0] == 0);
    //  Repeated, overlapping matches of one entry: one span each.
    out[0] = 0;
    text = "ORD-111111 ORD-222222";
    assert (aigw_patterns_scan (set, text, strlen (text), s_test_collect, out) == 0);
    assert (strstr (out, "0:0-10 ") && strstr (out, "0:11-21 "));
#ifdef AIGW_HAVE_HYPERSCAN
    assert (aigw_patterns_max_width (set) == 11);
#endif
    aigw_patterns_destroy (&set);
    aigw_patterns_destroy (&set);
    assert (set == NULL);

    //  A pattern that does not compile is named.
    aigw_patterns_entry_t bad[] = {{"ok", "abc", false, false}, {"broken", "a(b", false, false}};
    assert (aigw_patterns_new (bad, 2, err, sizeof err) == NULL);
    assert (strstr (err, "broken"));
    assert (aigw_patterns_new (bad, 0, err, sizeof err) == NULL);
    //  Unbounded width reads as 0.
    aigw_patterns_entry_t wide[] = {{"any", "x.*y", false, false}};
    set = aigw_patterns_new (wide, 1, err, sizeof err);
    assert (set && aigw_patterns_max_width (set) == 0);
    aigw_patterns_destroy (&set);
    if (verbose)
        printf ("OK\n");
}
