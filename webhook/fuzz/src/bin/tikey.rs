//! AFL++ target: one input = text for tikey's parsers (see `checks.rs`).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

#[path = "../checks.rs"]
mod checks;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        checks::tikey(data);
    });
}
