/*  aigw_catalog: the models one provider actor serves, each with its
    deployments' upstream settings (URL, credentials, adapter) and its
    router (breakers, health figures). Built from the config file and the
    database's models, and rebuilt whenever the database changes.

    A model entry is reference-counted: a request holds the entries it may
    use, so a reload never frees one under a request in flight. A model
    whose definition did not change keeps its entry, so its breakers and
    figures survive the reload. Single-threaded: one provider actor owns
    its catalog. Credentials live only here and in the upstream request;
    nothing here logs. */
#ifndef AIGW_CATALOG_H_INCLUDED
#define AIGW_CATALOG_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aigw_adapter.h"
#include "aigw_config.h"
#include "aigw_router.h"

//  One deployment, resolved: what the adapter needs to call it.
typedef struct {
    char *id;                       //  deployment id (router key, X-AIGW-Provider)
    char *provider;                 //  provider name as configured
    const aigw_adapter_t *adapter;  //  its wire format
    aigw_upstream_t up;             //  upstream settings; strings point at the fields below
    char *base_url;                 //  resolved base URL, no trailing slash
    char *model;                    //  upstream model
    char *api_key;                  //  resolved secret, or NULL
    char *api_version;              //  Azure api-version, or NULL
    char *region;                   //  Bedrock region, or NULL
    char *aws_key_id;               //  Bedrock key id, or NULL
    char *aws_secret;               //  Bedrock secret, or NULL
    char *aws_token;                //  Bedrock session token, or NULL
    double price_in;                //  USD per million input tokens
    double price_out;               //  USD per million output tokens
    double price_cached_in;         //  USD per million prompt tokens read from the upstream's
                                    //  cache (price_in when the deployment names none)
    int64_t rpm;                    //  requests per minute this process sends it, 0 = no cap
    int64_t tpm;                    //  tokens per minute (recorded, not enforced)
    int64_t minute_start;           //  start of the current RPM minute, ms
    int64_t minute_requests;        //  requests sent in it
    aigw_deployment_t *route;       //  the router's entry for it
    bool key_unreadable;            //  its stored api_key did not open: refuses every request
} aigw_catalog_deployment_t;

//  One model.
typedef struct {
    char *name;                              //  name clients ask for
    char *source;                            //  "config" or "database"
    aigw_route_strategy_t strategy;          //  how a deployment is chosen
    aigw_router_t *router;                   //  breakers and figures of its deployments
    aigw_catalog_deployment_t *deployments;  //  resolved deployments
    size_t deployment_count;                 //  entries in deployments
    char **fallbacks;                        //  models tried when none of these answers
    size_t fallback_count;                   //  entries in fallbacks
    char *signature;                         //  the definition, to spot changes on reload
    uint32_t refs;                           //  the catalog's own plus one per holder
} aigw_catalog_model_t;

typedef struct _aigw_catalog_t aigw_catalog_t;

//  New empty catalog reading defaults and credentials from CONFIG (which
//  must outlive it). NULL when out of memory.
aigw_catalog_t *aigw_catalog_new (const aigw_config_t *config);

//  Destroy; entries still held by requests live on until released.
void aigw_catalog_destroy (aigw_catalog_t **self_p);

//  Replace the models with the config file's plus EXTRA (EXTRA_COUNT
//  database models; a name the config already has is skipped). Unchanged
//  models keep their entries. Returns the number of models skipped for an
//  invalid definition (each named in ERR, the last one wins), or -1 when
//  out of memory (the old models are then kept).
int aigw_catalog_load (aigw_catalog_t *self, const aigw_config_model_t *extra, size_t extra_count,
                       const char *extra_source, char *err, size_t err_size);

//  Model by name, or NULL. The catalog keeps it; take a reference to hold it.
aigw_catalog_model_t *aigw_catalog_get (aigw_catalog_t *self, const char *name);

//  Number of models, and the model at INDEX (config order, then database).
size_t aigw_catalog_size (aigw_catalog_t *self);
aigw_catalog_model_t *aigw_catalog_at (aigw_catalog_t *self, size_t index);

//  Take and release a reference; release nulls the pointer and frees the
//  entry after the catalog and every holder let go.
aigw_catalog_model_t *aigw_catalog_ref (aigw_catalog_model_t *model);
void aigw_catalog_unref (aigw_catalog_model_t **model_p);

//  The resolved deployment behind a router pick.
aigw_catalog_deployment_t *aigw_catalog_deployment (aigw_catalog_model_t *model,
                                                    const aigw_deployment_t *route);

//  Count one request to D at NOW against its RPM capacity. False (and
//  nothing counted) when the current minute is full: the caller picks
//  another deployment. The cap holds per provider process.
bool aigw_catalog_admit (aigw_catalog_deployment_t *d, int64_t now);

//  Every deployment's report (aigw_router_report_json), one array.
json_t *aigw_catalog_report (aigw_catalog_t *self, int64_t now);

//  The strategy named NAME, or -1 when unknown (NULL is weighted).
int aigw_catalog_strategy (const char *name);

void aigw_catalog_test (bool verbose);

#endif
