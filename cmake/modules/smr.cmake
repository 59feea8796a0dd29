# smr: safe memory reclamation — options, both read-side paths, broken
# library variant, and the Promela model check.

option(AK_SMR_FORCE_FALLBACK "smr: readers always fence (never use membarrier)" OFF)
if(AK_SMR_FORCE_FALLBACK)
  target_compile_definitions(atomkit_objects PRIVATE AK_SMR_FORCE_FALLBACK=1)
endif()

if(AK_BUILD_TESTS)
  # Every smr test runs twice: as globbed (membarrier path where the kernel
  # allows it) and again with the fence path forced through the environment.
  file(GLOB _ak_smr_tests CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/tests/unit/smr_*.c ${PROJECT_SOURCE_DIR}/tests/stress/smr_*.c)
  foreach(src ${_ak_smr_tests})
    get_filename_component(n ${src} NAME_WE)
    get_filename_component(d ${src} DIRECTORY)
    get_filename_component(kind ${d} NAME)
    if(kind STREQUAL "unit")
      set(t unit_${n})
    else()
      set(t stress_${n})
    endif()
    add_test(NAME ${t}_fallback COMMAND ${t})
    set_tests_properties(${t}_fallback PROPERTIES TIMEOUT 300 LABELS "${kind};smr"
      ENVIRONMENT "AK_SMR_FORCE_FALLBACK=1;AK_STRESS_SECONDS=${AK_STRESS_SECONDS}")
  endforeach()

  # Seen failing, library side: the real library with the grace-period wait
  # removed from reclamation (AK_BROKEN_SMR_NO_GRACE). The torture test must
  # catch it.
  if(EXISTS ${PROJECT_SOURCE_DIR}/tests/stress/smr_torture.c)
    file(GLOB _ak_all_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*.c)
    add_library(atomkit_smr_broken_no_grace STATIC EXCLUDE_FROM_ALL ${_ak_all_src})
    target_include_directories(atomkit_smr_broken_no_grace PUBLIC
      ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
    target_compile_definitions(atomkit_smr_broken_no_grace PRIVATE AK_BROKEN_SMR_NO_GRACE=1)
    target_link_libraries(atomkit_smr_broken_no_grace PUBLIC Threads::Threads)
    add_executable(stress_smr_torture_broken_no_grace ${PROJECT_SOURCE_DIR}/tests/stress/smr_torture.c)
    target_link_libraries(stress_smr_torture_broken_no_grace PRIVATE atomkit_smr_broken_no_grace)
    target_include_directories(stress_smr_torture_broken_no_grace PRIVATE ${PROJECT_SOURCE_DIR}/tests)
    target_compile_options(stress_smr_torture_broken_no_grace PRIVATE ${AK_WARNINGS})
    target_compile_definitions(stress_smr_torture_broken_no_grace PRIVATE _GNU_SOURCE)
    set_target_properties(stress_smr_torture_broken_no_grace PROPERTIES EXCLUDE_FROM_ALL OFF)
    add_test(NAME seen_failing_smr_torture_library_no_grace COMMAND stress_smr_torture_broken_no_grace)
    set_tests_properties(seen_failing_smr_torture_library_no_grace PROPERTIES WILL_FAIL TRUE
      TIMEOUT 300 LABELS "seen_failing;smr" ENVIRONMENT "AK_STRESS_SECONDS=${AK_STRESS_SECONDS}")
  endif()

  # The Promela model of the grace-period protocol (tests/model/smr.pml).
  find_program(AK_SPIN spin)
  if(AK_SPIN AND EXISTS ${PROJECT_SOURCE_DIR}/tests/model/smr.pml)
    add_test(NAME model_smr COMMAND ${CMAKE_COMMAND}
      -DSPIN=${AK_SPIN} -DCC=${CMAKE_C_COMPILER}
      -DMODEL=${PROJECT_SOURCE_DIR}/tests/model/smr.pml
      -DWORK=${CMAKE_CURRENT_BINARY_DIR}/model_smr
      -P ${PROJECT_SOURCE_DIR}/tests/model/check_spin.cmake)
    set_tests_properties(model_smr PROPERTIES TIMEOUT 300 LABELS "model;smr")
  elseif(NOT AK_SPIN)
    message(STATUS "atomkit: spin not found: the smr Promela model check is skipped (apt-get install spin)")
  endif()
endif()
