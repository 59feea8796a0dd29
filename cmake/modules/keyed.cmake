# keyed.cmake — the keyed limiter's build extras.
#
# 1. unit_keyed_noalloc counts allocations through link-time interposition
#    (GNU ld --wrap): every malloc-family call the library makes after init
#    would be seen.
# 2. akbench's "keyed" scenario compares against liburcu's lock-free hash
#    table (cds_lfht, pkg-config module liburcu-cds) with the memb flavour
#    (liburcu-memb); without them its column is skipped.
if(AK_BUILD_TESTS AND TARGET unit_keyed_noalloc)
  target_link_options(unit_keyed_noalloc PRIVATE
    -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
    -Wl,--wrap=aligned_alloc -Wl,--wrap=posix_memalign)
endif()

if(TARGET akbench)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(URCU_CDS QUIET IMPORTED_TARGET liburcu-cds)
  endif()
  if(URCU_CDS_FOUND AND URCU_MEMB_FOUND)
    target_compile_definitions(akbench PRIVATE AK_HAVE_URCU_CDS=1)
    target_link_libraries(akbench PRIVATE PkgConfig::URCU_CDS PkgConfig::URCU_MEMB)
  else()
    message(STATUS "atomkit: liburcu-cds not found: the keyed scenario's cds_lfht column is skipped (apt-get install liburcu-dev)")
  endif()
endif()
