# web/embed.cmake: turns the built dashboard (web/build.mjs's output folder)
# into one C file, the table aigw_edge_dashboard serves at /dashboard. Run
# by the build:
#   cmake -DASSETS_DIR=build/dashboard -DOUT=build/aigw_dashboard_assets.c -P web/embed.cmake
# With ASSETS_DIR empty the table is empty (a gateway built without the
# dashboard answers /dashboard 404 dashboard_not_built). Output: one entry
# {path, content type, bytes, size, SHA-256} per file of the folder, sorted
# by name; the bytes as values (cmake/aigw_embed.cmake). Reproducible: it
# depends only on the files' names and contents.
cmake_minimum_required(VERSION 3.20)
include("${CMAKE_CURRENT_LIST_DIR}/../cmake/aigw_embed.cmake")

if(NOT OUT)
  message(FATAL_ERROR "usage: cmake [-DASSETS_DIR=DIR] -DOUT=FILE -P web/embed.cmake")
endif()

set(files "")
if(ASSETS_DIR)
  get_filename_component(ASSETS_DIR "${ASSETS_DIR}" ABSOLUTE)
  file(GLOB files RELATIVE "${ASSETS_DIR}" "${ASSETS_DIR}/*")
  list(SORT files)
  if(NOT "index.html" IN_LIST files)
    message(FATAL_ERROR "${ASSETS_DIR}: no index.html (not a built dashboard: node web/build.mjs)")
  endif()
endif()

set(body "")
set(table "")
set(count 0)
foreach(file IN LISTS files)
  if(NOT file MATCHES "^[A-Za-z0-9._-]+$")
    message(FATAL_ERROR "${ASSETS_DIR}/${file}: asset names are [A-Za-z0-9._-]")
  endif()
  if(file MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(file MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(file MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  elseif(file MATCHES "\\.svg$")
    set(type "image/svg+xml")
  elseif(file MATCHES "\\.png$")
    set(type "image/png")
  else()
    message(FATAL_ERROR "${ASSETS_DIR}/${file}: no content type known for it")
  endif()
  file(SHA256 "${ASSETS_DIR}/${file}" sha256)
  file(SIZE "${ASSETS_DIR}/${file}" size)
  aigw_embed_bytes("${ASSETS_DIR}/${file}" "s_asset_${count}" definition hex)
  string(APPEND body "\n//  ${file}\n${definition}")
  string(APPEND table "    {\"${file}\", \"${type}\", s_asset_${count}, ${size}, \"${sha256}\"},\n")
  math(EXPR count "${count} + 1")
endforeach()
if(count EQUAL 0)
  # C has no empty arrays: one unused row, and a count of 0.
  set(table "    {0},\n")
endif()

file(WRITE "${OUT}" "/*  generated from the built dashboard (web/) by CMake, do not edit.
    Source: web/embed.cmake; one entry per file of web/build.mjs's output. */
#include \"aigw_edge_dashboard.h\"
${body}
const aigw_dashboard_asset_t aigw_dashboard_assets[] = {
${table}};

const size_t aigw_dashboard_assets_count = ${count};
")
