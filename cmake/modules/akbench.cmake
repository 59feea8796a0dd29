# akbench's report checks (doc/bench.md): a tiny run with --json and --svg,
# then bench/check_report.py checks the JSON (schema, one sample per rep,
# medians), the SVGs (well-formed XML, one polyline per scheme, axes that
# map faster to higher) and bench/compare. Needs python3; without it the
# test reports itself skipped.
if(AK_BUILD_TESTS AND TARGET akbench)
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(CMAKE_CROSSCOMPILING)
    # The checks are about akbench's own output logic, which every native
    # leg covers; the Python driver cannot exec a foreign binary.
    message(STATUS "atomkit: cross build: test akbench_report is skipped (covered by native builds)")
    add_test(NAME akbench_report COMMAND sh -c "echo 'skipped: cross build'; exit 77")
    set_tests_properties(akbench_report PROPERTIES SKIP_RETURN_CODE 77)
  elseif(Python3_Interpreter_FOUND)
    add_test(NAME akbench_report
      COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/bench/check_report.py
              $<TARGET_FILE:akbench> ${PROJECT_SOURCE_DIR}/bench/compare
              ${CMAKE_CURRENT_BINARY_DIR}/akbench_report_test)
  else()
    message(STATUS "atomkit: python3 not found: test akbench_report is skipped")
    add_test(NAME akbench_report COMMAND sh -c "echo 'skipped: python3 not found (apt-get install python3)'; exit 77")
    set_tests_properties(akbench_report PROPERTIES SKIP_RETURN_CODE 77)
  endif()
  set_tests_properties(akbench_report PROPERTIES TIMEOUT 120 LABELS bench)
endif()
