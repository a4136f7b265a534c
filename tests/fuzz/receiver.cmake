# carebridge-receiver's own parsers (tools/receiver), included by
# tests/fuzz/CMakeLists.txt: JSON request bodies, request targets, the
# patients file.
carebridge_add_fuzz_target(receiver_requests LIBS cb_receiver)

# Instrumented Boost.JSON under libFuzzer, as devices.cmake explains.
if(CAREBRIDGE_FUZZ)
  target_compile_definitions(fuzz_receiver_requests PRIVATE CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES=1)
endif()
