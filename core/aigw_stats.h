/*  aigw_stats: a small process-wide registry of figures (counters, gauges,
    histograms) that a stage keeps and any /metrics of the same process
    prints: in `aigw run` the usage actor's thread updates them and the
    edge prints them; `aigw actor usage --metrics-port N` serves them alone.

    A figure is found or made by name and a fixed label text, once, at a
    stage's start (under a lock); updates are atomic adds on the handle it
    gives, no lock. Figures live until the process ends: a stage that
    stops and starts again finds its figures where it left them. */
#ifndef AIGW_STATS_H_INCLUDED
#define AIGW_STATS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _aigw_stat_t aigw_stat_t;

//  The figure NAME{LABELS} (LABELS: Prometheus label pairs without braces,
//  e.g. "result=\"written\"", or "" for none), found or made. HELP is the
//  family's help text (the first registration's is kept). A histogram's
//  observations are integers in units of 1/SCALE (e.g. microseconds with
//  SCALE 1e6 for a _seconds family), counted in BOUNDS (COUNT ascending
//  bounds, already divided: seconds; BOUNDS must outlive the process).
//  Returns NULL only when the registry is full or NAME is a family of
//  another type (callers may pass NULL to the updates: a no-op).
aigw_stat_t *aigw_stats_counter (const char *name, const char *labels, const char *help);
aigw_stat_t *aigw_stats_gauge (const char *name, const char *labels, const char *help);
aigw_stat_t *aigw_stats_histogram (const char *name, const char *labels, const char *help,
                                   const double *bounds, int count, double scale);

//  Add DELTA to a counter or gauge.
void aigw_stat_add (aigw_stat_t *stat, int64_t delta);
//  Set a gauge to VALUE.
void aigw_stat_set (aigw_stat_t *stat, int64_t value);
//  Count VALUE (in 1/scale units) in a histogram.
void aigw_stat_observe (aigw_stat_t *stat, int64_t value);
//  A counter's or gauge's value (tests).
int64_t aigw_stat_value (const aigw_stat_t *stat);

//  Prometheus text of every figure, one HELP and TYPE per family; "" when
//  none is registered. Caller frees.
char *aigw_stats_text (void);

void aigw_stats_test (bool verbose);

#endif
