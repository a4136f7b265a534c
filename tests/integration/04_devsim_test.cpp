// 04 devsim: carebridge-devsim, the virtual devices, against the real broker
// of tests/support/broker (shipped configuration, TLS, one certificate per
// device): readings reach the gateway's subscriber and pass Reading::parse,
// acknowledgements end a --until-acked run, a restarted simulator resends what
// was never acknowledged, and misbehaving devices are contained by the broker
// (ACL) and refused by the parser.
//
// No sleeps: the simulator runs to completion (it exits once the broker has
// confirmed every publish), or in the background while the test waits for its
// readings at a gateway-certificate subscriber, whose subscription is awaited
// in the broker's log before anything is published.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/devices/reading.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/temp_dir.hpp"

using cb::test::Broker;
using cb::test::Retain;
using cb::test::TempDir;

namespace {

const std::string meas_filter = "cb/v1/dev/+/meas";
constexpr std::chrono::milliseconds devsim_limit{120'000};

std::string meas(const std::string& device) {
    return "cb/v1/dev/" + device + "/meas";
}
std::string ack(const std::string& device) {
    return "cb/v1/dev/" + device + "/ack";
}

// The simulator's command line: broker, PKI, then `extra`.
std::vector<std::string> devsim_command(const Broker& broker, const std::vector<std::string>& extra) {
    std::vector<std::string> argv{DEVSIM_PATH,
                                  "--host",
                                  "127.0.0.1",
                                  "--port",
                                  std::to_string(broker.port()),
                                  "--pki-dir",
                                  broker.pki().directory().string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

struct Message {
    std::string device;
    std::string payload;
};

// mosquitto_sub -v output: one "topic payload" line per message, on meas topics.
std::vector<Message> messages(const std::string& output) {
    std::vector<Message> result;
    std::istringstream lines(output);
    std::string line;
    while (std::getline(lines, line)) {
        const auto space = line.find(' ');
        REQUIRE(space != std::string::npos);
        const auto device = cb::devices::parse_measurement_topic(line.substr(0, space));
        REQUIRE(device);
        result.push_back({device->str(), line.substr(space + 1)});
    }
    return result;
}

cb::devices::Microseconds now() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

cb::devices::Validated<cb::devices::Reading> parse_reading(const Message& message) {
    return cb::devices::Reading::parse(cb::devices::DeviceId::parse(message.device).value(), message.payload, now());
}

// The --report entry of `device`.
boost::json::object device_report(const std::filesystem::path& report, const std::string& device) {
    const auto root = boost::json::parse(cb::test::read_file(report));
    for (const auto& entry : root.at("devices").as_array())
        if (entry.at("device_id").as_string() == device)
            return entry.as_object();
    FAIL("no report for " << device << " in " << cb::test::read_file(report));
    return {};
}

std::int64_t number(const boost::json::object& report, const std::string& name) {
    return report.at(name).to_number<std::int64_t>();
}

}  // namespace

TEST_CASE("04 devsim: devices of three types publish readings the gateway can parse") {
    TempDir dir;
    const std::vector<std::string> devices{"cuff-1", "oxi-1", "thermo-1"};
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path(), .devices = devices});
    constexpr int readings = 5;

    auto gateway = broker.start_subscriber(broker.pki().gateway(),
                                           {"-q", "1", "-t", meas_filter, "-C", std::to_string(3 * readings)});
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter));

    const auto report = dir / "report.json";
    const auto run = cb::test::run_command(
        devsim_command(broker, {"--device", "cuff-1:sim-bp-1", "--device", "oxi-1:sim-oxi-1", "--device",
                                "thermo-1:sim-thermo-1", "--readings", std::to_string(readings), "--rate", "0",
                                "--seed", "4", "--report", report.string()}),
        devsim_limit);
    INFO("devsim: " << run.output << "\nbroker: " << broker.log());
    REQUIRE(run.status.exited);
    REQUIRE(run.status.code == 0);

    const auto status = gateway->wait_for_exit();
    INFO("subscriber: " << gateway->output() << gateway->errors());
    REQUIRE(status);
    const auto received = messages(gateway->output());
    REQUIRE(received.size() == 3 * readings);

    std::map<std::string, std::vector<std::uint64_t>> sequences;
    std::map<std::string, std::set<cb::devices::MeasurementType>> types;
    for (const auto& message : received) {
        INFO(message.device << ": " << message.payload);
        const auto reading = parse_reading(message);
        if (!reading)
            FAIL(reading.error().message);
        sequences[message.device].push_back(reading->sequence());
        types[message.device].insert(reading->type());
    }
    // Each device: 1..K, in order, nothing else.
    for (const auto& device : devices) {
        CHECK(sequences[device] == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
        const auto entry = device_report(report, device);
        CHECK(number(entry, "published") == readings);
        CHECK(number(entry, "resent") == 0);
        CHECK(number(entry, "last_seq") == readings);
        CHECK(entry.at("finished").as_bool());
    }
    CHECK(types["thermo-1"] == std::set{cb::devices::MeasurementType::body_temperature});

    // The device said goodbye: its retained status is "offline".
    const auto device_status = broker.subscribe(broker.pki().gateway(), {"-t", "cb/v1/dev/oxi-1/status", "-C", "1"});
    CHECK(device_status.output == "offline\n");
    CHECK_THAT(broker.log(), Catch::Contains(" as cuff-1 (p2, c0, k60, u'cuff-1')"));
}

TEST_CASE("04 devsim: --until-acked waits for the gateway's ack and ignores a malformed one") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path(), .devices = {"gluco-1"}});
    const auto gateway = broker.pki().gateway();

    auto subscriber = broker.start_subscriber(gateway, {"-q", "1", "-t", meas("gluco-1"), "-C", "3"});
    REQUIRE(broker.wait_for_subscription("carebridged", meas("gluco-1")));

    const auto report = dir / "report.json";
    cb::test::Process devsim(
        devsim_command(broker, {"--device", "gluco-1:sim-gluco-1", "--readings", "3", "--rate", "0", "--until-acked",
                                "--timeout-s", "120", "--report", report.string()}),
        dir / "devsim.out", dir / "devsim.err");
    // All three readings are at the gateway: the simulator subscribed to its
    // ack topic before publishing them, so the acks below reach it live.
    REQUIRE(subscriber->wait_for_exit());
    REQUIRE(messages(subscriber->output()).size() == 3);
    REQUIRE(devsim.running());

    CHECK(broker.publish(gateway, ack("gluco-1"), R"({"seq":"3"})", 1, Retain::Yes).status.code == 0);
    CHECK(broker.publish(gateway, ack("gluco-1"), R"({"seq":3})", 1, Retain::Yes).status.code == 0);

    const auto status = devsim.wait_for_exit(devsim_limit);
    INFO("devsim: " << cb::test::read_file(dir / "devsim.err") << "\nbroker: " << broker.log());
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
    const auto entry = device_report(report, "gluco-1");
    CHECK(number(entry, "acked_through") == 3);
    CHECK(number(entry, "unacked") == 0);
    CHECK(number(entry, "bad_acks") == 1);
    CHECK_THAT(cb::test::read_file(dir / "devsim.err"), Catch::Contains("gluco-1: ignoring an ack: ack payload"));
}

TEST_CASE("04 devsim: --until-acked without an ack times out naming the device") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path(), .devices = {"gluco-2"}});

    const auto run = cb::test::run_command(devsim_command(broker, {"--device", "gluco-2:sim-gluco-1", "--readings", "2",
                                                                   "--rate", "0", "--until-acked", "--timeout-s", "2"}),
                                           devsim_limit);
    INFO(run.output);
    CHECK(run.status.exited);
    CHECK(run.status.code == 1);
    CHECK_THAT(
        run.output,
        Catch::Contains("timed out; 1 device(s) still waiting: gluco-2 (acked through 0, last seq 2, 2 unacked)"));
}

TEST_CASE("04 devsim: a restarted simulator resends what was never acknowledged") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path(), .devices = {"band-1"}});
    const auto state_dir = dir / "state";

    auto gateway = broker.start_subscriber(broker.pki().gateway(), {"-q", "1", "-t", meas_filter, "-C", "8"});
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter));

    const auto first_report = dir / "first.json";
    const auto first = cb::test::run_command(
        devsim_command(broker, {"--device", "band-1:sim-band-1", "--readings", "4", "--rate", "0", "--state-dir",
                                state_dir.string(), "--report", first_report.string()}),
        devsim_limit);
    INFO("first run: " << first.output);
    REQUIRE(first.status.code == 0);
    CHECK(number(device_report(first_report, "band-1"), "published") == 4);
    CHECK(number(device_report(first_report, "band-1"), "unacked") == 4);
    REQUIRE(std::filesystem::exists(state_dir / "band-1.json"));

    // No new readings: only what the state file holds.
    const auto second_report = dir / "second.json";
    const auto second =
        cb::test::run_command(devsim_command(broker, {"--device", "band-1:sim-band-1", "--readings", "0", "--state-dir",
                                                      state_dir.string(), "--report", second_report.string()}),
                              devsim_limit);
    INFO("second run: " << second.output);
    REQUIRE(second.status.code == 0);
    const auto entry = device_report(second_report, "band-1");
    CHECK(number(entry, "published") == 0);
    CHECK(number(entry, "resent") == 4);
    CHECK(number(entry, "last_seq") == 4);

    const auto status = gateway->wait_for_exit();
    INFO("subscriber: " << gateway->output() << gateway->errors() << "\nbroker: " << broker.log());
    REQUIRE(status);
    const auto received = messages(gateway->output());
    REQUIRE(received.size() == 8);
    for (std::size_t i = 0; i < 4; ++i) {
        const auto reading = parse_reading(received[i]);
        REQUIRE(reading);
        CHECK(reading->sequence() == i + 1);
        // The same (device, seq), byte for byte.
        CHECK(received[i + 4].device == "band-1");
        CHECK(received[i + 4].payload == received[i].payload);
    }
}

TEST_CASE("04 devsim: other-id readings are dropped by the broker or refused by the parser") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path(), .devices = {"cuff-2", "scale-2"}});

    auto gateway = broker.start_subscriber(broker.pki().gateway(), {"-q", "1", "-t", meas_filter, "-C", "9"});
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter));

    const auto report = dir / "report.json";
    const auto run =
        cb::test::run_command(devsim_command(broker, {"--device", "cuff-2:sim-bp-1", "--device", "scale-2:sim-scale-1",
                                                      "--readings", "4", "--rate", "0", "--misbehave", "other-id",
                                                      "--misbehave-every", "2", "--report", report.string()}),
                              devsim_limit);
    INFO("devsim: " << run.output);
    REQUIRE(run.status.code == 0);
    // Had a copy on the other device's topic passed the ACL, it would come before this.
    REQUIRE(broker.publish(broker.pki().device("cuff-2"), meas("cuff-2"), "sentinel").status.code == 0);

    const auto status = gateway->wait_for_exit();
    INFO("subscriber: " << gateway->output() << gateway->errors());
    REQUIRE(status);
    const auto received = messages(gateway->output());
    REQUIRE(received.size() == 9);
    CHECK(received.back().payload == "sentinel");
    std::map<std::string, int> accepted;
    std::map<std::string, int> mismatched;
    for (std::size_t i = 0; i + 1 < received.size(); ++i) {
        const auto reading = parse_reading(received[i]);
        if (reading)
            ++accepted[received[i].device];
        else if (reading.error().reason == cb::devices::RejectReason::device_id_mismatch)
            ++mismatched[received[i].device];
    }
    CHECK(accepted == std::map<std::string, int>{{"cuff-2", 2}, {"scale-2", 2}});
    CHECK(mismatched == std::map<std::string, int>{{"cuff-2", 2}, {"scale-2", 2}});
    CHECK(device_report(report, "cuff-2").at("misbehaviour").at("other-id").to_number<int>() == 2);
}
