//! [`JsonObject`]: a JSON object the hub only carries (an operation's
//! `metadata` and `details`), held as its compact text instead of a parsed
//! tree. A parsed `serde_json::Map` costs many times its text (a 19 KB
//! object of a thousand small keys nested three deep: about 300 KB), and
//! the hub never looks inside these objects: it stores them, and writes
//! them into events and snapshots, where the text is copied as it is.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A JSON object kept as its compact text (keys in `serde_json::Map`'s
/// order, so the same object always has the same text).
#[derive(Clone, Debug)]
pub struct JsonObject(Box<RawValue>);

impl JsonObject {
    /// The object's text, encoded once.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let text = serde_json::to_string(map).unwrap_or_else(|_| String::from("{}"));
        // The text of a `Map` is valid JSON: this cannot fail.
        JsonObject(RawValue::from_string(text).unwrap_or_else(|_| empty()))
    }

    /// The object parsed again (for the rare reader: tests, tools).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

fn empty() -> Box<RawValue> {
    RawValue::from_string(String::from("{}")).expect("{} is JSON")
}

impl From<Map<String, Value>> for JsonObject {
    fn from(map: Map<String, Value>) -> Self {
        JsonObject::from_map(&map)
    }
}

impl PartialEq for JsonObject {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_map() == other.to_map()
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    /// Through a `Map` (not `RawValue`'s own path), so that it also reads
    /// inside structures serde buffers first (`#[serde(flatten)]`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::<String, Value>::deserialize(d).map(JsonObject::from)
    }
}

#[cfg(test)]
mod tests {
    use super::JsonObject;
    use serde_json::{json, Value};

    #[test]
    fn written_as_the_same_json_and_read_back_equal() {
        let map = json!({"b": [1, 2.5, null], "a": {"c": "é\n"}});
        let o = JsonObject::from_map(map.as_object().unwrap());
        assert_eq!(o.as_str(), r#"{"a":{"c":"é\n"},"b":[1,2.5,null]}"#);
        let wrapped = serde_json::to_string(&json!({"x": 1})).unwrap();
        assert_eq!(wrapped, r#"{"x":1}"#);
        let doc = serde_json::to_string(&vec![o.clone()]).unwrap();
        assert_eq!(doc, format!("[{}]", o.as_str()));
        let back: Vec<JsonObject> = serde_json::from_str(&doc).unwrap();
        assert_eq!(back[0], o);
        assert_eq!(Value::Object(back[0].to_map()), map);
    }

    #[test]
    fn reads_inside_flattened_structures_and_refuses_non_objects() {
        #[derive(serde::Deserialize)]
        struct Outer {
            #[serde(flatten)]
            _rest: serde_json::Map<String, Value>,
            inner: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            details: JsonObject,
        }
        let o: Outer = serde_json::from_str(r#"{"z":1,"inner":{"details":{"k":[1]}}}"#).unwrap();
        assert_eq!(o.inner.details.as_str(), r#"{"k":[1]}"#);
        assert!(serde_json::from_str::<JsonObject>("[1]").is_err());
        assert!(serde_json::from_str::<JsonObject>("\"s\"").is_err());
    }
}
