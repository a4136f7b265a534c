// 03 broker: the shipped Mosquitto configuration (config/mosquitto/) on a
// real broker — TLS with client certificates from the carebridge CA only, the
// certificate CN as identity, the ACL that keeps each device to its own
// topics, and QoS 1 messages kept for an offline persistent session.
//
// No sleeps: a subscriber is known to be in place when the broker logs its
// subscription; absence of a message is shown by a later sentinel from the
// same path arriving first (the broker handles packets one at a time, and a
// finished mosquitto_pub -q 1 has had its PUBACK, i.e. was handled).
#include <catch2/catch.hpp>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>

#include "tests/support/broker.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using cb::test::Broker;
using cb::test::Retain;
using cb::test::TempDir;
using cb::test::TestPki;

namespace {

const std::string meas_filter = "cb/v1/dev/+/meas";

std::string meas(const std::string& device) {
    return "cb/v1/dev/" + device + "/meas";
}
std::string ack(const std::string& device) {
    return "cb/v1/dev/" + device + "/ack";
}

// config/devices.toml's models, then device-a and device-b enrolled at home
// with the given certificate_sha256 values.
std::string pinned_catalog(const std::string& pin_a, const std::string& pin_b) {
    std::string text = cb::test::read_file(std::filesystem::path(CAREBRIDGE_SOURCE_DIR) / "config/devices.toml");
    text = text.substr(0, text.find("[[device]]"));
    for (const auto& [id, pin] : {std::pair{"device-a", pin_a}, std::pair{"device-b", pin_b}})
        text += std::string("[[device]]\nid = \"") + id + "\"\nmodel = \"sim-bp-1\"\ncertificate_sha256 = \"" + pin +
                "\"\nbinding = \"home\"\npatient = \"patient-1\"\n";
    return text;
}

std::string openssl_fingerprint(const cb::test::ClientIdentity& who) {
    return cb::test::certificate_fingerprint(who.certificate);
}

// Replaces the file the way an operator should: written beside, renamed over.
void replace_file(const TempDir& dir, const std::string& name, const std::string& text) {
    dir.write(name + ".new", text);
    std::filesystem::rename(dir / (name + ".new"), dir / name);
}

}  // namespace

TEST_CASE("03 broker: a device's reading reaches the gateway's subscriber") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto device = broker.pki().device("device-a");

    auto gateway = broker.start_subscriber(broker.pki().gateway(), {"-q", "1", "-t", meas_filter, "-C", "1"});
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter));
    const auto published = broker.publish(device, meas("device-a"), R"({"seq":1,"sys":120})");
    INFO(published.output);
    REQUIRE(published.status.code == 0);

    const auto status = gateway->wait_for_exit();
    INFO("subscriber: " << gateway->output() << gateway->errors() << "\nbroker: " << broker.log());
    REQUIRE(status);
    CHECK(status->code == 0);
    CHECK(gateway->output() == meas("device-a") + R"( {"seq":1,"sys":120})" + "\n");
    CHECK_THAT(broker.log(), Catch::Contains("New client connected from 127.0.0.1:"));
    CHECK_THAT(broker.log(), Catch::Contains(" as device-a (p2, c1, k60, u'device-a')"));
}

TEST_CASE("03 broker: a client without a certificate is refused") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});

    const auto result = broker.publish(TestPki::no_certificate(), meas("device-a"), "anonymous");
    INFO(result.output);
    CHECK(result.status.exited);
    CHECK(result.status.code != 0);
    CHECK(broker.wait_for_log("peer did not return a certificate"));
    CHECK(broker.wait_for_log("Client <unknown> disconnected: Protocol error."));
    CHECK_THAT(broker.log(), !Catch::Contains("New client connected"));
}

TEST_CASE("03 broker: a certificate from another CA is refused, even with the gateway's CN") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto rogue = broker.pki().rogue();
    REQUIRE(rogue.name == "carebridged");

    const auto result = broker.publish(rogue, ack("device-a"), R"({"seq":999})", 1, Retain::Yes);
    INFO(result.output);
    CHECK(result.status.exited);
    CHECK(result.status.code != 0);
    CHECK(broker.wait_for_log("certificate verify failed"));
    CHECK(broker.wait_for_log("Client <unknown> disconnected: Protocol error."));
    CHECK_THAT(broker.log(), !Catch::Contains("New client connected"));
}

TEST_CASE("03 broker: a device certificate the CA revoked is refused at the handshake") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto revoked = broker.pki().revoked();
    // Chained to the test CA like any device: only the CRL tells it apart.
    const auto chained = cb::test::run_command({"/usr/bin/openssl", "verify", "-CAfile",
                                                broker.pki().ca_certificate().string(), revoked.certificate.string()});
    INFO(chained.output);
    REQUIRE(chained.status.code == 0);

    const auto result = broker.publish(revoked, meas("revoked-1"), R"({"seq":1})");
    INFO(result.output);
    CHECK(result.status.exited);
    CHECK(result.status.code != 0);
    const bool refused = broker.wait_for_log("certificate verify failed");
    INFO("broker: " << broker.log());
    CHECK(refused);
    CHECK_THAT(broker.log(), !Catch::Contains("New client connected"));
    // The same CA's other certificates still get in.
    const auto device = broker.publish(broker.pki().device("device-a"), meas("device-a"), R"({"seq":1})");
    INFO(device.output);
    CHECK(device.status.code == 0);
}

TEST_CASE("03 broker: a device cannot publish under another device's id") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto device_a = broker.pki().device("device-a");

    auto gateway = broker.start_subscriber(broker.pki().gateway(), {"-q", "1", "-t", meas_filter, "-C", "1"});
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter));

    // MQTT 3.1.1 has no way to say "denied": the broker acks and drops it.
    const auto forged = broker.publish(device_a, meas("device-b"), "forged");
    INFO(forged.output);
    CHECK(forged.status.code == 0);
    // MQTT 5 does: the PUBACK carries "not authorized" (mosquitto_pub still exits 0).
    const auto forged_v5 = broker.publish(device_a, meas("device-b"), "forged-v5", 1, Retain::No, {"-V", "5"});
    CHECK_THAT(forged_v5.output, Catch::Contains("Not authorized"));
    // Asking for device-b's client id does not help: the client id is the CN.
    const auto forged_id = broker.publish(device_a, meas("device-b"), "forged-id", 1, Retain::No, {"-i", "device-b"});
    CHECK(forged_id.status.code == 0);
    // The sentinel comes after all of them; if any had passed, it would be first.
    REQUIRE(broker.publish(device_a, meas("device-a"), "sentinel").status.code == 0);

    const auto status = gateway->wait_for_exit();
    INFO("subscriber: " << gateway->output() << gateway->errors() << "\nbroker: " << broker.log());
    REQUIRE(status);
    CHECK(gateway->output() == meas("device-a") + " sentinel\n");
    CHECK_THAT(broker.log(), !Catch::Contains(" as device-b "));
}

TEST_CASE("03 broker: a device cannot forge the gateway's acknowledgement or status") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto device_a = broker.pki().device("device-a");
    const auto device_b = broker.pki().device("device-b");

    auto subscriber_b = broker.start_subscriber(device_b, {"-q", "1", "-t", ack("device-b"), "-C", "1"});
    REQUIRE(broker.wait_for_subscription("device-b", ack("device-b")));
    CHECK(broker.publish(device_a, ack("device-b"), R"({"seq":999})", 1, Retain::Yes).status.code == 0);
    CHECK(broker.publish(broker.pki().gateway(), ack("device-b"), R"({"seq":7})", 1, Retain::Yes).status.code == 0);

    const auto status = subscriber_b->wait_for_exit();
    INFO("subscriber: " << subscriber_b->output() << subscriber_b->errors() << "\nbroker: " << broker.log());
    REQUIRE(status);
    CHECK(subscriber_b->output() == ack("device-b") + R"( {"seq":7})" + "\n");

    // Nor the gateway's status: had the forged retained "offline" been kept,
    // it would come before device-b's own ack (filters are served in order).
    CHECK(broker.publish(device_a, "cb/v1/gw/gw-1/status", "offline", 1, Retain::Yes).status.code == 0);
    const auto status_read =
        broker.subscribe(device_b, {"-v", "-t", "cb/v1/gw/+/status", "-t", ack("device-b"), "-C", "1"});
    INFO(status_read.output);
    CHECK(status_read.output == ack("device-b") + R"( {"seq":7})" + "\n");
}

TEST_CASE("03 broker: a device cannot read another device's acknowledgements") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto gateway = broker.pki().gateway();
    const auto device_a = broker.pki().device("device-a");

    REQUIRE(broker.publish(gateway, ack("device-b"), R"({"seq":41})", 1, Retain::Yes).status.code == 0);
    REQUIRE(broker.publish(gateway, ack("device-a"), R"({"seq":12})", 1, Retain::Yes).status.code == 0);

    // One SUBSCRIBE, device-b's filter first: Mosquitto sends the retained
    // messages filter by filter, so device-b's ack would come first if device-a
    // could read it. The broker accepts the subscription (2.0's ACL does not
    // check SUBSCRIBE) and filters on delivery.
    const auto result =
        broker.subscribe(device_a, {"-v", "-q", "1", "-t", ack("device-b"), "-t", ack("device-a"), "-C", "1"});
    INFO(result.output << "\nbroker: " << broker.log());
    CHECK(result.status.code == 0);
    CHECK(result.output == ack("device-a") + R"( {"seq":12})" + "\n");

    // The gateway cannot read acks either, it only writes them: same trick
    // with device-a's retained status, which it may read.
    REQUIRE(broker.publish(device_a, "cb/v1/dev/device-a/status", "online", 1, Retain::Yes).status.code == 0);
    const auto gateway_read =
        broker.subscribe(gateway, {"-v", "-t", ack("device-b"), "-t", "cb/v1/dev/device-a/status", "-C", "1"});
    INFO(gateway_read.output);
    CHECK(gateway_read.output == "cb/v1/dev/device-a/status online\n");

    // What every device may read: the gateway's status.
    REQUIRE(broker.publish(gateway, "cb/v1/gw/gw-1/status", "online", 1, Retain::Yes).status.code == 0);
    const auto device_read = broker.subscribe(device_a, {"-v", "-t", "cb/v1/gw/+/status", "-C", "1"});
    INFO(device_read.output);
    CHECK(device_read.output == "cb/v1/gw/gw-1/status online\n");
}

TEST_CASE("03 broker: QoS 1 readings wait for an offline persistent session") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto gateway = broker.pki().gateway();
    const auto device = broker.pki().device("device-a");
    const std::vector<std::string> session{"-c", "-i", "carebridged", "-q", "1", "-t", meas_filter};

    // Subscribe once (-E: exit when the SUBACK arrives), then go offline.
    auto arguments = session;
    arguments.push_back("-E");
    const auto subscribed = broker.subscribe(gateway, arguments);
    INFO(subscribed.output);
    REQUIRE(subscribed.status.code == 0);

    for (int seq = 1; seq <= 3; ++seq)
        REQUIRE(broker.publish(device, meas("device-a"), "reading-" + std::to_string(seq)).status.code == 0);

    arguments = session;
    arguments.insert(arguments.end(), {"-v", "-C", "3"});
    const auto received = broker.subscribe(gateway, arguments);
    INFO(received.output << "\nbroker: " << broker.log());
    CHECK(received.status.code == 0);
    CHECK(received.output ==
          meas("device-a") + " reading-1\n" + meas("device-a") + " reading-2\n" + meas("device-a") + " reading-3\n");
}

TEST_CASE("03 broker: queued readings and retained acks survive a restart on the same port") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto gateway = broker.pki().gateway();
    const auto device = broker.pki().device("device-a");
    const auto port = broker.port();
    const std::vector<std::string> session{"-c", "-i", "carebridged", "-q", "1", "-t", meas_filter};

    // The ack first: publishing it is a clean-session connection as
    // "carebridged", which would end the persistent session (see below).
    REQUIRE(broker.publish(gateway, ack("device-a"), R"({"seq":5})", 1, Retain::Yes).status.code == 0);
    auto arguments = session;
    arguments.push_back("-E");
    REQUIRE(broker.subscribe(gateway, arguments).status.code == 0);
    REQUIRE(broker.publish(device, meas("device-a"), "before-restart").status.code == 0);

    broker.restart();
    CHECK(broker.port() == port);
    CHECK_THAT(broker.log(), Catch::Contains("Saving in-memory database"));

    arguments = session;
    arguments.insert(arguments.end(), {"-v", "-C", "1"});
    const auto received = broker.subscribe(gateway, arguments);
    INFO(received.output << "\nbroker: " << broker.log());
    CHECK(received.output == meas("device-a") + " before-restart\n");
    const auto acked = broker.subscribe(device, {"-v", "-t", ack("device-a"), "-C", "1"});
    CHECK(acked.output == ack("device-a") + R"( {"seq":5})" + "\n");

    broker.stop();
    CHECK_FALSE(broker.running());
}

TEST_CASE("03 broker: one connection per certificate: a second one takes the session over") {
    TempDir dir;
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path()});
    const auto gateway = broker.pki().gateway();
    const auto device = broker.pki().device("device-a");
    const std::vector<std::string> session{"-c", "-i", "carebridged", "-q", "1", "-t", meas_filter};

    auto arguments = session;
    arguments.push_back("-E");
    REQUIRE(broker.subscribe(gateway, arguments).status.code == 0);
    REQUIRE(broker.publish(device, meas("device-a"), "queued").status.code == 0);
    // Any client id it asks for, a connection with the gateway's certificate
    // is "carebridged"; this one asks for a clean session, so the queued
    // reading and the subscription are gone.
    REQUIRE(broker.publish(gateway, ack("device-a"), "{}", 1, Retain::No, {"-i", "someone-else"}).status.code == 0);

    const auto mark = broker.log_mark();
    arguments = session;
    arguments.insert(arguments.end(), {"-C", "1"});
    auto subscriber = broker.start_subscriber(gateway, arguments);
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter, mark));
    REQUIRE(broker.publish(device, meas("device-a"), "after").status.code == 0);
    REQUIRE(subscriber->wait_for_exit());
    INFO(broker.log());
    CHECK(subscriber->output() == meas("device-a") + " after\n");
    CHECK_THAT(broker.log(), !Catch::Contains("as someone-else"));
}

TEST_CASE("03 broker: a missing PKI or a bad device id is reported before starting") {
    TempDir dir;
    TempDir empty;
    CHECK_THROWS_WITH(
        Broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path(), .devices = {}, .pki_dir = empty.path()}),
        Catch::Contains("no test PKI in"));
    CHECK_THROWS_WITH(Broker({.source_dir = CAREBRIDGE_SOURCE_DIR, .work_dir = dir.path(), .devices = {"a/b"}}),
                      Catch::Contains("expected [A-Za-z0-9._-]{1,64}"));
}

TEST_CASE("03 broker: an enrolled device publishes only with the certificate the catalog pins") {
    TempDir dir;
    const TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {"device-a", "device-b"});
    const std::string zeros(64, '0');  // device-a's pin: some other certificate
    dir.write("devices.toml", pinned_catalog(zeros, openssl_fingerprint(pki.device("device-b"))));
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR,
                   .work_dir = dir.path(),
                   .pki_dir = dir / "pki",
                   .catalog = dir / "devices.toml"});
    CHECK(broker.wait_for_log("carebridge device pins: 2 enrolled devices from"));
    const auto device_a = broker.pki().device("device-a");
    const auto device_b = broker.pki().device("device-b");

    auto gateway = broker.start_subscriber(broker.pki().gateway(), {"-q", "1", "-t", meas_filter, "-C", "2"});
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter));
    // device-a's certificate is from our CA and has the right CN, but it is
    // not the one enrolled: nothing it publishes goes anywhere.
    broker.publish(device_a, meas("device-a"), "not the pinned certificate");
    REQUIRE(broker.wait_for_log("carebridge device pins: refused a message from device-a: its certificate"));
    REQUIRE(broker.publish(device_b, meas("device-b"), "pinned").status.code == 0);

    // The operator pins device-a's certificate: the next message finds the
    // new catalog (the harness sets plugin_opt_catalog_check_ms 0; shipped,
    // the plugin looks at most once a second), without a restart or a signal.
    const auto mark = broker.log_mark();
    replace_file(dir, "devices.toml", pinned_catalog(openssl_fingerprint(device_a), openssl_fingerprint(device_b)));
    REQUIRE(broker.publish(device_a, meas("device-a"), "now pinned").status.code == 0);
    CHECK(broker.wait_for_log("carebridge device pins: 2 enrolled devices from", cb::test::broker_hang_limit, mark));

    const auto status = gateway->wait_for_exit();
    INFO("subscriber: " << gateway->output() << gateway->errors() << "\nbroker: " << broker.log());
    REQUIRE(status);
    CHECK(gateway->output() == meas("device-b") + " pinned\n" + meas("device-a") + " now pinned\n");
}

TEST_CASE("03 broker: a catalog with errors stops the broker from starting, and a later one keeps the pins") {
    TempDir dir;
    const TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {"device-a", "device-b"});
    dir.write("devices.toml", "[[device]]\nid = \"device-a\"\n");
    try {
        Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR,
                       .work_dir = dir.path(),
                       .pki_dir = dir / "pki",
                       .catalog = dir / "devices.toml"});
        FAIL("the broker started with a catalog that does not load");
    } catch (const std::runtime_error& error) {
        CHECK_THAT(error.what(), Catch::Contains("carebridge device pins: ") &&
                                     Catch::Contains("devices.toml:1: device[0].model: missing (required)"));
    }

    // A good catalog to start with; then a broken one: the pins stay.
    const auto device_a = pki.device("device-a");
    dir.write("devices.toml", pinned_catalog(std::string(64, '0'), openssl_fingerprint(pki.device("device-b"))));
    std::filesystem::create_directories(dir / "second");
    Broker broker({.source_dir = CAREBRIDGE_SOURCE_DIR,
                   .work_dir = dir.path() / "second",
                   .pki_dir = dir / "pki",
                   .catalog = dir / "devices.toml"});
    auto gateway = broker.start_subscriber(broker.pki().gateway(), {"-q", "1", "-t", meas_filter, "-C", "1"});
    REQUIRE(broker.wait_for_subscription("carebridged", meas_filter));
    const auto mark = broker.log_mark();
    replace_file(dir, "devices.toml", "not toml [");
    broker.publish(device_a, meas("device-a"), "still refused");
    CHECK(broker.wait_for_log("not loaded, the previous pins stay", cb::test::broker_hang_limit, mark));
    CHECK(broker.wait_for_log("refused a message from device-a", cb::test::broker_hang_limit, mark));
    REQUIRE(broker.publish(broker.pki().device("device-b"), meas("device-b"), "sentinel").status.code == 0);
    const auto status = gateway->wait_for_exit();
    INFO("subscriber: " << gateway->output() << "\nbroker: " << broker.log());
    REQUIRE(status);
    CHECK(gateway->output() == meas("device-b") + " sentinel\n");
}
