#include "daemon/log.hpp"

#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <string>

TEST_CASE("log lines carry the syslog priority prefix") {
    CHECK(cb::Logger::format_line(cb::LogLevel::error, "daemon", "boom") == "<3>daemon: boom");
    CHECK(cb::Logger::format_line(cb::LogLevel::info, "config", "ok") == "<6>config: ok");
    CHECK(cb::Logger::format_line(cb::LogLevel::debug, "card", "x") == "<7>card: x");
}

TEST_CASE("one event stays one line: control characters are escaped") {
    CHECK(cb::Logger::format_line(cb::LogLevel::warning, "mqtt", "a\nb\r\tc\\d\x01") ==
          "<4>mqtt: a\\nb\\r\\tc\\\\d\\x01");
    // A forged priority on a second line is neutralised.
    CHECK(cb::Logger::format_line(cb::LogLevel::info, "x", "ok\n<0>fake") == "<6>x: ok\\n<0>fake");
}

TEST_CASE("the threshold filters lines") {
    std::array<int, 2> fds{};
    REQUIRE(::pipe(fds.data()) == 0);
    cb::Logger logger(cb::LogLevel::notice, fds[1]);
    logger.info("x", "hidden");
    logger.notice("x", "shown");
    logger.set_threshold(cb::LogLevel::debug);
    logger.debug("x", "now shown");
    ::close(fds[1]);
    std::string out;
    std::array<char, 256> buffer{};
    for (ssize_t n; (n = ::read(fds[0], buffer.data(), buffer.size())) > 0;)
        out.append(buffer.data(), static_cast<std::size_t>(n));
    ::close(fds[0]);
    CHECK(out == "<5>x: shown\n<7>x: now shown\n");
}

TEST_CASE("log level names parse and print") {
    CHECK(cb::parse_log_level("warning") == cb::LogLevel::warning);
    CHECK_FALSE(cb::parse_log_level("WARN").has_value());
    CHECK(cb::to_string(cb::LogLevel::notice) == "notice");
}

TEST_CASE("log: a card's patient reference is masked, a catalog's reference is shown") {
    CHECK(cb::patient_for_log("280017512345610") == "28001\u2026");
    CHECK(cb::patient_for_log("2800175A2345610") == "28001\u2026");  // Corsica
    CHECK(cb::patient_for_log("patient-1") == "patient-1");
    CHECK(cb::patient_for_log("28001751234561") == "28001751234561");  // not a card's reference (14)
}
