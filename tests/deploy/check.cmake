# deploy.check: tests/deploy/check.sh (label deploy). Included from the top
# CMakeLists.txt, so the binary and build folder are this build's.
add_test(NAME deploy.check COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/check.sh)
set_tests_properties(deploy.check PROPERTIES LABELS deploy TIMEOUT 300
                     ENVIRONMENT "AIGW_BUILD_DIR=${CMAKE_BINARY_DIR};AIGW_BIN=$<TARGET_FILE:aigw>")
