// A SQLite VFS that forwards to the default one and fails on demand, as
// SQLite's own test VFS does: "let the next N writes (or fsyncs) succeed,
// then fail every one until healed". Open a database with vfs "faulty".
#pragma once

#include <cstdint>

namespace cb::test {

class FaultyVfs {
public:
    FaultyVfs();   // registers "faulty" (once per process) and heals it
    ~FaultyVfs();  // heals

    static constexpr const char* name = "faulty";

    // After `successes` more writes (xWrite) succeed, every write fails with
    // SQLITE_FULL (the disk is full).
    void fail_writes_after(std::int64_t successes);
    // After `successes` more fsyncs (xSync) succeed, every fsync fails with SQLITE_IOERR_FSYNC.
    void fail_syncs_after(std::int64_t successes);
    void heal();

    std::int64_t failures() const;
};

}  // namespace cb::test
