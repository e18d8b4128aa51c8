//! The real listeners on loopback: TLS (HTTP/1.1 and HTTP/2), the plain metrics listener, certificate
//! reload through a Secret-volume-style symlink swap, bad pairs that must not replace a good one, chains,
//! and the binary's graceful shutdown on SIGTERM.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use webhook::tls::CertFiles;
use webhook::{Config, Limits, Server};

struct Running {
    addr: SocketAddr,
    metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<webhook::Result<()>>,
    state: webhook::AppState,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

async fn start(cert: std::path::PathBuf, key: std::path::PathBuf) -> Running {
    start_with(cert, key, Limits::default(), "127.0.0.1:0", "127.0.0.1:0").await
}

async fn start_with(
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    limits: Limits,
    listen: &str,
    metrics_listen: &str,
) -> Running {
    install_provider();
    let server = Server::bind(Config {
        listen: listen.parse().unwrap(),
        metrics_listen: Some(metrics_listen.parse().unwrap()),
        cert: CertFiles { cert, key },
        cert_poll_interval: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(5),
        limits,
    })
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let metrics = server.metrics_addr().unwrap().unwrap();
    let state = server.state().clone();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        metrics,
        stop: Some(tx),
        task,
        state,
    }
}

async fn post_review_h1(addr: SocketAddr, roots: &[&str]) -> (u16, Value) {
    let mut tls = tls_connect(addr, &connector(roots, &[b"http/1.1"]))
        .await
        .unwrap();
    let (status, body) = http1(
        &mut tls,
        "POST",
        "/mutate",
        "application/json",
        KPO_REVIEW.as_bytes(),
    )
    .await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn serves_http1_and_http2_over_tls_and_plain_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let srv = start(secret.cert(), secret.key()).await;

    let (status, body) = post_review_h1(srv.addr, &[&ca.pem]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(
        body["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert!(
        body["response"]["auditAnnotations"]["ti-key"].is_string(),
        "{body}"
    );

    // HTTP/2 (what the apiserver's webhook client negotiates), two requests on one connection.
    let tls = tls_connect(srv.addr, &connector(&[&ca.pem], &[b"h2"]))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = hyper::Request::post("https://127.0.0.1/mutate")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(KPO_REVIEW.as_bytes())))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["response"]["patchType"], "JSONPatch");
    }

    // A bad request over TLS is a 400, not a dropped connection.
    let mut tls = tls_connect(srv.addr, &connector(&[&ca.pem], &[]))
        .await
        .unwrap();
    let (status, body) = http1(&mut tls, "POST", "/mutate", "text/plain", b"hello").await;
    assert_eq!(status, 400, "{body}");

    // Plain HTTP: health, readiness and metrics; /mutate is not there.
    assert_eq!(http_get(srv.metrics, "/healthz").await.unwrap().0, 200);
    assert_eq!(http_get(srv.metrics, "/readyz").await.unwrap().0, 200);
    let (status, text) = http_get(srv.metrics, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"kpo_webhook_admission_requests_total{outcome="stamped"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"kpo_webhook_admission_requests_total{outcome="bad-request"} 1"#),
        "{text}"
    );
    assert_eq!(http_get(srv.metrics, "/mutate").await.unwrap().0, 404);
    // The TLS port serves health too (for probes that use HTTPS).
    let mut tls = tls_connect(srv.addr, &connector(&[&ca.pem], &[]))
        .await
        .unwrap();
    assert_eq!(
        http1(&mut tls, "GET", "/readyz", "text/plain", b"").await.0,
        200
    );
    srv.stop().await;
}

#[tokio::test]
async fn certificate_reload_survives_symlink_swaps_and_rejects_bad_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = Ca::new("CA one");
    let ca2 = Ca::new("CA two");
    let roots = [ca1.pem.as_str(), ca2.pem.as_str()];
    let leaf1 = ca1.leaf("webhook-1", false);
    let mut secret = SecretDir::new(dir.path(), &leaf1);
    let srv = start(secret.cert(), secret.key()).await;
    assert_eq!(served_leaf(srv.addr, &roots).await.unwrap(), leaf1.der);
    let reloads = |s: &webhook::AppState| {
        (
            s.metrics().tls_reloads("ok"),
            s.metrics().tls_reloads("error"),
        )
    };
    assert_eq!(reloads(&srv.state), (1, 0));

    // A rotation to another CA, the kubelet's way: served within a few poll intervals.
    let leaf2 = ca2.leaf("webhook-2", false);
    secret.swap(&leaf2);
    assert!(
        wait_for_leaf(srv.addr, &roots, &leaf2.der, Duration::from_secs(5)).await,
        "new certificate not served after the ..data swap"
    );
    assert_eq!(reloads(&srv.state), (2, 0));
    assert_eq!(post_review_h1(srv.addr, &[&ca2.pem]).await.0, 200);

    // A half-written certificate, a key that does not match, an empty key, garbage: never served.
    let leaf3 = ca1.leaf("webhook-3", false);
    let half = &leaf3.chain_pem.as_bytes()[..leaf3.chain_pem.len() / 2];
    let bad_pairs: [(&[u8], &[u8]); 4] = [
        (half, leaf3.key_pem.as_bytes()),
        (leaf3.chain_pem.as_bytes(), leaf2.key_pem.as_bytes()),
        (leaf3.chain_pem.as_bytes(), b""),
        (b"not a certificate", b"not a key"),
    ];
    for (i, (cert, key)) in bad_pairs.into_iter().enumerate() {
        let errors_before = srv.state.metrics().tls_reloads("error");
        secret.swap_raw(cert, key);
        // Wait until the webhook has looked at it (the error counter moves), then a bit more.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while srv.state.metrics().tls_reloads("error") == errors_before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "bad pair {i} never looked at"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            served_leaf(srv.addr, &roots).await.unwrap(),
            leaf2.der,
            "bad pair {i} replaced the good one"
        );
        assert_eq!(
            post_review_h1(srv.addr, &roots).await.0,
            200,
            "bad pair {i}"
        );
    }

    // A chain (leaf + intermediate) is served whole: a client trusting only the root verifies it.
    let inter = ca1.intermediate("intermediate");
    let leaf4 = inter.leaf("webhook-4", true);
    secret.swap(&leaf4);
    assert!(wait_for_leaf(srv.addr, &[&ca1.pem], &leaf4.der, Duration::from_secs(5)).await);
    let tls = tls_connect(srv.addr, &connector(&[&ca1.pem], &[]))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap().len(), 2);

    // Rewriting the files in place (no symlink swap) is picked up as well.
    let leaf5 = ca2.leaf("webhook-5", false);
    std::fs::write(secret.root.join("..data/tls.key"), &leaf5.key_pem).unwrap();
    std::fs::write(secret.root.join("..data/tls.crt"), &leaf5.chain_pem).unwrap();
    assert!(wait_for_leaf(srv.addr, &roots, &leaf5.der, Duration::from_secs(5)).await);
    srv.stop().await;
}

#[tokio::test]
async fn starts_unready_without_a_certificate_and_becomes_ready_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let srv = start(cert.clone(), key.clone()).await;
    let (status, body) = http_get(srv.metrics, "/readyz").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not-ready"));
    assert_eq!(http_get(srv.metrics, "/healthz").await.unwrap().0, 200);
    let ca = Ca::new("late CA");
    assert!(
        served_leaf(srv.addr, &[&ca.pem]).await.is_err(),
        "no certificate yet"
    );
    let leaf = ca.leaf("late", false);
    std::fs::write(&key, &leaf.key_pem).unwrap();
    std::fs::write(&cert, &leaf.chain_pem).unwrap();
    assert!(wait_for_leaf(srv.addr, &[&ca.pem], &leaf.der, Duration::from_secs(5)).await);
    assert_eq!(http_get(srv.metrics, "/readyz").await.unwrap().0, 200);
    srv.stop().await;
}

#[tokio::test]
async fn binary_drains_in_flight_request_on_sigterm_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("sigterm CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let log = dir.path().join("webhook.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_webhook"))
        .env("KPO_WEBHOOK_LISTEN", "127.0.0.1:0")
        .env("KPO_WEBHOOK_TLS_CERT_FILE", secret.cert())
        .env("KPO_WEBHOOK_TLS_PRIVATE_KEY_FILE", secret.key())
        .arg("--metrics-listen")
        .arg("127.0.0.1:0")
        .arg("--log-format=json")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (addr, metrics) = bound_addrs(&log).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while http_get(metrics, "/readyz").await.map(|r| r.0) != Ok(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook binary never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One good and one bad request: the bad one is logged once, the good one not at all.
    assert_eq!(post_review_h1(addr, &[&ca.pem]).await.0, 200);
    let mut tls = tls_connect(addr, &connector(&[&ca.pem], &[]))
        .await
        .unwrap();
    assert_eq!(
        http1(&mut tls, "POST", "/mutate", "application/json", b"{}")
            .await
            .0,
        400
    );

    // A request in flight: headers and half the body sent.
    let mut inflight = tls_connect(addr, &connector(&[&ca.pem], &[]))
        .await
        .unwrap();
    let body = KPO_REVIEW.as_bytes();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    inflight.write_all(head.as_bytes()).await.unwrap();
    inflight.write_all(&body[..body.len() / 2]).await.unwrap();
    inflight.flush().await.unwrap();
    // Wait until the webhook holds the request (its body bytes are reserved), not a fixed time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = http_get(metrics, "/metrics").await.unwrap();
        let held = text
            .lines()
            .find(|l| l.starts_with("kpo_webhook_inflight_body_bytes "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if held > 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the half-sent request was never taken in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // New connections are refused once the listener is closed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The in-flight request completes.
    inflight.write_all(&body[body.len() / 2..]).await.unwrap();
    inflight.flush().await.unwrap();
    let (status, resp) = read_response(&mut inflight).await;
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("\"ti-key\""), "{resp}");

    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits within 10 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let stderr = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    let bad: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "bad request")
        .collect();
    assert_eq!(bad.len(), 1, "{stderr}");
    assert_eq!(bad[0]["reason"], "wrong-review-type");
    assert!(
        !stderr.contains("705ab4f5"),
        "a good request was logged: {stderr}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "SIGTERM received"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "key material in logs");
}

/// The default listen addresses (`[::]`) with port 0: dual-stack, so IPv4 and IPv6 clients both get in.
fn default_addr_any_port(flag: &str) -> String {
    use clap::Parser;
    let a = webhook::args::Args::try_parse_from([
        "webhook",
        "--tls-cert-file=/c",
        "--tls-private-key-file=/k",
    ])
    .unwrap();
    let mut addr = if flag == "listen" {
        a.listen
    } else {
        a.metrics_listen
    };
    addr.set_port(0);
    addr.to_string()
}

#[tokio::test]
async fn default_addresses_are_dual_stack_and_serve_over_ipv6_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("v6 CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let srv = start_with(
        secret.cert(),
        secret.key(),
        Limits::default(),
        &default_addr_any_port("listen"),
        &default_addr_any_port("metrics-listen"),
    )
    .await;
    for ip in ["::1", "127.0.0.1"] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        let addr = SocketAddr::new(ip, srv.addr.port());
        let (status, body) = post_review_h1(addr, &[&ca.pem]).await;
        assert_eq!(status, 200, "POST /mutate over {ip}: {body}");
        assert!(body["response"]["patch"].is_string(), "{body}");
        let metrics = SocketAddr::new(ip, srv.metrics.port());
        assert_eq!(
            http_get(metrics, "/readyz").await.map(|r| r.0),
            Ok(200),
            "/readyz over {ip}"
        );
    }
    srv.stop().await;
}

/// `name value` of a metric line in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn readyz_fails_for_an_expired_or_not_yet_valid_certificate_and_gauges_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("validity CA");
    let expired = ca.leaf_valid("expired", false, Some(((2020, 1, 1), (2021, 1, 1))));
    let mut secret = SecretDir::new(dir.path(), &expired);
    let srv = start(secret.cert(), secret.key()).await;

    // Served (nothing better to serve), but not ready, and the gauges say why.
    let (status, body) = http_get(srv.metrics, "/readyz").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cert-expired"), "{body}");
    let (_, text) = http_get(srv.metrics, "/metrics").await.unwrap();
    assert_eq!(
        metric(&text, "kpo_webhook_tls_cert_not_before_seconds"),
        Some(1_577_836_800.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "kpo_webhook_tls_cert_not_after_seconds"),
        Some(1_609_459_200.0),
        "{text}"
    );
    // The TLS listener's /readyz agrees (over a client that does not check dates, there is none here:
    // a verifying client refuses the handshake, as the apiserver does).
    assert!(
        served_leaf(srv.addr, &[&ca.pem]).await.is_err(),
        "a verifying client refuses an expired certificate"
    );

    // Not yet valid.
    let future = ca.leaf_valid("future", false, Some(((2099, 1, 1), (2100, 1, 1))));
    secret.swap(&future);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = http_get(srv.metrics, "/readyz").await.unwrap();
        if body.contains("cert-not-yet-valid") {
            assert_eq!(status, 503);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, text) = http_get(srv.metrics, "/metrics").await.unwrap();
    assert_eq!(
        metric(&text, "kpo_webhook_tls_cert_not_before_seconds"),
        Some(4_070_908_800.0),
        "{text}"
    );

    // A valid certificate: ready, gauges updated on the reload.
    let good = ca.leaf_valid("good", false, Some(((2020, 1, 1), (2090, 1, 1))));
    secret.swap(&good);
    assert!(wait_for_leaf(srv.addr, &[&ca.pem], &good.der, Duration::from_secs(5)).await);
    assert_eq!(http_get(srv.metrics, "/readyz").await.unwrap().0, 200);
    let (_, text) = http_get(srv.metrics, "/metrics").await.unwrap();
    assert_eq!(
        metric(&text, "kpo_webhook_tls_cert_not_after_seconds"),
        Some(3_786_912_000.0),
        "{text}"
    );
    srv.stop().await;
}

/// Waits until the peer closes `stream` (EOF or error) and returns how long that took, or panics after
/// `within`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Duration {
    let start = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(start + within),
            tokio::io::AsyncReadExt::read(stream, &mut buf),
        )
        .await
        {
            Err(_) => panic!("connection still open after {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue, // HTTP/2 SETTINGS, GOAWAY
        }
    }
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("idle CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let srv = start_with(
        secret.cert(),
        secret.key(),
        limits,
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await;
    // HTTP/2 by ALPN (the server used to wait for the preface with no timer), HTTP/1.1, no ALPN, and
    // a plain connection to the metrics listener.
    for alpn in [&[&b"h2"[..]][..], &[b"http/1.1"], &[]] {
        let mut tls = tls_connect(srv.addr, &connector(&[&ca.pem], alpn))
            .await
            .unwrap();
        let took = closed_within(&mut tls, Duration::from_secs(3)).await;
        assert!(
            took >= Duration::from_millis(100),
            "{alpn:?}: closed after {took:?}, before the timeout"
        );
    }
    let mut plain = tokio::net::TcpStream::connect(srv.metrics).await.unwrap();
    closed_within(&mut plain, Duration::from_secs(3)).await;
    // A TCP connection that never starts the handshake: closed after the handshake timeout.
    srv.stop().await;
}

#[tokio::test]
async fn idle_http2_connections_get_goaway_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("h2 idle CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let limits = Limits {
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let srv = start_with(
        secret.cert(),
        secret.key(),
        limits,
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await;
    let tls = tls_connect(srv.addr, &connector(&[&ca.pem], &[b"h2"]))
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::post("https://127.0.0.1/mutate")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(KPO_REVIEW.as_bytes())))
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    let start = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("idle HTTP/2 connection closed by the webhook")
        .unwrap()
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    srv.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("limit CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let limits = Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let srv = start_with(
        secret.cert(),
        secret.key(),
        limits,
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await;
    let c = connector(&[&ca.pem], &[b"http/1.1"]);
    let _a = tls_connect(srv.addr, &c).await.unwrap();
    let _b = tls_connect(srv.addr, &c).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while srv.state.metrics().open_connections_now("tls") < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let start = std::time::Instant::now();
    assert!(
        tls_connect(srv.addr, &c).await.is_err(),
        "a third connection is refused"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(srv.state.metrics().shed_count("max-connections"), 1);
    drop(_a);
    // A slot frees up: served again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while post_review_h1_result(srv.addr, &[&ca.pem]).await != Some(200) {
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.stop().await;
}

async fn post_review_h1_result(addr: SocketAddr, roots: &[&str]) -> Option<u16> {
    let mut tls = tls_connect(addr, &connector(roots, &[b"http/1.1"]))
        .await
        .ok()?;
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        KPO_REVIEW.len()
    );
    tls.write_all(head.as_bytes()).await.ok()?;
    tls.write_all(KPO_REVIEW.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut buf)
        .await
        .ok()?;
    String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// Sends the headers of a POST declaring `len` body bytes, and `sent` of them.
async fn start_post(
    addr: SocketAddr,
    ca: &str,
    len: usize,
    sent: usize,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut tls = tls_connect(addr, &connector(&[ca], &[b"http/1.1"]))
        .await
        .unwrap();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&vec![b' '; sent]).await.unwrap();
    tls.flush().await.unwrap();
    tls
}

#[tokio::test]
async fn body_budget_sheds_large_bodies_with_503_and_keeps_room_for_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("budget CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let limits = Limits {
        max_inflight_body_bytes: 4 << 20,
        body_read_timeout: Duration::from_secs(20),
        request_timeout: Duration::from_secs(20),
        ..Limits::default()
    };
    let srv = start_with(
        secret.cert(),
        secret.key(),
        limits,
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await;
    // A 3 MiB body in flight holds 3 MiB: all that large bodies may use (three quarters of 4 MiB).
    let mut held = start_post(srv.addr, &ca.pem, 3 << 20, 1000).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while srv.state.budget().held() < 3 << 20 {
        assert!(tokio::time::Instant::now() < deadline, "never reserved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another large body: 503 at once, without its body being read.
    let start = std::time::Instant::now();
    let mut second = start_post(srv.addr, &ca.pem, 1 << 20, 0).await;
    let (status, body) = read_response(&mut second).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("body-budget"), "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(srv.state.metrics().shed_count("body-budget"), 1);
    // A small body (an ordinary pod's review) still gets its stamp.
    assert_eq!(post_review_h1(srv.addr, &[&ca.pem]).await.0, 200);
    // The held request ends (a bad body: 400) and gives its bytes back.
    held.write_all(&vec![b' '; (3 << 20) - 1000]).await.unwrap();
    assert_eq!(read_response(&mut held).await.0, 400);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while srv.state.budget().held() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "budget not released"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn slow_bodies_get_408_and_slow_requests_503() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("slow CA");
    let secret = SecretDir::new(dir.path(), &ca.leaf("webhook", false));
    let limits = Limits {
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let srv = start_with(
        secret.cert(),
        secret.key(),
        limits,
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await;
    let mut slow = start_post(srv.addr, &ca.pem, 10_000, 100).await;
    let start = std::time::Instant::now();
    let (status, body) = read_response(&mut slow).await;
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("body-timeout"), "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    srv.stop().await;

    // The whole request is bounded too (here the body timeout is longer than the request's).
    let limits = Limits {
        body_read_timeout: Duration::from_secs(20),
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let srv = start_with(
        secret.cert(),
        secret.key(),
        limits,
        "127.0.0.1:0",
        "127.0.0.1:0",
    )
    .await;
    let mut slow = start_post(srv.addr, &ca.pem, 10_000, 100).await;
    let (status, body) = read_response(&mut slow).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("request-timeout"), "{body}");
    assert_eq!(srv.state.metrics().shed_count("request-timeout"), 1);
    srv.stop().await;
}
