// The command line of carebridge-devsim (usage_text() is its --help; the
// manual is docs/devsim.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "protocol/devices/topics.hpp"
#include "protocol/result.hpp"
#include "tools/devsim/payload.hpp"

namespace cb::devsim {

struct DeviceSpec {
    devices::DeviceId id;
    DeviceModel model;
};

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8883;
    std::filesystem::path pki_dir;  // devices/{id}.crt and .key (scripts/test-pki layout)
    std::filesystem::path cafile;   // default: pki_dir/ca.crt
    std::vector<DeviceSpec> devices;
    std::uint64_t readings = 10;  // new readings per device in this run
    double rate = 1.0;            // readings/s per device; 0 = as fast as possible
    std::uint64_t seed = 1;
    std::optional<std::filesystem::path> state_dir;
    Misbehaviour misbehave = Misbehaviour::none;
    std::uint64_t misbehave_every = 10;  // the misbehaviour hits seq s when s % misbehave_every == 0
    std::optional<std::filesystem::path> report;
    bool until_acked = false;
    std::uint64_t timeout_s = 300;
    std::uint64_t resend_after_s = 30;
    std::uint64_t threads = 4;
    std::uint64_t keepalive_s = 60;
    bool help = false;
};

// The --help text.
std::string usage_text();

// Parses argv[1..] (without the program name). Fails with
// ErrorKind::invalid_input naming the option: `--rate: "x" is not a number >= 0`.
Result<Options> parse_options(const std::vector<std::string>& arguments);

}  // namespace cb::devsim
