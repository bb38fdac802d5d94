//! The daily gift through the API: one claim per local day (America/New_York, across the
//! change to summer time), a streak that grows on consecutive days and starts again after a
//! missed one, a schedule that repeats after its last day, and concurrent claims that pay once.

use serde_json::Value;

use crate::helpers::{Backend, Member, TestApp};

const HOUR_MS: i64 = 3_600_000;

/// The test clock starts now; this moves it to `target` (RFC 3339), which must be later.
fn move_clock_to(app: &TestApp, target: &str) {
    let target = chrono::DateTime::parse_from_rfc3339(target)
        .expect("valid time")
        .timestamp_millis();
    let now = app.state.store.clock.now_ms();
    assert!(target > now, "the clock only moves forward");
    app.state.store.clock.advance_ms(target - now);
}

async fn claim(app: &TestApp, member: &Member) -> (i64, i64) {
    let claimed = app
        .send(
            "POST",
            "/api/v1/me/daily-gift",
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    (
        claimed.json["streak"].as_i64().expect("streak"),
        claimed.json["credits"].as_i64().expect("credits"),
    )
}

async fn status(app: &TestApp, member: &Member) -> Value {
    let status = app.get("/api/v1/me/daily-gift", &member.token).await;
    assert_eq!(status.status, 200, "{}", status.text);
    status.json
}

async fn gifts(app: &TestApp, member: &Member) -> Vec<Value> {
    let history = app
        .get("/api/v1/me/transactions?limit=200", &member.token)
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    history.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|t| t["kind"] == "gift")
        .cloned()
        .collect()
}

async fn the_streak_grows_daily_restarts_after_a_missed_day_and_wraps(backend: Backend) {
    let app = TestApp::spawn_with(backend, "daily_gift_streak", |config| {
        config.timezone = "America/New_York".parse().expect("a zone");
        config.daily_gift_schedule = bursar_core::GiftSchedule::parse("5,10,15").expect("valid");
    })
    .await;
    // 23:30 on 11 March 2027 in New York; summer time starts there on the 14th.
    move_clock_to(&app, "2027-03-12T04:30:00Z");
    let member = app.register("gifted@example.com").await;
    let fresh = status(&app, &member).await;
    assert_eq!(
        (
            &fresh["claimed_today"],
            &fresh["streak"],
            &fresh["next_credits"]
        ),
        (&Value::Bool(false), &Value::from(0), &Value::from(5))
    );
    assert_eq!(claim(&app, &member).await, (1, 5));
    let again = app
        .send(
            "POST",
            "/api/v1/me/daily-gift",
            Some(&member.token),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.is_problem(), "{}", again.text);
    assert_eq!(again.code(), "already_claimed");
    let today = status(&app, &member).await;
    assert_eq!(
        (
            &today["claimed_today"],
            &today["streak"],
            &today["next_credits"]
        ),
        (&Value::Bool(true), &Value::from(1), &Value::from(10))
    );

    // An hour later it is the 12th in New York (the UTC date has not changed): a new day.
    app.state.store.clock.advance_ms(HOUR_MS);
    assert_eq!(claim(&app, &member).await, (2, 10));
    // The 13th, then the 14th (summer time began at 02:00), then the 15th: the schedule wraps.
    app.state.store.clock.advance_ms(24 * HOUR_MS);
    assert_eq!(claim(&app, &member).await, (3, 15));
    app.state.store.clock.advance_ms(24 * HOUR_MS);
    assert_eq!(claim(&app, &member).await, (4, 5));
    app.state.store.clock.advance_ms(23 * HOUR_MS); // a 23-hour day: 00:30 local again
    assert_eq!(claim(&app, &member).await, (5, 10));
    let claimed = status(&app, &member).await;
    assert_eq!(
        (&claimed["streak"], &claimed["next_credits"]),
        (&Value::from(5), &Value::from(15))
    );

    // The 16th passes without a claim: on the 17th the streak is gone and starts again.
    app.state.store.clock.advance_ms(48 * HOUR_MS);
    let missed = status(&app, &member).await;
    assert_eq!(
        (
            &missed["claimed_today"],
            &missed["streak"],
            &missed["next_credits"]
        ),
        (&Value::Bool(false), &Value::from(0), &Value::from(5))
    );
    assert_eq!(claim(&app, &member).await, (1, 5));

    let granted = gifts(&app, &member).await;
    assert_eq!(granted.len(), 6, "{granted:?}");
    assert_eq!(app.balance(&member).await.0, 5 + 10 + 15 + 5 + 10 + 5);
    app.assert_ledger_ok().await;
}

async fn concurrent_claims_of_one_day_pay_once(backend: Backend) {
    let app = TestApp::spawn(backend, "daily_gift_race").await;
    let member = app.register("racer@example.com").await;
    let claims: Vec<_> = (0..20)
        .map(|_| {
            app.send(
                "POST",
                "/api/v1/me/daily-gift",
                Some(&member.token),
                None,
                &[],
            )
        })
        .collect();
    let answers = futures::future::join_all(claims).await;
    let paid = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 409 && a.code() == "already_claimed" && a.is_problem())
        .count();
    assert_eq!((paid, refused), (1, 19), "{answers:?}");
    assert_eq!(app.balance(&member).await.0, 10);
    assert_eq!(gifts(&app, &member).await.len(), 1);
    app.assert_ledger_ok().await;
}

async fn bad_gift_requests_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend, "daily_gift_input").await;
    let member = app.register("careful@example.com").await;
    let key = app.api_key().await;
    let path = "/api/v1/me/daily-gift";
    let long_key = "k".repeat(256);
    let refused = [
        app.send("POST", path, None, None, &[]).await,
        app.send("POST", path, Some("not-a-token"), None, &[]).await,
        // A service has no "me".
        app.send("POST", path, Some(&key), None, &[]).await,
        app.send("GET", path, Some(&key), None, &[]).await,
        app.send(
            "POST",
            path,
            Some(&member.token),
            None,
            &[("idempotency-key", &long_key)],
        )
        .await,
        app.send(
            "POST",
            path,
            Some(&member.token),
            Some(&serde_json::json!({"padding": "x".repeat(300)})),
            &[],
        )
        .await,
    ];
    for answer in &refused {
        assert!(
            (400..500).contains(&answer.status) && answer.is_problem(),
            "{answer:?}"
        );
    }
    let untouched = status(&app, &member).await;
    assert_eq!(untouched["claimed_today"], false);
    assert_eq!(app.balance(&member).await.0, 0);

    // With a key, a retry replays the first answer instead of refusing it.
    let keyed = [("idempotency-key", "gift-1")];
    let first = app
        .send("POST", path, Some(&member.token), None, &keyed)
        .await;
    let retry = app
        .send("POST", path, Some(&member.token), None, &keyed)
        .await;
    assert_eq!((first.status, retry.status), (200, 200), "{}", retry.text);
    assert_eq!(first.text, retry.text);
    assert_eq!(app.balance(&member).await.0, 10);
    app.assert_ledger_ok().await;
}

/// The ledger check's findings after a statement that damages the claims.
pub async fn problems_after(app: &TestApp, damage: &str) -> Vec<String> {
    sqlx::query(sqlx::AssertSqlSafe(damage))
        .execute(&app.state.store.db.pool)
        .await
        .expect("damages");
    bursar_store::verify::verify(&app.state.store.db)
        .await
        .expect("verify runs")
        .problems
}

async fn verify_finds_a_gift_claim_not_credited_once(backend: Backend) {
    let app = TestApp::spawn(backend, "daily_gift_verify").await;
    let member = app.register("checked@example.com").await;
    claim(&app, &member).await;
    app.assert_ledger_ok().await;
    let problems = problems_after(&app, "UPDATE daily_gift_claims SET credits = credits + 1").await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("daily gift claim not credited exactly once")),
        "{problems:?}"
    );
    let problems = problems_after(&app, "DELETE FROM daily_gift_claims").await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("daily gift transfer without its claim")),
        "{problems:?}"
    );
}

crate::for_both_backends!(
    verify_finds_a_gift_claim_not_credited_once,
    the_streak_grows_daily_restarts_after_a_missed_day_and_wraps,
    concurrent_claims_of_one_day_pay_once,
    bad_gift_requests_change_nothing
);
