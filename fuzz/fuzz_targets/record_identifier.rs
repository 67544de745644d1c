//! cargo-fuzz target `record_identifier`: the body is `reliability::targets::record_identifier` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::record_identifier(data));
