# cmake/aigw_embed.cmake: a file's bytes as a C array, for the scripts that
# embed files in the build (schemas/sql_embed.cmake, tests/fixtures_embed.cmake).
# The bytes are written as values, 16 a line, then a NUL, so nothing in the
# file needs escaping and its line ends stay exact.

# aigw_embed_bytes(FILE NAME DEFINITION HEX): sets DEFINITION to
# "static const unsigned char NAME[] = {0x.., ..., 0x00};\n" and HEX to the
# file's bytes as hex digits, for the caller's own checks.
function(aigw_embed_bytes file name definition_var hex_var)
  file(READ "${file}" hex HEX)
  # 16 bytes per line: "0x2d, 0x2d, ..." (CMake regexes have no {n}).
  set(b "[0-9a-f][0-9a-f]")
  string(REGEX REPLACE "(${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}${b})"
         "\\1\n" bytes "${hex}")
  string(REGEX REPLACE "(${b})" "0x\\1, " bytes "${bytes}")
  string(REPLACE ", \n" ",\n    " bytes "${bytes}")
  string(REGEX REPLACE "[ \n]+$" "" bytes "${bytes}")
  set(${definition_var} "static const unsigned char ${name}[] = {\n    ${bytes} 0x00};\n"
      PARENT_SCOPE)
  set(${hex_var} "${hex}" PARENT_SCOPE)
endfunction()
