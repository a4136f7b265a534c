// Fuzzes Reading::parse (arbitrary bytes as the payload of a fixed topic at a
// fixed gateway time) and parse_measurement_topic (the same bytes as a topic).
// Properties checked:
//   1. parsing never crashes, and a rejection always has a non-empty message
//      and a reason that to_string names;
//   2. an accepted reading satisfies the documented invariants: the topic's
//      device, seq in 1..2^53-1, 1..8 components each with a finite value in
//      its canonical unit and no code twice, a time within the window;
//   3. a reading that parses at `now` parses identically when parsed again
//      (no hidden state);
//   4. a topic that parses rebuilds to itself with measurement_topic.
// A violation aborts, so libFuzzer reports it as a crash.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "protocol/devices/reading.hpp"
#include "protocol/devices/topics.hpp"

// See tests/fuzz/devices.cmake: instrumented Boost.JSON under libFuzzer.
#if defined(CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES)
#include <boost/json/src.hpp>
#endif

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_device_reading: property violated: %s\n", property);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace std::chrono;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // 2026-11-22T10:00:00Z, the time of the corpus files.
    const cb::devices::Microseconds now{seconds(1795341600)};
    static const cb::devices::DeviceId device = cb::devices::DeviceId::parse("cuff-0042").value();

    const auto parsed = cb::devices::Reading::parse(device, input, now);
    if (parsed) {
        const cb::devices::Reading& reading = *parsed;
        check(reading.device() == device, "the reading is the topic's device");
        check(reading.sequence() >= 1 && reading.sequence() <= cb::devices::max_sequence, "seq in range");
        check(!reading.components().empty() && reading.components().size() <= cb::devices::max_components,
              "1..8 components");
        for (const auto& component : reading.components()) {
            check(std::isfinite(component.value), "values are finite");
            check(!component.unit.empty(), "values have a unit");
            check(reading.component(component.code) == &component, "codes are unique");
        }
        check(reading.device_time().utc <= now + minutes(5), "not in the future");
        check(reading.device_time().utc >= now - hours(24 * 30), "not too old");
        const auto again = cb::devices::Reading::parse(device, input, now);
        check(again.has_value() && again->sequence() == reading.sequence() &&
                  again->components() == reading.components() && again->flags() == reading.flags(),
              "parsing is deterministic");
    } else {
        check(!parsed.error().message.empty(), "a rejection has a message");
        check(std::string_view(to_string(parsed.error().reason)) != "?", "a rejection has a named reason");
    }

    const auto topic_device = cb::devices::parse_measurement_topic(input);
    if (topic_device)
        check(cb::devices::measurement_topic(*topic_device) == input, "a parsed topic rebuilds to itself");
    else
        check(!topic_device.error().message().empty(), "a topic error has a message");
    return 0;
}
