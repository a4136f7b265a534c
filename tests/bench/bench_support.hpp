// What the benchmark drivers share: timing, printing, a process's memory.
// (A free loopback port: cb::test::pick_free_port, tests/support/broker.hpp.)
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

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

// The median of at least one value.
inline double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// "1.00, 2.50, 3.25": `values` with `digits` decimals.
inline std::string listed(const std::vector<double>& values, int digits) {
    std::string text;
    for (const double value : values)
        text += (text.empty() ? "" : ", ") + fixed(value, digits);
    return text;
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

// CPU time a process has used so far (all its threads), from /proc/PID/stat.
struct CpuTime {
    double user_s = 0;
    double system_s = 0;
    double total() const { return user_s + system_s; }
    CpuTime operator-(const CpuTime& earlier) const { return {user_s - earlier.user_s, system_s - earlier.system_s}; }
};

// utime and stime of a /proc/.../stat file (a process's or one thread's).
inline CpuTime cpu_time_in(const std::string& stat_path) {
    std::ifstream stat(stat_path);
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the command name, which is in parentheses and may hold spaces:
    // state(3) ... utime(14) stime(15), in clock ticks.
    const auto close = text.rfind(')');
    if (close == std::string::npos)
        return {};
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    CpuTime out;
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    for (int index = 3; fields >> field && index <= 15; ++index) {
        if (index == 14)
            out.user_s = std::stod(field) / tick;
        else if (index == 15)
            out.system_s = std::stod(field) / tick;
    }
    return out;
}

inline CpuTime cpu_time_of(pid_t pid) {
    return cpu_time_in("/proc/" + std::to_string(pid) + "/stat");
}

// CPU time per thread name (/proc/PID/task/*/comm; threads of the same name
// summed), with how many threads had that name.
struct ThreadCpu {
    CpuTime cpu;
    int threads = 0;
    long voluntary_switches = 0;    // the thread blocked (waited for work, I/O, a lock)
    long involuntary_switches = 0;  // the scheduler took the core from it (preempted)
};

// Adds a thread's context switches (/proc/.../task/TID/status) to `entry`.
inline void add_switches(const std::filesystem::path& status_path, ThreadCpu& entry) {
    std::ifstream status(status_path);
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
            entry.voluntary_switches += std::stol(line.substr(24));
        else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
            entry.involuntary_switches += std::stol(line.substr(27));
    }
}

inline std::map<std::string, ThreadCpu> cpu_by_thread(pid_t pid) {
    std::map<std::string, ThreadCpu> out;
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        std::getline(comm, name);
        const CpuTime cpu = cpu_time_in((task.path() / "stat").string());
        ThreadCpu& entry = out[name];
        entry.cpu.user_s += cpu.user_s;
        entry.cpu.system_s += cpu.system_s;
        add_switches(task.path() / "status", entry);
        ++entry.threads;
    }
    return out;
}

// The threads by name, the one that used the most CPU first.
inline std::vector<std::pair<std::string, ThreadCpu>> busiest_first(const std::map<std::string, ThreadCpu>& threads) {
    std::vector<std::pair<std::string, ThreadCpu>> sorted(threads.begin(), threads.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.second.cpu.total() > b.second.cpu.total(); });
    return sorted;
}

// "carebridged 26.1, cb-sign 33.9 (2 threads), cb-outbox 11.5": CPU µs per
// unit of work by thread name, busiest first; idle threads left out.
inline std::string describe_threads(const std::map<std::string, ThreadCpu>& threads, double count) {
    std::string out;
    for (const auto& [name, entry] : busiest_first(threads)) {
        const double per_unit = entry.cpu.total() * 1e6 / count;
        if (per_unit < 0.05)
            continue;
        if (!out.empty())
            out += ", ";
        out += name + " " + fixed(per_unit, 1) +
               (entry.threads > 1 ? " (" + std::to_string(entry.threads) + " threads)" : "");
    }
    return out;
}

// "carebridged 1.20 + 0.05, cb-sign 0.30 + 0.90": context switches per unit of
// work by thread name, voluntary (blocked) + involuntary (preempted), in the
// order of describe_threads; idle threads left out. On a virtual machine
// each switch costs microseconds of kernel time.
inline std::string describe_switches(const std::map<std::string, ThreadCpu>& threads, double count) {
    std::string out;
    for (const auto& [name, entry] : busiest_first(threads)) {
        if (entry.cpu.total() * 1e6 / count < 0.05)
            continue;
        out += (out.empty() ? "" : ", ") + name + " " +
               fixed(static_cast<double>(entry.voluntary_switches) / count, 2) + " + " +
               fixed(static_cast<double>(entry.involuntary_switches) / count, 2);
    }
    return out;
}

}  // namespace cb::bench
