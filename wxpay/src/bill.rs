//! Bills (§8.7).
/// A parsed bill.
#[derive(Debug)]
pub struct Bill;
