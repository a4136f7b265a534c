// Fuzzes parse_tlv. Properties checked on every input that parses:
//   1. re-encoding the tree and parsing that gives the same tree;
//   2. re-encoding is idempotent: encode(parse(encode(t))) == encode(t);
//   3. the re-encoding is never longer than the input (it drops padding and
//      non-minimal lengths, nothing else);
//   4. tighter limits only ever turn a success into a limit_exceeded error,
//      never into a different tree or another kind of error.
// A violation aborts, so libFuzzer reports it as a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "protocol/byte_reader.hpp"
#include "protocol/tlv.hpp"

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_tlv: property violated: %s\n", property);
        std::abort();
    }
}

std::vector<std::uint8_t> encode(std::span<const cb::Tlv> objects) {
    cb::ByteWriter out;
    const auto encoded = encode_tlv_tree(out, objects);
    check(encoded.has_value(), "a parsed tree can be encoded");
    return out.take_bytes();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    const auto parsed = cb::parse_tlv(input);

    const cb::TlvLimits tight{.max_depth = 3, .max_objects = 16, .max_input_size = 256};
    const auto parsed_tight = cb::parse_tlv(input, tight);
    if (parsed_tight) {
        check(parsed.has_value(), "what parses under tight limits parses under the defaults");
        check(cb::same_tlv_structure(*parsed, *parsed_tight), "limits do not change the tree");
    } else if (parsed) {
        check(parsed_tight.error().kind() == cb::ErrorKind::limit_exceeded,
              "tight limits fail only with limit_exceeded");
    }

    if (!parsed)
        return 0;
    const std::vector<std::uint8_t> encoded = encode(*parsed);
    check(encoded.size() <= size, "re-encoding is no longer than the input");

    const auto reparsed = cb::parse_tlv(encoded);
    check(reparsed.has_value(), "the re-encoding parses");
    check(cb::same_tlv_structure(*parsed, *reparsed), "the re-encoding parses to the same tree");
    check(encode(*reparsed) == encoded, "encoding is idempotent");

    // Lookups walk the tree without reading outside it.
    if (!parsed->empty()) {
        const cb::Tlv& first = parsed->front();
        check(cb::find_tlv(*parsed, first.tag) == &first, "find_tlv finds the first object");
        if (!first.children.empty())
            check(cb::find_path(*parsed, {first.tag, first.children.front().tag}) != nullptr,
                  "find_path finds a first child");
    }
    return 0;
}
