// The real pcscd for integration tests, isolated from the system's, with
// vsmartcard's vpcd reader driver on ports the test chose; and the virtual
// card (carebridge-vcard) as a child process.
//
// Isolation (pcsc-lite 1.9.9, verified against its source and binary):
//
//   | what            | system pcscd                | test pcscd                                   |
//   |-----------------|-----------------------------|----------------------------------------------|
//   | client socket   | /run/pcscd/pcscd.comm       | WORK/pcscd.comm. The daemon ignores          |
//   |                 |                             | PCSCLITE_CSOCK_NAME (only libpcsclite reads  |
//   |                 |                             | it), so the harness binds the socket itself  |
//   |                 |                             | and hands it over by systemd socket          |
//   |                 |                             | activation (fd 3, LISTEN_FDS=1, LISTEN_PID); |
//   |                 |                             | clients get PCSCLITE_CSOCK_NAME=WORK/...     |
//   | reader config   | /etc/reader.conf.d/         | WORK/reader.conf.d/ (pcscd -c DIR)           |
//   | vpcd ports      | 35963, 35964 (0x8C7B + slot)| P, P+1: DEVICENAME /dev/null:P, free ports   |
//   |                 |                             | picked at start (vpcd listens on 0.0.0.0)    |
//   | pid file        | /run/pcscd/pcscd.pid        | the same file: pcscd 1.9.9 always writes it  |
//   |                 |                             | and removes it on exit (it is only read by   |
//   |                 |                             | `pcscd -H` and a non-socket-activated start) |
//
// Files under PcscSetup::work_dir:
//
//   path               what
//   -----------------  ---------------------------------------------------
//   pcscd.comm         the client socket
//   reader.conf.d/vpcd the reader configuration
//   pcscd-N.log        pcscd's log (-f -d -a: stdout) of its N-th start
//   pcscd-N.err        its stderr
//   vcard-N.log        stderr of the N-th virtual card
//
// Nothing sleeps: readiness is pcscd's "daemon ready." log line, a card is
// known inserted when pcscd logs its ATR, each awaited with inotify + pidfd.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace cb::test {

inline constexpr std::chrono::milliseconds pcsc_hang_limit{30'000};

// The pcscd directory of this test process. libpcsclite reads
// PCSCLITE_CSOCK_NAME once per process, so every case of one executable
// talks to a pcscd on the same socket path: the first call makes the
// directory and sets the variable. (CTest runs each case in its own process.)
const std::filesystem::path& pcscd_dir();

// The test PKI, cards included, made by scripts/test-pki in DIR/pki. Throws
// with the script's output if it fails.
std::filesystem::path make_pki(const std::filesystem::path& dir);

// The value of `key` in a .card description file; throws if absent.
std::string description_value(const std::filesystem::path& path, const std::string& key);

struct PcscSetup {
    std::filesystem::path work_dir{};  // must exist
    std::filesystem::path pcscd = "/usr/sbin/pcscd";
    std::filesystem::path vpcd_driver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
};

// pcscd as a child; see the table above.
class Pcscd {
public:
    // Picks two free ports, writes the configuration, starts pcscd and returns
    // once it is ready. Throws, with its log, if it does not start.
    explicit Pcscd(PcscSetup setup);
    ~Pcscd();  // stops (SIGTERM, then SIGKILL) a pcscd still running
    Pcscd(const Pcscd&) = delete;
    Pcscd& operator=(const Pcscd&) = delete;

    const std::filesystem::path& socket_path() const noexcept { return m_socket_path; }
    // PCSCLITE_CSOCK_NAME for clients (libpcsclite, scriptor, carebridged).
    std::map<std::string, std::string> client_environment() const;
    // "Virtual PCD 00 00", "Virtual PCD 00 01".
    static std::string reader_name(unsigned slot);
    // The port vpcd listens on for the card in `slot` (0 or 1).
    std::uint16_t vpcd_port(unsigned slot = 0) const noexcept { return static_cast<std::uint16_t>(m_port + slot); }
    pid_t pid() const noexcept;
    bool running();

    // SIGTERM and wait for exit 0; throws otherwise. No-op when not running.
    void stop();
    // SIGKILL and wait.
    void kill();
    // Stops pcscd if running and starts it again (same ports, new socket).
    void restart();

    // The log of every start so far, concatenated.
    std::string log() const;
    // The current start's log size: `from` for wait_for_log.
    std::size_t log_mark() const;
    // True once the current start's log contains `needle` at or after `from`;
    // false after `limit` or if pcscd exits first.
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds limit = pcsc_hang_limit,
                      std::size_t from = 0);

    // Runs scriptor (pcsc-tools) against `reader` with `apdus` (one hex APDU
    // per line), to completion.
    CommandResult scriptor(const std::string& reader, const std::vector<std::string>& apdus) const;

private:
    bool start();  // false when vpcd could not listen on the ports (taken)
    std::filesystem::path current_log() const;

    PcscSetup m_setup;
    std::filesystem::path m_socket_path;
    std::uint16_t m_port = 0;
    int m_starts = 0;
    mutable int m_scripts = 0;          // numbers scriptor's files
    std::unique_ptr<Process> m_daemon;  // pcscd (through the shell that execs it)
};

// One response as scriptor prints it: "< 90 00 : Normal processing."
struct ScriptorResponse {
    std::vector<std::uint8_t> data;
    std::uint16_t status = 0;
};
// The responses in scriptor's output, in order.
std::vector<ScriptorResponse> parse_scriptor_output(const std::string& output);

struct VirtualCardSetup {
    std::filesystem::path executable{};   // carebridge-vcard
    std::filesystem::path description{};  // a .card file (scripts/test-pki cards/)
    std::uint16_t port = 0;               // Pcscd::vpcd_port(slot)
    std::vector<std::string> extra{};     // --fault MODE, --after N, ...
    std::filesystem::path log{};          // its stderr
};

// carebridge-vcard as a child: inserted when started, removed when stopped.
class VirtualCardProcess {
public:
    explicit VirtualCardProcess(VirtualCardSetup setup);
    ~VirtualCardProcess();

    std::string log() const { return read_file(m_setup.log); }
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds limit = pcsc_hang_limit);
    // SIGUSR1: removes the card, or inserts it again.
    void toggle() { m_process.signal(SIGUSR1); }
    // SIGTERM (card removed) and the exit status.
    std::optional<ExitStatus> stop();
    Process& process() { return m_process; }

private:
    VirtualCardSetup m_setup;
    Process m_process;
};

}  // namespace cb::test
