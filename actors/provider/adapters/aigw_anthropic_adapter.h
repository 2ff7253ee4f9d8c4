/*  aigw_anthropic_adapter: the Anthropic Messages API as an aigw_adapter_t
    (aigw_adapter_anthropic, declared in aigw_adapter.h). Requests go to
    {base}/v1/messages with x-api-key and anthropic-version headers; bodies,
    answers and stream events are translated by aigw_anthropic, and this
    class adds the Server-Sent Events framing of Anthropic streams. Chat
    only: Anthropic has no embeddings endpoint. */
#ifndef AIGW_ANTHROPIC_ADAPTER_H_INCLUDED
#define AIGW_ANTHROPIC_ADAPTER_H_INCLUDED

#include <stdbool.h>

#include "aigw_adapter.h"

//  The anthropic-version header every request carries.
#define AIGW_ANTHROPIC_API_VERSION "2023-06-01"
//  Largest partial SSE event (line plus data so far) a stream may hold.
#define AIGW_ANTHROPIC_SSE_EVENT_MAX (16u * 1024 * 1024)

void aigw_anthropic_adapter_test (bool verbose);

#endif
