// The card operations the daemon runs when a card is inserted: the APDU
// sequences of docs/cards.md (protocol/cards/ builds and judges every APDU;
// this file only sends them), each inside one PC/SC transaction.
//
// read_patient:
//
//   | # | step                                   | failure when                              |
//   |---|----------------------------------------|-------------------------------------------|
//   | 1 | SELECT patient application             | refused: unsupported_card                 |
//   | 2 | SELECT EF 2001                         | refused: unsupported_card                 |
//   | 3 | READ BINARY EF 2001 (IdentityFileReader)| bad SW, over 4096 bytes: invalid_card    |
//   | 4 | parse_patient_identity                 | invalid_card (the parser's message)       |
//   | 5 | SELECT EF C000, READ BINARY (DER)      | bad SW, over 16 KiB: invalid_card         |
//   | 6 | verify_chain to the insurer CA         | invalid_card                              |
//   | 7 | INTERNAL AUTHENTICATE(challenge)       | SW not 9000: card_error                   |
//   | 8 | verify_card_signature                  | invalid_card                              |
//
// authenticate_practitioner:
//
//   | # | step                                   | failure when                              |
//   |---|----------------------------------------|-------------------------------------------|
//   | 1 | SELECT practitioner application        | refused: unsupported_card                 |
//   | 2 | SELECT EF C000, READ BINARY (DER)      | invalid_card                              |
//   | 3 | verify_chain to the IGC-Santé CA,      | invalid_card: the PIN is never offered to |
//   |   | identity from the subject              | a card whose certificate does not verify  |
//   | 4 | VERIFY query (tries left)              | 6983/63C0: pin_blocked; 1 try left and    |
//   |   |                                        | LastTry::refuse: pin_last_try             |
//   | 5 | VERIFY: on the PIN pad when the reader | 63Cx: wrong_pin (tries_left); 6983:       |
//   |   | offers FEATURE_VERIFY_PIN_DIRECT and   | pin_blocked; pad timeout/cancel:          |
//   |   | PinEntry::pinpad_if_offered, else the  | pin_entry_cancelled; no pad and no PIN:   |
//   |   | caller's PIN (SecureBytes, wiped)      | invalid_request                           |
//   | 6 | INTERNAL AUTHENTICATE(challenge)       | SW not 9000: card_error                   |
//   | 7 | verify_card_signature                  | invalid_card                              |
//
// A PIN is sent at most once per call: a wrong PIN is reported with the
// tries left, never retried. A card reset (another client, a power glitch)
// before the PIN was sent runs the whole sequence once more (the reset lost
// the selection); after it, card_reset is returned.
//
// The APDU count (every SCardTransmit, GET RESPONSE included, and the PIN
// pad's VERIFY) is returned for bench/cards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "drivers/pcsc/card_channel.hpp"
#include "drivers/pcsc/secure_pin_entry.hpp"
#include "protocol/cards/certificate.hpp"
#include "protocol/cards/patient_card.hpp"
#include "protocol/cards/practitioner_card.hpp"

namespace cb::pcsc {

// Our modelling (docs/cards.md): the card certificate in EF C000 on both profiles.
inline constexpr std::uint16_t certificate_file_id = 0xC000;

struct PatientRequest {
    std::span<const std::uint8_t> challenge;       // fresh, 1..255 bytes
    std::span<const std::uint8_t> insurer_ca_der;  // the trusted insurer CA
    std::int64_t verification_time = 0;            // seconds since 1970 UTC
};

struct PatientReading {
    cards::PatientIdentity identity;
    std::size_t apdus = 0;
};

CardResult<PatientReading> read_patient(CardChannel& channel, const PatientRequest& request);

enum class PinEntry {
    pinpad_if_offered,  // FEATURE_VERIFY_PIN_DIRECT when the reader has it, else the caller's PIN
    caller_only,        // always the caller's PIN
};

enum class LastTry {
    refuse,  // with one try left, do not send the PIN (the caller asks the user first)
    allow,   // the user confirmed
};

struct PractitionerRequest {
    const cards::Pin* pin = nullptr;  // the caller's PIN; may be null when a PIN pad is used
    PinEntry entry = PinEntry::pinpad_if_offered;
    LastTry last_try = LastTry::refuse;
    PinpadOptions pinpad{};
    std::span<const std::uint8_t> challenge;         // fresh, 1..255 bytes
    std::span<const std::uint8_t> igc_sante_ca_der;  // the trusted IGC-Santé CA
    std::int64_t verification_time = 0;
};

struct PractitionerAuthentication {
    cards::PractitionerIdentity identity;
    bool pinpad_used = false;
    std::size_t apdus = 0;
};

CardResult<PractitionerAuthentication> authenticate_practitioner(CardChannel& channel,
                                                                 const PractitionerRequest& request);

// What the gateway learns from a practitioner card before asking for the
// PIN: steps 1-4 of authenticate_practitioner, without a PIN, in one
// transaction, plus whether the reader has a PIN pad (SCardControl, no APDU).
//
//   | # | step                                   | failure when                              |
//   |---|----------------------------------------|-------------------------------------------|
//   | 1 | SELECT practitioner application        | refused: unsupported_card                 |
//   | 2 | SELECT EF C000, READ BINARY (DER)      | invalid_card                              |
//   | 3 | verify_chain to the IGC-Santé CA,      | invalid_card                              |
//   |   | identity from the subject              |                                           |
//   | 4 | VERIFY query (tries left)              | an unexpected SW: card_error (a blocked   |
//   |   |                                        | PIN is a result: pin.state == blocked)    |
//
// The identity is the certificate's; the card has not proven that it holds
// the key yet (authenticate_practitioner does).
struct PractitionerProbe {
    std::span<const std::uint8_t> igc_sante_ca_der;
    std::int64_t verification_time = 0;
    PinEntry entry = PinEntry::pinpad_if_offered;  // caller_only: the reader is not asked for a PIN pad
};

struct PractitionerCard {
    cards::PractitionerIdentity identity;
    cards::PinStatus pin;  // verified, not_verified (tries_left) or blocked
    bool pinpad = false;   // the reader offers FEATURE_VERIFY_PIN_DIRECT
    std::size_t apdus = 0;
};

CardResult<PractitionerCard> identify_practitioner(CardChannel& channel, const PractitionerProbe& probe);

// SELECT practitioner application and VERIFY query, in one transaction: is
// the PIN still verified (a reset since the VERIFY forgets it)? Fails as
// steps 1 and 4 above.
CardResult<cards::PinStatus> query_practitioner_pin(CardChannel& channel);

// SELECT EF C000 then READ BINARY in 256-byte chunks until a short chunk,
// 6282, or 6B00 past offset 0; at most cards::max_certificate_size bytes.
// (The application must be selected.) Fails with invalid_card naming the
// offset and SW, or the cap.
CardResult<cards::Bytes> read_certificate_file(CardChannel& channel);

}  // namespace cb::pcsc
