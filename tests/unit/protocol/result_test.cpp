#include "protocol/result.hpp"

#include <catch2/catch.hpp>

namespace {

cb::Result<int> parse_digit(char c) {
    if (c < '0' || c > '9')
        return cb::fail(cb::ErrorKind::invalid_input, std::string("expected a digit, got '") + c + "'");
    return c - '0';
}

cb::Result<int> add_digits(char a, char b) {
    const int x = CB_TRY(parse_digit(a));
    const int y = CB_TRY(parse_digit(b));
    return x + y;
}

cb::Result<void> check_even(int n) {
    if (n % 2 != 0)
        return cb::fail(cb::ErrorKind::invalid_input, "odd");
    return {};
}

cb::Result<int> half_if_even(int n) {
    CB_TRY(check_even(n));
    return n / 2;
}

}  // namespace

TEST_CASE("Result carries a value or an error") {
    auto ok = parse_digit('7');
    REQUIRE(ok.has_value());
    CHECK(*ok == 7);

    auto bad = parse_digit('x');
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(bad.error().message() == "expected a digit, got 'x'");
}

TEST_CASE("CB_TRY propagates the first error and yields values") {
    CHECK(add_digits('2', '3').value() == 5);
    auto r = add_digits('2', '?');
    REQUIRE_FALSE(r);
    CHECK(r.error().message() == "expected a digit, got '?'");
}

TEST_CASE("CB_TRY works on Result<void>") {
    CHECK(half_if_even(8).value() == 4);
    auto r = half_if_even(3);
    REQUIRE_FALSE(r);
    CHECK(r.error().message() == "odd");
}

TEST_CASE("Error context is prefixed, kind kept") {
    const cb::Error e(cb::ErrorKind::limit_exceeded, "depth 33 > 32");
    const cb::Error wrapped = e.with_context("EF 2001");
    CHECK(wrapped.kind() == cb::ErrorKind::limit_exceeded);
    CHECK(wrapped.message() == "EF 2001: depth 33 > 32");
    CHECK(std::string(cb::to_string(cb::ErrorKind::io)) == "i/o error");
}
