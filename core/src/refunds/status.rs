//! The refund state machine (stored in `refunds.status`): `RefundStatus` lives in
//! `paydesk-types` (the browser shows it too); its SQL side stays here.

pub use paydesk_types::RefundStatus;

/// The SQL side of [`RefundStatus`].
pub(crate) trait StatusSql {
    /// The stored names of the statuses `next` may be reached from, as an SQL list
    /// (`'A', 'B'`): the condition of every status update.
    fn sql_sources(next: RefundStatus) -> String;
}

impl StatusSql for RefundStatus {
    fn sql_sources(next: RefundStatus) -> String {
        RefundStatus::ALL
            .into_iter()
            .filter(|s| s.can_move_to(next))
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
