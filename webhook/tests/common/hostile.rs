//! A hostile load against a running webhook (issue 13), shared by the `hostile` test and the `hostile`
//! example: idle TLS connections that never send a request, slow clients trickling a 3 MiB body,
//! clients sending 3 MiB bodies as fast as they can, and HTTP/2 connections with many streams posting
//! 3 MiB bodies (Debian's `h2load`). Every attacker reconnects when the webhook closes it, after
//! [`Plan::retry_delay`], so the load is sustained until [`Attack::stop`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use super::{connector, tls_connect};

/// What to throw at the webhook.
#[derive(Clone, Debug)]
pub struct Plan {
    /// TLS connections that complete the handshake and then send nothing.
    pub idle: usize,
    /// Clients that send a body's headers, then the body at `slow_rate` bytes a second.
    pub slow: usize,
    pub slow_rate: usize,
    /// Clients that send bodies as fast as they can (HTTP/1.1).
    pub fast: usize,
    /// HTTP/2 connections (h2load `-c`) and streams per connection (`-m`).
    pub h2_clients: usize,
    pub h2_streams: usize,
    /// Size of every attacker's body.
    pub body_bytes: usize,
    /// Pause before an attacker reconnects.
    pub retry_delay: Duration,
}

impl Plan {
    /// The issue's load: 1,000 idle connections; 200 slow clients at 1 KB/s; 20 fast clients; 50 HTTP/2
    /// connections × 32 streams; 3 MiB bodies.
    pub fn issue() -> Self {
        Plan {
            idle: 1000,
            slow: 200,
            slow_rate: 1024,
            fast: 20,
            h2_clients: 50,
            h2_streams: 32,
            body_bytes: 3 * 1024 * 1024,
            retry_delay: Duration::from_millis(100),
        }
    }
}

/// What the attackers saw.
#[derive(Debug, Default)]
pub struct Stats {
    pub idle_handshakes: AtomicUsize,
    pub idle_open: AtomicUsize,
    /// Idle connections the webhook closed, and the longest time one stayed open after its handshake.
    pub idle_closed: AtomicUsize,
    pub idle_longest_ms: AtomicU64,
    /// HTTP/1.1 attackers' answers: 2xx, 400, 408, 503, other, and connections that ended without one.
    pub status_2xx: AtomicU64,
    pub status_400: AtomicU64,
    pub status_408: AtomicU64,
    pub status_503: AtomicU64,
    pub status_other: AtomicU64,
    pub no_answer: AtomicU64,
    /// Bytes of body the HTTP/1.1 attackers got written.
    pub body_bytes_sent: AtomicU64,
}

impl Stats {
    fn status(&self, code: u16) {
        match code {
            200..=299 => &self.status_2xx,
            400 => &self.status_400,
            408 => &self.status_408,
            503 => &self.status_503,
            _ => &self.status_other,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "idle: {} handshakes, {} closed by the webhook (longest open {} ms), {} open now; \
             HTTP/1.1 attackers: {} 2xx, {} 400, {} 408, {} 503, {} other, {} without an answer, {} MiB of body sent",
            self.idle_handshakes.load(Ordering::Relaxed),
            self.idle_closed.load(Ordering::Relaxed),
            g(&self.idle_longest_ms),
            self.idle_open.load(Ordering::Relaxed),
            g(&self.status_2xx),
            g(&self.status_400),
            g(&self.status_408),
            g(&self.status_503),
            g(&self.status_other),
            g(&self.no_answer),
            g(&self.body_bytes_sent) >> 20,
        )
    }
}

/// A running attack, on its own runtime (two threads): the attackers' tasks never queue in front of
/// the caller's (the pod creates whose latency is measured).
pub struct Attack {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<Vec<String>>,
    pub stats: Arc<Stats>,
}

/// The body every attacker sends: a valid AdmissionReview of a KPO pod, padded with one annotation to
/// `bytes`, so the webhook that reads it all also parses and stamps it (the most work per byte).
pub fn big_review(base: &str, bytes: usize) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
    let key = "padding.example.com/x";
    v["request"]["object"]["metadata"]["annotations"][key] =
        serde_json::Value::String(String::new());
    let len = serde_json::to_vec(&v).unwrap().len();
    v["request"]["object"]["metadata"]["annotations"][key] =
        serde_json::Value::String("x".repeat(bytes.saturating_sub(len)));
    let out = serde_json::to_vec(&v).unwrap();
    assert_eq!(out.len(), bytes.max(len));
    out
}

impl Attack {
    /// Starts every attacker against `addr` (TLS, trusting `ca_pem`; its metrics listener at
    /// `metrics`), bodies from `body_file`.
    pub fn start(
        addr: SocketAddr,
        metrics: SocketAddr,
        ca_pem: &str,
        plan: &Plan,
        body_file: &Path,
    ) -> Attack {
        let (stop, rx) = watch::channel(false);
        let stats = Arc::new(Stats::default());
        let body: Arc<Vec<u8>> = Arc::new(std::fs::read(body_file).unwrap());
        let (ca_pem, plan, body_file, st) = (
            ca_pem.to_owned(),
            plan.clone(),
            body_file.to_owned(),
            stats.clone(),
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run(addr, ca_pem, plan, body, body_file, metrics, rx, st))
        });
        Attack {
            stop,
            thread,
            stats,
        }
    }

    /// Stops every attacker; returns h2load's summary lines (one run per line).
    pub async fn stop(self) -> Vec<String> {
        let _ = self.stop.send(true);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap()
    }
}

#[allow(clippy::too_many_arguments)] // the attack's whole configuration, moved onto its thread
async fn run(
    addr: SocketAddr,
    ca_pem: String,
    plan: Plan,
    body: Arc<Vec<u8>>,
    body_file: PathBuf,
    metrics: SocketAddr,
    rx: watch::Receiver<bool>,
    stats: Arc<Stats>,
) -> Vec<String> {
    // h2load first, so its connections get in before the idle ones fill the connection limit; the
    // rest once the webhook has counted them (or after 10 s).
    let h2 = tokio::spawn(h2load(addr, plan.clone(), body_file, rx.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && h2_connections(metrics).await < plan.h2_clients as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tasks = JoinSet::new();
    let alpns: [&[&[u8]]; 3] = [&[b"h2"], &[b"http/1.1"], &[]];
    let idle_connectors: Vec<TlsConnector> =
        alpns.iter().map(|a| connector(&[&ca_pem], a)).collect();
    let h1 = connector(&[&ca_pem], &[b"http/1.1"]);
    for i in 0..plan.slow + plan.fast {
        let rate = (i < plan.slow).then_some(plan.slow_rate);
        tasks.spawn(sender(
            addr,
            h1.clone(),
            body.clone(),
            rate,
            rx.clone(),
            stats.clone(),
            plan.retry_delay,
        ));
    }
    for i in 0..plan.idle {
        let c = idle_connectors[i % 3].clone();
        tasks.spawn(idle(addr, c, rx.clone(), stats.clone(), plan.retry_delay));
    }
    while tasks.join_next().await.is_some() {}
    h2.await.unwrap()
}

/// `kpo_webhook_connections_total{protocol="h2"}` from the webhook's metrics listener (0 if unknown).
async fn h2_connections(metrics: SocketAddr) -> u64 {
    let Ok((_, text)) = super::http_get(metrics, "/metrics").await else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(r#"kpo_webhook_connections_total{protocol="h2"} "#))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Holds one TLS connection that never sends a request; reconnects when the webhook closes it.
async fn idle(
    addr: SocketAddr,
    c: TlsConnector,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
    retry: Duration,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let connected = tokio::select! {
            r = tls_connect(addr, &c) => r,
            () = stopped(&mut stop) => return,
        };
        if let Ok(mut tls) = connected {
            stats.idle_handshakes.fetch_add(1, Ordering::Relaxed);
            stats.idle_open.fetch_add(1, Ordering::Relaxed);
            let since = Instant::now();
            let mut buf = [0u8; 4096];
            let closed = loop {
                tokio::select! {
                    // The webhook may send HTTP/2 SETTINGS (and a GOAWAY): read on until EOF or error.
                    r = tls.read(&mut buf) => match r {
                        Ok(0) | Err(_) => break true,
                        Ok(_) => continue,
                    },
                    () = stopped(&mut stop) => break false,
                }
            };
            stats.idle_open.fetch_sub(1, Ordering::Relaxed);
            if !closed {
                return;
            }
            stats.idle_closed.fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
            stats.idle_longest_ms.fetch_max(ms, Ordering::Relaxed);
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// POSTs `body` over HTTP/1.1, at `rate` bytes a second (slow) or as fast as it can (`None`), reads
/// the answer, and starts again on a new connection.
async fn sender(
    addr: SocketAddr,
    c: TlsConnector,
    body: Arc<Vec<u8>>,
    rate: Option<usize>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
    retry: Duration,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let connected = tokio::select! {
            r = tls_connect(addr, &c) => r,
            () = stopped(&mut stop) => return,
        };
        if let Ok(tls) = connected {
            let (mut rd, mut wr) = tokio::io::split(tls);
            let head = format!(
                "POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let write = async {
                wr.write_all(head.as_bytes()).await?;
                match rate {
                    None => {
                        for chunk in body.chunks(64 * 1024) {
                            wr.write_all(chunk).await?;
                            stats
                                .body_bytes_sent
                                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                    }
                    Some(rate) => {
                        for chunk in body.chunks(rate) {
                            wr.write_all(chunk).await?;
                            wr.flush().await?;
                            stats
                                .body_bytes_sent
                                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                wr.flush().await?;
                // Body sent: wait for the answer.
                std::future::pending::<std::io::Result<()>>().await
            };
            let read = async {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match rd.read(&mut chunk).await {
                        Ok(0) | Err(_) => return None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(code) = status_of(&buf) {
                        return Some(code);
                    }
                }
            };
            let answer = tokio::select! {
                code = read => code,
                r = write => { let _ = r; None }
                () = stopped(&mut stop) => return,
            };
            match answer {
                Some(code) => stats.status(code),
                None => {
                    stats.no_answer.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

fn status_of(buf: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(buf.get(..buf.len().min(64))?).ok()?;
    let line = text.split("\r\n").next()?;
    if !text.contains("\r\n") {
        return None;
    }
    line.split(' ').nth(1)?.parse().ok()
}

/// Runs h2load (HTTP/2 over TLS, `h2_clients` × `h2_streams` POSTs of the body) until stopped (a
/// new run if one ends earlier); returns each run's summary.
async fn h2load(
    addr: SocketAddr,
    plan: Plan,
    body: PathBuf,
    mut stop: watch::Receiver<bool>,
) -> Vec<String> {
    let mut runs = Vec::new();
    while !*stop.borrow() {
        // At nice 10: on a cluster the attacker runs on other nodes and does not take the apiserver's
        // CPU; here it shares this machine's cores with the apiserver, etcd and the webhook.
        let mut child = tokio::process::Command::new("nice")
            .args(["-n", "10", "h2load"])
            .arg(format!("--clients={}", plan.h2_clients))
            .arg(format!("--max-concurrent-streams={}", plan.h2_streams))
            .arg("--duration=3600")
            .arg("--threads=1")
            .arg(format!("--data={}", body.display()))
            .arg("--header=content-type: application/json")
            .arg(format!("https://{addr}/mutate"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("h2load (Debian package nghttp2-client; tests/env/up installs it)");
        let mut out = child.stdout.take().unwrap();
        let mut text = String::new();
        tokio::select! {
            _ = out.read_to_string(&mut text) => {
                let _ = child.wait().await;
            }
            () = stopped(&mut stop) => {
                // SIGINT: h2load prints its summary and exits.
                if let Some(pid) = child.id() {
                    let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
                }
                let _ = tokio::time::timeout(Duration::from_secs(10), out.read_to_string(&mut text)).await;
                let _ = child.kill().await;
            }
        }
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("requests:") || l.starts_with("status codes:"))
            .collect();
        runs.push(summary.join("; "));
        if !*stop.borrow() {
            tokio::time::sleep(plan.retry_delay).await;
        }
    }
    runs
}

/// Peak resident memory of process `pid` (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb / 1024.0
}

/// One pod create: its name, when it started, how long it took, and the error if any.
pub struct Create {
    pub name: String,
    pub took: Duration,
    pub error: Option<String>,
}

/// Creates KPO pods named `<prefix>-<n>` through `pods`, `concurrency` at a time, for `duration`.
pub async fn creates_for(
    pods: &Api<Pod>,
    prefix: &str,
    concurrency: usize,
    duration: Duration,
) -> Vec<Create> {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (pods, next, prefix) = (pods.clone(), next.clone(), prefix.to_owned());
        set.spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let name = format!("{prefix}-{i}");
                let ti = testsupport::TiSpec::new(
                    "hostile_dag",
                    &format!("task_{i}"),
                    "manual__2026-11-30T00:00:00+00:00",
                );
                let start = Instant::now();
                let r = pods
                    .create(&PostParams::default(), &testsupport::kpo_pod(&name, &ti))
                    .await;
                out.push(Create {
                    name,
                    took: start.elapsed(),
                    error: r.err().map(|e| e.to_string()),
                });
            }
            out
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.unwrap());
    }
    all
}
