// The network side of carebridge-devsim: virtual devices on libmosquitto.
//
// Threading: `Options::threads` worker threads (at most one per device); each
// owns a fixed share of the devices (round-robin) and is the only thread that
// touches their mosquitto clients and state, so nothing is locked. A worker
// runs one poll(2) over its devices' sockets (POLLOUT only while libmosquitto
// has bytes queued), then mosquitto_loop_read / _write for the ready ones,
// draining TLS records already decrypted (SSL_pending) that poll cannot see;
// mosquitto_loop_misc (keepalive, retries) runs once a second. libmosquitto's
// callbacks therefore run on the owning worker. Connects (TCP + TLS) are
// blocking calls made by the worker, one device after another.
//
// A device, per docs/device-protocol.md §3 (device side):
//
//   connect     client id = device id (the broker forces the certificate CN
//               anyway), clean session off, will "offline" (QoS 1, retained)
//   on CONNACK  subscribe cb/v1/dev/{id}/ack (QoS 1), publish "online"
//               (retained), resend every unacknowledged reading in order
//   readings    --rate per second (or as fast as the in-flight window of 100
//               unconfirmed publishes allows); stored, then the state file is
//               written (fsync + rename), then published (QoS 1)
//   on ack N    drop readings with seq <= N (state file rewritten)
//   no progress resend every unacknowledged reading when no ack advanced for
//               --resend-after-s seconds
//   on loss     reconnect with backoff (250 ms doubling to 8 s)
//   done        every new reading published and confirmed by the broker
//               (PUBACK), and with --until-acked every reading acknowledged;
//               then "offline" (retained) and a clean DISCONNECT
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/result.hpp"
#include "tools/devsim/device_state.hpp"
#include "tools/devsim/options.hpp"

namespace cb::devsim {

struct DeviceReport {
    std::string device_id;
    std::string model;
    std::uint64_t produced = 0;   // new readings made in this run
    std::uint64_t published = 0;  // first publications of readings
    std::uint64_t resent = 0;     // publications of a reading already published (or loaded from the state file)
    std::uint64_t acked_through = 0;
    std::uint64_t last_sequence = 0;  // the highest seq handed out so far (0: none)
    std::uint64_t unacked = 0;
    std::uint64_t connects = 0;
    std::uint64_t bad_acks = 0;  // ack payloads parse_ack_payload refused
    std::uint64_t misbehaviour[misbehaviour_count] = {};
    bool finished = false;  // did everything the run asked of it
};

struct RunReport {
    std::vector<DeviceReport> devices;
    bool interrupted = false;
    bool timed_out = false;
    bool ok = false;
};

// Runs the devices of `options` until done, the timeout, or `stop_requested`
// becoming true (a signal handler sets it). Fails before connecting anything
// when a certificate, key or state file cannot be read.
Result<RunReport> run_simulation(const Options& options, const std::atomic<bool>& stop_requested);

// The --report JSON.
std::string report_json(const RunReport& report);

}  // namespace cb::devsim
