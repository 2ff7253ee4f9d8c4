/*  aigw_bedrock: SigV4 signing and the OpenAI chat <-> Bedrock Converse
    translation; ConverseStream's binary framing is aigw_eventstream's.
    Written from AWS's published descriptions of each format. */
#include "aigw_bedrock.h"
#include "aigw_eventstream.h"
#include "aigw_hex.h"

#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Most query parameters or signed headers one request may carry.
#define S_SIGN_MAX_PARTS 64
//  Longest region or service name we accept.
#define S_SIGN_NAME_MAX 64
//  Most content blocks one streamed message may open.
#define S_STREAM_MAX_BLOCKS 256

//  --------------------------------------------------------------------
//  Small growable buffer; a failed append marks it and later ones no-op.

typedef struct {
    char *data;   //  bytes, NUL-terminated when non-NULL
    size_t len;   //  bytes used, NUL excluded
    size_t cap;   //  bytes allocated
    bool failed;  //  an allocation failed
} s_buf_t;

//  Append LEN bytes. Returns 0, or -1 once any append has failed.
static int
s_buf_add (s_buf_t *buf, const void *data, size_t len)
{
    if (buf->failed)
        return -1;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < buf->len + len + 1)
            cap *= 2;
        char *data_new = realloc (buf->data, cap);
        if (!data_new) {
            buf->failed = true;
            return -1;
        }
        buf->data = data_new;
        buf->cap = cap;
    }
    if (len)
        memcpy (buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = 0;
    return 0;
}

//  Append a C string.
static int
s_buf_str (s_buf_t *buf, const char *str)
{
    return s_buf_add (buf, str, strlen (str));
}

//  Append one character.
static int
s_buf_chr (s_buf_t *buf, char c)
{
    return s_buf_add (buf, &c, 1);
}

//  Release the buffer's memory.
static void
s_buf_free (s_buf_t *buf)
{
    free (buf->data);
    memset (buf, 0, sizeof *buf);
}

//  Write a formatted message into ERR (when given).
static void
s_err (char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || !err_size)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, err_size, fmt, args);
    va_end (args);
}

//  --------------------------------------------------------------------
//  SigV4

//  Hex SHA-256 of LEN bytes into OUT. Returns 0 or -1.
static int
s_sha256_hex (const void *data, size_t len, char out[AIGW_BEDROCK_SHA256_HEX_SIZE])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    unsigned int digest_len = 0;
    if (!EVP_Digest (data ? data : "", len, digest, &digest_len, EVP_sha256 (), NULL)
        || digest_len != SHA256_DIGEST_LENGTH)
        return -1;
    aigw_hex_encode (digest, sizeof digest, out);
    return 0;
}

//  HMAC-SHA256 of DATA under KEY into OUT (32 bytes). Returns 0 or -1.
static int
s_hmac (const void *key, size_t key_len, const void *data, size_t len,
        unsigned char out[SHA256_DIGEST_LENGTH])
{
    unsigned int out_len = 0;
    if (!HMAC (EVP_sha256 (), key, (int) key_len, data, len, out, &out_len)
        || out_len != SHA256_DIGEST_LENGTH)
        return -1;
    return 0;
}

//  Is C unreserved per RFC 3986 (never percent-encoded by SigV4)?
static bool
s_unreserved (unsigned char c)
{
    return isalnum (c) || c == '-' || c == '_' || c == '.' || c == '~';
}

//  Append LEN bytes URI-encoded the AWS way (uppercase hex); '/' is kept
//  when KEEP_SLASH.
static void
s_uri_encode (s_buf_t *buf, const char *data, size_t len, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) data[i];
        if (s_unreserved (c) || (keep_slash && c == '/'))
            s_buf_chr (buf, (char) c);
        else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
            s_buf_add (buf, esc, 3);
        }
    }
}

//  Append LEN bytes percent-decoded then re-encoded per SigV4, so that a
//  query already encoded by any convention signs canonically.
static void
s_uri_reencode (s_buf_t *buf, const char *data, size_t len)
{
    s_buf_t raw = {0};
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (data[i] == '%' && i + 2 < len && (hi = aigw_hex_digit (data[i + 1])) >= 0
            && (lo = aigw_hex_digit (data[i + 2])) >= 0) {
            s_buf_chr (&raw, (char) (hi * 16 + lo));
            i += 2;
        }
        else
            s_buf_chr (&raw, data[i]);
    }
    if (raw.failed)
        buf->failed = true;
    else
        s_uri_encode (buf, raw.data ? raw.data : "", raw.len, false);
    s_buf_free (&raw);
}

typedef struct {
    char *key;    //  canonical (encoded) name
    char *value;  //  canonical (encoded or trimmed) value
} s_pair_t;

//  qsort order: by key, then by value.
static int
s_pair_cmp (const void *a, const void *b)
{
    const s_pair_t *pa = a, *pb = b;
    int rc = strcmp (pa->key, pb->key);
    return rc ? rc : strcmp (pa->value, pb->value);
}

//  Free COUNT pairs' strings.
static void
s_pairs_free (s_pair_t *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free (pairs[i].key);
        free (pairs[i].value);
    }
}

//  Canonical query string of QUERY into BUF. Returns 0 or -1.
static int
s_canonical_query (s_buf_t *buf, const char *query)
{
    s_pair_t pairs[S_SIGN_MAX_PARTS];
    size_t count = 0;
    int rc = 0;
    const char *cursor = query ? query : "";
    while (*cursor && rc == 0) {
        size_t span = strcspn (cursor, "&");
        if (span > 0) {
            if (count == S_SIGN_MAX_PARTS) {
                rc = -1;
                break;
            }
            const char *eq = memchr (cursor, '=', span);
            size_t key_len = eq ? (size_t) (eq - cursor) : span;
            s_buf_t key = {0}, value = {0};
            s_uri_reencode (&key, cursor, key_len);
            if (eq)
                s_uri_reencode (&value, eq + 1, span - key_len - 1);
            s_buf_add (&key, "", 0);
            s_buf_add (&value, "", 0);
            if (key.failed || value.failed) {
                s_buf_free (&key);
                s_buf_free (&value);
                rc = -1;
                break;
            }
            pairs[count].key = key.data;
            pairs[count].value = value.data;
            count++;
        }
        cursor += span;
        if (*cursor == '&')
            cursor++;
    }
    if (rc == 0) {
        qsort (pairs, count, sizeof pairs[0], s_pair_cmp);
        for (size_t i = 0; i < count; i++) {
            if (i)
                s_buf_chr (buf, '&');
            s_buf_str (buf, pairs[i].key);
            s_buf_chr (buf, '=');
            s_buf_str (buf, pairs[i].value);
        }
    }
    s_pairs_free (pairs, count);
    return rc == 0 && !buf->failed ? 0 : -1;
}

//  Add header NAME (lowercased) with VALUE (trimmed, inner runs of spaces
//  collapsed) to PAIRS. Returns 0 or -1.
static int
s_header_add (s_pair_t *pairs, size_t *count, const char *name, const char *value)
{
    if (*count == S_SIGN_MAX_PARTS || !name || !*name || !value)
        return -1;
    char *key = strdup (name);
    char *val = malloc (strlen (value) + 1);
    if (!key || !val) {
        free (key);
        free (val);
        return -1;
    }
    for (char *c = key; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    size_t out = 0;
    bool space = false;
    for (const char *c = value; *c; c++) {
        if (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') {
            space = out > 0;
            continue;
        }
        if (space)
            val[out++] = ' ';
        space = false;
        val[out++] = *c;
    }
    val[out] = 0;
    pairs[*count].key = key;
    pairs[*count].value = val;
    (*count)++;
    return 0;
}

//  Is AMZ_DATE shaped YYYYMMDDTHHMMSSZ?
static bool
s_amz_date_valid (const char *amz_date)
{
    if (!amz_date || strlen (amz_date) != AIGW_BEDROCK_AMZ_DATE_SIZE - 1)
        return false;
    for (int i = 0; i < AIGW_BEDROCK_AMZ_DATE_SIZE - 1; i++) {
        char c = amz_date[i];
        if (i == 8 ? c != 'T' : i == 15 ? c != 'Z' : !isdigit ((unsigned char) c))
            return false;
    }
    return true;
}

//  Is NAME a plausible region or service (lowercase, digits, '-')?
static bool
s_scope_name_valid (const char *name)
{
    if (!name || !*name || strlen (name) > S_SIGN_NAME_MAX)
        return false;
    for (const char *c = name; *c; c++)
        if (!(islower ((unsigned char) *c) || isdigit ((unsigned char) *c) || *c == '-'))
            return false;
    return true;
}

int
aigw_bedrock_sign (const aigw_bedrock_creds_t *creds, const aigw_bedrock_request_t *request,
                   aigw_bedrock_signature_t *out)
{
    if (!creds || !request || !out || !creds->access_key_id || !*creds->access_key_id
        || !creds->secret_access_key || !*creds->secret_access_key || !request->method
        || !*request->method || !request->host || !*request->host || !request->path
        || request->path[0] != '/' || !s_amz_date_valid (request->amz_date)
        || !s_scope_name_valid (request->region) || !s_scope_name_valid (request->service)
        || (request->header_count && !request->headers)
        || (request->payload_len && !request->payload))
        return -1;
    memset (out, 0, sizeof *out);
    memcpy (out->amz_date, request->amz_date, AIGW_BEDROCK_AMZ_DATE_SIZE);
    if (s_sha256_hex (request->payload, request->payload_len, out->content_sha256))
        return -1;

    //  Headers to sign, canonicalised and sorted
    s_pair_t headers[S_SIGN_MAX_PARTS];
    size_t count = 0;
    int rc = s_header_add (headers, &count, "host", request->host);
    if (rc == 0)
        rc = s_header_add (headers, &count, "x-amz-date", request->amz_date);
    if (rc == 0 && request->sign_content_sha256)
        rc = s_header_add (headers, &count, "x-amz-content-sha256", out->content_sha256);
    if (rc == 0 && creds->session_token && *creds->session_token)
        rc = s_header_add (headers, &count, "x-amz-security-token", creds->session_token);
    for (size_t i = 0; rc == 0 && i < request->header_count; i++)
        rc = s_header_add (headers, &count, request->headers[i].name, request->headers[i].value);
    if (rc == 0) {
        qsort (headers, count, sizeof headers[0], s_pair_cmp);
        for (size_t i = 1; i < count; i++)
            if (strcmp (headers[i - 1].key, headers[i].key) == 0)
                rc = -1;  //  a duplicate header would sign ambiguously
    }

    s_buf_t canonical = {0}, signed_names = {0}, to_sign = {0};
    if (rc == 0) {
        //  Canonical request: method, URI, query, headers, signed names,
        //  payload hash. The URI is the wire path encoded once more, as AWS
        //  does for every service but S3 (which this signer does not serve).
        s_buf_str (&canonical, request->method);
        s_buf_chr (&canonical, '\n');
        s_uri_encode (&canonical, request->path, strlen (request->path), true);
        s_buf_chr (&canonical, '\n');
        rc = s_canonical_query (&canonical, request->query);
        s_buf_chr (&canonical, '\n');
        for (size_t i = 0; i < count; i++) {
            s_buf_str (&canonical, headers[i].key);
            s_buf_chr (&canonical, ':');
            s_buf_str (&canonical, headers[i].value);
            s_buf_chr (&canonical, '\n');
            if (i)
                s_buf_chr (&signed_names, ';');
            s_buf_str (&signed_names, headers[i].key);
        }
        s_buf_chr (&canonical, '\n');
        s_buf_add (&signed_names, "", 0);
        if (!signed_names.failed)
            s_buf_str (&canonical, signed_names.data);
        s_buf_chr (&canonical, '\n');
        s_buf_str (&canonical, out->content_sha256);
    }
    char scope[3 * S_SIGN_NAME_MAX];
    char date[9];
    memcpy (date, request->amz_date, 8);
    date[8] = 0;
    snprintf (scope, sizeof scope, "%s/%s/%s/aws4_request", date, request->region,
              request->service);
    char canonical_hash[AIGW_BEDROCK_SHA256_HEX_SIZE];
    if (rc == 0
        && (canonical.failed || signed_names.failed
            || s_sha256_hex (canonical.data, canonical.len, canonical_hash)))
        rc = -1;
    if (rc == 0) {
        //  String to sign: algorithm, date, scope, hash of the canonical request
        s_buf_str (&to_sign, "AWS4-HMAC-SHA256\n");
        s_buf_str (&to_sign, request->amz_date);
        s_buf_chr (&to_sign, '\n');
        s_buf_str (&to_sign, scope);
        s_buf_chr (&to_sign, '\n');
        s_buf_str (&to_sign, canonical_hash);
        if (to_sign.failed)
            rc = -1;
    }
    if (rc == 0) {
        //  Signing key: HMAC chain from "AWS4" + secret through date,
        //  region, service and "aws4_request"; wiped after use.
        size_t secret_len = strlen (creds->secret_access_key);
        unsigned char *secret = malloc (secret_len + 4);
        unsigned char key[SHA256_DIGEST_LENGTH], signature[SHA256_DIGEST_LENGTH];
        rc = secret ? 0 : -1;
        if (rc == 0) {
            memcpy (secret, "AWS4", 4);
            memcpy (secret + 4, creds->secret_access_key, secret_len);
            rc = s_hmac (secret, secret_len + 4, date, 8, key);
            OPENSSL_cleanse (secret, secret_len + 4);
            free (secret);
        }
        if (rc == 0)
            rc = s_hmac (key, sizeof key, request->region, strlen (request->region), key);
        if (rc == 0)
            rc = s_hmac (key, sizeof key, request->service, strlen (request->service), key);
        if (rc == 0)
            rc = s_hmac (key, sizeof key, "aws4_request", 12, key);
        if (rc == 0)
            rc = s_hmac (key, sizeof key, to_sign.data, to_sign.len, signature);
        OPENSSL_cleanse (key, sizeof key);
        if (rc == 0) {
            aigw_hex_encode (signature, sizeof signature, out->signature);
            int n = snprintf (out->authorization, sizeof out->authorization,
                              "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                              "Signature=%s",
                              creds->access_key_id, scope, signed_names.data, out->signature);
            if (n < 0 || (size_t) n >= sizeof out->authorization)
                rc = -1;
        }
    }
    s_pairs_free (headers, count);
    s_buf_free (&canonical);
    s_buf_free (&signed_names);
    s_buf_free (&to_sign);
    if (rc != 0)
        memset (out, 0, sizeof *out);
    return rc;
}

int
aigw_bedrock_amz_date (time_t when, char buf[AIGW_BEDROCK_AMZ_DATE_SIZE])
{
    struct tm tm;
    if (!gmtime_r (&when, &tm))
        return -1;
    return strftime (buf, AIGW_BEDROCK_AMZ_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm)
                   == AIGW_BEDROCK_AMZ_DATE_SIZE - 1
               ? 0
               : -1;
}

//  "/model/{MODEL_ID}ACTION" into BUF, the id URI-encoded once. 0 or -1.
static int
s_model_path (const char *model_id, const char *action, char *buf, size_t size)
{
    if (!model_id || !*model_id || !buf || !size)
        return -1;
    s_buf_t path = {0};
    s_buf_str (&path, "/model/");
    s_uri_encode (&path, model_id, strlen (model_id), false);
    s_buf_str (&path, action);
    int rc = path.failed || path.len + 1 > size ? -1 : 0;
    if (rc == 0)
        memcpy (buf, path.data, path.len + 1);
    s_buf_free (&path);
    return rc;
}

int
aigw_bedrock_converse_path (const char *model_id, bool stream, char *buf, size_t size)
{
    return s_model_path (model_id, stream ? "/converse-stream" : "/converse", buf, size);
}

int
aigw_bedrock_count_path (const char *model_id, char *buf, size_t size)
{
    return s_model_path (model_id, "/count-tokens", buf, size);
}

//  --------------------------------------------------------------------
//  OpenAI chat request -> Converse request

//  Image format for a data: URL's media type, or NULL when Bedrock has none.
static const char *
s_image_format (const char *url, const char **base64)
{
    static const char *formats[][2] = {{"data:image/png;base64,", "png"},
                                       {"data:image/jpeg;base64,", "jpeg"},
                                       {"data:image/jpg;base64,", "jpeg"},
                                       {"data:image/gif;base64,", "gif"},
                                       {"data:image/webp;base64,", "webp"}};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        size_t n = strlen (formats[i][0]);
        if (strncmp (url, formats[i][0], n) == 0) {
            *base64 = url + n;
            return formats[i][1];
        }
    }
    return NULL;
}

//  Converse's prompt-cache mark: a block of its own after the marked one.
//  Append one to BLOCKS when PART (an OpenAI part, message or tool of the
//  gateway's format) carries a cache_control mark.
static void
s_cache_point (json_t *blocks, json_t *part)
{
    if (json_is_object (json_object_get (part, "cache_control")))
        json_array_append_new (blocks, json_pack ("{s:{s:s}}", "cachePoint", "type", "default"));
}

//  Text of an OpenAI message content (string or array of text parts)
//  appended as {"text"} blocks to BLOCKS, a cachePoint after each marked
//  part. Returns 0, or -1 with ERR.
static int
s_text_blocks (json_t *content, json_t *blocks, bool allow_images, char *err, size_t err_size)
{
    if (json_is_null (content) || !content)
        return 0;
    if (json_is_string (content)) {
        if (json_string_length (content) > 0)
            json_array_append_new (blocks, json_pack ("{s:O}", "text", content));
        return 0;
    }
    if (!json_is_array (content)) {
        s_err (err, err_size, "message content must be a string or an array");
        return -1;
    }
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part) {
        const char *type = json_string_value (json_object_get (part, "type"));
        json_t *text = json_object_get (part, "text");
        if (type && strcmp (type, "text") == 0 && json_is_string (text))
            json_array_append_new (blocks, json_pack ("{s:O}", "text", text));
        else if (type && strcmp (type, "image_url") == 0 && allow_images) {
            json_t *image_url = json_object_get (part, "image_url");
            const char *url = json_is_string (image_url)
                                  ? json_string_value (image_url)
                                  : json_string_value (json_object_get (image_url, "url"));
            const char *base64 = NULL;
            const char *format = url ? s_image_format (url, &base64) : NULL;
            if (!format || !*base64) {
                s_err (err, err_size,
                       "image_url must be a base64 data: URL of png, jpeg, gif or webp");
                return -1;
            }
            json_array_append_new (blocks, json_pack ("{s:{s:s,s:{s:s}}}", "image", "format",
                                                      format, "source", "bytes", base64));
        }
        else {
            s_err (err, err_size, "unsupported content part at index %zu", i);
            return -1;
        }
        s_cache_point (blocks, part);
    }
    return 0;
}

//  Append CONTENT blocks as a ROLE message, merging with the previous
//  message when it has the same role (Converse wants roles to alternate).
static void
s_append_message (json_t *messages, const char *role, json_t *content)
{
    json_t *last = json_array_get (messages, json_array_size (messages) - 1);
    const char *last_role = json_string_value (json_object_get (last, "role"));
    if (last_role && strcmp (last_role, role) == 0)
        json_array_extend (json_object_get (last, "content"), content);
    else
        json_array_append_new (messages, json_pack ("{s:s,s:O}", "role", role, "content", content));
}

//  Assistant tool_calls appended as toolUse blocks, a cachePoint after a
//  marked one. Returns 0 or -1 with ERR.
static int
s_tool_use_blocks (json_t *tool_calls, json_t *blocks, char *err, size_t err_size)
{
    if (!tool_calls || json_is_null (tool_calls))
        return 0;
    if (!json_is_array (tool_calls)) {
        s_err (err, err_size, "tool_calls must be an array");
        return -1;
    }
    size_t i;
    json_t *call;
    json_array_foreach (tool_calls, i, call) {
        json_t *id = json_object_get (call, "id");
        json_t *function = json_object_get (call, "function");
        json_t *name = json_object_get (function, "name");
        json_t *arguments = json_object_get (function, "arguments");
        if (!json_is_string (id) || !json_is_string (name)) {
            s_err (err, err_size, "tool_calls[%zu] needs an id and a function name", i);
            return -1;
        }
        json_t *input;
        if (json_is_string (arguments)) {
            const char *text = json_string_value (arguments);
            input = *text ? json_loads (text, JSON_DECODE_ANY, NULL) : json_object ();
        }
        else
            input = arguments ? json_incref (arguments) : json_object ();
        if (!json_is_object (input)) {
            json_decref (input);
            s_err (err, err_size, "tool_calls[%zu] arguments must be a JSON object", i);
            return -1;
        }
        json_array_append_new (blocks, json_pack ("{s:{s:O,s:O,s:o}}", "toolUse", "toolUseId", id,
                                                  "name", name, "input", input));
        s_cache_point (blocks, call);
    }
    return 0;
}

//  OpenAI messages -> Converse "messages" and "system" in OUT. Returns 0 or -1.
static int
s_translate_messages (json_t *in_messages, json_t *out, char *err, size_t err_size)
{
    if (!json_is_array (in_messages) || json_array_size (in_messages) == 0) {
        s_err (err, err_size, "messages must be a non-empty array");
        return -1;
    }
    json_t *system = json_array ();
    json_t *messages = json_array ();
    json_object_set_new (out, "messages", messages);
    int rc = 0;
    size_t i;
    json_t *message;
    json_array_foreach (in_messages, i, message) {
        const char *role = json_string_value (json_object_get (message, "role"));
        json_t *content = json_object_get (message, "content");
        json_t *blocks = json_array ();
        if (!role) {
            s_err (err, err_size, "messages[%zu] has no role", i);
            rc = -1;
        }
        else if (strcmp (role, "system") == 0 || strcmp (role, "developer") == 0)
            rc = s_text_blocks (content, system, false, err, err_size);
        else if (strcmp (role, "user") == 0) {
            rc = s_text_blocks (content, blocks, true, err, err_size);
            if (rc == 0)
                s_append_message (messages, "user", blocks);
        }
        else if (strcmp (role, "assistant") == 0) {
            rc = s_text_blocks (content, blocks, false, err, err_size);
            if (rc == 0)
                rc = s_tool_use_blocks (json_object_get (message, "tool_calls"), blocks, err,
                                        err_size);
            if (rc == 0)
                s_append_message (messages, "assistant", blocks);
        }
        else if (strcmp (role, "tool") == 0) {
            json_t *id = json_object_get (message, "tool_call_id");
            json_t *result = json_array ();
            rc = json_is_string (id) ? s_text_blocks (content, result, false, err, err_size) : -1;
            if (!json_is_string (id))
                s_err (err, err_size, "messages[%zu] (tool) needs a tool_call_id", i);
            //  A tool result holds no cachePoint: a mark on its text
            //  stands after the whole result.
            bool marked = false;
            for (size_t at = 0; rc == 0 && at < json_array_size (result);)
                if (json_object_get (json_array_get (result, at), "cachePoint")) {
                    json_array_remove (result, at);
                    marked = true;
                }
                else
                    at++;
            if (rc == 0) {
                if (json_array_size (result) == 0)
                    json_array_append_new (result, json_pack ("{s:s}", "text", ""));
                json_array_append_new (blocks, json_pack ("{s:{s:O,s:O}}", "toolResult",
                                                          "toolUseId", id, "content", result));
                if (marked)
                    json_array_append_new (
                        blocks, json_pack ("{s:{s:s}}", "cachePoint", "type", "default"));
                s_append_message (messages, "user", blocks);
            }
            json_decref (result);
        }
        else {
            s_err (err, err_size, "messages[%zu] has an unsupported role", i);
            rc = -1;
        }
        json_decref (blocks);
        if (rc)
            break;
    }
    if (rc == 0 && json_array_size (messages) == 0) {
        s_err (err, err_size, "messages need at least one user or assistant turn");
        rc = -1;
    }
    if (rc == 0 && json_array_size (system) > 0)
        json_object_set (out, "system", system);
    json_decref (system);
    return rc;
}

//  OpenAI tools / tool_choice -> Converse toolConfig in OUT. Returns 0 or -1.
static int
s_translate_tools (json_t *request, json_t *out, char *err, size_t err_size)
{
    json_t *tools = json_object_get (request, "tools");
    if (!tools || json_is_null (tools) || (json_is_array (tools) && !json_array_size (tools)))
        return 0;
    if (!json_is_array (tools)) {
        s_err (err, err_size, "tools must be an array");
        return -1;
    }
    json_t *specs = json_array ();
    size_t i;
    json_t *tool;
    json_array_foreach (tools, i, tool) {
        json_t *function = json_object_get (tool, "function");
        json_t *name = json_object_get (function, "name");
        json_t *description = json_object_get (function, "description");
        json_t *parameters = json_object_get (function, "parameters");
        if (!json_is_string (name)) {
            s_err (err, err_size, "tools[%zu] needs a function name", i);
            json_decref (specs);
            return -1;
        }
        json_t *spec = json_pack ("{s:O}", "name", name);
        if (json_is_string (description))
            json_object_set (spec, "description", description);
        json_t *schema = json_is_object (parameters) ? json_incref (parameters)
                                                     : json_pack ("{s:s}", "type", "object");
        json_object_set_new (spec, "inputSchema", json_pack ("{s:o}", "json", schema));
        json_array_append_new (specs, json_pack ("{s:o}", "toolSpec", spec));
        s_cache_point (specs, tool);
    }
    json_t *config = json_pack ("{s:o}", "tools", specs);
    json_t *choice = json_object_get (request, "tool_choice");
    const char *mode = json_string_value (choice);
    const char *forced
        = json_string_value (json_object_get (json_object_get (choice, "function"), "name"));
    if (mode && strcmp (mode, "auto") == 0)
        json_object_set_new (config, "toolChoice", json_pack ("{s:{}}", "auto"));
    else if (mode && strcmp (mode, "required") == 0)
        json_object_set_new (config, "toolChoice", json_pack ("{s:{}}", "any"));
    else if (forced)
        json_object_set_new (config, "toolChoice", json_pack ("{s:{s:s}}", "tool", "name", forced));
    //  "none" has no Converse equivalent; the tools stay declared (history
    //  may hold toolUse blocks, which need them) and the model decides.
    json_object_set_new (out, "toolConfig", config);
    return 0;
}

char *
aigw_bedrock_request_from_openai (const char *body, size_t len, size_t *out_len, char *err,
                                  size_t err_size)
{
    json_error_t jerr;
    json_t *request = json_loadb (body ? body : "", body ? len : 0, 0, &jerr);
    if (!json_is_object (request)) {
        s_err (err, err_size, "request body is not a JSON object");
        json_decref (request);
        return NULL;
    }
    json_t *out = json_object ();
    int rc = s_translate_messages (json_object_get (request, "messages"), out, err, err_size);
    if (rc == 0) {
        json_t *config = json_object ();
        json_t *max_tokens = json_object_get (request, "max_completion_tokens");
        if (!json_is_integer (max_tokens))
            max_tokens = json_object_get (request, "max_tokens");
        if (json_is_integer (max_tokens))
            json_object_set (config, "maxTokens", max_tokens);
        json_t *temperature = json_object_get (request, "temperature");
        if (json_is_number (temperature))
            json_object_set (config, "temperature", temperature);
        json_t *top_p = json_object_get (request, "top_p");
        if (json_is_number (top_p))
            json_object_set (config, "topP", top_p);
        json_t *stop = json_object_get (request, "stop");
        if (json_is_string (stop))
            json_object_set_new (config, "stopSequences", json_pack ("[O]", stop));
        else if (json_is_array (stop) && json_array_size (stop))
            json_object_set (config, "stopSequences", stop);
        else if (stop && !json_is_null (stop) && !json_is_array (stop)) {
            s_err (err, err_size, "stop must be a string or an array");
            rc = -1;
        }
        if (json_object_size (config))
            json_object_set (out, "inferenceConfig", config);
        json_decref (config);
    }
    if (rc == 0)
        rc = s_translate_tools (request, out, err, err_size);
    char *result = NULL;
    if (rc == 0) {
        result = json_dumps (out, JSON_COMPACT);
        if (!result)
            s_err (err, err_size, "out of memory");
        else if (out_len)
            *out_len = strlen (result);
    }
    json_decref (out);
    json_decref (request);
    return result;
}

char *
aigw_bedrock_count_from_openai (const char *body, size_t len, size_t *out_len, char *err,
                                size_t err_size)
{
    char *text = aigw_bedrock_request_from_openai (body, len, NULL, err, err_size);
    if (!text)
        return NULL;
    json_t *converse = json_loads (text, 0, NULL);
    free (text);
    //  ConverseTokensRequest takes these four of Converse's members; the
    //  others (inferenceConfig) are refused, and count nothing anyway.
    static const char *keep[]
        = {"messages", "system", "toolConfig", "additionalModelRequestFields"};
    json_t *counted = json_object ();
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        json_t *member = json_object_get (converse, keep[i]);
        if (member)
            json_object_set (counted, keep[i], member);
    }
    json_decref (converse);
    json_t *root = json_pack ("{s:{s:o}}", "input", "converse", counted);
    char *result = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    if (!result)
        s_err (err, err_size, "out of memory");
    else if (out_len)
        *out_len = strlen (result);
    return result;
}

//  --------------------------------------------------------------------
//  Converse response -> OpenAI chat.completion

//  OpenAI finish_reason for a Converse stopReason.
static const char *
s_finish_reason (const char *stop_reason)
{
    if (!stop_reason)
        return "stop";
    if (strcmp (stop_reason, "max_tokens") == 0)
        return "length";
    if (strcmp (stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp (stop_reason, "guardrail_intervened") == 0
        || strcmp (stop_reason, "content_filtered") == 0)
        return "content_filter";
    return "stop";  //  end_turn, stop_sequence and anything newer
}

//  OpenAI usage object from a Converse usage object (new reference).
//  inputTokens leaves out cache reads and writes, which OpenAI counts among
//  the prompt tokens; the reads are its prompt_tokens_details.cached_tokens,
//  the writes cache_creation_input_tokens.
static json_t *
s_usage (json_t *usage)
{
    json_int_t read = json_integer_value (json_object_get (usage, "cacheReadInputTokens"));
    json_int_t input = json_integer_value (json_object_get (usage, "inputTokens")) + read
                       + json_integer_value (json_object_get (usage, "cacheWriteInputTokens"));
    json_int_t output = json_integer_value (json_object_get (usage, "outputTokens"));
    json_int_t written = json_integer_value (json_object_get (usage, "cacheWriteInputTokens"));
    json_t *total = json_object_get (usage, "totalTokens");
    json_t *result = json_pack (
        "{s:I,s:I,s:I}", "prompt_tokens", input, "completion_tokens", output, "total_tokens",
        json_is_integer (total) ? json_integer_value (total) : input + output);
    if (result && read > 0)
        json_object_set_new (result, "prompt_tokens_details",
                             json_pack ("{s:I}", "cached_tokens", read));
    //  Writes as the gateway's format carries them (aigw_messages reads it).
    if (result && written > 0)
        json_object_set_new (result, "cache_creation_input_tokens", json_integer (written));
    return result;
}

char *
aigw_bedrock_response_to_openai (const char *body, size_t len, const char *model, const char *id,
                                 long created, size_t *out_len, char *err, size_t err_size)
{
    json_t *response = json_loadb (body ? body : "", body ? len : 0, 0, NULL);
    json_t *content = json_object_get (
        json_object_get (json_object_get (response, "output"), "message"), "content");
    if (!json_is_object (response) || !json_is_array (content)) {
        s_err (err, err_size, "Converse response has no output.message.content");
        json_decref (response);
        return NULL;
    }
    s_buf_t text = {0};
    json_t *tool_calls = json_array ();
    int rc = 0;
    size_t i;
    json_t *block;
    json_array_foreach (content, i, block) {
        json_t *block_text = json_object_get (block, "text");
        json_t *tool_use = json_object_get (block, "toolUse");
        if (json_is_string (block_text))
            s_buf_add (&text, json_string_value (block_text), json_string_length (block_text));
        else if (json_is_object (tool_use)) {
            json_t *tool_id = json_object_get (tool_use, "toolUseId");
            json_t *name = json_object_get (tool_use, "name");
            json_t *input = json_object_get (tool_use, "input");
            char *arguments
                = json_is_object (input) ? json_dumps (input, JSON_COMPACT) : strdup ("{}");
            if (!json_is_string (tool_id) || !json_is_string (name) || !arguments) {
                free (arguments);
                s_err (err, err_size, "Converse toolUse block %zu is malformed", i);
                rc = -1;
                break;
            }
            json_array_append_new (tool_calls, json_pack ("{s:O,s:s,s:{s:O,s:s}}", "id", tool_id,
                                                          "type", "function", "function", "name",
                                                          name, "arguments", arguments));
            free (arguments);
        }
        //  Other blocks (reasoning, citations) have no chat.completion slot.
    }
    char *result = NULL;
    if (rc == 0 && text.failed) {
        s_err (err, err_size, "out of memory");
        rc = -1;
    }
    if (rc == 0) {
        json_t *message = json_pack ("{s:s}", "role", "assistant");
        json_object_set_new (message, "content",
                             text.len || !json_array_size (tool_calls)
                                 ? json_stringn (text.data ? text.data : "", text.len)
                                 : json_null ());
        if (json_array_size (tool_calls))
            json_object_set (message, "tool_calls", tool_calls);
        const char *stop_reason = json_string_value (json_object_get (response, "stopReason"));
        json_t *completion = json_pack (
            "{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:o}", "id", id ? id : "chatcmpl-bedrock", "object",
            "chat.completion", "created", (json_int_t) created, "model", model ? model : "",
            "choices", "index", 0, "message", message, "finish_reason",
            s_finish_reason (stop_reason), "usage", s_usage (json_object_get (response, "usage")));
        result = completion ? json_dumps (completion, JSON_COMPACT) : NULL;
        json_decref (completion);
        if (!result)
            s_err (err, err_size, "out of memory");
        else if (out_len)
            *out_len = strlen (result);
    }
    s_buf_free (&text);
    json_decref (tool_calls);
    json_decref (response);
    return result;
}

//  --------------------------------------------------------------------
//  ConverseStream -> OpenAI chat.completion.chunk SSE

struct _aigw_bedrock_stream_t {
    char *model;                          //  model named in every chunk
    char *id;                             //  completion id named in every chunk
    long created;                         //  creation time named in every chunk
    bool include_usage;                   //  emit a usage chunk before [DONE]
    aigw_eventstream_t *parser;           //  event-stream framing
    s_buf_t out;                          //  SSE text not yet taken
    int block_tool[S_STREAM_MAX_BLOCKS];  //  tool-call index per content block, -1 for none
    int tool_count;                       //  tool calls opened so far
    bool stopped;                         //  messageStop seen
    bool done;                            //  [DONE] queued
};

aigw_bedrock_stream_t *
aigw_bedrock_stream_new (const char *model, const char *id, long created, bool include_usage)
{
    aigw_bedrock_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->model = strdup (model ? model : "");
    self->id = strdup (id ? id : "chatcmpl-bedrock");
    self->parser = aigw_eventstream_new (0);
    self->created = created;
    self->include_usage = include_usage;
    for (int i = 0; i < S_STREAM_MAX_BLOCKS; i++)
        self->block_tool[i] = -1;
    if (!self->model || !self->id || !self->parser)
        aigw_bedrock_stream_destroy (&self);
    return self;
}

void
aigw_bedrock_stream_destroy (aigw_bedrock_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aigw_bedrock_stream_t *self = *self_p;
    aigw_eventstream_destroy (&self->parser);
    s_buf_free (&self->out);
    free (self->model);
    free (self->id);
    free (self);
    *self_p = NULL;
}

//  Queue "data: JSON\n\n" for VALUE (taken). Returns 0 or -1.
static int
s_stream_emit (aigw_bedrock_stream_t *self, json_t *value)
{
    char *text = value ? json_dumps (value, JSON_COMPACT) : NULL;
    json_decref (value);
    if (!text)
        return -1;
    s_buf_str (&self->out, "data: ");
    s_buf_str (&self->out, text);
    s_buf_str (&self->out, "\n\n");
    free (text);
    return self->out.failed ? -1 : 0;
}

//  Queue one chunk carrying DELTA (taken) and FINISH (or null).
static int
s_stream_chunk (aigw_bedrock_stream_t *self, json_t *delta, const char *finish)
{
    return s_stream_emit (self, json_pack ("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:o}]}", "id", self->id,
                                           "object", "chat.completion.chunk", "created",
                                           (json_int_t) self->created, "model", self->model,
                                           "choices", "index", 0, "delta", delta, "finish_reason",
                                           finish ? json_string (finish) : json_null ()));
}

//  Queue the terminating [DONE] once.
static void
s_stream_done (aigw_bedrock_stream_t *self)
{
    if (!self->done)
        s_buf_str (&self->out, "data: [DONE]\n\n");
    self->done = true;
}

//  Queue an OpenAI-style error event and [DONE]; returns -1.
static int
s_stream_fail (aigw_bedrock_stream_t *self, const char *type, const char *message, char *err,
               size_t err_size)
{
    s_err (err, err_size, "%s: %s", type, message);
    if (!self->done) {
        s_stream_emit (self,
                       json_pack ("{s:{s:s,s:s}}", "error", "message", message, "type", type));
        s_stream_done (self);
    }
    return -1;
}

//  Content block index of EVENT, or -1 when absent or out of range.
static int
s_block_index (json_t *event)
{
    json_t *index = json_object_get (event, "contentBlockIndex");
    json_int_t value = json_is_integer (index) ? json_integer_value (index) : -1;
    return value >= 0 && value < S_STREAM_MAX_BLOCKS ? (int) value : -1;
}

int
aigw_bedrock_stream_event (aigw_bedrock_stream_t *self, const char *event_type, const char *payload,
                           size_t len, char *err, size_t err_size)
{
    assert (self);
    if (self->done)
        return s_stream_fail (self, "bedrock_stream_error", "event after end of stream", err,
                              err_size);
    json_t *event = json_loadb (payload ? payload : "", payload ? len : 0, 0, NULL);
    if (!event_type || !json_is_object (event)) {
        json_decref (event);
        return s_stream_fail (self, "bedrock_stream_error", "malformed ConverseStream event", err,
                              err_size);
    }
    int rc = 0;
    if (strcmp (event_type, "messageStart") == 0)
        rc = s_stream_chunk (self, json_pack ("{s:s,s:s}", "role", "assistant", "content", ""),
                             NULL);
    else if (strcmp (event_type, "contentBlockStart") == 0) {
        int block = s_block_index (event);
        json_t *tool_use = json_object_get (json_object_get (event, "start"), "toolUse");
        const char *tool_id = json_string_value (json_object_get (tool_use, "toolUseId"));
        const char *name = json_string_value (json_object_get (tool_use, "name"));
        if (block < 0 || (tool_use && (!tool_id || !name))) {
            json_decref (event);
            return s_stream_fail (self, "bedrock_stream_error", "malformed contentBlockStart", err,
                                  err_size);
        }
        if (tool_use) {
            int tool = self->tool_count++;
            self->block_tool[block] = tool;
            rc = s_stream_chunk (self,
                                 json_pack ("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls",
                                            "index", tool, "id", tool_id, "type", "function",
                                            "function", "name", name, "arguments", ""),
                                 NULL);
        }
    }
    else if (strcmp (event_type, "contentBlockDelta") == 0) {
        int block = s_block_index (event);
        json_t *delta = json_object_get (event, "delta");
        json_t *text = json_object_get (delta, "text");
        json_t *input = json_object_get (json_object_get (delta, "toolUse"), "input");
        if (block < 0 || !json_is_object (delta)
            || (json_is_string (input) && self->block_tool[block] < 0)) {
            json_decref (event);
            return s_stream_fail (self, "bedrock_stream_error", "malformed contentBlockDelta", err,
                                  err_size);
        }
        if (json_is_string (text))
            rc = s_stream_chunk (self, json_pack ("{s:O}", "content", text), NULL);
        else if (json_is_string (input))
            rc = s_stream_chunk (self,
                                 json_pack ("{s:[{s:i,s:{s:O}}]}", "tool_calls", "index",
                                            self->block_tool[block], "function", "arguments",
                                            input),
                                 NULL);
        //  Other deltas (reasoning) have no chat.completion.chunk slot.
    }
    else if (strcmp (event_type, "messageStop") == 0) {
        self->stopped = true;
        rc = s_stream_chunk (
            self, json_object (),
            s_finish_reason (json_string_value (json_object_get (event, "stopReason"))));
    }
    else if (strcmp (event_type, "metadata") == 0) {
        if (self->include_usage)
            rc = s_stream_emit (self, json_pack ("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", self->id,
                                                 "object", "chat.completion.chunk", "created",
                                                 (json_int_t) self->created, "model", self->model,
                                                 "choices", "usage",
                                                 s_usage (json_object_get (event, "usage"))));
        s_stream_done (self);
    }
    //  contentBlockStop and unknown events need no output.
    json_decref (event);
    if (rc || self->out.failed)
        return s_stream_fail (self, "bedrock_stream_error", "out of memory", err, err_size);
    return 0;
}

int
aigw_bedrock_stream_feed (aigw_bedrock_stream_t *self, const void *data, size_t len, char *err,
                          size_t err_size)
{
    assert (self);
    if (aigw_eventstream_feed (self->parser, data, len))
        return s_stream_fail (self, "bedrock_stream_error", aigw_eventstream_error (self->parser),
                              err, err_size);
    aigw_eventstream_message_t msg;
    int got;
    while ((got = aigw_eventstream_next (self->parser, &msg)) == 1) {
        const char *kind = msg.message_type ? msg.message_type : "event";
        if (strcmp (kind, "event") != 0) {
            //  An exception or error: its payload's message, else the header's
            json_t *body = json_loadb ((const char *) msg.payload, msg.payload_len, 0, NULL);
            const char *message = json_string_value (json_object_get (body, "message"));
            if (!message)
                message = json_string_value (json_object_get (body, "Message"));
            const char *type = msg.exception_type ? msg.exception_type
                               : msg.error_code   ? msg.error_code
                                                  : "bedrock_error";
            int rc = s_stream_fail (self, type,
                                    message             ? message
                                    : msg.error_message ? msg.error_message
                                                        : "Bedrock reported an error",
                                    err, err_size);
            json_decref (body);
            return rc;
        }
        if (aigw_bedrock_stream_event (self, msg.event_type, (const char *) msg.payload,
                                       msg.payload_len, err, err_size))
            return -1;
    }
    if (got < 0)
        return s_stream_fail (self, "bedrock_stream_error", aigw_eventstream_error (self->parser),
                              err, err_size);
    return 0;
}

char *
aigw_bedrock_stream_take (aigw_bedrock_stream_t *self, size_t *len)
{
    assert (self);
    if (self->out.failed || self->out.len == 0) {
        if (len)
            *len = 0;
        return NULL;
    }
    char *text = self->out.data;
    if (len)
        *len = self->out.len;
    memset (&self->out, 0, sizeof self->out);
    return text;
}

bool
aigw_bedrock_stream_done (aigw_bedrock_stream_t *self)
{
    assert (self);
    return self->done;
}

int
aigw_bedrock_stream_finish (aigw_bedrock_stream_t *self, char *err, size_t err_size)
{
    assert (self);
    if (self->done)
        return 0;
    if (self->stopped && aigw_eventstream_pending (self->parser) == 0) {
        s_stream_done (self);
        return 0;
    }
    return s_stream_fail (self, "bedrock_stream_error", "stream ended before messageStop", err,
                          err_size);
}

//  --------------------------------------------------------------------
//  Selftest

//  Sign a test-suite request (AKIDEXAMPLE, 20150830T123600Z, us-east-1,
//  service "service") and check the documented signature.
static void
s_test_suite_vector (const char *method, const char *query, const aigw_bedrock_header_t *headers,
                     size_t header_count, const char *expected_signed, const char *expected)
{
    aigw_bedrock_creds_t creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};
    aigw_bedrock_request_t request = {.region = "us-east-1",
                                      .service = "service",
                                      .method = method,
                                      .host = "example.amazonaws.com",
                                      .path = "/",
                                      .query = query,
                                      .amz_date = "20150830T123600Z",
                                      .headers = headers,
                                      .header_count = header_count};
    aigw_bedrock_signature_t sig;
    assert (aigw_bedrock_sign (&creds, &request, &sig) == 0);
    assert (strcmp (sig.signature, expected) == 0);
    char authorization[AIGW_BEDROCK_AUTHORIZATION_MAX];
    snprintf (authorization, sizeof authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
              "SignedHeaders=%s, Signature=%s",
              expected_signed, expected);
    assert (strcmp (sig.authorization, authorization) == 0);
}

//  Append an encoded event frame to BUF.
static void
s_test_event (s_buf_t *buf, const char *event_type, const char *payload)
{
    unsigned char *frame;
    size_t frame_len;
    assert (aigw_eventstream_encode_json ("event", event_type, payload, &frame, &frame_len) == 0);
    s_buf_add (buf, frame, frame_len);
    free (frame);
}

void
aigw_bedrock_test (bool verbose)
{
    //  SigV4: AWS's published test-suite vectors
    s_test_suite_vector ("GET", NULL, NULL, 0, "host;x-amz-date",
                         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    s_test_suite_vector ("POST", "", NULL, 0, "host;x-amz-date",
                         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    s_test_suite_vector ("GET", "Param2=value2&Param1=value1", NULL, 0, "host;x-amz-date",
                         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    aigw_bedrock_header_t my_header[] = {{"My-Header1", "VALUE1"}};
    s_test_suite_vector ("POST", NULL, my_header, 1, "host;my-header1;x-amz-date",
                         "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");

    //  SigV4: the documented IAM ListUsers example
    aigw_bedrock_creds_t creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};
    aigw_bedrock_header_t content_type[]
        = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    aigw_bedrock_request_t iam = {.region = "us-east-1",
                                  .service = "iam",
                                  .method = "GET",
                                  .host = "iam.amazonaws.com",
                                  .path = "/",
                                  .query = "Action=ListUsers&Version=2010-05-08",
                                  .amz_date = "20150830T123600Z",
                                  .headers = content_type,
                                  .header_count = 1};
    aigw_bedrock_signature_t sig;
    assert (aigw_bedrock_sign (&creds, &iam, &sig) == 0);
    assert (
        strcmp (sig.signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
        == 0);
    assert (strstr (sig.authorization, "SignedHeaders=content-type;host;x-amz-date,"));
    assert (strcmp (sig.content_sha256,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            == 0);
    assert (strcmp (sig.amz_date, "20150830T123600Z") == 0);

    //  SigV4: our own consistency cases for a Bedrock call
    char path[AIGW_BEDROCK_PATH_MAX];
    assert (aigw_bedrock_converse_path ("anthropic.claude-3-haiku-20240307-v1:0", false, path,
                                        sizeof path)
            == 0);
    assert (strcmp (path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse") == 0);
    assert (aigw_bedrock_converse_path ("m", true, path, sizeof path) == 0);
    assert (strcmp (path, "/model/m/converse-stream") == 0);
    assert (aigw_bedrock_converse_path ("", true, path, sizeof path) == -1);
    assert (aigw_bedrock_converse_path ("model", true, path, 8) == -1);
    assert (aigw_bedrock_count_path ("a.b-v1:0", path, sizeof path) == 0);
    assert (strcmp (path, "/model/a.b-v1%3A0/count-tokens") == 0);
    assert (aigw_bedrock_count_path ("", path, sizeof path) == -1);
    const char *body = "{\"messages\":[]}";
    aigw_bedrock_creds_t session
        = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "SESSIONTOKEN"};
    aigw_bedrock_request_t bedrock = {.region = "us-west-2",
                                      .service = "bedrock",
                                      .method = "POST",
                                      .host = "bedrock-runtime.us-west-2.amazonaws.com",
                                      .path = path,
                                      .payload = body,
                                      .payload_len = strlen (body),
                                      .amz_date = "20240102T030405Z",
                                      .sign_content_sha256 = true};
    aigw_bedrock_signature_t first, second;
    assert (aigw_bedrock_sign (&session, &bedrock, &first) == 0);
    assert (aigw_bedrock_sign (&session, &bedrock, &second) == 0);
    assert (memcmp (&first, &second, sizeof first) == 0);
    assert (strstr (first.authorization, "Credential=AKIDEXAMPLE/20240102/us-west-2/bedrock/"));
    assert (strstr (first.authorization, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                                         "x-amz-security-token,"));
    assert (!strstr (first.authorization, "EXAMPLEKEY")
            && !strstr (first.authorization, "SESSIONTOKEN"));
    bedrock.payload_len--;  //  any change to what is signed changes the signature
    assert (aigw_bedrock_sign (&session, &bedrock, &second) == 0);
    assert (strcmp (first.signature, second.signature) != 0);
    assert (strcmp (first.content_sha256, second.content_sha256) != 0);
    bedrock.payload_len++;
    assert (aigw_bedrock_sign (&creds, &bedrock, &second) == 0);
    assert (strcmp (first.signature, second.signature) != 0);
    assert (!strstr (second.authorization, "x-amz-security-token"));
    //  Query encodings that mean the same thing sign the same
    aigw_bedrock_request_t q1 = iam, q2 = iam;
    q1.query = "b=x%2Fy&a=1%202";
    q2.query = "a=1%202&b=x/y";
    aigw_bedrock_signature_t s1, s2;
    assert (aigw_bedrock_sign (&creds, &q1, &s1) == 0 && aigw_bedrock_sign (&creds, &q2, &s2) == 0);
    assert (strcmp (s1.signature, s2.signature) == 0);
    //  Header values are trimmed and inner runs of spaces collapsed
    aigw_bedrock_header_t spaced[] = {{"X-Test", "  a   b  "}}, tight[] = {{"x-test", "a b"}};
    q1.headers = spaced;
    q2.headers = tight;
    q2.query = q1.query;
    assert (aigw_bedrock_sign (&creds, &q1, &s1) == 0 && aigw_bedrock_sign (&creds, &q2, &s2) == 0);
    assert (strcmp (s1.signature, s2.signature) == 0);
    //  Malformed input is refused, not asserted on
    aigw_bedrock_request_t bad = bedrock;
    bad.amz_date = "2024-01-02T03:04:05Z";
    assert (aigw_bedrock_sign (&creds, &bad, &sig) == -1);
    bad = bedrock;
    bad.region = "US EAST";
    assert (aigw_bedrock_sign (&creds, &bad, &sig) == -1);
    bad = bedrock;
    bad.path = "model";
    assert (aigw_bedrock_sign (&creds, &bad, &sig) == -1);
    aigw_bedrock_header_t duplicate[] = {{"Host", "other"}};
    bad = bedrock;
    bad.headers = duplicate;
    bad.header_count = 1;
    assert (aigw_bedrock_sign (&creds, &bad, &sig) == -1);
    aigw_bedrock_creds_t no_secret = {"AKIDEXAMPLE", "", NULL};
    assert (aigw_bedrock_sign (&no_secret, &bedrock, &sig) == -1);
    char amz_date[AIGW_BEDROCK_AMZ_DATE_SIZE];
    assert (aigw_bedrock_amz_date (1440938160, amz_date) == 0);
    assert (strcmp (amz_date, "20150830T123600Z") == 0);

    //  Converse request: system, text, image, tool call and result, config, tools
    const char *openai_request
        = "{\"model\":\"claude\",\"max_tokens\":256,\"temperature\":0.5,\"top_p\":0.9,"
          "\"stop\":\"END\",\"messages\":["
          "{\"role\":\"system\",\"content\":\"Be brief.\"},"
          "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0=\"}}]},"
          "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
          "\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":"
          "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"}],"
          "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\","
          "\"description\":\"Get weather\",\"parameters\":{\"type\":\"object\","
          "\"properties\":{\"city\":{\"type\":\"string\"}}}}}],\"tool_choice\":\"auto\"}";
    char err[256];
    size_t out_len = 0;
    char *converse = aigw_bedrock_request_from_openai (openai_request, strlen (openai_request),
                                                       &out_len, err, sizeof err);
    assert (converse && out_len == strlen (converse));
    json_t *got = json_loads (converse, 0, NULL);
    json_t *want = json_loads (
        "{\"system\":[{\"text\":\"Be brief.\"}],\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"text\":\"Weather?\"},{\"image\":{\"format\":\"png\","
        "\"source\":{\"bytes\":\"iVBORw0=\"}}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"call_1\","
        "\"name\":\"weather\",\"input\":{\"city\":\"Paris\"}}}]},"
        "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"call_1\","
        "\"content\":[{\"text\":\"sunny\"}]}}]}],"
        "\"inferenceConfig\":{\"maxTokens\":256,\"temperature\":0.5,\"topP\":0.9,"
        "\"stopSequences\":[\"END\"]},"
        "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"weather\",\"description\":"
        "\"Get weather\",\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":"
        "{\"city\":{\"type\":\"string\"}}}}}}],\"toolChoice\":{\"auto\":{}}}}",
        0, NULL);
    assert (got && want && json_equal (got, want));
    json_decref (got);
    //  CountTokens wraps the same messages, system and tools, without the
    //  inference settings
    char *count = aigw_bedrock_count_from_openai (openai_request, strlen (openai_request), &out_len,
                                                  err, sizeof err);
    assert (count && out_len == strlen (count));
    got = json_loads (count, 0, NULL);
    json_object_del (want, "inferenceConfig");
    assert (json_equal (json_object_get (json_object_get (got, "input"), "converse"), want));
    assert (json_object_size (got) == 1);
    json_decref (got);
    free (count);
    assert (!aigw_bedrock_count_from_openai ("{}", 2, NULL, err, sizeof err));
    json_decref (want);
    free (converse);
    //  A marked assistant part or tool call: a cachePoint after it
    const char *marked
        = "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
          "\"content\":[{\"type\":\"text\",\"text\":\"a\",\"cache_control\":{\"type\":"
          "\"ephemeral\"}}],\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":"
          "{\"name\":\"f\",\"arguments\":\"{}\"},\"cache_control\":{\"type\":\"ephemeral\"}}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"r\"}]}";
    converse = aigw_bedrock_request_from_openai (marked, strlen (marked), NULL, err, sizeof err);
    assert (converse);
    got = json_loads (converse, 0, NULL);
    json_t *said
        = json_object_get (json_array_get (json_object_get (got, "messages"), 1), "content");
    assert (json_array_size (said) == 4);
    assert (json_object_get (json_array_get (said, 0), "text"));
    assert (json_object_get (json_array_get (said, 1), "cachePoint"));
    assert (json_object_get (json_array_get (said, 2), "toolUse"));
    assert (json_object_get (json_array_get (said, 3), "cachePoint"));
    json_decref (got);
    free (converse);
    //  Consecutive same-role turns merge; tool results join the next user turn
    const char *merging = "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":"
                          "\"1\"},{\"role\":\"user\",\"content\":\"next\"}]}";
    converse = aigw_bedrock_request_from_openai (merging, strlen (merging), NULL, err, sizeof err);
    assert (converse);
    got = json_loads (converse, 0, NULL);
    assert (json_array_size (json_object_get (got, "messages")) == 1);
    assert (json_array_size (
                json_object_get (json_array_get (json_object_get (got, "messages"), 0), "content"))
            == 2);
    json_decref (got);
    free (converse);
    //  Malformed requests are answered with an error, never a crash
    const char *bad_requests[]
        = {"not json",
           "[]",
           "{}",
           "{\"messages\":[]}",
           "{\"messages\":[{\"content\":\"x\"}]}",
           "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
           "{\"messages\":[{\"role\":\"user\",\"content\":42}]}",
           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
           "{\"url\":\"https://example.com/x.png\"}}]}]}",
           "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":"
           "{\"name\":\"f\",\"arguments\":\"{oops\"}}]}]}",
           "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
           "{\"messages\":[{\"role\":\"system\",\"content\":\"only system\"}]}",
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"function\":{}}]}",
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":5}"};
    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
        err[0] = 0;
        assert (aigw_bedrock_request_from_openai (bad_requests[i], strlen (bad_requests[i]), NULL,
                                                  err, sizeof err)
                == NULL);
        assert (err[0]);
    }

    //  Converse response -> chat.completion: text, then a tool call
    const char *converse_text
        = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Hello\"}]}},"
          "\"stopReason\":\"end_turn\",\"usage\":{\"inputTokens\":10,\"outputTokens\":3,"
          "\"totalTokens\":13},\"metrics\":{\"latencyMs\":100}}";
    char *completion
        = aigw_bedrock_response_to_openai (converse_text, strlen (converse_text), "claude",
                                           "chatcmpl-1", 1700000000, &out_len, err, sizeof err);
    assert (completion && out_len == strlen (completion));
    got = json_loads (completion, 0, NULL);
    want = json_loads ("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":"
                       "1700000000,\"model\":\"claude\",\"choices\":[{\"index\":0,\"message\":"
                       "{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":"
                       "\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,"
                       "\"total_tokens\":13}}",
                       0, NULL);
    assert (got && want && json_equal (got, want));
    json_decref (got);
    json_decref (want);
    free (completion);
    const char *converse_tool
        = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"toolUse\":{"
          "\"toolUseId\":\"tooluse_1\",\"name\":\"weather\",\"input\":{\"city\":\"Paris\"}}}]}},"
          "\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":5,\"outputTokens\":7}}";
    completion = aigw_bedrock_response_to_openai (converse_tool, strlen (converse_tool), "m", "id",
                                                  1, NULL, err, sizeof err);
    assert (completion);
    got = json_loads (completion, 0, NULL);
    json_t *choice = json_array_get (json_object_get (got, "choices"), 0);
    json_t *message = json_object_get (choice, "message");
    json_t *call = json_array_get (json_object_get (message, "tool_calls"), 0);
    assert (strcmp (json_string_value (json_object_get (choice, "finish_reason")), "tool_calls")
            == 0);
    assert (json_is_null (json_object_get (message, "content")));
    assert (strcmp (json_string_value (json_object_get (call, "id")), "tooluse_1") == 0);
    assert (strcmp (json_string_value (
                        json_object_get (json_object_get (call, "function"), "arguments")),
                    "{\"city\":\"Paris\"}")
            == 0);
    assert (json_integer_value (json_object_get (json_object_get (got, "usage"), "total_tokens"))
            == 12);
    json_decref (got);
    free (completion);
    const char *max_tokens = "{\"output\":{\"message\":{\"content\":[{\"text\":\"a\"}]}},"
                             "\"stopReason\":\"max_tokens\"}";
    completion = aigw_bedrock_response_to_openai (max_tokens, strlen (max_tokens), "m", "id", 1,
                                                  NULL, err, sizeof err);
    assert (completion && strstr (completion, "\"finish_reason\":\"length\""));
    free (completion);
    const char *bad_responses[]
        = {"", "nope", "{}", "{\"output\":{\"message\":{\"content\":{}}}}",
           "{\"output\":{\"message\":{\"content\":[{\"toolUse\":{\"name\":\"f\"}}]}}}"};
    for (size_t i = 0; i < sizeof bad_responses / sizeof bad_responses[0]; i++) {
        err[0] = 0;
        assert (aigw_bedrock_response_to_openai (bad_responses[i], strlen (bad_responses[i]), "m",
                                                 "id", 1, NULL, err, sizeof err)
                == NULL);
        assert (err[0]);
    }

    //  ConverseStream -> SSE: text and a tool call, framed, fed in slices
    s_buf_t events = {0};
    s_test_event (&events, "messageStart", "{\"role\":\"assistant\"}");
    s_test_event (&events, "contentBlockDelta",
                  "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Let me check.\"}}");
    s_test_event (&events, "contentBlockStop", "{\"contentBlockIndex\":0}");
    s_test_event (&events, "contentBlockStart",
                  "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"tu_1\","
                  "\"name\":\"weather\"}}}");
    s_test_event (&events, "contentBlockDelta",
                  "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":"
                  "{\"input\":\"{\\\"city\\\"\"}}}");
    s_test_event (&events, "contentBlockDelta",
                  "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":"
                  "{\"input\":\":\\\"Paris\\\"}\"}}}");
    s_test_event (&events, "contentBlockStop", "{\"contentBlockIndex\":1}");
    s_test_event (&events, "messageStop", "{\"stopReason\":\"tool_use\"}");
    s_test_event (&events, "metadata",
                  "{\"usage\":{\"inputTokens\":9,\"outputTokens\":4,"
                  "\"totalTokens\":13},\"metrics\":{\"latencyMs\":5}}");
    assert (!events.failed);
    const char *chunk_head = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\","
                             "\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":";
    s_buf_t want_sse = {0};
    const char *deltas[][2] = {
        {"{\"role\":\"assistant\",\"content\":\"\"}", "null"},
        {"{\"content\":\"Let me check.\"}", "null"},
        {"{\"tool_calls\":[{\"index\":0,\"id\":\"tu_1\",\"type\":\"function\",\"function\":"
         "{\"name\":\"weather\",\"arguments\":\"\"}}]}",
         "null"},
        {"{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\"\"}}]}", "null"},
        {"{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":\\\"Paris\\\"}\"}}]}",
         "null"},
        {"{}", "\"tool_calls\""}};
    for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
        s_buf_str (&want_sse, chunk_head);
        s_buf_str (&want_sse, deltas[i][0]);
        s_buf_str (&want_sse, ",\"finish_reason\":");
        s_buf_str (&want_sse, deltas[i][1]);
        s_buf_str (&want_sse, "}]}\n\n");
    }
    s_buf_str (&want_sse, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\","
                          "\"created\":7,\"model\":\"m\",\"choices\":[],\"usage\":"
                          "{\"prompt_tokens\":9,\"completion_tokens\":4,\"total_tokens\":13}}\n\n"
                          "data: [DONE]\n\n");
    assert (!want_sse.failed);
    for (unsigned seed = 0; seed < 8; seed++) {
        aigw_bedrock_stream_t *translator = aigw_bedrock_stream_new ("m", "c1", 7, true);
        assert (translator);
        s_buf_t sse = {0};
        unsigned state = seed;
        for (size_t at = 0; at < events.len;) {
            size_t step = 1;
            if (seed) {
                state = state * 1103515245u + 12345u;
                step = 1 + (state >> 16) % 61;
            }
            if (step > events.len - at)
                step = events.len - at;
            assert (aigw_bedrock_stream_feed (translator, events.data + at, step, err, sizeof err)
                    == 0);
            at += step;
            size_t taken_len;
            char *taken = aigw_bedrock_stream_take (translator, &taken_len);
            if (taken)
                s_buf_add (&sse, taken, taken_len);
            free (taken);
        }
        assert (aigw_bedrock_stream_done (translator));
        assert (aigw_bedrock_stream_finish (translator, err, sizeof err) == 0);
        assert (aigw_bedrock_stream_take (translator, NULL) == NULL);
        assert (sse.data && strcmp (sse.data, want_sse.data) == 0);
        s_buf_free (&sse);
        aigw_bedrock_stream_destroy (&translator);
        aigw_bedrock_stream_destroy (&translator);
    }
    s_buf_free (&want_sse);

    //  Without include_usage, metadata ends the stream with [DONE] alone
    aigw_bedrock_stream_t *translator = aigw_bedrock_stream_new ("m", "c1", 7, false);
    assert (translator);
    assert (aigw_bedrock_stream_feed (translator, events.data, events.len, err, sizeof err) == 0);
    char *sse = aigw_bedrock_stream_take (translator, NULL);
    assert (sse && !strstr (sse, "usage") && strstr (sse, "\"finish_reason\":\"tool_calls\""));
    assert (strlen (sse) > 14 && strcmp (sse + strlen (sse) - 14, "data: [DONE]\n\n") == 0);
    free (sse);
    aigw_bedrock_stream_destroy (&translator);
    s_buf_free (&events);

    //  A Bedrock exception becomes an error event and [DONE]
    translator = aigw_bedrock_stream_new ("m", "c1", 7, false);
    unsigned char *frame;
    size_t frame_len;
    assert (aigw_eventstream_encode_json ("exception", "throttlingException",
                                          "{\"message\":\"Too many requests\"}", &frame, &frame_len)
            == 0);
    assert (aigw_bedrock_stream_feed (translator, frame, frame_len, err, sizeof err) == -1);
    assert (strstr (err, "throttlingException") && strstr (err, "Too many requests"));
    free (frame);
    sse = aigw_bedrock_stream_take (translator, NULL);
    assert (sse && strstr (sse, "\"type\":\"throttlingException\"")
            && strstr (sse, "data: [DONE]\n\n"));
    free (sse);
    assert (aigw_bedrock_stream_done (translator));
    aigw_bedrock_stream_destroy (&translator);

    //  Corrupt framing, malformed events and a cut-short stream fail cleanly
    translator = aigw_bedrock_stream_new ("m", "c1", 7, false);
    unsigned char junk[16] = {0, 0, 0, 16, 0, 0, 0, 0, 1, 2, 3, 4};
    assert (aigw_bedrock_stream_feed (translator, junk, sizeof junk, err, sizeof err) == -1);
    assert (strstr (err, "CRC"));
    sse = aigw_bedrock_stream_take (translator, NULL);
    assert (sse && strstr (sse, "\"error\"") && strstr (sse, "data: [DONE]"));
    free (sse);
    aigw_bedrock_stream_destroy (&translator);
    const char *bad_events[][2] = {{"contentBlockDelta", "{\"delta\":{\"text\":\"x\"}}"},
                                   {"contentBlockDelta", "{\"contentBlockIndex\":3,\"delta\":"
                                                         "{\"toolUse\":{\"input\":\"{}\"}}}"},
                                   {"contentBlockStart", "{\"contentBlockIndex\":0,\"start\":"
                                                         "{\"toolUse\":{\"name\":\"f\"}}}"},
                                   {"messageStart", "not json"},
                                   {"contentBlockDelta", "{\"contentBlockIndex\":99999,"
                                                         "\"delta\":{\"text\":\"x\"}}"}};
    for (size_t i = 0; i < sizeof bad_events / sizeof bad_events[0]; i++) {
        translator = aigw_bedrock_stream_new ("m", "c1", 7, false);
        assert (aigw_bedrock_stream_event (translator, bad_events[i][0], bad_events[i][1],
                                           strlen (bad_events[i][1]), err, sizeof err)
                == -1);
        assert (aigw_bedrock_stream_done (translator));
        sse = aigw_bedrock_stream_take (translator, NULL);
        free (sse);
        aigw_bedrock_stream_destroy (&translator);
    }
    translator = aigw_bedrock_stream_new ("m", "c1", 7, false);
    const char *start = "{\"role\":\"assistant\"}";
    assert (aigw_bedrock_stream_event (translator, "messageStart", start, strlen (start), err,
                                       sizeof err)
            == 0);
    assert (aigw_bedrock_stream_finish (translator, err, sizeof err) == -1);
    assert (aigw_bedrock_stream_done (translator));
    sse = aigw_bedrock_stream_take (translator, NULL);
    assert (sse && strstr (sse, "before messageStop"));
    free (sse);
    aigw_bedrock_stream_destroy (&translator);
    if (verbose)
        printf ("bedrock: ok\n");
}
