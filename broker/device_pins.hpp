// Which certificate an enrolled device must present: the catalog's
// certificate_sha256 (config/devices.toml), checked by the Mosquitto plugin in
// broker/device_pins_plugin.cpp for every message a client publishes
// (docs/broker.md §2):
//
//   | the client's username (= its certificate's CN) | its certificate's SHA-256 | the message    |
//   |------------------------------------------------|---------------------------|----------------|
//   | not an enrolled device id (the gateway, a      | any                       | passes         |
//   | device not enrolled yet)                       |                           |                |
//   | an enrolled device id                          | = certificate_sha256      | passes         |
//   | an enrolled device id                          | anything else             | refused        |
//
// A device that is not enrolled may publish: the gateway quarantines its
// readings with the reason "unknown-device", visible to the operator
// (docs/device-protocol.md). What the pin stops is a second certificate with
// an enrolled device's CN (a re-issued, copied or mistakenly signed one)
// feeding that device's patient.
#pragma once

#include <string>

struct x509_st;  // OpenSSL X509

namespace cb::broker {

// SHA-256 of the certificate's DER encoding as 64 lowercase hex digits (what
// `openssl x509 -fingerprint -sha256` prints, without colons); empty if it
// cannot be encoded.
std::string certificate_sha256(x509_st* certificate);

}  // namespace cb::broker
