// A real Mosquitto broker for integration tests, configured as shipped:
// config/mosquitto/carebridge.conf.in rendered for a loopback port and a
// test PKI, config/mosquitto/carebridge.acl as is. Plus mosquitto_pub and
// mosquitto_sub run with a given certificate.
//
// Files under BrokerSetup::work_dir:
//
//   path                what
//   ------------------  ----------------------------------------------------------
//   pki/                scripts/test-pki output (unless BrokerSetup::pki_dir is set)
//   mosquitto.conf      the rendered template
//   broker-catalog.toml the empty catalog the pins plugin reads, unless BrokerSetup::catalog is set
//   persistence/        mosquitto.db, kept across stop() / restart()
//   broker-N.log        the broker's log (stderr) of its N-th start, N = 1, 2, ...
//   broker-N.out        its stdout (empty unless something goes very wrong)
//   client-N.out, .err  stdout and stderr of the N-th background subscriber
//
// Nothing here sleeps: readiness, subscriptions and messages are awaited with
// inotify on the files the processes write, and every wait has a bound that
// only turns a hang into a failure.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/pki.hpp"
#include "tests/support/process.hpp"

namespace cb::test {

// Bound for anything that should take milliseconds (sanitized builds on a
// loaded 2-core machine are slow; nothing waits for it to pass).
inline constexpr std::chrono::milliseconds broker_hang_limit{30'000};

// carebridge-device-pins.so as this build made it.
std::filesystem::path default_pins_plugin();

struct BrokerSetup {
    std::filesystem::path source_dir{};                           // the repository: scripts/test-pki, config/mosquitto/
    std::filesystem::path work_dir{};                             // must exist; everything the broker writes goes here
    std::vector<std::string> devices = {"device-a", "device-b"};  // certificates test-pki makes
    std::optional<std::filesystem::path> pki_dir{};               // an existing test PKI; `devices` is then unused
    // The catalog the device-pins plugin reads (broker/device_pins.hpp); by
    // default an empty one, written to work_dir/broker-catalog.toml: no pins.
    std::optional<std::filesystem::path> catalog{};
    std::filesystem::path pins_plugin = default_pins_plugin();
    std::filesystem::path mosquitto = "/usr/sbin/mosquitto";
    std::filesystem::path clients_dir = "/usr/bin";  // mosquitto_pub, mosquitto_sub
};

enum class Retain { No, Yes };

// A loopback port that was free a moment ago (another process may take it
// before the caller binds it: retry with a new one when that happens).
std::uint16_t pick_free_port();

// Waits until the file at `path` contains `needle` at or after byte `from`.
// Returns false if `limit` passes first or, when `writer` > 0, if that
// process exits first (its last words are still searched).
bool wait_for_file_text(const std::filesystem::path& path, const std::string& needle,
                        std::chrono::milliseconds limit = broker_hang_limit, std::size_t from = 0, pid_t writer = -1);

// Waits until `matches` holds for the whole content of the file at `path`;
// the same limit and `writer` rules as wait_for_file_text.
bool wait_for_file_content(const std::filesystem::path& path, const std::function<bool(const std::string&)>& matches,
                           std::chrono::milliseconds limit = broker_hang_limit, pid_t writer = -1);

// A mosquitto_sub running in the background, its stdout (with -v, one
// "topic payload" line per message) and stderr each in a file.
class Subscriber {
public:
    Subscriber(std::vector<std::string> argv, std::filesystem::path output_path, std::filesystem::path errors_path);

    std::string output() const { return read_file(m_output_path); }
    std::string errors() const { return read_file(m_errors_path); }
    // True once the output contains `needle`; false if the subscriber exits or
    // `limit` passes first.
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds limit = broker_hang_limit);
    std::optional<ExitStatus> wait_for_exit(std::chrono::milliseconds limit = broker_hang_limit) {
        return m_process.wait_for_exit(limit);
    }
    Process& process() { return m_process; }

private:
    std::filesystem::path m_output_path;
    std::filesystem::path m_errors_path;
    Process m_process;
};

class Broker {
public:
    // Makes the PKI (unless given), picks a free loopback port, renders the
    // configuration and starts the broker; returns once it logs "running".
    // Throws, with the broker's log, if it does not start.
    explicit Broker(BrokerSetup setup);
    ~Broker();  // kills a broker still running
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    std::uint16_t port() const noexcept { return m_port; }
    const TestPki& pki() const noexcept { return *m_pki; }
    const std::filesystem::path& config_path() const noexcept { return m_config_path; }
    const std::filesystem::path& persistence_dir() const noexcept { return m_persistence_dir; }
    bool running();

    // SIGTERM and wait: the broker saves its persistence database and must
    // exit 0. Throws otherwise. No-op when it is not running.
    void stop();
    // SIGKILL and wait: persistence is only what the last autosave wrote.
    void kill();
    // Stops the broker if running, starts it again on the same port with the
    // same persistence directory, and returns once it is ready. Throws if it
    // does not start (e.g. someone else took the port meanwhile).
    void restart();

    // The log of every start so far, concatenated.
    std::string log() const;
    // The current size of the current start's log: pass it as `from` to wait
    // for something that happens after this point.
    std::size_t log_mark() const;
    // True once the current start's log contains `needle` at or after `from`;
    // false after `limit` or if the broker exits first.
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds limit = broker_hang_limit,
                      std::size_t from = 0);
    // True once the broker logged a subscription of `client_id` (the CN, see
    // use_username_as_clientid) to `filter`, at or after `from`. The broker
    // logs it while handling SUBSCRIBE, before reading anything else, so a
    // message published after this returns is matched against it.
    bool wait_for_subscription(const std::string& client_id, const std::string& filter, std::size_t from = 0,
                               std::chrono::milliseconds limit = broker_hang_limit);

    // Common arguments of mosquitto_pub / mosquitto_sub for `who`:
    // -h 127.0.0.1 -p PORT --cafile CA [--cert CRT --key KEY].
    std::vector<std::string> client_arguments(const ClientIdentity& who) const;

    // mosquitto_pub as `who`, to completion (bounded by broker_hang_limit).
    // Under MQTT 3.1.1 a publish the ACL denies still exits 0.
    CommandResult publish(const ClientIdentity& who, const std::string& topic, const std::string& payload, int qos = 1,
                          Retain retain = Retain::No, const std::vector<std::string>& extra = {}) const;
    // mosquitto_sub as `who` with `arguments` (topics, -C, -E, -c, ...), to completion.
    CommandResult subscribe(const ClientIdentity& who, const std::vector<std::string>& arguments) const;
    // mosquitto_sub as `who` in the background: `arguments` as above; -v is
    // added so that each line is "topic payload".
    std::unique_ptr<Subscriber> start_subscriber(const ClientIdentity& who, const std::vector<std::string>& arguments);

private:
    // Starts on m_port; returns false if the port was taken, throws on any
    // other failure to become ready.
    bool start();
    std::filesystem::path current_log() const;

    BrokerSetup m_setup;
    std::unique_ptr<TestPki> m_pki;
    std::filesystem::path m_config_path;
    std::filesystem::path m_persistence_dir;
    std::uint16_t m_port = 0;
    int m_starts = 0;
    int m_subscribers = 0;
    std::unique_ptr<Process> m_process;
};

}  // namespace cb::test
