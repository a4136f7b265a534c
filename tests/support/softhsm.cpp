#include "tests/support/softhsm.hpp"

#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

#include "tests/support/process.hpp"

namespace cb::test {
namespace {

void run(const std::vector<std::string>& argv) {
    const auto result = run_command(argv);
    if (!result.status.exited || result.status.code != 0)
        throw std::runtime_error(argv[0] + " " + argv[1] + " failed:\n" + result.output);
}

}  // namespace

SoftHsmToken::SoftHsmToken(const std::filesystem::path& root, std::string label, const std::vector<Key>& keys)
    : m_label(std::move(label)), m_pin_file(root / "pin") {
    std::filesystem::create_directories(root / "tokens");
    {
        std::ofstream config(root / "softhsm2.conf");
        config << "directories.tokendir = " << (root / "tokens").string() << "\nobjectstore.backend = file\n"
               << "log.level = ERROR\n";
    }
    ::setenv("SOFTHSM2_CONF", (root / "softhsm2.conf").c_str(), 1);
    std::random_device random;
    m_pin = std::to_string(100000 + random() % 900000);
    {
        std::ofstream out(m_pin_file);
        out << m_pin << "\n";
    }
    std::filesystem::permissions(m_pin_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    run({"/usr/bin/softhsm2-util", "--init-token", "--free", "--label", m_label, "--so-pin", m_pin + "0", "--pin",
         m_pin});
    for (const Key& key : keys)
        run({"/usr/bin/softhsm2-util", "--import", key.pem.string(), "--token", m_label, "--label", key.label, "--id",
             key.id_hex, "--pin", m_pin});
}

}  // namespace cb::test
