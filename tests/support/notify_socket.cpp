#include "tests/support/notify_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <stdexcept>

namespace cb::test {

NotifySocket::NotifySocket(std::filesystem::path path) : m_path(std::move(path)) {
    m_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (m_fd < 0)
        throw std::runtime_error("socket failed");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (m_path.string().size() >= sizeof address.sun_path)
        throw std::runtime_error("notify socket path too long: " + m_path.string());
    std::strncpy(address.sun_path, m_path.c_str(), sizeof address.sun_path - 1);
    if (::bind(m_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        throw std::runtime_error("bind " + m_path.string() + ": " + std::strerror(errno));
}

NotifySocket::~NotifySocket() {
    ::close(m_fd);
    std::error_code ignored;
    std::filesystem::remove(m_path, ignored);
}

std::optional<std::string> NotifySocket::receive(std::chrono::milliseconds limit) {
    pollfd p{m_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0)
        return std::nullopt;
    std::array<char, 4096> buffer{};
    const ssize_t n = ::recv(m_fd, buffer.data(), buffer.size(), 0);
    if (n < 0)
        return std::nullopt;
    return std::string(buffer.data(), static_cast<std::size_t>(n));
}

std::optional<std::string> NotifySocket::wait_for(const std::string& needle, std::chrono::milliseconds limit,
                                                  std::string* seen) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return std::nullopt;
        auto message = receive(left);
        if (!message)
            return std::nullopt;
        if (seen != nullptr)
            *seen += *message + "\n---\n";
        if (message->find(needle) != std::string::npos)
            return message;
    }
}

}  // namespace cb::test
