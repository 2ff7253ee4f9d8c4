/*  aigw_rlengine: the rate-limit owner's counters (schemas/limits.md 1-3).

    A request names its limits in an `lm` string (limits.md 4a); the
    engine parses each distinct string once, finds the counter of every
    limit (by level, identity, model, kind and period), and in one step
    either reserves in all of them or in none. What needs settling
    (tokens, USD, a concurrency slot) is kept as a lease, named by an
    opaque reservation string, until the settle or its expiry.

    Counters belong to a shard (the tenant the stage is sharded by), so a
    shard's counters can be loaded, dropped and snapshotted together.
    No I/O, no clock of its own: every call takes NOW (Unix ms).
    Single-threaded: one stage owns one engine. */
#ifndef AIGW_RLENGINE_H_INCLUDED
#define AIGW_RLENGINE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Kinds, in tie-breaking order (limits.md 1).
typedef enum {
    AIGW_RL_RPM = 0,
    AIGW_RL_RPD = 1,
    AIGW_RL_TPM = 2,
    AIGW_RL_CONC = 3,
    AIGW_RL_USD = 4
} aigw_rl_kind_t;

//  Levels, in tie-breaking order (the default is folded into the key's).
typedef enum {
    AIGW_RL_KEY = 0,
    AIGW_RL_TENANT = 1,
    AIGW_RL_KEY_MODEL = 2,
    AIGW_RL_TENANT_MODEL = 3
} aigw_rl_level_t;

//  Most limits one lm string holds; more is malformed.
#define AIGW_RL_LIMITS_MAX 64
//  Longest reservation string, NUL included.
#define AIGW_RL_RESERVATION_MAX 48
//  Parsed lm strings kept; the cache starts over past it.
#define AIGW_RL_SPECS_MAX 65536

typedef struct _aigw_rlengine_t aigw_rlengine_t;

//  One request to check.
typedef struct {
    const char *shard;      //  the stage's shard key (tenant id, or key id)
    const char *key_id;     //  identity of the k and km levels
    const char *tenant_id;  //  identity of the t and tm levels
    const char *model;      //  model of the km and tm levels without one
    const char *lm;         //  limits (limits.md 4a)
    int64_t tokens;         //  tokens to reserve against tpm
    int64_t nusd;           //  nano-USD to reserve against budgets
    int64_t lease_ms;       //  when an unsettled reservation expires, Unix ms
} aigw_rl_request_t;

//  What a check decided, and the binding limit's figures.
typedef struct {
    bool ok;                                    //  passed (and reserved)
    int kind;                                   //  binding kind, -1 = no limit applies
    int level;                                  //  binding level
    int64_t limit;                              //  its value (budget: micro-USD)
    int64_t remaining;                          //  room left after this request, >= 0
    int64_t reset_s;                            //  when its window or period ends, Unix s
    int retry_after;                            //  refused: seconds until it has room, >= 1
    char reservation[AIGW_RL_RESERVATION_MAX];  //  "" when nothing needs a settle
} aigw_rl_verdict_t;

//  One limit's figures, for reports (limits.md 7).
typedef struct {
    int kind;         //  aigw_rl_kind_t
    int level;        //  aigw_rl_level_t
    char model[128];  //  model of a km / tm limit, "" = the report's
    char period[32];  //  budget period as written in lm, else ""
    int64_t limit;    //  value (budget: nano-USD)
    int64_t used;     //  used now
    int64_t reset_s;  //  end of its window or period, Unix s
} aigw_rl_figure_t;

//  One counter's durable state, for snapshots and loads.
typedef struct {
    const char *shard;  //  its shard
    const char *name;   //  its name in the shard (opaque text)
    int64_t window;     //  start of its window or period, Unix ms
    int64_t current;    //  count in that window
    int64_t previous;   //  count in the window before (rpm, tpm)
} aigw_rl_row_t;

//  A new engine; OWNER_SEQ names this owner's incarnation in reservations
//  (settles for another incarnation change nothing). NULL when out of memory.
aigw_rlengine_t *aigw_rlengine_new (uint64_t owner_seq);
void aigw_rlengine_destroy (aigw_rlengine_t **self_p);

//  Keep a list of changed counters for aigw_rlengine_dirty (only when a
//  database takes snapshots: nobody else empties it).
void aigw_rlengine_track (aigw_rlengine_t *self, bool track);

//  Check REQ at NOW: reserve in every limit or in none, fill VERDICT.
//  Returns 0, or -1 when REQ->lm is malformed (nothing reserved).
int aigw_rlengine_check (aigw_rlengine_t *self, const aigw_rl_request_t *req, int64_t now,
                         aigw_rl_verdict_t *verdict);

//  Settle RESERVATION with the real TOKENS and NUSD: they replace the
//  reserved ones where they were reserved, its concurrency slot is
//  released. Returns 0, or -1 when it is unknown, expired or settled
//  (nothing changes).
int aigw_rlengine_settle (aigw_rlengine_t *self, const char *reservation, int64_t tokens,
                          int64_t nusd, int64_t now);

//  Expire leases due at NOW (their concurrency released, their charge
//  kept), forget counters with nothing left in them, and shards with no
//  counters left or idle since IDLE_BEFORE (Unix ms; 0 = none) whose
//  counters are all clean. Returns the shards forgotten.
size_t aigw_rlengine_tick (aigw_rlengine_t *self, int64_t now, int64_t idle_before);

//  True when SHARD's counters are here (loaded, or started empty).
bool aigw_rlengine_has_shard (aigw_rlengine_t *self, const char *shard);

//  Make SHARD known (empty) at NOW, if it is not.
void aigw_rlengine_add_shard (aigw_rlengine_t *self, const char *shard, int64_t now);

//  Forget SHARD, its counters and its leases (its owner moved).
void aigw_rlengine_drop_shard (aigw_rlengine_t *self, const char *shard);

//  The known shards, for an ownership sweep: the one after SHARD (NULL:
//  the first) in no fixed order, or NULL at the end. The string lives
//  until the shard is dropped.
const char *aigw_rlengine_next_shard (aigw_rlengine_t *self, const char *shard);

//  Set a counter from a durable ROW (a snapshot read back), at NOW: a
//  budget keeps the larger of its value and the row's. Known shard only.
void aigw_rlengine_load (aigw_rlengine_t *self, const aigw_rl_row_t *row, int64_t now);

//  Raise the budget counters of SHARD from spend rebuilt elsewhere (usage
//  roll-ups): SPEND (nano-USD) of KEY_ID ("" = none) on MODEL ("" = none)
//  on day DAY_MS (UTC start). Kept per shard and read when a budget
//  counter is made; applied to counters that exist now.
void aigw_rlengine_spend (aigw_rlengine_t *self, const char *shard, const char *key_id,
                          const char *model, int64_t day_ms, int64_t spend, int64_t now);

//  Call FN for every counter changed since the last call (and mark it
//  clean), at most MAX of them. Returns how many. Concurrency is not
//  durable (leases die with their owner) and is skipped.
size_t aigw_rlengine_dirty (aigw_rlengine_t *self, size_t max,
                            void (*fn) (void *arg, const aigw_rl_row_t *row), void *arg);

//  The figures of every limit in LM for KEY_ID, TENANT_ID and MODEL at
//  NOW, into FIGURES (up to MAX). Returns how many, or -1 when malformed.
int aigw_rlengine_report (aigw_rlengine_t *self, const char *shard, const char *lm,
                          const char *key_id, const char *tenant_id, const char *model, int64_t now,
                          aigw_rl_figure_t *figures, int max);

//  Counters, leases and bytes held (bytes: the engine's own allocations).
size_t aigw_rlengine_counters (aigw_rlengine_t *self);
size_t aigw_rlengine_leases (aigw_rlengine_t *self);
size_t aigw_rlengine_bytes (aigw_rlengine_t *self);

//  Names of a kind as the error code says it (rpm, rpd, tpm, concurrency,
//  budget), and of a level as the error param says it.
const char *aigw_rlengine_kind_name (int kind);
const char *aigw_rlengine_level_name (int level);

//  Start (*START) and end (*END) of the budget period PERIOD (as lm writes
//  it) holding NOW, Unix ms. Returns 0, or -1 when PERIOD is malformed.
int aigw_rlengine_period (const char *period, int64_t now, int64_t *start, int64_t *end);

void aigw_rlengine_test (bool verbose);

#endif
