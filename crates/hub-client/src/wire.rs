//! The client's own view of the protocol v1 JSON messages.
//!
//! Outgoing messages are typed and serialised exactly as the protocol names
//! them. Incoming messages are decoded leniently: unknown fields are ignored,
//! an unknown `type` (or a known one that does not decode) becomes
//! [`ServerMessage::Unknown`] instead of an error, so a newer hub never
//! breaks an older client.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields of an `operation_started` message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartFields {
    /// Display name (1..=256 characters).
    pub name: String,
    /// Grouping kind (hub default `"default"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Total units of work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// Parent operation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Weight within the parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Free metadata (a JSON object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// Fields of a `progress_update` message. Conflating two updates merges them
/// field by field, the later one winning ([`ProgressFields::merge`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressFields {
    /// Percentage, 0..=100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// Units done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
    /// Current step name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Human message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Free details (a JSON object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ProgressFields {
    /// Apply a later update on top of this one.
    pub fn merge(&mut self, later: ProgressFields) {
        if later.progress.is_some() {
            self.progress = later.progress;
        }
        if later.current.is_some() {
            self.current = later.current;
        }
        if later.step.is_some() {
            self.step = later.step;
        }
        if later.message.is_some() {
            self.message = later.message;
        }
        if later.details.is_some() {
            self.details = later.details;
        }
    }

    /// True when no field is set (nothing to send).
    pub fn is_empty(&self) -> bool {
        self.progress.is_none()
            && self.current.is_none()
            && self.step.is_none()
            && self.message.is_none()
            && self.details.is_none()
    }
}

/// The body of a producer message (its `type` and type-specific fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProducerBody {
    /// `operation_started`.
    OperationStarted(StartFields),
    /// `progress_update`.
    ProgressUpdate(ProgressFields),
    /// `operation_completed`.
    OperationCompleted {
        /// Optional details.
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<Value>,
    },
    /// `operation_failed`.
    OperationFailed {
        /// The error text.
        error: String,
        /// Optional details.
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<Value>,
    },
    /// `operation_canceled`.
    OperationCanceled {
        /// Optional reason.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl ProducerBody {
    /// Start, complete, fail and cancel are lifecycle events (never dropped);
    /// progress updates may be conflated.
    pub fn is_lifecycle(&self) -> bool {
        !matches!(self, ProducerBody::ProgressUpdate(_))
    }

    /// The state a terminal message ends its operation in (`completed`,
    /// `failed`, `canceled`); `None` for the others.
    pub fn final_state(&self) -> Option<&'static str> {
        match self {
            ProducerBody::OperationCompleted { .. } => Some("completed"),
            ProducerBody::OperationFailed { .. } => Some("failed"),
            ProducerBody::OperationCanceled { .. } => Some("canceled"),
            _ => None,
        }
    }

    /// Completed, failed or canceled.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ProducerBody::OperationCompleted { .. }
                | ProducerBody::OperationFailed { .. }
                | ProducerBody::OperationCanceled { .. }
        )
    }
}

/// A complete producer message as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducerMessage<'a> {
    /// Type and fields.
    #[serde(flatten)]
    pub body: &'a ProducerBody,
    /// Request id (echoed by the `ack` or `error`).
    pub id: u64,
    /// Namespace.
    pub namespace: &'a str,
    /// Operation id.
    pub operation_id: &'a str,
    /// Per-operation sequence number.
    pub seq: u64,
}

/// A subscription filter: globs on operation ids and exact kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Globs on `operation_id` (`*` any run, `?` one character).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
    /// Exact kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

impl Filter {
    /// Everything.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Operations whose id matches `glob`.
    pub fn operations(glob: impl Into<String>) -> Self {
        Filter {
            operations: vec![glob.into()],
            kinds: Vec::new(),
        }
    }

    /// Add a kind.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kinds.push(kind.into());
        self
    }

    /// True when the filter matches everything.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty() && self.kinds.is_empty()
    }
}

/// A stream position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Epoch of the namespace stream.
    pub epoch: String,
    /// Last offset seen.
    pub offset: u64,
}

/// Viewer and control messages the client sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// `subscribe`.
    Subscribe {
        /// Request id.
        id: u64,
        /// Namespace.
        namespace: String,
        /// Filter.
        #[serde(skip_serializing_if = "Option::is_none")]
        filter: Option<Filter>,
        /// Resume position.
        #[serde(skip_serializing_if = "Option::is_none")]
        resume: Option<Position>,
        /// Only the latest state matters: the hub may conflate progress
        /// while this viewer is behind (sent only when true).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        conflate: bool,
    },
    /// `unsubscribe`.
    Unsubscribe {
        /// Request id.
        id: u64,
        /// Namespace.
        namespace: String,
    },
    /// `cancel`: ask an operation's producer to stop.
    Cancel {
        /// Request id.
        id: u64,
        /// Namespace.
        namespace: String,
        /// Operation id.
        operation_id: String,
    },
    /// `ping`.
    Ping {
        /// Request id.
        id: u64,
    },
    /// `refresh`: replace the token on the live connection.
    Refresh {
        /// Request id.
        id: u64,
        /// The new token.
        token: String,
    },
}

/// Lifecycle state of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Running.
    Running,
    /// No word from the producer within the stall timeout.
    Stalled,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Canceled.
    Canceled,
    /// A state this client does not know.
    #[serde(other)]
    Unknown,
}

impl OpStatus {
    /// Completed, failed or canceled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OpStatus::Completed | OpStatus::Failed | OpStatus::Canceled
        )
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Running => "running",
            OpStatus::Stalled => "stalled",
            OpStatus::Completed => "completed",
            OpStatus::Failed => "failed",
            OpStatus::Canceled => "canceled",
            OpStatus::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for OpStatus {
    /// The protocol's name (`running`, `completed`, ...).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hub's operation state object (every field may be null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationState {
    /// Operation id.
    pub operation_id: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Lifecycle state.
    #[serde(default = "unknown_status")]
    pub state: OpStatus,
    /// Percentage.
    #[serde(default)]
    pub progress: Option<f64>,
    /// Units done.
    #[serde(default)]
    pub current: Option<f64>,
    /// Total units.
    #[serde(default)]
    pub total: Option<f64>,
    /// Current step.
    #[serde(default)]
    pub step: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
    /// Details.
    #[serde(default)]
    pub details: Option<Value>,
    /// Error text (failed operations).
    #[serde(default)]
    pub error: Option<String>,
    /// Parent id.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Weight within the parent.
    #[serde(default)]
    pub weight: Option<f64>,
    /// Free metadata (a JSON object) given at start.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Start time (ms).
    #[serde(default)]
    pub started_at: Option<u64>,
    /// Last update (ms).
    #[serde(default)]
    pub updated_at: Option<u64>,
    /// Finish time (ms).
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// Percent per second.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Seconds to completion.
    #[serde(default)]
    pub eta_seconds: Option<f64>,
    /// A cancel is pending.
    #[serde(default)]
    pub cancel_requested: Option<bool>,
    /// Offset of the latest event.
    #[serde(default)]
    pub last_offset: Option<u64>,
}

fn unknown_status() -> OpStatus {
    OpStatus::Unknown
}

/// An operation event as a viewer receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `operation_started`, `progress_update`, `operation_completed`,
    /// `operation_failed`, `operation_canceled`, `operation_stalled`,
    /// `operation_resumed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Offset in the namespace stream.
    pub offset: u64,
    /// Server time (ms).
    #[serde(default)]
    pub timestamp: u64,
    /// The operation's resulting state.
    pub state: OperationState,
    /// The whole message as received (all type-specific fields).
    #[serde(skip)]
    pub raw: Value,
}

impl Event {
    /// The operation this event is about.
    pub fn operation_id(&self) -> &str {
        &self.state.operation_id
    }
}

/// `ack`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ack {
    /// Request id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Operation id.
    pub operation_id: String,
    /// Acked sequence number (cumulative).
    pub seq: u64,
    /// Offset of the event.
    #[serde(default)]
    pub offset: Option<u64>,
    /// The seq had been accepted before.
    #[serde(default)]
    pub duplicate: bool,
    /// A cancel is pending for the operation.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorMessage {
    /// Request id, when the error answers one.
    #[serde(default)]
    pub id: Option<u64>,
    /// Machine code (`SEQ_GAP`, ...).
    pub code: String,
    /// Human sentence.
    #[serde(default)]
    pub message: String,
    /// Machine-readable data.
    #[serde(default)]
    pub data: Option<Value>,
    /// `warning`, `error` or `critical`.
    #[serde(default)]
    pub severity: Option<String>,
}

impl ErrorMessage {
    /// `data.<key>` as a string.
    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.as_ref()?.get(key)?.as_str()
    }

    /// `data.<key>` as an integer.
    pub fn data_u64(&self, key: &str) -> Option<u64> {
        self.data.as_ref()?.get(key)?.as_u64()
    }
}

/// `subscribed`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Subscribed {
    /// Request id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Namespace.
    pub namespace: String,
    /// Epoch.
    pub epoch: String,
    /// The namespace's last offset.
    pub offset: u64,
    /// Whether the missed events follow (true) or a snapshot (false).
    pub recovered: bool,
}

/// `operation_list`: a snapshot.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OperationList {
    /// Namespace.
    pub namespace: String,
    /// Epoch.
    pub epoch: String,
    /// The offset every state reflects.
    pub offset: u64,
    /// States.
    #[serde(default)]
    pub operations: Vec<OperationState>,
}

/// `cancel_requested`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CancelRequested {
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Operation id.
    pub operation_id: String,
    /// Who asked.
    #[serde(default)]
    pub requested_by: Option<String>,
}

/// `heartbeat`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Heartbeat {
    /// Server time (ms).
    #[serde(default)]
    pub timestamp: u64,
    /// Connections the hub holds.
    #[serde(default)]
    pub clients_connected: Option<u64>,
}

/// A decoded server message.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// An operation event.
    Event(Box<Event>),
    /// `ack`.
    Ack(Ack),
    /// `error`.
    Error(ErrorMessage),
    /// `subscribed`.
    Subscribed(Subscribed),
    /// `operation_list`.
    OperationList(OperationList),
    /// `cancel_requested`.
    CancelRequested(CancelRequested),
    /// `heartbeat`.
    Heartbeat(Heartbeat),
    /// `ok`.
    Ok {
        /// Request id.
        id: Option<u64>,
    },
    /// `pong`.
    Pong {
        /// Request id.
        id: Option<u64>,
    },
    /// `system_status` (kept raw).
    SystemStatus(Value),
    /// Anything else, or a message that did not decode.
    Unknown(Value),
}

const EVENT_TYPES: [&str; 7] = [
    "operation_started",
    "progress_update",
    "operation_completed",
    "operation_failed",
    "operation_canceled",
    "operation_stalled",
    "operation_resumed",
];

impl ServerMessage {
    /// Decode one message (one line of a frame).
    pub fn parse(text: &str) -> ServerMessage {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Self::from_value(v),
            Err(_) => ServerMessage::Unknown(Value::String(text.to_owned())),
        }
    }

    /// Decode a JSON value.
    pub fn from_value(v: Value) -> ServerMessage {
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        fn de<T: serde::de::DeserializeOwned>(
            v: Value,
            wrap: impl FnOnce(T) -> ServerMessage,
        ) -> ServerMessage {
            match T::deserialize(&v) {
                Ok(t) => wrap(t),
                Err(_) => ServerMessage::Unknown(v),
            }
        }
        let id = || v.get("id").and_then(Value::as_u64);
        match ty.as_str() {
            "ack" => de(v, ServerMessage::Ack),
            "error" => de(v, ServerMessage::Error),
            "subscribed" => de(v, ServerMessage::Subscribed),
            "operation_list" => de(v, ServerMessage::OperationList),
            "cancel_requested" => de(v, ServerMessage::CancelRequested),
            "heartbeat" => de(v, ServerMessage::Heartbeat),
            "ok" => ServerMessage::Ok { id: id() },
            "pong" => ServerMessage::Pong { id: id() },
            "system_status" => ServerMessage::SystemStatus(v),
            t if EVENT_TYPES.contains(&t) => match Event::deserialize(&v) {
                Ok(mut e) => {
                    e.raw = v;
                    ServerMessage::Event(Box::new(e))
                }
                Err(_) => ServerMessage::Unknown(v),
            },
            _ => ServerMessage::Unknown(v),
        }
    }

    /// Split a frame on `\n` (the hub batches messages) and decode each line.
    pub fn parse_frame(text: &str) -> impl Iterator<Item = ServerMessage> + '_ {
        text.split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(ServerMessage::parse)
    }
}

/// Serialise a producer message to its wire text.
pub fn encode_producer(
    body: &ProducerBody,
    id: u64,
    namespace: &str,
    operation_id: &str,
    seq: u64,
) -> String {
    serde_json::to_string(&ProducerMessage {
        body,
        id,
        namespace,
        operation_id,
        seq,
    })
    .unwrap_or_default()
}

/// Serialise a control message to its wire text.
pub fn encode_control(msg: &ControlMessage) -> String {
    serde_json::to_string(msg).unwrap_or_default()
}

/// An empty JSON object.
pub fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn op_status_displays_its_protocol_name() {
        assert_eq!(OpStatus::Completed.to_string(), "completed");
        assert_eq!(format!("{}", OpStatus::Running), "running");
    }

    #[test]
    fn producer_messages_encode_as_the_protocol_says() {
        let start = ProducerBody::OperationStarted(StartFields {
            name: "Render".into(),
            kind: Some("render".into()),
            total: Some(300.0),
            ..Default::default()
        });
        let v: Value =
            serde_json::from_str(&encode_producer(&start, 9, "default", "op-1", 1)).unwrap();
        assert_eq!(
            v,
            json!({"type": "operation_started", "id": 9, "namespace": "default",
                   "operation_id": "op-1", "seq": 1, "name": "Render", "kind": "render", "total": 300.0})
        );
        let p = ProducerBody::ProgressUpdate(ProgressFields {
            progress: Some(42.5),
            step: Some("encode".into()),
            ..Default::default()
        });
        let v: Value = serde_json::from_str(&encode_producer(&p, 10, "ns", "op-1", 2)).unwrap();
        assert_eq!(v["type"], "progress_update");
        assert_eq!(v["progress"], 42.5);
        assert!(v.get("current").is_none());
        let f = ProducerBody::OperationFailed {
            error: "boom".into(),
            details: None,
        };
        let v: Value = serde_json::from_str(&encode_producer(&f, 11, "ns", "op-1", 3)).unwrap();
        assert_eq!(v["type"], "operation_failed");
        assert_eq!(v["error"], "boom");
        let c = ControlMessage::Subscribe {
            id: 1,
            namespace: "default".into(),
            filter: Some(Filter::operations("render.*")),
            resume: Some(Position {
                epoch: "e1".into(),
                offset: 7,
            }),
            conflate: false,
        };
        let v: Value = serde_json::from_str(&encode_control(&c)).unwrap();
        assert_eq!(
            v,
            json!({"type": "subscribe", "id": 1, "namespace": "default",
                   "filter": {"operations": ["render.*"]}, "resume": {"epoch": "e1", "offset": 7}})
        );
        let latest = ControlMessage::Subscribe {
            id: 2,
            namespace: "default".into(),
            filter: None,
            resume: None,
            conflate: true,
        };
        let v: Value = serde_json::from_str(&encode_control(&latest)).unwrap();
        assert_eq!(
            v,
            json!({"type": "subscribe", "id": 2, "namespace": "default", "conflate": true})
        );
    }

    #[test]
    fn server_messages_decode_leniently() {
        let frame = concat!(
            r#"{"type":"ack","id":3,"namespace":"default","operation_id":"a","seq":2,"offset":9,"extra":1}"#,
            "\n",
            r#"{"type":"heartbeat","timestamp":5,"clients_connected":2}"#,
            "\n",
            r#"{"type":"brand_new_thing","x":1}"#,
            "\n",
            r#"not json"#,
            "\n",
            r#"{"type":"ack","operation_id":"a"}"#
        );
        let msgs: Vec<_> = ServerMessage::parse_frame(frame).collect();
        assert_eq!(msgs.len(), 5);
        match &msgs[0] {
            ServerMessage::Ack(a) => {
                assert_eq!(
                    (a.id, a.seq, a.offset, a.duplicate),
                    (Some(3), 2, Some(9), false)
                )
            }
            m => panic!("{m:?}"),
        }
        assert!(matches!(msgs[1], ServerMessage::Heartbeat(_)));
        assert!(matches!(msgs[2], ServerMessage::Unknown(_)));
        assert!(matches!(msgs[3], ServerMessage::Unknown(_)));
        assert!(matches!(msgs[4], ServerMessage::Unknown(_)), "missing seq");
    }

    #[test]
    fn events_carry_state_and_raw() {
        let text = r#"{"type":"progress_update","namespace":"default","offset":4,"timestamp":1700000000000,
            "operation_id":"a","seq":2,"progress":40,"future_field":true,
            "state":{"operation_id":"a","namespace":"default","name":"A","kind":"default","state":"running",
            "progress":40.0,"current":null,"total":null,"step":null,"message":null,"details":null,"error":null,
            "parent_id":null,"started_at":1,"updated_at":2,"finished_at":null,"rate":null,"eta_seconds":null,
            "cancel_requested":false,"last_offset":4,"new_state_field":"x"}}"#;
        match ServerMessage::parse(text) {
            ServerMessage::Event(e) => {
                assert_eq!(e.kind, "progress_update");
                assert_eq!(e.offset, 4);
                assert_eq!(e.operation_id(), "a");
                assert_eq!(e.state.state, OpStatus::Running);
                assert_eq!(e.state.progress, Some(40.0));
                assert_eq!(e.raw["future_field"], true);
            }
            m => panic!("{m:?}"),
        }
        let odd = r#"{"type":"operation_stalled","namespace":"n","offset":1,"state":{"operation_id":"a","state":"zombie"}}"#;
        match ServerMessage::parse(odd) {
            ServerMessage::Event(e) => assert_eq!(e.state.state, OpStatus::Unknown),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn state_weight_and_metadata_parse_and_are_optional() {
        let with: OperationState = serde_json::from_value(json!({
            "operation_id": "a", "state": "running", "weight": 2.5,
            "metadata": {"owner": "ci", "n": 1}
        }))
        .unwrap();
        assert_eq!(with.weight, Some(2.5));
        assert_eq!(with.metadata, Some(json!({"owner": "ci", "n": 1})));
        let nulls: OperationState = serde_json::from_value(json!({
            "operation_id": "a", "state": "running", "weight": null, "metadata": null
        }))
        .unwrap();
        assert_eq!((nulls.weight, nulls.metadata), (None, None));
        let without: OperationState =
            serde_json::from_value(json!({"operation_id": "a", "state": "running"})).unwrap();
        assert_eq!(without.weight, None);
        assert_eq!(without.metadata, None);
    }

    #[test]
    fn errors_expose_data() {
        let text = r#"{"type":"error","code":"SEQ_GAP","message":"gap","details":null,"timestamp":1,
            "component":"hub","severity":"warning","data":{"operation_id":"a","expected":3},"id":12}"#;
        match ServerMessage::parse(text) {
            ServerMessage::Error(e) => {
                assert_eq!(e.code, "SEQ_GAP");
                assert_eq!(e.id, Some(12));
                assert_eq!(e.data_u64("expected"), Some(3));
                assert_eq!(e.data_str("operation_id"), Some("a"));
            }
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn progress_merge_keeps_earlier_fields() {
        let mut a = ProgressFields {
            progress: Some(1.0),
            step: Some("load".into()),
            ..Default::default()
        };
        a.merge(ProgressFields {
            progress: Some(2.0),
            message: Some("m".into()),
            ..Default::default()
        });
        assert_eq!(a.progress, Some(2.0));
        assert_eq!(a.step.as_deref(), Some("load"));
        assert_eq!(a.message.as_deref(), Some("m"));
    }
}
