//! The `bursar` command line, run as a user would run it, on both backends.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use bursar_store::testing::{Backend, fresh_database_url};
use bursar_store::{Clock, SqliteSync, Store};

fn bursar(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bursar"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("BURSAR_JWT_SECRET")
        .output()
        .expect("bursar runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn admin_commands_and_ledger_verify(backend: Backend) {
    let url = fresh_database_url(backend, "cli").await;
    let migrate = bursar(&url, &["migrate"]);
    assert!(migrate.status.success(), "{migrate:?}");

    let admin = bursar(
        &url,
        &[
            "admin",
            "create",
            "--email",
            "Root@Example.com",
            "--password",
            "long enough",
        ],
    );
    assert!(admin.status.success(), "{admin:?}");
    assert!(stdout(&admin).contains("root@example.com"));
    let promote_again = bursar(
        &url,
        &[
            "admin",
            "create",
            "--email",
            "root@example.com",
            "--password",
            "another one",
        ],
    );
    assert!(
        promote_again.status.success(),
        "creating an existing admin promotes and resets it"
    );
    let short = bursar(
        &url,
        &[
            "admin",
            "create",
            "--email",
            "x@example.com",
            "--password",
            "short",
        ],
    );
    assert!(!short.status.success());

    // The command line keeps the API's rules, and says what is wrong once, exiting non-zero.
    for name in ["", "   ", &"x".repeat(101)] {
        let refused = bursar(&url, &["api-key", "create", "--name", name]);
        assert_eq!(refused.status.code(), Some(2), "{name:?}: {refused:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines, ["error: name must be 1 to 100 characters"], "{said}");
    }
    let not_an_email = bursar(
        &url,
        &[
            "admin",
            "create",
            "--email",
            "not an email",
            "--password",
            "long enough",
        ],
    );
    assert_eq!(not_an_email.status.code(), Some(2), "{not_an_email:?}");
    let said = String::from_utf8_lossy(&not_an_email.stderr);
    assert_eq!(said.lines().count(), 1, "one line per error: {said}");

    let key = bursar(&url, &["api-key", "create", "--name", "ai service"]);
    assert!(key.status.success(), "{key:?}");
    let secret = stdout(&key).trim().to_string();
    assert!(secret.starts_with("bsk_") && secret.len() > 40, "{secret}");

    let verify = bursar(&url, &["ledger", "verify"]);
    assert!(verify.status.success(), "{verify:?}");
    assert!(stdout(&verify).contains("ledger ok"));

    // Corrupt the database behind Bursar's back: verify must notice and say what is wrong.
    let store = Store::open(&url, SqliteSync::Full, Clock::default())
        .await
        .expect("opens");
    let admin_user = store
        .user_by_email("root@example.com")
        .await
        .expect("reads")
        .expect("exists");
    sqlx::query("UPDATE accounts SET balance = 500 WHERE owner_id = $1")
        .bind(&admin_user.id)
        .execute(&store.db.pool)
        .await
        .expect("corrupts");
    let broken = bursar(&url, &["ledger", "verify"]);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let report = stdout(&broken);
    assert!(report.contains("balances sum to 500"), "{report}");
    assert!(
        report.contains("differs from the sum of its transfers"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_and_ledger_verify_work_on_sqlite() {
    admin_commands_and_ledger_verify(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_and_ledger_verify_work_on_postgres() {
    admin_commands_and_ledger_verify(Backend::Postgres).await;
}

/// The help promises only what exists: there is no web UI yet, only the hosted payment pages.
#[test]
fn serve_help_describes_what_serve_runs() {
    let help = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .args(["serve", "--help"])
        .output()
        .expect("bursar runs");
    assert!(help.status.success(), "{help:?}");
    let text = stdout(&help);
    assert!(
        text.contains("payment pages") && text.contains("background jobs"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("web ui"), "{text}");
}

#[test]
fn serve_with_no_settings_creates_bursar_db_in_the_working_directory() {
    let dir = std::env::temp_dir().join(format!("bursar-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .arg("serve")
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        .env("BURSAR_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("bursar listening on "))
        .expect("serve announces its address");
    let addr = line
        .trim_start_matches("bursar listening on http://")
        .to_string();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connects");
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    let _ = child.kill();
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("{\"status\":\"ok\"}"));
    assert!(
        dir.join("bursar.db").exists(),
        "the embedded database is created on first start"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_database_scheme_is_refused_clearly() {
    let output = bursar("mysql://localhost/db", &["migrate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("DATABASE_URL must start with sqlite: or postgres://")
    );
}

#[test]
fn serve_refuses_an_alipay_key_that_does_not_parse_naming_its_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .arg("serve")
        .env("DATABASE_URL", "sqlite::memory:")
        .env("BURSAR_ALIPAY_APP_ID", "2021000000000001")
        .env(
            "BURSAR_ALIPAY_PRIVATE_KEY",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        )
        .env(
            "BURSAR_ALIPAY_PUBLIC_KEY",
            "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A",
        )
        .output()
        .expect("bursar runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BURSAR_ALIPAY_PRIVATE_KEY"), "{stderr}");
    assert!(
        !stderr.contains("AAAA"),
        "the key is never printed: {stderr}"
    );
}

#[test]
fn serve_refuses_a_wechat_pay_key_that_does_not_parse_naming_its_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .arg("serve")
        .env("DATABASE_URL", "sqlite::memory:")
        .env("BURSAR_WECHATPAY_MCHID", "1900007291")
        .env("BURSAR_WECHATPAY_APPID", "wxd678efh567hg6787")
        .env(
            "BURSAR_WECHATPAY_SERIAL_NO",
            "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB",
        )
        .env(
            "BURSAR_WECHATPAY_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nQUJDREVGR0g=\n-----END PRIVATE KEY-----",
        )
        .env(
            "BURSAR_WECHATPAY_APIV3_KEY",
            "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
        )
        .output()
        .expect("bursar runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BURSAR_WECHATPAY_PRIVATE_KEY"), "{stderr}");
    assert!(
        !stderr.contains("QUJDREVGR0g") && !stderr.contains("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"),
        "no secret is printed: {stderr}"
    );
}

#[test]
fn serve_refuses_an_incomplete_ecpay_setup_naming_the_missing_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_bursar"))
        .arg("serve")
        .env("DATABASE_URL", "sqlite::memory:")
        .env("BURSAR_ECPAY_MERCHANT_ID", "3002607")
        .env("BURSAR_ECPAY_HASH_KEY", "pwFHCqoQZGmho4w6")
        .output()
        .expect("bursar runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BURSAR_ECPAY_HASH_IV"), "{stderr}");
    assert!(!stderr.contains("pwFHCqoQZGmho4w6"), "{stderr}");
}
