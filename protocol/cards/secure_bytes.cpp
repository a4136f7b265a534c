#include "protocol/cards/secure_bytes.hpp"

#include <openssl/crypto.h>

#include <cassert>
#include <utility>

namespace cb::cards {

SecureBytes& SecureBytes::operator=(SecureBytes&& other) noexcept {
    if (this != &other) {
        wipe();
        m_bytes = std::move(other.m_bytes);
        other.m_bytes.clear();
    }
    return *this;
}

void SecureBytes::append(std::uint8_t byte) {
    assert(m_bytes.size() < m_bytes.capacity() && "SecureBytes must not reallocate");
    m_bytes.push_back(byte);
}

void SecureBytes::append(std::span<const std::uint8_t> bytes) {
    assert(bytes.size() <= m_bytes.capacity() - m_bytes.size() && "SecureBytes must not reallocate");
    m_bytes.insert(m_bytes.end(), bytes.begin(), bytes.end());
}

void SecureBytes::wipe() noexcept {
    if (!m_bytes.empty())
        OPENSSL_cleanse(m_bytes.data(), m_bytes.size());
    m_bytes.clear();
}

}  // namespace cb::cards
