// Fuzzes parse_reader_features (drivers/pcsc/secure_pin_entry.hpp): the
// answer a reader gives to CM_IOCTL_GET_FEATURE_REQUEST, hostile bytes.
// Properties checked (a violation aborts, so libFuzzer reports a crash):
//   - an accepted answer is a whole number of 6-byte TLVs (tag, 04, code),
//     at most max_features of them;
//   - each feature it reports is the big-endian code of a TLV with its tag;
//   - a refused answer has a message that starts with "reader features: ".
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>

#include "drivers/pcsc/secure_pin_entry.hpp"

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "property violated: %s\n", property);
        std::abort();
    }
}

// The code of the last TLV with `tag` (the parser refuses a tag given twice
// with different codes, so any occurrence will do).
std::optional<std::uint32_t> code_of(std::span<const std::uint8_t> bytes, std::uint8_t tag) {
    std::optional<std::uint32_t> code;
    for (std::size_t at = 0; at + 6 <= bytes.size(); at += 6)
        if (bytes[at] == tag)
            code = (std::uint32_t{bytes[at + 2]} << 24) | (std::uint32_t{bytes[at + 3]} << 16) |
                   (std::uint32_t{bytes[at + 4]} << 8) | std::uint32_t{bytes[at + 5]};
    return code;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    const auto features = cb::pcsc::parse_reader_features(bytes);
    if (!features) {
        check(features.error().message().rfind("reader features: ", 0) == 0, "message prefix");
        return 0;
    }
    check(size % 6 == 0, "whole TLVs");
    check(size / 6 <= cb::pcsc::max_features, "feature cap");
    for (std::size_t at = 0; at < size; at += 6)
        check(bytes[at + 1] == 4, "length 4");
    check(features->verify_pin_direct == code_of(bytes, cb::pcsc::feature_verify_pin_direct), "verify pin code");
    check(features->modify_pin_direct == code_of(bytes, cb::pcsc::feature_modify_pin_direct), "modify pin code");
    check(features->ifd_pin_properties == code_of(bytes, cb::pcsc::feature_ifd_pin_properties), "pin properties");
    check(features->get_tlv_properties == code_of(bytes, cb::pcsc::feature_get_tlv_properties), "tlv properties");
    return 0;
}
