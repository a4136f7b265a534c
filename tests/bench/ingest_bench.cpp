// bench-ingest-driver: the ingest capacity benchmark behind bench/ingest
// (bench/README.md). Everything runs in a temporary directory, on a real
// Mosquitto broker with TLS and the shipped ACL, and is removed at the end.
//
//   phase      what happens                                          what is measured
//   ---------  ----------------------------------------------------  ---------------------------------
//   pki        scripts/test-pki (CA, broker, gateway), then N        -
//              device certificates issued in-process (EC P-256)
//   session    carebridged started (its persistent session), idle    RSS idle (VmRSS)
//   backlog A  devsim publishes K readings per device, gateway off   -
//   probe      lat-1 publishes one reading, queued behind backlog A  -
//   drain A    carebridged started; done when lat-1 holds the ack    rate A: readings/s, durably
//              of its probe: every ack before it reached the broker  committed and acknowledged
//   latency    10 devices of the driver publish at a steady rate     p50/p99 publish -> device ack,
//              and time each reading until an ack covers it          peak RSS loaded (VmHWM)
//   catch-up   with --catch-up N: N paired readings of up to 1000    the same latency while it
//              patients added to the store, carebridged restarted    forwards; the catch-up's rate
//              forwarding to nginx (signed, mutual TLS) while the
//              latency devices publish as above
//   backlog B  the same backlog for a mosquitto_sub session           -
//   drain B    mosquitto_sub -q 1 -c -C backlog > /dev/null; done    rate B at its exit, and rate B
//              when the broker logs its DISCONNECT, which follows    when the broker has processed
//              every PUBACK on the same connection                   every PUBACK (the drain's end)
//
// Both drains end when the broker has read every PUBACK of its client: drain
// A's probe ack comes after them on the gateway's connection, and drain B's
// DISCONNECT after mosquitto_sub's. The last line printed is "ratio: X.XX"
// (rate A / rate B, so measured); the line before it gives the ratio against
// mosquitto_sub's exit. With --rounds N the whole benchmark runs N times,
// each from scratch, and those two lines give the medians. No assertion on
// any figure: a benchmark reports, it does not pass or fail on timing.
#include <mosquitto.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "drivers/storage/sqlite.hpp"
#include "protocol/hex.hpp"
#include "tests/bench/bench_support.hpp"
#include "tests/bench/forward_support.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cb::bench::Clock;
using cb::bench::fixed;
using cb::bench::median;
using cb::bench::memory_of;
using cb::bench::say;
using cb::bench::seconds_since;
using cb::test::pick_free_port;
using cb::test::Process;

namespace {

struct Options {
    int devices = 1000;
    int backlog = 200'000;
    int latency_rate = 1000;  // readings/s, all latency devices together
    int latency_seconds = 20;
    int inflight = 20;  // broker max_inflight_messages (the shipped value)
    int rounds = 1;     // the whole benchmark this many times, each from scratch
    int catch_up = 0;   // readings forwarded during a second latency run; 0: no such run
    std::string nginx = "/usr/sbin/nginx";
    bool keep = false;
    bool nagle = false;  // the driver's latency devices without TCP_NODELAY
};

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "bench-ingest-driver: " << problem
              << "\nusage: bench-ingest-driver [--devices N] [--backlog N] [--latency-rate R] [--latency-seconds S]"
                 " [--inflight N] [--rounds N] [--catch-up N [--nginx PATH]] [--nagle] [--keep]\n";
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string name = argv[i];
        if (name == "--keep") {
            options.keep = true;
            continue;
        }
        if (name == "--nagle") {
            options.nagle = true;
            continue;
        }
        if (i + 1 >= argc)
            usage(name + ": missing value");
        if (name == "--nginx") {
            options.nginx = argv[++i];
            continue;
        }
        int value = 0;
        try {
            value = std::stoi(argv[++i]);
        } catch (const std::exception&) {
            usage(name + ": expected an integer, got " + argv[i]);
        }
        if (value <= 0)
            usage(name + ": expected a positive integer");
        if (name == "--devices")
            options.devices = value;
        else if (name == "--backlog")
            options.backlog = value;
        else if (name == "--latency-rate")
            options.latency_rate = value;
        else if (name == "--latency-seconds")
            options.latency_seconds = value;
        else if (name == "--inflight")
            options.inflight = value;
        else if (name == "--rounds")
            options.rounds = value;
        else if (name == "--catch-up")
            options.catch_up = value;
        else
            usage("unknown option " + name);
    }
    if (options.backlog < options.devices)
        usage("--backlog must be at least --devices");
    return options;
}

// ---------------------------------------------------------------- PKI --------

struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

void write_pem(const fs::path& path, const std::function<int(FILE*)>& write) {
    FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr)
        throw std::runtime_error("cannot write " + path.string());
    const int ok = write(file);
    std::fclose(file);
    if (ok != 1)
        throw std::runtime_error("cannot encode " + path.string());
}

// Issues devices/ID.crt and .key for each id, as scripts/test-pki's "client"
// role does, but in-process: test-pki spawns six openssl processes per
// device, about 0.3 s each on this machine, i.e. minutes for 1000 devices.
void issue_device_certificates(const fs::path& pki, const std::vector<std::string>& ids) {
    FILE* file = std::fopen((pki / "ca.crt").c_str(), "r");
    if (file == nullptr)
        throw std::runtime_error("cannot read " + (pki / "ca.crt").string());
    std::unique_ptr<X509, X509Free> ca(PEM_read_X509(file, nullptr, nullptr, nullptr));
    std::fclose(file);
    file = std::fopen((pki / "ca.key").c_str(), "r");
    if (file == nullptr)
        throw std::runtime_error("cannot read " + (pki / "ca.key").string());
    std::unique_ptr<EVP_PKEY, PkeyFree> ca_key(PEM_read_PrivateKey(file, nullptr, nullptr, nullptr));
    std::fclose(file);
    if (!ca || !ca_key)
        throw std::runtime_error("cannot parse the test CA in " + pki.string());
    fs::create_directories(pki / "devices");
    long serial = 0x10000;
    for (const auto& id : ids) {
        std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
        std::unique_ptr<X509, X509Free> cert(X509_new());
        if (!key || !cert)
            throw std::runtime_error("cannot make a key for " + id);
        X509_set_version(cert.get(), 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
        X509_set_pubkey(cert.get(), key.get());
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(id.c_str()), -1, -1, 0);
        X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get()));
        X509V3_CTX context;
        X509V3_set_ctx_nodb(&context);
        X509V3_set_ctx(&context, ca.get(), cert.get(), nullptr, nullptr, 0);
        const std::pair<int, const char*> extensions[] = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                          {NID_key_usage, "critical,digitalSignature"},
                                                          {NID_ext_key_usage, "clientAuth"},
                                                          {NID_subject_key_identifier, "hash"},
                                                          {NID_authority_key_identifier, "keyid"}};
        for (const auto& [nid, value] : extensions) {
            X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
            if (extension == nullptr || X509_add_ext(cert.get(), extension, -1) != 1)
                throw std::runtime_error("cannot add extension " + std::string(value) + " for " + id);
            X509_EXTENSION_free(extension);
        }
        if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0)
            throw std::runtime_error("cannot sign the certificate of " + id);
        const fs::path base = pki / "devices" / id;
        write_pem(base.string() + ".crt", [&](FILE* out) { return PEM_write_X509(out, cert.get()); });
        const auto old_mask = ::umask(077);
        write_pem(base.string() + ".key", [&](FILE* out) {
            return PEM_write_PrivateKey(out, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        });
        ::umask(old_mask);
    }
}

// SHA-256 of the certificate in the PEM file, as the catalog pins it.
std::string fingerprint_of(const fs::path& certificate) {
    FILE* file = std::fopen(certificate.c_str(), "r");
    if (file == nullptr)
        throw std::runtime_error("cannot read " + certificate.string());
    std::unique_ptr<X509, X509Free> cert(PEM_read_X509(file, nullptr, nullptr, nullptr));
    std::fclose(file);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (!cert || X509_digest(cert.get(), EVP_sha256(), digest.data(), &size) != 1)
        throw std::runtime_error("cannot hash " + certificate.string());
    return cb::to_lowercase_hex(std::span<const std::uint8_t>(digest.data(), size));
}

// The shipped models and every device enrolled at home, each pinned to its
// certificate: what carebridged and the broker's device-pins plugin both read.
void write_catalog(const fs::path& path, const fs::path& pki, const std::vector<std::string>& devices) {
    std::string catalog = cb::test::read_file(fs::path(CAREBRIDGE_SOURCE_DIR) / "config/devices.toml");
    catalog = catalog.substr(0, catalog.find("[[device]]"));
    for (const auto& id : devices)
        catalog += "[[device]]\nid = \"" + id + "\"\nmodel = \"sim-thermo-1\"\ncertificate_sha256 = \"" +
                   fingerprint_of(pki / "devices" / (id + ".crt")) +
                   "\"\nbinding = \"home\"\npatient = \"patient-1\"\n";
    std::ofstream(path) << catalog;
}

// ------------------------------------------------------------- broker --------

void replace_line(std::string& text, const std::string& starting, const std::string& line) {
    const auto at = text.find("\n" + starting);
    if (at == std::string::npos)
        throw std::runtime_error("carebridge.conf.in: no line starting with '" + starting + "'");
    const auto end = text.find('\n', at + 1);
    text.replace(at + 1, end - at - 1, line);
}

void replace_all(std::string& text, const std::string& placeholder, const std::string& value) {
    for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at + value.size()))
        text.replace(at, placeholder.size(), value);
}

// The shipped configuration with room for the backlog: one client (the
// gateway's session) must hold all of it.
std::unique_ptr<Process> start_broker(const fs::path& work, const fs::path& pki, std::uint16_t port,
                                      const Options& options) {
    std::string config = cb::test::read_file(fs::path(CAREBRIDGE_SOURCE_DIR) / "config/mosquitto/carebridge.conf.in");
    replace_line(config, "max_queued_messages ", "max_queued_messages " + std::to_string(options.backlog * 2));
    replace_line(config, "max_inflight_messages ", "max_inflight_messages " + std::to_string(options.inflight));
    replace_all(config, "@PORT@", std::to_string(port));
    replace_all(config, "@PKI_DIR@", pki.string());
    replace_all(config, "@ACL_FILE@", (fs::path(CAREBRIDGE_SOURCE_DIR) / "config/mosquitto/carebridge.acl").string());
    fs::create_directories(work / "persistence");
    replace_all(config, "@PERSISTENCE_DIR@", (work / "persistence").string() + "/");
    const passwd* entry = ::getpwuid(::geteuid());
    replace_all(config, "@USER@", entry != nullptr ? entry->pw_name : "root");
    replace_all(config, "@PINS_PLUGIN@", cb::test::default_pins_plugin().string());
    replace_all(config, "@CATALOG@", (work / "devices.toml").string());
    std::ofstream(work / "mosquitto.conf") << config;
    auto broker = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/mosquitto", "-c", (work / "mosquitto.conf").string()}, work / "broker.out",
        work / "broker.log");
    if (!cb::test::wait_for_file_text(work / "broker.log", " running", 30s, 0, broker->pid()))
        throw std::runtime_error("the broker did not start:\n" + cb::test::read_file(work / "broker.log"));
    return broker;
}

// --------------------------------------------------------- carebridged -------

std::string mib(long kib) {
    std::ostringstream out;
    out.precision(1);
    out << std::fixed << static_cast<double>(kib) / 1024.0 << " MiB";
    return out.str();
}

class Gateway {
public:
    Gateway(const fs::path& work, const fs::path& pki, std::uint16_t port)
        : m_work(work), m_pki(pki), m_port(port), m_config(work / "carebridged.toml") {
        std::ofstream(m_config) << config_text(work / "state", "debug");
    }

    // From the next start on: log level info (no line per ack, so
    // wait_for_acks no longer works) and `more` sections (the catch-up's
    // [upstream]).
    void reconfigure(const std::string& more) {
        m_config = m_work / "carebridged-catch-up.toml";
        std::ofstream(m_config) << config_text(m_work / "state", "info") << more;
    }

    void start() {
        ++m_starts;
        m_log = m_work / ("carebridged-" + std::to_string(m_starts) + ".log");
        m_log_offset = 0;
        m_partial.clear();
        m_process = std::make_unique<Process>(std::vector<std::string>{CAREBRIDGED_PATH, "--config", m_config.string()},
                                              m_work / "carebridged.out", m_log);
    }

    void wait_connected() {
        if (!cb::test::wait_for_file_text(m_log, "mqtt: connected", 60s, 0, m_process->pid()))
            throw std::runtime_error("carebridged did not connect:\n" + cb::test::read_file(m_log));
    }

    void stop() {
        m_process->signal(SIGTERM);
        const auto status = m_process->wait_for_exit(120s);
        if (!status || !status->exited || status->code != 0)
            throw std::runtime_error("carebridged did not stop cleanly:\n" + cb::test::read_file(m_log));
        m_process.reset();
    }

    pid_t pid() const { return m_process->pid(); }
    const fs::path& log() const { return m_log; }
    // When wait_for_acks first saw an ack line (to 10 ms).
    std::optional<Clock::time_point> first_ack() const { return m_first_ack; }

    // Returns once every device in `expected` was acknowledged through its
    // value, reading the daemon's log ("<7>ingest: ack DEVICE SEQ", written
    // right after the ack is handed to the MQTT client) every 10 ms. False
    // after `limit` or if the daemon exits.
    bool wait_for_acks(const std::map<std::string, std::uint64_t>& expected, std::chrono::seconds limit) {
        std::unordered_map<std::string, std::uint64_t> acked;
        std::size_t complete = 0;
        const auto deadline = Clock::now() + limit;
        const std::string marker = "ingest: ack ";
        while (Clock::now() < deadline) {
            std::ifstream in(m_log, std::ios::binary);
            in.seekg(static_cast<std::streamoff>(m_log_offset));
            std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            m_log_offset += chunk.size();
            m_partial += chunk;
            std::size_t begin = 0;
            for (auto end = m_partial.find('\n'); end != std::string::npos; end = m_partial.find('\n', begin)) {
                const std::string_view line(m_partial.data() + begin, end - begin);
                begin = end + 1;
                const auto at = line.find(marker);
                if (at == std::string_view::npos)
                    continue;
                if (!m_first_ack)
                    m_first_ack = Clock::now();  // within the 10 ms of the poll
                const auto rest = line.substr(at + marker.size());
                const auto space = rest.find(' ');
                if (space == std::string_view::npos)
                    continue;
                const std::string device(rest.substr(0, space));
                const std::uint64_t sequence = std::stoull(std::string(rest.substr(space + 1)));
                const auto wanted = expected.find(device);
                if (wanted == expected.end())
                    continue;
                auto& through = acked[device];
                if (through < wanted->second && sequence >= wanted->second)
                    ++complete;
                through = std::max(through, sequence);
            }
            m_partial.erase(0, begin);
            if (complete == expected.size())
                return true;
            if (!m_process->running())
                return false;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    std::int64_t stored_readings() const {
        auto db = cb::storage::Database::open(m_work / "state" / "readings.db");
        if (!db)
            throw std::runtime_error("cannot open the store: " + db.error().message());
        auto query = db->prepare("SELECT count(*) FROM readings WHERE disposition = 'accepted'", "count");
        if (!query || query->step().value() != cb::storage::Step::row)
            throw std::runtime_error("cannot count readings");
        return query->column_int64(0);
    }

private:
    // log_level debug: one "ack DEVICE SEQ" line per published ack is how the
    // benchmark sees acknowledgements (see wait_for_acks). devices.toml:
    // write_catalog, before the broker started.
    std::string config_text(const fs::path& state, const std::string& log_level) const {
        return "[daemon]\nstate_dir = \"" + state.string() + "\"\nlog_level = \"" + log_level +
               "\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = " + std::to_string(m_port) + "\nca_file = \"" +
               (m_pki / "ca.crt").string() + "\"\ncert_file = \"" + (m_pki / "gateway.crt").string() +
               "\"\nkey_file = \"" + (m_pki / "gateway.key").string() + "\"\n[ingest]\ncatalog = \"" +
               (m_work / "devices.toml").string() + "\"\n";
    }

    fs::path m_work;
    fs::path m_pki;
    std::uint16_t m_port;
    fs::path m_config;
    fs::path m_log;
    std::size_t m_log_offset = 0;
    std::string m_partial;
    std::optional<Clock::time_point> m_first_ack;
    int m_starts = 0;
    std::unique_ptr<Process> m_process;
};

// ------------------------------------------------------------ latency --------

// One device of the driver: publishes readings, records when, and on each
// {"seq":N} ack records the latency of every reading N covers.
struct LatencyDevice {
    std::string id;
    mosquitto* client = nullptr;
    std::atomic<bool> subscribed{false};
    std::atomic<int> broker_acks{0};  // PUBACKs received
    std::mutex mutex;
    std::map<std::uint64_t, Clock::time_point> pending;
    std::vector<double> latencies_ms;
    std::uint64_t next_seq = 1;
};

void on_connect(mosquitto* client, void* user, int rc) {
    auto* device = static_cast<LatencyDevice*>(user);
    if (rc == 0)
        mosquitto_subscribe(client, nullptr, ("cb/v1/dev/" + device->id + "/ack").c_str(), 1);
}

void on_subscribe(mosquitto*, void* user, int, int, const int*) {
    static_cast<LatencyDevice*>(user)->subscribed = true;
}

void on_publish(mosquitto*, void* user, int) {
    ++static_cast<LatencyDevice*>(user)->broker_acks;
}

void on_message(mosquitto*, void* user, const mosquitto_message* message) {
    const auto now = Clock::now();
    auto* device = static_cast<LatencyDevice*>(user);
    const std::string payload(static_cast<const char*>(message->payload),
                              static_cast<std::size_t>(message->payloadlen));
    unsigned long long through = 0;
    if (std::sscanf(payload.c_str(), "{\"seq\":%llu}", &through) != 1)
        return;
    std::lock_guard lock(device->mutex);
    for (auto it = device->pending.begin(); it != device->pending.end() && it->first <= through;) {
        device->latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
        it = device->pending.erase(it);
    }
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm parts{};
    ::gmtime_r(&now, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

struct LatencyResult {
    double p50_ms = 0;
    double p99_ms = 0;
    double max_ms = 0;
    std::size_t acknowledged = 0;
    std::size_t published = 0;
};

using LatencyDevices = std::vector<std::unique_ptr<LatencyDevice>>;

// Connects the driver's devices (persistent sessions, as devices do) and
// returns once each is subscribed to its ack topic.
LatencyDevices connect_devices(const fs::path& pki, std::uint16_t port, const std::vector<std::string>& ids,
                               bool nagle) {
    LatencyDevices devices;
    for (const auto& id : ids) {
        auto device = std::make_unique<LatencyDevice>();
        device->id = id;
        device->client = mosquitto_new(id.c_str(), false, device.get());
        mosquitto_connect_callback_set(device->client, on_connect);
        mosquitto_subscribe_callback_set(device->client, on_subscribe);
        mosquitto_publish_callback_set(device->client, on_publish);
        mosquitto_message_callback_set(device->client, on_message);
        mosquitto_max_inflight_messages_set(device->client, 0);
        if (!nagle)
            mosquitto_int_option(device->client, MOSQ_OPT_TCP_NODELAY, 1);
        const auto cert = pki / "devices" / (id + ".crt");
        const auto key = pki / "devices" / (id + ".key");
        if (mosquitto_tls_set(device->client, (pki / "ca.crt").c_str(), nullptr, cert.c_str(), key.c_str(), nullptr) !=
                MOSQ_ERR_SUCCESS ||
            mosquitto_connect(device->client, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
            mosquitto_loop_start(device->client) != MOSQ_ERR_SUCCESS)
            throw std::runtime_error("latency device " + id + ": cannot connect");
        devices.push_back(std::move(device));
    }
    const auto ready_deadline = Clock::now() + 30s;
    for (auto& device : devices)
        while (!device->subscribed) {
            if (Clock::now() > ready_deadline)
                throw std::runtime_error("latency device " + device->id + ": no SUBACK");
            std::this_thread::sleep_for(10ms);
        }
    return devices;
}

void disconnect_devices(LatencyDevices& devices) {
    for (auto& device : devices) {
        mosquitto_disconnect(device->client);
        mosquitto_loop_stop(device->client, false);
        mosquitto_destroy(device->client);
    }
    devices.clear();
}

void publish_reading(LatencyDevice& device) {
    std::uint64_t seq = 0;
    {
        std::lock_guard lock(device.mutex);
        seq = device.next_seq++;
        device.pending.emplace(seq, Clock::now());
    }
    const std::string payload = "{\"device_id\":\"" + device.id + "\",\"seq\":" + std::to_string(seq) +
                                ",\"type\":\"body_temperature\",\"time\":\"" + utc_now() +
                                "\",\"values\":[{\"code\":150364,\"value\":37.0,\"unit\":\"Cel\"}],"
                                "\"firmware\":\"1.0.0\"}";
    mosquitto_publish(device.client, nullptr, ("cb/v1/dev/" + device.id + "/meas").c_str(),
                      static_cast<int>(payload.size()), payload.data(), 1, false);
}

// True once no reading of `devices` waits for an ack; false at `deadline`.
bool wait_acknowledged(LatencyDevices& devices, Clock::time_point deadline) {
    for (auto& device : devices)
        for (;;) {
            {
                std::lock_guard lock(device->mutex);
                if (device->pending.empty())
                    break;
            }
            if (Clock::now() > deadline)
                return false;
            std::this_thread::sleep_for(1ms);
        }
    return true;
}

LatencyResult measure_latency(LatencyDevices& devices, int rate, int seconds) {
    for (auto& device : devices) {
        std::lock_guard lock(device->mutex);
        device->latencies_ms.clear();
    }
    const auto total = static_cast<std::size_t>(rate) * static_cast<std::size_t>(seconds);
    const auto interval = std::chrono::nanoseconds(1'000'000'000LL / rate);
    const auto start = Clock::now();
    for (std::size_t i = 0; i < total; ++i) {
        std::this_thread::sleep_until(start + interval * static_cast<long>(i));
        publish_reading(*devices[i % devices.size()]);
    }
    // Readings still in flight when publishing stops get 30 s to be acknowledged.
    wait_acknowledged(devices, Clock::now() + 30s);
    std::vector<double> all;
    for (auto& device : devices) {
        std::lock_guard lock(device->mutex);
        all.insert(all.end(), device->latencies_ms.begin(), device->latencies_ms.end());
    }
    LatencyResult result;
    result.published = total;
    result.acknowledged = all.size();
    if (!all.empty()) {
        std::sort(all.begin(), all.end());
        const auto at = [&](double q) {
            return all[std::min(all.size() - 1, static_cast<std::size_t>(q * static_cast<double>(all.size())))];
        };
        result.p50_ms = at(0.50);
        result.p99_ms = at(0.99);
        result.max_ms = all.back();
    }
    return result;
}

// -------------------------------------------------------------- phases -------

// The latency run again, while carebridged forwards a backlog: restarted with
// its [upstream] pointing at nginx answering 201 over mutual TLS, on its store
// with `catch_up` paired readings of up to 1000 patients added (as
// bench/forward stores them). The readings ingested so far are set aside
// first, as the forwarder itself holds those of an unpaired patient; the
// latency devices' new readings (patient-1, paired now) are forwarded too.
void measure_catch_up(const Options& options, const fs::path& work, const fs::path& pki, Gateway& gateway,
                      LatencyDevices& probes) {
    const int patients = std::min(1000, options.catch_up);
    const int per_patient = options.catch_up / patients;
    const int backlog = patients * per_patient;
    const auto database = work / "state" / "readings.db";
    {
        auto db = cb::storage::Database::open(database);
        if (!db)
            throw std::runtime_error("cannot open the store: " + db.error().message());
        if (auto held = db->execute("UPDATE outbox SET state = 'held', reason = 'not-paired' WHERE state = 'queued'",
                                    "set the ingested readings aside");
            !held)
            throw std::runtime_error(held.error().message());
    }
    cb::bench::seed(database, patients, per_patient);
    cb::bench::pair_directly(database, patients);
    cb::bench::Nginx nginx(options.nginx, work / "nginx", pki);
    gateway.reconfigure(cb::bench::upstream_section(pki, nginx.mutual_port(), 4));

    const auto start = Clock::now();
    gateway.start();
    gateway.wait_connected();
    const double connected = seconds_since(start);
    const auto latency = measure_latency(probes, options.latency_rate, options.latency_seconds);
    const double latency_end = seconds_since(start);
    // "caught up: N delivered, ..." is logged each time the forwarder runs
    // out of work; it is done once N covers the backlog and every latency
    // reading (all acknowledged, so stored).
    const std::size_t forwarded = static_cast<std::size_t>(backlog) + latency.acknowledged;
    const auto covered = [forwarded](const std::string& log) {
        constexpr std::string_view marker = "caught up: ";
        const auto at = log.rfind(marker);
        return at != std::string::npos && std::strtoull(log.c_str() + at + marker.size(), nullptr, 10) >= forwarded;
    };
    if (!cb::test::wait_for_file_content(gateway.log(), covered, 3600s, gateway.pid()))
        throw std::runtime_error("carebridged did not log \"caught up: " + std::to_string(forwarded) +
                                 " delivered\":\n" + cb::test::read_file(gateway.log()));
    const double seconds = seconds_since(start);
    const auto threads = cb::bench::cpu_by_thread(gateway.pid());
    gateway.stop();
    std::cout.precision(2);
    std::cout << "latency during a catch-up, at " << options.latency_rate << " readings/s for "
              << options.latency_seconds << " s: p50 " << latency.p50_ms << " ms, p99 " << latency.p99_ms << " ms, max "
              << latency.max_ms << " ms (" << latency.acknowledged << "/" << latency.published
              << " acknowledged); meanwhile carebridged forwarded " << backlog << " stored readings of " << patients
              << " patients and the latency readings to nginx (signed, mutual TLS): connected at " << connected
              << " s, latency run until " << latency_end << " s, caught up at " << seconds
              << " s = " << static_cast<double>(forwarded) / seconds << " readings/s" << std::endl;
    std::cout.precision(1);
    say("CPU per reading forwarded during the catch-up, by carebridged thread (us): " +
        cb::bench::describe_threads(threads, static_cast<double>(forwarded)));
}

std::vector<std::string> devsim_backlog(const fs::path& pki, std::uint16_t port, int devices, int per_device) {
    return {DEVSIM_PATH,
            "--host",
            "127.0.0.1",
            "--port",
            std::to_string(port),
            "--pki-dir",
            pki.string(),
            "--devices",
            std::to_string(devices),
            "--type",
            "sim-thermo-1",
            "--prefix",
            "dev-",
            "--readings",
            std::to_string(per_device),
            "--rate",
            "0",
            "--threads",
            "2",
            "--timeout-s",
            "3600"};
}

void publish_backlog(const fs::path& pki, std::uint16_t port, const Options& options, int per_device,
                     const std::string& label) {
    const auto start = Clock::now();
    const auto run = cb::test::run_command(devsim_backlog(pki, port, options.devices, per_device), 3600s);
    if (run.status.code != 0)
        throw std::runtime_error("devsim failed for backlog " + label + ":\n" + run.output);
    std::ostringstream line;
    line.precision(1);
    line << std::fixed << "backlog " << label << ": " << options.devices * per_device << " readings queued by "
         << options.devices << " devices in " << seconds_since(start) << " s (gateway offline)";
    say(line.str());
}

std::vector<std::string> sub_arguments(const fs::path& pki, std::uint16_t port) {
    return {"/usr/bin/mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            std::to_string(port),
            "--cafile",
            (pki / "ca.crt").string(),
            "--cert",
            (pki / "gateway.crt").string(),
            "--key",
            (pki / "gateway.key").string(),
            "-q",
            "1",
            "-t",
            "cb/v1/dev/+/meas"};
}

// One round's result: drain rate A against drain rate B, as defined above,
// and against mosquitto_sub's exit.
struct Ratios {
    double drained = 0;
    double exited = 0;
};

Ratios run(const Options& options, int round) {
    cb::test::TempDir dir;
    const fs::path work = dir.path();
    const fs::path pki = work / "pki";
    std::cout.setf(std::ios::fixed);
    std::cout.precision(1);

    auto start = Clock::now();
    const auto made =
        cb::test::run_command({std::string(CAREBRIDGE_SOURCE_DIR) + "/scripts/test-pki", pki.string()}, 600s);
    if (made.status.code != 0)
        throw std::runtime_error("scripts/test-pki failed:\n" + made.output);
    std::vector<std::string> devices;
    for (int i = 1; i <= options.devices; ++i)
        devices.push_back("dev-" + std::to_string(i));
    std::vector<std::string> latency_devices;
    for (int i = 1; i <= 10; ++i)
        latency_devices.push_back("lat-" + std::to_string(i));
    std::vector<std::string> all_devices = devices;
    all_devices.insert(all_devices.end(), latency_devices.begin(), latency_devices.end());
    issue_device_certificates(pki, all_devices);
    std::cout << "setup: PKI with " << all_devices.size() << " device certificates in " << seconds_since(start)
              << " s; work directory " << work.string() << std::endl;

    const auto port = pick_free_port();
    write_catalog(work / "devices.toml", pki, all_devices);
    auto broker = start_broker(work, pki, port, options);
    Gateway gateway(work, pki, port);
    const int per_device = options.backlog / options.devices;
    const int backlog = per_device * options.devices;
    say("broker: mosquitto " + std::to_string(port) + ", max_queued_messages " + std::to_string(options.backlog * 2) +
        ", max_inflight_messages " + std::to_string(options.inflight) +
        (options.nagle ? ", latency devices without TCP_NODELAY" : ""));

    // session: carebridged subscribes with its persistent session, idles.
    gateway.start();
    gateway.wait_connected();
    std::this_thread::sleep_for(2s);  // settle: nothing flows
    const auto idle = memory_of(gateway.pid());
    gateway.stop();

    // backlog A, drained by carebridged.
    publish_backlog(pki, port, options, per_device, "A");
    // The probe: one reading of lat-1 queued behind the whole backlog. The
    // daemon stores and acknowledges in arrival order and its MQTT client
    // sends in order, so once lat-1 holds its ack, every ack of the backlog
    // has reached the broker (which keeps it for its offline device).
    auto probes = connect_devices(pki, port, latency_devices, options.nagle);
    publish_reading(*probes.front());
    for (const auto deadline = Clock::now() + 30s; probes.front()->broker_acks.load() == 0;) {
        if (Clock::now() > deadline)
            throw std::runtime_error("the broker did not confirm the probe reading");
        std::this_thread::sleep_for(1ms);
    }
    std::map<std::string, std::uint64_t> expected;
    for (const auto& id : devices)
        expected[id] = static_cast<std::uint64_t>(per_device);
    const auto broker_before_a = cb::bench::cpu_time_of(broker->pid());
    start = Clock::now();
    gateway.start();
    if (!gateway.wait_for_acks(expected, 3600s))
        throw std::runtime_error("carebridged did not acknowledge the whole backlog");
    const double logged_seconds = seconds_since(start);
    if (!wait_acknowledged(probes, Clock::now() + 3600s))
        throw std::runtime_error("the probe reading was not acknowledged");
    const double gateway_seconds = seconds_since(start);
    const auto after_drain = memory_of(gateway.pid());
    const auto broker_a = cb::bench::cpu_time_of(broker->pid()) - broker_before_a;
    const auto gateway_threads = cb::bench::cpu_by_thread(gateway.pid());
    const double gateway_rate = backlog / gateway_seconds;
    std::cout << "carebridged drain: " << backlog << " readings in " << gateway_seconds << " s = " << gateway_rate
              << " readings/s (from process start until the probe's ack, queued behind every device's ack {\"seq\":"
              << per_device << "}, reached its device; the daemon had logged the last of those acks at "
              << logged_seconds << " s, the first at "
              << (gateway.first_ack() ? std::chrono::duration<double>(*gateway.first_ack() - start).count() : -1.0)
              << " s (start-up: configuration, catalog, store, TLS connect, session); store holds "
              << gateway.stored_readings() << " accepted rows)" << std::endl;
    say("CPU per reading during that drain (us): broker " + fixed(broker_a.total() * 1e6 / backlog, 1) +
        "; carebridged by thread (from its start): " + cb::bench::describe_threads(gateway_threads, backlog));
    say("context switches per reading by carebridged thread, voluntary + preempted: " +
        cb::bench::describe_switches(gateway_threads, backlog));

    // latency at a steady rate, carebridged still running.
    const auto latency = measure_latency(probes, options.latency_rate, options.latency_seconds);
    const auto loaded = memory_of(gateway.pid());
    std::cout.precision(2);
    std::cout << "latency publish -> device ack at " << options.latency_rate << " readings/s for "
              << options.latency_seconds << " s (" << latency_devices.size() << " devices): p50 " << latency.p50_ms
              << " ms, p99 " << latency.p99_ms << " ms, max " << latency.max_ms << " ms (" << latency.acknowledged
              << "/" << latency.published << " acknowledged)" << std::endl;
    std::cout.precision(1);
    gateway.stop();
    say("carebridged RSS: idle " + mib(idle.rss_kib) + " (" + std::to_string(all_devices.size()) +
        " devices enrolled, connected, nothing flowing); after drain " + mib(after_drain.rss_kib) + "; peak " +
        mib(loaded.hwm_kib) + " (VmHWM after drain and latency run)");
    if (options.catch_up > 0)
        measure_catch_up(options, work, pki, gateway, probes);
    disconnect_devices(probes);

    // backlog B, drained by mosquitto_sub with a persistent session. The
    // broker forces client id = CN, so mosquitto_sub with the gateway's
    // certificate is "carebridged": first a clean connect drops the daemon's
    // session, then -c makes a persistent one subscribed to readings only.
    for (const bool persistent : {false, true}) {
        auto argv = sub_arguments(pki, port);
        argv.push_back("-E");
        if (persistent)
            argv.insert(argv.end(), {"-c", "-i", "carebridged"});
        const auto result = cb::test::run_command(argv, 60s);
        if (result.status.code != 0)
            throw std::runtime_error("mosquitto_sub session setup failed:\n" + result.output);
    }
    publish_backlog(pki, port, options, per_device, "B");
    auto argv = sub_arguments(pki, port);
    argv.insert(argv.end(), {"-c", "-i", "carebridged", "-C", std::to_string(backlog)});
    const auto broker_before_b = cb::bench::cpu_time_of(broker->pid());
    const auto log_mark = static_cast<std::size_t>(fs::file_size(work / "broker.log"));
    start = Clock::now();
    Process subscriber(argv, "/dev/null", work / "mosquitto_sub.err");
    const auto status = subscriber.wait_for_exit(3600s);
    const double exit_seconds = seconds_since(start);
    if (!status || status->code != 0)
        throw std::runtime_error("mosquitto_sub failed:\n" + cb::test::read_file(work / "mosquitto_sub.err"));
    // mosquitto_sub exits once it has received the last message; the broker
    // then still has its PUBACKs to read (one TLS record per loop turn), and
    // until it has, those messages are in flight, not drained. Its DISCONNECT
    // follows them on the same connection: the log line ends the drain.
    if (!cb::test::wait_for_file_text(work / "broker.log", "Client carebridged disconnected.", 600s, log_mark,
                                      broker->pid()))
        throw std::runtime_error("the broker did not log mosquitto_sub's disconnection");
    const double sub_seconds = seconds_since(start);
    const double exit_rate = backlog / exit_seconds;
    const double sub_rate = backlog / sub_seconds;
    std::cout << "mosquitto_sub drain: " << backlog << " readings in " << sub_seconds << " s = " << sub_rate
              << " readings/s (mosquitto_sub -q 1 -c -i carebridged -C " << backlog
              << " > /dev/null, from its start until the broker logged its DISCONNECT, sent after every PUBACK; it "
                 "had exited at "
              << exit_seconds << " s = " << exit_rate << " readings/s)" << std::endl;
    const auto broker_b = cb::bench::cpu_time_of(broker->pid()) - broker_before_b;
    say("CPU per reading during that drain (us): broker " + fixed(broker_b.total() * 1e6 / backlog, 1));

    broker->signal(SIGTERM);
    broker->wait_for_exit(60s);
    if (options.keep) {
        const auto kept = fs::temp_directory_path() / ("carebridge-bench-" + std::to_string(::getpid()) +
                                                       (options.rounds > 1 ? "-" + std::to_string(round) : ""));
        fs::rename(work, kept);
        say("kept: " + kept.string());
    }
    return {gateway_rate / sub_rate, gateway_rate / exit_rate};
}

// The machine's noise moves a single round's ratio by a quarter either way
// (bench/README.md, session 10): with --rounds N, the whole benchmark runs N
// times, each round from scratch (PKI, broker, store), and the last line is
// the median.
int run_rounds(const Options& options) {
    std::vector<double> drained;
    std::vector<double> exited;
    for (int round = 1; round <= options.rounds; ++round) {
        if (options.rounds > 1)
            say("round " + std::to_string(round) + " of " + std::to_string(options.rounds));
        const Ratios ratios = run(options, round);
        drained.push_back(ratios.drained);
        exited.push_back(ratios.exited);
        if (options.rounds > 1)
            say("round " + std::to_string(round) + " ratio: " + fixed(ratios.drained, 2) +
                " (against mosquitto_sub's exit: " + fixed(ratios.exited, 2) + ")");
    }
    std::cout.precision(2);
    if (options.rounds > 1)
        std::cout << "ratios of the " << options.rounds << " rounds: " << cb::bench::listed(drained, 2)
                  << "; against mosquitto_sub's exit: " << cb::bench::listed(exited, 2)
                  << "; the lines below are medians" << std::endl;
    std::cout << "ratio against mosquitto_sub's exit: " << median(exited) << std::endl;
    std::cout << "ratio: " << median(drained) << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const auto options = parse_options(argc, argv);
    mosquitto_lib_init();
    try {
        const int code = run_rounds(options);
        mosquitto_lib_cleanup();
        return code;
    } catch (const std::exception& error) {
        std::cerr << "bench-ingest-driver: " << error.what() << std::endl;
        return 1;
    }
}
