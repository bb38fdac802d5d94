use crate::helpers::TestApp;
use crate::on_both_backends;

#[test]
fn the_openapi_document_matches_the_reviewed_snapshot() {
    // A contract change shows up in review as a change to this file. To accept one, run the
    // test with UPDATE_SNAPSHOTS=1.
    let (_, doc) = bursar_server::routes::api_router().split_for_parts();
    // The providers of a server with only the built-in ones (no Stripe key).
    let providers = ["bank_transfer", "sandbox"];
    let generated = serde_json::to_string_pretty(&bursar_server::openapi::finish(doc, &providers))
        .expect("serialises")
        + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.snapshot.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &generated).expect("snapshot written");
    }
    let reviewed =
        std::fs::read_to_string(&path).expect("snapshot exists (run with UPDATE_SNAPSHOTS=1)");
    assert!(
        generated == reviewed,
        "the OpenAPI document changed: review it and rerun with UPDATE_SNAPSHOTS=1"
    );
}

on_both_backends!(
    health_ready_and_docs_answer_without_auth,
    the_openapi_document_describes_every_route,
    metrics_count_requests_per_route_and_ledger_commands,
    unknown_routes_and_wrong_methods_get_problem_json,
);

async fn health_ready_and_docs_answer_without_auth(app: TestApp) {
    let health = app.send("GET", "/health", None, None, &[]).await;
    assert_eq!(
        (health.status, health.json["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = app.send("GET", "/ready", None, None, &[]).await;
    assert_eq!(ready.status, 200);
    let docs = app.send("GET", "/docs/", None, None, &[]).await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.text.contains("swagger"),
        "Swagger UI is served from the binary"
    );
    assert!(!docs.text.contains("cdn."), "no CDN");
    assert!(health.headers.contains_key("x-request-id"));
}

async fn the_openapi_document_describes_every_route(app: TestApp) {
    let doc = app.send("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    // Every error of the API is documented as problem+json; a hosted page's as HTML.
    for (path, item) in doc.json["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let wanted = if path.starts_with("/pay/") {
                    "text/html"
                } else {
                    "application/problem+json"
                };
                let types: Vec<&String> = response["content"]
                    .as_object()
                    .map(|c| c.keys().collect())
                    .unwrap_or_default();
                assert_eq!(types, [wanted], "{method} {path} {status}");
            }
            // A webhook takes its provider's format whatever it is labelled, so it has no 415.
            let typed = !path.starts_with("/pay/") && !path.contains("/webhooks/");
            if operation.get("requestBody").is_some() && typed {
                assert!(operation["responses"]["415"].is_object(), "{method} {path}");
            }
        }
    }
    // The limits the server enforces are stated.
    let spend = &doc.json["components"]["schemas"]["SpendRequest"]["properties"]["amount"];
    assert_eq!(
        (spend["minimum"].as_i64(), spend["maximum"].as_i64()),
        (Some(1), Some((1 << 53) - 1))
    );
    let limit = doc.json["paths"]["/api/v1/me/transactions"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .map(|p| {
            (
                p["schema"]["minimum"].as_i64(),
                p["schema"]["maximum"].as_i64(),
            )
        });
    assert_eq!(limit, Some((Some(1), Some(200))));
    let provider = &doc.json["components"]["schemas"]["OrderRequest"]["properties"]["provider"];
    assert_eq!(
        provider["enum"],
        serde_json::json!(["bank_transfer", "sandbox"]),
        "configured providers only"
    );
    let expected = [
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me", "patch"),
        ("/api/v1/me/balance", "get"),
        ("/api/v1/me/transactions", "get"),
        ("/api/v1/credits/spend", "post"),
        ("/api/v1/credits/refund", "post"),
        ("/api/v1/credits/holds", "post"),
        ("/api/v1/credits/holds/{id}/capture", "post"),
        ("/api/v1/credits/holds/{id}/void", "post"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/users/{id}", "get"),
        ("/api/v1/admin/users/{id}", "patch"),
        ("/api/v1/admin/users/{id}/adjustments", "post"),
        ("/api/v1/admin/users/{id}/transactions", "get"),
        ("/api/v1/admin/api-keys", "get"),
        ("/api/v1/admin/api-keys", "post"),
        ("/api/v1/admin/api-keys/{id}", "delete"),
        ("/api/v1/admin/audit-log", "get"),
        ("/api/v1/admin/ledger/verify", "get"),
        ("/api/v1/packages", "get"),
        ("/api/v1/admin/packages", "get"),
        ("/api/v1/admin/packages", "post"),
        ("/api/v1/admin/packages/{id}", "get"),
        ("/api/v1/admin/packages/{id}", "put"),
        ("/api/v1/admin/packages/{id}", "delete"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/cancel", "post"),
        ("/api/v1/orders/{id}/receipt", "get"),
        ("/api/v1/webhooks/{provider}", "post"),
        ("/api/v1/admin/orders", "get"),
        ("/api/v1/admin/orders/{id}", "get"),
        ("/api/v1/admin/orders/{id}/refund", "post"),
        ("/api/v1/admin/orders/{id}/confirm", "post"),
        ("/api/v1/admin/coupons", "get"),
        ("/api/v1/admin/coupons", "post"),
        ("/api/v1/admin/coupons/{id}", "get"),
        ("/api/v1/admin/coupons/{id}", "put"),
        ("/api/v1/admin/coupons/{id}", "delete"),
        ("/api/v1/me/daily-gift", "get"),
        ("/api/v1/me/daily-gift", "post"),
        ("/api/v1/me/inbox", "get"),
        ("/api/v1/me/inbox/{id}/claim", "post"),
        ("/api/v1/admin/rewards", "post"),
        ("/pay/sandbox/{payment_id}", "get"),
        ("/pay/sandbox/{payment_id}", "post"),
        ("/pay/result/{payment_id}", "get"),
    ];
    for (path, method) in expected {
        assert!(
            doc.json["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    // Client generators name methods after operation ids: each must be unique.
    let mut ids: Vec<&str> = doc.json["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|methods| methods.as_object().expect("methods").values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique");
}

async fn metrics_count_requests_per_route_and_ledger_commands(app: TestApp) {
    let member = app.register("metrics@example.com").await;
    app.grant(&member.id, 5).await;
    app.post(
        "/api/v1/credits/spend",
        &member.token,
        serde_json::json!({"amount": 1}),
    )
    .await;
    let metrics = app.send("GET", "/metrics", None, None, &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("http_requests_total"),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains("route=\"/api/v1/credits/spend\""));
    assert!(
        metrics
            .text
            .contains("http_request_duration_seconds_bucket")
    );
    assert!(metrics.text.contains("bursar_ledger_commands_total"));
}

async fn unknown_routes_and_wrong_methods_get_problem_json(app: TestApp) {
    let missing = app
        .send("GET", "/api/v1/nothing-here", None, None, &[])
        .await;
    assert_eq!(missing.status, 404);
    assert!(missing.is_problem() && missing.code() == "not_found");
    let wrong = app
        .send("DELETE", "/api/v1/credits/spend", None, None, &[])
        .await;
    assert_eq!(wrong.status, 405);
    assert!(wrong.is_problem());
}

/// A server whose ledger writer has died reports it on `/ready` and stops by itself, flagged
/// so that `bursar serve` exits non-zero and its supervisor restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_ledger_writer_stops_is_unready_and_shuts_down() {
    let url = bursar_store::testing::fresh_database_url(
        bursar_store::testing::Backend::Sqlite,
        "writer_dies",
    )
    .await;
    let config = bursar_server::Config::for_tests(&url);
    let state = bursar_server::prepare(config.clone(), bursar_store::Clock::default())
        .await
        .expect("prepares");
    let running = bursar_server::start(state.clone(), config.addr)
        .await
        .expect("starts");
    let base = format!("http://{}", running.addr);
    let ready = reqwest::get(format!("{base}/ready"))
        .await
        .expect("answers");
    assert_eq!(ready.status(), 200);
    state.store.ledger.stop();
    state.store.ledger.stopped().await;
    assert!(!state.store.ledger.is_running());
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        running.shutdown.cancelled(),
    )
    .await
    .expect("the server stops itself");
    assert!(
        running
            .writer_failed
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), running.finished)
        .await
        .expect("and finishes")
        .expect("cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_ledger_writer_is_gone() {
    let url = bursar_store::testing::fresh_database_url(
        bursar_store::testing::Backend::Sqlite,
        "writer_gone",
    )
    .await;
    let state = bursar_server::prepare(
        bursar_server::Config::for_tests(&url),
        bursar_store::Clock::default(),
    )
    .await
    .expect("prepares");
    state.store.ledger.stop();
    state.store.ledger.stopped().await;
    // The router alone, without the watchdog that would stop the server.
    let response = tower::ServiceExt::oneshot(
        bursar_server::router(state),
        axum::http::Request::get("/ready")
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("answers");
    assert_eq!(response.status(), 503);
}

/// Idle sockets, sockets that trickle a header a byte at a time and idle keep-alive sockets are
/// all closed once the header timeout passes; while they fill every connection slot a new
/// client is answered 503 at once (never left hanging), and afterwards it gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed_within_the_bound_and_others_get_through() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    const SLOTS: usize = 24;
    let app = TestApp::spawn_with(
        bursar_store::testing::Backend::Sqlite,
        "slow_clients",
        |config| {
            config.header_timeout_s = 1;
            config.connections_max = SLOTS;
        },
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let opened = Instant::now();
    let sockets = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            let mut sockets = Vec::new();
            for i in 0..SLOTS {
                let mut socket = TcpStream::connect(&addr).expect("connects");
                match i % 3 {
                    // Idle: never sends a byte.
                    0 => {}
                    // Slow: half a header now, a byte at a time later.
                    1 => write!(socket, "GET /health HTTP/1.1\r\nHost: x\r\n").expect("writes"),
                    // Keep-alive: one whole request and its answer, then idle.
                    _ => {
                        write!(socket, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("writes");
                        let mut answer = [0_u8; 512];
                        let read = socket.read(&mut answer).expect("answered");
                        assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
                    }
                }
                sockets.push(socket);
            }
            sockets
        }
    })
    .await
    .expect("sockets open");

    // Every slot is taken: a new client is told so at once.
    let busy = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            let mut socket = TcpStream::connect(&addr).expect("connects");
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout set");
            let _ = write!(socket, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut answer = String::new();
            let _ = socket.read_to_string(&mut answer);
            answer
        }
    })
    .await
    .expect("busy client ran");
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    assert!(busy.contains("\"code\":\"unavailable\""), "{busy}");

    // The server closes every one of them; the slow ones keep trickling bytes meanwhile.
    let closed_after = tokio::task::spawn_blocking(move || {
        let mut waits = Vec::new();
        for (i, mut socket) in sockets.into_iter().enumerate() {
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout set");
            let mut buffer = [0_u8; 256];
            loop {
                match socket.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        assert!(
                            opened.elapsed() < Duration::from_secs(10),
                            "socket {i} still open"
                        );
                        if i % 3 == 1 {
                            let _ = socket.write_all(b"X");
                        }
                    }
                    Err(_) => break,
                }
            }
            waits.push(opened.elapsed());
        }
        waits
    })
    .await
    .expect("sockets watched");
    let slowest = closed_after.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(5),
        "closed after {closed_after:?}"
    );

    let health = app.get("/health", "").await;
    assert_eq!(health.status, 200, "{}", health.text);
}

/// Terminates every PostgreSQL backend of this test's server (its connections are named after
/// its schema), as an administrator or a failover would, and answers how many.
async fn terminate_backends(app: &TestApp) -> i64 {
    let url = &app.state.config.database_url;
    let schema = url
        .split("application_name%3D")
        .nth(1)
        .expect("a test URL names its connections")
        .to_string();
    let base = std::env::var("BURSAR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
        .await
        .expect("connects");
    sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(schema)
    .fetch_one(&mut admin)
    .await
    .expect("terminates")
}

/// A PostgreSQL blip (every backend of the server terminated) fails no request: a ledger
/// command whose connection died before its commit is applied again on a fresh connection,
/// reads find a live connection, and `/ready` stays ready while the database is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_database_connections_fail_no_request() {
    let app = TestApp::spawn(bursar_store::testing::Backend::Postgres, "blip").await;
    let member = app.register("blip@example.com").await;
    app.grant(&member.id, 1000).await;
    for round in 0..5 {
        assert!(terminate_backends(&app).await > 0, "round {round}");
        let ready = app.get("/ready", "").await;
        assert_eq!(ready.status, 200, "round {round}: {}", ready.text);
        assert!(terminate_backends(&app).await >= 0);
        let spend = app
            .post(
                "/api/v1/credits/spend",
                &member.token,
                serde_json::json!({"amount": 1}),
            )
            .await;
        assert_eq!(spend.status, 200, "round {round}: {}", spend.text);
        terminate_backends(&app).await;
        let balance = app.get("/api/v1/me/balance", &member.token).await;
        assert_eq!(balance.status, 200, "round {round}: {}", balance.text);
        assert_eq!(balance.json["balance"], 999 - round, "round {round}");
        terminate_backends(&app).await;
        let me = app.get("/api/v1/me", &member.token).await;
        assert_eq!(me.status, 200, "round {round}: {}", me.text);
    }
    let metrics = app.get("/metrics", "").await;
    assert!(
        metrics
            .text
            .lines()
            .any(|l| l.starts_with("bursar_ledger_reconnects_total") && !l.ends_with(" 0")),
        "the writer reconnected: {}",
        metrics.text
    );
    app.assert_ledger_ok().await;
}

/// A client that asks for more than it reads (many pipelined requests for the OpenAPI
/// document) holds its connection only until its response has stalled for the write timeout:
/// then the connection is closed and its slot is free for others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_response_loses_its_connection() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let app = TestApp::spawn_with(
        bursar_store::testing::Backend::Sqlite,
        "never_reads",
        |config| {
            config.write_timeout_s = 1;
            config.connections_max = 1;
        },
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // A connection per request: a pooled idle one would hold the only slot itself.
    let unpooled = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let status_of = |path: &str| {
        let request = unpooled.get(format!("{}{path}", app.base));
        async move {
            let response = request.send().await.expect("answered");
            (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            )
        }
    };
    let document = status_of("/openapi.json").await.1.len();
    const PIPELINED: usize = 300;
    let requests = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(PIPELINED);
    // The hog must hold the only slot: the connection of the request above may still be
    // closing when it connects (then the hog is refused), so it tries until its first answer
    // is a 200 (those few bytes read change nothing: it never reads the rest).
    let mut hog = None;
    for _ in 0..50 {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connects");
        stream.write_all(requests.as_bytes()).expect("writes");
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head).expect("an answer starts");
        if &head == b"HTTP/1.1 200" {
            hog = Some(stream);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut hog = hog.expect("the hog got the slot");
    let started = Instant::now();
    // While it holds the only slot, others are refused at once.
    let (busy, text) = status_of("/health").await;
    assert_eq!(busy, 503, "{text}");
    // Its slot comes back once its response has stalled for the write timeout.
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if status_of("/health").await.0 == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the slot never came back"
        );
    }
    let received = tokio::task::spawn_blocking(move || {
        hog.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout set");
        let mut total = 0;
        let mut buffer = vec![0_u8; 1 << 16];
        while let Ok(read) = hog.read(&mut buffer) {
            if read == 0 {
                break;
            }
            total += read;
        }
        total
    })
    .await
    .expect("read");
    assert!(
        received < PIPELINED * document,
        "the server gave up before sending everything: {received} of {}",
        PIPELINED * document
    );
}
