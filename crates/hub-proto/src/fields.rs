//! Typed field extraction from a JSON object, with the contract's errors.
//!
//! Every getter names the field in its error so a producer learns exactly
//! what was wrong.

use crate::error::ProtoError;
use serde_json::{Map, Value};

/// A decoded JSON object being read field by field.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
}

/// Longest free-text field (`message`, `error`, `reason`), in characters;
/// longer text is kept cut to this length (see [`clip`]).
pub const MAX_TEXT_LEN: usize = 4096;

/// `s` cut to at most `max` characters, the last one kept being `…` when
/// anything was cut, so a reader sees that the text goes on.
///
/// Free text is cut rather than refused: a producer reporting a failure
/// with a long stack trace must still be able to end its operation, and a
/// progress message is not worth losing the update it came with.
pub fn clip(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some(_) => {
            let keep = s.char_indices().nth(max - 1).map_or(0, |(i, _)| i);
            format!("{}…", &s[..keep])
        }
    }
}

impl<'a> Fields<'a> {
    /// Wraps an object.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Fields { map }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, ProtoError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ProtoError::bad(format!("field `{key}` must be a non-negative integer"))
            }),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ProtoError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ProtoError::bad(format!(
                "field `{key}` must be true or false"
            ))),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ProtoError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ProtoError::bad(format!("field `{key}` must be a string"))),
        }
    }

    /// An optional string, cut to `max` characters when longer ([`clip`]).
    pub fn opt_clipped(&self, key: &str, max: usize) -> Result<Option<String>, ProtoError> {
        Ok(self.opt_str(key)?.map(|s| clip(s, max)))
    }

    /// A required string (empty allowed), cut to `max` characters when
    /// longer ([`clip`]).
    pub fn req_clipped(&self, key: &str, max: usize) -> Result<String, ProtoError> {
        self.opt_clipped(key, max)?
            .ok_or_else(|| ProtoError::bad(format!("field `{key}` is required")))
    }

    /// An optional string of at most `max` characters.
    pub fn opt_text(&self, key: &str, max: usize) -> Result<Option<String>, ProtoError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => {
                if s.chars().count() > max {
                    return Err(ProtoError::bad(format!(
                        "field `{key}` is longer than {max} characters"
                    )));
                }
                Ok(Some(s.to_owned()))
            }
        }
    }

    /// A required string of 1..=`max` characters.
    pub fn req_text(&self, key: &str, max: usize) -> Result<String, ProtoError> {
        match self.opt_text(key, max)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(ProtoError::bad(format!("field `{key}` must not be empty"))),
            None => Err(ProtoError::bad(format!("field `{key}` is required"))),
        }
    }

    /// An optional finite number.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, ProtoError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                // `+ 0.0` turns -0.0 into 0.0, so `-0` is stored and sent as 0.
                Some(f) if f.is_finite() => Ok(Some(f + 0.0)),
                _ => Err(ProtoError::bad(format!(
                    "field `{key}` must be a finite number"
                ))),
            },
            Some(_) => Err(ProtoError::bad(format!("field `{key}` must be a number"))),
        }
    }

    /// An optional JSON object.
    pub fn opt_object(&self, key: &str) -> Result<Option<Map<String, Value>>, ProtoError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(ProtoError::bad(format!("field `{key}` must be an object"))),
        }
    }

    /// An optional list of strings, at most `max_items` long (the caller
    /// checks each entry's length).
    pub fn opt_str_list(&self, key: &str, max_items: usize) -> Result<Vec<String>, ProtoError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    return Err(ProtoError::bad(format!(
                        "field `{key}` has more than {max_items} entries"
                    )));
                }
                items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(ProtoError::bad(format!(
                            "field `{key}` must be a list of strings"
                        ))),
                    })
                    .collect()
            }
            Some(_) => Err(ProtoError::bad(format!(
                "field `{key}` must be a list of strings"
            ))),
        }
    }

    /// An optional nested object, read with its own [`Fields`].
    pub fn opt_fields(&self, key: &str) -> Result<Option<Fields<'a>>, ProtoError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Fields::new(m))),
            Some(_) => Err(ProtoError::bad(format!("field `{key}` must be an object"))),
        }
    }
}
