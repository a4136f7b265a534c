// Fuzz target: the configuration loader on arbitrary text. Whatever the
// input, it must return either a Config or issues that each name the file,
// never both and never neither, and never crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const cb::ConfigLoad load = cb::load_config_text(text, "fuzz.toml");
    if (load.ok() == !load.issues.empty())
        std::abort();
    for (const auto& issue : load.issues)
        if (issue.to_string().rfind("fuzz.toml", 0) != 0)
            std::abort();
    return 0;
}
