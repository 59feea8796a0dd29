# ABI check (issue 15): libatomkit.so's exported symbols against the one
# committed list, debian/libatomkit0.symbols (which the Debian build checks
# too). Adding a symbol is a deliberate edit of that list; removing one
# needs a SONAME bump (README, "ABI policy").
if(AK_BUILD_TESTS)
  if(CMAKE_NM AND EXISTS ${PROJECT_SOURCE_DIR}/debian/libatomkit0.symbols)
    add_test(NAME abi_symbols
      COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DLIB=$<TARGET_FILE:atomkit>
        -DSONAME=$<TARGET_SONAME_FILE_NAME:atomkit>
        -DLIST=${PROJECT_SOURCE_DIR}/debian/libatomkit0.symbols
        -P ${PROJECT_SOURCE_DIR}/tests/abi/check_symbols.cmake)
    set_tests_properties(abi_symbols PROPERTIES LABELS "unit;abi")
    # Seen failing: the same check against the list with one symbol dropped
    # (as if a call were added without its line) must fail.
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
      ${PROJECT_SOURCE_DIR}/debian/libatomkit0.symbols)
    file(READ ${PROJECT_SOURCE_DIR}/debian/libatomkit0.symbols _ak_syms)
    string(REGEX REPLACE "\n ak_version@Base [^\n]*" "" _ak_syms "${_ak_syms}")
    file(WRITE ${PROJECT_BINARY_DIR}/abi_list_missing_one.symbols "${_ak_syms}")
    add_test(NAME seen_failing_abi_symbols_unlisted
      COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DLIB=$<TARGET_FILE:atomkit>
        -DSONAME=$<TARGET_SONAME_FILE_NAME:atomkit>
        -DLIST=${PROJECT_BINARY_DIR}/abi_list_missing_one.symbols
        -P ${PROJECT_SOURCE_DIR}/tests/abi/check_symbols.cmake)
    # (It must fail for that reason, not because nm failed: match the message.)
    set_tests_properties(seen_failing_abi_symbols_unlisted PROPERTIES
      PASS_REGULAR_EXPRESSION "new exported symbol ak_version" LABELS "seen_failing;abi")
  else()
    message(STATUS "atomkit: no nm (or no symbols list): the ABI check is skipped")
  endif()
endif()
