#include "broker/device_pins.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>

namespace cb::broker {

PinVerdict check_pin(const DeviceCatalog& catalog, std::string_view device_id, std::string_view certificate_sha256) {
    const EnrolledDevice* device = catalog.device(device_id);
    if (device == nullptr)
        return PinVerdict::not_enrolled;
    return device->certificate_sha256 == certificate_sha256 ? PinVerdict::matches : PinVerdict::mismatch;
}

std::string certificate_sha256(x509_st* certificate) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (certificate == nullptr || X509_digest(certificate, EVP_sha256(), digest.data(), &size) != 1 || size != 32)
        return {};
    constexpr std::string_view digits = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * std::size_t{size});
    for (unsigned int i = 0; i < size; ++i) {
        hex += digits[digest[i] >> 4U];
        hex += digits[digest[i] & 0x0FU];
    }
    return hex;
}

}  // namespace cb::broker
