/*  aigw_ratelimit: per-key requests per minute, sliding window. */
#include "aigw_ratelimit.h"
#include "aigw_log.h"

//  Length of one window.
#define AIGW_RL_WINDOW_MS 60000

//  Counts of one key.
typedef struct {
    int64_t window;    //  start of the current window, Unix ms
    int64_t current;   //  requests admitted in the current window
    int64_t previous;  //  requests admitted in the window before
} s_counter_t;

//  Private state.
typedef struct {
    const aigw_config_t *config;  //  settings (shared, read-only)
    zhashx_t *counters;           //  key id -> s_counter_t
    int64_t (*clock) (void);      //  time source, replaceable in the selftest
} s_rl_t;

static void
s_rl_destroy (void **state_p)
{
    s_rl_t *self = (s_rl_t *) *state_p;
    if (!self)
        return;
    zhashx_destroy (&self->counters);
    free (self);
    *state_p = NULL;
}

static void
s_counter_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void *
s_rl_new (aigw_host_t *host, const aigw_config_t *config)
{
    s_rl_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->counters = zhashx_new ();
    zhashx_set_destructor (self->counters, s_counter_free);
    self->clock = aigw_now_ms;
    return self;
}

//  Roll COUNTER forward to the window holding NOW.
static void
s_counter_roll (s_counter_t *counter, int64_t now)
{
    int64_t window = now - now % AIGW_RL_WINDOW_MS;
    if (window == counter->window)
        return;
    counter->previous = window - counter->window == AIGW_RL_WINDOW_MS ? counter->current : 0;
    counter->current = 0;
    counter->window = window;
}

//  Requests counted against the last minute, previous window weighted.
//  The carried share rounds up: rounding down let a key through one
//  request over its limit just after every window boundary.
static int64_t
s_counter_used (const s_counter_t *counter, int64_t now)
{
    int64_t elapsed = now - counter->window;
    int64_t weighted = counter->previous * (AIGW_RL_WINDOW_MS - elapsed);
    int64_t carried = (weighted + AIGW_RL_WINDOW_MS - 1) / AIGW_RL_WINDOW_MS;
    return carried + counter->current;
}

static void
s_rl_handle (void *state, aigw_envelope_t *env)
{
    s_rl_t *self = (s_rl_t *) state;
    int64_t limit = env->rpm > 0 ? env->rpm : self->config->default_rpm;
    const char *key_id = env->key_id ? env->key_id : "anonymous";
    int64_t now = self->clock ();
    s_counter_t *counter = (s_counter_t *) zhashx_lookup (self->counters, key_id);
    if (!counter) {
        counter = calloc (1, sizeof *counter);
        zhashx_insert (self->counters, key_id, counter);
    }
    s_counter_roll (counter, now);
    int64_t used = s_counter_used (counter, now);
    int64_t reset_ms = counter->window + AIGW_RL_WINDOW_MS;
    env->rl_limit = limit;
    env->rl_reset = (reset_ms + 999) / 1000;
    if (used >= limit) {
        env->rl_remaining = 0;
        int retry = (int) ((reset_ms - now + 999) / 1000);
        env->retry_after = retry > 0 ? retry : 1;
        char message[160];
        snprintf (message, sizeof message,
                  "Rate limit of %lld requests per minute exceeded; retry in %d s.",
                  (long long) limit, env->retry_after);
        aigw_envelope_set_error (env, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                                 message);
        return;
    }
    counter->current++;
    env->rl_remaining = limit - used - 1;
}

//  Forget keys idle for two windows, so memory follows live keys only.
static void
s_rl_tick (void *state)
{
    s_rl_t *self = (s_rl_t *) state;
    int64_t now = self->clock ();
    zlistx_t *stale = zlistx_new ();
    for (s_counter_t *counter = (s_counter_t *) zhashx_first (self->counters); counter;
         counter = (s_counter_t *) zhashx_next (self->counters))
        if (now - counter->window >= 2 * AIGW_RL_WINDOW_MS)
            zlistx_add_end (stale, (void *) zhashx_cursor (self->counters));
    for (void *key = zlistx_first (stale); key; key = zlistx_next (stale))
        zhashx_delete (self->counters, key);
    zlistx_destroy (&stale);
}

//  Counters are per key id, so every request of a key goes to one owner.
static const char *
s_rl_shard_key (aigw_envelope_t *env, const aigw_config_t *config)
{
    return env->key_id ? env->key_id : "";
}

const aigw_stage_def_t aigw_ratelimit_stage = {
    .name = "ratelimit",
    .replay_safe = true,
    .state_new = s_rl_new,
    .state_destroy = s_rl_destroy,
    .handle = s_rl_handle,
    .tick = s_rl_tick,
    .shard_key = s_rl_shard_key,
};

static int64_t s_test_now;
static int64_t
s_test_clock (void)
{
    return s_test_now;
}

void
aigw_ratelimit_test (bool verbose)
{
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    s_rl_t *self = (s_rl_t *) s_rl_new (NULL, config);
    self->clock = s_test_clock;
    s_test_now = 1700000040000LL;  //  start of a window

    aigw_envelope_t *env = aigw_envelope_new ();
    aigw_envelope_set (&env->key_id, "k1");
    env->rpm = 3;
    for (int i = 0; i < 3; i++) {
        env->status = 0;
        s_rl_handle (self, env);
        assert (env->status == 0);
        assert (env->rl_limit == 3);
        assert (env->rl_remaining == 2 - i);
        assert (env->rl_reset == (s_test_now + AIGW_RL_WINDOW_MS) / 1000);
    }
    s_rl_handle (self, env);
    assert (env->status == 429);
    assert (env->rl_remaining == 0);
    assert (env->retry_after == 60);

    //  Another key has its own budget.
    aigw_envelope_t *other = aigw_envelope_new ();
    aigw_envelope_set (&other->key_id, "k2");
    other->rpm = 3;
    s_rl_handle (self, other);
    assert (other->status == 0 && other->rl_remaining == 2);

    //  Just past the boundary the old window still weighs in full: the
    //  limit holds across it (no extra request slips through).
    s_test_now += AIGW_RL_WINDOW_MS + 1;
    aigw_envelope_destroy (&env);
    env = aigw_envelope_new ();
    aigw_envelope_set (&env->key_id, "k1");
    env->rpm = 3;
    s_rl_handle (self, env);
    assert (env->status == 429);

    //  Half-way into the window half of the old count still weighs: 1.5
    //  carried counts as 2, so one more fits and the next is refused.
    s_test_now += AIGW_RL_WINDOW_MS / 2 - 1;
    for (int i = 0; i < 2; i++) {
        aigw_envelope_destroy (&env);
        env = aigw_envelope_new ();
        aigw_envelope_set (&env->key_id, "k1");
        env->rpm = 3;
        s_rl_handle (self, env);
        if (i == 0)
            assert (env->status == 0 && env->rl_remaining == 0);
    }
    assert (env->status == 429);
    assert (env->retry_after == 30);

    //  Idle keys are forgotten.
    s_test_now += 3 * AIGW_RL_WINDOW_MS;
    s_rl_tick (self);
    assert (zhashx_size (self->counters) == 0);

    aigw_envelope_destroy (&env);
    aigw_envelope_destroy (&other);
    void *state = self;
    s_rl_destroy (&state);
    s_rl_destroy (&state);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("ratelimit: ok\n");
}
