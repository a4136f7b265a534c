#include "daemon/daemon.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "carebridge/version.hpp"

namespace cb {

namespace {

constexpr std::string_view component = "daemon";

std::string describe_source(const std::optional<std::filesystem::path>& path) {
    return path ? "config " + path->string() : std::string("embedded defaults");
}

}  // namespace

Result<void> prepare_state_directory(const std::filesystem::path& path) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
        return fail(ErrorKind::io, "state directory " + path.string() + ": cannot create: " + system_error_text(errno));
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0)
        return fail(ErrorKind::io, "state directory " + path.string() + ": " + system_error_text(errno));
    if (!S_ISDIR(info.st_mode))
        return fail(ErrorKind::io, "state directory " + path.string() + ": not a directory");
    if (::access(path.c_str(), R_OK | W_OK | X_OK) != 0)
        return fail(ErrorKind::io, "state directory " + path.string() + ": not writable: " + system_error_text(errno));
    return {};
}

Daemon::Daemon(boost::asio::io_context& io, Logger& logger, ServiceManager& manager, Config config,
               std::optional<std::filesystem::path> config_path)
    : m_io(io),
      m_log(logger),
      m_manager(manager),
      m_config(std::move(config)),
      m_config_path(std::move(config_path)),
      m_signals(io),
      m_watchdog_timer(io),
      m_shutdown_deadline(io) {}

Result<void> Daemon::start() {
    m_log.set_threshold(m_config.daemon.log_level);
    CB_TRY(prepare_state_directory(m_config.daemon.state_dir));

    m_signals.add(SIGTERM);
    m_signals.add(SIGINT);
    m_signals.add(SIGHUP);
    wait_for_signal();

    m_watchdog_interval = m_manager.watchdog_interval();
    if (m_watchdog_interval)
        schedule_watchdog();

    m_log.info(component, std::string("carebridged ") + version_string + " ready (" + describe_source(m_config_path) +
                              ", state " + m_config.daemon.state_dir.string() + ")");
    m_manager.ready(running_status());
    return {};
}

std::string Daemon::running_status() const {
    return "running (" + describe_source(m_config_path) + ")";
}

void Daemon::wait_for_signal() {
    m_signals.async_wait([this](const boost::system::error_code& error, int signal_number) {
        if (error)
            return;  // cancelled at shutdown
        on_signal(signal_number);
        if (!m_stopping)
            wait_for_signal();
    });
}

void Daemon::on_signal(int signal_number) {
    switch (signal_number) {
        case SIGHUP: reload(); break;
        case SIGTERM: shutdown("SIGTERM"); break;
        case SIGINT: shutdown("SIGINT"); break;
        default: m_log.warning(component, "ignoring unexpected signal " + std::to_string(signal_number)); break;
    }
}

void Daemon::reload() {
    if (!m_config_path) {
        m_log.notice(component, "SIGHUP: running on embedded defaults, no file to reload");
        return;
    }
    m_manager.reloading();
    m_log.info(component, "SIGHUP: reloading " + m_config_path->string());
    const ConfigLoad load = load_config_file(*m_config_path);
    if (!load.ok()) {
        for (const auto& issue : load.issues)
            m_log.error("config", issue.to_string());
        const std::string summary = "reload rejected: " + std::to_string(load.issues.size()) + " problem(s) in " +
                                    m_config_path->string() + ", keeping the running configuration";
        m_log.error(component, summary);
        m_manager.ready("running; " + summary);
        return;
    }
    apply(*load.config);
    m_manager.ready(running_status() + "; configuration reloaded");
}

void Daemon::apply(const Config& next) {
    if (next.daemon.state_dir != m_config.daemon.state_dir)
        m_log.warning(component, "daemon.state_dir changed to " + next.daemon.state_dir.string() +
                                     ": takes effect at restart, still using " + m_config.daemon.state_dir.string());
    Config applied = next;
    applied.daemon.state_dir = m_config.daemon.state_dir;
    if (applied.daemon.log_level != m_config.daemon.log_level)
        m_log.set_threshold(applied.daemon.log_level);
    m_config = std::move(applied);
    m_log.info(component,
               "configuration reloaded (log level " + std::string(to_string(m_config.daemon.log_level)) + ")");
}

void Daemon::shutdown(const std::string& reason) {
    if (m_stopping)
        return;
    m_stopping = true;
    m_log.info(component, reason + ": shutting down");
    m_manager.stopping("shutting down (" + reason + ")");

    // Components stop here, each bounded by the deadline below. Once nothing
    // is left on the loop, run() returns on its own.
    m_shutdown_deadline.expires_after(m_config.daemon.shutdown_timeout);
    m_shutdown_deadline.async_wait([this](const boost::system::error_code& error) {
        if (error)
            return;
        m_log.error(component, "shutdown did not finish within " +
                                   std::to_string(m_config.daemon.shutdown_timeout.count()) + " s, forcing exit");
        m_exit_code = 1;
        m_io.stop();
    });
    m_signals.cancel();
    m_watchdog_timer.cancel();

    // Every component has been asked to stop; when their handlers have run,
    // this one lifts the deadline.
    boost::asio::post(m_io, [this] {
        m_shutdown_deadline.cancel();
        m_log.info(component, "stopped");
    });
}

void Daemon::schedule_watchdog() {
    m_manager.watchdog_ping();
    m_watchdog_timer.expires_after(*m_watchdog_interval / 2);
    m_watchdog_timer.async_wait([this](const boost::system::error_code& error) {
        if (!error && !m_stopping)
            schedule_watchdog();
    });
}

}  // namespace cb
