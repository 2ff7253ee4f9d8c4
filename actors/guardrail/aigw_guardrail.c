/*  aigw_guardrail: max prompt length and regex deny-list, on input. */
#include "aigw_guardrail.h"
#include "aigw_log.h"
#include "aigw_text.h"

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

//  One compiled deny rule.
typedef struct {
    const char *name;  //  rule name (config-owned)
    pcre2_code *code;  //  compiled, JIT where available
} s_rule_t;

//  Private state.
typedef struct {
    const aigw_config_t *config;            //  settings (shared, read-only)
    s_rule_t rules[AIGW_CONFIG_MAX_RULES];  //  compiled deny-list
    int rule_count;                         //  entries used in rules
    pcre2_match_data *match;                //  reused for every match
} s_guard_t;

static void
s_guard_destroy (void **state_p)
{
    s_guard_t *self = (s_guard_t *) *state_p;
    if (!self)
        return;
    for (int i = 0; i < self->rule_count; i++)
        pcre2_code_free (self->rules[i].code);
    pcre2_match_data_free (self->match);
    free (self);
    *state_p = NULL;
}

static void *
s_guard_new (aigw_host_t *host, const aigw_config_t *config)
{
    s_guard_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->match = pcre2_match_data_create (1, NULL);
    for (int i = 0; i < config->rule_count; i++) {
        int error;
        PCRE2_SIZE offset;
        pcre2_code *code = pcre2_compile ((PCRE2_SPTR) config->rules[i].pattern,
                                          PCRE2_ZERO_TERMINATED, PCRE2_UTF, &error, &offset, NULL);
        if (!code) {
            //  The config loader validated it; this is a programming error.
            aigw_error ("guardrail rule %s does not compile", config->rules[i].name);
            s_guard_destroy ((void **) &self);
            return NULL;
        }
        pcre2_jit_compile (code, PCRE2_JIT_COMPLETE);
        self->rules[self->rule_count].name = config->rules[i].name;
        self->rules[self->rule_count++].code = code;
    }
    return self;
}

//  Check one piece of prompt text; answers ENV and returns -1 when blocked.
static int
s_guard_text (s_guard_t *self, aigw_envelope_t *env, const char *text, size_t len, size_t *total)
{
    *total += aigw_text_utf8_length (text, len);
    if ((int64_t) *total > self->config->max_prompt_chars) {
        char message[200];
        snprintf (message, sizeof message,
                  "Request blocked by guardrail \"max_prompt_length\": rule "
                  "\"max_prompt_chars\" (prompt over %lld characters).",
                  (long long) self->config->max_prompt_chars);
        aigw_envelope_set_error (env, 400, "guardrail_error", "max_prompt_length", NULL, message);
        aigw_envelope_set (&env->verdict, "block:max_prompt_length:max_prompt_chars");
        return -1;
    }
    for (int i = 0; i < self->rule_count; i++) {
        int rc = pcre2_match (self->rules[i].code, (PCRE2_SPTR) text, len, 0, 0, self->match, NULL);
        if (rc >= 0) {
            char message[300];
            snprintf (message, sizeof message,
                      "Request blocked by guardrail \"deny_list\": rule \"%.200s\" "
                      "matched.",
                      self->rules[i].name);
            aigw_envelope_set_error (env, 400, "guardrail_error", "deny_list", NULL, message);
            snprintf (message, sizeof message, "block:deny_list:%.200s", self->rules[i].name);
            aigw_envelope_set (&env->verdict, message);
            return -1;
        }
    }
    return 0;
}

//  Check a message content: a string or an array of content parts.
static int
s_guard_content (s_guard_t *self, aigw_envelope_t *env, json_t *content, size_t *total)
{
    if (json_is_string (content))
        return s_guard_text (self, env, json_string_value (content), json_string_length (content),
                             total);
    if (json_is_array (content)) {
        size_t i;
        json_t *part;
        json_array_foreach (content, i, part) {
            //  Embedding inputs are plain strings; chat parts are objects.
            json_t *text = json_is_string (part) ? part : json_object_get (part, "text");
            if (json_is_string (text)
                && s_guard_text (self, env, json_string_value (text), json_string_length (text),
                                 total))
                return -1;
        }
    }
    return 0;
}

//  Check a Responses request ROOT: its instructions, then its input, a
//  string or items (a message's content, a function call's output).
static void
s_guard_responses (s_guard_t *self, aigw_envelope_t *env, json_t *root, size_t *total)
{
    if (s_guard_content (self, env, json_object_get (root, "instructions"), total))
        return;
    json_t *input = json_object_get (root, "input");
    if (!json_is_array (input)) {
        s_guard_content (self, env, input, total);
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach (input, i, item) {
        if (s_guard_content (self, env, json_object_get (item, "content"), total)
            || s_guard_content (self, env, json_object_get (item, "output"), total))
            return;
    }
}

static void
s_guard_handle (void *state, aigw_envelope_t *env)
{
    s_guard_t *self = (s_guard_t *) state;
    if (env->kind != AIGW_KIND_CHAT && env->kind != AIGW_KIND_EMBEDDINGS
        && env->kind != AIGW_KIND_MESSAGES && env->kind != AIGW_KIND_RESPONSES)
        return;
    //  Blocks overwrite it below.
    aigw_envelope_set (&env->verdict, "pass");
    //  The prompt cannot have more characters than the body has bytes: with
    //  no deny rule there is nothing to look for.
    if (self->rule_count == 0 && (int64_t) env->body_len <= self->config->max_prompt_chars)
        return;
    json_t *root = json_loadb (env->body ? env->body : "", env->body_len, 0, NULL);
    if (!root) {
        aigw_envelope_set_error (env, 400, "invalid_request_error", "invalid_json", NULL,
                                 "The request body is not valid JSON.");
        return;
    }
    size_t total = 0;
    //  Anthropic's system prompt sits beside the messages.
    if (env->kind == AIGW_KIND_MESSAGES
        && s_guard_content (self, env, json_object_get (root, "system"), &total)) {
        json_decref (root);
        return;
    }
    if (env->kind == AIGW_KIND_RESPONSES)
        s_guard_responses (self, env, root, &total);
    else if (env->kind == AIGW_KIND_CHAT || env->kind == AIGW_KIND_MESSAGES) {
        json_t *messages = json_object_get (root, "messages");
        size_t i;
        json_t *message;
        json_array_foreach (messages, i, message) {
            if (s_guard_content (self, env, json_object_get (message, "content"), &total))
                break;
        }
    }
    else
        s_guard_content (self, env, json_object_get (root, "input"), &total);
    json_decref (root);
}

const aigw_stage_def_t aigw_guardrail_stage = {
    .name = "guardrail",
    .replay_safe = true,
    .state_new = s_guard_new,
    .state_destroy = s_guard_destroy,
    .handle = s_guard_handle,
    .tick = NULL,
};

//  Run the stage on BODY and return the status it set.
static int
s_test_status (void *state, aigw_kind_t kind, const char *body, aigw_envelope_t **env_p)
{
    aigw_envelope_destroy (env_p);
    *env_p = aigw_envelope_new ();
    (*env_p)->kind = kind;
    aigw_envelope_set_body (*env_p, body, strlen (body));
    s_guard_handle (state, *env_p);
    return (*env_p)->status;
}

void
aigw_guardrail_test (bool verbose)
{
    char path[] = "/tmp/aigw-guardrail-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    const char *yaml = "guardrail:\n"
                       "  max_prompt_chars: 20\n"
                       "  deny:\n"
                       "    - {name: no-passwords, pattern: \"(?i)password\\\\s*[:=]\"}\n";
    ssize_t written = write (fd, yaml, strlen (yaml));
    assert (written == (ssize_t) strlen (yaml));
    close (fd);
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (path, err, sizeof err);
    unlink (path);
    assert (config);
    void *state = s_guard_new (NULL, config);
    assert (state);
    aigw_envelope_t *env = NULL;

    assert (s_test_status (state, AIGW_KIND_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &env)
            == 0);
    assert (streq (env->verdict, "pass"));
    assert (s_test_status (state, AIGW_KIND_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"my "
                           "PASSWORD: x\"}]}",
                           &env)
            == 400);
    assert (streq (env->err_type, "guardrail_error"));
    assert (streq (env->err_code, "deny_list"));
    assert (strstr (env->err_message, "no-passwords"));
    assert (streq (env->verdict, "block:deny_list:no-passwords"));
    //  Content parts are checked too.
    assert (s_test_status (state, AIGW_KIND_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                           "\"text\",\"text\":\"password=1\"}]}]}",
                           &env)
            == 400);
    //  Length counts characters across messages, not bytes.
    assert (s_test_status (state, AIGW_KIND_CHAT,
                           "{\"messages\":[{\"content\":\"\\u00e9\\u00e9\\u00e9\\u00e9"
                           "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"},"
                           "{\"content\":\"0123456789\"}]}",
                           &env)
            == 0);
    assert (s_test_status (state, AIGW_KIND_CHAT,
                           "{\"messages\":[{\"content\":\"0123456789\"},"
                           "{\"content\":\"0123456789x\"}]}",
                           &env)
            == 400);
    assert (streq (env->err_code, "max_prompt_length"));
    assert (
        s_test_status (state, AIGW_KIND_EMBEDDINGS, "{\"input\":[\"fine\",\"password: no\"]}", &env)
        == 400);
    assert (s_test_status (state, AIGW_KIND_CHAT, "{not json", &env) == 400);
    //  Responses: instructions, a string input and items' parts are checked.
    assert (s_test_status (state, AIGW_KIND_RESPONSES, "{\"instructions\":\"password: x\"}", &env)
            == 400);
    assert (s_test_status (state, AIGW_KIND_RESPONSES,
                           "{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
                           "\"input_text\",\"text\":\"password: x\"}]}]}",
                           &env)
            == 400);
    assert (s_test_status (state, AIGW_KIND_RESPONSES, "{\"input\":\"hi\"}", &env) == 0);
    //  Anthropic Messages: the system prompt and content blocks are checked.
    assert (s_test_status (state, AIGW_KIND_MESSAGES,
                           "{\"system\":\"password: x\",\"messages\":[]}", &env)
            == 400);
    assert (s_test_status (state, AIGW_KIND_MESSAGES,
                           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                           "\"text\",\"text\":\"my password= 1\"}]}]}",
                           &env)
            == 400);
    assert (s_test_status (state, AIGW_KIND_MESSAGES,
                           "{\"system\":[{\"type\":\"text\",\"text\":\"be nice\"}],"
                           "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                           &env)
            == 0);
    assert (s_test_status (state, AIGW_KIND_MODELS, "", &env) == 0);

    aigw_envelope_destroy (&env);
    s_guard_destroy (&state);
    aigw_config_destroy (&config);

    //  No deny rule: bodies shorter than the limit pass unparsed, longer
    //  ones are still counted by characters.
    config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    config->max_prompt_chars = 40;
    state = s_guard_new (NULL, config);
    assert (s_test_status (state, AIGW_KIND_CHAT, "{\"messages\":[{\"content\":\"password: x\"}]}",
                           &env)
            == 0);
    assert (s_test_status (state, AIGW_KIND_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"short\"}]}", &env)
            == 0);
    assert (s_test_status (state, AIGW_KIND_CHAT,
                           "{\"messages\":[{\"content\":\"0123456789012345678901234567890"
                           "123456789x\"}]}",
                           &env)
            == 400);
    aigw_envelope_destroy (&env);
    s_guard_destroy (&state);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("guardrail: ok\n");
}
