//! Cursor pagination: newest first, the cursor is the last id returned (ids sort by time).

use serde::Serialize;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    /// Only items with ids sorting before this one; `None` starts from the newest.
    pub before: Option<String>,
}

impl PageRequest {
    /// The cursor used in SQL: every real id sorts below "~".
    pub fn before_or_max(&self) -> &str {
        self.before.as_deref().unwrap_or("~")
    }

    /// Fetch one more row than asked for, to know whether there is a next page.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    pub fn finish<T>(&self, mut rows: Vec<T>, id_of: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more { rows.last().map(id_of) } else { None };
        Page {
            data: rows,
            next_cursor,
        }
    }
}
