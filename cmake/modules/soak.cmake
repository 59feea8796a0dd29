# soak: long runs of the torture tests (tests/soak.sh, `make soak DURATION=s`).
# Each torture test is built a second time as soak_<name> with
# tests/soak/monitor.c linked in (an observer thread, active only when
# AK_SOAK_INTERVAL is set: progress lines, leak and growth checks at exit),
# so the torture code is exactly what CTest runs. A 20-second soak is a CTest
# test (label soak); the long run is `make soak`.
# One soak executable: sources, linked like a test, built into build/soak/.
function(ak_soak_exe name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE atomkit_static)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${name} PRIVATE ${AK_WARNINGS})
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/soak)
endfunction()

if(AK_BUILD_TESTS)
  set(_ak_soak_tests smr_torture reload_torture value_readers seqlock_torn counter_sum
    limiter_threads)
  foreach(n ${_ak_soak_tests})
    set(src ${PROJECT_SOURCE_DIR}/tests/stress/${n}.c)
    if(NOT EXISTS ${src})
      message(STATUS "atomkit: soak: ${n}.c not found, left out of the soak run")
      continue()
    endif()
    ak_soak_exe(soak_${n} ${src} ${PROJECT_SOURCE_DIR}/tests/soak/monitor.c)
  endforeach()
  # The stalled-reader measurement (doc/smr.md, "A stalled reader").
  ak_soak_exe(soak_stall ${PROJECT_SOURCE_DIR}/tests/soak/stall.c)
  # Short forms for CTest: a 1 s stall at 10 kHz, and a 20 s soak with 5 s
  # progress intervals (the machine is shared: one process per test at nice).
  add_test(NAME soak_stall_short COMMAND soak_stall 1 10000)
  set_tests_properties(soak_stall_short PROPERTIES TIMEOUT 120 LABELS soak)
  if(NOT CMAKE_CROSSCOMPILING)
    add_test(NAME soak_short
      COMMAND sh ${PROJECT_SOURCE_DIR}/tests/soak.sh ${PROJECT_BINARY_DIR} 20 5)
    set_tests_properties(soak_short PROPERTIES TIMEOUT 300 LABELS soak RUN_SERIAL TRUE
      SKIP_RETURN_CODE 77)
  endif()
endif()
# Seen failing: the monitor must catch a program that leaks descriptors and
# memory (and must not fail the same loop without the leak).
if(AK_BUILD_TESTS)
  foreach(v leaky leaky_control)
    ak_soak_exe(soak_${v} ${PROJECT_SOURCE_DIR}/tests/soak/leaky.c
      ${PROJECT_SOURCE_DIR}/tests/soak/monitor.c)
  endforeach()
  target_compile_definitions(soak_leaky_control PRIVATE AK_CONTROL=1)
  add_test(NAME seen_failing_soak_monitor_leak COMMAND soak_leaky 5)
  set_tests_properties(seen_failing_soak_monitor_leak PROPERTIES WILL_FAIL TRUE TIMEOUT 60
    LABELS "soak;seen_failing" ENVIRONMENT "AK_SOAK_INTERVAL=1")
  add_test(NAME soak_monitor_control COMMAND soak_leaky_control 5)
  set_tests_properties(soak_monitor_control PROPERTIES TIMEOUT 60 LABELS soak
    ENVIRONMENT "AK_SOAK_INTERVAL=1")
endif()
