/*  aigw: the one binary. Placeholder until the CLI lands. */
#include "aigw_mock_provider.h"
#include <stdio.h>
#include <string.h>
int
main (int argc, char **argv)
{
    if (argc > 1 && strcmp (argv[1], "mock-provider") == 0)
        return aigw_mock_provider_main (argc - 1, argv + 1);
    printf ("aigw %s\n", AIGW_VERSION);
    return 0;
}
