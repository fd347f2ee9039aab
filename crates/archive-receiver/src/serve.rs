//! The accept loop: each connection served by hyper's HTTP/1 with a header-read timeout, at most
//! [`Limits::max_connections`] at once, and on shutdown a graceful stop (idle keep-alive connections closed at
//! once, requests in flight finished) bounded by [`Limits::shutdown_grace`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;

use archive_db::Submitter;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::{Limits, ReceiverConfig, ServeError, router};

/// Serves [`router`] on `listener` until `shutdown` resolves, then stops accepting, closes idle connections,
/// lets requests in flight finish for at most [`Limits::shutdown_grace`], and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ReceiverConfig,
    submitter: Submitter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let limits: Limits = config.limits;
    serve_router(listener, limits, router(config, submitter), shutdown).await
}

/// [`serve`] for a router made by the caller ([`crate::router_with`], to keep its [`crate::Metrics`]): the
/// same accept loop, with `limits`' connection cap, header timeout and shutdown grace.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    limits: Limits,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = pin!(shutdown);
    loop {
        // A connection slot first: beyond the cap, new connections wait in the kernel's backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = app
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {} s: closed",
            limits.shutdown_grace.as_secs_f32()
        );
    }
    Ok(())
}
