//! cargo-fuzz target `ticket`: the body is `reliability::targets::ticket` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::ticket(data));
