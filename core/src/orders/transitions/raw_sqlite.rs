//! `NOTPAY | PAYERROR → PAID` through SQLite's C API: the group commit's form of [`super::pay`] on
//! SQLite (notify/group_commit/sqlite.rs says why it exists), the same conditional update
//! as a statement prepared once on the committing task's own connection.

use super::{awaiting_payment, payable, Payment};
use crate::sqlite_raw::{Handle, StatementId, Value};
use crate::CoreError;

/// The statement, prepared once per connection ([`Pay::prepare`]).
pub(crate) const UPDATE: &str = concat!(
    "update orders set status = 'PAID', transaction_id = ?1, bank_type = ?2, ",
    "paid_at = ?3, next_sync_at = null, updated_at = ?4 where id = ?5 and status in (",
    awaiting_payment!(),
    ")"
);

/// [`UPDATE`] prepared on one connection.
pub(crate) struct Pay(StatementId);

impl Pay {
    /// Prepares the update on `handle`.
    pub(crate) fn prepare(handle: &mut Handle) -> Result<Pay, CoreError> {
        Ok(Pay(handle.prepare(UPDATE)?))
    }

    /// `NOTPAY | PAYERROR → PAID` for one order, in the transaction open on `handle`; true when this
    /// call moved it.
    pub(crate) fn run(
        &self,
        handle: &Handle,
        id: i64,
        payment: &Payment<'_>,
        now: i64,
    ) -> Result<bool, CoreError> {
        payable()?;
        handle.step(
            self.0,
            &[
                Value::Text(payment.transaction_id),
                Value::opt_text(payment.bank_type),
                Value::Int(payment.paid_at),
                Value::Int(now),
                Value::Int(id),
            ],
            |_| (),
        )?;
        Ok(handle.changes() == 1)
    }
}
