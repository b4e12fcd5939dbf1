//! The explorer's pages as HTML (maud: checked and escaped at compile time): one layout with the
//! search box, and one function per view of `view.rs`. Every value that names something links to
//! its page; every check shows a verified / NOT verified mark with its reason. No script but the
//! few lines that append new anchors as the chain records them (server-sent events).

use super::index::Entry;
use super::state::AuditState;
use super::view::{History, Home, IdentityView, JobView, NameView, ReceiptView, TableView, TrainingView};
use alloy::primitives::utils::format_ether;
use alloy::primitives::{Address, U256};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = r#"
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1c2430;background:#f6f7f9}
header{background:#14213d;color:#fff;padding:10px 24px;display:flex;gap:20px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{flex:1;display:flex;gap:8px}
header input{flex:1;padding:7px 10px;border-radius:6px;border:0;font:inherit}
header button{padding:7px 14px;border-radius:6px;border:0;background:#fca311;font:inherit;cursor:pointer}
header .chain{font-size:13px;opacity:.8}
main{max-width:1180px;margin:0 auto;padding:18px 24px}
h1{font-size:22px;margin:8px 0 14px;word-break:break-all}
h2{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:8px;overflow:hidden;box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e8eaee;vertical-align:top}
th{background:#eef1f5;font-weight:600;font-size:13px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;padding:12px 16px;border-radius:8px;box-shadow:0 1px 2px #0001}
dt{color:#5b6573}dd{margin:0;word-break:break-all}
code,.mono{font-family:ui-monospace,monospace;font-size:13px;word-break:break-all}
.ok{color:#137333;font-weight:600}.bad{color:#b3261e;font-weight:600}.muted{color:#6b7380}
.mark{display:inline-block;padding:2px 8px;border-radius:10px;font-size:13px}
.mark.ok{background:#e6f4ea}.mark.bad{background:#fce8e6}
.field{display:inline-block;margin-right:12px}
progress{width:320px}
"#;

/// The layout around every page.
pub fn page(title: &str, synced_to: u64, chain_id: u64, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — iotegrity explorer" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { "iotegrity explorer" }
                    form action="/search" method="get" {
                        input #q type="search" name="q" placeholder="name, address, transaction, root, schema.table:row, job or training" aria-label="search";
                        button type="submit" { "Search" }
                    }
                    span.chain { "chain " (chain_id) " · block " (synced_to) }
                }
                main { (body) }
            }
        }
    }
}

/// A verified / not verified mark.
fn mark(ok: bool, yes: &str, no: &str) -> Markup {
    html! {
        @if ok { span.mark.ok data-verified="true" { "✓ " (yes) } } @else { span.mark.bad data-verified="false" { "✗ " (no) } }
    }
}

fn address(a: Address) -> Markup {
    html! { a.mono href={ "/identity/" (a) } { (a) } }
}

fn time(unix: u64) -> String {
    let days = unix / 86_400;
    let (h, m, s) = (unix % 86_400 / 3600, unix % 3600 / 60, unix % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02} UTC")
}

fn ether(wei: &str) -> String {
    let v = wei.parse::<U256>().map(format_ether).unwrap_or_else(|_| wei.to_string());
    let v = v.trim_end_matches('0');
    format!("{} ETH", v.strip_suffix('.').unwrap_or(v))
}

/// One field of an event, linked to the page of what it names.
fn field(e: &Entry, f: &iotegrity_core::events::Field) -> Markup {
    let value = html! {
        @if let Some(a) = f.address() { (address(a)) }
        @else if f.ty == "bytes32" { a.mono href={ "/search?q=" (f.value) } { (f.value) } }
        @else if e.event.contract == "JobMarket" && f.name == "jobId" { a href={ "/job/" (f.value) } { (f.value) } }
        @else if e.event.contract == "FederatedLearning" && f.name == "id" { a href={ "/training/" (f.value) } { (f.value) } }
        @else { span.mono { (f.value) } }
    };
    html! { span.field { span.muted { (f.name) "=" } (value) } }
}

/// A list of entries, newest first.
fn entries(h: &History, empty: &str) -> Markup {
    html! {
        @if h.entries.is_empty() { p.muted { (empty) } } @else {
            @if h.total > h.entries.len() { p.muted { "the newest " (h.entries.len()) " of " (h.total) } }
            (entry_table(&h.entries))
        }
    }
}

fn entry_table(list: &[Entry]) -> Markup {
    html! {
        table.events {
            thead { tr { th { "time" } th { "block" } th { "event" } th { "fields" } } }
            tbody {
                @for e in list {
                    tr {
                        td { (time(e.time)) }
                        td { a href={ "/tx/" (e.tx) } title={ "transaction " (e.tx) } { (e.block) } }
                        td { (e.event.contract) "." strong { (e.event.event) } }
                        td { @for f in &e.event.fields { (field(e, f)) } }
                    }
                }
            }
        }
    }
}

/// The front page.
pub fn home(h: &Home) -> Markup {
    html! {
        h1 { "Deployment on chain " (h.chain_id) }
        dl {
            dt { "indexed" } dd { (h.events) " events up to block " (h.synced_to) }
            dt { "identities" } dd { (h.counts.identities) }
            dt { "names" } dd { (h.counts.names) }
            dt { "anchored batches" } dd { (h.counts.anchors) }
            dt { "jobs" } dd { (h.counts.jobs) }
            dt { "trainings" } dd { (h.counts.trainings) }
            @for (name, a) in &h.contracts { dt { (name) } dd.mono { (a) } }
        }
        h2 { "Latest anchors" span.muted { " (new ones appear as the chain records them)" } }
        table #anchors {
            thead { tr { th { "time" } th { "block" } th { "table id" } th { "by" } th { "keys" } th { "anchored root" } } }
            tbody {
                @for e in &h.anchors.entries { (anchor_row(e)) }
            }
        }
        script { (PreEscaped(LIVE_ANCHORS)) }
        h2 { "Latest events" }
        (entries(&h.recent, "nothing yet"))
    }
}

/// One anchor as a row of the anchors table (the live script builds the same cells).
fn anchor_row(e: &Entry) -> Markup {
    let f = |n: &str| e.event.field(n).map(|f| f.value.clone()).unwrap_or_default();
    html! {
        tr {
            td { (time(e.time)) }
            td { a href={ "/tx/" (e.tx) } { (e.block) } }
            td { a.mono href={ "/table/" (f("tableId")) } { (f("tableId")) } }
            td { a.mono href={ "/identity/" (f("owner")) } { (f("owner")) } }
            td { (f("firstKey")) "‥" (f("lastKey")) }
            td.mono { (f("anchoredRoot")) }
        }
    }
}

/// Appends each new anchor (server-sent event `anchor`) to the top of `#anchors`.
const LIVE_ANCHORS: &str = r#"
(function(){var t=document.querySelector('#anchors tbody');if(!t||!window.EventSource)return;
var only=document.body.getAttribute('data-table');
new EventSource('/events').addEventListener('anchor',function(m){var e=JSON.parse(m.data),v={};
e.fields.forEach(function(f){v[f.name]=f.value});if(only&&v.tableId!==only)return;
var r=document.createElement('tr');r.className='live';
[[new Date(e.time*1000).toISOString().replace('T',' ').slice(0,19)+' UTC','/tx/'+e.tx,e.block],[v.tableId,'/table/'+v.tableId],
[v.owner,'/identity/'+v.owner],[v.firstKey+'‥'+v.lastKey],[v.anchoredRoot]].forEach(function(c,i){var d=document.createElement('td');
if(i===0){d.textContent=c[0];r.appendChild(d);d=document.createElement('td');var a=document.createElement('a');a.href=c[1];a.textContent=c[2];d.appendChild(a)}
else if(c[1]){var a=document.createElement('a');a.href=c[1];a.className='mono';a.textContent=c[0];d.appendChild(a)}else{d.textContent=c[0]}
r.appendChild(d)});t.insertBefore(r,t.firstChild)})})();
"#;

/// An identity.
pub fn identity(v: &IdentityView) -> Markup {
    html! {
        h1 { "Identity " span.mono { (v.offline) } }
        @if v.queried_is_old_key { p { (mark(false, "", "")) " " (v.queried) " is a former online key of this identity: it signs nothing valid now" } }
        dl {
            dt { "offline address" } dd.mono { (v.offline) }
            dt { "online key now" } dd.mono { (v.online) }
            dt { "role" } dd { (v.role) @if v.acting_role != v.role { " (acting as " (v.acting_role) ")" } }
            dt { "status" } dd { (v.status) " " (mark(v.active, "active", "not active")) }
            dt { "trust" } dd { (ether(&v.trust_wei)) " staked on its key" }
            dt { "reputation" } dd { (format!("{:.2}", v.score)) " from " (v.votes) " vote(s)" }
            dt { "names" } dd { @for n in &v.names { a href={ "/name/" (n) } { (n) } " " } @if v.names.is_empty() { span.muted { "none" } } }
            dt { "keys" } dd { @for k in &v.keys { span.mono { (k) } br; } }
        }
        h2 { "Key history" } (entries(&v.key_history, "none"))
        h2 { "Vouches and stakes" } (entries(&v.vouches, "none"))
        h2 { "Votes on it" } (entries(&v.reputation, "no votes"))
        h2 { "Activity" } (entries(&v.activity, "nothing else"))
    }
}

/// A name.
pub fn name(v: &NameView) -> Markup {
    let holds = v.certificates.iter().any(|c| c.verifies_now);
    html! {
        h1 { "Name " (v.name) }
        dl {
            dt { "owner" } dd { (address(v.owner)) }
            dt { "address" } dd { @if let Some(ip) = &v.ip { (ip) } @else { (mark(false, "", "does not resolve (owner closed)")) } }
            dt { "backup" } dd { @if v.backup.is_zero() { span.muted { "none" } } @else { (address(v.backup)) } }
            dt { "registered" } dd { (time(v.registered_at)) }
            dt { "reputation" } dd { (format!("{:.2}", v.score)) " from " (v.votes) " vote(s)" }
            dt { "certificate now" } dd { (mark(holds, "a pinned key verifies now", "no pinned key verifies now")) }
        }
        h2 { "Certificate pins" }
        @if v.certificates.is_empty() { p.muted { "none pinned" } } @else {
            table #pins {
                thead { tr { th { "key hash" } th { "window" } th { "pinned" } th { "revoked" } th { "verifyCertificate now" } } }
                tbody {
                    @for c in &v.certificates {
                        tr {
                            td.mono { (c.key_hash) }
                            td { (time(c.not_before)) br; "to " (time(c.not_after)) }
                            td { a href={ "/tx/" (c.added.tx) } { "block " (c.added.block) } br; "by " (address(c.issuer)) }
                            td { @if let Some(r) = &c.revoked { a href={ "/tx/" (r.tx) } { "block " (r.block) } } @else { span.muted { "—" } } }
                            td { (mark(c.verifies_now, "holds", "does not hold")) }
                        }
                    }
                }
            }
        }
        h2 { "History" } (entries(&v.history, "none"))
        h2 { "Votes on it" } (entries(&v.reputation, "no votes"))
    }
}

/// A table.
pub fn table(v: &TableView) -> Markup {
    let title = v.name.clone().unwrap_or_else(|| v.table_id.to_string());
    html! {
        h1 { "Table " (title) }
        dl {
            dt { "table id" } dd.mono { (v.table_id) }
            dt { "trusted anchorer" } dd { @if let Some(t) = v.trusted { (address(t)) " — " } (v.trust) }
            @for a in &v.anchorers {
                dt { "anchored by" } dd { (address(a.owner)) " " (a.batches) " batch(es), " (a.rows) " rows"
                    @if Some(a.owner) != v.trusted { " " (mark(false, "", "not trusted")) } }
            }
            @if let Some((root, found)) = v.root { dt { "root asked for" } dd { span.mono { (root) } " " (mark(found, "anchored for this table", "not anchored for this table")) } }
            @if let Some(s) = &v.store {
                dt { "receipts store" } dd { (s.receipts) " receipts covering " (s.rows) " rows; watermark " @if let Some(w) = s.watermark { (w) } @else { "none" }
                    span.muted { " (the database's claim: the audit holds it against the chain)" } }
            }
        }
        @if v.store.is_some() {
            h2 { "Audit" }
            (audit(v))
        }
        h2 { "Anchors" }
        @if v.anchors.total > v.anchors.entries.len() { p.muted { "the newest " (v.anchors.entries.len()) " of " (v.anchors.total) } }
        table #anchors {
            thead { tr { th { "time" } th { "block" } th { "table id" } th { "by" } th { "keys" } th { "anchored root" } } }
            tbody { @for e in &v.anchors.entries { (anchor_row(e)) } }
        }
        script { (PreEscaped(format!("document.body.setAttribute('data-table','{}');", v.table_id))) (PreEscaped(LIVE_ANCHORS)) }
    }
}

fn audit(v: &TableView) -> Markup {
    let name = v.name.clone().unwrap_or_default();
    let start =
        html! { form method="post" action={ "/table/" (name) "/audit" } { button type="submit" { "Run the audit" } } };
    html! {
        @match &v.audit {
            None => { p.muted { "not run yet: every row against its receipt and the chain's anchors" } (start) }
            Some(AuditState::Running { rows_read, rows_total }) => {
                p #audit-running { "auditing: " (rows_read) " of " (rows_total) " rows read " progress value=(rows_read) max=(rows_total.max(&1)) {} }
                meta http-equiv="refresh" content="1";
            }
            Some(AuditState::Failed { error }) => { p.bad { "the audit could not run: " (error) } (start) }
            Some(AuditState::Done { report, at }) => {
                p #audit-verdict { (mark(report.is_clean(), "clean: every anchored row matches the chain", "NOT clean")) " "
                    (report.rows) " rows, " (report.anchored_rows) " anchored, " (report.failures()) " failure(s), "
                    (report.warnings()) " warning(s); " (report.anchorer) "; finished " (time(*at)) }
                @if !report.findings.is_empty() {
                    table #findings {
                        thead { tr { th { "finding" } th { "what" } th { "" } } }
                        tbody {
                            @for f in &report.findings {
                                tr {
                                    td { (mark(!f.is_integrity_failure(), "warning", "failure")) }
                                    td { (f.to_string()) }
                                    td { @if let Some(k) = f.row() { a href={ "/receipt/" (name) "/" (k) } { "receipt of row " (k) } } }
                                }
                            }
                        }
                    }
                }
                (start)
            }
        }
    }
}

/// A receipt, step by step.
pub fn receipt(v: &ReceiptView) -> Markup {
    let json = serde_json::to_string_pretty(&v.receipt).unwrap_or_default();
    html! {
        h1 { "Row " (v.key) " of " a href={ "/table/" (v.table) } { (v.table) } }
        p #receipt-verdict { (mark(v.valid, "verified: the row is as it was anchored, and the chain backs its receipt", "NOT verified")) }
        table #steps {
            thead { tr { th { "step" } th { "" } th { "what was compared" } } }
            tbody {
                @for s in &v.steps {
                    tr data-step=(s.what) { td { strong { (s.what) } } td { (mark(s.ok, "holds", "fails")) } td.mono { (s.detail) } }
                }
            }
        }
        @if let Ok(b) = &v.chain.anchored {
            p { "Anchored by " (address(b.owner)) " in block " (b.block) ", transaction " a.mono href={ "/tx/" (b.tx) } { (b.tx) } }
        }
        h2 { "The receipt" }
        p { a href={ "/api/receipt/" (v.table) "/" (v.key) "?download" } download={ (v.table) "-" (v.key) ".receipt.json" } { "download receipt JSON" }
            span.muted { " (check it offline: iotegrity receipt verify FILE)" } }
        pre.mono { (json) }
    }
}

/// A job of the market.
pub fn job(v: &JobView) -> Markup {
    html! {
        h1 { "Job " (v.id) }
        dl {
            dt { "status now" } dd { strong { (v.status) } }
            dt { "service" } dd { (address(v.service)) }
            dt { "worker" } dd { @if v.worker.is_zero() { span.muted { "none yet" } } @else { (address(v.worker)) } }
            dt { "reward" } dd { (ether(&v.reward_wei)) " escrowed" }
            dt { "dataset root h_S" } dd.mono { (v.root) }
            dt { "spec hash" } dd.mono { (v.param_hash) }
            dt { "result hash h_W" } dd.mono { @if v.result_hash.is_zero() { "not reported" } @else { (v.result_hash) } }
        }
        h2 { "Timeline" }
        (entry_table(&v.timeline))
    }
}

/// A federated training.
pub fn training(v: &TrainingView) -> Markup {
    html! {
        h1 { "Training " (v.id) }
        dl {
            dt { "state" } dd { strong { (v.state) } ", "
                @if v.round == 0 { "registration open" }
                @else if v.round > v.target_round { "after its " (v.target_round) " rounds" }
                @else { "round " (v.round) " of " (v.target_round) } }
            dt { "service" } dd { (address(v.service)) }
            dt { "reward" } dd { (ether(&v.reward_wei)) " escrowed" }
            dt { "initial model" } dd.mono { (v.initial_model) }
            dt { "participants" } dd { @for p in &v.participants { (address(*p)) br; } }
        }
        h2 { "Models" }
        table #models {
            thead { tr { th { "round" } th { "participant" } th { "model (IPFS)" } th { "score" } th { "" } } }
            tbody {
                @for m in &v.models {
                    tr { td { (m.round) } td { (address(m.participant)) } td.mono { (m.cid) } td { (m.score) }
                        td { (mark(!m.excluded, "aggregated", "left out by every participant")) } }
                }
            }
        }
        h2 { "Timeline" }
        (entry_table(&v.timeline))
    }
}

/// A transaction's events.
pub fn transaction(hash: &str, list: &[Entry]) -> Markup {
    html! { h1 { "Transaction " span.mono { (hash) } } (entry_table(list)) }
}

/// A page for what could not be shown.
pub fn error(status: u16, message: &str) -> Markup {
    let what = match status {
        400 => "Not understood",
        404 => "Not found",
        _ => "Not available now",
    };
    html! { h1 { (what) } p #error data-status=(status) { (message) } p { a href="/" { "back to the deployment" } } }
}
