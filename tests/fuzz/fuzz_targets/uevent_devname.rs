//! Fuzz target: `targets::uevent_devname` (the checks live there, shared with tests/fuzz_corpus.rs).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::uevent_devname(data));
