//! MLflow's search grammar: a filter of comparisons joined by `AND`
//! (`metrics.acc > 0.9 and params.lr = '0.01'`, `tags."my tag" LIKE 'a%'`,
//! `attributes.status IN ('FINISHED', 'FAILED')`, `tags.x IS NULL`) and, for runs, `order_by`
//! clauses (`metrics.acc DESC`), compiled to SQL. Runs are searched over the runs table `r`,
//! experiments over `e`, registered models over `m` and model versions over `v` joined to
//! their model `m`, each with the fields MLflow lets one name there. LIKE is case-sensitive
//! and ILIKE is not, as in MLflow (the store makes SQLite's LIKE case-sensitive). An error
//! names the position in the filter where it went wrong, as INVALID_PARAMETER_VALUE.

use super::wire::invalid;
use crate::error::Result;

/// A value bound to a compiled query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Real(f64),
}

/// What a filter searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scope {
    Runs,
    Experiments,
    RegisteredModels,
    ModelVersions,
}

/// What a comparison or an order looks at.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Metric(String),
    Param(String),
    Tag(String),
    /// A column of the searched table, with its alias (`r.status`).
    Attribute(&'static str),
}

/// The tag MLflow marks prompts with: registry searches treat a model without it as no prompt.
const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(f64),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

/// Splits a filter into tokens, each with its byte position.
fn tokens(text: &str) -> Result<Vec<(usize, Token)>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let token = match c {
            b'(' => {
                i += 1;
                Token::Open
            }
            b')' => {
                i += 1;
                Token::Close
            }
            b',' => {
                i += 1;
                Token::Comma
            }
            b'\'' | b'"' | b'`' => {
                let end = text[i + 1..].find(c as char).ok_or_else(|| {
                    error(text, start, "a quoted string or key that is never closed")
                })?;
                i += end + 2;
                Token::Quoted(text[start + 1..start + 1 + end].to_string())
            }
            b'=' => {
                i += 1;
                Token::Op("=")
            }
            b'!' | b'<' | b'>' => {
                let two = text.get(i..i + 2).unwrap_or_default();
                let op = match two {
                    "!=" | "<>" => "!=",
                    ">=" => ">=",
                    "<=" => "<=",
                    _ if c == b'<' => "<",
                    _ if c == b'>' => ">",
                    _ => return Err(error(text, start, "'!' not followed by '='")),
                };
                i += if matches!(two, "!=" | "<>" | ">=" | "<=") {
                    2
                } else {
                    1
                };
                Token::Op(op)
            }
            b'-' | b'+' | b'.' | b'0'..=b'9'
                if c.is_ascii_digit()
                    || bytes
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == b'.') =>
            {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
                let word = &text[start..i];
                Token::Number(
                    word.parse()
                        .map_err(|_| error(text, start, &format!("a number, not '{word}'")))?,
                )
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'.' | b'/' | b':' | b'-'))
                {
                    // `attr."key"`: the word stops at the dot before a quote.
                    if bytes[i] == b'.' && matches!(bytes.get(i + 1), Some(b'"' | b'`' | b'\'')) {
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                Token::Word(text[start..i].to_string())
            }
            _ => {
                return Err(error(
                    text,
                    start,
                    &format!(
                        "unexpected character '{}'",
                        &text[start..].chars().next().unwrap_or(' ')
                    ),
                ));
            }
        };
        out.push((start, token));
    }
    Ok(out)
}

/// An INVALID_PARAMETER_VALUE naming the position.
fn error(text: &str, at: usize, what: &str) -> crate::error::Error {
    invalid(format!("Invalid filter '{text}' at position {at}: {what}"))
        .details(serde_json::json!({ "position": at }))
}

/// The field an identifier names in `scope`: `metrics.acc`, `params."my key"` (the quoted
/// key follows as the next token), `attributes.status`, or a bare attribute name (`status`).
fn field(scope: Scope, word: &str, quoted_key: Option<&str>) -> Option<Field> {
    let (entity, key) = match (word.strip_suffix('.'), quoted_key) {
        (Some(entity), Some(key)) => (entity, key),
        _ => word.split_once('.').unwrap_or(("attributes", word)),
    };
    let key = key.to_string();
    match (entity.to_ascii_lowercase().as_str(), scope) {
        ("metric" | "metrics", Scope::Runs) => Some(Field::Metric(key)),
        ("param" | "params" | "parameter" | "parameters", Scope::Runs) => Some(Field::Param(key)),
        ("tag" | "tags", _) => Some(Field::Tag(key)),
        ("attribute" | "attributes" | "attr" | "run", Scope::Runs)
        | ("attribute" | "attributes", _) => attribute(scope, &key).map(Field::Attribute),
        _ => None,
    }
}

/// The column (with its table's alias) for an attribute MLflow lets one search or order by
/// in `scope`.
fn attribute(scope: Scope, name: &str) -> Option<&'static str> {
    Some(match (scope, name) {
        (Scope::Runs, "run_id" | "run_uuid") => "r.id",
        (Scope::Runs, "run_name") => "r.name",
        (Scope::Runs, "status") => "r.status",
        (Scope::Runs, "start_time" | "created" | "Created") => "r.start_time",
        (Scope::Runs, "end_time") => "r.end_time",
        (Scope::Runs, "artifact_uri") => "r.artifact_uri",
        (Scope::Runs, "user_id") => "r.user_name",
        (Scope::Experiments, "name") => "e.name",
        (Scope::Experiments, "creation_time") => "e.created_at",
        (Scope::Experiments, "last_update_time") => "e.updated_at",
        (Scope::RegisteredModels | Scope::ModelVersions, "name") => "m.name",
        (Scope::ModelVersions, "version_number") => "v.version",
        (Scope::ModelVersions, "run_id") => "v.run_id",
        (Scope::ModelVersions, "source_path") => "v.source",
        _ => return None,
    })
}

/// The columns compared as numbers.
fn numeric_column(column: &str) -> bool {
    matches!(
        column,
        "r.start_time" | "r.end_time" | "e.created_at" | "e.updated_at" | "v.version"
    )
}

/// The fields `scope` offers, for error messages.
fn fields(scope: Scope) -> &'static str {
    match scope {
        Scope::Runs => {
            "metrics.<key>, params.<key>, tags.<key> or \
             attributes.<run_id|run_name|status|start_time|end_time|artifact_uri|user_id>"
        }
        Scope::Experiments => "name, creation_time, last_update_time or tags.<key>",
        Scope::RegisteredModels => "name or tags.<key>",
        Scope::ModelVersions => "name, version_number, run_id, source_path or tags.<key>",
    }
}

/// A compiled filter: SQL conditions (ANDed) over the scope's tables with `$n` placeholders counted from
/// `first`, and their values.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub sql: Vec<String>,
    pub binds: Vec<Bind>,
}

impl Compiled {
    fn placeholder(&mut self, first: usize, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", first + self.binds.len() - 1)
    }
}

/// `query` with `binds` bound in their order.
pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for bind in binds {
        query = match bind {
            Bind::Text(t) => query.bind(t),
            Bind::Real(r) => query.bind(r),
        };
    }
    query
}

/// Compiles `text`, a filter over `scope`, to conditions whose placeholders start at
/// `$first`.
pub(crate) fn compile(scope: Scope, text: &str, first: usize) -> Result<Compiled> {
    let tokens = tokens(text)?;
    let mut out = Compiled::default();
    let mut i = 0;
    let end = text.len();
    while i < tokens.len() {
        // The field.
        let (pos, word) = match &tokens[i] {
            (p, Token::Word(w)) => (*p, w.clone()),
            (p, _) => {
                return Err(error(
                    text,
                    *p,
                    "expected an identifier such as metrics.acc",
                ));
            }
        };
        i += 1;
        let quoted = match (word.ends_with('.'), tokens.get(i)) {
            (true, Some((_, Token::Quoted(key)))) => {
                i += 1;
                Some(key.clone())
            }
            _ => None,
        };
        let field = field(scope, &word, quoted.as_deref()).ok_or_else(|| {
            error(
                text,
                pos,
                &format!("'{word}' is no searchable field ({})", fields(scope)),
            )
        })?;
        let condition = comparison(scope, text, &tokens, &mut i, &field, first, &mut out)?;
        out.sql.push(condition);
        // AND or the end.
        match tokens.get(i) {
            None => break,
            Some((_, Token::Word(w))) if w.eq_ignore_ascii_case("and") => {
                i += 1;
                if i >= tokens.len() {
                    return Err(error(text, end, "a comparison after AND"));
                }
            }
            Some((p, _)) => {
                return Err(error(
                    text,
                    *p,
                    "expected AND (MLflow filters join comparisons with AND only)",
                ));
            }
        }
    }
    Ok(out)
}

/// One comparison after its field: the operator and the value(s).
fn comparison(
    scope: Scope,
    text: &str,
    tokens: &[(usize, Token)],
    i: &mut usize,
    field: &Field,
    first: usize,
    out: &mut Compiled,
) -> Result<String> {
    let end = text.len();
    let pos = tokens.get(*i).map_or(end, |(p, _)| *p);
    let word = |t: Option<&(usize, Token)>, w: &str| matches!(t, Some((_, Token::Word(x))) if x.eq_ignore_ascii_case(w));
    // The operator.
    let op: String = match tokens.get(*i) {
        Some((_, Token::Op(op))) => {
            *i += 1;
            op.to_string()
        }
        t if word(t, "like") || word(t, "ilike") || word(t, "in") => {
            *i += 1;
            match t {
                Some((_, Token::Word(w))) => w.to_ascii_uppercase(),
                _ => unreachable!("matched a word"),
            }
        }
        t if word(t, "not") && word(tokens.get(*i + 1), "in") => {
            *i += 2;
            "NOT IN".into()
        }
        t if word(t, "is") => {
            *i += 1;
            let not = word(tokens.get(*i), "not");
            if not {
                *i += 1;
            }
            if !word(tokens.get(*i), "null") {
                return Err(error(
                    text,
                    tokens.get(*i).map_or(end, |t| t.0),
                    "NULL after IS",
                ));
            }
            *i += 1;
            let exists = exists(scope, field, None, first, out);
            return Ok(if not { exists } else { format!("NOT {exists}") });
        }
        _ => {
            return Err(error(
                text,
                pos,
                "a comparison operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, IS)",
            ));
        }
    };
    let numeric = match field {
        Field::Metric(_) => true,
        Field::Attribute(column) => numeric_column(column),
        Field::Param(_) | Field::Tag(_) => false,
    };
    let allowed: &[&str] = match field {
        _ if numeric => &["=", "!=", ">", ">=", "<", "<="],
        Field::Tag(_) if scope != Scope::Runs => &["=", "!=", "LIKE", "ILIKE"],
        _ => &["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"],
    };
    if !allowed.contains(&op.as_str()) {
        return Err(error(
            text,
            pos,
            &format!(
                "'{op}' cannot compare this field; use one of {}",
                allowed.join(", ")
            ),
        ));
    }
    // The value(s).
    let vpos = tokens.get(*i).map_or(end, |(p, _)| *p);
    let mut values = Vec::new();
    if op.ends_with("IN") {
        if !matches!(tokens.get(*i), Some((_, Token::Open))) {
            return Err(error(text, vpos, "a parenthesised list after IN"));
        }
        *i += 1;
        loop {
            values.push(value(text, tokens, i, numeric)?);
            match tokens.get(*i) {
                Some((_, Token::Comma)) => *i += 1,
                Some((_, Token::Close)) => {
                    *i += 1;
                    break;
                }
                t => {
                    return Err(error(
                        text,
                        t.map_or(end, |t| t.0),
                        "',' or ')' in the IN list",
                    ));
                }
            }
        }
    } else {
        values.push(value(text, tokens, i, numeric)?);
    }
    // A registry search's `tags.`mlflow.prompt.is_prompt` != 'true'` (which the client adds
    // to every registered model search) also finds what has no such tag, as MLflow's does.
    let untagged_passes = scope != Scope::Runs
        && matches!(field, Field::Tag(key) if key == IS_PROMPT_TAG)
        && match (op.as_str(), values.as_slice()) {
            ("=", [Bind::Text(v)]) => v == "false",
            ("!=", [Bind::Text(v)]) => v == "true",
            _ => false,
        };
    let mut placeholders: Vec<String> = values
        .into_iter()
        .map(|v| out.placeholder(first, v))
        .collect();
    let rhs = if op.ends_with("IN") {
        format!("({})", placeholders.join(", "))
    } else {
        placeholders.remove(0)
    };
    let column = |col: &str| -> String {
        match op.as_str() {
            "ILIKE" => format!("LOWER({col}) LIKE LOWER({rhs})"),
            _ => format!("{col} {op} {rhs}"),
        }
    };
    Ok(match field {
        Field::Attribute(col) => column(col),
        Field::Metric(_) => exists(
            scope,
            field,
            Some(&(column("x.value") + " AND x.is_nan = 0")),
            first,
            out,
        ),
        Field::Param(_) | Field::Tag(_) => {
            let matching = exists(scope, field, Some(&column("x.value")), first, out);
            if untagged_passes {
                let tagged = exists(scope, field, None, first, out);
                format!("(NOT {tagged} OR {matching})")
            } else {
                matching
            }
        }
    })
}

/// The searched record has a metric/param/tag row for the field's key (matching `condition`
/// on `x`); for an attribute, that it is set. A run's is written `r.id IN (SELECT run_id ...)`
/// rather than a correlated `EXISTS`: SQLite then starts from the matching rows (metrics
/// through their `(key, value)` index) instead of probing every run of the experiments.
fn exists(
    scope: Scope,
    field: &Field,
    condition: Option<&str>,
    first: usize,
    out: &mut Compiled,
) -> String {
    let (rows, key) = match (field, scope) {
        (Field::Metric(k), _) => (
            "r.id IN (SELECT x.run_id FROM mlflow_latest_metrics x WHERE",
            k,
        ),
        (Field::Param(k), _) => ("r.id IN (SELECT x.run_id FROM mlflow_params x WHERE", k),
        (Field::Tag(k), Scope::Runs) => ("r.id IN (SELECT x.run_id FROM mlflow_tags x WHERE", k),
        (Field::Tag(k), Scope::Experiments) => (
            "e.id IN (SELECT x.experiment_id FROM mlflow_experiment_tags x WHERE",
            k,
        ),
        (Field::Tag(k), Scope::RegisteredModels) => (
            "m.id IN (SELECT x.owner FROM mlflow_entity_tags x WHERE x.kind = 'registered_model' AND",
            k,
        ),
        (Field::Tag(k), Scope::ModelVersions) => (
            "EXISTS (SELECT 1 FROM mlflow_entity_tags x WHERE x.kind = 'model_version' \
             AND x.owner = v.model_id || '/' || CAST(v.version AS TEXT) AND",
            k,
        ),
        (Field::Attribute(col), _) => return format!("{col} IS NOT NULL"),
    };
    let key = out.placeholder(first, Bind::Text(key.clone()));
    let extra = condition.map(|c| format!(" AND {c}")).unwrap_or_default();
    format!("{rows} x.key = {key}{extra})")
}

/// One literal: a quoted string, or for numeric fields a number.
fn value(text: &str, tokens: &[(usize, Token)], i: &mut usize, numeric: bool) -> Result<Bind> {
    let end = text.len();
    let Some((pos, token)) = tokens.get(*i) else {
        return Err(error(text, end, "a value"));
    };
    *i += 1;
    match (token, numeric) {
        (Token::Number(n), true) => Ok(Bind::Real(*n)),
        (Token::Quoted(s), false) => Ok(Bind::Text(s.clone())),
        (Token::Quoted(s), true) => s
            .parse()
            .map(Bind::Real)
            .map_err(|_| error(text, *pos, "a number")),
        (_, true) => Err(error(text, *pos, "a number")),
        (_, false) => Err(error(text, *pos, "a quoted string ('value')")),
    }
}

/// One `order_by` clause (`metrics.acc DESC`) as an SQL ordering over `r`, NULLs last as
/// MLflow sorts them.
pub(crate) fn order(clause: &str, first: usize, out: &mut Compiled) -> Result<String> {
    let trimmed = clause.trim();
    let (name, descending) = match trimmed.rsplit_once(char::is_whitespace) {
        Some((name, dir)) if dir.eq_ignore_ascii_case("desc") => (name.trim(), true),
        Some((name, dir)) if dir.eq_ignore_ascii_case("asc") => (name.trim(), false),
        _ => (trimmed, false),
    };
    let bad = || {
        invalid(format!(
            "Invalid order_by clause '{clause}': expected <field> [ASC|DESC], e.g. metrics.acc DESC"
        ))
    };
    let (word, quoted) = match name.find(['"', '`']) {
        Some(q) => (&name[..q], Some(name[q + 1..].trim_end_matches(['"', '`']))),
        None => (name, None),
    };
    let field = field(Scope::Runs, word, quoted).ok_or_else(bad)?;
    let expr = match &field {
        Field::Attribute(col) => col.to_string(),
        Field::Metric(key) => {
            let p = out.placeholder(first, Bind::Text(key.clone()));
            format!(
                "(SELECT x.value FROM mlflow_latest_metrics x WHERE x.run_id = r.id AND x.key = {p})"
            )
        }
        Field::Param(key) | Field::Tag(key) => {
            let table = if matches!(field, Field::Param(_)) {
                "mlflow_params"
            } else {
                "mlflow_tags"
            };
            let p = out.placeholder(first, Bind::Text(key.clone()));
            format!("(SELECT x.value FROM {table} x WHERE x.run_id = r.id AND x.key = {p})")
        }
    };
    let dir = if descending { "DESC" } else { "ASC" };
    Ok(format!("({expr} IS NULL), {expr} {dir}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_the_issue_s_example() {
        let c = compile(Scope::Runs, "metrics.acc > 0.9 and params.lr = '0.01'", 1).unwrap();
        assert_eq!(c.sql.len(), 2);
        assert_eq!(
            c.binds,
            vec![
                Bind::Real(0.9),
                Bind::Text("acc".into()),
                Bind::Text("0.01".into()),
                Bind::Text("lr".into())
            ]
        );
        assert!(c.sql[0].contains("x.value > $1"), "{}", c.sql[0]);
    }

    #[test]
    fn quoted_keys_in_lists_and_null_checks() {
        let c = compile(
            Scope::Runs,
            "tags.\"my tag\" LIKE 'a%' AND attributes.status IN ('FINISHED', 'FAILED') AND tags.x IS NULL",
            3,
        )
        .unwrap();
        assert_eq!(c.sql.len(), 3);
        assert!(c.sql[1].contains("r.status IN ($5, $6)"), "{}", c.sql[1]);
        assert!(c.sql[2].starts_with("NOT r.id IN (SELECT"), "{}", c.sql[2]);
    }

    #[test]
    fn registry_filters_name_their_own_fields() {
        let c = compile(
            Scope::ModelVersions,
            "name ILIKE 'Add%' AND version_number >= 2 AND run_id IN ('a', 'b') AND tags.`k` = 'v'",
            2,
        )
        .unwrap();
        assert_eq!(c.sql[0], "LOWER(m.name) LIKE LOWER($2)");
        assert_eq!(c.sql[1], "v.version >= $3");
        assert_eq!(c.binds[1], Bind::Real(2.0));
        assert_eq!(c.sql[2], "v.run_id IN ($4, $5)");
        assert!(
            c.sql[3].contains("x.kind = 'model_version'"),
            "{}",
            c.sql[3]
        );
        // The client's prompt filter also passes models without the tag.
        let c = compile(
            Scope::RegisteredModels,
            "tag.`mlflow.prompt.is_prompt` != 'true'",
            2,
        )
        .unwrap();
        assert!(c.sql[0].starts_with("(NOT m.id IN (SELECT"), "{}", c.sql[0]);
        for (scope, filter) in [
            (Scope::RegisteredModels, "version_number = 1"),
            (Scope::ModelVersions, "metrics.acc > 1"),
            (Scope::ModelVersions, "tags.k IN ('a')"),
            (Scope::Experiments, "params.lr = '1'"),
        ] {
            let err = compile(scope, filter, 1).unwrap_err();
            assert!(
                err.message.contains("position"),
                "{filter}: {}",
                err.message
            );
        }
    }

    #[test]
    fn errors_name_the_position() {
        let err = compile(Scope::Runs, "metrics.acc > 0.9 and params.lr == '1'", 1).unwrap_err();
        assert!(err.message.contains("position 33"), "{}", err.message);
        let err = compile(Scope::Runs, "metrics.acc > 'x' or", 1).unwrap_err();
        assert!(err.message.contains("position 14"), "{}", err.message);
        let err = compile(Scope::Runs, "metrics.acc > 0.9 or params.lr = '1'", 1).unwrap_err();
        assert!(err.message.contains("position 18"), "{}", err.message);
        let err = compile(Scope::Runs, "bogus.x = '1'", 1).unwrap_err();
        assert!(err.message.contains("position 0"), "{}", err.message);
    }
}
