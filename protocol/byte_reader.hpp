// ByteReader and ByteWriter: the one bounded way to walk and build binary
// messages (as OpenSSH's sshbuf and Mosquitto's packet__read_*).
//
// Every parser in protocol/ reads through a ByteReader: each read checks what
// remains and fails with an error that names the field and where it was, e.g.
//
//     truncated: needed 4 bytes for length at offset 12, 2 remain
//
// so no other code needs pointer arithmetic or index checks. Multi-byte
// integers are big-endian (network order, as in APDUs, BER-TLV and MQTT).
//
// Offsets are absolute: a reader made over a slice of a larger message is
// given the slice's offset in that message (`base_offset`), so errors found
// deep inside a nested structure still point at the right byte of the input.
//
// Lifetime: a ByteReader borrows its bytes, and the spans it returns point
// into them; the buffer must outlive the reader and every span taken from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace cb {

class ByteReader {
public:
    // Reads `bytes`, whose first byte is at `base_offset` in the whole message.
    explicit ByteReader(std::span<const std::uint8_t> bytes, std::size_t base_offset = 0) noexcept
        : m_bytes(bytes), m_base_offset(base_offset) {}

    // Each read consumes the bytes it returns. `field` names what is being read
    // ("length", "status word"); it appears in the error. On failure the reader
    // has not moved, and the error is ErrorKind::invalid_input:
    //     "truncated: needed <n> byte(s) for <field> at offset <o>, <r> remain(s)"
    Result<std::uint8_t> read_u8(std::string_view field);
    Result<std::uint16_t> read_u16_be(std::string_view field);
    Result<std::uint32_t> read_u32_be(std::string_view field);

    // Returns the next `count` bytes as a view into the input (see Lifetime).
    Result<std::span<const std::uint8_t>> read_bytes(std::size_t count, std::string_view field);

    // Returns a reader over the next `count` bytes, whose offsets continue this
    // reader's, and moves past them: for length-prefixed blocks.
    Result<ByteReader> read_reader(std::size_t count, std::string_view field);

    // Returns the next byte without consuming it; fails as read_u8 does.
    Result<std::uint8_t> peek_u8(std::string_view field) const;

    // Moves past `count` bytes; fails as read_bytes does.
    Result<void> skip(std::size_t count, std::string_view field);

    // What is left, not consumed.
    std::span<const std::uint8_t> remaining_bytes() const noexcept { return m_bytes.subspan(m_position); }
    std::size_t remaining() const noexcept { return m_bytes.size() - m_position; }
    // Absolute offset of the next byte to be read.
    std::size_t offset() const noexcept { return m_base_offset + m_position; }
    bool at_end() const noexcept { return m_position == m_bytes.size(); }

private:
    // The single bounds check every read goes through.
    Result<std::span<const std::uint8_t>> take(std::size_t count, std::string_view field);
    Error truncated(std::size_t count, std::string_view field) const;

    std::span<const std::uint8_t> m_bytes;
    std::size_t m_position = 0;
    std::size_t m_base_offset = 0;
};

// Appends big-endian fields to a byte vector it owns, for encoders. Writes do
// not fail (running out of memory is not an input error: it aborts).
class ByteWriter {
public:
    ByteWriter() = default;

    void write_u8(std::uint8_t value) { m_bytes.push_back(value); }
    void write_u16_be(std::uint16_t value);
    void write_u32_be(std::uint32_t value);
    void write_bytes(std::span<const std::uint8_t> bytes) { m_bytes.insert(m_bytes.end(), bytes.begin(), bytes.end()); }

    void reserve(std::size_t capacity) { m_bytes.reserve(capacity); }
    std::size_t size() const noexcept { return m_bytes.size(); }
    // A view of what was written so far; invalidated by the next write.
    std::span<const std::uint8_t> bytes() const noexcept { return m_bytes; }
    // Hands over the bytes, leaving the writer empty.
    std::vector<std::uint8_t> take_bytes() noexcept;

private:
    std::vector<std::uint8_t> m_bytes;
};

}  // namespace cb
