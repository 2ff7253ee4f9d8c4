/*  tokens_bench: the token estimate's speed (core/aigw_tokens), in ns per
    KB of input: the text estimate over each file given (the corpus in
    tests/fixtures/tokens by default, from the repository root), then the
    request estimate of a chat body built from all of them (JSON parse
    included, as the rate-limit owner pays it).

    Usage: aigw_bench_tokens [FILE...]. Each figure is the best of a few
    rounds of at least AIGW_BENCH_TOKENS_MS each. */
#include "aigw_tokens.h"

#include <assert.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Time each round runs at least, ms; rounds per figure (the best counts).
#define AIGW_BENCH_TOKENS_MS     200
#define AIGW_BENCH_TOKENS_ROUNDS 5
//  Corpus used when no file is given.
#define AIGW_BENCH_TOKENS_CORPUS "tests/fixtures/tokens"

static double
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static char *
s_read (const char *path, size_t *len)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, 0, SEEK_SET);
    char *data = malloc ((size_t) size + 1);
    *len = data ? fread (data, 1, (size_t) size, f) : 0;
    fclose (f);
    if (data)
        data[*len] = 0;
    return data;
}

//  Best ns per KB of running the estimate of DATA (LEN bytes): FORMAT 0 is
//  the text estimate.
static double
s_measure (int format, const char *data, size_t len)
{
    double best = 0;
    for (int round = 0; round < AIGW_BENCH_TOKENS_ROUNDS; round++) {
        long runs = 0;
        int64_t sink = 0, completion;
        double start = s_now_ns (), now;
        do {
            int64_t prompt = 0;
            if (format)
                aigw_tokens_estimate ((aigw_tokens_format_t) format, data, len, 0, &prompt,
                                      &completion);
            else
                prompt = aigw_tokens_text (data, len);
            sink += prompt;
            runs++;
        } while ((now = s_now_ns ()) - start < AIGW_BENCH_TOKENS_MS * 1e6);
        double ns_kb = (now - start) / runs / (len / 1024.0);
        if (!best || ns_kb < best)
            best = ns_kb;
        assert (sink >= 0);
    }
    return best;
}

int
main (int argc, char *argv[])
{
    char *paths[256];
    int count = 0;
    for (int i = 1; i < argc && count < 256; i++)
        paths[count++] = strdup (argv[i]);
    if (!count) {
        DIR *dir = opendir (AIGW_BENCH_TOKENS_CORPUS);
        struct dirent *entry;
        while (dir && (entry = readdir (dir)) && count < 256)
            if (entry->d_name[0] != '.') {
                char path[512];
                snprintf (path, sizeof path, "%s/%s", AIGW_BENCH_TOKENS_CORPUS, entry->d_name);
                paths[count++] = strdup (path);
            }
        if (dir)
            closedir (dir);
    }
    json_t *messages = json_array ();
    size_t total = 0;
    double weighted = 0;
    for (int i = 0; i < count; i++) {
        size_t len;
        char *data = s_read (paths[i], &len);
        if (!data || !len) {
            free (data);
            continue;
        }
        double ns_kb = s_measure (0, data, len);
        printf ("%-28s %7zu bytes %8lld tokens %8.0f ns/KB\n",
                strrchr (paths[i], '/') ? strrchr (paths[i], '/') + 1 : paths[i], len,
                (long long) aigw_tokens_text (data, len), ns_kb);
        total += len;
        weighted += ns_kb * len;
        json_array_append_new (messages, json_pack ("{s:s,s:s}", "role", "user", "content", data));
        free (data);
    }
    if (!total) {
        fprintf (stderr, "aigw_bench_tokens: no input (run from the repository root)\n");
        return 1;
    }
    printf ("text, all inputs: %.0f ns/KB (weighted by size)\n", weighted / total);
    json_t *root
        = json_pack ("{s:s,s:o,s:i}", "model", "gpt-4o", "messages", messages, "max_tokens", 256);
    char *body = json_dumps (root, JSON_COMPACT);
    printf ("chat request of %zu bytes (JSON parse included): %.0f ns/KB\n", strlen (body),
            s_measure (AIGW_TOKENS_CHAT, body, strlen (body)));
    free (body);
    json_decref (root);
    for (int i = 0; i < count; i++)
        free (paths[i]);
    return 0;
}
