// carebridged: the gateway daemon. Exit codes: 0 clean stop, 1 runtime
// failure, 2 usage or configuration error.
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carebridge/version.hpp"
#include "daemon/catalog.hpp"
#include "daemon/config.hpp"
#include "daemon/daemon.hpp"
#include "daemon/log.hpp"
#include "daemon/service_manager.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

void print_usage(std::FILE* out) {
    std::fputs(
        "usage: carebridged [--config PATH]\n"
        "       carebridged --check-config PATH\n"
        "       carebridged --check-catalog PATH\n"
        "       carebridged --version | --help\n"
        "\n"
        "  --config PATH        run with this TOML configuration (default: embedded defaults,\n"
        "                       state in ./carebridge-state, broker on localhost)\n"
        "  --check-config PATH  validate PATH, print every problem with its line, exit 0 or 2\n"
        "  --check-catalog PATH validate a device catalog (devices.toml) the same way\n"
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

int run(const std::optional<std::string>& config_path) {
    cb::Logger logger;
    cb::Config config;
    if (config_path) {
        cb::ConfigLoad load = cb::load_config_file(*config_path);
        if (!load.ok()) {
            for (const auto& issue : load.issues)
                logger.error("config", issue.to_string());
            logger.error("daemon",
                         "not starting: " + std::to_string(load.issues.size()) + " problem(s) in " + *config_path);
            return exit_usage;
        }
        config = std::move(*load.config);
    }

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
        const bool takes_value = arg == "--config" || arg == "--check-config" || arg == "--check-catalog";
        std::fprintf(stderr, "carebridged: %s '%s'\n", takes_value ? "missing value for" : "unknown argument", argv[i]);
        print_usage(stderr);
        return exit_usage;
    }
    try {
        return run(config_path);
    } catch (const std::exception& error) {
        // Exceptions stop here, at the daemon's edge.
        cb::Logger logger;
        logger.error("daemon", std::string("fatal: ") + error.what());
        return exit_failure;
    }
}
