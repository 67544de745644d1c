//! cargo-fuzz target `redb_file`: the body is `reliability::targets::redb_file` (see its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reliability::targets::redb_file(data));
