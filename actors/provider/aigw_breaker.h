/*  aigw_breaker: a circuit breaker for one upstream deployment. Pure policy,
    single-threaded, no clock of its own: every call takes NOW (Unix ms, or
    any monotonic ms) from the caller, so tests drive it with a fake clock.

    Closed: requests flow; the breaker opens after CONSECUTIVE_FAILURES in a
    row, or when the error rate over the last WINDOW_SIZE outcomes that are
    younger than WINDOW_MS reaches ERROR_RATE with at least MIN_SAMPLES of
    them. Open: requests are refused until the cooldown has passed; then the
    breaker turns half-open and lets exactly one probe through. The probe's
    outcome closes it (and resets the cooldown to its base) or reopens it
    with the cooldown multiplied by COOLDOWN_GROWTH, capped at COOLDOWN_MAX_MS.
    A probe that never reports frees the slot after PROBE_TIMEOUT_MS. */
#ifndef AIGW_BREAKER_H_INCLUDED
#define AIGW_BREAKER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

//  Defaults, each overridable through aigw_breaker_settings_t.
#define AIGW_BREAKER_CONSECUTIVE_FAILURES 5
#define AIGW_BREAKER_ERROR_RATE           0.5
#define AIGW_BREAKER_WINDOW_SIZE          100
#define AIGW_BREAKER_WINDOW_MS            60000
#define AIGW_BREAKER_MIN_SAMPLES          20
#define AIGW_BREAKER_COOLDOWN_MS          5000
#define AIGW_BREAKER_COOLDOWN_MAX_MS      300000
#define AIGW_BREAKER_COOLDOWN_GROWTH      2.0
#define AIGW_BREAKER_PROBE_TIMEOUT_MS     60000
//  Hard cap on the outcome window a config may ask for.
#define AIGW_BREAKER_WINDOW_SIZE_MAX 4096

typedef enum {
    AIGW_BREAKER_CLOSED = 0,
    AIGW_BREAKER_OPEN,
    AIGW_BREAKER_HALF_OPEN
} aigw_breaker_state_t;

typedef struct {
    uint32_t consecutive_failures;  //  failures in a row that open it, 0 = off
    double error_rate;              //  failure share in the window that opens it, 0 = off
    uint32_t window_size;           //  outcomes kept for the error rate (1..WINDOW_SIZE_MAX)
    int64_t window_ms;              //  outcomes older than this don't count, 0 = no age limit
    uint32_t min_samples;           //  fewest outcomes in the window before the rate counts
    int64_t cooldown_ms;            //  first open period
    int64_t cooldown_max_ms;        //  longest open period
    double cooldown_growth;         //  cooldown factor after each failed probe (>= 1)
    int64_t probe_timeout_ms;       //  a probe silent this long frees the half-open slot
} aigw_breaker_settings_t;

typedef struct _aigw_breaker_t aigw_breaker_t;

//  Fill SETTINGS with the AIGW_BREAKER_* defaults.
void aigw_breaker_settings_default (aigw_breaker_settings_t *settings);

//  Create a closed breaker. SETTINGS is copied; NULL means defaults. Returns
//  NULL on out-of-range settings or out of memory.
aigw_breaker_t *aigw_breaker_new (const aigw_breaker_settings_t *settings);

//  Destroy the breaker and null the caller's pointer; safe on NULL.
void aigw_breaker_destroy (aigw_breaker_t **self_p);

//  May one request go now? Closed: yes. Open: no until the cooldown ends;
//  then it turns half-open and this call takes the one probe slot (true).
//  Half-open: no while the probe is out. A true answer commits the caller
//  to report the outcome with aigw_breaker_record.
bool aigw_breaker_allow (aigw_breaker_t *self, int64_t now);

//  Would aigw_breaker_allow answer true now? Changes nothing, so a router
//  can look over candidates without taking their probe slots.
bool aigw_breaker_available (const aigw_breaker_t *self, int64_t now);

//  Report one request's outcome. Closed: counts towards the thresholds and
//  may open. Half-open: success closes (resetting the cooldown), failure
//  reopens with a longer cooldown. Open: late outcomes are ignored.
void aigw_breaker_record (aigw_breaker_t *self, int64_t now, bool success);

//  Current state (open stays open until an allow call after the cooldown).
aigw_breaker_state_t aigw_breaker_state (const aigw_breaker_t *self);

//  The state's lower-case name: "closed", "open", "half_open".
const char *aigw_breaker_state_name (aigw_breaker_state_t state);

//  Length of the current (or next) open period, ms.
int64_t aigw_breaker_cooldown_ms (const aigw_breaker_t *self);

//  When an open breaker becomes eligible for a probe; 0 unless open.
int64_t aigw_breaker_open_until (const aigw_breaker_t *self);

//  Failure share of the outcomes in the window at NOW, 0 when there are none.
double aigw_breaker_error_rate (const aigw_breaker_t *self, int64_t now);

//  Number of outcomes in the window at NOW.
uint32_t aigw_breaker_samples (const aigw_breaker_t *self, int64_t now);

void aigw_breaker_test (bool verbose);

#endif
