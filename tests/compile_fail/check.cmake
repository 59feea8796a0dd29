# Usage: cmake -DCC=… -DFLAGS=… -DINC1=… -DINC2=… -DSRC=file.c [-DSTD=…] -P check.cmake
# The file must compile with -DAK_CONTROL (the offending line removed) and
# must fail to compile without it. Files named ok_*.c must simply compile.
# STD defaults to -std=c11; the C++ run passes "-x;c++;-std=c++17".
if(NOT DEFINED STD)
  set(STD -std=c11)
endif()
set(args ${FLAGS} ${STD} -Wall -Wextra -Wpedantic -fsyntax-only -I${INC1} -I${INC2})
execute_process(COMMAND ${CC} ${args} -DAK_CONTROL ${SRC}
  RESULT_VARIABLE rc_ok OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc_ok EQUAL 0)
  message(FATAL_ERROR "control build of ${SRC} failed (the test would prove nothing):\n${out}")
endif()
get_filename_component(name ${SRC} NAME)
if(name MATCHES "^ok_")
  message(STATUS "${name}: compiles, as it must")
  return()
endif()
execute_process(COMMAND ${CC} ${args} ${SRC}
  RESULT_VARIABLE rc_bad OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc_bad EQUAL 0)
  message(FATAL_ERROR "${name} compiled, but it must be rejected")
endif()
message(STATUS "${name}: rejected, as it must be:\n${out}")
