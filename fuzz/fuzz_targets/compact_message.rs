//! cargo-fuzz target `compact_message`: the body is `reliability::targets::compact_message` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::compact_message(data));
