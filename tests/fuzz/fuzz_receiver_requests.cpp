// Fuzzes carebridge-receiver's own parsers of untrusted input
// (tools/receiver/requests.hpp, patients.hpp): the same bytes as a /pairing,
// /token and /admin/faults body, a request target, and a patients file.
// Properties checked:
//   1. parsing never crashes, and a failure always has a non-empty message;
//   2. what parses respects the documented bounds (NIR 13..15 of [0-9AB],
//      codes and tokens within their lengths, fault values in range, at most
//      max_query_parameters query parameters without NUL);
//   3. a patients file that parses pairs each of its own lines.
// A violation aborts, so libFuzzer reports it as a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "tools/receiver/patients.hpp"
#include "tools/receiver/requests.hpp"

// See tests/fuzz/devices.cmake: instrumented Boost.JSON under libFuzzer.
#if defined(CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES)
#include <boost/json/src.hpp>
#endif

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_receiver_requests: property violated: %s\n", property);
        std::abort();
    }
}

template <typename R>
void check_failure(const R& result) {
    if (!result)
        check(!result.error().message().empty(), "a failure has a message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cb::receiver;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const auto pairing = parse_pairing_request(input);
    check_failure(pairing);
    if (pairing) {
        check(pairing->nir.size() >= 13 && pairing->nir.size() <= 15, "nir length");
        check(nir_key(pairing->nir).has_value(), "nir characters");
        check(!pairing->code.empty() && pairing->code.size() <= 64, "code length");
    }

    const auto token = parse_token_request(input);
    check_failure(token);
    if (token)
        check(!token->refresh_token.empty() && token->refresh_token.size() <= 256, "refresh token length");

    const auto faults = parse_fault_request(input);
    check_failure(faults);
    if (faults) {
        check(!faults->status || (*faults->status >= 400 && *faults->status <= 599), "fault status");
        check(!faults->status || faults->fail_next, "status only with fail_next");
        check(!faults->delay || faults->delay->count() <= 60'000, "delay bound");
        check(!faults->refuse_consent || valid_idpe(*faults->refuse_consent), "consent idPe");
    }

    const auto target = parse_target(input);
    check_failure(target);
    if (target) {
        check(target->query.size() <= max_query_parameters, "query parameter count");
        for (const auto& [name, value] : target->query)
            check(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos, "no NUL");
    }

    const auto directory = PatientDirectory::parse(input, "fuzz", AutoPair::no);
    check_failure(directory);
    if (directory)
        check(directory->size() <= max_patients, "patient count");
    return 0;
}
