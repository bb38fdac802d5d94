//! The transaction history: filters by kind and date, pages, and a CSV export of what the
//! filters select. It reads the same history as `GET /api/v1/me/transactions`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use bursar_core::TransferKind;
use bursar_store::ledger::read::TransactionView;
use bursar_store::page::PageRequest;
use chrono::{NaiveDate, TimeZone};
use serde::Deserialize;

use super::context::{Page, SignedIn};
use super::errors::{OrPage, PageResult, render};
use crate::AppState;

const PAGE_ROWS: usize = 25;
/// Rows read from the store at a time while filtering.
const SCAN_BATCH: i64 = 200;
/// The most rows one CSV export holds.
const EXPORT_ROWS_MAX: usize = 100_000;

#[derive(Debug, Default, Deserialize, Clone)]
pub struct Filters {
    kind: Option<String>,
    /// `YYYY-MM-DD`, in the user's time zone, inclusive.
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// The filters as the store's rows are tested against them.
struct Selection {
    kind: Option<TransferKind>,
    from_ms: Option<i64>,
    /// Exclusive: the start of the day after `to`.
    until_ms: Option<i64>,
}

impl Selection {
    fn new(filters: &Filters, page: &Page) -> Self {
        let day_start = |text: &Option<String>, days_after: i64| {
            let date = NaiveDate::parse_from_str(text.as_deref()?.trim(), "%Y-%m-%d").ok()?;
            let date = date.checked_add_days(chrono::Days::new(days_after as u64))?;
            let midnight = date.and_hms_opt(0, 0, 0)?;
            page.fmt
                .zone
                .from_local_datetime(&midnight)
                .earliest()
                .map(|t| t.timestamp_millis())
        };
        Self {
            kind: filters.kind.as_deref().and_then(TransferKind::parse),
            from_ms: day_start(&filters.from, 0),
            until_ms: day_start(&filters.to, 1),
        }
    }

    fn keeps(&self, row: &TransactionView) -> bool {
        let at = chrono::DateTime::parse_from_rfc3339(&row.created_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        self.kind.is_none_or(|k| k.as_str() == row.kind)
            && self.from_ms.is_none_or(|from| at >= from)
            && self.until_ms.is_none_or(|until| at < until)
    }

    /// Rows older than `from` cannot match, and the history runs newest first.
    fn past_the_start(&self, row: &TransactionView) -> bool {
        let at = chrono::DateTime::parse_from_rfc3339(&row.created_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        self.from_ms.is_some_and(|from| at < from)
    }
}

/// Up to `wanted` matching rows after `cursor`, and the cursor of the next page when there is
/// more to read.
async fn select(
    state: &AppState,
    user_id: &str,
    selection: &Selection,
    cursor: Option<String>,
    wanted: usize,
) -> Result<(Vec<TransactionView>, Option<String>), bursar_store::StoreError> {
    let mut rows = Vec::new();
    let mut before = cursor.filter(|c| !c.is_empty());
    loop {
        let request = PageRequest {
            limit: SCAN_BATCH,
            before: before.clone(),
        };
        let batch = state.store.transactions(user_id, &request).await?;
        for row in batch.data {
            if selection.past_the_start(&row) {
                return Ok((rows, None));
            }
            before = Some(row.id.clone());
            if selection.keeps(&row) {
                rows.push(row);
                if rows.len() == wanted {
                    let more = before.clone();
                    return Ok((rows, more));
                }
            }
        }
        if batch.next_cursor.is_none() {
            return Ok((rows, None));
        }
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
    let selection = Selection::new(&filters, &page);
    let (rows, next) = select(
        &state,
        &user.id,
        &selection,
        filters.cursor.clone(),
        PAGE_ROWS,
    )
    .await
    .or_page(&page)?;
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
/// gives them).
pub async fn csv(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(filters): Query<Filters>,
) -> PageResult {
    let selection = Selection::new(&filters, &page);
    let (rows, _) = select(&state, &user.id, &selection, None, EXPORT_ROWS_MAX)
        .await
        .or_page(&page)?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let columns = [
        "id",
        "created_at",
        "kind",
        "amount",
        "balance_after",
        "order_id",
        "description",
    ];
    let write = move || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        writer.write_record(columns)?;
        for row in &rows {
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
        writer.flush()?;
        Ok(writer.into_inner()?)
    };
    let body = write().map_err(|_| super::errors::internal_page())?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"transactions.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}
