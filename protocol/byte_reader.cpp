#include "protocol/byte_reader.hpp"

#include <string>
#include <utility>

namespace cb {

namespace {

std::string count_of_bytes(std::size_t count) {
    return std::to_string(count) + (count == 1 ? " byte" : " bytes");
}

}  // namespace

Error ByteReader::truncated(std::size_t count, std::string_view field) const {
    const std::size_t left = remaining();
    std::string message = "truncated: needed " + count_of_bytes(count) + " for ";
    message.append(field);
    message +=
        " at offset " + std::to_string(offset()) + ", " + std::to_string(left) + (left == 1 ? " remains" : " remain");
    return fail(ErrorKind::invalid_input, std::move(message));
}

Result<std::span<const std::uint8_t>> ByteReader::take(std::size_t count, std::string_view field) {
    if (count > remaining())
        return truncated(count, field);
    const auto taken = m_bytes.subspan(m_position, count);
    m_position += count;
    return taken;
}

Result<std::uint8_t> ByteReader::read_u8(std::string_view field) {
    const auto bytes = CB_TRY(take(1, field));
    return bytes[0];
}

Result<std::uint16_t> ByteReader::read_u16_be(std::string_view field) {
    const auto bytes = CB_TRY(take(2, field));
    return static_cast<std::uint16_t>((bytes[0] << 8) | bytes[1]);
}

Result<std::uint32_t> ByteReader::read_u32_be(std::string_view field) {
    const auto bytes = CB_TRY(take(4, field));
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
           std::uint32_t{bytes[3]};
}

Result<std::span<const std::uint8_t>> ByteReader::read_bytes(std::size_t count, std::string_view field) {
    return take(count, field);
}

Result<ByteReader> ByteReader::read_reader(std::size_t count, std::string_view field) {
    const std::size_t start = offset();
    const auto bytes = CB_TRY(take(count, field));
    return ByteReader(bytes, start);
}

Result<std::uint8_t> ByteReader::peek_u8(std::string_view field) const {
    if (at_end())
        return truncated(1, field);
    return m_bytes[m_position];
}

Result<void> ByteReader::skip(std::size_t count, std::string_view field) {
    CB_TRY(take(count, field));
    return {};
}

void ByteWriter::write_u16_be(std::uint16_t value) {
    m_bytes.push_back(static_cast<std::uint8_t>(value >> 8));
    m_bytes.push_back(static_cast<std::uint8_t>(value));
}

void ByteWriter::write_u32_be(std::uint32_t value) {
    m_bytes.push_back(static_cast<std::uint8_t>(value >> 24));
    m_bytes.push_back(static_cast<std::uint8_t>(value >> 16));
    m_bytes.push_back(static_cast<std::uint8_t>(value >> 8));
    m_bytes.push_back(static_cast<std::uint8_t>(value));
}

std::vector<std::uint8_t> ByteWriter::take_bytes() noexcept {
    std::vector<std::uint8_t> bytes = std::move(m_bytes);
    m_bytes.clear();
    return bytes;
}

}  // namespace cb
