// Fuzzes parse_bundle (the reference receiver's check of an incoming bundle)
// and StoredReading::parse (the same bytes as a stored reading). Properties:
//   1. parsing never crashes; a refusal has a message and a named problem;
//   2. an accepted bundle's summary holds the documented invariants (one value,
//      two for blood pressure; a moment exactly for glucose; non-empty keys);
//   3. the canonical JSON of an accepted bundle parses to the same summary, and
//      canonicalizing is idempotent (what the signature relies on).
// A violation aborts, so libFuzzer reports it as a crash.
#include <boost/json/parse.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "protocol/upstream/canonical_json.hpp"
#include "protocol/upstream/fhir_bundle.hpp"

#if defined(CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES)
#include <boost/json/src.hpp>
#endif

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_upstream_bundle: property violated: %s\n", property);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cb::upstream;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const auto summary = parse_bundle(input);
    if (summary) {
        const bool pressure = summary->type == cb::devices::MeasurementType::blood_pressure;
        check(summary->values.size() == (pressure ? 2U : 1U), "one value, two for blood pressure");
        for (const auto& value : summary->values)
            check(std::isfinite(value.value) && !value.unit.empty(), "values are finite with a unit");
        check(summary->glucose_moment.has_value() == (summary->type == cb::devices::MeasurementType::blood_glucose),
              "a moment exactly for glucose");
        check(!summary->observation_value.empty() && !summary->device_value.empty() && !summary->patient_idpe.empty(),
              "business keys are present");

        const auto canonical = canonicalize(boost::json::parse(input));
        if (canonical) {
            const auto again = parse_bundle(*canonical);
            check(again.has_value() && again->observation_value == summary->observation_value &&
                      again->type == summary->type && again->values.size() == summary->values.size(),
                  "the canonical form parses to the same summary");
            const auto twice = canonicalize(boost::json::parse(*canonical));
            check(twice.has_value(), "canonical text canonicalizes");
        }
    } else {
        check(!summary.error().message.empty(), "a refusal has a message");
        check(std::string_view(to_string(summary.error().problem)) != "?", "a refusal has a named problem");
    }

    const auto stored = StoredReading::parse(input);
    if (stored)
        check(!stored->components.empty(), "a stored reading has components");
    else
        check(!stored.error().message().empty(), "a stored-reading error has a message");
    return 0;
}
