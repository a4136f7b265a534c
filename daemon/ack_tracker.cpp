#include "daemon/ack_tracker.hpp"

namespace cb {

std::optional<std::uint64_t> AckTracker::handled(std::string_view device, std::uint64_t sequence, std::uint64_t first) {
    auto it = m_devices.find(device);
    if (it == m_devices.end()) {
        const std::uint64_t start = first == 0 ? 1 : first;
        it = m_devices.emplace(std::string(device), Progress{start, start - 1, {}}).first;
    }
    Progress& progress = it->second;
    if (sequence <= progress.through || !progress.beyond.insert(sequence).second)
        return std::nullopt;
    const std::uint64_t before = progress.through;
    while (!progress.beyond.empty() && *progress.beyond.begin() == progress.through + 1) {
        progress.through = *progress.beyond.begin();
        progress.beyond.erase(progress.beyond.begin());
    }
    if (progress.through == before)
        return std::nullopt;
    return progress.through;
}

std::optional<std::uint64_t> AckTracker::acknowledged(std::string_view device) const {
    const auto it = m_devices.find(device);
    if (it == m_devices.end() || it->second.through < it->second.first)
        return std::nullopt;
    return it->second.through;
}

std::size_t AckTracker::waiting(std::string_view device) const {
    const auto it = m_devices.find(device);
    return it == m_devices.end() ? 0 : it->second.beyond.size();
}

}  // namespace cb
