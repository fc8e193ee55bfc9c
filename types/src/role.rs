//! Staff roles. Roles are ordered: each includes every role below it (docs/design.md "Users").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A staff member's role, ordered `Staff < Support < Manager < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Shop staff: watch orders arrive, find an order.
    Staff,
    /// Support: look up any id, file refund requests, force a sync.
    Support,
    /// Managers: approve or reject refunds, export.
    Manager,
    /// The owner: users, roles, audit log, settings.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Staff, Role::Support, Role::Manager, Role::Admin];

    /// Whether a holder of `self` may do what `required` may do.
    pub fn includes(self, required: Role) -> bool {
        self >= required
    }

    /// The stable lowercase name stored in the database and used by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Support => "support",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of `staff`, `support`, `manager`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected staff, support, manager or admin)")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "staff" => Ok(Role::Staff),
            "support" => Ok(Role::Support),
            "manager" => Ok(Role::Manager),
            "admin" => Ok(Role::Admin),
            other => Err(ParseRoleError(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_includes_exactly_the_roles_below_it() {
        for (i, held) in Role::ALL.iter().enumerate() {
            for (j, required) in Role::ALL.iter().enumerate() {
                assert_eq!(held.includes(*required), i >= j, "{held} vs {required}");
            }
        }
    }

    #[test]
    fn role_names_round_trip_and_reject_other_case() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}
