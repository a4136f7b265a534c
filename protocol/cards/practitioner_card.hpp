// The practitioner card profile (IAS-ECC "CPx"): SELECT, PIN verification,
// and the meaning of VERIFY's status words. Certificates and the
// challenge-response are in certificate.hpp.
//
// The AID is the public IAS-ECC CPx one; the PIN reference, the PIN format and
// its padding are our modelling (see docs/cards.md).
//
//   | command                 | bytes                                        | case |
//   |-------------------------|----------------------------------------------|------|
//   | SELECT application      | 00 A4 04 00 0D E8 28 BD 08 0F 80 25 00 00 01 | 3    |
//   |                         | FF 00 10                                     |      |
//   | VERIFY PIN              | 00 20 00 81 08 <PIN block>                   | 3    |
//   | VERIFY, query tries     | 00 20 00 81                                  | 1    |
//
// PIN block (our modelling): the PIN's 4 to 8 ASCII digits ('0'..'9', 30..39),
// then FF up to 8 bytes: PIN 1234 -> 31 32 33 34 FF FF FF FF.
// PIN reference 81: b8 = 1 "specific (local) to the application", number 1.
//
// VERIFY outcomes (interpret_verify / interpret_pin_query):
//
//   | SW          | after VERIFY with a PIN          | after VERIFY with no data         |
//   |-------------|----------------------------------|-----------------------------------|
//   | 9000        | verified                         | verified (already, this session)  |
//   | 63Cx, x > 0 | wrong PIN, x tries left          | not verified, x tries left        |
//   | 63C0, 6983  | blocked                          | blocked                           |
//   | other       | error (the SW says which)        | error                             |
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "protocol/cards/apdu.hpp"
#include "protocol/cards/secure_bytes.hpp"
#include "protocol/result.hpp"

namespace cb::cards {

inline constexpr std::uint8_t practitioner_aid[] = {0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25,
                                                    0x00, 0x00, 0x01, 0xFF, 0x00, 0x10};
inline constexpr std::uint8_t practitioner_pin_reference = 0x81;
inline constexpr std::size_t pin_min_digits = 4;
inline constexpr std::size_t pin_max_digits = 8;
inline constexpr std::size_t pin_block_size = 8;
inline constexpr std::uint8_t pin_padding = 0xFF;

// A PIN typed by the practitioner: 4 to 8 digits. Wiped on destruction, not
// copyable, and with no text form (nothing can print or log it).
class Pin {
public:
    // Fails with ErrorKind::invalid_input, without echoing the digits:
    //     "PIN: 3 digits, expected 4 to 8"
    //     "PIN: non-digit at position 2"
    static Result<Pin> from_digits(std::string_view digits);

    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    Pin(Pin&& other) noexcept;
    Pin& operator=(Pin&& other) noexcept;

    std::size_t size() const noexcept { return m_size; }

private:
    friend SecureBytes verify_pin_command(const Pin& pin);
    Pin() = default;
    void wipe() noexcept;

    std::array<std::uint8_t, pin_max_digits> m_digits{};
    std::size_t m_size = 0;
};

// 00 A4 04 00 0D <practitioner_aid>
CommandApdu select_practitioner_application();

// 00 20 00 81 08 <PIN block>: 13 bytes in a buffer wiped on destruction.
SecureBytes verify_pin_command(const Pin& pin);

// 00 20 00 81: asks the card for the PIN's state without presenting it.
CommandApdu query_pin_command();

enum class PinState {
    verified,
    wrong_pin,     // after VERIFY with a PIN; tries_left says how many remain
    not_verified,  // after the query; tries_left says how many remain
    blocked,
    error,
};

struct PinStatus {
    PinState state = PinState::error;
    std::optional<unsigned> tries_left;  // wrong_pin and not_verified only
    StatusWord status{0x6F00};           // what the card said, for messages

    friend bool operator==(const PinStatus&, const PinStatus&) = default;
};

// The tables above. Never fails: an unexpected SW is PinState::error.
PinStatus interpret_verify(StatusWord status) noexcept;
PinStatus interpret_pin_query(StatusWord status) noexcept;

}  // namespace cb::cards
