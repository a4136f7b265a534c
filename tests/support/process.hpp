// A child process for integration tests: spawned with extra environment,
// stdout and stderr captured to files, signalled, and reaped with a bound.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cb::test {

struct ExitStatus {
    bool exited = false;  // false: killed by a signal
    int code = 0;         // exit code, or the signal number
};

// What a child gets beyond argv, stdout/stderr and the extra environment.
struct SpawnExtras {
    // Inherited variables whose name starts with one of these are dropped
    // (e.g. "LISTEN_", so a socket-activated child sees only what we pass).
    std::vector<std::string> unset_prefixes;
    // Descriptors passed to the child: {ours, the number it gets}.
    std::vector<std::pair<int, int>> descriptors;
};

class Process {
public:
    // Starts argv[0] (a path) with the current environment plus `environment`;
    // stdout and stderr go to the given files (truncated). Throws on failure.
    Process(std::vector<std::string> argv, const std::filesystem::path& stdout_path,
            const std::filesystem::path& stderr_path, const std::map<std::string, std::string>& environment = {},
            const SpawnExtras& extras = {});
    ~Process();  // kills (SIGKILL) and reaps a child still running
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const noexcept { return m_pid; }
    void signal(int signal_number) const;
    bool running();

    // Waits for the child to exit, at most `limit`; nullopt if it is still running.
    std::optional<ExitStatus> wait_for_exit(std::chrono::milliseconds limit);

private:
    pid_t m_pid = -1;
    std::optional<ExitStatus> m_status;
};

// Runs a command to completion and returns its exit status and output
// (stdout and stderr merged). Throws if it cannot start or outlives `limit`.
struct CommandResult {
    ExitStatus status;
    std::string output;
};
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds limit = std::chrono::seconds(60));

std::string read_file(const std::filesystem::path& path);

}  // namespace cb::test
