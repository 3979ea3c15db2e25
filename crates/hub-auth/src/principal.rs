//! Who is asking and what they may do: [`Role`], [`Action`], [`Principal`].
//!
//! Permission is the union over the principal's roles, times the union over its
//! namespace globs: `allows(action, ns)` is true when some role permits the
//! action and some glob matches the namespace. Roles are not scoped per
//! namespace.

use hub_core::glob::glob_match;

/// Clock skew tolerated on `exp` (and `nbf`), in milliseconds: the protocol's 5 s.
pub const EXP_LEEWAY_MS: u64 = 5_000;

/// A role from the token's `roles` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `viewer`: may view.
    Viewer,
    /// `operator`: viewer + cancel.
    Operator,
    /// `reporter`: viewer + publish.
    Reporter,
    /// `admin`: everything.
    Admin,
}

impl Role {
    /// Parses a claim value. Exact, lowercase names only; anything else is
    /// `None` (and ignored by the verifier).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "reporter" => Some(Role::Reporter),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The claim value for this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Reporter => "reporter",
            Role::Admin => "admin",
        }
    }

    /// Whether this role alone permits `action` (namespace aside).
    pub fn permits(self, action: Action) -> bool {
        matches!(
            (self, action),
            (Role::Admin, _)
                | (_, Action::View)
                | (Role::Operator, Action::Cancel)
                | (Role::Reporter, Action::Publish)
        )
    }
}

/// What a request wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read: subscribe, list, fetch events.
    View,
    /// Send producer messages.
    Publish,
    /// Request cancellation of an operation.
    Cancel,
}

/// Who is asking: from a verified token, the open hub, or an anonymous reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`; `"anonymous"` for [`open_admin`](Self::open_admin) and
    /// [`anonymous_reader`](Self::anonymous_reader).
    pub sub: String,
    /// Recognised roles; may be empty (then nothing is allowed).
    pub roles: Vec<Role>,
    /// Namespace globs (see [`glob_match`](crate::glob_match)); may be empty
    /// (then nothing is allowed).
    pub namespaces: Vec<String>,
    /// The token's `exp` in milliseconds since the Unix epoch, as written in the
    /// token (no leeway added); `None` when there is no token. Use
    /// [`is_expired`](Self::is_expired) to apply the leeway.
    pub expires_at: Option<u64>,
    /// True only for [`anonymous_reader`](Self::anonymous_reader): no token
    /// was presented, so a refused publish or cancel is `AUTH_REQUIRED`
    /// rather than `FORBIDDEN`.
    pub anonymous: bool,
    /// The hub allows anonymous reads (`--allow-anonymous-read`): this
    /// principal may view every namespace whatever its token says, since
    /// dropping the token would allow that anyway.
    pub views_everything: bool,
}

impl Principal {
    /// The hub runs without a key: everyone is admin of every namespace, `sub`
    /// is `"anonymous"`, no expiry. `anonymous` is false: nothing is refused,
    /// so there is nothing to ask a token for.
    pub fn open_admin() -> Self {
        Principal {
            sub: "anonymous".to_owned(),
            roles: vec![Role::Admin],
            namespaces: vec!["*".to_owned()],
            expires_at: None,
            anonymous: false,
            views_everything: true,
        }
    }

    /// `--allow-anonymous-read` and no token: viewer of every namespace,
    /// `anonymous` true, no expiry.
    pub fn anonymous_reader() -> Self {
        Principal {
            sub: "anonymous".to_owned(),
            roles: vec![Role::Viewer],
            namespaces: vec!["*".to_owned()],
            expires_at: None,
            anonymous: true,
            views_everything: true,
        }
    }

    /// The same principal on a hub that allows anonymous reads: it keeps its
    /// own rights and may also view every namespace.
    pub fn with_anonymous_read(mut self) -> Self {
        self.views_everything = true;
        self
    }

    /// Whether some role permits `action` and some namespace glob matches
    /// `namespace` (or the action is a view and the hub allows anonymous
    /// reads). Expiry is not checked here (see [`is_expired`](Self::is_expired)).
    pub fn allows(&self, action: Action, namespace: &str) -> bool {
        if action == Action::View && self.views_everything {
            return true;
        }
        self.roles.iter().any(|r| r.permits(action))
            && self.namespaces.iter().any(|g| glob_match(g, namespace))
    }

    /// Whether some role lets the principal view (whatever the namespace),
    /// or the hub allows anonymous reads: what hub-wide read-only figures
    /// (`/api/v1/status`, `/metrics`) ask. A token whose roles are `[]` or all unknown
    /// has none.
    pub fn may_view_something(&self) -> bool {
        self.views_everything || self.roles.iter().any(|r| r.permits(Action::View))
    }

    /// Whether the principal has the `admin` role. Its namespace globs still
    /// bound what [`allows`](Self::allows) grants.
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// Whether the token is past `exp` plus [`EXP_LEEWAY_MS`] at `now_ms`
    /// (the same rule [`Verifier::verify`](crate::Verifier::verify) applies).
    /// Never true without a token.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|exp| past_exp(exp, now_ms))
    }
}

/// Whether a token whose `exp` is `exp_ms` is expired at `now_ms`: past it
/// by more than the clock-skew leeway ([`EXP_LEEWAY_MS`]). The one rule for
/// the door, live connections and `refresh`.
pub fn past_exp(exp_ms: u64, now_ms: u64) -> bool {
    now_ms >= exp_ms.saturating_add(EXP_LEEWAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], namespaces: &[&str]) -> Principal {
        Principal {
            sub: "t".into(),
            roles: roles.to_vec(),
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            expires_at: None,
            anonymous: false,
            views_everything: false,
        }
    }

    #[test]
    fn with_anonymous_read_a_token_views_everything_but_does_no_more() {
        let p = principal(&[Role::Reporter], &["default"]).with_anonymous_read();
        assert!(p.allows(Action::View, "team-x"));
        assert!(!p.allows(Action::Publish, "team-x"));
        assert!(p.allows(Action::Publish, "default"));
        assert!(!principal(&[Role::Reporter], &["default"]).allows(Action::View, "team-x"));
    }

    #[test]
    fn role_action_matrix() {
        use Action::*;
        use Role::*;
        let table = [
            (Viewer, [true, false, false]),
            (Operator, [true, false, true]),
            (Reporter, [true, true, false]),
            (Admin, [true, true, true]),
        ];
        for (role, [view, publish, cancel]) in table {
            for (action, want) in [(View, view), (Publish, publish), (Cancel, cancel)] {
                assert_eq!(role.permits(action), want, "{role:?} {action:?}");
                assert_eq!(
                    principal(&[role], &["*"]).allows(action, "default"),
                    want,
                    "{role:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn role_action_namespace_matrix() {
        use Action::*;
        use Role::*;
        /// Roles, namespace globs, action, namespace, allowed?
        type Case = (
            &'static [Role],
            &'static [&'static str],
            Action,
            &'static str,
            bool,
        );
        let cases: &[Case] = &[
            (&[Reporter], &["default"], Publish, "default", true),
            (&[Reporter], &["default"], Publish, "other", false),
            (&[Reporter], &["team-*"], Publish, "team-a", true),
            (&[Reporter], &["team-*"], Publish, "teams", false),
            (&[Reporter], &["team-?"], Publish, "team-ab", false),
            (&[Reporter], &["team-?", "ops"], Publish, "ops", true),
            (&[Viewer, Operator], &["a*"], Cancel, "abc", true),
            (&[Viewer, Operator], &["a*"], Publish, "abc", false),
            (&[Viewer, Reporter], &["a*"], Cancel, "abc", false),
            (&[Admin], &["prod-*"], Cancel, "prod-eu", true),
            (&[Admin], &["prod-*"], View, "dev", false),
            (&[], &["*"], View, "default", false),
            (&[Admin], &[], View, "default", false),
        ];
        for &(roles, namespaces, action, ns, want) in cases {
            assert_eq!(
                principal(roles, namespaces).allows(action, ns),
                want,
                "{roles:?} {namespaces:?} {action:?} {ns}"
            );
        }
    }

    #[test]
    fn hub_wide_views() {
        use Role::*;
        // (roles, globs) -> may_view_something
        let cases: &[(&[Role], &[&str], bool)] = &[
            (&[], &["*"], false),
            (&[Viewer], &["default"], true),
            (&[Reporter], &["team-*"], true),
            (&[Operator], &["a", "*"], true),
            (&[Admin], &[], true),
        ];
        for &(roles, globs, some) in cases {
            let p = principal(roles, globs);
            assert_eq!(p.may_view_something(), some, "{roles:?} {globs:?}");
        }
        assert!(principal(&[], &[])
            .with_anonymous_read()
            .may_view_something());
        assert!(Principal::anonymous_reader().may_view_something());
        assert!(Principal::open_admin().may_view_something());
    }

    #[test]
    fn built_in_principals() {
        let open = Principal::open_admin();
        assert!(open.is_admin() && !open.anonymous && open.sub == "anonymous");
        assert!(open.allows(Action::Cancel, "any-namespace"));
        assert!(!open.is_expired(u64::MAX));

        let reader = Principal::anonymous_reader();
        assert!(reader.anonymous && !reader.is_admin());
        assert!(reader.allows(Action::View, "x"));
        assert!(!reader.allows(Action::Publish, "x"));
        assert!(!reader.allows(Action::Cancel, "x"));
    }

    #[test]
    fn expiry_applies_leeway() {
        let mut p = principal(&[Role::Viewer], &["*"]);
        p.expires_at = Some(10_000);
        assert!(!p.is_expired(14_999));
        assert!(p.is_expired(15_000));
    }

    #[test]
    fn role_names_round_trip() {
        for r in [Role::Viewer, Role::Operator, Role::Reporter, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("root"), None);
    }
}
