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

  # Seen failing, library side: the torture test linked against the real
  # library built with one deliberate protocol bug; each must be caught.
  #   AK_BROKEN_SMR_NO_GRACE   reclamation skips the grace period
  #   AK_BROKEN_SMR_QSBR_SKIP  grace periods skip QSBR-online threads
  if(EXISTS ${PROJECT_SOURCE_DIR}/tests/stress/smr_torture.c)
    file(GLOB _ak_all_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*.c)
    foreach(_v no_grace qsbr_skip)
      string(TOUPPER ${_v} _V)
      add_library(atomkit_smr_broken_${_v} STATIC EXCLUDE_FROM_ALL ${_ak_all_src})
      target_include_directories(atomkit_smr_broken_${_v} PUBLIC
        ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
      target_compile_definitions(atomkit_smr_broken_${_v} PRIVATE AK_BROKEN_SMR_${_V}=1)
      target_link_libraries(atomkit_smr_broken_${_v} PUBLIC Threads::Threads)
      add_executable(stress_smr_torture_broken_${_v} ${PROJECT_SOURCE_DIR}/tests/stress/smr_torture.c)
      target_link_libraries(stress_smr_torture_broken_${_v} PRIVATE atomkit_smr_broken_${_v})
      target_include_directories(stress_smr_torture_broken_${_v} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
      target_compile_options(stress_smr_torture_broken_${_v} PRIVATE ${AK_WARNINGS})
      target_compile_definitions(stress_smr_torture_broken_${_v} PRIVATE _GNU_SOURCE)
      if(_v STREQUAL "qsbr_skip")
        # Caught only when the QSBR readers run at native speed (see main()).
        target_compile_definitions(stress_smr_torture_broken_${_v} PRIVATE AK_SEEN_FAILING_NATIVE_ONLY=1)
      endif()
      set_target_properties(stress_smr_torture_broken_${_v} PROPERTIES EXCLUDE_FROM_ALL OFF)
      add_test(NAME seen_failing_smr_torture_library_${_v} COMMAND stress_smr_torture_broken_${_v})
      set_tests_properties(seen_failing_smr_torture_library_${_v} PROPERTIES WILL_FAIL TRUE
        SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "seen_failing;smr" ENVIRONMENT "AK_STRESS_SECONDS=${AK_STRESS_SECONDS}")
    endforeach()
  endif()

  # The Promela model of the grace-period protocol (tests/model/smr.pml),
  # checked by spin: safety and progress in both modes, with and without
  # QSBR threads, must hold, and each deliberately broken protocol must be
  # caught. The driver script is
  # generated here so the module stays in one file.
  find_program(AK_SPIN spin)
  if(AK_SPIN AND EXISTS ${PROJECT_SOURCE_DIR}/tests/model/smr.pml)
    set(_ak_spin_script ${CMAKE_CURRENT_BINARY_DIR}/ak_check_spin.cmake)
    file(WRITE ${_ak_spin_script} [=[
# Runs one spin check per entry; each: name|spin defines|safety or progress|pass or fail
cmake_policy(VERSION 3.20)
set(checks
  "safety_membarrier|-DMB=1|safety|pass"
  "safety_fallback|-DMB=0|safety|pass"
  "progress_membarrier|-DMB=1|progress|pass"
  "progress_fallback|-DMB=0|progress|pass"
  "broken_no_barrier|-DBROKEN_NO_BARRIER|safety|fail"
  "broken_no_wait|-DBROKEN_NO_WAIT|safety|fail"
  "broken_wait_zero|-DBROKEN_WAIT_ZERO|progress|fail"
  "safety_mix_membarrier|-DMB=1 -DMIX=1|safety|pass"
  "safety_qsbr_membarrier|-DMB=1 -DMIX=2|safety|pass"
  "safety_qsbr_fallback|-DMB=0 -DMIX=2|safety|pass"
  "progress_qsbr|-DMB=1 -DMIX=2|progress|pass"
  "broken_qsbr_skip|-DMB=1 -DMIX=1 -DBROKEN_QSBR_SKIP|safety|fail"
  "broken_qsbr_early|-DMB=1 -DMIX=2 -DBROKEN_QSBR_EARLY|safety|fail"
  "broken_qsbr_plain|-DMB=1 -DMIX=2 -DBROKEN_QSBR_PLAIN|safety|fail")
set(bad 0)
foreach(c ${checks})
  string(REPLACE "|" ";" f "${c}")
  list(GET f 0 name)
  list(GET f 1 defs)
  list(GET f 2 kind)
  list(GET f 3 expect)
  set(d ${WORK}/${name})
  file(REMOVE_RECURSE ${d})
  file(MAKE_DIRECTORY ${d})
  file(COPY ${MODEL} DESTINATION ${d})
  get_filename_component(m ${MODEL} NAME)
  separate_arguments(defl UNIX_COMMAND "${defs}")
  execute_process(COMMAND ${SPIN} ${defl} -a ${m} WORKING_DIRECTORY ${d}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(SEND_ERROR "${name}: spin -a failed: ${out}")
    math(EXPR bad "${bad}+1")
    continue()
  endif()
  if(kind STREQUAL "safety")
    set(cflags -DSAFETY -DNOCLAIM)
    set(pflags -m200000)
  else()
    set(cflags -DNFAIR=3)
    set(pflags -a -f -m200000)
  endif()
  execute_process(COMMAND ${CC} -w -O0 ${cflags} -o pan pan.c WORKING_DIRECTORY ${d}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(SEND_ERROR "${name}: compiling pan failed: ${out}")
    math(EXPR bad "${bad}+1")
    continue()
  endif()
  execute_process(COMMAND ./pan ${pflags} WORKING_DIRECTORY ${d}
    OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(REGEX MATCH "errors: ([0-9]+)" mm "${out}")
  set(errs "${CMAKE_MATCH_1}")
  string(REGEX MATCH "([0-9]+) states, stored" ss "${out}")
  if(errs STREQUAL "")
    message(SEND_ERROR "${name}: no verdict from pan:
${out}")
    math(EXPR bad "${bad}+1")
  elseif(expect STREQUAL "pass" AND NOT errs EQUAL 0)
    message(SEND_ERROR "${name}: spin found ${errs} error(s):
${out}")
    math(EXPR bad "${bad}+1")
  elseif(expect STREQUAL "fail" AND errs EQUAL 0)
    message(SEND_ERROR "${name}: the broken protocol was NOT caught:
${out}")
    math(EXPR bad "${bad}+1")
  else()
    message(STATUS "${name}: ${kind}, expected ${expect}: ok (errors: ${errs}, ${ss})")
  endif()
endforeach()
if(bad GREATER 0)
  message(FATAL_ERROR "${bad} model check(s) failed")
endif()
]=])
    # pan is a host program: in a cross build, compile it with the host cc.
    set(_ak_pan_cc ${CMAKE_C_COMPILER})
    if(CMAKE_CROSSCOMPILING)
      find_program(AK_HOST_CC NAMES cc gcc clang NO_CMAKE_FIND_ROOT_PATH)
      set(_ak_pan_cc ${AK_HOST_CC})
    endif()
    add_test(NAME model_smr COMMAND ${CMAKE_COMMAND}
      -DSPIN=${AK_SPIN} -DCC=${_ak_pan_cc}
      -DMODEL=${PROJECT_SOURCE_DIR}/tests/model/smr.pml
      -DWORK=${CMAKE_CURRENT_BINARY_DIR}/model_smr
      -P ${_ak_spin_script})
    set_tests_properties(model_smr PROPERTIES TIMEOUT 300 LABELS "model;smr")
  elseif(NOT AK_SPIN)
    message(STATUS "atomkit: spin not found: the smr Promela model check is skipped (apt-get install spin)")
  endif()
endif()

if(AK_BUILD_TESTS AND TARGET unit_smr_api)
  # The fork case runs as its own test (both read-side paths), so a run where
  # it cannot work (qemu-user) reports it skipped, never passed.
  add_test(NAME unit_smr_api_fork COMMAND unit_smr_api fork)
  add_test(NAME unit_smr_api_fork_fallback COMMAND unit_smr_api fork)
  set_tests_properties(unit_smr_api_fork unit_smr_api_fork_fallback PROPERTIES
    TIMEOUT 120 LABELS "unit;smr" SKIP_RETURN_CODE 77)
  set_tests_properties(unit_smr_api_fork_fallback PROPERTIES ENVIRONMENT "AK_SMR_FORCE_FALLBACK=1")
endif()

# akbench's liburcu-qsbr peer (config-read row "liburcu-qsbr"), detected
# beside liburcu-memb. Its own source file: liburcu's flavour headers cannot
# share a translation unit.
if(AK_BUILD_BENCH AND TARGET akbench)
  target_sources(akbench PRIVATE ${PROJECT_SOURCE_DIR}/bench/peer_urcu_qsbr.c)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(URCU_QSBR QUIET IMPORTED_TARGET liburcu-qsbr)
  endif()
  if(URCU_QSBR_FOUND)
    target_compile_definitions(akbench PRIVATE AK_HAVE_URCU_QSBR=1)
    target_link_libraries(akbench PRIVATE PkgConfig::URCU_QSBR)
  else()
    message(STATUS "atomkit: liburcu-qsbr not found: its bench row is skipped (apt-get install liburcu-dev)")
  endif()
endif()

# smr_readcost: the read loops of atomkit (sections and QSBR) and liburcu-memb
# in CPU time per read, side by side (doc/smr.md, "Performance").
if(AK_BUILD_BENCH AND URCU_MEMB_FOUND)
  add_executable(smr_readcost ${PROJECT_SOURCE_DIR}/bench/smr_readcost.c)
  target_link_libraries(smr_readcost PRIVATE atomkit_static PkgConfig::URCU_MEMB)
  target_compile_options(smr_readcost PRIVATE ${AK_WARNINGS})
  set_target_properties(smr_readcost PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
endif()
