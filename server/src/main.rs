//! `paydesk`: the merchant back office. `main` stays boring (docs/style.md §2): parse the
//! command line and hand over to [`server::cli::run`].

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: a notification makes a few hundred small
/// allocations, and glibc's malloc/free (with its arena locks) were 14 % of its
/// instructions (docs/benchmarks.md, "Pay: where the notification target stands").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    server::cli::run()
}
