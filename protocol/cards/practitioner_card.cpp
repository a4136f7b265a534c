#include "protocol/cards/practitioner_card.hpp"

#include <openssl/crypto.h>

#include <string>

namespace cb::cards {

Result<Pin> Pin::from_digits(std::string_view digits) {
    if (digits.size() < pin_min_digits || digits.size() > pin_max_digits)
        return fail(ErrorKind::invalid_input, "PIN: " + std::to_string(digits.size()) + " digits, expected " +
                                                  std::to_string(pin_min_digits) + " to " +
                                                  std::to_string(pin_max_digits));
    for (std::size_t position = 0; position < digits.size(); ++position)
        if (digits[position] < '0' || digits[position] > '9')
            return fail(ErrorKind::invalid_input, "PIN: non-digit at position " + std::to_string(position));
    Pin pin;
    for (std::size_t position = 0; position < digits.size(); ++position)
        pin.m_digits[position] = static_cast<std::uint8_t>(digits[position]);
    pin.m_size = digits.size();
    return pin;
}

Pin::~Pin() {
    wipe();
}

Pin::Pin(Pin&& other) noexcept : m_digits(other.m_digits), m_size(other.m_size) {
    other.wipe();
}

Pin& Pin::operator=(Pin&& other) noexcept {
    if (this != &other) {
        m_digits = other.m_digits;
        m_size = other.m_size;
        other.wipe();
    }
    return *this;
}

void Pin::wipe() noexcept {
    OPENSSL_cleanse(m_digits.data(), m_digits.size());
    m_size = 0;
}

CommandApdu select_practitioner_application() {
    return CommandApdu{.cla = 0x00,
                       .ins = 0xA4,
                       .p1 = 0x04,
                       .p2 = 0x00,
                       .data = Bytes(std::begin(practitioner_aid), std::end(practitioner_aid)),
                       .expected = std::nullopt};
}

SecureBytes verify_pin_command(const Pin& pin) {
    SecureBytes command(5 + pin_block_size);
    command.append(0x00);
    command.append(0x20);
    command.append(0x00);
    command.append(practitioner_pin_reference);
    command.append(static_cast<std::uint8_t>(pin_block_size));
    for (std::size_t position = 0; position < pin_block_size; ++position)
        command.append(position < pin.m_size ? pin.m_digits[position] : pin_padding);
    return command;
}

CommandApdu query_pin_command() {
    return CommandApdu{
        .cla = 0x00, .ins = 0x20, .p1 = 0x00, .p2 = practitioner_pin_reference, .data = {}, .expected = std::nullopt};
}

namespace {

PinStatus interpret(StatusWord status, PinState failed_state) noexcept {
    if (status.is_success())
        return PinStatus{PinState::verified, std::nullopt, status};
    if (status.value() == 0x6983)
        return PinStatus{PinState::blocked, std::nullopt, status};
    if (const auto tries = status.tries_left()) {
        if (*tries == 0)
            return PinStatus{PinState::blocked, std::nullopt, status};
        return PinStatus{failed_state, *tries, status};
    }
    return PinStatus{PinState::error, std::nullopt, status};
}

}  // namespace

PinStatus interpret_verify(StatusWord status) noexcept {
    return interpret(status, PinState::wrong_pin);
}

PinStatus interpret_pin_query(StatusWord status) noexcept {
    return interpret(status, PinState::not_verified);
}

}  // namespace cb::cards
