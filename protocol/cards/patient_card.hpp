// The patient card profile (Vitale-like): command builders and the identity
// parser. It follows the public structure of the Vitale card only; reading a
// real Vitale card needs the licensed API (see docs/cards.md). The file id,
// the tags inside the objects and the APDU sequence are our modelling.
//
// APDU sequence (3 APDUs for an identity under 256 bytes):
//
//   | # | command                         | bytes                                 | expected SW  |
//   |---|---------------------------------|---------------------------------------|--------------|
//   | 1 | SELECT application by AID       | 00 A4 04 00 0B D2500000025649544...45 | 9000 or 61xx |
//   |   |                                 | (case 3: the FCI is not used)         | (selected)   |
//   | 2 | SELECT EF 2001 by file id       | 00 A4 02 0C 02 20 01 (P2 0C: no FCI)  | 9000         |
//   | 3 | READ BINARY offset 0, Ne 256    | 00 B0 00 00 00                        | 9000 / 6282  |
//   | 4 | READ BINARY offset n, Ne 256    | 00 B0 hi lo 00, only while the        | 9000 / 6282  |
//   |   |                                 | previous read returned 256 bytes      | / 6B00 (end) |
//
// The EF content is read until a READ BINARY returns fewer than 256 bytes (or
// 6282, or 6B00 at an offset past the end), at most max_identity_file_size.
//
// EF 2001 content: BER-TLV, padding 00/FF allowed around objects.
//
//   | path   | content                                  | rule                                  |
//   |--------|------------------------------------------|---------------------------------------|
//   | 65     | beneficiary (constructed)                | required, first occurrence used       |
//   | 65/93  | NIR: 13 characters + 2-digit key         | 15 bytes; digits, except characters   |
//   |        |                                          | 6-7 may be "2A"/"2B" (Corsica); key = |
//   |        |                                          | 97 - (NIR mod 97), with 2A -> 19,     |
//   |        |                                          | 2B -> 18 for the computation          |
//   | 65/80  | family name                              | 1..64 bytes, printable ASCII 20..7E   |
//   | 65/81  | first name                               | 1..64 bytes, printable ASCII 20..7E   |
//   | 65/82  | birth date YYYYMMDD                      | 8 digits, a real calendar date        |
//   | 66     | card (constructed)                       | required                              |
//   | 66/80  | validity start YYYYMMDD                  | 8 digits, a real calendar date        |
//
// Other objects are ignored. Messages never contain the NIR or the names:
// patient identifiers are not logged above debug.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "protocol/cards/apdu.hpp"
#include "protocol/result.hpp"

namespace cb::cards {

inline constexpr std::uint8_t patient_aid[] = {0xD2, 0x50, 0x00, 0x00, 0x02, 0x56, 0x49, 0x54, 0x41, 0x4C, 0x45};
inline constexpr std::uint16_t patient_identity_file_id = 0x2001;
inline constexpr std::size_t read_binary_chunk = 256;
inline constexpr std::size_t max_identity_file_size = 4096;
inline constexpr std::size_t max_name_size = 64;

// 00 A4 04 00 0B <patient_aid>
CommandApdu select_patient_application();
// 00 A4 02 0C 02 20 01
CommandApdu select_patient_identity_file();
// 00 B0 <offset> 00. The cap keeps the offset under 8000, so P1 b8 stays 0
// (b8 = 1 would mean a short EF identifier). Fails with
// ErrorKind::limit_exceeded at or above max_identity_file_size:
//     "READ BINARY EF 2001: offset 4096 is past the 4096-byte cap"
Result<CommandApdu> read_patient_identity_command(std::size_t offset);

// Checks the (completed) answer to one of the SELECTs above: 9000 or 61xx
// (an FCI offered, which we do not fetch) mean selected. Fails with
// ErrorKind::unsupported, since the card is not of this profile:
//     "SELECT patient application returned 6A82 (file not found)"
//     "SELECT EF 2001 returned 6A82 (file not found)"
Result<void> check_patient_select(const CommandApdu& select, StatusWord status);

// The READ BINARY loop of steps 3-4, without the I/O: send first_command(),
// hand each completed answer (after the ResponsePlanner) to on_response(),
// send what it returns until it returns no command; content() is then EF 2001.
//
//   | answer                                   | decision                                  |
//   |------------------------------------------|-------------------------------------------|
//   | 9000 with 256 bytes                      | keep them; READ BINARY at the next offset |
//   | 9000 with fewer bytes, or 6282           | keep them; done                           |
//   | 6B00 at an offset > 0                    | done (the file was a multiple of 256)     |
//   | more than 256 bytes                      | invalid_input: "READ BINARY EF 2001 at    |
//   |                                          | offset 0 returned 300 bytes, asked 256"   |
//   | any other SW                             | invalid_input: "READ BINARY EF 2001 at    |
//   |                                          | offset 0 returned 6982 (security ...)"    |
//   | 4096 bytes read and more announced       | limit_exceeded (read_patient_identity_    |
//   |                                          | command's message)                        |
class IdentityFileReader {
public:
    static CommandApdu first_command();
    Result<std::optional<CommandApdu>> on_response(const ResponseApdu& response);
    std::span<const std::uint8_t> content() const noexcept { return m_content; }

private:
    Bytes m_content;
};

struct CalendarDate {
    int year = 0;
    int month = 0;
    int day = 0;
    friend bool operator==(const CalendarDate&, const CalendarDate&) = default;
};

// A patient identity read from the card; holding one means every rule of the
// table above held.
class PatientIdentity {
public:
    // The 13 characters, with "2A"/"2B" kept as written.
    const std::string& nir() const noexcept { return m_nir; }
    int nir_key() const noexcept { return m_nir_key; }
    const std::string& family_name() const noexcept { return m_family_name; }
    const std::string& first_name() const noexcept { return m_first_name; }
    const CalendarDate& birth_date() const noexcept { return m_birth_date; }
    const CalendarDate& card_validity_start() const noexcept { return m_card_validity_start; }

private:
    friend Result<PatientIdentity> parse_patient_identity(std::span<const std::uint8_t> content);
    PatientIdentity() = default;

    std::string m_nir;
    int m_nir_key = 0;
    std::string m_family_name;
    std::string m_first_name;
    CalendarDate m_birth_date;
    CalendarDate m_card_validity_start;
};

// Parses the content of EF 2001. Fails with the TLV parser's error
// (prefixed "patient identity: ") for malformed BER-TLV, and otherwise with
// ErrorKind::invalid_input naming the tag and the rule, e.g.
//     "patient identity: TLV 65/93: no tag 93 in tag 65 at offset 0"
//     "patient identity: tag 65/93 (NIR): expected 15 bytes, got 14"
//     "patient identity: tag 65/93 (NIR): non-digit at position 4"
//     "patient identity: tag 65/93 (NIR): key mismatch"
//     "patient identity: tag 65/80 (family name): 65 bytes exceed the 64-byte cap"
//     "patient identity: tag 65/81 (first name): non-printable byte 0A at position 2"
//     "patient identity: tag 65/82 (birth date): 19800230 is not a calendar date"
Result<PatientIdentity> parse_patient_identity(std::span<const std::uint8_t> content);

// Pure date rules, shared with the practitioner profile and the tests.
bool is_leap_year(int year) noexcept;
bool is_calendar_date(const CalendarDate& date) noexcept;

}  // namespace cb::cards
