#include "protocol/cards/apdu.hpp"

#include <utility>

#include "protocol/byte_reader.hpp"
#include "protocol/hex.hpp"

namespace cb::cards {

namespace {

std::string ins_name(const CommandApdu& command) {
    return "INS " + to_hex(std::span<const std::uint8_t>(&command.ins, 1));
}

std::string count_of_bytes(std::size_t count) {
    return std::to_string(count) + (count == 1 ? " byte" : " bytes");
}

}  // namespace

bool needs_extended_length(const CommandApdu& command) noexcept {
    return command.data.size() > 255 || command.expected.value_or(0) > 256;
}

Result<Bytes> encode_command(const CommandApdu& command) {
    const std::size_t nc = command.data.size();
    if (nc > max_command_data)
        return fail(ErrorKind::limit_exceeded, "command APDU " + ins_name(command) + ": " + std::to_string(nc) +
                                                   " data bytes exceed the 65535 an extended Lc can carry");
    if (command.expected && *command.expected > max_expected_length)
        return fail(ErrorKind::limit_exceeded, "command APDU " + ins_name(command) + ": Ne " +
                                                   std::to_string(*command.expected) +
                                                   " exceeds the 65536 an extended Le can ask for");
    if (command.expected && *command.expected == 0)
        return fail(ErrorKind::invalid_input,
                    "command APDU " + ins_name(command) + ": Ne 0 is not encodable; leave it absent");

    ByteWriter out;
    out.reserve(4 + 3 + nc + 2);
    out.write_u8(command.cla);
    out.write_u8(command.ins);
    out.write_u8(command.p1);
    out.write_u8(command.p2);
    if (needs_extended_length(command)) {
        out.write_u8(0x00);
        if (nc > 0) {
            out.write_u16_be(static_cast<std::uint16_t>(nc));
            out.write_bytes(command.data);
        }
        if (command.expected)  // 65536 wraps to 0000, as the table says
            out.write_u16_be(static_cast<std::uint16_t>(*command.expected & 0xFFFF));
    } else {
        if (nc > 0) {
            out.write_u8(static_cast<std::uint8_t>(nc));
            out.write_bytes(command.data);
        }
        if (command.expected)  // 256 wraps to 00
            out.write_u8(static_cast<std::uint8_t>(*command.expected & 0xFF));
    }
    return out.take_bytes();
}

std::optional<std::size_t> StatusWord::bytes_available() const noexcept {
    if (sw1() != 0x61)
        return std::nullopt;
    return sw2() == 0 ? std::size_t{256} : std::size_t{sw2()};
}

std::optional<std::size_t> StatusWord::exact_length() const noexcept {
    if (sw1() != 0x6C)
        return std::nullopt;
    return sw2() == 0 ? std::size_t{256} : std::size_t{sw2()};
}

std::optional<unsigned> StatusWord::tries_left() const noexcept {
    if (sw1() != 0x63 || (sw2() & 0xF0) != 0xC0)
        return std::nullopt;
    return static_cast<unsigned>(sw2() & 0x0F);
}

std::string StatusWord::describe() const {
    const std::uint8_t bytes[2] = {sw1(), sw2()};
    const std::string code = to_hex(bytes);
    if (const auto available = bytes_available())
        return code + " (" + count_of_bytes(*available) + " available)";
    if (const auto exact = exact_length())
        return code + " (wrong Le: exactly " + count_of_bytes(*exact) + " available)";
    if (const auto tries = tries_left())
        return code + " (verification failed, " + std::to_string(*tries) + (*tries == 1 ? " try" : " tries") + " left)";
    const char* meaning = "unknown status";
    switch (m_value) {
        case 0x9000: meaning = "success"; break;
        case 0x6281: meaning = "part of returned data may be corrupted"; break;
        case 0x6282: meaning = "end of file reached before reading Ne bytes"; break;
        case 0x6283: meaning = "selected file deactivated"; break;
        case 0x6300: meaning = "verification failed"; break;
        case 0x6581: meaning = "memory failure"; break;
        case 0x6700: meaning = "wrong length"; break;
        case 0x6982: meaning = "security status not satisfied"; break;
        case 0x6983: meaning = "authentication method blocked"; break;
        case 0x6984: meaning = "reference data not usable"; break;
        case 0x6985: meaning = "conditions of use not satisfied"; break;
        case 0x6986: meaning = "command not allowed (no current EF)"; break;
        case 0x6A80: meaning = "incorrect parameters in the data field"; break;
        case 0x6A81: meaning = "function not supported"; break;
        case 0x6A82: meaning = "file not found"; break;
        case 0x6A86: meaning = "incorrect parameters P1-P2"; break;
        case 0x6A88: meaning = "referenced data not found"; break;
        case 0x6B00: meaning = "wrong parameters P1-P2 (offset outside the EF)"; break;
        case 0x6D00: meaning = "instruction not supported"; break;
        case 0x6E00: meaning = "class not supported"; break;
        case 0x6F00: meaning = "no precise diagnosis"; break;
        default: break;
    }
    return code + " (" + meaning + ")";
}

Result<ResponseApdu> parse_response(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > max_response_size)
        return fail(ErrorKind::limit_exceeded,
                    "response APDU: " + std::to_string(bytes.size()) + " bytes exceed the 65538 a card can return");
    if (bytes.size() < 2)
        return fail(ErrorKind::invalid_input,
                    "response APDU: " + count_of_bytes(bytes.size()) + " is too short for the status word SW1 SW2");
    ByteReader in(bytes);
    const auto data = CB_TRY(in.read_bytes(bytes.size() - 2, "response data"));
    const std::uint16_t status = CB_TRY(in.read_u16_be("status word"));
    return ResponseApdu{Bytes(data.begin(), data.end()), StatusWord(status)};
}

CommandApdu get_response_command(std::size_t expected) {
    return CommandApdu{.cla = 0x00, .ins = 0xC0, .p1 = 0x00, .p2 = 0x00, .data = {}, .expected = expected};
}

Result<CommandApdu> internal_authenticate_command(std::span<const std::uint8_t> challenge) {
    if (challenge.empty() || challenge.size() > 255)
        return fail(ErrorKind::invalid_input,
                    "INTERNAL AUTHENTICATE: challenge of " + count_of_bytes(challenge.size()) + ", expected 1..255");
    return CommandApdu{.cla = 0x00,
                       .ins = 0x88,
                       .p1 = 0x00,
                       .p2 = 0x00,
                       .data = Bytes(challenge.begin(), challenge.end()),
                       .expected = 256};
}

Result<ExchangeStep> ResponsePlanner::next(const ResponseApdu& response) {
    if (m_finished)
        return fail(ErrorKind::internal, ins_name(m_original) + ": response planner used after the exchange ended");

    if (const auto exact = response.status.exact_length()) {
        if (m_le_corrected) {
            m_finished = true;
            return fail(ErrorKind::invalid_input, ins_name(m_original) + ": card asked for Le correction twice (" +
                                                      response.status.describe() + ")");
        }
        m_le_corrected = true;
        m_last_sent.expected = *exact;
        return ExchangeStep{SendCommand{m_last_sent}};
    }

    if (response.data.size() > max_expected_length - m_data.size()) {
        m_finished = true;
        return fail(ErrorKind::limit_exceeded, "GET RESPONSE: " + std::to_string(m_data.size() + response.data.size()) +
                                                   " bytes for " + ins_name(m_original) + " exceed 65536");
    }
    m_data.insert(m_data.end(), response.data.begin(), response.data.end());

    if (const auto available = response.status.bytes_available()) {
        if (m_get_response_rounds == max_get_response_rounds) {
            m_finished = true;
            return fail(ErrorKind::limit_exceeded, "GET RESPONSE: more than " +
                                                       std::to_string(max_get_response_rounds) + " rounds for " +
                                                       ins_name(m_original));
        }
        ++m_get_response_rounds;
        m_last_sent = get_response_command(*available);
        return ExchangeStep{SendCommand{m_last_sent}};
    }

    m_finished = true;
    return ExchangeStep{ExchangeComplete{ResponseApdu{std::move(m_data), response.status}}};
}

}  // namespace cb::cards
