// carebridge-devsim: virtual health devices against a carebridge broker
// (usage: options.cpp; manual: docs/devsim.md).
#include <mosquitto.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "tools/devsim/options.hpp"
#include "tools/devsim/simulator.hpp"

namespace {

std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int) {
    stop_requested.store(true);
}

bool write_text(const std::filesystem::path& path, const std::string& text) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr)
        return false;
    const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
    return std::fclose(file) == 0 && written;
}

}  // namespace

int main(int argc, char** argv) {
    static_assert(std::atomic<bool>::is_always_lock_free);
    const std::vector<std::string> arguments(argv + 1, argv + argc);
    auto options = cb::devsim::parse_options(arguments);
    if (!options) {
        std::cerr << "carebridge-devsim: " << options.error().message() << "\n";
        return 2;
    }
    if (options->help) {
        std::cout << cb::devsim::usage_text();
        return 0;
    }
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    mosquitto_lib_init();
    const auto report = cb::devsim::run_simulation(*options, stop_requested);
    mosquitto_lib_cleanup();
    if (!report) {
        std::cerr << "carebridge-devsim: " << report.error().message() << "\n";
        return 2;
    }
    if (options->report && !write_text(*options->report, cb::devsim::report_json(*report))) {
        std::cerr << "carebridge-devsim: --report " << options->report->string() << ": cannot write\n";
        return 2;
    }
    if (report->ok)
        return 0;
    std::string waiting;
    std::size_t count = 0;
    for (const auto& device : report->devices) {
        if (device.finished)
            continue;
        if (++count <= 20)
            waiting += " " + device.device_id + " (acked through " + std::to_string(device.acked_through) +
                       ", last seq " + std::to_string(device.last_sequence) + ", " + std::to_string(device.unacked) +
                       " unacked)";
    }
    if (count > 20)
        waiting += " and " + std::to_string(count - 20) + " more";
    std::cerr << "carebridge-devsim: " << (report->interrupted ? "interrupted" : "timed out") << "; " << count
              << " device(s) still waiting:" << waiting << "\n";
    return 1;
}
