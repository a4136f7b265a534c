#include "tools/devsim/options.hpp"

#include <charconv>
#include <cmath>
#include <set>

namespace cb::devsim {

namespace {

Error usage_error(const std::string& message) {
    return fail(ErrorKind::invalid_input, message);
}

Result<std::uint64_t> parse_count(const std::string& option, const std::string& text, std::uint64_t lo,
                                  std::uint64_t hi) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [last, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc() || last != end || value < lo || value > hi)
        return usage_error(option + ": \"" + text.substr(0, 64) + "\" is not an integer " + std::to_string(lo) + ".." +
                           std::to_string(hi));
    return value;
}

Result<double> parse_rate(const std::string& option, const std::string& text) {
    double value = 0;
    const auto* end = text.data() + text.size();
    const auto [last, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc() || last != end || !std::isfinite(value) || value < 0 || value > 1e6)
        return usage_error(option + ": \"" + text.substr(0, 64) + "\" is not a number 0..1000000");
    return value;
}

Result<DeviceModel> parse_model(const std::string& option, const std::string& text) {
    if (const auto model = device_model_from_string(text))
        return *model;
    std::string known;
    for (std::size_t i = 0; i < device_model_count; ++i)
        known += std::string(i == 0 ? "" : ", ") + to_string(static_cast<DeviceModel>(i));
    return usage_error(option + ": \"" + text.substr(0, 64) + "\" is not a simulator model (" + known + ")");
}

Result<devices::DeviceId> parse_id(const std::string& option, const std::string& text) {
    auto id = devices::DeviceId::parse(text);
    if (!id)
        return id.error().with_context(option);
    if (id->str() == "carebridged")
        return usage_error(option + ": \"carebridged\" is the gateway's identity, not a device");
    return std::move(id).value();
}

}  // namespace

std::string usage_text() {
    return R"(usage: carebridge-devsim --pki-dir DIR (--device ID:MODEL ... | --devices N --type MODEL) [options]

Runs virtual health devices against a carebridge MQTT broker (TLS, one client
certificate per device), the device side of docs/device-protocol.md.

Broker and identities:
  --host HOST             broker address (default 127.0.0.1)
  --port PORT             broker TLS port (default 8883)
  --cafile FILE           CA of the broker's certificate (default PKI_DIR/ca.crt)
  --pki-dir DIR           device certificates at DIR/devices/ID.crt and ID.key
                          (the layout of scripts/test-pki)
Devices:
  --device ID:MODEL       one device (repeatable)
  --devices N --type MODEL [--prefix P]
                          N devices P1 .. PN (prefix default "dev-")
                          MODEL: sim-bp-1 sim-scale-1 sim-oxi-1 sim-gluco-1
                          sim-thermo-1 sim-band-1 (config/devices.toml)
Readings:
  --readings K            new readings per device in this run (default 10)
  --rate R                readings/s per device, 0 = as fast as possible (default 1)
  --seed S                seed of the value generator (default 1)
  --state-dir DIR         keep each device's next seq and unacknowledged readings
                          in DIR/ID.json, so a restart resends them
  --resend-after-s S      resend unacknowledged readings when no ack advanced for
                          S seconds (default 30)
  --misbehave MODE        bad-json wrong-unit out-of-range replay out-of-order
                          other-id oversized flood unknown-field (docs/devsim.md)
  --misbehave-every N     the misbehaviour hits readings whose seq is a multiple
                          of N (default 10); flood applies to the whole run
Ending:
  --until-acked           exit 0 only once every reading is acknowledged
  --timeout-s T           give up after T seconds, exit 1 naming the devices still
                          waiting (default 300)
  --report FILE           write a JSON summary at exit
  --threads T             network threads, each serving a share of the devices
                          (default 4)
  --keepalive-s S         MQTT keepalive (default 60)
  --help                  this text

Exit status: 0 done, 1 timeout or interrupted (SIGINT/SIGTERM), 2 bad usage or
unreadable files.
)";
}

Result<Options> parse_options(const std::vector<std::string>& arguments) {
    Options options;
    std::optional<std::uint64_t> count;
    std::optional<DeviceModel> bulk_model;
    std::string prefix = "dev-";
    bool cafile_given = false;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        const std::string& option = arguments[i];
        if (option == "--help" || option == "-h") {
            options.help = true;
            return options;
        }
        if (option == "--until-acked") {
            options.until_acked = true;
            continue;
        }
        if (i + 1 >= arguments.size())
            return usage_error(option.starts_with("--") ? option + ": missing value"
                                                        : "unexpected argument \"" + option.substr(0, 64) + "\"");
        const std::string& value = arguments[++i];
        if (option == "--host") {
            options.host = value;
        } else if (option == "--port") {
            options.port = static_cast<std::uint16_t>(CB_TRY(parse_count(option, value, 1, 65535)));
        } else if (option == "--cafile") {
            options.cafile = value;
            cafile_given = true;
        } else if (option == "--pki-dir") {
            options.pki_dir = value;
        } else if (option == "--device") {
            const auto colon = value.rfind(':');
            if (colon == std::string::npos)
                return usage_error("--device: \"" + value.substr(0, 64) + "\" is not ID:MODEL");
            auto id = CB_TRY(parse_id(option, value.substr(0, colon)));
            const auto model = CB_TRY(parse_model(option, value.substr(colon + 1)));
            options.devices.push_back({std::move(id), model});
        } else if (option == "--devices") {
            count = CB_TRY(parse_count(option, value, 1, 100'000));
        } else if (option == "--type") {
            bulk_model = CB_TRY(parse_model(option, value));
        } else if (option == "--prefix") {
            prefix = value;
        } else if (option == "--readings") {
            options.readings = CB_TRY(parse_count(option, value, 0, 100'000'000));
        } else if (option == "--rate") {
            options.rate = CB_TRY(parse_rate(option, value));
        } else if (option == "--seed") {
            options.seed = CB_TRY(parse_count(option, value, 0, UINT64_MAX));
        } else if (option == "--state-dir") {
            options.state_dir = value;
        } else if (option == "--misbehave") {
            const auto mode = misbehaviour_from_string(value);
            if (!mode)
                return usage_error("--misbehave: \"" + value.substr(0, 64) + "\" is not a mode (see --help)");
            options.misbehave = *mode;
        } else if (option == "--misbehave-every") {
            options.misbehave_every = CB_TRY(parse_count(option, value, 1, UINT64_MAX));
        } else if (option == "--report") {
            options.report = value;
        } else if (option == "--timeout-s") {
            options.timeout_s = CB_TRY(parse_count(option, value, 1, 31'536'000));
        } else if (option == "--resend-after-s") {
            options.resend_after_s = CB_TRY(parse_count(option, value, 1, 31'536'000));
        } else if (option == "--threads") {
            options.threads = CB_TRY(parse_count(option, value, 1, 256));
        } else if (option == "--keepalive-s") {
            options.keepalive_s = CB_TRY(parse_count(option, value, 5, 65535));
        } else {
            return usage_error("unknown option \"" + option.substr(0, 64) + "\" (see --help)");
        }
    }
    if (count.has_value() != bulk_model.has_value())
        return usage_error("--devices N and --type MODEL go together");
    if (count) {
        for (std::uint64_t n = 1; n <= *count; ++n)
            options.devices.push_back({CB_TRY(parse_id("--prefix", prefix + std::to_string(n))), *bulk_model});
    }
    if (options.devices.empty())
        return usage_error("no device: give --device ID:MODEL or --devices N --type MODEL");
    std::set<std::string> seen;
    for (const auto& device : options.devices)
        if (!seen.insert(device.id.str()).second)
            return usage_error("device \"" + device.id.str() + "\" is given twice (one connection per certificate)");
    if (options.pki_dir.empty())
        return usage_error("--pki-dir is required (device certificates)");
    if (!cafile_given)
        options.cafile = options.pki_dir / "ca.crt";
    return options;
}

}  // namespace cb::devsim
