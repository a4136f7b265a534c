// What the benchmark drivers share: timing, printing, a process's memory.
// (A free loopback port: cb::test::pick_free_port, tests/support/broker.hpp.)
#pragma once

#include <sys/types.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace cb::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// `value` with `digits` decimals.
inline std::string fixed(double value, int digits) {
    std::ostringstream out;
    out.setf(std::ios::fixed);
    out.precision(digits);
    out << value;
    return out.str();
}

// One line of figures on stdout, flushed (progress of the build goes to stderr).
inline void say(const std::string& line) {
    std::cout << line << std::endl;
}

struct Memory {
    long rss_kib = 0;  // VmRSS
    long hwm_kib = 0;  // VmHWM: the peak
};

inline Memory memory_of(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    Memory memory;
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0)
            memory.rss_kib = std::stol(line.substr(6));
        else if (line.rfind("VmHWM:", 0) == 0)
            memory.hwm_kib = std::stol(line.substr(6));
    }
    return memory;
}

}  // namespace cb::bench
