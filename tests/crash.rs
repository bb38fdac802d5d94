//! Killing the server (SIGKILL) in the middle of a load loses nothing it acknowledged: after a
//! restart every acknowledged spend is in the ledger and every invariant holds.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bursar_store::testing::{Backend, fresh_database_url};
use serde_json::{Value, json};

struct Server {
    child: Child,
    base: String,
}

fn start(database_url: &str) -> Server {
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

async fn acknowledged_spends_survive_a_kill(backend: Backend) {
    let url = fresh_database_url(backend, "crash").await;
    cli(&url, &["migrate"]);
    let key = cli(&url, &["api-key", "create", "--name", "crash"]);
    let client = reqwest::Client::new();
    let mut server = start(&url);
    wait_until_up(&client, &server.base).await;
    let registered: Value = client
        .post(format!("{}/api/v1/auth/register", server.base))
        .json(&json!({"email": "crash@example.com", "password": "long enough"}))
        .send()
        .await
        .expect("registers")
        .json()
        .await
        .expect("json");
    let user_id = registered["user"]["id"].as_str().expect("id").to_string();
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    cli(
        &url,
        &[
            "admin",
            "create",
            "--email",
            "root@example.com",
            "--password",
            "long enough",
        ],
    );
    let admin: Value = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": "root@example.com", "password": "long enough"}))
        .send()
        .await
        .expect("logs in")
        .json()
        .await
        .expect("json");
    let admin_token = admin["access_token"].as_str().expect("token").to_string();
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
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
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
