#include "tests/support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace cb::test {

namespace {

ExitStatus decode(int raw) {
    if (WIFEXITED(raw))
        return {true, WEXITSTATUS(raw)};
    return {false, WTERMSIG(raw)};
}

}  // namespace

Process::Process(std::vector<std::string> argv, const std::filesystem::path& stdout_path,
                 const std::filesystem::path& stderr_path, const std::map<std::string, std::string>& environment,
                 const SpawnExtras& extras) {
    std::map<std::string, std::string> merged;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string text = *entry;
        const auto eq = text.find('=');
        const bool dropped = std::any_of(extras.unset_prefixes.begin(), extras.unset_prefixes.end(),
                                         [&](const std::string& prefix) { return text.rfind(prefix, 0) == 0; });
        if (eq != std::string::npos && !dropped)
            merged[text.substr(0, eq)] = text.substr(eq + 1);
    }
    for (const auto& [key, value] : environment)
        merged[key] = value;
    std::vector<std::string> env_strings;
    for (const auto& [key, value] : merged)
        env_strings.push_back(key + "=" + value);
    std::vector<char*> env_pointers;
    for (auto& s : env_strings)
        env_pointers.push_back(s.data());
    env_pointers.push_back(nullptr);
    std::vector<char*> arg_pointers;
    for (auto& s : argv)
        arg_pointers.push_back(s.data());
    arg_pointers.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    // dup2 clears FD_CLOEXEC on the copy: the descriptor survives the exec.
    for (const auto& [ours, theirs] : extras.descriptors)
        posix_spawn_file_actions_adddup2(&actions, ours, theirs);
    const int rc = posix_spawn(&m_pid, arg_pointers[0], &actions, nullptr, arg_pointers.data(), env_pointers.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

Process::~Process() {
    if (m_pid > 0 && !m_status) {
        ::kill(m_pid, SIGKILL);
        int raw = 0;
        ::waitpid(m_pid, &raw, 0);
    }
}

void Process::signal(int signal_number) const {
    if (!m_status)
        ::kill(m_pid, signal_number);
}

bool Process::running() {
    if (m_status)
        return false;
    int raw = 0;
    const pid_t done = ::waitpid(m_pid, &raw, WNOHANG);
    if (done == m_pid)
        m_status = decode(raw);
    return !m_status;
}

std::optional<ExitStatus> Process::wait_for_exit(std::chrono::milliseconds limit) {
    if (!running())
        return m_status;
    // A pidfd becomes readable when the child exits: we wake on the exit
    // itself, and `limit` only bounds a hang.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, m_pid, 0));
    if (pidfd < 0)
        throw std::runtime_error(std::string("pidfd_open: ") + std::strerror(errno));
    pollfd p{pidfd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(limit.count()));
    ::close(pidfd);
    if (ready <= 0)
        return std::nullopt;
    int raw = 0;
    if (::waitpid(m_pid, &raw, 0) == m_pid)
        m_status = decode(raw);
    return m_status;
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
    char pattern[] = "/tmp/carebridge-cmd-XXXXXX";
    const int fd = ::mkstemp(pattern);
    if (fd < 0)
        throw std::runtime_error("mkstemp failed");
    ::close(fd);
    const std::filesystem::path output_path = pattern;
    CommandResult result;
    {
        // stdout and stderr both append to the same file.
        Process child(argv, output_path, output_path);
        const auto status = child.wait_for_exit(limit);
        if (!status)
            throw std::runtime_error(argv[0] + " did not finish in time");
        result.status = *status;
    }
    result.output = read_file(output_path);
    std::filesystem::remove(output_path);
    return result;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace cb::test
