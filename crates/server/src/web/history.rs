//! The transaction history: filters by kind and date, pages, and a CSV export of what the
//! filters select. It reads the same history as `GET /api/v1/me/transactions`.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use bursar_core::TransferKind;
use bursar_store::ledger::read::{HISTORY_LIMIT_MAX, HistoryFilter, TransactionView};
use bursar_store::page::PageRequest;
use chrono::{NaiveDate, TimeZone};
use futures::StreamExt;
use serde::Deserialize;

use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, render};
use crate::AppState;

const PAGE_ROWS: i64 = 25;

#[derive(Debug, Default, Deserialize, Clone)]
pub struct Filters {
    kind: Option<String>,
    /// `YYYY-MM-DD`, in the user's time zone, inclusive.
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// The filters as the store applies them.
fn selection(filters: &Filters, page: &Page) -> HistoryFilter {
    let day_start = |text: &Option<String>, days_after: u64| {
        let date = NaiveDate::parse_from_str(text.as_deref()?.trim(), "%Y-%m-%d").ok()?;
        let midnight = date
            .checked_add_days(chrono::Days::new(days_after))?
            .and_hms_opt(0, 0, 0)?;
        page.fmt
            .zone
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.timestamp_millis())
    };
    HistoryFilter {
        // A kind that names none is no filter, as an empty one is.
        kind: filters
            .kind
            .as_deref()
            .and_then(TransferKind::parse)
            .map(|k| k.as_str().to_string()),
        from_ms: day_start(&filters.from, 0),
        // Exclusive: the start of the day after `to`.
        until_ms: day_start(&filters.to, 1),
    }
}

#[derive(Template)]
#[template(path = "web/transactions.html")]
struct HistoryPage<'a> {
    page: &'a Page,
    rows: Vec<TransactionView>,
    filters: Filters,
    kinds: &'static [TransferKind],
    next: Option<String>,
    csv_link: String,
}

impl HistoryPage<'_> {
    fn next_link(&self, cursor: &str) -> String {
        link("/account/transactions", &self.filters, Some(cursor))
    }

    fn selected_kind(&self, kind: &TransferKind) -> bool {
        self.filters.kind.as_deref() == Some(kind.as_str())
    }
}

fn link(path: &str, filters: &Filters, cursor: Option<&str>) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("kind", &filters.kind),
        ("from", &filters.from),
        ("to", &filters.to),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            pairs.push((name, value));
        }
    }
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(filters): Query<Filters>,
) -> PageResult {
    let request = PageRequest {
        limit: PAGE_ROWS,
        before: filters.cursor.clone().filter(|c| !c.is_empty()),
    };
    let found = state
        .store
        .history(&user.id, &selection(&filters, &page), &request)
        .await
        .or_page(&page)?;
    let (rows, next) = (found.data, found.next_cursor);
    let view = HistoryPage {
        page: &page,
        rows,
        next,
        csv_link: link("/account/transactions.csv", &filters, None),
        filters,
        kinds: TransferKind::ALL,
    };
    render(&page, &view)
}

/// Every row the filters select, as CSV (amounts in credits, times in RFC 3339 UTC, as the API
/// gives them), streamed in the store's largest batches: memory stays at one batch however long
/// the history, and the first batch is read before the answer starts, so a store that fails at
/// once gives an error page. A failure later can only cut the download short (logged).
pub async fn csv(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(filters): Query<Filters>,
) -> PageResult {
    let filter = selection(&filters, &page);
    let first = state
        .store
        .history(&user.id, &filter, &export_batch(None))
        .await
        .or_page(&page)?;
    let head = csv_lines(&first.data, true).map_err(|_| super::errors::internal_page())?;
    let store = state.store.clone();
    let rest = futures::stream::try_unfold(first.next_cursor, move |cursor| {
        let (store, user_id, filter) = (store.clone(), user.id.clone(), filter.clone());
        async move {
            let Some(before) = cursor else {
                return Ok(None);
            };
            let batch = store
                .history(&user_id, &filter, &export_batch(Some(before)))
                .await
                .map_err(|error| {
                    tracing::error!(%error, "transaction export cut short");
                    std::io::Error::other("the export could not be read to its end")
                })?;
            let lines = csv_lines(&batch.data, false).map_err(std::io::Error::other)?;
            Ok(Some((lines, batch.next_cursor)))
        }
    });
    let body = futures::stream::once(async { Ok::<_, std::io::Error>(head) }).chain(rest);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"transactions.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

fn export_batch(before: Option<String>) -> PageRequest {
    PageRequest {
        limit: HISTORY_LIMIT_MAX,
        before,
    }
}

/// `rows` as CSV lines, after the column names when `with_header`.
fn csv_lines(rows: &[TransactionView], with_header: bool) -> Result<Bytes, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 96 + 64));
    if with_header {
        writer.write_record([
            "id",
            "created_at",
            "kind",
            "amount",
            "balance_after",
            "order_id",
            "description",
        ])?;
    }
    for row in rows {
        writer.write_record([
            row.id.as_str(),
            row.created_at.as_str(),
            row.kind.as_str(),
            &row.amount.to_string(),
            &row.balance_after.to_string(),
            row.order_id.as_deref().unwrap_or_default(),
            row.description.as_deref().unwrap_or_default(),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(Bytes::from(bytes))
}
