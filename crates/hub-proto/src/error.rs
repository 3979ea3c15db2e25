//! Error codes of the contract, their severity, component and HTTP status.

use serde::Serialize;
use serde_json::Value;

/// Declares [`ErrorCode`] with each code's wire name, once: the enum,
/// [`ErrorCode::ALL`] and [`ErrorCode::as_str`] come from the one list.
macro_rules! error_codes {
    ($($code:ident => $wire:literal,)*) => {
        /// Every error code the hub sends (`error.code`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[allow(missing_docs)]
        pub enum ErrorCode {
            $($code,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    BadMessage => "BAD_MESSAGE",
    MessageTooLarge => "MESSAGE_TOO_LARGE",
    AuthRequired => "AUTH_REQUIRED",
    AuthFailed => "AUTH_FAILED",
    TokenExpired => "TOKEN_EXPIRED",
    Forbidden => "FORBIDDEN",
    RateLimited => "RATE_LIMITED",
    SeqGap => "SEQ_GAP",
    UnknownOperation => "UNKNOWN_OPERATION",
    OperationFinished => "OPERATION_FINISHED",
    SlowClient => "SLOW_CLIENT",
    IdleTimeout => "IDLE_TIMEOUT",
    ServerShutdown => "SERVER_SHUTDOWN",
    StoreUnavailable => "STORE_UNAVAILABLE",
    NotFound => "NOT_FOUND",
    BackplaneUnavailable => "BACKPLANE_UNAVAILABLE",
    BackplaneRecovered => "BACKPLANE_RECOVERED",
    UpstreamFailure => "UPSTREAM_FAILURE",
    UpstreamRecovered => "UPSTREAM_RECOVERED",
    CircuitOpen => "CIRCUIT_OPEN",
}

/// How bad an error is (`error.severity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Severity {
    Warning,
    Error,
    Critical,
}

/// Which part of the hub an error comes from (`error.component`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Component {
    Hub,
    Auth,
    RateLimit,
    Store,
    Backplane,
    Upstream,
    Client,
}

impl ErrorCode {
    /// The code named `name` on the wire (`"RATE_LIMITED"`), if any.
    pub fn from_wire(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The HTTP status the HTTP API answers this code with.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadMessage => 400,
            AuthRequired | AuthFailed | TokenExpired => 401,
            Forbidden => 403,
            UnknownOperation | NotFound => 404,
            SeqGap | OperationFinished => 409,
            MessageTooLarge => 413,
            RateLimited => 429,
            StoreUnavailable | ServerShutdown | BackplaneUnavailable | CircuitOpen => 503,
            UpstreamFailure => 502,
            SlowClient | IdleTimeout => 408,
            BackplaneRecovered | UpstreamRecovered => 200,
        }
    }

    /// Whether a message refused with this code was refused for the hub's
    /// own state (shutting down, store or backplane down), not for anything
    /// the client did: such refusals do not count towards the abuse rule.
    pub fn is_hubs_fault(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            ServerShutdown
                | StoreUnavailable
                | BackplaneUnavailable
                | UpstreamFailure
                | CircuitOpen
        )
    }

    /// The default severity of this code.
    pub fn severity(self) -> Severity {
        use ErrorCode::*;
        match self {
            BackplaneRecovered | UpstreamRecovered | SeqGap | IdleTimeout | SlowClient => {
                Severity::Warning
            }
            StoreUnavailable | BackplaneUnavailable => Severity::Critical,
            _ => Severity::Error,
        }
    }

    /// The component this code belongs to.
    pub fn component(self) -> Component {
        use ErrorCode::*;
        match self {
            AuthRequired | AuthFailed | TokenExpired | Forbidden => Component::Auth,
            RateLimited => Component::RateLimit,
            StoreUnavailable => Component::Store,
            BackplaneUnavailable | BackplaneRecovered => Component::Backplane,
            UpstreamFailure | UpstreamRecovered | CircuitOpen => Component::Upstream,
            BadMessage | MessageTooLarge => Component::Client,
            _ => Component::Hub,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected request: what the hub answers instead of acting.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtoError {
    /// The contract's code.
    pub code: ErrorCode,
    /// One human sentence.
    pub message: String,
    /// A longer explanation, if any.
    pub details: Option<String>,
    /// Machine-readable fields (e.g. `operation_id`, `expected`).
    pub data: Option<Value>,
    /// The request's `id`, echoed back.
    pub id: Option<u64>,
}

impl ProtoError {
    /// A new error with a code and a sentence.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtoError {
            code,
            message: message.into(),
            details: None,
            data: None,
            id: None,
        }
    }

    /// A `BAD_MESSAGE` error.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadMessage, message)
    }

    /// Attaches machine-readable data.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Attaches a longer explanation.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// Attaches the request id.
    pub fn with_id(mut self, id: Option<u64>) -> Self {
        self.id = id;
        self
    }

    /// `data.<key>` as a string (e.g. the `reason` of a `RATE_LIMITED`).
    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.as_ref()?.get(key)?.as_str()
    }

    /// `data.<key>` as an integer (e.g. `retry_after_ms`).
    pub fn data_u64(&self, key: &str) -> Option<u64> {
        self.data.as_ref()?.get(key)?.as_u64()
    }

    /// Adds `operation_id` to `data` (producer errors carry it).
    pub fn with_operation(mut self, operation_id: Option<&str>) -> Self {
        if let Some(op) = operation_id {
            let mut map = match self.data.take() {
                Some(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            map.entry("operation_id")
                .or_insert_with(|| Value::String(op.to_owned()));
            self.data = Some(Value::Object(map));
        }
        self
    }
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ProtoError {}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_is_read_back_from_its_wire_name() {
        for &c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(ErrorCode::from_wire("rate_limited"), None);
    }
}
