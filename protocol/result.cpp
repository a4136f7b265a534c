#include "protocol/result.hpp"

#include <array>
#include <cstring>

namespace cb {

const char* to_string(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::invalid_input: return "invalid input";
        case ErrorKind::limit_exceeded: return "limit exceeded";
        case ErrorKind::unsupported: return "unsupported";
        case ErrorKind::io: return "i/o error";
        case ErrorKind::unavailable: return "unavailable";
        case ErrorKind::internal: return "internal error";
    }
    return "unknown error";
}

std::string system_error_text(int error_number) {
    std::array<char, 256> buffer{};
    // GNU strerror_r returns a pointer to the message, in buffer or static.
    return ::strerror_r(error_number, buffer.data(), buffer.size());
}

}  // namespace cb
