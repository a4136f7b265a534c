// carebridged: the gateway daemon. Exit codes: 0 clean stop, 1 runtime
// failure, 2 usage or configuration error.
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carebridge/version.hpp"
#include "daemon/catalog.hpp"
#include "daemon/config.hpp"
#include "daemon/daemon.hpp"
#include "daemon/log.hpp"
#include "daemon/pairing.hpp"
#include "daemon/service_manager.hpp"
#include "daemon/upstream_service.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

void print_usage(std::FILE* out) {
    std::fputs(
        "usage: carebridged [--config PATH]\n"
        "       carebridged --check-config PATH\n"
        "       carebridged --check-catalog PATH\n"
        "       carebridged --config PATH --pair PATIENT --nir NIR --code CODE\n"
        "       carebridged --config PATH --outbox\n"
        "       carebridged --version | --help\n"
        "\n"
        "  --config PATH        run with this TOML configuration (default: embedded defaults,\n"
        "                       state in ./carebridge-state, broker on localhost)\n"
        "  --check-config PATH  validate PATH, print every problem with its line, exit 0 or 2\n"
        "  --check-catalog PATH validate a device catalog (devices.toml) the same way\n"
        "  --pair PATIENT       pair the local patient reference PATIENT with the national space\n"
        "                       ([upstream]), with the patient's NIR and one-time code; their\n"
        "                       readings held \"not-paired\" are then forwarded; NIR or CODE given\n"
        "                       as - is read from standard input, one line each, the NIR first\n"
        "                       (kept out of the process list and the shell history)\n"
        "  --outbox             print the outbox to the national space, by state and reason\n"
        "  --version            print the version and exit\n"
        "\n"
        "Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT stop gracefully.\n",
        out);
}

// Prints every issue, then "PATH: OK" or "PATH: N problem(s)"; returns the exit code.
int report_check(const std::string& path, const std::vector<cb::ConfigIssue>& issues) {
    for (const auto& issue : issues)
        std::fprintf(stderr, "%s\n", issue.to_string().c_str());
    if (!issues.empty()) {
        std::fprintf(stderr, "%s: %zu problem(s)\n", path.c_str(), issues.size());
        return exit_usage;
    }
    std::printf("%s: OK\n", path.c_str());
    return exit_ok;
}

int check_config(const std::string& path) {
    return report_check(path, cb::load_config_file(path).issues);
}

int check_catalog(const std::string& path) {
    return report_check(path, cb::load_catalog_file(path).issues);
}

std::optional<cb::Config> load_or_report(cb::Logger& logger, const std::optional<std::string>& config_path) {
    cb::Config config;
    if (config_path) {
        cb::ConfigLoad load = cb::load_config_file(*config_path);
        if (!load.ok()) {
            for (const auto& issue : load.issues)
                logger.error("config", issue.to_string());
            logger.error("daemon",
                         "not starting: " + std::to_string(load.issues.size()) + " problem(s) in " + *config_path);
            return std::nullopt;
        }
        config = std::move(*load.config);
    }
    return config;
}

int exit_for(const cb::Error& error) {
    return error.kind() == cb::ErrorKind::invalid_input ? exit_usage : exit_failure;
}

// --outbox: what the forwarder has done and has left, from the store.
int print_outbox(const std::string& config_path) {
    cb::Logger logger;
    const auto config = load_or_report(logger, config_path);
    if (!config)
        return exit_usage;
    const auto database = config->daemon.state_dir / "readings.db";
    auto outbox = cb::storage::Outbox::open(database);
    auto counts = outbox ? outbox->counts() : std::move(outbox).error();
    if (!counts) {
        logger.error("outbox", counts.error().message());
        return exit_for(counts.error());
    }
    for (const char* state : {"queued", "in_flight", "delivered", "refused", "held"})
        std::printf("%-10s %lld\n", state, static_cast<long long>((*counts)[state]));
    for (const auto& [key, count] : *counts)
        if (key.find(": ") != std::string::npos)
            std::printf("  %s: %lld\n", key.c_str(), static_cast<long long>(count));
    return exit_ok;
}

// --pair: one request to the national space, saved in the store.
int pair(const std::string& config_path, const cb::PairingRequest& request) {
    cb::Logger logger;
    const auto config = load_or_report(logger, config_path);
    if (!config)
        return exit_usage;
    cb::PairingRequest filled = request;
    auto checked = cb::read_pairing_fields(std::cin, filled);
    if (checked)
        checked = cb::check_pairing_request(filled);
    if (!checked) {
        logger.error("pairing", checked.error().message());
        return exit_usage;
    }
    if (config->upstream.host.empty()) {
        logger.error("pairing", config_path + ": upstream.host is not set");
        return exit_usage;
    }
    const auto database = config->daemon.state_dir / "readings.db";
    boost::asio::io_context io(1);
    auto client = cb::make_upstream_client(io, config->upstream);
    if (!client) {
        logger.error("pairing", client.error().message());
        return exit_for(client.error());
    }
    // Pairing may come before the daemon's first start: the state directory
    // and the store are made the way the start makes them.
    auto prepared = cb::prepare_state_directory(config->daemon.state_dir);
    auto outbox = prepared ? cb::storage::Outbox::open(database) : std::move(prepared).error();
    if (!outbox) {
        logger.error("pairing", outbox.error().message());
        return exit_for(outbox.error());
    }
    auto id_pe = cb::pair_patient(io, **client, *outbox, filled);
    if (!id_pe) {
        logger.error("pairing", "patient " + cb::patient_for_log(request.patient) + ": " + id_pe.error().message());
        return exit_for(id_pe.error());
    }
    std::printf("paired %s (idPe %s); held readings queued again\n", request.patient.c_str(), id_pe->c_str());
    return exit_ok;
}

int run(const std::optional<std::string>& config_path) {
    cb::Logger logger;
    auto loaded = load_or_report(logger, config_path);
    if (!loaded)
        return exit_usage;
    cb::Config config = std::move(*loaded);

    boost::asio::io_context io(1);
    cb::SystemdServiceManager manager;
    cb::Daemon daemon(io, logger, manager, std::move(config), config_path);
    if (auto started = daemon.start(); !started) {
        logger.error("daemon", "not starting: " + started.error().message());
        // A configuration problem (e.g. the device catalog) is not cured by a restart.
        return started.error().kind() == cb::ErrorKind::invalid_input ? exit_usage : exit_failure;
    }
    io.run();
    return daemon.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    std::optional<std::string> config_path;
    std::optional<cb::PairingRequest> pairing;
    bool outbox = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--version") {
            std::printf("carebridged %s\n", cb::version_string);
            return exit_ok;
        }
        if (arg == "--help" || arg == "-h") {
            print_usage(stdout);
            return exit_ok;
        }
        if (arg == "--check-config" && has_value)
            return check_config(argv[i + 1]);
        if (arg == "--check-catalog" && has_value)
            return check_catalog(argv[i + 1]);
        if (arg == "--config" && has_value) {
            config_path = argv[++i];
            continue;
        }
        if ((arg == "--pair" || arg == "--nir" || arg == "--code") && has_value) {
            if (!pairing)
                pairing.emplace();
            (arg == "--pair" ? pairing->patient : arg == "--nir" ? pairing->nir : pairing->code) = argv[++i];
            continue;
        }
        if (arg == "--outbox") {
            outbox = true;
            continue;
        }
        const bool takes_value = arg == "--config" || arg == "--check-config" || arg == "--check-catalog" ||
                                 arg == "--pair" || arg == "--nir" || arg == "--code";
        std::fprintf(stderr, "carebridged: %s '%s'\n", takes_value ? "missing value for" : "unknown argument", argv[i]);
        print_usage(stderr);
        return exit_usage;
    }
    if ((pairing || outbox) && !config_path) {
        std::fprintf(stderr, "carebridged: --pair and --outbox need --config PATH\n");
        return exit_usage;
    }
    try {
        if (pairing)
            return pair(*config_path, *pairing);
        if (outbox)
            return print_outbox(*config_path);
        return run(config_path);
    } catch (const std::exception& error) {
        // Exceptions stop here, at the daemon's edge.
        cb::Logger logger;
        logger.error("daemon", std::string("fatal: ") + error.what());
        return exit_failure;
    }
}
