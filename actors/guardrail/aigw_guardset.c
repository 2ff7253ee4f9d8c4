/*  aigw_guardset: the policies one thread uses, kept live. See
    aigw_guardset.h. */
#include "aigw_guardset.h"
#include "aigw_db.h"
#include "aigw_dbwatch.h"
#include "aigw_log.h"

#include <assert.h>
#include <ctype.h>
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>

//  The kinds of binding, in the order resolve tries them.
static const char *const s_kinds[] = {"keys", "tenants", "models"};
#define S_KINDS 3

//  One policy the guardset serves.
typedef struct {
    char *name;                     //  its name
    char *definition;               //  database: the text compiled, compared on each snapshot
    char *tenant;                   //  database: the owning tenant's id, NULL for global
    json_t *json;                   //  the definition, parsed (bindings are read from it)
    aigw_policy_t *policy;          //  compiled; the built-in's is borrowed from builtin
    aigw_guardset_source_t source;  //  config, builtin or database
    bool kept;                      //  snapshot: carried into the new set
} s_entry_t;

struct _aigw_guardset_t {
    const aigw_config_t *config;      //  settings (shared, read-only)
    zlistx_t *configured;             //  s_entry_t: the config's, in its order, then the built-in
    zhashx_t *database;               //  name -> s_entry_t: the database's
    zhashx_t *bound[S_KINDS];         //  value -> s_entry_t (not owned), per kind
    zhashx_t *config_bound[S_KINDS];  //  value -> config policy name (not owned), per kind
    aigw_policies_t *builtin;         //  holds the built-in default (aigw_policy's own)
    aigw_dbwatch_t *watch;            //  the database's policies; NULL without a database
    bool polled;                      //  the last pollitems gave the watcher's socket
    uint64_t version;                 //  bumps on every applied change
    bool loaded;                      //  the database's first snapshot came (or none is watched)
    bool noted;                       //  a missing fallback was logged for noted_version
    uint64_t noted_version;           //  the version it was logged for
};

static void
s_entry_destroy (s_entry_t **self_p)
{
    s_entry_t *self = *self_p;
    if (!self)
        return;
    if (self->source != AIGW_GUARDSET_BUILTIN)
        aigw_policy_destroy (&self->policy);
    json_decref (self->json);
    free (self->definition);
    free (self->tenant);
    free (self->name);
    free (self);
    *self_p = NULL;
}

static void
s_entry_destructor (void **item)
{
    s_entry_destroy ((s_entry_t **) item);
}

bool
aigw_guardset_name_valid (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len < 1 || len > AIGW_GUARDSET_NAME_MAX || streq (name, "none")
        || !isalnum ((unsigned char) name[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) name[i]) && !strchr ("._-", name[i]))
            return false;
    return true;
}

//  Check a definition's bindings (may be NULL). Returns 0, or -1 with
//  PROBLEM naming the field.
static int
s_bindings_check (json_t *bindings, char *problem, size_t problem_size)
{
    if (!bindings || json_is_null (bindings))
        return 0;
    if (!json_is_object (bindings)) {
        snprintf (problem, problem_size, "bindings: expected an object of keys, tenants, models");
        return -1;
    }
    const char *kind;
    json_t *list;
    json_object_foreach (bindings, kind, list) {
        bool known = false;
        for (int k = 0; k < S_KINDS; k++)
            known |= streq (kind, s_kinds[k]);
        if (!known) {
            snprintf (problem, problem_size, "bindings: unknown member '%.64s'", kind);
            return -1;
        }
        if (!json_is_array (list) || json_array_size (list) > AIGW_GUARDSET_BINDINGS_MAX) {
            snprintf (problem, problem_size, "bindings.%s: expected a list of at most %d strings",
                      kind, AIGW_GUARDSET_BINDINGS_MAX);
            return -1;
        }
        size_t i;
        json_t *value;
        json_array_foreach (list, i, value) {
            const char *text = json_string_value (value);
            if (!text || !*text || strlen (text) > AIGW_GUARDSET_BINDING_LEN_MAX) {
                snprintf (problem, problem_size,
                          "bindings.%s[%zu]: expected a non-empty string of at most %d bytes", kind,
                          i, AIGW_GUARDSET_BINDING_LEN_MAX);
                return -1;
            }
        }
    }
    return 0;
}

//  Compile NAME from the parsed definition JSON. NULL with ERR written.
static aigw_policy_t *
s_compile (const char *name, json_t *json, char *err, size_t err_size)
{
    char problem[256] = "";
    json_t *description = json_object_get (json, "description");
    if (!json_is_object (json))
        snprintf (problem, sizeof problem, "expected an object");
    else if (description && !json_is_null (description)
             && (!json_is_string (description)
                 || json_string_length (description) > AIGW_GUARDSET_DESCRIPTION_MAX))
        snprintf (problem, sizeof problem, "description: expected a string of at most %d bytes",
                  AIGW_GUARDSET_DESCRIPTION_MAX);
    else
        s_bindings_check (json_object_get (json, "bindings"), problem, sizeof problem);
    if (*problem) {
        snprintf (err, err_size, "%.*s: %s", AIGW_POLICY_NAME_MAX, name, problem);
        return NULL;
    }
    char *text = json_dumps (json, JSON_COMPACT);
    if (!text) {
        snprintf (err, err_size, "%.*s: out of memory", AIGW_POLICY_NAME_MAX, name);
        return NULL;
    }
    aigw_policy_t *policy = aigw_policy_new (name, text, err, err_size);
    free (text);
    return policy;
}

aigw_policy_t *
aigw_guardset_compile (const char *name, const char *definition, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *json = json_loads (definition, JSON_REJECT_DUPLICATES, &jerr);
    if (!json) {
        snprintf (err, err_size, "%.*s: not JSON", AIGW_POLICY_NAME_MAX, name);
        return NULL;
    }
    aigw_policy_t *policy = s_compile (name, json, err, err_size);
    json_decref (json);
    return policy;
}

//  A new entry for NAME from JSON (taken) and its text DEFINITION (copied;
//  NULL to keep none). NULL with ERR written.
static s_entry_t *
s_entry_new (const char *name, json_t *json, const char *definition, aigw_guardset_source_t source,
             char *err, size_t err_size)
{
    s_entry_t *self = calloc (1, sizeof *self);
    if (!self) {
        json_decref (json);
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->json = json;
    self->source = source;
    self->name = strdup (name);
    self->definition = definition ? strdup (definition) : NULL;
    if (!self->name || (definition && !self->definition)) {
        snprintf (err, err_size, "out of memory");
        s_entry_destroy (&self);
        return NULL;
    }
    self->policy = s_compile (name, json, err, err_size);
    if (!self->policy)
        s_entry_destroy (&self);
    return self;
}

//  The config's policy NAME, or NULL.
static s_entry_t *
s_configured (aigw_guardset_t *self, const char *name, bool builtin)
{
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->configured); e;
         e = (s_entry_t *) zlistx_next (self->configured))
        if (streq (e->name, name) && (builtin || e->source == AIGW_GUARDSET_CONFIG))
            return e;
    return NULL;
}

//  Map every binding of ENTRY into the bound tables, unless taken.
static void
s_bind (aigw_guardset_t *self, s_entry_t *entry)
{
    json_t *bindings = json_object_get (entry->json, "bindings");
    for (int k = 0; k < S_KINDS; k++) {
        size_t i;
        json_t *value;
        json_array_foreach (json_object_get (bindings, s_kinds[k]), i, value) {
            const char *text = json_string_value (value);
            if (!text)
                continue;
            s_entry_t *owner = (s_entry_t *) zhashx_lookup (self->bound[k], text);
            if (owner && owner != entry)
                aigw_warn ("guardrail policies: %s %s is bound to %s; %s's binding is ignored",
                           s_kinds[k], text, owner->name, entry->name);
            else if (!owner)
                zhashx_insert (self->bound[k], text, entry);
        }
    }
}

//  Rebuild the bound tables: the config's policies first, so theirs win.
static void
s_rebind (aigw_guardset_t *self)
{
    for (int k = 0; k < S_KINDS; k++)
        zhashx_purge (self->bound[k]);
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->configured); e;
         e = (s_entry_t *) zlistx_next (self->configured))
        s_bind (self, e);
    zlistx_t *names = zhashx_keys (self->database);
    if (!names)
        return;
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (names);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names))
        s_bind (self, (s_entry_t *) zhashx_lookup (self->database, name));
    zlistx_destroy (&names);
}

aigw_guardset_t *
aigw_guardset_new (const aigw_config_t *config, char *err, size_t err_size)
{
    aigw_guardset_t *self = (aigw_guardset_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->config = config;
    self->configured = zlistx_new ();
    self->database = zhashx_new ();
    bool ok = self->configured && self->database;
    for (int k = 0; ok && k < S_KINDS; k++) {
        ok = (self->bound[k] = zhashx_new ()) && (self->config_bound[k] = zhashx_new ());
    }
    if (!ok) {
        snprintf (err, err_size, "out of memory");
        aigw_guardset_destroy (&self);
        return NULL;
    }
    zlistx_set_destructor (self->configured, s_entry_destructor);
    zhashx_set_destructor (self->database, s_entry_destructor);
    json_t *all = NULL;
    if (config->guardrail_policies) {
        json_error_t jerr;
        all = json_loads (config->guardrail_policies, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object (all)) {
            snprintf (err, err_size, "guardrail.policies: expected a mapping of names to policies");
            json_decref (all);
            aigw_guardset_destroy (&self);
            return NULL;
        }
    }
    const char *name;
    json_t *definition;
    json_object_foreach (all, name, definition) {
        s_entry_t *entry = s_entry_new (name, json_incref (definition), NULL, AIGW_GUARDSET_CONFIG,
                                        err, err_size);
        if (!entry || !zlistx_add_end (self->configured, entry)) {
            s_entry_destroy (&entry);
            json_decref (all);
            aigw_guardset_destroy (&self);
            return NULL;
        }
    }
    json_decref (all);
    if (!s_configured (self, "default", false)) {
        //  The built-in default, as aigw_policy defines it.
        self->builtin = aigw_policies_new (NULL, err, err_size);
        s_entry_t *entry = self->builtin ? (s_entry_t *) calloc (1, sizeof *entry) : NULL;
        if (entry) {
            entry->source = AIGW_GUARDSET_BUILTIN;
            entry->name = strdup ("default");
            entry->policy = aigw_policies_find (self->builtin, "default");
        }
        if (!entry || !entry->name || !entry->policy || !zlistx_add_end (self->configured, entry)) {
            snprintf (err, err_size, "the built-in default policy: out of memory");
            s_entry_destroy (&entry);
            aigw_guardset_destroy (&self);
            return NULL;
        }
    }
    s_rebind (self);
    //  What the config binds, for the admin API's conflict check.
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->configured); e;
         e = (s_entry_t *) zlistx_next (self->configured))
        for (int k = 0; k < S_KINDS; k++) {
            size_t i;
            json_t *value;
            json_array_foreach (json_object_get (json_object_get (e->json, "bindings"), s_kinds[k]),
                                i, value) {
                zhashx_insert (self->config_bound[k], json_string_value (value), e->name);
            }
        }
    const char *url = config->database_url;
    if (url && *url) {
        int64_t timeout = config->db_statement_timeout_ms > 0 ? config->db_statement_timeout_ms
                                                              : AIGW_GUARDSET_QUERY_TIMEOUT_MS;
        self->watch = aigw_dbwatch_new (url, AIGW_GUARDSET_CHANNEL, AIGW_GUARDSET_SQL, timeout);
        if (!self->watch) {
            snprintf (err, err_size, "the database URL cannot be watched");
            aigw_guardset_destroy (&self);
            return NULL;
        }
    }
    self->loaded = !self->watch;
    return self;
}

void
aigw_guardset_destroy (aigw_guardset_t **self_p)
{
    aigw_guardset_t *self = *self_p;
    if (!self)
        return;
    aigw_dbwatch_destroy (&self->watch);
    for (int k = 0; k < S_KINDS; k++) {
        zhashx_destroy (&self->bound[k]);
        zhashx_destroy (&self->config_bound[k]);
    }
    zhashx_destroy (&self->database);
    zlistx_destroy (&self->configured);
    aigw_policies_destroy (&self->builtin);
    free (self);
    *self_p = NULL;
}

int
aigw_guardset_pollitems (aigw_guardset_t *self, zmq_pollitem_t *items, int max)
{
    int fd = self->watch ? aigw_dbwatch_fd (self->watch) : -1;
    self->polled = fd >= 0 && max >= 1;
    if (!self->polled)
        return 0;
    items[0] = (zmq_pollitem_t){NULL, fd, aigw_dbwatch_events (self->watch), 0};
    return 1;
}

int
aigw_guardset_timeout (aigw_guardset_t *self)
{
    //  The watcher keeps time on the monotonic clock.
    return self->watch ? aigw_dbwatch_timeout (self->watch, zclock_mono ()) : -1;
}

//  Apply snapshot RES (name, definition): recompile what changed.
static void
s_apply (aigw_guardset_t *self, PGresult *res)
{
    zhashx_t *fresh = zhashx_new ();
    if (!fresh) {
        aigw_error ("guardrail policies: out of memory; the last snapshot stays");
        return;
    }
    zhashx_set_destructor (fresh, s_entry_destructor);
    bool changed = false;
    for (int row = 0; row < PQntuples (res); row++) {
        const char *name = PQgetvalue (res, row, 0);
        const char *text = PQgetvalue (res, row, 1);
        const char *tenant = PQgetvalue (res, row, 2);
        if (s_configured (self, name, false)) {
            aigw_debug ("guardrail policies: the database's %s is ignored: the config defines "
                        "one of that name",
                        name);
            continue;
        }
        s_entry_t *old = (s_entry_t *) zhashx_lookup (self->database, name);
        if (old && streq (old->definition, text)
            && streq (old->tenant ? old->tenant : "", tenant)) {
            old->kept = true;
            zhashx_insert (fresh, name, old);
            continue;
        }
        char err[256] = "";
        json_error_t jerr;
        json_t *json = json_loads (text, JSON_REJECT_DUPLICATES, &jerr);
        s_entry_t *entry
            = json ? s_entry_new (name, json, text, AIGW_GUARDSET_DATABASE, err, sizeof err) : NULL;
        if (!entry) {
            if (!json)
                snprintf (err, sizeof err, "%.*s: not JSON", AIGW_POLICY_NAME_MAX, name);
            aigw_warn ("guardrail policies: the database's policy does not compile (%s); %s", err,
                       old ? "its previous version keeps serving" : "it is skipped");
            if (old) {
                old->kept = true;
                zhashx_insert (fresh, name, old);
            }
            continue;
        }
        if (*tenant && !(entry->tenant = strdup (tenant))) {
            aigw_error ("guardrail policies: out of memory; %s is skipped", name);
            s_entry_destroy (&entry);
            continue;
        }
        zhashx_insert (fresh, name, entry);
        changed = true;
    }
    //  The old set frees what was not kept: gone, or replaced.
    zhashx_set_destructor (self->database, NULL);
    for (s_entry_t *e = (s_entry_t *) zhashx_first (self->database); e;
         e = (s_entry_t *) zhashx_next (self->database)) {
        if (!e->kept) {
            changed = true;
            s_entry_destroy (&e);
        }
    }
    zhashx_destroy (&self->database);
    for (s_entry_t *e = (s_entry_t *) zhashx_first (fresh); e;
         e = (s_entry_t *) zhashx_next (fresh))
        e->kept = false;
    self->database = fresh;
    if (changed) {
        s_rebind (self);
        self->version++;
        aigw_info ("guardrail policies: %zu from the database (version %" PRIu64 ")",
                   zhashx_size (fresh), self->version);
    }
}

void
aigw_guardset_process (aigw_guardset_t *self, zmq_pollitem_t *items, int count)
{
    if (!self->watch)
        return;
    bool ready = self->polled && count > 0 && items[0].revents;
    if (ready || aigw_dbwatch_timeout (self->watch, zclock_mono ()) == 0) {
        PGresult *res = aigw_dbwatch_process (self->watch, zclock_mono ());
        if (res) {
            if (PQnfields (res) == 3) {
                s_apply (self, res);
                self->loaded = true;
            }
            PQclear (res);
        }
    }
}

static s_entry_t *
s_find (aigw_guardset_t *self, const char *name)
{
    if (!name)
        return NULL;
    s_entry_t *entry = s_configured (self, name, false);
    if (!entry)
        entry = (s_entry_t *) zhashx_lookup (self->database, name);
    if (!entry)
        entry = s_configured (self, name, true);  //  the built-in default
    return entry;
}

aigw_policy_t *
aigw_guardset_find (aigw_guardset_t *self, const char *name)
{
    s_entry_t *entry = s_find (self, name);
    return entry ? entry->policy : NULL;
}

const char *
aigw_guardset_tenant (aigw_guardset_t *self, const char *name)
{
    s_entry_t *entry = s_find (self, name);
    return entry ? entry->tenant : NULL;
}

aigw_guardset_source_t
aigw_guardset_source (aigw_guardset_t *self, const char *name)
{
    s_entry_t *entry = s_find (self, name);
    return entry ? entry->source : AIGW_GUARDSET_NONE;
}

aigw_policy_t *
aigw_guardset_resolve (aigw_guardset_t *self, const char *key_id, const char *tenant_id,
                       const char *model)
{
    const char *values[S_KINDS] = {key_id, tenant_id, model};
    for (int k = 0; k < S_KINDS; k++) {
        s_entry_t *entry = values[k] && *values[k]
                               ? (s_entry_t *) zhashx_lookup (self->bound[k], values[k])
                               : NULL;
        if (entry)
            return entry->policy;
    }
    const char *fallback = self->config->guardrail_default_policy;
    if (fallback && *fallback) {
        if (streq (fallback, "none"))
            return NULL;
        aigw_policy_t *policy = aigw_guardset_find (self, fallback);
        //  Named but not there (a deleted database policy): no policy
        //  applies. Said once per set of policies, not once per request;
        //  before the database's first snapshot it may still come.
        if (!policy && self->loaded && (!self->noted || self->noted_version != self->version)) {
            aigw_warn ("guardrail policies: guardrail.default_policy names %.*s, which does not "
                       "exist; requests no other policy binds get none",
                       AIGW_POLICY_NAME_MAX, fallback);
            self->noted = true;
            self->noted_version = self->version;
        }
        return policy;
    }
    s_entry_t *entry = s_find (self, "default");
    return entry && entry->source != AIGW_GUARDSET_BUILTIN ? entry->policy : NULL;
}

const char *
aigw_guardset_config_binding (aigw_guardset_t *self, const char *kind, const char *value)
{
    for (int k = 0; value && kind && k < S_KINDS; k++)
        if (streq (kind, s_kinds[k]))
            return (const char *) zhashx_lookup (self->config_bound[k], value);
    return NULL;
}

uint64_t
aigw_guardset_version (aigw_guardset_t *self)
{
    return self->version;
}

int
aigw_guardset_default_check (const char *value, char *problem, size_t problem_size)
{
    if (!value || !*value || strlen (value) > AIGW_POLICY_NAME_MAX) {
        snprintf (problem, problem_size, "expected a policy name of 1 to %d bytes, or none",
                  AIGW_POLICY_NAME_MAX);
        return -1;
    }
    return 0;
}

//  guardrail.default_policy: the fallback's name. A database policy may be
//  named, so the name is not looked up here.
static const aigw_config_keyword_t s_guardset_keywords[]
    = {AIGW_CONFIG_KW_STRING ("default_policy", aigw_config_t, guardrail_default_policy,
                              aigw_guardset_default_check, NULL),
       AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("guardrail", s_guardset_keywords);

//  ---------------------------------------------------------------------
//  Selftest

//  The verdict's action of POLICY on TEXT.
static aigw_policy_action_t
s_test_action (aigw_policy_t *policy, const char *text)
{
    aigw_policy_verdict_t v;
    assert (policy && aigw_policy_check (policy, text, strlen (text), &v) == 0);
    aigw_policy_action_t action = v.action;
    aigw_policy_verdict_free (&v);
    return action;
}

static void
s_test_exec (PGconn *conn, const char *sql)
{
    PGresult *res = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        printf ("\n    %s: %s", sql, PQerrorMessage (conn));
    assert (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK);
    PQclear (res);
}

//  Run SET's loop until its version passes VERSION or MS go by.
static void
s_test_wait (aigw_guardset_t *set, uint64_t version, int ms)
{
    for (int64_t until = zclock_mono () + ms;
         aigw_guardset_version (set) <= version && zclock_mono () < until;) {
        zmq_pollitem_t item;
        int count = aigw_guardset_pollitems (set, &item, 1);
        int timeout = aigw_guardset_timeout (set);
        zmq_poll (&item, count, timeout < 0 || timeout > 100 ? 100 : timeout);
        aigw_guardset_process (set, &item, count);
    }
}

//  The connection string URL with its database changed to DBNAME: keyword
//  form, each value quoted. Caller frees.
static char *
s_test_url (const char *url, const char *dbname)
{
    PQconninfoOption *options = PQconninfoParse (url, NULL);
    assert (options);
    size_t size = 256 + 2 * strlen (url) + strlen (dbname);
    char *out = (char *) calloc (1, size);
    assert (out);
    for (PQconninfoOption *o = options; o->keyword; o++) {
        const char *value = streq (o->keyword, "dbname") ? dbname : o->val;
        if (!value)
            continue;
        size_t used = strlen (out);
        snprintf (out + used, size - used, "%s%s='", used ? " " : "", o->keyword);
        for (const char *c = value; *c; c++) {
            used = strlen (out);
            snprintf (out + used, size - used, "%s%c", *c == '\'' || *c == '\\' ? "\\" : "", *c);
        }
        strncat (out, "'", size - strlen (out) - 1);
    }
    if (!strstr (out, "dbname='")) {
        size_t used = strlen (out);
        snprintf (out + used, size - used, " dbname='%s'", dbname);
    }
    PQconninfoFree (options);
    return out;
}

void
aigw_guardset_test (bool verbose)
{
    char err[256] = "";
    //  Names a database policy may take.
    assert (aigw_guardset_name_valid ("team-a.strict_1") && aigw_guardset_name_valid ("default"));
    assert (!aigw_guardset_name_valid ("none") && !aigw_guardset_name_valid ("")
            && !aigw_guardset_name_valid ("-x") && !aigw_guardset_name_valid ("a/b")
            && !aigw_guardset_name_valid (NULL));
    //  Compiling names the field, never a pattern's text.
    assert (!aigw_guardset_compile ("p", "{\"guardrails\": [], \"bindings\": {\"keys\": [\"\"]}}",
                                    err, sizeof err));
    assert (strstr (err, "bindings.keys[0]"));
    assert (!aigw_guardset_compile ("p",
                                    "{\"guardrails\": [{\"detector\": \"patterns\", "
                                    "\"action\": \"block\", \"patterns\": [{\"name\": \"a\", "
                                    "\"regex\": \"(secretpat\"}]}]}",
                                    err, sizeof err));
    assert (!strstr (err, "secretpat"));
    assert (
        !aigw_guardset_compile ("p", "{\"description\": 5, \"guardrails\": []}", err, sizeof err)
        && strstr (err, "p: description:"));
    aigw_policy_t *compiled = aigw_guardset_compile (
        "p",
        "{\"description\": \"d\", \"guardrails\": [{\"detector\": \"pii\", \"action\": \"flag\"}],"
        " \"bindings\": {\"models\": [\"m\"]}}",
        err, sizeof err);
    assert (compiled);
    aigw_policy_destroy (&compiled);

    //  Config only: no database, the config's policies and bindings, the
    //  built-in default served by name but not to traffic.
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    aigw_config_string_free (&config->database_url);
    config->guardrail_policies
        = strdup ("{\"strict\": {\"guardrails\": [{\"detector\": \"pii\", \"action\": \"block\"}],"
                  " \"bindings\": {\"tenants\": [\"t1\"], \"keys\": [\"k1\"]}},"
                  " \"loose\": {\"guardrails\": [{\"detector\": \"pii\", \"action\": \"flag\"}],"
                  " \"bindings\": {\"models\": [\"gpt\"]}}}");
    aigw_guardset_t *set = aigw_guardset_new (config, err, sizeof err);
    assert (set);
    zmq_pollitem_t item;
    assert (aigw_guardset_pollitems (set, &item, 1) == 0 && aigw_guardset_timeout (set) == -1);
    aigw_guardset_process (set, &item, 0);
    assert (aigw_guardset_find (set, "strict") && aigw_guardset_find (set, "default"));
    assert (aigw_guardset_source (set, "default") == AIGW_GUARDSET_BUILTIN);
    assert (aigw_guardset_source (set, "strict") == AIGW_GUARDSET_CONFIG);
    assert (!aigw_guardset_find (set, "absent"));
    const char *mail = "mail bob@example.com";
    assert (aigw_guardset_resolve (set, "k1", NULL, NULL) == aigw_guardset_find (set, "strict"));
    assert (aigw_guardset_resolve (set, NULL, "t1", "gpt") == aigw_guardset_find (set, "strict"));
    assert (aigw_guardset_resolve (set, "k9", "t9", "gpt") == aigw_guardset_find (set, "loose"));
    assert (aigw_guardset_resolve (set, "k9", "t9", "other") == NULL);
    assert (s_test_action (aigw_guardset_resolve (set, NULL, NULL, "gpt"), mail)
            == AIGW_POLICY_FLAG);
    assert (streq (aigw_guardset_config_binding (set, "keys", "k1"), "strict"));
    assert (!aigw_guardset_config_binding (set, "models", "k1"));
    aigw_guardset_destroy (&set);
    aigw_guardset_destroy (&set);
    //  default_policy: "default" reaches the built-in, "none" nothing, a
    //  name that policy.
    config->guardrail_default_policy = strdup ("default");
    set = aigw_guardset_new (config, err, sizeof err);
    assert (aigw_guardset_resolve (set, NULL, NULL, NULL) == aigw_guardset_find (set, "default"));
    assert (s_test_action (aigw_guardset_resolve (set, NULL, NULL, NULL), mail)
            == AIGW_POLICY_REDACT);
    aigw_guardset_destroy (&set);
    aigw_config_string_free (&config->guardrail_default_policy);
    config->guardrail_default_policy = strdup ("none");
    set = aigw_guardset_new (config, err, sizeof err);
    assert (aigw_guardset_resolve (set, NULL, NULL, NULL) == NULL);
    assert (aigw_guardset_resolve (set, "k1", NULL, NULL) == aigw_guardset_find (set, "strict"));
    aigw_guardset_destroy (&set);
    aigw_config_string_free (&config->guardrail_default_policy);
    //  The operator's own default is the fallback, and no built-in is made.
    aigw_config_string_free (&config->guardrail_policies);
    config->guardrail_policies = strdup (
        "{\"default\": {\"guardrails\": [{\"detector\": \"pii\", \"action\": \"flag\"}]}}");
    set = aigw_guardset_new (config, err, sizeof err);
    assert (aigw_guardset_source (set, "default") == AIGW_GUARDSET_CONFIG);
    assert (s_test_action (aigw_guardset_resolve (set, "k", "t", "m"), mail) == AIGW_POLICY_FLAG);
    aigw_guardset_destroy (&set);
    //  A broken config policy fails the guardset.
    aigw_config_string_free (&config->guardrail_policies);
    config->guardrail_policies = strdup ("{\"bad\": {\"guardrails\": []}}");
    assert (!aigw_guardset_new (config, err, sizeof err) && strstr (err, "bad: guardrails"));
    aigw_config_string_free (&config->guardrail_policies);
    config->guardrail_policies
        = strdup ("{\"strict\": {\"guardrails\": [{\"detector\": \"pii\", \"action\": \"block\"}],"
                  " \"bindings\": {\"tenants\": [\"t1\"]}}}");

    //  The database: a PostgreSQL of its own, migrated, on DATABASE_URL's
    //  server.
    const char *url = getenv ("DATABASE_URL");
    if (!url || !*url) {
        //  Label pg: a missing database fails, it does not pass as skipped.
        fprintf (stderr, "guardset: DATABASE_URL is unset; this selftest needs PostgreSQL "
                         "(tests/run.sh starts one)\n");
        exit (1);
    }
    PGconn *server = PQconnectdb (url);
    assert (PQstatus (server) == CONNECTION_OK);
    s_test_exec (server, "SET client_min_messages TO warning");
    char dbname[64], sql[512];
    snprintf (dbname, sizeof dbname, "aigw_guardset_test_%d", (int) getpid ());
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    s_test_exec (server, sql);
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", dbname);
    s_test_exec (server, sql);
    config->database_url = s_test_url (url, dbname);
    assert (aigw_db_migrate (config, err, sizeof err) == 0);
    PGconn *db = PQconnectdb (config->database_url);
    assert (PQstatus (db) == CONNECTION_OK);
    s_test_exec (db, "SET client_min_messages TO warning");

    set = aigw_guardset_new (config, err, sizeof err);
    assert (set);
    //  The first snapshot is empty: nothing changes.
    for (int64_t until = zclock_mono () + 3000; zclock_mono () < until;) {
        int count = aigw_guardset_pollitems (set, &item, 1);
        zmq_poll (&item, count, 50);
        aigw_guardset_process (set, &item, count);
        if (count && !item.revents && aigw_guardset_timeout (set) == -1)
            break;  //  connected and quiet
    }
    assert (aigw_guardset_version (set) == 0);
    assert (aigw_guardset_resolve (set, "k2", NULL, NULL) == NULL);

    //  Adding policies: bound to a key, a tenant and a model; a database
    //  `default` becomes the fallback.
    s_test_exec (db, "INSERT INTO guardrail_policies (name, definition, created_by) VALUES"
                     " ('by-key', '{\"guardrails\": [{\"detector\": \"pii\", \"action\": "
                     "\"block\"}], \"bindings\": {\"keys\": [\"k2\"]}}', 'test'),"
                     " ('by-tenant', '{\"guardrails\": [{\"detector\": \"pii\", \"action\": "
                     "\"redact\"}], \"bindings\": {\"tenants\": [\"t2\"]}}', 'test'),"
                     " ('by-model', '{\"guardrails\": [{\"detector\": \"pii\", \"action\": "
                     "\"flag\"}], \"bindings\": {\"models\": [\"m2\"]}}', 'test'),"
                     " ('default', '{\"guardrails\": [{\"detector\": \"secrets\", \"action\": "
                     "\"flag\"}]}', 'test')");
    s_test_wait (set, 0, 5000);
    uint64_t version = aigw_guardset_version (set);
    assert (version == 1);
    aigw_policy_t *by_key = aigw_guardset_find (set, "by-key");
    aigw_policy_t *by_tenant = aigw_guardset_find (set, "by-tenant");
    aigw_policy_t *by_model = aigw_guardset_find (set, "by-model");
    assert (by_key && by_tenant && by_model);
    assert (aigw_guardset_source (set, "default") == AIGW_GUARDSET_DATABASE);
    //  Priority: key, tenant, model, fallback.
    assert (aigw_guardset_resolve (set, "k2", "t2", "m2") == by_key);
    assert (aigw_guardset_resolve (set, "k9", "t2", "m2") == by_tenant);
    assert (aigw_guardset_resolve (set, NULL, "t9", "m2") == by_model);
    assert (aigw_guardset_resolve (set, "k9", "t9", "m9") == aigw_guardset_find (set, "default"));
    //  The config's binding and name win.
    assert (aigw_guardset_resolve (set, "k9", "t1", "m2") == aigw_guardset_find (set, "strict"));
    //  A tenant's own policy says whose it is; the others are nobody's.
    s_test_exec (db, "INSERT INTO tenants (id, name) VALUES"
                     " ('0b7e2b1e-7a51-4c47-9d3c-2f3b0b8d0a01', 'gs-tenant');"
                     " INSERT INTO guardrail_policies (name, definition, created_by, tenant_id)"
                     " VALUES ('owned', '{\"guardrails\": [{\"detector\": \"pii\", \"action\":"
                     " \"flag\"}]}', 'test', '0b7e2b1e-7a51-4c47-9d3c-2f3b0b8d0a01')");
    s_test_wait (set, version, 5000);
    assert (aigw_guardset_version (set) == ++version);
    assert (streq (aigw_guardset_tenant (set, "owned"), "0b7e2b1e-7a51-4c47-9d3c-2f3b0b8d0a01"));
    assert (!aigw_guardset_tenant (set, "by-key") && !aigw_guardset_tenant (set, "strict"));
    assert (!aigw_guardset_tenant (set, "nothing"));
    s_test_exec (db, "DELETE FROM guardrail_policies WHERE name = 'owned'");
    s_test_wait (set, version, 5000);
    assert (aigw_guardset_version (set) == ++version);

    //  Changing one recompiles that one only; a bad one is skipped and the
    //  others kept; a removed one goes.
    s_test_exec (db, "UPDATE guardrail_policies SET definition = '{\"guardrails\": [{\"detector\": "
                     "\"pii\", \"action\": \"flag\"}], \"bindings\": {\"tenants\": [\"t2\", "
                     "\"t3\"]}}' WHERE name = 'by-tenant'");
    s_test_wait (set, version, 5000);
    assert (aigw_guardset_version (set) == ++version);
    assert (aigw_guardset_find (set, "by-key") == by_key);
    assert (aigw_guardset_find (set, "by-model") == by_model);
    by_tenant = aigw_guardset_find (set, "by-tenant");
    assert (aigw_guardset_resolve (set, NULL, "t3", NULL) == by_tenant);
    assert (s_test_action (by_tenant, mail) == AIGW_POLICY_FLAG);
    s_test_exec (db, "INSERT INTO guardrail_policies (name, definition, created_by) VALUES"
                     " ('broken', '{\"guardrails\": [{\"detector\": \"dlp\", \"action\": "
                     "\"block\"}], \"bindings\": {\"keys\": [\"k5\"]}}', 'test');"
                     " DELETE FROM guardrail_policies WHERE name = 'by-model'");
    s_test_wait (set, version, 5000);
    assert (aigw_guardset_version (set) == ++version);
    assert (!aigw_guardset_find (set, "broken") && !aigw_guardset_find (set, "by-model"));
    assert (aigw_guardset_find (set, "by-key") == by_key
            && aigw_guardset_find (set, "by-tenant") == by_tenant);
    assert (aigw_guardset_resolve (set, "k5", "t9", "m2") == aigw_guardset_find (set, "default"));
    //  A database policy named like a config one is ignored.
    s_test_exec (db, "INSERT INTO guardrail_policies (name, definition, created_by) VALUES"
                     " ('strict', '{\"guardrails\": [{\"detector\": \"pii\", \"action\": "
                     "\"flag\"}]}', 'test')");
    s_test_wait (set, version, 1500);
    assert (aigw_guardset_source (set, "strict") == AIGW_GUARDSET_CONFIG);
    assert (s_test_action (aigw_guardset_find (set, "strict"), mail) == AIGW_POLICY_BLOCK);

    //  The schema keeps bindings exclusive, naming the binding.
    PGresult *res = PQexec (db, "INSERT INTO guardrail_policies (name, definition, created_by)"
                                " VALUES ('again', '{\"guardrails\": [], \"bindings\": {\"keys\":"
                                " [\"k2\"]}}', 'test')");
    assert (PQresultStatus (res) == PGRES_FATAL_ERROR);
    assert (streq (PQresultErrorField (res, PG_DIAG_SQLSTATE), "23505"));
    assert (streq (PQresultErrorField (res, PG_DIAG_CONSTRAINT_NAME),
                   "guardrail_policy_bindings_pkey"));
    assert (streq (PQresultErrorField (res, PG_DIAG_COLUMN_NAME), "bindings.keys"));
    assert (strstr (PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY), "by-key"));
    PQclear (res);
    aigw_guardset_destroy (&set);

    PQfinish (db);
    snprintf (sql, sizeof sql, "DROP DATABASE %s", dbname);
    s_test_exec (server, sql);
    PQfinish (server);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("guardset: ok\n");
}
