//! Whom a plugin's capability grants are for. Each grant says it explicitly: `"everyone": true`,
//! or `"scope": {"users": [...], "roles": [...]}`. A node run for user U gets the union of the
//! grants whose scope takes in U (by id or by role); nothing else.
//!
//! Not here: what a capability allows once granted (`weft_runtime::Grants` and the runtime).

use crate::auth::{Role, User};
use crate::error::{Error, Result};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use weft_runtime::Grants;

/// Capabilities granted to a set of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopedGrant {
    /// For every user, present and future.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everyone: bool,
    /// For these users and roles only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Hosts and addresses, as in `weft_runtime::Grants::http`.
    #[serde(default)]
    pub http: Vec<String>,
    /// Secret names; `*` for all.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Storing and reading artifacts (in the run owner's own namespace).
    #[serde(default)]
    pub artifacts: bool,
    /// Running container jobs (for the run's owner, under their container limits).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jobs: bool,
}

/// Users (ids; names are accepted on the way in) and roles a grant is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// Who a node runs for: the caller of a direct run, the owner of a workflow run.
#[derive(Debug, Clone)]
pub struct Grantee {
    pub user_id: String,
    /// `None` when the user no longer exists: only grants to everyone apply.
    pub role: Option<Role>,
}

impl ScopedGrant {
    fn applies_to(&self, who: &Grantee) -> bool {
        self.everyone
            || self.scope.as_ref().is_some_and(|scope| {
                scope.users.contains(&who.user_id)
                    || who.role.is_some_and(|role| scope.roles.contains(&role))
            })
    }

    fn capabilities(&self) -> Grants {
        Grants {
            http: self.http.clone(),
            secrets: self.secrets.clone(),
            artifacts: self.artifacts,
            jobs: self.jobs,
        }
    }
}

/// What `grants` give `who`: the union of those that apply to them.
pub fn effective(grants: &[ScopedGrant], who: &Grantee) -> Grants {
    let mut effective = Grants::default();
    for grant in grants.iter().filter(|g| g.applies_to(who)) {
        effective.merge(&grant.capabilities());
    }
    effective
}

/// The body of `PUT /plugins/{name}/grants`: one grant, or a list of them.
#[derive(Debug, Clone)]
pub(crate) struct GrantList(pub Vec<ScopedGrant>);

impl<'de> Deserialize<'de> for GrantList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct OneOrMany;
        impl<'de> serde::de::Visitor<'de> for OneOrMany {
            type Value = Vec<ScopedGrant>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a grant object or a list of grant objects")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                ScopedGrant::deserialize(MapAccessDeserializer::new(map)).map(|g| vec![g])
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq))
            }
        }
        deserializer.deserialize_any(OneOrMany).map(GrantList)
    }
}

/// Checks each grant (whom it is for, its host patterns) and stores users by id; `users` are
/// every known user, to resolve names and refuse unknown ones.
pub(super) fn checked(grants: Vec<ScopedGrant>, users: &[User]) -> Result<Vec<ScopedGrant>> {
    let say_who = "say whom each grant is for: \"everyone\": true, or \"scope\": {\"users\": \
                   [id or name, ...], \"roles\": [\"admin\" | \"user\"]}";
    grants
        .into_iter()
        .enumerate()
        .map(|(i, mut grant)| {
            let at = |field: &str| format!("grants[{i}].{field}");
            match (&mut grant.scope, grant.everyone) {
                (Some(_), true) => {
                    return Err(Error::invalid_field(
                        &at("scope"),
                        "a grant is for everyone or for a scope, not both",
                    )
                    .hint(say_who));
                }
                (None, false) => {
                    return Err(Error::invalid_field(
                        &at("scope"),
                        "the grant does not say whom it is for",
                    )
                    .hint(say_who));
                }
                (Some(scope), false) => {
                    if scope.users.is_empty() && scope.roles.is_empty() {
                        return Err(
                            Error::invalid_field(&at("scope"), "the scope is empty").hint(say_who)
                        );
                    }
                    for entry in &mut scope.users {
                        let user = users
                            .iter()
                            .find(|u| u.id == *entry || u.name == *entry)
                            .ok_or_else(|| {
                                Error::invalid_field(
                                    &at("scope.users"),
                                    format!("no user has the id or name '{entry}'"),
                                )
                                .hint("GET /api/v1/users lists the users")
                            })?;
                        entry.clone_from(&user.id);
                    }
                    scope.users.sort();
                    scope.users.dedup();
                }
                (None, true) => {}
            }
            grant
                .capabilities()
                .validate()
                .map_err(|why| Error::invalid_field(&at("http"), why))?;
            Ok(grant)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(id: &str, name: &str) -> User {
        User {
            id: id.into(),
            name: name.into(),
            role: Role::User,
            created_at: chrono::Utc::now(),
            disabled_at: None,
        }
    }

    fn parse(body: serde_json::Value) -> Result<Vec<ScopedGrant>> {
        let GrantList(list) = crate::api::extract::parse_json(body.to_string().as_bytes())?;
        checked(list, &[user("u-1", "alice"), user("u-2", "bob")])
    }

    #[test]
    fn a_grant_says_whom_it_is_for() {
        let err = parse(json!({"http": ["example.com"]})).unwrap_err();
        assert_eq!(err.code.as_string(), "90402");
        assert!(err.message.contains("whom"), "{}", err.message);
        assert!(parse(json!({"everyone": true, "scope": {"roles": ["user"]}})).is_err());
        assert!(parse(json!({"scope": {}})).is_err());
        let err = parse(json!({"everyone": true, "htp": []})).unwrap_err();
        assert!(err.message.contains("htp"), "{}", err.message);
        let err = parse(json!({"scope": {"users": ["carol"]}})).unwrap_err();
        assert!(err.message.contains("carol"), "{}", err.message);
        let err = parse(json!({"everyone": true, "http": ["http://x/"]})).unwrap_err();
        assert!(err.message.contains("grants[0].http"), "{}", err.message);
    }

    #[test]
    fn one_grant_or_many_and_names_become_ids() {
        let one = parse(json!({"everyone": true, "artifacts": true})).unwrap();
        assert_eq!(one.len(), 1);
        let many = parse(json!([
            {"scope": {"users": ["alice", "u-1"]}, "http": ["a.example"]},
            {"scope": {"roles": ["admin"]}, "secrets": ["*"]}
        ]))
        .unwrap();
        assert_eq!(many[0].scope.as_ref().unwrap().users, ["u-1"]);
        assert_eq!(
            serde_json::to_value(&many[1]).unwrap(),
            json!({"scope": {"users": [], "roles": ["admin"]}, "http": [], "secrets": ["*"], "artifacts": false})
        );
    }

    #[test]
    fn a_run_gets_what_applies_to_its_user_or_role() {
        let grants = parse(json!([
            {"scope": {"users": ["alice"]}, "http": ["a.example"]},
            {"scope": {"roles": ["admin"]}, "secrets": ["*"]},
            {"everyone": true, "artifacts": true}
        ]))
        .unwrap();
        let alice = Grantee {
            user_id: "u-1".into(),
            role: Some(Role::User),
        };
        let bob = Grantee {
            user_id: "u-2".into(),
            role: Some(Role::User),
        };
        let admin = Grantee {
            user_id: "u-0".into(),
            role: Some(Role::Admin),
        };
        let gone = Grantee {
            user_id: "u-9".into(),
            role: None,
        };
        assert_eq!(effective(&grants, &alice).http, ["a.example"]);
        assert!(effective(&grants, &bob).http.is_empty());
        assert!(effective(&grants, &bob).artifacts);
        assert_eq!(effective(&grants, &admin).secrets, ["*"]);
        assert!(effective(&grants, &admin).http.is_empty());
        assert_eq!(
            effective(&grants, &gone),
            Grants {
                artifacts: true,
                ..Grants::default()
            }
        );
    }
}
