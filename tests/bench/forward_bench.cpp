// bench-forward-driver: the forwarding benchmark behind bench/forward
// (bench/README.md). Everything runs in a temporary directory, on loopback
// only, and is removed at the end (--keep keeps it).
//
//   phase      what happens                                          what is measured
//   ---------  ----------------------------------------------------  ---------------------------------
//   pki        scripts/test-pki (CA, facility, receiver sections)    -
//   signing    N readings: parse + bundle_text, the ECDSA sign       µs/reading per step, share of
//              alone, BundleSigner::signed_canonical_text (the       ECDSA; the same through a JSON
//              forwarder's calls), and build_bundle + signed_text;   tree for comparison
//              in-process, one thread
//   nginx      nginx with two TLS listeners: mutual TLS for          -
//              carebridged, no client certificate for wrk (which
//              cannot present one); both answer 201 to POST /fhir
//   backlog    P patients x K readings stored interleaved (reading   -
//              i belongs to patient i mod P), every patient paired
//              (Outbox::save_pairing: nginx checks no token)
//   forward    carebridged (ingest off, upstream on, log_level       rate A: readings/s from process
//              info) started; done at "caught up: N delivered"       start to that line; peak RSS
//   wrk        wrk -t1 -c<max_connections> -d<S>s POSTs the same     rate B: Requests/sec
//              kind of signed bundles (signed_canonical_text, as sent
//              by the forwarder) round-robin to nginx
//   receiver   a second store (fewer readings), patients paired      readings/s against the
//              through carebridged --pair, against carebridge-       reference receiver, which
//              receiver --auto-pair                                  verifies every signature
//   ingest     bench-ingest-driver (bench/ingest) with a backlog of  its "carebridged drain" rate
//              --ingest-backlog readings from --ingest-devices       and CPU per reading, next to
//              devices, one round, latency run 1 s                   forwarding's
//
// forward and wrk run --rounds times (3), each round on a fresh backlog, one
// after the other against the same nginx. The last line printed is
// "ratio: X.XX": the median of the rounds' rate A / rate B. No assertion on
// any figure: a benchmark reports, it does not pass or fail on timing. The
// access tokens stored for the nginx run are fixed dummies (nginx checks none);
// the receiver's real ones stay in the store and are never printed.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "drivers/signing/signer.hpp"
#include "drivers/storage/outbox.hpp"
#include "drivers/storage/reading_store.hpp"
#include "protocol/devices/topics.hpp"
#include "protocol/upstream/fhir_bundle.hpp"
#include "protocol/upstream/jws.hpp"
#include "tests/bench/bench_support.hpp"
#include "tests/bench/forward_support.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/process.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cb::bench::Clock;
using cb::bench::dummy_token;
using cb::bench::facility_system;
using cb::bench::facility_value;
using cb::bench::fixed;
using cb::bench::id_pe_of;
using cb::bench::make_state;
using cb::bench::memory_of;
using cb::bench::Nginx;
using cb::bench::pair_directly;
using cb::bench::patient_name;
using cb::bench::reading_of;
using cb::bench::say;
using cb::bench::seconds_since;
using cb::bench::seed;
using cb::test::Process;

namespace {

struct Options {
    int patients = 1000;
    int per_patient = 100;  // backlog = patients x per_patient
    int connections = 4;    // upstream.max_connections (its default) = wrk -c
    int wrk_seconds = 10;
    int bundles = 1000;  // distinct signed bundles wrk sends round-robin
    int receiver_patients = 50;
    int receiver_per_patient = 200;
    int sign_count = 2000;
    int rounds = 3;                // carebridged then wrk, this many times; the ratio is the median
    double ingest_rate = 0;        // readings/s from bench/ingest's "carebridged drain:", 0: measured here
    int ingest_devices = 1000;     // bench/ingest's defaults
    int ingest_backlog = 200'000;  // readings
    bool skip_ingest = false;      // neither measured nor given: no comparison
    std::string nginx = "/usr/sbin/nginx";
    std::string wrk = "/usr/bin/wrk";
    bool keep = false;
    bool perf = false;  // perf record -g on carebridged during the nginx run
    bool skip_receiver = false;
};

[[noreturn]] void usage(const std::string& problem) {
    std::cerr
        << "bench-forward-driver: " << problem
        << "\nusage: bench-forward-driver [--patients N] [--per-patient N] [--connections N]"
           " [--wrk-seconds S] [--bundles N] [--receiver-patients N] [--receiver-per-patient N]"
           " [--sign-count N] [--rounds N] [--ingest-devices N] [--ingest-backlog N] [--ingest-rate R | --no-ingest]"
           " [--nginx PATH] [--wrk PATH] [--no-receiver] [--perf] [--keep]\n";
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
        if (name == "--perf") {
            options.perf = true;
            continue;
        }
        if (name == "--no-receiver") {
            options.skip_receiver = true;
            continue;
        }
        if (name == "--no-ingest") {
            options.skip_ingest = true;
            continue;
        }
        if (i + 1 >= argc)
            usage(name + ": missing value");
        const std::string text = argv[++i];
        if (name == "--nginx") {
            options.nginx = text;
            continue;
        }
        if (name == "--wrk") {
            options.wrk = text;
            continue;
        }
        double value = 0;
        try {
            std::size_t used = 0;
            value = std::stod(text, &used);
            if (used != text.size())
                throw std::invalid_argument(text);
        } catch (const std::exception&) {
            usage(name + ": expected a number, got " + text);
        }
        if (value <= 0)
            usage(name + ": expected a positive number, got " + text);
        const int whole = static_cast<int>(value);
        if (name == "--patients")
            options.patients = whole;
        else if (name == "--per-patient")
            options.per_patient = whole;
        else if (name == "--connections")
            options.connections = whole;
        else if (name == "--wrk-seconds")
            options.wrk_seconds = whole;
        else if (name == "--bundles")
            options.bundles = whole;
        else if (name == "--receiver-patients")
            options.receiver_patients = whole;
        else if (name == "--receiver-per-patient")
            options.receiver_per_patient = whole;
        else if (name == "--rounds")
            options.rounds = whole;
        else if (name == "--sign-count")
            options.sign_count = whole;
        else if (name == "--ingest-rate")
            options.ingest_rate = value;
        else if (name == "--ingest-devices")
            options.ingest_devices = whole;
        else if (name == "--ingest-backlog")
            options.ingest_backlog = whole;
        else
            usage("unknown option " + name);
    }
    if (options.patients <= 0 || options.per_patient <= 0 || options.connections <= 0 || options.bundles <= 0 ||
        options.receiver_patients <= 0 || options.receiver_per_patient <= 0 || options.sign_count <= 0 ||
        options.wrk_seconds <= 0 || options.rounds <= 0 || options.ingest_devices <= 0 || options.ingest_backlog <= 0)
        usage("every count must be at least 1");
    if (options.ingest_backlog < options.ingest_devices)
        usage("--ingest-backlog must be at least --ingest-devices");
    return options;
}

// ------------------------------------------------------------- signing -------

cb::devices::Microseconds now_time() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

// What the forwarder's worker builds for one stored reading (without catalog
// description: ingest is off in this benchmark).
cb::upstream::BundleInput input_of(const cb::storage::NewReading& reading, const std::string& id_pe) {
    auto device = cb::devices::DeviceId::parse(reading.device_id);
    auto stored = cb::upstream::StoredReading::parse(reading.body);
    if (!device || !stored)
        throw std::runtime_error("cannot parse the reading of " + reading.device_id);
    return cb::upstream::BundleInput{.device = *device,
                                     .eui64 = std::nullopt,
                                     .manufacturer = {},
                                     .model = {},
                                     .sequence = static_cast<std::uint64_t>(reading.sequence),
                                     .reading = std::move(*stored),
                                     .patient_idpe = id_pe,
                                     .practitioner_idnps = std::nullopt,
                                     .glucose_moment = std::nullopt};
}

// The bundle's canonical text, as the forwarder writes it (bundle_text).
std::string build(const cb::storage::NewReading& reading, const std::string& id_pe) {
    auto bundle = cb::upstream::bundle_text(input_of(reading, id_pe));
    if (!bundle)
        throw std::runtime_error(std::string("bundle_text: ") + cb::upstream::to_string(bundle.error().problem));
    return std::move(*bundle);
}

// The forwarder's signer: the chain decoded and checked once.
cb::upstream::BundleSigner bundle_signer(cb::signing::Signer& signer) {
    auto prepared = cb::upstream::BundleSigner::prepare(
        cb::signing::signature_request(signer, now_time(), facility_system, facility_value),
        cb::signing::sign_function(signer));
    if (!prepared)
        throw std::runtime_error("BundleSigner: " + prepared.error().message());
    return std::move(*prepared);
}

struct SigningCost {
    double ecdsa_us = 0;  // SHA-256 and the ECDSA P-256 signature of one bundle
};

// Times each step of what the forwarder does per reading, on one thread.
SigningCost measure_signing(cb::signing::Signer& signer, const Options& options) {
    using Duration = std::chrono::duration<double, std::micro>;
    Duration build_time{}, ecdsa_time{}, sign_time{}, tree_time{};
    std::size_t bytes = 0;
    const auto prepared = bundle_signer(signer);
    for (int i = 0; i < options.sign_count; ++i) {
        const int patient = i % options.patients;
        const auto reading = reading_of(patient, 1 + i / options.patients);
        auto at = Clock::now();
        const std::string bundle = build(reading, id_pe_of(patient));
        build_time += Clock::now() - at;

        // The ECDSA signature alone (SHA-256 and the P-256 sign), over the
        // payload: the JWS signs it base64url-encoded behind the header.
        at = Clock::now();
        auto signature = signer.sign(std::span(reinterpret_cast<const std::uint8_t*>(bundle.data()), bundle.size()));
        ecdsa_time += Clock::now() - at;
        if (!signature)
            throw std::runtime_error("sign: " + signature.error().message());

        // The forwarder's call: the signature over the canonical text, spliced
        // in front of its members.
        at = Clock::now();
        auto text = prepared.signed_canonical_text(bundle, now_time());
        sign_time += Clock::now() - at;
        if (!text)
            throw std::runtime_error("BundleSigner::signed_canonical_text: " + text.error().message());
        bytes += text->size();

        // For comparison, the way through a JSON tree (before session 5):
        // parse + build_bundle, then signed_text, which canonicalizes it.
        at = Clock::now();
        auto tree = cb::upstream::build_bundle(input_of(reading, id_pe_of(patient)));
        if (!tree)
            throw std::runtime_error("build_bundle failed");
        if (auto tree_text = prepared.signed_text(*tree, now_time()); !tree_text)
            throw std::runtime_error("BundleSigner::signed_text: " + tree_text.error().message());
        tree_time += Clock::now() - at;
    }
    const double n = options.sign_count;
    const double build_us = build_time.count() / n;
    const double ecdsa_us = ecdsa_time.count() / n;
    const double sign_us = sign_time.count() / n;
    const double tree_us = tree_time.count() / n;
    const double total_us = build_us + sign_us;
    say("signing cost (" + std::to_string(options.sign_count) + " readings, one thread, ES256 PEM key): parse + " +
        "bundle_text " + fixed(build_us, 1) + " us, signed_canonical_text " + fixed(sign_us, 1) +
        " us, of which ECDSA P-256 " + fixed(ecdsa_us, 1) + " us (" + fixed(100 * ecdsa_us / sign_us, 0) +
        " %); through a JSON tree (build_bundle + signed_text) " + fixed(tree_us, 1) + " us");
    say("per reading on the forwarder's signing threads: " + fixed(total_us, 1) + " us, i.e. at most " +
        fixed(1e6 / total_us, 0) + " readings/s on one core before storage and network; " + "bundle " +
        std::to_string(bytes / static_cast<std::size_t>(options.sign_count)) + " bytes");
    return {.ecdsa_us = ecdsa_us};
}

// Signed bundles of the first `count` readings of the backlog, one per line
// (serialized JSON holds no newline), for wrk.
void write_bundles(cb::signing::Signer& signer, const Options& options, const fs::path& file) {
    // The very text the forwarder sends: BundleSigner::signed_canonical_text.
    const auto prepared = bundle_signer(signer);
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < options.bundles; ++i) {
        const int patient = i % options.patients;
        const auto bundle = build(reading_of(patient, 1 + i / options.patients), id_pe_of(patient));
        auto text = prepared.signed_canonical_text(bundle, now_time());
        if (!text)
            throw std::runtime_error("BundleSigner::signed_canonical_text: " + text.error().message());
        out << *text << '\n';
    }
    if (!out)
        throw std::runtime_error("cannot write " + file.string());
}

// ---------------------------------------------------------- carebridged ------

fs::path write_config(const fs::path& work, const std::string& name, const fs::path& state, const fs::path& pki,
                      std::uint16_t port, int connections) {
    const auto path = work / (name + ".toml");
    std::ofstream(path) << "[daemon]\nstate_dir = \"" << state.string() << "\"\nlog_level = \"info\"\n"
                        << cb::bench::upstream_section(pki, port, connections);
    return path;
}

struct Delivery {
    double seconds = 0;
    long peak_rss_kib = 0;
    cb::bench::CpuTime cpu;                               // carebridged's, from its start to "caught up"
    std::map<std::string, cb::bench::ThreadCpu> threads;  // the same, per thread name
    std::map<std::string, std::int64_t> outbox;
};

// Starts carebridged on `config` and times it from the start until its log
// says "caught up: <expected> delivered" (awaited with inotify), then stops it.
Delivery deliver(const fs::path& work, const std::string& name, const fs::path& config, const fs::path& database,
                 int expected, bool perf) {
    const auto log = work / (name + ".log");
    const std::string needle = "caught up: " + std::to_string(expected) + " delivered";
    Delivery delivery;
    const auto start = Clock::now();
    Process daemon({CAREBRIDGED_PATH, "--config", config.string()}, work / (name + ".out"), log);
    std::unique_ptr<Process> recorder;
    // perf attached to a process follows the threads it has at that moment:
    // wait until the forwarder's worker thread exists (it logs once started).
    if (perf && !cb::test::wait_for_file_text(log, "upstream: forwarding to", 60s, 0, daemon.pid()))
        throw std::runtime_error("carebridged (" + name + ") did not start forwarding:\n" + cb::test::read_file(log));
    if (perf)
        recorder = std::make_unique<Process>(
            std::vector<std::string>{"/usr/bin/perf", "record", "--call-graph", "dwarf,16384", "-F", "499", "-o",
                                     (work / "perf.data").string(), "-p", std::to_string(daemon.pid())},
            work / "perf.out", work / "perf.err");
    if (!cb::test::wait_for_file_text(log, needle, 3600s, 0, daemon.pid()))
        throw std::runtime_error("carebridged (" + name + ") did not log \"" + needle + "\":\n" +
                                 cb::test::read_file(log));
    delivery.seconds = seconds_since(start);
    delivery.peak_rss_kib = memory_of(daemon.pid()).hwm_kib;
    delivery.cpu = cb::bench::cpu_time_of(daemon.pid());
    delivery.threads = cb::bench::cpu_by_thread(daemon.pid());
    if (recorder) {
        recorder->signal(SIGINT);
        recorder->wait_for_exit(120s);
    }
    daemon.signal(SIGTERM);
    const auto status = daemon.wait_for_exit(60s);
    if (!status || !status->exited || status->code != 0)
        throw std::runtime_error("carebridged (" + name + ") did not stop cleanly:\n" + cb::test::read_file(log));
    auto outbox = cb::storage::Outbox::open(database);
    if (!outbox)
        throw std::runtime_error("cannot open the outbox: " + outbox.error().message());
    auto counts = outbox->counts();
    if (!counts)
        throw std::runtime_error("cannot count the outbox: " + counts.error().message());
    delivery.outbox = std::move(*counts);
    return delivery;
}

std::string describe(const std::map<std::string, std::int64_t>& counts) {
    std::string text;
    for (const auto& [state, count] : counts)
        text += (text.empty() ? "" : ", ") + state + " " + std::to_string(count);
    return text.empty() ? "empty" : text;
}

// ----------------------------------------------------------------- wrk -------

struct WrkResult {
    double requests_per_second = 0;
    std::string summary;   // "N requests in Ss, ..." line
    std::string problems;  // non-2xx answers, socket errors
};

WrkResult run_wrk(const Options& options, const fs::path& work, std::uint16_t port) {
    const auto script = work / "post-bundles.lua";
    std::ofstream(script) << "-- POSTs the pre-built signed bundles round-robin, one per request.\n"
                          << "local bodies = {}\n"
                          << "for line in io.lines(\"" << (work / "bundles.ndjson").string() << "\") do\n"
                          << "  bodies[#bodies + 1] = line\n"
                          << "end\n"
                          << "local headers = {[\"Content-Type\"] = \"application/fhir+json\",\n"
                          << "                 [\"Authorization\"] = \"Bearer " << dummy_token(0) << "\"}\n"
                          << "local next_body = 0\n"
                          << "request = function()\n"
                          << "  next_body = next_body % #bodies + 1\n"
                          << "  return wrk.format(\"POST\", \"/fhir\", headers, bodies[next_body])\n"
                          << "end\n";
    const std::vector<std::string> argv{options.wrk,
                                        "-t1",
                                        "-c" + std::to_string(options.connections),
                                        "-d" + std::to_string(options.wrk_seconds) + "s",
                                        "-s",
                                        script.string(),
                                        "https://127.0.0.1:" + std::to_string(port) + "/fhir"};
    const auto run = cb::test::run_command(argv, std::chrono::seconds(options.wrk_seconds + 120));
    if (!run.status.exited || run.status.code != 0)
        throw std::runtime_error("wrk failed:\n" + run.output);
    WrkResult result;
    std::istringstream lines(run.output);
    for (std::string line; std::getline(lines, line);) {
        const auto first = line.find_first_not_of(' ');
        const std::string trimmed = first == std::string::npos ? "" : line.substr(first);
        if (trimmed.rfind("Requests/sec:", 0) == 0)
            result.requests_per_second = std::stod(trimmed.substr(13));
        else if (trimmed.find(" requests in ") != std::string::npos)
            result.summary = trimmed;
        else if (trimmed.rfind("Non-2xx", 0) == 0 || trimmed.rfind("Socket errors", 0) == 0)
            result.problems += (result.problems.empty() ? "" : "; ") + trimmed;
    }
    if (result.requests_per_second <= 0)
        throw std::runtime_error("no Requests/sec in wrk's output:\n" + run.output);
    return result;
}

// ------------------------------------------------------------ receiver -------

struct ReceiverRun {
    Delivery delivery;
    double pairing_seconds = 0;
    std::int64_t observations = 0;
    std::int64_t valid_signatures = 0;
};

ReceiverRun against_receiver(const Options& options, const fs::path& work, const fs::path& pki) {
    const auto dir = work / "receiver";
    fs::create_directories(dir);
    cb::test::ReceiverSetup setup;
    setup.executable = RECEIVER_PATH;
    setup.pki_dir = pki;
    setup.work_dir = dir;
    setup.extra = {"--auto-pair", "--log-level", "warning"};
    cb::test::ReceiverProcess receiver(setup);
    const auto database = make_state(work / "state-receiver");
    seed(database, options.receiver_patients, options.receiver_per_patient);
    const auto config =
        write_config(work, "carebridged-receiver", work / "state-receiver", pki, receiver.port(), options.connections);
    // Real pairings: the receiver binds each token to its patient's idPe.
    ReceiverRun run;
    const auto start = Clock::now();
    for (int patient = 0; patient < options.receiver_patients; ++patient) {
        char nir[32];
        std::snprintf(nir, sizeof nir, "1800175%06d", (patient + 1) % 1'000'000);
        const auto paired = cb::test::run_command({CAREBRIDGED_PATH, "--config", config.string(), "--pair",
                                                   patient_name(patient), "--nir", nir, "--code", "0000"},
                                                  60s);
        if (!paired.status.exited || paired.status.code != 0)
            throw std::runtime_error("carebridged --pair " + patient_name(patient) + " failed:\n" + paired.output);
    }
    run.pairing_seconds = seconds_since(start);
    const int expected = options.receiver_patients * options.receiver_per_patient;
    run.delivery = deliver(work, "carebridged-receiver", config, database, expected, false);
    const auto stats = receiver.stats().as_object();
    run.observations = stats.at("observations").as_int64();
    run.valid_signatures = stats.at("valid_signatures").as_int64();
    receiver.stop();
    return run;
}

// ---------------------------------------------------------------- run --------

void require_executable(const std::string& path, const std::string& package) {
    if (::access(path.c_str(), X_OK) != 0)
        throw std::runtime_error(path + " not found: install Debian's " + package +
                                 " (scripts/install-deps installs it, group bench)");
}

// One round: a fresh backlog delivered by carebridged to nginx, then wrk
// against the same nginx. Returns carebridged's rate / wrk's.
// bench/ingest's drain (one round, a 1 s latency run), run here so that
// forwarding is compared with ingest measured on the same machine in the
// same run.
struct Ingest {
    double rate = 0;       // readings/s: its "carebridged drain"
    double cpu_us = 0;     // broker + carebridged CPU per reading during that drain
    std::string cpu_line;  // the driver's line those come from
};

Ingest measure_ingest(const Options& options) {
    const auto ran =
        cb::test::run_command({INGEST_DRIVER_PATH, "--devices", std::to_string(options.ingest_devices), "--backlog",
                               std::to_string(options.ingest_backlog), "--latency-seconds", "1"},
                              900s);
    if (ran.status.code != 0)
        throw std::runtime_error("bench-ingest-driver failed:\n" + ran.output);
    Ingest ingest;
    std::istringstream lines(ran.output);
    std::string line;
    // "carebridged drain: N readings in S s = R readings/s (...)" and, for the
    // same drain, "CPU per reading during that drain (us): broker B;
    // carebridged by thread (from its start): carebridged G1, cb-commit G2".
    const std::regex decimal(R"(\d+\.\d+)");
    while (std::getline(lines, line)) {
        if (line.rfind("carebridged drain: ", 0) == 0) {
            if (const auto equals = line.find(" = "); equals != std::string::npos)
                ingest.rate = std::stod(line.substr(equals + 3));
        } else if (line.rfind("CPU per reading during that drain (us): broker ", 0) == 0 &&
                   line.find("carebridged by thread") != std::string::npos) {
            ingest.cpu_line = line;
            for (auto it = std::sregex_iterator(line.begin(), line.end(), decimal); it != std::sregex_iterator(); ++it)
                ingest.cpu_us += std::stod(it->str());
        }
    }
    if (ingest.rate <= 0 || ingest.cpu_line.empty())
        throw std::runtime_error("bench-ingest-driver printed no \"carebridged drain\" figures:\n" + ran.output);
    return ingest;
}

struct RoundResult {
    double carebridged_rate = 0;
    double wrk_rate = 0;
    double carebridged_us = 0;  // CPU per reading delivered to nginx
    double nginx_us = 0;        // the nginx worker's, over the same span
    double ratio() const { return carebridged_rate / wrk_rate; }
};

RoundResult run_round(const Options& options, const fs::path& work, const fs::path& pki, Nginx& nginx, int round) {
    const std::string suffix = options.rounds > 1 ? "-" + std::to_string(round) : "";
    const std::string tag = options.rounds > 1 ? "[round " + std::to_string(round) + "] " : "";
    const int backlog = options.patients * options.per_patient;
    auto start = Clock::now();
    const auto state = work / ("state" + suffix);
    const auto database = make_state(state);
    seed(database, options.patients, options.per_patient);
    pair_directly(database, options.patients);
    say(tag + "backlog: " + std::to_string(backlog) + " readings of " + std::to_string(options.patients) +
        " patients (interleaved, all paired) stored in " + fixed(seconds_since(start), 1) + " s");

    // carebridged against nginx.
    const auto config =
        write_config(work, "carebridged" + suffix, state, pki, nginx.mutual_port(), options.connections);
    const auto nginx_before = nginx.worker_cpu();
    const bool perf = options.perf && round == 1;
    const auto forwarded = deliver(work, "carebridged" + suffix, config, database, backlog, perf);
    const auto nginx_forwarded = nginx.worker_cpu() - nginx_before;
    RoundResult result;
    result.carebridged_rate = backlog / forwarded.seconds;
    say(tag + "carebridged -> nginx: " + std::to_string(backlog) + " readings in " + fixed(forwarded.seconds, 2) +
        " s = " + fixed(result.carebridged_rate, 0) + " readings/s (" + std::to_string(options.connections) +
        " connections, mutual TLS, each bundle signed; from process start to \"caught up: " + std::to_string(backlog) +
        " delivered\"); peak RSS " + fixed(static_cast<double>(forwarded.peak_rss_kib) / 1024.0, 1) + " MiB; outbox " +
        describe(forwarded.outbox) + (perf ? " [perf record running: slowed]" : ""));

    const auto per_reading = [](const cb::bench::CpuTime& cpu, double count) {
        return fixed(cpu.total() * 1e6 / count, 1) + " us (user " + fixed(cpu.user_s * 1e6 / count, 1) + ", system " +
               fixed(cpu.system_s * 1e6 / count, 1) + ")";
    };
    result.carebridged_us = forwarded.cpu.total() * 1e6 / backlog;
    result.nginx_us = nginx_forwarded.total() * 1e6 / backlog;
    say(tag + "CPU per reading: carebridged " + per_reading(forwarded.cpu, backlog) + ", nginx worker " +
        per_reading(nginx_forwarded, backlog) + "; " + fixed(forwarded.cpu.total() / forwarded.seconds, 2) + " + " +
        fixed(nginx_forwarded.total() / forwarded.seconds, 2) + " cores busy");
    say(tag + "CPU per reading by carebridged thread (us): " + cb::bench::describe_threads(forwarded.threads, backlog));
    say(tag + "context switches per reading by carebridged thread, voluntary + preempted: " +
        cb::bench::describe_switches(forwarded.threads, backlog));

    // wrk against the same nginx, same number of connections.
    const auto nginx_before_wrk = nginx.worker_cpu();
    const auto wrk = run_wrk(options, work, nginx.plain_port());
    const auto nginx_wrk = nginx.worker_cpu() - nginx_before_wrk;
    result.wrk_rate = wrk.requests_per_second;
    say(tag + "wrk -> nginx: " + fixed(wrk.requests_per_second, 0) + " requests/s (wrk -t1 -c" +
        std::to_string(options.connections) + " -d" + std::to_string(options.wrk_seconds) + "s, " +
        std::to_string(options.bundles) + " pre-built signed bundles round-robin; " + wrk.summary +
        (wrk.problems.empty() ? "" : "; " + wrk.problems) + ")");
    const double wrk_requests = wrk.requests_per_second * options.wrk_seconds;
    if (wrk_requests > 0)
        say(tag + "CPU per request: nginx worker " + per_reading(nginx_wrk, wrk_requests) + " under wrk");
    if (options.rounds > 1)
        say(tag + "ratio: " + fixed(result.ratio(), 2));
    return result;
}

// One figure of every round, in round order.
std::vector<double> each(const std::vector<RoundResult>& rounds, double RoundResult::*figure) {
    std::vector<double> values;
    for (const auto& round : rounds)
        values.push_back(round.*figure);
    return values;
}

// Forwarding against ingest (bench/ingest's drain, measured now unless
// --ingest-rate gave it), and what the machine's cores allow: one ECDSA
// signature per bundle and the sink's own work at the ingest rate.
void compare_with_ingest(const Options& options, const std::vector<RoundResult>& rounds, const SigningCost& signing) {
    if (options.skip_ingest) {
        say("forwarding vs ingest: not compared (--no-ingest)");
        return;
    }
    const double forwarding = cb::bench::median(each(rounds, &RoundResult::carebridged_rate));
    const double carebridged_us = cb::bench::median(each(rounds, &RoundResult::carebridged_us));
    const double nginx_us = cb::bench::median(each(rounds, &RoundResult::nginx_us));
    Ingest ingest;
    std::string source = "--ingest-rate";
    if (options.ingest_rate > 0) {
        ingest.rate = options.ingest_rate;
    } else {
        const auto start = Clock::now();
        ingest = measure_ingest(options);
        source = "bench-ingest-driver --devices " + std::to_string(options.ingest_devices) + " --backlog " +
                 std::to_string(options.ingest_backlog) + ", this run, " + fixed(seconds_since(start), 0) + " s";
        say("ingest: " + ingest.cpu_line);
    }
    say("forwarding vs ingest: " + fixed(forwarding, 0) + " vs " + fixed(ingest.rate, 0) +
        " readings/s (ingest: " + source + "): forwarding " +
        (forwarding >= ingest.rate ? "keeps up with ingest" : "does NOT keep up with ingest") + " (x" +
        fixed(forwarding / ingest.rate, 2) + ")");
    const double cores = static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN));
    const double ecdsa_cores = ingest.rate * signing.ecdsa_us / 1e6;
    const double sink_cores = ingest.rate * nginx_us / 1e6;
    say("CPU per reading: forwarding " + fixed(carebridged_us, 1) + " us (carebridged) + " + fixed(nginx_us, 1) +
        " us (nginx)" +
        (ingest.cpu_us > 0 ? "; ingest " + fixed(ingest.cpu_us, 1) + " us (broker + carebridged)" : std::string()) +
        "; at the ingest rate, one ECDSA P-256 signature per bundle (" + fixed(signing.ecdsa_us, 1) + " us) needs " +
        fixed(ecdsa_cores, 2) + " cores and nginx " + fixed(sink_cores, 2) + " cores, of " + fixed(cores, 0) +
        " online");
}

int run(const Options& options) {
    require_executable(options.nginx, "nginx");
    require_executable(options.wrk, "wrk");
    if (options.perf)
        require_executable("/usr/bin/perf", "linux-perf");
    cb::test::TempDir dir;
    const fs::path work = dir.path();
    const fs::path pki = work / "pki";

    const auto start = Clock::now();
    const auto made =
        cb::test::run_command({std::string(CAREBRIDGE_SOURCE_DIR) + "/scripts/test-pki", pki.string()}, 600s);
    if (made.status.code != 0)
        throw std::runtime_error("scripts/test-pki failed:\n" + made.output);
    errno = 0;
    const int niceness = ::getpriority(PRIO_PROCESS, 0);
    say("setup: PKI in " + fixed(seconds_since(start), 1) + " s; work directory " + work.string() + "; nice " +
        std::to_string(niceness) + "; " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs online");

    // In-process signing cost, and the bundles wrk will send.
    auto signer = cb::signing::open_pem_signer({pki / "facility/ec.key", pki / "facility/ec.crt"});
    if (!signer)
        throw std::runtime_error("cannot open the facility signer: " + signer.error().message());
    const SigningCost signing = measure_signing(**signer, options);
    write_bundles(**signer, options, work / "bundles.ndjson");

    Nginx nginx(options.nginx, work / "nginx", pki);
    say("nginx: 1 worker process, mutual TLS on 127.0.0.1:" + std::to_string(nginx.mutual_port()) +
        " (carebridged), TLS without client certificate on 127.0.0.1:" + std::to_string(nginx.plain_port()) +
        " (wrk), keep-alive, 201 to every POST /fhir, no access log");

    // carebridged then wrk, `rounds` times: wrk's own rate moves by a fifth
    // from one run to the next on this machine (bench/README.md, session 12),
    // so the ratio is the median of the rounds' ratios.
    std::vector<RoundResult> rounds;
    for (int round = 1; round <= options.rounds; ++round)
        rounds.push_back(run_round(options, work, pki, nginx, round));
    const auto carebridged_rates = each(rounds, &RoundResult::carebridged_rate);
    const auto wrk_rates = each(rounds, &RoundResult::wrk_rate);
    std::vector<double> ratios;
    for (const auto& round : rounds)
        ratios.push_back(round.ratio());
    const double carebridged_rate = cb::bench::median(carebridged_rates);
    if (options.rounds > 1)
        say("rounds: " + std::to_string(options.rounds) + "; carebridged -> nginx " +
            cb::bench::listed(carebridged_rates, 0) + " readings/s (median " + fixed(carebridged_rate, 0) +
            "); wrk -> nginx " + cb::bench::listed(wrk_rates, 0) + " requests/s (median " +
            fixed(cb::bench::median(wrk_rates), 0) + "); ratios " + cb::bench::listed(ratios, 2) +
            " (the last line is their median)");

    // The reference receiver.
    if (!options.skip_receiver) {
        const auto receiver = against_receiver(options, work, pki);
        const int expected = options.receiver_patients * options.receiver_per_patient;
        say("carebridged -> carebridge-receiver: " + std::to_string(expected) + " readings of " +
            std::to_string(options.receiver_patients) + " patients in " + fixed(receiver.delivery.seconds, 2) +
            " s = " + fixed(expected / receiver.delivery.seconds, 0) +
            " readings/s (receiver verifies each signature and token, stores in SQLite; pairing through carebridged "
            "--pair took " +
            fixed(receiver.pairing_seconds, 1) + " s, not counted); receiver holds " +
            std::to_string(receiver.observations) + " observations, " + std::to_string(receiver.valid_signatures) +
            " with valid signatures; outbox " + describe(receiver.delivery.outbox));
    }

    compare_with_ingest(options, rounds, signing);

    if (options.keep || options.perf) {
        const auto kept = fs::temp_directory_path() / ("carebridge-bench-forward-" + std::to_string(::getpid()));
        fs::rename(work, kept);
        say("kept: " + kept.string() + (options.perf ? " (perf report -i " + (kept / "perf.data").string() + ")" : ""));
    }
    say("ratio: " + fixed(cb::bench::median(ratios), 2));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const auto options = parse_options(argc, argv);
    try {
        return run(options);
    } catch (const std::exception& error) {
        std::cerr << "bench-forward-driver: " << error.what() << std::endl;
        return 1;
    }
}
