// The card channel over the fake pcscd: GET RESPONSE chains and their bound,
// Le correction once, short and extended APDUs, transactions always ended,
// reset -> reconnect, removal errors.
#include <catch2/catch.hpp>
#include <stdexcept>

#include "drivers/pcsc/card_channel.hpp"
#include "drivers/pcsc/card_operations.hpp"
#include "tests/unit/drivers/pcsc_fake.hpp"

using cb::pcsc::Bytes;
using cb::pcsc::CardChannel;
using cb::pcsc::CardFailure;
using cb::pcsc::PcscContext;
using cb::test::FakePcscApi;
using cb::test::FakeReply;

namespace {

const std::string reader = "Reader A";

Bytes filled(std::size_t size, std::uint8_t sw1, std::uint8_t sw2) {
    Bytes bytes(size, 0xAB);
    bytes.push_back(sw1);
    bytes.push_back(sw2);
    return bytes;
}

FakeReply reply(Bytes response) {
    return {cb::pcsc::code::success, std::move(response)};
}

const cb::cards::CommandApdu read_binary{.cla = 0x00, .ins = 0xB0, .p1 = 0, .p2 = 0, .data = {}, .expected = 256};

struct Fixture {
    FakePcscApi api;
    std::optional<PcscContext> context;
    std::optional<CardChannel> channel;

    Fixture() {
        api.add_reader(reader);
        api.insert_card(reader, {0x3B, 0x00});
        auto established = PcscContext::establish(api);
        REQUIRE(established);
        context.emplace(std::move(established).value());
        auto connected = CardChannel::connect(*context, reader);
        REQUIRE(connected);
        channel.emplace(std::move(connected).value());
    }
};

}  // namespace

TEST_CASE("pcsc channel: a 61xx chain is gathered with GET RESPONSE") {
    Fixture f;
    int round = 0;
    f.api.set_responder([&](std::span<const std::uint8_t>) {
        ++round;
        if (round == 1)
            return reply(filled(16, 0x61, 0x10));
        if (round == 2)
            return reply(filled(16, 0x61, 0x05));
        return reply(filled(5, 0x90, 0x00));
    });
    auto response = f.channel->transmit(read_binary, "READ BINARY EF 2001");
    REQUIRE(response);
    CHECK(response->data.size() == 37);
    CHECK(response->status.value() == 0x9000);
    REQUIRE(f.api.commands.size() == 3);
    CHECK(f.api.commands[1] == Bytes{0x00, 0xC0, 0x00, 0x00, 0x10});
    CHECK(f.api.commands[2] == Bytes{0x00, 0xC0, 0x00, 0x00, 0x05});
    CHECK(f.channel->apdus_sent() == 3);
}

TEST_CASE("pcsc channel: an endless 61xx chain stops after the planner's bound") {
    Fixture f;
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply(filled(16, 0x61, 0x10)); });
    auto response = f.channel->transmit(read_binary, "READ BINARY EF 2001");
    REQUIRE_FALSE(response);
    CHECK(response.error().failure == CardFailure::invalid_card);
    CHECK_THAT(response.error().message, Catch::Contains("card in \"Reader A\": READ BINARY EF 2001: GET RESPONSE: "
                                                         "more than 32 rounds"));
    CHECK(f.api.commands.size() == 1 + cb::cards::ResponsePlanner::max_get_response_rounds);
}

TEST_CASE("pcsc channel: 6Cxx resends once with the corrected Le, a second 6Cxx is an error") {
    Fixture f;
    int round = 0;
    f.api.set_responder([&](std::span<const std::uint8_t>) {
        return ++round == 1 ? reply({0x6C, 0x08}) : reply(filled(8, 0x90, 0x00));
    });
    auto response = f.channel->transmit(read_binary, "READ BINARY EF 2001");
    REQUIRE(response);
    CHECK(response->data.size() == 8);
    REQUIRE(f.api.commands.size() == 2);
    CHECK(f.api.commands[1] == Bytes{0x00, 0xB0, 0x00, 0x00, 0x08});

    f.api.commands.clear();
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply({0x6C, 0x08}); });
    auto twice = f.channel->transmit(read_binary, "READ BINARY EF 2001");
    REQUIRE_FALSE(twice);
    CHECK(twice.error().failure == CardFailure::invalid_card);
    CHECK_THAT(twice.error().message, Catch::Contains("Le correction twice"));
    CHECK(f.api.commands.size() == 2);
}

TEST_CASE("pcsc channel: short and extended APDUs, extended over T=0 refused") {
    Fixture f;
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply(filled(1000, 0x90, 0x00)); });
    auto extended = read_binary;
    extended.expected = 1000;
    auto response = f.channel->transmit(extended, "READ BINARY (extended)");
    REQUIRE(response);
    CHECK(response->data.size() == 1000);
    CHECK(f.api.commands.at(0) == Bytes{0x00, 0xB0, 0x00, 0x00, 0x00, 0x03, 0xE8});
    REQUIRE(f.channel->transmit(read_binary, "READ BINARY"));
    CHECK(f.api.commands.at(1) == Bytes{0x00, 0xB0, 0x00, 0x00, 0x00});

    FakePcscApi api;
    api.set_protocol(cb::pcsc::Protocol::t0);
    api.add_reader(reader);
    api.insert_card(reader, {0x3B});
    auto context = PcscContext::establish(api);
    REQUIRE(context);
    auto channel = CardChannel::connect(*context, reader);
    REQUIRE(channel);
    auto refused = channel->transmit(extended, "READ BINARY (extended)");
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message, Catch::Contains("extended APDU over T=0"));
    CHECK(api.commands.empty());
}

TEST_CASE("pcsc channel: a response longer than a card can return is refused") {
    Fixture f;
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply(filled(70'000, 0x90, 0x00)); });
    auto response = f.channel->transmit(read_binary, "READ BINARY");
    REQUIRE_FALSE(response);
    CHECK(response.error().failure == CardFailure::invalid_card);
    CHECK_THAT(response.error().message, Catch::Contains("exceed the 65538"));
}

TEST_CASE("pcsc channel: removal during a command is a clear card_removed error") {
    Fixture f;
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply({0x90, 0x00}); });
    f.api.transmit_codes = {cb::pcsc::code::removed_card};
    auto removed = f.channel->transmit(read_binary, "READ BINARY EF 2001");
    REQUIRE_FALSE(removed);
    CHECK(removed.error().failure == CardFailure::card_removed);
    CHECK(removed.error().message == "card in \"Reader A\" removed during READ BINARY EF 2001");

    // An empty answer (what vpcd passes on) with the card gone is a removal too...
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply({}); });
    f.api.status_present = false;
    auto empty = f.channel->transmit(read_binary, "READ BINARY EF 2001");
    REQUIRE_FALSE(empty);
    CHECK(empty.error().failure == CardFailure::card_removed);
    // ...and with the card still there, an invalid answer.
    f.api.status_present = true;
    auto short_answer = f.channel->transmit(read_binary, "READ BINARY EF 2001");
    REQUIRE_FALSE(short_answer);
    CHECK(short_answer.error().failure == CardFailure::invalid_card);
    CHECK_THAT(short_answer.error().message, Catch::Contains("answer of 0 bytes"));
}

TEST_CASE("pcsc channel: transactions are ended on success, on errors and on exceptions") {
    Fixture f;
    {
        auto transaction = f.channel->begin_transaction();
        REQUIRE(transaction);
        CHECK(transaction->end());
    }
    CHECK(f.api.transactions_ended == 1);
    try {
        auto transaction = f.channel->begin_transaction();
        REQUIRE(transaction);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK(f.api.transactions_ended == 2);

    // An operation failing half-way (not this card's profile) ends its transaction.
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply({0x6A, 0x82}); });
    auto patient = cb::pcsc::read_patient(*f.channel, {});
    REQUIRE_FALSE(patient);
    CHECK(patient.error().failure == CardFailure::unsupported_card);
    CHECK_THAT(patient.error().message, Catch::Contains("SELECT patient application returned 6A82"));
    // ...and one removed mid-sequence too.
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply({0x90, 0x00}); });
    f.api.transmit_codes = {cb::pcsc::code::success, cb::pcsc::code::removed_card};
    auto removed = cb::pcsc::read_patient(*f.channel, {});
    REQUIRE_FALSE(removed);
    CHECK(removed.error().failure == CardFailure::card_removed);
    CHECK_THAT(removed.error().message, Catch::Contains("removed during SELECT EF 2001"));
    CHECK(f.api.transactions_begun == 4);
    CHECK(f.api.transactions_ended == 4);
}

TEST_CASE("pcsc channel: a reset card is reconnected, the sequence restarts once") {
    Fixture f;
    // Reset noticed by SCardBeginTransaction: reconnect and begin again.
    f.api.begin_codes = {cb::pcsc::code::reset_card};
    {
        auto transaction = f.channel->begin_transaction();
        REQUIRE(transaction);
    }
    CHECK(f.api.reconnects == 1);
    CHECK(f.api.transactions_begun == 1);
    CHECK(f.api.transactions_ended == 1);

    // Reset mid-sequence: reconnect, run the sequence again from SELECT.
    f.api.commands.clear();
    f.api.set_responder([&](std::span<const std::uint8_t>) { return reply({0x6A, 0x82}); });
    f.api.transmit_codes = {cb::pcsc::code::reset_card};
    auto restarted = cb::pcsc::read_patient(*f.channel, {});
    REQUIRE_FALSE(restarted);
    CHECK(restarted.error().failure == CardFailure::unsupported_card);
    CHECK(f.api.reconnects == 2);
    REQUIRE(f.api.commands.size() == 2);
    CHECK(f.api.commands[0] == f.api.commands[1]);  // SELECT patient application, twice

    // Reset twice: reported, not retried forever.
    f.api.commands.clear();
    f.api.transmit_codes = {cb::pcsc::code::reset_card, cb::pcsc::code::reset_card};
    auto reset = cb::pcsc::read_patient(*f.channel, {});
    REQUIRE_FALSE(reset);
    CHECK(reset.error().failure == CardFailure::card_reset);
    CHECK(reset.error().message == "card in \"Reader A\" was reset during SELECT patient application");
    CHECK(f.api.commands.size() == 2);
    CHECK(f.api.transactions_begun == f.api.transactions_ended);
}

TEST_CASE("pcsc channel: pcscd gone during a command is service_unavailable") {
    Fixture f;
    f.api.transmit_codes = {cb::pcsc::code::no_service};
    auto response = f.channel->transmit(read_binary, "READ BINARY");
    REQUIRE_FALSE(response);
    CHECK(response.error().failure == CardFailure::service_unavailable);
    CHECK_THAT(response.error().message, Catch::Contains("SCARD_E_NO_SERVICE"));
}
