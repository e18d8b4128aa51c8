//! AFL++ target: one input = one request body POSTed to `/mutate` (see `checks.rs`).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

#[path = "../checks.rs"]
mod checks;

fn main() {
    let harness = checks::Admission::new();
    afl::fuzz!(|data: &[u8]| {
        harness.check(data);
    });
}
