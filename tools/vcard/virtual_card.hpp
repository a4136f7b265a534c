// The card side of the two profiles of docs/cards.md, as pure code: command
// APDU bytes in, response APDU bytes out, given the card's contents and its
// state (selected application and file, PIN tries, security status). The
// vpcd transport lives in main.cpp; the description file in description.hpp.
//
// Files (the certificate file id is our modelling; docs/cards.md names the
// identity file only):
//
//   | profile      | application AID              | EF    | content                           |
//   |--------------|------------------------------|-------|-----------------------------------|
//   | patient      | D250000002564954414C45       | 2001  | identity, BER-TLV (65 {93 80 81   |
//   |              |                              |       | 82} 66 {80})                      |
//   | patient      |                              | C000  | card certificate, DER             |
//   | practitioner | E828BD080F8025000001FF0010   | C000  | card certificate, DER             |
//
// Commands (CLA 00 only, else 6E00; unknown INS 6D00):
//
//   | command                 | bytes                    | answers                                    |
//   |-------------------------|--------------------------|--------------------------------------------|
//   | SELECT by AID           | 00 A4 04 00 Lc AID [Le]  | 9000 (this profile's AID); 6A82 otherwise  |
//   | SELECT EF by file id    | 00 A4 02 0C 02 fid       | 9000; 6A82 unknown file or no application  |
//   |                         | (P1 00 accepted too)     | selected; 6A86 other P1-P2; 6700 Lc != 2   |
//   | READ BINARY             | 00 B0 off_hi off_lo Le   | min(Ne, rest) bytes + 9000; 6B00 offset at |
//   |                         |                          | or past the end; 6986 no EF selected;      |
//   |                         |                          | 6A81 P1 b8 set (short EF id unsupported)   |
//   | VERIFY (practitioner)   | 00 20 00 81 08 PIN block | 9000 (tries reset to max); 63Cx wrong, x   |
//   |                         |                          | left (63C0 on the last); 6983 blocked;     |
//   |                         |                          | 6700 Lc != 8; 6A88 P2 != 81                |
//   | VERIFY query            | 00 20 00 81              | 9000 verified; 63Cx not verified; 6983     |
//   | INTERNAL AUTHENTICATE   | 00 88 00 00 Lc chal Le   | signature + 9000; 6982 practitioner PIN    |
//   |                         |                          | not verified; 6700 empty challenge; 6985   |
//   |                         |                          | no application selected                    |
//   | GET RESPONSE            | 00 C0 00 00 Le           | 6985 (nothing pending), except endless-61xx|
//   | malformed command       | < 4 bytes, bad Lc/Le     | 6700                                       |
//
// A reset (vpcd power on, reset) forgets the selection and the security
// status (PIN verified); the tries counter is persistent, as on a real card.
//
// Fault modes that change answers (the others are the transport's or the
// description's, see docs/virtual-card.md):
//
//   | fault                    | effect here                                                      |
//   |--------------------------|------------------------------------------------------------------|
//   | malformed-tlv-overlong   | the profile's first data file (patient EF 2001, practitioner EF  |
//   |                          | C000) starts with an object whose length exceeds what remains    |
//   | malformed-tlv-truncated  | that file loses its last 3 bytes                                 |
//   | malformed-tlv-deep       | that file is wrapped in 12 levels of constructed tag 65          |
//   | endless-61xx             | READ BINARY and INTERNAL AUTHENTICATE answer 61 10; every GET    |
//   |                          | RESPONSE answers 16 bytes + 61 10, forever                       |
//   | blocked-pin              | the PIN starts with 0 tries: VERIFY answers 6983                 |
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "protocol/cards/apdu.hpp"
#include "protocol/result.hpp"

typedef struct evp_pkey_st EVP_PKEY;  // NOLINT(modernize-use-using): OpenSSL's own declaration

namespace cb::vcard {

using cards::Bytes;

inline constexpr std::uint16_t certificate_file_id = 0xC000;
inline constexpr unsigned default_pin_tries = 3;

enum class Profile { patient, practitioner };

enum class Fault {
    none,
    remove_mid_sequence,
    slow,
    malformed_tlv_overlong,
    malformed_tlv_truncated,
    malformed_tlv_deep,
    endless_61xx,
    wrong_certificate,
    wrong_signature,
    blocked_pin,
};

// "remove-mid-sequence" -> Fault::remove_mid_sequence. Fails with
// ErrorKind::invalid_input naming the unknown mode.
Result<Fault> parse_fault(std::string_view name);
const char* to_string(Fault fault) noexcept;
const char* to_string(Profile profile) noexcept;

// The patient identity as the description file gives it; encoded into EF 2001
// by build_identity_file. Not validated here: a test card may carry bad data
// on purpose (the reader's parser judges it).
struct PatientFields {
    std::string nir;  // 13 characters + 2-digit key
    std::string family_name;
    std::string first_name;
    std::string birth_date;      // YYYYMMDD
    std::string validity_start;  // YYYYMMDD
};

// 65 { 93 nir, 80 family, 81 first, 82 birth } 66 { 80 validity }, minimal
// lengths. Fails with the TLV encoder's error (a field over 16 MiB).
Result<Bytes> build_identity_file(const PatientFields& fields);

// The malformed variants of `content` for the malformed-tlv-* faults (table
// above); `content` unchanged for any other fault.
Bytes apply_file_fault(Fault fault, std::span<const std::uint8_t> content);

// Parses a command APDU (short or extended form, apdu.hpp's table) into
// CommandApdu. Fails with ErrorKind::invalid_input for fewer than 4 bytes or
// an Lc/Le that does not match the length ("command APDU: Lc 8 but 3 data
// bytes").
Result<cards::CommandApdu> parse_command(std::span<const std::uint8_t> bytes);

// What signs INTERNAL AUTHENTICATE challenges (by role, so tests can count
// or fail signatures).
class ChallengeSigner {
public:
    virtual ~ChallengeSigner() = default;
    // The signature of `challenge` (certificate.hpp's scheme table), or an
    // error (the card then answers 6F00).
    virtual Result<Bytes> sign(std::span<const std::uint8_t> challenge) = 0;
};

// Signs with an OpenSSL key: ECDSA P-256 / SHA-256 (DER) or RSA PKCS#1 v1.5
// SHA-256. Owns the key.
class KeySigner final : public ChallengeSigner {
public:
    // Takes ownership of `key` (not null).
    explicit KeySigner(EVP_PKEY* key);
    ~KeySigner() override;
    KeySigner(const KeySigner&) = delete;
    KeySigner& operator=(const KeySigner&) = delete;

    // Reads a PEM private key. Fails with ErrorKind::io / invalid_input naming
    // the path (never the key).
    static Result<std::unique_ptr<KeySigner>> from_pem_file(const std::string& path);

    Result<Bytes> sign(std::span<const std::uint8_t> challenge) override;

private:
    EVP_PKEY* m_key;
};

struct CardContents {
    Profile profile = Profile::patient;
    Bytes identity_file;  // patient only: EF 2001
    Bytes certificate;    // DER: EF C000
    std::string pin;      // practitioner only: 4..8 digits
    unsigned pin_tries = default_pin_tries;
    unsigned max_pin_tries = default_pin_tries;
};

class VirtualCard {
public:
    // `signer` must outlive the card. `fault` as in the table above (faults
    // of the transport are ignored here).
    VirtualCard(CardContents contents, ChallengeSigner& signer, Fault fault = Fault::none);
    ~VirtualCard();
    VirtualCard(const VirtualCard&) = delete;
    VirtualCard& operator=(const VirtualCard&) = delete;

    // The answer to reset: 3B 8A 80 01 + historical bytes "CAREBRIDGE" (a
    // direct-convention ATR offering T=1, with TCK).
    static Bytes answer_to_reset();

    // Power on or reset: selection and security status forgotten.
    void reset() noexcept;

    // The response APDU (data + SW1 SW2) to one command APDU. Never fails:
    // malformed commands get a status word.
    Bytes respond(std::span<const std::uint8_t> command_bytes);

    unsigned pin_tries() const noexcept { return m_contents.pin_tries; }
    bool pin_verified() const noexcept { return m_pin_verified; }

private:
    enum class Selected { nothing, application, identity_file, certificate_file };

    Bytes select(const cards::CommandApdu& command);
    Bytes read_binary(const cards::CommandApdu& command);
    Bytes verify(const cards::CommandApdu& command);
    Bytes internal_authenticate(const cards::CommandApdu& command);
    Bytes get_response(const cards::CommandApdu& command);
    std::span<const std::uint8_t> selected_file() const noexcept;

    CardContents m_contents;
    ChallengeSigner& m_signer;
    Fault m_fault;
    Selected m_selected = Selected::nothing;
    bool m_pin_verified = false;
    std::size_t m_endless_position = 0;
};

}  // namespace cb::vcard
