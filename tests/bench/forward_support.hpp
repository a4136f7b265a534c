// What the benchmark drivers that forward share: a stored backlog of paired
// readings, nginx as a fast sink for the national space, and the [upstream]
// section of carebridged's configuration that points at it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "drivers/storage/outbox.hpp"
#include "drivers/storage/reading_store.hpp"
#include "tests/bench/bench_support.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/process.hpp"

namespace cb::bench {

namespace fs = std::filesystem;

// ------------------------------------------------------------- backlog -------

inline std::string patient_name(int index) {
    return "patient-" + std::to_string(index + 1);
}

inline std::string device_name(int index) {
    return "cuff-" + std::to_string(index + 1);
}

// As tests/integration/10_forward_test.cpp stores them.
inline std::string heart_rate_body(int i) {
    return R"({"type":"heart_rate","time_us":)" + std::to_string(1'795'338'000'000'000 + i * 60'000'000LL) +
           R"(,"offset_min":60,"values":[{"code":149530,"value":)" + std::to_string(60 + i % 40) +
           R"(,"unit":"/min"}],"user_index":0})";
}

inline cb::storage::NewReading reading_of(int patient, int sequence) {
    cb::storage::NewReading reading;
    reading.device_id = device_name(patient);
    reading.sequence = sequence;
    reading.type = "heart_rate";
    reading.body = heart_rate_body(sequence);
    reading.device_time_us = 1'795'338'000'000'000;
    reading.received_us = 1'795'338'000'000'000;
    reading.patient = patient_name(patient);
    return reading;
}

// Stores patients x per_patient readings interleaved, as a ward's devices
// deliver them: sequence s of every patient, then s + 1. The forwarder takes
// its work in reading order (prefetch window) and keeps one request per
// patient in flight, so this order is what lets it use its connections.
inline void seed(const fs::path& database, int patients, int per_patient) {
    auto store = cb::storage::SqliteReadingStore::open(database);
    if (!store)
        throw std::runtime_error("cannot open the store: " + store.error().message());
    std::vector<cb::storage::NewReading> batch;
    for (int sequence = 1; sequence <= per_patient; ++sequence) {
        for (int patient = 0; patient < patients; ++patient)
            batch.push_back(reading_of(patient, sequence));
        if (batch.size() >= 10'000 || sequence == per_patient) {
            if (auto committed = store->commit(batch); !committed)
                throw std::runtime_error("cannot store the backlog: " + committed.error().message());
            batch.clear();
        }
    }
}

// The idPe the bench pairs `patient` with.
inline std::string id_pe_of(int patient) {
    char id_pe[32];
    std::snprintf(id_pe, sizeof id_pe, "idpe-%016x", static_cast<unsigned>(patient + 1));
    return id_pe;
}

// A dummy of the length of a real token; nginx checks none.
inline std::string dummy_token(int patient) {
    std::string token = "bench-token-" + std::to_string(patient + 1);
    token.resize(43, 'x');
    return token;
}

inline void pair_directly(const fs::path& database, int patients) {
    auto outbox = cb::storage::Outbox::open(database);
    if (!outbox)
        throw std::runtime_error("cannot open the outbox: " + outbox.error().message());
    const auto now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    for (int patient = 0; patient < patients; ++patient) {
        cb::storage::Pairing pairing;
        pairing.patient = patient_name(patient);
        pairing.id_pe = id_pe_of(patient);
        pairing.access_token = dummy_token(patient);
        pairing.refresh_token = dummy_token(patient);
        pairing.access_expires_us = now_us + 24LL * 3600 * 1'000'000;
        pairing.paired_us = now_us;
        if (auto saved = outbox->save_pairing(pairing); !saved)
            throw std::runtime_error("cannot save a pairing: " + saved.error().message());
    }
}

// A state directory as carebridged wants it (0700); its store's path.
inline fs::path make_state(const fs::path& state) {
    fs::create_directories(state);
    fs::permissions(state, fs::perms::owner_all);
    return state / "readings.db";
}

// --------------------------------------------------------------- nginx -------

inline constexpr const char* transaction_response =
    R"({"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"Observation/1/_history/1"}}]})";

// nginx as a child in the foreground (-g 'daemon off;'), one worker process.
// Its destructor stops it with SIGTERM (fast shutdown) and waits, so that the
// worker does not outlive the master.
class Nginx {
public:
    Nginx(const std::string& program, const fs::path& prefix, const fs::path& pki) : m_prefix(prefix) {
        fs::create_directories(prefix / "temp");
        m_mutual_port = cb::test::pick_free_port();
        m_plain_port = cb::test::pick_free_port();
        while (m_plain_port == m_mutual_port)
            m_plain_port = cb::test::pick_free_port();
        const std::string answers = std::string("    keepalive_requests 1000000;\n    keepalive_timeout 300s;\n") +
                                    "    location /fhir { default_type application/fhir+json; return 201 '" +
                                    transaction_response + "'; }\n" +
                                    "    location /token { default_type application/json; return 200 "
                                    "'{\"access_token\":\"bench\",\"token_type\":\"Bearer\",\"expires_in\":3600}'; }\n";
        const std::string tls = "    ssl_certificate " + (pki / "receiver.crt").string() + ";\n" +
                                "    ssl_certificate_key " + (pki / "receiver.key").string() + ";\n" +
                                "    ssl_protocols TLSv1.2 TLSv1.3;\n";
        const std::string temp = (prefix / "temp").string();
        std::ofstream(prefix / "nginx.conf")
            << "worker_processes 1;\n"
            << "pid " << (prefix / "nginx.pid").string() << ";\n"
            << "error_log " << (prefix / "error.log").string() << " notice;\n"
            << "events { worker_connections 1024; }\n"
            << "http {\n"
            << "  access_log off;\n"
            << "  client_body_temp_path " << temp << "/body;\n"
            << "  proxy_temp_path " << temp << "/proxy;\n"
            << "  fastcgi_temp_path " << temp << "/fastcgi;\n"
            << "  uwsgi_temp_path " << temp << "/uwsgi;\n"
            << "  scgi_temp_path " << temp << "/scgi;\n"
            << "  client_max_body_size 1m;\n"
            << "  client_body_buffer_size 64k;\n"
            << "  # carebridged: mutual TLS, as the national space\n"
            << "  server {\n"
            << "    listen 127.0.0.1:" << m_mutual_port << " ssl;\n"
            << tls << "    ssl_verify_client on;\n"
            << "    ssl_client_certificate " << (pki / "facility-ca.crt").string() << ";\n"
            << answers << "  }\n"
            << "  # wrk: the same without client certificate (wrk cannot present one)\n"
            << "  server {\n"
            << "    listen 127.0.0.1:" << m_plain_port << " ssl;\n"
            << tls << "    ssl_verify_client off;\n"
            << answers << "  }\n"
            << "}\n";
        const auto log = prefix / "error.log";
        m_process = std::make_unique<cb::test::Process>(
            std::vector<std::string>{program, "-p", prefix.string(), "-c", (prefix / "nginx.conf").string(), "-g",
                                     "daemon off;"},
            prefix / "nginx.out", prefix / "nginx.err");
        // At level notice the master logs "start worker process N" once it listens.
        if (!cb::test::wait_for_file_text(log, "start worker process", std::chrono::seconds(30), 0, m_process->pid()))
            throw std::runtime_error("nginx did not start:\n" + cb::test::read_file(prefix / "nginx.err") +
                                     cb::test::read_file(log));
    }
    ~Nginx() {
        if (!m_process)
            return;
        m_process->signal(SIGTERM);
        if (!m_process->wait_for_exit(std::chrono::seconds(30)))
            m_process->signal(SIGKILL);
    }
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;

    std::uint16_t mutual_port() const noexcept { return m_mutual_port; }
    std::uint16_t plain_port() const noexcept { return m_plain_port; }
    // The CPU time of the worker process (worker_processes 1), the master's child.
    cb::bench::CpuTime worker_cpu() const {
        std::ifstream children("/proc/" + std::to_string(m_process->pid()) + "/task/" +
                               std::to_string(m_process->pid()) + "/children");
        pid_t worker = 0;
        return children >> worker ? cb::bench::cpu_time_of(worker) : cb::bench::CpuTime{};
    }

private:
    fs::path m_prefix;
    std::uint16_t m_mutual_port = 0;
    std::uint16_t m_plain_port = 0;
    std::unique_ptr<cb::test::Process> m_process;
};

// ------------------------------------------------------------ upstream -------

inline constexpr const char* facility_system = "urn:oid:1.2.250.1.71.4.2.2";
inline constexpr const char* facility_value = "750000000";

// carebridged's [upstream] section: mutual TLS to `port` on localhost with the
// facility certificate of scripts/test-pki's layout in `pki`, which also signs.
inline std::string upstream_section(const fs::path& pki, std::uint16_t port, int connections) {
    return "[upstream]\nenabled = true\nhost = \"localhost\"\nport = " + std::to_string(port) + "\nca_file = \"" +
           (pki / "ca.crt").string() + "\"\ncert_file = \"" + (pki / "facility/ec.crt").string() + "\"\nkey_file = \"" +
           (pki / "facility/ec.key").string() + "\"\nmax_connections = " + std::to_string(connections) +
           "\nfacility_id = \"" + facility_value + "\"\nsigning_key_file = \"" + (pki / "facility/ec.key").string() +
           "\"\nsigning_chain_file = \"" + (pki / "facility/ec.crt").string() + "\"\n";
}

}  // namespace cb::bench
