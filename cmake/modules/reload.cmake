# reload module extras.
# - examples/hotconfig end to end (only when the example was built, i.e.
#   libinih was found and examples/CMakeLists.txt adds the subdirectory).
if(AK_BUILD_TESTS AND TARGET hotconfig)
  add_test(NAME example_hotconfig
    COMMAND sh ${PROJECT_SOURCE_DIR}/examples/hotconfig/smoke_test.sh $<TARGET_FILE:hotconfig>)
  set_tests_properties(example_hotconfig PROPERTIES TIMEOUT 60 LABELS example)
endif()
