#include "daemon/config.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using cb::load_config_text;

namespace {

std::vector<std::string> messages(const cb::ConfigLoad& load) {
    std::vector<std::string> out;
    for (const auto& issue : load.issues)
        out.push_back(issue.to_string());
    return out;
}

}  // namespace

TEST_CASE("an empty file gives the embedded defaults") {
    const auto load = load_config_text("", "empty.toml");
    REQUIRE(load.ok());
    CHECK(*load.config == cb::Config{});
    CHECK(load.config->mqtt.host == "localhost");
    CHECK(load.config->daemon.state_dir == "carebridge-state");
}

TEST_CASE("every key is read") {
    const auto load = load_config_text(R"(
[daemon]
state_dir = "/tmp/cb"
log_level = "debug"
shutdown_timeout_s = 9
[mqtt]
host = "broker.local"
port = 1883
client_id = "gw-1"
keepalive_s = 60
)",
                                       "full.toml");
    REQUIRE(load.ok());
    const auto& c = *load.config;
    CHECK(c.daemon.state_dir == "/tmp/cb");
    CHECK(c.daemon.log_level == cb::LogLevel::debug);
    CHECK(c.daemon.shutdown_timeout == std::chrono::seconds(9));
    CHECK(c.mqtt.host == "broker.local");
    CHECK(c.mqtt.port == 1883);
    CHECK(c.mqtt.client_id == "gw-1");
    CHECK(c.mqtt.keepalive == std::chrono::seconds(60));
}

TEST_CASE("wrong type, unknown key and out-of-range value are all reported with lines") {
    const auto load = load_config_text(R"([daemon]
log_level = 5
[mqtt]
hots = "x"
port = 0
)",
                                       "bad.toml");
    REQUIRE_FALSE(load.ok());
    const auto all = messages(load);
    REQUIRE(all.size() == 3);
    CHECK(all[0] ==
          "bad.toml:2: daemon.log_level: expected one of \"error\", \"warning\", \"notice\", \"info\", \"debug\", "
          "got 5");
    CHECK(all[1] == "bad.toml:4: mqtt.hots: unknown key (did you mean \"mqtt.host\"?)");
    CHECK(all[2] == "bad.toml:5: mqtt.port: expected an integer in 1..65535, got 0");
}

TEST_CASE("a type mismatch names the type found") {
    const auto load = load_config_text("[mqtt]\nport = \"8883\"\n", "t.toml");
    REQUIRE(messages(load) ==
            std::vector<std::string>{"t.toml:2: mqtt.port: expected an integer in 1..65535, got a string"});
}

TEST_CASE("an unknown section is reported, with a suggestion when close") {
    const auto load = load_config_text("[mqqt]\nhost = \"x\"\n[cloud]\nurl = \"y\"\n", "s.toml");
    const auto all = messages(load);
    REQUIRE(all.size() == 2);
    CHECK(all[0] == "s.toml:1: mqqt: unknown key (did you mean \"mqtt\"?)");
    CHECK(all[1] == "s.toml:3: cloud: unknown key");
}

TEST_CASE("a section given as a value is reported") {
    const auto load = load_config_text("daemon = 3\n", "v.toml");
    REQUIRE(messages(load) == std::vector<std::string>{"v.toml:1: daemon: expected a table, got an integer"});
}

TEST_CASE("strings are bounded and free of control characters") {
    CHECK(messages(load_config_text("[mqtt]\nclient_id = \"abcdefghijklmnopqrstuvwxyz\"\n", "c.toml")) ==
          std::vector<std::string>{
              "c.toml:2: mqtt.client_id: expected a non-empty string of at most 23 bytes, got 26 bytes"});
    CHECK(
        messages(load_config_text("[mqtt]\nhost = \"\"\n", "c.toml")) ==
        std::vector<std::string>{"c.toml:2: mqtt.host: expected a non-empty string of at most 253 bytes, got 0 bytes"});
    CHECK(messages(load_config_text("[mqtt]\nhost = \"a\\nb\"\n", "c.toml")) ==
          std::vector<std::string>{"c.toml:2: mqtt.host: expected a string without control characters"});
}

TEST_CASE("a TOML syntax error is one issue with its line") {
    const auto load = load_config_text("[daemon]\nlog_level = \"info\n", "syntax.toml");
    REQUIRE(load.issues.size() == 1);
    CHECK(load.issues[0].line == 2);
    CHECK(load.issues[0].to_string().rfind("syntax.toml:2: ", 0) == 0);
}

TEST_CASE("an unreadable file is reported with the OS reason") {
    const auto load = cb::load_config_file("/nonexistent/carebridged.toml");
    REQUIRE(messages(load) ==
            std::vector<std::string>{"/nonexistent/carebridged.toml: cannot read: No such file or directory"});
}

TEST_CASE("the shipped configuration is valid") {
    const auto load = cb::load_config_file(CAREBRIDGE_SOURCE_DIR "/config/carebridged.toml");
    for (const auto& message : messages(load))
        UNSCOPED_INFO(message);
    REQUIRE(load.ok());
    CHECK(load.config->daemon.state_dir == "/var/lib/carebridge");
}

TEST_CASE("upstream: what each key backend needs is required, and only that") {
    const std::string common =
        "[upstream]\nenabled = true\nhost = \"h\"\nca_file = \"/ca\"\ncert_file = \"/c\"\n"
        "facility_id = \"750000000\"\nsigning_chain_file = \"/chain\"\n";
    // Files by default: the TLS key file and the signing key file.
    CHECK(messages(load_config_text(common, "u.toml")) ==
          std::vector<std::string>{
              "u.toml:2: upstream.key_file: missing: required when upstream.enabled = true",
              "u.toml:2: upstream.signing_key_file: missing: required when upstream.enabled = true"});

    // The TLS key on a token: its label and the token, no key file.
    const auto tls_on_token =
        load_config_text(common + "tls_key = \"pkcs11\"\nsigning_key_file = \"/sign.key\"\n", "t.toml");
    CHECK(messages(tls_on_token) ==
          std::vector<std::string>{
              "t.toml:2: upstream.pkcs11_tls_key_label: missing: required when upstream.enabled = true",
              "t.toml:2: upstream.pkcs11_module: missing: required when upstream.enabled = true",
              "t.toml:2: upstream.pkcs11_token: missing: required when upstream.enabled = true",
              "t.toml:2: upstream.pkcs11_pin_file: missing: required when upstream.enabled = true"});

    const auto both_on_token =
        load_config_text(common +
                             "tls_key = \"pkcs11\"\npkcs11_tls_key_label = \"tls\"\nsigner = \"pkcs11\"\n"
                             "pkcs11_key_label = \"sign\"\npkcs11_module = \"/m.so\"\npkcs11_token = \"t\"\n"
                             "pkcs11_pin_file = \"/pin\"\n",
                         "b.toml");
    REQUIRE(both_on_token.ok());
    CHECK(both_on_token.config->upstream.tls_key == "pkcs11");
    CHECK(both_on_token.config->upstream.pkcs11_tls_key_label == "tls");
    CHECK(both_on_token.config->upstream.uses_pkcs11());

    // Pipelining: 4 requests per connection unless told, 1..16.
    CHECK(both_on_token.config->upstream.pipeline_depth == 4);
    const auto one =
        load_config_text(common + "signing_key_file = \"/s\"\nkey_file = \"/k\"\npipeline_depth = 1\n", "p.toml");
    REQUIRE(one.ok());
    CHECK(one.config->upstream.pipeline_depth == 1);
    const auto deep = messages(load_config_text(common + "pipeline_depth = 17\n", "d.toml"));
    CHECK(std::any_of(deep.begin(), deep.end(), [](const std::string& message) {
        return message.rfind("d.toml:8: upstream.pipeline_depth: ", 0) == 0 && message.find("16") != std::string::npos;
    }));

    const auto unknown = messages(load_config_text(common + "tls_key = \"hsm\"\n", "x.toml"));
    CHECK(std::find(unknown.begin(), unknown.end(),
                    "x.toml:8: upstream.tls_key: expected one of \"file\", \"pkcs11\", got \"hsm\"") != unknown.end());
}
