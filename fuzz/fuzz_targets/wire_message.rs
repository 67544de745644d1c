//! cargo-fuzz target `wire_message`: the body is `reliability::targets::wire_message` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::wire_message(data));
