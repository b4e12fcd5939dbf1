//! JSON over HTTP for the commands that talk to a daemon's API (a service's ingest API, a
//! gateway's command API), through the reqwest that alloy already brings (without its `json`
//! feature: the body is serialized here).

use alloy::transports::http::reqwest;
use eyre::{Result, WrapErr, bail};
use serde_json::Value;

/// POSTs `body` as JSON to `url`; a non-2xx answer is an error that quotes the daemon's reply.
pub async fn post_json(client: &reqwest::Client, url: &str, body: &impl serde::Serialize) -> Result<Value> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_string(body)?)
        .send()
        .await
        .wrap_err_with(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let why = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        bail!("{url} answered {status}: {why}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}
