// The card description file that carebridge-vcard reads (scripts/test-pki
// writes one per test card). Lines of `key = value`; blank lines and lines
// starting with '#' are ignored; a value is the rest of the line, trimmed.
// Relative paths are relative to the file's directory.
//
//   | key                | profile      | value                                        | required |
//   |--------------------|--------------|----------------------------------------------|----------|
//   | profile            | both         | patient | practitioner                       | yes      |
//   | certificate        | both         | path of the card certificate (PEM or DER)    | yes      |
//   | key                | both         | path of the card's private key (PEM)         | yes      |
//   | wrong_certificate  | both         | certificate from another CA (fault)          | no       |
//   | wrong_key          | both         | another private key (fault wrong-signature)  | no       |
//   | nir                | patient      | 13 characters + 2-digit key                  | yes      |
//   | family_name        | patient      | text                                         | yes      |
//   | first_name         | patient      | text                                         | yes      |
//   | birth_date         | patient      | YYYYMMDD                                     | yes      |
//   | validity_start     | patient      | YYYYMMDD                                     | yes      |
//   | pin                | practitioner | 4..8 digits                                  | yes      |
//   | tries              | practitioner | 0..15, tries left at start (default 3)       | no       |
//
// The file holds a PIN and key paths: it is generated at test time, mode
// 0600, never committed.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/result.hpp"
#include "tools/vcard/virtual_card.hpp"

namespace cb::vcard {

struct CardDescription {
    Profile profile = Profile::patient;
    std::filesystem::path certificate;
    std::filesystem::path key;
    std::optional<std::filesystem::path> wrong_certificate;
    std::optional<std::filesystem::path> wrong_key;
    PatientFields patient;
    std::string pin;
    unsigned tries = default_pin_tries;
};

// Parses the text of a description file; `name` (the file's path) prefixes
// messages and `base` resolves relative paths. Fails with
// ErrorKind::invalid_input naming the line and key, never echoing the PIN:
//     "cards/practitioner.card:3: pin: expected 4 to 8 digits"
//     "cards/patient.card:7: unknown key 'colour'"
//     "cards/patient.card: missing key 'nir'"
Result<CardDescription> parse_description(std::string_view text, const std::string& name,
                                          const std::filesystem::path& base);

}  // namespace cb::vcard
