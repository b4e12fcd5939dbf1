//! Examples from rows: a batch's canonical `COPY` text lines (docs/receipts.md), decoded field by
//! field, read into a feature matrix and a label vector by the spec's column names — the very text
//! the worker verified, so it trains on nothing it has not proved.

use crate::dataset::BatchRow;
use crate::job_spec::JobSpec;
use ndarray::{Array1, Array2, Axis, Slice};
use std::borrow::Cow;

/// Why rows do not make examples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The spec names a column the table does not have.
    #[error("the table has no column {column:?} (it has {columns})")]
    NoColumn {
        /// The missing column.
        column: String,
        /// The table's columns, comma-separated.
        columns: String,
    },
    /// A row has another number of fields than the table has columns.
    #[error("row {key}: {got} fields, the table has {expected} columns")]
    Fields {
        /// The row's key.
        key: i64,
        /// Fields in the line.
        got: usize,
        /// Columns of the table.
        expected: usize,
    },
    /// A value the model reads is NULL or not a finite number.
    #[error("row {key}, column {column:?}: {value} is not a finite number")]
    NotANumber {
        /// The row's key.
        key: i64,
        /// The column.
        column: String,
        /// The value as the line has it (`NULL` for `\N`).
        value: String,
    },
    /// No rows at all.
    #[error("no rows")]
    Empty,
}

/// Labelled examples: one row of `x` (the spec's features, in its order) and one `y` per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Examples {
    /// Features, `rows × features`.
    pub x: Array2<f64>,
    /// Labels.
    pub y: Array1<f64>,
}

impl Examples {
    /// The examples of `rows` (verified, in order) of a table with `columns`, for the spec's
    /// features and label.
    pub fn from_rows<'a>(
        spec: &JobSpec,
        columns: &[String],
        rows: impl IntoIterator<Item = &'a BatchRow>,
    ) -> Result<Self, DataError> {
        let picks = picks(spec, columns)?;
        let (mut values, mut count) = (Vec::new(), 0usize);
        for row in rows {
            let fields = fields(&row.line);
            if fields.len() != columns.len() {
                return Err(DataError::Fields { key: row.key, got: fields.len(), expected: columns.len() });
            }
            for (&at, column) in picks.iter().zip(spec.columns()) {
                values.push(number(&fields[at]).ok_or_else(|| DataError::NotANumber {
                    key: row.key,
                    column: column.to_string(),
                    value: fields[at].as_deref().unwrap_or("NULL").to_string(),
                })?);
            }
            count += 1;
        }
        if count == 0 {
            return Err(DataError::Empty);
        }
        let n = spec.features.len();
        let all = Array2::from_shape_vec((count, n + 1), values).expect("rows × (features + label)");
        Ok(Self { x: all.slice_axis(Axis(1), Slice::from(..n)).to_owned(), y: all.column(n).to_owned() })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are none (never, for examples that were built).
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Where the spec's columns (features, then label) are among the table's.
fn picks(spec: &JobSpec, columns: &[String]) -> Result<Vec<usize>, DataError> {
    spec.columns()
        .map(|name| {
            columns
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| DataError::NoColumn { column: name.to_string(), columns: columns.join(", ") })
        })
        .collect()
}

/// A finite number from a field (PostgreSQL prints floats exactly with `extra_float_digits = 1`).
fn number(field: &Option<Cow<'_, str>>) -> Option<f64> {
    field.as_deref()?.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The fields of a `COPY` text line: split at raw tabs (a tab inside a value is escaped), `\N` is
/// NULL, and backslash escapes are decoded (`\t \n \r \b \f \v \\`, octal `\ooo`, hex `\xhh`;
/// any other escaped character stands for itself), as PostgreSQL's COPY FROM reads them.
pub fn fields(line: &str) -> Vec<Option<Cow<'_, str>>> {
    line.split('\t').map(|f| if f == "\\N" { None } else { Some(unescape(f)) }).collect()
}

fn unescape(field: &str) -> Cow<'_, str> {
    if !field.contains('\\') {
        return Cow::Borrowed(field);
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        i += 2;
        match c {
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' if bytes.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u8;
                for _ in 0..2 {
                    match bytes.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v);
            }
            other => out.push(other),
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetRef;
    use crate::job_spec::{Metric, ModelKind, SPEC_VERSION, Task};
    use alloy::primitives::{Address, B256};

    #[test]
    fn copy_fields_are_split_and_unescaped_as_postgres_writes_them() {
        let f = fields("1\t\\N\ta\\tb\\\\c\\nd\t\\101\\x41\\q\t2.5e-05\t");
        let f: Vec<Option<&str>> = f.iter().map(|v| v.as_deref()).collect();
        assert_eq!(f, [Some("1"), None, Some("a\tb\\c\nd"), Some("AAq"), Some("2.5e-05"), Some("")]);
        // A NULL is only the whole field `\N`; an escaped backslash then N is text.
        assert_eq!(fields("\\\\N")[0].as_deref(), Some("\\N"));
    }

    fn spec(features: &[&str], label: &str) -> JobSpec {
        let range = DatasetRef {
            table: "public.t".into(),
            owner: Address::ZERO,
            first_key: 1,
            last_key: 2,
            sub_tables: 1,
            root: B256::repeat_byte(1),
        };
        JobSpec {
            version: SPEC_VERSION,
            task: Task::Regression,
            dataset: range.clone(),
            features: features.iter().map(|s| s.to_string()).collect(),
            label: label.into(),
            model: ModelKind::LinearRegression,
            metric: Metric::R2,
            target: 0.5,
            holdout: DatasetRef { first_key: 3, last_key: 4, ..range },
        }
    }

    fn columns() -> Vec<String> {
        ["id", "a", "note", "b", "y"].map(String::from).to_vec()
    }

    fn rows(lines: &[&str]) -> Vec<BatchRow> {
        lines.iter().enumerate().map(|(i, l)| BatchRow { key: i as i64 + 1, line: l.to_string() }).collect()
    }

    #[test]
    fn examples_follow_the_spec_order_not_the_table_order() {
        let b = rows(&["1\t0.5\thello\t-2\t7", "2\t1.5\t\\N\t3e2\t-1.25"]);
        let ex = Examples::from_rows(&spec(&["b", "a"], "y"), &columns(), b.iter().chain(&b)).unwrap();
        assert_eq!(ex.len(), 4);
        assert_eq!(ex.x.row(0).to_vec(), [-2.0, 0.5]);
        assert_eq!(ex.x.row(1).to_vec(), [300.0, 1.5]);
        assert_eq!(ex.y.to_vec(), [7.0, -1.25, 7.0, -1.25]);
    }

    #[test]
    fn rows_that_cannot_be_read_are_named() {
        let s = spec(&["a", "b"], "y");
        let cases = [
            ("1\t0.5\tx\t\\N\t7", "row 1, column \"b\": NULL is not a finite number"),
            ("1\tNaN\tx\t1\t7", "row 1, column \"a\": NaN is not a finite number"),
            ("1\t0.5\tx\t1\tseven", "column \"y\": seven"),
            ("1\t0.5\tx\t1", "row 1: 4 fields, the table has 5 columns"),
        ];
        for (line, expected) in cases {
            let err = Examples::from_rows(&s, &columns(), &rows(&[line])).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
        }
        let err = Examples::from_rows(&spec(&["a", "z"], "y"), &columns(), &rows(&["1\t1\tx\t1\t1"])).unwrap_err();
        assert_eq!(err.to_string(), "the table has no column \"z\" (it has id, a, note, b, y)");
        assert_eq!(Examples::from_rows(&s, &columns(), &rows(&[])), Err(DataError::Empty));
    }
}
