//! cargo-fuzz target `store_model`: the body is `reliability::targets::store_model` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::store_model(data));
