# Device-payload parsers (protocol/devices), included by tests/fuzz/CMakeLists.txt.
carebridge_add_fuzz_target(device_reading LIBS cb_protocol_devices)

# Under libFuzzer, compile Boost.JSON's sources into the fuzz binary
# (<boost/json/src.hpp>, same 1.81 version as the Debian library) so that the
# JSON parser is instrumented too and coverage guides the fuzzer through it;
# the executable's definitions take precedence over libboost_json.so's.
if(CAREBRIDGE_FUZZ)
  target_compile_definitions(fuzz_device_reading PRIVATE CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES=1)
endif()
