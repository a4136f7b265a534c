// Logging: one event a line on stderr, prefixed with its syslog priority.
//
//   <6>daemon: ready (config /etc/carebridge/carebridged.toml)
//   ^  ^       ^
//   |  |       message: newlines and control characters escaped, so one event stays one line
//   |  component
//   syslog priority (sd-daemon(3) prefixes): journald stores it as PRIORITY=, a terminal shows it
//
// Each line is written with a single write(2), so concurrent writers never interleave
// inside a line. Patient identifiers are logged only at debug level, secrets never.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

namespace cb {

enum class LogLevel : int {  // values are syslog priorities
    error = 3,
    warning = 4,
    notice = 5,
    info = 6,
    debug = 7,
};

std::string_view to_string(LogLevel level) noexcept;
// Parses "error", "warning", "notice", "info" or "debug"; nullopt otherwise.
std::optional<LogLevel> parse_log_level(std::string_view text) noexcept;

// "28001…": the first 5 characters of a NIR, for logs.
std::string mask_nir(std::string_view nir);

// A patient reference as logs at info and above show it: the reference a
// patient card gives (the NIR and its key, 15 characters of digits, 2A/2B
// for Corsica) masked to its first 5 characters and "…", like the card
// events; a reference of the catalog's own (e.g. "patient-1") as it is.
std::string patient_for_log(std::string_view reference);

class Logger {
public:
    // Writes to the given file descriptor (stderr by default); does not own it.
    explicit Logger(LogLevel threshold = LogLevel::info, int fd = 2) : m_threshold(threshold), m_fd(fd) {}

    void set_threshold(LogLevel level) noexcept { m_threshold.store(level, std::memory_order_relaxed); }
    LogLevel threshold() const noexcept { return m_threshold.load(std::memory_order_relaxed); }
    bool enabled(LogLevel level) const noexcept { return static_cast<int>(level) <= static_cast<int>(threshold()); }

    void log(LogLevel level, std::string_view component, std::string_view message) const;

    void error(std::string_view component, std::string_view message) const { log(LogLevel::error, component, message); }
    void warning(std::string_view component, std::string_view message) const {
        log(LogLevel::warning, component, message);
    }
    void notice(std::string_view component, std::string_view message) const {
        log(LogLevel::notice, component, message);
    }
    void info(std::string_view component, std::string_view message) const { log(LogLevel::info, component, message); }
    void debug(std::string_view component, std::string_view message) const { log(LogLevel::debug, component, message); }

    // The exact line log() would write (without the trailing newline); exposed for tests.
    static std::string format_line(LogLevel level, std::string_view component, std::string_view message);

private:
    std::atomic<LogLevel> m_threshold;
    int m_fd;
};

}  // namespace cb
