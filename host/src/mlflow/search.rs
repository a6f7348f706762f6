//! Searching runs: experiments the caller may reach, MLflow's filter and order-by grammar
//! (compiled to SQL over the latest metrics, params and tags), offset page tokens.

use super::experiments::stage_condition;
use super::filter::{self, Bind};
use super::run_view::{self, RUN_COLUMNS, Run};
use super::service::{Tracking, next_token, page_offset};
use crate::auth::Caller;
use crate::error::Result;
use serde::Serialize;

/// A page of runs as the protocol answers a search.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RunsPage {
    runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// A runs search as the protocol asks it.
#[derive(Debug, Default)]
pub(crate) struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: Option<String>,
    pub view: Option<String>,
    pub max_results: Option<i64>,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

impl Tracking {
    /// The runs of `search.experiment_ids` that match, a page at a time.
    pub(crate) async fn search_runs(&self, caller: &Caller, search: RunSearch) -> Result<RunsPage> {
        for id in &search.experiment_ids {
            self.experiment_access(caller, id).await?;
        }
        if search.experiment_ids.is_empty() {
            return Ok(RunsPage::default());
        }
        let limit = search.max_results.unwrap_or(1000).clamp(1, 50000);
        let offset = page_offset(search.page_token.as_deref())?;
        let mut binds: Vec<Bind> = search
            .experiment_ids
            .iter()
            .cloned()
            .map(Bind::Text)
            .collect();
        let experiments = (1..=binds.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut conditions = vec![
            format!("r.experiment_id IN ({experiments})"),
            stage_condition("r.lifecycle_stage", search.view.as_deref()),
        ];
        let compiled = filter::compile(
            filter::Scope::Runs,
            search.filter.as_deref().unwrap_or_default(),
            binds.len() + 1,
        )?;
        conditions.extend(compiled.sql);
        binds.extend(compiled.binds);
        let mut ordering = filter::Compiled::default();
        let mut orders = Vec::new();
        for clause in &search.order_by {
            orders.push(filter::order(clause, binds.len() + 1, &mut ordering)?);
        }
        binds.extend(ordering.binds);
        orders.push("r.start_time DESC, r.id".into());
        let sql = format!(
            "SELECT {} FROM mlflow_runs r WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
            RUN_COLUMNS,
            conditions.join(" AND "),
            orders.join(", ")
        );
        let rows = filter::bind_all(sqlx::query(&sql), binds)
            .fetch_all(self.store.pool())
            .await?;
        Ok(RunsPage {
            runs: run_view::load(self.store.pool(), &rows).await?,
            next_page_token: next_token(offset, rows.len(), limit),
        })
    }
}
