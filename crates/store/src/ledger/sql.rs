//! Multi-row statements: one round trip writes a whole batch's rows of one kind.

use sqlx::any::AnyArguments;
use sqlx::{AnyConnection, Arguments};

use crate::StoreError;
use crate::db::Dialect;

/// Bound parameters per statement stay well under both backends' limits (SQLite 32,766,
/// PostgreSQL 65,535).
const PARAMS_PER_STATEMENT_MAX: usize = 20_000;

/// One value of a row, as bound.
pub(crate) enum Value<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
}

/// Numbers bind parameters in the form each backend handles best. SQLite gets anonymous `?`:
/// with numbered `$N` its parser looks each name up in a list, which is quadratic in the number
/// of parameters and dominated the cost of a large batch. PostgreSQL needs `$N`.
pub(crate) struct Params {
    dialect: Dialect,
    next: usize,
}

impl Params {
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, next: 1 }
    }

    pub fn next(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        match self.dialect {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// `p, p, p` for an `IN (…)` list of `count` values.
    pub fn list(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| self.next())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(p, p), (p, p)` for `rows` rows of `columns` values.
    pub fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(columns)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A column of the rows being written, and its SQL type.
pub(crate) type Column = (&'static str, ColumnType);

#[derive(Clone, Copy)]
pub(crate) enum ColumnType {
    Int,
    Text,
}

/// A batch's writes, as few round trips as possible. `add(columns, rows, make_sql)` writes
/// `rows`, where `make_sql(source, columns)` returns the statement and `source` is a relation
/// aliased `v` with the named `columns` (for use as `INSERT INTO t (columns) SELECT columns FROM
/// source` or `UPDATE t … FROM source WHERE …`).
///
/// SQLite gets the rows as a `VALUES` list of anonymous parameters, and every statement of the
/// batch goes into one script sent by `finish`: each call on a SQLite connection is a round trip
/// to its worker thread, which under load waits for a core. PostgreSQL gets each statement at
/// once, its rows as one JSON parameter unpacked by `json_to_recordset`: the statement text then
/// never changes, so it is prepared and planned once, where a `VALUES` list of thousands of
/// parameters cost tens of milliseconds to plan on every batch. The parameter is `json`, not
/// `jsonb`: it is read once, and building a `jsonb` value first (sorting every object's keys)
/// was a tenth of the database's work for a batch of spends.
pub(crate) struct BatchWrites {
    dialect: Dialect,
    script: String,
    arguments: AnyArguments,
}

impl BatchWrites {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            script: String::new(),
            arguments: AnyArguments::default(),
        }
    }

    pub async fn add(
        &mut self,
        conn: &mut AnyConnection,
        columns: &[Column],
        rows: &[Vec<Value<'_>>],
        make_sql: impl Fn(&str, &str) -> String,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let names = columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        match self.dialect {
            Dialect::Sqlite => {
                let renamed = columns
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| format!("column{} AS {name}", i + 1))
                    .collect::<Vec<_>>()
                    .join(", ");
                let rows_per_statement = (PARAMS_PER_STATEMENT_MAX / columns.len()).max(1);
                for chunk in rows.chunks(rows_per_statement) {
                    let values = Params::new(self.dialect).rows(chunk.len(), columns.len());
                    let source = format!("(SELECT {renamed} FROM (VALUES {values})) AS v");
                    self.script.push_str(&make_sql(&source, &names));
                    self.script.push_str(";\n");
                    for row in chunk {
                        debug_assert_eq!(row.len(), columns.len());
                        for value in row {
                            match value {
                                Value::Int(v) => self.arguments.add(*v),
                                Value::OptInt(v) => self.arguments.add(*v),
                                Value::Text(v) => self.arguments.add(*v),
                                Value::OptText(v) => self.arguments.add(*v),
                            }
                            .map_err(sqlx::Error::Encode)?;
                        }
                    }
                }
                Ok(())
            }
            Dialect::Postgres => {
                let sql = make_sql(&postgres_source(columns), &names);
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(postgres_rows_json(columns, rows))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }
        }
    }

    /// Sends what SQLite has gathered, in one call (statements run in the order added).
    pub async fn finish(self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        if !self.script.is_empty() {
            sqlx::query_with(sqlx::AssertSqlSafe(self.script), self.arguments)
                .persistent(false)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// `json_to_recordset($1::json) AS v(name type, …)`.
fn postgres_source(columns: &[Column]) -> String {
    let record = columns
        .iter()
        .map(|(name, kind)| {
            let sql_type = match kind {
                ColumnType::Int => "bigint",
                ColumnType::Text => "text",
            };
            format!("{name} {sql_type}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("json_to_recordset($1::json) AS v({record})")
}

/// The rows as a JSON array of objects keyed by column name.
fn postgres_rows_json(columns: &[Column], rows: &[Vec<Value<'_>>]) -> String {
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let object = columns
                .iter()
                .zip(row)
                .map(|((name, _), value)| {
                    let value = match value {
                        Value::Int(v) => serde_json::Value::from(*v),
                        Value::OptInt(v) => {
                            v.map_or(serde_json::Value::Null, serde_json::Value::from)
                        }
                        Value::Text(v) => serde_json::Value::from(*v),
                        Value::OptText(v) => {
                            v.map_or(serde_json::Value::Null, serde_json::Value::from)
                        }
                    };
                    (name.to_string(), value)
                })
                .collect();
            serde_json::Value::Object(object)
        })
        .collect();
    serde_json::Value::Array(json).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_value_once_on_postgres_and_are_anonymous_on_sqlite() {
        assert_eq!(
            Params::new(Dialect::Postgres).rows(2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        let mut params = Params::new(Dialect::Postgres);
        assert_eq!(params.next(), "$1");
        assert_eq!(params.list(3), "$2, $3, $4");
        assert_eq!(Params::new(Dialect::Sqlite).rows(2, 2), "(?, ?), (?, ?)");
    }
}
