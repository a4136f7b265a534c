// The service manager's side of our lifecycle: readiness, status, reload,
// stopping and the watchdog, as in sd_notify(3).
//
// The daemon talks to a ServiceManager; the systemd implementation sends
// datagrams to $NOTIFY_SOCKET and is silent when that variable is unset
// (started by hand). Tests pass a fake or a real socket of their own.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace cb {

class ServiceManager {
public:
    virtual ~ServiceManager() = default;

    virtual void ready(std::string_view status) = 0;     // READY=1 + STATUS=
    virtual void reloading() = 0;                        // RELOADING=1 + MONOTONIC_USEC=
    virtual void status(std::string_view status) = 0;    // STATUS=
    virtual void stopping(std::string_view status) = 0;  // STOPPING=1 + STATUS=
    virtual void watchdog_ping() = 0;                    // WATCHDOG=1

    // The interval the manager expects pings within, when it runs a watchdog for us.
    virtual std::optional<std::chrono::microseconds> watchdog_interval() const = 0;
};

class SystemdServiceManager final : public ServiceManager {
public:
    void ready(std::string_view status) override;
    void reloading() override;
    void status(std::string_view status) override;
    void stopping(std::string_view status) override;
    void watchdog_ping() override;
    std::optional<std::chrono::microseconds> watchdog_interval() const override;
};

}  // namespace cb
