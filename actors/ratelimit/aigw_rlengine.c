/*  aigw_rlengine: counters, reservations and leases of the rate-limit owner. */
#include "aigw_rlengine.h"
#include "aigw_heap.h"
#include "aigw_table.h"

#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

//  Length of one rpm / tpm window.
#define S_MINUTE_MS 60000
//  One UTC day.
#define S_DAY_MS 86400000LL
//  Separator inside counter names and keys (never in ids or models we
//  are given; a name holding one still only names its own counter).
#define S_SEP '\x1f'
//  Longest counter key (shard, name); longer identities are cut.
#define S_KEY_MAX 600
//  A huge page: big allocations are aligned to it and ask for them.
#define S_HUGE_PAGE (2 * 1024 * 1024)
//  Longest Nd period, days.
#define S_ND_MAX 3660

//  Budget periods.
enum { S_PERIOD_NONE, S_PERIOD_DAY, S_PERIOD_WEEK, S_PERIOD_MONTH, S_PERIOD_ND };

//  One limit of a parsed lm.
typedef struct {
    uint8_t kind;        //  aigw_rl_kind_t
    uint8_t level;       //  aigw_rl_level_t
    uint8_t period;      //  budgets: S_PERIOD_*
    int64_t value;       //  requests, tokens, slots or nano-USD
    int64_t nd_ms;       //  S_PERIOD_ND: its length
    int64_t anchor_ms;   //  S_PERIOD_ND: a start of it
    const char *model;   //  km / tm limit named for a model, or NULL
    size_t model_len;    //  bytes in model
    const char *ptext;   //  budgets: period as written, or NULL
    size_t ptext_len;    //  bytes in ptext
    uint8_t cell_kinds;  //  kinds of the spec's limits sharing its cell
    int cell_of;         //  first limit of the spec in its cell (itself or earlier)
} s_limit_t;

//  A parsed lm string, kept by its text.
typedef struct {
    aigw_table_node_t node;                //  key: the lm text
    int count;                             //  limits used
    bool leased;                           //  some limit needs a settle
    s_limit_t limits[AIGW_RL_LIMITS_MAX];  //  sorted by level, then kind
    char *text;                            //  the lm text (models and periods point in)
} s_spec_t;

typedef struct _s_shard_t s_shard_t;
typedef struct _s_cell_t s_cell_t;

//  One counter; its kind is its place in its cell.
typedef struct {
    int64_t window;    //  start of the window or period, Unix ms
    int64_t end;       //  its end
    int64_t current;   //  count in it
    int64_t previous;  //  rpm / tpm: count in the window before
} s_counter_t;

//  The counters of one identity at one level (and model, and budget
//  period), in one allocation found by one lookup: a key's rpm and tpm
//  cost one cache miss, not two, and share the key bytes.
struct _s_cell_t {
    s_cell_t *next;        //  in its shard
    s_cell_t *prev;        //  in its shard
    s_cell_t *dirty_next;  //  in the engine's dirty list (dirty != 0)
    s_shard_t *shard;      //  its shard
    uint32_t refs;         //  lease entries pointing here
    uint16_t key_len;      //  bytes in its key
    uint8_t kinds;         //  a bit per kind held; slots in kind order
    uint8_t dirty;         //  a bit per kind changed since the last snapshot
    s_counter_t slots[];   //  then the key: level, S_SEP, id, S_SEP, model, S_SEP, period
};

//  One place of the cell index: open addressing, the hash kept beside
//  the pointer so a probe reads the cell only when it is the one.
typedef struct {
    uint64_t hash;   //  the cell key's hash
    s_cell_t *cell;  //  NULL = free
} s_bucket_t;

//  Budget spend rebuilt from roll-ups: one day of one key on one model.
typedef struct {
    char *key_id;  //  "" = none
    char *model;   //  "" = none
    int64_t day;   //  start of the UTC day, ms
    int64_t nusd;  //  spend
} s_spend_t;

//  One shard: a tenant's counters and leases.
struct _s_shard_t {
    aigw_table_node_t node;     //  key: name
    s_cell_t *cells;            //  its counters
    struct _s_lease_t *leases;  //  its leases
    s_spend_t *spend;           //  roll-up spend, for new budget counters
    size_t spend_count;         //  entries used
    size_t spend_cap;           //  entries allocated
    int64_t used_ms;            //  last request, Unix ms
    char name[];                //  shard key
};

//  One counter a lease reserved in.
typedef struct {
    s_cell_t *cell;  //  its cell (referenced)
    int kind;        //  the counter's kind
    int64_t window;  //  its window at the reservation
    int64_t amount;  //  tokens or nano-USD reserved; 1 for a slot
} s_entry_t;

//  Cells up to S_SLAB_MAX bytes come from huge-page chunks, in classes
//  of S_SLAB_STEP bytes: a million cells malloc'd one by one cost a TLB
//  miss on every lookup, which under a hypervisor was a third of a check.
#define S_SLAB_STEP 16
#define S_SLAB_MAX  512

//  Entries of a lease kept for reuse (most leases have one to three).
#define S_LEASE_ENTRIES 4
//  Spare leases kept; past it they go back to the heap.
#define S_SPARES_MAX 4096

//  A reservation waiting for its settle.
typedef struct _s_lease_t {
    aigw_table_node_t node;   //  key: id bytes
    aigw_heap_node_t timer;   //  expiry
    struct _s_lease_t *next;  //  in its shard, or among the spares
    struct _s_lease_t *prev;  //  in its shard
    s_shard_t *shard;         //  its shard
    uint64_t id;              //  sequence number
    int count;                //  entries used
    int cap;                  //  entries allocated
    s_entry_t entries[];      //  where it reserved
} s_lease_t;

struct _aigw_rlengine_t {
    aigw_table_t *specs;   //  lm text -> s_spec_t
    s_bucket_t *index;     //  cell key -> s_cell_t, a power of two of places
    size_t index_mask;     //  places minus one
    size_t cells;          //  cells held
    size_t counters;       //  counters held (in all cells)
    aigw_table_t *shards;  //  name -> s_shard_t
    aigw_table_t *leases;  //  id -> s_lease_t
    aigw_heap_t *expiry;   //  leases by expiry
    void *chunks;          //  slab chunks for cells, linked by their first word
    char *slab_at;         //  free space in the newest chunk
    char *slab_end;        //  its end
    void *slab_free[S_SLAB_MAX / S_SLAB_STEP + 1];  //  freed cells by size class
    s_lease_t *spares;                              //  freed leases of S_LEASE_ENTRIES, for reuse
    size_t spare_count;                             //  how many
    s_cell_t *dirty;                                //  changed cells, newest first
    bool track;                                     //  keep the dirty list (a database takes it)
    uint64_t owner_seq;                             //  this incarnation
    uint64_t lease_seq;                             //  last lease id
    size_t bytes;  //  bytes allocated here (cells, index, leases, shards, specs)
};

static const char *s_kind_names[] = {"rpm", "rpd", "tpm", "concurrency", "budget"};
static const char *s_kind_lm[] = {"rpm", "rpd", "tpm", "conc", "usd"};
static const char *s_level_names[] = {"key", "tenant", "key_model", "tenant_model"};

const char *
aigw_rlengine_kind_name (int kind)
{
    return kind >= 0 && kind <= AIGW_RL_USD ? s_kind_names[kind] : "none";
}

const char *
aigw_rlengine_level_name (int level)
{
    return level >= 0 && level <= AIGW_RL_TENANT_MODEL ? s_level_names[level] : "none";
}

//  Eight bytes a step, finished with a mix: the index probes from the low
//  bits. (Byte-wise FNV cost as much as the lookup it served.)
static uint64_t
s_hash (const void *data, size_t size)
{
    const unsigned char *p = (const unsigned char *) data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ size;
    uint64_t w;
    for (; size >= 8; p += 8, size -= 8) {
        memcpy (&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    w = 0;
    memcpy (&w, p, size);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

//  ---------------------------------------------------------------------
//  Periods

//  Start of the UTC month holding MS, shifted by MONTHS.
static int64_t
s_month_start (int64_t ms, int months)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mon += months;
    return (int64_t) timegm (&tm) * 1000;
}

//  Floor division for negative numerators too.
static int64_t
s_floor_div (int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

//  Bounds of LIMIT's budget period holding NOW.
static void
s_period_bounds (const s_limit_t *limit, int64_t now, int64_t *start, int64_t *end)
{
    int64_t day = s_floor_div (now, S_DAY_MS) * S_DAY_MS;
    switch (limit->period) {
        case S_PERIOD_DAY: *start = day, *end = day + S_DAY_MS; break;
        case S_PERIOD_WEEK: {
            //  1970-01-01 was a Thursday: Monday is three days before.
            int64_t days = s_floor_div (now, S_DAY_MS);
            int64_t monday = days - ((days + 3) % 7 + 7) % 7;
            *start = monday * S_DAY_MS, *end = *start + 7 * S_DAY_MS;
            break;
        }
        case S_PERIOD_ND: {
            int64_t n = s_floor_div (now - limit->anchor_ms, limit->nd_ms);
            *start = limit->anchor_ms + n * limit->nd_ms, *end = *start + limit->nd_ms;
            break;
        }
        default: *start = s_month_start (now, 0), *end = s_month_start (now, 1); break;
    }
}

//  Parse a decimal of LEN bytes at P (no sign) into *VALUE. 0 or -1.
static int
s_number (const char *p, size_t len, int64_t *value)
{
    if (len == 0 || len > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *value = v;
    return 0;
}

//  Parse the period of LEN bytes at P into LIMIT. 0 or -1.
static int
s_period_parse (const char *p, size_t len, s_limit_t *limit)
{
    limit->ptext = p;
    limit->ptext_len = len;
    if (len == 3 && memcmp (p, "day", 3) == 0)
        limit->period = S_PERIOD_DAY;
    else if (len == 4 && memcmp (p, "week", 4) == 0)
        limit->period = S_PERIOD_WEEK;
    else if (len == 5 && memcmp (p, "month", 5) == 0)
        limit->period = S_PERIOD_MONTH;
    else {
        const char *d = memchr (p, 'd', len);
        int64_t days, anchor;
        if (!d || d + 1 >= p + len || d[1] != '@' || s_number (p, (size_t) (d - p), &days)
            || s_number (d + 2, (size_t) (p + len - d - 2), &anchor) || days < 1 || days > S_ND_MAX)
            return -1;
        limit->period = S_PERIOD_ND;
        limit->nd_ms = days * S_DAY_MS;
        limit->anchor_ms = anchor * 1000;
    }
    return 0;
}

int
aigw_rlengine_period (const char *period, int64_t now, int64_t *start, int64_t *end)
{
    s_limit_t limit = {.kind = AIGW_RL_USD};
    if (!period || s_period_parse (period, strlen (period), &limit))
        return -1;
    s_period_bounds (&limit, now, start, end);
    return 0;
}

//  ---------------------------------------------------------------------
//  Specs

//  Parse the limit of LEN bytes at P (kind:value[/period]) into LIMIT.
static int
s_limit_parse (const char *p, size_t len, s_limit_t *limit)
{
    const char *colon = memchr (p, ':', len);
    if (!colon)
        return -1;
    size_t name_len = (size_t) (colon - p);
    int kind = -1;
    for (int k = 0; k <= AIGW_RL_USD; k++)
        if (strlen (s_kind_lm[k]) == name_len && memcmp (p, s_kind_lm[k], name_len) == 0)
            kind = k;
    if (kind < 0)
        return -1;
    limit->kind = (uint8_t) kind;
    const char *value = colon + 1;
    const char *end = p + len;
    const char *slash = memchr (value, '/', (size_t) (end - value));
    if (slash && kind != AIGW_RL_USD)
        return -1;
    if (s_number (value, (size_t) ((slash ? slash : end) - value), &limit->value))
        return -1;
    if (kind != AIGW_RL_USD && limit->value < 1)
        return -1;
    if (kind == AIGW_RL_USD) {
        //  A budget without a period is monthly, as budget_usd is.
        if (!slash) {
            limit->period = S_PERIOD_MONTH;
            limit->ptext = "month";
            limit->ptext_len = 5;
        }
        else if (s_period_parse (slash + 1, (size_t) (end - slash - 1), limit))
            return -1;
    }
    return 0;
}

//  Whether A and B count in the same cell for any request.
static bool
s_same_cell (const s_limit_t *a, const s_limit_t *b)
{
    return a->level == b->level && (a->model != NULL) == (b->model != NULL)
           && (!a->model
               || (a->model_len == b->model_len && memcmp (a->model, b->model, a->model_len) == 0))
           && (a->ptext != NULL) == (b->ptext != NULL)
           && (!a->ptext
               || (a->ptext_len == b->ptext_len && memcmp (a->ptext, b->ptext, a->ptext_len) == 0));
}

//  Parse TEXT into SPEC (text copied in). 0 or -1.
static int
s_spec_parse (s_spec_t *spec, const char *text, size_t len)
{
    spec->text = (char *) malloc (len + 1);
    if (!spec->text)
        return -1;
    memcpy (spec->text, text, len);
    spec->text[len] = 0;
    const char *p = spec->text;
    const char *end = p + len;
    while (p < end) {
        const char *semi = memchr (p, ';', (size_t) (end - p));
        const char *level_end = semi ? semi : end;
        const char *eq = memchr (p, '=', (size_t) (level_end - p));
        if (!eq)
            return -1;
        //  name, or name:model (reports: one level per model).
        const char *colon = memchr (p, ':', (size_t) (eq - p));
        size_t name_len = (size_t) ((colon ? colon : eq) - p);
        int level = name_len == 1 && *p == 'k'                  ? AIGW_RL_KEY
                    : name_len == 1 && *p == 't'                ? AIGW_RL_TENANT
                    : name_len == 2 && memcmp (p, "km", 2) == 0 ? AIGW_RL_KEY_MODEL
                    : name_len == 2 && memcmp (p, "tm", 2) == 0 ? AIGW_RL_TENANT_MODEL
                                                                : -1;
        if (level < 0 || (colon && level < AIGW_RL_KEY_MODEL) || (colon && colon + 1 == eq))
            return -1;
        const char *q = eq + 1;
        if (q >= level_end)
            return -1;
        while (q < level_end) {
            const char *comma = memchr (q, ',', (size_t) (level_end - q));
            const char *limit_end = comma ? comma : level_end;
            if (spec->count == AIGW_RL_LIMITS_MAX)
                return -1;
            s_limit_t *limit = &spec->limits[spec->count];
            memset (limit, 0, sizeof *limit);
            limit->level = (uint8_t) level;
            if (colon) {
                limit->model = colon + 1;
                limit->model_len = (size_t) (eq - colon - 1);
            }
            if (s_limit_parse (q, (size_t) (limit_end - q), limit))
                return -1;
            if (limit->kind == AIGW_RL_TPM || limit->kind == AIGW_RL_USD
                || limit->kind == AIGW_RL_CONC)
                spec->leased = true;
            spec->count++;
            q = comma ? comma + 1 : level_end;
            if (comma && q == level_end)
                return -1;
        }
        p = semi ? semi + 1 : end;
        if (semi && p == end)
            return -1;
    }
    //  Level, then kind: the tie-breaking order of the binding limit.
    for (int i = 1; i < spec->count; i++) {
        s_limit_t item = spec->limits[i];
        int j = i - 1;
        while (j >= 0
               && (spec->limits[j].level > item.level
                   || (spec->limits[j].level == item.level && spec->limits[j].kind > item.kind))) {
            spec->limits[j + 1] = spec->limits[j];
            j--;
        }
        spec->limits[j + 1] = item;
    }
    //  Limits of one level, model and period share a cell: found once,
    //  made with all their kinds at once (growing it mid-check would move
    //  it under the pointers taken before).
    for (int i = 0; i < spec->count; i++) {
        s_limit_t *limit = &spec->limits[i];
        limit->cell_of = i;
        for (int j = 0; j < i; j++)
            if (s_same_cell (&spec->limits[j], limit)) {
                limit->cell_of = spec->limits[j].cell_of;
                break;
            }
        spec->limits[limit->cell_of].cell_kinds |= (uint8_t) (1u << limit->kind);
    }
    for (int i = 0; i < spec->count; i++)
        spec->limits[i].cell_kinds = spec->limits[spec->limits[i].cell_of].cell_kinds;
    return 0;
}

static void
s_spec_free (aigw_rlengine_t *self, s_spec_t *spec)
{
    self->bytes -= sizeof *spec + strlen (spec->text) + 1;
    free (spec->text);
    free (spec);
}

//  The parsed form of LM, or NULL when malformed.
static s_spec_t *
s_spec_get (aigw_rlengine_t *self, const char *lm)
{
    size_t len = strlen (lm);
    uint64_t hash = s_hash (lm, len);
    aigw_table_node_t *node = aigw_table_lookup (self->specs, lm, len, hash);
    if (node)
        return (s_spec_t *) node;
    s_spec_t *spec = (s_spec_t *) calloc (1, sizeof *spec);
    if (!spec)
        return NULL;
    self->bytes += sizeof *spec + len + 1;
    if (s_spec_parse (spec, lm, len)) {
        if (!spec->text)
            self->bytes -= len + 1, spec->text = strdup ("");
        s_spec_free (self, spec);
        return NULL;
    }
    if (aigw_table_size (self->specs) >= AIGW_RL_SPECS_MAX) {
        //  Distinct strings are few (one per key and model); past the
        //  cap something churns them: start over.
        aigw_table_node_t *n = aigw_table_first (self->specs);
        while (n) {
            aigw_table_node_t *next = aigw_table_next (self->specs, n);
            aigw_table_remove (self->specs, n);
            s_spec_free (self, (s_spec_t *) n);
            n = next;
        }
    }
    spec->node.hash = hash;
    spec->node.key = (const unsigned char *) spec->text;
    spec->node.key_size = len;
    aigw_table_insert (self->specs, &spec->node);
    return spec;
}

//  ---------------------------------------------------------------------
//  Shards and counters

static s_shard_t *
s_shard_find (aigw_rlengine_t *self, const char *name)
{
    size_t len = strlen (name);
    return (s_shard_t *) aigw_table_lookup (self->shards, name, len, s_hash (name, len));
}

static s_shard_t *
s_shard_add (aigw_rlengine_t *self, const char *name, int64_t now)
{
    s_shard_t *shard = s_shard_find (self, name);
    if (shard)
        return shard;
    size_t len = strlen (name);
    shard = (s_shard_t *) calloc (1, sizeof *shard + len + 1);
    if (!shard)
        return NULL;
    memcpy (shard->name, name, len + 1);
    shard->used_ms = now;
    shard->node.hash = s_hash (name, len);
    shard->node.key = (const unsigned char *) shard->name;
    shard->node.key_size = len;
    aigw_table_insert (self->shards, &shard->node);
    self->bytes += sizeof *shard + len + 1;
    return shard;
}

//  SIZE bytes for a cell, from the slab when small. NULL when out of
//  memory.
static void *
s_slab_alloc (aigw_rlengine_t *self, size_t size)
{
    if (size > S_SLAB_MAX)
        return malloc (size);
    size_t class = (size + S_SLAB_STEP - 1) / S_SLAB_STEP;
    void *item = self->slab_free[class];
    if (item) {
        self->slab_free[class] = *(void **) item;
        return item;
    }
    size = class * S_SLAB_STEP;
    if (self->slab_at + size > self->slab_end) {
        //  The rest of the chunk (less than a cell) is left unused.
        char *chunk = (char *) aligned_alloc (S_HUGE_PAGE, S_HUGE_PAGE);
        if (!chunk)
            return NULL;
        madvise (chunk, S_HUGE_PAGE, MADV_HUGEPAGE);
        *(void **) chunk = self->chunks;
        self->chunks = chunk;
        self->slab_at = chunk + S_SLAB_STEP;
        self->slab_end = chunk + S_HUGE_PAGE;
    }
    item = self->slab_at;
    self->slab_at += size;
    return item;
}

//  Give back ITEM of SIZE bytes (as asked for). Slab memory stays with
//  the engine for the next cells.
static void
s_slab_free (aigw_rlengine_t *self, void *item, size_t size)
{
    if (size > S_SLAB_MAX) {
        free (item);
        return;
    }
    size_t class = (size + S_SLAB_STEP - 1) / S_SLAB_STEP;
    *(void **) item = self->slab_free[class];
    self->slab_free[class] = item;
}

//  Counters in a cell holding KINDS.
static int
s_kind_count (unsigned kinds)
{
    //  No popcnt instruction without -mpopcnt: five bits, a table.
    static const uint8_t count[32] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                      1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5};
    return count[kinds & 31];
}

//  The key bytes of CELL (after its counters).
static unsigned char *
s_cell_key (s_cell_t *cell)
{
    return (unsigned char *) (cell->slots + s_kind_count (cell->kinds));
}

//  CELL's counter of KIND (which it holds).
static s_counter_t *
s_slot (s_cell_t *cell, int kind)
{
    return &cell->slots[s_kind_count (cell->kinds & ((1u << kind) - 1))];
}

//  The hash of the cell KEY (LEN bytes) of SHARD: cells name their shard
//  by pointer, not by a copy of its name (a tenant id per counter).
static uint64_t
s_cell_hash (s_shard_t *shard, const void *key, size_t len)
{
    return s_hash (key, len) ^ ((uint64_t) (uintptr_t) shard * 0x9e3779b97f4a7c15ULL);
}

//  The place of SHARD's KEY (LEN bytes, HASH) in the index: its cell's,
//  or the free place where it would go.
static s_bucket_t *
s_index_find (aigw_rlengine_t *self, s_shard_t *shard, const void *key, size_t len, uint64_t hash)
{
    for (size_t i = hash & self->index_mask;; i = (i + 1) & self->index_mask) {
        s_bucket_t *b = &self->index[i];
        if (!b->cell
            || (b->hash == hash && b->cell->shard == shard && b->cell->key_len == len
                && memcmp (s_cell_key (b->cell), key, len) == 0))
            return b;
    }
}

//  PLACES free places. Past a huge page they are asked for in huge
//  pages: a random probe then costs a cache miss but no TLB miss (most
//  of a miss under a hypervisor).
static s_bucket_t *
s_index_alloc (size_t places)
{
    size_t size = places * sizeof (s_bucket_t);
    if (size < S_HUGE_PAGE)
        return (s_bucket_t *) calloc (places, sizeof (s_bucket_t));
    void *index = aligned_alloc (S_HUGE_PAGE, size);
    if (index) {
        madvise (index, size, MADV_HUGEPAGE);
        memset (index, 0, size);
    }
    return (s_bucket_t *) index;
}

//  Room for one more cell: double the places past three quarters full.
//  0, or -1 when out of memory and full.
static int
s_index_reserve (aigw_rlengine_t *self)
{
    size_t places = self->index_mask + 1;
    if ((self->cells + 1) * 4 <= places * 3)
        return 0;
    s_bucket_t *index = s_index_alloc (places * 2);
    if (!index)
        return self->cells + 1 < places ? 0 : -1;
    size_t mask = places * 2 - 1;
    for (size_t i = 0; i < places; i++) {
        s_bucket_t *b = &self->index[i];
        if (!b->cell)
            continue;
        size_t j = b->hash & mask;
        while (index[j].cell)
            j = (j + 1) & mask;
        index[j] = *b;
    }
    free (self->index);
    self->index = index;
    self->index_mask = mask;
    self->bytes += places * sizeof *index;
    return 0;
}

//  Empty place B, shifting back the places after it that probed past it
//  (no tombstones: a lookup stays as short as the load).
static void
s_index_remove (aigw_rlengine_t *self, s_bucket_t *b)
{
    size_t mask = self->index_mask;
    size_t i = (size_t) (b - self->index);
    for (size_t j = (i + 1) & mask; self->index[j].cell; j = (j + 1) & mask) {
        size_t home = self->index[j].hash & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            self->index[i] = self->index[j];
            i = j;
        }
    }
    self->index[i].cell = NULL;
    self->index[i].hash = 0;
}

//  The place holding CELL.
static s_bucket_t *
s_index_of (aigw_rlengine_t *self, s_cell_t *cell)
{
    return s_index_find (self, cell->shard, s_cell_key (cell), cell->key_len,
                         s_cell_hash (cell->shard, s_cell_key (cell), cell->key_len));
}

//  Replace OLD by CELL in the engine's dirty list, or unlink OLD (CELL
//  NULL). Rare (a cell freed or grown while dirty): a walk is fine.
static void
s_dirty_swap (aigw_rlengine_t *self, s_cell_t *old, s_cell_t *cell)
{
    for (s_cell_t **p = &self->dirty; *p; p = &(*p)->dirty_next)
        if (*p == old) {
            if (cell) {
                cell->dirty_next = old->dirty_next;
                *p = cell;
            }
            else
                *p = old->dirty_next;
            return;
        }
}

static size_t
s_cell_size (unsigned kinds, size_t key_len)
{
    return sizeof (s_cell_t) + (size_t) s_kind_count (kinds) * sizeof (s_counter_t) + key_len;
}

static void
s_cell_free (aigw_rlengine_t *self, s_cell_t *cell)
{
    if (cell->dirty)
        s_dirty_swap (self, cell, NULL);
    s_index_remove (self, s_index_of (self, cell));
    s_shard_t *shard = cell->shard;
    if (cell->prev)
        cell->prev->next = cell->next;
    else
        shard->cells = cell->next;
    if (cell->next)
        cell->next->prev = cell->prev;
    self->cells--;
    self->counters -= (size_t) s_kind_count (cell->kinds);
    self->bytes -= s_cell_size (cell->kinds, cell->key_len);
    s_slab_free (self, cell, s_cell_size (cell->kinds, cell->key_len));
}

//  A cell for KEY (LEN bytes) in SHARD holding KINDS, its counters fresh
//  except those copied from OLD (NULL: none).
static s_cell_t *
s_cell_alloc (aigw_rlengine_t *self, s_shard_t *shard, const void *key, size_t len, unsigned kinds,
              s_cell_t *old)
{
    s_cell_t *cell = (s_cell_t *) s_slab_alloc (self, s_cell_size (kinds, len));
    if (!cell)
        return NULL;
    memset (cell, 0, sizeof *cell);
    cell->shard = shard;
    cell->key_len = (uint16_t) len;
    cell->kinds = (uint8_t) kinds;
    int at = 0;
    for (int kind = 0; kind <= AIGW_RL_USD; kind++) {
        if (!(kinds & (1u << kind)))
            continue;
        if (old && (old->kinds & (1u << kind)))
            cell->slots[at] = *s_slot (old, kind);
        else
            //  Rolled on first use.
            cell->slots[at] = (s_counter_t){0, INT64_MIN, 0, 0};
        at++;
    }
    memcpy (s_cell_key (cell), key, len);
    return cell;
}

//  The cell of KEY (LEN bytes) in SHARD, made when missing, grown when
//  it lacks one of KINDS. NULL when out of memory.
static s_cell_t *
s_cell_get (aigw_rlengine_t *self, s_shard_t *shard, const char *key, size_t len, unsigned kinds)
{
    uint64_t hash = s_cell_hash (shard, key, len);
    s_bucket_t *b = s_index_find (self, shard, key, len, hash);
    s_cell_t *old = b->cell;
    if (old && (old->kinds & kinds) == kinds)
        return old;
    if (!old) {
        if (s_index_reserve (self))
            return NULL;
        s_cell_t *cell = s_cell_alloc (self, shard, key, len, kinds, NULL);
        if (!cell)
            return NULL;
        b = s_index_find (self, shard, key, len, hash);
        b->hash = hash;
        b->cell = cell;
        cell->next = shard->cells;
        if (shard->cells)
            shard->cells->prev = cell;
        shard->cells = cell;
        self->cells++;
        self->counters += (size_t) s_kind_count (kinds);
        self->bytes += s_cell_size (kinds, len);
        return cell;
    }
    //  A kind it lacks (its limits changed): move it to a larger cell,
    //  and everything that points at it along.
    kinds |= old->kinds;
    s_cell_t *cell = s_cell_alloc (self, shard, key, len, kinds, old);
    if (!cell)
        return NULL;
    cell->next = old->next;
    cell->prev = old->prev;
    cell->refs = old->refs;
    cell->dirty = old->dirty;
    if (cell->prev)
        cell->prev->next = cell;
    else
        shard->cells = cell;
    if (cell->next)
        cell->next->prev = cell;
    if (old->dirty)
        s_dirty_swap (self, old, cell);
    for (s_lease_t *lease = shard->leases; lease && old->refs; lease = lease->next)
        for (int i = 0; i < lease->count; i++)
            if (lease->entries[i].cell == old)
                lease->entries[i].cell = cell;
    b->cell = cell;
    self->counters += (size_t) (s_kind_count (kinds) - s_kind_count (old->kinds));
    self->bytes += s_cell_size (kinds, len) - s_cell_size (old->kinds, len);
    s_slab_free (self, old, s_cell_size (old->kinds, len));
    return cell;
}

//  Mark KIND of CELL changed, for the next snapshot.
static void
s_mark (aigw_rlengine_t *self, s_cell_t *cell, int kind)
{
    if (!self->track || kind == AIGW_RL_CONC)
        return;
    if (!cell->dirty) {
        cell->dirty_next = self->dirty;
        self->dirty = cell;
    }
    cell->dirty |= (uint8_t) (1u << kind);
}

//  Roll COUNTER of KIND forward to NOW under LIMIT (NULL: a counter
//  loaded from a row, whose period is known by its own bounds only).
static void
s_roll (s_counter_t *counter, int kind, const s_limit_t *limit, int64_t now)
{
    if (now >= counter->window && now < counter->end)
        return;
    switch (kind) {
        case AIGW_RL_RPM:
        case AIGW_RL_TPM: {
            int64_t window = s_floor_div (now, S_MINUTE_MS) * S_MINUTE_MS;
            counter->previous = window - counter->window == S_MINUTE_MS ? counter->current : 0;
            counter->current = 0;
            counter->window = window;
            counter->end = window + S_MINUTE_MS;
            break;
        }
        case AIGW_RL_RPD:
            counter->window = s_floor_div (now, S_DAY_MS) * S_DAY_MS;
            counter->end = counter->window + S_DAY_MS;
            counter->current = 0;
            break;
        case AIGW_RL_USD: {
            if (!limit)
                return;
            int64_t start;
            s_period_bounds (limit, now, &start, &counter->end);
            //  Same period (a counter read back): its count stands.
            if (start != counter->window)
                counter->current = 0;
            counter->window = start;
            break;
        }
        default:
            counter->window = 0;
            counter->end = INT64_MAX;
            break;
    }
}

//  Count against COUNTER of KIND now: the sliding minute for rpm and tpm
//  (the previous window weighted by its overlap with the last minute,
//  rounded up: rounding down let one request over the limit through at
//  every boundary), else the window's count.
static int64_t
s_used (const s_counter_t *counter, int kind, int64_t now)
{
    if (kind != AIGW_RL_RPM && kind != AIGW_RL_TPM)
        return counter->current;
    int64_t elapsed = now - counter->window;
    int64_t weighted = counter->previous * (S_MINUTE_MS - elapsed);
    return (weighted + S_MINUTE_MS - 1) / S_MINUTE_MS + counter->current;
}

//  Spend kept for SHARD matching LEVEL, KEY_ID and MODEL since START.
static int64_t
s_spend_sum (s_shard_t *shard, int level, const char *key_id, const char *model, int64_t start,
             int64_t end)
{
    int64_t sum = 0;
    for (size_t i = 0; i < shard->spend_count; i++) {
        s_spend_t *s = &shard->spend[i];
        //  A day that began before the period counts whole: it errs high.
        if (s->day + S_DAY_MS <= start || s->day >= end)
            continue;
        bool by_key = level == AIGW_RL_KEY || level == AIGW_RL_KEY_MODEL;
        bool by_model = level == AIGW_RL_KEY_MODEL || level == AIGW_RL_TENANT_MODEL;
        if (by_key && strcmp (s->key_id, key_id ? key_id : ""))
            continue;
        if (by_model && strcmp (s->model, model ? model : ""))
            continue;
        sum += s->nusd;
    }
    return sum;
}

//  Append LEN bytes at DATA to BUF at *AT, within SIZE (cut when longer).
static void
s_put (char *buf, size_t size, size_t *at, const char *data, size_t len)
{
    if (*at + len > size)
        len = size - *at;
    memcpy (buf + *at, data, len);
    *at += len;
}

//  Write the key of LIMIT's cell for KEY_ID, TENANT_ID and MODEL into BUF
//  (SIZE bytes): the level digit, identity, model and period. A
//  counter's name (its row's) is its kind digit, then its cell's key.
//  Returns the key's length. Called on every check: no printf.
static size_t
s_cell_name (char *buf, size_t size, const s_limit_t *limit, const char *key_id,
             const char *tenant_id, const char *model)
{
    const char *id
        = limit->level == AIGW_RL_KEY || limit->level == AIGW_RL_KEY_MODEL ? key_id : tenant_id;
    id = id ? id : "";
    const char *model_text = "";
    size_t model_len = 0;
    if (limit->level >= AIGW_RL_KEY_MODEL) {
        model_text = limit->model ? limit->model : model ? model : "";
        model_len = limit->model ? limit->model_len : strlen (model_text);
    }
    char sep = S_SEP;
    char level = (char) ('0' + limit->level);
    size_t at = 0;
    s_put (buf, size, &at, &level, 1);
    s_put (buf, size, &at, &sep, 1);
    s_put (buf, size, &at, id, strlen (id));
    s_put (buf, size, &at, &sep, 1);
    s_put (buf, size, &at, model_text, model_len);
    s_put (buf, size, &at, &sep, 1);
    if (limit->ptext)
        s_put (buf, size, &at, limit->ptext, limit->ptext_len);
    return at;
}

//  Bytes a cell key may take in a shard named in SHARD_LEN bytes: a
//  counter's shard, S_SEP and name were cut at S_KEY_MAX together.
static size_t
s_key_room (size_t shard_len)
{
    return shard_len + 2 < S_KEY_MAX ? S_KEY_MAX - 2 - shard_len : 0;
}

//  The name of CELL's counter of KIND into NAME (S_KEY_MAX bytes).
static void
s_counter_name (s_cell_t *cell, int kind, char *name)
{
    name[0] = (char) ('0' + kind);
    memcpy (name + 1, s_cell_key (cell), cell->key_len);
    name[cell->key_len + 1] = 0;
}

//  The counter key of LIMIT (shard, S_SEP, name) into BUF, the name's
//  offset to *NAME_AT; for the selftest, which writes rows by hand.
static size_t
s_key (char *buf, size_t size, const char *shard, const s_limit_t *limit, const char *key_id,
       const char *tenant_id, const char *model, size_t *name_at)
{
    char cell[S_KEY_MAX];
    size_t len = s_cell_name (cell, s_key_room (strlen (shard)), limit, key_id, tenant_id, model);
    size_t at = 0;
    char sep = S_SEP;
    char kind = (char) ('0' + limit->kind);
    s_put (buf, size, &at, shard, strlen (shard));
    s_put (buf, size, &at, &sep, 1);
    *name_at = at;
    s_put (buf, size, &at, &kind, 1);
    s_put (buf, size, &at, cell, len);
    return at;
}

//  The cells of SPEC's limits for KEY_ID, TENANT_ID and MODEL into CELLS,
//  their counters rolled to NOW. 0, or -1 when out of memory.
static int
s_cells_for (aigw_rlengine_t *self, s_shard_t *shard, const s_spec_t *spec, const char *key_id,
             const char *tenant_id, const char *model, int64_t now, s_cell_t **cells)
{
    size_t room = s_key_room (shard->node.key_size);
    for (int i = 0; i < spec->count; i++) {
        const s_limit_t *limit = &spec->limits[i];
        if (limit->cell_of < i)
            cells[i] = cells[limit->cell_of];
        else {
            char key[S_KEY_MAX];
            size_t len = s_cell_name (key, room, limit, key_id, tenant_id, model);
            cells[i] = s_cell_get (self, shard, key, len, limit->cell_kinds);
            if (!cells[i])
                return -1;
        }
        s_counter_t *counter = s_slot (cells[i], limit->kind);
        //  New, or read back from a snapshot: a budget starts from the
        //  spend rebuilt from the roll-ups when that is more.
        bool fresh = counter->end <= INT64_MIN + 1;
        s_roll (counter, limit->kind, limit, now);
        if (fresh && limit->kind == AIGW_RL_USD && shard->spend_count) {
            char model_text[S_KEY_MAX];
            snprintf (model_text, sizeof model_text, "%.*s",
                      limit->model ? (int) limit->model_len : (int) strlen (model ? model : ""),
                      limit->model ? limit->model
                      : model      ? model
                                   : "");
            int64_t spend = s_spend_sum (shard, limit->level, key_id, model_text, counter->window,
                                         counter->end);
            if (spend > counter->current)
                counter->current = spend;
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Leases

//  A lease of COUNT entries, from the spares when they fit. NULL when out
//  of memory.
static s_lease_t *
s_lease_new (aigw_rlengine_t *self, int count)
{
    s_lease_t *lease = NULL;
    if (count <= S_LEASE_ENTRIES && self->spares) {
        lease = self->spares;
        self->spares = lease->next;
        self->spare_count--;
    }
    else {
        int cap = count < S_LEASE_ENTRIES ? S_LEASE_ENTRIES : count;
        lease = (s_lease_t *) malloc (sizeof *lease + (size_t) cap * sizeof (s_entry_t));
        if (!lease)
            return NULL;
        lease->cap = cap;
        self->bytes += sizeof *lease + (size_t) cap * sizeof (s_entry_t);
    }
    int cap = lease->cap;
    memset (lease, 0, sizeof *lease);
    lease->cap = cap;
    return lease;
}

static void
s_lease_free (aigw_rlengine_t *self, s_lease_t *lease)
{
    aigw_table_remove (self->leases, &lease->node);
    aigw_heap_remove (self->expiry, &lease->timer);
    s_shard_t *shard = lease->shard;
    if (lease->prev)
        lease->prev->next = lease->next;
    else if (shard->leases == lease)
        shard->leases = lease->next;
    if (lease->next)
        lease->next->prev = lease->prev;
    for (int i = 0; i < lease->count; i++)
        lease->entries[i].cell->refs--;
    //  A check and its settle come in pairs: reuse rather than malloc.
    if (lease->cap == S_LEASE_ENTRIES && self->spare_count < S_SPARES_MAX) {
        lease->next = self->spares;
        self->spares = lease;
        self->spare_count++;
        return;
    }
    self->bytes -= sizeof *lease + (size_t) lease->cap * sizeof (s_entry_t);
    free (lease);
}

//  Release LEASE's concurrency slots.
static void
s_lease_release (aigw_rlengine_t *self, s_lease_t *lease)
{
    (void) self;
    for (int i = 0; i < lease->count; i++) {
        s_entry_t *e = &lease->entries[i];
        s_counter_t *counter = s_slot (e->cell, e->kind);
        if (e->kind == AIGW_RL_CONC && counter->current > 0)
            counter->current--;
    }
}

//  Write the reservation of lease ID of OWNER into BUF as "%016llx:%llu"
//  would (snprintf was a tenth of a check).
static void
s_reservation (char *buf, uint64_t owner, uint64_t id)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, owner >>= 4)
        buf[i] = hex[owner & 15];
    buf[16] = ':';
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char) ('0' + id % 10);
        id /= 10;
    } while (id);
    for (int i = 0; i < n; i++)
        buf[17 + i] = digits[n - 1 - i];
    buf[17 + n] = 0;
}

//  ---------------------------------------------------------------------
//  The engine

//  First places in the cell index, a power of two.
#define S_INDEX_INITIAL 64

aigw_rlengine_t *
aigw_rlengine_new (uint64_t owner_seq)
{
    aigw_rlengine_t *self = (aigw_rlengine_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->specs = aigw_table_new ();
    self->index = s_index_alloc (S_INDEX_INITIAL);
    self->index_mask = S_INDEX_INITIAL - 1;
    self->bytes = S_INDEX_INITIAL * sizeof (s_bucket_t);
    self->shards = aigw_table_new ();
    self->leases = aigw_table_new ();
    self->expiry = aigw_heap_new ();
    self->owner_seq = owner_seq;
    if (!self->specs || !self->index || !self->shards || !self->leases || !self->expiry)
        aigw_rlengine_destroy (&self);
    return self;
}

void
aigw_rlengine_destroy (aigw_rlengine_t **self_p)
{
    aigw_rlengine_t *self = *self_p;
    if (!self)
        return;
    while (self->shards && aigw_table_size (self->shards)) {
        s_shard_t *shard = (s_shard_t *) aigw_table_first (self->shards);
        aigw_rlengine_drop_shard (self, shard->name);
    }
    if (self->specs) {
        aigw_table_node_t *n = aigw_table_first (self->specs);
        while (n) {
            aigw_table_node_t *next = aigw_table_next (self->specs, n);
            s_spec_free (self, (s_spec_t *) n);
            n = next;
        }
    }
    while (self->spares) {
        s_lease_t *lease = self->spares;
        self->spares = lease->next;
        free (lease);
    }
    while (self->chunks) {
        void *chunk = self->chunks;
        self->chunks = *(void **) chunk;
        free (chunk);
    }
    aigw_table_destroy (&self->specs);
    free (self->index);
    aigw_table_destroy (&self->shards);
    aigw_table_destroy (&self->leases);
    aigw_heap_destroy (&self->expiry);
    free (self);
    *self_p = NULL;
}

void
aigw_rlengine_track (aigw_rlengine_t *self, bool track)
{
    self->track = track;
}

//  Seconds from NOW to AT, at least 1.
static int
s_seconds (int64_t at, int64_t now)
{
    int64_t s = (at - now + 999) / 1000;
    return s < 1 ? 1 : s > INT_MAX ? INT_MAX : (int) s;
}

//  Budgets show in micro-USD, the others as counted.
static int64_t
s_shown (int kind, int64_t value)
{
    return kind == AIGW_RL_USD ? value / 1000 : value;
}

int
aigw_rlengine_check (aigw_rlengine_t *self, const aigw_rl_request_t *req, int64_t now,
                     aigw_rl_verdict_t *verdict)
{
    memset (verdict, 0, sizeof *verdict);
    verdict->ok = true;
    verdict->kind = -1;
    s_spec_t *spec = s_spec_get (self, req->lm ? req->lm : "");
    if (!spec)
        return -1;
    if (spec->count == 0)
        return 0;
    s_shard_t *shard = s_shard_add (self, req->shard, now);
    if (!shard)
        return -1;
    shard->used_ms = now;
    s_cell_t *cells[AIGW_RL_LIMITS_MAX];
    if (s_cells_for (self, shard, spec, req->key_id, req->tenant_id, req->model, now, cells))
        return -1;
    s_counter_t *counters[AIGW_RL_LIMITS_MAX];
    int64_t needs[AIGW_RL_LIMITS_MAX];
    int best = -1;
    double best_room = 0;
    int64_t best_used = 0;
    for (int i = 0; i < spec->count; i++) {
        const s_limit_t *limit = &spec->limits[i];
        counters[i] = s_slot (cells[i], limit->kind);
        //  A spent budget refuses even a request priced at nothing.
        int64_t need = limit->kind == AIGW_RL_TPM   ? req->tokens
                       : limit->kind == AIGW_RL_USD ? (req->nusd > 0 ? req->nusd : 1)
                                                    : 1;
        needs[i] = need < 0 ? 0 : need;
        int64_t used = s_used (counters[i], limit->kind, now);
        int64_t room = limit->value - used - needs[i];
        //  Room as a share of the value; strictly less wins, so ties go
        //  to the earlier level and kind.
        double share = limit->value > 0 ? (double) room / (double) limit->value
                       : room < 0       ? -1e300
                                        : 0;
        if (best < 0 || share < best_room) {
            best = i;
            best_room = share;
            best_used = used;
        }
    }
    const s_limit_t *limit = &spec->limits[best];
    s_counter_t *binding = counters[best];
    int64_t room = limit->value - best_used - needs[best];
    verdict->kind = limit->kind;
    verdict->level = limit->level;
    verdict->limit = s_shown (limit->kind, limit->value);
    int64_t reset_ms = limit->kind == AIGW_RL_CONC ? now + 1000 : binding->end;
    verdict->reset_s = (reset_ms + 999) / 1000;
    if (room < 0) {
        verdict->ok = false;
        int64_t left = limit->value - best_used;
        verdict->remaining = s_shown (limit->kind, left > 0 ? left : 0);
        //  A slot frees when a request ends: try again soon.
        verdict->retry_after = limit->kind == AIGW_RL_CONC ? 1 : s_seconds (binding->end, now);
        return 0;
    }
    verdict->remaining = s_shown (limit->kind, room);
    s_lease_t *lease = NULL;
    if (spec->leased) {
        lease = s_lease_new (self, spec->count);
        if (!lease)
            return -1;
    }
    for (int i = 0; i < spec->count; i++) {
        int kind = spec->limits[i].kind;
        counters[i]->current += needs[i];
        s_mark (self, cells[i], kind);
        if (lease && (kind == AIGW_RL_TPM || kind == AIGW_RL_USD || kind == AIGW_RL_CONC)) {
            lease->entries[lease->count++]
                = (s_entry_t){cells[i], kind, counters[i]->window, needs[i]};
            cells[i]->refs++;
        }
    }
    if (lease) {
        lease->id = ++self->lease_seq;
        lease->shard = shard;
        lease->node.hash = s_hash (&lease->id, sizeof lease->id);
        lease->node.key = (const unsigned char *) &lease->id;
        lease->node.key_size = sizeof lease->id;
        aigw_table_insert (self->leases, &lease->node);
        aigw_heap_node_init (&lease->timer, req->lease_ms);
        if (aigw_heap_push (self->expiry, &lease->timer)) {
            //  Out of memory for the timer: settle-only, released at once.
            s_lease_release (self, lease);
            s_lease_free (self, lease);
            return 0;
        }
        lease->next = shard->leases;
        if (shard->leases)
            shard->leases->prev = lease;
        shard->leases = lease;
        s_reservation (verdict->reservation, self->owner_seq, lease->id);
    }
    return 0;
}

int
aigw_rlengine_settle (aigw_rlengine_t *self, const char *reservation, int64_t tokens, int64_t nusd,
                      int64_t now)
{
    if (!reservation)
        return -1;
    char *end;
    unsigned long long owner = strtoull (reservation, &end, 16);
    if (end != reservation + 16 || *end != ':' || owner != self->owner_seq)
        return -1;
    uint64_t id = strtoull (end + 1, &end, 10);
    if (*end)
        return -1;
    s_lease_t *lease
        = (s_lease_t *) aigw_table_lookup (self->leases, &id, sizeof id, s_hash (&id, sizeof id));
    if (!lease)
        return -1;
    for (int i = 0; i < lease->count; i++) {
        s_entry_t *e = &lease->entries[i];
        s_counter_t *counter = s_slot (e->cell, e->kind);
        if (e->kind == AIGW_RL_CONC) {
            if (counter->current > 0)
                counter->current--;
            continue;
        }
        int64_t real = e->kind == AIGW_RL_TPM ? tokens : nusd;
        int64_t delta = (real < 0 ? 0 : real) - e->amount;
        //  Only where it was reserved: a window gone by is history.
        int64_t *slot = counter->window == e->window ? &counter->current
                        : e->kind == AIGW_RL_TPM && counter->window == e->window + S_MINUTE_MS
                            ? &counter->previous
                            : NULL;
        if (slot) {
            *slot += delta;
            if (*slot < 0)
                *slot = 0;
            s_mark (self, e->cell, e->kind);
        }
    }
    (void) now;
    s_lease_free (self, lease);
    return 0;
}

//  Whether COUNTER of KIND holds nothing a request still needs.
static bool
s_counter_empty (const s_counter_t *counter, int kind, int64_t now)
{
    if (kind == AIGW_RL_RPM || kind == AIGW_RL_TPM)
        return now >= counter->end + S_MINUTE_MS || (!counter->current && !counter->previous);
    if (kind == AIGW_RL_CONC)
        return counter->current == 0;
    return now >= counter->end || counter->current == 0;
}

//  Whether CELL holds nothing a request or a snapshot still needs (an
//  empty counter kept beside a busy one reads as a new one would).
static bool
s_cell_empty (s_cell_t *cell, int64_t now)
{
    if (cell->refs || cell->dirty)
        return false;
    for (int kind = 0; kind <= AIGW_RL_USD; kind++)
        if ((cell->kinds & (1u << kind)) && !s_counter_empty (s_slot (cell, kind), kind, now))
            return false;
    return true;
}

size_t
aigw_rlengine_tick (aigw_rlengine_t *self, int64_t now, int64_t idle_before)
{
    aigw_heap_node_t *top;
    while ((top = aigw_heap_top (self->expiry)) && top->key <= now) {
        s_lease_t *lease = (s_lease_t *) ((char *) top - offsetof (s_lease_t, timer));
        //  The edge never settled: free the slot, keep the charge.
        s_lease_release (self, lease);
        s_lease_free (self, lease);
    }
    size_t forgotten = 0;
    aigw_table_node_t *node = aigw_table_first (self->shards);
    while (node) {
        aigw_table_node_t *next = aigw_table_next (self->shards, node);
        s_shard_t *shard = (s_shard_t *) node;
        //  A shard in use keeps its counters; an idle one sheds the empty.
        if (now - shard->used_ms >= S_MINUTE_MS) {
            s_cell_t *cell = shard->cells;
            while (cell) {
                s_cell_t *after = cell->next;
                if (s_cell_empty (cell, now))
                    s_cell_free (self, cell);
                cell = after;
            }
        }
        bool clean = true;
        for (s_cell_t *c = shard->cells; c && clean; c = c->next)
            clean = !c->dirty && !c->refs;
        if (!shard->leases && clean
            && (!shard->cells || (idle_before && shard->used_ms < idle_before))) {
            aigw_rlengine_drop_shard (self, shard->name);
            forgotten++;
        }
        node = next;
    }
    return forgotten;
}

bool
aigw_rlengine_has_shard (aigw_rlengine_t *self, const char *shard)
{
    return s_shard_find (self, shard) != NULL;
}

void
aigw_rlengine_add_shard (aigw_rlengine_t *self, const char *shard, int64_t now)
{
    s_shard_add (self, shard, now);
}

void
aigw_rlengine_drop_shard (aigw_rlengine_t *self, const char *name)
{
    s_shard_t *shard = s_shard_find (self, name);
    if (!shard)
        return;
    while (shard->leases)
        s_lease_free (self, shard->leases);
    while (shard->cells)
        s_cell_free (self, shard->cells);
    for (size_t i = 0; i < shard->spend_count; i++) {
        free (shard->spend[i].key_id);
        free (shard->spend[i].model);
    }
    free (shard->spend);
    aigw_table_remove (self->shards, &shard->node);
    self->bytes -= sizeof *shard + shard->node.key_size + 1;
    free (shard);
}

const char *
aigw_rlengine_next_shard (aigw_rlengine_t *self, const char *name)
{
    aigw_table_node_t *node;
    if (!name)
        node = aigw_table_first (self->shards);
    else {
        s_shard_t *shard = s_shard_find (self, name);
        node = shard ? aigw_table_next (self->shards, &shard->node) : NULL;
    }
    return node ? ((s_shard_t *) node)->name : NULL;
}

void
aigw_rlengine_load (aigw_rlengine_t *self, const aigw_rl_row_t *row, int64_t now)
{
    s_shard_t *shard = s_shard_find (self, row->shard);
    if (!shard || !row->name || !*row->name)
        return;
    int kind = row->name[0] - '0';
    if (kind < 0 || kind > AIGW_RL_USD || kind == AIGW_RL_CONC)
        return;
    //  The cell key: the shard, then the name without its kind digit.
    size_t name_len = strlen (row->name);
    if (shard->node.key_size + 1 + name_len >= S_KEY_MAX)
        return;
    s_cell_t *cell = s_cell_get (self, shard, row->name + 1, name_len - 1, 1u << kind);
    if (!cell)
        return;
    s_counter_t *counter = s_slot (cell, kind);
    if (kind == AIGW_RL_USD) {
        //  A budget keeps the larger figure of its period (the roll-ups
        //  may hold more than the snapshot saw); its limit names the end,
        //  so the next check rolls it.
        bool fresh = counter->end == INT64_MIN;
        if (!fresh && counter->window > row->window)
            return;
        if (fresh || counter->window < row->window || row->current > counter->current)
            counter->current = row->current;
        counter->window = row->window;
        counter->end = INT64_MIN + 1;
        return;
    }
    counter->window = row->window;
    counter->current = row->current;
    counter->previous = row->previous;
    counter->end = row->window + (kind == AIGW_RL_RPD ? S_DAY_MS : S_MINUTE_MS);
    //  Stale rows roll to what they mean now.
    s_roll (counter, kind, NULL, now);
}

void
aigw_rlengine_spend (aigw_rlengine_t *self, const char *shard_name, const char *key_id,
                     const char *model, int64_t day_ms, int64_t nusd, int64_t now)
{
    s_shard_t *shard = s_shard_find (self, shard_name);
    if (!shard)
        return;
    if (shard->spend_count == shard->spend_cap) {
        size_t cap = shard->spend_cap ? 2 * shard->spend_cap : 16;
        s_spend_t *spend = (s_spend_t *) realloc (shard->spend, cap * sizeof *spend);
        if (!spend)
            return;
        shard->spend = spend;
        shard->spend_cap = cap;
    }
    s_spend_t *s = &shard->spend[shard->spend_count++];
    s->key_id = strdup (key_id ? key_id : "");
    s->model = strdup (model ? model : "");
    s->day = day_ms;
    s->nusd = nusd;
    (void) now;
}

size_t
aigw_rlengine_dirty (aigw_rlengine_t *self, size_t max,
                     void (*fn) (void *arg, const aigw_rl_row_t *row), void *arg)
{
    size_t count = 0;
    while (self->dirty && count < max) {
        s_cell_t *cell = self->dirty;
        for (int kind = 0; kind <= AIGW_RL_USD && count < max; kind++) {
            if (!(cell->dirty & (1u << kind)))
                continue;
            cell->dirty &= (uint8_t) ~(1u << kind);
            char name[S_KEY_MAX + 1];
            s_counter_name (cell, kind, name);
            s_counter_t *counter = s_slot (cell, kind);
            aigw_rl_row_t row
                = {cell->shard->name, name, counter->window, counter->current, counter->previous};
            fn (arg, &row);
            count++;
        }
        //  Rows left past MAX keep it at the head.
        if (!cell->dirty) {
            self->dirty = cell->dirty_next;
            cell->dirty_next = NULL;
        }
    }
    return count;
}

int
aigw_rlengine_report (aigw_rlengine_t *self, const char *shard_name, const char *lm,
                      const char *key_id, const char *tenant_id, const char *model, int64_t now,
                      aigw_rl_figure_t *figures, int max)
{
    s_spec_t *spec = s_spec_get (self, lm ? lm : "");
    if (!spec)
        return -1;
    s_shard_t *shard = s_shard_add (self, shard_name, now);
    s_cell_t *cells[AIGW_RL_LIMITS_MAX];
    if (shard && s_cells_for (self, shard, spec, key_id, tenant_id, model, now, cells))
        shard = NULL;
    int count = 0;
    for (int i = 0; i < spec->count && count < max; i++) {
        const s_limit_t *limit = &spec->limits[i];
        s_counter_t *counter = shard ? s_slot (cells[i], limit->kind) : NULL;
        aigw_rl_figure_t *f = &figures[count++];
        memset (f, 0, sizeof *f);
        f->kind = limit->kind;
        f->level = limit->level;
        f->limit = limit->value;
        f->used = counter ? s_used (counter, limit->kind, now) : 0;
        int64_t end = counter ? counter->end : now;
        f->reset_s = ((limit->kind == AIGW_RL_CONC ? now : end) + 999) / 1000;
        if (limit->model)
            snprintf (f->model, sizeof f->model, "%.*s", (int) limit->model_len, limit->model);
        if (limit->ptext)
            snprintf (f->period, sizeof f->period, "%.*s", (int) limit->ptext_len, limit->ptext);
    }
    return count;
}

size_t
aigw_rlengine_counters (aigw_rlengine_t *self)
{
    return self->counters;
}

size_t
aigw_rlengine_leases (aigw_rlengine_t *self)
{
    return aigw_table_size (self->leases);
}

size_t
aigw_rlengine_bytes (aigw_rlengine_t *self)
{
    return self->bytes;
}

//  ---------------------------------------------------------------------
//  Selftest

//  Check LM for KEY (tenant T, model M) at NOW; returns the verdict.
static aigw_rl_verdict_t
s_try (aigw_rlengine_t *self, const char *lm, const char *key, const char *t, const char *m,
       int64_t tokens, int64_t nusd, int64_t now)
{
    aigw_rl_request_t req = {t, key, t, m, lm, tokens, nusd, now + 30000};
    aigw_rl_verdict_t v;
    assert (aigw_rlengine_check (self, &req, now, &v) == 0);
    return v;
}

//  What a report says KIND at LEVEL has used.
static int64_t
s_used_now (aigw_rlengine_t *self, const char *lm, const char *key, const char *t, const char *m,
            int kind, int level, int64_t now)
{
    aigw_rl_figure_t f[AIGW_RL_LIMITS_MAX];
    int n = aigw_rlengine_report (self, t, lm, key, t, m, now, f, AIGW_RL_LIMITS_MAX);
    for (int i = 0; i < n; i++)
        if (f[i].kind == kind && f[i].level == level)
            return f[i].used;
    return -1;
}

static void
s_count_row (void *arg, const aigw_rl_row_t *row)
{
    (*(size_t *) arg)++;
    assert (row->shard && row->name);
}

void
aigw_rlengine_test (bool verbose)
{
    //  Periods: 2024-01-03 is a Wednesday.
    int64_t start, end;
    int64_t wed = 1704240000000LL + 3600000;
    assert (aigw_rlengine_period ("day", wed, &start, &end) == 0);
    assert (start == 1704240000000LL && end == start + S_DAY_MS);
    assert (aigw_rlengine_period ("week", wed, &start, &end) == 0);
    assert (start == 1704067200000LL && end == start + 7 * S_DAY_MS);
    assert (aigw_rlengine_period ("week", 1704067200000LL, &start, &end) == 0);
    assert (start == 1704067200000LL);  //  Monday 00:00 is its own week
    assert (aigw_rlengine_period ("month", 1707955200000LL, &start, &end) == 0);
    assert (start == 1706745600000LL && end == 1709251200000LL);  //  Feb 2024, leap
    assert (aigw_rlengine_period ("month", 1703980800000LL + 1, &start, &end) == 0);
    assert (start == 1701388800000LL && end == 1704067200000LL);  //  December rolls the year
    assert (aigw_rlengine_period ("7d@1704067200", 1704067200000LL + 10 * S_DAY_MS, &start, &end)
            == 0);
    assert (start == 1704067200000LL + 7 * S_DAY_MS && end == start + 7 * S_DAY_MS);
    assert (aigw_rlengine_period ("7d@1704067200", 1704067200000LL - 1000, &start, &end) == 0);
    assert (start == 1704067200000LL - 7 * S_DAY_MS && end == 1704067200000LL);
    assert (aigw_rlengine_period ("0d@5", 0, &start, &end) == -1);
    assert (aigw_rlengine_period ("fortnight", 0, &start, &end) == -1);

    aigw_rlengine_t *self = aigw_rlengine_new (0xabcdef);
    assert (self);
    int64_t now = 1704240000000LL;  //  a window and a day start
    aigw_rl_request_t bad = {"t", "k", "t", NULL, NULL, 0, 0, now};
    aigw_rl_verdict_t v;
    const char *malformed[]
        = {"x=rpm:1", "k=rpm:0",  "k=rpm:",      "k=usd:5/fortnight", "k=rpm:1;",
           "k=",      "k=rpm:1,", "k=tpm:5/day", "k:m=rpm:1",         "k=bogus:1"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        bad.lm = malformed[i];
        assert (aigw_rlengine_check (self, &bad, now, &v) == -1);
    }
    //  No limits: passes, nothing binding, nothing to settle.
    v = s_try (self, "", "k0", "t0", "m", 10, 10, now);
    assert (v.ok && v.kind == -1 && !*v.reservation);

    //  rpm at the key level: the figures, then a 429 to the window's end.
    for (int i = 0; i < 3; i++) {
        v = s_try (self, "k=rpm:3", "k1", "t1", "m", 0, 0, now);
        assert (v.ok && v.kind == AIGW_RL_RPM && v.level == AIGW_RL_KEY);
        assert (v.limit == 3 && v.remaining == 2 - i && v.reset_s == now / 1000 + 60);
        assert (!*v.reservation);  //  rpm needs no settle
    }
    v = s_try (self, "k=rpm:3", "k1", "t1", "m", 0, 0, now);
    assert (!v.ok && v.remaining == 0 && v.retry_after == 60);
    //  The sliding minute: half-way into the next window 1.5 carried
    //  counts as 2, so one fits.
    v = s_try (self, "k=rpm:3", "k1", "t1", "m", 0, 0, now + 90000);
    assert (v.ok && v.remaining == 0);
    v = s_try (self, "k=rpm:3", "k1", "t1", "m", 0, 0, now + 90000);
    assert (!v.ok && v.retry_after == 30);

    //  All or nothing: the tenant's limit refuses, the key's count stays.
    const char *kt = "k=rpm:10;t=rpm:2";
    assert (s_try (self, kt, "k2", "t2", "m", 0, 0, now).ok);
    assert (s_try (self, kt, "k2", "t2", "m", 0, 0, now).ok);
    v = s_try (self, kt, "k2", "t2", "m", 0, 0, now);
    assert (!v.ok && v.kind == AIGW_RL_RPM && v.level == AIGW_RL_TENANT);
    assert (s_used_now (self, kt, "k2", "t2", "m", AIGW_RL_RPM, AIGW_RL_KEY, now) == 2);
    //  Another key of the tenant shares the tenant's count.
    v = s_try (self, kt, "k2b", "t2", "m", 0, 0, now);
    assert (!v.ok && v.level == AIGW_RL_TENANT);
    assert (s_used_now (self, kt, "k2b", "t2", "m", AIGW_RL_RPM, AIGW_RL_KEY, now) == 0);

    //  Binding: the least room as a share of the value; ties by level.
    v = s_try (self, "k=rpm:10;t=rpm:100", "k3", "t3", "m", 0, 0, now);
    assert (v.level == AIGW_RL_KEY && v.remaining == 9);
    v = s_try (self, "k=rpm:100;t=rpm:10", "k4", "t4", "m", 0, 0, now);
    assert (v.level == AIGW_RL_TENANT && v.remaining == 9);
    v = s_try (self, "t=rpm:10;k=rpm:10", "k5", "t5", "m", 0, 0, now);
    assert (v.level == AIGW_RL_KEY);
    //  Ties within a level: rpm before tpm.
    v = s_try (self, "k=tpm:100,rpm:1", "k6", "t6", "m", 100, 0, now);
    assert (v.ok && v.kind == AIGW_RL_RPM && v.remaining == 0);

    //  Model levels: their own counters per model.
    const char *mm = "km=rpm:1;tm=rpm:5";
    assert (s_try (self, mm, "k7", "t7", "gpt", 0, 0, now).ok);
    v = s_try (self, mm, "k7", "t7", "gpt", 0, 0, now);
    assert (!v.ok && v.level == AIGW_RL_KEY_MODEL);
    assert (s_try (self, mm, "k7", "t7", "other", 0, 0, now).ok);
    for (int i = 0; i < 4; i++) {  //  the tenant's gpt count is 1 already
        v = s_try (self, "tm=rpm:5", "k7y", "t7", "gpt", 0, 0, now);
        assert (v.ok && v.level == AIGW_RL_TENANT_MODEL && v.remaining == 3 - i);
    }
    v = s_try (self, "tm=rpm:5", "k7z", "t7", "gpt", 0, 0, now);
    assert (!v.ok && v.kind == AIGW_RL_RPM && v.level == AIGW_RL_TENANT_MODEL);

    //  rpd: the UTC day.
    assert (s_try (self, "t=rpd:2", "k8", "t8", "m", 0, 0, now + 1000).ok);
    assert (s_try (self, "t=rpd:2", "k8", "t8", "m", 0, 0, now + 3600000).ok);
    v = s_try (self, "t=rpd:2", "k8", "t8", "m", 0, 0, now + 7200000);
    assert (!v.ok && v.kind == AIGW_RL_RPD && v.retry_after == 86400 - 7200);
    assert (s_try (self, "t=rpd:2", "k8", "t8", "m", 0, 0, now + S_DAY_MS).ok);

    //  tpm: reserve, refuse, settle the difference back.
    size_t leases = aigw_rlengine_leases (self);
    v = s_try (self, "k=tpm:1000", "k9", "t9", "m", 600, 0, now);
    assert (v.ok && v.kind == AIGW_RL_TPM && v.remaining == 400 && *v.reservation);
    char rv[AIGW_RL_RESERVATION_MAX];
    strcpy (rv, v.reservation);
    v = s_try (self, "k=tpm:1000", "k9", "t9", "m", 600, 0, now);
    assert (!v.ok && v.kind == AIGW_RL_TPM && v.remaining == 400);
    assert (aigw_rlengine_leases (self) == leases + 1);
    assert (aigw_rlengine_settle (self, rv, 100, 0, now) == 0);
    assert (aigw_rlengine_settle (self, rv, 100, 0, now) == -1);  //  twice: nothing
    assert (aigw_rlengine_leases (self) == leases);
    assert (s_used_now (self, "k=tpm:1000", "k9", "t9", "m", AIGW_RL_TPM, AIGW_RL_KEY, now) == 100);
    v = s_try (self, "k=tpm:1000", "k9", "t9", "m", 600, 0, now);
    assert (v.ok && v.remaining == 300);
    //  A settle in the next window corrects the carried count.
    strcpy (rv, v.reservation);
    assert (aigw_rlengine_settle (self, rv, 0, 0, now + S_MINUTE_MS) == 0);
    assert (s_used_now (self, "k=tpm:1000", "k9", "t9", "m", AIGW_RL_TPM, AIGW_RL_KEY,
                        now + S_MINUTE_MS)
            == 100);
    //  Another owner's reservation, or garbage: nothing.
    assert (aigw_rlengine_settle (self, "0000000000000001:1", 0, 0, now) == -1);
    assert (aigw_rlengine_settle (self, "x", 0, 0, now) == -1);

    //  Concurrency: slots, released by settle or by the lease's expiry.
    const char *cc = "k=conc:2";
    aigw_rl_verdict_t c1 = s_try (self, cc, "k10", "t10", "m", 0, 0, now);
    aigw_rl_verdict_t c2 = s_try (self, cc, "k10", "t10", "m", 0, 0, now);
    assert (c1.ok && c2.ok && c2.remaining == 0 && c2.kind == AIGW_RL_CONC);
    v = s_try (self, cc, "k10", "t10", "m", 0, 0, now);
    assert (!v.ok && v.kind == AIGW_RL_CONC && v.retry_after == 1);
    assert (aigw_rlengine_settle (self, c1.reservation, 0, 0, now) == 0);
    assert (s_try (self, cc, "k10", "t10", "m", 0, 0, now).ok);
    assert (!s_try (self, cc, "k10", "t10", "m", 0, 0, now).ok);
    //  Leases run out 30 s on (s_try): both slots come back, and a late
    //  settle changes nothing.
    aigw_rlengine_tick (self, now + 30000, 0);
    assert (s_used_now (self, cc, "k10", "t10", "m", AIGW_RL_CONC, AIGW_RL_KEY, now) == 0);
    assert (aigw_rlengine_settle (self, c2.reservation, 0, 0, now + 30001) == -1);
    //  ... while an expired lease's tokens stay charged.
    v = s_try (self, "k=tpm:1000,conc:5", "k11", "t11", "m", 700, 0, now);
    assert (v.ok);
    aigw_rlengine_tick (self, now + 30000, 0);
    assert (s_used_now (self, "k=tpm:1000,conc:5", "k11", "t11", "m", AIGW_RL_TPM, AIGW_RL_KEY,
                        now + 30000)
            == 700);

    //  Budgets: reserve nano-USD, settle the real cost, roll per period.
    const char *bd = "k=usd:1000/day;t=usd:5000/week";
    v = s_try (self, bd, "k12", "t12", "m", 0, 600, now);
    assert (v.ok && v.kind == AIGW_RL_USD && v.level == AIGW_RL_KEY);
    strcpy (rv, v.reservation);
    v = s_try (self, bd, "k12", "t12", "m", 0, 600, now);
    assert (!v.ok && v.kind == AIGW_RL_USD && v.level == AIGW_RL_KEY);
    assert (v.retry_after == 86400);
    assert (aigw_rlengine_settle (self, rv, 0, 300, now) == 0);
    assert (s_try (self, bd, "k12", "t12", "m", 0, 600, now).ok);
    //  Next day: the key's day budget starts over, the tenant's week not.
    assert (s_used_now (self, bd, "k12", "t12", "m", AIGW_RL_USD, AIGW_RL_TENANT, now + S_DAY_MS)
            == 900);
    assert (s_used_now (self, bd, "k12", "t12", "m", AIGW_RL_USD, AIGW_RL_KEY, now + S_DAY_MS)
            == 0);
    //  Next Monday (2024-01-08): the week starts over too.
    assert (
        s_used_now (self, bd, "k12", "t12", "m", AIGW_RL_USD, AIGW_RL_TENANT, 1704672000000LL - 1)
        == 900);
    assert (s_used_now (self, bd, "k12", "t12", "m", AIGW_RL_USD, AIGW_RL_TENANT, 1704672000000LL)
            == 0);
    //  A month and an Nd period.
    const char *bm = "k=usd:100/month;km=usd:100/2d@1704240000";
    assert (s_try (self, bm, "k13", "t13", "m", 0, 80, now).ok);
    v = s_try (self, bm, "k13", "t13", "m", 0, 80, now + 2 * S_DAY_MS);
    assert (!v.ok && v.level == AIGW_RL_KEY);  //  the month still counts, the 2d not
    assert (
        s_used_now (self, bm, "k13", "t13", "m", AIGW_RL_USD, AIGW_RL_KEY_MODEL, now + 2 * S_DAY_MS)
        == 0);
    assert (s_try (self, bm, "k13", "t13", "m", 0, 80, 1706745600000LL).ok);  //  February

    //  Spend rebuilt from roll-ups counts in a new budget counter.
    aigw_rlengine_add_shard (self, "t14", now);
    aigw_rlengine_spend (self, "t14", "k14", "m", now, 700, now);
    aigw_rlengine_spend (self, "t14", "other", "m", now, 200, now);
    aigw_rlengine_spend (self, "t14", "k14", "m", now - 40 * S_DAY_MS, 5000, now);
    v = s_try (self, "k=usd:1000/month;t=usd:1000/month", "k14", "t14", "m", 0, 50, now);
    assert (v.ok && v.level == AIGW_RL_TENANT && v.remaining == 0);  //  micro-USD shown
    assert (
        s_used_now (self, "t=usd:1000/month", "k14", "t14", "m", AIGW_RL_USD, AIGW_RL_TENANT, now)
        == 950);

    //  Snapshots: changed counters only, and read back by another owner.
    aigw_rlengine_track (self, true);
    assert (s_try (self, "k=rpm:5,rpd:9;t=usd:99/day", "k15", "t15", "m", 0, 7, now).ok);
    size_t rows = 0;
    assert (aigw_rlengine_dirty (self, 100, s_count_row, &rows) == 3 && rows == 3);
    assert (aigw_rlengine_dirty (self, 100, s_count_row, &rows) == 0);
    aigw_rlengine_t *other = aigw_rlengine_new (2);
    aigw_rlengine_add_shard (other, "t15", now);
    aigw_rl_row_t row = {"t15", NULL, now, 0, 0};
    char name[S_KEY_MAX];
    s_limit_t rpm = {.kind = AIGW_RL_RPM, .level = AIGW_RL_KEY};
    size_t at;
    size_t len = s_key (name, sizeof name, "t15", &rpm, "k15", "t15", "m", &at);
    name[len] = 0;
    row.name = name + at;
    row.current = 4;
    aigw_rlengine_load (other, &row, now + 1000);
    v = s_try (other, "k=rpm:5", "k15", "t15", "m", 0, 0, now + 1000);
    assert (v.ok && v.remaining == 0);
    assert (!s_try (other, "k=rpm:5", "k15", "t15", "m", 0, 0, now + 1000).ok);
    //  A stale row rolls: two windows on, nothing is left of it.
    aigw_rlengine_drop_shard (other, "t15");
    assert (!aigw_rlengine_has_shard (other, "t15"));
    aigw_rlengine_add_shard (other, "t15", now);
    aigw_rlengine_load (other, &row, now + 2 * S_MINUTE_MS);
    v = s_try (other, "k=rpm:5", "k15", "t15", "m", 0, 0, now + 2 * S_MINUTE_MS);
    assert (v.ok && v.remaining == 4);
    aigw_rlengine_destroy (&other);
    aigw_rlengine_track (self, false);

    //  Idle shards and empty counters go; those with leases stay.
    v = s_try (self, "k=conc:1", "k16", "t16", "m", 0, 0, now);
    size_t before = aigw_rlengine_counters (self);
    aigw_rlengine_tick (self, now + 10 * S_MINUTE_MS, 0);
    assert (aigw_rlengine_counters (self) < before);
    assert (!aigw_rlengine_has_shard (self, "t16"));  //  its lease ran out: empty, gone
    aigw_rlengine_tick (self, now + 40 * S_DAY_MS, now + 40 * S_DAY_MS);
    assert (aigw_rlengine_counters (self) == 0 && aigw_rlengine_leases (self) == 0);

    //  A million keys, each with its own counter.
    size_t keys = 1000000;
    char key[32];
    for (size_t i = 0; i < keys; i++) {
        snprintf (key, sizeof key, "key-%zu", i);
        aigw_rl_request_t req = {key, key, NULL, "m", "k=rpm:2", 0, 0, now};
        assert (aigw_rlengine_check (self, &req, now, &v) == 0 && v.ok && v.remaining == 1);
    }
    assert (aigw_rlengine_counters (self) == keys);
    snprintf (key, sizeof key, "key-%zu", keys / 2);
    assert (s_try (self, "k=rpm:2", key, key, "m", 0, 0, now).ok);
    assert (!s_try (self, "k=rpm:2", key, key, "m", 0, 0, now).ok);
    if (verbose)
        printf ("rlengine: %zu counters, %zu bytes\n", aigw_rlengine_counters (self),
                aigw_rlengine_bytes (self));
    aigw_rlengine_tick (self, now + 3 * S_MINUTE_MS, 0);
    assert (aigw_rlengine_counters (self) == 0);
    aigw_rlengine_destroy (&self);
    aigw_rlengine_destroy (&self);
    if (verbose)
        printf ("rlengine: ok\n");
}
