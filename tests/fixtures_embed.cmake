# tests/fixtures_embed.cmake: turns every file under tests/fixtures into one
# C file with aigw_fixture (PATH), declared in tests/aigw_fixture.h. Run by
# the build when a fixture (or this script) changes:
#   cmake -DFIXTURES_DIR=tests/fixtures -DOUT=build/aigw_fixtures.c -P tests/fixtures_embed.cmake
#
# The bytes are written as byte values (cmake/aigw_embed.cmake, as for the
# migrations), so nothing in a fixture needs escaping and a .sse file keeps
# its exact line ends. Reproducible: the output depends only on the files'
# relative paths and contents.
cmake_minimum_required(VERSION 3.20)
include("${CMAKE_CURRENT_LIST_DIR}/../cmake/aigw_embed.cmake")

if(NOT FIXTURES_DIR OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DFIXTURES_DIR=DIR -DOUT=FILE -P fixtures_embed.cmake")
endif()

get_filename_component(FIXTURES_DIR "${FIXTURES_DIR}" ABSOLUTE)
file(GLOB_RECURSE files RELATIVE "${FIXTURES_DIR}" "${FIXTURES_DIR}/*")
list(SORT files)

set(body "")
set(table "")
set(count 0)
foreach(file IN LISTS files)
  if(file MATCHES "[\"\\\\]")
    message(FATAL_ERROR "${FIXTURES_DIR}/${file}: a fixture's path has no quote or backslash")
  endif()
  aigw_embed_bytes("${FIXTURES_DIR}/${file}" "s_fx_${count}" definition hex)
  string(LENGTH "${hex}" digits)
  math(EXPR size "${digits} / 2")
  string(APPEND body "\n//  ${file}\n${definition}")
  string(APPEND table "    {\"${file}\", s_fx_${count}, ${size}},\n")
  math(EXPR count "${count} + 1")
endforeach()

if(count EQUAL 0)
  message(FATAL_ERROR "${FIXTURES_DIR}: no fixtures")
endif()

set(text "/*  generated from tests/fixtures by CMake, do not edit.
    Source: tests/fixtures_embed.cmake; one entry per file, sorted by path. */
#include \"aigw_fixture.h\"

#include <assert.h>
#include <stdio.h>
#include <string.h>
${body}
static const struct {
    const char *path;           //  relative to tests/fixtures
    const unsigned char *data;  //  its bytes, then a NUL
    size_t len;                 //  bytes, without the NUL
} s_fixtures[] = {
${table}};

const char *
aigw_fixture (const char *path, size_t *len_p)
{
    for (size_t i = 0; i < ${count}; i++)
        if (strcmp (s_fixtures[i].path, path) == 0) {
            if (len_p)
                *len_p = s_fixtures[i].len;
            return (const char *) s_fixtures[i].data;
        }
    return NULL;
}

const char *
aigw_fixture_in (const char *folder, const char *name)
{
    char path[256];
    int len = snprintf (path, sizeof path, \"%s/%s\", folder, name);
    assert (len > 0 && (size_t) len < sizeof path);
    const char *text = aigw_fixture (path, NULL);
    assert (text);
    return text;
}
")

set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
