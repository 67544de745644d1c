//! cargo-fuzz target `capability`: the body is `reliability::targets::capability` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::capability(data));
