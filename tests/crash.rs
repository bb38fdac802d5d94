//! Killing the server (SIGKILL) loses nothing it acknowledged: after a restart every
//! acknowledged spend is in the ledger and every invariant holds, and a job committed before the
//! kill runs after it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bursar_store::testing::{Backend, fresh_database_url};
use serde_json::{Value, json};

const ADMIN_EMAIL: &str = "root@example.com";

struct Server {
    child: Child,
    base: String,
}

fn start(database_url: &str) -> Server {
    start_with(database_url, &[])
}

fn start_with(database_url: &str, env: &[(&str, &str)]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("BURSAR_ADDR", format!("127.0.0.1:{port}"))
        .env("BURSAR_JWT_SECRET", "crash-test-secret")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_until_up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

fn cli(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .expect("runs");
    assert!(output.status.success(), "bursar {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// How the server is stopped in the middle of the load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGKILL: no chance to finish anything.
    Kill,
    /// SIGTERM: a graceful stop, which must end the process cleanly.
    Terminate,
}

async fn acknowledged_spends_survive_a_kill(backend: Backend) {
    acknowledged_spends_survive(backend, Stop::Kill).await;
}

async fn acknowledged_spends_survive(backend: Backend, stop: Stop) {
    let url = fresh_database_url(backend, "crash").await;
    cli(&url, &["migrate"]);
    let key = cli(&url, &["api-key", "create", "--name", "crash"]);
    let client = reqwest::Client::new();
    let mut server = start(&url);
    wait_until_up(&client, &server.base).await;
    let registered = register(&client, &server.base, "crash@example.com").await;
    let user_id = registered["user"]["id"].as_str().expect("id").to_string();
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    create_admin(&url);
    let admin_token = login(&client, &server.base, ADMIN_EMAIL).await;
    let granted = client
        .post(format!(
            "{}/api/v1/admin/users/{user_id}/adjustments",
            server.base
        ))
        .bearer_auth(&admin_token)
        .json(&json!({"amount": 1_000_000, "reason": "crash test"}))
        .send()
        .await
        .expect("grants");
    assert_eq!(granted.status(), 201);

    // 32 clients spend as fast as they can; the server is killed while they do.
    let spenders: Vec<_> = (0..32)
        .map(|_| {
            let (client, base, key, user_id) = (
                client.clone(),
                server.base.clone(),
                key.clone(),
                user_id.clone(),
            );
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for _ in 0..10_000 {
                    let response = client
                        .post(format!("{base}/api/v1/credits/spend"))
                        .bearer_auth(&key)
                        .json(&json!({"user_id": user_id, "amount": 1}))
                        .send()
                        .await;
                    let Ok(response) = response else { break };
                    if response.status() != 200 {
                        continue;
                    }
                    let Ok(body) = response.json::<Value>().await else {
                        break;
                    };
                    acknowledged.push(
                        body["transaction_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    match stop {
        Stop::Kill => server.child.kill().expect("SIGKILL"),
        Stop::Terminate => {
            let sent = Command::new("kill")
                .args(["-TERM", &server.child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(sent.success());
        }
    }
    let exited = server.child.wait().expect("the server exits");
    if stop == Stop::Terminate {
        assert!(
            exited.success(),
            "a graceful stop exits cleanly: {exited:?}"
        );
    }
    let mut acknowledged = Vec::new();
    for spender in spenders {
        acknowledged.extend(spender.await.expect("spender finishes"));
    }
    assert!(
        !acknowledged.is_empty(),
        "some spends were acknowledged before the kill"
    );

    let mut server = start(&url);
    wait_until_up(&client, &server.base).await;
    let mut recorded = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url_page = format!("{}/api/v1/me/transactions?limit=200", server.base);
        if let Some(c) = &cursor {
            url_page.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url_page)
            .bearer_auth(&token)
            .send()
            .await
            .expect("lists")
            .json()
            .await
            .expect("json");
        for t in page["data"].as_array().expect("data") {
            if t["kind"] == "spend" {
                recorded.insert(t["id"].as_str().unwrap_or_default().to_string());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    for id in &acknowledged {
        assert!(
            recorded.contains(id),
            "acknowledged spend {id} is in the ledger after the restart"
        );
    }
    let balance: Value = client
        .get(format!("{}/api/v1/me/balance", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("reads")
        .json()
        .await
        .expect("json");
    assert_eq!(
        balance["balance"].as_i64(),
        Some(1_000_000 - recorded.len() as i64)
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
    let verify = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .args(["ledger", "verify"])
        .env("DATABASE_URL", &url)
        .output()
        .expect("runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spends_survive_a_kill_on_sqlite() {
    acknowledged_spends_survive_a_kill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spends_survive_a_kill_on_postgres() {
    acknowledged_spends_survive_a_kill(Backend::Postgres).await;
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert!(response.status().is_success(), "{response:?}");
    response.json().await.expect("json")
}

/// The CLI's admin, who logs in as `ADMIN_EMAIL`.
fn create_admin(database_url: &str) {
    let args = [
        "admin",
        "create",
        "--email",
        ADMIN_EMAIL,
        "--password",
        "long enough",
    ];
    cli(database_url, &args);
}

/// Registers a member; the answer holds `user` and `access_token`.
async fn register(client: &reqwest::Client, base: &str, email: &str) -> Value {
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": "long enough"}))
        .send()
        .await
        .expect("registers")
        .json()
        .await
        .expect("json")
}

async fn login(client: &reqwest::Client, base: &str, email: &str) -> String {
    let session: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "long enough"}))
        .send()
        .await
        .expect("logs in")
        .json()
        .await
        .expect("json");
    session["access_token"].as_str().expect("token").to_string()
}

/// The state of the refund and of its job, read from the database.
async fn refund_and_job(url: &str) -> (String, String) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connects");
    let refund: String = sqlx::query_scalar("SELECT status FROM order_refunds")
        .fetch_one(&mut conn)
        .await
        .expect("one refund");
    let job: String = sqlx::query_scalar("SELECT state FROM jobs WHERE kind = 'provider_refund'")
        .fetch_one(&mut conn)
        .await
        .expect("one refund job");
    (refund, job)
}

/// A refund commits together with the job that sends its money back. The server is killed
/// before any worker could run that job (this instance runs none); the next start runs it.
async fn a_job_committed_before_a_kill_runs_after_the_restart(backend: Backend) {
    let url = fresh_database_url(backend, "crash_jobs").await;
    cli(&url, &["migrate"]);
    create_admin(&url);
    let client = reqwest::Client::new();
    let mut server = start_with(&url, &[("BURSAR_JOBS", "false")]);
    wait_until_up(&client, &server.base).await;
    let base = server.base.clone();
    let buyer = register(&client, &base, "buyer@example.com").await;
    let buyer_token = buyer["access_token"].as_str().expect("token").to_string();
    let packages: Value = client
        .get(format!("{base}/api/v1/packages"))
        .bearer_auth(&buyer_token)
        .send()
        .await
        .expect("lists")
        .json()
        .await
        .expect("json");
    let package_id = packages["data"][0]["id"]
        .as_str()
        .expect("the demo catalog");
    let order = post(
        &client,
        format!("{base}/api/v1/orders"),
        &buyer_token,
        json!({"package_id": package_id, "provider": "sandbox"}),
    )
    .await;
    let (order_id, payment_id) = (
        order["id"].as_str().expect("id"),
        order["payment"]["id"].as_str().expect("payment"),
    );
    let paid = client
        .post(format!("{base}/pay/sandbox/{payment_id}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("card_number=4242+4242+4242+4242")
        .send()
        .await
        .expect("pays");
    assert!(
        paid.status().is_success() || paid.status().is_redirection(),
        "{paid:?}"
    );
    let admin = login(&client, &base, ADMIN_EMAIL).await;
    let refund = post(
        &client,
        format!("{base}/api/v1/admin/orders/{order_id}/refund"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(refund["status"], "pending", "{refund}");
    assert_eq!(
        refund_and_job(&url).await,
        ("pending".into(), "queued".into())
    );
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();

    let mut server = start(&url);
    wait_until_up(&client, &server.base).await;
    let mut now = refund_and_job(&url).await;
    for _ in 0..250 {
        if now.1 == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        now = refund_and_job(&url).await;
    }
    assert_eq!(now, ("succeeded".into(), "done".into()));
    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spends_survive_a_sigterm_on_sqlite() {
    acknowledged_spends_survive(Backend::Sqlite, Stop::Terminate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spends_survive_a_sigterm_on_postgres() {
    acknowledged_spends_survive(Backend::Postgres, Stop::Terminate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_committed_before_a_kill_runs_after_the_restart_on_sqlite() {
    a_job_committed_before_a_kill_runs_after_the_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_committed_before_a_kill_runs_after_the_restart_on_postgres() {
    a_job_committed_before_a_kill_runs_after_the_restart(Backend::Postgres).await;
}
