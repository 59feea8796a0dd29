# seqlock: in a ThreadSanitizer build, prove that TSan sees what the seqlock
# avoids. tests/stress/seqlock_torn.c built with -DAK_SEQLOCK_MEMCPY copies the
# data with plain memcpy under the same sequence protocol (the textbook
# seqlock); that is a data race in the C11 model, and TSan must report it.
# The test passes only if TSan's report appears. (The atomkit seqlock itself
# runs clean under TSan in stress_seqlock_torn.)
if(AK_BUILD_TESTS AND CMAKE_C_FLAGS MATCHES "-fsanitize=thread")
  add_executable(seqlock_memcpy_variant ${PROJECT_SOURCE_DIR}/tests/stress/seqlock_torn.c)
  target_link_libraries(seqlock_memcpy_variant PRIVATE atomkit_static)
  target_include_directories(seqlock_memcpy_variant PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(seqlock_memcpy_variant PRIVATE ${AK_WARNINGS})
  target_compile_definitions(seqlock_memcpy_variant PRIVATE _GNU_SOURCE AK_SEQLOCK_MEMCPY=1)
  add_test(NAME tsan_reports_seqlock_memcpy COMMAND seqlock_memcpy_variant 1 2)
  set_tests_properties(tsan_reports_seqlock_memcpy PROPERTIES TIMEOUT 120 LABELS seen_failing
    PASS_REGULAR_EXPRESSION "WARNING: ThreadSanitizer: data race"
    ENVIRONMENT "TSAN_OPTIONS=halt_on_error=0")
endif()
