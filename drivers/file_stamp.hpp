// What tells a replaced file from the one loaded: device, inode, size and
// modification time (a rename over it, an editor's save and a copy over it
// each change one). Files read again only once they changed use it:
// upstream.crl_file (drivers/upstream/https_client.cpp) and the device catalog
// in the broker's plugin (broker/device_pins_plugin.cpp).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

namespace cb {

struct FileStamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    std::int64_t mtime_s = 0;
    std::int64_t mtime_ns = 0;

    bool operator==(const FileStamp&) const = default;
};

// The stamp of the file at `path`; nullopt, with errno set by stat(), if it
// has none (missing, unreadable directory).
inline std::optional<FileStamp> file_stamp(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0)
        return std::nullopt;
    return FileStamp{info.st_dev, info.st_ino, info.st_size, info.st_mtim.tv_sec, info.st_mtim.tv_nsec};
}

}  // namespace cb
