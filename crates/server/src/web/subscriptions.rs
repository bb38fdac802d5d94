//! The member's subscriptions: what each gives a day, until when, and automatic renewal on or
//! off.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use bursar_store::subscriptions::Subscription;
use serde::Deserialize;

use super::actions::Flash;
use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, Problem, render};
use crate::AppState;

const HERE: &str = "/account/subscriptions";

#[derive(Template)]
#[template(path = "web/subscriptions.html")]
struct SubscriptionsPage<'a> {
    page: &'a Page,
    subscriptions: Vec<Subscription>,
    names: HashMap<String, String>,
    notice: Option<String>,
    error: Option<String>,
}

impl SubscriptionsPage<'_> {
    fn name(&self, subscription: &Subscription) -> String {
        self.names
            .get(&subscription.package_id)
            .cloned()
            .unwrap_or_else(|| subscription.package_id.clone())
    }
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(flash): Query<Flash>,
) -> PageResult {
    let subscriptions = state
        .store
        .subscriptions_of(&user.id)
        .await
        .or_page(&page)?;
    let mut names = HashMap::new();
    for subscription in &subscriptions {
        if !names.contains_key(&subscription.package_id)
            && let Some(package) = state
                .store
                .package(&subscription.package_id)
                .await
                .or_page(&page)?
        {
            names.insert(package.id, package.spec.name);
        }
    }
    let view = SubscriptionsPage {
        page: &page,
        subscriptions,
        names,
        notice: flash.notice(&page),
        error: flash.error(&page),
    };
    render(&page, &view)
}

#[derive(Deserialize)]
pub struct RenewalForm {
    /// `on` or `off`.
    auto_renew: String,
}

pub async fn set_renewal(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<RenewalForm>,
) -> PageResult {
    state
        .store
        .set_auto_renew(&user.id, &id, form.auto_renew == "on")
        .await
        .or_page(&page)?
        .ok_or_else(|| super::errors::page(&page, Problem::NotFound))?;
    Ok(Redirect::to(&format!("{HERE}?notice=notice-subscription-saved")).into_response())
}
