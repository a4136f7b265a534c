// Fuzz target: the device catalog loader on arbitrary text. Either a catalog
// or issues naming the file, never both, never neither, never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/catalog.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const cb::CatalogLoad load = cb::load_catalog_text(text, "fuzz.toml");
    if (load.ok() == !load.issues.empty())
        std::abort();
    for (const auto& issue : load.issues)
        if (issue.to_string().rfind("fuzz.toml", 0) != 0)
            std::abort();
    return 0;
}
