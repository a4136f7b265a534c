// A SoftHSM2 token of its own for a test: a token directory and a config
// under `root`, SOFTHSM2_CONF pointing at it (set for this process, so the
// processes it starts inherit it), a random PIN in a 0600 file, and PEM keys
// imported with softhsm2-util. Nothing here is a secret.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cb::test {

class SoftHsmToken {
public:
    static constexpr const char* module = "/usr/lib/softhsm/libsofthsm2.so";

    struct Key {
        std::filesystem::path pem;  // the private key to import
        std::string label;          // its CKA_LABEL
        std::string id_hex;         // its CKA_ID
    };

    // Throws with softhsm2-util's output if a step fails.
    SoftHsmToken(const std::filesystem::path& root, std::string label, const std::vector<Key>& keys);

    const std::string& label() const noexcept { return m_label; }
    const std::string& pin() const noexcept { return m_pin; }
    const std::filesystem::path& pin_file() const noexcept { return m_pin_file; }

private:
    std::string m_label;
    std::string m_pin;
    std::filesystem::path m_pin_file;
};

}  // namespace cb::test
