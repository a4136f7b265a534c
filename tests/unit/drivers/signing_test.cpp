// The Signer backends against real files and a real PKCS#11 module
// (SoftHSM2 with its own token directory), with the test PKI of
// scripts/test-pki (section facility), and an independent check of the JWS by
// python3-jwcrypto (tests/support/verify_jws.py); and the TLS client key on the
// token, in real TLS 1.3 and 1.2 handshakes (in memory).
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "drivers/signing/pkcs11_tls_key.hpp"
#include "drivers/signing/signer.hpp"
#include "protocol/upstream/canonical_json.hpp"
#include "protocol/upstream/fhir_bundle.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/process.hpp"
#include "tests/support/softhsm.hpp"
#include "tests/support/temp_dir.hpp"

using namespace cb::signing;
namespace fs = std::filesystem;
namespace upstream = cb::upstream;

namespace {

// The test PKI is issued at test time by the real clock, so signatures are made
// and verified at the real time too.
cb::devices::Microseconds now() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

struct Fixture {
    cb::test::TempDir dir;
    cb::test::TestPki pki{CAREBRIDGE_SOURCE_DIR, dir / "pki", {}};

    fs::path facility(const std::string& name) const { return pki.directory() / "facility" / name; }
    fs::path ca() const { return pki.directory() / "facility-ca.crt"; }
};

Fixture& fixture() {
    static Fixture instance;
    return instance;
}

std::string file_text(const fs::path& path) {
    return cb::test::read_file(path);
}

// A bundle of one weight reading, signed by `signer`.
boost::json::object signed_bundle(Signer& signer) {
    upstream::BundleInput input{
        cb::devices::DeviceId::parse("scale-7").value(),
        std::nullopt,
        "",
        "BF-600",
        3,
        upstream::StoredReading::parse(R"({"type":"body_weight","time_us":1795338000000000,"offset_min":60,)"
                                       R"("values":[{"code":188736,"value":80.25,"unit":"kg"}],"user_index":255})")
            .value(),
        "idpe-1",
        std::nullopt,
        std::nullopt};
    auto bundle = upstream::build_bundle(input).value();
    const auto done = upstream::sign_bundle(
        bundle, signature_request(signer, now(), "urn:oid:1.2.250.1.71.4.2.2", "750000000"), sign_function(signer));
    if (!done)
        FAIL(done.error().message());
    return bundle;
}

void check_verifies(const boost::json::object& bundle, upstream::JwsAlgorithm algorithm) {
    const auto anchors = upstream::TrustAnchors::from_pem(file_text(fixture().ca())).value();
    const auto verified = upstream::verify_bundle_signature_value(boost::json::value(bundle), anchors, now());
    if (!verified)
        FAIL(verified.error().message);
    CHECK(verified->algorithm == algorithm);
    CHECK(verified->signer == "CN=carebridge test facility");
}

// The key file's base64 lines: none may appear in an error message.
void check_no_key_material(const std::string& message, const fs::path& key) {
    CHECK(message.find("PRIVATE KEY") == std::string::npos);
    std::istringstream lines(file_text(key));
    std::string line;
    while (std::getline(lines, line))
        if (line.size() > 16 && line.rfind("-----", 0) != 0)
            CHECK(message.find(line.substr(0, 16)) == std::string::npos);
}

fs::path copy_with_mode(const fs::path& from, const fs::path& to, fs::perms mode) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, mode);
    return to;
}

// A SoftHSM2 token with the facility keys imported, in its own directory.
const cb::test::SoftHsmToken& token() {
    static const cb::test::SoftHsmToken instance(
        fixture().dir / "softhsm", "carebridge-test",
        {{fixture().facility("ec.key"), "facility-ec", "01"}, {fixture().facility("rsa.key"), "facility-rsa", "02"}});
    return instance;
}

Pkcs11SignerConfig pkcs11_config(const std::string& key_label) {
    return Pkcs11SignerConfig{{cb::test::SoftHsmToken::module, "carebridge-test", token().pin_file(), ""},
                              {key_label, ""},
                              fixture().facility(key_label == "facility-ec" ? "ec.crt" : "rsa.crt")};
}

}  // namespace

TEST_CASE("a PEM key file wider than 0600 is refused, naming the path only") {
    const fs::path key = copy_with_mode(fixture().facility("ec.key"), fixture().dir / "wide.key",
                                        fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    const auto signer = open_pem_signer({key, fixture().facility("ec.crt")});
    REQUIRE_FALSE(signer.has_value());
    CHECK(signer.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(signer.error().message() == "key file " + key.string() + ": mode 0640 is wider than 0600; chmod 600 it");
    check_no_key_material(signer.error().message(), key);

    const fs::path world = copy_with_mode(fixture().facility("ec.key"), fixture().dir / "world.key",
                                          fs::perms::owner_read | fs::perms::others_read);
    CHECK_FALSE(open_pem_signer({world, fixture().facility("ec.crt")}).has_value());
    const fs::path read_only =
        copy_with_mode(fixture().facility("ec.key"), fixture().dir / "readonly.key", fs::perms::owner_read);
    CHECK(open_pem_signer({read_only, fixture().facility("ec.crt")}).has_value());
}

TEST_CASE("a key file owned by another user is refused, whatever its mode") {
    const fs::path key = copy_with_mode(fixture().facility("ec.key"), fixture().dir / "other.key",
                                        fs::perms::owner_read | fs::perms::owner_write);
    if (::geteuid() != 0) {
        WARN("not root: cannot give a file to another user; the owner check is not exercised");
        return;
    }
    constexpr uid_t nobody = 65534;
    REQUIRE(::chown(key.c_str(), nobody, nobody) == 0);
    const auto signer = open_pem_signer({key, fixture().facility("ec.crt")});
    REQUIRE_FALSE(signer.has_value());
    CHECK(signer.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(signer.error().message() == "key file " + key.string() +
                                          ": owned by uid 65534, neither the user carebridged runs as (uid 0) nor "
                                          "root; chown it");
    check_no_key_material(signer.error().message(), key);
}

TEST_CASE("a PEM EC key signs ES256 bundles that verify") {
    auto signer = open_pem_signer({fixture().facility("ec.key"), fixture().facility("ec.crt")});
    if (!signer)
        FAIL(signer.error().message());
    CHECK((*signer)->algorithm() == upstream::JwsAlgorithm::es256);
    REQUIRE((*signer)->certificate_chain().size() == 1);
    check_verifies(signed_bundle(**signer), upstream::JwsAlgorithm::es256);
}

TEST_CASE("a PEM RSA key signs RS256 bundles that verify") {
    auto signer = open_pem_signer({fixture().facility("rsa.key"), fixture().facility("rsa.crt")});
    if (!signer)
        FAIL(signer.error().message());
    CHECK((*signer)->algorithm() == upstream::JwsAlgorithm::rs256);
    check_verifies(signed_bundle(**signer), upstream::JwsAlgorithm::rs256);
}

TEST_CASE("a PEM key that does not match its certificate is refused without its bytes") {
    const auto signer = open_pem_signer({fixture().facility("ec.key"), fixture().facility("rogue-ec.crt")});
    REQUIRE_FALSE(signer.has_value());
    CHECK(signer.error().message().find("does not match the certificate") != std::string::npos);
    check_no_key_material(signer.error().message(), fixture().facility("ec.key"));

    const fs::path not_a_key = fixture().dir.write("garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
    fs::permissions(not_a_key, fs::perms::owner_read | fs::perms::owner_write);
    const auto garbage = open_pem_signer({not_a_key, fixture().facility("ec.crt")});
    REQUIRE_FALSE(garbage.has_value());
    CHECK(garbage.error().message() == "key file " + not_a_key.string() + ": not an unencrypted PEM private key");
}

TEST_CASE("a SoftHSM2 EC key signs ES256 bundles that verify") {
    auto signer = open_pkcs11_signer(pkcs11_config("facility-ec"));
    if (!signer)
        FAIL(signer.error().message());
    CHECK((*signer)->algorithm() == upstream::JwsAlgorithm::es256);
    check_verifies(signed_bundle(**signer), upstream::JwsAlgorithm::es256);
}

TEST_CASE("a SoftHSM2 RSA key signs RS256 bundles that verify") {
    auto config = pkcs11_config("facility-rsa");
    config.key.label.clear();
    config.key.id_hex = "02";
    auto signer = open_pkcs11_signer(config);
    if (!signer)
        FAIL(signer.error().message());
    CHECK((*signer)->algorithm() == upstream::JwsAlgorithm::rs256);
    check_verifies(signed_bundle(**signer), upstream::JwsAlgorithm::rs256);
}

TEST_CASE("PKCS#11 errors name the token and key, never the PIN") {
    auto wrong_pin = pkcs11_config("facility-ec");
    const std::string bad_pin = token().pin() == "111111" ? "222222" : "111111";
    ::setenv("CAREBRIDGE_TEST_PIN", bad_pin.c_str(), 1);
    wrong_pin.token.pin_file.clear();
    wrong_pin.token.pin_env = "CAREBRIDGE_TEST_PIN";
    const auto refused = open_pkcs11_signer(wrong_pin);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message() == "PKCS#11 token \"carebridge-test\": login failed (CKR_PIN_INCORRECT)");
    CHECK(refused.error().message().find(bad_pin) == std::string::npos);

    auto no_key = pkcs11_config("facility-ec");
    no_key.key.label = "absent";
    const auto missing = open_pkcs11_signer(no_key);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message() == "PKCS#11 token \"carebridge-test\": no private key \"absent\"");
    CHECK(missing.error().message().find(token().pin()) == std::string::npos);

    auto no_token = pkcs11_config("facility-ec");
    no_token.token.token_label = "elsewhere";
    const auto absent = open_pkcs11_signer(no_token);
    REQUIRE_FALSE(absent.has_value());
    CHECK(absent.error().kind() == cb::ErrorKind::unavailable);

    auto wide_pin = pkcs11_config("facility-ec");
    wide_pin.token.pin_file = copy_with_mode(token().pin_file(), fixture().dir / "wide-pin",
                                             fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    const auto wide = open_pkcs11_signer(wide_pin);
    REQUIRE_FALSE(wide.has_value());
    CHECK(wide.error().message().find("is wider than 0600") != std::string::npos);
    CHECK(wide.error().message().find(token().pin()) == std::string::npos);

    auto mismatched = pkcs11_config("facility-ec");
    mismatched.certificate_chain_file = fixture().facility("rogue-ec.crt");
    const auto mismatch = open_pkcs11_signer(mismatched);
    REQUIRE_FALSE(mismatch.has_value());
    CHECK(mismatch.error().message().find("does not match the certificate") != std::string::npos);
}

TEST_CASE("python3-jwcrypto verifies our JWS (an independent implementation)") {
    const fs::path script = fs::path(CAREBRIDGE_SOURCE_DIR) / "tests" / "support" / "verify_jws.py";
    for (const std::string name : {"ec", "rsa"}) {
        INFO(name);
        auto signer = open_pem_signer({fixture().facility(name + ".key"), fixture().facility(name + ".crt")});
        REQUIRE(signer.has_value());
        const fs::path bundle_file =
            fixture().dir.write("bundle-" + name + ".json", upstream::canonicalize(signed_bundle(**signer)).value());
        // Debian's interpreter: python3-jwcrypto is a Debian package (scripts/install-deps).
        const auto result =
            cb::test::run_command({"/usr/bin/python3", script.string(), bundle_file.string(), fixture().ca().string()});
        INFO(result.output);
        REQUIRE(result.status.exited);
        if (result.status.code == 2)
            FAIL("python3-jwcrypto is missing: run scripts/install-deps\n" << result.output);
        CHECK(result.status.code == 0);
        CHECK(result.output.find(name == "ec" ? "verified ES256" : "verified RS256") != std::string::npos);

        // And it refuses a tampered copy.
        std::string tampered = file_text(bundle_file);
        tampered.replace(tampered.find("80.25"), 5, "80.26");
        const fs::path tampered_file = fixture().dir.write("tampered-" + name + ".json", tampered);
        const auto refused = cb::test::run_command(
            {"/usr/bin/python3", script.string(), tampered_file.string(), fixture().ca().string()});
        CHECK(refused.status.code == 1);
    }
}

// --- The TLS client key on the token (drivers/signing/pkcs11_tls_key.hpp) ---

namespace {

using SslCtx = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using Ssl = std::unique_ptr<SSL, decltype(&SSL_free)>;

struct Handshake {
    bool done = false;
    std::string failure;  // OpenSSL's errors when not done
    std::string peer;     // the client certificate's subject, as the server saw it
    bool peer_verified = false;
};

// A TLS handshake in memory (a BIO pair, no socket) between a server that
// requires a client certificate from the facility CA and a client presenting
// `certificate` with `key`, both at `version`. The server verifies the
// client's CertificateVerify signature: a done handshake means the key signed.
Handshake handshake(EVP_PKEY* key, const fs::path& certificate, int version) {
    SslCtx server_context(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    SslCtx client_context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    REQUIRE((server_context && client_context));
    for (SSL_CTX* context : {server_context.get(), client_context.get()}) {
        SSL_CTX_set_min_proto_version(context, version);
        SSL_CTX_set_max_proto_version(context, version);
    }
    REQUIRE(SSL_CTX_use_certificate_chain_file(server_context.get(), fixture().facility("ec.crt").c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(server_context.get(), fixture().facility("ec.key").c_str(), SSL_FILETYPE_PEM) ==
            1);
    REQUIRE(SSL_CTX_load_verify_locations(server_context.get(), fixture().ca().c_str(), nullptr) == 1);
    SSL_CTX_set_verify(server_context.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // In TLS 1.2 the RSA client then signs PKCS#1 v1.5 (CKM_RSA_PKCS), in 1.3 RSA-PSS (CKM_RSA_X_509).
    REQUIRE(SSL_CTX_set1_client_sigalgs_list(server_context.get(), version == TLS1_2_VERSION
                                                                       ? "RSA+SHA256:ECDSA+SHA256"
                                                                       : "rsa_pss_rsae_sha256:ECDSA+SHA256") == 1);
    REQUIRE(SSL_CTX_use_certificate_chain_file(client_context.get(), certificate.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(client_context.get(), key) == 1);

    Ssl server(SSL_new(server_context.get()), SSL_free);
    Ssl client(SSL_new(client_context.get()), SSL_free);
    BIO* client_end = nullptr;
    BIO* server_end = nullptr;
    REQUIRE(BIO_new_bio_pair(&client_end, 0, &server_end, 0) == 1);
    SSL_set_bio(client.get(), client_end, client_end);
    SSL_set_bio(server.get(), server_end, server_end);
    SSL_set_connect_state(client.get());
    SSL_set_accept_state(server.get());

    Handshake out;
    for (int round = 0; round < 32 && !out.done; ++round) {
        const int client_rc = SSL_do_handshake(client.get());
        const int server_rc = SSL_do_handshake(server.get());
        for (const auto& [ssl, rc] : {std::pair{client.get(), client_rc}, std::pair{server.get(), server_rc}}) {
            const int error = SSL_get_error(ssl, rc);
            if (rc != 1 && error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
                std::array<char, 256> text{};
                ERR_error_string_n(ERR_get_error(), text.data(), text.size());
                out.failure = text.data();
                ERR_clear_error();
                return out;
            }
        }
        out.done = client_rc == 1 && server_rc == 1;
    }
    if (X509* peer = SSL_get1_peer_certificate(server.get())) {
        std::array<char, 256> subject{};
        X509_NAME_oneline(X509_get_subject_name(peer), subject.data(), static_cast<int>(subject.size()));
        out.peer = subject.data();
        X509_free(peer);
    }
    out.peer_verified = SSL_get_verify_result(server.get()) == X509_V_OK;
    return out;
}

std::shared_ptr<Pkcs11Token> open_test_token() {
    auto opened = open_pkcs11_token({cb::test::SoftHsmToken::module, "carebridge-test", token().pin_file(), ""});
    if (!opened)
        FAIL(opened.error().message());
    return *opened;
}

}  // namespace

TEST_CASE("a TLS client key on the token authenticates TLS 1.3 and 1.2 handshakes, EC and RSA") {
    for (const std::string name : {"ec", "rsa"}) {
        const fs::path certificate = fixture().facility(name + ".crt");
        auto key = open_pkcs11_tls_key(open_test_token(), {"facility-" + name, ""}, certificate);
        if (!key)
            FAIL(key.error().message());
        for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
            INFO(name << " TLS 0x" << std::hex << version);
            const Handshake result = handshake(key->get(), certificate, version);
            INFO(result.failure);
            CHECK(result.done);
            CHECK(result.peer == "/CN=carebridge test facility");
            CHECK(result.peer_verified);
        }
    }
}

TEST_CASE("a TLS key that does not fit its certificate is refused at opening, naming token and key") {
    const auto rogue = open_pkcs11_tls_key(open_test_token(), {"facility-ec", ""}, fixture().facility("rogue-ec.crt"));
    REQUIRE_FALSE(rogue.has_value());
    CHECK(rogue.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(rogue.error().message() ==
          "PKCS#11 token \"carebridge-test\": TLS key \"facility-ec\" does not match "
          "certificate " +
              fixture().facility("rogue-ec.crt").string());

    const auto other_type = open_pkcs11_tls_key(open_test_token(), {"facility-rsa", ""}, fixture().facility("ec.crt"));
    REQUIRE_FALSE(other_type.has_value());
    CHECK(other_type.error().message() ==
          "PKCS#11 token \"carebridge-test\": TLS key \"facility-rsa\" is an RSA key but certificate " +
              fixture().facility("ec.crt").string() + " holds another type");

    const auto absent = open_pkcs11_tls_key(open_test_token(), {"", "7f"}, fixture().facility("ec.crt"));
    REQUIRE_FALSE(absent.has_value());
    CHECK(absent.error().message() == "PKCS#11 token \"carebridge-test\": no private key id 7f");
}

TEST_CASE("the token stays open while OpenSSL holds the TLS key") {
    cb::signing::TlsKey key;
    {
        auto opened = open_pkcs11_tls_key(open_test_token(), {"facility-ec", ""}, fixture().facility("ec.crt"));
        REQUIRE(opened.has_value());
        key = *opened;  // the only reference to the token is now inside the key
    }
    CHECK(handshake(key.get(), fixture().facility("ec.crt"), TLS1_3_VERSION).done);
}
