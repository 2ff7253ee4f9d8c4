# schemas/sql_embed.cmake: turns schemas/sql/NNN_name.sql into one C file
# that aigw_db applies with `aigw migrate`. Run by the build:
#   cmake -DSQL_DIR=schemas/sql -DOUT=build/aigw_migrations.c -P schemas/sql_embed.cmake
#
# Output: aigw_migrations[] = {version, name, sql, sha256-hex}, sorted by
# version, and aigw_migrations_count (types in core/aigw_db.h). The SQL is
# written as byte values (cmake/aigw_embed.cmake), so no quote, backslash,
# semicolon or trigraph in a migration needs escaping. Reproducible: the output depends only on the
# files' names and contents, never on paths, dates or the machine.
#
# A file name must be NNN_name.sql (three or more digits, then a name of
# [a-z0-9_]); versions must be unique. Anything else stops the build.
cmake_minimum_required(VERSION 3.20)
include("${CMAKE_CURRENT_LIST_DIR}/../cmake/aigw_embed.cmake")

if(NOT SQL_DIR OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DSQL_DIR=DIR -DOUT=FILE -P sql_embed.cmake")
endif()

get_filename_component(SQL_DIR "${SQL_DIR}" ABSOLUTE)
file(GLOB files RELATIVE "${SQL_DIR}" "${SQL_DIR}/*.sql")
list(SORT files)

set(body "")
set(table "")
set(seen "")
set(count 0)
foreach(file IN LISTS files)
  if(NOT file MATCHES "^([0-9][0-9][0-9]+)_([a-z0-9_]+)\\.sql$")
    message(FATAL_ERROR "${SQL_DIR}/${file}: a migration is named NNN_name.sql "
                        "(digits, underscore, then lowercase letters, digits, _)")
  endif()
  set(digits "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  # Leading zeros off; math() reads the rest as decimal.
  string(REGEX REPLACE "^0+([0-9])" "\\1" digits "${digits}")
  math(EXPR version "${digits}")
  if(version IN_LIST seen)
    message(FATAL_ERROR "${SQL_DIR}/${file}: migration version ${version} is used twice")
  endif()
  list(APPEND seen ${version})

  file(SHA256 "${SQL_DIR}/${file}" sha256)
  aigw_embed_bytes("${SQL_DIR}/${file}" "s_sql_${count}" definition hex)
  if(hex STREQUAL "")
    message(FATAL_ERROR "${SQL_DIR}/${file}: empty migration")
  endif()
  if(hex MATCHES "^(..)*00")
    message(FATAL_ERROR "${SQL_DIR}/${file}: contains a NUL byte")
  endif()
  string(APPEND body "\n//  ${file}\n${definition}")
  string(APPEND table "    {${version}, \"${name}\", (const char *) s_sql_${count}, \"${sha256}\"},\n")
  math(EXPR count "${count} + 1")
endforeach()

if(count EQUAL 0)
  message(FATAL_ERROR "${SQL_DIR}: no NNN_name.sql migrations")
endif()

set(text "/*  generated from schemas/sql by CMake, do not edit.
    Source: schemas/sql_embed.cmake; one entry per schemas/sql/NNN_name.sql,
    sorted by version. */
#include \"aigw_db.h\"
${body}
const aigw_migration_t aigw_migrations[] = {
${table}};

const size_t aigw_migrations_count = ${count};
")

# Always written: the build runs this only when a migration (or this
# script) changed, and the output must then be newer than its inputs.
file(WRITE "${OUT}" "${text}")
