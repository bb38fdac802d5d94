//! `bursar`: the server and its admin commands in one binary.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use bursar_server::Config;
use bursar_store::{Clock, SqliteSync, Store, verify};
use clap::{Parser, Subcommand};

// mimalloc: fewer cycles per allocation on the request path than the system allocator, and it
// hands Argon2's 19 MiB work areas back instead of keeping one per thread.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "bursar",
    version,
    about = "Prepaid credits with a double-entry ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the hosted payment pages and the background jobs (migrations run first).
    Serve {
        /// Do not create the demo catalog on first start (same as BURSAR_DEMO_CATALOG=false).
        #[arg(long)]
        no_demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage service API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Inspect the ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin, or promote the existing user with this email (and set the password).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print its secret (shown this once only).
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Check every ledger invariant; exits 0 when all hold, 1 with a list of problems otherwise.
    Verify,
}

/// Reads `bursar.toml` (or `BURSAR_CONFIG`): flat `NAME = "value"` pairs, the same names as
/// the environment variables, which win over the file.
fn load_settings_file() -> anyhow::Result<HashMap<String, String>> {
    let path = std::env::var("BURSAR_CONFIG").unwrap_or_else(|_| "bursar.toml".into());
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(HashMap::new());
    };
    let table: toml::Table = text.parse().with_context(|| format!("reading {path}"))?;
    Ok(table
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            (name, value)
        })
        .collect())
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let sync = if config.sqlite_durable {
        SqliteSync::Full
    } else {
        SqliteSync::Normal
    };
    Ok(Store::open(&config.database_url, sync, Clock::default()).await?)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::from_sources(&load_settings_file()?)?;
    match cli.command {
        Command::Serve { no_demo } => {
            init_logging("info");
            let mut config = config;
            config.demo_catalog &= !no_demo;
            let state = bursar_server::prepare(config.clone(), Clock::default()).await?;
            let running = bursar_server::start(state, config.addr).await?;
            eprintln!("bursar listening on http://{}", running.addr);
            // A signal stops the server; so does the server itself (its ledger writer died).
            tokio::select! {
                signal = stop_signal() => signal?,
                () = running.shutdown.cancelled() => {}
            }
            tracing::info!("stopping: finishing requests in flight");
            running.shutdown.cancel();
            running.finished.await?;
            if running
                .writer_failed
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Migrate => {
            init_logging("warn");
            open_store(&config).await?;
            println!("migrations applied");
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    password: plain,
                },
        } => {
            init_logging("warn");
            let store = open_store(&config).await?;
            let user = bursar_server::app::accounts::make_admin(&store, &email, plain)
                .await
                .map_err(refused)?;
            println!("admin {} ({})", user.email, user.id);
        }
        Command::ApiKey {
            command: ApiKeyCommand::Create { name },
        } => {
            init_logging("warn");
            let store = open_store(&config).await?;
            let audit = bursar_store::audit::AuditRecord::by_cli("api_key.create");
            let key = bursar_server::app::api_keys::create(&store, &name, None, audit)
                .await
                .map_err(refused)?;
            eprintln!(
                "API key {} created; store the secret now, it is not shown again:",
                key.key.id
            );
            println!("{}", key.secret);
        }
        Command::Ledger {
            command: LedgerCommand::Verify,
        } => {
            init_logging("warn");
            let store = open_store(&config).await?;
            let report = verify::verify(&store.db).await?;
            for asset in &report.assets {
                println!(
                    "asset {}: {} accounts, {} transfers, balances sum to {}",
                    asset.asset, asset.accounts, asset.transfers, asset.sum_of_balances
                );
            }
            if report.ok {
                println!("ledger ok: every invariant holds");
            } else {
                println!("ledger has {} problem(s):", report.problems.len());
                for problem in &report.problems {
                    println!("  - {problem}");
                }
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C or SIGTERM (what service managers and containers send to stop).
async fn stop_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// A rule's refusal, as the API would say it (without the status: this is the command line).
fn refused(error: bursar_server::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!(error.detail)
}

/// One line per error: its causes joined, leaving out any that only repeats what an outer one
/// already said (a store error's message often quotes the database error it wraps).
fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::from(2)
        }
    }
}
