// The outbox to the national space (drivers/storage/outbox.hpp): queued in
// the same transaction as the reading, state transitions, restart, pairings;
// and the parts of the HTTPS client that need no server.
#include "drivers/storage/outbox.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <optional>

#include "drivers/storage/reading_store.hpp"
#include "drivers/upstream/https_client.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/temp_dir.hpp"

using cb::storage::NewReading;
using cb::storage::Outbox;
using cb::storage::OutboxState;
using cb::storage::OutboxTransition;

namespace {

NewReading reading(std::int64_t sequence, const std::string& patient, const std::string& disposition = "accepted") {
    NewReading r;
    r.device_id = "cuff-1";
    r.sequence = sequence;
    r.type = "heart_rate";
    r.body = R"({"value":72})";
    r.received_us = 1'700'000'000'000'000;
    r.disposition = disposition;
    r.patient = patient;
    return r;
}

struct Stores {
    cb::test::TempDir dir;
    cb::storage::SqliteReadingStore store = std::move(cb::storage::SqliteReadingStore::open(dir / "r.db")).value();
    Outbox outbox = std::move(Outbox::open(dir / "r.db")).value();
};

std::vector<std::int64_t> ids(const std::vector<cb::storage::OutboxItem>& items) {
    std::vector<std::int64_t> out;
    for (const auto& item : items)
        out.push_back(item.reading_id);
    return out;
}

}  // namespace

TEST_CASE("outbox: accepted readings of a known patient are queued with the reading, others are not") {
    Stores s;
    const std::vector<NewReading> batch{reading(1, "patient-1"), reading(2, ""), reading(3, "patient-1", "held"),
                                        reading(4, "patient-2")};
    REQUIRE(s.store.commit(batch));
    REQUIRE(s.store.commit(std::vector<NewReading>{reading(1, "patient-1")}));  // duplicate: not queued twice
    auto next = s.outbox.next(0, 10);
    REQUIRE(next);
    CHECK(ids(*next) == std::vector<std::int64_t>{1, 4});
    CHECK((*next)[0].patient == "patient-1");
    CHECK((*next)[0].sequence == 1);
    CHECK((*next)[1].patient == "patient-2");
    CHECK(s.outbox.next(1, 10)->size() == 1U);
    CHECK(s.outbox.next(0, 1)->size() == 1U);
}

TEST_CASE("outbox: transitions are recorded, in-flight rows are queued again at restart, counts by reason") {
    Stores s;
    REQUIRE(
        s.store.commit(std::vector<NewReading>{reading(1, "p"), reading(2, "p"), reading(3, "p"), reading(4, "p")}));
    const std::vector<OutboxTransition> first{{1, OutboxState::in_flight, "", "", false},
                                              {2, OutboxState::in_flight, "", "", false},
                                              {3, OutboxState::held, "not-paired", "", false}};
    REQUIRE(s.outbox.record(first, 1));
    CHECK(ids(*s.outbox.next(0, 10)) == std::vector<std::int64_t>{4});
    REQUIRE(s.outbox.record(std::vector<OutboxTransition>{{1, OutboxState::delivered, "", "obs-1", true}}, 2));
    auto counts = s.outbox.counts();
    REQUIRE(counts);
    CHECK((*counts)["delivered"] == 1);
    CHECK((*counts)["in_flight"] == 1);
    CHECK((*counts)["held"] == 1);
    CHECK((*counts)["held: not-paired"] == 1);
    CHECK((*counts)["queued"] == 1);
    // Restart: 2 was in flight.
    CHECK(s.outbox.resume_in_flight(3).value() == 1);
    CHECK(ids(*s.outbox.next(0, 10)) == std::vector<std::int64_t>{2, 4});
    // Pairing made: held not-paired rows of that patient are queued again, others stay.
    CHECK(s.outbox.requeue_held("other", "not-paired", 4).value() == 0);
    CHECK(s.outbox.requeue_held("p", "not-paired", 4).value() == 1);
    CHECK(ids(*s.outbox.next(0, 10)) == std::vector<std::int64_t>{2, 3, 4});
}

TEST_CASE("outbox: pairings are saved, replaced and read back") {
    Stores s;
    CHECK_FALSE(s.outbox.pairing("p").value().has_value());
    cb::storage::Pairing pairing{"p", "idpe-1", "access-1", "refresh-1", 10, 1};
    REQUIRE(s.outbox.save_pairing(pairing));
    pairing.access_token = "access-2";
    REQUIRE(s.outbox.save_pairing(pairing));
    const auto read = s.outbox.pairing("p");
    REQUIRE(read);
    REQUIRE(read->has_value());
    CHECK((*read)->id_pe == "idpe-1");
    CHECK((*read)->access_token == "access-2");
    CHECK((*read)->refresh_token == "refresh-1");
}

TEST_CASE("outbox: a store of schema version 1 gets its outbox, with the readings it already held") {
    cb::test::TempDir dir;
    {
        auto db = cb::storage::Database::open(dir / "r.db");
        REQUIRE(db);
        REQUIRE(
            db->execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, sequence INTEGER "
                        "NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, device_time_us INTEGER NOT NULL, "
                        "received_us INTEGER NOT NULL, disposition TEXT NOT NULL, reason TEXT, patient TEXT, "
                        "UNIQUE (device_id, sequence));"
                        "INSERT INTO readings VALUES (1, 'd', 1, 't', '{}', 0, 5, 'accepted', NULL, 'p');"
                        "INSERT INTO readings VALUES (2, 'd', 2, 't', '{}', 0, 5, 'held', 'no-patient', NULL);"
                        "PRAGMA user_version = 1;",
                        "make a version 1 store"));
    }
    REQUIRE(cb::storage::SqliteReadingStore::open(dir / "r.db"));
    auto outbox = Outbox::open(dir / "r.db");
    REQUIRE(outbox);
    CHECK(ids(*outbox->next(0, 10)) == std::vector<std::int64_t>{1});
}

TEST_CASE("outbox: the window query searches the index of queued rows, not the whole outbox") {
    // Delivered rows pile up in front of the queued ones; a scan from the
    // start made each window cost the whole history (bench/forward).
    cb::test::TempDir dir;
    REQUIRE(Outbox::open(dir / "r.db"));
    auto db = cb::storage::Database::open(dir / "r.db");
    REQUIRE(db);
    auto plan = db->prepare(std::string("EXPLAIN QUERY PLAN ") + Outbox::next_query, "plan");
    REQUIRE(plan);
    std::string details;
    while (plan->step().value() == cb::storage::Step::row)
        details += plan->column_text(3) + "\n";
    INFO(details);
    CHECK(details.find("USING INDEX outbox_queued") != std::string::npos);
}

TEST_CASE("https client: Retry-After in seconds is read and capped, dates and garbage are not") {
    using cb::upstream::parse_retry_after;
    CHECK(parse_retry_after("120") == std::chrono::seconds(120));
    CHECK(parse_retry_after(" 3 ") == std::chrono::seconds(3));
    CHECK(parse_retry_after("999999999") == std::chrono::seconds(86'400));
    CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
    CHECK_FALSE(parse_retry_after("-1").has_value());
    CHECK_FALSE(parse_retry_after("").has_value());
    CHECK_FALSE(parse_retry_after("12345678901").has_value());
}

TEST_CASE("https client: a header value with a line break is refused before anything is sent") {
    cb::test::TempDir dir;
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    boost::asio::io_context io;
    cb::upstream::HttpsSettings settings;
    settings.host = "127.0.0.1";
    settings.port = 9;  // nothing is connected to: the request never leaves
    settings.ca_file = pki.ca_certificate().string();
    settings.cert_file = (pki.directory() / "facility" / "ec.crt").string();
    settings.key_file = (pki.directory() / "facility" / "ec.key").string();
    auto client = cb::upstream::HttpsClient::create(io, settings);
    REQUIRE(client);
    cb::upstream::HttpRequest request;
    request.target = "/fhir";
    request.content_type = "application/fhir+json";
    request.body = "{}";
    request.bearer = "token\r\nX-Injected: 1";
    std::optional<cb::Result<cb::upstream::HttpResponse>> answer;
    (*client)->send(request, [&](cb::Result<cb::upstream::HttpResponse> result) { answer = std::move(result); });
    io.run();
    REQUIRE(answer.has_value());
    REQUIRE_FALSE(answer->has_value());
    CHECK(answer->error().kind() == cb::ErrorKind::invalid_input);
    CHECK(answer->error().message().find("control character") != std::string::npos);
    CHECK(answer->error().message().find("X-Injected") == std::string::npos);
}
