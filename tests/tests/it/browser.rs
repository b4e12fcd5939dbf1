//! The explorer in a real browser: Debian's headless Chromium driven over WebDriver (chromedriver)
//! from Rust (fantoccini). It loads the demo-like data of a real service daemon and chain, searches
//! a name, opens a receipt, sees it verified, sees it marked once the row is edited in the
//! database, watches a new anchor appear on the front page without a reload (the page's one
//! script), and runs the audit from the table page. With `IOTEGRITY_SCREENSHOTS=DIR` it also
//! saves the main pages as PNG files there (docs/explorer.md's pictures).

use fantoccini::{Client, ClientBuilder, Locator};
use iotegrity_e2e::ServiceWorld;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// chromedriver on a free port, killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver and opens a headless Chromium session through it.
async fn browser(dir: &std::path::Path) -> (Driver, Client) {
    let port = iotegrity_e2e::pg::free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (make deps installs chromium-driver)");
    let driver = Driver(child, port);
    let mut caps = serde_json::Map::new();
    let profile = dir.join("chromium-profile");
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--window-size=1280,900", format!("--user-data-dir={}", profile.display())]
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no WebDriver session: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    (driver, client)
}

/// Saves a screenshot of the current page as `name.png` in `IOTEGRITY_SCREENSHOTS`, if set.
async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("IOTEGRITY_SCREENSHOTS") {
        let png = c.screenshot().await.expect("a screenshot");
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

async fn search(c: &Client, q: &str) {
    let input = c.find(Locator::Css("#q")).await.expect("the search box");
    input.send_keys(q).await.unwrap();
    c.find(Locator::Css("header button")).await.unwrap().click().await.unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Waits until the element `css` says `needle`: after a click, the page before may still be
/// the one shown (its own `h1`, say) until the navigation lands.
async fn wait_text(c: &Client, css: &str, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if now.contains(needle) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{css} never said {needle:?}; it says {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_searches_opens_a_receipt_and_sees_a_tampered_row_marked() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    let w = &s.w;
    let _service = s.start_service();
    s.insert(30);
    s.wait_for_rows(30, 90);
    w.run_as(&s.svc, &["name", "register", "svc.iot", "--ip", "127.0.0.1"]).json();
    let (cert, key) = (w.path("svc.pem"), w.path("svc.key"));
    w.cli(&["cert", "issue", "svc.iot", "--cert-out", &cert, "--key-out", &key]).json();
    w.run_as(&s.svc, &["cert", "add", "svc.iot", "--cert", &cert, "--key", &key]).json();
    let db = s.pg.url("postgres");
    let x = w.spawn_explorer(0, "", &format!("[database]\nurl = \"{db}\"\n[[tables]]\nname = \"public.readings\"\n"));
    x.wait_synced(w).await;
    let (_driver, c) = browser(w.dir.path()).await;

    // The front page; a new anchor appears on it while it is open (server-sent events).
    c.goto(&x.url).await.unwrap();
    assert!(text(&c, "h1").await.contains("Deployment on chain 31337"));
    let rows_before = c.find_all(Locator::Css("#anchors tbody tr")).await.unwrap().len();
    assert!(rows_before >= 3, "{rows_before} anchors shown");
    screenshot(&c, "home").await;
    s.insert(10);
    c.wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#anchors tr.live"))
        .await
        .expect("a live anchor row");
    assert_eq!(c.find_all(Locator::Css("#anchors tbody tr")).await.unwrap().len(), rows_before + 1);

    // Search a name: its page, its pin verified now.
    search(&c, "svc.iot").await;
    wait_text(&c, "h1", "Name svc.iot").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/name/svc.iot"));
    let pin = c.find(Locator::Css("#pins .mark")).await.unwrap();
    assert_eq!(pin.attr("data-verified").await.unwrap().as_deref(), Some("true"));
    screenshot(&c, "name").await;

    // Open a receipt: every step holds.
    search(&c, "public.readings:7").await;
    let verdict =
        c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#receipt-verdict .mark")).await.unwrap();
    assert_eq!(
        verdict.attr("data-verified").await.unwrap().as_deref(),
        Some("true"),
        "{}",
        verdict.text().await.unwrap()
    );
    screenshot(&c, "receipt").await;

    // The row is edited in the database: on reload the receipt is NOT verified, at the row step.
    s.pg.psql("postgres", "UPDATE readings SET value = value + 1 WHERE id = 7");
    c.refresh().await.unwrap();
    let verdict =
        c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#receipt-verdict .mark")).await.unwrap();
    assert_eq!(verdict.attr("data-verified").await.unwrap().as_deref(), Some("false"));
    let row = c.find(Locator::Css("tr[data-step='row']")).await.unwrap();
    let row_text = row.text().await.unwrap();
    assert!(row_text.contains("fails") && row_text.contains("altered after it was anchored"), "{row_text}");
    let leaf = c.find(Locator::Css("tr[data-step='leaf'] .mark")).await.unwrap();
    assert_eq!(leaf.attr("data-verified").await.unwrap().as_deref(), Some("true"), "the receipt itself is intact");
    screenshot(&c, "receipt-tampered").await;

    // The table page: run the audit; it names the row, with a link to its receipt.
    c.goto(&format!("{}/table/public.readings", x.url)).await.unwrap();
    c.find(Locator::Css("form[action$='/audit'] button")).await.unwrap().click().await.unwrap();
    let verdict = text(&c, "#audit-verdict").await;
    assert!(verdict.contains("NOT clean"), "{verdict}");
    let link = c
        .find(Locator::Css("#findings a[href='/receipt/public.readings/7']"))
        .await
        .expect("the altered row's receipt linked");
    screenshot(&c, "table").await;
    link.click().await.unwrap();
    wait_text(&c, "h1", "Row 7").await;

    // An identity, reached from the anchors' "by" column.
    c.goto(&format!("{}/identity/{}", x.url, s.svc.offline)).await.unwrap();
    wait_text(&c, "h1", "Identity").await;
    screenshot(&c, "identity").await;
    c.close().await.unwrap();
}
