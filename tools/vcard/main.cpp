// carebridge-vcard: a virtual card for vsmartcard's vpcd reader driver.
//
//   carebridge-vcard --card FILE [--host 127.0.0.1] [--port 35963] [--once]
//                    [--fault MODE [--after N] [--delay-ms D]]
//
// The card is a TCP client of vpcd (pcscd's reader driver listens). vpcd
// protocol (vsmartcard's vpcd.h), every message in both directions:
//
//   | field   | bytes  | meaning                                                    |
//   |---------|--------|------------------------------------------------------------|
//   | length  | 2      | big-endian length of the payload                           |
//   | payload | length | from vpcd, 1 byte: control (table below); longer: a        |
//   |         |        | command APDU, answered with one response APDU message       |
//
//   | control | meaning   | answer                                        |
//   |---------|-----------|-----------------------------------------------|
//   | 00      | power off | none                                          |
//   | 01      | power on  | none (selection and security status reset)    |
//   | 02      | reset     | none (selection and security status reset)    |
//   | 04      | get ATR   | the ATR as one message                        |
//
// Insertion and removal: connected to vpcd = card inserted; socket closed =
// card removed. SIGUSR1 toggles (removes, or inserts again); SIGTERM and
// SIGINT remove the card and exit 0. When vpcd closes the connection (pcscd
// stopped), the card connects again, unless --once (then it exits 0).
//
// stderr carries one line per event ("inserted", "ATR", "removed", and
// "apdu INS 20 -> 63C2" per APDU: instruction and status word only, never
// data, since PIN blocks and identities pass here).
//
// Exit status: 0 on SIGTERM/SIGINT/--once end/remove-mid-sequence, 1 on a
// runtime failure (vpcd unreachable for 30 s, protocol error), 2 on usage or
// description errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol/hex.hpp"
#include "tools/vcard/description.hpp"
#include "tools/vcard/virtual_card.hpp"

namespace {

using cb::vcard::Bytes;
using cb::vcard::Fault;

constexpr std::chrono::milliseconds connect_limit{30'000};

struct Options {
    std::string card_path;
    std::string host = "127.0.0.1";
    std::uint16_t port = 35963;
    bool once = false;
    Fault fault = Fault::none;
    std::size_t after = 3;
    std::chrono::milliseconds delay{200};
};

// A command-line error: main prints it with the usage and exits 2.
struct UsageError {
    std::string message;
};

[[noreturn]] void usage(const std::string& message) {
    throw UsageError{message};
}

void print_usage(const std::string& message) {
    std::cerr << "carebridge-vcard: " << message << "\n"
              << "usage: carebridge-vcard --card FILE [--host 127.0.0.1] [--port 35963] [--once]\n"
              << "                        [--fault MODE [--after N] [--delay-ms D]]\n"
              << "fault modes: remove-mid-sequence slow malformed-tlv-overlong malformed-tlv-truncated\n"
              << "             malformed-tlv-deep endless-61xx wrong-certificate wrong-signature blocked-pin\n";
}

unsigned long parse_number(const std::string& option, const std::string& text, unsigned long max) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 9)
        usage(option + ": expected a number, got '" + text + "'");
    const unsigned long value = std::stoul(text);
    if (value > max)
        usage(option + ": " + text + " exceeds " + std::to_string(max));
    return value;
}

Options parse_options(int argc, char** argv) {
    Options options;
    std::vector<std::string> arguments(argv + 1, argv + argc);
    for (std::size_t at = 0; at < arguments.size(); ++at) {
        const auto& option = arguments[at];
        const auto value = [&]() -> std::string {
            if (at + 1 >= arguments.size())
                usage(option + ": missing value");
            return arguments[++at];
        };
        if (option == "--card") {
            options.card_path = value();
        } else if (option == "--host") {
            options.host = value();
        } else if (option == "--port") {
            options.port = static_cast<std::uint16_t>(parse_number(option, value(), 65535));
        } else if (option == "--once") {
            options.once = true;
        } else if (option == "--fault") {
            auto fault = cb::vcard::parse_fault(value());
            if (!fault)
                usage(fault.error().message());
            options.fault = *fault;
        } else if (option == "--after") {
            options.after = parse_number(option, value(), 1'000'000);
        } else if (option == "--delay-ms") {
            options.delay = std::chrono::milliseconds(parse_number(option, value(), 600'000));
        } else {
            usage("unknown option '" + option + "'");
        }
    }
    if (options.card_path.empty())
        usage("--card is required");
    in_addr ignored{};
    if (::inet_pton(AF_INET, options.host.c_str(), &ignored) != 1)
        usage("--host " + options.host + ": not an IPv4 address");
    return options;
}

std::optional<std::string> read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// A certificate file, PEM or DER, as DER.
cb::Result<Bytes> load_certificate(const std::filesystem::path& path) {
    const auto text = read_text(path);
    if (!text)
        return cb::fail(cb::ErrorKind::io, path.string() + ": cannot read the card certificate");
    if (text->find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        return Bytes(text->begin(), text->end());
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())),
                                                  &BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> certificate(
        bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
    if (!certificate)
        return cb::fail(cb::ErrorKind::invalid_input, path.string() + ": not a PEM certificate");
    const int size = i2d_X509(certificate.get(), nullptr);
    if (size <= 0)
        return cb::fail(cb::ErrorKind::invalid_input, path.string() + ": cannot encode as DER");
    Bytes der(static_cast<std::size_t>(size));
    unsigned char* out = der.data();
    i2d_X509(certificate.get(), &out);
    return der;
}

void log_line(const std::string& text) {
    std::cerr << "carebridge-vcard: " << text << std::endl;
}

// Writes all of `bytes`; false if the peer is gone.
bool write_all(int fd, const std::uint8_t* bytes, std::size_t size) {
    while (size > 0) {
        const ssize_t written = ::send(fd, bytes, size, MSG_NOSIGNAL);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return false;
        bytes += written;
        size -= static_cast<std::size_t>(written);
    }
    return true;
}

// Reads exactly `size` bytes; false on end of stream or error.
bool read_all(int fd, std::uint8_t* bytes, std::size_t size) {
    while (size > 0) {
        const ssize_t got = ::recv(fd, bytes, size, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        bytes += got;
        size -= static_cast<std::size_t>(got);
    }
    return true;
}

bool send_message(int fd, const Bytes& payload) {
    if (payload.size() > 0xFFFF)
        return false;
    const std::uint8_t header[2] = {static_cast<std::uint8_t>(payload.size() >> 8),
                                    static_cast<std::uint8_t>(payload.size() & 0xFF)};
    return write_all(fd, header, sizeof header) && write_all(fd, payload.data(), payload.size());
}

// Connects to vpcd, retrying while it is not listening yet (pcscd loads the
// driver after it starts). -1 if `signal_fd` reports a signal first or the
// limit passes; the signal is left for the caller to read.
int connect_to_vpcd(const Options& options, int signal_fd) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(options.port);
    ::inet_pton(AF_INET, options.host.c_str(), &address.sin_addr);  // checked by parse_options
    const auto deadline = std::chrono::steady_clock::now() + connect_limit;
    std::chrono::milliseconds backoff{5};
    while (std::chrono::steady_clock::now() < deadline) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        ::close(fd);
        pollfd signal_poll{signal_fd, POLLIN, 0};
        if (::poll(&signal_poll, 1, static_cast<int>(backoff.count())) > 0)
            return -1;
        backoff = std::min(backoff * 2, std::chrono::milliseconds{200});
    }
    return -1;
}

enum class SessionEnd { vpcd_closed, signal_received, removed_by_fault, protocol_error };

SessionEnd serve(int fd, int signal_fd, cb::vcard::VirtualCard& card, const Options& options) {
    std::size_t apdus = 0;
    bool atr_sent = false;
    std::vector<std::uint8_t> payload;
    for (;;) {
        std::array<pollfd, 2> fds{pollfd{fd, POLLIN, 0}, pollfd{signal_fd, POLLIN, 0}};
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR)
                continue;
            return SessionEnd::protocol_error;
        }
        if ((fds[1].revents & POLLIN) != 0)
            return SessionEnd::signal_received;
        std::uint8_t header[2];
        if (!read_all(fd, header, sizeof header))
            return SessionEnd::vpcd_closed;
        payload.resize((std::size_t{header[0]} << 8) | header[1]);
        if (!read_all(fd, payload.data(), payload.size()))
            return SessionEnd::vpcd_closed;
        if (payload.size() == 1) {
            switch (payload[0]) {
                case 0x00: log_line("power off"); break;
                case 0x01:
                    card.reset();
                    log_line("power on");
                    break;
                case 0x02:
                    card.reset();
                    log_line("reset");
                    break;
                case 0x04:
                    if (!send_message(fd, cb::vcard::VirtualCard::answer_to_reset()))
                        return SessionEnd::vpcd_closed;
                    // vpcd asks for the ATR on every presence poll: say it once.
                    if (!atr_sent)
                        log_line("ATR");
                    atr_sent = true;
                    break;
                default: log_line("unknown control byte " + cb::to_hex(payload)); break;
            }
            continue;
        }
        if (payload.empty()) {
            log_line("empty message from vpcd");
            return SessionEnd::protocol_error;
        }
        if (options.fault == Fault::remove_mid_sequence && apdus >= options.after)
            return SessionEnd::removed_by_fault;
        if (options.fault == Fault::slow)
            std::this_thread::sleep_for(options.delay);
        const Bytes response = card.respond(payload);
        ++apdus;
        // Logged before the answer leaves, so whoever got the answer finds the line.
        const std::uint8_t ins = payload[1];
        log_line("apdu INS " + cb::to_hex(std::span<const std::uint8_t>(&ins, 1)) + " -> " +
                 cb::to_hex(std::span<const std::uint8_t>(response).last(2)));
        if (!send_message(fd, response))
            return SessionEnd::vpcd_closed;
    }
}

int run(const Options& options) {
    const std::filesystem::path card_path = options.card_path;
    const auto text = read_text(card_path);
    if (!text) {
        log_line(options.card_path + ": cannot read the card description");
        return 2;
    }
    auto description = cb::vcard::parse_description(*text, options.card_path, card_path.parent_path());
    if (!description) {
        log_line(description.error().message());
        return 2;
    }
    auto certificate_path = description->certificate;
    auto key_path = description->key;
    if (options.fault == Fault::wrong_certificate) {
        if (!description->wrong_certificate) {
            log_line(options.card_path + ": fault wrong-certificate needs 'wrong_certificate'");
            return 2;
        }
        certificate_path = *description->wrong_certificate;
    }
    if (options.fault == Fault::wrong_signature) {
        if (!description->wrong_key) {
            log_line(options.card_path + ": fault wrong-signature needs 'wrong_key'");
            return 2;
        }
        key_path = *description->wrong_key;
    }
    cb::vcard::CardContents contents;
    contents.profile = description->profile;
    auto certificate = load_certificate(certificate_path);
    if (!certificate) {
        log_line(certificate.error().message());
        return 2;
    }
    contents.certificate = std::move(*certificate);
    if (contents.profile == cb::vcard::Profile::patient) {
        auto identity = cb::vcard::build_identity_file(description->patient);
        if (!identity) {
            log_line(identity.error().message());
            return 2;
        }
        contents.identity_file = std::move(*identity);
    }
    contents.pin = description->pin;
    contents.pin_tries = description->tries;
    auto signer = cb::vcard::KeySigner::from_pem_file(key_path.string());
    if (!signer) {
        log_line(signer.error().message());
        return 2;
    }
    cb::vcard::VirtualCard card(std::move(contents), **signer, options.fault);

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
    if (signal_fd < 0) {
        log_line("signalfd: " + cb::system_error_text(errno));
        return 1;
    }
    const auto take_signal = [&]() {
        signalfd_siginfo info{};
        if (::read(signal_fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info))
            return 0;
        return static_cast<int>(info.ssi_signo);
    };

    log_line(std::string(cb::vcard::to_string(description->profile)) + " card, fault " +
             cb::vcard::to_string(options.fault));
    for (;;) {
        const int fd = connect_to_vpcd(options, signal_fd);
        if (fd < 0) {
            const int signal_number = take_signal();
            if (signal_number == SIGTERM || signal_number == SIGINT)
                return 0;
            if (signal_number == SIGUSR1)
                continue;  // a toggle while not inserted: try again
            log_line("vpcd at " + options.host + ":" + std::to_string(options.port) + " unreachable");
            return 1;
        }
        card.reset();
        log_line("inserted (connected to vpcd at " + options.host + ":" + std::to_string(options.port) + ")");
        const SessionEnd end = serve(fd, signal_fd, card, options);
        ::close(fd);
        log_line("removed");
        switch (end) {
            case SessionEnd::removed_by_fault: return 0;
            case SessionEnd::protocol_error: return 1;
            case SessionEnd::vpcd_closed:
                if (options.once)
                    return 0;
                continue;
            case SessionEnd::signal_received: {
                const int signal_number = take_signal();
                if (signal_number != SIGUSR1)
                    return 0;
                // Removed until the next SIGUSR1 (or SIGTERM).
                const int next = take_signal();
                if (next != SIGUSR1)
                    return 0;
                continue;
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    try {
        options = parse_options(argc, argv);
    } catch (const UsageError& error) {
        print_usage(error.message);
        return 2;
    }
    return run(options);
}
