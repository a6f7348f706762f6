//! Cursor pagination shared by the listings under `/api/v1`: one page of items and the
//! cursor of the next, and the query that asks for a page.

use crate::error::{Code, Error, Result};
use serde::Deserialize;
use utoipa::IntoParams;

/// One page of a listing; pass `next_cursor` back as `cursor` for the next.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// The cursor of the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The query of a listing: where to start and how many.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Items per page, 1-200 (default 50).
    pub(crate) limit: Option<i64>,
}

impl PageParams {
    /// The page size asked for, checked.
    pub(crate) fn limit(&self) -> Result<i64> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=200).contains(&n) => Ok(n),
            Some(_) => Err(
                Error::new(Code::InvalidParameter, "limit must be between 1 and 200")
                    .details(serde_json::json!({ "parameter": "limit" })),
            ),
        }
    }
}
