//! Interval mode over time (not a test): `sweeper/bench/run.sh --soak`. Runs the release `sweeper`
//! with `--interval` (a dry run) on a namespace that holds the bench's pods and a database that holds
//! their TIs (`sweeper/bench/run.sh --pods 50000 --sizes 1000000 --dbs pg --namespace NS --keep-db`
//! leaves both), for `--loops` loops, and after each loop (its summary line on stderr) samples the
//! process: resident memory (VmRSS), its peak so far (VmHWM), open file descriptors, threads. Prints
//! the samples at loops 1, 2, 10 and every 50th, then first / middle / last and the growth from loop
//! 10 (after warm-up) to the last. A leak shows as a slope; flat is the target.
//!
//! Usage: interval_soak SWEEPER_BIN --namespace NS --db-url URL [--loops 300] [--interval 1s]
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Clone, Copy, Debug)]
struct Sample {
    loop_no: usize,
    secs: f64,
    rss_kb: u64,
    hwm_kb: u64,
    fds: usize,
    threads: u64,
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn sample(pid: u32, loop_no: usize, started: Instant) -> Sample {
    Sample {
        loop_no,
        secs: started.elapsed().as_secs_f64(),
        rss_kb: status_kb(pid, "VmRSS:"),
        hwm_kb: status_kb(pid, "VmHWM:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
        threads: status_kb(pid, "Threads:"),
    }
}

fn print(s: &Sample) {
    println!(
        "{:>6} {:>9.1} {:>9.1} {:>9.1} {:>5} {:>7}",
        s.loop_no,
        s.secs,
        s.rss_kb as f64 / 1024.0,
        s.hwm_kb as f64 / 1024.0,
        s.fds,
        s.threads
    );
}

#[tokio::main]
async fn main() {
    let usage = "usage: interval_soak SWEEPER_BIN --namespace NS --db-url URL [--loops 300] [--interval 1s]";
    let mut args = std::env::args().skip(1);
    let bin = args.next().expect(usage);
    let (mut ns, mut url, mut loops, mut interval) = (None, None, 300usize, "1s".to_owned());
    while let Some(a) = args.next() {
        let v = args
            .next()
            .unwrap_or_else(|| panic!("{a} needs a value\n{usage}"));
        match a.as_str() {
            "--namespace" => ns = Some(v),
            "--db-url" => url = Some(v),
            "--loops" => loops = v.parse().expect("--loops N"),
            "--interval" => interval = v,
            _ => panic!("unknown argument {a}\n{usage}"),
        }
    }
    let (ns, url) = (ns.expect(usage), url.expect(usage));
    let kubeconfig = testsupport::env().kubeconfig.display().to_string();
    let mut child = tokio::process::Command::new(&bin)
        .args([
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &ns,
            "--db-url",
            &url,
        ])
        .args([
            "--interval",
            &interval,
            "--min-age",
            "0s",
            "--log-format",
            "json",
        ])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the sweeper");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    println!("sweeper --interval {interval} on {ns}, {loops} loops (pid {pid})");
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>5} {:>7}",
        "loop", "t s", "RSS MiB", "peak MiB", "fds", "threads"
    );
    let mut samples = Vec::new();
    let mut errors = 0;
    while samples.len() < loops {
        let line = lines
            .next_line()
            .await
            .expect("read stderr")
            .expect("the sweeper exited");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["level"] == "ERROR" {
            errors += 1;
            eprintln!("error line: {line}");
        }
        if v["fields"]["exit"].is_u64() {
            let s = sample(pid, samples.len() + 1, started);
            if matches!(s.loop_no, 1 | 2 | 10) || s.loop_no.is_multiple_of(50) {
                print(&s);
            }
            samples.push(s);
        }
    }
    child.kill().await.ok();
    let first = samples[0];
    let warm = samples[9.min(samples.len() - 1)];
    let middle = samples[samples.len() / 2];
    let last = samples[samples.len() - 1];
    println!();
    println!("first / middle / last:");
    for s in [&first, &middle, &last] {
        print(s);
    }
    let max_rss = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let (min_fds, max_fds) = (
        samples.iter().map(|s| s.fds).min().unwrap_or(0),
        samples.iter().map(|s| s.fds).max().unwrap_or(0),
    );
    println!(
        "RSS loop {} -> {}: {:+.1} MiB ({:+.1}%); max RSS {:.1} MiB; fds {}..{}; error lines {}",
        warm.loop_no,
        last.loop_no,
        (last.rss_kb as f64 - warm.rss_kb as f64) / 1024.0,
        100.0 * (last.rss_kb as f64 / warm.rss_kb.max(1) as f64 - 1.0),
        max_rss as f64 / 1024.0,
        min_fds,
        max_fds,
        errors
    );
}
