#include "protocol/cards/patient_card.hpp"

#include <cassert>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/hex.hpp"
#include "protocol/tlv.hpp"

namespace cb::cards {

namespace {

constexpr std::size_t nir_size = 13;
constexpr std::size_t nir_with_key_size = 15;

Error invalid(const std::string& where, const std::string& rule) {
    return fail(ErrorKind::invalid_input, "patient identity: " + where + ": " + rule);
}

bool is_digit(std::uint8_t byte) {
    return byte >= '0' && byte <= '9';
}

int digit_value(std::uint8_t byte) {
    return byte - '0';
}

// Validates the 15 bytes of 65/93 and returns them as text. The NIR itself
// never appears in a message.
Result<std::string> parse_nir(std::span<const std::uint8_t> value, int& key_out) {
    const std::string where = "tag 65/93 (NIR)";
    if (value.size() != nir_with_key_size)
        return invalid(where, "expected 15 bytes, got " + std::to_string(value.size()));

    // Characters 6-7 (indexes 5-6) hold the department: "2A"/"2B" in Corsica,
    // counted as 19 and 18 for the key.
    std::uint64_t number = 0;
    bool corsica = false;
    if (value[5] == '2' && (value[6] == 'A' || value[6] == 'B'))
        corsica = true;
    for (std::size_t position = 0; position < nir_with_key_size; ++position) {
        if (corsica && position == 6)
            continue;
        if (!is_digit(value[position]))
            return invalid(where, "non-digit at position " + std::to_string(position));
    }
    for (std::size_t position = 0; position < nir_size; ++position) {
        int digit = 0;
        if (corsica && position == 5)
            digit = 1;  // 19 and 18 both start with 1
        else if (corsica && position == 6)
            digit = value[6] == 'A' ? 9 : 8;
        else
            digit = digit_value(value[position]);
        number = number * 10 + static_cast<std::uint64_t>(digit);
    }
    const int key = digit_value(value[13]) * 10 + digit_value(value[14]);
    const auto expected_key = static_cast<int>(97 - number % 97);
    if (key != expected_key)
        return invalid(where, "key mismatch");
    key_out = key;
    return std::string(value.begin(), value.begin() + nir_size);
}

Result<std::string> parse_name(std::span<const std::uint8_t> value, const std::string& where) {
    if (value.empty())
        return invalid(where, "empty");
    if (value.size() > max_name_size)
        return invalid(
            where, std::to_string(value.size()) + " bytes exceed the " + std::to_string(max_name_size) + "-byte cap");
    for (std::size_t position = 0; position < value.size(); ++position) {
        const std::uint8_t byte = value[position];
        if (byte < 0x20 || byte > 0x7E)
            return invalid(where, "non-printable byte " + to_hex(value.subspan(position, 1)) + " at position " +
                                      std::to_string(position));
    }
    return std::string(value.begin(), value.end());
}

Result<CalendarDate> parse_date(std::span<const std::uint8_t> value, const std::string& where) {
    if (value.size() != 8)
        return invalid(where, "expected 8 digits YYYYMMDD, got " + std::to_string(value.size()) + " bytes");
    for (std::size_t position = 0; position < value.size(); ++position)
        if (!is_digit(value[position]))
            return invalid(where, "non-digit at position " + std::to_string(position));
    auto number = [&](std::size_t from, std::size_t count) {
        int result = 0;
        for (std::size_t position = from; position < from + count; ++position)
            result = result * 10 + digit_value(value[position]);
        return result;
    };
    const CalendarDate date{number(0, 4), number(4, 2), number(6, 2)};
    if (!is_calendar_date(date))
        return invalid(where, std::string(value.begin(), value.end()) + " is not a calendar date");
    return date;
}

Result<const Tlv*> require_primitive(std::span<const Tlv> objects, std::uint32_t parent, std::uint32_t tag) {
    // Every tag this profile reads is primitive by its constructed bit, so
    // the object found holds bytes, not children.
    auto found = require_path(objects, {parent, tag});
    if (!found)
        return std::move(found).error().with_context("patient identity");
    return *found;
}

}  // namespace

bool is_leap_year(int year) noexcept {
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

bool is_calendar_date(const CalendarDate& date) noexcept {
    if (date.year < 1 || date.month < 1 || date.month > 12 || date.day < 1)
        return false;
    constexpr int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int last_day = days_in_month[date.month - 1];
    if (date.month == 2 && is_leap_year(date.year))
        last_day = 29;
    return date.day <= last_day;
}

CommandApdu select_patient_application() {
    return CommandApdu{.cla = 0x00,
                       .ins = 0xA4,
                       .p1 = 0x04,
                       .p2 = 0x00,
                       .data = Bytes(std::begin(patient_aid), std::end(patient_aid)),
                       .expected = std::nullopt};
}

CommandApdu select_patient_identity_file() {
    return CommandApdu{.cla = 0x00,
                       .ins = 0xA4,
                       .p1 = 0x02,
                       .p2 = 0x0C,
                       .data = {static_cast<std::uint8_t>(patient_identity_file_id >> 8),
                                static_cast<std::uint8_t>(patient_identity_file_id & 0xFF)},
                       .expected = std::nullopt};
}

Result<CommandApdu> read_patient_identity_command(std::size_t offset) {
    if (offset >= max_identity_file_size)
        return fail(ErrorKind::limit_exceeded, "READ BINARY EF 2001: offset " + std::to_string(offset) +
                                                   " is past the " + std::to_string(max_identity_file_size) +
                                                   "-byte cap");
    // max_identity_file_size <= 0x7FFF, so P1 b8 stays 0 (not a short EF id).
    static_assert(max_identity_file_size <= 0x7FFF);
    return CommandApdu{.cla = 0x00,
                       .ins = 0xB0,
                       .p1 = static_cast<std::uint8_t>(offset >> 8),
                       .p2 = static_cast<std::uint8_t>(offset & 0xFF),
                       .data = {},
                       .expected = read_binary_chunk};
}

Result<void> check_patient_select(const CommandApdu& select, StatusWord status) {
    if (status.is_success() || status.bytes_available())
        return {};
    const std::string name = select.p1 == 0x04 ? "SELECT patient application" : "SELECT EF 2001";
    return fail(ErrorKind::unsupported, name + " returned " + status.describe());
}

CommandApdu IdentityFileReader::first_command() {
    auto command = read_patient_identity_command(0);
    assert(command.has_value());
    return std::move(command).value();
}

Result<std::optional<CommandApdu>> IdentityFileReader::on_response(const ResponseApdu& response) {
    const std::size_t offset = m_content.size();
    const std::string where = "READ BINARY EF 2001 at offset " + std::to_string(offset);
    if (response.data.size() > read_binary_chunk)
        return fail(ErrorKind::invalid_input, where + " returned " + std::to_string(response.data.size()) +
                                                  " bytes, asked " + std::to_string(read_binary_chunk));
    const StatusWord status = response.status;
    if (status.value() == 0x6B00 && offset > 0)
        return std::optional<CommandApdu>{};
    if (!status.is_success() && status.value() != 0x6282)
        return fail(ErrorKind::invalid_input, where + " returned " + status.describe());
    m_content.insert(m_content.end(), response.data.begin(), response.data.end());
    if (status.value() == 0x6282 || response.data.size() < read_binary_chunk)
        return std::optional<CommandApdu>{};
    return std::optional<CommandApdu>{CB_TRY(read_patient_identity_command(m_content.size()))};
}

Result<PatientIdentity> parse_patient_identity(std::span<const std::uint8_t> content) {
    auto parsed = parse_tlv(content);
    if (!parsed)
        return std::move(parsed).error().with_context("patient identity");
    const std::vector<Tlv>& objects = *parsed;

    const Tlv* beneficiary = find_tlv(objects, 0x65);
    if (beneficiary == nullptr)
        return invalid("TLV 65", "no tag 65 (beneficiary) at top level");

    PatientIdentity identity;
    const Tlv* nir = CB_TRY(require_primitive(objects, 0x65, 0x93));
    identity.m_nir = CB_TRY(parse_nir(nir->value, identity.m_nir_key));
    const Tlv* family = CB_TRY(require_primitive(objects, 0x65, 0x80));
    identity.m_family_name = CB_TRY(parse_name(family->value, "tag 65/80 (family name)"));
    const Tlv* first = CB_TRY(require_primitive(objects, 0x65, 0x81));
    identity.m_first_name = CB_TRY(parse_name(first->value, "tag 65/81 (first name)"));
    const Tlv* birth = CB_TRY(require_primitive(objects, 0x65, 0x82));
    identity.m_birth_date = CB_TRY(parse_date(birth->value, "tag 65/82 (birth date)"));

    const Tlv* card = find_tlv(objects, 0x66);
    if (card == nullptr)
        return invalid("TLV 66", "no tag 66 (card) at top level");
    const Tlv* validity = CB_TRY(require_primitive(objects, 0x66, 0x80));
    identity.m_card_validity_start = CB_TRY(parse_date(validity->value, "tag 66/80 (validity start)"));
    return identity;
}

}  // namespace cb::cards
