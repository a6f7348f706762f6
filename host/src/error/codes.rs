//! The error code table: every code Weft answers with, in one place.
//!
//! A code is five digits `AABCC`: `AA` the module (10 containers and workspaces, 20 notebooks and
//! runtime, 30 versioning, 40 workflows, 50 scheduler, 60 plugins, 90 API and auth), `B` the kind
//! (1 system, 2 business, 3 permission, 4 data) and `CC` a number. The HTTP status follows the kind.

use serde::Serialize;

/// What went wrong, at the level a client can act on. The numeric code is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    // 90: API and auth.
    Internal,
    Unavailable,
    RouteNotFound,
    MethodNotAllowed,
    NotFound,
    Conflict,
    Unauthenticated,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
    Forbidden,
    TokenOutlivesParent,
    UserDisabled,
    BadCredentials,
    WrongPassword,
    SignInRateLimited,
    MalformedJson,
    InvalidField,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidParameter,
    // 10: containers and workspaces.
    ContainerNoResources,
    ContainerEngineUnavailable,
    ContainerEngineFailed,
    ContainerEngineTimeout,
    ContainerNotFound,
    ContainerQuota,
    ContainerImageMissing,
    ContainerStartFailed,
    ContainerImageNotAllowed,
    ProjectStorage,
    ProjectNotFound,
    ProjectExists,
    ProjectFileNotFound,
    ProjectFileTooLarge,
    SessionSyncFailed,
    SessionNotFound,
    SessionConflict,
    SessionNotReady,
    SessionQuotaExceeded,
    SessionForeignRequest,
    ProjectPathConflict,
    UploadIncomplete,
    // 20: notebooks and their kernels.
    KernelUnavailable,
    NotebookNotFound,
    NotebookExists,
    NotebookCellNotFound,
    NotebookInvalid,
    NotebookQueueFull,
    // 30: versioning (code).
    GitUnavailable,
    GitFailed,
    GitNothingToCommit,
    GitRefNotFound,
    GitBranchExists,
    GitCurrentBranch,
    GitUncommittedChanges,
    GitConflict,
    GitPathNotFound,
    GitEmpty,
    GitOverLimits,
    GitInvalidRefName,
    GitPushTooLarge,
    // 30: versioning (models: the MLflow tracking server and /api/v1/models).
    ModelStorage,
    ModelNotFound,
    ModelExists,
    ModelInvalidState,
    ModelForbidden,
    ModelInvalidParameter,
    // 30: versioning (data: the DVC remote and /api/v1/datasets).
    DatasetStorage,
    DatasetNotFound,
    DatasetVersionNotFound,
    DataObjectNotFound,
    DatasetQuota,
    DataObjectCorrupt,
    DatasetInvalid,
    DatasetFileNotFound,
    DatasetFileTooLarge,
    DatasetNoProject,
    DatasetArtifactNotFound,
    // 40: workflows.
    RunFinished,
    WorkflowBusy,
    WorkflowInvalid,
    WorkflowRunInputs,
    WorkflowRunLimit,
    WorkflowOutputLimit,
    // 50: scheduler.
    SchedulerNoInstance,
    SchedulerInstanceUnreachable,
    SchedulerBusy,
    SchedulerTaskNotFound,
    SchedulerWrongInstance,
    SchedulerUnknownModel,
    SchedulerUnknownInstance,
    SchedulerInstanceExists,
    SchedulerNotInstance,
    // 60: plugins and their runtime.
    PluginCapacity,
    PluginStorage,
    PluginExists,
    PluginInUse,
    PluginBuiltin,
    PluginWrongKind,
    PluginFailed,
    PluginLimit,
    PluginNotWasm,
    PluginNotComponent,
    PluginWrongWorld,
    PluginInvalid,
    PluginBadInputs,
    PluginUserBusy,
}

/// The kind digit of a code: it decides the HTTP status family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    System,
    Business,
    Permission,
    Data,
}

impl Code {
    /// Every code, for documentation and for tests that check the table's invariants.
    pub const ALL: &'static [Code] = &[
        Code::Internal,
        Code::Unavailable,
        Code::RouteNotFound,
        Code::MethodNotAllowed,
        Code::NotFound,
        Code::Conflict,
        Code::Unauthenticated,
        Code::InvalidToken,
        Code::TokenExpired,
        Code::TokenRevoked,
        Code::Forbidden,
        Code::TokenOutlivesParent,
        Code::UserDisabled,
        Code::BadCredentials,
        Code::WrongPassword,
        Code::SignInRateLimited,
        Code::MalformedJson,
        Code::InvalidField,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::InvalidParameter,
        Code::ContainerNoResources,
        Code::ContainerEngineUnavailable,
        Code::ContainerEngineFailed,
        Code::ContainerEngineTimeout,
        Code::ContainerNotFound,
        Code::ContainerQuota,
        Code::ContainerImageMissing,
        Code::ContainerStartFailed,
        Code::ContainerImageNotAllowed,
        Code::ProjectStorage,
        Code::ProjectNotFound,
        Code::ProjectExists,
        Code::ProjectFileNotFound,
        Code::ProjectFileTooLarge,
        Code::SessionSyncFailed,
        Code::SessionNotFound,
        Code::SessionConflict,
        Code::SessionNotReady,
        Code::SessionQuotaExceeded,
        Code::SessionForeignRequest,
        Code::ProjectPathConflict,
        Code::UploadIncomplete,
        Code::KernelUnavailable,
        Code::NotebookNotFound,
        Code::NotebookExists,
        Code::NotebookCellNotFound,
        Code::NotebookInvalid,
        Code::NotebookQueueFull,
        Code::GitUnavailable,
        Code::GitFailed,
        Code::GitNothingToCommit,
        Code::GitRefNotFound,
        Code::GitBranchExists,
        Code::GitCurrentBranch,
        Code::GitUncommittedChanges,
        Code::GitConflict,
        Code::GitPathNotFound,
        Code::GitEmpty,
        Code::GitOverLimits,
        Code::GitInvalidRefName,
        Code::GitPushTooLarge,
        Code::ModelStorage,
        Code::ModelNotFound,
        Code::ModelExists,
        Code::ModelInvalidState,
        Code::ModelForbidden,
        Code::ModelInvalidParameter,
        Code::DatasetStorage,
        Code::DatasetNotFound,
        Code::DatasetVersionNotFound,
        Code::DataObjectNotFound,
        Code::DatasetQuota,
        Code::DataObjectCorrupt,
        Code::DatasetInvalid,
        Code::DatasetFileNotFound,
        Code::DatasetFileTooLarge,
        Code::DatasetNoProject,
        Code::DatasetArtifactNotFound,
        Code::RunFinished,
        Code::WorkflowBusy,
        Code::WorkflowInvalid,
        Code::WorkflowRunInputs,
        Code::WorkflowRunLimit,
        Code::WorkflowOutputLimit,
        Code::SchedulerNoInstance,
        Code::SchedulerInstanceUnreachable,
        Code::SchedulerBusy,
        Code::SchedulerTaskNotFound,
        Code::SchedulerWrongInstance,
        Code::SchedulerUnknownModel,
        Code::SchedulerUnknownInstance,
        Code::SchedulerInstanceExists,
        Code::SchedulerNotInstance,
        Code::PluginCapacity,
        Code::PluginStorage,
        Code::PluginExists,
        Code::PluginInUse,
        Code::PluginBuiltin,
        Code::PluginWrongKind,
        Code::PluginFailed,
        Code::PluginLimit,
        Code::PluginNotWasm,
        Code::PluginNotComponent,
        Code::PluginWrongWorld,
        Code::PluginInvalid,
        Code::PluginBadInputs,
        Code::PluginUserBusy,
    ];

    /// The five-digit code and the HTTP status it is answered with.
    pub const fn spec(self) -> (u32, u16) {
        match self {
            Code::Internal => (90101, 500),
            Code::Unavailable => (90102, 503),
            Code::RouteNotFound => (90201, 404),
            Code::MethodNotAllowed => (90202, 405),
            Code::NotFound => (90203, 404),
            Code::Conflict => (90204, 409),
            Code::Unauthenticated => (90301, 401),
            Code::InvalidToken => (90302, 401),
            Code::TokenExpired => (90303, 401),
            Code::TokenRevoked => (90304, 401),
            Code::Forbidden => (90305, 403),
            Code::TokenOutlivesParent => (90306, 403),
            Code::UserDisabled => (90307, 401),
            Code::BadCredentials => (90308, 401),
            Code::WrongPassword => (90309, 403),
            Code::SignInRateLimited => (90205, 429),
            Code::MalformedJson => (90401, 400),
            Code::InvalidField => (90402, 422),
            Code::PayloadTooLarge => (90403, 413),
            Code::UnsupportedMediaType => (90404, 415),
            Code::InvalidParameter => (90405, 400),
            Code::ContainerNoResources => (10101, 503),
            Code::ContainerEngineUnavailable => (10102, 503),
            Code::ContainerEngineFailed => (10103, 502),
            Code::ContainerEngineTimeout => (10104, 504),
            Code::ContainerNotFound => (10201, 404),
            Code::ContainerQuota => (10202, 429),
            Code::ContainerImageMissing => (10203, 422),
            Code::ContainerStartFailed => (10204, 422),
            Code::ContainerImageNotAllowed => (10301, 403),
            Code::ProjectStorage => (10105, 503),
            Code::ProjectNotFound => (10205, 404),
            Code::ProjectExists => (10206, 409),
            Code::ProjectFileNotFound => (10207, 404),
            Code::ProjectFileTooLarge => (10401, 413),
            Code::SessionSyncFailed => (10106, 502),
            Code::SessionNotFound => (10208, 404),
            Code::SessionConflict => (10209, 409),
            Code::SessionNotReady => (10210, 409),
            Code::SessionQuotaExceeded => (10211, 429),
            Code::SessionForeignRequest => (10305, 403),
            Code::ProjectPathConflict => (10212, 409),
            Code::UploadIncomplete => (10213, 400),
            Code::KernelUnavailable => (20101, 502),
            Code::NotebookNotFound => (20201, 404),
            Code::NotebookExists => (20202, 409),
            Code::NotebookCellNotFound => (20203, 404),
            Code::NotebookInvalid => (20401, 422),
            Code::NotebookQueueFull => (20301, 403),
            Code::GitUnavailable => (30101, 503),
            Code::GitFailed => (30102, 500),
            Code::GitNothingToCommit => (30201, 409),
            Code::GitRefNotFound => (30202, 404),
            Code::GitBranchExists => (30203, 409),
            Code::GitCurrentBranch => (30204, 409),
            Code::GitUncommittedChanges => (30205, 409),
            Code::GitConflict => (30206, 409),
            Code::GitPathNotFound => (30207, 404),
            Code::GitEmpty => (30208, 409),
            Code::GitOverLimits => (30209, 409),
            Code::GitInvalidRefName => (30401, 422),
            Code::GitPushTooLarge => (30402, 413),
            Code::ModelStorage => (30110, 503),
            Code::ModelNotFound => (30210, 404),
            Code::ModelExists => (30211, 409),
            Code::ModelInvalidState => (30212, 409),
            Code::ModelForbidden => (30310, 403),
            Code::ModelInvalidParameter => (30410, 400),
            Code::DatasetStorage => (30120, 503),
            Code::DatasetNotFound => (30220, 404),
            Code::DatasetVersionNotFound => (30221, 404),
            Code::DataObjectNotFound => (30222, 404),
            Code::DatasetQuota => (30223, 429),
            Code::DataObjectCorrupt => (30420, 400),
            Code::DatasetInvalid => (30421, 422),
            Code::DatasetFileNotFound => (30224, 404),
            Code::DatasetFileTooLarge => (30422, 413),
            Code::DatasetNoProject => (30225, 409),
            Code::DatasetArtifactNotFound => (30226, 404),
            Code::RunFinished => (40201, 409),
            Code::WorkflowBusy => (40202, 409),
            Code::WorkflowInvalid => (40401, 422),
            Code::WorkflowRunInputs => (40402, 422),
            Code::WorkflowRunLimit => (40203, 429),
            Code::WorkflowOutputLimit => (40204, 422),
            Code::SchedulerNoInstance => (50101, 503),
            Code::SchedulerInstanceUnreachable => (50102, 502),
            Code::SchedulerBusy => (50103, 503),
            Code::SchedulerTaskNotFound => (50201, 404),
            Code::SchedulerWrongInstance => (50202, 409),
            Code::SchedulerUnknownModel => (50203, 404),
            Code::SchedulerUnknownInstance => (50204, 404),
            Code::SchedulerInstanceExists => (50205, 409),
            Code::SchedulerNotInstance => (50301, 403),
            Code::PluginCapacity => (60101, 503),
            Code::PluginStorage => (60102, 500),
            Code::PluginExists => (60201, 409),
            Code::PluginInUse => (60202, 409),
            Code::PluginBuiltin => (60203, 409),
            Code::PluginWrongKind => (60204, 409),
            Code::PluginFailed => (60205, 422),
            Code::PluginLimit => (60206, 422),
            Code::PluginNotWasm => (60401, 422),
            Code::PluginNotComponent => (60402, 422),
            Code::PluginWrongWorld => (60403, 422),
            Code::PluginInvalid => (60404, 422),
            Code::PluginBadInputs => (60405, 422),
            Code::PluginUserBusy => (60207, 429),
        }
    }

    /// The code as the five-character string clients see.
    pub fn as_string(self) -> String {
        self.spec().0.to_string()
    }

    /// The HTTP status for this code.
    pub const fn status(self) -> u16 {
        self.spec().1
    }

    /// The kind digit read back from the code.
    pub const fn kind(self) -> Kind {
        match (self.spec().0 / 100) % 10 {
            1 => Kind::System,
            2 => Kind::Business,
            3 => Kind::Permission,
            _ => Kind::Data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_five_digit_and_status_follows_kind() {
        let mut seen = HashSet::new();
        for &code in Code::ALL {
            let (n, status) = code.spec();
            assert!((10000..100000).contains(&n), "{code:?} is not five digits");
            assert!(seen.insert(n), "{code:?} reuses {n}");
            let module = n / 1000;
            assert!(
                [10, 20, 30, 40, 50, 60, 90].contains(&module),
                "{code:?}: unknown module {module}"
            );
            let kind = (n / 100) % 10;
            assert!(
                (1..=4).contains(&kind),
                "{code:?} ({n}): kind digit {kind} is none of 1 system, 2 business, 3 permission, 4 data"
            );
            let ok = match code.kind() {
                Kind::System => status >= 500,
                Kind::Business => (400..500).contains(&status) && status != 401 && status != 403,
                Kind::Permission => status == 401 || status == 403,
                Kind::Data => [400, 413, 415, 422].contains(&status),
            };
            assert!(
                ok,
                "{code:?} ({n}) answers {status}, which does not fit its kind"
            );
        }
    }
}
