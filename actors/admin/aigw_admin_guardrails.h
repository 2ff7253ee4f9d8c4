/*  aigw_admin_guardrails: the guardrails/policies routes of the admin API.

    GET guardrails/policies lists the config's policies (read-only,
    "source": "config"), the built-in `default` ("source": "builtin")
    unless the config or the database defines one, then the database's
    ("source": "database"). POST creates one (201), GET/PATCH/DELETE
    guardrails/policies/{name} read, change (the given top-level members
    of {description, guardrails, bindings} replace the stored ones) and
    delete (204) it. A config policy cannot be changed or shadowed: 409.

    A definition is checked by compiling it (aigw_guardset_compile): a bad
    one is 400 naming the field in `param`, never quoting a pattern. A key,
    tenant or model is bound to one policy at most: the schema enforces it
    in the writing statement (schemas/sql/010), and the admin API answers a
    conflict 409 `conflict` naming the binding; a binding a config policy
    holds is refused the same way before the database is asked.

    Scope: a principal of every tenant writes global policies and binds
    anything. Any other (tenant-admin) owns the policies it creates: it may
    bind only its own tenant and its tenant's keys (403 otherwise), never a
    model nor the name `default` (the fallback of every tenant), and it
    sees global policies and its own, with bindings narrowed to its tenant.
    Every write leaves one audit_log row in the same statement.

    The handlers answer through the admin actor's request (aigw_admin.c),
    whose small interface is declared here. */
#ifndef AIGW_ADMIN_GUARDRAILS_H_INCLUDED
#define AIGW_ADMIN_GUARDRAILS_H_INCLUDED

#include "aigw_admin_input.h"
#include "aigw_config.h"
#include "aigw_cp_sql.h"
#include "aigw_envelope.h"
#include "aigw_guardset.h"

#include <jansson.h>
#include <libpq-fe.h>

//  ---------------------------------------------------------------------
//  What the admin actor (aigw_admin.c) gives handlers in other files.

typedef struct _aigw_admin_request_t aigw_admin_request_t;

//  A statement's rows for the request's next step: answers it, or submits
//  the next statement.
typedef void (aigw_admin_then_fn) (aigw_admin_request_t **req_p, PGresult *res);

//  An SQL error in RES: answers the request and returns true, or returns
//  false for the actor's own answer.
typedef bool (aigw_admin_fail_fn) (aigw_admin_request_t **req_p, PGresult *res);

//  Who asks, and what the actor holds (all borrowed, for the request's life).
typedef struct {
    aigw_envelope_t *env;         //  the request
    bool all;                     //  a principal of every tenant
    const char *scope;            //  else its tenant id (a UUID), NULL for none
    const char *perms;            //  its permissions, comma-separated
    const aigw_config_t *config;  //  settings
    aigw_guardset_t *guardset;    //  the actor's policies, kept live
    bool db;                      //  a database is configured
} aigw_admin_caller_t;

void aigw_admin_request_caller (aigw_admin_request_t *req, aigw_admin_caller_t *caller);
//  Answer STATUS with ROOT (taken) as the body.
void aigw_admin_request_json (aigw_admin_request_t **req_p, int status, json_t *root);
//  Answer STATUS with no body.
void aigw_admin_request_empty (aigw_admin_request_t **req_p, int status);
void aigw_admin_request_fail (aigw_admin_request_t **req_p, int status, const char *type,
                              const char *code, const char *param, const char *message);
void aigw_admin_request_refuse (aigw_admin_request_t **req_p, const aigw_admin_error_t *err);
//  Run STATEMENT with PARAMS (the principal's slots are filled); THEN gets
//  the rows, FAIL (may be NULL) an SQL error first.
void aigw_admin_request_submit (aigw_admin_request_t **req_p, const aigw_cp_sql_t *statement,
                                const char **params, aigw_admin_then_fn *then,
                                aigw_admin_fail_fn *fail);
//  Keep BODY (taken) for the next step; aigw_admin_request_kept gives it.
void aigw_admin_request_keep (aigw_admin_request_t *req, json_t *body);
json_t *aigw_admin_request_kept (aigw_admin_request_t *req);

//  ---------------------------------------------------------------------
//  The routes' handlers (the admin route table names them). ID is the
//  {id} path segment, "" for none.

void aigw_admin_guardrails_list (aigw_admin_request_t **req_p, const char *id);
void aigw_admin_guardrails_create (aigw_admin_request_t **req_p, const char *id);
void aigw_admin_guardrails_get (aigw_admin_request_t **req_p, const char *id);
void aigw_admin_guardrails_update (aigw_admin_request_t **req_p, const char *id);
void aigw_admin_guardrails_delete (aigw_admin_request_t **req_p, const char *id);

//  The field a compile error of policy NAME names ("guardrails[0].action",
//  "bindings.keys[2]", a top-level member), written to PARAM ("" when it
//  names none); MESSAGE gets the error without the policy's name.
void aigw_admin_guardrails_param (const char *name, const char *error, char *param,
                                  size_t param_size, char *message, size_t message_size);

void aigw_admin_guardrails_test (bool verbose);

#endif
