//! The `pages` profile: how long the member pages take on a large database.
//!
//! Seeds `--users` users (registered with passwords, each given credits by an admin adjustment:
//! one transfer each) and then spends through `POST /api/v1/credits/spend` with the service key
//! until the ledger holds `--transfers` transfers, so balances, grants and (on SQLite) the
//! history index are what the ledger itself wrote. The spends are skewed: `--heavy-users` users
//! get `--heavy-transfers` transfers each, the rest share the remainder, all interleaved at
//! random. A few pending orders are placed for the users whose pages are requested.
//!
//! Then the heavy users and `--sessions` ordinary users sign in on the web form (`GET /login`
//! for the CSRF cookie and token, `POST /login`), and every member page is requested
//! `--page-requests` times at `--page-clients` clients for random ordinary users and for the
//! heavy users, page by page. Latency is taken on the client over loopback (so it is an upper
//! bound of the server's time); the server's own `http_request_duration_seconds` histogram for
//! the page's route is read before and after each page's run and reported beside it. Any answer
//! other than 200 fails the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::load::Connection;
use crate::report::{Latency, percentile};
use crate::server::Server;
use crate::setup::{Fixture, prepare};
use crate::{Args, BackendArg};

/// The target the issue sets for every page (p99, server side).
const TARGET_MS: f64 = 100.0;
/// No phase of the run goes on longer than this.
const SEED_SECONDS_MAX: u64 = 1800;
const PAGE_SECONDS_MAX: u64 = 120;
/// Pending orders placed for each heavy user and for each other signed-in user.
const ORDERS_HEAVY: usize = 30;
const ORDERS_OTHER: usize = 2;

#[derive(Debug, serde::Serialize)]
pub struct Seeding {
    pub users: usize,
    pub heavy_users: usize,
    pub heavy_transfers_each: usize,
    /// Transfers written: one grant per user plus the acknowledged spends.
    pub transfers: u64,
    pub spends: u64,
    pub spend_failures: u64,
    pub register_and_grant_s: f64,
    pub spend_s: f64,
    pub spends_per_s: f64,
}

/// The server's histogram for a route, between two samples.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServerSide {
    pub count: f64,
    pub mean_ms: f64,
    /// Share of the requests the server answered within 100 ms.
    pub within_100_ms: f64,
    /// The upper bound of the histogram bucket that holds the 99th percentile (buckets: 1, 2.5,
    /// 5, 10, 25, 50, 100, 250, 500 ms, …).
    pub p99_at_most_ms: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct PageResult {
    pub page: String,
    /// `random` (ordinary users) or `heavy`.
    pub users: &'static str,
    pub requests: usize,
    pub latency: Latency,
    pub mean_body_kib: f64,
    pub server: Option<ServerSide>,
    pub over_target: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct PagesResult {
    pub backend: BackendArg,
    pub sqlite_synchronous: &'static str,
    pub cores: usize,
    pub page_clients: usize,
    pub seeding: Seeding,
    pub ledger_verify_ok: bool,
    pub pages: Vec<PageResult>,
    pub passed: bool,
}

pub async fn run(args: &Args) -> anyhow::Result<bool> {
    let server = Server::start(args).await?;
    let started = Instant::now();
    let fixture = Arc::new(prepare(&server, args).await?);
    let register_and_grant_s = started.elapsed().as_secs_f64();
    eprintln!(
        "{} users registered and granted credits in {register_and_grant_s:.0} s",
        fixture.users.len()
    );
    let heavy = args.heavy_users.min(fixture.users.len());
    let mut seeding = spend_to_volume(&fixture, args, heavy).await?;
    seeding.register_and_grant_s = register_and_grant_s;

    let mut rng = rand::rng();
    let mut others: Vec<usize> = (heavy..fixture.users.len()).collect();
    others.shuffle(&mut rng);
    others.truncate(args.sessions);
    place_orders(&fixture, heavy, &others).await?;
    eprintln!("signing in {} users on the web form", heavy + others.len());
    let heavy_sessions = sign_in_all(&fixture, 0..heavy).await?;
    let other_sessions = sign_in_all(&fixture, others.iter().copied()).await?;
    if matches!(args.backend, BackendArg::Postgres) {
        analyze(&server.database_url).await?;
    }

    let verify: Value = fixture
        .client
        .get(format!("{}/api/v1/admin/ledger/verify", fixture.base))
        .bearer_auth(&fixture.admin_token)
        .send()
        .await?
        .json()
        .await?;
    let ledger_verify_ok = verify["ok"].as_bool() == Some(true);
    if !ledger_verify_ok {
        eprintln!("ledger verify: {verify}");
    }

    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap_or(today);
    let pages: Vec<(String, &str)> = vec![
        ("/account".into(), "/account"),
        ("/account/transactions".into(), "/account/transactions"),
        (
            "/account/transactions?kind=spend".into(),
            "/account/transactions",
        ),
        (
            format!("/account/transactions?from={today}"),
            "/account/transactions",
        ),
        // Worst cases of the filters: a kind that each user has once (their grant) and a date
        // range before every transfer, so the page reads the whole history to fill 25 rows.
        (
            "/account/transactions?kind=adjustment".into(),
            "/account/transactions",
        ),
        (
            format!("/account/transactions?to={yesterday}"),
            "/account/transactions",
        ),
        ("/account/orders".into(), "/account/orders"),
        ("/account/buy".into(), "/account/buy"),
        ("/account/settings".into(), "/account/settings"),
        (
            "/account/transactions.csv".into(),
            "/account/transactions.csv",
        ),
    ];
    let mut results = Vec::new();
    for (path, route) in &pages {
        for (users, sessions) in [("random", &other_sessions), ("heavy", &heavy_sessions)] {
            if sessions.is_empty() {
                continue;
            }
            // A heavy user's export and the filters that read a whole history are slow by
            // nature: fewer of them.
            let whole_history =
                path.ends_with(".csv") || path.contains("kind=adjustment") || path.contains("to=");
            let requests = if whole_history && users == "heavy" {
                (args.page_requests / 4).max(1)
            } else {
                args.page_requests
            };
            let result = measure_page(&fixture, args, path, route, users, sessions, requests).await;
            print_row(&result);
            results.push(result);
        }
    }
    let passed = ledger_verify_ok
        && seeding.spend_failures == 0
        && results.iter().all(|r| r.failures.is_empty());
    let result = PagesResult {
        backend: args.backend,
        sqlite_synchronous: if args.sqlite_normal { "normal" } else { "full" },
        cores: std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1),
        page_clients: args.page_clients,
        seeding,
        ledger_verify_ok,
        pages: results,
        passed,
    };
    print_summary(&result);
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)?;
    eprintln!("result written to {}", args.out.display());
    if passed && !args.keep_database {
        server.stop_and_remove_database().await;
    } else {
        eprintln!(
            "the database is kept for inspection: {}",
            server.database_url
        );
    }
    Ok(passed)
}

/// Spends 1 credit at a time through the API until the ledger holds `--transfers` transfers:
/// `heavy` users get `--heavy-transfers` each (their grant included), the others the rest.
async fn spend_to_volume(
    fixture: &Arc<Fixture>,
    args: &Args,
    heavy: usize,
) -> anyhow::Result<Seeding> {
    let users = fixture.users.len();
    let heavy_spends = args.heavy_transfers.saturating_sub(1);
    let spends_wanted = args.transfers.saturating_sub(users);
    let others = users - heavy;
    let other_spends = spends_wanted.saturating_sub(heavy * heavy_spends);
    let mut work: Vec<u32> = Vec::with_capacity(spends_wanted);
    for user in 0..heavy {
        work.extend(std::iter::repeat_n(user as u32, heavy_spends));
    }
    if let (Some(each), Some(extra)) = (
        other_spends.checked_div(others),
        other_spends.checked_rem(others),
    ) {
        for (n, user) in (heavy..users).enumerate() {
            let count = each + usize::from(n < extra);
            work.extend(std::iter::repeat_n(user as u32, count));
        }
    }
    work.shuffle(&mut rand::rng());
    let needed = heavy_spends as i64;
    anyhow::ensure!(
        fixture.credits_each >= needed.max(1),
        "--credits must cover a heavy user's {needed} spends"
    );
    eprintln!(
        "spending {} times ({heavy} heavy users with {} transfers each) at {} clients",
        work.len(),
        args.heavy_transfers,
        args.concurrency
    );
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SEED_SECONDS_MAX);
    let auth = HeaderValue::from_str(&format!("Bearer {}", fixture.api_key))?;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (fixture, work, next, done, failed, auth) = (
                Arc::clone(fixture),
                Arc::clone(&work),
                Arc::clone(&next),
                Arc::clone(&done),
                Arc::clone(&failed),
                auth.clone(),
            );
            tokio::spawn(async move {
                let mut connection = Connection::new(&fixture.base);
                let mut first_failure = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= work.len() || Instant::now() > deadline {
                        break;
                    }
                    let user = &fixture.users[work[i] as usize].0;
                    let request = Request::builder()
                        .method(Method::POST)
                        .uri("/api/v1/credits/spend")
                        .header(header::HOST, &connection.host)
                        .header(header::AUTHORIZATION, auth.clone())
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Full::new(Bytes::from(format!(
                            r#"{{"user_id":"{user}","amount":1,"description":"model call"}}"#
                        ))))
                        .expect("well-formed");
                    match connection.exchange(request).await {
                        Some((200, _)) => {
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if n % 100_000 == 0 {
                                eprintln!("  {n} spends");
                            }
                        }
                        other => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if first_failure.is_none() {
                                first_failure = Some(format!("{other:?}"));
                            }
                        }
                    }
                }
                first_failure
            })
        })
        .collect();
    for failure in futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .flatten()
    {
        eprintln!("a spend failed: {failure}");
    }
    let spend_s = started.elapsed().as_secs_f64();
    let spends = done.load(Ordering::Relaxed);
    let spend_failures = failed.load(Ordering::Relaxed)
        + (work.len() as u64).saturating_sub(spends + failed.load(Ordering::Relaxed));
    eprintln!(
        "{spends} spends in {spend_s:.0} s ({:.0}/s), {spend_failures} failed or not sent",
        spends as f64 / spend_s
    );
    Ok(Seeding {
        users,
        heavy_users: heavy,
        heavy_transfers_each: args.heavy_transfers,
        transfers: spends + users as u64,
        spends,
        spend_failures,
        register_and_grant_s: 0.0,
        spend_s,
        spends_per_s: spends as f64 / spend_s,
    })
}

/// PostgreSQL: what autovacuum does on a production server long before a table grows to a
/// million rows: gathers the planner's statistics and (for tables that only grow, since
/// PostgreSQL 13) vacuums them, which marks their pages all-visible. The test server runs with
/// `autovacuum = off`. Without statistics the planner reads each page's `paid_by` query
/// (`transfer_id IN (…)`) as a parallel sequential scan of `transfer_grants` (0.4–0.5 s per
/// query at a million transfers); without the visibility map an index-only scan still fetches
/// every row from the table (a filtered history of 10,000 transfers: 10,000 fetches).
async fn analyze(database_url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let started = Instant::now();
    let mut connection = sqlx::AnyConnection::connect(database_url).await?;
    sqlx::raw_sql(
        "VACUUM (ANALYZE) transfers, transfer_grants, grants, accounts, users, orders, web_sessions, packages",
    )
    .execute(&mut connection)
    .await?;
    connection.close().await?;
    eprintln!(
        "VACUUM (ANALYZE) (autovacuum's work) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Pending orders, so the orders page lists something: a package, then sandbox orders.
async fn place_orders(fixture: &Fixture, heavy: usize, others: &[usize]) -> anyhow::Result<()> {
    let package: Value = fixture
        .client
        .post(format!("{}/api/v1/admin/packages", fixture.base))
        .bearer_auth(&fixture.admin_token)
        .json(
            &json!({"name": "1,000 credits", "kind": "credit_pack", "credits": 1000,
                      "price": {"amount": 990, "currency": "CNY"}}),
        )
        .send()
        .await?
        .json()
        .await?;
    let package_id = package["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("creating a package failed: {package}"))?
        .to_string();
    let mut wanted = Vec::new();
    for user in 0..heavy {
        wanted.extend(std::iter::repeat_n(user, ORDERS_HEAVY));
    }
    for &user in others {
        wanted.extend(std::iter::repeat_n(user, ORDERS_OTHER));
    }
    for chunk in wanted.chunks(16) {
        let package_id = &package_id;
        let placed = chunk.iter().map(|&user| async move {
            let response = fixture
                .client
                .post(format!("{}/api/v1/orders", fixture.base))
                .bearer_auth(&fixture.users[user].1)
                .json(&json!({"package_id": package_id, "provider": "sandbox"}))
                .send()
                .await?;
            let status = response.status();
            anyhow::ensure!(
                status.is_success(),
                "placing an order failed: {status} {}",
                response.text().await?
            );
            Ok(())
        });
        for placed in futures::future::join_all(placed).await {
            placed?;
        }
    }
    Ok(())
}

/// `Cookie:` header values (`bursar_session=…`) for each user, signed in on the web form.
async fn sign_in_all(
    fixture: &Fixture,
    users: impl Iterator<Item = usize>,
) -> anyhow::Result<Vec<HeaderValue>> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let users: Vec<usize> = users.collect();
    let mut sessions = Vec::with_capacity(users.len());
    for chunk in users.chunks(8) {
        let signed_in = chunk.iter().map(|&user| {
            let email = format!("bench-{user}@example.com");
            let client = &client;
            async move { sign_in(client, &fixture.base, &email).await }
        });
        for session in futures::future::join_all(signed_in).await {
            sessions.push(session?);
        }
    }
    Ok(sessions)
}

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let value = c.split(';').next()?.trim().strip_prefix(name)?;
            value.strip_prefix('=').map(str::to_string)
        })
}

/// As a browser does: the sign-in page sets the visitor's CSRF cookie and carries the same
/// token in its form; the form posted with both starts a session.
async fn sign_in(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<HeaderValue> {
    let page = client.get(format!("{base}/login")).send().await?;
    let visitor = cookie_value(&page, "bursar_csrf")
        .ok_or_else(|| anyhow::anyhow!("GET /login set no bursar_csrf cookie"))?;
    let html = page.text().await?;
    let marker = r#"name="csrf" value=""#;
    let token = html
        .find(marker)
        .map(|at| &html[at + marker.len()..])
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("the sign-in page has no csrf field"))?
        .to_string();
    let body = format!(
        "csrf={}&email={}&password={}",
        urlencode(&token),
        urlencode(email),
        urlencode("bench password")
    );
    let response = client
        .post(format!("{base}/login"))
        .header(reqwest::header::COOKIE, format!("bursar_csrf={visitor}"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let session = cookie_value(&response, "bursar_session").filter(|s| !s.is_empty());
    match session {
        Some(session) if status.is_redirection() => {
            Ok(HeaderValue::from_str(&format!("bursar_session={session}"))?)
        }
        _ => anyhow::bail!("signing in {email} failed: {status}"),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Requests `path` `requests` times at `--page-clients` clients, each time as a random one of
/// `sessions`, after one unrecorded request per client.
async fn measure_page(
    fixture: &Arc<Fixture>,
    args: &Args,
    path: &str,
    route: &str,
    users: &'static str,
    sessions: &[HeaderValue],
    requests: usize,
) -> PageResult {
    let before = server_histogram(fixture, route).await;
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(PAGE_SECONDS_MAX);
    let sessions = Arc::new(sessions.to_vec());
    let tasks: Vec<_> = (0..args.page_clients.max(1))
        .map(|_| {
            let (fixture, next, sessions, path) = (
                Arc::clone(fixture),
                Arc::clone(&next),
                Arc::clone(&sessions),
                path.to_string(),
            );
            tokio::spawn(async move {
                let mut connection = Connection::new(&fixture.base);
                let mut latencies = Vec::new();
                let mut bytes = 0u64;
                let mut failures = Vec::new();
                let mut warmed = false;
                loop {
                    if warmed {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests || Instant::now() > deadline {
                            break;
                        }
                    }
                    let cookie = sessions[rand::rng().random_range(0..sessions.len())].clone();
                    let request = Request::builder()
                        .method(Method::GET)
                        .uri(&path)
                        .header(header::HOST, &connection.host)
                        .header(header::ACCEPT, "text/html")
                        .header(header::COOKIE, cookie)
                        .body(Full::new(Bytes::new()))
                        .expect("well-formed");
                    let started = Instant::now();
                    let answered = connection.exchange(request).await;
                    let elapsed = started.elapsed();
                    match answered {
                        Some((200, body)) => {
                            if warmed {
                                latencies.push(elapsed.as_micros().min(u32::MAX as u128) as u32);
                                bytes += body.len() as u64;
                            }
                        }
                        other => {
                            if failures.len() < 3 {
                                failures
                                    .push(format!("{path}: {:?}", other.map(|(status, _)| status)));
                            }
                        }
                    }
                    warmed = true;
                }
                (latencies, bytes, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut bytes = 0;
    let mut failures = Vec::new();
    for (l, b, f) in futures::future::join_all(tasks).await.into_iter().flatten() {
        latencies.extend(l);
        bytes += b;
        failures.extend(f);
    }
    let after = server_histogram(fixture, route).await;
    latencies.sort_unstable();
    if latencies.len() < requests && failures.is_empty() {
        eprintln!(
            "{path}: only {} of {requests} requests within {PAGE_SECONDS_MAX} s",
            latencies.len()
        );
    }
    let latency = Latency {
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().map_or(0.0, |v| f64::from(*v) / 1000.0),
    };
    let server = before.zip(after).map(|(b, a)| between(&b, &a));
    PageResult {
        page: path.to_string(),
        users,
        requests: latencies.len(),
        over_target: latency.p99_ms > TARGET_MS,
        latency,
        mean_body_kib: bytes as f64 / latencies.len().max(1) as f64 / 1024.0,
        server,
        failures,
    }
}

/// `(le, cumulative count)` of the route's GET histogram, and its sum in seconds.
#[derive(Debug, Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
}

async fn server_histogram(fixture: &Fixture, route: &str) -> Option<Histogram> {
    let text = fixture
        .client
        .get(format!("{}/metrics", fixture.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let labels = |line: &str| {
        line.contains(&format!("route=\"{route}\"")) && line.contains("method=\"GET\"")
    };
    let mut histogram = Histogram::default();
    for line in text.lines().filter(|l| labels(l)) {
        let Some((name_and_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if name_and_labels.starts_with("http_request_duration_seconds_bucket{") {
            let le = name_and_labels
                .split("le=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(|le| {
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::INFINITY)
                    }
                })
                .unwrap_or(f64::INFINITY);
            histogram.buckets.push((le, value));
        } else if name_and_labels.starts_with("http_request_duration_seconds_sum{") {
            histogram.sum = value;
        }
    }
    histogram
        .buckets
        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    Some(histogram)
}

fn between(before: &Histogram, after: &Histogram) -> ServerSide {
    let earlier = |le: f64| {
        before
            .buckets
            .iter()
            .find(|(l, _)| *l == le)
            .map_or(0.0, |(_, c)| *c)
    };
    let buckets: Vec<(f64, f64)> = after
        .buckets
        .iter()
        .map(|&(le, count)| (le, count - earlier(le)))
        .collect();
    let count = buckets.last().map_or(0.0, |(_, c)| *c);
    let within = |limit: f64| {
        buckets
            .iter()
            .find(|(le, _)| (*le - limit).abs() < 1e-9)
            .map_or(0.0, |(_, c)| *c)
    };
    let p99 = buckets
        .iter()
        .find(|(_, c)| *c >= 0.99 * count)
        .map_or(f64::INFINITY, |(le, _)| *le);
    ServerSide {
        count,
        mean_ms: if count > 0.0 {
            (after.sum - before.sum) / count * 1000.0
        } else {
            0.0
        },
        within_100_ms: if count > 0.0 {
            within(0.1) / count
        } else {
            0.0
        },
        p99_at_most_ms: p99 * 1000.0,
    }
}

fn print_row(r: &PageResult) {
    let server = r.server.as_ref().map_or_else(String::new, |s| {
        format!(
            "  | server: mean {:.2} ms, p99 <= {} ms, {:.1}% within 100 ms",
            s.mean_ms,
            s.p99_at_most_ms,
            s.within_100_ms * 100.0
        )
    });
    println!(
        "{:<44} {:<6} n={:<5} p50 {:>7.2}  p90 {:>7.2}  p99 {:>7.2}  max {:>7.2} ms  {:>7.1} KiB{}{}",
        r.page,
        r.users,
        r.requests,
        r.latency.p50_ms,
        r.latency.p90_ms,
        r.latency.p99_ms,
        r.latency.max_ms,
        r.mean_body_kib,
        if r.over_target { "  OVER 100 ms" } else { "" },
        server
    );
    for failure in &r.failures {
        println!("    - not 200: {failure}");
    }
}

fn print_summary(r: &PagesResult) {
    let s = &r.seeding;
    println!(
        "{:?} (synchronous={} on SQLite), {} cores, {} page clients; {} users ({} heavy with {} transfers each), {} transfers ({} spends at {:.0}/s, {} failed); registration and grants {:.0} s, spends {:.0} s; ledger verify {}",
        r.backend,
        r.sqlite_synchronous,
        r.cores,
        r.page_clients,
        s.users,
        s.heavy_users,
        s.heavy_transfers_each,
        s.transfers,
        s.spends,
        s.spends_per_s,
        s.spend_failures,
        s.register_and_grant_s,
        s.spend_s,
        if r.ledger_verify_ok { "ok" } else { "FAILED" }
    );
    let over: Vec<String> = r
        .pages
        .iter()
        .filter(|p| p.over_target)
        .map(|p| format!("{} ({}) p99 {:.1} ms", p.page, p.users, p.latency.p99_ms))
        .collect();
    if over.is_empty() {
        println!("every page within 100 ms at p99 (client side, loopback)");
    } else {
        println!("over 100 ms at p99: {}", over.join("; "));
    }
    println!(
        "{}",
        if r.passed {
            "PASSED (every page answered 200)"
        } else {
            "FAILED"
        }
    );
}
