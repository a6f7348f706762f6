//! The OpenAPI document's frame; paths are collected from the routers themselves.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weft API",
        description = "Workspaces, WebAssembly workflows, a task scheduler and version tracking. \
                       Every endpoint but /api/v1/health and the docs needs `Authorization: Bearer <token>`. \
                       Errors are JSON `{code, message, details, hint}` with a five-digit code AABCC."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::api::ErrorBody)),
    tags(
        (name = "system", description = "Health"),
        (name = "auth", description = "Users and API tokens"),
        (name = "plugins", description = "WebAssembly nodes and strategies"),
        (name = "workflows", description = "Workflows of WebAssembly nodes and their runs"),
        (name = "containers", description = "Containers on the Docker engine and the host's resources"),
        (name = "projects", description = "Projects and their files"),
        (name = "notebooks", description = "Notebooks run in the kernel of a project's Jupyter session"),
        (name = "git", description = "Code versions: each project's git repository"),
        (name = "models", description = "Model versions: the registry the MLflow client writes to (/mlflow)"),
        (name = "datasets", description = "Data versions: datasets recorded from DVC files or project files, diffs, storage"),
        (name = "lineage", description = "The code, data and models workflow runs used and produced"),
    )
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
