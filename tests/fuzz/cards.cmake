# Card-response parsers (protocol/cards), included by tests/fuzz/CMakeLists.txt.
carebridge_add_fuzz_target(card_apdu LIBS cb_protocol_cards)
carebridge_add_fuzz_target(card_patient LIBS cb_protocol_cards)
carebridge_add_fuzz_target(card_certificate LIBS cb_protocol_cards)
carebridge_add_fuzz_target(pcsc_features LIBS cb_drivers_pcsc)
