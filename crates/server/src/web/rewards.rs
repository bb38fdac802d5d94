//! The daily gift and the reward inbox: claim today's gift, see the streak, claim rewards.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bursar_store::page::PageRequest;
use bursar_store::rewards::InboxItem;

use super::actions::{self, Flash, KeyedForm, after, idempotent, settled};
use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, render};
use crate::AppState;
use crate::app::daily_gift::{self, GiftStatus};
use crate::app::rewards;

const INBOX_ROWS: i64 = 50;
const HERE: &str = "/account/rewards";

#[derive(Template)]
#[template(path = "web/rewards.html")]
struct RewardsPage<'a> {
    page: &'a Page,
    gift: GiftStatus,
    inbox: Vec<InboxItem>,
    now_ms: i64,
    notice: Option<String>,
    error: Option<String>,
    form_key: String,
}

impl RewardsPage<'_> {
    fn claimable(&self, item: &InboxItem) -> bool {
        item.claimed_at_ms.is_none() && item.expires_at_ms.is_none_or(|at| at > self.now_ms)
    }
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(flash): Query<Flash>,
) -> PageResult {
    let gift = daily_gift::status(&state, &user.id).await.or_page(&page)?;
    let request = PageRequest {
        limit: INBOX_ROWS,
        before: None,
    };
    let inbox = state
        .store
        .inbox(&user.id, &request)
        .await
        .or_page(&page)?
        .data;
    let view = RewardsPage {
        page: &page,
        gift,
        inbox,
        now_ms: state.store.clock.now_ms(),
        notice: flash.notice(&page),
        error: flash.error(&page),
        form_key: actions::new_form_key(),
    };
    render(&page, &view)
}

pub async fn claim_gift(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Form(form): Form<KeyedForm>,
) -> Response {
    let key = idempotent(&user.id, &form.form_key, "POST /me/daily-gift", "");
    let claimed = daily_gift::claim(&state, &user.id, Some(key))
        .await
        .and_then(settled);
    after(HERE, claimed.as_ref().map(|_| "notice-gift-claimed"))
}

pub async fn claim_reward(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<KeyedForm>,
) -> Response {
    let route = format!("POST /me/inbox/{id}/claim");
    let key = idempotent(&user.id, &form.form_key, &route, "");
    let claimed = rewards::claim(&state, &user.id, &id, Some(key))
        .await
        .and_then(settled);
    after(HERE, claimed.as_ref().map(|_| "notice-reward-claimed"))
}
