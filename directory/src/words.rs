//! Vocabulary words ([`offhook_vocab`]) read from rows: stored as their spelling,
//! parsed back on the way out; a spelling the vocabulary does not know is a
//! decode error naming the column, not a silent default.

use std::str::FromStr;

use offhook_vocab::UnknownWord;
use sqlx::{Row, any::AnyRow};

fn parse<W: FromStr<Err = UnknownWord>>(column: &str, text: &str) -> sqlx::Result<W> {
    text.parse().map_err(|e: UnknownWord| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

/// Reads column `column` as a word.
pub(crate) fn word<W: FromStr<Err = UnknownWord>>(row: &AnyRow, column: &str) -> sqlx::Result<W> {
    let text: String = row.try_get(column)?;
    parse(column, &text)
}

/// Reads nullable column `column` as a word.
pub(crate) fn optional_word<W: FromStr<Err = UnknownWord>>(
    row: &AnyRow,
    column: &str,
) -> sqlx::Result<Option<W>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| parse(column, &t)).transpose()
}
