//! `iotegrity dataset`: the data a job is offered on — load the public diabetes table into
//! Postgres, write a job spec over anchored key ranges of a table, and verify a spec's dataset
//! batch by batch against h_S and the chain, exactly as a worker does before it trains.

use crate::Report;
use crate::opts::{ChainOpts, Conn, TableOpts};
use alloy::primitives::Address;
use clap::{Args, Subcommand, ValueEnum};
use eyre::{Context, Result, bail, eyre};
use iotegrity_core::audit::run::resolve_owner;
use iotegrity_core::dataset::{DatasetBatch, DatasetRef};
use iotegrity_core::job_spec::{JobSpec, Metric, ModelKind, SPEC_VERSION, Task};
use iotegrity_core::learning::diabetes;
use iotegrity_core::store::dataset as store;
use serde_json::json;
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// Dataset commands.
#[derive(Debug, Subcommand)]
pub enum DatasetCmd {
    /// Create a table holding the diabetes data set (441 rows, public, real) for the service to anchor.
    Load(LoadArgs),
    /// Write a job spec over anchored key ranges of a table (training rows and held-out rows).
    Spec(SpecArgs),
    /// Verify a spec's dataset (or holdout) batch by batch against its root and the chain.
    Verify(VerifyArgs),
    /// (Service) write a spec's batches, as the store holds them, one JSON file each (docs/market.md).
    Batches(BatchesArgs),
}

/// `dataset batches`.
#[derive(Debug, Args)]
pub struct BatchesArgs {
    /// The job spec.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Which of its ranges.
    #[arg(long, value_enum, default_value = "dataset")]
    pub part: Part,
    /// Postgres URL of the database holding the table and its receipts.
    #[arg(long, env = "IOTEGRITY_DATABASE_URL", value_name = "URL")]
    pub db: String,
    /// The table's key column.
    #[arg(long, default_value = "id")]
    pub key: String,
    /// Directory to write `batch-00000.json`, … into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `dataset load`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  iotegrity dataset load --db postgres://localhost/iot --table public.diabetes\n\
    Columns: id (1..441), age, sex, bmi, bp, s1..s6 (double precision, mean-centred and scaled), target.")]
pub struct LoadArgs {
    /// Postgres URL.
    #[arg(long, env = "IOTEGRITY_DATABASE_URL", value_name = "URL")]
    pub db: String,
    /// The table to create, `schema.table`; it must not exist.
    #[arg(long, default_value = "public.diabetes")]
    pub table: String,
}

/// `dataset spec`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity dataset spec --db $DB --table public.diabetes --owner 0x<service offline> \\\n    \
    --train 1..=360 --holdout 361..=441 --target 0.3 --out spec.json\n\
    Ranges are narrowed to the anchored sub-tables that lie wholly inside them."
)]
pub struct SpecArgs {
    /// The table and the database of its receipts.
    #[command(flatten)]
    pub table: TableOpts,
    /// The identity that anchors the table (its offline address, or any of its online keys).
    #[arg(long)]
    pub owner: Address,
    /// Training keys, FIRST..=LAST.
    #[arg(long, value_parser = parse_range)]
    pub train: RangeInclusive<i64>,
    /// Held-out keys (the service's, never sent to the worker), FIRST..=LAST, disjoint from --train.
    #[arg(long, value_parser = parse_range)]
    pub holdout: RangeInclusive<i64>,
    /// Feature columns [default: every column but the key and the label].
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// Label column.
    #[arg(long, default_value = "target")]
    pub label: String,
    /// The model passes at R² ≥ this on the held-out rows.
    #[arg(long, allow_hyphen_values = true)]
    pub target: f64,
    /// Where to write the spec.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Chain and deployment (to name the owner's identity).
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// Which part of a spec.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Part {
    /// The training rows.
    Dataset,
    /// The held-out rows.
    Holdout,
}

/// `dataset verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The job spec.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Which of its ranges.
    #[arg(long, value_enum, default_value = "dataset")]
    pub part: Part,
    /// Postgres URL of the database holding the table and its receipts.
    #[arg(long, env = "IOTEGRITY_DATABASE_URL", value_name = "URL")]
    pub db: String,
    /// The table's key column.
    #[arg(long, default_value = "id")]
    pub key: String,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl Part {
    fn of(self, spec: &JobSpec) -> &DatasetRef {
        match self {
            Self::Dataset => &spec.dataset,
            Self::Holdout => &spec.holdout,
        }
    }
}

/// Reads and validates a spec file.
pub fn read_spec(path: &std::path::Path) -> Result<JobSpec> {
    let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    JobSpec::parse(&bytes).wrap_err_with(|| format!("{}", path.display()))
}

/// The file name of batch `index` in a batch directory.
pub fn batch_file_name(index: u32) -> String {
    format!("batch-{index:05}.json")
}

fn parse_range(s: &str) -> Result<RangeInclusive<i64>, String> {
    let (a, b) = s.split_once("..=").ok_or_else(|| format!("{s:?}: give FIRST..=LAST"))?;
    let (a, b): (i64, i64) = (
        a.trim().parse().map_err(|_| format!("{a:?} is not a key"))?,
        b.trim().parse().map_err(|_| format!("{b:?} is not a key"))?,
    );
    if a > b {
        return Err(format!("{s:?} is empty"));
    }
    Ok(a..=b)
}

impl DatasetCmd {
    /// Runs the dataset subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Load(a) => load(a).await,
            Self::Spec(a) => spec(a).await,
            Self::Batches(a) => {
                let spec = read_spec(&a.spec)?;
                let part = a.part.of(&spec);
                let opts = TableOpts { db: a.db, table: part.table.clone(), key: a.key };
                let (table, pool) = opts.open().await?;
                let dataset = store::select(&pool, &table, part.first_key, part.last_key).await?;
                if dataset.root() != part.root {
                    bail!(
                        "the store's receipts for keys {}..={} give root {}, the spec says {}: receipts were changed or lost",
                        part.first_key,
                        part.last_key,
                        dataset.root(),
                        part.root
                    );
                }
                let batches = store::batches(&pool, &table, &dataset).await?;
                std::fs::create_dir_all(&a.out).wrap_err_with(|| format!("cannot create {}", a.out.display()))?;
                for b in &batches {
                    let path = a.out.join(batch_file_name(b.index));
                    std::fs::write(&path, serde_json::to_vec(b)?)
                        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
                }
                Ok(Report::new(
                    format!("{} batches of {} written to {}", batches.len(), part.table, a.out.display()),
                    json!({ "batches": batches.len(), "dir": a.out }),
                ))
            }
            Self::Verify(a) => {
                let spec = read_spec(&a.spec)?;
                let part = a.part.of(&spec);
                let conn = a.chain.connect().await?;
                let opts = TableOpts { db: a.db, table: part.table.clone(), key: a.key };
                let batches = verified_batches(&conn, &opts, part).await?;
                let rows: usize = batches.iter().map(|b| b.rows.len()).sum();
                Ok(Report::new(
                    format!(
                        "{} keys {}..={}: {} batches, {rows} rows, all under root {} and anchored by {}",
                        part.table,
                        part.first_key,
                        part.last_key,
                        batches.len(),
                        part.root,
                        part.owner
                    ),
                    json!({ "table": part.table, "batches": batches.len(), "rows": rows, "root": part.root, "verified": true }),
                ))
            }
        }
    }
}

/// The batches of `part` from the store, each checked with the worker's verifier against the
/// chain: an error names the first batch that fails.
pub async fn verified_batches(conn: &Conn, opts: &TableOpts, part: &DatasetRef) -> Result<Vec<DatasetBatch>> {
    let (table, pool) = opts.open().await?;
    Ok(store::verified_batches(&pool, &table, &conn.provider, &conn.book, part).await?)
}

async fn load(a: LoadArgs) -> Result<Report> {
    let table = iotegrity_core::store::TableRef::new(&a.table, "id").map_err(|e| eyre!(e))?;
    let pool = iotegrity_core::store::connect(&a.db, 1).await.wrap_err("cannot connect to Postgres")?;
    let name = table.name();
    let (schema, bare) = name.split_once('.').expect("qualified");
    let columns: Vec<String> = diabetes::COLUMNS.iter().map(|c| format!("\"{c}\" double precision NOT NULL")).collect();
    let create = format!("CREATE TABLE \"{schema}\".\"{bare}\" (id bigint PRIMARY KEY, {})", columns.join(", "));
    let mut tx = pool.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut *tx)
        .await
        .wrap_err_with(|| format!("cannot create {name}"))?;
    let rows = diabetes::rows();
    let ids: Vec<i64> = (1..=rows.len() as i64).collect();
    let mut insert = format!("INSERT INTO \"{schema}\".\"{bare}\" SELECT * FROM unnest($1::bigint[]");
    for i in 0..diabetes::COLUMNS.len() {
        insert.push_str(&format!(", ${}::float8[]", i + 2));
    }
    insert.push(')');
    let mut q = sqlx::query(sqlx::AssertSqlSafe(insert)).bind(&ids);
    for c in 0..diabetes::COLUMNS.len() {
        q = q.bind(rows.iter().map(|r| r[c]).collect::<Vec<f64>>());
    }
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Report::new(
        format!("{name}: {} rows of the diabetes data set (ids 1..={})", rows.len(), rows.len()),
        json!({ "table": name, "rows": rows.len(), "columns": diabetes::COLUMNS }),
    ))
}

async fn spec(a: SpecArgs) -> Result<Report> {
    if a.train.start() <= a.holdout.end() && a.holdout.start() <= a.train.end() {
        bail!("--train and --holdout overlap");
    }
    let conn = a.chain.connect().await?;
    let owner = resolve_owner(&conn.provider, &conn.book, a.owner).await?;
    let (table, pool) = a.table.open().await?;
    let features = if a.features.is_empty() {
        table.columns(&pool).await?.into_iter().filter(|c| *c != a.table.key && *c != a.label).collect()
    } else {
        a.features
    };
    let train = store::select(&pool, &table, *a.train.start(), *a.train.end()).await?;
    let holdout = store::select(&pool, &table, *a.holdout.start(), *a.holdout.end()).await?;
    let spec = JobSpec {
        version: SPEC_VERSION,
        task: Task::Regression,
        dataset: train.reference(owner),
        features,
        label: a.label,
        model: ModelKind::LinearRegression,
        metric: Metric::R2,
        target: a.target,
        holdout: holdout.reference(owner),
    };
    spec.validate()?;
    let file = spec.to_file();
    std::fs::write(&a.out, &file).wrap_err_with(|| format!("cannot write {}", a.out.display()))?;
    let (d, h) = (&spec.dataset, &spec.holdout);
    Ok(Report::new(
        format!(
            "spec {} (paramHash {}): train on keys {}..={} ({} sub-tables, root {}), hold out {}..={} ({} sub-tables)",
            a.out.display(),
            iotegrity_core::job_spec::param_hash_of(&file),
            d.first_key,
            d.last_key,
            d.sub_tables,
            d.root,
            h.first_key,
            h.last_key,
            h.sub_tables
        ),
        json!({ "file": a.out, "paramHash": iotegrity_core::job_spec::param_hash_of(&file), "root": d.root, "spec": spec }),
    ))
}
