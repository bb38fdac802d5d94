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

/// A batch's writes, as few round trips as possible: `insert` and `update` write many rows of
/// one table in one statement.
///
/// SQLite gets the rows as a `VALUES` list of anonymous parameters, and every statement of the
/// batch goes into one script sent by `finish`: each call on a SQLite connection is a round trip
/// to its worker thread, which under load waits for a core. PostgreSQL gets each statement at
/// once, its rows as one array parameter per column, zipped back into rows by `unnest`: the
/// statement text then never changes, so it is prepared and planned once, where a `VALUES` list
/// of thousands of parameters cost tens of milliseconds to plan on every batch. Arrays are the
/// cheapest form for the server to read: rows as one `json` parameter (`json_to_recordset`)
/// spent a sixth of the database's work for a batch of spends lexing keys and building a hash
/// table per row, and `jsonb` more still.
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

    /// Inserts `rows` of `columns` into `table`.
    pub async fn insert(
        &mut self,
        conn: &mut AnyConnection,
        table: &str,
        columns: &[Column],
        rows: &[Vec<Value<'_>>],
    ) -> Result<(), StoreError> {
        self.add(conn, columns, rows, |source, names| {
            format!("INSERT INTO {table} ({names}) SELECT {names} FROM {source}")
        })
        .await
    }

    /// Sets the other `columns` of the rows of `table` whose key, the first column, is given.
    pub async fn update(
        &mut self,
        conn: &mut AnyConnection,
        table: &str,
        columns: &[Column],
        rows: &[Vec<Value<'_>>],
    ) -> Result<(), StoreError> {
        let key = columns[0].0;
        let set = columns[1..]
            .iter()
            .map(|(name, _)| format!("{name} = v.{name}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.add(conn, columns, rows, |source, _| {
            format!("UPDATE {table} SET {set} FROM {source} WHERE {table}.{key} = v.{key}")
        })
        .await
    }

    /// Writes `rows` with the statement `make_sql(source, names)` (see the type's comment).
    async fn add(
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
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for column in 0..columns.len() {
                    query = query.bind(postgres_array(rows.iter().map(|row| &row[column])));
                }
                query.execute(&mut *conn).await?;
                Ok(())
            }
        }
    }

    /// Ends SQLite's script with `COMMIT`, so the transaction commits in the same call as its
    /// writes (SQLite stops a script at its first failing statement, committing nothing).
    pub fn commit_at_end(&mut self) {
        debug_assert_eq!(self.dialect, Dialect::Sqlite, "PostgreSQL commits apart");
        self.script.push_str("COMMIT;\n");
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

/// `unnest($1::text[], $2::bigint[], …) AS v(name, …)`: one array parameter per column.
fn postgres_source(columns: &[Column]) -> String {
    let mut params = Params::new(Dialect::Postgres);
    let arrays = columns
        .iter()
        .map(|(_, kind)| format!("{}::{}", params.next(), array_type(*kind)))
        .collect::<Vec<_>>()
        .join(", ");
    let names = columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    format!("unnest({arrays}) AS v({names})")
}

fn array_type(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Int => "bigint[]",
        ColumnType::Text => "text[]",
    }
}

/// One column's values as a PostgreSQL array literal, `{1,NULL}` or `{"a\"b",NULL}`: every
/// text element is quoted, so only `"` and `\` need a backslash, and an unquoted `NULL` is null.
pub(crate) fn postgres_array<'v>(values: impl Iterator<Item = &'v Value<'v>>) -> String {
    use std::fmt::Write;
    let mut array = String::from("{");
    for (i, value) in values.enumerate() {
        if i > 0 {
            array.push(',');
        }
        match value {
            Value::Int(v) | Value::OptInt(Some(v)) => {
                let _ = write!(array, "{v}");
            }
            Value::Text(v) | Value::OptText(Some(v)) => {
                array.push('"');
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        array.push('\\');
                    }
                    array.push(c);
                }
                array.push('"');
            }
            Value::OptInt(None) | Value::OptText(None) => array.push_str("NULL"),
        }
    }
    array.push('}');
    array
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

    #[test]
    fn postgres_arrays_quote_every_text_and_leave_null_bare() {
        let texts = [
            Value::Text(r#"a"b\c"#),
            Value::OptText(None),
            Value::Text("NULL"),
            Value::OptText(Some("{x, y}")),
        ];
        assert_eq!(
            postgres_array(texts.iter()),
            r#"{"a\"b\\c",NULL,"NULL","{x, y}"}"#
        );
        let numbers = [Value::Int(-3), Value::OptInt(None), Value::OptInt(Some(7))];
        assert_eq!(postgres_array(numbers.iter()), "{-3,NULL,7}");
        assert_eq!(postgres_array([].iter()), "{}");
        assert_eq!(
            postgres_source(&[("id", ColumnType::Text), ("n", ColumnType::Int)]),
            "unnest($1::text[], $2::bigint[]) AS v(id, n)"
        );
    }
}
