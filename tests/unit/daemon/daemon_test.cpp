// The daemon's lifecycle driven through its own io_context: signals are
// raised in-process and handled by the loop, step by step, with a fake
// service manager recording what was announced.
#include "daemon/daemon.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "tests/support/fake_service_manager.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

// Runs handlers until `done` holds; each handler is an event the daemon reacts to.
template <typename Predicate>
void run_until(boost::asio::io_context& io, Predicate done) {
    while (!done() && io.run_one() > 0) {
    }
    REQUIRE(done());
}

struct Fixture {
    cb::test::TempDir dir;
    int log_fds[2] = {-1, -1};
    boost::asio::io_context io;
    cb::test::FakeServiceManager manager;

    Fixture() { REQUIRE(::pipe2(log_fds, O_NONBLOCK) == 0); }
    ~Fixture() {
        ::close(log_fds[0]);
        ::close(log_fds[1]);
    }
    std::string drain_log() const {
        std::string out;
        char buffer[4096];
        for (ssize_t n; (n = ::read(log_fds[0], buffer, sizeof buffer)) > 0;)
            out.append(buffer, static_cast<std::size_t>(n));
        return out;
    }
    cb::Config config() const {
        cb::Config c;
        c.daemon.state_dir = dir / "state";
        return c;
    }
};

}  // namespace

TEST_CASE("start announces readiness and creates the state directory") {
    Fixture f;
    cb::Logger logger(cb::LogLevel::info, f.log_fds[1]);
    cb::Daemon daemon(f.io, logger, f.manager, f.config(), std::nullopt);
    REQUIRE(daemon.start());
    CHECK(std::filesystem::is_directory(f.dir / "state"));
    CHECK((std::filesystem::status(f.dir / "state").permissions() & std::filesystem::perms::all) ==
          std::filesystem::perms::owner_all);
    REQUIRE(f.manager.events.size() == 1);
    CHECK(f.manager.events[0] == "READY running (embedded defaults)");
    std::raise(SIGTERM);
    f.io.run();
    CHECK(daemon.exit_code() == 0);
}

TEST_CASE("start fails with a clear error when the state directory cannot be made") {
    Fixture f;
    cb::Logger logger(cb::LogLevel::info, f.log_fds[1]);
    cb::Config c = f.config();
    const auto blocker = f.dir.write("file", "x");
    c.daemon.state_dir = blocker;
    cb::Daemon daemon(f.io, logger, f.manager, c, std::nullopt);
    const auto started = daemon.start();
    REQUIRE_FALSE(started);
    CHECK(started.error().message() == "state directory " + blocker.string() + ": not a directory");
    CHECK(f.manager.events.empty());
}

TEST_CASE("an existing state directory others could write to, or another user's, is refused") {
    Fixture f;
    cb::Logger logger(cb::LogLevel::info, f.log_fds[1]);
    const auto state = f.dir / "state";
    std::filesystem::create_directory(state);
    std::filesystem::permissions(state, std::filesystem::perms::owner_all | std::filesystem::perms::group_all);
    {
        cb::Daemon daemon(f.io, logger, f.manager, f.config(), std::nullopt);
        const auto started = daemon.start();
        REQUIRE_FALSE(started);
        CHECK(started.error().message() ==
              "state directory " + state.string() + ": mode 0770 lets other users replace the store; chmod 700 it");
    }
    // Readable by the group is the operator's choice (readings.db itself is 0600).
    std::filesystem::permissions(state, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                            std::filesystem::perms::group_exec);
    if (::geteuid() == 0) {
        REQUIRE(::chown(state.c_str(), 65534, 65534) == 0);
        cb::Daemon daemon(f.io, logger, f.manager, f.config(), std::nullopt);
        const auto started = daemon.start();
        REQUIRE_FALSE(started);
        CHECK(started.error().message() == "state directory " + state.string() +
                                               ": owned by uid 65534, neither the user carebridged runs as (uid 0) "
                                               "nor root; chown it");
        REQUIRE(::chown(state.c_str(), 0, 0) == 0);
    } else {
        WARN("not root: cannot give the directory to another user; the owner check is not exercised");
    }
    CHECK(f.manager.events.empty());
    cb::Daemon daemon(f.io, logger, f.manager, f.config(), std::nullopt);
    REQUIRE(daemon.start());
    std::raise(SIGTERM);
    f.io.run();
    CHECK(daemon.exit_code() == 0);
}

TEST_CASE("SIGHUP with a broken file keeps the running config, a valid one applies") {
    Fixture f;
    cb::Logger logger(cb::LogLevel::info, f.log_fds[1]);
    const std::string state = (f.dir / "state").string();
    const auto path = f.dir.write("c.toml", "[daemon]\nstate_dir = \"" + state + "\"\n");
    auto initial = cb::load_config_file(path);
    REQUIRE(initial.ok());
    cb::Daemon daemon(f.io, logger, f.manager, *initial.config, path);
    REQUIRE(daemon.start());

    f.dir.write("c.toml", "[daemon]\nstate_dir = \"" + state + "\"\nlog_level = 3\n");
    std::raise(SIGHUP);
    run_until(f.io, [&] { return f.manager.events.size() == 3; });
    CHECK(f.manager.events[1] == "RELOADING");
    CHECK(f.manager.events[2].rfind("READY running; reload rejected: 1 problem(s) in ", 0) == 0);
    CHECK(daemon.config().daemon.log_level == cb::LogLevel::info);
    const std::string log = f.drain_log();
    CHECK_THAT(log, Catch::Contains("<3>config: " + path.string() + ":3: daemon.log_level: expected one of"));
    CHECK_THAT(log, Catch::Contains("keeping the running configuration"));

    f.dir.write("c.toml", "[daemon]\nstate_dir = \"" + state + "\"\nlog_level = \"debug\"\n");
    std::raise(SIGHUP);
    run_until(f.io, [&] { return f.manager.events.size() == 5; });
    CHECK(f.manager.events[4] == "READY running (config " + path.string() + "); configuration reloaded");
    CHECK(daemon.config().daemon.log_level == cb::LogLevel::debug);
    CHECK(logger.threshold() == cb::LogLevel::debug);

    std::raise(SIGINT);
    f.io.run();
    CHECK(f.manager.events.back() == "STOPPING shutting down (SIGINT)");
    CHECK(daemon.exit_code() == 0);
}

TEST_CASE("a state_dir change at reload waits for a restart") {
    Fixture f;
    cb::Logger logger(cb::LogLevel::info, f.log_fds[1]);
    const auto path = f.dir.write("c.toml", "[daemon]\nstate_dir = \"" + (f.dir / "a").string() + "\"\n");
    cb::Daemon daemon(f.io, logger, f.manager, *cb::load_config_file(path).config, path);
    REQUIRE(daemon.start());
    f.dir.write("c.toml", "[daemon]\nstate_dir = \"" + (f.dir / "b").string() + "\"\n");
    std::raise(SIGHUP);
    run_until(f.io, [&] { return f.manager.events.size() == 3; });
    CHECK(daemon.config().daemon.state_dir == f.dir / "a");
    CHECK_THAT(f.drain_log(), Catch::Contains("takes effect at restart"));
    std::raise(SIGTERM);
    f.io.run();
}

TEST_CASE("the watchdog is pinged from the loop when the manager asks for it") {
    Fixture f;
    cb::Logger logger(cb::LogLevel::info, f.log_fds[1]);
    f.manager.interval = std::chrono::microseconds(2000);
    cb::Daemon daemon(f.io, logger, f.manager, f.config(), std::nullopt);
    REQUIRE(daemon.start());
    const auto pings = [&] { return std::count(f.manager.events.begin(), f.manager.events.end(), "WATCHDOG"); };
    run_until(f.io, [&] { return pings() >= 3; });
    std::raise(SIGTERM);
    f.io.run();
    CHECK(daemon.exit_code() == 0);
}
