#include "tests/support/receiver.hpp"

#include <boost/json/parse.hpp>
#include <csignal>
#include <stdexcept>

#include "tests/support/broker.hpp"

namespace cb::test {

namespace {
constexpr std::chrono::seconds hang_limit{30};
}

ReceiverProcess::ReceiverProcess(ReceiverSetup setup) : m_setup(std::move(setup)) {
    start(0);
}

ReceiverProcess::~ReceiverProcess() {
    if (m_process)
        m_process->signal(SIGKILL);
}

void ReceiverProcess::start(std::uint16_t port) {
    ++m_starts;
    const auto& pki = m_setup.pki_dir;
    std::vector<std::string> argv{m_setup.executable.string(),
                                  "--listen",
                                  "127.0.0.1:" + std::to_string(port),
                                  "--cert",
                                  (pki / "receiver.crt").string(),
                                  "--key",
                                  (pki / "receiver.key").string(),
                                  "--client-ca",
                                  (pki / "facility-ca.crt").string(),
                                  "--facility-ca",
                                  (pki / "facility-ca.crt").string(),
                                  "--db",
                                  (m_setup.work_dir / "receiver.db").string()};
    argv.insert(argv.end(), m_setup.extra.begin(), m_setup.extra.end());
    const auto out = m_setup.work_dir / ("receiver-" + std::to_string(m_starts) + ".out");
    m_process = std::make_unique<Process>(argv, out, log_path());
    if (!wait_for_file_text(out, "\n", hang_limit, 0, m_process->pid()))
        throw std::runtime_error("carebridge-receiver did not start:\n" + log());
    const std::string first = read_file(out);
    const std::string prefix = "listening on 127.0.0.1:";
    if (first.rfind(prefix, 0) != 0)
        throw std::runtime_error("carebridge-receiver: unexpected first line: " + first + "\n" + log());
    m_port = static_cast<std::uint16_t>(std::stoul(first.substr(prefix.size())));
}

std::optional<ExitStatus> ReceiverProcess::stop() {
    if (!m_process)
        return std::nullopt;
    m_process->signal(SIGTERM);
    auto status = m_process->wait_for_exit(hang_limit);
    if (!status)
        m_process->signal(SIGKILL);
    m_process.reset();
    return status;
}

void ReceiverProcess::restart() {
    stop();
    start(m_port);
}

std::filesystem::path ReceiverProcess::log_path() const {
    return m_setup.work_dir / ("receiver-" + std::to_string(m_starts) + ".log");
}

std::string ReceiverProcess::log() const {
    return read_file(log_path());
}

std::string ReceiverProcess::call(const std::string& path, const std::string& json) const {
    const auto& pki = m_setup.pki_dir;
    std::vector<std::string> argv{"/usr/bin/curl",
                                  "--silent",
                                  "--show-error",
                                  "--max-time",
                                  "20",
                                  "--cacert",
                                  (pki / "ca.crt").string(),
                                  "--cert",
                                  (pki / "facility/ec.crt").string(),
                                  "--key",
                                  (pki / "facility/ec.key").string(),
                                  "--write-out",
                                  "\n%{http_code}"};
    if (!json.empty()) {
        argv.insert(argv.end(), {"--header", "Content-Type: application/json", "--data-binary", json});
    }
    argv.push_back("https://localhost:" + std::to_string(m_port) + path);
    const auto result = run_command(argv, hang_limit);
    if (!result.status.exited || result.status.code != 0)
        throw std::runtime_error("curl " + path + " failed: " + result.output);
    const auto newline = result.output.rfind('\n');
    const std::string status = result.output.substr(newline + 1);
    if (status.empty() || status[0] != '2')
        throw std::runtime_error("curl " + path + ": HTTP " + status + ": " + result.output.substr(0, newline));
    return result.output.substr(0, newline);
}

boost::json::value ReceiverProcess::stats() const {
    return boost::json::parse(call("/admin/stats"));
}

}  // namespace cb::test
