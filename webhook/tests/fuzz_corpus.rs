//! Replays the fuzzers' committed corpus (`webhook/fuzz/corpus/`: seeds made from real KPO reviews and
//! label sets by `webhook/fuzz/seeds.py`, and the inputs AFL++ found) through the fuzz targets' own
//! checks (`webhook/fuzz/src/checks.rs`): the admission handler answers 200 `allowed: true` with a
//! patch that applies, or 400, and never panics; tikey's parsers keep their round trips.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn admission_corpus_is_answered_fail_open() {
    let files = corpus("admission");
    assert!(files.len() >= 50, "{} files", files.len());
    let harness = checks::Admission::new();
    for (name, data) in &files {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness.check(data)));
        assert!(r.is_ok(), "corpus file {name}");
    }
    // The seeds are real reviews: the KPO ones are stamped (not only 400s).
    let stamped = files
        .iter()
        .filter(|(n, _)| n.ends_with("-golden.json"))
        .filter(|(_, d)| {
            let (_, req) = webhook::mutate::parse(d).unwrap();
            webhook::mutate::mutate(&req, checks::NOW).outcome == webhook::mutate::Outcome::Stamped
        })
        .count();
    assert!(stamped >= 40, "{stamped} golden reviews stamped");
}

#[test]
fn tikey_corpus_keeps_round_trips() {
    let files = corpus("tikey");
    assert!(files.len() >= 100, "{} files", files.len());
    for (name, data) in &files {
        let r = std::panic::catch_unwind(|| checks::tikey(data));
        assert!(r.is_ok(), "corpus file {name}");
    }
}
