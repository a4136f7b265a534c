#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>

#include "protocol/devices/reading.hpp"
#include "tools/devsim/payload.hpp"

namespace {

using namespace std::chrono;
using cb::devices::DeviceId;
using cb::devices::MeasurementType;
using cb::devices::Reading;
using cb::devices::RejectReason;
using cb::devsim::DeviceModel;
using cb::devsim::Misbehaviour;

// 2026-11-22T10:00:00Z.
const cb::devices::Microseconds now{seconds(1795341600)};

const DeviceId& device() {
    static const DeviceId id = DeviceId::parse("dev-1").value();
    return id;
}
const DeviceId& other() {
    static const DeviceId id = DeviceId::parse("dev-2").value();
    return id;
}

std::string reason_of(const std::string& payload) {
    INFO(payload);
    const auto parsed = Reading::parse(device(), payload, now);
    REQUIRE_FALSE(parsed);
    return cb::devices::to_string(parsed.error().reason);
}

}  // namespace

TEST_CASE("devsim payload: every model's readings pass Reading::parse, as drafted", "[devsim][payload]") {
    for (std::size_t m = 0; m < cb::devsim::device_model_count; ++m) {
        const auto model = static_cast<DeviceModel>(m);
        const auto types = cb::devsim::model_types(model);
        std::set<MeasurementType> seen;
        cb::devsim::Random random(42 + m);
        for (std::uint64_t seq = 1; seq <= 400; ++seq) {
            const auto offset = seq % 2 == 0 ? cb::devsim::TimeOffset::utc : cb::devsim::TimeOffset::paris_winter;
            const auto draft = cb::devsim::draft_reading(model, device(), seq, now, offset, random);
            const auto payload = cb::devsim::render_payload(draft);
            INFO(cb::devsim::to_string(model) << ": " << payload);
            const auto parsed = Reading::parse(device(), payload, now);
            if (!parsed)
                FAIL(parsed.error().message);
            CHECK(parsed->sequence() == seq);
            CHECK(parsed->type() == draft.type);
            CHECK(parsed->device_time().utc == now);
            CHECK(parsed->device_time().offset == (offset == cb::devsim::TimeOffset::utc ? minutes(0) : minutes(60)));
            CHECK(payload.size() <= cb::devices::max_payload_size);
            seen.insert(parsed->type());
        }
        // Every type of the model shows up in 400 readings.
        CHECK(seen == std::set<MeasurementType>(types.begin(), types.end()));
    }
}

TEST_CASE("devsim payload: the same seed gives the same readings", "[devsim][payload]") {
    cb::devsim::Random first(7);
    cb::devsim::Random second(7);
    for (std::uint64_t seq = 1; seq <= 20; ++seq) {
        const auto a = cb::devsim::draft_reading(DeviceModel::blood_pressure_cuff, device(), seq, now,
                                                 cb::devsim::TimeOffset::utc, first);
        const auto b = cb::devsim::draft_reading(DeviceModel::blood_pressure_cuff, device(), seq, now,
                                                 cb::devsim::TimeOffset::utc, second);
        CHECK(cb::devsim::render_payload(a) == cb::devsim::render_payload(b));
    }
}

TEST_CASE("devsim payload: RFC 3339 with Z or +01:00", "[devsim][payload]") {
    CHECK(cb::devsim::format_rfc3339(now, cb::devsim::TimeOffset::utc) == "2026-11-22T10:00:00Z");
    CHECK(cb::devsim::format_rfc3339(now, cb::devsim::TimeOffset::paris_winter) == "2026-11-22T11:00:00+01:00");
    // Across midnight and a year boundary, sub-second truncated.
    const cb::devices::Microseconds new_year{seconds(1798761599) +
                                             microseconds(999999)};  // 2026-12-31T23:59:59.999999Z
    CHECK(cb::devsim::format_rfc3339(new_year, cb::devsim::TimeOffset::utc) == "2026-12-31T23:59:59Z");
    CHECK(cb::devsim::format_rfc3339(new_year, cb::devsim::TimeOffset::paris_winter) == "2027-01-01T00:59:59+01:00");
}

TEST_CASE("devsim payload: each payload misbehaviour is rejected for its reason", "[devsim][payload]") {
    const std::pair<Misbehaviour, std::string> cases[] = {
        {Misbehaviour::bad_json, "malformed_json"},     {Misbehaviour::wrong_unit, "unknown_unit"},
        {Misbehaviour::out_of_range, "out_of_range"},   {Misbehaviour::other_id, "device_id_mismatch"},
        {Misbehaviour::oversized, "payload_too_large"}, {Misbehaviour::unknown_field, "unknown_field"},
    };
    for (const auto& [mode, reason] : cases) {
        for (std::size_t m = 0; m < cb::devsim::device_model_count; ++m) {
            cb::devsim::Random random(m);
            for (std::uint64_t seq = 1; seq <= 40; ++seq) {
                auto draft = cb::devsim::draft_reading(static_cast<DeviceModel>(m), device(), seq, now,
                                                       cb::devsim::TimeOffset::utc, random);
                cb::devsim::apply_misbehaviour(mode, draft, other());
                INFO(cb::devsim::to_string(mode) << " on " << cb::devsim::to_string(static_cast<DeviceModel>(m)));
                CHECK(reason_of(cb::devsim::render_payload(draft, mode)) == reason);
            }
        }
    }
}

TEST_CASE("devsim payload: publication misbehaviours leave the payload valid", "[devsim][payload]") {
    for (const auto mode :
         {Misbehaviour::none, Misbehaviour::replay, Misbehaviour::out_of_order, Misbehaviour::flood}) {
        cb::devsim::Random random(3);
        auto draft =
            cb::devsim::draft_reading(DeviceModel::oximeter, device(), 5, now, cb::devsim::TimeOffset::utc, random);
        const auto before = cb::devsim::render_payload(draft);
        cb::devsim::apply_misbehaviour(mode, draft, other());
        CHECK(cb::devsim::render_payload(draft, mode) == before);
        CHECK(Reading::parse(device(), before, now));
    }
}

TEST_CASE("devsim payload: oversized is still JSON, just too large", "[devsim][payload]") {
    cb::devsim::Random random(1);
    auto draft =
        cb::devsim::draft_reading(DeviceModel::thermometer, device(), 1, now, cb::devsim::TimeOffset::utc, random);
    cb::devsim::apply_misbehaviour(Misbehaviour::oversized, draft, other());
    const auto payload = cb::devsim::render_payload(draft);
    CHECK(payload.size() > cb::devices::max_payload_size);
    CHECK(payload.back() == '}');
    // Once the padding is gone it parses.
    auto trimmed = payload;
    trimmed.erase(trimmed.find_last_not_of(" }") + 1);
    CHECK(Reading::parse(device(), trimmed + "}", now));
}

TEST_CASE("devsim payload: names of models and modes round-trip", "[devsim][payload]") {
    for (std::size_t m = 0; m < cb::devsim::device_model_count; ++m) {
        const auto model = static_cast<DeviceModel>(m);
        CHECK(cb::devsim::device_model_from_string(cb::devsim::to_string(model)) == model);
    }
    for (std::size_t i = 0; i < cb::devsim::misbehaviour_count; ++i) {
        const auto mode = static_cast<Misbehaviour>(i);
        CHECK(cb::devsim::misbehaviour_from_string(cb::devsim::to_string(mode)) == mode);
    }
    CHECK_FALSE(cb::devsim::device_model_from_string("sim-bp-2"));
    CHECK_FALSE(cb::devsim::misbehaviour_from_string("bad_json"));
}
