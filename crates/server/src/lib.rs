//! The Bursar HTTP server: routes, auth, problem+json errors, OpenAPI, metrics and the
//! background jobs, over `bursar_store`.

pub mod app;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod error;
pub mod jobs;
pub mod json;
pub mod listen;
pub mod observe;
pub mod openapi;
pub mod outcomes;
pub mod payments;
pub mod qr;
pub mod reads;
pub mod receipts;
pub mod routes;
pub mod uniform_errors;
pub mod views;
pub mod web;
pub mod wechatpay_certificates;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use bursar_store::{Clock, SqliteSync, Store, settings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

pub use config::Config;

use auth::rate_limit::AuthLimiter;
use auth::tokens::TokenKeys;

/// Request bodies larger than this are refused with 413.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares. Axum clones the state for each request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Store,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    pub limiter: Arc<AuthLimiter>,
    /// Google, Apple and Facebook sign-in, as configured.
    pub sign_in: Arc<auth::sign_in::SignInProviders>,
    /// Hashes one-time sign-in codes.
    pub code_key: Arc<app::sign_in_codes::CodeKey>,
    pub decoy_hash: Arc<String>,
    pub access: Arc<auth::cache::AccessCache>,
    pub payments: Arc<payments::Payments>,
    /// Where notifications go: email, SMS or the log.
    pub senders: Arc<delivery::Senders>,
    /// Sends outgoing webhooks: a bounded wait, redirects never followed.
    pub webhook_client: reqwest::Client,
    /// The kinds of background job this server runs (`jobs`).
    pub jobs: Arc<bursar_worker::Registry<AppState>>,
    /// Names this instance in the job queue's leases.
    pub worker_id: String,
}

/// Opens the store (running migrations) and prepares everything the routes share.
pub async fn prepare(config: Config, clock: Clock) -> anyhow::Result<AppState> {
    auth::tokens::install_crypto_provider();
    let sync = if config.sqlite_durable {
        SqliteSync::Full
    } else {
        SqliteSync::Normal
    };
    let store = Store::open(&config.database_url, sync, clock).await?;
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => {
            settings::get_or_init(&store.db, "jwt_secret", || {
                bursar_store::ids::new_secret("jwt")
            })
            .await?
        }
    };
    let code_secret = settings::get_or_init(&store.db, "sign_in_code_secret", || {
        bursar_store::ids::new_secret("csk")
    })
    .await?;
    if config.demo_catalog && store.seed_demo_catalog().await? {
        tracing::info!("created the demo catalog");
    }
    let payments = Arc::new(payments::Payments::from_config(&config, &store).await?);
    let senders = Arc::new(delivery::Senders::from_config(&config)?);
    let webhook_client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(config.webhook_timeout_s))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(AppState(Arc::new(Shared {
        senders,
        webhook_client,
        jobs: Arc::new(jobs::registry(&config)),
        worker_id: bursar_store::ids::new_id("wkr"),
        payments,
        tokens: Arc::new(TokenKeys::new(&secret, config.access_token_ttl_s)),
        limiter: Arc::new(AuthLimiter::new(config.auth_attempts_per_minute)),
        sign_in: Arc::new(auth::sign_in::SignInProviders::from_config(&config)?),
        code_key: Arc::new(app::sign_in_codes::CodeKey::new(&code_secret)),
        decoy_hash: Arc::new(auth::password::decoy_hash().await?),
        access: Arc::default(),
        config: Arc::new(config),
        store,
    })))
}

pub fn router(state: AppState) -> Router {
    let (api, openapi) = routes::api_router().split_for_parts();
    let openapi = openapi::finish(openapi, &state.payments.names());
    Router::new()
        .merge(api)
        .merge(routes::ops::router(openapi))
        .merge(web::router(state.clone()))
        .fallback(routes::ops::not_found)
        .method_not_allowed_fallback(routes::ops::method_not_allowed)
        .layer(axum::middleware::from_fn(json::refuse_nul_in_uri))
        .layer(axum::middleware::from_fn(observe::record_request))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(uniform_errors::uniform_errors))
        .layer(CatchPanicLayer::custom(observe::panic_response))
        .layer(observe::trace_layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// A running server: where it listens and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub shutdown: CancellationToken,
    /// Ends once the server has stopped, every background task has finished and the store is
    /// closed.
    pub finished: tokio::task::JoinHandle<()>,
    /// Set when the server stopped because its ledger writer had died (exit non-zero, so a
    /// supervisor restarts it).
    pub writer_failed: Arc<std::sync::atomic::AtomicBool>,
}

/// Binds, starts the background jobs and serves until `shutdown` is cancelled; then waits for
/// requests in flight and for every background task.
pub async fn start(state: AppState, addr: SocketAddr) -> anyhow::Result<Running> {
    observe::install_metrics_recorder();
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let background = tokio_util::task::TaskTracker::new();
    jobs::spawn(&state, shutdown.clone(), &background);
    background.spawn(forget_idle_rate_limits(state.clone(), shutdown.clone()));
    let writer_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    background.spawn(stop_if_the_writer_dies(
        state.clone(),
        shutdown.clone(),
        writer_failed.clone(),
    ));
    let app = router(state.clone());
    let limits = listen::Limits {
        header_timeout: Duration::from_secs(state.config.header_timeout_s),
        connections_max: listen::within_open_file_limit(state.config.connections_max),
        write_timeout: Duration::from_secs(state.config.write_timeout_s),
    };
    let stop = shutdown.clone();
    let store = state.store.clone();
    let finished = tokio::spawn(async move {
        listen::serve(listener, app, limits, stop).await;
        background.close();
        background.wait().await;
        store.close().await;
    });
    tracing::info!(%addr, "bursar is listening");
    Ok(Running {
        addr,
        state,
        shutdown,
        finished,
        writer_failed,
    })
}

/// Rate-limit keys and the API keys' uses are this instance's memory, not shared work, so they
/// are tidied and written here rather than by a job on the queue. The uses are written once
/// more on the way out.
async fn forget_idle_rate_limits(state: AppState, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                state.limiter.forget_idle();
                record_api_key_uses(&state).await;
            }
        }
    }
    record_api_key_uses(&state).await;
}

/// Writes the API keys' last uses seen by this instance (`last_used_at`). A failure is logged;
/// those uses are then lost, which only makes `last_used_at` older than it should be.
pub async fn record_api_key_uses(state: &AppState) {
    let uses = state.access.take_key_uses();
    if uses.is_empty() {
        return;
    }
    if let Err(error) = state.store.record_api_key_uses(&uses).await {
        tracing::warn!(%error, "recording API keys' last use failed");
    }
}

/// Without its ledger writer a server can move no credits: rather than answer every write with
/// an error, it stops (and `/ready` says 503 meanwhile), so its supervisor starts a fresh one.
async fn stop_if_the_writer_dies(
    state: AppState,
    shutdown: CancellationToken,
    failed: Arc<std::sync::atomic::AtomicBool>,
) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = state.store.ledger.stopped() => {
            tracing::error!("the ledger writer stopped; shutting down so that a supervisor restarts Bursar");
            failed.store(true, std::sync::atomic::Ordering::SeqCst);
            shutdown.cancel();
        }
    }
}
