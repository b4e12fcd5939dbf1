//! The diabetes table (Efron et al., "Least Angle Regression", 2004; scikit-learn's
//! `load_diabetes`), shipped inside `linfa-datasets`: 441 patients (of the published 442 —
//! linfa-datasets reads the first line of its file as a header), ten baseline variables
//! (mean-centred and scaled) and a measure of disease progression one year later — the public,
//! real data the job market's tests and demo anchor and train on.

use super::examples::Examples;
use ndarray::{Axis, Slice};

/// Column names, scikit-learn's: the ten features, then the label.
pub const COLUMNS: [&str; 11] = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"];

/// The label column.
pub const LABEL: &str = "target";

/// Every row: the ten features then the label, in the data set's order.
pub fn rows() -> Vec<[f64; 11]> {
    let ds = linfa_datasets::diabetes();
    let (x, y) = (ds.records(), ds.targets());
    (0..x.nrows())
        .map(|i| {
            let mut row = [0.0; 11];
            row[..10].iter_mut().zip(x.row(i)).for_each(|(v, x)| *v = *x);
            row[10] = y[i];
            row
        })
        .collect()
}

/// The feature names, the label and the examples of rows `range` (all ten features).
pub fn examples(range: std::ops::Range<usize>) -> (Vec<String>, String, Examples) {
    let ds = linfa_datasets::diabetes();
    let x = ds.records().slice_axis(Axis(0), Slice::from(range.clone())).to_owned();
    let y = ds.targets().slice_axis(Axis(0), Slice::from(range)).to_owned();
    (COLUMNS[..10].iter().map(|c| c.to_string()).collect(), LABEL.to_string(), Examples { x, y })
}

/// Rows `range` split into `k` non-IID shards for federated tests and the demo: sorted by age
/// (ties in table order) and cut into `k` runs of nearly equal length, so each participant holds
/// patients of its own age band, as the devices of one site would.
pub fn shards_by_age(range: std::ops::Range<usize>, k: usize) -> Vec<Examples> {
    let (_, _, all) = examples(range);
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all.x[[a, 0]].total_cmp(&all.x[[b, 0]]).then(a.cmp(&b)));
    let k = k.clamp(1, order.len().max(1));
    (0..k)
        .map(|s| {
            let part = &order[s * order.len() / k..(s + 1) * order.len() / k];
            Examples { x: all.x.select(Axis(0), part), y: all.y.select(Axis(0), part) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning::LinearModel;

    #[test]
    fn the_table_is_the_published_one_and_a_linear_model_learns_from_it() {
        let rows = rows();
        assert_eq!(rows.len(), 441);
        // The second patient of the published table (linfa-datasets skips the first): age
        // −0.00188, progression 75; the last: progression 57.
        assert_eq!((rows[0][0], rows[0][10]), (-1.882_016_527_791_04e-3, 75.0));
        assert_eq!(rows[440][10], 57.0);
        // Trained on 360, scored on the other 81: the usual R² of OLS on this table is ~0.4–0.5.
        let (features, label, train) = examples(0..360);
        let (_, _, held_out) = examples(360..441);
        let r2 = LinearModel::train(&features, &label, &train).unwrap().r2(&held_out).unwrap();
        assert!((0.3..0.7).contains(&r2), "R² {r2}");
        // Sex alone explains next to nothing.
        let sex = Examples { x: train.x.slice_axis(Axis(1), Slice::from(1..2)).to_owned(), y: train.y.clone() };
        let held_sex =
            Examples { x: held_out.x.slice_axis(Axis(1), Slice::from(1..2)).to_owned(), y: held_out.y.clone() };
        let r2 = LinearModel::train(&["sex".into()], &label, &sex).unwrap().r2(&held_sex).unwrap();
        assert!(r2 < 0.1, "R² {r2}");
    }
}
