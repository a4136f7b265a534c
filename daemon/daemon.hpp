// The composition root's lifecycle: one io_context thread owns the daemon's
// state; signals, reloads, the watchdog and shutdown are events on it.
//
//   start()  -> state directory ready, the card path started when cards.enabled
//               (reader monitor + card sessions, which feed the ingest's
//               patient presence), device ingest started when ingest.catalog
//               is set (store, catalog, MQTT), signal handlers armed  -> READY=1
//   SIGHUP   -> RELOADING=1, re-read the file; valid: apply; invalid: log every
//               problem and keep the running config                -> READY=1
//   SIGTERM/SIGINT -> STOPPING=1, stop every component, bounded by
//               daemon.shutdown_timeout_s; run() returns, exit code 0
//               (1 when the deadline forced the stop)
//   watchdog -> WATCHDOG=1 every half interval, from the loop itself, so a
//               stuck loop is what systemd sees and restarts
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "daemon/card_sessions.hpp"
#include "daemon/catalog.hpp"
#include "daemon/config.hpp"
#include "daemon/ingest.hpp"
#include "daemon/log.hpp"
#include "daemon/service_manager.hpp"
#include "daemon/upstream_service.hpp"
#include "drivers/mqtt/mosquitto_client.hpp"
#include "drivers/pcsc/libpcsclite_api.hpp"
#include "drivers/pcsc/reader_monitor.hpp"
#include "drivers/storage/group_commit.hpp"
#include "drivers/storage/reading_store.hpp"
#include "protocol/result.hpp"

namespace cb {

class Daemon {
public:
    // config_path is the file SIGHUP re-reads; nullopt means embedded defaults.
    Daemon(boost::asio::io_context& io, Logger& logger, ServiceManager& manager, Config config,
           std::optional<std::filesystem::path> config_path);

    // Prepares the state directory and arms signals and the watchdog, then
    // announces readiness. Returns the error that prevents running.
    Result<void> start();

    // 0 after a clean shutdown, 1 when the shutdown deadline expired.
    int exit_code() const noexcept { return m_exit_code; }

    const Config& config() const noexcept { return m_config; }
    // The ingest service, when ingest.catalog is configured and the daemon started.
    const IngestService* ingest() const noexcept { return m_ingest ? &*m_ingest : nullptr; }
    // The card events, for the services that follow them (always there; silent unless cards.enabled).
    CardEventBus& card_events() noexcept { return m_card_events; }
    // The card sessions, when cards.enabled and the daemon started.
    CardSessions* card_sessions() noexcept { return m_card_sessions ? &*m_card_sessions : nullptr; }

private:
    void wait_for_signal();
    void on_signal(int signal_number);
    void reload();
    void apply(const Config& next);
    void shutdown(const std::string& reason);
    void schedule_watchdog();
    Result<void> start_cards();
    void stop_cards();
    void on_reader_event(const pcsc::ReaderEvent& event);
    Result<void> start_ingest();
    void stop_ingest();
    Result<void> start_upstream();
    void on_link_event(mqtt::LinkEvent event, const std::string& detail);
    std::string running_status() const;

    boost::asio::io_context& m_io;
    Logger& m_log;
    ServiceManager& m_manager;
    Config m_config;
    std::optional<std::filesystem::path> m_config_path;

    boost::asio::signal_set m_signals;
    boost::asio::steady_timer m_watchdog_timer;
    boost::asio::steady_timer m_shutdown_deadline;
    std::optional<std::chrono::microseconds> m_watchdog_interval;
    bool m_stopping = false;

    // The card path (card_sessions.hpp); absent unless cards.enabled. Declared
    // before ingest, which reads the sessions' patient presence, and with the
    // monitor last, so that it is destroyed (stopped) first.
    CardEventBus m_card_events;
    std::unique_ptr<pcsc::LibPcscApi> m_pcsc;
    std::unique_ptr<pcsc::SteadyBackoffTimer> m_pcsc_backoff;
    std::optional<AsioSessionTimers> m_session_timers;
    std::optional<CardSessions> m_card_sessions;
    std::optional<pcsc::ReaderMonitor> m_reader_monitor;
    NoPatientPresent m_no_presence;  // when the card path is off

    // Device ingest (see ingest.hpp); absent when ingest.catalog is not set.
    DeviceCatalog m_catalog;
    std::optional<storage::SqliteReadingStore> m_store;
    std::optional<storage::GroupCommitter> m_committer;
    std::optional<mqtt::MosquittoClient> m_mqtt;
    std::optional<IngestService> m_ingest;
    // Forwarding to the national space; absent unless upstream.enabled.
    std::unique_ptr<UpstreamService> m_upstream;
    bool m_link_down_logged = false;
    int m_exit_code = 0;
};

// Creates the state directory (mode 0700) if missing and checks that it is a
// writable directory. The error names the path and the OS reason.
Result<void> prepare_state_directory(const std::filesystem::path& path);

}  // namespace cb
