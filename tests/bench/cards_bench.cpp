// bench-cards-driver: the card benchmark behind bench/cards (bench/README.md).
// Everything runs in a temporary directory: scripts/test-pki (cards), an
// isolated pcscd with vpcd, carebridge-vcard with the patient card.
//
//   phase     what happens (N rounds each)                          measured
//   --------  ----------------------------------------------------  --------------------------------------
//   ours      carebridge-vcard started (the card is inserted);      t_seen -> PatientPresent ("card work"),
//             our ReaderMonitor sees card_inserted (t_seen); the    t_insert -> PatientPresent, and the
//             CardSessions identify it: read_patient (SELECTs, EF   APDUs read_patient used
//             2001, EF C000, INTERNAL AUTHENTICATE) + chain and
//             signature verification; PatientPresent is published
//             on the io_context (t_present); card removed
//   scripted  the same card started; the same monitor sees it       scriptor's run (spawn -> exit) and
//             (t_seen, the sessions are not fed); scriptor runs     t_insert -> scriptor's exit; its APDUs
//             the minimal sequence for the same data: SELECT AID,
//             SELECT EF 2001, READ BINARY, SELECT EF C000, READ
//             BINARY with exact lengths, INTERNAL AUTHENTICATE;
//             its exit is waited with a pidfd; card removed
//   fixed     scriptor with one APDU (SELECT AID), N times: its     scriptor's fixed cost (perl start,
//             start-up and connection cost                          context, connect)
//
// Last line: "ratio: X.XX" = median(ours card work) / median(scriptor run).
// No assertion on any figure.
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/card_sessions.hpp"
#include "drivers/pcsc/libpcsclite_api.hpp"
#include "tests/bench/bench_support.hpp"
#include "tests/support/pcsc.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using cb::bench::median;

namespace {

[[noreturn]] void die(const std::string& message) {
    std::cerr << "bench-cards: " << message << "\n";
    std::exit(1);
}

double ms(Clock::duration duration) {
    return std::chrono::duration<double, std::milli>(duration).count();
}

std::string figures(const std::vector<double>& values) {
    char text[128];
    std::snprintf(text, sizeof text, "median %.2f ms (min %.2f, max %.2f)", median(values),
                  *std::min_element(values.begin(), values.end()), *std::max_element(values.begin(), values.end()));
    return text;
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (const auto byte : bytes) {
        out += digits[byte >> 4];
        out += digits[byte & 0x0F];
    }
    return out;
}

std::string hex_byte(std::size_t value) {
    return hex({static_cast<std::uint8_t>(value & 0xFF)});
}

std::size_t der_size(const fs::path& pem) {
    auto der = cb::load_ca_certificate(pem, "card certificate");
    if (!der)
        die(der.error().message());
    return der->size();
}

// The card-inserted times our monitor saw, and the events the sessions published.
struct Observed {
    std::mutex mutex;
    std::vector<Clock::time_point> inserted;  // monitor thread
    std::vector<Clock::time_point> present;   // io thread
    std::vector<std::size_t> apdus;
    std::size_t left = 0;
    bool feed_sessions = true;

    std::size_t inserted_count() {
        std::lock_guard lock(mutex);
        return inserted.size();
    }
    Clock::time_point inserted_at(std::size_t index) {
        std::lock_guard lock(mutex);
        return inserted.at(index);
    }
};

}  // namespace

int main(int argc, char** argv) {
    std::size_t rounds = 20;
    bool keep = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--rounds" && i + 1 < argc)
            rounds = static_cast<std::size_t>(std::max(1L, std::strtol(argv[++i], nullptr, 10)));
        else if (arg == "--keep")
            keep = true;
        else
            die("usage: bench-cards-driver [--rounds N] [--keep]");
    }

    std::optional<cb::test::TempDir> temporary;
    fs::path work;
    if (keep) {
        std::string pattern = (fs::temp_directory_path() / "bench-cards.XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            die("mkdtemp failed");
        work = pattern;
    } else {
        temporary.emplace();
        work = temporary->path();
    }
    // libpcsclite reads the socket name once: set before any PC/SC call.
    ::setenv("PCSCLITE_CSOCK_NAME", (work / "pcscd.comm").c_str(), 1);
    const fs::path pki = work / "pki";
    const auto made =
        cb::test::run_command({"/bin/bash", std::string(CAREBRIDGE_SOURCE_DIR) + "/scripts/test-pki", pki.string()});
    if (made.status.code != 0)
        die("scripts/test-pki failed:\n" + made.output);
    cb::test::Pcscd pcscd({.work_dir = work});
    const std::string reader = cb::test::Pcscd::reader_name(0);
    const std::size_t certificate_size = der_size(pki / "cards" / "patient.crt");

    auto insurer = cb::load_ca_certificate(pki / "insurer-ca.crt", "insurer CA");
    auto igc_sante = cb::load_ca_certificate(pki / "igc-sante-ca.crt", "IGC-Santé CA");
    if (!insurer || !igc_sante)
        die("CA certificates");

    boost::asio::io_context io;
    auto guard = boost::asio::make_work_guard(io);
    cb::pcsc::LibPcscApi api;
    cb::pcsc::SteadyBackoffTimer backoff;
    cb::AsioSessionTimers timers(io);
    cb::CardEventBus bus;
    Observed observed;
    cb::CardSessions sessions(io, api, bus, timers, {*insurer, *igc_sante}, {});
    bus.subscribe([&](const cb::CardEvent& event) {
        if (const auto* present = std::get_if<cb::PatientPresent>(&event)) {
            observed.present.push_back(Clock::now());
            observed.apdus.push_back(present->apdus);
        } else if (std::holds_alternative<cb::PatientLeft>(event)) {
            ++observed.left;
        } else if (const auto* error = std::get_if<cb::CardError>(&event)) {
            die("card error: " + error->message);
        }
    });
    const auto forward = sessions.monitor_callback();
    cb::pcsc::ReaderMonitor monitor(api, backoff, [&](const cb::pcsc::ReaderEvent& event) {
        bool feed = true;
        if (event.kind == cb::pcsc::ReaderEventKind::card_inserted) {
            std::lock_guard lock(observed.mutex);
            observed.inserted.push_back(Clock::now());
            feed = observed.feed_sessions;
        } else {
            std::lock_guard lock(observed.mutex);
            feed = observed.feed_sessions;
        }
        if (feed)
            forward(event);
    });
    monitor.start();

    const auto run_until = [&](const std::function<bool()>& done) {
        const auto limit = Clock::now() + cb::test::pcsc_hang_limit;
        while (!done()) {
            if (Clock::now() > limit)
                die("timed out waiting (pcscd log:\n" + pcscd.log() + ")");
            io.run_one_for(std::chrono::milliseconds(20));
        }
    };
    int cards = 0;
    const auto insert = [&] {
        return std::make_unique<cb::test::VirtualCardProcess>(
            cb::test::VirtualCardSetup{.executable = VCARD_PATH,
                                       .description = pki / "cards" / "patient.card",
                                       .port = pcscd.vpcd_port(0),
                                       .extra = {},
                                       .log = work / ("vcard-" + std::to_string(++cards) + ".log")});
    };

    // ours
    std::vector<double> ours_work, ours_total;
    for (std::size_t round = 0; round < rounds; ++round) {
        const auto start = Clock::now();
        auto card = insert();
        run_until([&] { return observed.present.size() > round; });
        ours_total.push_back(ms(observed.present[round] - start));
        ours_work.push_back(ms(observed.present[round] - observed.inserted_at(round)));
        card->stop();
        run_until([&] { return observed.left > round; });
    }

    // scripted
    {
        std::lock_guard lock(observed.mutex);
        observed.feed_sessions = false;
    }
    std::vector<std::string> script{"00A404000BD250000002564954414C45", "00A4020C022001", "00B0000000",
                                    "00A4020C02C000"};
    for (std::size_t offset = 0; offset < certificate_size; offset += 256) {
        const std::size_t chunk = std::min<std::size_t>(256, certificate_size - offset);
        script.push_back("00B0" + hex_byte(offset >> 8) + hex_byte(offset) + hex_byte(chunk == 256 ? 0 : chunk));
    }
    const std::vector<std::uint8_t> challenge(32, 0x5A);
    script.push_back("0088000020" + hex(challenge) + "00");

    std::vector<double> scripted_run, scripted_total;
    for (std::size_t round = 0; round < rounds; ++round) {
        const std::size_t seen = observed.inserted_count();
        const auto start = Clock::now();
        auto card = insert();
        const auto limit = Clock::now() + cb::test::pcsc_hang_limit;
        while (observed.inserted_count() == seen) {  // the monitor thread records it
            if (Clock::now() > limit)
                die("the scripted card was not seen");
            io.run_one_for(std::chrono::milliseconds(1));
        }
        const auto launched = Clock::now();
        const auto result = pcscd.scriptor(reader, script);
        const auto finished = Clock::now();
        const auto responses = cb::test::parse_scriptor_output(result.output);
        if (responses.size() != script.size() || responses.back().status != 0x9000)
            die("scriptor did not get the expected answers:\n" + result.output);
        scripted_run.push_back(ms(finished - launched));
        scripted_total.push_back(ms(finished - start));
        card->stop();
    }

    // scriptor's fixed cost
    std::vector<double> fixed;
    {
        auto card = insert();
        const auto limit = Clock::now() + cb::test::pcsc_hang_limit;
        while (observed.inserted_count() < 2 * rounds + 1) {
            if (Clock::now() > limit)
                die("the card was not seen");
            io.run_one_for(std::chrono::milliseconds(1));
        }
        for (std::size_t round = 0; round < rounds; ++round) {
            const auto launched = Clock::now();
            pcscd.scriptor(reader, {script.front()});
            fixed.push_back(ms(Clock::now() - launched));
        }
        card->stop();
    }
    monitor.stop();
    sessions.stop();

    const std::size_t our_apdus = observed.apdus.front();
    std::cout << "setup: isolated pcscd + vpcd + carebridge-vcard, patient card (certificate " << certificate_size
              << " bytes), " << rounds << " rounds each\n";
    std::cout << "ours: card seen -> PatientPresent: " << figures(ours_work) << "\n";
    std::cout << "ours: insertion -> PatientPresent: " << figures(ours_total) << "\n";
    std::cout << "ours: APDUs: " << our_apdus << " (SCardTransmit calls, GET RESPONSE included)\n";
    std::cout << "scripted: scriptor run (spawn -> exit): " << figures(scripted_run) << "\n";
    std::cout << "scripted: insertion -> scriptor exit: " << figures(scripted_total) << "\n";
    std::cout << "scripted: APDUs: " << script.size() << "\n";
    std::cout << "scriptor fixed cost (1-APDU script): " << figures(fixed) << "\n";
    const double apdu_part = median(scripted_run) - median(fixed);
    char line[160];
    std::snprintf(line, sizeof line, "ours / scriptor APDU part (run - fixed cost, %.2f ms): %.2f", apdu_part,
                  apdu_part > 0 ? median(ours_work) / apdu_part : 0.0);
    std::cout << line << "\n";
    if (keep)
        std::cout << "kept: " << work.string() << "\n";
    std::snprintf(line, sizeof line, "ratio: %.2f", median(ours_work) / median(scripted_run));
    std::cout << line << std::endl;
    return 0;
}
