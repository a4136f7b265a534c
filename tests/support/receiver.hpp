// carebridge-receiver (docs/receiver.md) as a child process for integration
// tests, and an independent client for its admin endpoints (Debian's curl,
// with the facility's test certificate).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace cb::test {

struct ReceiverSetup {
    std::filesystem::path executable;  // carebridge-receiver
    std::filesystem::path pki_dir;     // scripts/test-pki output (receiver, facility sections)
    std::filesystem::path work_dir;    // must exist: receiver.db, receiver-N.out/.log
    std::vector<std::string> extra = {"--auto-pair"};
};

class ReceiverProcess {
public:
    // Starts on a port the kernel picks; returns once it listens. Throws with its log.
    explicit ReceiverProcess(ReceiverSetup setup);
    ~ReceiverProcess();
    ReceiverProcess(const ReceiverProcess&) = delete;
    ReceiverProcess& operator=(const ReceiverProcess&) = delete;

    std::uint16_t port() const noexcept { return m_port; }
    bool running() const noexcept { return m_process != nullptr; }
    // SIGTERM, waits for the exit (SIGKILL after 30 s); nullopt if it had to be
    // killed or was not running.
    std::optional<ExitStatus> stop();
    // Starts again on the same port, with the same database.
    void restart();
    std::string log() const;
    std::filesystem::path log_path() const;

    // curl with the facility's certificate: GET `path`, or POST `json` to it.
    // Throws when no complete HTTP answer arrives; returns the body.
    std::string call(const std::string& path, const std::string& json = {}) const;
    boost::json::value stats() const;

private:
    void start(std::uint16_t port);

    ReceiverSetup m_setup;
    std::uint16_t m_port = 0;
    int m_starts = 0;
    std::unique_ptr<Process> m_process;
};

}  // namespace cb::test
