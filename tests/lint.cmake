# Lint tests (label "lint"), included from tests/tests.cmake. Each runs over the source tree, not
# the build, so it needs no build step; the commands are the ones CONTRIBUTING.md gives.

# lint.cppcheck: static analysis of the C (warnings, portability, performance). A false positive
# is suppressed inline, on the line before it, with the reason in a comment:
#   /* cppcheck-suppress <id> */
find_program(ETLUA_CPPCHECK cppcheck REQUIRED)
add_test(NAME lint.cppcheck
         COMMAND ${ETLUA_CPPCHECK} --enable=warning,portability,performance --error-exitcode=1
                 --inline-suppr -I include --std=c11 -q src
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})

# lint.luacheck: every Lua file .luacheckrc names (host modules, scripts and rules under the
# sandbox's globals, specs, integration and bench Lua), warnings fail.
find_program(ETLUA_LUACHECK luacheck REQUIRED)
add_test(NAME lint.luacheck COMMAND ${ETLUA_LUACHECK} --no-color -q .
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})

# lint.clang_format: src/*.c, include/etlua/*.h and tests/c/*.[ch] as .clang-format lays them out.
# -DETLUA_LINT_FORMAT=OFF leaves it out (e.g. with a clang-format other than 14, whose layout
# may differ by a few lines).
option(ETLUA_LINT_FORMAT "Register lint.clang_format (needs clang-format)" ON)
if(ETLUA_LINT_FORMAT)
  find_program(ETLUA_CLANG_FORMAT clang-format REQUIRED)
  add_test(NAME lint.clang_format
           COMMAND sh -c "exec '${ETLUA_CLANG_FORMAT}' --dry-run --Werror src/*.c include/etlua/*.h tests/c/*.[ch]"
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endif()

set_tests_properties(lint.cppcheck lint.luacheck PROPERTIES LABELS "lint" TIMEOUT 300)
if(ETLUA_LINT_FORMAT)
  set_tests_properties(lint.clang_format PROPERTIES LABELS "lint" TIMEOUT 120)
endif()
