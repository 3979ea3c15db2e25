//! Query parameters as the handlers read them: a map in which a parameter
//! given with an empty value (`?state=&kind=&limit=`, a form left blank)
//! counts as absent, as most REST APIs read it, instead of being refused
//! as a bad value.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::response::Response;
use hub_proto::ProtoError;

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
