#include "tests/support/faulty_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

namespace cb::test {

namespace {

// -1: never fail. Otherwise the number of calls that still succeed.
std::atomic<std::int64_t> writes_left{-1};
std::atomic<std::int64_t> syncs_left{-1};
std::atomic<std::int64_t> failure_count{0};

sqlite3_vfs* real_vfs = nullptr;
sqlite3_vfs faulty_vfs{};
sqlite3_io_methods faulty_methods{};

// Our file: the header SQLite sees, followed by the real VFS's file.
struct FaultyFile {
    sqlite3_file base;
    sqlite3_file* real;
};

sqlite3_file* real_of(sqlite3_file* file) {
    return reinterpret_cast<FaultyFile*>(file)->real;
}

bool should_fail(std::atomic<std::int64_t>& left) {
    std::int64_t current = left.load();
    while (current > 0)
        if (left.compare_exchange_weak(current, current - 1))
            return false;
    if (current == 0) {
        ++failure_count;
        return true;
    }
    return false;
}

int x_close(sqlite3_file* f) {
    return real_of(f)->pMethods->xClose(real_of(f));
}
int x_read(sqlite3_file* f, void* buffer, int amount, sqlite3_int64 offset) {
    return real_of(f)->pMethods->xRead(real_of(f), buffer, amount, offset);
}
int x_write(sqlite3_file* f, const void* buffer, int amount, sqlite3_int64 offset) {
    if (should_fail(writes_left))
        return SQLITE_FULL;
    return real_of(f)->pMethods->xWrite(real_of(f), buffer, amount, offset);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int x_sync(sqlite3_file* f, int flags) {
    if (should_fail(syncs_left))
        return SQLITE_IOERR_FSYNC;
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int x_lock(sqlite3_file* f, int level) {
    return real_of(f)->pMethods->xLock(real_of(f), level);
}
int x_unlock(sqlite3_file* f, int level) {
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}
int x_check_reserved(sqlite3_file* f, int* out) {
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int x_sector_size(sqlite3_file* f) {
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}
int x_device_characteristics(sqlite3_file* f) {
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return real_of(f)->pMethods->xShmMap(real_of(f), page, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
    auto* ours = reinterpret_cast<FaultyFile*>(file);
    ours->real = reinterpret_cast<sqlite3_file*>(ours + 1);
    ours->base.pMethods = nullptr;
    const int rc = real_vfs->xOpen(real_vfs, name, ours->real, flags, out_flags);
    if (ours->real->pMethods != nullptr)
        ours->base.pMethods = &faulty_methods;
    return rc;
}

void register_once() {
    if (real_vfs != nullptr)
        return;
    real_vfs = sqlite3_vfs_find(nullptr);
    if (real_vfs == nullptr)
        throw std::runtime_error("no default SQLite VFS");
    faulty_vfs = *real_vfs;
    faulty_vfs.zName = FaultyVfs::name;
    faulty_vfs.szOsFile = static_cast<int>(sizeof(FaultyFile)) + real_vfs->szOsFile;
    faulty_vfs.xOpen = x_open;
    faulty_vfs.pNext = nullptr;
    // Version 2 methods: WAL needs the shared-memory calls; no memory-mapped I/O.
    faulty_methods.iVersion = 2;
    faulty_methods.xClose = x_close;
    faulty_methods.xRead = x_read;
    faulty_methods.xWrite = x_write;
    faulty_methods.xTruncate = x_truncate;
    faulty_methods.xSync = x_sync;
    faulty_methods.xFileSize = x_file_size;
    faulty_methods.xLock = x_lock;
    faulty_methods.xUnlock = x_unlock;
    faulty_methods.xCheckReservedLock = x_check_reserved;
    faulty_methods.xFileControl = x_file_control;
    faulty_methods.xSectorSize = x_sector_size;
    faulty_methods.xDeviceCharacteristics = x_device_characteristics;
    faulty_methods.xShmMap = x_shm_map;
    faulty_methods.xShmLock = x_shm_lock;
    faulty_methods.xShmBarrier = x_shm_barrier;
    faulty_methods.xShmUnmap = x_shm_unmap;
    if (sqlite3_vfs_register(&faulty_vfs, 0) != SQLITE_OK)
        throw std::runtime_error("cannot register the faulty VFS");
}

}  // namespace

FaultyVfs::FaultyVfs() {
    register_once();
    heal();
}

FaultyVfs::~FaultyVfs() {
    heal();
}

void FaultyVfs::fail_writes_after(std::int64_t successes) {
    writes_left = successes;
}
void FaultyVfs::fail_syncs_after(std::int64_t successes) {
    syncs_left = successes;
}
void FaultyVfs::heal() {
    writes_left = -1;
    syncs_left = -1;
}
std::int64_t FaultyVfs::failures() const {
    return failure_count.load();
}

}  // namespace cb::test
