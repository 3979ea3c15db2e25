//! Decoding of client messages: total, with the contract's error codes.
//!
//! Unknown fields are ignored; unknown types, malformed JSON and wrong field
//! types give `BAD_MESSAGE`. Errors carry the request `id` when it could be
//! read, and producer errors carry `operation_id` in `data`.

use crate::error::ProtoError;
use crate::fields::{Fields, MAX_TEXT_LEN};
use crate::ids::{validate_namespace, validate_operation_id, DEFAULT_NAMESPACE};
use crate::message::{ClientMessage, FilterSpec, Position, ProducerBody, ProducerMessage};
use serde_json::{Map, Value};

/// Longest operation name, in characters.
pub const MAX_NAME_LEN: usize = 256;
/// Longest kind, in characters.
pub const MAX_KIND_LEN: usize = 128;
/// Longest token, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Deepest nesting a client message may have, its own object being level 1.
///
/// Far below serde_json's own limit (128) on purpose: what a producer sends
/// in `details` or `metadata` is stored and sent on inside other objects
/// (the stored record, an event's `state`, the HTTP answers' lists), each
/// of which must stay readable by a 128-level parser, the hub's own store
/// and clients included.
pub const MAX_DEPTH: usize = 64;

fn parse_object(text: &str) -> Result<Map<String, Value>, ProtoError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            if nesting(&map) > MAX_DEPTH {
                let f = Fields::new(&map);
                return Err(ProtoError::bad(format!(
                    "the message is nested more than {MAX_DEPTH} levels deep"
                ))
                .with_id(f.opt_u64("id").ok().flatten())
                .with_operation(producer_operation(&map)));
            }
            Ok(map)
        }
        Ok(_) => Err(ProtoError::bad("a message must be a JSON object")),
        Err(e) => Err(unreadable(text, &e)),
    }
}

/// How deep an object nests, itself being level 1 (serde_json's own limit
/// bounds the recursion).
fn nesting(map: &Map<String, Value>) -> usize {
    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + map.values().map(depth).max().unwrap_or(0)
}

/// The error for text serde_json could not read into values. Text that is
/// valid JSON all the same (a number beyond an `f64` such as `1e999`, or
/// nesting past serde_json's 128 levels) still has a readable `id` and
/// `operation_id`: read them while skipping every other value (serde_json
/// skips without recursing), so the error answers the request it refuses.
fn unreadable(text: &str, e: &serde_json::Error) -> ProtoError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default, rename = "type")]
        ty: Option<String>,
        #[serde(default)]
        id: Option<u64>,
        #[serde(default)]
        operation_id: Option<String>,
    }
    let Ok(env) = serde_json::from_str::<Envelope>(text) else {
        return ProtoError::bad("the message is not valid JSON").with_details(e.to_string());
    };
    let operation = (!is_viewer_type(env.ty.as_deref()))
        .then_some(env.operation_id.as_deref())
        .flatten();
    ProtoError::bad(format!(
        "the message holds what the hub cannot read (a number beyond a 64-bit float, or nesting past 128 levels, twice the {MAX_DEPTH} allowed)"
    ))
    .with_details(e.to_string())
    .with_id(env.id)
    .with_operation(operation)
}

/// Whether `ty` is a viewer's request (its errors carry no operation).
fn is_viewer_type(ty: Option<&str>) -> bool {
    matches!(
        ty,
        Some("subscribe" | "unsubscribe" | "cancel" | "ping" | "refresh")
    )
}

fn read_id(map: &Map<String, Value>) -> Result<Option<u64>, ProtoError> {
    Fields::new(map).opt_u64("id")
}

/// Decodes one WebSocket text message.
pub fn decode_client(text: &str) -> Result<ClientMessage, ProtoError> {
    let map = parse_object(text)?;
    let id = read_id(&map).map_err(|e| e.with_operation(producer_operation(&map)))?;
    decode_map(&map, id).map_err(|e| e.with_id(id))
}

/// The `operation_id` of a message that is not a viewer's (a producer
/// message, or one of unknown type), which its errors carry in `data`.
fn producer_operation(map: &Map<String, Value>) -> Option<&str> {
    if is_viewer_type(map.get("type").and_then(Value::as_str)) {
        return None;
    }
    map.get("operation_id").and_then(Value::as_str)
}

fn decode_map(map: &Map<String, Value>, id: Option<u64>) -> Result<ClientMessage, ProtoError> {
    let f = Fields::new(map);
    let ty = f
        .opt_str("type")?
        .ok_or_else(|| ProtoError::bad("field `type` is required"))?;
    match ty {
        "subscribe" => {
            let namespace = namespace(&f)?;
            let filter = match f.opt_fields("filter")? {
                None => FilterSpec::default(),
                Some(ff) => FilterSpec {
                    operations: ff.opt_str_list("operations", FilterSpec::MAX_ENTRIES)?,
                    kinds: ff.opt_str_list("kinds", FilterSpec::MAX_ENTRIES)?,
                },
            };
            filter.validate()?;
            let resume = match f.opt_fields("resume")? {
                None => None,
                Some(rf) => Some(Position {
                    epoch: rf
                        .opt_str("epoch")?
                        .ok_or_else(|| ProtoError::bad("field `resume.epoch` is required"))?
                        .to_owned(),
                    offset: rf
                        .opt_u64("offset")?
                        .ok_or_else(|| ProtoError::bad("field `resume.offset` is required"))?,
                }),
            };
            Ok(ClientMessage::Subscribe {
                id,
                namespace,
                filter,
                resume,
                conflate: f.opt_bool("conflate")?.unwrap_or(false),
            })
        }
        "unsubscribe" => Ok(ClientMessage::Unsubscribe {
            id,
            namespace: namespace(&f)?,
        }),
        "cancel" => {
            let namespace = namespace(&f)?;
            let operation_id = f
                .opt_str("operation_id")?
                .ok_or_else(|| ProtoError::bad("field `operation_id` is required"))?;
            validate_operation_id(operation_id)?;
            Ok(ClientMessage::Cancel {
                id,
                namespace,
                operation_id: operation_id.to_owned(),
            })
        }
        "ping" => Ok(ClientMessage::Ping { id }),
        "refresh" => {
            let token = f
                .opt_str("token")?
                .ok_or_else(|| ProtoError::bad("field `token` is required"))?;
            if token.is_empty() || token.len() > MAX_TOKEN_LEN {
                return Err(ProtoError::bad("field `token` must be a non-empty string"));
            }
            Ok(ClientMessage::Refresh {
                id,
                token: token.to_owned(),
            })
        }
        other => {
            let body =
                decode_body(other, &f).map_err(|e| e.with_operation(producer_operation(map)))?;
            decode_producer(&f, id, body, None).map(ClientMessage::Publish)
        }
    }
}

fn namespace(f: &Fields<'_>) -> Result<String, ProtoError> {
    match f.opt_str("namespace")? {
        None => Ok(DEFAULT_NAMESPACE.to_owned()),
        Some(ns) => {
            validate_namespace(ns)?;
            Ok(ns.to_owned())
        }
    }
}

/// Reads the common producer fields and checks the seq/id rules.
fn decode_producer(
    f: &Fields<'_>,
    id: Option<u64>,
    body: ProducerBody,
    http_path_operation: Option<&str>,
) -> Result<ProducerMessage, ProtoError> {
    let http = http_path_operation.is_some();
    let operation_id = match http_path_operation {
        Some(op) => Some(op.to_owned()),
        None => f.opt_str("operation_id")?.map(str::to_owned),
    };
    let with_op = |e: ProtoError| e.with_operation(operation_id.as_deref());
    if let Some(op) = &operation_id {
        validate_operation_id(op).map_err(with_op)?;
    }
    let namespace = namespace(f).map_err(with_op)?;
    let seq = f.opt_u64("seq").map_err(with_op)?;
    if seq == Some(0) {
        return Err(with_op(ProtoError::bad("field `seq` starts at 1")));
    }
    if seq.is_none() && !http {
        return Err(with_op(ProtoError::bad("field `seq` is required")));
    }
    let started = matches!(body, ProducerBody::Started { .. });
    if started && seq.is_some_and(|s| s != 1) {
        return Err(with_op(ProtoError::bad(
            "operation_started must have seq 1",
        )));
    }
    if operation_id.is_none() && !started {
        return Err(ProtoError::bad("field `operation_id` is required")
            .with_data(serde_json::json!({ "operation_id": null })));
    }
    Ok(ProducerMessage {
        id,
        namespace,
        operation_id,
        seq,
        body,
    })
}

fn decode_body(ty: &str, f: &Fields<'_>) -> Result<ProducerBody, ProtoError> {
    Ok(match ty {
        "operation_started" => {
            let total = f.opt_f64("total")?;
            if total.is_some_and(|t| t <= 0.0) {
                return Err(ProtoError::bad("field `total` must be greater than 0"));
            }
            let weight = f.opt_f64("weight")?;
            if weight.is_some_and(|w| w <= 0.0) {
                return Err(ProtoError::bad("field `weight` must be greater than 0"));
            }
            let parent_id = f.opt_str("parent_id")?;
            if let Some(p) = parent_id {
                validate_operation_id(p).map_err(|_| {
                    ProtoError::bad("field `parent_id` is not a valid operation id")
                })?;
            }
            let kind = match f.opt_text("kind", MAX_KIND_LEN)? {
                None => "default".to_owned(),
                Some(k) if k.is_empty() => {
                    return Err(ProtoError::bad("field `kind` must not be empty"))
                }
                Some(k) => k,
            };
            ProducerBody::Started {
                name: f.req_text("name", MAX_NAME_LEN)?,
                kind,
                total,
                parent_id: parent_id.map(str::to_owned),
                weight,
                metadata: f.opt_object("metadata")?,
            }
        }
        "progress_update" => {
            let progress = f.opt_f64("progress")?;
            if progress.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
                return Err(ProtoError::bad(
                    "field `progress` must be between 0 and 100",
                ));
            }
            let current = f.opt_f64("current")?;
            if current.is_some_and(|c| c < 0.0) {
                return Err(ProtoError::bad("field `current` must not be negative"));
            }
            if progress.is_none() && current.is_none() {
                return Err(ProtoError::bad(
                    "progress_update needs `progress` or `current`",
                ));
            }
            ProducerBody::Progress {
                progress,
                current,
                step: f.opt_clipped("step", MAX_NAME_LEN)?,
                message: f.opt_clipped("message", MAX_TEXT_LEN)?,
                details: f.opt_object("details")?,
            }
        }
        "operation_completed" => ProducerBody::Completed {
            details: f.opt_object("details")?,
        },
        "operation_failed" => ProducerBody::Failed {
            error: f.req_clipped("error", MAX_TEXT_LEN)?,
            details: f.opt_object("details")?,
        },
        "operation_canceled" => ProducerBody::Canceled {
            reason: f.opt_clipped("reason", MAX_TEXT_LEN)?,
        },
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(ProtoError::bad(format!("unknown message type `{shown}`")));
        }
    })
}

/// Decodes the body of `POST /api/v1/namespaces/{ns}/operations/{id}/events`.
///
/// `operation_id` and `namespace` may be left out and must match the path
/// when given; `seq` may be left out (the hub then assigns the next one).
pub fn decode_http_producer(
    text: &str,
    path_namespace: &str,
    path_operation: &str,
) -> Result<ProducerMessage, ProtoError> {
    validate_namespace(path_namespace)?;
    validate_operation_id(path_operation)?;
    let map = parse_object(text).map_err(|e| e.with_operation(Some(path_operation)))?;
    let id = read_id(&map)?;
    let f = Fields::new(&map);
    let with_op = |e: ProtoError| e.with_operation(Some(path_operation)).with_id(id);
    let ty = f
        .opt_str("type")
        .map_err(with_op)?
        .ok_or_else(|| with_op(ProtoError::bad("field `type` is required")))?;
    if let Some(ns) = f.opt_str("namespace").map_err(with_op)? {
        if ns != path_namespace {
            return Err(with_op(ProtoError::bad(
                "field `namespace` does not match the URL path",
            )));
        }
    }
    if let Some(op) = f.opt_str("operation_id").map_err(with_op)? {
        if op != path_operation {
            return Err(with_op(ProtoError::bad(
                "field `operation_id` does not match the URL path",
            )));
        }
    }
    let body = decode_body(ty, &f).map_err(with_op)?;
    let mut msg = decode_producer(&f, id, body, Some(path_operation)).map_err(with_op)?;
    msg.namespace = path_namespace.to_owned();
    Ok(msg)
}

#[cfg(test)]
mod tests;
