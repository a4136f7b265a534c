#include "protocol/devices/timestamp.hpp"

#include <cstdint>
#include <string>

namespace cb::devices {

namespace {

class Cursor {
public:
    explicit Cursor(std::string_view text) : m_text(text) {}

    // Reads exactly `count` decimal digits; fails naming `part`.
    Result<int> digits(std::size_t count, std::string_view part) {
        int value = 0;
        for (std::size_t i = 0; i < count; ++i) {
            if (m_position >= m_text.size() || m_text[m_position] < '0' || m_text[m_position] > '9')
                return error("expected " + std::to_string(count) + " digits for " + std::string(part));
            value = value * 10 + (m_text[m_position] - '0');
            ++m_position;
        }
        return value;
    }

    Result<void> expect(char c, std::string_view part) {
        if (m_position >= m_text.size() || m_text[m_position] != c)
            return error(std::string("expected '") + c + "' " + std::string(part));
        ++m_position;
        return {};
    }

    bool at_end() const { return m_position == m_text.size(); }
    char peek() const { return m_position < m_text.size() ? m_text[m_position] : '\0'; }
    void advance() { ++m_position; }

    Error error(const std::string& what) const {
        return fail(ErrorKind::invalid_input, quoted() + ": " + what + " at " + std::to_string(m_position));
    }
    Error plain_error(const std::string& what) const { return fail(ErrorKind::invalid_input, quoted() + ": " + what); }

private:
    std::string quoted() const { return "\"" + std::string(m_text.substr(0, 40)) + "\""; }

    std::string_view m_text;
    std::size_t m_position = 0;
};

std::string two_digits(int value) {
    return (value < 10 ? "0" : "") + std::to_string(value);
}

}  // namespace

Result<DeviceTime> parse_rfc3339(std::string_view text) {
    using namespace std::chrono;
    Cursor in(text);
    const int year_number = CB_TRY(in.digits(4, "the year"));
    CB_TRY(in.expect('-', "after the year"));
    const int month_number = CB_TRY(in.digits(2, "the month"));
    CB_TRY(in.expect('-', "after the month"));
    const int day_number = CB_TRY(in.digits(2, "the day"));
    if (in.peek() != 'T' && in.peek() != 't')
        return in.error("expected 'T' between date and time");
    in.advance();
    const int hour = CB_TRY(in.digits(2, "the hour"));
    CB_TRY(in.expect(':', "after the hour"));
    const int minute = CB_TRY(in.digits(2, "the minute"));
    CB_TRY(in.expect(':', "after the minute"));
    const int second = CB_TRY(in.digits(2, "the second"));

    std::int64_t micros = 0;
    if (in.peek() == '.') {
        in.advance();
        std::size_t count = 0;
        while (in.peek() >= '0' && in.peek() <= '9') {
            if (count < 6)
                micros = micros * 10 + (in.peek() - '0');
            ++count;
            in.advance();
        }
        if (count == 0 || count > 9)
            return in.error("expected 1..9 digits of fraction");
        for (std::size_t i = count; i < 6; ++i)
            micros *= 10;
    }

    int offset_minutes = 0;
    if (in.peek() == 'Z' || in.peek() == 'z') {
        in.advance();
    } else if (in.peek() == '+' || in.peek() == '-') {
        const int sign = in.peek() == '-' ? -1 : 1;
        in.advance();
        const int offset_hour = CB_TRY(in.digits(2, "the offset hours"));
        CB_TRY(in.expect(':', "in the offset"));
        const int offset_minute = CB_TRY(in.digits(2, "the offset minutes"));
        if (offset_hour > 23 || offset_minute > 59)
            return in.plain_error("offset " + two_digits(offset_hour) + ":" + two_digits(offset_minute) +
                                  " is out of range (at most 23:59)");
        offset_minutes = sign * (offset_hour * 60 + offset_minute);
    } else {
        return in.error("expected 'Z' or an offset (+hh:mm, -hh:mm)");
    }
    if (!in.at_end())
        return in.error("unexpected text after the offset");

    if (year_number < 1)
        return in.plain_error("year 0000 is not accepted");
    if (month_number < 1 || month_number > 12)
        return in.plain_error("month " + two_digits(month_number) + " does not exist");
    const year_month_day date{year{year_number}, month{static_cast<unsigned>(month_number)},
                              day{static_cast<unsigned>(day_number)}};
    if (!date.ok())
        return in.plain_error("day " + two_digits(day_number) + " does not exist in " + std::to_string(year_number) +
                              "-" + two_digits(month_number));
    if (hour > 23 || minute > 59 || second > 59)
        return in.plain_error("time " + two_digits(hour) + ":" + two_digits(minute) + ":" + two_digits(second) +
                              " is out of range" + (second == 60 ? " (leap seconds are not accepted)" : ""));

    const Microseconds local = sys_days(date) + hours(hour) + minutes(minute) + seconds(second) + microseconds(micros);
    return DeviceTime{.utc = local - minutes(offset_minutes), .offset = minutes(offset_minutes)};
}

}  // namespace cb::devices
