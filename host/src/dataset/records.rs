//! What is stored about data versions, and every query on them: no other module of the
//! dataset domain builds SQL.

use super::file_list::{self, FileList};
use super::service::{Dataset, DatasetFile, DatasetVersion, ProjectStorage};
use crate::error::{Error, Result};
use crate::store::{Store, new_id, now_ms, time};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use std::collections::HashMap;

/// The size of object `oid` of project `project`, if it has it.
pub(super) async fn object_size(store: &Store, project: &str, oid: &str) -> Result<Option<u64>> {
    let row = sqlx::query("SELECT size FROM dvc_objects WHERE project_id = $1 AND oid = $2")
        .bind(project)
        .bind(oid)
        .fetch_optional(store.pool())
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64, _>("size"))
        .transpose()?
        .map(|size| size as u64))
}

/// An object of a project's remote as a WebDAV listing shows it.
pub(super) struct ObjectEntry {
    pub oid: String,
    pub size: u64,
    pub created_at: i64,
}

fn entry_from_row(row: &AnyRow) -> Result<ObjectEntry> {
    Ok(ObjectEntry {
        oid: row.try_get("oid")?,
        size: row.try_get::<i64, _>("size")? as u64,
        created_at: row.try_get("created_at")?,
    })
}

/// Object `oid` of project `project`, if it has it.
pub(super) async fn object(store: &Store, project: &str, oid: &str) -> Result<Option<ObjectEntry>> {
    sqlx::query("SELECT oid, size, created_at FROM dvc_objects WHERE project_id = $1 AND oid = $2")
        .bind(project)
        .bind(oid)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(entry_from_row)
        .transpose()
}

/// The objects of project `project` whose oid starts with `prefix` (two hex digits), by oid:
/// a range of the primary key, so that both backends read only those rows.
pub(super) async fn objects_under(
    store: &Store,
    project: &str,
    prefix: &str,
) -> Result<Vec<ObjectEntry>> {
    sqlx::query(
        "SELECT oid, size, created_at FROM dvc_objects \
         WHERE project_id = $1 AND oid >= $2 AND oid < $3 ORDER BY oid",
    )
    .bind(project)
    .bind(prefix)
    // '~' sorts after every hex digit and '.'.
    .bind(format!("{prefix}~"))
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(entry_from_row)
    .collect()
}

/// The first two hex digits of the oids of project `project`: the folders of its layout.
pub(super) async fn object_prefixes(store: &Store, project: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT SUBSTR(oid, 1, 2) AS prefix FROM dvc_objects WHERE project_id = $1 \
         ORDER BY prefix",
    )
    .bind(project)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(|r| Ok(r.try_get("prefix")?)).collect()
}

/// Forgets object `oid` of project `project`, and its bytes in the project's usage; whether
/// it had it.
pub(super) async fn delete_object(store: &Store, project: &str, oid: &str) -> Result<bool> {
    let mut tx = store.pool().begin().await?;
    let deleted =
        sqlx::query("DELETE FROM dvc_objects WHERE project_id = $1 AND oid = $2 RETURNING size")
            .bind(project)
            .bind(oid)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(row) = deleted else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE dvc_usage SET objects = objects - 1, bytes = bytes - $2 WHERE project_id = $1",
    )
    .bind(project)
    .bind(row.try_get::<i64, _>("size")?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A new object of a project's remote, stored already, to be made visible.
pub(super) struct NewObject {
    pub project: String,
    pub oid: String,
    pub size: u64,
    pub by: String,
}

/// How many objects one statement inserts (five parameters each: far below either
/// backend's limit).
const INSERT_ROWS: usize = 64;

/// Makes `objects` visible and counts the new ones in their projects' usage, in one
/// transaction; whether each is new (false: its project had it, or it came earlier in
/// `objects`).
pub(super) async fn insert_objects(store: &Store, objects: &[NewObject]) -> Result<Vec<bool>> {
    let mut created = vec![false; objects.len()];
    let mut added: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut tx = store.pool().begin().await?;
    for (chunk_index, chunk) in objects.chunks(INSERT_ROWS).enumerate() {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let n = 5 * i;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO dvc_objects (project_id, oid, size, uploaded_by, created_at) VALUES {} \
             ON CONFLICT (project_id, oid) DO NOTHING RETURNING project_id, oid",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        let at = now_ms();
        for object in chunk {
            query = query
                .bind(&object.project)
                .bind(&object.oid)
                .bind(object.size as i64)
                .bind(&object.by)
                .bind(at);
        }
        for row in query.fetch_all(&mut *tx).await? {
            let (project, oid): (String, String) =
                (row.try_get("project_id")?, row.try_get("oid")?);
            let offset = chunk_index * INSERT_ROWS;
            let Some(i) = chunk
                .iter()
                .enumerate()
                .position(|(i, o)| !created[offset + i] && o.project == project && o.oid == oid)
            else {
                continue;
            };
            created[offset + i] = true;
            let usage = added.entry(&chunk[i].project).or_default();
            usage.0 += 1;
            usage.1 += chunk[i].size as i64;
        }
    }
    for (project, (count, bytes)) in added {
        sqlx::query(
            "INSERT INTO dvc_usage (project_id, objects, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id) DO UPDATE SET objects = dvc_usage.objects + excluded.objects, \
             bytes = dvc_usage.bytes + excluded.bytes",
        )
        .bind(project)
        .bind(count)
        .bind(bytes)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(created)
}

/// What an upload of object `oid` to project `project` needs to know first, in one query:
/// the bytes the objects of every project of its owner `owner` take, and the object's size
/// if the project has it (when it is named).
pub(super) async fn before_upload(
    store: &Store,
    owner: &str,
    project: &str,
    oid: Option<&str>,
) -> Result<(u64, Option<u64>)> {
    let row = sqlx::query(
        "SELECT (SELECT CAST(COALESCE(SUM(u.bytes), 0) AS BIGINT) FROM dvc_usage u \
           JOIN projects p ON p.id = u.project_id WHERE p.owner_id = $1) AS used, \
         (SELECT size FROM dvc_objects WHERE project_id = $2 AND oid = $3) AS size",
    )
    .bind(owner)
    .bind(project)
    .bind(oid)
    .fetch_one(store.pool())
    .await?;
    let size: Option<i64> = row.try_get("size")?;
    Ok((
        row.try_get::<i64, _>("used")? as u64,
        size.map(|s| s as u64),
    ))
}

/// Forgets every object of project `project` and its usage.
pub(super) async fn delete_objects(store: &Store, project: &str) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    for sql in [
        "DELETE FROM dvc_objects WHERE project_id = $1",
        "DELETE FROM dvc_usage WHERE project_id = $1",
    ] {
        sqlx::query(sql).bind(project).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The size of every object of project `project`, by oid.
pub(super) async fn object_sizes(store: &Store, project: &str) -> Result<HashMap<String, u64>> {
    let rows = sqlx::query("SELECT oid, size FROM dvc_objects WHERE project_id = $1")
        .bind(project)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("oid")?, r.try_get::<i64, _>("size")? as u64)))
        .collect()
}

const VERSION_COLUMNS: &str = "v.id, v.dataset_id, v.number, v.oid, v.git_commit, v.source, \
     v.created_by, u.name AS created_by_name, v.created_at, v.files, v.bytes, v.complete";

/// The version in `row`, whose id and time are in columns `id` and `created_at`.
fn version_from_row(row: &AnyRow, id: &str, created_at: &str) -> Result<DatasetVersion> {
    Ok(DatasetVersion {
        id: row.try_get(id)?,
        number: row.try_get("number")?,
        oid: row.try_get("oid")?,
        git_commit: row.try_get("git_commit")?,
        source: row.try_get("source")?,
        created_by: row.try_get("created_by")?,
        created_by_name: row.try_get("created_by_name")?,
        created_at: time(row.try_get(created_at)?),
        files: row.try_get("files")?,
        bytes: row.try_get("bytes")?,
        complete: row.try_get::<i64, _>("complete")? != 0,
    })
}

fn dataset_from_row(row: &AnyRow) -> Result<Dataset> {
    let latest = match row.try_get::<Option<String>, _>("v_id")? {
        Some(_) => Some(version_from_row(row, "v_id", "v_created_at")?),
        None => None,
    };
    Ok(Dataset {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        created_at: time(row.try_get("created_at")?),
        versions: latest.as_ref().map_or(0, |v| v.number),
        latest,
    })
}

/// Datasets with their latest version, oldest first: of `owner` (every one's when absent),
/// of `project` (every project's when absent), or the one `id`.
pub(super) async fn datasets(
    store: &Store,
    owner: Option<&str>,
    project: Option<&str>,
    id: Option<&str>,
) -> Result<Vec<Dataset>> {
    let rows = sqlx::query(
        "SELECT d.id, d.project_id, d.owner_id, d.name, d.created_at, v.id AS v_id, v.number, \
         v.oid, v.git_commit, v.source, v.created_by, u.name AS created_by_name, \
         v.created_at AS v_created_at, v.files, v.bytes, v.complete \
         FROM datasets d \
         LEFT JOIN dataset_versions v ON v.dataset_id = d.id AND v.number = \
           (SELECT MAX(number) FROM dataset_versions WHERE dataset_id = d.id) \
         LEFT JOIN users u ON u.id = v.created_by \
         WHERE ($1 IS NULL OR d.owner_id = $1) AND ($2 IS NULL OR d.project_id = $2) \
           AND ($3 IS NULL OR d.id = $3) \
         ORDER BY d.created_at, d.id",
    )
    .bind(owner)
    .bind(project)
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(dataset_from_row).collect()
}

/// The dataset `name` of project `project` (owned by `owner`), made if new.
pub(super) async fn dataset(
    store: &Store,
    project: &str,
    owner: &str,
    name: &str,
) -> Result<Dataset> {
    sqlx::query(
        "INSERT INTO datasets (id, project_id, owner_id, name, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (project_id, name) DO NOTHING",
    )
    .bind(new_id())
    .bind(project)
    .bind(owner)
    .bind(name)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    let row = sqlx::query("SELECT id FROM datasets WHERE project_id = $1 AND name = $2")
        .bind(project)
        .bind(name)
        .fetch_one(store.pool())
        .await?;
    let id: String = row.try_get("id")?;
    let mut found = datasets(store, None, None, Some(&id)).await?;
    found
        .pop()
        .ok_or_else(|| Error::internal("a dataset vanished as it was made"))
}

/// The versions of dataset `id`, oldest first.
pub(super) async fn versions(store: &Store, id: &str) -> Result<Vec<DatasetVersion>> {
    let rows = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM dataset_versions v LEFT JOIN users u ON u.id = v.created_by \
         WHERE v.dataset_id = $1 ORDER BY v.number"
    ))
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| version_from_row(row, "id", "created_at"))
        .collect()
}

/// The files of version `id`, as stored (none before its list is recorded).
pub(super) async fn files(store: &Store, id: &str) -> Result<FileList> {
    let row = sqlx::query("SELECT files FROM dataset_file_lists WHERE version_id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    match row {
        Some(row) => Ok(FileList::stored(row.try_get("files")?)),
        None => Ok(FileList::empty()),
    }
}

async fn insert_files(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    version: &str,
    files: &[DatasetFile],
) -> Result<()> {
    sqlx::query("INSERT INTO dataset_file_lists (version_id, files) VALUES ($1, $2)")
        .bind(version)
        .bind(file_list::encode(files))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Converts the files of up to `batch` versions recorded before their lists were one value
/// (a row per file in `dataset_files`, before migration 0024) into one value each; how many
/// it converted. Each version's list and the removal of its rows are one transaction, so a
/// crash half way leaves every version listed once, one way or the other.
pub(super) async fn convert_file_rows(store: &Store, batch: i64) -> Result<usize> {
    let versions = sqlx::query("SELECT DISTINCT version_id FROM dataset_files LIMIT $1")
        .bind(batch)
        .fetch_all(store.pool())
        .await?;
    for row in &versions {
        let version: String = row.try_get("version_id")?;
        let mut tx = store.pool().begin().await?;
        let files = sqlx::query(
            "SELECT path, md5, size FROM dataset_files WHERE version_id = $1 ORDER BY path",
        )
        .bind(&version)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(DatasetFile {
                path: r.try_get("path")?,
                md5: r.try_get("md5")?,
                size: r.try_get("size")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        sqlx::query(
            "INSERT INTO dataset_file_lists (version_id, files) VALUES ($1, $2) \
             ON CONFLICT (version_id) DO NOTHING",
        )
        .bind(&version)
        .bind(file_list::encode(&files))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM dataset_files WHERE version_id = $1")
            .bind(&version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(versions.len())
}

/// Stores `version` of its dataset with its `files` (when known), in one transaction.
pub(super) async fn insert_version(
    store: &Store,
    dataset: &str,
    version: &DatasetVersion,
    files: Option<&[DatasetFile]>,
) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO dataset_versions (id, dataset_id, number, oid, git_commit, source, created_by, \
         created_at, files, bytes, complete) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&version.id)
    .bind(dataset)
    .bind(version.number)
    .bind(&version.oid)
    .bind(&version.git_commit)
    .bind(&version.source)
    .bind(&version.created_by)
    .bind(version.created_at.timestamp_millis())
    .bind(version.files)
    .bind(version.bytes)
    .bind(i64::from(version.complete))
    .execute(&mut *tx)
    .await?;
    if let Some(files) = files {
        insert_files(&mut tx, &version.id, files).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records the files of version `id`, whose manifest is now known.
pub(super) async fn complete_version(store: &Store, id: &str, files: &[DatasetFile]) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    let done = sqlx::query(
        "UPDATE dataset_versions SET complete = 1, files = $2, bytes = $3 WHERE id = $1 AND complete = 0",
    )
    .bind(id)
    .bind(files.len() as i64)
    .bind(files.iter().map(|f| f.size).sum::<i64>())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() > 0 {
        insert_files(&mut tx, id, files).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Storage used by each project of user `owner`, oldest project first.
pub(super) async fn storage(store: &Store, owner: &str) -> Result<Vec<ProjectStorage>> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, \
         CAST(COALESCE(u.bytes, 0) AS BIGINT) AS stored, CAST(COALESCE(u.objects, 0) AS BIGINT) AS objects, \
         (SELECT CAST(COALESCE(SUM(v.bytes), 0) AS BIGINT) FROM dataset_versions v \
            JOIN datasets d ON d.id = v.dataset_id WHERE d.project_id = p.id) AS logical \
         FROM projects p LEFT JOIN dvc_usage u ON u.project_id = p.id \
         WHERE p.owner_id = $1 ORDER BY p.created_at, p.id",
    )
    .bind(owner)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ProjectStorage {
                project_id: r.try_get("id")?,
                name: r.try_get("name")?,
                stored_bytes: r.try_get("stored")?,
                objects: r.try_get("objects")?,
                logical_bytes: r.try_get("logical")?,
            })
        })
        .collect()
}

/// Forgets the datasets of project `project` and their versions.
pub(super) async fn delete_datasets(store: &Store, project: &str) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    for sql in [
        "DELETE FROM dataset_file_lists WHERE version_id IN (SELECT v.id FROM dataset_versions v \
           JOIN datasets d ON d.id = v.dataset_id WHERE d.project_id = $1)",
        "DELETE FROM dataset_versions WHERE dataset_id IN (SELECT id FROM datasets WHERE project_id = $1)",
        "DELETE FROM datasets WHERE project_id = $1",
    ] {
        sqlx::query(sql).bind(project).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
