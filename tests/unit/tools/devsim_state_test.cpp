#include <catch2/catch.hpp>
#include <string>

#include "tools/devsim/device_state.hpp"

namespace {

using cb::devsim::DeviceModel;
using cb::devsim::DeviceState;
using cb::devsim::StoredReading;

DeviceState fresh() {
    return DeviceState(cb::devices::DeviceId::parse("cuff-1").value(), DeviceModel::blood_pressure_cuff);
}

// Takes the next sequence and stores a reading "r<seq>" under it.
std::uint64_t add_one(DeviceState& state) {
    const auto sequence = state.take_sequence().value();
    state.add({sequence, "r" + std::to_string(sequence)});
    return sequence;
}

std::string file(const std::string& members) {
    return "{" + members + "}";
}

const std::string head = R"("format":"carebridge-devsim-state/1","device_id":"cuff-1","model":"sim-bp-1")";

// `text` is refused with exactly `message` (after the "state file: " prefix).
void check_refused(const std::string& text, const std::string& message) {
    INFO(text);
    const auto parsed = cb::devsim::parse_state(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message() == "state file: " + message);
}

}  // namespace

TEST_CASE("devsim state: sequences are contiguous from 1", "[devsim][state]") {
    auto state = fresh();
    CHECK(state.take_sequence() == 1u);
    CHECK(state.take_sequence() == 2u);
    CHECK(state.take_sequence() == 3u);
    CHECK(state.next_sequence() == 4u);
}

TEST_CASE("devsim state: an ack drops readings up to N, in order, and never goes back", "[devsim][state]") {
    auto state = fresh();
    for (int i = 0; i < 5; ++i)
        add_one(state);
    auto outcome = state.acknowledge(2);
    CHECK(outcome.advanced);
    CHECK(outcome.dropped == 2);
    REQUIRE(outcome.last);
    CHECK(*outcome.last == StoredReading{2, "r2"});
    REQUIRE(state.unacked().size() == 3);
    CHECK(state.unacked().front().sequence == 3u);
    CHECK(state.acked_through() == 2u);

    // An older or equal ack changes nothing.
    CHECK_FALSE(state.acknowledge(1).advanced);
    CHECK_FALSE(state.acknowledge(2).advanced);
    CHECK(state.unacked().size() == 3);

    // What to resend: everything left, oldest first.
    std::vector<std::uint64_t> left;
    for (const auto& reading : state.unacked())
        left.push_back(reading.sequence);
    CHECK(left == std::vector<std::uint64_t>{3, 4, 5});

    outcome = state.acknowledge(5);
    CHECK(outcome.dropped == 3);
    CHECK(state.unacked().empty());
    CHECK(state.next_sequence() == 6u);
}

TEST_CASE("devsim state: an ack beyond what we handed out moves next_seq past it", "[devsim][state]") {
    auto state = fresh();
    add_one(state);
    const auto outcome = state.acknowledge(40);
    CHECK(outcome.advanced);
    CHECK(outcome.dropped == 1);
    CHECK(state.next_sequence() == 41u);
    CHECK(state.take_sequence() == 41u);
}

TEST_CASE("devsim state: sequences stop at 2^53-1", "[devsim][state]") {
    auto state = fresh();
    REQUIRE(state.acknowledge(cb::devices::max_sequence - 1).advanced);
    CHECK(state.take_sequence() == cb::devices::max_sequence);
    CHECK_FALSE(state.take_sequence());
}

TEST_CASE("devsim state: serialisation round-trips", "[devsim][state]") {
    auto state = fresh();
    for (int i = 0; i < 4; ++i)
        add_one(state);
    REQUIRE(state.acknowledge(1).advanced);
    // Payloads are arbitrary text (bad-json, oversized...), escaped on the way.
    state.add({state.take_sequence().value(), "{\"a\":\"\\\" \n\t\x01\" #"});
    const auto text = cb::devsim::serialize_state(state);
    const auto parsed = cb::devsim::parse_state(text);
    if (!parsed)
        FAIL(parsed.error().message());
    CHECK(*parsed == state);
    CHECK(cb::devsim::serialize_state(*parsed) == text);

    const auto empty = cb::devsim::parse_state(cb::devsim::serialize_state(fresh()));
    REQUIRE(empty);
    CHECK(*empty == fresh());
}

TEST_CASE("devsim state: a well-formed file by hand", "[devsim][state]") {
    const auto parsed = cb::devsim::parse_state(
        file(head + R"(,"next_seq":9,"acked_through":4,"unacked":[{"seq":5,"payload":"a"},{"seq":8,"payload":"b"}])"));
    if (!parsed)
        FAIL(parsed.error().message());
    CHECK(parsed->next_sequence() == 9u);
    CHECK(parsed->acked_through() == 4u);
    REQUIRE(parsed->unacked().size() == 2);
    CHECK(parsed->unacked()[1] == StoredReading{8, "b"});  // gaps are allowed
}

TEST_CASE("devsim state: malformed files are refused, naming the member", "[devsim][state]") {
    const std::string counters = R"(,"next_seq":3,"acked_through":0)";
    const std::string tail = counters + R"(,"unacked":[])";

    // Not a JSON object at all.
    check_refused("", "not JSON: incomplete JSON");
    check_refused("{", "not JSON: incomplete JSON");
    check_refused("[]", "expected a JSON object");
    check_refused("null", "expected a JSON object");
    check_refused(file(head + tail) + "x", "not JSON: extra data");
    check_refused(R"({"a":[[[[[1]]]]]})", "not JSON: too deep");

    // Members.
    check_refused(file(head + tail + R"(,"extra":1)"), "unknown member \"extra\"");
    check_refused(file(head + counters), "missing member \"unacked\"");
    check_refused(file(R"("device_id":"cuff-1","model":"sim-bp-1")" + tail), "missing member \"format\"");
    check_refused(file(R"("format":"carebridge-devsim-state/2","device_id":"cuff-1","model":"sim-bp-1")" + tail),
                  "format: \"carebridge-devsim-state/2\" is not \"carebridge-devsim-state/1\"");
    check_refused(file(R"("format":1,"device_id":"cuff-1","model":"sim-bp-1")" + tail), "format: expected a string");
    check_refused(file(R"("format":"carebridge-devsim-state/1","device_id":"a/b","model":"sim-bp-1")" + tail),
                  "device_id: device id \"a/b\": character '/' at 1 is not allowed (A-Z a-z 0-9 . _ -)");
    check_refused(file(R"("format":"carebridge-devsim-state/1","device_id":"cuff-1","model":"bp")" + tail),
                  "model: \"bp\" is not a simulator model");

    // Counters.
    const std::string unacked = R"(,"unacked":[])";
    check_refused(file(head + R"(,"next_seq":0,"acked_through":0)" + unacked),
                  "next_seq: 0 is outside 1..9007199254740992");
    check_refused(file(head + R"(,"next_seq":9007199254740993,"acked_through":0)" + unacked),
                  "next_seq: 9007199254740993 is outside 1..9007199254740992");
    check_refused(file(head + R"(,"next_seq":3.0,"acked_through":0)" + unacked), "next_seq: expected an integer");
    check_refused(file(head + R"(,"next_seq":"3","acked_through":0)" + unacked), "next_seq: expected an integer");
    check_refused(file(head + R"(,"next_seq":3,"acked_through":-1)" + unacked), "acked_through: -1 is negative");
    check_refused(file(head + R"(,"next_seq":3,"acked_through":3)" + unacked), "acked_through: 3 is outside 0..2");
    check_refused(file(head + R"(,"next_seq":18446744073709551615,"acked_through":0)" + unacked),
                  "next_seq: 18446744073709551615 is outside 1..9007199254740992");

    // Unacknowledged readings.
    const auto with = [&](const std::string& items) {
        return file(head + R"(,"next_seq":9,"acked_through":4,"unacked":)" + items);
    };
    check_refused(with("{}"), "unacked: expected an array");
    check_refused(with("[5]"), "unacked[0]: expected an object");
    check_refused(with(R"([{"seq":5}])"), "unacked[0]: missing member \"payload\"");
    check_refused(with(R"([{"seq":5,"payload":"a","x":1}])"), "unacked[0]: unknown member \"x\"");
    check_refused(with(R"([{"seq":5,"payload":7}])"), "unacked[0].payload: expected a string");
    check_refused(with(R"([{"seq":4,"payload":"a"}])"), "unacked[0].seq: 4 is not above the acked_through 4");
    check_refused(with(R"([{"seq":5,"payload":"a"},{"seq":5,"payload":"b"}])"),
                  "unacked[1].seq: 5 is not above the previous seq 5");
    check_refused(with(R"([{"seq":6,"payload":"a"},{"seq":5,"payload":"b"}])"),
                  "unacked[1].seq: 5 is not above the previous seq 6");
    check_refused(with(R"([{"seq":9,"payload":"a"}])"), "unacked[0].seq: 9 is not below next_seq 9");
    check_refused(with(R"([{"seq":0,"payload":"a"}])"), "unacked[0].seq: 0 is outside 1..9007199254740991");
    check_refused(with(R"([{"seq":true,"payload":"a"}])"), "unacked[0].seq: expected an integer");

    // Size caps.
    const auto big = cb::devsim::parse_state(with(R"([{"seq":5,"payload":")" + std::string(65537, 'x') + R"("}])"));
    REQUIRE_FALSE(big);
    CHECK(big.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(big.error().message() == "state file: unacked[0].payload: 65537 bytes (at most 65536)");
}

TEST_CASE("devsim state: truncations of a valid file are all refused", "[devsim][state]") {
    auto state = fresh();
    for (int i = 0; i < 3; ++i)
        add_one(state);
    const auto text = cb::devsim::serialize_state(state);
    // Every strict prefix (the trailing newline aside) is incomplete JSON.
    for (std::size_t length = 0; length + 1 < text.size(); ++length) {
        INFO(length);
        CHECK_FALSE(cb::devsim::parse_state(text.substr(0, length)));
    }
}
