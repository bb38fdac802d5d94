//! The member's dashboard and account settings.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use bursar_store::ledger::read::{BalanceView, TransactionView};
use bursar_store::page::PageRequest;
use bursar_store::users::{User, UserChanges};
use serde::Deserialize;

use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, render, render_with};
use super::forms::FieldErrors;
use crate::AppState;
use crate::app::accounts;
use crate::auth::password;

const RECENT_ACTIVITY: i64 = 10;

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct Dashboard<'a> {
    page: &'a Page,
    balance: BalanceView,
    recent: Vec<TransactionView>,
}

pub async fn dashboard(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> PageResult {
    let balance = state.store.balance(&user.id).await.or_page(&page)?;
    let balance = balance.unwrap_or_else(|| BalanceView {
        user_id: user.id.clone(),
        asset: state.store.asset.clone(),
        balance: 0,
        available: 0,
        held: 0,
        overdraft_limit: 0,
        grants: Vec::new(),
    });
    let recent = state
        .store
        .transactions(
            &user.id,
            &PageRequest {
                limit: RECENT_ACTIVITY,
                before: None,
            },
        )
        .await
        .or_page(&page)?
        .data;
    render(
        &page,
        &Dashboard {
            page: &page,
            balance,
            recent,
        },
    )
}

#[derive(Template)]
#[template(path = "web/settings.html")]
struct SettingsPage<'a> {
    page: &'a Page,
    user: &'a User,
    display_name: String,
    time_zone: String,
    errors: FieldErrors,
    saved: Option<String>,
}

impl SettingsPage<'_> {
    fn zones(&self) -> &'static [&'static str] {
        TIME_ZONES
    }
}

/// The zones offered in the settings form: where Bursar's users are, and UTC.
const TIME_ZONES: &[&str] = &[
    "Asia/Shanghai",
    "Asia/Taipei",
    "Asia/Hong_Kong",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
];

#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn settings_form(
    SignedIn { page, user }: SignedIn,
    axum::extract::Query(query): axum::extract::Query<SavedQuery>,
) -> PageResult {
    let saved = query.saved.map(|what| match what.as_str() {
        "password" => page.t.t("settings-password-saved"),
        _ => page.t.t("settings-saved"),
    });
    let view = SettingsPage {
        page: &page,
        display_name: user.display_name.clone().unwrap_or_default(),
        time_zone: user.time_zone.clone().unwrap_or_default(),
        user: &user,
        errors: FieldErrors::default(),
        saved,
    };
    render(&page, &view)
}

#[derive(Deserialize)]
pub struct SettingsForm {
    display_name: String,
    language: String,
    time_zone: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Form(form): Form<SettingsForm>,
) -> PageResult {
    let mut errors = FieldErrors::default();
    let name = form.display_name.trim().to_string();
    let display_name = match accounts::check_display_name(Some(name.clone())) {
        Ok(name) => name,
        Err(_) => {
            errors.add("display_name", page.t.t("register-name-rule"));
            None
        }
    };
    let language = accounts::check_language(Some(form.language.clone())).unwrap_or(None);
    let time_zone = match accounts::check_time_zone(Some(form.time_zone.clone())) {
        Ok(zone) => zone,
        Err(_) => {
            errors.add("time_zone", page.t.t("settings-zone-invalid"));
            None
        }
    };
    if !errors.is_empty() {
        let view = SettingsPage {
            page: &page,
            user: &user,
            display_name: form.display_name,
            time_zone: form.time_zone,
            errors,
            saved: None,
        };
        return render_with(&page, &view, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let changes = UserChanges {
        display_name,
        language,
        time_zone,
        ..UserChanges::default()
    };
    state
        .store
        .update_user(&user.id, &changes)
        .await
        .or_page(&page)?;
    Ok(Redirect::to("/account/settings?saved=profile").into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: Option<String>,
    new_password: String,
}

/// A new password ends every session of the user (the API's and the web's); this browser gets
/// a fresh one, so the person who changed it stays signed in.
pub async fn change_password(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let mut errors = FieldErrors::default();
    // Someone who forgot the password signs in with a code and then sets a new one.
    if !page.fresh_code_sign_in
        && !password::verify(
            form.current_password.unwrap_or_default(),
            user.password_hash.clone(),
        )
        .await
    {
        errors.add("current_password", page.t.t("settings-current-wrong"));
    }
    if accounts::check_password(&form.new_password).is_err() {
        errors.add("new_password", page.t.t("register-password-rule"));
    }
    if !errors.is_empty() {
        let view = SettingsPage {
            page: &page,
            user: &user,
            display_name: user.display_name.clone().unwrap_or_default(),
            time_zone: user.time_zone.clone().unwrap_or_default(),
            errors,
            saved: None,
        };
        return render_with(&page, &view, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let hash = password::hash(form.new_password).await.or_page(&page)?;
    let changes = UserChanges {
        password_hash: Some(hash),
        ..UserChanges::default()
    };
    state
        .store
        .update_user(&user.id, &changes)
        .await
        .or_page(&page)?;
    // The new password ended every session, this one too: the browser that set it gets a new one.
    super::auth_pages::start_session(
        &state,
        &page,
        &user.id,
        "/account/settings?saved=password",
        "password",
    )
    .await
}
