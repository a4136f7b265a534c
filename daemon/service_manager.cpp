#include "daemon/service_manager.hpp"

#include <systemd/sd-daemon.h>

#include <ctime>
#include <string>

namespace cb {

namespace {

// STATUS= is one line of free text; a newline would start a new assignment.
std::string status_line(std::string_view status) {
    std::string line = "STATUS=";
    for (const char c : status)
        line += (c == '\n' || c == '\r') ? ' ' : c;
    return line;
}

void notify(const std::string& message) {
    // unset_environment = 0: children we might spawn are not ours to announce.
    // The trailing newline is harmless to sd_notify and keeps datagrams apart
    // for tools that print them in a stream (scripts/demo uses socat).
    sd_notify(0, (message + "\n").c_str());
}

}  // namespace

void SystemdServiceManager::ready(std::string_view status) {
    notify("READY=1\n" + status_line(status));
}

void SystemdServiceManager::reloading() {
    // systemd 253's Type=notify-reload wants the monotonic timestamp of the request.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long long usec = static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1'000;
    notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdServiceManager::status(std::string_view status) {
    notify(status_line(status));
}

void SystemdServiceManager::stopping(std::string_view status) {
    notify("STOPPING=1\n" + status_line(status));
}

void SystemdServiceManager::watchdog_ping() {
    notify("WATCHDOG=1");
}

std::optional<std::chrono::microseconds> SystemdServiceManager::watchdog_interval() const {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return std::nullopt;
    return std::chrono::microseconds(usec);
}

}  // namespace cb
