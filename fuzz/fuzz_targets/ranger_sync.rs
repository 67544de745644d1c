//! cargo-fuzz target `ranger_sync`: the body is `reliability::targets::ranger_sync` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::ranger_sync(data));
