/*  aigw: the one binary. Parses the command line, loads the config and
    starts what the command names (SPEC: Command line). */
#include "aigw_actors.h"
#include "aigw_adapter.h"
#include "aigw_broker.h"
#include "aigw_config.h"
#include "aigw_edge.h"
#include "aigw_embeddings.h"
#include "aigw_log.h"
#include "aigw_metrics_server.h"
#include "aigw_mock_provider.h"
#include "aigw_operator.h"
#include "aigw_tokens.h"

#include <curl/curl.h>
#include <jansson.h>
#include <getopt.h>
#include <sys/prctl.h>
#include <sys/resource.h>

//  Linux 6.16+ gives each process a private futex hash sized by min(threads,
//  CPUs): 16 buckets here, shared by 10,000 parked edge threads, so every
//  wake-up walks hundreds of waiters under one spinlock. 0 slots selects the
//  global hash instead. Older kernels answer EINVAL, which is fine.
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH           78
#define PR_FUTEX_HASH_SET_SLOTS 1
#endif

//  How often the foreground loop checks for a stop signal.
#define AIGW_MAIN_POLL_MS 100

static const char *s_usage
    = "usage: aigw COMMAND [OPTIONS]\n"
      "\n"
      "commands:\n"
      "  run [--config FILE]                       everything in one process\n"
      "  broker --bind ENDPOINT [--config FILE]    the broker alone\n"
      "  edge --broker ENDPOINT [--port N]         the HTTP edge alone\n"
      "  actor NAME[,NAME...] --broker ENDPOINT    one actor, or several in one thread:\n"
      "        [--metrics-port N]                  auth, ratelimit, guardrail, cache,\n"
      "                                            provider, admin, usage\n"
      "  migrate                                   apply database migrations\n"
      "  tenants create NAME | list                tenants (--json for JSON)\n"
      "  keys create --tenant T --name N [...]     API keys: create, list, revoke ID,\n"
      "                                            rotate ID (aigw help keys)\n"
      "  secrets rotate                            re-encrypt stored provider keys under\n"
      "                                            the current AIGW_SECRET_KEY\n"
      "  tokens count [--format F] [FILE...]      estimate the tokens of text or of a\n"
      "                                            request body, offline (aigw help tokens)\n"
      "  embeddings import JSON --out FILE        word vectors for the semantic cache;\n"
      "                                            eval, similarity (aigw help embeddings)\n"
      "  mock-provider --port N [--latency-ms N] [--fail-rate F] [--route R:...]\n"
      "                                            a local upstream in every provider's\n"
      "                                            wire format\n"
      "  version                                   print the version\n"
      "  help [COMMAND]                            this text, or one command's\n"
      "\n"
      "common options: --config FILE, --host ADDR, --port N, --broker ENDPOINT\n"
      "The environment overrides the config file; see deploy/aigw.example.yaml.\n";

//  One command's help text.
typedef struct {
    const char *name;  //  command name
    const char *text;  //  what it prints
} s_help_t;

static const s_help_t s_helps[] = {
    {"run", "usage: aigw run [--config FILE] [--host ADDR] [--port N]\n"
            "Runs the broker, the HTTP edge and every actor in one process: auth,\n"
            "ratelimit, guardrail, cache and provider in the edge's I/O thread, handing\n"
            "each request along by function calls; admin in a thread of its own, and\n"
            "usage (records of every answer, with a database) in another.\n"
            "With no OPENAI_API_KEY and no OPENAI_BASE_URL it also starts a local mock\n"
            "provider and serves its models. Stops on SIGINT or SIGTERM.\n"},
    {"broker", "usage: aigw broker --bind ENDPOINT [--config FILE]\n"
               "Runs the broker alone, e.g. --bind tcp://0.0.0.0:5555. Edges and actors\n"
               "connect to it with --broker.\n"},
    {"edge", "usage: aigw edge --broker ENDPOINT [--port N] [--host ADDR] [--config FILE]\n"
             "Runs the HTTP edge alone, sending every request to the broker.\n"},
    {"actor", "usage: aigw actor NAME[,NAME...] --broker ENDPOINT [--config FILE]\n"
              "       [--metrics-port N]\n"
              "Runs one actor, or several in one thread (e.g. auth,ratelimit,guardrail):\n"
              "auth, ratelimit, guardrail, cache, provider, admin, usage or responses\n"
              "(stored /v1/responses). Co-located\n"
              "actors hand a request along by function calls; ratelimit and cache still\n"
              "reach the owner of each key through the broker. Start as many as load\n"
              "needs, on any host that reaches the broker (one usage actor per spool\n"
              "file: usage.spool_path).\n"
              "--metrics-port N serves GET /metrics on server.host:N with this process's\n"
              "own figures (the usage actor's spool and batches); the edge's /metrics\n"
              "shows those only when usage runs in its process (aigw run).\n"},
    {"mock-provider",
     "usage: aigw mock-provider --port N [--latency-ms N] [--fail-rate F] [--threads N]\n"
     "                          [--route NAME:latency=MS,fail=RATE,status=CODE,\n"
     "                           rate429=RATE,retry_after=S]...\n"
     "A local upstream for demos, tests and benchmarks that speaks every provider's\n"
     "wire format, streaming included: OpenAI (/v1/chat/completions, /v1/embeddings,\n"
     "/v1/models), Anthropic (/v1/messages), Gemini (/v1beta/models/M:generateContent,\n"
     ":streamGenerateContent?alt=sse, :embedContent, :batchEmbedContents), Bedrock\n"
     "(/model/ID/converse, /model/ID/converse-stream) and Azure OpenAI\n"
     "(/openai/deployments/D/chat/completions|embeddings?api-version=V).\n"
     "  --route NAME:...  per-route injection (NAME: openai, anthropic, gemini,\n"
     "                    bedrock, azure): latency in ms, a share FAIL of answers\n"
     "                    with STATUS (default 500), a share RATE429 of 429s with\n"
     "                    Retry-After: S (default 1); repeatable\n"
     "Controls in the last user message: mock:latency=MS, mock:status=CODE,\n"
     "mock:chunks=N, mock:chunk_delay=MS, mock:hang, mock:die_after=N, mock:tool.\n"
     "Test endpoints: GET /mock/stats, POST /mock/reset, GET /mock/requests,\n"
     "GET|POST|DELETE /mock/config. AIGW_MOCK_API_KEY pins the accepted key.\n"},
    {"tokens",
     "usage: aigw tokens count [--format text|chat|messages|embeddings] [--default-max N]\n"
     "                         [--json] [FILE...]\n"
     "Estimates tokens offline, as the rate limits reserve them: of plain text, or of\n"
     "a request body (chat: /v1/chat/completions, messages: /v1/messages,\n"
     "embeddings: /v1/embeddings), its prompt and its completion ceiling\n"
     "(max_tokens, else --default-max). Reads each FILE, or standard input.\n"
     "Prints the prompt tokens, one line per input (after the file name when there\n"
     "are several); --json prints {\"file\", \"prompt_tokens\", \"completion_tokens\"}\n"
     "per line. The estimate follows OpenAI's o200k_base tokenizer and leans high.\n"
     "Exit 0, 1 when an input cannot be read or is not a JSON object, 2 on usage.\n"},
    {"version", "usage: aigw version\nPrints the version.\n"},
};

//  `aigw help [COMMAND]`: the overview, or one command's text.
static int
s_help (const char *command)
{
    if (!command) {
        printf ("%s", s_usage);
        return 0;
    }
    if (streq (command, "embeddings")) {
        printf ("%s", aigw_embeddings_help ());
        return 0;
    }
    //  migrate, tenants, keys and secrets: the operator module owns their text.
    const char *text = aigw_operator_help (command);
    if (text) {
        printf ("%s", text);
        return 0;
    }
    for (size_t i = 0; i < sizeof s_helps / sizeof s_helps[0]; i++)
        if (streq (command, s_helps[i].name)) {
            printf ("%s", s_helps[i].text);
            return 0;
        }
    fprintf (stderr, "aigw: no help for '%s'\n%s", command, s_usage);
    return 2;
}

//  Options of every command.
typedef struct {
    const char *config;  //  --config
    const char *bind;    //  --bind
    const char *broker;  //  --broker
    const char *host;    //  --host
    int port;            //  --port, 0 = config
    int metrics_port;    //  --metrics-port (actor), 0 = none
} s_options_t;

//  Parse options after the command (and its NAME for `actor`). Returns 0,
//  or -1 after printing what is wrong.
static int
s_parse (int argc, char **argv, s_options_t *options)
{
    static struct option longs[] = {{"config", required_argument, NULL, 'c'},
                                    {"bind", required_argument, NULL, 'b'},
                                    {"broker", required_argument, NULL, 'r'},
                                    {"host", required_argument, NULL, 'h'},
                                    {"port", required_argument, NULL, 'p'},
                                    {"metrics-port", required_argument, NULL, 'm'},
                                    {NULL, 0, NULL, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
        char *end;
        switch (c) {
            case 'c': options->config = optarg; break;
            case 'b': options->bind = optarg; break;
            case 'r': options->broker = optarg; break;
            case 'h': options->host = optarg; break;
            case 'p':
            case 'm': {
                int *port = c == 'p' ? &options->port : &options->metrics_port;
                *port = (int) strtol (optarg, &end, 10);
                if (*end || *port < 1 || *port > 65535) {
                    fprintf (stderr, "aigw: --%s: expected an integer from 1 to 65535\n",
                             c == 'p' ? "port" : "metrics-port");
                    return -1;
                }
                break;
            }
            default: fprintf (stderr, "%s", s_usage); return -1;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "aigw: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

//  Load the config and apply the command-line overrides. NULL on error.
static aigw_config_t *
s_load (s_options_t *options)
{
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (options->config, err, sizeof err);
    if (!config) {
        fprintf (stderr, "aigw: invalid config: %s\n", err);
        return NULL;
    }
    if (options->host) {
        free (config->host);
        config->host = strdup (options->host);
    }
    if (options->port)
        config->port = options->port;
    const char *endpoint = options->bind ? options->bind : options->broker;
    if (endpoint) {
        free (config->broker_endpoint);
        config->broker_endpoint = strdup (endpoint);
    }
    aigw_log_level_t level;
    if (aigw_log_level_parse (config->log_level, &level) == 0)
        aigw_log_set_level (level);
    bool json;
    if (aigw_log_format_parse (config->log_format, &json) == 0)
        aigw_log_set_json (json);
    return config;
}

//  Block until SIGINT or SIGTERM.
static void
s_wait_for_signal (void)
{
    while (!zsys_interrupted)
        zclock_sleep (AIGW_MAIN_POLL_MS);
    aigw_info ("stopping");
}

static zactor_t *
s_start_broker (const aigw_config_t *config)
{
    aigw_broker_args_t args = {.endpoint = config->broker_endpoint,
                               .heartbeat_ms = config->heartbeat_ms,
                               .liveness = config->liveness,
                               .queue_max = config->queue_max};
    zactor_t *broker = zactor_new (aigw_broker_actor, &args);
    char *bound = broker ? aigw_broker_endpoint (broker) : NULL;
    if (!bound) {
        fprintf (stderr, "aigw: broker cannot bind %s\n", config->broker_endpoint);
        zactor_destroy (&broker);
    }
    zstr_free (&bound);
    return broker;
}

static int
s_cmd_run (s_options_t *options)
{
    aigw_log_set_ident ("run");
    aigw_config_t *config = s_load (options);
    if (!config)
        return 2;
    int rc = 1;
    aigw_mock_t *mock = NULL;
    zactor_t *broker = NULL;
    zactor_t *admin = NULL;
    aigw_host_args_t admin_args
        = {.config = config, .endpoint = config->broker_endpoint, .stages = "admin"};
    zactor_t *usage = NULL;
    aigw_host_args_t usage_args
        = {.config = config, .endpoint = config->broker_endpoint, .stages = "usage"};
    aigw_edge_t *edge = NULL;
    bool no_upstream = (!config->openai_api_key || !*config->openai_api_key)
                       && streq (config->openai_base_url, AIGW_DEFAULT_OPENAI_BASE_URL);
    if (no_upstream) {
        //  SPEC: with no provider key, serve the local mock's models.
        mock = aigw_mock_new (0, 0, 0.0);
        if (!mock) {
            fprintf (stderr, "aigw: cannot start the local mock provider\n");
            goto done;
        }
        free (config->openai_base_url);
        config->openai_base_url = zsys_sprintf ("http://127.0.0.1:%d/v1", aigw_mock_port (mock));
        free (config->openai_api_key);
        config->openai_api_key = strdup ("aigw-local-mock");
        aigw_info ("no OPENAI_API_KEY: serving the local mock provider at %s",
                   config->openai_base_url);
    }
    broker = s_start_broker (config);
    if (!broker)
        goto done;
    //  Admin waits on the database and the broker for seconds at a time:
    //  it keeps a thread of its own, off the requests' path.
    admin = zactor_new (aigw_host_actor, &admin_args);
    if (!admin || admin_args.failed) {
        fprintf (stderr, "aigw: %s\n", admin_args.err);
        goto done;
    }
    //  Usage writes to the database and fsyncs its spool: a thread of its
    //  own too. Records exist only with a database to keep them in.
    if (config->usage_enabled && config->database_url && *config->database_url) {
        usage = zactor_new (aigw_host_actor, &usage_args);
        if (!usage || usage_args.failed) {
            fprintf (stderr, "aigw: %s\n", usage_args.err);
            goto done;
        }
    }
    char err[256];
    //  No other process can reach an inproc broker: the pipeline's ratelimit
    //  and cache own every key.
    edge
        = aigw_edge_new (config, config->broker_endpoint, AIGW_RUN_PIPELINE, true, err, sizeof err);
    if (!edge) {
        fprintf (stderr, "aigw: %s\n", err);
        goto done;
    }
    aigw_info ("aigw %s listening on http://%s:%d", AIGW_VERSION, config->host,
               aigw_edge_port (edge));
    s_wait_for_signal ();
    rc = 0;
done:
    aigw_edge_destroy (&edge);
    zactor_destroy (&usage);
    zactor_destroy (&admin);
    zactor_destroy (&broker);
    aigw_mock_destroy (&mock);
    aigw_config_destroy (&config);
    return rc;
}

static int
s_cmd_broker (s_options_t *options)
{
    aigw_log_set_ident ("broker");
    aigw_config_t *config = s_load (options);
    if (!config)
        return 2;
    zactor_t *broker = s_start_broker (config);
    int rc = 1;
    if (broker) {
        aigw_info ("broker bound to %s", config->broker_endpoint);
        s_wait_for_signal ();
        rc = 0;
    }
    zactor_destroy (&broker);
    aigw_config_destroy (&config);
    return rc;
}

static int
s_cmd_edge (s_options_t *options)
{
    aigw_log_set_ident ("edge");
    aigw_config_t *config = s_load (options);
    if (!config)
        return 2;
    char err[256];
    aigw_edge_t *edge = aigw_edge_new (config, config->broker_endpoint, "", false, err, sizeof err);
    int rc = 1;
    if (edge) {
        aigw_info ("edge listening on http://%s:%d, broker %s", config->host, aigw_edge_port (edge),
                   config->broker_endpoint);
        s_wait_for_signal ();
        rc = 0;
    }
    else
        fprintf (stderr, "aigw: %s\n", err);
    aigw_edge_destroy (&edge);
    aigw_config_destroy (&config);
    return rc;
}

static int
s_cmd_actor (const char *name, s_options_t *options)
{
    char ident[64];
    snprintf (ident, sizeof ident, "actor/%s", name);
    aigw_log_set_ident (ident);
    aigw_config_t *config = s_load (options);
    if (!config)
        return 2;
    aigw_host_args_t args = {.config = config, .endpoint = config->broker_endpoint, .stages = name};
    zactor_t *actor = zactor_new (aigw_host_actor, &args);
    aigw_metrics_server_t *metrics = NULL;
    int rc = 2;
    char err[256] = "";
    if (actor && !args.failed && options->metrics_port)
        metrics = aigw_metrics_server_new (config->host, options->metrics_port, err, sizeof err);
    if (!actor || args.failed)
        fprintf (stderr, "aigw: %s\n", args.err);
    else if (options->metrics_port && !metrics)
        fprintf (stderr, "aigw: %s\n", err);
    else {
        aigw_info ("%s serving broker %s", name, config->broker_endpoint);
        if (metrics)
            aigw_info ("metrics on http://%s:%d/metrics", config->host,
                       aigw_metrics_server_port (metrics));
        s_wait_for_signal ();
        rc = 0;
    }
    aigw_metrics_server_destroy (&metrics);
    zactor_destroy (&actor);
    aigw_config_destroy (&config);
    return rc;
}

//  Largest input `aigw tokens count` reads.
#define AIGW_TOKENS_INPUT_MAX (64 * 1024 * 1024)

//  Read all of FILE (NULL: standard input) into a new buffer (*LEN bytes,
//  NUL after them); NULL when it cannot be read or is too large.
static char *
s_slurp (const char *file, size_t *len)
{
    FILE *in = file ? fopen (file, "rb") : stdin;
    if (!in)
        return NULL;
    size_t size = 65536, used = 0;
    char *data = malloc (size + 1);
    size_t n;
    while (data && (n = fread (data + used, 1, size - used, in)) > 0) {
        used += n;
        if (used == size && size < AIGW_TOKENS_INPUT_MAX) {
            size *= 2;
            char *grown = realloc (data, size + 1);
            if (!grown)
                free (data);
            data = grown;
        }
        else if (used == size)
            break;
    }
    bool failed = ferror (in) || (data && used == size && size >= AIGW_TOKENS_INPUT_MAX);
    if (file)
        fclose (in);
    if (failed) {
        free (data);
        return NULL;
    }
    if (data)
        data[used] = 0;
    *len = used;
    return data;
}

//  `aigw tokens count [--format F] [--default-max N] [--json] [FILE...]`.
static int
s_cmd_tokens (int argc, char **argv)
{
    if (argc < 2 || !streq (argv[1], "count")) {
        fprintf (stderr, "aigw: tokens needs the subcommand count\n");
        return 2;
    }
    const char *format = "text";
    long long default_max = 0;
    bool json = false;
    int first = argc;
    for (int i = 2; i < argc; i++) {
        if (streq (argv[i], "--format") && i + 1 < argc)
            format = argv[++i];
        else if (streq (argv[i], "--default-max") && i + 1 < argc) {
            char *end;
            default_max = strtoll (argv[++i], &end, 10);
            if (*end || default_max < 0) {
                fprintf (stderr, "aigw: --default-max takes a count\n");
                return 2;
            }
        }
        else if (streq (argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf (stderr, "aigw: unknown option '%s' (aigw help tokens)\n", argv[i]);
            return 2;
        }
        else {
            first = i;
            break;
        }
    }
    int kind = streq (format, "text")         ? 0
               : streq (format, "chat")       ? AIGW_TOKENS_CHAT
               : streq (format, "messages")   ? AIGW_TOKENS_MESSAGES
               : streq (format, "embeddings") ? AIGW_TOKENS_EMBEDDINGS
                                              : -1;
    if (kind < 0) {
        fprintf (stderr, "aigw: --format is text, chat, messages or embeddings\n");
        return 2;
    }
    int rc = 0;
    int inputs = first < argc ? argc - first : 1;
    for (int k = 0; k < inputs; k++) {
        const char *file = first < argc ? argv[first + k] : NULL;
        size_t len = 0;
        char *data = s_slurp (file && !streq (file, "-") ? file : NULL, &len);
        if (!data) {
            fprintf (stderr, "aigw: cannot read %s\n", file ? file : "standard input");
            rc = 1;
            continue;
        }
        int64_t prompt = 0, completion = 0;
        if (kind == 0)
            prompt = aigw_tokens_text (data, len);
        else if (aigw_tokens_estimate ((aigw_tokens_format_t) kind, data, len, default_max, &prompt,
                                       &completion)
                 != 0) {
            fprintf (stderr, "aigw: %s is not a JSON object\n", file ? file : "standard input");
            free (data);
            rc = 1;
            continue;
        }
        free (data);
        if (json) {
            json_t *line
                = json_pack ("{s:s?,s:I,s:I}", "file", file, "prompt_tokens", (json_int_t) prompt,
                             "completion_tokens", (json_int_t) completion);
            char *text = json_dumps (line, JSON_COMPACT);
            printf ("%s\n", text ? text : "{}");
            free (text);
            json_decref (line);
        }
        else if (inputs > 1)
            printf ("%s\t%lld\n", file, (long long) prompt);
        else
            printf ("%lld\n", (long long) prompt);
    }
    return rc;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "%s", s_usage);
        return 2;
    }
    const char *command = argv[1];
    if (streq (command, "version") || streq (command, "--version")) {
        printf ("aigw %s\n", AIGW_VERSION);
        return 0;
    }
    if (streq (command, "help") || streq (command, "--help") || streq (command, "-h"))
        return s_help (argc > 2 ? argv[2] : NULL);
    if (streq (command, "tokens"))
        return s_cmd_tokens (argc - 1, argv + 1);
    if (streq (command, "embeddings"))
        return aigw_embeddings_main (argc - 1, argv + 1);
    //  Every server (the mock's thousands of threads too) uses the global
    //  futex hash, and may hold as many descriptors as the hard limit allows:
    //  one per client connection at the edge, one per upstream connection in
    //  the provider.
    prctl (PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, 0, 0, 0);
    struct rlimit files;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    if (streq (command, "mock-provider"))
        return aigw_mock_provider_main (argc - 1, argv + 1);
    if (aigw_operator_handles (command))
        return aigw_operator_main (argc - 1, argv + 1);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    zsys_init ();
    zsys_set_logstream (NULL);
    s_options_t options = {0};
    int rc;
    if (streq (command, "actor")) {
        if (argc < 3 || argv[2][0] == '-') {
            fprintf (stderr, "aigw: actor needs a NAME\n");
            return 2;
        }
        rc = s_parse (argc - 2, argv + 2, &options);
        rc = rc ? 2 : s_cmd_actor (argv[2], &options);
    }
    else if (streq (command, "run") || streq (command, "broker") || streq (command, "edge")) {
        rc = s_parse (argc - 1, argv + 1, &options);
        if (rc == 0 && options.metrics_port) {
            fprintf (stderr, "aigw: --metrics-port is for aigw actor (the edge serves /metrics)\n");
            rc = -1;
        }
        if (rc)
            rc = 2;
        else if (streq (command, "run"))
            rc = s_cmd_run (&options);
        else if (streq (command, "broker"))
            rc = s_cmd_broker (&options);
        else
            rc = s_cmd_edge (&options);
    }
    else {
        fprintf (stderr, "aigw: unknown command '%s'\n%s", command, s_usage);
        rc = 2;
    }
    zsys_shutdown ();
    curl_global_cleanup ();
    return rc;
}
