#include "daemon/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>

namespace cb {

namespace {

constexpr std::array<std::pair<std::string_view, LogLevel>, 5> level_names{{
    {"error", LogLevel::error},
    {"warning", LogLevel::warning},
    {"notice", LogLevel::notice},
    {"info", LogLevel::info},
    {"debug", LogLevel::debug},
}};

// Control characters would split an event over several journal lines or
// forge a priority prefix; escape them.
void append_escaped(std::string& out, std::string_view text) {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\\') {
            out += "\\\\";
        } else if (byte < 0x20 || byte == 0x7f) {
            std::array<char, 5> hex{};
            std::snprintf(hex.data(), hex.size(), "\\x%02X", static_cast<unsigned>(byte));
            out += hex.data();
        } else {
            out += c;
        }
    }
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
    for (const auto& [name, value] : level_names)
        if (value == level)
            return name;
    return "unknown";
}

std::optional<LogLevel> parse_log_level(std::string_view text) noexcept {
    for (const auto& [name, value] : level_names)
        if (name == text)
            return value;
    return std::nullopt;
}

std::string Logger::format_line(LogLevel level, std::string_view component, std::string_view message) {
    std::string line;
    line.reserve(8 + component.size() + message.size());
    line += '<';
    line += static_cast<char>('0' + static_cast<int>(level));
    line += '>';
    append_escaped(line, component);
    line += ": ";
    append_escaped(line, message);
    return line;
}

void Logger::log(LogLevel level, std::string_view component, std::string_view message) const {
    if (!enabled(level))
        return;
    std::string line = format_line(level, component, message);
    line += '\n';
    std::string_view rest = line;
    while (!rest.empty()) {
        const ssize_t written = ::write(m_fd, rest.data(), rest.size());
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return;  // nowhere left to report a logging failure
        }
        rest.remove_prefix(static_cast<std::size_t>(written));
    }
}

std::string mask_nir(std::string_view nir) {
    return std::string(nir.substr(0, 5)) + "\u2026";
}

std::string patient_for_log(std::string_view reference) {
    const bool card_reference = reference.size() == 15 && std::all_of(reference.begin(), reference.end(), [](char c) {
                                    return (c >= '0' && c <= '9') || c == 'A' || c == 'B';
                                });
    return card_reference ? mask_nir(reference) : std::string(reference);
}

}  // namespace cb
