//! Query parameters as the handlers read them: a map in which a parameter
//! given with an empty value (`?state=&kind=&limit=`, a form left blank)
//! counts as absent, as most REST APIs read it, instead of being refused
//! as a bad value. Path segments likewise ([`ApiPath`]): a segment that
//! cannot be read is the API's JSON `BAD_MESSAGE`, not axum's plain text.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::response::Response;
use hub_proto::ProtoError;
use serde::de::DeserializeOwned;

/// The request's query parameters without the empty ones (the last value
/// of a name given twice wins).
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|e| {
                crate::http_api::error_response(
                    ProtoError::bad(format!("the query string cannot be read: {e}")),
                    None,
                )
            })?;
        Ok(Params(
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        ))
    }
}

/// A route's path segments, percent-decoded. One that does not decode to
/// UTF-8 (`/operations/%FF/events`) is refused with a JSON 400
/// `BAD_MESSAGE` and `Connection: close` (a body may be left unread).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(crate::http_api::closing(crate::http_api::error_response(
                ProtoError::bad(format!("the URL path cannot be read: {}", e.body_text())),
                None,
            ))),
        }
    }
}
