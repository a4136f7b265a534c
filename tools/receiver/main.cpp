// carebridge-receiver: the reference stand-in for the national health space
// (usage: options.cpp; manual and wire API: docs/receiver.md).
#include <openssl/rand.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "tools/receiver/options.hpp"
#include "tools/receiver/server.hpp"
#include "tools/receiver/service.hpp"

namespace {

using namespace cb::receiver;

constexpr int exit_runtime = 1;
constexpr int exit_usage = 2;

cb::Result<std::string> read_text(const std::filesystem::path& path, const char* option, std::size_t limit) {
    std::error_code error;
    const auto size = std::filesystem::file_size(path, error);
    if (error)
        return cb::fail(cb::ErrorKind::io, std::string(option) + " " + path.string() + ": " + error.message());
    if (size > limit)
        return cb::fail(cb::ErrorKind::limit_exceeded, std::string(option) + " " + path.string() + ": larger than " +
                                                           std::to_string(limit) + " bytes");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return cb::fail(cb::ErrorKind::io, std::string(option) + " " + path.string() + ": cannot be read");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> arguments(argv + 1, argv + argc);
    auto options = parse_options(arguments);
    if (!options) {
        std::cerr << "carebridge-receiver: " << options.error().message() << "\n";
        return exit_usage;
    }
    if (options->help) {
        std::cout << usage_text();
        return 0;
    }
    const LogLevel threshold = options->log_level;
    LogFunction log = [threshold](LogLevel level, const std::string& message) {
        if (level <= threshold)
            std::cerr << "carebridge-receiver: " << to_string(level) << ": " << message << std::endl;
    };
    const auto usage_failure = [](const cb::Error& error) {
        std::cerr << "carebridge-receiver: " << error.message() << "\n";
        return exit_usage;
    };

    ServiceConfig config;
    config.token_ttl = options->token_ttl;
    config.unsigned_bundles = options->unsigned_bundles;
    const AutoPair auto_pair = options->auto_pair ? AutoPair::yes : AutoPair::no;
    if (options->patients) {
        const auto text = read_text(*options->patients, "--patients", max_patients_file_size);
        if (!text)
            return usage_failure(text.error());
        auto directory = PatientDirectory::parse(*text, options->patients->string(), auto_pair);
        if (!directory)
            return usage_failure(directory.error().with_context("--patients"));
        config.patients = std::move(*directory);
    } else {
        config.patients = PatientDirectory::automatic();
    }
    const auto anchors_pem = read_text(options->facility_ca, "--facility-ca", std::size_t{1024} * 1024);
    if (!anchors_pem)
        return usage_failure(anchors_pem.error());
    auto anchors = cb::upstream::TrustAnchors::from_pem(*anchors_pem);
    if (!anchors)
        return usage_failure(anchors.error().with_context("--facility-ca " + options->facility_ca.string()));
    auto tls = make_tls_context(*options);
    if (!tls)
        return usage_failure(tls.error());
    auto store = Store::open(options->database, cb::storage::Durability::full);
    if (!store) {
        std::cerr << "carebridge-receiver: --db " << options->database.string() << ": " << store.error().message()
                  << "\n";
        return exit_runtime;
    }

    Service service(
        std::move(*store), std::move(*anchors), std::move(config), [] { return std::chrono::system_clock::now(); },
        [](std::span<std::uint8_t> bytes) {
            if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
                std::abort();  // no randomness: tokens would be guessable
        },
        log);

    boost::asio::io_context io;
    auto server = Server::listen(io, options->listen, std::move(*tls), service, log);
    if (!server) {
        std::cerr << "carebridge-receiver: " << server.error().message() << "\n";
        return server.error().kind() == cb::ErrorKind::invalid_input ? exit_usage : exit_runtime;
    }
    const auto endpoint = (*server)->local_endpoint();
    const auto address = endpoint.address();
    std::cout << "listening on " << (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) << ":"
              << endpoint.port() << std::endl;

    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& error, int signal_number) {
        if (error)
            return;
        log(LogLevel::info, std::string("stopping on ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
        (*server)->stop();
        io.stop();
    });
    ::signal(SIGPIPE, SIG_IGN);
    (*server)->start();
    log(LogLevel::info, "ready");
    try {
        io.run();
    } catch (const std::exception& exception) {
        log(LogLevel::error, std::string("stopped: ") + exception.what());
        return exit_runtime;
    }
    return 0;
}
