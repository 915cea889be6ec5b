//! Connections: the accept loop around the router, with what `axum::serve` lacks against
//! hostile clients.
//!
//! * **A connection limit** (`serve.max_connections`, lowered to what the open-file limit
//!   allows): a connection over it is answered 503 with `Retry-After` and closed at once,
//!   instead of exhausting file descriptors and locking everyone out.
//! * **Header and idle timeouts** (`serve.timeout_seconds`): hyper's header-read timeout
//!   runs from the moment a connection waits for a request, so a client that sends its
//!   headers slowly (slowloris), or nothing at all, or sits idle between requests, is
//!   disconnected after it.
//! * **A body rate** ([`MinRate`]): once the handler reads a body, it must arrive at 32 KiB/s
//!   after a grace of the same timeout (Apache's mod_reqtimeout rule); a body dripped
//!   slowly is cut with 408. (tower-http's body timeout restarts at every chunk, so a drip
//!   never trips it: hence this small wrapper.)
//! * **Shutdown** that ends: the listener closes, idle connections close at once, requests
//!   in flight get [`GRACE`] to finish, and whatever is left (a half-sent request) is
//!   dropped.
//!
//! HTTP/1.1 only (hyper's server connection, as axum's `http1` feature gives).
//!
//! May not: route or answer requests itself (the router does), beyond the canned 503.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

use super::{router, AppState};

/// Requests in flight get this long to finish after SIGTERM; then their connections close.
pub const GRACE: Duration = Duration::from_secs(5);
/// The slowest a request body may arrive once the grace (the timeout) has passed.
pub const MIN_BODY_RATE: u64 = 32 * 1024;
/// Blocking threads the runtime may start: room for the pool (`blocking::size`, at most 16)
/// and the thumbnail decodes.
pub const RUNTIME_BLOCKING_THREADS: usize = 32;
/// File descriptors kept for everything but connections: the catalog (3 per open
/// connection to it), files read, libraries, logs.
const RESERVED_FDS: u64 = 64 + 4 * RUNTIME_BLOCKING_THREADS as u64;

/// Serves the page and API on `listener` until `shutdown` completes, then closes idle
/// connections, gives requests in flight [`GRACE`] to finish, and returns.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = state.settings.timeout;
    let max = connection_limit(state.settings.max_connections);
    let app = router(Arc::clone(&state));
    let slots = Arc::new(Semaphore::new(max));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::debug!(max_connections = max, ?timeout, "accepting connections");
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors (or a connection reset before it was
                    // accepted): wait a little rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let req = req.map(|body| axum::body::Body::new(MinRate::new(body, timeout)));
            app.clone().oneshot(req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    let open = max - slots.available_permits();
    if open > 0 {
        tracing::info!(connections = open, "closing connections");
    }
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still unfinished after {} s: their connections are closed",
            GRACE.as_secs()
        );
    }
    Ok(())
}

/// The most connections at once: the configured number, lowered so that connections can
/// never take the file descriptors the server needs for its own work. Raises the soft
/// open-file limit to the hard one first.
fn connection_limit(configured: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct for this process.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return configured;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max.min(1 << 20),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = raised.rlim_cur;
            }
        }
        lim.rlim_cur
    };
    let room = (soft as u64).saturating_sub(RESERVED_FDS).max(8);
    let max = configured.min(room as usize);
    if max < configured {
        tracing::info!(
            "at most {max} connections at once (the open-file limit is {soft}; serve.max_connections is {configured})"
        );
    }
    max
}

/// Answers a connection over the limit with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":"too many connections; try again in a moment"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        super::error::BUSY_RETRY_SECONDS,
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A request body arrived too slowly (see [`MinRate`]).
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly (under {} KiB/s); answered 408", MIN_BODY_RATE / 1024)]
pub struct TooSlow;

/// Whether an error (or any of its causes) is [`TooSlow`].
pub fn too_slow(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<TooSlow>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A request body that must keep up [`MIN_BODY_RATE`] once `grace` has passed since the
/// handler began reading it: the deadline for the next chunk is `start + grace +
/// received / rate`.
pub struct MinRate<B> {
    inner: B,
    grace: Duration,
    started: Option<Instant>,
    received: u64,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> MinRate<B> {
    pub fn new(inner: B, grace: Duration) -> MinRate<B> {
        MinRate {
            inner,
            grace,
            started: None,
            received: 0,
            timer: None,
        }
    }
}

impl<B> HttpBody for MinRate<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let earned = Duration::from_secs_f64(this.received as f64 / MIN_BODY_RATE as f64);
                let deadline = started + this.grace + earned;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(TooSlow)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that yields `left` chunks of `size` bytes, one every `every`.
    struct Drip {
        left: usize,
        size: usize,
        every: Duration,
        next: Option<Pin<Box<tokio::time::Sleep>>>,
    }

    fn drip(left: usize, size: usize, every: Duration) -> Drip {
        Drip {
            left,
            size,
            every,
            next: None,
        }
    }

    impl HttpBody for Drip {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            let this = self.get_mut();
            if this.left == 0 {
                return Poll::Ready(None);
            }
            let every = this.every;
            let next = this
                .next
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
            match next.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    this.next = None;
                    this.left -= 1;
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; this.size])))))
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dripped_body_is_cut_and_a_steady_one_is_not() {
        // 100 bytes a second: cut once the grace is over.
        let slow = MinRate::new(
            drip(1000, 100, Duration::from_secs(1)),
            Duration::from_secs(10),
        );
        let e = slow.collect().await.unwrap_err();
        assert!(too_slow(e.as_ref()), "{e}");
        // 64 KiB a second for a minute: fine.
        let steady = MinRate::new(
            drip(60, 64 * 1024, Duration::from_secs(1)),
            Duration::from_secs(10),
        );
        assert_eq!(
            steady.collect().await.unwrap().to_bytes().len(),
            60 * 64 * 1024
        );
    }
}
