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
# c.test_pattern: a matcher that stopped looking at the budget would backtrack for hours
set_tests_properties(c.test_pattern PROPERTIES TIMEOUT 120)

# --- lint: cppcheck, luacheck, clang-format (tests/lint.cmake) --------------------------------
include(${CMAKE_SOURCE_DIR}/tests/lint.cmake)

# --- sigv4 (compared with python3-botocore) ----------------------------------------------------
# etlua signs every request (src/sigv4.c, called by src/http.c). sigv4_send posts one request through
# etlua's transport to a local listener run by compare_botocore.py, which reads the Authorization
# header it carried and compares it byte for byte with botocore's SigV4Auth for the same request
# (both SQS protocols, with and without a session token, two regions, default and other ports).
add_executable(sigv4_send ${CMAKE_SOURCE_DIR}/tests/sigv4/sigv4_send.c)
target_link_libraries(sigv4_send PRIVATE etlua_core)
find_program(ETLUA_PYTHON3 python3 REQUIRED)
add_test(NAME sigv4.botocore
         COMMAND ${ETLUA_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/sigv4/compare_botocore.py
                 $<TARGET_FILE:sigv4_send>)
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
set(ETLUA_SPEC_ENV "LUA_CPATH=${CMAKE_BINARY_DIR}/?.so\;\;;LUA_PATH=${CMAKE_SOURCE_DIR}/src/lua/?.lua\;${CMAKE_SOURCE_DIR}/?.lua\;\;")
if(ETLUA_SANITIZE)
  # plain lua5.4 loading a sanitized etlua.so needs the ASan runtime loaded first
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE ETLUA_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND ETLUA_SPEC_ENV "LD_PRELOAD=${ETLUA_LIBASAN}" "ASAN_OPTIONS=detect_leaks=0")
endif()
set_tests_properties(spec.busted PROPERTIES
  FIXTURES_REQUIRED etlua_lua_module LABELS "unit" TIMEOUT 120
  ENVIRONMENT "${ETLUA_SPEC_ENV}")

# --- etlua.json against Python's json ------------------------------------------------------------
# tests/json/compare_python.py: 20,000 generated documents (half of them mutated, mostly invalid)
# decoded by etlua.json (this build's etlua.so under lua5.4) and by Python's json module as the
# oracle; every difference in value, subtype or acceptance fails. (test_json.c, json_spec.lua
# and fuzz_json.c are picked up by the globs of their sections.)
add_test(NAME json.python
         COMMAND ${ETLUA_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/json/compare_python.py ${ETLUA_LUA54}
                 ${CMAKE_BINARY_DIR} 20000)
set_tests_properties(json.python PROPERTIES
  FIXTURES_REQUIRED etlua_lua_module LABELS "unit" TIMEOUT 120
  ENVIRONMENT "${ETLUA_SPEC_ENV}")

# --- Postgres sink ------------------------------------------------------------------------------
# etlua.pg + etlua.sink against a throwaway cluster (tests/harness/pg.sh), busted under lua5.4.
add_test(NAME integration.sink
         COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/sink.sh ${CMAKE_BINARY_DIR})
set_tests_properties(integration.sink PROPERTIES LABELS "integration;postgres" TIMEOUT 180)

# --- integration (real Postgres + SQS emulators) -----------------------------------------------
# Each script starts its own throwaway Postgres and emulators on 127.0.0.1 and stops them.
function(etlua_integration name timeout)
  add_test(NAME integration.${name} COMMAND bash ${ARGN})
  set_tests_properties(integration.${name} PROPERTIES LABELS "integration" TIMEOUT ${timeout}
    ENVIRONMENT "ETLUA_BIN=$<TARGET_FILE:etlua>")
endfunction()
set(IT ${CMAKE_SOURCE_DIR}/tests/integration)
etlua_integration(drain.fauxqs.json 300 ${IT}/drain.sh fauxqs json 3000)
etlua_integration(drain.local-aws-sqs.query 300 ${IT}/drain.sh local-aws-sqs query 3000)
# The second pipeline (scripts/purchases_etl.lua) end to end on both emulators: upserts ordered by
# updated_at under late corrections, fan-out, SNS envelope and duplicates, drops, jsonb [], big
# integers, against the oracle of tests/integration/purchases.py.
etlua_integration(purchases.fauxqs.json 300 ${IT}/purchases.sh fauxqs json 300)
etlua_integration(purchases.local-aws-sqs.query 300 ${IT}/purchases.sh local-aws-sqs query 300)
# ctx.message: id, group, sequence number, receive count, times, message attributes (a FIFO
# queue on fauxqs json; a standard queue on local-aws-sqs query).
etlua_integration(message.fauxqs.json 120 ${IT}/message.sh fauxqs json)
etlua_integration(message.local-aws-sqs.query 120 ${IT}/message.sh local-aws-sqs query)
etlua_integration(detect 120 ${IT}/detect.sh)
etlua_integration(errors 180 ${IT}/errors.sh)
# integration.secrets: random hostile passwords (@ / : ? # % quotes) and AWS keys, every line
# etlua writes checked for any 4-character piece of a password, 8 of a key.
etlua_integration(secrets 180 ${IT}/secrets.sh)
etlua_integration(redelivery 120 ${IT}/redelivery.sh)
# integration.ledger: a redelivery after partition boundaries, --input twice, the upgrade of the
# unpartitioned ledger, and a service with a 60 s retention whose ledger stays bounded (~3 min).
etlua_integration(ledger 300 ${IT}/ledger.sh 120)
# integration.ledger.fifo: a FIFO consumer whose receipts went stale commits, receives the same
# messages again after 1 s partitions have passed, and lands each once, in group order.
etlua_integration(ledger.fifo 120 ${IT}/ledger_fifo.sh)
etlua_integration(input 120 ${IT}/input.sh)
etlua_integration(stop 180 ${IT}/stop.sh)
etlua_integration(stop_release 240 ${IT}/stop_release.sh)
etlua_integration(fifo 240 ${IT}/fifo.sh 1200 10)
etlua_integration(reload 180 ${IT}/reload.sh)
etlua_integration(progress 120 ${IT}/progress.sh)
# integration.pii_rejects: the pii corpus (spec/data/pii_corpus.jsonl: hostile bodies hiding raw
# pii, 1 MiB runs included) through fauxqs, --input and --dry-run; oracle.py --pii-leaks finds
# no secret in any stored detail, body or log line, within a time bound.
etlua_integration(pii_rejects 300 ${IT}/pii_rejects.sh)
# integration.sandbox: a rule looping forever, or a pattern backtracking, on one message is a
# script_timeout reject (the rest lands); escape attempts from a rule come back empty; SIGTERM
# inside the loop or the pattern exits in ~1 s.
etlua_integration(sandbox 240 ${IT}/sandbox.sh)

# --- fuzz (libFuzzer, clang; ETLUA_FUZZ=ON) -----------------------------------------------------
# Every tests/fuzz/fuzz_<name>.c is a libFuzzer target (ASan + UBSan) linked against
# etlua_core_fuzz: the sources of etlua_core compiled again with coverage instrumentation.
# tests/fuzz/run.sh [SECONDS] configures its own clang build dir with ETLUA_FUZZ=ON, builds the
# targets and runs each on its seed corpus (tests/fuzz/corpus/<name>/); fuzz.smoke runs it for
# 5 s per target from any build (gcc included). Exit 77 (skipped) when clang is not installed.
if(ETLUA_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ETLUA_FUZZ=ON needs clang (configure with CC=clang)")
  endif()
  set(ETLUA_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined
                     -fno-omit-frame-pointer -g)
  add_library(etlua_core_fuzz STATIC ${ETLUA_CORE_SOURCES} ${EMBEDDED_C})
  target_compile_options(etlua_core_fuzz PRIVATE -fsanitize=fuzzer-no-link ${ETLUA_FUZZ_SAN})
  target_include_directories(etlua_core_fuzz PUBLIC ${CMAKE_SOURCE_DIR}/include)
  target_compile_definitions(etlua_core_fuzz PUBLIC ETLUA_VERSION="${PROJECT_VERSION}"
                             ETLUA_SANITIZE=1) # src/lua_alloc.c: every block to malloc
  target_link_libraries(etlua_core_fuzz PUBLIC PkgConfig::LUA PkgConfig::CURL PkgConfig::PQ
                        PkgConfig::CRYPTO PkgConfig::EXPAT PkgConfig::MHD Threads::Threads m)
  add_custom_target(fuzz)
  file(GLOB ETLUA_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  foreach(f ${ETLUA_FUZZ_TARGETS})
    get_filename_component(name ${f} NAME_WE)
    add_executable(${name} ${f})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${ETLUA_FUZZ_SAN})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE etlua_core_fuzz)
    add_dependencies(fuzz ${name})
  endforeach()
endif()
add_test(NAME fuzz.smoke COMMAND ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh 5)
set_tests_properties(fuzz.smoke PROPERTIES
  LABELS "fuzz" TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "ETLUA_FUZZ_BUILD=${CMAKE_BINARY_DIR}/fuzz-build")

# --- fault tests ---------------------------------------------------------------------------------
# tests/faults/*.sh at CI sizes: each starts its own Postgres + fauxqs on 127.0.0.1 (and the
# fault proxy), breaks something mid-drain and checks exactness with check_tables.py.
# faults.slow_sink: a commit blocked on a lock for 15 s with a 5 s visibility timeout; the
# visibility heartbeat must keep the messages from a second consumer (no redelivery at all).
# They caught (and now guard against): a reconnect budget too short for a 10 s Postgres outage,
# and un-retried start-up SQS requests.
foreach(fault_test kill9 pg_outage pg_crash sqs_faults slow_sink)
  set(fault_name ${fault_test})
  if(fault_test STREQUAL "sqs_faults")
    set(fault_name sqs_proxy)
  endif()
  add_test(NAME faults.${fault_name} COMMAND ${CMAKE_SOURCE_DIR}/tests/faults/${fault_test}.sh)
  set_tests_properties(faults.${fault_name} PROPERTIES
    LABELS "faults;integration" TIMEOUT 300 RUN_SERIAL TRUE
    ENVIRONMENT "ETLUA_BIN=${CMAKE_BINARY_DIR}/etlua")
endforeach()

# --- metrics -------------------------------------------------------------------------------------
# c.test_metrics (from the tests/c glob above): the exact exposition text of a small registry,
# escaping, histograms, the constant label, the process metrics moving at scrape time while the
# main thread is busy, bind errors, a real scrape over a socket. integration.metrics: --metrics
# on a drain of 20,000 messages scraped during and after it, counters compared with the tables,
# /readyz 503 while Postgres is paused, the queue depth during and after the drain, the last
# commit time advancing, the pipeline label, every known reject reason at 0 on the first scrape,
# deploy/'s alert rules and dashboard against the scrape; every scrape checked by
# tests/integration/prom_check.py.
etlua_integration(metrics 300 ${IT}/metrics.sh 20000)

# --- tls and memcheck ------------------------------------------------------------------------------
# integration.tls: https verified (self-signed CA refused by default, accepted with AWS_CA_BUNDLE).
etlua_integration(tls 180 ${CMAKE_SOURCE_DIR}/tests/integration/tls.sh)
# memcheck.drain: a drain with hostile bodies and the C unit tests under valgrind memcheck
# (errors and definite leaks fail); in a sanitizer build it builds a plain etlua of its own.
add_test(NAME memcheck.drain COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/memcheck.sh)
set_tests_properties(memcheck.drain PROPERTIES LABELS "integration;memcheck" TIMEOUT 900
  SKIP_RETURN_CODE 77
  ENVIRONMENT "ETLUA_BIN=$<TARGET_FILE:etlua>;ETLUA_MEMCHECK_BUILD=${CMAKE_BINARY_DIR}/memcheck-build")
# integration.batch_entries.*: ReceiptHandleIsInvalid and partial failures of
# ChangeMessageVisibilityBatch / DeleteMessageBatch handled entry by entry (local-aws-sqs).
etlua_integration(batch_entries.json 120 ${CMAKE_SOURCE_DIR}/tests/integration/batch_entries.sh json)
etlua_integration(batch_entries.query 120 ${CMAKE_SOURCE_DIR}/tests/integration/batch_entries.sh query)

# --- vault and scale-out --------------------------------------------------------------------------
# integration.vault: drain with ETLUA_VAULT_KEY → reveal round trip (IPv6, IPv4, device_id), wrong
# key / tampered / moved / truncated rows fail in one line, no plaintext in a dump of the vault,
# the README's analyst GRANTs, --reencrypt, and nothing stored without the key. (test_vault.c is
# picked up by the C unit tests' glob.)
# integration.scale: 1 vs 4 competing processes on one queue, exactness after each, both rates
# printed; 10,000 messages here (the issue's 50,000: tests/integration/scale.sh 50000 4).
# deploy.validate: the manifests parse and keep their promises; systemd-analyze verify; the
# example alert rules pass promtool check/test rules; the alert rules and the Grafana dashboard
# use only metrics a real scrape of this build's etlua exports (deploy/check_monitoring.py).
etlua_integration(vault 180 ${IT}/vault.sh)
etlua_integration(scale 180 ${IT}/scale.sh 10000 4)
set_tests_properties(integration.scale PROPERTIES RUN_SERIAL TRUE)
add_test(NAME deploy.validate COMMAND bash ${CMAKE_SOURCE_DIR}/deploy/validate.sh $<TARGET_FILE:etlua>)
set_tests_properties(deploy.validate PROPERTIES LABELS "unit")
