# value.cmake — the Value module's build extras.
#
# AK_VALUE_STRICT: build the library so that ak_value store/swap/cas misuse
# (nil value, wrong type, NULL object or type) aborts with Go's own panic
# message instead of returning AK_ENIL / AK_ETYPE / AK_EINVAL. Off by default:
# the default library never aborts. ak_value_strict() reports the choice.
option(AK_VALUE_STRICT "ak_value misuse aborts with Go's panic message (default: returns a code)" OFF)
if(AK_VALUE_STRICT)
  target_compile_definitions(atomkit_objects PRIVATE AK_VALUE_STRICT=1)
endif()

if(AK_BUILD_TESTS)
  # The strict mode is tested in every build: the same test source as
  # unit_value_strict, linked against a strict build of src/value.c (its
  # symbols take precedence over the archive's value.o, which then is not
  # linked in). Each misuse case runs in a forked child that must abort with
  # Go's message on stderr.
  add_executable(value_strict_build ${PROJECT_SOURCE_DIR}/tests/unit/value_strict.c
    ${PROJECT_SOURCE_DIR}/src/value.c)
  target_link_libraries(value_strict_build PRIVATE atomkit_static)
  target_include_directories(value_strict_build PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(value_strict_build PRIVATE ${AK_WARNINGS})
  target_compile_definitions(value_strict_build PRIVATE _GNU_SOURCE AK_VALUE_STRICT=1
    AK_EXPECT_STRICT=1)
  add_test(NAME unit_value_strict_build COMMAND value_strict_build)
  set_tests_properties(unit_value_strict_build PROPERTIES TIMEOUT 120 LABELS unit)
endif()
