//! Signing in from the web app: a name and a password give a short-lived API token (kept in
//! the app's memory) and a refresh secret (kept in an HttpOnly cookie, `sign_in_routes`) that
//! mints the next token after a reload or an expiry, until it expires or the user signs out.
//!
//! Both are stored tokens: the short-lived ones are the refresh token's children, so signing
//! out (revoking it) ends them too, and disabling the user stops all of them at once. Wrong
//! passwords count as failed sign-ins of the client's address ([`super::limit`]).
//!
//! Not for: API tokens for scripts (`POST /api/v1/tokens`), which work as before.

use super::password;
use super::records;
use super::{Auth, IssuedToken, Purpose, TokenInfo, User};
use crate::error::{Code, Error, Result};
use crate::store::now_ms;
use chrono::{DateTime, Utc};
use std::net::IpAddr;

/// How long a token handed to the web app lives; the app refreshes it before it expires.
pub(super) const ACCESS_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// How long a sign-in lasts (its refresh cookie): a working day.
pub(super) const REFRESH_TTL: chrono::Duration = chrono::Duration::hours(12);

/// What a sign-in hands out.
pub struct SignedIn {
    pub user: User,
    /// The short-lived API token for the app's memory.
    pub access: IssuedToken,
    /// The refresh secret for the cookie, and when it expires.
    pub refresh: Option<(String, DateTime<Utc>)>,
}

impl Auth {
    /// Signs in `name` with `password` from `peer`: a short-lived token and a refresh secret.
    /// Refused without a look-up while `peer` is over its limit of failed sign-ins; a wrong
    /// name or password counts against it, and neither says which of the two was wrong.
    pub async fn sign_in_with_password(
        &self,
        name: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<SignedIn> {
        if let Some(peer) = peer {
            self.check_sign_in_limit(peer)?;
        }
        let found = records::password_of(&self.store, name).await?;
        let (user, stored) = match found {
            Some((user, stored)) => (Some(user), stored),
            None => (None, None),
        };
        let matches = password::verify(password.to_string(), stored).await?;
        let Some(user) = user.filter(|_| matches) else {
            if let Some(peer) = peer {
                self.sign_in_failed(peer);
            }
            tracing::info!(?peer, name, "failed password sign-in");
            return Err(Error::new(Code::BadCredentials, "wrong name or password")
                .hint("check both; an admin can set a new password for you"));
        };
        self.require_enabled(&user.id).await?;
        let expires = Utc::now() + REFRESH_TTL;
        let refresh = self
            .issue(
                &user.id,
                "web-sign-in",
                Some(expires),
                None,
                Purpose::Refresh,
            )
            .await?;
        let access = self.mint_access(&user.id, &refresh.info).await?;
        tracing::info!(user = %user.name, ?peer, "signed in with a password");
        Ok(SignedIn {
            user,
            access,
            refresh: Some((refresh.token, expires)),
        })
    }

    /// A new short-lived token for the sign-in whose refresh secret is `refresh`.
    pub async fn refresh(&self, refresh: &str, peer: Option<IpAddr>) -> Result<SignedIn> {
        if let Some(peer) = peer {
            self.check_sign_in_limit(peer)?;
        }
        let row = match self.valid_row(refresh, Purpose::Refresh).await {
            Ok(row) => row,
            Err(err) => {
                if let Some(peer) = peer {
                    self.sign_in_failed(peer);
                }
                return Err(err.hint("sign in again with your name and password"));
            }
        };
        let parent = self.get_token(&row.token_id).await?;
        let access = self.mint_access(&row.user_id, &parent).await?;
        Ok(SignedIn {
            user: self.get_user(&row.user_id).await?,
            access,
            refresh: None,
        })
    }

    /// Ends the sign-in whose refresh secret is `refresh`, and every token it minted. An
    /// unknown or spent secret changes nothing.
    pub async fn sign_out(&self, refresh: &str) -> Result<()> {
        if let Ok(row) = self.valid_row(refresh, Purpose::Refresh).await {
            self.revoke_token(&row.token_id).await?;
        }
        Ok(())
    }

    /// Sets or replaces user `user_id`'s password.
    pub async fn set_password(&self, user_id: &str, new: &str) -> Result<()> {
        password::check_policy("password", new)?;
        let hash = password::hash(new.to_string()).await?;
        if !records::set_password_hash(&self.store, user_id, &hash, now_ms()).await? {
            return Err(Error::not_found("user", user_id));
        }
        Ok(())
    }

    /// Fails with 90309 unless `current` is user `user_id`'s password; a wrong one counts as
    /// a failed sign-in of `peer`.
    pub async fn check_password(
        &self,
        user_id: &str,
        current: &str,
        peer: Option<IpAddr>,
    ) -> Result<()> {
        if let Some(peer) = peer {
            self.check_sign_in_limit(peer)?;
        }
        let stored = records::password_hash(&self.store, user_id).await?;
        if password::verify(current.to_string(), stored).await? {
            return Ok(());
        }
        if let Some(peer) = peer {
            self.sign_in_failed(peer);
        }
        Err(
            Error::new(Code::WrongPassword, "the current password is wrong")
                .details(serde_json::json!({ "field": "current_password" })),
        )
    }

    /// A token for `user_id` that lives [`ACCESS_TTL`], never past its refresh token.
    async fn mint_access(&self, user_id: &str, refresh: &TokenInfo) -> Result<IssuedToken> {
        let mut expires = Utc::now() + ACCESS_TTL;
        if let Some(limit) = refresh.expires_at {
            expires = expires.min(limit);
        }
        self.issue(
            user_id,
            "web-session",
            Some(expires),
            Some(&refresh.id),
            Purpose::Api,
        )
        .await
    }
}
