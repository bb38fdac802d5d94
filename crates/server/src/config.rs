//! Settings, read from environment variables (or from `bursar.toml` lines `NAME = "value"`,
//! which the binary loads into the environment before this runs).

use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    /// `None`: generate one on first start and keep it in the database.
    pub jwt_secret: Option<String>,
    pub access_token_ttl_s: i64,
    pub refresh_token_ttl_s: i64,
    /// `synchronous=FULL` (durable against power loss) unless turned off.
    pub sqlite_durable: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Login and register attempts allowed per client address per minute, and per email.
    pub auth_attempts_per_minute: u32,
    /// How often overdue holds and grants are swept.
    pub expiry_sweep_interval_s: u64,
    /// Trust `X-Forwarded-For` for the client address (only behind a proxy you run).
    pub trust_forwarded_for: bool,
    /// Create the demo catalog on first start with an empty catalog.
    pub demo_catalog: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    name: &'static str,
    problem: String,
}

/// Where settings come from: the environment first, then the settings file's values.
struct Sources<'a> {
    file: &'a HashMap<String, String>,
}

impl Sources<'_> {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
            .filter(|v| !v.trim().is_empty())
    }

    fn parsed<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.var(name) {
            None => Ok(default),
            Some(text) => text.trim().parse().map_err(|e: T::Err| ConfigError {
                name,
                problem: format!("{text:?} is not valid: {e}"),
            }),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_sources(&HashMap::new())
    }

    /// Reads every setting from the environment, falling back to `file` (from `bursar.toml`).
    pub fn from_sources(file: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let src = Sources { file };
        Ok(Self {
            addr: src.parsed("BURSAR_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database_url: src
                .var("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://bursar.db".into()),
            jwt_secret: src.var("BURSAR_JWT_SECRET"),
            access_token_ttl_s: src.parsed("BURSAR_ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl_s: src.parsed("BURSAR_REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
            sqlite_durable: !matches!(
                src.var("BURSAR_SQLITE_SYNCHRONOUS").as_deref(),
                Some("normal" | "NORMAL")
            ),
            metrics_token: src.var("BURSAR_METRICS_TOKEN"),
            auth_attempts_per_minute: src.parsed("BURSAR_AUTH_ATTEMPTS_PER_MINUTE", 10)?,
            expiry_sweep_interval_s: src.parsed("BURSAR_EXPIRY_SWEEP_SECONDS", 30)?,
            trust_forwarded_for: src.parsed("BURSAR_TRUST_FORWARDED_FOR", false)?,
            demo_catalog: src.parsed("BURSAR_DEMO_CATALOG", true)?,
        })
    }

    /// Settings for tests: an ephemeral port and the given database.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_string(),
            jwt_secret: None,
            access_token_ttl_s: 900,
            refresh_token_ttl_s: 3600,
            sqlite_durable: true,
            metrics_token: None,
            auth_attempts_per_minute: 1000,
            expiry_sweep_interval_s: 3600,
            trust_forwarded_for: true,
            demo_catalog: false,
        }
    }
}
