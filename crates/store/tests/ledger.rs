//! The storage conformance suite: every test runs against SQLite and against PostgreSQL, through
//! the same `Store` API, and ends by checking every ledger invariant.

use bursar_core::{Credits, GrantSource, Role};
use bursar_store::ledger::{
    CaptureReceipt, Command, Executed, GrantReceipt, HoldReceipt, Idempotency, Idempotent, Outcome,
    RefundReceipt, Rendered, Request, SpendReceipt,
};
use bursar_store::page::PageRequest;
use bursar_store::testing::{Backend, fresh_database_url};
use bursar_store::{Clock, SqliteSync, Store, StoreError, verify};
use proptest::prelude::*;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    spends_burn_soonest_expiring_then_priority_then_oldest,
    a_grant_to_an_overdrawn_account_pays_the_debt_first,
    overdue_grants_expire_into_the_expired_account_except_what_holds_reserve,
    an_expired_hold_releases_its_credits_and_cannot_be_captured,
    a_refused_command_in_a_batch_leaves_the_others_intact,
    commands_apply_in_arrival_order,
    two_instances_on_one_database_never_overdraw_or_deadlock,
    concurrent_spends_never_overdraw_and_every_acknowledged_one_is_recorded,
    concurrent_requests_with_one_idempotency_key_apply_once,
    refunds_never_exceed_the_spend,
    verify_reports_a_corrupted_balance,
    verify_sums_a_ledger_far_beyond_64_bit_integers,
    a_balance_out_of_range_can_come_back_but_not_go_further,
    held_credits_stay_within_range_even_with_an_overdraft,
    the_writer_sees_changes_made_outside_it,
    any_text_round_trips_through_a_batch,
    settled_holds_stop_reserving_in_later_batches,
    history_lists_indexed_and_unindexed_transfers_alike,
    history_filters_kind_and_time_in_the_database,
    concurrent_balance_reads_each_get_their_own_users_balance,
);

async fn open(backend: Backend, name: &str) -> Store {
    let url = fresh_database_url(backend, name).await;
    Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("store opens")
}

async fn user(store: &Store, email: &str) -> String {
    store
        .create_user(email, "not-a-real-hash", None, Role::Member)
        .await
        .expect("user created")
        .id
}

fn credits(amount: i64) -> Credits {
    Credits::new(amount).expect("test amounts are valid")
}

fn grant(
    user_id: &str,
    amount: i64,
    source: GrantSource,
    priority: i64,
    expires_at_ms: Option<i64>,
) -> Command {
    Command::Grant {
        user_id: user_id.into(),
        amount: credits(amount),
        source,
        priority,
        expires_at_ms,
        description: None,
        actor: None,
    }
}

fn spend(user_id: &str, amount: i64) -> Command {
    Command::Spend {
        user_id: user_id.into(),
        amount: credits(amount),
        description: None,
        metadata: None,
        actor: "test".into(),
    }
}

async fn run(store: &Store, command: Command) -> Result<Outcome, StoreError> {
    let executed = store.ledger.execute(command).await?;
    Ok(executed
        .outcome()
        .expect("no idempotency key, so never a replay"))
}

async fn ok(store: &Store, command: Command) -> Outcome {
    run(store, command).await.expect("command succeeds")
}

/// The receipt inside an outcome, or a test failure naming what came instead.
macro_rules! receipt_of {
    ($name:ident, $variant:ident, $receipt:ty) => {
        fn $name(outcome: Outcome) -> $receipt {
            match outcome {
                Outcome::$variant(receipt) => receipt,
                other => panic!("expected {}, got {other:?}", stringify!($variant)),
            }
        }
    };
}
receipt_of!(spent, Spent, SpendReceipt);
receipt_of!(granted, Granted, GrantReceipt);
receipt_of!(held, Held, HoldReceipt);
receipt_of!(captured, Captured, CaptureReceipt);
receipt_of!(refunded, Refunded, RefundReceipt);

async fn assert_ledger_consistent(store: &Store) {
    let report = verify::verify(&store.db).await.expect("verify runs");
    assert!(report.ok, "ledger problems: {:?}", report.problems);
}

async fn balance(store: &Store, user_id: &str) -> (i64, i64) {
    let view = store
        .balance(user_id)
        .await
        .expect("balance reads")
        .expect("account exists");
    (view.balance, view.available)
}

async fn spends_burn_soonest_expiring_then_priority_then_oldest(backend: Backend) {
    let store = open(backend, "burn_order").await;
    let u = user(&store, "burn@example.com").await;
    let far = store.clock.now_ms() + 86_400_000;
    let near = store.clock.now_ms() + 3_600_000;
    let purchase = granted(ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await);
    let bonus = granted(ok(&store, grant(&u, 20, GrantSource::Bonus, 5, Some(near))).await);
    let allowance = granted(ok(&store, grant(&u, 30, GrantSource::Allowance, 1, Some(near))).await);
    let gift = granted(ok(&store, grant(&u, 10, GrantSource::Gift, 0, Some(far))).await);

    let paid = spent(ok(&store, spend(&u, 65)).await);
    let paid_by: Vec<(String, i64)> = paid
        .paid_by
        .iter()
        .map(|p| (p.grant_id.clone(), p.amount))
        .collect();
    let id = |g: &GrantReceipt| g.grant_id.clone();
    assert_eq!(
        paid_by,
        vec![
            (id(&allowance), 30),
            (id(&bonus), 20),
            (id(&gift), 10),
            (id(&purchase), 5)
        ]
    );
    assert_eq!(balance(&store, &u).await, (95, 95));
    assert_ledger_consistent(&store).await;
}

async fn a_grant_to_an_overdrawn_account_pays_the_debt_first(backend: Backend) {
    let store = open(backend, "overdraft").await;
    let u = user(&store, "debt@example.com").await;
    bursar_store::accounts::set_overdraft_limit(&store.db, &u, &store.asset, 50)
        .await
        .expect("limit set");
    ok(&store, grant(&u, 10, GrantSource::Purchase, 0, None)).await;
    ok(&store, spend(&u, 60)).await;
    assert_eq!(balance(&store, &u).await, (-50, -50));
    let refused = run(&store, spend(&u, 1)).await;
    assert!(matches!(
        refused,
        Err(StoreError::Domain(
            bursar_core::LedgerError::InsufficientCredits { .. }
        ))
    ));
    ok(&store, grant(&u, 80, GrantSource::Purchase, 0, None)).await;
    let view = store.balance(&u).await.expect("reads").expect("exists");
    assert_eq!(view.balance, 30);
    assert_eq!(view.grants.iter().map(|g| g.remaining).sum::<i64>(), 30);
    assert_ledger_consistent(&store).await;
}

async fn overdue_grants_expire_into_the_expired_account_except_what_holds_reserve(
    backend: Backend,
) {
    let store = open(backend, "grant_expiry").await;
    let u = user(&store, "expiry@example.com").await;
    let soon = store.clock.now_ms() + 60_000;
    ok(&store, grant(&u, 100, GrantSource::Bonus, 0, Some(soon))).await;
    ok(&store, grant(&u, 5, GrantSource::Purchase, 0, None)).await;
    let hold = held(
        ok(
            &store,
            Command::Hold {
                user_id: u.clone(),
                amount: credits(40),
                expires_in_ms: 3_600_000,
                description: None,
                creator: "svc".into(),
            },
        )
        .await,
    );
    store.clock.advance_ms(120_000);
    ok(&store, Command::ExpireDue { max_accounts: 100 }).await;
    // 105 - 40 held = 65 could expire, all from the bonus grant; 40 stay reserved for the hold.
    assert_eq!(balance(&store, &u).await, (40, 0));
    let capture = captured(
        ok(
            &store,
            Command::Capture {
                hold_id: hold.id.clone(),
                amount: Some(credits(10)),
                creator: "svc".into(),
            },
        )
        .await,
    );
    assert_eq!((capture.captured, capture.balance_after), (10, 30));
    ok(&store, Command::ExpireDue { max_accounts: 100 }).await;
    // The rest of the overdue bonus grant expires once the hold no longer reserves it; the
    // purchase never expires.
    assert_eq!(balance(&store, &u).await, (5, 5));
    let history = store
        .transactions(
            &u,
            &bursar_store::page::PageRequest {
                limit: 50,
                before: None,
            },
        )
        .await
        .expect("history");
    let expired: i64 = history
        .data
        .iter()
        .filter(|t| t.kind == "expiry")
        .map(|t| t.amount)
        .sum();
    // 65 at the first sweep; the capture burned 10 of the remaining 35; 25 at the second.
    assert_eq!(expired, -(65 + 25));
    assert_ledger_consistent(&store).await;
}

async fn an_expired_hold_releases_its_credits_and_cannot_be_captured(backend: Backend) {
    let store = open(backend, "hold_expiry").await;
    let u = user(&store, "hold@example.com").await;
    ok(&store, grant(&u, 50, GrantSource::Purchase, 0, None)).await;
    let hold = held(
        ok(
            &store,
            Command::Hold {
                user_id: u.clone(),
                amount: credits(50),
                expires_in_ms: 1_000,
                description: None,
                creator: "svc".into(),
            },
        )
        .await,
    );
    assert_eq!(balance(&store, &u).await, (50, 0));
    store.clock.advance_ms(2_000);
    assert_eq!(
        balance(&store, &u).await,
        (50, 50),
        "an overdue hold no longer counts"
    );
    let hold_id = hold.id.clone();
    let capture = run(
        &store,
        Command::Capture {
            hold_id: hold_id.clone(),
            amount: None,
            creator: "svc".into(),
        },
    )
    .await;
    assert!(matches!(
        capture,
        Err(StoreError::Domain(bursar_core::LedgerError::Conflict(_)))
    ));
    // A spend may use the released credits even before the sweep runs.
    ok(&store, spend(&u, 50)).await;
    let void = run(
        &store,
        Command::Void {
            hold_id,
            creator: "svc".into(),
        },
    )
    .await;
    assert!(matches!(
        void,
        Err(StoreError::Domain(bursar_core::LedgerError::Conflict(_)))
    ));
    assert_ledger_consistent(&store).await;
}

async fn a_refused_command_in_a_batch_leaves_the_others_intact(backend: Backend) {
    let store = open(backend, "batch_failure").await;
    let u = user(&store, "batch@example.com").await;
    ok(&store, grant(&u, 10, GrantSource::Purchase, 0, None)).await;
    // Sent together, these land in one or a few batches; the middle ones fail on their own.
    let commands = vec![
        spend(&u, 3),
        spend(&u, 100),
        spend(&u, 3),
        spend("usr_missing", 1),
        spend(&u, 3),
    ];
    let results = futures::future::join_all(commands.into_iter().map(|c| run(&store, c))).await;
    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(succeeded, 3, "{results:?}");
    assert_eq!(balance(&store, &u).await, (1, 1));
    assert_ledger_consistent(&store).await;
}

async fn commands_apply_in_arrival_order(backend: Backend) {
    let store = open(backend, "batch_order").await;
    let u = user(&store, "order@example.com").await;
    ok(&store, grant(&u, 10, GrantSource::Purchase, 0, None)).await;
    // join_all sends these to the writer in this order; applied in any other order, a different
    // spend would be refused.
    let results =
        futures::future::join_all([6, 5, 4].map(|amount| run(&store, spend(&u, amount)))).await;
    let outcome: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(outcome, vec![true, false, true]);
    assert_eq!(
        results[2]
            .as_ref()
            .map(|r| spent(r.clone()).balance_after)
            .ok(),
        Some(0)
    );
    assert_ledger_consistent(&store).await;
}

async fn two_instances_on_one_database_never_overdraw_or_deadlock(backend: Backend) {
    // Two stores, each with its own ledger writer, as two Bursar processes would have.
    let url = fresh_database_url(backend, "two_instances").await;
    let first = Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("opens");
    let second = Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("opens again");
    let users = [
        user(&first, "i1@example.com").await,
        user(&first, "i2@example.com").await,
    ];
    for u in &users {
        ok(&first, grant(u, 150, GrantSource::Purchase, 0, None)).await;
    }
    let tasks = (0..400).map(|i| {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        // Each command touches both accounts in a different order, the classic deadlock shape.
        let (a, b) = if i % 4 < 2 {
            (users[0].clone(), users[1].clone())
        } else {
            (users[1].clone(), users[0].clone())
        };
        tokio::spawn(async move {
            let one = store.ledger.execute(spend(&a, 1)).await.is_ok();
            let two = store.ledger.execute(spend(&b, 1)).await.is_ok();
            usize::from(one) + usize::from(two)
        })
    });
    let succeeded: usize = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task runs"))
        .sum();
    assert_eq!(succeeded, 300, "exactly the 2 × 150 credits were spent");
    for u in &users {
        assert_eq!(balance(&first, u).await, (0, 0));
    }
    assert_ledger_consistent(&first).await;
}

async fn concurrent_spends_never_overdraw_and_every_acknowledged_one_is_recorded(backend: Backend) {
    let store = open(backend, "concurrent_mixed").await;
    let users = [
        user(&store, "a@example.com").await,
        user(&store, "b@example.com").await,
        user(&store, "c@example.com").await,
    ];
    for u in &users {
        ok(&store, grant(u, 300, GrantSource::Purchase, 0, None)).await;
    }
    let tasks = (0..1000).map(|i| {
        let store = store.clone();
        let u = users[i % 3].clone();
        tokio::spawn(async move {
            let command = match i % 5 {
                0 => Command::Hold {
                    user_id: u.clone(),
                    amount: credits(2),
                    expires_in_ms: 60_000,
                    description: None,
                    creator: "svc".into(),
                },
                1 => grant(&u, 1, GrantSource::Gift, 0, None),
                _ => spend(&u, 1 + (i % 3) as i64),
            };
            (u, i % 5, store.ledger.execute(command).await)
        })
    });
    let mut net = std::collections::HashMap::<String, i64>::new();
    for task in futures::future::join_all(tasks).await {
        let (u, kind, result) = task.expect("task runs");
        if let Ok(executed) = result {
            let delta = match (kind, executed.outcome()) {
                (1, _) => 1,
                (_, Some(Outcome::Spent(receipt))) => -receipt.amount,
                _ => 0,
            };
            *net.entry(u).or_default() += delta;
        }
    }
    for u in &users {
        let (bal, _) = balance(&store, u).await;
        assert_eq!(bal, 300 + net.get(u).copied().unwrap_or_default());
        assert!(bal >= 0);
    }
    assert_ledger_consistent(&store).await;
}

async fn concurrent_requests_with_one_idempotency_key_apply_once(backend: Backend) {
    let store = open(backend, "idempotency").await;
    let u = user(&store, "idem@example.com").await;
    ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await;
    let request = |hash: &str| Request {
        command: spend(&u, 7),
        idempotent: Some(Idempotent {
            key: Idempotency {
                scope: "svc".into(),
                key: "k-1".into(),
                request_hash: hash.into(),
            },
            render: |outcome| Rendered {
                status: 200,
                body: format!("{outcome:?}"),
            },
        }),
    };
    let replies =
        futures::future::join_all((0..50).map(|_| store.ledger.execute(request("h")))).await;
    let bodies: std::collections::HashSet<String> = replies
        .into_iter()
        .map(|r| match r.expect("replayed or applied") {
            Executed::Applied { rendered, .. } => rendered.expect("stored under the key").body,
            Executed::Replayed(rendered) => rendered.body,
        })
        .collect();
    assert_eq!(bodies.len(), 1, "every reply is the first response");
    assert_eq!(balance(&store, &u).await, (93, 93));
    let mismatch = store.ledger.execute(request("other")).await;
    assert!(matches!(
        mismatch,
        Err(StoreError::Domain(
            bursar_core::LedgerError::IdempotencyMismatch
        ))
    ));
    assert_ledger_consistent(&store).await;
}

async fn refunds_never_exceed_the_spend(backend: Backend) {
    let store = open(backend, "refunds").await;
    let u = user(&store, "refund@example.com").await;
    ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await;
    let id = spent(ok(&store, spend(&u, 60)).await).transaction_id;
    let refund = |amount: Option<i64>| Command::Refund {
        transfer_id: id.clone(),
        amount: amount.map(credits),
        actor: "svc".into(),
    };
    let results = futures::future::join_all((0..10).map(|_| run(&store, refund(Some(25))))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    let rest = refunded(ok(&store, refund(None)).await);
    assert_eq!((rest.amount, rest.total_refunded), (10, 60));
    assert!(run(&store, refund(None)).await.is_err());
    assert_eq!(balance(&store, &u).await, (100, 100));
    assert_ledger_consistent(&store).await;
}

async fn verify_reports_a_corrupted_balance(backend: Backend) {
    let store = open(backend, "corrupt").await;
    let u = user(&store, "corrupt@example.com").await;
    ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await;
    sqlx::query("UPDATE accounts SET balance = balance + 7 WHERE owner_id = $1")
        .bind(&u)
        .execute(&store.db.pool)
        .await
        .expect("corrupts");
    let report = verify::verify(&store.db).await.expect("verify runs");
    assert!(!report.ok);
    assert!(
        report.problems.iter().any(|p| p.contains("sum to 7")),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("differs from the sum of its transfers"))
    );
    assert!(report.problems.iter().any(|p| p.contains("live grants")));
}

/// A balance already past 2^53 − 1 (written before the bound existed) can be spent down, but
/// nothing may take it further out.
async fn a_balance_out_of_range_can_come_back_but_not_go_further(backend: Backend) {
    let url = fresh_database_url(backend, "past_range").await;
    let store = Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("store opens");
    let u = user(&store, "past@example.com").await;
    ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await;
    store.close().await;
    let past = bursar_core::MAX_CREDITS + 100;
    let store = Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("store opens again");
    for corruption in [
        "UPDATE accounts SET balance = balance + 9007199254740991 WHERE owner_id = $1",
        "UPDATE grants SET remaining = remaining + 9007199254740991, amount = amount + 9007199254740991
         WHERE account_id = (SELECT id FROM accounts WHERE owner_id = $1)",
    ] {
        sqlx::query(corruption)
            .bind(&u)
            .execute(&store.db.pool)
            .await
            .expect(corruption);
    }
    let receipt = spent(ok(&store, spend(&u, 50)).await);
    assert_eq!(receipt.balance_after, past - 50, "spent down towards range");
    let further = run(&store, grant(&u, 60, GrantSource::Purchase, 0, None)).await;
    assert!(
        matches!(
            further,
            Err(StoreError::Domain(
                bursar_core::LedgerError::BalanceOutOfRange { .. }
            ))
        ),
        "{further:?}"
    );
}

/// A full balance and an overdraft as large would let holds reserve twice the largest amount:
/// the hold that would take `held` past 2^53 − 1 is refused and nothing changes.
async fn held_credits_stay_within_range_even_with_an_overdraft(backend: Backend) {
    let store = open(backend, "held_range").await;
    let u = user(&store, "held-range@example.com").await;
    let max = bursar_core::MAX_CREDITS;
    ok(&store, grant(&u, max, GrantSource::Purchase, 0, None)).await;
    bursar_store::accounts::set_overdraft_limit(&store.db, &u, &store.asset, max)
        .await
        .expect("overdraft set");
    let hold = |amount| Command::Hold {
        user_id: u.clone(),
        amount: credits(amount),
        expires_in_ms: 60_000,
        description: None,
        creator: "svc".into(),
    };
    ok(&store, hold(max)).await;
    let further = run(&store, hold(1)).await;
    assert!(
        matches!(
            further,
            Err(StoreError::Domain(
                bursar_core::LedgerError::BalanceOutOfRange { .. }
            ))
        ),
        "{further:?}"
    );
    assert_eq!(balance(&store, &u).await, (max, 0));
    assert_ledger_consistent(&store).await;
}

/// A damaged ledger whose balances and journal sum far past 2^63 is still verified: sums are
/// exact (i128) and an overflowing one is a listed problem, never a failed verification.
async fn verify_sums_a_ledger_far_beyond_64_bit_integers(backend: Backend) {
    let store = open(backend, "huge").await;
    let (u, v) = (
        user(&store, "huge@example.com").await,
        user(&store, "huger@example.com").await,
    );
    for who in [&u, &u, &v] {
        ok(&store, grant(who, 100, GrantSource::Purchase, 0, None)).await;
    }
    let big = 8_000_000_000_000_000_000_i64;
    for corruption in [
        // Two transfers into u whose sum passes i64::MAX.
        "UPDATE transfers SET amount = 8000000000000000000
         WHERE credit_account_id = (SELECT id FROM accounts WHERE owner_id = $1)",
        "UPDATE accounts SET balance = 8000000000000000000 WHERE owner_kind = 'user'",
        "UPDATE grants SET remaining = 8000000000000000000, amount = 8000000000000000000
         WHERE account_id = (SELECT id FROM accounts WHERE owner_id = $1)",
    ] {
        sqlx::query(corruption)
            .bind(&u)
            .execute(&store.db.pool)
            .await
            .expect(corruption);
    }
    let report = verify::verify(&store.db).await.expect("verify runs");
    assert!(!report.ok);
    let problems = report.problems.join("\n");
    let into_u = 2 * i128::from(big);
    assert!(
        problems.contains(&format!("balance {big}, transfers say {into_u}")),
        "{problems}"
    );
    assert!(problems.contains("live grants"), "{problems}");
    let summed = report.assets[0].sum_of_balances;
    assert_eq!(summed, 2 * i128::from(big) - 300, "{problems}");
    assert!(problems.contains(&format!("sum to {summed}")), "{problems}");
}

// Property: random sequences of grants, spends, holds, captures, voids, expiries and refunds
// keep Σ balances = 0, never leave an account below its limit, and keep balance = Σ grants.

#[derive(Debug, Clone)]
enum Op {
    Grant {
        who: usize,
        amount: i64,
        expires_in_ms: Option<i64>,
        priority: i64,
    },
    Spend {
        who: usize,
        amount: i64,
    },
    Hold {
        who: usize,
        amount: i64,
    },
    Capture {
        nth: usize,
        amount: Option<i64>,
    },
    Void {
        nth: usize,
    },
    Refund {
        nth: usize,
        amount: Option<i64>,
    },
    Advance {
        ms: i64,
    },
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0..3usize,
            1..200i64,
            proptest::option::of(1_000..50_000i64),
            0..3i64
        )
            .prop_map(|(who, amount, expires_in_ms, priority)| Op::Grant {
                who,
                amount,
                expires_in_ms,
                priority
            }),
        (0..3usize, 1..150i64).prop_map(|(who, amount)| Op::Spend { who, amount }),
        (0..3usize, 1..100i64).prop_map(|(who, amount)| Op::Hold { who, amount }),
        (0..8usize, proptest::option::of(1..100i64))
            .prop_map(|(nth, amount)| Op::Capture { nth, amount }),
        (0..8usize).prop_map(|nth| Op::Void { nth }),
        (0..8usize, proptest::option::of(1..100i64))
            .prop_map(|(nth, amount)| Op::Refund { nth, amount }),
        (1_000..40_000i64).prop_map(|ms| Op::Advance { ms }),
        Just(Op::Expire),
    ]
}

async fn run_ops(backend: Backend, ops: Vec<Op>) {
    let store = open(backend, "property").await;
    let users = [
        user(&store, "p0@example.com").await,
        user(&store, "p1@example.com").await,
        user(&store, "p2@example.com").await,
    ];
    bursar_store::accounts::set_overdraft_limit(&store.db, &users[2], &store.asset, 30)
        .await
        .expect("limit");
    let (mut holds, mut spends) = (Vec::new(), Vec::new());
    for op in ops {
        let now = store.clock.now_ms();
        let command = match op {
            Op::Grant {
                who,
                amount,
                expires_in_ms,
                priority,
            } => grant(
                &users[who],
                amount,
                GrantSource::Bonus,
                priority,
                expires_in_ms.map(|ms| now + ms),
            ),
            Op::Spend { who, amount } => spend(&users[who], amount),
            Op::Hold { who, amount } => Command::Hold {
                user_id: users[who].clone(),
                amount: credits(amount),
                expires_in_ms: 20_000,
                description: None,
                creator: "svc".into(),
            },
            Op::Capture { nth, amount } => match holds.get(nth) {
                Some(id) => Command::Capture {
                    hold_id: String::clone(id),
                    amount: amount.map(credits),
                    creator: "svc".into(),
                },
                None => continue,
            },
            Op::Void { nth } => match holds.get(nth) {
                Some(id) => Command::Void {
                    hold_id: String::clone(id),
                    creator: "svc".into(),
                },
                None => continue,
            },
            Op::Refund { nth, amount } => match spends.get(nth) {
                Some(id) => Command::Refund {
                    transfer_id: String::clone(id),
                    amount: amount.map(credits),
                    actor: "svc".into(),
                },
                None => continue,
            },
            Op::Advance { ms } => {
                store.clock.advance_ms(ms);
                continue;
            }
            Op::Expire => Command::ExpireDue { max_accounts: 10 },
        };
        match run(&store, command).await {
            Ok(Outcome::Held(hold)) => holds.push(hold.id),
            Ok(Outcome::Spent(spend)) => spends.push(spend.transaction_id),
            _ => {}
        }
        for (i, u) in users.iter().enumerate() {
            let view = store.balance(u).await.expect("reads").expect("exists");
            let limit = if i == 2 { 30 } else { 0 };
            assert!(
                view.balance - view.held >= -limit,
                "{u} below its limit: {view:?}"
            );
        }
    }
    assert_ledger_consistent(&store).await;
}

fn property_config() -> ProptestConfig {
    ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(property_config())]

    #[test]
    fn random_ledger_histories_keep_every_invariant_on_sqlite(ops in proptest::collection::vec(op(), 1..40)) {
        tokio::runtime::Runtime::new().expect("runtime").block_on(run_ops(Backend::Sqlite, ops));
    }

    #[test]
    fn random_ledger_histories_keep_every_invariant_on_postgres(ops in proptest::collection::vec(op(), 1..40)) {
        tokio::runtime::Runtime::new().expect("runtime").block_on(run_ops(Backend::Postgres, ops));
    }
}

/// The SQLite writer keeps accounts between batches; a change made by another connection (an
/// admin's new overdraft limit) must still be seen by the next command.
async fn the_writer_sees_changes_made_outside_it(backend: Backend) {
    let store = open(backend, "writer_sees_outside_changes").await;
    let alice = user(&store, "alice@example.com").await;
    ok(&store, grant(&alice, 100, GrantSource::Purchase, 0, None)).await;
    ok(&store, spend(&alice, 10)).await;
    let refused = run(&store, spend(&alice, 130)).await;
    assert!(matches!(refused, Err(StoreError::Domain(_))), "{refused:?}");
    bursar_store::accounts::set_overdraft_limit(&store.db, &alice, &store.asset, 50)
        .await
        .expect("limit set");
    let overdrawn = spent(ok(&store, spend(&alice, 130)).await);
    assert_eq!(overdrawn.balance_after, -40);
    bursar_store::accounts::set_overdraft_limit(&store.db, &alice, &store.asset, 40)
        .await
        .expect("limit lowered to the debt");
    let refused = run(&store, spend(&alice, 1)).await;
    assert!(matches!(refused, Err(StoreError::Domain(_))), "{refused:?}");
    // Many batches in a row on the writer's own state stay consistent with the database.
    ok(&store, grant(&alice, 1000, GrantSource::Purchase, 0, None)).await;
    for _ in 0..20 {
        ok(&store, spend(&alice, 3)).await;
    }
    assert_eq!(balance(&store, &alice).await.0, 1000 - 40 - 60);
    assert_ledger_consistent(&store).await;
}

/// Text written by a batch (descriptions, metadata) comes back byte for byte, whatever quotes,
/// SQL or control characters it holds.
async fn any_text_round_trips_through_a_batch(backend: Backend) {
    let store = open(backend, "text_round_trips").await;
    let alice = user(&store, "alice@example.com").await;
    ok(&store, grant(&alice, 100, GrantSource::Purchase, 0, None)).await;
    let texts = [
        "it's a \"test\"; DROP TABLE transfers; --",
        "''''",
        "tab\tnewline\nbackslash\\ ü 中文 🎉",
        "nul\0inside",
        "",
        // What a PostgreSQL array literal would otherwise read as structure or as null.
        "{a,\"b\"},{}",
        "NULL",
        "  padded  ",
        "\\",
    ];
    for text in texts {
        let command = Command::Spend {
            user_id: alice.clone(),
            amount: credits(1),
            description: Some(text.to_string()),
            metadata: Some(serde_json::json!({ "note": text }).to_string()),
            actor: "test".into(),
        };
        let result = run(&store, command).await;
        if backend == Backend::Postgres && text.contains('\0') {
            // PostgreSQL text cannot hold NUL at all: refused, never mangled.
            assert!(result.is_err());
            continue;
        }
        result.expect("spend applies");
    }
    let page = bursar_store::page::PageRequest {
        limit: 50,
        before: None,
    };
    let history = store
        .transactions(&alice, &page)
        .await
        .expect("history reads");
    let mut written: Vec<String> = history
        .data
        .iter()
        .filter(|t| t.kind == "spend")
        .filter_map(|t| t.description.clone())
        .collect();
    written.reverse();
    let expected: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| backend == Backend::Sqlite || !t.contains('\0'))
        .collect();
    assert_eq!(written, expected);
    assert_ledger_consistent(&store).await;
}

/// A durable SQLite writer hands its fsync to another thread: its own commits only write the
/// log (`synchronous = NORMAL`), and it names the log that must be synced before an answer.
/// With the relaxed setting, or on PostgreSQL, the commit alone is what durability there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_writer_syncs_its_log_itself_only_when_commits_must_be_durable() {
    use sqlx::Row;
    let url = fresh_database_url(Backend::Sqlite, "writer_sync").await;
    let full = bursar_store::Db::connect(&url, SqliteSync::Full)
        .await
        .expect("db opens");
    full.migrate().await.expect("migrates");
    let (mut writer, wal) = full.connect_writer().await.expect("writer connects");
    let wal = wal.expect("a durable file database names its log");
    assert!(wal.to_string_lossy().ends_with("-wal"), "{}", wal.display());
    assert!(wal.exists(), "the log is where SQLite keeps it");
    let synchronous: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut writer)
        .await
        .expect("pragma reads")
        .try_get(0)
        .expect("an integer");
    assert_eq!(synchronous, 1, "NORMAL: the commit does not fsync");
    let limit: i64 = sqlx::query("PRAGMA journal_size_limit")
        .fetch_one(&mut writer)
        .await
        .expect("pragma reads")
        .try_get(0)
        .expect("an integer");
    assert_eq!(
        limit,
        128 * 1024 * 1024,
        "the log shrinks back after a peak"
    );

    let relaxed = bursar_store::Db::connect(&url, SqliteSync::Normal)
        .await
        .expect("db opens");
    let (_, wal) = relaxed.connect_writer().await.expect("writer connects");
    assert!(wal.is_none());
    let memory = bursar_store::Db::connect("sqlite::memory:", SqliteSync::Full)
        .await
        .expect("db opens");
    let (_, wal) = memory.connect_writer().await.expect("writer connects");
    assert!(wal.is_none(), "an in-memory database has no log to sync");
}

/// On SQLite the writer's connection answers "busy" at once and the writer asks again for the
/// write lock itself, at a finer grain than SQLite's busy handler: a batch that finds the lock
/// held by another connection waits for it, and commits once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_writer_waits_for_a_lock_another_connection_holds() {
    let store = open(Backend::Sqlite, "writer_lock_wait").await;
    let alice = user(&store, "alice@example.com").await;
    ok(&store, grant(&alice, 100, GrantSource::Purchase, 0, None)).await;
    let mut other = store.db.connect_one().await.expect("connects");
    sqlx::Executor::execute(&mut other, "BEGIN IMMEDIATE")
        .await
        .expect("takes the write lock");
    let held_for = std::time::Duration::from_millis(300);
    let started = std::time::Instant::now();
    let release = tokio::spawn(async move {
        tokio::time::sleep(held_for).await;
        sqlx::Executor::execute(&mut other, "COMMIT")
            .await
            .expect("releases the lock");
    });
    ok(&store, spend(&alice, 30)).await;
    assert!(
        started.elapsed() >= held_for,
        "the spend waited for the lock"
    );
    release.await.expect("the other connection is done");
    assert_eq!(balance(&store, &alice).await.0, 70);
    assert_ledger_consistent(&store).await;
}

/// Each command here is its own batch, so on SQLite every one starts from what the writer kept
/// of the last: a hold settled in one batch must stop reserving credits in the next, a new
/// grant must count, and burned-out grants must not come back.
async fn settled_holds_stop_reserving_in_later_batches(backend: Backend) {
    let store = open(backend, "settled_holds").await;
    let u = user(&store, "holds@example.com").await;
    ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await;
    let hold = |amount| Command::Hold {
        user_id: u.clone(),
        amount: credits(amount),
        expires_in_ms: 3_600_000,
        description: None,
        creator: "svc".into(),
    };
    let to_capture = held(ok(&store, hold(60)).await);
    let to_void = held(ok(&store, hold(30)).await);
    assert!(
        run(&store, spend(&u, 11)).await.is_err(),
        "90 of 100 are held"
    );
    ok(
        &store,
        Command::Capture {
            hold_id: to_capture.id.clone(),
            amount: Some(credits(10)),
            creator: "svc".into(),
        },
    )
    .await;
    ok(
        &store,
        Command::Void {
            hold_id: to_void.id.clone(),
            creator: "svc".into(),
        },
    )
    .await;
    ok(&store, spend(&u, 90)).await;
    assert!(
        run(&store, spend(&u, 1)).await.is_err(),
        "the first grant is spent"
    );
    ok(&store, grant(&u, 7, GrantSource::Bonus, 0, None)).await;
    ok(&store, spend(&u, 7)).await;
    assert!(run(&store, spend(&u, 1)).await.is_err());
    assert_ledger_consistent(&store).await;
}

/// The user's transfer ids, newest first, read straight from the journal.
async fn journal_ids(store: &Store, user_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT t.id FROM transfers t JOIN accounts a
           ON (t.debit_account_id = a.id OR t.credit_account_id = a.id)
         WHERE a.owner_kind = 'user' AND a.owner_id = $1 ORDER BY t.id DESC",
    )
    .bind(user_id)
    .fetch_all(&store.db.pool)
    .await
    .expect("journal reads")
}

/// The user's history as the API lists it, walked page by page.
async fn listed_ids(store: &Store, user_id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .transactions(user_id, &PageRequest { limit: 3, before })
            .await
            .expect("history reads");
        ids.extend(page.data.iter().map(|t| t.id.clone()));
        match page.next_cursor {
            Some(cursor) => before = Some(cursor),
            None => return ids,
        }
    }
}

/// SQLite: waits until the writer has moved every transfer into the history index (it does so
/// when idle; see `ledger/history.rs`), and returns the mark.
async fn indexed_through_everything(store: &Store) -> i64 {
    for _ in 0..200 {
        let (mark, last): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT indexed_through FROM history_index),
                    (SELECT COALESCE(MAX(rowid), 0) FROM transfers)",
        )
        .fetch_one(&store.db.pool)
        .await
        .expect("mark reads");
        if mark == last {
            return mark;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the writer never indexed the history");
}

async fn history_lists_indexed_and_unindexed_transfers_alike(backend: Backend) {
    let store = open(backend, "history").await;
    let (u, other) = (
        user(&store, "history@example.com").await,
        user(&store, "other@example.com").await,
    );
    for who in [&u, &other] {
        ok(&store, grant(who, 1_000, GrantSource::Purchase, 0, None)).await;
        for amount in 1..=6 {
            ok(&store, spend(who, amount)).await;
        }
    }
    if backend == Backend::Sqlite {
        // Take the newest five transfers back out of the index, as if no run had reached them
        // yet: the listing must find them in the tail.
        let mark = indexed_through_everything(&store).await;
        sqlx::query("DELETE FROM account_entries WHERE transfer > $1")
            .bind(mark - 5)
            .execute(&store.db.pool)
            .await
            .expect("unindexes");
        sqlx::query("UPDATE history_index SET indexed_through = $1")
            .bind(mark - 5)
            .execute(&store.db.pool)
            .await
            .expect("moves the mark");
    }
    for who in [&u, &other] {
        let listed = listed_ids(&store, who).await;
        assert_eq!(listed.len(), 7);
        assert_eq!(listed, journal_ids(&store, who).await);
    }
    assert_ledger_consistent(&store).await;

    // The next run takes up from the lowered mark.
    ok(&store, spend(&u, 1)).await;
    if backend == Backend::Sqlite {
        indexed_through_everything(&store).await;
    }
    let listed = listed_ids(&store, &u).await;
    assert_eq!(listed.len(), 8);
    assert_eq!(listed, journal_ids(&store, &u).await);
    assert_ledger_consistent(&store).await;
}

/// `Store::history` applies kind and time filters in the database, page by page, and lists
/// what filtering the plain listing would: as written (on SQLite the newest transfers may still
/// be in the unindexed tail) and once everything is indexed.
async fn history_filters_kind_and_time_in_the_database(backend: Backend) {
    use bursar_store::ledger::read::HistoryFilter;
    let store = open(backend, "history_filter").await;
    let (u, other) = (
        user(&store, "filter@example.com").await,
        user(&store, "filter-other@example.com").await,
    );
    for who in [&u, &other] {
        ok(&store, grant(who, 1_000, GrantSource::Purchase, 0, None)).await;
        for amount in 1..=7 {
            ok(&store, spend(who, amount)).await;
        }
        ok(&store, grant(who, 5, GrantSource::Bonus, 0, None)).await;
    }
    for indexed in [false, true] {
        if indexed && backend == Backend::Sqlite {
            indexed_through_everything(&store).await;
        }
        let all = store
            .transactions(
                &u,
                &PageRequest {
                    limit: 200,
                    before: None,
                },
            )
            .await
            .expect("history reads")
            .data;
        assert_eq!(all.len(), 9);
        let at = |created_at: &str| {
            chrono::DateTime::parse_from_rfc3339(created_at)
                .expect("RFC 3339")
                .timestamp_millis()
        };
        let oldest_kind = all.last().expect("rows").kind.clone();
        let cases = [
            HistoryFilter::default(),
            HistoryFilter {
                kind: Some("spend".into()),
                ..HistoryFilter::default()
            },
            HistoryFilter {
                kind: Some(oldest_kind),
                ..HistoryFilter::default()
            },
            HistoryFilter {
                kind: Some("refund".into()),
                ..HistoryFilter::default()
            },
            HistoryFilter {
                from_ms: Some(at(&all[3].created_at)),
                ..HistoryFilter::default()
            },
            HistoryFilter {
                kind: Some("spend".into()),
                from_ms: Some(at(&all[6].created_at)),
                until_ms: Some(at(&all[2].created_at)),
            },
        ];
        for filter in &cases {
            let expected: Vec<&str> = all
                .iter()
                .filter(|t| {
                    filter.kind.as_deref().is_none_or(|k| k == t.kind)
                        && filter.from_ms.is_none_or(|f| at(&t.created_at) >= f)
                        && filter.until_ms.is_none_or(|u| at(&t.created_at) < u)
                })
                .map(|t| t.id.as_str())
                .collect();
            let mut listed = Vec::new();
            let mut before = None;
            loop {
                let page = store
                    .history(&u, filter, &PageRequest { limit: 2, before })
                    .await
                    .expect("history reads");
                assert!(page.data.iter().all(|t| t.paid_by.is_empty()));
                listed.extend(page.data.into_iter().map(|t| (t.id, t.amount)));
                match page.next_cursor {
                    Some(cursor) => before = Some(cursor),
                    None => break,
                }
            }
            let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, expected, "{filter:?}, indexed: {indexed}");
            for (id, amount) in &listed {
                let plain = all.iter().find(|t| &t.id == id).expect("listed");
                assert_eq!(*amount, plain.amount, "signed as in the plain listing");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_a_history_index_that_differs_from_the_journal() {
    let store = open(Backend::Sqlite, "history_corrupt").await;
    let (u, other) = (
        user(&store, "history-corrupt@example.com").await,
        user(&store, "other-corrupt@example.com").await,
    );
    ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await;
    ok(&store, grant(&other, 100, GrantSource::Purchase, 0, None)).await;
    indexed_through_everything(&store).await;
    assert_ledger_consistent(&store).await;
    // One entry lost, one filed under an account the transfer never touched, and one whose
    // copy of its transfer's kind no longer agrees.
    sqlx::query(
        "DELETE FROM account_entries WHERE transfer = 1
           AND account = (SELECT a.rowid FROM transfers t JOIN accounts a
                          ON a.id = t.debit_account_id WHERE t.rowid = 1)",
    )
    .execute(&store.db.pool)
    .await
    .expect("drops an entry");
    sqlx::query(
        "INSERT INTO account_entries (account, transfer, kind, created_at)
         SELECT a.rowid, t.rowid, t.kind, t.created_at FROM accounts a, transfers t
         WHERE a.owner_id = $1 AND t.rowid = (SELECT MAX(rowid) FROM transfers)",
    )
    .bind(&u)
    .execute(&store.db.pool)
    .await
    .expect("adds a stray entry");
    sqlx::query(
        "UPDATE account_entries SET kind = 'spend'
         WHERE account = (SELECT rowid FROM accounts WHERE owner_id = $1)",
    )
    .bind(&other)
    .execute(&store.db.pool)
    .await
    .expect("changes an entry's kind");
    let report = verify::verify(&store.db).await.expect("verify runs");
    let mentions = |what: &str| report.problems.iter().any(|p| p.contains(what));
    assert!(
        mentions("transfer missing from the account history"),
        "{:?}",
        report.problems
    );
    assert!(
        mentions("entry without an indexed transfer of that account"),
        "{:?}",
        report.problems
    );
    assert!(
        mentions("entry whose kind or time differs from its transfer's"),
        "{:?}",
        report.problems
    );
}

/// PostgreSQL's journal has no foreign keys (migration 006): verify finds what they would
/// have refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_journal_rows_that_name_nothing_on_postgres() {
    let store = open(Backend::Postgres, "dangling").await;
    let u = user(&store, "dangling@example.com").await;
    ok(&store, grant(&u, 100, GrantSource::Purchase, 0, None)).await;
    let spend_id = spent(ok(&store, spend(&u, 10)).await).transaction_id;
    assert_ledger_consistent(&store).await;
    for corruption in [
        "UPDATE transfers SET credit_account_id = 'acc_gone' WHERE id = $1",
        "UPDATE transfers SET refund_of = 'txn_gone' WHERE id = $1",
        "INSERT INTO transfer_grants (transfer_id, grant_id, amount) VALUES ($1, 'grt_gone', 1)",
    ] {
        sqlx::query(corruption)
            .bind(&spend_id)
            .execute(&store.db.pool)
            .await
            .expect(corruption);
    }
    let report = verify::verify(&store.db).await.expect("verify runs");
    let mentions = |what: &str| report.problems.iter().any(|p| p.contains(what));
    for check in [
        "transfer naming an account that does not exist",
        "refund of a transfer that does not exist",
        "grant payment naming a transfer or grant that does not exist",
    ] {
        assert!(mentions(check), "{check}: {:?}", report.problems);
    }
}

/// Balance reads made at once share queries (`balances.rs`); each still gets its own user's
/// balance, grants and holds, and a user with no account gets none.
async fn concurrent_balance_reads_each_get_their_own_users_balance(backend: Backend) {
    let store = open(backend, "balance_reads").await;
    let mut expected = Vec::new();
    for i in 0..30_i64 {
        let u = user(&store, &format!("reader{i}@example.com")).await;
        ok(
            &store,
            grant(&u, 10 * (i + 1), GrantSource::Purchase, 0, None),
        )
        .await;
        let mut grants = 1;
        if i % 2 == 0 {
            ok(
                &store,
                grant(&u, 5, GrantSource::Bonus, 1, Some(i64::MAX / 2)),
            )
            .await;
            grants += 1;
        }
        let mut held = 0;
        if i % 3 == 0 {
            let hold = Command::Hold {
                user_id: u.clone(),
                amount: credits(3),
                expires_in_ms: 3_600_000,
                description: None,
                creator: "test".into(),
            };
            ok(&store, hold).await;
            held = 3;
        }
        let balance = 10 * (i + 1) + if i % 2 == 0 { 5 } else { 0 };
        expected.push((u, balance, balance - held, grants));
    }
    let reads = (0..600).map(|n| {
        let store = store.clone();
        let who = expected.get(n % 31).cloned();
        tokio::spawn(async move {
            let user_id = who.as_ref().map_or("usr_nobody", |(u, ..)| u.as_str());
            let view = store.balance(user_id).await.expect("balance reads");
            (who, view)
        })
    });
    for read in futures::future::join_all(reads).await {
        match read.expect("task runs") {
            (Some((user_id, balance, available, grants)), Some(view)) => {
                assert_eq!(view.user_id, user_id);
                assert_eq!((view.balance, view.available), (balance, available));
                assert_eq!(view.grants.len(), grants, "{user_id}");
            }
            (None, None) => {}
            (who, view) => panic!("{who:?} read as {view:?}"),
        }
    }
}
