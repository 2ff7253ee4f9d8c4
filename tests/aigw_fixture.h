/*  aigw_fixture: the files of tests/fixtures, embedded in the build by
    tests/fixtures_embed.cmake, so a selftest reads the same bytes as the
    fuzz corpus and the integration suites without depending on the working
    directory, and no fixture is copied by hand into a C string. */
#ifndef AIGW_FIXTURE_H_INCLUDED
#define AIGW_FIXTURE_H_INCLUDED

#include <stddef.h>

//  The bytes of tests/fixtures/PATH (e.g. "anthropic/openai_request_text.json"),
//  NUL-terminated, with their length in *LEN_P when LEN_P is not NULL; NULL
//  when there is no such fixture. The text is static: do not free it.
const char *aigw_fixture (const char *path, size_t *len_p);

//  The text of tests/fixtures/FOLDER/NAME for a selftest; aborts when there
//  is none, since a selftest names only fixtures the tree holds.
const char *aigw_fixture_in (const char *folder, const char *name);

#endif
