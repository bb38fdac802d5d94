//! Before the load: an admin, a service key and users with credits. After it: the check that
//! the ledger agrees with every acknowledged response.

use serde_json::{Value, json};

use crate::load::Outcome;
use crate::server::Server;
use crate::{Args, Profile};

pub struct Fixture {
    pub base: String,
    pub client: reqwest::Client,
    pub api_key: String,
    pub admin_token: String,
    /// (user id, access token)
    pub users: Vec<(String, String)>,
    pub credits_each: i64,
    /// Credits the users bought before the load (`--purchased-users`).
    pub purchased: i64,
    /// The first this many users hold an auto top-up rule.
    pub topup_rules: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct Check {
    pub passed: bool,
    pub credits_before: i64,
    pub credits_after: i64,
    pub acknowledged_spent: i64,
    /// Credits that auto top-ups added during the run.
    pub topped_up: i64,
    pub accounts_below_zero: usize,
    pub ledger_verify_ok: bool,
    pub problems: Vec<String>,
}

async fn json_post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "setup request failed: {status} {body}");
    Ok(body)
}

pub async fn prepare(server: &Server, args: &Args) -> anyhow::Result<Fixture> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency + 16)
        .build()?;
    let base = server.base.clone();
    server.command(&[
        "admin",
        "create",
        "--email",
        "bench-admin@example.com",
        "--password",
        "bench password",
    ])?;
    let api_key = server.command(&["api-key", "create", "--name", "bench"])?;
    let login = json_post(
        &client,
        format!("{base}/api/v1/auth/login"),
        None,
        json!({"email": "bench-admin@example.com", "password": "bench password"}),
    )
    .await?;
    let admin_token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let users_wanted = if matches!(args.profile, Profile::Hot) {
        1
    } else {
        args.users
    };
    eprintln!(
        "creating {users_wanted} users with {} credits each",
        args.credits
    );
    let mut users = Vec::with_capacity(users_wanted);
    for chunk in (0..users_wanted).collect::<Vec<_>>().chunks(32) {
        let registrations = chunk.iter().map(|i| {
            json_post(
                &client,
                format!("{base}/api/v1/auth/register"),
                None,
                json!({"email": format!("bench-{i}@example.com"), "password": "bench password"}),
            )
        });
        for registered in futures::future::join_all(registrations).await {
            let registered = registered?;
            users.push((
                registered["user"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                registered["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
    }
    for chunk in users.chunks(32) {
        let grants = chunk.iter().map(|(id, _)| {
            json_post(
                &client,
                format!("{base}/api/v1/admin/users/{id}/adjustments"),
                Some(&admin_token),
                json!({"amount": args.credits, "reason": "benchmark credits"}),
            )
        });
        for granted in futures::future::join_all(grants).await {
            granted?;
        }
    }
    let topup_rules = args.topup_rules.min(users.len());
    if topup_rules > 0 {
        eprintln!(
            "giving {topup_rules} users an auto top-up rule (threshold {} below their credits)",
            args.topup_gap
        );
    }
    for (_, token) in &users[..topup_rules] {
        let card = json_post(
            &client,
            format!("{base}/api/v1/me/payment-methods"),
            Some(token),
            json!({"provider": "sandbox", "card_number": "4242424242424242"}),
        )
        .await?;
        let rule = json!({"enabled": true, "threshold": args.credits - args.topup_gap,
                          "target": args.credits, "payment_method_id": card["id"]});
        let response = client
            .put(format!("{base}/api/v1/me/auto-topup"))
            .bearer_auth(token)
            .json(&rule)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "setting a rule failed: {}",
            response.text().await?
        );
    }
    let purchased = buy_credits(&client, &base, &admin_token, &users, args).await?;
    Ok(Fixture {
        base,
        client,
        api_key,
        admin_token,
        users,
        credits_each: args.credits,
        purchased,
        topup_rules,
    })
}

/// The first `--purchased-users` users each buy a pack of `--purchased-credits` with the
/// sandbox's test card; answers the credits bought.
async fn buy_credits(
    client: &reqwest::Client,
    base: &str,
    admin_token: &str,
    users: &[(String, String)],
    args: &Args,
) -> anyhow::Result<i64> {
    let buyers = args.purchased_users.min(users.len());
    if buyers == 0 {
        return Ok(0);
    }
    eprintln!("{buyers} users buy {} credits each", args.purchased_credits);
    let package = json_post(
        client,
        format!("{base}/api/v1/admin/packages"),
        Some(admin_token),
        json!({"name": "Bench pack", "kind": "credit_pack", "credits": args.purchased_credits,
               "price": {"amount": 100, "currency": "USD"}}),
    )
    .await?;
    for (_, token) in &users[..buyers] {
        let order = json_post(
            client,
            format!("{base}/api/v1/orders"),
            Some(token),
            json!({"package_id": package["id"], "provider": "sandbox"}),
        )
        .await?;
        let payment_id = order["payment"]["id"].as_str().unwrap_or_default();
        let paid = client
            .post(format!("{base}/pay/sandbox/{payment_id}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("card_number=4242424242424242")
            .send()
            .await?;
        anyhow::ensure!(
            paid.status().is_success(),
            "paying failed: {}",
            paid.status()
        );
    }
    Ok(buyers as i64 * args.purchased_credits)
}

/// Credits the paid auto top-ups of the users with a rule added.
async fn topped_up(fixture: &Fixture) -> anyhow::Result<i64> {
    let mut total = 0;
    for (_, token) in &fixture.users[..fixture.topup_rules] {
        let orders: Value = fixture
            .client
            .get(format!("{}/api/v1/orders?limit=200", fixture.base))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        for order in orders["data"].as_array().into_iter().flatten() {
            if order["kind"] == "auto_topup" && order["status"] == "paid" {
                total += order["credits"].as_i64().unwrap_or(0);
            }
        }
    }
    Ok(total)
}

/// Waits (at most a minute) until no auto top-up is queued or running: top-ups the load
/// triggered may still be paying when it stops, and the balances are read after them.
async fn settle_topups(fixture: &Fixture) -> anyhow::Result<()> {
    if fixture.topup_rules == 0 {
        return Ok(());
    }
    let mut quiet = 0;
    for _ in 0..600 {
        let jobs: Value = fixture
            .client
            .get(format!("{}/api/v1/admin/jobs", fixture.base))
            .bearer_auth(&fixture.admin_token)
            .send()
            .await?
            .json()
            .await?;
        let busy = jobs["kinds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| k["kind"] == "auto_topup")
            .any(|k| k["queued"].as_i64() != Some(0) || k["running"].as_i64() != Some(0));
        quiet = if busy { 0 } else { quiet + 1 };
        if quiet == 3 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("auto top-ups were still running a minute after the load stopped")
}

pub async fn check(fixture: &Fixture, outcome: &Outcome) -> anyhow::Result<Check> {
    settle_topups(fixture).await?;
    let mut credits_after = 0;
    let mut below_zero = 0;
    for (id, _) in &fixture.users {
        let user: Value = fixture
            .client
            .get(format!("{}/api/v1/admin/users/{id}", fixture.base))
            .bearer_auth(&fixture.admin_token)
            .send()
            .await?
            .json()
            .await?;
        let balance = user["balance"]["balance"].as_i64().unwrap_or(i64::MIN);
        if balance < 0 {
            below_zero += 1;
        }
        credits_after += balance;
    }
    let verify: Value = fixture
        .client
        .get(format!("{}/api/v1/admin/ledger/verify", fixture.base))
        .bearer_auth(&fixture.admin_token)
        .send()
        .await?
        .json()
        .await?;
    let credits_before = fixture.credits_each * fixture.users.len() as i64 + fixture.purchased;
    let topped_up = topped_up(fixture).await?;
    let ledger_verify_ok = verify["ok"].as_bool() == Some(true);
    let mut problems: Vec<String> = verify["problems"]
        .as_array()
        .map(|p| p.iter().map(|v| v.to_string()).collect())
        .unwrap_or_default();
    if credits_before + topped_up - credits_after != outcome.spent {
        problems.push(format!(
            "balances dropped by {} (with {topped_up} topped up) but acknowledged spends total {}",
            credits_before + topped_up - credits_after,
            outcome.spent
        ));
    }
    if below_zero > 0 {
        problems.push(format!("{below_zero} accounts below zero"));
    }
    Ok(Check {
        passed: problems.is_empty() && ledger_verify_ok,
        credits_before,
        credits_after,
        acknowledged_spent: outcome.spent,
        topped_up,
        accounts_below_zero: below_zero,
        ledger_verify_ok,
        problems,
    })
}
