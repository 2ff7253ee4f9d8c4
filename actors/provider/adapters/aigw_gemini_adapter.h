/*  aigw_gemini_adapter: Google Gemini as an aigw_adapter_t
    (aigw_adapter_gemini, declared in aigw_adapter.h). Chat goes to
    {base}/v1beta/models/{model}:generateContent (or
    :streamGenerateContent?alt=sse), embeddings to :batchEmbedContents; the
    API key travels only in the x-goog-api-key header, never in the URL or
    an error. Bodies, answers and stream events are translated by
    aigw_gemini; this class adds the URL, the headers, the error body and
    the Server-Sent Events framing of Gemini streams. */
#ifndef AIGW_GEMINI_ADAPTER_H_INCLUDED
#define AIGW_GEMINI_ADAPTER_H_INCLUDED

#include <stdbool.h>

#include "aigw_adapter.h"

//  Largest single SSE event a stream may hold while it is incomplete.
#define AIGW_GEMINI_STREAM_EVENT_MAX (8u * 1024 * 1024)

void aigw_gemini_adapter_test (bool verbose);

#endif
