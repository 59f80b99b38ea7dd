# Test registration: included from CMakeLists.txt. Each section belongs to one concern.

# --- C unit tests: every tests/c/test_<module>.c is one executable and one ctest ---------------
file(GLOB ETLUA_C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/c/test_*.c)
foreach(t ${ETLUA_C_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_executable(${name} ${t})
  target_link_libraries(${name} PRIVATE etlua_core)
  add_test(NAME c.${name} COMMAND ${name})
  set_tests_properties(c.${name} PROPERTIES LABELS "unit")
endforeach()

# --- sigv4 (compared with python3-botocore) ----------------------------------------------------
# sigv4_sign prints etl_sigv4_sign's Authorization header; compare_botocore.py signs the same
# requests (both SQS protocols, with and without a session token) with botocore and compares.
add_executable(sigv4_sign ${CMAKE_SOURCE_DIR}/tests/sigv4/sigv4_sign.c)
target_link_libraries(sigv4_sign PRIVATE etlua_core)
find_program(ETLUA_PYTHON3 python3 REQUIRED)
add_test(NAME sigv4.botocore
         COMMAND ${ETLUA_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/sigv4/compare_botocore.py
                 $<TARGET_FILE:sigv4_sign>)
set_tests_properties(sigv4.botocore PROPERTIES LABELS "unit")

# --- busted specs -------------------------------------------------------------------------------
# spec/*_spec.lua (scripts/login_etl.lua, etlua.record) under plain lua5.4 with the real C
# modules from this build's etlua.so. A setup fixture builds etlua_lua first, so `ctest` alone
# never runs the specs against a missing or stale module.
find_program(ETLUA_LUA54 lua5.4 REQUIRED)
find_program(ETLUA_BUSTED busted REQUIRED)
add_test(NAME spec.build_module
         COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target etlua_lua)
set_tests_properties(spec.build_module PROPERTIES FIXTURES_SETUP etlua_lua_module LABELS "unit")
add_test(NAME spec.busted
         COMMAND ${ETLUA_LUA54} ${ETLUA_BUSTED} --output=plainTerminal
                 "--lpath=${CMAKE_SOURCE_DIR}/src/lua/?.lua$<SEMICOLON>${CMAKE_SOURCE_DIR}/?.lua"
                 "--cpath=${CMAKE_BINARY_DIR}/?.so" ${CMAKE_SOURCE_DIR}/spec
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(spec.busted PROPERTIES
  FIXTURES_REQUIRED etlua_lua_module LABELS "unit" TIMEOUT 120
  ENVIRONMENT "LUA_CPATH=${CMAKE_BINARY_DIR}/?.so\;\;;LUA_PATH=${CMAKE_SOURCE_DIR}/src/lua/?.lua\;${CMAKE_SOURCE_DIR}/?.lua\;\;")

# --- Postgres sink ------------------------------------------------------------------------------
# etlua.pg + etlua.sink against a throwaway cluster (tests/harness/pg.sh), busted under lua5.4.
add_test(NAME integration.sink
         COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/sink.sh ${CMAKE_BINARY_DIR})
set_tests_properties(integration.sink PROPERTIES LABELS "integration;postgres" TIMEOUT 180)

# --- integration (real Postgres + SQS emulators) -----------------------------------------------
