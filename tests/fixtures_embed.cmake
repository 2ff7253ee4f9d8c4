# tests/fixtures_embed.cmake: turns every file under tests/fixtures into one
# C file with aigw_fixture (PATH), declared in tests/aigw_fixture.h. Run by
# the build when a fixture (or this script) changes:
#   cmake -DFIXTURES_DIR=tests/fixtures -DOUT=build/aigw_fixtures.c -P tests/fixtures_embed.cmake
#
# The bytes are written as byte values (as schemas/sql_embed.cmake does for
# migrations), so nothing in a fixture needs escaping and a .sse file keeps
# its exact line ends. Reproducible: the output depends only on the files'
# relative paths and contents.
cmake_minimum_required(VERSION 3.20)

if(NOT FIXTURES_DIR OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DFIXTURES_DIR=DIR -DOUT=FILE -P fixtures_embed.cmake")
endif()

get_filename_component(FIXTURES_DIR "${FIXTURES_DIR}" ABSOLUTE)
file(GLOB_RECURSE files RELATIVE "${FIXTURES_DIR}" "${FIXTURES_DIR}/*")
list(SORT files)

set(body "")
set(table "")
set(count 0)
set(b "[0-9a-f][0-9a-f]")
foreach(file IN LISTS files)
  if(file MATCHES "[\"\\\\]")
    message(FATAL_ERROR "${FIXTURES_DIR}/${file}: a fixture's path has no quote or backslash")
  endif()
  file(READ "${FIXTURES_DIR}/${file}" hex HEX)
  string(LENGTH "${hex}" digits)
  math(EXPR size "${digits} / 2")
  # 16 bytes per line: "0x7b, 0x22, ..." (CMake regexes have no {n}).
  string(REGEX REPLACE "(${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b})"
         "\\1\n" bytes "${hex}")
  string(REGEX REPLACE "(${b})" "0x\\1, " bytes "${bytes}")
  string(REPLACE ", \n" ",\n    " bytes "${bytes}")
  string(REGEX REPLACE "[ \n]+$" "" bytes "${bytes}")
  string(APPEND body "\n//  ${file}\nstatic const unsigned char s_fx_${count}[] = {\n    ${bytes} 0x00};\n")
  string(APPEND table "    {\"${file}\", s_fx_${count}, ${size}},\n")
  math(EXPR count "${count} + 1")
endforeach()

if(count EQUAL 0)
  message(FATAL_ERROR "${FIXTURES_DIR}: no fixtures")
endif()

set(text "/*  generated from tests/fixtures by CMake, do not edit.
    Source: tests/fixtures_embed.cmake; one entry per file, sorted by path. */
#include \"aigw_fixture.h\"

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
")

set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
