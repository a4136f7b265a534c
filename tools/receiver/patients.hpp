// The patients the receiver can pair, as the national space knows them from
// their account: a NIR, the pairing code the patient reads in the app, and the
// account id (idPe) that bundles name as their subject.
//
// The patients file (--patients), one patient per line, at most 1 MiB and
// 100 000 patients; '#' starts a comment line; blank lines are ignored:
//
//   | field | format                                                        |
//   |-------|---------------------------------------------------------------|
//   | NIR   | 13 to 15 characters of [0-9AB] (13 + the optional 2-digit key; |
//   |       | A/B for Corsica's 2A/2B)                                      |
//   | CODE  | 4 to 64 printable ASCII characters, no space                  |
//   | IDPE  | 1 to 128 printable ASCII characters, no space, no '|'         |
//
//   # NIR            CODE    IDPE
//   280017512345697  4821    idpe-4f2a9c
//
// Fields are separated by spaces or tabs. A NIR is looked up by its first 13
// characters, so "2800175123456" and "280017512345697" are the same patient;
// two lines for the same patient are refused.
//
// With --auto-pair, a NIR that is not in the file pairs with the code "0000",
// and its idPe is derived from the NIR (auto_pair_idpe below).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/result.hpp"

namespace cb::receiver {

inline constexpr std::size_t max_patients_file_size = 1024 * 1024;
inline constexpr std::size_t max_patients = 100'000;
inline constexpr std::string_view auto_pair_code = "0000";

// A NIR as the receiver keys it: its first 13 characters, checked. Fails with
// ErrorKind::invalid_input ("nir: expected 13 to 15 characters of [0-9AB], got 5").
Result<std::string> nir_key(std::string_view nir);

// True for what a subject identifier may hold (fhir_bundle.hpp's rule, without spaces).
bool valid_idpe(std::string_view idpe) noexcept;

// "idpe-" + the first 16 hex digits of SHA-256("carebridge-receiver auto-pair " + nir_key).
std::string auto_pair_idpe(std::string_view nir_key);

enum class AutoPair : bool { no, yes };

class PatientDirectory {
public:
    PatientDirectory() = default;

    // Parses the file's text; `source` names it in errors ("patients.txt:3: code: ...").
    // Fails with ErrorKind::invalid_input, or limit_exceeded over the caps above.
    static Result<PatientDirectory> parse(std::string_view text, const std::string& source, AutoPair auto_pair);
    // An empty directory (--auto-pair only).
    static PatientDirectory automatic() {
        PatientDirectory directory;
        directory.m_auto_pair = AutoPair::yes;
        return directory;
    }

    // The idPe of the patient when `code` is theirs; nullopt otherwise (an
    // unknown NIR and a wrong code are not told apart). Compares codes in
    // constant time.
    std::optional<std::string> pair(std::string_view nir, std::string_view code) const;

    std::size_t size() const noexcept { return m_patients.size(); }

private:
    struct Patient {
        std::string code;
        std::string idpe;
    };
    std::map<std::string, Patient, std::less<>> m_patients;  // by nir_key
    AutoPair m_auto_pair = AutoPair::no;
};

}  // namespace cb::receiver
