//! Web sessions: found while live, ended by logout, and forgotten a day after they end.

use bursar_core::Role;
use bursar_store::testing::{Backend, fresh_database_url};
use bursar_store::{Clock, SqliteSync, Store};

const HOUR_MS: i64 = 3600 * 1000;

async fn a_session_ends_and_is_forgotten_a_day_later(backend: Backend) {
    let url = fresh_database_url(backend, "web_sessions").await;
    let clock = Clock::default();
    let store = Store::open(&url, SqliteSync::Full, clock.clone())
        .await
        .expect("store opens");
    let user = store
        .create_user(
            "sessions@example.com",
            "not-a-real-hash",
            None,
            Role::Member,
        )
        .await
        .expect("user created")
        .id;
    let expiring = store
        .start_web_session(&user, HOUR_MS, "password")
        .await
        .expect("session starts");
    let logged_out = store
        .start_web_session(&user, 30 * 24 * HOUR_MS, "password")
        .await
        .expect("session starts");
    let live = store
        .start_web_session(&user, 30 * 24 * HOUR_MS, "password")
        .await
        .expect("session starts");
    store.end_web_session(&logged_out).await.expect("logout");
    let found = |token: String| {
        let store = store.clone();
        async move { store.web_session(&token).await.expect("reads").is_some() }
    };
    assert!(found(expiring.clone()).await);
    assert!(!found(logged_out.clone()).await, "logged out");

    // Within a day of their end both stay (a cookie naming them is refused all the same).
    clock.advance_ms(2 * HOUR_MS);
    assert!(!found(expiring.clone()).await, "expired");
    assert_eq!(store.delete_ended_web_sessions().await.expect("purge"), 0);

    clock.advance_ms(24 * HOUR_MS);
    assert_eq!(store.delete_ended_web_sessions().await.expect("purge"), 2);
    assert!(found(live).await, "a live session is kept");
    assert!(!found(expiring).await);
    assert!(!found(logged_out).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    a_session_ends_and_is_forgotten_a_day_later(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    a_session_ends_and_is_forgotten_a_day_later(Backend::Postgres).await;
}
