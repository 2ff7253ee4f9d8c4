/*  aigw_operator: the operator's command line for the control plane.

        aigw migrate [--config FILE]
        aigw tenants create NAME [--json]
        aigw tenants list [--json]
        aigw keys create --tenant ID_OR_NAME --name NAME [--role ROLE]
                         [--expires RFC3339] [--models a,b] [--rpm N] [--tpm N]
                         [--budget-usd X] [--json]
        aigw keys list [--tenant ID_OR_NAME] [--json]
        aigw keys revoke ID
        aigw keys rotate ID [--json]
        aigw secrets rotate

    Every command takes --config FILE; the database is DATABASE_URL (or
    database.url). SQL is always parameterized. Every change writes an
    audit_log row (actor_type 'cli', actor_id the OS user, before and after
    as JSON without the secret hash) in the same transaction. A key's secret
    is printed once, on create and rotate, and only its SHA-256 is stored.

    Exit codes: 0 done, 1 runtime error (database, unknown tenant or key),
    2 usage error (bad option or value). Messages go to stderr; results to
    stdout, as text or, with --json, as one JSON document. */
#ifndef AIGW_OPERATOR_H_INCLUDED
#define AIGW_OPERATOR_H_INCLUDED

#include <stdbool.h>

//  Exit codes.
#define AIGW_OPERATOR_EXIT_OK    0
#define AIGW_OPERATOR_EXIT_ERROR 1
#define AIGW_OPERATOR_EXIT_USAGE 2

//  True if COMMAND (argv[1] of aigw) is one of the operator's: migrate,
//  tenants, keys or secrets.
bool aigw_operator_handles (const char *command);

//  Run one operator command. ARGV[0] is the command (migrate, tenants,
//  keys), then its arguments. Returns the exit code.
int aigw_operator_main (int argc, char **argv);

//  The help text of COMMAND (migrate, tenants, keys), or NULL if it is not
//  an operator command. The text belongs to this module.
const char *aigw_operator_help (const char *command);

#endif
