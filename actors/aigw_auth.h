/*  aigw_auth: the auth stage. Resolves the presented key to a principal
    (key id, tenant, role, limits), compared by SHA-256 in constant time,
    checks that the model exists, and clears the credential so it travels
    no further. 401 for a missing or unknown key, 404 for an unknown model. */
#ifndef AIGW_AUTH_H_INCLUDED
#define AIGW_AUTH_H_INCLUDED

#include "aigw_stage.h"

extern const aigw_stage_def_t aigw_auth_stage;

void aigw_auth_test (bool verbose);

#endif
