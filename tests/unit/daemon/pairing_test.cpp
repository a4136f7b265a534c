// carebridged --pair reading the NIR and the code from standard input
// (daemon/pairing.hpp, read_pairing_fields).
#include "daemon/pairing.hpp"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

namespace {

cb::PairingRequest request(const std::string& nir, const std::string& code) {
    return cb::PairingRequest{.patient = "patient-1", .nir = nir, .code = code};
}

}  // namespace

TEST_CASE("pairing: fields given as - are read from standard input, the NIR first") {
    std::istringstream input("180017512345642\n0000\n");
    auto fields = request("-", "-");
    REQUIRE(cb::read_pairing_fields(input, fields));
    CHECK(fields.nir == "180017512345642");
    CHECK(fields.code == "0000");
    CHECK(fields.patient == "patient-1");
    CHECK(cb::check_pairing_request(fields));
}

TEST_CASE(
    "pairing: only the fields given as - are read, a CR before the newline and a last line without one are taken") {
    std::istringstream crlf("12-34\r\n");
    auto code_only = request("180017512345642", "-");
    REQUIRE(cb::read_pairing_fields(crlf, code_only));
    CHECK(code_only.nir == "180017512345642");
    CHECK(code_only.code == "12-34");

    std::istringstream unterminated("180017512345642");
    auto nir_only = request("-", "0000");
    REQUIRE(cb::read_pairing_fields(unterminated, nir_only));
    CHECK(nir_only.nir == "180017512345642");
    CHECK(nir_only.code == "0000");

    std::istringstream untouched("not read\n");
    auto neither = request("180017512345642", "0000");
    REQUIRE(cb::read_pairing_fields(untouched, neither));
    CHECK(neither.code == "0000");
}

TEST_CASE("pairing: input that ends early or a line too long is refused, naming the field, never the value") {
    std::istringstream one_line("180017512345642\n");
    auto both = request("-", "-");
    auto ended = cb::read_pairing_fields(one_line, both);
    REQUIRE_FALSE(ended);
    CHECK(ended.error().message() == "--code -: standard input ended before its line");

    std::istringstream long_line(std::string(300, '7') + "\n");
    auto code = request("180017512345642", "-");
    auto refused = cb::read_pairing_fields(long_line, code);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message() == "--code -: the line read from standard input is over 256 bytes");
    CHECK(refused.error().message().find("777") == std::string::npos);

    // An empty line is read as an empty field, which the check then names.
    std::istringstream empty("\n0000\n");
    auto nir = request("-", "-");
    REQUIRE(cb::read_pairing_fields(empty, nir));
    CHECK(cb::check_pairing_request(nir).error().message() ==
          "--nir: expected 13 to 15 characters (the NIR, with or without its key)");
}
