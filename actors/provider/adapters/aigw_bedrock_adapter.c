/*  aigw_bedrock_adapter: AWS Bedrock behind the gateway's OpenAI format.
    aigw_bedrock does the translation, the SigV4 signature and the event
    stream; this file builds the signed upstream request and wraps the
    stream translator in the adapter interface. */
#include "aigw_bedrock_adapter.h"
#include "aigw_adapter.h"
#include "aigw_bedrock.h"
#include "aigw_eventstream.h"
#include "aigw_hex.h"

#include <assert.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

//  Random bytes in a generated completion id (24 hex digits).
#define S_ID_RANDOM_BYTES 12
//  Size of a generated id: "chatcmpl-", the hex digits, NUL.
#define S_ID_SIZE (9 + 2 * S_ID_RANDOM_BYTES + 1)
//  Longest Host value we sign, NUL included.
#define S_HOST_MAX 256
//  Longest region name accepted (it goes into the default host name).
#define S_REGION_MAX 64
//  Default ports curl leaves out of the Host header.
#define S_HTTPS_PORT 443
#define S_HTTP_PORT  80
//  What a ConverseStream answer is (AWS event-stream framing).
#define S_ACCEPT_STREAM "application/vnd.amazon.eventstream"
//  Largest TCP port.
#define S_PORT_MAX 65535

//  The error for a deployment without a key pair; never names a credential.
static const char s_no_credentials[] = "Bedrock credentials are not configured.";

//  One streamed answer: the Bedrock ConverseStream translator.
struct _aigw_adapter_stream_t {
    aigw_bedrock_stream_t *translator;  //  event-stream bytes -> OpenAI SSE text
};

//  Where a base URL points, as the signature must see it.
typedef struct {
    char host[S_HOST_MAX];  //  the Host value curl will send
    const char *prefix;     //  path below the authority, inside the base URL
    size_t prefix_len;      //  bytes of prefix, trailing '/' left out
} s_base_t;

//  --------------------------------------------------------------------------
//  Request

//  True when REGION is a plausible AWS region: lowercase letters, digits, '-'.
static bool
s_region_valid (const char *region)
{
    size_t len = strlen (region);
    return len > 0 && len <= S_REGION_MAX
           && strspn (region, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

//  Split BASE ("http[s]://host[:port][/prefix]") into OUT. The Host value
//  is what curl sends: the host as written, plus ":port" unless the port
//  is the scheme's default. Returns 0, or -1 for anything else (user
//  info, a query or fragment, a bad port, an empty or overlong host).
static int
s_base_parse (const char *base, s_base_t *out)
{
    const char *scheme_end = strstr (base, "://");
    if (!scheme_end)
        return -1;
    size_t scheme_len = (size_t) (scheme_end - base);
    bool https = scheme_len == 5 && strncasecmp (base, "https", 5) == 0;
    bool http = scheme_len == 4 && strncasecmp (base, "http", 4) == 0;
    const char *authority = scheme_end + 3;
    if ((!https && !http) || strpbrk (authority, "?#@ \t\r\n"))
        return -1;
    size_t authority_len = strcspn (authority, "/");
    //  curl would rewrite a non-ASCII host (IDN), and the signature with it.
    for (size_t i = 0; i < authority_len; i++)
        if ((unsigned char) authority[i] <= ' ' || (unsigned char) authority[i] >= 0x7f)
            return -1;
    //  A port follows the last ':' after any IPv6 literal's ']'.
    const char *host_end = authority + authority_len;
    const char *bracket = memrchr (authority, ']', authority_len);
    const char *from = bracket ? bracket : authority;
    const char *colon = memrchr (from, ':', (size_t) (host_end - from));
    long port = https ? S_HTTPS_PORT : S_HTTP_PORT;
    if (colon) {
        size_t digits = (size_t) (host_end - colon - 1);
        if (digits == 0 || digits > 5 || strspn (colon + 1, "0123456789") < digits)
            return -1;
        port = strtol (colon + 1, NULL, 10);
        if (port < 1 || port > S_PORT_MAX)
            return -1;
        host_end = colon;
    }
    size_t host_len = (size_t) (host_end - authority);
    if (host_len == 0)
        return -1;
    int written
        = port == (https ? S_HTTPS_PORT : S_HTTP_PORT)
              ? snprintf (out->host, sizeof out->host, "%.*s", (int) host_len, authority)
              : snprintf (out->host, sizeof out->host, "%.*s:%ld", (int) host_len, authority, port);
    if (written < 0 || (size_t) written >= sizeof out->host)
        return -1;
    out->prefix = authority + authority_len;
    out->prefix_len = strlen (out->prefix);
    while (out->prefix_len && out->prefix[out->prefix_len - 1] == '/')
        out->prefix_len--;
    return 0;
}

//  Build the signed Converse (ConverseStream when STREAM) request for a
//  chat BODY, or the CountTokens request for AIGW_KIND_COUNT_TOKENS (BODY
//  in the chat form as well); 1 for any other KIND. Errors name no
//  credential.
static int
s_request (const aigw_upstream_t *up, aigw_kind_t kind, bool stream, const char *body, size_t len,
           aigw_upstream_request_t *out, char *err, size_t err_size)
{
    bool count = kind == AIGW_KIND_COUNT_TOKENS;
    if (kind != AIGW_KIND_CHAT && !count)
        return 1;
    stream = stream && !count;
    if (!up->aws_access_key_id || !*up->aws_access_key_id || !up->aws_secret_access_key
        || !*up->aws_secret_access_key) {
        snprintf (err, err_size, "%s", s_no_credentials);
        return -1;
    }
    const char *region = up->region ? up->region : AIGW_BEDROCK_DEFAULT_REGION;
    if (!s_region_valid (region)) {
        snprintf (err, err_size,
                  "The Bedrock region must be lowercase letters, digits "
                  "and '-'.");
        return -1;
    }
    char path[AIGW_BEDROCK_PATH_MAX];
    if (count ? aigw_bedrock_count_path (up->model, path, sizeof path)
              : aigw_bedrock_converse_path (up->model, stream, path, sizeof path)) {
        snprintf (err, err_size, "The Bedrock deployment needs a model id.");
        return -1;
    }
    char base[AIGW_ADAPTER_URL_MAX];
    if (up->base_url)
        snprintf (base, sizeof base, "%s", up->base_url);
    else
        snprintf (base, sizeof base, "https://bedrock-runtime.%s.amazonaws.com", region);
    s_base_t where;
    if (s_base_parse (base, &where)) {
        snprintf (err, err_size, "The Bedrock base URL must be http(s)://host[:port][/path].");
        return -1;
    }
    //  The URL and the signed path both carry the base URL's path prefix.
    char signed_path[AIGW_ADAPTER_URL_MAX];
    size_t authority_len = (size_t) (where.prefix - base);
    if ((size_t) snprintf (out->url, sizeof out->url, "%.*s%.*s%s", (int) authority_len, base,
                           (int) where.prefix_len, where.prefix, path)
            >= sizeof out->url
        || (size_t) snprintf (signed_path, sizeof signed_path, "%.*s%s", (int) where.prefix_len,
                              where.prefix, path)
               >= sizeof signed_path) {
        snprintf (err, err_size, "The upstream URL is too long.");
        return -1;
    }
    out->body = count ? aigw_bedrock_count_from_openai (body, len, &out->body_len, err, err_size)
                      : aigw_bedrock_request_from_openai (body, len, &out->body_len, err, err_size);
    if (!out->body)
        return -1;

    char amz_date[AIGW_BEDROCK_AMZ_DATE_SIZE];
    aigw_bedrock_creds_t creds
        = {up->aws_access_key_id, up->aws_secret_access_key, up->aws_session_token};
    aigw_bedrock_request_t request = {.region = region,
                                      .service = AIGW_BEDROCK_SERVICE,
                                      .method = "POST",
                                      .host = where.host,
                                      .path = signed_path,
                                      .payload = out->body,
                                      .payload_len = out->body_len,
                                      .amz_date = amz_date,
                                      .sign_content_sha256 = true};
    aigw_bedrock_signature_t signature;
    if (aigw_bedrock_amz_date ((time_t) up->now_s, amz_date)
        || aigw_bedrock_sign (&creds, &request, &signature)) {
        aigw_upstream_request_reset (out);
        snprintf (err, err_size, "The Bedrock request could not be signed.");
        return -1;
    }
    bool token = up->aws_session_token && *up->aws_session_token;
    int rc = aigw_upstream_request_header (out, "Content-Type", "application/json");
    if (rc == 0)
        rc = aigw_upstream_request_header (out, "Accept",
                                           stream ? S_ACCEPT_STREAM : "application/json");
    if (rc == 0)
        rc = aigw_upstream_request_header (out, "X-Amz-Date", signature.amz_date);
    if (rc == 0)
        rc = aigw_upstream_request_header (out, "X-Amz-Content-Sha256", signature.content_sha256);
    if (rc == 0 && token)
        rc = aigw_upstream_request_header (out, "X-Amz-Security-Token", up->aws_session_token);
    if (rc == 0)
        rc = aigw_upstream_request_header (out, "Authorization", signature.authorization);
    explicit_bzero (&signature, sizeof signature);
    if (rc) {
        aigw_upstream_request_reset (out);
        snprintf (err, err_size, "Out of memory building the upstream request.");
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Answer, error body

//  A fresh completion id, "chatcmpl-" and 24 random hex digits, into ID.
//  Returns 0, or -1 when the random source fails.
static int
s_new_id (char id[S_ID_SIZE])
{
    unsigned char random[S_ID_RANDOM_BYTES];
    if (RAND_bytes (random, sizeof random) != 1)
        return -1;
    memcpy (id, "chatcmpl-", 9);
    aigw_hex_encode (random, sizeof random, id + 9);
    return 0;
}

//  A 2xx Converse answer as an OpenAI chat.completion with a new id; the
//  caller owns it.
static char *
s_response (aigw_kind_t kind, const char *body, size_t len, const char *model, size_t *out_len,
            char *err, size_t err_size)
{
    char id[S_ID_SIZE];
    if (kind != AIGW_KIND_CHAT) {
        snprintf (err, err_size, "Bedrock answers chat requests only.");
        return NULL;
    }
    if (s_new_id (id)) {
        snprintf (err, err_size, "No random bytes for a completion id.");
        return NULL;
    }
    return aigw_bedrock_response_to_openai (body, len, model, id, (long) time (NULL), out_len, err,
                                            err_size);
}

//  The message of a Bedrock error body ({"message": ...}, or "Message"), a
//  new string the caller owns, or NULL.
static char *
s_error_message (const char *body, size_t len)
{
    json_t *root = json_loadb (body ? body : "", body ? len : 0, 0, NULL);
    json_t *message = json_object_get (root, "message");
    if (!json_is_string (message))
        message = json_object_get (root, "Message");
    char *result = json_is_string (message) ? strdup (json_string_value (message)) : NULL;
    json_decref (root);
    return result;
}

//  --------------------------------------------------------------------------
//  Stream

//  A translator naming MODEL and ID (a new one when NULL) in its chunks,
//  with a usage chunk before [DONE]; the caller owns it. NULL when out of
//  memory.
static aigw_adapter_stream_t *
s_stream_new (const char *model, const char *id)
{
    char fresh[S_ID_SIZE];
    if (!id && s_new_id (fresh))
        return NULL;
    aigw_adapter_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->translator = aigw_bedrock_stream_new (model, id ? id : fresh, (long) time (NULL), true);
    if (!self->translator) {
        free (self);
        return NULL;
    }
    return self;
}

//  Destroy; safe on NULL, nulls the caller's pointer.
static void
s_stream_destroy (aigw_adapter_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aigw_bedrock_stream_destroy (&(*self_p)->translator);
    free (*self_p);
    *self_p = NULL;
}

//  Feed raw event-stream bytes; append the SSE text they give to *OUT.
//  Returns 0, or -1 with ERR on a framing error, a malformed event or a
//  Bedrock exception (its error event and [DONE] are then in *OUT).
static int
s_stream_feed (aigw_adapter_stream_t *self, const char *data, size_t len, char **out,
               size_t *out_len, char *err, size_t err_size)
{
    int rc = aigw_bedrock_stream_feed (self->translator, data, len, err, err_size);
    size_t taken_len = 0;
    char *taken = aigw_bedrock_stream_take (self->translator, &taken_len);
    if (taken && aigw_adapter_append (out, out_len, taken, taken_len)) {
        snprintf (err, err_size, "Out of memory translating the upstream stream.");
        rc = -1;
    }
    free (taken);
    return rc;
}

//  True once [DONE] has been emitted (after metadata, or after an error).
static bool
s_stream_done (aigw_adapter_stream_t *self)
{
    return aigw_bedrock_stream_done (self->translator);
}

const aigw_adapter_t aigw_adapter_bedrock = {
    .name = "bedrock",
    .request = s_request,
    .response = s_response,
    .error_message = s_error_message,
    .stream_new = s_stream_new,
    .stream_feed = s_stream_feed,
    .stream_done = s_stream_done,
    .stream_destroy = s_stream_destroy,
};

//  --------------------------------------------------------------------------
//  Selftest

//  The documentation's example key pair; neither may show in an error.
#define S_TEST_AKID   "AKIDEXAMPLE"
#define S_TEST_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define S_TEST_TOKEN  "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
//  20150830T123600Z, the date of AWS's SigV4 examples.
#define S_TEST_NOW 1440938160
//  A Bedrock model id with a ':' the path must encode.
#define S_TEST_MODEL "anthropic.claude-3-haiku-20240307-v1:0"

//  The header of REQ named NAME ("Name: value"), or NULL.
static const char *
s_test_header (const aigw_upstream_request_t *req, const char *name)
{
    size_t len = strlen (name);
    for (size_t i = 0; i < req->header_count; i++)
        if (strncmp (req->headers[i], name, len) == 0 && req->headers[i][len] == ':')
            return req->headers[i] + len + 2;
    return NULL;
}

//  Assert REQ carries the signature aigw_bedrock_sign gives for HOST, PATH,
//  REGION, TOKEN and REQ's body at S_TEST_NOW.
static void
s_test_signed (const aigw_upstream_request_t *req, const char *host, const char *path,
               const char *region, const char *token)
{
    aigw_bedrock_creds_t creds = {S_TEST_AKID, S_TEST_SECRET, token};
    aigw_bedrock_request_t request = {.region = region,
                                      .service = "bedrock",
                                      .method = "POST",
                                      .host = host,
                                      .path = path,
                                      .payload = req->body,
                                      .payload_len = req->body_len,
                                      .amz_date = "20150830T123600Z",
                                      .sign_content_sha256 = true};
    aigw_bedrock_signature_t sig;
    assert (aigw_bedrock_sign (&creds, &request, &sig) == 0);
    assert (strcmp (s_test_header (req, "Authorization"), sig.authorization) == 0);
    assert (strcmp (s_test_header (req, "X-Amz-Date"), "20150830T123600Z") == 0);
    assert (strcmp (s_test_header (req, "X-Amz-Content-Sha256"), sig.content_sha256) == 0);
    if (token)
        assert (strcmp (s_test_header (req, "X-Amz-Security-Token"), token) == 0);
    else
        assert (!s_test_header (req, "X-Amz-Security-Token"));
}

//  Append one encoded event frame of EVENT_TYPE and PAYLOAD to *BUF.
static void
s_test_frame (char **buf, size_t *len, const char *event_type, const char *payload)
{
    unsigned char *frame;
    size_t frame_len;
    assert (aigw_eventstream_encode_json ("event", event_type, payload, &frame, &frame_len) == 0);
    assert (aigw_adapter_append (buf, len, (const char *) frame, frame_len) == 0);
    free (frame);
}

//  Remove the digits after each "created": in TEXT, in place, so outputs
//  made in different seconds compare equal.
static void
s_test_normalize (char *text)
{
    static const char key[] = "\"created\":";
    char *at = text;
    while (at && (at = strstr (at, key))) {
        at += sizeof key - 1;
        char *digits = at;
        while (*digits >= '0' && *digits <= '9')
            digits++;
        memmove (at, digits, strlen (digits) + 1);
    }
}

//  Feed LEN bytes of STREAM through a new adapter stream in STEP-byte
//  slices, asserting each feed returns RC_WANT at the end; returns the
//  normalised output (caller frees) and sets *DONE.
static char *
s_test_feed (const char *stream, size_t len, size_t step, int rc_want, bool *done)
{
    aigw_adapter_stream_t *self = aigw_adapter_bedrock.stream_new ("gpt-4o", "chatcmpl-b");
    assert (self);
    char *out = NULL;
    size_t out_len = 0;
    char err[256] = "";
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0; at += step)
        rc = aigw_adapter_bedrock.stream_feed (self, stream + at, step < len - at ? step : len - at,
                                               &out, &out_len, err, sizeof err);
    assert (rc == rc_want);
    assert (rc == 0 || *err);
    assert (!out || strlen (out) == out_len);
    *done = aigw_adapter_bedrock.stream_done (self);
    aigw_adapter_bedrock.stream_destroy (&self);
    assert (!self);
    aigw_adapter_bedrock.stream_destroy (&self);
    if (out)
        s_test_normalize (out);
    return out;
}

void
aigw_bedrock_adapter_test (bool verbose)
{
    const aigw_adapter_t *adapter = aigw_adapter_find ("bedrock");
    assert (adapter == &aigw_adapter_bedrock);
    assert (strcmp (adapter->name, "bedrock") == 0);
    const char *chat = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"Hello\"}],\"max_tokens\":64}";
    size_t chat_len = strlen (chat);

    //  Default region and host; the signature is the signer's own.
    aigw_upstream_t up = {.model = S_TEST_MODEL,
                          .aws_access_key_id = S_TEST_AKID,
                          .aws_secret_access_key = S_TEST_SECRET,
                          .now_s = S_TEST_NOW};
    aigw_upstream_request_t req = {0};
    char err[256] = "";
    assert (adapter->request (&up, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
            == 0);
    assert (strcmp (req.url, "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                             "anthropic.claude-3-haiku-20240307-v1%3A0/converse")
            == 0);
    assert (strcmp (s_test_header (&req, "Content-Type"), "application/json") == 0);
    assert (strcmp (s_test_header (&req, "Accept"), "application/json") == 0);
    s_test_signed (&req, "bedrock-runtime.us-east-1.amazonaws.com",
                   "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", "us-east-1", NULL);
    assert (strstr (s_test_header (&req, "Authorization"),
                    "Credential=" S_TEST_AKID "/20150830/us-east-1/bedrock/aws4_request"));
    json_t *sent = json_loadb (req.body, req.body_len, 0, NULL);
    assert (json_is_array (json_object_get (sent, "messages")));
    assert (json_integer_value (
                json_object_get (json_object_get (sent, "inferenceConfig"), "maxTokens"))
            == 64);
    json_decref (sent);
    aigw_upstream_request_reset (&req);

    //  CountTokens: its own path, signed the same way, the Converse body
    //  wrapped; never a stream.
    assert (
        adapter->request (&up, AIGW_KIND_COUNT_TOKENS, true, chat, chat_len, &req, err, sizeof err)
        == 0);
    assert (strcmp (req.url, "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                             "anthropic.claude-3-haiku-20240307-v1%3A0/count-tokens")
            == 0);
    assert (strcmp (s_test_header (&req, "Accept"), "application/json") == 0);
    s_test_signed (&req, "bedrock-runtime.us-east-1.amazonaws.com",
                   "/model/anthropic.claude-3-haiku-20240307-v1%3A0/count-tokens", "us-east-1",
                   NULL);
    sent = json_loadb (req.body, req.body_len, 0, NULL);
    json_t *converse = json_object_get (json_object_get (sent, "input"), "converse");
    assert (json_is_array (json_object_get (converse, "messages")));
    assert (!json_object_get (converse, "inferenceConfig"));
    json_decref (sent);
    aigw_upstream_request_reset (&req);

    //  Streaming, another region, a session token.
    up.region = "eu-west-3";
    up.aws_session_token = S_TEST_TOKEN;
    assert (adapter->request (&up, AIGW_KIND_CHAT, true, chat, chat_len, &req, err, sizeof err)
            == 0);
    assert (strcmp (req.url, "https://bedrock-runtime.eu-west-3.amazonaws.com/model/"
                             "anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
            == 0);
    assert (strcmp (s_test_header (&req, "Accept"), "application/vnd.amazon.eventstream") == 0);
    s_test_signed (&req, "bedrock-runtime.eu-west-3.amazonaws.com",
                   "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream", "eu-west-3",
                   S_TEST_TOKEN);
    aigw_upstream_request_reset (&req);

    //  A base URL with a port and a path prefix: both are signed.
    up.base_url = "http://127.0.0.1:4566/proxy/bedrock";
    up.aws_session_token = "";
    assert (adapter->request (&up, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
            == 0);
    assert (strcmp (req.url, "http://127.0.0.1:4566/proxy/bedrock/model/"
                             "anthropic.claude-3-haiku-20240307-v1%3A0/converse")
            == 0);
    s_test_signed (&req, "127.0.0.1:4566",
                   "/proxy/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                   "eu-west-3", NULL);
    aigw_upstream_request_reset (&req);
    //  curl leaves a scheme's default port out of Host; so does the signature.
    up.base_url = "https://vpce.example.com:443/";
    up.aws_session_token = NULL;
    up.region = NULL;
    assert (adapter->request (&up, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
            == 0);
    assert (strcmp (req.url, "https://vpce.example.com:443/model/"
                             "anthropic.claude-3-haiku-20240307-v1%3A0/converse")
            == 0);
    s_test_signed (&req, "vpce.example.com",
                   "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", "us-east-1", NULL);
    aigw_upstream_request_reset (&req);
    up.base_url = "http://[::1]:8080";
    assert (adapter->request (&up, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
            == 0);
    s_test_signed (&req, "[::1]:8080", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                   "us-east-1", NULL);
    aigw_upstream_request_reset (&req);
    const char *bad_bases[] = {"bedrock.example.com",
                               "ftp://h",
                               "http://u:p@h",
                               "http://h?x=1",
                               "http://h:99999",
                               "http://h:",
                               "http://:80/p",
                               "http://h b",
                               "https://b\xc3\xa9"
                               "drock.example"};
    for (size_t i = 0; i < sizeof bad_bases / sizeof bad_bases[0]; i++) {
        up.base_url = bad_bases[i];
        assert (adapter->request (&up, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
                == -1);
        aigw_upstream_request_reset (&req);
    }
    up.base_url = NULL;

    //  Missing credentials, a bad region or model, a bad body: -1, and no
    //  credential in the error.
    aigw_upstream_t partial = up;
    partial.aws_secret_access_key = NULL;
    assert (
        adapter->request (&partial, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
        == -1);
    assert (strcmp (err, "Bedrock credentials are not configured.") == 0);
    partial = up;
    partial.aws_access_key_id = "";
    assert (
        adapter->request (&partial, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
        == -1);
    assert (strcmp (err, "Bedrock credentials are not configured.") == 0);
    partial = up;
    partial.region = "US_EAST/1";
    assert (
        adapter->request (&partial, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
        == -1);
    assert (!strstr (err, S_TEST_SECRET) && !strstr (err, S_TEST_AKID));
    partial = up;
    partial.model = NULL;
    assert (
        adapter->request (&partial, AIGW_KIND_CHAT, false, chat, chat_len, &req, err, sizeof err)
        == -1);
    assert (
        adapter->request (&up, AIGW_KIND_CHAT, false, "{\"messages\":3}", 14, &req, err, sizeof err)
        == -1);
    assert (*err && !strstr (err, S_TEST_SECRET) && !strstr (err, S_TEST_AKID));
    aigw_upstream_request_reset (&req);
    assert (
        adapter->request (&up, AIGW_KIND_EMBEDDINGS, false, chat, chat_len, &req, err, sizeof err)
        == 1);
    assert (adapter->request (&up, AIGW_KIND_MESSAGES, false, chat, chat_len, &req, err, sizeof err)
            == 1);
    aigw_upstream_request_reset (&req);

    //  Answers get a fresh id; error bodies give their message.
    const char *answer = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":"
                         "[{\"text\":\"Hi there\"}]}},\"stopReason\":\"end_turn\",\"usage\":"
                         "{\"inputTokens\":5,\"outputTokens\":2,\"totalTokens\":7}}";
    size_t out_len = 0;
    char *openai = adapter->response (AIGW_KIND_CHAT, answer, strlen (answer), "gpt-4o", &out_len,
                                      err, sizeof err);
    assert (openai && out_len == strlen (openai));
    json_t *root = json_loads (openai, 0, NULL);
    const char *id = json_string_value (json_object_get (root, "id"));
    assert (id && strlen (id) == 9 + 24 && strncmp (id, "chatcmpl-", 9) == 0
            && strspn (id + 9, "0123456789abcdef") == 24);
    assert (strcmp (json_string_value (json_object_get (root, "model")), "gpt-4o") == 0);
    assert (json_integer_value (json_object_get (root, "created")) >= S_TEST_NOW);
    assert (strstr (openai, "\"content\":\"Hi there\""));
    char *again = adapter->response (AIGW_KIND_CHAT, answer, strlen (answer), "gpt-4o", &out_len,
                                     err, sizeof err);
    assert (again && !strstr (again, id));  //  each answer its own id
    json_decref (root);
    free (again);
    free (openai);
    assert (!adapter->response (AIGW_KIND_CHAT, "{", 1, "m", &out_len, err, sizeof err));
    char *message = adapter->error_message ("{\"message\":\"Too many tokens\"}", 29);
    assert (message && strcmp (message, "Too many tokens") == 0);
    free (message);
    message = adapter->error_message ("{\"Message\":\"User is not authorized\"}", 36);
    assert (message && strcmp (message, "User is not authorized") == 0);
    free (message);
    assert (!adapter->error_message ("oops", 4));

    //  A ConverseStream answer: text, then a tool call; whole, byte by byte
    //  and in odd slices, the same SSE text.
    char *events = NULL;
    size_t events_len = 0;
    s_test_frame (&events, &events_len, "messageStart", "{\"role\":\"assistant\"}");
    s_test_frame (&events, &events_len, "contentBlockDelta",
                  "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Checking.\"}}");
    s_test_frame (&events, &events_len, "contentBlockStop", "{\"contentBlockIndex\":0}");
    s_test_frame (&events, &events_len, "contentBlockStart",
                  "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"tu_1\","
                  "\"name\":\"get_weather\"}}}");
    s_test_frame (&events, &events_len, "contentBlockDelta",
                  "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":"
                  "\"{\\\"city\\\":\\\"Paris\\\"}\"}}}");
    s_test_frame (&events, &events_len, "contentBlockStop", "{\"contentBlockIndex\":1}");
    s_test_frame (&events, &events_len, "messageStop", "{\"stopReason\":\"tool_use\"}");
    size_t before_metadata = events_len;
    s_test_frame (&events, &events_len, "metadata",
                  "{\"usage\":{\"inputTokens\":9,\"outputTokens\":4,\"totalTokens\":13},"
                  "\"metrics\":{\"latencyMs\":5}}");
    bool done = false;
    char *whole = s_test_feed (events, events_len, events_len, 0, &done);
    assert (done && whole);
    assert (strstr (whole, "\"id\":\"chatcmpl-b\"") && strstr (whole, "\"model\":\"gpt-4o\""));
    assert (strstr (whole, "\"role\":\"assistant\""));
    assert (strstr (whole, "\"content\":\"Checking.\""));
    assert (strstr (whole, "\"id\":\"tu_1\"") && strstr (whole, "\"name\":\"get_weather\""));
    assert (strstr (whole, "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\""));
    assert (strstr (whole, "\"finish_reason\":\"tool_calls\""));
    assert (strstr (whole, "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,"
                           "\"total_tokens\":13}"));
    assert (strcmp (whole + strlen (whole) - 14, "data: [DONE]\n\n") == 0);
    size_t steps[] = {1, 7, 64};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *sliced = s_test_feed (events, events_len, steps[i], 0, &done);
        assert (done && sliced && strcmp (sliced, whole) == 0);
        free (sliced);
    }
    //  Without metadata the answer is not done; a corrupt frame fails.
    char *cut = s_test_feed (events, before_metadata, 1, 0, &done);
    assert (!done && cut && !strstr (cut, "[DONE]"));
    free (cut);
    events[events_len - 1] ^= 1;  //  the last frame's CRC
    cut = s_test_feed (events, events_len, events_len, -1, &done);
    assert (cut && strstr (cut, "\"error\"") && strstr (cut, "data: [DONE]\n\n"));
    free (cut);
    free (whole);
    free (events);

    //  A Bedrock exception: its error event and [DONE], -1.
    unsigned char *frame;
    size_t frame_len;
    assert (aigw_eventstream_encode_json ("exception", "throttlingException",
                                          "{\"message\":\"Too many requests\"}", &frame, &frame_len)
            == 0);
    char *failed = s_test_feed ((const char *) frame, frame_len, 1, -1, &done);
    assert (failed && strstr (failed, "\"type\":\"throttlingException\"")
            && strstr (failed, "Too many requests") && strstr (failed, "data: [DONE]\n\n"));
    free (failed);
    free (frame);

    //  A stream without an id gets a fresh one.
    aigw_adapter_stream_t *stream = adapter->stream_new ("m", NULL);
    assert (stream);
    adapter->stream_destroy (&stream);
    if (verbose)
        printf ("bedrock_adapter: ok\n");
}
