# Finds the optional C++ compiler for the C++ tests, matched to the C one.
#  - No CMAKE_CXX_COMPILER (and no $CXX): the C compiler's sibling, so a
#    clang build tests clang++ and a cross gcc tests the cross g++
#    (clang -> clang++, gcc -> g++, aarch64-linux-gnu-gcc -> ...-g++).
#  - No CMAKE_CXX_FLAGS (and no $CXXFLAGS): CMAKE_C_FLAGS, so -m32 or
#    -fsanitize=... given for C also builds (and links) the C++ tests.
# Sets AK_HAVE_CXX. Without a C++ compiler: one STATUS line, C++ tests skipped.
include(CheckLanguage)
if(NOT DEFINED CMAKE_CXX_COMPILER AND NOT DEFINED ENV{CXX} AND CMAKE_C_COMPILER)
  get_filename_component(_ak_cc_dir "${CMAKE_C_COMPILER}" DIRECTORY)
  get_filename_component(_ak_cc_name "${CMAKE_C_COMPILER}" NAME)
  set(_ak_cxx_name "")
  if(_ak_cc_name MATCHES "^(.*)clang(-[0-9.]+)?$")
    set(_ak_cxx_name "${CMAKE_MATCH_1}clang++${CMAKE_MATCH_2}")
  elseif(_ak_cc_name MATCHES "^(.*)gcc(-[0-9.]+)?$")
    set(_ak_cxx_name "${CMAKE_MATCH_1}g++${CMAKE_MATCH_2}")
  endif()
  if(_ak_cxx_name)
    find_program(_ak_cxx_sibling NAMES ${_ak_cxx_name} HINTS "${_ak_cc_dir}" NO_CACHE)
    if(_ak_cxx_sibling)
      set(CMAKE_CXX_COMPILER "${_ak_cxx_sibling}")
    endif()
  endif()
endif()
if(NOT DEFINED CMAKE_CXX_FLAGS AND NOT DEFINED ENV{CXXFLAGS} AND CMAKE_C_FLAGS)
  message(STATUS "atomkit: CMAKE_CXX_FLAGS not given: the C++ tests use CMAKE_C_FLAGS (${CMAKE_C_FLAGS})")
  set(CMAKE_CXX_FLAGS "${CMAKE_C_FLAGS}" CACHE STRING "Flags used by the C++ compiler")
endif()
check_language(CXX)
if(CMAKE_CXX_COMPILER)
  enable_language(CXX)
  set(AK_HAVE_CXX ON)
else()
  set(AK_HAVE_CXX OFF)
  message(STATUS "atomkit: no C++ compiler: the C++ tests (tests/cxx, C++ compile_fail) are skipped")
endif()
