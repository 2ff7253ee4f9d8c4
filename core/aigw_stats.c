/*  aigw_stats: the process-wide figures, printed in Prometheus text. */
#include "aigw_stats.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Figures one process may register (the usage actor has about ten).
#define S_STATS_MAX 128
//  Longest family name and label text.
#define S_NAME_MAX   96
#define S_LABELS_MAX 160
//  Most histogram bounds.
#define S_BOUNDS_MAX 32

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_type_t;

struct _aigw_stat_t {
    char name[S_NAME_MAX];      //  family name
    char labels[S_LABELS_MAX];  //  label pairs, no braces, or ""
    const char *help;           //  family help (static text)
    s_type_t type;              //  counter, gauge or histogram
    atomic_llong value;         //  counter or gauge value; histogram sum (1/scale units)
    const double *bounds;       //  histogram bucket bounds (static)
    int bound_count;            //  entries in bounds
    double scale;               //  histogram: observed units per printed unit
    atomic_ullong buckets[S_BOUNDS_MAX + 1];  //  histogram counts per bucket, +Inf last
};

static aigw_stat_t s_stats[S_STATS_MAX];
static atomic_int s_count;  //  published entries of s_stats
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

//  Find or make NAME{LABELS} of TYPE. Readers (the text) see an entry only
//  once it is complete: the count is stored with release after it is filled.
static aigw_stat_t *
s_register (const char *name, const char *labels, const char *help, s_type_t type,
            const double *bounds, int bound_count, double scale)
{
    if (strlen (name) >= S_NAME_MAX || strlen (labels) >= S_LABELS_MAX
        || bound_count > S_BOUNDS_MAX)
        return NULL;
    pthread_mutex_lock (&s_lock);
    aigw_stat_t *found = NULL;
    bool clash = false;
    int count = atomic_load_explicit (&s_count, memory_order_relaxed);
    for (int i = 0; i < count && !found && !clash; i++) {
        if (strcmp (s_stats[i].name, name))
            continue;
        if (s_stats[i].type != type)
            clash = true;
        else if (strcmp (s_stats[i].labels, labels) == 0)
            found = &s_stats[i];
    }
    if (!found && !clash && count < S_STATS_MAX) {
        found = &s_stats[count];
        snprintf (found->name, sizeof found->name, "%s", name);
        snprintf (found->labels, sizeof found->labels, "%s", labels);
        found->help = help;
        found->type = type;
        found->bounds = bounds;
        found->bound_count = bound_count;
        found->scale = scale > 0 ? scale : 1;
        atomic_store_explicit (&s_count, count + 1, memory_order_release);
    }
    pthread_mutex_unlock (&s_lock);
    return found;
}

aigw_stat_t *
aigw_stats_counter (const char *name, const char *labels, const char *help)
{
    return s_register (name, labels, help, S_COUNTER, NULL, 0, 1);
}

aigw_stat_t *
aigw_stats_gauge (const char *name, const char *labels, const char *help)
{
    return s_register (name, labels, help, S_GAUGE, NULL, 0, 1);
}

aigw_stat_t *
aigw_stats_histogram (const char *name, const char *labels, const char *help, const double *bounds,
                      int count, double scale)
{
    return s_register (name, labels, help, S_HISTOGRAM, bounds, count, scale);
}

void
aigw_stat_add (aigw_stat_t *stat, int64_t delta)
{
    if (stat)
        atomic_fetch_add_explicit (&stat->value, delta, memory_order_relaxed);
}

void
aigw_stat_set (aigw_stat_t *stat, int64_t value)
{
    if (stat)
        atomic_store_explicit (&stat->value, value, memory_order_relaxed);
}

void
aigw_stat_observe (aigw_stat_t *stat, int64_t value)
{
    if (!stat || stat->type != S_HISTOGRAM)
        return;
    int bucket = stat->bound_count;
    for (int i = 0; i < stat->bound_count; i++)
        if (value <= stat->bounds[i] * stat->scale) {
            bucket = i;
            break;
        }
    atomic_fetch_add_explicit (&stat->buckets[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&stat->value, value > 0 ? value : 0, memory_order_relaxed);
}

int64_t
aigw_stat_value (const aigw_stat_t *stat)
{
    return stat ? atomic_load_explicit (&stat->value, memory_order_relaxed) : 0;
}

//  NAME{LABELS,EXTRA} with the commas and braces right when either is "".
static void
s_series (FILE *out, const char *name, const char *suffix, const char *labels, const char *extra)
{
    fprintf (out, "%s%s", name, suffix);
    if (*labels || *extra)
        fprintf (out, "{%s%s%s}", labels, *labels && *extra ? "," : "", extra);
    fputc (' ', out);
}

char *
aigw_stats_text (void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return strdup ("");
    int count = atomic_load_explicit (&s_count, memory_order_acquire);
    for (int i = 0; i < count; i++) {
        const aigw_stat_t *s = &s_stats[i];
        //  One HELP and TYPE per family, before its first series; the
        //  series of a family are printed together.
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp (s_stats[j].name, s->name) == 0;
        if (seen)
            continue;
        static const char *types[] = {"counter", "gauge", "histogram"};
        fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help ? s->help : s->name, s->name,
                 types[s->type]);
        for (int j = i; j < count; j++) {
            const aigw_stat_t *t = &s_stats[j];
            if (strcmp (t->name, s->name))
                continue;
            if (t->type != S_HISTOGRAM) {
                s_series (out, t->name, "", t->labels, "");
                fprintf (out, "%lld\n", (long long) atomic_load (&t->value));
                continue;
            }
            unsigned long long cumulative = 0;
            char le[48];
            for (int b = 0; b <= t->bound_count; b++) {
                cumulative += atomic_load (&t->buckets[b]);
                if (b < t->bound_count)
                    snprintf (le, sizeof le, "le=\"%g\"", t->bounds[b]);
                else
                    snprintf (le, sizeof le, "le=\"+Inf\"");
                s_series (out, t->name, "_bucket", t->labels, le);
                fprintf (out, "%llu\n", cumulative);
            }
            s_series (out, t->name, "_sum", t->labels, "");
            fprintf (out, "%.9g\n", (double) atomic_load (&t->value) / t->scale);
            s_series (out, t->name, "_count", t->labels, "");
            fprintf (out, "%llu\n", cumulative);
        }
    }
    fclose (out);
    return text;
}

void
aigw_stats_test (bool verbose)
{
    aigw_stat_t *a = aigw_stats_counter ("aigw_test_things_total", "kind=\"a\"", "Things.");
    aigw_stat_t *b = aigw_stats_counter ("aigw_test_things_total", "kind=\"b\"", "Things.");
    assert (a && b && a != b);
    assert (aigw_stats_counter ("aigw_test_things_total", "kind=\"a\"", "Things.") == a);
    assert (aigw_stats_gauge ("aigw_test_things_total", "", "Clash.") == NULL);
    aigw_stat_t *depth = aigw_stats_gauge ("aigw_test_depth_bytes", "", "Depth.");
    static const double bounds[] = {0.001, 0.1, 1};
    aigw_stat_t *h = aigw_stats_histogram ("aigw_test_seconds", "", "Time.", bounds, 3, 1e6);
    aigw_stat_add (a, 2);
    aigw_stat_add (b, 1);
    aigw_stat_add (a, 1);
    aigw_stat_set (depth, 42);
    aigw_stat_set (depth, 40);
    aigw_stat_observe (h, 500);      //  0.5 ms
    aigw_stat_observe (h, 50000);    //  50 ms
    aigw_stat_observe (h, 2000000);  //  2 s
    aigw_stat_add (NULL, 1);         //  a figure that could not be made
    assert (aigw_stat_value (a) == 3 && aigw_stat_value (depth) == 40);
    char *text = aigw_stats_text ();
    if (verbose)
        printf ("%s", text);
    //  A family's series sit together under one HELP line.
    const char *family = strstr (text, "# HELP aigw_test_things_total Things.\n"
                                       "# TYPE aigw_test_things_total counter\n"
                                       "aigw_test_things_total{kind=\"a\"} 3\n"
                                       "aigw_test_things_total{kind=\"b\"} 1\n");
    assert (family);
    assert (strstr (family + 1, "# HELP aigw_test_things_total") == NULL);
    assert (strstr (text, "# TYPE aigw_test_depth_bytes gauge\naigw_test_depth_bytes 40\n"));
    assert (strstr (text, "aigw_test_seconds_bucket{le=\"0.001\"} 1\n"));
    assert (strstr (text, "aigw_test_seconds_bucket{le=\"0.1\"} 2\n"));
    assert (strstr (text, "aigw_test_seconds_bucket{le=\"1\"} 2\n"));
    assert (strstr (text, "aigw_test_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert (strstr (text, "aigw_test_seconds_sum 2.0505\n"));
    assert (strstr (text, "aigw_test_seconds_count 3\n"));
    free (text);
    if (verbose)
        printf ("stats: ok\n");
}
