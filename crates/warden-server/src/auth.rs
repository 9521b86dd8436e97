//! Authentication: the API tokens of `[[server.tokens]]`. A request presents one as
//! `Authorization: Bearer <token>` (every API) or `X-Auth-Token: <token>` (Judge0's way); the
//! caller is known by the token's configured name, never by the token. With no tokens
//! configured every request is anonymous, which the server allows on loopback only.
//!
//! Authorization, Judge0's second token: what Judge0 reserves to its `X-Auth-User` token
//! (listing every submission, deleting them) needs a token marked `admin = true` in that
//! header ([`Tokens::authorized`]).

use axum::http::HeaderMap;
use warden_core::TokenConfig;

use crate::state::{Api, Caller};

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("an API token is required: send `Authorization: Bearer <token>`")]
    Missing,
    /// The token presented is not one of the configured tokens.
    #[error("the API token is not valid")]
    Invalid,
    /// A request accepted before a restart came with a token (here by its name) that the
    /// server's configuration no longer has, or with none where one is now required.
    #[error("{} that asked for this is no longer accepted", revoked(.0.as_deref()))]
    Revoked(Option<String>),
}

/// Who [`AuthError::Revoked`] names.
fn revoked(name: Option<&str>) -> String {
    name.map_or_else(
        || "a request without an API token".to_owned(),
        |name| format!("the API token {name:?}"),
    )
}

/// The configured tokens.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    tokens: Vec<TokenConfig>,
}

impl Tokens {
    pub(crate) fn new(tokens: &[TokenConfig]) -> Self {
        Self {
            tokens: tokens.to_vec(),
        }
    }

    /// Who presents `headers` through `api`.
    pub(crate) fn caller(&self, headers: &HeaderMap, api: Api) -> Result<Caller, AuthError> {
        if self.tokens.is_empty() {
            return Ok(Caller { api, token: None });
        }
        let presented = presented(headers, api).ok_or(AuthError::Missing)?;
        // Every token is compared, in time independent of where they differ, so the answer's
        // timing tells nothing about a secret.
        let mut found = None;
        for token in &self.tokens {
            if constant_time_eq(token.token.as_bytes(), presented.as_bytes()) {
                found = Some(token.name.clone());
            }
        }
        found
            .map(|name| Caller {
                api,
                token: Some(name),
            })
            .ok_or(AuthError::Invalid)
    }

    /// Whether a caller known by `name` (a token's configured name; `None` without one) is
    /// still accepted: any caller on a server without tokens, else only a configured token.
    /// For what a request accepted before a restart carries ([`AuthError::Revoked`]).
    pub(crate) fn still_accepts(&self, name: Option<&str>) -> Result<(), AuthError> {
        let configured = |name: &str| self.tokens.iter().any(|t| t.name == name);
        if self.tokens.is_empty() || name.is_some_and(configured) {
            return Ok(());
        }
        Err(AuthError::Revoked(name.map(str::to_owned)))
    }

    /// Whether the token named `name` is marked `admin`.
    pub(crate) fn is_admin(&self, name: &str) -> bool {
        self.tokens.iter().any(|t| t.admin && t.name == name)
    }

    /// Whether any token may authorize (is marked `admin`).
    pub(crate) fn has_admin(&self) -> bool {
        self.tokens.iter().any(|t| t.admin)
    }

    /// Whether `headers` carry, in Judge0's `X-Auth-User`, a token marked `admin`. Never
    /// without one configured: as Judge0, which answers 403 when it has no authorization
    /// token.
    pub(crate) fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get("x-auth-user")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
        else {
            return false;
        };
        // As in `caller`: every admin token compared, whatever matched before.
        self.tokens
            .iter()
            .filter(|t| t.admin)
            .fold(false, |found, t| {
                constant_time_eq(t.token.as_bytes(), presented.as_bytes()) | found
            })
    }
}

/// The token a request carries: a bearer token, or for Judge0 its `X-Auth-Token` header.
fn presented(headers: &HeaderMap, api: Api) -> Option<&str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let judge0 = || {
        (api == Api::Judge0)
            .then(|| headers.get("x-auth-token").and_then(|v| v.to_str().ok()))
            .flatten()
    };
    bearer.or_else(judge0).filter(|t| !t.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&[TokenConfig {
            name: "grader".into(),
            token: "s3cret".into(),
            max_concurrent: None,
            requests_per_minute: None,
            admin: false,
        }])
    }

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().expect("header value"));
        headers
    }

    #[test]
    fn a_bearer_token_names_its_caller() {
        let caller = tokens()
            .caller(&headers("authorization", "Bearer s3cret"), Api::Own)
            .expect("valid");
        assert_eq!(caller.token.as_deref(), Some("grader"));
        assert_eq!(
            tokens().caller(&HeaderMap::new(), Api::Own),
            Err(AuthError::Missing)
        );
        assert_eq!(
            tokens().caller(&headers("authorization", "Bearer nope"), Api::Own),
            Err(AuthError::Invalid)
        );
    }

    /// Bug hunt: what a removed token had queued before a restart ran after it, unquota'd.
    #[test]
    fn a_removed_token_is_no_longer_accepted_for_what_it_left_queued() {
        assert_eq!(tokens().still_accepts(Some("grader")), Ok(()));
        let err = tokens().still_accepts(Some("alice")).expect_err("removed");
        assert_eq!(err, AuthError::Revoked(Some("alice".into())));
        assert_eq!(
            err.to_string(),
            "the API token \"alice\" that asked for this is no longer accepted"
        );
        assert!(
            tokens().still_accepts(None).is_err(),
            "a token is now required"
        );
        assert_eq!(Tokens::default().still_accepts(Some("alice")), Ok(()));
        assert_eq!(Tokens::default().still_accepts(None), Ok(()));
    }

    #[test]
    fn x_auth_token_is_judge0s_alone() {
        let h = headers("x-auth-token", "s3cret");
        assert!(tokens().caller(&h, Api::Judge0).is_ok());
        assert_eq!(tokens().caller(&h, Api::Own), Err(AuthError::Missing));
    }

    #[test]
    fn only_an_admin_token_in_x_auth_user_authorizes() {
        let mut both = tokens();
        both.tokens.push(TokenConfig {
            name: "root".into(),
            token: "adm1n".into(),
            max_concurrent: None,
            requests_per_minute: None,
            admin: true,
        });
        assert!(both.has_admin() && !tokens().has_admin());
        assert!(both.authorized(&headers("x-auth-user", "adm1n")));
        assert!(
            !both.authorized(&headers("x-auth-user", "s3cret")),
            "not an admin"
        );
        assert!(
            !both.authorized(&headers("x-auth-token", "adm1n")),
            "Judge0's other header"
        );
        assert!(!both.authorized(&headers("authorization", "Bearer adm1n")));
        assert!(!both.authorized(&headers("x-auth-user", "")));
        assert!(!tokens().authorized(&headers("x-auth-user", "s3cret")));
        assert!(!Tokens::default().authorized(&headers("x-auth-user", "x")));
    }

    #[test]
    fn without_tokens_everyone_is_anonymous() {
        let caller = Tokens::default()
            .caller(&HeaderMap::new(), Api::Piston)
            .expect("open");
        assert_eq!(caller.token, None);
    }
}
