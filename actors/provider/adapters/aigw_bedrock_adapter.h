/*  aigw_bedrock_adapter: AWS Bedrock Converse / ConverseStream as an
    aigw_adapter_t (aigw_adapter_bedrock, declared in aigw_adapter.h).
    Requests go to {base}/model/{id}/converse[-stream], signed with SigV4
    (aigw_bedrock_sign); bodies, answers and event streams are translated
    by aigw_bedrock. Chat only: embeddings models use InvokeModel, which
    this adapter does not speak. */
#ifndef AIGW_BEDROCK_ADAPTER_H_INCLUDED
#define AIGW_BEDROCK_ADAPTER_H_INCLUDED

#include <stdbool.h>

#include "aigw_adapter.h"

//  Region used when the deployment names none.
#define AIGW_BEDROCK_DEFAULT_REGION "us-east-1"
//  SigV4 service name of the Bedrock runtime.
#define AIGW_BEDROCK_SERVICE "bedrock"

void aigw_bedrock_adapter_test (bool verbose);

#endif
