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

# --- busted specs -------------------------------------------------------------------------------

# --- Postgres sink ------------------------------------------------------------------------------

# --- integration (real Postgres + SQS emulators) -----------------------------------------------
