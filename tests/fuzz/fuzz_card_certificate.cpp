// Fuzzes the practitioner identity reader on arbitrary DER (the certificate
// parser and the subject rules; no chain, which needs a CA). Properties checked
// on every identity that is read (a violation aborts):
//   - IDNPS is "8" + 11 digits that pass the Luhn check;
//   - the profession code is 2 digits;
//   - names are 1..64 bytes without control characters.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "protocol/cards/certificate.hpp"

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_card_certificate: property violated: %s\n", property);
        std::abort();
    }
}

bool clean_name(const std::string& name) {
    if (name.empty() || name.size() > 64)
        return false;
    for (const char character : name) {
        const auto byte = static_cast<unsigned char>(character);
        if (byte < 0x20 || byte == 0x7F)
            return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto identity =
        cb::cards::practitioner_identity_from_unverified_der(std::span<const std::uint8_t>(data, size));
    if (!identity) {
        const auto kind = identity.error().kind();
        check(kind == cb::ErrorKind::invalid_input || kind == cb::ErrorKind::limit_exceeded,
              "failures are input errors");
        return 0;
    }
    const std::string& idnps = identity->idnps();
    check(idnps.size() == 12 && idnps[0] == '8', "IDNPS is 8 + 11 digits");
    check(cb::cards::passes_luhn(identity->rpps()), "RPPS passes Luhn");
    const std::string& profession = identity->profession_code();
    check(profession.size() == 2 && profession[0] >= '0' && profession[0] <= '9' && profession[1] >= '0' &&
              profession[1] <= '9',
          "profession code is 2 digits");
    check(clean_name(identity->given_name()) && clean_name(identity->family_name()), "names are clean");
    return 0;
}
