//! Fuzz target: `targets::cpu_list_len` (the checks live there, shared with tests/fuzz_corpus.rs).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::cpu_list_len(data));
