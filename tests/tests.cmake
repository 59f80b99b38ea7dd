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

# --- Postgres sink ------------------------------------------------------------------------------
# etlua.pg + etlua.sink against a throwaway cluster (tests/harness/pg.sh), busted under lua5.4.
add_test(NAME integration.sink
         COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/sink.sh ${CMAKE_BINARY_DIR})
set_tests_properties(integration.sink PROPERTIES LABELS "integration;postgres" TIMEOUT 180)

# --- integration (real Postgres + SQS emulators) -----------------------------------------------
