// RFC 3339 timestamps as devices send them ("time" in a reading).
//
//   | part        | accepted                                                     |
//   |-------------|--------------------------------------------------------------|
//   | date        | YYYY-MM-DD, year 0001..9999, a real calendar day (leap years)|
//   | separator   | 'T' or 't' (RFC 3339 §5.6; a space is rejected)              |
//   | time        | hh:mm:ss, 00..23, 00..59, 00..59                             |
//   | fraction    | optional '.' and 1..9 digits; kept to the microsecond,       |
//   |             | further digits are truncated (not rounded)                   |
//   | offset      | 'Z', 'z', or +hh:mm / -hh:mm with hh 00..23, mm 00..59;      |
//   |             | "-00:00" (local offset unknown, RFC 3339 §4.3) reads as 0    |
//   | leap second | ss = 60 is rejected: std::chrono has no such instant, and no |
//   |             | device we reference sets its clock from a leap-second source |
//   | anything    | else (no offset, trailing text, ISO 8601 basic format,       |
//   |             | week dates) is rejected                                      |
#pragma once

#include <chrono>
#include <string_view>

#include "protocol/result.hpp"

namespace cb::devices {

using Microseconds = std::chrono::sys_time<std::chrono::microseconds>;

// A device's timestamp kept as given: the UTC instant it denotes and the
// offset it was written with (local time = utc + offset).
struct DeviceTime {
    Microseconds utc;
    std::chrono::minutes offset{0};

    friend bool operator==(const DeviceTime&, const DeviceTime&) = default;
};

// Parses `text` (table above). Fails with ErrorKind::invalid_input naming the
// part and the offset: `"2026-02-30T10:00:00Z": day 30 does not exist in 2026-02`.
Result<DeviceTime> parse_rfc3339(std::string_view text);

}  // namespace cb::devices
