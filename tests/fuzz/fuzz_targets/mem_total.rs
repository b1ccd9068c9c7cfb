//! Fuzz target: `targets::mem_total` (the checks live there, shared with tests/fuzz_corpus.rs).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::mem_total(data));
