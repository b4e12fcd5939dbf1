//! The gateway↔service protocol, every body of it (docs/ingest.md, docs/gateway.md): what a
//! gateway POSTs to a service's ingest API and what it answers, the batch's per-item results and
//! limits, and the signed command a service POSTs to a gateway — and the one client that POSTs
//! them ([`send`]). The ingest API, the gateway's delivery and command API, `iotegrity simulate`
//! and `command`, and the tests all speak these types.

use crate::signatures::{
    Aggregate, Command, CommandExchange, KeyDirectory, Reading, SignedReading, VerifyError, verify_command,
};
use alloy::primitives::{Address, Bytes};
use alloy::sol_types::Eip712Domain;
use alloy::transports::http::reqwest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The ingest API's routes.
pub mod path {
    /// One reading.
    pub const READINGS: &str = "/v1/readings";
    /// A JSON array of readings (store-and-forward backlog).
    pub const BATCH: &str = "/v1/readings/batch";
    /// One aggregate.
    pub const AGGREGATES: &str = "/v1/aggregates";
    /// The relayed answer to a service's command.
    pub const FEEDBACK: &str = "/v1/feedback";
    /// A worker's signed request for one batch of its job's dataset (docs/market.md).
    pub const JOB_BATCHES: &str = "/v1/jobs/batches";
    /// A job's kept spec, by paramHash (`/v1/jobs/specs/0x…`).
    pub const JOB_SPECS: &str = "/v1/jobs/specs/{param_hash}";
    /// A worker's signed proposal for a job.
    pub const JOB_PROPOSALS: &str = "/v1/jobs/proposals";
    /// A worker's delivered model with its signed result.
    pub const JOB_RESULTS: &str = "/v1/jobs/results";
    /// The gateway's command API: a service's signed command.
    pub const COMMANDS: &str = "/v1/commands";
}

/// Most readings in one `POST /v1/readings/batch`.
pub const MAX_BATCH: usize = 1_000;

/// The items of a JSON array body as raw slices, so that each is decoded on its own: serde's
/// depth limit (128) then counts from the item, and an item nested too deep — or malformed in any
/// other way — fails alone instead of failing the whole batch. Only the array's own frame is
/// checked here (an opening `[`, items separated at depth 0 outside strings, a closing `]`,
/// nothing after it); whether each item is JSON is the item decoder's business.
pub fn array_items<'a>(body: &'a [u8]) -> Result<Vec<&'a [u8]>, &'static str> {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let strip = |s: &'a [u8]| -> &'a [u8] {
        let s = &s[s.iter().take_while(|b| space(b)).count()..];
        &s[..s.len() - s.iter().rev().take_while(|b| space(b)).count()]
    };
    let open = body.iter().take_while(|b| space(b)).count();
    if body.get(open) != Some(&b'[') {
        return Err("the body is not a JSON array");
    }
    let (mut items, mut start, mut depth) = (Vec::new(), open + 1, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in body.iter().enumerate().skip(open + 1) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth > 0 => depth -= 1,
            b',' if depth == 0 => {
                items.push(strip(&body[start..i]));
                start = i + 1;
            }
            b']' => {
                let last = strip(&body[start..i]);
                if !(items.is_empty() && last.is_empty()) {
                    items.push(last);
                }
                if !strip(&body[i + 1..]).is_empty() {
                    return Err("trailing characters after the JSON array");
                }
                return Ok(items);
            }
            b'}' => return Err("an unmatched `}` in the JSON array"),
            _ => {}
        }
    }
    Err("the JSON array is not closed")
}

/// A reading as a gateway delivers it (`POST /v1/readings`): the signed chain and the payload
/// bytes, whose keccak256 must equal `reading.payloadHash`. On the wire the chain's fields sit
/// beside the payload: `{ "reading": …, "signatures": […], "payload": "0x…" }`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingSubmission {
    /// The device's signed fields and the chain of signatures over them.
    pub signed: SignedReading,
    /// The payload.
    pub payload: Bytes,
}

/// The wire shape of [`ReadingSubmission`] (serde's `flatten` cannot deny unknown fields).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatSubmission<R, S, P> {
    reading: R,
    signatures: S,
    payload: P,
}

impl Serialize for ReadingSubmission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FlatSubmission { reading: &self.signed.reading, signatures: &self.signed.signatures, payload: &self.payload }
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ReadingSubmission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = FlatSubmission::<Reading, Vec<Bytes>, Bytes>::deserialize(d)?;
        Ok(Self { signed: SignedReading { reading: f.reading, signatures: f.signatures }, payload: f.payload })
    }
}

impl ReadingSubmission {
    /// The submission of a signed chain and its payload.
    pub fn new(signed: &SignedReading, payload: &[u8]) -> Self {
        Self { signed: signed.clone(), payload: Bytes::copy_from_slice(payload) }
    }

    /// The device's signed fields.
    pub fn reading(&self) -> &Reading {
        &self.signed.reading
    }
}

/// An aggregate as a gateway delivers it (`POST /v1/aggregates`): the signed aggregate and each
/// member with its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSubmission {
    /// The signed aggregate.
    pub aggregate: Aggregate,
    /// The members, with their payloads.
    pub members: Vec<ReadingSubmission>,
    /// The aggregating gateway's signature.
    pub signature: Bytes,
}

/// A command as a service issues it (what `iotegrity command` writes and POSTs to a gateway's
/// `/v1/commands`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedCommand {
    /// The signed fields.
    pub command: Command,
    /// The service's signature.
    pub command_signature: Bytes,
    /// The command bytes (`commandHash` = keccak256 of them).
    pub command_payload: Bytes,
}

impl SignedCommand {
    /// Verifies the service's signature, as a gateway does before it stores and applies a command.
    pub fn verify(&self, domain: &Eip712Domain, dir: &impl KeyDirectory) -> Result<(), VerifyError> {
        verify_command(&self.command, &self.command_signature, domain, dir)
    }
}

/// The answer to a command as a gateway relays it (`POST /v1/feedback`, Figure 5d), with both
/// payloads; also the gateway's answer to `POST /v1/commands`. On the wire the exchange's fields
/// sit beside the payloads, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackSubmission {
    /// The signed exchange: command, service/device/gateway signatures, feedback hash.
    pub exchange: CommandExchange,
    /// The command bytes; keccak256 must equal `command.commandHash`.
    pub command_payload: Bytes,
    /// The feedback bytes; keccak256 must equal `feedbackHash`.
    pub feedback_payload: Bytes,
}

/// The wire shape of [`FeedbackSubmission`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FlatFeedback<C, B, H> {
    command: C,
    command_signature: B,
    command_payload: B,
    feedback_hash: H,
    feedback_payload: B,
    device_signature: B,
    relay_signature: B,
}

impl Serialize for FeedbackSubmission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ex = &self.exchange;
        FlatFeedback {
            command: &ex.command,
            command_signature: &ex.command_signature,
            command_payload: &self.command_payload,
            feedback_hash: &ex.feedback_hash,
            feedback_payload: &self.feedback_payload,
            device_signature: &ex.device_signature,
            relay_signature: &ex.relay_signature,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FeedbackSubmission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = FlatFeedback::<Command, Bytes, alloy::primitives::B256>::deserialize(d)?;
        Ok(Self {
            exchange: CommandExchange {
                command: f.command,
                command_signature: f.command_signature,
                feedback_hash: f.feedback_hash,
                device_signature: f.device_signature,
                relay_signature: f.relay_signature,
            },
            command_payload: f.command_payload,
            feedback_payload: f.feedback_payload,
        })
    }
}

/// `201` to `POST /v1/readings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingStored {
    /// Row key in `iot.readings`.
    pub id: i64,
    /// Who signed: the device, then each gateway hop.
    pub signers: Vec<Address>,
}

/// `201` to `POST /v1/aggregates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateStored {
    /// Row key in `iot.aggregates`.
    pub aggregate_id: i64,
    /// The members' row keys in `iot.readings`, in order.
    pub reading_ids: Vec<i64>,
}

/// `201` to `POST /v1/feedback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackStored {
    /// Row key in `iot.commands`.
    pub id: i64,
    /// The relaying gateway.
    pub gateway: Address,
}

/// `200` to `POST /v1/readings/batch`: one result per item, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// How many items were stored now.
    pub stored: usize,
    /// Each item's result.
    pub results: Vec<ItemResult>,
}

/// One item's result in a [`BatchAnswer`]: the status it would have had on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    /// 201 stored, 409 already stored (a replay), 400 malformed, 422 or 403 refused.
    pub status: u16,
    /// The new row key, when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Why not, when not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The step of the chain that failed, when a signature did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl ItemResult {
    /// Whether the service has the item now (stored, or already stored before): delivered.
    pub fn delivered(&self) -> bool {
        matches!(self.status, 201 | 409)
    }

    /// Whether the service refused the item for good (malformed or unverifiable: redelivering it
    /// cannot help). A refused key (403) may be registered later: not for good.
    pub fn refused_for_good(&self) -> bool {
        matches!(self.status, 400 | 422)
    }
}

/// Every error answer of the ingest and command APIs; nothing of the item was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong.
    pub error: String,
    /// The step of the chain that failed, when a signature did.
    #[serde(default)]
    pub step: Option<String>,
}

/// The text of the replay refusal (409).
pub const REPLAY: &str = "replay: this (device, sequence) is already stored";

/// Why a POST to a daemon's API failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer: refused, timed out, cut off, or (over the pinned channel) a server the chain
    /// does not accept.
    #[error("cannot reach {url}")]
    Unreachable {
        /// Where.
        url: String,
        /// The transport's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A non-2xx answer; `reason` is its [`ErrorBody::error`] or, if it has none, its text.
    #[error("{url} answered {status}: {reason}")]
    Refused {
        /// Where.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Why, as the daemon said it.
        reason: String,
    },
    /// A 2xx answer that is not the expected body.
    #[error("{url} answered an unexpected body: {body}")]
    Unexpected {
        /// Where.
        url: String,
        /// What it answered.
        body: Value,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
}

/// A daemon's answer: its status and its body (JSON, or its text as a JSON string).
#[derive(Debug, Clone)]
pub struct Answer {
    /// Where it came from.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The body decoded as `T` if the status is 2xx; else the daemon's reason, as an error.
    pub fn decode<T: serde::de::DeserializeOwned>(self) -> Result<T, HttpError> {
        if !(200..300).contains(&self.status) {
            let reason = match serde_json::from_value::<ErrorBody>(self.body.clone()) {
                Ok(e) => e.error,
                Err(_) => self.body.as_str().map_or_else(|| self.body.to_string(), str::to_string),
            };
            return Err(HttpError::Refused { url: self.url, status: self.status, reason });
        }
        serde_json::from_value(self.body.clone()).map_err(|source| HttpError::Unexpected {
            url: self.url,
            body: self.body,
            source,
        })
    }
}

/// POSTs `body` (JSON text, sent as is) to `url`, and reads the answer whatever its status.
pub async fn send(client: &reqwest::Client, url: &str, body: String) -> Result<Answer, HttpError> {
    let unreachable = |source: reqwest::Error| HttpError::Unreachable { url: url.to_string(), source: source.into() };
    let resp =
        client.post(url).header("content-type", "application/json").body(body).send().await.map_err(unreachable)?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(unreachable)?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Answer { url: url.to_string(), status, body })
}

/// POSTs `body` serialized as JSON to `url`, and decodes a 2xx answer as `T`.
pub async fn post<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    body: &impl Serialize,
) -> Result<T, HttpError> {
    let json = serde_json::to_string(body).expect("wire types serialize");
    send(client, url, json).await?.decode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::domain;
    use alloy::primitives::{B256, keccak256};
    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn a_submission_is_the_chain_beside_its_payload_and_nothing_else() {
        let d = domain(31337, Address::repeat_byte(1));
        let signed = SignedReading::new(&PrivateKeySigner::random(), 3, 1_700_000_000, keccak256(b"p"), &d);
        let s = ReadingSubmission::new(&signed, b"p");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json.as_object().unwrap().keys().collect::<Vec<_>>(), ["payload", "reading", "signatures"]);
        assert_eq!(serde_json::from_value::<ReadingSubmission>(json.clone()).unwrap(), s);
        let mut extra = json;
        extra["note"] = "x".into();
        let err = serde_json::from_value::<ReadingSubmission>(extra).unwrap_err().to_string();
        assert!(err.contains("unknown field `note`"), "{err}");
        assert_eq!(s.reading().payloadHash, keccak256(b"p"));
        assert_ne!(s.reading().payloadHash, B256::ZERO);
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level_with_their_path() {
        let d = domain(31337, Address::repeat_byte(1));
        let signed = SignedReading::new(&PrivateKeySigner::random(), 3, 1_700_000_000, keccak256(b"p"), &d);
        let mut json = serde_json::to_value(ReadingSubmission::new(&signed, b"p")).unwrap();
        json["reading"]["note"] = serde_json::json!([[[[1]]]]);
        let text = json.to_string();
        let err =
            serde_path_to_error::deserialize::<_, ReadingSubmission>(&mut serde_json::Deserializer::from_str(&text))
                .unwrap_err();
        assert_eq!(err.path().to_string(), "reading.note", "{err}");
        assert!(err.to_string().contains("unknown field `note`"), "{err}");
        // The feedback body: its exchange's fields and the payloads, nothing more.
        let (command, command_signature) =
            CommandExchange::command(&PrivateKeySigner::random(), Address::ZERO, 1, 1, B256::ZERO, &d);
        let signer = PrivateKeySigner::random();
        let exchange = CommandExchange::answer(command, command_signature, B256::ZERO, &signer, &signer, &d);
        let f = FeedbackSubmission { exchange, command_payload: Bytes::new(), feedback_payload: Bytes::new() };
        let mut json = serde_json::to_value(&f).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 7);
        assert_eq!(serde_json::from_value::<FeedbackSubmission>(json.clone()).unwrap(), f);
        json["command"]["extra"] = 1.into();
        assert!(serde_json::from_value::<FeedbackSubmission>(json).is_err(), "nested unknown field refused");
    }

    #[test]
    fn item_results_leave_out_what_they_do_not_have() {
        let stored = ItemResult { status: 201, id: Some(7), error: None, step: None };
        assert_eq!(serde_json::to_string(&stored).unwrap(), r#"{"status":201,"id":7}"#);
        assert!(stored.delivered() && !stored.refused_for_good());
        let refused: ItemResult =
            serde_json::from_str(r#"{"status":422,"error":"no","step":"device signature"}"#).unwrap();
        assert!(!refused.delivered() && refused.refused_for_good());
    }

    #[test]
    fn array_items_splits_at_depth_zero_outside_strings() {
        let body = br#" [ {"a":[1,2],"b":"x,]}\"y"} , 7,"s" ,[[]] ] "#;
        let items = array_items(body).unwrap();
        let items: Vec<&str> = items.iter().map(|i| std::str::from_utf8(i).unwrap()).collect();
        assert_eq!(items, [r#"{"a":[1,2],"b":"x,]}\"y"}"#, "7", r#""s""#, "[[]]"]);
        assert_eq!(array_items(b"[]").unwrap().len(), 0);
        assert_eq!(array_items(b"[ \n ]").unwrap().len(), 0);
        // Empty items are items (each then fails to decode on its own).
        assert_eq!(array_items(b"[1,,2,]").unwrap(), [&b"1"[..], b"", b"2", b""]);
    }

    #[test]
    fn array_items_refuses_a_broken_frame() {
        for (body, why) in [
            (&b"{}"[..], "not a JSON array"),
            (b"", "not a JSON array"),
            (b"[1,2", "not closed"),
            (br#"["]"#, "not closed"),
            (b"[1] 2", "trailing"),
            (b"[1}", "unmatched"),
        ] {
            let err = array_items(body).unwrap_err();
            assert!(err.contains(why), "{}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn an_item_nested_deeper_than_serde_allows_is_its_own_failure() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let body = format!("[1,{deep},{}{}]", "[".repeat(100), "]".repeat(100));
        assert!(serde_json::from_str::<Value>(&body).is_err(), "serde alone fails the whole body");
        let items = array_items(body.as_bytes()).unwrap();
        assert_eq!(items.len(), 3);
        let decoded: Vec<bool> = items.iter().map(|i| serde_json::from_slice::<Value>(i).is_ok()).collect();
        assert_eq!(decoded, [true, false, true]);
    }
}
