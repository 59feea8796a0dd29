# tools/akload (the WebSocket load generator) and the make bench-server
# driver: tools/CMakeLists.txt, built into build/tools/.
add_subdirectory(${PROJECT_SOURCE_DIR}/tools ${PROJECT_BINARY_DIR}/tools)
