//! Client → server messages, as decoded and validated.

use crate::error::ProtoError;
use serde_json::{Map, Value};

/// A position in a namespace stream a viewer can resume from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The stream's epoch.
    pub epoch: String,
    /// The last offset the viewer has seen.
    pub offset: u64,
}

/// A subscription filter as sent (`operations` globs, `kinds` exact).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// Globs on operation ids (`*` any run, `?` one character).
    pub operations: Vec<String>,
    /// Exact kinds.
    pub kinds: Vec<String>,
}

impl FilterSpec {
    /// Most globs, and most kinds, a filter may list.
    pub const MAX_ENTRIES: usize = 64;
    /// Longest glob, in characters (twice the longest operation id).
    pub const MAX_GLOB_LEN: usize = 256;

    /// The filter's limits, the same whichever transport it came over:
    /// at most [`Self::MAX_ENTRIES`] of each; globs non-empty and at most
    /// [`Self::MAX_GLOB_LEN`] characters; kinds non-empty and at most as
    /// long as a kind may be ([`crate::decode::MAX_KIND_LEN`] characters).
    pub fn validate(&self) -> Result<(), ProtoError> {
        let check = |key: &str, items: &[String], max_chars: usize| {
            if items.len() > Self::MAX_ENTRIES {
                return Err(ProtoError::bad(format!(
                    "filter `{key}` has more than {} entries",
                    Self::MAX_ENTRIES
                )));
            }
            match items
                .iter()
                .find(|s| s.is_empty() || s.chars().nth(max_chars).is_some())
            {
                Some(_) => Err(ProtoError::bad(format!(
                    "filter `{key}` entries must be non-empty and at most {max_chars} characters"
                ))),
                None => Ok(()),
            }
        };
        check("operations", &self.operations, Self::MAX_GLOB_LEN)?;
        check("kinds", &self.kinds, crate::decode::MAX_KIND_LEN)
    }
}

/// What a producer reports, per message type.
#[derive(Clone, Debug, PartialEq)]
pub enum ProducerBody {
    /// `operation_started`.
    Started {
        /// Display name (1..=256 characters).
        name: String,
        /// Grouping kind (default `"default"`).
        kind: String,
        /// Units of work, > 0.
        total: Option<f64>,
        /// Parent operation id.
        parent_id: Option<String>,
        /// Weight in a parent's aggregate, > 0.
        weight: Option<f64>,
        /// Free metadata.
        metadata: Option<Map<String, Value>>,
    },
    /// `progress_update`.
    Progress {
        /// Percent (0..=100).
        progress: Option<f64>,
        /// Units done (>= 0).
        current: Option<f64>,
        /// Step label.
        step: Option<String>,
        /// Human message.
        message: Option<String>,
        /// Free details.
        details: Option<Map<String, Value>>,
    },
    /// `operation_completed`.
    Completed {
        /// Free details.
        details: Option<Map<String, Value>>,
    },
    /// `operation_failed`.
    Failed {
        /// What went wrong.
        error: String,
        /// Free details.
        details: Option<Map<String, Value>>,
    },
    /// `operation_canceled`.
    Canceled {
        /// Why.
        reason: Option<String>,
    },
}

impl ProducerBody {
    /// The wire `type` of this body.
    pub fn event_type(&self) -> crate::EventType {
        use crate::EventType::*;
        match self {
            ProducerBody::Started { .. } => OperationStarted,
            ProducerBody::Progress { .. } => ProgressUpdate,
            ProducerBody::Completed { .. } => OperationCompleted,
            ProducerBody::Failed { .. } => OperationFailed,
            ProducerBody::Canceled { .. } => OperationCanceled,
        }
    }
}

/// A producer message (one of the five producer types).
#[derive(Clone, Debug, PartialEq)]
pub struct ProducerMessage {
    /// Request id, echoed in the reply.
    pub id: Option<u64>,
    /// Target namespace.
    pub namespace: String,
    /// Operation id; `None` only on a start that asks the hub for an id.
    pub operation_id: Option<String>,
    /// Per-operation sequence number; `None` only over HTTP (hub assigns).
    pub seq: Option<u64>,
    /// The type-specific fields.
    pub body: ProducerBody,
}

/// Any message a client may send.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// One of the producer types.
    Publish(ProducerMessage),
    /// `subscribe`.
    Subscribe {
        /// Request id.
        id: Option<u64>,
        /// Namespace to watch.
        namespace: String,
        /// Which operations.
        filter: FilterSpec,
        /// Where to resume from.
        resume: Option<Position>,
        /// `conflate: true` (an extension of this hub; false when absent):
        /// while this viewer is behind, a newer progress update of an
        /// operation may replace its older queued one. Without it the
        /// viewer gets every event, or `SLOW_CLIENT` once it is too far behind.
        conflate: bool,
    },
    /// `unsubscribe`.
    Unsubscribe {
        /// Request id.
        id: Option<u64>,
        /// Namespace.
        namespace: String,
    },
    /// `cancel`.
    Cancel {
        /// Request id.
        id: Option<u64>,
        /// Namespace.
        namespace: String,
        /// Operation to cancel.
        operation_id: String,
    },
    /// `ping`.
    Ping {
        /// Request id.
        id: Option<u64>,
    },
    /// `refresh`.
    Refresh {
        /// Request id.
        id: Option<u64>,
        /// The new token.
        token: String,
    },
}

impl ClientMessage {
    /// The request id, if any.
    pub fn id(&self) -> Option<u64> {
        match self {
            ClientMessage::Publish(p) => p.id,
            ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Cancel { id, .. }
            | ClientMessage::Ping { id }
            | ClientMessage::Refresh { id, .. } => *id,
        }
    }

    /// The message's wire type, for metrics and logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Publish(p) => p.body.event_type().as_str(),
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Cancel { .. } => "cancel",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Refresh { .. } => "refresh",
        }
    }
}
