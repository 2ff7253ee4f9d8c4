/*  aigw_selftest: runs the selftest of one class (--test NAME) or all.
    Each selftest asserts; a failure aborts with the assertion's location. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

//  Weak so that a class still being written shows as "not built" instead of
//  breaking the link; a missing test fails the run.
#define AIGW_SELFTEST(name) void aigw_##name##_test (bool verbose) __attribute__ ((weak));
AIGW_SELFTEST (config)
AIGW_SELFTEST (hex)
AIGW_SELFTEST (json)
AIGW_SELFTEST (text)
AIGW_SELFTEST (envelope)
AIGW_SELFTEST (broker)
AIGW_SELFTEST (auth)
AIGW_SELFTEST (ratelimit)
AIGW_SELFTEST (guardrail)
AIGW_SELFTEST (cache)
AIGW_SELFTEST (provider)
AIGW_SELFTEST (edge)
AIGW_SELFTEST (edge_io)
AIGW_SELFTEST (edge_conn)
AIGW_SELFTEST (peer)
AIGW_SELFTEST (mock)
AIGW_SELFTEST (mock_formats)
AIGW_SELFTEST (db)
AIGW_SELFTEST (keys)
AIGW_SELFTEST (jwt)
AIGW_SELFTEST (admin)
AIGW_SELFTEST (breaker)
AIGW_SELFTEST (router)
AIGW_SELFTEST (anthropic)
AIGW_SELFTEST (bedrock)
AIGW_SELFTEST (gemini)
AIGW_SELFTEST (adapter)
AIGW_SELFTEST (azure)
AIGW_SELFTEST (health)
AIGW_SELFTEST (catalog)
AIGW_SELFTEST (anthropic_adapter)
AIGW_SELFTEST (bedrock_adapter)
AIGW_SELFTEST (messages)
AIGW_SELFTEST (dbwatch)
AIGW_SELFTEST (models)

typedef struct {
    const char *name;           //  class name, as given to --test
    void (*fn) (bool);          //  its selftest, NULL if not linked
} s_test_t;

int
main (int argc, char **argv)
{
    s_test_t tests[] = {
        {"config", aigw_config_test},       {"hex", aigw_hex_test},       {"json", aigw_json_test},       {"envelope", aigw_envelope_test},
        {"text", aigw_text_test},
        {"broker", aigw_broker_test},       {"auth", aigw_auth_test},
        {"ratelimit", aigw_ratelimit_test}, {"guardrail", aigw_guardrail_test},
        {"cache", aigw_cache_test},         {"provider", aigw_provider_test},
        {"edge", aigw_edge_test},           {"edge_io", aigw_edge_io_test},
        {"edge_conn", aigw_edge_conn_test}, {"peer", aigw_peer_test},
        {"mock", aigw_mock_test},
        {"edge", aigw_edge_test},           {"mock", aigw_mock_test},
        {"mock_formats", aigw_mock_formats_test},
        {"db", aigw_db_test},               {"keys", aigw_keys_test},
        {"jwt", aigw_jwt_test},             {"admin", aigw_admin_test},
        {"breaker", aigw_breaker_test},     {"router", aigw_router_test},
        {"anthropic", aigw_anthropic_test},
        {"bedrock", aigw_bedrock_test},
        {"gemini", aigw_gemini_test},
        {"adapter", aigw_adapter_test},     {"azure", aigw_azure_test},
        {"health", aigw_health_test},       {"catalog", aigw_catalog_test},
        {"health", aigw_health_test},
        {"anthropic_adapter", aigw_anthropic_adapter_test},
        {"bedrock_adapter", aigw_bedrock_adapter_test},
        {"health", aigw_health_test},       {"messages", aigw_messages_test},
        {"health", aigw_health_test},       {"dbwatch", aigw_dbwatch_test},
        {"health", aigw_health_test},       {"models", aigw_models_test},
    };
    const char *only = NULL;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--test") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp (argv[i], "-v") == 0)
            verbose = true;
        else {
            fprintf (stderr, "usage: aigw_selftest [--test NAME] [-v]\n");
            return 2;
        }
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (only && strcmp (only, tests[i].name) != 0)
            continue;
        if (!tests[i].fn) {
            fprintf (stderr, "selftest %s: not built\n", tests[i].name);
            return 1;
        }
        printf (" * %s: ", tests[i].name);
        fflush (stdout);
        tests[i].fn (verbose);
        printf ("OK\n");
        ran++;
    }
    if (ran == 0) {
        fprintf (stderr, "no selftest named %s\n", only ? only : "?");
        return 1;
    }
    return 0;
}
