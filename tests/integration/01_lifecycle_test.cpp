// 01 lifecycle: carebridged as systemd runs it — readiness through a real
// NOTIFY_SOCKET, reload on SIGHUP (rejected when broken), graceful SIGTERM.
#include <catch2/catch.hpp>
#include <csignal>

#include "tests/support/notify_socket.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace std::chrono_literals;
using cb::test::NotifySocket;
using cb::test::Process;
using cb::test::read_file;
using cb::test::TempDir;

namespace {

// Generous bounds: they only turn a hang into a failure (sanitized builds on
// a loaded 2-core machine start slowly). Nothing waits for them to pass.
constexpr auto start_limit = 30s;
constexpr auto event_limit = 30s;

std::string config_text(const TempDir& dir, const std::string& extra = "") {
    return "[daemon]\nstate_dir = \"" + (dir / "state").string() + "\"\n" + extra;
}

}  // namespace

TEST_CASE("01 lifecycle: READY, rejected reload, good reload, SIGTERM exits 0 within 5 s") {
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    const auto config = dir.write("carebridged.toml", config_text(dir));
    const auto log_path = dir / "stderr.log";
    Process daemon({CAREBRIDGED_PATH, "--config", config.string()}, dir / "stdout.log", log_path,
                   {{"NOTIFY_SOCKET", notify.path().string()}});

    std::string seen;
    const auto ready = notify.wait_for("READY=1", start_limit, &seen);
    INFO("notifications: " << seen << "\nstderr: " << read_file(log_path));
    REQUIRE(ready);
    CHECK_THAT(*ready, Catch::Contains("STATUS=running (config " + config.string() + ")"));
    CHECK(std::filesystem::is_directory(dir / "state"));

    // A broken file: the daemon says why, keeps running on the old config.
    dir.write("carebridged.toml", config_text(dir, "log_level = 42\n[mqtt]\nport = 70000\n"));
    daemon.signal(SIGHUP);
    const auto rejected = notify.wait_for("READY=1", event_limit, &seen);
    REQUIRE(rejected);
    CHECK_THAT(*rejected, Catch::Contains("reload rejected: 2 problem(s)"));
    CHECK_THAT(seen, Catch::Contains("RELOADING=1"));
    REQUIRE(daemon.running());
    const std::string log_after_rejection = read_file(log_path);
    CHECK_THAT(log_after_rejection,
               Catch::Contains("<3>config: " + config.string() + ":3: daemon.log_level: expected one of"));
    CHECK_THAT(log_after_rejection, Catch::Contains("<3>config: " + config.string() +
                                                    ":5: mqtt.port: expected an integer in 1..65535, got 70000"));

    // A good file is applied.
    dir.write("carebridged.toml", config_text(dir, "log_level = \"debug\"\n"));
    daemon.signal(SIGHUP);
    const auto reloaded = notify.wait_for("READY=1", event_limit, &seen);
    REQUIRE(reloaded);
    CHECK_THAT(*reloaded, Catch::Contains("configuration reloaded"));

    daemon.signal(SIGTERM);
    CHECK(notify.wait_for("STOPPING=1", event_limit, &seen));
    const auto status = daemon.wait_for_exit(5s);
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
    const std::string log = read_file(log_path);
    CHECK_THAT(log, Catch::Contains("<6>daemon: SIGTERM: shutting down"));
    CHECK_THAT(log, Catch::Contains("<6>daemon: stopped"));
}

TEST_CASE("01 lifecycle: SIGINT stops as gracefully as SIGTERM") {
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    const auto config = dir.write("c.toml", config_text(dir));
    Process daemon({CAREBRIDGED_PATH, "--config", config.string()}, dir / "out", dir / "err",
                   {{"NOTIFY_SOCKET", notify.path().string()}});
    REQUIRE(notify.wait_for("READY=1", start_limit));
    daemon.signal(SIGINT);
    const auto status = daemon.wait_for_exit(5s);
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
}

TEST_CASE("01 lifecycle: the watchdog is fed when systemd asks for it") {
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    const auto config = dir.write("c.toml", config_text(dir));
    // WATCHDOG_PID must name the daemon itself; "$MAINPID" is unknown before
    // spawning, so leave it unset: sd_watchdog_enabled then trusts WATCHDOG_USEC.
    Process daemon({CAREBRIDGED_PATH, "--config", config.string()}, dir / "out", dir / "err",
                   {{"NOTIFY_SOCKET", notify.path().string()}, {"WATCHDOG_USEC", "200000"}});
    REQUIRE(notify.wait_for("READY=1", start_limit));
    CHECK(notify.wait_for("WATCHDOG=1", event_limit));
    CHECK(notify.wait_for("WATCHDOG=1", event_limit));
    daemon.signal(SIGTERM);
    const auto status = daemon.wait_for_exit(5s);
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("01 lifecycle: embedded defaults run without a file, in the working directory") {
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    // posix_spawn has no chdir; start through the shell, still exec'ing the daemon.
    Process daemon({"/bin/sh", "-c", "cd '" + dir.path().string() + "' && exec " CAREBRIDGED_PATH}, dir / "out",
                   dir / "err", {{"NOTIFY_SOCKET", notify.path().string()}});
    const auto ready = notify.wait_for("READY=1", start_limit);
    REQUIRE(ready);
    CHECK_THAT(*ready, Catch::Contains("running (embedded defaults)"));
    CHECK(std::filesystem::is_directory(dir / "carebridge-state"));
    daemon.signal(SIGHUP);  // nothing to reload: logged, still running
    daemon.signal(SIGTERM);
    const auto status = daemon.wait_for_exit(5s);
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("01 lifecycle: an unusable state directory stops the start with a clear error") {
    TempDir dir;
    const auto blocker = dir.write("not-a-dir", "x");
    const auto config = dir.write("c.toml", "[daemon]\nstate_dir = \"" + blocker.string() + "\"\n");
    Process daemon({CAREBRIDGED_PATH, "--config", config.string()}, dir / "out", dir / "err");
    const auto status = daemon.wait_for_exit(start_limit);
    REQUIRE(status);
    CHECK(status->code == 1);
    CHECK_THAT(read_file(dir / "err"),
               Catch::Contains("<3>daemon: not starting: state directory " + blocker.string() + ": not a directory"));
}
