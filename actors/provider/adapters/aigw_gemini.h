/*  aigw_gemini: the Google Gemini adapter (aigw_adapter_gemini, declared in
    aigw_adapter.h). It translates OpenAI chat and embeddings requests into
    Gemini generateContent, streamGenerateContent (SSE) and
    batchEmbedContents requests, and Gemini answers, SSE streams and error
    bodies back into OpenAI ones. Pure functions and one small stream
    object; no I/O, no logging. The API key travels only in the
    x-goog-api-key header, never in the URL or an error. */
#ifndef AIGW_GEMINI_H_INCLUDED
#define AIGW_GEMINI_H_INCLUDED

#include <stdbool.h>

#include "aigw_adapter.h"

//  Largest request or response body the adapter parses, in bytes.
#define AIGW_GEMINI_BODY_MAX (32u * 1024 * 1024)
//  Largest single SSE event a stream may hold while it is incomplete.
#define AIGW_GEMINI_STREAM_EVENT_MAX (8u * 1024 * 1024)
//  Most tool calls one answer (or one stream) may carry.
#define AIGW_GEMINI_TOOL_CALLS_MAX 1024
//  Most candidates translated into choices from one answer.
#define AIGW_GEMINI_CHOICES_MAX 16

void aigw_gemini_test (bool verbose);

#endif
