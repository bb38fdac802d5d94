//! Catalog storage, on both backends.

use bursar_store::testing::{Backend, fresh_database_url};
use bursar_store::{Clock, SqliteSync, Store};

async fn instances_starting_together_seed_the_demo_catalog_once(backend: Backend) {
    let url = fresh_database_url(backend, "demo_seed").await;
    let first = Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("opens");
    let second = Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("opens again");
    let (a, b) = tokio::join!(first.seed_demo_catalog(), second.seed_demo_catalog());
    let seeded = [a.expect("seeds"), b.expect("seeds")];
    assert_eq!(seeded.iter().filter(|s| **s).count(), 1, "{seeded:?}");
    assert_eq!(first.packages().await.expect("lists").len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_seed_the_demo_catalog_once_on_sqlite() {
    instances_starting_together_seed_the_demo_catalog_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_seed_the_demo_catalog_once_on_postgres() {
    instances_starting_together_seed_the_demo_catalog_once(Backend::Postgres).await;
}
