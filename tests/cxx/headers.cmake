# Every public header compiles as C++17, C++20 and C++23 at
# -Wall -Wextra -Wpedantic -Werror, with each C++ compiler given.
# Usage: cmake -DCXXS="c++;other" -DFLAGS=… -DINC1=… -DINC2=… -DDIR=tests/cxx -P headers.cmake
#  - each header alone first in a TU (self-contained), C++17, first compiler;
#  - the umbrella inside extern "C" { } (how C++ code often wraps C headers);
#  - every_module.cpp and mixed_cxx.cpp (which use every module) as C++17,
#    C++20 and C++23 (spelled c++2b, which gcc 11+ and clang 13+ accept).
file(GLOB headers RELATIVE ${INC1} ${INC1}/atomkit.h ${INC1}/atomkit/*.h)
set(tmp ${CMAKE_CURRENT_BINARY_DIR}/cxx_headers_tmp)
file(MAKE_DIRECTORY ${tmp})
set(warn -Wall -Wextra -Wpedantic -Werror)
set(n 0)
function(try_compile_cxx cxx std src what)
  execute_process(COMMAND ${cxx} ${FLAGS} -x c++ -std=${std} ${warn} -fsyntax-only
      -I${INC1} -I${INC2} -I${DIR}/.. ${src}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${cxx} -std=${std}: ${what} does not compile:\n${out}")
  endif()
  math(EXPR n "${n} + 1")
  set(n ${n} PARENT_SCOPE)
endfunction()
list(GET CXXS 0 first)
foreach(h ${headers})
  string(MAKE_C_IDENTIFIER ${h} id)
  file(WRITE ${tmp}/${id}.cpp "#include <${h}>\nint main() { return 0; }\n")
  try_compile_cxx(${first} c++17 ${tmp}/${id}.cpp "<${h}> alone")
endforeach()
foreach(cxx ${CXXS})
  file(WRITE ${tmp}/wrapped.cpp "extern \"C\" {\n#include <atomkit.h>\n}\nint main() { return 0; }\n")
  foreach(std c++17 c++20 c++2b)
    try_compile_cxx(${cxx} ${std} ${tmp}/wrapped.cpp "<atomkit.h> inside extern \"C\"")
    try_compile_cxx(${cxx} ${std} ${DIR}/every_module.cpp "every_module.cpp")
    try_compile_cxx(${cxx} ${std} ${DIR}/mixed_cxx.cpp "mixed_cxx.cpp")
  endforeach()
  message(STATUS "${cxx}: every header compiles as C++17/20/23")
endforeach()
message(STATUS "${n} passed, 0 failed")
