//! When an API write is worth repeating, and how long to wait before doing so. Every write of
//! the simulated nodes goes through here so a busy or restarting API server slows them down
//! instead of losing their state.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The HTTP status of an API error (`None` for transport and decoding errors).
pub(crate) fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Whether the same request may succeed later: throttling, server errors and transport errors
/// (the in-process client and a TLS connection both fail that way while the server restarts).
pub(crate) fn is_transient(e: &kube::Error) -> bool {
    match code(e) {
        Some(c) => c == 429 || c >= 500,
        None => true,
    }
}

/// Exponential backoff, 100 ms doubling to 10 s.
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// Waits for the next delay; false when `shutdown` came first.
    pub(crate) async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

/// Runs `op` until it succeeds or fails for good, backing off after transient errors. `Ok(None)`
/// when `shutdown` came first.
pub(crate) async fn transient<T, F, Fut>(
    shutdown: &CancellationToken,
    what: &str,
    mut op: F,
) -> Result<Option<T>, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut backoff = Backoff::new();
    loop {
        match op().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "{what} failed; retrying");
                if !backoff.wait(shutdown).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends a PATCH (of `subresource`, if given) whose answer the caller does not read: the
/// answer's body is taken as text and dropped instead of decoded. Decoding the pod a status
/// write returns was about a tenth of that write's CPU (client and server share the process);
/// with 5,000 nodes renewing leases and every pod reported Running, these writes are most of
/// what a simulated node does. Errors are the same `kube::Error`s as `Api::patch` gives.
pub(crate) async fn patch_unread<K, P>(
    client: &kube::Client,
    namespace: Option<&str>,
    name: &str,
    subresource: Option<&str>,
    patch: &kube::api::Patch<P>,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = ()>,
    P: serde::Serialize + std::fmt::Debug,
{
    let request = kube::core::Request::new(K::url_path(&(), namespace));
    let pp = kube::api::PatchParams::default();
    let req = match subresource {
        Some(sub) => request.patch_subresource(sub, name, &pp, patch),
        None => request.patch(name, &pp, patch),
    }
    .map_err(kube::Error::BuildRequest)?;
    client.request_text(req).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure("x", "y").with_code(code).boxed())
    }

    #[test]
    fn transient_errors() {
        assert!(is_transient(&api(429)));
        assert!(is_transient(&api(500)));
        assert!(is_transient(&api(503)));
        assert!(!is_transient(&api(403)));
        assert!(!is_transient(&api(409)));
        assert!(!is_transient(&api(422)));
        assert_eq!(code(&api(404)), Some(404));
    }

    #[tokio::test]
    async fn transient_retries_then_gives_up_on_a_final_error() {
        let shutdown = CancellationToken::new();
        let mut calls = 0;
        let r: Result<Option<()>, _> = transient(&shutdown, "test", || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api(503)) } else { Err(api(403)) } }
        })
        .await;
        assert_eq!(calls, 3);
        assert_eq!(r.err().and_then(|e| code(&e)), Some(403));
        let mut ok_calls = 0;
        let r = transient(&shutdown, "test", || {
            ok_calls += 1;
            async { Ok::<_, kube::Error>(7) }
        })
        .await;
        assert_eq!(r.ok().flatten(), Some(7));
        assert_eq!(ok_calls, 1);
        shutdown.cancel();
        let r: Result<Option<()>, _> = transient(&shutdown, "test", || async { Err(api(500)) }).await;
        assert!(matches!(r, Ok(None)));
    }
}
