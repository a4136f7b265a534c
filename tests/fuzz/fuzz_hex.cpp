// Fuzzes from_hex on arbitrary text, and to_hex / from_hex round trips on
// arbitrary bytes. A violated property aborts, so libFuzzer reports a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/hex.hpp"

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_hex: property violated: %s\n", property);
        std::abort();
    }
}

bool round_trips(std::span<const std::uint8_t> bytes, const std::string& text) {
    const auto decoded = cb::from_hex(text);
    return decoded.has_value() && std::ranges::equal(*decoded, bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    const auto decoded = cb::from_hex(text);
    if (decoded) {
        std::size_t digits = 0;
        for (const char c : text)
            digits += (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f') ? 1 : 0;
        check(digits == 2 * decoded->size(), "every two digits make one byte");
        check(round_trips(*decoded, cb::to_hex(*decoded)), "decoded bytes round-trip");
    }

    check(round_trips(bytes, cb::to_hex(bytes)), "to_hex round-trips");
    check(round_trips(bytes, cb::to_hex(bytes, ' ')), "to_hex with spaces round-trips");
    check(round_trips(bytes, cb::to_hex(bytes, ':')), "to_hex with colons round-trips");
    check(cb::to_hex(bytes).size() == 2 * size, "to_hex writes two digits a byte");
    return 0;
}
