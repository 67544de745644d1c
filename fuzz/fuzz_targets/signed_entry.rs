//! cargo-fuzz target `signed_entry`: the body is `reliability::targets::signed_entry` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::signed_entry(data));
