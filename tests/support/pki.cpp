#include "tests/support/pki.hpp"

#include <stdexcept>

#include "tests/support/process.hpp"

namespace cb::test {

TestPki::TestPki(const std::filesystem::path& source_dir, std::filesystem::path directory,
                 const std::vector<std::string>& devices)
    : m_directory(std::move(directory)) {
    std::vector<std::string> argv{"/bin/bash", (source_dir / "scripts" / "test-pki").string(), m_directory.string()};
    if (!devices.empty()) {
        std::string list;
        for (const auto& id : devices)
            list += (list.empty() ? "" : ",") + id;
        argv.push_back("--devices");
        argv.push_back(list);
    }
    const auto result = run_command(argv, std::chrono::seconds(120));
    if (!result.status.exited || result.status.code != 0)
        throw std::runtime_error("scripts/test-pki " + m_directory.string() + " failed (status " +
                                 std::to_string(result.status.code) + "):\n" + result.output);
}

TestPki TestPki::existing(std::filesystem::path directory) {
    TestPki pki(std::move(directory));
    if (!std::filesystem::is_regular_file(pki.ca_certificate()))
        throw std::runtime_error("no test PKI in " + pki.directory().string() + ": " + pki.ca_certificate().string() +
                                 " is missing");
    return pki;
}

std::string certificate_fingerprint(const std::filesystem::path& certificate) {
    const auto result =
        run_command({"/usr/bin/openssl", "x509", "-in", certificate.string(), "-noout", "-fingerprint", "-sha256"});
    const auto equals = result.output.find('=');
    if (result.status.code != 0 || equals == std::string::npos)
        throw std::runtime_error("openssl x509 -fingerprint " + certificate.string() + ": " + result.output);
    return result.output.substr(equals + 1, 95);  // 32 pairs and 31 colons
}

ClientIdentity TestPki::gateway() const {
    return {"carebridged", m_directory / "gateway.crt", m_directory / "gateway.key"};
}

ClientIdentity TestPki::device(const std::string& device_id) const {
    ClientIdentity identity{device_id, m_directory / "devices" / (device_id + ".crt"),
                            m_directory / "devices" / (device_id + ".key")};
    if (!std::filesystem::is_regular_file(identity.certificate))
        throw std::runtime_error("no certificate for device '" + device_id + "' in " + m_directory.string() +
                                 " (pass it to test-pki --devices)");
    return identity;
}

ClientIdentity TestPki::rogue() const {
    return {"carebridged", m_directory / "rogue.crt", m_directory / "rogue.key"};
}

ClientIdentity TestPki::revoked() const {
    return {"revoked-1", m_directory / "revoked.crt", m_directory / "revoked.key"};
}

}  // namespace cb::test
