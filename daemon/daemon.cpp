#include "daemon/daemon.hpp"

#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "carebridge/version.hpp"
#include "drivers/signing/signer.hpp"

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
    // Created 0700 above; one that exists is taken as it is, except what would
    // let another user replace the store: group or other write, another owner.
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return fail(ErrorKind::invalid_input, "state directory " + path.string() + ": mode " +
                                                  signing::mode_text(info.st_mode) +
                                                  " lets other users replace the store; chmod 700 it");
    if (auto problem = signing::foreign_owner(info.st_uid); !problem.empty())
        return fail(ErrorKind::invalid_input, "state directory " + path.string() + ": " + problem);
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
    CB_TRY(start_cards());
    CB_TRY(start_ingest());
    CB_TRY(start_upstream());

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
    const auto reject = [this](const std::vector<ConfigIssue>& issues, const std::string& file) {
        for (const auto& issue : issues)
            m_log.error("config", issue.to_string());
        const std::string summary = "reload rejected: " + std::to_string(issues.size()) + " problem(s) in " + file +
                                    ", keeping the running configuration";
        m_log.error(component, summary);
        m_manager.ready("running; " + summary);
    };
    if (!load.ok()) {
        reject(load.issues, m_config_path->string());
        return;
    }
    // The catalog is re-read with the configuration, all or nothing: enrolling
    // a device is editing devices.toml, then SIGHUP.
    std::optional<DeviceCatalog> catalog;
    if (m_ingest) {
        if (load.config->ingest.catalog != m_config.ingest.catalog)
            m_log.warning(component, "ingest.catalog changed: takes effect at restart, re-reading " +
                                         m_config.ingest.catalog.string());
        CatalogLoad reloaded = load_catalog_file(m_config.ingest.catalog);
        if (!reloaded.ok()) {
            reject(reloaded.issues, m_config.ingest.catalog.string());
            return;
        }
        catalog = std::move(reloaded.catalog);
    }
    apply(*load.config);
    if (catalog) {
        m_catalog = std::move(*catalog);
        if (m_upstream)
            m_upstream->set_devices(m_catalog);
        m_log.info("ingest", "catalog reloaded: " + std::to_string(m_catalog.device_count()) + " enrolled device(s), " +
                                 std::to_string(m_catalog.model_count()) + " referenced model(s)");
    }
    m_manager.ready(running_status() + "; configuration reloaded");
}

void Daemon::apply(const Config& next) {
    if (next.mqtt != m_config.mqtt || next.ingest.quota_mb != m_config.ingest.quota_mb ||
        next.ingest.max_age != m_config.ingest.max_age || next.ingest.max_acks_per_s != m_config.ingest.max_acks_per_s)
        m_log.warning(component, "mqtt.* and ingest.* changes take effect at restart");
    if (next.upstream != m_config.upstream)
        m_log.warning(component, "upstream.* changes take effect at restart");
    if (next.cards != m_config.cards)
        m_log.warning(component, "cards.* changes take effect at restart");
    if (next.daemon.state_dir != m_config.daemon.state_dir)
        m_log.warning(component, "daemon.state_dir changed to " + next.daemon.state_dir.string() +
                                     ": takes effect at restart, still using " + m_config.daemon.state_dir.string());
    Config applied = next;
    applied.daemon.state_dir = m_config.daemon.state_dir;
    applied.mqtt = m_config.mqtt;  // restart-only, as logged above
    applied.ingest = m_config.ingest;
    applied.cards = m_config.cards;
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
    stop_cards();
    stop_ingest();

    // Every component has been asked to stop; when their handlers have run,
    // this one lifts the deadline.
    boost::asio::post(m_io, [this] {
        m_shutdown_deadline.cancel();
        m_log.info(component, "stopped");
    });
}

Result<void> Daemon::start_cards() {
    if (!m_config.cards.enabled) {
        m_log.notice("cards", "the card path is off (cards.enabled = false)");
        return {};
    }
    CardTrust trust;
    trust.insurer_ca_der = CB_TRY(load_ca_certificate(m_config.cards.insurer_ca_file, "cards.insurer_ca_file"));
    trust.igc_sante_ca_der = CB_TRY(load_ca_certificate(m_config.cards.igc_sante_ca_file, "cards.igc_sante_ca_file"));

    // Events are logged at info (warning for errors) without names nor a full NIR.
    m_card_events.subscribe([this](const CardEvent& event) {
        if (std::holds_alternative<CardError>(event))
            m_log.warning("cards", describe_for_log(event));
        else
            m_log.info("cards", describe_for_log(event));
    });
    m_pcsc = std::make_unique<pcsc::LibPcscApi>();
    m_pcsc_backoff = std::make_unique<pcsc::SteadyBackoffTimer>();
    m_session_timers.emplace(m_io);
    CardSessionsOptions options;
    options.practitioner_idle_timeout = m_config.cards.practitioner_idle_timeout;
    m_card_sessions.emplace(m_io, *m_pcsc, m_card_events, *m_session_timers, std::move(trust), std::move(options));
    m_reader_monitor.emplace(*m_pcsc, *m_pcsc_backoff, [this](const pcsc::ReaderEvent& event) {
        boost::asio::post(m_io, [this, event] { on_reader_event(event); });
    });
    m_reader_monitor->start();
    m_log.info("cards", "card path on: watching PC/SC readers (practitioner idle timeout " +
                            std::to_string(m_config.cards.practitioner_idle_timeout.count()) + " s)");
    return {};
}

void Daemon::stop_cards() {
    // The monitor first (no new events), then the sessions, which end
    // practitioner sessions and join their card I/O threads.
    if (m_reader_monitor)
        m_reader_monitor->stop();
    if (m_card_sessions)
        m_card_sessions->stop();
}

void Daemon::on_reader_event(const pcsc::ReaderEvent& event) {
    if (m_stopping || !m_card_sessions)
        return;
    switch (event.kind) {
        case pcsc::ReaderEventKind::reader_added:
        case pcsc::ReaderEventKind::reader_removed:
            m_log.info("cards", std::string(pcsc::to_string(event.kind)) + ": \"" + event.reader + "\"");
            break;
        case pcsc::ReaderEventKind::card_inserted:
        case pcsc::ReaderEventKind::card_removed:
            m_log.debug("cards", std::string(pcsc::to_string(event.kind)) + ": \"" + event.reader + "\"");
            break;
        case pcsc::ReaderEventKind::service_lost:
            m_log.warning("cards", "pcscd unreachable (" + event.detail + "); retrying with backoff");
            break;
        case pcsc::ReaderEventKind::service_restored: m_log.notice("cards", "pcscd reachable again"); break;
    }
    m_card_sessions->on_reader_event(event);
}

Result<void> Daemon::start_ingest() {
    if (m_config.ingest.catalog.empty()) {
        m_log.notice("ingest", "device ingest is off: no ingest.catalog configured");
        return {};
    }
    CatalogLoad catalog = load_catalog_file(m_config.ingest.catalog);
    if (!catalog.ok())
        return fail(ErrorKind::invalid_input,
                    "device catalog: " + catalog.issues.front().to_string() +
                        (catalog.issues.size() > 1 ? " (and " + std::to_string(catalog.issues.size() - 1) +
                                                         " more; see carebridged --check-catalog)"
                                                   : ""));
    m_catalog = std::move(*catalog.catalog);

    const auto database = m_config.daemon.state_dir / "readings.db";
    auto store = CB_TRY(storage::SqliteReadingStore::open(database));
    m_store.emplace(std::move(store));
    m_committer.emplace(*m_store);

    IngestSettings settings;
    settings.quota_bytes = m_config.ingest.quota_mb * 1024 * 1024;
    settings.limits.max_age = m_config.ingest.max_age;
    settings.max_acks_per_s = m_config.ingest.max_acks_per_s;
    settings.on_stored = [this] {
        if (m_upstream)
            m_upstream->poke();
    };
    const auto gateway = devices::GatewayId::parse(m_config.mqtt.client_id);
    if (!gateway)
        return fail(ErrorKind::invalid_input, "mqtt.client_id: " + gateway.error().message());
    {
        // libmosquitto reads the gateway's key itself: the rule of every key
        // file (a regular file, mode 0600 at most) is checked here first.
        auto key = CB_TRY(signing::read_private_file(m_config.mqtt.key_file, "mqtt.key_file"));
        OPENSSL_cleanse(key.data(), key.size());
    }
    mqtt::ClientSettings link;
    link.host = m_config.mqtt.host;
    link.port = m_config.mqtt.port;
    link.client_id = m_config.mqtt.client_id;
    link.keepalive = m_config.mqtt.keepalive;
    link.ca_file = m_config.mqtt.ca_file.string();
    link.cert_file = m_config.mqtt.cert_file.string();
    link.key_file = m_config.mqtt.key_file.string();
    link.subscriptions = {std::string(devices::measurement_subscription)};
    link.status_topic = devices::gateway_status_topic(*gateway);
    m_mqtt.emplace(
        m_io, link, [this](const mqtt::Message& message) { m_ingest->on_message(message); },
        [this](mqtt::LinkEvent event, const std::string& detail) { on_link_event(event, detail); });
    m_ingest.emplace(
        m_io, m_log, m_catalog, *m_committer, *m_mqtt,
        m_card_sessions ? static_cast<const PatientPresence&>(*m_card_sessions) : m_no_presence,
        [] { return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()); },
        [this] {
            auto usage = m_store->disk_usage();
            return usage ? usage.value() : 0;
        },
        settings);
    CB_TRY(m_ingest->restore(*m_store));
    CB_TRY(m_mqtt->start());
    m_log.info("ingest", "device ingest on: " + std::to_string(m_catalog.device_count()) + " enrolled device(s), " +
                             std::to_string(m_catalog.model_count()) + " referenced model(s), store " +
                             database.string() + ", broker " + link.host + ":" + std::to_string(link.port));
    return {};
}

Result<void> Daemon::start_upstream() {
    if (!m_config.upstream.enabled) {
        m_log.notice("upstream", "forwarding to the national space is off (upstream.enabled = false)");
        return {};
    }
    // (With ingest off, the store still holds what earlier runs received.)
    const auto database = m_config.daemon.state_dir / "readings.db";
    m_upstream = CB_TRY(UpstreamService::start(m_io, m_log, m_config.upstream, database, m_catalog));
    return {};
}

void Daemon::stop_ingest() {
    // The link first (no new readings; "offline" status), then the forwarder
    // (what it was told is recorded; in-flight rows resume at the next start),
    // then the storage thread, which commits what is queued before it ends.
    if (m_mqtt)
        m_mqtt->stop();
    if (m_upstream)
        m_upstream->stop();
    if (m_committer)
        m_committer->stop();
}

void Daemon::on_link_event(mqtt::LinkEvent event, const std::string& detail) {
    switch (event) {
        case mqtt::LinkEvent::connected:
            m_log.info("mqtt", "connected to " + m_config.mqtt.host + ":" + std::to_string(m_config.mqtt.port) + " (" +
                                   detail + ")");
            m_link_down_logged = false;
            break;
        case mqtt::LinkEvent::disconnected:
            // Once per outage at warning; the retries that follow at debug.
            if (!m_link_down_logged)
                m_log.warning("mqtt", detail + "; reconnecting with backoff");
            else
                m_log.debug("mqtt", detail);
            m_link_down_logged = true;
            break;
        case mqtt::LinkEvent::error: m_log.error("mqtt", detail); break;
    }
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
