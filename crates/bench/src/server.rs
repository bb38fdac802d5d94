//! The server under test: a `bursar serve` child process on a free loopback port with a fresh
//! database, stopped when this value is dropped (the database is removed only on request).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bursar_store::testing::{Backend, fresh_database_url};

use crate::{Args, BackendArg};

pub struct Server {
    pub base: String,
    pub database_url: String,
    pub bursar: std::path::PathBuf,
    child: Child,
}

impl Server {
    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        let backend = match args.backend {
            BackendArg::Sqlite => Backend::Sqlite,
            BackendArg::Postgres => Backend::Postgres,
        };
        let database_url = fresh_database_url(backend, "bench").await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(&args.bursar);
        command
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("BURSAR_ADDR", format!("127.0.0.1:{port}"))
            .env("BURSAR_AUTH_ATTEMPTS_PER_MINUTE", "1000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if args.server_logs {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if args.sqlite_normal {
            command.env("BURSAR_SQLITE_SYNCHRONOUS", "normal");
        }
        let child = command.spawn().map_err(|e| {
            anyhow::anyhow!(
                "cannot start {}: {e} (run cargo build --release first)",
                args.bursar.display()
            )
        })?;
        let server = Self {
            base: format!("http://127.0.0.1:{port}"),
            database_url,
            bursar: args.bursar.clone(),
            child,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/health", server.base))
                .send()
                .await
                .is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the server did not answer /health within 10 s")
    }

    /// Runs a `bursar` admin command against the same database.
    pub fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(&self.bursar)
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "bursar {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Stops the server and removes its database (a run writes hundreds of thousands of rows).
    pub async fn stop_and_remove_database(self) {
        let url = self.database_url.clone();
        drop(self);
        bursar_store::testing::remove_database(&url).await;
    }

    /// The server's peak resident memory (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
