/*  aigw_guardrail: the input guardrail stage. Checks the prompt text (chat
    messages, embedding inputs) against a maximum length and a deny-list of
    PCRE2 regexes from the config. Blocks with 400 guardrail_error naming
    the guardrail and the rule that matched. */
#ifndef AIGW_GUARDRAIL_H_INCLUDED
#define AIGW_GUARDRAIL_H_INCLUDED

#include "aigw_stage.h"

extern const aigw_stage_def_t aigw_guardrail_stage;

void aigw_guardrail_test (bool verbose);

#endif
