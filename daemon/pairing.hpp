// Pairing a patient with the national space (docs/upstream.md §Pairing):
// POST /pairing {"nir","code"} over the gateway's mutual TLS; the answer's
// idPe and tokens are stored (drivers/storage/outbox.hpp, pairings), and the
// patient's readings held "not-paired" are queued again. Run by
// `carebridged --pair` beside the running daemon (SQLite allows it); the
// daemon's forwarder finds them at its next look at the outbox.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <istream>
#include <string>
#include <string_view>

#include "drivers/storage/outbox.hpp"
#include "drivers/upstream/https_client.hpp"

namespace cb {

struct PairingRequest {
    std::string patient;  // the local patient reference (readings.patient)
    std::string nir;      // the patient's NIR (13 digits + key, or 15)
    std::string code;     // the one-time code the patient got from the national space
};

// The tokens of an answer of POST /pairing or POST /token (docs/receiver.md):
// each member that is absent, not a string, or not printable and bounded
// (idPe 128 bytes, tokens 4096) is left empty; expires_in defaults to 3600.
struct TokenAnswer {
    std::string id_pe;
    std::string access_token;
    std::string refresh_token;
    std::int64_t expires_in = 3600;
};
TokenAnswer parse_token_answer(std::string_view body);

// Checks the request's fields; the message names the bad one (never its value for the code).
Result<void> check_pairing_request(const PairingRequest& request);

// `--nir -` and `--code -`: each field given as "-" is read from `input`, one
// line each, the NIR first, so that neither shows in the process list or the
// shell history. A line ends at "\n" (a "\r" before it is dropped) or at the
// end of the input; at most 256 bytes. Fails naming the field if the input
// ends first or the line is longer; never names the value.
Result<void> read_pairing_fields(std::istream& input, PairingRequest& request);

// Sends the pairing, waits for the answer (runs `io`), saves it and queues
// the patient's held readings again. Returns the idPe.
Result<std::string> pair_patient(boost::asio::io_context& io, upstream::HttpsClient& client, storage::Outbox& outbox,
                                 const PairingRequest& request);

}  // namespace cb
