/*  aigw_models: models and their deployments as JSON documents, the one
    shape the admin API accepts, the database gives provider processes, and
    the config's aigw_config_model_t holds in memory.

    A model document (what POST models takes, and what each row of
    AIGW_MODELS_SQL holds, ids and secrets included):

        {"id"?, "name", "strategy"?, "fallbacks"?: [model names],
         "deployments": [{"id"?, "provider", "model", "base_url"?, "api_key"?,
                          "api_key_env"?, "api_version"?, "region"?,
                          "weight"?, "priority"?, "rpm"?, "tpm"?,
                          "price_in"?, "price_out"?, "price_cached_in"?}]}

    An optional member may also be null, which means the same as leaving it
    out. The API view (aigw_models_to_json) never holds api_key: only
    "api_key_set". Pure functions, no I/O. */
#ifndef AIGW_MODELS_H_INCLUDED
#define AIGW_MODELS_H_INCLUDED

#include "aigw_config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  The channel every models and model_deployments change NOTIFYs
//  (schemas/sql/002_models.sql); the payload is the model's id.
#define AIGW_MODELS_CHANNEL "aigw_models"

//  Limits of a document's fields (the schema's CHECKs hold the same).
#define AIGW_MODELS_NAME_MAX     128      //  model name, in characters
#define AIGW_MODELS_UPSTREAM_MAX 256      //  deployment "model", in characters
#define AIGW_MODELS_URL_MAX      2048     //  base_url, in bytes
#define AIGW_MODELS_ENV_MAX      128      //  api_key_env, in bytes
#define AIGW_MODELS_API_KEY_MAX  4096     //  api_key, in bytes
#define AIGW_MODELS_TOKEN_MAX    64       //  api_version and region, in bytes
#define AIGW_MODELS_ID_MAX       256      //  an "id", in bytes
#define AIGW_MODELS_WEIGHT_MAX   1000000  //  weight: 0..this
#define AIGW_MODELS_PRIORITY_MAX 1000     //  priority: 0..this
#define AIGW_MODELS_PRICE_MAX    1e9      //  price_in / price_out, USD per million tokens

//  Every database model as one text column per row: its document (above)
//  with the model's "id" and each deployment's "id", api_key INCLUDED
//  (sealed by aigw_secret, or legacy plain text: provider processes open
//  it; never send it anywhere else). Members that
//  are NULL in the database are left out. No parameters. Rows come in
//  creation order.
extern const char AIGW_MODELS_SQL[];

//  Check model document DOC and fill OUT (zeroed first; strings are
//  strdup'd, OUT->provider and OUT->upstream_model mirror deployments[0],
//  and a top-level "id" is checked but not kept: read it from DOC). Returns
//  0, or -1 with OUT empty, PARAM the JSON path of the offending field
//  ("name", "fallbacks[2]", "deployments[1].provider"; "" for the document
//  itself) and ERR a human message that never quotes an api_key. Free OUT
//  with aigw_config_model_reset.
int aigw_models_from_json (json_t *doc, aigw_config_model_t *out, char *param, size_t param_size,
                           char *err, size_t err_size);

//  Check a partial document DOC, as PATCH models/{id} takes it: any of
//  "name", "strategy" (null clears it), "fallbacks" (null empties it) and
//  "deployments" (the whole new list; a deployment's "id" names one to keep,
//  and its api_key is then kept unless the member is given), at least one.
//  A fallback naming the model itself is caught here only when DOC renames
//  it. Returns 0, or -1 with PARAM and ERR as aigw_models_from_json.
int aigw_models_check_patch (json_t *doc, char *param, size_t param_size, char *err,
                             size_t err_size);

//  MODEL as the admin API shows it: {"id": ID, "name", "source": SOURCE
//  ("database" or "config"), "strategy", "fallbacks", "deployments": [{"id",
//  "provider", "model", "base_url", "api_key_env", "api_key_set",
//  "api_version", "region", "weight", "priority", "rpm", "tpm", "price_in",
//  "price_out", "price_cached_in" (null: price_in)}]}: never an api_key. A deployment without an id shows
//  "NAME/INDEX"; a short-form model (no deployments, only provider and
//  upstream_model) shows one deployment. NULL when out of memory; caller
//  owns the result.
json_t *aigw_models_to_json (const aigw_config_model_t *model, const char *id, const char *source);

//  Room for a deployment's associated data (aigw_models_key_aad).
#define AIGW_MODELS_AAD_MAX (32 + AIGW_MODELS_ID_MAX)

//  The associated data that binds a deployment's sealed api_key
//  (aigw_secret) to its row: the column's name and the deployment's id in
//  lower case (PostgreSQL's spelling of a uuid), so a value copied to
//  another row, or another column, does not open. Written into OUT.
void aigw_models_key_aad (const char *deployment_id, char *out, size_t size);

//  Wipe the api_key strings of DOC's deployments (a model as JSON), then
//  free DOC. Safe on NULL.
void aigw_models_doc_destroy (json_t *doc);

void aigw_models_test (bool verbose);

#endif
