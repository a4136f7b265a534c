// SecureBytes: a byte buffer for secrets (a VERIFY APDU carrying a PIN) that
// is wiped with OPENSSL_cleanse when destroyed, and never copied.
//
// Its capacity is fixed at construction, so the buffer never reallocates and
// no unwiped copy is left behind in freed memory; appending past the capacity
// is a programming error and asserts. It has no text form on purpose.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cb::cards {

class SecureBytes {
public:
    explicit SecureBytes(std::size_t capacity) { m_bytes.reserve(capacity); }
    ~SecureBytes() { wipe(); }

    SecureBytes(const SecureBytes&) = delete;
    SecureBytes& operator=(const SecureBytes&) = delete;
    // Moving hands the buffer over (std::vector moves its pointer; nothing is
    // copied) and leaves the source empty.
    SecureBytes(SecureBytes&& other) noexcept : m_bytes(std::move(other.m_bytes)) { other.m_bytes.clear(); }
    SecureBytes& operator=(SecureBytes&& other) noexcept;

    void append(std::uint8_t byte);
    void append(std::span<const std::uint8_t> bytes);

    std::span<const std::uint8_t> bytes() const noexcept { return m_bytes; }
    std::size_t size() const noexcept { return m_bytes.size(); }

    // Overwrites the contents with zeroes and empties the buffer (capacity kept).
    void wipe() noexcept;

private:
    std::vector<std::uint8_t> m_bytes;
};

}  // namespace cb::cards
