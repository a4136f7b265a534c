// The service manager's end of sd_notify(3): a datagram socket that a child
// finds through $NOTIFY_SOCKET, as systemd provides it.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace cb::test {

class NotifySocket {
public:
    explicit NotifySocket(std::filesystem::path path);  // binds; throws on failure
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::filesystem::path& path() const noexcept { return m_path; }

    // The next datagram, or nullopt if none arrives within `limit`.
    std::optional<std::string> receive(std::chrono::milliseconds limit);

    // Receives datagrams until one contains `needle`; returns it, or nullopt
    // when none does within `limit`. Every datagram seen is appended to `seen`.
    std::optional<std::string> wait_for(const std::string& needle, std::chrono::milliseconds limit,
                                        std::string* seen = nullptr);

private:
    std::filesystem::path m_path;
    int m_fd = -1;
};

}  // namespace cb::test
