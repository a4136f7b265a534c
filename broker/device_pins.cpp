#include "broker/device_pins.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <span>

#include "protocol/hex.hpp"

namespace cb::broker {

std::string certificate_sha256(x509_st* certificate) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (certificate == nullptr || X509_digest(certificate, EVP_sha256(), digest.data(), &size) != 1 || size != 32)
        return {};
    return to_lowercase_hex(std::span<const std::uint8_t>(digest.data(), size));
}

}  // namespace cb::broker
