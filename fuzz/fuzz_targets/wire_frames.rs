//! cargo-fuzz target `wire_frames`: the body is `reliability::targets::wire_frames` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::wire_frames(data));
