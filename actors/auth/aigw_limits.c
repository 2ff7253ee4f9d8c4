/*  aigw_limits: check, bound and compile a `limits` object (see aigw_limits.h). */
#include "aigw_limits.h"
#include "aigw_config.h"
#include "aigw_text.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

//  The count kinds, as the JSON names them and as lm does, in lm's order.
static const char *const s_kinds[] = {"rpm", "rpd", "tpm", "concurrency"};
static const char *const s_lm_kinds[] = {"rpm", "rpd", "tpm", "conc"};
#define S_KIND_COUNT 4
//  Longest compiled level: five limits of at most 40 characters each.
#define S_LEVEL_MAX 256

struct _aigw_limits_t {
    char *level;       //  the top level, compiled ("" = none)
    int64_t rpm;       //  its requests per minute, 0 = none
    zhashx_t *models;  //  model name -> compiled limits (char *)
};

//  PARENT.CHILD into OUT (SIZE bytes), cut short when too long: a path
//  is only a name in a message.
static void
s_path (char *out, size_t size, const char *parent, const char *child)
{
    if (snprintf (out, size, "%s.%s", parent, child) >= (int) size && size > 4)
        memcpy (out + size - 4, "...", 4);
}

//  Fill ERR: PATH, then MEMBER if not NULL, as the param; the message
//  from FORMAT.
static int __attribute__ ((format (printf, 4, 5)))
s_fail (aigw_limits_error_t *err, const char *path, const char *member, const char *format, ...)
{
    if (member)
        s_path (err->param, sizeof err->param, path, member);
    else
        snprintf (err->param, sizeof err->param, "%s", path);
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
    return -1;
}

//  Index of NAME among the count kinds, or -1.
static int
s_kind (const char *name)
{
    for (int i = 0; i < S_KIND_COUNT; i++)
        if (streq (name, s_kinds[i]))
            return i;
    return -1;
}

//  An RFC 3339 date-time from 1970 on as Unix seconds (a fraction is
//  dropped). Returns 0 or -1.
static int
s_time_parse (const char *text, int64_t *seconds)
{
    int64_t ms;
    if (aigw_text_time_parse (text, &ms) || ms < 0)
        return -1;
    *seconds = ms / 1000;
    return 0;
}

//  The days of an "Nd" period, 0 when TEXT is not one.
static int
s_period_days (const char *text)
{
    size_t len = strlen (text);
    if (len < 2 || len > 5 || text[len - 1] != 'd' || text[0] == '0')
        return 0;
    int days = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        days = days * 10 + (text[i] - '0');
    }
    return days <= AIGW_LIMITS_PERIOD_DAYS_MAX ? days : 0;
}

//  A budget's period, "month" when it names none.
static const char *
s_period (json_t *budget)
{
    const char *period = json_string_value (json_object_get (budget, "period"));
    return period ? period : "month";
}

//  Check BUDGET at PATH. Returns 0 or -1 with ERR.
static int
s_check_budget (json_t *budget, const char *path, aigw_limits_error_t *err)
{
    if (!json_is_object (budget))
        return s_fail (err, path, NULL, "'%s' must be an object {usd, period, reset}.", path);
    const char *name;
    json_t *value;
    json_object_foreach (budget, name, value) {
        if (!streq (name, "usd") && !streq (name, "period") && !streq (name, "reset"))
            return s_fail (err, path, strlen (name) <= 60 ? name : NULL,
                           "Unknown member '%.60s' in '%s': a budget takes usd, period and reset.",
                           name, path);
    }
    json_t *usd = json_object_get (budget, "usd");
    if (!usd)
        return s_fail (err, path, "usd", "'%s.usd' is required.", path);
    double amount = json_is_number (usd) ? json_number_value (usd) : -1;
    if (!json_is_number (usd) || !isfinite (amount) || amount < 0 || amount > AIGW_LIMITS_USD_MAX)
        return s_fail (err, path, "usd", "'%s.usd' must be a number from 0 to %.0f.", path,
                       AIGW_LIMITS_USD_MAX);
    double micro = amount * 1e6;
    if (fabs (micro - round (micro)) > fmax (1e-3, micro * 1e-12))
        return s_fail (err, path, "usd", "'%s.usd' may have at most %d decimals.", path,
                       AIGW_LIMITS_USD_DECIMALS);
    json_t *period = json_object_get (budget, "period");
    const char *text = json_string_value (period);
    if (period && !json_is_null (period)
        && (!text
            || !(streq (text, "day") || streq (text, "week") || streq (text, "month")
                 || s_period_days (text))))
        return s_fail (err, path, "period",
                       "'%s.period' must be day, week, month or Nd (N from 1 to %d days).", path,
                       AIGW_LIMITS_PERIOD_DAYS_MAX);
    bool days = text && s_period_days (text);
    json_t *reset = json_object_get (budget, "reset");
    int64_t anchor;
    if (reset && !json_is_null (reset)) {
        if (!days)
            return s_fail (err, path, "reset", "'%s.reset' is only for a period of N days (Nd).",
                           path);
        if (!json_is_string (reset) || s_time_parse (json_string_value (reset), &anchor))
            return s_fail (err, path, "reset",
                           "'%s.reset' must be an RFC 3339 date-time such as "
                           "2026-12-01T00:00:00Z.",
                           path);
    }
    else if (days)
        return s_fail (err, path, "reset",
                       "'%s.reset' is required with a period of N days: when the first "
                       "period starts.",
                       path);
    return 0;
}

//  Check one level LIMITS at PATH; TOP when it may hold models. Returns 0
//  or -1 with ERR.
static int
s_check_level (json_t *limits, const char *path, bool top, aigw_limits_error_t *err)
{
    if (!json_is_object (limits))
        return s_fail (err, path, NULL, "'%s' must be an object.", path);
    const char *name;
    json_t *value;
    json_object_foreach (limits, name, value) {
        char member[AIGW_LIMITS_PARAM_MAX];
        s_path (member, sizeof member, path, name);
        if (s_kind (name) >= 0) {
            if (!json_is_null (value)
                && (!json_is_integer (value) || json_integer_value (value) < 1
                    || json_integer_value (value) > AIGW_LIMITS_COUNT_MAX))
                return s_fail (err, member, NULL, "'%s' must be an integer from 1 to %lld.", member,
                               AIGW_LIMITS_COUNT_MAX);
        }
        else if (streq (name, "budget")) {
            if (!json_is_null (value) && s_check_budget (value, member, err))
                return -1;
        }
        else if (streq (name, "models") && top) {
            if (json_is_null (value))
                continue;
            if (!json_is_object (value) || json_object_size (value) > AIGW_LIMITS_MODELS_MAX)
                return s_fail (err, member, NULL,
                               "'%s' must be an object of at most %d models, each with its "
                               "limits.",
                               member, AIGW_LIMITS_MODELS_MAX);
            const char *model;
            json_t *own;
            json_object_foreach (value, model, own) {
                size_t chars = aigw_text_utf8_length (model, strlen (model));
                if (chars == 0 || chars > AIGW_LIMITS_MODEL_NAME_MAX)
                    return s_fail (err, member, NULL, "'%s' names models of 1 to %d characters.",
                                   member, AIGW_LIMITS_MODEL_NAME_MAX);
                char at[AIGW_LIMITS_PARAM_MAX];
                s_path (at, sizeof at, member, model);
                if (!json_is_null (own) && s_check_level (own, at, false, err))
                    return -1;
            }
        }
        else
            return s_fail (err, path, strlen (name) <= 60 ? name : NULL,
                           "Unknown member '%.60s' in '%s': limits take rpm, rpd, tpm, "
                           "concurrency, budget%s.",
                           name, path, top ? " and models" : "");
    }
    return 0;
}

int
aigw_limits_check (json_t *limits, const char *field, aigw_limits_error_t *err)
{
    if (json_is_null (limits))
        return 0;
    return s_check_level (limits, field, true, err);
}

//  A copy of VALUE without null members in objects, at every level.
static json_t *
s_clean (json_t *value)
{
    if (!json_is_object (value))
        return json_deep_copy (value);
    json_t *copy = json_object ();
    const char *name;
    json_t *member;
    json_object_foreach (value, name, member) {
        if (json_is_null (member))
            continue;
        json_t *clean = s_clean (member);
        if (!clean || json_object_set_new (copy, name, clean)) {
            json_decref (copy);
            return NULL;
        }
    }
    return copy;
}

json_t *
aigw_limits_clean (json_t *limits)
{
    return json_is_object (limits) ? s_clean (limits) : json_object ();
}

//  True when budgets A and B count over the same period (and start).
static bool
s_same_period (json_t *a, json_t *b)
{
    if (!streq (s_period (a), s_period (b)))
        return false;
    const char *ra = json_string_value (json_object_get (a, "reset"));
    const char *rb = json_string_value (json_object_get (b, "reset"));
    int64_t sa = 0, sb = 0;
    if (ra)
        s_time_parse (ra, &sa);
    if (rb)
        s_time_parse (rb, &sb);
    return sa == sb;
}

//  Check level LIMITS at PATH within every level of CEILINGS (COUNT of
//  them, NULL entries skipped). Returns 0 or -1 with ERR.
static int
s_within_level (json_t *limits, const char *path, json_t **ceilings, int count,
                aigw_limits_error_t *err)
{
    for (int k = 0; k < S_KIND_COUNT; k++) {
        json_t *value = json_object_get (limits, s_kinds[k]);
        if (!json_is_integer (value))
            continue;
        for (int c = 0; c < count; c++) {
            json_t *bound = ceilings[c] ? json_object_get (ceilings[c], s_kinds[k]) : NULL;
            if (json_is_integer (bound) && json_integer_value (value) > json_integer_value (bound))
                return s_fail (err, path, s_kinds[k],
                               "'%s.%s' (%lld) is above the tenant's limit (%lld).", path,
                               s_kinds[k], (long long) json_integer_value (value),
                               (long long) json_integer_value (bound));
        }
    }
    json_t *budget = json_object_get (limits, "budget");
    if (json_is_object (budget))
        for (int c = 0; c < count; c++) {
            json_t *bound = ceilings[c] ? json_object_get (ceilings[c], "budget") : NULL;
            if (json_is_object (bound) && s_same_period (budget, bound)
                && json_number_value (json_object_get (budget, "usd"))
                       > json_number_value (json_object_get (bound, "usd")))
                return s_fail (err, path, "budget",
                               "'%s.budget' (%.6g USD a %s) is above the tenant's budget "
                               "(%.6g USD).",
                               path, json_number_value (json_object_get (budget, "usd")),
                               s_period (budget),
                               json_number_value (json_object_get (bound, "usd")));
        }
    return 0;
}

int
aigw_limits_within (json_t *limits, json_t *ceiling, const char *field, aigw_limits_error_t *err)
{
    if (!json_is_object (limits) || !json_is_object (ceiling))
        return 0;
    json_t *top[1] = {ceiling};
    if (s_within_level (limits, field, top, 1, err))
        return -1;
    json_t *models = json_object_get (limits, "models");
    json_t *bounds = json_object_get (ceiling, "models");
    const char *model;
    json_t *own;
    json_object_foreach (models, model, own) {
        char path[AIGW_LIMITS_PARAM_MAX];
        char models[AIGW_LIMITS_PARAM_MAX];
        s_path (models, sizeof models, field, "models");
        s_path (path, sizeof path, models, model);
        //  A model's limit is bound by the tenant's for that model and by
        //  the tenant's whole.
        json_t *levels[2] = {json_object_get (bounds, model), ceiling};
        if (json_is_object (own) && s_within_level (own, path, levels, 2, err))
            return -1;
    }
    return 0;
}

//  Append ", KIND:VALUE" to the compiled text in OUT (SIZE bytes).
static void
s_append (char *out, size_t size, const char *kind, const char *value)
{
    size_t used = strlen (out);
    snprintf (out + used, size - used, "%s%s:%s", used ? "," : "", kind, value);
}

//  Compile level LIMITS (checked) into OUT, DEFAULTS for what it leaves
//  unset (NULL: none); its rpm into *RPM.
static void
s_compile_level (json_t *limits, const aigw_limits_defaults_t *defaults, char *out, size_t size,
                 int64_t *rpm)
{
    const int64_t fallback[S_KIND_COUNT]
        = {defaults ? defaults->rpm : 0, defaults ? defaults->rpd : 0, defaults ? defaults->tpm : 0,
           defaults ? defaults->concurrency : 0};
    out[0] = 0;
    *rpm = 0;
    char value[64];
    for (int k = 0; k < S_KIND_COUNT; k++) {
        json_t *given = json_object_get (limits, s_kinds[k]);
        int64_t n = json_is_integer (given) ? (int64_t) json_integer_value (given) : fallback[k];
        if (n <= 0)
            continue;
        if (k == 0)
            *rpm = n;
        snprintf (value, sizeof value, "%lld", (long long) n);
        s_append (out, size, s_lm_kinds[k], value);
    }
    json_t *budget = json_object_get (limits, "budget");
    if (json_is_object (budget)) {
        long long nano = llround (json_number_value (json_object_get (budget, "usd")) * 1e6) * 1000;
        const char *period = s_period (budget);
        int64_t anchor = 0;
        const char *reset = json_string_value (json_object_get (budget, "reset"));
        if (s_period_days (period) && reset && s_time_parse (reset, &anchor) == 0)
            snprintf (value, sizeof value, "%lld/%s@%lld", nano, period, (long long) anchor);
        else
            snprintf (value, sizeof value, "%lld/%s", nano, period);
        s_append (out, size, "usd", value);
    }
}

aigw_limits_t *
aigw_limits_new (const char *text, const aigw_limits_defaults_t *defaults, aigw_limits_error_t *err)
{
    json_t *root = NULL;
    if (text && *text) {
        json_error_t error;
        root = json_loads (text, JSON_REJECT_DUPLICATES, &error);
        if (!root) {
            s_fail (err, "limits", NULL, "'limits' is not valid JSON.");
            return NULL;
        }
        if (aigw_limits_check (root, "limits", err)) {
            json_decref (root);
            return NULL;
        }
    }
    json_t *limits = aigw_limits_clean (root);
    json_decref (root);
    aigw_limits_t *self = limits ? calloc (1, sizeof *self) : NULL;
    if (self)
        self->models = zhashx_new ();
    if (!self || !self->models) {
        json_decref (limits);
        aigw_limits_destroy (&self);
        s_fail (err, "limits", NULL, "Out of memory.");
        return NULL;
    }
    zhashx_set_destructor (self->models, (zhashx_destructor_fn *) zstr_free);
    char level[S_LEVEL_MAX];
    s_compile_level (limits, defaults, level, sizeof level, &self->rpm);
    self->level = strdup (level);
    const char *model;
    json_t *own;
    json_object_foreach (json_object_get (limits, "models"), model, own) {
        int64_t rpm;
        s_compile_level (own, NULL, level, sizeof level, &rpm);
        if (*level)
            zhashx_update (self->models, model, strdup (level));
    }
    json_decref (limits);
    return self;
}

void
aigw_limits_destroy (aigw_limits_t **self_p)
{
    aigw_limits_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->models);
    free (self->level);
    free (self);
    *self_p = NULL;
}

const char *
aigw_limits_level (const aigw_limits_t *self)
{
    return self && self->level ? self->level : "";
}

const char *
aigw_limits_model (const aigw_limits_t *self, const char *model)
{
    return self && model ? (const char *) zhashx_lookup (self->models, model) : NULL;
}

int64_t
aigw_limits_rpm (const aigw_limits_t *self)
{
    return self ? self->rpm : 0;
}

char *
aigw_limits_lm (const aigw_limits_t *key, const aigw_limits_t *tenant, const char *model)
{
    const char *names[4] = {"k", "t", "km", "tm"};
    const char *parts[4] = {aigw_limits_level (key), aigw_limits_level (tenant),
                            aigw_limits_model (key, model), aigw_limits_model (tenant, model)};
    size_t len = 0;
    for (int i = 0; i < 4; i++)
        if (parts[i] && *parts[i])
            len += strlen (names[i]) + strlen (parts[i]) + 2;
    if (len == 0)
        return NULL;
    char *lm = malloc (len + 1);
    if (!lm)
        return NULL;
    size_t used = 0;
    for (int i = 0; i < 4; i++)
        if (parts[i] && *parts[i])
            used += (size_t) snprintf (lm + used, len + 1 - used, "%s%s=%s", used ? ";" : "",
                                       names[i], parts[i]);
    return lm;
}

//  Append "NAME:MODEL=LIMITS" to LM for each of SELF's models, sorted, while
//  *COUNT (limits so far) stays within AIGW_LIMITS_REPORT_MAX. A model
//  whose name holds a separator of lm is left out.
static void
s_report_models (zchunk_t *lm, const aigw_limits_t *self, const char *name, int *count)
{
    if (!self || !self->models)
        return;
    zlistx_t *models = zhashx_keys (self->models);
    assert (models);
    zlistx_set_comparator (models, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (models);
    for (const char *model = (const char *) zlistx_first (models); model;
         model = (const char *) zlistx_next (models)) {
        const char *limits = (const char *) zhashx_lookup (self->models, model);
        int n = 1;
        for (const char *c = limits; *c; c++)
            n += *c == ',';
        if (strpbrk (model, "=;,") || *count + n > AIGW_LIMITS_REPORT_MAX)
            continue;
        *count += n;
        zchunk_extend (lm, ";", zchunk_size (lm) ? 1 : 0);
        zchunk_extend (lm, name, strlen (name));
        zchunk_extend (lm, ":", 1);
        zchunk_extend (lm, model, strlen (model));
        zchunk_extend (lm, "=", 1);
        zchunk_extend (lm, limits, strlen (limits));
    }
    zlistx_destroy (&models);
}

char *
aigw_limits_lm_report (const aigw_limits_t *key, const aigw_limits_t *tenant)
{
    char *top = aigw_limits_lm (key, tenant, NULL);
    int count = 0;
    for (const char *c = top; c && *c; c++)
        count += *c == ',' || *c == '=';
    zchunk_t *lm = zchunk_new (top, top ? strlen (top) : 0);
    free (top);
    assert (lm);
    s_report_models (lm, key, "km", &count);
    s_report_models (lm, tenant, "tm", &count);
    char *text = NULL;
    if (zchunk_size (lm)) {
        text = (char *) malloc (zchunk_size (lm) + 1);
        if (text) {
            memcpy (text, zchunk_data (lm), zchunk_size (lm));
            text[zchunk_size (lm)] = 0;
        }
    }
    zchunk_destroy (&lm);
    return text;
}

void
aigw_limits_defaults (const aigw_config_t *config, aigw_limits_defaults_t *out)
{
    *out = (aigw_limits_defaults_t){.rpm = config->rl_default_rpm > 0 ? config->rl_default_rpm
                                                                      : config->default_rpm,
                                    .rpd = config->rl_default_rpd,
                                    .tpm = config->rl_default_tpm,
                                    .concurrency = config->rl_default_concurrency};
}

int
aigw_limits_config_check (const char *text, char *problem, size_t problem_size)
{
    aigw_limits_error_t err;
    aigw_limits_t *limits = aigw_limits_new (text, NULL, &err);
    if (!limits) {
        snprintf (problem, problem_size, "%s", err.message);
        return -1;
    }
    aigw_limits_destroy (&limits);
    return 0;
}

//  The config loader checks the file's limits with this class.
static void __attribute__ ((constructor)) s_limits_register (void)
{
    aigw_config_register_limits_check (aigw_limits_config_check);
}

//  --------------------------------------------------------------------------
//  Selftest

//  Check TEXT; expect PARAM refused (NULL: accepted).
static void
s_test_check (const char *text, const char *param)
{
    json_t *root = json_loads (text, JSON_DECODE_ANY, NULL);
    assert (root);
    aigw_limits_error_t err;
    int rc = aigw_limits_check (root, "limits", &err);
    if (param) {
        if (rc == 0 || !streq (err.param, param))
            fprintf (stderr, "limits: %s: expected %s, got %s (%s)\n", text, param,
                     rc ? err.param : "ok", rc ? err.message : "");
        assert (rc == -1 && streq (err.param, param));
        assert (strstr (err.message, param) || strstr (err.message, "Unknown"));
    }
    else {
        if (rc)
            fprintf (stderr, "limits: %s: %s\n", text, err.message);
        assert (rc == 0);
    }
    json_decref (root);
}

//  Expect LIMITS within CEILING (PARAM NULL), or refused at PARAM.
static void
s_test_within (const char *limits, const char *ceiling, const char *param)
{
    json_t *l = json_loads (limits, 0, NULL);
    json_t *c = ceiling ? json_loads (ceiling, 0, NULL) : NULL;
    assert (l && (c || !ceiling));
    aigw_limits_error_t err;
    int rc = aigw_limits_within (l, c, "limits", &err);
    if (param) {
        if (rc == 0 || !streq (err.param, param))
            fprintf (stderr, "within: %s / %s: expected %s, got %s\n", limits, ceiling, param,
                     rc ? err.param : "ok");
        assert (rc == -1 && streq (err.param, param));
    }
    else
        assert (rc == 0);
    json_decref (l);
    json_decref (c);
}

void
aigw_limits_test (bool verbose)
{
    //  What limits.md 1a accepts.
    s_test_check ("null", NULL);
    s_test_check ("{}", NULL);
    s_test_check ("{\"rpm\":100,\"rpd\":20000,\"tpm\":200000,\"concurrency\":8,"
                  "\"budget\":{\"usd\":50,\"period\":\"month\"},"
                  "\"models\":{\"gpt-4o\":{\"rpm\":10,\"budget\":{\"usd\":5.123456,"
                  "\"period\":\"7d\",\"reset\":\"2026-12-01T00:00:00Z\"}}}}",
                  NULL);
    s_test_check ("{\"rpm\":null,\"budget\":null,\"models\":{\"m\":null}}", NULL);
    s_test_check ("{\"budget\":{\"usd\":0}}", NULL);
    //  ... and what it refuses, naming the field.
    s_test_check ("[]", "limits");
    s_test_check ("{\"rpm\":0}", "limits.rpm");
    s_test_check ("{\"rpm\":-5}", "limits.rpm");
    s_test_check ("{\"tpm\":1.5}", "limits.tpm");
    s_test_check ("{\"rpd\":\"10\"}", "limits.rpd");
    s_test_check ("{\"concurrency\":2147483648}", "limits.concurrency");
    s_test_check ("{\"colour\":1}", "limits.colour");
    s_test_check ("{\"budget\":5}", "limits.budget");
    s_test_check ("{\"budget\":{\"period\":\"day\"}}", "limits.budget.usd");
    s_test_check ("{\"budget\":{\"usd\":-1}}", "limits.budget.usd");
    s_test_check ("{\"budget\":{\"usd\":0.0000001}}", "limits.budget.usd");
    s_test_check ("{\"budget\":{\"usd\":1,\"period\":\"fortnight\"}}", "limits.budget.period");
    s_test_check ("{\"budget\":{\"usd\":1,\"period\":\"0d\",\"reset\":\"2026-01-01T00:00:00Z\"}}",
                  "limits.budget.period");
    s_test_check ("{\"budget\":{\"usd\":1,\"period\":\"7d\"}}", "limits.budget.reset");
    s_test_check ("{\"budget\":{\"usd\":1,\"period\":\"7d\",\"reset\":\"soon\"}}",
                  "limits.budget.reset");
    s_test_check ("{\"budget\":{\"usd\":1,\"period\":\"7d\",\"reset\":\"2026-02-30T00:00:00Z\"}}",
                  "limits.budget.reset");
    s_test_check ("{\"budget\":{\"usd\":1,\"reset\":\"2026-01-01T00:00:00Z\"}}",
                  "limits.budget.reset");
    s_test_check ("{\"budget\":{\"usd\":1,\"cap\":2}}", "limits.budget.cap");
    s_test_check ("{\"models\":[]}", "limits.models");
    s_test_check ("{\"models\":{\"gpt-4o\":{\"rpm\":0}}}", "limits.models.gpt-4o.rpm");
    s_test_check ("{\"models\":{\"gpt-4o\":{\"models\":{}}}}", "limits.models.gpt-4o.models");
    s_test_check ("{\"models\":{\"gpt-4o\":{\"budget\":{\"usd\":1,\"period\":\"year\"}}}}",
                  "limits.models.gpt-4o.budget.period");
    s_test_check ("{\"models\":{\"\":{}}}", "limits.models");

    //  Null members go.
    json_t *raw
        = json_loads ("{\"rpm\":5,\"tpm\":null,\"models\":{\"m\":{\"rpm\":null}}}", 0, NULL);
    json_t *clean = aigw_limits_clean (raw);
    char *text = json_dumps (clean, JSON_COMPACT | JSON_SORT_KEYS);
    assert (streq (text, "{\"models\":{\"m\":{}},\"rpm\":5}"));
    free (text);
    json_decref (clean);
    json_decref (raw);
    clean = aigw_limits_clean (json_null ());
    assert (json_is_object (clean) && json_object_size (clean) == 0);
    json_decref (clean);

    //  Ceilings: within the tenant's, per kind, per model, per period.
    const char *tenant = "{\"rpm\":100,\"tpm\":1000,\"budget\":{\"usd\":50,\"period\":\"month\"},"
                         "\"models\":{\"gpt-4o\":{\"rpm\":10}}}";
    s_test_within ("{\"rpm\":100,\"tpm\":10,\"budget\":{\"usd\":50}}", tenant, NULL);
    s_test_within ("{\"rpm\":101}", tenant, "limits.rpm");
    s_test_within ("{\"rpm\":100000}", tenant, "limits.rpm");
    s_test_within ("{\"rpd\":100000,\"concurrency\":50}", tenant, NULL);
    s_test_within ("{\"budget\":{\"usd\":50.000001,\"period\":\"month\"}}", tenant,
                   "limits.budget");
    s_test_within ("{\"budget\":{\"usd\":500,\"period\":\"day\"}}", tenant, NULL);
    s_test_within ("{\"models\":{\"gpt-4o\":{\"rpm\":11}}}", tenant, "limits.models.gpt-4o.rpm");
    s_test_within ("{\"models\":{\"gpt-4o\":{\"rpm\":10}}}", tenant, NULL);
    s_test_within ("{\"models\":{\"other\":{\"rpm\":101}}}", tenant, "limits.models.other.rpm");
    s_test_within ("{\"models\":{\"other\":{\"budget\":{\"usd\":60}}}}", tenant,
                   "limits.models.other.budget");
    s_test_within ("{\"rpm\":100000}", NULL, NULL);
    s_test_within ("{\"rpm\":100000}", "{}", NULL);

    //  Compiled: defaults fold into the key's top level; budgets in
    //  nano-USD with their period; models apart.
    aigw_limits_error_t err;
    const aigw_limits_defaults_t defaults = {.rpm = 600, .concurrency = 4};
    aigw_limits_t *key
        = aigw_limits_new ("{\"rpm\":100,\"tpm\":5000,\"budget\":{\"usd\":50},"
                           "\"models\":{\"gpt-4o\":{\"rpm\":10,\"budget\":{\"usd\":0.5,"
                           "\"period\":\"7d\",\"reset\":\"2026-12-01T00:00:00Z\"}}}}",
                           &defaults, &err);
    assert (key);
    if (verbose)
        printf ("\n    k=%s km=%s", aigw_limits_level (key), aigw_limits_model (key, "gpt-4o"));
    assert (streq (aigw_limits_level (key), "rpm:100,tpm:5000,conc:4,usd:50000000000/month"));
    assert (streq (aigw_limits_model (key, "gpt-4o"), "rpm:10,usd:500000000/7d@1796083200"));
    assert (aigw_limits_model (key, "gpt-4o-mini") == NULL);
    assert (aigw_limits_rpm (key) == 100);
    aigw_limits_t *tenant_limits = aigw_limits_new (tenant, NULL, &err);
    assert (tenant_limits);
    assert (streq (aigw_limits_level (tenant_limits), "rpm:100,tpm:1000,usd:50000000000/month"));
    char *lm = aigw_limits_lm (key, tenant_limits, "gpt-4o");
    assert (streq (lm, "k=rpm:100,tpm:5000,conc:4,usd:50000000000/month;"
                       "t=rpm:100,tpm:1000,usd:50000000000/month;"
                       "km=rpm:10,usd:500000000/7d@1796083200;tm=rpm:10"));
    free (lm);
    lm = aigw_limits_lm (key, NULL, "other");
    assert (streq (lm, "k=rpm:100,tpm:5000,conc:4,usd:50000000000/month"));
    free (lm);
    lm = aigw_limits_lm (NULL, tenant_limits, NULL);
    assert (streq (lm, "t=rpm:100,tpm:1000,usd:50000000000/month"));
    free (lm);
    //  For GET rate-limits: every model's levels, named.
    lm = aigw_limits_lm_report (key, tenant_limits);
    if (verbose)
        printf ("\n    report lm=%s", lm);
    assert (streq (lm, "k=rpm:100,tpm:5000,conc:4,usd:50000000000/month;"
                       "t=rpm:100,tpm:1000,usd:50000000000/month;"
                       "km:gpt-4o=rpm:10,usd:500000000/7d@1796083200;tm:gpt-4o=rpm:10"));
    free (lm);
    assert (aigw_limits_lm_report (NULL, NULL) == NULL);
    aigw_limits_destroy (&key);
    aigw_limits_destroy (&key);

    //  No limits and no defaults: no lm at all; defaults alone make k.
    key = aigw_limits_new (NULL, NULL, &err);
    assert (key && streq (aigw_limits_level (key), "") && aigw_limits_rpm (key) == 0);
    assert (aigw_limits_lm (key, NULL, "m") == NULL);
    aigw_limits_destroy (&key);
    key = aigw_limits_new ("{}", &defaults, &err);
    assert (key && streq (aigw_limits_level (key), "rpm:600,conc:4")
            && aigw_limits_rpm (key) == 600);
    aigw_limits_destroy (&key);
    aigw_limits_destroy (&tenant_limits);

    //  Invalid text is refused, naming the member.
    assert (!aigw_limits_new ("{\"rpm\":0}", NULL, &err) && streq (err.param, "limits.rpm"));
    assert (!aigw_limits_new ("{", NULL, &err) && streq (err.param, "limits"));
    char problem[256];
    assert (aigw_limits_config_check ("{\"models\":{\"m\":{\"tpm\":0}}}", problem, sizeof problem)
            == -1);
    assert (strstr (problem, "limits.models.m.tpm"));
    assert (aigw_limits_config_check ("{\"rpm\":5}", problem, sizeof problem) == 0);

    //  Times: RFC 3339 with offsets and fractions.
    int64_t seconds;
    assert (s_time_parse ("1970-01-01T00:00:00Z", &seconds) == 0 && seconds == 0);
    assert (s_time_parse ("2026-12-01T01:00:00.25+01:00", &seconds) == 0 && seconds == 1796083200);
    assert (s_time_parse ("2026-12-01 00:00:00Z", &seconds) == -1);
    assert (s_time_parse ("2025-02-29T00:00:00Z", &seconds) == -1);
    if (verbose)
        printf ("\nlimits: ok\n");
}
