// Hash containers keyed by std::string that look up by std::string_view
// without building a string (C++20 heterogeneous lookup). The ingest path
// looks a device up several times per reading among ~1000 ids that share a
// long prefix, where an ordered map compares ten strings each time
// (bench/README.md, session 9).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace cb {

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

}  // namespace cb
