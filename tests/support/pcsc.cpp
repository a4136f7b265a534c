#include "tests/support/pcsc.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "tests/support/broker.hpp"  // wait_for_file_text
#include "tests/support/temp_dir.hpp"

namespace cb::test {

namespace {

constexpr int port_attempts = 5;
// sd_listen_fds(3): the first passed descriptor.
constexpr int listen_fds_start = 3;

std::string system_error(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

// True if TCP `port` can be bound on 0.0.0.0 now (vpcd binds INADDR_ANY).
bool port_is_free(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error(system_error("socket"));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(port);
    const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return free;
}

// A port P such that P and P+1 were free a moment ago (vpcd listens on the
// configured port + slot, for its two slots).
std::uint16_t pick_free_port_pair() {
    for (int attempt = 0; attempt < 64; ++attempt) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            throw std::runtime_error(system_error("socket"));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_ANY);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            ::close(fd);
            throw std::runtime_error(system_error("bind 0.0.0.0:0"));
        }
        socklen_t length = sizeof address;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
        ::close(fd);
        const std::uint16_t port = ntohs(address.sin_port);
        if (port < 65535 && port_is_free(port) && port_is_free(static_cast<std::uint16_t>(port + 1)))
            return port;
    }
    throw std::runtime_error("no free pair of TCP ports for vpcd");
}

// A listening unix socket at `path` (replacing a stale one), not CLOEXEC-free:
// the caller dup2()s it into the child.
int listen_unix(const std::filesystem::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.string().size() >= sizeof address.sun_path)
        throw std::runtime_error("socket path too long: " + path.string());
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error(system_error("socket AF_UNIX"));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 64) != 0) {
        const auto message = system_error("bind/listen " + path.string());
        ::close(fd);
        throw std::runtime_error(message);
    }
    return fd;
}

}  // namespace

Pcscd::Pcscd(PcscSetup setup) : m_setup(std::move(setup)) {
    m_socket_path = m_setup.work_dir / "pcscd.comm";
    std::filesystem::create_directories(m_setup.work_dir / "reader.conf.d");
    for (int attempt = 1; attempt <= port_attempts; ++attempt) {
        m_port = pick_free_port_pair();
        if (start())
            return;
    }
    throw std::runtime_error("pcscd: vpcd found no free ports after " + std::to_string(port_attempts) + " attempts:\n" +
                             log());
}

Pcscd::~Pcscd() {
    // SIGTERM first: pcscd then removes /run/pcscd/pcscd.pid, which it wrote.
    if (m_daemon && m_daemon->running()) {
        m_daemon->signal(SIGTERM);
        if (!m_daemon->wait_for_exit(pcsc_hang_limit)) {
            m_daemon->signal(SIGKILL);
            m_daemon->wait_for_exit(pcsc_hang_limit);
        }
    }
}

bool Pcscd::start() {
    {
        // vpcd: DEVICENAME /dev/null:PORT makes it listen (rather than
        // connect) on PORT + slot; CHANNELID is ignored once DEVICENAME is set.
        std::ofstream out(m_setup.work_dir / "reader.conf.d" / "vpcd", std::ios::trunc);
        out << "FRIENDLYNAME \"Virtual PCD\"\n"
            << "DEVICENAME   /dev/null:" << m_port << "\n"
            << "LIBPATH      " << m_setup.vpcd_driver.string() << "\n"
            << "CHANNELID    " << m_port << "\n";
        if (!out.flush())
            throw std::runtime_error("cannot write the vpcd reader configuration");
    }
    ++m_starts;
    const int listen_fd = listen_unix(m_socket_path);
    const std::vector<std::string> argv{m_setup.pcscd.string(),
                                        "--foreground",
                                        "--debug",
                                        "--apdu",
                                        "--config",
                                        (m_setup.work_dir / "reader.conf.d").string()};
    // Socket activation: the listening socket as fd 3, LISTEN_FDS=1, and
    // LISTEN_PID set by a shell that then execs pcscd (so the pid is pcscd's,
    // as sd_listen_fds requires).
    std::vector<std::string> shell{"/bin/sh", "-c", "LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\""};
    shell.insert(shell.end(), argv.begin(), argv.end());
    try {
        m_daemon = std::make_unique<Process>(shell, current_log(),
                                             m_setup.work_dir / ("pcscd-" + std::to_string(m_starts) + ".err"),
                                             std::map<std::string, std::string>{{"LISTEN_FDS", "1"}},
                                             SpawnExtras{{"LISTEN_"}, {{listen_fd, listen_fds_start}}});
    } catch (...) {
        ::close(listen_fd);
        throw;
    }
    ::close(listen_fd);  // pcscd holds it now
    // vpcd opens its ports while pcscd loads the readers, before this line.
    if (!wait_for_file_text(current_log(), "daemon ready.", pcsc_hang_limit, 0, m_daemon->pid()))
        throw std::runtime_error("pcscd did not become ready:\n" + log());
    const std::string text = read_file(current_log());
    if (text.find("Started by systemd") == std::string::npos)
        throw std::runtime_error("pcscd did not take the socket passed to it:\n" + log());
    if (text.find("Could not initialize connection to virtual ICC") != std::string::npos) {
        stop();
        return false;
    }
    return true;
}

std::filesystem::path Pcscd::current_log() const {
    return m_setup.work_dir / ("pcscd-" + std::to_string(m_starts) + ".log");
}

std::map<std::string, std::string> Pcscd::client_environment() const {
    return {{"PCSCLITE_CSOCK_NAME", m_socket_path.string()}};
}

std::string Pcscd::reader_name(unsigned slot) {
    return "Virtual PCD 00 0" + std::to_string(slot);
}

pid_t Pcscd::pid() const noexcept {
    return m_daemon ? m_daemon->pid() : -1;
}

bool Pcscd::running() {
    return m_daemon && m_daemon->running();
}

void Pcscd::stop() {
    if (!running())
        return;
    m_daemon->signal(SIGTERM);
    const auto status = m_daemon->wait_for_exit(pcsc_hang_limit);
    if (!status)
        throw std::runtime_error("pcscd did not stop on SIGTERM:\n" + log());
    if (!status->exited || status->code != 0)
        throw std::runtime_error("pcscd stopped with status " + std::to_string(status->code) + ":\n" + log());
}

void Pcscd::kill() {
    if (!running())
        return;
    m_daemon->signal(SIGKILL);
    if (!m_daemon->wait_for_exit(pcsc_hang_limit))
        throw std::runtime_error("pcscd survived SIGKILL");
}

void Pcscd::restart() {
    stop();
    if (!start())
        throw std::runtime_error("vpcd cannot listen on port " + std::to_string(m_port) + " again:\n" + log());
}

std::string Pcscd::log() const {
    std::string text;
    for (int start = 1; start <= m_starts; ++start) {
        text += read_file(m_setup.work_dir / ("pcscd-" + std::to_string(start) + ".log"));
        text += read_file(m_setup.work_dir / ("pcscd-" + std::to_string(start) + ".err"));
    }
    return text;
}

std::size_t Pcscd::log_mark() const {
    return read_file(current_log()).size();
}

bool Pcscd::wait_for_log(const std::string& needle, std::chrono::milliseconds limit, std::size_t from) {
    return wait_for_file_text(current_log(), needle, limit, from, running() ? m_daemon->pid() : -1);
}

CommandResult Pcscd::scriptor(const std::string& reader, const std::vector<std::string>& apdus) const {
    const auto number = std::to_string(m_scripts++);
    const auto script = m_setup.work_dir / ("script-" + number + ".txt");
    {
        std::ofstream out(script, std::ios::trunc);
        for (const auto& apdu : apdus)
            out << apdu << "\n";
    }
    const auto output_path = m_setup.work_dir / ("script-" + number + ".out");
    CommandResult result;
    {
        Process child({"/usr/bin/scriptor", "-r", reader, script.string()}, output_path, output_path,
                      client_environment());
        const auto status = child.wait_for_exit(pcsc_hang_limit);
        if (!status)
            throw std::runtime_error("scriptor did not finish in time");
        result.status = *status;
    }
    result.output = read_file(output_path);
    return result;
}

std::vector<ScriptorResponse> parse_scriptor_output(const std::string& output) {
    // "< 65 2C ... 16 bytes\n36 31 ... 90 00 : Normal processing."
    std::vector<ScriptorResponse> responses;
    for (auto at = output.find("\n< "); at != std::string::npos; at = output.find("\n< ", at + 1)) {
        const auto end = output.find(" : ", at);
        if (end == std::string::npos)
            break;
        std::vector<std::uint8_t> bytes;
        const std::string hex = output.substr(at + 3, end - at - 3);
        std::size_t position = 0;
        while (position < hex.size()) {
            while (position < hex.size() && std::isspace(static_cast<unsigned char>(hex[position])) != 0)
                ++position;
            if (position + 2 > hex.size())
                break;
            bytes.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(position, 2), nullptr, 16)));
            position += 2;
        }
        if (bytes.size() < 2)
            continue;
        ScriptorResponse response;
        response.status = static_cast<std::uint16_t>((bytes[bytes.size() - 2] << 8) | bytes.back());
        bytes.resize(bytes.size() - 2);
        response.data = std::move(bytes);
        responses.push_back(std::move(response));
    }
    return responses;
}

VirtualCardProcess::VirtualCardProcess(VirtualCardSetup setup)
    : m_setup(std::move(setup)),
      m_process(
          [&] {
              std::vector<std::string> argv{m_setup.executable.string(), "--card", m_setup.description.string(),
                                            "--port", std::to_string(m_setup.port)};
              argv.insert(argv.end(), m_setup.extra.begin(), m_setup.extra.end());
              return argv;
          }(),
          "/dev/null", m_setup.log) {}

VirtualCardProcess::~VirtualCardProcess() {
    if (m_process.running()) {
        m_process.signal(SIGTERM);
        m_process.wait_for_exit(pcsc_hang_limit);
    }
}

bool VirtualCardProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds limit) {
    return wait_for_file_text(m_setup.log, needle, limit, 0, m_process.running() ? m_process.pid() : -1);
}

std::optional<ExitStatus> VirtualCardProcess::stop() {
    m_process.signal(SIGTERM);
    return m_process.wait_for_exit(pcsc_hang_limit);
}

const std::filesystem::path& pcscd_dir() {
    static const TempDir dir;  // removed at exit
    static const bool environment_set = [] {
        ::setenv("PCSCLITE_CSOCK_NAME", (dir.path() / "pcscd.comm").c_str(), 1);
        return true;
    }();
    (void)environment_set;
    return dir.path();
}

std::filesystem::path make_pki(const std::filesystem::path& dir) {
    const auto pki = dir / "pki";
    const auto result =
        run_command({"/bin/bash", std::string(CAREBRIDGE_SOURCE_DIR) + "/scripts/test-pki", pki.string()});
    if (!result.status.exited || result.status.code != 0)
        throw std::runtime_error("scripts/test-pki failed:\n" + result.output);
    return pki;
}

std::string description_value(const std::filesystem::path& path, const std::string& key) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + " = ", 0) == 0)
            return line.substr(key.size() + 3);
    throw std::runtime_error("no " + key + " in " + path.string());
}

}  // namespace cb::test
