//! The HTTP listener, with the bounds a server on the open internet needs and axum's own
//! `serve` does not set: how long a connection may take to send a request's headers (counted
//! from when it opens or when its last response was sent, so it also ends idle keep-alive
//! connections and clients that trickle a header a byte at a time), and how many connections
//! are open at once. Past that number a new connection is answered 503 at once and closed,
//! so a flood of idle sockets can neither exhaust file descriptors nor make clients hang. A
//! response its client does not read is given up after a while too (`stall.rs`).

mod stall;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a request's headers, from the connection's start or its last response.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub connections_max: usize,
    /// How long a response may wait for its client to read any of it.
    pub write_timeout: Duration,
}

/// At most this many refused connections are being told so at once; past it they are closed
/// without a word.
const REFUSALS_IN_FLIGHT_MAX: usize = 64;

/// `wanted` connections, or fewer if the process may not open that many files: each connection
/// is one, and the database, the log and the listener need some of their own.
pub fn within_open_file_limit(wanted: usize) -> usize {
    const RESERVED: usize = 256;
    let Some(soft) = open_file_limit() else {
        return wanted;
    };
    let allowed = soft.saturating_sub(RESERVED).max(1);
    if wanted > allowed {
        tracing::warn!(
            wanted,
            allowed,
            open_file_limit = soft,
            "BURSAR_CONNECTIONS_MAX is above what the open-file limit leaves; raise the limit (ulimit -n) to allow more"
        );
        return allowed;
    }
    wanted
}

/// The soft limit on open files, from `/proc/self/limits` (Linux; `None` elsewhere or if
/// unlimited).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// What a connection past the limit is told before it is closed: a 503 problem, as raw bytes
/// written without waiting (see `refuse`).
static BUSY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let problem = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "too many open connections; try again shortly",
    )
    .problem();
    let body = serde_json::to_string(&problem).unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Serves `router` until `stop`, then lets requests in flight finish (idle connections close
/// at once) and returns when every connection has ended.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT_MAX));
    let connections = TaskTracker::new();
    loop {
        let (stream, remote) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, &refusals);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stop = stop.clone();
        let router = router.clone();
        connections.spawn(async move {
            metrics::gauge!("bursar_http_connections_open").increment(1.0);
            serve_connection(stream, remote, router, limits, stop).await;
            metrics::gauge!("bursar_http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    // No longer accepting: new clients are refused by the kernel (and fail over) instead of
    // waiting in the backlog while the connections in flight drain.
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request.map(axum::body::Body::new)
    });
    // HTTP/1.1 only: an automatic HTTP/2 detection would first wait, unbounded, for the bytes
    // that tell the versions apart. (A proxy in front speaks HTTP/2 to browsers if wanted.)
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(
            TokioIo::new(stall::StallLimit::new(stream, limits.write_timeout)),
            TowerToHyperService::new(service),
        );
    let mut connection = pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            return;
        }
        () = stop.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!(%error, %remote, "connection ended with an error while stopping");
    }
}

/// Answers a connection past the limit, in a short task of its own (at most about 2 s): the
/// request's head is read, the 503 written, the write side closed, and whatever else the client
/// sent is read and dropped for a moment, so the close does not turn into a reset that loses
/// the answer. Bounded: past
/// `REFUSALS_IN_FLIGHT_MAX` at once, the connection is simply closed.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>) {
    metrics::counter!("bursar_http_connections_refused_total").increment(1);
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = stream;
        let mut head = Vec::with_capacity(1024);
        let heard = async {
            // The request's head first: a client reads an answer only to what it has sent.
            let mut chunk = [0_u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                let read = stream.read(&mut chunk).await?;
                if read == 0 {
                    break;
                }
                head.extend_from_slice(&chunk[..read]);
            }
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), heard).await;
        let told = async {
            stream.write_all(&BUSY).await?;
            stream.shutdown().await?;
            let mut sink = [0_u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), told).await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn connections_stay_below_the_open_file_limit() {
        let limit = super::open_file_limit();
        let allowed = super::within_open_file_limit(usize::MAX);
        match limit {
            Some(soft) => assert!(allowed < soft, "{allowed} of {soft}"),
            None => assert_eq!(allowed, usize::MAX),
        }
        assert_eq!(super::within_open_file_limit(10), 10);
    }
}
