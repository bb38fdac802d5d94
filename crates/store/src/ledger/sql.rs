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

/// Runs `make_sql(values_list)` for the rows in chunks. `make_sql` receives the `VALUES` rows
/// as placeholder text and returns the whole statement.
pub(crate) async fn execute_rows<'a>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    columns: usize,
    rows: &[Vec<Value<'a>>],
    make_sql: impl Fn(&str) -> String,
) -> Result<(), StoreError> {
    let rows_per_statement = (PARAMS_PER_STATEMENT_MAX / columns).max(1);
    for chunk in rows.chunks(rows_per_statement) {
        let sql = make_sql(&Params::new(dialect).rows(chunk.len(), columns));
        let mut arguments = AnyArguments::default();
        for row in chunk {
            debug_assert_eq!(row.len(), columns);
            for value in row {
                match value {
                    Value::Int(v) => arguments.add(*v),
                    Value::OptInt(v) => arguments.add(*v),
                    Value::Text(v) => arguments.add(*v),
                    Value::OptText(v) => arguments.add(*v),
                }
                .map_err(sqlx::Error::Encode)?;
            }
        }
        sqlx::query_with(sqlx::AssertSqlSafe(sql), arguments)
            .persistent(false)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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
