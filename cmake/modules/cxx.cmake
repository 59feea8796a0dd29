# C++ consumers (issue 15): the C++ unit test, the mixed C/C++ test, the
# header matrix (C++17/20/23, g++ and clang++) and the compile_fail files
# again as C++. C++ is optional: cmake/cxx_compiler.cmake sets AK_HAVE_CXX.
if(AK_BUILD_TESTS AND AK_HAVE_CXX)
  set(_ak_cxx_dir ${PROJECT_SOURCE_DIR}/tests/cxx)
  foreach(t cxx_every_module cxx_mixed)
    if(t STREQUAL cxx_every_module)
      add_executable(${t} ${_ak_cxx_dir}/every_module.cpp)
    else()
      add_executable(${t} ${_ak_cxx_dir}/mixed_cxx.cpp ${_ak_cxx_dir}/mixed_c.c)
    endif()
    set_target_properties(${t} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
      CXX_EXTENSIONS OFF)
    target_link_libraries(${t} PRIVATE atomkit_static)
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
    target_compile_options(${t} PRIVATE ${AK_WARNINGS})
    target_compile_definitions(${t} PRIVATE _GNU_SOURCE)
    add_test(NAME ${t} COMMAND ${t})
    set_tests_properties(${t} PROPERTIES TIMEOUT 120 LABELS "unit;cxx")
  endforeach()

  # The header matrix: the configured C++ compiler (with CMAKE_CXX_FLAGS)
  # and, on a native build, the other of g++/clang++ when installed.
  set(_ak_cxxs ${CMAKE_CXX_COMPILER})
  if(NOT CMAKE_CROSSCOMPILING AND NOT CMAKE_CXX_FLAGS)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      find_program(_ak_other_cxx NAMES clang++ NO_CACHE)
    else()
      find_program(_ak_other_cxx NAMES g++ NO_CACHE)
    endif()
    if(_ak_other_cxx)
      list(APPEND _ak_cxxs ${_ak_other_cxx})
    endif()
  endif()
  separate_arguments(_ak_cxxflags UNIX_COMMAND "${CMAKE_CXX_FLAGS}")
  add_test(NAME cxx_headers
    COMMAND ${CMAKE_COMMAND} "-DCXXS=${_ak_cxxs}" "-DFLAGS=${_ak_cxxflags}"
      -DINC1=${PROJECT_SOURCE_DIR}/include -DINC2=${PROJECT_BINARY_DIR}/include
      -DDIR=${_ak_cxx_dir} -P ${_ak_cxx_dir}/headers.cmake)
  set_tests_properties(cxx_headers PROPERTIES TIMEOUT 900 LABELS "compile_fail;cxx")

  # compile_fail, again as C++17: the same misuse is rejected in C++.
  file(GLOB _ak_cf CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/compile_fail/*.c)
  foreach(src ${_ak_cf})
    get_filename_component(n ${src} NAME_WE)
    add_test(NAME compile_fail_cxx_${n}
      COMMAND ${CMAKE_COMMAND}
        -DCC=${CMAKE_CXX_COMPILER} "-DFLAGS=${_ak_cxxflags}" "-DSTD=-x;c++;-std=c++17"
        -DINC1=${PROJECT_SOURCE_DIR}/include -DINC2=${PROJECT_BINARY_DIR}/include
        -DSRC=${src} -P ${PROJECT_SOURCE_DIR}/tests/compile_fail/check.cmake)
    set_tests_properties(compile_fail_cxx_${n} PROPERTIES LABELS "compile_fail;cxx")
  endforeach()
endif()
