// Fuzzes parse_patient_identity (the content of EF 2001). Properties checked
// on every identity that parses (a violation aborts):
//   - the NIR is 13 characters, digits except "2A"/"2B" at 6-7, key 1..97;
//   - names are 1..64 printable ASCII bytes;
//   - both dates are calendar dates.
// Failures must be invalid_input or limit_exceeded, with a message.
// The input is also read as READ BINARY answers for IdentityFileReader: a
// 2-byte big-endian length then that many bytes of response APDU, repeated;
// the reader must ask only for READ BINARY at the offset it has reached, and
// never hold more than max_identity_file_size bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "protocol/byte_reader.hpp"
#include "protocol/cards/patient_card.hpp"

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_card_patient: property violated: %s\n", property);
        std::abort();
    }
}

bool printable_name(const std::string& name) {
    if (name.empty() || name.size() > cb::cards::max_name_size)
        return false;
    for (const char character : name)
        if (character < 0x20 || character > 0x7E)
            return false;
    return true;
}

void run_reader(std::span<const std::uint8_t> input) {
    cb::cards::IdentityFileReader reader;
    cb::ByteReader in(input);
    while (!in.at_end()) {
        const auto length = in.read_u16_be("length");
        if (!length)
            return;
        const auto bytes = in.read_bytes(*length, "response");
        if (!bytes)
            return;
        const auto response = cb::cards::parse_response(*bytes);
        if (!response)
            return;
        const auto next = reader.on_response(*response);
        check(reader.content().size() <= cb::cards::max_identity_file_size, "the file is capped");
        if (!next || !next->has_value())
            return;
        const cb::cards::CommandApdu& command = **next;
        check(command.ins == 0xB0, "the reader only reads");
        check(static_cast<std::size_t>((command.p1 << 8) | command.p2) == reader.content().size(),
              "the next read starts where the content ends");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    run_reader(std::span<const std::uint8_t>(data, size));
    const auto identity = cb::cards::parse_patient_identity(std::span<const std::uint8_t>(data, size));
    if (!identity) {
        const auto kind = identity.error().kind();
        check(kind == cb::ErrorKind::invalid_input || kind == cb::ErrorKind::limit_exceeded,
              "failures are input errors");
        check(identity.error().message().rfind("patient identity: ", 0) == 0, "messages say what was parsed");
        return 0;
    }
    const std::string& nir = identity->nir();
    check(nir.size() == 13, "NIR has 13 characters");
    const bool corsica = nir[5] == '2' && (nir[6] == 'A' || nir[6] == 'B');
    for (std::size_t position = 0; position < nir.size(); ++position)
        check((nir[position] >= '0' && nir[position] <= '9') || (corsica && position == 6), "NIR is digits");
    check(identity->nir_key() >= 1 && identity->nir_key() <= 97, "NIR key is 1..97");
    check(printable_name(identity->family_name()), "family name is printable and capped");
    check(printable_name(identity->first_name()), "first name is printable and capped");
    check(cb::cards::is_calendar_date(identity->birth_date()), "birth date is a date");
    check(cb::cards::is_calendar_date(identity->card_validity_start()), "validity start is a date");
    return 0;
}
