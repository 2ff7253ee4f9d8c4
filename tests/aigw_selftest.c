/*  aigw_selftest: runs the selftest of one class (--test NAME) or all.
    Each selftest asserts; a failure aborts with the assertion's location.

    The table comes from the sources: tests/selftest_table.cmake finds every
    `aigw_NAME_test (bool verbose)` definition and lists it once in
    aigw_selftests.inc (generated in the build folder). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

//  Plain declarations, not weak: a listed selftest that is not built fails
//  the link rather than the run.
#define AIGW_SELFTEST(name) void aigw_##name##_test (bool verbose);
#include "aigw_selftests.inc"
#undef AIGW_SELFTEST

typedef struct {
    const char *name;   //  class name, as given to --test
    void (*fn) (bool);  //  its selftest
} s_test_t;

static const s_test_t s_tests[] = {
#define AIGW_SELFTEST(name) {#name, aigw_##name##_test},
#include "aigw_selftests.inc"
#undef AIGW_SELFTEST
};

int
main (int argc, char **argv)
{
    const char *only = NULL;
    bool verbose = false;
    bool list = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--test") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp (argv[i], "--list") == 0)
            list = true;
        else if (strcmp (argv[i], "-v") == 0)
            verbose = true;
        else {
            fprintf (stderr, "usage: aigw_selftest [--test NAME | --list] [-v]\n");
            return 2;
        }
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof s_tests / sizeof s_tests[0]; i++) {
        if (list) {
            printf ("%s\n", s_tests[i].name);
            continue;
        }
        if (only && strcmp (only, s_tests[i].name) != 0)
            continue;
        printf (" * %s: ", s_tests[i].name);
        fflush (stdout);
        s_tests[i].fn (verbose);
        printf ("OK\n");
        ran++;
    }
    if (list)
        return 0;
    if (ran == 0) {
        fprintf (stderr, "no selftest named %s\n", only ? only : "?");
        return 1;
    }
    return 0;
}
