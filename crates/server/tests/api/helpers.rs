//! `TestApp`: a Bursar server on an ephemeral port with a fresh database, and one method per
//! thing a test does through HTTP.

use bursar_core::{Credits, GrantSource, Role};
use bursar_server::{AppState, Config, Running};
use bursar_store::Clock;
use bursar_store::ledger::Command;
pub use bursar_store::testing::Backend;
use serde_json::{Value, json};

/// Runs each listed test function (`async fn name(app: TestApp)`) on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite, stringify!($name)).await;
                super::$name(app).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres, stringify!($name)).await;
                super::$name(app).await
            }
        }
    )*};
}

/// Runs each listed test function (`async fn name(backend: Backend)`) on SQLite and on
/// PostgreSQL, for tests that start their servers themselves (with settings of their own).
#[macro_export]
macro_rules! for_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    _running: Running,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }

    pub fn is_problem(&self) -> bool {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/problem+json"))
            && self.json["status"].as_u64() == Some(u64::from(self.status))
            && !self.code().is_empty()
    }
}

pub struct Member {
    pub id: String,
    pub token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub async fn spawn(backend: Backend, name: &str) -> Self {
        Self::spawn_with(backend, name, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        name: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let url = bursar_store::testing::fresh_database_url(backend, name).await;
        Self::spawn_on(&url, Clock::default(), adjust).await
    }

    /// A second Bursar instance on this one's database and clock, as several instances behind
    /// a load balancer share one PostgreSQL database.
    pub async fn another_instance(&self) -> Self {
        let config = (*self.state.config).clone();
        let url = config.database_url.clone();
        Self::spawn_on(&url, self.state.store.clock.clone(), move |c| {
            *c = Config {
                addr: c.addr,
                ..config
            }
        })
        .await
    }

    async fn spawn_on(url: &str, clock: Clock, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests(url);
        adjust(&mut config);
        let state = bursar_server::prepare(config.clone(), clock)
            .await
            .expect("server prepares");
        let running = bursar_server::start(state.clone(), config.addr)
            .await
            .expect("server starts");
        Self {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("client builds"),
            state,
            _running: running,
        }
    }

    /// Runs the job queue until nothing is running and nothing queued is due (on the test's
    /// clock): whatever is due has run, here or on the server's own worker.
    pub async fn settle_jobs(&self) {
        for _ in 0..200 {
            bursar_server::jobs::run_due(&self.state)
                .await
                .expect("jobs run");
            let stats = self.state.store.jobs.stats().await.expect("stats read");
            if stats
                .iter()
                .all(|kind| kind.running == 0 && kind.oldest_queued_at_ms.is_none())
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the job queue did not settle");
    }

    /// Builds the request now and returns a future that borrows nothing, so tests can fire
    /// many at once from temporaries.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> impl Future<Output = Resp> + use<> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move { Self::read(request.send().await.expect("request is answered")).await }
    }

    pub async fn read(response: reqwest::Response) -> Resp {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body reads");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn get(&self, path: &str, token: &str) -> impl Future<Output = Resp> + use<> {
        self.send("GET", path, Some(token), None, &[])
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> impl Future<Output = Resp> + use<> {
        self.send("POST", path, Some(token), Some(&body), &[])
    }

    /// `POST /api/v1/auth/login` with `email` and `password`, answered as it comes.
    pub fn login(&self, email: &str, password: &str) -> impl Future<Output = Resp> + use<> {
        let body = json!({"email": email, "password": password});
        self.send("POST", "/api/v1/auth/login", None, Some(&body), &[])
    }

    pub fn patch(
        &self,
        path: &str,
        token: &str,
        body: Value,
    ) -> impl Future<Output = Resp> + use<> {
        self.send("PATCH", path, Some(token), Some(&body), &[])
    }

    pub async fn register(&self, email: &str) -> Member {
        let resp = self
            .send(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(&json!({"email": email, "password": "correct horse"})),
                &[],
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        Member {
            id: resp.json["user"]["id"]
                .as_str()
                .expect("user id")
                .to_string(),
            token: resp.json["access_token"]
                .as_str()
                .expect("access token")
                .to_string(),
            refresh_token: resp.json["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_string(),
        }
    }

    /// An admin, made the way an operator would (the store directly, as the CLI does), then
    /// signed in through the API.
    pub async fn admin(&self) -> Member {
        let email = format!("admin-{}@example.com", uuid_suffix());
        let hash = bursar_server::auth::password::hash("admin password".into())
            .await
            .expect("hashes");
        let user = self
            .state
            .store
            .create_user(&email, &hash, None, Role::Admin)
            .await
            .expect("admin created");
        let resp = self.login(&email, "admin password").await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        Member {
            id: user.id,
            token: resp.json["access_token"]
                .as_str()
                .expect("token")
                .to_string(),
            refresh_token: resp.json["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_string(),
        }
    }

    pub async fn api_key(&self) -> String {
        self.state
            .store
            .create_api_key(
                "tests",
                None,
                bursar_store::audit::AuditRecord::by_cli("api_key.create"),
            )
            .await
            .expect("key created")
            .secret
    }

    /// Credits a user as a purchase would.
    pub async fn grant(&self, user_id: &str, amount: i64) {
        self.state
            .store
            .ledger
            .execute(Command::Grant {
                user_id: user_id.to_string(),
                amount: Credits::new(amount).expect("valid amount"),
                source: GrantSource::Purchase,
                priority: 0,
                expires_at_ms: None,
                description: None,
                actor: None,
            })
            .await
            .expect("grant applies");
    }

    pub async fn balance(&self, member: &Member) -> (i64, i64) {
        let resp = self.get("/api/v1/me/balance", &member.token).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        (
            resp.json["balance"].as_i64().expect("balance"),
            resp.json["available"].as_i64().expect("available"),
        )
    }

    /// Gives `member` one paid auto top-up (and so its notifications and events): a sandbox
    /// card, a rule, and a spend that crosses its threshold.
    pub async fn top_up_once(&self, member: &Member) {
        self.grant(&member.id, 100).await;
        let card = self
            .post(
                "/api/v1/me/payment-methods",
                &member.token,
                json!({"provider": "sandbox", "card_number": "4242424242424242"}),
            )
            .await;
        assert_eq!(card.status, 201, "{}", card.text);
        let rule = json!({"enabled": true, "threshold": 50, "target": 100,
                          "payment_method_id": card.json["id"]});
        let saved = self
            .send(
                "PUT",
                "/api/v1/me/auto-topup",
                Some(&member.token),
                Some(&rule),
                &[],
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.text);
        let spent = self
            .post(
                "/api/v1/credits/spend",
                &member.token,
                json!({"amount": 60}),
            )
            .await;
        assert_eq!(spent.status, 200, "{}", spent.text);
        self.settle_jobs().await;
    }

    pub async fn assert_ledger_ok(&self) {
        let report = bursar_store::verify::verify(&self.state.store.db)
            .await
            .expect("verify runs");
        assert!(report.ok, "ledger problems: {:?}", report.problems);
    }
}

pub fn uuid_suffix() -> String {
    bursar_store::ids::new_id("x")[20..].to_string()
}
