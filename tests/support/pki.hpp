// The throw-away PKI of scripts/test-pki, made for one test in its own
// directory (layout in that script's header). Nothing here is a secret.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cb::test {

// Who a client is to the broker: a certificate and its key. The broker takes
// the certificate's CN as username and client id.
struct ClientIdentity {
    std::string name;  // the CN; empty for a client without certificate
    std::filesystem::path certificate;
    std::filesystem::path key;

    bool has_certificate() const { return !certificate.empty(); }
};

// What an operator pins in the catalog: `openssl x509 -fingerprint -sha256`
// of the certificate, as printed (uppercase, colon-separated). Throws if
// openssl fails.
std::string certificate_fingerprint(const std::filesystem::path& certificate);

class TestPki {
public:
    // Runs `source_dir`/scripts/test-pki `directory` --devices ... (idempotent:
    // an existing PKI there is kept and completed). Throws with the script's
    // output if it fails.
    TestPki(const std::filesystem::path& source_dir, std::filesystem::path directory,
            const std::vector<std::string>& devices);

    // A PKI that test-pki made earlier, used as it is. Throws if `directory`
    // holds no ca.crt.
    static TestPki existing(std::filesystem::path directory);

    const std::filesystem::path& directory() const noexcept { return m_directory; }
    std::filesystem::path ca_certificate() const { return m_directory / "ca.crt"; }
    std::filesystem::path broker_certificate() const { return m_directory / "broker.crt"; }
    std::filesystem::path broker_key() const { return m_directory / "broker.key"; }

    // CN=carebridged, issued by the test CA.
    ClientIdentity gateway() const;
    // CN=`device_id`, issued by the test CA; throws if test-pki did not make it.
    ClientIdentity device(const std::string& device_id) const;
    // CN=carebridged, issued by a different CA: must be refused.
    ClientIdentity rogue() const;
    // Device revoked-1, chained to the test CA and listed in its CRL (ca.crl).
    ClientIdentity revoked() const;
    // No certificate at all: must be refused.
    static ClientIdentity no_certificate() { return {}; }

private:
    explicit TestPki(std::filesystem::path directory) : m_directory(std::move(directory)) {}

    std::filesystem::path m_directory;
};

}  // namespace cb::test
