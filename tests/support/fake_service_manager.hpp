// A ServiceManager that records what the daemon announced.
#pragma once

#include <string>
#include <vector>

#include "daemon/service_manager.hpp"

namespace cb::test {

class FakeServiceManager final : public ServiceManager {
public:
    std::vector<std::string> events;  // "READY running (...)", "RELOADING", "STOPPING ...", "WATCHDOG"
    std::optional<std::chrono::microseconds> interval;

    void ready(std::string_view status) override { events.push_back("READY " + std::string(status)); }
    void reloading() override { events.emplace_back("RELOADING"); }
    void status(std::string_view status) override { events.push_back("STATUS " + std::string(status)); }
    void stopping(std::string_view status) override { events.push_back("STOPPING " + std::string(status)); }
    void watchdog_ping() override { events.emplace_back("WATCHDOG"); }
    std::optional<std::chrono::microseconds> watchdog_interval() const override { return interval; }
};

}  // namespace cb::test
