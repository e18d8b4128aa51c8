//! AFL++ target: one input = one request body POSTed to `/mutate` (see `checks.rs`).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

#[path = "../checks.rs"]
mod checks;

fn main() {
    let harness = checks::Admission::new();
    // A panic ends the input as a crash; the router is not used after one.
    let harness = std::panic::AssertUnwindSafe(&harness);
    afl::fuzz!(|data: &[u8]| {
        harness.check(data);
    });
}
