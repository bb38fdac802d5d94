//! The load itself: `concurrency` client tasks, each looping over its profile's requests until
//! the deadline, recording every latency and status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use rand::Rng;

use crate::setup::Fixture;
use crate::{Args, Profile};

#[derive(Default)]
pub struct Outcome {
    pub latencies_us: Vec<u32>,
    pub by_status: BTreeMap<u16, u64>,
    /// Credits spent according to acknowledged (200) spends and captures.
    pub spent: i64,
    /// Spends and captures acknowledged.
    pub spends: u64,
    pub transport_errors: u64,
    pub elapsed: Duration,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        for (status, count) in other.by_status {
            *self.by_status.entry(status).or_default() += count;
        }
        self.spent += other.spent;
        self.spends += other.spends;
        self.transport_errors += other.transport_errors;
    }
}

/// One client's own keep-alive connection. Requests are sent one at a time, so the connection
/// is reopened only after a transport error.
pub(crate) struct Connection {
    pub(crate) host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection (opened on first use) to the server at `base` (`http://host:port`).
    pub(crate) fn new(base: &str) -> Self {
        Self {
            host: base
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            sender: None,
        }
    }

    /// Sends one request and reads the whole body; `None` (and the connection dropped, to be
    /// reopened by the next request) on a transport error.
    pub(crate) async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Option<(u16, Bytes)> {
        let answered = async {
            let response = self.sender().await?.send_request(request).await.ok()?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.ok()?.to_bytes();
            Some((status, bytes))
        }
        .await;
        if answered.is_none() {
            self.sender = None;
        }
        answered
    }

    async fn sender(&mut self) -> Option<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(&self.host).await.ok()?;
            stream.set_nodelay(true).ok()?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .ok()?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut()?;
        sender.ready().await.ok()?;
        Some(sender)
    }
}

struct Client {
    connection: Connection,
    /// `Bearer <service key>`, built once.
    service_auth: HeaderValue,
    outcome: Outcome,
}

impl Client {
    /// Sends one request; returns the status and, when asked for, the parsed body. Other
    /// bodies are read (so the connection is reused) but not parsed: the generator shares the
    /// machine with the server, so it spends as little as it can.
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        want_body: bool,
    ) -> Option<(u16, serde_json::Value)> {
        let started = Instant::now();
        let answered = self.exchange(request, want_body).await;
        if answered.is_none() {
            self.connection.sender = None;
        }
        self.outcome
            .latencies_us
            .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match &answered {
            Some((status, _)) => *self.outcome.by_status.entry(*status).or_default() += 1,
            None => self.outcome.transport_errors += 1,
        }
        answered
    }

    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        want_body: bool,
    ) -> Option<(u16, serde_json::Value)> {
        let response = self
            .connection
            .sender()
            .await?
            .send_request(request)
            .await
            .ok()?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        let body = if want_body {
            serde_json::from_slice(&bytes).unwrap_or_default()
        } else {
            serde_json::Value::Null
        };
        Some((status, body))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        auth: HeaderValue,
        body: Option<String>,
    ) -> Request<Full<Bytes>> {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.connection.host)
            .header(header::AUTHORIZATION, auth);
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body))),
            None => builder.body(Full::new(Bytes::new())),
        };
        request.expect("the generator's requests are well-formed")
    }

    fn post(&self, path: &str, body: String) -> Request<Full<Bytes>> {
        self.request(Method::POST, path, self.service_auth.clone(), Some(body))
    }

    async fn spend(&mut self, user: &str, amount: i64) {
        let request = self.post(
            "/api/v1/credits/spend",
            format!(r#"{{"user_id":"{user}","amount":{amount}}}"#),
        );
        if let Some((200, _)) = self.send(request, false).await {
            self.outcome.spent += amount;
            self.outcome.spends += 1;
        }
    }

    async fn hold_and_capture(&mut self, user: &str, captured: i64) {
        let request = self.post(
            "/api/v1/credits/holds",
            format!(r#"{{"user_id":"{user}","amount":5}}"#),
        );
        let Some((201, hold)) = self.send(request, true).await else {
            return;
        };
        let id = hold["id"].as_str().unwrap_or_default().to_string();
        let request = self.post(
            &format!("/api/v1/credits/holds/{id}/capture"),
            format!(r#"{{"amount":{captured}}}"#),
        );
        if let Some((200, _)) = self.send(request, false).await {
            self.outcome.spent += captured;
            self.outcome.spends += 1;
        }
    }

    async fn read_balance(&mut self, token: &str) {
        let auth = bearer(token);
        let request = self.request(Method::GET, "/api/v1/me/balance", auth, None);
        self.send(request, false).await;
    }
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("tokens are header-safe")
}

async fn client_loop(fixture: &Fixture, profile: Profile, deadline: Instant) -> Outcome {
    let mut client = Client {
        connection: Connection::new(&fixture.base),
        service_auth: bearer(&fixture.api_key),
        outcome: Outcome::default(),
    };
    while Instant::now() < deadline {
        let (index, roll, captured) = {
            let mut rng = rand::rng();
            (
                rng.random_range(0..fixture.users.len()),
                rng.random_range(0..100u32),
                rng.random_range(1..=5i64),
            )
        };
        let (user, token) = &fixture.users[index];
        match profile {
            Profile::Spend | Profile::Hot => client.spend(user, 1).await,
            Profile::HoldCapture => client.hold_and_capture(user, captured).await,
            Profile::Balance => client.read_balance(token).await,
            // Driven by `pages.rs`, never here.
            Profile::Pages => break,
            Profile::Mixed => match roll {
                0..70 => client.spend(user, 1).await,
                70..85 => client.hold_and_capture(user, captured).await,
                _ => client.read_balance(token).await,
            },
        }
    }
    client.outcome
}

pub async fn drive(fixture: Arc<Fixture>, args: &Args, duration: Duration) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let profile = args.profile;
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let fixture = Arc::clone(&fixture);
            tokio::spawn(async move { client_loop(&fixture, profile, deadline).await })
        })
        .collect();
    let mut total = Outcome::default();
    for outcome in futures::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
    {
        total.merge(outcome);
    }
    total.elapsed = started.elapsed();
    total
}
