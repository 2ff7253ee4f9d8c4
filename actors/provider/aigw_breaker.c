/*  aigw_breaker: circuit breaker policy for one deployment (see the header). */
#include "aigw_breaker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One reported outcome.
typedef struct {
    int64_t at;    //  when it was reported, ms
    bool success;  //  true if the request succeeded
} s_outcome_t;

//  The breaker.
struct _aigw_breaker_t {
    aigw_breaker_settings_t settings;  //  thresholds and cooldowns (a copy)
    aigw_breaker_state_t state;        //  closed, open or half-open
    uint32_t consecutive;              //  failures in a row while closed
    s_outcome_t *ring;                 //  last settings.window_size outcomes
    uint32_t ring_head;                //  next slot to write
    uint32_t ring_count;               //  slots filled, up to window_size
    int64_t cooldown_ms;               //  current open period
    int64_t open_until;                //  end of the open period, when open
    bool probe_out;                    //  half-open: the one probe has been let through
    int64_t probe_at;                  //  when that probe was let through
};

void
aigw_breaker_settings_default (aigw_breaker_settings_t *settings)
{
    assert (settings);
    *settings = (aigw_breaker_settings_t){
        .consecutive_failures = AIGW_BREAKER_CONSECUTIVE_FAILURES,
        .error_rate = AIGW_BREAKER_ERROR_RATE,
        .window_size = AIGW_BREAKER_WINDOW_SIZE,
        .window_ms = AIGW_BREAKER_WINDOW_MS,
        .min_samples = AIGW_BREAKER_MIN_SAMPLES,
        .cooldown_ms = AIGW_BREAKER_COOLDOWN_MS,
        .cooldown_max_ms = AIGW_BREAKER_COOLDOWN_MAX_MS,
        .cooldown_growth = AIGW_BREAKER_COOLDOWN_GROWTH,
        .probe_timeout_ms = AIGW_BREAKER_PROBE_TIMEOUT_MS,
    };
}

//  True if SETTINGS are usable (they may come from a config file).
static bool
s_settings_valid (const aigw_breaker_settings_t *s)
{
    return s->window_size >= 1 && s->window_size <= AIGW_BREAKER_WINDOW_SIZE_MAX
           && s->error_rate >= 0 && s->error_rate <= 1 && s->window_ms >= 0 && s->cooldown_ms >= 0
           && s->cooldown_max_ms >= s->cooldown_ms && s->cooldown_growth >= 1
           && s->cooldown_growth <= 1000 && s->probe_timeout_ms > 0;
}

aigw_breaker_t *
aigw_breaker_new (const aigw_breaker_settings_t *settings)
{
    aigw_breaker_settings_t defaults;
    if (!settings) {
        aigw_breaker_settings_default (&defaults);
        settings = &defaults;
    }
    if (!s_settings_valid (settings))
        return NULL;
    aigw_breaker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->settings = *settings;
    self->ring = calloc (settings->window_size, sizeof *self->ring);
    if (!self->ring) {
        free (self);
        return NULL;
    }
    self->state = AIGW_BREAKER_CLOSED;
    self->cooldown_ms = settings->cooldown_ms;
    return self;
}

void
aigw_breaker_destroy (aigw_breaker_t **self_p)
{
    assert (self_p);
    aigw_breaker_t *self = *self_p;
    if (!self)
        return;
    free (self->ring);
    free (self);
    *self_p = NULL;
}

//  True if the half-open probe slot is free at NOW (none out, or it went silent).
static bool
s_probe_free (const aigw_breaker_t *self, int64_t now)
{
    return !self->probe_out || now - self->probe_at >= self->settings.probe_timeout_ms;
}

bool
aigw_breaker_available (const aigw_breaker_t *self, int64_t now)
{
    assert (self);
    switch (self->state) {
        case AIGW_BREAKER_CLOSED: return true;
        case AIGW_BREAKER_OPEN: return now >= self->open_until;
        case AIGW_BREAKER_HALF_OPEN: return s_probe_free (self, now);
    }
    return false;
}

bool
aigw_breaker_allow (aigw_breaker_t *self, int64_t now)
{
    assert (self);
    if (!aigw_breaker_available (self, now))
        return false;
    if (self->state == AIGW_BREAKER_CLOSED)
        return true;
    //  Open past its cooldown, or half-open with a free slot: take the probe.
    self->state = AIGW_BREAKER_HALF_OPEN;
    self->open_until = 0;
    self->probe_out = true;
    self->probe_at = now;
    return true;
}

//  Forget the outcome window and the failure run.
static void
s_reset_window (aigw_breaker_t *self)
{
    self->ring_head = 0;
    self->ring_count = 0;
    self->consecutive = 0;
}

//  Open at NOW for the current cooldown.
static void
s_open (aigw_breaker_t *self, int64_t now)
{
    self->state = AIGW_BREAKER_OPEN;
    self->open_until = now + self->cooldown_ms;
    self->probe_out = false;
    s_reset_window (self);
}

void
aigw_breaker_record (aigw_breaker_t *self, int64_t now, bool success)
{
    assert (self);
    const aigw_breaker_settings_t *s = &self->settings;
    if (self->state == AIGW_BREAKER_OPEN)
        return;
    if (self->state == AIGW_BREAKER_HALF_OPEN) {
        if (success) {
            self->state = AIGW_BREAKER_CLOSED;
            self->probe_out = false;
            self->cooldown_ms = s->cooldown_ms;
            s_reset_window (self);
        }
        else {
            double grown = (double) self->cooldown_ms * s->cooldown_growth;
            self->cooldown_ms
                = grown >= (double) s->cooldown_max_ms ? s->cooldown_max_ms : (int64_t) grown;
            s_open (self, now);
        }
        return;
    }
    self->ring[self->ring_head] = (s_outcome_t){.at = now, .success = success};
    self->ring_head = (self->ring_head + 1) % s->window_size;
    if (self->ring_count < s->window_size)
        self->ring_count++;
    self->consecutive = success ? 0 : self->consecutive + 1;

    if (s->consecutive_failures && self->consecutive >= s->consecutive_failures) {
        s_open (self, now);
        return;
    }
    if (s->error_rate > 0 && aigw_breaker_samples (self, now) >= s->min_samples
        && aigw_breaker_samples (self, now) > 0
        && aigw_breaker_error_rate (self, now) >= s->error_rate)
        s_open (self, now);
}

//  Count outcomes in the window at NOW; FAILURES gets the failed ones.
static uint32_t
s_window_count (const aigw_breaker_t *self, int64_t now, uint32_t *failures)
{
    uint32_t total = 0, failed = 0;
    for (uint32_t i = 0; i < self->ring_count; i++) {
        const s_outcome_t *o = &self->ring[i];
        if (self->settings.window_ms && now - o->at > self->settings.window_ms)
            continue;
        total++;
        if (!o->success)
            failed++;
    }
    if (failures)
        *failures = failed;
    return total;
}

double
aigw_breaker_error_rate (const aigw_breaker_t *self, int64_t now)
{
    assert (self);
    uint32_t failed;
    uint32_t total = s_window_count (self, now, &failed);
    return total ? (double) failed / total : 0.0;
}

uint32_t
aigw_breaker_samples (const aigw_breaker_t *self, int64_t now)
{
    assert (self);
    return s_window_count (self, now, NULL);
}

aigw_breaker_state_t
aigw_breaker_state (const aigw_breaker_t *self)
{
    assert (self);
    return self->state;
}

const char *
aigw_breaker_state_name (aigw_breaker_state_t state)
{
    switch (state) {
        case AIGW_BREAKER_CLOSED: return "closed";
        case AIGW_BREAKER_OPEN: return "open";
        case AIGW_BREAKER_HALF_OPEN: return "half_open";
    }
    return "unknown";
}

int64_t
aigw_breaker_cooldown_ms (const aigw_breaker_t *self)
{
    assert (self);
    return self->cooldown_ms;
}

int64_t
aigw_breaker_open_until (const aigw_breaker_t *self)
{
    assert (self);
    return self->state == AIGW_BREAKER_OPEN ? self->open_until : 0;
}

//  Selftest: public API only, fake clock.
void
aigw_breaker_test (bool verbose)
{
    aigw_breaker_settings_t s;
    aigw_breaker_settings_default (&s);
    s.consecutive_failures = 3;
    s.error_rate = 0.5;
    s.window_size = 10;
    s.window_ms = 10000;
    s.min_samples = 6;
    s.cooldown_ms = 1000;
    s.cooldown_max_ms = 3000;
    s.cooldown_growth = 2.0;
    s.probe_timeout_ms = 5000;
    int64_t now = 1000000;

    //  Bad settings refused; destroy is safe twice.
    aigw_breaker_settings_t bad = s;
    bad.window_size = 0;
    assert (aigw_breaker_new (&bad) == NULL);
    bad = s;
    bad.cooldown_max_ms = 10;
    assert (aigw_breaker_new (&bad) == NULL);
    aigw_breaker_t *b = aigw_breaker_new (NULL);
    assert (b);
    assert (aigw_breaker_cooldown_ms (b) == AIGW_BREAKER_COOLDOWN_MS);
    aigw_breaker_destroy (&b);
    aigw_breaker_destroy (&b);
    assert (b == NULL);

    //  Consecutive failures open it; a success in between resets the run.
    b = aigw_breaker_new (&s);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_CLOSED);
    assert (aigw_breaker_allow (b, now));
    aigw_breaker_record (b, now, false);
    aigw_breaker_record (b, now, false);
    aigw_breaker_record (b, now, true);
    aigw_breaker_record (b, now, false);
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_CLOSED);
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_OPEN);
    assert (strcmp (aigw_breaker_state_name (aigw_breaker_state (b)), "open") == 0);
    assert (aigw_breaker_open_until (b) == now + 1000);
    assert (!aigw_breaker_allow (b, now));
    assert (!aigw_breaker_allow (b, now + 999));
    //  A late outcome while open changes nothing.
    aigw_breaker_record (b, now + 10, true);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_OPEN);

    //  Half-open after the cooldown: exactly one probe.
    now += 1000;
    assert (aigw_breaker_available (b, now));
    assert (aigw_breaker_available (b, now));  //  looking takes nothing
    assert (aigw_breaker_allow (b, now));
    assert (aigw_breaker_state (b) == AIGW_BREAKER_HALF_OPEN);
    assert (!aigw_breaker_available (b, now));
    assert (!aigw_breaker_allow (b, now));
    assert (!aigw_breaker_allow (b, now + 100));

    //  Failed probe reopens with a doubled cooldown, capped at the maximum.
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_OPEN);
    assert (aigw_breaker_cooldown_ms (b) == 2000);
    assert (!aigw_breaker_allow (b, now + 1999));
    now += 2000;
    assert (aigw_breaker_allow (b, now));
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_cooldown_ms (b) == 3000);  //  4000 capped
    now += 3000;
    assert (aigw_breaker_allow (b, now));
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_cooldown_ms (b) == 3000);

    //  A probe that never reports frees its slot after the probe timeout.
    now += 3000;
    assert (aigw_breaker_allow (b, now));
    assert (!aigw_breaker_allow (b, now + 4999));
    assert (aigw_breaker_allow (b, now + 5000));
    now += 5000;

    //  Probe success closes and resets the cooldown growth.
    aigw_breaker_record (b, now, true);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_CLOSED);
    assert (aigw_breaker_cooldown_ms (b) == 1000);
    assert (aigw_breaker_samples (b, now) == 0);
    assert (aigw_breaker_allow (b, now));
    aigw_breaker_destroy (&b);

    //  Error rate: below the minimum sample count it does not open...
    s.consecutive_failures = 0;
    b = aigw_breaker_new (&s);
    for (int i = 0; i < 5; i++)
        aigw_breaker_record (b, now, false);
    assert (aigw_breaker_samples (b, now) == 5);
    assert (aigw_breaker_error_rate (b, now) == 1.0);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_CLOSED);
    //  ...old outcomes age out of the window...
    now += 10001;
    assert (aigw_breaker_samples (b, now) == 0);
    assert (aigw_breaker_error_rate (b, now) == 0.0);
    //  ...and with enough samples, 50% failures opens it.
    for (int i = 0; i < 3; i++)
        aigw_breaker_record (b, now, true);
    aigw_breaker_record (b, now, false);
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_CLOSED);  //  5 samples
    aigw_breaker_record (b, now, true);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_CLOSED);  //  6, 33%
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_CLOSED);  //  7, 43%
    aigw_breaker_record (b, now, false);
    assert (aigw_breaker_state (b) == AIGW_BREAKER_OPEN);  //  8, 50%
    aigw_breaker_destroy (&b);

    //  The window keeps only the last WINDOW_SIZE outcomes.
    b = aigw_breaker_new (&s);
    for (int i = 0; i < 2; i++)
        aigw_breaker_record (b, now, false);
    for (int i = 0; i < 10; i++)
        aigw_breaker_record (b, now, true);
    assert (aigw_breaker_samples (b, now) == 10);
    assert (aigw_breaker_error_rate (b, now) == 0.0);
    aigw_breaker_destroy (&b);
    if (verbose)
        printf ("(breaker ok) ");
}
