//! `[metrics] listen`: `/metrics` (Prometheus text) and `/healthz` over plain HTTP, from any
//! binary.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use netboot_records::Telemetry;
use tokio::net::TcpListener;

use crate::Shutdown;

/// The bound metrics listener.
#[derive(Debug)]
pub(crate) struct MetricsListener {
    listener: TcpListener,
}

#[derive(Debug, Clone)]
struct Exposed {
    telemetry: Telemetry,
    shutdown: Shutdown,
}

impl MetricsListener {
    /// Binds `listen`, when set.
    pub(crate) async fn bind(listen: Option<SocketAddr>) -> anyhow::Result<Option<Self>> {
        let Some(addr) = listen else {
            return Ok(None);
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding metrics.listen {addr}"))?;
        Ok(Some(Self { listener }))
    }

    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop`; `/healthz` reports `draining` once `shutdown` has begun.
    pub(crate) async fn serve(
        self,
        telemetry: Telemetry,
        shutdown: Shutdown,
        stop: impl Future<Output = ()> + Send + 'static,
    ) {
        let router = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .with_state(Exposed { telemetry, shutdown });
        if let Err(error) = axum::serve(self.listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(%error, "metrics listener failed");
        }
    }
}

async fn metrics(State(exposed): State<Exposed>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        exposed.telemetry.render_metrics(),
    )
}

async fn healthz(State(exposed): State<Exposed>) -> impl IntoResponse {
    if exposed.shutdown.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}
