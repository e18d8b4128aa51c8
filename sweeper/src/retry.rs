//! Retries of apiserver calls: transient failures (connection errors, 429, 5xx) are retried with
//! exponential backoff; anything else (403, 404, 409, 410, …) is returned at once for the caller to
//! judge.

use std::future::Future;
use std::time::Duration;

/// Attempts per call, the first included.
pub const ATTEMPTS: u32 = 5;
/// The first backoff; each next one doubles (0.25 s, 0.5 s, 1 s, 2 s: about 4 s in all).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Whether an apiserver error may go away by itself.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or [`ATTEMPTS`] are spent.
pub async fn kube<T, F, Fut>(what: &str, call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    Ok(kube_by(what, None, call)
        .await?
        .expect("no deadline, so every attempt is made"))
}

/// Like [`kube`], but no attempt (the first or a retry) starts at or after `deadline`: then
/// `Ok(None)`, and nothing more was sent.
pub async fn kube_by<T, F, Fut>(
    what: &str,
    deadline: Option<tokio::time::Instant>,
    mut call: F,
) -> Result<Option<T>, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Ok(None);
        }
        match call().await {
            Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                tracing::warn!(what, attempt, error = %e, "apiserver call failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            res => return res.map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("x", "y")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn transient_errors_are_told_apart() {
        assert!(is_transient(&api(503)) && is_transient(&api(429)) && is_transient(&api(500)));
        assert!(!is_transient(&api(404)) && !is_transient(&api(409)) && !is_transient(&api(410)));
        assert!(!is_transient(&api(403)));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_gives_up() {
        let mut calls = 0;
        let res: Result<(), _> = kube("t", || {
            calls += 1;
            async { Err(api(503)) }
        })
        .await;
        assert!(res.is_err());
        assert_eq!(calls, ATTEMPTS);
        let mut calls = 0;
        let res: Result<(), _> = kube("t", || {
            calls += 1;
            async { Err(api(404)) }
        })
        .await;
        assert!(res.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let res = kube("t", || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api(500)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(res.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_past_the_deadline() {
        // Past already: nothing is sent.
        let mut calls = 0;
        let past = tokio::time::Instant::now();
        let res: Result<Option<()>, _> = kube_by("t", Some(past), || {
            calls += 1;
            async { Ok(()) }
        })
        .await;
        assert!(matches!(res, Ok(None)));
        assert_eq!(calls, 0);
        // Transient failures until the deadline: the retry after it is not sent.
        let mut calls = 0;
        let soon = tokio::time::Instant::now() + Duration::from_millis(600);
        let res: Result<Option<()>, _> = kube_by("t", Some(soon), || {
            calls += 1;
            async { Err(api(503)) }
        })
        .await;
        assert!(matches!(res, Ok(None)));
        // Attempts at 0, 0.25 s and 0.75 s: the third starts past 0.6 s and is not made.
        assert_eq!(calls, 2);
    }
}
