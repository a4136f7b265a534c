// RFC 8785 JSON Canonicalization Scheme (JCS) of a Boost.JSON value: the
// byte string that the bundle signature covers (docs/upstream.md §4).
//
//   | JSON part | canonical form (RFC 8785 §3.2)                                   |
//   |-----------|------------------------------------------------------------------|
//   | whitespace| none between tokens                                              |
//   | literals  | true, false, null                                                |
//   | strings   | UTF-8; escaped: '"' and '\' as \" \\, U+0008/0009/000A/000C/000D |
//   |           | as \b \t \n \f \r, other U+0000..U+001F as \u00xx (lowercase hex);|
//   |           | everything else, '/' and non-ASCII included, as is              |
//   | numbers   | the ECMAScript Number.prototype.toString form of the IEEE 754    |
//   |           | double (ECMA-262 §6.1.6.1.20): shortest round-trip digits, plain |
//   |           | notation for 1e-6 <= |x| < 1e21, else d.ddde+N / d.ddde-N; -0 is |
//   |           | "0". Integers (int64/uint64) are first converted to double, as   |
//   |           | I-JSON requires (so 2^53+1 prints as 9007199254740992)           |
//   | objects   | members sorted by their names as arrays of UTF-16 code units     |
//   | arrays    | in order                                                         |
//
// Refused (ErrorKind::invalid_input): strings or names that are not valid
// UTF-8, and non-finite numbers. Over max_canonical_depth nested containers:
// ErrorKind::limit_exceeded. Duplicate names cannot occur: a Boost.JSON object
// has unique keys (when parsing, Boost.JSON 1.81 keeps one of the duplicates,
// and the signature covers the value as parsed).
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace cb::upstream {

inline constexpr std::size_t max_canonical_depth = 64;

// The canonical text of `value` (table above).
Result<std::string> canonicalize(const boost::json::value& value);

// The canonical text of `object` without its member named `member` (what a
// copy with that member erased would give, without the copy).
Result<std::string> canonicalize_without(const boost::json::object& object, std::string_view member);

// Writes canonical text directly, for a producer that knows the canonical
// order of its members (the bundle builder, the signature): no tree, no sort.
// The caller emits each object's members in increasing order of their names,
// which are ASCII string literals (both asserted: a name out of order would
// give text that is not canonical, and every verifier would then recompute a
// different payload). Strings are escaped and checked as canonicalize does,
// numbers printed as canonicalize prints a double; the first problem is kept
// and finish() returns it.
//
//   CanonicalWriter out;
//   out.begin_object().member("a", 1.5).key("b").begin_array().string("x").end_array().end_object();
//   std::move(out).finish()   -> {"a":1.5,"b":["x"]}
class CanonicalWriter {
public:
    explicit CanonicalWriter(std::size_t reserve = 4096);

    CanonicalWriter& begin_object();
    CanonicalWriter& end_object();
    CanonicalWriter& begin_array();
    CanonicalWriter& end_array();
    // The next member's name: greater than the previous one of this object.
    CanonicalWriter& key(std::string_view name);
    CanonicalWriter& string(std::string_view text);
    CanonicalWriter& number(double value);

    CanonicalWriter& member(std::string_view name, std::string_view text) { return key(name).string(text); }
    CanonicalWriter& member(std::string_view name, double value) { return key(name).number(value); }

    // The text, or the first problem (a string not UTF-8: invalid_input; a
    // number not finite: invalid_input; deeper than max_canonical_depth:
    // limit_exceeded). Asserts that every container was closed.
    Result<std::string> finish() &&;

private:
    struct Level {
        bool object = false;
        bool empty = true;
        std::string_view last_key;  // objects: the previous member's name (a literal)
    };
    CanonicalWriter& open(bool object);
    CanonicalWriter& close(bool object);
    void before_value();
    void keep(Error error);

    std::string m_out;
    std::vector<Level> m_levels;
    std::optional<Error> m_error;
};

// ECMAScript Number::toString of a finite double ("1e+21", "0.000001", "1e-7",
// "123.456", "-0" -> "0"). Asserts that `value` is finite.
std::string ecmascript_number(double value);

}  // namespace cb::upstream
