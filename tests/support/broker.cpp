#include "tests/support/broker.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace cb::test {

namespace {

constexpr int port_attempts = 5;

// A file descriptor closed on scope exit.
class Descriptor {
public:
    explicit Descriptor(int fd) : m_fd(fd) {}
    ~Descriptor() {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    int get() const noexcept { return m_fd; }

private:
    int m_fd;
};

std::string system_error(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

std::string current_user() {
    const passwd* entry = ::getpwuid(::geteuid());
    if (entry == nullptr)
        throw std::runtime_error("no passwd entry for uid " + std::to_string(::geteuid()));
    return entry->pw_name;
}

void replace_all(std::string& text, const std::string& placeholder, const std::string& value) {
    for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at + value.size()))
        text.replace(at, placeholder.size(), value);
}

// The first "@NAME@" left in `text`, if any.
std::optional<std::string> find_placeholder(const std::string& text) {
    for (auto at = text.find('@'); at != std::string::npos; at = text.find('@', at + 1)) {
        const auto close = text.find('@', at + 1);
        if (close == std::string::npos)
            return std::nullopt;
        const auto name = text.substr(at + 1, close - at - 1);
        if (!name.empty() && name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos)
            return text.substr(at, close - at + 1);
    }
    return std::nullopt;
}

// True if some line of `text` starts with "mosquitto
// version " (after the timestamp) and ends with " running".
bool ready_line(const std::string& text) {
    for (auto end = text.find(" running\n"); end != std::string::npos; end = text.find(" running\n", end + 1)) {
        const auto line_start = text.rfind('\n', end);
        const auto start = line_start == std::string::npos ? 0 : line_start + 1;
        if (text.find("mosquitto version ", start) < end)
            return true;
    }
    return false;
}

// Waits until `matches(content)` for the file `path`, which `writer` (if > 0)
// is writing. inotify wakes us on each write, the pidfd on the writer's exit.
template <typename Predicate>
bool wait_for_file(const std::filesystem::path& path, Predicate matches, std::chrono::milliseconds limit,
                   pid_t writer) {
    const Descriptor notify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (notify.get() < 0)
        throw std::runtime_error(system_error("inotify_init1"));
    // Watch the directory: the file may not exist yet, and this also sees it
    // being created or replaced.
    const auto directory = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    if (::inotify_add_watch(notify.get(), directory.c_str(), IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
        throw std::runtime_error(system_error("inotify_add_watch " + directory.string()));
    const Descriptor process(writer > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, writer, 0)) : -1);
    if (writer > 0 && process.get() < 0)
        throw std::runtime_error(system_error("pidfd_open"));

    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        // Read after arming the watch: a write in between is not lost.
        if (matches(read_file(path)))
            return true;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        std::array<pollfd, 2> fds{pollfd{notify.get(), POLLIN, 0}, pollfd{process.get(), POLLIN, 0}};
        const int ready = ::poll(fds.data(), writer > 0 ? 2 : 1, static_cast<int>(left.count()));
        if (ready < 0 && errno != EINTR)
            throw std::runtime_error(system_error("poll"));
        if (writer > 0 && (fds[1].revents & POLLIN) != 0)
            return matches(read_file(path));  // its last words count
        std::array<char, 4096> drain{};
        while (::read(notify.get(), drain.data(), drain.size()) > 0) {
        }
    }
}

}  // namespace

std::uint16_t pick_free_port() {
    const Descriptor socket_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (socket_fd.get() < 0)
        throw std::runtime_error(system_error("socket"));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(socket_fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        throw std::runtime_error(system_error("bind 127.0.0.1:0"));
    socklen_t length = sizeof address;
    if (::getsockname(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::runtime_error(system_error("getsockname"));
    return ntohs(address.sin_port);
}

bool wait_for_file_text(const std::filesystem::path& path, const std::string& needle, std::chrono::milliseconds limit,
                        std::size_t from, pid_t writer) {
    return wait_for_file(
        path,
        [&](const std::string& text) { return text.size() > from && text.find(needle, from) != std::string::npos; },
        limit, writer);
}

bool wait_for_file_content(const std::filesystem::path& path, const std::function<bool(const std::string&)>& matches,
                           std::chrono::milliseconds limit, pid_t writer) {
    return wait_for_file(path, matches, limit, writer);
}

// --- Subscriber --------------------------------------------------------------

Subscriber::Subscriber(std::vector<std::string> argv, std::filesystem::path output_path,
                       std::filesystem::path errors_path)
    : m_output_path(std::move(output_path)),
      m_errors_path(std::move(errors_path)),
      m_process(std::move(argv), m_output_path, m_errors_path) {}

bool Subscriber::wait_for_output(const std::string& needle, std::chrono::milliseconds limit) {
    return wait_for_file_text(m_output_path, needle, limit, 0, m_process.running() ? m_process.pid() : -1);
}

// --- Broker ------------------------------------------------------------------

std::filesystem::path default_pins_plugin() {
    return CAREBRIDGE_PINS_PLUGIN;
}

Broker::Broker(BrokerSetup setup) : m_setup(std::move(setup)) {
    const auto& work = m_setup.work_dir;
    if (m_setup.pki_dir)
        m_pki = std::make_unique<TestPki>(TestPki::existing(*m_setup.pki_dir));
    else
        m_pki = std::make_unique<TestPki>(m_setup.source_dir, work / "pki", m_setup.devices);
    m_config_path = work / "mosquitto.conf";
    m_persistence_dir = work / "persistence";
    std::filesystem::create_directories(m_persistence_dir);
    if (!m_setup.catalog) {
        m_setup.catalog = work / "broker-catalog.toml";
        std::ofstream empty(*m_setup.catalog, std::ios::trunc);
        empty << "# No device enrolled: no certificate pinned.\n";
        if (!empty.flush())
            throw std::runtime_error("cannot write " + m_setup.catalog->string());
    }

    for (int attempt = 1; attempt <= port_attempts; ++attempt) {
        m_port = pick_free_port();
        if (start())
            return;
    }
    throw std::runtime_error("mosquitto: no free port after " + std::to_string(port_attempts) + " attempts:\n" + log());
}

Broker::~Broker() {
    if (m_process && m_process->running()) {
        m_process->signal(SIGKILL);
        m_process->wait_for_exit(broker_hang_limit);
    }
}

bool Broker::start() {
    const auto template_path = m_setup.source_dir / "config" / "mosquitto" / "carebridge.conf.in";
    std::string config = read_file(template_path);
    if (config.empty())
        throw std::runtime_error("cannot read " + template_path.string());
    replace_all(config, "@PORT@", std::to_string(m_port));
    replace_all(config, "@PKI_DIR@", m_pki->directory().string());
    replace_all(config, "@ACL_FILE@", (m_setup.source_dir / "config" / "mosquitto" / "carebridge.acl").string());
    replace_all(config, "@PERSISTENCE_DIR@", m_persistence_dir.string());
    replace_all(config, "@USER@", current_user());
    replace_all(config, "@PINS_PLUGIN@", m_setup.pins_plugin.string());
    replace_all(config, "@CATALOG@", m_setup.catalog->string());
    // Tests replace the catalog and publish at once: the plugin looks at the
    // file on every message instead of once a second.
    const std::string catalog_line = "plugin_opt_catalog " + m_setup.catalog->string() + "\n";
    const auto catalog_at = config.find(catalog_line);
    if (catalog_at == std::string::npos)
        throw std::runtime_error(template_path.string() + ": no plugin_opt_catalog line");
    config.insert(catalog_at + catalog_line.size(), "plugin_opt_catalog_check_ms 0\n");
    if (const auto placeholder = find_placeholder(config))
        throw std::runtime_error(template_path.string() + ": placeholder " + *placeholder + " left unreplaced");
    {
        std::ofstream out(m_config_path, std::ios::binary | std::ios::trunc);
        out << config;
        if (!out.flush())
            throw std::runtime_error("cannot write " + m_config_path.string());
    }

    ++m_starts;
    const auto log_path = current_log();
    m_process =
        std::make_unique<Process>(std::vector<std::string>{m_setup.mosquitto.string(), "-c", m_config_path.string()},
                                  m_setup.work_dir / ("broker-" + std::to_string(m_starts) + ".out"), log_path);
    if (wait_for_file(log_path, ready_line, broker_hang_limit, m_process->pid()))
        return true;
    if (!m_process->running()) {
        const std::string text = read_file(log_path);
        if (text.find("Address already in use") != std::string::npos)
            return false;
        throw std::runtime_error("mosquitto exited before it was ready:\n" + log());
    }
    throw std::runtime_error("mosquitto not ready within " + std::to_string(broker_hang_limit.count()) + " ms:\n" +
                             log());
}

std::filesystem::path Broker::current_log() const {
    return m_setup.work_dir / ("broker-" + std::to_string(m_starts) + ".log");
}

bool Broker::running() {
    return m_process && m_process->running();
}

void Broker::stop() {
    if (!running())
        return;
    m_process->signal(SIGTERM);
    const auto status = m_process->wait_for_exit(broker_hang_limit);
    if (!status)
        throw std::runtime_error("mosquitto did not stop on SIGTERM:\n" + log());
    if (!status->exited || status->code != 0)
        throw std::runtime_error("mosquitto stopped with status " + std::to_string(status->code) + ":\n" + log());
}

void Broker::kill() {
    if (!running())
        return;
    m_process->signal(SIGKILL);
    if (!m_process->wait_for_exit(broker_hang_limit))
        throw std::runtime_error("mosquitto survived SIGKILL");
}

void Broker::restart() {
    stop();
    if (!start())
        throw std::runtime_error("mosquitto cannot listen on port " + std::to_string(m_port) + " again:\n" + log());
}

std::string Broker::log() const {
    std::string text;
    for (int start = 1; start <= m_starts; ++start)
        text += read_file(m_setup.work_dir / ("broker-" + std::to_string(start) + ".log"));
    return text;
}

std::size_t Broker::log_mark() const {
    return read_file(current_log()).size();
}

bool Broker::wait_for_log(const std::string& needle, std::chrono::milliseconds limit, std::size_t from) {
    return wait_for_file_text(current_log(), needle, limit, from, running() ? m_process->pid() : -1);
}

bool Broker::wait_for_subscription(const std::string& client_id, const std::string& filter, std::size_t from,
                                   std::chrono::milliseconds limit) {
    // The broker logs "<timestamp>: <client id> <qos> <filter>".
    const std::string prefix = ": " + client_id + " ";
    const std::string suffix = " " + filter + "\n";
    const auto subscribed = [&](const std::string& text) {
        for (const char qos : {'0', '1', '2'})
            if (text.size() > from && text.find(prefix + qos + suffix, from) != std::string::npos)
                return true;
        return false;
    };
    return wait_for_file(current_log(), subscribed, limit, running() ? m_process->pid() : -1);
}

std::vector<std::string> Broker::client_arguments(const ClientIdentity& who) const {
    std::vector<std::string> arguments{
        "-h", "127.0.0.1", "-p", std::to_string(m_port), "--cafile", m_pki->ca_certificate().string()};
    if (who.has_certificate()) {
        arguments.insert(arguments.end(), {"--cert", who.certificate.string(), "--key", who.key.string()});
    }
    return arguments;
}

CommandResult Broker::publish(const ClientIdentity& who, const std::string& topic, const std::string& payload, int qos,
                              Retain retain, const std::vector<std::string>& extra) const {
    std::vector<std::string> argv{(m_setup.clients_dir / "mosquitto_pub").string()};
    const auto common = client_arguments(who);
    argv.insert(argv.end(), common.begin(), common.end());
    argv.insert(argv.end(), {"-q", std::to_string(qos), "-t", topic, "-m", payload});
    if (retain == Retain::Yes)
        argv.push_back("-r");
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_command(argv, broker_hang_limit);
}

CommandResult Broker::subscribe(const ClientIdentity& who, const std::vector<std::string>& arguments) const {
    std::vector<std::string> argv{(m_setup.clients_dir / "mosquitto_sub").string()};
    const auto common = client_arguments(who);
    argv.insert(argv.end(), common.begin(), common.end());
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return run_command(argv, broker_hang_limit);
}

std::unique_ptr<Subscriber> Broker::start_subscriber(const ClientIdentity& who,
                                                     const std::vector<std::string>& arguments) {
    std::vector<std::string> argv{(m_setup.clients_dir / "mosquitto_sub").string(), "-v"};
    const auto common = client_arguments(who);
    argv.insert(argv.end(), common.begin(), common.end());
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    ++m_subscribers;
    const auto base = m_setup.work_dir / ("client-" + std::to_string(m_subscribers));
    return std::make_unique<Subscriber>(std::move(argv), base.string() + ".out", base.string() + ".err");
}

}  // namespace cb::test
