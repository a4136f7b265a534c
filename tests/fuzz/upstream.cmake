# Upstream parsers (protocol/upstream), included by tests/fuzz/CMakeLists.txt:
# the FHIR bundle the reference receiver checks, and the bundle signature.
carebridge_add_fuzz_target(upstream_bundle LIBS cb_protocol_upstream)
carebridge_add_fuzz_target(upstream_jws LIBS cb_protocol_upstream OpenSSL::Crypto)

# Instrumented Boost.JSON under libFuzzer, as devices.cmake explains.
if(CAREBRIDGE_FUZZ)
  target_compile_definitions(fuzz_upstream_bundle PRIVATE CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES=1)
  target_compile_definitions(fuzz_upstream_jws PRIVATE CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES=1)
endif()

# What the gateway reads in the platform's answers (daemon/forwarder.hpp,
# daemon/pairing.hpp, drivers/upstream/https_client.hpp), and peek_sequence.
carebridge_add_fuzz_target(platform_answers LIBS cb_daemon)
